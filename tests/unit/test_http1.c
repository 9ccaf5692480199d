/*
 * km_http1: the response parser on its own — framing (Content-Length,
 * chunked, close-delimited), 1xx, bodies cut at the buffer, malformed
 * input, and that how the bytes are split across reads changes nothing —
 * and the request the prober writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_http1.h"

struct parsed {
	enum km_http1_result r;
	int status;
	char body[64];
	size_t body_len;
	bool truncated;
	char location[128];
	const char *error;
};

/* Feeds s in pieces of `step` bytes (0: all at once), then EOF if the
 * parser still wants more and eof is set. */
static struct parsed parse_split(const char *s, size_t cap, size_t step,
				 bool eof)
{
	static struct km_http1 p; /* 16 KiB: not on the stack */
	struct parsed out = {0};
	size_t n = strlen(s), off = 0;

	assert_true(cap <= sizeof out.body);
	km_http1_init(&p, out.body, cap);
	out.r = KM_HTTP1_MORE;
	while (off < n && out.r == KM_HTTP1_MORE) {
		size_t k = step && step < n - off ? step : n - off;

		out.r = km_http1_feed(&p, s + off, k);
		off += k;
	}
	if (out.r == KM_HTTP1_MORE && eof)
		out.r = km_http1_eof(&p);
	out.status = p.status;
	out.body_len = p.body_len;
	out.truncated = p.truncated;
	out.error = p.error;
	if (p.has_location)
		snprintf(out.location, sizeof out.location, "%.127s",
			 p.location);
	return out;
}

/* Parses s whole, byte by byte and in 7-byte pieces, asserts the three
 * agree, and returns the whole-buffer result. */
static struct parsed parse(const char *s, size_t cap, bool eof)
{
	struct parsed a = parse_split(s, cap, 0, eof);
	size_t steps[] = {1, 7};

	for (size_t i = 0; i < 2; i++) {
		struct parsed b = parse_split(s, cap, steps[i], eof);

		assert_int_equal(a.r, b.r);
		assert_int_equal(a.status, b.status);
		assert_int_equal(a.body_len, b.body_len);
		assert_memory_equal(a.body, b.body, a.body_len);
		assert_int_equal(a.truncated, b.truncated);
		assert_string_equal(a.location, b.location);
	}
	return a;
}

static void test_content_length(void **state)
{
	struct parsed p;

	(void)state;
	p = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello"
		  "ignored after the end",
		  64, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_int_equal(p.status, 200);
	assert_int_equal(p.body_len, 5);
	assert_memory_equal(p.body, "hello", 5);
	assert_false(p.truncated);
	/* Bare LF line ends are accepted, as Go does. */
	p = parse("HTTP/1.0 404 Not Found\nContent-Length: 0\n\n", 64, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_int_equal(p.status, 404);
	/* Same length twice is fine; two lengths are not. */
	p = parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2"
		  "\r\n\r\nok",
		  64, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	p = parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3"
		  "\r\n\r\nok",
		  64, false);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
	assert_string_equal(p.error, "conflicting Content-Length headers");
	p = parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 64, false);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
	/* The server closing early is an error. */
	p = parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", 64,
		  true);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
	assert_non_null(strstr(p.error, "before the response was complete"));
}

static void test_chunked(void **state)
{
	struct parsed p;

	(void)state;
	p = parse("HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 999\r\n\r\n"
		  "3\r\nabc\r\nA;name=val\r\n0123456789\r\n0\r\n"
		  "Trailer: x\r\n\r\n",
		  64, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_int_equal(p.status, 500);
	assert_int_equal(p.body_len, 13);
	assert_memory_equal(p.body, "abc0123456789", 13);
	/* No CRLF after a chunk's data. */
	p = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "3\r\nabcX\r\n0\r\n\r\n",
		  64, false);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
	assert_string_equal(p.error, "malformed chunked encoding");
	p = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "zz\r\n",
		  64, false);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
	p = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "ffffffffffffffffff\r\n",
		  64, false);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
	assert_string_equal(p.error, "chunk length too large");
	/* Only chunked is understood; and a cut-off stream is an error. */
	p = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 64,
		  false);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
	p = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "3\r\nab",
		  64, true);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
}

static void test_close_delimited_and_no_body(void **state)
{
	struct parsed p;

	(void)state;
	p = parse("HTTP/1.1 200 OK\r\n\r\nuntil close", 64, false);
	assert_int_equal(p.r, KM_HTTP1_MORE);
	p = parse("HTTP/1.1 200 OK\r\n\r\nuntil close", 64, true);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_int_equal(p.body_len, 11);
	/* 204 and 304 have no body, whatever follows. */
	p = parse("HTTP/1.1 204 No Content\r\n\r\n", 64, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	p = parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 64,
		  false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_int_equal(p.body_len, 0);
	/* Nothing at all, or a head cut short. */
	p = parse("", 64, true);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
	assert_non_null(strstr(p.error, "without a response"));
	p = parse("HTTP/1.1 200 OK\r\nContent-", 64, true);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
}

static void test_informational(void **state)
{
	struct parsed p;
	char many[512] = "";

	(void)state;
	p = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n"
		  "Location: /ignored\r\n\r\nHTTP/1.1 200 OK\r\n"
		  "Content-Length: 2\r\n\r\nok",
		  64, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_int_equal(p.status, 200);
	assert_string_equal(p.location, "");
	/* 101 is final (and a failure by the 200-399 rule). */
	p = parse("HTTP/1.1 101 Switching Protocols\r\n\r\n", 64, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_int_equal(p.status, 101);
	for (int i = 0; i < 6; i++)
		strcat(many, "HTTP/1.1 100 Continue\r\n\r\n");
	strcat(many, "HTTP/1.1 200 OK\r\n\r\n");
	p = parse(many, 64, true);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
	assert_string_equal(p.error, "too many 1xx informational responses");
}

static void test_body_is_cut_at_the_buffer(void **state)
{
	struct parsed p;

	(void)state;
	p = parse("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n"
		  "0123456789abcdefghij",
		  8, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_int_equal(p.body_len, 8);
	assert_true(p.truncated);
	/* Exactly the buffer: complete, not truncated. */
	p = parse("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n01234567", 8,
		  false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_false(p.truncated);
	/* Chunked and close-delimited bodies stop at the buffer too: the
	 * rest need not even arrive. */
	p = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "10\r\n0123456789",
		  8, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_true(p.truncated);
	p = parse("HTTP/1.1 200 OK\r\n\r\n0123456789", 8, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_int_equal(p.body_len, 8);
}

static void test_malformed(void **state)
{
	static const char *bad[] = {
		"SSH-2.0-OpenSSH_9.2\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 abc OK\r\n\r\n",
		"HTTP/x.1 200 OK\r\n\r\n",
		"\r\n",
		"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"HTTP/1.1 200 OK\r\n: no name\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct parsed p = parse(bad[i], 64, true);

		assert_int_equal(p.r, KM_HTTP1_ERROR);
		assert_non_null(p.error);
	}
	/* A status line without a reason is fine; folded lines are
	 * ignored. */
	assert_int_equal(
		parse("HTTP/1.1 200\r\n X: folded\r\n\r\n", 64, true).r,
		KM_HTTP1_DONE);
}

static void test_location_and_long_lines(void **state)
{
	static char big[3 * KM_HTTP1_LINE_MAX];
	struct parsed p;
	int n;

	(void)state;
	p = parse("HTTP/1.1 302 Found\r\nlocation:   /next?a=b  \r\n"
		  "Location: /second\r\nContent-Length: 0\r\n\r\n",
		  64, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_string_equal(p.location, "/next?a=b");
	/* A long header we do not use is cut and skipped... */
	n = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nX-Big: ");
	memset(big + n, 'x', 2 * KM_HTTP1_LINE_MAX);
	strcpy(big + n + 2 * KM_HTTP1_LINE_MAX,
	       "\r\nContent-Length: 2\r\n\r\nok");
	p = parse(big, 64, false);
	assert_int_equal(p.r, KM_HTTP1_DONE);
	assert_int_equal(p.body_len, 2);
	/* ...but a Location cut short could not be followed faithfully. */
	n = snprintf(big, sizeof big, "HTTP/1.1 302 Found\r\nLocation: /");
	memset(big + n, 'x', 2 * KM_HTTP1_LINE_MAX);
	strcpy(big + n + 2 * KM_HTTP1_LINE_MAX, "\r\n\r\n");
	p = parse(big, 64, false);
	assert_int_equal(p.r, KM_HTTP1_ERROR);
	assert_string_equal(p.error, "Location header too long");
}

static void test_head_limit(void **state)
{
	static struct km_http1 p;
	char body[8], line[4096];
	enum km_http1_result r;
	size_t fed = 0;

	(void)state;
	km_http1_init(&p, body, sizeof body);
	r = km_http1_feed(&p, "HTTP/1.1 200 OK\r\n", 17);
	memset(line, 'x', sizeof line);
	memcpy(line, "X-Pad: ", 7);
	line[sizeof line - 2] = '\r';
	line[sizeof line - 1] = '\n';
	while (r == KM_HTTP1_MORE && fed < 2 * (size_t)KM_HTTP1_HEAD_MAX) {
		r = km_http1_feed(&p, line, sizeof line);
		fed += sizeof line;
	}
	assert_int_equal(r, KM_HTTP1_ERROR);
	assert_string_equal(p.error, "response headers exceed 10 MiB");
	assert_true(fed <= (size_t)KM_HTTP1_HEAD_MAX + sizeof line);
}

static void test_request(void **state)
{
	struct km_kv h[] = {{"X-Custom", "yes"}, {"accept", "text/plain"}};
	struct km_kv host[] = {{"Host", "example.com"}};
	struct km_kv evil[] = {{"X-A", "b\r\nX-Injected: 1"}};
	char out[1024];
	int n;

	(void)state;
	n = km_http1_request(out, sizeof out, "/healthz?x=1", "10.0.0.1:8080",
			     h, 2, "kubemedic/0.1");
	assert_true(n > 0);
	out[n] = '\0';
	assert_string_equal(out, "GET /healthz?x=1 HTTP/1.1\r\n"
				 "Host: 10.0.0.1:8080\r\n"
				 "X-Custom: yes\r\n"
				 "accept: text/plain\r\n"
				 "User-Agent: kubemedic/0.1\r\n"
				 "Connection: close\r\n\r\n");
	/* The probe's Host wins; bytes a request line cannot hold are
	 * escaped; an empty target is "/". */
	n = km_http1_request(out, sizeof out, "/a b\x7f", "[::1]:80", host, 1,
			     "ua");
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "GET /a%20b%7F HTTP/1.1\r\n"));
	assert_non_null(strstr(out, "Host: example.com\r\n"));
	assert_null(strstr(out, "[::1]"));
	n = km_http1_request(out, sizeof out, "", "h:1", NULL, 0, "ua");
	out[n] = '\0';
	assert_non_null(strstr(out, "GET / HTTP/1.1\r\n"));
	/* No header injection; no overflow. */
	assert_int_equal(km_http1_request(out, sizeof out, "/", "h:1", evil, 1,
					  "ua"),
			 -1);
	assert_int_equal(km_http1_request(out, 40, "/", "h:1", h, 2, "ua"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_close_delimited_and_no_body),
		cmocka_unit_test(test_informational),
		cmocka_unit_test(test_body_is_cut_at_the_buffer),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_location_and_long_lines),
		cmocka_unit_test(test_head_limit),
		cmocka_unit_test(test_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
