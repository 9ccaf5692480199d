/* The informers' cache (service/kube/km_kube_cache.h): copies that own
 * their strings, lookups by name and uid, versions, relists, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "km_kube_cache.h"

static struct km_kube_cache *new_cache(enum km_kube_resource r, size_t max)
{
	struct km_kube_cache *c;
	struct km_error err = {0};

	assert_int_equal(km_kube_cache_new(r, max, &c, &err), 0);
	return c;
}

static struct km_kube_object pod(const char *ns, const char *name,
				 const char *uid, const char *rv)
{
	return (struct km_kube_object){
		.resource = KM_RES_POD,
		.meta = {.ns = ns,
			 .name = name,
			 .uid = uid,
			 .resource_version = rv,
			 .owner_kind = "ReplicaSet",
			 .owner_name = "cart-7d9f",
			 .created_us = 42},
		.u.pod = {.phase = KM_POD_RUNNING},
	};
}

static enum km_kube_put put(struct km_kube_cache *c,
			    const struct km_kube_object *o,
			    struct km_kube_object **old)
{
	enum km_kube_put what;
	struct km_error err = {0};

	assert_int_equal(km_kube_cache_put(c, o, &what, old, NULL, &err), 0);
	return what;
}

static void test_copies_own_their_strings(void **state)
{
	struct km_kube_cache *c = new_cache(KM_RES_POD, 0);
	char ns[16] = "shop", name[16] = "cart-0", uid[16] = "u-1";
	char cname[16] = "cart", why[32] = "CrashLoopBackOff";
	char lk[16] = "app", lv[16] = "cart";
	struct km_kube_container cs[1] = {
		{.name = cname, .restart_count = 3, .waiting_reason = why}};
	struct km_kv labels[2] = {{lk, lv}, {"tier", ""}};
	struct km_kube_object o = pod(ns, name, uid, "10");
	const struct km_kube_object *got;

	(void)state;
	o.u.pod.containers = cs;
	o.u.pod.n_containers = 1;
	o.meta.labels = labels;
	o.meta.n_labels = 2;
	assert_int_equal(put(c, &o, NULL), KM_PUT_ADDED);
	/* The decoder's buffers are reused for the next object. */
	memset(ns, 'x', sizeof ns - 1);
	memset(name, 'x', sizeof name - 1);
	memset(uid, 'x', sizeof uid - 1);
	memset(cname, 'x', sizeof cname - 1);
	memset(why, 'x', sizeof why - 1);
	memset(lk, 'x', sizeof lk - 1);
	memset(lv, 'x', sizeof lv - 1);
	labels[1].key = "gone";
	cs[0].restart_count = 9;

	got = km_kube_cache_get(c, "shop", "cart-0");
	assert_non_null(got);
	assert_string_equal(got->meta.uid, "u-1");
	assert_string_equal(got->meta.owner_name, "cart-7d9f");
	assert_int_equal(got->u.pod.n_containers, 1);
	assert_string_equal(got->u.pod.containers[0].name, "cart");
	assert_string_equal(got->u.pod.containers[0].waiting_reason,
			    "CrashLoopBackOff");
	assert_int_equal(got->u.pod.containers[0].restart_count, 3);
	assert_null(got->u.pod.init_containers);
	assert_int_equal(got->meta.n_labels, 2);
	assert_ptr_not_equal(got->meta.labels, labels);
	assert_string_equal(got->meta.labels[0].key, "app");
	assert_string_equal(got->meta.labels[0].value, "cart");
	assert_string_equal(got->meta.labels[1].key, "tier");
	assert_string_equal(got->meta.labels[1].value, "");
	/* The rules' struct names the object through the metadata. */
	assert_ptr_equal(got->u.pod.name, got->meta.name);
	assert_ptr_equal(got->u.pod.ns, got->meta.ns);
	assert_string_equal(got->u.pod.owner_kind, "ReplicaSet");
	assert_int_equal(got->u.pod.created_us, 42);
	assert_ptr_equal(km_kube_cache_get_uid(c, "u-1"), got);
	assert_null(km_kube_cache_get(c, "shop", "cart-1"));
	assert_null(km_kube_cache_get(c, "other", "cart-0"));
	assert_null(km_kube_cache_get_uid(c, "u-2"));
	km_kube_cache_free(c);
}

/* Labels are kept for the kinds a recovery policy matches (nodes, pods,
 * workloads), at most KM_KUBE_LABELS_MAX, and dropped for the others. */
static void test_labels_kept_where_policies_match(void **state)
{
	static struct km_kv many[KM_KUBE_LABELS_MAX + 5];
	static char keys[KM_KUBE_LABELS_MAX + 5][8];
	struct km_kube_cache *pods = new_cache(KM_RES_POD, 0);
	struct km_kube_cache *leases = new_cache(KM_RES_LEASE, 0);
	struct km_kube_object o = pod("ns", "many", "u-m", "1");
	struct km_kube_object l = {
		.resource = KM_RES_LEASE,
		.meta = {.ns = "kube-node-lease",
			 .name = "n1",
			 .uid = "u-l",
			 .resource_version = "1",
			 .labels = many,
			 .n_labels = 3},
	};
	const struct km_kube_object *got;

	(void)state;
	for (size_t i = 0; i < KM_KUBE_LABELS_MAX + 5; i++) {
		snprintf(keys[i], sizeof keys[i], "k%zu", i);
		many[i] = (struct km_kv){keys[i], "v"};
	}
	o.meta.labels = many;
	o.meta.n_labels = KM_KUBE_LABELS_MAX + 5;
	assert_int_equal(put(pods, &o, NULL), KM_PUT_ADDED);
	got = km_kube_cache_get(pods, "ns", "many");
	assert_int_equal(got->meta.n_labels, KM_KUBE_LABELS_MAX);
	assert_string_equal(got->meta.labels[KM_KUBE_LABELS_MAX - 1].key,
			    keys[KM_KUBE_LABELS_MAX - 1]);
	assert_int_equal(put(leases, &l, NULL), KM_PUT_ADDED);
	got = km_kube_cache_get(leases, "kube-node-lease", "n1");
	assert_int_equal(got->meta.n_labels, 0);
	assert_null(got->meta.labels);
	km_kube_cache_free(pods);
	km_kube_cache_free(leases);
}

static void test_versions(void **state)
{
	struct km_kube_cache *c = new_cache(KM_RES_POD, 0);
	struct km_kube_container was = {.name = "cart", .restart_count = 1};
	struct km_kube_container now = {.name = "cart", .restart_count = 2};
	struct km_kube_object o = pod("shop", "cart-0", "u-1", "10");
	struct km_kube_object *old;

	(void)state;
	o.u.pod.containers = &was;
	o.u.pod.n_containers = 1;
	assert_int_equal(put(c, &o, &old), KM_PUT_ADDED);
	assert_null(old);
	/* The same resourceVersion again (a relist): nothing to compare. */
	assert_int_equal(put(c, &o, &old), KM_PUT_UNCHANGED);
	assert_null(old);
	/* A new version: the old one to compare with. */
	o.meta.resource_version = "11";
	o.u.pod.containers = &now;
	assert_int_equal(put(c, &o, &old), KM_PUT_UPDATED);
	assert_non_null(old);
	assert_int_equal(old->u.pod.containers[0].restart_count, 1);
	assert_int_equal(km_kube_cache_get(c, "shop", "cart-0")
				 ->u.pod.containers[0]
				 .restart_count,
			 2);
	km_kube_object_free(old);
	/* Deleted and made again under the same name between two watches:
	 * the old uid goes. */
	o.meta.uid = "u-2";
	o.meta.resource_version = "20";
	assert_int_equal(put(c, &o, &old), KM_PUT_REPLACED);
	assert_string_equal(old->meta.uid, "u-1");
	km_kube_object_free(old);
	assert_null(km_kube_cache_get_uid(c, "u-1"));
	assert_string_equal(km_kube_cache_get(c, "shop", "cart-0")->meta.uid,
			    "u-2");
	assert_int_equal(km_kube_cache_count(c), 1);
	/* Without old, the replaced version is freed by the cache. */
	o.meta.resource_version = "21";
	assert_int_equal(put(c, &o, NULL), KM_PUT_UPDATED);

	old = km_kube_cache_remove(c, "u-2");
	assert_non_null(old);
	assert_string_equal(old->meta.name, "cart-0");
	km_kube_object_free(old);
	assert_null(km_kube_cache_remove(c, "u-2"));
	assert_null(km_kube_cache_get(c, "shop", "cart-0"));
	assert_int_equal(km_kube_cache_count(c), 0);
	km_kube_cache_free(c);
}

struct gone {
	char uids[8][16];
	size_t n;
};

static void on_gone(struct km_kube_object *o, void *arg)
{
	struct gone *g = arg;

	assert_true(g->n < 8);
	snprintf(g->uids[g->n++], 16, "%s", o->meta.uid);
	km_kube_object_free(o);
}

static void test_relist(void **state)
{
	struct km_kube_cache *c = new_cache(KM_RES_POD, 0);
	struct km_kube_object a = pod("shop", "a", "u-a", "1");
	struct km_kube_object b = pod("shop", "b", "u-b", "1");
	struct km_kube_object d = pod("shop", "d", "u-d", "1");
	struct km_kube_object e = pod("shop", "e", "u-e", "5");
	struct gone g = {0};

	(void)state;
	put(c, &a, NULL);
	put(c, &b, NULL);
	put(c, &d, NULL);
	/* The watch missed: d deleted, b changed, e made. */
	km_kube_cache_relist_begin(c);
	assert_int_equal(put(c, &a, NULL), KM_PUT_UNCHANGED);
	b.meta.resource_version = "2";
	assert_int_equal(put(c, &b, NULL), KM_PUT_UPDATED);
	assert_int_equal(put(c, &e, NULL), KM_PUT_ADDED);
	assert_int_equal(km_kube_cache_relist_end(c, on_gone, &g), 1);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.uids[0], "u-d");
	assert_int_equal(km_kube_cache_count(c), 3);
	assert_null(km_kube_cache_get(c, "shop", "d"));
	/* A second relist that brings everything removes nothing. */
	km_kube_cache_relist_begin(c);
	put(c, &a, NULL);
	put(c, &b, NULL);
	put(c, &e, NULL);
	assert_int_equal(km_kube_cache_relist_end(c, on_gone, &g), 0);
	/* An empty list: everything went (freed by the cache without fn). */
	km_kube_cache_relist_begin(c);
	assert_int_equal(km_kube_cache_relist_end(c, NULL, NULL), 3);
	assert_int_equal(km_kube_cache_count(c), 0);
	km_kube_cache_free(c);
}

static void test_bounds_and_bad_objects(void **state)
{
	struct km_kube_cache *c = new_cache(KM_RES_POD, 2);
	struct km_kube_object o = pod("shop", "a", "u-a", "1");
	struct km_error err = {0};
	enum km_kube_put what;

	(void)state;
	put(c, &o, NULL);
	o = pod("shop", "b", "u-b", "1");
	put(c, &o, NULL);
	o = pod("shop", "c", "u-c", "1");
	assert_int_equal(km_kube_cache_put(c, &o, &what, NULL, NULL, &err),
			 KM_EFULL);
	assert_string_equal(err.msg, "more than 2 objects of one resource");
	/* Full, but updates and replacements still go in. */
	o = pod("shop", "b", "u-b", "2");
	assert_int_equal(put(c, &o, NULL), KM_PUT_UPDATED);
	o = pod("shop", "b", "u-b2", "3");
	assert_int_equal(put(c, &o, NULL), KM_PUT_REPLACED);
	assert_int_equal(km_kube_cache_count(c), 2);

	o = pod("shop", "x", NULL, "1");
	assert_int_equal(km_kube_cache_put(c, &o, &what, NULL, NULL, &err),
			 KM_EINVAL);
	assert_string_equal(err.msg, "shop/x: object without metadata.uid");
	o = pod("shop", "", "u-x", "1");
	assert_int_equal(km_kube_cache_put(c, &o, &what, NULL, NULL, &err),
			 KM_EINVAL);
	assert_string_equal(err.msg, "object without metadata.name");
	o.resource = KM_RES_NODE;
	o.meta.name = "n";
	assert_int_equal(km_kube_cache_put(c, &o, &what, NULL, NULL, &err),
			 KM_EINVAL);
	km_kube_cache_free(c);
}

static void test_long_strings_and_many_containers(void **state)
{
	static char msg[3000];
	static struct km_kube_container cs[100];
	struct km_kube_cache *c = new_cache(KM_RES_POD, 0);
	struct km_kube_object o = pod("shop", "big", "u-big", "1");
	const struct km_kube_object *got;
	enum km_kube_put what;
	struct km_error err = {0};

	(void)state;
	/* "é" is 2 bytes: 1,024 falls inside one when the text starts one
	 * byte in. */
	msg[0] = 'x';
	for (size_t i = 1; i + 2 < sizeof msg; i += 2)
		memcpy(msg + i, "\xc3\xa9", 2);
	for (size_t i = 0; i < 100; i++)
		cs[i] = (struct km_kube_container){.name = "c",
						   .ready = i < 50};
	o.u.pod.message = msg;
	o.u.pod.containers = cs;
	o.u.pod.n_containers = 100;
	assert_int_equal(km_kube_cache_put(c, &o, &what, NULL, &got, &err), 0);
	assert_int_equal(strlen(got->u.pod.message), 1023);
	assert_int_equal(got->u.pod.n_containers, KM_KUBE_CONTAINERS_MAX);
	assert_true(got->u.pod.containers[49].ready);
	assert_false(got->u.pod.containers[50].ready);
	km_kube_cache_free(c);
}

static void test_many_objects(void **state)
{
	struct km_kube_cache *c = new_cache(KM_RES_NODE, 0);
	char name[32], uid[32];
	size_t seen = 0;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		struct km_kube_object o = {.resource = KM_RES_NODE,
					   .meta = {.ns = "",
						    .name = name,
						    .uid = uid,
						    .resource_version = "1"}};

		snprintf(name, sizeof name, "node-%d", i);
		snprintf(uid, sizeof uid, "uid-%d", i);
		o.u.node.ready = KM_COND_TRUE;
		assert_int_equal(put(c, &o, NULL), KM_PUT_ADDED);
	}
	assert_int_equal(km_kube_cache_count(c), 20000);
	for (int i = 0; i < 20000; i += 7) {
		const struct km_kube_object *o;

		snprintf(name, sizeof name, "node-%d", i);
		snprintf(uid, sizeof uid, "uid-%d", i);
		/* Cluster-scoped: "" and NULL are the same namespace. */
		o = km_kube_cache_get(c, NULL, name);
		assert_non_null(o);
		assert_ptr_equal(km_kube_cache_get(c, "", name), o);
		assert_ptr_equal(km_kube_cache_get_uid(c, uid), o);
		assert_string_equal(o->u.node.name, name);
		seen++;
	}
	assert_true(seen > 2800);
	km_kube_cache_free(c);
}

static void count_each(const struct km_kube_object *o, void *arg)
{
	(void)o;
	(*(size_t *)arg)++;
}

static void test_each_and_workload_kind(void **state)
{
	struct km_kube_cache *c = new_cache(KM_RES_STATEFULSET, 0);
	struct km_kube_object o = {
		.resource = KM_RES_STATEFULSET,
		.meta = {.ns = "db", .name = "pg", .uid = "u-pg"},
		.u.workload = {.desired = 3, .ready = 2}};
	const struct km_kube_object *got;
	size_t n = 0;

	(void)state;
	put(c, &o, NULL);
	got = km_kube_cache_get(c, "db", "pg");
	assert_string_equal(got->u.workload.kind, "StatefulSet");
	assert_string_equal(got->u.workload.name, "pg");
	km_kube_cache_each(c, count_each, &n);
	assert_int_equal(n, 1);
	km_kube_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copies_own_their_strings),
		cmocka_unit_test(test_labels_kept_where_policies_match),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_relist),
		cmocka_unit_test(test_bounds_and_bad_objects),
		cmocka_unit_test(test_long_strings_and_many_containers),
		cmocka_unit_test(test_many_objects),
		cmocka_unit_test(test_each_and_workload_kind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
