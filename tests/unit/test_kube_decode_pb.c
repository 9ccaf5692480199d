/*
 * Reading the API server's protobuf (service/kube/km_kube_decode_pb.c):
 * the same pods, recorded from a real API server in JSON and in protobuf
 * at one resourceVersion (tests/e2e/record_pb_fixtures.sh), must decode
 * into the same struct km_kube_object, field for field; and what a hostile
 * server could send (malformed frames, other kinds, memory bombs) is
 * refused with a reason, within the stated bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s.io/api/core/v1/generated.pb-c.h"
#include "k8s.io/apimachinery/pkg/apis/meta/v1/generated.pb-c.h"
#include "k8s.io/apimachinery/pkg/runtime/generated.pb-c.h"
#include "km_kube_decode.h"
#include "km_kube_rules.h"
#include "km_test.h"

typedef K8s__Io__Api__Core__V1__Pod Pod;
typedef K8s__Io__Apimachinery__Pkg__Runtime__Unknown Unknown;
typedef K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__Status Status;
typedef K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__StatusDetails StatusDetails;
typedef K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__StatusCause StatusCause;

/* ---- comparing two decoded pods ------------------------------------------------- */

static void same_str(const char *what, const char *a, const char *b)
{
	if (!a || !b) {
		if (a != b)
			fail_msg("%s: %s vs %s", what, a ? a : "NULL",
				 b ? b : "NULL");
		return;
	}
	if (strcmp(a, b))
		fail_msg("%s: \"%s\" vs \"%s\"", what, a, b);
}

static void same_int(const char *what, int64_t a, int64_t b)
{
	if (a != b)
		fail_msg("%s: %lld vs %lld", what, (long long)a, (long long)b);
}

static void same_containers(const char *what, const struct km_kube_container *a,
			    size_t na, const struct km_kube_container *b,
			    size_t nb)
{
	same_int(what, (int64_t)na, (int64_t)nb);
	for (size_t i = 0; i < na; i++) {
		same_str("container name", a[i].name, b[i].name);
		same_int("ready", a[i].ready, b[i].ready);
		same_int("restart_count", a[i].restart_count,
			 b[i].restart_count);
		same_str("waiting_reason", a[i].waiting_reason,
			 b[i].waiting_reason);
		same_str("waiting_message", a[i].waiting_message,
			 b[i].waiting_message);
		same_str("last_terminated_reason", a[i].last_terminated_reason,
			 b[i].last_terminated_reason);
		same_int("last_exit_code", a[i].last_exit_code,
			 b[i].last_exit_code);
	}
}

/* Every field of a pod's struct km_kube_object. */
static void same_pod(const struct km_kube_object *a,
		     const struct km_kube_object *b)
{
	const struct km_kube_pod *p = &a->u.pod, *q = &b->u.pod;

	same_int("resource", a->resource, b->resource);
	same_str("ns", a->meta.ns, b->meta.ns);
	same_str("name", a->meta.name, b->meta.name);
	same_str("uid", a->meta.uid, b->meta.uid);
	same_str("resource_version", a->meta.resource_version,
		 b->meta.resource_version);
	same_str("owner_kind", a->meta.owner_kind, b->meta.owner_kind);
	same_str("owner_name", a->meta.owner_name, b->meta.owner_name);
	same_str("owner_uid", a->meta.owner_uid, b->meta.owner_uid);
	same_int("created_us", a->meta.created_us, b->meta.created_us);
	same_int("deleting", a->meta.deleting, b->meta.deleting);
	same_int("n_labels", (int64_t)a->meta.n_labels,
		 (int64_t)b->meta.n_labels);
	for (size_t i = 0; i < a->meta.n_labels && i < b->meta.n_labels; i++) {
		same_str("label key", a->meta.labels[i].key,
			 b->meta.labels[i].key);
		same_str("label value", a->meta.labels[i].value,
			 b->meta.labels[i].value);
	}
	same_str("pod.ns", p->ns, q->ns);
	same_str("pod.name", p->name, q->name);
	same_str("pod.owner_kind", p->owner_kind, q->owner_kind);
	same_str("node_name", p->node_name, q->node_name);
	same_int("phase", p->phase, q->phase);
	same_str("reason", p->reason, q->reason);
	same_str("message", p->message, q->message);
	same_int("scheduled", p->scheduled, q->scheduled);
	same_str("scheduled_message", p->scheduled_message,
		 q->scheduled_message);
	same_int("pod.created_us", p->created_us, q->created_us);
	same_int("started_us", p->started_us, q->started_us);
	same_containers("init_containers", p->init_containers,
			p->n_init_containers, q->init_containers,
			q->n_init_containers);
	same_containers("containers", p->containers, p->n_containers,
			q->containers, q->n_containers);
	same_int("mirror", p->mirror, q->mirror);
	same_str("pod_ip", p->pod_ip, q->pod_ip);
	same_int("n_probes", (int64_t)p->n_probes, (int64_t)q->n_probes);
	for (size_t i = 0; i < p->n_probes; i++) {
		const struct km_kube_probe *x = &p->probes[i],
					   *y = &q->probes[i];

		same_str("probe container", x->container, y->container);
		same_str("probe which", x->which, y->which);
		same_int("probe type", x->type, y->type);
		same_str("probe skip", x->skip, y->skip);
		same_int("probe port", x->port, y->port);
		same_str("probe path", x->path, y->path);
		same_int("probe https", x->https, y->https);
		same_str("probe service", x->service, y->service);
		same_int("probe n_headers", (int64_t)x->n_headers,
			 (int64_t)y->n_headers);
		for (size_t h = 0; h < 2 * x->n_headers; h++)
			same_str("probe header", x->headers[h], y->headers[h]);
		same_int("initial_delay_s", x->initial_delay_s,
			 y->initial_delay_s);
		same_int("period_s", x->period_s, y->period_s);
		same_int("timeout_s", x->timeout_s, y->timeout_s);
		same_int("success", x->success, y->success);
		same_int("failure", x->failure, y->failure);
	}
}

/* ---- the JSON side ------------------------------------------------------------ */

#define MAX_PODS 64

struct json_pods {
	struct km_arena a;
	struct km_kube_object o[MAX_PODS];
	size_t n;
};

static void json_list(struct json_pods *j, const char *name)
{
	size_t len;
	char *body = km_test_fixture_or_fail(name, &len);
	struct km_kube_list l;
	struct km_error err = {0};
	km_json *root;

	memset(j, 0, sizeof *j);
	km_arena_init(&j->a, 4096);
	assert_int_equal(km_kube_parse_list(body, len, &j->a, &root, &l, &err),
			 0);
	for (const km_json *it = km_kube_first(&l); it; it = km_kube_next(it)) {
		assert_true(j->n < MAX_PODS);
		if (km_kube_decode_object(KM_RES_POD, it, &j->a, &j->o[j->n],
					  &err))
			fail_msg("JSON: %s", err.msg);
		j->n++;
	}
	free(body); /* the objects point into the tree, in j->a */
}

static const struct km_kube_object *by_uid(const struct json_pods *j,
					   const char *uid)
{
	for (size_t i = 0; i < j->n; i++)
		if (!strcmp(j->o[i].meta.uid, uid))
			return &j->o[i];
	fail_msg("uid %s is not in the JSON", uid);
	return NULL;
}

/* ---- the recorded pods: the same in both -------------------------------------- */

static void test_list_same_as_json(void **state)
{
	struct json_pods j;
	size_t len, n_mirror = 0;
	char *body = km_test_fixture_or_fail("pb-pods-list.pb", &len);
	struct km_arena a;
	Unknown *u;
	K8s__Io__Api__Core__V1__PodList *list;

	(void)state;
	json_list(&j, "pb-pods-list.json");
	assert_true(j.n >= 11);
	km_arena_init(&a, 4096);
	/* A list is no watch: its envelope is unpacked here with protobuf-c
	 * (the daemon reads lists in JSON), its pods by the decoder. */
	assert_memory_equal(body, "k8s\0", 4);
	u = k8s__io__apimachinery__pkg__runtime__unknown__unpack(
		NULL, len - 4, (const uint8_t *)body + 4);
	assert_non_null(u);
	assert_string_equal(u->typemeta->kind, "PodList");
	list = k8s__io__api__core__v1__pod_list__unpack(NULL, u->raw.len,
							u->raw.data);
	assert_non_null(list);
	assert_int_equal(list->n_items, j.n);
	for (size_t i = 0; i < list->n_items; i++) {
		struct km_kube_object o;
		struct km_error err = {0};

		if (km_kube_decode_object_pb(KM_RES_POD, &list->items[i]->base,
					     &a, &o, &err))
			fail_msg("protobuf: %s", err.msg);
		same_pod(&o, by_uid(&j, o.meta.uid));
		n_mirror += o.u.pod.mirror;
		if (o.u.pod.mirror) {
			/* The recorder's "probed": 3 containers, 2 probes
			 * each; exec and a foreign host are skipped. */
			assert_string_equal(o.meta.name, "probed");
			assert_int_equal(o.u.pod.n_probes, 6);
			assert_int_equal(o.u.pod.probes[0].port, 8080);
			assert_true(o.u.pod.probes[0].https);
			assert_int_equal(o.u.pod.probes[0].n_headers, 2);
			assert_string_equal(o.u.pod.probes[0].headers[3], "");
			assert_string_equal(o.u.pod.probes[2].service,
					    "health");
			assert_non_null(o.u.pod.probes[3].skip);
			assert_non_null(o.u.pod.probes[4].skip);
			assert_non_null(o.u.pod.probes[5].skip);
			assert_string_equal(o.u.pod.message,
					    "ünïcødé ✓ — not ASCII");
			assert_string_equal(
				o.u.pod.containers[1].last_terminated_reason,
				"Error");
			assert_int_equal(o.u.pod.containers[1].last_exit_code,
					 -1);
		}
		assert_string_equal(o.meta.owner_kind, "ConfigMap");
	}
	assert_int_equal(n_mirror, 1);
	k8s__io__api__core__v1__pod_list__free_unpacked(list, NULL);
	k8s__io__apimachinery__pkg__runtime__unknown__free_unpacked(u, NULL);
	km_arena_free(&a);
	km_arena_free(&j.a);
	free(body);
}

/* The watch as kubemedicd asks for it: the initial events in frames, then
 * the bookmark that ends them; each pod the same as the JSON stream's. */
static void test_watch_frames_same_as_json(void **state)
{
	struct json_pods j = {0};
	size_t len, jlen, at = 0, added = 0, bookmarks = 0;
	char *body = km_test_fixture_or_fail("pb-pods-watch.pb", &len);
	char *jbody = km_test_fixture_or_fail("pb-pods-watch.jsonl", &jlen);
	struct km_arena a;

	(void)state;
	km_arena_init(&j.a, 4096);
	km_arena_init(&a, 4096);
	for (char *line = jbody, *nl; (nl = strchr(line, '\n'));
	     line = nl + 1) {
		struct km_kube_event ev;
		struct km_error err = {0};
		km_json *root;

		assert_int_equal(km_kube_parse_event(line, (size_t)(nl - line),
						     &j.a, &root, &ev, &err),
				 0);
		if (ev.type != KM_EV_ADDED)
			continue;
		assert_int_equal(km_kube_decode_object(KM_RES_POD, ev.object,
						       &j.a, &j.o[j.n], &err),
				 0);
		j.n++;
	}
	while (at + 4 <= len) {
		const unsigned char *b = (const unsigned char *)body + at;
		size_t n = (size_t)b[0] << 24 | (size_t)b[1] << 16 |
			   (size_t)b[2] << 8 | b[3];
		struct km_kube_event ev;
		struct km_kube_object o;
		struct km_error err = {0};

		assert_true(at + 4 + n <= len);
		if (km_kube_parse_event_pb(KM_RES_POD, body + at + 4, n, &a,
					   &ev, &err))
			fail_msg("frame at %zu: %s", at, err.msg);
		at += 4 + n;
		assert_null(ev.object);
		if (ev.type == KM_EV_BOOKMARK) {
			bookmarks++;
			assert_true(ev.initial_events_end);
			assert_true(ev.resource_version[0] >= '1' &&
				    ev.resource_version[0] <= '9');
			continue;
		}
		assert_int_equal(ev.type, KM_EV_ADDED);
		assert_non_null(ev.pb_object);
		assert_int_equal(km_kube_decode_object_pb(KM_RES_POD,
							  ev.pb_object, &a, &o,
							  &err),
				 0);
		assert_string_equal(ev.resource_version,
				    o.meta.resource_version);
		same_pod(&o, by_uid(&j, o.meta.uid));
		added++;
	}
	assert_int_equal(at, len);
	assert_int_equal(added, j.n);
	assert_true(added >= 11);
	assert_int_equal(bookmarks, 1);
	km_arena_free(&a);
	km_arena_free(&j.a);
	free(body);
	free(jbody);
}

static void test_status_404(void **state)
{
	size_t len;
	char *body = km_test_fixture_or_fail("pb-status-404.pb", &len);
	struct km_kube_status st;
	struct km_arena a;

	(void)state;
	km_arena_init(&a, 1024);
	km_kube_parse_status(body, len, &a, &st);
	assert_int_equal(st.code, 404);
	assert_string_equal(st.reason, "NotFound");
	assert_string_equal(st.message, "pods \"absent\" not found");
	/* Cut short: no Status, and no crash. */
	km_kube_parse_status(body, len - 7, &a, &st);
	assert_int_equal(st.code, 0);
	assert_string_equal(st.message, "");
	km_arena_free(&a);
	free(body);
}

/* ---- made here: frames a server could send -------------------------------------- */

/* "k8s\0" + Unknown{kind, raw} around m; malloc'd. */
static uint8_t *envelope(const ProtobufCMessage *m, const char *kind,
			 const char *encoding, size_t *len)
{
	K8s__Io__Apimachinery__Pkg__Runtime__TypeMeta tm =
		K8S__IO__APIMACHINERY__PKG__RUNTIME__TYPE_META__INIT;
	Unknown u = K8S__IO__APIMACHINERY__PKG__RUNTIME__UNKNOWN__INIT;
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *raw = malloc(n + 1), *out;

	assert_non_null(raw);
	protobuf_c_message_pack(m, raw);
	tm.apiversion = "v1";
	tm.kind = (char *)kind;
	u.typemeta = &tm;
	u.has_raw = true;
	u.raw.data = raw;
	u.raw.len = n;
	u.contentencoding = (char *)encoding;
	*len = 4 +
	       k8s__io__apimachinery__pkg__runtime__unknown__get_packed_size(
		       &u);
	out = malloc(*len);
	assert_non_null(out);
	memcpy(out, "k8s\0", 4);
	k8s__io__apimachinery__pkg__runtime__unknown__pack(&u, out + 4);
	free(raw);
	return out;
}

/* The 429 of an eviction a PodDisruptionBudget refused, in protobuf
 * (actions/eviction-429-pdb.pb, recorded by record_action_fixtures.sh): its
 * cause; and a Status made here with details.retryAfterSeconds. */
static void test_status_details(void **state)
{
	size_t len;
	char *body =
		km_test_fixture_or_fail("actions/eviction-429-pdb.pb", &len);
	StatusCause cause =
		K8S__IO__APIMACHINERY__PKG__APIS__META__V1__STATUS_CAUSE__INIT;
	StatusCause *causes[] = {&cause};
	StatusDetails d =
		K8S__IO__APIMACHINERY__PKG__APIS__META__V1__STATUS_DETAILS__INIT;
	Status s = K8S__IO__APIMACHINERY__PKG__APIS__META__V1__STATUS__INIT;
	struct km_kube_status st;
	struct km_arena a;
	uint8_t *made;

	(void)state;
	km_arena_init(&a, 1024);
	km_kube_parse_status(body, len, &a, &st);
	assert_int_equal(st.code, 429);
	assert_string_equal(st.reason, "TooManyRequests");
	assert_string_equal(st.cause_type, "DisruptionBudget");
	assert_non_null(strstr(st.cause_message,
			       "The disruption budget guarded needs 2"));
	assert_int_equal(st.retry_after_s, 0); /* the server gives none */
	free(body);

	s.has_code = true;
	s.code = 429;
	s.reason = "TooManyRequests";
	s.message = "too many requests";
	s.details = &d;
	d.has_retryafterseconds = true;
	d.retryafterseconds = 7;
	d.n_causes = 1;
	d.causes = causes;
	cause.reason = "Bad\xff";
	cause.message = "why";
	made = envelope(&s.base, "Status", NULL, &len);
	km_kube_parse_status((const char *)made, len, &a, &st);
	assert_int_equal(st.code, 429);
	assert_int_equal(st.retry_after_s, 7);
	assert_string_equal(st.cause_type, "Bad?"); /* made UTF-8 */
	assert_string_equal(st.cause_message, "why");
	free(made);
	/* Not positive: none. */
	d.retryafterseconds = -5;
	made = envelope(&s.base, "Status", NULL, &len);
	km_kube_parse_status((const char *)made, len, &a, &st);
	assert_int_equal(st.retry_after_s, 0);
	free(made);
	km_arena_free(&a);
}

/* A WatchEvent frame (without its length) of type around m; malloc'd. */
static uint8_t *frame(const char *type, const ProtobufCMessage *m,
		      const char *kind, size_t *len)
{
	K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__WatchEvent ev =
		K8S__IO__APIMACHINERY__PKG__APIS__META__V1__WATCH_EVENT__INIT;
	K8s__Io__Apimachinery__Pkg__Runtime__RawExtension re =
		K8S__IO__APIMACHINERY__PKG__RUNTIME__RAW_EXTENSION__INIT;
	size_t n;
	uint8_t *obj = envelope(m, kind, NULL, &n), *out;

	ev.type = (char *)type;
	re.has_raw = true;
	re.raw.data = obj;
	re.raw.len = n;
	ev.object = &re;
	*len = k8s__io__apimachinery__pkg__apis__meta__v1__watch_event__get_packed_size(
		&ev);
	out = malloc(*len + 1);
	assert_non_null(out);
	k8s__io__apimachinery__pkg__apis__meta__v1__watch_event__pack(&ev, out);
	free(obj);
	return out;
}

struct made {
	Pod pod;
	K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__ObjectMeta md;
	K8s__Io__Api__Core__V1__PodStatus st;
	K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__Time created;
	K8s__Io__Api__Core__V1__ContainerStatus cs, *csp;
};

static void made_init(struct made *m)
{
	static const Pod pod = K8S__IO__API__CORE__V1__POD__INIT;
	static const K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__ObjectMeta md =
		K8S__IO__APIMACHINERY__PKG__APIS__META__V1__OBJECT_META__INIT;
	static const K8s__Io__Api__Core__V1__PodStatus st =
		K8S__IO__API__CORE__V1__POD_STATUS__INIT;
	static const K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__Time t =
		K8S__IO__APIMACHINERY__PKG__APIS__META__V1__TIME__INIT;
	static const K8s__Io__Api__Core__V1__ContainerStatus cs =
		K8S__IO__API__CORE__V1__CONTAINER_STATUS__INIT;

	m->pod = pod;
	m->md = md;
	m->st = st;
	m->created = t;
	m->cs = cs;
	m->csp = &m->cs;
	m->md.name = "p1";
	m->md.namespace_ = "ns";
	m->md.uid = "u1";
	m->md.resourceversion = "7";
	m->md.creationtimestamp = &m->created;
	m->created.has_seconds = true;
	m->created.seconds = 1795939200; /* 2026-11-30T00:00:00Z */
	m->pod.metadata = &m->md;
	m->pod.status = &m->st;
	m->st.phase = "Running";
	m->st.n_containerstatuses = 1;
	m->st.containerstatuses = &m->csp;
	m->cs.name = "app";
	m->cs.has_ready = true;
	m->cs.ready = true;
	m->cs.has_restartcount = true;
}

static int decode_made(struct made *m, struct km_arena *a,
		       struct km_kube_object *o, struct km_error *err)
{
	size_t len;
	uint8_t *f = frame("MODIFIED", &m->pod.base, "Pod", &len);
	struct km_kube_event ev;
	int rc = km_kube_parse_event_pb(KM_RES_POD, f, len, a, &ev, err);

	if (!rc) {
		assert_int_equal(ev.type, KM_EV_MODIFIED);
		assert_string_equal(ev.resource_version, "7");
		rc = km_kube_decode_object_pb(KM_RES_POD, ev.pb_object, a, o,
					      err);
	}
	free(f);
	return rc;
}

/* The JSON of the same pod, through the JSON decoder. */
static void decode_json(const char *json, struct km_arena *a,
			struct km_kube_object *o)
{
	struct km_kube_event ev;
	struct km_error err = {0};
	km_json *root;
	char line[2048];

	snprintf(line, sizeof line, "{\"type\":\"MODIFIED\",\"object\":%s}",
		 json);
	assert_int_equal(km_kube_parse_event(line, strlen(line), a, &root, &ev,
					     &err),
			 0);
	if (km_kube_decode_object(KM_RES_POD, ev.object, a, o, &err))
		fail_msg("JSON: %s", err.msg);
}

/* What Go's JSON leaves out and its protobuf writes: "" of an omitempty
 * field is absent in both; Go's zero time is JSON's null; bytes that are
 * not UTF-8 get the same '?'. */
static void test_made_same_as_json(void **state)
{
	struct made m;
	struct km_arena a;
	struct km_kube_object o, j;
	struct km_error err = {0};
	char bad_utf8[] = "oom \xff\xfe killed \xc3";

	(void)state;
	km_arena_init(&a, 4096);
	made_init(&m);
	m.st.reason = "";        /* omitempty: absent */
	m.st.message = bad_utf8; /* repaired */
	m.st.podip = "";
	m.created.seconds = -62135596800LL; /* Go's zero time */
	m.cs.restartcount = 3;
	assert_int_equal(decode_made(&m, &a, &o, &err), 0);
	decode_json(
		"{\"metadata\":{\"name\":\"p1\",\"namespace\":\"ns\","
		"\"uid\":\"u1\",\"resourceVersion\":\"7\","
		"\"creationTimestamp\":null},"
		"\"status\":{\"phase\":\"Running\",\"message\":\"oom \xff\xfe"
		" killed \xc3\",\"containerStatuses\":[{\"name\":\"app\","
		"\"ready\":true,\"restartCount\":3}]}}",
		&a, &j);
	same_pod(&o, &j);
	assert_null(o.u.pod.reason);
	assert_int_equal(o.meta.created_us, 0);
	assert_string_equal(o.u.pod.message, "oom ?? killed ?");
	assert_int_equal(o.u.pod.containers[0].restart_count, 3);

	/* An empty phase is no phase (JSON leaves it out), not Unknown. */
	made_init(&m);
	m.st.phase = "";
	assert_int_equal(decode_made(&m, &a, &o, &err), 0);
	assert_int_equal(o.u.pod.phase, KM_POD_PHASE_UNSET);
	assert_int_equal(o.meta.created_us, 1795939200LL * 1000000);
	km_arena_free(&a);
}

static void test_made_out_of_range(void **state)
{
	struct made m;
	struct km_arena a;
	struct km_kube_object o;
	struct km_error err = {0};

	(void)state;
	km_arena_init(&a, 4096);
	made_init(&m);
	m.cs.restartcount = -1;
	assert_int_equal(decode_made(&m, &a, &o, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "status.containerStatuses[0]"));

	made_init(&m);
	m.created.seconds = -5; /* before 1970: JSON refuses it too */
	assert_int_equal(decode_made(&m, &a, &o, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "metadata.creationTimestamp"));

	made_init(&m);
	m.created.seconds = INT64_MAX; /* no overflow */
	assert_int_equal(decode_made(&m, &a, &o, &err), KM_EINVAL);

	made_init(&m);
	m.md.uid = "";
	assert_int_equal(decode_made(&m, &a, &o, &err), KM_EINVAL);
	assert_string_equal(err.msg, "Pod: metadata.uid: missing");
	km_arena_free(&a);
}

static void test_error_and_bookmark_events(void **state)
{
	K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__Status st =
		K8S__IO__APIMACHINERY__PKG__APIS__META__V1__STATUS__INIT;
	K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__ObjectMeta__AnnotationsEntry
		ann = K8S__IO__APIMACHINERY__PKG__APIS__META__V1__OBJECT_META__ANNOTATIONS_ENTRY__INIT,
		*annp = &ann;
	struct made m;
	struct km_arena a;
	struct km_kube_event ev;
	struct km_error err = {0};
	size_t len;
	uint8_t *f;

	(void)state;
	km_arena_init(&a, 4096);
	st.has_code = true;
	st.code = 410;
	st.reason = "Expired";
	st.message = "too old resource version: 1 (590)";
	f = frame("ERROR", &st.base, "Status", &len);
	assert_int_equal(
		km_kube_parse_event_pb(KM_RES_POD, f, len, &a, &ev, &err), 0);
	assert_int_equal(ev.type, KM_EV_ERROR);
	assert_int_equal(ev.status.code, 410);
	assert_string_equal(ev.status.reason, "Expired");
	assert_string_equal(ev.status.message,
			    "too old resource version: 1 (590)");
	free(f);

	/* A bookmark: a pod with only a version and the annotation. */
	made_init(&m);
	m.md.name = m.md.uid = NULL;
	m.md.creationtimestamp = NULL;
	m.md.resourceversion = "591";
	ann.key = "k8s.io/initial-events-end";
	ann.value = "true";
	m.md.n_annotations = 1;
	m.md.annotations = &annp;
	m.pod.status = NULL;
	f = frame("BOOKMARK", &m.pod.base, "Pod", &len);
	assert_int_equal(
		km_kube_parse_event_pb(KM_RES_POD, f, len, &a, &ev, &err), 0);
	assert_int_equal(ev.type, KM_EV_BOOKMARK);
	assert_true(ev.initial_events_end);
	assert_string_equal(ev.resource_version, "591");
	free(f);
	ann.value = "false";
	f = frame("BOOKMARK", &m.pod.base, "Pod", &len);
	assert_int_equal(
		km_kube_parse_event_pb(KM_RES_POD, f, len, &a, &ev, &err), 0);
	assert_false(ev.initial_events_end);
	free(f);
	km_arena_free(&a);
}

/* Whatever the bytes, a reason and no crash; nothing read past the end
 * (ASan); no memory past the budget. */
static void test_hostile_frames(void **state)
{
	struct made m;
	struct km_arena a;
	struct km_kube_event ev;
	struct km_error err = {0};
	size_t len, olen;
	uint8_t *f, *obj;

	(void)state;
	km_arena_init(&a, 4096);
	made_init(&m);
	f = frame("ADDED", &m.pod.base, "Pod", &len);
	/* Every cut of a good frame: refused or read, never past len. */
	for (size_t n = 0; n < len; n++) {
		uint8_t *cut = malloc(n ? n : 1);

		memcpy(cut, f, n);
		(void)km_kube_parse_event_pb(KM_RES_POD, cut, n, &a, &ev, &err);
		free(cut);
		km_arena_reset(&a);
	}
	free(f);

	/* Another kind than asked for. */
	f = frame("ADDED", &m.pod.base, "Node", &len);
	assert_int_equal(km_kube_parse_event_pb(KM_RES_POD, f, len, &a, &ev,
						&err),
			 KM_EINVAL);
	assert_string_equal(err.msg, "Pod: the object is a Node");
	free(f);

	/* An unknown type. */
	f = frame("EXPLODED", &m.pod.base, "Pod", &len);
	assert_int_equal(km_kube_parse_event_pb(KM_RES_POD, f, len, &a, &ev,
						&err),
			 KM_EINVAL);
	assert_string_equal(err.msg, "watch event: unknown type \"EXPLODED\"");
	free(f);

	/* A compressed object. */
	obj = envelope(&m.pod.base, "Pod", "gzip", &olen);
	assert_int_equal(km_kube_parse_object_pb(KM_RES_POD, obj, olen, &a,
						 &(const km_pb_object *){NULL},
						 &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "gzip"));
	/* No magic. */
	assert_int_equal(
		km_kube_parse_object_pb(KM_RES_POD, obj + 1, olen - 1, &a,
					&(const km_pb_object *){NULL}, &err),
		KM_EINVAL);
	free(obj);

	/* Another resource than pods. */
	assert_false(km_kube_pb_supported(KM_RES_NODE));
	assert_int_equal(km_kube_parse_event_pb(KM_RES_NODE, "", 0, &a, &ev,
						&err),
			 KM_EINVAL);
	km_arena_reset(&a);

	/* A memory bomb: 200,000 empty containers are 400 KB on the wire and
	 * 200,000 structs of hundreds of bytes: refused at the budget. */
	{
		K8s__Io__Api__Core__V1__PodSpec spec =
			K8S__IO__API__CORE__V1__POD_SPEC__INIT;
		K8s__Io__Api__Core__V1__Container c =
			K8S__IO__API__CORE__V1__CONTAINER__INIT;
		size_t n = 200000;
		K8s__Io__Api__Core__V1__Container **cs = malloc(n * sizeof *cs);

		for (size_t i = 0; i < n; i++)
			cs[i] = &c;
		spec.n_containers = n;
		spec.containers = cs;
		m.pod.spec = &spec;
		f = frame("ADDED", &m.pod.base, "Pod", &len);
		assert_true(len < 500000);
		assert_int_equal(km_kube_parse_event_pb(KM_RES_POD, f, len, &a,
							&ev, &err),
				 KM_EFULL);
		assert_non_null(strstr(err.msg, "bytes of memory"));
		assert_true(a.used <= KM_KUBE_PB_EXPANSION * len + 65536);
		free(f);
		free(cs);
		m.pod.spec = NULL;
	}
	km_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_same_as_json),
		cmocka_unit_test(test_watch_frames_same_as_json),
		cmocka_unit_test(test_status_404),
		cmocka_unit_test(test_made_same_as_json),
		cmocka_unit_test(test_made_out_of_range),
		cmocka_unit_test(test_error_and_bookmark_events),
		cmocka_unit_test(test_hostile_frames),
		cmocka_unit_test(test_status_details),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
