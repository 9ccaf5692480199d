/*
 * km_kube_decode — the API server's JSON answers, read into what kubemedic
 * keeps of them.
 *
 * cJSON parses (bench/RESULTS.md, "Issue 10 — decoding the API server's
 * answers": the fastest of Debian's C JSON libraries by 3.7x, half the
 * memory of the next); this module only walks the tree by field name and
 * fills a struct km_kube_object with the fields the rules need
 * (km_kube_cache.h), nothing else. Conditions are found by their type,
 * never by their position.
 *
 * The API server is not trusted. What cJSON lets through is checked here:
 * a string that is not valid UTF-8 is copied with '?' for each bad byte
 * (the cache's copies go into protobuf strings), a number must be an
 * integer within the field's range, a time must be RFC 3339; a field of
 * the wrong type is an error naming it ("status.conditions[1].status:
 * expected a string"), an absent one takes Kubernetes' default. A body
 * is at most KM_KUBE_BODY_MAX bytes (the client stops reading there);
 * cJSON stops at a nesting of 1,000.
 *
 * Memory: a parse (km_kube_parse_*) builds its tree in the arena given
 * (cJSON's nodes are bump-allocated there while the parse runs, and
 * dropped with the arena: a third of cJSON's time was malloc and free);
 * decoded objects point into that tree and into the arena given to
 * km_kube_decode_object (containers, repaired strings), which may be the
 * same. Both must outlive the use of the object (km_kube_cache_put copies
 * it). Threads: any; cJSON used elsewhere (other threads, other modules)
 * keeps malloc and free.
 */
#ifndef KM_KUBE_DECODE_H
#define KM_KUBE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_arena.h"
#include "km_error.h"
#include "km_kube_cache.h"

/* The largest answer read: a list page of 500 pods is about 4.5 MB. */
#define KM_KUBE_BODY_MAX (64u << 20)

typedef struct cJSON km_json; /* an answer's tree, in an arena */

/* One object of resource r (a GET's answer, an item of a list, a watch
 * event's object). KM_EINVAL naming the field at fault. */
int km_kube_decode_object(enum km_kube_resource r, const km_json *obj,
			  struct km_arena *a, struct km_kube_object *out,
			  struct km_error *err);

/* A LIST answer: its items, its resourceVersion (to watch from) and its
 * continue token ("" on the last page). */
struct km_kube_list {
	const km_json *items; /* an array: km_kube_first, km_kube_next */
	size_t n_items;
	const char *resource_version;
	const char *continue_token;
};
int km_kube_parse_list(const char *body, size_t len, struct km_arena *tree,
		       km_json **root, struct km_kube_list *out,
		       struct km_error *err);
/* The items in order: for (it = km_kube_first(l); it; it =
 * km_kube_next(it)). */
const km_json *km_kube_first(const struct km_kube_list *l);
const km_json *km_kube_next(const km_json *item);

enum km_kube_event_type {
	KM_EV_ADDED = 1,
	KM_EV_MODIFIED,
	KM_EV_DELETED,
	KM_EV_BOOKMARK,
	KM_EV_ERROR,
};

/* One line of a watch: {"type": ..., "object": {...}}. For BOOKMARK,
 * resource_version is the object's; for ERROR, status is the Status it
 * carries (410 Gone: the watch's resourceVersion is too old — list
 * again). */
struct km_kube_status {
	int code;           /* HTTP status code it stands for; 0 if none */
	const char *reason; /* "Expired", "Forbidden", ... or "" */
	const char *message;
};
struct km_kube_event {
	enum km_kube_event_type type;
	const km_json *object;
	const char *resource_version; /* the object's */
	struct km_kube_status status; /* ERROR */
	/* BOOKMARK annotated k8s.io/initial-events-end: a watch asked for
	 * with sendInitialEvents has sent every object there was (a list
	 * streamed: its resourceVersion is the list's). */
	bool initial_events_end;
};
int km_kube_parse_event(const char *line, size_t len, struct km_arena *tree,
			km_json **root, struct km_kube_event *out,
			struct km_error *err);

/* An error answer's body (a Status object); *out all empty when the body
 * is no Status. Never fails: an error is explained as well as it can be. */
void km_kube_parse_status(const char *body, size_t len, struct km_arena *a,
			  struct km_kube_status *out);

/* RFC 3339 ("2026-11-30T08:53:37Z", "...37.123456Z", "...+01:00") to
 * epoch microseconds; -1 if s is not one. */
int64_t km_kube_parse_time(const char *s);

#endif
