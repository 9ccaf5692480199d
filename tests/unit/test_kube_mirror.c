/*
 * Pods' own probes, mirrored (service/kube/km_kube_mirror.h), on a real
 * store, hub and prober: a pod's probes become targets with the pod's
 * identity and run; a changed probe is changed in place (same target, no
 * deletion); an unchanged pod is no work; the annotation gone or the pod
 * gone deletes them; the bound per cluster holds, and room made is used
 * when the pod is next seen; what is never mirrored is counted.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_health.h"
#include "km_kube_mirror.h"
#include "km_model.h"
#include "km_prober.h"
#include "km_store.h"
#include "km_test.h"
#include "km_time.h"

struct fixture {
	char *dir, *db;
	struct km_store *s;
	struct km_health *h;
	struct km_prober *pr;
	struct km_reader *r;
	struct km_kube_mirror *m;
	struct km_arena a;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct km_store_options so = {0};
	struct km_health_options ho = {0};
	struct km_prober_options po = {0};
	struct km_kube_mirror_options mo = {.max_probes = 3};
	struct km_error err = {0};

	f->dir = km_test_tmpdir();
	if (!f->dir || asprintf(&f->db, "%s/km.db", f->dir) < 0)
		return -1;
	km_arena_init(&f->a, 4096);
	so.path = f->db;
	ho.store = f->s;
	if (km_store_open(&so, &f->s, &err))
		fail_msg("store: %s", err.msg);
	ho.store = f->s;
	if (km_health_open(&ho, &f->h, &err))
		fail_msg("hub: %s", err.msg);
	po.health = f->h;
	if (km_prober_start(&po, &f->pr, &err) ||
	    km_reader_open(f->s, &f->r, &err))
		fail_msg("prober: %s", err.msg);
	mo.store = f->s;
	mo.health = f->h;
	mo.prober = f->pr;
	if (km_kube_mirror_new(&mo, &f->m, &err))
		fail_msg("mirror: %s", err.msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct km_error err = {0};

	km_kube_mirror_free(f->m);
	km_prober_stop(f->pr);
	km_reader_close(f->r);
	assert_int_equal(km_store_flush(f->s, &err), 0);
	km_health_close(f->h);
	km_store_close(f->s);
	km_arena_free(&f->a);
	km_test_rmrf(f->dir);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

/* The prober's loop has run what was posted before this. */
struct barrier {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void barrier_reached(void *arg)
{
	struct barrier *b = arg;

	pthread_mutex_lock(&b->mu);
	b->done = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* Flushes the mirror and the store, and waits for the prober to have
 * taken the probes' changes (they are posted to its loop). */
static void flush(struct fixture *f)
{
	struct km_error err = {0};
	/* Static: a barrier the loop has not reached yet outlives a failed
	 * test. */
	static struct barrier b;
	struct timespec until = km_realtime_after(10LL * 1000000000);

	if (km_kube_mirror_flush(f->m, &err))
		fail_msg("flush: %s", err.msg);
	if (km_store_flush(f->s, &err))
		fail_msg("store flush: %s", err.msg);
	b = (struct barrier){.mu = PTHREAD_MUTEX_INITIALIZER,
			     .cv = PTHREAD_COND_INITIALIZER};
	assert_int_equal(km_prober_run_on_loop(f->pr, barrier_reached, &b), 0);
	pthread_mutex_lock(&b.mu);
	while (!b.done &&
	       pthread_cond_timedwait(&b.cv, &b.mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&b.mu);
	if (!b.done)
		fail_msg("the prober's loop did not turn");
}

/* A running pod, annotated, at 127.0.0.1 (nothing listens on port 1:
 * its probes fail, which is no matter here). */
static struct km_kube_object pod(const char *name, const char *uid,
				 const struct km_kube_probe *probes, size_t n)
{
	struct km_kube_object o = {
		.resource = KM_RES_POD,
		.meta = {.ns = "shop", .name = name, .uid = uid},
	};

	o.u.pod.ns = "shop";
	o.u.pod.name = name;
	o.u.pod.node_name = "n1";
	o.u.pod.phase = KM_POD_RUNNING;
	o.u.pod.mirror = true;
	o.u.pod.pod_ip = "127.0.0.1";
	o.u.pod.probes = probes;
	o.u.pod.n_probes = n;
	return o;
}

static const struct km_kube_probe tcp = {
	.container = "app",
	.which = "liveness",
	.type = KM_PROBE_TCP,
	.port = 1,
	.period_s = 10,
	.timeout_s = 1,
	.success = 1,
	.failure = 3,
};

static struct km_kube_probe http(int32_t period)
{
	return (struct km_kube_probe){
		.container = "app",
		.which = "readiness",
		.type = KM_PROBE_HTTP,
		.port = 1,
		.path = "ready",
		.period_s = period,
		.timeout_s = 1,
		.success = 1,
		.failure = 2,
	};
}

static int64_t live_id(struct fixture *f, const char *name)
{
	struct km_target t;
	struct km_error err = {0};

	if (km_reader_get_target(f->r, name, &f->a, &t, &err))
		return 0;
	return t.deleted_us ? 0 : t.id;
}

/* The transitions of target name, newest first, as "STATE cause" lines. */
static size_t transitions(struct fixture *f, const char *name, int *states,
			  const char **causes, size_t max)
{
	struct km_target t;
	struct km_transition *v;
	struct km_history_query q = {.from_us = INT64_MIN,
				     .to_us = INT64_MAX,
				     .limit = (int)max};
	struct km_error err = {0};
	size_t n;
	bool more;

	assert_int_equal(km_reader_find_target(f->r, name, &f->a, &t, &err), 0);
	q.target_id = t.id;
	assert_int_equal(km_reader_query_transitions(f->r, &q, &f->a, &v, &n,
						     &more, &err),
			 0);
	for (size_t i = 0; i < n; i++) {
		states[i] = v[i].to_state;
		causes[i] = v[i].cause;
	}
	return n;
}

static void test_made_changed_deleted(void **state)
{
	struct fixture *f = *state;
	struct km_kube_probe v[2] = {tcp, http(5)};
	struct km_kube_object p = pod("cart-0", "u-0", v, 2);
	struct km_kube_mirror_stats st;
	struct km_prober_stats ps;
	struct km_target t;
	struct km_error err = {0};
	const char *live = "probe/shop/cart-0.app.liveness",
		   *ready = "probe/shop/cart-0.app.readiness";
	int64_t id_ready;
	int states[8];
	const char *causes[8];

	km_kube_mirror_put(f->m, &p, "pod/shop/cart-0");
	flush(f);
	km_kube_mirror_stats(f->m, &st);
	assert_int_equal(st.probes, 2);
	assert_int_equal(st.pods, 1);
	assert_int_equal(km_reader_get_target(f->r, ready, &f->a, &t, &err), 0);
	assert_string_equal(t.uid, "u-0");
	assert_string_equal(t.owner, "pod/shop/cart-0");
	assert_string_equal(t.node, "n1");
	assert_true(live_id(f, live) > 0);
	km_prober_get_stats(f->pr, &ps, NULL);
	assert_int_equal(ps.probes, 2);
	id_ready = t.id;

	/* The same pod again (a status update): no work, nothing new. */
	km_kube_mirror_put(f->m, &p, "pod/shop/cart-0");
	flush(f);
	assert_int_equal(transitions(f, ready, states, causes, 8), 0);

	/* Its readiness period changes: the same target, changed in place,
	 * no deletion; the other probe is untouched. */
	v[1] = http(7);
	km_kube_mirror_put(f->m, &p, "pod/shop/cart-0");
	flush(f);
	assert_int_equal(live_id(f, ready), id_ready);
	assert_int_equal(transitions(f, ready, states, causes, 8), 0);
	km_prober_get_stats(f->pr, &ps, NULL);
	assert_int_equal(ps.probes, 2);

	/* The annotation gone: both targets deleted, history kept. */
	p.u.pod.mirror = false;
	km_kube_mirror_put(f->m, &p, "pod/shop/cart-0");
	flush(f);
	assert_int_equal(live_id(f, ready), 0);
	assert_int_equal(live_id(f, live), 0);
	assert_int_equal(transitions(f, ready, states, causes, 8), 1);
	assert_int_equal(states[0], KM_STATE_DELETED);
	assert_string_equal(causes[0], "probe no longer mirrored");
	km_kube_mirror_stats(f->m, &st);
	assert_int_equal(st.probes, 0);
	assert_int_equal(st.pods, 0);
	km_prober_get_stats(f->pr, &ps, NULL);
	assert_int_equal(ps.probes, 0);

	/* Back, then the pod deleted: the cause says so, whether the
	 * deletion is first seen as its deletionTimestamp (a MODIFIED
	 * before the DELETED) or as the DELETED itself. */
	p.u.pod.mirror = true;
	km_kube_mirror_put(f->m, &p, "pod/shop/cart-0");
	flush(f);
	assert_true(live_id(f, live) > 0);
	p.meta.deleting = true;
	km_kube_mirror_put(f->m, &p, "pod/shop/cart-0");
	km_kube_mirror_delete(f->m, "u-0", "pod deleted");
	flush(f);
	assert_int_equal(live_id(f, live), 0);
	assert_true(transitions(f, live, states, causes, 8) >= 1);
	assert_string_equal(causes[0], "pod deleted");
	p.meta.deleting = false;
	km_kube_mirror_put(f->m, &p, "pod/shop/cart-0");
	flush(f);
	assert_true(live_id(f, live) > 0);
	p.meta.deleting = true;
	km_kube_mirror_put(f->m, &p, "pod/shop/cart-0");
	flush(f);
	assert_int_equal(live_id(f, live), 0);
	assert_true(transitions(f, live, states, causes, 8) >= 1);
	assert_string_equal(causes[0], "pod deleted");
}

static void test_bound_and_skips(void **state)
{
	struct fixture *f = *state;
	struct km_kube_probe a[2] = {tcp, http(5)}, b[2] = {tcp, http(5)};
	struct km_kube_probe skipped = {
		.container = "app",
		.which = "readiness",
		.skip = "only httpGet, tcpSocket and grpc "
			"probes are run from outside "
			"the pod"};
	struct km_kube_object pa = pod("a", "u-a", a, 2),
			      pb = pod("b", "u-b", b, 2);
	struct km_kube_mirror_stats st;

	/* 2 of 3 taken; b's 2 do not fit: none of b's is made. */
	km_kube_mirror_put(f->m, &pa, "pod/shop/a");
	km_kube_mirror_put(f->m, &pb, "pod/shop/b");
	flush(f);
	km_kube_mirror_stats(f->m, &st);
	assert_int_equal(st.probes, 2);
	assert_int_equal(st.over_limit, 1);
	assert_int_equal(live_id(f, "probe/shop/b.app.liveness"), 0);
	assert_true(live_id(f, "probe/shop/a.app.liveness") > 0);

	/* a goes; b, when next seen, fits. */
	km_kube_mirror_delete(f->m, "u-a", "pod deleted");
	km_kube_mirror_put(f->m, &pb, "pod/shop/b");
	flush(f);
	km_kube_mirror_stats(f->m, &st);
	assert_int_equal(st.probes, 2);
	assert_true(live_id(f, "probe/shop/b.app.readiness") > 0);
	assert_int_equal(live_id(f, "probe/shop/a.app.liveness"), 0);

	/* What is never mirrored is counted (and logged), not made. */
	pa = pod("c", "u-c", &skipped, 1);
	km_kube_mirror_put(f->m, &pa, "pod/shop/c");
	flush(f);
	km_kube_mirror_stats(f->m, &st);
	assert_int_equal(st.skipped, 1);
	assert_int_equal(st.probes, 2);
	assert_int_equal(live_id(f, "probe/shop/c.app.readiness"), 0);
	/* Seen again unchanged: said once, not again. */
	km_kube_mirror_put(f->m, &pa, "pod/shop/c");
	km_kube_mirror_stats(f->m, &st);
	assert_int_equal(st.skipped, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_made_changed_deleted,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_and_skips, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
