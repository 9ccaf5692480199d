/*
 * libFuzzer target: km_http1's response parser on arbitrary bytes, as a
 * server on the other end of a probe may send them. The first byte picks
 * how the rest is split into reads and how big the body buffer is; the
 * same bytes fed whole must give the same outcome (result, status, body,
 * Location), and a DONE response never reports more body than the buffer.
 * km_http1_request is run on the input as a path and a header value: it
 * must never overflow and never let CR or LF into a header.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "km_http1.h"

static struct km_http1 a, b;
static char body_a[256], body_b[256];

static enum km_http1_result feed(struct km_http1 *p, const char *d, size_t n,
				 size_t step)
{
	enum km_http1_result r = KM_HTTP1_MORE;
	size_t off = 0;

	while (off < n && r == KM_HTTP1_MORE) {
		size_t k = step && step < n - off ? step : n - off;

		r = km_http1_feed(p, d + off, k);
		off += k;
	}
	return r == KM_HTTP1_MORE ? km_http1_eof(p) : r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data + 1;
	size_t n, step, cap;
	enum km_http1_result ra, rb;

	if (size < 1)
		return 0;
	n = size - 1;
	step = (data[0] & 15) + 1;
	cap = (size_t)(data[0] >> 4) * 16 + 1;
	km_http1_init(&a, body_a, cap);
	km_http1_init(&b, body_b, cap);
	ra = feed(&a, d, n, 0);
	rb = feed(&b, d, n, step);
	CHECK(ra == rb);
	CHECK(ra != KM_HTTP1_MORE);
	if (ra == KM_HTTP1_DONE) {
		CHECK(a.status == b.status);
		CHECK(a.status >= 0 && a.status <= 999);
		CHECK(a.body_len == b.body_len && a.body_len <= cap);
		CHECK(!memcmp(body_a, body_b, a.body_len));
		CHECK(a.has_location == b.has_location);
		CHECK(!a.has_location || !strcmp(a.location, b.location));
	} else {
		CHECK(a.error && b.error);
	}

	{
		/* The input as a path and as a header value. */
		char *s = malloc(n + 1), out[512];
		struct km_kv h = {"X-Fuzz", NULL};
		int len;

		CHECK(s);
		memcpy(s, d, n);
		s[n] = '\0';
		h.value = s;
		len = km_http1_request(out, sizeof out, s, "h:1", &h, 1, "ua");
		CHECK(len <= (int)sizeof out);
		if (len >= 0) {
			/* Exactly the lines we wrote: request line, Host,
			 * X-Fuzz, User-Agent, Accept, Connection, end. */
			int crlf = 0, lf = 0, cr = 0;

			for (int i = 0; i < len; i++) {
				lf += out[i] == '\n';
				cr += out[i] == '\r';
				crlf += i + 1 < len && out[i] == '\r' &&
					out[i + 1] == '\n';
			}
			CHECK(crlf == 7 && lf == 7 && cr == 7);
		}
		free(s);
	}
	return 0;
}
