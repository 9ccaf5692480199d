/*
 * Requests to an API server on the loop (km_kube_client.h).
 *
 * A request is queued (the token bucket), then started as a libcurl easy
 * handle in the client's multi handle; km_curl hands it back when it ends.
 * A GET or a write collects its answer; a watch cuts its body into lines
 * (or protobuf frames) as they come. A write is a GET with a method and
 * maybe a body: one path for both.
 * A callback may cancel its own request: the request is then only marked,
 * its transfer aborted by the next write, and freed when curl hands it
 * back (a transfer cannot leave the multi handle from its own callback).
 */
#include "km_kube_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "km_curl.h"
#include "km_kube_decode.h"
#include "km_kubeconfig.h"
#include "km_list.h"
#include "km_log.h"
#include "km_time.h"

#define TOKEN_REREAD_NS (60LL * 1000000000)
#define ERROR_BODY_MAX (64 * 1024)
#define URL_SHOWN_MAX 2048 /* more than a message holds */
#define PROTOBUF_TYPE "application/vnd.kubernetes.protobuf"

struct km_kube_req {
	struct km_list link; /* c->waiting or c->running */
	struct km_kube_client *c;
	CURL *easy;
	char *url;
	const char *method; /* "GET", "POST", ...: a static string */
	char *body;         /* a write's, copied; NULL: none */
	size_t body_len;
	char *content_type;    /* "Content-Type: ..." for a body; NULL: none */
	int64_t retry_after_s; /* the answer's Retry-After; 0: none */
	bool watch, running, cancelled, in_callback;
	/* A watch asked for protobuf; the answer is in protobuf (known at
	 * its first bytes, from its Content-Type). */
	bool ask_protobuf, format_known;
	enum km_kube_format format;
	uint32_t frame_too_big; /* the length of a frame refused */
	int64_t timeout_s;
	km_kube_event_fn event;
	km_kube_end_fn end;
	void *arg;
	char *buf; /* a GET's body; a watch's partial line or error body */
	size_t len, cap;
	bool too_big;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
};

struct km_kube_client {
	struct km_loop *loop;
	struct km_curl *curl;
	char *name;
	/* cr.token: the token file's as read last (or the kubeconfig's) */
	struct km_kube_creds cr;
	int64_t token_read_ns;
	bool token_stale; /* read the file again: a 401 came */
	int64_t timeout_ms, connect_timeout_ms;

	double qps, tokens;
	int burst;
	int64_t refilled_ns;
	struct km_timer throttle;
	struct km_list waiting, running;

	struct km_kube_client_stats stats;
};

/* ---- the bearer token -------------------------------------------------------- */

/* Reads the token file when its copy is old (or a 401 said so), through
 * km_kubeconfig_read_token (a small regular file, opened without
 * blocking: a FIFO named so is refused, not waited on). The copy in use is
 * kept when the file cannot be read. */
static void read_token(struct km_kube_client *c)
{
	struct km_error err = {0};
	char *tok;

	if (!c->cr.token_file ||
	    (!c->token_stale && c->cr.token &&
	     km_mono_ns() - c->token_read_ns < TOKEN_REREAD_NS))
		return;
	c->token_read_ns = km_mono_ns();
	c->token_stale = false;
	if (km_kubeconfig_read_token(c->cr.token_file, &tok, &err)) {
		km_log(KM_LOG_ERROR,
		       "kube: cannot read the token file; the token read "
		       "before is used",
		       "cluster", c->name, "error", err.msg, NULL);
		return;
	}
	if (!c->cr.token || strcmp(c->cr.token, tok))
		c->stats.token_reads++;
	free(c->cr.token);
	c->cr.token = tok;
}

/* ---- requests -------------------------------------------------------------------- */

static void req_free(struct km_kube_req *r)
{
	if (!r)
		return;
	km_list_del(&r->link);
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->url);
	free(r->body);
	free(r->content_type);
	free(r->buf);
	free(r);
}

/* A request's URL in messages, without its timeoutSeconds: a watch asks
 * for a random one, which would make every retry's message new (and the
 * cluster logs a failure again only when its message changes, or after a
 * minute). The rest of the query stays: the selector it carries is worth
 * seeing. printf's "%s" argument, in buf. */
static const char *url_shown(const struct km_kube_req *r, char *buf, size_t len)
{
	const char *t = strstr(r->url, "timeoutSeconds="), *end;

	if (!t || t == r->url) {
		snprintf(buf, len, "%s", r->url);
		return buf;
	}
	end = t + strcspn(t, "&");
	if (t[-1] == '&')
		t--; /* "?a&timeoutSeconds=1": "?a" */
	else if (*end == '&')
		end++; /* "?timeoutSeconds=1&a": "?a" */
	snprintf(buf, len, "%.*s%s", (int)(t - r->url), r->url, end);
	return buf;
}

static bool append(struct km_kube_req *r, const char *p, size_t n, size_t max)
{
	if (r->len + n > max) {
		r->too_big = true;
		return false;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 16384;
		char *b;

		while (cap < r->len + n + 1)
			cap *= 2;
		if (cap > max + 1)
			cap = max + 1;
		b = realloc(r->buf, cap);
		if (!b)
			return false;
		r->buf = b;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return true;
}

/* Hands over every complete line of a watch's answer (or, in protobuf,
 * every complete frame); keeps the rest. */
static bool cut_events(struct km_kube_req *r)
{
	size_t start = 0;
	char *nl;

	while (r->format == KM_KUBE_JSON && !r->cancelled &&
	       (nl = memchr(r->buf + start, '\n', r->len - start))) {
		size_t n = (size_t)(nl - (r->buf + start));

		if (n)
			r->event(r->arg, KM_KUBE_JSON, r->buf + start, n);
		start += n + 1;
	}
	while (r->format == KM_KUBE_PROTOBUF && !r->cancelled &&
	       r->len - start >= 4) {
		const unsigned char *b = (const unsigned char *)r->buf + start;
		uint32_t n = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
			     (uint32_t)b[2] << 8 | b[3];

		if (n > KM_KUBE_FRAME_MAX) {
			/* Not waited for: the transfer ends here. */
			r->frame_too_big = n;
			return false;
		}
		if (r->len - start - 4 < n)
			break;
		if (n)
			r->event(r->arg, KM_KUBE_PROTOBUF, r->buf + start + 4,
				 n);
		start += 4 + (size_t)n;
	}
	if (r->cancelled)
		return false;
	memmove(r->buf, r->buf + start, r->len - start);
	r->len -= start;
	if (r->buf)
		r->buf[r->len] = '\0';
	return true;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *userp)
{
	struct km_kube_req *r = userp;
	size_t n = size * nmemb;
	long status = 0;
	bool ok;

	if (r->cancelled)
		return 0; /* aborts the transfer */
	r->c->stats.bytes += n;
	if (!r->watch)
		return append(r, p, n, KM_KUBE_BODY_MAX) ? n : 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return append(r, p, n, ERROR_BODY_MAX) ? n : 0;
	if (!r->format_known) {
		const char *ct = NULL;

		curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
		r->format_known = true;
		r->format = r->ask_protobuf && ct &&
					    !strncasecmp(ct, PROTOBUF_TYPE,
							 strlen(PROTOBUF_TYPE))
				    ? KM_KUBE_PROTOBUF
				    : KM_KUBE_JSON;
	}
	/* In protobuf, the buffer holds at most a frame (and its length)
	 * and the piece of the next that came with its end. */
	if (!append(r, p, n,
		    r->format == KM_KUBE_JSON
			    ? KM_KUBE_BODY_MAX
			    : KM_KUBE_FRAME_MAX + 4 + CURL_MAX_WRITE_SIZE))
		return 0;
	r->in_callback = true;
	ok = cut_events(r);
	r->in_callback = false;
	return ok ? n : 0;
}

static void curl_done(void *arg, CURL *easy, CURLcode result)
{
	struct km_kube_client *c = arg;
	struct km_kube_req *r = NULL;
	struct km_error err = {0};
	char shown[URL_SHOWN_MAX];
	long status = 0;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(km_curl_multi(c->curl), easy);
	if (!r)
		return;
	if (r->cancelled) {
		req_free(r);
		return;
	}
	if (status == 401 && c->cr.token_file)
		c->token_stale = true;
	if (status == 429 || status == 503) {
		curl_off_t after = -1;

		/* Seconds or an HTTP date, as libcurl reads it. */
		if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &after) ==
			    CURLE_OK &&
		    after > 0)
			r->retry_after_s = (int64_t)after;
	}
	if (r->frame_too_big)
		km_error_set(&err, KM_EFULL,
			     "%s %s: a watch frame of %u bytes, more than the "
			     "%u read",
			     r->method, url_shown(r, shown, sizeof shown),
			     r->frame_too_big, KM_KUBE_FRAME_MAX);
	else if (r->too_big)
		km_error_set(&err, KM_EFULL,
			     "%s %s: the answer is larger than %u bytes",
			     r->method, url_shown(r, shown, sizeof shown),
			     KM_KUBE_BODY_MAX);
	else if (result != CURLE_OK)
		km_error_set(&err, KM_EUNAVAIL, "%s %s: %s", r->method,
			     url_shown(r, shown, sizeof shown),
			     r->errbuf[0] ? r->errbuf
					  : curl_easy_strerror(result));
	if (err.code || status < 200 || status > 299)
		c->stats.failed++;
	/* A watch that ends with a partial line was cut off: the line is
	 * not an event. */
	if (r->watch && status == 200 && !err.code && r->len)
		km_error_set(&err, KM_EUNAVAIL,
			     "%s %s: the watch ended inside a %s", r->method,
			     url_shown(r, shown, sizeof shown),
			     r->format == KM_KUBE_PROTOBUF ? "frame" : "line");
	if (r->watch && status == 200)
		r->end(r->arg, status, "", 0, err.code ? &err : NULL);
	else
		r->end(r->arg, status, r->buf ? r->buf : "", r->len,
		       err.code ? &err : NULL);
	req_free(r);
}

/* Adds a header to r's; on failure, r->headers becomes NULL (all
 * freed) and start gives up. */
static void add_header(struct km_kube_req *r, const char *h)
{
	struct curl_slist *l;

	if (!r->headers)
		return;
	l = curl_slist_append(r->headers, h);
	if (!l) {
		curl_slist_free_all(r->headers);
		r->headers = NULL;
		return;
	}
	r->headers = l;
}

static int start(struct km_kube_req *r)
{
	struct km_kube_client *c = r->c;
	CURL *e = curl_easy_init();
	char auth[KM_KUBECONFIG_MAX_TOKEN + 32];

	if (!e)
		return KM_ENOMEM;
	r->easy = e;
	read_token(c);
	/* Protobuf first, JSON for what the server has no protobuf for (a
	 * custom resource): the Content-Type says which came. */
	r->headers = curl_slist_append(
		NULL, r->ask_protobuf ? "Accept: " PROTOBUF_TYPE
					";stream=watch, "
					"application/json"
				      : "Accept: application/json");
	if (r->headers && c->cr.token) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s",
			 c->cr.token);
		add_header(r, auth);
		explicit_bzero(auth, sizeof auth);
	}
	/* A write's body and its type; none for a POST without one (not
	 * libcurl's form type). No "Expect: 100-continue" (libcurl's for a
	 * large body over HTTP/1.1): a second's wait for nothing. */
	if (strcmp(r->method, "GET")) {
		add_header(r,
			   r->content_type ? r->content_type : "Content-Type:");
		add_header(r, "Expect:");
	}
	if (!r->headers)
		return KM_ENOMEM;
	if (!strcmp(r->method, "POST") || r->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)r->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
	}
	if (strcmp(r->method, "GET") && strcmp(r->method, "POST"))
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	km_kube_creds_apply(&c->cr, e);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	/* A write on a connection of its own: on a reused connection that
	 * dies before any answer, libcurl sends the request again, by
	 * itself, on a new one; the caller (the recovery engine counts and
	 * records each attempt with its answer) would never know that a
	 * second write left. */
	if (strcmp(r->method, "GET"))
		curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	/* A GET's answer compressed; a watch's not: the API server gzips
	 * a watch whose first write is large (a list streamed as initial
	 * events), and libcurl 7.88 (Debian 12) fails such a stream after
	 * some lines with "Failed writing received data" (error 23, the
	 * curl command line's too) where zlib itself reads it whole. */
	if (!r->watch)
		curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)c->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
			 r->watch ? (long)((r->timeout_s + 60) * 1000)
				  : (long)c->timeout_ms);
	if (curl_multi_add_handle(km_curl_multi(c->curl), e) != CURLM_OK)
		return KM_EINTERNAL;
	r->running = true;
	km_list_del(&r->link);
	km_list_add_tail(&c->running, &r->link);
	c->stats.requests++;
	if (strcmp(r->method, "GET"))
		c->stats.writes++;
	return 0;
}

/* Starts what the bucket allows, in order; arms the timer for the rest. */
static void pump_refill(struct km_kube_client *c)
{
	int64_t now = km_mono_ns();

	c->tokens += (double)(now - c->refilled_ns) / 1e9 * c->qps;
	if (c->tokens > c->burst)
		c->tokens = c->burst;
	c->refilled_ns = now;
}

static void pump(struct km_kube_client *c)
{
	int64_t now;

	pump_refill(c);
	now = c->refilled_ns;
	while (!km_list_empty(&c->waiting)) {
		struct km_kube_req *r = km_list_entry(c->waiting.next,
						      struct km_kube_req, link);
		int rc;

		if (c->tokens < 1) {
			int64_t wait =
				(int64_t)((1 - c->tokens) / c->qps * 1e9);

			km_loop_timer_set(c->loop, &c->throttle,
					  now + (wait > 0 ? wait : 1000000));
			return;
		}
		c->tokens -= 1;
		rc = start(r);
		if (rc) {
			struct km_error err;
			char shown[URL_SHOWN_MAX];

			km_error_set(&err, rc, "%s %s: cannot start: %s",
				     r->method,
				     url_shown(r, shown, sizeof shown),
				     km_strerror(rc));
			c->stats.failed++;
			r->end(r->arg, 0, "", 0, &err);
			req_free(r);
		}
	}
}

static void throttle_fired(struct km_loop *l, void *arg)
{
	(void)l;
	pump(arg);
}

/* What a request is, for submit. */
struct what {
	const char *method, *path;
	const char *content_type, *body; /* a write's; NULL: no body */
	size_t len;
	bool watch, protobuf;
	int64_t timeout_s;
};

/* Queues a request and starts it if the bucket allows. A request that
 * cannot start at once fails here, with no callback (the caller has no
 * handle yet); one that waited and then cannot start ends through its
 * callback, from the throttle's timer. */
static int submit(struct km_kube_client *c, const struct what *w,
		  km_kube_event_fn event, km_kube_end_fn end, void *arg,
		  struct km_kube_req **out, struct km_error *err)
{
	struct km_kube_req *r = calloc(1, sizeof *r);
	size_t url_n, type_n = 0;
	bool now;
	int rc;

	*out = NULL;
	if (!r)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	km_list_init(&r->link);
	url_n = strlen(c->cr.server) + strlen(w->path) + 1;
	r->url = malloc(url_n);
	if (w->body) {
		/* malloc(0) may be NULL: one byte more. */
		r->body = malloc(w->len + 1);
		type_n = strlen("Content-Type: ") + strlen(w->content_type) + 1;
		r->content_type = malloc(type_n);
	}
	if (!r->url || (w->body && (!r->body || !r->content_type))) {
		req_free(r);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	snprintf(r->url, url_n, "%s%s", c->cr.server, w->path);
	if (w->body) {
		memcpy(r->body, w->body, w->len);
		r->body_len = w->len;
		snprintf(r->content_type, type_n, "Content-Type: %s",
			 w->content_type);
	}
	r->c = c;
	r->method = w->method;
	r->watch = w->watch;
	r->ask_protobuf = w->protobuf;
	r->timeout_s = w->timeout_s;
	r->event = event;
	r->end = end;
	r->arg = arg;
	km_list_add_tail(&c->waiting, &r->link);
	/* Alone in the queue with a token: it starts now. */
	pump_refill(c);
	now = c->waiting.next == &r->link && c->tokens >= 1;
	if (!now) {
		c->stats.throttled++;
		pump(c);
		*out = r;
		return 0;
	}
	c->tokens -= 1;
	if ((rc = start(r))) {
		char shown[URL_SHOWN_MAX];

		c->stats.failed++;
		km_error_set(err, rc, "%s %s: cannot start: %s", r->method,
			     url_shown(r, shown, sizeof shown),
			     km_strerror(rc));
		req_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int km_kube_get(struct km_kube_client *c, const char *path, km_kube_end_fn end,
		void *arg, struct km_kube_req **out, struct km_error *err)
{
	const struct what w = {.method = "GET", .path = path};

	return submit(c, &w, NULL, end, arg, out, err);
}

int km_kube_watch(struct km_kube_client *c, const char *path, int64_t timeout_s,
		  bool protobuf, km_kube_event_fn event, km_kube_end_fn end,
		  void *arg, struct km_kube_req **out, struct km_error *err)
{
	const struct what w = {.method = "GET",
			       .path = path,
			       .watch = true,
			       .protobuf = protobuf,
			       .timeout_s = timeout_s};

	return submit(c, &w, event, end, arg, out, err);
}

/* A Content-Type is one token/token with parameters: printable ASCII, no
 * CR or LF to end the header early and add one of the caller's. */
static bool header_value(const char *s)
{
	if (!*s || strlen(s) > 256)
		return false;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

int km_kube_request(struct km_kube_client *c, const char *method,
		    const char *path, const char *content_type,
		    const char *body, size_t len, km_kube_end_fn end, void *arg,
		    struct km_kube_req **out, struct km_error *err)
{
	static const char *const methods[] = {"POST", "PATCH", "PUT", "DELETE"};
	struct what w = {.path = path,
			 .content_type = content_type,
			 .body = body,
			 .len = len};

	*out = NULL;
	for (size_t i = 0; method && i < sizeof methods / sizeof *methods; i++)
		if (!strcmp(method, methods[i]))
			w.method = methods[i];
	if (!w.method)
		return km_error_set(err, KM_EINVAL,
				    "method \"%.16s\": only POST, PATCH, PUT "
				    "and DELETE are requests with "
				    "km_kube_request",
				    method ? method : "");
	if (!path || path[0] != '/' || strpbrk(path, " \r\n\t#"))
		return km_error_set(err, KM_EINVAL,
				    "%s: the path must begin with '/' and hold "
				    "no space, control character or '#'",
				    method);
	if (!body && len)
		return km_error_set(err, KM_EINVAL,
				    "%s %s: %zu bytes of no body", method, path,
				    len);
	if (len > KM_KUBE_REQUEST_BODY_MAX)
		return km_error_set(err, KM_EINVAL,
				    "%s %s: a body of %zu bytes, more than the "
				    "%u sent",
				    method, path, len,
				    KM_KUBE_REQUEST_BODY_MAX);
	if (body && (!content_type || !header_value(content_type)))
		return km_error_set(err, KM_EINVAL,
				    "%s %s: a body needs a Content-Type of "
				    "printable ASCII",
				    method, path);
	return submit(c, &w, NULL, end, arg, out, err);
}

int64_t km_kube_req_retry_after(const struct km_kube_req *r)
{
	return r->retry_after_s;
}

void km_kube_cancel(struct km_kube_req *r)
{
	if (!r || r->cancelled)
		return;
	r->cancelled = true;
	if (r->in_callback)
		return; /* write_cb aborts it; curl_done frees it */
	if (r->running)
		curl_multi_remove_handle(km_curl_multi(r->c->curl), r->easy);
	req_free(r);
}

/* ---- the client ------------------------------------------------------------------ */

static char *dup_bytes(const char *p, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

int km_kube_creds_copy(struct km_kube_creds *c,
		       const struct km_kube_client_options *o,
		       struct km_error *err)
{
	size_t n;

	memset(c, 0, sizeof *c);
	if (!o->server || (strncmp(o->server, "https://", 8) &&
			   strncmp(o->server, "http://", 7)))
		return km_error_set(err, KM_EINVAL,
				    "server: \"%s\" is not an http(s) URL",
				    o->server ? o->server : "");
	if (o->tls_server_name && *o->tls_server_name)
		return km_error_set(err, KM_EINVAL,
				    "tls-server-name is not supported yet; "
				    "give the server by the name its "
				    "certificate has");
	c->server = strdup(o->server);
	c->user_agent = strdup(o->user_agent ? o->user_agent : "kubemedic");
	c->token_file = o->token_file ? strdup(o->token_file) : NULL;
	c->token = o->token ? strdup(o->token) : NULL;
	if (o->ca_pem)
		c->ca = dup_bytes(o->ca_pem, c->ca_len = o->ca_len);
	if (o->cert_pem && o->key_pem) {
		c->cert = dup_bytes(o->cert_pem, c->cert_len = o->cert_len);
		c->key = dup_bytes(o->key_pem, c->key_len = o->key_len);
	}
	if (!c->server || !c->user_agent || (o->token_file && !c->token_file) ||
	    (o->token && !c->token) || (o->ca_pem && !c->ca) ||
	    (o->cert_pem && o->key_pem && (!c->cert || !c->key))) {
		km_kube_creds_free(c);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	n = strlen(c->server);
	while (n > 0 && c->server[n - 1] == '/')
		c->server[--n] = '\0';
	c->insecure = o->insecure_skip_tls_verify;
	return 0;
}

void km_kube_creds_free(struct km_kube_creds *c)
{
	free(c->server);
	free(c->user_agent);
	free(c->ca);
	free(c->cert);
	free(c->key);
	free(c->token);
	free(c->token_file);
	memset(c, 0, sizeof *c);
}

void km_kube_creds_apply(const struct km_kube_creds *c, CURL *e)
{
	curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
	if (c->ca) {
		struct curl_blob b = {c->ca, c->ca_len, CURL_BLOB_COPY};

		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	}
	if (c->cert && c->key) {
		struct curl_blob cb = {c->cert, c->cert_len, CURL_BLOB_COPY};
		struct curl_blob kb = {c->key, c->key_len, CURL_BLOB_COPY};

		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &kb);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
}

int km_kube_client_new(struct km_loop *l,
		       const struct km_kube_client_options *o,
		       struct km_kube_client **out, struct km_error *err)
{
	struct km_kube_client *c = calloc(1, sizeof *c);
	int rc;

	*out = NULL;
	if (!c)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	c->loop = l;
	km_list_init(&c->waiting);
	km_list_init(&c->running);
	km_timer_init(&c->throttle, throttle_fired, c);
	if ((rc = km_kube_creds_copy(&c->cr, o, err))) {
		free(c);
		return rc;
	}
	c->name = strdup(o->name ? o->name : "");
	if (!c->name) {
		km_kube_client_free(c);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	c->qps = o->qps > 0 ? o->qps : 20;
	c->burst = o->burst > 0 ? o->burst : 40;
	c->tokens = c->burst;
	c->refilled_ns = km_mono_ns();
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 60000;
	c->connect_timeout_ms =
		o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
	rc = km_curl_create(l, c->name, curl_done, c, &c->curl, err);
	if (rc) {
		km_kube_client_free(c);
		return rc;
	}
	curl_multi_setopt(km_curl_multi(c->curl), CURLMOPT_PIPELINING,
			  (long)CURLPIPE_MULTIPLEX);
	*out = c;
	return 0;
}

void km_kube_client_free(struct km_kube_client *c)
{
	if (!c)
		return;
	while (!km_list_empty(&c->running)) {
		struct km_kube_req *r = km_list_entry(c->running.next,
						      struct km_kube_req, link);

		curl_multi_remove_handle(km_curl_multi(c->curl), r->easy);
		req_free(r);
	}
	while (!km_list_empty(&c->waiting))
		req_free(km_list_entry(c->waiting.next, struct km_kube_req,
				       link));
	km_loop_timer_cancel(c->loop, &c->throttle);
	km_curl_destroy(c->curl);
	free(c->name);
	km_kube_creds_free(&c->cr);
	free(c);
}

void km_kube_client_stats(const struct km_kube_client *c,
			  struct km_kube_client_stats *out)
{
	*out = c->stats;
}
