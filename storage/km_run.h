/*
 * km_run — the unit of probe history at fleet scale (issue 12): the
 * consecutive results of one target with one outcome (success, error
 * class, status code) folded into one record, and the latency histogram
 * that runs and rollups share.
 *
 * A run keeps its first result's start time (fixed: the run's identity
 * in its row, even when a later result started earlier — a clock stepped
 * back) and the latest start among its results, how many results it
 * holds, their durations' minimum, maximum and sum, a log-scale
 * histogram of those durations, and — for failures — the first and the
 * last message (a success's message is not kept: it says nothing). A
 * result of another outcome does not fit the run: the run ends there and
 * the result starts the next one (km_run_fits).
 *
 * The histogram: KM_LAT_BUCKETS buckets of doubling width. Bucket 0
 * holds durations under KM_LAT_BASE_US (100 µs); bucket b (1..18) those
 * in [100 µs·2^(b-1), 100 µs·2^b); the last (19) everything from 26.2 s
 * on. Quantiles are interpolated within a bucket and clamped to the
 * observed minimum and maximum, so an estimate is off by at most its
 * bucket's width (a factor of 2); the smallest and the largest rank are
 * the minimum and maximum exactly, and all durations equal give them.
 * Counts saturate at UINT32_MAX rather than wrap.
 *
 * Pure: no I/O, no clock, no locks; one thread at a time per run. Memory:
 * a run owns its two messages (malloc'd, each at most
 * KM_RESULT_MESSAGE_MAX bytes); km_run_clear frees them.
 */
#ifndef KM_RUN_H
#define KM_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_model.h"

#define KM_LAT_BUCKETS 20
#define KM_LAT_BASE_US 100

/* The bucket of a duration (negative durations count as 0). */
int km_lat_bucket(int64_t duration_us);
/* The durations bucket b holds: [lower, upper); the last's upper is
 * INT64_MAX. */
int64_t km_lat_bucket_lower_us(int b);
int64_t km_lat_bucket_upper_us(int b);
/* Adds src's counts into dst (saturating). */
void km_lat_merge(uint32_t dst[KM_LAT_BUCKETS],
		  const uint32_t src[KM_LAT_BUCKETS]);
/* The q-quantile (0 <= q <= 1) of the durations counted in h, whose
 * minimum and maximum are min_us and max_us: interpolated within its
 * bucket, clamped to [min_us, max_us]. -1 when h counts nothing. */
int64_t km_lat_quantile(const uint32_t h[KM_LAT_BUCKETS], double q,
			int64_t min_us, int64_t max_us);

struct km_run {
	int64_t target_id;
	bool success;
	int error_class;     /* enum km_error_class */
	int32_t status_code; /* HTTP status, gRPC health status, exit code */
	int64_t first_us, last_us; /* the first and last result's start */
	int64_t count;
	int64_t dur_min_us, dur_max_us, dur_sum_us;
	uint32_t hist[KM_LAT_BUCKETS];
	char *first_message, *last_message; /* failures only; NULL: none */
};

/* Whether r has the run's outcome (and target): it extends the run. */
bool km_run_fits(const struct km_run *run, const struct km_result *r);
/* Starts run with r (run must be empty: zeroed, or cleared). 0, or
 * KM_ENOMEM (run stays empty). */
int km_run_begin(struct km_run *run, const struct km_result *r);
/* Folds r into run; r must fit (KM_EINVAL otherwise, run unchanged).
 * A failure's message becomes the last message. 0, KM_EINVAL, KM_ENOMEM
 * (then the count and times are taken, the message is not). */
int km_run_add(struct km_run *run, const struct km_result *r);
/* Frees the messages and empties run. */
void km_run_clear(struct km_run *run);

#endif
