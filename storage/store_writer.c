/*
 * The writer thread and the queues in front of it.
 *
 * Why one writer: SQLite allows one writing transaction at a time; many
 * threads taking turns would each pay a commit (an fsync) per row. One
 * thread that takes whatever has queued up — a single row when idle,
 * thousands under load — pays one commit per batch instead, and the queue
 * in front of it makes overload explicit (drop-oldest for results).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "km_log.h"
#include "km_time.h"
#include "store_internal.h"

/* ---- the writer thread ------------------------------------------------- */

static const char *const writer_sql[W_STMT_COUNT] = {
	[W_INSERT_RESULT] =
		"INSERT INTO results (target_id, started_at, duration_us, "
		"success, error_class, status_code, message) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[W_INSERT_TRANSITION] =
		"INSERT INTO transitions (target_id, at, from_state, to_state, "
		"flapping, cause) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	/* Right-hand sides see the row as it was: state_since moves only
	 * when the state really changes (not for a flapping-only change). A
	 * deleted target takes no transition (a check that was in flight
	 * when it was deleted); the deletion itself is the transition to
	 * KM_STATE_DELETED, which marks the row deleted. */
	[W_UPDATE_TARGET_STATE] =
		"UPDATE targets SET state = ?2, flapping = ?3, "
		"state_since = CASE WHEN state = ?2 THEN state_since ELSE ?4 "
		"END, last_transition = ?5, "
		"deleted_at = CASE WHEN ?2 = 5 THEN ?4 ELSE 0 END "
		"WHERE id = ?1 AND deleted_at = 0",
	[W_DROP_TRANSITION] = "DELETE FROM transitions WHERE seq = ?1",
	/* Retention looks only at the lowest ids (the oldest rows, as rows
	 * arrive in time order), so one sweep step is bounded work even on a
	 * table where nothing is old enough. */
	[W_RETAIN_RESULTS] =
		"DELETE FROM results WHERE id IN (SELECT id FROM results "
		"ORDER BY id LIMIT ?1) AND started_at < ?2",
	[W_RETAIN_TRANSITIONS] =
		"DELETE FROM transitions WHERE seq IN (SELECT seq FROM "
		"transitions ORDER BY seq LIMIT ?1) AND at < ?2",
	[W_INSERT_AUDIT] =
		"INSERT INTO audit (at, identity, auth, peer, method, object, "
		"code, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[W_RETAIN_AUDIT] =
		"DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY "
		"id LIMIT ?1) AND at < ?2",
	/* A revived target starts again from UNKNOWN, with no last
	 * transition and created now: its old verdict, and the results from
	 * before, belong to something that was deleted. Prepared once: a
	 * cluster's first list makes tens of thousands of targets, and
	 * compiling this statement for each was most of the writer's time
	 * (bench/RESULTS.md, "kubemedicd's initial sync"). */
	[W_UPSERT_TARGET] =
		"INSERT INTO targets (name, cluster, kind, namespace, "
		"object_name, uid, owner, node, labels, state, state_since, "
		"created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, "
		"?10, ?10) ON CONFLICT (name) DO UPDATE SET "
		"labels = excluded.labels, uid = excluded.uid, "
		"owner = excluded.owner, node = excluded.node, "
		"state = CASE WHEN deleted_at > 0 THEN 1 ELSE state END, "
		"flapping = CASE WHEN deleted_at > 0 THEN 0 ELSE flapping END, "
		"state_since = CASE WHEN deleted_at > 0 THEN ?10 "
		"ELSE state_since END, "
		"last_transition = CASE WHEN deleted_at > 0 THEN 0 "
		"ELSE last_transition END, "
		"created_at = CASE WHEN deleted_at > 0 THEN ?10 "
		"ELSE created_at END, deleted_at = 0 RETURNING id",
	/* Recoveries go with their events (events first: they reference
	 * them), only once final (phases 1-4 are open: recoveries_open);
	 * storms once ended. */
	[W_RETAIN_RECOVERY_EVENTS] =
		"DELETE FROM recovery_events WHERE recovery_id IN (SELECT id "
		"FROM recoveries WHERE id IN (SELECT id FROM recoveries ORDER "
		"BY id LIMIT ?1) AND updated_at < ?2 AND phase NOT IN (1, 2, "
		"3, 4))",
	[W_RETAIN_RECOVERIES] =
		"DELETE FROM recoveries WHERE id IN (SELECT id FROM recoveries "
		"ORDER BY id LIMIT ?1) AND updated_at < ?2 AND phase NOT IN "
		"(1, 2, 3, 4)",
	[W_RETAIN_STORMS] =
		"DELETE FROM storms WHERE id IN (SELECT id FROM storms ORDER "
		"BY id LIMIT ?1) AND ended_at > 0 AND ended_at < ?2",
};

static int insert_audit(struct km_store *s, struct km_audit_event *e)
{
	sqlite3_stmt *st = s->stmt[W_INSERT_AUDIT];
	int rc;

#define TEXT(i, v) sqlite3_bind_text(st, i, (v) ? (v) : "", -1, SQLITE_STATIC)
	sqlite3_bind_int64(st, 1, e->at_us);
	TEXT(2, e->identity);
	TEXT(3, e->by);
	TEXT(4, e->peer);
	TEXT(5, e->method);
	TEXT(6, e->object);
	sqlite3_bind_int(st, 7, e->code);
	TEXT(8, e->message);
#undef TEXT
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	e->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

static int insert_result(struct km_store *s, const struct km_result *r)
{
	sqlite3_stmt *st = s->stmt[W_INSERT_RESULT];
	int rc;

	sqlite3_bind_int64(st, 1, r->target_id);
	sqlite3_bind_int64(st, 2, r->started_us);
	sqlite3_bind_int64(st, 3, r->duration_us);
	sqlite3_bind_int(st, 4, r->success);
	sqlite3_bind_int(st, 5, r->error_class);
	sqlite3_bind_int(st, 6, r->status_code);
	if (r->message)
		sqlite3_bind_text(st, 7, r->message, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : rc;
}

/* Appends a copy of t (seq set) to the batch's announcements. */
static int note_transition(struct km_store *s, const struct km_transition *t)
{
	struct km_transition *copy;

	if (s->n_announce == s->announce_cap) {
		size_t cap = s->announce_cap ? 2 * s->announce_cap : 64;
		struct km_transition **v =
			realloc(s->announce, cap * sizeof *v);

		if (!v)
			return SQLITE_NOMEM;
		s->announce = v;
		s->announce_cap = cap;
	}
	copy = km_transition_dup(t);
	if (!copy)
		return SQLITE_NOMEM;
	s->announce[s->n_announce++] = copy;
	return 0;
}

/* Frees the announcements from index from on (a failed op or batch). */
static void drop_announcements(struct km_store *s, size_t from)
{
	while (s->n_announce > from)
		free(s->announce[--s->n_announce]);
}

int km_store_note_recovery(struct km_store *s, struct km_recovery_event *e)
{
	if (s->n_rannounce == s->rannounce_cap) {
		size_t cap = s->rannounce_cap ? 2 * s->rannounce_cap : 16;
		struct km_recovery_event **v =
			realloc(s->rannounce, cap * sizeof *v);

		if (!v) {
			free(e);
			return SQLITE_NOMEM;
		}
		s->rannounce = v;
		s->rannounce_cap = cap;
	}
	s->rannounce[s->n_rannounce++] = e;
	return 0;
}

/* The same for recovery events. */
static void drop_recovery_events(struct km_store *s, size_t from)
{
	while (s->n_rannounce > from)
		free(s->rannounce[--s->n_rannounce]);
}

int km_store_write_transition(struct km_store *s, struct km_transition *t,
			      bool *written)
{
	sqlite3_stmt *st = s->stmt[W_INSERT_TRANSITION];
	int rc;

	*written = false;
	sqlite3_bind_int64(st, 1, t->target_id);
	sqlite3_bind_int64(st, 2, t->at_us);
	sqlite3_bind_int(st, 3, t->from_state);
	sqlite3_bind_int(st, 4, t->to_state);
	sqlite3_bind_int(st, 5, t->flapping);
	sqlite3_bind_text(st, 6, t->cause ? t->cause : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	t->seq = sqlite3_last_insert_rowid(s->db);

	st = s->stmt[W_UPDATE_TARGET_STATE];
	sqlite3_bind_int64(st, 1, t->target_id);
	sqlite3_bind_int(st, 2, t->to_state);
	sqlite3_bind_int(st, 3, t->flapping);
	sqlite3_bind_int64(st, 4, t->at_us);
	sqlite3_bind_int64(st, 5, t->seq);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	if (sqlite3_changes(s->db) == 0) {
		/* The target is deleted (or gone): the row goes again. Its
		 * seq is never reused (AUTOINCREMENT); a gap is harmless. */
		st = s->stmt[W_DROP_TRANSITION];
		sqlite3_bind_int64(st, 1, t->seq);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		t->seq = 0;
		return rc == SQLITE_DONE ? 0 : rc;
	}
	rc = note_transition(s, t);
	if (rc == 0)
		*written = true;
	if (rc == 0 && t->to_state == KM_STATE_DELETED && s->fold) {
		/* Its open run and hour end with it. */
		struct km_error err;

		if (km_fold_end(s, t->target_id, &err))
			rc = SQLITE_NOMEM;
	}
	return rc;
}

/* Runs op under a savepoint of its own: its failure undoes only its rows.
 * Returns false when the batch's transaction is gone with it: after a full
 * disk or an I/O error SQLite may roll the whole transaction back by
 * itself, and what ran after would then commit row by row, outside any
 * batch, and be retried as well. */
static bool run_sync_op(struct km_store *s, struct sync_op *op)
{
	size_t mark, rmark;

	op->err.code = 0;
	op->err.msg[0] = '\0';
	if (!op->fn) { /* a flush: nothing to run */
		op->rc = 0;
		return true;
	}
	if (km_store_exec(s->db, "SAVEPOINT op", &op->err)) {
		op->rc = op->err.code;
		return !sqlite3_get_autocommit(s->db);
	}
	mark = s->n_announce;
	rmark = s->n_rannounce;
	op->rc = op->fn(s, op->arg, &op->err);
	if (op->rc) {
		sqlite3_exec(s->db, "ROLLBACK TO op", NULL, NULL, NULL);
		drop_announcements(s, mark);
		drop_recovery_events(s, rmark);
	}
	sqlite3_exec(s->db, "RELEASE op", NULL, NULL, NULL);
	return !sqlite3_get_autocommit(s->db);
}

/* What one writer iteration took off the queues. */
struct batch {
	struct km_list ctl; /* struct ctl_op, in queue order */
	size_t n_ctl;
	struct result_slot *res;
	size_t n_res;
	km_store_listener_fn listener; /* as it was when the batch was taken */
	void *listener_arg;
	km_store_recovery_fn recovery_listener; /* the same */
	void *recovery_listener_arg;
	bool flush; /* holds a km_store_flush: open history is written */
};

/* Returns whether the batch holds a synchronous op (a caller waits). */
static bool take_batch(struct km_store *s, struct batch *b)
{
	bool has_sync = false;
	size_t max_res;

	km_list_init(&b->ctl);
	b->n_ctl = 0;
	b->flush = false;
	while (!km_list_empty(&s->ctl) && b->n_ctl < s->o.batch_max) {
		struct km_list *n = s->ctl.next;
		struct ctl_op *op = km_list_entry(n, struct ctl_op, node);

		km_list_del(n);
		km_list_add_tail(&b->ctl, n);
		if (op->sync && op->sync->on_done) {
			/* Nobody blocks on it, but it is awaited all the
			 * same: run as SCHED_OTHER for it (not to starve
			 * behind a busy machine: see km_store_run_async). */
			has_sync = true;
			assert(s->async_queued > 0);
			s->async_queued--;
		} else if (op->sync) {
			has_sync = true;
			b->flush |= !op->sync->fn;
			assert(s->sync_queued > 0);
			s->sync_queued--;
		}
		b->n_ctl++;
		assert(s->ctl_count > 0);
		s->ctl_count--;
	}
	/* A synchronous op (a flush in particular) promises that every result
	 * queued before it is committed with it: take them all. */
	max_res = has_sync ? s->ring_cap : s->o.batch_max;
	b->n_res = 0;
	while (s->ring_count && b->n_res < max_res) {
		b->res[b->n_res++] = s->ring[s->ring_head];
		s->ring_head = (s->ring_head + 1) % s->ring_cap;
		s->ring_count--;
	}
	b->listener = s->listener;
	b->listener_arg = s->listener_arg;
	b->recovery_listener = s->recovery_listener;
	b->recovery_listener_arg = s->recovery_listener_arg;
	if (b->n_ctl)
		pthread_cond_broadcast(&s->room_cv);
	return has_sync;
}

/* ---- storage faults ----------------------------------------------------- */

#define BACKOFF_MIN_NS (100LL * 1000000)
#define BACKOFF_MAX_NS (2000LL * 1000000)
#define FAULT_LOG_INTERVAL_NS (10LL * 1000000000)

/* The outcome of one commit attempt (a batch, or a write check), on the
 * writer thread: the backoff before the next attempt, the rate-limited
 * log, and on_health. A fault logs one line when it starts, at most one
 * per FAULT_LOG_INTERVAL_NS while it lasts (the counts since the previous
 * line, not a line per batch: a disk that fills up under thousands of
 * results a second would otherwise flood the log it shares), and one when
 * it ends. */
static void note_attempt(struct km_store *s, int rc, const struct km_error *e,
			 size_t dropped)
{
	int64_t now = km_mono_ns();
	size_t waiting;

	if (rc == 0) {
		if (s->fail_streak == 0)
			return;
		km_log(KM_LOG_WARN, "database writes succeed again", "db",
		       s->path, "failed_commits", KM_I(s->fault_total_failures),
		       "results_dropped", KM_I(s->fault_total_dropped),
		       "failed_for_ms", KM_I((now - s->fault_since) / 1000000),
		       NULL);
		s->fail_streak = 0;
		s->backoff_ns = 0;
		pthread_mutex_lock(&s->mu);
		s->stats.failing = false;
		s->retry_at = 0;
		pthread_mutex_unlock(&s->mu);
		if (s->unwritable) {
			s->unwritable = false;
			if (s->o.on_health)
				s->o.on_health(s->o.health_arg, true, NULL);
		}
		return;
	}

	assert(e && e->code);
	s->backoff_ns = s->backoff_ns ? 2 * s->backoff_ns : BACKOFF_MIN_NS;
	if (s->backoff_ns > BACKOFF_MAX_NS)
		s->backoff_ns = BACKOFF_MAX_NS;
	pthread_mutex_lock(&s->mu);
	s->stats.commit_failures++;
	s->stats.failing = true;
	s->fault = *e;
	s->retry_at = now + s->backoff_ns;
	waiting = s->ctl_count - s->sync_queued - s->async_queued -
		  s->audit_queued;
	/* Callers waiting for room in the control queue get the error now
	 * (km_store_run_sync) instead of waiting out the fault. */
	pthread_cond_broadcast(&s->room_cv);
	pthread_mutex_unlock(&s->mu);

	if (s->fail_streak++ == 0) {
		s->fault_since = now;
		s->fault_log_at = now + FAULT_LOG_INTERVAL_NS;
		s->fault_failures = s->fault_dropped = 0;
		s->fault_total_failures = 1;
		s->fault_total_dropped = dropped;
		km_log(KM_LOG_ERROR, "database writes failing; retrying", "db",
		       s->path, "err", e->msg, "results_dropped", KM_I(dropped),
		       "transitions_waiting", KM_I(waiting), NULL);
	} else {
		s->fault_failures++;
		s->fault_dropped += dropped;
		s->fault_total_failures++;
		s->fault_total_dropped += dropped;
		if (now >= s->fault_log_at) {
			km_log(KM_LOG_ERROR, "database writes still failing",
			       "db", s->path, "err", e->msg, "failed_commits",
			       KM_I(s->fault_failures), "results_dropped",
			       KM_I(s->fault_dropped), "transitions_waiting",
			       KM_I(waiting), "failing_for_ms",
			       KM_I((now - s->fault_since) / 1000000), NULL);
			s->fault_log_at = now + FAULT_LOG_INTERVAL_NS;
			s->fault_failures = s->fault_dropped = 0;
		}
	}
	if (!s->unwritable && s->fail_streak >= KM_STORE_FAILS_UNHEALTHY) {
		s->unwritable = true;
		if (s->o.on_health)
			s->o.on_health(s->o.health_arg, false, e);
	}
}

/* ---- one batch ---------------------------------------------------------- */

/* One transaction of everything b holds. On failure nothing of it is
 * kept: the results are dropped (counted), the synchronous ops answer the
 * error, and the transitions and audit events go back to the head of the
 * control queue in their order, to be retried — the hub has moved its
 * ledger on, and a transition lost here would be a verdict the history
 * and the watchers never hear of; an audit event lost, a refusal no one
 * can find. Two exceptions, logged and counted (transitions_lost,
 * audit_dropped): a row SQLite refuses for what it is, not for the disk (it
 * would fail forever and hold up everything behind it), and the rows of a
 * failed batch once the store is closing. */
/* A result the history could not take (too many targets open, no
 * memory): logged at most once a minute. */
static void fold_refused(struct km_store *s, const struct km_error *why)
{
	int64_t now = km_mono_ns();

	if (now >= s->fold_log_at) {
		km_log(KM_LOG_ERROR, "probe results not kept", "err", why->msg,
		       NULL);
		s->fold_log_at = now + 60LL * 1000000000;
	}
}

/* final: the writer's last batch, every open run and hour written. */
static void write_batch(struct km_store *s, struct batch *b, bool final)
{
	struct km_error err = {0};
	size_t written = 0, transitions = 0, audits = 0, retried = 0;
	size_t lost_t = 0, lost_a = 0;
	struct km_list *n, *tmp, retry;
	struct ctl_op *poison = NULL;
	int rc;

	assert(s->n_announce == 0 && s->n_rannounce == 0);
	rc = km_store_exec(s->db, "BEGIN IMMEDIATE", &err);
	km_list_for_each (n, &b->ctl) {
		struct ctl_op *op = km_list_entry(n, struct ctl_op, node);
		bool ok;

		if (rc)
			break;
		if (op->sync) {
			if (!run_sync_op(s, op->sync)) {
				/* The transaction went with it. */
				rc = op->sync->rc ? op->sync->rc : KM_EIO;
				err = op->sync->err;
				if (!err.code)
					km_error_set(&err, rc,
						     "the batch's transaction "
						     "was rolled back");
				break;
			}
			continue;
		}
		if (op->audit) {
			rc = insert_audit(s, op->audit);
			if (rc) {
				if (!km_store_is_fault(rc))
					poison = op;
				rc = km_store_sqlite_err(s->db, rc, &err,
							 "insert audit event");
				break;
			}
			audits++;
			continue;
		}
		rc = km_store_write_transition(s, op->t, &ok);
		if (rc) {
			if (!km_store_is_fault(rc))
				poison = op;
			rc = km_store_sqlite_err(s->db, rc, &err,
						 "insert transition");
			break;
		}
		transitions += ok;
	}
	for (size_t i = 0; !rc && i < b->n_res; i++) {
		if (s->o.raw_results) {
			rc = insert_result(s, &b->res[i].r);
			if (rc)
				rc = km_store_sqlite_err(s->db, rc, &err,
							 "insert result");
			else
				written++;
			continue;
		}
		rc = km_fold_result(s, &b->res[i].r, &err);
		if (rc == KM_EFULL || rc == KM_ENOMEM) {
			/* This result only: counted as dropped. */
			fold_refused(s, &err);
			rc = 0;
		} else if (!rc) {
			written++;
		}
	}
	if (!rc && s->fold)
		rc = km_fold_flush(s,
				   final      ? KM_FOLD_END_ALL
				   : b->flush ? KM_FOLD_ALL
					      : KM_FOLD_DUE,
				   &err);
	if (!rc && s->fold)
		rc = km_fold_write_pending(s, &err);
	if (!rc)
		rc = km_store_exec(s->db, "COMMIT", &err);
	if (rc) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		written = transitions = audits = 0;
		drop_announcements(s, 0);
		drop_recovery_events(s, 0);
	}
	if (s->fold)
		km_fold_committed(s, rc == 0);
	/* Counted before anyone is told of the batch: a listener that hears
	 * of a transition finds the results committed with it counted. */
	pthread_mutex_lock(&s->mu);
	s->stats.results_written += written;
	s->stats.results_dropped += b->n_res - written;
	if (s->fold)
		s->stats.runs_open = km_fold_open_count(s);
	pthread_mutex_unlock(&s->mu);

	/* Only committed transitions are announced, so a watcher that
	 * resumes from the database sees exactly what it was sent; and they
	 * are announced before the callers of the batch's synchronous writes
	 * are woken, so what a caller did (a deletion) is published when its
	 * call returns, before anything it does next. */
	for (size_t i = 0; i < s->n_announce; i++)
		if (b->listener)
			b->listener(b->listener_arg, s->announce[i]);
	drop_announcements(s, 0);
	/* Recovery events likewise (a recovery request is answered only
	 * once its event is out), in seq order: the order the batch's ops
	 * wrote them in. */
	for (size_t i = 0; i < s->n_rannounce; i++)
		if (b->recovery_listener)
			b->recovery_listener(b->recovery_listener_arg,
					     s->rannounce[i]);
	drop_recovery_events(s, 0);

	/* The transitions and audit events: committed ones freed, the others
	 * back to the head of the queue, in their order, ahead of whatever
	 * was queued meanwhile (or lost, said above). The synchronous ops get
	 * their answer, and stay in b->ctl to be woken. */
	km_list_init(&retry);
	pthread_mutex_lock(&s->mu);
	s->stats.batches += rc == 0;
	s->stats.transitions_written += transitions;
	s->stats.audit_written += audits;
	km_list_for_each_safe (n, tmp, &b->ctl) {
		struct ctl_op *op = km_list_entry(n, struct ctl_op, node);

		if (op->sync) {
			if (rc && op->sync->rc == 0) {
				op->sync->rc = rc;
				op->sync->err = err;
			}
			continue;
		}
		km_list_del(n);
		if (rc && op != poison && !s->stopping) {
			if (op->t) {
				op->t->seq = 0;
				retried++;
			}
			km_list_add_tail(&retry, n);
			continue;
		}
		if (rc && op == poison && op->t)
			km_log(KM_LOG_ERROR,
			       "transition lost: the database refuses it",
			       "target_id", KM_I(op->t->target_id), "to_state",
			       KM_I(op->t->to_state), "cause", op->t->cause,
			       "err", err.msg, NULL);
		else if (rc && op == poison)
			km_log(KM_LOG_ERROR,
			       "audit event lost: the database refuses it",
			       "method", op->audit->method, "identity",
			       op->audit->identity, "err", err.msg, NULL);
		if (op->audit) {
			assert(s->audit_queued > 0);
			s->audit_queued--;
			lost_a += rc != 0;
		} else {
			lost_t += rc != 0;
		}
		free(op->audit);
		free(op->t);
		free(op);
	}
	if (rc && s->stopping && lost_t + lost_a > (poison != NULL))
		km_log(KM_LOG_ERROR,
		       "writes lost: the database cannot be written and the "
		       "store is closing",
		       "db", s->path, "transitions",
		       KM_I(lost_t - (poison && poison->t)), "audit_events",
		       KM_I(lost_a - (poison && poison->audit)), "err", err.msg,
		       NULL);
	while (!km_list_empty(&retry)) {
		n = retry.prev;
		km_list_del(n);
		km_list_add_head(&s->ctl, n);
		s->ctl_count++;
	}
	if (s->ctl_count > s->stats.control_queue_max_depth)
		s->stats.control_queue_max_depth = s->ctl_count;
	s->stats.transitions_retried += retried;
	s->stats.transitions_lost += lost_t;
	s->stats.audit_dropped += lost_a;
	pthread_mutex_unlock(&s->mu);

	/* Before the callers are woken: a caller told of a failure finds the
	 * store's state (stats.failing, on_health) saying so already, and
	 * on_health finds the transitions back in the queue. */
	note_attempt(s, rc, &err, b->n_res - written);

	/* The asynchronous ops are told outside the lock (their callbacks
	 * may take locks of their own), before the waiters are woken. */
	km_list_for_each_safe (n, tmp, &b->ctl) {
		struct ctl_op *op = km_list_entry(n, struct ctl_op, node);

		if (!op->sync->on_done)
			continue;
		km_list_del(n);
		op->sync->on_done(op->sync->done_arg, op->sync->rc,
				  &op->sync->err);
		free(op);
	}
	if (!km_list_empty(&b->ctl)) {
		pthread_mutex_lock(&s->mu);
		km_list_for_each_safe (n, tmp, &b->ctl) {
			struct ctl_op *op =
				km_list_entry(n, struct ctl_op, node);

			km_list_del(n);
			op->sync->done = true;
		}
		pthread_cond_broadcast(&s->done_cv);
		pthread_mutex_unlock(&s->mu);
	}

	for (size_t i = 0; i < b->n_res; i++)
		free(b->res[i].msg);
}

/* One bounded step of the retention sweep; returns rows deleted. */
static int retention_step(struct km_store *s, enum writer_stmt which,
			  int64_t retention_us)
{
	sqlite3_stmt *st = s->stmt[which];
	int rc, n;

	if (retention_us <= 0)
		return 0;
	sqlite3_bind_int(st, 1, s->o.retention_batch);
	sqlite3_bind_int64(st, 2, km_fold_now(s) - retention_us);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		km_log(KM_LOG_WARN, "retention delete failed", "err",
		       sqlite3_errmsg(s->db), NULL);
		return 0;
	}
	n = sqlite3_changes(s->db);
	pthread_mutex_lock(&s->mu);
	s->stats.retention_deleted += (uint64_t)n;
	s->stats.retention_steps++;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* The writer's sweep: a sequence of bounded DELETE steps, one after each
 * write batch (or back to back when idle): raw results, runs and rollups
 * (target by target), transitions, recoveries with their events, storms,
 * the audit trail. */
enum sweep {
	SWEEP_IDLE,
	SWEEP_RESULTS,
	SWEEP_HISTORY,
	SWEEP_TRANSITIONS,
	SWEEP_RECOVERIES,
	SWEEP_STORMS,
	SWEEP_AUDIT
};

static enum sweep sweep_step(struct km_store *s, enum sweep sw)
{
	if (sw == SWEEP_RESULTS &&
	    retention_step(s, W_RETAIN_RESULTS, s->o.results_retention_us) == 0)
		sw = SWEEP_HISTORY;
	if (sw == SWEEP_HISTORY) {
		int n = km_fold_retain_step(s, &s->sweep_cursor,
					    s->o.retention_batch / 10);

		if (n > 0) {
			pthread_mutex_lock(&s->mu);
			s->stats.retention_deleted += (uint64_t)n;
			s->stats.retention_steps++;
			pthread_mutex_unlock(&s->mu);
		}
		if (s->sweep_cursor)
			return sw;
		sw = SWEEP_TRANSITIONS;
	}
	if (sw == SWEEP_TRANSITIONS &&
	    retention_step(s, W_RETAIN_TRANSITIONS,
			   s->o.transitions_retention_us) == 0)
		sw = SWEEP_RECOVERIES;
	if (sw == SWEEP_RECOVERIES) {
		retention_step(s, W_RETAIN_RECOVERY_EVENTS,
			       s->o.recoveries_retention_us);
		if (retention_step(s, W_RETAIN_RECOVERIES,
				   s->o.recoveries_retention_us) == 0)
			sw = SWEEP_STORMS;
	}
	if (sw == SWEEP_STORMS &&
	    retention_step(s, W_RETAIN_STORMS, s->o.recoveries_retention_us) ==
		    0)
		sw = SWEEP_AUDIT;
	if (sw == SWEEP_AUDIT &&
	    retention_step(s, W_RETAIN_AUDIT, s->o.audit_retention_us) == 0)
		sw = SWEEP_IDLE;
	return sw;
}

/* Group commit, called with s->mu held once there is work: while only
 * results are queued, fewer than a batch, wait until the oldest has waited
 * commit_delay_us. A commit costs far more than a row (an fsync, the WAL
 * header, the locks); at thousands of results a second one commit per
 * result or two would cost the writer more CPU than the rows themselves.
 * Anything in the control queue, a stop, or a full batch ends the wait. */
static void wait_for_company(struct km_store *s)
{
	int64_t until = s->ring_since + s->o.commit_delay_us * 1000;

	while (s->o.commit_delay_us > 0 && s->ring_count &&
	       s->ring_count < s->o.batch_max && !s->ctl_count &&
	       !s->stopping) {
		int64_t left = until - km_mono_ns();
		struct timespec ts;

		if (left <= 0)
			break;
		ts = km_realtime_after(left);
		pthread_cond_timedwait(&s->work_cv, &s->mu, &ts);
	}
}

/* The writer's CPU priority. Batching makes the writer indifferent to a
 * few milliseconds' wait, which is what the prober's schedule cannot
 * afford: on one core at 10,000 checks a second, a writer at the default
 * priority held the loop off for a p99 schedule lag of 18-22 ms, and even
 * 10 nice steps lower for 15-18 ms; as SCHED_IDLE, for 2.5-3.5 ms
 * (bench/RESULTS.md). SCHED_IDLE runs only in time nobody else wants, so a
 * writer that falls behind there would in the end drop results: once a
 * quarter of the result queue is waiting, or a caller waits for a
 * synchronous write, it runs as SCHED_OTHER, WRITER_NICE steps below the
 * daemon (about a tenth of a core under contention, some ten times what
 * 10,000 results a second cost it), until the queue is down to a
 * sixteenth. In a pod the idle policy applies within the pod's share.
 *
 * Leaving SCHED_IDLE takes CAP_SYS_NICE or an RLIMIT_NICE that reaches
 * the thread's nice value, which an unprivileged container does not have;
 * and a thread that cannot leave it stays there. So the writer first has a
 * short-lived thread of its own (same nice value) try the round trip, and
 * without it keeps to SCHED_OTHER at WRITER_NICE. */
#define WRITER_NICE 10

static void *idle_round_trip(void *arg)
{
	struct sched_param none = {0};

	*(bool *)arg =
		pthread_setschedparam(pthread_self(), SCHED_IDLE, &none) == 0 &&
		pthread_setschedparam(pthread_self(), SCHED_OTHER, &none) == 0;
	return NULL;
}

static bool can_leave_idle(void)
{
	pthread_t t;
	bool ok = false;

	if (pthread_create(&t, NULL, idle_round_trip, &ok) != 0)
		return false;
	pthread_join(t, NULL);
	return ok;
}

static void writer_priority(struct km_store *s, bool boost, bool behind)
{
	struct sched_param none = {0};
	int e;

	if (boost == s->writer_boosted || s->writer_sched_fixed)
		return;
	e = pthread_setschedparam(pthread_self(),
				  boost ? SCHED_OTHER : SCHED_IDLE, &none);
	if (e) {
		km_log(KM_LOG_WARN,
		       "cannot change the writer's scheduling "
		       "policy",
		       "policy", boost ? "SCHED_OTHER" : "SCHED_IDLE", "error",
		       strerror(e), NULL);
		s->writer_sched_fixed = true; /* say it once, stay as it is */
		return;
	}
	s->writer_boosted = boost;
	pthread_mutex_lock(&s->mu);
	s->writer_idle = !boost;
	pthread_mutex_unlock(&s->mu);
	if (boost && behind) {
		pthread_mutex_lock(&s->mu);
		s->stats.writer_boosts++;
		pthread_mutex_unlock(&s->mu);
	}
}

/* How long the writer may sleep before a target's history comes due
 * (mono ns; at most a second, as the writer's clock may be a simulated
 * one); 0: due now; -1: nothing is open. */
static int64_t fold_wait_ns(struct km_store *s)
{
	int64_t due = km_fold_next_due(s), left;

	if (due == INT64_MAX)
		return -1;
	left = due - km_fold_now(s);
	if (left <= 0)
		return 0;
	return left > 1000000 ? 1000000000 : left * 1000;
}

/* One step of converting schema 5's raw results, between batches; after a
 * failure the next waits CONVERT_RETRY_NS. */
#define CONVERT_RETRY_NS (10LL * 1000000000)

static void convert_step(struct km_store *s)
{
	struct km_error err = {0};
	size_t n;

	if (km_mono_ns() < s->convert_retry_at)
		return;
	if (km_fold_convert_step(s, &n, &err)) {
		km_log(KM_LOG_WARN, "converting raw results failed; retrying",
		       "err", err.msg, "retry_in_ms",
		       KM_I(CONVERT_RETRY_NS / 1000000), NULL);
		s->convert_retry_at = km_mono_ns() + CONVERT_RETRY_NS;
	}
}

/* Whether the writer has something to do besides its queues: history
 * due, raw results to convert, a sweep step. Called with s->mu held. */
static bool other_work(struct km_store *s, enum sweep sw)
{
	return sw != SWEEP_IDLE || fold_wait_ns(s) == 0 ||
	       (km_fold_converting(s) && km_mono_ns() >= s->convert_retry_at);
}

static void *writer_main(void *arg)
{
	struct km_store *s = arg;
	struct batch b = {.res = s->batch_res};
	enum sweep sw = SWEEP_IDLE;
	bool retention =
		s->o.results_retention_us > 0 ||
		s->o.minutes_retention_us > 0 || s->o.hours_retention_us > 0 ||
		s->o.transitions_retention_us > 0 ||
		s->o.recoveries_retention_us > 0 || s->o.audit_retention_us > 0;
	int64_t next_sweep = km_mono_ns(); /* first sweep at start-up */
	bool behind, waited_on;
	id_t self = (id_t)gettid();
	int nice;

	pthread_setname_np(pthread_self(), "km-writer");
	errno = 0;
	nice = getpriority(PRIO_PROCESS, self);
	if (errno ||
	    setpriority(PRIO_PROCESS, self,
			nice + WRITER_NICE > 19 ? 19 : nice + WRITER_NICE))
		km_log(KM_LOG_WARN, "cannot lower the writer's priority",
		       "error", strerror(errno), NULL);
	s->writer_boosted = true; /* threads start as SCHED_OTHER */
	if (can_leave_idle()) {
		writer_priority(s, false, false);
	} else {
		s->writer_sched_fixed = true;
		km_log(KM_LOG_INFO,
		       "the writer stays at its lower nice "
		       "value: without CAP_SYS_NICE or a high "
		       "enough RLIMIT_NICE it could not leave "
		       "SCHED_IDLE to catch up",
		       NULL);
	}
	pthread_mutex_lock(&s->mu);
	s->stats.writer_idle = !s->writer_sched_fixed;
	for (;;) {
		bool failing, due;

		/* Wait for rows, a stop, history coming due, or the time of
		 * the next sweep; after a failed commit, for the time of the
		 * next attempt (a caller waiting for a synchronous write, or
		 * the stop, comes first: its answer should not wait out the
		 * backoff). */
		while (!s->stopping) {
			int64_t wait_ns = -1, fold_ns;

			if (s->fail_streak) {
				struct timespec ts;

				if (s->sync_queued ||
				    km_mono_ns() >= s->retry_at)
					break;
				ts = km_realtime_after(s->retry_at -
						       km_mono_ns());
				pthread_cond_timedwait(&s->work_cv, &s->mu,
						       &ts);
				continue;
			}
			if (s->ring_count || s->ctl_count || other_work(s, sw))
				break;
			if (s->sweep_requested ||
			    (retention && km_mono_ns() >= next_sweep)) {
				s->sweep_requested = false;
				s->sweeping = true;
				sw = SWEEP_RESULTS;
				break;
			}
			if (retention)
				wait_ns = next_sweep - km_mono_ns();
			fold_ns = fold_wait_ns(s);
			if (fold_ns >= 0 && (wait_ns < 0 || fold_ns < wait_ns))
				wait_ns = fold_ns;
			if (km_fold_converting(s)) {
				int64_t c = s->convert_retry_at - km_mono_ns();

				if (wait_ns < 0 || c < wait_ns)
					wait_ns = c;
			}
			if (wait_ns >= 0) {
				struct timespec ts = km_realtime_after(wait_ns);

				pthread_cond_timedwait(&s->work_cv, &s->mu,
						       &ts);
			} else {
				pthread_cond_wait(&s->work_cv, &s->mu);
			}
		}
		if (s->stopping && !s->ring_count && !s->ctl_count)
			break;
		failing = s->fail_streak > 0;
		if (!failing)
			wait_for_company(s);
		/* Behind: a quarter of the queue waits (until a sixteenth
		 * does), or a caller does. */
		behind =
			s->ring_count >= s->ring_cap / 4 ||
			(s->writer_boosted && s->ring_count > s->ring_cap / 16);
		waited_on = take_batch(s, &b);
		due = fold_wait_ns(s) == 0;
		pthread_mutex_unlock(&s->mu);
		writer_priority(s, behind || waited_on, behind);

		if (b.n_ctl || b.n_res || (due && !failing)) {
			write_batch(s, &b, false);
		} else if (failing) {
			/* Nothing to write: find out whether the disk takes
			 * writes again. */
			struct km_error err = {0};
			int rc = km_store_write_check(s->db, &err);

			if (rc)
				km_error_prefix(&err, "write check");
			note_attempt(s, rc, &err, 0);
		}
		/* Sweeps and the conversion wait while commits fail (their
		 * writes would fail too). */
		if (!s->fail_streak && km_fold_converting(s))
			convert_step(s);
		if (sw != SWEEP_IDLE && !s->fail_streak) {
			sw = sweep_step(s, sw);
			if (sw == SWEEP_IDLE)
				next_sweep =
					km_mono_ns() +
					s->o.retention_interval_ms * 1000000;
		}

		pthread_mutex_lock(&s->mu);
		if (sw == SWEEP_IDLE && s->sweeping) {
			s->sweeping = false;
			s->stats.retention_sweeps++;
			pthread_cond_broadcast(&s->done_cv);
		}
	}
	/* A sweep cut short by the stop still wakes whoever waits for it. */
	s->sweeping = false;
	s->stats.retention_sweeps++;
	pthread_cond_broadcast(&s->done_cv);
	pthread_mutex_unlock(&s->mu);
	/* Every open run and hour, written: what a stop keeps. */
	if (s->fold) {
		km_list_init(&b.ctl); /* nothing is queued any more */
		b.n_ctl = b.n_res = 0;
		b.flush = false;
		write_batch(s, &b, true);
	}
	return NULL;
}

void km_store_retention_sweep(struct km_store *s)
{
	uint64_t target;

	pthread_mutex_lock(&s->mu);
	/* A sweep already under way may have passed rows that are old now:
	 * wait for a complete new one. */
	target = s->stats.retention_sweeps + (s->sweeping ? 2 : 1);
	s->sweep_requested = true;
	pthread_cond_signal(&s->work_cv);
	while (s->stats.retention_sweeps < target && !s->stopping)
		pthread_cond_wait(&s->done_cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
}

/* ---- queueing ---------------------------------------------------------- */

int km_store_add_result(struct km_store *s, const struct km_result *r)
{
	struct result_slot *slot;
	char *msg = NULL;

	if (r->message && r->message[0]) {
		msg = strndup(r->message, KM_RESULT_MESSAGE_MAX);
		if (!msg)
			return KM_ENOMEM;
	}
	pthread_mutex_lock(&s->mu);
	if (s->stopping) {
		pthread_mutex_unlock(&s->mu);
		free(msg);
		return KM_EUNAVAIL;
	}
	if (s->ring_count == s->ring_cap) {
		/* Overload: the oldest result makes room for the newest. */
		free(s->ring[s->ring_head].msg);
		s->ring_head = (s->ring_head + 1) % s->ring_cap;
		s->ring_count--;
		s->stats.results_dropped++;
	}
	slot = &s->ring[(s->ring_head + s->ring_count) % s->ring_cap];
	slot->r = *r;
	slot->r.message = msg;
	slot->msg = msg;
	s->ring_count++;
	s->stats.results_queued++;
	if (s->ring_count > s->stats.result_queue_max_depth)
		s->stats.result_queue_max_depth = s->ring_count;
	/* Wake the writer for the first result, and for a full batch if it
	 * is waiting for company (wait_for_company). */
	if (s->ring_count == 1) {
		s->ring_since = km_mono_ns();
		pthread_cond_signal(&s->work_cv);
	} else if (s->ring_count == s->o.batch_max) {
		pthread_cond_signal(&s->work_cv);
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* Called with s->mu held. Appends op; wakes the writer. */
static void push_ctl(struct km_store *s, struct ctl_op *op)
{
	km_list_add_tail(&s->ctl, &op->node);
	s->ctl_count++;
	if (s->ctl_count > s->stats.control_queue_max_depth)
		s->stats.control_queue_max_depth = s->ctl_count;
	pthread_cond_signal(&s->work_cv);
}

/* Transitions never wait and are never dropped: producers are event loops
 * (the health hub is called from the prober's), and a transition lost is a
 * verdict the history and the watchers never hear of. So the queue takes
 * every one, in order with everything queued before it; what bounds it is
 * the rate at which verdicts can change, and a writer that cannot commit
 * is a storage fault (the stats line shows control_queue_max_depth). */
int km_store_add_transition(struct km_store *s, const struct km_transition *t)
{
	struct ctl_op *op = calloc(1, sizeof *op);

	if (!op || !(op->t = km_transition_dup(t))) {
		free(op);
		return KM_ENOMEM;
	}
	pthread_mutex_lock(&s->mu);
	if (s->stopping) {
		pthread_mutex_unlock(&s->mu);
		free(op->t);
		free(op);
		return KM_EUNAVAIL;
	}
	push_ctl(s, op);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* e and its strings in one malloc'd block. */
static struct km_audit_event *audit_dup(const struct km_audit_event *e)
{
	const char *f[] = {e->identity, e->by,     e->peer,
			   e->method,   e->object, e->message};
	size_t len = sizeof *e;
	struct km_audit_event *c;
	char *p;

	for (size_t i = 0; i < 6; i++)
		len += strlen(f[i] ? f[i] : "") + 1;
	c = malloc(len);
	if (!c)
		return NULL;
	*c = *e;
	p = (char *)(c + 1);
	for (size_t i = 0; i < 6; i++) {
		size_t n = strlen(f[i] ? f[i] : "") + 1;

		memcpy(p, f[i] ? f[i] : "", n);
		f[i] = p;
		p += n;
	}
	c->identity = f[0];
	c->by = f[1];
	c->peer = f[2];
	c->method = f[3];
	c->object = f[4];
	c->message = f[5];
	return c;
}

int km_store_add_audit(struct km_store *s, const struct km_audit_event *e)
{
	struct ctl_op *op = calloc(1, sizeof *op);
	int rc = 0;

	if (!op || !(op->audit = audit_dup(e))) {
		free(op);
		return KM_ENOMEM;
	}
	pthread_mutex_lock(&s->mu);
	if (s->stopping) {
		rc = KM_EUNAVAIL;
	} else if (s->audit_queued >= KM_STORE_AUDIT_QUEUE_MAX) {
		s->stats.audit_dropped++;
		rc = KM_EFULL;
	} else {
		s->audit_queued++;
		push_ctl(s, op);
	}
	pthread_mutex_unlock(&s->mu);
	if (rc) {
		free(op->audit);
		free(op);
	}
	return rc;
}

static int audit_op(struct km_store *s, void *arg, struct km_error *err)
{
	int rc = insert_audit(s, arg);

	return rc ? km_store_sqlite_err(s->db, rc, err, "insert audit event")
		  : 0;
}

int km_store_audit(struct km_store *s, const struct km_audit_event *e,
		   struct km_error *err)
{
	struct km_audit_event copy = *e;
	int rc = km_store_run_sync(s, audit_op, &copy, err);

	if (!rc) {
		pthread_mutex_lock(&s->mu);
		s->stats.audit_written++;
		pthread_mutex_unlock(&s->mu);
	}
	return rc;
}

int km_store_run_async(struct km_store *s,
		       int (*fn)(struct km_store *s, void *arg,
				 struct km_error *err),
		       void *arg, km_store_done_fn on_done, void *done_arg)
{
	struct {
		struct ctl_op c;
		struct sync_op op;
	} *a = calloc(1, sizeof *a);

	if (!a)
		return KM_ENOMEM;
	/* The ctl_op first: the writer frees it, and with it the op. */
	a->op = (struct sync_op){.fn = fn,
				 .arg = arg,
				 .on_done = on_done,
				 .done_arg = done_arg};
	a->c.sync = &a->op;
	pthread_mutex_lock(&s->mu);
	if (s->stopping) {
		pthread_mutex_unlock(&s->mu);
		free(a);
		return KM_EUNAVAIL;
	}
	/* A failing disk's backoff is not cut short for it (nobody blocks
	 * on it). But it is awaited: a writer at SCHED_IDLE would run it
	 * only when no other thread on the machine wants a CPU, which on a
	 * busy one can be never (an event loop waiting for it keeps
	 * running, unlike a synchronous caller) — so it is raised to
	 * SCHED_OTHER now, as it raises itself for a synchronous op. */
	s->async_queued++;
	push_ctl(s, &a->c);
	if (s->writer_idle) {
		struct sched_param none = {0};

		if (pthread_setschedparam(s->writer, SCHED_OTHER, &none) == 0)
			s->writer_idle = false;
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* A synchronous op waits while control_queue entries are ahead of it: an
 * API caller is slowed down rather than memory grown without bound —
 * unless commits are failing, when the queue may stay full as long as the
 * fault does: then it answers the fault at once. */
int km_store_run_sync(struct km_store *s,
		      int (*fn)(struct km_store *s, void *arg,
				struct km_error *err),
		      void *arg, struct km_error *err)
{
	struct sync_op op = {.fn = fn, .arg = arg};
	struct ctl_op c = {.sync = &op};

	pthread_mutex_lock(&s->mu);
	while (s->ctl_count >= s->o.control_queue && !s->stopping &&
	       !s->stats.failing)
		pthread_cond_wait(&s->room_cv, &s->mu);
	if (s->stopping) {
		pthread_mutex_unlock(&s->mu);
		return km_error_set(err, KM_EUNAVAIL,
				    "the store is shutting down");
	}
	if (s->ctl_count >= s->o.control_queue) {
		/* Commits fail and the queue is full of transitions waiting
		 * for them: room may take as long as the fault. */
		struct km_error fault = s->fault;

		pthread_mutex_unlock(&s->mu);
		if (err)
			*err = fault;
		return fault.code;
	}
	s->sync_queued++;
	push_ctl(s, &c);
	while (!op.done)
		pthread_cond_wait(&s->done_cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	if (op.rc && err)
		*err = op.err;
	return op.rc;
}

void km_store_set_listener(struct km_store *s, km_store_listener_fn fn,
			   void *arg)
{
	pthread_mutex_lock(&s->mu);
	s->listener = fn;
	s->listener_arg = arg;
	pthread_mutex_unlock(&s->mu);
}

void km_store_set_recovery_listener(struct km_store *s, km_store_recovery_fn fn,
				    void *arg)
{
	pthread_mutex_lock(&s->mu);
	s->recovery_listener = fn;
	s->recovery_listener_arg = arg;
	pthread_mutex_unlock(&s->mu);
}

int km_store_flush(struct km_store *s, struct km_error *err)
{
	return km_store_run_sync(s, NULL, NULL, err);
}

void km_store_get_stats(struct km_store *s, struct km_store_stats *out)
{
	clockid_t cpu;
	struct timespec ts;

	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	out->result_queue_depth = s->ring_count;
	out->control_queue_depth = s->ctl_count;
	if (s->writer_started && pthread_getcpuclockid(s->writer, &cpu) == 0 &&
	    clock_gettime(cpu, &ts) == 0)
		out->writer_cpu_ns =
			(uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
	pthread_mutex_unlock(&s->mu);
}

/* ---- start / stop ------------------------------------------------------ */

int km_store_writer_start(struct km_store *s, struct km_error *err)
{
	int rc;

	for (int i = 0; i < W_STMT_COUNT; i++) {
		rc = km_store_prepare(s->db, writer_sql[i], &s->stmt[i], err);
		if (rc)
			return rc;
	}
	if ((rc = km_fold_start(s, err)))
		return rc;
	rc = pthread_create(&s->writer, NULL, writer_main, s);
	if (rc)
		return km_error_set(err, KM_EIO, "cannot start writer: %s",
				    strerror(rc));
	s->writer_started = true;
	return 0;
}

void km_store_writer_stop(struct km_store *s)
{
	if (s->writer_started) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_broadcast(&s->work_cv);
		pthread_cond_broadcast(&s->room_cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->writer, NULL);
		s->writer_started = false;
	}
	for (int i = 0; i < W_STMT_COUNT; i++) {
		sqlite3_finalize(s->stmt[i]);
		s->stmt[i] = NULL;
	}
	km_fold_stop(s);
}
