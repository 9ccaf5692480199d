/*
 * Recoveries: their rows, their events, and the reads of both.
 *
 * A recovery is written by the writer thread only, like everything else:
 * its creation and each change run as an op in a batch (synchronous for an
 * API caller, asynchronous for the recovery engine's event loop), and each
 * writes the row and one recovery_events row together, so the history is
 * never behind the row nor the row behind its history. The event is told
 * to the recovery listener after the commit (km_store_note_recovery).
 *
 * An event, read back or told, is the recovery's row reduced to what the
 * event row records (struct km_recovery_event): the identity columns never
 * change after creation, so a replay from the database and what the
 * listener was told are the same, field for field.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_time.h"
#include "store_internal.h"

/* ---- rows <-> structs -------------------------------------------------- */

/* Columns 0..24, decoded by recovery_from_row; the last is the newest
 * event's seq (the index recovery_events_recovery answers it). */
#define RECOVERY_COLS                                                       \
	"id, target_id, target_name, cluster, target_uid, action, phase, "  \
	"reason, requester, policy, idempotency_key, dry_run, force, "      \
	"attempts, skip_rule, last_error, http_status, cause_seq, "         \
	"created_at, updated_at, dispatched_at, finished_at, verified_at, " \
	"not_before, (SELECT max(seq) FROM recovery_events WHERE "          \
	"recovery_id = recoveries.id)"

/* 0, or KM_ENOMEM when a string could not be copied into a. */
static int recovery_from_row(struct km_arena *a, sqlite3_stmt *st,
			     struct km_recovery *r)
{
	memset(r, 0, sizeof *r);
	r->id = sqlite3_column_int64(st, 0);
	r->target_id = sqlite3_column_int64(st, 1);
	r->target = km_store_col_text(a, st, 2);
	r->cluster = km_store_col_text(a, st, 3);
	r->target_uid = km_store_col_text(a, st, 4);
	r->action = sqlite3_column_int(st, 5);
	r->phase = sqlite3_column_int(st, 6);
	r->reason = km_store_col_text(a, st, 7);
	r->requester = km_store_col_text(a, st, 8);
	r->policy = km_store_col_text(a, st, 9);
	r->idempotency_key = km_store_col_text(a, st, 10);
	r->dry_run = sqlite3_column_int(st, 11);
	r->force = sqlite3_column_int(st, 12);
	r->attempts = sqlite3_column_int(st, 13);
	r->skip_rule = km_store_col_text(a, st, 14);
	r->last_error = km_store_col_text(a, st, 15);
	r->http_status = sqlite3_column_int(st, 16);
	r->cause_seq = sqlite3_column_int64(st, 17);
	r->created_us = sqlite3_column_int64(st, 18);
	r->updated_us = sqlite3_column_int64(st, 19);
	r->dispatched_us = sqlite3_column_int64(st, 20);
	r->finished_us = sqlite3_column_int64(st, 21);
	r->verified_us = sqlite3_column_int64(st, 22);
	r->not_before_us = sqlite3_column_int64(st, 23);
	r->seq = sqlite3_column_int64(st, 24);
	if (!r->target || !r->cluster || !r->target_uid || !r->reason ||
	    !r->requester || !r->policy || !r->idempotency_key ||
	    !r->skip_rule || !r->last_error)
		return KM_ENOMEM;
	return 0;
}

/* The event seq made of the recovery row as it left it (see
 * struct km_recovery_event): the one rule for what an event holds, for
 * the listener and for replays alike. */
static void event_of(struct km_recovery_event *e, const struct km_recovery *row,
		     int64_t seq, int64_t at_us)
{
	e->seq = seq;
	e->at_us = at_us;
	e->r = *row;
	e->r.seq = seq;
	e->r.updated_us = at_us;
	if (e->r.phase != KM_PHASE_SKIPPED)
		e->r.skip_rule = "";
	e->r.dispatched_us = e->r.finished_us = e->r.verified_us = 0;
	e->r.not_before_us = 0;
}

static const char *str(const char *s)
{
	return s ? s : "";
}

/* ---- writes (on the writer thread) ------------------------------------- */

/* Appends the event of row (as it now is) and notes it for the listener.
 * Sets *seq. */
static int write_event(struct km_store *s, const struct km_recovery *row,
		       int64_t at_us, int64_t *seq, struct km_error *err)
{
	struct km_recovery_event e, *copy;
	sqlite3_stmt *st = NULL;
	int rc;

	rc = km_store_prepare(s->db,
			      "INSERT INTO recovery_events (recovery_id, at, "
			      "phase, attempts, http_status, message) VALUES "
			      "(?1, ?2, ?3, ?4, ?5, ?6)",
			      &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, row->id);
	sqlite3_bind_int64(st, 2, at_us);
	sqlite3_bind_int(st, 3, row->phase);
	sqlite3_bind_int(st, 4, row->attempts);
	sqlite3_bind_int(st, 5, row->http_status);
	sqlite3_bind_text(st, 6, str(row->last_error), -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return km_store_sqlite_err(s->db, rc, err,
					   "insert recovery event");
	*seq = sqlite3_last_insert_rowid(s->db);
	event_of(&e, row, *seq, at_us);
	copy = km_recovery_event_dup(&e);
	if (!copy || km_store_note_recovery(s, copy))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	return 0;
}

/* Reads recovery id (by_key NULL) or the one of idempotency key by_key
 * into *out, strings in a. KM_ENOTFOUND without a message when there is
 * none (the caller words it). */
static int read_recovery(struct km_store *s, int64_t id, const char *by_key,
			 struct km_arena *a, struct km_recovery *out,
			 struct km_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = km_store_prepare(s->db,
			      by_key ? "SELECT " RECOVERY_COLS
				       " FROM recoveries WHERE "
				       "idempotency_key = ?1"
				     : "SELECT " RECOVERY_COLS
				       " FROM recoveries WHERE id = ?1",
			      &st, err);
	if (rc)
		return rc;
	if (by_key)
		sqlite3_bind_text(st, 1, by_key, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = recovery_from_row(a, st, out)
			     ? km_error_set(err, KM_ENOMEM, "out of memory")
			     : 0;
	else if (rc == SQLITE_DONE)
		rc = KM_ENOTFOUND;
	else
		rc = km_store_sqlite_err(s->db, rc, err, "read recovery");
	sqlite3_finalize(st);
	return rc;
}

struct create_args {
	struct km_recovery *r;
	struct km_arena *a;
	bool existed;
};

/* The live target r->target: sets target_id, cluster, and target_uid when
 * it is empty (strings in a). */
static int find_live_target(struct km_store *s, struct km_recovery *r,
			    struct km_arena *a, struct km_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = km_store_prepare(s->db,
			      "SELECT id, cluster, uid FROM targets WHERE "
			      "name = ?1 AND deleted_at = 0",
			      &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, r->target, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->target_id = sqlite3_column_int64(st, 0);
		r->cluster = km_store_col_text(a, st, 1);
		if (!r->target_uid || !r->target_uid[0])
			r->target_uid = km_store_col_text(a, st, 2);
		rc = r->cluster && r->target_uid
			     ? 0
			     : km_error_set(err, KM_ENOMEM, "out of memory");
	} else if (rc == SQLITE_DONE) {
		rc = km_error_set(err, KM_ENOTFOUND,
				  "target \"%s\" not found (or deleted): a "
				  "recovery acts on a live target",
				  r->target);
	} else {
		rc = km_store_sqlite_err(s->db, rc, err, "find target");
	}
	sqlite3_finalize(st);
	return rc;
}

static int create_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct create_args *c = arg;
	struct km_recovery *r = c->r;
	sqlite3_stmt *st = NULL;
	int rc;

	if (r->idempotency_key && r->idempotency_key[0]) {
		rc = read_recovery(s, 0, r->idempotency_key, c->a, r, err);
		if (rc == 0)
			c->existed = true;
		if (rc != KM_ENOTFOUND)
			return rc;
		/* read_recovery cleared r only on a row; r is intact. */
	}
	rc = find_live_target(s, r, c->a, err);
	if (rc)
		return rc;
	if (!r->phase)
		r->phase = KM_PHASE_REQUESTED;
	r->created_us = r->updated_us = r->created_us ? r->created_us
						      : km_now_us();

	rc = km_store_prepare(
		s->db,
		"INSERT INTO recoveries (target_id, target_name, cluster, "
		"target_uid, action, phase, reason, requester, policy, "
		"idempotency_key, dry_run, force, attempts, skip_rule, "
		"last_error, http_status, cause_seq, created_at, updated_at, "
		"not_before) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
		"?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18, ?19) "
		"RETURNING id",
		&st, err);
	if (rc)
		return rc;
#define TEXT(i, v) sqlite3_bind_text(st, i, str(v), -1, SQLITE_STATIC)
	sqlite3_bind_int64(st, 1, r->target_id);
	TEXT(2, r->target);
	TEXT(3, r->cluster);
	TEXT(4, r->target_uid);
	sqlite3_bind_int(st, 5, r->action);
	sqlite3_bind_int(st, 6, r->phase);
	TEXT(7, r->reason);
	TEXT(8, r->requester);
	TEXT(9, r->policy);
	TEXT(10, r->idempotency_key);
	sqlite3_bind_int(st, 11, r->dry_run);
	sqlite3_bind_int(st, 12, r->force);
	sqlite3_bind_int(st, 13, r->attempts);
	TEXT(14, r->skip_rule);
	TEXT(15, r->last_error);
	sqlite3_bind_int(st, 16, r->http_status);
	sqlite3_bind_int64(st, 17, r->cause_seq);
	sqlite3_bind_int64(st, 18, r->created_us);
	sqlite3_bind_int64(st, 19, r->not_before_us > 0 ? r->not_before_us : 0);
#undef TEXT
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->id = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = km_store_sqlite_err(s->db, rc, err, "insert recovery");
	}
	sqlite3_finalize(st);
	if (rc)
		return rc;
	r->dispatched_us = r->finished_us = r->verified_us = 0;
	if (r->not_before_us < 0)
		r->not_before_us = 0;
	return write_event(s, r, r->created_us, &r->seq, err);
}

int km_store_create_recovery(struct km_store *s, struct km_recovery *r,
			     struct km_arena *a, bool *existed,
			     struct km_error *err)
{
	/* The op works on a copy: r is changed only by a commit. */
	struct km_recovery in = *r;
	struct create_args c = {.r = &in, .a = a};
	int rc;

	assert(a);
	if (existed)
		*existed = false;
	if (!r->target || !r->target[0])
		return km_error_set(err, KM_EINVAL,
				    "a recovery needs a target");
	if (!km_action_name(r->action))
		return km_error_set(err, KM_EINVAL,
				    "recovery of \"%s\": unknown action %d",
				    r->target, r->action);
	if (r->phase && r->phase != KM_PHASE_REQUESTED &&
	    r->phase != KM_PHASE_SKIPPED && r->phase != KM_PHASE_DRY_RUN)
		return km_error_set(err, KM_EINVAL,
				    "recovery of \"%s\": a recovery starts "
				    "requested, skipped or dry_run, not %s",
				    r->target,
				    km_phase_name(r->phase)
					    ? km_phase_name(r->phase)
					    : "out of range");
	rc = km_store_run_sync(s, create_op, &c, err);
	if (rc == 0) {
		*r = in;
		if (existed)
			*existed = c.existed;
	}
	return rc;
}

struct create_async {
	struct create_args c;
	struct km_recovery in, *r;
	bool *existed;
	km_store_done_fn done;
	void *arg;
};

static void created(void *arg, int rc, const struct km_error *err)
{
	struct create_async *x = arg;

	if (rc == 0) {
		*x->r = x->in;
		if (x->existed)
			*x->existed = x->c.existed;
	}
	x->done(x->arg, rc, err);
	free(x);
}

int km_store_create_recovery_async(struct km_store *s, struct km_recovery *r,
				   struct km_arena *a, bool *existed,
				   km_store_done_fn done, void *arg)
{
	struct create_async *x;
	int rc;

	assert(a);
	if (existed)
		*existed = false;
	if (!r->target || !r->target[0] || !km_action_name(r->action) ||
	    (r->phase && r->phase != KM_PHASE_REQUESTED &&
	     r->phase != KM_PHASE_SKIPPED && r->phase != KM_PHASE_DRY_RUN))
		return KM_EINVAL;
	x = calloc(1, sizeof *x);
	if (!x)
		return KM_ENOMEM;
	x->in = *r;
	x->r = r;
	x->c = (struct create_args){.r = &x->in, .a = a};
	x->existed = existed;
	x->done = done;
	x->arg = arg;
	rc = km_store_run_async(s, create_op, &x->c, created, x);
	if (rc)
		free(x);
	return rc;
}

/* An update, with what the writer sets once it has run. */
struct update_args {
	struct km_recovery_update *u;
	int64_t seq, at_us; /* the event's, copied to u once committed */
	km_store_done_fn done;
	void *done_arg;
};

static int update_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct update_args *ua = arg;
	const struct km_recovery_update *u = ua->u;
	struct km_arena a;
	struct km_recovery r;
	sqlite3_stmt *st = NULL;
	int64_t at;
	int rc;

	km_arena_init(&a, 1024);
	rc = read_recovery(s, u->id, NULL, &a, &r, err);
	if (rc == KM_ENOTFOUND)
		rc = km_error_set(err, KM_ENOTFOUND, "recovery %lld not found",
				  (long long)u->id);
	if (rc)
		goto out;
	if (km_recovery_phase_final(r.phase)) {
		rc = km_error_set(err, KM_EPRECOND,
				  "recovery %lld is %s, a final phase: it "
				  "changes no more",
				  (long long)u->id, km_phase_name(r.phase));
		goto out;
	}
	if (u->expected_phase && u->expected_phase != r.phase) {
		const char *want = km_phase_name(u->expected_phase);

		rc = km_error_set(err, KM_EPRECOND,
				  "recovery %lld is %s, not %s: it changed "
				  "since it was read",
				  (long long)u->id,
				  km_phase_name(r.phase)
					  ? km_phase_name(r.phase)
					  : "in no known phase",
				  want ? want : "(a phase out of range)");
		goto out;
	}

	at = u->at_us ? u->at_us : km_now_us();
	if (u->phase)
		r.phase = u->phase;
	if (u->attempts > 0)
		r.attempts = u->attempts;
	if (u->http_status)
		r.http_status = u->http_status > 0 ? u->http_status : 0;
	if (u->message)
		r.last_error = u->message;
	if (u->skip_rule)
		r.skip_rule = u->skip_rule;
	if (u->not_before_us > 0)
		r.not_before_us = u->not_before_us;
	else if (u->not_before_us < 0 || km_recovery_phase_final(r.phase))
		r.not_before_us = 0;
	switch (u->phase) {
	case KM_PHASE_DISPATCHED: r.dispatched_us = at; break;
	case KM_PHASE_SUCCEEDED:
	case KM_PHASE_FAILED: r.finished_us = at; break;
	case KM_PHASE_VERIFIED:
	case KM_PHASE_NOT_RECOVERED: r.verified_us = at; break;
	}
	r.updated_us = at;

	rc = km_store_prepare(
		s->db,
		"UPDATE recoveries SET phase = ?2, attempts = ?3, "
		"http_status = ?4, last_error = ?5, skip_rule = "
		"?6, updated_at = ?7, dispatched_at = ?8, "
		"finished_at = ?9, verified_at = ?10, not_before "
		"= ?11 WHERE id = ?1",
		&st, err);
	if (rc)
		goto out;
	sqlite3_bind_int64(st, 1, r.id);
	sqlite3_bind_int(st, 2, r.phase);
	sqlite3_bind_int(st, 3, r.attempts);
	sqlite3_bind_int(st, 4, r.http_status);
	sqlite3_bind_text(st, 5, str(r.last_error), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, str(r.skip_rule), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, r.updated_us);
	sqlite3_bind_int64(st, 8, r.dispatched_us);
	sqlite3_bind_int64(st, 9, r.finished_us);
	sqlite3_bind_int64(st, 10, r.verified_us);
	sqlite3_bind_int64(st, 11, r.not_before_us);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		rc = km_store_sqlite_err(s->db, rc, err, "update recovery");
		goto out;
	}
	rc = write_event(s, &r, at, &ua->seq, err);
	if (rc == 0)
		ua->at_us = at;
out:
	km_arena_free(&a);
	return rc;
}

static int check_update(const struct km_recovery_update *u,
			struct km_error *err)
{
	if (u->phase < 0 || u->phase > KM_PHASE_MAX)
		return km_error_set(err, KM_EINVAL,
				    "recovery %lld: phase %d is out of range",
				    (long long)u->id, u->phase);
	return 0;
}

int km_store_update_recovery(struct km_store *s, struct km_recovery_update *u,
			     struct km_error *err)
{
	struct update_args ua = {.u = u};
	int rc = check_update(u, err);

	if (!rc)
		rc = km_store_run_sync(s, update_op, &ua, err);
	if (!rc) {
		u->seq = ua.seq;
		u->at_us = ua.at_us;
	}
	return rc;
}

static void update_done(void *arg, int rc, const struct km_error *err)
{
	struct update_args *ua = arg;

	if (!rc) {
		ua->u->seq = ua->seq;
		ua->u->at_us = ua->at_us;
	}
	ua->done(ua->done_arg, rc, err);
	free(ua);
}

/* An invalid update is refused on the writer thread too, through done:
 * an event loop has one way to hear how its write went. */
static int refuse_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct update_args *ua = arg;

	(void)s;
	return check_update(ua->u, err);
}

int km_store_update_recovery_async(struct km_store *s,
				   struct km_recovery_update *u,
				   km_store_done_fn done, void *arg)
{
	struct update_args *ua = malloc(sizeof *ua);
	int rc;

	if (!ua)
		return KM_ENOMEM;
	*ua = (struct update_args){.u = u, .done = done, .done_arg = arg};
	rc = km_store_run_async(s,
				check_update(u, NULL) ? refuse_op : update_op,
				ua, update_done, ua);
	if (rc)
		free(ua);
	return rc;
}

/* ---- reads --------------------------------------------------------------- */

/* The reader's lazily prepared statements of this file. */
enum {
	L_GET = KM_LAZY_RECOVERY,
	L_GET_BY_KEY,
	L_EVENTS_AFTER,
	L_EVENTS_AFTER_TARGET,
	L_OPEN,
	L_COUNT
};
_Static_assert(L_COUNT <= KM_LAZY_RECOVERY + 8, "lazy statement slots");

#define EVENTS_AFTER(filter)                                                  \
	"SELECT e.seq, e.at, e.phase, e.attempts, e.http_status, e.message, " \
	"r.id, r.target_id, r.target_name, r.cluster, r.target_uid, "         \
	"r.action, r.reason, r.requester, r.policy, r.idempotency_key, "      \
	"r.dry_run, r.force, r.skip_rule, r.cause_seq, r.created_at "         \
	"FROM recovery_events e JOIN recoveries r ON r.id = e.recovery_id "   \
	"WHERE e.seq > ?1" filter " ORDER BY e.seq LIMIT ?2"

static const char *const lazy_sql[L_COUNT] = {
	[L_GET] = "SELECT " RECOVERY_COLS " FROM recoveries WHERE id = ?1",
	/* The unique index recoveries_idempotency finds it. */
	[L_GET_BY_KEY] = "SELECT " RECOVERY_COLS " FROM recoveries WHERE "
			 "idempotency_key = ?1 AND idempotency_key <> ''",
	[L_EVENTS_AFTER] = EVENTS_AFTER(""),
	[L_EVENTS_AFTER_TARGET] = EVENTS_AFTER(" AND r.target_name = ?3"),
	/* The partial index recoveries_open holds exactly these. */
	[L_OPEN] = "SELECT " RECOVERY_COLS
		   " FROM recoveries WHERE phase IN (1, 2, 3, 4) ORDER BY id",
};

static size_t page_limit(size_t limit)
{
	return limit == 0 || limit > KM_RECOVERY_PAGE_MAX ? KM_RECOVERY_PAGE_MAX
							  : limit;
}

static int recovery_page_row(struct km_arena *a, sqlite3_stmt *st, void *row,
			     void *arg, struct km_error *err)
{
	(void)arg;
	if (recovery_from_row(a, st, row))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	return 0;
}

/* One recovery by the statement in slot (id or key bound by the caller's
 * bind). */
static int get_one(struct km_reader *r, unsigned slot, int64_t id,
		   const char *key, struct km_arena *a, struct km_recovery *out,
		   struct km_error *err)
{
	sqlite3_stmt *st;
	int rc = km_reader_lazy_stmt(r, slot, lazy_sql[slot], &st, err);

	if (rc)
		return rc;
	if (key)
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		km_reader_done(r, st, rc, err, "get recovery");
		return key ? km_error_set(err, KM_ENOTFOUND,
					  "no recovery has that idempotency "
					  "key")
			   : km_error_set(err, KM_ENOTFOUND,
					  "recovery %lld not found",
					  (long long)id);
	}
	if (rc == SQLITE_ROW && recovery_from_row(a, st, out)) {
		km_reader_done(r, st, rc, err, "get recovery");
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	return km_reader_done(r, st, rc, err, "get recovery");
}

int km_reader_get_recovery(struct km_reader *r, int64_t id, struct km_arena *a,
			   struct km_recovery *out, struct km_error *err)
{
	return get_one(r, L_GET, id, NULL, a, out, err);
}

int km_reader_get_recovery_by_key(struct km_reader *r, const char *key,
				  struct km_arena *a, struct km_recovery *out,
				  struct km_error *err)
{
	if (!key || !*key)
		return km_error_set(err, KM_ENOTFOUND,
				    "no recovery has an empty key");
	return get_one(r, L_GET_BY_KEY, 0, key, a, out, err);
}

/* Why prepared on each call: a list has up to seven filters, and a
 * statement holding each as "(? IS NULL OR col = ?)" can use no index;
 * with only the filters given, SQLite seeks the index of one of them.
 * Lists are read by people, a page at a time; preparing costs tens of
 * microseconds. */
int km_reader_list_recoveries(struct km_reader *r,
			      const struct km_recovery_query *q,
			      struct km_arena *a, struct km_recovery **out,
			      size_t *n, bool *more, struct km_error *err)
{
	struct km_read_page pg = {.what = "list recoveries",
				  .limit = page_limit(q->limit),
				  .size = sizeof **out,
				  .decode = recovery_page_row};
	char sql[1024] = "SELECT " RECOVERY_COLS
			 " FROM recoveries WHERE id < ?1";
	void *v;
	int rc;

	*out = NULL;
	*n = 0;
	*more = false;
	/* At most every clause: well within sql. */
	if (q->target)
		strcat(sql, " AND target_name = ?2");
	if (q->cluster)
		strcat(sql, " AND cluster = ?3");
	if (q->action)
		strcat(sql, " AND action = ?4");
	if (q->phase)
		strcat(sql, " AND phase = ?5");
	if (q->requester)
		strcat(sql, " AND requester = ?6");
	if (q->from_us)
		strcat(sql, " AND created_at >= ?7");
	if (q->to_us)
		strcat(sql, " AND created_at < ?8");
	strcat(sql, " ORDER BY id DESC LIMIT ?9");
	rc = km_store_prepare(km_reader_db(r), sql, &pg.st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(pg.st, 1,
			   q->before_id > 0 ? q->before_id : INT64_MAX);
	if (q->target)
		sqlite3_bind_text(pg.st, 2, q->target, -1, SQLITE_STATIC);
	if (q->cluster)
		sqlite3_bind_text(pg.st, 3, q->cluster, -1, SQLITE_STATIC);
	if (q->action)
		sqlite3_bind_int(pg.st, 4, q->action);
	if (q->phase)
		sqlite3_bind_int(pg.st, 5, q->phase);
	if (q->requester)
		sqlite3_bind_text(pg.st, 6, q->requester, -1, SQLITE_STATIC);
	if (q->from_us)
		sqlite3_bind_int64(pg.st, 7, q->from_us);
	if (q->to_us)
		sqlite3_bind_int64(pg.st, 8, q->to_us);
	sqlite3_bind_int64(pg.st, 9, (int64_t)pg.limit + 1);
	rc = km_reader_page(r, &pg, a, &v, n, more, err);
	sqlite3_finalize(pg.st);
	*out = v;
	return rc;
}

static int event_page_row(struct km_arena *a, sqlite3_stmt *st, void *row,
			  void *arg, struct km_error *err)
{
	struct km_recovery_event *e = row;
	struct km_recovery rec = {0};

	(void)arg;
	rec.phase = sqlite3_column_int(st, 2);
	rec.attempts = sqlite3_column_int(st, 3);
	rec.http_status = sqlite3_column_int(st, 4);
	rec.last_error = km_store_col_text(a, st, 5);
	rec.id = sqlite3_column_int64(st, 6);
	rec.target_id = sqlite3_column_int64(st, 7);
	rec.target = km_store_col_text(a, st, 8);
	rec.cluster = km_store_col_text(a, st, 9);
	rec.target_uid = km_store_col_text(a, st, 10);
	rec.action = sqlite3_column_int(st, 11);
	rec.reason = km_store_col_text(a, st, 12);
	rec.requester = km_store_col_text(a, st, 13);
	rec.policy = km_store_col_text(a, st, 14);
	rec.idempotency_key = km_store_col_text(a, st, 15);
	rec.dry_run = sqlite3_column_int(st, 16);
	rec.force = sqlite3_column_int(st, 17);
	rec.skip_rule = km_store_col_text(a, st, 18);
	rec.cause_seq = sqlite3_column_int64(st, 19);
	rec.created_us = sqlite3_column_int64(st, 20);
	if (!rec.last_error || !rec.target || !rec.cluster || !rec.target_uid ||
	    !rec.reason || !rec.requester || !rec.policy ||
	    !rec.idempotency_key || !rec.skip_rule)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	event_of(e, &rec, sqlite3_column_int64(st, 0),
		 sqlite3_column_int64(st, 1));
	return 0;
}

int km_reader_recovery_events_after(struct km_reader *r, int64_t after_seq,
				    const char *target, size_t limit,
				    struct km_arena *a,
				    struct km_recovery_event **out, size_t *n,
				    bool *more, struct km_error *err)
{
	int slot = target ? L_EVENTS_AFTER_TARGET : L_EVENTS_AFTER;
	struct km_read_page pg = {.what = "recovery events after",
				  .limit = page_limit(limit),
				  .size = sizeof **out,
				  .decode = event_page_row};
	void *v;
	int rc;

	*out = NULL;
	*n = 0;
	*more = false;
	rc = km_reader_lazy_stmt(r, (unsigned)slot, lazy_sql[slot], &pg.st,
				 err);
	if (rc)
		return rc;
	sqlite3_bind_int64(pg.st, 1, after_seq);
	sqlite3_bind_int64(pg.st, 2, (int64_t)pg.limit + 1);
	if (target)
		sqlite3_bind_text(pg.st, 3, target, -1, SQLITE_STATIC);
	rc = km_reader_page(r, &pg, a, &v, n, more, err);
	*out = v;
	return rc;
}

int km_reader_open_recoveries(struct km_reader *r, struct km_arena *a,
			      struct km_recovery **out, size_t *n,
			      struct km_error *err)
{
	/* filtered: the array grows with the rows, however many. */
	struct km_read_page pg = {.what = "open recoveries",
				  .limit = SIZE_MAX - 1,
				  .size = sizeof **out,
				  .decode = recovery_page_row,
				  .filtered = true};
	bool more;
	void *v;
	int rc;

	*out = NULL;
	*n = 0;
	rc = km_reader_lazy_stmt(r, L_OPEN, lazy_sql[L_OPEN], &pg.st, err);
	if (rc)
		return rc;
	rc = km_reader_page(r, &pg, a, &v, n, &more, err);
	*out = v;
	return rc;
}
