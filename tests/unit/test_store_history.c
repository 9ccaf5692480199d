/*
 * History at fleet scale, read (storage/store_history.c and
 * store_rollups_read.c, issue 12): a target's runs merged with what is
 * left of `results`, paged exactly (ids of the two tables colliding, rows
 * of one time in both, ids at the ends of int64), both orders, each
 * outcome, a run that began before the range; rollups per step equal a
 * brute-force count of the data they were packed from (minutes, hours,
 * steps aligned or not, minutes removed by retention), and a row that is
 * not what the writer writes is an error naming it, never a crash.
 *
 * The tables are filled with SQL through a second connection to a real
 * store's database: these readers do not depend on the writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_rollup.h"
#include "km_store.h"
#include "km_test.h"

struct fixture {
	char *dir, *db;
	struct km_store *s;
	struct km_reader *r;
	sqlite3 *raw; /* the test's own connection, for the rows */
	struct km_arena a;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct km_store_options o = {0};
	struct km_error err = {0};

	if (!f || !(f->dir = km_test_tmpdir()) ||
	    asprintf(&f->db, "%s/km.db", f->dir) < 0)
		return -1;
	km_arena_init(&f->a, 1 << 16);
	*state = f;
	o.path = f->db;
	if (km_store_open(&o, &f->s, &err) ||
	    km_reader_open(f->s, &f->r, &err)) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	if (sqlite3_open(f->db, &f->raw) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(f->raw, 10000);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sqlite3_close(f->raw);
	km_reader_close(f->r);
	km_store_close(f->s);
	km_arena_free(&f->a);
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

static void exec(struct fixture *f, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(f->raw, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

/* ---- runs --------------------------------------------------------------- */

/* A run or a result of the test's data, and what a page must show. */
struct want {
	int src;
	int64_t id, first, last, count;
	bool success;
	const char *msg;
};

static void insert_run(struct fixture *f, int64_t target, const struct want *w)
{
	sqlite3_stmt *st;
	uint32_t h[KM_LAT_BUCKETS] = {0};
	uint8_t hist[KM_LAT_PACK_MAX];
	size_t hl;

	h[3] = (uint32_t)w->count;
	hl = km_lat_pack(h, hist);
	if (w->src == KM_RUN_SRC_RUN) {
		assert_int_equal(
			sqlite3_prepare_v2(
				f->raw,
				"INSERT INTO runs (id, target_id, first_at, "
				"last_at, count, success, error_class, "
				"status_code, dur_min, dur_max, dur_sum, "
				"hist, first_message, last_message) VALUES "
				"(?1, ?2, ?3, ?4, ?5, ?6, ?7, 500, 400, 700, "
				"?8, ?9, ?10, ?11)",
				-1, &st, NULL),
			SQLITE_OK);
		sqlite3_bind_int64(st, 4, w->last);
		sqlite3_bind_int64(st, 5, w->count);
		sqlite3_bind_int64(st, 8, 550 * w->count);
		sqlite3_bind_blob(st, 9, hist, (int)hl, SQLITE_STATIC);
		if (!w->success) {
			sqlite3_bind_text(st, 10, "first", -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 11, w->msg, -1, SQLITE_STATIC);
		}
	} else {
		assert_int_equal(
			sqlite3_prepare_v2(
				f->raw,
				"INSERT INTO results (id, target_id, "
				"started_at, duration_us, success, "
				"error_class, status_code, message) VALUES "
				"(?1, ?2, ?3, 321, ?6, ?7, 200, ?8)",
				-1, &st, NULL),
			SQLITE_OK);
		sqlite3_bind_text(st, 8, w->msg, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 1, w->id);
	sqlite3_bind_int64(st, 2, target);
	sqlite3_bind_int64(st, 3, w->first);
	sqlite3_bind_int(st, 6, w->success);
	sqlite3_bind_int(st, 7, w->success ? 0 : 2);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

/* The page order, oldest first: (first, src, id). */
static int cmp_want(const void *x, const void *y)
{
	const struct want *a = x, *b = y;

	if (a->first != b->first)
		return a->first < b->first ? -1 : 1;
	if (a->src != b->src)
		return a->src < b->src ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static bool same_text(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

/* Reads every page of q (limit per page) and checks them against want[]
 * (sorted oldest first) filtered by brute force: no run missed, none
 * repeated, in order, and each one's fields. */
static void check_pages(struct fixture *f, struct km_runs_query q,
			const struct want *want, size_t n_want)
{
	struct want *exp = calloc(n_want ? n_want : 1, sizeof *exp);
	size_t n_exp = 0, got = 0;
	bool more = true;

	assert_non_null(exp);
	for (size_t i = 0; i < n_want; i++) {
		const struct want *w = &want[i];

		if (w->first >= q.to_us || w->last < q.from_us)
			continue;
		if (q.outcome == KM_OUTCOME_SUCCESS && !w->success)
			continue;
		if (q.outcome == KM_OUTCOME_FAILURE && w->success)
			continue;
		exp[n_exp++] = *w;
	}
	if (!q.oldest_first)
		for (size_t i = 0; i < n_exp / 2; i++) {
			struct want t = exp[i];

			exp[i] = exp[n_exp - 1 - i];
			exp[n_exp - 1 - i] = t;
		}
	while (more) {
		struct km_error err = {0};
		struct km_run_row *v;
		size_t n;

		km_arena_reset(&f->a);
		assert_int_equal(km_reader_query_runs(f->r, &q, &f->a, &v, &n,
						      &more, &err),
				 0);
		assert_true(n <= q.limit);
		assert_true(n == q.limit || !more);
		for (size_t i = 0; i < n; i++, got++) {
			const struct want *w = &exp[got];

			assert_true(got < n_exp);
			assert_int_equal(v[i].src, w->src);
			assert_int_equal(v[i].id, w->id);
			assert_int_equal(v[i].first_us, w->first);
			assert_int_equal(v[i].last_us, w->last);
			assert_int_equal(v[i].count, w->count);
			assert_int_equal(v[i].success, w->success);
			assert_true(same_text(v[i].last_message, w->msg));
			if (w->src == KM_RUN_SRC_RESULT) {
				assert_int_equal(v[i].dur_sum_us, 321);
				assert_true(
					same_text(v[i].first_message, w->msg));
			} else {
				assert_int_equal(v[i].dur_sum_us,
						 550 * w->count);
			}
		}
		if (more) {
			q.has_cursor = true;
			q.cursor_us = v[n - 1].first_us;
			q.cursor_src = v[n - 1].src;
			q.cursor_id = v[n - 1].id;
		}
	}
	assert_int_equal(got, n_exp);
	free(exp);
}

/* A target whose oldest history is results not converted yet, then runs
 * — with ids of both tables colliding, rows of one time in both tables,
 * and ids at the ends of int64 — and another target's rows beside it. */
static void test_runs_pages_merge_results(void **state)
{
	enum { N_RES = 150, N_RUNS = 250 };
	struct fixture *f = *state;
	int64_t t = make_target(f, "probe//merged");
	int64_t other = make_target(f, "probe//other");
	static struct want w[N_RES + N_RUNS + 4];
	size_t n = 0;
	int64_t at = 1000000;

	srand(12);
	exec(f, "BEGIN");
	for (int i = 0; i < N_RES; i++) {
		w[n] = (struct want){KM_RUN_SRC_RESULT, i + 1, at, at, 1,
				     rand() % 4 != 0,   "res"};
		insert_run(f, t, &w[n++]);
		/* Every fifth one shares its time with the next. */
		at += i % 5 == 0 ? 0 : 1 + rand() % 1000;
	}
	at = w[n - 1].first; /* the first run begins with the last result */
	for (int i = 0; i < N_RUNS; i++) {
		int64_t len = rand() % 5000;

		/* ids 1..N_RUNS: the same as the results'. */
		w[n] = (struct want){KM_RUN_SRC_RUN,
				     i + 1,
				     at,
				     at + len,
				     1 + len / 100,
				     i % 2 == 0,
				     i % 2 ? "last" : NULL};
		insert_run(f, t, &w[n++]);
		at += len + 1 + rand() % 100;
	}
	/* One time held by a result and two runs, at the ends of the ids:
	 * the bounds of the other table must not fall on an id. */
	w[n] = (struct want){
		KM_RUN_SRC_RESULT, INT64_MAX, at, at, 1, false, "max"};
	insert_run(f, t, &w[n++]);
	w[n] = (struct want){
		KM_RUN_SRC_RESULT, INT64_MIN, at, at, 1, true, "min"};
	insert_run(f, t, &w[n++]);
	w[n] = (struct want){KM_RUN_SRC_RUN, INT64_MIN, at, at, 1, true, NULL};
	insert_run(f, t, &w[n++]);
	w[n] = (struct want){KM_RUN_SRC_RUN, INT64_MAX, at, at, 1,
			     false,          "last"};
	insert_run(f, t, &w[n++]);
	/* The other target's rows, in the same times. */
	for (int i = 0; i < 50; i++) {
		struct want o = {i % 2,
				 100000 + i,
				 1000000 + i * 777,
				 1000000 + i * 777,
				 1,
				 true,
				 "other"};

		insert_run(f, other, &o);
	}
	exec(f, "COMMIT");
	qsort(w, n, sizeof w[0], cmp_want);

	for (int round = 0; round < 60; round++) {
		struct km_runs_query q = {.target_id = t};
		static const size_t limits[] = {1, 2, 3, 7, 50, 1000};

		q.outcome = round % 3;
		q.oldest_first = round / 3 % 2;
		q.limit = limits[round % 6];
		q.from_us = INT64_MIN;
		q.to_us = INT64_MAX;
		if (round >= 12) { /* a random range */
			q.from_us = w[rand() % n].first + rand() % 3000 - 1500;
			q.to_us = q.from_us + rand() % (at - 1000000 + 1);
			if (q.to_us == q.from_us)
				q.to_us++;
		}
		check_pages(f, q, w, n);
	}
}

/* Runs A [100, 200] ok, B [300, 500] failing, C [600, 700] ok. */
static void test_runs_overlapping_the_start(void **state)
{
	struct fixture *f = *state;
	int64_t t = make_target(f, "probe//overlap");
	const struct want w[] = {
		{KM_RUN_SRC_RUN, 1, 100, 200, 5, true, NULL},
		{KM_RUN_SRC_RUN, 2, 300, 500, 9, false, "last"},
		{KM_RUN_SRC_RUN, 3, 600, 700, 4, true, NULL},
	};
	struct {
		int64_t from, to;
		int outcome;
		int64_t ids[3]; /* oldest first, 0-terminated */
	} cases[] = {
		{400, 1000, KM_OUTCOME_ANY, {2, 3}},
		{400, 1000, KM_OUTCOME_FAILURE, {2}},
		/* A began before B: it cannot last into 400. */
		{400, 1000, KM_OUTCOME_SUCCESS, {3}},
		{500, 601, KM_OUTCOME_ANY, {2, 3}},
		{501, 600, KM_OUTCOME_ANY, {0}},
		{501, 601, KM_OUTCOME_ANY, {3}},
		{150, 300, KM_OUTCOME_ANY, {1}},
		{150, 301, KM_OUTCOME_ANY, {1, 2}},
		{0, 100, KM_OUTCOME_ANY, {0}},
		{700, 701, KM_OUTCOME_SUCCESS, {3}},
		{701, 2000, KM_OUTCOME_ANY, {0}},
	};

	for (size_t i = 0; i < 3; i++)
		insert_run(f, t, &w[i]);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		for (int oldest = 0; oldest < 2; oldest++) {
			struct km_runs_query q = {.target_id = t,
						  .from_us = cases[c].from,
						  .to_us = cases[c].to,
						  .outcome = cases[c].outcome,
						  .oldest_first = oldest,
						  .limit = 10};
			struct km_error err = {0};
			struct km_run_row *v;
			size_t n, want_n = 0;
			bool more;

			while (want_n < 3 && cases[c].ids[want_n])
				want_n++;
			assert_int_equal(km_reader_query_runs(f->r, &q, &f->a,
							      &v, &n, &more,
							      &err),
					 0);
			assert_int_equal(n, want_n);
			assert_false(more);
			for (size_t k = 0; k < n; k++)
				assert_int_equal(
					v[k].id,
					cases[c].ids[oldest ? k
							    : want_n - 1 - k]);
			/* And the same through pages of one. */
			check_pages(f,
				    (struct km_runs_query){
					    .target_id = t,
					    .from_us = cases[c].from,
					    .to_us = cases[c].to,
					    .outcome = cases[c].outcome,
					    .oldest_first = oldest,
					    .limit = 1},
				    w, 3);
		}
	}
}

static void test_runs_bad_rows_and_cursors(void **state)
{
	struct fixture *f = *state;
	int64_t t = make_target(f, "probe//bad-run");
	struct km_runs_query q = {.target_id = t,
				  .from_us = INT64_MIN,
				  .to_us = INT64_MAX,
				  .limit = 10};
	struct km_error err = {0};
	struct km_run_row *v;
	size_t n;
	bool more;
	char sql[256];

	snprintf(sql, sizeof sql,
		 "INSERT INTO runs VALUES (77, %lld, 10, 20, 0, 1, 0, 200, 1, "
		 "2, 3, x'08', NULL, NULL)",
		 (long long)t);
	exec(f, sql);
	assert_int_equal(km_reader_query_runs(f->r, &q, &f->a, &v, &n, &more,
					      &err),
			 KM_ECORRUPT);
	assert_null(v);
	assert_non_null(strstr(err.msg, "runs row 77"));
	assert_non_null(strstr(err.msg, "count 0"));
	/* The reader goes on answering. */
	exec(f, "UPDATE runs SET count = 3 WHERE id = 77");
	assert_int_equal(
		km_reader_query_runs(f->r, &q, &f->a, &v, &n, &more, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].count, 3);
	/* A cursor of no source. */
	q.has_cursor = true;
	q.cursor_src = 7;
	assert_int_equal(km_reader_query_runs(f->r, &q, &f->a, &v, &n, &more,
					      &err),
			 KM_EINVAL);
}

/* ---- rollups ------------------------------------------------------------ */

#define DAYS 4
#define HOURS (DAYS * 24)
#define DAY0 20000 /* 2024-10-04 */

/* The data the rollups are packed from: minute m of hour h of the test's
 * range. */
static struct km_rollup_slot truth[HOURS][60];

static void random_truth(void)
{
	memset(truth, 0, sizeof truth);
	for (int h = 0; h < HOURS; h++) {
		if (rand() % 5 == 0)
			continue; /* a quiet hour */
		for (int m = 0; m < 60; m++) {
			struct km_rollup_slot *s = &truth[h][m];

			if (rand() % 10 < 3)
				continue;
			s->count = 1 + (uint32_t)(rand() % 60);
			s->failures = (uint32_t)(rand() % (s->count + 1));
			for (uint32_t i = 0; i < s->count; i++)
				s->hist[rand() % KM_LAT_BUCKETS]++;
		}
	}
}

static void insert_blob(struct fixture *f, const char *table, int64_t target,
			int64_t key, const uint8_t *b, size_t len)
{
	char sql[128];
	sqlite3_stmt *st;

	snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (?1, ?2, ?3)", table);
	assert_int_equal(sqlite3_prepare_v2(f->raw, sql, -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, target);
	sqlite3_bind_int64(st, 2, key);
	sqlite3_bind_blob(st, 3, b, (int)len, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

/* truth as the writer would store it: a minute row per hour with results,
 * a day row per day with results. */
static void insert_truth(struct fixture *f, int64_t target)
{
	static struct km_rollup_hour h;
	static uint8_t buf[KM_ROLLUP_PACK_MAX];
	size_t len;

	exec(f, "BEGIN");
	for (int d = 0; d < DAYS; d++) {
		struct km_rollup_hour day;

		memset(&day, 0, sizeof day);
		for (int hh = 0; hh < 24; hh++) {
			int hour = d * 24 + hh;

			memcpy(h.min, truth[hour], sizeof h.min);
			km_rollup_hour_total(&h, &day.min[hh]);
			if ((len = km_rollup_pack(&h, buf)))
				insert_blob(f, "rollup_minutes", target,
					    (int64_t)(DAY0 + d) * 24 + hh, buf,
					    len);
		}
		if ((len = km_rollup_pack(&day, buf)))
			insert_blob(f, "rollup_hours", target, DAY0 + d, buf,
				    len);
	}
	exec(f, "COMMIT");
}

static bool slot_equal(const struct km_rollup_slot *a,
		       const struct km_rollup_slot *b)
{
	return !memcmp(a, b, sizeof *a);
}

/* What km_reader_rollups must answer, counted from truth: a minute in the
 * step of its start; an hour before oldest (the first hour with minute
 * rows left) whole, in the step of its start or of from. */
static void brute_force(int64_t from, int64_t to, int64_t step, int oldest,
			struct km_rollup_slot *want, size_t n)
{
	memset(want, 0, n * sizeof *want);
	for (int h = 0; h < HOURS; h++) {
		int64_t start = ((int64_t)DAY0 * 24 + h) * KM_HOUR_US;

		for (int m = 0; m < 60; m++) {
			const struct km_rollup_slot *s = &truth[h][m];
			int64_t t = start + m * KM_MINUTE_US;

			if (!s->count)
				continue;
			if (h < oldest) {
				if (start >= to || start + KM_HOUR_US <= from)
					continue;
				t = start > from ? start : from;
			} else if (t < from || t >= to) {
				continue;
			}
			assert_true((size_t)((t - from) / step) < n);
			km_rollup_merge(&want[(t - from) / step], s);
		}
	}
}

static void check_rollups(struct fixture *f, int64_t target, int64_t from,
			  int64_t to, int64_t step, int oldest)
{
	struct km_rollup_query q = {target, from, to, step};
	struct km_rollup_series out;
	struct km_rollup_slot *want;
	struct km_error err = {0};
	size_t n = (size_t)((to - from + step - 1) / step);

	want = calloc(n, sizeof *want);
	assert_non_null(want);
	brute_force(from, to, step, oldest, want, n);
	km_arena_reset(&f->a);
	if (km_reader_rollups(f->r, &q, &f->a, &out, &err))
		fail_msg("rollups %lld..%lld step %lld: %s", (long long)from,
			 (long long)to, (long long)step, err.msg);
	assert_int_equal(out.n, n);
	for (size_t i = 0; i < n; i++)
		if (!slot_equal(&out.steps[i], &want[i]))
			fail_msg("rollups %lld..%lld step %lld: step %zu: "
				 "count %u failures %u, want %u %u",
				 (long long)from, (long long)to,
				 (long long)step, i, out.steps[i].count,
				 out.steps[i].failures, want[i].count,
				 want[i].failures);
	/* Nothing coarse after the minutes that are left. */
	if (from >= ((int64_t)DAY0 * 24 + oldest) * KM_HOUR_US)
		assert_true(out.coarse_until_us == INT64_MIN);
	else
		assert_true(out.coarse_until_us <=
			    ((int64_t)DAY0 * 24 + oldest) * KM_HOUR_US);
	free(want);
}

/* Random queries: from on a minute (or an hour, with steps of whole
 * hours, where the hour rows are read), to anywhere, steps of any number
 * of minutes. */
static void random_queries(struct fixture *f, int64_t target, int oldest,
			   int rounds)
{
	const int64_t base = (int64_t)DAY0 * 24 * KM_HOUR_US;
	static const int64_t steps_min[] = {1,  2,   5,   7,    60,
					    90, 120, 360, 1440, 1441};

	for (int i = 0; i < rounds; i++) {
		int64_t from, to, step;

		if (i % 3 == 0) { /* whole, aligned hours */
			from = base + (rand() % (HOURS + 4) - 2) * KM_HOUR_US;
			step = (1 + rand() % 7) * KM_HOUR_US;
		} else {
			from = base + (rand() % ((HOURS + 4) * 60) - 120) *
					      KM_MINUTE_US;
			step = steps_min[rand() % 10] * KM_MINUTE_US;
		}
		to = from + 1 + rand() % ((int64_t)(HOURS + 2) * KM_HOUR_US);
		if (rand() % 2) /* to on a minute, too */
			to = from +
			     ((to - from) / KM_MINUTE_US + 1) * KM_MINUTE_US;
		if ((to - from + step - 1) / step > KM_ROLLUP_STEPS_MAX)
			continue;
		check_rollups(f, target, from, to, step, oldest);
	}
}

static void test_rollups_equal_brute_force(void **state)
{
	struct fixture *f = *state;
	int64_t t = make_target(f, "probe//rollups");
	int64_t other = make_target(f, "probe//rollups-other");
	int oldest = 0;
	char sql[256];

	srand(99);
	/* Another target's rollups in the same hours must not count. */
	random_truth();
	insert_truth(f, other);
	random_truth();
	insert_truth(f, t);
	while (oldest < HOURS && !truth[oldest][0].count) {
		bool any = false;

		for (int m = 0; m < 60; m++)
			any |= truth[oldest][m].count > 0;
		if (any)
			break;
		oldest++;
	}
	random_queries(f, t, oldest, 300);

	/* Minute retention removes the first 30 hours' minutes: those
	 * hours are counted from the hour rows, whole. */
	snprintf(sql, sizeof sql,
		 "DELETE FROM rollup_minutes WHERE target_id = %lld AND hour "
		 "< %lld",
		 (long long)t, (long long)DAY0 * 24 + 30);
	exec(f, sql);
	for (oldest = 30; oldest < HOURS; oldest++) {
		bool any = false;

		for (int m = 0; m < 60; m++)
			any |= truth[oldest][m].count > 0;
		if (any)
			break;
	}
	random_queries(f, t, oldest, 300);
	/* And every minute of the range: only hour rows are left. */
	snprintf(sql, sizeof sql,
		 "DELETE FROM rollup_minutes WHERE target_id = %lld",
		 (long long)t);
	exec(f, sql);
	random_queries(f, t, HOURS, 200);
}

/* With steps of whole aligned hours, whole hours come from the hour rows:
 * minute rows that do not unpack are not even read. */
static void test_rollups_hourly_reads_hour_rows(void **state)
{
	struct fixture *f = *state;
	int64_t t = make_target(f, "probe//hourly");
	const int64_t base = (int64_t)DAY0 * 24 * KM_HOUR_US;
	struct km_rollup_query q = {t, base, base + 48 * KM_HOUR_US,
				    3 * KM_HOUR_US};
	struct km_rollup_series out;
	struct km_error err = {0};
	char sql[256];

	srand(5);
	random_truth();
	insert_truth(f, t);
	snprintf(sql, sizeof sql,
		 "UPDATE rollup_minutes SET blob = x'ff' WHERE target_id = "
		 "%lld AND hour > %lld",
		 (long long)t, (long long)DAY0 * 24);
	exec(f, sql);
	assert_int_equal(km_reader_rollups(f->r, &q, &f->a, &out, &err), 0);
	assert_int_equal(out.n, 16);
	/* Steps of 90 minutes read the minutes and find the bad blob. */
	q.step_us = 90 * KM_MINUTE_US;
	assert_int_equal(km_reader_rollups(f->r, &q, &f->a, &out, &err),
			 KM_ECORRUPT);
	assert_null(out.steps);
	assert_non_null(strstr(err.msg, "rollup_minutes row"));
	assert_non_null(strstr(err.msg, "hour"));
}

static void test_rollups_hostile_rows(void **state)
{
	struct fixture *f = *state;
	int64_t t = make_target(f, "probe//hostile-rollups");
	const int64_t hour = (int64_t)DAY0 * 24 + 5;
	struct km_rollup_query q = {t, hour * KM_HOUR_US,
				    (hour + 1) * KM_HOUR_US, KM_MINUTE_US};
	struct km_rollup_series out;
	struct km_error err = {0};
	static struct km_rollup_hour h;
	static uint8_t buf[KM_ROLLUP_PACK_MAX];
	size_t len;
	char sql[256];

	memset(&h, 0, sizeof h);
	h.min[7].count = 3;
	h.min[7].hist[2] = 3;
	len = km_rollup_pack(&h, buf);
	insert_blob(f, "rollup_minutes", t, hour, buf, len);
	assert_int_equal(km_reader_rollups(f->r, &q, &f->a, &out, &err), 0);
	assert_int_equal(out.n, 60);
	assert_int_equal(out.steps[7].count, 3);

	/* Every prefix of the blob: an error naming the row, or (the empty
	 * one) nothing. */
	for (size_t cut = 0; cut < len; cut++) {
		snprintf(sql, sizeof sql,
			 "UPDATE rollup_minutes SET blob = substr(blob, 1, "
			 "%zu) WHERE target_id = %lld",
			 cut, (long long)t);
		exec(f, sql);
		err.msg[0] = '\0';
		if (cut == 0) { /* x'': an hour without a minute */
			assert_int_equal(km_reader_rollups(f->r, &q, &f->a,
							   &out, &err),
					 0);
			assert_int_equal(out.steps[7].count, 0);
		} else {
			assert_int_equal(km_reader_rollups(f->r, &q, &f->a,
							   &out, &err),
					 KM_ECORRUPT);
			assert_non_null(strstr(err.msg, "rollup_minutes row"));
			assert_non_null(strstr(err.msg, "target"));
		}
		exec(f, "DELETE FROM rollup_minutes");
		insert_blob(f, "rollup_minutes", t, hour, buf, len);
	}
	/* Random bytes: never a crash (ASan), KM_ECORRUPT or a count. */
	srand(3);
	for (int i = 0; i < 300; i++) {
		uint8_t junk[64];
		size_t jl = 1 + (size_t)(rand() % (int)sizeof junk);
		int rc;

		for (size_t k = 0; k < jl; k++)
			junk[k] = (uint8_t)rand();
		exec(f, "DELETE FROM rollup_minutes");
		insert_blob(f, "rollup_minutes", t, hour, junk, jl);
		rc = km_reader_rollups(f->r, &q, &f->a, &out, &err);
		assert_true(rc == 0 || rc == KM_ECORRUPT);
	}
	exec(f, "DELETE FROM rollup_minutes");

	/* A day row with an hour past 23. */
	memset(&h, 0, sizeof h);
	h.min[30].count = 1;
	h.min[30].hist[0] = 1;
	len = km_rollup_pack(&h, buf);
	insert_blob(f, "rollup_hours", t, DAY0, buf, len);
	assert_int_equal(km_reader_rollups(f->r, &q, &f->a, &out, &err),
			 KM_ECORRUPT);
	assert_non_null(strstr(err.msg, "past the day"));
	exec(f, "DELETE FROM rollup_hours");
	/* A key that is not an integer. */
	snprintf(sql, sizeof sql,
		 "INSERT INTO rollup_minutes VALUES (%lld, %lld.5, x'')",
		 (long long)t, (long long)hour);
	exec(f, sql);
	assert_int_equal(km_reader_rollups(f->r, &q, &f->a, &out, &err),
			 KM_ECORRUPT);
	assert_non_null(strstr(err.msg, "not an integer"));
}

static void test_rollups_bad_queries(void **state)
{
	struct fixture *f = *state;
	const int64_t m = KM_MINUTE_US;
	const struct km_rollup_query bad[] = {
		{1, 0, 0, m},          /* empty */
		{1, 10 * m, 5 * m, m}, /* backwards */
		{1, 0, 60 * m, 0},     /* no step */
		{1, 0, 60 * m, -m},    /* negative */
		{1, 0, 60 * m, m + 1}, /* not whole minutes */
		{1, 30, 60 * m, m},    /* within a minute */
		{1, 0, (KM_ROLLUP_STEPS_MAX + 1) * m, m}, /* too many steps */
		{1, INT64_MIN, 0, m},                     /* past any year */
		{1, 0, INT64_MAX, INT64_MAX / m * m},
	};
	struct km_rollup_query ok = {1, 0, KM_ROLLUP_STEPS_MAX * m, m};
	struct km_rollup_series out;
	struct km_error err = {0};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err.msg[0] = '\0';
		assert_int_equal(km_reader_rollups(f->r, &bad[i], &f->a, &out,
						   &err),
				 KM_EINVAL);
		assert_true(strlen(err.msg) > 0);
		assert_null(out.steps);
	}
	assert_int_equal(km_reader_rollups(f->r, &ok, &f->a, &out, &err), 0);
	assert_int_equal(out.n, KM_ROLLUP_STEPS_MAX);
	/* The last step cut short. */
	ok.to_us = 10 * m + 1;
	ok.step_us = 5 * m;
	assert_int_equal(km_reader_rollups(f->r, &ok, &f->a, &out, &err), 0);
	assert_int_equal(out.n, 3);
}

static void test_slot_quantiles(void **state)
{
	struct km_rollup_slot s = {0};
	int64_t v;

	(void)state;
	assert_int_equal(km_rollup_slot_quantile(&s, 0.5), -1);
	/* All in bucket 3 ([400, 800) µs): within it, at every q. */
	s.count = s.hist[3] = 10;
	for (double q = 0; q <= 1.0; q += 0.125) {
		v = km_rollup_slot_quantile(&s, q);
		assert_true(v >= 400 && v < 800);
	}
	/* 90 fast, 10 in the last bucket (from 26.2 s): p50 fast, p99 the
	 * last bucket's lower bound, never past it. */
	s.hist[3] = 90;
	s.hist[KM_LAT_BUCKETS - 1] = 10;
	s.count = 100;
	v = km_rollup_slot_quantile(&s, 0.5);
	assert_true(v >= 400 && v < 800);
	assert_int_equal(km_rollup_slot_quantile(&s, 0.99),
			 km_lat_bucket_lower_us(KM_LAT_BUCKETS - 1));
	assert_int_equal(km_rollup_slot_quantile(&s, 1),
			 km_lat_bucket_lower_us(KM_LAT_BUCKETS - 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_runs_pages_merge_results,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_runs_overlapping_the_start,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_runs_bad_rows_and_cursors,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollups_equal_brute_force,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_rollups_hourly_reads_hour_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollups_hostile_rows,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollups_bad_queries, setup,
						teardown),
		cmocka_unit_test(test_slot_quantiles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
