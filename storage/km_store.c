/*
 * The store's life cycle, its migrations and its writer thread.
 *
 * Why one writer: SQLite allows one writing transaction at a time; many
 * threads taking turns would each pay a commit (an fsync) per row. One
 * thread that takes whatever has queued up — a single row when idle,
 * thousands under load — pays one commit per batch instead, and the queue
 * in front of it makes overload explicit (drop-oldest for results).
 */
#include <assert.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "km_embed.h"
#include "km_log.h"
#include "km_time.h"
#include "store_internal.h"

extern const struct km_embedded_file km_migrations[];
extern const size_t km_migrations_count;

/* ---- sqlite helpers ---------------------------------------------------- */

int store_sqlite_err(sqlite3 *db, int rc, struct km_error *err,
		     const char *what)
{
	int code = KM_EIO;

	if (rc == SQLITE_INTERRUPT)
		return km_error_set(err, KM_EDEADLINE,
				    "%s: deadline exceeded", what);
	if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
		code = KM_ECORRUPT;
	else if (rc == SQLITE_NOMEM)
		code = KM_ENOMEM;
	else if (rc == SQLITE_FULL)
		code = KM_EFULL;
	else if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		code = KM_EUNAVAIL;
	return km_error_set(err, code, "%s: %s", what,
			    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

int store_exec(sqlite3 *db, const char *sql, struct km_error *err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		km_error_set(err, rc == SQLITE_CORRUPT ? KM_ECORRUPT : KM_EIO,
			     "%s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return err ? err->code : KM_EIO;
	}
	return 0;
}

int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st,
		  struct km_error *err)
{
	int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				    st, NULL);

	if (rc != SQLITE_OK)
		return store_sqlite_err(db, rc, err, "prepare");
	return 0;
}

/* ---- migrations -------------------------------------------------------- */

static void sha256_hex(const unsigned char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* "0007_add_x.sql" -> 7; -1 if the name is not of that form. */
static int migration_version(const char *name)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		v = v * 10 + (name[i] - '0');
	}
	return name[4] == '_' ? v : -1;
}

int km_store_binary_schema_version(void)
{
	return (int)km_migrations_count;
}

static int migrate(struct km_store *s, struct km_error *err)
{
	sqlite3 *db = s->db;
	sqlite3_stmt *st = NULL;
	int applied = 0, rc;

	/* The build embeds migrations sorted by name; they must be 1..N. */
	for (size_t i = 0; i < km_migrations_count; i++)
		if (migration_version(km_migrations[i].name) != (int)i + 1)
			return km_error_set(err, KM_EINTERNAL,
					    "embedded migration %s is out of "
					    "sequence (expected version %zu)",
					    km_migrations[i].name, i + 1);

	rc = store_exec(db,
			"CREATE TABLE IF NOT EXISTS schema_migrations ("
			" version INTEGER PRIMARY KEY,"
			" name TEXT NOT NULL,"
			" checksum TEXT NOT NULL,"
			" applied_at INTEGER NOT NULL)",
			err);
	if (rc)
		goto fail_msg;

	rc = store_prepare(db, "SELECT version, name, checksum FROM "
			       "schema_migrations ORDER BY version", &st, err);
	if (rc)
		goto fail_msg;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int v = sqlite3_column_int(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *sum = (const char *)sqlite3_column_text(st, 2);
		char want[65];

		if (v > (int)km_migrations_count) {
			km_error_set(err, KM_ETOONEW,
				     "database %s has schema version %d (%s), "
				     "newer than this kubemedicd, which knows "
				     "versions up to %zu: run the kubemedicd "
				     "that wrote it (or newer), or restore a "
				     "backup",
				     s->path, v, name ? name : "?",
				     km_migrations_count);
			goto fail;
		}
		if (v < 1 || v != applied + 1) {
			km_error_set(err, KM_ECORRUPT,
				     "database %s: schema_migrations has a gap "
				     "before version %d", s->path, v);
			goto fail;
		}
		sha256_hex(km_migrations[v - 1].data, km_migrations[v - 1].len,
			   want);
		if (!sum || strcmp(sum, want) != 0) {
			km_error_set(err, KM_ECORRUPT,
				     "database %s: migration %s was applied "
				     "with checksum %.12s… but this binary's "
				     "copy has %.12s…: a released migration "
				     "was edited; restore it and add a new "
				     "migration instead",
				     s->path, km_migrations[v - 1].name,
				     sum ? sum : "(none)", want);
			goto fail;
		}
		applied = v;
	}
	if (rc != SQLITE_DONE) {
		store_sqlite_err(db, rc, err, "reading schema_migrations");
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;

	for (int v = applied + 1; v <= (int)km_migrations_count; v++) {
		const struct km_embedded_file *m = &km_migrations[v - 1];
		char sum[65];

		sha256_hex(m->data, m->len, sum);
		rc = store_exec(db, "BEGIN IMMEDIATE", err);
		if (!rc)
			rc = store_exec(db, (const char *)m->data, err);
		if (!rc)
			rc = store_prepare(db,
					   "INSERT INTO schema_migrations "
					   "VALUES (?1, ?2, ?3, ?4)", &st, err);
		if (!rc) {
			sqlite3_bind_int(st, 1, v);
			sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, sum, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 4, km_now_us());
			rc = sqlite3_step(st) == SQLITE_DONE
				     ? 0
				     : store_sqlite_err(db, sqlite3_errcode(db),
							err, "record");
			sqlite3_finalize(st);
			st = NULL;
		}
		if (!rc)
			rc = store_exec(db, "COMMIT", err);
		if (rc) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			km_error_prefix(err, "database %s: migration %s failed",
					s->path, m->name);
			return rc;
		}
		km_log(KM_LOG_INFO, "migration applied", "db", s->path,
		       "migration", m->name, NULL);
		applied = v;
	}
	s->schema_version = applied;
	return 0;

fail_msg:
	km_error_prefix(err, "database %s", s->path);
fail:
	sqlite3_finalize(st);
	return err ? err->code : KM_EIO;
}

int km_store_schema_version(struct km_store *s)
{
	return s->schema_version;
}

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
	 * when the state really changes (not for a flapping-only change). */
	[W_UPDATE_TARGET_STATE] =
		"UPDATE targets SET state = ?2, flapping = ?3, "
		"state_since = CASE WHEN state = ?2 THEN state_since ELSE ?4 "
		"END, last_transition = ?5 WHERE id = ?1",
	/* Retention looks only at the lowest ids (the oldest rows, as rows
	 * arrive in time order), so one sweep step is bounded work even on a
	 * table where nothing is old enough. */
	[W_RETAIN_RESULTS] =
		"DELETE FROM results WHERE id IN (SELECT id FROM results "
		"ORDER BY id LIMIT ?1) AND started_at < ?2",
	[W_RETAIN_TRANSITIONS] =
		"DELETE FROM transitions WHERE seq IN (SELECT seq FROM "
		"transitions ORDER BY seq LIMIT ?1) AND at < ?2",
};

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

static int insert_transition(struct km_store *s, struct km_transition *t)
{
	sqlite3_stmt *st = s->stmt[W_INSERT_TRANSITION];
	int rc;

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
	return rc == SQLITE_DONE ? 0 : rc;
}

static void run_sync_op(struct km_store *s, struct sync_op *op)
{
	op->err.code = 0;
	op->err.msg[0] = '\0';
	if (!op->fn) { /* a flush: nothing to run */
		op->rc = 0;
		return;
	}
	if (store_exec(s->db, "SAVEPOINT op", &op->err)) {
		op->rc = op->err.code;
		return;
	}
	op->rc = op->fn(s, op->arg, &op->err);
	if (op->rc)
		sqlite3_exec(s->db, "ROLLBACK TO op", NULL, NULL, NULL);
	sqlite3_exec(s->db, "RELEASE op", NULL, NULL, NULL);
}

/* What one writer iteration took off the queues. */
struct batch {
	struct ctl_op *ctl;
	size_t n_ctl;
	struct result_slot *res;
	size_t n_res;
};

/* Returns whether the batch holds a synchronous op (a caller waits). */
static bool take_batch(struct km_store *s, struct batch *b)
{
	bool has_sync = false;
	size_t max_res;

	b->n_ctl = 0;
	while (s->ctl_count && b->n_ctl < s->o.batch_max) {
		b->ctl[b->n_ctl] = s->ctl[s->ctl_head];
		has_sync |= b->ctl[b->n_ctl].sync != NULL;
		b->n_ctl++;
		s->ctl_head = (s->ctl_head + 1) % s->ctl_cap;
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
	if (b->n_ctl)
		pthread_cond_broadcast(&s->room_cv);
	return has_sync;
}

static void write_batch(struct km_store *s, struct batch *b)
{
	struct km_error err = {0};
	size_t written = 0, transitions = 0;
	int rc;

	rc = store_exec(s->db, "BEGIN IMMEDIATE", &err);
	for (size_t i = 0; !rc && i < b->n_ctl; i++) {
		struct ctl_op *op = &b->ctl[i];

		if (op->sync) {
			run_sync_op(s, op->sync);
			continue;
		}
		rc = insert_transition(s, &op->t);
		if (rc) {
			rc = store_sqlite_err(s->db, rc, &err,
					      "insert transition");
			break;
		}
		transitions++;
	}
	for (size_t i = 0; !rc && i < b->n_res; i++) {
		rc = insert_result(s, &b->res[i].r);
		if (rc)
			rc = store_sqlite_err(s->db, rc, &err,
					      "insert result");
		else
			written++;
	}
	if (!rc)
		rc = store_exec(s->db, "COMMIT", &err);
	if (rc) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		km_log(KM_LOG_ERROR, "write batch failed; its rows are lost",
		       "err", err.msg, "results", KM_I(b->n_res), "control",
		       KM_I(b->n_ctl), NULL);
		written = transitions = 0;
	}

	pthread_mutex_lock(&s->mu);
	s->stats.batches++;
	s->stats.results_written += written;
	s->stats.results_dropped += b->n_res - written;
	s->stats.transitions_written += transitions;
	if (rc)
		s->stats.commit_failures++;
	for (size_t i = 0; i < b->n_ctl; i++) {
		struct sync_op *op = b->ctl[i].sync;
		if (!op)
			continue;
		if (rc && op->rc == 0) {
			op->rc = rc;
			op->err = err;
		}
		op->done = true;
	}
	pthread_cond_broadcast(&s->done_cv);
	pthread_mutex_unlock(&s->mu);

	/* Only committed transitions are announced: a watcher that resumes
	 * from the database sees exactly what it was sent. */
	for (size_t i = 0; i < b->n_ctl; i++) {
		struct ctl_op *op = &b->ctl[i];
		if (!op->sync && !rc && s->o.on_transition)
			s->o.on_transition(s->o.on_transition_arg, &op->t);
		free(op->copy);
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
	sqlite3_bind_int64(st, 2, km_now_us() - retention_us);
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
 * write batch (or back to back when idle), results first. */
enum sweep { SWEEP_IDLE, SWEEP_RESULTS, SWEEP_TRANSITIONS };

static enum sweep sweep_step(struct km_store *s, enum sweep sw)
{
	if (sw == SWEEP_RESULTS &&
	    retention_step(s, W_RETAIN_RESULTS, s->o.results_retention_us) == 0)
		sw = SWEEP_TRANSITIONS;
	if (sw == SWEEP_TRANSITIONS &&
	    retention_step(s, W_RETAIN_TRANSITIONS,
			   s->o.transitions_retention_us) == 0)
		sw = SWEEP_IDLE;
	return sw;
}

/* Absolute CLOCK_REALTIME time for pthread_cond_timedwait, ns from now. */
static struct timespec deadline_in(int64_t ns);

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
		ts = deadline_in(left);
		pthread_cond_timedwait(&s->work_cv, &s->mu, &ts);
	}
}

static struct timespec deadline_in(int64_t ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec += ns % 1000000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
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
		km_log(KM_LOG_WARN, "cannot change the writer's scheduling "
				    "policy", "policy",
		       boost ? "SCHED_OTHER" : "SCHED_IDLE", "error",
		       strerror(e), NULL);
		s->writer_sched_fixed = true; /* say it once, stay as it is */
		return;
	}
	s->writer_boosted = boost;
	if (boost && behind) {
		pthread_mutex_lock(&s->mu);
		s->stats.writer_boosts++;
		pthread_mutex_unlock(&s->mu);
	}
}

static void *writer_main(void *arg)
{
	struct km_store *s = arg;
	struct batch b = {.ctl = s->batch_ctl, .res = s->batch_res};
	enum sweep sw = SWEEP_IDLE;
	bool retention = s->o.results_retention_us > 0 ||
			 s->o.transitions_retention_us > 0;
	int64_t next_sweep = km_mono_ns(); /* first sweep at start-up */
	bool behind, waited_on;
	id_t self = (id_t)gettid();
	int nice;

	pthread_setname_np(pthread_self(), "km-writer");
	errno = 0;
	nice = getpriority(PRIO_PROCESS, self);
	if (errno || setpriority(PRIO_PROCESS, self,
				 nice + WRITER_NICE > 19 ? 19
							 : nice + WRITER_NICE))
		km_log(KM_LOG_WARN, "cannot lower the writer's priority",
		       "error", strerror(errno), NULL);
	s->writer_boosted = true; /* threads start as SCHED_OTHER */
	if (can_leave_idle()) {
		writer_priority(s, false, false);
	} else {
		s->writer_sched_fixed = true;
		km_log(KM_LOG_INFO, "the writer stays at its lower nice "
				    "value: without CAP_SYS_NICE or a high "
				    "enough RLIMIT_NICE it could not leave "
				    "SCHED_IDLE to catch up", NULL);
	}
	pthread_mutex_lock(&s->mu);
	s->stats.writer_idle = !s->writer_sched_fixed;
	for (;;) {
		/* Wait for rows, a stop, or the time of the next sweep. */
		while (!s->ring_count && !s->ctl_count && !s->stopping &&
		       sw == SWEEP_IDLE) {
			if (s->sweep_requested ||
			    (retention && km_mono_ns() >= next_sweep)) {
				s->sweep_requested = false;
				s->sweeping = true;
				sw = SWEEP_RESULTS;
				break;
			}
			if (retention) {
				struct timespec ts =
					deadline_in(next_sweep - km_mono_ns());
				pthread_cond_timedwait(&s->work_cv, &s->mu,
						       &ts);
			} else {
				pthread_cond_wait(&s->work_cv, &s->mu);
			}
		}
		if (s->stopping && !s->ring_count && !s->ctl_count)
			break;
		wait_for_company(s);
		/* Behind: a quarter of the queue waits (until a sixteenth
		 * does), or a caller does. */
		behind = s->ring_count >= s->ring_cap / 4 ||
			 (s->writer_boosted &&
			  s->ring_count > s->ring_cap / 16);
		waited_on = take_batch(s, &b);
		pthread_mutex_unlock(&s->mu);
		writer_priority(s, behind || waited_on, behind);

		if (b.n_ctl || b.n_res)
			write_batch(s, &b);
		if (sw != SWEEP_IDLE) {
			sw = sweep_step(s, sw);
			if (sw == SWEEP_IDLE)
				next_sweep = km_mono_ns() +
					     s->o.retention_interval_ms *
						     1000000;
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

/* Called with s->mu held; waits for room. */
static int push_ctl(struct km_store *s, const struct ctl_op *op)
{
	while (s->ctl_count == s->ctl_cap && !s->stopping)
		pthread_cond_wait(&s->room_cv, &s->mu);
	if (s->stopping)
		return KM_EUNAVAIL;
	s->ctl[(s->ctl_head + s->ctl_count) % s->ctl_cap] = *op;
	s->ctl_count++;
	pthread_cond_signal(&s->work_cv);
	return 0;
}

static int add_transition(struct km_store *s, const struct km_transition *t,
			  bool wait)
{
	struct ctl_op op = {.sync = NULL};
	int rc;

	op.copy = km_transition_dup(t);
	if (!op.copy)
		return KM_ENOMEM;
	op.t = *op.copy;
	pthread_mutex_lock(&s->mu);
	if (!wait && s->ctl_count == s->ctl_cap)
		rc = KM_EFULL;
	else
		rc = push_ctl(s, &op);
	pthread_mutex_unlock(&s->mu);
	if (rc)
		free(op.copy);
	return rc;
}

int km_store_add_transition(struct km_store *s, const struct km_transition *t)
{
	return add_transition(s, t, true);
}

int km_store_try_add_transition(struct km_store *s,
				const struct km_transition *t)
{
	return add_transition(s, t, false);
}

int store_run_sync(struct km_store *s,
		   int (*fn)(struct km_store *s, void *arg,
			     struct km_error *err),
		   void *arg, struct km_error *err)
{
	struct sync_op op = {.fn = fn, .arg = arg};
	struct ctl_op c = {.sync = &op};
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = push_ctl(s, &c);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return km_error_set(err, rc, "the store is shutting down");
	}
	while (!op.done)
		pthread_cond_wait(&s->done_cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	if (op.rc && err)
		*err = op.err;
	return op.rc;
}

int km_store_flush(struct km_store *s, struct km_error *err)
{
	return store_run_sync(s, NULL, NULL, err);
}

void km_store_get_stats(struct km_store *s, struct km_store_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	out->result_queue_depth = s->ring_count;
	pthread_mutex_unlock(&s->mu);
}

/* ---- open / close ------------------------------------------------------ */

static int configure(sqlite3 *db, bool sync_normal, struct km_error *err)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int rc;

	sqlite3_busy_timeout(db, 5000);
	rc = store_prepare(db, "PRAGMA journal_mode=WAL", &st, err);
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0)
				: NULL;
	if (!mode || strcmp(mode, "wal") != 0) {
		rc = km_error_set(err, KM_EIO,
				  "cannot switch to WAL mode (journal mode is "
				  "%s): %s", mode ? mode : "?",
				  sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return rc;
	}
	sqlite3_finalize(st);
	rc = store_exec(db,
			sync_normal ? "PRAGMA synchronous=NORMAL"
				    : "PRAGMA synchronous=FULL",
			err);
	/* Checkpoints every 10,000 WAL pages (about 40 MB) instead of
	 * 1,000. A result dirties its target's index page, so at 10,000
	 * targets nearly every row adds a page to the WAL; a checkpoint
	 * copies each page once however often it was written since the
	 * last, and ten times the interval sees each page several times.
	 * The CPU per row fell by about a fifth (bench/wal_checkpoint.py;
	 * bench/RESULTS.md, issue 3, "What changed between run B and run
	 * D"). */
	if (!rc)
		rc = store_exec(db,
				"PRAGMA foreign_keys=ON;"
				"PRAGMA cache_size=-65536;"
				"PRAGMA wal_autocheckpoint=10000;"
				"PRAGMA journal_size_limit=67108864",
				err);
	return rc;
}

int km_store_open(const struct km_store_options *opts, struct km_store **out,
		  struct km_error *err)
{
	struct km_store *s;
	int rc;

	*out = NULL;
	if (!opts->path || !opts->path[0])
		return km_error_set(err, KM_EINVAL, "database path is empty");
	s = calloc(1, sizeof *s);
	if (!s)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	s->o = *opts;
	if (!s->o.result_queue)
		s->o.result_queue = 65536;
	if (!s->o.control_queue)
		s->o.control_queue = 4096;
	if (!s->o.batch_max)
		s->o.batch_max = 8192;
	if (!s->o.retention_interval_ms)
		s->o.retention_interval_ms = 60000;
	if (!s->o.retention_batch)
		s->o.retention_batch = 2000;
	s->path = strdup(opts->path);
	s->o.path = s->path;
	s->ring_cap = s->o.result_queue;
	s->ctl_cap = s->o.control_queue;
	s->ring = calloc(s->ring_cap, sizeof *s->ring);
	s->ctl = calloc(s->ctl_cap, sizeof *s->ctl);
	s->batch_ctl = calloc(s->o.batch_max, sizeof *s->batch_ctl);
	s->batch_res = calloc(s->ring_cap, sizeof *s->batch_res);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->work_cv, NULL);
	pthread_cond_init(&s->room_cv, NULL);
	pthread_cond_init(&s->done_cv, NULL);
	if (!s->path || !s->ring || !s->ctl || !s->batch_ctl || !s->batch_res) {
		rc = km_error_set(err, KM_ENOMEM, "out of memory");
		goto fail;
	}

	rc = sqlite3_open_v2(s->path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		rc = km_error_set(err, KM_EIO, "cannot open database %s: %s",
				  s->path,
				  s->db ? sqlite3_errmsg(s->db)
					: sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 0);
	rc = configure(s->db, s->o.sync_normal, err);
	if (rc) {
		km_error_prefix(err, "database %s", s->path);
		goto fail;
	}
	rc = migrate(s, err);
	if (rc)
		goto fail;
	for (int i = 0; i < W_STMT_COUNT; i++) {
		rc = store_prepare(s->db, writer_sql[i], &s->stmt[i], err);
		if (rc)
			goto fail;
	}
	rc = pthread_create(&s->writer, NULL, writer_main, s);
	if (rc) {
		rc = km_error_set(err, KM_EIO, "cannot start writer: %s",
				  strerror(rc));
		goto fail;
	}
	s->writer_started = true;
	*out = s;
	return 0;

fail:
	km_store_close(s);
	return rc;
}

void km_store_close(struct km_store *s)
{
	if (!s)
		return;
	if (s->writer_started) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_broadcast(&s->work_cv);
		pthread_cond_broadcast(&s->room_cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->writer, NULL);
	}
	for (int i = 0; i < W_STMT_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	if (s->db) {
		/* A clean close checkpoints the WAL into the main file. */
		int rc = sqlite3_close(s->db);
		if (rc != SQLITE_OK)
			km_log(KM_LOG_ERROR, "database close failed", "db",
			       s->path, "err", sqlite3_errstr(rc), NULL);
	}
	pthread_cond_destroy(&s->done_cv);
	pthread_cond_destroy(&s->room_cv);
	pthread_cond_destroy(&s->work_cv);
	pthread_mutex_destroy(&s->mu);
	free(s->batch_res);
	free(s->batch_ctl);
	free(s->ring);
	free(s->ctl);
	free(s->path);
	free(s);
}
