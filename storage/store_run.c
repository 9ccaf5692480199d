/*
 * Runs and their latency histogram (km_run.h).
 */
#include "km_run.h"

#include <stdlib.h>
#include <string.h>

#define LAST (KM_LAT_BUCKETS - 1)

int km_lat_bucket(int64_t duration_us)
{
	uint64_t q;
	int b;

	if (duration_us < KM_LAT_BASE_US)
		return 0;
	q = (uint64_t)duration_us / KM_LAT_BASE_US; /* >= 1 */
	b = 64 - __builtin_clzll(q);                /* floor(log2 q) + 1 */
	return b < LAST ? b : LAST;
}

int64_t km_lat_bucket_lower_us(int b)
{
	if (b <= 0)
		return 0;
	if (b > LAST)
		b = LAST;
	return (int64_t)KM_LAT_BASE_US << (b - 1);
}

int64_t km_lat_bucket_upper_us(int b)
{
	if (b < 0)
		b = 0;
	if (b >= LAST)
		return INT64_MAX;
	return (int64_t)KM_LAT_BASE_US << b;
}

void km_lat_merge(uint32_t dst[KM_LAT_BUCKETS],
		  const uint32_t src[KM_LAT_BUCKETS])
{
	for (int b = 0; b < KM_LAT_BUCKETS; b++)
		dst[b] = src[b] > UINT32_MAX - dst[b] ? UINT32_MAX
						      : dst[b] + src[b];
}

int64_t km_lat_quantile(const uint32_t h[KM_LAT_BUCKETS], double q,
			int64_t min_us, int64_t max_us)
{
	uint64_t n = 0, before = 0, rank;
	double lo, hi, frac, v;
	int b;

	for (b = 0; b < KM_LAT_BUCKETS; b++)
		n += h[b];
	if (!n)
		return -1;
	if (!(q > 0)) /* also NaN */
		q = 0;
	if (q > 1)
		q = 1;
	/* The rank'th smallest (1-based), nearest-rank. */
	rank = (uint64_t)(q * (double)n + 0.999999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	/* The extremes are known exactly. */
	if (rank == n)
		return max_us;
	if (rank == 1)
		return min_us;
	for (b = 0; b < KM_LAT_BUCKETS && before + h[b] < rank; b++)
		before += h[b];
	if (b == KM_LAT_BUCKETS) /* cannot be: rank <= n */
		return max_us;
	lo = (double)km_lat_bucket_lower_us(b);
	hi = b == LAST ? (double)max_us : (double)km_lat_bucket_upper_us(b);
	if (lo < (double)min_us)
		lo = (double)min_us;
	if (hi > (double)max_us)
		hi = (double)max_us;
	if (hi < lo)
		hi = lo;
	/* Spread the bucket's results evenly over [lo, hi]. */
	frac = ((double)(rank - before) - 0.5) / (double)h[b];
	v = lo + frac * (hi - lo);
	if (v < (double)min_us)
		v = (double)min_us;
	if (v > (double)max_us)
		v = (double)max_us;
	return (int64_t)(v + 0.5);
}

bool km_run_fits(const struct km_run *run, const struct km_result *r)
{
	return run->count > 0 && run->target_id == r->target_id &&
	       run->success == r->success &&
	       run->error_class == r->error_class &&
	       run->status_code == r->status_code;
}

/* A failure's message, copied (at most KM_RESULT_MESSAGE_MAX bytes). */
static int take_message(char **dst, const struct km_result *r)
{
	size_t n;
	char *m;

	if (r->success || !r->message)
		return 0;
	n = strnlen(r->message, KM_RESULT_MESSAGE_MAX);
	if (!(m = malloc(n + 1)))
		return KM_ENOMEM;
	memcpy(m, r->message, n);
	m[n] = '\0';
	free(*dst);
	*dst = m;
	return 0;
}

static void count_duration(struct km_run *run, int64_t d)
{
	int b = km_lat_bucket(d);

	if (d < 0)
		d = 0;
	if (d < run->dur_min_us)
		run->dur_min_us = d;
	if (d > run->dur_max_us)
		run->dur_max_us = d;
	run->dur_sum_us = d > INT64_MAX - run->dur_sum_us ? INT64_MAX
							  : run->dur_sum_us + d;
	if (run->hist[b] < UINT32_MAX)
		run->hist[b]++;
}

int km_run_begin(struct km_run *run, const struct km_result *r)
{
	memset(run, 0, sizeof *run);
	if (take_message(&run->first_message, r))
		return KM_ENOMEM;
	if (run->first_message &&
	    !(run->last_message = strdup(run->first_message))) {
		km_run_clear(run);
		return KM_ENOMEM;
	}
	run->target_id = r->target_id;
	run->success = r->success;
	run->error_class = r->error_class;
	run->status_code = r->status_code;
	run->first_us = run->last_us = r->started_us;
	run->count = 1;
	run->dur_min_us = INT64_MAX;
	count_duration(run, r->duration_us);
	return 0;
}

int km_run_add(struct km_run *run, const struct km_result *r)
{
	if (!km_run_fits(run, r))
		return KM_EINVAL;
	/* first_us stays the first result's: it is the run's identity in
	 * its row (the writer updates the row by it); a late result (a
	 * clock stepped back) counts without moving it. */
	run->count++;
	if (r->started_us > run->last_us)
		run->last_us = r->started_us;
	count_duration(run, r->duration_us);
	return take_message(&run->last_message, r);
}

void km_run_clear(struct km_run *run)
{
	free(run->first_message);
	free(run->last_message);
	memset(run, 0, sizeof *run);
}
