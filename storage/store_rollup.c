/*
 * Rollups and their packing (km_rollup.h).
 */
#include "km_rollup.h"

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

size_t km_rollup_pack(const struct km_rollup_hour *h, uint8_t *buf)
{
	size_t n = 0;
	int prev = -1;

	for (int m = 0; m < 60; m++) {
		const struct km_rollup_slot *s = &h->min[m];
		uint32_t mask = 0;

		if (!s->count)
			continue;
		for (int b = 0; b < KM_LAT_BUCKETS; b++)
			if (s->hist[b])
				mask |= 1u << b;
		n += put_varint(buf + n, (uint32_t)(m - prev - 1));
		n += put_varint(buf + n, s->count);
		n += put_varint(buf + n, s->failures);
		n += put_varint(buf + n, mask);
		for (int b = 0; b < KM_LAT_BUCKETS; b++)
			if (s->hist[b])
				n += put_varint(buf + n, s->hist[b]);
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

int km_rollup_unpack(const uint8_t *buf, size_t len, struct km_rollup_hour *h,
		     struct km_error *err)
{
	struct rd r = {buf, buf + len};
	int prev = -1;

	memset(h, 0, sizeof *h);
	while (r.p < r.end) {
		struct km_rollup_slot *s;
		uint32_t delta, mask, sum = 0;
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
		if (!get_varint(&r, &s->count) ||
		    !get_varint(&r, &s->failures) || !get_varint(&r, &mask))
			return km_error_set(err, KM_EINVAL,
					    "rollup blob: minute %d: cut short "
					    "or malformed",
					    m);
		if (!s->count || s->failures > s->count ||
		    mask >> KM_LAT_BUCKETS || !mask)
			return km_error_set(err, KM_EINVAL,
					    "rollup blob: minute %d: counts "
					    "out of range (count %u, failures "
					    "%u, mask %#x)",
					    m, s->count, s->failures, mask);
		for (int b = 0; b < KM_LAT_BUCKETS; b++) {
			if (!(mask & (1u << b)))
				continue;
			if (!get_varint(&r, &s->hist[b]) || !s->hist[b])
				return km_error_set(
					err, KM_EINVAL,
					"rollup blob: minute %d: bucket %d "
					"cut short or empty",
					m, b);
			sum = sat_add(sum, s->hist[b]);
		}
		if (sum != s->count && s->count != UINT32_MAX)
			return km_error_set(err, KM_EINVAL,
					    "rollup blob: minute %d: the "
					    "histogram counts %u, not %u",
					    m, sum, s->count);
		prev = m;
	}
	return 0;
}
