/*
 * One target's open hour of rollups (km_open_hour.h).
 */
#include "km_open_hour.h"

#include <stdlib.h>
#include <string.h>

/* A packed blob that grows. */
struct blob {
	uint8_t *p;
	uint32_t len, cap;
};

struct km_open_hour {
	int64_t target_id, hour;
	int cur;                        /* minute of cur_slot; -1: none */
	struct km_rollup_slot cur_slot; /* counted, not yet in minutes */
	struct km_rollup_slot total;    /* the open hour's, every minute */
	struct blob minutes;            /* the hour's minutes but cur_slot */
	struct blob hours; /* the day's hours; the open hour's slot is stale
	                      (total replaces it when rows are taken) */
	bool changed;
};

int64_t km_hour_of(int64_t us)
{
	return km_floor_div(us, KM_HOUR_US);
}

int64_t km_day_of_hour(int64_t hour)
{
	return km_floor_div(hour, 24);
}

int km_minute_of(int64_t us)
{
	return (int)(km_floor_div(us, KM_MINUTE_US) -
		     km_floor_div(us, KM_HOUR_US) * 60);
}

static int blob_set(struct blob *b, const uint8_t *p, size_t len)
{
	if (len > b->cap) {
		uint8_t *n = realloc(b->p, len);

		if (!n)
			return KM_ENOMEM;
		b->p = n;
		b->cap = (uint32_t)len;
	}
	if (len)
		memcpy(b->p, p, len);
	b->len = (uint32_t)len;
	return 0;
}

static int unpack(const uint8_t *p, size_t len, struct km_rollup_hour *h,
		  const char *what, struct km_error *err)
{
	int rc = km_rollup_unpack(p, len, h, err);

	if (rc)
		km_error_prefix(err, "%s", what);
	return rc;
}

int km_open_hour_new(int64_t target_id, int64_t hour, const uint8_t *minutes,
		     size_t minutes_len, const uint8_t *hours, size_t hours_len,
		     struct km_rollup_scratch *x, struct km_open_hour **out,
		     struct km_error *err)
{
	struct km_open_hour *o;
	int rc;

	*out = NULL;
	if ((rc = unpack(minutes, minutes_len, &x->h, "stored minute rollup",
			 err)))
		return rc;
	if (!(o = calloc(1, sizeof *o)))
		return KM_ENOMEM;
	o->target_id = target_id;
	o->hour = hour;
	o->cur = -1;
	km_rollup_hour_total(&x->h, &o->total);
	rc = blob_set(&o->minutes, minutes, minutes_len);
	if (!rc && (rc = unpack(hours, hours_len, &x->h, "stored hour rollup",
				err)) == 0)
		rc = blob_set(&o->hours, hours, hours_len);
	if (rc) {
		km_open_hour_free(o);
		return rc;
	}
	*out = o;
	return 0;
}

void km_open_hour_free(struct km_open_hour *o)
{
	if (!o)
		return;
	free(o->minutes.p);
	free(o->hours.p);
	free(o);
}

/* Merges slot s into minute m of the packed minutes. Blobs in memory were
 * packed here, so they unpack. */
static int merge_minute(struct km_open_hour *o, int m,
			const struct km_rollup_slot *s,
			struct km_rollup_scratch *x)
{
	struct km_error err;

	if (km_rollup_unpack(o->minutes.p, o->minutes.len, &x->h, &err))
		return KM_EIO; /* cannot happen: packed here */
	km_rollup_merge(&x->h.min[m], s);
	return blob_set(&o->minutes, x->minutes,
			km_rollup_pack(&x->h, x->minutes));
}

int km_open_hour_fold(struct km_open_hour *o, const struct km_result *r,
		      struct km_rollup_scratch *x, enum km_open_hour_fold *what)
{
	int64_t hour = km_hour_of(r->started_us);
	int m = km_minute_of(r->started_us);

	if (hour != o->hour) {
		*what = hour < o->hour ? KM_OPEN_HOUR_LATE : KM_OPEN_HOUR_NEXT;
		return 0;
	}
	*what = KM_OPEN_HOUR_ADDED;
	if (m != o->cur) {
		if (o->cur >= 0) {
			int rc = merge_minute(o, o->cur, &o->cur_slot, x);

			if (rc)
				return rc;
		}
		memset(&o->cur_slot, 0, sizeof o->cur_slot);
		o->cur = m;
	}
	km_rollup_add(&o->cur_slot, r);
	km_rollup_add(&o->total, r);
	o->changed = true;
	return 0;
}

int km_open_hour_merge(struct km_open_hour *o, int64_t hour,
		       const struct km_rollup_hour *add,
		       struct km_rollup_scratch *x)
{
	struct km_rollup_slot t;
	struct km_error err;
	int rc;

	if (hour == o->hour) {
		if (km_rollup_unpack(o->minutes.p, o->minutes.len, &x->h, &err))
			return -KM_EIO;
		for (int m = 0; m < 60; m++)
			km_rollup_merge(&x->h.min[m], &add->min[m]);
		km_rollup_hour_total(add, &t);
		if ((rc = blob_set(&o->minutes, x->minutes,
				   km_rollup_pack(&x->h, x->minutes))))
			return -rc;
		km_rollup_merge(&o->total, &t);
		o->changed = true;
		return KM_OPEN_HOUR_MERGED_MINUTES;
	}
	if (km_floor_div(hour, 24) != km_floor_div(o->hour, 24))
		return 0;
	if (km_rollup_unpack(o->hours.p, o->hours.len, &x->h, &err))
		return -KM_EIO;
	km_rollup_hour_total(add, &t);
	km_rollup_merge(&x->h.min[hour - km_floor_div(hour, 24) * 24], &t);
	if ((rc = blob_set(&o->hours, x->hours,
			   km_rollup_pack(&x->h, x->hours))))
		return -rc;
	o->changed = true;
	return KM_OPEN_HOUR_MERGED_DAY;
}

bool km_open_hour_changed(const struct km_open_hour *o)
{
	return o->changed;
}

int km_open_hour_rows(struct km_open_hour *o, struct km_rollup_scratch *x,
		      struct km_open_hour_rows *out)
{
	struct km_error err;
	int64_t day = km_floor_div(o->hour, 24);

	if (km_rollup_unpack(o->minutes.p, o->minutes.len, &x->h, &err))
		return KM_EIO;
	if (o->cur >= 0)
		km_rollup_merge(&x->h.min[o->cur], &o->cur_slot);
	out->minutes_len = km_rollup_pack(&x->h, x->minutes);
	if (km_rollup_unpack(o->hours.p, o->hours.len, &x->h, &err))
		return KM_EIO;
	x->h.min[o->hour - day * 24] = o->total;
	out->hours_len = km_rollup_pack(&x->h, x->hours);
	out->total = o->total;
	out->target_id = o->target_id;
	out->hour = o->hour;
	out->day = day;
	out->minutes = x->minutes;
	out->hours = x->hours;
	return 0;
}

void km_open_hour_written(struct km_open_hour *o)
{
	o->changed = false;
}

void km_open_hour_touch(struct km_open_hour *o)
{
	o->changed = true;
}

int64_t km_open_hour_hour(const struct km_open_hour *o)
{
	return o->hour;
}

int km_rollup_merge_rows(int64_t hour, const uint8_t *minutes,
			 size_t minutes_len, const uint8_t *hours,
			 size_t hours_len, const struct km_rollup_hour *add,
			 struct km_rollup_scratch *x,
			 struct km_open_hour_rows *out, struct km_error *err)
{
	struct km_rollup_slot t;
	int64_t day = km_floor_div(hour, 24);
	int rc;

	if ((rc = unpack(minutes, minutes_len, &x->h, "stored minute rollup",
			 err)))
		return rc;
	for (int m = 0; m < 60; m++)
		km_rollup_merge(&x->h.min[m], &add->min[m]);
	out->minutes_len = km_rollup_pack(&x->h, x->minutes);
	if ((rc = unpack(hours, hours_len, &x->h, "stored hour rollup", err)))
		return rc;
	km_rollup_hour_total(add, &t);
	km_rollup_merge(&x->h.min[hour - day * 24], &t);
	out->hours_len = km_rollup_pack(&x->h, x->hours);
	out->total = x->h.min[hour - day * 24];
	out->hour = hour;
	out->day = day;
	out->minutes = x->minutes;
	out->hours = x->hours;
	return 0;
}
