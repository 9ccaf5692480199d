/*
 * Runs and the latency histogram (storage/km_run.h, issue 12): bucket
 * boundaries, quantiles against the exact ones of random durations,
 * saturating merges, and a run's folding — what fits, what it keeps of
 * failures' messages, and its counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "km_run.h"

static void test_buckets(void **state)
{
	(void)state;
	assert_int_equal(km_lat_bucket(-5), 0);
	assert_int_equal(km_lat_bucket(0), 0);
	assert_int_equal(km_lat_bucket(99), 0);
	assert_int_equal(km_lat_bucket(100), 1);
	assert_int_equal(km_lat_bucket(199), 1);
	assert_int_equal(km_lat_bucket(200), 2);
	assert_int_equal(km_lat_bucket(26214399), 18);
	assert_int_equal(km_lat_bucket(26214400), 19);
	assert_int_equal(km_lat_bucket(INT64_MAX), 19);
	assert_int_equal(km_lat_bucket_lower_us(0), 0);
	assert_int_equal(km_lat_bucket_upper_us(KM_LAT_BUCKETS - 1), INT64_MAX);
	/* Each bucket holds exactly [lower, upper), and they tile. */
	for (int b = 0; b < KM_LAT_BUCKETS; b++) {
		int64_t lo = km_lat_bucket_lower_us(b);
		int64_t hi = km_lat_bucket_upper_us(b);

		assert_true(lo < hi);
		assert_int_equal(km_lat_bucket(lo), b);
		assert_int_equal(km_lat_bucket(hi - 1), b);
		if (b + 1 < KM_LAT_BUCKETS)
			assert_int_equal(km_lat_bucket_lower_us(b + 1), hi);
	}
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Random durations, spread over 10 µs to 40 s on a log scale (a random
 * power of two, then a random point within it): every estimate is
 * within a factor of 2 of the exact nearest-rank quantile (its bucket's
 * width), or within the first bucket's 100 µs. */
static void test_quantiles_against_exact(void **state)
{
	enum { N = 20000 };
	static int64_t d[N];
	static const double qs[] = {0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1};
	uint32_t h[KM_LAT_BUCKETS] = {0};
	int64_t min = INT64_MAX, max = 0;

	(void)state;
	srand(42);
	for (int i = 0; i < N; i++) {
		int64_t base = (int64_t)10 << (rand() % 22);

		d[i] = base + rand() % base;
		h[km_lat_bucket(d[i])]++;
		if (d[i] < min)
			min = d[i];
		if (d[i] > max)
			max = d[i];
	}
	qsort(d, N, sizeof d[0], cmp);
	for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
		size_t rank = (size_t)(qs[k] * N);
		int64_t exact, est;

		if ((double)rank < qs[k] * N)
			rank++; /* nearest rank: ceil(q·N) */
		exact = d[rank ? rank - 1 : 0];
		est = km_lat_quantile(h, qs[k], min, max);

		assert_true(est >= min && est <= max);
		if (exact < KM_LAT_BASE_US)
			assert_true(llabs(est - exact) < KM_LAT_BASE_US);
		else
			assert_true(est * 2 >= exact && est <= exact * 2);
	}
	assert_int_equal(km_lat_quantile(h, 0, min, max), min);
	assert_int_equal(km_lat_quantile(h, 1, min, max), max);
	/* All equal: exact. */
	memset(h, 0, sizeof h);
	h[km_lat_bucket(3000)] = 500;
	assert_int_equal(km_lat_quantile(h, 0.5, 3000, 3000), 3000);
	assert_int_equal(km_lat_quantile(h, 0.99, 3000, 3000), 3000);
	/* Nothing counted. */
	memset(h, 0, sizeof h);
	assert_int_equal(km_lat_quantile(h, 0.5, 0, 0), -1);
}

static void test_merge_saturates(void **state)
{
	uint32_t a[KM_LAT_BUCKETS] = {0}, b[KM_LAT_BUCKETS] = {0};

	(void)state;
	a[3] = 7;
	b[3] = 5;
	b[19] = 1;
	km_lat_merge(a, b);
	assert_int_equal(a[3], 12);
	assert_int_equal(a[19], 1);
	a[0] = UINT32_MAX - 1;
	b[0] = 10;
	km_lat_merge(a, b);
	assert_int_equal(a[0], UINT32_MAX);
}

static struct km_result result(int64_t at, int64_t dur, bool ok, int status,
			       const char *msg)
{
	return (struct km_result){.target_id = 7,
				  .started_us = at,
				  .duration_us = dur,
				  .success = ok,
				  .error_class = ok ? 0 : KM_EC_HTTP_STATUS,
				  .status_code = status,
				  .message = msg};
}

static void test_run_folding(void **state)
{
	struct km_run run = {0};
	struct km_result r;
	char *big;

	(void)state;
	r = result(1000, 150, true, 200, "fine");
	assert_int_equal(km_run_begin(&run, &r), 0);
	assert_null(run.first_message); /* a success's says nothing */
	for (int i = 1; i < 5; i++) {
		r = result(1000 + i * 1000000, 150 + i * 100, true, 200, "ok");
		assert_true(km_run_fits(&run, &r));
		assert_int_equal(km_run_add(&run, &r), 0);
	}
	assert_int_equal(run.count, 5);
	assert_int_equal(run.first_us, 1000);
	assert_int_equal(run.last_us, 4001000);
	{
		/* A late result (a clock stepped back) counts; the first time
		 * stays the first result's (the run's identity), the last the
		 * latest. */
		struct km_run late = run;

		r = result(500, 150, true, 200, NULL);
		assert_int_equal(km_run_add(&late, &r), 0);
		assert_int_equal(late.count, 6);
		assert_int_equal(late.first_us, 1000);
		assert_int_equal(late.last_us, 4001000);
	}
	assert_int_equal(run.dur_min_us, 150);
	assert_int_equal(run.dur_max_us, 550);
	assert_int_equal(run.dur_sum_us, 150 + 250 + 350 + 450 + 550);
	assert_int_equal(run.hist[1], 1); /* 150 */
	assert_int_equal(run.hist[2], 2); /* 250, 350 */
	assert_int_equal(run.hist[3], 2); /* 450, 550 */
	/* Another outcome ends the run: another status, a failure, another
	 * target. */
	r = result(6000000, 100, true, 204, NULL);
	assert_false(km_run_fits(&run, &r));
	assert_int_equal(km_run_add(&run, &r), KM_EINVAL);
	r = result(6000000, 100, false, 500, "boom");
	assert_false(km_run_fits(&run, &r));
	r = result(6000000, 100, true, 200, NULL);
	r.target_id = 8;
	assert_false(km_run_fits(&run, &r));
	assert_int_equal(run.count, 5);
	km_run_clear(&run);
	assert_int_equal(run.count, 0);

	/* A failure's run keeps its first and last message, each cut at
	 * KM_RESULT_MESSAGE_MAX. */
	r = result(10, 5000, false, 500, "first: HTTP 500");
	assert_int_equal(km_run_begin(&run, &r), 0);
	assert_string_equal(run.first_message, "first: HTTP 500");
	assert_string_equal(run.last_message, "first: HTTP 500");
	r = result(20, 6000, false, 500, "second");
	assert_int_equal(km_run_add(&run, &r), 0);
	big = malloc(KM_RESULT_MESSAGE_MAX + 100);
	assert_non_null(big);
	memset(big, 'x', KM_RESULT_MESSAGE_MAX + 99);
	big[KM_RESULT_MESSAGE_MAX + 99] = '\0';
	r = result(30, 7000, false, 500, big);
	assert_int_equal(km_run_add(&run, &r), 0);
	free(big);
	assert_string_equal(run.first_message, "first: HTTP 500");
	assert_int_equal(strlen(run.last_message), KM_RESULT_MESSAGE_MAX);
	r = result(40, 7000, false, 500, NULL); /* none: the last stays */
	assert_int_equal(km_run_add(&run, &r), 0);
	assert_int_equal(strlen(run.last_message), KM_RESULT_MESSAGE_MAX);
	assert_int_equal(run.count, 4);
	assert_int_equal(km_lat_quantile(run.hist, 1, run.dur_min_us,
					 run.dur_max_us),
			 7000);
	km_run_clear(&run); /* ASan: nothing leaks */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_quantiles_against_exact),
		cmocka_unit_test(test_merge_saturates),
		cmocka_unit_test(test_run_folding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
