/*
 * bench_ingest — results/s through kubemedic's storage writer next to a
 * bare SQLite prepared-insert loop on the same schema, in the same process.
 *
 *   bench_ingest [--results N] [--reps R] [--targets T] [--batch B]
 *                [--queue Q] [--prefill M] [--dir DIR] [--keep]
 *
 * Each repetition runs two cases on fresh database files:
 *  - sqlite:    the baseline. A database made by km_store_open/close (so it
 *               has exactly the migrated schema), reopened with the pragmas
 *               of km_store.c configure() (WAL, synchronous=FULL,
 *               foreign_keys, cache_size=-65536, wal_autocheckpoint,
 *               journal_size_limit), and
 *               one prepared INSERT (the writer's SQL) stepped N times in
 *               transactions of B rows (BEGIN IMMEDIATE ... COMMIT).
 *  - kubemedic: km_store_open (batch_max = B, result_queue = Q,
 *               raw_results: one results row each, as the writer wrote them
 *               before runs — what this bench has always compared; runs and
 *               rollups are bench/history_scale's), then
 *               km_store_add_result N times from this one producer thread,
 *               then km_store_flush.
 * Both insert the same rows: T targets round robin, like a prober with T
 * probes of one period (started_at 1 ms apart, so each target is probed
 * every T ms), about 1 in 10 failing with a short message (same
 * pseudo-random sequence for both). The clock runs from the first insert
 * to the last commit (the flush), not over open/close.
 *
 * Overload. The writer's result ring drops the oldest result when full (by
 * design: the prober must never stall). A benchmark producer is far faster
 * than any writer, so here the *producer* is slowed instead: before each
 * chunk of 256 results it waits (sleeping 100 us at a time) until the ring
 * has room for the whole chunk. The ring keeps its production size (65536
 * unless --queue), and a run is valid only if the store reports 0 dropped.
 *
 * Order alternates (sqlite first in odd repetitions, kubemedic first in
 * even ones); medians of the R repetitions are printed with the ratio
 * kubemedic / sqlite. With --prefill M, the same is repeated on copies of a
 * database that already holds M results (index maintenance dominates
 * there; the copy is made before each case, outside the clock).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "km_log.h"
#include "km_store.h"
#include "km_time.h"

#define MAX_REPS 15

struct cfg {
	long long n;
	int reps;
	int targets;
	int batch;
	long long queue;
	long long prefill;
	const char *dir;
	bool keep;
};

/* ---- the rows --------------------------------------------------------- */

struct gen {
	uint64_t x; /* xorshift64 state */
	long long i;
	int64_t t0;
	int targets;
	int64_t first_target;
};

static void gen_init(struct gen *g, int64_t t0, int targets,
		     int64_t first_target, long long start_index)
{
	g->x = 0x9E3779B97F4A7C15ULL;
	g->i = start_index;
	g->t0 = t0;
	g->targets = targets;
	g->first_target = first_target;
}

static const char *const fail_msgs[] = {
	"connect: connection refused",
	"HTTP 503 Service Unavailable",
	"timeout after 1000 ms",
};

static void gen_next(struct gen *g, struct km_result *r)
{
	uint64_t x = g->x;
	bool fail;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	g->x = x;
	fail = (x >> 32) % 10 == 0;
	memset(r, 0, sizeof *r);
	r->target_id = g->first_target + g->i % g->targets;
	r->started_us = g->t0 + g->i * 1000;
	r->duration_us = 200 + (int64_t)((x >> 8) % 5000);
	r->success = !fail;
	if (fail) {
		int k = (int)((x >> 40) % 3);
		r->error_class = k == 0   ? 2
				 : k == 1 ? 5
					  : 1; /* refused, http, timeout */
		r->status_code = k == 1 ? 503 : 0;
		r->message = fail_msgs[k];
	} else {
		r->error_class = 0;
		r->status_code = 200;
	}
	g->i++;
}

/* ---- helpers ---------------------------------------------------------- */

static double now_s(void)
{
	return (double)km_mono_ns() / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_ingest: %s: %s\n", what, msg);
	exit(1);
}

static void sql_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		die(sql, msg ? msg : "?");
}

static void rm_db(const char *path)
{
	char p[4200];

	unlink(path);
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
}

/* A fresh database with the migrated schema. */
static void make_schema(const char *path)
{
	struct km_store_options so = {.path = path};
	struct km_store *s;
	struct km_error err = {0};

	rm_db(path);
	if (km_store_open(&so, &s, &err))
		die("km_store_open", err.msg);
	km_store_close(s);
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out;
	struct stat st;
	off_t left;

	if (in < 0 || fstat(in, &st))
		die(from, strerror(errno));
	rm_db(to);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		die(to, strerror(errno));
	left = st.st_size;
	while (left > 0) {
		ssize_t n =
			copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (n <= 0)
			die("copy_file_range", n ? strerror(errno) : "short");
		left -= n;
	}
	if (fsync(out))
		die("fsync", strerror(errno));
	close(in);
	close(out);
}

/* The pragmas of km_store.c configure(), synchronous=FULL variant. */
static sqlite3 *open_like_store(const char *path)
{
	sqlite3 *db;

	if (sqlite3_open_v2(path, &db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 5000);
	sql_ok(db, "PRAGMA journal_mode=WAL");
	sql_ok(db, "PRAGMA synchronous=FULL;"
		   "PRAGMA foreign_keys=ON;"
		   "PRAGMA cache_size=-65536;"
		   "PRAGMA wal_autocheckpoint=10000;"
		   "PRAGMA journal_size_limit=67108864");
	return db;
}

static const char insert_sql[] =
	"INSERT INTO results (target_id, started_at, duration_us, "
	"success, error_class, status_code, message) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/* Inserts n generated rows in transactions of batch rows. */
static void insert_rows(sqlite3 *db, struct gen *g, long long n, int batch)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v3(db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT,
			       &st, NULL) != SQLITE_OK)
		die("prepare", sqlite3_errmsg(db));
	for (long long done = 0; done < n;) {
		long long k = n - done < batch ? n - done : batch;

		sql_ok(db, "BEGIN IMMEDIATE");
		for (long long j = 0; j < k; j++) {
			struct km_result r;

			gen_next(g, &r);
			sqlite3_bind_int64(st, 1, r.target_id);
			sqlite3_bind_int64(st, 2, r.started_us);
			sqlite3_bind_int64(st, 3, r.duration_us);
			sqlite3_bind_int(st, 4, r.success);
			sqlite3_bind_int(st, 5, r.error_class);
			sqlite3_bind_int(st, 6, r.status_code);
			if (r.message)
				sqlite3_bind_text(st, 7, r.message, -1,
						  SQLITE_STATIC);
			else
				sqlite3_bind_null(st, 7);
			if (sqlite3_step(st) != SQLITE_DONE)
				die("insert", sqlite3_errmsg(db));
			sqlite3_reset(st);
		}
		sql_ok(db, "COMMIT");
		done += k;
	}
	sqlite3_finalize(st);
}

/* ---- the two cases ---------------------------------------------------- */

struct run {
	double secs;
	double rate;
	struct km_store_stats st; /* kubemedic only */
	long long throttled;      /* producer waits */
};

static struct run run_sqlite(const struct cfg *c, const char *path, int64_t t0,
			     long long start_index)
{
	struct run out = {0};
	struct gen g;
	sqlite3 *db = open_like_store(path);
	double a;

	gen_init(&g, t0, c->targets, 1, start_index);
	a = now_s();
	insert_rows(db, &g, c->n, c->batch);
	out.secs = now_s() - a;
	out.rate = (double)c->n / out.secs;
	sqlite3_close(db);
	return out;
}

static struct run run_store(const struct cfg *c, const char *path, int64_t t0,
			    long long start_index)
{
	struct run out = {0};
	struct km_store_options so = {.path = path,
				      .batch_max = (size_t)c->batch,
				      .result_queue = (size_t)c->queue,
				      .raw_results = true};
	struct km_store *s;
	struct km_error err = {0};
	struct gen g;
	const long long chunk = 256;
	double a;

	if (km_store_open(&so, &s, &err))
		die("km_store_open", err.msg);
	gen_init(&g, t0, c->targets, 1, start_index);
	a = now_s();
	for (long long done = 0; done < c->n;) {
		long long k = c->n - done < chunk ? c->n - done : chunk;
		struct km_store_stats st;

		/* Producer-side backpressure: never let the ring overflow. */
		for (;;) {
			km_store_get_stats(s, &st);
			if (st.result_queue_depth + (size_t)k <=
			    (size_t)c->queue)
				break;
			out.throttled++;
			nanosleep(&(struct timespec){0, 100000}, NULL);
		}
		for (long long j = 0; j < k; j++) {
			struct km_result r;

			gen_next(&g, &r);
			if (km_store_add_result(s, &r))
				die("km_store_add_result", "refused");
		}
		done += k;
	}
	if (km_store_flush(s, &err))
		die("km_store_flush", err.msg);
	out.secs = now_s() - a;
	out.rate = (double)c->n / out.secs;
	km_store_get_stats(s, &out.st);
	km_store_close(s);
	return out;
}

/* ---- reporting -------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double t[MAX_REPS];

	memcpy(t, v, (size_t)n * sizeof *t);
	qsort(t, (size_t)n, sizeof *t, cmp_d);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* Runs the repetitions of one scenario; returns 0 if every run was valid
 * (nothing dropped, everything written). */
static int scenario(const struct cfg *c, const char *label,
		    const char *prefilled, int64_t t0, long long start_index)
{
	char base_db[2048], km_db[2048];
	double rs[MAX_REPS], rk[MAX_REPS], ratio[MAX_REPS];
	int bad = 0;

	snprintf(base_db, sizeof base_db, "%s/sqlite.db", c->dir);
	snprintf(km_db, sizeof km_db, "%s/kubemedic.db", c->dir);
	printf("\n== %s: %lld results into %s, %d targets, batch %d, "
	       "ring %lld ==\n",
	       label, c->n,
	       prefilled ? "a database of the prefilled size"
			 : "an empty "
			   "database",
	       c->targets, c->batch, c->queue);
	printf("%-4s %-6s %14s %14s %7s %8s %8s %9s %9s\n", "rep", "first",
	       "sqlite/s", "kubemedic/s", "ratio", "batches", "dropped",
	       "maxdepth", "throttle");
	for (int rep = 0; rep < c->reps; rep++) {
		bool sqlite_first = rep % 2 == 0;
		struct run b = {0}, k = {0};

		for (int pass = 0; pass < 2; pass++) {
			bool do_sqlite = (pass == 0) == sqlite_first;
			const char *path = do_sqlite ? base_db : km_db;

			if (prefilled)
				copy_file(prefilled, path);
			else
				make_schema(path);
			if (do_sqlite)
				b = run_sqlite(c, path, t0, start_index);
			else
				k = run_store(c, path, t0, start_index);
			rm_db(path);
		}
		rs[rep] = b.rate;
		rk[rep] = k.rate;
		ratio[rep] = k.rate / b.rate;
		if (k.st.results_dropped || k.st.commit_failures ||
		    k.st.results_written != (uint64_t)c->n)
			bad++;
		printf("%-4d %-6s %14.0f %14.0f %7.3f %8llu %8llu %9zu %9lld\n",
		       rep + 1, sqlite_first ? "sqlite" : "km", b.rate, k.rate,
		       ratio[rep], (unsigned long long)k.st.batches,
		       (unsigned long long)k.st.results_dropped,
		       k.st.result_queue_max_depth, k.throttled);
		fflush(stdout);
	}
	printf("median %-6s %14.0f %14.0f %7.3f   (ratio = median of "
	       "per-rep ratios; goal >= 0.5)%s\n",
	       "", median(rs, c->reps), median(rk, c->reps),
	       median(ratio, c->reps), bad ? "  INVALID: rows dropped" : "");
	printf("RESULT ingest scenario=%s n=%lld sqlite_per_s=%.0f "
	       "kubemedic_per_s=%.0f ratio=%.3f valid=%s\n",
	       label, c->n, median(rs, c->reps), median(rk, c->reps),
	       median(ratio, c->reps), bad ? "no" : "yes");
	fflush(stdout);
	return bad;
}

/* A database holding m results (same generator, earlier in time), made as
 * fast as possible (synchronous=OFF, big transactions); closed cleanly so
 * its WAL is checkpointed into the one file that the runs copy. */
static void prefill(const struct cfg *c, const char *path, int64_t t0)
{
	sqlite3 *db;
	struct gen g;
	double a = now_s();

	printf("\nprefilling %s with %lld results ...\n", path, c->prefill);
	fflush(stdout);
	make_schema(path);
	db = open_like_store(path);
	sql_ok(db, "PRAGMA synchronous=OFF; PRAGMA cache_size=-1048576");
	gen_init(&g, t0, c->targets, 1, 0);
	insert_rows(db, &g, c->prefill, 200000);
	if (sqlite3_close(db) != SQLITE_OK)
		die("close", "prefill");
	{
		struct stat st;
		stat(path, &st);
		printf("prefilled in %.1f s, %.0f MiB\n", now_s() - a,
		       (double)st.st_size / 1048576);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_ingest [--results N] [--reps R] [--targets T] "
		"[--batch B]\n"
		"                    [--queue Q] [--prefill M] [--dir DIR] "
		"[--keep]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"results", required_argument, NULL, 'n'},
		{"reps", required_argument, NULL, 'r'},
		{"targets", required_argument, NULL, 't'},
		{"batch", required_argument, NULL, 'b'},
		{"queue", required_argument, NULL, 'q'},
		{"prefill", required_argument, NULL, 'p'},
		{"dir", required_argument, NULL, 'd'},
		{"keep", no_argument, NULL, 'k'},
		{0},
	};
	struct cfg c = {.n = 1000000,
			.reps = 3,
			.targets = 10000,
			.batch = 8192,
			.queue = 65536};
	char tmpl[] = "/tmp/bench_ingest.XXXXXX";
	char pre[4096];
	bool own_dir = false;
	int64_t t0;
	int ch, bad = 0;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': c.n = atoll(optarg); break;
		case 'r': c.reps = atoi(optarg); break;
		case 't': c.targets = atoi(optarg); break;
		case 'b': c.batch = atoi(optarg); break;
		case 'q': c.queue = atoll(optarg); break;
		case 'p': c.prefill = atoll(optarg); break;
		case 'd': c.dir = optarg; break;
		case 'k': c.keep = true; break;
		default: usage();
		}
	}
	if (c.n < 1 || c.reps < 1 || c.reps > MAX_REPS || c.targets < 1 ||
	    c.batch < 1 || c.queue < 256 || c.prefill < 0 ||
	    (c.dir && strlen(c.dir) > 1900))
		usage();
	if (!c.dir) {
		if (!mkdtemp(tmpl))
			die("mkdtemp", strerror(errno));
		c.dir = tmpl;
		own_dir = true;
	}
	km_log_setup(KM_LOG_WARN, false);
	printf("bench_ingest: sqlite %s, dir %s, producer backpressure "
	       "(ring never overflows)\n",
	       sqlite3_libversion(), c.dir);

	/* Fixed start time so every run inserts identical rows. */
	t0 = 1700000000000000LL;
	bad += scenario(&c, "empty", NULL, t0, 0);
	if (c.prefill > 0) {
		snprintf(pre, sizeof pre, "%s/prefilled.db", c.dir);
		prefill(&c, pre, t0 - c.prefill * 1000);
		/* The measured rows continue the prefill's sequence. */
		bad += scenario(&c, "prefilled", pre, t0, 0);
		if (!c.keep)
			rm_db(pre);
	}
	if (own_dir)
		rmdir(c.dir);
	return bad ? 1 : 0;
}
