/*
 * TCP checks: success iff a connection is established within the timeout
 * (the kubelet's rule), then the socket is closed at once. A non-blocking
 * connect watched by the loop; SO_LINGER 1 s as the kubelet sets it (and
 * the close does not wait for it: km_check_close_now). A host
 * that is a DNS name is resolved and connected by libcurl instead
 * (km_check_http_connect_only, in an HTTP checker of our own), so no
 * lookup blocks the loop.
 *
 * Each run records which of the two ways owns it when it starts, so
 * cancel never has to work it out again from the probe.
 *
 * A probe of the API (c->policy) connects only where the API's probe
 * policy allows: an IP address is judged here, the addresses of a name in
 * libcurl's opensocket callback (km_check_http.c).
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_internal.h"

struct tcp_checker {
	/* A checker of km_check_http, for hosts that are DNS names. */
	void *by_name;
};

enum tcp_path {
	TCP_OWN,     /* our own connect to an IP address */
	TCP_BY_NAME, /* libcurl's CONNECT_ONLY transfer */
};

struct tcp_run {
	struct km_check *c;
	enum tcp_path path;
	/* TCP_OWN */
	int fd;
	struct km_timer timeout;
	/* TCP_BY_NAME: the run handed to libcurl, which reports to
	 * by_name_done; it carries c's probe, times and loop. */
	struct km_check sub;
};

static void close_run(struct tcp_run *r)
{
	assert(r->path == TCP_OWN);
	km_loop_timer_cancel(r->c->loop, &r->timeout);
	if (r->fd >= 0) {
		km_loop_forget_fd(r->c->loop, r->fd);
		km_check_close_now(r->fd);
	}
	r->c->impl = NULL;
	free(r);
}

static void fail_errno(struct km_check_result *res, const struct km_probe *p,
		       int e)
{
	km_check_fail(res, km_check_errno_class(e), 0, "connect to %s:%d: %s",
		      p->host, p->port, strerror(e));
}

static void report(struct tcp_run *r, const struct km_check_result *res)
{
	struct km_check *c = r->c;

	close_run(r);
	c->done(c, res);
}

static void writable(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	struct tcp_run *r = arg;
	struct km_check_result res;
	int e = 0;
	socklen_t len = sizeof e;

	(void)l;
	(void)events;
	km_check_pass(&res);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	if (e)
		fail_errno(&res, r->c->probe, e);
	report(r, &res);
}

static void timed_out(struct km_loop *l, void *arg)
{
	struct tcp_run *r = arg;
	struct km_check_result res;

	(void)l;
	km_check_fail(&res, KM_EC_TIMEOUT, 0,
		      "connect to %s:%d: no answer within %lld ms",
		      r->c->probe->host, r->c->probe->port,
		      (long long)r->c->probe->timeout_ms);
	report(r, &res);
}

/* libcurl's verdict on a DNS name's run: the run is over, pass it on. */
static void by_name_done(struct km_check *sub,
			 const struct km_check_result *res)
{
	struct tcp_run *r = sub->owner;
	struct km_check *c = r->c;

	assert(r->path == TCP_BY_NAME && c->impl == r);
	c->impl = NULL;
	free(r);
	c->done(c, res);
}

static int start_by_name(struct tcp_checker *x, struct tcp_run *r)
{
	struct km_check *c = r->c;
	int rc;

	r->path = TCP_BY_NAME;
	r->sub = *c;
	r->sub.done = by_name_done;
	r->sub.owner = r;
	r->sub.impl = NULL;
	c->impl = r;
	rc = km_check_http_connect_only(x->by_name, &r->sub);
	if (rc) {
		c->impl = NULL;
		free(r);
	}
	return rc;
}

static int tcp_start(void *checker, struct km_check *c)
{
	struct tcp_checker *x = checker;
	const struct km_probe *p = c->probe;
	struct km_check_result res = {.success = true};
	struct tcp_run *r;
	union km_check_addr a;
	socklen_t len;
	int rc, e;

	r = calloc(1, sizeof *r);
	if (!r)
		return KM_ENOMEM;
	r->c = c;
	r->fd = -1;
	if (!km_check_parse_ip(p->host, p->port, &a, &len))
		return start_by_name(x, r);
	r->path = TCP_OWN;
	c->impl = r;
	km_timer_init(&r->timeout, timed_out, r);
	if (c->policy) {
		char why[256];

		/* A probe of the API to an address its policy denies: never
		 * connected to. */
		if (km_probe_policy_addr(c->policy, &a.sa, why, sizeof why)) {
			km_check_fail(&res, KM_EC_NETWORK, 0,
				      "not connected to %s:%d: %s", p->host,
				      p->port, why);
			report(r, &res);
			return 0;
		}
	}
	rc = km_check_connect(&a, len, &r->fd, &e);
	if (rc) {
		close_run(r);
		return rc;
	}
	if (e != EINPROGRESS) {
		if (e)
			fail_errno(&res, p, e);
		report(r, &res);
		return 0;
	}
	if ((rc = km_loop_add_fd(c->loop, r->fd, EPOLLOUT, writable, r)) ||
	    (rc = km_loop_timer_set(c->loop, &r->timeout, c->deadline))) {
		close_run(r);
		return rc;
	}
	return 0;
}

static void tcp_cancel(void *checker, struct km_check *c)
{
	struct tcp_checker *x = checker;
	struct tcp_run *r = c->impl;

	if (!r)
		return;
	switch (r->path) {
	case TCP_OWN: close_run(r); break;
	case TCP_BY_NAME:
		km_check_http.cancel(x->by_name, &r->sub);
		c->impl = NULL;
		free(r);
		break;
	}
}

static int tcp_create(const struct km_check_env *env, void **out,
		      struct km_error *err)
{
	struct tcp_checker *x = calloc(1, sizeof *x);
	int rc;

	*out = NULL;
	if (!x)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	rc = km_check_http.create(env, &x->by_name, err);
	if (rc) {
		free(x);
		return rc;
	}
	*out = x;
	return 0;
}

static void tcp_destroy(void *checker)
{
	struct tcp_checker *x = checker;

	if (!x)
		return;
	km_check_http.destroy(x->by_name);
	free(x);
}

const struct km_check_type km_check_tcp = {
	.name = "tcp",
	.create = tcp_create,
	.destroy = tcp_destroy,
	.start = tcp_start,
	.cancel = tcp_cancel,
};
