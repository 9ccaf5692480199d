/*
 * protobuf-c messages <-> km_model structs.
 *
 * Incoming: every field is checked (km_probe_from_pb validates with
 * km_probe_spec, naming fields as the .proto does). Outgoing: strings are
 * never NULL (protobuf-c needs "" for an empty proto3 string), everything
 * is allocated in the call's arena.
 */
#include <string.h>

#include "api_internal.h"
#include "km_probe_spec.h"

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the Timestamp range. */
#define TS_MIN_SECONDS (-62135596800LL)
#define TS_MAX_SECONDS 253402300799LL

Google__Protobuf__Timestamp *api_timestamp(struct km_arena *a, int64_t us)
{
	Google__Protobuf__Timestamp *ts = API_NEW(
		a, Google__Protobuf__Timestamp, GOOGLE__PROTOBUF__TIMESTAMP__INIT);
	int64_t s = us / 1000000, frac = us % 1000000;

	if (!ts)
		return NULL;
	if (frac < 0) {
		frac += 1000000;
		s--;
	}
	ts->seconds = s;
	ts->nanos = (int32_t)(frac * 1000);
	return ts;
}

int api_time_bound(const Google__Protobuf__Timestamp *ts, int64_t dflt,
		   const char *field, int64_t *out, struct km_error *err)
{
	if (!ts) {
		*out = dflt;
		return 0;
	}
	if (ts->seconds < TS_MIN_SECONDS || ts->seconds > TS_MAX_SECONDS)
		return km_error_set(err, KM_EINVAL,
				    "%s: seconds %lld is outside 0001-01-01 .. "
				    "9999-12-31",
				    field, (long long)ts->seconds);
	if (ts->nanos < 0 || ts->nanos > 999999999)
		return km_error_set(err, KM_EINVAL,
				    "%s: nanos must be in 0..999999999, got %d",
				    field, ts->nanos);
	*out = ts->seconds * 1000000 + ts->nanos / 1000;
	return 0;
}

int api_page_size(int32_t requested, int32_t max, size_t *out,
		  struct km_error *err)
{
	if (requested < 0)
		return km_error_set(err, KM_EINVAL,
				    "page_size: must be 0 (default 100) or "
				    "positive, got %d", requested);
	if (requested > max)
		return km_error_set(err, KM_EINVAL,
				    "page_size: at most %d per page, got %d",
				    max, requested);
	*out = requested ? (size_t)requested : (max < 100 ? (size_t)max : 100);
	return 0;
}

/* ---- probes -------------------------------------------------------------- */

static const char *s_or_empty(const char *s)
{
	return s ? s : "";
}

int km_probe_from_pb(const Kubemedic__V1__Probe *pb, struct km_arena *a,
		     struct km_probe *p, struct km_error *err)
{
	static const struct km_field_ctx fc = {KM_FIELDS_API, "probe"};
	struct km_probe_timing t = {
		.initial_delay_seconds = pb->initial_delay_seconds,
		.timeout_seconds = pb->timeout_seconds,
		.period_seconds = pb->period_seconds,
		.success_threshold = pb->success_threshold,
		.failure_threshold = pb->failure_threshold,
		.period_milliseconds = pb->period_milliseconds,
		.timeout_milliseconds = pb->timeout_milliseconds,
	};
	int handlers = !!pb->http_get + !!pb->tcp_socket + !!pb->grpc +
		       !!pb->exec + !!pb->file;
	int rc;

	memset(p, 0, sizeof *p);
	p->name = s_or_empty(pb->name);
	if (pb->n_labels) {
		p->labels = km_arena_calloc(a, pb->n_labels, sizeof *p->labels);
		if (!p->labels)
			return API_OOM(err);
		for (size_t i = 0; i < pb->n_labels; i++) {
			p->labels[i].key = s_or_empty(pb->labels[i]->key);
			p->labels[i].value = s_or_empty(pb->labels[i]->value);
		}
		p->n_labels = pb->n_labels;
	}
	rc = km_probe_handler_count_error(handlers, &fc, err);
	if (rc)
		return rc;

	if (pb->http_get) {
		const Kubemedic__V1__HTTPGetAction *h = pb->http_get;

		p->type = KM_PROBE_HTTP;
		p->host = s_or_empty(h->host);
		p->port = h->port;
		p->path = h->path && *h->path ? h->path : "/";
		rc = km_probe_parse_scheme(h->scheme, &p->https, &fc, err);
		if (rc)
			return rc;
		p->tls_verify = h->tls_verify;
		p->ca_file = s_or_empty(h->ca_file);
		if (h->n_http_headers) {
			p->headers = km_arena_calloc(a, h->n_http_headers,
						     sizeof *p->headers);
			if (!p->headers)
				return API_OOM(err);
			for (size_t i = 0; i < h->n_http_headers; i++) {
				p->headers[i].key =
					s_or_empty(h->http_headers[i]->name);
				p->headers[i].value =
					s_or_empty(h->http_headers[i]->value);
			}
			p->n_headers = h->n_http_headers;
		}
	} else if (pb->tcp_socket) {
		p->type = KM_PROBE_TCP;
		p->host = s_or_empty(pb->tcp_socket->host);
		p->port = pb->tcp_socket->port;
	} else if (pb->grpc) {
		p->type = KM_PROBE_GRPC;
		p->host = s_or_empty(pb->grpc->host);
		p->port = pb->grpc->port;
		p->service = s_or_empty(pb->grpc->service);
	} else if (pb->exec) {
		const Kubemedic__V1__ExecAction *e = pb->exec;

		p->type = KM_PROBE_EXEC;
		p->argv = (const char **)e->command;
		p->argc = e->n_command;
		p->workdir = s_or_empty(e->working_dir);
		if (e->n_env) {
			p->env = km_arena_calloc(a, e->n_env, sizeof *p->env);
			if (!p->env)
				return API_OOM(err);
			for (size_t i = 0; i < e->n_env; i++) {
				p->env[i].key = s_or_empty(e->env[i]->name);
				p->env[i].value = s_or_empty(e->env[i]->value);
			}
			p->n_env = e->n_env;
		}
	} else {
		p->type = KM_PROBE_FILE;
		p->path = s_or_empty(pb->file->path);
		p->min_size = pb->file->min_size;
		p->max_age_s = pb->file->max_age_seconds;
	}
	rc = km_probe_set_timing(p, &t, &fc, err);
	if (rc)
		return rc;
	return km_probe_validate(p, &fc, err);
}

Kubemedic__V1__Probe *km_probe_to_pb(const struct km_probe *p,
				     struct km_arena *a)
{
	Kubemedic__V1__Probe *pb =
		API_NEW(a, Kubemedic__V1__Probe, KUBEMEDIC__V1__PROBE__INIT);
	struct km_probe_timing t;

	if (!pb)
		return NULL;
	pb->name = (char *)p->name;
	if (p->n_labels) {
		pb->labels = km_arena_calloc(a, p->n_labels, sizeof *pb->labels);
		if (!pb->labels)
			return NULL;
		for (size_t i = 0; i < p->n_labels; i++) {
			Kubemedic__V1__Probe__LabelsEntry *e = API_NEW(
				a, Kubemedic__V1__Probe__LabelsEntry,
				KUBEMEDIC__V1__PROBE__LABELS_ENTRY__INIT);
			if (!e)
				return NULL;
			e->key = (char *)p->labels[i].key;
			e->value = (char *)p->labels[i].value;
			pb->labels[i] = e;
		}
		pb->n_labels = p->n_labels;
	}

	switch (p->type) {
	case KM_PROBE_HTTP: {
		Kubemedic__V1__HTTPGetAction *h =
			API_NEW(a, Kubemedic__V1__HTTPGetAction,
				KUBEMEDIC__V1__HTTPGET_ACTION__INIT);
		if (!h)
			return NULL;
		h->host = (char *)s_or_empty(p->host);
		h->port = p->port;
		h->path = (char *)s_or_empty(p->path);
		h->scheme = p->https ? "HTTPS" : "HTTP";
		h->tls_verify = p->tls_verify;
		h->ca_file = (char *)s_or_empty(p->ca_file);
		if (p->n_headers) {
			h->http_headers = km_arena_calloc(
				a, p->n_headers, sizeof *h->http_headers);
			if (!h->http_headers)
				return NULL;
			for (size_t i = 0; i < p->n_headers; i++) {
				Kubemedic__V1__HTTPHeader *hd = API_NEW(
					a, Kubemedic__V1__HTTPHeader,
					KUBEMEDIC__V1__HTTPHEADER__INIT);
				if (!hd)
					return NULL;
				hd->name = (char *)p->headers[i].key;
				hd->value = (char *)p->headers[i].value;
				h->http_headers[i] = hd;
			}
			h->n_http_headers = p->n_headers;
		}
		pb->http_get = h;
		break;
	}
	case KM_PROBE_TCP:
		pb->tcp_socket = API_NEW(a, Kubemedic__V1__TCPSocketAction,
					 KUBEMEDIC__V1__TCPSOCKET_ACTION__INIT);
		if (!pb->tcp_socket)
			return NULL;
		pb->tcp_socket->host = (char *)s_or_empty(p->host);
		pb->tcp_socket->port = p->port;
		break;
	case KM_PROBE_GRPC:
		pb->grpc = API_NEW(a, Kubemedic__V1__GRPCAction,
				   KUBEMEDIC__V1__GRPCACTION__INIT);
		if (!pb->grpc)
			return NULL;
		pb->grpc->host = (char *)s_or_empty(p->host);
		pb->grpc->port = p->port;
		pb->grpc->service = (char *)s_or_empty(p->service);
		break;
	case KM_PROBE_EXEC: {
		Kubemedic__V1__ExecAction *e =
			API_NEW(a, Kubemedic__V1__ExecAction,
				KUBEMEDIC__V1__EXEC_ACTION__INIT);
		if (!e)
			return NULL;
		e->command = (char **)p->argv;
		e->n_command = p->argc;
		e->working_dir = (char *)s_or_empty(p->workdir);
		if (p->n_env) {
			e->env = km_arena_calloc(a, p->n_env, sizeof *e->env);
			if (!e->env)
				return NULL;
			for (size_t i = 0; i < p->n_env; i++) {
				Kubemedic__V1__EnvVar *v =
					API_NEW(a, Kubemedic__V1__EnvVar,
						KUBEMEDIC__V1__ENV_VAR__INIT);
				if (!v)
					return NULL;
				v->name = (char *)p->env[i].key;
				v->value = (char *)p->env[i].value;
				e->env[i] = v;
			}
			e->n_env = p->n_env;
		}
		pb->exec = e;
		break;
	}
	case KM_PROBE_FILE:
		pb->file = API_NEW(a, Kubemedic__V1__FileAction,
				   KUBEMEDIC__V1__FILE_ACTION__INIT);
		if (!pb->file)
			return NULL;
		pb->file->path = (char *)s_or_empty(p->path);
		pb->file->min_size = p->min_size;
		pb->file->max_age_seconds = p->max_age_s;
		break;
	}

	km_probe_get_timing(p, &t);
	pb->initial_delay_seconds = (int32_t)t.initial_delay_seconds;
	pb->timeout_seconds = (int32_t)t.timeout_seconds;
	pb->period_seconds = (int32_t)t.period_seconds;
	pb->success_threshold = (int32_t)t.success_threshold;
	pb->failure_threshold = (int32_t)t.failure_threshold;
	pb->period_milliseconds = (int32_t)t.period_milliseconds;
	pb->timeout_milliseconds = (int32_t)t.timeout_milliseconds;

	pb->source = p->source == KM_SOURCE_CONFIG
			     ? KUBEMEDIC__V1__PROBE_SOURCE__PROBE_SOURCE_CONFIG
			     : KUBEMEDIC__V1__PROBE_SOURCE__PROBE_SOURCE_API;
	pb->target = km_arena_printf(a, "probe//%s", p->name);
	pb->generation = p->generation;
	pb->create_time = api_timestamp(a, p->create_us);
	pb->update_time = api_timestamp(a, p->update_us);
	if (!pb->target || !pb->create_time || !pb->update_time)
		return NULL;
	return pb;
}

/* ---- targets and history ------------------------------------------------- */

Kubemedic__V1__Target *api_target_to_pb(const struct km_target *t,
					struct km_arena *a)
{
	Kubemedic__V1__Target *pb =
		API_NEW(a, Kubemedic__V1__Target, KUBEMEDIC__V1__TARGET__INIT);

	if (!pb)
		return NULL;
	pb->name = (char *)t->name;
	pb->cluster = (char *)s_or_empty(t->cluster);
	pb->kind = (Kubemedic__V1__TargetKind)t->kind;
	pb->namespace_ = (char *)s_or_empty(t->ns);
	pb->object_name = (char *)s_or_empty(t->object_name);
	pb->uid = (char *)s_or_empty(t->uid);
	pb->owner = (char *)s_or_empty(t->owner);
	pb->node = (char *)s_or_empty(t->node);
	pb->state = (Kubemedic__V1__HealthState)t->state;
	pb->flapping = t->flapping;
	pb->state_since = api_timestamp(a, t->state_since_us);
	if (!pb->state_since)
		return NULL;
	if (t->n_labels) {
		pb->labels = km_arena_calloc(a, t->n_labels, sizeof *pb->labels);
		if (!pb->labels)
			return NULL;
		for (size_t i = 0; i < t->n_labels; i++) {
			Kubemedic__V1__Target__LabelsEntry *e = API_NEW(
				a, Kubemedic__V1__Target__LabelsEntry,
				KUBEMEDIC__V1__TARGET__LABELS_ENTRY__INIT);
			if (!e)
				return NULL;
			e->key = (char *)t->labels[i].key;
			e->value = (char *)t->labels[i].value;
			pb->labels[i] = e;
		}
		pb->n_labels = t->n_labels;
	}
	return pb;
}

Kubemedic__V1__ProbeResult *api_result_to_pb(const struct km_result *r,
					     const struct km_target *t,
					     struct km_arena *a)
{
	Kubemedic__V1__ProbeResult *pb = API_NEW(
		a, Kubemedic__V1__ProbeResult, KUBEMEDIC__V1__PROBE_RESULT__INIT);

	if (!pb)
		return NULL;
	pb->id = r->id;
	pb->target = (char *)t->name;
	/* A probe target's results come from the probe of the same name. */
	pb->probe = t->kind == KM_KIND_PROBE ? (char *)t->object_name : "";
	pb->start_time = api_timestamp(a, r->started_us);
	pb->duration_us = r->duration_us;
	pb->success = r->success;
	pb->error_class = (Kubemedic__V1__ErrorClass)r->error_class;
	pb->status_code = r->status_code;
	pb->message = (char *)s_or_empty(r->message);
	return pb->start_time ? pb : NULL;
}

Kubemedic__V1__Transition *api_transition_to_pb(const struct km_transition *t,
					       const char *target_name,
					       struct km_arena *a)
{
	Kubemedic__V1__Transition *pb = API_NEW(
		a, Kubemedic__V1__Transition, KUBEMEDIC__V1__TRANSITION__INIT);

	if (!pb)
		return NULL;
	pb->sequence = t->seq;
	pb->target = (char *)s_or_empty(target_name);
	pb->time = api_timestamp(a, t->at_us);
	pb->from_state = (Kubemedic__V1__HealthState)t->from_state;
	pb->to_state = (Kubemedic__V1__HealthState)t->to_state;
	pb->flapping = t->flapping;
	pb->cause = (char *)s_or_empty(t->cause);
	return pb->time ? pb : NULL;
}
