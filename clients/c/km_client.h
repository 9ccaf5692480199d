/*
 * km_client — a small C client for kubemedicd, over gRPC's C core.
 *
 *   struct km_client *c;
 *   struct km_client_status st;
 *   struct km_arena a = {0};
 *   Kubemedic__V1__GetHealthRequest req = KUBEMEDIC__V1__GET_HEALTH_REQUEST__INIT;
 *   Kubemedic__V1__TargetHealth *h;
 *
 *   if (km_client_open("127.0.0.1:7070", &c, &st) == 0) {
 *           req.target = "probe//checkout-http";
 *           if (km_client_get_health(c, &req, &a, &h, &st) == 0)
 *                   printf("%d\n", h->target->state);
 *           else
 *                   fprintf(stderr, "%s\n", st.message);
 *           km_client_close(c);
 *   }
 *   km_arena_free(&a);
 *
 * Every call returns 0, or a negative km_err code with st->code (the gRPC
 * status code) and st->message filled: "UNAVAILABLE: cannot reach
 * kubemedicd at 127.0.0.1:7070 (is it running?)". Responses are unpacked
 * into the arena the caller passes and live as long as it does.
 *
 * Calls fail fast when the server cannot be reached (no waiting for it to
 * come up) and each has a deadline (default 10 s, km_client_set_timeout).
 *
 * Threads: a km_client may be used by one thread at a time; open one per
 * thread for concurrency (they are cheap: a channel and a queue).
 */
#ifndef KM_CLIENT_H
#define KM_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "grpc/health/v1/health.pb-c.h"
#include "km_arena.h"
#include "km_error.h"
#include "kubemedic/v1/audit.pb-c.h"
#include "kubemedic/v1/health.pb-c.h"
#include "kubemedic/v1/probe.pb-c.h"
#include "kubemedic/v1/recovery.pb-c.h"

struct km_client;
struct km_client_stream;

struct km_client_status {
	int code;          /* grpc_status_code; 0 = OK */
	char message[600]; /* "CODE: what the server said" */
};

/* How to reach a kubemedicd that asks for TLS and credentials (all
 * optional; files are PEM, read at open). */
struct km_client_options {
	bool tls;                  /* TLS (implied by any tls_* file) */
	const char *tls_ca_file;   /* the server's CA; NULL = the system's */
	const char *tls_cert_file; /* a client certificate (mutual TLS) */
	const char *tls_key_file;  /* and its key */
	const char *token_file;    /* a bearer token: its first line */
	const char *server_name;   /* the name the server's certificate must
	                              carry, if not the host of server */
};

/* server: "HOST:PORT". The connection itself is made by the first call. */
int km_client_open(const char *server, struct km_client **out,
		   struct km_client_status *st);
/* The same with TLS and credentials. A token is never sent in clear text
 * beyond loopback: without TLS to another host it is refused here. */
int km_client_open_ex(const char *server, const struct km_client_options *o,
		      struct km_client **out, struct km_client_status *st);
void km_client_close(struct km_client *c);
/* Deadline of each later call; 0 = none. */
void km_client_set_timeout(struct km_client *c, int64_t timeout_ms);

/* "OK", "INVALID_ARGUMENT", ... */
const char *km_client_code_name(int code);

/* Any unary method, by full path ("/kubemedic.v1.ProbeService/GetProbe"). */
int km_client_call(struct km_client *c, const char *method,
		   const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *resp_type,
		   struct km_arena *a, ProtobufCMessage **resp,
		   struct km_client_status *st);

/* Typed wrappers, one per unary RPC. */
#define KM_CLIENT_RPC(fn, Req, Resp)                                    \
	int fn(struct km_client *c, const Req *req, struct km_arena *a, \
	       Resp **resp, struct km_client_status *st)

KM_CLIENT_RPC(km_client_create_probe, Kubemedic__V1__CreateProbeRequest,
	      Kubemedic__V1__Probe);
KM_CLIENT_RPC(km_client_get_probe, Kubemedic__V1__GetProbeRequest,
	      Kubemedic__V1__Probe);
KM_CLIENT_RPC(km_client_list_probes, Kubemedic__V1__ListProbesRequest,
	      Kubemedic__V1__ListProbesResponse);
KM_CLIENT_RPC(km_client_update_probe, Kubemedic__V1__UpdateProbeRequest,
	      Kubemedic__V1__Probe);
KM_CLIENT_RPC(km_client_delete_probe, Kubemedic__V1__DeleteProbeRequest,
	      Kubemedic__V1__DeleteProbeResponse);
KM_CLIENT_RPC(km_client_get_health, Kubemedic__V1__GetHealthRequest,
	      Kubemedic__V1__TargetHealth);
/* One target's, or a selection's, availability over a window
 * (HealthService.GetAvailability). */
KM_CLIENT_RPC(km_client_get_availability, Kubemedic__V1__GetAvailabilityRequest,
	      Kubemedic__V1__Availability);
KM_CLIENT_RPC(km_client_list_targets, Kubemedic__V1__ListTargetsRequest,
	      Kubemedic__V1__ListTargetsResponse);
KM_CLIENT_RPC(km_client_query_probe_history,
	      Kubemedic__V1__QueryProbeHistoryRequest,
	      Kubemedic__V1__QueryProbeHistoryResponse);
KM_CLIENT_RPC(km_client_query_transitions,
	      Kubemedic__V1__QueryTransitionsRequest,
	      Kubemedic__V1__QueryTransitionsResponse);
KM_CLIENT_RPC(km_client_query_latency, Kubemedic__V1__QueryLatencyRequest,
	      Kubemedic__V1__QueryLatencyResponse);
KM_CLIENT_RPC(km_client_health_check, Grpc__Health__V1__HealthCheckRequest,
	      Grpc__Health__V1__HealthCheckResponse);
KM_CLIENT_RPC(km_client_request_recovery, Kubemedic__V1__RequestRecoveryRequest,
	      Kubemedic__V1__Recovery);
KM_CLIENT_RPC(km_client_get_recovery, Kubemedic__V1__GetRecoveryRequest,
	      Kubemedic__V1__Recovery);
KM_CLIENT_RPC(km_client_list_recoveries, Kubemedic__V1__ListRecoveriesRequest,
	      Kubemedic__V1__ListRecoveriesResponse);
KM_CLIENT_RPC(km_client_cancel_recovery, Kubemedic__V1__CancelRecoveryRequest,
	      Kubemedic__V1__Recovery);
KM_CLIENT_RPC(km_client_list_storms, Kubemedic__V1__ListStormsRequest,
	      Kubemedic__V1__ListStormsResponse);
KM_CLIENT_RPC(km_client_list_policies, Kubemedic__V1__ListPoliciesRequest,
	      Kubemedic__V1__ListPoliciesResponse);
KM_CLIENT_RPC(km_client_list_audit_events,
	      Kubemedic__V1__ListAuditEventsRequest,
	      Kubemedic__V1__ListAuditEventsResponse);

/* Server streams: open with the request, then read messages until
 * km_client_stream_next returns KM_ERANGE (the server ended the stream;
 * st holds its status). timeout_ms bounds one read (KM_EDEADLINE when it
 * passes; the stream stays usable); 0 = wait for ever. */
int km_client_stream_open(struct km_client *c, const char *method,
			  const ProtobufCMessage *req,
			  struct km_client_stream **out,
			  struct km_client_status *st);
int km_client_stream_next(struct km_client_stream *s,
			  const ProtobufCMessageDescriptor *resp_type,
			  struct km_arena *a, int64_t timeout_ms,
			  ProtobufCMessage **msg, struct km_client_status *st);
/* Cancels the stream if it is still open, and frees it. */
void km_client_stream_close(struct km_client_stream *s);

#endif
