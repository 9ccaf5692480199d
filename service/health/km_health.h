/*
 * km_health — the health hub: where every observation of every target
 * becomes a verdict, and every change of verdict a transition.
 *
 * Producers. A source (the probe engine now; Kubernetes rules and
 * recovery's verification next) registers the targets it observes with
 * km_health_track and reports each observation with km_health_observe.
 * The hub alone keeps each target's ledger (km_ledger.h: the kubelet's
 * thresholds, DEGRADED, Nagios-style flap detection), hands every result
 * to the store's writer and, when the verdict or the flapping flag
 * changes, a transition with its cause. No source derives health itself.
 *
 * Publication. A transition becomes visible only after the writer has
 * committed it (the store calls km_health_committed): then the target's
 * published state, since, sequence and last transition change, and the
 * transition is announced to the subscribers. So whatever a client is
 * told — by GetHealth, ListTargets, a watch — a later query of the
 * database shows too, and a snapshot's sequence orders it exactly against
 * the stream of transitions.
 *
 * Current health. For every live target the hub keeps in memory its
 * published state (state, flapping, since, the sequence of its last
 * transition), its newest result and streak, and its last transition.
 * GetHealth, ListTargets and grpc.health.v1.Check read them here, never
 * SQLite. History stays in SQLite.
 *
 * Subscribers. Each subscriber (a watch stream, the grpc.health.v1
 * watchers, later the recovery engine) has its own bounded queue: the
 * committed transitions it has not been handed yet, in sequence order, at
 * most its max_pending. The hub's own thread ("km-health") hands them over
 * through deliver, which must not block — never the writer's thread, never
 * a producer's. Overload policy: a subscriber whose queue would pass its
 * bound (paused too long, or too slow) is cut off: overflow is called once
 * with the last sequence it was handed, and it gets nothing more. It
 * resumes from that sequence through the database (a watch stream tells
 * its client so; the recovery engine re-reads current health).
 *
 * Deletion is a transition: the store records it (to_state
 * KM_STATE_DELETED) when a target is deleted, and when it is committed the
 * hub forgets the target; observations of a target it does not know are
 * dropped (counted), so a check that was in flight leaves no trace.
 *
 * Threads: every function from any thread. km_health_observe never blocks
 * (producers are event loops); the others may wait for the hub's lock.
 * Memory: per live target one entry (its name, labels, the message of its
 * newest result — at most KM_RESULT_MESSAGE_MAX — and its last cause), and
 * the last window transitions for subscribers (options.window).
 */
#ifndef KM_HEALTH_H
#define KM_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_arena.h"
#include "km_error.h"
#include "km_model.h"

struct km_health;
struct km_store;
struct km_reader;

struct km_health_options {
	struct km_store *store;
	double flap_low;  /* percent; 0 = 5 */
	double flap_high; /* percent; 0 = 20 */
	size_t window;    /* committed transitions kept for subscribers
	                         that are behind; 0 = 16384 */
};

/* Creates the hub and loads every live target's current health from the
 * store (state, since, newest result and streak, last transition), then
 * registers for the store's commits. Thresholds are 1 until a source
 * tracks the target. */
int km_health_open(const struct km_health_options *o, struct km_health **out,
		   struct km_error *err);
/* Stops the hub's thread and frees everything; subscribers must be gone.
 * Call after the producers have stopped and before the store closes.
 * NULL is accepted. */
void km_health_close(struct km_health *h);

/* ---- producers ------------------------------------------------------------ */

/* What a source tells the hub about a target it observes. */
struct km_health_target {
	int64_t id;       /* the store's target id */
	const char *name; /* "[cluster:]kind/namespace/name" */
	const struct km_kv *labels;
	size_t n_labels;
	const char *uid, *owner, *node; /* NULL = "" */
	int32_t success_threshold;      /* <= 0: 1 */
	int32_t failure_threshold;      /* <= 0: 1 */
	int64_t created_us;             /* since when it is UNKNOWN, if new */
	/* Its results' messages are a program's output or a file's: the
	 * API shows them to admins only (km_health_view.private_output). */
	bool private_output;
};

/* Adds the target (state UNKNOWN) or updates what it is told of an
 * existing one (labels, thresholds, identity), keeping its verdict and
 * counters. Everything is copied. KM_ENOMEM. */
int km_health_track(struct km_health *h, const struct km_health_target *t);

/* A producer's memo of where the hub keeps one target, so an observation
 * needs no lookup (at 10,000 observations a second the lookup's cache
 * misses were the hub's largest cost). Opaque; zero-initialise it, keep
 * one per target, and pass it with every observation of that target. A
 * stale memo (the target was deleted, or another was) is noticed and
 * refreshed by the hub. */
struct km_health_hint {
	void *entry;
	uint64_t epoch;
};

struct km_observation {
	int64_t target_id;
	/* KM_STATE_HEALTHY, KM_STATE_DEGRADED (up, under pressure) or
	 * KM_STATE_UNHEALTHY. */
	int verdict;
	int64_t started_us; /* epoch µs */
	int64_t duration_us;
	int error_class; /* enum km_error_class; 0 when up */
	int32_t status_code;
	const char *message; /* NULL or "" = none; copied */
	/* The cause of a transition it makes; NULL = the message's first
	 * line. */
	const char *reason;
	/* The cause is the reason alone, not counted ("node is not ready:
	 * KubeletNotReady" rather than "1 consecutive failure (...)"): for
	 * sources whose verdicts are judgments, not checks in a row. */
	bool reason_is_cause;
	struct km_health_hint *hint; /* NULL = look the target up */
};

/* Starts fetching into the cache what an observation with this hint will
 * touch: for a producer that knows an observation is coming (a check has
 * started). No lock; any thread. */
void km_health_prefetch(const struct km_health_hint *hint);

/* Records one observation. Never blocks. KM_ENOTFOUND (and the
 * observation is dropped) if the target is not tracked — e.g. deleted
 * while the check ran; KM_ENOMEM. */
int km_health_observe(struct km_health *h, const struct km_observation *o);

/* ---- current health (from memory) ------------------------------------------ */

/* A live target as GetHealth shows it. Strings live in the arena. */
struct km_health_view {
	struct km_target target; /* published state; last_transition_seq
	                                is the snapshot's sequence for it */
	bool has_last;
	struct km_result last; /* newest result; id 0 when it was
	                                observed since start (not yet known) */
	int64_t consecutive;   /* results in a row with last's outcome */
	bool has_transition;
	struct km_transition transition; /* the last one; target_name set */
	bool private_output;             /* as the source said when tracking */
};

/* KM_ENOTFOUND for a name that is not a live target. */
int km_health_get(struct km_health *h, const char *name, struct km_arena *a,
		  struct km_health_view *out, struct km_error *err);

/* The published state of a live target (for grpc.health.v1.Check):
 * KM_ENOTFOUND, or 0 with *state set. Cheap: no copy. */
int km_health_state(struct km_health *h, const char *name, int *state);

struct km_health_filter {
	int kind;            /* 0 = any */
	int state;           /* 0 = any */
	const char *cluster; /* NULL = any */
	/* The target's identity; NULL = any. */
	const char *ns, *node, *owner, *uid;
	/* Called under the hub's lock: pure, quick. NULL = all. */
	bool (*match)(const struct km_kv *labels, size_t n, void *arg);
	void *arg;
};

/* Live targets with id > after_id that pass f, in id order, at most
 * limit, copied into a; *more if any follow. *sequence is the sequence
 * of the last transition this snapshot reflects: a watch from it misses
 * and repeats nothing of what came after. */
int km_health_list(struct km_health *h, const struct km_health_filter *f,
		   int64_t after_id, size_t limit, struct km_arena *a,
		   struct km_target **out, size_t *n, bool *more,
		   int64_t *sequence);

/* The sequence of the newest published transition (0 if none ever). */
int64_t km_health_sequence(struct km_health *h);

/* ---- subscribers ------------------------------------------------------------ */

/* A committed transition as subscribers see it. Valid during deliver
 * only. target is the target as it is after it (for a deletion: as it
 * was, with state KM_STATE_DELETED). */
struct km_health_event {
	const struct km_transition *t; /* seq, target_name and labels set */
	const struct km_target *target;
};

struct km_health_sub;

struct km_health_sub_options {
	size_t max_pending; /* the queue's bound; 0 = the hub's window */
	bool paused;        /* queue, but hand nothing over until resumed */
	/* On the hub's thread, in sequence order; must not block. */
	void (*deliver)(void *arg, const struct km_health_event *ev);
	/* On the hub's thread, once, when the queue overflowed: nothing more
	 * comes; last_seq is the last sequence handed over (or the
	 * subscription's start). May be NULL. */
	void (*overflow)(void *arg, int64_t last_seq);
	void *arg;
};

/* Subscribes to every transition published after this call; *start is
 * the sequence of the last one published before it (a replay from the
 * database up to *start, then the subscription, misses and repeats
 * nothing). KM_ENOMEM. */
int km_health_subscribe(struct km_health *h,
			const struct km_health_sub_options *o,
			struct km_health_sub **out, int64_t *start);
/* Starts handing over a paused subscription's queue. */
void km_health_resume(struct km_health_sub *s);
/* Ends a subscription: when it returns, deliver and overflow are not
 * running for it and never will (unless it is called from within them,
 * on the hub's thread: then they are not called again). NULL is
 * accepted. */
void km_health_unsubscribe(struct km_health_sub *s);

/* ---- for the stats line and tests ------------------------------------------ */

struct km_health_stats {
	uint64_t targets; /* tracked now */
	uint64_t observations;
	uint64_t unknown_dropped; /* observations of untracked targets */
	uint64_t transitions;     /* made by the ledgers */
	uint64_t published;       /* committed and announced */
	uint64_t subscribers;
	uint64_t overflows; /* subscribers cut off */
};
void km_health_get_stats(struct km_health *h, struct km_health_stats *out);

/* The store's commit listener (km_store_set_listener); arg = the hub. */
void km_health_committed(void *arg, const struct km_transition *t);

#endif
