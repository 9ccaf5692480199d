/*
 * kubemedic.v1.Probe <-> struct km_probe.
 *
 * Incoming: every field is checked (km_probe_validate and the timing rules,
 * naming fields as the .proto does). Outgoing: strings are never NULL
 * (protobuf-c needs "" for an empty proto3 string), everything is
 * allocated in the caller's arena.
 */
#include <string.h>

#include "km_probe.h"

#define OOM(err) km_error_set((err), KM_ENOMEM, "out of memory")

Google__Protobuf__Timestamp *km_pb_timestamp(struct km_arena *a, int64_t us)
{
	Google__Protobuf__Timestamp *ts =
		KM_ARENA_NEW(a, Google__Protobuf__Timestamp,
			     GOOGLE__PROTOBUF__TIMESTAMP__INIT);
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
			return OOM(err);
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
				return OOM(err);
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
				return OOM(err);
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
	Kubemedic__V1__Probe *pb = KM_ARENA_NEW(a, Kubemedic__V1__Probe,
						KUBEMEDIC__V1__PROBE__INIT);
	struct km_probe_timing t;

	if (!pb)
		return NULL;
	pb->name = (char *)p->name;
	if (p->n_labels) {
		pb->labels =
			km_arena_calloc(a, p->n_labels, sizeof *pb->labels);
		if (!pb->labels)
			return NULL;
		for (size_t i = 0; i < p->n_labels; i++) {
			Kubemedic__V1__Probe__LabelsEntry *e = KM_ARENA_NEW(
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
			KM_ARENA_NEW(a, Kubemedic__V1__HTTPGetAction,
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
				Kubemedic__V1__HTTPHeader *hd = KM_ARENA_NEW(
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
		pb->tcp_socket =
			KM_ARENA_NEW(a, Kubemedic__V1__TCPSocketAction,
				     KUBEMEDIC__V1__TCPSOCKET_ACTION__INIT);
		if (!pb->tcp_socket)
			return NULL;
		pb->tcp_socket->host = (char *)s_or_empty(p->host);
		pb->tcp_socket->port = p->port;
		break;
	case KM_PROBE_GRPC:
		pb->grpc = KM_ARENA_NEW(a, Kubemedic__V1__GRPCAction,
					KUBEMEDIC__V1__GRPCACTION__INIT);
		if (!pb->grpc)
			return NULL;
		pb->grpc->host = (char *)s_or_empty(p->host);
		pb->grpc->port = p->port;
		pb->grpc->service = (char *)s_or_empty(p->service);
		break;
	case KM_PROBE_EXEC: {
		Kubemedic__V1__ExecAction *e =
			KM_ARENA_NEW(a, Kubemedic__V1__ExecAction,
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
				Kubemedic__V1__EnvVar *v = KM_ARENA_NEW(
					a, Kubemedic__V1__EnvVar,
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
		pb->file = KM_ARENA_NEW(a, Kubemedic__V1__FileAction,
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
	pb->create_time = km_pb_timestamp(a, p->create_us);
	pb->update_time = km_pb_timestamp(a, p->update_us);
	if (!pb->target || !pb->create_time || !pb->update_time)
		return NULL;
	return pb;
}
