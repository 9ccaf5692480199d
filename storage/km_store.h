/*
 * km_store — kubemedic's history in SQLite.
 *
 * What it owns: one database file in WAL mode, one writer thread with its
 * own connection, the queues that feed it, and the read connections handed
 * out as km_reader objects.
 *
 * Writes. Every write goes through the writer thread, which batches many
 * rows per transaction with prepared statements:
 *  - results (km_store_add_result) go to a bounded ring; when it is full the
 *    oldest queued result is dropped and counted (overload must not stall
 *    the prober). The writer folds them into runs and rollups (see Probe
 *    history); they are durable once a later km_store_flush returns.
 *    With options.commit_delay_us, results alone wait up to that long for
 *    more to commit with (group commit); anything else queued — a
 *    transition, a synchronous write, a flush, the close — commits at once,
 *    with every result queued before it.
 *  - transitions (km_store_add_transition) go to the control queue, in
 *    order with everything queued before them; they are never dropped and
 *    their producer never waits (see km_store_add_transition).
 *  - recoveries and their events (km_store_create_recovery, ...): see
 *    "recoveries" below; they are told to their own listener
 *    (km_store_set_recovery_listener) likewise, after the commit.
 *  - probe and target changes (km_store_create_probe, ...) are synchronous:
 *    they return only after the transaction holding them has committed, so
 *    an acknowledgement to a client is never ahead of the disk. A deletion
 *    is recorded as a transition to KM_STATE_DELETED in the same
 *    transaction.
 * After each commit the writer tells the listener (km_store_set_listener)
 * of every transition in it, with its sequence number assigned, in
 * sequence order — before the callers of the batch's synchronous writes
 * are woken.
 *
 * Reads. km_reader_open gives a read-only connection with cached prepared
 * statements, for one thread at a time. Results of a read live in the
 * km_arena the caller passes.
 *
 * Storage faults. A commit that fails (a full disk, a file system gone
 * read-only, an I/O error) loses no transition and no queued audit event:
 * the failed batch's go back to the head of the control queue, in order,
 * and are retried — with a backoff from 100 ms to 2 s, at once when a synchronous
 * write or the close comes — until a commit succeeds; only then are they
 * announced. The batch's results are dropped (counted in results_dropped:
 * the ring goes on filling meanwhile), and its synchronous writes answer
 * their callers with the error: KM_EFULL for a full disk, KM_EUNAVAIL for
 * a database that cannot be written or read (read-only, I/O errors). While
 * commits fail and nothing is queued, the writer tries a one-page write at
 * each retry, so the fault's end is seen without traffic. After
 * KM_STORE_FAILS_UNHEALTHY failed attempts in a row the store calls
 * options.on_health(false), and on_health(true) after the next commit that
 * succeeds (stats.failing says the same). The writer logs the first
 * failure, then at most one line per 10 s with counts while it lasts, and
 * one line when it ends. At close, transitions and audit events that
 * still cannot be committed are lost, logged with their number (nothing
 * was published of the transitions).
 *
 * One daemon per database. km_store_open takes an exclusive flock(2) on
 * "<path>.lock" (created beside the database, left there, holding the pid
 * of its holder) and refuses a database another store holds — in this
 * process or another — naming the holder's pid: two daemons on one database
 * would both run every probe. The OS drops the lock when the process dies
 * (the descriptor is close-on-exec: probe children never inherit it).
 * Readers are unaffected (they take no lock).
 *
 * Writable or refused. km_store_open refuses, with what to fix, a database
 * it could open but not write: a read-only file, a directory where the WAL
 * (-wal, -shm) and the lock file cannot be created, a read-only mount, a
 * disk already full (it commits one page as a check).
 *
 * Probe history (schema 6, issue 12). A result is not a row: consecutive
 * results of one target with one outcome (success, error class, status
 * code) are one run (km_run.h, table runs), and every result is counted in
 * its target's minute and hour rollups (km_rollup.h, rollup_minutes and
 * rollup_hours). The writer holds each target's open run and open hour in
 * memory — a steady result costs a memory update — and writes them:
 *  - when the run ends: a result of another outcome, the target deleted;
 *  - when the hour ends: a result of a later hour;
 *  - flush_us (default 10 s) after they were last written, if anything
 *    changed — so a crash (a kill, a power loss with synchronous=full)
 *    loses at most the last flush_us of each target's results, never a
 *    run that ended before (ended runs are written with the batch that
 *    ends them) — and at km_store_flush and the close;
 *  - a target without results for an hour leaves memory (its next result
 *    starts a new run).
 * At most max_open targets (default 1,000,000; about 1 kB each) have
 * history open; results of others are dropped (counted, logged). A
 * failed commit loses no ended run: they are written again with the next
 * batch. A database of schema 5 keeps its `results` rows; the writer
 * converts them, oldest first, in transactions of 1,000 that also delete
 * what they converted — a daemon killed midway resumes where it stopped —
 * between its batches, while serving (km_reader_query_runs shows what is
 * left as runs of one meanwhile).
 *
 * Retention. Each kind of row has its own (0 = forever): runs (and raw
 * results), minute rollups, hour rollups, transitions, recoveries with
 * their events and storms (final ones only), the audit trail. The writer
 * deletes in small steps between write batches — runs and rollups target
 * by target, each a range of its index — so a sweep never holds the write
 * lock for long (and waits while commits fail).
 *
 * Schema. Migrations compiled into the binary (migrations/NNNN_*.sql) are
 * applied in order at open, each in its own transaction, and recorded with
 * their SHA-256 in schema_migrations. A database that has migrations this
 * binary does not know, or whose recorded checksum differs, is refused.
 *
 * Threads: km_store_open/close from one thread; add/flush/sync writes from
 * any thread; a km_reader from one thread at a time.
 */
#ifndef KM_STORE_H
#define KM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_arena.h"
#include "km_error.h"
#include "km_model.h"
#include "km_rollup.h"

struct km_store;
struct km_reader;

struct km_store_options {
	const char *path;        /* database file; created if missing */
	size_t result_queue;     /* default 65536 results */
	size_t control_queue;    /* synchronous writes wait while this
	                                  many entries are queued; default
	                                  4096 (transitions never wait) */
	size_t batch_max;        /* rows per transaction; default 8192 */
	int64_t commit_delay_us; /* how long results wait for company
	                                  before a commit; 0 (default) = commit
	                                  as soon as the writer is free */
	bool sync_normal;        /* PRAGMA synchronous=NORMAL instead of
	                                  FULL: survives a process crash, not a
	                                  power loss; faster commits */
	/* Probe history (see "Probe history" above). */
	int64_t flush_us; /* an open run's and rollup's flush interval;
	                      default 10 s (KM_STORE_FLUSH_US_DEFAULT) */
	size_t max_open;  /* targets with history open in memory at once;
	                      default 1,000,000 */
	bool raw_results; /* write each result as a row of `results`, as
	                      before runs (schema 5), and no runs or rollups:
	                      the baseline of bench/history_scale */
	/* The writer's clock (epoch µs) for flushes and retention; NULL =
	 * the real one. A benchmark drives a simulated one. */
	int64_t (*now_us)(void *arg);
	void *now_arg;
	/* Retention, each 0 = keep forever. */
	int64_t results_retention_us; /* runs (and raw results) */
	int64_t minutes_retention_us; /* minute rollups */
	int64_t hours_retention_us;   /* hour rollups */
	int64_t transitions_retention_us;
	int64_t recoveries_retention_us; /* recoveries, their events, storms */
	int64_t audit_retention_us;
	int64_t retention_interval_ms; /* between sweeps; default 60000 */
	int retention_batch;           /* rows per delete; default 2000 */
	/* Told on the writer thread when the database stops taking writes
	 * (KM_STORE_FAILS_UNHEALTHY failed commit attempts in a row;
	 * why = the last error) and when a commit succeeds again (why =
	 * NULL). Must not block or call into the store. NULL = not told. */
	void (*on_health)(void *arg, bool writable, const struct km_error *why);
	void *health_arg;
};

/* Failed commit attempts in a row after which the store is unhealthy. */
#define KM_STORE_FAILS_UNHEALTHY 3

/* Opens (creating if missing), checks that it can be written, locks,
 * migrates, starts the writer. KM_EUNAVAIL: not writable (read-only file,
 * directory or mount; an I/O error), or another store holds it (the
 * message names the database and the holder's pid); KM_EFULL: its disk is
 * full; KM_ETOONEW, KM_ECORRUPT: see Schema. */
int km_store_open(const struct km_store_options *opts, struct km_store **out,
		  struct km_error *err);
/* Commits everything queued, stops the writer, closes the database and
 * then drops the lock. All readers must be closed first. NULL is
 * accepted. */
void km_store_close(struct km_store *s);

/* Called on the writer thread after the commit of each transition, with
 * t->seq set (and t->target_name, labels when the producer gave them; a
 * deletion's always). Must not block and must not call into the store. */
typedef void (*km_store_listener_fn)(void *arg, const struct km_transition *t);
/* Sets (or, with NULL, clears) the one listener. Any thread; takes effect
 * from the next batch. */
void km_store_set_listener(struct km_store *s, km_store_listener_fn fn,
			   void *arg);

/* Schema version compiled into this binary, and the database's. */
int km_store_binary_schema_version(void);
int km_store_schema_version(struct km_store *s);

/* ---- asynchronous writes ---------------------------------------------- */

/* Queues a copy of r (message included). Never blocks. KM_EUNAVAIL once
 * close has begun. */
int km_store_add_result(struct km_store *s, const struct km_result *r);
/* Queues a copy of t (cause, target name and labels included). Never
 * waits: transitions are never dropped and their producers are event
 * loops, so the queue grows instead (control_queue_depth shows it; only a
 * writer that cannot commit lets it grow far). A transition of a target
 * that is deleted when it is written is not kept. KM_EUNAVAIL once close
 * has begun; KM_ENOMEM. */
int km_store_add_transition(struct km_store *s, const struct km_transition *t);
/* Returns once everything queued before the call is committed, every
 * target's open run and hour written with it (they stay open), or the
 * error of the commit that failed (KM_EFULL, KM_EUNAVAIL; the transitions
 * stay queued and are retried). */
int km_store_flush(struct km_store *s, struct km_error *err);

/* Runs a retention sweep now and returns when it has finished (the writer
 * runs it in its usual small steps). */
void km_store_retention_sweep(struct km_store *s);

struct km_store_stats {
	uint64_t results_queued;
	uint64_t results_written;
	uint64_t results_dropped; /* queue full, or a failed commit */
	uint64_t transitions_written;
	uint64_t transitions_retried; /* put back after a failed commit */
	uint64_t transitions_lost;    /* could never be stored (logged) */
	uint64_t batches;
	uint64_t commit_failures; /* failed attempts, write checks too */
	bool failing;             /* the last commit attempt failed */
	uint64_t retention_deleted;
	uint64_t retention_steps;  /* DELETE statements run */
	uint64_t retention_sweeps; /* sweeps completed */
	uint64_t writer_boosts;    /* times the writer fell behind and
	                                  left SCHED_IDLE to catch up */
	bool writer_idle;          /* the writer uses SCHED_IDLE (it can
	                                  leave it again here) */
	size_t result_queue_depth;
	size_t result_queue_max_depth;
	size_t control_queue_depth; /* transitions and sync writes */
	size_t control_queue_max_depth;
	uint64_t audit_written;
	uint64_t audit_dropped;     /* refusals past the queue's bound, or lost
	                           (refused by SQLite; failing at close) */
	uint64_t writer_cpu_ns;     /* CPU time the writer thread has used */
	size_t runs_open;           /* targets with an open run in memory */
	uint64_t runs_written;      /* run rows inserted or updated */
	uint64_t rollups_written;   /* minute and hour rollup rows written */
	uint64_t results_converted; /* raw results of schema 5 folded */
};
void km_store_get_stats(struct km_store *s, struct km_store_stats *out);

/* ---- synchronous writes (committed before they return) ---------------- */

/* Each returns the commit's error when it fails (KM_EFULL, KM_EUNAVAIL,
 * with a message that says what to fix), never before the writer has
 * tried. A caller finding control_queue entries ahead of it while commits
 * fail gets the last error at once instead of waiting for room. */

/* Inserts p, creating or reviving its target "probe//<name>". Sets p->id,
 * target_id, generation (1), create_us, update_us; p->source is kept.
 * A revived target starts clean: UNKNOWN since now, no last transition,
 * created_at now (what it was before belongs to what was deleted).
 * KM_EEXIST if the name is taken. */
int km_store_create_probe(struct km_store *s, struct km_probe *p,
			  struct km_error *err);
/* Replaces the definition of the probe named p->name. expected_generation
 * 0 means "any". A definition equal to the stored one (km_probe_spec_equal)
 * changes nothing: the generation stays, *changed (if not NULL) is false.
 * KM_ENOTFOUND; KM_EPRECOND for a generation mismatch or a config probe
 * when !allow_config. Fills the store-kept fields of p. */
int km_store_update_probe(struct km_store *s, struct km_probe *p,
			  int64_t expected_generation, bool allow_config,
			  bool *changed, struct km_error *err);
/* Deletes the probe and its target (history is kept), recording the
 * transition to KM_STATE_DELETED with cause in the same transaction. */
int km_store_delete_probe(struct km_store *s, const char *name,
			  bool allow_config, const char *cause,
			  struct km_error *err);
/* Makes the config probes in the database exactly probes[0..n): creates,
 * updates (when changed), takes over API probes of the same name (logged),
 * and deletes config probes no longer listed (each deletion a transition).
 * One transaction. */
int km_store_sync_config_probes(struct km_store *s, struct km_probe *probes,
				size_t n, struct km_error *err);
/* Creates the target t->name if it does not exist (reviving a deleted one)
 * and sets t->id. Identity fields come from the name. A new target is
 * created as of t->created_us if set (a backfill of older history), else
 * now; results before a target's creation are not its current health. */
int km_store_ensure_target(struct km_store *s, struct km_target *t,
			   struct km_error *err);
/* km_store_ensure_target for t[0..n) in one transaction: a source that
 * learns of many objects at once (an informer's first list) pays one
 * commit. All or none: on an error no target of the batch is made, and
 * err names the one that failed. */
int km_store_ensure_targets(struct km_store *s, struct km_target *t, size_t n,
			    struct km_error *err);
/* One change a source makes to its targets: the live target t.name
 * deleted (delete_cause set; none of that name is no error), then made or
 * updated (make) as km_store_ensure_target does — both for an object
 * replaced under its name. */
struct km_target_change {
	struct km_target t; /* t.id is set when made */
	const char *delete_cause;
	bool make;
};
/* Told, on the writer thread, that an asynchronous write is done: rc 0
 * once it is committed, else undone with err saying why. It must be quick
 * and must not call the store (an event loop's owner wakes its loop). */
typedef void (*km_store_done_fn)(void *arg, int rc, const struct km_error *err);
/* Applies c[0..n) in one transaction, all or none, without waiting for
 * it: for an event loop, which must not wait for the disk. done(arg, …)
 * follows; until then c and its strings stay the caller's and untouched.
 * These do not wait for room in the control queue: the caller keeps one
 * (or a few) in flight. 0, KM_ENOMEM, or KM_EUNAVAIL when the store is
 * closing; done is called only after 0. */
int km_store_change_targets(struct km_store *s, struct km_target_change *c,
			    size_t n, km_store_done_fn done, void *arg);
/* Deletes the live target name — an object its source saw go — recording
 * the transition to KM_STATE_DELETED with cause; its history stays.
 * KM_ENOTFOUND if no live target has that name; KM_EINVAL for a defined
 * probe's target (DeleteProbe deletes those; a pod's probe mirrored has
 * none, and its target is deleted here). */
int km_store_delete_target(struct km_store *s, const char *name,
			   const char *cause, struct km_error *err);

/* ---- the audit trail ----------------------------------------------------- */

/* One call worth remembering: a change, or a refusal. Strings are copied
 * when queued. */
struct km_audit_event {
	int64_t id; /* assigned by the store */
	int64_t at_us;
	const char *identity; /* "" = anonymous */
	const char *by;       /* cert, token, local, none */
	const char *peer;
	const char *method;
	const char *object;
	int code; /* the gRPC status code answered */
	const char *message;
};

/* Writes e and returns after its commit (a change is on record before its
 * answer leaves). */
int km_store_audit(struct km_store *s, const struct km_audit_event *e,
		   struct km_error *err);
/* Queues e without waiting (a refusal). At most KM_STORE_AUDIT_QUEUE_MAX
 * queued (those waiting for a commit that failed included): beyond,
 * dropped and counted (audit_dropped): a flood of refused calls must not
 * grow memory. KM_EFULL then; KM_EUNAVAIL once closing. */
#define KM_STORE_AUDIT_QUEUE_MAX 10000
int km_store_add_audit(struct km_store *s, const struct km_audit_event *e);

/* ---- recoveries ---------------------------------------------------------- */

/* A recovery (struct km_recovery) is a row of its own with a history of
 * events: every change of it — its creation too — appends one event in the
 * same transaction, numbered by a seq that is never reused
 * (WatchRecoveries resumes by it). Writes are synchronous (an
 * acknowledgement never leaves before the row is on disk) or, for an
 * event loop, asynchronous with a callback after the commit. The
 * recovery listener is told of every committed event. Nothing here
 * judges whether an action is wise (service/recovery/ does): the store
 * keeps phases moving forward only as far as a final phase is final.
 * Strings are stored whole, however long (the API bounds them). */

/* Records a new recovery and its first event. In: r->target (the full
 * name of a live target), action, phase (0 or REQUESTED; SKIPPED or
 * DRY_RUN for a recovery decided at once), reason, requester, policy,
 * idempotency_key, dry_run, force, attempts, skip_rule, last_error,
 * http_status, cause_seq, not_before_us, target_uid ("" = the target's
 * uid now), created_us (0 = now). Sets r->id, seq, target_id, cluster
 * (and target_uid when empty: in a), created_us and updated_us; the
 * event's message is r->last_error. Returns after the commit, the
 * listener told.
 *
 * A non-empty idempotency_key already recorded: nothing is written,
 * *existed (if not NULL) is true and *r becomes that recovery, its strings
 * in a (whatever else r asked — compare if it matters). Otherwise *existed
 * is false.
 *
 * KM_ENOTFOUND: no live target of that name (the message names it);
 * KM_EINVAL: an action or first phase out of range; KM_EFULL,
 * KM_EUNAVAIL: as the synchronous writes above. */
int km_store_create_recovery(struct km_store *s, struct km_recovery *r,
			     struct km_arena *a, bool *existed,
			     struct km_error *err);

/* km_store_create_recovery without waiting, for an event loop: 0, and
 * done(arg, rc, err) follows on the writer thread after the commit (r
 * and *existed filled as the synchronous call fills them) or the failure
 * (r untouched); until then r, its strings and a are the writer's. Or,
 * at once: KM_EINVAL (no target, an action or first phase out of range),
 * KM_ENOMEM, KM_EUNAVAIL (closing) — then done is not called. */
int km_store_create_recovery_async(struct km_store *s, struct km_recovery *r,
				   struct km_arena *a, bool *existed,
				   km_store_done_fn done, void *arg);

/* One change of a recovery: one event, and its row updated to match, in
 * one transaction. Every field but id may be left zero ("unchanged"). */
struct km_recovery_update {
	int64_t id;
	int expected_phase;    /* KM_EPRECOND unless it is in it; 0: any */
	int phase;             /* the phase reached; 0: unchanged */
	int32_t attempts;      /* > 0: set; 0: unchanged (they only grow) */
	int32_t http_status;   /* of the answer; 0: unchanged; < 0: none
				  came (cleared to 0) */
	const char *message;   /* last_error; NULL: unchanged ("" clears) */
	const char *skip_rule; /* NULL: unchanged (with SKIPPED) */
	int64_t not_before_us; /* > 0: set; < 0: cleared; 0: unchanged */
	int64_t at_us;         /* the change's time; 0: now */
	/* Set once committed: the event's seq, and at_us if it was 0. */
	int64_t seq;
};
/* Applies u. Reaching DISPATCHED sets dispatched_at (the latest attempt's
 * time), SUCCEEDED or FAILED finished_at, VERIFIED or NOT_RECOVERED
 * verified_at, each to the change's time; a final phase clears
 * not_before. The event carries the recovery's phase, attempts,
 * http_status and last_error as the change leaves them.
 * KM_ENOTFOUND: no recovery u->id. KM_EPRECOND: it is in a final phase
 * (nothing changes it any more), or not in u->expected_phase — the message
 * says which phase it is in. KM_EINVAL: a phase out of range. */
int km_store_update_recovery(struct km_store *s, struct km_recovery_update *u,
			     struct km_error *err);
/* The same without waiting, for an event loop: done(arg, rc, err) follows
 * on the writer thread after the commit (with u->seq set) or the failure,
 * after the listener was told. Until then u and its strings stay the
 * caller's and untouched. Never waits for room in the control queue (the
 * caller bounds how many it has in flight). 0, KM_ENOMEM, or KM_EUNAVAIL
 * when the store is closing; done is called only after 0. */
int km_store_update_recovery_async(struct km_store *s,
				   struct km_recovery_update *u,
				   km_store_done_fn done, void *arg);

/* ---- storms --------------------------------------------------------------- */

/* Records a storm's start (m->group, name, cluster, unhealthy, total,
 * share_pct, why, started_us: 0 = now) without waiting; copies what it
 * needs. With done, m->id is set before done(arg, …) is called, and m
 * stays the caller's until then; without (NULL), m may go at once. 0, KM_EINVAL (no name, an unknown
 * group), KM_ENOMEM, KM_EUNAVAIL (the store is closing); done is called
 * only after 0. */
int km_store_begin_storm_async(struct km_store *s, struct km_storm *m,
			       km_store_done_fn done, void *arg);
/* Records the end of the storm on in m's group (group, name, cluster):
 * m->ended_us (0 = now), m->refused (the automatic recoveries it
 * refused) and m->end_note ("" when the share fell back). A group has at
 * most one storm on, and the writer runs these in order, so an end
 * queued after its start finds it. Copies what it needs; done may be
 * NULL; its rc is KM_ENOTFOUND when none is on. 0, KM_EINVAL, KM_ENOMEM,
 * KM_EUNAVAIL. */
int km_store_end_storm_async(struct km_store *s, const struct km_storm *m,
			     km_store_done_fn done, void *arg);
/* Ends every storm still on, now, with note, and waits: what a daemon
 * starting does with the storms of one that stopped. *n (may be NULL):
 * how many. */
int km_store_end_storms(struct km_store *s, const char *note, size_t *n,
			struct km_error *err);

/* Called on the writer thread after the commit of each recovery event, in
 * seq order, before the synchronous callers of that batch are woken and
 * its asynchronous ones told; never for an event whose transaction
 * failed. e and its strings are valid during the call only
 * (km_recovery_event_dup keeps a copy). Must not block and must not call
 * into the store. */
typedef void (*km_store_recovery_fn)(void *arg,
				     const struct km_recovery_event *e);
/* Sets (or, with NULL, clears) the one recovery listener. Any thread;
 * takes effect from the next batch. */
void km_store_set_recovery_listener(struct km_store *s, km_store_recovery_fn fn,
				    void *arg);

/* ---- reads ------------------------------------------------------------ */

int km_reader_open(struct km_store *s, struct km_reader **out,
		   struct km_error *err);
void km_reader_close(struct km_reader *r);
/* Queries running past deadline (CLOCK_MONOTONIC ns; 0 = none) are
 * interrupted and fail with KM_EDEADLINE. */
void km_reader_set_deadline(struct km_reader *r, int64_t deadline_mono_ns);

/* A read transaction around several queries: they all see one snapshot of
 * the database, and pay for one read lock instead of one each. Every
 * km_reader_begin that returns 0 must be paired with km_reader_end, on
 * error paths too. Without them each query is its own transaction. */
int km_reader_begin(struct km_reader *r, struct km_error *err);
void km_reader_end(struct km_reader *r);

int km_reader_get_probe(struct km_reader *r, const char *name,
			struct km_arena *a, struct km_probe *out,
			struct km_error *err);

typedef bool (*km_probe_match_fn)(const struct km_probe *p, void *arg);
/* Probes with name > after (NULL = from the start) in name order that
 * match (NULL = all), at most limit. *more says whether any follow. */
int km_reader_list_probes(struct km_reader *r, const char *after, size_t limit,
			  km_probe_match_fn match, void *arg,
			  struct km_arena *a, struct km_probe **out, size_t *n,
			  bool *more, struct km_error *err);

/* How many probes there are (config and API), or, with created_by, how
 * many that user created through the API: for the API's quotas. */
int km_reader_count_probes(struct km_reader *r, const char *created_by,
			   int64_t *n, struct km_error *err);

/* A live target by full name; KM_ENOTFOUND otherwise. */
int km_reader_get_target(struct km_reader *r, const char *name,
			 struct km_arena *a, struct km_target *out,
			 struct km_error *err);
/* By full name, deleted targets included (their history stays). */
int km_reader_find_target(struct km_reader *r, const char *name,
			  struct km_arena *a, struct km_target *out,
			  struct km_error *err);
/* The target of any id, deleted ones included. */
int km_reader_get_target_by_id(struct km_reader *r, int64_t id,
			       struct km_arena *a, struct km_target *out,
			       struct km_error *err);

struct km_target_filter {
	int kind;                                            /* 0 = any */
	int state;                                           /* 0 = any */
	const char *cluster;                                 /* NULL = any */
	bool (*match)(const struct km_target *t, void *arg); /* NULL = all */
	void *arg;
};
/* Live targets with id > after_id in id order. */
int km_reader_list_targets(struct km_reader *r,
			   const struct km_target_filter *f, int64_t after_id,
			   size_t limit, struct km_arena *a,
			   struct km_target **out, size_t *n, bool *more,
			   struct km_error *err);

enum km_outcome {
	KM_OUTCOME_ANY = 0,
	KM_OUTCOME_SUCCESS = 1,
	KM_OUTCOME_FAILURE = 2
};

/* A page of one target's history in [from_us, to_us). Rows are ordered by
 * (time, id), newest first unless oldest_first; the cursor is the (time,
 * id) of the last row of the previous page. */
struct km_history_query {
	int64_t target_id;
	int64_t from_us; /* INT64_MIN = unbounded */
	int64_t to_us;   /* INT64_MAX = unbounded */
	int outcome;     /* enum km_outcome; results only */
	bool oldest_first;
	bool has_cursor;
	int64_t cursor_us, cursor_id;
	size_t limit;
};

int km_reader_query_results(struct km_reader *r,
			    const struct km_history_query *q,
			    struct km_arena *a, struct km_result **out,
			    size_t *n, bool *more, struct km_error *err);
int km_reader_query_transitions(struct km_reader *r,
				const struct km_history_query *q,
				struct km_arena *a, struct km_transition **out,
				size_t *n, bool *more, struct km_error *err);
/* The newest result of a target; KM_ENOTFOUND if it has none. */
int km_reader_last_result(struct km_reader *r, int64_t target_id,
			  struct km_arena *a, struct km_result *out,
			  struct km_error *err);
/* How many results in a row, newest first, share the newest's outcome
 * (counting stops at cap). */
int km_reader_consecutive(struct km_reader *r, int64_t target_id, int cap,
			  int *count, struct km_error *err);
/* Transitions of every target with seq > after, in seq order, at most
 * limit, each with its target's name and labels filled in (for replaying
 * a watch stream). */
int km_reader_transitions_after(struct km_reader *r, int64_t after,
				size_t limit, struct km_arena *a,
				struct km_transition **out, size_t *n,
				bool *more, struct km_error *err);
/* The lowest seq still stored (0 if none) and the highest ever assigned
 * (0 if none), to tell whether retention removed what a watcher missed. */
int km_reader_transition_bounds(struct km_reader *r, int64_t *min_kept,
				int64_t *max_ever, struct km_error *err);
int km_reader_get_transition(struct km_reader *r, int64_t seq,
			     struct km_arena *a, struct km_transition *out,
			     struct km_error *err);

/* A page of the audit trail, newest first, in [from_us, to_us), with
 * optional identity and method filters ("" = any); the cursor is the (at,
 * id) of the previous page's last row. */
struct km_audit_query {
	int64_t from_us, to_us;
	const char *identity;
	const char *method;
	bool has_cursor;
	int64_t cursor_us, cursor_id;
	size_t limit;
};
int km_reader_list_audit(struct km_reader *r, const struct km_audit_query *q,
			 struct km_arena *a, struct km_audit_event **out,
			 size_t *n, bool *more, struct km_error *err);

/* ---- reads: history as runs, and rollups (issue 12) ------------------- */

/* Most runs one page of km_reader_query_runs holds. */
#define KM_RUNS_PAGE_MAX 1000

/* Where a run of a history page comes from: a row of `runs`, or a row of
 * `results` (written before schema 6, not converted yet) shown as a run of
 * one. The two tables number their rows separately: a run is known by its
 * source and id together. */
enum km_run_src { KM_RUN_SRC_RESULT = 0, KM_RUN_SRC_RUN = 1 };

/* One run of a history page. Strings live in the caller's arena. */
struct km_run_row {
	int src; /* enum km_run_src */
	int64_t id;
	int64_t target_id;
	bool success;
	int error_class; /* enum km_error_class */
	int32_t status_code;
	int64_t first_us, last_us; /* its first and last result's start */
	int64_t count;             /* >= 1; 1 for a result's row */
	int64_t dur_min_us, dur_max_us, dur_sum_us;
	/* A failure's first and last message (a result's row: its message,
	 * both); NULL: none. */
	const char *first_message, *last_message;
};

/* A page of one target's history as runs: those that overlap [from_us,
 * to_us) (first_us < to_us and last_us >= from_us), the rows of `runs` and
 * what is left of `results` merged in one order, by (first_us, src, id):
 * oldest first when oldest_first, else the reverse. A run that began
 * before from_us and lasts into it comes first (oldest first) or last: a
 * target's runs do not overlap, so only the one that began last before
 * from_us can. outcome (enum km_outcome) keeps only success or failure
 * runs. The cursor is the (first_us, src, id) of the previous page's last
 * run: a page starts strictly after it, so pages neither skip nor repeat a
 * run (while the writer converts results into runs, a result converted
 * between two pages may be seen twice or not at all: it moves). limit 0 or
 * over KM_RUNS_PAGE_MAX is that maximum. Each outcome has its index; a
 * page costs O(limit) rows whatever its depth. A row that cannot be a run
 * (a count below 1, times or durations out of order) is KM_ECORRUPT naming
 * the target and the row. */
struct km_runs_query {
	int64_t target_id;
	int64_t from_us; /* INT64_MIN = unbounded */
	int64_t to_us;   /* INT64_MAX = unbounded */
	int outcome;     /* enum km_outcome */
	bool oldest_first;
	bool has_cursor;
	int64_t cursor_us;
	int cursor_src; /* enum km_run_src */
	int64_t cursor_id;
	size_t limit;
};
/* *out in a (NULL on error), *n of them, *more when another page
 * follows. */
int km_reader_query_runs(struct km_reader *r, const struct km_runs_query *q,
			 struct km_arena *a, struct km_run_row **out, size_t *n,
			 bool *more, struct km_error *err);

/* Most steps one km_reader_rollups call returns. */
#define KM_ROLLUP_STEPS_MAX 10000

/* One target's results counted per step over [from_us, to_us), from its
 * rollups: step i is [from_us + i·step_us, from_us + (i+1)·step_us), the
 * last one cut at to_us; a minute counts in the step its start falls in.
 * from_us and step_us are whole minutes (multiples of KM_MINUTE_US);
 * ceil((to_us - from_us) / step_us) steps, at most KM_ROLLUP_STEPS_MAX.
 *
 * Where it reads: hour rows (rollup_hours) for the whole hours of a range
 * whose steps are whole, aligned hours (from_us and step_us multiples of
 * KM_HOUR_US), minute rows (rollup_minutes) otherwise — except before the
 * target's oldest minute row, where retention has removed the minutes and
 * the hours are all that is left: there an hour that overlaps the range
 * counts whole, in the step of its start (or step 0, for the hour holding
 * from_us). Each blob needed is read once; the cost is O(rows read + steps),
 * not O(results).
 *
 * A blob that does not unpack is KM_ECORRUPT naming the target, the table
 * and the row; KM_EINVAL for a query out of the rules above. */
struct km_rollup_query {
	int64_t target_id;
	int64_t from_us, to_us;
	int64_t step_us;
};
struct km_rollup_series {
	struct km_rollup_slot *steps; /* in the arena */
	size_t n;
	/* Steps before this may hold an hour counted whole where it does
	 * not fit them (its minutes were gone); INT64_MIN when none does. */
	int64_t coarse_until_us;
};
int km_reader_rollups(struct km_reader *r, const struct km_rollup_query *q,
		      struct km_arena *a, struct km_rollup_series *out,
		      struct km_error *err);
/* The q-quantile (0..1) of a slot's durations, interpolated within its
 * bucket and clamped to the bounds of its lowest and highest non-empty
 * buckets (a rollup keeps no minimum or maximum; the last bucket's, from
 * 26.2 s on, is its lower bound). -1 when the slot counts nothing. */
int64_t km_rollup_slot_quantile(const struct km_rollup_slot *s, double q);

/* ---- reads: recoveries -------------------------------------------------- */

/* A recovery by id, with its newest event's seq. KM_ENOTFOUND. Strings in
 * a. */
int km_reader_get_recovery(struct km_reader *r, int64_t id, struct km_arena *a,
			   struct km_recovery *out, struct km_error *err);

/* The recovery recorded with that (non-empty) idempotency key.
 * KM_ENOTFOUND. Strings in a. */
int km_reader_get_recovery_by_key(struct km_reader *r, const char *key,
				  struct km_arena *a, struct km_recovery *out,
				  struct km_error *err);

/* Most recoveries a list or replay call returns. */
#define KM_RECOVERY_PAGE_MAX 1000

/* A page of recoveries, newest (highest id) first. Filters: NULL or 0 is
 * any; the time range [from_us, to_us) is on created_at (to_us 0 =
 * unbounded). before_id (0 = from the newest) continues after the last id
 * of the previous page; limit 0 or over KM_RECOVERY_PAGE_MAX is that
 * maximum. Each filter has its index. */
struct km_recovery_query {
	const char *target; /* full name */
	const char *cluster;
	int action;
	int phase;
	const char *requester;
	int64_t from_us, to_us;
	int64_t before_id;
	size_t limit;
};
/* *out in a, *n of them, *more when another page follows. */
int km_reader_list_recoveries(struct km_reader *r,
			      const struct km_recovery_query *q,
			      struct km_arena *a, struct km_recovery **out,
			      size_t *n, bool *more, struct km_error *err);
/* Recovery events with seq > after_seq, in seq order, of the recoveries of
 * target (full name; NULL = all), at most limit (0 or over
 * KM_RECOVERY_PAGE_MAX is that maximum): what the recovery listener was
 * told, for a WatchRecoveries replay. *more when more follow. */
int km_reader_recovery_events_after(struct km_reader *r, int64_t after_seq,
				    const char *target, size_t limit,
				    struct km_arena *a,
				    struct km_recovery_event **out, size_t *n,
				    bool *more, struct km_error *err);
/* Every recovery not in a final phase (km_recovery_phase_final), oldest
 * first: what a restart must pick up again. Not paged: the engine bounds
 * how many are in flight. */
int km_reader_open_recoveries(struct km_reader *r, struct km_arena *a,
			      struct km_recovery **out, size_t *n,
			      struct km_error *err);

/* Most storms a list returns. */
#define KM_STORM_PAGE_MAX 1000

/* A page of storms, newest first. on_only: those still on; cluster NULL:
 * any; [from_us, to_us) (0: unbounded) keeps the storms that overlap it.
 * before_id and limit page as km_recovery_query's do. */
struct km_storm_query {
	bool on_only;
	const char *cluster;
	int64_t from_us, to_us;
	int64_t before_id;
	size_t limit;
};
int km_reader_list_storms(struct km_reader *r, const struct km_storm_query *q,
			  struct km_arena *a, struct km_storm **out, size_t *n,
			  bool *more, struct km_error *err);

/* What GetHealth shows of a live target, read from one snapshot: the
 * target (km_reader_get_target), its newest result (km_reader_last_result)
 * and streak (km_reader_consecutive, counting stops at cap), and its last
 * transition (km_reader_get_transition of target.last_transition_seq; none
 * when that is 0 or retention removed it). KM_ENOTFOUND as
 * km_reader_get_target. Strings live in a. */
struct km_target_health {
	struct km_target target;
	bool has_last;
	struct km_result last;
	int consecutive; /* 0 without a last result */
	bool has_transition;
	struct km_transition transition;
};
int km_reader_target_health(struct km_reader *r, const char *name, int cap,
			    struct km_arena *a, struct km_target_health *out,
			    struct km_error *err);

#endif
