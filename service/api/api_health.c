/*
 * kubemedic.v1.HealthService: current verdicts from the health hub's
 * memory (GetHealth, ListTargets), history through the worker's km_reader
 * (WAL: never blocked by the writer; every query bounded by the call's
 * deadline): runs (QueryProbeHistory), transitions, and latency per step
 * from the rollups (QueryLatency). WatchHealth is api_watch.c.
 */
#include <stdint.h>
#include <string.h>

#include "api_internal.h"
#include "km_hash.h"
#include "km_time.h"

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
	rc = km_api_parse_selector(r->label_selector, ctx->arena, &sel, err);
	if (rc)
		return rc;
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
			   const char **cursor_s, uint64_t *hash,
			   struct km_error *err)
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
	*cursor_s = cur.s;
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

/* A history page's cursor in its token: (first_us, id), and the run's
 * source in the string — "" for a result's row (what tokens issued before
 * runs existed point at, so they stay good), RUN_TOKEN for a run's. */
#define RUN_TOKEN "r"

static int runs_cursor(const struct km_history_query *h, const char *s,
		       struct km_runs_query *q, struct km_error *err)
{
	memset(q, 0, sizeof *q);
	q->target_id = h->target_id;
	q->from_us = h->from_us;
	q->to_us = h->to_us;
	q->outcome = h->outcome;
	q->oldest_first = h->oldest_first;
	q->limit = h->limit;
	q->has_cursor = h->has_cursor;
	q->cursor_us = h->cursor_us;
	q->cursor_id = h->cursor_id;
	if (!h->has_cursor || !*s)
		q->cursor_src = KM_RUN_SRC_RESULT;
	else if (!strcmp(s, RUN_TOKEN))
		q->cursor_src = KM_RUN_SRC_RUN;
	else
		return km_error_set(err, KM_EINVAL,
				    "page_token: not a token this server "
				    "issued (pass next_page_token back "
				    "unchanged)");
	return 0;
}

API_HANDLER(km_api_query_probe_history)
{
	const Kubemedic__V1__QueryProbeHistoryRequest *r = (const void *)req;
	struct history_req h = {r->target,    r->start_time, r->end_time,
				r->outcome,   r->order,      r->page_size,
				r->page_token};
	Kubemedic__V1__QueryProbeHistoryResponse *out;
	struct km_history_query hq;
	struct km_runs_query q;
	struct km_target t;
	struct km_run_row *v;
	const char *cur_s;
	size_t n;
	bool more, hide;
	uint64_t hash;
	int rc;

	rc = prepare_history(ctx, &h, &t, &hq, &cur_s, &hash, err);
	if (!rc)
		rc = runs_cursor(&hq, cur_s, &q, err);
	if (!rc)
		rc = km_reader_query_runs(km_api_reader(ctx), &q, ctx->arena,
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
		if (hide && v[i].first_message)
			v[i].first_message = km_api_hidden_output;
		if (hide && v[i].last_message)
			v[i].last_message = km_api_hidden_output;
		if (!(out->results[i] =
			      km_api_run_to_pb(&v[i], &t, ctx->arena)))
			return API_OOM(err);
	}
	out->n_results = n;
	if (more) {
		struct api_cursor next = {
			.a = v[n - 1].first_us,
			.b = v[n - 1].id,
			.s = v[n - 1].src == KM_RUN_SRC_RUN ? RUN_TOKEN : ""};

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
	const char *cur_s;
	size_t n;
	bool more;
	uint64_t hash;
	int rc;

	rc = prepare_history(ctx, &h, &t, &q, &cur_s, &hash, err);
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

/* ---- QueryLatency ---------------------------------------------------- */

#define MAX_QUANTILES 16
/* The longest step: 100 years (its microseconds fit an int64 with room). */
#define MAX_STEP_SECONDS (100LL * 366 * 86400)

static const double default_quantiles[] = {0.5, 0.9, 0.99};

static int64_t floor_minute(int64_t us)
{
	int64_t m = us / KM_MINUTE_US;

	if (us % KM_MINUTE_US < 0)
		m--;
	return m * KM_MINUTE_US;
}

/* The request's range, step and quantiles, each checked with a message
 * that says what to send instead. */
static int latency_query(const Kubemedic__V1__QueryLatencyRequest *r,
			 struct km_rollup_query *q, const double **qs,
			 size_t *nq, struct km_error *err)
{
	int64_t start, span, steps;
	int rc;

	if (!r->start_time)
		return km_error_set(err, KM_EINVAL,
				    "start_time: Required value (the range "
				    "is [start_time, end_time); end_time "
				    "absent is now)");
	rc = km_api_time_bound(r->start_time, 0, "start_time", &start, err);
	if (!rc)
		rc = km_api_time_bound(r->end_time, km_now_us(), "end_time",
				       &q->to_us, err);
	if (rc)
		return rc;
	if (q->to_us <= start)
		return km_error_set(err, KM_EINVAL,
				    "end_time: must be after start_time (the "
				    "range is [start_time, end_time); "
				    "end_time absent is now)");
	if (r->step_seconds < 60 || r->step_seconds % 60 ||
	    r->step_seconds > MAX_STEP_SECONDS)
		return km_error_set(err, KM_EINVAL,
				    "step_seconds: must be a whole number of "
				    "minutes from 60 (1 minute) to %lld (100 "
				    "years), got %lld; e.g. 300 for 5-minute "
				    "steps",
				    MAX_STEP_SECONDS,
				    (long long)r->step_seconds);
	q->from_us = floor_minute(start);
	q->step_us = r->step_seconds * 1000000;
	span = q->to_us - q->from_us;
	steps = span / q->step_us + (span % q->step_us != 0);
	if (steps > KM_ROLLUP_STEPS_MAX)
		return km_error_set(
			err, KM_EINVAL,
			"step_seconds: %lld steps of %llds from "
			"start_time to end_time, more than %d: "
			"take a step of at least %llds, or a "
			"shorter range",
			(long long)steps, (long long)r->step_seconds,
			KM_ROLLUP_STEPS_MAX,
			(long long)((span / KM_ROLLUP_STEPS_MAX / KM_MINUTE_US +
				     1) *
				    60));
	if (r->n_quantiles > MAX_QUANTILES)
		return km_error_set(err, KM_EINVAL,
				    "quantiles: at most %d, got %zu",
				    MAX_QUANTILES, r->n_quantiles);
	for (size_t i = 0; i < r->n_quantiles; i++)
		if (!(r->quantiles[i] >= 0 && r->quantiles[i] <= 1))
			return km_error_set(err, KM_EINVAL,
					    "quantiles[%zu]: %g is not in "
					    "[0, 1] (0.99 is the 99th "
					    "percentile)",
					    i, r->quantiles[i]);
	*qs = r->n_quantiles ? r->quantiles : default_quantiles;
	*nq = r->n_quantiles
		      ? r->n_quantiles
		      : sizeof default_quantiles / sizeof default_quantiles[0];
	return 0;
}

static Kubemedic__V1__LatencyStep *
latency_step(const struct km_rollup_slot *slot, int64_t start_us,
	     const double *qs, size_t nq, struct km_arena *a)
{
	Kubemedic__V1__LatencyStep *pb =
		KM_ARENA_NEW(a, Kubemedic__V1__LatencyStep,
			     KUBEMEDIC__V1__LATENCY_STEP__INIT);

	if (!pb || !(pb->start_time = km_pb_timestamp(a, start_us)) ||
	    !(pb->quantile_us =
		      km_arena_calloc(a, nq, sizeof *pb->quantile_us)))
		return NULL;
	pb->count = slot->count;
	pb->failures = slot->failures;
	for (size_t i = 0; i < nq; i++)
		pb->quantile_us[i] = km_rollup_slot_quantile(slot, qs[i]);
	pb->n_quantile_us = nq;
	return pb;
}

API_HANDLER(km_api_query_latency)
{
	const Kubemedic__V1__QueryLatencyRequest *r = (const void *)req;
	Kubemedic__V1__QueryLatencyResponse *out;
	struct km_rollup_query q = {0};
	struct km_rollup_series s;
	struct km_target t;
	const double *qs = NULL;
	size_t nq = 0;
	int rc;

	rc = check_target_name(r->target, err);
	if (!rc)
		rc = latency_query(r, &q, &qs, &nq, err);
	if (!rc)
		rc = find_target(ctx, r->target, true, &t, err);
	if (rc)
		return rc;
	q.target_id = t.id;
	rc = km_reader_rollups(km_api_reader(ctx), &q, ctx->arena, &s, err);
	if (rc)
		return rc;
	out = KM_ARENA_NEW(ctx->arena, Kubemedic__V1__QueryLatencyResponse,
			   KUBEMEDIC__V1__QUERY_LATENCY_RESPONSE__INIT);
	if (!out ||
	    !(out->steps = km_arena_calloc(ctx->arena, s.n ? s.n : 1,
					   sizeof *out->steps)) ||
	    !(out->quantiles =
		      km_arena_memdup(ctx->arena, qs, nq * sizeof *qs)))
		return API_OOM(err);
	out->n_quantiles = nq;
	for (size_t i = 0; i < s.n; i++)
		if (!(out->steps[i] = latency_step(
			      &s.steps[i], q.from_us + (int64_t)i * q.step_us,
			      qs, nq, ctx->arena)))
			return API_OOM(err);
	out->n_steps = s.n;
	if (s.coarse_until_us != INT64_MIN &&
	    !(out->coarse_until_time =
		      km_pb_timestamp(ctx->arena, s.coarse_until_us)))
		return API_OOM(err);
	*resp = &out->base;
	return 0;
}
