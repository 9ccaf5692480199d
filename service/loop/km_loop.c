/*
 * km_loop: epoll + a timerfd for a heap of timers + eventfd.
 *
 * Timers live in a binary min-heap; one timerfd is armed for the earliest
 * and wakes epoll_wait; after the file events of each wake-up every timer
 * whose time has come runs. A heap rather than a sorted list because
 * 10,000 probes re-arm about 10,000 timers a second.
 *
 * Arming a timerfd is a system call, and a costly one in a virtual machine
 * (it reprograms the hardware timer). With probes spread evenly over their
 * period the earliest timer changes with nearly every check, so the
 * timerfd is not re-armed on every change: once per wake-up, at most, for
 * the earliest timer rounded up to the next millisecond, and only when
 * that is earlier than what it is armed for or what it was armed for has
 * passed (a wake-up with nothing due yet is cheap and harmless). Timers due
 * within the same millisecond run in one wake-up; the price is that a timer
 * runs up to 1 ms after its time, never before it.
 */
#include "km_loop.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "km_log.h"
#include "km_time.h"

struct fd_entry {
	km_fd_fn fn;
	void *arg;
	uint32_t events;
	bool used;
};

struct post {
	km_post_fn fn;
	void *arg;
	struct post *next;
};

struct heap_ent {
	int64_t due;
	struct km_timer *t;
};

struct km_loop {
	int epfd, tfd, efd;
	int64_t armed_for; /* what the timerfd is set to; 0 = disarmed */
	bool told_timerfd; /* logged that the timerfd could not be armed */
	struct fd_entry *fds;
	size_t n_fds;
	struct heap_ent *heap;
	size_t heap_len, heap_cap;
	int64_t now;
	pthread_mutex_t mu;
	struct post *posts, **posts_tail;
	bool stop;
};

/* ---- timer heap ---------------------------------------------------------- */

#ifdef KM_LOOP_FAULTS
bool (*km_loop_fault_timer)(struct km_loop *l, const struct km_timer *t,
			    int64_t due);
#endif

/* Debug builds check the whole heap after every change while it is this
 * small (every unit test's); past it only the entries a change moved,
 * so a debug daemon with 10,000 probes does not turn quadratic. */
#define HEAP_CHECK_ALL_MAX 4096

#ifndef NDEBUG
/* Entry i and its neighbours: not earlier than its parent, not later than
 * its children, and its timer points back at it with the same due time. */
static bool heap_ent_ok(const struct km_loop *l, size_t i)
{
	const struct heap_ent *e = &l->heap[i];
	size_t c = 2 * i + 1;

	return e->t->heap_index == i + 1 && e->t->due == e->due &&
	       (i == 0 || l->heap[(i - 1) / 2].due <= e->due) &&
	       (c >= l->heap_len || e->due <= l->heap[c].due) &&
	       (c + 1 >= l->heap_len || e->due <= l->heap[c + 1].due);
}

/* The invariant sift_up and sift_down keep: a min-heap on due, every
 * timer's heap_index its position + 1. */
static bool heap_ok(const struct km_loop *l)
{
	if (l->heap_len > l->heap_cap)
		return false;
	if (l->heap_len > HEAP_CHECK_ALL_MAX)
		return true;
	for (size_t i = 0; i < l->heap_len; i++)
		if (!heap_ent_ok(l, i))
			return false;
	return true;
}
#endif

#ifndef NDEBUG
/* t is in this loop's heap (not another loop's, nor a stale copy): for
 * asserts only. */
static inline bool heap_owns(const struct km_loop *l, const struct km_timer *t)
{
	return t->heap_index >= 1 && t->heap_index <= l->heap_len &&
	       l->heap[t->heap_index - 1].t == t;
}
#endif

/* Each entry carries its timer's due time, so sifting compares within the
 * array (10,000 probes: 160 KB) instead of loading a timer from wherever
 * its owner lives: that miss per level made the heap our costliest code. */
static void heap_place(struct km_loop *l, size_t i, struct heap_ent e)
{
	l->heap[i] = e;
	e.t->heap_index = i + 1;
}

static void sift_up(struct km_loop *l, size_t i)
{
	struct heap_ent e = l->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (l->heap[parent].due <= e.due)
			break;
		heap_place(l, i, l->heap[parent]);
		i = parent;
	}
	heap_place(l, i, e);
	assert(heap_ent_ok(l, i));
}

static void sift_down(struct km_loop *l, size_t i)
{
	struct heap_ent e = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->heap_len)
			break;
		if (c + 1 < l->heap_len && l->heap[c + 1].due < l->heap[c].due)
			c++;
		if (e.due <= l->heap[c].due)
			break;
		heap_place(l, i, l->heap[c]);
		i = c;
	}
	heap_place(l, i, e);
	assert(heap_ent_ok(l, i));
}

/* Entry i has a new due time: up or down to where it belongs. */
static void heap_fix(struct km_loop *l, size_t i)
{
	if (i > 0 && l->heap[(i - 1) / 2].due > l->heap[i].due)
		sift_up(l, i);
	else
		sift_down(l, i);
}

static void heap_remove(struct km_loop *l, struct km_timer *t)
{
	size_t i = t->heap_index - 1;
	struct heap_ent last;

	assert(heap_owns(l, t));
	last = l->heap[--l->heap_len];
	t->heap_index = 0;
	if (i < l->heap_len) {
		heap_place(l, i, last);
		heap_fix(l, i);
	}
	assert(heap_ok(l));
}

int km_loop_timer_set(struct km_loop *l, struct km_timer *t, int64_t due)
{
	assert(t->fn);
	if (t->heap_index) {
		/* Re-armed in place: one sift, up or down. */
		size_t i = t->heap_index - 1;

		assert(heap_owns(l, t));
		t->due = l->heap[i].due = due;
		heap_fix(l, i);
		assert(heap_ok(l));
		return 0;
	}
#ifdef KM_LOOP_FAULTS
	if (km_loop_fault_timer && km_loop_fault_timer(l, t, due))
		return KM_ENOMEM;
#endif
	if (l->heap_len == l->heap_cap) {
		size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
		struct heap_ent *h = realloc(l->heap, cap * sizeof *h);

		if (!h)
			return KM_ENOMEM;
		l->heap = h;
		l->heap_cap = cap;
	}
	t->due = due;
	heap_place(l, l->heap_len++, (struct heap_ent){due, t});
	sift_up(l, l->heap_len - 1);
	assert(heap_ok(l));
	return 0;
}

void km_loop_timer_cancel(struct km_loop *l, struct km_timer *t)
{
	if (!t->heap_index)
		return;
	heap_remove(l, t);
}

size_t km_loop_timer_count(const struct km_loop *l)
{
	return l->heap_len;
}

/* Runs the timers due by now. One armed for now or earlier by a callback
 * runs in the next pass, so a timer re-arming itself at once cannot keep
 * the loop here. */
static void run_timers(struct km_loop *l)
{
	l->now = km_mono_ns();
	while (l->heap_len && l->heap[0].due <= l->now) {
		struct km_timer *t = l->heap[0].t;

		heap_remove(l, t);
		t->fn(l, t->arg); /* may re-arm t or others */
	}
}

/* Points the timerfd at the earliest timer, coarsely (see the top).
 * Returns epoll_wait's timeout: -1 (the timerfd wakes it), or, should the
 * timerfd refuse to be armed, the milliseconds until the earliest timer,
 * so that timers still run. */
static int rearm(struct km_loop *l)
{
	struct itimerspec its = {0};
	int64_t due, now = km_mono_ns(), left_ms;

	if (!l->heap_len)
		return -1; /* a stale arming only wakes us for nothing */
	/* Up to the next whole millisecond: neighbours share a wake-up. */
	due = (l->heap[0].due + 999999) / 1000000 * 1000000;
	if (due < 1)
		due = 1;
	if (l->armed_for && l->armed_for > now && l->armed_for <= due)
		return -1;
	its.it_value = km_timespec_ns(due);
	if (timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0) {
		l->armed_for = due;
		return -1;
	}
	if (!l->told_timerfd) {
		km_log(KM_LOG_ERROR,
		       "event loop: cannot arm the timerfd; "
		       "timers wait on epoll_wait's timeout instead",
		       "error", strerror(errno), NULL);
		l->told_timerfd = true;
	}
	l->armed_for = 0;
	left_ms = (due - now + 999999) / 1000000;
	return left_ms < 0 ? 0 : left_ms > INT_MAX ? INT_MAX : (int)left_ms;
}

/* ---- file events --------------------------------------------------------- */

int km_loop_add_fd(struct km_loop *l, int fd, uint32_t events, km_fd_fn fn,
		   void *arg)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};

	if (fd < 0)
		return KM_EINVAL;
	if ((size_t)fd >= l->n_fds) {
		size_t n = l->n_fds ? l->n_fds : 64;
		struct fd_entry *f;

		while (n <= (size_t)fd)
			n *= 2;
		f = realloc(l->fds, n * sizeof *f);
		if (!f)
			return KM_ENOMEM;
		memset(f + l->n_fds, 0, (n - l->n_fds) * sizeof *f);
		l->fds = f;
		l->n_fds = n;
	}
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return errno == ENOMEM ? KM_ENOMEM : KM_EIO;
	l->fds[fd] = (struct fd_entry){fn, arg, events, true};
	return 0;
}

int km_loop_mod_fd(struct km_loop *l, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};

	if (fd < 0 || (size_t)fd >= l->n_fds || !l->fds[fd].used)
		return KM_EINVAL;
	if (l->fds[fd].events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return KM_EIO;
	l->fds[fd].events = events;
	return 0;
}

void km_loop_del_fd(struct km_loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->n_fds || !l->fds[fd].used)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->fds[fd].used = false;
}

void km_loop_rebind_fd(struct km_loop *l, int fd, km_fd_fn fn, void *arg)
{
	if (fd < 0 || (size_t)fd >= l->n_fds || !l->fds[fd].used)
		return;
	l->fds[fd].fn = fn;
	l->fds[fd].arg = arg;
}

void km_loop_forget_fd(struct km_loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->n_fds)
		return;
	l->fds[fd].used = false;
}

/* ---- cross-thread -------------------------------------------------------- */

int km_loop_post(struct km_loop *l, km_post_fn fn, void *arg)
{
	struct post *p = malloc(sizeof *p);
	uint64_t one = 1;

	if (!p)
		return KM_ENOMEM;
	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&l->mu);
	assert(*l->posts_tail == NULL); /* the tail is the last entry's link */
	*l->posts_tail = p;
	l->posts_tail = &p->next;
	pthread_mutex_unlock(&l->mu);
	if (write(l->efd, &one, sizeof one) < 0) {
		/* The counter is saturated: the loop is awake anyway. */
	}
	return 0;
}

void km_loop_stop(struct km_loop *l)
{
	uint64_t one = 1;

	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_mutex_unlock(&l->mu);
	if (write(l->efd, &one, sizeof one) < 0) {
		/* As above. */
	}
}

static bool run_posts(struct km_loop *l)
{
	struct post *p, *next;
	uint64_t n;
	bool stop;

	if (read(l->efd, &n, sizeof n) < 0) {
		/* EAGAIN: nothing new. */
	}
	pthread_mutex_lock(&l->mu);
	p = l->posts;
	l->posts = NULL;
	l->posts_tail = &l->posts;
	stop = l->stop;
	pthread_mutex_unlock(&l->mu);
	for (; p; p = next) {
		next = p->next;
		p->fn(l, p->arg);
		free(p);
	}
	return stop;
}

int km_loop_run_pending(struct km_loop *l)
{
	struct post *p, *next;
	int n = 0;

	pthread_mutex_lock(&l->mu);
	p = l->posts;
	l->posts = NULL;
	l->posts_tail = &l->posts;
	pthread_mutex_unlock(&l->mu);
	for (; p; p = next, n++) {
		next = p->next;
		p->fn(l, p->arg);
		free(p);
	}
	return n;
}

/* ---- the loop ------------------------------------------------------------ */

int km_loop_create(struct km_loop **out, struct km_error *err)
{
	struct km_loop *l = calloc(1, sizeof *l);

	*out = NULL;
	if (!l)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&l->mu, NULL);
	l->posts_tail = &l->posts;
	l->now = km_mono_ns();
	if (l->epfd < 0 || l->tfd < 0 || l->efd < 0 ||
	    km_loop_add_fd(l, l->tfd, EPOLLIN, NULL, NULL) ||
	    km_loop_add_fd(l, l->efd, EPOLLIN, NULL, NULL)) {
		int e = errno;

		km_loop_destroy(l);
		return km_error_set(err, KM_EIO, "event loop: %s", strerror(e));
	}
	*out = l;
	return 0;
}

void km_loop_destroy(struct km_loop *l)
{
	struct post *p, *next;

	if (!l)
		return;
	for (p = l->posts; p; p = next) {
		next = p->next;
		free(p);
	}
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->tfd >= 0)
		close(l->tfd);
	if (l->efd >= 0)
		close(l->efd);
	pthread_mutex_destroy(&l->mu);
	free(l->heap);
	free(l->fds);
	free(l);
}

int64_t km_loop_now(const struct km_loop *l)
{
	return l->now;
}

int km_loop_run(struct km_loop *l)
{
	struct epoll_event evs[256];

	for (;;) {
		int n;

		n = epoll_wait(l->epfd, evs, 256, rearm(l));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return KM_EIO;
		}
		l->now = km_mono_ns();
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == l->tfd) {
				uint64_t expirations;

				if (read(l->tfd, &expirations,
					 sizeof expirations) < 0) {
					/* EAGAIN: the heap decides anyway. */
				}
				l->armed_for = 0;
			} else if (fd == l->efd) {
				if (run_posts(l)) {
					/* Stopped: a later run starts afresh. */
					pthread_mutex_lock(&l->mu);
					l->stop = false;
					pthread_mutex_unlock(&l->mu);
					return 0;
				}
			} else if ((size_t)fd < l->n_fds && l->fds[fd].used) {
				/* A handler may delete fds later in this batch;
				 * used is checked for each. */
				l->fds[fd].fn(l, fd, evs[i].events,
					      l->fds[fd].arg);
			}
		}
		run_timers(l);
	}
}
