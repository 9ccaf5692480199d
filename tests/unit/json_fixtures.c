/*
 * Messages for the km_json tests: real API messages first, then the test
 * protos (tests/unit/proto) for what the API does not use.
 */
#include "json_fixtures.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "google/protobuf/struct.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "json_test.pb-c.h"
#include "json_test2.pb-c.h"
#include "kubemedic/v1/health.pb-c.h"
#include "kubemedic/v1/probe.pb-c.h"

#define N(a) (sizeof(a) / sizeof *(a))
#define FFFD "\xEF\xBF\xBD"

/* ---- ProbeService: a Probe with labels, httpGet and headers, timing ---- */

static Kubemedic__V1__Probe__LabelsEntry probe_l1 =
	KUBEMEDIC__V1__PROBE__LABELS_ENTRY__INIT;
static Kubemedic__V1__Probe__LabelsEntry probe_l2 =
	KUBEMEDIC__V1__PROBE__LABELS_ENTRY__INIT;
static Kubemedic__V1__Probe__LabelsEntry *probe_labels[] = {&probe_l1,
							    &probe_l2};
static Kubemedic__V1__HTTPHeader probe_h1 = KUBEMEDIC__V1__HTTPHEADER__INIT;
static Kubemedic__V1__HTTPHeader probe_h2 = KUBEMEDIC__V1__HTTPHEADER__INIT;
static Kubemedic__V1__HTTPHeader *probe_headers[] = {&probe_h1, &probe_h2};
static Kubemedic__V1__HTTPGetAction probe_http =
	KUBEMEDIC__V1__HTTPGET_ACTION__INIT;
static Google__Protobuf__Timestamp probe_ct = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
static Google__Protobuf__Timestamp probe_ut = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
static Kubemedic__V1__Probe probe = KUBEMEDIC__V1__PROBE__INIT;

static void build_probe(void)
{
	probe_l1.key = "team";
	probe_l1.value = "shop";
	probe_l2.key = "app.kubernetes.io/name";
	probe_l2.value = "checkout";
	probe_h1.name = "Host";
	probe_h1.value = "shop.example";
	probe_h2.name = "X-Probe"; /* value "" is the default: left out */
	probe_http.host = "10.0.0.7";
	probe_http.port = 8443;
	probe_http.path = "/healthz";
	probe_http.scheme = "HTTPS";
	probe_http.n_http_headers = N(probe_headers);
	probe_http.http_headers = probe_headers;
	probe_http.tls_verify = 1;
	probe_http.ca_file = "/etc/ssl/ca.pem";
	probe_ct.seconds = 1795702352; /* 2026-11-26T14:12:32Z */
	probe_ut.seconds = 1795702352;
	probe_ut.nanos = 500000000;

	probe.name = "checkout";
	probe.n_labels = N(probe_labels);
	probe.labels = probe_labels;
	probe.http_get = &probe_http;
	probe.initial_delay_seconds = 5;
	probe.period_seconds = 10;
	probe.success_threshold = 1;
	probe.failure_threshold = 3;
	probe.timeout_milliseconds = 250;
	probe.source = KUBEMEDIC__V1__PROBE_SOURCE__PROBE_SOURCE_API;
	probe.target = "probe//checkout";
	probe.generation = 12;
	probe.create_time = &probe_ct;
	probe.update_time = &probe_ut;
}

static const char probe_compact[] =
	"{\"name\":\"checkout\","
	"\"labels\":{\"team\":\"shop\",\"app.kubernetes.io/name\":\"checkout\"},"
	"\"httpGet\":{\"host\":\"10.0.0.7\",\"port\":8443,\"path\":\"/healthz\","
	"\"scheme\":\"HTTPS\",\"httpHeaders\":[{\"name\":\"Host\","
	"\"value\":\"shop.example\"},{\"name\":\"X-Probe\"}],\"tlsVerify\":true,"
	"\"caFile\":\"/etc/ssl/ca.pem\"},"
	"\"initialDelaySeconds\":5,\"periodSeconds\":10,\"successThreshold\":1,"
	"\"failureThreshold\":3,\"timeoutMilliseconds\":250,"
	"\"source\":\"PROBE_SOURCE_API\",\"target\":\"probe//checkout\","
	"\"generation\":\"12\",\"createTime\":\"2026-11-26T14:12:32Z\","
	"\"updateTime\":\"2026-11-26T14:12:32.500Z\"}";

static const char probe_pretty[] =
	"{\n"
	"  \"name\": \"checkout\",\n"
	"  \"labels\": {\n"
	"    \"team\": \"shop\",\n"
	"    \"app.kubernetes.io/name\": \"checkout\"\n"
	"  },\n"
	"  \"httpGet\": {\n"
	"    \"host\": \"10.0.0.7\",\n"
	"    \"port\": 8443,\n"
	"    \"path\": \"/healthz\",\n"
	"    \"scheme\": \"HTTPS\",\n"
	"    \"httpHeaders\": [\n"
	"      {\n"
	"        \"name\": \"Host\",\n"
	"        \"value\": \"shop.example\"\n"
	"      },\n"
	"      {\n"
	"        \"name\": \"X-Probe\"\n"
	"      }\n"
	"    ],\n"
	"    \"tlsVerify\": true,\n"
	"    \"caFile\": \"/etc/ssl/ca.pem\"\n"
	"  },\n"
	"  \"initialDelaySeconds\": 5,\n"
	"  \"periodSeconds\": 10,\n"
	"  \"successThreshold\": 1,\n"
	"  \"failureThreshold\": 3,\n"
	"  \"timeoutMilliseconds\": 250,\n"
	"  \"source\": \"PROBE_SOURCE_API\",\n"
	"  \"target\": \"probe//checkout\",\n"
	"  \"generation\": \"12\",\n"
	"  \"createTime\": \"2026-11-26T14:12:32Z\",\n"
	"  \"updateTime\": \"2026-11-26T14:12:32.500Z\"\n"
	"}";

/* ---- HealthService: TargetHealth, nested Target, result, transition ---- */

static Kubemedic__V1__Target__LabelsEntry th_l1 =
	KUBEMEDIC__V1__TARGET__LABELS_ENTRY__INIT;
static Kubemedic__V1__Target__LabelsEntry *th_labels[] = {&th_l1};
static Google__Protobuf__Timestamp th_since = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
static Google__Protobuf__Timestamp th_start = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
static Google__Protobuf__Timestamp th_time = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
static Kubemedic__V1__Target th_target = KUBEMEDIC__V1__TARGET__INIT;
static Kubemedic__V1__ProbeResult th_result = KUBEMEDIC__V1__PROBE_RESULT__INIT;
static Kubemedic__V1__Transition th_trans = KUBEMEDIC__V1__TRANSITION__INIT;
static Kubemedic__V1__TargetHealth th = KUBEMEDIC__V1__TARGET_HEALTH__INIT;

static void build_target_health(void)
{
	th_l1.key = "app";
	th_l1.value = "web";
	th_since.seconds = 1700000000; /* 2023-11-14T22:13:20Z */
	th_since.nanos = 123456789;
	th_start.seconds = 1700000000;
	th_start.nanos = 1000; /* one microsecond: 6 digits */
	th_time.seconds = -1;  /* half a second before the epoch */
	th_time.nanos = 500000000;

	th_target.name = "prod-eu:pod/default/web-0";
	th_target.cluster = "prod-eu";
	th_target.kind = KUBEMEDIC__V1__TARGET_KIND__TARGET_KIND_POD;
	th_target.namespace_ = "default";
	th_target.object_name = "web-0";
	th_target.uid = "6f1c7a52-9a43-4b8e-bd0e-1f0c3c0e6a11";
	th_target.n_labels = N(th_labels);
	th_target.labels = th_labels;
	th_target.state = KUBEMEDIC__V1__HEALTH_STATE__HEALTH_STATE_UNHEALTHY;
	th_target.flapping = 1;
	th_target.state_since = &th_since;
	th_target.owner = "replicaset/default/web-5d8f";
	th_target.node = "worker-3";

	th_result.id = -9000000000LL; /* beyond 32 bits, negative */
	th_result.target = "prod-eu:pod/default/web-0";
	th_result.start_time = &th_start;
	th_result.duration_us = 1500;
	th_result.success = 0;
	th_result.error_class =
		KUBEMEDIC__V1__ERROR_CLASS__ERROR_CLASS_HTTP_STATUS;
	th_result.status_code = 503;
	th_result.message = "HTTP 503";

	th_trans.sequence = 42;
	th_trans.target = "prod-eu:pod/default/web-0";
	th_trans.time = &th_time;
	th_trans.from_state = KUBEMEDIC__V1__HEALTH_STATE__HEALTH_STATE_HEALTHY;
	th_trans.to_state = KUBEMEDIC__V1__HEALTH_STATE__HEALTH_STATE_UNHEALTHY;
	th_trans.cause = "3 consecutive failures (HTTP 503)";

	th.target = &th_target;
	th.last_result = &th_result;
	th.last_transition = &th_trans;
	th.consecutive = 3;
}

static const char th_compact[] =
	"{\"target\":{\"name\":\"prod-eu:pod/default/web-0\","
	"\"cluster\":\"prod-eu\",\"kind\":\"TARGET_KIND_POD\","
	"\"namespace\":\"default\",\"objectName\":\"web-0\","
	"\"uid\":\"6f1c7a52-9a43-4b8e-bd0e-1f0c3c0e6a11\","
	"\"labels\":{\"app\":\"web\"},\"state\":\"HEALTH_STATE_UNHEALTHY\","
	"\"flapping\":true,\"stateSince\":\"2023-11-14T22:13:20.123456789Z\","
	"\"owner\":\"replicaset/default/web-5d8f\",\"node\":\"worker-3\"},"
	"\"lastResult\":{\"id\":\"-9000000000\","
	"\"target\":\"prod-eu:pod/default/web-0\","
	"\"startTime\":\"2023-11-14T22:13:20.000001Z\",\"durationUs\":\"1500\","
	"\"errorClass\":\"ERROR_CLASS_HTTP_STATUS\",\"statusCode\":503,"
	"\"message\":\"HTTP 503\"},"
	"\"lastTransition\":{\"sequence\":\"42\","
	"\"target\":\"prod-eu:pod/default/web-0\","
	"\"time\":\"1969-12-31T23:59:59.500Z\","
	"\"fromState\":\"HEALTH_STATE_HEALTHY\","
	"\"toState\":\"HEALTH_STATE_UNHEALTHY\","
	"\"cause\":\"3 consecutive failures (HTTP 503)\"},"
	"\"consecutive\":3}";

/* ---- a ProbeResult message that needs escaping and has bad UTF-8 ------ */

/* Each ill-formed part becomes one U+FFFD per maximal subpart: a lone
 * continuation byte; C0 (never valid) then 80; ED A0 80 (a surrogate: ED,
 * A0, 80 each); F4 90 80 80 (above U+10FFFF: four); E2 82 cut short by '(';
 * F0 9F 98 cut short by the end. */
static const char esc_raw[] =
	"say \"hi\" \\ \b\f\n\r\t\x01\x1f\x7f/ "
	"\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF |"
	"\x80|\xC0\x80|\xED\xA0\x80|\xF4\x90\x80\x80|\xE2\x82(|\xF0\x9F\x98";
static Kubemedic__V1__ProbeResult esc = KUBEMEDIC__V1__PROBE_RESULT__INIT;

static void build_escaping(void)
{
	esc.target = "probe//exec";
	esc.error_class = 99; /* not in ErrorClass: printed as a number */
	esc.status_code = -1;
	esc.message = (char *)esc_raw;
}

static const char esc_compact[] =
	"{\"target\":\"probe//exec\",\"errorClass\":99,\"statusCode\":-1,"
	"\"message\":\"say \\\"hi\\\" \\\\ \\b\\f\\n\\r\\t\\u0001\\u001f\x7f/ "
	"\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF |" FFFD
	"|" FFFD FFFD "|" FFFD FFFD FFFD "|" FFFD FFFD FFFD FFFD "|" FFFD
	"(|" FFFD "\"}";

/* ---- reflection: bytes, oneofs, repeated int32 ------------------------- */

static uint8_t fdr_bin[] = {0x00, 0xFF, 0xFE};
static ProtobufCBinaryData fdr_protos[] = {
	{0, NULL},
	{1, (uint8_t *)"f"},
	{2, (uint8_t *)"fo"},
	{3, (uint8_t *)"foo"},
	{4, (uint8_t *)"foob"},
	{sizeof fdr_bin, fdr_bin},
};
static Grpc__Reflection__V1__FileDescriptorResponse fdr =
	GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;

static Grpc__Reflection__V1__ServerReflectionRequest rreq =
	GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
static Grpc__Reflection__V1__ErrorResponse rerr =
	GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
static Grpc__Reflection__V1__ServerReflectionResponse rresp =
	GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
static int32_t ext_numbers[] = {1, -2, INT32_MAX};
static Grpc__Reflection__V1__ExtensionNumberResponse rext =
	GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;

static void build_reflection(void)
{
	fdr.n_file_descriptor_proto = N(fdr_protos);
	fdr.file_descriptor_proto = fdr_protos;

	/* A oneof member set to its default is still printed. */
	rreq.message_request_case =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
	rreq.list_services = "";

	rerr.error_code = 5;
	rerr.error_message = "not found";
	rresp.valid_host = "h";
	rresp.original_request = &rreq;
	rresp.message_response_case =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
	rresp.error_response = &rerr;

	rext.base_type_name = "kubemedic.v1.Probe";
	rext.n_extension_number = N(ext_numbers);
	rext.extension_number = ext_numbers;
}

/* ---- Availability: a double, repeated messages, an unknown enum -------- */

static Kubemedic__V1__ActionEffect av_a1 = KUBEMEDIC__V1__ACTION_EFFECT__INIT;
static Kubemedic__V1__ActionEffect av_a2 = KUBEMEDIC__V1__ACTION_EFFECT__INIT;
static Kubemedic__V1__ActionEffect av_a3 = KUBEMEDIC__V1__ACTION_EFFECT__INIT;
static Kubemedic__V1__ActionEffect *av_actions[] = {&av_a1, &av_a2, &av_a3};
static Google__Protobuf__Timestamp av_start = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
static Google__Protobuf__Timestamp av_end = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
static Kubemedic__V1__Availability av = KUBEMEDIC__V1__AVAILABILITY__INIT;

static void build_availability(void)
{
	av_a1.action =
		KUBEMEDIC__V1__RECOVERY_ACTION__RECOVERY_ACTION_RESTART_POD;
	av_a1.attempts = 3;
	av_a1.verified = 2;
	av_a2.action = 99;
	/* av_a3 stays empty: an element prints even when all default */
	av_start.seconds = 1709164800; /* 2024-02-29T00:00:00Z, leap day */
	av_start.nanos = 10;
	av_end.seconds = 951782400; /* 2000-02-29T00:00:00Z */
	av_end.nanos = 120000000;

	av.target = "service/shop/cart";
	av.start_time = &av_start;
	av.end_time = &av_end;
	av.uptime_percent = 99.95;
	av.incidents = 2;
	av.mtbf_seconds = -1;
	av.n_actions = N(av_actions);
	av.actions = av_actions;
}

/* ---- Timestamps at the ends of their range ----------------------------- */

static Google__Protobuf__Timestamp ts_min = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
static Google__Protobuf__Timestamp ts_max = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
static Kubemedic__V1__QueryProbeHistoryRequest qph =
	KUBEMEDIC__V1__QUERY_PROBE_HISTORY_REQUEST__INIT;

static void build_ts_range(void)
{
	ts_min.seconds = -62135596800LL;
	ts_max.seconds = 253402300799LL;
	ts_max.nanos = 999999999;
	qph.target = "node//worker-3";
	qph.start_time = &ts_min;
	qph.end_time = &ts_max;
	qph.outcome = KUBEMEDIC__V1__OUTCOME__OUTCOME_FAILURE;
}

static Kubemedic__V1__ListProbesResponse empty =
	KUBEMEDIC__V1__LIST_PROBES_RESPONSE__INIT;

/* ---- test protos: every scalar type ------------------------------------ */

static float sc_fls[] = {1e20f, 1e-7f, FLT_MAX, 0.1f, NAN, -INFINITY};
static double sc_dbs[] = {
	NAN, INFINITY, -INFINITY, 0.1 + 0.2, 5e-324, 1e15, 123456789012345678.0,
	-0.0};
static uint64_t sc_u64s[] = {0, UINT64_MAX};
static Kmtest__Color sc_colors[] = {KMTEST__COLOR__COLOR_UNSPECIFIED,
				    KMTEST__COLOR__COLOR_RED, 7};
static protobuf_c_boolean sc_bs[] = {0, 1};
static char *sc_strs[] = {"", "a"};
static uint8_t sc_by[] = {0};
static Kmtest__Scalars sc = KMTEST__SCALARS__INIT;

static void build_scalars(void)
{
	sc.i32 = INT32_MIN;
	sc.i64 = INT64_MIN;
	sc.u32 = UINT32_MAX;
	sc.u64 = UINT64_MAX;
	sc.s32 = -1;
	sc.s64 = INT64_MAX;
	sc.f32 = 1;
	sc.f64 = 2;
	sc.sf32 = -3;
	sc.sf64 = -4;
	sc.fl = 0.1f;
	sc.db = -0.0; /* not the default: only +0.0 is */
	sc.b = 1;
	sc.str = "x";
	sc.by.len = sizeof sc_by;
	sc.by.data = sc_by;
	sc.color = KMTEST__COLOR__COLOR_RED;
	sc.n_fls = N(sc_fls);
	sc.fls = sc_fls;
	sc.n_dbs = N(sc_dbs);
	sc.dbs = sc_dbs;
	sc.n_u64s = N(sc_u64s);
	sc.u64s = sc_u64s;
	sc.n_colors = N(sc_colors);
	sc.colors = sc_colors;
	sc.n_bs = N(sc_bs);
	sc.bs = sc_bs;
	sc.n_strs = N(sc_strs);
	sc.strs = sc_strs;
}

static const char sc_compact[] =
	"{\"i32\":-2147483648,\"i64\":\"-9223372036854775808\","
	"\"u32\":4294967295,\"u64\":\"18446744073709551615\",\"s32\":-1,"
	"\"s64\":\"9223372036854775807\",\"f32\":1,\"f64\":\"2\",\"sf32\":-3,"
	"\"sf64\":\"-4\",\"fl\":0.1,\"db\":-0,\"b\":true,\"str\":\"x\","
	"\"by\":\"AA==\",\"color\":\"COLOR_RED\","
	"\"fls\":[1e+20,1e-07,3.4028235e+38,0.1,\"NaN\",\"-Infinity\"],"
	"\"dbs\":[\"NaN\",\"Infinity\",\"-Infinity\",0.30000000000000004,"
	"5e-324,1e+15,1.2345678901234568e+17,-0],"
	"\"u64s\":[\"0\",\"18446744073709551615\"],"
	"\"colors\":[\"COLOR_UNSPECIFIED\",\"COLOR_RED\",7],"
	"\"bs\":[false,true],\"strs\":[\"\",\"a\"]}";

/* ---- map key types, last entry wins, message values -------------------- */

static Kmtest__Maps__ByInt32Entry mp_i1 = KMTEST__MAPS__BY_INT32_ENTRY__INIT;
static Kmtest__Maps__ByInt32Entry mp_i2 = KMTEST__MAPS__BY_INT32_ENTRY__INIT;
static Kmtest__Maps__ByInt32Entry mp_i3 = KMTEST__MAPS__BY_INT32_ENTRY__INIT;
static Kmtest__Maps__ByInt32Entry *mp_i[] = {&mp_i1, &mp_i2, &mp_i3};
static Kmtest__Maps__ByInt64Entry mp_l1 = KMTEST__MAPS__BY_INT64_ENTRY__INIT;
static Kmtest__Maps__ByInt64Entry *mp_l[] = {&mp_l1};
static Kmtest__Maps__ByUint64Entry mp_u1 = KMTEST__MAPS__BY_UINT64_ENTRY__INIT;
static Kmtest__Maps__ByUint64Entry *mp_u[] = {&mp_u1};
static Kmtest__Maps__ByBoolEntry mp_b1 = KMTEST__MAPS__BY_BOOL_ENTRY__INIT;
static Kmtest__Maps__ByBoolEntry mp_b2 = KMTEST__MAPS__BY_BOOL_ENTRY__INIT;
static Kmtest__Maps__ByBoolEntry *mp_b[] = {&mp_b1, &mp_b2};
static Kmtest__Scalars mp_sv = KMTEST__SCALARS__INIT;
static Kmtest__Maps__ByStringEntry mp_s1 = KMTEST__MAPS__BY_STRING_ENTRY__INIT;
static Kmtest__Maps__ByStringEntry mp_s2 = KMTEST__MAPS__BY_STRING_ENTRY__INIT;
static Kmtest__Maps__ByStringEntry *mp_s[] = {&mp_s1, &mp_s2};
static Kmtest__Maps__BySint32Entry mp_z1 = KMTEST__MAPS__BY_SINT32_ENTRY__INIT;
static Kmtest__Maps__BySint32Entry *mp_z[] = {&mp_z1};
static Kmtest__Maps__ByFixed32Entry mp_f1 =
	KMTEST__MAPS__BY_FIXED32_ENTRY__INIT;
static Kmtest__Maps__ByFixed32Entry *mp_f[] = {&mp_f1};
static Kmtest__Maps mp = KMTEST__MAPS__INIT;

static void build_maps(void)
{
	mp_i1.key = -1;
	mp_i1.value = "neg";
	mp_i2.key = 2;
	mp_i2.value = "two";
	mp_i3.key = -1; /* overrides mp_i1, as on the wire */
	mp_i3.value = "again";
	mp_l1.key = INT64_MIN; /* value 0: map values print even when default */
	mp_u1.key = UINT64_MAX;
	mp_b1.key = 1;
	mp_b1.value = KMTEST__COLOR__COLOR_RED;
	mp_b2.key = 0;
	mp_s1.key = "a"; /* value NULL: an empty message */
	mp_sv.i32 = 1;
	mp_s2.key = "b\"";
	mp_s2.value = &mp_sv;
	mp_z1.key = -5; /* value: empty bytes */
	mp_f1.key = UINT32_MAX;
	mp_f1.value = 1.5;

	mp.n_by_int32 = N(mp_i);
	mp.by_int32 = mp_i;
	mp.n_by_int64 = N(mp_l);
	mp.by_int64 = mp_l;
	mp.n_by_uint64 = N(mp_u);
	mp.by_uint64 = mp_u;
	mp.n_by_bool = N(mp_b);
	mp.by_bool = mp_b;
	mp.n_by_string = N(mp_s);
	mp.by_string = mp_s;
	mp.n_by_sint32 = N(mp_z);
	mp.by_sint32 = mp_z;
	mp.n_by_fixed32 = N(mp_f);
	mp.by_fixed32 = mp_f;
}

static const char mp_compact[] =
	"{\"byInt32\":{\"2\":\"two\",\"-1\":\"again\"},"
	"\"byInt64\":{\"-9223372036854775808\":0},"
	"\"byUint64\":{\"18446744073709551615\":false},"
	"\"byBool\":{\"true\":\"COLOR_RED\",\"false\":\"COLOR_UNSPECIFIED\"},"
	"\"byString\":{\"a\":{},\"b\\\"\":{\"i32\":1}},"
	"\"bySint32\":{\"-5\":\"\"},"
	"\"byFixed32\":{\"4294967295\":1.5}}";

static const char mp_pretty[] = "{\n"
				"  \"byInt32\": {\n"
				"    \"2\": \"two\",\n"
				"    \"-1\": \"again\"\n"
				"  },\n"
				"  \"byInt64\": {\n"
				"    \"-9223372036854775808\": 0\n"
				"  },\n"
				"  \"byUint64\": {\n"
				"    \"18446744073709551615\": false\n"
				"  },\n"
				"  \"byBool\": {\n"
				"    \"true\": \"COLOR_RED\",\n"
				"    \"false\": \"COLOR_UNSPECIFIED\"\n"
				"  },\n"
				"  \"byString\": {\n"
				"    \"a\": {},\n"
				"    \"b\\\"\": {\n"
				"      \"i32\": 1\n"
				"    }\n"
				"  },\n"
				"  \"bySint32\": {\n"
				"    \"-5\": \"\"\n"
				"  },\n"
				"  \"byFixed32\": {\n"
				"    \"4294967295\": 1.5\n"
				"  }\n"
				"}";

/* A repeated message with key and value fields that is not a map entry. */
static Kmtest__Pair nm_p1 = KMTEST__PAIR__INIT;
static Kmtest__Pair *nm_pairs[] = {&nm_p1};
static Kmtest__NotAMap nm = KMTEST__NOT_AMAP__INIT;

/* ---- oneofs: set members print even at their default ------------------- */

static Kmtest__Choice ch_num = KMTEST__CHOICE__INIT;
static Kmtest__Choice ch_color = KMTEST__CHOICE__INIT;
static Kmtest__Choice ch_null = KMTEST__CHOICE__INIT;
static Kmtest__Scalars ch_empty_sc = KMTEST__SCALARS__INIT;
static Kmtest__Choice ch_msg = KMTEST__CHOICE__INIT;

static void build_other(void)
{
	nm_p1.key = "k";
	nm_p1.value = "v";
	nm.n_pairs = N(nm_pairs);
	nm.pairs = nm_pairs;

	ch_num.pick_case = KMTEST__CHOICE__PICK_NUMBER;
	ch_num.number = 0;
	ch_color.name = "c";
	ch_color.pick_case = KMTEST__CHOICE__PICK_COLOR;
	ch_color.color = KMTEST__COLOR__COLOR_UNSPECIFIED;
	ch_null.pick_case = KMTEST__CHOICE__PICK_NOTHING;
	ch_null.nothing = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
	ch_msg.pick_case = KMTEST__CHOICE__PICK_SCALARS;
	ch_msg.scalars = &ch_empty_sc;
}

/* ---- proto2: explicit presence ----------------------------------------- */

static Kmtest2__Legacy lg_next = KMTEST2__LEGACY__INIT;
static Kmtest2__Legacy lg = KMTEST2__LEGACY__INIT;

static void build_legacy(void)
{
	lg_next.id = 1;
	lg_next.name = "x";
	/* lg.id 0 is required, so printed; lg.name keeps its default pointer
	 * (unset); count is set to its default value, so printed. */
	lg.has_count = 1;
	lg.count = 7;
	lg.has_blob = 1;
	lg.next = &lg_next;
}

/* ---- the table ---------------------------------------------------------- */

static const struct km_json_sample samples[] = {
	{"probe", &probe.base, probe_compact, probe_pretty, NULL, NULL},
	{"target_health", &th.base, th_compact, NULL, NULL, NULL},
	{"probe_result_escaping", &esc.base, esc_compact, NULL, "message",
	 esc_raw},
	{"file_descriptor_response", &fdr.base,
	 "{\"fileDescriptorProto\":[\"\",\"Zg==\",\"Zm8=\",\"Zm9v\","
	 "\"Zm9vYg==\",\"AP/+\"]}",
	 NULL, NULL, NULL},
	{"reflection_oneof", &rresp.base,
	 "{\"validHost\":\"h\",\"originalRequest\":{\"listServices\":\"\"},"
	 "\"errorResponse\":{\"errorCode\":5,\"errorMessage\":\"not found\"}}",
	 NULL, NULL, NULL},
	{"repeated_int32", &rext.base,
	 "{\"baseTypeName\":\"kubemedic.v1.Probe\","
	 "\"extensionNumber\":[1,-2,2147483647]}",
	 "{\n"
	 "  \"baseTypeName\": \"kubemedic.v1.Probe\",\n"
	 "  \"extensionNumber\": [\n"
	 "    1,\n"
	 "    -2,\n"
	 "    2147483647\n"
	 "  ]\n"
	 "}",
	 NULL, NULL},
	{"availability", &av.base,
	 "{\"target\":\"service/shop/cart\","
	 "\"startTime\":\"2024-02-29T00:00:00.000000010Z\","
	 "\"endTime\":\"2000-02-29T00:00:00.120Z\",\"uptimePercent\":99.95,"
	 "\"incidents\":2,\"mtbfSeconds\":\"-1\",\"actions\":["
	 "{\"action\":\"RECOVERY_ACTION_RESTART_POD\",\"attempts\":3,"
	 "\"verified\":2},{\"action\":99},{}]}",
	 NULL, NULL, NULL},
	{"timestamp_range", &qph.base,
	 "{\"target\":\"node//worker-3\","
	 "\"startTime\":\"0001-01-01T00:00:00Z\","
	 "\"endTime\":\"9999-12-31T23:59:59.999999999Z\","
	 "\"outcome\":\"OUTCOME_FAILURE\"}",
	 NULL, NULL, NULL},
	{"empty", &empty.base, "{}", "{}", NULL, NULL},
	{"scalars", &sc.base, sc_compact, NULL, NULL, NULL},
	{"maps", &mp.base, mp_compact, mp_pretty, NULL, NULL},
	{"not_a_map", &nm.base, "{\"pairs\":[{\"key\":\"k\",\"value\":\"v\"}]}",
	 NULL, NULL, NULL},
	{"oneof_number_zero", &ch_num.base, "{\"number\":0}", NULL, NULL, NULL},
	{"oneof_enum_zero", &ch_color.base,
	 "{\"name\":\"c\",\"color\":\"COLOR_UNSPECIFIED\"}", NULL, NULL, NULL},
	{"oneof_null_value", &ch_null.base, "{\"nothing\":null}", NULL, NULL,
	 NULL},
	{"oneof_empty_message", &ch_msg.base, "{\"scalars\":{}}",
	 "{\n  \"scalars\": {}\n}", NULL, NULL},
	{"proto2_presence", &lg.base,
	 "{\"id\":0,\"count\":7,\"blob\":\"\",\"next\":{\"id\":1,\"name\":\"x\"}}",
	 NULL, NULL, NULL},
};

const struct km_json_sample *km_json_samples(size_t *n)
{
	static int built;

	if (!built) {
		build_probe();
		build_target_health();
		build_escaping();
		build_reflection();
		build_availability();
		build_ts_range();
		build_scalars();
		build_maps();
		build_other();
		build_legacy();
		built = 1;
	}
	*n = N(samples);
	return samples;
}
