/*
 * km_loop: timers in order (a heap under re-arming and cancelling), file
 * events, functions posted from other threads, and the prober's
 * deterministic first-run offsets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "km_loop.h"
#include "km_prober.h"
#include "km_time.h"

#define N_TIMERS 2000

struct fired {
	int order[N_TIMERS];
	int n;
	int expect;
};

struct tmr {
	struct km_timer t;
	struct fired *f;
	int id;
};

static void on_timer(struct km_loop *l, void *arg)
{
	struct tmr *t = arg;

	t->f->order[t->f->n++] = t->id;
	if (t->f->n == t->f->expect)
		km_loop_stop(l);
}

static void test_timers_fire_in_due_order(void **state)
{
	struct km_loop *l;
	struct km_error err = {0};
	static struct tmr t[N_TIMERS];
	struct fired f = {.expect = N_TIMERS / 2};
	int64_t base = km_mono_ns() + 20000000;

	(void)state;
	assert_int_equal(km_loop_create(&l, &err), 0);
	/* Arm in a scrambled order, re-arm some, cancel half. */
	for (int i = 0; i < N_TIMERS; i++) {
		int id = (i * 7919) % N_TIMERS;

		t[id].f = &f;
		t[id].id = id;
		km_timer_init(&t[id].t, on_timer, &t[id]);
		assert_int_equal(
			km_loop_timer_set(l, &t[id].t,
					  base + 1000LL * (N_TIMERS - id)),
			0);
	}
	for (int id = 0; id < N_TIMERS; id++)
		assert_int_equal(
			km_loop_timer_set(l, &t[id].t, base + 1000LL * id), 0);
	for (int id = 1; id < N_TIMERS; id += 2)
		km_loop_timer_cancel(l, &t[id].t);
	assert_int_equal(km_loop_timer_count(l), N_TIMERS / 2);
	assert_int_equal(km_loop_run(l), 0);
	assert_int_equal(f.n, N_TIMERS / 2);
	for (int i = 0; i < f.n; i++)
		assert_int_equal(f.order[i], 2 * i);
	assert_int_equal(km_loop_timer_count(l), 0);
	km_loop_destroy(l);
}

static void on_readable(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	char buf[16];

	assert_true(events & EPOLLIN);
	assert_int_equal(read(fd, buf, sizeof buf), 5);
	*(int *)arg += 1;
	km_loop_del_fd(l, fd);
	km_loop_stop(l);
}

static void *writer(void *arg)
{
	int fd = *(int *)arg;

	assert_int_equal(write(fd, "hello", 5), 5);
	return NULL;
}

static void test_file_events(void **state)
{
	struct km_loop *l;
	struct km_error err = {0};
	int p[2], seen = 0;
	pthread_t th;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(km_loop_create(&l, &err), 0);
	assert_int_equal(km_loop_add_fd(l, p[0], EPOLLIN, on_readable, &seen),
			 0);
	pthread_create(&th, NULL, writer, &p[1]);
	assert_int_equal(km_loop_run(l), 0);
	pthread_join(th, NULL);
	assert_int_equal(seen, 1);
	km_loop_destroy(l);
	close(p[0]);
	close(p[1]);
}

struct posts {
	int count;
	int last[2]; /* per posting thread */
	bool in_order;
	pthread_t loop_thread;
	bool on_loop_thread;
};

static void on_post(struct km_loop *l, void *arg)
{
	struct posts *p = *(struct posts **)arg;
	int v = ((int *)arg)[2], who = v >= 100000;

	(void)l;
	/* Each thread's posts run in the order it posted them. */
	p->in_order &= v > p->last[who];
	p->last[who] = v;
	p->on_loop_thread &= pthread_equal(pthread_self(), p->loop_thread);
	p->count++;
	free(arg);
}

struct poster {
	struct km_loop *l;
	struct posts *p;
	int base;
};

static void *post_many(void *arg)
{
	struct poster *ps = arg;

	for (int i = 0; i < 1000; i++) {
		/* A posts pointer followed by the value. */
		int *m = malloc(sizeof(struct posts *) + 2 * sizeof(int));

		*(struct posts **)m = ps->p;
		m[2] = ps->base + i;
		assert_int_equal(km_loop_post(ps->l, on_post, m), 0);
	}
	return NULL;
}

static void stop_now(struct km_loop *l, void *arg)
{
	(void)arg;
	km_loop_stop(l);
}

static void test_posts_from_threads_run_on_the_loop(void **state)
{
	struct km_loop *l;
	struct km_error err = {0};
	struct posts p = {.last = {-1, -1},
			  .in_order = true,
			  .loop_thread = pthread_self(),
			  .on_loop_thread = true};
	struct poster a, b;
	pthread_t ta, tb;

	(void)state;
	assert_int_equal(km_loop_create(&l, &err), 0);
	a = (struct poster){l, &p, 0};
	b = (struct poster){l, &p, 100000};
	pthread_create(&ta, NULL, post_many, &a);
	pthread_create(&tb, NULL, post_many, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	/* Posted after all the others: the loop stops when it gets here. */
	km_loop_post(l, stop_now, NULL);
	assert_int_equal(km_loop_run(l), 0);
	assert_int_equal(p.count, 2000);
	assert_true(p.in_order);
	assert_true(p.on_loop_thread);
	km_loop_destroy(l);
}

static void test_offsets_spread_and_stay_put(void **state)
{
	static int per_bucket[10];
	char name[64];

	(void)state;
	for (int i = 0; i < 10000; i++) {
		int64_t off;

		snprintf(name, sizeof name, "probe//web-%d", i);
		off = km_prober_offset_ms(name, 1000);
		assert_true(off >= 0 && off < 1000);
		/* Deterministic: the same name, the same offset. */
		assert_int_equal(off, km_prober_offset_ms(name, 1000));
		per_bucket[off / 100]++;
	}
	/* 10,000 probes of one period never fire together: every tenth of
	 * the period gets about a tenth of them. */
	for (int b = 0; b < 10; b++)
		assert_true(per_bucket[b] > 850 && per_bucket[b] < 1150);
	assert_int_equal(km_prober_offset_ms("probe//x", 0), 0);
	/* And they stay where earlier versions put them (FNV-1a of the
	 * target name, modulo the period). */
	assert_int_equal(km_prober_offset_ms("probe//web-0", 1000), 890);
	assert_int_equal(km_prober_offset_ms("probe//checkout-http", 60000),
			 57354);
	assert_int_equal(km_prober_offset_ms("probe//x", 60000), 28661);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_fire_in_due_order),
		cmocka_unit_test(test_file_events),
		cmocka_unit_test(test_posts_from_threads_run_on_the_loop),
		cmocka_unit_test(test_offsets_spread_and_stay_put),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
