/*
 * km_kube_cache — what an informer knows of one resource: for each
 * object, the few fields the rules need (km_kube_rules.h), never the
 * whole object, found by namespace/name or by uid in O(1).
 *
 * Objects. A decoder fills a struct km_kube_object whose strings and
 * arrays point into its own buffers; km_kube_cache_put copies it into one
 * allocation (the struct, its container arrays and every string), so an
 * object costs one malloc and its own size, and nothing points back into
 * the decoder's document.
 *
 * Versions. put replaces an object of the same uid and hands the caller
 * the version it replaced, to compare (a pod's restarts) and then free;
 * a new uid under a name that another uid held (an object deleted and
 * made again between two watches) replaces that one the same way, and the
 * caller sees the old uid go.
 *
 * Relists. After a watch expires (410 Gone) the informer lists again:
 * km_kube_cache_relist_begin starts a new mark, every object the list
 * brings is put (and marked), and km_kube_cache_relist_end removes and
 * hands over the objects the list no longer had: deletions the watch
 * missed. Nothing is lost or doubled: a put of an unchanged object is
 * reported as unchanged (same resourceVersion).
 *
 * Bounds. At most max_objects objects (KM_EFULL beyond, and the informer
 * reports the resource as over its limit); a string longer than
 * KM_KUBE_STRING_MAX is cut. Buckets are keyed by a per-cache random seed,
 * so names an API server chooses cannot be made to collide on purpose.
 *
 * Threads: one (the informers' loop). Memory: owned by the cache; objects
 * returned by put/remove/relist_end are the caller's to free with
 * km_kube_object_free.
 */
#ifndef KM_KUBE_CACHE_H
#define KM_KUBE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_kube_rules.h"
#include "km_model.h"

enum km_kube_resource {
	KM_RES_NODE,
	KM_RES_LEASE,
	KM_RES_POD,
	KM_RES_SERVICE,
	KM_RES_ENDPOINTSLICE,
	KM_RES_DEPLOYMENT,
	KM_RES_STATEFULSET,
	KM_RES_DAEMONSET,
	KM_RES_REPLICASET,
	KM_RES_N
};

/* Longest string kept of an object (a message, a name); longer are cut. */
#define KM_KUBE_STRING_MAX 1024
/* Most containers (or init containers) kept of one pod; Kubernetes has
 * no limit, a pod with more is judged on its first ones. */
#define KM_KUBE_CONTAINERS_MAX 64
/* Most labels kept of one object (the first given; a key given twice
 * keeps its first value): what the recovery policies' label selectors
 * match. Kubernetes has no limit; more than this is unusual. */
#define KM_KUBE_LABELS_MAX 64

struct km_kube_meta {
	const char *ns; /* "" for cluster-scoped objects */
	const char *name;
	const char *uid;
	const char *resource_version;
	/* The controller's ownerReference (controller: true), if any. */
	const char *owner_kind, *owner_name, *owner_uid;
	int64_t created_us;
	bool deleting; /* deletionTimestamp set */
	/* metadata.labels, at most KM_KUBE_LABELS_MAX; kept for nodes, pods
	 * and workloads (the kinds a policy matches), not for the others. */
	const struct km_kv *labels;
	size_t n_labels;
};

/* A node's Lease in kube-node-lease. */
struct km_kube_lease {
	int64_t renew_us; /* spec.renewTime; 0 = never */
	int32_t duration_s;
};

/* An EndpointSlice, counted: which Service, how many endpoints, how many
 * ready. */
struct km_kube_endpointslice {
	const char *service; /* label kubernetes.io/service-name */
	int32_t endpoints, ready;
};

struct km_kube_object {
	enum km_kube_resource resource;
	struct km_kube_meta meta;
	union {
		struct km_kube_node node;
		struct km_kube_lease lease;
		struct km_kube_pod pod;
		struct km_kube_service service;
		struct km_kube_endpointslice slice;
		struct km_kube_workload workload; /* and ReplicaSets */
	} u;
};

struct km_kube_cache;

/* KM_ENOMEM. max_objects 0 = 1,000,000. */
int km_kube_cache_new(enum km_kube_resource r, size_t max_objects,
		      struct km_kube_cache **out, struct km_error *err);
void km_kube_cache_free(struct km_kube_cache *c);

size_t km_kube_cache_count(const struct km_kube_cache *c);

enum km_kube_put {
	KM_PUT_ADDED,     /* a new uid */
	KM_PUT_UPDATED,   /* a new resourceVersion of a known uid */
	KM_PUT_UNCHANGED, /* the same resourceVersion (a relist) */
	KM_PUT_REPLACED,  /* a new uid under a name another uid held */
};

/* Copies o in (UNCHANGED: keeps the copy it has, and marks it). On
 * UPDATED and REPLACED, *old (if old is not NULL) is the version it
 * replaced, the caller's to free; otherwise NULL. *stored (if stored is
 * not NULL) is the cache's copy, valid until it is replaced or removed.
 * KM_EINVAL (named) without name or uid or with o->resource not the
 * cache's; KM_EFULL past max_objects; KM_ENOMEM. */
int km_kube_cache_put(struct km_kube_cache *c, const struct km_kube_object *o,
		      enum km_kube_put *what, struct km_kube_object **old,
		      const struct km_kube_object **stored,
		      struct km_error *err);

/* Removes the object of that uid and returns it (the caller's to free),
 * or NULL if there is none. */
struct km_kube_object *km_kube_cache_remove(struct km_kube_cache *c,
					    const char *uid);

/* NULL when absent; ns "" (or NULL) for cluster-scoped objects. */
const struct km_kube_object *km_kube_cache_get(const struct km_kube_cache *c,
					       const char *ns,
					       const char *name);
const struct km_kube_object *
km_kube_cache_get_uid(const struct km_kube_cache *c, const char *uid);

/* Calls fn for every object, in no particular order; fn must not change
 * the cache. */
void km_kube_cache_each(const struct km_kube_cache *c,
			void (*fn)(const struct km_kube_object *o, void *arg),
			void *arg);

/* A relist: see the top of this file. fn is given each object the list
 * did not bring, removed, and owns it (frees it with
 * km_kube_object_free). Returns how many. */
void km_kube_cache_relist_begin(struct km_kube_cache *c);
size_t km_kube_cache_relist_end(struct km_kube_cache *c,
				void (*fn)(struct km_kube_object *o, void *arg),
				void *arg);

/* NULL is accepted. */
void km_kube_object_free(struct km_kube_object *o);

#endif
