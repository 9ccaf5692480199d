/*
 * km_runs — every target's open run, held in memory until it must be
 * written (issue 12): the writer folds each steady result into its
 * target's open run (a memory update, no row), and writes a run when
 *   - a result of another outcome ends it (km_runs_add: closed);
 *   - its target is deleted (km_runs_end);
 *   - it has been open flush_us since it was last written (km_runs_due:
 *     default 10 s — what a crash can lose of a steady run; the run's row
 *     is then written again, larger, when it next comes due or ends).
 *     The flush time is the target's: a run that follows a closed one
 *     keeps it, so a target whose outcome flips faster than flush_us comes
 *     due all the same (its writer flushes other state along with it).
 * A run's row id (0 until first written) is the writer's: it sets it with
 * km_runs_written, so a later write updates the same row.
 *
 * Bounds: at most max_open open runs (one per target); a result of a
 * target past it is refused (KM_EFULL), for the caller to count.
 *
 * Threads: one at a time (the writer's). No clock: times come in.
 * Memory: one entry per target with an open run, its two messages
 * included (km_run.h); freed when the run ends.
 */
#ifndef KM_RUNS_H
#define KM_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_run.h"

#define KM_RUNS_FLUSH_US_DEFAULT (10LL * 1000000)
#define KM_RUNS_MAX_OPEN_DEFAULT 1000000

struct km_runs_options {
	int64_t flush_us; /* 0: 10 s */
	size_t max_open;  /* 0: 1,000,000 */
	/* Frees a target's aux (km_runs_aux) left when the table is freed.
	 * NULL: there is none. */
	void (*free_aux)(void *aux);
};

struct km_runs;

int km_runs_new(const struct km_runs_options *o, struct km_runs **out);
/* Frees every open run unwritten (the caller flushed what it keeps).
 * NULL is accepted. */
void km_runs_free(struct km_runs *t);

/* A run to write: its contents (the caller's copy to use until the next
 * call: messages point into the table's run, or into closed) and the row
 * it goes to (0: a new one). */
struct km_run_write {
	struct km_run run;
	int64_t row_id;
	bool open;           /* still open: written again later */
	bool changed;        /* results folded since it was last written */
	int64_t last_add_us; /* now_us of its target's last result */
	void *aux;           /* the target's aux: borrowed from km_runs_due and
	              km_runs_get; handed over (the caller's) when the target
	              ends (km_runs_end, km_runs_pop); NULL for a run another
	              outcome closed (the target keeps it) */
};

/* Folds r into its target's open run, at now_us (the writer's clock, for
 * the flush). When r ends the open run, *closed (the caller's: clear it
 * with km_run_clear after writing) is that run, with its row id, and
 * *has_closed is true. aux (may be NULL): the target's aux slot, as
 * km_runs_aux gives it, found by the same lookup. 0, KM_ENOMEM, KM_EFULL
 * (max_open targets). */
int km_runs_add(struct km_runs *t, const struct km_result *r, int64_t now_us,
		struct km_run_write *closed, bool *has_closed, void ***aux);
/* The target is gone: its open run, if any, ends into *closed. */
bool km_runs_end(struct km_runs *t, int64_t target_id,
		 struct km_run_write *closed);
/* The next open run due at now_us (open flush_us since last written), as
 * *out (borrowed: valid until the table changes) — the caller writes it,
 * then calls km_runs_written. false when none is due. */
bool km_runs_due(struct km_runs *t, int64_t now_us, struct km_run_write *out);
/* The open run of target_id was written as row row_id at now_us: its next
 * flush is flush_us later. KM_ENOTFOUND when it has none open. */
int km_runs_written(struct km_runs *t, int64_t target_id, int64_t row_id,
		    int64_t now_us);
/* The open run of target_id as km_runs_due gives it; false: none. */
bool km_runs_get(struct km_runs *t, int64_t target_id,
		 struct km_run_write *out);
/* The caller's pointer kept with target_id's open run (NULL when it has
 * none): state of its own that lives and ends with the target's entry. */
void **km_runs_aux(struct km_runs *t, int64_t target_id);
/* Calls fn on every open run (borrowed, as km_runs_get gives it), in no
 * order, until one returns non-zero (returned). fn may call
 * km_runs_written, nothing else that changes the table. */
int km_runs_each(struct km_runs *t,
		 int (*fn)(void *arg, const struct km_run_write *w), void *arg);
/* Marks every open run changed (its last write was undone: a failed
 * commit), and calls fn on each aux (NULL: none) for the caller's state. */
void km_runs_unwritten_all(struct km_runs *t, void (*fn)(void *aux));
/* Ends one open run (the earliest due) into *out; false when none is
 * open. For emptying the table: a final flush. */
bool km_runs_pop(struct km_runs *t, struct km_run_write *out);
/* How many runs are open; the earliest time one comes due (INT64_MAX:
 * none). */
size_t km_runs_open(const struct km_runs *t);
int64_t km_runs_next_due(const struct km_runs *t);

#endif
