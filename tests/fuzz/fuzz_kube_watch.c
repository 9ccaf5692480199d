/*
 * libFuzzer target: a watch stream from a hostile API server. The input is
 * split into lines as the client splits the stream; each line goes through
 * km_kube_parse_event and its object through km_kube_decode_object as
 * every resource; the whole input is also read as a LIST. Then what was
 * decoded goes into the caches and the rules, as the daemon would do.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "km_kube_cache.h"
#include "km_kube_decode.h"
#include "km_kube_rules.h"
#include "km_pbcheck.h"

static struct km_kube_cache *caches[KM_RES_N];

static void check_text(const char *s)
{
	if (s)
		CHECK(km_utf8_invalid_at(s, strlen(s)) == strlen(s));
}

/* Decoded objects hold only UTF-8; the cache takes them; every rule
 * answers with a UTF-8 reason. */
static void use(enum km_kube_resource r, const struct km_kube_object *o)
{
	struct km_kube_verdict v;
	struct km_error err = {0};
	enum km_kube_put what;
	struct km_kube_object *old = NULL;
	int rc;

	check_text(o->meta.name);
	check_text(o->meta.ns);
	check_text(o->meta.uid);
	check_text(o->meta.owner_name);
	switch (r) {
	case KM_RES_NODE:
		check_text(o->u.node.ready_message);
		km_kube_judge_node(&o->u.node, 0, NULL, &v);
		break;
	case KM_RES_POD:
		for (size_t i = 0; i < o->u.pod.n_containers; i++)
			check_text(o->u.pod.containers[i].waiting_message);
		km_kube_judge_pod(&o->u.pod, 0, NULL, &v);
		break;
	case KM_RES_SERVICE: km_kube_judge_service(&o->u.service, &v); break;
	case KM_RES_DEPLOYMENT:
	case KM_RES_STATEFULSET:
	case KM_RES_DAEMONSET:
		km_kube_judge_workload(&o->u.workload, &v);
		break;
	default: v.reason[0] = '\0'; break;
	}
	check_text(v.reason);
	rc = km_kube_cache_put(caches[r], o, &what, &old, NULL, &err);
	CHECK(rc == 0 || rc == KM_EFULL || rc == KM_EINVAL);
	km_kube_object_free(old);
}

static void decode_all(const km_json *obj, struct km_arena *a)
{
	for (int r = 0; r < KM_RES_N; r++) {
		struct km_kube_object o;
		struct km_error err = {0};
		int rc = km_kube_decode_object((enum km_kube_resource)r, obj, a,
					       &o, &err);

		CHECK(rc == 0 || rc == KM_EINVAL);
		if (rc == 0) {
			CHECK(o.meta.name && *o.meta.name);
			CHECK(o.meta.uid && *o.meta.uid);
			use((enum km_kube_resource)r, &o);
		} else {
			CHECK(err.msg[0] != '\0');
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *end = s + size;
	struct km_arena a;
	struct km_kube_list l;
	struct km_error err = {0};
	struct km_arena tree;
	km_json *root = NULL;

	for (int r = 0; r < KM_RES_N; r++)
		if (!caches[r] && km_kube_cache_new((enum km_kube_resource)r,
						    64, &caches[r], &err))
			abort();
	km_arena_init(&a, 0);
	km_arena_init(&tree, 0);
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
		struct km_kube_event ev;
		int rc = km_kube_parse_event(s, len, &tree, &root, &ev, &err);

		CHECK(rc == 0 || rc == KM_EINVAL);
		CHECK(rc == 0 || root == NULL);
		if (rc == 0) {
			CHECK(ev.type >= KM_EV_ADDED && ev.type <= KM_EV_ERROR);
			if (ev.type == KM_EV_ERROR)
				CHECK(ev.status.reason && ev.status.message);
			else
				decode_all(ev.object, &a);
			root = NULL;
		}
		/* The daemon's informer keeps one chunk between events. */
		km_arena_reset(&tree);
		s += len + (nl ? 1 : 0);
	}
	if (km_kube_parse_list((const char *)data, size, &tree, &root, &l,
			       &err) == 0) {
		size_t n = 0;

		for (const km_json *it = km_kube_first(&l); it;
		     it = km_kube_next(it), n++)
			decode_all(it, &a);
		CHECK(n == l.n_items);
	}
	km_arena_free(&tree);
	{
		struct km_kube_status st;

		km_kube_parse_status((const char *)data, size, &a, &st);
		CHECK(st.reason && st.message);
		check_text(st.reason);
		check_text(st.message);
	}
	km_arena_free(&a);
	/* Caches stay between inputs, bounded (64 each), as in the daemon;
	 * emptied now and then so that adds keep being tried. */
	for (int r = 0; r < KM_RES_N; r++)
		if (km_kube_cache_count(caches[r]) >= 64) {
			km_kube_cache_relist_begin(caches[r]);
			km_kube_cache_relist_end(caches[r], NULL, NULL);
		}
	return 0;
}
