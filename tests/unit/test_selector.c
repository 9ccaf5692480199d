/*
 * Label selectors: every operator, absent keys, whitespace, the empty
 * selector, and the messages for malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "km_probe.h"
#include "km_test.h"

static const struct km_kv shop_web[] = {
	{"team", "shop"},
	{"tier", "web"},
	{"app.kubernetes.io/name", "cart"},
	{"empty", ""},
};
#define N_SHOP_WEB (sizeof shop_web / sizeof shop_web[0])

/* Parses s (which must be valid) and matches it against shop_web. */
static bool sel_match(const char *s, const struct km_kv *labels, size_t n)
{
	struct km_arena a;
	struct km_selector *sel = NULL;
	struct km_error err = {0};
	bool m;

	km_arena_init(&a, 0);
	if (km_selector_parse(s, &a, &sel, &err) != 0) {
		fprintf(stderr, "unexpected parse error: %s\n", err.msg);
		fail();
	}
	assert_non_null(sel);
	m = km_selector_matches(sel, labels, n);
	km_arena_free(&a);
	return m;
}

static bool m(const char *s)
{
	return sel_match(s, shop_web, N_SHOP_WEB);
}

/* Parses s, which must be refused; returns the message in a static buffer
 * and checks it names the selector. */
static const char *parse_error(const char *s)
{
	static struct km_error err;
	struct km_arena a;
	struct km_selector *sel = (struct km_selector *)&err; /* not NULL */
	int rc;

	km_arena_init(&a, 0);
	memset(&err, 0, sizeof err);
	rc = km_selector_parse(s, &a, &sel, &err);
	km_arena_free(&a);
	if (rc != KM_EINVAL)
		fprintf(stderr, "selector \"%s\": rc %d, want KM_EINVAL\n", s,
			rc);
	assert_int_equal(rc, KM_EINVAL);
	assert_int_equal(err.code, KM_EINVAL);
	assert_null(sel);
	assert_non_null(strstr(err.msg, "label selector \""));
	return err.msg;
}

#define assert_error(sel, want)                                                \
	do {                                                                   \
		const char *msg_ = parse_error(sel);                           \
		if (!strstr(msg_, want))                                       \
			fprintf(stderr, "message \"%s\" lacks \"%s\"\n", msg_, \
				want);                                         \
		assert_non_null(strstr(msg_, want));                           \
	} while (0)

static void test_empty(void **state)
{
	struct km_arena a;
	struct km_selector *sel;

	(void)state;
	km_arena_init(&a, 0);
	assert_int_equal(km_selector_parse("", &a, &sel, NULL), 0);
	assert_true(km_selector_empty(sel));
	assert_true(km_selector_matches(sel, NULL, 0));
	assert_true(km_selector_matches(sel, shop_web, N_SHOP_WEB));
	assert_int_equal(km_selector_parse("  \t\n ", &a, &sel, NULL), 0);
	assert_true(km_selector_empty(sel));
	assert_int_equal(km_selector_parse(NULL, &a, &sel, NULL), 0);
	assert_true(km_selector_empty(sel));
	assert_int_equal(km_selector_parse("a", &a, &sel, NULL), 0);
	assert_false(km_selector_empty(sel));
	km_arena_free(&a);

	/* NULL selector: nothing to hold. */
	assert_true(km_selector_empty(NULL));
	assert_true(km_selector_matches(NULL, shop_web, N_SHOP_WEB));
}

static void test_equals(void **state)
{
	(void)state;
	assert_true(m("team=shop"));
	assert_true(m("team==shop"));
	assert_false(m("team=ops"));
	assert_false(m("team==ops"));
	assert_false(m("owner=shop")); /* absent key: no match */
	assert_true(m("app.kubernetes.io/name=cart"));
	/* An empty value matches only a present, empty label. */
	assert_true(m("empty="));
	assert_true(m("empty=="));
	assert_false(m("team="));
	assert_false(m("owner="));
}

static void test_not_equals(void **state)
{
	(void)state;
	assert_true(m("team!=ops"));
	assert_false(m("team!=shop"));
	assert_true(m("owner!=shop")); /* absent key matches, as in k8s */
	assert_true(m("team!="));
	assert_false(m("empty!="));
}

static void test_in_notin(void **state)
{
	(void)state;
	assert_true(m("tier in (web,api)"));
	assert_true(m("tier in (api, web)"));
	assert_true(m("tier in (web)"));
	assert_false(m("tier in (api,db)"));
	assert_false(m("owner in (a,b)")); /* absent key: no match */
	assert_false(m("tier notin (web,api)"));
	assert_true(m("tier notin (api,db)"));
	assert_true(m("owner notin (a,b)")); /* absent key matches */
	/* Empty entries are the empty value, as in Kubernetes. */
	assert_true(m("empty in ()"));
	assert_true(m("empty in (a,)"));
	assert_true(m("empty in (,a)"));
	assert_true(m("empty in (a,,b)"));
	assert_false(m("tier in ()"));
	assert_true(m("tier notin ()"));
	/* Keywords are values and keys where an identifier is expected. */
	{
		static const struct km_kv kw[] = {{"in", "notin"}};
		assert_true(sel_match("in in (notin)", kw, 1));
		assert_true(sel_match("in=notin", kw, 1));
		assert_false(sel_match("in notin (notin, in)", kw, 1));
	}
}

static void test_exists(void **state)
{
	(void)state;
	assert_true(m("team"));
	assert_true(m("empty"));
	assert_false(m("owner"));
	assert_true(m("!owner"));
	assert_false(m("!team"));
	assert_false(m("!empty"));
	assert_true(m("app.kubernetes.io/name"));
	assert_true(sel_match("!anything", NULL, 0));
	assert_false(sel_match("anything", NULL, 0));
}

static void test_conjunction(void **state)
{
	(void)state;
	assert_true(m("team=shop,tier in (web, api),!canary,env!=dev,team"));
	assert_false(m("team=shop,tier in (web, api),!canary,env!=dev,owner"));
	assert_false(m("team=shop,tier=api"));
	assert_true(m("team=shop,team=shop")); /* repeated key: both hold */
	assert_false(m("team=shop,team=ops"));
}

static void test_whitespace(void **state)
{
	(void)state;
	assert_true(m("  team = shop ,  tier   in(web , api )  "));
	assert_true(m("\tteam\t==\tshop\n,\r\n!owner"));
	assert_true(m("team != ops"));
	assert_true(m("! owner"));
	assert_true(m("tier notin(api)"));
	assert_true(m(" team "));
	assert_true(m("empty = ,team")); /* empty value before a comma */
}

static void test_first_label_wins(void **state)
{
	static const struct km_kv dup[] = {{"a", "1"}, {"a", "2"}};

	(void)state;
	assert_true(sel_match("a=1", dup, 2));
	assert_false(sel_match("a=2", dup, 2));
}

static void test_malformed(void **state)
{
	(void)state;
	/* The example of the brief, word for word. */
	assert_error(
		"team in (a",
		"label selector \"team in (a\": position 11: expected ')'");
	assert_error("team in (a b)",
		     "position 12: found 'b', expected ',' or ')'");
	assert_error("team in a", "position 9: found 'a', expected '('");
	assert_error("team in", "position 8: expected '('");
	assert_error("team in (a,(b))",
		     "position 12: found '(', expected a value, ',' or ')'");
	assert_error("team notin (a", "expected ')'");
	assert_error(
		"team ~ shop",
		"position 6: found '~', expected one of =, ==, !=, in, notin");
	assert_error("team shop", "position 6: found 'shop', expected one of");
	assert_error("team=(shop)", "position 6: found '(', expected a value");
	assert_error("team=shop web",
		     "position 11: found 'web', expected ',' or the end");
	assert_error("team=shop,",
		     "position 11: expected a requirement after ','");
	assert_error(
		"team=shop,,tier",
		"position 11: found ',', expected a requirement after ','");
	assert_error(",team",
		     "position 1: found ',', expected '!' or a label key");
	assert_error("=shop",
		     "position 1: found '=', expected '!' or a label key");
	assert_error("!", "position 2: expected a label key");
	assert_error("!=a",
		     "position 1: found '!=', expected '!' or a label key");
	assert_error("!team=shop",
		     "position 6: found '=', expected ',' or the end");
	assert_error("!!team", "position 2: found '!', expected a label key");
	assert_error("(", "found '(', expected '!' or a label key");
	assert_error("replicas>3", "position 9: operator '>' is not supported");
	assert_error("replicas < 3",
		     "position 10: operator '<' is not supported");
	assert_error("team=a=b",
		     "position 7: found '=', expected ',' or the end");
}

static void test_invalid_keys_values(void **state)
{
	(void)state;
	assert_error("-team=shop", "position 1: invalid label key \"-team\"");
	assert_error("Team_=x",
		     "invalid label key \"Team_\": must begin and end");
	assert_error("a/b/c", "invalid label key \"a/b/c\"");
	assert_error("/a", "invalid label key \"/a\": prefix");
	assert_error(
		"Example.com/a",
		"invalid label key \"Example.com/a\": prefix must be a lower-case DNS subdomain");
	assert_error("example.com/",
		     "invalid label key \"example.com/\": must not be empty");
	assert_error("a=b/c", "position 3: invalid label value \"b/c\"");
	assert_error("a in (ok, -bad)",
		     "position 11: invalid label value \"-bad\"");
	assert_error("a=-x", "invalid label value \"-x\": must begin and end");
	assert_error("tëam=a", "invalid label key");
	assert_error(
		"x=0123456789012345678901234567890123456789012345678901234567890123",
		"must be no more than 63 characters");
	/* Valid edge cases. */
	assert_true(m("!a.b-c_d"));
	assert_true(m("!example.com/A_b"));
	assert_true(m("owner!=A.b-9"));
}

static void test_long_selector_message(void **state)
{
	char s[600];
	const char *msg;

	(void)state;
	memset(s, 'a', sizeof s);
	memcpy(s + 400, " in (", 5);
	s[sizeof s - 1] = '\0';
	msg = parse_error(s);
	assert_non_null(strstr(msg, "...\": position 1: invalid label key"));
	assert_true(strlen(msg) < KM_ERROR_MSG_MAX);
}

static void test_many_requirements(void **state)
{
	struct km_arena a;
	struct km_selector *sel;
	char *s = malloc(20000), *p = s;

	(void)state;
	for (int i = 0; i < 1000; i++)
		p += sprintf(p, "%sk%d notin (x,y)", i ? "," : "", i);
	km_arena_init(&a, 0);
	assert_int_equal(km_selector_parse(s, &a, &sel, NULL), 0);
	assert_true(km_selector_matches(sel, shop_web, N_SHOP_WEB));
	km_arena_free(&a);
	free(s);
}

/* km_selector_check_size: before parsing, one pass, named limits. */
static void test_check_size(void **state)
{
	struct km_error err = {0};

	(void)state;
	assert_int_equal(km_selector_check_size("", 1, 1, "f", &err), 0);
	assert_int_equal(km_selector_check_size(NULL, 1, 1, "f", &err), 0);
	assert_int_equal(km_selector_check_size("a=b", 3, 1, "f", &err), 0);
	assert_int_equal(km_selector_check_size("a=bc", 3, 1, "f", &err),
			 KM_EINVAL);
	assert_string_equal(err.msg, "f: the selector is 4 bytes long; this "
				     "server takes at most 3 "
				     "(limits.maxSelectorBytes)");
	/* Commas in a value list are not requirements; unbalanced
	 * parentheses do not hide commas that follow. */
	assert_int_equal(km_selector_check_size("a in (x,y,z),!b", 100, 2, "f",
						&err),
			 0);
	assert_int_equal(km_selector_check_size("a,b,c", 100, 2, "sel", &err),
			 KM_EINVAL);
	assert_string_equal(err.msg, "sel: the selector has 3 requirements; "
				     "this server takes at most 2 "
				     "(limits.maxSelectorRequirements)");
	assert_int_equal(km_selector_check_size(")),a,b,c", 100, 3, "f", &err),
			 KM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_equals),
		cmocka_unit_test(test_not_equals),
		cmocka_unit_test(test_in_notin),
		cmocka_unit_test(test_exists),
		cmocka_unit_test(test_conjunction),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_first_label_wins),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_invalid_keys_values),
		cmocka_unit_test(test_long_selector_message),
		cmocka_unit_test(test_many_requirements),
		cmocka_unit_test(test_check_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
