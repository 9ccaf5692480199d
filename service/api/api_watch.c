/*
 * HealthService.WatchHealth: transitions as they happen, with resume.
 *
 * Each stream is a subscriber of the health hub, which hands it every
 * committed transition, in sequence order, on the hub's thread. A stream
 * that asks for a replay (since_sequence, or from_oldest) subscribes
 * paused: the hub keeps what arrives in the stream's queue while the
 * stored transitions after since_sequence, up to the sequence the
 * subscription started at, are read from the database one page at a time
 * (the next page when the stream's send queue has drained, so a slow
 * client slows the replay instead of flooding memory). Then one event
 * marks the end of the replay and the subscription is resumed: every
 * transition exactly once, in sequence order, with no gap between the
 * stored and the live ones.
 *
 * Overload: a client that reads too slowly fills the stream's send queue
 * and km_rpc ends the stream with RESOURCE_EXHAUSTED; a replay so long
 * that the hub's queue for it overflows ends it the same way. Either way
 * the client resumes from the last sequence it received.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

#define REPLAY_PAGE 256

struct event_watcher {
	struct km_api *api;
	struct km_rpc_call *call; /* a reference is held */
	struct km_arena arena;    /* the filters */
	int kind;
	const char *cluster;                 /* NULL = any */
	const char *ns, *node, *owner, *uid; /* the target's; NULL = any */
	struct km_selector *sel;             /* NULL = any */
	const char **targets;
	size_t n_targets;
	struct km_health_sub *sub;
	/* The replay (the call's worker thread only). */
	int64_t replay_seq; /* the last stored one read */
	int64_t replay_end; /* where the subscription starts */
};

static bool same(const char *want, const char *have)
{
	return !want || !strcmp(want, have ? have : "");
}

/* Whether w wants t, whose target's identity is uid, owner and node (for
 * a live transition the hub's target; for a stored one, the target's row
 * as it is now). */
static bool matches(const struct event_watcher *w,
		    const struct km_transition *t, const char *uid,
		    const char *owner, const char *node)
{
	struct km_target_name tn;
	char why[128];

	if (!t->target_name ||
	    km_target_name_parse(t->target_name, &tn, why, sizeof why))
		return false;
	if (w->kind && tn.kind != w->kind)
		return false;
	if (w->cluster &&
	    (tn.cluster_len != strlen(w->cluster) ||
	     memcmp(tn.cluster ? tn.cluster : "", w->cluster, tn.cluster_len)))
		return false;
	if (w->ns &&
	    (tn.ns_len != strlen(w->ns) || memcmp(tn.ns, w->ns, tn.ns_len)))
		return false;
	if (!same(w->node, node) || !same(w->owner, owner) ||
	    !same(w->uid, uid))
		return false;
	if (w->n_targets) {
		bool found = false;

		for (size_t i = 0; i < w->n_targets && !found; i++)
			found = !strcmp(w->targets[i], t->target_name);
		if (!found)
			return false;
	}
	return !w->sel || km_selector_matches(w->sel, t->labels, t->n_labels);
}

/* Sends the event for t and target (everything in a short-lived arena).
 * False if the stream could not take it (it is over, or ending). */
static bool send_event(struct event_watcher *w, const struct km_transition *t,
		       const struct km_target *target)
{
	Kubemedic__V1__HealthEvent *e;
	struct km_arena a;
	bool ok = false;

	km_arena_init(&a, 4096);
	e = KM_ARENA_NEW(&a, Kubemedic__V1__HealthEvent,
			 KUBEMEDIC__V1__HEALTH_EVENT__INIT);
	if (e) {
		e->transition = km_api_transition_to_pb(t, t->target_name, &a);
		e->target = km_api_target_to_pb(target, &a);
	}
	if (e && e->transition && e->target) {
		/* state_since is unknown for a target the hub no longer
		 * has, when only its flapping flag changed. */
		if (!target->state_since_us)
			e->target->state_since = NULL;
		ok = km_rpc_stream_send(w->call, &e->base) == 0;
	}
	km_arena_free(&a);
	return ok;
}

/* A stored transition as an event: the target as the transition leaves
 * it, from what the row holds (name, labels). */
static bool send_stored(struct event_watcher *w, const struct km_transition *t)
{
	struct km_target_name tn;
	struct km_target target = {0};
	struct km_arena a;
	char why[128];
	bool ok;

	if (km_target_name_parse(t->target_name, &tn, why, sizeof why))
		return true; /* not a target name: nothing to show */
	km_arena_init(&a, 1024);
	target.id = t->target_id;
	target.name = t->target_name;
	target.cluster = km_arena_strndup(&a, tn.cluster ? tn.cluster : "",
					  tn.cluster_len);
	target.kind = tn.kind;
	target.ns = km_arena_strndup(&a, tn.ns, tn.ns_len);
	target.object_name = km_arena_strndup(&a, tn.name, tn.name_len);
	target.labels = (struct km_kv *)t->labels;
	target.n_labels = t->n_labels;
	target.uid = t->target_uid;
	target.owner = t->target_owner;
	target.node = t->target_node;
	target.state = t->to_state;
	target.flapping = t->flapping;
	target.last_transition_seq = t->seq;
	/* state_since is known only when the state itself changed. */
	target.state_since_us = t->from_state != t->to_state ? t->at_us : 0;
	ok = target.cluster && target.ns && target.object_name &&
	     send_event(w, t, &target);
	km_arena_free(&a);
	return ok;
}

/* The hub's thread: a live transition. */
static void deliver(void *arg, const struct km_health_event *ev)
{
	struct event_watcher *w = arg;

	if (matches(w, ev->t, ev->target->uid, ev->target->owner,
		    ev->target->node))
		send_event(w, ev->t, ev->target);
	/* A failed send ends the stream; on_done then unsubscribes. */
}

/* The hub's thread: the stream's queue in the hub overflowed. */
static void overflow(void *arg, int64_t last_seq)
{
	struct event_watcher *w = arg;
	char msg[200];

	snprintf(msg, sizeof msg,
		 "too many transitions arrived while this stream was behind; "
		 "resume with since_sequence %lld",
		 (long long)last_seq);
	km_rpc_stream_finish(w->call, KM_EFULL, msg);
}

static void watcher_free(struct event_watcher *w)
{
	km_arena_free(&w->arena);
	free(w);
}

static void watch_done(void *arg, struct km_rpc_call *c)
{
	struct event_watcher *w = arg;

	/* After this, the hub is not in deliver or overflow for w. */
	km_health_unsubscribe(w->sub);
	km_rpc_call_on_drain(c, NULL, NULL);
	km_rpc_call_unref(c);
	watcher_free(w);
}

/* Ends the replay: the marker, then live transitions from the hub. */
static void finish_replay(struct event_watcher *w)
{
	Kubemedic__V1__HealthEvent e = KUBEMEDIC__V1__HEALTH_EVENT__INIT;

	km_rpc_call_on_drain(w->call, NULL, NULL);
	e.replay_end = true;
	e.sequence = w->replay_end;
	if (km_rpc_stream_send(w->call, &e.base) == 0)
		km_health_resume(w->sub);
}

/* Sends the next page of stored transitions; on the call's worker thread
 * (at the start, then on each drain of its send queue). */
static void replay_page(void *arg, struct km_rpc_call *c)
{
	struct event_watcher *w = arg;
	struct api_worker *wk = km_rpc_call_worker_data(c);
	struct km_error err = {0};
	struct km_arena a;
	bool more = true, sent = false;

	km_arena_init(&a, 65536);
	/* Pages that match nothing are skipped until something is sent (or
	 * the end): only a send brings the next drain. */
	while (more && !sent) {
		struct km_transition *v;
		size_t n;

		km_reader_set_deadline(wk->reader, 0);
		if (km_reader_transitions_after(wk->reader, w->replay_seq,
						REPLAY_PAGE, &a, &v, &n, &more,
						&err)) {
			km_rpc_stream_finish(c, err.code, err.msg);
			km_arena_free(&a);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			/* Past the subscription's start the hub has them. */
			if (v[i].seq > w->replay_end) {
				more = false;
				break;
			}
			w->replay_seq = v[i].seq;
			if (!matches(w, &v[i], v[i].target_uid,
				     v[i].target_owner, v[i].target_node))
				continue;
			if (!send_stored(w, &v[i])) {
				km_arena_free(&a);
				return; /* the stream is over or ending */
			}
			sent = true;
		}
		km_arena_reset(&a);
	}
	km_arena_free(&a);
	if (!more)
		finish_replay(w);
}

/* The request's filters into w. */
static int parse_filters(struct event_watcher *w,
			 const Kubemedic__V1__WatchHealthRequest *r,
			 struct km_error *err)
{
	int rc;

	rc = km_api_check_selector(w->api, "label_selector", r->label_selector,
				   err);
	if (!rc)
		rc = km_api_check_targets(w->api, "targets", r->n_targets, err);
	if (!rc)
		rc = km_api_check_identity(r->namespace_, r->node, r->owner,
					   r->uid, err);
	if (rc)
		return rc;
	w->kind = r->kind;
	if (r->cluster && *r->cluster &&
	    !(w->cluster = km_arena_strdup(&w->arena, r->cluster)))
		return API_OOM(err);
	{
		const char *const in[] = {r->namespace_, r->node, r->owner,
					  r->uid};
		const char **out[] = {&w->ns, &w->node, &w->owner, &w->uid};

		for (size_t i = 0; i < 4; i++)
			if (in[i] && *in[i] &&
			    !(*out[i] = km_arena_strdup(&w->arena, in[i])))
				return API_OOM(err);
	}
	if (r->label_selector && *r->label_selector) {
		rc = km_api_parse_selector(r->label_selector, &w->arena,
					   &w->sel, err);
		if (rc)
			return rc;
	}
	if (!r->n_targets)
		return 0;
	w->targets =
		km_arena_calloc(&w->arena, r->n_targets, sizeof *w->targets);
	if (!w->targets)
		return API_OOM(err);
	for (size_t i = 0; i < r->n_targets; i++) {
		struct km_target_name tn;
		char why[256];

		if (km_target_name_parse(r->targets[i], &tn, why, sizeof why))
			return km_error_set(err, KM_EINVAL, "targets[%zu]: %s",
					    i, why);
		if (!(w->targets[i] =
			      km_arena_strdup(&w->arena, r->targets[i])))
			return API_OOM(err);
	}
	w->n_targets = r->n_targets;
	return 0;
}

/* Whether the database still holds every transition after since (and up
 * to start, the subscription's start). */
static int check_resume_point(struct km_rpc_ctx *ctx, int64_t since,
			      int64_t start, struct km_error *err)
{
	int64_t min_kept, max_ever;
	int rc;

	if (since > start)
		return km_error_set(err, KM_ERANGE,
				    "since_sequence %lld is beyond the last "
				    "transition (%lld): it comes from another "
				    "database",
				    (long long)since, (long long)start);
	if (since == start)
		return 0;
	rc = km_reader_transition_bounds(km_api_reader(ctx), &min_kept,
					 &max_ever, err);
	if (rc)
		return rc;
	if (min_kept == 0 || min_kept > since + 1)
		return km_error_set(err, KM_EPRECOND,
				    "transitions after %lld were removed by "
				    "retention (the oldest kept is %lld): read "
				    "the current state with ListTargets, then "
				    "watch from its sequence",
				    (long long)since, (long long)min_kept);
	return 0;
}

int km_api_watch_health(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
			struct km_error *err)
{
	const Kubemedic__V1__WatchHealthRequest *r = (const void *)req;
	struct km_api *api = API_OF(ctx);
	struct km_health_sub_options so = {
		.deliver = deliver,
		.overflow = overflow,
	};
	struct event_watcher *w;
	bool replay = r->since_sequence > 0 || r->from_oldest;
	int64_t start;
	int rc;

	if ((int)r->kind < 0 || (int)r->kind > KM_KIND_MAX)
		return km_error_set(err, KM_EINVAL,
				    "kind: unknown TargetKind value %d",
				    r->kind);
	if (r->since_sequence < 0)
		return km_error_set(err, KM_EINVAL,
				    "since_sequence: must be 0 (only new "
				    "transitions) or a sequence received "
				    "before");
	if (r->from_oldest && r->since_sequence)
		return km_error_set(err, KM_EINVAL,
				    "from_oldest: replays everything stored; "
				    "since_sequence must then be 0");
	w = calloc(1, sizeof *w);
	if (!w)
		return API_OOM(err);
	km_arena_init(&w->arena, 1024);
	w->api = api;
	w->call = ctx->call;
	rc = parse_filters(w, r, err);
	if (rc) {
		watcher_free(w);
		return rc;
	}

	/* Paused for a replay: what is published from now on waits in the
	 * stream's queue in the hub until the stored part is sent. */
	so.arg = w;
	so.paused = replay;
	rc = km_health_subscribe(api->health, &so, &w->sub, &start);
	if (rc) {
		watcher_free(w);
		return API_OOM(err);
	}
	if (r->since_sequence > 0)
		rc = check_resume_point(ctx, r->since_sequence, start, err);
	if (rc) {
		km_health_unsubscribe(w->sub);
		watcher_free(w);
		return rc;
	}
	w->replay_seq = r->since_sequence;
	w->replay_end = start;
	km_rpc_call_ref(w->call);
	if (replay) {
		km_rpc_call_on_drain(w->call, replay_page, w);
		replay_page(w, w->call);
	}
	/* Last: if the call is over already, watch_done runs (and frees w)
	 * right here. */
	km_rpc_call_on_done(w->call, watch_done, w);
	return 0;
}
