/*
 * The method table and the life cycle of the API. Each method is one line
 * below: its path, kind, request type and handler. Methods of capabilities
 * not built yet answer UNIMPLEMENTED with what they will do.
 */
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "km_log.h"
#include "km_time.h"

struct km_reader *km_api_reader(struct km_rpc_ctx *ctx)
{
	struct api_worker *w = ctx->worker_data;

	km_reader_set_deadline(w->reader, ctx->deadline_mono_ns);
	return w->reader;
}

static int worker_init(void *arg, int index, void **data, struct km_error *err)
{
	struct km_api *api = arg;
	struct api_worker *w = calloc(1, sizeof *w);
	int rc;

	(void)index;
	if (!w)
		return API_OOM(err);
	w->api = api;
	rc = km_reader_open(api->store, &w->reader, err);
	if (rc) {
		free(w);
		return rc;
	}
	*data = w;
	return 0;
}

static void worker_fini(void *arg, void *data)
{
	struct api_worker *w = data;

	(void)arg;
	km_reader_close(w->reader);
	free(w);
}

/* One method per line reads better than what clang-format makes of these
 * initialiser macros. */
/* clang-format off */
#define KM "/kubemedic.v1."
#define D(msg) &kubemedic__v1__##msg##__descriptor
#define UNARY(path, req, fn, arg) {path, KM_RPC_UNARY, req, fn, NULL, arg}
#define LATER(path, req, what) \
	{path, KM_RPC_UNARY, req, km_api_unimplemented, NULL, (void *)(what)}
#define LATER_STREAM(path, req, what) \
	{path, KM_RPC_SERVER_STREAM, req, NULL, km_api_unimplemented_stream, \
	 (void *)(what)}

static const struct km_rpc_method api_methods[] = {
	UNARY(KM "ProbeService/CreateProbe", D(create_probe_request),
	      km_api_create_probe, NULL),
	UNARY(KM "ProbeService/GetProbe", D(get_probe_request), km_api_get_probe,
	      NULL),
	UNARY(KM "ProbeService/ListProbes", D(list_probes_request),
	      km_api_list_probes, NULL),
	UNARY(KM "ProbeService/UpdateProbe", D(update_probe_request),
	      km_api_update_probe, NULL),
	UNARY(KM "ProbeService/DeleteProbe", D(delete_probe_request),
	      km_api_delete_probe, NULL),

	UNARY(KM "HealthService/GetHealth", D(get_health_request),
	      km_api_get_health, NULL),
	UNARY(KM "HealthService/ListTargets", D(list_targets_request),
	      km_api_list_targets, NULL),
	UNARY(KM "HealthService/QueryProbeHistory",
	      D(query_probe_history_request), km_api_query_probe_history, NULL),
	UNARY(KM "HealthService/QueryTransitions",
	      D(query_transitions_request), km_api_query_transitions, NULL),
	UNARY(KM "HealthService/QueryLatency", D(query_latency_request),
	      km_api_query_latency, NULL),
	{KM "HealthService/WatchHealth", KM_RPC_SERVER_STREAM,
	 D(watch_health_request), NULL, km_api_watch_health, NULL},
	UNARY(KM "HealthService/GetAvailability",
	      D(get_availability_request), km_api_get_availability, NULL),

	UNARY(KM "AuditService/ListAuditEvents", D(list_audit_events_request),
	      km_api_list_audit_events, NULL),

	UNARY(KM "RecoveryService/RequestRecovery",
	      D(request_recovery_request), km_api_request_recovery, NULL),
	UNARY(KM "RecoveryService/GetRecovery", D(get_recovery_request),
	      km_api_get_recovery, NULL),
	UNARY(KM "RecoveryService/ListRecoveries", D(list_recoveries_request),
	      km_api_list_recoveries, NULL),
	UNARY(KM "RecoveryService/CancelRecovery", D(cancel_recovery_request),
	      km_api_cancel_recovery, NULL),
	{KM "RecoveryService/WatchRecoveries", KM_RPC_SERVER_STREAM,
	 D(watch_recoveries_request), NULL, km_api_watch_recoveries, NULL},
	UNARY(KM "RecoveryService/ListStorms", D(list_storms_request),
	      km_api_list_storms, NULL),
	UNARY(KM "RecoveryService/ListPolicies", D(list_policies_request),
	      km_api_list_policies, NULL),
};

/* clang-format on */

#define N_KM_METHODS (sizeof api_methods / sizeof api_methods[0])
#define N_METHODS (N_KM_METHODS + 4)

int km_api_create(struct km_api **out, struct km_error *err)
{
	struct km_api *api = calloc(1, sizeof *api);
	int rc;

	*out = NULL;
	if (!api)
		return API_OOM(err);
	pthread_mutex_init(&api->mu, NULL);
	pthread_mutex_init(&api->quota_mu, NULL);
	pthread_mutex_init(&api->rw_mu, NULL);
	km_list_init(&api->rwatchers);
	api->limits = KM_LIMITS_DEFAULTS;
	api->not_serving = KM_API_NS_STOPPED;
	km_list_init(&api->watchers);
	api->methods = calloc(N_METHODS, sizeof *api->methods);
	api->method_auth = calloc(N_METHODS, sizeof *api->method_auth);
	if (!api->methods || !api->method_auth) {
		km_api_destroy(api);
		return API_OOM(err);
	}
	rc = km_api_reflection_load(&api->refl, err);
	if (rc) {
		km_api_destroy(api);
		return rc;
	}
	*out = api;
	return 0;
}

/* The policy of an API started without one: the defaults. */
static struct km_probe_policy default_policy;

static void init_default_policy(void)
{
	km_probe_policy_defaults(&default_policy);
}

/* The transport's share of the limits, for km_rpc. */
static void limit_rpc(const struct km_limits *l, struct km_rpc_options *ro)
{
	ro->default_deadline_ms = l->default_deadline_ms;
	ro->max_deadline_ms = l->max_deadline_ms;
	ro->max_streams = (int)l->max_streams;
	ro->max_streams_per_peer = (int)l->max_streams_per_peer;
	ro->max_streams_per_connection = (int)l->max_calls_per_connection;
	ro->max_request_memory = (size_t)l->max_request_memory_bytes;
}

int km_api_start(struct km_api *api, struct km_store *store,
		 const struct km_api_options *o, struct km_error *err)
{
	struct km_rpc_method *methods = api->methods;
	struct km_rpc_tls tls = {
		.cert_file = o->tls_cert_file,
		.key_file = o->tls_key_file,
		.client_ca_file = o->tls_client_ca_file,
		.require_client_cert = o->tls_require_client_cert,
	};
	struct km_rpc_options ro = {
		.listen = o->listen,
		.threads = o->threads,
		.max_recv_message_bytes = o->max_recv_message_bytes,
		.methods = methods,
		.n_methods = N_METHODS,
		.worker_init = worker_init,
		.worker_fini = worker_fini,
		.worker_arg = api,
		.tls = o->tls_cert_file ? &tls : NULL,
		.authorize = km_api_authorize,
		.completed = km_api_completed,
		.hook_arg = api,
	};
	size_t n = N_KM_METHODS;
	int rc;

	static pthread_once_t once = PTHREAD_ONCE_INIT;

	api->store = store;
	api->auth = o->auth;
	api->health = o->health;
	api->prober = o->prober;
	api->recovery = o->recovery;
	api->probe_policy = o->probe_policy;
	if (!api->probe_policy) {
		pthread_once(&once, init_default_policy);
		api->probe_policy = &default_policy;
	}
	if (o->limits)
		api->limits = *o->limits;
	limit_rpc(&api->limits, &ro);
	memcpy(methods, api_methods, sizeof api_methods);
	/* On a thread of its own: a liveness probe must be answered while
	 * the workers are all busy, or it would get the daemon restarted. */
	methods[n++] = (struct km_rpc_method){
		"/grpc.health.v1.Health/Check",
		KM_RPC_UNARY,
		&grpc__health__v1__health_check_request__descriptor,
		km_api_health_check,
		NULL,
		api,
		.own_thread = true};
	methods[n++] = (struct km_rpc_method){
		"/grpc.health.v1.Health/Watch",
		KM_RPC_SERVER_STREAM,
		&grpc__health__v1__health_check_request__descriptor,
		NULL,
		km_api_health_watch,
		api};
	/* v1alpha's messages are v1's, field for field: one parser serves
	 * both. */
	methods[n++] = (struct km_rpc_method){
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		KM_RPC_BIDI,
		&grpc__reflection__v1__server_reflection_request__descriptor,
		km_api_reflection_info,
		NULL,
		api};
	methods[n++] = (struct km_rpc_method){
		"/grpc.reflection.v1alpha.ServerReflection/"
		"ServerReflectionInfo",
		KM_RPC_BIDI,
		&grpc__reflection__v1__server_reflection_request__descriptor,
		km_api_reflection_info,
		NULL,
		api};

	for (size_t i = 0; api->auth && i < N_METHODS; i++)
		api->method_auth[i] = (struct api_method_auth){
			km_auth_method_role(api->auth, methods[i].path),
			km_auth_method_mutates(methods[i].path)};

	rc = km_api_health_start(api, err);
	if (rc)
		return rc;
	km_store_set_recovery_listener(store, km_api_recovery_event, api);
	rc = km_rpc_server_start(&ro, &api->rpc, err);
	if (rc) {
		km_api_health_stop(api);
		return rc;
	}
	km_api_health_set_serving(api, KM_API_NS_STOPPED, true);
	return 0;
}

int km_api_port(const struct km_api *api)
{
	return km_rpc_server_port(api->rpc);
}

void km_api_set_serving(struct km_api *api, unsigned reason, bool serving)
{
	km_api_health_set_serving(api, reason, serving);
}

void km_api_stop(struct km_api *api, int64_t grace_ms)
{
	if (!api || !api->rpc)
		return;
	km_api_health_set_serving(api, KM_API_NS_STOPPED, false);
	km_rpc_server_shutdown(api->rpc, grace_ms);
	api->rpc = NULL;
	/* Every WatchRecoveries stream has ended too. */
	km_store_set_recovery_listener(api->store, NULL, NULL);
	/* Every stream has ended, and with it its hub subscription. */
	km_api_health_stop(api);
}

void km_api_destroy(struct km_api *api)
{
	if (!api)
		return;
	km_api_stop(api, 0);
	km_api_reflection_free(api->refl);
	free(api->methods);
	free(api->method_auth);
	pthread_mutex_destroy(&api->quota_mu);
	pthread_mutex_destroy(&api->rw_mu);
	pthread_mutex_destroy(&api->mu);
	free(api);
}

/* ---- methods of later work ----------------------------------------------- */

API_HANDLER(km_api_unimplemented)
{
	(void)req;
	(void)resp;
	return km_error_set(err, KM_EUNIMPL, "not implemented yet: %s",
			    (const char *)ctx->method_arg);
}

int km_api_unimplemented_stream(struct km_rpc_ctx *ctx,
				const ProtobufCMessage *req,
				struct km_error *err)
{
	(void)req;
	return km_error_set(err, KM_EUNIMPL, "not implemented yet: %s",
			    (const char *)ctx->method_arg);
}
