/*
 * The Kubernetes source (service/kube/km_kube_source.h) on a real store
 * and hub: objects become targets with their identity, verdicts become
 * transitions, Leases and EndpointSlices change the judgments of nodes
 * and Services, time ends a startup grace, restarts are kept as results,
 * deletions and relists delete targets, and names that cannot be targets
 * spoil nothing. On a loop, writes land without the loop waiting for them:
 * what changes while one is in flight, and a write that fails, lose
 * nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_health.h"
#include "km_kube_source.h"
#include "km_loop.h"
#include "km_store.h"
#include "km_test.h"
#include "km_test_vfs.h"
#include "km_time.h"

#define SEC 1000000LL

/* An hour ago, to the second: the tests' clock runs from there, and stays
 * behind the real one, with which the store stamps deletions (history is
 * ordered by time). */
static int64_t T0;

struct fixture {
	char *dir, *db;
	struct km_store *s;
	struct km_health *h;
	struct km_reader *r;
	struct km_kube_source *src;
	struct km_arena a;
	struct km_loop *loop; /* the source's, when it has one */
	int landed, rc;       /* flushed calls, and the last one's rc */
	char why[KM_ERROR_MSG_MAX];
	struct km_timer guard;
};

static void make_source(struct fixture *f, const char *cluster)
{
	struct km_kube_source_options o = {.cluster = cluster,
					   .store = f->s,
					   .health = f->h};
	struct km_error err = {0};

	km_kube_source_free(f->src);
	if (km_kube_source_new(&o, &f->src, &err))
		fail_msg("source: %s", err.msg);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	/* Each check's result a row of its own (the store's schema-5
	 * baseline), to look at one by one. */
	struct km_store_options so = {.raw_results = true};
	struct km_health_options ho = {0};
	struct km_error err = {0};

	T0 = (km_now_us() / SEC - 3600) * SEC;
	f->dir = km_test_tmpdir();
	if (!f->dir || asprintf(&f->db, "%s/km.db", f->dir) < 0)
		return -1;
	km_arena_init(&f->a, 4096);
	so.path = f->db;
	if (km_store_open(&so, &f->s, &err))
		fail_msg("store: %s", err.msg);
	ho.store = f->s;
	if (km_health_open(&ho, &f->h, &err))
		fail_msg("hub: %s", err.msg);
	if (km_reader_open(f->s, &f->r, &err))
		fail_msg("reader: %s", err.msg);
	make_source(f, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct km_error err = {0};

	km_kube_source_free(f->src);
	km_loop_destroy(f->loop);
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

/* Flushes the source, then the store: what it decided is committed and
 * published. */
static void flush(struct fixture *f)
{
	struct km_error err = {0};

	if (km_kube_source_flush(f->src, &err))
		fail_msg("flush: %s", err.msg);
	if (km_store_flush(f->s, &err))
		fail_msg("store flush: %s", err.msg);
}

static int state_of(struct fixture *f, const char *name)
{
	int st = 0;

	if (km_health_state(f->h, name, &st))
		return 0; /* not a live target */
	return st;
}

static struct km_target target(struct fixture *f, const char *name)
{
	struct km_target t;
	struct km_error err = {0};

	if (km_reader_get_target(f->r, name, &f->a, &t, &err))
		fail_msg("%s: %s", name, err.msg);
	return t;
}

/* The cause of the newest transition of target name (deleted ones too). */
static const char *last_cause(struct fixture *f, const char *name,
			      int *to_state)
{
	struct km_target t;
	struct km_transition *v;
	struct km_history_query q = {.from_us = INT64_MIN,
				     .to_us = INT64_MAX,
				     .limit = 1};
	struct km_error err = {0};
	size_t n;
	bool more;

	assert_int_equal(km_reader_find_target(f->r, name, &f->a, &t, &err), 0);
	q.target_id = t.id;
	assert_int_equal(km_reader_query_transitions(f->r, &q, &f->a, &v, &n,
						     &more, &err),
			 0);
	if (!n)
		return NULL;
	if (to_state)
		*to_state = v[0].to_state;
	return v[0].cause;
}

static size_t result_count(struct fixture *f, const char *name,
			   const char *containing)
{
	struct km_target t = target(f, name);
	struct km_result *v;
	struct km_history_query q = {.target_id = t.id,
				     .from_us = INT64_MIN,
				     .to_us = INT64_MAX,
				     .limit = 100};
	struct km_error err = {0};
	size_t n, k = 0;
	bool more;

	assert_int_equal(km_reader_query_results(f->r, &q, &f->a, &v, &n, &more,
						 &err),
			 0);
	for (size_t i = 0; i < n; i++)
		k += !containing ||
		     (v[i].message && strstr(v[i].message, containing));
	return k;
}

static void put(struct fixture *f, const struct km_kube_object *o, int64_t now)
{
	struct km_error err = {0};

	if (km_kube_source_put(f->src, o, now, &err))
		fail_msg("put: %s", err.msg);
}

/* ---- objects ------------------------------------------------------------------ */

static struct km_kube_object node(const char *name, const char *rv,
				  enum km_kube_cond ready)
{
	return (struct km_kube_object){
		.resource = KM_RES_NODE,
		.meta = {.ns = "",
			 .name = name,
			 .uid = name,
			 .resource_version = rv},
		.u.node = {.ready = ready},
	};
}

static struct km_kube_object lease(const char *node_name, int64_t renew)
{
	static char rv[24];

	snprintf(rv, sizeof rv, "%lld", (long long)renew);
	return (struct km_kube_object){
		.resource = KM_RES_LEASE,
		.meta = {.ns = "kube-node-lease",
			 .name = node_name,
			 .uid = node_name,
			 .resource_version = rv},
		.u.lease = {.renew_us = renew, .duration_s = 40},
	};
}

static struct km_kube_container ready_one[] = {{.name = "cart", .ready = 1}};

static struct km_kube_object pod(const char *name, const char *uid,
				 const char *rv, enum km_kube_pod_phase phase)
{
	return (struct km_kube_object){
		.resource = KM_RES_POD,
		.meta = {.ns = "shop",
			 .name = name,
			 .uid = uid,
			 .resource_version = rv,
			 .owner_kind = "ReplicaSet",
			 .owner_name = "cart-7d9f",
			 .created_us = T0},
		.u.pod = {.phase = phase,
			  .node_name = "n1",
			  .started_us = T0 + SEC,
			  .containers = ready_one,
			  .n_containers = 1},
	};
}

/* ---- a source on a loop ------------------------------------------------------- */

static void on_flushed(void *arg, int rc, const struct km_error *err)
{
	struct fixture *f = arg;

	f->landed++;
	f->rc = rc;
	snprintf(f->why, sizeof f->why, "%s", rc ? err->msg : "");
	km_loop_stop(f->loop);
}

static void guard_fired(struct km_loop *l, void *arg)
{
	(void)arg;
	km_loop_stop(l); /* a failure guard, not a pacer */
}

static void make_loop_source(struct fixture *f)
{
	struct km_error err = {0};
	struct km_kube_source_options o = {.store = f->s,
					   .health = f->h,
					   .flushed = on_flushed,
					   .flushed_arg = f};

	km_kube_source_free(f->src);
	f->src = NULL;
	if (!f->loop && km_loop_create(&f->loop, &err))
		fail_msg("loop: %s", err.msg);
	o.loop = f->loop;
	if (km_kube_source_new(&o, &f->src, &err))
		fail_msg("source: %s", err.msg);
	km_timer_init(&f->guard, guard_fired, f);
}

/* Runs the loop until the write in flight lands, then flushes the store
 * (states are published by its commits); the landing's rc. */
static int run_until_landed(struct fixture *f)
{
	int before = f->landed;
	struct km_error err = {0};

	km_loop_timer_set(f->loop, &f->guard, km_mono_ns() + 10LL * 1000000000);
	km_loop_run(f->loop);
	km_loop_timer_cancel(f->loop, &f->guard);
	if (f->landed != before + 1)
		fail_msg("the write did not land (%d landings)",
			 f->landed - before);
	if (km_store_flush(f->s, &err))
		fail_msg("store flush: %s", err.msg);
	return f->rc;
}

static void flush_start(struct fixture *f)
{
	struct km_error err = {0};

	if (km_kube_source_flush_start(f->src, &err))
		fail_msg("flush_start: %s", err.msg);
}

static void put_pods(struct fixture *f, int from, int to, const char *prefix)
{
	char name[32], uid[32];

	for (int i = from; i < to; i++) {
		struct km_kube_object p;

		snprintf(name, sizeof name, "%s-%d", prefix, i);
		snprintf(uid, sizeof uid, "%s-u%d", prefix, i);
		p = pod(name, uid, "1", KM_POD_RUNNING);
		put(f, &p, T0);
	}
}

/* The transitions of target name, oldest first, as to_state values. */
static size_t states_of(struct fixture *f, const char *name, int *to,
			size_t max)
{
	struct km_transition *v;
	struct km_history_query q = {.from_us = INT64_MIN,
				     .to_us = INT64_MAX,
				     .limit = (int32_t)max,
				     .oldest_first = true};
	struct km_error err = {0};
	struct km_target t;
	size_t n;
	bool more;

	assert_int_equal(km_reader_find_target(f->r, name, &f->a, &t, &err), 0);
	q.target_id = t.id;
	assert_int_equal(km_reader_query_transitions(f->r, &q, &f->a, &v, &n,
						     &more, &err),
			 0);
	for (size_t i = 0; i < n; i++)
		to[i] = v[i].to_state;
	return n;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_node_and_its_lease(void **state)
{
	struct fixture *f = *state;
	struct km_kube_object n = node("n1", "1", KM_COND_TRUE);
	struct km_kube_object l = lease("n1", T0);
	struct km_kube_source_stats st;

	put(f, &l, T0);
	put(f, &n, T0);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_HEALTHY);
	assert_string_equal(target(f, "node//n1").uid, "n1");
	assert_string_equal(last_cause(f, "node//n1", NULL), "node is ready");

	/* The kubelet goes silent: no event comes, time passes. */
	km_kube_source_tick(f->src, T0 + 30 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_HEALTHY);
	km_kube_source_tick(f->src, T0 + 45 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_UNHEALTHY);
	assert_non_null(strstr(last_cause(f, "node//n1", NULL),
			       "node lease not renewed for 45s"));
	/* It comes back: the Lease is renewed. */
	l = lease("n1", T0 + 46 * SEC);
	put(f, &l, T0 + 46 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_HEALTHY);

	/* Updates that change nothing are no observations. */
	km_kube_source_stats(f->src, &st);
	n.meta.resource_version = "2";
	put(f, &n, T0 + 47 * SEC);
	km_kube_source_tick(f->src, T0 + 48 * SEC);
	flush(f);
	{
		struct km_kube_source_stats st2;

		km_kube_source_stats(f->src, &st2);
		assert_int_equal(st2.observations, st.observations);
		assert_int_equal(st2.targets, 1);
		assert_int_equal(st2.objects[KM_RES_LEASE], 1);
	}
	/* Not ready, with the reason. */
	n = node("n1", "3", KM_COND_FALSE);
	n.u.node.ready_reason = "KubeletNotReady";
	put(f, &n, T0 + 49 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_UNHEALTHY);
	assert_string_equal(last_cause(f, "node//n1", NULL),
			    "node is not ready: KubeletNotReady");
	/* Deleted: a target deleted, its history kept. */
	km_kube_source_delete(f->src, KM_RES_NODE, "n1", T0 + 50 * SEC);
	flush(f);
	{
		int to = 0;

		assert_int_equal(state_of(f, "node//n1"), 0);
		assert_string_equal(last_cause(f, "node//n1", &to),
				    "node deleted");
		assert_int_equal(to, KM_STATE_DELETED);
	}
}

/* The API server goes away for longer than the Lease grace: the kubelets
 * cannot renew, and kubemedicd could not see them if they did. The nodes
 * keep their verdicts while the Leases are not watched; afterwards a Lease
 * is old by the time seen before and since, and one already old before is
 * still judged so. */
static void test_lease_age_counts_only_time_watched(void **state)
{
	struct fixture *f = *state;
	struct km_kube_object n1 = node("n1", "1", KM_COND_TRUE);
	struct km_kube_object n2 = node("n2", "1", KM_COND_TRUE);
	struct km_kube_object l1 = lease("n1", T0);
	struct km_kube_object l2 = lease("n2", T0 - 35 * SEC);

	put(f, &l1, T0);
	put(f, &l2, T0);
	put(f, &n1, T0);
	put(f, &n2, T0);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_HEALTHY);
	assert_int_equal(state_of(f, "node//n2"), KM_STATE_HEALTHY);

	/* Lost at T0+10s (n1 seen unrenewed for 10 s, n2 for 45 s), as
	 * every retry fails. */
	km_kube_source_watching(f->src, KM_RES_LEASE, false, T0 + 10 * SEC);
	km_kube_source_watching(f->src, KM_RES_LEASE, false, T0 + 12 * SEC);
	km_kube_source_tick(f->src, T0 + 100 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_HEALTHY);
	assert_int_equal(state_of(f, "node//n2"), KM_STATE_UNHEALTHY);
	assert_non_null(strstr(last_cause(f, "node//n2", NULL),
			       "node lease not renewed for 45s"));
	/* Other resources failing change nothing of it. */
	km_kube_source_watching(f->src, KM_RES_NODE, true, T0 + 110 * SEC);

	/* Back at T0+120s, n1's Lease as it was: 10 s seen before, 29 s
	 * since. */
	km_kube_source_watching(f->src, KM_RES_LEASE, true, T0 + 120 * SEC);
	km_kube_source_watching(f->src, KM_RES_LEASE, true, T0 + 121 * SEC);
	km_kube_source_tick(f->src, T0 + 149 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_HEALTHY);
	/* ... 31 s since: its kubelet has not renewed since it could. */
	km_kube_source_tick(f->src, T0 + 151 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_UNHEALTHY);
	assert_non_null(strstr(last_cause(f, "node//n1", NULL),
			       "node lease not renewed for 41s"));
	/* Renewed: healthy, and its age counts in full again. */
	l1 = lease("n1", T0 + 152 * SEC);
	put(f, &l1, T0 + 152 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_HEALTHY);
	km_kube_source_tick(f->src, T0 + 191 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_HEALTHY);
	km_kube_source_tick(f->src, T0 + 193 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_UNHEALTHY);
	assert_non_null(strstr(last_cause(f, "node//n1", NULL),
			       "node lease not renewed for 41s"));
}

static void test_pod_life(void **state)
{
	struct fixture *f = *state;
	struct km_kube_object rs = {
		.resource = KM_RES_REPLICASET,
		.meta = {.ns = "shop",
			 .name = "cart-7d9f",
			 .uid = "rs-1",
			 .resource_version = "1",
			 .owner_kind = "Deployment",
			 .owner_name = "cart"},
	};
	struct km_kube_container c[1] = {{.name = "cart", .ready = false}};
	struct km_kube_object p =
		pod("cart-7d9f-x2", "p-1", "1", KM_POD_PENDING);
	struct km_target t;

	put(f, &rs, T0);
	p.u.pod.node_name = NULL;
	p.u.pod.started_us = 0;
	put(f, &p, T0 + 10 * SEC);
	flush(f);
	/* Pending within its grace: a target, no verdict yet. */
	assert_int_equal(state_of(f, "pod/shop/cart-7d9f-x2"),
			 KM_STATE_UNKNOWN);
	t = target(f, "pod/shop/cart-7d9f-x2");
	assert_string_equal(t.owner, "deployment/shop/cart");
	assert_string_equal(t.node, "");
	assert_string_equal(t.uid, "p-1");
	/* The grace ends while the pods cannot be watched: nothing is
	 * known of the pod since, so time alone does not judge it. */
	km_kube_source_watching(f->src, KM_RES_POD, false, T0 + 200 * SEC);
	km_kube_source_tick(f->src, T0 + 301 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "pod/shop/cart-7d9f-x2"),
			 KM_STATE_UNKNOWN);
	/* Watched again, still pending (no event): tick. */
	km_kube_source_watching(f->src, KM_RES_POD, true, T0 + 300 * SEC);
	km_kube_source_tick(f->src, T0 + 301 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "pod/shop/cart-7d9f-x2"),
			 KM_STATE_UNHEALTHY);
	assert_non_null(strstr(last_cause(f, "pod/shop/cart-7d9f-x2", NULL),
			       "pod pending for 5m1s"));

	/* Scheduled and running: its node is known, and it is healthy. */
	p = pod("cart-7d9f-x2", "p-1", "2", KM_POD_RUNNING);
	put(f, &p, T0 + 310 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "pod/shop/cart-7d9f-x2"),
			 KM_STATE_HEALTHY);
	assert_string_equal(target(f, "pod/shop/cart-7d9f-x2").node, "n1");

	/* OOMKilled and restarted: kept in the history, and CrashLoop. */
	c[0].restart_count = 1;
	c[0].last_terminated_reason = "OOMKilled";
	c[0].last_exit_code = 137;
	c[0].waiting_reason = "CrashLoopBackOff";
	p = pod("cart-7d9f-x2", "p-1", "3", KM_POD_RUNNING);
	p.u.pod.containers = c;
	put(f, &p, T0 + 320 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "pod/shop/cart-7d9f-x2"),
			 KM_STATE_UNHEALTHY);
	/* The verdict is the cause; the restart is a result beside it. */
	assert_string_equal(last_cause(f, "pod/shop/cart-7d9f-x2", NULL),
			    "container cart is in CrashLoopBackOff (1 restart, "
			    "last exit: OOMKilled)");
	assert_int_equal(result_count(f, "pod/shop/cart-7d9f-x2",
				      "container cart was OOMKilled (exit code "
				      "137) and restarted"),
			 1);

	/* Replaced under its name (a StatefulSet's way): the old one's
	 * deletion is kept, the target has the new uid. */
	p = pod("cart-7d9f-x2", "p-2", "9", KM_POD_RUNNING);
	put(f, &p, T0 + 330 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "pod/shop/cart-7d9f-x2"),
			 KM_STATE_HEALTHY);
	assert_string_equal(target(f, "pod/shop/cart-7d9f-x2").uid, "p-2");
	{
		struct km_transition *v;
		struct km_history_query q = {
			.target_id = target(f, "pod/shop/cart-7d9f-x2").id,
			.from_us = INT64_MIN,
			.to_us = INT64_MAX,
			.limit = 10,
			.oldest_first = true};
		struct km_error err = {0};
		size_t n;
		bool more, deleted = false;

		assert_int_equal(km_reader_query_transitions(
					 f->r, &q, &f->a, &v, &n, &more, &err),
				 0);
		for (size_t i = 0; i < n; i++)
			deleted |= v[i].to_state == KM_STATE_DELETED;
		assert_true(deleted);
		assert_int_equal(v[n - 1].to_state, KM_STATE_HEALTHY);
	}
	/* Deleted, and a deletion of what is gone already changes nothing. */
	km_kube_source_delete(f->src, KM_RES_POD, "p-2", T0 + 340 * SEC);
	km_kube_source_delete(f->src, KM_RES_POD, "p-2", T0 + 341 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "pod/shop/cart-7d9f-x2"), 0);
}

static void test_service_over_its_slices(void **state)
{
	struct fixture *f = *state;
	struct km_kube_object svc = {
		.resource = KM_RES_SERVICE,
		.meta = {.ns = "shop",
			 .name = "cart",
			 .uid = "s-1",
			 .resource_version = "1"},
		.u.service = {.has_selector = true},
	};
	struct km_kube_object a = {
		.resource = KM_RES_ENDPOINTSLICE,
		.meta = {.ns = "shop",
			 .name = "cart-abc",
			 .uid = "e-1",
			 .resource_version = "1"},
		.u.slice = {.service = "cart", .endpoints = 2, .ready = 1},
	};
	struct km_kube_object b = a;

	/* A slice before its Service. */
	put(f, &a, T0);
	put(f, &svc, T0);
	flush(f);
	assert_int_equal(state_of(f, "service/shop/cart"), KM_STATE_HEALTHY);
	assert_string_equal(last_cause(f, "service/shop/cart", NULL),
			    "1 of 2 endpoints ready");
	/* A second slice; then the first loses its ready endpoint. */
	b.meta.name = "cart-def";
	b.meta.uid = "e-2";
	b.u.slice.ready = 0;
	put(f, &b, T0 + SEC);
	a.meta.resource_version = "2";
	a.u.slice.ready = 0;
	put(f, &a, T0 + 2 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "service/shop/cart"), KM_STATE_UNHEALTHY);
	assert_string_equal(last_cause(f, "service/shop/cart", NULL),
			    "no ready endpoints (0 of 4 ready)");
	/* A relist brings the slices unchanged: counted once, not twice. */
	km_kube_source_relist_begin(f->src, KM_RES_ENDPOINTSLICE);
	put(f, &a, T0 + 3 * SEC);
	km_kube_source_relist_end(f->src, KM_RES_ENDPOINTSLICE, T0 + 3 * SEC);
	flush(f);
	/* b was not in the list: deleted, so 2 endpoints are left. */
	a.meta.resource_version = "3";
	a.u.slice.ready = 2;
	put(f, &a, T0 + 4 * SEC);
	flush(f);
	assert_string_equal(last_cause(f, "service/shop/cart", NULL),
			    "2 of 2 endpoints ready");
	/* Without a selector it is no target. */
	svc.meta.resource_version = "2";
	svc.u.service.has_selector = false;
	put(f, &svc, T0 + 5 * SEC);
	flush(f);
	assert_int_equal(state_of(f, "service/shop/cart"), 0);
}

static void test_relist_deletes_what_the_watch_missed(void **state)
{
	struct fixture *f = *state;
	char name[32], uid[32];

	for (int i = 0; i < 3; i++) {
		struct km_kube_object p;

		snprintf(name, sizeof name, "p%d", i);
		snprintf(uid, sizeof uid, "u%d", i);
		p = pod(name, uid, "1", KM_POD_RUNNING);
		put(f, &p, T0);
	}
	flush(f);
	km_kube_source_relist_begin(f->src, KM_RES_POD);
	for (int i = 0; i < 2; i++) {
		struct km_kube_object p;

		snprintf(name, sizeof name, "p%d", i);
		snprintf(uid, sizeof uid, "u%d", i);
		p = pod(name, uid, "1", KM_POD_RUNNING);
		put(f, &p, T0 + SEC);
	}
	km_kube_source_relist_end(f->src, KM_RES_POD, T0 + SEC);
	flush(f);
	assert_int_equal(state_of(f, "pod/shop/p0"), KM_STATE_HEALTHY);
	assert_int_equal(state_of(f, "pod/shop/p1"), KM_STATE_HEALTHY);
	assert_int_equal(state_of(f, "pod/shop/p2"), 0);
	/* The relist of what was there is no new observation: one result
	 * each. */
	assert_int_equal(result_count(f, "pod/shop/p0", NULL), 1);
}

static void test_cluster_names_and_bad_names(void **state)
{
	struct fixture *f = *state;
	struct km_kube_object good = pod("web-0", "w-0", "1", KM_POD_RUNNING);
	struct km_kube_object bad = pod("we/b:1", "w-1", "1", KM_POD_RUNNING);
	struct km_kube_object dep = {
		.resource = KM_RES_DEPLOYMENT,
		.meta = {.ns = "shop",
			 .name = "web",
			 .uid = "d-1",
			 .resource_version = "1"},
		.u.workload = {.desired = 3, .ready = 1},
	};
	struct km_kube_source_stats st;

	make_source(f, "prod-eu");
	/* One object whose name cannot be a target's spoils nothing. */
	put(f, &bad, T0);
	put(f, &good, T0);
	put(f, &dep, T0);
	flush(f);
	assert_int_equal(state_of(f, "prod-eu:pod/shop/web-0"),
			 KM_STATE_HEALTHY);
	assert_string_equal(target(f, "prod-eu:pod/shop/web-0").cluster,
			    "prod-eu");
	assert_string_equal(target(f, "prod-eu:pod/shop/web-0").owner,
			    "prod-eu:replicaset/shop/cart-7d9f");
	assert_int_equal(state_of(f, "prod-eu:deployment/shop/web"),
			 KM_STATE_DEGRADED);
	km_kube_source_stats(f->src, &st);
	assert_int_equal(st.skipped, 1);
	assert_int_equal(st.targets, 2);
}

static void test_many_objects_one_flush(void **state)
{
	struct fixture *f = *state;
	char name[32], uid[32];
	struct km_kube_source_stats st;

	for (int i = 0; i < 2000; i++) {
		struct km_kube_object p;

		snprintf(name, sizeof name, "p-%d", i);
		snprintf(uid, sizeof uid, "u-%d", i);
		p = pod(name, uid, "1",
			i % 10 ? KM_POD_RUNNING : KM_POD_FAILED);
		put(f, &p, T0);
	}
	flush(f);
	km_kube_source_stats(f->src, &st);
	assert_int_equal(st.targets, 2000);
	assert_int_equal(st.observations, 2000);
	assert_int_equal(state_of(f, "pod/shop/p-1999"), KM_STATE_HEALTHY);
	assert_int_equal(state_of(f, "pod/shop/p-1990"), KM_STATE_UNHEALTHY);
}

/* The loop hands the writes over and goes on: new targets are made when
 * the write lands, and a verdict on a target that exists is observed at
 * once, even while a write is in flight. */
static void test_writes_land_on_the_loop(void **state)
{
	struct fixture *f = *state;
	struct km_kube_object n = node("n1", "1", KM_COND_TRUE);
	struct km_kube_source_stats st;
	struct km_error err = {0};

	make_loop_source(f);
	put(f, &n, T0);
	put_pods(f, 0, 1000, "a");
	flush_start(f);
	/* In flight: the loop has not run, nothing is tracked yet. */
	assert_int_equal(state_of(f, "node//n1"), 0);
	assert_int_equal(state_of(f, "pod/shop/a-0"), 0);
	assert_true(km_kube_source_dirty(f->src) == false);
	assert_int_equal(run_until_landed(f), 0);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_HEALTHY);
	assert_int_equal(state_of(f, "pod/shop/a-999"), KM_STATE_HEALTHY);

	/* More pods in flight; the node goes NotReady meanwhile. */
	put_pods(f, 0, 1000, "b");
	flush_start(f);
	n = node("n1", "2", KM_COND_FALSE);
	put(f, &n, T0 + SEC);
	flush_start(f);
	/* (The store's flush commits the flight too, but the loop has not
	 * heard of it: the pods are not targets yet.) */
	assert_int_equal(km_store_flush(f->s, &err), 0);
	assert_int_equal(state_of(f, "node//n1"), KM_STATE_UNHEALTHY);
	assert_int_equal(state_of(f, "pod/shop/b-0"), 0);
	assert_int_equal(run_until_landed(f), 0);
	assert_int_equal(state_of(f, "pod/shop/b-999"), KM_STATE_HEALTHY);
	assert_false(km_kube_source_dirty(f->src));
	km_kube_source_stats(f->src, &st);
	assert_int_equal(st.targets, 2001);
	assert_int_equal(st.observations, 2002);

	/* Freed with a write in flight: it waits for it (ASan and the
	 * teardown's store flush see the rest). */
	put_pods(f, 0, 100, "c");
	flush_start(f);
}

/* A pod deleted, and one replaced under its name, while the writes that
 * make them are in flight: the one is deleted after it is made, the other
 * deleted and made again with its new uid — both kept in the history. */
static void test_changes_while_in_flight(void **state)
{
	struct fixture *f = *state;
	struct km_kube_object p = pod("b", "b-1", "1", KM_POD_RUNNING);
	struct km_kube_object q = pod("a", "a-1", "1", KM_POD_RUNNING);
	int to[8];
	size_t n;

	make_loop_source(f);
	put(f, &q, T0);
	put(f, &p, T0);
	flush_start(f);
	km_kube_source_delete(f->src, KM_RES_POD, "a-1", T0 + SEC);
	p = pod("b", "b-2", "2", KM_POD_FAILED);
	put(f, &p, T0 + SEC);
	flush_start(f); /* waits for the flight: nothing new goes */
	assert_true(km_kube_source_dirty(f->src));
	assert_int_equal(run_until_landed(f), 0);
	/* Landed as they were when they flew. */
	assert_int_equal(state_of(f, "pod/shop/a"), KM_STATE_HEALTHY);
	assert_string_equal(target(f, "pod/shop/b").uid, "b-1");
	assert_true(km_kube_source_dirty(f->src));
	flush_start(f);
	assert_int_equal(run_until_landed(f), 0);
	assert_false(km_kube_source_dirty(f->src));

	assert_int_equal(state_of(f, "pod/shop/a"), 0);
	n = states_of(f, "pod/shop/a", to, 8);
	assert_int_equal(n, 2);
	assert_int_equal(to[0], KM_STATE_HEALTHY);
	assert_int_equal(to[1], KM_STATE_DELETED);
	assert_string_equal(last_cause(f, "pod/shop/a", NULL), "pod deleted");

	assert_int_equal(state_of(f, "pod/shop/b"), KM_STATE_UNHEALTHY);
	assert_string_equal(target(f, "pod/shop/b").uid, "b-2");
	n = states_of(f, "pod/shop/b", to, 8);
	assert_int_equal(n, 3);
	assert_int_equal(to[0], KM_STATE_HEALTHY);
	assert_int_equal(to[1], KM_STATE_DELETED);
	assert_int_equal(to[2], KM_STATE_UNHEALTHY);
}

/* A write the disk refuses is undone and comes back whole: the flushed
 * callback hears the error, the records wait, and the next flush after
 * the fault makes every target and observes every verdict. */
static void test_a_failed_write_loses_nothing(void **state)
{
	struct fixture *f = *state;
	struct km_kube_object p = pod("x", "x-1", "1", KM_POD_RUNNING);
	struct km_kube_source_stats st;

	make_loop_source(f);
	put(f, &p, T0);
	flush_start(f);
	assert_int_equal(run_until_landed(f), 0);

	put_pods(f, 0, 300, "d");
	km_kube_source_delete(f->src, KM_RES_POD, "x-1", T0 + SEC);
	km_test_vfs_fail(SQLITE_FULL);
	flush_start(f);
	assert_int_not_equal(run_until_landed(f), 0);
	assert_non_null(strstr(f->why, "full"));
	assert_true(km_kube_source_dirty(f->src));
	assert_int_equal(state_of(f, "pod/shop/d-0"), 0);
	assert_int_equal(state_of(f, "pod/shop/x"), KM_STATE_HEALTHY);

	km_test_vfs_fail(0);
	flush_start(f);
	assert_int_equal(run_until_landed(f), 0);
	assert_false(km_kube_source_dirty(f->src));
	assert_int_equal(state_of(f, "pod/shop/d-0"), KM_STATE_HEALTHY);
	assert_int_equal(state_of(f, "pod/shop/d-299"), KM_STATE_HEALTHY);
	assert_int_equal(state_of(f, "pod/shop/x"), 0);
	assert_string_equal(last_cause(f, "pod/shop/x", NULL), "pod deleted");
	km_kube_source_stats(f->src, &st);
	assert_int_equal(st.targets, 300);
}

static int setup_faulty(void **state)
{
	km_test_vfs_install();
	km_test_vfs_fail(0);
	return setup(state);
}

static int teardown_faulty(void **state)
{
	km_test_vfs_fail(0);
	return teardown(state);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_node_and_its_lease),
		T(test_lease_age_counts_only_time_watched),
		T(test_pod_life),
		T(test_service_over_its_slices),
		T(test_relist_deletes_what_the_watch_missed),
		T(test_cluster_names_and_bad_names),
		T(test_many_objects_one_flush),
		T(test_writes_land_on_the_loop),
		T(test_changes_while_in_flight),
		cmocka_unit_test_setup_teardown(
			test_a_failed_write_loses_nothing, setup_faulty,
			teardown_faulty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
