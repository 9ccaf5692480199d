/*
 * Storms: the storm guard's record (migrations/0005_storms.sql).
 *
 * The recovery engine writes a storm when it starts and again when it
 * ends, without waiting (it runs on an event loop): both are ops of the
 * writer thread, each its own transaction. A storm left on by a daemon
 * that stopped is ended when the next one starts (km_store_end_storms):
 * the guard counts again from the targets' current health, and a storm
 * that still holds starts again as a new row.
 */
#include <stdlib.h>
#include <string.h>

#include "km_time.h"
#include "store_internal.h"

#define STORM_COLS                                                          \
	"id, group_kind, name, cluster, unhealthy, total, share_pct, why, " \
	"refused, started_at, ended_at, end_note"

static const char *str(const char *s)
{
	return s ? s : "";
}

static int storm_from_row(struct km_arena *a, sqlite3_stmt *st,
			  struct km_storm *m)
{
	memset(m, 0, sizeof *m);
	m->id = sqlite3_column_int64(st, 0);
	m->group = sqlite3_column_int(st, 1);
	m->name = km_store_col_text(a, st, 2);
	m->cluster = km_store_col_text(a, st, 3);
	m->unhealthy = sqlite3_column_int64(st, 4);
	m->total = sqlite3_column_int64(st, 5);
	m->share_pct = sqlite3_column_int(st, 6);
	m->why = km_store_col_text(a, st, 7);
	m->refused = sqlite3_column_int64(st, 8);
	m->started_us = sqlite3_column_int64(st, 9);
	m->ended_us = sqlite3_column_int64(st, 10);
	m->end_note = km_store_col_text(a, st, 11);
	return m->name && m->cluster && m->why && m->end_note ? 0 : KM_ENOMEM;
}

/* ---- writes ------------------------------------------------------------- */

struct begin_args {
	struct km_storm in, *m;
	km_store_done_fn done;
	void *arg;
	char buf[]; /* the strings' copies */
};

static char *put(char **at, const char *v)
{
	char *d = *at;
	size_t n = strlen(v) + 1;

	memcpy(d, v, n);
	*at += n;
	return d;
}

static int begin_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct begin_args *b = arg;
	struct km_storm *m = &b->in;
	sqlite3_stmt *st = NULL;
	int rc;

	rc = km_store_prepare(s->db,
			      "INSERT INTO storms (group_kind, name, cluster, "
			      "unhealthy, total, share_pct, why, started_at) "
			      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
			      "RETURNING id",
			      &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int(st, 1, m->group);
	sqlite3_bind_text(st, 2, str(m->name), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, str(m->cluster), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, m->unhealthy);
	sqlite3_bind_int64(st, 5, m->total);
	sqlite3_bind_int(st, 6, m->share_pct);
	sqlite3_bind_text(st, 7, str(m->why), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, m->started_us);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		m->id = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = km_store_sqlite_err(s->db, rc, err, "insert storm");
	}
	sqlite3_finalize(st);
	return rc;
}

static void begun(void *arg, int rc, const struct km_error *err)
{
	struct begin_args *b = arg;

	if (rc == 0 && b->m)
		b->m->id = b->in.id;
	if (b->done)
		b->done(b->arg, rc, err);
	free(b);
}

int km_store_begin_storm_async(struct km_store *s, struct km_storm *m,
			       km_store_done_fn done, void *arg)
{
	struct begin_args *b;
	char *at;
	int rc;

	if (!m->name || !*m->name ||
	    (m->group != KM_STORM_POLICY && m->group != KM_STORM_ZONE))
		return KM_EINVAL;
	b = calloc(1, sizeof *b + strlen(m->name) + strlen(str(m->cluster)) +
			      strlen(str(m->why)) + 3);
	if (!b)
		return KM_ENOMEM;
	b->in = *m;
	at = b->buf;
	b->in.name = put(&at, m->name);
	b->in.cluster = put(&at, str(m->cluster));
	b->in.why = put(&at, str(m->why));
	b->in.end_note = "";
	if (!b->in.started_us)
		b->in.started_us = km_now_us();
	b->m = done ? m : NULL;
	b->done = done;
	b->arg = arg;
	rc = km_store_run_async(s, begin_op, b, begun, b);
	if (rc)
		free(b);
	return rc;
}

struct end_args {
	int group;
	int64_t at_us, refused;
	const char *name, *cluster, *note;
	km_store_done_fn done;
	void *arg;
	char buf[]; /* the strings' copies */
};

static int end_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct end_args *x = arg;
	sqlite3_stmt *st = NULL;
	int rc;

	rc = km_store_prepare(s->db,
			      "UPDATE storms SET ended_at = ?4, refused = ?5, "
			      "end_note = ?6 WHERE group_kind = ?1 AND name = "
			      "?2 AND cluster = ?3 AND ended_at = 0",
			      &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int(st, 1, x->group);
	sqlite3_bind_text(st, 2, x->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, x->cluster, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, x->at_us);
	sqlite3_bind_int64(st, 5, x->refused);
	sqlite3_bind_text(st, 6, x->note, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_DONE
		     ? 0
		     : km_store_sqlite_err(s->db, rc, err, "end storm");
	if (!rc && sqlite3_changes(s->db) == 0)
		rc = km_error_set(err, KM_ENOTFOUND,
				  "no storm of %s \"%s\"%s%s%s is on",
				  x->group == KM_STORM_ZONE ? "zone" : "policy",
				  x->name, *x->cluster ? " in \"" : "",
				  x->cluster, *x->cluster ? "\"" : "");
	sqlite3_finalize(st);
	return rc;
}

static void ended(void *arg, int rc, const struct km_error *err)
{
	struct end_args *x = arg;

	if (x->done)
		x->done(x->arg, rc, err);
	free(x);
}

int km_store_end_storm_async(struct km_store *s, const struct km_storm *m,
			     km_store_done_fn done, void *arg)
{
	struct end_args *x;
	char *at;
	int rc;

	if (!m->name || !*m->name ||
	    (m->group != KM_STORM_POLICY && m->group != KM_STORM_ZONE) ||
	    m->refused < 0)
		return KM_EINVAL;
	x = calloc(1, sizeof *x + strlen(m->name) + strlen(str(m->cluster)) +
			      strlen(str(m->end_note)) + 3);
	if (!x)
		return KM_ENOMEM;
	at = x->buf;
	x->group = m->group;
	x->name = put(&at, m->name);
	x->cluster = put(&at, str(m->cluster));
	x->note = put(&at, str(m->end_note));
	x->at_us = m->ended_us ? m->ended_us : km_now_us();
	x->refused = m->refused;
	x->done = done;
	x->arg = arg;
	rc = km_store_run_async(s, end_op, x, ended, x);
	if (rc)
		free(x);
	return rc;
}

struct end_all_args {
	int64_t at_us;
	const char *note;
	size_t n;
};

static int end_all_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct end_all_args *x = arg;
	sqlite3_stmt *st = NULL;
	int rc;

	rc = km_store_prepare(s->db,
			      "UPDATE storms SET ended_at = ?1, end_note = ?2 "
			      "WHERE ended_at = 0",
			      &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, x->at_us);
	sqlite3_bind_text(st, 2, x->note, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_DONE
		     ? 0
		     : km_store_sqlite_err(s->db, rc, err, "end storms");
	x->n = rc ? 0 : (size_t)sqlite3_changes(s->db);
	sqlite3_finalize(st);
	return rc;
}

int km_store_end_storms(struct km_store *s, const char *note, size_t *n,
			struct km_error *err)
{
	struct end_all_args x = {.at_us = km_now_us(), .note = str(note)};
	int rc = km_store_run_sync(s, end_all_op, &x, err);

	if (n)
		*n = x.n;
	return rc;
}

/* ---- reads -------------------------------------------------------------- */

static int storm_page_row(struct km_arena *a, sqlite3_stmt *st, void *row,
			  void *arg, struct km_error *err)
{
	(void)arg;
	if (storm_from_row(a, st, row))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	return 0;
}

int km_reader_list_storms(struct km_reader *r, const struct km_storm_query *q,
			  struct km_arena *a, struct km_storm **out, size_t *n,
			  bool *more, struct km_error *err)
{
	struct km_read_page pg = {
		.what = "list storms",
		.limit = q->limit == 0 || q->limit > KM_STORM_PAGE_MAX
				 ? KM_STORM_PAGE_MAX
				 : q->limit,
		.size = sizeof **out,
		.decode = storm_page_row,
	};
	char sql[512] = "SELECT " STORM_COLS " FROM storms WHERE id < ?1";
	void *v;
	int rc;

	*out = NULL;
	*n = 0;
	*more = false;
	if (q->on_only)
		strcat(sql, " AND ended_at = 0");
	if (q->cluster)
		strcat(sql, " AND cluster = ?2");
	/* A storm that overlaps [from_us, to_us). */
	if (q->from_us)
		strcat(sql, " AND (ended_at = 0 OR ended_at >= ?3)");
	if (q->to_us)
		strcat(sql, " AND started_at < ?4");
	strcat(sql, " ORDER BY id DESC LIMIT ?5");
	rc = km_store_prepare(km_reader_db(r), sql, &pg.st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(pg.st, 1,
			   q->before_id > 0 ? q->before_id : INT64_MAX);
	if (q->cluster)
		sqlite3_bind_text(pg.st, 2, q->cluster, -1, SQLITE_STATIC);
	if (q->from_us)
		sqlite3_bind_int64(pg.st, 3, q->from_us);
	if (q->to_us)
		sqlite3_bind_int64(pg.st, 4, q->to_us);
	sqlite3_bind_int64(pg.st, 5, (int64_t)pg.limit + 1);
	rc = km_reader_page(r, &pg, a, &v, n, more, err);
	sqlite3_finalize(pg.st);
	*out = v;
	return rc;
}
