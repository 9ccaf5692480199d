/*
 * libcurl's multi socket API on a km_loop (km_curl.h).
 */
#include "km_curl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "km_log.h"
#include "km_time.h"

/* A transfer curl reported finished, kept until its turn. */
struct done_msg {
	CURL *easy;
	CURLcode result;
};

struct km_curl {
	struct km_loop *loop;
	CURLM *multi;
	struct km_timer timer;
	km_curl_done_fn done;
	void *arg;
	struct done_msg *msgs; /* process_done's list, grown as needed */
	size_t msgs_cap;
	char name[64];
};

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void km_curl_global_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, global_init);
}

/* Hands over every transfer curl reports finished. The messages are all
 * read first: curl_multi_remove_handle (which the owner calls in done)
 * scans the messages still queued, so handing each over as it is read
 * costs O(k^2) when k transfers end in one call, as a burst of timeouts
 * does (libcurl 7.88; 16% of the prober's CPU with 10,000 probes behind
 * schedule). */
static void process_done(struct km_curl *c)
{
	CURLMsg *m;
	size_t n = 0;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		if (n == c->msgs_cap) {
			size_t cap = c->msgs_cap ? 2 * c->msgs_cap : 64;
			struct done_msg *d = realloc(c->msgs, cap * sizeof *d);

			if (!d) {
				/* No room to wait: hand it over now. */
				c->done(c->arg, m->easy_handle, m->data.result);
				continue;
			}
			c->msgs = d;
			c->msgs_cap = cap;
		}
		c->msgs[n++] =
			(struct done_msg){m->easy_handle, m->data.result};
	}
	for (size_t i = 0; i < n; i++)
		c->done(c->arg, c->msgs[i].easy, c->msgs[i].result);
}

static void fd_event(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	struct km_curl *c = arg;
	int flags = 0, running;

	(void)l;
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	process_done(c);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp,
		   void *socketp)
{
	struct km_curl *c = userp;
	uint32_t events = 0;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		km_loop_del_fd(c->loop, s);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;
	if (!socketp) {
		if (km_loop_add_fd(c->loop, s, events, fd_event, c))
			return -1;
		curl_multi_assign(c->multi, s, c);
	} else if (km_loop_mod_fd(c->loop, s, events)) {
		return -1;
	}
	return 0;
}

static void timer_fired(struct km_loop *l, void *arg)
{
	struct km_curl *c = arg;
	int running;

	(void)l;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	process_done(c);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct km_curl *c = userp;
	int rc;

	(void)m;
	if (timeout_ms < 0) {
		km_loop_timer_cancel(c->loop, &c->timer);
		return 0;
	}
	rc = km_loop_timer_set(c->loop, &c->timer,
			       km_mono_ns() + timeout_ms * 1000000LL);
	if (rc) {
		km_log(KM_LOG_ERROR,
		       "cannot arm libcurl's timer; libcurl fails the "
		       "transfers in progress",
		       "of", c->name, "error", km_strerror(rc), NULL);
		return -1;
	}
	return 0;
}

int km_curl_create(struct km_loop *l, const char *name, km_curl_done_fn done,
		   void *arg, struct km_curl **out, struct km_error *err)
{
	struct km_curl *c = calloc(1, sizeof *c);

	*out = NULL;
	if (!c)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	km_curl_global_init();
	c->loop = l;
	c->done = done;
	c->arg = arg;
	snprintf(c->name, sizeof c->name, "%s", name ? name : "curl");
	km_timer_init(&c->timer, timer_fired, c);
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		return km_error_set(err, KM_EINTERNAL,
				    "curl_multi_init failed");
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	*out = c;
	return 0;
}

void km_curl_destroy(struct km_curl *c)
{
	if (!c)
		return;
	km_loop_timer_cancel(c->loop, &c->timer);
	curl_multi_cleanup(c->multi);
	free(c->msgs);
	free(c);
}

CURLM *km_curl_multi(struct km_curl *c)
{
	return c->multi;
}
