/*
 * RecoveryService (proto/kubemedic/v1/recovery.proto): recoveries asked
 * for, read, listed and cancelled.
 *
 * RequestRecovery checks the request (the engine looks at the cluster's
 * cache: the target's kind fits the action, its uid is known, a pod has
 * a controller), records it REQUESTED — committed before the answer — and
 * hands it to the engine (km_recovery.h). The same idempotency_key
 * returns the recovery it made first, and nothing is done twice. With
 * dry_run every check runs and the recovery is recorded DRY_RUN: nothing
 * is sent to the cluster. The requester is the caller's identity; the
 * audit trail keeps the call (and every refusal) beside it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "km_log.h"
#include "km_pbcheck.h"
#include "km_recovery.h"
#include "km_storms.h"

#define REASON_MAX 1024
#define KEY_MAX 256
#define LIST_MAX 1000
#define TARGET_MAX 600 /* [cluster:]kind/ns/name */
#define CLUSTER_MAX 63
#define REQUESTER_MAX 256

static Kubemedic__V1__Recovery *recovery_to_pb(const struct km_recovery *r,
					       struct km_arena *a)
{
	Kubemedic__V1__Recovery *pb = KM_ARENA_NEW(
		a, Kubemedic__V1__Recovery, KUBEMEDIC__V1__RECOVERY__INIT);
	char id[24];

	if (!pb)
		return NULL;
	snprintf(id, sizeof id, "%" PRId64, r->id);
	pb->id = km_arena_strdup(a, id);
	pb->target = (char *)(r->target ? r->target : "");
	pb->target_uid = (char *)(r->target_uid ? r->target_uid : "");
	pb->action = (Kubemedic__V1__RecoveryAction)r->action;
	pb->reason = (char *)(r->reason ? r->reason : "");
	pb->dry_run = r->dry_run;
	pb->force = r->force;
	pb->idempotency_key =
		(char *)(r->idempotency_key ? r->idempotency_key : "");
	pb->requester = (char *)(r->requester ? r->requester : "");
	pb->phase = (Kubemedic__V1__RecoveryPhase)r->phase;
	pb->skip_rule = (char *)(r->skip_rule ? r->skip_rule : "");
	pb->attempts = r->attempts;
	pb->http_status = r->http_status > 0 ? r->http_status : 0;
	pb->last_error = (char *)(r->last_error ? r->last_error : "");
	pb->create_time = km_pb_timestamp(a, r->created_us);
	pb->update_time = km_pb_timestamp(a, r->updated_us);
	if (!pb->id || !pb->create_time || !pb->update_time)
		return NULL;
	return pb;
}

static int reply(struct km_rpc_ctx *ctx, const struct km_recovery *r,
		 ProtobufCMessage **resp, struct km_error *err)
{
	Kubemedic__V1__Recovery *pb = recovery_to_pb(r, ctx->arena);

	if (!pb)
		return API_OOM(err);
	*resp = &pb->base;
	return 0;
}

static int parse_id(const char *s, int64_t *id, struct km_error *err)
{
	char *end;
	long long v;

	if (!s || !*s)
		return km_error_set(err, KM_EINVAL, "id: Required value");
	v = strtoll(s, &end, 10);
	if (*end || v <= 0 || strlen(s) > 19)
		return km_error_set(err, KM_EINVAL,
				    "id: not a recovery's id (a positive "
				    "number, as RequestRecovery answered)");
	*id = v;
	return 0;
}

/* Text a caller sent, checked before it is stored: visible characters
 * (and spaces), at most max bytes. */
static int check_text(const char *field, const char *s, size_t max,
		      bool required, struct km_error *err)
{
	size_t n = s ? strlen(s) : 0;

	if (!n && required)
		return km_error_set(err, KM_EINVAL,
				    "%s: Required value: say why, for the "
				    "history",
				    field);
	if (n > max)
		return km_error_set(err, KM_EINVAL,
				    "%s: at most %zu bytes (got %zu)", field,
				    max, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return km_error_set(err, KM_EINVAL,
					    "%s: control characters are not "
					    "allowed",
					    field);
	return 0;
}

/* A cluster filter: "" any (*out NULL), "-" the unprefixed one, else a
 * cluster's name as the configuration gives it. */
static int cluster_filter(const char *s, const char **out, struct km_error *err)
{
	int rc = check_text("cluster", s, CLUSTER_MAX, false, err);

	*out = NULL;
	if (rc || !s || !*s)
		return rc;
	*out = strcmp(s, "-") ? s : "";
	return 0;
}

/* The requester as the history keeps it: the caller's user, "" when
 * anonymous (an unauthenticated daemon's local caller). */
static const char *requester(const struct km_rpc_ctx *ctx)
{
	const struct km_identity *id = km_api_identity(ctx);

	return id && id->user && *id->user ? id->user : "anonymous";
}

/* A key names one request: the same caller, target, action and dry
 * run. Anything else with it is refused, and tells nothing of the
 * other's recovery. */
static bool same_request(const struct km_recovery *r,
			 const struct km_recovery *old, struct km_error *err)
{
	if (!strcmp(r->requester, old->requester) &&
	    !strcmp(r->target, old->target) && r->action == old->action &&
	    r->dry_run == old->dry_run)
		return true;
	km_error_set(err, KM_EEXIST,
		     "idempotency_key: used already for another request; "
		     "choose a new key for a new request");
	return false;
}

API_HANDLER(km_api_request_recovery)
{
	const Kubemedic__V1__RequestRecoveryRequest *q = (const void *)req;
	struct km_api *api = API_OF(ctx);
	struct km_recovery r = {0};
	bool existed = false, held = false;
	int rc;

	if (!q->target || !*q->target)
		return km_error_set(err, KM_EINVAL, "target: Required value");
	if (strlen(q->target) > TARGET_MAX)
		return km_error_set(err, KM_EINVAL, "target: too long");
	if (q->action ==
	    KUBEMEDIC__V1__RECOVERY_ACTION__RECOVERY_ACTION_UNSPECIFIED)
		return km_error_set(err, KM_EINVAL,
				    "action: Required value: restart_pod, "
				    "rollout_restart, cordon or uncordon");
	if ((rc = check_text("reason", q->reason, REASON_MAX, true, err)) ||
	    (rc = check_text("idempotency_key", q->idempotency_key, KEY_MAX,
			     false, err)))
		return rc;
	if (!api->recovery)
		return km_error_set(err, KM_EPRECOND,
				    "no cluster is watched: recovery acts on "
				    "Kubernetes objects (start kubemedicd with "
				    "--kubeconfig or clusters:)");
	r = (struct km_recovery){
		.target = q->target,
		.action = (int)q->action,
		.reason = q->reason,
		.requester = requester(ctx),
		.policy = "",
		.idempotency_key = q->idempotency_key ? q->idempotency_key : "",
		.dry_run = q->dry_run,
		.force = q->force,
		.phase = q->dry_run ? KM_PHASE_DRY_RUN : KM_PHASE_REQUESTED,
	};
	/* A repeated key answers what it made first, checked or not. */
	if (*r.idempotency_key) {
		struct km_recovery old;

		rc = km_reader_get_recovery_by_key(km_api_reader(ctx),
						   r.idempotency_key,
						   ctx->arena, &old, err);
		if (!rc)
			return same_request(&r, &old, err)
				       ? reply(ctx, &old, resp, err)
				       : err->code;
		if (rc != KM_ENOTFOUND)
			return rc;
	}
	if (km_recovery_dry_run(api->recovery) && !r.dry_run) {
		r.dry_run = true; /* recovery.dryRun: every recovery */
		r.phase = KM_PHASE_DRY_RUN;
	}
	rc = km_recovery_check(api->recovery, &r, ctx->arena, &held, err);
	if (rc == KM_EPRECOND && r.skip_rule) {
		/* Refused by the safety budget: recorded as such. */
		struct km_error e2 = {0};

		r.phase = KM_PHASE_SKIPPED;
		r.last_error = err->msg;
		if (km_store_create_recovery(api->store, &r, ctx->arena,
					     &existed, &e2))
			km_log(KM_LOG_ERROR,
			       "a refused recovery cannot be recorded",
			       "target", r.target, "error", e2.msg, NULL);
		return rc;
	}
	if (rc)
		return rc;
	if (r.dry_run)
		r.last_error = "dry run: every check passed; nothing was sent";
	rc = km_store_create_recovery(api->store, &r, ctx->arena, &existed,
				      err);
	if (held && (rc || existed)) /* not submitted: slot unused */
		km_recovery_release(api->recovery, q->target);
	if (rc)
		return rc;
	if (existed &&
	    !same_request(&(struct km_recovery){.requester = requester(ctx),
						.target = q->target,
						.action = (int)q->action,
						.dry_run = q->dry_run},
			  &r, err))
		return err->code;
	if (!existed && !r.dry_run) {
		rc = km_recovery_submit(api->recovery, &r, held);
		if (rc && held)
			km_recovery_release(api->recovery, r.target);
		if (rc == KM_EFULL)
			/* Recorded, and taken back at the next start. */
			return km_error_set(err, KM_EUNAVAIL,
					    "recovery %" PRId64
					    " is recorded but the engine's "
					    "queue is full: try again later",
					    r.id);
		if (rc)
			return km_error_set(err, rc, "out of memory");
	}
	return reply(ctx, &r, resp, err);
}

API_HANDLER(km_api_get_recovery)
{
	const Kubemedic__V1__GetRecoveryRequest *q = (const void *)req;
	struct km_recovery r;
	int64_t id = 0;
	int rc = parse_id(q->id, &id, err);

	if (!rc)
		rc = km_reader_get_recovery(km_api_reader(ctx), id, ctx->arena,
					    &r, err);
	if (rc)
		return rc;
	return reply(ctx, &r, resp, err);
}

API_HANDLER(km_api_list_recoveries)
{
	const Kubemedic__V1__ListRecoveriesRequest *q = (const void *)req;
	Kubemedic__V1__ListRecoveriesResponse *out;
	struct km_recovery_query rq = {0};
	struct km_recovery *v;
	struct api_cursor cur;
	bool has_cur, more;
	uint64_t hash;
	size_t n, limit;
	int rc;

	rc = km_api_page_size(q->page_size, LIST_MAX, &limit, err);
	if (!rc)
		rc = km_api_time_bound(q->start_time, INT64_MIN, "start_time",
				       &rq.from_us, err);
	if (!rc)
		rc = km_api_time_bound(q->end_time, INT64_MAX, "end_time",
				       &rq.to_us, err);
	if (rc)
		return rc;
	if (q->phase < 0 ||
	    q->phase > KUBEMEDIC__V1__RECOVERY_PHASE__RECOVERY_PHASE_DRY_RUN)
		return km_error_set(err, KM_EINVAL, "phase: unknown");
	if (q->action < 0 || (int)q->action > KM_ACTION_MAX)
		return km_error_set(err, KM_EINVAL, "action: unknown");
	if ((rc = cluster_filter(q->cluster, &rq.cluster, err)) ||
	    (rc = check_text("requester", q->requester, REQUESTER_MAX, false,
			     err)))
		return rc;
	rq.target = q->target && *q->target ? q->target : NULL;
	rq.phase = (int)q->phase;
	rq.action = (int)q->action;
	rq.requester = q->requester && *q->requester ? q->requester : NULL;
	hash = km_hash_field(KM_HASH_INIT, q->target);
	hash = km_hash_i64(hash, q->phase);
	hash = km_hash_i64(hash, rq.from_us);
	hash = km_hash_i64(hash, rq.to_us);
	hash = km_hash_field(hash, q->cluster);
	hash = km_hash_i64(hash, q->action);
	hash = km_hash_field(hash, q->requester);
	rc = km_api_token_decode(q->page_token, hash, ctx->arena, &cur,
				 &has_cur, err);
	if (rc)
		return rc;
	rq.before_id = has_cur ? cur.a : 0;
	rq.limit = limit;
	rc = km_reader_list_recoveries(km_api_reader(ctx), &rq, ctx->arena, &v,
				       &n, &more, err);
	if (rc)
		return rc;
	out = KM_ARENA_NEW(ctx->arena, Kubemedic__V1__ListRecoveriesResponse,
			   KUBEMEDIC__V1__LIST_RECOVERIES_RESPONSE__INIT);
	if (!out)
		return API_OOM(err);
	out->recoveries =
		km_arena_calloc(ctx->arena, n ? n : 1, sizeof *out->recoveries);
	if (!out->recoveries)
		return API_OOM(err);
	for (size_t i = 0; i < n; i++)
		if (!(out->recoveries[i] = recovery_to_pb(&v[i], ctx->arena)))
			return API_OOM(err);
	out->n_recoveries = n;
	if (more) {
		struct api_cursor next = {.a = v[n - 1].id};

		out->next_page_token =
			km_api_token_encode(ctx->arena, hash, &next);
		if (!out->next_page_token)
			return API_OOM(err);
	}
	*resp = &out->base;
	return 0;
}

API_HANDLER(km_api_cancel_recovery)
{
	const Kubemedic__V1__CancelRecoveryRequest *q = (const void *)req;
	struct km_api *api = API_OF(ctx);
	struct km_recovery r;
	char msg[KM_ERROR_MSG_MAX];
	int64_t id = 0;
	int rc = parse_id(q->id, &id, err);

	if (!rc)
		rc = check_text("reason", q->reason, REASON_MAX, false, err);
	if (rc)
		return rc;
	snprintf(msg, sizeof msg, "cancelled by %s%s%s", requester(ctx),
		 q->reason && *q->reason ? ": " : "",
		 q->reason ? q->reason : "");
	/* Before it is dispatched only: the engine's DISPATCHED expects
	 * QUEUED, so one of the two writes wins, never both. */
	for (int expected = KM_PHASE_REQUESTED; expected <= KM_PHASE_QUEUED;
	     expected++) {
		struct km_recovery_update u = {
			.id = id,
			.expected_phase = expected,
			.phase = KM_PHASE_CANCELLED,
			.message = msg,
		};

		rc = km_store_update_recovery(api->store, &u, err);
		if (rc != KM_EPRECOND)
			break;
	}
	if (rc == KM_EPRECOND) {
		rc = km_reader_get_recovery(km_api_reader(ctx), id, ctx->arena,
					    &r, err);
		if (rc)
			return rc;
		return km_error_set(err, KM_EPRECOND,
				    "recovery %" PRId64
				    " is %s: only a recovery not yet "
				    "dispatched can be cancelled",
				    id, km_phase_name(r.phase));
	}
	if (rc)
		return rc;
	rc = km_reader_get_recovery(km_api_reader(ctx), id, ctx->arena, &r,
				    err);
	if (rc)
		return rc;
	return reply(ctx, &r, resp, err);
}

/* ---- WatchRecoveries ---------------------------------------------------------- */
/*
 * Every committed recovery event reaches the store's recovery listener
 * (on the writer's thread), which hands it to each stream that wants it.
 * A stream that resumes (since_sequence > 0) is registered first and
 * keeps what arrives meanwhile (at most PENDING_MAX events), then reads
 * the stored events after since_sequence a page at a time (the next one
 * when its send queue has drained), then sends what was kept that the
 * pages did not have (by sequence): every event once, in order.
 */

#define REPLAY_PAGE 256
#define PENDING_MAX 4096

struct rwatcher {
	struct km_api *api;
	struct km_rpc_call *call; /* a reference is held */
	char *target;             /* NULL: every recovery */
	struct km_list node;      /* in api->rwatchers, under rw_mu */
	bool live;                /* under rw_mu: sending as events come */
	bool dead;                /* under rw_mu: finished */
	int64_t replay_seq;       /* the last sequence sent */
	struct km_recovery_event **pending; /* under rw_mu, in order */
	size_t n_pending;
};

static bool wants(const struct rwatcher *w, const struct km_recovery_event *e)
{
	return !w->target || (e->r.target && !strcmp(w->target, e->r.target));
}

static bool send_recovery_event(struct rwatcher *w,
				const struct km_recovery_event *e)
{
	Kubemedic__V1__RecoveryEvent *pb;
	struct km_arena a;
	bool ok = false;

	km_arena_init(&a, 2048);
	pb = KM_ARENA_NEW(&a, Kubemedic__V1__RecoveryEvent,
			  KUBEMEDIC__V1__RECOVERY_EVENT__INIT);
	if (pb) {
		pb->sequence = e->seq;
		pb->recovery = recovery_to_pb(&e->r, &a);
		pb->time = km_pb_timestamp(&a, e->at_us);
	}
	if (pb && pb->recovery && pb->time)
		ok = km_rpc_stream_send(w->call, &pb->base) == 0;
	km_arena_free(&a);
	if (ok)
		w->replay_seq = e->seq;
	return ok;
}

static void drop_pending(struct rwatcher *w)
{
	for (size_t i = 0; i < w->n_pending; i++)
		free(w->pending[i]);
	free(w->pending);
	w->pending = NULL;
	w->n_pending = 0;
}

/* The writer's thread: a committed event, to every stream that wants it. */
void km_api_recovery_event(void *arg, const struct km_recovery_event *e)
{
	struct km_api *api = arg;
	struct km_list *x;

	pthread_mutex_lock(&api->rw_mu);
	km_list_for_each (x, &api->rwatchers) {
		struct rwatcher *w = km_list_entry(x, struct rwatcher, node);
		struct km_recovery_event **v, *copy;
		char msg[160];

		if (w->dead || !wants(w, e))
			continue;
		if (w->live) {
			if (!send_recovery_event(w, e))
				w->dead = true; /* the stream is ending */
			continue;
		}
		if (w->n_pending == PENDING_MAX ||
		    !(copy = km_recovery_event_dup(e)) ||
		    !(v = realloc(w->pending,
				  (w->n_pending + 1) * sizeof *v))) {
			if (w->n_pending < PENDING_MAX && copy)
				free(copy);
			snprintf(msg, sizeof msg,
				 "too many recovery events arrived during the "
				 "replay; resume with since_sequence %lld",
				 (long long)w->replay_seq);
			km_rpc_stream_finish(w->call, KM_EFULL, msg);
			w->dead = true;
			drop_pending(w);
			continue;
		}
		w->pending = v;
		w->pending[w->n_pending++] = copy;
	}
	pthread_mutex_unlock(&api->rw_mu);
}

static void rwatch_done(void *arg, struct km_rpc_call *c)
{
	struct rwatcher *w = arg;

	pthread_mutex_lock(&w->api->rw_mu);
	km_list_del(&w->node);
	drop_pending(w);
	pthread_mutex_unlock(&w->api->rw_mu);
	km_rpc_call_on_drain(c, NULL, NULL);
	km_rpc_call_unref(c);
	free(w->target);
	free(w);
}

/* The replay's end: what was kept and not replayed, then live. */
static void replay_done(struct rwatcher *w)
{
	km_rpc_call_on_drain(w->call, NULL, NULL);
	pthread_mutex_lock(&w->api->rw_mu);
	for (size_t i = 0; i < w->n_pending && !w->dead; i++)
		if (w->pending[i]->seq > w->replay_seq &&
		    !send_recovery_event(w, w->pending[i]))
			w->dead = true;
	drop_pending(w);
	w->live = !w->dead;
	pthread_mutex_unlock(&w->api->rw_mu);
}

static void rwatch_page(void *arg, struct km_rpc_call *c)
{
	struct rwatcher *w = arg;
	struct api_worker *wk = km_rpc_call_worker_data(c);
	struct km_recovery_event *v;
	struct km_error err = {0};
	struct km_arena a;
	size_t n;
	bool more;

	km_arena_init(&a, 65536);
	km_reader_set_deadline(wk->reader, 0);
	if (km_reader_recovery_events_after(wk->reader, w->replay_seq,
					    w->target, REPLAY_PAGE, &a, &v, &n,
					    &more, &err)) {
		km_rpc_stream_finish(c, err.code, err.msg);
		km_arena_free(&a);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!send_recovery_event(w, &v[i])) {
			km_arena_free(&a);
			return; /* the stream is over or ending */
		}
	km_arena_free(&a);
	if (!more || !n)
		replay_done(w);
}

int km_api_watch_recoveries(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
			    struct km_error *err)
{
	const Kubemedic__V1__WatchRecoveriesRequest *r = (const void *)req;
	struct km_api *api = API_OF(ctx);
	struct rwatcher *w;
	struct km_target_name tn;
	char why[256];

	if (r->since_sequence < 0)
		return km_error_set(err, KM_EINVAL,
				    "since_sequence: must be 0 (only new "
				    "events) or a sequence received before");
	if (r->from_oldest && r->since_sequence)
		return km_error_set(err, KM_EINVAL,
				    "from_oldest: replays everything stored; "
				    "since_sequence must then be 0");
	if (r->target && *r->target &&
	    km_target_name_parse(r->target, &tn, why, sizeof why))
		return km_error_set(err, KM_EINVAL, "target: %s", why);
	w = calloc(1, sizeof *w);
	if (!w ||
	    (r->target && *r->target && !(w->target = strdup(r->target)))) {
		free(w);
		return API_OOM(err);
	}
	w->api = api;
	w->call = ctx->call;
	w->replay_seq = r->since_sequence;
	w->live = r->since_sequence == 0 && !r->from_oldest;
	km_rpc_call_ref(w->call);
	pthread_mutex_lock(&api->rw_mu);
	km_list_add_tail(&api->rwatchers, &w->node);
	pthread_mutex_unlock(&api->rw_mu);
	if (!w->live) {
		km_rpc_call_on_drain(w->call, rwatch_page, w);
		rwatch_page(w, w->call);
	}
	/* Last: if the call is over already, rwatch_done runs here. */
	km_rpc_call_on_done(w->call, rwatch_done, w);
	return 0;
}

/* ---- storms ----------------------------------------------------------------- */

static Kubemedic__V1__Storm *storm_to_pb(const struct km_storm *m,
					 struct km_arena *a)
{
	Kubemedic__V1__Storm *pb = KM_ARENA_NEW(a, Kubemedic__V1__Storm,
						KUBEMEDIC__V1__STORM__INIT);
	char id[24] = "";

	if (!pb)
		return NULL;
	if (m->id > 0)
		snprintf(id, sizeof id, "%" PRId64, m->id);
	pb->id = km_arena_strdup(a, id);
	pb->group = (Kubemedic__V1__StormGroup)m->group;
	pb->name = (char *)(m->name ? m->name : "");
	pb->cluster = (char *)(m->cluster ? m->cluster : "");
	pb->active = m->ended_us == 0;
	pb->unhealthy = m->unhealthy;
	pb->total = m->total;
	pb->share_percent = m->share_pct;
	pb->why = (char *)(m->why ? m->why : "");
	pb->refused = m->refused;
	pb->start_time = km_pb_timestamp(a, m->started_us);
	if (m->ended_us)
		pb->end_time = km_pb_timestamp(a, m->ended_us);
	pb->end_note = (char *)(m->end_note ? m->end_note : "");
	if (!pb->id || !pb->start_time || (m->ended_us && !pb->end_time))
		return NULL;
	return pb;
}

static bool same_group(const struct km_storm *a, const struct km_storm *b)
{
	return a->group == b->group && !strcmp(a->name, b->name) &&
	       !strcmp(a->cluster, b->cluster);
}

/* The storms on in the engine's memory (its refusals counted so far),
 * matched to the page's rows on; those not yet written (their record in
 * flight) are added to the first page. */
static int merge_live(struct km_rpc_ctx *ctx, const struct km_storm_query *sq,
		      bool first, struct km_storm **v, size_t *n,
		      struct km_error *err)
{
	struct km_api *api = API_OF(ctx);
	struct km_storm live[64], *all;
	size_t n_live, extra = 0;

	if (!api->recovery)
		return 0;
	n_live = km_storms_on(km_recovery_storms(api->recovery), live,
			      sizeof live / sizeof live[0], ctx->arena);
	if (n_live > sizeof live / sizeof live[0])
		n_live = sizeof live / sizeof live[0];
	if (!n_live)
		return 0;
	all = km_arena_calloc(ctx->arena, *n + n_live + 1, sizeof *all);
	if (!all)
		return API_OOM(err);
	for (size_t l = 0; l < n_live; l++) {
		bool found = false;

		for (size_t i = 0; i < *n; i++)
			if (!(*v)[i].ended_us &&
			    same_group(&(*v)[i], &live[l])) {
				(*v)[i].refused = live[l].refused;
				found = true;
			}
		if (!found && first &&
		    (!sq->cluster || !strcmp(sq->cluster, live[l].cluster)) &&
		    (!sq->to_us || live[l].started_us < sq->to_us))
			all[extra++] = live[l];
	}
	memcpy(all + extra, *v, *n * sizeof *all);
	*v = all;
	*n += extra;
	return 0;
}

API_HANDLER(km_api_list_storms)
{
	const Kubemedic__V1__ListStormsRequest *q = (const void *)req;
	Kubemedic__V1__ListStormsResponse *out;
	struct km_storm_query sq = {.on_only = q->active_only};
	struct km_storm *v;
	struct api_cursor cur;
	bool has_cur, more;
	uint64_t hash;
	size_t n, limit;
	int rc;

	rc = km_api_page_size(q->page_size, LIST_MAX, &limit, err);
	if (!rc)
		rc = km_api_time_bound(q->start_time, 0, "start_time",
				       &sq.from_us, err);
	if (!rc)
		rc = km_api_time_bound(q->end_time, 0, "end_time", &sq.to_us,
				       err);
	if (!rc)
		rc = cluster_filter(q->cluster, &sq.cluster, err);
	if (rc)
		return rc;
	if (sq.from_us && sq.to_us && sq.to_us <= sq.from_us)
		return km_error_set(err, KM_EINVAL,
				    "end_time: must be after start_time");
	hash = km_hash_i64(KM_HASH_INIT, q->active_only);
	hash = km_hash_field(hash, q->cluster);
	hash = km_hash_i64(hash, sq.from_us);
	hash = km_hash_i64(hash, sq.to_us);
	rc = km_api_token_decode(q->page_token, hash, ctx->arena, &cur,
				 &has_cur, err);
	if (rc)
		return rc;
	sq.before_id = has_cur ? cur.a : 0;
	sq.limit = limit;
	rc = km_reader_list_storms(km_api_reader(ctx), &sq, ctx->arena, &v, &n,
				   &more, err);
	if (rc)
		return rc;
	if ((rc = merge_live(ctx, &sq, !has_cur, &v, &n, err)))
		return rc;
	out = KM_ARENA_NEW(ctx->arena, Kubemedic__V1__ListStormsResponse,
			   KUBEMEDIC__V1__LIST_STORMS_RESPONSE__INIT);
	if (!out || !(out->storms = km_arena_calloc(ctx->arena, n ? n : 1,
						    sizeof *out->storms)))
		return API_OOM(err);
	for (size_t i = 0; i < n; i++)
		if (!(out->storms[i] = storm_to_pb(&v[i], ctx->arena)))
			return API_OOM(err);
	out->n_storms = n;
	if (more) {
		/* The last row is the page's last stored one (the live storms
		 * merge_live adds come first): the next page starts there. */
		struct api_cursor next = {.a = v[n - 1].id};

		out->next_page_token =
			km_api_token_encode(ctx->arena, hash, &next);
		if (!out->next_page_token)
			return API_OOM(err);
	}
	*resp = &out->base;
	return 0;
}

/* ---- policies ---------------------------------------------------------------- */

static char **strs_to_pb(const char *const *v, size_t n, struct km_arena *a)
{
	char **out = km_arena_calloc(a, n ? n : 1, sizeof *out);

	for (size_t i = 0; out && i < n; i++)
		out[i] = (char *)v[i];
	return out;
}

static Kubemedic__V1__Policy *policy_to_pb(const struct km_policy_config *c,
					   struct km_arena *a)
{
	Kubemedic__V1__Policy *pb = KM_ARENA_NEW(a, Kubemedic__V1__Policy,
						 KUBEMEDIC__V1__POLICY__INIT);
	size_t nk = 0;

	if (!pb)
		return NULL;
	pb->name = (char *)c->name;
	pb->clusters = strs_to_pb(c->clusters, c->n_clusters, a);
	pb->n_clusters = c->n_clusters;
	pb->kinds = km_arena_calloc(a, KM_KIND_MAX + 1, sizeof *pb->kinds);
	for (int k = 1; pb->kinds && k <= KM_KIND_MAX; k++)
		if (c->kinds & (1u << k))
			pb->kinds[nk++] = (Kubemedic__V1__TargetKind)k;
	pb->n_kinds = nk;
	pb->namespaces = strs_to_pb(c->namespaces, c->n_namespaces, a);
	pb->n_namespaces = c->n_namespaces;
	pb->label_selector =
		(char *)(c->label_selector ? c->label_selector : "");
	pb->unhealthy_for_ms = c->unhealthy_for_ms;
	pb->reasons = strs_to_pb(c->reasons, c->n_reasons, a);
	pb->n_reasons = c->n_reasons;
	pb->ladder = km_arena_calloc(a, c->n_ladder ? c->n_ladder : 1,
				     sizeof *pb->ladder);
	for (size_t i = 0; pb->ladder && i < c->n_ladder; i++)
		pb->ladder[i] = (Kubemedic__V1__RecoveryAction)c->ladder[i];
	pb->n_ladder = c->n_ladder;
	pb->escalate_after = c->escalate_after;
	pb->max_attempts = c->max_attempts;
	pb->backoff_initial_ms = c->backoff.initial_ms;
	pb->backoff_max_ms = c->backoff.max_ms;
	pb->backoff_reset_after_ms = c->backoff.reset_after_ms;
	if (!pb->clusters || !pb->kinds || !pb->namespaces || !pb->reasons ||
	    !pb->ladder)
		return NULL;
	return pb;
}

API_HANDLER(km_api_list_policies)
{
	struct km_api *api = API_OF(ctx);
	Kubemedic__V1__ListPoliciesResponse *out;
	const struct km_policy_config *c = NULL;
	size_t n = 0;

	(void)req;
	if (api->recovery)
		c = km_recovery_policies(api->recovery, &n);
	out = KM_ARENA_NEW(ctx->arena, Kubemedic__V1__ListPoliciesResponse,
			   KUBEMEDIC__V1__LIST_POLICIES_RESPONSE__INIT);
	if (!out || !(out->policies = km_arena_calloc(ctx->arena, n ? n : 1,
						      sizeof *out->policies)))
		return API_OOM(err);
	for (size_t i = 0; i < n; i++)
		if (!(out->policies[i] = policy_to_pb(&c[i], ctx->arena)))
			return API_OOM(err);
	out->n_policies = n;
	out->dry_run = api->recovery && km_recovery_dry_run(api->recovery);
	*resp = &out->base;
	return 0;
}
