/*
 * km_policy — automatic recovery policies: which unhealthy target gets
 * which action, when, how often, and when to stop trying.
 *
 * A policy matches targets (clusters, kinds, namespaces, a label
 * selector), fires on a trigger (UNHEALTHY for at least unhealthy_for,
 * and — when reasons are given — a transition's cause containing one of
 * them, case-insensitively; both must hold when both are given) and
 * climbs a ladder of actions: ladder[0] is the policy's action; a rung
 * whose recoveries fail verification escalate_after times in a row
 * (NOT_RECOVERED or FAILED, or VERIFIED but UNHEALTHY again before
 * backoff.reset_after of health: a relapse) gives way to the next; when
 * the last rung has failed max_attempts times the policy gives up on the
 * target and says so. Between attempts the kubelet's backoff: initial
 * (10 s), doubling to max (300 s), forgotten — with the ladder — after
 * reset_after (10 min) of health. Flapping targets are never acted on.
 * The first matching policy (in the configuration's order) is a target's.
 *
 * What a rung acts on follows from its action and the target that
 * triggered it (the subject): restart_pod the pod; rollout_restart a
 * pod's owner (a Deployment, StatefulSet or DaemonSet) or the workload
 * itself; cordon and drain a pod's node or the node itself. A pod's
 * mirrored liveness probe (kind probe, its owner the pod's target) stands
 * for its pod: restart_pod restarts the pod (the kubelet's answer to a
 * failing liveness probe), rollout_restart its pod's owner, cordon and
 * drain its node. A pod's readiness probe is never matched (the kubelet
 * restarts nothing for it: the pod only leaves its Services), and a
 * defined probe (no pod owner) has nothing to restart: its rungs are
 * stepped over. A rung that does not apply to the subject (a pod with no
 * such owner, or not yet on a node) is stepped over, as the decision's
 * reason says.
 *
 * One ladder per key: a pod with an owner shares its owner's (its
 * replacement has a new name, and must climb on, not start over; the
 * owner's pods take turns: the newest to become UNHEALTHY is the subject,
 * even while an older one still is — a replacement can fail before its
 * predecessor has stopped — and the key is UNHEALTHY since the first of
 * them became so; the other pods' news is not the key's); a pod's probe
 * shares its pod's owner's too (pod_owner; without one, its pod's), so a
 * restart for a probe and for its pod are one ladder, and the
 * replacement's probe climbs on; the pod's deletion is its probe's too.
 * Other targets have their own, by name.
 *
 * The engine drives the state machine, one thread at a time (the set is
 * not locked; nothing here does I/O or reads a clock — time comes in as
 * now_us, any monotonic microseconds):
 *
 *   km_policy_observe   every transition (and, at start, every target's
 *                       current health): maybe an action now
 *   km_policy_due       at the time it names: triggers that are
 *                       durations and backoffs that ended
 *   km_policy_outcome   exactly once for every KM_POLICY_ACT decision,
 *                       with its recovery's final phase (SKIPPED when the
 *                       budget refused it or it was never recorded)
 *
 * Until its outcome comes, a key has an action in flight and gets no
 * other decision.
 *
 * Bounds: at most max_targets keys are tracked (default 100,000); a new
 * one past that is not acted on (the decision's rule "full", counted in
 * the stats: the caller logs it). A key is forgotten reset_after after
 * its last subject became healthy or was deleted.
 *
 * Memory: the set owns a copy of its configuration (km_policy_set_new)
 * and one malloc'd entry per tracked key; decisions are the caller's
 * (fixed-size buffers, nothing to free).
 */
#ifndef KM_POLICY_H
#define KM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_model.h"

#define KM_POLICY_MAX 256        /* policies in one set */
#define KM_POLICY_MAX_RUNGS 8    /* ladder[0] is the action */
#define KM_POLICY_MAX_LIST 64    /* clusters, namespaces, reasons */
#define KM_POLICY_NAME_MAX 63    /* an RFC 1123 label */
#define KM_POLICY_TARGET_MAX 512 /* a target name, NUL included */
#define KM_POLICY_MAX_TARGETS_DEFAULT 100000

/* The kinds a policy may match, as a mask of (1u << enum km_kind). */
#define KM_POLICY_KINDS                                             \
	((1u << KM_KIND_POD) | (1u << KM_KIND_NODE) |               \
	 (1u << KM_KIND_DEPLOYMENT) | (1u << KM_KIND_STATEFULSET) | \
	 (1u << KM_KIND_DAEMONSET) | (1u << KM_KIND_PROBE))

struct km_policy_backoff {
	int64_t initial_ms;     /* 10 s */
	int64_t max_ms;         /* 300 s */
	int64_t reset_after_ms; /* 10 min healthy */
};

/* One policy, as the configuration gives it. Strings and arrays are
 * borrowed (km_policy_set_new copies them). */
struct km_policy_config {
	const char *name; /* an RFC 1123 label: the requester "policy:NAME" */
	const char *const *clusters; /* none: every cluster */
	size_t n_clusters;
	unsigned kinds;                /* mask within KM_POLICY_KINDS; not 0 */
	const char *const *namespaces; /* none: every namespace */
	size_t n_namespaces;
	const char *label_selector; /* NULL or "": every target */
	int64_t unhealthy_for_ms;   /* 0: as soon as UNHEALTHY */
	const char *const *reasons; /* none: any cause */
	size_t n_reasons;
	int ladder[KM_POLICY_MAX_RUNGS]; /* enum km_recovery_action */
	size_t n_ladder;                 /* 1 or more */
	int escalate_after;              /* failures on a rung: 3 */
	int max_attempts;                /* failures on the last rung: 3 */
	struct km_policy_backoff backoff;
};

/* A policy with the defaults above: no name, no kinds, no ladder. */
void km_policy_config_defaults(struct km_policy_config *c);

/* Which field km_policy_config_check found wrong. */
enum km_policy_field {
	KM_PF_NONE = 0,
	KM_PF_NAME,
	KM_PF_CLUSTERS,
	KM_PF_KINDS,
	KM_PF_NAMESPACES,
	KM_PF_SELECTOR,
	KM_PF_UNHEALTHY_FOR,
	KM_PF_REASONS,
	KM_PF_LADDER, /* *index: the rung */
	KM_PF_ESCALATE_AFTER,
	KM_PF_MAX_ATTEMPTS,
	KM_PF_BACKOFF,
};

/* The rules of one policy (the configuration's loader applies them too,
 * to point at the line): a name that is an RFC 1123 label, kinds within
 * KM_POLICY_KINDS, lists of at most KM_POLICY_MAX_LIST non-empty strings,
 * a selector that parses, 1 to KM_POLICY_MAX_RUNGS rungs each of an
 * action that applies to one of the kinds (never uncordon: it heals
 * nothing), escalate_after and max_attempts in 1..100, unhealthy_for at
 * most 1 day, 1 s <= backoff.initial <= backoff.max <= 1 day, reset_after
 * in 1 s..1 day. KM_EINVAL with a message naming the field (without the
 * policy's own prefix) and *field (*index: the list item, or -1). */
int km_policy_config_check(const struct km_policy_config *c, int *field,
			   int *index, struct km_error *err);

/* Whether action may act on a target of kind (directly or through its
 * owner or node): restart_pod on pods and probes (a pod's); rollout_restart
 * on pods, probes and workloads; cordon and drain on pods, probes and
 * nodes. */
bool km_policy_action_applies(int action, int kind);

struct km_policy_set;

struct km_policy_options {
	size_t max_targets; /* keys tracked at most; 0: 100,000 */
};

/* Checks every policy (KM_EINVAL naming "policies[i].field"), and that
 * names are unique, and copies them. KM_ENOMEM. o may be NULL. */
int km_policy_set_new(const struct km_policy_config *cfg, size_t n,
		      const struct km_policy_options *o,
		      struct km_policy_set **out, struct km_error *err);
/* NULL is accepted. */
void km_policy_set_free(struct km_policy_set *s);

/* The n policies of the set, as given (the set's copies). */
const struct km_policy_config *
km_policy_set_policies(const struct km_policy_set *s, size_t *n);

/* A target as a transition leaves it. Strings are borrowed for the call. */
struct km_policy_target {
	const char *name;    /* "[cluster:]kind/namespace/name" */
	const char *cluster; /* NULL or "": the only one */
	int kind;            /* enum km_kind */
	const char *ns;      /* NULL for nodes */
	const struct km_kv *labels;
	size_t n_labels;
	const char *owner;     /* a pod's owner, a target name; NULL: none (a
	                    * pod's probe: the pod's target name) */
	const char *node;      /* a pod's node (its name, not a target name) */
	const char *pod_owner; /* a pod's probe: its pod's owner, as the
	                        * caller found it (km_policy_target_from
	                        * leaves it NULL); NULL: unknown or none */
	int state;             /* enum km_state; DELETED when it is gone */
	bool flapping;
	const char *cause; /* the transition's cause; NULL: none */
	int64_t cause_seq; /* the transition; handed to the decision */
};

/* Fills out from a health event's target and transition (either may be
 * NULL; the transition's to_state, flapping and cause win). Borrows. */
void km_policy_target_from(const struct km_target *t,
			   const struct km_transition *tr,
			   struct km_policy_target *out);

enum km_policy_verdict {
	KM_POLICY_NONE = 0, /* nothing to do (rule and reason say why) */
	KM_POLICY_ACT = 1,  /* request action on act_on */
};

/* What a call decided. rule is a static word:
 *   "no_policy"  no policy matches the target
 *   "healthy"    the target is not UNHEALTHY
 *   "waiting"    the trigger or the backoff ends at next_us
 *   "reason"     UNHEALTHY, but its cause holds none of the reasons
 *   "flapping"   never auto-remediated
 *   "in_flight"  an action for the key awaits its outcome
 *   "gave_up"    the ladder is spent (until reset_after of health)
 *   "full"       max_targets keys are tracked already
 *   "other_pod"  another pod of the owner is the subject (and this one
 *                is not UNHEALTHY, or matches no policy)
 *   "trigger"    ACT: the trigger holds and the backoff is over
 *   "verified", "retry", "escalated", "skipped"   (km_policy_outcome)
 * Strings are copies (the caller's), policy points into the set. */
struct km_policy_decision {
	int verdict; /* enum km_policy_verdict */
	const char *rule;
	const char *policy; /* the matched policy's name; NULL: none */
	/* observe: the target itself matches policy (else policy, if set,
	 * is its key's: another pod's, or its workload's). */
	bool matched;
	char requester[80];                 /* "policy:NAME" */
	char key[KM_POLICY_TARGET_MAX];     /* the ladder's key */
	char subject[KM_POLICY_TARGET_MAX]; /* the target that triggered */
	char act_on[KM_POLICY_TARGET_MAX];  /* ACT: the target acted on */
	int act_on_kind;                    /* enum km_kind */
	int action;                         /* ACT: enum km_recovery_action */
	int rung;    /* ACT: 0-based; outcome: the rung now */
	int attempt; /* ACT: 1-based, on this rung */
	int64_t cause_seq;
	int64_t next_us;  /* "waiting", "retry", ...: when the next decision
			  * may come (km_policy_due); 0: none scheduled */
	char reason[384]; /* words for the recovery's reason, or the log */
};

/* One transition of a target (or its current health, at start). Fills
 * out (may be NULL) and returns 0, or KM_EINVAL (no name). ACT means:
 * request out->action on out->act_on now, as out->requester, then report
 * its end through km_policy_outcome(out->key). */
int km_policy_observe(struct km_policy_set *s, const struct km_policy_target *t,
		      int64_t now_us, struct km_policy_decision *out);

/* The end of the recovery an ACT decision for key asked for: VERIFIED,
 * NOT_RECOVERED, FAILED or SKIPPED (also CANCELLED, DRY_RUN: as
 * SKIPPED). Every outcome starts the backoff (the next action waits the
 * current delay, which then doubles: a relapse after VERIFIED, or a budget
 * that keeps refusing, waits as a crash loop does); only NOT_RECOVERED and
 * FAILED count against the rung. out (may be NULL) says what
 * follows: rule "verified", "retry", "escalated", "gave_up" or "skipped",
 * next_us. KM_ENOTFOUND (key unknown, or no action in flight for it),
 * KM_EINVAL (another phase). */
int km_policy_outcome(struct km_policy_set *s, const char *key, int phase,
		      int64_t now_us, struct km_policy_decision *out);

/* The next ACT decision due at now_us: returns 1 with *out filled, or 0
 * when none is due; *next_us (may be NULL) is then the earliest time one
 * may be (INT64_MAX: nothing scheduled). Call until it returns 0. Keys
 * healthy for reset_after are forgotten on the way. */
int km_policy_due(struct km_policy_set *s, int64_t now_us,
		  struct km_policy_decision *out, int64_t *next_us);

/* Whether the set tracks key (a ladder: a target, or a pod's owner, that
 * was UNHEALTHY and matched, not yet forgotten). */
bool km_policy_tracks(const struct km_policy_set *s, const char *key);

struct km_policy_stats {
	size_t tracked, max_targets;
	uint64_t acts, gave_up, refused_full;
};
void km_policy_get_stats(const struct km_policy_set *s,
			 struct km_policy_stats *out);

#endif
