/*
 * km_storms (issue 11): the storm guard's storms recorded as they start
 * and end, the recoveries each refused counted, the storms on read and
 * their number told, the ones on at shutdown ended "kubemedicd stopped",
 * and the ones a daemon that died left on ended by the next start. On a
 * real SQLite file: closing the store runs every queued write, so what a
 * reopened store reads is what was written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_storms.h"
#include "km_test.h"
#include "km_time.h"

struct fixture {
	char *dir, *db;
	struct km_store *s;
	struct km_arena a;
};

static void open_store(struct fixture *f)
{
	struct km_store_options o = {.path = f->db};
	struct km_error err = {0};

	if (km_store_open(&o, &f->s, &err))
		fail_msg("open: %s", err.msg);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	f->dir = km_test_tmpdir();
	if (!f->dir || asprintf(&f->db, "%s/km.db", f->dir) < 0)
		return -1;
	km_arena_init(&f->a, 4096);
	open_store(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	km_store_close(f->s);
	km_arena_free(&f->a);
	km_test_rmrf(f->dir);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

/* Every storm in the store, newest first (after closing and reopening
 * it: every queued write has run). */
static struct km_storm *stored(struct fixture *f, size_t *n)
{
	struct km_storm_query q = {0};
	struct km_reader *r;
	struct km_storm *v;
	struct km_error err = {0};
	bool more;

	km_store_close(f->s);
	open_store(f);
	assert_int_equal(km_reader_open(f->s, &r, &err), 0);
	assert_int_equal(
		km_reader_list_storms(r, &q, &f->a, &v, n, &more, &err), 0);
	km_reader_close(r);
	return v;
}

static size_t told[16], n_told;

static void listener(void *arg, size_t on)
{
	(void)arg;
	if (n_told < sizeof told / sizeof told[0])
		told[n_told++] = on;
}

static struct km_budget_storm_change
change(int change, int group, const char *name, const char *cluster)
{
	struct km_budget_storm_change c = {.change = change};

	c.storm.group = group;
	snprintf(c.storm.name, sizeof c.storm.name, "%s", name);
	snprintf(c.storm.cluster, sizeof c.storm.cluster, "%s", cluster);
	c.storm.unhealthy = 7;
	c.storm.total = 10;
	c.storm.share_pct = 40;
	snprintf(c.storm.why, sizeof c.storm.why, "storm: 7 of 10 %s", name);
	return c;
}

static void test_storms_recorded_counted_told(void **state)
{
	struct fixture *f = *state;
	struct km_budget_storm_change p =
		change(1, KM_BUDGET_POLICY, "lost-nodes", "");
	struct km_budget_storm_change z =
		change(1, KM_BUDGET_ZONE, "eu-1a", "prod");
	struct km_budget_storm_change other =
		change(1, KM_BUDGET_ZONE, "eu-1b", "prod");
	struct km_budget_storm_change none = {0};
	struct km_storm on[4], *v;
	struct km_storms *t;
	struct km_error err = {0};
	int64_t before = km_now_us();
	size_t n;

	n_told = 0;
	assert_int_equal(km_storms_new(f->s, &t, &err), 0);
	km_storms_set_listener(t, listener, NULL);
	assert_int_equal(n_told, 1); /* told the number now */
	assert_int_equal(told[0], 0);

	km_storms_change(t, &p);
	km_storms_change(t, &none); /* nothing */
	km_storms_change(t, &z);
	assert_int_equal(km_storms_count(t), 2);
	assert_int_equal(n_told, 3);
	assert_int_equal(told[1], 1);
	assert_int_equal(told[2], 2);
	km_storms_refused(t, &p.storm);
	km_storms_refused(t, &p.storm);
	km_storms_refused(t, &other.storm); /* not on: not counted */

	assert_int_equal(km_storms_on(t, on, 4, &f->a), 2);
	assert_int_equal(on[0].group, KM_STORM_POLICY); /* oldest first */
	assert_string_equal(on[0].name, "lost-nodes");
	assert_string_equal(on[0].cluster, "");
	assert_int_equal(on[0].refused, 2);
	assert_int_equal(on[0].unhealthy, 7);
	assert_int_equal(on[0].total, 10);
	assert_int_equal(on[0].share_pct, 40);
	assert_string_equal(on[0].why, "storm: 7 of 10 lost-nodes");
	assert_true(on[0].started_us >= before);
	assert_int_equal(on[0].ended_us, 0);
	assert_int_equal(on[1].group, KM_STORM_ZONE);
	assert_string_equal(on[1].name, "eu-1a");
	assert_string_equal(on[1].cluster, "prod");
	assert_int_equal(on[1].refused, 0);
	/* At most max copied; the number on all the same. */
	assert_int_equal(km_storms_on(t, on, 1, &f->a), 2);

	p.change = -1;
	km_storms_change(t, &p);
	assert_int_equal(km_storms_count(t), 1);
	assert_int_equal(n_told, 4);
	assert_int_equal(told[3], 1);
	assert_int_equal(km_storms_on(t, on, 4, &f->a), 1);
	assert_string_equal(on[0].name, "eu-1a");
	/* An end of a storm not on changes nothing. */
	km_storms_change(t, &p);
	assert_int_equal(n_told, 4);

	/* Cleared: never called again. */
	km_storms_set_listener(t, NULL, NULL);
	km_storms_change(t, &other);
	assert_int_equal(n_told, 4);
	other.change = -1;
	km_storms_change(t, &other);
	km_storms_free(t); /* eu-1a is on: ended, "kubemedicd stopped" */

	v = stored(f, &n);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].name, "eu-1b");
	assert_true(v[0].ended_us >= v[0].started_us);
	assert_string_equal(v[0].end_note, "");
	assert_string_equal(v[1].name, "eu-1a");
	assert_int_equal(v[1].group, KM_STORM_ZONE);
	assert_string_equal(v[1].cluster, "prod");
	assert_string_equal(v[1].end_note, "kubemedicd stopped");
	assert_true(v[1].ended_us >= v[1].started_us);
	assert_string_equal(v[2].name, "lost-nodes");
	assert_int_equal(v[2].refused, 2);
	assert_string_equal(v[2].end_note, "");
	assert_string_equal(v[2].why, "storm: 7 of 10 lost-nodes");
	assert_true(v[2].ended_us >= v[2].started_us);
}

/* A daemon that died left a storm on: the next start ends it, so that
 * the guard counts again from the targets' health. */
static void test_a_start_ends_what_a_crash_left_on(void **state)
{
	struct fixture *f = *state;
	struct km_storm m = {.group = KM_STORM_POLICY,
			     .name = "crashloop",
			     .why = "w",
			     .unhealthy = 5,
			     .total = 6,
			     .share_pct = 40};
	struct km_storms *t;
	struct km_storm *v;
	struct km_error err = {0};
	size_t n;

	assert_int_equal(km_store_begin_storm_async(f->s, &m, NULL, NULL), 0);
	assert_int_equal(km_storms_new(f->s, &t, &err), 0);
	assert_int_equal(km_storms_count(t), 0);
	km_storms_free(t);
	v = stored(f, &n);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].end_note,
			    "kubemedicd stopped without ending it");
	assert_true(v[0].ended_us > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_storms_recorded_counted_told, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_start_ends_what_a_crash_left_on, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
