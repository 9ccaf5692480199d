/*
 * A target's results counted per step, from its rollups
 * (km_reader_rollups, km_store.h): what latency percentiles and
 * availability over a window are computed from, in O(rows read + steps).
 *
 * The hours of the range are read from one of two tables, a prefix of
 * them from the hour rows (one row per target-day) and the rest from the
 * minute rows (one per target-hour):
 *  - hour rows before the target's oldest minute row, whatever the step:
 *    minute retention (90 days by default) removed what was finer, and
 *    the hours are all that is left;
 *  - hour rows for every whole hour when the steps are whole, aligned
 *    hours: a day's row instead of 24 hours' rows;
 *  - minute rows for the rest.
 * The prefix is one range of days and the rest one range of hours, each
 * read with one statement along the table's primary key; every blob read
 * is one the answer needs (a day row at either end of the prefix holds
 * hours outside it, which are skipped), and it is unpacked once.
 *
 * A blob comes from the disk: it is unpacked with every length and value
 * checked (km_rollup_unpack), and one that fails is KM_ECORRUPT naming the
 * target, the table and the row.
 */
#include <string.h>

#include "store_internal.h"

enum { L_OLDEST_MINUTE = KM_LAZY_ROLLUPS, L_DAYS, L_HOURS, L_COUNT };
_Static_assert(L_COUNT <= KM_LAZY_ROLLUPS + 8, "lazy statement slots");

static const char *const lazy_sql[L_COUNT - KM_LAZY_ROLLUPS] = {
	/* min() along the primary key: one seek. */
	[L_OLDEST_MINUTE - KM_LAZY_ROLLUPS] =
		"SELECT min(hour) FROM rollup_minutes WHERE target_id = ?1",
	[L_DAYS - KM_LAZY_ROLLUPS] =
		"SELECT day, blob FROM rollup_hours WHERE target_id = ?1 AND "
		"day >= ?2 AND day <= ?3 ORDER BY day",
	[L_HOURS - KM_LAZY_ROLLUPS] =
		"SELECT hour, blob FROM rollup_minutes WHERE target_id = ?1 AND "
		"hour >= ?2 AND hour < ?3 ORDER BY hour",
};

/* Times a query may name: within ±2^61 µs (±73,000 years), so that no
 * sum or difference below overflows. */
#define TIME_MAX (INT64_C(1) << 61)

static int lazy(struct km_reader *r, unsigned slot, sqlite3_stmt **st,
		struct km_error *err)
{
	return km_reader_lazy_stmt(r, slot, lazy_sql[slot - KM_LAZY_ROLLUPS],
				   st, err);
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

struct series {
	const struct km_rollup_query *q;
	struct km_rollup_series *out;
};

/* The step holding time t (from <= t < to). */
static struct km_rollup_slot *step_of(struct series *s, int64_t t)
{
	size_t i = (size_t)((t - s->q->from_us) / s->q->step_us);

	return &s->out->steps[i];
}

/* Unpacks the blob of row (table, key) of the query's target: KM_ECORRUPT
 * naming it when it does not unpack, or when its key is not an integer. */
static int unpack_row(sqlite3_stmt *st, const struct km_rollup_query *q,
		      const char *table, const char *key, int64_t *k,
		      struct km_rollup_hour *h, struct km_error *err)
{
	static const uint8_t none[1];
	const uint8_t *blob;
	struct km_error why = {0};
	int len;

	*k = sqlite3_column_int64(st, 0);
	if (sqlite3_column_type(st, 0) != SQLITE_INTEGER)
		return km_error_set(err, KM_ECORRUPT,
				    "%s row of target %lld: its %s is not an "
				    "integer",
				    table, (long long)q->target_id, key);
	blob = sqlite3_column_blob(st, 1);
	len = sqlite3_column_bytes(st, 1);
	if (!blob) /* an empty or NULL blob: no minute */
		blob = none, len = 0;
	if (km_rollup_unpack(blob, (size_t)len, h, &why))
		return km_error_set(err, KM_ECORRUPT,
				    "%s row (target %lld, %s %lld): %s", table,
				    (long long)q->target_id, key, (long long)*k,
				    why.msg);
	return 0;
}

/* Hour H (of a day row), counted whole: in the step of its start, or of
 * from_us for the hour that holds it. Notes in coarse_until_us an hour
 * that does not fit its step or the range. */
static void add_hour(struct series *s, int64_t H,
		     const struct km_rollup_slot *slot)
{
	const struct km_rollup_query *q = s->q;
	int64_t start = H * KM_HOUR_US;
	int64_t t = start > q->from_us ? start : q->from_us;
	bool fits = start >= q->from_us &&
		    (start - q->from_us) % q->step_us + KM_HOUR_US <=
			    q->step_us &&
		    q->to_us - start >= KM_HOUR_US;

	km_rollup_merge(step_of(s, t), slot);
	if (!fits && start + KM_HOUR_US > s->out->coarse_until_us)
		s->out->coarse_until_us = start + KM_HOUR_US;
}

/* Hours [h0, e) from the day rows. */
static int read_days(struct km_reader *r, struct series *s, int64_t h0,
		     int64_t e, struct km_rollup_hour *h, struct km_error *err)
{
	const struct km_rollup_query *q = s->q;
	sqlite3_stmt *st;
	int rc;

	if (e <= h0)
		return 0;
	if ((rc = lazy(r, L_DAYS, &st, err)))
		return rc;
	sqlite3_bind_int64(st, 1, q->target_id);
	sqlite3_bind_int64(st, 2, km_floor_div(h0, 24));
	sqlite3_bind_int64(st, 3, km_floor_div(e - 1, 24));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t day;

		rc = unpack_row(st, q, "rollup_hours", "day", &day, h, err);
		for (int i = 24; !rc && i < 60; i++)
			if (h->min[i].count)
				rc = km_error_set(err, KM_ECORRUPT,
						  "rollup_hours row (target "
						  "%lld, day %lld): hour %d is "
						  "past the day",
						  (long long)q->target_id,
						  (long long)day, i);
		if (rc) {
			sqlite3_reset(st);
			return rc;
		}
		for (int i = 0; i < 24; i++) {
			int64_t H = day * 24 + i;

			if (H >= h0 && H < e && h->min[i].count)
				add_hour(s, H, &h->min[i]);
		}
	}
	return km_reader_done(r, st, rc, err, "read hour rollups");
}

/* Hours [e, h1) from the minute rows. */
static int read_hours(struct km_reader *r, struct series *s, int64_t e,
		      int64_t h1, struct km_rollup_hour *h,
		      struct km_error *err)
{
	const struct km_rollup_query *q = s->q;
	sqlite3_stmt *st;
	int rc;

	if (h1 <= e)
		return 0;
	if ((rc = lazy(r, L_HOURS, &st, err)))
		return rc;
	sqlite3_bind_int64(st, 1, q->target_id);
	sqlite3_bind_int64(st, 2, e);
	sqlite3_bind_int64(st, 3, h1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t hour;

		if ((rc = unpack_row(st, q, "rollup_minutes", "hour", &hour, h,
				     err))) {
			sqlite3_reset(st);
			return rc;
		}
		for (int m = 0; m < 60; m++) {
			int64_t t = hour * KM_HOUR_US + m * KM_MINUTE_US;

			if (h->min[m].count && t >= q->from_us && t < q->to_us)
				km_rollup_merge(step_of(s, t), &h->min[m]);
		}
	}
	return km_reader_done(r, st, rc, err, "read minute rollups");
}

/* The hour of the target's oldest minute row; INT64_MAX when it has
 * none. */
static int oldest_minute_hour(struct km_reader *r, int64_t target_id,
			      int64_t *hour, struct km_error *err)
{
	sqlite3_stmt *st;
	int rc;

	*hour = INT64_MAX;
	if ((rc = lazy(r, L_OLDEST_MINUTE, &st, err)))
		return rc;
	sqlite3_bind_int64(st, 1, target_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int type = sqlite3_column_type(st, 0);

		if (type == SQLITE_INTEGER) {
			*hour = sqlite3_column_int64(st, 0);
		} else if (type != SQLITE_NULL) {
			sqlite3_reset(st);
			return km_error_set(err, KM_ECORRUPT,
					    "rollup_minutes of target %lld: an "
					    "hour is not an integer",
					    (long long)target_id);
		}
	}
	return km_reader_done(r, st, rc, err, "read minute rollups");
}

static int check_query(const struct km_rollup_query *q, size_t *n,
		       struct km_error *err)
{
	int64_t span, steps;

	if (q->from_us < -TIME_MAX || q->to_us > TIME_MAX)
		return km_error_set(err, KM_EINVAL,
				    "rollups: the range is past year 73,000");
	if (q->to_us <= q->from_us)
		return km_error_set(err, KM_EINVAL,
				    "rollups: the range is empty (from %lld "
				    "to %lld)",
				    (long long)q->from_us, (long long)q->to_us);
	if (q->step_us <= 0 || q->step_us % KM_MINUTE_US ||
	    q->step_us > TIME_MAX)
		return km_error_set(err, KM_EINVAL,
				    "rollups: a step of %lld us is not a whole "
				    "number of minutes",
				    (long long)q->step_us);
	if (q->from_us % KM_MINUTE_US)
		return km_error_set(err, KM_EINVAL,
				    "rollups: the range starts within a "
				    "minute (%lld us)",
				    (long long)q->from_us);
	span = q->to_us - q->from_us;
	steps = span / q->step_us + (span % q->step_us != 0);
	if (steps > KM_ROLLUP_STEPS_MAX)
		return km_error_set(err, KM_EINVAL,
				    "rollups: %lld steps, more than %d",
				    (long long)steps, KM_ROLLUP_STEPS_MAX);
	*n = (size_t)steps;
	return 0;
}

static int rollups(struct km_reader *r, const struct km_rollup_query *q,
		   struct km_rollup_series *out, struct km_rollup_hour *h,
		   struct km_error *err)
{
	struct series s = {q, out};
	int64_t h0 = km_floor_div(q->from_us, KM_HOUR_US);
	int64_t h1 = km_floor_div(q->to_us - 1, KM_HOUR_US) + 1;
	int64_t whole = km_floor_div(q->to_us, KM_HOUR_US), oldest, e;
	bool hourly = q->step_us % KM_HOUR_US == 0 &&
		      q->from_us % KM_HOUR_US == 0;
	int rc;

	if ((rc = oldest_minute_hour(r, q->target_id, &oldest, err)))
		return rc;
	/* Hours [h0, e) from day rows, [e, h1) from minute rows. */
	e = clamp(hourly && whole > oldest ? whole : oldest, h0, h1);
	rc = read_days(r, &s, h0, e, h, err);
	if (!rc)
		rc = read_hours(r, &s, e, h1, h, err);
	return rc;
}

int km_reader_rollups(struct km_reader *r, const struct km_rollup_query *q,
		      struct km_arena *a, struct km_rollup_series *out,
		      struct km_error *err)
{
	bool own = sqlite3_get_autocommit(km_reader_db(r));
	struct km_rollup_hour *h;
	size_t n = 0;
	int rc;

	memset(out, 0, sizeof *out);
	out->coarse_until_us = INT64_MIN;
	if ((rc = check_query(q, &n, err)))
		return rc;
	out->steps = km_arena_calloc(a, n, sizeof *out->steps);
	/* One hour unpacked at a time (5 kB): off the caller's stack. */
	h = km_arena_alloc(a, sizeof *h);
	if (!out->steps || !h) {
		out->steps = NULL;
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	out->n = n;
	/* The oldest minute row and the two ranges: one snapshot (unless
	 * the caller holds one already). */
	if (own && (rc = km_reader_begin(r, err)))
		goto fail;
	rc = rollups(r, q, out, h, err);
	if (own)
		km_reader_end(r);
	if (!rc)
		return 0;
fail:
	out->steps = NULL;
	out->n = 0;
	out->coarse_until_us = INT64_MIN;
	return rc;
}

int64_t km_rollup_slot_quantile(const struct km_rollup_slot *s, double q)
{
	int lo = -1, hi = -1;
	int64_t max;

	for (int b = 0; b < KM_LAT_BUCKETS; b++) {
		if (!s->hist[b])
			continue;
		if (lo < 0)
			lo = b;
		hi = b;
	}
	if (lo < 0)
		return -1;
	max = hi == KM_LAT_BUCKETS - 1 ? km_lat_bucket_lower_us(hi)
				       : km_lat_bucket_upper_us(hi) - 1;
	return km_lat_quantile(s->hist, q, km_lat_bucket_lower_us(lo), max);
}
