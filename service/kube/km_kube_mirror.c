/*
 * Pods' own probes, run by kubemedic (km_kube_mirror.h).
 *
 * Each pod with something to mirror has a record, found by its uid: the
 * probes it should have (want, set by put and delete) and those that run
 * (have, set by flush), each set in an arena of its own. flush compares
 * the two by name: what only runs is stopped and its target deleted, what
 * is only wanted gets a target and starts, what is in both with another
 * definition is changed in place. have is replaced only once everything
 * succeeded, so a failed flush is simply done again (the store's upsert
 * and delete, and the prober's upsert and remove, may be repeated).
 */
#include "km_kube_mirror.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_arena.h"
#include "km_hash.h"
#include "km_health.h"
#include "km_log.h"
#include "km_model.h"
#include "km_probe.h"
#include "km_prober.h"
#include "km_store.h"
#include "km_time.h"

#define NAME_MAX_LEN 600
#define BUCKETS 256
#define LOG_AGAIN_NS (60LL * 1000000000)

struct mprobe {
	const char *name; /* the target's, and the prober's */
	struct km_probe p;
	uint64_t h; /* of the definition */
	int64_t id; /* the target's, once made */
};

struct mpod {
	struct mpod *next;
	uint64_t h;
	char *uid;
	const char *owner, *node; /* in want_a (or have_a) */
	struct km_arena want_a, have_a;
	struct mprobe *want, *have;
	size_t n_want, n_have;
	uint64_t want_h; /* of the whole wanted set: a put that changes
			    nothing is no work */
	const char *cause;
	bool queued;
};

struct km_kube_mirror {
	char *cluster;
	struct km_store *store;
	struct km_health *health;
	struct km_prober *prober;
	size_t max;
	struct mpod *buckets[BUCKETS];
	struct mpod **queue;
	size_t n_queue, cap_queue;
	struct km_kube_mirror_stats stats;
	int64_t over_said_ns;
};

/* ---- records -------------------------------------------------------------------- */

static struct mpod **slot(struct km_kube_mirror *m, const char *uid, uint64_t h)
{
	struct mpod **p = &m->buckets[km_hash_bucket(h, BUCKETS)];

	while (*p && ((*p)->h != h || strcmp((*p)->uid, uid)))
		p = &(*p)->next;
	return p;
}

static void pod_free(struct mpod *mp)
{
	km_arena_free(&mp->want_a);
	km_arena_free(&mp->have_a);
	free(mp->uid);
	free(mp);
}

static void enqueue(struct km_kube_mirror *m, struct mpod *mp)
{
	if (mp->queued)
		return;
	if (m->n_queue == m->cap_queue) {
		size_t cap = m->cap_queue ? m->cap_queue * 2 : 64;
		struct mpod **v = realloc(m->queue, cap * sizeof *v);

		if (!v)
			return; /* made at the pod's next update */
		m->queue = v;
		m->cap_queue = cap;
	}
	m->queue[m->n_queue++] = mp;
	mp->queued = true;
}

/* ---- what a pod wants ----------------------------------------------------------- */

static uint64_t probe_hash(const struct km_probe *p)
{
	uint64_t h = km_hash_field(KM_HASH_INIT, p->name);

	h = km_hash_i64(h, p->type);
	h = km_hash_field(h, p->host);
	h = km_hash_i64(h, p->port);
	h = km_hash_field(h, p->path ? p->path : "");
	h = km_hash_i64(h, p->https);
	h = km_hash_field(h, p->service ? p->service : "");
	for (size_t i = 0; i < p->n_headers; i++)
		h = km_hash_field(km_hash_field(h, p->headers[i].key),
				  p->headers[i].value);
	h = km_hash_i64(h, p->initial_delay_ms);
	h = km_hash_i64(h, p->timeout_ms);
	h = km_hash_i64(h, p->period_ms);
	h = km_hash_i64(h, p->success_threshold);
	return km_hash_i64(h, p->failure_threshold);
}

/* One probe of the pod as a kubemedic probe in a; NULL with *why set
 * when it is not mirrored. */
static const char *make_probe(const struct km_kube_mirror *m,
			      const struct km_kube_object *pod,
			      const struct km_kube_probe *k, struct km_arena *a,
			      struct km_probe *p, char *why, size_t why_len)
{
	struct km_probe_timing t = {
		.initial_delay_seconds = k->initial_delay_s,
		.timeout_seconds = k->timeout_s,
		.period_seconds = k->period_s,
		.success_threshold = k->success,
		.failure_threshold = k->failure,
	};
	struct km_field_ctx fc = {KM_FIELDS_YAML, ""};
	struct km_target_name tn;
	struct km_error err = {0};
	struct km_probe check;
	char name[NAME_MAX_LEN];
	const char *path = k->path && *k->path ? k->path : "/";
	int n;

	n = snprintf(name, sizeof name, "%s%sprobe/%s/%s.%s.%s", m->cluster,
		     *m->cluster ? ":" : "", pod->meta.ns, pod->meta.name,
		     k->container, k->which);
	if (n < 0 || (size_t)n >= sizeof name) {
		snprintf(why, why_len, "its target's name is too long");
		return NULL;
	}
	if (km_target_name_parse(name, &tn, why, why_len))
		return NULL;
	memset(p, 0, sizeof *p);
	p->type = (enum km_probe_type)k->type;
	p->host = pod->u.pod.pod_ip;
	p->port = k->port;
	p->source = KM_SOURCE_CONFIG;
	if (p->type == KM_PROBE_HTTP) {
		/* As the kubelet's URL: a path without its slash gets one. */
		p->path = *path == '/' ? km_arena_strdup(a, path)
				       : km_arena_printf(a, "/%s", path);
		p->https = k->https;
		p->tls_verify = false; /* the kubelet does not verify */
		if (k->n_headers) {
			struct km_kv *kv =
				km_arena_calloc(a, k->n_headers, sizeof *kv);

			if (!kv) {
				snprintf(why, why_len, "out of memory");
				return NULL;
			}
			for (size_t i = 0; i < k->n_headers; i++) {
				kv[i].key =
					km_arena_strdup(a, k->headers[2 * i]);
				kv[i].value = km_arena_strdup(
					a, k->headers[2 * i + 1]);
			}
			p->headers = kv;
			p->n_headers = k->n_headers;
		}
	}
	if (p->type == KM_PROBE_GRPC)
		p->service = km_arena_strdup(a, k->service ? k->service : "");
	if (km_probe_set_timing(p, &t, &fc, &err)) {
		snprintf(why, why_len, "%s", err.msg);
		return NULL;
	}
	/* kubemedic's own checks, as for a probe from the API or the
	 * config (the name aside: this one is the target's). */
	check = *p;
	check.name = "mirrored";
	if (km_probe_validate(&check, &fc, &err)) {
		snprintf(why, why_len, "%s", err.msg);
		return NULL;
	}
	p->host = km_arena_strdup(a, p->host);
	p->name = km_arena_strdup(a, name);
	if (!p->host || !p->name || (p->type == KM_PROBE_HTTP && !p->path) ||
	    (p->type == KM_PROBE_GRPC && !p->service)) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	return p->name;
}

void km_kube_mirror_put(struct km_kube_mirror *m,
			const struct km_kube_object *pod, const char *owner)
{
	const struct km_kube_pod *kp = &pod->u.pod;
	uint64_t h = km_hash_str(KM_HASH_INIT, pod->meta.uid), set_h;
	struct mpod **s = slot(m, pod->meta.uid, h), *mp = *s;
	bool wanted = kp->mirror && kp->pod_ip && *kp->pod_ip &&
		      kp->phase == KM_POD_RUNNING && !pod->meta.deleting &&
		      kp->n_probes;
	struct km_arena a;
	struct mprobe *v = NULL;
	const char **whys;
	size_t n = 0;

	if (!wanted) {
		/* A pod being deleted says so first (a MODIFIED with its
		 * deletionTimestamp, then DELETED): its probes go with it. */
		if (mp)
			km_kube_mirror_delete(m, pod->meta.uid,
					      pod->meta.deleting
						      ? "pod deleted"
						      : "probe no longer "
							"mirrored");
		return;
	}
	km_arena_init(&a, 4096);
	v = km_arena_calloc(&a, kp->n_probes, sizeof *v);
	set_h = km_hash_field(km_hash_field(KM_HASH_INIT, owner ? owner : ""),
			      kp->node_name ? kp->node_name : "");
	whys = km_arena_calloc(&a, kp->n_probes, sizeof *whys);
	for (size_t i = 0; v && whys && i < kp->n_probes; i++) {
		const struct km_kube_probe *k = &kp->probes[i];
		char why[KM_ERROR_MSG_MAX];
		struct km_probe p;

		if (!k->type) {
			snprintf(why, sizeof why, "%s", k->skip);
		} else if (make_probe(m, pod, k, &a, &p, why, sizeof why)) {
			v[n].name = p.name;
			v[n].p = p;
			v[n].h = probe_hash(&p);
			set_h = km_hash_i64(set_h, (int64_t)v[n].h);
			n++;
			continue;
		}
		set_h = km_hash_field(km_hash_field(set_h, k->container),
				      k->which);
		whys[i] = km_arena_strdup(&a, why);
	}
	if (!v || !whys || (mp && mp->want_h == set_h && mp->n_want == n)) {
		km_arena_free(&a);
		return; /* unchanged (or no memory: the next update) */
	}
	/* What is not mirrored is said once per change of the pod's
	 * probes, not at every update of the pod (its record remembers the
	 * set, even when nothing of it runs). */
	for (size_t i = 0; i < kp->n_probes; i++)
		if (whys[i]) {
			km_log(KM_LOG_INFO,
			       "kube: a pod's probe is not mirrored", "pod",
			       owner ? owner : pod->meta.name, "container",
			       kp->probes[i].container, "probe",
			       kp->probes[i].which, "why", whys[i], NULL);
			m->stats.skipped++;
		}
	if (!mp) {
		mp = calloc(1, sizeof *mp);
		if (!mp || !(mp->uid = strdup(pod->meta.uid))) {
			free(mp);
			km_arena_free(&a);
			return;
		}
		mp->h = h;
		*s = mp;
	}
	km_arena_free(&mp->want_a);
	mp->want_a = a;
	mp->want = v;
	mp->n_want = n;
	mp->want_h = set_h;
	mp->owner = km_arena_strdup(&mp->want_a, owner ? owner : "");
	mp->node = km_arena_strdup(&mp->want_a,
				   kp->node_name ? kp->node_name : "");
	mp->cause = "pod's probe changed";
	if (n || mp->n_have)
		enqueue(m, mp);
}

void km_kube_mirror_delete(struct km_kube_mirror *m, const char *uid,
			   const char *cause)
{
	uint64_t h = km_hash_str(KM_HASH_INIT, uid);
	struct mpod *mp = *slot(m, uid, h);

	if (!mp)
		return;
	km_arena_free(&mp->want_a);
	mp->want = NULL;
	mp->n_want = 0;
	mp->want_h = 0;
	mp->cause = cause;
	enqueue(m, mp);
}

/* ---- making it so --------------------------------------------------------------- */

static const struct mprobe *find_in(const struct mprobe *v, size_t n,
				    const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return &v[i];
	return NULL;
}

static int track(struct km_kube_mirror *m, const struct mpod *mp,
		 const struct mprobe *w)
{
	struct km_health_target ht = {
		.id = w->id,
		.name = w->name,
		.uid = mp->uid,
		.owner = mp->owner,
		.node = mp->node,
		.success_threshold = w->p.success_threshold,
		.failure_threshold = w->p.failure_threshold,
		.created_us = km_now_us(),
	};

	return km_health_track(m->health, &ht);
}

static int flush_pod(struct km_kube_mirror *m, struct mpod *mp,
		     struct km_error *err)
{
	struct km_target *batch = NULL;
	size_t n_new = 0, n_gone = 0, k = 0;
	int rc = 0;

	for (size_t i = 0; i < mp->n_have; i++)
		n_gone += !find_in(mp->want, mp->n_want, mp->have[i].name);
	for (size_t i = 0; i < mp->n_want; i++)
		n_new += !find_in(mp->have, mp->n_have, mp->want[i].name);
	if (n_new && m->stats.probes - n_gone + n_new > m->max) {
		int64_t now = km_mono_ns();

		m->stats.over_limit++;
		if (!m->over_said_ns || now - m->over_said_ns >= LOG_AGAIN_NS) {
			km_log(KM_LOG_WARN,
			       "kube: more pods' probes than are mirrored; "
			       "a pod's are not",
			       "pod", mp->owner, "max", KM_I(m->max), NULL);
			m->over_said_ns = now;
		}
		/* Tried again when the pod is next seen. */
		km_arena_free(&mp->want_a);
		mp->want = NULL;
		mp->n_want = 0;
		mp->want_h = 0;
		n_new = 0;
	}
	/* 1. What runs and is not wanted. */
	for (size_t i = 0; i < mp->n_have; i++) {
		const struct mprobe *h = &mp->have[i];

		if (find_in(mp->want, mp->n_want, h->name))
			continue;
		km_prober_remove(m->prober, h->name);
		rc = km_store_delete_target(m->store, h->name, mp->cause, err);
		if (rc && rc != KM_ENOTFOUND)
			return rc;
		rc = 0;
	}
	/* 2. What is wanted and does not run: made in one transaction. */
	if (n_new) {
		batch = calloc(n_new, sizeof *batch);
		if (!batch)
			return km_error_set(err, KM_ENOMEM, "out of memory");
		for (size_t i = 0; i < mp->n_want; i++)
			if (!find_in(mp->have, mp->n_have, mp->want[i].name))
				batch[k++] = (struct km_target){
					.name = mp->want[i].name,
					.uid = mp->uid,
					.owner = mp->owner,
					.node = mp->node,
				};
		rc = km_store_ensure_targets(m->store, batch, k, err);
	}
	/* 3. Every wanted one tracked by the hub and run by the prober:
	 * the new with their new ids, the others with their definition
	 * (the prober's upsert changes only what changed). */
	for (size_t i = 0, b = 0; !rc && i < mp->n_want; i++) {
		struct mprobe *w = &mp->want[i];
		const struct mprobe *h = find_in(mp->have, mp->n_have, w->name);

		w->id = h ? h->id : batch[b++].id;
		if (h && h->h == w->h)
			continue;
		w->p.target_id = w->id;
		if (track(m, mp, w) || km_prober_upsert(m->prober, &w->p))
			rc = km_error_set(err, KM_ENOMEM, "out of memory");
	}
	free(batch);
	if (rc)
		return rc;
	m->stats.probes = m->stats.probes - mp->n_have + mp->n_want;
	if (mp->n_have && !mp->n_want)
		m->stats.pods--;
	if (!mp->n_have && mp->n_want)
		m->stats.pods++;
	/* What is wanted now runs: want's arena becomes have's. */
	km_arena_free(&mp->have_a);
	mp->have_a = mp->want_a;
	km_arena_init(&mp->want_a, 4096);
	mp->have = mp->want;
	mp->n_have = mp->n_want;
	return 0;
}

int km_kube_mirror_flush(struct km_kube_mirror *m, struct km_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < m->n_queue; i++) {
		struct mpod *mp = m->queue[i];

		if ((rc = flush_pod(m, mp, err)))
			break;
		mp->queued = false;
		/* Forgotten once nothing runs and nothing is to be
		 * remembered (deleted, or tried again when next seen). */
		if (!mp->n_have && !mp->want_h) {
			struct mpod **s = slot(m, mp->uid, mp->h);

			*s = mp->next;
			pod_free(mp);
		}
	}
	/* What failed, and what follows it, waits for the next flush. */
	if (i && i < m->n_queue)
		memmove(m->queue, m->queue + i,
			(m->n_queue - i) * sizeof *m->queue);
	m->n_queue -= i;
	return rc;
}

/* ---- life ----------------------------------------------------------------------- */

int km_kube_mirror_new(const struct km_kube_mirror_options *o,
		       struct km_kube_mirror **out, struct km_error *err)
{
	struct km_kube_mirror *m = calloc(1, sizeof *m);

	*out = NULL;
	if (!m || !(m->cluster = strdup(o->cluster ? o->cluster : ""))) {
		free(m);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	m->store = o->store;
	m->health = o->health;
	m->prober = o->prober;
	m->max = o->max_probes ? o->max_probes : KM_KUBE_MIRROR_MAX;
	*out = m;
	return 0;
}

void km_kube_mirror_free(struct km_kube_mirror *m)
{
	if (!m)
		return;
	for (size_t b = 0; b < BUCKETS; b++)
		for (struct mpod *mp = m->buckets[b], *next; mp; mp = next) {
			next = mp->next;
			for (size_t i = 0; i < mp->n_have; i++)
				km_prober_remove(m->prober, mp->have[i].name);
			pod_free(mp);
		}
	free(m->queue);
	free(m->cluster);
	free(m);
}

void km_kube_mirror_stats(const struct km_kube_mirror *m,
			  struct km_kube_mirror_stats *out)
{
	*out = m->stats;
}
