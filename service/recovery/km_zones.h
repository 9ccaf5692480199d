/*
 * km_zones — each cluster's nodes by zone, counted for the storm guard
 * (km_budget.h, group KM_BUDGET_ZONE): when more than the configured
 * share of a zone's nodes are UNHEALTHY at once, automatic actions on
 * that zone's nodes stop, and a person's need force.
 *
 * A node's zone is its label topology.kubernetes.io/zone (the cluster's
 * cache keeps it, km_kube_rules.h); a node without one is in no zone and
 * never counted. Two paths keep the counts:
 *   km_zones_node   a node target's transition, at once (before the
 *                   policies judge it, so an action it causes sees the
 *                   storm it completes);
 *   km_zones_scan   every node of every cluster's cache with its health
 *                   as the hub publishes it: at start and every few
 *                   seconds after — nodes that never change are counted,
 *                   a node whose zone label changed moves, and a node the
 *                   cache no longer has leaves.
 * Storm starts and ends go to km_storms (recorded, told).
 *
 * Threads: the recovery engine's loop (the kube caches' thread), one at a
 * time. Memory: one entry per node with a zone (a name and a zone); the
 * budget bounds its members (max_members) and refuses past it (logged
 * once).
 */
#ifndef KM_ZONES_H
#define KM_ZONES_H

#include <stdint.h>

#include "km_budget.h"
#include "km_health.h"
#include "km_kube.h"
#include "km_storms.h"

struct km_zones;

/* All must outlive the set. KM_ENOMEM. */
int km_zones_new(struct km_kube *kube, struct km_health *health,
		 struct km_budget *budget, struct km_storms *storms,
		 struct km_zones **out);
/* NULL is accepted. */
void km_zones_free(struct km_zones *z);

/* A node target's new state (enum km_state; KM_STATE_DELETED: gone). */
void km_zones_node(struct km_zones *z, const char *target, int state,
		   int64_t now_us);
/* Every cached node, counted again (see above). */
void km_zones_scan(struct km_zones *z, int64_t now_us);
/* The zone of node target ("[cluster:]node//name") as the cache has it
 * now, or NULL (not a node, unknown, no zone). Valid until the cache
 * changes: use it at once. */
const char *km_zones_of(struct km_zones *z, const char *target);

#endif
