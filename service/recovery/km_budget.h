/*
 * km_budget — the safety budget every recovery passes before it is
 * dispatched: so that kubemedic never turns a bad hour into an outage.
 *
 * km_budget_admit asks, in this order:
 *   1. one action at a time on one target (always, force or not);
 *   2. the storm guard: while more than storm_share_pct percent (40) —
 *      and at least storm_min_unhealthy (3) — of a group's members are
 *      UNHEALTHY, automatic requests in that group are refused, and
 *      manual ones pass only with force. The groups are a policy's
 *      matched targets (request.policy) and a zone's nodes (request.zone:
 *      the node label topology.kubernetes.io/zone, within a cluster);
 *   3. at most max_concurrent actions at once, and at most
 *      max_concurrent_per_cluster in one cluster;
 *   4. a token bucket per action kind per cluster (rates) and across all
 *      clusters (global_rates): burst tokens, refilled at count per
 *      per_ms. A refusal says which rule ("rate limit: cordon 1/min in
 *      prod-eu") and when a token comes (retry_at_us).
 * An admitted request holds its target and a concurrency slot until
 * km_budget_release(target). force passes only the storm guard, and only
 * for manual requests.
 *
 * The storm guard counts what it is told: the caller reports each
 * member's health with km_budget_target_state (every transition of a
 * target a policy matches, and of every node with a zone; at start, the
 * current health of each), and hears of a storm's start and end from the
 * same call, with the numbers that caused it. km_budget_storms lists the
 * storms now (for the API and grpc.health.v1).
 *
 * Threads: one at a time (no lock); no I/O, no clock: now_us comes in
 * (monotonic microseconds). Memory: the budget owns one entry per
 * member (at most max_members: 200,000; past it target_state refuses
 * with KM_EFULL, the caller counts and logs), per group (at most
 * KM_BUDGET_MAX_GROUPS), per cluster (at most KM_BUDGET_MAX_CLUSTERS)
 * and per action in flight (at most max_concurrent). Verdicts and storms
 * are copied into the caller's structs.
 */
#ifndef KM_BUDGET_H
#define KM_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_model.h"

#define KM_BUDGET_MAX_GROUPS 4096
#define KM_BUDGET_MAX_CLUSTERS 1024
#define KM_BUDGET_MAX_MEMBERS_DEFAULT 200000

/* count tokens every per_ms, at most burst stored; count 0: no limit. */
struct km_budget_rate {
	int64_t count;
	int64_t per_ms;
	int64_t burst;
};

struct km_budget_config {
	int max_concurrent;             /* 20 */
	int max_concurrent_per_cluster; /* 10 */
	/* Indexed by enum km_recovery_action (0 unused). */
	struct km_budget_rate rates[KM_ACTION_MAX + 1];        /* per cluster */
	struct km_budget_rate global_rates[KM_ACTION_MAX + 1]; /* none */
	int storm_share_pct;     /* 40: a storm is MORE than this share */
	int storm_min_unhealthy; /* 3 */
	size_t max_members;      /* 200,000 */
};

/* The defaults above; per cluster: restart_pod 30/min (burst 10),
 * rollout_restart 5/min (3), cordon 1/min (1), uncordon 5/min (5), drain
 * 1/5min (1). */
void km_budget_config_defaults(struct km_budget_config *c);
/* The bounds: max_concurrent 1..10000, per cluster 1..max_concurrent,
 * rates count 0..1e6, per_ms 1 s..1 day, burst 1..1e6 (when count > 0),
 * storm share 1..99 %, storm_min_unhealthy 1..1e6. KM_EINVAL naming the
 * field (the configuration's key). */
int km_budget_config_check(const struct km_budget_config *c,
			   struct km_error *err);

struct km_budget;
struct km_budget_storm;

int km_budget_new(const struct km_budget_config *c, struct km_budget **out,
		  struct km_error *err);
/* NULL is accepted. */
void km_budget_free(struct km_budget *b);

struct km_budget_request {
	const char *cluster; /* NULL or "": the only one */
	const char *target;  /* the target acted on (its full name) */
	int action;          /* enum km_recovery_action */
	const char *zone;    /* the acted-on node's zone; NULL: unknown */
	const char *policy;  /* the policy asking; NULL: a manual request */
	bool automatic;      /* a policy's, not a person's */
	bool force;          /* a person's override of the storm guard */
};

/* Which rule refused (ask this, not the words). */
enum km_budget_refusal {
	KM_BUDGET_ADMITTED = 0,
	KM_BUDGET_BUSY,        /* one at a time: the target has one in flight */
	KM_BUDGET_STORM,       /* the storm guard (storm says which) */
	KM_BUDGET_CONCURRENCY, /* max concurrent, global or per cluster */
	KM_BUDGET_RATE,        /* a token bucket (retry_at_us) */
};

struct km_budget_verdict {
	bool ok;
	int refusal; /* enum km_budget_refusal */
	/* Refused: the rule, in words ("storm: 7 of 10 nodes in zone-a of
	 * prod-eu unhealthy (70% > 40%)", "rate limit: cordon 1/min in
	 * prod-eu", "one at a time: an action on ... is in flight"). */
	char rule[256];
	int64_t retry_at_us; /* a rate limit's next token; 0: unknown */
	struct km_budget_storm *storm; /* STORM: filled if not NULL */
};

/* Fills *out: admitted (and then held until km_budget_release) or the
 * rule that refused (out->storm, when set by the caller, is kept, and
 * filled when a storm refused). 0, or KM_EINVAL (no target, an unknown action),
 * KM_ENOMEM, KM_EFULL (KM_BUDGET_MAX_CLUSTERS clusters seen). */
int km_budget_admit(struct km_budget *b, const struct km_budget_request *r,
		    int64_t now_us, struct km_budget_verdict *out);
/* The action on target ended: its slot is free. KM_ENOTFOUND if none
 * was held. */
int km_budget_release(struct km_budget *b, const char *target);

enum km_budget_group {
	KM_BUDGET_POLICY = 1, /* name: a policy's name */
	KM_BUDGET_ZONE = 2,   /* name: a zone, within cluster */
};

/* One member's health, for the storm guard. */
struct km_budget_member {
	int group;           /* enum km_budget_group */
	const char *name;    /* the policy or the zone */
	const char *cluster; /* zones: the cluster ("" = the only one) */
	const char *target;  /* the member's full name */
	bool unhealthy;      /* UNHEALTHY now */
	bool gone;           /* deleted, or no longer in the group */
};

struct km_budget_storm {
	int group; /* enum km_budget_group */
	char name[128];
	char cluster[64];
	size_t unhealthy, total;
	int share_pct; /* the configured share */
	int64_t since_us;
	char why[256]; /* "storm: 7 of 10 nodes in zone-a ... (70% > 40%)" */
};

struct km_budget_storm_change {
	int change; /* 0: none; 1: a storm started; -1: it ended */
	struct km_budget_storm storm; /* the numbers at the change */
};

/* Records m's health; fills *out (may be NULL) when this started or
 * ended its group's storm. 0, KM_EINVAL (no group, name or target),
 * KM_EFULL (max_members or KM_BUDGET_MAX_GROUPS reached: not counted),
 * KM_ENOMEM. */
int km_budget_target_state(struct km_budget *b,
			   const struct km_budget_member *m, int64_t now_us,
			   struct km_budget_storm_change *out);

/* The storms now, at most max of them into out; returns how many there
 * are (which may be more than max). */
size_t km_budget_storms(const struct km_budget *b, struct km_budget_storm *out,
			size_t max);

struct km_budget_stats {
	size_t in_flight, members, groups;
	uint64_t admitted, refused_target, refused_storm, refused_concurrency,
		refused_rate;
};
void km_budget_get_stats(const struct km_budget *b,
			 struct km_budget_stats *out);

#endif
