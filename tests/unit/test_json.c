/*
 * km_json: exact output for API messages and the test protos (the fixtures
 * in json_fixtures.c), the errors, and the FILE * variant. check_json.py
 * parses the same output with Python's json module.
 */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "json_fixtures.h"
#include "json_test.pb-c.h"
#include "km_arena.h"
#include "km_json.h"
#include "km_test.h"
#include "kubemedic/v1/health.pb-c.h"
#include "kubemedic/v1/probe.pb-c.h"

static char *to_string(const ProtobufCMessage *m, unsigned flags)
{
	struct km_error err = {0};
	char *s = NULL;
	size_t len = 0;
	int rc = km_json_to_string(m, flags, &s, &len, &err);

	if (rc)
		fail_msg("km_json_to_string: %d %s", rc, err.msg);
	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	return s;
}

static void test_samples(void **state)
{
	size_t n;
	const struct km_json_sample *s = km_json_samples(&n);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		char *got = to_string(s[i].msg, 0);

		if (strcmp(got, s[i].compact) != 0)
			fail_msg("%s:\n got  %s\n want %s", s[i].name, got,
				 s[i].compact);
		free(got);
		if (!s[i].pretty)
			continue;
		got = to_string(s[i].msg, KM_JSON_PRETTY);
		if (strcmp(got, s[i].pretty) != 0)
			fail_msg("%s pretty:\n got\n%s\n want\n%s", s[i].name,
				 got, s[i].pretty);
		free(got);
	}
}

/* Every field present in the struct but at its proto3 default: nothing. */
static void test_defaults_omitted(void **state)
{
	Kubemedic__V1__Target t = KUBEMEDIC__V1__TARGET__INIT;
	Kubemedic__V1__Target__LabelsEntry *none[1] = {NULL};
	char *got;

	(void)state;
	t.name = "";     /* a string of our own, not protobuf_c_empty_string */
	t.labels = none; /* an array, but no elements */
	t.kind = KUBEMEDIC__V1__TARGET_KIND__TARGET_KIND_UNSPECIFIED;
	t.flapping = 0;
	got = to_string(&t.base, 0);
	assert_string_equal(got, "{}");
	free(got);
}

/* A oneof member whose pointer is NULL is still the chosen member. */
static void test_oneof_null_members(void **state)
{
	Kmtest__Choice c = KMTEST__CHOICE__INIT;
	char *got;

	(void)state;
	c.pick_case = KMTEST__CHOICE__PICK_TEXT;
	c.text = NULL;
	got = to_string(&c.base, 0);
	assert_string_equal(got, "{\"text\":\"\"}");
	free(got);
	c.pick_case = KMTEST__CHOICE__PICK_SCALARS;
	c.scalars = NULL;
	got = to_string(&c.base, 0);
	assert_string_equal(got, "{\"scalars\":{}}");
	free(got);
}

static void expect_einval(const ProtobufCMessage *m, const char *msg)
{
	struct km_error err = {0};
	char *s = (char *)"not touched";
	size_t len = 99;
	int rc = km_json_to_string(m, KM_JSON_PRETTY, &s, &len, &err);

	assert_int_equal(rc, KM_EINVAL);
	assert_int_equal(err.code, KM_EINVAL);
	assert_null(s);
	assert_int_equal(len, 0);
	if (strcmp(err.msg, msg) != 0)
		fail_msg("message:\n got  %s\n want %s", err.msg, msg);
}

static void test_timestamp_out_of_range(void **state)
{
	Kubemedic__V1__Probe p = KUBEMEDIC__V1__PROBE__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

	(void)state;
	p.name = "p";
	p.create_time = &ts;
	ts.seconds = 253402300800LL; /* 10000-01-01T00:00:00Z */
	expect_einval(&p.base, "createTime: timestamp seconds 253402300800 out "
			       "of range 0001-01-01..9999-12-31");
	ts.seconds = -62135596801LL;
	expect_einval(&p.base, "createTime: timestamp seconds -62135596801 out "
			       "of range 0001-01-01..9999-12-31");
	ts.seconds = 0;
	ts.nanos = -1;
	expect_einval(
		&p.base,
		"createTime: timestamp nanos -1 out of range 0..999999999");
	ts.nanos = 1000000000;
	expect_einval(&p.base, "createTime: timestamp nanos 1000000000 out of "
			       "range 0..999999999");
	ts.nanos = 0; /* the epoch itself is fine */
	free(to_string(&p.base, 0));
}

/* The path in a message names map keys and array elements by position. */
static void test_error_path(void **state)
{
	Kubemedic__V1__ListProbesResponse r =
		KUBEMEDIC__V1__LIST_PROBES_RESPONSE__INIT;
	Kubemedic__V1__Probe p0 = KUBEMEDIC__V1__PROBE__INIT;
	Kubemedic__V1__Probe p1 = KUBEMEDIC__V1__PROBE__INIT;
	Kubemedic__V1__Probe *ps[] = {&p0, &p1};
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

	(void)state;
	ts.nanos = -5;
	p1.update_time = &ts;
	r.n_probes = 2;
	r.probes = ps;
	expect_einval(&r.base, "probes[1].updateTime: timestamp nanos -5 out "
			       "of range 0..999999999");
}

static void test_unsupported_wkt(void **state)
{
	Kmtest__WithDuration w = KMTEST__WITH_DURATION__INIT;
	Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
	char *got;

	(void)state;
	got = to_string(&w.base, 0); /* unset: nothing to refuse */
	assert_string_equal(got, "{}");
	free(got);
	w.timeout = &d;
	expect_einval(&w.base, "timeout: google.protobuf.Duration: JSON "
			       "mapping not implemented");
	expect_einval(&d.base,
		      "google.protobuf.Duration: JSON mapping not implemented");
}

static void test_depth(void **state)
{
	Kmtest__Node nodes[KM_JSON_MAX_DEPTH + 1];
	char *got;

	(void)state;
	for (int i = 0; i <= KM_JSON_MAX_DEPTH; i++) {
		kmtest__node__init(&nodes[i]);
		nodes[i].child = i < KM_JSON_MAX_DEPTH ? &nodes[i + 1] : NULL;
	}
	/* KM_JSON_MAX_DEPTH messages print... */
	nodes[KM_JSON_MAX_DEPTH - 1].child = NULL;
	got = to_string(&nodes[0].base, 0);
	assert_int_equal(strlen(got),
			 KM_JSON_MAX_DEPTH * strlen("{\"child\":}") -
				 strlen("\"child\":"));
	free(got);
	/* ...one more does not, */
	nodes[KM_JSON_MAX_DEPTH - 1].child = &nodes[KM_JSON_MAX_DEPTH];
	assert_int_equal(km_json_to_string(&nodes[0].base, 0, &got, NULL, NULL),
			 KM_EINVAL);
	assert_null(got);
	/* ...and a cycle ends there too. */
	nodes[0].child = &nodes[0];
	assert_int_equal(km_json_to_string(&nodes[0].base, 0, &got, NULL, NULL),
			 KM_EINVAL);
}

static void test_null_message(void **state)
{
	struct km_error err = {0};
	char *s;

	(void)state;
	assert_int_equal(km_json_to_string(NULL, 0, &s, NULL, &err), KM_EINVAL);
	assert_null(s);
	assert_string_equal(err.msg, "no message to print");
}

static void test_write(void **state)
{
	Kubemedic__V1__Probe p = KUBEMEDIC__V1__PROBE__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct km_error err = {0};
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	p.name = "a";
	p.period_seconds = 10;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(km_json_write(f, &p.base, 0, &err), 0);
	assert_int_equal(km_json_write(f, &p.base, KM_JSON_PRETTY, &err), 0);
	/* all or nothing: a failing document writes nothing */
	p.create_time = &ts;
	ts.nanos = -1;
	assert_int_equal(km_json_write(f, &p.base, 0, &err), KM_EINVAL);
	fclose(f);
	assert_string_equal(buf, "{\"name\":\"a\",\"periodSeconds\":10}\n"
				 "{\n"
				 "  \"name\": \"a\",\n"
				 "  \"periodSeconds\": 10\n"
				 "}\n");
	free(buf);
}

static void test_write_eio(void **state)
{
	Kubemedic__V1__Probe p = KUBEMEDIC__V1__PROBE__INIT;
	struct km_error err = {0};
	FILE *f = fopen("/dev/full", "w");

	(void)state;
	if (!f)
		skip();
	p.name = "a";
	assert_int_equal(km_json_write(f, &p.base, 0, &err), KM_EIO);
	assert_int_equal(err.code, KM_EIO);
	fclose(f);
}

/* A program's setlocale() must not turn 1.5 into 1,5. */
static void test_numeric_locale(void **state)
{
	static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",
					    "fr_FR.UTF-8", "fr_FR.utf8",
					    "nl_NL.UTF-8", "ru_RU.UTF-8"};
	Kubemedic__V1__Availability a = KUBEMEDIC__V1__AVAILABILITY__INIT;
	const char *set = NULL;
	char *got;

	(void)state;
	for (size_t i = 0; i < sizeof names / sizeof *names && !set; i++)
		set = setlocale(LC_NUMERIC, names[i]);
	/* A skipped test would pass for nothing: `make deps` generates
	 * de_DE.UTF-8. */
	if (!set)
		fail_msg(
			"no locale with a decimal comma is installed (de_DE.UTF-8"
			": run make deps)");
	a.uptime_percent = 1.5;
	got = to_string(&a.base, 0);
	setlocale(LC_NUMERIC, "C");
	assert_string_equal(got, "{\"uptimePercent\":1.5}");
	free(got);
}

/* km_text_safe: what the tables print of what a server sent. */
static void test_text_safe(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"", ""},
		{"plain: ok (200)", "plain: ok (200)"},
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
		/* a colour, a window title, a screen clear */
		{"\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"},
		{"\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"},
		{"\x1b"
		 "c\x1b[2J",
		 "\\x1bc\\x1b[2J"},
		/* forged rows */
		{"ok\nprobe//x  HEALTHY", "ok\\nprobe//x  HEALTHY"},
		{"a\rb\tc", "a\\rb\\tc"},
		{"del\x7f", "del\\x7f"},
		/* C1 CSI as UTF-8, and the bidi override */
		{"\xc2\x9b"
		 "31m",
		 "\\u009b31m"},
		{"abc\xe2\x80\xaetxt.exe", "abc\\u202etxt.exe"},
		{"\xe2\x81\xa6x\xe2\x81\xa9", "\\u2066x\\u2069"},
		/* not UTF-8: each byte of it */
		{"bad\xff\xfe", "bad\\xff\\xfe"},
		{"cut\xe2\x82", "cut\\xe2\\x82"},
		{"\xed\xa0\x80", "\\xed\\xa0\\x80"},
		/* a backslash stays */
		{"C:\\dir", "C:\\dir"},
	};
	struct km_arena a;

	(void)state;
	km_arena_init(&a, 256);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *got = km_text_safe(cases[i].in, &a);

		assert_non_null(got);
		assert_string_equal(got, cases[i].out);
		/* Nothing to escape: the string itself, no copy. */
		if (!strcmp(cases[i].in, cases[i].out))
			assert_ptr_equal(got, cases[i].in);
	}
	assert_string_equal(km_text_safe(NULL, &a), "");
	km_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_defaults_omitted),
		cmocka_unit_test(test_oneof_null_members),
		cmocka_unit_test(test_timestamp_out_of_range),
		cmocka_unit_test(test_error_path),
		cmocka_unit_test(test_unsupported_wkt),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_null_message),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_write_eio),
		cmocka_unit_test(test_numeric_locale),
		cmocka_unit_test(test_text_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
