/*
 * The Kubernetes source (km_kube_source.h).
 *
 * Every target has a record (struct tgt), found by its name. A put or a
 * delete changes the record — its verdict, its identity, whether it is
 * wanted — and queues it; flush walks the queue three times: deletions,
 * then the makes (one transaction), then the observations. A record whose
 * object was deleted and made again before a flush (a pod replaced under
 * its name) is deleted first and made again, so the history shows both.
 */
#include "km_kube_source.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "km_hash.h"
#include "km_health.h"
#include "km_kube_mirror.h"
#include "km_log.h"
#include "km_loop.h"
#include "km_model.h"
#include "km_store.h"
#include "km_time.h"

#define NAME_MAX_LEN 600 /* [cluster:]kind/ns/name: 63 + 11 + 253 + 253 */
#define EVENTS_MAX 8     /* per target and flush; more are counted */
#define MIN_BUCKETS 64

struct tgt {
	struct tgt *next; /* chain in s->buckets */
	uint64_t h;
	char *name; /* owned */
	int kind;   /* enum km_kind */

	bool live;   /* the object exists */
	bool made;   /* its target exists in the store (id) */
	bool queued; /* in s->queue */
	bool flying; /* in the write in flight (s->fl) */
	bool want_make, want_delete;
	int64_t id;
	int64_t created_us;
	char *uid, *owner, *node; /* as they will be made */
	const char *delete_cause; /* static text */

	int state;    /* the latest verdict; KM_KUBE_NO_VERDICT */
	char *reason; /* its reason */
	int observed_state;
	uint64_t observed_reason;
	char *events[EVENTS_MAX];
	size_t n_events;

	int32_t endpoints, ready; /* a Service's, over its slices */
	size_t timed;             /* 1 + index in s->timed; 0 = not */
	struct km_health_hint hint;
};

struct km_kube_source {
	char *cluster; /* "" = none */
	struct km_store *store;
	struct km_health *health;
	struct km_kube_rules_options rules;

	struct km_kube_cache *cache[KM_RES_N];
	struct km_kube_mirror *mirror; /* NULL: no prober */

	struct tgt **buckets;
	size_t n_buckets, n_tgts, n_live;
	uint64_t seed;

	struct tgt **queue; /* records to look at in the next flush */
	size_t n_queue, cap_queue;
	struct tgt **timed; /* pods without a verdict yet: tick judges them */
	size_t n_timed, cap_timed;

	uint64_t skipped, over_limit, observations;

	/* The store write in flight, at most one: its changes, their
	 * records, the copies of their strings. The writer thread sets
	 * done, rc and err under mu, signals cv and wakes the loop (efd). */
	struct flight {
		struct km_target_change *c;
		struct flown {
			struct tgt *t;
			int state;          /* its verdict when it flew */
			const char *reason; /* in strings */
		} * w;
		size_t n, cap;
		struct km_arena strings;
		bool busy;
		pthread_mutex_t mu;
		pthread_cond_t cv;
		bool done;
		int rc;
		struct km_error err;
	} fl;
	struct km_loop *loop;
	int efd; /* -1: no loop */
	void (*flushed)(void *arg, int rc, const struct km_error *err);
	void *flushed_arg;

	/* When the Leases were last not watched: from lease_lost_us until
	 * lease_back_us, or still (lease_back_us 0); 0: never. */
	int64_t lease_lost_us, lease_back_us;
	/* Pods cannot be watched now: none is judged by time (a pod pending
	 * when last seen may have started meanwhile). */
	bool pods_lost;
};

static const char *const lease_ns = "kube-node-lease";

/* ---- records ------------------------------------------------------------------ */

static uint64_t name_hash(const struct km_kube_source *s, const char *name)
{
	return km_hash_str(s->seed, name);
}

static struct tgt *find(const struct km_kube_source *s, const char *name)
{
	uint64_t h = name_hash(s, name);

	for (struct tgt *t = s->buckets[km_hash_bucket(h, s->n_buckets)]; t;
	     t = t->next)
		if (t->h == h && !strcmp(t->name, name))
			return t;
	return NULL;
}

static void grow(struct km_kube_source *s)
{
	size_t n = s->n_buckets * 2;
	struct tgt **b;

	if (s->n_tgts < s->n_buckets || !(b = calloc(n, sizeof *b)))
		return; /* chains grow longer instead */
	for (size_t i = 0; i < s->n_buckets; i++)
		for (struct tgt *t = s->buckets[i], *next; t; t = next) {
			size_t k = km_hash_bucket(t->h, n);

			next = t->next;
			t->next = b[k];
			b[k] = t;
		}
	free(s->buckets);
	s->buckets = b;
	s->n_buckets = n;
}

static struct tgt *find_or_add(struct km_kube_source *s, const char *name,
			       int kind)
{
	struct tgt *t = find(s, name);
	size_t k;

	if (t)
		return t;
	t = calloc(1, sizeof *t);
	if (!t || !(t->name = strdup(name))) {
		free(t);
		return NULL;
	}
	t->kind = kind;
	t->h = name_hash(s, name);
	k = km_hash_bucket(t->h, s->n_buckets);
	t->next = s->buckets[k];
	s->buckets[k] = t;
	s->n_tgts++;
	grow(s);
	return t;
}

static void untime(struct km_kube_source *s, struct tgt *t)
{
	size_t i;

	if (!t->timed)
		return;
	i = t->timed - 1;
	s->timed[i] = s->timed[--s->n_timed];
	s->timed[i]->timed = i + 1;
	t->timed = 0;
}

static void set_timed(struct km_kube_source *s, struct tgt *t)
{
	if (t->timed)
		return;
	if (s->n_timed == s->cap_timed) {
		size_t cap = s->cap_timed ? s->cap_timed * 2 : 64;
		struct tgt **v = realloc(s->timed, cap * sizeof *v);

		if (!v)
			return; /* judged again at its next update instead */
		s->timed = v;
		s->cap_timed = cap;
	}
	s->timed[s->n_timed++] = t;
	t->timed = s->n_timed;
}

static void clear_events(struct tgt *t)
{
	for (size_t i = 0; i < t->n_events; i++)
		free(t->events[i]);
	t->n_events = 0;
}

static void free_tgt(struct tgt *t)
{
	clear_events(t);
	free(t->name);
	free(t->uid);
	free(t->owner);
	free(t->node);
	free(t->reason);
	free(t);
}

/* Forgets a record nobody needs: no object, no target, nothing queued,
 * no slices counted. */
static void maybe_drop(struct km_kube_source *s, struct tgt *t)
{
	struct tgt **p;

	if (t->live || t->made || t->queued || t->flying || t->endpoints ||
	    t->ready || t->timed)
		return;
	for (p = &s->buckets[km_hash_bucket(t->h, s->n_buckets)]; *p != t;
	     p = &(*p)->next)
		;
	*p = t->next;
	s->n_tgts--;
	free_tgt(t);
}

static void enqueue(struct km_kube_source *s, struct tgt *t)
{
	if (t->queued)
		return;
	if (s->n_queue == s->cap_queue) {
		size_t cap = s->cap_queue ? s->cap_queue * 2 : 256;
		struct tgt **v = realloc(s->queue, cap * sizeof *v);

		if (!v) {
			km_log(KM_LOG_ERROR,
			       "kube: out of memory; a change waits for the "
			       "object's next update",
			       "target", t->name, NULL);
			return;
		}
		s->queue = v;
		s->cap_queue = cap;
	}
	s->queue[s->n_queue++] = t;
	t->queued = true;
}

/* Replaces *field with a copy of v (NULL stays NULL); whether it changed. */
static bool set_str(char **field, const char *v)
{
	char *copy;

	if ((!*field && !v) || (*field && v && !strcmp(*field, v)))
		return false;
	copy = v ? strdup(v) : NULL;
	if (v && !copy)
		return false; /* kept as it was; the next update tries again */
	free(*field);
	*field = copy;
	return true;
}

/* ---- names --------------------------------------------------------------------- */

static int kind_of(enum km_kube_resource r)
{
	switch (r) {
	case KM_RES_NODE: return KM_KIND_NODE;
	case KM_RES_POD: return KM_KIND_POD;
	case KM_RES_SERVICE: return KM_KIND_SERVICE;
	case KM_RES_DEPLOYMENT: return KM_KIND_DEPLOYMENT;
	case KM_RES_STATEFULSET: return KM_KIND_STATEFULSET;
	case KM_RES_DAEMONSET: return KM_KIND_DAEMONSET;
	default: return 0;
	}
}

/* "[cluster:]kind/ns/name" with kind given as text; NULL if it does not
 * fit or is not a valid target name. */
static const char *make_name(const struct km_kube_source *s, const char *kind,
			     const char *ns, const char *name, char *buf,
			     size_t len)
{
	struct km_target_name tn;
	char why[160];
	int n = snprintf(buf, len, "%s%s%s/%s/%s", s->cluster,
			 *s->cluster ? ":" : "", kind, ns ? ns : "",
			 name ? name : "");

	if (n < 0 || (size_t)n >= len)
		return NULL;
	if (km_target_name_parse(buf, &tn, why, sizeof why))
		return NULL;
	return buf;
}

const char *km_kube_target_name(const struct km_kube_source *s,
				const struct km_kube_object *o, char *buf,
				size_t len)
{
	int kind = kind_of(o->resource);

	if (!kind)
		return NULL;
	return make_name(s, km_kind_name(kind),
			 kind == KM_KIND_NODE ? "" : o->meta.ns, o->meta.name,
			 buf, len);
}

/* The owner of a pod as a target name: the Deployment behind its
 * ReplicaSet, else its controller ("job/ns/n"). Written into buf, or NULL
 * when it has none. The owner need not be a target kubemedic judges. */
static const char *pod_owner(const struct km_kube_source *s,
			     const struct km_kube_object *o, char *buf,
			     size_t len)
{
	const struct km_kube_meta *m = &o->meta;
	const char *kind = m->owner_kind, *name = m->owner_name;
	char lower[64];
	size_t i;

	if (!kind || !*kind || !name || !*name)
		return NULL;
	if (!strcmp(kind, "ReplicaSet")) {
		const struct km_kube_object *rs = km_kube_cache_get(
			s->cache[KM_RES_REPLICASET], m->ns, name);

		if (rs && rs->meta.owner_kind &&
		    !strcmp(rs->meta.owner_kind, "Deployment") &&
		    rs->meta.owner_name && *rs->meta.owner_name) {
			kind = "Deployment";
			name = rs->meta.owner_name;
		}
	}
	for (i = 0; kind[i] && i < sizeof lower - 1; i++)
		lower[i] = (char)tolower((unsigned char)kind[i]);
	lower[i] = '\0';
	/* Written as a target's name is, but not held to the kinds that
	 * are targets (a ReplicaSet, a Job, a CRD's kind). */
	i = (size_t)snprintf(buf, len, "%s%s%s/%s/%s", s->cluster,
			     *s->cluster ? ":" : "", lower, m->ns ? m->ns : "",
			     name);
	return i < len ? buf : NULL;
}

/* ---- judging ------------------------------------------------------------------- */

static void set_verdict(struct km_kube_source *s, struct tgt *t,
			const struct km_kube_verdict *v)
{
	bool changed = t->state != v->state || !t->reason ||
		       strcmp(t->reason, v->reason);

	if (changed) {
		if (!set_str(&t->reason, v->reason) && !t->reason)
			return; /* no memory: judged again next time */
		t->state = v->state;
		enqueue(s, t);
	}
	/* Pods without a verdict yet are judged again as time passes. */
	if (v->state == KM_KUBE_NO_VERDICT && t->kind == KM_KIND_POD)
		set_timed(s, t);
	else
		untime(s, t);
}

static void add_event(struct km_kube_source *s, struct tgt *t, const char *e)
{
	char *copy;

	if (t->n_events == EVENTS_MAX || !(copy = strdup(e)))
		return;
	t->events[t->n_events++] = copy;
	enqueue(s, t);
}

static void on_event(const char *e, void *arg)
{
	void **a = arg;

	add_event(a[0], a[1], e);
}

static struct tgt *target_of(struct km_kube_source *s,
			     const struct km_kube_object *o)
{
	char buf[NAME_MAX_LEN];
	const char *name = km_kube_target_name(s, o, buf, sizeof buf);

	return name ? find(s, name) : NULL;
}

/* The renewal time that makes now - renew the time a Lease renewed at
 * renew has been seen not renewed: its age less the time, since renew,
 * when the Leases were not watched (the last such stretch). */
static int64_t lease_seen_renew(const struct km_kube_source *s, int64_t renew,
				int64_t now_us)
{
	int64_t from, to;

	if (!renew || !s->lease_lost_us)
		return renew;
	from = s->lease_lost_us > renew ? s->lease_lost_us : renew;
	to = s->lease_back_us ? s->lease_back_us : now_us;
	if (to > now_us)
		to = now_us;
	return to > from ? renew + (to - from) : renew;
}

void km_kube_source_watching(struct km_kube_source *s, enum km_kube_resource r,
			     bool watched, int64_t now_us)
{
	bool lost = s->lease_lost_us && !s->lease_back_us;

	if (r == KM_RES_POD)
		s->pods_lost = !watched;
	if (r != KM_RES_LEASE || watched == !lost)
		return;
	if (watched) {
		s->lease_back_us = now_us > s->lease_lost_us ? now_us
							     : s->lease_lost_us;
	} else {
		s->lease_lost_us = now_us;
		s->lease_back_us = 0;
	}
}

static void judge(struct km_kube_source *s, const struct km_kube_object *o,
		  struct tgt *t, int64_t now_us)
{
	struct km_kube_verdict v;

	switch (o->resource) {
	case KM_RES_NODE: {
		struct km_kube_node n = o->u.node;
		const struct km_kube_object *lease = km_kube_cache_get(
			s->cache[KM_RES_LEASE], lease_ns, o->meta.name);

		n.lease_renew_us =
			lease ? lease_seen_renew(s, lease->u.lease.renew_us,
						 now_us)
			      : 0;
		km_kube_judge_node(&n, now_us, &s->rules, &v);
		break;
	}
	case KM_RES_POD:
		km_kube_judge_pod(&o->u.pod, now_us, &s->rules, &v);
		break;
	case KM_RES_SERVICE: {
		struct km_kube_service svc = o->u.service;

		svc.endpoints = t->endpoints;
		svc.ready_endpoints = t->ready;
		km_kube_judge_service(&svc, &v);
		break;
	}
	case KM_RES_DEPLOYMENT:
	case KM_RES_STATEFULSET:
	case KM_RES_DAEMONSET:
		km_kube_judge_workload(&o->u.workload, &v);
		break;
	default: return;
	}
	set_verdict(s, t, &v);
}

/* The record of a judged object, made or updated from o: live, its
 * identity as it will be made. NULL when o's name cannot be a target. */
static struct tgt *track(struct km_kube_source *s,
			 const struct km_kube_object *o)
{
	char buf[NAME_MAX_LEN], owner[NAME_MAX_LEN];
	const char *name = km_kube_target_name(s, o, buf, sizeof buf);
	const char *own = NULL, *node = NULL;
	struct tgt *t;
	bool changed;

	if (!name) {
		s->skipped++;
		km_log(KM_LOG_WARN,
		       "kube: an object whose name cannot be a target's is "
		       "skipped",
		       "cluster", s->cluster, "namespace", o->meta.ns, "name",
		       o->meta.name, NULL);
		return NULL;
	}
	t = find_or_add(s, name, kind_of(o->resource));
	if (!t)
		return NULL;
	if (o->resource == KM_RES_POD) {
		own = pod_owner(s, o, owner, sizeof owner);
		node = o->u.pod.node_name;
	}
	changed = set_str(&t->uid, o->meta.uid);
	changed |= set_str(&t->owner, own);
	changed |= set_str(&t->node, node);
	if (!t->live) {
		t->live = true;
		s->n_live++;
		changed = true;
	}
	t->created_us = o->meta.created_us;
	if (changed || (!t->made && !t->flying)) {
		t->want_make = true;
		enqueue(s, t);
	}
	return t;
}

static void gone(struct km_kube_source *s, struct tgt *t, const char *cause)
{
	if (!t || !t->live)
		return;
	t->live = false;
	s->n_live--;
	t->want_make = false;
	/* A make in flight may land: deleted after it (a deletion of what
	 * was not made is no error). */
	t->want_delete = t->made || t->flying;
	t->delete_cause = cause;
	t->state = KM_KUBE_NO_VERDICT;
	clear_events(t);
	untime(s, t);
	enqueue(s, t);
}

static const char *deleted_cause(enum km_kube_resource r)
{
	switch (r) {
	case KM_RES_NODE: return "node deleted";
	case KM_RES_POD: return "pod deleted";
	case KM_RES_SERVICE: return "service deleted";
	case KM_RES_DEPLOYMENT: return "deployment deleted";
	case KM_RES_STATEFULSET: return "statefulset deleted";
	case KM_RES_DAEMONSET: return "daemonset deleted";
	default: return "deleted";
	}
}

/* A Service's record, by the service's namespace and name, for counting
 * its slices before or after the Service itself is seen. */
static struct tgt *service_tgt(struct km_kube_source *s, const char *ns,
			       const char *name, bool add)
{
	char buf[NAME_MAX_LEN];
	const char *n = make_name(s, "service", ns, name, buf, sizeof buf);

	if (!n)
		return NULL;
	return add ? find_or_add(s, n, KM_KIND_SERVICE) : find(s, n);
}

static void rejudge_service(struct km_kube_source *s, struct tgt *t,
			    const char *ns, const char *name, int64_t now_us)
{
	const struct km_kube_object *svc =
		km_kube_cache_get(s->cache[KM_RES_SERVICE], ns, name);

	if (svc && t->live && svc->u.service.has_selector)
		judge(s, svc, t, now_us);
}

/* Moves a slice's counts from its old version to its new one (either may
 * be NULL) and judges the Services concerned again. */
static void count_slice(struct km_kube_source *s,
			const struct km_kube_object *before,
			const struct km_kube_object *after, int64_t now_us)
{
	const struct km_kube_object *v[2] = {before, after};

	for (int k = 0; k < 2; k++) {
		const struct km_kube_object *o = v[k];
		struct tgt *t;

		if (!o || !o->u.slice.service || !*o->u.slice.service)
			continue;
		t = service_tgt(s, o->meta.ns, o->u.slice.service, k == 1);
		if (!t)
			continue;
		if (k == 0) {
			t->endpoints -= o->u.slice.endpoints;
			t->ready -= o->u.slice.ready;
		} else {
			t->endpoints += o->u.slice.endpoints;
			t->ready += o->u.slice.ready;
		}
		rejudge_service(s, t, o->meta.ns, o->u.slice.service, now_us);
		maybe_drop(s, t);
	}
}

/* ---- the informers' calls -------------------------------------------------------- */

int km_kube_source_put(struct km_kube_source *s, const struct km_kube_object *o,
		       int64_t now_us, struct km_error *err)
{
	struct km_kube_cache *c = s->cache[o->resource];
	const struct km_kube_object *stored;
	struct km_kube_object *old = NULL;
	enum km_kube_put what;
	struct tgt *t;
	int rc;

	rc = km_kube_cache_put(c, o, &what, &old, &stored, err);
	if (rc) {
		if (rc == KM_EFULL)
			s->over_limit++;
		return rc;
	}
	/* A new object under a name another held: the old one went. */
	if (what == KM_PUT_REPLACED && kind_of(o->resource)) {
		t = target_of(s, old);
		if (t && (t->made || t->flying))
			gone(s, t, deleted_cause(o->resource));
		if (s->mirror && o->resource == KM_RES_POD)
			km_kube_mirror_delete(s->mirror, old->meta.uid,
					      "pod deleted");
	}
	/* The decoded pod (the cache keeps no probes): what of it runs. */
	if (s->mirror && o->resource == KM_RES_POD &&
	    (o->u.pod.mirror || what != KM_PUT_UNCHANGED)) {
		char buf[NAME_MAX_LEN];

		km_kube_mirror_put(s->mirror, o,
				   km_kube_target_name(s, o, buf, sizeof buf));
	}
	switch (o->resource) {
	case KM_RES_LEASE:
		if (stored->meta.ns && !strcmp(stored->meta.ns, lease_ns)) {
			const struct km_kube_object *node = km_kube_cache_get(
				s->cache[KM_RES_NODE], "", stored->meta.name);

			if (node && (t = target_of(s, node)) && t->live)
				judge(s, node, t, now_us);
		}
		break;
	case KM_RES_ENDPOINTSLICE:
		/* A relist's unchanged slice is counted already. */
		if (what != KM_PUT_UNCHANGED)
			count_slice(s, old, stored, now_us);
		break;
	case KM_RES_REPLICASET: break;
	case KM_RES_SERVICE:
		if (!stored->u.service.has_selector) {
			/* Not judged: a Service that lost its selector is
			 * no target any more. */
			gone(s, target_of(s, stored),
			     "service has no selector");
			break;
		}
		/* fall through */
	default:
		if (what == KM_PUT_UNCHANGED && (t = target_of(s, stored)) &&
		    t->live)
			break; /* a relist of what we have */
		t = track(s, stored);
		if (!t)
			break;
		judge(s, stored, t, now_us);
		if (o->resource == KM_RES_POD && old &&
		    what == KM_PUT_UPDATED) {
			void *a[2] = {s, t};

			km_kube_pod_events(&old->u.pod, &stored->u.pod,
					   on_event, a);
		}
		break;
	}
	km_kube_object_free(old);
	return 0;
}

static void forget(struct km_kube_source *s, struct km_kube_object *o,
		   int64_t now_us)
{
	switch (o->resource) {
	case KM_RES_LEASE: {
		const struct km_kube_object *node = km_kube_cache_get(
			s->cache[KM_RES_NODE], "", o->meta.name);
		struct tgt *t;

		if (o->meta.ns && !strcmp(o->meta.ns, lease_ns) && node &&
		    (t = target_of(s, node)) && t->live)
			judge(s, node, t, now_us);
		break;
	}
	case KM_RES_ENDPOINTSLICE: count_slice(s, o, NULL, now_us); break;
	case KM_RES_REPLICASET: break;
	default: {
		struct tgt *t = target_of(s, o);

		gone(s, t, deleted_cause(o->resource));
		if (s->mirror && o->resource == KM_RES_POD)
			km_kube_mirror_delete(s->mirror, o->meta.uid,
					      "pod deleted");
		break;
	}
	}
	km_kube_object_free(o);
}

void km_kube_source_delete(struct km_kube_source *s, enum km_kube_resource r,
			   const char *uid, int64_t now_us)
{
	struct km_kube_object *o = km_kube_cache_remove(s->cache[r], uid);

	if (o)
		forget(s, o, now_us);
}

int km_kube_source_component(struct km_kube_source *s, const char *name,
			     const struct km_kube_verdict *v,
			     struct km_error *err)
{
	char buf[NAME_MAX_LEN];
	const char *n = make_name(s, "controlplane", "", name, buf, sizeof buf);
	struct tgt *t;

	if (!n)
		return km_error_set(err, KM_EINVAL,
				    "\"%s\" cannot be a control plane "
				    "target's name",
				    name);
	t = find_or_add(s, n, KM_KIND_CONTROL_PLANE);
	if (!t)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	if (!t->live) {
		t->live = true;
		s->n_live++;
		t->created_us = km_now_us();
		t->want_make = true;
		enqueue(s, t);
	}
	set_verdict(s, t, v);
	return 0;
}

void km_kube_source_relist_begin(struct km_kube_source *s,
				 enum km_kube_resource r)
{
	km_kube_cache_relist_begin(s->cache[r]);
}

struct relist_arg {
	struct km_kube_source *s;
	int64_t now_us;
};

static void relist_gone(struct km_kube_object *o, void *arg)
{
	struct relist_arg *a = arg;

	forget(a->s, o, a->now_us);
}

void km_kube_source_relist_end(struct km_kube_source *s,
			       enum km_kube_resource r, int64_t now_us)
{
	struct relist_arg a = {s, now_us};

	km_kube_cache_relist_end(s->cache[r], relist_gone, &a);
}

static void tick_node(const struct km_kube_object *o, void *arg)
{
	struct relist_arg *a = arg;
	struct tgt *t = target_of(a->s, o);

	if (t && t->live)
		judge(a->s, o, t, a->now_us);
}

void km_kube_source_tick(struct km_kube_source *s, int64_t now_us)
{
	struct relist_arg a = {s, now_us};

	km_kube_cache_each(s->cache[KM_RES_NODE], tick_node, &a);
	/* Backwards: judging may take a pod off the list (swapping the
	 * last one into its place). */
	for (size_t i = s->pods_lost ? 0 : s->n_timed; i-- > 0;) {
		struct tgt *t = s->timed[i];
		/* The pod its target was made of (its uid, as put last). */
		const struct km_kube_object *o =
			t->uid ? km_kube_cache_get_uid(s->cache[KM_RES_POD],
						       t->uid)
			       : NULL;

		if (o)
			judge(s, o, t, now_us);
		else
			untime(s, t);
	}
}

/* ---- flush ---------------------------------------------------------------------- */

static int observe(struct km_kube_source *s, struct tgt *t, int verdict,
		   const char *message, const char *reason)
{
	struct km_observation ob = {
		.target_id = t->id,
		.verdict = verdict,
		/* When the hub learns it: after a deletion made by the same
		 * flush, so that the history keeps their order. */
		.started_us = km_now_us(),
		.message = message,
		.reason = reason,
		.reason_is_cause = true,
		.hint = &t->hint,
	};
	int rc = km_health_observe(s->health, &ob);

	if (!rc)
		s->observations++;
	return rc;
}

/* Step 3 for one record whose target exists: the verdict if it changed
 * (its reason the transition's cause), then the events, results of that
 * verdict. A record with no target (gone, or not made yet) drops its
 * events; one whose deletion waits keeps them for after it. */
static void observe_record(struct km_kube_source *s, struct tgt *t)
{
	int verdict = t->state ? t->state : t->observed_state;
	uint64_t rh;

	if (t->want_delete && t->live)
		return; /* replaced: observed once made again */
	if (!t->live || !t->made) {
		clear_events(t);
		maybe_drop(s, t);
		return;
	}
	if (t->state && t->reason) {
		rh = km_hash_str(KM_HASH_INIT, t->reason);
		if ((t->state != t->observed_state ||
		     rh != t->observed_reason) &&
		    !observe(s, t, t->state, t->reason, t->reason)) {
			t->observed_state = t->state;
			t->observed_reason = rh;
		}
	}
	for (size_t k = 0; verdict && k < t->n_events; k++)
		observe(s, t, verdict, t->events[k], t->events[k]);
	clear_events(t);
}

static bool needs_write(const struct tgt *t)
{
	return t->want_delete || (t->live && t->want_make);
}

/* Adds t's write to the flight (not yet started); KM_ENOMEM. */
static int fly(struct km_kube_source *s, struct tgt *t)
{
	struct flight *f = &s->fl;
	bool del = t->want_delete, make = t->live && (t->want_make || del);
	struct km_arena *a = &f->strings;

	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		struct km_target_change *c = realloc(f->c, cap * sizeof *c);
		struct flown *w;

		if (c)
			f->c = c;
		if (!c || !(w = realloc(f->w, cap * sizeof *w)))
			return KM_ENOMEM;
		f->w = w;
		f->cap = cap;
	}
	f->c[f->n] = (struct km_target_change){
		.t = {.name = km_arena_strdup(a, t->name),
		      .uid = t->uid ? km_arena_strdup(a, t->uid) : NULL,
		      .owner = t->owner ? km_arena_strdup(a, t->owner) : NULL,
		      .node = t->node ? km_arena_strdup(a, t->node) : NULL,
		      .created_us = t->made && !del ? 0 : t->created_us},
		.delete_cause = del ? t->delete_cause : NULL,
		.make = make,
	};
	f->w[f->n] = (struct flown){
		.t = t,
		.state = t->state,
		.reason = t->reason ? km_arena_strdup(a, t->reason) : NULL,
	};
	if (!f->c[f->n].t.name || (t->uid && !f->c[f->n].t.uid) ||
	    (t->owner && !f->c[f->n].t.owner) ||
	    (t->node && !f->c[f->n].t.node) ||
	    (t->reason && !f->w[f->n].reason))
		return KM_ENOMEM;
	f->n++;
	t->want_delete = t->want_make = false;
	t->flying = true;
	return 0;
}

/* The writer thread: the flight is done. */
static void flight_done(void *arg, int rc, const struct km_error *err)
{
	struct km_kube_source *s = arg;
	uint64_t one = 1;

	/* All under the lock: once it sees done, the loop may free the
	 * source and close the fd. */
	pthread_mutex_lock(&s->fl.mu);
	s->fl.done = true;
	s->fl.rc = rc;
	if (rc && err)
		s->fl.err = *err;
	if (s->efd >= 0 && write(s->efd, &one, sizeof one) < 0 &&
	    errno != EAGAIN)
		km_log(KM_LOG_ERROR, "kube: cannot wake the loop", "error",
		       strerror(errno), NULL);
	pthread_cond_signal(&s->fl.cv);
	pthread_mutex_unlock(&s->fl.mu);
}

/* The flight landed (done): its records take what the store did, or want
 * it again after an error; then they are observed. */
static int land(struct km_kube_source *s, struct km_error *err)
{
	struct flight *f = &s->fl;
	int rc = f->rc;

	for (size_t i = 0; i < f->n; i++) {
		struct tgt *t = f->w[i].t;
		struct km_target_change *c = &f->c[i];

		t->flying = false;
		if (rc) {
			t->want_delete |= c->delete_cause != NULL;
			t->want_make |= c->make && t->live;
			enqueue(s, t);
			continue;
		}
		if (c->delete_cause) {
			t->made = false;
			t->id = 0;
			t->observed_state = 0;
			t->observed_reason = 0;
			memset(&t->hint, 0, sizeof t->hint);
		}
		if (c->make) {
			struct km_health_target ht = {
				.id = c->t.id,
				.name = c->t.name,
				.uid = c->t.uid,
				.owner = c->t.owner,
				.node = c->t.node,
				.success_threshold = 1,
				.failure_threshold = 1,
				.created_us = t->created_us,
			};

			t->id = c->t.id;
			t->made = true;
			if (km_health_track(s->health, &ht)) {
				t->want_make = true; /* tracked next time */
				enqueue(s, t);
				continue;
			}
			/* Gone, or replaced, while it flew: the target made
			 * gets the verdict the object had (its deletion
			 * waits in the queue), so the history has it. */
			if ((!t->live || t->want_delete) && f->w[i].state &&
			    f->w[i].reason)
				observe(s, t, f->w[i].state, f->w[i].reason,
					f->w[i].reason);
		}
		observe_record(s, t);
	}
	if (rc && err)
		*err = f->err;
	f->n = 0;
	km_arena_rewind(&f->strings);
	pthread_mutex_lock(&f->mu);
	f->busy = f->done = false;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* The loop: the writer says a flight is done. */
static void on_efd(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	struct km_kube_source *s = arg;
	struct km_error err = {0};
	uint64_t n;
	bool done;
	int rc;

	(void)l;
	(void)events;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		km_log(KM_LOG_ERROR, "kube: cannot read the writer's wake-up",
		       "error", strerror(errno), NULL);
	pthread_mutex_lock(&s->fl.mu);
	done = s->fl.busy && s->fl.done;
	pthread_mutex_unlock(&s->fl.mu);
	if (!done)
		return; /* landed already (km_kube_source_flush waited) */
	rc = land(s, &err);
	if (s->flushed)
		s->flushed(s->flushed_arg, rc, &err);
}

int km_kube_source_flush_start(struct km_kube_source *s, struct km_error *err)
{
	struct flight *f = &s->fl;
	size_t keep = 0;
	int rc = 0;

	for (size_t i = 0; i < s->n_queue; i++) {
		struct tgt *t = s->queue[i];

		if (t->flying || (needs_write(t) && (f->busy || rc))) {
			s->queue[keep++] = t; /* after the flight */
			continue;
		}
		if (needs_write(t)) {
			if (!(rc = fly(s, t)))
				t->queued = false;
			else
				s->queue[keep++] = t;
			continue;
		}
		t->queued = false;
		observe_record(s, t);
	}
	s->n_queue = keep;
	if (rc) {
		/* What flies already goes; the rest waits. */
		km_error_set(err, rc, "out of memory");
	}
	if (f->n && !f->busy) {
		int src;

		f->busy = true;
		f->done = false;
		src = km_store_change_targets(s->store, f->c, f->n, flight_done,
					      s);
		if (src) {
			f->done = true;
			f->rc = src;
			km_error_set(&f->err, src,
				     src == KM_EUNAVAIL ? "the store is closing"
							: "out of memory");
			land(s, NULL);
			if (!rc)
				rc = km_error_set(err, src, "%s",
						  src == KM_EUNAVAIL
							  ? "the store is "
							    "closing"
							  : "out of memory");
		}
	}
	/* Pods' own probes. */
	if (!rc && s->mirror)
		rc = km_kube_mirror_flush(s->mirror, err);
	return rc;
}

/* Waits for the flight in flight, if any, and lands it. */
static int wait_landing(struct km_kube_source *s, struct km_error *err)
{
	if (!s->fl.busy)
		return 0;
	pthread_mutex_lock(&s->fl.mu);
	while (!s->fl.done)
		pthread_cond_wait(&s->fl.cv, &s->fl.mu);
	pthread_mutex_unlock(&s->fl.mu);
	return land(s, err);
}

int km_kube_source_flush(struct km_kube_source *s, struct km_error *err)
{
	int rc = wait_landing(s, err);

	if (!rc)
		rc = km_kube_source_flush_start(s, err);
	if (!rc)
		rc = wait_landing(s, err);
	return rc;
}

bool km_kube_source_dirty(const struct km_kube_source *s)
{
	return s->n_queue > 0;
}

/* ---- life ----------------------------------------------------------------------- */

int km_kube_source_new(const struct km_kube_source_options *o,
		       struct km_kube_source **out, struct km_error *err)
{
	struct km_kube_source *s = calloc(1, sizeof *s);
	int rc;

	*out = NULL;
	if (!s)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	s->efd = -1;
	km_arena_init(&s->fl.strings, 64 * 1024);
	pthread_mutex_init(&s->fl.mu, NULL);
	pthread_cond_init(&s->fl.cv, NULL);
	s->cluster = strdup(o->cluster ? o->cluster : "");
	s->buckets = calloc(MIN_BUCKETS, sizeof *s->buckets);
	s->n_buckets = MIN_BUCKETS;
	if (!s->cluster || !s->buckets) {
		km_kube_source_free(s);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	if (o->loop) {
		s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (s->efd < 0) {
			rc = km_error_set(err, KM_EIO, "eventfd: %s",
					  strerror(errno));
			km_kube_source_free(s);
			return rc;
		}
		if ((rc = km_loop_add_fd(o->loop, s->efd, EPOLLIN, on_efd,
					 s))) {
			close(s->efd);
			s->efd = -1;
			km_kube_source_free(s);
			return km_error_set(err, rc,
					    "cannot watch the writer's "
					    "wake-ups");
		}
		s->loop = o->loop;
	}
	s->flushed = o->flushed;
	s->flushed_arg = o->flushed_arg;
	s->store = o->store;
	s->health = o->health;
	s->rules = o->rules;
	s->seed = km_hash_seed();
	for (int r = 0; r < KM_RES_N; r++) {
		rc = km_kube_cache_new((enum km_kube_resource)r, o->max_objects,
				       &s->cache[r], err);
		if (rc) {
			km_kube_source_free(s);
			return rc;
		}
	}
	if (o->prober) {
		struct km_kube_mirror_options mo = {
			.cluster = s->cluster,
			.store = s->store,
			.health = s->health,
			.prober = o->prober,
		};

		if ((rc = km_kube_mirror_new(&mo, &s->mirror, err))) {
			km_kube_source_free(s);
			return rc;
		}
	}
	*out = s;
	return 0;
}

void km_kube_source_free(struct km_kube_source *s)
{
	if (!s)
		return;
	/* A write in flight reads the flight's changes: it lands first
	 * (unobserved: nobody is left to tell). */
	if (s->fl.busy) {
		pthread_mutex_lock(&s->fl.mu);
		while (!s->fl.done)
			pthread_cond_wait(&s->fl.cv, &s->fl.mu);
		pthread_mutex_unlock(&s->fl.mu);
	}
	if (s->efd >= 0) {
		km_loop_del_fd(s->loop, s->efd);
		close(s->efd);
	}
	free(s->fl.c);
	free(s->fl.w);
	km_arena_free(&s->fl.strings);
	pthread_mutex_destroy(&s->fl.mu);
	pthread_cond_destroy(&s->fl.cv);
	km_kube_mirror_free(s->mirror);
	for (int r = 0; r < KM_RES_N; r++)
		km_kube_cache_free(s->cache[r]);
	if (s->buckets)
		for (size_t i = 0; i < s->n_buckets; i++)
			for (struct tgt *t = s->buckets[i], *next; t;
			     t = next) {
				next = t->next;
				free_tgt(t);
			}
	free(s->buckets);
	free(s->queue);
	free(s->timed);
	free(s->cluster);
	free(s);
}

const struct km_kube_object *km_kube_source_get(const struct km_kube_source *s,
						enum km_kube_resource r,
						const char *ns,
						const char *name)
{
	return km_kube_cache_get(s->cache[r], ns ? ns : "", name);
}

void km_kube_source_each(const struct km_kube_source *s,
			 enum km_kube_resource r,
			 void (*fn)(const struct km_kube_object *o, void *arg),
			 void *arg)
{
	km_kube_cache_each(s->cache[r], fn, arg);
}

void km_kube_source_stats(const struct km_kube_source *s,
			  struct km_kube_source_stats *out)
{
	memset(out, 0, sizeof *out);
	for (int r = 0; r < KM_RES_N; r++)
		out->objects[r] = km_kube_cache_count(s->cache[r]);
	out->targets = s->n_live;
	out->skipped = s->skipped;
	out->over_limit = s->over_limit;
	out->observations = s->observations;
	if (s->mirror) {
		struct km_kube_mirror_stats m;

		km_kube_mirror_stats(s->mirror, &m);
		out->mirrored = m.probes;
		out->mirror_skipped = m.skipped;
		out->mirror_over_limit = m.over_limit;
	}
}
