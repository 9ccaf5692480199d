/*
 * km_api — kubemedicd's gRPC services on top of km_rpc and km_store.
 *
 * Serves kubemedic.v1 HealthService, ProbeService and RecoveryService,
 * grpc.health.v1.Health (for the daemon itself, service "", and for every
 * target by its full name) and server reflection (grpc.reflection.v1 and
 * v1alpha) from the descriptor set compiled into the binary.
 *
 * Life cycle, in this order:
 *   km_api_create      the object, before the store (the store's
 *                      on_transition callback is km_api_on_transition)
 *   km_api_start       bind and serve, with the opened store
 *   km_api_set_serving grpc.health.v1 status of "" (SERVING once started)
 *   km_api_stop        NOT_SERVING to watchers, graceful gRPC shutdown
 *   km_api_destroy
 * All from one thread, except km_api_on_transition (the store's writer).
 */
#ifndef KM_API_H
#define KM_API_H

#include <stdbool.h>
#include <stdint.h>

#include "km_error.h"
#include "km_model.h"

struct km_api;
struct km_store;

struct km_api_options {
	const char *listen;             /* HOST:PORT; port 0 = any free */
	int threads;                    /* >= 1 */
	int64_t max_recv_message_bytes; /* 0 = gRPC's default (4 MiB) */
	/* Probe changes through ProbeService are handed to it at once; NULL
	 * keeps the API to definitions and history. */
	struct km_prober *prober;
};

int km_api_create(struct km_api **out, struct km_error *err);
int km_api_start(struct km_api *api, struct km_store *store,
		 const struct km_api_options *o, struct km_error *err);
int km_api_port(const struct km_api *api);
void km_api_set_serving(struct km_api *api, bool serving);
void km_api_stop(struct km_api *api, int64_t grace_ms);
void km_api_destroy(struct km_api *api);

/* For km_store_options.on_transition (arg = the km_api). */
void km_api_on_transition(void *api, const struct km_transition *t);

#endif
