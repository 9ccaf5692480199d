/*
 * The recovery engine (km_recovery.h).
 *
 * Every recovery the engine holds is a job. A job is in one list at a
 * time: e->queue (waiting for a worker, its target, or its backoff) or
 * e->active (its target claimed: being committed, sent, or verified).
 * Each step's store write is asynchronous: the job waits (w_pending) for
 * the writer's answer, which comes back through e->landed and the eventfd,
 * and then() goes on from there. A job with a write in flight is never
 * freed before it lands.
 */
#include "km_recovery.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "km_kube_client.h"
#include "km_kube_source.h"
#include "km_log.h"
#include "km_store.h"
#include "recovery_internal.h"

#define TICK_NS (1000LL * 1000000)
/* Every cached node counted in its zone again (km_zones.h): 5 s. */
#define ZONE_SCAN_TICKS 5
#define DRAIN_PODS_MAX 10000
/* The shortest backoff before an attempt is made again. */
#define BACKOFF_MIN_MS 1000

/* ---- jobs ----------------------------------------------------------------------- */

static void drain_fired(struct km_loop *l, void *arg);
static void drain_start(struct job *j);
static size_t pods_left(struct km_recovery_engine *e, const struct job *j);

void rec_job_free(struct job *j)
{
	km_arena_free(&j->a);
	free(j->policy_key);
	free(j);
}

struct job *rec_job_new(struct km_recovery_engine *e,
			const struct km_recovery *r)
{
	struct job *j = calloc(1, sizeof *j);
	struct km_arena *a;

	if (!j)
		return NULL;
	a = &j->a;
	km_arena_init(a, 1024);
	j->e = e;
	j->r = *r;
#define DUP(f) (r->f && !(j->r.f = km_arena_strdup(a, r->f)))
	if (DUP(target) || DUP(cluster) || DUP(target_uid) || DUP(reason) ||
	    DUP(requester) || DUP(policy) || DUP(idempotency_key) ||
	    DUP(skip_rule) || DUP(last_error)) {
		rec_job_free(j);
		return NULL;
	}
#undef DUP
	km_list_init(&j->node);
	km_list_init(&j->landed);
	km_timer_init(&j->drain_timer, drain_fired, j);
	return j;
}

/* The end of a job: it leaves the engine (its writes have landed). Its
 * budget slot is freed and its policy told how it ended. */
void rec_job_done(struct job *j)
{
	struct km_recovery_engine *e = j->e;

	if (j->admitted && e->budget)
		km_budget_release(e->budget, j->r.target);
	if (j->policy_key)
		rec_policy_told(e, j->policy_key,
				km_recovery_phase_final(j->r.phase)
					? j->r.phase
					: KM_PHASE_CANCELLED);

	km_list_del(&j->node);
	if (j->verifying)
		count(e, &e->stats.verifying, -1);
	if (j->in_flight) {
		e->in_flight--;
		j->in_flight = false;
	}
	pthread_mutex_lock(&e->mu);
	e->accepted--;
	pthread_mutex_unlock(&e->mu);
	rec_job_free(j);
}

/* ---- store writes ----------------------------------------------------------------- */

void rec_write_done(void *arg, int rc, const struct km_error *err)
{
	struct job *j = arg;
	struct km_recovery_engine *e = j->e;
	uint64_t one = 1;

	pthread_mutex_lock(&e->mu);
	j->w_rc = rc;
	if (rc && err)
		j->w_err = *err;
	km_list_add_tail(&e->landed, &j->landed);
	pthread_cond_broadcast(&e->cv); /* km_recovery_stop may wait */
	if (write(e->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		km_log(KM_LOG_ERROR, "recovery: cannot wake the loop", "error",
		       strerror(errno), NULL);
	pthread_mutex_unlock(&e->mu);
}

/* Writes the recovery's next phase (0: the same) with an event; then(j,
 * rc, err) when the writer answers. expected: the phase it must be in. */
static void write_phase(struct job *j, int expected, int phase, long http,
			const char *msg, then_fn then)
{
	struct km_recovery_engine *e = j->e;
	int rc;

	snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "");
	j->u = (struct km_recovery_update){
		.id = j->r.id,
		.expected_phase = expected,
		.phase = phase,
		.attempts = j->r.attempts,
		.http_status = (int32_t)http, /* < 0: no answer */
		.message = msg ? j->msg : NULL,
		.skip_rule = phase == KM_PHASE_SKIPPED ? j->msg : NULL,
		.not_before_us = j->not_before_us,
	};
	j->not_before_us = 0;
	j->then = then;
	j->w_pending = true;
	pthread_mutex_lock(&e->mu);
	e->writes++;
	pthread_mutex_unlock(&e->mu);
	rc = km_store_update_recovery_async(e->o.store, &j->u, rec_write_done,
					    j);
	if (rc) {
		struct km_error err = {0};

		km_error_set(&err, rc, "the store refused the write");
		rec_write_done(j, rc,
			       &err); /* lands through the loop, as any */
	}
}

static void pump(struct km_recovery_engine *e);

static void on_efd(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	struct km_recovery_engine *e = arg;
	struct km_list landed;
	uint64_t n;

	(void)l;
	(void)events;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		km_log(KM_LOG_ERROR, "recovery: cannot read the wake-up",
		       "error", strerror(errno), NULL);
	km_list_init(&landed);
	pthread_mutex_lock(&e->mu);
	while (!km_list_empty(&e->landed)) {
		struct km_list *x = e->landed.next;

		km_list_del(x);
		km_list_add_tail(&landed, x);
	}
	pthread_mutex_unlock(&e->mu);
	while (!km_list_empty(&landed)) {
		struct job *j = km_list_entry(landed.next, struct job, landed);

		km_list_del(&j->landed);
		pthread_mutex_lock(&e->mu);
		e->writes--;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->mu);
		j->w_pending = false;
		if (j->w_rc == 0 && j->u.phase)
			j->r.phase = j->u.phase;
		if (e->stopping)
			continue; /* freed by stop */
		j->then(j, j->w_rc, &j->w_err);
	}
	if (!e->stopping)
		pump(e);
}

/* ---- verification --------------------------------------------------------------- */

static void verified(struct job *j, int rc, const struct km_error *err)
{
	if (rc)
		km_log(KM_LOG_ERROR, "recovery: its outcome cannot be recorded",
		       "id", KM_I(j->r.id), "error", err->msg, NULL);
	rec_job_done(j);
}

#define OLD_UIDS_MAX 100000

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_old(const struct job *j, const char *uid)
{
	if (!uid || (j->r.target_uid && !strcmp(uid, j->r.target_uid)))
		return true;
	return j->have_old && j->n_old &&
	       bsearch(&uid, j->old_uids, j->n_old, sizeof *j->old_uids,
		       cmp_str);
}

/* The owner whose pods the job restarts, or NULL: the pod alone. */
static const char *pods_owner(const struct job *j)
{
	if (!j->verify)
		return NULL;
	if (j->r.action == KM_ACTION_ROLLOUT_RESTART ||
	    strcmp(j->verify, j->r.target))
		return j->verify;
	return NULL;
}

/* Calls fn for every live pod target of owner (NULL: the pod named
 * name) in state (0: any), until fn returns false. */
static void each_pod(struct km_health *h, const char *cluster,
		     const char *owner, const char *name, int state,
		     bool (*fn)(const struct km_target *t, void *arg),
		     void *arg)
{
	struct km_health_filter f = {.kind = KM_KIND_POD,
				     .state = state,
				     .cluster = cluster,
				     .owner = owner};
	struct km_arena a;
	struct km_target *v;
	int64_t after = 0, seq;
	size_t n;
	bool more = true;

	km_arena_init(&a, 8192);
	if (!owner) {
		struct km_health_view hv;
		struct km_error err = {0};

		if (!km_health_get(h, name, &a, &hv, &err) &&
		    (!state || hv.target.state == state))
			fn(&hv.target, arg);
		km_arena_free(&a);
		return;
	}
	while (more &&
	       !km_health_list(h, &f, after, 256, &a, &v, &n, &more, &seq) &&
	       n) {
		for (size_t i = 0; i < n; i++)
			if (!fn(&v[i], arg))
				goto out;
		after = v[n - 1].id;
		km_arena_rewind(&a);
	}
out:
	km_arena_free(&a);
}

static bool add_old(const struct km_target *t, void *arg)
{
	struct job *j = arg;

	if (!t->uid || !*t->uid)
		return true;
	if (j->n_old >= OLD_UIDS_MAX)
		return false;
	/* Doubles at each power of two (the arena keeps the old ones). */
	if (!(j->n_old & (j->n_old - 1))) {
		size_t cap = j->n_old ? j->n_old * 2 : 1;
		const char **v = km_arena_alloc(&j->a, cap * sizeof *v);

		if (!v)
			return false;
		if (j->n_old)
			memcpy(v, j->old_uids, j->n_old * sizeof *v);
		j->old_uids = v;
	}
	if (!(j->old_uids[j->n_old] = km_arena_strdup(&j->a, t->uid)))
		return false;
	j->n_old++;
	return true;
}

/* At the dispatch: the pods there are now are not replacements. */
static void note_old_pods(struct job *j)
{
	if (j->have_old || !j->verify)
		return;
	j->n_old = 0;
	j->old_uids = NULL;
	each_pod(j->e->o.health, j->r.cluster, pods_owner(j), j->r.target, 0,
		 add_old, j);
	if (j->n_old)
		qsort(j->old_uids, j->n_old, sizeof *j->old_uids, cmp_str);
	j->have_old = true;
}

struct fresh {
	struct job *j;
	int64_t since_us;
	bool found;
};

/* For a recovery a pod's probe asked for: whether the replacement pod's
 * own probe (the same container's) is HEALTHY, its name kept. */
static bool fresh_probe_healthy(struct job *j, const char *pod)
{
	struct km_target_name tn;
	char why[128], name[KM_POLICY_TARGET_MAX];
	int st, n;

	if (km_target_name_parse(pod, &tn, why, sizeof why))
		return false;
	n = snprintf(name, sizeof name, "%.*s%sprobe/%.*s/%.*s%s",
		     (int)tn.cluster_len, tn.cluster ? tn.cluster : "",
		     tn.cluster_len ? ":" : "", (int)tn.ns_len,
		     tn.ns ? tn.ns : "", (int)tn.name_len, tn.name,
		     j->probe_sfx);
	if (n < 0 || (size_t)n >= sizeof name ||
	    km_health_state(j->e->o.health, name, &st) ||
	    st != KM_STATE_HEALTHY)
		return false;
	j->fresh_probe = km_arena_strdup(&j->a, name);
	return true;
}

static bool is_fresh(const struct km_target *t, void *arg)
{
	struct fresh *f = arg;

	f->found = !is_old(f->j, t->uid) && t->created_us >= f->since_us &&
		   (!f->j->probe_sfx || fresh_probe_healthy(f->j, t->name));
	if (f->found)
		f->j->fresh = km_arena_strdup(&f->j->a, t->name);
	return !f->found;
}

/* Whether a pod that replaced what the job restarted is HEALTHY. */
static bool fresh_pod_healthy(struct job *j)
{
	/* creationTimestamp has whole seconds: a pod made in the
	 * dispatch's second may be older than the dispatch. The pods known
	 * at the dispatch are left out by their uids. A recovery taken back
	 * after a restart has no such list (only the restarted pod's uid):
	 * a pod of the dispatch's second counts as new. Asking for a whole
	 * second more instead left out the replacement itself, made within
	 * a second of a dispatch as it usually is, and such a recovery
	 * ended NOT_RECOVERED with its pod replaced and healthy. */
	int64_t s = j->dispatched_us / 1000000 * 1000000;
	struct fresh f = {.j = j, .since_us = s};

	each_pod(j->e->o.health, j->r.cluster, pods_owner(j), j->r.target,
		 KM_STATE_HEALTHY, is_fresh, &f);
	return f.found;
}

/* Whether the job's check holds now: a pod made after the dispatch is
 * healthy (restart pod: of the same controller, or of the same name; a
 * rollout restart: of the workload, which is healthy too; for a pod's
 * probe, the new pod's probe is healthy too), or the node's spec is as
 * wanted. */
static bool check_now(struct job *j, bool at_deadline)
{
	struct km_recovery_engine *e = j->e;

	(void)at_deadline;
	if (!j->verify) {
		struct km_kube_source *src =
			km_kube_cluster_source(e->o.kube, j->r.cluster);
		const struct km_kube_object *o;
		const char *name = strrchr(j->r.target, '/');

		if (!src || !name)
			return false;
		o = km_kube_source_get(src, KM_RES_NODE, "", name + 1);
		if (j->r.action == KM_ACTION_DRAIN)
			return o && o->u.node.unschedulable &&
			       pods_left(e, j) == 0;
		return o && o->u.node.unschedulable ==
				    (j->r.action == KM_ACTION_CORDON);
	}
	if (j->r.action == KM_ACTION_ROLLOUT_RESTART) {
		int st;

		if (km_health_state(e->o.health, j->verify, &st) ||
		    st != KM_STATE_HEALTHY)
			return false;
	}
	return fresh_pod_healthy(j);
}

static void verify_step(struct job *j, int64_t now_ns)
{
	bool deadline = now_ns >= j->deadline_ns;
	bool ok = check_now(j, deadline);
	char msg[KM_ERROR_MSG_MAX];

	if (!ok && !deadline)
		return;
	j->verifying = false;
	count(j->e, &j->e->stats.verifying, -1);
	if (ok) {
		count(j->e, &j->e->stats.verified, 1);
		if (j->fresh && j->fresh_probe)
			snprintf(msg, sizeof msg,
				 "%.140s has a new pod, %.140s, and its probe "
				 "%.160s is healthy",
				 pods_owner(j) ? j->verify : "the pod's name",
				 j->fresh, j->fresh_probe);
		else if (j->fresh)
			snprintf(msg, sizeof msg,
				 "%.200s has a new pod, %.200s, and it is "
				 "healthy",
				 pods_owner(j) ? j->verify : "the pod's name",
				 j->fresh);
		else if (j->r.action == KM_ACTION_DRAIN)
			snprintf(
				msg, sizeof msg,
				"node is unschedulable, and no pod to evict is "
				"left on it");
		else
			snprintf(msg, sizeof msg, "node is %s",
				 j->r.action == KM_ACTION_CORDON
					 ? "unschedulable"
					 : "schedulable");
	} else {
		count(j->e, &j->e->stats.not_recovered, 1);
		if (j->verify)
			snprintf(msg, sizeof msg,
				 "%s did not become healthy within %lld s",
				 j->verify,
				 (long long)(j->e->o.verify_window_ms / 1000));
		else
			snprintf(msg, sizeof msg,
				 "the node's spec.unschedulable did not change "
				 "within %lld s",
				 (long long)(j->e->o.verify_window_ms / 1000));
	}
	write_phase(j, KM_PHASE_SUCCEEDED,
		    ok ? KM_PHASE_VERIFIED : KM_PHASE_NOT_RECOVERED, 0, msg,
		    verified);
}

static void start_verify(struct job *j, int64_t window_left_ns)
{
	j->verifying = true;
	count(j->e, &j->e->stats.verifying, 1);
	j->deadline_ns = km_mono_ns() + window_left_ns;
	verify_step(j, km_mono_ns());
}

/* ---- dispatch ------------------------------------------------------------------- */

static void requeue(struct job *j, int64_t delay_ms);

static void finished(struct job *j, int rc, const struct km_error *err)
{
	struct km_recovery_engine *e = j->e;

	if (j->in_flight) {
		e->in_flight--;
		j->in_flight = false;
	}
	if (rc) {
		/* The outcome is not recorded: the recovery stays DISPATCHED
		 * and is sent again (the actions are idempotent). */
		km_log(KM_LOG_ERROR,
		       "recovery: its outcome cannot be recorded; sent again",
		       "id", KM_I(j->r.id), "error", err->msg, NULL);
		requeue(j, BACKOFF_MIN_MS);
		return;
	}
	if (j->r.phase == KM_PHASE_SUCCEEDED)
		start_verify(j, j->e->o.verify_window_ms * 1000000);
	else
		rec_job_done(j);
}

static void requeued(struct job *j, int rc, const struct km_error *err)
{
	(void)err;
	if (j->in_flight) {
		j->e->in_flight--;
		j->in_flight = false;
	}
	if (rc) /* stays DISPATCHED: sent again after the backoff */
		km_log(KM_LOG_WARN, "recovery: a retry cannot be recorded",
		       "id", KM_I(j->r.id), "error", err->msg, NULL);
}

/* Back to the queue, not before delay_ms. */
static void requeue(struct job *j, int64_t delay_ms)
{
	struct km_recovery_engine *e = j->e;

	km_list_del(&j->node);
	km_list_add_tail(&e->queue, &j->node);
	j->not_before_ns = km_mono_ns() + delay_ms * 1000000;
	if (!km_timer_armed(&e->pump) || e->pump.due > j->not_before_ns)
		km_loop_timer_set(e->loop, &e->pump, j->not_before_ns);
}

static int64_t backoff_ms(const struct km_recovery_engine *e, int attempts)
{
	int64_t ms = BACKOFF_MIN_MS;

	for (int i = 1; i < attempts && ms < e->o.backoff_max_ms; i++)
		ms *= 2;
	if (ms > e->o.backoff_max_ms)
		ms = e->o.backoff_max_ms;
	/* Jitter: 0.75 to 1.25 of it, so that many retries spread. */
	return ms * 3 / 4 + (int64_t)(random() % (ms / 2 + 1));
}

static void answered(void *arg, long status, const char *body, size_t len,
		     const struct km_error *err)
{
	struct job *j = arg;
	struct km_recovery_engine *e = j->e;
	char why[KM_ERROR_MSG_MAX];
	int64_t retry_after = 0;
	enum km_kube_outcome out;

	/* The server's own throttling sends Retry-After as a header only. */
	int64_t header_retry = j->req ? km_kube_req_retry_after(j->req) : 0;

	j->req = NULL;
	count(e, &e->stats.attempts, 1);
	if (!status) {
		out = KM_KUBE_RETRY;
		snprintf(why, sizeof why, "no answer: %.480s",
			 err ? err->msg : "");
		/* Recorded as none: not the status of the attempt before,
		 * beside this attempt's "no answer". */
		status = -1;
	} else {
		out = km_kube_action_outcome(&j->act, status, body, len,
					     &retry_after, why, sizeof why);
		if (retry_after <= 0)
			retry_after = header_retry;
	}
	switch (out) {
	case KM_KUBE_DONE:
	case KM_KUBE_GONE:
		if (j->r.action == KM_ACTION_DRAIN) {
			drain_start(j); /* cordoned: now the evictions */
			return;
		}
		count(e, &e->stats.succeeded, 1);
		write_phase(j, KM_PHASE_DISPATCHED, KM_PHASE_SUCCEEDED, status,
			    why, finished);
		return;
	case KM_KUBE_RETRY:
	case KM_KUBE_THROTTLED:
	case KM_KUBE_CONFLICT:
		if (j->r.attempts < e->o.max_attempts) {
			int64_t ms = retry_after > 0
					     ? retry_after * 1000
					     : backoff_ms(e, j->r.attempts);

			j->not_before_us = km_now_us() + ms * 1000;
			write_phase(j, KM_PHASE_DISPATCHED, KM_PHASE_QUEUED,
				    status, why, requeued);
			requeue(j, ms);
			return;
		}
		/* The last attempt: failed. */
		/* fall through */
	default:
		count(e, &e->stats.failed, 1);
		write_phase(j, KM_PHASE_DISPATCHED, KM_PHASE_FAILED, status,
			    why, finished);
		return;
	}
}

/* ---- drain ---------------------------------------------------------------------- */
/*
 * A drain is a cordon (its first request, sent and retried as any), then
 * the evictions of the node's pods (policy/v1 Eviction, the pod's uid as
 * precondition: PodDisruptionBudgets decide), one at a time, in passes:
 * a pod a budget refuses (429) waits for the next pass, o.drain_retry_ms
 * later, until o.drain_timeout_ms. DaemonSet pods (their controller would
 * put them back) and mirror pods (the kubelet's own; owned by the Node)
 * are left, as kubectl drain leaves them; finished pods need nothing.
 * Each pass that leaves pods is an event of the recovery's history.
 */

static bool evictable(const struct km_kube_object *o, const char *node,
		      bool *skipped)
{
	const struct km_kube_pod *p = &o->u.pod;
	const char *k = o->meta.owner_kind;

	*skipped = false;
	if (!p->node_name || strcmp(p->node_name, node) ||
	    p->phase == KM_POD_SUCCEEDED || p->phase == KM_POD_FAILED)
		return false;
	if (k && (!strcmp(k, "DaemonSet") || !strcmp(k, "Node"))) {
		*skipped = true;
		return false;
	}
	return true;
}

struct collect {
	struct job *j;
	const char *node;
	size_t cap;
	bool oom;
};

static void collect_pod(const struct km_kube_object *o, void *arg)
{
	struct collect *c = arg;
	struct job *j = c->j;
	struct drain_pod *v;
	bool skipped;

	if (!evictable(o, c->node, &skipped)) {
		j->skipped_pods += skipped;
		return;
	}
	if ((!o->meta.owner_kind || !*o->meta.owner_kind) &&
	    !o->meta.deleting) {
		/* No controller brings it back: lost, unless forced (one
		 * being deleted is going anyway: evicted and waited for, as
		 * kubectl drain does). */
		j->unmanaged++;
		if (!j->r.force)
			return;
	}
	if (j->n_pods >= DRAIN_PODS_MAX || c->oom)
		return;
	if (j->n_pods == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		v = km_arena_alloc(&j->a, c->cap * sizeof *v);
		if (!v) {
			c->oom = true;
			return;
		}
		if (j->n_pods)
			memcpy(v, j->pods, j->n_pods * sizeof *v);
		j->pods = v;
	}
	v = &j->pods[j->n_pods];
	v->ns = km_arena_strdup(&j->a, o->meta.ns);
	v->name = km_arena_strdup(&j->a, o->meta.name);
	v->uid = km_arena_strdup(&j->a, o->meta.uid);
	v->evicted = false;
	if (!v->ns || !v->name || !v->uid)
		c->oom = true;
	else
		j->n_pods++;
}

static const char *node_of(const struct job *j)
{
	const char *n = strrchr(j->r.target, '/');

	return n ? n + 1 : j->r.target;
}

/* How many evictable pods the informer still sees on the node. */
static size_t pods_left(struct km_recovery_engine *e, const struct job *j)
{
	struct km_kube_source *src =
		km_kube_cluster_source(e->o.kube, j->r.cluster);
	struct job probe = {.a = {0}};
	struct collect c = {.j = &probe, .node = node_of(j)};

	if (!src)
		return SIZE_MAX;
	km_arena_init(&probe.a, 4096);
	km_kube_source_each(src, KM_RES_POD, collect_pod, &c);
	km_arena_free(&probe.a);
	return probe.n_pods;
}

static void drain_next(struct job *j);

/* The eviction of one of the drain's pods (the request, and how its
 * answer is read). */
static struct km_kube_action evict_action(const struct job *j,
					  const struct drain_pod *p)
{
	return (struct km_kube_action){.kind = KM_KUBE_ACT_EVICT,
				       .ns = p->ns,
				       .name = p->name,
				       .uid = p->uid,
				       .grace_period_s = j->act.grace_period_s};
}

static void drain_fired(struct km_loop *l, void *arg)
{
	struct job *j = arg;

	(void)l;
	j->next_pod = 0;
	j->blocked = false;
	drain_next(j);
}

static void drain_waits(struct job *j, int rc, const struct km_error *err)
{
	(void)rc;
	(void)err;
	km_loop_timer_set(j->e->loop, &j->drain_timer,
			  km_mono_ns() + j->e->o.drain_retry_ms * 1000000);
}

static void evicted(void *arg, long status, const char *body, size_t len,
		    const struct km_error *err)
{
	struct job *j = arg;
	struct drain_pod *p = &j->pods[j->next_pod];
	struct km_kube_action a = evict_action(j, p);
	char why[KM_ERROR_MSG_MAX];
	int64_t retry = 0;
	enum km_kube_outcome out;

	j->req = NULL;
	if (!status) {
		out = KM_KUBE_RETRY;
		snprintf(why, sizeof why, "evict pod %s/%s: no answer: %.400s",
			 p->ns, p->name, err ? err->msg : "");
	} else {
		out = km_kube_action_outcome(&a, status, body, len, &retry, why,
					     sizeof why);
	}
	switch (out) {
	case KM_KUBE_DONE:
	case KM_KUBE_GONE: p->evicted = true; break;
	case KM_KUBE_FAILED:
		count(j->e, &j->e->stats.failed, 1);
		write_phase(j, KM_PHASE_DISPATCHED, KM_PHASE_FAILED, status,
			    why, finished);
		return;
	default: /* a budget's 429, a 5xx: the next pass */
		j->blocked = true;
		snprintf(j->blocked_why, sizeof j->blocked_why, "%.250s", why);
		break;
	}
	j->next_pod++;
	drain_next(j);
}

/* Evicts the next pod of the pass, or ends the pass. */
static void drain_next(struct job *j)
{
	struct km_recovery_engine *e = j->e;
	struct km_kube_client *c =
		km_kube_cluster_client(e->o.kube, j->r.cluster);
	char msg[KM_ERROR_MSG_MAX];
	size_t done = 0;

	while (j->next_pod < j->n_pods && j->pods[j->next_pod].evicted)
		j->next_pod++;
	if (j->next_pod < j->n_pods && c && !e->stopping) {
		struct km_kube_action a =
			evict_action(j, &j->pods[j->next_pod]);
		struct km_kube_action_request q = {0};
		struct km_error err = {0};
		int rc = km_kube_action_build(&a, &q, &err);

		if (!rc)
			rc = km_kube_request(c, q.method, q.path,
					     q.content_type, q.body, q.len,
					     evicted, j, &j->req, &err);
		km_kube_action_request_free(&q);
		if (rc) /* as no answer: the next pass */
			evicted(j, 0, NULL, 0, &err);
		return;
	}
	if (e->stopping)
		return;
	for (size_t i = 0; i < j->n_pods; i++)
		done += j->pods[i].evicted;
	if (done == j->n_pods) {
		count(e, &e->stats.succeeded, 1);
		snprintf(msg, sizeof msg,
			 "drained: %zu pods evicted, %zu DaemonSet or mirror "
			 "pods left",
			 done, j->skipped_pods);
		write_phase(j, KM_PHASE_DISPATCHED, KM_PHASE_SUCCEEDED, 0, msg,
			    finished);
		return;
	}
	if (km_mono_ns() >= j->drain_deadline_ns) {
		count(e, &e->stats.failed, 1);
		snprintf(msg, sizeof msg,
			 "drain timed out after %lld s: %zu of %zu pods not "
			 "evicted; last: %.300s",
			 (long long)(e->o.drain_timeout_ms / 1000),
			 j->n_pods - done, j->n_pods, j->blocked_why);
		write_phase(j, KM_PHASE_DISPATCHED, KM_PHASE_FAILED, 0, msg,
			    finished);
		return;
	}
	snprintf(msg, sizeof msg,
		 "draining: %zu of %zu pods evicted; again in %lld s: %.300s",
		 done, j->n_pods, (long long)(e->o.drain_retry_ms / 1000),
		 j->blocked_why);
	write_phase(j, KM_PHASE_DISPATCHED, 0, 0, msg, drain_waits);
}

/* The cordon is done: the evictions begin. */
static void drain_start(struct job *j)
{
	struct km_kube_source *src =
		km_kube_cluster_source(j->e->o.kube, j->r.cluster);
	struct collect c = {.j = j, .node = node_of(j)};

	j->draining = true;
	j->drain_deadline_ns =
		km_mono_ns() + j->e->o.drain_timeout_ms * 1000000;
	j->n_pods = j->next_pod = j->skipped_pods = j->unmanaged = 0;
	if (src)
		km_kube_source_each(src, KM_RES_POD, collect_pod, &c);
	if (j->unmanaged && !j->r.force) {
		char msg[200];

		count(j->e, &j->e->stats.failed, 1);
		snprintf(msg, sizeof msg,
			 "cordoned, not drained: %zu pods on the node have no "
			 "controller and would be lost (force to evict them)",
			 j->unmanaged);
		write_phase(j, KM_PHASE_DISPATCHED, KM_PHASE_FAILED, 0, msg,
			    finished);
		return;
	}
	drain_next(j);
}

/* DISPATCHED is committed: send. */
static void send_now(struct job *j, int rc, const struct km_error *err)
{
	struct km_recovery_engine *e = j->e;
	struct km_kube_client *c =
		km_kube_cluster_client(e->o.kube, j->r.cluster);
	struct km_kube_action_request q = {0};
	struct km_error e2 = {0};

	if (rc == KM_EPRECOND) { /* cancelled meanwhile */
		rec_job_done(j);
		return;
	}
	if (rc) {
		km_log(KM_LOG_WARN,
		       "recovery: cannot record the dispatch; trying again",
		       "id", KM_I(j->r.id), "error", err->msg, NULL);
		j->r.attempts--;
		j->in_flight = false;
		e->in_flight--;
		requeue(j, BACKOFF_MIN_MS);
		return;
	}
	count(e, &e->stats.dispatched, 1);
	if (!c) {
		km_error_set(&e2, KM_EUNAVAIL, "cluster \"%s\" is not watched",
			     j->r.cluster ? j->r.cluster : "");
		answered(j, 0, NULL, 0, &e2);
		return;
	}
	j->act.now_us = j->dispatched_us;
	rc = km_kube_action_build(&j->act, &q, &e2);
	if (!rc)
		rc = km_kube_request(c, q.method, q.path, q.content_type,
				     q.body, q.len, answered, j, &j->req, &e2);
	km_kube_action_request_free(&q); /* the client copied it */
	if (!rc && j->decided_ns) {
		/* A policy's first request: how long from its decision (the
		 * store's three writes, the budget, a free worker). */
		km_log(KM_LOG_INFO, "recovery: a policy's request is sent",
		       "id", KM_I(j->r.id), "target", j->r.target, "action",
		       km_action_name(j->r.action), "decided_to_sent_us",
		       KM_I((km_mono_ns() - j->decided_ns) / 1000), NULL);
		j->decided_ns = 0;
	}
	if (rc) {
		/* Nothing was sent: no retry changes that. */
		j->r.attempts = e->o.max_attempts;
		answered(j, 0, NULL, 0, &e2);
	}
}

static void dispatch(struct job *j)
{
	struct km_recovery_engine *e = j->e;

	km_list_del(&j->node);
	km_list_add_tail(&e->active, &j->node);
	j->in_flight = true;
	e->in_flight++;
	j->r.attempts++;
	/* A rollout restart sent again after a crash keeps its restartedAt:
	 * one restart, not two. */
	if (!j->dispatched_us)
		j->dispatched_us = j->r.dispatched_us ? j->r.dispatched_us
						      : km_now_us();
	note_old_pods(j);
	j->not_before_us = -1; /* its backoff, if any, is over */
	/* From QUEUED; or DISPATCHED again, for one whose outcome could not
	 * be recorded (each attempt is an event). */
	write_phase(j, j->r.phase, KM_PHASE_DISPATCHED, 0, NULL, send_now);
}

static bool target_busy(struct km_recovery_engine *e, const struct job *j)
{
	struct km_list *x;

	km_list_for_each (x, &e->active) {
		const struct job *k = km_list_entry(x, struct job, node);

		if (k != j && !strcmp(k->r.target, j->r.target))
			return true;
	}
	return false;
}

/* Whether a job queued before j is for the same target: recoveries of
 * one target run in the order they came. */
static bool earlier_same(struct km_recovery_engine *e, const struct job *j)
{
	struct km_list *x;

	km_list_for_each (x, &e->queue) {
		const struct job *k = km_list_entry(x, struct job, node);

		if (k == j)
			return false;
		if (!strcmp(k->r.target, j->r.target))
			return true;
	}
	return false;
}

static const struct elect *elect_of(const struct km_recovery_engine *e,
				    const char *cluster)
{
	for (size_t i = 0; i < e->n_elect; i++)
		if (!strcmp(e->elect[i].cluster, cluster ? cluster : ""))
			return &e->elect[i];
	return NULL;
}

/* Whether this replica dispatches the cluster's recoveries. */
static bool leading(const struct km_recovery_engine *e, const char *cluster)
{
	const struct elect *el;

	if (!e->o.lease_ns)
		return true;
	el = elect_of(e, cluster);
	return el && km_kube_leader_leading(el->leader);
}

static void skipped(struct job *j, int rc, const struct km_error *err)
{
	if (rc)
		km_log(KM_LOG_ERROR, "recovery: a refusal cannot be recorded",
		       "id", KM_I(j->r.id), "error", err->msg, NULL);
	rec_job_done(j);
}

/* Whether j holds a slot of the budget now, taking one if it may (its
 * turn came: the recovery ahead of it ended). A rule other than its
 * target's recovery in progress refuses it: recorded SKIPPED. */
static bool admitted_now(struct km_recovery_engine *e, struct job *j)
{
	struct km_budget_request q = {
		.cluster = j->r.cluster,
		.target = j->r.target,
		.action = j->r.action,
		.policy = j->r.policy && *j->r.policy ? j->r.policy : NULL,
		.automatic = j->policy_key != NULL,
		.force = j->r.force,
		.zone = km_zones_of(e->zones, j->r.target)};
	struct km_budget_storm storm;
	struct km_budget_verdict v = {.storm = &storm};
	char msg[300];

	if (j->admitted || !e->budget)
		return true;
	if (km_budget_admit(e->budget, &q, mono_us(), &v))
		return false;
	if (v.ok)
		return j->admitted = true;
	if (v.refusal == KM_BUDGET_BUSY)
		return false;
	if (v.refusal == KM_BUDGET_STORM)
		km_storms_refused(e->storms, &storm);
	snprintf(msg, sizeof msg, "refused by the safety budget: %s", v.rule);
	km_list_del(&j->node);
	km_list_add_tail(&e->active, &j->node);
	write_phase(j, j->r.phase, KM_PHASE_SKIPPED, 0, msg, skipped);
	return false;
}

/* Starts what may start: a worker free, the job's backoff over, its
 * target not claimed, no write of its own in flight; in queue order. */
static void pump(struct km_recovery_engine *e)
{
	int64_t now = km_mono_ns(), next = 0;
	struct km_list *x, *tmp;

	km_list_for_each_safe (x, tmp, &e->queue) {
		struct job *j = km_list_entry(x, struct job, node);

		if (e->in_flight >= e->o.workers)
			break;
		if (j->w_pending || !leading(e, j->r.cluster) ||
		    target_busy(e, j) || earlier_same(e, j))
			continue;
		if (j->not_before_ns > now) {
			if (!next || j->not_before_ns < next)
				next = j->not_before_ns;
			continue;
		}
		if (j->r.phase == KM_PHASE_REQUESTED)
			continue; /* its QUEUED is being written */
		if (!admitted_now(e, j))
			continue;
		dispatch(j);
	}
	if (next && (!km_timer_armed(&e->pump) || e->pump.due > next))
		km_loop_timer_set(e->loop, &e->pump, next);
}

static void pump_fired(struct km_loop *l, void *arg)
{
	(void)l;
	pump(arg);
}

/* Once every cluster's caches hold what its API server has: every target's
 * current health to the policies (what the hub published before the
 * subscription, and what broke before this run) and every node to its
 * zone. Not before: a policy would act on objects the caches do not have
 * yet (and skip them as gone), and the zones' counts would be partial. */
static void caught_up(struct km_recovery_engine *e)
{
	for (size_t i = 0; i < km_kube_cluster_count(e->o.kube); i++)
		if (!km_kube_cluster_synced(e->o.kube,
					    km_kube_cluster_name(e->o.kube, i)))
			return;
	e->judged_all = true;
	if (e->policies)
		rec_judge_all(e);
	km_zones_scan(e->zones, mono_us());
}

static void tick_fired(struct km_loop *l, void *arg)
{
	struct km_recovery_engine *e = arg;
	int64_t now = km_mono_ns();
	struct km_list *x, *tmp;

	km_list_for_each_safe (x, tmp, &e->active) {
		struct job *j = km_list_entry(x, struct job, node);

		if (j->verifying && !j->w_pending)
			verify_step(j, now);
	}
	if (!e->judged_all) {
		caught_up(e);
	} else if (--e->scan_in <= 0) {
		e->scan_in = ZONE_SCAN_TICKS;
		km_zones_scan(e->zones, now / 1000);
	}
	km_loop_timer_set(l, &e->tick, now + TICK_NS);
}

/* ---- taking recoveries ------------------------------------------------------------ */

static void queued(struct job *j, int rc, const struct km_error *err)
{
	if (rc == KM_EPRECOND) { /* cancelled before it was queued */
		rec_job_done(j);
		return;
	}
	if (rc) {
		km_log(KM_LOG_WARN,
		       "recovery: cannot record it queued; trying again", "id",
		       KM_I(j->r.id), "error", err->msg, NULL);
		write_phase(j, KM_PHASE_REQUESTED, KM_PHASE_QUEUED, 0, NULL,
			    queued);
		return;
	}
	count(j->e, &j->e->stats.queued, 1);
}

/* On the loop: a job taken, by submit or at start. */
void rec_take(struct km_loop *l, void *arg)
{
	struct job *j = arg;
	struct km_recovery_engine *e = j->e;

	(void)l;
	if (e->stopping) { /* submitted as the engine stopped */
		rec_job_done(j);
		return;
	}
	if (!j->admitted && e->budget && !j->policy_key &&
	    !km_recovery_phase_final(j->r.phase)) {
		/* Taken back at start: counted against the budget (as
		 * forced: it was admitted before). */
		struct km_budget_request q = {.cluster = j->r.cluster,
					      .target = j->r.target,
					      .action = j->r.action,
					      .force = true};
		struct km_budget_verdict v;

		j->admitted = !km_budget_admit(e->budget, &q, mono_us(), &v) &&
			      v.ok;
	}
	if (j->failed_at_start) {
		km_list_add_tail(&e->active, &j->node);
		write_phase(j, j->r.phase, KM_PHASE_FAILED, 0,
			    "no action of its kind fits its target", finished);
		return;
	}
	switch (j->r.phase) {
	case KM_PHASE_REQUESTED:
		km_list_add_tail(&e->queue, &j->node);
		write_phase(j, KM_PHASE_REQUESTED, KM_PHASE_QUEUED, 0, NULL,
			    queued);
		break;
	case KM_PHASE_QUEUED: km_list_add_tail(&e->queue, &j->node); break;
	case KM_PHASE_DISPATCHED:
		if (!leading(e, j->r.cluster)) {
			/* Sent again once this replica leads (an attempt
			 * more), or by the one that does. */
			km_list_add_tail(&e->queue, &j->node);
			break;
		}
		/* Sent before a crash, or not: sent again, idempotent. The
		 * attempt it was counts. */
		km_list_add_tail(&e->active, &j->node);
		j->in_flight = true;
		e->in_flight++;
		j->dispatched_us = j->r.dispatched_us;
		send_now(j, 0, NULL);
		break;
	case KM_PHASE_SUCCEEDED: {
		int64_t left = j->r.finished_us + e->o.verify_window_ms * 1000 -
			       km_now_us();

		km_list_add_tail(&e->active, &j->node);
		j->dispatched_us = j->r.dispatched_us;
		start_verify(j, left > 0 ? left * 1000 : 0);
		break;
	}
	default: rec_job_done(j); return;
	}
	pump(e);
}

/* What the job sends, from its target's name and uid (in its arena).
 * KM_EINVAL for a recovery whose target no action of its kind fits (a
 * database edited by hand: it fails, recorded). */
int rec_describe(struct km_recovery_engine *e, struct job *j)
{
	struct km_target_name tn;
	struct km_kube_action *a = &j->act;
	char why[256];

	if (km_target_name_parse(j->r.target, &tn, why, sizeof why))
		return KM_EINVAL;
	*a = (struct km_kube_action){
		.ns = km_arena_strndup(&j->a, tn.ns ? tn.ns : "", tn.ns_len),
		.name = km_arena_strndup(&j->a, tn.name, tn.name_len),
		.uid = j->r.target_uid,
		.grace_period_s = e->o.pod_grace_s < 0 ? -1 : e->o.pod_grace_s,
	};
	if (!a->ns || !a->name)
		return KM_ENOMEM;
	switch (j->r.action) {
	case KM_ACTION_RESTART_POD:
		a->kind = KM_KUBE_ACT_RESTART_POD;
		return tn.kind == KM_KIND_POD ? 0 : KM_EINVAL;
	case KM_ACTION_ROLLOUT_RESTART:
		a->kind = KM_KUBE_ACT_ROLLOUT_RESTART;
		a->workload = tn.kind == KM_KIND_DEPLOYMENT ? KM_RES_DEPLOYMENT
			      : tn.kind == KM_KIND_STATEFULSET
				      ? KM_RES_STATEFULSET
				      : KM_RES_DAEMONSET;
		return tn.kind == KM_KIND_DEPLOYMENT ||
				       tn.kind == KM_KIND_STATEFULSET ||
				       tn.kind == KM_KIND_DAEMONSET
			       ? 0
			       : KM_EINVAL;
	case KM_ACTION_DRAIN:
		a->kind = KM_KUBE_ACT_CORDON; /* first; then the evictions */
		return tn.kind == KM_KIND_NODE ? 0 : KM_EINVAL;
	case KM_ACTION_CORDON:
	case KM_ACTION_UNCORDON:
		a->kind = j->r.action == KM_ACTION_CORDON
				  ? KM_KUBE_ACT_CORDON
				  : KM_KUBE_ACT_UNCORDON;
		return tn.kind == KM_KIND_NODE ? 0 : KM_EINVAL;
	default: return KM_EINVAL;
	}
}

/* The target the recovery must make healthy, in the job's arena. */
const char *rec_verify_target(struct km_recovery_engine *e, struct job *j)
{
	if (j->r.action == KM_ACTION_CORDON ||
	    j->r.action == KM_ACTION_UNCORDON || j->r.action == KM_ACTION_DRAIN)
		return NULL;
	if (j->r.action == KM_ACTION_RESTART_POD) {
		struct km_arena a;
		struct km_health_view v;
		struct km_error err = {0};
		const char *owner = NULL;

		km_arena_init(&a, 2048);
		if (!km_health_get(e->o.health, j->r.target, &a, &v, &err) &&
		    v.target.owner && *v.target.owner) {
			int st;

			if (!km_health_state(e->o.health, v.target.owner, &st))
				owner = km_arena_strdup(&j->a, v.target.owner);
		}
		km_arena_free(&a);
		if (owner)
			return owner;
	}
	return j->r.target;
}

int km_recovery_submit(struct km_recovery_engine *e,
		       const struct km_recovery *r, bool held)
{
	struct job *j;

	pthread_mutex_lock(&e->mu);
	if (e->accepted >= e->o.queue_max) {
		pthread_mutex_unlock(&e->mu);
		return KM_EFULL;
	}
	e->accepted++;
	pthread_mutex_unlock(&e->mu);
	j = rec_job_new(e, r);
	if (!j) {
		pthread_mutex_lock(&e->mu);
		e->accepted--;
		pthread_mutex_unlock(&e->mu);
		return KM_ENOMEM;
	}
	j->verify = rec_verify_target(e, j);
	j->admitted = held; /* by km_recovery_check */
	if (rec_describe(e, j) || km_loop_post(e->loop, rec_take, j)) {
		rec_job_free(j);
		pthread_mutex_lock(&e->mu);
		e->accepted--;
		pthread_mutex_unlock(&e->mu);
		return KM_ENOMEM;
	}
	return 0;
}

/* ---- checking a request --------------------------------------------------------- */

struct check_call {
	struct km_recovery_engine *e;
	struct km_recovery *r;
	struct km_arena *a;
	struct km_error err;
	int rc;
	bool done, held;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

int rec_check_on_loop(struct km_recovery_engine *e, struct km_recovery *r,
		      struct km_arena *a, struct km_error *err)
{
	struct km_target_parts tn;
	char why[256];
	struct km_kube_source *src;
	const struct km_kube_object *o;
	enum km_kube_resource res;
	const char *what = km_action_name(r->action);

	if (km_target_name_split(r->target, &tn, why, sizeof why))
		return km_error_set(err, KM_EINVAL, "%s", why);
	switch (r->action) {
	case KM_ACTION_RESTART_POD:
		if (tn.kind != KM_KIND_POD)
			return km_error_set(err, KM_EINVAL,
					    "%s applies to pods, not to %s",
					    what, r->target);
		res = KM_RES_POD;
		break;
	case KM_ACTION_ROLLOUT_RESTART:
		if (tn.kind == KM_KIND_DEPLOYMENT)
			res = KM_RES_DEPLOYMENT;
		else if (tn.kind == KM_KIND_STATEFULSET)
			res = KM_RES_STATEFULSET;
		else if (tn.kind == KM_KIND_DAEMONSET)
			res = KM_RES_DAEMONSET;
		else
			return km_error_set(
				err, KM_EINVAL,
				"%s applies to deployments, statefulsets and "
				"daemonsets, not to %s",
				what, r->target);
		break;
	case KM_ACTION_CORDON:
	case KM_ACTION_UNCORDON:
	case KM_ACTION_DRAIN:
		if (tn.kind != KM_KIND_NODE)
			return km_error_set(err, KM_EINVAL,
					    "%s applies to nodes, not to %s",
					    what, r->target);
		res = KM_RES_NODE;
		break;
	default:
		return km_error_set(err, KM_EINVAL,
				    "an action is required: restart_pod, "
				    "rollout_restart, cordon or uncordon");
	}
	if (!leading(e, tn.cluster)) {
		const struct elect *el = elect_of(e, tn.cluster);
		const char *h = el ? km_kube_leader_holder(el->leader) : "";

		return km_error_set(err, KM_EUNAVAIL,
				    "this replica does not lead %s%s%s's "
				    "recoveries%s%s%s: ask the one that does",
				    *tn.cluster ? "cluster \"" : "the cluster",
				    tn.cluster, *tn.cluster ? "\"" : "",
				    *h ? " (the leader is " : "", h,
				    *h ? ")" : "");
	}
	src = km_kube_cluster_source(e->o.kube, tn.cluster);
	if (!src)
		return km_error_set(err, KM_EUNAVAIL,
				    *tn.cluster
					    ? "cluster \"%s\" is not watched"
					    : "no cluster is watched%s",
				    tn.cluster);
	o = km_kube_source_get(src, res, tn.ns, tn.name);
	if (!o)
		return km_error_set(err, KM_ENOTFOUND,
				    "%s is not in the cluster (as last seen)",
				    r->target);
	if (res == KM_RES_POD && !r->force &&
	    (!o->meta.owner_kind || !*o->meta.owner_kind))
		return km_error_set(
			err, KM_EPRECOND,
			"%s has no controller: deleting it would "
			"not restart it (force to delete it anyway)",
			r->target);
	r->cluster = km_arena_strdup(a, tn.cluster);
	r->target_uid = km_arena_strdup(a, o->meta.uid);
	if (!r->cluster || !r->target_uid)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	return 0;
}

/* A person's request through the budget: held if admitted (a dry run's
 * freed at once); waiting its turn behind another of its target (not
 * held); else KM_EPRECOND with the rule in r->skip_rule. */
static int admit_manual(struct km_recovery_engine *e, struct km_recovery *r,
			struct km_arena *a, bool *held, struct km_error *err)
{
	struct km_budget_request q = {.cluster = r->cluster,
				      .target = r->target,
				      .action = r->action,
				      .zone = km_zones_of(e->zones, r->target),
				      .force = r->force};
	struct km_budget_storm storm;
	struct km_budget_verdict v = {.storm = &storm};
	int rc;

	*held = false;
	if (!e->budget)
		return 0;
	rc = km_budget_admit(e->budget, &q, mono_us(), &v);
	if (rc)
		return km_error_set(err, rc, "the safety budget failed");
	if (!v.ok && v.refusal == KM_BUDGET_BUSY)
		return 0; /* serialized: admitted when its turn comes */
	if (!v.ok) {
		if (v.refusal == KM_BUDGET_STORM)
			km_storms_refused(e->storms, &storm);
		r->skip_rule = km_arena_strdup(a, v.rule);
		return km_error_set(err, KM_EPRECOND,
				    "refused by the safety budget: %s%s",
				    v.rule,
				    v.refusal == KM_BUDGET_STORM
					    ? " (an operator may force it)"
					    : "");
	}
	if (r->dry_run)
		km_budget_release(e->budget, r->target);
	else
		*held = true;
	return 0;
}

static void check_posted(struct km_loop *l, void *arg)
{
	struct check_call *c = arg;

	(void)l;
	c->rc = rec_check_on_loop(c->e, c->r, c->a, &c->err);
	if (!c->rc)
		c->rc = admit_manual(c->e, c->r, c->a, &c->held, &c->err);
	pthread_mutex_lock(&c->mu);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

int km_recovery_check(struct km_recovery_engine *e, struct km_recovery *r,
		      struct km_arena *a, bool *held, struct km_error *err)
{
	struct check_call c = {.e = e, .r = r, .a = a};
	int rc;

	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	rc = km_loop_post(e->loop, check_posted, &c);
	if (!rc) {
		/* The loop answers within a turn: it never waits. */
		pthread_mutex_lock(&c.mu);
		while (!c.done)
			pthread_cond_wait(&c.cv, &c.mu);
		pthread_mutex_unlock(&c.mu);
		rc = c.rc;
		*held = c.held;
		if (rc && err)
			*err = c.err;
	} else {
		rc = km_error_set(err, rc, "out of memory");
	}
	pthread_mutex_destroy(&c.mu);
	pthread_cond_destroy(&c.cv);
	return rc;
}

/* ---- life ----------------------------------------------------------------------- */

static void leadership(void *arg, bool lead, const char *holder)
{
	struct elect *el = arg;

	km_log(lead ? KM_LOG_INFO : KM_LOG_WARN,
	       lead ? "recovery: leading; this replica dispatches"
		    : "recovery: not leading; the leader dispatches",
	       "cluster", *el->cluster ? el->cluster : "(default)", "leader",
	       *holder ? holder : "(none)", NULL);
	if (!el->e->stopping)
		pump(el->e);
}

/* On the loop: the electors (the clients live there), then the tick. */
static void started(struct km_loop *l, void *arg)
{
	struct km_recovery_engine *e = arg;

	for (size_t i = 0; e->o.lease_ns && i < e->n_elect; i++) {
		struct elect *el = &e->elect[i];
		struct km_kube_leader_options lo = {
			.loop = l,
			.client =
				km_kube_cluster_client(e->o.kube, el->cluster),
			.ns = e->o.lease_ns,
			.name = e->o.lease_name,
			.identity = e->o.identity,
			.lease_duration_ms = e->o.lease_duration_ms,
			.renew_deadline_ms = e->o.renew_deadline_ms,
			.retry_period_ms = e->o.retry_period_ms,
			.changed = leadership,
			.arg = el,
		};
		struct km_error err = {0};

		/* Names and durations were checked by km_recovery_start:
		 * only memory can fail here, and then this replica never
		 * leads that cluster (said once). */
		if (!lo.client || km_kube_leader_start(&lo, &el->leader, &err))
			km_log(KM_LOG_ERROR,
			       "recovery: no leader election; this replica "
			       "will not dispatch",
			       "cluster", el->cluster, "error", err.msg, NULL);
	}
	/* What the hub published before the subscription: judged now
	 * (what follows comes as transitions, posted after this). */
	caught_up(e);
	km_loop_timer_set(l, &e->tick, km_mono_ns() + TICK_NS);
}

int km_recovery_start(const struct km_recovery_options *o,
		      struct km_recovery_engine **out, struct km_error *err)
{
	struct km_recovery_engine *e = calloc(1, sizeof *e);
	struct km_reader *rd = NULL;
	struct km_recovery *open = NULL;
	struct km_arena a;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!e)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	km_arena_init(&a, 4096);
	e->o = *o;
	if (e->o.workers <= 0)
		e->o.workers = 4;
	if (!e->o.queue_max)
		e->o.queue_max = 1024;
	if (e->o.max_attempts <= 0)
		e->o.max_attempts = 5;
	if (e->o.verify_window_ms <= 0)
		e->o.verify_window_ms = 120000;
	if (e->o.drain_timeout_ms <= 0)
		e->o.drain_timeout_ms = 300000;
	if (e->o.drain_retry_ms <= 0)
		e->o.drain_retry_ms = 5000;
	if (e->o.backoff_max_ms <= 0)
		e->o.backoff_max_ms = 60000;
	e->loop = km_kube_loop(o->kube);
	if (o->lease_ns) {
		size_t nc = km_kube_cluster_count(o->kube);

		if (!o->lease_name || !o->identity || !*o->identity ||
		    strlen(o->identity) > 128 ||
		    !km_dns1123_label(o->lease_ns) ||
		    !km_dns1123_subdomain(o->lease_name)) {
			free(e);
			return km_error_set(err, KM_EINVAL,
					    "leader election: the Lease's "
					    "namespace and name must be "
					    "DNS-1123 names, and the identity "
					    "1 to 128 bytes");
		}
		e->elect = calloc(nc ? nc : 1, sizeof *e->elect);
		if (!e->elect) {
			free(e);
			return km_error_set(err, KM_ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < nc; i++) {
			e->elect[i].e = e;
			e->elect[i].cluster =
				strdup(km_kube_cluster_name(o->kube, i));
			if (!e->elect[i].cluster) {
				for (size_t k = 0; k < i; k++)
					free(e->elect[k].cluster);
				free(e->elect);
				free(e);
				return km_error_set(err, KM_ENOMEM,
						    "out of memory");
			}
			e->n_elect = i + 1;
		}
	}
	km_list_init(&e->queue);
	km_list_init(&e->active);
	km_list_init(&e->landed);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	km_timer_init(&e->tick, tick_fired, e);
	km_timer_init(&e->due, rec_due_fired, e);
	km_timer_init(&e->pump, pump_fired, e);
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0) {
		rc = km_error_set(err, KM_EIO, "eventfd: %s", strerror(errno));
		goto fail;
	}
	/* Before the loop sees it: registered from this thread while the
	 * loop may run (epoll_ctl is thread-safe; km_loop's table is
	 * written before the fd can fire). */
	rc = km_loop_add_fd(e->loop, e->efd, EPOLLIN, on_efd, e);
	if (rc) {
		km_error_set(err, rc, "cannot watch the store's answers");
		goto fail;
	}
	e->efd_added = true;
	{
		struct km_budget_config bc;

		if (o->budget)
			bc = *o->budget;
		else
			km_budget_config_defaults(&bc);
		if ((rc = km_budget_new(&bc, &e->budget, err)))
			goto fail;
	}
	if ((rc = km_storms_new(o->store, &e->storms, err)))
		goto fail;
	if (km_zones_new(o->kube, o->health, e->budget, e->storms, &e->zones)) {
		rc = km_error_set(err, KM_ENOMEM, "out of memory");
		goto fail;
	}
	e->scan_in = ZONE_SCAN_TICKS;
	if (o->n_policies) {
		struct km_policy_options po = {.max_targets =
						       o->max_policy_targets};

		if ((rc = km_policy_set_new(o->policies, o->n_policies, &po,
					    &e->policies, err)))
			goto fail;
	}
	/* Transitions: to the policies, and nodes' to their zones. */
	if ((rc = rec_subscribe(e))) {
		km_error_set(err, rc, "cannot subscribe to the health hub");
		goto fail;
	}
	/* What a previous run left open. */
	rc = km_reader_open(o->store, &rd, err);
	if (!rc)
		rc = km_reader_open_recoveries(rd, &a, &open, &n, err);
	km_reader_close(rd);
	if (rc)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct job *j = rec_job_new(e, &open[i]);

		if (!j) {
			rc = km_error_set(err, KM_ENOMEM, "out of memory");
			goto fail;
		}
		e->accepted++;
		j->verify = rec_verify_target(e, j);
		if (rec_describe(e, j)) {
			/* Nothing it could send: recorded as failed. */
			j->failed_at_start = true;
		}
		if (km_loop_post(e->loop, rec_take, j)) {
			rec_job_free(j);
			rc = km_error_set(err, KM_ENOMEM, "out of memory");
			goto fail;
		}
	}
	if (n)
		km_log(KM_LOG_INFO, "recovery: taking back what was open",
		       "recoveries", KM_I(n), NULL);
	if (km_loop_post(e->loop, started, e)) {
		rc = km_error_set(err, KM_ENOMEM, "out of memory");
		goto fail;
	}
	km_arena_free(&a);
	*out = e;
	return 0;
fail:
	km_arena_free(&a);
	km_recovery_stop(e);
	return rc;
}

struct stop_call {
	struct km_recovery_engine *e;
	bool done;
};

/* On the loop: nothing more starts; requests and timers are cancelled. */
static void stop_posted(struct km_loop *l, void *arg)
{
	struct stop_call *c = arg;
	struct km_recovery_engine *e = c->e;
	struct km_list *x;

	e->stopping = true;
	for (size_t i = 0; i < e->n_elect; i++) {
		km_kube_leader_stop(e->elect[i].leader); /* gives it up */
		e->elect[i].leader = NULL;
	}
	km_loop_timer_cancel(l, &e->tick);
	km_loop_timer_cancel(l, &e->due);
	km_loop_timer_cancel(l, &e->pump);
	km_list_for_each (x, &e->active) {
		struct job *j = km_list_entry(x, struct job, node);

		km_kube_cancel(j->req);
		j->req = NULL;
		km_loop_timer_cancel(l, &j->drain_timer);
	}
	if (e->efd_added)
		km_loop_del_fd(l, e->efd);
	pthread_mutex_lock(&e->mu);
	c->done = true;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

void km_recovery_stop(struct km_recovery_engine *e)
{
	struct stop_call c = {.e = e};
	struct km_list *lists[2];

	if (!e)
		return;
	/* No transition is handed over after this; those posted already
	 * run before stop_posted, and see nothing to do. */
	km_health_unsubscribe(e->sub);
	e->sub = NULL;
	if (e->efd >= 0 && !km_loop_post(e->loop, stop_posted, &c)) {
		pthread_mutex_lock(&e->mu);
		while (!c.done)
			pthread_cond_wait(&e->cv, &e->mu);
		pthread_mutex_unlock(&e->mu);
	}
	/* Every job is in a list now; the store's answers still owed land
	 * in e->landed (the writer never drops an op). */
	pthread_mutex_lock(&e->mu);
	while (e->writes) {
		while (!km_list_empty(&e->landed)) {
			struct km_list *x = e->landed.next;

			km_list_del(x);
			e->writes--;
		}
		if (e->writes)
			pthread_cond_wait(&e->cv, &e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	lists[0] = &e->queue;
	lists[1] = &e->active;
	for (int k = 0; k < 2; k++)
		while (lists[k]->next && !km_list_empty(lists[k])) {
			struct job *j =
				km_list_entry(lists[k]->next, struct job, node);

			km_list_del(&j->node);
			rec_job_free(j);
		}
	if (e->efd >= 0)
		close(e->efd);
	for (size_t i = 0; i < e->n_elect; i++)
		free(e->elect[i].cluster);
	free(e->elect);
	km_policy_set_free(e->policies);
	km_zones_free(e->zones);
	km_storms_free(e->storms); /* before the budget: no more changes */
	km_budget_free(e->budget);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	free(e);
}

void km_recovery_get_stats(struct km_recovery_engine *e,
			   struct km_recovery_stats *out)
{
	pthread_mutex_lock(&e->mu);
	*out = e->stats;
	out->held = e->accepted;
	pthread_mutex_unlock(&e->mu);
}

const struct km_policy_config *
km_recovery_policies(const struct km_recovery_engine *e, size_t *n)
{
	*n = 0;
	return e->policies ? km_policy_set_policies(e->policies, n) : NULL;
}

struct km_storms *km_recovery_storms(struct km_recovery_engine *e)
{
	return e->storms;
}

bool km_recovery_dry_run(const struct km_recovery_engine *e)
{
	return e->o.dry_run;
}

struct release_call {
	struct km_recovery_engine *e;
	char target[];
};

static void release_posted(struct km_loop *l, void *arg)
{
	struct release_call *c = arg;

	(void)l;
	if (c->e->budget)
		km_budget_release(c->e->budget, c->target);
	free(c);
}

void km_recovery_release(struct km_recovery_engine *e, const char *target)
{
	size_t n = strlen(target) + 1;
	struct release_call *c = malloc(sizeof *c + n);

	if (!c)
		return; /* the slot stays taken until a restart: said */
	c->e = e;
	memcpy(c->target, target, n);
	if (km_loop_post(e->loop, release_posted, c))
		free(c);
}
