/*
 * km_kube_review: the TokenReview and SubjectAccessReview kubemedicd
 * sends, and its reading of the answers — those a real kube-apiserver
 * gave (tests/unit/kube_fixtures/tokenreview-*.json,
 * subjectaccessreview-*.json) and malformed ones no API server should
 * give, each of which must be an error, never a crash or a role. And an
 * API server that cannot be reached: UNAVAILABLE.
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

#include "km_kube_review.h"
#include "km_test.h"

static struct km_arena arena;

static int setup(void **state)
{
	(void)state;
	km_arena_init(&arena, 4096);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	km_arena_free(&arena);
	return 0;
}

static const cJSON *at(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	assert_non_null(v);
	return v;
}

/* ---- what is sent ---------------------------------------------------------- */

static void test_token_review_body(void **state)
{
	char *body = NULL;
	struct km_error err = {0};
	cJSON *doc;

	(void)state;
	assert_int_equal(km_kube_token_review_body("tok\"en\\", &body, &err),
			 0);
	doc = cJSON_Parse(body);
	assert_non_null(doc);
	assert_string_equal(at(doc, "apiVersion")->valuestring,
			    "authentication.k8s.io/v1");
	assert_string_equal(at(doc, "kind")->valuestring, "TokenReview");
	assert_string_equal(at(at(doc, "spec"), "token")->valuestring,
			    "tok\"en\\");
	cJSON_Delete(doc);
	free(body);
}

/* The subject is sent as the TokenReview gave it; the empty attributes
 * are left out, but the group ("" is the core group). */
static void test_access_review_body(void **state)
{
	static const char *groups[] = {"system:serviceaccounts",
				       "system:serviceaccounts:ci",
				       "system:authenticated"};
	static const char *pod[] = {"web-0"};
	static const char *two[] = {"a", "b"};
	static const struct km_auth_extra extra[] = {
		{"authentication.kubernetes.io/pod-name", pod, 1},
		{"example.com/two", two, 2},
	};
	const struct km_auth_subject who = {
		.user = "system:serviceaccount:ci:bot",
		.uid = "5f0c-uid",
		.groups = groups,
		.n_groups = 3,
		.extra = extra,
		.n_extra = 2,
	};
	struct km_auth_access what = {"kubemedic.io", "health", "", "", "",
				      "update"};
	const cJSON *spec, *ra, *g, *x;
	struct km_error err = {0};
	char *body = NULL;
	cJSON *doc;

	(void)state;
	assert_int_equal(km_kube_access_review_body(&who, &what, &body, &err),
			 0);
	assert_string_equal(
		body, "{\"apiVersion\":\"authorization.k8s.io/v1\","
		      "\"kind\":\"SubjectAccessReview\",\"spec\":{"
		      "\"resourceAttributes\":{\"verb\":\"update\","
		      "\"group\":\"kubemedic.io\",\"resource\":\"health\"},"
		      "\"user\":\"system:serviceaccount:ci:bot\","
		      "\"groups\":[\"system:serviceaccounts\","
		      "\"system:serviceaccounts:ci\",\"system:authenticated\"],"
		      "\"uid\":\"5f0c-uid\",\"extra\":{"
		      "\"authentication.kubernetes.io/pod-name\":[\"web-0\"],"
		      "\"example.com/two\":[\"a\",\"b\"]}}}");
	free(body);

	/* Every attribute, and a subject with no uid, groups or extra. */
	what = (struct km_auth_access){"",      "pods", "log",
				       "web-0", "shop", "get"};
	{
		const struct km_auth_subject bare = {.user = "alice",
						     .uid = ""};

		assert_int_equal(km_kube_access_review_body(&bare, &what, &body,
							    &err),
				 0);
	}
	doc = cJSON_Parse(body);
	assert_non_null(doc);
	spec = at(doc, "spec");
	ra = at(spec, "resourceAttributes");
	assert_string_equal(at(ra, "namespace")->valuestring, "shop");
	assert_string_equal(at(ra, "verb")->valuestring, "get");
	assert_string_equal(at(ra, "group")->valuestring, "");
	assert_string_equal(at(ra, "resource")->valuestring, "pods");
	assert_string_equal(at(ra, "subresource")->valuestring, "log");
	assert_string_equal(at(ra, "name")->valuestring, "web-0");
	assert_string_equal(at(spec, "user")->valuestring, "alice");
	g = at(spec, "groups");
	assert_true(cJSON_IsArray(g));
	assert_int_equal(cJSON_GetArraySize(g), 0);
	assert_null(cJSON_GetObjectItemCaseSensitive(spec, "uid"));
	x = cJSON_GetObjectItemCaseSensitive(spec, "extra");
	assert_null(x);
	cJSON_Delete(doc);
	free(body);
}

/* ---- what the real API server answered --------------------------------------- */

static void test_token_review_answers(void **state)
{
	struct km_auth_subject s;
	struct km_error err = {0};
	size_t len;
	char *json;
	bool pod_name = false;

	(void)state;
	/* A ServiceAccount's token, bound to a pod. */
	json = km_test_fixture_or_fail("tokenreview-serviceaccount.json", &len);
	assert_int_equal(
		km_kube_token_review_decode(json, len, &arena, &s, &err), 0);
	free(json);
	assert_string_equal(s.user, "system:serviceaccount:fixtures:bot");
	assert_true(strlen(s.uid) > 0);
	assert_true(s.n_groups >= 3);
	assert_string_equal(s.groups[0], "system:serviceaccounts");
	assert_string_equal(s.groups[1], "system:serviceaccounts:fixtures");
	assert_string_equal(s.groups[2], "system:authenticated");
	assert_true(s.n_extra >= 2);
	for (size_t i = 0; i < s.n_extra; i++) {
		assert_int_equal(s.extra[i].n_values, 1);
		if (!strcmp(s.extra[i].key,
			    "authentication.kubernetes.io/pod-name")) {
			assert_string_equal(s.extra[i].values[0], "bot-pod");
			pod_name = true;
		}
	}
	assert_true(pod_name);

	/* A token that is not the cluster's. */
	json = km_test_fixture_or_fail("tokenreview-invalid.json", &len);
	assert_int_equal(km_kube_token_review_decode(json, len, &arena, &s,
						     &err),
			 KM_EAUTH);
	free(json);
	assert_non_null(strstr(err.msg,
			       "the bearer token is not valid in the cluster"));
	assert_null(s.user);
}

static void test_access_review_answers(void **state)
{
	struct km_error err = {0};
	size_t len;
	char *json;

	(void)state;
	json = km_test_fixture_or_fail("subjectaccessreview-allowed.json",
				       &len);
	assert_int_equal(km_kube_access_review_decode(json, len, &err), 0);
	free(json);
	json = km_test_fixture_or_fail("subjectaccessreview-denied.json", &len);
	assert_int_equal(km_kube_access_review_decode(json, len, &err),
			 KM_EPERM);
	free(json);
	assert_non_null(
		strstr(err.msg, "the cluster's RBAC does not allow it"));
}

/* ---- answers no API server should give ---------------------------------------- */

static void test_token_review_malformed(void **state)
{
	static const struct {
		const char *json, *want;
	} bad[] = {
		{"", "not a JSON object"},
		{"[1]", "not a JSON object"},
		{"{\"kind\":\"TokenReview\"", "not a JSON object"},
		{"{\"status\":{\"authenticated\":true}}",
		 "not a TokenReview (kind missing)"},
		{"{\"kind\":\"Status\",\"status\":\"Failure\"}",
		 "not a TokenReview (kind Status)"},
		{"{\"kind\":\"TokenReview\"}", "an answer without status"},
		{"{\"kind\":\"TokenReview\",\"status\":[]}",
		 "an answer without status"},
		{"{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true}}",
		 "no username"},
		{"{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,"
		 "\"user\":{\"username\":\"\"}}}",
		 "no username"},
		{"{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,"
		 "\"user\":{\"username\":7}}}",
		 "not a UTF-8 string"},
		{"{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,"
		 "\"user\":{\"username\":\"a\xff"
		 "b\"}}}",
		 "not a UTF-8 string"},
		{"{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,"
		 "\"user\":{\"username\":\"a\",\"uid\":{}}}}",
		 "not a UTF-8 string"},
		{"{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,"
		 "\"user\":{\"username\":\"a\",\"groups\":\"g\"}}}",
		 "groups is not a list"},
		{"{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,"
		 "\"user\":{\"username\":\"a\",\"groups\":[\"g\",null]}}}",
		 "groups is not a list"},
		{"{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,"
		 "\"user\":{\"username\":\"a\",\"extra\":[]}}}",
		 "extra is not a map"},
		{"{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,"
		 "\"user\":{\"username\":\"a\",\"extra\":{\"k\":\"v\"}}}}",
		 "extra is not a map"},
		{"{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,"
		 "\"user\":{\"username\":\"a\",\"extra\":{\"k\":[\"v\",1]}}}}",
		 "extra is not a map"},
	};
	struct km_auth_subject s;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct km_error err = {0};
		int rc = km_kube_token_review_decode(
			bad[i].json, strlen(bad[i].json), &arena, &s, &err);

		if (rc != KM_EUNAVAIL || !strstr(err.msg, bad[i].want))
			fail_msg("%s: rc %d, %s (want %s)", bad[i].json, rc,
				 err.msg, bad[i].want);
		assert_null(s.user);
	}
	/* NULL (no answer at all). */
	{
		struct km_error err = {0};

		assert_int_equal(km_kube_token_review_decode(NULL, 0, &arena,
							     &s, &err),
				 KM_EUNAVAIL);
	}
	/* What the API's optional fields may be: absent or null. */
	{
		static const char ok[] =
			"{\"kind\":\"TokenReview\",\"status\":{"
			"\"authenticated\":true,\"user\":{\"username\":\"a\","
			"\"uid\":null,\"groups\":null,\"extra\":null}}}";
		struct km_error err = {0};

		assert_int_equal(km_kube_token_review_decode(ok, strlen(ok),
							     &arena, &s, &err),
				 0);
		assert_string_equal(s.user, "a");
		assert_string_equal(s.uid, "");
		assert_int_equal(s.n_groups, 0);
		assert_int_equal(s.n_extra, 0);
	}
}

static void test_access_review_malformed(void **state)
{
	static const struct {
		const char *json;
		int rc;
		const char *want;
	} cases[] = {
		{"", KM_EUNAVAIL, "not a JSON object"},
		{"null", KM_EUNAVAIL, "not a JSON object"},
		{"{\"status\":{\"allowed\":true}}", KM_EUNAVAIL,
		 "not a SubjectAccessReview"},
		{"{\"kind\":\"TokenReview\",\"status\":{\"allowed\":true}}",
		 KM_EUNAVAIL, "not a SubjectAccessReview (kind TokenReview)"},
		{"{\"kind\":\"SubjectAccessReview\"}", KM_EUNAVAIL,
		 "an answer without status"},
		{"{\"kind\":\"SubjectAccessReview\",\"status\":{}}",
		 KM_EUNAVAIL, "status.allowed is not true or false"},
		{"{\"kind\":\"SubjectAccessReview\",\"status\":{"
		 "\"allowed\":\"true\"}}",
		 KM_EUNAVAIL, "status.allowed is not true or false"},
		{"{\"kind\":\"SubjectAccessReview\",\"status\":{"
		 "\"allowed\":1}}",
		 KM_EUNAVAIL, "status.allowed is not true or false"},
		{"{\"kind\":\"SubjectAccessReview\",\"status\":{"
		 "\"allowed\":false,\"denied\":\"yes\"}}",
		 KM_EUNAVAIL, "status.allowed is not true or false"},
		{"{\"kind\":\"SubjectAccessReview\",\"status\":{"
		 "\"allowed\":false,\"reason\":[]}}",
		 KM_EUNAVAIL, "status.allowed is not true or false"},
		{"{\"kind\":\"SubjectAccessReview\",\"status\":{"
		 "\"allowed\":true,\"denied\":true}}",
		 KM_EUNAVAIL, "both allowed and denied"},
		/* What a webhook authorizer may say. */
		{"{\"kind\":\"SubjectAccessReview\",\"status\":{"
		 "\"allowed\":false,\"denied\":true,\"reason\":\"no\"}}",
		 KM_EPERM, "the cluster's RBAC does not allow it: no"},
		{"{\"kind\":\"SubjectAccessReview\",\"status\":{"
		 "\"allowed\":false,\"evaluationError\":\"webhook down\"}}",
		 KM_EPERM, "(evaluation error: webhook down)"},
		{"{\"kind\":\"SubjectAccessReview\",\"status\":{"
		 "\"allowed\":true,\"denied\":false}}",
		 0, ""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct km_error err = {0};
		int rc = km_kube_access_review_decode(
			cases[i].json, strlen(cases[i].json), &err);

		if (rc != cases[i].rc || !strstr(err.msg, cases[i].want))
			fail_msg("%s: rc %d, %s (want %d, %s)", cases[i].json,
				 rc, err.msg, cases[i].rc, cases[i].want);
	}
}

/* ---- an API server that is not there ------------------------------------------ */

/* Port 1 of loopback: nothing listens, the connection is refused at once.
 * Both reviews are UNAVAILABLE, naming what could not be made. */
static void test_unreachable(void **state)
{
	const struct km_kube_client_options o = {.server = "http://127.0.0.1:1",
						 .token = "kubemedic-token"};
	const struct km_auth_subject who = {.user = "u", .uid = ""};
	const struct km_auth_access what = {
		"kubemedic.io", "health", "", "", "", "get"};
	struct km_kube_reviewer *r = NULL;
	struct km_auth_subject s;
	struct km_error err = {0};

	(void)state;
	assert_int_equal(km_kube_reviewer_new(&o, &r, &err), 0);
	assert_int_equal(km_kube_token_review(r, "t", &arena, &s, &err),
			 KM_EUNAVAIL);
	assert_non_null(strstr(err.msg, "TokenReview: "));
	assert_null(s.user);
	assert_int_equal(km_kube_access_review(r, &who, &what, &err),
			 KM_EUNAVAIL);
	assert_non_null(strstr(err.msg, "SubjectAccessReview: "));
	km_kube_reviewer_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_review_body),
		cmocka_unit_test(test_access_review_body),
		cmocka_unit_test(test_token_review_answers),
		cmocka_unit_test(test_access_review_answers),
		cmocka_unit_test(test_token_review_malformed),
		cmocka_unit_test(test_access_review_malformed),
		cmocka_unit_test(test_unreachable),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
