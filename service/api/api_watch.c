/*
 * HealthService.WatchHealth: transitions as they happen, with resume.
 *
 * A watcher first replays what the database holds after since_sequence,
 * one page at a time (the next page is read when the stream's send queue
 * has drained, so a slow client slows the replay instead of flooding
 * memory), then switches to live events. Live events arriving during the
 * replay wait in a bounded buffer and are sent after it, skipping those
 * the replay already sent: every transition exactly once, in sequence
 * order. Live events come from the store's on_transition, i.e. only after
 * their commit, so what a watcher is sent is always what a later replay
 * would show.
 *
 * Watchers live in api->event_watchers under api->mu, each holding a
 * reference on its call until the call is over (on_done).
 */
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "km_probe.h"

#define REPLAY_PAGE 256
#define LIVE_BUFFER_MAX 10000

struct buffered {
	struct km_transition *t; /* km_transition_dup */
	struct buffered *next;
};

struct event_watcher {
	struct km_api *api;
	struct km_rpc_call *call;
	struct km_arena arena;     /* the filters */
	int kind;
	const char *cluster;       /* NULL = any */
	struct km_selector *sel;   /* NULL = any */
	const char **targets;
	size_t n_targets;
	/* Under api->mu: */
	bool replaying;
	int64_t last_seq;          /* highest seq sent or skipped */
	struct buffered *buf, **buf_tail;
	size_t n_buf;
	/* Replay cursor (worker thread only). */
	int64_t replay_seq;
	struct event_watcher *next;
};

static bool matches(const struct event_watcher *w, const struct km_transition *t)
{
	struct km_target_name tn;
	char why[128];

	if (!t->target_name ||
	    km_target_name_parse(t->target_name, &tn, why, sizeof why))
		return false;
	if (w->kind && tn.kind != w->kind)
		return false;
	if (w->cluster && (tn.cluster_len != strlen(w->cluster) ||
			   memcmp(tn.cluster ? tn.cluster : "", w->cluster,
				  tn.cluster_len)))
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

/* The event for a transition; everything in the arena. */
static Kubemedic__V1__HealthEvent *event_of(struct km_arena *a,
					   const struct km_transition *t)
{
	Kubemedic__V1__HealthEvent *e = KM_ARENA_NEW(
		a, Kubemedic__V1__HealthEvent, KUBEMEDIC__V1__HEALTH_EVENT__INIT);
	struct km_target_name tn;
	struct km_target target = {0};
	char why[128];

	if (!e || km_target_name_parse(t->target_name, &tn, why, sizeof why))
		return NULL;
	target.name = t->target_name;
	target.cluster = km_arena_strndup(a, tn.cluster ? tn.cluster : "",
					  tn.cluster_len);
	target.kind = tn.kind;
	target.ns = km_arena_strndup(a, tn.ns, tn.ns_len);
	target.object_name = km_arena_strndup(a, tn.name, tn.name_len);
	target.labels = (struct km_kv *)t->labels;
	target.n_labels = t->n_labels;
	target.state = t->to_state;
	target.flapping = t->flapping;
	/* state_since is known only when the state itself changed. */
	target.state_since_us = t->from_state != t->to_state ? t->at_us : 0;
	if (!target.cluster || !target.ns || !target.object_name)
		return NULL;
	e->transition = api_transition_to_pb(t, t->target_name, a);
	e->target = api_target_to_pb(&target, a);
	if (!e->transition || !e->target)
		return NULL;
	if (!target.state_since_us)
		e->target->state_since = NULL;
	return e;
}

/* Sends t to w (any thread). False if the stream could not take it. */
static bool send_event(struct event_watcher *w, const struct km_transition *t)
{
	struct km_arena a;
	Kubemedic__V1__HealthEvent *e;
	bool ok;

	km_arena_init(&a, 4096);
	e = event_of(&a, t);
	ok = e && km_rpc_stream_send(w->call, &e->base) == 0;
	km_arena_free(&a);
	return ok;
}

static void free_buffer(struct event_watcher *w)
{
	struct buffered *b, *next;

	for (b = w->buf; b; b = next) {
		next = b->next;
		free(b->t);
		free(b);
	}
	w->buf = NULL;
	w->buf_tail = &w->buf;
	w->n_buf = 0;
}

static void watcher_free(struct event_watcher *w)
{
	free_buffer(w);
	km_arena_free(&w->arena);
	free(w);
}

static void watch_done(void *arg, struct km_rpc_call *c)
{
	struct event_watcher *w = arg, **pp;
	struct km_api *api = w->api;

	pthread_mutex_lock(&api->mu);
	for (pp = &api->event_watchers; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	pthread_mutex_unlock(&api->mu);
	km_rpc_call_on_drain(c, NULL, NULL);
	km_rpc_call_unref(c);
	watcher_free(w);
}

/* Ends the replay: buffered live events newer than what the replay sent
 * go out in order, then live events flow directly. */
static void finish_replay(struct event_watcher *w)
{
	struct km_api *api = w->api;

	km_rpc_call_on_drain(w->call, NULL, NULL);
	pthread_mutex_lock(&api->mu);
	if (w->replay_seq > w->last_seq)
		w->last_seq = w->replay_seq;
	for (struct buffered *b = w->buf; b; b = b->next) {
		if (b->t->seq <= w->last_seq)
			continue;
		if (!send_event(w, b->t))
			break;
		w->last_seq = b->t->seq;
	}
	free_buffer(w);
	w->replaying = false;
	pthread_mutex_unlock(&api->mu);
}

/* Sends the next page of stored transitions; on the call's worker thread. */
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
			w->replay_seq = v[i].seq;
			if (!matches(w, &v[i]))
				continue;
			if (!send_event(w, &v[i])) {
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

void api_watch_on_transition(struct km_api *api, const struct km_transition *t)
{
	pthread_mutex_lock(&api->mu);
	for (struct event_watcher *w = api->event_watchers; w; w = w->next) {
		if (t->seq <= w->last_seq || !matches(w, t))
			continue;
		if (w->replaying) {
			struct buffered *b;

			if (w->n_buf == LIVE_BUFFER_MAX) {
				km_rpc_stream_finish(
					w->call, KM_EFULL,
					"too many transitions arrived during "
					"the replay; resume from the last "
					"sequence received");
				continue;
			}
			b = malloc(sizeof *b);
			if (!b || !(b->t = km_transition_dup(t))) {
				free(b);
				km_rpc_stream_finish(w->call, KM_ENOMEM,
						     "out of memory");
				continue;
			}
			b->next = NULL;
			*w->buf_tail = b;
			w->buf_tail = &b->next;
			w->n_buf++;
			continue;
		}
		if (send_event(w, t))
			w->last_seq = t->seq;
	}
	pthread_mutex_unlock(&api->mu);
}

int api_watch_health(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
		     struct km_error *err)
{
	const Kubemedic__V1__WatchHealthRequest *r = (const void *)req;
	struct km_api *api = API_OF(ctx);
	struct event_watcher *w;
	int64_t min_kept, max_ever;
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
	w = calloc(1, sizeof *w);
	if (!w)
		return API_OOM(err);
	km_arena_init(&w->arena, 1024);
	w->api = api;
	w->call = ctx->call;
	w->kind = r->kind;
	w->buf_tail = &w->buf;
	if (r->cluster && *r->cluster)
		w->cluster = km_arena_strdup(&w->arena, r->cluster);
	if (r->label_selector && *r->label_selector) {
		rc = km_selector_parse(r->label_selector, &w->arena, &w->sel,
				       err);
		if (rc) {
			if (!strstr(err->msg, "label_selector"))
				km_error_prefix(err, "label_selector");
			watcher_free(w);
			return rc;
		}
	}
	if (r->n_targets) {
		w->targets = km_arena_calloc(&w->arena, r->n_targets,
					     sizeof *w->targets);
		for (size_t i = 0; w->targets && i < r->n_targets; i++) {
			struct km_target_name tn;
			char why[256];

			if (km_target_name_parse(r->targets[i], &tn, why,
						 sizeof why)) {
				km_error_set(err, KM_EINVAL, "targets[%zu]: %s",
					     i, why);
				watcher_free(w);
				return KM_EINVAL;
			}
			w->targets[i] = km_arena_strdup(&w->arena, r->targets[i]);
		}
		w->n_targets = r->n_targets;
	}

	/* Resuming is possible only if retention kept everything after the
	 * client's sequence. */
	if (r->since_sequence > 0) {
		rc = km_reader_transition_bounds(api_reader(ctx), &min_kept,
						 &max_ever, err);
		if (rc) {
			watcher_free(w);
			return rc;
		}
		if (r->since_sequence > max_ever) {
			km_error_set(err, KM_ERANGE,
				     "since_sequence %lld is beyond the last "
				     "transition (%lld): it comes from another "
				     "database",
				     (long long)r->since_sequence,
				     (long long)max_ever);
			watcher_free(w);
			return KM_ERANGE;
		}
		if (r->since_sequence < max_ever &&
		    (min_kept == 0 || min_kept > r->since_sequence + 1)) {
			km_error_set(err, KM_ERANGE,
				     "transitions after %lld were removed by "
				     "retention (the oldest kept is %lld): "
				     "read the current state with "
				     "ListTargets, then watch from 0",
				     (long long)r->since_sequence,
				     (long long)min_kept);
			watcher_free(w);
			return KM_ERANGE;
		}
	}

	km_rpc_call_ref(w->call);
	pthread_mutex_lock(&api->mu);
	w->replaying = r->since_sequence > 0;
	w->last_seq = r->since_sequence;
	w->replay_seq = r->since_sequence;
	w->next = api->event_watchers;
	api->event_watchers = w;
	pthread_mutex_unlock(&api->mu);
	km_rpc_call_on_done(w->call, watch_done, w);
	if (w->replaying) {
		km_rpc_call_on_drain(w->call, replay_page, w);
		replay_page(w, w->call);
	}
	return 0;
}
