/*
 * A target's history as runs (km_reader_query_runs, km_store.h).
 *
 * Since schema 6 a target's history is its rows of `runs`, plus what is
 * left of `results` (rows written before, which the writer converts into
 * runs oldest first): each such row is shown as a run of one. A page
 * merges both tables in one statement — each table's rows after the
 * cursor, in order, limited to the page, then the two merged — so a page
 * costs O(limit) rows from each table's index, however deep it is.
 *
 * The order is (first_us, src, id): the two tables number their rows
 * separately, so an id alone does not tell two runs apart, and the source
 * decides between rows of one time. A cursor (time, src, id) becomes one
 * row-value bound per table: the cursor's own table continues after
 * (time, id); the other takes all its rows of that time when it sorts
 * after the cursor's table, none when before — an id bound of -inf or
 * +inf (a REAL compared with the integer ids), so that no id, however
 * hostile, falls on the bound.
 *
 * The merge has a price: SQLite sorts each side again for the compound's
 * ORDER BY (a temporary B-tree of the page's rows, messages included),
 * which doubled the cost of a page of 1,000 runs (bench/RESULTS.md,
 * "History reads"). Once a target has no rows left in `results` — every
 * target, after the conversion — its pages are read by the runs part
 * alone, in the index's order, with no sort; one seek in the results'
 * index, in the page's snapshot, tells which.
 */
#include <math.h>
#include <string.h>

#include "store_internal.h"

/* The reader's lazily prepared statements of this file. */
enum {
	/* [outcome any/success/failure] x [newest/oldest first], runs
	 * merged with results; then the same of runs alone. */
	L_RUNS = KM_LAZY_HISTORY,
	L_RUNS_ONLY = L_RUNS + 6,
	L_RUN_BEFORE = L_RUNS_ONLY + 6,
	L_RESULTS_LEFT,
	L_COUNT
};
_Static_assert(L_COUNT <= KM_LAZY_HISTORY + KM_LAZY_HISTORY_SLOTS,
	       "lazy statement slots");

/*
 * ?1 target, ?3 to_us, ?4 from_us; ?2 the runs' lower bound on first_at
 * (from_us, or the first_at of the run that began before from_us and
 * lasts into it); ?5/?6 the runs' cursor, ?7/?8 the results'; ?9 the
 * limit (one more than the page).
 */
#define RUNS_ONLY(cmp, dir, extra)                                             \
	"SELECT 1 AS src, id, first_at AS at, last_at, count, success, "       \
	"error_class, status_code, dur_min, dur_max, dur_sum, first_message, " \
	"last_message FROM runs WHERE target_id = ?1 AND first_at >= ?2 AND "  \
	"first_at < ?3 AND (first_at >= ?4 OR last_at >= ?4) AND (first_at, "  \
	"id) " cmp " (?5, ?6)" extra " ORDER BY first_at " dir ", id " dir     \
	" LIMIT ?9"
#define RUNS_PART(cmp, dir, extra) \
	"SELECT * FROM (" RUNS_ONLY(cmp, dir, extra) ")"
#define RESULTS_PART(cmp, dir, extra)                                           \
	"SELECT * FROM (SELECT 0 AS src, id, started_at AS at, started_at, 1, " \
	"success, error_class, status_code, duration_us, duration_us, "         \
	"duration_us, message, message FROM results WHERE target_id = ?1 AND "  \
	"started_at >= ?4 AND started_at < ?3 AND (started_at, id) " cmp        \
	" (?7, ?8)" extra " ORDER BY started_at " dir ", id " dir " LIMIT ?9)"
#define MERGED(cmp, dir, extra)                                           \
	RUNS_PART(cmp, dir, extra)                                        \
	" UNION ALL " RESULTS_PART(cmp, dir, extra) " ORDER BY 3 " dir    \
						    ", 1 " dir ", 2 " dir \
						    " LIMIT ?9"

static const char *const lazy_sql[L_COUNT - L_RUNS] = {
	MERGED("<", "DESC", ""),
	MERGED(">", "ASC", ""),
	MERGED("<", "DESC", " AND success = 1"),
	MERGED(">", "ASC", " AND success = 1"),
	MERGED("<", "DESC", " AND success = 0"),
	MERGED(">", "ASC", " AND success = 0"),
	/* ?7 and ?8 are bound and unused. */
	RUNS_ONLY("<", "DESC", ""),
	RUNS_ONLY(">", "ASC", ""),
	RUNS_ONLY("<", "DESC", " AND success = 1"),
	RUNS_ONLY(">", "ASC", " AND success = 1"),
	RUNS_ONLY("<", "DESC", " AND success = 0"),
	RUNS_ONLY(">", "ASC", " AND success = 0"),
	/* The run that began last before from_us (it may last into it). */
	[L_RUN_BEFORE - L_RUNS] = "SELECT first_at, last_at, success FROM runs "
				  "WHERE target_id = ?1 AND first_at < ?2 "
				  "ORDER BY first_at DESC, id DESC LIMIT 1",
	/* Whether the target has rows of `results` (not converted yet). */
	[L_RESULTS_LEFT - L_RUNS] =
		"SELECT 1 FROM results WHERE target_id = ?1 LIMIT 1",
};

static int lazy(struct km_reader *r, unsigned slot, sqlite3_stmt **st,
		struct km_error *err)
{
	return km_reader_lazy_stmt(r, slot, lazy_sql[slot - L_RUNS], st, err);
}

static const char *opt_text(struct km_arena *a, sqlite3_stmt *st, int col,
			    bool *oom)
{
	const char *s;

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return NULL;
	if (!(s = km_store_col_text(a, st, col)))
		*oom = true;
	return s;
}

static int run_row(struct km_arena *a, sqlite3_stmt *st, void *row, void *arg,
		   struct km_error *err)
{
	struct km_run_row *v = row;
	const int64_t *target_id = arg;
	bool oom = false;

	memset(v, 0, sizeof *v);
	v->src = sqlite3_column_int(st, 0);
	v->id = sqlite3_column_int64(st, 1);
	v->target_id = *target_id;
	v->first_us = sqlite3_column_int64(st, 2);
	v->last_us = sqlite3_column_int64(st, 3);
	v->count = sqlite3_column_int64(st, 4);
	v->success = sqlite3_column_int(st, 5) != 0;
	v->error_class = sqlite3_column_int(st, 6);
	v->status_code = sqlite3_column_int(st, 7);
	v->dur_min_us = sqlite3_column_int64(st, 8);
	v->dur_max_us = sqlite3_column_int64(st, 9);
	v->dur_sum_us = sqlite3_column_int64(st, 10);
	v->first_message = opt_text(a, st, 11, &oom);
	v->last_message = opt_text(a, st, 12, &oom);
	if (!v->last_message) /* stored once when the two are equal */
		v->last_message = v->first_message;
	if (oom)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	/* The database is input too: what would make a mean or a time
	 * range nonsense is refused, naming the row. */
	if (v->src == KM_RUN_SRC_RUN &&
	    (v->count < 1 || v->last_us < v->first_us ||
	     v->dur_min_us > v->dur_max_us))
		return km_error_set(err, KM_ECORRUPT,
				    "runs row %lld of target %lld: not a run "
				    "(count %lld, first_at %lld, last_at "
				    "%lld, dur_min %lld, dur_max %lld)",
				    (long long)v->id, (long long)v->target_id,
				    (long long)v->count, (long long)v->first_us,
				    (long long)v->last_us,
				    (long long)v->dur_min_us,
				    (long long)v->dur_max_us);
	return 0;
}

/* Binds one table's cursor (params p, p+1) for the table of source src:
 * see the file's comment. */
static void bind_cursor(sqlite3_stmt *st, int p, int src,
			const struct km_runs_query *q)
{
	bool asc = q->oldest_first;

	if (!q->has_cursor) {
		sqlite3_bind_int64(st, p, asc ? INT64_MIN : INT64_MAX);
		sqlite3_bind_double(st, p + 1, asc ? -INFINITY : INFINITY);
		return;
	}
	sqlite3_bind_int64(st, p, q->cursor_us);
	if (q->cursor_src == src)
		sqlite3_bind_int64(st, p + 1, q->cursor_id);
	/* Another table's rows of the cursor's time: all of them follow the
	 * cursor in the page's order (bound -inf ascending, +inf
	 * descending) when this table sorts after the cursor's ascending,
	 * or before it descending; else none does. */
	else if ((src > q->cursor_src) == asc)
		sqlite3_bind_double(st, p + 1, asc ? -INFINITY : INFINITY);
	else
		sqlite3_bind_double(st, p + 1, asc ? INFINITY : -INFINITY);
}

/* The lower bound on the first_at of the runs that can overlap [from,
 * ...): from itself, or the start of the run that began last before it
 * when that run lasts into it and has the outcome asked for. */
static int runs_lower_bound(struct km_reader *r, const struct km_runs_query *q,
			    int64_t *lb, struct km_error *err)
{
	sqlite3_stmt *st;
	int rc;

	*lb = q->from_us;
	if (q->from_us == INT64_MIN)
		return 0;
	if ((rc = lazy(r, L_RUN_BEFORE, &st, err)))
		return rc;
	sqlite3_bind_int64(st, 1, q->target_id);
	sqlite3_bind_int64(st, 2, q->from_us);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_int64(st, 1) >= q->from_us) {
		bool ok = sqlite3_column_int(st, 2) != 0;

		if (q->outcome == KM_OUTCOME_ANY ||
		    ok == (q->outcome == KM_OUTCOME_SUCCESS))
			*lb = sqlite3_column_int64(st, 0);
	}
	return km_reader_done(r, st, rc, err, "query runs");
}

/* Whether the target has rows of `results` left: one seek in their
 * index. */
static int results_left(struct km_reader *r, int64_t target_id, bool *left,
			struct km_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = lazy(r, L_RESULTS_LEFT, &st, err)))
		return rc;
	sqlite3_bind_int64(st, 1, target_id);
	rc = sqlite3_step(st);
	*left = rc == SQLITE_ROW;
	return km_reader_done(r, st, rc, err, "query runs");
}

static int query_runs(struct km_reader *r, const struct km_runs_query *q,
		      struct km_arena *a, struct km_run_row **out, size_t *n,
		      bool *more, struct km_error *err)
{
	int outcome = q->outcome >= 0 && q->outcome <= 2 ? q->outcome : 0;
	int64_t target_id = q->target_id, lb;
	struct km_read_page pg = {.what = "query runs",
				  .limit = q->limit,
				  .size = sizeof **out,
				  .decode = run_row,
				  .arg = &target_id};
	void *v;
	bool left;
	int rc;

	if (pg.limit == 0 || pg.limit > KM_RUNS_PAGE_MAX)
		pg.limit = KM_RUNS_PAGE_MAX;
	rc = runs_lower_bound(r, q, &lb, err);
	if (!rc)
		rc = results_left(r, q->target_id, &left, err);
	if (!rc)
		rc = lazy(r,
			  (left ? L_RUNS : L_RUNS_ONLY) + 2 * outcome +
				  (q->oldest_first ? 1 : 0),
			  &pg.st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(pg.st, 1, q->target_id);
	sqlite3_bind_int64(pg.st, 2, lb);
	sqlite3_bind_int64(pg.st, 3, q->to_us);
	sqlite3_bind_int64(pg.st, 4, q->from_us);
	bind_cursor(pg.st, 5, KM_RUN_SRC_RUN, q);
	bind_cursor(pg.st, 7, KM_RUN_SRC_RESULT, q);
	/* One row more than asked tells whether another page follows. */
	sqlite3_bind_int64(pg.st, 9, (int64_t)pg.limit + 1);
	rc = km_reader_page(r, &pg, a, &v, n, more, err);
	*out = v;
	return rc;
}

/* -1, 0, 1: a before, at, after b in (first_us, src, id) order. */
static int cmp_key(int64_t at, int src, int64_t id, int64_t bt, int bsrc,
		   int64_t bid)
{
	if (at != bt)
		return at < bt ? -1 : 1;
	if (src != bsrc)
		return src < bsrc ? -1 : 1;
	return id < bid ? -1 : id > bid;
}

/* Whether row v comes after row w in the page's order. */
static bool follows(const struct km_runs_query *q, const struct km_run_row *v,
		    const struct km_run_row *w)
{
	int c = cmp_key(v->first_us, v->src, v->id, w->first_us, w->src, w->id);

	return q->oldest_first ? c > 0 : c < 0;
}

/* The target's open run, as the writer holds it now: its row (if it has
 * one yet) is older — up to the flush interval behind. It takes its row's
 * place, or (not written yet: id 0) its own, as the target's newest run,
 * when it overlaps the range, has the outcome asked for, follows the
 * cursor, and falls within the page (a full page with more after it
 * leaves it to a later one). */
static int merge_open(struct km_reader *r, const struct km_runs_query *q,
		      size_t limit, struct km_arena *a, struct km_run_row **out,
		      size_t *n, bool *more, struct km_error *err)
{
	struct km_run_row o, *v;
	size_t at = 0;
	int rc = km_fold_open_run(km_reader_store(r), q->target_id, a, &o);

	if (rc == KM_ENOTFOUND)
		return 0;
	if (rc)
		return km_error_set(err, rc, "out of memory");
	for (size_t i = 0; o.id && i < *n; i++)
		if ((*out)[i].src == KM_RUN_SRC_RUN && (*out)[i].id == o.id) {
			memmove(&(*out)[i], &(*out)[i + 1],
				(*n - i - 1) * sizeof **out);
			(*n)--;
			break;
		}
	if (o.first_us >= q->to_us || o.last_us < q->from_us ||
	    (q->outcome == KM_OUTCOME_SUCCESS && !o.success) ||
	    (q->outcome == KM_OUTCOME_FAILURE && o.success))
		return 0;
	if (q->has_cursor) {
		struct km_run_row c = {.first_us = q->cursor_us,
				       .src = q->cursor_src,
				       .id = q->cursor_id};

		if (!follows(q, &o, &c))
			return 0;
	}
	while (at < *n && follows(q, &o, &(*out)[at]))
		at++;
	if (at == *n && *more && *n >= limit)
		return 0;
	if (!(v = km_arena_alloc(a, (*n + 1) * sizeof *v)))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	memcpy(v, *out, at * sizeof *v);
	v[at] = o;
	memcpy(v + at + 1, *out + at, (*n - at) * sizeof *v);
	*out = v;
	if (++*n > limit) {
		(*n)--;
		*more = true;
	}
	return 0;
}

int km_reader_query_runs(struct km_reader *r, const struct km_runs_query *q,
			 struct km_arena *a, struct km_run_row **out, size_t *n,
			 bool *more, struct km_error *err)
{
	/* The run before from_us and the page: one snapshot (unless the
	 * caller holds one already). */
	bool own = sqlite3_get_autocommit(km_reader_db(r));
	int rc;

	*out = NULL;
	*n = 0;
	*more = false;
	if (q->cursor_src != KM_RUN_SRC_RESULT &&
	    q->cursor_src != KM_RUN_SRC_RUN)
		return km_error_set(err, KM_EINVAL,
				    "query runs: cursor source %d is neither "
				    "a run nor a result",
				    q->cursor_src);
	if (own && (rc = km_reader_begin(r, err)))
		return rc;
	rc = query_runs(r, q, a, out, n, more, err);
	if (own)
		km_reader_end(r);
	if (!rc)
		rc = merge_open(r, q,
				q->limit && q->limit <= KM_RUNS_PAGE_MAX
					? q->limit
					: KM_RUNS_PAGE_MAX,
				a, out, n, more, err);
	return rc;
}
