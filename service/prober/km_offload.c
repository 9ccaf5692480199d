/*
 * The prober's pool of threads for blocking calls (km_offload.h).
 *
 * One mutex guards the queue, the list of finished jobs, the workers and
 * the counts. A job's state says where it is: queued, running, abandoned
 * while running, finished (waiting for the loop), or back with its owner.
 * The loop learns of finished jobs through an eventfd, and takes them all
 * at once.
 *
 * Threads that are stuck in a call are detached: nobody waits for a call
 * that may never return. The pool's memory is shared by the owner and
 * every thread alive, and freed by the last of them (refs).
 */
#include "km_offload.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "km_log.h"

enum {
	J_OWNER = 0, /* not submitted, or handed back */
	J_QUEUED,
	J_RUNNING,
	J_ABANDONED, /* abandoned while running */
	J_FINISHED,  /* waiting for the loop */
};

struct worker {
	struct km_offload *o;
	pthread_t thread;
	struct km_offload_job *job; /* running now, or NULL */
	bool stuck;                 /* its job was abandoned meanwhile */
	struct km_list link;        /* o->workers */
};

struct km_offload {
	struct km_loop *loop;
	int efd;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cond;
	struct km_list queue, finished, workers;
	int working; /* threads alive and not stuck */
	int idle;    /* of those, waiting for a job */
	int stuck;
	int refs; /* the owner, and every thread alive */
	bool stopping;
	uint64_t jobs, abandoned;
};

static void pool_unref_locked(struct km_offload *o, bool *free_it)
{
	assert(o->refs > 0);
	*free_it = --o->refs == 0;
}

static void pool_free(struct km_offload *o)
{
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

static void *worker_main(void *arg);

/* Starts a thread if a queued job waits and no thread would take it.
 * Called with o->mu held. */
static void spawn_if_needed(struct km_offload *o)
{
	struct worker *w;
	int e;

	if (o->stopping || km_list_empty(&o->queue) || o->idle > 0 ||
	    o->working >= KM_OFFLOAD_THREADS ||
	    o->stuck >= KM_OFFLOAD_STUCK_MAX)
		return;
	w = calloc(1, sizeof *w);
	if (!w)
		return; /* the queue waits for a thread */
	w->o = o;
	e = pthread_create(&w->thread, NULL, worker_main, w);
	if (e) {
		free(w);
		km_log(KM_LOG_WARN, "offload: cannot start a thread", "error",
		       strerror(e), NULL);
		return;
	}
	km_list_add_tail(&o->workers, &w->link);
	o->working++;
	o->refs++;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct km_offload *o = w->o;
	sigset_t all;
	bool free_pool, self_free;

	/* Signals are the main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setname_np(pthread_self(), "km-offload");
	pthread_mutex_lock(&o->mu);
	for (;;) {
		struct km_offload_job *j;

		while (!o->stopping && km_list_empty(&o->queue)) {
			o->idle++;
			pthread_cond_wait(&o->cond, &o->mu);
			o->idle--;
		}
		if (o->stopping)
			break;
		j = km_list_entry(o->queue.next, struct km_offload_job, link);
		km_list_del(&j->link);
		j->state = J_RUNNING;
		w->job = j;
		pthread_mutex_unlock(&o->mu);

		j->work(j);

		pthread_mutex_lock(&o->mu);
		w->job = NULL;
		if (j->state == J_ABANDONED) {
			/* Nobody waits for it any more. */
			pthread_mutex_unlock(&o->mu);
			j->state = J_OWNER;
			j->free_job(j);
			pthread_mutex_lock(&o->mu);
		} else {
			uint64_t one = 1;

			assert(j->state == J_RUNNING);
			j->state = J_FINISHED;
			km_list_add_tail(&o->finished, &j->link);
			if (write(o->efd, &one, sizeof one) < 0) {
				/* Saturated: the loop is woken anyway. */
			}
		}
		/* Another thread took this one's place while it was stuck. */
		if (w->stuck)
			break;
	}
	km_list_del(&w->link);
	if (w->stuck)
		o->stuck--;
	else
		o->working--;
	/* A stuck thread leaves: the queue may now have a thread again. */
	spawn_if_needed(o);
	/* Stuck threads are detached and free themselves; the others are
	 * joined, and freed, by km_offload_destroy. */
	self_free = w->stuck;
	pool_unref_locked(o, &free_pool);
	pthread_mutex_unlock(&o->mu);
	if (self_free)
		free(w);
	if (free_pool)
		pool_free(o);
	return NULL;
}

/* The loop: every finished job's done(), in order. A done() may abandon
 * jobs still on the local list (they leave it), so it is emptied from
 * the front. */
static void on_finished(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	struct km_offload *o = arg;
	struct km_list local;
	uint64_t n;

	(void)l;
	(void)events;
	if (read(fd, &n, sizeof n) < 0) {
		/* EAGAIN: taken already. */
	}
	km_list_init(&local);
	pthread_mutex_lock(&o->mu);
	if (!km_list_empty(&o->finished)) {
		/* Splice o->finished onto local. */
		local.next = o->finished.next;
		local.prev = o->finished.prev;
		local.next->prev = &local;
		local.prev->next = &local;
		km_list_init(&o->finished);
	}
	pthread_mutex_unlock(&o->mu);
	while (!km_list_empty(&local)) {
		struct km_offload_job *j =
			km_list_entry(local.next, struct km_offload_job, link);

		km_list_del(&j->link);
		assert(j->state == J_FINISHED);
		j->state = J_OWNER;
		j->done(j);
	}
}

int km_offload_create(struct km_loop *l, struct km_offload **out,
		      struct km_error *err)
{
	struct km_offload *o = calloc(1, sizeof *o);
	int rc;

	*out = NULL;
	if (!o)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	o->loop = l;
	o->refs = 1;
	km_list_init(&o->queue);
	km_list_init(&o->finished);
	km_list_init(&o->workers);
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cond, NULL);
	o->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (o->efd < 0) {
		rc = km_error_set(err, KM_EIO, "offload: eventfd: %s",
				  strerror(errno));
		pool_free(o);
		return rc;
	}
	rc = km_loop_add_fd(l, o->efd, EPOLLIN, on_finished, o);
	if (rc) {
		close(o->efd);
		pool_free(o);
		return km_error_set(err, rc,
				    "offload: cannot watch its eventfd");
	}
	*out = o;
	return 0;
}

int km_offload_submit(struct km_offload *o, struct km_offload_job *j)
{
	int rc = 0;

	assert(j->state == J_OWNER && j->work && j->done && j->free_job);
	pthread_mutex_lock(&o->mu);
	o->jobs++;
	j->state = J_QUEUED;
	km_list_add_tail(&o->queue, &j->link);
	spawn_if_needed(o);
	if (o->idle)
		pthread_cond_signal(&o->cond);
	else if (o->working + o->stuck == 0) {
		/* No thread alive, and none could be started. */
		km_list_del(&j->link);
		j->state = J_OWNER;
		rc = KM_EIO;
	}
	pthread_mutex_unlock(&o->mu);
	return rc;
}

void km_offload_abandon(struct km_offload *o, struct km_offload_job *j)
{
	struct km_list *pos;

	pthread_mutex_lock(&o->mu);
	switch (j->state) {
	case J_QUEUED:
	case J_FINISHED:
		km_list_del(&j->link);
		j->state = J_OWNER;
		pthread_mutex_unlock(&o->mu);
		j->free_job(j);
		return;
	case J_RUNNING:
		j->state = J_ABANDONED;
		o->abandoned++;
		km_list_for_each (pos, &o->workers) {
			struct worker *w =
				km_list_entry(pos, struct worker, link);

			if (w->job == j) {
				/* Nobody will wait for this call: its thread
				 * is let go, and replaced. */
				assert(!w->stuck);
				w->stuck = true;
				pthread_detach(w->thread);
				o->working--;
				o->stuck++;
				break;
			}
		}
		spawn_if_needed(o);
		break;
	default: assert(!"abandoning a job that is not the pool's"); break;
	}
	pthread_mutex_unlock(&o->mu);
}

void km_offload_get_stats(struct km_offload *o, struct km_offload_stats *out)
{
	pthread_mutex_lock(&o->mu);
	out->jobs = o->jobs;
	out->abandoned = o->abandoned;
	out->stuck = (uint64_t)o->stuck;
	out->threads = (uint64_t)(o->working + o->stuck);
	pthread_mutex_unlock(&o->mu);
}

void km_offload_destroy(struct km_offload *o)
{
	struct km_list *pos, *tmp, doomed;
	pthread_t join[KM_OFFLOAD_THREADS + 1];
	struct worker *joined[KM_OFFLOAD_THREADS + 1];
	size_t n_join = 0;
	bool free_pool;

	if (!o)
		return;
	km_loop_del_fd(o->loop, o->efd);
	close(o->efd);
	km_list_init(&doomed);
	pthread_mutex_lock(&o->mu);
	o->stopping = true;
	/* Queued and finished jobs are dropped; running ones abandoned. */
	while (!km_list_empty(&o->queue)) {
		struct km_list *n = o->queue.next;

		km_list_del(n);
		km_list_add_tail(&doomed, n);
	}
	while (!km_list_empty(&o->finished)) {
		struct km_list *n = o->finished.next;

		km_list_del(n);
		km_list_add_tail(&doomed, n);
	}
	km_list_for_each_safe (pos, tmp, &o->workers) {
		struct worker *w = km_list_entry(pos, struct worker, link);

		if (w->job && !w->stuck) {
			w->job->state = J_ABANDONED;
			w->stuck = true;
			pthread_detach(w->thread);
			o->working--;
			o->stuck++;
		} else if (!w->stuck) {
			assert(n_join < sizeof join / sizeof join[0]);
			joined[n_join] = w;
			join[n_join++] = w->thread;
		}
	}
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->mu);

	while (!km_list_empty(&doomed)) {
		struct km_offload_job *j =
			km_list_entry(doomed.next, struct km_offload_job, link);

		km_list_del(&j->link);
		j->state = J_OWNER;
		j->free_job(j);
	}
	for (size_t i = 0; i < n_join; i++) {
		pthread_join(join[i], NULL);
		free(joined[i]);
	}
	pthread_mutex_lock(&o->mu);
	if (o->stuck)
		km_log(KM_LOG_WARN,
		       "offload: threads still in a blocking call are left "
		       "to end on their own",
		       "threads", KM_I(o->stuck), NULL);
	pool_unref_locked(o, &free_pool);
	pthread_mutex_unlock(&o->mu);
	if (free_pool)
		pool_free(o);
}
