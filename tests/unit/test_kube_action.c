/*
 * km_kube_action: each action's exact request (method, path, type, and
 * its body parsed back), hostile names, namespaces and uids refused with
 * the field named, and every answer a real API server gave to these
 * requests (tests/unit/kube_fixtures/actions, recorded by
 * tests/e2e/record_action_fixtures.sh) classified.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "km_kube_action.h"
#include "km_kube_decode.h"
#include "km_test.h"

#define UID "0333fc72-85df-41ef-b30c-6d6698a5c315"
#define OTHER_UID "5fff42a8-828e-4df4-8fa8-22504f4cbfa4"

static const cJSON *at(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!v)
		fail_msg("no \"%s\"", name);
	return v;
}

/* Builds a, checks method, path and type; the body parsed (the caller
 * deletes it). */
static cJSON *built(const struct km_kube_action *a, const char *method,
		    const char *path, const char *type)
{
	struct km_kube_action_request r;
	struct km_error err = {0};
	cJSON *doc;

	assert_int_equal(km_kube_action_build(a, &r, &err), 0);
	assert_string_equal(r.method, method);
	assert_string_equal(r.path, path);
	assert_string_equal(r.content_type, type);
	assert_int_equal(r.len, strlen(r.body));
	doc = cJSON_ParseWithLength(r.body, r.len);
	assert_non_null(doc);
	km_kube_action_request_free(&r);
	assert_null(r.path);
	return doc;
}

static void test_restart_pod(void **state)
{
	struct km_kube_action a = {.kind = KM_KUBE_ACT_RESTART_POD,
				   .ns = "shop",
				   .name = "web-0",
				   .uid = UID,
				   .grace_period_s = -1};
	cJSON *doc;

	(void)state;
	doc = built(&a, "DELETE", "/api/v1/namespaces/shop/pods/web-0",
		    "application/json");
	assert_string_equal(at(doc, "apiVersion")->valuestring, "v1");
	assert_string_equal(at(doc, "kind")->valuestring, "DeleteOptions");
	assert_string_equal(at(at(doc, "preconditions"), "uid")->valuestring,
			    UID);
	assert_null(cJSON_GetObjectItem(doc, "gracePeriodSeconds"));
	assert_int_equal(cJSON_GetArraySize(doc), 3);
	cJSON_Delete(doc);

	a.grace_period_s = 0; /* 0 is sent: "now" */
	doc = built(&a, "DELETE", "/api/v1/namespaces/shop/pods/web-0",
		    "application/json");
	assert_true(cJSON_IsNumber(at(doc, "gracePeriodSeconds")));
	assert_int_equal(at(doc, "gracePeriodSeconds")->valueint, 0);
	cJSON_Delete(doc);
	a.grace_period_s = 30;
	doc = built(&a, "DELETE", "/api/v1/namespaces/shop/pods/web-0",
		    "application/json");
	assert_int_equal(at(doc, "gracePeriodSeconds")->valueint, 30);
	cJSON_Delete(doc);
}

static void test_evict(void **state)
{
	struct km_kube_action a = {.kind = KM_KUBE_ACT_EVICT,
				   .ns = "shop",
				   .name = "db-1.replica",
				   .uid = UID,
				   .grace_period_s = 10};
	const cJSON *d;
	cJSON *doc;

	(void)state;
	doc = built(&a, "POST",
		    "/api/v1/namespaces/shop/pods/db-1.replica/eviction",
		    "application/json");
	assert_string_equal(at(doc, "apiVersion")->valuestring, "policy/v1");
	assert_string_equal(at(doc, "kind")->valuestring, "Eviction");
	assert_string_equal(at(at(doc, "metadata"), "name")->valuestring,
			    "db-1.replica");
	assert_string_equal(at(at(doc, "metadata"), "namespace")->valuestring,
			    "shop");
	d = at(doc, "deleteOptions");
	assert_string_equal(at(at(d, "preconditions"), "uid")->valuestring,
			    UID);
	assert_int_equal(at(d, "gracePeriodSeconds")->valueint, 10);
	cJSON_Delete(doc);
}

static void test_cordon(void **state)
{
	struct km_kube_action a = {.kind = KM_KUBE_ACT_CORDON,
				   .name = "worker-3.zone-a"};
	struct km_kube_action_request r;
	struct km_error err = {0};

	(void)state;
	assert_int_equal(km_kube_action_build(&a, &r, &err), 0);
	assert_string_equal(r.method, "PATCH");
	assert_string_equal(r.path, "/api/v1/nodes/worker-3.zone-a");
	assert_string_equal(r.content_type,
			    "application/strategic-merge-patch+json");
	assert_string_equal(r.body, "{\"spec\":{\"unschedulable\":true}}");
	km_kube_action_request_free(&r);
	a.kind = KM_KUBE_ACT_UNCORDON;
	assert_int_equal(km_kube_action_build(&a, &r, &err), 0);
	assert_string_equal(r.body, "{\"spec\":{\"unschedulable\":false}}");
	km_kube_action_request_free(&r);
}

static void test_rollout_restart(void **state)
{
	static const struct {
		enum km_kube_resource r;
		const char *path;
	} kinds[] = {
		{KM_RES_DEPLOYMENT,
		 "/apis/apps/v1/namespaces/shop/deployments/web"},
		{KM_RES_STATEFULSET,
		 "/apis/apps/v1/namespaces/shop/statefulsets/web"},
		{KM_RES_DAEMONSET,
		 "/apis/apps/v1/namespaces/shop/daemonsets/web"},
	};
	struct km_kube_action a = {.kind = KM_KUBE_ACT_ROLLOUT_RESTART,
				   .ns = "shop",
				   .name = "web",
				   /* 2026-11-30T08:53:37.654321Z */
				   .now_us = 1796028817654321LL};
	const cJSON *v;
	cJSON *doc;

	(void)state;
	for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
		a.workload = kinds[i].r;
		doc = built(&a, "PATCH", kinds[i].path,
			    "application/strategic-merge-patch+json");
		/* Only the annotation: {"spec":{"template":{"metadata":
		 * {"annotations":{...}}}}}. */
		assert_int_equal(cJSON_GetArraySize(doc), 1);
		v = at(at(at(at(doc, "spec"), "template"), "metadata"),
		       "annotations");
		assert_int_equal(cJSON_GetArraySize(v), 1);
		v = at(v, "kubectl.kubernetes.io/restartedAt");
		assert_string_equal(v->valuestring, "2026-11-30T08:53:37Z");
		assert_int_equal(km_kube_parse_time(v->valuestring),
				 1796028817000000LL);
		cJSON_Delete(doc);
	}
	/* 0: now, in UTC, RFC 3339. */
	a.now_us = 0;
	a.workload = KM_RES_DEPLOYMENT;
	{
		int64_t before = (int64_t)time(NULL) * 1000000, t;

		doc = built(&a, "PATCH", kinds[0].path,
			    "application/strategic-merge-patch+json");
		v = at(at(at(at(at(doc, "spec"), "template"), "metadata"),
			  "annotations"),
		       "kubectl.kubernetes.io/restartedAt");
		assert_int_equal(strlen(v->valuestring), 20);
		assert_int_equal(v->valuestring[19], 'Z');
		t = km_kube_parse_time(v->valuestring);
		assert_true(t >= before && t <= before + 5000000);
		cJSON_Delete(doc);
	}
	/* Not a workload of a rollout. */
	{
		struct km_kube_action_request r;
		struct km_error err = {0};

		a.workload = KM_RES_REPLICASET;
		assert_int_equal(km_kube_action_build(&a, &r, &err), KM_EINVAL);
		assert_non_null(strstr(err.msg, "workload"));
		a.workload = KM_RES_POD;
		assert_int_equal(km_kube_action_build(&a, &r, &err), KM_EINVAL);
		assert_null(r.path);
		assert_null(r.body);
	}
}

/* Refused with the field named; nothing made. */
static void refused(const struct km_kube_action *a, const char *field)
{
	struct km_kube_action_request r;
	struct km_error err = {0};
	char want[32];

	assert_int_equal(km_kube_action_build(a, &r, &err), KM_EINVAL);
	assert_null(r.path);
	assert_null(r.body);
	snprintf(want, sizeof want, "%s:", field);
	if (strncmp(err.msg, want, strlen(want)))
		fail_msg("\"%s\" does not name %s", err.msg, field);
}

static void test_hostile_input(void **state)
{
	static const char *const bad_names[] = {
		"",
		"Web",
		"web_0",
		"-web",
		"web-",
		"web..0",
		".web",
		"web.",
		"../secrets",
		"web/0",
		"web?x=1",
		"web%2f0",
		"web 0",
		"web\"0",
		"web\n0",
		"wéb",
		/* 254 bytes */
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaa",
		/* a label of 64 */
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	static const char *const bad_ns[] = {"",    "kube.system", "Default",
					     "a/b", "ns\r\n",      "-x"};
	static const char *const bad_uids[] = {
		"",
		"0333fc72-85df-41ef-b30c-6d6698a5c31",
		"0333fc72-85df-41ef-b30c-6d6698a5c3155",
		"0333fc72x85df-41ef-b30c-6d6698a5c315",
		"0333fc72-85df-41ef-b30c-6d6698a5c31g",
		"0333fc72-85df-41ef-b30c-6d6698a5c31\"",
		"\"},\"x\":{\"a\":\"b\"}}                  ",
	};
	struct km_kube_action a;

	(void)state;
	for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
		a = (struct km_kube_action){.kind = KM_KUBE_ACT_RESTART_POD,
					    .ns = "shop",
					    .name = bad_names[i],
					    .uid = UID,
					    .grace_period_s = -1};
		refused(&a, "name");
		a.kind = KM_KUBE_ACT_EVICT;
		refused(&a, "name");
		a.kind = KM_KUBE_ACT_CORDON;
		refused(&a, "name");
		a.kind = KM_KUBE_ACT_ROLLOUT_RESTART;
		a.workload = KM_RES_DEPLOYMENT;
		refused(&a, "name");
	}
	for (size_t i = 0; i < sizeof bad_ns / sizeof *bad_ns; i++) {
		a = (struct km_kube_action){.kind = KM_KUBE_ACT_EVICT,
					    .ns = bad_ns[i],
					    .name = "web-0",
					    .uid = UID,
					    .grace_period_s = -1};
		refused(&a, "namespace");
		a.kind = KM_KUBE_ACT_ROLLOUT_RESTART;
		a.workload = KM_RES_STATEFULSET;
		refused(&a, "namespace");
	}
	for (size_t i = 0; i < sizeof bad_uids / sizeof *bad_uids; i++) {
		a = (struct km_kube_action){.kind = KM_KUBE_ACT_RESTART_POD,
					    .ns = "shop",
					    .name = "web-0",
					    .uid = bad_uids[i],
					    .grace_period_s = -1};
		refused(&a, "uid");
		a.kind = KM_KUBE_ACT_EVICT;
		refused(&a, "uid");
	}
	/* Missing. */
	a = (struct km_kube_action){.kind = KM_KUBE_ACT_RESTART_POD,
				    .ns = "shop",
				    .name = "web-0",
				    .grace_period_s = -1};
	refused(&a, "uid");
	a.uid = UID;
	a.ns = NULL;
	refused(&a, "namespace");
	a.ns = "shop";
	a.name = NULL;
	refused(&a, "name");
	a.name = "web-0";
	a.grace_period_s = -2;
	refused(&a, "grace_period_s");
	a.grace_period_s = 400LL * 24 * 3600;
	refused(&a, "grace_period_s");
	a.grace_period_s = -1;
	a.kind = (enum km_kube_action_kind)99;
	refused(&a, "action");
	/* What passes: the longest label and subdomain; upper-case hex. */
	assert_true(km_dns1123_label(
		"a23456789012345678901234567890123456789012345678901234567890123"));
	assert_true(km_dns1123_subdomain("a.b-c.0"));
	assert_true(km_kube_uuid("0333FC72-85DF-41EF-B30C-6D6698A5C315"));
	assert_false(km_dns1123_subdomain(NULL));
}

/* ---- the answers a real API server gave ---------------------------------------- */

struct answer {
	const char *file;
	long status;
	enum km_kube_action_kind kind;
	enum km_kube_outcome want;
	const char *why; /* a piece of why */
};

static void test_recorded_answers(void **state)
{
	static const struct answer answers[] = {
		{"delete-pod-200.json", 200, KM_KUBE_ACT_RESTART_POD,
		 KM_KUBE_DONE, "done (HTTP 200)"},
		{"delete-pod-409-uid.json", 409, KM_KUBE_ACT_RESTART_POD,
		 KM_KUBE_GONE, "another has its name"},
		{"delete-pod-404.json", 404, KM_KUBE_ACT_RESTART_POD,
		 KM_KUBE_GONE, "already gone"},
		{"delete-pod-403.json", 403, KM_KUBE_ACT_RESTART_POD,
		 KM_KUBE_FAILED,
		 "HTTP 403 Forbidden): pods \"replaced\" is forbidden: User "
		 "\"system:serviceaccount:actionfix:nobody\" cannot delete"},
		{"cordon-200.json", 200, KM_KUBE_ACT_CORDON, KM_KUBE_DONE,
		 "cordon node"},
		{"uncordon-200.json", 200, KM_KUBE_ACT_UNCORDON, KM_KUBE_DONE,
		 "uncordon node"},
		{"rollout-restart-200.json", 200, KM_KUBE_ACT_ROLLOUT_RESTART,
		 KM_KUBE_DONE, "rollout restart Deployment"},
		{"patch-422.json", 422, KM_KUBE_ACT_ROLLOUT_RESTART,
		 KM_KUBE_FAILED, "spec.replicas: Invalid value: -1"},
		{"patch-400.json", 400, KM_KUBE_ACT_CORDON, KM_KUBE_FAILED,
		 "invalid JSON patch"},
		{"update-409-conflict.json", 409, KM_KUBE_ACT_ROLLOUT_RESTART,
		 KM_KUBE_CONFLICT, "the object has been modified"},
		/* A pod's other 409 is a conflict too. */
		{"update-409-conflict.json", 409, KM_KUBE_ACT_RESTART_POD,
		 KM_KUBE_CONFLICT, "read it again"},
		{"eviction-201.json", 201, KM_KUBE_ACT_EVICT, KM_KUBE_DONE,
		 "evict pod"},
		{"eviction-404.json", 404, KM_KUBE_ACT_EVICT, KM_KUBE_GONE,
		 "already gone"},
		{"eviction-409-uid.json", 409, KM_KUBE_ACT_EVICT, KM_KUBE_GONE,
		 "left alone"},
		{"eviction-429-pdb.json", 429, KM_KUBE_ACT_EVICT,
		 KM_KUBE_THROTTLED,
		 "refused by a PodDisruptionBudget, retry later: The "
		 "disruption budget guarded needs 2 healthy pods"},
		{"eviction-429-pdb.pb", 429, KM_KUBE_ACT_EVICT,
		 KM_KUBE_THROTTLED, "refused by a PodDisruptionBudget"},
		/* A node or a workload that is not there: no GONE. */
		{"delete-pod-404.json", 404, KM_KUBE_ACT_CORDON, KM_KUBE_FAILED,
		 "not found"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof answers / sizeof *answers; i++) {
		const struct answer *w = &answers[i];
		struct km_kube_action a = {.kind = w->kind,
					   .workload = KM_RES_DEPLOYMENT,
					   .ns = "actionfix",
					   .name = "victim",
					   .uid = OTHER_UID,
					   .grace_period_s = -1};
		char name[128], why[512];
		int64_t retry = -7;
		size_t len;
		char *body;

		snprintf(name, sizeof name, "actions/%s", w->file);
		body = km_test_fixture_or_fail(name, &len);
		if (km_kube_action_outcome(&a, w->status, body, len, &retry,
					   why, sizeof why) != w->want)
			fail_msg("%s: %s, want %s (%s)", w->file,
				 km_kube_outcome_name(km_kube_action_outcome(
					 &a, w->status, body, len, &retry, why,
					 sizeof why)),
				 km_kube_outcome_name(w->want), why);
		if (!strstr(why, w->why))
			fail_msg("%s: \"%s\" lacks \"%s\"", w->file, why,
				 w->why);
		assert_int_equal(retry, 0); /* none of these gives one */
		free(body);
	}
}

/* What no fixture shows: no answer, server errors, a throttle with a
 * retryAfterSeconds, a body that is no Status, other codes. */
static void test_other_answers(void **state)
{
	static const char throttled[] =
		"{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
		"\"too many requests\",\"reason\":\"TooManyRequests\","
		"\"details\":{\"retryAfterSeconds\":4},\"code\":429}";
	static const char timeout[] =
		"{\"kind\":\"Status\",\"message\":\"the server was unable to "
		"return a response in the time allotted\",\"reason\":"
		"\"ServerTimeout\",\"details\":{\"retryAfterSeconds\":2},"
		"\"code\":500}";
	struct km_kube_action a = {.kind = KM_KUBE_ACT_RESTART_POD,
				   .ns = "shop",
				   .name = "web-0",
				   .uid = UID,
				   .grace_period_s = -1};
	static const long retry_codes[] = {0, 500, 502, 503, 504};
	static const long failed_codes[] = {301, 204, 400, 401, 405,
					    410, 413, 415, 501, 505};
	char why[300];
	int64_t retry;

	(void)state;
	assert_int_equal(km_kube_action_outcome(&a, 429, throttled,
						sizeof throttled - 1, &retry,
						why, sizeof why),
			 KM_KUBE_THROTTLED);
	assert_int_equal(retry, 4);
	assert_non_null(strstr(why, "throttling"));
	assert_int_equal(km_kube_action_outcome(&a, 500, timeout,
						sizeof timeout - 1, &retry, why,
						sizeof why),
			 KM_KUBE_RETRY);
	assert_int_equal(retry, 2);
	assert_non_null(strstr(why, "HTTP 500"));
	/* APF's throttle: plain text (its Retry-After is a header). */
	assert_int_equal(km_kube_action_outcome(&a, 429,
						"Too many requests, "
						"please try again later.",
						42, &retry, why, sizeof why),
			 KM_KUBE_THROTTLED);
	assert_int_equal(retry, 0);
	for (size_t i = 0; i < sizeof retry_codes / sizeof *retry_codes; i++)
		assert_int_equal(km_kube_action_outcome(&a, retry_codes[i],
							"<html>", 6, &retry,
							why, sizeof why),
				 KM_KUBE_RETRY);
	assert_int_equal(km_kube_action_outcome(&a, 0, NULL, 0, &retry, why,
						sizeof why),
			 KM_KUBE_RETRY);
	assert_non_null(strstr(why, "no answer"));
	for (size_t i = 0; i < sizeof failed_codes / sizeof *failed_codes; i++)
		assert_int_equal(km_kube_action_outcome(&a, failed_codes[i], "",
							0, &retry, why,
							sizeof why),
				 KM_KUBE_FAILED);
	assert_int_equal(km_kube_action_outcome(&a, 202, "", 0, &retry, why,
						sizeof why),
			 KM_KUBE_DONE);
	/* why is cut to its size, and may be left out. */
	assert_int_equal(km_kube_action_outcome(&a, 404, "", 0, &retry, why, 8),
			 KM_KUBE_GONE);
	assert_int_equal(strlen(why), 7);
	assert_int_equal(km_kube_action_outcome(&a, 404, "", 0, &retry, NULL,
						0),
			 KM_KUBE_GONE);
	assert_string_equal(km_kube_outcome_name(KM_KUBE_CONFLICT), "CONFLICT");
	assert_string_equal(km_kube_outcome_name((enum km_kube_outcome)0), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restart_pod),
		cmocka_unit_test(test_evict),
		cmocka_unit_test(test_cordon),
		cmocka_unit_test(test_rollout_restart),
		cmocka_unit_test(test_hostile_input),
		cmocka_unit_test(test_recorded_answers),
		cmocka_unit_test(test_other_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
