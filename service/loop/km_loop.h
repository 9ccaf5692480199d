/*
 * km_loop — a small event loop: epoll for file descriptors, one timerfd
 * for a heap of timers, and an eventfd so other threads can hand it work.
 *
 * Everything else in the prober is built from these primitives (in the
 * spirit of Redis' ae.c): a probe's socket is a file event, its timeout and
 * its next run are timers, a command from the API is a posted function.
 *
 * Timers are intrusive: the caller embeds a struct km_timer in its own
 * object and arms, re-arms or cancels it; nothing is allocated per timer,
 * and cancelling is O(log n); arming one makes no system call (the timerfd
 * is re-armed at most once per wake-up, see km_loop.c). Times are
 * CLOCK_MONOTONIC nanoseconds. A timer runs at or after its time, at most
 * about a millisecond after it (the timerfd is armed for whole
 * milliseconds); timers due within that millisecond run in one wake-up.
 *
 * File events are dispatched by descriptor number: a handler that closes
 * a descriptor must km_loop_del_fd it first, and should tolerate a stray
 * event if the number is reused within one epoll batch.
 *
 * Threads: everything runs on the thread that calls km_loop_run, except
 * km_loop_post and km_loop_stop, which any thread may call; create,
 * destroy and km_loop_run_pending on the owner's thread while the loop is
 * not running.
 *
 * Debug builds (no NDEBUG) assert the timer heap's invariants after every
 * change, as SQLite asserts its own.
 */
#ifndef KM_LOOP_H
#define KM_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"

struct km_loop;

typedef void (*km_fd_fn)(struct km_loop *l, int fd, uint32_t events, void *arg);
typedef void (*km_timer_fn)(struct km_loop *l, void *arg);
typedef void (*km_post_fn)(struct km_loop *l, void *arg);

struct km_timer {
	int64_t due;       /* CLOCK_MONOTONIC ns */
	size_t heap_index; /* 0 = not armed; otherwise position + 1 */
	km_timer_fn fn;
	void *arg;
};

int km_loop_create(struct km_loop **out, struct km_error *err);
/* Closes the loop's own descriptors (the caller closes its own) and frees
 * it. Functions posted and not run are dropped, not run: an owner whose
 * posts carry memory runs km_loop_run_pending first. */
void km_loop_destroy(struct km_loop *l);

/* events: EPOLLIN, EPOLLOUT; level-triggered unless EPOLLET is among
 * them (then the handler must read or write until EAGAIN). One handler per
 * fd. */
int km_loop_add_fd(struct km_loop *l, int fd, uint32_t events, km_fd_fn fn,
		   void *arg);
int km_loop_mod_fd(struct km_loop *l, int fd, uint32_t events);
void km_loop_del_fd(struct km_loop *l, int fd);
/* Hands fd's events to another handler (no system call). */
void km_loop_rebind_fd(struct km_loop *l, int fd, km_fd_fn fn, void *arg);
/* For a descriptor about to be closed that no other process or descriptor
 * shares (SOCK_CLOEXEC, never dup'd): closing it takes it out of the epoll
 * set, so this only forgets the handler, without a system call. */
void km_loop_forget_fd(struct km_loop *l, int fd);

static inline void km_timer_init(struct km_timer *t, km_timer_fn fn, void *arg)
{
	t->due = 0;
	t->heap_index = 0;
	t->fn = fn;
	t->arg = arg;
}

static inline bool km_timer_armed(const struct km_timer *t)
{
	return t->heap_index != 0;
}

/* Arms t to fire once at due (re-arms it if armed). KM_ENOMEM if the heap
 * cannot grow (then t stays unarmed); re-arming an armed timer never
 * fails. t belongs to one loop at a time (debug builds assert it). */
int km_loop_timer_set(struct km_loop *l, struct km_timer *t, int64_t due);

#ifdef KM_LOOP_FAULTS
/* Tests only: in a build of km_loop.c with KM_LOOP_FAULTS defined (never
 * the daemon's), km_loop_timer_set asks this hook, when set, before it
 * puts a timer into the heap; true makes it fail as a heap that cannot
 * grow does (KM_ENOMEM). Called on the loop's thread. */
extern bool (*km_loop_fault_timer)(struct km_loop *l, const struct km_timer *t,
				   int64_t due);
#endif
void km_loop_timer_cancel(struct km_loop *l, struct km_timer *t);
size_t km_loop_timer_count(const struct km_loop *l);

/* Runs until km_loop_stop. Returns 0, or KM_EIO if epoll failed. */
int km_loop_run(struct km_loop *l);
/* Any thread: make km_loop_run return after the current iteration. */
void km_loop_stop(struct km_loop *l);
/* Any thread: run fn(loop, arg) on the loop thread, in posting order.
 * KM_ENOMEM if the entry cannot be allocated. */
int km_loop_post(struct km_loop *l, km_post_fn fn, void *arg);

/* Runs, on the calling thread, every function posted but not yet run, in
 * order; for an owner that has stopped the loop and must not leak what
 * was posted to it. Returns how many ran. */
int km_loop_run_pending(struct km_loop *l);

/* The loop's idea of now, refreshed once per iteration (cheap). */
int64_t km_loop_now(const struct km_loop *l);

#endif
