/*
 * km_hash: 64-bit FNV-1a, and the values that must never change.
 *
 * The hash is stored and sent, not only used in memory: a probe's first
 * run within its period (km_prober_offset_ms) comes from km_hash_str of its
 * target name, and page tokens carry km_hash_field / km_hash_i64 of their
 * query's filters. A token a client holds must stay valid across an
 * upgrade, so the values below were computed with the functions these
 * replaced (the prober's fnv1a, api_token.c's api_hash_str and
 * api_hash_i64) and are pinned here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "km_hash.h"

static void test_fnv1a_reference_vectors(void **state)
{
	(void)state;
	/* The published FNV-1a 64 test vectors. */
	assert_true(km_hash_str(KM_HASH_INIT, "") == 0xcbf29ce484222325ULL);
	assert_true(km_hash_str(KM_HASH_INIT, "a") == 0xaf63dc4c8601ec8cULL);
	assert_true(km_hash_str(KM_HASH_INIT, "foobar") ==
		    0x85944171f73967e8ULL);
	assert_true(km_hash_bytes(KM_HASH_INIT, "foobar", 6) ==
		    0x85944171f73967e8ULL);
	/* NULL is "". */
	assert_true(km_hash_str(KM_HASH_INIT, NULL) == 0xcbf29ce484222325ULL);
}

static void test_target_names_hash_as_before(void **state)
{
	(void)state;
	/* What the prober's own fnv1a gave: first-run offsets stay put. */
	assert_true(km_hash_str(KM_HASH_INIT, "probe//web-0") ==
		    0xbd5d38257aa1b362ULL);
	assert_true(km_hash_str(KM_HASH_INIT, "probe//checkout-http") ==
		    0x9b0aa94f7aa280eaULL);
}

static void test_page_token_hashes_as_before(void **state)
{
	uint64_t h;

	(void)state;
	/* api_hash_str was FNV-1a plus a 0xff terminator: km_hash_field. */
	assert_true(km_hash_field(KM_HASH_INIT, "team=shop") ==
		    0xa0bdf802b4026290ULL);
	assert_true(km_hash_field(KM_HASH_INIT, NULL) == 0xaf64724c8602eb6eULL);
	assert_true(km_hash_field(KM_HASH_INIT, "") == 0xaf64724c8602eb6eULL);
	/* ListTargets' filters: kind, state, selector, cluster. */
	h = km_hash_i64(KM_HASH_INIT, 3);
	h = km_hash_i64(h, 2);
	h = km_hash_field(h, "team=shop");
	h = km_hash_field(h, NULL);
	assert_true(h == 0x98c32a82b183056aULL);
	/* A history query's: target, range, outcome, order. */
	h = km_hash_field(KM_HASH_INIT, "probe//web-0");
	h = km_hash_i64(h, INT64_MIN);
	h = km_hash_i64(h, INT64_MAX);
	h = km_hash_i64(h, 2);
	h = km_hash_i64(h, -1);
	assert_true(h == 0xd3286a65885880b5ULL);
	/* Fields of a tuple stay apart. */
	assert_true(km_hash_field(km_hash_field(KM_HASH_INIT, "ab"), "c") !=
		    km_hash_field(km_hash_field(KM_HASH_INIT, "a"), "bc"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fnv1a_reference_vectors),
		cmocka_unit_test(test_target_names_hash_as_before),
		cmocka_unit_test(test_page_token_hashes_as_before),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
