/*
 * Reading the API server's JSON (service/kube/km_kube_decode.h): objects
 * as the real API server writes them (tests/unit/kube_fixtures, recorded
 * by tests/e2e/record_fixtures.sh), and what a hostile one could send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_kube_decode.h"
#include "km_kube_rules.h"

/* The trees of the parses below; freed after each use. */
static struct km_arena tree;
#include "km_model.h"
#include "km_pbcheck.h"
#include "km_test.h"

struct doc {
	km_json *root;
	struct km_arena a;
	struct km_kube_object o;
	struct km_error err;
	int rc;
};

/* Decodes one object of resource r from the JSON text. */
static void decode(struct doc *d, enum km_kube_resource r, const char *json)
{
	struct km_kube_event ev;

	memset(d, 0, sizeof *d);
	km_arena_init(&d->a, 1024);
	/* Through a watch event: the same path as the daemon's. */
	{
		char *line;
		size_t n = strlen(json) + 64;

		line = malloc(n);
		assert_non_null(line);
		snprintf(line, n, "{\"type\":\"ADDED\",\"object\":%s}", json);
		d->rc = km_kube_parse_event(line, strlen(line), &d->a, &d->root,
					    &ev, &d->err);
		free(line);
	}
	if (d->rc)
		return;
	assert_int_equal(ev.type, KM_EV_ADDED);
	d->rc = km_kube_decode_object(r, ev.object, &d->a, &d->o, &d->err);
}

static void done(struct doc *d)
{
	km_arena_free(&d->a);
}

#define META(extra)                                                         \
	"\"metadata\":{\"name\":\"n1\",\"uid\":\"u1\",\"resourceVersion\":" \
	"\"42\",\"creationTimestamp\":\"2026-11-30T08:00:00Z\"" extra "}"

static void test_node_conditions_by_type(void **state)
{
	struct doc d;

	(void)state;
	/* The classic mistake reads conditions[0]; Ready is last here. */
	decode(&d, KM_RES_NODE,
	       "{" META(
		       "") ",\"spec\":{\"unschedulable\":true},"
			   "\"status\":{\"conditions\":["
			   "{\"type\":\"MemoryPressure\",\"status\":\"True\"},"
			   "{\"type\":\"DiskPressure\",\"status\":\"False\"},"
			   "{\"type\":\"PIDPressure\",\"status\":\"Unknown\"},"
			   "{\"type\":\"Ready\",\"status\":\"False\",\"reason\":"
			   "\"KubeletNotReady\",\"message\":\"PLEG is not healthy\"}]}}");
	assert_int_equal(d.rc, 0);
	assert_string_equal(d.o.meta.name, "n1");
	assert_string_equal(d.o.meta.ns, "");
	assert_string_equal(d.o.meta.resource_version, "42");
	assert_int_equal(d.o.meta.created_us, 1796025600LL * 1000000);
	assert_true(d.o.u.node.unschedulable);
	assert_int_equal(d.o.u.node.ready, KM_COND_FALSE);
	assert_string_equal(d.o.u.node.ready_reason, "KubeletNotReady");
	assert_string_equal(d.o.u.node.ready_message, "PLEG is not healthy");
	assert_int_equal(d.o.u.node.memory_pressure, KM_COND_TRUE);
	assert_int_equal(d.o.u.node.disk_pressure, KM_COND_FALSE);
	assert_int_equal(d.o.u.node.pid_pressure, KM_COND_UNKNOWN);
	assert_int_equal(d.o.u.node.network_unavailable, KM_COND_ABSENT);
	done(&d);
	/* No conditions at all (a node just registered). */
	decode(&d, KM_RES_NODE, "{" META("") "}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.o.u.node.ready, KM_COND_ABSENT);
	assert_null(d.o.u.node.zone);
	done(&d);
}

/* A node's zone, for the storm guard: the GA label, else the deprecated
 * one (older clusters); the GA one wins when both are there. */
static void test_node_zone(void **state)
{
	struct doc d;

	(void)state;
	decode(&d, KM_RES_NODE,
	       "{" META(",\"labels\":{\"topology.kubernetes.io/zone\":"
			"\"eu-1a\",\"failure-domain.beta.kubernetes.io/zone\":"
			"\"old\"}") "}");
	assert_int_equal(d.rc, 0);
	assert_string_equal(d.o.u.node.zone, "eu-1a");
	/* Every label, for the policies' selectors. */
	assert_int_equal(d.o.meta.n_labels, 2);
	assert_string_equal(d.o.meta.labels[0].key,
			    "topology.kubernetes.io/zone");
	assert_string_equal(d.o.meta.labels[0].value, "eu-1a");
	assert_string_equal(d.o.meta.labels[1].value, "old");
	done(&d);
	/* A key given twice keeps its first value. */
	decode(&d, KM_RES_POD,
	       "{" META(",\"labels\":{\"app\":\"a\",\"app\":\"b\","
			"\"tier\":\"\"}") "}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.o.meta.n_labels, 2);
	assert_string_equal(d.o.meta.labels[0].value, "a");
	assert_string_equal(d.o.meta.labels[1].key, "tier");
	assert_string_equal(d.o.meta.labels[1].value, "");
	done(&d);
	decode(&d, KM_RES_NODE,
	       "{" META(",\"labels\":{\"failure-domain.beta.kubernetes.io/"
			"zone\":\"eu-1b\"}") "}");
	assert_int_equal(d.rc, 0);
	assert_string_equal(d.o.u.node.zone, "eu-1b");
	done(&d);
	decode(&d, KM_RES_NODE,
	       "{" META(",\"labels\":{\"kubernetes.io/os\":\"linux\"}") "}");
	assert_int_equal(d.rc, 0);
	assert_null(d.o.u.node.zone);
	done(&d);
}

/* A pod annotated kubemedic.io/probe: "true": its containers' probes as
 * the mirror runs them (km_kube_mirror.h); without the annotation none
 * are read. */
static void test_pod_probes(void **state)
{
	static const char spec[] =
		",\"spec\":{\"nodeName\":\"n1\",\"containers\":["
		"{\"name\":\"app\",\"ports\":[{\"name\":\"metrics\","
		"\"containerPort\":9090},{\"name\":\"http\",\"containerPort\":"
		"8080}],\"readinessProbe\":{\"httpGet\":{\"path\":\"ready\","
		"\"port\":\"http\",\"scheme\":\"HTTPS\",\"httpHeaders\":[{\"name\":"
		"\"X-A\",\"value\":\"1\"}]},\"periodSeconds\":5,\"timeoutSeconds\":"
		"2,\"successThreshold\":1,\"failureThreshold\":4,"
		"\"initialDelaySeconds\":3},\"livenessProbe\":{\"tcpSocket\":{"
		"\"port\":8080}}},"
		"{\"name\":\"grpc\",\"livenessProbe\":{\"grpc\":{\"port\":9000,"
		"\"service\":\"liveness\"}},\"readinessProbe\":{\"exec\":{"
		"\"command\":[\"true\"]}}},"
		"{\"name\":\"odd\",\"livenessProbe\":{\"httpGet\":{\"port\":"
		"\"nope\"}},\"readinessProbe\":{\"tcpSocket\":{\"host\":"
		"\"169.254.169.254\",\"port\":80}}}]},"
		"\"status\":{\"phase\":\"Running\",\"podIP\":\"10.1.2.3\"}}";
	char json[2048];
	const struct km_kube_probe *k;
	struct doc d;

	(void)state;
	snprintf(json, sizeof json,
		 "{" META(",\"namespace\":\"shop\",\"annotations\":{"
			  "\"kubemedic.io/probe\":\"true\"}") "%s",
		 spec);
	decode(&d, KM_RES_POD, json);
	assert_int_equal(d.rc, 0);
	assert_true(d.o.u.pod.mirror);
	assert_string_equal(d.o.u.pod.pod_ip, "10.1.2.3");
	assert_int_equal(d.o.u.pod.n_probes, 6);
	k = d.o.u.pod.probes;
	/* Per container, liveness then readiness. app: liveness over TCP,
	 * readiness by a named port, HTTPS, a header, its timing. */
	assert_string_equal(k[0].container, "app");
	assert_string_equal(k[0].which, "liveness");
	assert_int_equal(k[0].type, KM_PROBE_TCP);
	assert_int_equal(k[0].port, 8080);
	assert_string_equal(k[1].container, "app");
	assert_string_equal(k[1].which, "readiness");
	assert_int_equal(k[1].type, KM_PROBE_HTTP);
	assert_int_equal(k[1].port, 8080);
	assert_string_equal(k[1].path, "ready");
	assert_true(k[1].https);
	assert_int_equal(k[1].n_headers, 1);
	assert_string_equal(k[1].headers[0], "X-A");
	assert_string_equal(k[1].headers[1], "1");
	assert_int_equal(k[1].period_s, 5);
	assert_int_equal(k[1].timeout_s, 2);
	assert_int_equal(k[1].failure, 4);
	assert_int_equal(k[1].initial_delay_s, 3);
	assert_int_equal(k[2].type, KM_PROBE_GRPC);
	assert_int_equal(k[2].port, 9000);
	assert_string_equal(k[2].service, "liveness");
	/* Never mirrored, each saying why. */
	assert_int_equal(k[3].type, 0);
	assert_non_null(strstr(k[3].skip, "httpGet, tcpSocket and grpc"));
	assert_int_equal(k[4].type, 0);
	assert_non_null(strstr(k[4].skip, "named port"));
	assert_int_equal(k[5].type, 0);
	assert_non_null(strstr(k[5].skip, "host other than the pod's"));
	done(&d);

	/* Not annotated (or not "true"): nothing is read of the spec. */
	snprintf(json, sizeof json,
		 "{" META(",\"namespace\":\"shop\",\"annotations\":{"
			  "\"kubemedic.io/probe\":\"yes\"}") "%s",
		 spec);
	decode(&d, KM_RES_POD, json);
	assert_int_equal(d.rc, 0);
	assert_false(d.o.u.pod.mirror);
	assert_int_equal(d.o.u.pod.n_probes, 0);
	assert_null(d.o.u.pod.probes);
	done(&d);

	/* A probe of the wrong shape is an error naming it. */
	decode(&d, KM_RES_POD,
	       "{" META(
		       ",\"annotations\":{\"kubemedic.io/probe\":\"true\"}") ","
									     "\"spec\":{\"containers\":[{\"name\":\"a\",\"livenessProbe\":"
									     "{\"periodSeconds\":\"10\"}}]},\"status\":{}}");
	assert_int_equal(d.rc, KM_EINVAL);
	assert_non_null(strstr(d.err.msg, "spec.containers[0].livenessProbe"));
	done(&d);
}

static void test_pod(void **state)
{
	struct doc d;

	(void)state;
	decode(&d, KM_RES_POD,
	       "{" META(
		       ",\"namespace\":\"shop\",\"ownerReferences\":["
		       "{\"kind\":\"Other\",\"name\":\"x\",\"uid\":\"o0\"},"
		       "{\"kind\":\"ReplicaSet\",\"name\":\"cart-7d9f\","
		       "\"uid\":\"o1\",\"controller\":true}]") ","
							       "\"spec\":{\"nodeName\":\"n1\"},"
							       "\"status\":{\"phase\":\"Running\",\"startTime\":"
							       "\"2026-11-30T08:00:01Z\",\"conditions\":[{\"type\":"
							       "\"PodScheduled\",\"status\":\"True\"}],"
							       "\"initContainerStatuses\":[{\"name\":\"init\",\"ready\":true,"
							       "\"restartCount\":0,\"state\":{\"terminated\":{\"exitCode\":0,"
							       "\"reason\":\"Completed\"}}}],"
							       "\"containerStatuses\":[{\"name\":\"cart\",\"ready\":false,"
							       "\"restartCount\":7,\"state\":{\"waiting\":{\"reason\":"
							       "\"CrashLoopBackOff\",\"message\":\"back-off 5m0s\"}},"
							       "\"lastState\":{\"terminated\":{\"exitCode\":137,\"reason\":"
							       "\"OOMKilled\"}}},{\"name\":\"envoy\",\"ready\":true,"
							       "\"restartCount\":0}]}}");
	assert_int_equal(d.rc, 0);
	assert_string_equal(d.o.meta.ns, "shop");
	assert_string_equal(d.o.meta.owner_kind, "ReplicaSet");
	assert_string_equal(d.o.meta.owner_name, "cart-7d9f");
	assert_string_equal(d.o.meta.owner_uid, "o1");
	assert_string_equal(d.o.u.pod.node_name, "n1");
	assert_int_equal(d.o.u.pod.phase, KM_POD_RUNNING);
	assert_int_equal(d.o.u.pod.started_us, 1796025601LL * 1000000);
	assert_int_equal(d.o.u.pod.scheduled, KM_COND_TRUE);
	assert_int_equal(d.o.u.pod.n_init_containers, 1);
	assert_int_equal(d.o.u.pod.n_containers, 2);
	assert_string_equal(d.o.u.pod.containers[0].name, "cart");
	assert_false(d.o.u.pod.containers[0].ready);
	assert_int_equal(d.o.u.pod.containers[0].restart_count, 7);
	assert_string_equal(d.o.u.pod.containers[0].waiting_reason,
			    "CrashLoopBackOff");
	assert_string_equal(d.o.u.pod.containers[0].last_terminated_reason,
			    "OOMKilled");
	assert_int_equal(d.o.u.pod.containers[0].last_exit_code, 137);
	assert_true(d.o.u.pod.containers[1].ready);
	assert_null(d.o.u.pod.containers[1].waiting_reason);
	done(&d);

	/* A phase this release does not know is no good news. */
	decode(&d, KM_RES_POD,
	       "{" META("") ",\"status\":{\"phase\":\"Hibernating\"}}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.o.u.pod.phase, KM_POD_UNKNOWN);
	done(&d);
}

static void test_services_slices_workloads_leases(void **state)
{
	struct doc d;

	(void)state;
	decode(&d, KM_RES_SERVICE,
	       "{" META("") ",\"spec\":{\"selector\":{\"app\":\"cart\"}}}");
	assert_int_equal(d.rc, 0);
	assert_true(d.o.u.service.has_selector);
	done(&d);
	decode(&d, KM_RES_SERVICE, "{" META("") ",\"spec\":{\"selector\":{}}}");
	assert_false(d.o.u.service.has_selector);
	done(&d);
	decode(&d, KM_RES_SERVICE,
	       "{" META("") ",\"spec\":{\"type\":\"ExternalName\"}}");
	assert_false(d.o.u.service.has_selector);
	done(&d);

	decode(&d, KM_RES_ENDPOINTSLICE,
	       "{" META(
		       ",\"labels\":{\"kubernetes.io/service-name\":"
		       "\"cart\"}") ",\"endpoints\":["
				    "{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":true}},"
				    "{\"addresses\":[\"10.0.0.2\"],\"conditions\":{\"ready\":false}},"
				    "{\"addresses\":[\"10.0.0.3\"],\"conditions\":{}}]}");
	assert_int_equal(d.rc, 0);
	assert_string_equal(d.o.u.slice.service, "cart");
	assert_int_equal(d.o.u.slice.endpoints, 3);
	assert_int_equal(d.o.u.slice.ready, 2); /* unset reads as ready */
	done(&d);

	decode(&d, KM_RES_DEPLOYMENT,
	       "{" META(
		       "") ",\"spec\":{},\"status\":{\"readyReplicas\":0,"
			   "\"conditions\":[{\"type\":\"Available\",\"status\":\"False\"},"
			   "{\"type\":\"Progressing\",\"status\":\"False\",\"reason\":"
			   "\"ProgressDeadlineExceeded\",\"message\":\"timed out\"}]}}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.o.u.workload.desired, 1); /* the default */
	assert_int_equal(d.o.u.workload.ready, 0);
	assert_int_equal(d.o.u.workload.progressing, KM_COND_FALSE);
	assert_string_equal(d.o.u.workload.progressing_reason,
			    "ProgressDeadlineExceeded");
	done(&d);
	decode(&d, KM_RES_DAEMONSET,
	       "{" META("") ",\"status\":{\"desiredNumberScheduled\":5,"
			    "\"numberReady\":4}}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.o.u.workload.desired, 5);
	assert_int_equal(d.o.u.workload.ready, 4);
	done(&d);
	decode(&d, KM_RES_STATEFULSET,
	       "{" META("") ",\"spec\":{\"replicas\":0},\"status\":{}}");
	assert_int_equal(d.o.u.workload.desired, 0);
	done(&d);

	decode(&d, KM_RES_LEASE,
	       "{" META(
		       ",\"namespace\":\"kube-node-lease\"") ",\"spec\":{"
							     "\"holderIdentity\":\"n1\",\"leaseDurationSeconds\":40,"
							     "\"renewTime\":\"2026-11-30T08:00:10.123456Z\"}}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.o.u.lease.renew_us, 1796025610123456LL);
	assert_int_equal(d.o.u.lease.duration_s, 40);
	done(&d);
}

static void test_lists_events_statuses(void **state)
{
	static const char page[] =
		"{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",\"metadata\":{"
		"\"resourceVersion\":\"1234\",\"continue\":\"eyJ2IjoibWV0YS\"},"
		"\"items\":[{" META("") "},{\"metadata\":{\"name\":\"n2\","
					"\"uid\":\"u2\"}}]}\n";
	struct km_kube_list l;
	struct km_kube_event ev;
	struct km_kube_status st;
	struct km_error err = {0};
	struct km_arena a;
	km_json *root;
	const km_json *it;
	size_t n = 0;

	(void)state;
	assert_int_equal(km_kube_parse_list(page, sizeof page - 1, &tree, &root,
					    &l, &err),
			 0);
	assert_int_equal(l.n_items, 2);
	assert_string_equal(l.resource_version, "1234");
	assert_string_equal(l.continue_token, "eyJ2IjoibWV0YS");
	km_arena_init(&a, 1024);
	for (it = km_kube_first(&l); it; it = km_kube_next(it)) {
		struct km_kube_object o;

		assert_int_equal(km_kube_decode_object(KM_RES_NODE, it, &a, &o,
						       &err),
				 0);
		n++;
	}
	assert_int_equal(n, 2);
	km_arena_free(&tree);

	/* A bookmark; a 410 Gone as the watch sends it. */
	{
		static const char bm[] =
			"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\","
			"\"metadata\":{\"resourceVersion\":\"777\"}}}";
		static const char gone[] =
			"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
			"\"status\":\"Failure\",\"message\":\"too old resource "
			"version: 5 (900)\",\"reason\":\"Expired\",\"code\":"
			"410}}";

		assert_int_equal(km_kube_parse_event(bm, sizeof bm - 1, &tree,
						     &root, &ev, &err),
				 0);
		assert_int_equal(ev.type, KM_EV_BOOKMARK);
		assert_string_equal(ev.resource_version, "777");
		assert_false(ev.initial_events_end);
		km_arena_free(&tree);
		/* The end of a list streamed as initial events, as
		 * kube-apiserver 1.37 writes it; "false", or the annotation
		 * on another event, is no end. */
		{
			static const char end[] =
				"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":"
				"\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{"
				"\"resourceVersion\":\"161329\",\"annotations\":{"
				"\"k8s.io/initial-events-end\":\"true\"}}}}";
			static const char no[] =
				"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{"
				"\"resourceVersion\":\"9\",\"annotations\":{"
				"\"k8s.io/initial-events-end\":\"false\"}}}}";
			static const char added[] =
				"{\"type\":\"ADDED\",\"object\":{\"metadata\":{"
				"\"resourceVersion\":\"9\",\"annotations\":{"
				"\"k8s.io/initial-events-end\":\"true\"}}}}";

			assert_int_equal(
				km_kube_parse_event(end, sizeof end - 1, &tree,
						    &root, &ev, &err),
				0);
			assert_int_equal(ev.type, KM_EV_BOOKMARK);
			assert_true(ev.initial_events_end);
			assert_string_equal(ev.resource_version, "161329");
			assert_int_equal(km_kube_parse_event(no, sizeof no - 1,
							     &tree, &root, &ev,
							     &err),
					 0);
			assert_false(ev.initial_events_end);
			assert_int_equal(
				km_kube_parse_event(added, sizeof added - 1,
						    &tree, &root, &ev, &err),
				0);
			assert_false(ev.initial_events_end);
			km_arena_free(&tree);
		}
		assert_int_equal(km_kube_parse_event(gone, sizeof gone - 1,
						     &tree, &root, &ev, &err),
				 0);
		assert_int_equal(ev.type, KM_EV_ERROR);
		assert_int_equal(ev.status.code, 410);
		assert_string_equal(ev.status.reason, "Expired");
		km_arena_free(&tree);
	}
	/* An error body; and one that is not a Status. */
	{
		static const char forbidden[] =
			"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
			"\"Failure\",\"message\":\"pods is forbidden: User "
			"\\\"nobody\\\" cannot list resource \\\"pods\\\"\","
			"\"reason\":\"Forbidden\",\"code\":403}";

		km_kube_parse_status(forbidden, sizeof forbidden - 1, &a, &st);
		assert_int_equal(st.code, 403);
		assert_string_equal(st.reason, "Forbidden");
		assert_non_null(strstr(st.message, "cannot list resource"));
		km_kube_parse_status("<html>502</html>", 16, &a, &st);
		assert_int_equal(st.code, 0);
		assert_string_equal(st.message, "");
		assert_string_equal(st.cause_type, "");
		assert_int_equal(st.retry_after_s, 0);
	}
	/* details: retryAfterSeconds (an int32 of at least 1) and the first
	 * cause (Go's StatusCause.Type is "reason" in JSON). */
	{
		static const char *const retry[] = {
			"7", "-3", "0", "2147483648", "\"7\"", "1.5e3"};
		static const int64_t want[] = {7, 0, 0, 0, 0, 1500};
		char body[300];

		for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
			snprintf(body, sizeof body,
				 "{\"kind\":\"Status\",\"code\":429,"
				 "\"details\":{\"retryAfterSeconds\":%s,"
				 "\"causes\":[{\"reason\":\"A\xff\","
				 "\"message\":\"m1\"},{\"reason\":\"B\"}]}}",
				 retry[i]);
			km_kube_parse_status(body, strlen(body), &a, &st);
			assert_int_equal(st.code, 429);
			assert_int_equal(st.retry_after_s, want[i]);
			assert_string_equal(st.cause_type, "A?");
			assert_string_equal(st.cause_message, "m1");
		}
	}
	/* Recorded: the 429 of an eviction a PodDisruptionBudget refused
	 * (tests/e2e/record_action_fixtures.sh) and a 422's field cause. */
	{
		size_t len;
		char *body = km_test_fixture_or_fail(
			"actions/eviction-429-pdb.json", &len);

		km_kube_parse_status(body, len, &a, &st);
		assert_int_equal(st.code, 429);
		assert_string_equal(st.reason, "TooManyRequests");
		assert_string_equal(st.cause_type, "DisruptionBudget");
		assert_string_equal(st.cause_message,
				    "The disruption budget guarded needs 2 "
				    "healthy pods and has 2 currently");
		assert_int_equal(st.retry_after_s, 0);
		free(body);
		body = km_test_fixture_or_fail("actions/patch-422.json", &len);
		km_kube_parse_status(body, len, &a, &st);
		assert_int_equal(st.code, 422);
		assert_string_equal(st.cause_type, "FieldValueInvalid");
		free(body);
	}
	km_arena_free(&a);
}

/* ---- what a hostile API server could send ------------------------------------------ */

static void expect_error(enum km_kube_resource r, const char *json,
			 const char *msg)
{
	struct doc d;

	decode(&d, r, json);
	if (d.rc != KM_EINVAL || !strstr(d.err.msg, msg))
		fail_msg("%s\n -> rc %d \"%s\", wanted \"%s\"", json, d.rc,
			 d.err.msg, msg);
	done(&d);
}

static void test_hostile_objects(void **state)
{
	struct doc d;

	(void)state;
	expect_error(KM_RES_NODE, "{\"metadata\":{\"uid\":\"u\"}}",
		     "Node: metadata.name: missing");
	expect_error(KM_RES_NODE, "{\"metadata\":{\"name\":\"n\"}}",
		     "Node: metadata.uid: missing");
	expect_error(KM_RES_NODE, "{\"metadata\":{\"name\":7,\"uid\":\"u\"}}",
		     "Node: metadata.name: expected a string");
	expect_error(KM_RES_POD,
		     "{" META("") ",\"status\":{\"containerStatuses\":[{"
				  "\"name\":\"c\",\"restartCount\":-1}]}}",
		     "Pod: status.containerStatuses[0]: expected an integer "
		     "from 0 to 2147483647");
	expect_error(KM_RES_POD,
		     "{" META("") ",\"status\":{\"containerStatuses\":[{"
				  "\"name\":\"c\",\"restartCount\":1e300}]}}",
		     "expected an integer");
	expect_error(KM_RES_POD,
		     "{" META("") ",\"status\":{\"containerStatuses\":[{"
				  "\"name\":\"c\",\"restartCount\":1.5}]}}",
		     "expected an integer");
	expect_error(KM_RES_POD,
		     "{" META("") ",\"status\":{\"containerStatuses\":7}}",
		     "Pod: containerStatuses: expected a list");
	expect_error(KM_RES_POD,
		     "{" META("") ",\"status\":{\"conditions\":[5]}}",
		     "Pod: status.conditions[0]: expected an object");
	expect_error(KM_RES_NODE,
		     "{\"metadata\":{\"name\":\"n\",\"uid\":\"u\","
		     "\"creationTimestamp\":\"yesterday\"}}",
		     "metadata.creationTimestamp: expected a time");
	expect_error(KM_RES_NODE,
		     "{" META("") ",\"spec\":{\"unschedulable\":\"yes\"}}",
		     "spec.unschedulable: expected true or false");
	expect_error(KM_RES_NODE,
		     "{" META(",\"labels\":{\"topology.kubernetes.io/zone\":"
			      "7}") "}",
		     "metadata.labels: expected strings");
	expect_error(KM_RES_POD, "{" META(",\"labels\":[\"a\"]") "}",
		     "metadata.labels: expected an object");
	expect_error(KM_RES_LEASE,
		     "{" META("") ",\"spec\":{\"leaseDurationSeconds\":"
				  "4294967296}}",
		     "spec.leaseDurationSeconds: expected an integer");

	/* An event whose object is no object never reaches the decoder;
	 * the decoder refuses one too. */
	expect_error(KM_RES_NODE, "[1,2]", "watch event: expected");
	{
		struct km_kube_list l;
		struct km_error err = {0};
		km_json *root;

		assert_int_equal(km_kube_parse_list("{\"items\":[[1]]}", 15,
						    &tree, &root, &l, &err),
				 0);
		d.rc = km_kube_decode_object(KM_RES_NODE, km_kube_first(&l),
					     NULL, &d.o, &err);
		assert_int_equal(d.rc, KM_EINVAL);
		assert_string_equal(err.msg,
				    "Node: (object): expected an object");
		km_arena_free(&tree);
	}

	/* Not UTF-8: kept, with '?' for each bad byte. */
	decode(&d, KM_RES_NODE,
	       "{\"metadata\":{\"name\":\"n\xff\xfe\",\"uid\":\"u\"},"
	       "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":"
	       "\"False\",\"message\":\"caf\xc3\xa9 \xc3\"}]}}");
	assert_int_equal(d.rc, 0);
	assert_string_equal(d.o.meta.name, "n??");
	assert_string_equal(d.o.u.node.ready_message, "caf\xc3\xa9 ?");
	done(&d);
	/* Null is "not given". */
	decode(&d, KM_RES_NODE,
	       "{" META("") ",\"spec\":null,\"status\":{\"conditions\":null}}");
	assert_int_equal(d.rc, 0);
	done(&d);
	/* A condition given twice: the last one, as Go reads it. */
	decode(&d, KM_RES_NODE,
	       "{" META(
		       "") ",\"status\":{\"conditions\":[{\"type\":\"Ready\","
			   "\"status\":\"False\"},{\"type\":\"Ready\",\"status\":"
			   "\"True\"}]}}");
	assert_int_equal(d.o.u.node.ready, KM_COND_TRUE);
	done(&d);
	/* More containers than kept: the first 64. */
	{
		size_t cap = 200 * 40 + 256, o = 0;
		char *big = malloc(cap);

		assert_non_null(big);
		o += (size_t)snprintf(big + o, cap - o,
				      "{" META("") ",\"status\":{"
						   "\"containerStatuses\":[");
		for (int i = 0; i < 200; i++)
			o += (size_t)snprintf(big + o, cap - o,
					      "%s{\"name\":\"c%d\"}",
					      i ? "," : "", i);
		snprintf(big + o, cap - o, "]}}");
		decode(&d, KM_RES_POD, big);
		free(big);
		assert_int_equal(d.rc, 0);
		assert_int_equal(d.o.u.pod.n_containers,
				 KM_KUBE_CONTAINERS_MAX);
		assert_string_equal(d.o.u.pod.containers[63].name, "c63");
		done(&d);
	}
}

static void test_hostile_documents(void **state)
{
	struct km_kube_list l;
	struct km_kube_event ev;
	struct km_error err = {0};
	km_json *root;
	char *deep;

	(void)state;
	assert_int_equal(km_kube_parse_list("{\"items\":[]} x", 14, &tree,
					    &root, &l, &err),
			 KM_EINVAL);
	assert_string_equal(err.msg,
			    "list: more after the JSON value (at byte 13)");
	assert_null(root);
	assert_int_equal(km_kube_parse_list("{\"items\":[", 10, &tree, &root,
					    &l, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "list: not JSON"));
	assert_int_equal(km_kube_parse_list("{\"items\":{}}", 12, &tree, &root,
					    &l, &err),
			 KM_EINVAL);
	assert_string_equal(err.msg, "List: items: expected a list");
	assert_int_equal(km_kube_parse_list("{\"metadata\":{\"continue\":"
					    "\"a\\nb\"},\"items\":[]}",
					    43, &tree, &root, &l, &err),
			 KM_EINVAL);
	assert_string_equal(err.msg,
			    "List: metadata.continue: not printable ASCII");
	/* Watch lines that are not events. */
	assert_int_equal(km_kube_parse_event("{\"type\":\"ADDED\"}", 16, &tree,
					     &root, &ev, &err),
			 KM_EINVAL);
	assert_int_equal(km_kube_parse_event("{\"type\":\"EXPLODED\","
					     "\"object\":{}}",
					     31, &tree, &root, &ev, &err),
			 KM_EINVAL);
	assert_string_equal(err.msg, "watch event: unknown type \"EXPLODED\"");
	/* Nesting deeper than cJSON goes: an error, not a crash. */
	deep = malloc(200001);
	assert_non_null(deep);
	memset(deep, '[', 100000);
	memset(deep + 100000, ']', 100000);
	deep[200000] = '\0';
	assert_int_equal(km_kube_parse_list(deep, 200000, &tree, &root, &l,
					    &err),
			 KM_EINVAL);
	free(deep);
	/* Larger than read at all. */
	assert_int_equal(km_kube_parse_list("{}", KM_KUBE_BODY_MAX + 1u, &tree,
					    &root, &l, &err),
			 KM_EINVAL);
	km_arena_free(&tree);
}

static void test_times(void **state)
{
	(void)state;
	assert_int_equal(km_kube_parse_time("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(km_kube_parse_time("2026-11-30T08:00:00Z"),
			 1796025600LL * 1000000);
	assert_int_equal(km_kube_parse_time("2026-11-30T09:00:00+01:00"),
			 1796025600LL * 1000000);
	assert_int_equal(km_kube_parse_time("2026-11-30T08:00:00.5Z"),
			 1796025600LL * 1000000 + 500000);
	assert_int_equal(km_kube_parse_time("2026-11-30T08:00:00.123456789Z"),
			 1796025600LL * 1000000 + 123456);
	assert_int_equal(km_kube_parse_time("2024-02-29T00:00:00Z"),
			 1709164800LL * 1000000);
	static const char *const bad[] = {
		"",
		"2026-11-30",
		"2026-11-30 08:00:00Z",
		"2026-13-01T00:00:00Z",
		"2026-02-29T00:00:00Z",
		"2026-11-31T00:00:00Z",
		"2026-11-30T24:00:00Z",
		"2026-11-30T08:00:00",
		"2026-11-30T08:00:00.Z",
		"2026-11-30T08:00:00Zjunk",
		"1969-12-31T23:59:59Z",
		"2026-11-30T08:00:00+1:00",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (km_kube_parse_time(bad[i]) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
}

/* ---- what the real API server sent (tests/unit/kube_fixtures) ------------------------ */

/* A GET's answer from the fixtures, decoded and judged at now_us (0: the
 * object's creation plus an hour, past every startup grace). */
static struct km_kube_verdict judged(const char *name, enum km_kube_resource r,
				     struct km_kube_object *o, struct doc *d,
				     int64_t now_us)
{
	struct km_kube_verdict v = {0};
	size_t len;
	char *text = km_test_fixture_or_fail(name, &len);

	memset(d, 0, sizeof *d);
	km_arena_init(&d->a, 4096);
	/* A GET's body is one object: read through the list parser's
	 * JSON check by wrapping it as a list of one. */
	{
		char *list = malloc(len + 64);
		struct km_kube_list l;

		assert_non_null(list);
		snprintf(list, len + 64, "{\"items\":[%s]}", text);
		d->rc = km_kube_parse_list(list, strlen(list), &d->a, &d->root,
					   &l, &d->err);
		free(list);
		if (d->rc)
			fail_msg("%s: %s", name, d->err.msg);
		d->rc = km_kube_decode_object(r, km_kube_first(&l), &d->a, o,
					      &d->err);
		if (d->rc)
			fail_msg("%s: %s", name, d->err.msg);
	}
	free(text);
	if (!now_us)
		now_us = o->meta.created_us + 3600LL * 1000000;
	switch (r) {
	case KM_RES_NODE:
		km_kube_judge_node(&o->u.node, now_us, NULL, &v);
		break;
	case KM_RES_POD: km_kube_judge_pod(&o->u.pod, now_us, NULL, &v); break;
	case KM_RES_SERVICE: km_kube_judge_service(&o->u.service, &v); break;
	case KM_RES_DEPLOYMENT:
	case KM_RES_STATEFULSET:
	case KM_RES_DAEMONSET:
		km_kube_judge_workload(&o->u.workload, &v);
		break;
	default: break;
	}
	return v;
}

static void expect(const char *name, enum km_kube_resource r, int state,
		   const char *reason_has)
{
	struct km_kube_object o;
	struct doc d;
	struct km_kube_verdict v = judged(name, r, &o, &d, 0);

	if (v.state != state || (reason_has && !strstr(v.reason, reason_has)))
		fail_msg("%s: state %d \"%s\", wanted %d with \"%s\"", name,
			 v.state, v.reason, state,
			 reason_has ? reason_has : "");
	assert_non_null(o.meta.uid);
	assert_true(o.meta.created_us > 0);
	done(&d);
}

static void test_fixtures_judged(void **state)
{
	struct km_kube_object o;
	struct doc d;

	(void)state;
	expect("node-ready.json", KM_RES_NODE, KM_STATE_HEALTHY,
	       "node is ready");
	expect("node-notready.json", KM_RES_NODE, KM_STATE_UNHEALTHY,
	       "KubeletNotReady");
	expect("node-unknown.json", KM_RES_NODE, KM_STATE_UNHEALTHY,
	       "unreachable: Ready is Unknown (NodeStatusUnknown)");
	expect("node-pressure.json", KM_RES_NODE, KM_STATE_DEGRADED,
	       "MemoryPressure, DiskPressure");
	/* The seed's mistake: conditions[0] is NetworkUnavailable, Ready
	 * (False) is last. */
	expect("node-ready-last.json", KM_RES_NODE, KM_STATE_UNHEALTHY,
	       "node is not ready");
	judged("node-cordoned.json", KM_RES_NODE, &o, &d, 0);
	assert_true(o.u.node.unschedulable);
	done(&d);

	expect("pod-running.json", KM_RES_POD, KM_STATE_HEALTHY,
	       "containers ready");
	expect("pod-running-notready.json", KM_RES_POD, KM_STATE_UNHEALTHY,
	       "1 of 2 containers not ready: sidecar");
	expect("pod-crashloop-oomkilled.json", KM_RES_POD, KM_STATE_UNHEALTHY,
	       "CrashLoopBackOff");
	expect("pod-crashloop-oomkilled.json", KM_RES_POD, KM_STATE_UNHEALTHY,
	       "last exit: OOMKilled");
	expect("pod-crashloop-kubesim.json", KM_RES_POD, KM_STATE_UNHEALTHY,
	       "CrashLoopBackOff");
	expect("pod-imagepullbackoff.json", KM_RES_POD, KM_STATE_UNHEALTHY,
	       "ImagePullBackOff");
	expect("pod-pending-unschedulable.json", KM_RES_POD, KM_STATE_UNHEALTHY,
	       "not scheduled");
	expect("pod-evicted.json", KM_RES_POD, KM_STATE_UNHEALTHY,
	       "pod failed: Evicted");
	expect("pod-succeeded-job.json", KM_RES_POD, KM_STATE_HEALTHY,
	       "its Job's work is done");
	expect("pod-init-waiting.json", KM_RES_POD, KM_STATE_UNHEALTHY,
	       "init container init-schema is in CrashLoopBackOff");
	judged("pod-deployment.json", KM_RES_POD, &o, &d, 0);
	assert_string_equal(o.meta.owner_kind, "ReplicaSet");
	assert_non_null(o.u.pod.node_name);
	done(&d);
	/* Within its grace, a pod not ready yet is no verdict. */
	{
		struct km_kube_verdict v =
			judged("pod-running-notready.json", KM_RES_POD, &o, &d,
			       1); /* "now" before it started */
		assert_int_equal(v.state, KM_KUBE_NO_VERDICT);
		done(&d);
	}

	expect("service.json", KM_RES_SERVICE, KM_STATE_UNHEALTHY,
	       "no endpoints");
	expect("service-noselector.json", KM_RES_SERVICE, KM_KUBE_NO_VERDICT,
	       NULL);
	judged("endpointslice.json", KM_RES_ENDPOINTSLICE, &o, &d, 0);
	assert_int_equal(o.u.slice.endpoints, 3);
	assert_int_equal(o.u.slice.ready, 2);
	assert_non_null(o.u.slice.service);
	done(&d);
	expect("deployment.json", KM_RES_DEPLOYMENT, KM_STATE_HEALTHY,
	       "2 of 2 replicas ready");
	expect("deployment-progress-deadline.json", KM_RES_DEPLOYMENT,
	       KM_STATE_UNHEALTHY, "ProgressDeadlineExceeded");
	expect("statefulset.json", KM_RES_STATEFULSET, KM_STATE_HEALTHY,
	       "2 of 2 replicas ready");
	expect("daemonset.json", KM_RES_DAEMONSET, KM_STATE_DEGRADED,
	       "3 of 4 pods ready");
	judged("replicaset.json", KM_RES_REPLICASET, &o, &d, 0);
	assert_string_equal(o.meta.owner_kind, "Deployment");
	done(&d);
	judged("lease.json", KM_RES_LEASE, &o, &d, 0);
	assert_true(o.u.lease.renew_us > 0);
	assert_true(o.u.lease.duration_s > 0);
	done(&d);
}

static void test_fixtures_lists_watches_errors(void **state)
{
	static const char *const pages[] = {"nodes-list-page1.json",
					    "nodes-list-page2.json",
					    "nodes-list-page3.json"};
	struct km_kube_list l;
	struct km_kube_event ev;
	struct km_kube_status st;
	struct km_error err = {0};
	struct km_arena a;
	km_json *root;
	size_t len, items = 0;
	char *text;

	(void)state;
	km_arena_init(&a, 4096);
	for (size_t i = 0; i < 3; i++) {
		text = km_test_fixture_or_fail(pages[i], &len);
		assert_int_equal(km_kube_parse_list(text, len, &tree, &root, &l,
						    &err),
				 0);
		assert_true(l.resource_version[0] != '\0');
		/* Pages 1 and 2 go on; the last does not. */
		assert_int_equal(l.continue_token[0] != '\0', i < 2);
		for (const km_json *it = km_kube_first(&l); it;
		     it = km_kube_next(it)) {
			struct km_kube_object o;

			assert_int_equal(km_kube_decode_object(KM_RES_NODE, it,
							       &a, &o, &err),
					 0);
			items++;
		}
		km_arena_free(&tree);
		free(text);
	}
	assert_int_equal(items, 7); /* 5 kubesim nodes and 2 of the script */

	/* A pod's watch: added, modified, deleted, then a bookmark. */
	{
		int seen[KM_EV_ERROR + 1] = {0};
		char *line, *next;

		text = km_test_fixture_or_fail("watch-pods.jsonl", &len);
		for (line = text; line && *line; line = next) {
			struct km_kube_object o;

			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			assert_int_equal(km_kube_parse_event(line, strlen(line),
							     &tree, &root, &ev,
							     &err),
					 0);
			seen[ev.type]++;
			if (ev.type != KM_EV_BOOKMARK)
				assert_int_equal(km_kube_decode_object(
							 KM_RES_POD, ev.object,
							 &a, &o, &err),
						 0);
			assert_true(ev.resource_version[0] != '\0');
			km_arena_free(&tree);
		}
		free(text);
		assert_int_equal(seen[KM_EV_ADDED], 1);
		assert_true(seen[KM_EV_MODIFIED] >= 1);
		assert_int_equal(seen[KM_EV_DELETED], 1);
		assert_int_equal(seen[KM_EV_BOOKMARK], 1);
	}
	text = km_test_fixture_or_fail("watch-gone.jsonl", &len);
	assert_int_equal(
		km_kube_parse_event(text, len, &tree, &root, &ev, &err), 0);
	assert_int_equal(ev.type, KM_EV_ERROR);
	assert_int_equal(ev.status.code, 410);
	assert_string_equal(ev.status.reason, "Expired");
	km_arena_free(&tree);
	free(text);

	text = km_test_fixture_or_fail("status-403.json", &len);
	km_kube_parse_status(text, len, &a, &st);
	assert_int_equal(st.code, 403);
	assert_string_equal(st.reason, "Forbidden");
	free(text);
	text = km_test_fixture_or_fail("status-410.json", &len);
	km_kube_parse_status(text, len, &a, &st);
	assert_int_equal(st.code, 410);
	free(text);

	/* The API server's own health, as it answers. */
	{
		struct km_kube_check checks[64];
		struct km_kube_verdict v;
		size_t n;

		text = km_test_fixture_or_fail("readyz.txt", &len);
		km_kube_judge_apiserver("/readyz", 200, text, len, checks, 64,
					&n, &v);
		assert_int_equal(v.state, KM_STATE_HEALTHY);
		assert_true(n > 10);
		for (size_t i = 0; i < n && i < 64; i++)
			assert_true(checks[i].ok);
		free(text);
		text = km_test_fixture_or_fail("livez.txt", &len);
		km_kube_judge_apiserver("/livez", 200, text, len, checks, 64,
					&n, &v);
		assert_true(n > 10);
		free(text);
	}
	km_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_node_conditions_by_type),
		cmocka_unit_test(test_node_zone),
		cmocka_unit_test(test_pod),
		cmocka_unit_test(test_pod_probes),
		cmocka_unit_test(test_services_slices_workloads_leases),
		cmocka_unit_test(test_lists_events_statuses),
		cmocka_unit_test(test_hostile_objects),
		cmocka_unit_test(test_hostile_documents),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_fixtures_judged),
		cmocka_unit_test(test_fixtures_lists_watches_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
