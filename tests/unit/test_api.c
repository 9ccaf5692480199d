/*
 * The API layer's pure parts: message mapping (protobuf-c <-> km_model),
 * timestamps, page sizes and page tokens, gRPC status mapping, and the
 * reasons for NOT_SERVING.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "api_internal.h"
#include "km_hash.h"

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

static Kubemedic__V1__Probe http_probe(Kubemedic__V1__HTTPGetAction *h)
{
	Kubemedic__V1__Probe p = KUBEMEDIC__V1__PROBE__INIT;

	*h = (Kubemedic__V1__HTTPGetAction)KUBEMEDIC__V1__HTTPGET_ACTION__INIT;
	h->host = "10.0.0.7";
	h->port = 8443;
	h->path = "/ready";
	h->scheme = "HTTPS";
	p.name = "shop.checkout";
	p.http_get = h;
	return p;
}

static void test_probe_round_trip_with_defaults(void **state)
{
	Kubemedic__V1__HTTPGetAction h;
	Kubemedic__V1__Probe in = http_probe(&h), *out;
	Kubemedic__V1__Probe__LabelsEntry l =
		KUBEMEDIC__V1__PROBE__LABELS_ENTRY__INIT;
	Kubemedic__V1__Probe__LabelsEntry *lp = &l;
	struct km_error err = {0};
	struct km_probe p;
	uint8_t buf[1024];
	size_t n;

	(void)state;
	l.key = "app.kubernetes.io/name";
	l.value = "checkout";
	in.labels = &lp;
	in.n_labels = 1;
	in.period_milliseconds = 250;
	assert_int_equal(km_probe_from_pb(&in, &arena, &p, &err), 0);
	assert_int_equal(p.type, KM_PROBE_HTTP);
	assert_true(p.https);
	assert_int_equal(p.period_ms, 250);
	/* The kubelet's defaults for what was not given. */
	assert_int_equal(p.timeout_ms, 1000);
	assert_int_equal(p.success_threshold, 1);
	assert_int_equal(p.failure_threshold, 3);

	p.source = KM_SOURCE_CONFIG;
	p.generation = 4;
	p.create_us = 1700000000123456;
	p.update_us = 1700000001000000;
	out = km_probe_to_pb(&p, &arena);
	assert_non_null(out);
	assert_string_equal(out->http_get->scheme, "HTTPS");
	assert_int_equal(out->period_milliseconds, 250);
	assert_int_equal(out->period_seconds, 0);
	assert_int_equal(out->timeout_seconds, 1);
	assert_int_equal(out->source,
			 KUBEMEDIC__V1__PROBE_SOURCE__PROBE_SOURCE_CONFIG);
	assert_string_equal(out->target, "probe//shop.checkout");
	assert_int_equal(out->create_time->seconds, 1700000000);
	assert_int_equal(out->create_time->nanos, 123456000);
	assert_string_equal(out->labels[0]->key, "app.kubernetes.io/name");
	/* It packs (no NULL strings anywhere) and unpacks to the same. */
	n = protobuf_c_message_get_packed_size(&out->base);
	assert_true(n < sizeof buf);
	protobuf_c_message_pack(&out->base, buf);
	{
		Kubemedic__V1__Probe *back =
			kubemedic__v1__probe__unpack(NULL, n, buf);
		struct km_probe p2;

		assert_non_null(back);
		assert_int_equal(km_probe_from_pb(back, &arena, &p2, &err), 0);
		assert_true(km_probe_spec_equal(&p, &p2));
		kubemedic__v1__probe__free_unpacked(back, NULL);
	}
}

static void test_probe_errors_name_api_fields(void **state)
{
	Kubemedic__V1__HTTPGetAction h;
	Kubemedic__V1__TCPSocketAction t =
		KUBEMEDIC__V1__TCPSOCKET_ACTION__INIT;
	Kubemedic__V1__Probe in = http_probe(&h);
	struct km_error err = {0};
	struct km_probe p;

	(void)state;
	in.tcp_socket = &t;
	assert_int_equal(km_probe_from_pb(&in, &arena, &p, &err), KM_EINVAL);
	assert_string_equal(err.msg,
			    "probe: may not specify more than 1 handler type");
	in = http_probe(&h);
	h.host = "";
	assert_int_equal(km_probe_from_pb(&in, &arena, &p, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "probe.http_get.host: Required value"));
	in = http_probe(&h);
	in.period_seconds = 2;
	in.period_milliseconds = 500;
	assert_int_equal(km_probe_from_pb(&in, &arena, &p, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "probe.period_milliseconds"));
	in = http_probe(&h);
	h.scheme = "https";
	assert_int_equal(km_probe_from_pb(&in, &arena, &p, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "probe.http_get.scheme"));
}

static void test_timestamps(void **state)
{
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	Google__Protobuf__Timestamp *t;
	struct km_error err = {0};
	int64_t us;

	(void)state;
	t = km_pb_timestamp(&arena, -1); /* 1969-12-31T23:59:59.999999 */
	assert_int_equal(t->seconds, -1);
	assert_int_equal(t->nanos, 999999000);
	assert_int_equal(km_api_time_bound(NULL, 42, "x", &us, &err), 0);
	assert_int_equal(us, 42);
	ts.seconds = 1700000000;
	ts.nanos = 999999999; /* sub-microsecond part is dropped */
	assert_int_equal(km_api_time_bound(&ts, 0, "start_time", &us, &err), 0);
	assert_int_equal(us, 1700000000999999);
	ts.nanos = 1000000000;
	assert_int_equal(km_api_time_bound(&ts, 0, "start_time", &us, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "start_time: nanos"));
	ts.nanos = 0;
	ts.seconds = 253402300800; /* 10000-01-01 */
	assert_int_equal(km_api_time_bound(&ts, 0, "end_time", &us, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "end_time"));
}

static void test_page_size(void **state)
{
	struct km_error err = {0};
	size_t n;

	(void)state;
	assert_int_equal(km_api_page_size(0, 1000, &n, &err), 0);
	assert_int_equal(n, 100);
	assert_int_equal(km_api_page_size(1000, 1000, &n, &err), 0);
	assert_int_equal(n, 1000);
	assert_int_equal(km_api_page_size(1001, 1000, &n, &err), KM_EINVAL);
	assert_int_equal(km_api_page_size(-3, 1000, &n, &err), KM_EINVAL);
}

static void test_page_tokens(void **state)
{
	struct api_cursor c = {.a = INT64_MIN, .b = 77, .s = "p-42"}, back;
	struct km_error err = {0};
	uint64_t h = km_hash_field(KM_HASH_INIT, "team=shop");
	char *tok, *bad;
	bool present;

	(void)state;
	tok = km_api_token_encode(&arena, h, &c);
	assert_non_null(tok);
	assert_null(strpbrk(tok, "+/=")); /* base64url, unpadded */
	assert_int_equal(
		km_api_token_decode(tok, h, &arena, &back, &present, &err), 0);
	assert_true(present);
	assert_int_equal(back.a, INT64_MIN);
	assert_int_equal(back.b, 77);
	assert_string_equal(back.s, "p-42");

	assert_int_equal(
		km_api_token_decode("", h, &arena, &back, &present, &err), 0);
	assert_false(present);
	/* Another query's filters. */
	assert_int_equal(km_api_token_decode(
				 tok, km_hash_field(KM_HASH_INIT, "team=infra"),
				 &arena, &back, &present, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "other filters"));
	/* Damaged tokens. */
	bad = km_arena_strdup(&arena, tok);
	bad[3] = bad[3] == 'A' ? 'B' : 'A';
	assert_int_equal(km_api_token_decode(bad, h, &arena, &back, &present,
					     &err),
			 KM_EINVAL);
	assert_int_equal(km_api_token_decode("!!!!", h, &arena, &back, &present,
					     &err),
			 KM_EINVAL);
	assert_int_equal(km_api_token_decode("QQ", h, &arena, &back, &present,
					     &err),
			 KM_EINVAL);
	/* Hashes tell filter values apart, even across field boundaries. */
	assert_true(km_hash_field(km_hash_field(KM_HASH_INIT, "ab"), "c") !=
		    km_hash_field(km_hash_field(KM_HASH_INIT, "a"), "bc"));
}

/* Selectors and watch targets are measured before anything is parsed. */
static void test_selector_and_watch_limits(void **state)
{
	struct km_api api = {.limits = KM_LIMITS_DEFAULTS};
	struct km_error err = {0};
	char *big;

	(void)state;
	assert_int_equal(
		km_api_check_selector(&api, "label_selector", NULL, &err), 0);
	assert_int_equal(
		km_api_check_selector(&api, "label_selector", "", &err), 0);
	assert_int_equal(km_api_check_selector(&api, "label_selector",
					       "team=shop,tier in (a,b,c,d)",
					       &err),
			 0);
	/* 4096 bytes pass, 4097 do not. */
	big = km_arena_alloc(&arena, 5000);
	assert_non_null(big);
	memset(big, 'a', 4096);
	big[4096] = '\0';
	assert_int_equal(
		km_api_check_selector(&api, "label_selector", big, &err), 0);
	big[4096] = 'a';
	big[4097] = '\0';
	assert_int_equal(km_api_check_selector(&api, "label_selector", big,
					       &err),
			 KM_EINVAL);
	assert_string_equal(err.msg,
			    "label_selector: the selector is 4097 bytes long; "
			    "this server takes at most 4096 "
			    "(limits.maxSelectorBytes)");
	/* 64 requirements pass, 65 do not; commas in a value list are not
	 * requirements. */
	api.limits.max_selector_requirements = 3;
	assert_int_equal(km_api_check_selector(&api, "label_selector",
					       "a,b in (x,y,z,w),!c", &err),
			 0);
	assert_int_equal(km_api_check_selector(&api, "label_selector",
					       "a,b,c,d", &err),
			 KM_EINVAL);
	assert_string_equal(err.msg,
			    "label_selector: the selector has 4 requirements; "
			    "this server takes at most 3 "
			    "(limits.maxSelectorRequirements)");

	assert_int_equal(km_api_check_targets(&api, "targets", 100, &err), 0);
	assert_int_equal(km_api_check_targets(&api, "targets", 101, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg,
			       "targets: 101 targets; a watch takes "
			       "at most 100 (limits.maxWatchTargets)"));
}

/* Labels are a map: a key twice is refused, named. */
static void test_duplicate_label_keys(void **state)
{
	Kubemedic__V1__HTTPGetAction h;
	Kubemedic__V1__Probe in = http_probe(&h);
	Kubemedic__V1__Probe__LabelsEntry l[3] = {
		KUBEMEDIC__V1__PROBE__LABELS_ENTRY__INIT,
		KUBEMEDIC__V1__PROBE__LABELS_ENTRY__INIT,
		KUBEMEDIC__V1__PROBE__LABELS_ENTRY__INIT,
	};
	Kubemedic__V1__Probe__LabelsEntry *lp[3] = {&l[0], &l[1], &l[2]};
	struct km_error err = {0};
	struct km_probe p;

	(void)state;
	l[0].key = "team";
	l[0].value = "shop";
	l[1].key = "tier";
	l[1].value = "web";
	l[2].key = "team";
	l[2].value = "infra";
	in.labels = lp;
	in.n_labels = 3;
	assert_int_equal(km_probe_from_pb(&in, &arena, &p, &err), KM_EINVAL);
	assert_string_equal(err.msg, "probe.labels: Duplicate value: \"team\": "
				     "a label key may be given once");
	in.n_labels = 2;
	assert_int_equal(km_probe_from_pb(&in, &arena, &p, &err), 0);
}

static void test_status_mapping(void **state)
{
	(void)state;
	assert_int_equal(km_rpc_status_from_err(0), GRPC_STATUS_OK);
	assert_int_equal(km_rpc_status_from_err(KM_EINVAL),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(km_rpc_status_from_err(KM_ENOTFOUND),
			 GRPC_STATUS_NOT_FOUND);
	assert_int_equal(km_rpc_status_from_err(KM_EEXIST),
			 GRPC_STATUS_ALREADY_EXISTS);
	assert_int_equal(km_rpc_status_from_err(KM_EPRECOND),
			 GRPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(km_rpc_status_from_err(KM_EUNAVAIL),
			 GRPC_STATUS_UNAVAILABLE);
	assert_int_equal(km_rpc_status_from_err(KM_EFULL),
			 GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(km_rpc_status_from_err(KM_EDEADLINE),
			 GRPC_STATUS_DEADLINE_EXCEEDED);
	assert_int_equal(km_rpc_status_from_err(KM_EUNIMPL),
			 GRPC_STATUS_UNIMPLEMENTED);
	assert_int_equal(km_rpc_status_from_err(KM_ECORRUPT),
			 GRPC_STATUS_DATA_LOSS);
	assert_int_equal(km_rpc_status_from_err(KM_ERANGE),
			 GRPC_STATUS_OUT_OF_RANGE);
	assert_int_equal(km_rpc_status_from_err(KM_EPERM),
			 GRPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(km_rpc_status_from_err(-999), GRPC_STATUS_INTERNAL);
}

/* grpc.health.v1 for "" is SERVING only while no reason for NOT_SERVING
 * is set; each reason is set and cleared on its own. */
static int self_status(struct km_api *api)
{
	Grpc__Health__V1__HealthCheckRequest req =
		GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	struct api_worker w = {.api = api};
	struct km_rpc_ctx ctx = {.arena = &arena, .worker_data = &w};
	ProtobufCMessage *resp = NULL;
	struct km_error err = {0};

	req.service = "";
	assert_int_equal(km_api_health_check(&ctx, &req.base, &resp, &err), 0);
	return ((Grpc__Health__V1__HealthCheckResponse *)resp)->status;
}

#define SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING \
	GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING

static void test_serving_is_every_reason_clear(void **state)
{
	struct km_api *api = NULL;
	struct km_error err = {0};

	(void)state;
	assert_int_equal(km_api_create(&api, &err), 0);
	/* Not started yet. */
	assert_int_equal(self_status(api), NOT_SERVING);
	/* A reason set before the start holds after it. */
	km_api_set_serving(api, KM_API_NS_STORAGE, false);
	km_api_set_serving(api, KM_API_NS_STOPPED, true); /* as start does */
	assert_int_equal(self_status(api), NOT_SERVING);
	km_api_set_serving(api, KM_API_NS_STORAGE, true);
	assert_int_equal(self_status(api), SERVING);
	/* Clearing one reason does not clear another. */
	km_api_set_serving(api, KM_API_NS_STORAGE, false);
	km_api_set_serving(api, KM_API_NS_STOPPED, false);
	km_api_set_serving(api, KM_API_NS_STORAGE, true);
	assert_int_equal(self_status(api), NOT_SERVING);
	km_api_set_serving(api, KM_API_NS_STOPPED, true);
	assert_int_equal(self_status(api), SERVING);
	/* Setting one twice and clearing it once clears it. */
	km_api_set_serving(api, KM_API_NS_STORAGE, false);
	km_api_set_serving(api, KM_API_NS_STORAGE, false);
	km_api_set_serving(api, KM_API_NS_STORAGE, true);
	assert_int_equal(self_status(api), SERVING);
	km_api_destroy(api);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_round_trip_with_defaults),
		cmocka_unit_test(test_probe_errors_name_api_fields),
		cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_page_size),
		cmocka_unit_test(test_page_tokens),
		cmocka_unit_test(test_status_mapping),
		cmocka_unit_test(test_selector_and_watch_limits),
		cmocka_unit_test(test_duplicate_label_keys),
		cmocka_unit_test(test_serving_is_every_reason_clear),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
