/*
 * km_rpc's bounds, against a real server on loopback driven by the C
 * client: an own_thread method answers while the worker is blocked in a
 * slow handler with more calls queued behind it; unary deadlines get the default and are cut to the
 * maximum (streams keep theirs); streaming calls over the limits, in all
 * and per client address, are refused with RESOURCE_EXHAUSTED naming the
 * limit and count again once a stream is over; and requests are decoded
 * within the memory budget with their strings checked.
 *
 * Synchronisation is by events: the slow handlers say they are running
 * (a condition variable) and wait to be released; a stream's end is
 * reported by its on_done.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "km_client.h"
#include "km_rpc.h"
#include "km_time.h"
#include "kubemedic/v1/probe.pb-c.h"

#define ST(x) GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x

/* ---- the handlers ----------------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int slow_running; /* Slow handlers entered, not returned */
static bool slow_release;
static int streams_done; /* on_done of Watch streams */

/* Waits (up to 10 s) until *v reaches want; mu held. */
static bool wait_for(int *v, int want)
{
	struct timespec ts = km_realtime_after(10000000000LL);

	while (*v < want)
		if (pthread_cond_timedwait(&cv, &mu, &ts))
			return *v >= want;
	return true;
}

static Grpc__Health__V1__HealthCheckResponse *serving(struct km_arena *a)
{
	Grpc__Health__V1__HealthCheckResponse *r = km_arena_alloc(a, sizeof *r);

	if (r) {
		grpc__health__v1__health_check_response__init(r);
		r->status = ST(SERVING);
	}
	return r;
}

/* Blocks until the test releases it. */
static int handle_slow(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
		       ProtobufCMessage **resp, struct km_error *err)
{
	Grpc__Health__V1__HealthCheckResponse *r = serving(ctx->arena);

	(void)req;
	pthread_mutex_lock(&mu);
	slow_running++;
	pthread_cond_broadcast(&cv);
	while (!slow_release)
		pthread_cond_wait(&cv, &mu);
	slow_running--;
	pthread_mutex_unlock(&mu);
	if (!r)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	*resp = &r->base;
	return 0;
}

static int handle_check(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
			ProtobufCMessage **resp, struct km_error *err)
{
	Grpc__Health__V1__HealthCheckResponse *r = serving(ctx->arena);

	(void)req;
	if (!r)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	*resp = &r->base;
	return 0;
}

/* Answers the handler's deadline as "ms=<left>" (0: none), and the name it
 * was given. */
static int handle_echo(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
		       ProtobufCMessage **resp, struct km_error *err)
{
	const Kubemedic__V1__GetProbeRequest *in = (const void *)req;
	Kubemedic__V1__GetProbeRequest *out =
		km_arena_alloc(ctx->arena, sizeof *out);
	int64_t left =
		ctx->deadline_mono_ns
			? (ctx->deadline_mono_ns - km_mono_ns()) / 1000000
			: 0;

	if (!out)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	kubemedic__v1__get_probe_request__init(out);
	out->name = km_arena_printf(ctx->arena, "ms=%lld %s", (long long)left,
				    in->name);
	if (!out->name)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	*resp = &out->base;
	return 0;
}

static void watch_done(void *arg, struct km_rpc_call *c)
{
	(void)arg;
	km_rpc_call_unref(c);
	pthread_mutex_lock(&mu);
	streams_done++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* A stream that sends SERVING at once, then stays open. */
static int watch_start(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
		       struct km_error *err)
{
	Grpc__Health__V1__HealthCheckResponse r =
		GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	(void)req;
	(void)err;
	r.status = ST(SERVING);
	km_rpc_call_ref(ctx->call);
	km_rpc_stream_send(ctx->call, &r.base);
	km_rpc_call_on_done(ctx->call, watch_done, NULL);
	return 0;
}

static const struct km_rpc_method methods[] = {
	{.path = "/test.Test/Slow",
	 .kind = KM_RPC_UNARY,
	 .request = &grpc__health__v1__health_check_request__descriptor,
	 .handle = handle_slow},
	{.path = "/test.Test/Echo",
	 .kind = KM_RPC_UNARY,
	 .request = &kubemedic__v1__get_probe_request__descriptor,
	 .handle = handle_echo},
	{.path = "/grpc.health.v1.Health/Check",
	 .kind = KM_RPC_UNARY,
	 .request = &grpc__health__v1__health_check_request__descriptor,
	 .handle = handle_check,
	 .own_thread = true},
	{.path = "/grpc.health.v1.Health/Watch",
	 .kind = KM_RPC_SERVER_STREAM,
	 .request = &grpc__health__v1__health_check_request__descriptor,
	 .stream_start = watch_start},
};

static struct km_rpc_server *start(struct km_rpc_options *o, char *addr,
				   size_t addr_size)
{
	struct km_rpc_server *s;
	struct km_error err = {0};

	o->listen = "127.0.0.1:0";
	o->methods = methods;
	o->n_methods = sizeof methods / sizeof methods[0];
	if (km_rpc_server_start(o, &s, &err)) {
		print_error("km_rpc_server_start: %s\n", err.msg);
		fail();
	}
	snprintf(addr, addr_size, "127.0.0.1:%d", km_rpc_server_port(s));
	return s;
}

/* ---- own thread --------------------------------------------------------------- */

struct slow_caller {
	const char *addr;
	pthread_t thread;
	int rc;
};

static void *call_slow(void *arg)
{
	struct slow_caller *sc = arg;
	Grpc__Health__V1__HealthCheckRequest req =
		GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	struct km_client_status st;
	struct km_client *c;
	struct km_arena a = {0};
	ProtobufCMessage *resp;

	sc->rc = km_client_open(sc->addr, &c, &st);
	if (!sc->rc) {
		km_client_set_timeout(c, 60000);
		sc->rc = km_client_call(
			c, "/test.Test/Slow", &req.base,
			&grpc__health__v1__health_check_response__descriptor,
			&a, &resp, &st);
		km_client_close(c);
	}
	km_arena_free(&a);
	return NULL;
}

/* One worker (which calls of a connection a worker gets is gRPC's choice:
 * with one, it is certain that it is busy), blocked in a handler, two more
 * calls queued behind it: Check is answered all the same. */
static void test_own_thread_answers_while_workers_are_busy(void **state)
{
	enum { CALLERS = 3 };
	struct km_rpc_options o = {.threads = 1};
	struct slow_caller callers[CALLERS];
	Grpc__Health__V1__HealthCheckRequest req =
		GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *h;
	struct km_client_status st;
	struct km_rpc_server *s;
	struct km_client *c;
	struct km_arena a = {0};
	char addr[64];
	bool busy;
	int rc;

	(void)state;
	s = start(&o, addr, sizeof addr);
	slow_release = false;
	for (int i = 0; i < CALLERS; i++) {
		callers[i].addr = addr;
		assert_int_equal(pthread_create(&callers[i].thread, NULL,
						call_slow, &callers[i]),
				 0);
	}
	/* The worker is inside a handler that will not return. */
	pthread_mutex_lock(&mu);
	busy = wait_for(&slow_running, 1);
	pthread_mutex_unlock(&mu);
	assert_true(busy);

	/* Check is answered all the same, well within its deadline. */
	assert_int_equal(km_client_open(addr, &c, &st), 0);
	km_client_set_timeout(c, 5000);
	for (int i = 0; i < 3; i++) {
		rc = km_client_health_check(c, &req, &a, &h, &st);
		if (rc)
			print_error("Check: %s\n", st.message);
		assert_int_equal(rc, 0);
		assert_int_equal(h->status, ST(SERVING));
	}
	pthread_mutex_lock(&mu);
	assert_int_equal(slow_running, 1); /* still blocked */
	slow_release = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < CALLERS; i++) {
		pthread_join(callers[i].thread, NULL);
		assert_int_equal(callers[i].rc, 0);
	}
	km_client_close(c);
	km_arena_free(&a);
	km_rpc_server_shutdown(s, 1000);
}

static void test_own_thread_is_unary_only(void **state)
{
	struct km_rpc_method bad = methods[3];
	struct km_rpc_options o = {.listen = "127.0.0.1:0",
				   .threads = 1,
				   .methods = &bad,
				   .n_methods = 1};
	struct km_rpc_server *s = NULL;
	struct km_error err = {0};

	(void)state;
	bad.own_thread = true;
	assert_int_equal(km_rpc_server_start(&o, &s, &err), KM_EINVAL);
	assert_null(s);
	assert_non_null(strstr(err.msg, "only unary methods"));
}

/* ---- deadlines ----------------------------------------------------------------- */

/* The deadline Echo's handler saw, in ms (0: none), for a client timeout
 * (0: none). */
static long echo_deadline(const char *addr, int64_t timeout_ms)
{
	Kubemedic__V1__GetProbeRequest req =
		KUBEMEDIC__V1__GET_PROBE_REQUEST__INIT;
	struct km_client_status st;
	struct km_client *c;
	struct km_arena a = {0};
	ProtobufCMessage *resp;
	long ms = -1;

	req.name = "x";
	assert_int_equal(km_client_open(addr, &c, &st), 0);
	km_client_set_timeout(c, timeout_ms);
	assert_int_equal(
		km_client_call(c, "/test.Test/Echo", &req.base,
			       &kubemedic__v1__get_probe_request__descriptor,
			       &a, &resp, &st),
		0);
	assert_int_equal(sscanf(((Kubemedic__V1__GetProbeRequest *)resp)->name,
				"ms=%ld", &ms),
			 1);
	km_client_close(c);
	km_arena_free(&a);
	return ms;
}

static void test_unary_deadlines(void **state)
{
	struct km_rpc_options o = {.threads = 1,
				   .default_deadline_ms = 4000,
				   .max_deadline_ms = 8000};
	struct km_rpc_server *s;
	char addr[64];
	long ms;

	(void)state;
	s = start(&o, addr, sizeof addr);
	/* None given: the default. */
	ms = echo_deadline(addr, 0);
	assert_true(ms > 2000 && ms <= 4000);
	/* A minute asked for: cut to the maximum. */
	ms = echo_deadline(addr, 60000);
	assert_true(ms > 6000 && ms <= 8000);
	/* Shorter than both: the client's own (the wire's grpc-timeout is
	 * rounded up a little). */
	ms = echo_deadline(addr, 1500);
	assert_true(ms > 0 && ms <= 1600);
	km_rpc_server_shutdown(s, 1000);

	/* Without bounds the handler sees what the client sent. */
	o.default_deadline_ms = o.max_deadline_ms = 0;
	s = start(&o, addr, sizeof addr);
	assert_int_equal(echo_deadline(addr, 0), 0);
	ms = echo_deadline(addr, 60000);
	assert_true(ms > 50000);
	km_rpc_server_shutdown(s, 1000);
}

/* ---- stream limits -------------------------------------------------------------- */

/* Opens a Watch; true if the server took it (its first message came),
 * false with *st if it was refused. */
static bool open_watch(struct km_client *c, struct km_client_stream **out,
		       struct km_client_status *st)
{
	Grpc__Health__V1__HealthCheckRequest req =
		GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	struct km_arena a = {0};
	ProtobufCMessage *m;
	int rc;

	assert_int_equal(km_client_stream_open(c,
					       "/grpc.health.v1.Health/Watch",
					       &req.base, out, st),
			 0);
	rc = km_client_stream_next(
		*out, &grpc__health__v1__health_check_response__descriptor, &a,
		10000, &m, st);
	km_arena_free(&a);
	assert_true(rc == 0 || rc == KM_ERANGE);
	if (rc) {
		km_client_stream_close(*out);
		*out = NULL;
	}
	return rc == 0;
}

static void check_stream_limit(int max_streams, int per_peer,
			       const char *limit_named)
{
	struct km_rpc_options o = {.threads = 2,
				   .max_streams = max_streams,
				   .max_streams_per_peer = per_peer};
	int allowed = max_streams < per_peer ? max_streams : per_peer;
	struct km_client_stream *v[8], *extra;
	struct km_client_status st;
	struct km_rpc_server *s;
	struct km_client *c;
	char addr[64];
	bool done;

	s = start(&o, addr, sizeof addr);
	assert_int_equal(km_client_open(addr, &c, &st), 0);
	pthread_mutex_lock(&mu);
	streams_done = 0;
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < allowed; i++)
		assert_true(open_watch(c, &v[i], &st));
	assert_false(open_watch(c, &extra, &st));
	assert_int_equal(st.code, 8 /* RESOURCE_EXHAUSTED */);
	assert_non_null(strstr(st.message, limit_named));
	/* Unary calls are not streams: still served. */
	assert_true(echo_deadline(addr, 5000) > 0);

	/* One ends; once the server knows, another is taken. */
	km_client_stream_close(v[0]);
	pthread_mutex_lock(&mu);
	done = wait_for(&streams_done, 1);
	pthread_mutex_unlock(&mu);
	assert_true(done);
	assert_true(open_watch(c, &v[0], &st));
	assert_false(open_watch(c, &extra, &st));

	for (int i = 0; i < allowed; i++)
		km_client_stream_close(v[i]);
	km_client_close(c);
	km_rpc_server_shutdown(s, 1000);
}

static void test_streams_limited_in_all(void **state)
{
	(void)state;
	check_stream_limit(3, 100, "(limits.maxStreams)");
}

static void test_streams_limited_per_peer(void **state)
{
	(void)state;
	check_stream_limit(100, 2,
			   "too many streams from ipv4:127.0.0.1: 2 "
			   "are open");
}

/* ---- decoding -------------------------------------------------------------------- */

/* Field 1 as bytes: a FileDescriptorResponse with one element has the
 * wire form of a GetProbeRequest whose name holds those bytes, NULs and
 * all. */
static int echo_raw(const char *addr, size_t copies, const void *bytes,
		    size_t n, struct km_client_status *st)
{
	Grpc__Reflection__V1__FileDescriptorResponse req =
		GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	ProtobufCBinaryData *items = calloc(copies, sizeof *items);
	struct km_client *c;
	struct km_arena a = {0};
	ProtobufCMessage *resp;
	int rc;

	assert_non_null(items);
	for (size_t i = 0; i < copies; i++) {
		items[i].data = (uint8_t *)bytes;
		items[i].len = n;
	}
	req.file_descriptor_proto = items;
	req.n_file_descriptor_proto = copies;
	assert_int_equal(km_client_open(addr, &c, st), 0);
	rc = km_client_call(c, "/test.Test/Echo", &req.base,
			    &kubemedic__v1__get_probe_request__descriptor, &a,
			    &resp, st);
	km_client_close(c);
	km_arena_free(&a);
	free(items);
	return rc;
}

static void test_requests_decoded_and_checked(void **state)
{
	struct km_rpc_options o = {.threads = 1,
				   .max_request_memory = 64 << 10};
	struct km_client_status st;
	struct km_rpc_server *s;
	char addr[64];

	(void)state;
	s = start(&o, addr, sizeof addr);
	assert_int_equal(echo_raw(addr, 1, "fine", 4, &st), 0);
	assert_int_not_equal(echo_raw(addr, 1, "up-http\0junk", 12, &st), 0);
	assert_int_equal(st.code, 3 /* INVALID_ARGUMENT */);
	assert_non_null(
		strstr(st.message, "name: must not contain NUL characters"));
	assert_int_not_equal(echo_raw(addr, 1, "\xc3\x28", 2, &st), 0);
	assert_int_equal(st.code, 3);
	assert_non_null(strstr(st.message, "name: not valid UTF-8"));
	/* 20,000 occurrences of a 1-byte name: 60 KB on the wire, more than
	 * 64 KiB to decode. */
	assert_int_not_equal(echo_raw(addr, 20000, "a", 1, &st), 0);
	assert_int_equal(st.code, 8 /* RESOURCE_EXHAUSTED */);
	assert_non_null(strstr(st.message, "limits.maxRequestMemoryBytes"));
	assert_int_equal(echo_raw(addr, 100, "a", 1, &st), 0);
	km_rpc_server_shutdown(s, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_own_thread_answers_while_workers_are_busy),
		cmocka_unit_test(test_own_thread_is_unary_only),
		cmocka_unit_test(test_unary_deadlines),
		cmocka_unit_test(test_streams_limited_in_all),
		cmocka_unit_test(test_streams_limited_per_peer),
		cmocka_unit_test(test_requests_decoded_and_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
