/*
 * km_probe_spec: the kubelet's rules (timing, handlers, ports, schemes,
 * header and environment names), kubemedic's limits, the Kubernetes name
 * and label rules, and the messages in both field vocabularies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "km_probe.h"
#include "km_test.h"

static const struct km_field_ctx api = {KM_FIELDS_API, "probe"};
static const struct km_field_ctx yaml = {KM_FIELDS_YAML, "probes[3]"};

static struct km_error err;

/* rc must be KM_EINVAL with exactly this message. */
static void expect_msg(int rc, const char *want)
{
	if (rc != KM_EINVAL || strcmp(err.msg, want) != 0)
		fprintf(stderr, "rc %d, message\n  \"%s\"\nwant\n  \"%s\"\n",
			rc, err.msg, want);
	assert_int_equal(rc, KM_EINVAL);
	assert_int_equal(err.code, KM_EINVAL);
	assert_string_equal(err.msg, want);
	memset(&err, 0, sizeof err);
}

/* rc must be KM_EINVAL and the message must begin with prefix. */
static void expect_prefix(int rc, const char *prefix)
{
	if (rc != KM_EINVAL || strncmp(err.msg, prefix, strlen(prefix)) != 0)
		fprintf(stderr,
			"rc %d, message\n  \"%s\"\nwant prefix\n  "
			"\"%s\"\n",
			rc, err.msg, prefix);
	assert_int_equal(rc, KM_EINVAL);
	assert_int_equal(strncmp(err.msg, prefix, strlen(prefix)), 0);
	memset(&err, 0, sizeof err);
}

static int timing(const struct km_probe_timing *t,
		  const struct km_field_ctx *fc, struct km_probe *out)
{
	struct km_probe p = {0};
	int rc = km_probe_set_timing(&p, t, fc, &err);

	if (out)
		*out = p;
	return rc;
}

/* ---- timing ------------------------------------------------------------ */

static void test_timing_defaults(void **state)
{
	struct km_probe_timing t = {0};
	struct km_probe p;

	(void)state;
	assert_int_equal(timing(&t, &api, &p), 0);
	assert_int_equal(p.initial_delay_ms, 0);
	assert_int_equal(p.timeout_ms, 1000);
	assert_int_equal(p.period_ms, 10000);
	assert_int_equal(p.success_threshold, 1);
	assert_int_equal(p.failure_threshold, 3);

	/* Every value given. */
	t = (struct km_probe_timing){
		.initial_delay_seconds = 7,
		.timeout_seconds = 4,
		.period_seconds = 30,
		.success_threshold = 2,
		.failure_threshold = 9,
	};
	assert_int_equal(timing(&t, &api, &p), 0);
	assert_int_equal(p.initial_delay_ms, 7000);
	assert_int_equal(p.timeout_ms, 4000);
	assert_int_equal(p.period_ms, 30000);
	assert_int_equal(p.success_threshold, 2);
	assert_int_equal(p.failure_threshold, 9);

	/* Milliseconds in place of seconds. */
	t = (struct km_probe_timing){.period_milliseconds = 250,
				     .timeout_milliseconds = 100};
	assert_int_equal(timing(&t, &api, &p), 0);
	assert_int_equal(p.period_ms, 250);
	assert_int_equal(p.timeout_ms, 100);
	/* Period in ms, timeout in s and the other way round. */
	t = (struct km_probe_timing){.period_milliseconds = 1500,
				     .timeout_seconds = 1};
	assert_int_equal(timing(&t, &api, &p), 0);
	assert_int_equal(p.period_ms, 1500);
	assert_int_equal(p.timeout_ms, 1000);
	t = (struct km_probe_timing){.period_seconds = 2,
				     .timeout_milliseconds = 1};
	assert_int_equal(timing(&t, &api, &p), 0);
	assert_int_equal(p.period_ms, 2000);
	assert_int_equal(p.timeout_ms, 1);
}

static void test_timing_negative(void **state)
{
	static const struct {
		size_t off;
		const char *api, *yaml;
	} fields[] = {
#define F(api, yaml) {offsetof(struct km_probe_timing, api), #api, #yaml}
		F(initial_delay_seconds, initialDelaySeconds),
		F(timeout_seconds, timeoutSeconds),
		F(period_seconds, periodSeconds),
		F(success_threshold, successThreshold),
		F(failure_threshold, failureThreshold),
		F(period_milliseconds, periodMilliseconds),
		F(timeout_milliseconds, timeoutMilliseconds),
#undef F
	};
	char want[128];

	(void)state;
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		struct km_probe_timing t = {0};
		int64_t *v = (int64_t *)((char *)&t + fields[i].off);

		*v = -1;
		snprintf(want, sizeof want,
			 "probe.%s: must be greater than or "
			 "equal to 0 (got -1)",
			 fields[i].api);
		expect_msg(timing(&t, &api, NULL), want);
		*v = INT64_MIN;
		snprintf(want, sizeof want,
			 "probes[3].%s: must be greater than "
			 "or equal to 0 (got %lld)",
			 fields[i].yaml, (long long)INT64_MIN);
		expect_msg(timing(&t, &yaml, NULL), want);
	}
}

static void test_timing_both_units(void **state)
{
	struct km_probe_timing t = {.period_seconds = 1,
				    .period_milliseconds = 500};

	(void)state;
	expect_msg(timing(&t, &api, NULL),
		   "probe.period_milliseconds: give period_seconds or "
		   "period_milliseconds, not both");
	expect_msg(timing(&t, &yaml, NULL),
		   "probes[3].periodMilliseconds: give period_seconds or "
		   "period_milliseconds, not both");
	t = (struct km_probe_timing){.timeout_seconds = 1,
				     .timeout_milliseconds = 500};
	expect_msg(timing(&t, &api, NULL),
		   "probe.timeout_milliseconds: give timeout_seconds or "
		   "timeout_milliseconds, not both");
}

static void test_timing_bounds(void **state)
{
	struct km_probe_timing t;
	struct km_probe p;

	(void)state;
	/* kubemedic's shortest period: 100 ms. */
	t = (struct km_probe_timing){.period_milliseconds = 99};
	expect_msg(timing(&t, &api, NULL),
		   "probe.period_milliseconds: must be at least 100 "
		   "(kubemedic's shortest period), got 99");
	t.period_milliseconds = 100;
	assert_int_equal(timing(&t, &api, &p), 0);
	assert_int_equal(p.period_ms, 100);
	/* One day of period. */
	t = (struct km_probe_timing){.period_seconds = 86400};
	assert_int_equal(timing(&t, &api, &p), 0);
	assert_int_equal(p.period_ms, 86400000);
	t.period_seconds = 86401;
	expect_msg(timing(&t, &yaml, NULL), "probes[3].periodSeconds: must be "
					    "at most 86400 seconds (one day)");
	t = (struct km_probe_timing){.period_milliseconds = 86400000};
	assert_int_equal(timing(&t, &api, &p), 0);
	t.period_milliseconds = 86400001;
	expect_msg(timing(&t, &api, NULL),
		   "probe.period_milliseconds: must "
		   "be at most 86400 seconds (one day)");
	/* One hour of timeout. */
	t = (struct km_probe_timing){.timeout_seconds = 3600};
	assert_int_equal(timing(&t, &api, &p), 0);
	assert_int_equal(p.timeout_ms, 3600000);
	t.timeout_seconds = 3601;
	expect_msg(timing(&t, &api, NULL), "probe.timeout_seconds: must be at "
					   "most 3600 seconds (one hour)");
	t = (struct km_probe_timing){.timeout_milliseconds = 3600001};
	expect_msg(timing(&t, &yaml, NULL),
		   "probes[3].timeoutMilliseconds: "
		   "must be at most 3600 seconds (one hour)");
	/* One day of initial delay. */
	t = (struct km_probe_timing){.initial_delay_seconds = 86400};
	assert_int_equal(timing(&t, &api, &p), 0);
	assert_int_equal(p.initial_delay_ms, 86400000);
	t.initial_delay_seconds = 86401;
	expect_msg(timing(&t, &api, NULL), "probe.initial_delay_seconds: must "
					   "be at most 86400 (one day)");
	/* Thresholds. */
	t = (struct km_probe_timing){.success_threshold = 10000,
				     .failure_threshold = 10000};
	assert_int_equal(timing(&t, &api, &p), 0);
	assert_int_equal(p.success_threshold, 10000);
	assert_int_equal(p.failure_threshold, 10000);
	t.success_threshold = 10001;
	expect_msg(timing(&t, &api, NULL), "probe.success_threshold: must be "
					   "at most 10000");
	t.success_threshold = 1;
	t.failure_threshold = 10001;
	expect_msg(timing(&t, &yaml, NULL), "probes[3].failureThreshold: must "
					    "be at most 10000");
}

/* Seconds far beyond the bounds are refused, not multiplied into an
 * overflow: INT64_MAX / 1000 + 1 seconds once wrapped to a negative period
 * that passed every check (and was undefined behaviour). */
static void test_timing_overflow(void **state)
{
	static const int64_t huge[] = {
		INT64_MAX / 1000 + 1,
		INT64_MAX / 1000 + 7,
		INT64_MAX / 2,
		INT64_MAX,
	};
	struct km_probe_timing t;
	struct km_probe p;

	(void)state;
	for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		t = (struct km_probe_timing){.period_seconds = huge[i]};
		expect_msg(timing(&t, &api, &p),
			   "probe.period_seconds: must be "
			   "at most 86400 seconds (one day)");
		t = (struct km_probe_timing){.timeout_seconds = huge[i]};
		expect_msg(timing(&t, &api, &p),
			   "probe.timeout_seconds: must "
			   "be at most 3600 seconds (one hour)");
		t = (struct km_probe_timing){.initial_delay_seconds = huge[i]};
		expect_msg(timing(&t, &yaml, &p),
			   "probes[3].initialDelaySeconds: "
			   "must be at most 86400 (one day)");
		t = (struct km_probe_timing){.period_milliseconds = huge[i]};
		expect_msg(timing(&t, &api, &p),
			   "probe.period_milliseconds: "
			   "must be at most 86400 seconds (one day)");
		t = (struct km_probe_timing){.timeout_milliseconds = huge[i]};
		expect_msg(timing(&t, &api, &p),
			   "probe.timeout_milliseconds: "
			   "must be at most 3600 seconds (one hour)");
	}
}

/* A refused timing leaves the probe alone. */
static void test_timing_atomic(void **state)
{
	struct km_probe p = {.period_ms = 1234, .timeout_ms = 77};
	struct km_probe_timing t = {.period_seconds = 5,
				    .failure_threshold = 20000};

	(void)state;
	assert_int_equal(km_probe_set_timing(&p, &t, &api, NULL), KM_EINVAL);
	assert_int_equal(p.period_ms, 1234);
	assert_int_equal(p.timeout_ms, 77);
}

/* km_probe_get_timing is the inverse of km_probe_set_timing: what it
 * returns sets the same probe again, in whole seconds where it can. */
static void test_get_timing(void **state)
{
	static const struct km_probe_timing cases[] = {
		{0},
		{.initial_delay_seconds = 5,
		 .timeout_seconds = 2,
		 .period_seconds = 7,
		 .success_threshold = 2,
		 .failure_threshold = 4},
		{.period_milliseconds = 250, .timeout_milliseconds = 100},
		{.period_milliseconds = 1500, .timeout_milliseconds = 999},
		{.period_seconds = 86400,
		 .timeout_seconds = 3600,
		 .initial_delay_seconds = 86400,
		 .success_threshold = 10000,
		 .failure_threshold = 10000},
		{.period_milliseconds = 100, .timeout_milliseconds = 1},
	};
	struct km_probe_timing got, again;
	struct km_probe p, q;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(timing(&cases[i], &api, &p), 0);
		km_probe_get_timing(&p, &got);
		assert_int_equal(timing(&got, &api, &q), 0);
		assert_int_equal(q.initial_delay_ms, p.initial_delay_ms);
		assert_int_equal(q.timeout_ms, p.timeout_ms);
		assert_int_equal(q.period_ms, p.period_ms);
		assert_int_equal(q.success_threshold, p.success_threshold);
		assert_int_equal(q.failure_threshold, p.failure_threshold);
		km_probe_get_timing(&q, &again);
		assert_memory_equal(&again, &got, sizeof got);
	}

	/* The defaults come back as the values they stand for. */
	assert_int_equal(timing(&cases[0], &api, &p), 0);
	km_probe_get_timing(&p, &got);
	assert_int_equal(got.period_seconds, 10);
	assert_int_equal(got.timeout_seconds, 1);
	assert_int_equal(got.success_threshold, 1);
	assert_int_equal(got.failure_threshold, 3);
	assert_int_equal(got.initial_delay_seconds, 0);
	assert_int_equal(got.period_milliseconds, 0);
	assert_int_equal(got.timeout_milliseconds, 0);

	/* Milliseconds only where seconds would lose something. */
	p = (struct km_probe){.period_ms = 2000, .timeout_ms = 1500};
	km_probe_get_timing(&p, &got);
	assert_int_equal(got.period_seconds, 2);
	assert_int_equal(got.period_milliseconds, 0);
	assert_int_equal(got.timeout_seconds, 0);
	assert_int_equal(got.timeout_milliseconds, 1500);
}

/* ---- schemes and handler counts ---------------------------------------- */

static void test_scheme(void **state)
{
	bool https = true;

	(void)state;
	assert_int_equal(km_probe_parse_scheme(NULL, &https, &api, &err), 0);
	assert_false(https);
	https = true;
	assert_int_equal(km_probe_parse_scheme("", &https, &api, &err), 0);
	assert_false(https);
	https = true;
	assert_int_equal(km_probe_parse_scheme("HTTP", &https, &api, &err), 0);
	assert_false(https);
	assert_int_equal(km_probe_parse_scheme("HTTPS", &https, &api, &err), 0);
	assert_true(https);
	/* Spelled exactly as the kubelet spells them. */
	expect_msg(km_probe_parse_scheme("https", &https, &api, &err),
		   "probe.http_get.scheme: Unsupported value: \"https\": "
		   "supported values: \"HTTP\", \"HTTPS\"");
	expect_msg(km_probe_parse_scheme("FTP", &https, &yaml, &err),
		   "probes[3].httpGet.scheme: Unsupported value: \"FTP\": "
		   "supported values: \"HTTP\", \"HTTPS\"");
	expect_prefix(km_probe_parse_scheme("HTTP ", &https, &api, &err),
		      "probe.http_get.scheme: Unsupported value: \"HTTP \"");
}

static void test_handler_count(void **state)
{
	struct km_field_ctx bare = {KM_FIELDS_API, ""};
	struct km_field_ctx null_prefix = {KM_FIELDS_YAML, NULL};

	(void)state;
	assert_int_equal(km_probe_handler_count_error(1, &api, &err), 0);
	expect_msg(km_probe_handler_count_error(0, &api, &err),
		   "probe: must specify a handler type (one of http_get, "
		   "tcp_socket, grpc, exec, file)");
	expect_msg(km_probe_handler_count_error(0, &yaml, &err),
		   "probes[3]: must specify a handler type (one of httpGet, "
		   "tcpSocket, grpc, exec, file)");
	expect_msg(km_probe_handler_count_error(2, &api, &err),
		   "probe: may not specify more than 1 handler type");
	expect_msg(km_probe_handler_count_error(5, &yaml, &err),
		   "probes[3]: may not specify more than 1 handler type");
	expect_msg(km_probe_handler_count_error(2, &bare, &err),
		   ": may not specify more than 1 handler type");
	expect_msg(km_probe_handler_count_error(2, &null_prefix, &err),
		   ": may not specify more than 1 handler type");
	/* A NULL error is allowed: the code alone. */
	assert_int_equal(km_probe_handler_count_error(0, &api, NULL),
			 KM_EINVAL);
}

/* ---- names and labels -------------------------------------------------- */

static void test_dns1123(void **state)
{
	static const char *const good[] = {
		"a",       "0",        "web",           "web-0",  "a.b",
		"a-b.c-d", "x1.y2.z3", "checkout-http", "9lives",
	};
	static const char *const bad[] = {
		"",    "A",    "Web",  "-a",  "a-",  ".a", "a.",  "a..b",
		"a_b", "a.-b", "a-.b", "a b", "a/b", "ä",  "a:b",
	};
	char s[300];

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		if (!km_is_dns1123_subdomain(good[i]))
			fprintf(stderr, "refused \"%s\"\n", good[i]);
		assert_true(km_is_dns1123_subdomain(good[i]));
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (km_is_dns1123_subdomain(bad[i]))
			fprintf(stderr, "accepted \"%s\"\n", bad[i]);
		assert_false(km_is_dns1123_subdomain(bad[i]));
	}
	memset(s, 'a', 253);
	s[253] = '\0';
	assert_true(km_is_dns1123_subdomain(s));
	s[253] = 'a';
	s[254] = '\0';
	assert_false(km_is_dns1123_subdomain(s));
}

static void test_label_rules(void **state)
{
	char s[300];

	(void)state;
	/* Keys: [prefix/]name. */
	assert_null(km_label_key_error("team"));
	assert_null(km_label_key_error("A"));
	assert_null(km_label_key_error("a_b.c-d"));
	assert_null(km_label_key_error("app.kubernetes.io/name"));
	assert_null(km_label_key_error("example.com/Team_1"));
	assert_string_equal(km_label_key_error(""), "must not be empty");
	assert_string_equal(km_label_key_error("-a"),
			    "must begin and end with a letter or digit");
	assert_string_equal(km_label_key_error("a_"),
			    "must begin and end with a letter or digit");
	assert_string_equal(km_label_key_error("a b"),
			    "may hold only letters, digits, '-', '_' and '.'");
	assert_string_equal(km_label_key_error("é"),
			    "must begin and end with a letter or digit");
	assert_string_equal(km_label_key_error("/a"),
			    "prefix must be a DNS subdomain of 1 to 253 "
			    "characters");
	assert_string_equal(km_label_key_error("Example.com/a"),
			    "prefix must be a lower-case DNS subdomain");
	assert_string_equal(km_label_key_error("example.com/"),
			    "must not be empty");
	assert_non_null(km_label_key_error("a/b/c"));
	memset(s, 'a', 63);
	s[63] = '\0';
	assert_null(km_label_key_error(s));
	s[63] = 'a';
	s[64] = '\0';
	assert_string_equal(km_label_key_error(s),
			    "must be no more than 63 characters");
	/* A 253-character prefix is the longest. */
	memset(s, 'p', 253);
	strcpy(s + 253, "/n");
	assert_null(km_label_key_error(s));
	memset(s, 'p', 254);
	strcpy(s + 254, "/n");
	assert_string_equal(km_label_key_error(s),
			    "prefix must be a DNS subdomain of 1 to 253 "
			    "characters");

	/* Values: like a key's name part, but may be empty. */
	assert_null(km_label_value_error(""));
	assert_null(km_label_value_error("shop"));
	assert_null(km_label_value_error("v1.2_3-rc"));
	assert_string_equal(km_label_value_error("-x"),
			    "must begin and end with a letter or digit");
	assert_string_equal(km_label_value_error("a/b"),
			    "may hold only letters, digits, '-', '_' and '.'");
	memset(s, 'v', 64);
	s[64] = '\0';
	assert_string_equal(km_label_value_error(s),
			    "must be no more than 63 characters");
}

/* ---- km_probe_validate ------------------------------------------------- */

static struct km_probe base_probe(enum km_probe_type type)
{
	static const char *argv[] = {"/bin/true", NULL};
	struct km_probe p = {.name = "web", .type = type};

	switch (type) {
	case KM_PROBE_HTTP:
	case KM_PROBE_TCP:
	case KM_PROBE_GRPC:
		p.host = "127.0.0.1";
		p.port = 8080;
		break;
	case KM_PROBE_EXEC:
		p.argv = argv;
		p.argc = 1;
		break;
	case KM_PROBE_FILE: p.path = "/run/heartbeat"; break;
	}
	return p;
}

static int validate(const struct km_probe *p, const struct km_field_ctx *fc)
{
	return km_probe_validate(p, fc, &err);
}

static void test_validate_ok(void **state)
{
	static struct km_kv labels[] = {{"team", "shop"},
					{"app.kubernetes.io/name", ""}};
	static struct km_kv headers[] = {{"X-Custom", "a\tb"}};
	static struct km_kv env[] = {{"MODE", "strict"}};

	(void)state;
	for (int t = KM_PROBE_HTTP; t <= KM_PROBE_FILE; t++) {
		struct km_probe p = base_probe((enum km_probe_type)t);

		assert_int_equal(validate(&p, &api), 0);
		p.labels = labels;
		p.n_labels = 2;
		assert_int_equal(validate(&p, &yaml), 0);
	}
	{
		struct km_probe p = base_probe(KM_PROBE_HTTP);

		p.path = "/healthz?x=1";
		p.https = true;
		p.tls_verify = true;
		p.ca_file = "/etc/ssl/ca.pem";
		p.headers = headers;
		p.n_headers = 1;
		p.host = "shop.example.com";
		assert_int_equal(validate(&p, &api), 0);
		p.path = "";
		assert_int_equal(validate(&p, &api), 0);
	}
	{
		struct km_probe p = base_probe(KM_PROBE_EXEC);

		p.env = env;
		p.n_env = 1;
		p.workdir = "/srv";
		assert_int_equal(validate(&p, &api), 0);
	}
	{
		struct km_probe p = base_probe(KM_PROBE_GRPC);

		p.service = "shop.v1.Cart";
		assert_int_equal(validate(&p, &api), 0);
	}
}

static void test_validate_name_labels(void **state)
{
	struct km_probe p = base_probe(KM_PROBE_TCP);
	struct km_kv labels[KM_PROBE_MAX_LABELS + 1];
	char keys[KM_PROBE_MAX_LABELS + 1][8];

	(void)state;
	p.name = NULL;
	expect_msg(validate(&p, &api), "probe.name: Required value");
	p.name = "";
	expect_msg(validate(&p, &yaml), "probes[3].name: Required value");
	p.name = "Web_1";
	expect_prefix(validate(&p, &api),
		      "probe.name: Invalid value: "
		      "\"Web_1\": a lowercase RFC 1123 subdomain");
	p.name = "web";

	labels[0] = (struct km_kv){"-bad", "x"};
	p.labels = labels;
	p.n_labels = 1;
	expect_msg(validate(&p, &api),
		   "probe.labels: Invalid value: \"-bad\": "
		   "label key must begin and end with a letter or digit");
	labels[0] = (struct km_kv){"ok", "bad value"};
	expect_msg(validate(&p, &yaml),
		   "probes[3].labels: Invalid value: "
		   "\"bad value\": label value may hold only letters, digits, "
		   "'-', '_' and '.'");
	for (size_t i = 0; i <= KM_PROBE_MAX_LABELS; i++) {
		snprintf(keys[i], sizeof keys[i], "k%zu", i);
		labels[i] = (struct km_kv){keys[i], "v"};
	}
	p.n_labels = KM_PROBE_MAX_LABELS;
	assert_int_equal(validate(&p, &api), 0);
	p.n_labels = KM_PROBE_MAX_LABELS + 1;
	expect_msg(validate(&p, &api), "probe.labels: Too many: 65: must have "
				       "at most 64 labels");

	/* A key given twice is refused, named (the API's map could carry
	 * it; the config file refuses it earlier, with its line). */
	labels[KM_PROBE_MAX_LABELS - 1].key = "k17";
	p.n_labels = KM_PROBE_MAX_LABELS;
	expect_msg(validate(&p, &api),
		   "probe.labels: Duplicate value: \"k17\": a label key may "
		   "be given once");
	labels[1] = (struct km_kv){"k0", "other"};
	expect_msg(validate(&p, &yaml),
		   "probes[3].labels: Duplicate value: \"k0\": a label key "
		   "may be given once");
}

static void test_validate_host_port(void **state)
{
	static const struct {
		enum km_probe_type type;
		const char *api, *yaml;
	} kinds[] = {
		{KM_PROBE_HTTP, "http_get", "httpGet"},
		{KM_PROBE_TCP, "tcp_socket", "tcpSocket"},
		{KM_PROBE_GRPC, "grpc", "grpc"},
	};
	static const char *const bad_hosts[] = {
		"a b", "a/b", "a?b", "a#b", "user@host", "a\nb", "\x7f",
	};
	char want[256], longhost[300];

	(void)state;
	memset(longhost, 'h', 254);
	longhost[254] = '\0';
	for (size_t k = 0; k < 3; k++) {
		struct km_probe p = base_probe(kinds[k].type);

		p.host = NULL;
		snprintf(want, sizeof want,
			 "probe.%s.host: Required value: "
			 "kubemedic probes run outside the pod, so say which "
			 "host to reach (an IP address or a DNS name)",
			 kinds[k].api);
		expect_msg(validate(&p, &api), want);
		p.host = "";
		snprintf(want, sizeof want, "probes[3].%s.host: Required value",
			 kinds[k].yaml);
		expect_prefix(validate(&p, &yaml), want);
		for (size_t i = 0; i < sizeof bad_hosts / sizeof *bad_hosts;
		     i++) {
			p.host = bad_hosts[i];
			snprintf(want, sizeof want,
				 "probe.%s.host: Invalid "
				 "value: ",
				 kinds[k].api);
			expect_prefix(validate(&p, &api), want);
		}
		p.host = longhost;
		expect_prefix(validate(&p, &api), want);
		longhost[253] = '\0';
		assert_int_equal(validate(&p, &api), 0);
		longhost[253] = 'h';
		p.host = "::1";
		assert_int_equal(validate(&p, &api), 0);

		p.port = 0;
		snprintf(want, sizeof want,
			 "probe.%s.port: Invalid value: 0: "
			 "must be between 1 and 65535, inclusive",
			 kinds[k].api);
		expect_msg(validate(&p, &api), want);
		p.port = -1;
		expect_prefix(validate(&p, &api), "probe.");
		p.port = 65536;
		snprintf(want, sizeof want,
			 "probes[3].%s.port: Invalid value: "
			 "65536: must be between 1 and 65535, inclusive",
			 kinds[k].yaml);
		expect_msg(validate(&p, &yaml), want);
		p.port = 1;
		assert_int_equal(validate(&p, &api), 0);
		p.port = 65535;
		assert_int_equal(validate(&p, &api), 0);
	}
}

static void test_validate_http(void **state)
{
	static const char *const good_names[] = {
		"X-Custom", "a", "Accept-Encoding", "x_y.z", "!#$%&'*+-.^_`|~9",
	};
	static const char *const bad_names[] = {
		"", "Bad Header", "a:b", "a(b)", "é", "a\"b", "a/b", "a\tb",
	};
	struct km_probe p = base_probe(KM_PROBE_HTTP);
	struct km_kv h[KM_PROBE_MAX_HEADERS + 1];

	(void)state;
	/* Path. */
	p.path = "healthz";
	expect_msg(validate(&p, &api),
		   "probe.http_get.path: Invalid value: "
		   "\"healthz\": must be an absolute URL path without spaces");
	p.path = "/a b";
	expect_prefix(validate(&p, &yaml), "probes[3].httpGet.path: Invalid "
					   "value: \"/a b\"");
	p.path = NULL;
	assert_int_equal(validate(&p, &api), 0);

	/* Header names are HTTP tokens; values have no control bytes. */
	p.headers = h;
	p.n_headers = 1;
	for (size_t i = 0; i < sizeof good_names / sizeof *good_names; i++) {
		h[0] = (struct km_kv){good_names[i], "v"};
		assert_int_equal(validate(&p, &api), 0);
	}
	for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
		h[0] = (struct km_kv){bad_names[i], "v"};
		expect_prefix(validate(&p, &api), "probe.http_get.http_headers"
						  "[0].name: Invalid value: ");
	}
	h[0] = (struct km_kv){"Bad Header", "v"};
	expect_msg(validate(&p, &yaml),
		   "probes[3].httpGet.httpHeaders[0].name: "
		   "Invalid value: \"Bad Header\": a valid HTTP header must "
		   "consist of alphanumeric characters or one of "
		   "!#$%&'*+-.^_`|~");
	h[0] = (struct km_kv){"X", "a\r\nInjected: yes"};
	expect_msg(validate(&p, &yaml),
		   "probes[3].httpGet.httpHeaders[0].value: "
		   "must not hold control characters");
	h[0] = (struct km_kv){"X", "tab\tis fine"};
	assert_int_equal(validate(&p, &api), 0);
	for (size_t i = 0; i <= KM_PROBE_MAX_HEADERS; i++)
		h[i] = (struct km_kv){"X", "v"};
	p.n_headers = KM_PROBE_MAX_HEADERS;
	assert_int_equal(validate(&p, &api), 0);
	p.n_headers = KM_PROBE_MAX_HEADERS + 1;
	expect_msg(validate(&p, &api), "probe.http_get.http_headers: Too many: "
				       "65: must have at most 64 items");
	p.n_headers = 0;

	/* TLS settings only with HTTPS. */
	p.tls_verify = true;
	expect_msg(validate(&p, &api),
		   "probe.http_get.tls_verify: applies only "
		   "to scheme HTTPS");
	p.tls_verify = false;
	p.ca_file = "/etc/ca.pem";
	expect_msg(validate(&p, &yaml), "probes[3].httpGet.tlsVerify: applies "
					"only to scheme HTTPS");
	p.https = true;
	assert_int_equal(validate(&p, &api), 0);
	p.ca_file = "ca.pem";
	expect_msg(validate(&p, &yaml),
		   "probes[3].httpGet.caFile: Invalid "
		   "value: \"ca.pem\": must be an absolute path");
	p.ca_file = "";
	assert_int_equal(validate(&p, &api), 0);
}

static void test_validate_grpc(void **state)
{
	struct km_probe p = base_probe(KM_PROBE_GRPC);
	char service[1100];

	(void)state;
	memset(service, 's', 1024);
	service[1024] = '\0';
	p.service = service;
	assert_int_equal(validate(&p, &api), 0);
	service[1024] = 's';
	service[1025] = '\0';
	expect_msg(validate(&p, &api), "probe.grpc.service: must be at most "
				       "1024 printable characters");
	p.service = "a\nb";
	expect_msg(validate(&p, &yaml), "probes[3].grpc.service: must be at "
					"most 1024 printable characters");
	p.service = "";
	assert_int_equal(validate(&p, &api), 0);
}

static void test_validate_exec(void **state)
{
	static const char *const good_env[] = {
		"A", "_a", "a.b-c", "-x", "PATH", "x9",
	};
	static const char *const bad_env[] = {
		"", "1A", "A=B", "A B", "é", "a:b",
	};
	struct km_probe p = base_probe(KM_PROBE_EXEC);
	const char *argv[KM_PROBE_MAX_ARGS + 2];
	const char *empty[] = {"", NULL};
	struct km_kv env[KM_PROBE_MAX_ENV + 1];

	(void)state;
	p.argc = 0;
	expect_msg(validate(&p, &api),
		   "probe.exec.command: Required value: the "
		   "program to run, then its arguments (no shell)");
	p.argv = empty;
	p.argc = 1;
	expect_prefix(validate(&p, &yaml), "probes[3].exec.command: Required "
					   "value");
	for (size_t i = 0; i <= KM_PROBE_MAX_ARGS; i++)
		argv[i] = "x";
	argv[KM_PROBE_MAX_ARGS + 1] = NULL;
	p.argv = argv;
	p.argc = KM_PROBE_MAX_ARGS;
	assert_int_equal(validate(&p, &api), 0);
	p.argc = KM_PROBE_MAX_ARGS + 1;
	expect_msg(validate(&p, &api),
		   "probe.exec.command: Too many: 257: must "
		   "have at most 256 items");
	p.argc = 1;

	p.env = env;
	p.n_env = 1;
	for (size_t i = 0; i < sizeof good_env / sizeof *good_env; i++) {
		env[0] = (struct km_kv){good_env[i], "v"};
		assert_int_equal(validate(&p, &api), 0);
	}
	for (size_t i = 0; i < sizeof bad_env / sizeof *bad_env; i++) {
		env[0] = (struct km_kv){bad_env[i], "v"};
		expect_prefix(validate(&p, &api), "probe.exec.env[0].name: "
						  "Invalid value: ");
	}
	env[0] = (struct km_kv){"1A", "v"};
	expect_msg(validate(&p, &yaml),
		   "probes[3].exec.env[0].name: Invalid "
		   "value: \"1A\": a valid environment variable name must "
		   "consist of letters, digits, '_', '-' or '.', and must not "
		   "start with a digit");
	env[0] = (struct km_kv){"A", "bell\a"};
	expect_msg(validate(&p, &api), "probe.exec.env[0].value: must not hold "
				       "control characters");
	for (size_t i = 0; i <= KM_PROBE_MAX_ENV; i++)
		env[i] = (struct km_kv){"A", "v"};
	p.n_env = KM_PROBE_MAX_ENV + 1;
	expect_msg(validate(&p, &api), "probe.exec.env: Too many: 257: must "
				       "have at most 256 items");
	p.n_env = 0;

	p.workdir = "srv";
	expect_msg(validate(&p, &yaml),
		   "probes[3].exec.workingDir: Invalid "
		   "value: \"srv\": must be an absolute path");
	p.workdir = "/srv\n";
	expect_msg(validate(&p, &api), "probe.exec.working_dir: must not hold "
				       "control characters");
	p.workdir = "";
	assert_int_equal(validate(&p, &api), 0);
}

static void test_validate_file(void **state)
{
	struct km_probe p = base_probe(KM_PROBE_FILE);

	(void)state;
	p.path = NULL;
	expect_msg(validate(&p, &api), "probe.file.path: Required value");
	p.path = "";
	expect_msg(validate(&p, &yaml), "probes[3].file.path: Required value");
	p.path = "tmp/beat";
	expect_msg(validate(&p, &yaml),
		   "probes[3].file.path: Invalid value: "
		   "\"tmp/beat\": must be an absolute path");
	p.path = "/tmp/be\x01at";
	expect_msg(validate(&p, &api), "probe.file.path: must not hold control "
				       "characters");
	p.path = "/tmp/beat";
	p.min_size = -1;
	expect_msg(validate(&p, &api), "probe.file.min_size: must be greater "
				       "than or equal to 0");
	p.min_size = 0;
	p.max_age_s = -1;
	expect_msg(validate(&p, &yaml), "probes[3].file.maxAgeSeconds: must be "
					"greater than or equal to 0");
	p.max_age_s = 0;
	p.min_size = INT64_MAX;
	assert_int_equal(validate(&p, &api), 0);
}

static void test_validate_no_type(void **state)
{
	struct km_probe p = {.name = "web"};

	(void)state;
	expect_prefix(validate(&p, &api), "probe: must specify a handler type");
	p.type = (enum km_probe_type)99;
	expect_prefix(validate(&p, &yaml), "probes[3]: must specify a handler "
					   "type");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timing_defaults),
		cmocka_unit_test(test_timing_negative),
		cmocka_unit_test(test_timing_both_units),
		cmocka_unit_test(test_timing_bounds),
		cmocka_unit_test(test_timing_overflow),
		cmocka_unit_test(test_timing_atomic),
		cmocka_unit_test(test_get_timing),
		cmocka_unit_test(test_scheme),
		cmocka_unit_test(test_handler_count),
		cmocka_unit_test(test_dns1123),
		cmocka_unit_test(test_label_rules),
		cmocka_unit_test(test_validate_ok),
		cmocka_unit_test(test_validate_name_labels),
		cmocka_unit_test(test_validate_host_port),
		cmocka_unit_test(test_validate_http),
		cmocka_unit_test(test_validate_grpc),
		cmocka_unit_test(test_validate_exec),
		cmocka_unit_test(test_validate_file),
		cmocka_unit_test(test_validate_no_type),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
