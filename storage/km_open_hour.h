/*
 * km_open_hour — one target's rollups being counted (issue 12): its open
 * hour's minutes and its open day's hours, held in memory by the writer
 * and written as two rows (rollup_minutes, rollup_hours) at each flush and
 * when the hour ends.
 *
 * Compact on purpose (one per probed target, 10,000 and more): the hour's
 * minutes are kept packed (km_rollup_pack), with the current minute's
 * counts beside them unpacked until the minute turns; the day's hours
 * packed likewise, the open hour's slot being its running total. A steady
 * target costs about 0.6 kB.
 *
 * Time. A result counts in the minute and hour of its start (UTC). One of
 * an earlier hour than the open one is late (KM_OPEN_HOUR_LATE): the
 * caller merges it into that hour's stored rows (km_rollup_merge_rows);
 * one of a later hour ends the open hour (KM_OPEN_HOUR_NEXT): the caller
 * writes it, frees it and opens the next. Within the hour, a late minute
 * counts in its own minute.
 *
 * Pure: no I/O, no clock, no locks; one thread at a time. The scratch
 * space the packing needs (some 11 kB) is the caller's, one per thread.
 */
#ifndef KM_OPEN_HOUR_H
#define KM_OPEN_HOUR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_model.h"
#include "km_rollup.h"

/* The hour (since the epoch) of a time in epoch µs, its minute (0..59),
 * and the day of an hour, rounding down (times before 1970 too). */
int64_t km_hour_of(int64_t us);
int km_minute_of(int64_t us);
int64_t km_day_of_hour(int64_t hour);

/* Packing space, the caller's. */
struct km_rollup_scratch {
	struct km_rollup_hour h, add;
	uint8_t minutes[KM_ROLLUP_PACK_MAX];
	uint8_t hours[KM_ROLLUP_PACK_MAX];
};

struct km_open_hour;

/* Opens target_id's hour `hour` on what is stored of it: the hour's
 * minute blob and its day's hour blob (NULL, 0: none). 0, KM_ENOMEM, or
 * KM_EINVAL for a stored blob that does not unpack (err says which; the
 * caller decides whether to start over without it). */
int km_open_hour_new(int64_t target_id, int64_t hour, const uint8_t *minutes,
		     size_t minutes_len, const uint8_t *hours, size_t hours_len,
		     struct km_rollup_scratch *x, struct km_open_hour **out,
		     struct km_error *err);
void km_open_hour_free(struct km_open_hour *o);

enum km_open_hour_fold {
	KM_OPEN_HOUR_ADDED, /* counted */
	KM_OPEN_HOUR_LATE,  /* of an earlier hour: not counted here */
	KM_OPEN_HOUR_NEXT   /* of a later hour: not counted here */
};
/* Counts r if it is of the open hour; *what says. 0 or KM_ENOMEM (a
 * minute turning needs its packed minutes to grow; r is not counted). */
int km_open_hour_fold(struct km_open_hour *o, const struct km_result *r,
		      struct km_rollup_scratch *x,
		      enum km_open_hour_fold *what);

/* What km_open_hour_merge took in. */
#define KM_OPEN_HOUR_MERGED_MINUTES 1 /* the hour is the open one */
#define KM_OPEN_HOUR_MERGED_DAY 2     /* another hour of the open day */
/* Merges an hour's minute counts (add, of hour `hour`) into the open hour
 * or day where they belong (the conversion of old results meeting the live
 * writer): returns what it took — what it did not is the caller's to
 * merge into the stored rows — or -KM_ENOMEM. */
int km_open_hour_merge(struct km_open_hour *o, int64_t hour,
		       const struct km_rollup_hour *add,
		       struct km_rollup_scratch *x);

/* The two rows as they are now. Blobs point into x (until its next use). */
struct km_open_hour_rows {
	int64_t target_id;
	int64_t hour, day;
	const uint8_t *minutes, *hours;
	size_t minutes_len, hours_len;
};
/* Whether anything was counted since the rows were last taken as
 * written; the rows (0, or KM_ENOMEM). */
bool km_open_hour_changed(const struct km_open_hour *o);
int km_open_hour_rows(struct km_open_hour *o, struct km_rollup_scratch *x,
		      struct km_open_hour_rows *out);
void km_open_hour_written(struct km_open_hour *o);
/* Marks it changed: its last written rows were undone (a failed commit). */
void km_open_hour_touch(struct km_open_hour *o);
/* The open hour. */
int64_t km_open_hour_hour(const struct km_open_hour *o);

/* Merges add (an hour's minutes) into a stored minute blob and the hour's
 * total into its day's stored blob at slot hour % 24 (old blobs NULL, 0:
 * none): the new blobs in x->minutes and x->hours. 0 or KM_EINVAL (a
 * stored blob does not unpack; err says which). */
int km_rollup_merge_rows(int64_t hour, const uint8_t *minutes,
			 size_t minutes_len, const uint8_t *hours,
			 size_t hours_len, const struct km_rollup_hour *add,
			 struct km_rollup_scratch *x,
			 struct km_open_hour_rows *out, struct km_error *err);

#endif
