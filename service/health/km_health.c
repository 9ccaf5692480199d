/*
 * The health hub (km_health.h): the ledgers, current health in memory, and
 * the announcement of committed transitions to subscribers.
 *
 * Reading guide. One mutex (h->mu) guards everything here: entries are
 * small and every holder is quick (an observation is a hash lookup, a
 * ledger step and two queue pushes into the store). An `entry` is one live
 * target, found by id (producers) or by name (readers) through two chained
 * hash tables, and in id order through `order` (ListTargets pages by id).
 *
 * Announcement. The store's writer calls km_health_committed after each
 * commit; it publishes the transition into the entry and appends an
 * `event` (the transition and the target as it is after it, one
 * allocation) to a ring of the last `window` events. Each subscriber is a
 * position in that ring: its queue is the events from its position on.
 * The hub's thread walks the subscribers and hands each its events,
 * without the lock (deliver may take its own), holding a reference on the
 * event meanwhile. h->current names the subscriber being handed something,
 * so km_health_unsubscribe can wait for it to finish.
 */
#include "km_health.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_hash.h"
#include "km_ledger.h"
#include "km_list.h"
#include "km_log.h"
#include "km_store.h"
#include "km_time.h"

#define DEFAULT_WINDOW 16384
/* Rows of history read at start-up to count a target's streak. */
#define LOAD_STREAK_CAP 1000
/* Events handed to one subscriber before the next one's turn. */
#define DELIVER_BATCH 64
/* A cause names at most this much of a failure's message. */
#define REASON_MAX 120

/* The fields an observation touches come first, within the first two
 * cache lines, which the prober prefetches when a check starts
 * (km_health_prefetch): at 10,000 observations a second, fetching an
 * entry from memory is most of what an observation costs. */
struct entry {
	int64_t id;
	int32_t success_threshold, failure_threshold;
	bool private_output;
	struct km_ledger lg;
	bool has_last;
	int64_t streak;
	struct km_result last; /* .message is msg */
	char *msg;             /* owned; NULL when empty */
	size_t msg_cap;

	char *name;               /* owned */
	struct km_target_name tn; /* points into name */
	struct km_arena meta;     /* labels and identity, from track */
	struct km_kv *labels;
	size_t n_labels;
	const char *uid, *owner, *node;

	/* Published: changed only by committed transitions. */
	int state;
	bool flapping;
	int64_t since_us;
	int64_t seq; /* of the last transition published */
	int64_t created_us;

	/* The last transition published. */
	bool has_tr;
	struct km_transition tr; /* .cause is cause */
	char *cause;             /* owned */

	struct entry *next_id, *next_name; /* hash chains */
};

struct event {
	int refs; /* the ring's and a delivery's */
	struct km_transition t;
	struct km_target target;
	struct km_arena arena; /* everything t and target point to */
};

struct table {
	struct entry **b;
	size_t n; /* buckets, a power of two */
};

struct km_health_sub {
	struct km_health *h;
	struct km_list node;
	struct km_health_sub_options o;
	uint64_t next_pos; /* the next event it is to be handed */
	int64_t last_seq;  /* the last sequence handed over */
	bool paused, dead, free_on_return;
};

struct km_health {
	struct km_health_options o;
	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* the hub's thread waits for events */
	pthread_cond_t idle_cv; /* unsubscribe waits for a delivery */
	pthread_t thread;
	bool thread_started, stopping;

	struct table by_id, by_name;
	struct entry **order; /* live entries in id order */
	size_t n_entries, order_cap;

	int64_t seq;         /* the newest published sequence */
	struct event **ring; /* window events; position p at p % cap */
	size_t ring_cap;
	uint64_t pos_first, pos_next;

	uint64_t epoch;      /* entries removed so far: validates hints */
	struct km_list subs; /* struct km_health_sub */
	struct km_health_sub *current; /* being handed an event */

	struct km_health_stats stats;
};

/* ---- tables ------------------------------------------------------------------ */

static uint64_t id_hash(int64_t id)
{
	return km_hash_i64(KM_HASH_INIT, id);
}

static uint64_t name_hash(const char *name)
{
	return km_hash_str(KM_HASH_INIT, name);
}

static struct entry *find_id(const struct km_health *h, int64_t id)
{
	struct entry *e = h->by_id.b[km_hash_bucket(id_hash(id), h->by_id.n)];

	while (e && e->id != id)
		e = e->next_id;
	return e;
}

static struct entry *find_name(const struct km_health *h, const char *name)
{
	struct entry *e =
		h->by_name.b[km_hash_bucket(name_hash(name), h->by_name.n)];

	while (e && strcmp(e->name, name))
		e = e->next_name;
	return e;
}

/* Doubles both tables once they hold as many entries as buckets. */
static int grow_tables(struct km_health *h)
{
	size_t n = h->by_id.n * 2;
	struct entry **bi = calloc(n, sizeof *bi), **bn = calloc(n, sizeof *bn);

	if (!bi || !bn) {
		free(bi);
		free(bn);
		return KM_ENOMEM;
	}
	for (size_t i = 0; i < h->n_entries; i++) {
		struct entry *e = h->order[i];
		size_t ki = km_hash_bucket(id_hash(e->id), n);
		size_t kn = km_hash_bucket(name_hash(e->name), n);

		e->next_id = bi[ki];
		bi[ki] = e;
		e->next_name = bn[kn];
		bn[kn] = e;
	}
	free(h->by_id.b);
	free(h->by_name.b);
	h->by_id = (struct table){bi, n};
	h->by_name = (struct table){bn, n};
	return 0;
}

/* The position in order of the first entry with an id above id. */
static size_t order_after(const struct km_health *h, int64_t id)
{
	size_t lo = 0, hi = h->n_entries;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->order[mid]->id <= id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int link_entry(struct km_health *h, struct entry *e)
{
	size_t at, ki, kn;

	if (h->n_entries == h->order_cap) {
		size_t cap = h->order_cap ? 2 * h->order_cap : 1024;
		struct entry **v = realloc(h->order, cap * sizeof *v);

		if (!v)
			return KM_ENOMEM;
		h->order = v;
		h->order_cap = cap;
	}
	if (h->n_entries >= h->by_id.n && grow_tables(h))
		return KM_ENOMEM;
	/* Ids come from the store in creation order, so this is almost
	 * always an append; a revived target keeps its old, lower id. */
	at = order_after(h, e->id);
	memmove(&h->order[at + 1], &h->order[at],
		(h->n_entries - at) * sizeof *h->order);
	h->order[at] = e;
	h->n_entries++;
	ki = km_hash_bucket(id_hash(e->id), h->by_id.n);
	kn = km_hash_bucket(name_hash(e->name), h->by_name.n);
	e->next_id = h->by_id.b[ki];
	h->by_id.b[ki] = e;
	e->next_name = h->by_name.b[kn];
	h->by_name.b[kn] = e;
	h->stats.targets = h->n_entries;
	return 0;
}

static void unlink_entry(struct km_health *h, struct entry *e)
{
	struct entry **pp;
	size_t at = order_after(h, e->id - 1);

	assert(at < h->n_entries && h->order[at] == e);
	memmove(&h->order[at], &h->order[at + 1],
		(h->n_entries - at - 1) * sizeof *h->order);
	h->n_entries--;
	for (pp = &h->by_id.b[km_hash_bucket(id_hash(e->id), h->by_id.n)];
	     *pp != e; pp = &(*pp)->next_id)
		assert(*pp);
	*pp = e->next_id;
	for (pp = &h->by_name
			   .b[km_hash_bucket(name_hash(e->name), h->by_name.n)];
	     *pp != e; pp = &(*pp)->next_name)
		assert(*pp);
	*pp = e->next_name;
	h->stats.targets = h->n_entries;
	/* Hints naming any entry may now point at freed memory. */
	h->epoch++;
}

static void free_entry(struct entry *e)
{
	if (!e)
		return;
	km_arena_free(&e->meta);
	free(e->msg);
	free(e->cause);
	free(e->name);
	free(e);
}

/* ---- entries ----------------------------------------------------------------- */

/* A new entry for name, not linked; NULL on out-of-memory or a name that
 * is not a target name. */
static struct entry *new_entry(int64_t id, const char *name)
{
	struct entry *e = calloc(1, sizeof *e);
	char why[256];

	if (!e)
		return NULL;
	km_arena_init(&e->meta, 256);
	e->id = id;
	e->name = strdup(name);
	if (!e->name ||
	    km_target_name_parse(e->name, &e->tn, why, sizeof why)) {
		free_entry(e);
		return NULL;
	}
	e->success_threshold = e->failure_threshold = 1;
	e->state = KM_STATE_UNKNOWN;
	return e;
}

/* Replaces labels and identity with copies of what t says. */
static int set_meta(struct entry *e, const struct km_kv *labels, size_t n,
		    const char *uid, const char *owner, const char *node)
{
	struct km_arena a;
	struct km_kv *kv = NULL;

	km_arena_init(&a, 256);
	if (n && !(kv = km_arena_calloc(&a, n, sizeof *kv)))
		goto oom;
	for (size_t i = 0; i < n; i++) {
		kv[i].key = km_arena_strdup(&a, labels[i].key);
		kv[i].value = km_arena_strdup(&a, labels[i].value);
		if (!kv[i].key || !kv[i].value)
			goto oom;
	}
	uid = km_arena_strdup(&a, uid ? uid : "");
	owner = km_arena_strdup(&a, owner ? owner : "");
	node = km_arena_strdup(&a, node ? node : "");
	if (!uid || !owner || !node)
		goto oom;
	km_arena_free(&e->meta);
	e->meta = a;
	e->labels = kv;
	e->n_labels = n;
	e->uid = uid;
	e->owner = owner;
	e->node = node;
	return 0;
oom:
	km_arena_free(&a);
	return KM_ENOMEM;
}

/* Keeps r as the entry's newest result (message copied). */
static int set_last(struct entry *e, const struct km_result *r)
{
	size_t len = r->message ? strnlen(r->message, KM_RESULT_MESSAGE_MAX)
				: 0;

	if (len) {
		if (len + 1 > e->msg_cap) {
			char *m = realloc(e->msg, len + 1);

			if (!m)
				return KM_ENOMEM;
			e->msg = m;
			e->msg_cap = len + 1;
		}
		memcpy(e->msg, r->message, len);
		e->msg[len] = '\0';
	}
	e->last = *r;
	e->last.message = len ? e->msg : NULL;
	e->has_last = true;
	return 0;
}

static int set_transition(struct entry *e, const struct km_transition *t)
{
	char *cause = strdup(t->cause ? t->cause : "");

	if (!cause)
		return KM_ENOMEM;
	free(e->cause);
	e->cause = cause;
	e->tr = *t;
	e->tr.cause = cause;
	e->tr.target_name = e->name;
	e->tr.labels = NULL;
	e->tr.n_labels = 0;
	e->has_tr = true;
	return 0;
}

/* The target as the API shows it; strings borrowed from e. */
static void entry_target(const struct entry *e, struct km_target *t)
{
	*t = (struct km_target){
		.id = e->id,
		.name = e->name,
		.kind = e->tn.kind,
		.uid = e->uid,
		.owner = e->owner,
		.node = e->node,
		.labels = e->labels,
		.n_labels = e->n_labels,
		.state = e->state,
		.flapping = e->flapping,
		.state_since_us = e->since_us,
		.last_transition_seq = e->seq,
		.created_us = e->created_us,
	};
}

/* Deep copy of a target into a (name parts split out). */
static int copy_target(struct km_arena *a, const struct km_target *src,
		       const struct km_target_name *tn, struct km_target *dst)
{
	*dst = *src;
	dst->name = km_arena_strdup(a, src->name);
	dst->cluster = km_arena_strndup(a, tn->cluster ? tn->cluster : "",
					tn->cluster_len);
	dst->ns = km_arena_strndup(a, tn->ns, tn->ns_len);
	dst->object_name = km_arena_strndup(a, tn->name, tn->name_len);
	dst->uid = km_arena_strdup(a, src->uid ? src->uid : "");
	dst->owner = km_arena_strdup(a, src->owner ? src->owner : "");
	dst->node = km_arena_strdup(a, src->node ? src->node : "");
	dst->labels = NULL;
	if (src->n_labels && !(dst->labels = km_arena_calloc(
				       a, src->n_labels, sizeof *dst->labels)))
		return KM_ENOMEM;
	for (size_t i = 0; i < src->n_labels; i++) {
		dst->labels[i].key = km_arena_strdup(a, src->labels[i].key);
		dst->labels[i].value = km_arena_strdup(a, src->labels[i].value);
		if (!dst->labels[i].key || !dst->labels[i].value)
			return KM_ENOMEM;
	}
	if (!dst->name || !dst->cluster || !dst->ns || !dst->object_name ||
	    !dst->uid || !dst->owner || !dst->node)
		return KM_ENOMEM;
	return 0;
}

/* ---- producers --------------------------------------------------------------- */

int km_health_track(struct km_health *h, const struct km_health_target *t)
{
	struct entry *e;
	bool fresh = false;
	int rc;

	pthread_mutex_lock(&h->mu);
	e = find_id(h, t->id);
	if (!e) {
		e = new_entry(t->id, t->name);
		if (!e) {
			pthread_mutex_unlock(&h->mu);
			return KM_ENOMEM;
		}
		e->since_us = e->created_us = t->created_us ? t->created_us
							    : km_now_us();
		km_ledger_init(&e->lg, KM_STATE_UNKNOWN);
		fresh = true;
	}
	rc = set_meta(e, t->labels, t->n_labels, t->uid, t->owner, t->node);
	if (!rc && fresh)
		rc = link_entry(h, e);
	if (rc) {
		if (fresh)
			free_entry(e);
		pthread_mutex_unlock(&h->mu);
		return rc;
	}
	e->private_output = t->private_output;
	e->success_threshold = t->success_threshold > 0 ? t->success_threshold
							: 1;
	e->failure_threshold = t->failure_threshold > 0 ? t->failure_threshold
							: 1;
	pthread_mutex_unlock(&h->mu);
	return 0;
}

/* The cause of a change, in words: "3 consecutive failures (HTTP 500)",
 * "2 consecutive successes", "...; started flapping: 25% of the last 21
 * results changed outcome". */
static void describe(char *out, size_t size, const struct entry *e,
		     const struct km_ledger_change *ch,
		     const struct km_observation *o)
{
	char why[REASON_MAX + 1];
	const char *src = o->reason ? o->reason
				    : (o->message ? o->message : "");
	size_t len = strcspn(src, "\n");
	int n = 0;

	if (len > REASON_MAX)
		len = REASON_MAX;
	snprintf(why, sizeof why, "%.*s", (int)len, src);
	out[0] = '\0';
	if (ch->from != ch->to && o->reason_is_cause)
		n = snprintf(out, size, "%s", why);
	else if (ch->from != ch->to && ch->to == KM_STATE_UNHEALTHY)
		n = snprintf(out, size, "%d consecutive failure%s (%s)",
			     e->lg.failures, e->lg.failures == 1 ? "" : "s",
			     why);
	else if (ch->from != ch->to && ch->to == KM_STATE_DEGRADED &&
		 ch->from == KM_STATE_HEALTHY)
		n = snprintf(out, size, "degraded (%s)", why);
	else if (ch->from != ch->to && ch->to == KM_STATE_DEGRADED)
		n = snprintf(out, size,
			     "%d consecutive success%s, degraded "
			     "(%s)",
			     e->lg.successes, e->lg.successes == 1 ? "" : "es",
			     why);
	else if (ch->from != ch->to && ch->from == KM_STATE_DEGRADED &&
		 ch->to == KM_STATE_HEALTHY)
		n = snprintf(out, size, "no longer degraded");
	else if (ch->from != ch->to)
		n = snprintf(out, size, "%d consecutive success%s",
			     e->lg.successes, e->lg.successes == 1 ? "" : "es");
	if (ch->flap_changed && n >= 0 && (size_t)n < size)
		snprintf(out + n, size - (size_t)n,
			 "%s%s flapping: %.0f%% of the last %d results changed "
			 "outcome",
			 n ? "; " : "", ch->flapping ? "started" : "stopped",
			 ch->flap_percent, KM_FLAP_WINDOW);
}

void km_health_prefetch(const struct km_health_hint *hint)
{
	/* A hint may name freed memory (it is checked under the lock, later):
	 * a prefetch never faults. */
	if (hint->entry) {
		__builtin_prefetch(hint->entry, 1);
		__builtin_prefetch((const char *)hint->entry + 64, 1);
	}
}

int km_health_observe(struct km_health *h, const struct km_observation *o)
{
	bool up = o->verdict != KM_STATE_UNHEALTHY;
	struct km_result r = {
		.target_id = o->target_id,
		.started_us = o->started_us,
		.duration_us = o->duration_us,
		.success = up,
		.error_class = up ? KM_EC_NONE : o->error_class,
		.status_code = o->status_code,
		.message = o->message && o->message[0] ? o->message : NULL,
	};
	struct km_ledger_change ch;
	struct km_ledger_cfg cfg;
	struct entry *e;
	int rc;

	assert(o->verdict == KM_STATE_HEALTHY ||
	       o->verdict == KM_STATE_DEGRADED ||
	       o->verdict == KM_STATE_UNHEALTHY);
	pthread_mutex_lock(&h->mu);
	e = NULL;
	if (o->hint && o->hint->entry && o->hint->epoch == h->epoch) {
		/* No entry was freed since the hint was taken: it is alive. */
		e = o->hint->entry;
		if (e->id != o->target_id)
			e = NULL;
	}
	if (!e)
		e = find_id(h, o->target_id);
	if (!e) {
		h->stats.unknown_dropped++;
		pthread_mutex_unlock(&h->mu);
		return KM_ENOTFOUND;
	}
	if (o->hint) {
		o->hint->entry = e;
		o->hint->epoch = h->epoch;
	}
	h->stats.observations++;
	/* The store copies; its ring drops the oldest result, never waits. */
	rc = km_store_add_result(h->o.store, &r);
	if (rc && rc != KM_EUNAVAIL)
		km_log(KM_LOG_WARN, "result not stored", "target", e->name,
		       "err", km_strerror(rc), NULL);
	e->streak = e->has_last && e->last.success == up ? e->streak + 1 : 1;
	if (set_last(e, &r)) {
		/* The message did not fit in memory: keep the rest of it. */
		r.message = NULL;
		set_last(e, &r);
	}
	cfg = (struct km_ledger_cfg){
		.success_threshold = e->success_threshold,
		.failure_threshold = e->failure_threshold,
		.flap_low = h->o.flap_low,
		.flap_high = h->o.flap_high,
	};
	if (km_ledger_observe(&e->lg, &cfg, o->verdict, &ch)) {
		char cause[512];
		struct km_transition t = {
			.target_id = e->id,
			.at_us = o->started_us + o->duration_us,
			.from_state = ch.from,
			.to_state = ch.to,
			.flapping = ch.flapping,
			.cause = cause,
			.target_name = e->name,
			.labels = e->labels,
			.n_labels = e->n_labels,
		};

		describe(cause, sizeof cause, e, &ch, o);
		/* In order with everything queued before it; never waits,
		 * never drops (km_store_add_transition). */
		rc = km_store_add_transition(h->o.store, &t);
		if (rc)
			km_log(KM_LOG_ERROR, "transition not stored", "target",
			       e->name, "cause", cause, "err", km_strerror(rc),
			       NULL);
		else
			h->stats.transitions++;
	}
	pthread_mutex_unlock(&h->mu);
	return 0;
}

/* ---- current health ------------------------------------------------------------ */

int km_health_get(struct km_health *h, const char *name, struct km_arena *a,
		  struct km_health_view *out, struct km_error *err)
{
	struct km_target t;
	struct entry *e;
	int rc = 0;

	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&h->mu);
	e = find_name(h, name);
	if (!e) {
		pthread_mutex_unlock(&h->mu);
		return km_error_set(err, KM_ENOTFOUND,
				    "target \"%s\" not found", name);
	}
	entry_target(e, &t);
	out->private_output = e->private_output;
	rc = copy_target(a, &t, &e->tn, &out->target);
	if (!rc && e->has_last) {
		out->has_last = true;
		out->last = e->last;
		out->consecutive = e->streak;
		if (e->last.message &&
		    !(out->last.message = km_arena_strdup(a, e->last.message)))
			rc = KM_ENOMEM;
	}
	if (!rc && e->has_tr) {
		out->has_transition = true;
		out->transition = e->tr;
		out->transition.target_name = out->target.name;
		if (!(out->transition.cause = km_arena_strdup(a, e->cause)))
			rc = KM_ENOMEM;
	}
	pthread_mutex_unlock(&h->mu);
	if (rc)
		return km_error_set(err, rc, "out of memory");
	return 0;
}

int km_health_state(struct km_health *h, const char *name, int *state)
{
	struct entry *e;

	pthread_mutex_lock(&h->mu);
	e = find_name(h, name);
	if (e)
		*state = e->state;
	pthread_mutex_unlock(&h->mu);
	return e ? 0 : KM_ENOTFOUND;
}

static bool passes(const struct entry *e, const struct km_health_filter *f)
{
	if (f->kind && e->tn.kind != f->kind)
		return false;
	if (f->state && e->state != f->state)
		return false;
	if (f->cluster && (e->tn.cluster_len != strlen(f->cluster) ||
			   memcmp(e->tn.cluster ? e->tn.cluster : "",
				  f->cluster, e->tn.cluster_len)))
		return false;
	if (f->ns && (e->tn.ns_len != strlen(f->ns) ||
		      memcmp(e->tn.ns, f->ns, e->tn.ns_len)))
		return false;
	if ((f->node && strcmp(f->node, e->node ? e->node : "")) ||
	    (f->owner && strcmp(f->owner, e->owner ? e->owner : "")) ||
	    (f->uid && strcmp(f->uid, e->uid ? e->uid : "")))
		return false;
	return !f->match || f->match(e->labels, e->n_labels, f->arg);
}

int km_health_list(struct km_health *h, const struct km_health_filter *f,
		   int64_t after_id, size_t limit, struct km_arena *a,
		   struct km_target **out, size_t *n, bool *more,
		   int64_t *sequence)
{
	static const struct km_health_filter all = {0};
	struct km_target *v;
	size_t got = 0;
	int rc = 0;

	*out = NULL;
	*n = 0;
	*more = false;
	if (!f)
		f = &all;
	v = km_arena_calloc(a, limit ? limit : 1, sizeof *v);
	if (!v)
		return KM_ENOMEM;
	pthread_mutex_lock(&h->mu);
	*sequence = h->seq;
	for (size_t i = order_after(h, after_id); i < h->n_entries; i++) {
		const struct entry *e = h->order[i];
		struct km_target t;

		if (!passes(e, f))
			continue;
		if (got == limit) {
			*more = true;
			break;
		}
		entry_target(e, &t);
		rc = copy_target(a, &t, &e->tn, &v[got]);
		if (rc)
			break;
		got++;
	}
	pthread_mutex_unlock(&h->mu);
	if (rc)
		return rc;
	*out = v;
	*n = got;
	return 0;
}

int64_t km_health_sequence(struct km_health *h)
{
	int64_t seq;

	pthread_mutex_lock(&h->mu);
	seq = h->seq;
	pthread_mutex_unlock(&h->mu);
	return seq;
}

/* ---- publication ----------------------------------------------------------------- */

static void event_unref(struct event *ev)
{
	assert(ev->refs > 0);
	if (--ev->refs == 0) {
		km_arena_free(&ev->arena);
		free(ev);
	}
}

/* The event for t: the transition and the target after it, from e when the
 * hub tracks the target, else from what t carries. NULL on out-of-memory
 * or when t names no target. */
static struct event *new_event(const struct km_transition *t,
			       const struct entry *e)
{
	struct event *ev = calloc(1, sizeof *ev);
	struct km_target_name tn;
	struct km_target target;
	char why[256];

	if (!ev)
		return NULL;
	km_arena_init(&ev->arena, 512);
	ev->refs = 1;
	if (e) {
		entry_target(e, &target);
		tn = e->tn;
	} else {
		if (!t->target_name ||
		    km_target_name_parse(t->target_name, &tn, why, sizeof why))
			goto fail;
		target = (struct km_target){
			.id = t->target_id,
			.name = t->target_name,
			.kind = tn.kind,
			.labels = (struct km_kv *)t->labels,
			.n_labels = t->n_labels,
		};
	}
	target.state = t->to_state;
	target.flapping = t->flapping;
	target.last_transition_seq = t->seq;
	if (t->from_state != t->to_state)
		target.state_since_us = t->at_us;
	else if (!e)
		target.state_since_us = 0; /* not known here */
	if (copy_target(&ev->arena, &target, &tn, &ev->target))
		goto fail;
	ev->t = *t;
	ev->t.cause = km_arena_strdup(&ev->arena, t->cause ? t->cause : "");
	ev->t.target_name = ev->target.name;
	ev->t.labels = ev->target.labels;
	ev->t.n_labels = ev->target.n_labels;
	if (!ev->t.cause)
		goto fail;
	return ev;
fail:
	event_unref(ev);
	return NULL;
}

void km_health_committed(void *arg, const struct km_transition *t)
{
	struct km_health *h = arg;
	struct entry *e;
	struct event *ev;

	pthread_mutex_lock(&h->mu);
	e = find_id(h, t->target_id);
	ev = new_event(t, e);
	if (e && t->to_state == KM_STATE_DELETED) {
		unlink_entry(h, e);
		free_entry(e);
	} else if (e) {
		if (e->state != t->to_state)
			e->since_us = t->at_us;
		e->state = t->to_state;
		e->flapping = t->flapping;
		e->seq = t->seq;
		if (set_transition(e, t))
			km_log(KM_LOG_ERROR,
			       "last transition not kept in "
			       "memory: out of memory",
			       "target", e->name, NULL);
	}
	if (t->seq > h->seq)
		h->seq = t->seq;
	h->stats.published++;
	if (!ev) {
		km_log(KM_LOG_ERROR,
		       "transition not announced: out of memory "
		       "(watchers resume from the database)",
		       "seq", KM_I(t->seq), NULL);
	} else {
		if (h->pos_next - h->pos_first == h->ring_cap) {
			event_unref(h->ring[h->pos_first % h->ring_cap]);
			h->pos_first++;
		}
		h->ring[h->pos_next % h->ring_cap] = ev;
		h->pos_next++;
		pthread_cond_signal(&h->work_cv);
	}
	pthread_mutex_unlock(&h->mu);
}

/* ---- subscribers ------------------------------------------------------------------ */

int km_health_subscribe(struct km_health *h,
			const struct km_health_sub_options *o,
			struct km_health_sub **out, int64_t *start)
{
	struct km_health_sub *s = calloc(1, sizeof *s);

	*out = NULL;
	if (!s)
		return KM_ENOMEM;
	s->h = h;
	s->o = *o;
	if (!s->o.max_pending || s->o.max_pending > h->ring_cap)
		s->o.max_pending = h->ring_cap;
	s->paused = o->paused;
	pthread_mutex_lock(&h->mu);
	s->next_pos = h->pos_next;
	s->last_seq = h->seq;
	*start = h->seq;
	km_list_add_tail(&h->subs, &s->node);
	h->stats.subscribers++;
	pthread_mutex_unlock(&h->mu);
	*out = s;
	return 0;
}

void km_health_resume(struct km_health_sub *s)
{
	struct km_health *h = s->h;

	pthread_mutex_lock(&h->mu);
	s->paused = false;
	pthread_cond_signal(&h->work_cv);
	pthread_mutex_unlock(&h->mu);
}

static void sub_free(struct km_health *h, struct km_health_sub *s)
{
	km_list_del(&s->node);
	h->stats.subscribers--;
	free(s);
}

void km_health_unsubscribe(struct km_health_sub *s)
{
	struct km_health *h;

	if (!s)
		return;
	h = s->h;
	pthread_mutex_lock(&h->mu);
	s->dead = true;
	if (h->current == s && h->thread_started &&
	    pthread_equal(pthread_self(), h->thread)) {
		/* From its own deliver or overflow: freed on return. */
		s->free_on_return = true;
		pthread_mutex_unlock(&h->mu);
		return;
	}
	while (h->current == s)
		pthread_cond_wait(&h->idle_cv, &h->mu);
	sub_free(h, s);
	pthread_mutex_unlock(&h->mu);
}

/* Hands s up to DELIVER_BATCH events, or cuts it off; h->mu held, and
 * released while a callback runs. Returns true if it did anything. s may
 * be freed when it returns (*freed). */
static bool serve(struct km_health *h, struct km_health_sub *s, bool *freed)
{
	bool did = false;

	*freed = false;
	if (s->dead)
		return false;
	if (s->next_pos < h->pos_first ||
	    h->pos_next - s->next_pos > s->o.max_pending) {
		/* Its queue passed its bound: cut off, told once. */
		s->dead = true;
		h->stats.overflows++;
		km_log(KM_LOG_WARN,
		       "a health subscriber fell behind and was "
		       "cut off; it resumes from the database",
		       "last_seq", KM_I(s->last_seq), "pending",
		       KM_I(h->pos_next - s->next_pos), NULL);
		if (s->o.overflow) {
			h->current = s;
			pthread_mutex_unlock(&h->mu);
			s->o.overflow(s->o.arg, s->last_seq);
			pthread_mutex_lock(&h->mu);
			h->current = NULL;
			pthread_cond_broadcast(&h->idle_cv);
		}
		did = true;
	}
	for (int i = 0; !s->dead && !s->paused && i < DELIVER_BATCH &&
			s->next_pos < h->pos_next;
	     i++) {
		struct event *ev = h->ring[s->next_pos % h->ring_cap];
		struct km_health_event view = {&ev->t, &ev->target};

		s->next_pos++;
		ev->refs++;
		h->current = s;
		pthread_mutex_unlock(&h->mu);
		s->o.deliver(s->o.arg, &view);
		pthread_mutex_lock(&h->mu);
		h->current = NULL;
		pthread_cond_broadcast(&h->idle_cv);
		s->last_seq = ev->t.seq;
		event_unref(ev);
		did = true;
	}
	if (s->free_on_return) {
		sub_free(h, s);
		*freed = true;
	}
	return did;
}

static void *hub_main(void *arg)
{
	struct km_health *h = arg;

	pthread_setname_np(pthread_self(), "km-health");
	pthread_mutex_lock(&h->mu);
	while (!h->stopping) {
		bool did = false;
		struct km_list *n = h->subs.next;

		while (n != &h->subs) {
			struct km_health_sub *s =
				km_list_entry(n, struct km_health_sub, node);
			struct km_list *next;
			bool freed;

			did |= serve(h, s, &freed);
			/* s is still linked unless freed: unsubscribe waits
			 * for h->current, and only this thread frees a
			 * subscriber it was serving. Its successor may have
			 * changed meanwhile, so it is read now. */
			next = freed ? NULL : n->next;
			if (freed) /* start over: the list may have moved */
				break;
			n = next;
		}
		if (!did)
			pthread_cond_wait(&h->work_cv, &h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* ---- life cycle ---------------------------------------------------------------- */

/* One live target's current health from the database into an entry. */
static int load_target(struct km_health *h, struct km_reader *r,
		       const struct km_target *t, struct km_arena *a,
		       struct km_error *err)
{
	struct km_target_health th;
	struct entry *e;
	int rc;

	rc = km_reader_target_health(r, t->name, LOAD_STREAK_CAP, a, &th, err);
	if (rc == KM_ENOTFOUND)
		return 0; /* deleted meanwhile */
	if (rc)
		return rc;
	e = new_entry(t->id, t->name);
	if (!e)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	rc = set_meta(e, th.target.labels, th.target.n_labels, th.target.uid,
		      th.target.owner, th.target.node);
	e->state = th.target.state;
	e->flapping = th.target.flapping;
	e->since_us = th.target.state_since_us;
	e->created_us = th.target.created_us;
	km_ledger_init(&e->lg, e->state);
	/* What came before the target was (re)created belongs to what was
	 * deleted then. */
	if (!rc && th.has_last && th.last.started_us >= e->created_us) {
		rc = set_last(e, &th.last);
		e->streak = th.consecutive;
	}
	if (!rc && th.has_transition) {
		rc = set_transition(e, &th.transition);
		e->seq = th.transition.seq;
	}
	if (!rc)
		rc = link_entry(h, e);
	if (rc) {
		free_entry(e);
		return km_error_set(err, rc, "out of memory");
	}
	return 0;
}

static int load(struct km_health *h, struct km_error *err)
{
	struct km_reader *r = NULL;
	struct km_arena a;
	struct km_target_filter all = {0};
	int64_t after = 0, min_kept;
	bool more = true;
	int rc;

	km_arena_init(&a, 65536);
	rc = km_reader_open(h->o.store, &r, err);
	if (!rc)
		rc = km_reader_transition_bounds(r, &min_kept, &h->seq, err);
	while (!rc && more) {
		struct km_target *v;
		size_t n;

		rc = km_reader_list_targets(r, &all, after, 1000, &a, &v, &n,
					    &more, err);
		for (size_t i = 0; !rc && i < n; i++)
			rc = load_target(h, r, &v[i], &a, err);
		if (!rc && n)
			after = v[n - 1].id;
		km_arena_reset(&a);
	}
	km_reader_close(r);
	km_arena_free(&a);
	if (rc)
		km_error_prefix(err, "loading current health");
	return rc;
}

int km_health_open(const struct km_health_options *o, struct km_health **out,
		   struct km_error *err)
{
	struct km_health *h = calloc(1, sizeof *h);
	int rc;

	*out = NULL;
	if (!h)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	h->o = *o;
	if (h->o.flap_low <= 0)
		h->o.flap_low = 5;
	if (h->o.flap_high <= 0)
		h->o.flap_high = 20;
	h->ring_cap = h->o.window ? h->o.window : DEFAULT_WINDOW;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->work_cv, NULL);
	pthread_cond_init(&h->idle_cv, NULL);
	km_list_init(&h->subs);
	h->by_id = (struct table){calloc(1024, sizeof(struct entry *)), 1024};
	h->by_name = (struct table){calloc(1024, sizeof(struct entry *)), 1024};
	h->ring = calloc(h->ring_cap, sizeof *h->ring);
	if (!h->by_id.b || !h->by_name.b || !h->ring) {
		rc = km_error_set(err, KM_ENOMEM, "out of memory");
		goto fail;
	}
	rc = load(h, err);
	if (rc)
		goto fail;
	rc = pthread_create(&h->thread, NULL, hub_main, h);
	if (rc) {
		rc = km_error_set(err, KM_EIO,
				  "cannot start the health hub's "
				  "thread: %s",
				  strerror(rc));
		goto fail;
	}
	h->thread_started = true;
	km_store_set_listener(h->o.store, km_health_committed, h);
	*out = h;
	return 0;
fail:
	km_health_close(h);
	return rc;
}

void km_health_close(struct km_health *h)
{
	struct km_list *n, *tmp;

	if (!h)
		return;
	if (h->thread_started) {
		km_store_set_listener(h->o.store, NULL, NULL);
		pthread_mutex_lock(&h->mu);
		h->stopping = true;
		pthread_cond_signal(&h->work_cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->thread, NULL);
	}
	km_list_for_each_safe (n, tmp, &h->subs) {
		km_log(KM_LOG_WARN, "a health subscriber was left at close",
		       NULL);
		sub_free(h, km_list_entry(n, struct km_health_sub, node));
	}
	for (size_t i = 0; i < h->n_entries; i++)
		free_entry(h->order[i]);
	while (h->ring && h->pos_first < h->pos_next)
		event_unref(h->ring[h->pos_first++ % h->ring_cap]);
	free(h->ring);
	free(h->order);
	free(h->by_id.b);
	free(h->by_name.b);
	pthread_cond_destroy(&h->idle_cv);
	pthread_cond_destroy(&h->work_cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

void km_health_get_stats(struct km_health *h, struct km_health_stats *out)
{
	pthread_mutex_lock(&h->mu);
	*out = h->stats;
	pthread_mutex_unlock(&h->mu);
}
