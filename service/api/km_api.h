/*
 * km_api — kubemedicd's gRPC services: requests in, calls to the health
 * hub, the store and the probe engine out (through km_rpc, the one module
 * that knows gRPC's C core).
 *
 * Serves kubemedic.v1 HealthService, ProbeService, RecoveryService and
 * AuditService, grpc.health.v1.Health (for the daemon itself, service "",
 * and for every target by its full name) and server reflection
 * (grpc.reflection.v1 and v1alpha) from the descriptor set compiled into
 * the binary. Every call is identified and checked against the
 * authorization table (km_auth) before its handler runs; every change and
 * every refusal is written to the audit trail. Current
 * health comes from the hub's memory, history from the store's readers;
 * watch streams and grpc.health.v1 watchers are subscribers of the hub.
 *
 * Bounds (km_limits.h, the config's limits:): label selectors and watch
 * filters are measured before they are parsed, probes are counted before
 * one is created, and the transport's bounds (deadlines, streams, request
 * memory) go to km_rpc. grpc.health.v1 Check has a thread of its own, so
 * it answers while every worker is busy.
 *
 * Life cycle, in this order, from one thread:
 *   km_api_create      the object
 *   km_api_start       bind and serve, with the opened store and hub
 *   km_api_set_serving grpc.health.v1 status of "": one reason for
 *                      NOT_SERVING set or cleared (any thread, any time)
 *   km_api_stop        NOT_SERVING to watchers, graceful gRPC shutdown
 *                      (before the hub closes: it ends the subscriptions)
 *   km_api_destroy
 */
#ifndef KM_API_H
#define KM_API_H

#include <stdbool.h>
#include <stdint.h>

#include "km_error.h"
#include "km_limits.h"
#include "km_model.h"

struct km_api;
struct km_auth;
struct km_health;
struct km_probe_policy;
struct km_prober;
struct km_recovery_engine;
struct km_store;

struct km_api_options {
	const char *listen;             /* HOST:PORT; port 0 = any free */
	int threads;                    /* >= 1 */
	int64_t max_recv_message_bytes; /* 0 = gRPC's default (4 MiB) */
	struct km_health *health;       /* current health, subscriptions */
	struct km_auth *auth;           /* identities and roles; NULL = every
	                                   call may do everything (tests) */
	/* TLS (docs/SECURITY.md); tls_cert_file NULL = plaintext. */
	const char *tls_cert_file, *tls_key_file, *tls_client_ca_file;
	bool tls_require_client_cert;
	/* Probe changes through ProbeService are handed to it at once; NULL
	 * keeps the API to definitions and history. */
	struct km_prober *prober;
	/* What probes created or updated through ProbeService may touch
	 * (km_probe.h), checked before they are stored; borrowed, it must
	 * outlive the API. NULL: km_probe_policy_defaults'. */
	const struct km_probe_policy *probe_policy;
	/* What a caller may ask for; NULL = KM_LIMITS_DEFAULTS. Copied. */
	const struct km_limits *limits;
	/* Recoveries asked for through RecoveryService go to it; NULL (no
	 * cluster watched): RequestRecovery answers FAILED_PRECONDITION,
	 * the history of recoveries is still served. */
	struct km_recovery_engine *recovery;
};

int km_api_create(struct km_api **out, struct km_error *err);
int km_api_start(struct km_api *api, struct km_store *store,
		 const struct km_api_options *o, struct km_error *err);
int km_api_port(const struct km_api *api);
/* grpc.health.v1 for "" (kubemedicd itself) is SERVING only while no
 * reason for NOT_SERVING is set. Each reason has one owner, which sets and
 * clears it independently of the others. Watchers of "" are told when the combined status changes. */
enum km_api_not_serving {
	KM_API_NS_STOPPED = 1u << 0, /* before km_api_start, after _stop */
	KM_API_NS_STORAGE = 1u << 1, /* the store cannot commit (main) */
	KM_API_NS_LOOP = 1u << 2,    /* the probe loop stalls (main) */
};
/* Clears reason (serving true) or sets it (false). Any thread; never
 * blocks on the network. Works before km_api_start too: a reason set
 * then holds after the start. */
void km_api_set_serving(struct km_api *api, unsigned reason, bool serving);
void km_api_stop(struct km_api *api, int64_t grace_ms);
void km_api_destroy(struct km_api *api);

#endif
