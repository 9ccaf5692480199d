/*
 * bench_availability — GetAvailability over a year of history, through the
 * storage reader in this process and through real gRPC to a kubemedicd,
 * each next to a baseline measured in the same run.
 *
 *   bench_availability [--transitions N] [--others K] [--recoveries R]
 *                      [--calls C] [--kubemedicd PATH] [--dir DIR] [--keep]
 *
 * The database: km_store_open in DIR (default a fresh directory under
 * /tmp, removed at the end unless --keep; a DIR given must not hold a
 * km.db yet), one target pod/bench/web-0 created a year and a day ago with N
 * transitions (default 20,000) spread over the year — HEALTHY, then
 * UNHEALTHY or DEGRADED for a while, HEALTHY again, ... — and R recoveries
 * (default 1,000) of its five actions, half of them VERIFIED; K other
 * targets (default 9) with N transitions each, interleaved in time, so the
 * index holds what a fleet's does. All written through the store's writer.
 *
 * Cases, C calls each (default 200), after 10 unmeasured ones, medians and
 * 99th percentiles of each call's time:
 *  - reader:  km_reader_find_target + km_reader_add_availability over the
 *             year (no steps, then 1,000 steps), in one read transaction,
 *             next to the baseline scan: a bare prepared SQLite statement
 *             stepping the same target's transitions in the same window
 *             and order (what any computation must read at least), on a
 *             read-only connection of its own; and, for reference, the
 *             same scan of the index alone (what a covering index would
 *             cost: the schema's index lacks to_state);
 *  - grpc:    kubemedicd (PATH, default ./build/kubemedicd) started on
 *             127.0.0.1:0 over the same database; GetAvailability of the
 *             target over the year (no steps, then 1,000 steps) through
 *             km_client, next to GetHealth of the same target (answered
 *             from memory: the floor of a call on this machine).
 * Ratios are kubemedic / baseline. Nothing here asserts a time.
 */
#include <errno.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "km_client.h"
#include "km_log.h"
#include "km_store.h"
#include "km_time.h"

#define S 1000000LL
#define DAY (86400 * S)
#define YEAR (365 * DAY)
#define TARGET "pod/bench/web-0"
#define WARMUP 10

struct cfg {
	long n, others, recoveries, calls;
	const char *kubemedicd;
	char *dir;
	bool made_dir; /* removed at the end unless --keep */
	bool keep;
};

/* ---- the database -------------------------------------------------------- */

/* State i of a target's cycle: up most of the time, down or degraded in
 * between. */
static int cycle_state(long i)
{
	static const int c[] = {KM_STATE_HEALTHY, KM_STATE_UNHEALTHY,
				KM_STATE_HEALTHY, KM_STATE_DEGRADED};

	return c[i % 4];
}

static void fill(const struct cfg *c, const char *db, int64_t now)
{
	struct km_store_options o = {.path = db, .sync_normal = true};
	struct km_store *s;
	struct km_error err = {0};
	struct km_arena a;
	int64_t start = now - YEAR - DAY, gap = YEAR / c->n;
	int64_t *ids = calloc((size_t)c->others + 1, sizeof *ids);

	if (!ids)
		bench_die("fill", "out of memory");
	if (km_store_open(&o, &s, &err))
		bench_die("open", err.msg);
	for (long k = 0; k <= c->others; k++) {
		char name[64];
		struct km_target t = {.name = name, .created_us = start};

		if (k)
			snprintf(name, sizeof name, "pod/bench/other-%ld", k);
		else
			snprintf(name, sizeof name, "%s", TARGET);
		if (km_store_ensure_target(s, &t, &err))
			bench_die("target", err.msg);
		ids[k] = t.id;
	}
	for (long i = 0; i < c->n; i++) {
		for (long k = 0; k <= c->others; k++) {
			struct km_transition t = {
				.target_id = ids[k],
				.at_us = start + DAY + i * gap + k * 1000,
				.from_state = i ? cycle_state(i - 1)
						: KM_STATE_UNKNOWN,
				.to_state = cycle_state(i),
				.cause = "bench"};

			if (km_store_add_transition(s, &t))
				bench_die("transition", "refused");
		}
		if (i % 2000 == 1999 && km_store_flush(s, &err))
			bench_die("flush", err.msg);
	}
	if (km_store_flush(s, &err))
		bench_die("flush", err.msg);
	km_arena_init(&a, 4096);
	for (long i = 0; i < c->recoveries; i++) {
		struct km_recovery r = {
			.target = TARGET,
			.action = (int)(i % KM_ACTION_MAX) + 1,
			.reason = "bench",
			.requester = "policy:bench",
			.created_us = start + DAY + i * (YEAR / c->recoveries)};
		struct km_recovery_update u = {0};

		if (km_store_create_recovery(s, &r, &a, NULL, &err))
			bench_die("recovery", err.msg);
		u.id = r.id;
		u.phase = i % 2 ? KM_PHASE_VERIFIED : KM_PHASE_NOT_RECOVERED;
		u.at_us = r.created_us + 60 * S;
		if (km_store_update_recovery(s, &u, &err))
			bench_die("recovery update", err.msg);
		km_arena_reset(&a);
	}
	km_arena_free(&a);
	km_store_close(s);
	free(ids);
}

/* ---- in-process: the reader next to a bare scan -------------------------- */

static int64_t avail_once(struct km_reader *r, struct km_arena *a,
			  const struct km_avail_query *q, int64_t *up,
			  int64_t *obs, struct km_avail *out)
{
	struct km_error err = {0};
	struct km_avail acc = {.step_up_us = up, .step_observed_us = obs};
	struct km_target t;
	int64_t t0 = km_mono_ns();

	if (q->n_steps) {
		memset(up, 0, q->n_steps * sizeof *up);
		memset(obs, 0, q->n_steps * sizeof *obs);
	}
	if (km_reader_begin(r, &err) ||
	    km_reader_find_target(r, TARGET, a, &t, &err) ||
	    km_reader_add_availability(r, &t, q, &acc, &err))
		bench_die("availability", err.msg);
	km_reader_end(r);
	km_arena_reset(a);
	*out = acc;
	return km_mono_ns() - t0;
}

static int64_t scan_once(sqlite3_stmt *st, int64_t id, int64_t from, int64_t to,
			 uint64_t *sum)
{
	int64_t t0 = km_mono_ns();
	int rc;

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*sum += (uint64_t)sqlite3_column_int64(st, 0) +
			(uint64_t)sqlite3_column_int(st, 1);
	if (rc != SQLITE_DONE)
		bench_die("scan", sqlite3_errstr(rc));
	sqlite3_reset(st);
	return km_mono_ns() - t0;
}

static void bench_reader(const struct cfg *c, const char *db, int64_t now)
{
	struct km_store_options o = {.path = db};
	struct km_store *s;
	struct km_reader *r;
	struct km_error err = {0};
	struct km_arena a;
	struct km_avail res;
	struct km_avail_query q = {.from_us = now - YEAR,
				   .to_us = now,
				   .now_us = now};
	int64_t *v = calloc((size_t)c->calls, sizeof *v);
	int64_t *b = calloc((size_t)c->calls, sizeof *b);
	int64_t *b2 = calloc((size_t)c->calls, sizeof *b2);
	int64_t *up = calloc(KM_AVAIL_MAX_STEPS, sizeof *up);
	int64_t *obs = calloc(KM_AVAIL_MAX_STEPS, sizeof *obs);
	uint64_t sum = 0;
	int64_t id;
	sqlite3 *raw;
	sqlite3_stmt *st, *st2;
	struct km_target t;

	if (!v || !b || !b2 || !up || !obs)
		bench_die("reader", "out of memory");
	if (km_store_open(&o, &s, &err) || km_reader_open(s, &r, &err))
		bench_die("open", err.msg);
	km_arena_init(&a, 65536);
	if (km_reader_find_target(r, TARGET, &a, &t, &err))
		bench_die("find", err.msg);
	id = t.id;
	/* The reader's cache size, for a fair comparison. The second
	 * statement reads the index alone: what a covering index (target_id,
	 * at, to_state) would cost — the schema has none (each row's
	 * to_state is a lookup in the table). */
	if (sqlite3_open_v2(db, &raw, SQLITE_OPEN_READONLY, NULL) ||
	    sqlite3_exec(raw, "PRAGMA cache_size=-16384", NULL, NULL, NULL) ||
	    sqlite3_prepare_v2(raw,
			       "SELECT at, to_state FROM transitions WHERE "
			       "target_id = ?1 AND at > ?2 AND at < ?3 ORDER "
			       "BY at, seq",
			       -1, &st, NULL) ||
	    sqlite3_prepare_v2(raw,
			       "SELECT at, 0 FROM transitions WHERE "
			       "target_id = ?1 AND at > ?2 AND at < ?3 ORDER "
			       "BY at, seq",
			       -1, &st2, NULL))
		bench_die("baseline", sqlite3_errmsg(raw));

	for (int steps = 0; steps < 2; steps++) {
		q.step_us = steps ? (YEAR + KM_AVAIL_MAX_STEPS - 1) /
					    KM_AVAIL_MAX_STEPS
				  : 0;
		q.n_steps = steps ? KM_AVAIL_MAX_STEPS : 0;
		for (long i = 0; i < WARMUP; i++) {
			avail_once(r, &a, &q, up, obs, &res);
			scan_once(st, id, q.from_us, q.to_us, &sum);
		}
		/* Interleaved, so both see the same machine. */
		for (long i = 0; i < c->calls; i++) {
			v[i] = avail_once(r, &a, &q, up, obs, &res);
			b[i] = scan_once(st, id, q.from_us, q.to_us, &sum);
			b2[i] = scan_once(st2, id, q.from_us, q.to_us, &sum);
		}
		if (!steps)
			printf("reader: the year holds %.3f%% uptime, %lld "
			       "incidents, %lld s observed; scan checksum "
			       "%lld\n",
			       100.0 * (double)res.up_us /
				       (double)res.observed_us,
			       (long long)res.incidents,
			       (long long)(res.observed_us / S),
			       (long long)(sum % 1000));
		bench_report(steps ? "reader, 1000 steps" : "reader, no steps",
			     v, c->calls, "bare SQLite scan", b, c->calls);
		if (!steps)
			bench_report("reader, no steps", v, c->calls,
				     "index-only scan", b2, c->calls);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(st2);
	sqlite3_close(raw);
	km_arena_free(&a);
	km_reader_close(r);
	km_store_close(s);
	free(v);
	free(b);
	free(b2);
	free(up);
	free(obs);
}

/* ---- through gRPC --------------------------------------------------------- */

static void bench_grpc(const struct cfg *c, const char *db)
{
	struct bench_daemon d = {0};
	struct km_client *cl;
	struct km_client_status st;
	struct km_arena a;
	int64_t now = km_now_us();
	Google__Protobuf__Timestamp from = bench_ts(now - YEAR),
				    to = bench_ts(now);
	Kubemedic__V1__GetAvailabilityRequest areq =
		KUBEMEDIC__V1__GET_AVAILABILITY_REQUEST__INIT;
	Kubemedic__V1__GetHealthRequest hreq =
		KUBEMEDIC__V1__GET_HEALTH_REQUEST__INIT;
	int64_t *v = calloc((size_t)c->calls, sizeof *v);
	int64_t *b = calloc((size_t)c->calls, sizeof *b);

	if (!v || !b)
		bench_die("grpc", "out of memory");
	bench_daemon_start(c->kubemedicd, c->dir, db, &d);
	printf("grpc: kubemedicd at %s\n", d.addr);
	if (km_client_open(d.addr, &cl, &st))
		bench_die("client", st.message);
	km_arena_init(&a, 65536);
	areq.target = TARGET;
	areq.start_time = &from;
	areq.end_time = &to;
	hreq.target = TARGET;
	for (int steps = 0; steps < 2; steps++) {
		Kubemedic__V1__Availability *av = NULL;
		Kubemedic__V1__TargetHealth *h;

		/* A year in 1,000 steps: 31,536 s each. */
		areq.step_seconds = steps ? YEAR / S / KM_AVAIL_MAX_STEPS : 0;
		for (long i = 0; i < WARMUP + c->calls; i++) {
			int64_t t0 = km_mono_ns(), t1;

			if (km_client_get_availability(cl, &areq, &a, &av, &st))
				bench_die("GetAvailability", st.message);
			t1 = km_mono_ns();
			if (km_client_get_health(cl, &hreq, &a, &h, &st))
				bench_die("GetHealth", st.message);
			if (i >= WARMUP) {
				v[i - WARMUP] = t1 - t0;
				b[i - WARMUP] = km_mono_ns() - t1;
			}
			if (i + 1 < WARMUP + c->calls)
				km_arena_reset(&a);
		}
		if (!steps)
			printf("grpc: %.3f%% uptime, %d incidents, MTTR %lld "
			       "s, %zu actions\n",
			       av->uptime_percent, av->incidents,
			       (long long)av->mttr_seconds, av->n_actions);
		else
			printf("grpc: %zu steps\n", av->n_steps);
		km_arena_reset(&a);
		bench_report(steps ? "GetAvailability, 1000 steps"
				   : "GetAvailability, no steps",
			     v, c->calls, "GetHealth", b, c->calls);
	}
	km_arena_free(&a);
	km_client_close(cl);
	bench_daemon_stop(&d);
	free(v);
	free(b);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"transitions", required_argument, NULL, 'n'},
		{"others", required_argument, NULL, 'k'},
		{"recoveries", required_argument, NULL, 'r'},
		{"calls", required_argument, NULL, 'c'},
		{"kubemedicd", required_argument, NULL, 'd'},
		{"dir", required_argument, NULL, 'D'},
		{"keep", no_argument, NULL, 'K'},
		{0},
	};
	struct cfg c = {.n = 20000,
			.others = 9,
			.recoveries = 1000,
			.calls = 200,
			.kubemedicd = "./build/kubemedicd"};
	char db[4096], tmpl[] = "/tmp/bench-availability-XXXXXX";
	int64_t now = km_now_us(), t0;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'n': c.n = atol(optarg); break;
		case 'k': c.others = atol(optarg); break;
		case 'r': c.recoveries = atol(optarg); break;
		case 'c': c.calls = atol(optarg); break;
		case 'd': c.kubemedicd = optarg; break;
		case 'D': c.dir = optarg; break;
		case 'K': c.keep = true; break;
		default:
			fprintf(stderr,
				"usage: bench_availability [--transitions N] "
				"[--others K] [--recoveries R] [--calls C] "
				"[--kubemedicd PATH] [--dir DIR] [--keep]\n");
			return 2;
		}
	}
	if (c.n < 4 || c.others < 0 || c.recoveries < 1 || c.calls < 1)
		bench_die("arguments", "want N >= 4, K >= 0, R >= 1, C >= 1");
	km_log_setup(KM_LOG_WARN, false);
	if (!c.dir) {
		if (!(c.dir = mkdtemp(tmpl)))
			bench_die("mkdtemp", strerror(errno));
		c.made_dir = true;
	}
	snprintf(db, sizeof db, "%s/km.db", c.dir);

	t0 = km_mono_ns();
	fill(&c, db, now);
	printf("fill: %ld targets x %ld transitions over a year, %ld "
	       "recoveries: %.1f s\n",
	       c.others + 1, c.n, c.recoveries,
	       (double)(km_mono_ns() - t0) / 1e9);
	bench_reader(&c, db, now);
	bench_grpc(&c, db);
	if (c.made_dir && !c.keep) {
		char cmd[4200];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", c.dir);
		if (system(cmd))
			fprintf(stderr, "could not remove %s\n", c.dir);
	}
	return 0;
}
