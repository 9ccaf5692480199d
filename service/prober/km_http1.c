/*
 * km_http1 — a probe's HTTP/1.1 request and an incremental parser for the
 * response; see km_http1.h for the rules (Go's net/http client's, as the
 * kubelet uses it). Lines are gathered into p->line across feeds; body
 * bytes go straight into the caller's buffer.
 */
#include "km_http1.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum {
	S_STATUS,
	S_HEADER,
	S_BODY, /* left bytes, or until close if left < 0 */
	S_CHUNK_SIZE,
	S_CHUNK_DATA,
	S_CHUNK_END, /* the CRLF after a chunk's data */
	S_TRAILER,
	S_DONE,
	S_ERROR,
};

#define MAX_INFORMATIONAL 5

void km_http1_init(struct km_http1 *p, char *body, size_t cap)
{
	memset(p, 0, offsetof(struct km_http1, line));
	p->body = body;
	p->body_cap = cap;
	p->state = S_STATUS;
	p->content_length = -1;
}

static enum km_http1_result fail(struct km_http1 *p, const char *why)
{
	p->state = S_ERROR;
	p->error = why;
	return KM_HTTP1_ERROR;
}

static enum km_http1_result done(struct km_http1 *p)
{
	p->state = S_DONE;
	return KM_HTTP1_DONE;
}

/* Trims optional whitespace (SP, HTAB) from both ends of s[0..*n). */
static const char *trim(const char *s, size_t *n)
{
	while (*n && (*s == ' ' || *s == '\t')) {
		s++;
		(*n)--;
	}
	while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
		(*n)--;
	return s;
}

/* "HTTP/d.d SSS[ reason]". */
static enum km_http1_result status_line(struct km_http1 *p, const char *l,
					size_t n)
{
	if (n < 12 || memcmp(l, "HTTP/", 5) || l[5] < '0' || l[5] > '9' ||
	    l[6] != '.' || l[7] < '0' || l[7] > '9' || l[8] != ' ')
		return fail(p, "malformed status line");
	for (int i = 9; i < 12; i++)
		if (l[i] < '0' || l[i] > '9')
			return fail(p, "malformed HTTP status code");
	if (n > 12 && l[12] != ' ')
		return fail(p, "malformed HTTP status code");
	p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	p->state = S_HEADER;
	return KM_HTTP1_MORE;
}

static bool name_is(const char *l, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n == k && !strncasecmp(l, name, k);
}

static enum km_http1_result header_line(struct km_http1 *p, const char *l,
					size_t n)
{
	const char *colon = memchr(l, ':', n), *v;
	size_t nn, vn;

	if (l[0] == ' ' || l[0] == '\t')
		return KM_HTTP1_MORE; /* an obsolete folded line: ignored */
	if (!colon || colon == l)
		return fail(p, "malformed header line");
	nn = (size_t)(colon - l);
	vn = n - nn - 1;
	v = trim(colon + 1, &vn);
	if (name_is(l, nn, "Location")) {
		if (p->line_cut)
			return fail(p, "Location header too long");
		if (!p->has_location) {
			memcpy(p->location, v, vn);
			p->location[vn] = '\0';
			p->has_location = true;
		}
	} else if (name_is(l, nn, "Content-Length")) {
		int64_t cl = 0;

		if (!vn || vn > 18)
			return fail(p, "bad Content-Length");
		for (size_t i = 0; i < vn; i++) {
			if (v[i] < '0' || v[i] > '9')
				return fail(p, "bad Content-Length");
			cl = cl * 10 + (v[i] - '0');
		}
		if (p->content_length >= 0 && p->content_length != cl)
			return fail(p, "conflicting Content-Length headers");
		p->content_length = cl;
	} else if (name_is(l, nn, "Transfer-Encoding")) {
		if (p->chunked)
			return fail(p, "too many transfer encodings");
		if (vn != 7 || strncasecmp(v, "chunked", 7))
			return fail(p, "unsupported transfer encoding");
		p->chunked = true;
	}
	return KM_HTTP1_MORE;
}

/* The blank line after the headers: what comes next. */
static enum km_http1_result end_of_head(struct km_http1 *p)
{
	if (p->status >= 100 && p->status < 200 && p->status != 101) {
		if (++p->informational > MAX_INFORMATIONAL)
			return fail(p, "too many 1xx informational responses");
		p->status = 0;
		p->has_location = false;
		p->chunked = false;
		p->content_length = -1;
		p->state = S_STATUS;
		return KM_HTTP1_MORE;
	}
	if (p->status == 101 || p->status == 204 || p->status == 304)
		return done(p);
	if (p->chunked) {
		p->state = S_CHUNK_SIZE;
		return KM_HTTP1_MORE;
	}
	p->left = p->content_length;
	if (p->left == 0)
		return done(p);
	p->state = S_BODY;
	return KM_HTTP1_MORE;
}

/* "1a2b[;ext]": the size of the next chunk. */
static enum km_http1_result chunk_size_line(struct km_http1 *p, const char *l,
					    size_t n)
{
	int64_t size = 0;
	size_t i = 0;

	for (; i < n; i++) {
		char ch = l[i];
		int d;

		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
			d = (ch | 0x20) - 'a' + 10;
		else
			break;
		if (i >= 15)
			return fail(p, "chunk length too large");
		size = size * 16 + d;
	}
	if (i == 0 || (i < n && l[i] != ';' && l[i] != ' ' && l[i] != '\t'))
		return fail(p, "invalid byte in chunk length");
	p->left = size;
	p->state = size ? S_CHUNK_DATA : S_TRAILER;
	return KM_HTTP1_MORE;
}

/* One complete line (without its CR LF) in the current state. */
static enum km_http1_result line(struct km_http1 *p, const char *l, size_t n)
{
	switch (p->state) {
	case S_STATUS: return status_line(p, l, n);
	case S_HEADER: return n ? header_line(p, l, n) : end_of_head(p);
	case S_CHUNK_SIZE: return chunk_size_line(p, l, n);
	case S_CHUNK_END:
		if (n)
			return fail(p, "malformed chunked encoding");
		p->state = S_CHUNK_SIZE;
		return KM_HTTP1_MORE;
	case S_TRAILER: return n ? KM_HTTP1_MORE : done(p);
	default: return fail(p, "internal: line in a body state");
	}
}

/* Stores up to n body bytes; DONE once the buffer is full. */
static enum km_http1_result body(struct km_http1 *p, const char *d, size_t n,
				 bool more_follows)
{
	size_t room = p->body_cap - p->body_len;
	size_t k = n < room ? n : room;

	memcpy(p->body + p->body_len, d, k);
	p->body_len += k;
	if (p->body_len == p->body_cap && (k < n || more_follows)) {
		p->truncated = true;
		return done(p);
	}
	return KM_HTTP1_MORE;
}

/* What the parser's state says of the response so far. */
static enum km_http1_result settled(const struct km_http1 *p)
{
	return p->state == S_DONE    ? KM_HTTP1_DONE
	       : p->state == S_ERROR ? KM_HTTP1_ERROR
				     : KM_HTTP1_MORE;
}

enum km_http1_result km_http1_feed(struct km_http1 *p, const char *data,
				   size_t n)
{
	while (n) {
		enum km_http1_result r;

		switch (p->state) {
		case S_DONE:
		case S_ERROR: return settled(p);
		case S_BODY:
		case S_CHUNK_DATA: {
			size_t k = n;
			bool rest;

			if (p->left >= 0 && (uint64_t)p->left < k)
				k = (size_t)p->left;
			if (p->left >= 0)
				p->left -= (int64_t)k;
			/* More body after these bytes? Unknown until close
			 * for a close-delimited body: assume so. */
			rest = p->left != 0 || p->state == S_CHUNK_DATA;
			r = body(p, data, k, rest);
			data += k;
			n -= k;
			if (r != KM_HTTP1_MORE)
				return r;
			if (p->left == 0)
				p->state = p->state == S_BODY ? S_DONE
							      : S_CHUNK_END;
			continue;
		}
		default: break;
		}
		/* A line state: gather up to the LF. */
		{
			const char *lf = memchr(data, '\n', n);
			size_t k = lf ? (size_t)(lf - data) : n;
			size_t room = sizeof p->line - 1 - p->line_len;
			bool head = p->state == S_STATUS ||
				    p->state == S_HEADER;

			if (head) {
				p->head_bytes += k + (lf ? 1 : 0);
				if (p->head_bytes > KM_HTTP1_HEAD_MAX)
					return fail(p, "response headers "
						       "exceed 10 MiB");
			}
			if (k > room) {
				p->line_cut = true;
				memcpy(p->line + p->line_len, data, room);
				p->line_len += room;
			} else {
				memcpy(p->line + p->line_len, data, k);
				p->line_len += k;
			}
			if (!lf)
				return KM_HTTP1_MORE;
			data += k + 1;
			n -= k + 1;
			if (p->line_len && p->line[p->line_len - 1] == '\r' &&
			    !p->line_cut)
				p->line_len--;
			p->line[p->line_len] = '\0';
			r = line(p, p->line, p->line_len);
			p->line_len = 0;
			p->line_cut = false;
			if (r != KM_HTTP1_MORE)
				return r;
		}
	}
	return settled(p);
}

enum km_http1_result km_http1_eof(struct km_http1 *p)
{
	switch (p->state) {
	case S_DONE:
	case S_ERROR: return settled(p);
	case S_BODY:
		if (p->left < 0)
			return done(p);
		break;
	case S_STATUS:
		if (!p->line_len && !p->head_bytes)
			return fail(p, "the server closed the connection "
				       "without a response");
		break;
	default: break;
	}
	return fail(p, "the server closed the connection before the response "
		       "was complete");
}

/* ---- the request --------------------------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static bool safe(const char *s)
{
	return !strpbrk(s, "\r\n");
}

static bool given(const struct km_kv *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(h[i].key, name))
			return true;
	return false;
}

static void header(struct out *o, const char *name, const char *value)
{
	puts_(o, name);
	put(o, ": ", 2);
	puts_(o, value);
	put(o, "\r\n", 2);
}

int km_http1_request(char *out, size_t cap, const char *target,
		     const char *host_port, const struct km_kv *h,
		     size_t n_headers, const char *user_agent)
{
	static const char hex[] = "0123456789ABCDEF";
	struct out o = {.p = out, .cap = cap};

	put(&o, "GET ", 4);
	if (!*target)
		put(&o, "/", 1);
	for (const unsigned char *t = (const unsigned char *)target; *t; t++) {
		if (*t <= 0x20 || *t >= 0x7f) {
			char esc[3] = {'%', hex[*t >> 4], hex[*t & 15]};

			put(&o, esc, 3);
		} else {
			put(&o, (const char *)t, 1);
		}
	}
	puts_(&o, " HTTP/1.1\r\n");
	if (!given(h, n_headers, "Host"))
		header(&o, "Host", host_port);
	for (size_t i = 0; i < n_headers; i++) {
		if (!*h[i].key || !safe(h[i].key) || strchr(h[i].key, ':') ||
		    !safe(h[i].value))
			return -1;
		header(&o, h[i].key, h[i].value);
	}
	if (!given(h, n_headers, "User-Agent"))
		header(&o, "User-Agent", user_agent);
	if (!given(h, n_headers, "Accept"))
		header(&o, "Accept", "*/*");
	puts_(&o, "Connection: close\r\n\r\n");
	return o.full || o.len > (size_t)INT32_MAX ? -1 : (int)o.len;
}
