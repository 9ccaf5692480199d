/*
 * Page tokens: opaque to clients, checked on the way back in.
 *
 * Layout before base64url: 'K', version 1, the 8-byte query hash, two
 * 8-byte big-endian integers, then the cursor string's bytes. The hash
 * binds a token to the filters of the query that made it: reusing it with
 * other filters would silently skip or repeat rows, so it is refused. The
 * handlers compute it with km_hash_field and km_hash_i64 (km_hash.h), whose
 * values tokens already issued depend on (tests/unit/test_hash.c pins
 * them).
 */
#include <string.h>

#include "api_internal.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#define HEADER 26 /* 'K', version, hash, a, b */

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = v & 0xff;
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

char *km_api_token_encode(struct km_arena *a, uint64_t query_hash,
			  const struct api_cursor *c)
{
	size_t slen = c->s ? strlen(c->s) : 0, n = HEADER + slen, o = 0;
	unsigned char *raw = km_arena_alloc(a, n);
	char *out = km_arena_alloc(a, (n + 2) / 3 * 4 + 1);

	if (!raw || !out)
		return NULL;
	raw[0] = 'K';
	raw[1] = 1;
	put_u64(raw + 2, query_hash);
	put_u64(raw + 10, (uint64_t)c->a);
	put_u64(raw + 18, (uint64_t)c->b);
	if (slen)
		memcpy(raw + HEADER, c->s, slen);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)raw[i + 1] << 8;
		if (left > 2)
			v |= raw[i + 2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		if (left > 1)
			out[o++] = b64[v >> 6 & 63];
		if (left > 2)
			out[o++] = b64[v & 63];
	}
	out[o] = '\0';
	return out;
}

static int b64_value(char ch)
{
	const char *p = ch ? strchr(b64, ch) : NULL;

	return p ? (int)(p - b64) : -1;
}

int km_api_token_decode(const char *token, uint64_t query_hash,
			struct km_arena *a, struct api_cursor *c, bool *present,
			struct km_error *err)
{
	size_t len = strlen(token), n = 0;
	unsigned char *raw;
	uint32_t acc = 0;
	int bits = 0;

	memset(c, 0, sizeof *c);
	c->s = "";
	*present = false;
	if (len == 0)
		return 0;
	if (len > 2048 || len % 4 == 1)
		goto bad;
	raw = km_arena_alloc(a, len);
	if (!raw)
		return API_OOM(err);
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(token[i]);

		if (v < 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			raw[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (n < HEADER || raw[0] != 'K' || raw[1] != 1)
		goto bad;
	if (get_u64(raw + 2) != query_hash)
		return km_error_set(err, KM_EINVAL,
				    "page_token: it belongs to a query with "
				    "other filters; repeat the query that "
				    "returned it, or start without a token");
	c->a = (int64_t)get_u64(raw + 10);
	c->b = (int64_t)get_u64(raw + 18);
	c->s = km_arena_strndup(a, (const char *)raw + HEADER, n - HEADER);
	if (!c->s)
		return API_OOM(err);
	*present = true;
	return 0;
bad:
	return km_error_set(err, KM_EINVAL,
			    "page_token: not a token this server issued (pass "
			    "next_page_token back unchanged)");
}
