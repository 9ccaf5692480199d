/*
 * km_http1 — the two halves of a probe's HTTP/1.1 exchange that the prober
 * does itself for plain HTTP to an IP address (km_check_http.c): the
 * request it writes, and an incremental parser for the response it reads.
 * No I/O and no allocation here, so the parser is unit-tested and fuzzed
 * on its own (tests/unit/test_http1.c, tests/fuzz/fuzz_http1.c).
 *
 * The parser follows Go's net/http client as the kubelet uses it:
 *  - informational 1xx responses other than 101 are skipped (at most 5,
 *    as Go allows); 101 is final;
 *  - the body is chunked if Transfer-Encoding says so (any other coding is
 *    an error), else Content-Length bytes (differing duplicates are an
 *    error), else everything until the server closes; 204, 304 and 1xx
 *    have none;
 *  - the response head may be at most 10 MiB (Go's default); a line
 *    longer than KM_HTTP1_LINE_MAX is cut, which only matters for a
 *    Location header (an error: it could not be followed faithfully);
 *  - the body is kept up to the caller's buffer (the kubelet's 10 KiB);
 *    reaching it ends the response early, which is not an error.
 * Bytes after the end of the response are ignored.
 */
#ifndef KM_HTTP1_H
#define KM_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_model.h"

#define KM_HTTP1_LINE_MAX 8192
#define KM_HTTP1_HEAD_MAX (10 << 20)

enum km_http1_result {
	KM_HTTP1_MORE = 0, /* feed more bytes (or km_http1_eof) */
	KM_HTTP1_DONE,     /* the response is complete (or the body full) */
	KM_HTTP1_ERROR,    /* malformed: p->error says how */
};

struct km_http1 {
	/* Results, valid once km_http1_feed or km_http1_eof says DONE. */
	int status;
	bool has_location;
	char location[KM_HTTP1_LINE_MAX];
	size_t body_len;
	bool truncated; /* the body went on past the buffer */
	const char *error;

	/* Parser state. */
	char *body;
	size_t body_cap;
	int state;
	int informational; /* 1xx responses skipped */
	bool chunked;
	int64_t content_length; /* -1: none given */
	int64_t left;           /* of the body or the current chunk */
	uint64_t head_bytes;
	size_t line_len;
	bool line_cut;
	char line[KM_HTTP1_LINE_MAX];
};

/* Prepares p for a response whose body goes into body[0..cap). */
void km_http1_init(struct km_http1 *p, char *body, size_t cap);

/* Parses the next n bytes of the response. */
enum km_http1_result km_http1_feed(struct km_http1 *p, const char *data,
				   size_t n);

/* The server closed the connection: DONE if that ends the response (a body
 * delimited by the close), ERROR otherwise. */
enum km_http1_result km_http1_eof(struct km_http1 *p);

/* Writes the kubelet's request into out (cap bytes): "GET target
 * HTTP/1.1", Host (host_port unless the probe gives one), the probe's
 * headers, User-Agent and Accept unless given, "Connection: close".
 * Bytes of the target that may not appear in a request line are
 * percent-encoded; header names and values with CR, LF or NUL are
 * refused. Returns the length, or -1 if it does not fit or a header is
 * unsafe. */
int km_http1_request(char *out, size_t cap, const char *target,
		     const char *host_port, const struct km_kv *h,
		     size_t n_headers, const char *user_agent);

#endif
