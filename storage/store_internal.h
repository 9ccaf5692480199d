/*
 * Internals shared by the files of the storage module. Not a public
 * contract: only the storage sources include this.
 */
#ifndef KM_STORE_INTERNAL_H
#define KM_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "km_list.h"
#include "km_store.h"

/* A synchronous write: runs on the writer thread inside the batch's
 * transaction (under a savepoint of its own), and its caller is woken after
 * the commit. */
struct sync_op {
	int (*fn)(struct km_store *s, void *arg, struct km_error *err);
	void *arg;
	int rc;
	struct km_error err;
	bool done;
	/* Set: nobody waits; the writer calls on_done after the batch and
	 * frees the op (with its ctl_op, one allocation). */
	km_store_done_fn on_done;
	void *done_arg;
};

struct result_slot {
	struct km_result r; /* r.message points at msg */
	char *msg;          /* owned; NULL when empty */
};

/* An entry of the control queue: a transition (malloc'd with its copy,
 * freed by the writer), a synchronous op (on its caller's stack), or an
 * asynchronous one (malloc'd with its sync_op, freed by the writer). */
struct ctl_op {
	struct km_list node;
	struct sync_op *sync;         /* NULL: a transition or an audit event */
	struct km_transition *t;      /* km_transition_dup, owned */
	struct km_audit_event *audit; /* one malloc'd block, owned */
};

enum writer_stmt {
	W_INSERT_RESULT,
	W_INSERT_TRANSITION,
	W_UPDATE_TARGET_STATE,
	W_DROP_TRANSITION,
	W_RETAIN_RESULTS,
	W_RETAIN_TRANSITIONS,
	W_INSERT_AUDIT,
	W_RETAIN_AUDIT,
	W_UPSERT_TARGET,
	W_RETAIN_RECOVERY_EVENTS,
	W_RETAIN_RECOVERIES,
	W_RETAIN_STORMS,
	W_STMT_COUNT
};

struct km_store {
	struct km_store_options o;
	char *path;
	char *lock_path; /* "<path>.lock" (of the real path when it exists) */
	int lock_fd;     /* holds the flock; -1 before */
	sqlite3 *db;     /* the writer's connection */
	sqlite3_stmt *stmt[W_STMT_COUNT];
	int schema_version;

	pthread_t writer;
	bool writer_started;
	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* writer waits for work */
	pthread_cond_t room_cv; /* control producers wait for room */
	pthread_cond_t done_cv; /* sync callers wait for their commit */
	bool stopping;
	bool sweep_requested;    /* km_store_retention_sweep asked */
	bool sweeping;           /* a sweep is under way */
	bool writer_boosted;     /* writer thread only: SCHED_OTHER */
	bool writer_sched_fixed; /* writer thread only: cannot change it */
	bool writer_idle;        /* under mu: the writer is SCHED_IDLE now */

	struct result_slot *ring; /* results, drop-oldest when full */
	size_t ring_cap, ring_head, ring_count;
	int64_t ring_since; /* mono ns: when the ring last became
	                                  non-empty */
	struct km_list ctl; /* struct ctl_op: transitions and sync
	                                  ops, in order */
	size_t ctl_count;
	size_t audit_queued;           /* audit events in ctl */
	km_store_listener_fn listener; /* told of each committed transition */
	void *listener_arg;
	/* Writer thread only: the transitions of the batch being written,
	 * announced after its commit (copies, owned). */
	struct km_transition **announce;
	size_t n_announce, announce_cap;
	/* The same for recovery events (km_store_note_recovery). */
	km_store_recovery_fn recovery_listener; /* under mu */
	void *recovery_listener_arg;
	struct km_recovery_event **rannounce;
	size_t n_rannounce, rannounce_cap;
	struct result_slot *batch_res; /* the writer's batch, ring_cap rows */
	size_t sync_queued;            /* under mu: sync ops in ctl */
	size_t async_queued;           /* under mu: async ops in ctl */

	/* Storage faults. Writer thread only, except what says "mu". */
	int fail_streak;         /* commit attempts failed in a row */
	int64_t backoff_ns;      /* before the next attempt */
	int64_t retry_at;        /* mono ns of the next attempt (mu) */
	bool unwritable;         /* as last told to on_health */
	struct km_error fault;   /* the last failure (mu) */
	int64_t fault_since;     /* mono ns of the streak's first failure */
	int64_t fault_log_at;    /* no "still failing" line before */
	uint64_t fault_failures; /* failures since the last line */
	uint64_t fault_dropped;  /* results dropped since the last line */
	uint64_t fault_total_failures, fault_total_dropped; /* the streak */

	struct km_fold *fold;     /* writer thread only: store_fold.c; NULL with
	                         raw_results */
	int64_t fold_log_at;      /* mono ns: no "results not kept" before */
	int64_t convert_retry_at; /* mono ns: no conversion step before */
	int64_t sweep_cursor;     /* writer thread: SWEEP_HISTORY's target */

	struct km_store_stats stats; /* under mu */
};

/* ---- store_fold.c: the writer's probe history (runs and rollups) ---- */

/* Prepares its statements and finds whether schema 5's raw results are
 * left to convert; stop frees everything (km_fold_flush(all) and a commit
 * first, to keep what is open). */
int km_fold_start(struct km_store *s, struct km_error *err);
void km_fold_stop(struct km_store *s);
/* The writer's clock (options.now_us, else the real one), epoch µs. */
int64_t km_fold_now(const struct km_store *s);
/* Inside a batch: folds r; a deleted target's run and hour end; targets
 * written (km_fold_flush); then the pending
 * one-shot rows, last; km_fold_committed says how the batch ended. Each 0
 * or an error (an SQLite one through km_store_sqlite_err, or KM_ENOMEM,
 * KM_EFULL for a result past max_open targets). */
int km_fold_result(struct km_store *s, const struct km_result *r,
		   struct km_error *err);
int km_fold_end(struct km_store *s, int64_t target_id, struct km_error *err);
enum km_fold_flush {
	KM_FOLD_DUE,    /* the targets due (at most a batch's worth) */
	KM_FOLD_ALL,    /* every open target that changed (a flush) */
	KM_FOLD_END_ALL /* every open target, ended (the stop) */
};
int km_fold_flush(struct km_store *s, enum km_fold_flush what,
		  struct km_error *err);
int km_fold_write_pending(struct km_store *s, struct km_error *err);
void km_fold_committed(struct km_store *s, bool ok);
/* The earliest time (writer clock) a target comes due; INT64_MAX: none.
 * How many targets have history open. */
int64_t km_fold_next_due(const struct km_store *s);
size_t km_fold_open_count(const struct km_store *s);
/* Converts the oldest raw results in a transaction of its own;
 * *converted 0 when none was left (converting then turns false). */
int km_fold_convert_step(struct km_store *s, size_t *converted,
			 struct km_error *err);
bool km_fold_converting(const struct km_store *s);
/* Retention of runs and rollups for the next `targets` targets with ids
 * above *cursor, in a transaction of its own: rows deleted; *cursor is
 * where the next step starts, 0 when the sweep has passed every target
 * (or failed: logged, and tried again at the next sweep). */
int km_fold_retain_step(struct km_store *s, int64_t *cursor, int targets);

/* store_migrate.c: brings the schema up to this binary's version. */
int km_store_migrate(struct km_store *s, struct km_error *err);

/* store_writer.c: prepares the writer's statements and starts its thread;
 * stop commits what is queued, joins the thread and finalizes them. */
int km_store_writer_start(struct km_store *s, struct km_error *err);
void km_store_writer_stop(struct km_store *s);

/* On the writer thread, inside a batch (a sync op may call it): inserts t,
 * sets t->seq and applies it to its target's row; the transition is
 * announced after the commit. A transition of a deleted target is not
 * kept (*written false, t->seq 0). 0 or an SQLite error code. */
int km_store_write_transition(struct km_store *s, struct km_transition *t,
			      bool *written);

/* On the writer thread, inside an op (store_recovery.c): keeps e, a
 * km_recovery_event_dup block the store now owns, to be told to the
 * recovery listener after the batch's commit — or freed with the op or the
 * batch that fails. 0, or SQLITE_NOMEM (e freed). */
int km_store_note_recovery(struct km_store *s, struct km_recovery_event *e);

/* fn(s, arg) as km_store_run_sync runs it, without waiting: on_done(
 * done_arg, rc, err) follows on the writer thread, after the batch's
 * commit. Never waits for room: the caller bounds how many it has queued.
 * KM_ENOMEM, or KM_EUNAVAIL when the store is closing (on_done is not
 * called). */
int km_store_run_async(struct km_store *s,
		       int (*fn)(struct km_store *s, void *arg,
				 struct km_error *err),
		       void *arg, km_store_done_fn on_done, void *done_arg);
/* Runs fn on the writer thread and waits for its commit. */
int km_store_run_sync(struct km_store *s,
		      int (*fn)(struct km_store *s, void *arg,
				struct km_error *err),
		      void *arg, struct km_error *err);

/* Writes one page (the header's user_version, rewritten with its own
 * value) and commits: whether the database takes writes at all. Start-up
 * and the writer's retries while commits fail, when nothing is queued. */
int km_store_write_check(sqlite3 *db, struct km_error *err);

/* sqlite helpers */

/* Sets err from an SQLite result code: what failed, and for the storage
 * faults a person fixes (km_store_is_fault) what to do. Codes: SQLITE_FULL
 * is KM_EFULL; SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_BUSY,
 * ... are KM_EUNAVAIL; SQLITE_INTERRUPT is KM_EDEADLINE; corruption is
 * KM_ECORRUPT; the rest (a row SQLite refused: a bug) KM_EIO. */
int km_store_sqlite_err(sqlite3 *db, int rc, struct km_error *err,
			const char *what);
/* Whether rc is a fault of the storage (disk, file system, locks, memory)
 * rather than of what was written: a write failing with one may succeed
 * when retried unchanged. */
bool km_store_is_fault(int rc);
/* sqlite3_exec; errors as km_store_sqlite_err, with SQLite's message. */
int km_store_exec(sqlite3 *db, const char *sql, struct km_error *err);
int km_store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st,
		     struct km_error *err);

/* NUL-separated string lists: "a\0b\0". The encoders malloc; the decoders
 * allocate in the arena. */
int km_store_list_encode_kv(const struct km_kv *kv, size_t n, char **out,
			    size_t *len);
int km_store_list_encode_strs(const char *const *v, size_t n, char **out,
			      size_t *len);
int km_store_list_decode_kv(struct km_arena *a, const void *blob, size_t len,
			    struct km_kv **out, size_t *n);
int km_store_list_decode_strs(struct km_arena *a, const void *blob, size_t len,
			      const char ***out, size_t *n);

/* Column text copied into the arena ("" for NULL). */
const char *km_store_col_text(struct km_arena *a, sqlite3_stmt *st, int col);

/* Probe rows: km_store_probe_select is "SELECT <columns> FROM probes", to be
 * completed with a WHERE clause; km_store_probe_from_row decodes its row. */
extern const char *const km_store_probe_select;
int km_store_probe_from_row(struct km_arena *a, sqlite3_stmt *st,
			    struct km_probe *p);

/* Target rows shared by the writer (ensure) and readers. */
int km_store_target_ensure(struct km_store *s, struct km_target *t,
			   int64_t now_us, struct km_error *err);
/* Deletes the target target_id: the transition to KM_STATE_DELETED, with
 * cause, which marks the row deleted (km_store_write_transition). Its
 * history stays; a target deleted already is left as it is. On the writer
 * thread, inside the caller's op. */
int km_store_target_delete(struct km_store *s, int64_t target_id,
			   const char *cause, struct km_error *err);

/* ---- store_read.c, for the reads of other files (store_recovery.c) ---- */

/* Statements a reader prepares on first use, by slot, and keeps until
 * km_reader_close: a slot always holds the same SQL (its caller's rule).
 * Each file that has them owns a range of 8 slots from its base. */
#define KM_LAZY_RECOVERY 0      /* store_recovery.c */
#define KM_LAZY_HISTORY 8       /* store_history.c: runs, latency */
#define KM_LAZY_AVAILABILITY 16 /* store_availability.c */
#define KM_LAZY_ROLLUPS 24      /* store_rollups_read.c */
#define KM_READER_LAZY_STMTS 32
/* The reader's connection, for statements prepared on each call. */
sqlite3 *km_reader_db(struct km_reader *r);
int km_reader_lazy_stmt(struct km_reader *r, unsigned slot, const char *sql,
			sqlite3_stmt **st, struct km_error *err);
/* Resets and unbinds st (ending its read transaction) and turns a step's
 * result into 0 or a km_err code (what names the query). */
int km_reader_done(struct km_reader *r, sqlite3_stmt *st, int rc,
		   struct km_error *err, const char *what);

/* A page of rows (km_reader_page). */
#define KM_READ_PAGE_SKIP 1 /* a decoder's "not this row" */
struct km_read_page {
	sqlite3_stmt *st; /* bound; reset here */
	const char *what; /* "list probes", for errors */
	size_t limit;     /* rows wanted; one more says "more" */
	size_t size;      /* of one decoded row */
	/* Decodes the statement's current row into row (arena strings):
	 * 0, KM_READ_PAGE_SKIP, or a km_err code with err filled. */
	int (*decode)(struct km_arena *a, sqlite3_stmt *st, void *row,
		      void *arg, struct km_error *err);
	void *arg;
	/* Rows may be skipped (a filter): then every row is decoded before
	 * it counts, and the array grows as rows are kept. Otherwise the
	 * statement's LIMIT bounds the rows, the array is taken whole, and
	 * the row past the limit is not decoded. */
	bool filtered;
};
/* Steps pg->st and decodes its rows into an arena array: *out (NULL on
 * error), *n, and *more when a row past the limit exists. */
int km_reader_page(struct km_reader *r, const struct km_read_page *pg,
		   struct km_arena *a, void **out, size_t *n, bool *more,
		   struct km_error *err);

#endif
