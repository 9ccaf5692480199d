/*
 * HTTP and TCP checks against a real HTTP server on loopback (a small one
 * in a thread of this test): the 200-399 rule, the 10 KiB body limit, the
 * kubelet's redirect rule, the request it sends, and how failures are
 * classified. Every HTTP test runs twice: against 127.0.0.1 (the
 * prober's own connection and km_http1) and against "localhost" (libcurl,
 * which resolves names), since both must keep the same rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "km_check.h"
#include "km_time.h"

/* ---- the server ---------------------------------------------------------- */

/* The host the probes name: set by each group's setup. */
static const char *g_host = "127.0.0.1";

struct server {
	int fd, port;
	pthread_t th;
	pthread_mutex_t mu;
	char last_request[4096];
	int requests;
	int release; /* a pipe end: /hang waits on it */
	int release_w;
	int client_eof_r; /* /hold writes a byte here when the client closes */
	int client_eof_w;
};

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void respond(int fd, int code, const char *extra, const char *body,
		    size_t len)
{
	char head[512];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s"
			 "Connection: close\r\n\r\n",
			 code, len, extra);

	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

static void *serve(void *arg)
{
	struct server *s = arg;
	static char big[20480];

	memset(big, 'x', sizeof big);
	for (;;) {
		char req[4096] = "", path[256] = "", loc[512];
		size_t n = 0;
		int c = accept(s->fd, NULL, NULL);

		if (c < 0)
			return NULL;
		while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
			ssize_t r = read(c, req + n, sizeof req - 1 - n);
			if (r <= 0)
				break;
			n += (size_t)r;
			req[n] = '\0';
		}
		req[n] = '\0';
		sscanf(req, "GET %255s", path);
		pthread_mutex_lock(&s->mu);
		snprintf(s->last_request, sizeof s->last_request, "%s", req);
		s->requests++;
		pthread_mutex_unlock(&s->mu);

		if (!strcmp(path, "/ok") || !strcmp(path, "/"))
			respond(c, 200, "", "ok", 2);
		else if (!strcmp(path, "/status/500"))
			respond(c, 500, "", "boom\n", 5);
		else if (!strcmp(path, "/status/399"))
			respond(c, 399, "", "", 0);
		else if (!strcmp(path, "/status/404"))
			respond(c, 404, "", "", 0);
		else if (!strcmp(path, "/big"))
			respond(c, 200, "", big, sizeof big);
		else if (!strcmp(path, "/big500"))
			respond(c, 500, "", big, sizeof big);
		else if (!strcmp(path, "/redirect-same")) {
			snprintf(loc, sizeof loc,
				 "Location: http://%s:%d/ok\r\n", g_host,
				 s->port);
			respond(c, 302, loc, "", 0);
		} else if (!strcmp(path, "/redirect-other")) {
			snprintf(loc, sizeof loc,
				 "Location: http://elsewhere.invalid:%d/ok\r\n",
				 s->port);
			respond(c, 301, loc, "", 0);
		} else if (!strcmp(path, "/redirect-after-release")) {
			char b;

			/* The test changes its policy meanwhile. */
			if (read(s->release, &b, 1) < 0)
				b = 0;
			snprintf(loc, sizeof loc,
				 "Location: http://%s:%d/ok\r\n", g_host,
				 s->port);
			respond(c, 302, loc, "", 0);
		} else if (!strcmp(path, "/redirect-to-500"))
			respond(c, 307, "Location: /status/500\r\n", "", 0);
		else if (!strcmp(path, "/redirect-loop"))
			respond(c, 302, "Location: /redirect-loop\r\n", "", 0);
		else if (!strcmp(path, "/chunked")) {
			static const char r[] =
				"HTTP/1.1 503 Busy\r\nTransfer-Encoding: "
				"chunked\r\n\r\n4\r\nbusy\r\n7;x=y\r\n, "
				"later\r\n0\r\nX-Trailer: 1\r\n\r\n";
			send_all(c, r, sizeof r - 1);
		} else if (!strcmp(path, "/continue")) {
			static const char r[] =
				"HTTP/1.1 100 Continue\r\n\r\n"
				"HTTP/1.1 204 No Content\r\n\r\n";
			send_all(c, r, sizeof r - 1);
		} else if (!strcmp(path, "/garbage")) {
			send_all(c, "SSH-2.0-OpenSSH_9.2\r\n", 21);
		} else if (!strcmp(path, "/short")) {
			static const char r[] =
				"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
				"\r\nonly ten..";
			send_all(c, r, sizeof r - 1);
		} else if (!strcmp(path, "/hold")) {
			char b;

			/* Answer, then keep the connection until the client
			 * closes it. */
			static const char r[] = "HTTP/1.1 200 OK\r\n"
						"Content-Length: 2\r\n\r\nok";
			send_all(c, r, sizeof r - 1);
			while (read(c, &b, 1) > 0)
				;
			send_all(s->client_eof_w, "x", 1);
		} else if (!strcmp(path, "/drop"))
			; /* close without a word */
		else if (!strcmp(path, "/hang")) {
			char b;
			/* Until the test releases us (after its timeout). */
			if (read(s->release, &b, 1) < 0)
				b = 0;
		} else
			respond(c, 404, "", "", 0);
		close(c);
	}
}

static struct server *server_start(void)
{
	struct server *s = calloc(1, sizeof *s);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int p[2];

	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s->fd, 64), 0);
	getsockname(s->fd, (struct sockaddr *)&a, &len);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pipe(p), 0);
	s->release = p[0];
	s->release_w = p[1];
	assert_int_equal(pipe(p), 0);
	s->client_eof_r = p[0];
	s->client_eof_w = p[1];
	pthread_mutex_init(&s->mu, NULL);
	pthread_create(&s->th, NULL, serve, s);
	return s;
}

static void server_stop(struct server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	pthread_join(s->th, NULL);
	close(s->release);
	close(s->release_w);
	close(s->client_eof_r);
	close(s->client_eof_w);
	free(s);
}

/* ---- running one check --------------------------------------------------- */

struct outcome {
	struct km_check_result r;
	bool done;
	int64_t took_ms;
};

static void on_done(struct km_check *c, const struct km_check_result *r)
{
	struct outcome *o = c->owner;

	o->r = *r;
	o->done = true;
	o->took_ms = (km_mono_ns() - c->started) / 1000000;
	km_loop_stop(c->loop);
}

static void safety(struct km_loop *l, void *arg)
{
	(void)arg;
	km_loop_stop(l); /* a bug: the test then fails on o.done */
}

/* What a prober gives its checkers, for loop l (checks here need no
 * offload pool). */
static const struct km_check_env *env_of(struct km_loop *l)
{
	static struct km_check_counters counters;
	static struct km_check_env env;

	env = (struct km_check_env){.loop = l, .counters = &counters};
	return &env;
}

/* The API's probe policy the checks are held to (NULL: trusted). */
static const struct km_probe_policy *g_policy;

static struct outcome run(struct km_probe *p)
{
	const struct km_check_type *t =
		p->type == KM_PROBE_TCP ? &km_check_tcp : &km_check_http;
	struct km_loop *l;
	void *x;
	struct km_error err = {0};
	struct outcome o = {0};
	struct km_check c = {0};
	struct km_timer guard;

	assert_int_equal(km_loop_create(&l, &err), 0);
	assert_int_equal(t->create(env_of(l), &x, &err), 0);
	c.loop = l;
	c.probe = p;
	c.policy = g_policy;
	c.started = km_mono_ns();
	c.deadline = c.started + p->timeout_ms * 1000000;
	c.done = on_done;
	c.owner = &o;
	km_timer_init(&guard, safety, NULL);
	km_loop_timer_set(l, &guard, c.deadline + 5000000000LL);
	assert_int_equal(t->start(x, &c), 0);
	if (!o.done)
		assert_int_equal(km_loop_run(l), 0);
	assert_true(o.done);
	km_loop_timer_cancel(l, &guard);
	t->destroy(x);
	km_loop_destroy(l);
	return o;
}

static struct km_probe http(struct server *s, const char *path)
{
	struct km_probe p = {.type = KM_PROBE_HTTP,
			     .name = "t",
			     .host = g_host,
			     .port = s->port,
			     .path = path,
			     .timeout_ms = 1000,
			     .period_ms = 10000,
			     .success_threshold = 1,
			     .failure_threshold = 3};
	return p;
}

/* ---- tests --------------------------------------------------------------- */

static int setup(void **state)
{
	g_policy = NULL; /* trusted, unless a test says otherwise */
	*state = server_start();
	return 0;
}

static int own_connection(void **state)
{
	(void)state;
	g_host = "127.0.0.1";
	return 0;
}

static int through_libcurl(void **state)
{
	(void)state;
	g_host = "localhost";
	return 0;
}

static int teardown(void **state)
{
	server_stop(*state);
	return 0;
}

static void test_status_rule(void **state)
{
	struct server *s = *state;
	struct km_probe p = http(s, "/ok");
	struct outcome o = run(&p);

	assert_true(o.r.success);
	assert_int_equal(o.r.status_code, 200);
	p = http(s, "/status/399");
	assert_true(run(&p).r.success);
	p = http(s, "/status/404");
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_HTTP_STATUS);
	assert_int_equal(o.r.status_code, 404);
	p = http(s, "/status/500");
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.status_code, 500);
	assert_non_null(strstr(o.r.message, "statuscode: 500"));
	assert_non_null(strstr(o.r.message, "boom"));
}

static void test_request_is_the_kubelets(void **state)
{
	struct server *s = *state;
	struct km_kv h[] = {{"X-Custom", "yes"}, {"Accept", "text/plain"}};
	struct km_probe p = http(s, "/ok");

	p.headers = h;
	p.n_headers = 2;
	assert_true(run(&p).r.success);
	pthread_mutex_lock(&s->mu);
	assert_non_null(strstr(s->last_request, "GET /ok HTTP/1.1\r\n"));
	assert_non_null(strstr(s->last_request, "X-Custom: yes\r\n"));
	assert_non_null(strstr(s->last_request, "Accept: text/plain\r\n"));
	assert_null(strstr(s->last_request, "Accept: */*"));
	assert_non_null(strstr(s->last_request, "User-Agent: kubemedic/"));
	/* No keep-alive: every probe is a new connection. */
	assert_non_null(strstr(s->last_request, "Connection: close\r\n"));
	pthread_mutex_unlock(&s->mu);
	/* An empty path is "/". */
	p = http(s, "");
	assert_true(run(&p).r.success);
}

static void test_body_limit(void **state)
{
	struct server *s = *state;
	struct km_probe p = http(s, "/big");
	struct outcome o = run(&p);

	/* 20 KiB of body: reading stops at 10 KiB, which is no error. */
	assert_true(o.r.success);
	assert_int_equal(o.r.status_code, 200);
	p = http(s, "/big500");
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_HTTP_STATUS);
	assert_int_equal(o.r.status_code, 500);
}

static void test_redirect_rule(void **state)
{
	struct server *s = *state;
	struct km_probe p = http(s, "/redirect-same");
	struct outcome o;
	int before;

	/* Same host: followed to the final answer. */
	pthread_mutex_lock(&s->mu);
	before = s->requests;
	pthread_mutex_unlock(&s->mu);
	o = run(&p);
	assert_true(o.r.success);
	assert_int_equal(o.r.status_code, 200);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->requests - before, 2);
	pthread_mutex_unlock(&s->mu);
	p = http(s, "/redirect-to-500");
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.status_code, 500);
	/* Another host: not followed; the 3xx counts as success, with a
	 * warning. (elsewhere.invalid does not even resolve: it is never
	 * asked.) */
	p = http(s, "/redirect-other");
	o = run(&p);
	assert_true(o.r.success);
	assert_int_equal(o.r.status_code, 301);
	assert_non_null(strstr(o.r.message, "warning: redirect to another "
					    "host"));
	assert_non_null(strstr(o.r.message, "elsewhere.invalid"));
	/* A loop stops after 10 redirects. */
	p = http(s, "/redirect-loop");
	o = run(&p);
	assert_false(o.r.success);
	assert_non_null(strstr(o.r.message, "stopped after 10 redirects"));
}

static void test_failures_are_classified(void **state)
{
	struct server *s = *state;
	struct km_probe p = http(s, "/drop");
	struct outcome o = run(&p);
	int closed;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;

	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_NETWORK);

	p = http(s, "/hang");
	p.timeout_ms = 200;
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_TIMEOUT);
	assert_true(o.took_ms >= 190 && o.took_ms < 1500);
	assert_int_equal(write(s->release_w, "x", 1), 1);

	/* A port nobody listens on: refused. */
	closed = socket(AF_INET, SOCK_STREAM, 0);
	bind(closed, (struct sockaddr *)&a, sizeof a);
	getsockname(closed, (struct sockaddr *)&a, &len);
	close(closed);
	p = http(s, "/ok");
	p.port = ntohs(a.sin_port);
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_REFUSED);

	p.host = "no-such-host.invalid";
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_DNS);
}

static void test_framing(void **state)
{
	struct server *s = *state;
	struct km_probe p = http(s, "/chunked");
	struct outcome o = run(&p);

	/* A chunked body is decoded for the message. */
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_HTTP_STATUS);
	assert_int_equal(o.r.status_code, 503);
	assert_non_null(strstr(o.r.message, "body: busy, later"));
	/* 1xx is skipped; the final 204 is a success. */
	p = http(s, "/continue");
	o = run(&p);
	assert_true(o.r.success);
	assert_int_equal(o.r.status_code, 204);
	/* Not HTTP at all, and a body cut short: failures, not hangs. */
	p = http(s, "/garbage");
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_NETWORK);
	assert_true(o.took_ms < 900);
	p = http(s, "/short");
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_NETWORK);
	assert_true(o.took_ms < 900);
}

/* ---- the end of a connection --------------------------------------------- */

struct hold {
	struct outcome o;
	int64_t done_at, eof_at;
};

static void hold_done(struct km_check *c, const struct km_check_result *r)
{
	struct hold *h = c->owner;

	h->o.r = *r;
	h->o.done = true;
	h->done_at = km_mono_ns();
	h->o.took_ms = (h->done_at - c->started) / 1000000;
}

static void client_closed(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	struct hold *h = arg;
	char b;

	(void)events;
	if (read(fd, &b, 1) == 1)
		h->eof_at = km_mono_ns();
	km_loop_stop(l);
}

static void test_waits_for_the_servers_close(void **state)
{
	struct server *s = *state;
	struct km_probe p = http(s, "/hold");
	struct km_loop *l;
	void *x;
	struct km_error err = {0};
	struct km_check c = {0};
	struct km_timer guard;
	struct hold h = {0};

	assert_int_equal(km_loop_create(&l, &err), 0);
	assert_int_equal(km_check_http.create(env_of(l), &x, &err), 0);
	assert_int_equal(km_loop_add_fd(l, s->client_eof_r, EPOLLIN,
					client_closed, &h),
			 0);
	c.loop = l;
	c.probe = &p;
	c.started = km_mono_ns();
	c.deadline = c.started + p.timeout_ms * 1000000;
	c.done = hold_done;
	c.owner = &h;
	km_timer_init(&guard, safety, NULL);
	km_loop_timer_set(l, &guard, c.started + 10000000000LL);
	assert_int_equal(km_check_http.start(x, &c), 0);
	assert_int_equal(km_loop_run(l), 0);
	/* The answer is reported at once, without waiting for the server to
	 * close (we asked it to, and it does not)... */
	assert_true(h.o.done);
	assert_true(h.o.r.success);
	assert_true(h.o.took_ms < 500);
	/* ...and the connection is kept for the server's FIN, then let go
	 * when it does not come: about a second later, never leaked. */
	assert_true(h.eof_at > 0);
	assert_true(h.eof_at - h.done_at >= 900000000LL);
	assert_true(h.eof_at - h.done_at < 5000000000LL);
	km_loop_timer_cancel(l, &guard);
	km_loop_del_fd(l, s->client_eof_r);
	km_check_http.destroy(x);
	km_loop_destroy(l);
}

static void test_tcp(void **state)
{
	struct server *s = *state;
	struct km_probe p = {.type = KM_PROBE_TCP,
			     .name = "t",
			     .host = "127.0.0.1",
			     .port = s->port,
			     .timeout_ms = 1000};
	struct outcome o = run(&p);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int closed;

	assert_true(o.r.success);
	/* By name: resolved and connected by libcurl, off the loop. */
	p.host = "localhost";
	assert_true(run(&p).r.success);
	p.host = "no-such-host.invalid";
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_DNS);

	closed = socket(AF_INET, SOCK_STREAM, 0);
	bind(closed, (struct sockaddr *)&a, sizeof a);
	getsockname(closed, (struct sockaddr *)&a, &len);
	close(closed);
	p.host = "127.0.0.1";
	p.port = ntohs(a.sin_port);
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_REFUSED);
	assert_non_null(strstr(o.r.message, "refused"));
}

/* A cancelled TCP run never reports, whichever way it went (our own
 * connect for an IP address, libcurl for a name): a second run to the
 * same server, started after it, reports and stops the loop. */
static void test_tcp_cancel(void **state)
{
	struct server *s = *state;
	struct km_probe p = {.type = KM_PROBE_TCP,
			     .name = "t",
			     .host = g_host,
			     .port = s->port,
			     .timeout_ms = 1000};
	struct km_loop *l;
	void *x;
	struct km_error err = {0};
	struct outcome cancelled = {0}, witness = {0};
	struct km_check c1 = {0}, c2 = {0};
	struct km_timer guard;

	assert_int_equal(km_loop_create(&l, &err), 0);
	assert_int_equal(km_check_tcp.create(env_of(l), &x, &err), 0);
	c1.loop = c2.loop = l;
	c1.probe = c2.probe = &p;
	c1.started = c2.started = km_mono_ns();
	c1.deadline = c2.deadline = c1.started + p.timeout_ms * 1000000;
	c1.done = c2.done = on_done;
	c1.owner = &cancelled;
	c2.owner = &witness;
	km_timer_init(&guard, safety, NULL);
	km_loop_timer_set(l, &guard, c1.deadline + 5000000000LL);

	assert_int_equal(km_check_tcp.start(x, &c1), 0);
	assert_non_null(c1.impl);
	km_check_tcp.cancel(x, &c1);
	assert_null(c1.impl);
	assert_int_equal(km_check_tcp.start(x, &c2), 0);
	assert_int_equal(km_loop_run(l), 0);
	assert_true(witness.done);
	assert_true(witness.r.success);
	assert_false(cancelled.done);

	km_loop_timer_cancel(l, &guard);
	km_check_tcp.destroy(x);
	km_loop_destroy(l);
}

/* ---- the API's probe policy --------------------------------------------- */

static int requests(struct server *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->requests;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Loopback, both families: where the test server is. */
static struct km_cidr loopback[2];

static void deny_loopback(struct km_probe_policy *pol)
{
	assert_null(km_cidr_parse("127.0.0.0/8", &loopback[0]));
	assert_null(km_cidr_parse("::1", &loopback[1]));
	km_probe_policy_defaults(pol);
	pol->deny = loopback;
	pol->n_deny = 2;
}

/* A probe of the API never connects to an address its policy denies,
 * whether written as one (own connection, TCP) or reached through a name
 * (libcurl's opensocket); the config's probes (no policy) do. */
static void test_policy_denies_before_connecting(void **state)
{
	struct server *s = *state;
	struct km_probe_policy pol;
	struct km_probe p = http(s, "/ok"), t = {.type = KM_PROBE_TCP,
						 .name = "t",
						 .host = g_host,
						 .port = s->port,
						 .timeout_ms = 1000};
	struct outcome o;
	int before = requests(s);

	deny_loopback(&pol);
	g_policy = &pol;
	o = run(&p);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_NETWORK);
	if (!strstr(o.r.message, "is in 127.0.0.0/8, denied by "
				 "api.probeNetworks") &&
	    !strstr(o.r.message, "::1 is in ::1/128, denied by "
				 "api.probeNetworks"))
		fail_msg("message: %s", o.r.message);
	assert_non_null(strstr(o.r.message, "not connected"));
	o = run(&t);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_NETWORK);
	assert_non_null(strstr(o.r.message, "not connected"));
	assert_non_null(strstr(o.r.message, "denied by api.probeNetworks"));
	/* Nothing reached the server. */
	assert_int_equal(requests(s), before);
	/* Allowed networks are reached; so is everything without a
	 * policy. */
	km_probe_policy_defaults(&pol);
	o = run(&p);
	assert_true(o.r.success);
	g_policy = NULL;
	deny_loopback(&pol);
	o = run(&p);
	assert_true(o.r.success);
	assert_int_equal(requests(s), before + 2);
}

struct flip {
	struct km_probe_policy *pol;
	struct server *s;
};

/* On the loop (the thread that reads the policy): deny loopback, then
 * let the server answer with its redirect. */
static void flip_policy(struct km_loop *l, void *arg)
{
	struct flip *f = arg;

	(void)l;
	deny_loopback(f->pol);
	send_all(f->s->release_w, "x", 1);
}

/* A redirect is judged again: the server's redirect (same host, as the
 * kubelet's rule wants) is not followed once the address is denied. */
static void test_policy_judges_redirects(void **state)
{
	struct server *s = *state;
	struct km_probe p = http(s, "/redirect-after-release");
	struct km_probe_policy pol;
	struct flip f = {&pol, s};
	struct km_loop *l;
	void *x;
	struct km_error err = {0};
	struct outcome o = {0};
	struct km_check c = {0};
	struct km_timer guard, flip;
	int before = requests(s);

	km_probe_policy_defaults(&pol); /* loopback allowed at first */
	assert_int_equal(km_loop_create(&l, &err), 0);
	assert_int_equal(km_check_http.create(env_of(l), &x, &err), 0);
	c.loop = l;
	c.probe = &p;
	c.policy = &pol;
	c.started = km_mono_ns();
	c.deadline = c.started + p.timeout_ms * 1000000;
	c.done = on_done;
	c.owner = &o;
	km_timer_init(&guard, safety, NULL);
	km_loop_timer_set(l, &guard, c.deadline + 5000000000LL);
	km_timer_init(&flip, flip_policy, &f);
	km_loop_timer_set(l, &flip, c.started + 100 * 1000000LL);
	assert_int_equal(km_check_http.start(x, &c), 0);
	assert_int_equal(km_loop_run(l), 0);
	assert_true(o.done);
	assert_false(o.r.success);
	assert_int_equal(o.r.error_class, KM_EC_NETWORK);
	assert_non_null(strstr(o.r.message, "not connected"));
	assert_non_null(strstr(o.r.message, "denied by api.probeNetworks"));
	/* The redirect's request, and not the one it pointed to. */
	assert_int_equal(requests(s), before + 1);
	km_loop_timer_cancel(l, &guard);
	km_loop_timer_cancel(l, &flip);
	km_check_http.destroy(x);
	km_loop_destroy(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_status_rule),
		T(test_request_is_the_kubelets),
		T(test_body_limit),
		T(test_redirect_rule),
		T(test_failures_are_classified),
		T(test_framing),
		T(test_tcp),
		T(test_tcp_cancel),
		T(test_policy_denies_before_connecting),
		T(test_policy_judges_redirects),
#undef T
	};
	/* libcurl closes a connection when it is done with it, by its own
	 * rules: waiting for the server's FIN is the own connection's. */
	const struct CMUnitTest own_only[] = {
		cmocka_unit_test_setup_teardown(
			test_waits_for_the_servers_close, setup, teardown),
	};
	int failed = cmocka_run_group_tests_name("own connection", tests,
						 own_connection, NULL);

	failed += cmocka_run_group_tests_name("own connection only", own_only,
					      own_connection, NULL);
	return failed + cmocka_run_group_tests_name("through libcurl", tests,
						    through_libcurl, NULL);
}
