/*
 * gRPC health checks on a real km_loop against real servers on loopback:
 * kubemedic's own km_rpc server with a Check handler whose answer the
 * service name chooses, a closed port, and a raw TCP listener that never
 * speaks HTTP/2 (and counts the connections made to it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "km_check.h"
#include "km_grpc_msg.h"
#include "km_rpc.h"
#include "km_time.h"

#define MS 1000000LL
#define SAFETY_MS 10000
#define MAX_CHECKS 32
#define ST(x) GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x

/* ---- the servers ----------------------------------------------------------- */

static struct km_rpc_server *server;
static int health_port; /* km_rpc, Check answers by service name */
static int closed_port; /* nothing listens */
static int silent_fd;   /* listens, never accepts, never speaks */
static int silent_port;
static atomic_int checks_served;
static atomic_int slow_running; /* "slow" handlers not returned yet */

/* "" and "serving": SERVING; "not-serving", "service-unknown": those;
 * "status-7": a status the proto does not name; "malformed": bytes that
 * are no HealthCheckResponse; "slow": SERVING after 600 ms; anything else:
 * NOT_FOUND. */
static int handle_check(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
			ProtobufCMessage **resp, struct km_error *err)
{
	const Grpc__Health__V1__HealthCheckRequest *r = (const void *)req;
	const char *svc = r->service ? r->service : "";
	Grpc__Health__V1__HealthCheckResponse *out =
		km_arena_alloc(ctx->arena, sizeof *out);
	int status;

	atomic_fetch_add(&checks_served, 1);
	if (!out)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	grpc__health__v1__health_check_response__init(out);
	if (!strcmp(svc, "") || !strcmp(svc, "serving")) {
		status = ST(SERVING);
	} else if (!strcmp(svc, "not-serving")) {
		status = ST(NOT_SERVING);
	} else if (!strcmp(svc, "service-unknown")) {
		status = ST(SERVICE_UNKNOWN);
	} else if (!strcmp(svc, "status-7")) {
		status = 7;
	} else if (!strcmp(svc, "malformed")) {
		/* Field 1 as a string where the response has an enum: not a
		 * HealthCheckResponse. */
		Grpc__Health__V1__HealthCheckRequest *bad =
			km_arena_alloc(ctx->arena, sizeof *bad);

		if (!bad)
			return km_error_set(err, KM_ENOMEM, "out of memory");
		grpc__health__v1__health_check_request__init(bad);
		bad->service = "not a status";
		*resp = &bad->base;
		return 0;
	} else if (!strcmp(svc, "slow")) {
		atomic_fetch_add(&slow_running, 1);
		usleep(600000);
		atomic_fetch_sub(&slow_running, 1);
		status = ST(SERVING);
	} else {
		return km_error_set(err, KM_ENOTFOUND, "unknown service \"%s\"",
				    svc);
	}
	out->status = status;
	*resp = &out->base;
	return 0;
}

static const struct km_rpc_method methods[] = {{
	.path = "/grpc.health.v1.Health/Check",
	.kind = KM_RPC_UNARY,
	.request = &grpc__health__v1__health_check_request__descriptor,
	.handle = handle_check,
}};

/* A TCP socket on 127.0.0.1, any port; listening or not. */
static int loopback_socket(bool listening, int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	/* Non-blocking: silent_take_connections takes what is queued. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    (listening && listen(fd, 64) < 0) ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* Connections waiting in the silent listener's queue, taken and closed. */
static int silent_take_connections(void)
{
	int n = 0, fd;

	while ((fd = accept4(silent_fd, NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		close(fd);
		n++;
	}
	return n;
}

static int group_setup(void **state)
{
	struct km_rpc_options o = {
		.listen = "127.0.0.1:0",
		.threads = 2,
		.methods = methods,
		.n_methods = 1,
	};
	struct km_error err = {0};
	int fd;

	(void)state;
	if (km_rpc_server_start(&o, &server, &err)) {
		fprintf(stderr, "health server: %s\n", err.msg);
		return -1;
	}
	health_port = km_rpc_server_port(server);
	/* Bound, then closed: connecting is refused. */
	fd = loopback_socket(false, &closed_port);
	if (fd < 0)
		return -1;
	close(fd);
	silent_fd = loopback_socket(true, &silent_port);
	return silent_fd < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	int64_t until = km_mono_ns() + 5000 * MS;

	(void)state;
	/* km_rpc aborts if a handler replies after its queues were shut
	 * down, which happens when the client cancelled that call (as the
	 * checker does) and the server is shut down before the handler
	 * returns: let the slow handlers finish first. */
	while (atomic_load(&slow_running) && km_mono_ns() < until)
		usleep(10000);
	km_rpc_server_shutdown(server, 1000);
	close(silent_fd);
	return 0;
}

/* ---- the harness ----------------------------------------------------------- */

struct harness {
	struct km_loop *loop;
	void *x;
	struct km_check_counters counters;
	/* The API's probe policy the checks are held to (NULL: trusted). */
	const struct km_probe_policy *policy;
	struct km_timer safety, stop_timer, cancel_timer;
	struct km_check checks[MAX_CHECKS];
	struct km_probe probes[MAX_CHECKS];
	int done_calls, outstanding;
	bool timed_out;
	struct km_check_result res;
	int64_t done_at;
};

static void stop_now(struct km_loop *l, void *arg)
{
	(void)arg;
	km_loop_stop(l);
}

static void safety_fired(struct km_loop *l, void *arg)
{
	struct harness *h = arg;

	h->timed_out = true;
	km_loop_stop(l);
}

static void on_done(struct km_check *c, const struct km_check_result *r)
{
	struct harness *h = c->owner;

	h->done_calls++;
	h->res = *r;
	h->done_at = km_mono_ns();
	if (--h->outstanding == 0)
		km_loop_stop(h->loop);
}

static int setup(void **state)
{
	struct harness *h = calloc(1, sizeof *h);
	struct km_error err = {0};

	if (!h)
		return -1;
	if (km_loop_create(&h->loop, &err) ||
	    km_check_grpc.create(&(struct km_check_env){.loop = h->loop,
							.counters =
								&h->counters},
				 &h->x, &err)) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	km_timer_init(&h->safety, safety_fired, h);
	km_timer_init(&h->stop_timer, stop_now, h);
	silent_take_connections(); /* a clean count for every test */
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct harness *h = *state;

	km_check_grpc.destroy(h->x);
	km_loop_destroy(h->loop);
	free(h);
	return 0;
}

static struct km_check *start(struct harness *h, int i, const char *host,
			      int port, const char *service, int64_t timeout_ms)
{
	struct km_probe *p = &h->probes[i];
	struct km_check *c = &h->checks[i];

	memset(p, 0, sizeof *p);
	p->type = KM_PROBE_GRPC;
	p->name = "grpc-test";
	p->host = host;
	p->port = port;
	p->service = service;
	p->timeout_ms = timeout_ms;
	memset(c, 0, sizeof *c);
	c->loop = h->loop;
	c->probe = p;
	c->policy = h->policy;
	c->started = km_mono_ns();
	c->deadline = c->started + timeout_ms * MS;
	c->done = on_done;
	c->owner = h;
	/* Counted first: a check may report before start returns. */
	h->outstanding++;
	assert_int_equal(km_check_grpc.start(h->x, c), 0);
	return c;
}

static void run(struct harness *h)
{
	km_loop_timer_set(h->loop, &h->safety, km_mono_ns() + SAFETY_MS * MS);
	assert_int_equal(km_loop_run(h->loop), 0);
	km_loop_timer_cancel(h->loop, &h->safety);
	assert_false(h->timed_out);
}

static const struct km_check_result *check(struct harness *h, const char *host,
					   int port, const char *service,
					   int64_t timeout_ms)
{
	start(h, 0, host, port, service, timeout_ms);
	run(h);
	assert_int_equal(h->done_calls, 1);
	return &h->res;
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* ---- answers ----------------------------------------------------------------- */

static void test_serving(void **state)
{
	struct harness *h = *state;
	const struct km_check_result *r =
		check(h, "127.0.0.1", health_port, "serving", 2000);

	assert_true(r->success);
	assert_int_equal(r->error_class, KM_EC_NONE);
	assert_int_equal(r->status_code, ST(SERVING));
	assert_string_equal(r->message, "");
}

static void test_empty_service_is_the_server(void **state)
{
	struct harness *h = *state;
	struct km_check *c = start(h, 0, "127.0.0.1", health_port, NULL, 2000);

	(void)c;
	run(h);
	assert_true(h->res.success);
}

static void test_not_serving(void **state)
{
	struct harness *h = *state;
	const struct km_check_result *r =
		check(h, "127.0.0.1", health_port, "not-serving", 2000);

	assert_false(r->success);
	assert_int_equal(r->error_class, KM_EC_GRPC_STATUS);
	assert_int_equal(r->status_code, ST(NOT_SERVING));
	assert_string_equal(r->message, "health status NOT_SERVING");
}

static void test_service_unknown(void **state)
{
	struct harness *h = *state;
	const struct km_check_result *r =
		check(h, "127.0.0.1", health_port, "service-unknown", 2000);

	assert_int_equal(r->error_class, KM_EC_GRPC_STATUS);
	assert_int_equal(r->status_code, ST(SERVICE_UNKNOWN));
	assert_string_equal(r->message, "health status SERVICE_UNKNOWN");
}

static void test_unnamed_status(void **state)
{
	struct harness *h = *state;
	const struct km_check_result *r =
		check(h, "127.0.0.1", health_port, "status-7", 2000);

	assert_int_equal(r->error_class, KM_EC_GRPC_STATUS);
	assert_int_equal(r->status_code, 7);
	assert_string_equal(r->message, "health status 7");
}

static void test_malformed_response(void **state)
{
	struct harness *h = *state;
	const struct km_check_result *r =
		check(h, "127.0.0.1", health_port, "malformed", 2000);

	assert_int_equal(r->error_class, KM_EC_GRPC_STATUS);
	assert_int_equal(r->status_code, 13 /* INTERNAL */);
	assert_string_equal(r->message,
			    "status OK but a malformed HealthCheckResponse");
}

static void test_error_status(void **state)
{
	struct harness *h = *state;
	const struct km_check_result *r =
		check(h, "127.0.0.1", health_port, "nope", 2000);

	assert_false(r->success);
	assert_int_equal(r->error_class, KM_EC_GRPC_STATUS);
	assert_int_equal(r->status_code, 5 /* NOT_FOUND */);
	/* The service name went out in the request and came back. */
	assert_string_equal(r->message, "NOT_FOUND: unknown service \"nope\"");
}

/* ---- failures to connect, timeouts ----------------------------------------- */

static void test_connection_refused(void **state)
{
	struct harness *h = *state;
	const struct km_check_result *r =
		check(h, "127.0.0.1", closed_port, "", 2000);

	assert_false(r->success);
	assert_int_equal(r->error_class, KM_EC_REFUSED);
	assert_int_equal(r->status_code, 14 /* UNAVAILABLE */);
	assert_true(starts_with(r->message, "UNAVAILABLE: "));
	/* Fast: refused, not waited for. */
	assert_true(h->done_at - h->checks[0].started < 1000 * MS);
}

static void test_network_unreachable(void **state)
{
	struct harness *h = *state;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)};
	const struct km_check_result *r;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e;

	/* Linux refuses TCP to a multicast address with ENETUNREACH, at
	 * once; make sure this machine does. */
	inet_pton(AF_INET, "224.0.0.1", &a.sin_addr);
	e = connect(fd, (struct sockaddr *)&a, sizeof a) < 0 ? errno : 0;
	close(fd);
	if (e != ENETUNREACH)
		skip();
	r = check(h, "224.0.0.1", 80, "", 2000);
	assert_int_equal(r->error_class, KM_EC_NETWORK);
	assert_int_equal(r->status_code, 14);
	assert_true(starts_with(r->message, "UNAVAILABLE: "));
}

static void test_ipv6_literal(void **state)
{
	struct harness *h = *state;
	struct sockaddr_in6 a = {.sin6_family = AF_INET6,
				 .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	const struct km_check_result *r;
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port;
	socklen_t len = sizeof a;

	/* A closed port on ::1, if this machine has IPv6 loopback. */
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		if (fd >= 0)
			close(fd);
		skip();
	}
	port = ntohs(a.sin6_port);
	close(fd);
	/* The host goes into the target in brackets. */
	r = check(h, "::1", port, "", 2000);
	assert_int_equal(r->error_class, KM_EC_REFUSED);
	assert_non_null(strstr(r->message, "ipv6:"));
}

static void test_name_not_found(void **state)
{
	struct harness *h = *state;
	const struct km_check_result *r =
		check(h, "km-no-such-host.invalid", 80, "", 3000);

	/* Without a reachable resolver the lookup can only time out. */
	if (r->error_class == KM_EC_TIMEOUT)
		skip();
	assert_int_equal(r->error_class, KM_EC_DNS);
	assert_int_equal(r->status_code, 14);
	assert_true(starts_with(r->message, "UNAVAILABLE: DNS resolution "
					    "failed for "
					    "km-no-such-host.invalid:80"));
}

static void test_silent_server_times_out(void **state)
{
	struct harness *h = *state;
	const struct km_check_result *r =
		check(h, "127.0.0.1", silent_port, "", 200);
	int64_t took = h->done_at - h->checks[0].started;

	assert_false(r->success);
	assert_int_equal(r->error_class, KM_EC_TIMEOUT);
	assert_int_equal(r->status_code, 4 /* DEADLINE_EXCEEDED */);
	assert_true(starts_with(r->message, "timed out after 200 ms "
					    "(DEADLINE_EXCEEDED: "));
	assert_int_equal(r->message[strlen(r->message) - 1], ')');
	/* By the deadline, a little after at most. */
	assert_true(took >= 190 * MS);
	assert_true(took < 500 * MS);
}

static void test_slow_handler_times_out(void **state)
{
	struct harness *h = *state;
	const struct km_check_result *r =
		check(h, "127.0.0.1", health_port, "slow", 200);

	assert_int_equal(r->error_class, KM_EC_TIMEOUT);
	assert_int_equal(r->status_code, 4);
	assert_true(h->done_at - h->checks[0].started < 500 * MS);
}

static void test_a_connection_per_check(void **state)
{
	struct harness *h = *state;

	/* Two checks at once to one address: with a shared subchannel they
	 * would share one connection. */
	start(h, 0, "127.0.0.1", silent_port, "", 300);
	start(h, 1, "127.0.0.1", silent_port, "", 300);
	run(h);
	assert_int_equal(h->done_calls, 2);
	assert_int_equal(h->res.error_class, KM_EC_TIMEOUT);
	assert_int_equal(silent_take_connections(), 2);
}

static void test_many_at_once(void **state)
{
	struct harness *h = *state;
	int before = atomic_load(&checks_served);

	for (int i = 0; i < MAX_CHECKS; i++)
		start(h, i, "127.0.0.1", health_port, "serving", 5000);
	run(h);
	assert_int_equal(h->done_calls, MAX_CHECKS);
	assert_true(h->res.success);
	assert_int_equal(atomic_load(&checks_served) - before, MAX_CHECKS);
}

/* ---- cancel, destroy ----------------------------------------------------------- */

static void cancel_fired(struct km_loop *l, void *arg)
{
	struct harness *h = arg;

	km_check_grpc.cancel(h->x, &h->checks[0]);
	/* The late completion (CANCELLED) comes through the loop: let it
	 * run, and free the run without a done. */
	km_loop_timer_set(l, &h->stop_timer, km_mono_ns() + 300 * MS);
}

static void test_cancel(void **state)
{
	struct harness *h = *state;

	start(h, 0, "127.0.0.1", silent_port, "", 5000);
	km_timer_init(&h->cancel_timer, cancel_fired, h);
	km_loop_timer_set(h->loop, &h->cancel_timer, km_mono_ns() + 100 * MS);
	run(h);
	assert_int_equal(h->done_calls, 0);
}

static void test_cancel_right_after_start(void **state)
{
	struct harness *h = *state;
	struct km_check *c =
		start(h, 0, "127.0.0.1", health_port, "serving", 5000);

	km_check_grpc.cancel(h->x, c);
	km_loop_timer_set(h->loop, &h->stop_timer, km_mono_ns() + 200 * MS);
	run(h);
	assert_int_equal(h->done_calls, 0);
}

static void test_destroy_with_calls_in_flight(void **state)
{
	struct harness *h = *state;
	int64_t t0;

	for (int i = 0; i < 3; i++)
		start(h, i, "127.0.0.1", silent_port, "", 5000);
	start(h, 3, "127.0.0.1", health_port, "slow", 5000);
	km_loop_timer_set(h->loop, &h->stop_timer, km_mono_ns() + 100 * MS);
	run(h);
	assert_int_equal(h->done_calls, 0);
	t0 = km_mono_ns();
	km_check_grpc.destroy(h->x); /* cancels, drains, joins */
	h->x = NULL;
	assert_true(km_mono_ns() - t0 < 1000 * MS);
	assert_int_equal(h->done_calls, 0);
}

static void test_bad_probe_is_refused(void **state)
{
	struct harness *h = *state;
	struct km_probe p = {.type = KM_PROBE_GRPC, .host = "127.0.0.1"};
	struct km_check c = {.loop = h->loop, .probe = &p, .done = on_done};

	assert_int_equal(km_check_grpc.start(h->x, &c), KM_EINVAL);
}

/* Our monotonic nanoseconds and the core's deadlines, both ways: what
 * crosses is the time left, whatever each clock's origin. */
static void test_deadlines_cross_clocks(void **state)
{
	int64_t now = km_mono_ns(), later = now + 5000 * MS, back;
	gpr_timespec d;

	(void)state;
	d = km_grpc_deadline(0);
	assert_int_equal(gpr_time_cmp(d, gpr_inf_future(d.clock_type)), 0);
	assert_int_equal(km_grpc_deadline_mono(d), 0);

	back = km_grpc_deadline_mono(km_grpc_deadline(later));
	assert_true(back > later - 50 * MS && back < later + 50 * MS);
	/* A deadline already past stays past. */
	d = km_grpc_deadline(now - 1000 * MS);
	assert_true(gpr_time_cmp(d, gpr_now(d.clock_type)) < 0);
	assert_true(km_grpc_deadline_mono(d) < km_mono_ns());
}

/* ---- the API's probe policy ---------------------------------------------- */

static struct km_cidr loopback[2];

static void deny_loopback(struct km_probe_policy *pol)
{
	assert_null(km_cidr_parse("127.0.0.0/8", &loopback[0]));
	assert_null(km_cidr_parse("::1", &loopback[1]));
	km_probe_policy_defaults(pol);
	pol->deny = loopback;
	pol->n_deny = 2;
}

/* A probe of the API: its name resolved first (off the loop), then the
 * channel made to the addresses — both families, tried in turn, as the
 * core's own resolution would. */
static void test_policy_name_resolved_first(void **state)
{
	struct harness *h = *state;
	struct km_probe_policy pol;
	const struct km_check_result *r;
	int served = atomic_load(&checks_served);

	km_probe_policy_defaults(&pol);
	h->policy = &pol;
	r = check(h, "localhost", health_port, "serving", 3000);
	assert_true(r->success);
	assert_int_equal(r->status_code, ST(SERVING));
	assert_int_equal(atomic_load(&checks_served), served + 1);
}

/* A denied address is never connected to: through a name or written as
 * one. */
static void test_policy_denied_never_connects(void **state)
{
	struct harness *h = *state;
	struct km_probe_policy pol;
	const char *hosts[] = {"localhost", "127.0.0.1", "[::1]", "::1"};

	deny_loopback(&pol);
	h->policy = &pol;
	for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
		const struct km_check_result *r;

		h->done_calls = 0;
		r = check(h, hosts[i], silent_port, "", 2000);
		assert_false(r->success);
		assert_int_equal(r->error_class, KM_EC_NETWORK);
		if (!strstr(r->message, "not connected") ||
		    !strstr(r->message, "denied by api.probeNetworks"))
			fail_msg("%s: %s", hosts[i], r->message);
		/* Refused before the deadline, not timed out. */
		assert_true(h->done_at - h->checks[0].started < 1000 * MS);
	}
	assert_int_equal(silent_take_connections(), 0);
}

static void test_policy_cancel_while_resolving(void **state)
{
	struct harness *h = *state;
	struct km_probe_policy pol;
	struct km_check *c;

	km_probe_policy_defaults(&pol);
	h->policy = &pol;
	c = start(h, 0, "localhost", silent_port, "", 5000);
	km_check_grpc.cancel(h->x, c);
	km_loop_timer_set(h->loop, &h->stop_timer, km_mono_ns() + 200 * MS);
	run(h);
	assert_int_equal(h->done_calls, 0);
	assert_int_equal(silent_take_connections(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_serving),
		T(test_empty_service_is_the_server),
		T(test_not_serving),
		T(test_service_unknown),
		T(test_unnamed_status),
		T(test_malformed_response),
		T(test_error_status),
		T(test_connection_refused),
		T(test_network_unreachable),
		T(test_ipv6_literal),
		T(test_name_not_found),
		T(test_silent_server_times_out),
		T(test_slow_handler_times_out),
		T(test_a_connection_per_check),
		T(test_many_at_once),
		T(test_cancel),
		T(test_cancel_right_after_start),
		T(test_destroy_with_calls_in_flight),
		T(test_bad_probe_is_refused),
		T(test_deadlines_cross_clocks),
		T(test_policy_name_resolved_first),
		T(test_policy_denied_never_connects),
		T(test_policy_cancel_while_resolving),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
