/*
 * The prober's failure paths, provoked on a real prober, loop, hub and
 * store (tests/unit/test_prober.c holds the schedule itself):
 *  - a check whose guard timer cannot be armed is failed (an INTERNAL
 *    result, stored) and counted, not left hanging;
 *  - a check type that cannot start is failed and counted;
 *  - a probe whose next slot cannot be armed is counted, and an update
 *    schedules it again.
 * Timer arming fails on demand: this executable links its own copy of
 * km_loop.c, built with KM_LOOP_FAULTS (km_loop.h), in place of the
 * library's; the daemon has no such hook. Arming fails exactly as it does
 * when the heap cannot grow.
 *
 * The tests wait for the hub to announce a transition (a subscriber,
 * after the commit) rather than for time to pass; the prober counts a
 * failure before the result it leads to is handed on, so the counters are
 * read after that.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "km_health.h"
#include "km_loop.h"
#include "km_prober.h"
#include "km_store.h"
#include "km_test.h"
#include "km_time.h"

#define MS 1000000LL
#define WAIT_MS 10000

/* ---- failing timer arming, by the timer's purpose ------------------------ */

/* The probes below run with a 1 s timeout and a 60 s period, first 5 to
 * 20 ms after being added: a timer's due time tells what it is for. */
enum timer_kind {
	T_NONE,
	T_NOW,        /* within 2 ms: libcurl's "call me now" (or exec's exit
	                 poll, without pidfds) */
	T_FIRST_SLOT, /* within 0.5 s: the first slot */
	T_TYPE,       /* about 1 s: a check type's deadline */
	T_GUARD,      /* about 3 s: the prober's guard (deadline + 2 s) */
	T_NEXT_SLOT,  /* about 60 s: the next slot */
};

static atomic_int fail_kind;
static atomic_int failed;

static bool fault(struct km_loop *l, const struct km_timer *t, int64_t due)
{
	int64_t in = due - km_mono_ns();
	int kind = in < 2 * MS       ? T_NOW
		   : in < 500 * MS   ? T_FIRST_SLOT
		   : in < 2000 * MS  ? T_TYPE
		   : in < 10000 * MS ? T_GUARD
				     : T_NEXT_SLOT;

	(void)l;
	(void)t;
	if (kind != atomic_load(&fail_kind))
		return false;
	atomic_fetch_add(&failed, 1);
	return true;
}

/* ---- a prober on a store -------------------------------------------------- */

struct fixture {
	char *dir;
	struct km_store *store;
	struct km_health *hub;
	struct km_health_sub *sub;
	struct km_prober *pr;
	struct km_arena a;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	int transitions;
	int to_state;
	char cause[512];
};

/* The hub's announcement of a committed transition. */
static void on_transition(void *arg, const struct km_health_event *ev)
{
	struct fixture *f = arg;
	const struct km_transition *t = ev->t;

	pthread_mutex_lock(&f->mu);
	f->transitions++;
	f->to_state = t->to_state;
	snprintf(f->cause, sizeof f->cause, "%s", t->cause ? t->cause : "");
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* Waits until the hub has announced n transitions in all. */
static bool wait_transitions(struct fixture *f, int n)
{
	struct timespec until = km_realtime_after(WAIT_MS * MS);
	bool ok;

	pthread_mutex_lock(&f->mu);
	while (f->transitions < n &&
	       pthread_cond_timedwait(&f->cv, &f->mu, &until) != ETIMEDOUT)
		;
	ok = f->transitions >= n;
	pthread_mutex_unlock(&f->mu);
	return ok;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	/* Each check's result a row of its own (the store's schema-5
	 * baseline), to look at one by one. */
	struct km_store_options so = {.raw_results = true};
	struct km_health_options ho = {0};
	struct km_health_sub_options sub = {.deliver = on_transition};
	struct km_prober_options po = {0};
	struct km_error err = {0};
	int64_t start;
	char *db;

	if (!f || !(f->dir = km_test_tmpdir()) ||
	    asprintf(&db, "%s/km.db", f->dir) < 0)
		return -1;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	km_arena_init(&f->a, 4096);
	so.path = db;
	if (km_store_open(&so, &f->store, &err)) {
		fprintf(stderr, "store: %s\n", err.msg);
		return -1;
	}
	free(db);
	ho.store = f->store;
	if (km_health_open(&ho, &f->hub, &err)) {
		fprintf(stderr, "hub: %s\n", err.msg);
		return -1;
	}
	sub.arg = f;
	if (km_health_subscribe(f->hub, &sub, &f->sub, &start))
		return -1;
	po.health = f->hub;
	if (km_prober_start(&po, &f->pr, &err)) {
		fprintf(stderr, "prober: %s\n", err.msg);
		return -1;
	}
	atomic_store(&fail_kind, T_NONE);
	atomic_store(&failed, 0);
	km_loop_fault_timer = fault;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct km_error err = {0};

	km_prober_stop(f->pr);
	km_loop_fault_timer = NULL;
	km_health_unsubscribe(f->sub);
	km_store_flush(f->store, &err);
	km_health_close(f->hub);
	km_store_close(f->store);
	km_arena_free(&f->a);
	km_test_rmrf(f->dir);
	free(f->dir);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

/* A probe of type type that first runs 5 to 20 ms after it is added (its
 * name is picked for that offset), with thresholds of 1: every change of
 * outcome is a transition. Created in the store (for its target), tracked
 * by the hub and scheduled by the prober. HTTP probes go through libcurl
 * (a name) to a closed port. */
static struct km_probe add_probe(struct fixture *f, enum km_probe_type type)
{
	static const char *true_argv[] = {"true", NULL};
	/* From the config file: trusted, not held to the API's policy
	 * (test_prober.c's business). */
	struct km_probe p = {.type = type,
			     .timeout_ms = 1000,
			     .period_ms = 60000,
			     .success_threshold = 1,
			     .failure_threshold = 1,
			     .source = KM_SOURCE_CONFIG};
	struct km_error err = {0};
	struct km_health_target t = {.success_threshold = 1,
				     .failure_threshold = 1};
	char name[32], target[48];

	for (int i = 0;; i++) {
		snprintf(name, sizeof name, "t-%d", i);
		snprintf(target, sizeof target, "probe//%s", name);
		int64_t off = km_prober_offset_ms(target, p.period_ms);

		if (off >= 5 && off < 20)
			break;
	}
	p.name = km_arena_strdup(&f->a, name);
	if (type == KM_PROBE_FILE) {
		p.path = f->dir; /* there: a success */
	} else if (type == KM_PROBE_HTTP) {
		p.host = "localhost";
		p.port = 1;
		p.path = "/";
	} else {
		p.argv = true_argv;
		p.argc = 1;
	}
	assert_int_equal(km_store_create_probe(f->store, &p, &err), 0);
	t.id = p.target_id;
	t.name = target;
	t.created_us = p.create_us;
	assert_int_equal(km_health_track(f->hub, &t), 0);
	assert_int_equal(km_prober_upsert(f->pr, &p), 0);
	return p;
}

/* The stored results of p's target, oldest first. */
static size_t results_of(struct fixture *f, const struct km_probe *p,
			 struct km_result **v)
{
	struct km_history_query q = {.target_id = p->target_id,
				     .from_us = INT64_MIN,
				     .to_us = INT64_MAX,
				     .oldest_first = true,
				     .limit = 10};
	struct km_reader *r;
	struct km_error err = {0};
	size_t n;
	bool more;

	assert_int_equal(km_store_flush(f->store, &err), 0);
	assert_int_equal(km_reader_open(f->store, &r, &err), 0);
	assert_int_equal(
		km_reader_query_results(r, &q, &f->a, v, &n, &more, &err), 0);
	km_reader_close(r);
	return n;
}

/* ---- tests ----------------------------------------------------------------- */

static void never_fires(struct km_loop *l, void *arg)
{
	(void)l;
	(void)arg;
	fail();
}

static void test_failed_arming_leaves_the_heap_alone(void **state)
{
	struct km_loop *l;
	struct km_error err = {0};
	struct km_timer a, b;
	int64_t now = km_mono_ns();

	(void)state;
	assert_int_equal(km_loop_create(&l, &err), 0);
	km_timer_init(&a, never_fires, NULL);
	km_timer_init(&b, never_fires, NULL);
	assert_int_equal(km_loop_timer_set(l, &a, now + 5000 * MS), 0);
	atomic_store(&fail_kind, T_GUARD); /* 3 s away */
	assert_int_equal(km_loop_timer_set(l, &b, now + 3000 * MS), KM_ENOMEM);
	assert_false(km_timer_armed(&b));
	assert_int_equal(km_loop_timer_count(l), 1);
	/* Moving a timer already in the heap cannot fail, and is not
	 * asked about. */
	assert_int_equal(km_loop_timer_set(l, &a, now + 3000 * MS), 0);
	assert_int_equal(atomic_load(&failed), 1);
	km_loop_timer_cancel(l, &a);
	assert_int_equal(km_loop_timer_count(l), 0);
	km_loop_destroy(l);
}

static void test_guard_timer_failure_fails_the_check(void **state)
{
	struct fixture *f = *state;
	struct km_prober_stats st;
	struct km_probe p;
	struct km_result *v;

	atomic_store(&fail_kind, T_GUARD);
	p = add_probe(f, KM_PROBE_FILE); /* would succeed if it ran */
	assert_true(wait_transitions(f, 1));
	assert_int_equal(f->to_state, KM_STATE_UNHEALTHY);
	assert_non_null(strstr(f->cause, "no timer for its deadline"));
	assert_int_equal(results_of(f, &p, &v), 1);
	assert_false(v[0].success);
	assert_int_equal(v[0].error_class, KM_EC_INTERNAL);
	assert_string_equal(v[0].message,
			    "kubemedic could not start the check: out of "
			    "memory (no timer for its deadline)");
	km_prober_get_stats(f->pr, &st, NULL);
	assert_int_equal(st.runs, 1);
	assert_int_equal(st.results_failed, 1);
	assert_int_equal(st.check_errors, 1);
	assert_int_equal(st.schedule_errors, 0);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(atomic_load(&failed), 1);
}

static void test_type_start_failure_fails_the_check(void **state)
{
	struct fixture *f = *state;
	struct km_prober_stats st;
	struct km_probe p;
	struct km_result *v;

	/* The exec type's deadline timer: it kills and reaps its child
	 * and returns KM_ENOMEM. */
	atomic_store(&fail_kind, T_TYPE);
	p = add_probe(f, KM_PROBE_EXEC);
	assert_true(wait_transitions(f, 1));
	assert_int_equal(f->to_state, KM_STATE_UNHEALTHY);
	assert_int_equal(results_of(f, &p, &v), 1);
	assert_int_equal(v[0].error_class, KM_EC_INTERNAL);
	assert_string_equal(v[0].message, "kubemedic could not start the "
					  "check: out of memory");
	km_prober_get_stats(f->pr, &st, NULL);
	assert_int_equal(st.check_errors, 1);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(atomic_load(&failed), 1);
}

/* libcurl's timer: the transfer being added fails, so the check is
 * failed at once instead of waiting for a wake-up that never comes. */
static void test_curl_timer_failure_fails_the_check(void **state)
{
	struct fixture *f = *state;
	struct km_prober_stats st;
	struct km_probe p;
	struct km_result *v;

	atomic_store(&fail_kind, T_NOW);
	p = add_probe(f, KM_PROBE_HTTP);
	assert_true(wait_transitions(f, 1));
	assert_int_equal(f->to_state, KM_STATE_UNHEALTHY);
	assert_int_equal(results_of(f, &p, &v), 1);
	assert_int_equal(v[0].error_class, KM_EC_INTERNAL);
	assert_non_null(strstr(v[0].message, "could not start the check"));
	/* Well before the guard (3 s): nothing was left to hang. */
	assert_true(v[0].duration_us < 1000000);
	km_prober_get_stats(f->pr, &st, NULL);
	assert_int_equal(st.check_errors, 1);
	assert_true(atomic_load(&failed) >= 1);
}

static void test_next_slot_failure_is_counted_and_recovered(void **state)
{
	struct fixture *f = *state;
	struct km_prober_stats st;
	struct km_probe p;
	struct km_result *v;

	atomic_store(&fail_kind, T_NEXT_SLOT);
	p = add_probe(f, KM_PROBE_FILE);
	assert_true(wait_transitions(f, 1));
	assert_int_equal(f->to_state, KM_STATE_HEALTHY);
	km_prober_get_stats(f->pr, &st, NULL);
	assert_int_equal(st.schedule_errors, 1);
	assert_int_equal(st.check_errors, 0);
	assert_int_equal(st.runs, 1);

	/* Unscheduled, the probe runs again once it is updated, even with
	 * the same timing: here to a path that is not there. */
	atomic_store(&fail_kind, T_NONE);
	p.path = "/nonexistent/kubemedic-test";
	assert_int_equal(km_prober_upsert(f->pr, &p), 0);
	assert_true(wait_transitions(f, 2));
	assert_int_equal(f->to_state, KM_STATE_UNHEALTHY);
	assert_int_equal(results_of(f, &p, &v), 2);
	assert_int_equal(v[1].error_class, KM_EC_FILE_MISSING);
	km_prober_get_stats(f->pr, &st, NULL);
	assert_int_equal(st.runs, 2);
	assert_int_equal(st.schedule_errors, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_failed_arming_leaves_the_heap_alone),
		T(test_guard_timer_failure_fails_the_check),
		T(test_type_start_failure_fails_the_check),
		T(test_curl_timer_failure_fails_the_check),
		T(test_next_slot_failure_is_counted_and_recovered),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
