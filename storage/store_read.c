/*
 * Readers: read-only connections with cached statements.
 *
 * WAL lets readers run beside the writer without blocking it. Each reader
 * belongs to one thread at a time (the gRPC workers keep one each). Every
 * query checks an optional deadline through SQLite's progress handler, so
 * a slow scan is interrupted when the caller has stopped waiting.
 *
 * History pages are keyset-paged on (time, id): a page continues strictly
 * after the previous page's last row, so pages neither skip nor repeat rows
 * while the writer inserts, and a deep page costs what the first one does.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_time.h"
#include "store_internal.h"

enum reader_stmt {
	R_GET_PROBE,
	R_LIST_PROBES,
	R_GET_TARGET,
	R_GET_TARGET_ID,
	R_FIND_TARGET,
	R_LIST_TARGETS,
	/* results: [outcome any/success/failure] x [newest/oldest first] */
	R_RESULTS,
	R_TRANSITIONS = R_RESULTS + 6,
	R_GET_TRANSITION = R_TRANSITIONS + 2,
	R_TRANSITIONS_AFTER,
	R_MIN_SEQ,
	R_MAX_SEQ,
	R_BEGIN,
	R_COMMIT,
	R_TARGET_HEALTH,
	R_AUDIT,
	R_STMT_COUNT
};

struct km_reader {
	struct km_store *s;
	sqlite3 *db;
	sqlite3_stmt *stmt[R_STMT_COUNT];
	sqlite3_stmt *lazy[KM_READER_LAZY_STMTS]; /* km_reader_lazy_stmt */
	int64_t deadline;
};

#define TARGET_COLS                                                           \
	"id, name, cluster, kind, namespace, object_name, uid, owner, node, " \
	"labels, state, flapping, state_since, last_transition, created_at, " \
	"deleted_at"
#define RESULT_COLS                                                      \
	"id, target_id, started_at, duration_us, success, error_class, " \
	"status_code, message"
#define TRANSITION_COLS \
	"seq, target_id, at, from_state, to_state, flapping, cause"

/* ?1 target, [?2, ?3) time range, ?4/?5 cursor (time, id). The cursor is a
 * row-value comparison so SQLite seeks the index to it. */
#define HISTORY(cols, table, time, id, extra, cmp, dir)                 \
	"SELECT " cols " FROM " table " WHERE target_id = ?1 AND " time \
	" >= ?2 AND " time " < ?3 AND (" time ", " id ") " cmp          \
	" (?4, ?5)" extra " ORDER BY " time " " dir ", " id " " dir     \
	" LIMIT ?6"

static const char *reader_sql(int i)
{
	static const char *const sql[R_STMT_COUNT] = {
		[R_GET_PROBE] = NULL, /* built from km_store_probe_select */
		[R_LIST_PROBES] = NULL,
		[R_GET_TARGET] = "SELECT " TARGET_COLS
				 " FROM targets WHERE name = ?1 AND "
				 "deleted_at = 0",
		[R_GET_TARGET_ID] = "SELECT " TARGET_COLS
				    " FROM targets WHERE id = ?1",
		[R_FIND_TARGET] = "SELECT " TARGET_COLS
				  " FROM targets WHERE name = ?1",
		[R_LIST_TARGETS] = "SELECT " TARGET_COLS
				   " FROM targets WHERE deleted_at = 0 AND "
				   "id > ?1 AND (?2 = 0 OR kind = ?2) AND "
				   "(?3 = 0 OR state = ?3) AND (?4 IS NULL OR "
				   "cluster = ?4) ORDER BY id",
		[R_RESULTS + 0] = HISTORY(RESULT_COLS, "results", "started_at",
					  "id", "", "<", "DESC"),
		[R_RESULTS + 1] = HISTORY(RESULT_COLS, "results", "started_at",
					  "id", "", ">", "ASC"),
		[R_RESULTS + 2] = HISTORY(RESULT_COLS, "results", "started_at",
					  "id", " AND success = 1", "<",
					  "DESC"),
		[R_RESULTS + 3] = HISTORY(RESULT_COLS, "results", "started_at",
					  "id", " AND success = 1", ">", "ASC"),
		[R_RESULTS + 4] = HISTORY(RESULT_COLS, "results", "started_at",
					  "id", " AND success = 0", "<",
					  "DESC"),
		[R_RESULTS + 5] = HISTORY(RESULT_COLS, "results", "started_at",
					  "id", " AND success = 0", ">", "ASC"),
		[R_TRANSITIONS + 0] = HISTORY(TRANSITION_COLS, "transitions",
					      "at", "seq", "", "<", "DESC"),
		[R_TRANSITIONS + 1] = HISTORY(TRANSITION_COLS, "transitions",
					      "at", "seq", "", ">", "ASC"),
		[R_GET_TRANSITION] = "SELECT " TRANSITION_COLS
				     " FROM transitions WHERE seq = ?1",
		[R_TRANSITIONS_AFTER] =
			"SELECT t.seq, t.target_id, t.at, t.from_state, "
			"t.to_state, t.flapping, t.cause, g.name, g.labels, "
			"g.uid, g.owner, g.node "
			"FROM transitions t JOIN targets g ON g.id = "
			"t.target_id WHERE t.seq > ?1 ORDER BY t.seq LIMIT ?2",
		[R_MIN_SEQ] = "SELECT min(seq) FROM transitions",
		/* AUTOINCREMENT keeps the highest seq ever given out here,
		 * even when retention has deleted that row. */
		[R_MAX_SEQ] = "SELECT seq FROM sqlite_sequence WHERE name = "
			      "'transitions'",
		/* The target and its last transition in one lookup; no
		 * transition row when last_transition is 0 or retention has
		 * removed it. */
		[R_TARGET_HEALTH] =
			"SELECT t.id, t.name, t.cluster, t.kind, t.namespace, "
			"t.object_name, t.uid, t.owner, t.node, t.labels, "
			"t.state, t.flapping, t.state_since, "
			"t.last_transition, t.created_at, t.deleted_at, "
			"tr.seq, tr.target_id, tr.at, tr.from_state, "
			"tr.to_state, tr.flapping, tr.cause FROM targets t "
			"LEFT JOIN transitions tr ON tr.seq = t.last_transition "
			"WHERE t.name = ?1 AND t.deleted_at = 0",
		/* Newest first; the filters are residual (an audit trail is
		 * read by people, a page at a time). */
		[R_AUDIT] = "SELECT id, at, identity, auth, peer, method, "
			    "object, code, message FROM audit WHERE at >= ?1 "
			    "AND at < ?2 AND (?3 = '' OR identity = ?3) AND "
			    "(?4 = '' OR method = ?4 OR substr(method, "
			    "-length(?4) - 1) IN ('/' || ?4, '.' || ?4)) AND "
			    "(?5 = 0 OR (at, id) "
			    "< (?6, ?7)) ORDER BY at DESC, id DESC LIMIT ?8",
		[R_BEGIN] = "BEGIN",
		[R_COMMIT] = "COMMIT",
	};
	return sql[i];
}

static int progress(void *arg)
{
	struct km_reader *r = arg;

	return r->deadline && km_mono_ns() > r->deadline;
}

int km_reader_open(struct km_store *s, struct km_reader **out,
		   struct km_error *err)
{
	struct km_reader *r = calloc(1, sizeof *r);
	char sql[2048];
	int rc;

	*out = NULL;
	if (!r)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	r->s = s;
	rc = sqlite3_open_v2(s->path, &r->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = km_error_set(err, KM_EIO, "open reader on %s: %s", s->path,
				  r->db ? sqlite3_errmsg(r->db)
					: sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(r->db, 5000);
	rc = km_store_exec(
		r->db, "PRAGMA query_only=1; PRAGMA cache_size=-16384", err);
	if (rc)
		goto fail;
	sqlite3_progress_handler(r->db, 1000, progress, r);
	for (int i = 0; i < R_STMT_COUNT; i++) {
		const char *q = reader_sql(i);

		if (i == R_GET_PROBE) {
			snprintf(sql, sizeof sql, "%s WHERE name = ?1",
				 km_store_probe_select);
			q = sql;
		} else if (i == R_LIST_PROBES) {
			snprintf(sql, sizeof sql,
				 "%s WHERE name > ?1 ORDER BY name",
				 km_store_probe_select);
			q = sql;
		}
		rc = km_store_prepare(r->db, q, &r->stmt[i], err);
		if (rc)
			goto fail;
	}
	*out = r;
	return 0;
fail:
	km_reader_close(r);
	return rc;
}

void km_reader_close(struct km_reader *r)
{
	if (!r)
		return;
	for (int i = 0; i < R_STMT_COUNT; i++)
		sqlite3_finalize(r->stmt[i]);
	for (int i = 0; i < KM_READER_LAZY_STMTS; i++)
		sqlite3_finalize(r->lazy[i]);
	sqlite3_close(r->db);
	free(r);
}

void km_reader_set_deadline(struct km_reader *r, int64_t deadline_mono_ns)
{
	r->deadline = deadline_mono_ns;
}

/* Why: outside a transaction every query starts and ends a read
 * transaction of its own (WAL read lock, snapshot, release), which costs
 * about as much as a small indexed lookup itself. */
int km_reader_begin(struct km_reader *r, struct km_error *err)
{
	sqlite3_stmt *st = r->stmt[R_BEGIN];
	int rc;

	if (!sqlite3_get_autocommit(r->db))
		km_reader_end(r); /* a transaction left open: start afresh */
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return km_store_sqlite_err(r->db, rc, err, "begin read");
	return 0;
}

void km_reader_end(struct km_reader *r)
{
	sqlite3_stmt *st = r->stmt[R_COMMIT];
	int64_t deadline = r->deadline;
	int rc;

	if (sqlite3_get_autocommit(r->db))
		return;
	/* Ending must not be interrupted by a deadline already past. */
	r->deadline = 0;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	r->deadline = deadline;
}

/* Finishes a statement's use: resets it (ending its read transaction) and
 * turns a step result into a km_err. */
static int done(struct km_reader *r, sqlite3_stmt *st, int rc,
		struct km_error *err, const char *what)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW || rc == 0)
		return 0;
	return km_store_sqlite_err(r->db, rc, err, what);
}

/* Grows an arena array by doubling; the old copy stays in the arena. */
static void *grow(struct km_arena *a, void *v, size_t n, size_t *cap,
		  size_t elem)
{
	void *nv;

	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 16;
	nv = km_arena_alloc(a, *cap * elem);
	if (nv && n)
		memcpy(nv, v, n * elem);
	return nv;
}

/* What store_page returns from a row decoder for a row the caller's
 * filter leaves out. */
#define PAGE_SKIP KM_READ_PAGE_SKIP

/* Why one function: every list and history read steps a statement,
 * decodes rows into an arena array and tells whether another page
 * follows; each used to write that loop out, with its own error paths.
 * Fills *out (arena; NULL on error) and *n, and sets *more when a row
 * past the limit exists. */
static int store_page(struct km_reader *r, const struct km_read_page *pg,
		      struct km_arena *a, void **out, size_t *n, bool *more,
		      struct km_error *err)
{
	char *v = NULL;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	*more = false;
	if (!pg->filtered) {
		cap = pg->limit + 1;
		v = km_arena_alloc(a, cap * pg->size);
		if (!v) {
			done(r, pg->st, SQLITE_DONE, err, pg->what);
			return km_error_set(err, KM_ENOMEM, "out of memory");
		}
	}
	while ((rc = sqlite3_step(pg->st)) == SQLITE_ROW) {
		int d;

		if (!pg->filtered && *n == pg->limit) {
			*more = true;
			break;
		}
		/* The row is decoded into the slot after the kept ones. */
		if (!(v = grow(a, v, *n, &cap, pg->size))) {
			done(r, pg->st, SQLITE_DONE, err, pg->what);
			return km_error_set(err, KM_ENOMEM, "out of memory");
		}
		assert(*n < cap);
		d = pg->decode(a, pg->st, v + *n * pg->size, pg->arg, err);
		if (d < 0) {
			done(r, pg->st, SQLITE_DONE, err, pg->what);
			return d;
		}
		if (d == PAGE_SKIP)
			continue;
		if (*n == pg->limit) {
			*more = true;
			break;
		}
		(*n)++;
	}
	*out = v;
	return done(r, pg->st, rc, err, pg->what);
}

int km_reader_page(struct km_reader *r, const struct km_read_page *pg,
		   struct km_arena *a, void **out, size_t *n, bool *more,
		   struct km_error *err)
{
	return store_page(r, pg, a, out, n, more, err);
}

int km_reader_done(struct km_reader *r, sqlite3_stmt *st, int rc,
		   struct km_error *err, const char *what)
{
	return done(r, st, rc, err, what);
}

sqlite3 *km_reader_db(struct km_reader *r)
{
	return r->db;
}

/* Why lazily: the reads of other files have statements of their own (the
 * recovery lists, one per set of filters, so that each uses its index), and
 * most readers never run most of them. */
int km_reader_lazy_stmt(struct km_reader *r, unsigned slot, const char *sql,
			sqlite3_stmt **st, struct km_error *err)
{
	assert(slot < KM_READER_LAZY_STMTS);
	if (!r->lazy[slot]) {
		int rc = km_store_prepare(r->db, sql, &r->lazy[slot], err);

		if (rc)
			return rc;
	}
	*st = r->lazy[slot];
	return 0;
}

/* ---- probes ------------------------------------------------------------ */

int km_reader_get_probe(struct km_reader *r, const char *name,
			struct km_arena *a, struct km_probe *out,
			struct km_error *err)
{
	sqlite3_stmt *st = r->stmt[R_GET_PROBE];
	int rc;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		done(r, st, rc, err, "get probe");
		return km_error_set(err, KM_ENOTFOUND, "probe \"%s\" not found",
				    name);
	}
	if (rc == SQLITE_ROW && km_store_probe_from_row(a, st, out)) {
		done(r, st, rc, err, "get probe");
		return km_error_set(err, KM_ECORRUPT,
				    "probe \"%s\": stored row does not decode",
				    name);
	}
	return done(r, st, rc, err, "get probe");
}

struct probe_filter {
	km_probe_match_fn match;
	void *arg;
};

static int probe_row(struct km_arena *a, sqlite3_stmt *st, void *row, void *arg,
		     struct km_error *err)
{
	const struct probe_filter *f = arg;
	struct km_probe *p = row;

	if (km_store_probe_from_row(a, st, p))
		return km_error_set(err, KM_ECORRUPT,
				    "probe row does not decode");
	return f->match && !f->match(p, f->arg) ? PAGE_SKIP : 0;
}

int km_reader_list_probes(struct km_reader *r, const char *after, size_t limit,
			  km_probe_match_fn match, void *arg,
			  struct km_arena *a, struct km_probe **out, size_t *n,
			  bool *more, struct km_error *err)
{
	struct probe_filter f = {match, arg};
	struct km_read_page pg = {.st = r->stmt[R_LIST_PROBES],
				  .what = "list probes",
				  .limit = limit,
				  .size = sizeof **out,
				  .decode = probe_row,
				  .arg = &f,
				  .filtered = true};
	void *v;
	int rc;

	sqlite3_bind_text(pg.st, 1, after ? after : "", -1, SQLITE_STATIC);
	rc = store_page(r, &pg, a, &v, n, more, err);
	*out = v;
	return rc;
}

/* ---- targets ----------------------------------------------------------- */

static int target_from_row(struct km_arena *a, sqlite3_stmt *st,
			   struct km_target *t)
{
	memset(t, 0, sizeof *t);
	t->id = sqlite3_column_int64(st, 0);
	t->name = km_store_col_text(a, st, 1);
	t->cluster = km_store_col_text(a, st, 2);
	t->kind = sqlite3_column_int(st, 3);
	t->ns = km_store_col_text(a, st, 4);
	t->object_name = km_store_col_text(a, st, 5);
	t->uid = km_store_col_text(a, st, 6);
	t->owner = km_store_col_text(a, st, 7);
	t->node = km_store_col_text(a, st, 8);
	if (km_store_list_decode_kv(a, sqlite3_column_blob(st, 9),
				    (size_t)sqlite3_column_bytes(st, 9),
				    &t->labels, &t->n_labels))
		return KM_ECORRUPT;
	t->state = sqlite3_column_int(st, 10);
	t->flapping = sqlite3_column_int(st, 11);
	t->state_since_us = sqlite3_column_int64(st, 12);
	t->last_transition_seq = sqlite3_column_int64(st, 13);
	t->created_us = sqlite3_column_int64(st, 14);
	t->deleted_us = sqlite3_column_int64(st, 15);
	if (!t->name || !t->cluster || !t->ns || !t->object_name || !t->uid ||
	    !t->owner || !t->node)
		return KM_ENOMEM;
	return 0;
}

static int get_target(struct km_reader *r, sqlite3_stmt *st, const char *what,
		      struct km_arena *a, struct km_target *out,
		      struct km_error *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE) {
		done(r, st, rc, err, "get target");
		return km_error_set(err, KM_ENOTFOUND, "target %s not found",
				    what);
	}
	if (rc == SQLITE_ROW && target_from_row(a, st, out)) {
		done(r, st, rc, err, "get target");
		return km_error_set(err, KM_ECORRUPT,
				    "target %s: stored row does not decode",
				    what);
	}
	return done(r, st, rc, err, "get target");
}

int km_reader_get_target(struct km_reader *r, const char *name,
			 struct km_arena *a, struct km_target *out,
			 struct km_error *err)
{
	char what[300];

	snprintf(what, sizeof what, "\"%s\"", name);
	sqlite3_bind_text(r->stmt[R_GET_TARGET], 1, name, -1, SQLITE_STATIC);
	return get_target(r, r->stmt[R_GET_TARGET], what, a, out, err);
}

int km_reader_find_target(struct km_reader *r, const char *name,
			  struct km_arena *a, struct km_target *out,
			  struct km_error *err)
{
	char what[300];

	snprintf(what, sizeof what, "\"%s\"", name);
	sqlite3_bind_text(r->stmt[R_FIND_TARGET], 1, name, -1, SQLITE_STATIC);
	return get_target(r, r->stmt[R_FIND_TARGET], what, a, out, err);
}

int km_reader_get_target_by_id(struct km_reader *r, int64_t id,
			       struct km_arena *a, struct km_target *out,
			       struct km_error *err)
{
	char what[32];

	snprintf(what, sizeof what, "#%lld", (long long)id);
	sqlite3_bind_int64(r->stmt[R_GET_TARGET_ID], 1, id);
	return get_target(r, r->stmt[R_GET_TARGET_ID], what, a, out, err);
}

static int target_row(struct km_arena *a, sqlite3_stmt *st, void *row,
		      void *arg, struct km_error *err)
{
	const struct km_target_filter *f = arg;
	struct km_target *t = row;

	if (target_from_row(a, st, t))
		return km_error_set(err, KM_ECORRUPT,
				    "target row does not decode");
	return f && f->match && !f->match(t, f->arg) ? PAGE_SKIP : 0;
}

int km_reader_list_targets(struct km_reader *r,
			   const struct km_target_filter *f, int64_t after_id,
			   size_t limit, struct km_arena *a,
			   struct km_target **out, size_t *n, bool *more,
			   struct km_error *err)
{
	struct km_read_page pg = {.st = r->stmt[R_LIST_TARGETS],
				  .what = "list targets",
				  .limit = limit,
				  .size = sizeof **out,
				  .decode = target_row,
				  .arg = (void *)f,
				  .filtered = true};
	sqlite3_stmt *st = pg.st;
	void *v;
	int rc;

	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int(st, 2, f ? f->kind : 0);
	sqlite3_bind_int(st, 3, f ? f->state : 0);
	if (f && f->cluster)
		sqlite3_bind_text(st, 4, f->cluster, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	rc = store_page(r, &pg, a, &v, n, more, err);
	*out = v;
	return rc;
}

/* ---- history ----------------------------------------------------------- */

static void result_from_row(struct km_arena *a, sqlite3_stmt *st,
			    struct km_result *res)
{
	memset(res, 0, sizeof *res);
	res->id = sqlite3_column_int64(st, 0);
	res->target_id = sqlite3_column_int64(st, 1);
	res->started_us = sqlite3_column_int64(st, 2);
	res->duration_us = sqlite3_column_int64(st, 3);
	res->success = sqlite3_column_int(st, 4);
	res->error_class = sqlite3_column_int(st, 5);
	res->status_code = sqlite3_column_int(st, 6);
	if (sqlite3_column_type(st, 7) != SQLITE_NULL)
		res->message = km_store_col_text(a, st, 7);
}

/* TRANSITION_COLS from column base on. */
static void transition_from_cols(struct km_arena *a, sqlite3_stmt *st, int base,
				 struct km_transition *t)
{
	memset(t, 0, sizeof *t);
	t->seq = sqlite3_column_int64(st, base + 0);
	t->target_id = sqlite3_column_int64(st, base + 1);
	t->at_us = sqlite3_column_int64(st, base + 2);
	t->from_state = sqlite3_column_int(st, base + 3);
	t->to_state = sqlite3_column_int(st, base + 4);
	t->flapping = sqlite3_column_int(st, base + 5);
	t->cause = km_store_col_text(a, st, base + 6);
}

static void transition_from_row(struct km_arena *a, sqlite3_stmt *st,
				struct km_transition *t)
{
	transition_from_cols(a, st, 0, t);
}

static int result_page_row(struct km_arena *a, sqlite3_stmt *st, void *row,
			   void *arg, struct km_error *err)
{
	(void)arg;
	(void)err;
	result_from_row(a, st, row);
	return 0;
}

static int transition_page_row(struct km_arena *a, sqlite3_stmt *st, void *row,
			       void *arg, struct km_error *err)
{
	(void)arg;
	(void)err;
	transition_from_row(a, st, row);
	return 0;
}

static void bind_history(sqlite3_stmt *st, const struct km_history_query *q)
{
	int64_t cur_t, cur_id;

	if (q->has_cursor) {
		cur_t = q->cursor_us;
		cur_id = q->cursor_id;
	} else if (q->oldest_first) {
		cur_t = cur_id = INT64_MIN;
	} else {
		cur_t = cur_id = INT64_MAX;
	}
	sqlite3_bind_int64(st, 1, q->target_id);
	sqlite3_bind_int64(st, 2, q->from_us);
	sqlite3_bind_int64(st, 3, q->to_us);
	sqlite3_bind_int64(st, 4, cur_t);
	sqlite3_bind_int64(st, 5, cur_id);
	/* One row more than asked tells whether another page follows. */
	sqlite3_bind_int64(st, 6, (int64_t)q->limit + 1);
}

int km_reader_query_results(struct km_reader *r,
			    const struct km_history_query *q,
			    struct km_arena *a, struct km_result **out,
			    size_t *n, bool *more, struct km_error *err)
{
	int outcome = q->outcome >= 0 && q->outcome <= 2 ? q->outcome : 0;
	struct km_read_page pg = {.st = r->stmt[R_RESULTS + 2 * outcome +
						(q->oldest_first ? 1 : 0)],
				  .what = "query results",
				  .limit = q->limit,
				  .size = sizeof **out,
				  .decode = result_page_row};
	void *v;
	int rc;

	bind_history(pg.st, q);
	rc = store_page(r, &pg, a, &v, n, more, err);
	*out = v;
	return rc;
}

int km_reader_query_transitions(struct km_reader *r,
				const struct km_history_query *q,
				struct km_arena *a, struct km_transition **out,
				size_t *n, bool *more, struct km_error *err)
{
	struct km_read_page pg = {
		.st = r->stmt[R_TRANSITIONS + (q->oldest_first ? 1 : 0)],
		.what = "query transitions",
		.limit = q->limit,
		.size = sizeof **out,
		.decode = transition_page_row};
	void *v;
	int rc;

	bind_history(pg.st, q);
	rc = store_page(r, &pg, a, &v, n, more, err);
	*out = v;
	return rc;
}

/* A run's newest result as a result: its start, outcome and last
 * message; its duration, the run's mean (a run keeps no single one). */
static void result_of_run(const struct km_run_row *run, struct km_result *out)
{
	memset(out, 0, sizeof *out);
	out->id = run->id;
	out->target_id = run->target_id;
	out->started_us = run->last_us;
	out->duration_us = run->dur_sum_us / run->count;
	out->success = run->success;
	out->error_class = run->error_class;
	out->status_code = run->status_code;
	out->message = run->last_message;
}

int km_reader_last_result(struct km_reader *r, int64_t target_id,
			  struct km_arena *a, struct km_result *out,
			  struct km_error *err)
{
	struct km_runs_query q = {.target_id = target_id,
				  .from_us = INT64_MIN,
				  .to_us = INT64_MAX,
				  .limit = 1};
	struct km_run_row *v;
	size_t n;
	bool more;
	int rc = km_reader_query_runs(r, &q, a, &v, &n, &more, err);

	if (rc)
		return rc;
	if (!n)
		return KM_ENOTFOUND;
	result_of_run(&v[0], out);
	return 0;
}

int km_reader_consecutive(struct km_reader *r, int64_t target_id, int cap,
			  int *count, struct km_error *err)
{
	struct km_runs_query q = {.target_id = target_id,
				  .from_us = INT64_MIN,
				  .to_us = INT64_MAX,
				  .limit = 16};
	struct km_arena tmp;
	int64_t total = 0;
	int first = -1, rc;

	*count = 0;
	km_arena_init(&tmp, 4096);
	/* Runs newest first while they have the newest's outcome (a run
	 * split by a restart continues the streak), until cap. */
	for (;;) {
		struct km_run_row *v;
		size_t n;
		bool more, same = true;

		rc = km_reader_query_runs(r, &q, &tmp, &v, &n, &more, err);
		for (size_t i = 0; !rc && same && i < n && total < cap; i++) {
			if (first < 0)
				first = v[i].success;
			same = v[i].success == first;
			total += same ? v[i].count : 0;
		}
		if (!rc && n) {
			q.has_cursor = true;
			q.cursor_us = v[n - 1].first_us;
			q.cursor_src = v[n - 1].src;
			q.cursor_id = v[n - 1].id;
		}
		km_arena_reset(&tmp);
		if (rc || !same || !more || total >= cap)
			break;
	}
	km_arena_free(&tmp);
	*count = (int)(total < cap ? total : cap);
	return rc;
}

int km_reader_get_transition(struct km_reader *r, int64_t seq,
			     struct km_arena *a, struct km_transition *out,
			     struct km_error *err)
{
	sqlite3_stmt *st = r->stmt[R_GET_TRANSITION];
	int rc;

	sqlite3_bind_int64(st, 1, seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		transition_from_row(a, st, out);
	else if (rc == SQLITE_DONE) {
		done(r, st, rc, err, "get transition");
		return KM_ENOTFOUND;
	}
	return done(r, st, rc, err, "get transition");
}

/* A transition with its target's name and labels (R_TRANSITIONS_AFTER). */
static int labelled_transition_row(struct km_arena *a, sqlite3_stmt *st,
				   void *row, void *arg, struct km_error *err)
{
	struct km_transition *t = row;
	struct km_kv *labels;
	size_t n_labels;

	(void)arg;
	transition_from_row(a, st, t);
	t->target_name = km_store_col_text(a, st, 7);
	if (km_store_list_decode_kv(a, sqlite3_column_blob(st, 8),
				    (size_t)sqlite3_column_bytes(st, 8),
				    &labels, &n_labels))
		return km_error_set(err, KM_ECORRUPT,
				    "target labels do not decode");
	t->labels = labels;
	t->n_labels = n_labels;
	t->target_uid = km_store_col_text(a, st, 9);
	t->target_owner = km_store_col_text(a, st, 10);
	t->target_node = km_store_col_text(a, st, 11);
	return 0;
}

int km_reader_transitions_after(struct km_reader *r, int64_t after,
				size_t limit, struct km_arena *a,
				struct km_transition **out, size_t *n,
				bool *more, struct km_error *err)
{
	struct km_read_page pg = {.st = r->stmt[R_TRANSITIONS_AFTER],
				  .what = "transitions after",
				  .limit = limit,
				  .size = sizeof **out,
				  .decode = labelled_transition_row};
	void *v;
	int rc;

	sqlite3_bind_int64(pg.st, 1, after);
	sqlite3_bind_int64(pg.st, 2, (int64_t)limit + 1);
	rc = store_page(r, &pg, a, &v, n, more, err);
	*out = v;
	return rc;
}

static int single_int(struct km_reader *r, sqlite3_stmt *st, int64_t *out,
		      struct km_error *err)
{
	int rc = sqlite3_step(st);

	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	return done(r, st, rc, err, "transition bounds");
}

int km_reader_transition_bounds(struct km_reader *r, int64_t *min_kept,
				int64_t *max_ever, struct km_error *err)
{
	int rc = single_int(r, r->stmt[R_MIN_SEQ], min_kept, err);

	return rc ? rc : single_int(r, r->stmt[R_MAX_SEQ], max_ever, err);
}

/* ---- a target's health ------------------------------------------------- */

/* Why one function: GetHealth is the API's hottest read. As separate
 * queries (target, last result, streak, last transition) each paid a
 * statement's fixed cost and a read transaction of its own; here two
 * statements in one read transaction give the same answer, from one
 * snapshot. */
int km_reader_target_health(struct km_reader *r, const char *name, int cap,
			    struct km_arena *a, struct km_target_health *out,
			    struct km_error *err)
{
	sqlite3_stmt *st = r->stmt[R_TARGET_HEALTH];
	char what[300];
	int rc;

	memset(out, 0, sizeof *out);
	rc = km_reader_begin(r, err);
	if (rc)
		return rc;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		done(r, st, rc, err, "get target");
		snprintf(what, sizeof what, "\"%s\"", name);
		rc = km_error_set(err, KM_ENOTFOUND, "target %s not found",
				  what);
		goto out;
	}
	if (rc == SQLITE_ROW) {
		if (target_from_row(a, st, &out->target)) {
			done(r, st, rc, err, "get target");
			snprintf(what, sizeof what, "\"%s\"", name);
			rc = km_error_set(err, KM_ECORRUPT,
					  "target %s: stored row does not "
					  "decode",
					  what);
			goto out;
		}
		if (out->target.last_transition_seq &&
		    sqlite3_column_type(st, 16) != SQLITE_NULL) {
			transition_from_cols(a, st, 16, &out->transition);
			out->has_transition = true;
		}
	}
	rc = done(r, st, rc, err, "get target");
	if (rc)
		goto out;

	rc = km_reader_last_result(r, out->target.id, a, &out->last, err);
	if (rc == KM_ENOTFOUND) {
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	out->has_last = true;
	rc = km_reader_consecutive(r, out->target.id, cap, &out->consecutive,
				   err);
out:
	km_reader_end(r);
	return rc;
}

/* ---- the audit trail ---------------------------------------------------- */

static int audit_page_row(struct km_arena *a, sqlite3_stmt *st, void *row,
			  void *arg, struct km_error *err)
{
	struct km_audit_event *e = row;

	(void)arg;
	e->id = sqlite3_column_int64(st, 0);
	e->at_us = sqlite3_column_int64(st, 1);
	e->identity = km_store_col_text(a, st, 2);
	e->by = km_store_col_text(a, st, 3);
	e->peer = km_store_col_text(a, st, 4);
	e->method = km_store_col_text(a, st, 5);
	e->object = km_store_col_text(a, st, 6);
	e->code = sqlite3_column_int(st, 7);
	e->message = km_store_col_text(a, st, 8);
	if (!e->identity || !e->by || !e->peer || !e->method || !e->object ||
	    !e->message)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	return 0;
}

int km_reader_list_audit(struct km_reader *r, const struct km_audit_query *q,
			 struct km_arena *a, struct km_audit_event **out,
			 size_t *n, bool *more, struct km_error *err)
{
	struct km_read_page pg = {.st = r->stmt[R_AUDIT],
				  .what = "list audit events",
				  .limit = q->limit,
				  .size = sizeof **out,
				  .decode = audit_page_row};
	void *v;
	int rc;

	sqlite3_bind_int64(pg.st, 1, q->from_us);
	sqlite3_bind_int64(pg.st, 2, q->to_us);
	sqlite3_bind_text(pg.st, 3, q->identity ? q->identity : "", -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(pg.st, 4, q->method ? q->method : "", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int(pg.st, 5, q->has_cursor);
	sqlite3_bind_int64(pg.st, 6, q->cursor_us);
	sqlite3_bind_int64(pg.st, 7, q->cursor_id);
	sqlite3_bind_int64(pg.st, 8, (int64_t)q->limit + 1);
	rc = store_page(r, &pg, a, &v, n, more, err);
	*out = v;
	return rc;
}

/* ---- counts ------------------------------------------------------------- */

/* For the API's quotas on probes (limits.maxProbes and
 * maxProbesPerIdentity): cheap at their scale (10,000 rows of the probes
 * table's primary key, or of the index on created_by). Prepared on each call:
 * creating a probe is rare, and the reader's statement table stays as it
 * is. */
int km_reader_count_probes(struct km_reader *r, const char *created_by,
			   int64_t *n, struct km_error *err)
{
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	rc = km_store_prepare(r->db,
			      created_by ? "SELECT count(*) FROM probes "
					   "WHERE created_by = ?1"
					 : "SELECT count(*) FROM probes",
			      &st, err);
	if (rc)
		return rc;
	if (created_by)
		sqlite3_bind_text(st, 1, created_by, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	rc = done(r, st, rc, err, "counting probes");
	sqlite3_finalize(st);
	return rc;
}
