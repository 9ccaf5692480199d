/*
 * Rollups (storage/km_rollup.h, issue 12): minute slots equal a
 * brute-force recount of random raw results, an hour packs to a small
 * blob and unpacks to the same, and a hostile blob is refused — never read
 * past, never a crash (under ASan: every prefix of a real blob, hand-made
 * bad ones, random bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "km_rollup.h"

#define HOUR_US (3600LL * 1000000)
#define MIN_US (60LL * 1000000)

/* The bucket of d by walking the bounds: independent of km_lat_bucket's
 * arithmetic. */
static int slow_bucket(int64_t d)
{
	for (int b = 0; b < KM_LAT_BUCKETS; b++)
		if (d < km_lat_bucket_upper_us(b))
			return b;
	return KM_LAT_BUCKETS - 1;
}

/* Random results in one hour: 1% of them failures, in bursts of up to 30
 * in a row; durations from 20 µs to 20 s. */
static struct km_result *random_hour(size_t n, int64_t hour0)
{
	struct km_result *v = calloc(n, sizeof *v);
	int burst = 0;

	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		int64_t base = (int64_t)20 << (rand() % 20);

		if (!burst && rand() % 3000 < 1)
			burst = 1 + rand() % 30;
		v[i].target_id = 1;
		v[i].started_us = hour0 + (int64_t)(rand() % 3600) * 1000000 +
				  rand() % 1000000;
		v[i].duration_us = base + rand() % base;
		v[i].success = !burst;
		if (burst)
			burst--;
	}
	return v;
}

static void test_minutes_equal_a_recount(void **state)
{
	enum { N = 50000 };
	int64_t hour0 = 1796025600LL * 1000000;
	struct km_result *v;
	static struct km_rollup_hour h, back;
	static uint8_t buf[KM_ROLLUP_PACK_MAX];
	struct km_rollup_slot total, want_total = {0};
	struct km_error err = {0};
	size_t len;

	(void)state;
	srand(7);
	v = random_hour(N, hour0);
	memset(&h, 0, sizeof h);
	for (size_t i = 0; i < N; i++)
		km_rollup_add(&h.min[(v[i].started_us - hour0) / MIN_US],
			      &v[i]);
	for (int m = 0; m < 60; m++) {
		struct km_rollup_slot want = {0};

		for (size_t i = 0; i < N; i++) {
			if (v[i].started_us < hour0 + m * MIN_US ||
			    v[i].started_us >= hour0 + (m + 1) * MIN_US)
				continue;
			want.count++;
			want.failures += !v[i].success;
			want.hist[slow_bucket(v[i].duration_us)]++;
		}
		assert_memory_equal(&h.min[m], &want, sizeof want);
		km_rollup_merge(&want_total, &want);
	}
	km_rollup_hour_total(&h, &total);
	assert_memory_equal(&total, &want_total, sizeof total);
	assert_int_equal(total.count, N);

	len = km_rollup_pack(&h, buf);
	assert_true(len > 0 && len <= KM_ROLLUP_PACK_MAX);
	assert_int_equal(km_rollup_unpack(buf, len, &back, &err), 0);
	assert_memory_equal(&back, &h, sizeof h);
	free(v);
}

/* A steady target probed every second, always fine, 1.0–1.5 ms: an
 * hour packs into 60 minutes × 5 bytes. Nothing packs to nothing. */
static void test_a_steady_hour_is_small(void **state)
{
	static struct km_rollup_hour h, back;
	static uint8_t buf[KM_ROLLUP_PACK_MAX];
	struct km_error err = {0};
	size_t len;

	(void)state;
	memset(&h, 0, sizeof h);
	assert_int_equal(km_rollup_pack(&h, buf), 0);
	assert_int_equal(km_rollup_unpack(buf, 0, &back, &err), 0);
	for (int s = 0; s < 3600; s++) {
		struct km_result r = {.success = true,
				      .duration_us = 1000 + s % 500};

		km_rollup_add(&h.min[s / 60], &r);
	}
	len = km_rollup_pack(&h, buf);
	/* delta 0, count 60, failures 0, mask, one bucket's count. */
	assert_int_equal(len, 60 * 5);
	assert_int_equal(km_rollup_unpack(buf, len, &back, &err), 0);
	assert_memory_equal(&back, &h, sizeof h);
}

static void expect_bad(const uint8_t *b, size_t n, const char *want)
{
	static struct km_rollup_hour h;
	struct km_error err = {0};

	assert_int_equal(km_rollup_unpack(b, n, &h, &err), KM_EINVAL);
	if (!strstr(err.msg, want))
		fail_msg("\"%s\" does not say \"%s\"", err.msg, want);
}

static void test_hostile_blobs(void **state)
{
	static struct km_rollup_hour h, back;
	static uint8_t buf[KM_ROLLUP_PACK_MAX];
	struct km_error err = {0};
	size_t len;

	(void)state;
	memset(&h, 0, sizeof h);
	for (int m = 3; m < 60; m += 7) {
		struct km_result r = {.success = m % 2, .duration_us = m * 999};

		km_rollup_add(&h.min[m], &r);
		km_rollup_add(&h.min[m], &r);
	}
	len = km_rollup_pack(&h, buf);
	/* Every prefix: refused, or a whole number of minutes — never read
	 * past its end (ASan would say). */
	for (size_t n = 0; n < len; n++) {
		uint8_t *cut = malloc(n ? n : 1);

		memcpy(cut, buf, n);
		if (!km_rollup_unpack(cut, n, &back, &err)) {
			struct km_rollup_slot t;

			km_rollup_hour_total(&back, &t);
			assert_true(t.count < 2 * 9);
		}
		free(cut);
	}
	{
		const uint8_t past[] = {60, 1, 0, 1, 1};
		const uint8_t order[] = {59, 1, 0, 1, 1, 0, 1, 0, 1, 1};
		const uint8_t zero[] = {0, 0, 0, 1, 1};
		const uint8_t fails[] = {0, 1, 2, 1, 1};
		const uint8_t mask[] = {0, 1, 0, 0x80, 0x80, 0x40, 1};
		const uint8_t nomask[] = {0, 1, 0, 0};
		const uint8_t sum[] = {0, 2, 0, 1, 1};
		const uint8_t empty_bucket[] = {0, 1, 0, 1, 0};
		const uint8_t long_varint[] = {0,    0x81, 0x80, 0x80, 0x80,
					       0x80, 0x01, 0,    1,    1};
		const uint8_t big_varint[] = {0, 0xff, 0xff, 0xff, 0xff, 0x1f};

		expect_bad(past, sizeof past, "a minute's delta");
		expect_bad(order, sizeof order, "minute 60 is past the hour");
		expect_bad(zero, sizeof zero, "count 0");
		expect_bad(fails, sizeof fails, "failures 2");
		expect_bad(mask, sizeof mask, "mask");
		expect_bad(nomask, sizeof nomask, "mask 0 is");
		expect_bad(sum, sizeof sum, "counts 1, not 2");
		expect_bad(empty_bucket, sizeof empty_bucket, "bucket 0");
		expect_bad(long_varint, sizeof long_varint, "minute 0");
		expect_bad(big_varint, sizeof big_varint, "minute 0");
	}
	/* Random bytes: refused or read, never past the end. */
	srand(11);
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand() % 64);
		uint8_t *b = malloc(n ? n : 1);

		for (size_t k = 0; k < n; k++)
			b[k] = (uint8_t)(rand() % 3 ? rand() % 8 : rand());
		(void)km_rollup_unpack(b, n, &back, &err);
		free(b);
	}
}

/* A run's histogram alone: round trip, and refused when empty, cut short
 * or followed by more bytes. */
static void test_histogram_alone(void **state)
{
	uint32_t h[KM_LAT_BUCKETS] = {0}, back[KM_LAT_BUCKETS];
	uint8_t buf[KM_LAT_PACK_MAX + 1];
	struct km_error err = {0};
	size_t len;

	(void)state;
	h[0] = 1;
	h[7] = 300;
	h[KM_LAT_BUCKETS - 1] = UINT32_MAX;
	len = km_lat_pack(h, buf);
	assert_true(len <= KM_LAT_PACK_MAX);
	assert_int_equal(km_lat_unpack(buf, len, back, &err), 0);
	assert_memory_equal(back, h, sizeof h);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(km_lat_unpack(buf, n, back, &err), KM_EINVAL);
	buf[len] = 1;
	assert_int_equal(km_lat_unpack(buf, len + 1, back, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "1 bytes past its end"));
	memset(h, 0, sizeof h);
	len = km_lat_pack(h, buf);
	assert_int_equal(km_lat_unpack(buf, len, back, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "mask 0 is"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minutes_equal_a_recount),
		cmocka_unit_test(test_a_steady_hour_is_small),
		cmocka_unit_test(test_hostile_blobs),
		cmocka_unit_test(test_histogram_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
