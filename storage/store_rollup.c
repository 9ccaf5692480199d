/*
 * Rollups and their packing (km_rollup.h).
 */
#include "km_rollup.h"

#include <stdio.h>
#include <string.h>

static uint32_t sat_add(uint32_t a, uint32_t b)
{
	return b > UINT32_MAX - a ? UINT32_MAX : a + b;
}

void km_rollup_add(struct km_rollup_slot *s, const struct km_result *r)
{
	s->count = sat_add(s->count, 1);
	if (!r->success)
		s->failures = sat_add(s->failures, 1);
	s->hist[km_lat_bucket(r->duration_us)] =
		sat_add(s->hist[km_lat_bucket(r->duration_us)], 1);
}

void km_rollup_merge(struct km_rollup_slot *dst,
		     const struct km_rollup_slot *src)
{
	dst->count = sat_add(dst->count, src->count);
	dst->failures = sat_add(dst->failures, src->failures);
	km_lat_merge(dst->hist, src->hist);
}

void km_rollup_hour_total(const struct km_rollup_hour *h,
			  struct km_rollup_slot *out)
{
	memset(out, 0, sizeof *out);
	for (int m = 0; m < 60; m++)
		km_rollup_merge(out, &h->min[m]);
}

/* ---- the blob ----------------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint32_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

size_t km_lat_pack(const uint32_t h[KM_LAT_BUCKETS], uint8_t *buf)
{
	uint32_t mask = 0;
	size_t n;

	for (int b = 0; b < KM_LAT_BUCKETS; b++)
		if (h[b])
			mask |= 1u << b;
	n = put_varint(buf, mask);
	for (int b = 0; b < KM_LAT_BUCKETS; b++)
		if (h[b])
			n += put_varint(buf + n, h[b]);
	return n;
}

size_t km_rollup_pack_slot(uint8_t *buf, int prev, int index,
			   const struct km_rollup_slot *s)
{
	size_t n = put_varint(buf, (uint32_t)(index - prev - 1));

	n += put_varint(buf + n, s->count);
	n += put_varint(buf + n, s->failures);
	return n + km_lat_pack(s->hist, buf + n);
}

size_t km_rollup_pack(const struct km_rollup_hour *h, uint8_t *buf)
{
	size_t n = 0;
	int prev = -1;

	for (int m = 0; m < 60; m++) {
		if (!h->min[m].count)
			continue;
		n += km_rollup_pack_slot(buf + n, prev, m, &h->min[m]);
		prev = m;
	}
	return n;
}

struct rd {
	const uint8_t *p, *end;
};

/* A varint of at most 32 bits; false if cut short or too long. */
static bool get_varint(struct rd *r, uint32_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 35; shift += 7) {
		uint8_t b;

		if (r->p == r->end)
			return false;
		b = *r->p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (x > UINT32_MAX)
				return false;
			*v = (uint32_t)x;
			return true;
		}
	}
	return false;
}

/* A histogram: its bucket mask, then each non-empty bucket's count, and
 * *sum their (saturated) sum. 0; HIST_BAD_MASK for a mask cut short,
 * malformed, empty or past the buckets (*mask says which when read); or
 * HIST_BAD_BUCKET + b for bucket b cut short or empty. */
#define HIST_BAD_MASK 1
#define HIST_BAD_BUCKET 2

static int get_hist(struct rd *r, uint32_t h[KM_LAT_BUCKETS], uint32_t *sum,
		    uint32_t *mask)
{
	*sum = 0;
	*mask = 0;
	if (!get_varint(r, mask) || !*mask || *mask >> KM_LAT_BUCKETS)
		return HIST_BAD_MASK;
	for (int b = 0; b < KM_LAT_BUCKETS; b++) {
		if (!(*mask & (1u << b)))
			continue;
		if (!get_varint(r, &h[b]) || !h[b])
			return HIST_BAD_BUCKET + b;
		*sum = sat_add(*sum, h[b]);
	}
	return 0;
}

/* err for get_hist's code (not 0), in a rollup blob's minute m, or (m
 * < 0) in a histogram alone. */
static int hist_err(struct km_error *err, int m, int code, uint32_t mask)
{
	char where[48];

	if (m >= 0)
		snprintf(where, sizeof where, "rollup blob: minute %d", m);
	else
		snprintf(where, sizeof where, "latency histogram");
	if (code == HIST_BAD_MASK)
		return km_error_set(err, KM_EINVAL,
				    "%s: the bucket mask %#x is cut short, "
				    "malformed, empty or past bucket %d",
				    where, mask, KM_LAT_BUCKETS - 1);
	return km_error_set(err, KM_EINVAL,
			    "%s: bucket %d is cut short or empty", where,
			    code - HIST_BAD_BUCKET);
}

int km_lat_unpack(const uint8_t *buf, size_t len, uint32_t h[KM_LAT_BUCKETS],
		  struct km_error *err)
{
	struct rd r = {buf, buf + len};
	uint32_t sum, mask;
	int code;

	memset(h, 0, KM_LAT_BUCKETS * sizeof *h);
	if ((code = get_hist(&r, h, &sum, &mask)))
		return hist_err(err, -1, code, mask);
	if (r.p != r.end)
		return km_error_set(err, KM_EINVAL,
				    "latency histogram: %zu bytes past its end",
				    (size_t)(r.end - r.p));
	return 0;
}

int km_rollup_unpack(const uint8_t *buf, size_t len, struct km_rollup_hour *h,
		     struct km_error *err)
{
	struct rd r = {buf, buf + len};
	int prev = -1;

	memset(h, 0, sizeof *h);
	while (r.p < r.end) {
		struct km_rollup_slot *s;
		uint32_t delta, sum, mask;
		int code;
		size_t at = (size_t)(r.p - buf);
		int m;

		if (!get_varint(&r, &delta) || delta > 59)
			return km_error_set(err, KM_EINVAL,
					    "rollup blob: byte %zu: a minute's "
					    "delta is malformed or too large",
					    at);
		m = prev + 1 + (int)delta;
		if (m > 59)
			return km_error_set(err, KM_EINVAL,
					    "rollup blob: byte %zu: minute %d "
					    "is past the hour",
					    at, m);
		s = &h->min[m];
		if (!get_varint(&r, &s->count) || !get_varint(&r, &s->failures))
			return km_error_set(err, KM_EINVAL,
					    "rollup blob: minute %d: cut short "
					    "or malformed",
					    m);
		if (!s->count || s->failures > s->count)
			return km_error_set(err, KM_EINVAL,
					    "rollup blob: minute %d: counts "
					    "out of range (count %u, failures "
					    "%u)",
					    m, s->count, s->failures);
		if ((code = get_hist(&r, s->hist, &sum, &mask)))
			return hist_err(err, m, code, mask);
		if (sum != s->count && s->count != UINT32_MAX)
			return km_error_set(err, KM_EINVAL,
					    "rollup blob: minute %d: the "
					    "histogram counts %u, not %u",
					    m, sum, s->count);
		prev = m;
	}
	return 0;
}
