/*
 * km_rollup — results counted per target per minute and per hour (issue
 * 12), so availability and latency percentiles over any window cost
 * O(windows), not O(results).
 *
 * A slot is one target's results in one interval: how many, how many
 * failed, and their durations' histogram (km_run.h's buckets). The minute
 * slots of one target-hour are packed into one blob, as time-series
 * databases pack chunks: only the minutes that had results, each as
 * varints — its minute (delta from the previous one), count, failures,
 * a mask of the histogram's non-empty buckets, their counts. A steady
 * target probed every second packs an hour into about 60 × 6 bytes; one
 * row per target-minute would cost more than the data.
 *
 * Decoding is hostile-input safe (a blob read from disk is input): every
 * length and value is checked, and a bad blob is KM_EINVAL, never a
 * crash or a read past its end.
 *
 * Pure: no I/O, no clock, no locks.
 */
#ifndef KM_ROLLUP_H
#define KM_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_model.h"
#include "km_run.h"

/* Rollup periods in µs. */
#define KM_MINUTE_US INT64_C(60000000)
#define KM_HOUR_US INT64_C(3600000000)
#define KM_DAY_US INT64_C(86400000000)

/* a / b rounded down (toward minus infinity, for times before 1970 too);
 * b != 0. The period of a time: km_floor_div(us, KM_HOUR_US). */
static inline int64_t km_floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

struct km_rollup_slot {
	uint32_t count, failures;
	uint32_t hist[KM_LAT_BUCKETS];
};

/* One target-hour's minutes: slot m is minute m (0..59) of the hour. The
 * hour rollups of one target-day use the same struct and blob, slots 0..23
 * being the day's hours. */
struct km_rollup_hour {
	struct km_rollup_slot min[60];
};

/* Counts one result into a slot (saturating). */
void km_rollup_add(struct km_rollup_slot *s, const struct km_result *r);
/* Adds src into dst (saturating). */
void km_rollup_merge(struct km_rollup_slot *dst,
		     const struct km_rollup_slot *src);
/* The hour's total: every minute merged. */
void km_rollup_hour_total(const struct km_rollup_hour *h,
			  struct km_rollup_slot *out);

/* A histogram alone (a run's): its bucket mask, then the non-empty
 * buckets' counts, varints; at most KM_LAT_PACK_MAX bytes. Unpacking
 * takes the whole buffer and refuses an empty histogram (KM_EINVAL). */
#define KM_LAT_PACK_MAX (5 + KM_LAT_BUCKETS * 5)
size_t km_lat_pack(const uint32_t h[KM_LAT_BUCKETS], uint8_t *buf);
int km_lat_unpack(const uint8_t *buf, size_t len, uint32_t h[KM_LAT_BUCKETS],
		  struct km_error *err);

/* The most bytes one slot packs into, and one hour. */
#define KM_ROLLUP_SLOT_PACK_MAX (1 + 2 * 5 + KM_LAT_PACK_MAX)
#define KM_ROLLUP_PACK_MAX (60 * KM_ROLLUP_SLOT_PACK_MAX)

/* Appends slot s (non-empty) as slot index, the previous one packed being
 * prev (-1: none; prev < index <= 59), to buf (KM_ROLLUP_SLOT_PACK_MAX
 * bytes free); returns its length. km_rollup_pack is these in order, so
 * an hour can be packed as it goes. */
size_t km_rollup_pack_slot(uint8_t *buf, int prev, int index,
			   const struct km_rollup_slot *s);

/* Packs h's non-empty minutes into buf (at least KM_ROLLUP_PACK_MAX
 * bytes); returns the length (0: no minute had a result). */
size_t km_rollup_pack(const struct km_rollup_hour *h, uint8_t *buf);
/* Unpacks a blob into *h (zeroed first). 0, or KM_EINVAL with err saying
 * what is wrong (a minute out of order or past 59, a varint too long or
 * cut short, a mask past the buckets, trailing bytes). */
int km_rollup_unpack(const uint8_t *buf, size_t len, struct km_rollup_hour *h,
		     struct km_error *err);

#endif
