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

#include "km_health.h"
#include "km_kube.h"
#include "km_kube_action.h"
#include "km_kube_client.h"
#include "km_kube_leader.h"
#include "km_kube_source.h"
#include "km_list.h"
#include "km_log.h"
#include "km_loop.h"
#include "km_store.h"
#include "km_time.h"

#define TICK_NS (1000LL * 1000000)
#define BACKOFF_MIN_MS 1000

struct job;
typedef void (*then_fn)(struct job *j, int rc, const struct km_error *err);

struct job {
	struct km_list node; /* e->queue or e->active */
	struct km_recovery_engine *e;
	struct km_arena a; /* r's strings, verify */
	struct km_recovery r;
	const char *verify;        /* the target that must become healthy; NULL:
	                       cordon/uncordon (the node's spec) */
	int64_t not_before_ns;     /* monotonic; 0: now */
	int64_t not_before_us;     /* the same, epoch, for the next write */
	int64_t deadline_ns;       /* of verification */
	int64_t dispatched_us;     /* this attempt's; restartedAt */
	struct km_kube_action act; /* what is sent; strings in a */
	/* The uids of the pods of what it restarts, as the dispatch found
	 * them (in a, sorted): none of them is a replacement. have_old
	 * false for one taken back after a restart. */
	const char **old_uids;
	size_t n_old;
	bool have_old;
	const char *fresh;    /* the healthy replacement found (in a) */
	bool in_flight;       /* holds a worker */
	bool failed_at_start; /* taken back, but nothing fits it */
	bool verifying;
	struct km_kube_req *req; /* the request in flight */

	/* The store write in flight (w_pending), and its answer. */
	bool w_pending;
	struct km_recovery_update u;
	char msg[KM_ERROR_MSG_MAX];
	then_fn then;
	int w_rc;
	struct km_error w_err;
	struct km_list landed; /* in e->landed, under e->mu */
};

struct km_recovery_engine {
	struct km_recovery_options o;
	struct km_loop *loop;
	int efd;
	bool efd_added;

	/* The loop's thread only. */
	struct km_list queue, active;
	size_t n_queue, n_active;
	int in_flight;
	bool stopping;
	struct km_timer tick, pump;

	/* Leader election, one elector per cluster (loop only). */
	struct elect {
		struct km_recovery_engine *e;
		char *cluster;
		struct km_kube_leader *leader;
	} * elect;
	size_t n_elect;

	pthread_mutex_t mu; /* what follows */
	pthread_cond_t cv;
	struct km_list landed; /* jobs whose write the writer answered */
	size_t writes;         /* store writes not yet landed */
	size_t accepted;       /* jobs submitted, not yet freed (queue_max) */
	struct km_recovery_stats stats;
};

/* Counts in e->stats (read by other threads). */
static void count(struct km_recovery_engine *e, uint64_t *field, int64_t d)
{
	pthread_mutex_lock(&e->mu);
	*field += (uint64_t)d;
	pthread_mutex_unlock(&e->mu);
}

/* ---- jobs ----------------------------------------------------------------------- */

static void job_free(struct job *j)
{
	km_arena_free(&j->a);
	free(j);
}

static struct job *job_new(struct km_recovery_engine *e,
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
		job_free(j);
		return NULL;
	}
#undef DUP
	km_list_init(&j->node);
	km_list_init(&j->landed);
	return j;
}

/* The end of a job: it leaves the engine (its writes have landed). */
static void job_done(struct job *j)
{
	struct km_recovery_engine *e = j->e;

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
	job_free(j);
}

/* ---- store writes ----------------------------------------------------------------- */

static void write_done(void *arg, int rc, const struct km_error *err)
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
		.not_before_us = j->not_before_us,
	};
	j->not_before_us = 0;
	j->then = then;
	j->w_pending = true;
	pthread_mutex_lock(&e->mu);
	e->writes++;
	pthread_mutex_unlock(&e->mu);
	rc = km_store_update_recovery_async(e->o.store, &j->u, write_done, j);
	if (rc) {
		struct km_error err = {0};

		km_error_set(&err, rc, "the store refused the write");
		write_done(j, rc, &err); /* lands through the loop, as any */
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
	job_done(j);
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

static bool is_fresh(const struct km_target *t, void *arg)
{
	struct fresh *f = arg;

	f->found = !is_old(f->j, t->uid) && t->created_us >= f->since_us;
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
 * rollout restart: of the workload, which is healthy too), or the node's
 * spec is as wanted. */
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
		if (j->fresh)
			snprintf(msg, sizeof msg,
				 "%.200s has a new pod, %.200s, and it is "
				 "healthy",
				 pods_owner(j) ? j->verify : "the pod's name",
				 j->fresh);
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
		job_done(j);
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

/* DISPATCHED is committed: send. */
static void send_now(struct job *j, int rc, const struct km_error *err)
{
	struct km_recovery_engine *e = j->e;
	struct km_kube_client *c =
		km_kube_cluster_client(e->o.kube, j->r.cluster);
	struct km_kube_action_request q = {0};
	struct km_error e2 = {0};

	if (rc == KM_EPRECOND) { /* cancelled meanwhile */
		job_done(j);
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
	km_loop_timer_set(l, &e->tick, now + TICK_NS);
}

/* ---- taking recoveries ------------------------------------------------------------ */

static void queued(struct job *j, int rc, const struct km_error *err)
{
	if (rc == KM_EPRECOND) { /* cancelled before it was queued */
		job_done(j);
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
static void take(struct km_loop *l, void *arg)
{
	struct job *j = arg;
	struct km_recovery_engine *e = j->e;

	(void)l;
	if (e->stopping) { /* submitted as the engine stopped */
		job_done(j);
		return;
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
	default: job_done(j); return;
	}
	pump(e);
}

/* What the job sends, from its target's name and uid (in its arena).
 * KM_EINVAL for a recovery whose target no action of its kind fits (a
 * database edited by hand: it fails, recorded). */
static int describe(struct km_recovery_engine *e, struct job *j)
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
static const char *verify_target(struct km_recovery_engine *e, struct job *j)
{
	if (j->r.action == KM_ACTION_CORDON ||
	    j->r.action == KM_ACTION_UNCORDON)
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
		       const struct km_recovery *r)
{
	struct job *j;

	pthread_mutex_lock(&e->mu);
	if (e->accepted >= e->o.queue_max) {
		pthread_mutex_unlock(&e->mu);
		return KM_EFULL;
	}
	e->accepted++;
	pthread_mutex_unlock(&e->mu);
	j = job_new(e, r);
	if (!j) {
		pthread_mutex_lock(&e->mu);
		e->accepted--;
		pthread_mutex_unlock(&e->mu);
		return KM_ENOMEM;
	}
	j->verify = verify_target(e, j);
	if (describe(e, j) || km_loop_post(e->loop, take, j)) {
		job_free(j);
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
	bool done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static int check_on_loop(struct km_recovery_engine *e, struct km_recovery *r,
			 struct km_arena *a, struct km_error *err)
{
	struct km_target_name tn;
	char why[256], ns[256], name[256], cluster[128];
	struct km_kube_source *src;
	const struct km_kube_object *o;
	enum km_kube_resource res;
	const char *what = km_action_name(r->action);

	if (km_target_name_parse(r->target, &tn, why, sizeof why))
		return km_error_set(err, KM_EINVAL, "%s", why);
	if (tn.cluster_len >= sizeof cluster || tn.ns_len >= sizeof ns ||
	    tn.name_len >= sizeof name)
		return km_error_set(err, KM_EINVAL, "target name too long");
	snprintf(cluster, sizeof cluster, "%.*s", (int)tn.cluster_len,
		 tn.cluster ? tn.cluster : "");
	snprintf(ns, sizeof ns, "%.*s", (int)tn.ns_len, tn.ns ? tn.ns : "");
	snprintf(name, sizeof name, "%.*s", (int)tn.name_len, tn.name);
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
		if (tn.kind != KM_KIND_NODE)
			return km_error_set(err, KM_EINVAL,
					    "%s applies to nodes, not to %s",
					    what, r->target);
		res = KM_RES_NODE;
		break;
	case KM_ACTION_DRAIN:
		return km_error_set(err, KM_EUNIMPL,
				    "drain is not built yet: cordon the node, "
				    "then restart its pods");
	default:
		return km_error_set(err, KM_EINVAL,
				    "an action is required: restart_pod, "
				    "rollout_restart, cordon or uncordon");
	}
	if (!leading(e, cluster)) {
		const struct elect *el = elect_of(e, cluster);
		const char *h = el ? km_kube_leader_holder(el->leader) : "";

		return km_error_set(err, KM_EUNAVAIL,
				    "this replica does not lead %s%s%s's "
				    "recoveries%s%s%s: ask the one that does",
				    *cluster ? "cluster \"" : "the cluster",
				    cluster, *cluster ? "\"" : "",
				    *h ? " (the leader is " : "", h,
				    *h ? ")" : "");
	}
	src = km_kube_cluster_source(e->o.kube, cluster);
	if (!src)
		return km_error_set(err, KM_EUNAVAIL,
				    *cluster ? "cluster \"%s\" is not watched"
					     : "no cluster is watched%s",
				    cluster);
	o = km_kube_source_get(src, res, ns, name);
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
	r->cluster = km_arena_strdup(a, cluster);
	r->target_uid = km_arena_strdup(a, o->meta.uid);
	if (!r->cluster || !r->target_uid)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	return 0;
}

static void check_posted(struct km_loop *l, void *arg)
{
	struct check_call *c = arg;

	(void)l;
	c->rc = check_on_loop(c->e, c->r, c->a, &c->err);
	pthread_mutex_lock(&c->mu);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

int km_recovery_check(struct km_recovery_engine *e, struct km_recovery *r,
		      struct km_arena *a, struct km_error *err)
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
	if (e->o.backoff_max_ms <= 0)
		e->o.backoff_max_ms = 60000;
	e->loop = km_kube_loop(o->kube);
	if (o->lease_ns) {
		size_t nc = km_kube_cluster_count(o->kube);

		if (!o->lease_name || !o->identity || !*o->identity ||
		    strlen(o->identity) > 128 ||
		    !km_kube_dns1123_label(o->lease_ns) ||
		    !km_kube_dns1123_subdomain(o->lease_name)) {
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
	/* What a previous run left open. */
	rc = km_reader_open(o->store, &rd, err);
	if (!rc)
		rc = km_reader_open_recoveries(rd, &a, &open, &n, err);
	km_reader_close(rd);
	if (rc)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct job *j = job_new(e, &open[i]);

		if (!j) {
			rc = km_error_set(err, KM_ENOMEM, "out of memory");
			goto fail;
		}
		e->accepted++;
		j->verify = verify_target(e, j);
		if (describe(e, j)) {
			/* Nothing it could send: recorded as failed. */
			j->failed_at_start = true;
		}
		if (km_loop_post(e->loop, take, j)) {
			job_free(j);
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
	km_loop_timer_cancel(l, &e->pump);
	km_list_for_each (x, &e->active) {
		struct job *j = km_list_entry(x, struct job, node);

		km_kube_cancel(j->req);
		j->req = NULL;
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
			job_free(j);
		}
	if (e->efd >= 0)
		close(e->efd);
	for (size_t i = 0; i < e->n_elect; i++)
		free(e->elect[i].cluster);
	free(e->elect);
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
