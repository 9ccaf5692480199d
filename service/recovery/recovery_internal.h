/*
 * The recovery engine's insides, shared by its files (internal to
 * service/recovery; the contract is km_recovery.h):
 *
 *   km_recovery.c     jobs: checked, recorded, queued, dispatched,
 *                     retried, verified, drained; the engine's life
 *   recovery_auto.c   automatic recovery: the hub's transitions to the
 *                     policies (km_policy.h), the storm guard's counts,
 *                     and the recoveries the policies decide
 *
 * Everything here runs on the engine's loop (km-kube's) unless it says
 * otherwise; e->mu guards what struct km_recovery_engine says it does.
 */
#ifndef KM_RECOVERY_INTERNAL_H
#define KM_RECOVERY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "km_budget.h"
#include "km_health.h"
#include "km_kube.h"
#include "km_kube_action.h"
#include "km_kube_leader.h"
#include "km_list.h"
#include "km_loop.h"
#include "km_policy.h"
#include "km_recovery.h"
#include "km_storms.h"
#include "km_time.h"
#include "km_zones.h"

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
	const char *fresh; /* the healthy replacement found (in a) */
	/* A policy's, for a pod's probe: the probe's name past its pod's,
	 * ".CONTAINER.liveness" (in a): the replacement's own must be
	 * healthy too; and its probe found so. NULL: not a probe's. */
	const char *probe_sfx, *fresh_probe;
	int64_t decided_ns;   /* a policy's: monotonic, when it decided */
	bool in_flight;       /* holds a worker */
	bool failed_at_start; /* taken back, but nothing fits it */
	bool admitted;        /* holds a slot of the budget */
	/* A drain, once its cordon is done: the node's pods to evict (in
	 * a), a pass at a time, the next pass after o.drain_retry_ms. */
	struct drain_pod {
		const char *ns, *name, *uid;
		bool evicted;
	} * pods;
	size_t n_pods, next_pod, skipped_pods, unmanaged;
	bool draining, blocked;
	int64_t drain_deadline_ns;
	char blocked_why[256];
	struct km_timer drain_timer;
	char *policy_key; /* a policy's: the ladder to tell (malloc'd) */
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

	/* Automatic policies and the safety budget (loop only); NULL: none
	 * (no policies; no budget). */
	struct km_policy_set *policies;
	struct km_budget *budget;
	struct km_storms *storms; /* the storms on, recorded */
	struct km_zones *zones;   /* nodes by zone, for the storm guard */
	int scan_in;              /* ticks to the next zone scan */
	bool judged_all; /* every cluster synced, every target judged */
	struct km_health_sub *sub; /* the hub's transitions, for policies */
	struct km_timer due;
	bool full_said;
	int64_t decided_ns; /* the decision act() acts on: monotonic */

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

/* The policies' and the budget's clock: monotonic microseconds. */
static inline int64_t mono_us(void)
{
	return km_mono_ns() / 1000;
}

/* Counts in e->stats (read by other threads). */
static inline void count(struct km_recovery_engine *e, uint64_t *field,
			 int64_t d)
{
	pthread_mutex_lock(&e->mu);
	*field += (uint64_t)d;
	pthread_mutex_unlock(&e->mu);
}

/* ---- km_recovery.c, for recovery_auto.c ------------------------------------------ */

struct job *rec_job_new(struct km_recovery_engine *e,
			const struct km_recovery *r);
void rec_job_free(struct job *j);
/* The end of a job: its budget slot freed, its policy told. */
void rec_job_done(struct job *j);
/* What the job sends (KM_EINVAL: nothing fits its target), and the
 * target that must be healthy again for it to be VERIFIED. */
int rec_describe(struct km_recovery_engine *e, struct job *j);
const char *rec_verify_target(struct km_recovery_engine *e, struct job *j);
/* A store write's answer (the writer's thread): to the loop. */
void rec_write_done(void *arg, int rc, const struct km_error *err);
/* A job, into the engine (a loop callback: arg is the job). */
void rec_take(struct km_loop *l, void *arg);
/* A request checked against its cluster's cache (km_recovery_check). */
int rec_check_on_loop(struct km_recovery_engine *e, struct km_recovery *r,
		      struct km_arena *a, struct km_error *err);

/* ---- recovery_auto.c, for km_recovery.c ------------------------------------------ */

/* The hub's transitions, to the policies and the zones. */
int rec_subscribe(struct km_recovery_engine *e);
/* Every live target's current health, judged. */
void rec_judge_all(struct km_recovery_engine *e);
/* A policy's recovery ended in phase: the ladder's next step. */
void rec_policy_told(struct km_recovery_engine *e, const char *key, int phase);
/* e->due's callback: decisions that came due. */
void rec_due_fired(struct km_loop *l, void *arg);

#endif
