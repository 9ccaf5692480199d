/*
 * kubemedic.v1.HealthService/GetAvailability: how long a target — or a
 * selection of live targets, added up — was up and down over a window,
 * its incidents, MTTR and MTBF, and what the recovery actions achieved.
 *
 * The numbers come from the stored transitions and recoveries
 * (km_reader_add_availability, storage/km_store.h), read in one snapshot
 * of the database and bounded by the call's deadline. A selection is
 * matched against the hub's live targets in memory (as ListTargets does),
 * then each match is read again from that snapshot by id.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "api_internal.h"
#include "km_time.h"

#define US 1000000LL
/* Most targets one selection adds up: each costs a few indexed queries
 * (a thousand are well within a call's default deadline). */
#define MAX_TARGETS 1000
#define DEFAULT_WINDOW_US (30 * 86400 * US)
/* Two years, a leap day included. */
#define MAX_WINDOW_DAYS 731
#define MAX_WINDOW_US (MAX_WINDOW_DAYS * 86400 * US)

/* The selection's match, counting: every live target that passes counts,
 * but only the first MAX_TARGETS are kept, so the hub copies no more than
 * that and the count is exact however wide the selection. */
struct counting {
	const struct km_selector *sel; /* NULL: labels do not matter */
	size_t matched;
};

static bool count_match(const struct km_kv *labels, size_t n, void *arg)
{
	struct counting *c = arg;

	if (c->sel && !km_selector_matches(c->sel, labels, n))
		return false;
	return ++c->matched <= MAX_TARGETS;
}

/* The window and its steps from the request: defaults, bounds. */
static int window_of(const Kubemedic__V1__GetAvailabilityRequest *r,
		     struct km_avail_query *q, struct km_error *err)
{
	int64_t now = km_now_us(), step_s = r->step_seconds, len;
	int rc;

	memset(q, 0, sizeof *q);
	q->now_us = now;
	rc = km_api_time_bound(r->end_time, now, "end_time", &q->to_us, err);
	if (!rc)
		rc = km_api_time_bound(r->start_time,
				       q->to_us - DEFAULT_WINDOW_US,
				       "start_time", &q->from_us, err);
	if (rc)
		return rc;
	if (q->from_us >= q->to_us)
		return km_error_set(err, KM_EINVAL,
				    "start_time: must be before end_time (the "
				    "window is [start_time, end_time))");
	len = q->to_us - q->from_us;
	if (len > MAX_WINDOW_US)
		return km_error_set(
			err, KM_EINVAL,
			"start_time: the window is %lld days long; "
			"at most %d (2 years): move start_time or "
			"end_time closer",
			(long long)((len + 86400 * US - 1) / (86400 * US)),
			MAX_WINDOW_DAYS);
	if (step_s < 0)
		return km_error_set(err, KM_EINVAL,
				    "step_seconds: must be 0 (no steps) or "
				    "positive, got %lld",
				    (long long)step_s);
	if (!step_s)
		return 0;
	/* A step longer than the window is one step (and its length cannot
	 * overflow in microseconds). */
	q->step_us = step_s > len / US + 1 ? (len / US + 1) * US : step_s * US;
	q->n_steps = (size_t)((len - 1) / q->step_us + 1);
	if (q->n_steps > KM_AVAIL_MAX_STEPS)
		return km_error_set(
			err, KM_EINVAL,
			"step_seconds: %lld makes %zu steps of "
			"the window; at most %d: take steps of at "
			"least %lld seconds",
			(long long)step_s, q->n_steps, KM_AVAIL_MAX_STEPS,
			(long long)((len - 1) / (KM_AVAIL_MAX_STEPS * US) + 1));
	return 0;
}

/* The live targets of the selection, at most MAX_TARGETS. */
static int select_targets(struct km_rpc_ctx *ctx,
			  const Kubemedic__V1__GetAvailabilityRequest *r,
			  struct km_target **v, size_t *n, struct km_error *err)
{
	struct km_health_filter f = {0};
	struct counting c = {0};
	struct km_selector *sel = NULL;
	bool more;
	int64_t seq;
	int rc;

	if ((int)r->kind < 0 || (int)r->kind > KM_KIND_MAX)
		return km_error_set(err, KM_EINVAL,
				    "kind: unknown TargetKind value %d",
				    r->kind);
	rc = km_api_check_selector(API_OF(ctx), "label_selector",
				   r->label_selector, err);
	if (rc)
		return rc;
	rc = km_api_parse_selector(r->label_selector, ctx->arena, &sel, err);
	if (rc)
		return rc;
	c.sel = km_selector_empty(sel) ? NULL : sel;
	f.kind = r->kind;
	f.cluster = r->cluster && *r->cluster ? r->cluster : NULL;
	f.match = count_match;
	f.arg = &c;
	rc = km_health_list(API_OF(ctx)->health, &f, 0, MAX_TARGETS, ctx->arena,
			    v, n, &more, &seq);
	if (rc)
		return km_error_set(err, rc, "listing targets: %s",
				    km_strerror(rc));
	/* FAILED_PRECONDITION, not INVALID_ARGUMENT: Kubernetes keeps
	 * BadRequest (gRPC's INVALID_ARGUMENT) for a request that can never
	 * succeed. This one is well formed and would be answered were the
	 * fleet smaller: it fails by the system's present state, which is
	 * gRPC's FAILED_PRECONDITION — and, as for it, a client must not
	 * retry it unchanged. */
	if (c.matched > MAX_TARGETS)
		return km_error_set(err, KM_EPRECOND,
				    "the selection matches %zu live targets; "
				    "at most %d are added up in one call: "
				    "narrow it (label_selector, kind, "
				    "cluster)",
				    c.matched, MAX_TARGETS);
	return 0;
}

/* Adds up the request's target(s) into acc, in one snapshot. */
static int add_up(struct km_rpc_ctx *ctx,
		  const Kubemedic__V1__GetAvailabilityRequest *r,
		  const struct km_avail_query *q, struct km_avail *acc,
		  struct km_error *err)
{
	struct km_reader *rd = km_api_reader(ctx);
	struct km_target *v = NULL, t;
	size_t n = 0;
	int rc;

	if (r->target && *r->target) {
		struct km_target_name tn;
		char why[KM_ERROR_MSG_MAX - 16];

		if (km_target_name_parse(r->target, &tn, why, sizeof why))
			return km_error_set(err, KM_EINVAL, "target: %s", why);
	} else {
		rc = select_targets(ctx, r, &v, &n, err);
		if (rc)
			return rc;
	}
	rc = km_reader_begin(rd, err);
	if (rc)
		return rc;
	if (!v) {
		/* Deleted targets too: their history stays. */
		rc = km_reader_find_target(rd, r->target, ctx->arena, &t, err);
		if (!rc)
			rc = km_reader_add_availability(rd, &t, q, acc, err);
	}
	for (size_t i = 0; !rc && i < n; i++) {
		rc = km_reader_get_target_by_id(rd, v[i].id, ctx->arena, &t,
						err);
		if (!rc)
			rc = km_reader_add_availability(rd, &t, q, acc, err);
	}
	km_reader_end(rd);
	return rc;
}

static int32_t clamp32(int64_t v)
{
	return v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

/* Microseconds as whole seconds, rounded to the nearest (v >= 0). */
static int64_t seconds(int64_t us)
{
	return (us + US / 2) / US;
}

static double percent(int64_t part, int64_t whole)
{
	return whole > 0 ? 100.0 * (double)part / (double)whole : NAN;
}

static int answer(struct km_rpc_ctx *ctx,
		  const Kubemedic__V1__GetAvailabilityRequest *r,
		  const struct km_avail_query *q, const struct km_avail *acc,
		  Kubemedic__V1__Availability **outp, struct km_error *err)
{
	struct km_arena *a = ctx->arena;
	Kubemedic__V1__Availability *out;
	int64_t down = acc->observed_us - acc->up_us;
	size_t n_actions = 0;

	out = KM_ARENA_NEW(a, Kubemedic__V1__Availability,
			   KUBEMEDIC__V1__AVAILABILITY__INIT);
	if (!out)
		return API_OOM(err);
	out->target = r->target && *r->target ? r->target : "";
	out->start_time = km_pb_timestamp(a, q->from_us);
	out->end_time = km_pb_timestamp(a, q->to_us);
	if (!out->start_time || !out->end_time)
		return API_OOM(err);
	out->uptime_percent = percent(acc->up_us, acc->observed_us);
	out->observed_seconds = seconds(acc->observed_us);
	out->downtime_seconds = seconds(down);
	out->incidents = clamp32(acc->incidents);
	out->open_incidents = clamp32(acc->open_incidents);
	out->targets = clamp32(acc->targets);
	out->results = acc->results;
	out->failed_results = acc->failed_results;
	out->success_percent =
		percent(acc->results - acc->failed_results, acc->results);
	if (acc->incidents > 0) {
		out->mttr_seconds = seconds(down / acc->incidents);
		out->mtbf_seconds = seconds(acc->up_us / acc->incidents);
	}

	out->actions = km_arena_calloc(a, KM_ACTION_MAX, sizeof *out->actions);
	if (!out->actions)
		return API_OOM(err);
	for (int i = 1; i <= KM_ACTION_MAX; i++) {
		const struct km_avail_action *x = &acc->actions[i];
		Kubemedic__V1__ActionEffect *e;

		if (!x->attempts)
			continue;
		e = KM_ARENA_NEW(a, Kubemedic__V1__ActionEffect,
				 KUBEMEDIC__V1__ACTION_EFFECT__INIT);
		if (!e)
			return API_OOM(err);
		e->action = (Kubemedic__V1__RecoveryAction)i;
		e->attempts = clamp32(x->attempts);
		e->verified = clamp32(x->verified);
		e->pending = clamp32(x->pending);
		out->actions[n_actions++] = e;
	}
	out->n_actions = n_actions;

	out->step_seconds = r->step_seconds;
	if (q->n_steps) {
		out->steps = km_arena_calloc(a, q->n_steps, sizeof *out->steps);
		if (!out->steps)
			return API_OOM(err);
		for (size_t i = 0; i < q->n_steps; i++) {
			Kubemedic__V1__AvailabilityStep *s = KM_ARENA_NEW(
				a, Kubemedic__V1__AvailabilityStep,
				KUBEMEDIC__V1__AVAILABILITY_STEP__INIT);

			if (!s ||
			    !(s->start_time = km_pb_timestamp(
				      a, q->from_us + (int64_t)i * q->step_us)))
				return API_OOM(err);
			s->uptime_percent = percent(acc->step_up_us[i],
						    acc->step_observed_us[i]);
			s->observed_seconds = seconds(acc->step_observed_us[i]);
			out->steps[i] = s;
		}
		out->n_steps = q->n_steps;
	}
	*outp = out;
	return 0;
}

API_HANDLER(km_api_get_availability)
{
	const Kubemedic__V1__GetAvailabilityRequest *r = (const void *)req;
	bool one = r->target && *r->target;
	bool selection = (r->label_selector && *r->label_selector) || r->kind ||
			 (r->cluster && *r->cluster);
	struct km_avail_query q;
	struct km_avail acc = {0};
	Kubemedic__V1__Availability *out = NULL;
	int rc;

	if (one && selection)
		return km_error_set(err, KM_EINVAL,
				    "target: give either a target or a "
				    "selection (label_selector, kind, "
				    "cluster), not both");
	if (!one && !selection)
		return km_error_set(err, KM_EINVAL,
				    "target: Required value: a target (e.g. "
				    "\"probe//checkout-http\") or a selection "
				    "(label_selector, kind, cluster)");
	rc = window_of(r, &q, err);
	if (rc)
		return rc;
	if (q.n_steps) {
		acc.step_up_us =
			km_arena_calloc(ctx->arena, q.n_steps, sizeof(int64_t));
		acc.step_observed_us =
			km_arena_calloc(ctx->arena, q.n_steps, sizeof(int64_t));
		if (!acc.step_up_us || !acc.step_observed_us)
			return API_OOM(err);
	}
	rc = add_up(ctx, r, &q, &acc, err);
	if (!rc)
		rc = answer(ctx, r, &q, &acc, &out, err);
	if (rc)
		return rc;
	*resp = &out->base;
	return 0;
}
