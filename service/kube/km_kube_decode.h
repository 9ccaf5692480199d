/*
 * km_kube_decode — the API server's answers, JSON or (pods) protobuf,
 * read into what kubemedic keeps of them.
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
 *
 * Protobuf (application/vnd.kubernetes.protobuf; km_kube_decode_pb.c):
 * pods only, the resource with the most objects, whose watch streams the
 * list. The API server writes that stream in a third of the time it
 * takes for JSON (bench/RESULTS.md). A pod read from protobuf is the same
 * struct km_kube_object as from its JSON, field for field: the same
 * defaults, ranges, UTF-8 repair, mirror annotation and probes. It is
 * unpacked by protoc-c's code for k8s.io/api v0.37.2 (proto/k8s.io) into
 * the arena given, within KM_KUBE_PB_EXPANSION times its size: protobuf
 * turns a few bytes into many (an empty message repeated is 2 bytes on
 * the wire and a struct of hundreds in memory), and the bound is what
 * stops a hostile frame from taking the memory a real pod never needs
 * (about 3.5 times its size). A watch's frame is at most
 * KM_KUBE_FRAME_MAX bytes (the client stops reading there).
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
/* An object unpacked from protobuf, in an arena (a protobuf-c message). */
typedef struct ProtobufCMessage km_pb_object;

/* The largest frame of a protobuf watch read: one object and a few bytes
 * around it. etcd refuses values over 1.5 MiB unless told otherwise
 * (--max-request-bytes, which etcd advises to keep under 10 MiB), and an
 * object is stored in etcd in this same protobuf: 16 MiB leaves room for
 * a raised limit. A larger frame fails the watch, as a line of JSON over
 * KM_KUBE_BODY_MAX does. */
#define KM_KUBE_FRAME_MAX (16u << 20)
/* Unpacking an object may allocate this many times its size (and 64 KiB):
 * 16 MiB frames take at most 129 MiB, once at a time per informer. */
#define KM_KUBE_PB_EXPANSION 8

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
	/* details.retryAfterSeconds: how long to wait before trying again
	 * (a 429, a 500 ServerTimeout); 0 if not given (or not positive). */
	int64_t retry_after_s;
	/* details.causes[0]: its type ("DisruptionBudget" for an eviction a
	 * PodDisruptionBudget refused, "FieldValueInvalid", ...) and message;
	 * "" if none. */
	const char *cause_type, *cause_message;
};
struct km_kube_event {
	enum km_kube_event_type type;
	const km_json *object;         /* JSON: the object's tree */
	const km_pb_object *pb_object; /* protobuf: ADDED, MODIFIED, DELETED,
					   BOOKMARK */
	const char *resource_version;  /* the object's */
	struct km_kube_status status;  /* ERROR */
	/* BOOKMARK annotated k8s.io/initial-events-end: a watch asked for
	 * with sendInitialEvents has sent every object there was (a list
	 * streamed: its resourceVersion is the list's). */
	bool initial_events_end;
};
int km_kube_parse_event(const char *line, size_t len, struct km_arena *tree,
			km_json **root, struct km_kube_event *out,
			struct km_error *err);

/* ---- protobuf ------------------------------------------------------------------ */

/* Whether resource r can be read from protobuf here (pods). */
bool km_kube_pb_supported(enum km_kube_resource r);

/* One frame of a watch answered in application/vnd.kubernetes.protobuf;
 * stream=watch (without its 4-byte length): a metav1.WatchEvent whose
 * object is "k8s\0" + runtime.Unknown around an object of resource r.
 * ADDED, MODIFIED, DELETED and BOOKMARK: pb_object (unpacked into a, for
 * km_kube_decode_object_pb), resource_version, initial_events_end; ERROR:
 * status (a metav1.Status; strings in a). KM_EINVAL (malformed, an
 * unknown type, an object of another kind, a compressed object),
 * KM_EFULL (past KM_KUBE_PB_EXPANSION), KM_ENOMEM. */
int km_kube_parse_event_pb(enum km_kube_resource r, const void *frame,
			   size_t len, struct km_arena *a,
			   struct km_kube_event *out, struct km_error *err);
/* One object in protobuf ("k8s\0" + runtime.Unknown: a GET's answer),
 * unpacked into a. The same errors. */
int km_kube_parse_object_pb(enum km_kube_resource r, const void *data,
			    size_t len, struct km_arena *a,
			    const km_pb_object **out, struct km_error *err);
/* As km_kube_decode_object, from an unpacked object; what out points to
 * is in the object's arena and in a. */
int km_kube_decode_object_pb(enum km_kube_resource r, const km_pb_object *obj,
			     struct km_arena *a, struct km_kube_object *out,
			     struct km_error *err);
/* A Status in protobuf into out (strings in a); false if it is none. */
bool km_kube_parse_status_pb(const char *body, size_t len, struct km_arena *a,
			     struct km_kube_status *out);

/* An error answer's body (a Status object, JSON or protobuf); *out all
 * empty when the body is no Status. Never fails: an error is explained as
 * well as it can be. The strings are UTF-8 (bad bytes repaired) in a. */
void km_kube_parse_status(const char *body, size_t len, struct km_arena *a,
			  struct km_kube_status *out);

/* What of a container's probe the mirror runs (km_kube_mirror.h), decided
 * once for both encodings: k as read (type 0 for a handler other than
 * httpGet, tcpSocket or grpc; port 0 for none, or for a named port the
 * container does not declare, named_port), with the handler's host and
 * scheme as the pod gives them. Sets k->https, and k->skip with type 0
 * for what is not run: not from outside the pod, a host other than the
 * pod's address, no port, a scheme other than HTTP or HTTPS. */
void km_kube_probe_settle(struct km_kube_probe *k, const char *host,
			  const char *scheme, bool named_port,
			  const char *pod_ip);

/* RFC 3339 ("2026-11-30T08:53:37Z", "...37.123456Z", "...+01:00") to
 * epoch microseconds; -1 if s is not one. */
int64_t km_kube_parse_time(const char *s);

#endif
