/*
 * km_kube_rules — how kubemedic judges Kubernetes objects.
 *
 * Each rule takes the few fields of one object that judging it needs (the
 * informers' caches hold exactly these, not whole objects) and the time,
 * and gives a verdict for the health hub with a reason a person
 * understands: "node is not ready: KubeletNotReady: container runtime is
 * down", "container cart is in CrashLoopBackOff (7 restarts, last exit:
 * OOMKilled)". No I/O, no allocation, no global state: the same fields
 * always give the same verdict, so every rule is tested on its own
 * (tests/unit/test_kube_rules.c) and on objects recorded from the real
 * API server.
 *
 * A verdict of KM_KUBE_NO_VERDICT means "too early to say" (a pod still
 * inside its startup grace): the target keeps its state, UNKNOWN if new.
 *
 * Threads: any. Memory: none; strings in the inputs are borrowed.
 */
#ifndef KM_KUBE_RULES_H
#define KM_KUBE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A condition's status; ABSENT when the object has no condition of that
 * type. Conditions are always found by type, never by position. */
enum km_kube_cond {
	KM_COND_ABSENT = 0,
	KM_COND_TRUE,
	KM_COND_FALSE,
	KM_COND_UNKNOWN,
};

#define KM_KUBE_NO_VERDICT 0
#define KM_KUBE_REASON_MAX 512

struct km_kube_verdict {
	int state; /* KM_STATE_HEALTHY, _DEGRADED, _UNHEALTHY or NO_VERDICT */
	char reason[KM_KUBE_REASON_MAX];
};

struct km_kube_rules_options {
	/* A node whose Lease was not renewed for longer is UNHEALTHY, even
	 * while its Ready condition is still stale. 0 = 40 s, the node
	 * monitor's grace period. */
	int64_t lease_grace_us;
	/* A pod still Pending, or Running but not ready, this long after it
	 * was created or started is UNHEALTHY; before, no verdict. 0 = 5 min. */
	int64_t pod_startup_grace_us;
};

/* ---- nodes ------------------------------------------------------------------ */

struct km_kube_node {
	const char *name;
	bool unschedulable; /* cordoned: an attribute, not a verdict */
	enum km_kube_cond ready;
	const char *ready_reason, *ready_message; /* NULL = none */
	enum km_kube_cond memory_pressure, disk_pressure, pid_pressure,
		network_unavailable;
	/* From the node's Lease in kube-node-lease; 0 = no Lease seen. */
	int64_t lease_renew_us;
	/* The label topology.kubernetes.io/zone (or the deprecated
	 * failure-domain.beta.kubernetes.io/zone); NULL = none. The storm
	 * guard counts a zone's nodes. */
	const char *zone;
};

/* Ready True → HEALTHY, or DEGRADED under MemoryPressure, DiskPressure,
 * PIDPressure or NetworkUnavailable; Ready False → UNHEALTHY (not ready),
 * Unknown → UNHEALTHY (unreachable), no Ready condition → UNHEALTHY; a
 * Lease older than the grace → UNHEALTHY whatever Ready says. */
void km_kube_judge_node(const struct km_kube_node *n, int64_t now_us,
			const struct km_kube_rules_options *o,
			struct km_kube_verdict *v);

/* ---- pods ------------------------------------------------------------------- */

enum km_kube_pod_phase {
	KM_POD_PHASE_UNSET = 0,
	KM_POD_PENDING,
	KM_POD_RUNNING,
	KM_POD_SUCCEEDED,
	KM_POD_FAILED,
	KM_POD_UNKNOWN,
};

struct km_kube_container {
	const char *name;
	bool ready;
	int32_t restart_count;
	const char *waiting_reason; /* state.waiting.reason; NULL = not */
	const char *waiting_message;
	/* lastState.terminated: why the previous run ended. */
	const char *last_terminated_reason;
	int32_t last_exit_code;
};

/* One of a container's own probes (livenessProbe, readinessProbe) as the
 * kubelet runs it, read only from pods annotated kubemedic.io/probe:
 * "true" (km_kube_mirror.h runs them). type 0: not mirrored, skip says
 * why. Ports are resolved (a named port through the container's ports);
 * timing is as the API server defaulted it (0 = unset). */
struct km_kube_probe {
	const char *container;
	const char *which; /* "liveness", "readiness" */
	int type;          /* enum km_probe_type: http, tcp, grpc; 0 = none */
	const char *skip;  /* static text, when type is 0 */
	int32_t port;
	const char *path;           /* httpGet */
	bool https;                 /* httpGet.scheme HTTPS */
	const char *service;        /* grpc.service; NULL = "" */
	const char *const *headers; /* httpGet.httpHeaders: name, value, ... */
	size_t n_headers;
	int32_t initial_delay_s, period_s, timeout_s, success, failure;
};

#define KM_KUBE_PROBES_MAX 32 /* per pod: a pod's containers * 2 */

struct km_kube_pod {
	const char *ns, *name;
	const char *owner_kind; /* the controller's kind: ReplicaSet, Job... */
	const char *node_name;  /* spec.nodeName; NULL until scheduled */
	enum km_kube_pod_phase phase;
	const char *reason, *message; /* status.reason / status.message */
	enum km_kube_cond scheduled;  /* PodScheduled */
	const char *scheduled_message;
	int64_t created_us; /* metadata.creationTimestamp */
	int64_t started_us; /* status.startTime; 0 = not yet */
	const struct km_kube_container *init_containers;
	size_t n_init_containers;
	const struct km_kube_container *containers;
	size_t n_containers;
	/* Annotated kubemedic.io/probe: "true": its containers' probes, to
	 * be run by kubemedic against pod_ip. Decoded for the mirror, never
	 * kept by the cache. */
	bool mirror;
	const char *pod_ip; /* status.podIP; NULL = none yet */
	const struct km_kube_probe *probes;
	size_t n_probes;
};

/* Running with every container ready → HEALTHY; a container waiting in
 * CrashLoopBackOff, ImagePullBackOff, ErrImagePull,
 * CreateContainerConfigError (and the like: InvalidImageName,
 * CreateContainerError, RunContainerError) → UNHEALTHY at once;
 * Failed/Unknown → UNHEALTHY; Succeeded → HEALTHY (a Job's pod that
 * finished is no failure); Pending past the startup grace → UNHEALTHY,
 * as is Running with a container not ready past it; before, no
 * verdict. */
void km_kube_judge_pod(const struct km_kube_pod *p, int64_t now_us,
		       const struct km_kube_rules_options *o,
		       struct km_kube_verdict *v);

/* What happened to a pod between two of its versions that the history
 * keeps beside verdicts: a container restarted, a container was
 * OOMKilled. Calls fn once per event with a sentence; returns how many. */
size_t km_kube_pod_events(const struct km_kube_pod *before,
			  const struct km_kube_pod *after,
			  void (*fn)(const char *event, void *arg), void *arg);

/* ---- services --------------------------------------------------------------- */

struct km_kube_service {
	const char *ns, *name;
	bool has_selector; /* only Services with a selector are judged */
	/* Over the Service's EndpointSlices: endpoints, and those whose
	 * conditions.ready is true (or unset, which means ready). */
	int32_t endpoints, ready_endpoints;
};

/* At least one ready endpoint → HEALTHY, else UNHEALTHY; a Service
 * without a selector (its endpoints are someone else's) → no verdict. */
void km_kube_judge_service(const struct km_kube_service *s,
			   struct km_kube_verdict *v);

/* ---- workloads -------------------------------------------------------------- */

struct km_kube_workload {
	const char *kind; /* "Deployment", "StatefulSet", "DaemonSet" */
	const char *ns, *name;
	int32_t desired; /* spec.replicas; DaemonSet:
	                    status.desiredNumberScheduled */
	int32_t ready;   /* status.readyReplicas; DaemonSet: numberReady */
	/* Deployments: the Progressing condition. */
	enum km_kube_cond progressing;
	const char *progressing_reason, *progressing_message;
};

/* ready == desired → HEALTHY (0 of 0 included), fewer → DEGRADED, none
 * of a positive desired → UNHEALTHY; Progressing False with
 * ProgressDeadlineExceeded → UNHEALTHY. */
void km_kube_judge_workload(const struct km_kube_workload *w,
			    struct km_kube_verdict *v);

/* ---- the control plane ------------------------------------------------------ */

/* One named check of /livez or /readyz?verbose ("[+]etcd ok",
 * "[-]etcd failed: reason withheld"). */
struct km_kube_check {
	const char *name; /* points into the body */
	size_t name_len;
	bool ok;
};

/* Judges an answer of /livez?verbose or /readyz?verbose: HTTP 200 →
 * HEALTHY; otherwise UNHEALTHY naming the failed checks (or the status
 * when the body names none). Fills checks (at most max) with every named
 * check of the body, in order; *n is how many were found (more than max
 * are counted, not stored). The body need not be NUL-terminated. */
void km_kube_judge_apiserver(const char *endpoint, long http_status,
			     const char *body, size_t len,
			     struct km_kube_check *checks, size_t max,
			     size_t *n, struct km_kube_verdict *v);

#endif
