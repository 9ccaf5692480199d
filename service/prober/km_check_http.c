/*
 * HTTP(S) checks on the prober's loop, with the kubelet's semantics:
 *  - a new connection per check (no keep-alive: "Connection: close"),
 *    with SO_LINGER set to 1 s as the kubelet does since
 *    kubernetes#115143, and closed without the lingering wait
 *    (km_check_close_now says why);
 *  - success iff the status is 200-399; at most 10 KiB of body is read;
 *  - redirects are followed (up to 10) only to the same host; a redirect
 *    to another host ends the check with that 3xx response, which counts
 *    as success with a warning;
 *  - HTTPS does not verify the server's certificate unless asked to
 *    (tls_verify, optionally against ca_file).
 *
 * Two ways to make the exchange, with the same rules:
 *  - plain HTTP to an IP address (what a pod's probe is) goes over a
 *    non-blocking connection of our own, with km_http1 writing the request
 *    and parsing the response: a dozen system calls and a few thousand
 *    instructions a check. libcurl 7.88 spends twice ab's CPU on the same
 *    request (about 120,000 instructions in its own code and 20 system
 *    calls; bench/RESULTS.md), which put 10,000 probes a second out of
 *    one core's reach;
 *  - HTTPS and DNS names go through libcurl's multi socket API, driven by
 *    the loop through km_curl (service/loop/km_curl.h), which hands each
 *    finished transfer to curl_done. Redirects may lead from one way to
 *    the other.
 * Easy handles, run records and response buffers are pooled, and probes
 * without headers of their own share one header list, so a check
 * allocates little of its own; the 10 KiB body buffer is taken only when
 * the first byte of a response arrives.
 *
 * The same machinery resolves and connects TCP checks aimed at DNS names
 * (CONNECT_ONLY, km_check_http_connect_only): see km_check_tcp.c.
 *
 * A probe's caFile is never opened on the loop (libcurl would open it
 * there for CURLOPT_CAINFO, and a FIFO named so froze every probe): the
 * checker keeps each bundle in memory, read by a thread of the offload
 * pool (km_offload.h) with km_ca_file_read's checks, and hands it to
 * libcurl as CURLOPT_CAINFO_BLOB. A run whose bundle has not been read
 * yet waits for it, within its deadline; a bundle in use is checked again
 * (a stat, off the loop) when it is older than CA_RECHECK_NS, and read
 * again if the file changed, while runs go on with the copy they have. One
 * that has not been used for CA_IDLE_NS is dropped.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_internal.h"
#include "km_hash.h"
#include "km_http1.h"
#include "km_curl.h"
#include "km_list.h"
#include "km_log.h"
#include "km_offload.h"
#include "km_time.h"

#define MAX_REDIRECTS 10
#define POOL_MAX 256
/* CA bundles: re-checked when older than this, dropped when unused for
 * that long; buckets of the table. */
#define CA_RECHECK_NS (2000 * 1000000LL)
#define CA_IDLE_NS (600 * 1000000000LL)
#define CA_BUCKETS 64

struct http_run;

/* What arrives of one response: its parser and its body (the kubelet's 10
 * KiB). Taken from the checker's pool at the first byte, so a run whose
 * target never answers holds none. */
struct resp {
	struct km_http1 p;
	char body[KM_CHECK_OUTPUT_MAX];
};

/* A connection whose response is in and reported, kept open until the
 * server's FIN (see drain_or_close). */
struct drain {
	struct km_http_checker *x;
	struct km_list link; /* x->drains */
	int fd;
	size_t drained; /* bytes read and dropped */
	int64_t until;  /* CLOCK_MONOTONIC ns: closed then at the latest */
};

/* A free list of same-size objects kept for reuse, at most POOL_MAX of
 * them; the link lives in a free object's first bytes. */
struct pool {
	void *head;
	size_t n;
};

static void *pool_take(struct pool *p, size_t size)
{
	void *o = p->head;

	if (!o)
		return malloc(size);
	memcpy(&p->head, o, sizeof p->head);
	p->n--;
	return o;
}

static void pool_give(struct pool *p, void *o)
{
	if (p->n >= POOL_MAX) {
		free(o);
		return;
	}
	memcpy(o, &p->head, sizeof p->head);
	p->head = o;
	p->n++;
}

static void pool_free_all(struct pool *p)
{
	while (p->head) {
		void *o = p->head;

		memcpy(&p->head, o, sizeof p->head);
		free(o);
	}
	p->n = 0;
}

/* One CA bundle, by path (see the top of the file). Loop thread only. */
struct ca_entry {
	struct km_list link; /* x->cas[bucket] */
	char *path;
	bool known; /* pem or error is what the file held when last read */
	char *pem;  /* the bundle, or NULL: error says why */
	size_t len;
	char error[KM_ERROR_MSG_MAX];
	struct stat id;         /* the file read: device, inode, size, mtime */
	int64_t checked;        /* when the last read or check began */
	int64_t used;           /* when a run last used it */
	struct ca_job *job;     /* a read or check in flight */
	struct km_list waiters; /* runs waiting for the first read */
};

/* A read (or check) of a bundle on the offload pool: everything it needs
 * is its own, so an abandoned job outlives its entry. */
struct ca_job {
	struct km_offload_job job;
	struct ca_entry *e; /* valid while not abandoned */
	char *path;
	bool have_id; /* id is what is known: skip reading if unchanged */
	struct stat id;
	/* Out. */
	bool unchanged;
	int rc;
	char msg[KM_ERROR_MSG_MAX];
	char *pem;
	size_t len;
	struct stat st;
};

struct km_http_checker {
	struct km_loop *loop;
	struct km_offload *offload; /* reads CA bundles */
	struct km_list cas[CA_BUCKETS];
	int64_t ca_swept;     /* when idle bundles were last dropped */
	struct km_curl *curl; /* curl's transfers on the loop */
	CURLM *multi;         /* km_curl_multi(curl) */
	CURL *pool[POOL_MAX];
	size_t n_pool;
	/* Finished runs, response buffers and drains kept for the next
	 * checks: allocating and zeroing them per check showed in profiles
	 * (glibc trims and regrows its heap around them). */
	struct pool runs, resps, drain_pool;
	/* The kubelet's request headers, for probes that add none. NULL if
	 * they could not be built: each run then builds its own. */
	struct curl_slist *default_headers;
	/* Draining connections, oldest first; one timer for the oldest. */
	struct km_list drains;
	struct km_timer drain_timer;
};

struct http_run {
	struct km_http_checker *x;
	struct km_check *c;
	struct resp *resp; /* NULL until a response starts */
	int redirects;

	/* libcurl's transfer (HTTPS, DNS names), or NULL. */
	CURL *easy;
	struct curl_slist *headers; /* x->default_headers or the run's own */
	bool connect_only;
	bool truncated;
	bool no_memory; /* write_cb had no buffer for the body */
	char errbuf[CURL_ERROR_SIZE];

	/* The API's probe policy refused an address libcurl offered (the
	 * rule, for the message), so it was never connected to. */
	char denied[256];
	/* km_check_http_resolve: the addresses allowed go to resolve_out
	 * (at most resolve_max, counted in *resolve_n), none is connected
	 * to, and the run reports when libcurl has tried them all. */
	bool resolve_only;
	union km_check_addr *resolve_out;
	size_t resolve_max, *resolve_n;

	/* Waiting for its CA bundle's first read: the entry (NULL when
	 * not), the URL to go on with, and the deadline. */
	struct ca_entry *ca_wait;
	struct km_list ca_link; /* ca_wait->waiters */
	char *ca_url;
	struct km_timer ca_timer;

	/* Our own connection (plain HTTP to an IP address), or fd -1. */
	int fd;
	bool sent;  /* the request is out: now reading */
	bool drain; /* complete, server's FIN not seen yet */
	struct km_timer timeout;
	union km_check_addr addr;
	socklen_t addr_len;
	char *target;       /* this request's path and query */
	char host_port[80]; /* "10.1.2.3:8080", "[fd00::1]:8080" */
};

/* ---- pools --------------------------------------------------------------- */

static CURL *take_easy(struct km_http_checker *x)
{
	if (x->n_pool)
		return x->pool[--x->n_pool];
	return curl_easy_init();
}

static void give_easy(struct km_http_checker *x, CURL *e)
{
	if (x->n_pool < POOL_MAX) {
		curl_easy_reset(e);
		x->pool[x->n_pool++] = e;
	} else {
		curl_easy_cleanup(e);
	}
}

/* A response buffer with a fresh parser; NULL when out of memory. */
static struct resp *take_resp(struct km_http_checker *x)
{
	struct resp *b = pool_take(&x->resps, sizeof *b);

	if (b)
		km_http1_init(&b->p, b->body, sizeof b->body);
	return b;
}

static void give_resp(struct km_http_checker *x, struct resp *b)
{
	if (b)
		pool_give(&x->resps, b);
}

/* ---- per-transfer callbacks (libcurl) ------------------------------------ */

/* The kubelet's setting: a probe's socket lingers at most 1 s. */
static int sockopt_cb(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	(void)clientp;
	(void)purpose;
	km_check_set_linger(fd);
	return CURL_SOCKOPT_OK;
}

/* curl closes its sockets through this, so they too are let go without
 * the lingering wait (see km_check_close_now). */
static int closesocket_cb(void *clientp, curl_socket_t fd)
{
	(void)clientp;
	km_check_close_now(fd);
	return 0;
}

/* Every connection libcurl makes starts here, with the address it
 * resolved: one the API's probe policy denies (for a probe of the API) is
 * never connected to. A resolving run takes the first allowed address and
 * connects to none. */
static curl_socket_t opensocket_cb(void *clientp, curlsocktype purpose,
				   struct curl_sockaddr *a)
{
	struct http_run *r = clientp;
	const struct km_probe_policy *pol = r->c->policy;

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (pol &&
	    km_probe_policy_addr(pol, &a->addr, r->denied, sizeof r->denied))
		return CURL_SOCKET_BAD;
	if (r->resolve_only) {
		if (*r->resolve_n < r->resolve_max &&
		    a->addrlen <= sizeof *r->resolve_out) {
			union km_check_addr *to =
				&r->resolve_out[(*r->resolve_n)++];

			memset(to, 0, sizeof *to);
			memcpy(to, &a->addr, a->addrlen);
		}
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
	struct http_run *r = userp;
	size_t len = size * n, room;
	struct km_http1 *p;

	if (!r->resp && !(r->resp = take_resp(r->x))) {
		r->no_memory = true;
		return 0; /* curl ends the transfer: finish says why */
	}
	p = &r->resp->p;
	room = sizeof r->resp->body - p->body_len;
	if (len > room) {
		/* 10 KiB is all the kubelet reads: stop the transfer here; the
		 * status line and headers have already arrived. */
		memcpy(r->resp->body + p->body_len, data, room);
		p->body_len += room;
		r->truncated = true;
		return 0;
	}
	memcpy(r->resp->body + p->body_len, data, len);
	p->body_len += len;
	return len;
}

/* ---- runs ---------------------------------------------------------------- */

/* ---- draining ------------------------------------------------------------ */

/* We ask for "Connection: close", so the server closes once it has
 * answered. Closing first ourselves would leave the TIME_WAIT on the
 * prober's side: 60 s of a socket per check, 600,000 of them at 10,000
 * checks a second, beyond the kernel's default table (then it drops them
 * early, with a warning each time) and a search through them for every
 * new connection's port. Waiting for the server's FIN first leaves it on
 * the target, one probe's worth each. The result is reported before the
 * wait; a server that does not close within DRAIN_NS is closed on. */
#define DRAIN_NS 1000000000LL
#define DRAIN_BYTES_MAX 65536

static struct drain *oldest_drain(struct km_http_checker *x)
{
	return km_list_first(&x->drains, struct drain, link);
}

static void drain_end(struct drain *d)
{
	struct km_http_checker *x = d->x;

	km_list_del(&d->link);
	km_loop_forget_fd(x->loop, d->fd);
	km_check_close_now(d->fd);
	pool_give(&x->drain_pool, d);
}

/* Reads and drops what is there; true once the connection is done with
 * (the FIN came, an error, or too much). */
static bool drain_read(int fd, size_t *drained)
{
	char buf[4096];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);

		if (n > 0) {
			*drained += (size_t)n;
			if (*drained > DRAIN_BYTES_MAX)
				return true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return !(n < 0 && errno == EAGAIN);
	}
}

static void drain_event(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	struct drain *d = arg;

	(void)l;
	(void)fd;
	(void)events;
	if (drain_read(d->fd, &d->drained))
		drain_end(d);
}

static void drain_expired(struct km_loop *l, void *arg)
{
	struct km_http_checker *x = arg;
	int64_t now = km_mono_ns();
	struct drain *d;

	(void)l;
	while ((d = oldest_drain(x)) && d->until <= now)
		drain_end(d);
	/* No timer, no wait: a connection never left open for good. */
	if (d && km_loop_timer_set(x->loop, &x->drain_timer, d->until))
		while ((d = oldest_drain(x)))
			drain_end(d);
}

/* The end of a connection whose response is complete: closed now if the
 * server's FIN is already in (no edge would announce it again), else kept
 * until it comes. */
static void drain_or_close(struct km_http_checker *x, int fd)
{
	struct drain *d;
	size_t drained = 0;

	if (drain_read(fd, &drained) ||
	    !(d = pool_take(&x->drain_pool, sizeof *d))) {
		km_loop_forget_fd(x->loop, fd);
		km_check_close_now(fd);
		return;
	}
	*d = (struct drain){.x = x,
			    .fd = fd,
			    .drained = drained,
			    .until = km_mono_ns() + DRAIN_NS};
	km_list_add_tail(&x->drains, &d->link);
	km_loop_rebind_fd(x->loop, fd, drain_event, d);
	if (!km_timer_armed(&x->drain_timer) &&
	    km_loop_timer_set(x->loop, &x->drain_timer, d->until))
		drain_end(d); /* no timer, no wait */
}

/* Ends the current attempt (one request of a run): its transfer or its
 * connection, and what it received. */
static void end_attempt(struct http_run *r)
{
	struct km_http_checker *x = r->x;

	if (r->easy) {
		curl_multi_remove_handle(x->multi, r->easy);
		/* A CONNECT_ONLY connection is closed only by cleanup. */
		if (r->connect_only)
			curl_easy_cleanup(r->easy);
		else
			give_easy(x, r->easy);
		r->easy = NULL;
	}
	if (r->fd >= 0) {
		if (r->drain) {
			drain_or_close(x, r->fd);
		} else {
			km_loop_forget_fd(x->loop, r->fd);
			km_check_close_now(r->fd);
		}
		r->fd = -1;
		r->drain = false;
	}
	give_resp(x, r->resp);
	r->resp = NULL;
}

static void ca_unwait(struct http_run *r);

static void run_free(struct http_run *r)
{
	struct km_http_checker *x = r->x;

	ca_unwait(r);
	end_attempt(r);
	km_loop_timer_cancel(x->loop, &r->timeout);
	free(r->target);
	r->target = NULL;
	if (r->headers != x->default_headers)
		curl_slist_free_all(r->headers);
	pool_give(&x->runs, r);
}

static bool has_header(const struct km_probe *p, const char *name)
{
	for (size_t i = 0; i < p->n_headers; i++)
		if (!strcasecmp(p->headers[i].key, name))
			return true;
	return false;
}

static int add_header(struct curl_slist **l, const char *name,
		      const char *value)
{
	char line[8192];
	struct curl_slist *n;

	/* "Name;" is curl's way to send a header with an empty value. */
	if (*value)
		snprintf(line, sizeof line, "%s: %s", name, value);
	else
		snprintf(line, sizeof line, "%s;", name);
	n = curl_slist_append(*l, line);
	if (!n)
		return KM_ENOMEM;
	*l = n;
	return 0;
}

#define USER_AGENT "kubemedic/0.1"

/* The kubelet's request headers: the probe's, then its own User-Agent and
 * Accept unless the probe gives them; no keep-alive. (km_http1_request
 * writes the same for our own connections.) */
static int kubelet_headers(const struct km_probe *p, struct curl_slist **l)
{
	int rc = 0;

	for (size_t i = 0; i < p->n_headers && !rc; i++)
		rc = add_header(l, p->headers[i].key, p->headers[i].value);
	if (!rc && !has_header(p, "User-Agent"))
		rc = add_header(l, "User-Agent", USER_AGENT);
	if (!rc && !has_header(p, "Accept"))
		rc = add_header(l, "Accept", "*/*");
	if (!rc)
		rc = add_header(l, "Connection", "close");
	return rc;
}

/* ---- CA bundles ---------------------------------------------------------- */

static void report(struct http_run *r, const struct km_check_result *res);
static int submit(struct http_run *r, const char *url);

static void ca_job_free(struct km_offload_job *oj)
{
	struct ca_job *j = (struct ca_job *)oj;

	free(j->pem);
	free(j->path);
	free(j);
}

/* The pool's thread: has the file changed since it was read, and if so
 * (or if it never was), read it. */
static void ca_job_work(struct km_offload_job *oj)
{
	struct ca_job *j = (struct ca_job *)oj;
	struct km_error err = {0};
	struct stat st;

	if (j->have_id && stat(j->path, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_dev == j->id.st_dev && st.st_ino == j->id.st_ino &&
	    st.st_size == j->id.st_size &&
	    st.st_mtim.tv_sec == j->id.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == j->id.st_mtim.tv_nsec) {
		j->unchanged = true;
		return;
	}
	j->rc = km_ca_file_read(j->path, &j->pem, &j->len, &j->st, &err);
	if (j->rc)
		snprintf(j->msg, sizeof j->msg, "%s", err.msg);
}

static void ca_entry_free(struct km_http_checker *x, struct ca_entry *e)
{
	assert(km_list_empty(&e->waiters));
	if (e->job)
		km_offload_abandon(x->offload, &e->job->job);
	km_list_del(&e->link);
	free(e->pem);
	free(e->path);
	free(e);
}

static void ca_job_done(struct km_offload_job *oj);

/* Starts a read (or a check) of e's file on the pool. */
static int ca_read(struct km_http_checker *x, struct ca_entry *e)
{
	struct ca_job *j;

	assert(!e->job);
	if (!x->offload)
		return KM_EINTERNAL;
	j = calloc(1, sizeof *j);
	if (!j || !(j->path = strdup(e->path))) {
		free(j);
		return KM_ENOMEM;
	}
	j->job.work = ca_job_work;
	j->job.done = ca_job_done;
	j->job.free_job = ca_job_free;
	j->e = e;
	if (e->known && e->pem) {
		j->have_id = true;
		j->id = e->id;
	}
	if (km_offload_submit(x->offload, &j->job)) {
		ca_job_free(&j->job);
		return KM_EIO;
	}
	e->job = j;
	e->checked = km_mono_ns();
	return 0;
}

/* Drops the bundles no run has used for CA_IDLE_NS (at most once a
 * minute). */
static void ca_sweep(struct km_http_checker *x, int64_t now)
{
	if (now - x->ca_swept < 60 * 1000000000LL)
		return;
	x->ca_swept = now;
	for (size_t b = 0; b < CA_BUCKETS; b++) {
		struct km_list *pos, *tmp;

		km_list_for_each_safe (pos, tmp, &x->cas[b]) {
			struct ca_entry *e =
				km_list_entry(pos, struct ca_entry, link);

			if (now - e->used > CA_IDLE_NS &&
			    km_list_empty(&e->waiters))
				ca_entry_free(x, e);
		}
	}
}

/* The entry of path, made if there is none; NULL when out of memory. */
static struct ca_entry *ca_lookup(struct km_http_checker *x, const char *path)
{
	struct km_list *head = &x->cas[km_hash_bucket(
		km_hash_str(KM_HASH_INIT, path), CA_BUCKETS)];
	struct km_list *pos;
	struct ca_entry *e;

	km_list_for_each (pos, head) {
		e = km_list_entry(pos, struct ca_entry, link);
		if (!strcmp(e->path, path))
			return e;
	}
	e = calloc(1, sizeof *e);
	if (!e || !(e->path = strdup(path))) {
		free(e);
		return NULL;
	}
	km_list_init(&e->waiters);
	km_list_add_head(head, &e->link);
	return e;
}

/* r no longer waits for a bundle. */
static void ca_unwait(struct http_run *r)
{
	if (!r->ca_wait)
		return;
	km_list_del(&r->ca_link);
	km_loop_timer_cancel(r->x->loop, &r->ca_timer);
	r->ca_wait = NULL;
	free(r->ca_url);
	r->ca_url = NULL;
}

static void ca_wait_timed_out(struct km_loop *l, void *arg)
{
	struct http_run *r = arg;
	struct km_check_result res;

	(void)l;
	km_check_fail(&res, KM_EC_TIMEOUT, 0,
		      "timed out after %lld ms waiting for caFile %s to be "
		      "read (a file system that does not answer?)",
		      (long long)r->c->probe->timeout_ms, r->ca_wait->path);
	report(r, &res);
}

/* The pool read (or checked) a bundle: keep what it found, and let the
 * runs that waited for it go on. */
static void ca_job_done(struct km_offload_job *oj)
{
	struct ca_job *j = (struct ca_job *)oj;
	struct ca_entry *e = j->e;

	e->job = NULL;
	if (!j->unchanged) {
		free(e->pem);
		e->pem = NULL;
		e->len = 0;
		e->error[0] = '\0';
		if (j->rc == 0) {
			e->pem = j->pem;
			e->len = j->len;
			e->id = j->st;
			j->pem = NULL;
		} else {
			snprintf(e->error, sizeof e->error, "%s", j->msg);
		}
	}
	e->known = true;
	ca_job_free(oj);
	while (!km_list_empty(&e->waiters)) {
		struct http_run *r = km_list_entry(e->waiters.next,
						   struct http_run, ca_link);
		char *url = r->ca_url;
		int rc;

		r->ca_url = NULL;
		ca_unwait(r);
		rc = submit(r, url);
		free(url);
		if (rc) {
			struct km_check_result res;

			km_check_fail(&res, KM_EC_INTERNAL, 0,
				      "kubemedic could not start the request: "
				      "%s",
				      km_strerror(rc));
			report(r, &res);
		}
	}
}

enum ca_state { CA_READY, CA_WAITING, CA_REPORTED };

/* Before r's transfer to url: its caFile's bundle into *blob, if it has
 * one. CA_WAITING: r waits for the first read (and goes on from
 * ca_job_done); CA_REPORTED: r failed and was reported (the bundle will
 * not do). Returns a km_err code when kubemedic itself cannot go on. */
static int ca_prepare(struct http_run *r, const char *url,
		      struct curl_blob *blob, enum ca_state *state)
{
	struct km_http_checker *x = r->x;
	const char *path = r->c->probe->ca_file;
	int64_t now = km_mono_ns();
	struct ca_entry *e;
	int rc;

	*state = CA_READY;
	ca_sweep(x, now);
	e = ca_lookup(x, path);
	if (!e)
		return KM_ENOMEM;
	e->used = now;
	if (!e->known) {
		if (!e->job && (rc = ca_read(x, e)))
			return rc;
		if (!(r->ca_url = strdup(url)))
			return KM_ENOMEM;
		km_timer_init(&r->ca_timer, ca_wait_timed_out, r);
		if (km_loop_timer_set(x->loop, &r->ca_timer, r->c->deadline)) {
			free(r->ca_url);
			r->ca_url = NULL;
			return KM_ENOMEM;
		}
		r->ca_wait = e;
		km_list_add_tail(&e->waiters, &r->ca_link);
		*state = CA_WAITING;
		return 0;
	}
	/* In use and old: checked again in the background. */
	if (now - e->checked > CA_RECHECK_NS && !e->job)
		ca_read(x, e); /* failing, it is tried at the next use */
	if (!e->pem) {
		struct km_check_result res;

		km_check_fail(&res, KM_EC_TLS, 0, "caFile %s", e->error);
		report(r, &res);
		*state = CA_REPORTED;
		return 0;
	}
	blob->data = e->pem;
	blob->len = e->len;
	blob->flags = CURL_BLOB_COPY;
	return 0;
}

/* Sets up and adds one libcurl transfer of r to url. A request that
 * cannot be made (its CA bundle will not do) is reported before this
 * returns 0; one waiting for its CA bundle goes on later. */
static int submit(struct http_run *r, const char *url)
{
	const struct km_probe *p = r->c->probe;
	int64_t left_ms = (r->c->deadline - km_mono_ns()) / 1000000;
	bool ca = !r->connect_only && p->tls_verify && p->ca_file &&
		  *p->ca_file;
	struct curl_blob blob = {0};
	CURL *e;

	if (ca) {
		enum ca_state state;
		int rc = ca_prepare(r, url, &blob, &state);

		if (rc || state != CA_READY)
			return rc;
	}

	if (!r->connect_only && !r->headers) {
		if (!p->n_headers && r->x->default_headers)
			r->headers = r->x->default_headers;
		else if (kubelet_headers(p, &r->headers))
			return KM_ENOMEM;
	}
	e = r->connect_only ? curl_easy_init() : take_easy(r->x);
	if (!e)
		return KM_ENOMEM;
	r->easy = e;
	r->errbuf[0] = '\0';
	r->truncated = false;
	r->no_memory = false;
	if (left_ms < 1)
		left_ms = 1;
	/* The options libcurl copies (strings) can fail for memory. */
	if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") !=
		    CURLE_OK ||
	    /* The kubelet's probes use no proxy, whatever the environment
	     * says. */
	    curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK ||
	    (ca &&
	     curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob) != CURLE_OK)) {
		r->easy = NULL;
		curl_easy_cleanup(e);
		return KM_ENOMEM;
	}
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)left_ms);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
	if (r->resolve_only)
		/* Both families at once: no connection is waited for. */
		curl_easy_setopt(e, CURLOPT_HAPPY_EYEBALLS_TIMEOUT_MS, 0L);
	if (r->connect_only) {
		curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
	} else {
		curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
				 (long)CURL_HTTP_VERSION_1_1);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER,
				 p->tls_verify ? 1L : 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST,
				 p->tls_verify ? 2L : 0L);
	}
	if (curl_multi_add_handle(r->x->multi, e) != CURLM_OK) {
		r->easy = NULL;
		curl_easy_cleanup(e);
		return KM_EINTERNAL;
	}
	return 0;
}

/* Removes the brackets of an IPv6 literal in place. */
static char *unbracket(char *host)
{
	size_t n = strlen(host);

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host[n - 1] = '\0';
		return host + 1;
	}
	return host;
}

/* The host part of an absolute URL ("" if it has none), without the
 * brackets of an IPv6 literal, to compare with a probe's host. KM_ENOMEM
 * if libcurl had no memory to tell. */
static int url_host(const char *url, char *out, size_t n)
{
	CURLU *u = curl_url();
	char *host = NULL;
	CURLUcode uc = CURLUE_OUT_OF_MEMORY;

	out[0] = '\0';
	if (u && (uc = curl_url_set(u, CURLUPART_URL, url, 0)) == CURLUE_OK &&
	    (uc = curl_url_get(u, CURLUPART_HOST, &host, 0)) == CURLUE_OK)
		snprintf(out, n, "%s", unbracket(host));
	curl_free(host);
	curl_url_cleanup(u);
	return uc == CURLUE_OUT_OF_MEMORY ? KM_ENOMEM : 0;
}

/* A readable excerpt of the body for a failure message. */
static void excerpt(const struct http_run *r, char *out, size_t n)
{
	size_t o = 0, len = r->resp ? r->resp->p.body_len : 0;

	for (size_t i = 0; i < len && o + 1 < n && i < 256; i++) {
		unsigned char ch = (unsigned char)r->resp->body[i];
		out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ' ';
	}
	out[o] = '\0';
}

static void classify_error(struct http_run *r, CURLcode cc,
			   struct km_check_result *res)
{
	long os_errno = 0;
	const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);

	/* The policy refused what the name led to: say so, not "could not
	 * connect". */
	if (r->denied[0] && cc == CURLE_COULDNT_CONNECT) {
		km_check_fail(res, KM_EC_NETWORK, 0, "not connected: %s",
			      r->denied);
		return;
	}

	curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		km_check_fail(res, KM_EC_TIMEOUT, 0,
			      "timed out after %lld ms (%s)",
			      (long long)r->c->probe->timeout_ms, detail);
		return;
	case CURLE_COULDNT_RESOLVE_HOST:
		km_check_fail(res, KM_EC_DNS, 0, "%s", detail);
		return;
	case CURLE_COULDNT_CONNECT:
		km_check_fail(res,
			      os_errno == ECONNREFUSED ? KM_EC_REFUSED
						       : KM_EC_NETWORK,
			      0, "%s", detail);
		return;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
		km_check_fail(res, KM_EC_TLS, 0, "%s", detail);
		return;
	default: km_check_fail(res, KM_EC_NETWORK, 0, "%s", detail); return;
	}
}

static void report(struct http_run *r, const struct km_check_result *res)
{
	struct km_check *c = r->c;

	c->impl = NULL;
	run_free(r);
	c->done(c, res);
}

static int plain_connect(struct http_run *r);

/* The path (and query) of r's current request over its own connection:
 * a redirect's, else the probe's, always from "/". */
static const char *plain_target(const struct http_run *r)
{
	const char *path = r->c->probe->path;

	return r->target ? r->target : path && *path ? path : "/";
}

/* Starts the next request of r, to an absolute URL: over our own
 * connection if it is plain HTTP to an IP address, else through libcurl. */
static int follow(struct http_run *r, const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	char *query = NULL;
	CURLUcode uc;
	int rc = KM_ENOMEM;

	end_attempt(r);
	if (!u)
		return KM_ENOMEM;
	if ((uc = curl_url_set(u, CURLUPART_URL, url, 0)) != CURLUE_OK ||
	    (uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0)) != CURLUE_OK ||
	    (uc = curl_url_get(u, CURLUPART_HOST, &host, 0)) != CURLUE_OK ||
	    (uc = curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)) !=
		    CURLUE_OK ||
	    (uc = curl_url_get(u, CURLUPART_PATH, &path, 0)) != CURLUE_OK) {
		/* Not a URL to follow, unless libcurl had no memory. */
		rc = uc == CURLUE_OUT_OF_MEMORY ? KM_ENOMEM : KM_EINVAL;
		goto out;
	}
	/* No query is fine; no memory for it is not. */
	uc = curl_url_get(u, CURLUPART_QUERY, &query, 0);
	if (uc == CURLUE_OUT_OF_MEMORY)
		goto out;
	if (!strcasecmp(scheme, "http") &&
	    km_check_parse_ip(unbracket(host), atoi(port), &r->addr,
			      &r->addr_len)) {
		size_t n = strlen(path) + (query ? strlen(query) + 1 : 0) + 1;

		free(r->target);
		if (!(r->target = malloc(n)))
			goto out;
		snprintf(r->target, n, "%s%s%s", path, query ? "?" : "",
			 query ? query : "");
		snprintf(r->host_port, sizeof r->host_port, "%s%s%s:%s",
			 r->addr.sa.sa_family == AF_INET6 ? "[" : "",
			 unbracket(host),
			 r->addr.sa.sa_family == AF_INET6 ? "]" : "", port);
		rc = plain_connect(r);
	} else {
		km_loop_timer_cancel(r->x->loop, &r->timeout);
		rc = submit(r, url);
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

static bool is_redirect(long code)
{
	return code == 301 || code == 302 || code == 303 || code == 307 ||
	       code == 308;
}

/* A response is in: the redirect rule, then the status rule. location is
 * the absolute URL of a redirect, or NULL. */
static void conclude(struct http_run *r, long code, const char *location)
{
	struct km_check_result res;

	km_check_pass(&res);
	res.status_code = (int32_t)code;
	if (is_redirect(code) && location) {
		char host[256];
		int rc;

		if (url_host(location, host, sizeof host)) {
			km_check_fail(&res, KM_EC_INTERNAL, (int32_t)code,
				      "cannot read the redirect to %s: out of "
				      "memory",
				      location);
			report(r, &res);
			return;
		}
		/* Compared with the probe's: a redirect leaves the host
		 * only to be refused. */
		if (strcasecmp(host, r->c->probe->host) != 0) {
			/* The kubelet does not follow a redirect to another
			 * host: the 3xx is the answer, a success. */
			snprintf(res.message, sizeof res.message,
				 "warning: redirect to another host (%s) not "
				 "followed; HTTP %ld counts as success",
				 location, code);
			report(r, &res);
			return;
		}
		if (++r->redirects > MAX_REDIRECTS) {
			km_check_fail(&res, KM_EC_HTTP_STATUS, (int32_t)code,
				      "stopped after %d redirects",
				      MAX_REDIRECTS);
			report(r, &res);
			return;
		}
		/* Past this point r may be gone: follow reports a request
		 * that fails at once. */
		rc = follow(r, location);
		if (rc) {
			km_check_fail(&res,
				      rc == KM_EINVAL ? KM_EC_HTTP_STATUS
						      : KM_EC_INTERNAL,
				      (int32_t)code,
				      "cannot follow the redirect to %s",
				      location);
			report(r, &res);
		}
		return;
	}
	if (code < 200 || code >= 400) {
		char ex[257];

		excerpt(r, ex, sizeof ex);
		km_check_fail(&res, KM_EC_HTTP_STATUS, (int32_t)code,
			      "HTTP probe failed with statuscode: %ld%s%s",
			      code, ex[0] ? "; body: " : "", ex);
	}
	report(r, &res);
}

/* ---- our own connection -------------------------------------------------- */

static void plain_fail(struct http_run *r, int error_class, const char *what,
		       const char *detail)
{
	struct km_check_result res;

	km_check_fail(&res, error_class, 0, "%s %s: %s", what, r->host_port,
		      detail);
	report(r, &res);
}

static void plain_fail_errno(struct http_run *r, const char *what, int e)
{
	plain_fail(r, km_check_errno_class(e), what, strerror(e));
}

/* Connected (or failed to): write the request. True if it went out (r
 * lives on, waiting for the answer); false if r was reported or has to
 * wait for the connection still. */
static bool plain_send(struct http_run *r, uint32_t events)
{
	const struct km_probe *p = r->c->probe;
	char req[16384];
	int n;
	ssize_t w;

	if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		return false; /* a stray event of an earlier descriptor */
	if (events & (EPOLLERR | EPOLLHUP)) {
		int e = 0;
		socklen_t len = sizeof e;

		if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
			e = errno;
		if (e) {
			plain_fail_errno(r, "connect to", e);
			return false;
		}
	}
	n = km_http1_request(req, sizeof req, plain_target(r), r->host_port,
			     p->headers, p->n_headers, USER_AGENT);
	if (n < 0) {
		plain_fail(r, KM_EC_INTERNAL, "request to",
			   "the request "
			   "headers are over 16 KiB or hold a line break");
		return false;
	}
	/* A fresh connection's send buffer takes a request this size whole. */
	do
		w = send(r->fd, req, (size_t)n, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno == EAGAIN)
		return false; /* not connected after all: wait for EPOLLOUT */
	if (w < 0) {
		plain_fail_errno(r, "connect to", errno);
		return false;
	}
	if (w < n) {
		plain_fail(r, KM_EC_NETWORK, "sending the request to",
			   "the connection took only part of it");
		return false;
	}
	/* Edge-triggered for both directions since plain_connect: the
	 * answer's arrival is the next edge, no epoll_ctl needed. */
	r->sent = true;
	return true;
}

/* Reads what has arrived (all of it: the descriptor is edge-triggered)
 * until the response is complete. */
static void plain_read(struct http_run *r)
{
	char buf[16384];
	struct km_http1 *p = NULL;
	enum km_http1_result pr = KM_HTTP1_MORE;

	do {
		ssize_t n = recv(r->fd, buf, sizeof buf, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN)
				plain_fail_errno(r, "reading the response of",
						 errno);
			return;
		}
		if (!r->resp && !(r->resp = take_resp(r->x))) {
			plain_fail(r, KM_EC_INTERNAL, "reading the response of",
				   "out of memory");
			return;
		}
		p = &r->resp->p;
		pr = n ? km_http1_feed(p, buf, (size_t)n) : km_http1_eof(p);
		/* A complete answer before the server's FIN: wait for it
		 * when the run lets go of the connection. */
		r->drain = n > 0 && pr == KM_HTTP1_DONE && !p->truncated;
	} while (pr == KM_HTTP1_MORE);
	if (pr == KM_HTTP1_ERROR) {
		plain_fail(r, KM_EC_NETWORK, "the response of", p->error);
		return;
	}
	if (is_redirect(p->status) && p->has_location) {
		/* Resolved against this request's URL, as a browser would. */
		char base[4096], *abs = NULL;
		CURLU *u = curl_url();
		long code = p->status;

		if (!u) {
			plain_fail(r, KM_EC_INTERNAL, "reading the response of",
				   "out of memory");
			return;
		}
		snprintf(base, sizeof base, "http://%s%s", r->host_port,
			 plain_target(r));
		if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK) {
			snprintf(base, sizeof base, "http://%s/", r->host_port);
			curl_url_set(u, CURLUPART_URL, base, 0);
		}
		if (curl_url_set(u, CURLUPART_URL, p->location, 0) ==
			    CURLUE_OK &&
		    curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK) {
			curl_url_cleanup(u);
			conclude(r, code, abs);
			curl_free(abs);
			return;
		}
		curl_url_cleanup(u);
		{
			struct km_check_result res;

			km_check_fail(&res, KM_EC_HTTP_STATUS, (int32_t)code,
				      "HTTP %ld with a Location that is not "
				      "a URL: %.200s",
				      code, p->location);
			report(r, &res);
		}
		return;
	}
	conclude(r, p->status, NULL);
}

static void plain_event(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	struct http_run *r = arg;

	(void)l;
	(void)fd;
	/* Bytes that came with the connection (a server that speaks first)
	 * make no second edge: read them now. */
	if (r->sent || (plain_send(r, events) &&
			(events & (EPOLLIN | EPOLLERR | EPOLLHUP))))
		plain_read(r);
}

static void plain_timed_out(struct km_loop *l, void *arg)
{
	struct http_run *r = arg;
	struct km_check_result res;

	(void)l;
	km_check_fail(&res, KM_EC_TIMEOUT, 0, "timed out after %lld ms (%s %s)",
		      (long long)r->c->probe->timeout_ms,
		      r->sent ? "waiting for the response of" : "connecting to",
		      r->host_port);
	report(r, &res);
}

/* Opens r's connection to r->addr; the rest happens in plain_event. A
 * connection that fails at once is reported before this returns 0. */
static int plain_connect(struct http_run *r)
{
	struct km_loop *l = r->x->loop;
	int fd, e, rc;

	/* A probe of the API, to an address its policy denies (the probe's
	 * own host, or a redirect's): never connected to. */
	if (r->c->policy && km_probe_policy_addr(r->c->policy, &r->addr.sa,
						 r->denied, sizeof r->denied)) {
		plain_fail(r, KM_EC_NETWORK, "not connected to", r->denied);
		return 0;
	}
	rc = km_check_connect(&r->addr, r->addr_len, &fd, &e);
	if (rc)
		return rc;
	r->fd = fd;
	r->sent = false;
	if (km_loop_timer_set(l, &r->timeout, r->c->deadline))
		return KM_ENOMEM; /* the caller's run_free closes fd */
	if (e && e != EINPROGRESS) {
		plain_fail_errno(r, "connect to", e);
		return 0;
	}
	/* Even a connection made at once is written from the loop. Both
	 * directions, edge-triggered: connected, then answered, with no
	 * epoll_ctl between (and none at the end: closing removes it). */
	if (km_loop_add_fd(l, fd, EPOLLIN | EPOLLOUT | EPOLLET, plain_event, r))
		return KM_ENOMEM;
	return 0;
}

/* ---- libcurl's transfers ------------------------------------------------- */

static void finish(struct http_run *r, CURLcode cc)
{
	struct km_check_result res;
	long code = 0;
	char *location = NULL;

	if (r->connect_only) {
		km_check_pass(&res);
		/* Resolving: addresses were found, and nothing connected. */
		if (cc != CURLE_OK && !(r->resolve_only && *r->resolve_n))
			classify_error(r, cc, &res);
		report(r, &res);
		return;
	}
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	if (r->no_memory) {
		km_check_fail(&res, KM_EC_INTERNAL, (int32_t)code,
			      "reading the response: out of memory");
		report(r, &res);
		return;
	}
	/* Stopping at 10 KiB of body is not an error, as for the kubelet. */
	if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && r->truncated)) {
		classify_error(r, cc, &res);
		report(r, &res);
		return;
	}
	if (is_redirect(code) &&
	    curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_URL, &location) ==
		    CURLE_OK &&
	    location) {
		/* location belongs to the easy handle, which follow hands
		 * back to the pool. */
		char url[4096];

		snprintf(url, sizeof url, "%s", location);
		conclude(r, code, url);
		return;
	}
	conclude(r, code, NULL);
}

static void finish_easy(CURL *easy, CURLcode result)
{
	struct http_run *r = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
	if (r)
		finish(r, result);
}

/* km_curl's done: a transfer curl reports finished. Nothing finish()
 * does comes back here. */
static void curl_done(void *arg, CURL *easy, CURLcode result)
{
	(void)arg;
	finish_easy(easy, result);
}

/* ---- starting ------------------------------------------------------------ */

static struct http_run *new_run(struct km_http_checker *x, struct km_check *c)
{
	struct http_run *r = pool_take(&x->runs, sizeof *r);

	if (!r)
		return NULL;
	memset(r, 0, sizeof *r);
	r->x = x;
	r->c = c;
	r->fd = -1;
	km_timer_init(&r->timeout, plain_timed_out, r);
	km_list_init(&r->ca_link);
	c->impl = r;
	return r;
}

/* "http://[::1]:8080/healthz" from the probe's parts. */
static void build_url(const struct km_probe *p, const char *scheme, char *out,
		      size_t n)
{
	const char *path = p->path && *p->path ? p->path : "/";
	bool v6 = strchr(p->host, ':') != NULL;

	snprintf(out, n, "%s://%s%s%s:%d%s%s", scheme, v6 ? "[" : "", p->host,
		 v6 ? "]" : "", p->port, *path == '/' ? "" : "/", path);
}

static int http_start(void *checker, struct km_check *c)
{
	struct km_http_checker *x = checker;
	const struct km_probe *p = c->probe;
	struct http_run *r = new_run(x, c);
	int rc;

	if (!r)
		return KM_ENOMEM;
	if (!p->https &&
	    km_check_parse_ip(p->host, p->port, &r->addr, &r->addr_len)) {
		bool v6 = r->addr.sa.sa_family == AF_INET6;

		snprintf(r->host_port, sizeof r->host_port, "%s%s%s:%d",
			 v6 ? "[" : "", p->host, v6 ? "]" : "", p->port);
		rc = 0;
		if (p->path && *p->path && *p->path != '/') {
			/* "healthz" is "/healthz", as build_url has it. */
			size_t n = strlen(p->path) + 2;

			if ((r->target = malloc(n)))
				snprintf(r->target, n, "/%s", p->path);
			else
				rc = KM_ENOMEM;
		}
		if (!rc)
			rc = plain_connect(r);
	} else {
		char url[4096];

		build_url(p, p->https ? "https" : "http", url, sizeof url);
		rc = submit(r, url);
	}
	if (rc) {
		c->impl = NULL;
		run_free(r);
	}
	return rc;
}

static void http_cancel(void *checker, struct km_check *c)
{
	(void)checker;
	if (c->impl)
		run_free(c->impl);
	c->impl = NULL;
}

/* TCP to a DNS name: curl resolves (off the loop) and connects. */
int km_check_http_connect_only(void *http_checker, struct km_check *c)
{
	struct km_http_checker *x = http_checker;
	struct http_run *r = new_run(x, c);
	char url[4096];
	int rc;

	if (!r)
		return KM_ENOMEM;
	r->connect_only = true;
	build_url(c->probe, "http", url, sizeof url);
	rc = submit(r, url);
	if (rc) {
		c->impl = NULL;
		run_free(r);
	}
	return rc;
}

/* A DNS name to the addresses the probe may connect to, through libcurl's
 * resolver (off the loop): a CONNECT_ONLY transfer whose every socket is
 * refused (opensocket_cb), so nothing is connected to; it ends when
 * libcurl has tried them all, at once (both families together). */
int km_check_http_resolve(void *http_checker, struct km_check *c,
			  union km_check_addr *out, size_t max, size_t *n)
{
	struct km_http_checker *x = http_checker;
	struct http_run *r = new_run(x, c);
	char url[4096];
	int rc;

	if (!r)
		return KM_ENOMEM;
	r->connect_only = true;
	r->resolve_only = true;
	r->resolve_out = out;
	r->resolve_max = max;
	r->resolve_n = n;
	*n = 0;
	build_url(c->probe, "http", url, sizeof url);
	rc = submit(r, url);
	if (rc) {
		c->impl = NULL;
		run_free(r);
	}
	return rc;
}

/* ---- the checker --------------------------------------------------------- */

static int http_create(const struct km_check_env *env, void **out,
		       struct km_error *err)
{
	struct km_http_checker *x = calloc(1, sizeof *x);
	struct km_loop *l = env->loop;
	int rc;

	*out = NULL;
	if (!x)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	x->loop = l;
	x->offload = env->offload;
	for (size_t b = 0; b < CA_BUCKETS; b++)
		km_list_init(&x->cas[b]);
	km_list_init(&x->drains);
	km_timer_init(&x->drain_timer, drain_expired, x);
	rc = km_curl_create(l, "HTTP checks", curl_done, x, &x->curl, err);
	if (rc) {
		free(x);
		return rc;
	}
	x->multi = km_curl_multi(x->curl);
	{
		/* A probe with no headers of its own sends these. */
		static const struct km_probe none = {.n_headers = 0};

		if (kubelet_headers(&none, &x->default_headers)) {
			curl_slist_free_all(x->default_headers);
			x->default_headers = NULL;
		}
	}
	*out = x;
	return 0;
}

static void http_destroy(void *checker)
{
	struct km_http_checker *x = checker;

	if (!x)
		return;
	/* Runs still in the multi handle were abandoned with their probes;
	 * the prober cancels every run before destroying checkers. */
	km_loop_timer_cancel(x->loop, &x->drain_timer);
	while (!km_list_empty(&x->drains))
		drain_end(oldest_drain(x));
	/* Reads in flight are abandoned (the pool frees them). */
	for (size_t b = 0; b < CA_BUCKETS; b++)
		while (!km_list_empty(&x->cas[b]))
			ca_entry_free(x, km_list_entry(x->cas[b].next,
						       struct ca_entry, link));
	pool_free_all(&x->drain_pool);
	for (size_t i = 0; i < x->n_pool; i++)
		curl_easy_cleanup(x->pool[i]);
	pool_free_all(&x->runs);
	pool_free_all(&x->resps);
	curl_slist_free_all(x->default_headers);
	km_curl_destroy(x->curl);
	free(x);
}

const struct km_check_type km_check_http = {
	.name = "http",
	.create = http_create,
	.destroy = http_destroy,
	.start = http_start,
	.cancel = http_cancel,
};
