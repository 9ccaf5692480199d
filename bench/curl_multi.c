/*
 * bench_curl_multi — bare libcurl, the way kubemedic's HTTPS and DNS-name
 * HTTP checks use it, without the rest of kubemedic: a reference between
 * ab and kubemedicd in bench/probe_scale.sh (and the measurement that took
 * plain HTTP to an IP off libcurl: bench/RESULTS.md, issue 3).
 *
 *   bench_curl_multi --url URL --requests N [--concurrency C | --rate R]
 *
 * One thread, epoll and curl's multi socket API (CURLMOPT_SOCKETFUNCTION,
 * CURLMOPT_TIMERFUNCTION), with the options of service/prober/km_check_http.c: a
 * new connection per request (FORBID_REUSE, FRESH_CONNECT), SO_LINGER 1 s,
 * HTTP/1.1 with the kubelet's three headers, a 1 s timeout, at most 10 KiB
 * of body kept; easy handles pooled and reset. Nothing is stored and there
 * is no schedule beyond this one:
 *  - --concurrency C (default 10): C requests in flight, a new one as soon
 *    as one ends (like ab -c C);
 *  - --rate R: a request starts every 1/R s whatever is in flight (like
 *    probes spread evenly over their period), timers rounded up to the
 *    millisecond as in km_loop.
 * Prints "requests=N failed=F wall_s=S"; exits 1 if any request failed
 * (not a 200). CPU time is measured from outside (/usr/bin/time).
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#define POOL_MAX 256
#define BODY_MAX 10240

struct req {
	CURL *easy;
	size_t body_len;
	char body[BODY_MAX];
};

static int ep;
static CURLM *multi;
static int64_t curl_due = -1; /* mono ns; -1 = no curl timer */
static struct curl_slist *headers;
static const char *url;
static CURL *pool[POOL_MAX];
static int n_pool;
static long started, finished, failed;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
	struct req *r = userp;
	size_t len = size * n, room = sizeof r->body - r->body_len;

	if (len > room)
		len = room;
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	return size * n;
}

static int sockopt_cb(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 1};

	(void)clientp;
	(void)purpose;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	return CURL_SOCKOPT_OK;
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp,
		   void *socketp)
{
	struct epoll_event ev = {.data.fd = s};

	(void)e;
	(void)userp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (!socketp) {
		if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) < 0)
			return -1;
		curl_multi_assign(multi, s, &ep);
	} else if (epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev) < 0) {
		return -1;
	}
	return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	(void)m;
	(void)userp;
	curl_due = timeout_ms < 0 ? -1 : now_ns() + timeout_ms * 1000000LL;
	return 0;
}

static void start_one(void)
{
	struct req *r = calloc(1, sizeof *r);
	CURL *e = n_pool ? pool[--n_pool] : curl_easy_init();

	if (!r || !e) {
		fprintf(stderr, "bench_curl_multi: out of memory\n");
		exit(2);
	}
	r->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	if (curl_multi_add_handle(multi, e) != CURLM_OK) {
		fprintf(stderr,
			"bench_curl_multi: curl_multi_add_handle failed\n");
		exit(2);
	}
	started++;
}

/* Finishes what curl reports done; returns how many. */
static int reap(void)
{
	CURLMsg *m;
	int left, n = 0;

	while ((m = curl_multi_info_read(multi, &left))) {
		struct req *r = NULL;
		long code = 0;
		CURL *e = m->easy_handle;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		if (m->data.result != CURLE_OK || code != 200) {
			if (failed < 10)
				fprintf(stderr,
					"bench_curl_multi: %s, HTTP %ld\n",
					curl_easy_strerror(m->data.result),
					code);
			failed++;
		}
		curl_multi_remove_handle(multi, e);
		if (n_pool < POOL_MAX) {
			curl_easy_reset(e);
			pool[n_pool++] = e;
		} else {
			curl_easy_cleanup(e);
		}
		free(r);
		finished++;
		n++;
	}
	return n;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_curl_multi --url URL --requests N "
			"[--concurrency C | --rate R]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"url", required_argument, NULL, 'u'},
		{"requests", required_argument, NULL, 'n'},
		{"concurrency", required_argument, NULL, 'c'},
		{"rate", required_argument, NULL, 'r'},
		{0},
	};
	long total = 0, conc = 10;
	double rate = 0;
	int64_t t0, next_start = 0, gap = 0;
	struct epoll_event evs[256];
	int opt, running;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'u': url = optarg; break;
		case 'n': total = atol(optarg); break;
		case 'c': conc = atol(optarg); break;
		case 'r': rate = atof(optarg); break;
		default: usage();
		}
	}
	if (!url || total <= 0 || conc <= 0 || rate < 0)
		usage();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ep = epoll_create1(EPOLL_CLOEXEC);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	headers = curl_slist_append(headers, "User-Agent: kubemedic/0.1");
	headers = curl_slist_append(headers, "Accept: */*");
	headers = curl_slist_append(headers, "Connection: close");

	t0 = now_ns();
	if (rate > 0) {
		gap = (int64_t)(1e9 / rate);
		next_start = t0;
	} else {
		while (started < conc && started < total)
			start_one();
	}
	while (finished < total) {
		int64_t now = now_ns(), due = -1;
		int timeout, n;

		if (curl_due >= 0)
			due = curl_due;
		if (rate > 0 && started < total &&
		    (due < 0 || next_start < due))
			due = next_start;
		if (due < 0)
			timeout = 1000;
		else if (due <= now)
			timeout = 0;
		else
			timeout = (int)((due - now + 999999) / 1000000);
		n = epoll_wait(ep, evs, 256, timeout);
		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return 2;
		}
		for (int i = 0; i < n; i++) {
			int flags = 0;

			if (evs[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(multi, evs[i].data.fd, flags,
						 &running);
		}
		now = now_ns();
		if (curl_due >= 0 && curl_due <= now) {
			curl_due = -1;
			curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0,
						 &running);
		}
		n = reap();
		if (rate > 0) {
			while (started < total && next_start <= now) {
				start_one();
				next_start += gap;
			}
		} else {
			while (n-- > 0 && started < total)
				start_one();
		}
	}
	printf("requests=%ld failed=%ld wall_s=%.3f\n", finished, failed,
	       (double)(now_ns() - t0) / 1e9);
	curl_multi_cleanup(multi);
	curl_slist_free_all(headers);
	while (n_pool)
		curl_easy_cleanup(pool[--n_pool]);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
