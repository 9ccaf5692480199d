/*
 * The writer's probe history (store_fold.c), through the real store on a
 * real SQLite file, with a simulated clock: run boundaries (an outcome
 * flips, a target is deleted, a flush comes due), what a crash keeps,
 * rollups and runs against a brute-force recount of the raw results (a
 * restart and late results included), tiered retention, and the
 * conversion of a schema-5 database's raw results — killed midway, and
 * meeting the live writer in the same hours.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "km_open_hour.h"
#include "km_rollup.h"
#include "km_store.h"
#include "km_test.h"
#include "km_test_heard.h"
#include "km_test_schema.h"

#define S 1000000LL
#define T0 (1780000000LL * S) /* a Monday in 2026, 00:26:40 UTC */

static int64_t sim_now;

static int64_t sim_clock(void *arg)
{
	(void)arg;
	return __atomic_load_n(&sim_now, __ATOMIC_SEQ_CST);
}

static void set_clock(int64_t t)
{
	__atomic_store_n(&sim_now, t, __ATOMIC_SEQ_CST);
}

struct fixture {
	char *dir, *db;
	struct km_store *s;
};

static void open_with(struct fixture *f, struct km_store_options o)
{
	struct km_error err = {0};

	o.path = f->db;
	o.now_us = sim_clock;
	if (km_store_open(&o, &f->s, &err))
		fail_msg("open: %s", err.msg);
}

static void close_store(struct fixture *f)
{
	km_store_close(f->s);
	f->s = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	f->dir = km_test_tmpdir();
	if (!f->dir || asprintf(&f->db, "%s/km.db", f->dir) < 0)
		return -1;
	set_clock(T0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close_store(f);
	km_test_rmrf(f->dir);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

static int64_t make_target(struct fixture *f, const char *name)
{
	struct km_target t = {.name = name};
	struct km_error err = {0};

	assert_int_equal(km_store_ensure_target(f->s, &t, &err), 0);
	return t.id;
}

static void flush(struct fixture *f)
{
	struct km_error err = {0};

	assert_int_equal(km_store_flush(f->s, &err), 0);
}

static void add(struct fixture *f, const struct km_result *r)
{
	assert_int_equal(km_store_add_result(f->s, r), 0);
}

static struct km_result res(int64_t tid, int64_t at, bool ok, const char *msg)
{
	return (struct km_result){.target_id = tid,
				  .started_us = at,
				  .duration_us = 1500,
				  .success = ok,
				  .error_class = ok ? 0 : 5,
				  .status_code = ok ? 200 : 503,
				  .message = msg};
}

static int64_t count(const char *db, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	int64_t n = -1;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* A run row as stored. */
struct run {
	int64_t first, last, count, dur_sum;
	bool ok;
	char first_msg[32], last_msg[32];
};

/* The target's runs, oldest first; returns how many (at most max). */
static int runs_of(const char *db, int64_t tid, struct run *v, int max)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	int n = 0;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h,
					    "SELECT first_at, last_at, count, "
					    "success, first_message, "
					    "last_message, dur_sum FROM runs "
					    "WHERE target_id = ?1 ORDER BY "
					    "first_at, id",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, tid);
	while (n < max && sqlite3_step(st) == SQLITE_ROW) {
		struct run *r = &v[n++];
		const char *a = (const char *)sqlite3_column_text(st, 4);
		const char *b = (const char *)sqlite3_column_text(st, 5);

		r->first = sqlite3_column_int64(st, 0);
		r->last = sqlite3_column_int64(st, 1);
		r->count = sqlite3_column_int64(st, 2);
		r->ok = sqlite3_column_int(st, 3);
		snprintf(r->first_msg, sizeof r->first_msg, "%s", a ? a : "");
		snprintf(r->last_msg, sizeof r->last_msg, "%s", b ? b : "");
		r->dur_sum = sqlite3_column_int64(st, 6);
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* Waits, without sleeping, for the writer to commit everything queued so
 * far as a batch of its own would: a transition is heard after the commit
 * of the batch that holds every result queued before it. */
static void committed(struct fixture *f, int64_t tid, struct km_test_heard *h)
{
	struct km_transition t = {.target_id = tid,
				  .at_us = sim_clock(NULL),
				  .from_state = KM_STATE_UNKNOWN,
				  .to_state = KM_STATE_HEALTHY,
				  .cause = "test"};
	int want = km_test_heard_count(h) + 1;

	assert_int_equal(km_store_add_transition(f->s, &t), 0);
	km_test_heard_wait(h, want);
}

/* ---- run boundaries -------------------------------------------------------- */

static void test_run_boundaries(void **state)
{
	struct fixture *f = *state;
	struct km_test_heard h = KM_TEST_HEARD_INIT;
	struct km_error err = {0};
	struct km_store_stats st;
	struct run v[8];
	const char *msgs[] = {"a", "b", "c"};
	int64_t tid, t = T0;

	open_with(f, (struct km_store_options){.flush_us = 10 * S});
	km_store_set_listener(f->s, km_test_heard_one, &h);
	tid = make_target(f, "pod/shop/web-0");

	/* 5 fine, 3 failing, 2 fine: three runs once flushed. */
	for (int i = 0; i < 10; i++, t += S) {
		struct km_result r = res(tid, t, i < 5 || i >= 8,
					 i >= 5 && i < 8 ? msgs[i - 5] : NULL);
		add(f, &r);
	}
	flush(f);
	assert_int_equal(runs_of(f->db, tid, v, 8), 3);
	assert_true(v[0].ok && v[0].count == 5 && v[0].first == T0 &&
		    v[0].last == T0 + 4 * S && v[0].dur_sum == 5 * 1500);
	assert_false(v[1].ok);
	assert_int_equal(v[1].count, 3);
	assert_string_equal(v[1].first_msg, "a");
	assert_string_equal(v[1].last_msg, "c");
	assert_true(v[2].ok && v[2].count == 2);

	/* Steady: nothing is written before the flush comes due (the
	 * clock stays at the flush above)... */
	for (int i = 0; i < 5; i++, t += S) {
		struct km_result r = res(tid, t, true, NULL);

		add(f, &r);
	}
	committed(f, tid, &h);
	assert_int_equal(runs_of(f->db, tid, v, 8), 3);
	assert_int_equal(v[2].count, 2);
	/* ...and once it has (10 s after the flush above), the run's row is
	 * updated in place. */
	set_clock(T0 + 10 * S);
	committed(f, tid, &h);
	assert_int_equal(runs_of(f->db, tid, v, 8), 3);
	assert_int_equal(v[2].count, 7);
	assert_int_equal(v[2].last, t - S);

	/* The target goes: its open run ends, with what came since. */
	for (int i = 0; i < 3; i++, t += S) {
		struct km_result r = res(tid, t, true, NULL);

		add(f, &r);
	}
	assert_int_equal(km_store_delete_target(f->s, "pod/shop/web-0", "gone",
						&err),
			 0);
	assert_int_equal(runs_of(f->db, tid, v, 8), 3);
	assert_int_equal(v[2].count, 10);
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.runs_open, 0);
	assert_int_equal(st.results_written, 18);
	/* Every result is counted in its minute and hour once. */
	assert_int_equal(count(f->db, "SELECT count(*) FROM rollup_minutes"),
			 1);
	assert_int_equal(count(f->db, "SELECT count(*) FROM rollup_hours"), 1);
}

/* Readers see the open run as the writer holds it, before it is written
 * and ahead of its stale row after: once, in its place, in either order
 * and through the outcome filters. */
static void test_open_run_is_read(void **state)
{
	struct fixture *f = *state;
	struct km_test_heard h = KM_TEST_HEARD_INIT;
	struct km_runs_query q = {.from_us = INT64_MIN,
				  .to_us = INT64_MAX,
				  .limit = 10};
	struct km_error err = {0};
	struct km_reader *rd;
	struct km_run_row *v;
	struct km_arena a;
	size_t n;
	bool more;
	int64_t tid, t = T0;

	km_arena_init(&a, 4096);
	open_with(f, (struct km_store_options){.flush_us = 10 * S});
	km_store_set_listener(f->s, km_test_heard_one, &h);
	assert_int_equal(km_reader_open(f->s, &rd, &err), 0);
	tid = make_target(f, "probe//live");
	q.target_id = tid;
	for (int i = 0; i < 4; i++, t += S) { /* 3 failures, then 1 fine */
		struct km_result r = res(tid, t, i == 3, i < 3 ? "x" : NULL);

		add(f, &r);
	}
	committed(f, tid, &h);
	/* Nothing written: the closed failure run is, the open one not. */
	assert_int_equal(count(f->db, "SELECT count(*) FROM runs"), 1);
	assert_int_equal(km_reader_query_runs(rd, &q, &a, &v, &n, &more, &err),
			 0);
	assert_int_equal(n, 2);
	assert_true(v[0].success && v[0].count == 1 && v[0].id == 0);
	assert_true(!v[1].success && v[1].count == 3);
	/* Its last message equals its first: stored once, read as both. */
	assert_int_equal(count(f->db, "SELECT count(*) FROM runs WHERE "
				      "first_message = 'x' AND last_message "
				      "IS NULL"),
			 1);
	assert_string_equal(v[1].first_message, "x");
	assert_string_equal(v[1].last_message, "x");
	flush(f); /* written: 1 in its row */
	for (int i = 0; i < 5; i++, t += S) {
		struct km_result r = res(tid, t, true, NULL);

		add(f, &r);
	}
	committed(f, tid, &h);
	q.oldest_first = true;
	assert_int_equal(km_reader_query_runs(rd, &q, &a, &v, &n, &more, &err),
			 0);
	assert_int_equal(n, 2);
	assert_true(!v[0].success && v[0].count == 3);
	assert_true(v[1].success && v[1].count == 6 && v[1].id > 0);
	assert_int_equal(v[1].last_us, t - S);
	/* Filtered out by its outcome; and not on a full page with more
	 * after it (the page of the failures, one a page, oldest first). */
	q.outcome = KM_OUTCOME_FAILURE;
	assert_int_equal(km_reader_query_runs(rd, &q, &a, &v, &n, &more, &err),
			 0);
	assert_int_equal(n, 1);
	assert_false(more);
	q.outcome = KM_OUTCOME_ANY;
	q.limit = 1;
	assert_int_equal(km_reader_query_runs(rd, &q, &a, &v, &n, &more, &err),
			 0);
	assert_true(n == 1 && more && !v[0].success);
	q.has_cursor = true;
	q.cursor_us = v[0].first_us;
	q.cursor_src = v[0].src;
	q.cursor_id = v[0].id;
	assert_int_equal(km_reader_query_runs(rd, &q, &a, &v, &n, &more, &err),
			 0);
	assert_true(n == 1 && !more && v[0].success && v[0].count == 6);
	km_reader_close(rd);
	km_arena_free(&a);
}

/* ---- a crash ---------------------------------------------------------------- */

/* The child: results in runs, one flush, more results; then a run ended
 * by a failure, then more that only the memory holds; then it dies
 * without closing. */
static void crash_child(struct fixture *f)
{
	struct km_test_heard h = KM_TEST_HEARD_INIT;
	int64_t tid;

	open_with(f, (struct km_store_options){.flush_us = 10 * S});
	km_store_set_listener(f->s, km_test_heard_one, &h);
	tid = make_target(f, "probe//crash");
	for (int i = 0; i < 5; i++) {
		struct km_result r = res(tid, T0 + i * S, true, NULL);

		add(f, &r);
	}
	flush(f); /* 5 results in one run, on disk */
	for (int i = 5; i < 10; i++) {
		struct km_result r = res(tid, T0 + i * S, true, NULL);

		add(f, &r);
	}
	committed(f, tid, &h); /* folded, not due: in memory only */
	{
		struct km_result r = res(tid, T0 + 10 * S, false, "refused");
		struct km_result r2 = res(tid, T0 + 11 * S, false, "refused");

		add(f, &r); /* ends the run of 10: written */
		add(f, &r2);
	}
	committed(f, tid, &h);
	_exit(0); /* a crash: no close, no flush */
}

static void test_crash_keeps_what_was_written(void **state)
{
	struct fixture *f = *state;
	struct run v[4];
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		crash_child(f);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	assert_int_equal(count(f->db, "SELECT count(*) FROM pragma_"
				      "integrity_check WHERE "
				      "integrity_check = 'ok'"),
			 1);
	/* The run the failure ended is whole (10); the failures' open run,
	 * never flushed, is lost with the process. */
	assert_int_equal(runs_of(f->db, 1, v, 4), 1);
	assert_true(v[0].ok);
	assert_int_equal(v[0].count, 10);
	/* The rollups hold what the last flush did: the first 5. */
	assert_int_equal(count(f->db, "SELECT length(blob) > 0 FROM "
				      "rollup_minutes"),
			 1);
	/* The next start goes on from there. */
	open_with(f, (struct km_store_options){0});
	{
		struct km_result r = res(1, T0 + 20 * S, true, NULL);

		add(f, &r);
	}
	close_store(f);
	assert_int_equal(runs_of(f->db, 1, v, 4), 2);
	assert_int_equal(v[1].count, 1);
}

/* ---- brute force -------------------------------------------------------------- */

enum { NT = 4, NR = 20000 };

struct gen {
	struct km_result r[NR + 256]; /* room for live results after */
	bool late[NR + 256];
	int n;
};

/* NT targets probed in turn every 0.2-3 s over some 5 hours, outcomes in
 * bursts, durations from 50 µs to 40 s; with_late: now and then a result
 * 2 hours in the past (a clock stepped back). */
static void generate(struct gen *g, int64_t *tids, bool with_late,
		     unsigned seed)
{
	int64_t t = T0;
	bool ok[NT];

	srand(seed);
	for (int k = 0; k < NT; k++)
		ok[k] = true;
	g->n = 0;
	while (g->n < NR) {
		int k = rand() % NT;
		int64_t at;

		t += 200000 + rand() % 2800000;
		if (rand() % 40 == 0)
			ok[k] = !ok[k];
		at = t;
		g->late[g->n] = with_late && rand() % 500 == 0;
		if (g->late[g->n])
			at -= 2 * 3600 * S;
		g->r[g->n] = res(tids[k], at, ok[k], ok[k] ? NULL : "HTTP 503");
		g->r[g->n].duration_us = 50LL << (rand() % 20);
		g->n++;
	}
}

/* The stored rollups equal a recount of g's results, minute by minute
 * and hour by hour, for every target. */
static void check_rollups(const char *db, const struct gen *g,
			  const int64_t *tids)
{
	static struct km_rollup_hour want, got;
	struct km_error err = {0};
	sqlite3 *h;
	sqlite3_stmt *st;
	int rows = 0;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	for (int pass = 0; pass < 2; pass++) {
		const char *sql = pass ? "SELECT target_id, day, blob FROM "
					 "rollup_hours"
				       : "SELECT target_id, hour, blob FROM "
					 "rollup_minutes";

		assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL),
				 SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			int64_t tid = sqlite3_column_int64(st, 0);
			int64_t key = sqlite3_column_int64(st, 1);

			memset(&want, 0, sizeof want);
			for (int i = 0; i < g->n; i++) {
				const struct km_result *r = &g->r[i];
				int64_t hour = km_hour_of(r->started_us);

				if (r->target_id != tid)
					continue;
				if (!pass && hour == key)
					km_rollup_add(&want.min[km_minute_of(
							      r->started_us)],
						      r);
				if (pass && km_day_of_hour(hour) == key)
					km_rollup_add(
						&want.min[hour - key * 24], r);
			}
			assert_int_equal(
				km_rollup_unpack(
					sqlite3_column_blob(st, 2),
					(size_t)sqlite3_column_bytes(st, 2),
					&got, &err),
				0);
			if (memcmp(&want, &got, sizeof want))
				fail_msg("target %lld %s %lld: stored rollups "
					 "differ from a recount",
					 (long long)tid, pass ? "day" : "hour",
					 (long long)key);
			rows++;
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	/* And no hour is missing: every result's hour has its row. */
	for (int k = 0; k < NT; k++) {
		int64_t total = 0;
		char sql[128];

		for (int i = 0; i < g->n; i++)
			total += g->r[i].target_id == tids[k];
		snprintf(sql, sizeof sql,
			 "SELECT sum(count) FROM runs WHERE target_id = %lld",
			 (long long)tids[k]);
		assert_int_equal(count(db, sql), total);
	}
	assert_true(rows > 2 * NT);
}

static void test_rollups_equal_a_recount(void **state)
{
	struct fixture *f = *state;
	static struct gen g;
	int64_t tids[NT];

	open_with(f, (struct km_store_options){.flush_us = 10 * S});
	for (int k = 0; k < NT; k++) {
		char name[32];

		snprintf(name, sizeof name, "probe//p%d", k);
		tids[k] = make_target(f, name);
	}
	generate(&g, tids, true, 7);
	for (int i = 0; i < g.n; i++) {
		if (!g.late[i])
			set_clock(g.r[i].started_us);
		add(f, &g.r[i]);
		if (i == g.n / 2) { /* a restart, mid-hour */
			close_store(f);
			open_with(f, (struct km_store_options){.flush_us =
								       10 * S});
		}
	}
	close_store(f);
	check_rollups(f->db, &g, tids);
}

/* Without restarts or late results, the runs are exactly the outcome's
 * stretches of each target's results. */
static void test_runs_equal_the_stretches(void **state)
{
	struct fixture *f = *state;
	static struct gen g;
	static struct run v[NR];
	int64_t tids[NT];

	open_with(f, (struct km_store_options){.flush_us = 10 * S});
	for (int k = 0; k < NT; k++) {
		char name[32];

		snprintf(name, sizeof name, "probe//q%d", k);
		tids[k] = make_target(f, name);
	}
	generate(&g, tids, false, 8);
	for (int i = 0; i < g.n; i++) {
		set_clock(g.r[i].started_us);
		add(f, &g.r[i]);
	}
	close_store(f);
	for (int k = 0; k < NT; k++) {
		int n = runs_of(f->db, tids[k], v, NR), j = -1;

		for (int i = 0; i < g.n; i++) {
			const struct km_result *r = &g.r[i];

			if (r->target_id != tids[k])
				continue;
			if (j < 0 || r->success != v[j].ok ||
			    r->started_us > v[j].last) {
				j++; /* a new stretch starts a new run */
				assert_true(j < n);
				assert_int_equal(v[j].first, r->started_us);
				assert_int_equal(v[j].ok, r->success);
			}
		}
		assert_int_equal(j + 1, n);
	}
	check_rollups(f->db, &g, tids);
}

/* ---- retention -------------------------------------------------------------- */

static void test_retention_tiers(void **state)
{
	struct fixture *f = *state;
	const int64_t D = 86400 * S;
	const int64_t days[] = {0, 50, 200, 380};
	int64_t tid;

	open_with(f,
		  (struct km_store_options){.results_retention_us = 30 * D,
					    .minutes_retention_us = 90 * D,
					    .hours_retention_us = 365 * D,
					    .transitions_retention_us = 100 * D,
					    .retention_interval_ms = 86400000,
					    .retention_batch = 10});
	tid = make_target(f, "probe//old");
	for (int d = 0; d < 4; d++) {
		for (int i = 0; i < 3; i++) {
			struct km_result r = res(tid, T0 + days[d] * D + i * S,
						 d % 2 == 0, NULL);

			set_clock(r.started_us);
			add(f, &r);
		}
		{
			struct km_transition t = {.target_id = tid,
						  .at_us = T0 + days[d] * D,
						  .from_state = 1,
						  .to_state = 2,
						  .cause = "x"};

			assert_int_equal(km_store_add_transition(f->s, &t), 0);
		}
	}
	flush(f);
	assert_int_equal(count(f->db, "SELECT count(*) FROM runs"), 4);
	set_clock(T0 + 400 * D);
	km_store_retention_sweep(f->s);
	/* Runs: 30 days (the run of day 380); minutes: 90 days (day 380's
	 * hour); hours: 365 days (days 50, 200, 380); transitions: 100 days
	 * (day 380's). */
	assert_int_equal(count(f->db, "SELECT count(*) FROM runs"), 1);
	assert_int_equal(count(f->db, "SELECT min(first_at) FROM runs"),
			 T0 + 380 * D);
	assert_int_equal(count(f->db, "SELECT count(*) FROM rollup_minutes"),
			 1);
	assert_int_equal(count(f->db, "SELECT count(*) FROM rollup_hours"), 3);
	assert_int_equal(count(f->db, "SELECT min(day) FROM rollup_hours"),
			 km_day_of_hour(km_hour_of(T0 + 50 * D)));
	assert_int_equal(count(f->db, "SELECT count(*) FROM transitions"), 1);
}

/* ---- the conversion of schema 5's results ---------------------------------- */

/* A database as schema 5 left it: every result a row of `results`. */
static void fill_raw(struct fixture *f, struct gen *g, int64_t *tids)
{
	open_with(f, (struct km_store_options){.raw_results = true});
	for (int k = 0; k < NT; k++) {
		char name[32];

		snprintf(name, sizeof name, "probe//c%d", k);
		tids[k] = make_target(f, name);
	}
	generate(g, tids, false, 9);
	for (int i = 0; i < g->n; i++)
		add(f, &g->r[i]);
	close_store(f);
	assert_int_equal(count(f->db, "SELECT count(*) FROM results"), NR);
}

static void convert_until_done(struct fixture *f)
{
	for (int i = 0; i < 1000 && count(f->db, "SELECT count(*) FROM "
						 "results") > 0;
	     i++)
		flush(f); /* the writer converts a step after each batch */
	assert_int_equal(count(f->db, "SELECT count(*) FROM results"), 0);
}

static void test_conversion_resumes_after_a_kill(void **state)
{
	struct fixture *f = *state;
	static struct gen g;
	int64_t tids[NT];
	int status;
	pid_t pid;

	fill_raw(f, &g, tids);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct km_store_stats st;

		open_with(f, (struct km_store_options){0});
		do /* killed once a few steps have committed */
			km_store_get_stats(f->s, &st);
		while (st.results_converted < 3000);
		kill(getpid(), SIGKILL);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	{
		int64_t left = count(f->db, "SELECT count(*) FROM results");

		assert_true(left > 0 && left <= NR - 3000);
	}
	open_with(f, (struct km_store_options){0});
	convert_until_done(f);
	close_store(f);
	/* Nothing lost, nothing counted twice. */
	check_rollups(f->db, &g, tids);
	assert_int_equal(count(f->db, "SELECT count(*) FROM pragma_"
				      "integrity_check WHERE "
				      "integrity_check = 'ok'"),
			 1);
}

/* Live results in the hours being converted (a daemon upgraded mid-hour):
 * both counted, once. */
static void test_conversion_meets_live_results(void **state)
{
	struct fixture *f = *state;
	static struct gen g;
	int64_t tids[NT], last = 0;

	fill_raw(f, &g, tids);
	for (int i = 0; i < g.n; i++)
		if (g.r[i].started_us > last)
			last = g.r[i].started_us;
	open_with(f, (struct km_store_options){.flush_us = 10 * S});
	/* Right after the upgrade: more results of every target, in the
	 * hour the old ones end in, while the conversion runs. */
	for (int i = 0; i < 200; i++) {
		struct km_result r = res(tids[i % NT], last + (i + 1) * S / 10,
					 i % 7 != 0, NULL);

		set_clock(r.started_us);
		add(f, &r);
		g.r[g.n++] = r;
	}
	convert_until_done(f);
	close_store(f);
	check_rollups(f->db, &g, tids);
}

/* A database of schema 5, as a kubemedicd before runs left it: opened
 * by this one, migrated, and its results converted — the history the
 * same, by runs and by rollups. */
static void test_schema_5_database_converts(void **state)
{
	struct fixture *f = *state;
	static struct gen g;
	int64_t tids[NT];
	sqlite3 *db = km_test_old_database(f->db, 5);
	sqlite3_stmt *st;

	assert_string_equal(km_migrations[4].name, "0005_storms.sql");
	for (int k = 0; k < NT; k++) {
		char *sql = sqlite3_mprintf(
			"INSERT INTO targets (name, kind, object_name, "
			"state_since, created_at) VALUES ('probe//v5-%d', 1, "
			"'v5-%d', 1, 1)",
			k, k);

		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_free(sql);
		tids[k] = sqlite3_last_insert_rowid(db);
	}
	generate(&g, tids, false, 10);
	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(
				 db,
				 "INSERT INTO results (target_id, started_at, "
				 "duration_us, success, error_class, "
				 "status_code, message) VALUES (?, ?, ?, ?, ?, "
				 "?, ?)",
				 -1, &st, NULL),
			 SQLITE_OK);
	for (int i = 0; i < g.n; i++) {
		const struct km_result *r = &g.r[i];

		sqlite3_bind_int64(st, 1, r->target_id);
		sqlite3_bind_int64(st, 2, r->started_us);
		sqlite3_bind_int64(st, 3, r->duration_us);
		sqlite3_bind_int(st, 4, r->success);
		sqlite3_bind_int(st, 5, r->error_class);
		sqlite3_bind_int(st, 6, r->status_code);
		sqlite3_bind_text(st, 7, r->message, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	open_with(f, (struct km_store_options){0});
	assert_int_equal(km_store_schema_version(f->s),
			 km_store_binary_schema_version());
	convert_until_done(f);
	close_store(f);
	check_rollups(f->db, &g, tids);
	/* One conversion without a kill: the runs are the stretches. */
	assert_int_equal(count(f->db, "SELECT count(*) FROM runs r WHERE "
				      "EXISTS (SELECT 1 FROM runs p WHERE "
				      "p.target_id = r.target_id AND "
				      "p.success = r.success AND p.id = "
				      "(SELECT max(id) FROM runs q WHERE "
				      "q.target_id = r.target_id AND q.id < "
				      "r.id))"),
			 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run_boundaries, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_open_run_is_read, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_crash_keeps_what_was_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollups_equal_a_recount,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_runs_equal_the_stretches,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_tiers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_conversion_resumes_after_a_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_conversion_meets_live_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_5_database_converts,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
