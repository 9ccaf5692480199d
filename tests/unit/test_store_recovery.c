/*
 * Storage of recoveries (issue 11): creation and idempotent repeats, the
 * lifecycle and its time columns, preconditions, asynchronous updates, the
 * recovery listener (in order, after the commit, never for a failed
 * transaction — on a disk that fails on demand, km_test_vfs.h), lists with
 * every filter and their paging, the WatchRecoveries replay, the open
 * recoveries a restart picks up, the upgrade of a version 3 database, and
 * hostile strings. On a real SQLite file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_embed.h"
#include "km_store.h"
#include "km_test.h"
#include "km_test_schema.h"
#include "km_test_vfs.h"
#include "km_time.h"

#define WAIT_NS (10LL * 1000000000) /* a failure guard, not a pacer */

struct fixture {
	char *dir;
	char *db;
	struct km_store *s;
	struct km_reader *r;
	struct km_arena a;
};

/* ---- what the recovery listener heard ------------------------------------ */

#define HEARD_MAX 4096
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct km_recovery_event *ev[HEARD_MAX];
	int n;
	bool overflow;
	long tick; /* listener calls and async answers, in order */
} heard = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void heard_reset(void)
{
	pthread_mutex_lock(&heard.mu);
	for (int i = 0; i < heard.n; i++)
		free(heard.ev[i]);
	heard.n = 0;
	heard.overflow = false;
	heard.tick = 0;
	pthread_mutex_unlock(&heard.mu);
}

static void on_event(void *arg, const struct km_recovery_event *e)
{
	(void)arg;
	pthread_mutex_lock(&heard.mu);
	heard.tick++;
	if (heard.n < HEARD_MAX)
		heard.ev[heard.n++] = km_recovery_event_dup(e);
	else
		heard.overflow = true;
	pthread_cond_broadcast(&heard.cv);
	pthread_mutex_unlock(&heard.mu);
}

static int heard_count(void)
{
	int n;

	pthread_mutex_lock(&heard.mu);
	n = heard.n;
	pthread_mutex_unlock(&heard.mu);
	return n;
}

/* ---- fixture ------------------------------------------------------------- */

static int open_store(struct fixture *f, struct km_store_options *o)
{
	struct km_error err = {0};
	struct km_store_options def = {0};

	if (!o)
		o = &def;
	o->path = f->db;
	if (km_store_open(o, &f->s, &err)) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	if (km_reader_open(f->s, &f->r, &err)) {
		fprintf(stderr, "reader: %s\n", err.msg);
		return -1;
	}
	heard_reset();
	km_store_set_recovery_listener(f->s, on_event, NULL);
	return 0;
}

static void close_store(struct fixture *f)
{
	km_reader_close(f->r);
	f->r = NULL;
	km_store_close(f->s);
	f->s = NULL;
}

static int setup_dir(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	f->dir = km_test_tmpdir();
	if (!f->dir || asprintf(&f->db, "%s/km.db", f->dir) < 0)
		return -1;
	km_arena_init(&f->a, 4096);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	if (setup_dir(state))
		return -1;
	return open_store(*state, NULL);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	km_test_vfs_fail(0);
	close_store(f);
	heard_reset();
	km_arena_free(&f->a);
	km_test_rmrf(f->dir);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

static int64_t make_target(struct fixture *f, const char *name, const char *uid)
{
	struct km_target t = {.name = name, .uid = uid};
	struct km_error err = {0};

	if (km_store_ensure_target(f->s, &t, &err))
		fail_msg("ensure %s: %s", name, err.msg);
	assert_true(t.id > 0);
	return t.id;
}

static int64_t raw_count(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static struct km_recovery request(const char *target, int action,
				  const char *key)
{
	return (struct km_recovery){.target = target,
				    .action = action,
				    .reason = "unhealthy for 5m",
				    .requester = "alice",
				    .idempotency_key = key};
}

static int64_t create(struct fixture *f, struct km_recovery *r)
{
	struct km_error err = {0};
	bool existed = true;

	if (km_store_create_recovery(f->s, r, &f->a, &existed, &err))
		fail_msg("create recovery of %s: %s", r->target, err.msg);
	assert_false(existed);
	assert_true(r->id > 0);
	assert_true(r->seq > 0);
	return r->id;
}

static int update(struct fixture *f, int64_t id, int expected, int phase,
		  int64_t at_us, struct km_error *err)
{
	struct km_recovery_update u = {.id = id,
				       .expected_phase = expected,
				       .phase = phase,
				       .at_us = at_us};

	return km_store_update_recovery(f->s, &u, err);
}

static struct km_recovery get(struct fixture *f, int64_t id)
{
	struct km_recovery r;
	struct km_error err = {0};

	if (km_reader_get_recovery(f->r, id, &f->a, &r, &err))
		fail_msg("get recovery %lld: %s", (long long)id, err.msg);
	return r;
}

/* ---- the model ------------------------------------------------------------ */

static void test_names_and_final_phases(void **state)
{
	static const int final[] = {
		[KM_PHASE_REQUESTED] = 0,     [KM_PHASE_QUEUED] = 0,
		[KM_PHASE_DISPATCHED] = 0,    [KM_PHASE_SUCCEEDED] = 0,
		[KM_PHASE_FAILED] = 1,        [KM_PHASE_VERIFIED] = 1,
		[KM_PHASE_NOT_RECOVERED] = 1, [KM_PHASE_CANCELLED] = 1,
		[KM_PHASE_SKIPPED] = 1,       [KM_PHASE_DRY_RUN] = 1,
	};

	(void)state;
	for (int p = 1; p <= KM_PHASE_MAX; p++) {
		const char *n = km_phase_name(p);

		assert_non_null(n);
		assert_int_equal(km_recovery_phase_final(p), final[p]);
		assert_int_equal(km_phase_parse(n, strlen(n)), p);
	}
	for (int a = 1; a <= KM_ACTION_MAX; a++) {
		const char *n = km_action_name(a);

		assert_non_null(n);
		assert_int_equal(km_action_parse(n, strlen(n)), a);
	}
	assert_string_equal(km_phase_name(KM_PHASE_NOT_RECOVERED),
			    "not_recovered");
	assert_string_equal(km_phase_name(KM_PHASE_DRY_RUN), "dry_run");
	assert_string_equal(km_action_name(KM_ACTION_ROLLOUT_RESTART),
			    "rollout_restart");
	assert_int_equal(KM_ACTION_DRAIN, 5);
	assert_int_equal(KM_PHASE_DRY_RUN, 10);
	assert_null(km_phase_name(0));
	assert_null(km_phase_name(11));
	assert_null(km_action_name(6));
	assert_false(km_recovery_phase_final(0));
	assert_false(km_recovery_phase_final(11));
	assert_int_equal(km_phase_parse("queue", 5), 0);
	assert_int_equal(km_phase_parse("QUEUED", 6), 0);
	assert_int_equal(km_action_parse("drainx", 6), 0);
	assert_int_equal(km_action_parse("drainx", 5), KM_ACTION_DRAIN);
}

/* ---- creation -------------------------------------------------------------- */

static void test_create_and_idempotent_repeat(void **state)
{
	struct fixture *f = *state;
	int64_t tid = make_target(f, "prod-eu:pod/default/web-0", "uid-1");
	struct km_recovery r = request("prod-eu:pod/default/web-0",
				       KM_ACTION_RESTART_POD, "key-1");
	struct km_recovery again =
		request("prod-eu:pod/default/web-0", KM_ACTION_CORDON, "key-1");
	struct km_recovery other = request("prod-eu:pod/default/web-0",
					   KM_ACTION_RESTART_POD, NULL);
	struct km_recovery g;
	struct km_error err = {0};
	bool existed = false;
	int64_t before = km_now_us();

	r.cause_seq = 42;
	create(f, &r);
	assert_int_equal(r.target_id, tid);
	assert_string_equal(r.cluster, "prod-eu");
	assert_string_equal(r.target_uid, "uid-1"); /* the target's, now */
	assert_int_equal(r.phase, KM_PHASE_REQUESTED);
	assert_true(r.created_us >= before && r.created_us <= km_now_us());
	assert_int_equal(r.updated_us, r.created_us);
	assert_int_equal(heard_count(), 1);

	/* The same key again: the first recovery, nothing written, nobody
	 * told — whatever else the repeat asked. */
	again.reason = "another reason";
	assert_int_equal(km_store_create_recovery(f->s, &again, &f->a, &existed,
						  &err),
			 0);
	assert_true(existed);
	assert_int_equal(again.id, r.id);
	assert_int_equal(again.seq, r.seq);
	assert_int_equal(again.action, KM_ACTION_RESTART_POD);
	assert_string_equal(again.reason, "unhealthy for 5m");
	assert_int_equal(again.cause_seq, 42);
	assert_int_equal(again.created_us, r.created_us);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM recoveries"),
			 1);
	assert_int_equal(
		raw_count(f->db, "SELECT count(*) FROM recovery_events"), 1);
	assert_int_equal(heard_count(), 1);

	/* Without a key, each request is a recovery of its own. */
	other.target_uid = "uid-0"; /* the caller's uid is kept */
	create(f, &other);
	assert_true(other.id > r.id);
	assert_true(other.seq > r.seq);
	assert_string_equal(other.target_uid, "uid-0");
	other.idempotency_key = "";
	other.id = 0;
	create(f, &other);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM recoveries"),
			 3);

	g = get(f, r.id);
	assert_string_equal(g.target, "prod-eu:pod/default/web-0");
	assert_string_equal(g.cluster, "prod-eu");
	assert_string_equal(g.target_uid, "uid-1");
	assert_string_equal(g.requester, "alice");
	assert_string_equal(g.idempotency_key, "key-1");
	assert_string_equal(g.policy, "");
	assert_int_equal(g.seq, r.seq);
	assert_int_equal(g.cause_seq, 42);
	assert_int_equal(g.phase, KM_PHASE_REQUESTED);
	assert_int_equal(km_reader_get_recovery(f->r, 999, &f->a, &g, &err),
			 KM_ENOTFOUND);
	assert_non_null(strstr(err.msg, "999"));
}

static void test_create_refusals(void **state)
{
	struct fixture *f = *state;
	struct km_recovery r =
		request("pod/default/nobody", KM_ACTION_RESTART_POD, "k");
	struct km_error err = {0};
	bool existed = true;

	assert_int_equal(km_store_create_recovery(f->s, &r, &f->a, &existed,
						  &err),
			 KM_ENOTFOUND);
	assert_false(existed);
	assert_non_null(strstr(err.msg, "\"pod/default/nobody\""));

	/* A deleted target is no target to act on. */
	make_target(f, "pod/default/gone", "u");
	assert_int_equal(km_store_delete_target(f->s, "pod/default/gone",
						"pod deleted", &err),
			 0);
	r.target = "pod/default/gone";
	assert_int_equal(km_store_create_recovery(f->s, &r, &f->a, NULL, &err),
			 KM_ENOTFOUND);
	assert_non_null(strstr(err.msg, "pod/default/gone"));

	make_target(f, "pod/default/web-1", "u");
	r.target = "pod/default/web-1";
	r.action = 6;
	assert_int_equal(km_store_create_recovery(f->s, &r, &f->a, NULL, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "action 6"));
	r.action = KM_ACTION_RESTART_POD;
	r.phase = KM_PHASE_QUEUED;
	assert_int_equal(km_store_create_recovery(f->s, &r, &f->a, NULL, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "not queued"));
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM recoveries"),
			 0);
	assert_int_equal(heard_count(), 0);

	/* Decided at once: one event, in that phase. */
	r.phase = KM_PHASE_SKIPPED;
	r.skip_rule = "budget";
	create(f, &r);
	assert_int_equal(get(f, r.id).phase, KM_PHASE_SKIPPED);
	assert_string_equal(get(f, r.id).skip_rule, "budget");
	assert_int_equal(heard_count(), 1);
	assert_int_equal(heard.ev[0]->r.phase, KM_PHASE_SKIPPED);
	assert_string_equal(heard.ev[0]->r.skip_rule, "budget");
}

/* ---- lifecycle ------------------------------------------------------------- */

static void test_lifecycle_and_time_columns(void **state)
{
	struct fixture *f = *state;
	struct km_recovery r = request("node//worker-3", KM_ACTION_DRAIN, NULL);
	struct km_recovery g;
	struct km_error err = {0};
	int64_t t0 = 1700000000000000LL, seq;

	make_target(f, "node//worker-3", "node-uid");
	r.created_us = t0;
	create(f, &r);
	seq = r.seq;

	{
		struct km_recovery_update u = {.id = r.id,
					       .expected_phase =
						       KM_PHASE_REQUESTED,
					       .phase = KM_PHASE_QUEUED,
					       .not_before_us = t0 + 500,
					       .at_us = t0 + 10};

		assert_int_equal(km_store_update_recovery(f->s, &u, &err), 0);
		assert_true(u.seq > seq);
		seq = u.seq;
	}
	g = get(f, r.id);
	assert_int_equal(g.phase, KM_PHASE_QUEUED);
	assert_int_equal(g.seq, seq);
	assert_int_equal(g.updated_us, t0 + 10);
	assert_int_equal(g.not_before_us, t0 + 500);
	assert_int_equal(g.dispatched_us, 0);

	{
		struct km_recovery_update u = {.id = r.id,
					       .expected_phase =
						       KM_PHASE_QUEUED,
					       .phase = KM_PHASE_DISPATCHED,
					       .attempts = 1,
					       .at_us = t0 + 20};

		assert_int_equal(km_store_update_recovery(f->s, &u, &err), 0);
		assert_true(u.seq > seq);
		seq = u.seq;
	}
	g = get(f, r.id);
	assert_int_equal(g.phase, KM_PHASE_DISPATCHED);
	assert_int_equal(g.attempts, 1);
	assert_int_equal(g.dispatched_us, t0 + 20);
	assert_int_equal(g.finished_us, 0);
	assert_int_equal(g.not_before_us, t0 + 500); /* unchanged */

	{
		struct km_recovery_update u = {.id = r.id,
					       .expected_phase =
						       KM_PHASE_DISPATCHED,
					       .phase = KM_PHASE_SUCCEEDED,
					       .http_status = 201,
					       .message = "eviction accepted",
					       .not_before_us = -1,
					       .at_us = t0 + 30};

		assert_int_equal(km_store_update_recovery(f->s, &u, &err), 0);
		assert_true(u.seq > seq);
		seq = u.seq;
	}
	g = get(f, r.id);
	assert_int_equal(g.phase, KM_PHASE_SUCCEEDED);
	assert_int_equal(g.finished_us, t0 + 30);
	assert_int_equal(g.verified_us, 0);
	assert_int_equal(g.http_status, 201);
	assert_string_equal(g.last_error, "eviction accepted");
	assert_int_equal(g.not_before_us, 0);
	assert_int_equal(g.attempts, 1); /* 0: unchanged */

	/* SUCCEEDED is not final: verification follows. */
	assert_int_equal(update(f, r.id, KM_PHASE_SUCCEEDED, KM_PHASE_VERIFIED,
				t0 + 40, &err),
			 0);
	g = get(f, r.id);
	assert_int_equal(g.phase, KM_PHASE_VERIFIED);
	assert_int_equal(g.verified_us, t0 + 40);
	assert_int_equal(g.updated_us, t0 + 40);
	assert_int_equal(g.created_us, t0);
	assert_int_equal(g.dispatched_us, t0 + 20);
	assert_int_equal(g.finished_us, t0 + 30);
	assert_int_equal(g.http_status, 201); /* unchanged */
	assert_string_equal(g.last_error, "eviction accepted");
	assert_true(g.seq > seq);

	/* One event per change, each as the change left the recovery. */
	assert_int_equal(
		raw_count(f->db, "SELECT count(*) FROM recovery_events"), 5);
	assert_int_equal(heard_count(), 5);
	{
		static const int phases[] = {KM_PHASE_REQUESTED,
					     KM_PHASE_QUEUED,
					     KM_PHASE_DISPATCHED,
					     KM_PHASE_SUCCEEDED,
					     KM_PHASE_VERIFIED};
		static const int attempts[] = {0, 0, 1, 1, 1};
		static const int64_t at[] = {0, 10, 20, 30, 40};

		for (int i = 0; i < 5; i++) {
			const struct km_recovery_event *e = heard.ev[i];

			assert_int_equal(e->r.phase, phases[i]);
			assert_int_equal(e->r.attempts, attempts[i]);
			assert_int_equal(e->at_us, t0 + at[i]);
			assert_int_equal(e->r.updated_us, t0 + at[i]);
			assert_int_equal(e->r.seq, e->seq);
			assert_int_equal(e->r.id, r.id);
			assert_string_equal(e->r.target, "node//worker-3");
			assert_string_equal(e->r.target_uid, "node-uid");
			assert_int_equal(e->r.action, KM_ACTION_DRAIN);
			assert_string_equal(e->r.last_error,
					    i >= 3 ? "eviction accepted" : "");
			assert_int_equal(e->r.http_status, i >= 3 ? 201 : 0);
			if (i)
				assert_true(e->seq > heard.ev[i - 1]->seq);
		}
	}
}

/* An attempt with no answer clears the status of the one before: its
 * row and its event never pair "no answer" with an old HTTP status. */
static void test_no_answer_clears_the_status(void **state)
{
	struct fixture *f = *state;
	struct km_recovery r =
		request("node//worker-3", KM_ACTION_CORDON, NULL);
	struct km_error err = {0};
	struct km_recovery_update u[] = {
		{.phase = KM_PHASE_QUEUED},
		{.phase = KM_PHASE_DISPATCHED, .attempts = 1},
		{.phase = KM_PHASE_QUEUED,
		 .http_status = 500,
		 .message = "the API server failed (HTTP 500)"},
		{.phase = KM_PHASE_DISPATCHED, .attempts = 2},
		{.phase = KM_PHASE_QUEUED,
		 .http_status = -1,
		 .message = "no answer: connection reset"},
	};

	make_target(f, "node//worker-3", "node-uid");
	create(f, &r);
	for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
		u[i].id = r.id;
		assert_int_equal(km_store_update_recovery(f->s, &u[i], &err),
				 0);
		if (i == 3) /* 0: unchanged */
			assert_int_equal(get(f, r.id).http_status, 500);
	}
	r = get(f, r.id);
	assert_int_equal(r.http_status, 0);
	assert_string_equal(r.last_error, "no answer: connection reset");
	assert_int_equal(raw_count(f->db,
				   "SELECT count(*) FROM recovery_events "
				   "WHERE http_status = 0 AND message "
				   "LIKE 'no answer%'"),
			 1);
}

static void test_preconditions(void **state)
{
	struct fixture *f = *state;
	struct km_recovery r =
		request("pod/default/web-0", KM_ACTION_RESTART_POD, NULL);
	struct km_error err = {0};
	int64_t events;

	make_target(f, "pod/default/web-0", "u");
	create(f, &r);
	assert_int_equal(update(f, r.id, 0, KM_PHASE_QUEUED, 0, &err), 0);
	events = raw_count(f->db, "SELECT count(*) FROM recovery_events");

	/* Someone else moved it on: refused, saying where it is. */
	assert_int_equal(update(f, r.id, KM_PHASE_REQUESTED, KM_PHASE_CANCELLED,
				0, &err),
			 KM_EPRECOND);
	assert_non_null(strstr(err.msg, "is queued, not requested"));
	assert_int_equal(get(f, r.id).phase, KM_PHASE_QUEUED);

	assert_int_equal(update(f, r.id, 0, 11, 0, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "11"));
	assert_int_equal(update(f, 4242, 0, KM_PHASE_QUEUED, 0, &err),
			 KM_ENOTFOUND);
	assert_non_null(strstr(err.msg, "recovery 4242 not found"));
	assert_int_equal(raw_count(f->db,
				   "SELECT count(*) FROM recovery_events"),
			 events);

	/* Cancelled is final: nothing changes it, whatever is expected. */
	assert_int_equal(update(f, r.id, KM_PHASE_QUEUED, KM_PHASE_CANCELLED, 0,
				&err),
			 0);
	for (int p = 1; p <= KM_PHASE_MAX; p++) {
		memset(&err, 0, sizeof err);
		assert_int_equal(update(f, r.id, 0, p, 0, &err), KM_EPRECOND);
		assert_non_null(strstr(err.msg, "is cancelled, a final phase"));
	}
	assert_int_equal(get(f, r.id).phase, KM_PHASE_CANCELLED);
	assert_int_equal(raw_count(f->db,
				   "SELECT count(*) FROM recovery_events"),
			 events + 1);
	assert_int_equal(heard_count(), (int)events + 1);
}

/* ---- asynchronous updates --------------------------------------------------- */

struct answer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
	char why[sizeof(((struct km_error *)0)->msg)];
	long tick;           /* heard.tick when answered */
	int64_t seq;         /* u->seq as the answer found it */
	int committed_phase; /* the row's phase, read by another connection */
	const char *db;
	int64_t id;
	struct km_recovery_update *u;
	pthread_t caller;
	bool on_writer;
};

/* Reads the row from a connection of its own: only a committed change is
 * visible there. */
static int committed_phase(const char *db_path, int64_t id)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int phase = -1;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	if (sqlite3_prepare_v2(db, "SELECT phase FROM recoveries WHERE id = ?1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			phase = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return phase;
}

static void on_answer(void *arg, int rc, const struct km_error *err)
{
	struct answer *a = arg;
	int phase = committed_phase(a->db, a->id);

	pthread_mutex_lock(&heard.mu);
	a->tick = heard.tick++;
	pthread_mutex_unlock(&heard.mu);
	pthread_mutex_lock(&a->mu);
	a->rc = rc;
	snprintf(a->why, sizeof a->why, "%s", rc ? err->msg : "");
	a->seq = a->u->seq;
	a->committed_phase = phase;
	a->on_writer = !pthread_equal(pthread_self(), a->caller);
	a->done = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static void update_async(struct fixture *f, struct km_recovery_update *u,
			 struct answer *a)
{
	struct timespec until = km_realtime_after(WAIT_NS);

	*a = (struct answer){.mu = PTHREAD_MUTEX_INITIALIZER,
			     .cv = PTHREAD_COND_INITIALIZER,
			     .db = f->db,
			     .id = u->id,
			     .u = u,
			     .caller = pthread_self()};
	assert_int_equal(km_store_update_recovery_async(f->s, u, on_answer, a),
			 0);
	pthread_mutex_lock(&a->mu);
	while (!a->done)
		if (pthread_cond_timedwait(&a->cv, &a->mu, &until))
			break;
	pthread_mutex_unlock(&a->mu);
	if (!a->done)
		fail_msg("no answer from the writer");
}

static void test_async_update(void **state)
{
	struct fixture *f = *state;
	struct km_recovery r =
		request("pod/default/web-0", KM_ACTION_RESTART_POD, NULL);
	struct km_recovery_update u = {.phase = KM_PHASE_QUEUED};
	struct answer a;

	make_target(f, "pod/default/web-0", "u");
	create(f, &r);
	u.id = r.id;
	update_async(f, &u, &a);
	assert_int_equal(a.rc, 0);
	assert_true(a.on_writer);
	/* Answered after the commit (another connection saw it), with its
	 * seq set, and after the listener heard the event. */
	assert_int_equal(a.committed_phase, KM_PHASE_QUEUED);
	assert_true(a.seq > r.seq);
	assert_int_equal(u.seq, a.seq);
	assert_true(u.at_us > 0);
	assert_int_equal(heard_count(), 2);
	assert_int_equal(heard.ev[1]->seq, u.seq);
	assert_true(a.tick > 1); /* ticks 0, 1: the two events */

	/* Refusals come through done as well, and write nothing. */
	u = (struct km_recovery_update){.id = r.id,
					.expected_phase = KM_PHASE_DISPATCHED,
					.phase = KM_PHASE_SUCCEEDED};
	update_async(f, &u, &a);
	assert_int_equal(a.rc, KM_EPRECOND);
	assert_non_null(strstr(a.why, "is queued, not dispatched"));
	assert_int_equal(u.seq, 0);
	u = (struct km_recovery_update){.id = r.id, .phase = 12};
	update_async(f, &u, &a);
	assert_int_equal(a.rc, KM_EINVAL);
	u = (struct km_recovery_update){.id = 77, .phase = KM_PHASE_QUEUED};
	update_async(f, &u, &a);
	assert_int_equal(a.rc, KM_ENOTFOUND);
	assert_int_equal(heard_count(), 2);
	assert_int_equal(get(f, r.id).phase, KM_PHASE_QUEUED);
}

/* ---- the listener and storage faults -------------------------------------- */

/* The store again, on the VFS that fails on demand. */
static int setup_faulty(void **state)
{
	if (setup_dir(state))
		return -1;
	km_test_vfs_install();
	km_test_vfs_fail(0);
	return open_store(*state, NULL);
}

static void test_listener_hears_committed_events_only(void **state)
{
	struct fixture *f = *state;
	struct km_recovery r =
		request("pod/default/web-0", KM_ACTION_RESTART_POD, "k1");
	struct km_recovery r2 =
		request("pod/default/web-0", KM_ACTION_RESTART_POD, "k2");
	struct km_recovery_update u = {.phase = KM_PHASE_QUEUED};
	struct km_error err = {0};
	struct answer a;

	make_target(f, "pod/default/web-0", "u");
	create(f, &r);
	/* Told before the synchronous caller returns. */
	assert_int_equal(heard_count(), 1);

	km_test_vfs_fail(SQLITE_FULL);
	u.id = r.id;
	assert_int_equal(km_store_update_recovery(f->s, &u, &err), KM_EFULL);
	assert_int_equal(u.seq, 0);
	assert_int_equal(km_store_create_recovery(f->s, &r2, &f->a, NULL, &err),
			 KM_EFULL);
	update_async(f, &u, &a);
	assert_int_equal(a.rc, KM_EFULL);
	assert_int_equal(u.seq, 0);
	assert_int_equal(heard_count(), 1);
	km_test_vfs_fail(0);

	/* Nothing of the failed transactions is stored. */
	assert_int_equal(get(f, r.id).phase, KM_PHASE_REQUESTED);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM recoveries"),
			 1);
	assert_int_equal(
		raw_count(f->db, "SELECT count(*) FROM recovery_events"), 1);

	/* The same changes again, now committed: heard once each, in seq
	 * order. */
	assert_int_equal(km_store_update_recovery(f->s, &u, &err), 0);
	r2.id = 0;
	create(f, &r2);
	assert_int_equal(heard_count(), 3);
	assert_int_equal(heard.ev[1]->seq, u.seq);
	assert_int_equal(heard.ev[1]->r.phase, KM_PHASE_QUEUED);
	assert_int_equal(heard.ev[2]->seq, r2.seq);
	assert_true(heard.ev[0]->seq < heard.ev[1]->seq &&
		    heard.ev[1]->seq < heard.ev[2]->seq);
	assert_false(heard.overflow);
}

/* Many asynchronous updates queued at once share batches: the listener
 * still hears every event once, in seq order. */
static void test_listener_order_across_batches(void **state)
{
	struct fixture *f = *state;
	enum { N = 40 };
	struct km_recovery r[N];
	struct km_recovery_update u[N];
	struct answer a[N];
	struct timespec until;

	make_target(f, "pod/default/web-0", "u");
	for (int i = 0; i < N; i++) {
		r[i] = request("pod/default/web-0", KM_ACTION_RESTART_POD,
			       NULL);
		create(f, &r[i]);
	}
	heard_reset();
	for (int i = 0; i < N; i++) {
		u[i] = (struct km_recovery_update){.id = r[i].id,
						   .phase = KM_PHASE_QUEUED};
		a[i] = (struct answer){.mu = PTHREAD_MUTEX_INITIALIZER,
				       .cv = PTHREAD_COND_INITIALIZER,
				       .db = f->db,
				       .id = r[i].id,
				       .u = &u[i],
				       .caller = pthread_self()};
		assert_int_equal(km_store_update_recovery_async(
					 f->s, &u[i], on_answer, &a[i]),
				 0);
	}
	until = km_realtime_after(WAIT_NS);
	for (int i = 0; i < N; i++) {
		pthread_mutex_lock(&a[i].mu);
		while (!a[i].done)
			if (pthread_cond_timedwait(&a[i].cv, &a[i].mu, &until))
				break;
		pthread_mutex_unlock(&a[i].mu);
		if (!a[i].done)
			fail_msg("no answer for update %d", i);
		assert_int_equal(a[i].rc, 0);
		assert_int_equal(a[i].committed_phase, KM_PHASE_QUEUED);
	}
	assert_int_equal(heard_count(), N);
	for (int i = 0; i < N; i++) {
		/* Queued in this order, written in it. */
		assert_int_equal(heard.ev[i]->r.id, r[i].id);
		assert_int_equal(heard.ev[i]->seq, u[i].seq);
		if (i)
			assert_true(heard.ev[i]->seq > heard.ev[i - 1]->seq);
	}
}

/* ---- lists ------------------------------------------------------------------ */

static size_t list(struct fixture *f, const struct km_recovery_query *q,
		   struct km_recovery **out, bool *more)
{
	struct km_error err = {0};
	size_t n = 0;

	if (km_reader_list_recoveries(f->r, q, &f->a, out, &n, more, &err))
		fail_msg("list: %s", err.msg);
	for (size_t i = 1; i < n; i++)
		assert_true((*out)[i].id < (*out)[i - 1].id);
	return n;
}

/* The ids of a list, newest first, as "5,3,1". */
static const char *ids(struct fixture *f, const struct km_recovery_query *q)
{
	struct km_recovery *v;
	bool more;
	size_t n = list(f, q, &v, &more);
	char *s = km_arena_alloc(&f->a, 16 * (n + 1) + 1);

	s[0] = '\0';
	for (size_t i = 0; i < n; i++)
		sprintf(s + strlen(s), "%s%lld", i ? "," : "",
			(long long)v[i].id);
	return s;
}

static void test_list_filters_and_paging(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *target;
		int action;
		const char *requester;
		int phase; /* reached after creation; 0 stays requested */
	} rows[] = {
		{"eu:pod/default/a", KM_ACTION_RESTART_POD, "alice", 0},
		{"eu:pod/default/b", KM_ACTION_RESTART_POD, "policy:crashloop",
		 KM_PHASE_QUEUED},
		{"us:node//n1", KM_ACTION_CORDON, "alice", KM_PHASE_CANCELLED},
		{"us:node//n1", KM_ACTION_DRAIN, "bob", KM_PHASE_QUEUED},
		{"eu:pod/default/a", KM_ACTION_RESTART_POD, "policy:crashloop",
		 0},
		{"us:deployment/shop/cart", KM_ACTION_ROLLOUT_RESTART, "bob",
		 KM_PHASE_QUEUED},
	};
	int64_t t0 = 1700000000000000LL, seq[6];
	struct km_recovery_query q = {0};
	struct km_recovery *v;
	struct km_error err = {0};
	bool more;
	size_t n;

	make_target(f, "eu:pod/default/a", "ua");
	make_target(f, "eu:pod/default/b", "ub");
	make_target(f, "us:node//n1", "un");
	make_target(f, "us:deployment/shop/cart", "ud");
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct km_recovery r =
			request(rows[i].target, rows[i].action, NULL);

		r.requester = rows[i].requester;
		r.created_us = t0 + (int64_t)i * 1000;
		create(f, &r);
		assert_int_equal(r.id, (int64_t)i + 1);
		seq[i] = r.seq;
		if (rows[i].phase) {
			struct km_recovery_update u = {.id = r.id,
						       .phase = rows[i].phase};

			assert_int_equal(
				km_store_update_recovery(f->s, &u, &err), 0);
			seq[i] = u.seq;
		}
	}

	assert_string_equal(ids(f, &q), "6,5,4,3,2,1");
	q.target = "eu:pod/default/a";
	assert_string_equal(ids(f, &q), "5,1");
	q = (struct km_recovery_query){.cluster = "us"};
	assert_string_equal(ids(f, &q), "6,4,3");
	q = (struct km_recovery_query){.action = KM_ACTION_RESTART_POD};
	assert_string_equal(ids(f, &q), "5,2,1");
	q = (struct km_recovery_query){.phase = KM_PHASE_QUEUED};
	assert_string_equal(ids(f, &q), "6,4,2");
	q = (struct km_recovery_query){.phase = KM_PHASE_REQUESTED};
	assert_string_equal(ids(f, &q), "5,1");
	q = (struct km_recovery_query){.requester = "policy:crashloop"};
	assert_string_equal(ids(f, &q), "5,2");
	q = (struct km_recovery_query){.from_us = t0 + 2000};
	assert_string_equal(ids(f, &q), "6,5,4,3");
	q = (struct km_recovery_query){.to_us = t0 + 2000};
	assert_string_equal(ids(f, &q), "2,1");
	q = (struct km_recovery_query){.from_us = t0 + 1000,
				       .to_us = t0 + 4000};
	assert_string_equal(ids(f, &q), "4,3,2");
	q = (struct km_recovery_query){.cluster = "us",
				       .requester = "bob",
				       .phase = KM_PHASE_QUEUED};
	assert_string_equal(ids(f, &q), "6,4");
	q = (struct km_recovery_query){.cluster = "us",
				       .action = KM_ACTION_DRAIN};
	assert_string_equal(ids(f, &q), "4");
	q = (struct km_recovery_query){.target = "pod/default/a"};
	assert_string_equal(ids(f, &q), ""); /* the full name, cluster too */
	q = (struct km_recovery_query){.cluster = "eu",
				       .action = KM_ACTION_DRAIN};
	assert_string_equal(ids(f, &q), "");

	/* Pages of two: the cursor is the last id; more until the end. */
	q = (struct km_recovery_query){.limit = 2};
	n = list(f, &q, &v, &more);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_int_equal(v[0].id, 6);
	assert_int_equal(v[1].id, 5);
	assert_string_equal(v[1].target, "eu:pod/default/a");
	assert_string_equal(v[1].requester, "policy:crashloop");
	assert_int_equal(v[0].seq, seq[5]); /* its newest event's */
	assert_int_equal(v[1].seq, seq[4]);
	assert_int_equal(v[0].phase, KM_PHASE_QUEUED);
	q.before_id = v[1].id;
	n = list(f, &q, &v, &more);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_int_equal(v[0].id, 4);
	assert_int_equal(v[1].id, 3);
	q.before_id = v[1].id;
	n = list(f, &q, &v, &more);
	assert_int_equal(n, 2);
	assert_false(more);
	assert_int_equal(v[0].id, 2);
	assert_int_equal(v[1].id, 1);
	/* With a filter too. */
	q = (struct km_recovery_query){.cluster = "us", .limit = 1};
	n = list(f, &q, &v, &more);
	assert_int_equal(n, 1);
	assert_true(more);
	q.before_id = v[0].id;
	assert_string_equal(ids(f, &q), "4");
	q.limit = 2;
	n = list(f, &q, &v, &more);
	assert_int_equal(n, 2);
	assert_false(more);
}

static void test_list_limit_is_bounded(void **state)
{
	struct fixture *f = *state;
	struct km_recovery_query q = {0};
	struct km_recovery_event *ev;
	struct km_recovery *v;
	struct km_error err = {0};
	bool more;
	size_t n;

	/* Commits without waiting for the disk: a thousand of them. */
	close_store(f);
	assert_int_equal(
		open_store(f, &(struct km_store_options){.sync_normal = true}),
		0);
	make_target(f, "pod/default/web-0", "u");
	for (int i = 0; i < KM_RECOVERY_PAGE_MAX + 1; i++) {
		struct km_recovery r = request("pod/default/web-0",
					       KM_ACTION_RESTART_POD, NULL);

		create(f, &r);
	}
	n = list(f, &q, &v, &more); /* limit 0: the most */
	assert_int_equal(n, KM_RECOVERY_PAGE_MAX);
	assert_true(more);
	q.limit = 1000000;
	n = list(f, &q, &v, &more);
	assert_int_equal(n, KM_RECOVERY_PAGE_MAX);
	assert_true(more);
	assert_int_equal(km_reader_recovery_events_after(f->r, 0, NULL, 5000000,
							 &f->a, &ev, &n, &more,
							 &err),
			 0);
	assert_int_equal(n, KM_RECOVERY_PAGE_MAX);
	assert_true(more);
	assert_int_equal(ev[n - 1].seq, KM_RECOVERY_PAGE_MAX);
}

/* ---- replay and restart --------------------------------------------------- */

static void assert_event_equal(const struct km_recovery_event *x,
			       const struct km_recovery_event *y)
{
	const struct km_recovery *a = &x->r, *b = &y->r;

	assert_int_equal(x->seq, y->seq);
	assert_int_equal(x->at_us, y->at_us);
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->target_id, b->target_id);
	assert_string_equal(a->target, b->target);
	assert_string_equal(a->cluster, b->cluster);
	assert_string_equal(a->target_uid, b->target_uid);
	assert_int_equal(a->action, b->action);
	assert_int_equal(a->phase, b->phase);
	assert_string_equal(a->reason, b->reason);
	assert_string_equal(a->requester, b->requester);
	assert_string_equal(a->policy, b->policy);
	assert_string_equal(a->idempotency_key, b->idempotency_key);
	assert_int_equal(a->dry_run, b->dry_run);
	assert_int_equal(a->force, b->force);
	assert_int_equal(a->attempts, b->attempts);
	assert_string_equal(a->skip_rule, b->skip_rule);
	assert_string_equal(a->last_error, b->last_error);
	assert_int_equal(a->http_status, b->http_status);
	assert_int_equal(a->cause_seq, b->cause_seq);
	assert_int_equal(a->created_us, b->created_us);
	assert_int_equal(a->updated_us, b->updated_us);
	assert_int_equal(a->dispatched_us, b->dispatched_us);
	assert_int_equal(a->finished_us, b->finished_us);
	assert_int_equal(a->verified_us, b->verified_us);
	assert_int_equal(a->not_before_us, b->not_before_us);
	assert_int_equal(a->seq, b->seq);
}

static void test_replay_equals_what_the_listener_heard(void **state)
{
	struct fixture *f = *state;
	struct km_recovery a =
		request("pod/default/a", KM_ACTION_RESTART_POD, "ka");
	struct km_recovery b = request("node//n1", KM_ACTION_CORDON, NULL);
	struct km_recovery c =
		request("pod/default/a", KM_ACTION_RESTART_POD, NULL);
	struct km_recovery_event *ev;
	struct km_error err = {0};
	int64_t after = 0;
	bool more = true;
	size_t n, total = 0, pages = 0;

	make_target(f, "pod/default/a", "ua");
	make_target(f, "node//n1", "un");
	a.policy = "crashloop";
	a.requester = "policy:crashloop";
	a.cause_seq = 7;
	a.force = true;
	create(f, &a);
	b.dry_run = true;
	b.phase = KM_PHASE_DRY_RUN;
	create(f, &b);
	c.phase = KM_PHASE_SKIPPED;
	c.skip_rule = "max 1 per target per hour";
	c.last_error = "budget spent";
	create(f, &c);
	{
		struct km_recovery_update u[] = {
			{.id = a.id,
			 .phase = KM_PHASE_QUEUED,
			 .not_before_us = 99},
			{.id = a.id,
			 .phase = KM_PHASE_DISPATCHED,
			 .attempts = 1},
			{.id = a.id,
			 .phase = KM_PHASE_QUEUED,
			 .attempts = 1,
			 .http_status = 503,
			 .message = "apiserver busy",
			 .not_before_us = 123},
			{.id = a.id,
			 .phase = KM_PHASE_DISPATCHED,
			 .attempts = 2},
			{.id = a.id,
			 .phase = KM_PHASE_FAILED,
			 .http_status = 409,
			 .message = "uid precondition failed"},
		};

		for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
			assert_int_equal(
				km_store_update_recovery(f->s, &u[i], &err), 0);
	}
	assert_int_equal(heard_count(), 8);

	/* Pages of three, resuming after the last seq. */
	while (more) {
		assert_int_equal(km_reader_recovery_events_after(
					 f->r, after, NULL, 3, &f->a, &ev, &n,
					 &more, &err),
				 0);
		assert_true(n <= 3);
		for (size_t i = 0; i < n; i++)
			assert_event_equal(&ev[i], heard.ev[total + i]);
		total += n;
		pages++;
		if (n)
			after = ev[n - 1].seq;
	}
	assert_int_equal(total, 8);
	assert_int_equal(pages, 3);
	/* What an event holds. */
	assert_string_equal(heard.ev[2]->r.skip_rule,
			    "max 1 per target per hour");
	assert_string_equal(heard.ev[2]->r.last_error, "budget spent");
	assert_int_equal(heard.ev[1]->r.phase, KM_PHASE_DRY_RUN);
	assert_true(heard.ev[1]->r.dry_run);
	assert_string_equal(heard.ev[5]->r.last_error, "apiserver busy");
	assert_int_equal(heard.ev[5]->r.http_status, 503);
	assert_string_equal(heard.ev[7]->r.last_error,
			    "uid precondition failed");
	assert_string_equal(heard.ev[7]->r.requester, "policy:crashloop");
	assert_int_equal(heard.ev[7]->r.cause_seq, 7);
	assert_int_equal(heard.ev[7]->r.dispatched_us, 0);
	{
		struct km_recovery g = get(f, a.id);

		assert_int_equal(g.phase, KM_PHASE_FAILED);
		assert_true(g.dispatched_us > 0);
		assert_true(g.finished_us >= g.dispatched_us);
		assert_int_equal(g.not_before_us, 0); /* final: cleared */
		assert_int_equal(g.attempts, 2);
		assert_int_equal(g.seq, heard.ev[7]->seq);
	}

	/* Only one target's, from the middle. */
	assert_int_equal(km_reader_recovery_events_after(
				 f->r, heard.ev[1]->seq, "pod/default/a", 0,
				 &f->a, &ev, &n, &more, &err),
			 0);
	assert_int_equal(n, 6);
	assert_false(more);
	assert_event_equal(&ev[0], heard.ev[2]);
	for (size_t i = 1; i < n; i++)
		assert_event_equal(&ev[i], heard.ev[2 + i]);
	assert_int_equal(km_reader_recovery_events_after(f->r, 0, "node//n1", 0,
							 &f->a, &ev, &n, &more,
							 &err),
			 0);
	assert_int_equal(n, 1);
	assert_event_equal(&ev[0], heard.ev[1]);
	assert_int_equal(km_reader_recovery_events_after(f->r, heard.ev[7]->seq,
							 NULL, 0, &f->a, &ev,
							 &n, &more, &err),
			 0);
	assert_int_equal(n, 0);
	assert_false(more);
}

static void test_open_recoveries(void **state)
{
	struct fixture *f = *state;
	static const int path[][4] = {
		/* phases reached after REQUESTED; 0 ends */
		{0},
		{KM_PHASE_QUEUED},
		{KM_PHASE_QUEUED, KM_PHASE_DISPATCHED},
		{KM_PHASE_QUEUED, KM_PHASE_DISPATCHED, KM_PHASE_SUCCEEDED},
		{KM_PHASE_QUEUED, KM_PHASE_DISPATCHED, KM_PHASE_SUCCEEDED,
		 KM_PHASE_VERIFIED},
		{KM_PHASE_QUEUED, KM_PHASE_DISPATCHED, KM_PHASE_SUCCEEDED,
		 KM_PHASE_NOT_RECOVERED},
		{KM_PHASE_QUEUED, KM_PHASE_DISPATCHED, KM_PHASE_FAILED},
		{KM_PHASE_CANCELLED},
	};
	int64_t id[8 + 2];
	struct km_recovery *v;
	struct km_error err = {0};
	size_t n;

	make_target(f, "pod/default/web-0", "u");
	/* Oldest first: created in reverse of their phase's order. */
	for (int i = 7; i >= 0; i--) {
		struct km_recovery r = request("pod/default/web-0",
					       KM_ACTION_RESTART_POD, NULL);

		id[i] = create(f, &r);
		for (int k = 0; k < 4 && path[i][k]; k++)
			assert_int_equal(
				update(f, id[i], 0, path[i][k], 0, &err), 0);
	}
	for (int i = 8; i < 10; i++) {
		struct km_recovery r = request("pod/default/web-0",
					       KM_ACTION_RESTART_POD, NULL);

		r.phase = i == 8 ? KM_PHASE_SKIPPED : KM_PHASE_DRY_RUN;
		id[i] = create(f, &r);
	}
	assert_int_equal(km_reader_open_recoveries(f->r, &f->a, &v, &n, &err),
			 0);
	assert_int_equal(n, 4);
	assert_int_equal(v[0].id, id[3]);
	assert_int_equal(v[0].phase, KM_PHASE_SUCCEEDED);
	assert_int_equal(v[1].id, id[2]);
	assert_int_equal(v[1].phase, KM_PHASE_DISPATCHED);
	assert_true(v[1].dispatched_us > 0);
	assert_int_equal(v[2].id, id[1]);
	assert_int_equal(v[2].phase, KM_PHASE_QUEUED);
	assert_int_equal(v[3].id, id[0]);
	assert_int_equal(v[3].phase, KM_PHASE_REQUESTED);
	assert_string_equal(v[3].target_uid, "u");

	/* Survives a restart: the daemon's view after a crash. */
	close_store(f);
	assert_int_equal(open_store(f, NULL), 0);
	assert_int_equal(km_reader_open_recoveries(f->r, &f->a, &v, &n, &err),
			 0);
	assert_int_equal(n, 4);
	assert_int_equal(v[3].id, id[0]);
}

/* ---- migration --------------------------------------------------------------- */

/* A database exactly as a kubemedicd of schema version 3 left it, with a
 * target and a transition in it. */
static void make_v3_database(const char *path)
{
	sqlite3 *db = km_test_old_database(path, 3);

	assert_string_equal(km_migrations[2].name, "0003_probe_creator.sql");
	assert_int_equal(
		sqlite3_exec(db,
			     "INSERT INTO targets (name, kind, object_name, "
			     "uid, state, state_since, created_at) VALUES "
			     "('pod/default/old', 3, 'old', 'old-uid', 3, 1, "
			     "1);"
			     "INSERT INTO transitions (target_id, at, "
			     "from_state, to_state, flapping, cause) VALUES "
			     "(1, 2, 2, 3, 0, 'probe failed')",
			     NULL, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_version_3_database_upgrades(void **state)
{
	struct fixture *f = *state;
	struct km_recovery r = request("pod/default/old", KM_ACTION_RESTART_POD,
				       "after-upgrade");
	struct km_target t;
	struct km_error err = {0};

	make_v3_database(f->db);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM sqlite_master "
					  "WHERE name = 'recoveries'"),
			 0);
	assert_int_equal(open_store(f, NULL), 0);
	assert_int_equal(km_store_schema_version(f->s),
			 km_store_binary_schema_version());
	assert_int_equal(raw_count(f->db,
				   "SELECT count(*) FROM schema_migrations"),
			 km_store_binary_schema_version());
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM sqlite_master "
					  "WHERE type = 'index' AND tbl_name "
					  "= 'recoveries'"),
			 8);
	/* What was there is there, and recoveries work on it. */
	assert_int_equal(km_reader_get_target(f->r, "pod/default/old", &f->a,
					      &t, &err),
			 0);
	assert_string_equal(t.uid, "old-uid");
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM transitions"),
			 1);
	r.cause_seq = 1;
	create(f, &r);
	assert_int_equal(r.target_id, t.id);
	assert_string_equal(r.target_uid, "old-uid");
	assert_int_equal(update(f, r.id, KM_PHASE_REQUESTED, KM_PHASE_QUEUED, 0,
				&err),
			 0);
	/* And a second opening applies nothing more. */
	close_store(f);
	assert_int_equal(open_store(f, NULL), 0);
	assert_int_equal(raw_count(f->db,
				   "SELECT count(*) FROM schema_migrations"),
			 km_store_binary_schema_version());
	assert_int_equal(get(f, r.id).phase, KM_PHASE_QUEUED);
}

/* ---- storms ------------------------------------------------------------------ */

struct storm_answer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
	char why[sizeof(((struct km_error *)0)->msg)];
};

static void on_storm(void *arg, int rc, const struct km_error *err)
{
	struct storm_answer *a = arg;

	pthread_mutex_lock(&a->mu);
	a->rc = rc;
	snprintf(a->why, sizeof a->why, "%s", rc ? err->msg : "");
	a->done = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static int storm_wait(struct storm_answer *a)
{
	struct timespec until = km_realtime_after(WAIT_NS);

	pthread_mutex_lock(&a->mu);
	while (!a->done)
		if (pthread_cond_timedwait(&a->cv, &a->mu, &until))
			break;
	pthread_mutex_unlock(&a->mu);
	if (!a->done)
		fail_msg("no answer from the writer");
	return a->rc;
}

#define STORM_ANSWER                             \
	{                                        \
		.mu = PTHREAD_MUTEX_INITIALIZER, \
		.cv = PTHREAD_COND_INITIALIZER,  \
	}

static int64_t begin_storm(struct fixture *f, int group, const char *name,
			   const char *cluster, int64_t started_us)
{
	struct km_storm m = {.group = group,
			     .name = name,
			     .cluster = cluster,
			     .unhealthy = 7,
			     .total = 10,
			     .share_pct = 40,
			     .why = "storm: 7 of 10 (70% > 40%)",
			     .started_us = started_us};
	struct storm_answer a = STORM_ANSWER;

	assert_int_equal(km_store_begin_storm_async(f->s, &m, on_storm, &a), 0);
	assert_int_equal(storm_wait(&a), 0);
	assert_true(m.id > 0);
	return m.id;
}

static struct km_storm *list_storms(struct fixture *f,
				    const struct km_storm_query *q, size_t *n,
				    bool *more)
{
	struct km_storm *v;
	struct km_error err = {0};

	assert_int_equal(
		km_reader_list_storms(f->r, q, &f->a, &v, n, more, &err), 0);
	return v;
}

/* A storm is written as it starts and again as it ends; lists show the
 * ones on, a cluster's, the ones overlapping a time range, page by page;
 * a daemon starting ends what one that stopped left on. */
static void test_storms(void **state)
{
	struct fixture *f = *state;
	struct km_storm bad = {.group = 3, .name = "x"}, end;
	struct storm_answer a = STORM_ANSWER, b = STORM_ANSWER;
	struct km_storm_query q = {0};
	struct km_storm *v;
	struct km_error err = {0};
	int64_t p, z, old, flash;
	size_t n, ended;
	bool more;

	assert_int_equal(km_store_begin_storm_async(f->s, &bad, on_storm, &a),
			 KM_EINVAL);
	bad.group = KM_STORM_POLICY;
	bad.name = "";
	assert_int_equal(km_store_begin_storm_async(f->s, &bad, on_storm, &a),
			 KM_EINVAL);
	bad.name = "x";
	assert_int_equal(km_store_end_storm_async(f->s, &bad, NULL, NULL), 0);
	bad.group = 0;
	assert_int_equal(km_store_end_storm_async(f->s, &bad, NULL, NULL),
			 KM_EINVAL);

	old = begin_storm(f, KM_STORM_POLICY, "lost-nodes", "", 1000);
	p = begin_storm(f, KM_STORM_POLICY, "crashloop", "prod", 5000);
	z = begin_storm(f, KM_STORM_ZONE, "eu-1a", "prod", 6000);
	/* Ended by its group (at most one storm on in each). */
	end = (struct km_storm){.group = KM_STORM_POLICY,
				.name = "lost-nodes",
				.ended_us = 2000,
				.refused = 3};
	assert_int_equal(km_store_end_storm_async(f->s, &end, on_storm, &a), 0);
	assert_int_equal(storm_wait(&a), 0);
	/* Ended once: a second end finds none on. */
	end.refused = 9;
	end.end_note = "again";
	assert_int_equal(km_store_end_storm_async(f->s, &end, on_storm, &b), 0);
	assert_int_equal(storm_wait(&b), KM_ENOTFOUND);
	assert_string_equal(b.why, "no storm of policy \"lost-nodes\" is on");
	/* A begin without done may drop its struct at once: it was copied;
	 * its end queued right after it finds it (the writer keeps order). */
	{
		char name[16] = "flash";
		struct km_storm m = {.group = KM_STORM_ZONE,
				     .name = name,
				     .cluster = "dev",
				     .why = "w",
				     .started_us = 100};
		struct storm_answer c = STORM_ANSWER;

		assert_int_equal(
			km_store_begin_storm_async(f->s, &m, NULL, NULL), 0);
		memset(name, 'x', sizeof name - 1);
		m.name = "flash";
		m.ended_us = 200;
		assert_int_equal(
			km_store_end_storm_async(f->s, &m, on_storm, &c), 0);
		assert_int_equal(storm_wait(&c), 0);
		q.cluster = "dev";
		v = list_storms(f, &q, &n, &more);
		assert_int_equal(n, 1);
		assert_string_equal(v[0].name, "flash");
		assert_int_equal(v[0].ended_us, 200);
		q.cluster = NULL;
		flash = v[0].id;
	}

	v = list_storms(f, &q, &n, &more);
	assert_int_equal(n, 4);
	assert_false(more);
	assert_int_equal(v[0].id, flash); /* newest first */
	v++;
	assert_int_equal(v[0].id, z);
	assert_int_equal(v[0].group, KM_STORM_ZONE);
	assert_string_equal(v[0].name, "eu-1a");
	assert_string_equal(v[0].cluster, "prod");
	assert_int_equal(v[0].unhealthy, 7);
	assert_int_equal(v[0].total, 10);
	assert_int_equal(v[0].share_pct, 40);
	assert_string_equal(v[0].why, "storm: 7 of 10 (70% > 40%)");
	assert_int_equal(v[0].started_us, 6000);
	assert_int_equal(v[0].ended_us, 0);
	assert_int_equal(v[2].id, old);
	assert_int_equal(v[2].ended_us, 2000);
	assert_int_equal(v[2].refused, 3);

	q.on_only = true;
	v = list_storms(f, &q, &n, &more);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].id, z);
	assert_int_equal(v[1].id, p);
	q = (struct km_storm_query){.cluster = "prod", .limit = 1};
	v = list_storms(f, &q, &n, &more);
	assert_int_equal(n, 1);
	assert_true(more);
	assert_int_equal(v[0].id, z);
	q.before_id = v[0].id;
	v = list_storms(f, &q, &n, &more);
	assert_int_equal(n, 1);
	assert_false(more);
	assert_int_equal(v[0].id, p);
	/* Overlapping [2100, 5500): p only (on since 5000); z starts at
	 * 6000, after it, and old ended at 2000, before it. */
	q = (struct km_storm_query){.from_us = 2100, .to_us = 5500};
	v = list_storms(f, &q, &n, &more);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].id, p);
	q = (struct km_storm_query){.from_us = 1500, .to_us = 1600};
	v = list_storms(f, &q, &n, &more);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].id, old);

	/* A new daemon ends what the last one left on. */
	assert_int_equal(km_store_end_storms(f->s, "kubemedicd stopped", &ended,
					     &err),
			 0);
	assert_int_equal(ended, 2);
	q = (struct km_storm_query){.on_only = true};
	list_storms(f, &q, &n, &more);
	assert_int_equal(n, 0);
	q = (struct km_storm_query){0};
	v = list_storms(f, &q, &n, &more);
	assert_string_equal(v[1].end_note, "kubemedicd stopped");
	assert_true(v[1].ended_us > 6000);
	assert_string_equal(v[3].end_note, "");
	assert_int_equal(km_store_end_storms(f->s, "again", &ended, &err), 0);
	assert_int_equal(ended, 0);
}

/* ---- hostile input ------------------------------------------------------------ */

static char *big_string(size_t n, char c)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		s[i] = (char)(c + (char)(i % 26));
	s[n] = '\0';
	return s;
}

static void test_hostile_strings(void **state)
{
	struct fixture *f = *state;
	static const char *const evil_target =
		"pod/default/x'; DROP TABLE recoveries; --";
	static const char *const evil_requester =
		"bob\" OR 1=1 -- %s %n \\ '' ?1";
	char *reason = big_string(1 << 20, 'a');
	char *key = big_string(100000, 'A');
	char *message = big_string(300000, 'k');
	struct km_recovery r = request(evil_target, KM_ACTION_RESTART_POD, key);
	struct km_recovery again =
		request(evil_target, KM_ACTION_RESTART_POD, key);
	struct km_recovery_query q = {0};
	struct km_recovery_event *ev;
	struct km_recovery *v, g;
	struct km_error err = {0};
	bool existed = false, more;
	size_t n;

	make_target(f, evil_target, "'; --");
	r.reason = reason;
	r.requester = evil_requester;
	create(f, &r);
	{
		struct km_recovery_update u = {.id = r.id,
					       .phase = KM_PHASE_QUEUED,
					       .message = message};

		assert_int_equal(km_store_update_recovery(f->s, &u, &err), 0);
	}
	g = get(f, r.id);
	assert_int_equal(strlen(g.reason), 1 << 20);
	assert_string_equal(g.reason, reason);
	assert_string_equal(g.idempotency_key, key);
	assert_string_equal(g.requester, evil_requester);
	assert_string_equal(g.target, evil_target);
	assert_string_equal(g.target_uid, "'; --");
	assert_int_equal(strlen(g.last_error), 300000);
	assert_string_equal(g.last_error, message);

	/* The long key finds it again. */
	assert_int_equal(km_store_create_recovery(f->s, &again, &f->a, &existed,
						  &err),
			 0);
	assert_true(existed);
	assert_int_equal(again.id, r.id);

	q.requester = evil_requester;
	q.target = evil_target;
	n = list(f, &q, &v, &more);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].reason, reason);
	q.requester = "bob";
	assert_int_equal(list(f, &q, &v, &more), 0);
	assert_int_equal(km_reader_recovery_events_after(f->r, 0, evil_target,
							 0, &f->a, &ev, &n,
							 &more, &err),
			 0);
	assert_int_equal(n, 2);
	assert_string_equal(ev[1].r.last_error, message);
	assert_string_equal(ev[1].r.reason, reason);
	assert_int_equal(heard_count(), 2);
	assert_string_equal(heard.ev[1]->r.last_error, message);
	assert_string_equal(heard.ev[0]->r.reason, reason);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM recoveries"),
			 1);
	free(reason);
	free(key);
	free(message);
}

/* Retention of recoveries: a final one older than its retention goes,
 * with its events; one still open stays, however old; so does a recent
 * one. Storms likewise: an ended old one goes, one still on stays. */
static void test_retention(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {.recoveries_retention_us =
					     3600LL * 1000000,
				     .retention_interval_ms = 3600000};
	const int64_t old = km_now_us() - 7200LL * 1000000;
	struct km_recovery r1 = request("pod/default/a", KM_ACTION_RESTART_POD,
					"ret-1"),
			   r2 = request("pod/default/b", KM_ACTION_RESTART_POD,
					"ret-2"),
			   r3 = request("pod/default/c", KM_ACTION_RESTART_POD,
					"ret-3");
	struct storm_answer a = STORM_ANSWER;
	struct km_storm end = {.group = KM_STORM_ZONE, .name = "z-old"};
	struct km_error err = {0};
	int64_t id1, id2, id3;

	close_store(f);
	assert_int_equal(open_store(f, &o), 0);
	make_target(f, "pod/default/a", "ua");
	make_target(f, "pod/default/b", "ub");
	make_target(f, "pod/default/c", "uc");
	id1 = create(f, &r1);
	id2 = create(f, &r2);
	id3 = create(f, &r3);
	assert_int_equal(update(f, id1, 0, KM_PHASE_SKIPPED, old, &err), 0);
	assert_int_equal(update(f, id2, 0, KM_PHASE_QUEUED, old, &err), 0);
	assert_int_equal(update(f, id3, 0, KM_PHASE_SKIPPED, 0, &err), 0);
	begin_storm(f, KM_STORM_ZONE, "z-old", "", old - 1000000);
	end.ended_us = old;
	assert_int_equal(km_store_end_storm_async(f->s, &end, on_storm, &a), 0);
	assert_int_equal(storm_wait(&a), 0);
	begin_storm(f, KM_STORM_ZONE, "z-on", "", old);
	km_store_retention_sweep(f->s);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM recoveries"),
			 2);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM recoveries "
					  "WHERE id = 1"),
			 0);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM "
					  "recovery_events WHERE "
					  "recovery_id = 1"),
			 0);
	assert_true(raw_count(f->db, "SELECT count(*) FROM recovery_events "
				     "WHERE recovery_id = 2") >= 2);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM storms"), 1);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM storms WHERE "
					  "name = 'z-on'"),
			 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		cmocka_unit_test(test_names_and_final_phases),
		T(test_create_and_idempotent_repeat),
		T(test_create_refusals),
		T(test_lifecycle_and_time_columns),
		T(test_no_answer_clears_the_status),
		T(test_preconditions),
		T(test_async_update),
		cmocka_unit_test_setup_teardown(
			test_listener_hears_committed_events_only, setup_faulty,
			teardown),
		T(test_listener_order_across_batches),
		T(test_list_filters_and_paging),
		T(test_list_limit_is_bounded),
		T(test_replay_equals_what_the_listener_heard),
		T(test_open_recoveries),
		cmocka_unit_test_setup_teardown(
			test_version_3_database_upgrades, setup_dir, teardown),
		T(test_hostile_strings),
		T(test_storms),
		T(test_retention),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
