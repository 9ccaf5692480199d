/*
 * The writer's probe history (issue 12): every result folded into its
 * target's open run (km_runs) and open hour of rollups (km_open_hour, kept
 * as the run table's aux for the target), and the rows they become.
 *
 * All of it runs on the writer thread, inside the batch's transaction:
 *  - km_fold_result: a memory update for a steady result. A result of
 *    another outcome closes the run; one of a later hour closes the open
 *    hour; one of an earlier hour (a clock stepped back) is merged into
 *    its hour's stored rows. A target's first result after start-up opens
 *    its hour on what is stored of it (a restart within the hour).
 *  - km_fold_flush: targets whose flush is due (flush_us after they were
 *    last written) get their open run's row and their two rollup rows
 *    written; a target idle for KM_FOLD_IDLE_US leaves memory.
 *  - km_fold_end: a deleted target's run and hour, written and dropped.
 * What ends (a closed run, a closed hour, a late result) is a one-shot
 * row: it is queued as pending and written at the end of the batch, and
 * stays queued until a commit holds it — a failed commit loses no run.
 * What stays open is rewritten whole at its next flush, so a failed commit
 * only marks every open target unwritten (km_fold_committed).
 *
 * The conversion of schema 5's raw results (km_fold_convert_step) runs
 * in its own transactions between batches: the oldest rows of `results`,
 * folded into runs and rollups of their own, written, and deleted in the
 * same transaction — killed midway, it resumes where it stopped.
 */
#include <stdlib.h>
#include <string.h>

#include "km_log.h"
#include "km_open_hour.h"
#include "km_runs.h"
#include "km_time.h"
#include "store_internal.h"

/* A target without a result for this long leaves memory (its rows are
 * written): a run then ends there, and its next result starts another. */
#define KM_FOLD_IDLE_US (3600LL * 1000000)
/* Most due targets written in one batch: a start-up's 10,000 targets all
 * come due at once, and one transaction of them all would hold the write
 * lock for long. */
#define FLUSH_PER_BATCH 2000
/* Raw results converted in one transaction (its hours are held unpacked
 * meanwhile: at most 5 MB). */
#define CONVERT_STEP 1000

enum fold_stmt {
	F_INSERT_RUN,
	F_UPDATE_RUN,
	F_GET_MINUTES,
	F_GET_HOURS,
	F_PUT_MINUTES,
	F_PUT_HOURS,
	F_CONVERT_SELECT,
	F_CONVERT_DELETE,
	F_RESULTS_LEFT,
	F_RETAIN_TARGETS,
	F_RETAIN_RUNS,
	F_RETAIN_MINUTES,
	F_RETAIN_HOURS,
	F_STMT_COUNT
};

static const char *const fold_sql[F_STMT_COUNT] = {
	[F_INSERT_RUN] =
		"INSERT INTO runs (target_id, first_at, last_at, "
		"count, success, error_class, status_code, dur_min, "
		"dur_max, dur_sum, hist, first_message, last_message) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
		"?12, ?13)",
	/* By row id, and the run's identity too: a row id handed out in a
	 * transaction that failed may be another run's since. */
	[F_UPDATE_RUN] = "UPDATE runs SET last_at = ?3, count = ?4, dur_min = "
			 "?8, dur_max = ?9, dur_sum = ?10, hist = ?11, "
			 "first_message = ?12, last_message = ?13 WHERE id = "
			 "?14 AND target_id = ?1 AND first_at = ?2",
	[F_GET_MINUTES] = "SELECT blob FROM rollup_minutes WHERE target_id = "
			  "?1 AND hour = ?2",
	[F_GET_HOURS] = "SELECT blob FROM rollup_hours WHERE target_id = ?1 "
			"AND day = ?2",
	[F_PUT_MINUTES] = "INSERT OR REPLACE INTO rollup_minutes (target_id, "
			  "hour, blob) VALUES (?1, ?2, ?3)",
	[F_PUT_HOURS] = "INSERT OR REPLACE INTO rollup_hours (target_id, day, "
			"blob) VALUES (?1, ?2, ?3)",
	[F_CONVERT_SELECT] = "SELECT id, target_id, started_at, duration_us, "
			     "success, error_class, status_code, message FROM "
			     "results ORDER BY id LIMIT ?1",
	[F_CONVERT_DELETE] = "DELETE FROM results WHERE id <= ?1",
	[F_RESULTS_LEFT] = "SELECT 1 FROM results LIMIT 1",
	/* Retention goes target by target, each delete a range of the
	 * target's index: bounded work whatever the tables hold. Targets
	 * are never deleted (history outlives them), so every target with
	 * history is visited. */
	[F_RETAIN_TARGETS] = "SELECT id FROM targets WHERE id > ?1 ORDER BY id "
			     "LIMIT ?2",
	[F_RETAIN_RUNS] = "DELETE FROM runs WHERE target_id = ?1 AND first_at "
			  "< ?2 AND last_at < ?2",
	[F_RETAIN_MINUTES] = "DELETE FROM rollup_minutes WHERE target_id = ?1 "
			     "AND hour < ?2",
	[F_RETAIN_HOURS] = "DELETE FROM rollup_hours WHERE target_id = ?1 AND "
			   "day < ?2",
};

/* A row to write once: a closed run, a closed hour's rollups, or a late
 * result to merge into its hour's stored rows. */
struct pending {
	enum { P_RUN, P_ROWS, P_LATE } kind;
	struct km_run_write run;       /* P_RUN: owns its messages */
	struct km_open_hour_rows rows; /* P_ROWS: blobs point past this */
	struct km_result late;         /* P_LATE: no message */
};

/* An hour of a target's results being converted. */
struct conv_hour {
	int64_t target_id, hour;
	struct km_rollup_hour h;
};

struct km_fold {
	sqlite3_stmt *stmt[F_STMT_COUNT];
	struct km_runs *runs;
	struct km_rollup_scratch x;
	uint8_t in_minutes[KM_ROLLUP_PACK_MAX], in_hours[KM_ROLLUP_PACK_MAX];
	struct pending **pending;
	size_t n_pending, pending_cap;
	size_t committed_mark; /* pending[0..mark) were in the batch written */
	/* Conversion. */
	bool converting;       /* results rows may be left */
	struct km_runs *conv;  /* its open runs, across steps */
	int64_t conv_clock;    /* steps taken: conv's "time" */
	struct conv_hour **ch; /* the step's hours */
	size_t n_ch, ch_cap;
	int64_t *touched; /* the step's targets */
	size_t n_touched, touched_cap;
};

static void free_open_hour(void *aux)
{
	km_open_hour_free(aux);
}

static void mark_open_hour_changed(void *aux)
{
	km_open_hour_touch(aux);
}

int64_t km_fold_now(const struct km_store *s)
{
	return s->o.now_us ? s->o.now_us(s->o.now_arg) : km_now_us();
}

/* ---- rows ----------------------------------------------------------------- */

static int step_done(struct km_store *s, sqlite3_stmt *st, const char *what,
		     struct km_error *err)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return km_store_sqlite_err(s->db, rc, err, what);
	return 0;
}

/* Writes run as row *row_id (0: a new row), setting *row_id. */
static int write_run(struct km_store *s, const struct km_run *run,
		     int64_t *row_id, struct km_error *err)
{
	struct km_fold *f = s->fold;
	uint8_t hist[KM_LAT_PACK_MAX];
	size_t hist_len = km_lat_pack(run->hist, hist);
	/* A last message equal to the first is stored once (NULL): a failure
	 * repeats itself, and the two copies were most of a run's bytes. */
	const char *last = run->last_message;
	sqlite3_stmt *st;
	int rc;

	if (last && run->first_message && !strcmp(last, run->first_message))
		last = NULL;

	for (int pass = *row_id ? 0 : 1; pass < 2; pass++) {
		st = f->stmt[pass == 0 ? F_UPDATE_RUN : F_INSERT_RUN];
		sqlite3_bind_int64(st, 1, run->target_id);
		sqlite3_bind_int64(st, 2, run->first_us);
		sqlite3_bind_int64(st, 3, run->last_us);
		sqlite3_bind_int64(st, 4, run->count);
		sqlite3_bind_int(st, 5, run->success);
		sqlite3_bind_int(st, 6, run->error_class);
		sqlite3_bind_int(st, 7, run->status_code);
		sqlite3_bind_int64(st, 8, run->dur_min_us);
		sqlite3_bind_int64(st, 9, run->dur_max_us);
		sqlite3_bind_int64(st, 10, run->dur_sum_us);
		sqlite3_bind_blob(st, 11, hist, (int)hist_len, SQLITE_STATIC);
		if (run->first_message)
			sqlite3_bind_text(st, 12, run->first_message, -1,
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 12);
		if (last)
			sqlite3_bind_text(st, 13, last, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 13);
		if (pass == 0)
			sqlite3_bind_int64(st, 14, *row_id);
		rc = step_done(s, st, "write run", err);
		sqlite3_clear_bindings(st);
		if (rc)
			return rc;
		if (pass == 0 && sqlite3_changes(s->db) == 1)
			break; /* updated */
		if (pass == 1)
			*row_id = sqlite3_last_insert_rowid(s->db);
	}
	pthread_mutex_lock(&s->mu);
	s->stats.runs_written++;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static int put_blob(struct km_store *s, enum fold_stmt which, int64_t target,
		    int64_t key, const uint8_t *blob, size_t len,
		    struct km_error *err)
{
	sqlite3_stmt *st = s->fold->stmt[which];

	sqlite3_bind_int64(st, 1, target);
	sqlite3_bind_int64(st, 2, key);
	sqlite3_bind_blob(st, 3, blob, (int)len, SQLITE_STATIC);
	return step_done(s, st, "write rollup", err);
}

static int write_rows(struct km_store *s, const struct km_open_hour_rows *r,
		      struct km_error *err)
{
	int rc = put_blob(s, F_PUT_MINUTES, r->target_id, r->hour, r->minutes,
			  r->minutes_len, err);

	if (!rc)
		rc = put_blob(s, F_PUT_HOURS, r->target_id, r->day, r->hours,
			      r->hours_len, err);
	if (!rc) {
		pthread_mutex_lock(&s->mu);
		s->stats.rollups_written += 2;
		pthread_mutex_unlock(&s->mu);
	}
	return rc;
}

/* A stored blob (F_GET_MINUTES, F_GET_HOURS) copied into buf
 * (KM_ROLLUP_PACK_MAX): its length, 0 when there is none; -1 with err on
 * a read error. A blob too long to be one is read as none: it cannot
 * unpack, and is replaced. */
static long get_blob(struct km_store *s, enum fold_stmt which, int64_t target,
		     int64_t key, uint8_t *buf, struct km_error *err)
{
	sqlite3_stmt *st = s->fold->stmt[which];
	long len = 0;
	int rc;

	sqlite3_bind_int64(st, 1, target);
	sqlite3_bind_int64(st, 2, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int n = sqlite3_column_bytes(st, 0);

		if (n > 0 && (size_t)n <= KM_ROLLUP_PACK_MAX) {
			memcpy(buf, sqlite3_column_blob(st, 0), (size_t)n);
			len = n;
		} else if (n > 0) {
			km_log(KM_LOG_WARN,
			       "stored rollup too long to be one; replaced",
			       "target_id", KM_I(target), "key", KM_I(key),
			       "bytes", KM_I(n), NULL);
		}
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		km_store_sqlite_err(s->db, rc, err, "read rollup");
		return -1;
	}
	return len;
}

/* An ended hour's rows: its minute row, and its total set into its day's
 * stored row (read when it is written: a late result or a conversion may
 * have changed that row since the hour ended). An open hour of the same
 * day holds the day's row too (it opened on it): marked changed, its next
 * flush writes it. */
static int write_ended_rows(struct km_store *s,
			    const struct km_open_hour_rows *r,
			    struct km_error *err)
{
	struct km_fold *f = s->fold;
	void **aux = km_runs_aux(f->runs, r->target_id);
	struct km_error bad = {0};
	long hl;
	int rc;

	if ((rc = put_blob(s, F_PUT_MINUTES, r->target_id, r->hour, r->minutes,
			   r->minutes_len, err)))
		return rc;
	if ((hl = get_blob(s, F_GET_HOURS, r->target_id, r->day, f->in_hours,
			   err)) < 0)
		return err->code;
	if (km_rollup_unpack(f->in_hours, (size_t)hl, &f->x.h, &bad)) {
		km_log(KM_LOG_WARN, "stored rollup unreadable; replaced",
		       "target_id", KM_I(r->target_id), "day", KM_I(r->day),
		       "err", bad.msg, NULL);
		memset(&f->x.h, 0, sizeof f->x.h);
	}
	f->x.h.min[r->hour - r->day * 24] = r->total;
	if ((rc = put_blob(s, F_PUT_HOURS, r->target_id, r->day, f->x.hours,
			   km_rollup_pack(&f->x.h, f->x.hours), err)))
		return rc;
	if (aux && *aux && km_day_of_hour(km_open_hour_hour(*aux)) == r->day)
		km_open_hour_touch(*aux);
	pthread_mutex_lock(&s->mu);
	s->stats.rollups_written += 2;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* ---- pending one-shot rows ---------------------------------------------- */

static int push_pending(struct km_fold *f, struct pending *p)
{
	if (f->n_pending == f->pending_cap) {
		size_t cap = f->pending_cap ? 2 * f->pending_cap : 64;
		struct pending **v = realloc(f->pending, cap * sizeof *v);

		if (!v)
			return KM_ENOMEM;
		f->pending = v;
		f->pending_cap = cap;
	}
	f->pending[f->n_pending++] = p;
	return 0;
}

static void free_pending(struct pending *p)
{
	if (p && p->kind == P_RUN)
		km_run_clear(&p->run.run);
	free(p);
}

/* Queues a closed run (moved: *w's messages are the queue's now). */
static int pend_run(struct km_fold *f, struct km_run_write *w)
{
	struct pending *p = calloc(1, sizeof *p);

	if (!p || push_pending(f, p)) {
		free(p);
		km_run_clear(&w->run);
		return KM_ENOMEM;
	}
	p->kind = P_RUN;
	p->run = *w;
	memset(&w->run, 0, sizeof w->run);
	return 0;
}

/* Queues a copy of rows (its blobs with it). */
static int pend_rows(struct km_fold *f, const struct km_open_hour_rows *r)
{
	struct pending *p = malloc(sizeof *p + r->minutes_len + r->hours_len);
	uint8_t *b = (uint8_t *)(p + 1);

	if (!p || push_pending(f, p)) {
		free(p);
		return KM_ENOMEM;
	}
	memset(p, 0, sizeof *p);
	p->kind = P_ROWS;
	p->rows = *r;
	memcpy(b, r->minutes, r->minutes_len);
	memcpy(b + r->minutes_len, r->hours, r->hours_len);
	p->rows.minutes = b;
	p->rows.hours = b + r->minutes_len;
	return 0;
}

static int pend_late(struct km_fold *f, const struct km_result *r)
{
	struct pending *p = calloc(1, sizeof *p);

	if (!p || push_pending(f, p)) {
		free(p);
		return KM_ENOMEM;
	}
	p->kind = P_LATE;
	p->late = *r;
	p->late.message = NULL;
	return 0;
}

/* ---- merging into stored rows ---------------------------------------------- */

/* Takes target_id's open hour out of memory when it is of the day of
 * `hour`, its rows written first: what is merged into the stored rows of
 * that day next is then not overwritten by its next flush (the target's
 * next result opens its hour again, on the merged rows). */
static int close_open_hour(struct km_store *s, int64_t target_id, int64_t hour,
			   struct km_error *err)
{
	struct km_fold *f = s->fold;
	void **aux = km_runs_aux(f->runs, target_id);
	struct km_open_hour_rows rows;
	int rc;

	if (!aux || !*aux ||
	    km_day_of_hour(km_open_hour_hour(*aux)) != km_day_of_hour(hour))
		return 0;
	if (km_open_hour_changed(*aux)) {
		if ((rc = km_open_hour_rows(*aux, &f->x, &rows)))
			return km_error_set(err, rc, "pack rollups");
		if ((rc = write_rows(s, &rows, err)))
			return rc;
	}
	km_open_hour_free(*aux);
	*aux = NULL;
	return 0;
}

/* Merges add (target_id's counts of hour `hour`) into its stored rows. */
static int merge_stored(struct km_store *s, int64_t target_id, int64_t hour,
			const struct km_rollup_hour *add, struct km_error *err)
{
	struct km_fold *f = s->fold;
	struct km_open_hour_rows rows;
	struct km_error bad = {0};
	long ml, hl;
	int rc;

	if ((rc = close_open_hour(s, target_id, hour, err)))
		return rc;
	if ((ml = get_blob(s, F_GET_MINUTES, target_id, hour, f->in_minutes,
			   err)) < 0 ||
	    (hl = get_blob(s, F_GET_HOURS, target_id, km_day_of_hour(hour),
			   f->in_hours, err)) < 0)
		return err->code;
	rc = km_rollup_merge_rows(hour, f->in_minutes, (size_t)ml, f->in_hours,
				  (size_t)hl, add, &f->x, &rows, &bad);
	if (rc) {
		/* A stored blob that does not unpack is replaced by what is
		 * merged into it: what it held cannot be read anyway. */
		km_log(KM_LOG_WARN, "stored rollup unreadable; replaced",
		       "target_id", KM_I(target_id), "hour", KM_I(hour), "err",
		       bad.msg, NULL);
		rc = km_rollup_merge_rows(hour, NULL, 0, NULL, 0, add, &f->x,
					  &rows, &bad);
		if (rc)
			return km_error_set(err, rc, "merge rollups: %s",
					    bad.msg);
	}
	rows.target_id = target_id;
	return write_rows(s, &rows, err);
}

/* ---- the open hour ---------------------------------------------------------- */

/* Opens target_id's hour on its stored rows, or, with hours, on that
 * blob for its day (the hour before's, which ended in memory). */
static int open_hour(struct km_store *s, int64_t target_id, int64_t hour,
		     const uint8_t *hours, size_t hours_len,
		     struct km_open_hour **out, struct km_error *err)
{
	struct km_fold *f = s->fold;
	struct km_error bad = {0};
	long ml, hl = (long)hours_len;
	int rc;

	if ((ml = get_blob(s, F_GET_MINUTES, target_id, hour, f->in_minutes,
			   err)) < 0)
		return err->code;
	if (!hours) {
		if ((hl = get_blob(s, F_GET_HOURS, target_id,
				   km_day_of_hour(hour), f->in_hours, err)) < 0)
			return err->code;
		hours = f->in_hours;
	}
	rc = km_open_hour_new(target_id, hour, f->in_minutes, (size_t)ml, hours,
			      (size_t)hl, &f->x, out, &bad);
	if (rc == KM_EINVAL) {
		km_log(KM_LOG_WARN, "stored rollup unreadable; counting anew",
		       "target_id", KM_I(target_id), "hour", KM_I(hour), "err",
		       bad.msg, NULL);
		rc = km_open_hour_new(target_id, hour, NULL, 0, NULL, 0, &f->x,
				      out, &bad);
	}
	return rc ? km_error_set(err, rc, "open rollups: %s", bad.msg) : 0;
}

/* Counts r in its target's open hour (aux), opening or turning it. An
 * hour that ends is written with the batch (pending); the next hour of
 * the same day opens on its day's hours as the one that ended left them
 * — the stored row is older — and writes them from then on. */
static int fold_rollup(struct km_store *s, void **aux,
		       const struct km_result *r, struct km_error *err)
{
	struct km_fold *f = s->fold;
	int64_t hour = km_hour_of(r->started_us);
	enum km_open_hour_fold what;
	struct km_open_hour_rows rows;
	struct km_open_hour *o;
	int rc;

	if (!*aux) {
		if ((rc = open_hour(s, r->target_id, hour, NULL, 0, &o, err)))
			return rc;
		*aux = o;
	}
	if ((rc = km_open_hour_fold(*aux, r, &f->x, &what)))
		return km_error_set(err, rc, "count a result");
	if (what == KM_OPEN_HOUR_ADDED)
		return 0;
	if (what == KM_OPEN_HOUR_LATE)
		return pend_late(f, r)
			       ? km_error_set(err, KM_ENOMEM, "out of memory")
			       : 0;
	/* The next hour: the open one is done. */
	if ((rc = km_open_hour_rows(*aux, &f->x, &rows)) ||
	    (rc = pend_rows(f, &rows)))
		return km_error_set(err, rc, "close an hour");
	rc = km_day_of_hour(hour) == rows.day
		     ? open_hour(s, r->target_id, hour, rows.hours,
				 rows.hours_len, &o, err)
		     : open_hour(s, r->target_id, hour, NULL, 0, &o, err);
	if (rc)
		return rc;
	km_open_hour_free(*aux);
	*aux = o;
	if ((rc = km_open_hour_fold(o, r, &f->x, &what)) ||
	    what != KM_OPEN_HOUR_ADDED)
		return km_error_set(err, rc ? rc : KM_EIO,
				    "an hour opened for a result does not "
				    "take it");
	return 0;
}

/* ---- the writer's calls ----------------------------------------------------- */

int km_fold_start(struct km_store *s, struct km_error *err)
{
	struct km_runs_options ro = {.flush_us = s->o.flush_us,
				     .max_open = s->o.max_open,
				     .free_aux = free_open_hour};
	struct km_fold *f;
	int rc;

	if (s->o.raw_results)
		return 0; /* the baseline: results as rows, nothing folded */
	if (!(f = calloc(1, sizeof *f)))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	s->fold = f;
	for (int i = 0; i < F_STMT_COUNT; i++)
		if ((rc = km_store_prepare(s->db, fold_sql[i], &f->stmt[i],
					   err)))
			return rc;
	if ((rc = km_runs_new(&ro, &f->runs)))
		return km_error_set(err, rc, "out of memory");
	f->converting = sqlite3_step(f->stmt[F_RESULTS_LEFT]) == SQLITE_ROW;
	sqlite3_reset(f->stmt[F_RESULTS_LEFT]);
	return 0;
}

static void conv_reset(struct km_fold *f)
{
	km_runs_free(f->conv);
	f->conv = NULL;
	for (size_t i = 0; i < f->n_ch; i++)
		free(f->ch[i]);
	f->n_ch = 0;
	f->n_touched = 0;
}

void km_fold_stop(struct km_store *s)
{
	struct km_fold *f = s->fold;

	if (!f)
		return;
	for (int i = 0; i < F_STMT_COUNT; i++)
		sqlite3_finalize(f->stmt[i]);
	km_runs_free(f->runs);
	for (size_t i = 0; i < f->n_pending; i++)
		free_pending(f->pending[i]);
	free(f->pending);
	conv_reset(f);
	free(f->ch);
	free(f->touched);
	free(f);
	s->fold = NULL;
}

int km_fold_result(struct km_store *s, const struct km_result *r,
		   struct km_error *err)
{
	struct km_fold *f = s->fold;
	struct km_run_write closed;
	bool has_closed;
	void **aux;
	int rc;

	pthread_mutex_lock(&s->fold_mu);
	rc = km_runs_add(f->runs, r, km_fold_now(s), &closed, &has_closed,
			 &aux);
	pthread_mutex_unlock(&s->fold_mu);
	if (has_closed && pend_run(f, &closed))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	if (rc == KM_EFULL)
		return km_error_set(err, rc,
				    "%zu targets have history open in memory, "
				    "the most allowed",
				    km_runs_open(f->runs));
	if (rc)
		return km_error_set(err, rc, "out of memory");
	return fold_rollup(s, aux, r, err);
}

/* Ends w's target: its run and hour pending (w's aux is its hour). */
static int end_target(struct km_fold *f, struct km_run_write *w)
{
	struct km_open_hour *o = w->aux;
	struct km_open_hour_rows rows;
	int rc = 0;

	if (o && km_open_hour_changed(o) &&
	    (rc = km_open_hour_rows(o, &f->x, &rows)) == 0)
		rc = pend_rows(f, &rows);
	km_open_hour_free(o);
	if (w->changed) {
		int rc2 = pend_run(f, w);

		rc = rc ? rc : rc2;
	} else {
		km_run_clear(&w->run);
	}
	return rc;
}

int km_fold_end(struct km_store *s, int64_t target_id, struct km_error *err)
{
	struct km_run_write w;
	bool had;
	int rc;

	pthread_mutex_lock(&s->fold_mu);
	had = km_runs_end(s->fold->runs, target_id, &w);
	pthread_mutex_unlock(&s->fold_mu);
	if (!had)
		return 0;
	rc = end_target(s->fold, &w);
	return rc ? km_error_set(err, rc, "out of memory") : 0;
}

/* Writes what changed of w's target (its run, its hour) and schedules
 * its next flush. */
static int write_open(struct km_store *s, const struct km_run_write *w,
		      int64_t now, struct km_error *err)
{
	struct km_fold *f = s->fold;
	struct km_open_hour *o = w->aux;
	int64_t row_id = w->row_id;
	int rc;

	if (w->changed && (rc = write_run(s, &w->run, &row_id, err)))
		return rc;
	if (o && km_open_hour_changed(o)) {
		struct km_open_hour_rows rows;

		if ((rc = km_open_hour_rows(o, &f->x, &rows)))
			return km_error_set(err, rc, "pack rollups");
		if ((rc = write_rows(s, &rows, err)))
			return rc;
		km_open_hour_written(o);
	}
	pthread_mutex_lock(&s->fold_mu);
	km_runs_written(f->runs, w->run.target_id, row_id, now);
	pthread_mutex_unlock(&s->fold_mu);
	return 0;
}

struct each_arg {
	struct km_store *s;
	int64_t now;
	struct km_error *err;
};

static int write_each(void *arg, const struct km_run_write *w)
{
	struct each_arg *a = arg;

	return write_open(a->s, w, a->now, a->err);
}

int km_fold_flush(struct km_store *s, enum km_fold_flush what,
		  struct km_error *err)
{
	struct km_fold *f = s->fold;
	int64_t now = km_fold_now(s);
	struct km_run_write w;
	int rc;

	if (what == KM_FOLD_END_ALL) {
		for (;;) {
			bool had;

			pthread_mutex_lock(&s->fold_mu);
			had = km_runs_pop(f->runs, &w);
			pthread_mutex_unlock(&s->fold_mu);
			if (!had)
				return 0;
			if ((rc = end_target(f, &w)))
				return km_error_set(err, rc, "out of memory");
		}
	}
	if (what == KM_FOLD_ALL) {
		struct each_arg a = {s, now, err};

		return km_runs_each(f->runs, write_each, &a);
	}
	for (int n = 0; n < FLUSH_PER_BATCH && km_runs_due(f->runs, now, &w);
	     n++) {
		if (!w.changed && !(w.aux && km_open_hour_changed(w.aux)) &&
		    now - w.last_add_us >= KM_FOLD_IDLE_US) {
			struct km_run_write gone;

			pthread_mutex_lock(&s->fold_mu);
			km_runs_end(f->runs, w.run.target_id, &gone);
			pthread_mutex_unlock(&s->fold_mu);
			km_run_clear(&gone.run);
			km_open_hour_free(gone.aux);
			continue;
		}
		if ((rc = write_open(s, &w, now, err)))
			return rc;
	}
	return 0;
}

int64_t km_fold_next_due(const struct km_store *s)
{
	return s->fold ? km_runs_next_due(s->fold->runs) : INT64_MAX;
}

size_t km_fold_open_count(const struct km_store *s)
{
	return s->fold ? km_runs_open(s->fold->runs) : 0;
}

int km_fold_write_pending(struct km_store *s, struct km_error *err)
{
	struct km_fold *f = s->fold;
	int rc;

	for (size_t i = 0; i < f->n_pending; i++) {
		struct pending *p = f->pending[i];

		if (p->kind == P_RUN) {
			rc = write_run(s, &p->run.run, &p->run.row_id, err);
		} else if (p->kind == P_ROWS) {
			rc = write_ended_rows(s, &p->rows, err);
		} else {
			struct km_rollup_hour *add = &f->x.add;

			memset(add, 0, sizeof *add);
			km_rollup_add(
				&add->min[km_minute_of(p->late.started_us)],
				&p->late);
			rc = merge_stored(s, p->late.target_id,
					  km_hour_of(p->late.started_us), add,
					  err);
		}
		if (rc)
			return rc;
	}
	f->committed_mark = f->n_pending;
	return 0;
}

void km_fold_committed(struct km_store *s, bool ok)
{
	struct km_fold *f = s->fold;

	if (!f)
		return;
	if (ok) {
		/* What the batch wrote is stored; pending queued after the
		 * write (none: it is the batch's last step) stays. */
		for (size_t i = 0; i < f->committed_mark; i++)
			free_pending(f->pending[i]);
		if (f->n_pending > f->committed_mark)
			memmove(f->pending, f->pending + f->committed_mark,
				(f->n_pending - f->committed_mark) *
					sizeof *f->pending);
		f->n_pending -= f->committed_mark;
		f->committed_mark = 0;
		return;
	}
	/* Undone: the open targets' rows are rewritten at their next flush
	 * (run row ids handed out by the failed transaction are checked by
	 * write_run's update); the pending rows stay queued, run ids and
	 * all, for the next batch. */
	f->committed_mark = 0;
	pthread_mutex_lock(&s->fold_mu);
	km_runs_unwritten_all(f->runs, mark_open_hour_changed);
	pthread_mutex_unlock(&s->fold_mu);
}

static const char *arena_str(struct km_arena *a, const char *s)
{
	return s ? km_arena_strdup(a, s) : NULL;
}

int km_fold_open_run(struct km_store *s, int64_t target_id, struct km_arena *a,
		     struct km_run_row *out)
{
	struct km_run_write w;
	int rc = KM_ENOTFOUND;

	if (!s->fold)
		return KM_ENOTFOUND;
	pthread_mutex_lock(&s->fold_mu);
	if (km_runs_get(s->fold->runs, target_id, &w)) {
		*out = (struct km_run_row){.src = KM_RUN_SRC_RUN,
					   .id = w.row_id,
					   .target_id = target_id,
					   .success = w.run.success,
					   .error_class = w.run.error_class,
					   .status_code = w.run.status_code,
					   .first_us = w.run.first_us,
					   .last_us = w.run.last_us,
					   .count = w.run.count,
					   .dur_min_us = w.run.dur_min_us,
					   .dur_max_us = w.run.dur_max_us,
					   .dur_sum_us = w.run.dur_sum_us};
		out->first_message = arena_str(a, w.run.first_message);
		out->last_message = arena_str(a, w.run.last_message);
		rc = (w.run.first_message && !out->first_message) ||
				     (w.run.last_message && !out->last_message)
			     ? KM_ENOMEM
			     : 0;
	}
	pthread_mutex_unlock(&s->fold_mu);
	return rc;
}

/* ---- converting schema 5's results ---------------------------------------- */

static struct km_rollup_hour *conv_hour(struct km_fold *f, int64_t target,
					int64_t hour)
{
	struct conv_hour *c;

	for (size_t i = f->n_ch; i-- > 0;)
		if (f->ch[i]->target_id == target && f->ch[i]->hour == hour)
			return &f->ch[i]->h;
	if (f->n_ch == f->ch_cap) {
		size_t cap = f->ch_cap ? 2 * f->ch_cap : 64;
		struct conv_hour **v = realloc(f->ch, cap * sizeof *v);

		if (!v)
			return NULL;
		f->ch = v;
		f->ch_cap = cap;
	}
	if (!(c = calloc(1, sizeof *c)))
		return NULL;
	c->target_id = target;
	c->hour = hour;
	f->ch[f->n_ch++] = c;
	return &c->h;
}

static int touch(struct km_fold *f, int64_t target)
{
	if (f->n_touched && f->touched[f->n_touched - 1] == target)
		return 0;
	if (f->n_touched == f->touched_cap) {
		size_t cap = f->touched_cap ? 2 * f->touched_cap : 256;
		int64_t *v = realloc(f->touched, cap * sizeof *v);

		if (!v)
			return KM_ENOMEM;
		f->touched = v;
		f->touched_cap = cap;
	}
	f->touched[f->n_touched++] = target;
	return 0;
}

/* One step's rows folded: converted runs and rollups. */
static int conv_fold(struct km_store *s, sqlite3_stmt *st, int64_t *last_id,
		     size_t *n, struct km_error *err)
{
	struct km_fold *f = s->fold;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct km_result r = {
			.target_id = sqlite3_column_int64(st, 1),
			.started_us = sqlite3_column_int64(st, 2),
			.duration_us = sqlite3_column_int64(st, 3),
			.success = sqlite3_column_int(st, 4) != 0,
			.error_class = sqlite3_column_int(st, 5),
			.status_code = sqlite3_column_int(st, 6),
			.message = (const char *)sqlite3_column_text(st, 7)};
		struct km_run_write closed;
		struct km_rollup_hour *h;
		bool has_closed;
		int64_t hour = km_hour_of(r.started_us);

		*last_id = sqlite3_column_int64(st, 0);
		(*n)++;
		if (r.message && !r.message[0])
			r.message = NULL;
		rc = km_runs_add(f->conv, &r, f->conv_clock, &closed,
				 &has_closed, NULL);
		if (has_closed) {
			int64_t id = closed.row_id;

			rc = rc ? rc : write_run(s, &closed.run, &id, err);
			km_run_clear(&closed.run);
			if (rc)
				return rc;
		}
		if (rc || touch(f, r.target_id) ||
		    !(h = conv_hour(f, r.target_id, hour)))
			return km_error_set(err, rc ? rc : KM_ENOMEM,
					    "convert results: out of memory "
					    "or too many targets");
		km_rollup_add(&h->min[km_minute_of(r.started_us)], &r);
	}
	return rc == SQLITE_DONE
		       ? 0
		       : km_store_sqlite_err(s->db, rc, err, "read results");
}

/* The step's open runs and hours written. */
static int conv_write(struct km_store *s, struct km_error *err)
{
	struct km_fold *f = s->fold;
	int rc;

	for (size_t i = 0; i < f->n_touched; i++) {
		struct km_run_write w;
		int64_t id;

		if (!km_runs_get(f->conv, f->touched[i], &w) || !w.changed)
			continue;
		id = w.row_id;
		if ((rc = write_run(s, &w.run, &id, err)))
			return rc;
		km_runs_written(f->conv, f->touched[i], id, f->conv_clock);
	}
	for (size_t i = 0; i < f->n_ch; i++)
		if ((rc = merge_stored(s, f->ch[i]->target_id, f->ch[i]->hour,
				       &f->ch[i]->h, err)))
			return rc;
	return 0;
}

int km_fold_convert_step(struct km_store *s, size_t *converted,
			 struct km_error *err)
{
	struct km_fold *f = s->fold;
	struct km_runs_options ro = {.flush_us = 1};
	sqlite3_stmt *st = f->stmt[F_CONVERT_SELECT];
	int64_t last_id = 0;
	size_t n = 0;
	int rc;

	*converted = 0;
	if (!f->converting)
		return 0;
	if (!f->conv && km_runs_new(&ro, &f->conv))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	f->conv_clock += 10;
	for (size_t i = 0; i < f->n_ch; i++)
		free(f->ch[i]);
	f->n_ch = f->n_touched = 0;
	if ((rc = km_store_exec(s->db, "BEGIN IMMEDIATE", err)))
		return rc;
	sqlite3_bind_int(st, 1, CONVERT_STEP);
	rc = conv_fold(s, st, &last_id, &n, err);
	sqlite3_reset(st);
	if (!rc && n) {
		sqlite3_stmt *del = f->stmt[F_CONVERT_DELETE];

		rc = conv_write(s, err);
		if (!rc) {
			sqlite3_bind_int64(del, 1, last_id);
			rc = step_done(s, del, "delete converted results", err);
		}
	}
	if (!rc)
		rc = km_store_exec(s->db, "COMMIT", err);
	if (rc) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		/* Its runs may hold rows that were undone: start over from
		 * what is stored (a run may be split where it failed). */
		conv_reset(f);
		return rc;
	}
	*converted = n;
	if (!n) {
		f->converting = false;
		conv_reset(f);
		km_log(KM_LOG_INFO,
		       "raw results of schema 5 converted into runs and "
		       "rollups",
		       NULL);
	}
	pthread_mutex_lock(&s->mu);
	s->stats.results_converted += n;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

bool km_fold_converting(const struct km_store *s)
{
	return s->fold && s->fold->converting;
}

/* ---- retention ---------------------------------------------------------------- */

/* Deletes what of target_id's history `which` holds before cut. */
static int retain(struct km_store *s, enum fold_stmt which, int64_t target_id,
		  int64_t cut, int *deleted)
{
	sqlite3_stmt *st = s->fold->stmt[which];
	int rc;

	sqlite3_bind_int64(st, 1, target_id);
	sqlite3_bind_int64(st, 2, cut);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	*deleted += sqlite3_changes(s->db);
	return 0;
}

int km_fold_retain_step(struct km_store *s, int64_t *cursor, int targets)
{
	struct km_fold *f = s->fold;
	sqlite3_stmt *st;
	int64_t now = km_fold_now(s), ids[256];
	int n = 0, deleted = 0, rc = SQLITE_DONE;

	if (!f || (!s->o.results_retention_us && !s->o.minutes_retention_us &&
		   !s->o.hours_retention_us)) {
		*cursor = 0;
		return 0;
	}
	targets = targets < 1 ? 1 : targets > 256 ? 256 : targets;
	st = f->stmt[F_RETAIN_TARGETS];
	sqlite3_bind_int64(st, 1, *cursor);
	sqlite3_bind_int(st, 2, targets);
	while (n < targets && (rc = sqlite3_step(st)) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto failed;
	rc = 0;
	if (km_store_exec(s->db, "BEGIN IMMEDIATE", NULL))
		return 0; /* tried again at the next sweep */
	for (int i = 0; !rc && i < n; i++) {
		if (s->o.results_retention_us > 0)
			rc = retain(s, F_RETAIN_RUNS, ids[i],
				    now - s->o.results_retention_us, &deleted);
		if (!rc && s->o.minutes_retention_us > 0)
			rc = retain(s, F_RETAIN_MINUTES, ids[i],
				    km_hour_of(now - s->o.minutes_retention_us),
				    &deleted);
		if (!rc && s->o.hours_retention_us > 0)
			rc = retain(s, F_RETAIN_HOURS, ids[i],
				    km_day_of_hour(km_hour_of(
					    now - s->o.hours_retention_us)),
				    &deleted);
	}
	if (!rc && km_store_exec(s->db, "COMMIT", NULL) == 0) {
		*cursor = n < targets ? 0 : ids[n - 1];
		return deleted;
	}
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
failed:
	km_log(KM_LOG_WARN, "retention delete failed", "err",
	       sqlite3_errmsg(s->db), NULL);
	*cursor = 0;
	return 0;
}
