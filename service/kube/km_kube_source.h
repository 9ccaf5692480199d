/*
 * km_kube_source — one cluster's objects as health targets: the Kubernetes
 * source of the health hub.
 *
 * The informers hand it every object they list or watch (km_kube_source_put
 * for ADDED and MODIFIED, km_kube_source_delete for DELETED) and mark their
 * relists. The source keeps each resource's cache (km_kube_cache.h), judges
 * each object with its rule (km_kube_rules.h) and, at km_kube_source_flush,
 * tells the store and the hub: the targets of new objects are made (all of
 * a flush in one transaction), verdicts that changed are observed, a
 * pod's restarts and OOM kills are observed as results of their own (the
 * history keeps them), and the targets of deleted objects are deleted (a
 * transition; their history stays).
 *
 * Targets. Nodes, pods, Services with a selector, Deployments,
 * StatefulSets and DaemonSets, named "node//n", "pod/ns/n",
 * "service/ns/n", "deployment/ns/n" ..., prefixed "CLUSTER:" when the
 * source has a cluster name. A target carries the object's uid, its node
 * (pods) and its owner as a target name: the Deployment behind a pod's
 * ReplicaSet, else the owning controller ("statefulset/ns/n", "job/ns/n").
 * An object whose name cannot be a target's (never from a real API server)
 * is skipped and counted.
 *
 * Derived verdicts. A node is judged with its Lease (kube-node-lease), a
 * Service over its EndpointSlices; when either changes, so does the
 * judgment. Verdicts that time changes — a Lease growing old, a pod
 * pending past its startup grace — are judged again by
 * km_kube_source_tick. A Lease's age counts only the time its renewals
 * could be seen (km_kube_source_watching): while the Leases cannot be
 * watched — the API server down or unreachable — kubemedicd sees no
 * renewal whether the kubelets renew or not, and a node is not blamed for
 * that.
 *
 * Verdicts are observed when they change (state or reason), not at every
 * update of an object: Kubernetes updates pods and nodes often, and the
 * history would hold nothing but repetitions. Thresholds are 1: the
 * kubelet and the controllers have debounced already.
 *
 * Threads: one (the informers' loop), which never waits for the disk:
 * km_kube_source_flush_start hands the targets to make and delete to the
 * store's writer (one transaction per flush, however many objects; at
 * most one in flight) and observes at once the verdicts of targets that
 * need no write; the others are observed when the write lands on the
 * loop. Waiting there would hold the informers' streams: at 30,000 pods
 * the first list spent half its time in the writer's commits, while the
 * API server's watch cache waited for the stream to be read
 * (bench/RESULTS.md). Memory: the caches, one record per target (its
 * name, identity, last verdict), and the copy of what is in flight.
 */
#ifndef KM_KUBE_SOURCE_H
#define KM_KUBE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_kube_cache.h"
#include "km_kube_rules.h"

struct km_store;
struct km_health;
struct km_prober;
struct km_loop;
struct km_kube_source;

struct km_kube_source_options {
	const char *cluster; /* NULL or "": targets unprefixed */
	struct km_store *store;
	struct km_health *health;
	struct km_kube_rules_options rules;
	size_t max_objects; /* per resource; 0 = the cache's default */
	/* Runs the probes of pods annotated kubemedic.io/probe: "true"
	 * (km_kube_mirror.h); NULL: none are. */
	struct km_prober *prober;
	/* The loop the source runs on, where its writes land: then
	 * flushed(flushed_arg, rc, err) follows each write started by
	 * km_kube_source_flush_start — rc 0, or the store's error (nothing
	 * lost: what it did not do waits for the next flush). NULL: only
	 * km_kube_source_flush, which waits. */
	struct km_loop *loop;
	void (*flushed)(void *arg, int rc, const struct km_error *err);
	void *flushed_arg;
};

/* Copies what it needs of o. KM_ENOMEM. */
int km_kube_source_new(const struct km_kube_source_options *o,
		       struct km_kube_source **out, struct km_error *err);
/* NULL is accepted. Targets stay as they are in the store. */
void km_kube_source_free(struct km_kube_source *s);

/* An object listed or watched. now_us: the time to judge it at. 0, or
 * KM_EFULL (past max_objects: not kept, counted), KM_EINVAL (no name or
 * uid), KM_ENOMEM, with err naming the object. */
int km_kube_source_put(struct km_kube_source *s, const struct km_kube_object *o,
		       int64_t now_us, struct km_error *err);
/* An object deleted; unknown uids are ignored. */
void km_kube_source_delete(struct km_kube_source *s, enum km_kube_resource r,
			   const char *uid, int64_t now_us);

/* A relist of resource r: what its list does not bring is deleted at
 * relist_end. */
void km_kube_source_relist_begin(struct km_kube_source *s,
				 enum km_kube_resource r);
void km_kube_source_relist_end(struct km_kube_source *s,
			       enum km_kube_resource r, int64_t now_us);

/* A verdict on a part of the cluster that is no object — "apiserver",
 * judged by the cluster from /livez and /readyz — as the target
 * "[cluster:]controlplane//name". KM_EINVAL for a name that cannot be a
 * target's, KM_ENOMEM. */
int km_kube_source_component(struct km_kube_source *s, const char *name,
			     const struct km_kube_verdict *v,
			     struct km_error *err);

/* Whether resource r is seen, from now_us: the informer says false when
 * its list or watch fails (tried again with backoff), true when a list
 * ends or a watch brings an event. For Leases: from the first failure
 * until they are seen again, no time counts to a Lease's age — nodes keep
 * the verdicts they had when kubemedicd lost sight of the Leases, and
 * afterwards a Lease that was not renewed is as old as the time seen
 * before and since. For Pods: while they cannot be watched, no pod is
 * judged by time (one pending when last seen may have started since; the
 * watch tells, once it is back). Other resources: nothing. */
void km_kube_source_watching(struct km_kube_source *s, enum km_kube_resource r,
			     bool watched, int64_t now_us);

/* Judges again what time changes (nodes' Leases, pods in their startup
 * grace). Call about once a second. */
void km_kube_source_tick(struct km_kube_source *s, int64_t now_us);

/* Makes, observes and deletes what the calls since the last flush
 * decided, without waiting: verdicts of targets that exist are observed
 * now, the makes and deletions go to the store (unless a write is in
 * flight already: they wait for the next flush) and what they concern is
 * observed when they land (options.flushed). 0, or KM_ENOMEM / the store
 * closing; nothing is lost: what was not done waits for the next flush.
 * Needs options.loop. */
int km_kube_source_flush_start(struct km_kube_source *s, struct km_error *err);
/* km_kube_source_flush_start, waiting for every write it needs (the one
 * in flight too) to land: for a source without a loop, and at the end.
 * On an error of the store (a full disk) nothing is lost: what was not
 * done is done by the next flush. */
int km_kube_source_flush(struct km_kube_source *s, struct km_error *err);
/* Whether calls since the last flush decided anything not yet flushed. */
bool km_kube_source_dirty(const struct km_kube_source *s);

struct km_kube_source_stats {
	size_t objects[KM_RES_N]; /* in each cache */
	size_t targets;           /* live targets */
	uint64_t skipped;         /* objects whose names cannot be targets */
	uint64_t over_limit;      /* objects refused past max_objects */
	uint64_t observations;    /* handed to the hub */
	/* Pods' own probes (km_kube_mirror.h): running, never mirrored,
	 * pods refused for the bound. */
	uint64_t mirrored, mirror_skipped, mirror_over_limit;
};
void km_kube_source_stats(const struct km_kube_source *s,
			  struct km_kube_source_stats *out);

/* The cached object of resource r named ns/name ("" for cluster-scoped
 * ones), or NULL; valid until the source's next put or delete. Only the
 * rules' fields are kept (km_kube_cache.h). */
const struct km_kube_object *km_kube_source_get(const struct km_kube_source *s,
						enum km_kube_resource r,
						const char *ns,
						const char *name);
/* Calls fn for every cached object of resource r. */
void km_kube_source_each(const struct km_kube_source *s,
			 enum km_kube_resource r,
			 void (*fn)(const struct km_kube_object *o, void *arg),
			 void *arg);

/* The target name of an object ("[cluster:]pod/ns/name"), or NULL for
 * resources that are not targets; in buf. */
const char *km_kube_target_name(const struct km_kube_source *s,
				const struct km_kube_object *o, char *buf,
				size_t len);

#endif
