/*
 * Waiting for the store's writer without sleeping: a transition listener
 * (km_store_set_listener) that counts what it is told, under a lock, and
 * a wait for the count. A transition is told after the commit of the
 * batch that holds it and everything queued before it, so hearing one is
 * hearing that commit.
 */
#ifndef KM_TEST_HEARD_H
#define KM_TEST_HEARD_H

#include <pthread.h>

#include "km_store.h"

struct km_test_heard {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n;
};

#define KM_TEST_HEARD_INIT                                             \
	{                                                              \
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 \
	}

/* The listener: arg is a struct km_test_heard. */
static inline void km_test_heard_one(void *arg, const struct km_transition *t)
{
	struct km_test_heard *h = arg;

	(void)t;
	pthread_mutex_lock(&h->mu);
	h->n++;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* How many were heard so far, and a wait until at least n were. */
static inline int km_test_heard_count(struct km_test_heard *h)
{
	int n;

	pthread_mutex_lock(&h->mu);
	n = h->n;
	pthread_mutex_unlock(&h->mu);
	return n;
}

static inline void km_test_heard_wait(struct km_test_heard *h, int n)
{
	pthread_mutex_lock(&h->mu);
	while (h->n < n)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

#endif
