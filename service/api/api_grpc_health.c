/*
 * grpc.health.v1.Health: the standard health protocol, for kubemedicd
 * itself (service ""), for every target, by its full name — so any
 * gRPC health tool reads kubemedic's verdict ("probe//checkout-http") —
 * and for automatic recovery ("kubemedic.v1.RecoveryService/automatic":
 * NOT_SERVING while a storm stops it; known only where the recovery
 * engine runs).
 *
 * Verdict to status: HEALTHY and DEGRADED are SERVING (up, if under
 * pressure), UNHEALTHY is NOT_SERVING, UNKNOWN (no verdict yet) is UNKNOWN.
 * Check answers NOT_FOUND for a name it does not know; Watch answers
 * SERVICE_UNKNOWN and keeps watching, as the protocol asks.
 *
 * Check reads the hub's memory (never SQLite). Watchers are kept in
 * api->watchers under api->mu; each holds a reference on its call, dropped
 * when the call is over (on_done). Updates come from km_api_set_serving
 * and from one subscription to the health hub for all of them (committed
 * transitions, handed over on the hub's thread); a watcher is sent a
 * status only when it differs from the last one it got. The subscriber's
 * queue overflowing would mean a lost update: then every target watcher is
 * sent its current status again from the hub and a new subscription
 * starts.
 */
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "km_log.h"
#include "km_recovery.h"
#include "km_storms.h"

#define ST(x) GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x

static int status_of_state(int state)
{
	switch (state) {
	case KM_STATE_HEALTHY:
	case KM_STATE_DEGRADED: return ST(SERVING);
	case KM_STATE_UNHEALTHY: return ST(NOT_SERVING);
	case KM_STATE_DELETED: return ST(SERVICE_UNKNOWN);
	}
	return ST(UNKNOWN);
}

/* The status of service, or KM_ENOTFOUND. Call with api->mu held when the
 * answer must be ordered against updates (Watch). */
static int current_status(struct km_rpc_ctx *ctx, struct km_api *api,
			  const char *service, int *status,
			  struct km_error *err)
{
	struct km_target_name tn;
	char why[256];
	int state, rc;

	(void)ctx;
	if (!*service) {
		*status = api->not_serving ? ST(NOT_SERVING) : ST(SERVING);
		return 0;
	}
	if (!strcmp(service, KM_API_AUTOMATIC_SERVICE)) {
		if (!api->recovery)
			return km_error_set(err, KM_ENOTFOUND,
					    "unknown service \"%s\": no "
					    "recovery engine runs here (no "
					    "cluster is watched)",
					    service);
		*status = api->storms_on ? ST(NOT_SERVING) : ST(SERVING);
		return 0;
	}
	if (km_target_name_parse(service, &tn, why, sizeof why))
		return km_error_set(err, KM_ENOTFOUND,
				    "unknown service \"%s\": ask for \"\" "
				    "(kubemedicd itself) or a target's full "
				    "name, e.g. \"probe//checkout-http\" (%s)",
				    service, why);
	rc = km_health_state(api->health, service, &state);
	if (rc == KM_ENOTFOUND)
		return km_error_set(err, KM_ENOTFOUND,
				    "unknown service \"%s\": no such target",
				    service);
	*status = status_of_state(state);
	return 0;
}

static Grpc__Health__V1__HealthCheckResponse *response(struct km_arena *a,
						       int status)
{
	Grpc__Health__V1__HealthCheckResponse *r =
		KM_ARENA_NEW(a, Grpc__Health__V1__HealthCheckResponse,
			     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT);

	if (r)
		r->status = status;
	return r;
}

API_HANDLER(km_api_health_check)
{
	const Grpc__Health__V1__HealthCheckRequest *r = (const void *)req;
	struct km_api *api = API_OF(ctx);
	Grpc__Health__V1__HealthCheckResponse *out;
	int status, rc;

	pthread_mutex_lock(&api->mu);
	rc = current_status(ctx, api, r->service ? r->service : "", &status,
			    err);
	pthread_mutex_unlock(&api->mu);
	if (rc)
		return rc;
	if (!(out = response(ctx->arena, status)))
		return API_OOM(err);
	*resp = &out->base;
	return 0;
}

/* Sends status to w if it changed; api->mu held. */
static void notify(struct health_watcher *w, int status)
{
	Grpc__Health__V1__HealthCheckResponse r =
		GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	if (w->last == status)
		return;
	w->last = status;
	r.status = status;
	/* A failure ends the stream; on_done then removes the watcher. */
	km_rpc_stream_send(w->call, &r.base);
}

static void watch_done(void *arg, struct km_rpc_call *c)
{
	struct health_watcher *w = arg;
	struct km_api *api = w->api;

	pthread_mutex_lock(&api->mu);
	km_list_del(&w->node);
	pthread_mutex_unlock(&api->mu);
	km_rpc_call_unref(c);
	free(w->service);
	free(w);
}

int km_api_health_watch(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
			struct km_error *err)
{
	const Grpc__Health__V1__HealthCheckRequest *r = (const void *)req;
	struct km_api *api = API_OF(ctx);
	const char *service = r->service ? r->service : "";
	struct health_watcher *w = calloc(1, sizeof *w);
	int status, rc;

	if (!w || !(w->service = strdup(service))) {
		free(w);
		return API_OOM(err);
	}
	w->api = api;
	w->call = ctx->call;
	w->last = -1;
	km_list_init(&w->node);
	km_rpc_call_ref(w->call);

	pthread_mutex_lock(&api->mu);
	rc = current_status(ctx, api, service, &status, err);
	if (rc == KM_ENOTFOUND)
		status = ST(SERVICE_UNKNOWN);
	else if (rc) {
		pthread_mutex_unlock(&api->mu);
		km_rpc_call_unref(w->call);
		free(w->service);
		free(w);
		return rc;
	}
	km_list_add_tail(&api->watchers, &w->node);
	notify(w, status);
	pthread_mutex_unlock(&api->mu);
	/* Outside api->mu: watch_done takes it, and runs at once if the
	 * call is already over. */
	km_rpc_call_on_done(w->call, watch_done, w);
	return 0;
}

void km_api_health_set_serving(struct km_api *api, unsigned reason,
			       bool serving)
{
	struct km_list *n;
	int status;

	pthread_mutex_lock(&api->mu);
	if (serving)
		api->not_serving &= ~reason;
	else
		api->not_serving |= reason;
	status = api->not_serving ? ST(NOT_SERVING) : ST(SERVING);
	km_list_for_each (n, &api->watchers) {
		struct health_watcher *w =
			km_list_entry(n, struct health_watcher, node);

		if (!w->service[0])
			notify(w, status); /* only if it changed */
	}
	pthread_mutex_unlock(&api->mu);
}

/* The recovery engine's loop, under the storms' lock: the number of
 * storms on changed (or is told at start). */
static void storms_told(void *arg, size_t on)
{
	struct km_api *api = arg;
	struct km_list *n;

	pthread_mutex_lock(&api->mu);
	api->storms_on = on;
	km_list_for_each (n, &api->watchers) {
		struct health_watcher *w =
			km_list_entry(n, struct health_watcher, node);

		if (!strcmp(w->service, KM_API_AUTOMATIC_SERVICE))
			notify(w, on ? ST(NOT_SERVING) : ST(SERVING));
	}
	pthread_mutex_unlock(&api->mu);
}

/* The hub's thread: a committed transition, to the watchers of its
 * target. */
static void deliver(void *arg, const struct km_health_event *ev)
{
	struct km_api *api = arg;
	struct km_list *n;

	pthread_mutex_lock(&api->mu);
	km_list_for_each (n, &api->watchers) {
		struct health_watcher *w =
			km_list_entry(n, struct health_watcher, node);

		if (!strcmp(w->service, ev->t->target_name))
			notify(w, status_of_state(ev->t->to_state));
	}
	pthread_mutex_unlock(&api->mu);
}

static void overflow(void *arg, int64_t last_seq);

/* api->mu held: a new subscription for the watchers. */
static int subscribe(struct km_api *api)
{
	struct km_health_sub_options o = {
		.deliver = deliver,
		.overflow = overflow,
		.arg = api,
	};
	int64_t start;

	return km_health_subscribe(api->health, &o, &api->watchers_sub, &start);
}

/* The hub's thread: updates were lost. Every target watcher gets its
 * target's status as it is now, and a fresh subscription carries on (the
 * old one is freed when this returns). */
static void overflow(void *arg, int64_t last_seq)
{
	struct km_api *api = arg;
	struct km_health_sub *old;
	struct km_list *n;

	(void)last_seq;
	pthread_mutex_lock(&api->mu);
	old = api->watchers_sub;
	if (!old) { /* stopping */
		pthread_mutex_unlock(&api->mu);
		return;
	}
	if (subscribe(api)) {
		api->watchers_sub = NULL;
		km_log(KM_LOG_ERROR,
		       "grpc.health.v1 watchers get no more "
		       "updates: out of memory",
		       NULL);
	}
	km_list_for_each (n, &api->watchers) {
		struct health_watcher *w =
			km_list_entry(n, struct health_watcher, node);
		int state;

		if (!w->service[0])
			continue;
		notify(w, km_health_state(api->health, w->service, &state)
				  ? ST(SERVICE_UNKNOWN)
				  : status_of_state(state));
	}
	pthread_mutex_unlock(&api->mu);
	km_health_unsubscribe(old);
}

int km_api_health_start(struct km_api *api, struct km_error *err)
{
	int rc;

	pthread_mutex_lock(&api->mu);
	rc = subscribe(api);
	pthread_mutex_unlock(&api->mu);
	if (rc)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	/* Not under api->mu: the listener takes it (lock order: the
	 * storms', then api->mu). */
	if (api->recovery)
		km_storms_set_listener(km_recovery_storms(api->recovery),
				       storms_told, api);
	return 0;
}

void km_api_health_stop(struct km_api *api)
{
	struct km_health_sub *sub;

	if (api->recovery)
		km_storms_set_listener(km_recovery_storms(api->recovery), NULL,
				       NULL);
	pthread_mutex_lock(&api->mu);
	sub = api->watchers_sub;
	api->watchers_sub = NULL;
	pthread_mutex_unlock(&api->mu);
	km_health_unsubscribe(sub);
}
