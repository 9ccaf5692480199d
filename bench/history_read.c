/*
 * bench_history_read — issue 12's read goal: the history of one target over
 * 30 days, through real gRPC, p99 < 2 ms; QueryLatency over the same
 * window, and GetAvailability for comparison. Each case is measured next
 * to GetHealth on the same daemon in the same run (the floor of a call).
 *
 *   bench_history_read [--days D] [--period S] [--others K]
 *                      [--others-period S] [--flush S] [--seed N]
 *                      [--calls C] [--walks W] [--kubemedicd PATH]
 *                      [--dir DIR] [--keep]
 *
 * The database: km_store_open in DIR (default a fresh directory under /tmp,
 * removed at the end unless --keep; a DIR given must not hold a km.db
 * yet) with a simulated clock, so that the store's real writer folds D
 * days (default 30) of results in seconds: one target pod/bench/web-0
 * probed every S s (default 10) and K other targets (default 100) every
 * --others-period s (default 10, a multiple of S), the window ending now.
 * Each target's results: durations log-normal around 4 ms with a daily
 * swing and a slow tail (timeouts 1 s); about 1 % failures, most in bursts
 * of 10 s to 30 min of one or two kinds (HTTP 503 or 500, timeout,
 * connection refused) and a few in flapping periods (10 to 60 min where
 * 30 % of the results fail, of either kind); transitions by the kubelet's
 * rules (3 failures in a row: UNHEALTHY; 1 success: HEALTHY). The producer
 * keeps the writer's result queue from overflowing (it waits while more
 * than 8,192 are queued) and the run is refused if any result was dropped.
 * The store's flush interval during the fill is --flush (default 3600 s,
 * not the daemon's 10 s): a run's row is then written once instead of
 * rewritten every 10 simulated seconds — the same rows in the end, in far
 * less time. It prints what the fill made: results, runs, rollup rows.
 *
 * Then kubemedicd (PATH, default ./build/kubemedicd) on 127.0.0.1:0 over
 * the database, and through km_client, C calls per case (default 200)
 * after 10 unmeasured, each followed by a GetHealth of the same target,
 * p50 and p99 of each:
 *  - QueryProbeHistory of the target over the D days, newest first: the
 *    first page at page_size 100, unset (the default, 100) and 1000; the
 *    first page of failures only (page_size 100);
 *  - all pages of the D days (W walks, default 50, each timed whole, next
 *    to as many GetHealth calls in a row as the walk had pages): at
 *    page_size 100 and 1000, and of failures at 100;
 *  - QueryLatency over the D days, quantiles 0.5 and 0.99, at 1 h steps
 *    and at 1 day steps, each from a start that is not a whole hour (read
 *    from the minute rollups: what "the last 30 days" asks) and from a
 *    whole hour (whole aligned steps: read from the hour rollups);
 *  - GetAvailability over the D days, no steps.
 * Ratios are the case / GetHealth. Nothing here asserts a time.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "km_client.h"
#include "km_log.h"
#include "km_store.h"
#include "km_time.h"

#define S 1000000LL
#define MINUTE (60 * S)
#define HOUR (3600 * S)
#define DAY (86400 * S)
#define TARGET "pod/bench/web-0"
#define WARMUP 10
/* The producer waits while more results than this are queued. */
#define QUEUE_HIGH 8192

struct cfg {
	long days, others, calls, walks;
	int64_t period_us, others_period_us, flush_us;
	uint64_t seed;
	const char *kubemedicd;
	char *dir;
	bool made_dir; /* removed at the end unless --keep */
	bool keep;
};

/* ---- the results of one target ------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* Uniform in [0, 1). */
static double unif(uint64_t *s)
{
	return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

static int64_t unif_i(uint64_t *s, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(unif(s) * (double)(hi - lo + 1));
}

/* Log-normal: median m, log-sd sigma. */
static double lognormal(uint64_t *s, double m, double sigma)
{
	double u1 = unif(s), u2 = unif(s);

	if (u1 < 1e-300)
		u1 = 1e-300;
	return m * exp(sigma * sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2));
}

/* How a probe fails: each a run of its own. */
static const struct failure {
	int error_class;
	int status;
	const char *message;
	double weight;
} failures[] = {
	{KM_EC_HTTP_STATUS, 503,
	 "HTTP 503 Service Unavailable: upstream connect error or "
	 "disconnect/reset before headers. reset reason: connection failure",
	 0.4},
	{KM_EC_TIMEOUT, 0,
	 "timeout: no response from 10.42.3.17:8080/healthz within 1s "
	 "(connected, 0 bytes read)",
	 0.3},
	{KM_EC_REFUSED, 0, "connect 10.42.3.17:8080: connection refused", 0.2},
	{KM_EC_HTTP_STATUS, 500,
	 "HTTP 500 Internal Server Error: {\"status\":\"DOWN\",\"checks\":"
	 "{\"db\":\"timeout after 500ms\"}}",
	 0.1},
};
#define N_FAILURES (sizeof failures / sizeof failures[0])

static int pick_failure(uint64_t *s)
{
	double u = unif(s);

	for (size_t i = 0; i < N_FAILURES - 1; i++)
		if ((u -= failures[i].weight) < 0)
			return (int)i;
	return N_FAILURES - 1;
}

/* Burst lengths: half are blips of 10-30 s, 35 % last 40 s-5 min, 15 %
 * 5-30 min; their mean in s sets the burst rate. BURST_SHARE is tuned so
 * that bursts and flapping periods fail 1.00 % of the results (of the
 * measured target and of all, at the defaults; a length rounded down to
 * whole periods makes bursts shorter than their nominal mean). */
#define BURST_MEAN_S (0.5 * 20 + 0.35 * 170 + 0.15 * 1050)
#define BURST_SHARE 0.0086
/* Flapping periods: one in 4 days on average, 10-60 min, 30 % failing. */
#define FLAPS_PER_DAY 0.25
#define FLAP_FAIL 0.3

struct gen {
	uint64_t rng;
	int64_t id;
	int64_t period_us;
	double p_burst, p_flap;        /* per result */
	long burst_left, burst_switch; /* results; the kind changes at
	                                  burst_switch left */
	int kind, kind2;
	long flap_left;
	long fails_in_row;
	int state;
	long results, failed;
};

static void gen_init(struct gen *g, int64_t id, int64_t period_us,
		     uint64_t seed)
{
	memset(g, 0, sizeof *g);
	g->rng = seed * 0x9E3779B97F4A7C15ULL + 1;
	g->id = id;
	g->period_us = period_us;
	g->p_burst = BURST_SHARE * (double)period_us / (BURST_MEAN_S * S);
	g->p_flap = FLAPS_PER_DAY * (double)period_us / DAY;
	g->state = KM_STATE_UNKNOWN;
}

static long in_results(const struct gen *g, int64_t us)
{
	long n = (long)(us / g->period_us);

	return n < 1 ? 1 : n;
}

/* The next result of g at time t; *tr set (and true returned) when it
 * changes the target's state. */
static bool gen_next(struct gen *g, int64_t t, struct km_result *r,
		     struct km_transition *tr)
{
	uint64_t *s = &g->rng;
	double diurnal = 1.0 + 0.3 * sin(2 * M_PI * (double)(t % DAY) / DAY);
	int kind = -1, to;

	if (!g->burst_left && !g->flap_left) {
		if (unif(s) < g->p_burst) {
			double u = unif(s);
			int64_t len = u < 0.5    ? unif_i(s, 10, 30)
				      : u < 0.85 ? unif_i(s, 40, 300)
						 : unif_i(s, 300, 1800);

			g->burst_left = in_results(g, len * S);
			g->kind = g->kind2 = pick_failure(s);
			g->burst_switch = 0;
			/* A long burst changes kind midway a third of the
			 * time (timeouts, then refused while it restarts). */
			if (g->burst_left >= 30 && unif(s) < 0.33) {
				g->kind2 = pick_failure(s);
				g->burst_switch = g->burst_left / 2;
			}
		} else if (unif(s) < g->p_flap) {
			g->flap_left = in_results(g, unif_i(s, 600, 3600) * S);
		}
	}
	if (g->burst_left) {
		kind = g->burst_left <= g->burst_switch ? g->kind2 : g->kind;
		g->burst_left--;
	} else if (g->flap_left) {
		g->flap_left--;
		if (unif(s) < FLAP_FAIL)
			kind = unif(s) < 0.5 ? 0 : 1;
	}

	memset(r, 0, sizeof *r);
	r->target_id = g->id;
	r->started_us = t;
	r->success = kind < 0;
	if (kind < 0) {
		double d = lognormal(s, 4000 * diurnal, 0.5);

		if (unif(s) < 0.005)
			d *= (double)unif_i(s, 10, 50);
		r->duration_us = (int64_t)d + 200;
	} else {
		const struct failure *f = &failures[kind];

		r->error_class = f->error_class;
		r->status_code = f->status;
		r->message = f->message;
		r->duration_us = f->error_class == KM_EC_TIMEOUT
					 ? S + unif_i(s, 0, 3000)
				 : f->error_class == KM_EC_REFUSED
					 ? unif_i(s, 150, 600)
					 : (int64_t)lognormal(s, 2000, 0.4);
		g->failed++;
	}
	g->results++;

	/* The kubelet's rules: failureThreshold 3, successThreshold 1. */
	g->fails_in_row = r->success ? 0 : g->fails_in_row + 1;
	to = r->success             ? KM_STATE_HEALTHY
	     : g->fails_in_row >= 3 ? KM_STATE_UNHEALTHY
				    : g->state;
	if (to == g->state || to == KM_STATE_UNKNOWN)
		return false;
	memset(tr, 0, sizeof *tr);
	tr->target_id = g->id;
	tr->at_us = t + r->duration_us;
	tr->from_state = g->state;
	tr->to_state = to;
	tr->flapping = g->flap_left > 0;
	tr->cause = r->success ? "probe succeeded"
			       : "probe failed 3 times in a row";
	g->state = to;
	return true;
}

/* ---- the fill ------------------------------------------------------------- */

static int64_t sim_now;

static int64_t sim_clock(void *arg)
{
	(void)arg;
	return __atomic_load_n(&sim_now, __ATOMIC_SEQ_CST);
}

static void add(struct km_store *s, struct gen *g, int64_t t, long *n)
{
	struct km_result r;
	struct km_transition tr;

	__atomic_store_n(&sim_now, t, __ATOMIC_SEQ_CST);
	if (gen_next(g, t, &r, &tr) && km_store_add_transition(s, &tr))
		bench_die("transition", "refused");
	if (km_store_add_result(s, &r))
		bench_die("result", "refused");
	/* Keep the ring from dropping: wait for the writer. */
	if (++*n % 256 == 0) {
		struct km_store_stats st;

		for (km_store_get_stats(s, &st);
		     st.result_queue_depth > QUEUE_HIGH;
		     km_store_get_stats(s, &st))
			usleep(200);
	}
}

static int64_t count(sqlite3 *db, const char *sql, int64_t id)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL))
		bench_die("count", sqlite3_errmsg(db));
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static off_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) ? 0 : sb.st_size;
}

static void fill(const struct cfg *c, const char *db, int64_t end)
{
	struct km_store_options o = {.path = db,
				     .sync_normal = true,
				     .flush_us = c->flush_us,
				     .now_us = sim_clock};
	struct km_store *s;
	struct km_error err = {0};
	struct km_store_stats st;
	int64_t start = end - c->days * DAY;
	long k_all = c->others + 1, ratio = c->others_period_us / c->period_us;
	long ticks = (long)(c->days * DAY / c->period_us), n = 0;
	struct km_target *t = calloc((size_t)k_all, sizeof *t);
	char(*names)[64] = calloc((size_t)k_all, sizeof *names);
	struct gen *g = calloc((size_t)k_all, sizeof *g);
	int64_t t0 = km_mono_ns(), id;
	sqlite3 *h;
	char wal[4200];

	if (!t || !names || !g)
		bench_die("fill", "out of memory");
	__atomic_store_n(&sim_now, start, __ATOMIC_SEQ_CST);
	if (km_store_open(&o, &s, &err))
		bench_die("open", err.msg);
	for (long k = 0; k < k_all; k++) {
		if (k)
			snprintf(names[k], sizeof names[k],
				 "pod/bench/other-%ld", k);
		else
			snprintf(names[k], sizeof names[k], "%s", TARGET);
		t[k].name = names[k];
		t[k].created_us = start;
	}
	if (km_store_ensure_targets(s, t, (size_t)k_all, &err))
		bench_die("targets", err.msg);
	for (long k = 0; k < k_all; k++)
		gen_init(&g[k], t[k].id, k ? c->others_period_us : c->period_us,
			 c->seed + (uint64_t)k);

	/* The measured target on the tick; the others spread over their
	 * period. */
	for (long i = 0; i < ticks; i++) {
		int64_t at = start + i * c->period_us;

		add(s, &g[0], at, &n);
		if (i % ratio)
			continue;
		for (long k = 1; k < k_all; k++)
			add(s, &g[k],
			    at + k * (c->others_period_us / (k_all + 1)), &n);
	}
	__atomic_store_n(&sim_now, end, __ATOMIC_SEQ_CST);
	if (km_store_flush(s, &err))
		bench_die("flush", err.msg);
	km_store_get_stats(s, &st);
	if (st.results_dropped)
		bench_die("fill", "the writer dropped results: the run is "
				  "not valid");
	km_store_close(s);
	printf("fill: %ld days, %ld results of %ld targets through the "
	       "store's writer in %.1f s (writer CPU %.1f s, %llu dropped, "
	       "result queue at most %zu)\n",
	       c->days, n, k_all, (double)(km_mono_ns() - t0) / 1e9,
	       (double)st.writer_cpu_ns / 1e9,
	       (unsigned long long)st.results_dropped,
	       st.result_queue_max_depth);
	printf("fill: %s: %ld results every %lld s, %ld failed (%.2f %%)",
	       TARGET, g[0].results, (long long)(c->period_us / S), g[0].failed,
	       100.0 * (double)g[0].failed / (double)g[0].results);
	{
		long all = 0, failed = 0;

		for (long k = 0; k < k_all; k++) {
			all += g[k].results;
			failed += g[k].failed;
		}
		printf("; all targets: %.2f %% failed\n",
		       100.0 * (double)failed / (double)all);
	}

	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL))
		bench_die("count", sqlite3_errmsg(h));
	id = t[0].id;
	printf("fill: %s: %lld runs (%lld of failures), %lld transitions, "
	       "%lld minute and %lld hour rollup rows\n",
	       TARGET,
	       (long long)count(h,
				"SELECT count(*) FROM runs WHERE "
				"target_id = ?1",
				id),
	       (long long)count(h,
				"SELECT count(*) FROM runs WHERE "
				"target_id = ?1 AND success = 0",
				id),
	       (long long)count(h,
				"SELECT count(*) FROM transitions WHERE "
				"target_id = ?1",
				id),
	       (long long)count(h,
				"SELECT count(*) FROM rollup_minutes "
				"WHERE target_id = ?1",
				id),
	       (long long)count(h,
				"SELECT count(*) FROM rollup_hours WHERE "
				"target_id = ?1",
				id));
	snprintf(wal, sizeof wal, "%s-wal", db);
	printf("fill: all targets: %lld runs, %lld transitions, %lld minute "
	       "and %lld hour rollup rows; database %.1f MB (+ WAL %.1f MB)\n",
	       (long long)count(h, "SELECT count(*) FROM runs WHERE ?1 = ?1",
				0),
	       (long long)count(
		       h, "SELECT count(*) FROM transitions WHERE ?1 = ?1", 0),
	       (long long)count(h,
				"SELECT count(*) FROM rollup_minutes WHERE ?1 "
				"= ?1",
				0),
	       (long long)count(h,
				"SELECT count(*) FROM rollup_hours WHERE ?1 = "
				"?1",
				0),
	       (double)file_size(db) / 1e6, (double)file_size(wal) / 1e6);
	sqlite3_close(h);
	free(t);
	free(names);
	free(g);
}

/* ---- through gRPC --------------------------------------------------------- */

struct bench {
	const struct cfg *c;
	struct km_client *cl;
	struct km_arena a;
	Kubemedic__V1__GetHealthRequest hreq;
	int64_t *v, *b;
};

static void get_health(struct bench *B)
{
	struct km_client_status st;
	Kubemedic__V1__TargetHealth *h;

	if (km_client_get_health(B->cl, &B->hreq, &B->a, &h, &st))
		bench_die("GetHealth", st.message);
}

/* One call of a case; returns what to say of its answer (the last
 * call's is printed). */
typedef void (*call_fn)(struct bench *B, void *arg, char *say, size_t n);

/* C calls of fn after WARMUP, each followed by a GetHealth. */
static void measure(struct bench *B, const char *name, call_fn fn, void *arg)
{
	char say[256] = "";

	for (long i = 0; i < WARMUP + B->c->calls; i++) {
		int64_t t0 = km_mono_ns(), t1;

		fn(B, arg, say, sizeof say);
		t1 = km_mono_ns();
		get_health(B);
		if (i >= WARMUP) {
			B->v[i - WARMUP] = t1 - t0;
			B->b[i - WARMUP] = km_mono_ns() - t1;
		}
		km_arena_reset(&B->a);
	}
	bench_report(name, B->v, B->c->calls, "GetHealth", B->b, B->c->calls);
	printf("  (%s)\n", say);
}

static void history_page(struct bench *B, void *arg, char *say, size_t n)
{
	Kubemedic__V1__QueryProbeHistoryRequest *r = arg;
	Kubemedic__V1__QueryProbeHistoryResponse *out;
	struct km_client_status st;

	if (km_client_query_probe_history(B->cl, r, &B->a, &out, &st))
		bench_die("QueryProbeHistory", st.message);
	snprintf(say, n, "%zu runs, %s", out->n_results,
		 out->next_page_token && *out->next_page_token
			 ? "more pages follow"
			 : "the last page");
}

/* Every page of r's window, timed whole, next to as many GetHealth calls
 * in a row. */
static void walk(struct bench *B, const char *name,
		 Kubemedic__V1__QueryProbeHistoryRequest *r)
{
	long w = B->c->walks, pages = 0;
	int64_t runs = 0, results = 0;

	for (long i = 0; i < 2 + w; i++) {
		int64_t t0 = km_mono_ns(), t1;
		long p = 0;

		r->page_token = "";
		runs = results = 0;
		do {
			Kubemedic__V1__QueryProbeHistoryResponse *out;
			struct km_client_status st;

			if (km_client_query_probe_history(B->cl, r, &B->a, &out,
							  &st))
				bench_die("QueryProbeHistory", st.message);
			p++;
			runs += (int64_t)out->n_results;
			for (size_t j = 0; j < out->n_results; j++)
				results += out->results[j]->count;
			r->page_token = out->next_page_token
						? out->next_page_token
						: "";
		} while (*r->page_token);
		t1 = km_mono_ns();
		for (long j = 0; j < p; j++)
			get_health(B);
		if (i >= 2) {
			B->v[i - 2] = t1 - t0;
			B->b[i - 2] = km_mono_ns() - t1;
		}
		pages = p;
		r->page_token = "";
		km_arena_reset(&B->a);
	}
	{
		char base[64];

		snprintf(base, sizeof base, "GetHealth x %ld", pages);
		bench_report(name, B->v, w, base, B->b, w);
	}
	printf("  (%ld pages, %lld runs of %lld results, %ld walks)\n", pages,
	       (long long)runs, (long long)results, w);
}

static void latency(struct bench *B, void *arg, char *say, size_t n)
{
	Kubemedic__V1__QueryLatencyRequest *r = arg;
	Kubemedic__V1__QueryLatencyResponse *out;
	struct km_client_status st;
	int64_t count = 0, failed = 0;

	if (km_client_query_latency(B->cl, r, &B->a, &out, &st))
		bench_die("QueryLatency", st.message);
	for (size_t i = 0; i < out->n_steps; i++) {
		count += out->steps[i]->count;
		failed += out->steps[i]->failures;
	}
	snprintf(say, n, "%zu steps, %lld results, %lld failed%s", out->n_steps,
		 (long long)count, (long long)failed,
		 out->coarse_until_time ? ", coarse hours" : "");
}

static void availability(struct bench *B, void *arg, char *say, size_t n)
{
	Kubemedic__V1__GetAvailabilityRequest *r = arg;
	Kubemedic__V1__Availability *out;
	struct km_client_status st;

	if (km_client_get_availability(B->cl, r, &B->a, &out, &st))
		bench_die("GetAvailability", st.message);
	snprintf(say, n,
		 "%.3f %% uptime, %d incidents, %lld results, %lld failed",
		 out->uptime_percent, out->incidents, (long long)out->results,
		 (long long)out->failed_results);
}

static void bench_grpc(const struct cfg *c, const char *db, int64_t end)
{
	struct bench_daemon d = {0};
	struct km_client_status st;
	struct bench B = {.c = c};
	long nv = c->calls > c->walks ? c->calls : c->walks;
	int64_t start = end - c->days * DAY;
	/* A start that is a whole hour, and the same window's hours. */
	int64_t hstart = (start + HOUR - 1) / HOUR * HOUR,
		hend = end / HOUR * HOUR;
	Google__Protobuf__Timestamp from = bench_ts(start), to = bench_ts(end),
				    hfrom = bench_ts(hstart),
				    hto = bench_ts(hend);
	Kubemedic__V1__QueryProbeHistoryRequest q =
		KUBEMEDIC__V1__QUERY_PROBE_HISTORY_REQUEST__INIT;
	Kubemedic__V1__QueryLatencyRequest l =
		KUBEMEDIC__V1__QUERY_LATENCY_REQUEST__INIT;
	Kubemedic__V1__GetAvailabilityRequest av =
		KUBEMEDIC__V1__GET_AVAILABILITY_REQUEST__INIT;
	double quantiles[] = {0.5, 0.99};
	char name[64];

	B.v = calloc((size_t)nv, sizeof *B.v);
	B.b = calloc((size_t)nv, sizeof *B.b);
	if (!B.v || !B.b)
		bench_die("grpc", "out of memory");
	bench_daemon_start(c->kubemedicd, c->dir, db, &d);
	printf("grpc: kubemedicd at %s\n", d.addr);
	if (km_client_open(d.addr, &B.cl, &st))
		bench_die("client", st.message);
	km_arena_init(&B.a, 1 << 20);
	B.hreq = (Kubemedic__V1__GetHealthRequest)
		KUBEMEDIC__V1__GET_HEALTH_REQUEST__INIT;
	B.hreq.target = TARGET;

	q.target = TARGET;
	q.start_time = &from;
	q.end_time = &to;
	q.order = KUBEMEDIC__V1__ORDER__ORDER_NEWEST_FIRST;
	q.page_size = 100;
	measure(&B, "QueryProbeHistory, page 100", history_page, &q);
	q.page_size = 0;
	measure(&B, "QueryProbeHistory, page unset", history_page, &q);
	q.page_size = 1000;
	measure(&B, "QueryProbeHistory, page 1000", history_page, &q);
	q.page_size = 100;
	q.outcome = KUBEMEDIC__V1__OUTCOME__OUTCOME_FAILURE;
	measure(&B, "QueryProbeHistory, failures, 100", history_page, &q);
	q.outcome = KUBEMEDIC__V1__OUTCOME__OUTCOME_UNSPECIFIED;
	walk(&B, "all pages, page 100", &q);
	q.page_size = 1000;
	walk(&B, "all pages, page 1000", &q);
	q.page_size = 100;
	q.outcome = KUBEMEDIC__V1__OUTCOME__OUTCOME_FAILURE;
	walk(&B, "all pages of failures, page 100", &q);

	l.target = TARGET;
	l.quantiles = quantiles;
	l.n_quantiles = 2;
	for (int aligned = 0; aligned < 2; aligned++)
		for (int day = 0; day < 2; day++) {
			l.start_time = aligned ? &hfrom : &from;
			l.end_time = aligned ? &hto : &to;
			l.step_seconds = day ? 86400 : 3600;
			snprintf(name, sizeof name,
				 "QueryLatency, 1 %s steps%s",
				 day ? "day" : "h", aligned ? ", whole h" : "");
			measure(&B, name, latency, &l);
		}

	av.target = TARGET;
	av.start_time = &from;
	av.end_time = &to;
	measure(&B, "GetAvailability, no steps", availability, &av);

	km_arena_free(&B.a);
	km_client_close(B.cl);
	bench_daemon_stop(&d);
	free(B.v);
	free(B.b);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"days", required_argument, NULL, 'D'},
		{"period", required_argument, NULL, 'p'},
		{"others", required_argument, NULL, 'k'},
		{"others-period", required_argument, NULL, 'P'},
		{"flush", required_argument, NULL, 'f'},
		{"seed", required_argument, NULL, 's'},
		{"calls", required_argument, NULL, 'c'},
		{"walks", required_argument, NULL, 'w'},
		{"kubemedicd", required_argument, NULL, 'd'},
		{"dir", required_argument, NULL, 'r'},
		{"keep", no_argument, NULL, 'K'},
		{0},
	};
	struct cfg c = {.days = 30,
			.others = 100,
			.calls = 200,
			.walks = 50,
			.period_us = 10 * S,
			.others_period_us = 10 * S,
			.flush_us = 3600 * S,
			.seed = 12,
			.kubemedicd = "./build/kubemedicd"};
	char db[4096], tmpl[] = "/tmp/bench-history-read-XXXXXX";
	int64_t end = km_now_us();
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'D': c.days = atol(optarg); break;
		case 'p': c.period_us = atol(optarg) * S; break;
		case 'k': c.others = atol(optarg); break;
		case 'P': c.others_period_us = atol(optarg) * S; break;
		case 'f': c.flush_us = atol(optarg) * S; break;
		case 's': c.seed = strtoull(optarg, NULL, 10); break;
		case 'c': c.calls = atol(optarg); break;
		case 'w': c.walks = atol(optarg); break;
		case 'd': c.kubemedicd = optarg; break;
		case 'r': c.dir = optarg; break;
		case 'K': c.keep = true; break;
		default:
			fprintf(stderr,
				"usage: bench_history_read [--days D] "
				"[--period S] [--others K] [--others-period "
				"S] [--flush S] [--seed N] [--calls C] "
				"[--walks W] [--kubemedicd PATH] [--dir DIR] "
				"[--keep]\n");
			return 2;
		}
	}
	if (c.days < 1 || c.days > 365 || c.period_us < S || c.others < 0 ||
	    c.others_period_us < c.period_us ||
	    c.others_period_us % c.period_us || c.flush_us < S || c.calls < 1 ||
	    c.walks < 1)
		bench_die("arguments",
			  "want 1 <= D <= 365, S >= 1, K >= 0, an others' "
			  "period a multiple of S, flush >= 1, C >= 1, "
			  "W >= 1");
	km_log_setup(KM_LOG_WARN, false);
	if (!c.dir) {
		if (!(c.dir = mkdtemp(tmpl)))
			bench_die("mkdtemp", strerror(errno));
		c.made_dir = true;
	}
	snprintf(db, sizeof db, "%s/km.db", c.dir);

	fill(&c, db, end);
	bench_grpc(&c, db, end);
	if (c.made_dir && !c.keep) {
		char cmd[4200];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", c.dir);
		if (system(cmd))
			fprintf(stderr, "could not remove %s\n", c.dir);
	}
	return 0;
}
