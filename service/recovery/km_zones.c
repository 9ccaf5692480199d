/*
 * Nodes by zone, for the storm guard (km_zones.h).
 */
#include "km_zones.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_kube_source.h"
#include "km_log.h"
#include "km_model.h"
#include "rtable.h"

struct entry {
	struct rt_node node; /* key: the node's target name */
	char *zone, *cluster;
	unsigned gen; /* the scan that last saw it */
};

struct km_zones {
	struct km_kube *kube;
	struct km_health *health;
	struct km_budget *budget;
	struct km_storms *storms;
	struct rt nodes;
	unsigned gen;
	bool full_said;
};

int km_zones_new(struct km_kube *kube, struct km_health *health,
		 struct km_budget *budget, struct km_storms *storms,
		 struct km_zones **out)
{
	struct km_zones *z = calloc(1, sizeof *z);

	*out = NULL;
	if (!z || rt_init(&z->nodes)) {
		free(z);
		return KM_ENOMEM;
	}
	z->kube = kube;
	z->health = health;
	z->budget = budget;
	z->storms = storms;
	*out = z;
	return 0;
}

static void entry_free(struct entry *x)
{
	free((char *)x->node.key);
	free(x->zone);
	free(x->cluster);
	free(x);
}

void km_zones_free(struct km_zones *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->nodes.nb; i++)
		for (struct rt_node *n = z->nodes.b[i], *nx; n; n = nx) {
			nx = n->next;
			entry_free((struct entry *)n);
		}
	rt_fini(&z->nodes);
	free(z);
}

/* A node target's cluster and node name; false if target is no node. */
static bool parse(const char *target, struct km_target_parts *tn)
{
	char why[128];

	return !km_target_name_split(target, tn, why, sizeof why) &&
	       tn->kind == KM_KIND_NODE;
}

static const char *zone_in_cache(struct km_zones *z, const char *cluster,
				 const char *name)
{
	struct km_kube_source *src = km_kube_cluster_source(z->kube, cluster);
	const struct km_kube_object *o =
		src ? km_kube_source_get(src, KM_RES_NODE, "", name) : NULL;

	return o && o->u.node.zone && *o->u.node.zone ? o->u.node.zone : NULL;
}

const char *km_zones_of(struct km_zones *z, const char *target)
{
	struct km_target_parts tn;

	if (!z || !target || !parse(target, &tn))
		return NULL;
	return zone_in_cache(z, tn.cluster, tn.name);
}

/* Tells the budget; a storm's start or end goes to km_storms. */
static void count(struct km_zones *z, const char *zone, const char *cluster,
		  const char *target, bool unhealthy, bool gone, int64_t now_us)
{
	struct km_budget_member m = {.group = KM_BUDGET_ZONE,
				     .name = zone,
				     .cluster = cluster,
				     .target = target,
				     .unhealthy = unhealthy,
				     .gone = gone};
	struct km_budget_storm_change c = {0};
	int rc = km_budget_target_state(z->budget, &m, now_us, &c);

	if (rc == KM_EFULL && !z->full_said) {
		z->full_said = true;
		km_log(KM_LOG_ERROR,
		       "recovery: the storm guard counts as many members as it "
		       "may; more nodes are not counted in their zones",
		       "node", target, NULL);
	}
	if (!rc && z->storms)
		km_storms_change(z->storms, &c);
}

/* The node target in zone (NULL: in none, or gone): moved, counted. */
static void member(struct km_zones *z, const char *target, const char *cluster,
		   const char *zone, bool unhealthy, bool gone, int64_t now_us)
{
	struct entry *x = (struct entry *)rt_find(&z->nodes, target);

	if (x && (gone || !zone || strcmp(x->zone, zone))) {
		count(z, x->zone, x->cluster, target, false, true, now_us);
		rt_remove(&z->nodes, &x->node);
		entry_free(x);
		x = NULL;
	}
	if (gone || !zone)
		return;
	if (!x) {
		x = calloc(1, sizeof *x);
		if (!x || !(x->node.key = strdup(target)) ||
		    !(x->zone = strdup(zone)) ||
		    !(x->cluster = strdup(cluster))) {
			if (x)
				entry_free(x);
			km_log(KM_LOG_ERROR,
			       "recovery: out of memory: a node is not "
			       "counted in its zone",
			       "node", target, NULL);
			return;
		}
		rt_insert(&z->nodes, &x->node);
	}
	x->gen = z->gen;
	count(z, zone, cluster, target, unhealthy, false, now_us);
}

void km_zones_node(struct km_zones *z, const char *target, int state,
		   int64_t now_us)
{
	struct km_target_parts tn;
	bool gone = state == KM_STATE_DELETED;

	if (!z || !parse(target, &tn))
		return;
	member(z, target, tn.cluster,
	       gone ? NULL : zone_in_cache(z, tn.cluster, tn.name),
	       state == KM_STATE_UNHEALTHY, gone, now_us);
}

struct scan {
	struct km_zones *z;
	struct km_kube_source *src;
	const char *cluster;
	int64_t now_us;
};

static void scan_one(const struct km_kube_object *o, void *arg)
{
	struct scan *s = arg;
	char buf[512];
	const char *target = km_kube_target_name(s->src, o, buf, sizeof buf);
	int state;

	/* Not a target yet (its write in flight): counted next time. */
	if (!target || km_health_state(s->z->health, target, &state))
		return;
	member(s->z, target, s->cluster,
	       o->u.node.zone && *o->u.node.zone ? o->u.node.zone : NULL,
	       state == KM_STATE_UNHEALTHY, false, s->now_us);
}

void km_zones_scan(struct km_zones *z, int64_t now_us)
{
	struct rt_node **stale = NULL;
	size_t n_stale = 0;

	if (!z)
		return;
	z->gen++;
	for (size_t i = 0; i < km_kube_cluster_count(z->kube); i++) {
		const char *cl = km_kube_cluster_name(z->kube, i);
		struct scan s = {.z = z,
				 .cluster = cl ? cl : "",
				 .now_us = now_us};

		s.src = km_kube_cluster_source(z->kube, s.cluster);
		if (s.src)
			km_kube_source_each(s.src, KM_RES_NODE, scan_one, &s);
	}
	/* What the caches no longer have (or have not as targets). */
	if (z->nodes.n && !(stale = malloc(z->nodes.n * sizeof *stale)))
		return; /* next time */
	for (size_t i = 0; i < z->nodes.nb; i++)
		for (struct rt_node *n = z->nodes.b[i]; n; n = n->next)
			if (((struct entry *)n)->gen != z->gen)
				stale[n_stale++] = n;
	for (size_t i = 0; i < n_stale; i++)
		member(z, stale[i]->key, "", NULL, false, true, now_us);
	free(stale);
}
