/*
 * Every target's open run (storage/km_runs.h, issue 12): steady results
 * stay in memory, an outcome's change closes the run with its row, a
 * deletion ends it, flushes come due flush_us after the last write — and,
 * with thousands of targets added, written and ended at random, the next
 * run due is always the one a brute-force scan finds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "km_runs.h"

#define S 1000000LL

static struct km_runs *table(int64_t flush_us, size_t max_open)
{
	struct km_runs_options o = {.flush_us = flush_us, .max_open = max_open};
	struct km_runs *t;

	assert_int_equal(km_runs_new(&o, &t), 0);
	return t;
}

static struct km_result res(int64_t target, int64_t at, bool ok,
			    const char *msg)
{
	return (struct km_result){.target_id = target,
				  .started_us = at,
				  .duration_us = 1500,
				  .success = ok,
				  .error_class = ok ? 0 : KM_EC_TIMEOUT,
				  .message = msg};
}

static void test_steady_flip_end(void **state)
{
	struct km_runs *t = table(10 * S, 0);
	struct km_run_write w, c;
	struct km_result r;
	bool closed;

	(void)state;
	for (int i = 0; i < 100; i++) {
		r = res(7, i * S, true, NULL);
		assert_int_equal(km_runs_add(t, &r, i * S, &c, &closed, NULL),
				 0);
		assert_false(closed);
	}
	assert_int_equal(km_runs_open(t), 1);
	/* Due 10 s after it opened (never written): once, until written. */
	assert_int_equal(km_runs_next_due(t), 10 * S);
	assert_true(km_runs_due(t, 100 * S, &w));
	assert_int_equal(w.run.count, 100);
	assert_int_equal(w.row_id, 0);
	assert_true(w.open);
	assert_true(km_runs_due(t, 100 * S, &w)); /* not written yet */
	assert_true(w.changed);
	assert_int_equal(km_runs_written(t, 7, 41, 100 * S), 0);
	assert_false(km_runs_due(t, 100 * S, &w));
	assert_true(km_runs_due(t, 110 * S, &w));
	assert_false(w.changed); /* nothing since */
	assert_int_equal(km_runs_next_due(t), 110 * S);
	assert_int_equal(km_runs_written(t, 8, 1, 0), KM_ENOTFOUND);

	/* A failure ends the run: it comes back closed, with its row; the
	 * target's aux slot is handed back by the same lookup. */
	r = res(7, 101 * S, false, "timeout after 1s");
	{
		void **slot = NULL;

		assert_int_equal(
			km_runs_add(t, &r, 101 * S, &c, &closed, &slot), 0);
		assert_ptr_equal(slot, km_runs_aux(t, 7));
	}
	assert_true(closed);
	assert_false(c.open);
	assert_int_equal(c.row_id, 41);
	assert_int_equal(c.run.count, 100);
	assert_true(c.run.success);
	assert_int_equal(c.run.last_us, 99 * S);
	km_run_clear(&c.run);
	/* The new run: a failure's, unwritten, due when the target was
	 * (its flush time stays). */
	assert_int_equal(km_runs_next_due(t), 110 * S);
	assert_true(km_runs_due(t, 110 * S, &w));
	assert_false(w.run.success);
	assert_true(w.changed);
	assert_int_equal(w.last_add_us, 101 * S);
	assert_int_equal(w.row_id, 0);
	assert_string_equal(w.run.first_message, "timeout after 1s");

	/* The target goes: its run ends; nothing is left. */
	assert_true(km_runs_end(t, 7, &c));
	assert_int_equal(c.run.target_id, 7);
	assert_int_equal(c.run.count, 1);
	assert_string_equal(c.run.last_message, "timeout after 1s");
	km_run_clear(&c.run);
	assert_false(km_runs_end(t, 7, &c));
	assert_int_equal(km_runs_open(t), 0);
	assert_int_equal(km_runs_next_due(t), INT64_MAX);
	assert_false(km_runs_due(t, INT64_MAX, &w));
	km_runs_free(t);
}

static void test_bounded(void **state)
{
	struct km_runs *t = table(0, 2);
	struct km_run_write c;
	struct km_result r;
	bool closed;

	(void)state;
	r = res(1, 0, false, "a");
	assert_int_equal(km_runs_add(t, &r, 0, &c, &closed, NULL), 0);
	r = res(2, 0, true, NULL);
	assert_int_equal(km_runs_add(t, &r, 0, &c, &closed, NULL), 0);
	r = res(3, 0, true, NULL);
	assert_int_equal(km_runs_add(t, &r, 0, &c, &closed, NULL), KM_EFULL);
	/* A known target still folds; the default flush is 10 s. */
	r = res(2, S, true, NULL);
	assert_int_equal(km_runs_add(t, &r, S, &c, &closed, NULL), 0);
	assert_int_equal(km_runs_next_due(t), KM_RUNS_FLUSH_US_DEFAULT);
	/* Popped until empty, each once. */
	assert_true(km_runs_pop(t, &c));
	km_run_clear(&c.run);
	assert_true(km_runs_pop(t, &c));
	assert_true(c.run.target_id == 1 || c.run.target_id == 2);
	km_run_clear(&c.run);
	assert_false(km_runs_pop(t, &c));
	r = res(3, 0, true, NULL);
	assert_int_equal(km_runs_add(t, &r, 0, &c, &closed, NULL), 0);
	km_runs_free(t); /* frees the open runs and their messages */
}

/* The earliest due time among the open runs, brute force. */
static int64_t brute_next(const int64_t *due, const bool *open, int n)
{
	int64_t m = INT64_MAX;

	for (int i = 0; i < n; i++)
		if (open[i] && due[i] < m)
			m = due[i];
	return m;
}

static void test_many_targets_random(void **state)
{
	enum { N = 3000 };
	static int64_t due[N];
	static bool open[N];
	struct km_runs *t = table(10 * S, 0);
	struct km_run_write w, c;
	int64_t now = 0;
	int n_open = 0;

	(void)state;
	srand(5);
	for (int step = 0; step < 60000; step++) {
		int id = rand() % N, op = rand() % 10;
		bool closed;

		now += rand() % 1000;
		if (op < 6) { /* a result, now and then another outcome */
			struct km_result r =
				res(id + 1, now, rand() % 50 != 0, "x");

			assert_int_equal(
				km_runs_add(t, &r, now, &c, &closed, NULL), 0);
			if (!open[id]) {
				due[id] = now + 10 * S;
				n_open += !open[id];
				open[id] = true;
			}
			if (closed)
				km_run_clear(&c.run);
		} else if (op < 7) { /* a deletion */
			bool had = km_runs_end(t, id + 1, &c);

			assert_int_equal(had, open[id]);
			if (had) {
				km_run_clear(&c.run);
				open[id] = false;
				n_open--;
			}
		} else { /* flushes due by now, written */
			while (km_runs_due(t, now, &w)) {
				int k = (int)w.run.target_id - 1;

				assert_true(open[k]);
				assert_int_equal(due[k],
						 brute_next(due, open, N));
				assert_true(due[k] <= now);
				assert_int_equal(km_runs_written(t, k + 1,
								 k + 100, now),
						 0);
				due[k] = now + 10 * S;
			}
		}
		assert_int_equal(km_runs_open(t), n_open);
		assert_int_equal(km_runs_next_due(t), brute_next(due, open, N));
	}
	km_runs_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steady_flip_end),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_many_targets_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
