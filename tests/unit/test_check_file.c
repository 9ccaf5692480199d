/*
 * File checks off the loop, and the offload pool they run on.
 *
 * A hung mount cannot be made on demand, so this executable builds its own
 * copy of km_check_file.c with KM_FILE_FAULTS (check_internal.h): a hook,
 * called on the pool's thread where the stat would go, that blocks for
 * paths holding "hung" until the test lets go (or 3 s pass). The daemon
 * has no such hook. With it:
 *  - a file check whose stat does not return times out at its deadline
 *    while another probe keeps its schedule (the loop never waits);
 *  - the pool replaces threads stuck in a call, up to its bound, and
 *    recovers when the calls return; destroying it never waits for one;
 *  - a probe of the API is held to api.allowFile and to
 *    api.filePathPrefixes on its real path (symbolic links, ".."); the
 *    config's probes are not.
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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check_internal.h"
#include "km_health.h"
#include "km_offload.h"
#include "km_prober.h"
#include "km_store.h"
#include "km_test.h"
#include "km_time.h"

#define MS 1000000LL
#define WAIT_NS (20000LL * MS) /* a failure guard, not a pacer */
#define HOOK_MAX_NS (3000LL * MS)

/* ---- a file system that does not answer ---------------------------------- */

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hook_cv = PTHREAD_COND_INITIALIZER;
static bool hook_hold;   /* calls block while set */
static int hook_blocked; /* calls blocked now */
static int hook_calls;   /* calls that blocked, in all */

/* Blocks until released (or HOOK_MAX_NS, so that a test whose loop is
 * wrongly the one blocked fails instead of hanging). */
static void hook_wait(void)
{
	struct timespec until = km_realtime_after(HOOK_MAX_NS);

	pthread_mutex_lock(&hook_mu);
	hook_blocked++;
	hook_calls++;
	pthread_cond_broadcast(&hook_cv);
	while (hook_hold &&
	       pthread_cond_timedwait(&hook_cv, &hook_mu, &until) != ETIMEDOUT)
		;
	hook_blocked--;
	pthread_cond_broadcast(&hook_cv);
	pthread_mutex_unlock(&hook_mu);
}

static void file_fault(const char *path)
{
	if (strstr(path, "hung"))
		hook_wait();
}

static void hook_set(bool hold)
{
	pthread_mutex_lock(&hook_mu);
	hook_hold = hold;
	if (hold)
		hook_calls = 0;
	pthread_cond_broadcast(&hook_cv);
	pthread_mutex_unlock(&hook_mu);
}

/* Waits until n calls are blocked in the hook at once. */
static void wait_blocked(int n)
{
	struct timespec until = km_realtime_after(WAIT_NS);
	bool ok;

	pthread_mutex_lock(&hook_mu);
	while (hook_blocked != n &&
	       pthread_cond_timedwait(&hook_cv, &hook_mu, &until) != ETIMEDOUT)
		;
	ok = hook_blocked == n;
	if (!ok)
		fprintf(stderr, "%d calls blocked, want %d\n", hook_blocked, n);
	pthread_mutex_unlock(&hook_mu);
	assert_true(ok);
}

/* ---- the pool on its own ------------------------------------------------- */

struct test_job {
	struct km_offload_job job;
	atomic_int *freed, *done;
};

static void tj_work(struct km_offload_job *j)
{
	(void)j;
	hook_wait();
}

static void tj_done(struct km_offload_job *j)
{
	struct test_job *t = (struct test_job *)j;

	atomic_fetch_add(t->done, 1);
	free(t);
}

static void tj_free(struct km_offload_job *j)
{
	struct test_job *t = (struct test_job *)j;

	atomic_fetch_add(t->freed, 1);
	free(t);
}

static struct test_job *tj_new(atomic_int *freed, atomic_int *done)
{
	struct test_job *t = calloc(1, sizeof *t);

	assert_non_null(t);
	t->job.work = tj_work;
	t->job.done = tj_done;
	t->job.free_job = tj_free;
	t->freed = freed;
	t->done = done;
	return t;
}

static void stop_when(struct km_loop *l, void *arg);

struct until {
	struct km_timer t;
	atomic_int *counter;
	int want;
	int64_t give_up;
};

/* Runs loop l until *counter reaches want (checked every ms). */
static void run_until(struct km_loop *l, atomic_int *counter, int want)
{
	struct until u = {.counter = counter,
			  .want = want,
			  .give_up = km_mono_ns() + WAIT_NS};

	km_timer_init(&u.t, stop_when, &u);
	km_loop_timer_set(l, &u.t, km_mono_ns());
	assert_int_equal(km_loop_run(l), 0);
	km_loop_timer_cancel(l, &u.t);
	assert_int_equal(atomic_load(counter), want);
}

static void stop_when(struct km_loop *l, void *arg)
{
	struct until *u = arg;

	if (atomic_load(u->counter) >= u->want || km_mono_ns() > u->give_up)
		km_loop_stop(l);
	else
		km_loop_timer_set(l, &u->t, km_mono_ns() + MS);
}

/* Waits (polling: these are other threads' counts) until no thread is
 * stuck, and at most the working ones are alive. */
static void wait_stats(struct km_offload *o, uint64_t stuck)
{
	int64_t until = km_mono_ns() + WAIT_NS;
	struct km_offload_stats st;

	for (;;) {
		struct timespec ms = {0, MS};

		km_offload_get_stats(o, &st);
		if (st.stuck == stuck &&
		    st.threads <= stuck + KM_OFFLOAD_THREADS)
			return;
		if (km_mono_ns() > until)
			fail_msg("%llu stuck, %llu threads; want %llu stuck",
				 (unsigned long long)st.stuck,
				 (unsigned long long)st.threads,
				 (unsigned long long)stuck);
		nanosleep(&ms, NULL);
	}
}

/* Waits until *counter reaches want (other threads count). */
static void wait_count(atomic_int *counter, int want)
{
	int64_t until = km_mono_ns() + WAIT_NS;

	while (atomic_load(counter) < want && km_mono_ns() < until) {
		struct timespec ms = {0, MS};

		nanosleep(&ms, NULL);
	}
	assert_int_equal(atomic_load(counter), want);
}

/* Abandoned calls that never return cost a thread each, up to the bound;
 * past it, jobs wait; when the calls return, the stuck threads end and the
 * waiting jobs run. */
static void test_pool_replaces_stuck_threads_up_to_a_bound(void **state)
{
	enum { N = KM_OFFLOAD_STUCK_MAX + KM_OFFLOAD_THREADS + 2 };
	struct km_error err = {0};
	struct km_loop *l;
	struct km_offload *o;
	struct test_job *jobs[N];
	atomic_int freed = 0, done = 0;
	struct km_offload_stats st;
	int abandoned = 0, working;

	(void)state;
	assert_int_equal(km_loop_create(&l, &err), 0);
	assert_int_equal(km_offload_create(l, &o, &err), 0);
	hook_set(true);
	for (int i = 0; i < N; i++) {
		jobs[i] = tj_new(&freed, &done);
		assert_int_equal(km_offload_submit(o, &jobs[i]->job), 0);
	}
	/* Every thread in a call; the calls abandoned (their checks timed
	 * out), each thread replaced; again, until the bound. Jobs are taken
	 * in order, so the running ones are those after the abandoned. */
	for (;;) {
		km_offload_get_stats(o, &st);
		if (st.stuck >= KM_OFFLOAD_STUCK_MAX)
			break;
		assert_int_equal(st.threads - st.stuck, KM_OFFLOAD_THREADS);
		wait_blocked((int)st.threads);
		for (int i = 0; i < KM_OFFLOAD_THREADS; i++)
			km_offload_abandon(o, &jobs[abandoned++]->job);
	}
	/* Past the bound no thread replaces a stuck one: those working run
	 * on, the rest of the queue waits. */
	assert_int_equal(st.stuck, KM_OFFLOAD_STUCK_MAX);
	assert_int_equal(st.abandoned, KM_OFFLOAD_STUCK_MAX);
	assert_true(st.threads < KM_OFFLOAD_STUCK_MAX + KM_OFFLOAD_THREADS);
	working = (int)(st.threads - st.stuck);
	wait_blocked((int)st.threads);
	assert_int_equal(hook_calls, KM_OFFLOAD_STUCK_MAX + working);
	assert_int_equal(atomic_load(&freed), 0);

	/* The calls return: abandoned jobs are freed by their threads, the
	 * others come back to the loop, those that waited run too. */
	hook_set(false);
	run_until(l, &done, N - KM_OFFLOAD_STUCK_MAX);
	wait_count(&freed, KM_OFFLOAD_STUCK_MAX);
	/* The stuck threads ended; those that replaced them (as many as the
	 * work wanted) remain. */
	wait_stats(o, 0);
	km_offload_destroy(o);
	km_loop_destroy(l);
}

/* Destroying the pool waits for no call: a thread stuck in one ends on
 * its own when it returns, freeing its job (and, being the last, the
 * pool). Queued jobs are freed at once. */
static void test_destroy_leaves_stuck_calls(void **state)
{
	struct km_error err = {0};
	struct km_loop *l;
	struct km_offload *o;
	atomic_int freed = 0, done = 0;
	int64_t t0;

	(void)state;
	assert_int_equal(km_loop_create(&l, &err), 0);
	assert_int_equal(km_offload_create(l, &o, &err), 0);
	hook_set(true);
	for (int i = 0; i < KM_OFFLOAD_THREADS + 3; i++)
		assert_int_equal(
			km_offload_submit(o, &tj_new(&freed, &done)->job), 0);
	wait_blocked(KM_OFFLOAD_THREADS);
	t0 = km_mono_ns();
	km_offload_destroy(o);
	km_loop_destroy(l);
	assert_true(km_mono_ns() - t0 < 500 * MS);
	assert_int_equal(atomic_load(&freed), 3);
	hook_set(false);
	wait_blocked(0);
	/* Each thread frees its job after its call returns. */
	wait_count(&freed, KM_OFFLOAD_THREADS + 3);
	assert_int_equal(atomic_load(&done), 0);
}

/* ---- file checks in a prober --------------------------------------------- */

struct fixture {
	char *dir;
	struct km_store *s;
	struct km_health *h;
	struct km_prober *pr;
	struct km_reader *r;
	struct km_arena a;
	const char *prefixes[1];
	struct km_probe_policy policy;
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
	char *db = NULL;

	f->dir = km_test_tmpdir();
	if (!f->dir || asprintf(&db, "%s/km.db", f->dir) < 0 ||
	    asprintf((char **)&f->prefixes[0], "%s/open", f->dir) < 0 ||
	    mkdir(f->prefixes[0], 0700) < 0)
		return -1;
	km_arena_init(&f->a, 65536);
	so.path = db;
	if (km_store_open(&so, &f->s, &err))
		goto fail;
	free(db);
	ho.store = f->s;
	if (km_health_open(&ho, &f->h, &err))
		goto fail;
	km_probe_policy_defaults(&f->policy);
	f->policy.allow_file = true;
	f->policy.file_prefixes = f->prefixes;
	f->policy.n_file_prefixes = 1;
	po.health = f->h;
	po.policy = &f->policy;
	if (km_prober_start(&po, &f->pr, &err) ||
	    km_reader_open(f->s, &f->r, &err))
		goto fail;
	km_check_file_fault = file_fault;
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

	hook_set(false);
	km_prober_stop(f->pr);
	km_reader_close(f->r);
	km_store_flush(f->s, &err);
	km_health_close(f->h);
	km_store_close(f->s);
	km_arena_free(&f->a);
	km_test_rmrf(f->dir);
	free((char *)f->prefixes[0]);
	free(f->dir);
	free(f);
	return 0;
}

static char *path_in(struct fixture *f, const char *name)
{
	return km_arena_printf(&f->a, "%s/%s", f->dir, name);
}

static void touch(const char *path)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs("alive", fp);
	fclose(fp);
}

static struct km_probe add_probe(struct fixture *f, const char *name,
				 const char *path, int64_t period_ms,
				 int64_t timeout_ms, enum km_probe_source src)
{
	struct km_probe p = {.name = name,
			     .type = KM_PROBE_FILE,
			     .path = path,
			     .period_ms = period_ms,
			     .timeout_ms = timeout_ms,
			     .success_threshold = 1,
			     .failure_threshold = 1,
			     .source = src};
	char tname[100];
	struct km_health_target t = {.name = tname};
	struct km_error err = {0};

	if (km_store_create_probe(f->s, &p, &err))
		fail_msg("create %s: %s", p.name, err.msg);
	snprintf(tname, sizeof tname, "probe//%s", p.name);
	t.id = p.target_id;
	t.created_us = p.create_us;
	t.success_threshold = t.failure_threshold = 1;
	assert_int_equal(km_health_track(f->h, &t), 0);
	assert_int_equal(km_prober_upsert(f->pr, &p), 0);
	return p;
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

/* Waits until the target has n results; returns them. */
static size_t wait_results(struct fixture *f, int64_t target_id, size_t n,
			   struct km_result **out)
{
	int64_t until = km_mono_ns() + WAIT_NS;
	size_t got;

	while ((got = results(f, target_id, out)) < n) {
		struct timespec ms = {0, 2 * MS};

		if (km_mono_ns() > until)
			fail_msg("%zu results of %zu", got, n);
		nanosleep(&ms, NULL);
	}
	return got;
}

/* A stat that does not return stalls its probe only: it times out at its
 * deadline, while another probe keeps its 100 ms schedule. */
static void test_hung_stat_stalls_one_probe(void **state)
{
	struct fixture *f = *state;
	struct km_probe hung, steady;
	struct km_result *v, first;
	struct km_prober_stats st;
	size_t n, during = 0;
	int64_t from, to;

	touch(path_in(f, "hung-beat"));
	touch(path_in(f, "beat"));
	hook_set(true);
	steady = add_probe(f, "steady", path_in(f, "beat"), 100, 1000,
			   KM_SOURCE_CONFIG);
	hung = add_probe(f, "hung", path_in(f, "hung-beat"), 600, 300,
			 KM_SOURCE_CONFIG);
	wait_results(f, hung.target_id, 1, &v);
	first = v[0];
	assert_false(first.success);
	assert_int_equal(first.error_class, KM_EC_TIMEOUT);
	assert_non_null(strstr(first.message, "hung-beat did not return "
					      "within 300 ms"));
	/* Reported at its deadline, not when the call returned. */
	assert_true(first.duration_us >= 300 * 1000);
	assert_true(first.duration_us < 600 * 1000);
	km_prober_get_stats(f->pr, &st, NULL);
	assert_true(st.offload_abandoned >= 1);
	assert_true(st.offload_stuck >= 1);

	/* Meanwhile the other probe ran on time. */
	from = first.started_us;
	to = first.started_us + first.duration_us;
	wait_results(f, steady.target_id, 1, &v);
	n = results(f, steady.target_id, &v);
	for (size_t i = 0; i < n; i++) {
		assert_true(v[i].success);
		if (v[i].started_us >= from && v[i].started_us <= to)
			during++;
	}
	if (during < 2)
		fprintf(stderr, "%zu runs of steady during the hang\n", during);
	assert_true(during >= 2);

	/* The file system answers again: the stuck threads end, the probe
	 * succeeds. */
	hook_set(false);
	for (int64_t until = km_mono_ns() + WAIT_NS;;) {
		struct timespec ms = {0, 2 * MS};

		km_prober_get_stats(f->pr, &st, NULL);
		if (st.offload_stuck == 0)
			break;
		assert_true(km_mono_ns() < until);
		nanosleep(&ms, NULL);
	}
	for (int64_t until = km_mono_ns() + WAIT_NS;;) {
		n = results(f, hung.target_id, &v);
		if (v[n - 1].success)
			break;
		assert_true(km_mono_ns() < until);
		wait_results(f, hung.target_id, n + 1, &v);
	}
}

/* A probe of the API: the prefix rule on the real path, at every run. */
static void test_real_path_under_the_prefixes(void **state)
{
	struct fixture *f = *state;
	struct km_probe ok, link, dotdot, trusted, missing, linked_in;
	struct km_result *v;
	char *outside = path_in(f, "secret");

	touch(outside);
	touch(path_in(f, "open/beat"));
	assert_int_equal(symlink(outside, path_in(f, "open/link")), 0);
	assert_int_equal(mkdir(path_in(f, "open/sub"), 0700), 0);
	assert_int_equal(symlink("../beat", path_in(f, "open/sub/up")), 0);

	ok = add_probe(f, "ok", path_in(f, "open/beat"), 200, 1000,
		       KM_SOURCE_API);
	link = add_probe(f, "link", path_in(f, "open/link"), 200, 1000,
			 KM_SOURCE_API);
	dotdot = add_probe(f, "dotdot", path_in(f, "open/sub/../../secret"),
			   200, 1000, KM_SOURCE_API);
	linked_in = add_probe(f, "linked-in", path_in(f, "open/sub/up"), 200,
			      1000, KM_SOURCE_API);
	missing = add_probe(f, "missing", path_in(f, "open/none"), 200, 1000,
			    KM_SOURCE_API);
	/* The config's probes are trusted: the same link is looked at. */
	trusted = add_probe(f, "trusted", path_in(f, "open/link"), 200, 1000,
			    KM_SOURCE_CONFIG);

	wait_results(f, ok.target_id, 1, &v);
	assert_true(v[0].success);
	wait_results(f, linked_in.target_id, 1, &v);
	assert_true(v[0].success);
	wait_results(f, trusted.target_id, 1, &v);
	assert_true(v[0].success);
	wait_results(f, link.target_id, 1, &v);
	assert_false(v[0].success);
	assert_int_equal(v[0].error_class, KM_EC_INTERNAL);
	assert_non_null(strstr(v[0].message, "open/link: not looked at: its "
					     "real path is under no directory "
					     "of api.filePathPrefixes"));
	/* Where it leads is not said. */
	assert_null(strstr(v[0].message, "secret"));
	wait_results(f, dotdot.target_id, 1, &v);
	assert_false(v[0].success);
	assert_non_null(strstr(v[0].message, "not looked at"));
	wait_results(f, missing.target_id, 1, &v);
	assert_int_equal(v[0].error_class, KM_EC_FILE_MISSING);
}

/* Stored while the config allowed it; the config says otherwise now. */
static void test_api_file_probe_not_run_when_off(void **state)
{
	struct fixture *f = *state;
	struct km_prober_options po = {.health = f->h};
	struct km_error err = {0};
	struct km_probe p;
	struct km_result *v;

	km_prober_stop(f->pr);
	assert_int_equal(km_prober_start(&po, &f->pr, &err), 0);
	touch(path_in(f, "open/beat"));
	p = add_probe(f, "off", path_in(f, "open/beat"), 200, 1000,
		      KM_SOURCE_API);
	wait_results(f, p.target_id, 1, &v);
	assert_false(v[0].success);
	assert_int_equal(v[0].error_class, KM_EC_INTERNAL);
	assert_string_equal(v[0].message, "not run: file probes through the "
					  "API are off (api.allowFile)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_pool_replaces_stuck_threads_up_to_a_bound),
		cmocka_unit_test(test_destroy_leaves_stuck_calls),
		cmocka_unit_test_setup_teardown(test_hung_stat_stalls_one_probe,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_real_path_under_the_prefixes, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_api_file_probe_not_run_when_off, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
