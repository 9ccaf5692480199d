/*
 * protobuf-c messages <-> km_model structs, for what the API answers
 * (targets, results, transitions) and the request fields every handler
 * checks the same way (time bounds, page sizes). Probe definitions convert
 * in probe/ (km_probe_from_pb), shared with the CLI.
 *
 * Outgoing strings are never NULL (protobuf-c needs "" for an empty proto3
 * string); everything is allocated in the call's arena.
 */
#include <string.h>

#include "api_internal.h"

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the Timestamp range. */
#define TS_MIN_SECONDS (-62135596800LL)
#define TS_MAX_SECONDS 253402300799LL

int km_api_time_bound(const Google__Protobuf__Timestamp *ts, int64_t dflt,
		      const char *field, int64_t *out, struct km_error *err)
{
	if (!ts) {
		*out = dflt;
		return 0;
	}
	if (ts->seconds < TS_MIN_SECONDS || ts->seconds > TS_MAX_SECONDS)
		return km_error_set(err, KM_EINVAL,
				    "%s: seconds %lld is outside 0001-01-01 .. "
				    "9999-12-31",
				    field, (long long)ts->seconds);
	if (ts->nanos < 0 || ts->nanos > 999999999)
		return km_error_set(err, KM_EINVAL,
				    "%s: nanos must be in 0..999999999, got %d",
				    field, ts->nanos);
	*out = ts->seconds * 1000000 + ts->nanos / 1000;
	return 0;
}

int km_api_page_size(int32_t requested, int32_t max, size_t *out,
		     struct km_error *err)
{
	if (requested < 0)
		return km_error_set(err, KM_EINVAL,
				    "page_size: must be 0 (default 100) or "
				    "positive, got %d",
				    requested);
	if (requested > max)
		return km_error_set(err, KM_EINVAL,
				    "page_size: at most %d per page, got %d",
				    max, requested);
	*out = requested ? (size_t)requested : (max < 100 ? (size_t)max : 100);
	return 0;
}

static const char *s_or_empty(const char *s)
{
	return s ? s : "";
}

/* ---- targets and history ------------------------------------------------- */

Kubemedic__V1__Target *km_api_target_to_pb(const struct km_target *t,
					   struct km_arena *a)
{
	Kubemedic__V1__Target *pb = KM_ARENA_NEW(a, Kubemedic__V1__Target,
						 KUBEMEDIC__V1__TARGET__INIT);

	if (!pb)
		return NULL;
	pb->name = (char *)t->name;
	pb->cluster = (char *)s_or_empty(t->cluster);
	pb->kind = (Kubemedic__V1__TargetKind)t->kind;
	pb->namespace_ = (char *)s_or_empty(t->ns);
	pb->object_name = (char *)s_or_empty(t->object_name);
	pb->uid = (char *)s_or_empty(t->uid);
	pb->owner = (char *)s_or_empty(t->owner);
	pb->node = (char *)s_or_empty(t->node);
	pb->state = (Kubemedic__V1__HealthState)t->state;
	pb->flapping = t->flapping;
	pb->sequence = t->last_transition_seq;
	pb->state_since = km_pb_timestamp(a, t->state_since_us);
	if (!pb->state_since)
		return NULL;
	if (t->n_labels) {
		pb->labels =
			km_arena_calloc(a, t->n_labels, sizeof *pb->labels);
		if (!pb->labels)
			return NULL;
		for (size_t i = 0; i < t->n_labels; i++) {
			Kubemedic__V1__Target__LabelsEntry *e = KM_ARENA_NEW(
				a, Kubemedic__V1__Target__LabelsEntry,
				KUBEMEDIC__V1__TARGET__LABELS_ENTRY__INIT);
			if (!e)
				return NULL;
			e->key = (char *)t->labels[i].key;
			e->value = (char *)t->labels[i].value;
			pb->labels[i] = e;
		}
		pb->n_labels = t->n_labels;
	}
	return pb;
}

Kubemedic__V1__ProbeResult *km_api_run_to_pb(const struct km_run_row *r,
					     const struct km_target *t,
					     struct km_arena *a)
{
	Kubemedic__V1__ProbeResult *pb =
		KM_ARENA_NEW(a, Kubemedic__V1__ProbeResult,
			     KUBEMEDIC__V1__PROBE_RESULT__INIT);

	if (!pb)
		return NULL;
	pb->id = r->id;
	pb->target = (char *)t->name;
	pb->probe = t->kind == KM_KIND_PROBE ? (char *)t->object_name : "";
	pb->start_time = km_pb_timestamp(a, r->first_us);
	pb->last_start_time = km_pb_timestamp(a, r->last_us);
	/* The store vouches for count >= 1. */
	pb->duration_us = r->count > 0 ? r->dur_sum_us / r->count : 0;
	pb->duration_min_us = r->dur_min_us;
	pb->duration_max_us = r->dur_max_us;
	pb->count = r->count;
	pb->success = r->success;
	pb->error_class = (Kubemedic__V1__ErrorClass)r->error_class;
	pb->status_code = r->status_code;
	pb->message = (char *)s_or_empty(r->last_message);
	pb->first_message = (char *)s_or_empty(r->first_message);
	return pb->start_time && pb->last_start_time ? pb : NULL;
}

Kubemedic__V1__ProbeResult *km_api_result_to_pb(const struct km_result *r,
						const struct km_target *t,
						struct km_arena *a)
{
	/* One result: a run of one. */
	const struct km_run_row run = {.id = r->id,
				       .target_id = r->target_id,
				       .success = r->success,
				       .error_class = r->error_class,
				       .status_code = r->status_code,
				       .first_us = r->started_us,
				       .last_us = r->started_us,
				       .count = 1,
				       .dur_min_us = r->duration_us,
				       .dur_max_us = r->duration_us,
				       .dur_sum_us = r->duration_us,
				       .first_message = r->message,
				       .last_message = r->message};

	return km_api_run_to_pb(&run, t, a);
}

Kubemedic__V1__Transition *
km_api_transition_to_pb(const struct km_transition *t, const char *target_name,
			struct km_arena *a)
{
	Kubemedic__V1__Transition *pb = KM_ARENA_NEW(
		a, Kubemedic__V1__Transition, KUBEMEDIC__V1__TRANSITION__INIT);

	if (!pb)
		return NULL;
	pb->sequence = t->seq;
	pb->target = (char *)s_or_empty(target_name);
	pb->time = km_pb_timestamp(a, t->at_us);
	pb->from_state = (Kubemedic__V1__HealthState)t->from_state;
	pb->to_state = (Kubemedic__V1__HealthState)t->to_state;
	pb->flapping = t->flapping;
	pb->cause = (char *)s_or_empty(t->cause);
	return pb->time ? pb : NULL;
}
