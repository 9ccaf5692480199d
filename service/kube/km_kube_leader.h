/*
 * km_kube_leader — leader election on a coordination.k8s.io/v1 Lease, as
 * kube-controller-manager does it (client-go's leaderelection), on the
 * loop of one cluster's client.
 *
 * Every retry period the elector reads the Lease. Absent: it creates it,
 * holding it. Held by another whose record (holder, renewTime) changed
 * within the last lease duration of *local* time — the other's clock is
 * never trusted: what counts is when this elector saw the record change —
 * it waits. Else (its own, free, or expired) it writes itself in with the
 * Lease's resourceVersion: of two candidates only one write succeeds, the
 * other is answered 409 and waits. A leader that has not renewed for the
 * renew deadline (the API server unreachable, or answering errors) stops
 * being one at once — before the Lease can expire for the others, since
 * the renew deadline is shorter than the lease duration — so two replicas
 * never both believe they lead. On stop, a leader gives the Lease up
 * (holder "") so that another takes over at its next retry instead of
 * after the lease duration.
 *
 * Threads: the client's loop, for everything (start and stop too).
 * Memory: the elector and one request at a time.
 */
#ifndef KM_KUBE_LEADER_H
#define KM_KUBE_LEADER_H

#include <stdbool.h>
#include <stdint.h>

#include "km_error.h"
#include "km_kube_client.h"
#include "km_loop.h"

struct km_kube_leader;

struct km_kube_leader_options {
	struct km_loop *loop;
	struct km_kube_client *client;
	const char *ns, *name;     /* the Lease; DNS-1123 (KM_EINVAL) */
	const char *identity;      /* this candidate; at most 128 bytes */
	int64_t lease_duration_ms; /* 0: 15 s */
	int64_t renew_deadline_ms; /* 0: 10 s; < lease_duration */
	int64_t retry_period_ms;   /* 0: 2 s; < renew_deadline */
	/* Told, on the loop, each time leadership is won or lost, and when
	 * the holder seen changes; holder "" when none. */
	void (*changed)(void *arg, bool leading, const char *holder);
	void *arg;
};

/* Starts electing at once. KM_EINVAL (names, durations), KM_ENOMEM. */
int km_kube_leader_start(const struct km_kube_leader_options *o,
			 struct km_kube_leader **out, struct km_error *err);
/* Gives the Lease up if held (one request, not waited for), cancels what
 * is in flight, frees. NULL is accepted. */
void km_kube_leader_stop(struct km_kube_leader *l);
/* Whether this candidate leads now. */
bool km_kube_leader_leading(const struct km_kube_leader *l);
/* The holder last seen ("" when none, or not read yet). */
const char *km_kube_leader_holder(const struct km_kube_leader *l);

#endif
