/*
 * km_client over the C core: one channel and one pluck completion queue
 * per client; each unary call is one batch of all six operations, waited
 * for with grpc_completion_queue_pluck.
 */
#include "km_client.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_grpc_msg.h"

struct km_client {
	char *server;
	grpc_channel *channel;
	grpc_completion_queue *cq;
	int64_t timeout_ms;
	bool tls;
	char *auth;       /* "Bearer <token>", or NULL */
	grpc_metadata md; /* the authorization header, if auth */
};

struct km_client_stream {
	struct km_client *c;
	grpc_call *call;
	grpc_metadata_array initial_md, trailing_md;
	grpc_byte_buffer *recv;
	grpc_status_code status;
	grpc_slice details;
	bool recv_pending, ended;
	int tag_start, tag_recv, tag_status;
};

const char *km_client_code_name(int code)
{
	return km_grpc_code_name(code);
}

static int err_of_code(grpc_status_code code)
{
	switch (code) {
	case GRPC_STATUS_OK: return 0;
	case GRPC_STATUS_INVALID_ARGUMENT: return KM_EINVAL;
	case GRPC_STATUS_NOT_FOUND: return KM_ENOTFOUND;
	case GRPC_STATUS_ALREADY_EXISTS: return KM_EEXIST;
	case GRPC_STATUS_FAILED_PRECONDITION: return KM_EPRECOND;
	case GRPC_STATUS_UNAVAILABLE: return KM_EUNAVAIL;
	case GRPC_STATUS_DEADLINE_EXCEEDED: return KM_EDEADLINE;
	case GRPC_STATUS_UNIMPLEMENTED: return KM_EUNIMPL;
	case GRPC_STATUS_RESOURCE_EXHAUSTED: return KM_EFULL;
	case GRPC_STATUS_OUT_OF_RANGE: return KM_ERANGE;
	case GRPC_STATUS_CANCELLED: return KM_ECANCELLED;
	case GRPC_STATUS_DATA_LOSS: return KM_ECORRUPT;
	case GRPC_STATUS_PERMISSION_DENIED: return KM_EPERM;
	case GRPC_STATUS_UNAUTHENTICATED: return KM_EAUTH;
	default: return KM_EINTERNAL;
	}
}

/* Fills st from a status and its details; returns the km_err code. */
static int set_status(struct km_client *c, struct km_client_status *st,
		      grpc_status_code code, grpc_slice details)
{
	char *d = grpc_slice_to_c_string(details);
	int rc = err_of_code(code);

	if (st) {
		st->code = code;
		if (code == GRPC_STATUS_UNAVAILABLE &&
		    (strstr(d, "connect") || strstr(d, "Connection refused") ||
		     strstr(d, "failed to")))
			snprintf(st->message, sizeof st->message,
				 "UNAVAILABLE: cannot reach kubemedicd at %s "
				 "(is it running? set --server or "
				 "KUBEMEDIC_SERVER%s): %s",
				 c->server,
				 c->tls ? "; does its certificate carry that "
					  "name (--tls-server-name), signed by "
					  "--tls-ca?"
					: "; if it serves TLS, give --tls-ca",
				 d);
		else if (code == GRPC_STATUS_OK)
			snprintf(st->message, sizeof st->message, "OK");
		else
			snprintf(st->message, sizeof st->message, "%s: %s",
				 km_client_code_name(code), d);
	}
	gpr_free(d);
	return rc;
}

static int local_error(struct km_client_status *st, int rc, const char *msg)
{
	if (st) {
		st->code = GRPC_STATUS_INTERNAL;
		snprintf(st->message, sizeof st->message, "INTERNAL: %s", msg);
	}
	return rc;
}

/* A mistake in how the client was asked to connect: INVALID_ARGUMENT. */
__attribute__((format(printf, 3, 4))) static int
usage_errorf(struct km_client_status *st, int rc, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (st) {
		st->code = GRPC_STATUS_INVALID_ARGUMENT;
		n = snprintf(st->message, sizeof st->message,
			     "INVALID_ARGUMENT: ");
		va_start(ap, fmt);
		vsnprintf(st->message + n, sizeof st->message - (size_t)n, fmt,
			  ap);
		va_end(ap);
	}
	return rc;
}

/* A whole PEM (or token) file, NUL-terminated; NULL on error with st
 * set. At most 1 MiB. */
static char *read_small(const char *path, const char *what,
			struct km_client_status *st)
{
	FILE *f = fopen(path, "rbe");
	char *buf;
	size_t n;

	if (!f) {
		usage_errorf(st, KM_EINVAL, "%s: cannot open %s", what, path);
		return NULL;
	}
	buf = malloc((1 << 20) + 1);
	if (!buf) {
		fclose(f);
		local_error(st, KM_ENOMEM, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, 1 << 20, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* "127.0.0.1:...", "[::1]:...", "localhost:...". */
static bool loopback_server(const char *s)
{
	return !strncmp(s, "127.", 4) || !strncmp(s, "[::1]:", 6) ||
	       !strncmp(s, "localhost:", 10) || !strncmp(s, "ipv4:127.", 9) ||
	       !strncmp(s, "ipv6:[::1]", 10);
}

int km_client_open_ex(const char *server, const struct km_client_options *o,
		      struct km_client **out, struct km_client_status *st)
{
	static const struct km_client_options none = {0};
	char *ca = NULL, *cert = NULL, *key = NULL, *token = NULL;
	grpc_channel_credentials *creds = NULL;
	grpc_arg arg;
	grpc_channel_args args = {0, &arg};
	struct km_client *c = NULL;
	bool tls;
	int rc = 0;

	*out = NULL;
	if (!o)
		o = &none;
	tls = o->tls || o->tls_ca_file || o->tls_cert_file || o->tls_key_file;
	if (!server || !*server)
		return local_error(st, KM_EINVAL, "empty server address");
	if (!o->tls_cert_file != !o->tls_key_file)
		return usage_errorf(st, KM_EINVAL, "%s",
				    "--tls-cert and --tls-key go together");
	if (o->token_file && !tls && !loopback_server(server))
		return usage_errorf(st, KM_EINVAL,
				    "refusing to send a token in clear text to "
				    "%s: use TLS (--tls-ca), or a loopback "
				    "address",
				    server);
	c = calloc(1, sizeof *c);
	if (!c || !(c->server = strdup(server))) {
		rc = local_error(st, KM_ENOMEM, "out of memory");
		goto out;
	}
	if ((o->tls_ca_file &&
	     !(ca = read_small(o->tls_ca_file, "--tls-ca", st))) ||
	    (o->tls_cert_file &&
	     !(cert = read_small(o->tls_cert_file, "--tls-cert", st))) ||
	    (o->tls_key_file &&
	     !(key = read_small(o->tls_key_file, "--tls-key", st))) ||
	    (o->token_file &&
	     !(token = read_small(o->token_file, "--token-file", st)))) {
		rc = KM_EINVAL;
		goto out;
	}
	if (token) {
		size_t len = strcspn(token, "\r\n");

		token[len] = '\0';
		if (!len) {
			rc = usage_errorf(st, KM_EINVAL,
					  "--token-file %s: empty",
					  o->token_file);
			goto out;
		}
		if (asprintf(&c->auth, "Bearer %s", token) < 0) {
			c->auth = NULL;
			rc = local_error(st, KM_ENOMEM, "out of memory");
			goto out;
		}
		c->md.key = grpc_slice_from_static_string("authorization");
		c->md.value = grpc_slice_from_static_string(c->auth);
	}
	grpc_init();
	if (tls) {
		grpc_ssl_pem_key_cert_pair pair = {key, cert};

		creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL,
						    NULL, NULL);
	} else {
		creds = grpc_insecure_credentials_create();
	}
	if (o->server_name) {
		arg.type = GRPC_ARG_STRING;
		arg.key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
		arg.value.string = (char *)o->server_name;
		args.num_args = 1;
	}
	c->tls = tls;
	c->channel = grpc_channel_create(server, creds,
					 args.num_args ? &args : NULL);
	grpc_channel_credentials_release(creds);
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	c->timeout_ms = 10000;
out:
	if (key)
		memset(key, 0, strlen(key));
	if (token)
		memset(token, 0, strlen(token));
	free(ca);
	free(cert);
	free(key);
	free(token);
	if (rc) {
		if (c) {
			free(c->auth);
			free(c->server);
			free(c);
		}
		return rc;
	}
	*out = c;
	return 0;
}

int km_client_open(const char *server, struct km_client **out,
		   struct km_client_status *st)
{
	return km_client_open_ex(server, NULL, out, st);
}

void km_client_close(struct km_client *c)
{
	if (!c)
		return;
	grpc_completion_queue_shutdown(c->cq);
	while (grpc_completion_queue_pluck(
		       c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		       .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(c->cq);
	grpc_channel_destroy(c->channel);
	if (c->auth)
		memset(c->auth, 0, strlen(c->auth));
	free(c->auth);
	free(c->server);
	free(c);
	grpc_shutdown();
}

void km_client_set_timeout(struct km_client *c, int64_t timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

static gpr_timespec deadline_after(int64_t ms)
{
	if (ms <= 0)
		return gpr_inf_future(GPR_CLOCK_REALTIME);
	return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
			    gpr_time_from_millis(ms, GPR_TIMESPAN));
}

int km_client_call(struct km_client *c, const char *method,
		   const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *resp_type,
		   struct km_arena *a, ProtobufCMessage **resp,
		   struct km_client_status *st)
{
	grpc_metadata_array initial_md, trailing_md;
	grpc_byte_buffer *send = km_grpc_pack(req), *recv = NULL;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_slice mslice = grpc_slice_from_copied_string(method);
	grpc_call *call;
	grpc_op ops[6];
	grpc_event ev;
	int tag = 0, rc;

	*resp = NULL;
	call = grpc_channel_create_call(c->channel, NULL,
					GRPC_PROPAGATE_DEFAULTS, c->cq, mslice,
					NULL, deadline_after(c->timeout_ms),
					NULL);
	grpc_slice_unref(mslice);
	grpc_metadata_array_init(&initial_md);
	grpc_metadata_array_init(&trailing_md);
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = c->auth ? 1 : 0;
	ops[0].data.send_initial_metadata.metadata = &c->md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
		rc = local_error(st, KM_EINTERNAL, "cannot start the call");
		goto out;
	}
	ev = grpc_completion_queue_pluck(
		c->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	(void)ev; /* the status says everything */
	rc = set_status(c, st, status, details);
	if (!rc) {
		*resp = recv ? km_grpc_unpack(resp_type, recv, a) : NULL;
		if (!*resp)
			rc = local_error(st, KM_ECORRUPT,
					 "the server's answer does not unpack");
	}
out:
	if (recv)
		grpc_byte_buffer_destroy(recv);
	grpc_byte_buffer_destroy(send);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial_md);
	grpc_metadata_array_destroy(&trailing_md);
	grpc_call_unref(call);
	return rc;
}

#define WRAP(fn, Req, Resp, path, desc)                               \
	KM_CLIENT_RPC(fn, Req, Resp)                                  \
	{                                                             \
		return km_client_call(c, path, &req->base, &desc, a,  \
				      (ProtobufCMessage **)resp, st); \
	}

#define KM "/kubemedic.v1."
WRAP(km_client_create_probe, Kubemedic__V1__CreateProbeRequest,
     Kubemedic__V1__Probe, KM "ProbeService/CreateProbe",
     kubemedic__v1__probe__descriptor)
WRAP(km_client_get_probe, Kubemedic__V1__GetProbeRequest, Kubemedic__V1__Probe,
     KM "ProbeService/GetProbe", kubemedic__v1__probe__descriptor)
WRAP(km_client_list_probes, Kubemedic__V1__ListProbesRequest,
     Kubemedic__V1__ListProbesResponse, KM "ProbeService/ListProbes",
     kubemedic__v1__list_probes_response__descriptor)
WRAP(km_client_update_probe, Kubemedic__V1__UpdateProbeRequest,
     Kubemedic__V1__Probe, KM "ProbeService/UpdateProbe",
     kubemedic__v1__probe__descriptor)
WRAP(km_client_delete_probe, Kubemedic__V1__DeleteProbeRequest,
     Kubemedic__V1__DeleteProbeResponse, KM "ProbeService/DeleteProbe",
     kubemedic__v1__delete_probe_response__descriptor)
WRAP(km_client_get_health, Kubemedic__V1__GetHealthRequest,
     Kubemedic__V1__TargetHealth, KM "HealthService/GetHealth",
     kubemedic__v1__target_health__descriptor)
WRAP(km_client_get_availability, Kubemedic__V1__GetAvailabilityRequest,
     Kubemedic__V1__Availability, KM "HealthService/GetAvailability",
     kubemedic__v1__availability__descriptor)
WRAP(km_client_list_targets, Kubemedic__V1__ListTargetsRequest,
     Kubemedic__V1__ListTargetsResponse, KM "HealthService/ListTargets",
     kubemedic__v1__list_targets_response__descriptor)
WRAP(km_client_query_probe_history, Kubemedic__V1__QueryProbeHistoryRequest,
     Kubemedic__V1__QueryProbeHistoryResponse,
     KM "HealthService/QueryProbeHistory",
     kubemedic__v1__query_probe_history_response__descriptor)
WRAP(km_client_query_transitions, Kubemedic__V1__QueryTransitionsRequest,
     Kubemedic__V1__QueryTransitionsResponse,
     KM "HealthService/QueryTransitions",
     kubemedic__v1__query_transitions_response__descriptor)
WRAP(km_client_query_latency, Kubemedic__V1__QueryLatencyRequest,
     Kubemedic__V1__QueryLatencyResponse, KM "HealthService/QueryLatency",
     kubemedic__v1__query_latency_response__descriptor)
WRAP(km_client_request_recovery, Kubemedic__V1__RequestRecoveryRequest,
     Kubemedic__V1__Recovery, KM "RecoveryService/RequestRecovery",
     kubemedic__v1__recovery__descriptor)
WRAP(km_client_get_recovery, Kubemedic__V1__GetRecoveryRequest,
     Kubemedic__V1__Recovery, KM "RecoveryService/GetRecovery",
     kubemedic__v1__recovery__descriptor)
WRAP(km_client_list_recoveries, Kubemedic__V1__ListRecoveriesRequest,
     Kubemedic__V1__ListRecoveriesResponse, KM "RecoveryService/ListRecoveries",
     kubemedic__v1__list_recoveries_response__descriptor)
WRAP(km_client_cancel_recovery, Kubemedic__V1__CancelRecoveryRequest,
     Kubemedic__V1__Recovery, KM "RecoveryService/CancelRecovery",
     kubemedic__v1__recovery__descriptor)
WRAP(km_client_list_storms, Kubemedic__V1__ListStormsRequest,
     Kubemedic__V1__ListStormsResponse, KM "RecoveryService/ListStorms",
     kubemedic__v1__list_storms_response__descriptor)
WRAP(km_client_list_policies, Kubemedic__V1__ListPoliciesRequest,
     Kubemedic__V1__ListPoliciesResponse, KM "RecoveryService/ListPolicies",
     kubemedic__v1__list_policies_response__descriptor)
WRAP(km_client_list_audit_events, Kubemedic__V1__ListAuditEventsRequest,
     Kubemedic__V1__ListAuditEventsResponse, KM "AuditService/ListAuditEvents",
     kubemedic__v1__list_audit_events_response__descriptor)
WRAP(km_client_health_check, Grpc__Health__V1__HealthCheckRequest,
     Grpc__Health__V1__HealthCheckResponse, "/grpc.health.v1.Health/Check",
     grpc__health__v1__health_check_response__descriptor)

/* ---- server streams ------------------------------------------------------ */

int km_client_stream_open(struct km_client *c, const char *method,
			  const ProtobufCMessage *req,
			  struct km_client_stream **out,
			  struct km_client_status *st)
{
	struct km_client_stream *s = calloc(1, sizeof *s);
	grpc_slice mslice;
	grpc_byte_buffer *send;
	grpc_op ops[4];

	*out = NULL;
	if (!s)
		return local_error(st, KM_ENOMEM, "out of memory");
	s->c = c;
	s->details = grpc_empty_slice();
	grpc_metadata_array_init(&s->initial_md);
	grpc_metadata_array_init(&s->trailing_md);
	mslice = grpc_slice_from_copied_string(method);
	/* A stream lives as long as its reader wants: no call deadline. */
	s->call = grpc_channel_create_call(
		c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, mslice, NULL,
		gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_slice_unref(mslice);
	send = km_grpc_pack(req);
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = c->auth ? 1 : 0;
	ops[0].data.send_initial_metadata.metadata = &c->md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata =
		&s->initial_md;
	if (grpc_call_start_batch(s->call, ops, 4, &s->tag_start, NULL) !=
	    GRPC_CALL_OK) {
		grpc_byte_buffer_destroy(send);
		km_client_stream_close(s);
		return local_error(st, KM_EINTERNAL, "cannot start the call");
	}
	grpc_completion_queue_pluck(c->cq, &s->tag_start,
				    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_byte_buffer_destroy(send);
	*out = s;
	return 0;
}

/* Reads the final status once the server has ended the stream. */
static int finish(struct km_client_stream *s, struct km_client_status *st)
{
	grpc_op op;

	if (!s->ended) {
		memset(&op, 0, sizeof op);
		op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
		op.data.recv_status_on_client.trailing_metadata =
			&s->trailing_md;
		op.data.recv_status_on_client.status = &s->status;
		op.data.recv_status_on_client.status_details = &s->details;
		if (grpc_call_start_batch(s->call, &op, 1, &s->tag_status,
					  NULL) != GRPC_CALL_OK)
			return local_error(st, KM_EINTERNAL,
					   "cannot read the status");
		grpc_completion_queue_pluck(s->c->cq, &s->tag_status,
					    gpr_inf_future(GPR_CLOCK_REALTIME),
					    NULL);
		s->ended = true;
	}
	set_status(s->c, st, s->status, s->details);
	return KM_ERANGE;
}

int km_client_stream_next(struct km_client_stream *s,
			  const ProtobufCMessageDescriptor *resp_type,
			  struct km_arena *a, int64_t timeout_ms,
			  ProtobufCMessage **msg, struct km_client_status *st)
{
	grpc_event ev;
	grpc_op op;
	grpc_byte_buffer *bb;

	*msg = NULL;
	if (s->ended)
		return finish(s, st);
	if (!s->recv_pending) {
		memset(&op, 0, sizeof op);
		op.op = GRPC_OP_RECV_MESSAGE;
		op.data.recv_message.recv_message = &s->recv;
		if (grpc_call_start_batch(s->call, &op, 1, &s->tag_recv,
					  NULL) != GRPC_CALL_OK)
			return local_error(st, KM_EINTERNAL,
					   "cannot read from the stream");
		s->recv_pending = true;
	}
	ev = grpc_completion_queue_pluck(s->c->cq, &s->tag_recv,
					 deadline_after(timeout_ms), NULL);
	if (ev.type == GRPC_QUEUE_TIMEOUT) {
		if (st) {
			st->code = GRPC_STATUS_DEADLINE_EXCEEDED;
			snprintf(st->message, sizeof st->message,
				 "no message within %lld ms",
				 (long long)timeout_ms);
		}
		return KM_EDEADLINE;
	}
	s->recv_pending = false;
	bb = s->recv;
	s->recv = NULL;
	if (!bb)
		return finish(s, st);
	*msg = km_grpc_unpack(resp_type, bb, a);
	grpc_byte_buffer_destroy(bb);
	if (!*msg)
		return local_error(st, KM_ECORRUPT,
				   "a streamed message does not unpack");
	return 0;
}

void km_client_stream_close(struct km_client_stream *s)
{
	if (!s)
		return;
	if (!s->ended) {
		grpc_call_cancel(s->call, NULL);
		if (s->recv_pending)
			grpc_completion_queue_pluck(
				s->c->cq, &s->tag_recv,
				gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		finish(s, NULL);
	}
	if (s->recv)
		grpc_byte_buffer_destroy(s->recv);
	grpc_metadata_array_destroy(&s->initial_md);
	grpc_metadata_array_destroy(&s->trailing_md);
	grpc_slice_unref(s->details);
	grpc_call_unref(s->call);
	free(s);
}
