/*
 * kubemedic.v1.HealthService: current verdicts from the health hub's
 * memory (GetHealth, ListTargets), history through the worker's km_reader
 * (WAL: never blocked by the writer; every query bounded by the call's
 * deadline). WatchHealth is api_watch.c.
 */
#include <stdint.h>
#include <string.h>

#include "api_internal.h"
#include "km_hash.h"

#define MAX_PAGE 1000

/* A request's target name must be given and well formed. */
static int check_target_name(const char *name, struct km_error *err)
{
	struct km_target_name tn;
	char why[KM_ERROR_MSG_MAX - 16];

	if (!name || !*name)
		return km_error_set(err, KM_EINVAL,
				    "target: Required value "
				    "(e.g. \"probe//checkout-http\")");
	if (km_target_name_parse(name, &tn, why, sizeof why))
		return km_error_set(err, KM_EINVAL, "target: %s", why);
	return 0;
}

/* Parses and looks up a request's target; deleted targets are found too
 * when their history is asked for. */
static int find_target(struct km_rpc_ctx *ctx, const char *name,
		       bool with_deleted, struct km_target *t,
		       struct km_error *err)
{
	int rc = check_target_name(name, err);

	if (rc)
		return rc;
	return with_deleted ? km_reader_find_target(km_api_reader(ctx), name,
						    ctx->arena, t, err)
			    : km_reader_get_target(km_api_reader(ctx), name,
						   ctx->arena, t, err);
}

API_HANDLER(km_api_get_health)
{
	const Kubemedic__V1__GetHealthRequest *r = (const void *)req;
	Kubemedic__V1__TargetHealth *out;
	struct km_health_view h;
	int rc;

	rc = check_target_name(r->target, err);
	if (rc)
		return rc;
	/* Target, newest result, streak and last transition: one snapshot
	 * of the hub's memory. */
	rc = km_health_get(API_OF(ctx)->health, r->target, ctx->arena, &h, err);
	if (rc)
		return rc;

	out = KM_ARENA_NEW(ctx->arena, Kubemedic__V1__TargetHealth,
			   KUBEMEDIC__V1__TARGET_HEALTH__INIT);
	if (!out || !(out->target = km_api_target_to_pb(&h.target, ctx->arena)))
		return API_OOM(err);
	if (h.has_last) {
		if (h.private_output && h.last.message &&
		    !km_api_may_see_output(ctx, KM_PROBE_EXEC))
			h.last.message = km_api_hidden_output;
		out->last_result =
			km_api_result_to_pb(&h.last, &h.target, ctx->arena);
		if (!out->last_result)
			return API_OOM(err);
		out->consecutive = h.consecutive > INT32_MAX
					   ? INT32_MAX
					   : (int32_t)h.consecutive;
	}
	if (h.has_transition) {
		out->last_transition = km_api_transition_to_pb(
			&h.transition, h.target.name, ctx->arena);
		if (!out->last_transition)
			return API_OOM(err);
	}
	*resp = &out->base;
	return 0;
}

static bool match_labels(const struct km_kv *labels, size_t n, void *sel)
{
	return km_selector_matches(sel, labels, n);
}

API_HANDLER(km_api_list_targets)
{
	const Kubemedic__V1__ListTargetsRequest *r = (const void *)req;
	Kubemedic__V1__ListTargetsResponse *out;
	struct km_health_filter f = {0};
	struct km_selector *sel = NULL;
	struct api_cursor cur;
	struct km_target *v;
	size_t limit, n;
	bool more, has_cur;
	uint64_t hash;
	int64_t seq;
	int rc;

	if ((int)r->kind < 0 || (int)r->kind > KM_KIND_MAX)
		return km_error_set(err, KM_EINVAL,
				    "kind: unknown TargetKind value %d",
				    r->kind);
	if ((int)r->state < 0 || (int)r->state > KM_STATE_DEGRADED)
		return km_error_set(err, KM_EINVAL,
				    "state: unknown HealthState value %d",
				    r->state);
	rc = km_api_page_size(r->page_size, MAX_PAGE, &limit, err);
	if (!rc)
		rc = km_api_check_identity(r->namespace_, r->node, r->owner,
					   r->uid, err);
	if (rc)
		return rc;
	rc = km_api_check_selector(API_OF(ctx), "label_selector",
				   r->label_selector, err);
	if (rc)
		return rc;
	rc = km_selector_parse(r->label_selector, ctx->arena, &sel, err);
	if (rc) {
		if (!strstr(err->msg, "label_selector"))
			km_error_prefix(err, "label_selector");
		return rc;
	}
	hash = km_hash_i64(KM_HASH_INIT, r->kind);
	hash = km_hash_i64(hash, r->state);
	hash = km_hash_field(hash, r->label_selector);
	hash = km_hash_field(hash, r->cluster);
	hash = km_hash_field(hash, r->namespace_);
	hash = km_hash_field(hash, r->node);
	hash = km_hash_field(hash, r->owner);
	hash = km_hash_field(hash, r->uid);
	rc = km_api_token_decode(r->page_token, hash, ctx->arena, &cur,
				 &has_cur, err);
	if (rc)
		return rc;

	f.kind = r->kind;
	f.state = r->state;
	f.cluster = r->cluster && *r->cluster ? r->cluster : NULL;
	f.ns = r->namespace_ && *r->namespace_ ? r->namespace_ : NULL;
	f.node = r->node && *r->node ? r->node : NULL;
	f.owner = r->owner && *r->owner ? r->owner : NULL;
	f.uid = r->uid && *r->uid ? r->uid : NULL;
	if (!km_selector_empty(sel)) {
		f.match = match_labels;
		f.arg = sel;
	}
	rc = km_health_list(API_OF(ctx)->health, &f, has_cur ? cur.a : 0, limit,
			    ctx->arena, &v, &n, &more, &seq);
	if (rc)
		return km_error_set(err, rc, "listing targets: %s",
				    km_strerror(rc));

	out = KM_ARENA_NEW(ctx->arena, Kubemedic__V1__ListTargetsResponse,
			   KUBEMEDIC__V1__LIST_TARGETS_RESPONSE__INIT);
	if (!out)
		return API_OOM(err);
	out->sequence = seq;
	out->targets =
		km_arena_calloc(ctx->arena, n ? n : 1, sizeof *out->targets);
	if (!out->targets)
		return API_OOM(err);
	for (size_t i = 0; i < n; i++)
		if (!(out->targets[i] = km_api_target_to_pb(&v[i], ctx->arena)))
			return API_OOM(err);
	out->n_targets = n;
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

/* What QueryProbeHistory and QueryTransitions share: target, time range,
 * order, page size and the cursor from the token. */
struct history_req {
	const char *target;
	const Google__Protobuf__Timestamp *start, *end;
	int outcome;
	int order;
	int32_t page_size;
	const char *page_token;
};

static int prepare_history(struct km_rpc_ctx *ctx, const struct history_req *h,
			   struct km_target *t, struct km_history_query *q,
			   uint64_t *hash, struct km_error *err)
{
	struct api_cursor cur;
	bool has_cur;
	int rc;

	memset(q, 0, sizeof *q);
	if (h->order < 0 || h->order > 2)
		return km_error_set(err, KM_EINVAL,
				    "order: unknown Order value %d", h->order);
	if (h->outcome < 0 || h->outcome > 2)
		return km_error_set(err, KM_EINVAL,
				    "outcome: unknown Outcome value %d",
				    h->outcome);
	rc = km_api_time_bound(h->start, INT64_MIN, "start_time", &q->from_us,
			       err);
	if (!rc)
		rc = km_api_time_bound(h->end, INT64_MAX, "end_time", &q->to_us,
				       err);
	if (rc)
		return rc;
	if (q->from_us >= q->to_us)
		return km_error_set(err, KM_EINVAL,
				    "start_time: must be before end_time (the "
				    "range is [start_time, end_time))");
	rc = km_api_page_size(h->page_size, MAX_PAGE, &q->limit, err);
	if (rc)
		return rc;
	rc = find_target(ctx, h->target, true, t, err);
	if (rc)
		return rc;

	*hash = km_hash_field(KM_HASH_INIT, h->target);
	*hash = km_hash_i64(*hash, q->from_us);
	*hash = km_hash_i64(*hash, q->to_us);
	*hash = km_hash_i64(*hash, h->outcome);
	*hash = km_hash_i64(*hash, h->order);
	rc = km_api_token_decode(h->page_token, *hash, ctx->arena, &cur,
				 &has_cur, err);
	if (rc)
		return rc;
	q->target_id = t->id;
	q->outcome = h->outcome;
	q->oldest_first = h->order == KUBEMEDIC__V1__ORDER__ORDER_OLDEST_FIRST;
	q->has_cursor = has_cur;
	q->cursor_us = cur.a;
	q->cursor_id = cur.b;
	return 0;
}

/* Whether the caller may read the messages of t's results: a probe's
 * output of an exec or file probe is for admins, and so is that of a
 * probe whose definition is gone (what it was cannot be told). */
static bool output_visible(struct km_rpc_ctx *ctx, const struct km_target *t)
{
	struct km_probe p;

	if (t->kind != KM_KIND_PROBE ||
	    km_api_may_see_output(ctx, KM_PROBE_EXEC))
		return true;
	if (km_reader_get_probe(km_api_reader(ctx), t->object_name, ctx->arena,
				&p, NULL))
		return false;
	return km_api_may_see_output(ctx, p.type);
}

API_HANDLER(km_api_query_probe_history)
{
	const Kubemedic__V1__QueryProbeHistoryRequest *r = (const void *)req;
	struct history_req h = {r->target,    r->start_time, r->end_time,
				r->outcome,   r->order,      r->page_size,
				r->page_token};
	Kubemedic__V1__QueryProbeHistoryResponse *out;
	struct km_history_query q;
	struct km_target t;
	struct km_result *v;
	size_t n;
	bool more, hide;
	uint64_t hash;
	int rc;

	rc = prepare_history(ctx, &h, &t, &q, &hash, err);
	if (!rc)
		rc = km_reader_query_results(km_api_reader(ctx), &q, ctx->arena,
					     &v, &n, &more, err);
	if (rc)
		return rc;
	out = KM_ARENA_NEW(ctx->arena, Kubemedic__V1__QueryProbeHistoryResponse,
			   KUBEMEDIC__V1__QUERY_PROBE_HISTORY_RESPONSE__INIT);
	if (!out)
		return API_OOM(err);
	out->results =
		km_arena_calloc(ctx->arena, n ? n : 1, sizeof *out->results);
	if (!out->results)
		return API_OOM(err);
	hide = !output_visible(ctx, &t);
	for (size_t i = 0; i < n; i++) {
		if (hide && v[i].message)
			v[i].message = km_api_hidden_output;
		if (!(out->results[i] =
			      km_api_result_to_pb(&v[i], &t, ctx->arena)))
			return API_OOM(err);
	}
	out->n_results = n;
	if (more) {
		struct api_cursor next = {.a = v[n - 1].started_us,
					  .b = v[n - 1].id};

		out->next_page_token =
			km_api_token_encode(ctx->arena, hash, &next);
		if (!out->next_page_token)
			return API_OOM(err);
	}
	*resp = &out->base;
	return 0;
}

API_HANDLER(km_api_query_transitions)
{
	const Kubemedic__V1__QueryTransitionsRequest *r = (const void *)req;
	struct history_req h = {r->target, r->start_time, r->end_time,  0,
				r->order,  r->page_size,  r->page_token};
	Kubemedic__V1__QueryTransitionsResponse *out;
	struct km_history_query q;
	struct km_target t;
	struct km_transition *v;
	size_t n;
	bool more;
	uint64_t hash;
	int rc;

	rc = prepare_history(ctx, &h, &t, &q, &hash, err);
	if (!rc)
		rc = km_reader_query_transitions(
			km_api_reader(ctx), &q, ctx->arena, &v, &n, &more, err);
	if (rc)
		return rc;
	out = KM_ARENA_NEW(ctx->arena, Kubemedic__V1__QueryTransitionsResponse,
			   KUBEMEDIC__V1__QUERY_TRANSITIONS_RESPONSE__INIT);
	if (!out)
		return API_OOM(err);
	out->transitions = km_arena_calloc(ctx->arena, n ? n : 1,
					   sizeof *out->transitions);
	if (!out->transitions)
		return API_OOM(err);
	for (size_t i = 0; i < n; i++)
		if (!(out->transitions[i] = km_api_transition_to_pb(
			      &v[i], t.name, ctx->arena)))
			return API_OOM(err);
	out->n_transitions = n;
	if (more) {
		struct api_cursor next = {.a = v[n - 1].at_us,
					  .b = v[n - 1].seq};

		out->next_page_token =
			km_api_token_encode(ctx->arena, hash, &next);
		if (!out->next_page_token)
			return API_OOM(err);
	}
	*resp = &out->base;
	return 0;
}
