/*
 * TCP checks: success iff a connection is established within the timeout
 * (the kubelet's rule), then the socket is closed at once. A non-blocking
 * connect watched by the loop; SO_LINGER 1 s as the kubelet sets it (and
 * the close does not wait for it: km_check_close_now). A host
 * that is a DNS name is resolved and connected by libcurl instead
 * (km_check_http.c), so no lookup blocks the loop.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_internal.h"

struct tcp_run {
	struct km_check *c;
	int fd;
	struct km_timer timeout;
};

static void close_run(struct tcp_run *r)
{
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

int km_tcp_check_start(struct km_http_checker *x, struct km_check *c)
{
	const struct km_probe *p = c->probe;
	struct km_check_result res = {.success = true};
	struct tcp_run *r;
	union km_check_addr a;
	socklen_t len;
	int rc, e;

	if (!km_check_parse_ip(p->host, p->port, &a, &len))
		return check_tcp_by_name(x, c);
	r = calloc(1, sizeof *r);
	if (!r)
		return KM_ENOMEM;
	r->c = c;
	c->impl = r;
	km_timer_init(&r->timeout, timed_out, r);
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
	if (km_loop_add_fd(c->loop, r->fd, EPOLLOUT, writable, r) ||
	    km_loop_timer_set(c->loop, &r->timeout, c->deadline)) {
		close_run(r);
		return KM_ENOMEM;
	}
	return 0;
}

void km_tcp_check_cancel(struct km_http_checker *x, struct km_check *c)
{
	union km_check_addr a;
	socklen_t len;

	if (!c->impl)
		return;
	if (km_check_parse_ip(c->probe->host, c->probe->port, &a, &len))
		close_run(c->impl);
	else
		km_http_check_cancel(x, c);
}
