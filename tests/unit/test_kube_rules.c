/* The Kubernetes health rules (service/kube/km_kube_rules.h): each
 * verdict and its reason, on the fields the informers keep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "km_kube_rules.h"
#include "km_model.h"
#include "km_pbcheck.h"

#define SEC 1000000LL
#define NOW (1764500000LL * SEC)

static const struct km_kube_rules_options defaults = {0};

static void assert_valid_reason(const struct km_kube_verdict *v)
{
	size_t n = strnlen(v->reason, sizeof v->reason);

	assert_true(n < sizeof v->reason);
	assert_int_equal(km_utf8_invalid_at(v->reason, n), n);
}

/* ---- nodes ------------------------------------------------------------------ */

static struct km_kube_node ready_node(void)
{
	return (struct km_kube_node){
		.name = "kubesim-node-0",
		.ready = KM_COND_TRUE,
		.ready_reason = "KubeletReady",
		.ready_message = "kubelet is posting ready status",
		.memory_pressure = KM_COND_FALSE,
		.disk_pressure = KM_COND_FALSE,
		.pid_pressure = KM_COND_FALSE,
		.lease_renew_us = NOW - 5 * SEC,
	};
}

static void test_node_ready(void **state)
{
	struct km_kube_node n = ready_node();
	struct km_kube_verdict v;

	(void)state;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
	assert_string_equal(v.reason, "node is ready");
	/* Cordoned is an attribute, not a verdict. */
	n.unschedulable = true;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
	/* No Lease seen (not synced yet, or none): Ready decides. */
	n.lease_renew_us = 0;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
}

static void test_node_not_ready_and_unreachable(void **state)
{
	struct km_kube_node n = ready_node();
	struct km_kube_verdict v;

	(void)state;
	n.ready = KM_COND_FALSE;
	n.ready_reason = "KubeletNotReady";
	n.ready_message = "container runtime network not ready";
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason, "node is not ready: KubeletNotReady: "
				      "container runtime network not ready");

	n.ready = KM_COND_UNKNOWN;
	n.ready_reason = "NodeStatusUnknown";
	n.ready_message = "Kubelet stopped posting node status.";
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason,
			    "node is unreachable: Ready is Unknown "
			    "(NodeStatusUnknown): Kubelet stopped posting "
			    "node status.");

	n.ready = KM_COND_ABSENT;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason, "node has no Ready condition");

	/* Without reason and message. */
	n.ready = KM_COND_FALSE;
	n.ready_reason = n.ready_message = NULL;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_string_equal(v.reason, "node is not ready");
}

static void test_node_pressure_is_degraded(void **state)
{
	struct km_kube_node n = ready_node();
	struct km_kube_verdict v;

	(void)state;
	n.disk_pressure = KM_COND_TRUE;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_DEGRADED);
	assert_string_equal(v.reason,
			    "node is ready but under pressure: DiskPressure");
	n.memory_pressure = KM_COND_TRUE;
	n.pid_pressure = KM_COND_TRUE;
	n.network_unavailable = KM_COND_TRUE;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_DEGRADED);
	assert_string_equal(v.reason,
			    "node is ready but under pressure: MemoryPressure, "
			    "DiskPressure, PIDPressure, NetworkUnavailable");
	/* Unknown pressure is no pressure; not ready wins over pressure. */
	n = ready_node();
	n.memory_pressure = KM_COND_UNKNOWN;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
	n.memory_pressure = KM_COND_TRUE;
	n.ready = KM_COND_FALSE;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
}

static void test_node_silent_lease(void **state)
{
	struct km_kube_node n = ready_node();
	struct km_kube_rules_options o = {.lease_grace_us = 10 * SEC};
	struct km_kube_verdict v;

	(void)state;
	/* 40 s is the default grace: at 40 s still fine, past it not, even
	 * though Ready still says True. */
	n.lease_renew_us = NOW - 40 * SEC;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
	n.lease_renew_us = NOW - 52 * SEC;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason, "node lease not renewed for 52s (grace "
				      "40s): the kubelet has gone silent; "
				      "Ready is still True from before");
	/* A configured grace. */
	n.lease_renew_us = NOW - 11 * SEC;
	km_kube_judge_node(&n, NOW, &o, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	n.lease_renew_us = NOW - 9 * SEC;
	km_kube_judge_node(&n, NOW, &o, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
	/* Long silences read as a person would. */
	n.ready = KM_COND_UNKNOWN;
	n.lease_renew_us = NOW - (2 * 3600 + 5 * 60 + 7) * SEC;
	km_kube_judge_node(&n, NOW, &defaults, &v);
	assert_string_equal(v.reason, "node lease not renewed for 2h5m (grace "
				      "40s): the kubelet has gone silent");
}

/* ---- pods ------------------------------------------------------------------- */

static const struct km_kube_container two_ready[] = {
	{.name = "cart", .ready = true},
	{.name = "envoy", .ready = true},
};

static struct km_kube_pod running_pod(void)
{
	return (struct km_kube_pod){
		.ns = "shop",
		.name = "cart-7d9f-x2",
		.owner_kind = "ReplicaSet",
		.phase = KM_POD_RUNNING,
		.scheduled = KM_COND_TRUE,
		.created_us = NOW - 600 * SEC,
		.started_us = NOW - 590 * SEC,
		.containers = two_ready,
		.n_containers = 2,
	};
}

static void test_pod_running(void **state)
{
	struct km_kube_pod p = running_pod();
	struct km_kube_container c[2] = {two_ready[0], two_ready[1]};
	struct km_kube_verdict v;

	(void)state;
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
	assert_string_equal(v.reason,
			    "pod is running, 2 of 2 containers ready");

	/* Not ready past the startup grace. */
	c[1].ready = false;
	p.containers = c;
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason,
			    "pod is running, 1 of 2 containers not ready: "
			    "envoy (started 9m50s ago, startup grace 5m0s)");
	c[0].ready = false;
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_string_equal(v.reason,
			    "pod is running, 2 of 2 containers not ready: "
			    "cart, envoy (started 9m50s ago, startup grace "
			    "5m0s)");
	/* Within it: too early to say. */
	p.started_us = NOW - 30 * SEC;
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_KUBE_NO_VERDICT);
}

static void test_pod_stuck_containers(void **state)
{
	struct km_kube_pod p = running_pod();
	struct km_kube_container c[2] = {two_ready[0], two_ready[1]};
	struct km_kube_container init = {
		.name = "migrate",
		.waiting_reason = "ImagePullBackOff",
		.waiting_message = "Back-off pulling image \"shop/migrate:v9\"",
	};
	struct km_kube_verdict v;

	(void)state;
	c[0].ready = false;
	c[0].waiting_reason = "CrashLoopBackOff";
	c[0].waiting_message = "back-off 5m0s restarting failed container";
	c[0].restart_count = 7;
	c[0].last_terminated_reason = "OOMKilled";
	c[0].last_exit_code = 137;
	p.containers = c;
	/* At once, within the grace too. */
	p.started_us = NOW - 20 * SEC;
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason,
			    "container cart is in CrashLoopBackOff (7 "
			    "restarts, last exit: OOMKilled): back-off 5m0s "
			    "restarting failed container");

	static const char *const reasons[] = {"ErrImagePull",
					      "CreateContainerConfigError",
					      "InvalidImageName",
					      "CreateContainerError",
					      "RunContainerError"};
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
		c[0].waiting_reason = reasons[i];
		c[0].restart_count = 0;
		c[0].last_terminated_reason = NULL;
		c[0].waiting_message = NULL;
		km_kube_judge_pod(&p, NOW, &defaults, &v);
		assert_int_equal(v.state, KM_STATE_UNHEALTHY);
		assert_non_null(strstr(v.reason, reasons[i]));
	}
	/* Waiting for an ordinary reason is not stuck. */
	c[0].waiting_reason = "ContainerCreating";
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_KUBE_NO_VERDICT);

	/* An init container that cannot start: the pod is Pending. */
	p = running_pod();
	p.phase = KM_POD_PENDING;
	p.created_us = NOW - 10 * SEC;
	p.init_containers = &init;
	p.n_init_containers = 1;
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason,
			    "init container migrate is in ImagePullBackOff: "
			    "Back-off pulling image \"shop/migrate:v9\"");
}

static void test_pod_phases(void **state)
{
	struct km_kube_pod p = running_pod();
	struct km_kube_rules_options o = {.pod_startup_grace_us = 60 * SEC};
	struct km_kube_verdict v;

	(void)state;
	p.phase = KM_POD_PENDING;
	p.started_us = 0;
	p.scheduled = KM_COND_FALSE;
	p.scheduled_message = "0/3 nodes are available: 3 Insufficient cpu.";
	p.created_us = NOW - 299 * SEC;
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_KUBE_NO_VERDICT);
	p.created_us = NOW - 372 * SEC;
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason,
			    "pod pending for 6m12s (startup grace 5m0s): not "
			    "scheduled: 0/3 nodes are available: 3 "
			    "Insufficient cpu.");
	p.created_us = NOW - 61 * SEC;
	km_kube_judge_pod(&p, NOW, &o, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);

	p.phase = KM_POD_FAILED;
	p.reason = "Evicted";
	p.message = "The node was low on resource: memory.";
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason, "pod failed: Evicted: The node was low "
				      "on resource: memory.");

	p.phase = KM_POD_UNKNOWN;
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);

	/* A Job's pod that finished is no failure. */
	p.phase = KM_POD_SUCCEEDED;
	p.owner_kind = "Job";
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
	assert_string_equal(v.reason, "pod completed (its Job's work is done)");

	p.phase = KM_POD_PHASE_UNSET;
	km_kube_judge_pod(&p, NOW, &defaults, &v);
	assert_int_equal(v.state, KM_KUBE_NO_VERDICT);
}

struct events {
	char seen[4][KM_KUBE_REASON_MAX];
	size_t n;
};

static void collect(const char *event, void *arg)
{
	struct events *e = arg;

	assert_true(e->n < 4);
	strcpy(e->seen[e->n++], event);
}

static void test_pod_events(void **state)
{
	struct km_kube_container was[2] = {two_ready[0], two_ready[1]};
	struct km_kube_container now[2] = {two_ready[0], two_ready[1]};
	struct km_kube_pod before = running_pod(), after = running_pod();
	struct events e = {0};

	(void)state;
	before.containers = was;
	after.containers = now;
	/* Nothing changed; and a pod seen first has no events. */
	assert_int_equal(km_kube_pod_events(&before, &after, collect, &e), 0);
	now[0].restart_count = 3;
	assert_int_equal(km_kube_pod_events(NULL, &after, collect, &e), 0);

	was[0].restart_count = 2;
	now[0].last_terminated_reason = "OOMKilled";
	now[0].last_exit_code = 137;
	now[1].restart_count = 2;
	now[1].last_terminated_reason = "Error";
	now[1].last_exit_code = 1;
	assert_int_equal(km_kube_pod_events(&before, &after, collect, &e), 2);
	assert_string_equal(e.seen[0], "container cart was OOMKilled (exit "
				       "code 137) and restarted: 3 restarts in "
				       "all");
	assert_string_equal(e.seen[1], "container envoy restarted more than "
				       "once (last exit: Error, code 1): 2 "
				       "restarts in all");
	e.n = 0;
	now[1].last_terminated_reason = NULL;
	now[1].restart_count = 1;
	now[0].restart_count = 2;
	assert_int_equal(km_kube_pod_events(&before, &after, collect, &e), 1);
	assert_string_equal(e.seen[0],
			    "container envoy restarted: 1 restart in all");
}

/* ---- services and workloads ------------------------------------------------- */

static void test_service(void **state)
{
	struct km_kube_service s = {.ns = "shop",
				    .name = "cart",
				    .has_selector = true};
	struct km_kube_verdict v;

	(void)state;
	km_kube_judge_service(&s, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason,
			    "no endpoints: no pod matches the selector");
	s.endpoints = 3;
	km_kube_judge_service(&s, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason, "no ready endpoints (0 of 3 ready)");
	s.ready_endpoints = 1;
	km_kube_judge_service(&s, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
	assert_string_equal(v.reason, "1 of 3 endpoints ready");
	s.has_selector = false;
	s.ready_endpoints = 0;
	km_kube_judge_service(&s, &v);
	assert_int_equal(v.state, KM_KUBE_NO_VERDICT);
}

static void test_workloads(void **state)
{
	struct km_kube_workload w = {.kind = "Deployment",
				     .ns = "shop",
				     .name = "cart",
				     .desired = 3,
				     .ready = 3,
				     .progressing = KM_COND_TRUE,
				     .progressing_reason =
					     "NewReplicaSetAvailable"};
	struct km_kube_verdict v;

	(void)state;
	km_kube_judge_workload(&w, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
	assert_string_equal(v.reason, "3 of 3 replicas ready");
	w.ready = 1;
	km_kube_judge_workload(&w, &v);
	assert_int_equal(v.state, KM_STATE_DEGRADED);
	assert_string_equal(v.reason, "1 of 3 replicas ready");
	w.ready = 0;
	km_kube_judge_workload(&w, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason, "0 of 3 replicas ready");
	w.desired = 0;
	km_kube_judge_workload(&w, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
	assert_string_equal(v.reason, "scaled to zero");

	/* A stuck rollout is unhealthy even with replicas ready. */
	w.desired = 3;
	w.ready = 3;
	w.progressing = KM_COND_FALSE;
	w.progressing_reason = "ProgressDeadlineExceeded";
	w.progressing_message =
		"ReplicaSet \"cart-7d9f\" has timed out progressing.";
	km_kube_judge_workload(&w, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason,
			    "rollout stuck: ProgressDeadlineExceeded: "
			    "ReplicaSet \"cart-7d9f\" has timed out "
			    "progressing. (3 of 3 replicas ready)");
	/* Progressing False for another reason is not that. */
	w.progressing_reason = "ReplicaSetUpdated";
	km_kube_judge_workload(&w, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);

	w = (struct km_kube_workload){.kind = "DaemonSet",
				      .desired = 5,
				      .ready = 4};
	km_kube_judge_workload(&w, &v);
	assert_int_equal(v.state, KM_STATE_DEGRADED);
	assert_string_equal(v.reason, "4 of 5 pods ready");
}

/* ---- the control plane ------------------------------------------------------ */

static void test_apiserver(void **state)
{
	/* As kube-apiserver answers /readyz?verbose. */
	static const char ok[] = "[+]ping ok\n"
				 "[+]log ok\n"
				 "[+]etcd ok\n"
				 "[+]poststarthook/start-informers ok\n"
				 "readyz check passed\n";
	static const char bad[] =
		"[+]ping ok\n"
		"[-]etcd failed: reason withheld\n"
		"[+]informer-sync ok\n"
		"[-]poststarthook/rbac/bootstrap-roles failed: "
		"reason withheld\n"
		"readyz check failed\n";
	struct km_kube_check checks[3];
	struct km_kube_verdict v;
	size_t n;

	(void)state;
	km_kube_judge_apiserver("/readyz", 200, ok, sizeof ok - 1, checks, 3,
				&n, &v);
	assert_int_equal(v.state, KM_STATE_HEALTHY);
	assert_string_equal(v.reason, "/readyz ok");
	assert_int_equal(n, 4); /* counted beyond max */
	assert_int_equal(checks[2].name_len, 4);
	assert_memory_equal(checks[2].name, "etcd", 4);
	assert_true(checks[2].ok);

	km_kube_judge_apiserver("/readyz", 500, bad, sizeof bad - 1, checks, 3,
				&n, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason, "/readyz answered HTTP 500: failed etcd, "
				      "poststarthook/rbac/bootstrap-roles");
	assert_int_equal(n, 4);
	assert_false(checks[1].ok);

	/* No answer; an answer that is not the verbose format; no body. */
	km_kube_judge_apiserver("/livez", 0, NULL, 0, checks, 3, &n, &v);
	assert_int_equal(v.state, KM_STATE_UNHEALTHY);
	assert_string_equal(v.reason, "/livez did not answer");
	assert_int_equal(n, 0);
	km_kube_judge_apiserver("/livez", 403, "{\"kind\":\"Status\"}", 17,
				checks, 3, &n, &v);
	assert_string_equal(v.reason, "/livez answered HTTP 403");
	assert_int_equal(n, 0);
	/* Lines that only look like checks, a body without a newline at
	 * its end, and a body that is not NUL-terminated. */
	{
		static const char odd[] = "[+]\n[x]a ok\n[-] b\n[-]c fail";
		char copy[sizeof odd - 1];

		memcpy(copy, odd, sizeof copy);
		km_kube_judge_apiserver("/readyz", 503, copy, sizeof copy,
					checks, 3, &n, &v);
		assert_int_equal(n, 1);
		assert_string_equal(v.reason,
				    "/readyz answered HTTP 503: failed c");
	}
}

/* ---- what the API server sends is not trusted -------------------------------- */

static void test_hostile_strings(void **state)
{
	char big[4096];
	struct km_kube_node n = ready_node();
	struct km_kube_verdict v;
	static const char bad_utf8[] = "[-]et\xff\xfe"
				       "cd failed\n";
	struct km_kube_check checks[1];
	size_t k;

	(void)state;
	/* A message longer than a reason: cut, still one valid string; the
	 * cut falls inside a 3-byte character. */
	memset(big, 'a', sizeof big);
	for (size_t i = 0; i + 3 < sizeof big; i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3); /* € */
	big[sizeof big - 1] = '\0';
	n.ready = KM_COND_FALSE;
	n.ready_reason = "X";
	n.ready_message = big;
	for (int shift = 0; shift < 3; shift++) {
		n.ready_message = big + shift;
		km_kube_judge_node(&n, NOW, &defaults, &v);
		assert_int_equal(strlen(v.reason), KM_KUBE_REASON_MAX - 1);
		assert_valid_reason(&v);
	}
	km_kube_judge_apiserver("/readyz", 500, bad_utf8, sizeof bad_utf8 - 1,
				checks, 1, &k, &v);
	assert_valid_reason(&v);
	assert_string_equal(v.reason, "/readyz answered HTTP 500: failed "
				      "et??cd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_node_ready),
		cmocka_unit_test(test_node_not_ready_and_unreachable),
		cmocka_unit_test(test_node_pressure_is_degraded),
		cmocka_unit_test(test_node_silent_lease),
		cmocka_unit_test(test_pod_running),
		cmocka_unit_test(test_pod_stuck_containers),
		cmocka_unit_test(test_pod_phases),
		cmocka_unit_test(test_pod_events),
		cmocka_unit_test(test_service),
		cmocka_unit_test(test_workloads),
		cmocka_unit_test(test_apiserver),
		cmocka_unit_test(test_hostile_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
