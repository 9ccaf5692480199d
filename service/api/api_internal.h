/*
 * The API layer's internals: what the handler files (api_*.c) share.
 *
 * Handlers run on km_rpc worker threads. Each worker owns a km_reader
 * (struct api_worker); writes go through the store's writer. Everything a
 * handler allocates comes from ctx->arena, released after the reply.
 * Conversions between protobuf-c messages and km_model structs live in
 * api_convert.c; storage never sees a protobuf type.
 */
#ifndef KM_API_INTERNAL_H
#define KM_API_INTERNAL_H

#include "google/protobuf/timestamp.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "kubemedic/v1/common.pb-c.h"
#include "kubemedic/v1/health.pb-c.h"
#include "kubemedic/v1/probe.pb-c.h"
#include "kubemedic/v1/audit.pb-c.h"
#include "kubemedic/v1/recovery.pb-c.h"

#include "km_api.h"
#include "km_auth.h"
#include "km_hash.h"
#include "km_health.h"
#include "km_list.h"
#include "km_probe.h"
#include "km_rpc.h"
#include "km_store.h"

#include <pthread.h>

struct api_worker {
	struct km_api *api;
	struct km_reader *reader;
};

/* The API the call belongs to. */
#define API_OF(ctx) (((struct api_worker *)(ctx)->worker_data)->api)

/* A grpc.health.v1 Watch in progress. */
struct health_watcher {
	struct km_api *api;
	struct km_rpc_call *call; /* a reference is held */
	char *service;            /* owned */
	int last;                 /* status last sent */
	struct km_list node;      /* in api->watchers */
};

struct api_reflection;
struct km_prober;

struct km_api {
	struct km_store *store;
	struct km_auth *auth; /* NULL: every call may do everything */
	struct km_health *health;
	struct km_rpc_server *rpc;
	struct api_reflection *refl;
	struct km_rpc_method *methods; /* the table given to km_rpc */
	/* methods[i]'s role and whether it is audited on success, from the
	 * authorization table (looked up once, at start). */
	struct api_method_auth {
		int role;
		bool mutates;
	} * method_auth;

	struct km_prober *prober; /* NULL: definitions only, no runs */
	struct km_recovery_engine *recovery; /* NULL: no cluster watched */
	/* WatchRecoveries streams, told by the store's recovery listener. */
	pthread_mutex_t rw_mu;
	struct km_list rwatchers;
	/* What probes through ProbeService may touch; borrowed (never NULL
	 * once started). */
	const struct km_probe_policy *probe_policy;

	pthread_mutex_t mu;   /* guards what follows */
	unsigned not_serving; /* enum km_api_not_serving bits; 0 = SERVING */
	size_t storms_on; /* the recovery engine's storms on (km_storms.h) */
	struct km_list watchers; /* struct health_watcher */
	/* The hub subscription that feeds the grpc.health.v1 watchers. */
	struct km_health_sub *watchers_sub;

	/* Bounds on what a caller may ask for (api_limits.c). */
	struct km_limits limits;
	/* Held from counting the probes to creating one, so two creates
	 * cannot both take the last place under limits.maxProbes. */
	pthread_mutex_t quota_mu;
};

/* grpc.health.v1's name for automatic recovery: NOT_SERVING while a storm
 * stops it (RecoveryService.ListStorms says which). */
#define KM_API_AUTOMATIC_SERVICE "kubemedic.v1.RecoveryService/automatic"

/* api_grpc_health.c: the grpc.health.v1 watchers, one hub subscriber. */
int km_api_health_start(struct km_api *api, struct km_error *err);
void km_api_health_stop(struct km_api *api);
void km_api_health_set_serving(struct km_api *api, unsigned reason,
			       bool serving);

/* api_auth.c: identities and roles (km_auth) on every call. */
int km_api_authorize(void *arg, struct km_rpc_ctx *ctx,
		     const struct km_rpc_method *m, const ProtobufCMessage *req,
		     struct km_error *err);
void km_api_completed(void *arg, struct km_rpc_ctx *ctx,
		      const struct km_rpc_method *m,
		      const ProtobufCMessage *req, int rc,
		      const struct km_error *err);
/* The caller of the call being handled (valid during the handler). */
const struct km_identity *km_api_identity(const struct km_rpc_ctx *ctx);
/* 0, or KM_EPERM/KM_EAUTH if the caller may not create or change p (its
 * type or its fields need a higher role). */
int km_api_check_probe(const struct km_rpc_ctx *ctx, const struct km_probe *p,
		       struct km_error *err);
/* Whether the caller may see the output of a probe of that type (exec and
 * file probes' output is for admins); else show km_api_hidden_output. */
bool km_api_may_see_output(const struct km_rpc_ctx *ctx, int probe_type);
extern const char km_api_hidden_output[];

/* api_watch.c: WatchHealth, one hub subscriber per stream. */
int km_api_watch_health(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
			struct km_error *err);

/* api_reflection.c: the embedded descriptor set, indexed. */
int km_api_reflection_load(struct api_reflection **out, struct km_error *err);
void km_api_reflection_free(struct api_reflection *r);

/* ---- bounds (api_limits.c) ---------------------------------------------- */

/* The selector s of a request's field within limits.maxSelectorBytes and
 * limits.maxSelectorRequirements, measured before it is parsed: 0, or
 * KM_EINVAL naming field and the limit. */
int km_api_check_selector(const struct km_api *api, const char *field,
			  const char *s, struct km_error *err);
/* A request's label_selector (checked first) parsed into *out in a: 0,
 * or the parser's error, its message naming label_selector. */
int km_api_parse_selector(const char *s, struct km_arena *a,
			  struct km_selector **out, struct km_error *err);
/* Filters by a target's identity (namespace, node, owner, uid; NULL or
 * "" = any) no longer than any could be: KM_EINVAL naming the field. */
#define KM_API_IDENTITY_MAX 1024
int km_api_check_identity(const char *ns, const char *node, const char *owner,
			  const char *uid, struct km_error *err);
/* n target names within limits.maxWatchTargets, named field. */
int km_api_check_targets(const struct km_api *api, const char *field, size_t n,
			 struct km_error *err);
/* Room for one more probe under limits.maxProbes and, when owner (the
 * caller's user, km_api_identity) is set, under maxProbesPerIdentity for
 * the probes owner created: 0, or KM_EFULL naming the limit. Call with
 * api->quota_mu held until the probe is created or refused. */
int km_api_probe_quota(struct km_rpc_ctx *ctx, const char *owner,
		       struct km_error *err);

/* The reader of this worker, with the call's deadline applied. */
struct km_reader *km_api_reader(struct km_rpc_ctx *ctx);

#define API_OOM(err) km_error_set((err), KM_ENOMEM, "out of memory")

/* ---- conversions (api_convert.c) -------------------------------------- */

/* A request's optional time bound in epoch microseconds; absent = dflt.
 * KM_EINVAL naming field for seconds/nanos out of range. */
int km_api_time_bound(const Google__Protobuf__Timestamp *ts, int64_t dflt,
		      const char *field, int64_t *out, struct km_error *err);

Kubemedic__V1__Target *km_api_target_to_pb(const struct km_target *t,
					   struct km_arena *a);
Kubemedic__V1__ProbeResult *km_api_result_to_pb(const struct km_result *r,
						const struct km_target *t,
						struct km_arena *a);
/* A run of a history page (ProbeResult with count, first and last start,
 * the mean duration). */
Kubemedic__V1__ProbeResult *km_api_run_to_pb(const struct km_run_row *r,
					     const struct km_target *t,
					     struct km_arena *a);
Kubemedic__V1__Transition *
km_api_transition_to_pb(const struct km_transition *t, const char *target_name,
			struct km_arena *a);

/* page_size: 0 = default 100; negative or > max is KM_EINVAL. */
int km_api_page_size(int32_t requested, int32_t max, size_t *out,
		     struct km_error *err);

/* ---- page tokens (api_token.c) ----------------------------------------- */
/*
 * A page token carries where the next page starts (up to two integers and
 * a string) and a hash of the query's filters, so a token used with other
 * filters is refused (the hash is km_hash's: km_hash_field for strings,
 * km_hash_i64 for numbers). Encoded as unpadded base64url.
 */

struct api_cursor {
	int64_t a, b;
	const char *s; /* decoded into the arena; "" if none */
};
char *km_api_token_encode(struct km_arena *a, uint64_t query_hash,
			  const struct api_cursor *c);
/* "" decodes to *present = false. */
int km_api_token_decode(const char *token, uint64_t query_hash,
			struct km_arena *a, struct api_cursor *c, bool *present,
			struct km_error *err);

/* ---- handlers ----------------------------------------------------------- */

#define API_HANDLER(name)                                             \
	int name(struct km_rpc_ctx *ctx, const ProtobufCMessage *req, \
		 ProtobufCMessage **resp, struct km_error *err)

API_HANDLER(km_api_create_probe);
API_HANDLER(km_api_get_probe);
API_HANDLER(km_api_list_probes);
API_HANDLER(km_api_update_probe);
API_HANDLER(km_api_delete_probe);

API_HANDLER(km_api_request_recovery);
API_HANDLER(km_api_get_recovery);
API_HANDLER(km_api_list_recoveries);
API_HANDLER(km_api_cancel_recovery);
API_HANDLER(km_api_list_storms);
API_HANDLER(km_api_list_policies);
int km_api_watch_recoveries(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
			    struct km_error *err);
/* The store's recovery listener (api_recovery.c). */
void km_api_recovery_event(void *arg, const struct km_recovery_event *e);

API_HANDLER(km_api_list_audit_events);

API_HANDLER(km_api_get_health);
API_HANDLER(km_api_list_targets);
API_HANDLER(km_api_query_probe_history);
API_HANDLER(km_api_query_latency);
API_HANDLER(km_api_query_transitions);
/* api_availability.c */
API_HANDLER(km_api_get_availability);

/* Methods of later work: UNIMPLEMENTED naming the capability
 * (method arg = the capability's description). */
API_HANDLER(km_api_unimplemented);
int km_api_unimplemented_stream(struct km_rpc_ctx *ctx,
				const ProtobufCMessage *req,
				struct km_error *err);

/* grpc.health.v1 (api_grpc_health.c); method arg = struct km_api. */
API_HANDLER(km_api_health_check);
int km_api_health_watch(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
			struct km_error *err);

/* Server reflection (api_reflection.c); method arg = struct km_api. */
API_HANDLER(km_api_reflection_info);

#endif
