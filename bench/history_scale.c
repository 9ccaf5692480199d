/*
 * bench_history_scale — bytes on disk and writer CPU per probe result,
 * runs and rollups (issue 12) next to one `results` row per result (the
 * baseline), the same generated stream through the real store, in one
 * process.
 *
 *   bench_history_scale [--targets N] [--days D] [--baseline-days B]
 *                       [--fail-rate F] [--burst-mean L] [--seed S]
 *                       [--max-lead SECONDS] [--flush-every K]
 *                       [--flush-s SECONDS] [--only baseline|runs]
 *                       [--dir DIR] [--keep]
 *
 * D and B are days, or take a unit: 30m, 6h, 2d. Defaults: 10,000
 * targets, D = 3 hours, B = 10 minutes (about 5 minutes on 2 cores;
 * bench/RESULTS.md has --days 6h).
 *
 * The stream. N targets (probe//svc-00000 ...) probed every second, their
 * first runs spread over the second (target i at i/N s past each second),
 * fed in time order: every target's result of second t, then t+1, ...,
 * from 2026-11-01T00:00:00Z, for D simulated days (runs mode) or the
 * first B days of the same stream (baseline). Seeded (--seed): the same
 * arguments give the same results, byte for byte.
 *  - Durations: log-normal. Each target has its own median, 2 ms ×
 *    e^(0.5·Z) (half the targets between 1.4 and 2.8 ms), and each result
 *    is its target's median × e^(0.3·Z).
 *  - Failures: a fraction F (default 1%) of results, in bursts. A healthy
 *    target starts a burst at each probe with probability
 *    q = F / (L·(1 − F) + F); a burst lasts 1 + Geometric probes, mean L
 *    (default 10: 10% are a lone failure, half end within 7 probes, 4%
 *    last over 30 s). A burst has one failure kind, drawn when it starts,
 *    with the prober's own messages for a target at 10.x.y.z:8080:
 *      45% HTTP 503  "HTTP probe failed with statuscode: 503; body: no
 *                    healthy upstream" (duration ~ the target's)
 *      25% refused   "connect to 10.0.3.7:8080: Connection refused"
 *                    (100-400 µs)
 *      20% timeout   "timed out after 1000 ms (waiting for the response of
 *                    10.0.3.7:8080)" (1 s + up to 2 ms)
 *      10% HTTP 500  "HTTP probe failed with statuscode: 500; body:
 *                    {"status":"DOWN"}"
 *    So every burst is one failure run between two success runs: runs per
 *    result ≈ 2·F/L (0.2% by default).
 *
 * The clock. options.now_us is the simulated clock: the start of the
 * newest result added. The writer's flushes (options.flush_us, 10 s) and
 * rollup hours follow it, not the wall clock.
 *
 * Pacing. km_store_add_result drops the oldest result when its ring
 * (65,536) is full, and this producer is far faster than the writer. It
 * must not outrun it, nor flush it: km_store_flush writes every open
 * target that changed (the run's row and both rollup rows), so flushing
 * every few simulated seconds would write each target more often than
 * the daemon's flush_us does and overstate the writer's CPU. So before
 * adding a simulated second's results the producer waits (sleeping 200 µs
 * at a time) until the ring holds at most --max-lead − 1 seconds' worth
 * (default --max-lead 2; never more than fits): what the writer sees of
 * the clock is at most that far ahead of the results it folds, its
 * batches span little simulated time, and a target's rows are rewritten
 * about every flush_us (--flush-s, default 10 s) of simulated time, as in
 * the daemon. The output's "cadence" line checks it: rollup rewrites per
 * target per flush_us, 1 in the daemon (a writer batch spanning more
 * simulated time than that delays each due flush: 0.85 with 1,000
 * targets and --max-lead 5).
 * km_store_flush is called only at the half-way point and at the end,
 * before measuring. With --flush-every K the producer calls km_store_flush
 * instead, at the end of a second once K more results would not fit, and
 * at least every --max-lead seconds (the first version of this
 * benchmark; kept to show what flushing costs). stats.results_dropped
 * must be 0 (checked).
 *
 * What is measured, per mode, from the first result to the last flush
 * (the close, which writes every open run once more, is outside):
 *  - bytes per result: the database's used bytes, (page_count −
 *    freelist_count) × page_size through a second connection (it sees the
 *    WAL too), less the used bytes before the first result (schema and
 *    the N targets); at the end also the file's size after km_store_close
 *    and PRAGMA wal_checkpoint(TRUNCATE) on a connection of our own, and
 *    the bytes of each table and index (the dbstat virtual table);
 *  - writer CPU per result: stats.writer_cpu_ns, and the km-writer
 *    thread's utime+stime from /proc (a cross-check, 10 ms ticks); the
 *    process's CPU (getrusage: the generator too) for context;
 *  - wall time and results/s;
 *  - memory: stats.runs_open, VmRSS growth, malloc's bytes in use
 *    (mallinfo2) less SQLite's own (sqlite3_memory_used: mostly its page
 *    cache, up to cache_size = 64 MiB) = what the writer keeps per target.
 * Each mode is measured at half its length too: bytes and CPU per result
 * should not depend on the length (the baseline's are per row; runs
 * mode's are per target-second).
 *
 * Extrapolation to 10,000 targets × 30 days: a target's rows do not depend
 * on how many other targets there are (only the B-trees' depth does, by
 * one level at most), so the per target-day bytes of each table, measured
 * here, times targets × days, is the size. Printed for 10,000 targets over
 * 30 days and over a year; see bench/RESULTS.md.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "km_log.h"
#include "km_store.h"
#include "km_time.h"

#define US_S 1000000LL
#define DAY_S 86400LL
/* 2026-11-01T00:00:00Z: a midnight, so hour and day rollups start whole. */
#define SIM_T0_US (1793491200LL * US_S)
#define RING 65536

struct cfg {
	int targets;
	double days, baseline_days;
	double fail_rate, burst_mean;
	uint64_t seed;
	long long flush_every;
	int max_lead_s;
	double flush_s; /* options.flush_us, in seconds */
	const char *only;
	const char *dir;
	bool keep;
};

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_history_scale: %s: %s\n", what, msg);
	exit(1);
}

/* ---- the stream ------------------------------------------------------- */

enum kind { K_503, K_REFUSED, K_TIMEOUT, K_500 };

struct tgt {
	int64_t id;
	double median_us;
	uint32_t burst_left; /* failures still to come in this burst */
	uint8_t kind;
	char ip[16];
};

struct gen {
	uint64_t s[4]; /* xoshiro256** */
	int n;
	struct tgt *t;
	double start_p;   /* q: a healthy probe starts a burst */
	double cont_ln;   /* ln(1 − 1/L): the burst's geometric tail */
	double z03[4096]; /* e^(0.3·Z), Z standard normal, for durations */
	int64_t second;   /* the next simulated second to generate */
	long long failures, bursts; /* what was generated: a check */
	char msg[160];
};

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(struct gen *g)
{
	uint64_t *s = g->s, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform in (0, 1]. */
static double unif(struct gen *g)
{
	return ((double)(rnd(g) >> 11) + 1.0) / 9007199254740992.0;
}

static double normal(struct gen *g)
{
	return sqrt(-2 * log(unif(g))) * cos(2 * M_PI * unif(g));
}

static void gen_init(struct gen *g, const struct cfg *c, const int64_t *ids)
{
	uint64_t x = c->seed;
	double l = c->burst_mean;

	memset(g, 0, sizeof *g);
	for (int i = 0; i < 4; i++) { /* splitmix64 */
		uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
		g->s[i] = z ^ (z >> 31);
	}
	g->n = c->targets;
	g->t = calloc((size_t)c->targets, sizeof *g->t);
	if (!g->t)
		die("calloc", "targets");
	for (int i = 0; i < 4096; i++)
		g->z03[i] = exp(0.3 * normal(g));
	for (int i = 0; i < c->targets; i++) {
		g->t[i].id = ids[i];
		g->t[i].median_us = 2000.0 * exp(0.5 * normal(g));
		snprintf(g->t[i].ip, sizeof g->t[i].ip, "10.%d.%d.%d",
			 (i >> 16) & 255, (i >> 8) & 255, (i & 255));
	}
	/* A healthy streak lasts (1 − q)/q probes on average, a burst L:
	 * F = L / (L + (1 − q)/q). */
	g->start_p = c->fail_rate / (l * (1 - c->fail_rate) + c->fail_rate);
	g->cont_ln = l > 1 ? log(1 - 1 / l) : 0;
}

static void gen_free(struct gen *g)
{
	free(g->t);
}

static int64_t jitter_dur(struct gen *g, double median_us)
{
	int64_t d = (int64_t)(median_us * g->z03[rnd(g) >> 52]);
	return d < 20 ? 20 : d;
}

/* Target i's result of simulated second g->second. */
static void gen_result(struct gen *g, int i, struct km_result *r)
{
	struct tgt *t = &g->t[i];

	memset(r, 0, sizeof *r);
	r->target_id = t->id;
	r->started_us = SIM_T0_US + g->second * US_S + (int64_t)i * US_S / g->n;
	if (!t->burst_left && unif(g) < g->start_p) {
		uint32_t p = (uint32_t)(rnd(g) >> 32) % 100;

		t->burst_left = 1;
		if (g->cont_ln < 0)
			t->burst_left +=
				(uint32_t)floor(log(unif(g)) / g->cont_ln);
		t->kind = p < 45   ? K_503
			  : p < 70 ? K_REFUSED
			  : p < 90 ? K_TIMEOUT
				   : K_500;
		g->bursts++;
	}
	if (!t->burst_left) {
		r->success = true;
		r->status_code = 200;
		r->duration_us = jitter_dur(g, t->median_us);
		return;
	}
	t->burst_left--;
	g->failures++;
	r->success = false;
	r->message = g->msg;
	switch (t->kind) {
	case K_503:
		r->error_class = KM_EC_HTTP_STATUS;
		r->status_code = 503;
		r->duration_us = jitter_dur(g, t->median_us);
		snprintf(g->msg, sizeof g->msg,
			 "HTTP probe failed with statuscode: 503; body: no "
			 "healthy upstream");
		break;
	case K_REFUSED:
		r->error_class = KM_EC_REFUSED;
		r->duration_us = 100 + (int64_t)(rnd(g) % 300);
		snprintf(g->msg, sizeof g->msg,
			 "connect to %s:8080: Connection refused", t->ip);
		break;
	case K_TIMEOUT:
		r->error_class = KM_EC_TIMEOUT;
		r->duration_us = US_S + (int64_t)(rnd(g) % 2000);
		snprintf(g->msg, sizeof g->msg,
			 "timed out after 1000 ms (waiting for the response "
			 "of %s:8080)",
			 t->ip);
		break;
	default:
		r->error_class = KM_EC_HTTP_STATUS;
		r->status_code = 500;
		r->duration_us = jitter_dur(g, t->median_us);
		snprintf(g->msg, sizeof g->msg,
			 "HTTP probe failed with statuscode: 500; body: "
			 "{\"status\":\"DOWN\"}");
		break;
	}
}

/* ---- measuring -------------------------------------------------------- */

static _Atomic int64_t sim_now_us;

static int64_t sim_clock(void *arg)
{
	(void)arg;
	return atomic_load_explicit(&sim_now_us, memory_order_relaxed);
}

static double mono_s(void)
{
	return (double)km_mono_ns() / 1e9;
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t process_cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* The km-writer thread's utime + stime from /proc, in ns (0: not found). */
static int64_t proc_writer_cpu_ns(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int64_t ns = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char p[300], buf[1024], *q;
		FILE *f;
		unsigned long long ut, st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "/proc/self/task/%s/stat", e->d_name);
		if (!(f = fopen(p, "r")))
			continue;
		if (!fgets(buf, sizeof buf, f)) {
			fclose(f);
			continue;
		}
		fclose(f);
		if (!strstr(buf, "(km-writer)") || !(q = strrchr(buf, ')')))
			continue;
		/* After ") ": state, then fields 4.. ; utime, stime are 14, 15. */
		if (sscanf(q + 2,
			   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
			   "%llu",
			   &ut, &st) == 2)
			ns = (int64_t)(ut + st) *
			     (1000000000 / sysconf(_SC_CLK_TCK));
	}
	closedir(d);
	return ns;
}

/* Bytes this process has caused to be written to the disk (the WAL, its
 * checkpoints), from /proc/self/io; -1 if unknown. */
static long long disk_written(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[256];
	long long b = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "write_bytes: %lld", &b) == 1)
			break;
	fclose(f);
	return b;
}

static long long vm_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %lld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static long long heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return (long long)(mi.uordblks + mi.hblkhd);
}

static sqlite3 *open_ro(const char *path)
{
	sqlite3 *db;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 10000);
	return db;
}

static long long one_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die(sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Used bytes: pages in use × page size (the WAL's newest pages count). */
static long long used_bytes(const char *path)
{
	sqlite3 *db = open_ro(path);
	long long ps = one_int(db, "PRAGMA page_size");
	long long pc = one_int(db, "PRAGMA page_count");
	long long fl = one_int(db, "PRAGMA freelist_count");

	sqlite3_close(db);
	return (pc - fl) * ps;
}

static long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) ? -1 : (long long)st.st_size;
}

static void rm_db(const char *path)
{
	char p[4200];
	const char *sfx[] = {"", "-wal", "-shm", ".lock"};

	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s%s", path, sfx[i]);
		unlink(p);
	}
}

/* ---- one mode --------------------------------------------------------- */

struct point {
	int64_t seconds;
	long long results;
	double wall_s;
	long long bytes; /* used, less the bytes before the first result */
	int64_t writer_ns, proc_writer_ns, process_ns, gen_ns;
	long long written; /* bytes written to the disk */
	struct km_store_stats st;
};

struct tbl {
	char name[64];
	long long bytes, rows, payload;
};

/* One b-tree (a table or an index) of a history table. */
struct btree {
	char name[64], table[64];
	long long bytes, payload, unused, cells;
};

struct mode_out {
	const char *name;
	bool raw;
	struct point half, full;
	long long base_bytes; /* used bytes before the first result */
	long long file_bytes; /* after close + checkpoint(TRUNCATE) */
	long long rss_growth_kb, heap_growth, sqlite_growth;
	size_t runs_open;
	struct tbl t[32];
	int nt;
	struct btree bt[16];
	int nbt;
	/* What the runs hold: failure runs, their message bytes, and the
	 * histograms' bytes. */
	long long fail_runs, msg_bytes, hist_bytes;
	long long rows_runs, rows_minutes, rows_hours;
	int flushes;
	long long waits; /* producer sleeps for room in the ring */
	long long failures, bursts;
};

static void snap(struct point *p, struct km_store *s, const char *path,
		 const struct mode_out *m, double w0, int64_t wcpu0,
		 int64_t pwcpu0, int64_t pcpu0, int64_t gcpu0, long long io0)
{
	p->written = disk_written() - io0;
	km_store_get_stats(s, &p->st);
	p->wall_s = mono_s() - w0;
	p->writer_ns = (int64_t)p->st.writer_cpu_ns - wcpu0;
	p->proc_writer_ns = proc_writer_cpu_ns() - pwcpu0;
	p->process_ns = process_cpu_ns() - pcpu0;
	p->gen_ns = thread_cpu_ns() - gcpu0;
	p->bytes = used_bytes(path) - m->base_bytes;
}

static void table_bytes(struct mode_out *m, const char *path)
{
	sqlite3 *db = open_ro(path);
	sqlite3_stmt *st;
	/* Every b-tree, with the table it belongs to (an index's table). */
	const char *sql =
		"SELECT coalesce(s.tbl_name, d.name), sum(d.pgsize), "
		"sum(d.payload) FROM dbstat d LEFT JOIN sqlite_schema s "
		"ON s.name = d.name GROUP BY 1 ORDER BY 2 DESC";

	m->nt = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "no dbstat (%s): per-table bytes skipped\n",
			sqlite3_errmsg(db));
		sqlite3_close(db);
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW && m->nt < 32) {
		struct tbl *t = &m->t[m->nt++];
		char q[128];

		snprintf(t->name, sizeof t->name, "%s",
			 (const char *)sqlite3_column_text(st, 0));
		t->bytes = sqlite3_column_int64(st, 1);
		t->payload = sqlite3_column_int64(st, 2);
		t->rows = -1;
		if (strncmp(t->name, "sqlite_", 7) != 0) {
			snprintf(q, sizeof q, "SELECT count(*) FROM \"%s\"",
				 t->name);
			t->rows = one_int(db, q);
		}
	}
	sqlite3_finalize(st);
	/* The history tables' b-trees one by one: payload (what the rows
	 * hold), unused space in their pages, leaf cells. */
	m->nbt = 0;
	if (sqlite3_prepare_v2(
		    db,
		    "SELECT d.name, s.tbl_name, sum(d.pgsize), "
		    "sum(d.payload), sum(d.unused), sum(CASE WHEN "
		    "d.pagetype = 'leaf' THEN d.ncell ELSE 0 END) FROM dbstat "
		    "d JOIN sqlite_schema s ON s.name = d.name WHERE "
		    "s.tbl_name IN ('results', 'runs', 'rollup_minutes', "
		    "'rollup_hours', 'transitions') GROUP BY d.name "
		    "HAVING sum(d.payload) > 0 ORDER BY 2, 3 DESC",
		    -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW && m->nbt < 16) {
			struct btree *b = &m->bt[m->nbt++];

			snprintf(b->name, sizeof b->name, "%s",
				 (const char *)sqlite3_column_text(st, 0));
			snprintf(b->table, sizeof b->table, "%s",
				 (const char *)sqlite3_column_text(st, 1));
			b->bytes = sqlite3_column_int64(st, 2);
			b->payload = sqlite3_column_int64(st, 3);
			b->unused = sqlite3_column_int64(st, 4);
			b->cells = sqlite3_column_int64(st, 5);
		}
		sqlite3_finalize(st);
	}
	m->fail_runs = one_int(db, "SELECT count(*) FROM runs WHERE "
				   "success = 0");
	/* last_message is NULL when it equals the first (stored once). */
	m->msg_bytes = one_int(db, "SELECT coalesce(sum(coalesce(length("
				   "first_message), 0) + coalesce(length("
				   "last_message), 0)), 0) FROM runs");
	m->hist_bytes = one_int(db, "SELECT coalesce(sum(length(hist)), 0) "
				    "FROM runs");
	sqlite3_close(db);
}

static long long rows_of(const struct mode_out *m, const char *name)
{
	for (int i = 0; i < m->nt; i++)
		if (!strcmp(m->t[i].name, name))
			return m->t[i].rows;
	return 0;
}

/* Waits (sleeping 200 µs at a time) until at most room results are queued:
 * the producer never outruns the writer by more than that. Returns how
 * many sleeps it took. */
static long long wait_for_room(struct km_store *s, long long room)
{
	long long n = 0;

	for (;;) {
		struct km_store_stats st;

		km_store_get_stats(s, &st);
		if ((long long)st.result_queue_depth <= room)
			return n;
		nanosleep(&(struct timespec){0, 200000}, NULL);
		n++;
	}
}

static void ensure_targets(struct km_store *s, int n, int64_t *ids)
{
	const int chunk = 1000;
	struct km_target *t = calloc((size_t)chunk, sizeof *t);
	char(*names)[32] = calloc((size_t)chunk, sizeof *names);
	struct km_error err = {0};

	if (!t || !names)
		die("calloc", "targets");
	for (int at = 0; at < n; at += chunk) {
		int k = n - at < chunk ? n - at : chunk;

		memset(t, 0, (size_t)chunk * sizeof *t);
		for (int j = 0; j < k; j++) {
			snprintf(names[j], sizeof names[j], "probe//svc-%05d",
				 at + j);
			t[j].name = names[j];
			t[j].created_us = SIM_T0_US;
		}
		if (km_store_ensure_targets(s, t, (size_t)k, &err))
			die("km_store_ensure_targets", err.msg);
		for (int j = 0; j < k; j++)
			ids[at + j] = t[j].id;
	}
	free(names);
	free(t);
}

static void run_mode(const struct cfg *c, struct mode_out *m, double days)
{
	char path[4200];
	struct km_store_options so = {0};
	struct km_store *s;
	struct km_error err = {0};
	struct km_store_stats st0;
	struct gen g;
	int64_t *ids = calloc((size_t)c->targets, sizeof *ids);
	int64_t seconds = (int64_t)llround(days * DAY_S), half = seconds / 2;
	long long rss0, heap0, sq0, io0, since_flush = 0;
	int64_t wcpu0, pwcpu0, pcpu0, gcpu0, last_flush_s = 0;
	long long per_flush = c->flush_every;
	/* Results still queued when a second's are added: at most max_lead
	 * seconds' worth in all, and room for them in the ring. */
	long long room = (long long)c->targets * (c->max_lead_s - 1);
	double w0;

	if (!ids)
		die("calloc", "ids");
	if (per_flush + c->targets > RING)
		per_flush = RING - c->targets;
	if (room > RING - c->targets)
		room = RING - c->targets;
	snprintf(path, sizeof path, "%s/%s.db", c->dir, m->name);
	rm_db(path);
	atomic_store(&sim_now_us, SIM_T0_US);
	so.path = path;
	so.raw_results = m->raw;
	so.now_us = sim_clock;
	so.result_queue = RING;
	so.flush_us = (int64_t)(c->flush_s * US_S);
	if (km_store_open(&so, &s, &err))
		die("km_store_open", err.msg);
	ensure_targets(s, c->targets, ids);
	if (km_store_flush(s, &err))
		die("km_store_flush", err.msg);
	gen_init(&g, c, ids);
	m->base_bytes = used_bytes(path);
	rss0 = vm_rss_kb();
	heap0 = heap_in_use();
	sq0 = sqlite3_memory_used();
	km_store_get_stats(s, &st0);
	wcpu0 = (int64_t)st0.writer_cpu_ns;
	pwcpu0 = proc_writer_cpu_ns();
	pcpu0 = process_cpu_ns();
	io0 = disk_written();
	gcpu0 = thread_cpu_ns();
	w0 = mono_s();
	printf("%-8s %d targets x %lld simulated s (%.4g days) = %lld "
	       "results ...\n",
	       m->name, c->targets, (long long)seconds, days,
	       (long long)seconds * c->targets);
	fflush(stdout);
	for (g.second = 0; g.second < seconds; g.second++) {
		if (!per_flush)
			m->waits += wait_for_room(s, room);
		for (int i = 0; i < c->targets; i++) {
			struct km_result r;

			gen_result(&g, i, &r);
			atomic_store_explicit(&sim_now_us, r.started_us,
					      memory_order_relaxed);
			if (km_store_add_result(s, &r))
				die("km_store_add_result", "refused");
		}
		since_flush += c->targets;
		if ((per_flush &&
		     (since_flush + c->targets > per_flush ||
		      g.second + 1 - last_flush_s >= c->max_lead_s)) ||
		    g.second + 1 == half || g.second + 1 == seconds) {
			if (km_store_flush(s, &err))
				die("km_store_flush", err.msg);
			m->flushes++;
			since_flush = 0;
			last_flush_s = g.second + 1;
		}
		if (g.second + 1 == half || g.second + 1 == seconds) {
			struct point *p = g.second + 1 == half ? &m->half
							       : &m->full;

			p->seconds = g.second + 1;
			p->results = (long long)p->seconds * c->targets;
			snap(p, s, path, m, w0, wcpu0, pwcpu0, pcpu0, gcpu0,
			     io0);
		}
	}
	m->rss_growth_kb = vm_rss_kb() - rss0;
	m->heap_growth = heap_in_use() - heap0;
	m->sqlite_growth = sqlite3_memory_used() - sq0;
	m->runs_open = m->full.st.runs_open;
	m->failures = g.failures;
	m->bursts = g.bursts;
	gen_free(&g);
	km_store_close(s);
	{
		sqlite3 *db = open_ro(path);
		one_int(db, "PRAGMA wal_checkpoint(TRUNCATE)");
		sqlite3_close(db);
	}
	m->file_bytes = file_size(path);
	table_bytes(m, path);
	m->rows_runs = rows_of(m, "runs");
	m->rows_minutes = rows_of(m, "rollup_minutes");
	m->rows_hours = rows_of(m, "rollup_hours");
	if (!c->keep)
		rm_db(path);
	free(ids);
}

/* ---- reporting -------------------------------------------------------- */

static double per(double v, double n)
{
	return n > 0 ? v / n : 0;
}

static int64_t writer_ns(const struct point *p)
{
	/* stats.writer_cpu_ns when the store fills it in, else /proc's. */
	return p->writer_ns > 0 ? p->writer_ns : p->proc_writer_ns;
}

static void print_point(const char *label, const struct point *p)
{
	printf("%-13s %13lld %8.1f %10.0f %9.3f %8.0f %8.0f %9.0f %8.0f "
	       "%9.0f %7llu\n",
	       label, p->results, p->wall_s, per((double)p->results, p->wall_s),
	       per((double)p->bytes, (double)p->results),
	       per((double)p->writer_ns, (double)p->results),
	       per((double)p->proc_writer_ns, (double)p->results),
	       per((double)p->process_ns, (double)p->results),
	       per((double)p->gen_ns, (double)p->results),
	       p->written < 0 ? -1
			      : per((double)p->written, (double)p->results),
	       (unsigned long long)p->st.results_dropped);
}

/* The second half alone: what a result costs once the first half is
 * stored (the baseline's index inserts slow down as its B-trees outgrow
 * the page cache). */
static void print_second_half(const char *label, const struct point *h,
			      const struct point *f)
{
	struct point d = *f;

	d.results = f->results - h->results;
	d.wall_s = f->wall_s - h->wall_s;
	d.bytes = f->bytes - h->bytes;
	d.writer_ns = f->writer_ns - h->writer_ns;
	d.proc_writer_ns = f->proc_writer_ns - h->proc_writer_ns;
	d.process_ns = f->process_ns - h->process_ns;
	d.gen_ns = f->gen_ns - h->gen_ns;
	d.written = f->written - h->written;
	print_point(label, &d);
}

static const struct tbl *find_tbl(const struct mode_out *m, const char *name)
{
	for (int i = 0; i < m->nt; i++)
		if (!strcmp(m->t[i].name, name))
			return &m->t[i];
	return NULL;
}

static long long tbl_bytes(const struct mode_out *m, const char *name)
{
	const struct tbl *t = find_tbl(m, name);
	return t ? t->bytes : 0;
}

/* The probe history's tables; everything else (schema, targets, empty
 * tables: one page each) is there before the first result. */
static const char *const history[] = {"results", "runs", "rollup_minutes",
				      "rollup_hours", "transitions"};
#define N_HISTORY (sizeof history / sizeof *history)

/* Bytes per target-day of one history table. A row of rollup_hours holds
 * a target-day's hours: when the run is shorter than a day (it starts at
 * midnight), its rows hold only the first ceil(hours) of them, and a
 * whole day's row is estimated as its bytes × 24 / ceil(hours) (the
 * row's key and header do not grow with its hours: an upper bound). */
static double per_target_day(const struct mode_out *m, const char *name,
			     const struct cfg *c, double days)
{
	double b = (double)tbl_bytes(m, name);

	if (!strcmp(name, "rollup_hours") && days < 1)
		return b / c->targets * 24 / ceil(days * 24 - 1e-9);
	return b / (c->targets * days);
}

static double history_per_target_day(const struct mode_out *m,
				     const struct cfg *c, double days)
{
	double sum = 0;

	for (size_t i = 0; i < N_HISTORY; i++)
		sum += per_target_day(m, history[i], c, days);
	return sum;
}

static void print_tables(const struct mode_out *m, const struct cfg *c,
			 double days)
{
	long long rest = 0;

	printf("\n%s: %lld failures (%.3f%%) in %lld bursts (mean %.2f); "
	       "bytes by table (dbstat: pages, indexes included, after "
	       "close and checkpoint)\n",
	       m->name, m->failures,
	       100 * per((double)m->failures, (double)m->full.results),
	       m->bursts, per((double)m->failures, (double)m->bursts));
	printf("  %-16s %13s %11s %9s %16s\n", "table", "bytes", "rows",
	       "B/row", "B/target-day");
	for (size_t i = 0; i < N_HISTORY; i++) {
		const struct tbl *t = find_tbl(m, history[i]);

		if (!t)
			continue;
		printf("  %-16s %13lld %11lld %9.1f %16.1f%s\n", t->name,
		       t->bytes, t->rows,
		       per((double)t->bytes, (double)t->rows),
		       per_target_day(m, t->name, c, days),
		       !strcmp(t->name, "rollup_hours") && days < 1
			       ? " (x 24/ceil(hours): a whole day)"
			       : "");
	}
	for (int i = 0; i < m->nt; i++) {
		bool h = false;

		for (size_t j = 0; j < N_HISTORY; j++)
			h |= !strcmp(m->t[i].name, history[j]);
		if (!h)
			rest += m->t[i].bytes;
	}
	printf("  %-16s %13lld   (schema, %d targets, empty tables: there "
	       "before the first result)\n",
	       "the rest", rest, c->targets);
	printf("  b-trees of the history tables:\n"
	       "  %-24s %13s %13s %11s %11s %9s\n",
	       "b-tree", "bytes", "payload", "unused", "cells", "B/cell");
	for (int i = 0; i < m->nbt; i++) {
		const struct btree *b = &m->bt[i];

		printf("  %-24s %13lld %13lld %11lld %11lld %9.1f\n", b->name,
		       b->bytes, b->payload, b->unused, b->cells,
		       per((double)b->bytes, (double)b->cells));
	}
	printf("  history: %.1f B per target-day; the file after close + "
	       "wal_checkpoint(TRUNCATE): %lld bytes\n",
	       history_per_target_day(m, c, days), m->file_bytes);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_history_scale [--targets N] [--days D] "
		"[--baseline-days B]\n"
		"       [--fail-rate F] [--burst-mean L] [--seed S] "
		"[--flush-every K]\n"
		"       [--max-lead SECONDS] [--flush-s SECONDS] "
		"[--only baseline|runs]\n"
		"       [--dir DIR] [--keep]\n"
		"D and B: days, or a number with s, m, h or d (30m, 6h)\n");
	exit(2);
}

/* "1.5" = days; "90s", "30m", "6h", "2d". -1 when not a duration. */
static double parse_days(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		return -1;
	if (!*end || !strcmp(end, "d"))
		return v;
	if (!strcmp(end, "h"))
		return v / 24;
	if (!strcmp(end, "m"))
		return v / 1440;
	if (!strcmp(end, "s"))
		return v / DAY_S;
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"targets", required_argument, NULL, 'n'},
		{"days", required_argument, NULL, 'd'},
		{"baseline-days", required_argument, NULL, 'b'},
		{"fail-rate", required_argument, NULL, 'f'},
		{"burst-mean", required_argument, NULL, 'l'},
		{"seed", required_argument, NULL, 's'},
		{"flush-every", required_argument, NULL, 'k'},
		{"max-lead", required_argument, NULL, 'm'},
		{"flush-s", required_argument, NULL, 'F'},
		{"only", required_argument, NULL, 'o'},
		{"dir", required_argument, NULL, 'D'},
		{"keep", no_argument, NULL, 'K'},
		{0},
	};
	struct cfg c = {.targets = 10000,
			.days = 3.0 / 24,
			.baseline_days = 10.0 / 1440,
			.fail_rate = 0.01,
			.burst_mean = 10,
			.seed = 12,
			.flush_every = 0,
			.max_lead_s = 0,
			.flush_s = 10};
	char tmpl[] = "/tmp/bench_history_scale.XXXXXX";
	struct mode_out base = {.name = "baseline", .raw = true};
	struct mode_out runs = {.name = "runs"};
	bool do_base, do_runs, own_dir = false;
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': c.targets = atoi(optarg); break;
		case 'd': c.days = parse_days(optarg); break;
		case 'b': c.baseline_days = parse_days(optarg); break;
		case 'f': c.fail_rate = atof(optarg); break;
		case 'l': c.burst_mean = atof(optarg); break;
		case 's': c.seed = strtoull(optarg, NULL, 0); break;
		case 'k': c.flush_every = atoll(optarg); break;
		case 'm': c.max_lead_s = atoi(optarg); break;
		case 'F': c.flush_s = atof(optarg); break;
		case 'o': c.only = optarg; break;
		case 'D': c.dir = optarg; break;
		case 'K': c.keep = true; break;
		default: usage();
		}
	}
	if (optind != argc || c.targets < 1 || c.targets > RING / 2 ||
	    c.days * DAY_S < 2 || c.baseline_days * DAY_S < 2 ||
	    c.fail_rate < 0 || c.fail_rate >= 1 || c.burst_mean < 1 ||
	    c.flush_every < 0 || c.max_lead_s < 0 || c.flush_s < 1 ||
	    (c.dir && strlen(c.dir) > 4000) ||
	    (c.only && strcmp(c.only, "baseline") && strcmp(c.only, "runs")))
		usage();
	if (!c.max_lead_s) /* 2 s; with --flush-every, half of flush_us */
		c.max_lead_s = !c.flush_every   ? 2
			       : c.flush_s >= 4 ? (int)(c.flush_s / 2)
						: 1;
	do_base = !c.only || !strcmp(c.only, "baseline");
	do_runs = !c.only || !strcmp(c.only, "runs");
	if (!c.dir) {
		if (!mkdtemp(tmpl))
			die("mkdtemp", strerror(errno));
		c.dir = tmpl;
		own_dir = true;
	}
	km_log_setup(KM_LOG_WARN, false);
	printf("bench_history_scale: sqlite %s, dir %s, seed %llu\n"
	       "stream: %d targets probed every 1 s, durations log-normal "
	       "(median 2 ms), %.2f%% failures in bursts of mean %.1f "
	       "probes\n"
	       "store: flush_us %.0f s; the producer %s\n",
	       sqlite3_libversion(), c.dir, (unsigned long long)c.seed,
	       c.targets, c.fail_rate * 100, c.burst_mean, c.flush_s,
	       c.flush_every ? "calls km_store_flush every --flush-every "
			       "results or --max-lead s"
			     : "waits for the ring to hold at most --max-lead "
			       "s of results; km_store_flush at 1/2 and the "
			       "end");
	printf("max-lead %d s, flush-every %lld\n", c.max_lead_s,
	       c.flush_every);
	fflush(stdout);
	if (do_base)
		run_mode(&c, &base, c.baseline_days);
	if (do_runs)
		run_mode(&c, &runs, c.days);

	printf("\n%-13s %13s %8s %10s %9s %8s %8s %9s %8s %9s %7s\n", "mode",
	       "results", "wall_s", "results/s", "B/result", "wr_ns/r",
	       "wrproc/r", "proc_ns/r", "gen_ns/r", "wrote_B/r", "dropped");
	if (do_base) {
		print_point("baseline@1/2", &base.half);
		print_point("baseline", &base.full);
		print_second_half("  2nd half", &base.half, &base.full);
	}
	if (do_runs) {
		print_point("runs@1/2", &runs.half);
		print_point("runs", &runs.full);
		print_second_half("  2nd half", &runs.half, &runs.full);
	}
	printf("B/result: used bytes ((page_count - freelist_count) x "
	       "page_size) less those before the first result;\n"
	       "wr_ns/r: stats.writer_cpu_ns; wrproc/r: the km-writer "
	       "thread's utime+stime (/proc); proc_ns/r: getrusage, all "
	       "threads;\ngen_ns/r: this generator thread (the stream and "
	       "km_store_add_result); all per result, first result to last "
	       "flush;\nwrote_B/r: bytes written to the disk "
	       "(/proc/self/io write_bytes: the WAL and its checkpoints);\n"
	       "2nd half: from the half-way point to the end alone\n");
	if (do_base)
		print_tables(&base, &c, c.baseline_days);
	if (do_runs) {
		double hours = c.days * 24;

		print_tables(&runs, &c, c.days);
		printf("  rows: runs %lld (%.1f per target-day; %.1f B "
		       "each, indexes included), rollup_minutes %lld, "
		       "rollup_hours %lld\n",
		       runs.rows_runs,
		       per((double)runs.rows_runs, c.targets * c.days),
		       per((double)tbl_bytes(&runs, "runs"),
			   (double)runs.rows_runs),
		       runs.rows_minutes, runs.rows_hours);
		printf("  runs hold: %lld failure runs; messages (first and "
		       "last) %lld B, %.1f per failure run; histograms %lld "
		       "B, %.1f per run\n",
		       runs.fail_runs, runs.msg_bytes,
		       per((double)runs.msg_bytes, (double)runs.fail_runs),
		       runs.hist_bytes,
		       per((double)runs.hist_bytes, (double)runs.rows_runs));
		printf("  rollups: %.0f B per target-hour (rollup_minutes "
		       "%.0f, rollup_hours %.1f)\n",
		       per((double)(tbl_bytes(&runs, "rollup_minutes") +
				    tbl_bytes(&runs, "rollup_hours")),
			   c.targets * hours),
		       per((double)tbl_bytes(&runs, "rollup_minutes"),
			   c.targets * hours),
		       per((double)tbl_bytes(&runs, "rollup_hours"),
			   c.targets * hours));
		printf("  writer: runs_written %llu, rollups_written %llu, "
		       "results_written %llu, batches %llu; km_store_flush "
		       "calls %d, producer waits %lld\n",
		       (unsigned long long)runs.full.st.runs_written,
		       (unsigned long long)runs.full.st.rollups_written,
		       (unsigned long long)runs.full.st.results_written,
		       (unsigned long long)runs.full.st.batches, runs.flushes,
		       runs.waits);
		printf("  cadence: %.3f rollup rewrites per target per "
		       "flush_us of simulated time (1 = the daemon's; the hour's "
		       "end adds 1/%.0f)\n",
		       per((double)runs.full.st.rollups_written / 2,
			   (double)c.targets * (double)runs.full.seconds /
				   c.flush_s),
		       3600 / c.flush_s);
		printf("  memory: runs_open %zu; VmRSS +%lld kB; malloc'd "
		       "+%lld B, SQLite's part +%lld B (its page cache); the "
		       "rest: %.0f B per target\n",
		       runs.runs_open, runs.rss_growth_kb, runs.heap_growth,
		       runs.sqlite_growth,
		       per((double)(runs.heap_growth - runs.sqlite_growth),
			   c.targets));
	}
	if (do_base && do_runs) {
		double bb =
			per((double)base.full.bytes, (double)base.full.results);
		double rb =
			per((double)runs.full.bytes, (double)runs.full.results);
		double bc = per((double)writer_ns(&base.full),
				(double)base.full.results);
		double rc = per((double)writer_ns(&runs.full),
				(double)runs.full.results);
		double td = history_per_target_day(&runs, &c, c.days);
		double bd = history_per_target_day(&base, &c, c.baseline_days);

		printf("\nratios runs/baseline: bytes per result %.4f "
		       "(%.3f / %.2f B; goal <= 0.5 B/result: %s), writer "
		       "CPU per result %.3f (%.0f / %.0f ns; goal <= 0.2: "
		       "%s)\n",
		       rb / bb, rb, bb, rb <= 0.5 ? "met" : "NOT met", rc / bc,
		       rc, bc, rc / bc <= 0.2 ? "met" : "NOT met");
		printf("extrapolated to 10,000 targets (history tables: runs "
		       "mode %.0f B per target-day, baseline %.0f):\n",
		       td, bd);
		printf("  30 days: runs %.2f GB, baseline %.0f GB; 365 days: "
		       "runs %.1f GB, baseline %.0f GB\n",
		       td * 1e4 * 30 / 1e9, bd * 1e4 * 30 / 1e9,
		       td * 1e4 * 365 / 1e9, bd * 1e4 * 365 / 1e9);
		printf("RESULT history_scale targets=%d days=%g "
		       "baseline_days=%g runs_b_per_result=%.4f "
		       "base_b_per_result=%.3f bytes_ratio=%.5f "
		       "runs_writer_ns=%.0f base_writer_ns=%.0f "
		       "cpu_ratio=%.3f runs_b_per_target_day=%.0f "
		       "dropped=%llu\n",
		       c.targets, c.days, c.baseline_days, rb, bb, rb / bb, rc,
		       bc, rc / bc, td,
		       (unsigned long long)(runs.full.st.results_dropped +
					    base.full.st.results_dropped));
	}
	if (own_dir && !c.keep)
		rmdir(c.dir);
	return (do_base && base.full.st.results_dropped) ||
			       (do_runs && runs.full.st.results_dropped)
		       ? 1
		       : 0;
}
