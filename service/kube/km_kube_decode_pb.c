/*
 * Reading the API server's protobuf (km_kube_decode.h): pods, for the
 * watch that streams them (bench/RESULTS.md: the API server writes a
 * protobuf stream of 30,000 pods in a third of the time of its JSON).
 *
 * An object in protobuf is the 4 bytes "k8s\0" then a runtime.Unknown:
 * its kind (TypeMeta), its bytes (raw), how they are encoded. A watch's
 * frame is a metav1.WatchEvent (type, and the object's such bytes in a
 * RawExtension). Those two envelopes are walked here in place, with a
 * few lines of wire-format reading: unpacked by protobuf-c, each would
 * be a copy of everything inside it. The object itself is unpacked by
 * protoc-c's code for k8s.io/api core/v1 (proto/k8s.io), within a
 * budget (KM_KUBE_PB_EXPANSION), into the caller's arena.
 *
 * The rule of this file: a pod read here is the struct km_kube_object
 * km_kube_decode.c makes of the same pod's JSON, field for field
 * (test_kube_decode_pb compares them on the API server's own bytes).
 * Where the two encodings differ, this file makes up the difference:
 *  - Go's JSON leaves out an empty string of an `omitempty` field, which
 *    the JSON reader sees as absent (NULL); Go's protobuf writes every
 *    string. So such a field's "" is NULL here (opt()); a field without
 *    omitempty keeps its "" (req()), as in JSON.
 *  - a metav1.Time is whole seconds in both; Go's zero time is JSON's
 *    null and protobuf's -62135596800 seconds: absent either way.
 *  - numbers are checked against the same ranges; proto2's has_ flags
 *    stand for a JSON field's presence.
 *  - strings that are not UTF-8 get the same '?' for each bad byte
 *    (protobuf-c checks none in proto2), in place: they are ours, in
 *    the arena.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "k8s.io/api/core/v1/generated.pb-c.h"
#include "k8s.io/apimachinery/pkg/apis/meta/v1/generated.pb-c.h"
#include "km_kube_decode.h"
#include "km_model.h"
#include "km_pbcheck.h"

typedef K8s__Io__Api__Core__V1__Pod Pod;
typedef K8s__Io__Api__Core__V1__PodSpec PodSpec;
typedef K8s__Io__Api__Core__V1__PodStatus PodStatus;
typedef K8s__Io__Api__Core__V1__ContainerStatus ContainerStatus;
typedef K8s__Io__Api__Core__V1__Container Container;
typedef K8s__Io__Api__Core__V1__Probe Probe;
typedef K8s__Io__Apimachinery__Pkg__Util__Intstr__IntOrString IntOrString;
typedef K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__ObjectMeta ObjectMeta;
typedef K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__Time Time;
typedef K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__Status Status;
typedef K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__StatusDetails StatusDetails;
typedef K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__StatusCause StatusCause;

#define GO_ZERO_TIME (-62135596800LL) /* time.Time{}.Unix() */
#define YEAR_9999_END 253402300799LL  /* RFC 3339's last second */

struct rd {
	struct km_arena *a;
	struct km_error *err;
	const char *kind;
};

static int bad(struct rd *r, const char *path, const char *what)
{
	return km_error_set(r->err, KM_EINVAL, "%s: %s: %s", r->kind, path,
			    what);
}

/* ---- the envelopes, on the wire --------------------------------------------------- */

struct wire {
	const uint8_t *p, *end;
};

static bool varint(struct wire *w, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && w->p < w->end; shift += 7) {
		uint8_t b = *w->p++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* The next field of a message: its number and, for a length-delimited
 * one, its bytes (others are skipped over, *len 0 and *val NULL). 1, 0
 * at the end, -1 when the bytes are no message. */
static int next_field(struct wire *w, uint32_t *num, const uint8_t **val,
		      size_t *len)
{
	uint64_t key, n;

	*val = NULL;
	*len = 0;
	if (w->p == w->end)
		return 0;
	if (!varint(w, &key) || (key >> 3) == 0 || (key >> 3) > 536870911)
		return -1;
	*num = (uint32_t)(key >> 3);
	switch (key & 7) {
	case 0: return varint(w, &n) ? 1 : -1;
	case 1:
		if (w->end - w->p < 8)
			return -1;
		w->p += 8;
		return 1;
	case 5:
		if (w->end - w->p < 4)
			return -1;
		w->p += 4;
		return 1;
	case 2:
		if (!varint(w, &n) || n > (uint64_t)(w->end - w->p))
			return -1;
		*val = w->p;
		*len = (size_t)n;
		w->p += n;
		return 1;
	default: return -1; /* groups: not in Kubernetes' protos */
	}
}

/* "k8s\0" + runtime.Unknown: the object's kind and bytes, in place. */
struct unknown {
	const uint8_t *raw;
	size_t raw_len;
	const uint8_t *kind; /* TypeMeta.kind, not NUL-terminated */
	size_t kind_len;
};

static int envelope(const void *data, size_t len, const char *what,
		    struct unknown *u, struct km_error *err)
{
	struct wire w = {(const uint8_t *)data + 4,
			 (const uint8_t *)data + len};
	const uint8_t *v;
	size_t n;
	uint32_t num;
	int rc;

	memset(u, 0, sizeof *u);
	if (len < 4 || memcmp(data, "k8s\0", 4))
		return km_error_set(err, KM_EINVAL,
				    "%s: not Kubernetes' protobuf (no \"k8s\" "
				    "magic)",
				    what);
	while ((rc = next_field(&w, &num, &v, &n)) == 1) {
		if (num == 1 && v) { /* typeMeta */
			struct wire t = {v, v + n};
			const uint8_t *tv;
			size_t tn;
			uint32_t tnum;
			int trc;

			while ((trc = next_field(&t, &tnum, &tv, &tn)) == 1)
				if (tnum == 2 && tv) { /* kind */
					u->kind = tv;
					u->kind_len = tn;
				}
			if (trc < 0)
				return km_error_set(err, KM_EINVAL,
						    "%s: a malformed TypeMeta",
						    what);
		} else if (num == 2 && v) { /* raw */
			u->raw = v;
			u->raw_len = n;
		} else if (num == 3 && n) { /* contentEncoding */
			return km_error_set(err, KM_EINVAL,
					    "%s: an encoded object (%.*s) is "
					    "not read",
					    what, (int)(n < 40 ? n : 40), v);
		}
	}
	if (rc < 0)
		return km_error_set(err, KM_EINVAL,
				    "%s: a malformed runtime.Unknown", what);
	return 0;
}

static bool kind_is(const struct unknown *u, const char *kind)
{
	/* An object without a kind is taken for what was asked. */
	return !u->kind_len || (u->kind_len == strlen(kind) &&
				!memcmp(u->kind, kind, u->kind_len));
}

/* The object of an envelope, unpacked as d within the budget. */
static int unpack(const ProtobufCMessageDescriptor *d, const char *kind,
		  const void *data, size_t len, struct km_arena *a,
		  ProtobufCMessage **out, struct km_error *err)
{
	struct unknown u;
	int rc;

	*out = NULL;
	if ((rc = envelope(data, len, kind, &u, err)))
		return rc;
	if (!kind_is(&u, kind))
		return km_error_set(err, KM_EINVAL, "%s: the object is a %.*s",
				    kind,
				    (int)(u.kind_len < 40 ? u.kind_len : 40),
				    u.kind);
	return km_pb_unpack(d, u.raw, u.raw_len, a,
			    KM_KUBE_PB_EXPANSION * u.raw_len + 65536,
			    (ProtobufCMessage **)out, err);
}

/* ---- fields ------------------------------------------------------------------------ */

/* A string, made UTF-8 in place. */
static const char *text(char *s)
{
	size_t n, at;

	if (!s)
		return NULL;
	n = strlen(s);
	at = km_utf8_invalid_at(s, n);
	if (at < n)
		km_utf8_repair(s + at, n - at);
	return s;
}

/* A field Go writes to JSON with omitempty: "" is what JSON leaves out. */
static const char *opt(char *s)
{
	return s && *s ? text(s) : NULL;
}

/* A field Go always writes to JSON: "" stays "". */
static const char *req(char *s)
{
	return text(s);
}

static int time_of(struct rd *r, const Time *t, const char *path, int64_t *out)
{
	int64_t s, ns;

	if (!t)
		return 0;
	s = t->has_seconds ? t->seconds : 0;
	ns = t->has_nanos ? t->nanos : 0;
	if (s == GO_ZERO_TIME && !ns)
		return 0; /* JSON's null */
	if (s < 0 || s > YEAR_9999_END || ns < 0 || ns > 999999999)
		return bad(r, path, "expected a time from 1970 to 9999");
	*out = s * 1000000 + ns / 1000;
	return 0;
}

/* An int32 that JSON reads in [0, INT32_MAX]; absent keeps *out. */
static int i32(struct rd *r, bool has, int32_t v, const char *path,
	       int32_t *out)
{
	if (!has)
		return 0;
	if (v < 0)
		return km_error_set(r->err, KM_EINVAL,
				    "%s: %s: expected an integer from 0 to %d",
				    r->kind, path, INT32_MAX);
	*out = v;
	return 0;
}

static enum km_kube_cond cond_status(const char *s)
{
	if (!s)
		return KM_COND_ABSENT;
	if (!strcmp(s, "True"))
		return KM_COND_TRUE;
	if (!strcmp(s, "False"))
		return KM_COND_FALSE;
	return KM_COND_UNKNOWN;
}

static const char *annotation(const ObjectMeta *md, const char *key)
{
	for (size_t i = 0; md && i < md->n_annotations; i++)
		if (md->annotations[i]->key &&
		    !strcmp(md->annotations[i]->key, key))
			return md->annotations[i]->value
				       ? md->annotations[i]->value
				       : "";
	return NULL; /* the first of a key given twice, as cJSON reads */
}

/* metadata.labels as the JSON decoder keeps them: at most
 * KM_KUBE_LABELS_MAX, the first; a key given twice keeps its first. */
static int labels_of(struct rd *r, const ObjectMeta *md, struct km_kube_meta *m)
{
	struct km_kv *kv;
	size_t n = 0;

	if (!md->n_labels)
		return 0;
	kv = km_arena_alloc(r->a, KM_KUBE_LABELS_MAX * sizeof *kv);
	if (!kv)
		return km_error_set(r->err, KM_ENOMEM, "out of memory");
	for (size_t i = 0; i < md->n_labels && n < KM_KUBE_LABELS_MAX; i++) {
		const char *key = md->labels[i]->key ? req(md->labels[i]->key)
						     : "";
		bool seen = false;

		for (size_t j = 0; j < n && !seen; j++)
			seen = !strcmp(kv[j].key, key);
		if (seen)
			continue;
		kv[n].key = key;
		kv[n].value = md->labels[i]->value ? req(md->labels[i]->value)
						   : "";
		n++;
	}
	m->labels = kv;
	m->n_labels = n;
	return 0;
}

static int meta(struct rd *r, const ObjectMeta *md, struct km_kube_meta *m)
{
	int64_t deleted = 0;
	int rc;

	if (!md)
		return bad(r, "metadata", "missing");
	m->ns = opt(md->namespace_);
	m->name = opt(md->name);
	m->uid = opt(md->uid);
	m->resource_version = opt(md->resourceversion);
	if ((rc = time_of(r, md->creationtimestamp,
			  "metadata.creationTimestamp", &m->created_us)) ||
	    (rc = time_of(r, md->deletiontimestamp,
			  "metadata.deletionTimestamp", &deleted)))
		return rc;
	if (!m->ns)
		m->ns = "";
	m->deleting = deleted > 0;
	if ((rc = labels_of(r, md, m)))
		return rc;
	for (size_t i = 0; i < md->n_ownerreferences; i++) {
		K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__OwnerReference *ref =
			md->ownerreferences[i];

		if (!ref->has_controller || !ref->controller)
			continue;
		m->owner_kind = req(ref->kind);
		m->owner_name = req(ref->name);
		m->owner_uid = req(ref->uid);
		break;
	}
	return 0;
}

/* ---- pods ---------------------------------------------------------------------- */

static int containers(struct rd *r, ContainerStatus *const *list, size_t n,
		      const char *field, const struct km_kube_container **out,
		      size_t *n_out)
{
	struct km_kube_container *v;
	char path[96];
	int rc;

	*out = NULL;
	*n_out = 0;
	if (!n)
		return 0;
	if (n > KM_KUBE_CONTAINERS_MAX)
		n = KM_KUBE_CONTAINERS_MAX;
	v = km_arena_calloc(r->a, n, sizeof *v);
	if (!v)
		return km_error_set(r->err, KM_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const ContainerStatus *c = list[i];
		struct km_kube_container *k = &v[i];

		snprintf(path, sizeof path, "status.%s[%zu]", field, i);
		k->name = req(c->name);
		k->ready = c->has_ready && c->ready;
		if ((rc = i32(r, c->has_restartcount, c->restartcount, path,
			      &k->restart_count)))
			return rc;
		if (c->state && c->state->waiting) {
			k->waiting_reason = opt(c->state->waiting->reason);
			k->waiting_message = opt(c->state->waiting->message);
		}
		if (c->laststate && c->laststate->terminated) {
			k->last_terminated_reason =
				opt(c->laststate->terminated->reason);
			k->last_exit_code = c->laststate->terminated->exitcode;
		}
	}
	*out = v;
	*n_out = n;
	return 0;
}

/* As km_kube_decode.c's probe_port: a number, or a port's name
 * (*named; 0 when it names none of the container's). */
static int probe_port(struct rd *r, const Container *c, const IntOrString *p,
		      const char *path, int32_t *port, bool *named)
{
	*port = 0;
	*named = false;
	if (!p)
		return 0;
	if (!p->has_type || p->type == 0) { /* intstr.Int */
		int32_t n = p->has_intval ? p->intval : 0;

		if (n < 1 || n > 65535)
			return km_error_set(r->err, KM_EINVAL,
					    "%s: %s: expected an integer from "
					    "1 to 65535",
					    r->kind, path);
		*port = n;
		return 0;
	}
	if (p->type != 1 || !p->strval)
		return 0;
	*named = true;
	for (size_t i = 0; i < c->n_ports; i++) {
		const K8s__Io__Api__Core__V1__ContainerPort *cp = c->ports[i];

		/* JSON leaves an unnamed port's "" out: it matches nothing. */
		if (cp->name && *cp->name && !strcmp(cp->name, p->strval) &&
		    cp->has_containerport && cp->containerport >= 1 &&
		    cp->containerport <= 65535) {
			*port = cp->containerport;
			return 0;
		}
	}
	return 0;
}

static int probe_of(struct rd *r, const Container *c, const Probe *pr,
		    const char *path, const char *pod_ip,
		    struct km_kube_probe *k)
{
	const K8s__Io__Api__Core__V1__ProbeHandler *h = pr->handler;
	const char *host = NULL, *scheme = NULL;
	bool named = false;
	int rc;

	if ((rc = i32(r, pr->has_initialdelayseconds, pr->initialdelayseconds,
		      path, &k->initial_delay_s)) ||
	    (rc = i32(r, pr->has_periodseconds, pr->periodseconds, path,
		      &k->period_s)) ||
	    (rc = i32(r, pr->has_timeoutseconds, pr->timeoutseconds, path,
		      &k->timeout_s)) ||
	    (rc = i32(r, pr->has_successthreshold, pr->successthreshold, path,
		      &k->success)) ||
	    (rc = i32(r, pr->has_failurethreshold, pr->failurethreshold, path,
		      &k->failure)))
		return rc;
	if (h && h->httpget) {
		const K8s__Io__Api__Core__V1__HTTPGetAction *g = h->httpget;
		size_t n = g->n_httpheaders, out = 0;

		k->type = KM_PROBE_HTTP;
		k->path = opt(g->path);
		scheme = opt(g->scheme);
		host = opt(g->host);
		if ((rc = probe_port(r, c, g->port, path, &k->port, &named)))
			return rc;
		if (n > 64)
			n = 64; /* KM_PROBE_MAX_HEADERS */
		if (n) {
			const char **hv =
				km_arena_alloc(r->a, 2 * n * sizeof *hv);

			if (!hv)
				return km_error_set(r->err, KM_ENOMEM,
						    "out of memory");
			for (size_t i = 0; i < n; i++) {
				hv[2 * out] = req(g->httpheaders[i]->name);
				hv[2 * out + 1] = req(g->httpheaders[i]->value);
				if (!hv[2 * out])
					continue; /* refused by the checks */
				if (!hv[2 * out + 1])
					hv[2 * out + 1] = "";
				out++;
			}
			k->headers = hv;
			k->n_headers = out;
		}
	} else if (h && h->tcpsocket) {
		k->type = KM_PROBE_TCP;
		host = opt(h->tcpsocket->host);
		if ((rc = probe_port(r, c, h->tcpsocket->port, path, &k->port,
				     &named)))
			return rc;
	} else if (h && h->grpc) {
		k->type = KM_PROBE_GRPC;
		if (h->grpc->has_port &&
		    (h->grpc->port < 1 || h->grpc->port > 65535))
			return km_error_set(r->err, KM_EINVAL,
					    "%s: %s: expected an integer from "
					    "1 to 65535",
					    r->kind, path);
		k->port = h->grpc->has_port ? h->grpc->port : 0;
		k->service = req(h->grpc->service); /* a *string: "" kept */
	}
	km_kube_probe_settle(k, host, scheme, named, pod_ip);
	return 0;
}

static int pod_probes(struct rd *r, const PodSpec *spec, struct km_kube_pod *p)
{
	struct km_kube_probe *v;
	size_t out = 0;
	char path[96];
	int rc;

	if (!spec || !spec->n_containers)
		return 0;
	v = km_arena_calloc(r->a, KM_KUBE_PROBES_MAX, sizeof *v);
	if (!v)
		return km_error_set(r->err, KM_ENOMEM, "out of memory");
	for (size_t i = 0; i < spec->n_containers; i++) {
		const Container *c = spec->containers[i];
		const char *name = req(c->name);
		const Probe *probes[2] = {c->livenessprobe, c->readinessprobe};
		static const char *const field[2] = {"livenessProbe",
						     "readinessProbe"};
		static const char *const which[2] = {"liveness", "readiness"};

		for (size_t k = 0; name && k < 2; k++) {
			if (!probes[k])
				continue;
			if (out == KM_KUBE_PROBES_MAX)
				break;
			snprintf(path, sizeof path, "spec.containers[%zu].%s",
				 i, field[k]);
			v[out].container = name;
			v[out].which = which[k];
			if ((rc = probe_of(r, c, probes[k], path, p->pod_ip,
					   &v[out])))
				return rc;
			out++;
		}
	}
	p->probes = v;
	p->n_probes = out;
	return 0;
}

static int pod(struct rd *r, const Pod *obj, struct km_kube_pod *p)
{
	static const struct {
		const char *name;
		enum km_kube_pod_phase phase;
	} phases[] = {
		{"Pending", KM_POD_PENDING},     {"Running", KM_POD_RUNNING},
		{"Succeeded", KM_POD_SUCCEEDED}, {"Failed", KM_POD_FAILED},
		{"Unknown", KM_POD_UNKNOWN},
	};
	const PodStatus *st = obj->status;
	const char *phase = NULL, *opt_in;
	int rc;

	if (obj->spec)
		p->node_name = opt(obj->spec->nodename);
	p->phase = KM_POD_PHASE_UNSET;
	if (st) {
		phase = opt(st->phase);
		p->reason = opt(st->reason);
		p->message = opt(st->message);
		if ((rc = time_of(r, st->starttime, "status.startTime",
				  &p->started_us)))
			return rc;
		/* PodScheduled, where it is last (as Go reads a list into a
		 * map). */
		for (size_t i = 0; i < st->n_conditions; i++) {
			const K8s__Io__Api__Core__V1__PodCondition *c =
				st->conditions[i];

			if (!c->type || strcmp(c->type, "PodScheduled"))
				continue;
			p->scheduled = cond_status(req(c->status));
			p->scheduled_message = opt(c->message);
		}
		if ((rc = containers(r, st->initcontainerstatuses,
				     st->n_initcontainerstatuses,
				     "initContainerStatuses",
				     &p->init_containers,
				     &p->n_init_containers)) ||
		    (rc = containers(r, st->containerstatuses,
				     st->n_containerstatuses,
				     "containerStatuses", &p->containers,
				     &p->n_containers)))
			return rc;
	}
	for (size_t i = 0; phase && i < sizeof phases / sizeof phases[0]; i++)
		if (!strcmp(phase, phases[i].name))
			p->phase = phases[i].phase;
	if (phase && p->phase == KM_POD_PHASE_UNSET)
		p->phase = KM_POD_UNKNOWN;
	opt_in = annotation(obj->metadata, "kubemedic.io/probe");
	p->mirror = opt_in && !strcmp(opt_in, "true");
	if (!p->mirror)
		return 0;
	p->pod_ip = st ? opt(st->podip) : NULL;
	return pod_probes(r, obj->spec, p);
}

/* ---- the contract ---------------------------------------------------------------- */

bool km_kube_pb_supported(enum km_kube_resource r)
{
	return r == KM_RES_POD;
}

int km_kube_decode_object_pb(enum km_kube_resource res, const km_pb_object *obj,
			     struct km_arena *a, struct km_kube_object *out,
			     struct km_error *err)
{
	struct rd r = {.a = a, .err = err, .kind = "Pod"};
	const Pod *p = (const Pod *)obj;
	int rc;

	memset(out, 0, sizeof *out);
	out->resource = res;
	if (res != KM_RES_POD || !obj ||
	    obj->descriptor != &k8s__io__api__core__v1__pod__descriptor)
		return km_error_set(err, KM_EINVAL,
				    "protobuf: only pods are read");
	if ((rc = meta(&r, p->metadata, &out->meta)))
		return rc;
	if (!out->meta.name)
		return bad(&r, "metadata.name", "missing");
	if (!out->meta.uid)
		return bad(&r, "metadata.uid", "missing");
	out->u.pod.ns = out->meta.ns;
	out->u.pod.name = out->meta.name;
	out->u.pod.owner_kind = out->meta.owner_kind;
	out->u.pod.created_us = out->meta.created_us;
	return pod(&r, p, &out->u.pod);
}

int km_kube_parse_object_pb(enum km_kube_resource res, const void *data,
			    size_t len, struct km_arena *a,
			    const km_pb_object **out, struct km_error *err)
{
	if (!km_kube_pb_supported(res))
		return km_error_set(err, KM_EINVAL,
				    "protobuf: only pods are read");
	return unpack(&k8s__io__api__core__v1__pod__descriptor, "Pod", data,
		      len, a, (ProtobufCMessage **)out, err);
}

static void status_of(Status *s, struct km_kube_status *out)
{
	const StatusDetails *d = s->details;
	const StatusCause *c = d && d->n_causes ? d->causes[0] : NULL;

	out->code = s->has_code && s->code >= 0 && s->code < 1000 ? s->code : 0;
	out->reason = s->reason ? text(s->reason) : "";
	out->message = s->message ? text(s->message) : "";
	out->retry_after_s = d && d->has_retryafterseconds &&
					     d->retryafterseconds > 0
				     ? d->retryafterseconds
				     : 0;
	out->cause_type = c && c->reason ? text(c->reason) : "";
	out->cause_message = c && c->message ? text(c->message) : "";
}

int km_kube_parse_event_pb(enum km_kube_resource res, const void *frame,
			   size_t len, struct km_arena *a,
			   struct km_kube_event *out, struct km_error *err)
{
	static const struct {
		const char *name;
		enum km_kube_event_type type;
	} types[] = {
		{"ADDED", KM_EV_ADDED},     {"MODIFIED", KM_EV_MODIFIED},
		{"DELETED", KM_EV_DELETED}, {"BOOKMARK", KM_EV_BOOKMARK},
		{"ERROR", KM_EV_ERROR},
	};
	struct wire w = {frame, (const uint8_t *)frame + len};
	const uint8_t *type = NULL, *raw = NULL, *v;
	size_t type_len = 0, raw_len = 0, n;
	uint32_t num;
	ProtobufCMessage *m;
	int rc;

	memset(out, 0, sizeof *out);
	if (len > KM_KUBE_FRAME_MAX)
		return km_error_set(err, KM_EINVAL,
				    "watch event: %zu bytes, more than the %u "
				    "read",
				    len, KM_KUBE_FRAME_MAX);
	/* metav1.WatchEvent: 1 type, 2 object (a RawExtension: 1 raw). */
	while ((rc = next_field(&w, &num, &v, &n)) == 1) {
		if (num == 1 && v) {
			type = v;
			type_len = n;
		} else if (num == 2 && v) {
			struct wire o = {v, v + n};
			const uint8_t *ov;
			size_t on;
			uint32_t onum;
			int orc;

			while ((orc = next_field(&o, &onum, &ov, &on)) == 1)
				if (onum == 1 && ov) {
					raw = ov;
					raw_len = on;
				}
			if (orc < 0) {
				rc = -1;
				break;
			}
		}
	}
	if (rc < 0)
		return km_error_set(err, KM_EINVAL,
				    "watch event: not a protobuf WatchEvent");
	for (size_t i = 0; type && i < sizeof types / sizeof types[0]; i++)
		if (type_len == strlen(types[i].name) &&
		    !memcmp(type, types[i].name, type_len))
			out->type = types[i].type;
	if (!out->type)
		return km_error_set(err, KM_EINVAL,
				    "watch event: unknown type \"%.*s\"",
				    (int)(type_len < 40 ? type_len : 40),
				    type ? (const char *)type : "");
	if (!raw)
		return km_error_set(err, KM_EINVAL, "watch event: no object");
	if (out->type == KM_EV_ERROR) {
		if ((rc = unpack(
			     &k8s__io__apimachinery__pkg__apis__meta__v1__status__descriptor,
			     "Status", raw, raw_len, a, &m, err)))
			goto fail;
		status_of((Status *)m, &out->status);
		return 0;
	}
	if ((rc = km_kube_parse_object_pb(res, raw, raw_len, a, &out->pb_object,
					  err)))
		goto fail;
	{
		const ObjectMeta *md = ((const Pod *)out->pb_object)->metadata;
		const char *end = annotation(md, "k8s.io/initial-events-end");

		out->initial_events_end = out->type == KM_EV_BOOKMARK && end &&
					  !strcmp(end, "true");
		out->resource_version =
			md && md->resourceversion ? md->resourceversion : "";
		if (!km_visible_ascii(out->resource_version)) {
			rc = km_error_set(err, KM_EINVAL,
					  "watch event: resourceVersion not "
					  "printable ASCII");
			goto fail;
		}
	}
	return 0;
fail:
	memset(out, 0, sizeof *out);
	return rc;
}

bool km_kube_parse_status_pb(const char *body, size_t len, struct km_arena *a,
			     struct km_kube_status *out)
{
	struct km_error err = {0};
	ProtobufCMessage *m;

	if (unpack(&k8s__io__apimachinery__pkg__apis__meta__v1__status__descriptor,
		   "Status", body, len, a, &m, &err))
		return false;
	status_of((Status *)m, out);
	return true;
}
