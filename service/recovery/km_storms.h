/*
 * km_storms — the storms the storm guard declares (km_budget.h), kept:
 * each start and end written to the store's storms table, the automatic
 * recoveries each storm refused counted, and the storms on now readable
 * from any thread — RecoveryService.ListStorms shows them, and
 * grpc.health.v1 answers NOT_SERVING for automatic recovery while one is
 * on (a listener hears every change of their number).
 *
 * Threads: km_storms_change, km_storms_refused and km_storms_free on the
 * recovery engine's loop thread, or after it stopped; km_storms_on,
 * km_storms_count and km_storms_set_listener from any thread (one mutex).
 * The listener is called with that mutex held — on the loop's thread at
 * each change, and at once by km_storms_set_listener — so that once
 * cleared it is never called again; it must not call km_storms_*, nor
 * take a lock its owner holds while calling km_storms_*.
 *
 * Writes never wait for the disk: they are queued on the store's writer,
 * which runs them in order (a storm's end after its start); a write that
 * fails is logged, and the storm stays counted here. A storm still on
 * when the daemon stops is ended then, with the note "kubemedicd
 * stopped"; one left on by a daemon that died is ended by the next start
 * (km_storms_new), with the note "kubemedicd stopped without ending it".
 *
 * Memory: one entry per storm on; there are at most as many as the
 * budget has groups (KM_BUDGET_MAX_GROUPS).
 */
#ifndef KM_STORMS_H
#define KM_STORMS_H

#include <stddef.h>

#include "km_arena.h"
#include "km_budget.h"
#include "km_error.h"
#include "km_model.h"
#include "km_store.h"

struct km_storms;

/* Ends the storms left on in the store (and waits for that), then keeps
 * the ones to come. KM_ENOMEM, or the store's error. */
int km_storms_new(struct km_store *store, struct km_storms **out,
		  struct km_error *err);
/* Ends (in the store) the storms on, as "kubemedicd stopped", and frees.
 * NULL is accepted. */
void km_storms_free(struct km_storms *t);

/* A storm started or ended (c->change 1 or -1; 0 is nothing): logged,
 * recorded, told. */
void km_storms_change(struct km_storms *t,
		      const struct km_budget_storm_change *c);
/* The storm s refused an automatic recovery: counted, with it. */
void km_storms_refused(struct km_storms *t, const struct km_budget_storm *s);

/* The storms on now, oldest first, at most max of them into out (strings
 * copied into a: "" when a is out of memory; id 0: ListStorms matches
 * them to the store's rows by group, name and cluster); returns how many
 * there are, which may be more than max. */
size_t km_storms_on(struct km_storms *t, struct km_storm *out, size_t max,
		    struct km_arena *a);
/* How many storms are on now. */
size_t km_storms_count(struct km_storms *t);

typedef void (*km_storms_fn)(void *arg, size_t on);
/* Sets (NULL clears) the one listener of the number of storms on, and
 * tells it the number now. */
void km_storms_set_listener(struct km_storms *t, km_storms_fn fn, void *arg);

#endif
