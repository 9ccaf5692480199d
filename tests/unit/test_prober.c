/*
 * The prober's schedule, through its public contract and the results it
 * hands the health hub (stored by a real store on a temporary database):
 * first runs spread over the period by the target's hash and after the
 * initial delay, fixed-rate slots without overlap, slots missed while the
 * loop was behind skipped rather than run in a burst, and the lag of
 * every run measured.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "km_health.h"
#include "km_prober.h"
#include "km_store.h"
#include "km_test.h"
#include "km_time.h"

#define MS 1000000LL
#define WAIT_NS (20000LL * MS) /* a failure guard, not a pacer */

struct fixture {
	char *dir, *db, *file;
	struct km_store *s;
	struct km_health *h;
	struct km_prober *pr;
	struct km_reader *r;
	struct km_arena a;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	/* Each check's result a row of its own (the store's schema-5
	 * baseline), to look at one by one. */
	struct km_store_options so = {.raw_results = true};
	struct km_health_options ho = {0};
	struct km_prober_options po = {0};
	struct km_error err = {0};
	FILE *fp;

	f->dir = km_test_tmpdir();
	if (!f->dir || asprintf(&f->db, "%s/km.db", f->dir) < 0 ||
	    asprintf(&f->file, "%s/beat", f->dir) < 0)
		return -1;
	fp = fopen(f->file, "w");
	if (!fp)
		return -1;
	fputs("alive", fp);
	fclose(fp);
	km_arena_init(&f->a, 65536);
	so.path = f->db;
	if (km_store_open(&so, &f->s, &err))
		goto fail;
	ho.store = f->s;
	if (km_health_open(&ho, &f->h, &err))
		goto fail;
	po.health = f->h;
	if (km_prober_start(&po, &f->pr, &err) ||
	    km_reader_open(f->s, &f->r, &err))
		goto fail;
	*state = f;
	return 0;
fail:
	fprintf(stderr, "setup: %s\n", err.msg);
	return -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct km_error err = {0};

	km_prober_stop(f->pr);
	km_reader_close(f->r);
	km_store_flush(f->s, &err);
	km_health_close(f->h);
	km_store_close(f->s);
	km_arena_free(&f->a);
	km_test_rmrf(f->dir);
	free(f->file);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

/* A probe in the store and tracked by the hub, not scheduled yet. */
static struct km_probe define_probe(struct fixture *f, struct km_probe p)
{
	char tname[100];
	struct km_health_target t = {.name = tname};
	struct km_error err = {0};

	p.success_threshold = p.success_threshold ? p.success_threshold : 1;
	p.failure_threshold = p.failure_threshold ? p.failure_threshold : 1;
	p.timeout_ms = p.timeout_ms ? p.timeout_ms : 1000;
	/* From the config file unless the test says otherwise: trusted, not
	 * held to the API's policy. */
	if (!p.source)
		p.source = KM_SOURCE_CONFIG;
	if (km_store_create_probe(f->s, &p, &err))
		fail_msg("create %s: %s", p.name, err.msg);
	snprintf(tname, sizeof tname, "probe//%s", p.name);
	t.id = p.target_id;
	t.created_us = p.create_us;
	assert_int_equal(km_health_track(f->h, &t), 0);
	return p;
}

/* ...and scheduled by the prober. */
static struct km_probe add_probe(struct fixture *f, struct km_probe p)
{
	p = define_probe(f, p);
	assert_int_equal(km_prober_upsert(f->pr, &p), 0);
	return p;
}

static struct km_probe file_probe(struct fixture *f, const char *name,
				  int64_t period_ms)
{
	return (struct km_probe){.name = name,
				 .type = KM_PROBE_FILE,
				 .path = f->file,
				 .period_ms = period_ms};
}

/* Waits until the prober has finished n runs in all. */
static void wait_runs(struct fixture *f, uint64_t n)
{
	int64_t until = km_mono_ns() + WAIT_NS;
	struct km_prober_stats st;

	for (;;) {
		struct timespec ms = {0, MS};

		km_prober_get_stats(f->pr, &st, NULL);
		if (st.results_ok + st.results_failed >= n)
			return;
		if (km_mono_ns() > until)
			fail_msg("only %llu of %llu runs finished",
				 (unsigned long long)(st.results_ok +
						      st.results_failed),
				 (unsigned long long)n);
		nanosleep(&ms, NULL);
	}
}

/* Every stored result of a target, oldest first. */
static size_t results(struct fixture *f, int64_t target_id,
		      struct km_result **out)
{
	struct km_history_query q = {.target_id = target_id,
				     .from_us = INT64_MIN,
				     .to_us = INT64_MAX,
				     .oldest_first = true,
				     .limit = 1000};
	struct km_error err = {0};
	size_t n;
	bool more;

	assert_int_equal(km_store_flush(f->s, &err), 0);
	assert_int_equal(km_reader_query_results(f->r, &q, &f->a, out, &n,
						 &more, &err),
			 0);
	return n;
}

/* First runs come after the initial delay, at the target's own offset
 * within the period, so probes of one period are spread over it: their
 * first starts are ordered as their offsets are. (The probes are defined
 * first and handed to the prober together: each definition is a commit,
 * and the schedule counts from when the prober takes a probe.) */
static void test_first_runs_spread_over_the_period(void **state)
{
	struct fixture *f = *state;
	enum { N = 24 };
	struct km_probe p[N];
	char names[N][16];
	int64_t t0 = km_now_us(), first[N], off[N], lo = INT64_MAX, hi = 0;

	for (int i = 0; i < N; i++) {
		char tname[32];

		snprintf(names[i], sizeof names[i], "spread%02d", i);
		snprintf(tname, sizeof tname, "probe//%s", names[i]);
		off[i] = km_prober_offset_ms(tname, 1000);
		p[i] = file_probe(f, names[i], 1000);
		p[i].initial_delay_ms = 200;
		p[i] = define_probe(f, p[i]);
	}
	t0 = km_now_us();
	for (int i = 0; i < N; i++)
		assert_int_equal(km_prober_upsert(f->pr, &p[i]), 0);
	wait_runs(f, N);
	for (int i = 0; i < N; i++) {
		struct km_result *v;

		assert_true(results(f, p[i].target_id, &v) >= 1);
		first[i] = v[0].started_us;
		assert_true(first[i] >= t0 + 200 * 1000); /* initial delay */
		if (off[i] < lo)
			lo = off[i];
		if (off[i] > hi)
			hi = off[i];
	}
	/* The hash spreads them: over more than half of the period... */
	assert_true(hi - lo > 500);
	/* ...and each comes at its own offset: ordered as the offsets are
	 * (20 ms apart or more, beyond the time the upserts take). */
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			if (off[i] + 20 < off[j])
				assert_true(first[i] < first[j]);
}

/* A probe never overlaps itself: a run still going when the next slot is
 * due makes that slot skipped; runs start on the fixed grid of slots. */
static void test_no_overlap(void **state)
{
	struct fixture *f = *state;
	static const char *argv[] = {"/bin/sh", "-c", "sleep 0.25"};
	struct km_probe p = {.name = "slow",
			     .type = KM_PROBE_EXEC,
			     .argv = argv,
			     .argc = 3,
			     .period_ms = 100};
	struct km_prober_stats st;
	struct km_result *v;
	size_t n;

	p = add_probe(f, p);
	wait_runs(f, 4);
	n = results(f, p.target_id, &v);
	assert_true(n >= 4);
	for (size_t i = 1; i < n; i++) {
		int64_t end = v[i - 1].started_us + v[i - 1].duration_us;

		/* Not before the previous run ended (it sleeps 250 ms)... */
		assert_true(v[i].started_us >= end);
		assert_true(v[i].started_us - v[i - 1].started_us >=
			    250 * 1000);
		/* ...and at the first slot after it ended (a period, plus
		 * room for the loop's lag). */
		assert_true(v[i].started_us < end + (100 + 150) * 1000);
	}
	km_prober_get_stats(f->pr, &st, NULL);
	assert_true(st.skipped_overlap >= 2 * (n - 1));
}

static void stall(void *arg)
{
	struct timespec ts = km_timespec_ns(*(int64_t *)arg);

	/* The loop thread itself, stopped: what a blocking bug would do. */
	while (nanosleep(&ts, &ts))
		;
}

/* Slots missed while the loop was behind are skipped (counted), not run
 * in a burst afterwards; the run that was late measures its lag. */
static void test_missed_slots_skipped_and_lag_measured(void **state)
{
	struct fixture *f = *state;
	struct km_prober_stats before, after;
	struct km_prober_interval iv;
	static int64_t stall_ns = 450 * MS;
	struct km_result *v;
	struct km_probe p;
	size_t n, late = 0, k = 0;
	int64_t stall_start;

	p = add_probe(f, file_probe(f, "steady", 100));
	wait_runs(f, 3);
	km_prober_get_stats(f->pr, &before, &iv);
	stall_start = km_now_us();
	assert_int_equal(km_prober_run_on_loop(f->pr, stall, &stall_ns), 0);
	wait_runs(f, before.results_ok + 8);
	km_prober_get_stats(f->pr, &after, &iv);

	/* Four or five slots fell in the stall: skipped, counted. */
	assert_true(after.skipped_late >= before.skipped_late + 3);
	/* The interval saw a run at least ~350 ms late (the stall, less a
	 * period), and the max since start is at least that. */
	assert_true(iv.lag_max_us >= 300 * 1000);
	assert_true(after.lag_max_us >= iv.lag_max_us);
	assert_true(iv.lag_p99_us >= iv.lag_p50_us);

	/* One gap of the stall's length, then no burst: the late run, and at
	 * most one more at the next slot of the grid (which may come at
	 * once), within a period — not the missed slots back to back. */
	n = results(f, p.target_id, &v);
	for (size_t i = 1; i < n; i++) {
		if (v[i].started_us < stall_start ||
		    v[i].started_us - v[i - 1].started_us < 350 * 1000)
			continue;
		late++;
		k = i;
	}
	assert_int_equal(late, 1);
	assert_true(k + 2 < n);
	assert_true(v[k + 2].started_us - v[k].started_us >= 90 * 1000);
}

/* Changes take effect at once: a new period reschedules the probe, a
 * removed probe runs no more. */
static void test_update_and_remove(void **state)
{
	struct fixture *f = *state;
	struct km_prober_stats st;
	struct km_result *v;
	struct km_probe p;
	size_t n;
	struct km_error err = {0};

	p = add_probe(f, file_probe(f, "changing", 10000));
	/* First run within the 10 s period's offset; then make it fast. */
	p.period_ms = 100;
	assert_int_equal(km_store_update_probe(f->s, &p, 0, true, NULL, &err),
			 0);
	assert_int_equal(km_prober_upsert(f->pr, &p), 0);
	wait_runs(f, 5);
	km_prober_get_stats(f->pr, &st, NULL);
	assert_int_equal(st.probes, 1);
	assert_int_equal(km_prober_remove(f->pr, "changing"), 0);
	{
		/* A second probe's runs mark the passing of periods. */
		struct km_probe clock =
			add_probe(f, file_probe(f, "clock", 100));
		struct km_prober_stats now;

		km_prober_get_stats(f->pr, &st, NULL);
		n = results(f, p.target_id, &v);
		wait_runs(f, st.results_ok + 5); /* >= 4 periods of clock */
		km_prober_get_stats(f->pr, &now, NULL);
		assert_int_equal(now.probes, 1);
		assert_true(results(f, p.target_id, &v) <= n + 1);
		assert_true(results(f, clock.target_id, &v) >= 4);
	}
}

/* ---- the watchdog --------------------------------------------------------- */

struct wd_events {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n;
	bool turning[8];
	int64_t at[8];
};

static void on_watchdog(void *arg, bool turning)
{
	struct wd_events *e = arg;

	pthread_mutex_lock(&e->mu);
	if (e->n < 8) {
		e->turning[e->n] = turning;
		e->at[e->n] = km_mono_ns();
	}
	e->n++;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

/* Waits up to ns for the n-th report; false if it did not come. */
static bool wait_watchdog(struct wd_events *e, int n, int64_t ns)
{
	struct timespec until = km_realtime_after(ns);
	bool ok;

	pthread_mutex_lock(&e->mu);
	while (e->n < n &&
	       pthread_cond_timedwait(&e->cv, &e->mu, &until) != ETIMEDOUT)
		;
	ok = e->n >= n;
	pthread_mutex_unlock(&e->mu);
	return ok;
}

/* What the loop runs to be stalled: it waits, on the loop thread, until
 * the test opens the gate. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool entered, open;
	int64_t entered_at;
};

static void block_loop(void *arg)
{
	struct gate *g = arg;
	/* A test that fails before it opens the gate ends all the same. */
	struct timespec until = km_realtime_after(WAIT_NS);

	pthread_mutex_lock(&g->mu);
	g->entered = true;
	g->entered_at = km_mono_ns();
	pthread_cond_broadcast(&g->cv);
	while (!g->open &&
	       pthread_cond_timedwait(&g->cv, &g->mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&g->mu);
}

/* A loop that does not turn for prober.watchdog is reported (the daemon
 * then answers NOT_SERVING), and so is its turning again; an idle loop is
 * not a stalled one. */
static void test_watchdog(void **state)
{
	struct fixture *f = *state;
	/* Outlives a failed test: the watchdog reports to it. */
	static struct wd_events e;
	static struct gate g; /* outlives a failed test: the loop uses it */
	struct km_prober_options po = {.health = f->h,
				       .watchdog_ms = 200,
				       .on_watchdog = on_watchdog,
				       .watchdog_arg = &e};
	struct km_error err = {0};
	int64_t posted_at;

	g = (struct gate){.mu = PTHREAD_MUTEX_INITIALIZER,
			  .cv = PTHREAD_COND_INITIALIZER};
	e = (struct wd_events){.mu = PTHREAD_MUTEX_INITIALIZER,
			       .cv = PTHREAD_COND_INITIALIZER};
	km_prober_stop(f->pr);
	assert_int_equal(km_prober_start(&po, &f->pr, &err), 0);
	/* Idle (no probe at all): three periods without a report. */
	assert_false(wait_watchdog(&e, 1, 600 * MS));
	assert_false(km_prober_loop_stalled(f->pr));

	/* The watchdog counts from the loop's last heartbeat (a timer every
	 * quarter of the period), which is at most one beat before this:
	 * the period is measured from there. */
	posted_at = km_mono_ns();
	assert_int_equal(km_prober_run_on_loop(f->pr, block_loop, &g), 0);
	pthread_mutex_lock(&g.mu);
	while (!g.entered)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	assert_true(wait_watchdog(&e, 1, WAIT_NS));
	assert_false(e.turning[0]);
	assert_true(km_prober_loop_stalled(f->pr));
	/* Not before the period (less the beat it may count from); within
	 * it and a heartbeat or two (and the room a loaded machine needs). */
	assert_true(e.at[0] - posted_at >= (200 - 200 / 4) * MS);
	assert_true(e.at[0] - g.entered_at < 1500 * MS);
	/* Reported once, however long it lasts. */
	assert_false(wait_watchdog(&e, 2, 300 * MS));

	pthread_mutex_lock(&g.mu);
	g.open = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	assert_true(wait_watchdog(&e, 2, WAIT_NS));
	assert_true(e.turning[1]);
	assert_false(km_prober_loop_stalled(f->pr));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_first_runs_spread_over_the_period, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_no_overlap, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_missed_slots_skipped_and_lag_measured, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_update_and_remove, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_watchdog, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
