/*
 * libFuzzer target: a protobuf watch stream from a hostile API server
 * (application/vnd.kubernetes.protobuf;stream=watch). The input is cut into
 * frames as the client cuts the stream (a 4-byte big-endian length, then
 * the frame; a length past the input or past KM_KUBE_FRAME_MAX ends it);
 * each frame goes through km_kube_parse_event_pb and its pod through
 * km_kube_decode_object_pb, then into a cache and the pod rule, as the
 * daemon would. The whole input is also read as one object and as an
 * error answer's Status.
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

static struct km_kube_cache *cache;

static void check_text(const char *s)
{
	if (s)
		CHECK(km_utf8_invalid_at(s, strlen(s)) == strlen(s));
}

static void use(const km_pb_object *obj, struct km_arena *a)
{
	struct km_kube_object o;
	struct km_kube_verdict v;
	struct km_error err = {0};
	enum km_kube_put what;
	struct km_kube_object *old = NULL;
	int rc = km_kube_decode_object_pb(KM_RES_POD, obj, a, &o, &err);

	CHECK(rc == 0 || rc == KM_EINVAL || rc == KM_ENOMEM);
	if (rc) {
		CHECK(err.msg[0] != '\0');
		return;
	}
	CHECK(o.meta.name && *o.meta.name && o.meta.uid && *o.meta.uid);
	check_text(o.meta.name);
	check_text(o.meta.ns);
	check_text(o.meta.uid);
	check_text(o.meta.owner_name);
	check_text(o.u.pod.message);
	CHECK(o.u.pod.n_containers <= KM_KUBE_CONTAINERS_MAX);
	CHECK(o.u.pod.n_probes <= KM_KUBE_PROBES_MAX);
	for (size_t i = 0; i < o.u.pod.n_containers; i++)
		check_text(o.u.pod.containers[i].waiting_message);
	for (size_t i = 0; i < o.u.pod.n_probes; i++) {
		check_text(o.u.pod.probes[i].path);
		for (size_t h = 0; h < 2 * o.u.pod.probes[i].n_headers; h++)
			check_text(o.u.pod.probes[i].headers[h]);
	}
	km_kube_judge_pod(&o.u.pod, 0, NULL, &v);
	check_text(v.reason);
	rc = km_kube_cache_put(cache, &o, &what, &old, NULL, &err);
	CHECK(rc == 0 || rc == KM_EFULL || rc == KM_EINVAL);
	km_kube_object_free(old);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_arena a;
	struct km_error err = {0};
	size_t at = 0;

	if (!cache && km_kube_cache_new(KM_RES_POD, 64, &cache, &err))
		abort();
	km_arena_init(&a, 0);
	while (size - at >= 4) {
		size_t n = (size_t)data[at] << 24 | (size_t)data[at + 1] << 16 |
			   (size_t)data[at + 2] << 8 | data[at + 3];
		struct km_kube_event ev;
		int rc;

		if (n > KM_KUBE_FRAME_MAX || n > size - at - 4)
			break;
		rc = km_kube_parse_event_pb(KM_RES_POD, data + at + 4, n, &a,
					    &ev, &err);
		CHECK(rc == 0 || rc == KM_EINVAL || rc == KM_EFULL ||
		      rc == KM_ENOMEM);
		/* The budget holds whatever the frame. */
		CHECK(a.used <= KM_KUBE_PB_EXPANSION * n + 65536 + 4096);
		if (rc == 0) {
			CHECK(ev.type >= KM_EV_ADDED && ev.type <= KM_EV_ERROR);
			CHECK(ev.object == NULL);
			if (ev.type == KM_EV_ERROR) {
				check_text(ev.status.reason);
				check_text(ev.status.message);
			} else {
				CHECK(ev.pb_object && ev.resource_version);
				if (ev.type != KM_EV_BOOKMARK)
					use(ev.pb_object, &a);
			}
		} else {
			CHECK(err.msg[0] != '\0');
		}
		km_arena_reset(&a);
		at += 4 + n;
	}
	{
		const km_pb_object *obj;

		if (km_kube_parse_object_pb(KM_RES_POD, data, size, &a, &obj,
					    &err) == 0)
			use(obj, &a);
	}
	{
		struct km_kube_status st;

		km_kube_parse_status((const char *)data, size, &a, &st);
		CHECK(st.reason && st.message);
		check_text(st.reason);
		check_text(st.message);
	}
	km_arena_free(&a);
	if (km_kube_cache_count(cache) >= 64) {
		km_kube_cache_relist_begin(cache);
		km_kube_cache_relist_end(cache, NULL, NULL);
	}
	return 0;
}
