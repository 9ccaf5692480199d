/*
 * km_recovery — the recovery engine: restarts, rollout restarts, cordons,
 * uncordons and drains dispatched to the Kubernetes API server, carefully,
 * and checked afterwards.
 *
 * A drain cordons the node, then evicts its pods through the Eviction API
 * (each with its uid as precondition), one at a time and in passes: a pod
 * a PodDisruptionBudget holds (429) is tried again 5 s later, until 5
 * minutes have passed (FAILED, naming what held it). DaemonSet and mirror
 * pods are left, as kubectl drain leaves them; a pod with no controller
 * would be lost: the drain stops at the cordon unless forced. Verified
 * when the informer sees the node cordoned with no evictable pod left.
 *
 * A recovery is recorded by its requester (the API: REQUESTED, committed
 * before the call is answered) and handed over with km_recovery_submit.
 * The engine then takes it through its life, each step committed before
 * the next begins (km_store's recoveries):
 *
 *   QUEUED      waiting for a worker and for its target (one recovery at
 *               a time per target, in the order they came)
 *   DISPATCHED  committed before the request leaves: after a crash, a
 *               recovery found DISPATCHED is sent again — every action is
 *               idempotent (a pod deleted with a uid precondition, a
 *               rollout restart with the same restartedAt, a node's
 *               unschedulable set to a value)
 *   SUCCEEDED   the API server accepted it (a pod already gone, or
 *               replaced, counts: the action is never applied to the
 *               replacement) — or FAILED after max_attempts, or at once
 *               for an answer no retry changes (403, 422)
 *   VERIFIED    the target it was meant to heal became healthy within
 *               the verify window — or NOT_RECOVERED
 *
 * What is checked, once a second until the window ends: for RESTART_POD
 * a pod created after the dispatch is HEALTHY — one of the pod's owner
 * (the Deployment, StatefulSet or DaemonSet behind it, as its target
 * names it) or, for a pod whose owner is not judged, the pod of the same
 * name; for ROLLOUT_RESTART the workload is HEALTHY and so is a pod of
 * it created after the dispatch; for CORDON and UNCORDON the node's
 * spec.unschedulable as the informer sees it. "Created after the
 * dispatch" is to the second (creationTimestamp's): the pods there at the
 * dispatch are told apart by their uids; for a recovery taken back after
 * a restart, whose list of them is lost, a pod of the dispatch's second
 * that is not the restarted one counts as new.
 *
 * Retries: no answer, 5xx, 409 and 429 are tried again, after an
 * exponential backoff with jitter (1 s doubling to 60 s) or the server's
 * Retry-After, up to max_attempts; every attempt is an event of the
 * recovery's history with the API server's answer.
 *
 * Workers: at most `workers` recoveries are dispatched or being committed
 * at once; the rest wait in a queue of at most queue_max (submit refuses
 * beyond it: KM_EFULL).
 *
 * Replicas: with leader election, each cluster's recoveries are
 * dispatched by the one replica holding its Lease; the others answer
 * RequestRecovery for it with UNAVAILABLE naming the leader, and keep
 * what they have queued until they lead (a Lease expires 15 s after its
 * holder stopped renewing; a holder that stops gives it up at once).
 *
 * Threads: the engine runs on km_kube's loop (km_kube_loop), where the
 * clusters' clients and caches are. km_recovery_check and
 * km_recovery_submit may be called from any thread; they hand their work
 * to the loop. Store writes are asynchronous (the loop never waits for
 * the disk); their answers come back through an eventfd.
 */
#ifndef KM_RECOVERY_H
#define KM_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_arena.h"
#include "km_error.h"
#include "km_model.h"
#include "km_policy.h"

struct km_store;
struct km_health;
struct km_kube;
struct km_recovery_engine;
struct km_policy_config;
struct km_budget_config;

struct km_recovery_options {
	struct km_store *store;
	struct km_health *health;
	struct km_kube *kube;     /* the clusters; must outlive the engine */
	int workers;              /* actions in flight at once; 0: 4 */
	size_t queue_max;         /* recoveries waiting; 0: 1024 */
	int max_attempts;         /* per recovery; 0: 5 */
	int64_t verify_window_ms; /* 0: 120 s */
	int64_t pod_grace_s;      /* deletions' and evictions' grace; < 0:
				   * each pod's own */
	int64_t drain_timeout_ms; /* a drain's evictions, at most; 0: 5 min */
	int64_t drain_retry_ms;   /* a blocked eviction's next try; 0: 5 s */
	int64_t backoff_max_ms;   /* 0: 60 s */
	/* Leader election per cluster (km_kube_leader.h): only the replica
	 * holding the cluster's Lease lease_ns/lease_name dispatches its
	 * recoveries, and takes requests for it. lease_ns NULL: none — this
	 * replica acts alone. identity: this replica's, unique. */
	const char *lease_ns, *lease_name, *identity;
	int64_t lease_duration_ms, renew_deadline_ms, retry_period_ms;
	/* Record what would be done (DRY_RUN), never act: every recovery. */
	bool dry_run;
	/* Automatic policies (km_policy.h; copied): none when n is 0. */
	const struct km_policy_config *policies;
	size_t n_policies;
	size_t max_policy_targets; /* 0: km_policy's default */
	/* The safety budget (km_budget.h; copied); NULL: its defaults. */
	const struct km_budget_config *budget;
};

/* Starts the engine on km_kube's loop and takes back what a previous run
 * left open: REQUESTED and QUEUED recoveries are queued, DISPATCHED ones
 * sent again, SUCCEEDED ones verified for what is left of their window. */
int km_recovery_start(const struct km_recovery_options *o,
		      struct km_recovery_engine **out, struct km_error *err);
/* Cancels what is in flight (it stays as recorded: DISPATCHED is sent
 * again by the next start), waits for the store's answers, frees. Before
 * km_kube_stop. NULL is accepted. */
void km_recovery_stop(struct km_recovery_engine *e);

/* Whether r (target, action, force) may be requested, before it is
 * recorded: the target's cluster is watched and the target is a
 * Kubernetes object of a kind the action applies to, known to the
 * cluster's cache; fills r->cluster and r->target_uid (strings in a).
 * Then the safety budget: admitted, *held is true and the recovery holds
 * a slot until it ends (submit it with held, or km_recovery_release it;
 * a dry run's is freed at once); a recovery of the target in progress,
 * *held is false and it waits its turn, checked again then; any other
 * rule refuses it: KM_EPRECOND with the rule in r->skip_rule.
 * Else KM_EINVAL (the action does not apply to the target: the message
 * says why), KM_ENOTFOUND (no such object in the cache), KM_EPRECOND (a
 * pod without a controller would not be restarted but deleted: only with
 * force), KM_EUNAVAIL (the cluster is not watched, or this replica does
 * not lead it). Any thread. */
int km_recovery_check(struct km_recovery_engine *e, struct km_recovery *r,
		      struct km_arena *a, bool *held, struct km_error *err);
/* Hands a recovery just recorded (REQUESTED) to the engine. KM_EFULL
 * when queue_max recoveries wait (r stays REQUESTED: taken back at the
 * next start), KM_ENOMEM. Any thread. */
int km_recovery_submit(struct km_recovery_engine *e,
		       const struct km_recovery *r, bool held);

/* Whether every recovery is a dry run (recovery.dryRun). Any thread. */
bool km_recovery_dry_run(const struct km_recovery_engine *e);

/* The automatic policies, in matching order: the engine's copies, fixed
 * from start to stop (NULL and *n 0: none). Any thread. */
const struct km_policy_config *
km_recovery_policies(const struct km_recovery_engine *e, size_t *n);

/* The storms the storm guard declared and keeps (km_storms.h): owned by
 * the engine, valid until km_recovery_stop. Any thread. */
struct km_storms;
struct km_storms *km_recovery_storms(struct km_recovery_engine *e);
/* A recovery km_recovery_check admitted (it holds a slot of the budget)
 * that is not submitted after all (its recording failed): the slot is
 * freed. Any thread. */
void km_recovery_release(struct km_recovery_engine *e, const char *target);

struct km_recovery_stats {
	uint64_t queued, dispatched, attempts, succeeded, failed, verified,
		not_recovered;
	uint64_t verifying; /* now */
	size_t held;        /* recoveries the engine holds now */
};
/* Any thread. */
void km_recovery_get_stats(struct km_recovery_engine *e,
			   struct km_recovery_stats *out);

#endif
