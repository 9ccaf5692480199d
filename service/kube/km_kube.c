/*
 * The Kubernetes side's thread and its clusters (km_kube.h).
 */
#include "km_kube.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_hash.h"
#include "km_kube_informer.h"
#include "km_kube_source.h"
#include "km_log.h"
#include "km_model.h"
#include "km_loop.h"
#include "km_time.h"

#define FLUSH_DELAY_NS (50LL * 1000000)
#define FLUSH_RETRY_NS (1000LL * 1000000)
#define TICK_NS (1000LL * 1000000)
#define CHECKS_MAX 64
#define LOG_AGAIN_NS (60LL * 1000000000)

struct cluster {
	struct km_kube *k;
	char *name; /* "" for the unprefixed one */
	char *ns, *selector;
	struct km_kube_client *client;
	struct km_kube_source *source;
	struct km_kube_informer *inf[KM_RES_N];
	bool failing[KM_RES_N];
	/* What was last said of a failing resource, and when: the same
	 * failure is logged again at most once a minute, with how many
	 * retries failed meanwhile. */
	uint64_t said[KM_RES_N];
	int64_t said_ns[KM_RES_N];
	uint64_t retries[KM_RES_N];
	bool second_phase, pods_started;
	struct km_timer flush, tick, cp, phase;
	/* The control plane's check in progress: /livez, then /readyz. */
	struct km_kube_req *cp_req;
	struct km_kube_verdict livez;
	bool flush_failing;
	struct km_kube_stats stats; /* as of the last tick; under k->mu */
};

struct km_kube {
	struct km_loop *loop;
	pthread_t thread;
	bool thread_started;
	struct cluster *clusters;
	size_t n;
	struct km_kube_rules_options rules;
	int64_t cp_period_ns;
	size_t max_objects;
	struct km_store *store;
	struct km_health *health;
	struct km_prober *prober;
	pthread_mutex_t mu; /* the clusters' stats */
};

static const enum km_kube_resource first[] = {KM_RES_REPLICASET, KM_RES_NODE,
					      KM_RES_LEASE};
static const enum km_kube_resource second[] = {
	KM_RES_POD,        KM_RES_SERVICE,     KM_RES_ENDPOINTSLICE,
	KM_RES_DEPLOYMENT, KM_RES_STATEFULSET, KM_RES_DAEMONSET};

static const char *label(const struct cluster *c)
{
	return *c->name ? c->name : "(default)";
}

/* ---- flushing ------------------------------------------------------------------------ */

static void flush_result(struct cluster *c, int rc, const struct km_error *err)
{
	if (rc) {
		if (!c->flush_failing)
			km_log(KM_LOG_ERROR,
			       "kube: what the cluster showed cannot be "
			       "recorded; trying again every second",
			       "cluster", label(c), "error", err->msg, NULL);
		c->flush_failing = true;
		km_loop_timer_set(c->k->loop, &c->flush,
				  km_mono_ns() + FLUSH_RETRY_NS);
		return;
	}
	if (c->flush_failing)
		km_log(KM_LOG_INFO, "kube: recording again", "cluster",
		       label(c), NULL);
	c->flush_failing = false;
}

static void flush_fired(struct km_loop *l, void *arg)
{
	struct cluster *c = arg;
	struct km_error err = {0};
	int rc = km_kube_source_flush_start(c->source, &err);

	(void)l;
	if (rc)
		flush_result(c, rc, &err);
}

/* A write landed: what waited for it goes next. */
static void flushed(void *arg, int rc, const struct km_error *err)
{
	struct cluster *c = arg;

	flush_result(c, rc, err);
	if (!rc && km_kube_source_dirty(c->source) &&
	    !km_timer_armed(&c->flush))
		km_loop_timer_set(c->k->loop, &c->flush,
				  km_mono_ns() + FLUSH_DELAY_NS);
}

static void maybe_second_phase(struct cluster *c);

/* The informers call back from inside the client's callbacks (a list's
 * end can be a line of its stream), where no request may be started:
 * the second phase starts from a timer, at once. */
static void phase_fired(struct km_loop *l, void *arg)
{
	(void)l;
	maybe_second_phase(arg);
}

static void phase_soon(struct cluster *c)
{
	if (!c->second_phase && !km_timer_armed(&c->phase))
		km_loop_timer_set(c->k->loop, &c->phase, km_mono_ns());
}

static void changed(void *arg)
{
	struct cluster *c = arg;

	/* A list's end or an event: the first resources may have synced,
	 * and the rest start at once (not at the next tick). */
	phase_soon(c);
	if (!km_timer_armed(&c->flush))
		km_loop_timer_set(c->k->loop, &c->flush,
				  km_mono_ns() + FLUSH_DELAY_NS);
}

/* ---- informers ----------------------------------------------------------------------- */

static void status(void *arg, enum km_kube_resource r, const char *why);

static void start_informer(struct cluster *c, enum km_kube_resource r)
{
	struct km_kube_informer_options o = {
		.client = c->client,
		.source = c->source,
		.resource = r,
		.ns = c->ns,
		.label_selector = c->selector,
		.cluster = label(c),
		.changed = changed,
		.arg = c,
	};
	struct km_error err = {0};

	o.status = status;
	if (km_kube_informer_start(c->k->loop, &o, &c->inf[r], &err))
		km_log(KM_LOG_ERROR, "kube: cannot watch a resource", "cluster",
		       label(c), "resource", km_kube_resource_name(r), "error",
		       err.msg, NULL);
}

/* Pods once ReplicaSets have synced or failed, the rest of the resources
 * once ReplicaSets, Nodes and Leases have (a resource the cluster refuses
 * holds up nothing). */
static void maybe_second_phase(struct cluster *c)
{
	if (c->second_phase)
		return;
	/* Pods need only their owners' ReplicaSets: they start as soon as
	 * those are listed, beside Nodes and Leases (at 30,000 pods, the
	 * pods' stream is most of the sync; bench/RESULTS.md). */
	if (!c->pods_started &&
	    (!c->inf[KM_RES_REPLICASET] || c->failing[KM_RES_REPLICASET] ||
	     km_kube_informer_synced(c->inf[KM_RES_REPLICASET]))) {
		c->pods_started = true;
		start_informer(c, KM_RES_POD);
	}
	for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
		if (c->inf[first[i]] && !c->failing[first[i]] &&
		    !km_kube_informer_synced(c->inf[first[i]]))
			return;
	c->second_phase = true;
	for (size_t i = 0; i < sizeof second / sizeof second[0]; i++)
		if (second[i] != KM_RES_POD)
			start_informer(c, second[i]);
}

static void status(void *arg, enum km_kube_resource r, const char *why)
{
	struct cluster *c = arg;
	int64_t now = km_mono_ns();

	if (why) {
		uint64_t h = km_hash_str(KM_HASH_INIT, why);

		if (!c->failing[r] || h != c->said[r] ||
		    now - c->said_ns[r] >= LOG_AGAIN_NS) {
			km_log(KM_LOG_WARN,
			       "kube: watching a resource fails; trying "
			       "again with backoff",
			       "cluster", label(c), "resource",
			       km_kube_resource_name(r), "error", why,
			       "failed_retries", KM_I(c->retries[r]), NULL);
			c->said[r] = h;
			c->said_ns[r] = now;
			c->retries[r] = 0;
		} else {
			c->retries[r]++;
		}
	} else if (c->failing[r]) {
		km_log(KM_LOG_INFO, "kube: watching a resource again",
		       "cluster", label(c), "resource",
		       km_kube_resource_name(r), "failed_retries",
		       KM_I(c->retries[r]), NULL);
		c->retries[r] = 0;
	}
	c->failing[r] = why != NULL;
	phase_soon(c);
}

/* The cluster's counters, for km_kube_get_stats on another thread. */
static void snapshot(struct cluster *c)
{
	struct km_kube_stats st = {.clusters = 1};
	struct km_kube_client_stats cs;
	struct km_kube_source_stats ss;

	for (int r = 0; r < KM_RES_N; r++) {
		struct km_kube_informer_stats is;

		if (!c->inf[r])
			continue;
		km_kube_informer_stats(c->inf[r], &is);
		st.lists += is.lists;
		st.watches += is.watches;
		st.events += is.events;
		st.bookmarks += is.bookmarks;
		st.gone += is.gone;
		st.failures += is.failures;
		st.bad_objects += is.bad_objects;
	}
	km_kube_client_stats(c->client, &cs);
	st.requests = cs.requests;
	st.throttled = cs.throttled;
	st.failed_requests = cs.failed;
	st.bytes = cs.bytes;
	km_kube_source_stats(c->source, &ss);
	for (int r = 0; r < KM_RES_N; r++)
		st.objects += ss.objects[r];
	st.targets = ss.targets;
	st.observations = ss.observations;
	st.mirrored = ss.mirrored;
	st.mirror_skipped = ss.mirror_skipped;
	st.mirror_over_limit = ss.mirror_over_limit;
	pthread_mutex_lock(&c->k->mu);
	c->stats = st;
	pthread_mutex_unlock(&c->k->mu);
}

void km_kube_get_stats(struct km_kube *k, struct km_kube_stats *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->n; i++) {
		const struct km_kube_stats *s = &k->clusters[i].stats;

		out->clusters += s->clusters;
		out->lists += s->lists;
		out->watches += s->watches;
		out->events += s->events;
		out->bookmarks += s->bookmarks;
		out->gone += s->gone;
		out->failures += s->failures;
		out->bad_objects += s->bad_objects;
		out->requests += s->requests;
		out->throttled += s->throttled;
		out->failed_requests += s->failed_requests;
		out->bytes += s->bytes;
		out->objects += s->objects;
		out->targets += s->targets;
		out->observations += s->observations;
		out->mirrored += s->mirrored;
		out->mirror_skipped += s->mirror_skipped;
		out->mirror_over_limit += s->mirror_over_limit;
	}
	pthread_mutex_unlock(&k->mu);
}

static void tick_fired(struct km_loop *l, void *arg)
{
	struct cluster *c = arg;

	km_kube_source_tick(c->source, km_now_us());
	maybe_second_phase(c);
	changed(c);
	snapshot(c);
	km_loop_timer_set(l, &c->tick, km_mono_ns() + TICK_NS);
}

/* ---- the control plane --------------------------------------------------------------- */

static void cp_verdict(struct cluster *c, const struct km_kube_verdict *v)
{
	struct km_error err = {0};

	if (km_kube_source_component(c->source, "apiserver", v, &err))
		km_log(KM_LOG_ERROR, "kube: the API server's verdict is lost",
		       "cluster", label(c), "error", err.msg, NULL);
	changed(c);
}

/* Why a check did not answer, for its target's reason: the client's
 * message without its "GET URL: " (the URL is the cluster's, and a
 * reason is cut at 120 characters, where the cause would be lost). */
static const char *no_answer(const struct km_error *err)
{
	const char *s = err->msg, *colon;

	if (!strncmp(s, "GET ", 4) && (colon = strstr(s, ": ")))
		return colon + 2;
	return s;
}

static void readyz_done(void *arg, long status, const char *body, size_t len,
			const struct km_error *err)
{
	struct cluster *c = arg;
	struct km_kube_check checks[CHECKS_MAX];
	struct km_kube_verdict v;
	size_t n;

	c->cp_req = NULL;
	km_kube_judge_apiserver("/readyz", err ? 0 : status, body, len, checks,
				CHECKS_MAX, &n, &v);
	if (err && v.state != KM_STATE_HEALTHY)
		snprintf(v.reason, sizeof v.reason,
			 "/readyz did not answer: %.400s", no_answer(err));
	cp_verdict(c, &v);
}

static void livez_done(void *arg, long status, const char *body, size_t len,
		       const struct km_error *err)
{
	struct cluster *c = arg;
	struct km_kube_check checks[CHECKS_MAX];
	struct km_error e2 = {0};
	size_t n;

	c->cp_req = NULL;
	km_kube_judge_apiserver("/livez", err ? 0 : status, body, len, checks,
				CHECKS_MAX, &n, &c->livez);
	if (c->livez.state != KM_STATE_HEALTHY) {
		if (err)
			snprintf(c->livez.reason, sizeof c->livez.reason,
				 "/livez did not answer: %.400s",
				 no_answer(err));
		cp_verdict(c, &c->livez);
		return;
	}
	if (km_kube_get(c->client, "/readyz?verbose", readyz_done, c,
			&c->cp_req, &e2))
		km_log(KM_LOG_ERROR, "kube: cannot ask /readyz", "cluster",
		       label(c), "error", e2.msg, NULL);
}

static void cp_fired(struct km_loop *l, void *arg)
{
	struct cluster *c = arg;
	struct km_error err = {0};

	km_loop_timer_set(l, &c->cp, km_mono_ns() + c->k->cp_period_ns);
	if (c->cp_req)
		return; /* the last check has not ended: it has a timeout */
	if (km_kube_get(c->client, "/livez?verbose", livez_done, c, &c->cp_req,
			&err))
		km_log(KM_LOG_ERROR, "kube: cannot ask /livez", "cluster",
		       label(c), "error", err.msg, NULL);
}

/* ---- life ---------------------------------------------------------------------------- */

static void cluster_free(struct cluster *c)
{
	struct km_error err = {0};

	for (int r = 0; r < KM_RES_N; r++)
		km_kube_informer_free(c->inf[r]);
	km_kube_cancel(c->cp_req);
	if (c->k && c->k->loop) {
		km_loop_timer_cancel(c->k->loop, &c->flush);
		km_loop_timer_cancel(c->k->loop, &c->tick);
		km_loop_timer_cancel(c->k->loop, &c->cp);
		km_loop_timer_cancel(c->k->loop, &c->phase);
	}
	/* What was decided and not yet flushed. */
	if (c->source && km_kube_source_flush(c->source, &err))
		km_log(KM_LOG_WARN, "kube: the last changes are not recorded",
		       "cluster", label(c), "error", err.msg, NULL);
	km_kube_source_free(c->source);
	km_kube_client_free(c->client);
	free(c->name);
	free(c->ns);
	free(c->selector);
}

static int cluster_start(struct km_kube *k, struct cluster *c,
			 const struct km_kube_cluster_options *o,
			 struct km_error *err)
{
	struct km_kube_source_options so = {
		.cluster = o->name,
		.store = k->store,
		.health = k->health,
		.rules = k->rules,
		.max_objects = k->max_objects,
		.prober = k->prober,
		.loop = k->loop,
		.flushed = flushed,
		.flushed_arg = c,
	};
	struct km_kube_client_options co = o->client;
	int rc;

	c->k = k;
	c->name = strdup(o->name ? o->name : "");
	c->ns = o->ns && *o->ns ? strdup(o->ns) : NULL;
	c->selector = o->label_selector && *o->label_selector
			      ? strdup(o->label_selector)
			      : NULL;
	if (!c->name || (o->ns && *o->ns && !c->ns) ||
	    (o->label_selector && *o->label_selector && !c->selector))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	co.name = c->name;
	km_timer_init(&c->flush, flush_fired, c);
	km_timer_init(&c->tick, tick_fired, c);
	km_timer_init(&c->cp, cp_fired, c);
	km_timer_init(&c->phase, phase_fired, c);
	if ((rc = km_kube_client_new(k->loop, &co, &c->client, err)) ||
	    (rc = km_kube_source_new(&so, &c->source, err)))
		return rc;
	for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
		start_informer(c, first[i]);
	km_loop_timer_set(k->loop, &c->tick, km_mono_ns() + TICK_NS);
	km_loop_timer_set(k->loop, &c->cp, km_mono_ns());
	snapshot(c); /* counted from the start (the loop is not running) */
	return 0;
}

static void *thread_main(void *arg)
{
	struct km_kube *k = arg;

	pthread_setname_np(pthread_self(), "km-kube");
	if (km_loop_run(k->loop))
		km_log(KM_LOG_ERROR,
		       "kube: the loop failed; clusters are no "
		       "longer watched",
		       NULL);
	return NULL;
}

int km_kube_start(const struct km_kube_options *o, struct km_kube **out,
		  struct km_error *err)
{
	struct km_kube *k = calloc(1, sizeof *k);
	int rc;

	*out = NULL;
	if (!k)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	pthread_mutex_init(&k->mu, NULL);
	k->store = o->store;
	k->health = o->health;
	k->prober = o->prober;
	k->rules = o->rules;
	k->max_objects = o->max_objects;
	k->cp_period_ns = (o->control_plane_period_ms > 0
				   ? o->control_plane_period_ms
				   : 10000) *
			  1000000LL;
	k->clusters =
		calloc(o->n_clusters ? o->n_clusters : 1, sizeof *k->clusters);
	if (!k->clusters) {
		pthread_mutex_destroy(&k->mu);
		free(k);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	if ((rc = km_loop_create(&k->loop, err)))
		goto fail;
	for (size_t i = 0; i < o->n_clusters; i++) {
		k->n = i + 1;
		rc = cluster_start(k, &k->clusters[i], &o->clusters[i], err);
		if (rc) {
			km_error_set(err, rc, "cluster \"%s\": %s",
				     o->clusters[i].name ? o->clusters[i].name
							 : "",
				     err->msg);
			goto fail;
		}
	}
	if (pthread_create(&k->thread, NULL, thread_main, k)) {
		rc = km_error_set(err, KM_ENOMEM, "cannot start a thread");
		goto fail;
	}
	k->thread_started = true;
	*out = k;
	return 0;
fail:
	km_kube_stop(k);
	return rc;
}

void km_kube_stop(struct km_kube *k)
{
	if (!k)
		return;
	if (k->thread_started) {
		km_loop_stop(k->loop);
		pthread_join(k->thread, NULL);
	}
	/* The loop is stopped: its owner may free what runs on it. */
	for (size_t i = 0; i < k->n; i++)
		cluster_free(&k->clusters[i]);
	if (k->loop) {
		km_loop_run_pending(k->loop);
		km_loop_destroy(k->loop);
	}
	free(k->clusters);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

struct km_loop *km_kube_loop(struct km_kube *k)
{
	return k->loop;
}

static struct cluster *cluster_named(struct km_kube *k, const char *name)
{
	for (size_t i = 0; i < k->n; i++)
		if (!strcmp(k->clusters[i].name, name ? name : ""))
			return &k->clusters[i];
	return NULL;
}

struct km_kube_client *km_kube_cluster_client(struct km_kube *k,
					      const char *cluster)
{
	struct cluster *c = cluster_named(k, cluster);

	return c ? c->client : NULL;
}

struct km_kube_source *km_kube_cluster_source(struct km_kube *k,
					      const char *cluster)
{
	struct cluster *c = cluster_named(k, cluster);

	return c ? c->source : NULL;
}

bool km_kube_cluster_synced(struct km_kube *k, const char *cluster)
{
	struct cluster *c = cluster_named(k, cluster);

	if (!c || !c->second_phase)
		return false;
	for (int r = 0; r < KM_RES_N; r++)
		if (c->inf[r] && !c->failing[r] &&
		    !km_kube_informer_synced(c->inf[r]))
			return false;
	return true;
}

size_t km_kube_cluster_count(const struct km_kube *k)
{
	return k->n;
}

const char *km_kube_cluster_name(const struct km_kube *k, size_t i)
{
	return i < k->n ? k->clusters[i].name : NULL;
}
