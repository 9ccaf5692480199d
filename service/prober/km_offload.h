/*
 * km_offload — blocking calls off the prober's loop: a small pool of
 * threads that runs jobs (a stat(2), a realpath(3), reading a CA file)
 * and hands each result back to the loop.
 *
 * Why: the loop thread never blocks, and these calls can. A stat on a
 * hung NFS mount does not return for minutes; on the loop every probe
 * would wait for it, here it holds one thread.
 *
 * A job is submitted from the loop thread, its work() runs on a pool
 * thread, then its done() on the loop thread — unless the job was
 * abandoned first (its check's deadline passed, its probe was deleted, the
 * prober is stopping): an abandoned job's done() never runs, and its
 * free_job() runs on whichever thread lets go of it last (the pool thread,
 * when the work returns at last). A job's memory is its owner's until it
 * is submitted, the pool's while it is queued, running or abandoned, and
 * the owner's again when done() is called.
 *
 * Threads: at most KM_OFFLOAD_THREADS (4) working threads, started as jobs
 * come. A thread whose job is abandoned while it runs is "stuck" (its call
 * has not returned): it stops counting, and another thread takes its
 * place, as long as fewer than KM_OFFLOAD_STUCK_MAX (64) are stuck. Past
 * that, jobs wait in the queue (their checks time out: a hung mount then
 * costs the file checks, never the loop). A stuck thread whose call
 * returns frees its job and ends. Destroying the pool (after the loop has
 * stopped) abandons every job, joins the threads that are idle and leaves
 * those still in a call to end on their own: the pool's shared state is
 * freed by the last thread out.
 *
 * Results come back through an eventfd of the pool's in the loop, so
 * handing one back allocates nothing and cannot fail.
 */
#ifndef KM_OFFLOAD_H
#define KM_OFFLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "km_error.h"
#include "km_list.h"
#include "km_loop.h"

#define KM_OFFLOAD_THREADS 4
#define KM_OFFLOAD_STUCK_MAX 64

struct km_offload;

struct km_offload_job {
	/* Set by the owner. */
	void (*work)(struct km_offload_job *j);     /* a pool thread */
	void (*done)(struct km_offload_job *j);     /* the loop thread */
	void (*free_job)(struct km_offload_job *j); /* any thread */
	/* The pool's. */
	int state;
	struct km_list link;
};

struct km_offload_stats {
	uint64_t jobs;      /* submitted */
	uint64_t abandoned; /* abandoned while their call ran */
	uint64_t stuck;     /* threads in a call whose job was abandoned, now */
	uint64_t threads;   /* threads alive now, stuck ones included */
};

/* A pool that reports to loop l (before l runs). */
int km_offload_create(struct km_loop *l, struct km_offload **out,
		      struct km_error *err);
/* After the loop has stopped, before km_loop_destroy. NULL is accepted. */
void km_offload_destroy(struct km_offload *o);

/* Loop thread. Queues j; KM_EIO if no thread can run it (none alive and
 * none can be started), then j is still the caller's. */
int km_offload_submit(struct km_offload *o, struct km_offload_job *j);
/* Loop thread. The owner lets go of a submitted job whose done() has not
 * run: it never runs, and the pool frees the job. */
void km_offload_abandon(struct km_offload *o, struct km_offload_job *j);

/* Any thread. */
void km_offload_get_stats(struct km_offload *o, struct km_offload_stats *out);

#endif
