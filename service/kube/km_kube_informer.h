/*
 * km_kube_informer — one resource of one cluster, listed then watched.
 *
 * A list, each object handed to the source (km_kube_source_put) inside a
 * relist (what the list no longer has is deleted): streamed as a watch's
 * initial events (sendInitialEvents, ended by a bookmark annotated
 * k8s.io/initial-events-end, the stream then going on as the watch), or,
 * from a server that refuses or ignores that, a LIST in pages (limit,
 * continue) then a WATCH from the list's resourceVersion. Either way the
 * watch has bookmarks, its events are handed over as they come (ADDED and
 * MODIFIED put, DELETED deletes), the resourceVersion kept from every
 * event and bookmark after the list's end.
 * A watch that ends is started again from there; one that fails is
 * started again after a backoff (0.5 s doubling to 30 s, with jitter); a
 * 410 Gone — the version is older than etcd keeps — lists again, and the
 * relist reconciles: objects unchanged are no new observation, objects
 * gone are deleted, nothing is lost or told twice.
 *
 * Pods are watched (and so streamed) in protobuf, the API server's
 * quicker encoding (km_kube_decode.h); a server that answers such a watch
 * in JSON is read in JSON, and asked for JSON from then on. Lists in
 * pages, and every other resource, are JSON.
 * A resource the cluster refuses (403: RBAC) or that fails is reported
 * through status (logged by the cluster) and retried with the backoff; it
 * never holds up the other resources. The source is told when the
 * resource stops and starts being seen (km_kube_source_watching: at a
 * failure; at a list's end or a watch's event).
 *
 * Threads: the cluster's loop. Memory: the request in flight and the
 * version; objects go to the source.
 */
#ifndef KM_KUBE_INFORMER_H
#define KM_KUBE_INFORMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_kube_cache.h"
#include "km_kube_client.h"
#include "km_kube_source.h"
#include "km_loop.h"

struct km_kube_informer;

enum km_kube_informer_state {
	KM_INF_LISTING = 1,
	KM_INF_WATCHING,
	KM_INF_BACKOFF,
};

struct km_kube_informer_options {
	struct km_kube_client *client;
	struct km_kube_source *source;
	enum km_kube_resource resource;
	const char *ns;             /* NULL or "": every namespace */
	const char *label_selector; /* NULL or "": every object */
	size_t page_size;           /* 0: 500 (lists in pages) */
	const char *cluster;        /* for logs: NULL or "" is "(default)" */
	/* Called when the source was handed something (the cluster
	 * flushes it soon). Both callbacks may run inside the client's
	 * callbacks (a line of a stream): they must not start or cancel a
	 * request of the client, but arm a timer to do so. */
	void (*changed)(void *arg);
	/* Called when the informer fails (why) or syncs again (why NULL). */
	void (*status)(void *arg, enum km_kube_resource r, const char *why);
	void *arg;
};

/* Starts listing. Copies what it needs of o. */
int km_kube_informer_start(struct km_loop *l,
			   const struct km_kube_informer_options *o,
			   struct km_kube_informer **out, struct km_error *err);
/* Cancels its request; nothing more is handed over. NULL is accepted. */
void km_kube_informer_free(struct km_kube_informer *inf);

/* Whether a list has completed since the start. */
bool km_kube_informer_synced(const struct km_kube_informer *inf);
enum km_kube_informer_state
km_kube_informer_state(const struct km_kube_informer *inf);

struct km_kube_informer_stats {
	uint64_t lists, pages, watches, events, bookmarks, gone, failures,
		bad_objects;
};
void km_kube_informer_stats(const struct km_kube_informer *inf,
			    struct km_kube_informer_stats *out);

/* The path of resource r ("/api/v1/namespaces/shop/pods"). */
const char *km_kube_resource_path(enum km_kube_resource r, const char *ns,
				  char *buf, size_t len);
/* Its plural name ("pods"). */
const char *km_kube_resource_name(enum km_kube_resource r);

#endif
