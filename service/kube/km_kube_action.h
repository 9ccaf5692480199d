/*
 * km_kube_action — the Kubernetes side of recovery actions: what request
 * each action is (method, path, Content-Type, body) and what the API
 * server's answer to it means. Pure functions: no I/O, no clock unless
 * asked (now_us 0), no state; the recovery engine sends the request with
 * km_kube_request (km_kube_client.h) and classifies the answer here.
 *
 * The actions:
 *  - restart pod: DELETE /api/v1/namespaces/NS/pods/NAME with DeleteOptions
 *    {preconditions.uid, gracePeriodSeconds if given}. The uid is required:
 *    a pod replaced by another of the same name (a StatefulSet's) is never
 *    deleted by an action meant for its predecessor — the API server
 *    answers 409, classified GONE.
 *  - rollout restart of a Deployment, StatefulSet or DaemonSet: what
 *    `kubectl rollout restart` sends (k8s.io/kubectl, polymorphichelpers'
 *    object restarter and rollout_restart.go), a strategic-merge PATCH of
 *    spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]
 *    = the time in RFC 3339, here in UTC ("2026-11-30T08:53:37Z"; kubectl
 *    writes its local offset). kubectl refuses a paused Deployment (the
 *    annotation would change nothing until it is resumed); this module
 *    cannot see the object: the caller checks spec.paused.
 *  - cordon / uncordon: PATCH /api/v1/nodes/NAME {"spec":{"unschedulable":
 *    true|false}}, strategic merge, as kubectl cordon (kubectl's two-way
 *    patch sends null for false; the API stores both as not set).
 *  - evict (for a drain): POST /api/v1/namespaces/NS/pods/NAME/eviction, a
 *    policy/v1 Eviction whose deleteOptions carry preconditions.uid (and
 *    gracePeriodSeconds if given). A PodDisruptionBudget refuses it with 429.
 * A PATCH has no uid precondition (a metadata.uid in a patch is a change,
 * refused as immutable, not a precondition): a Deployment or node replaced
 * under the same name is the one patched, which for a restart or a cordon
 * is what was meant.
 *
 * Hostile input: names, namespaces and uids come from the API server and
 * from users. A namespace must be a DNS-1123 label, a name a DNS-1123
 * subdomain, a uid an RFC 4122 UUID (what the API server makes); anything
 * else is KM_EINVAL naming the field, before any path or JSON is made. JSON
 * is written by cJSON.
 *
 * Threads: any. Memory: km_kube_action_build's path and body are malloc'd,
 * the caller's (km_kube_action_request_free); nothing else is kept.
 */
#ifndef KM_KUBE_ACTION_H
#define KM_KUBE_ACTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_kube_cache.h"

enum km_kube_action_kind {
	KM_KUBE_ACT_RESTART_POD = 1,
	KM_KUBE_ACT_ROLLOUT_RESTART,
	KM_KUBE_ACT_CORDON,
	KM_KUBE_ACT_UNCORDON,
	KM_KUBE_ACT_EVICT,
};

struct km_kube_action {
	enum km_kube_action_kind kind;
	/* Rollout restart: KM_RES_DEPLOYMENT, KM_RES_STATEFULSET or
	 * KM_RES_DAEMONSET. */
	enum km_kube_resource workload;
	const char *ns;   /* pods and workloads; not for nodes */
	const char *name; /* the pod's, workload's or node's */
	const char *uid;  /* restart pod and evict: required */
	/* Restart pod and evict: gracePeriodSeconds, 0 to a year; -1: not
	 * sent (the pod's own). */
	int64_t grace_period_s;
	/* Rollout restart: restartedAt, Unix epoch microseconds (whole
	 * seconds are written); 0: the clock now. */
	int64_t now_us;
};

/* One request, for km_kube_request. */
struct km_kube_action_request {
	const char *method;       /* static: "DELETE", "PATCH", "POST" */
	char *path;               /* malloc'd */
	const char *content_type; /* static */
	char *body;               /* malloc'd JSON */
	size_t len;               /* of body */
};

/* The request of action a into out. KM_EINVAL (a field missing or not
 * valid, naming it; an unknown kind or workload), KM_ENOMEM; out is then
 * all NULL. */
int km_kube_action_build(const struct km_kube_action *a,
			 struct km_kube_action_request *out,
			 struct km_error *err);
void km_kube_action_request_free(struct km_kube_action_request *r);

/* What an answer means. */
enum km_kube_outcome {
	KM_KUBE_DONE = 1,  /* 200, 201, 202: done */
	KM_KUBE_GONE,      /* the pod is gone (404), or was replaced (409 of
			      the uid precondition): nothing to do, never
			      act on the replacement */
	KM_KUBE_CONFLICT,  /* another 409: read the object again, retry */
	KM_KUBE_THROTTLED, /* 429 (an eviction a PodDisruptionBudget
			      refuses, too): wait, retry */
	KM_KUBE_RETRY,     /* 500, 502, 503, 504, or no answer (0): retry
			      with backoff */
	KM_KUBE_FAILED,    /* anything else (400, 401, 403, 404 of a node
			      or workload, 422, ...): permanent */
};

/* Classifies the answer to a's request: http_status (0: none came) and
 * its body (an error Status, JSON or protobuf; NULL or anything else is
 * accepted). *retry_after_s: the Status's details.retryAfterSeconds, 0 if
 * none (the Retry-After header, km_kube_req_retry_after, says it for an
 * answer without a Status). why: a sentence for a person (what was done or
 * why not, with the server's message), cut to why_len. */
enum km_kube_outcome km_kube_action_outcome(const struct km_kube_action *a,
					    long http_status, const char *body,
					    size_t len, int64_t *retry_after_s,
					    char *why, size_t why_len);

/* "DONE", "GONE", ...; "?" for another value. */
const char *km_kube_outcome_name(enum km_kube_outcome o);

/* A uid's check (RFC 4122); names: km_dns1123_* (km_model.h). */
bool km_kube_uuid(const char *s);

#endif
