/*
 * km_kube — kubemedic's Kubernetes side: the one contract main sees.
 *
 * One thread ("km-kube") runs a loop of its own, on which every cluster
 * given is watched: a client (km_kube_client.h: one HTTP/2 connection,
 * throttled), an informer per resource (km_kube_informer.h: list, then
 * watch), and the source (km_kube_source.h) that turns what they see into
 * targets and verdicts in the health hub. ReplicaSets, Nodes and Leases
 * are listed first, Pods as soon as ReplicaSets have synced (a pod's
 * owner is found through its ReplicaSet), the rest when all three have. The API server itself is a target too,
 * "controlplane//apiserver", judged from /livez?verbose and
 * /readyz?verbose every control_plane_period_ms; losing it is recorded as
 * its transition, and the history stays served meanwhile. Pods annotated
 * kubemedic.io/probe: "true" have their containers' own probes run by the
 * prober against the pod's address (km_kube_mirror.h).
 *
 * Clusters are independent: one that is down or forbidden is logged and
 * retried with backoff, and never stalls the others (they share the loop,
 * never a wait).
 *
 * Threads: start and stop from main's thread; the rest on km-kube. The
 * store and hub must outlive km_kube_stop.
 */
#ifndef KM_KUBE_H
#define KM_KUBE_H

#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_kube_client.h"
#include "km_kube_rules.h"

struct km_store;
struct km_health;
struct km_prober;
struct km_kube;
struct km_kube_source;

struct km_kube_cluster_options {
	/* "" (or NULL) for the single cluster of --kubeconfig, whose
	 * targets are unprefixed; else targets are "NAME:kind/ns/name". */
	const char *name;
	struct km_kube_client_options client;
	const char *ns;             /* NULL: every namespace */
	const char *label_selector; /* NULL: every object */
};

struct km_kube_options {
	struct km_store *store;
	struct km_health *health;
	/* Runs pods' own probes where they ask for it (kubemedic.io/probe:
	 * "true", km_kube_mirror.h); NULL: no pod's are. Must outlive
	 * km_kube_stop. */
	struct km_prober *prober;
	const struct km_kube_cluster_options *clusters;
	size_t n_clusters;
	struct km_kube_rules_options rules;
	int64_t control_plane_period_ms; /* 0: 10 s */
	size_t max_objects;              /* per resource and cluster; 0: 1M */
};

/* Over every cluster, as of each cluster's last tick (once a second). */
struct km_kube_stats {
	uint64_t clusters;
	uint64_t lists, watches, events, bookmarks, gone, failures,
		bad_objects; /* the informers' */
	uint64_t requests, throttled, failed_requests, bytes; /* clients' */
	uint64_t objects, targets, observations;              /* the sources' */
	uint64_t mirrored, mirror_skipped, mirror_over_limit;
};
/* Any thread. */
void km_kube_get_stats(struct km_kube *k, struct km_kube_stats *out);

/* Starts watching. Copies what it needs of o. */
int km_kube_start(const struct km_kube_options *o, struct km_kube **out,
		  struct km_error *err);
/* Stops the thread, flushes what was decided, frees. NULL is accepted. */
void km_kube_stop(struct km_kube *k);

/* ---- for the recovery engine (km_recovery.h), which runs on this loop ---- */

/* The loop of km-kube: post to it (km_loop_post) from other threads. Any
 * thread. */
struct km_loop *km_kube_loop(struct km_kube *k);
/* The clusters watched: how many, and the name of each ("" for the
 * unprefixed one). Any thread (fixed from start to stop). */
size_t km_kube_cluster_count(const struct km_kube *k);
const char *km_kube_cluster_name(const struct km_kube *k, size_t i);
/* The cluster named (NULL or "": the unprefixed one of --kubeconfig): its
 * client and its source (caches), or NULL when no such cluster is
 * watched. The loop's thread only. */
struct km_kube_client *km_kube_cluster_client(struct km_kube *k,
					      const char *cluster);
struct km_kube_source *km_kube_cluster_source(struct km_kube *k,
					      const char *cluster);
/* Whether every resource of the cluster has been listed once (a resource
 * the cluster refuses counts as listed): its caches hold what the API
 * server has. The loop's thread only. */
bool km_kube_cluster_synced(struct km_kube *k, const char *cluster);

#endif
