/*
 * km_kube_client's requests on a real loop, against a small HTTP/1.1
 * server on loopback (a thread of this test, one connection at a time):
 * writes arrive with the method, body, Content-Type and token they were
 * sent with; a 429's Retry-After reaches the end callback; an answer over
 * KM_KUBE_BODY_MAX fails; a cancelled request calls nothing; a 401 makes
 * the next request read the token file again; writes share the GETs'
 * token bucket; what km_kube_request refuses, it refuses before sending.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "km_kube_client.h"
#include "km_kube_decode.h"
#include "km_test.h"
#include "km_time.h"

/* ---- the server -------------------------------------------------------------- */

struct seen {
	char method[16], path[256], ctype[160], auth[160];
	bool has_ctype, has_length;
	long length;
	char *body;
	size_t len;
	int64_t at_ns;
};

struct server {
	int fd, port;
	int release[2]; /* /hang waits for a byte here */
	pthread_t th;
	pthread_mutex_t mu;
	struct seen seen[8];
	int n_seen;
};

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void answer(int c, const char *status, const char *extra,
		   const char *body)
{
	char head[512];

	snprintf(head, sizeof head,
		 "HTTP/1.1 %s\r\nContent-Type: application/json\r\n%s"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		 status, extra, strlen(body));
	send_all(c, head, strlen(head));
	send_all(c, body, strlen(body));
}

/* The value of header name in the request's head, into out. */
static bool header(const char *head, const char *name, char *out, size_t n)
{
	const char *p = head;
	size_t k = strlen(name);

	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (!strncasecmp(p, name, k) && p[k] == ':') {
			const char *v = p + k + 1, *e = strstr(v, "\r\n");

			while (*v == ' ')
				v++;
			snprintf(out, n, "%.*s", (int)(e - v), v);
			return true;
		}
	}
	return false;
}

static void serve_one(struct server *s, int c)
{
	static char head[16384];
	char num[32];
	size_t have = 0;
	char *end = NULL, *body = NULL;
	struct seen *w;
	ssize_t r;

	while (!end && have < sizeof head - 1 &&
	       (r = read(c, head + have, sizeof head - 1 - have)) > 0) {
		have += (size_t)r;
		head[have] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	if (!end)
		return;
	pthread_mutex_lock(&s->mu);
	w = &s->seen[s->n_seen < 8 ? s->n_seen++ : 7];
	free(w->body);
	memset(w, 0, sizeof *w);
	w->at_ns = km_mono_ns();
	sscanf(head, "%15s %255s", w->method, w->path);
	w->has_ctype = header(head, "Content-Type", w->ctype, sizeof w->ctype);
	header(head, "Authorization", w->auth, sizeof w->auth);
	w->has_length = header(head, "Content-Length", num, sizeof num);
	w->length = w->has_length ? atol(num) : 0;
	pthread_mutex_unlock(&s->mu);
	if (w->length > 0 && w->length <= 4 << 20) {
		size_t got = have - (size_t)(end + 4 - head);

		body = malloc((size_t)w->length + 1);
		memcpy(body, end + 4, got);
		while (got < (size_t)w->length &&
		       (r = read(c, body + got, (size_t)w->length - got)) > 0)
			got += (size_t)r;
		body[got] = '\0';
		pthread_mutex_lock(&s->mu);
		w->body = body;
		w->len = got;
		pthread_mutex_unlock(&s->mu);
	}
	if (!strcmp(w->path, "/throttled")) {
		answer(c, "429 Too Many Requests", "Retry-After: 3\r\n",
		       "Too many requests, please try again later.");
	} else if (!strcmp(w->path, "/unauthorized")) {
		answer(c, "401 Unauthorized", "",
		       "{\"kind\":\"Status\",\"code\":401}");
	} else if (!strcmp(w->path, "/big")) {
		/* One byte over the bound the client reads. */
		static char chunk[1 << 16];
		size_t left = (size_t)KM_KUBE_BODY_MAX + 1;
		char h[256];

		memset(chunk, 'x', sizeof chunk);
		snprintf(h, sizeof h,
			 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 left);
		send_all(c, h, strlen(h));
		while (left) {
			size_t n = left < sizeof chunk ? left : sizeof chunk;
			ssize_t x = send(c, chunk, n, MSG_NOSIGNAL);

			if (x <= 0)
				break;
			left -= (size_t)x;
		}
	} else if (!strcmp(w->path, "/hang")) {
		char b;

		if (read(s->release[0], &b, 1) < 0)
			b = 0;
	} else {
		answer(c, "201 Created", "",
		       "{\"kind\":\"Status\",\"code\":201}");
	}
}

static void *serve(void *arg)
{
	struct server *s = arg;
	int c;

	while ((c = accept(s->fd, NULL, NULL)) >= 0) {
		serve_one(s, c);
		close(c);
	}
	return NULL;
}

static struct server *server_start(void)
{
	struct server *s = calloc(1, sizeof *s);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;

	assert_non_null(s);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s->fd, 16), 0);
	getsockname(s->fd, (struct sockaddr *)&a, &len);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pipe(s->release), 0);
	pthread_mutex_init(&s->mu, NULL);
	pthread_create(&s->th, NULL, serve, s);
	return s;
}

static void server_stop(struct server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	if (write(s->release[1], "x", 1) < 0)
		fail();
	pthread_join(s->th, NULL);
	close(s->release[0]);
	close(s->release[1]);
	for (int i = 0; i < 8; i++)
		free(s->seen[i].body);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- the client on a loop ------------------------------------------------------ */

struct ended {
	int calls;
	long status;
	char *body;
	size_t len;
	int err;
	char msg[512];
	int64_t retry_after_s;
	struct km_kube_req *req;
	struct km_loop *loop;
	int *pending; /* stop the loop at 0 */
};

static void on_end(void *arg, long status, const char *body, size_t len,
		   const struct km_error *err)
{
	struct ended *e = arg;

	e->calls++;
	e->status = status;
	free(e->body);
	e->body = malloc(len + 1);
	memcpy(e->body, body, len);
	e->body[len] = '\0';
	e->len = len;
	e->err = err ? err->code : 0;
	snprintf(e->msg, sizeof e->msg, "%s", err ? err->msg : "");
	e->retry_after_s = km_kube_req_retry_after(e->req);
	if (e->pending && --*e->pending == 0)
		km_loop_stop(e->loop);
}

static void stop(struct km_loop *l, void *arg)
{
	(void)arg;
	km_loop_stop(l);
}

/* Runs l until every pending request ended, or ms passed. */
static void run_for(struct km_loop *l, int64_t ms)
{
	struct km_timer guard;

	km_timer_init(&guard, stop, NULL);
	km_loop_timer_set(l, &guard, km_mono_ns() + ms * 1000000);
	assert_int_equal(km_loop_run(l), 0);
	km_loop_timer_cancel(l, &guard);
}

struct fixture {
	struct server *s;
	struct km_loop *l;
	struct km_kube_client *c;
	char server[64];
	char *dir, token_file[256];
	int pending;
};

static void client(struct fixture *f, struct km_kube_client_options *o)
{
	struct km_error err = {0};

	snprintf(f->server, sizeof f->server, "http://127.0.0.1:%d",
		 f->s->port);
	o->server = f->server;
	o->name = "test";
	assert_int_equal(km_kube_client_new(f->l, o, &f->c, &err), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct km_error err = {0};

	f->s = server_start();
	assert_int_equal(km_loop_create(&f->l, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	km_kube_client_free(f->c);
	km_loop_destroy(f->l);
	server_stop(f->s);
	if (f->dir)
		km_test_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void request(struct fixture *f, struct ended *e, const char *method,
		    const char *path, const char *type, const char *body,
		    size_t len)
{
	struct km_error err = {0};

	e->loop = f->l;
	e->pending = &f->pending;
	f->pending++;
	assert_int_equal(km_kube_request(f->c, method, path, type, body, len,
					 on_end, e, &e->req, &err),
			 0);
	assert_non_null(e->req);
}

static void forget(struct ended *e)
{
	free(e->body);
	e->body = NULL;
}

/* Each method arrives as sent, with its body and type, the token and no
 * form type or Expect; a body with a NUL in it arrives whole. */
static void test_writes_arrive_as_sent(void **state)
{
	static const char patch[] = "{\"spec\":{\"unschedulable\":true}}";
	static const char opts[] = "{\"kind\":\"DeleteOptions\",\"x\":\"\0y\"}";
	char *large = malloc(KM_KUBE_REQUEST_BODY_MAX);
	struct fixture *f = *state;
	struct km_kube_client_options o = {.token = "secret-token"};
	struct km_kube_client_stats st;
	struct ended e[5] = {0};
	struct seen *w;

	client(f, &o);
	memset(large, 'a', KM_KUBE_REQUEST_BODY_MAX);
	request(f, &e[0], "PATCH", "/api/v1/nodes/n1?fieldManager=kubemedic",
		"application/strategic-merge-patch+json", patch,
		sizeof patch - 1);
	run_for(f->l, 5000);
	request(f, &e[1], "DELETE", "/api/v1/namespaces/ns/pods/p",
		"application/json", opts, sizeof opts - 1);
	run_for(f->l, 5000);
	request(f, &e[2], "DELETE", "/api/v1/namespaces/ns/pods/q", NULL, NULL,
		0);
	run_for(f->l, 5000);
	request(f, &e[3], "POST", "/api/v1/namespaces/ns/pods/p/eviction", NULL,
		NULL, 0);
	run_for(f->l, 5000);
	/* The largest body sent, and the buffer given back at once: it was
	 * copied. */
	request(f, &e[4], "PUT", "/apis/apps/v1/namespaces/ns/deployments/d",
		"application/json", large, KM_KUBE_REQUEST_BODY_MAX);
	memset(large, 'z', KM_KUBE_REQUEST_BODY_MAX);
	run_for(f->l, 10000);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(e[i].calls, 1);
		assert_int_equal(e[i].status, 201);
		assert_string_equal(e[i].body,
				    "{\"kind\":\"Status\",\"code\":201}");
		assert_int_equal(e[i].err, 0);
		assert_int_equal(e[i].retry_after_s, 0);
	}
	assert_int_equal(f->s->n_seen, 5);
	w = &f->s->seen[0];
	assert_string_equal(w->method, "PATCH");
	assert_string_equal(w->path, "/api/v1/nodes/n1?fieldManager=kubemedic");
	assert_string_equal(w->ctype, "application/strategic-merge-patch+json");
	assert_string_equal(w->auth, "Bearer secret-token");
	assert_int_equal(w->len, sizeof patch - 1);
	assert_memory_equal(w->body, patch, sizeof patch - 1);
	w = &f->s->seen[1];
	assert_string_equal(w->method, "DELETE");
	assert_string_equal(w->ctype, "application/json");
	assert_int_equal(w->len, sizeof opts - 1);
	assert_memory_equal(w->body, opts, sizeof opts - 1);
	w = &f->s->seen[2]; /* no body, no type */
	assert_string_equal(w->method, "DELETE");
	assert_string_equal(w->path, "/api/v1/namespaces/ns/pods/q");
	assert_false(w->has_ctype);
	assert_int_equal(w->length, 0);
	w = &f->s->seen[3]; /* a POST without a body: no form type */
	assert_string_equal(w->method, "POST");
	assert_false(w->has_ctype);
	assert_true(w->has_length);
	assert_int_equal(w->length, 0);
	w = &f->s->seen[4];
	assert_string_equal(w->method, "PUT");
	assert_int_equal(w->len, KM_KUBE_REQUEST_BODY_MAX);
	assert_non_null(w->body);
	assert_int_equal(w->body[0], 'a');
	assert_int_equal(w->body[KM_KUBE_REQUEST_BODY_MAX - 1], 'a');
	km_kube_client_stats(f->c, &st);
	assert_int_equal(st.requests, 5);
	assert_int_equal(st.writes, 5);
	assert_int_equal(st.failed, 0);
	for (int i = 0; i < 5; i++)
		forget(&e[i]);
	free(large);
}

/* A 429's Retry-After header reaches the end callback, with its body. */
static void test_retry_after(void **state)
{
	struct fixture *f = *state;
	struct km_kube_client_options o = {0};
	struct ended e = {0}, g = {0};

	client(f, &o);
	request(f, &e, "POST", "/throttled", "application/json", "{}", 2);
	run_for(f->l, 5000);
	assert_int_equal(e.calls, 1);
	assert_int_equal(e.status, 429);
	assert_int_equal(e.retry_after_s, 3);
	assert_string_equal(e.body,
			    "Too many requests, please try again later.");
	/* And none where none was sent. */
	request(f, &g, "POST", "/ok", "application/json", "{}", 2);
	run_for(f->l, 5000);
	assert_int_equal(g.status, 201);
	assert_int_equal(g.retry_after_s, 0);
	forget(&e);
	forget(&g);
}

/* An answer over KM_KUBE_BODY_MAX fails the request: no status of 200
 * handed on as if the body were whole. */
static void test_answer_over_the_bound(void **state)
{
	struct fixture *f = *state;
	struct km_kube_client_options o = {0};
	struct ended e = {0};

	client(f, &o);
	request(f, &e, "PATCH", "/big", "application/json", "{}", 2);
	run_for(f->l, 30000);
	assert_int_equal(e.calls, 1);
	assert_int_equal(e.err, KM_EFULL);
	assert_non_null(strstr(e.msg, "PATCH "));
	assert_non_null(strstr(e.msg, "larger than"));
	forget(&e);
}

/* Cancelled before the answer: nothing is called, then or later. */
static void test_cancel_calls_nothing(void **state)
{
	struct fixture *f = *state;
	struct km_kube_client_options o = {0};
	struct ended e = {0};
	int64_t until;

	client(f, &o);
	request(f, &e, "DELETE", "/hang", NULL, NULL, 0);
	/* Until the server has the request. */
	until = km_mono_ns() + 5000000000LL;
	while (km_mono_ns() < until) {
		run_for(f->l, 20);
		pthread_mutex_lock(&f->s->mu);
		if (f->s->n_seen == 1) {
			pthread_mutex_unlock(&f->s->mu);
			break;
		}
		pthread_mutex_unlock(&f->s->mu);
	}
	assert_int_equal(f->s->n_seen, 1);
	km_kube_cancel(e.req);
	assert_int_equal(write(f->s->release[1], "x", 1), 1);
	run_for(f->l, 300);
	assert_int_equal(e.calls, 0);
	/* Queued behind the bucket and cancelled: nothing either. */
	km_kube_client_free(f->c);
	f->c = NULL;
	o.qps = 0.5;
	o.burst = 1;
	client(f, &o);
	{
		struct ended a = {0}, b = {0};

		request(f, &a, "POST", "/ok", "application/json", "{}", 2);
		request(f, &b, "POST", "/ok", "application/json", "{}", 2);
		km_kube_cancel(b.req);
		run_for(f->l, 2500);
		assert_int_equal(a.calls, 1);
		assert_int_equal(b.calls, 0);
		forget(&a);
	}
}

/* Writes take tokens from the GETs' bucket: at 2 a second with a burst of
 * 1, the second of two waits about half a second. */
static void test_writes_are_throttled(void **state)
{
	struct fixture *f = *state;
	struct km_kube_client_options o = {.qps = 2, .burst = 1};
	struct km_kube_client_stats st;
	struct ended a = {0}, b = {0};
	int64_t gap;

	client(f, &o);
	request(f, &a, "PATCH", "/ok", "application/json", "{}", 2);
	request(f, &b, "DELETE", "/ok", NULL, NULL, 0);
	run_for(f->l, 5000);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	gap = f->s->seen[1].at_ns - f->s->seen[0].at_ns;
	assert_true(gap >= 400000000LL);
	km_kube_client_stats(f->c, &st);
	assert_int_equal(st.throttled, 1);
	forget(&a);
	forget(&b);
}

/* A 401 makes the next request read the token file again. */
static void test_401_reads_the_token_again(void **state)
{
	struct fixture *f = *state;
	struct km_kube_client_options o = {0};
	struct ended a = {0}, b = {0};
	FILE *t;

	f->dir = km_test_tmpdir();
	assert_non_null(f->dir);
	snprintf(f->token_file, sizeof f->token_file, "%s/token", f->dir);
	t = fopen(f->token_file, "w");
	fputs("first\n", t);
	fclose(t);
	o.token_file = f->token_file;
	client(f, &o);
	request(f, &a, "DELETE", "/unauthorized", NULL, NULL, 0);
	run_for(f->l, 5000);
	assert_int_equal(a.status, 401);
	t = fopen(f->token_file, "w");
	fputs("second\n", t);
	fclose(t);
	request(f, &b, "DELETE", "/ok", NULL, NULL, 0);
	run_for(f->l, 5000);
	assert_string_equal(f->s->seen[0].auth, "Bearer first");
	assert_string_equal(f->s->seen[1].auth, "Bearer second");
	forget(&a);
	forget(&b);
}

/* Refused before anything is sent: *out NULL, no callback. */
static void test_refused(void **state)
{
	static const char *const bad_methods[] = {"GET",    "HEAD",    "post",
						  "PATCH ", "OPTIONS", ""};
	struct fixture *f = *state;
	struct km_kube_client_options o = {0};
	struct km_error err = {0};
	struct ended e = {0};
	char *big = calloc(1, KM_KUBE_REQUEST_BODY_MAX + 1);

	client(f, &o);
	e.req = (struct km_kube_req *)&e; /* must become NULL */
	for (size_t i = 0; i < sizeof bad_methods / sizeof *bad_methods; i++) {
		assert_int_equal(km_kube_request(f->c, bad_methods[i], "/x",
						 NULL, NULL, 0, on_end, &e,
						 &e.req, &err),
				 KM_EINVAL);
		assert_null(e.req);
		assert_non_null(strstr(err.msg, "method"));
	}
	assert_int_equal(km_kube_request(f->c, NULL, "/x", NULL, NULL, 0,
					 on_end, &e, &e.req, &err),
			 KM_EINVAL);
	assert_int_equal(km_kube_request(f->c, "POST", "/x", "application/json",
					 big, KM_KUBE_REQUEST_BODY_MAX + 1,
					 on_end, &e, &e.req, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "more than"));
	assert_int_equal(km_kube_request(f->c, "POST", "/x", NULL, "{}", 2,
					 on_end, &e, &e.req, &err),
			 KM_EINVAL);
	assert_int_equal(km_kube_request(f->c, "POST", "/x",
					 "application/json\r\nX-Evil: 1", "{}",
					 2, on_end, &e, &e.req, &err),
			 KM_EINVAL);
	assert_int_equal(km_kube_request(f->c, "POST", "x", "application/json",
					 "{}", 2, on_end, &e, &e.req, &err),
			 KM_EINVAL);
	assert_int_equal(km_kube_request(f->c, "POST", "/x y",
					 "application/json", "{}", 2, on_end,
					 &e, &e.req, &err),
			 KM_EINVAL);
	assert_int_equal(km_kube_request(f->c, "POST", "/x", "application/json",
					 NULL, 2, on_end, &e, &e.req, &err),
			 KM_EINVAL);
	run_for(f->l, 100);
	assert_int_equal(e.calls, 0);
	assert_int_equal(f->s->n_seen, 0);
	free(big);
}

/* A GET is still a GET (km_kube_get goes the same way). */
static void test_get_unchanged(void **state)
{
	struct fixture *f = *state;
	struct km_kube_client_options o = {0};
	struct km_error err = {0};
	struct ended e = {0};

	client(f, &o);
	e.loop = f->l;
	e.pending = &f->pending;
	f->pending = 1;
	assert_int_equal(
		km_kube_get(f->c, "/api/v1/pods", on_end, &e, &e.req, &err), 0);
	run_for(f->l, 5000);
	assert_int_equal(e.calls, 1);
	assert_string_equal(f->s->seen[0].method, "GET");
	assert_false(f->s->seen[0].has_ctype);
	assert_false(f->s->seen[0].has_length);
	forget(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writes_arrive_as_sent,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_after, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_answer_over_the_bound,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_calls_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_writes_are_throttled,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_401_reads_the_token_again,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_unchanged, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
