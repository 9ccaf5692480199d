/*
 * km_kube_mirror — a pod's own probes, run by kubemedic.
 *
 * A pod annotated kubemedic.io/probe: "true" has each livenessProbe and
 * readinessProbe of its containers that has an httpGet, tcpSocket or grpc
 * handler mirrored as a kubemedic probe against the pod's address
 * (status.podIP), with the kubelet's semantics: its timing and thresholds
 * as the API server defaulted them, HTTPS without verification, a named
 * port resolved through the container's ports. Each is a target of its
 * own, "[cluster:]probe/NS/POD.CONTAINER.liveness" (the pod's uid and
 * node; its owner the pod's target), with thresholds, transitions,
 * history and WatchHealth like any probe. Probes are made when the pod
 * has an address, changed in place when the pod's probes change, and
 * their targets deleted (history kept) when the pod goes, loses the
 * annotation or its address.
 *
 * Never mirrored, and logged once for the pod: exec probes (they run in
 * the container), a handler naming a host other than the pod's address
 * (kubemedic would probe what the pod's author chose, not the pod), a
 * named port the container does not declare, a definition kubemedic's own
 * checks refuse (km_probe_validate).
 *
 * Bounded: at most max_probes probes per cluster (default
 * KM_KUBE_MIRROR_MAX); a pod whose probes do not fit is not mirrored until
 * room is made (counted in over_limit, logged once a minute).
 *
 * Threads: the cluster's loop. put and delete only record what is wanted;
 * flush makes it so (the store's calls, synchronous, and the prober's).
 */
#ifndef KM_KUBE_MIRROR_H
#define KM_KUBE_MIRROR_H

#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_kube_cache.h"

#define KM_KUBE_MIRROR_MAX 10000

struct km_store;
struct km_health;
struct km_prober;
struct km_kube_mirror;

struct km_kube_mirror_options {
	const char *cluster; /* "" or NULL: targets unprefixed */
	struct km_store *store;
	struct km_health *health;
	struct km_prober *prober;
	size_t max_probes; /* 0: KM_KUBE_MIRROR_MAX */
};

int km_kube_mirror_new(const struct km_kube_mirror_options *o,
		       struct km_kube_mirror **out, struct km_error *err);
/* Stops every mirrored probe; their targets stay (the daemon stops; the
 * next start mirrors the pods again). NULL is accepted. */
void km_kube_mirror_free(struct km_kube_mirror *m);

/* A pod as decoded (its probes, km_kube_rules.h's struct km_kube_probe):
 * what of it should run. owner: the pod's target name, or NULL. */
void km_kube_mirror_put(struct km_kube_mirror *m,
			const struct km_kube_object *pod, const char *owner);
/* The pod of that uid is gone; cause says why, for its probes' targets
 * (static text). */
void km_kube_mirror_delete(struct km_kube_mirror *m, const char *uid,
			   const char *cause);
/* Makes what put and delete asked: targets made and deleted, probes
 * started, changed and stopped. A store failure leaves the rest queued
 * for the next flush. */
int km_kube_mirror_flush(struct km_kube_mirror *m, struct km_error *err);

struct km_kube_mirror_stats {
	uint64_t probes;     /* running now */
	uint64_t pods;       /* with at least one */
	uint64_t skipped;    /* probes never mirrored (exec, host, port) */
	uint64_t over_limit; /* pods not mirrored for lack of room */
};
void km_kube_mirror_stats(const struct km_kube_mirror *m,
			  struct km_kube_mirror_stats *out);

#endif
