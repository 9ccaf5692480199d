/*
 * The health hub: observations through the ledger into transitions, current
 * health in memory, publication only after the writer's commit, several
 * subscribers with bounded queues and the overflow policy, the paused
 * switch from a replay to live, deletion as a transition, snapshots with
 * their sequence, loading at start, and commits that fail (a disk that
 * fails on demand, km_test_vfs.h). A real store on a temporary database
 * throughout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_health.h"
#include "km_store.h"
#include "km_test.h"
#include "km_test_vfs.h"
#include "km_time.h"

#define WAIT_NS (10LL * 1000000000) /* a failure guard, not a pacer */

/* ---- a subscriber that records what it is handed -------------------------- */

#define MAX_SEEN 256

struct seen {
	int64_t seq;
	int from, to;
	bool flapping;
	char target[64];
	char cause[160];
	int64_t target_seq;
};

struct rec {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct seen v[MAX_SEEN];
	int n;
	bool overflowed;
	int64_t overflow_seq;
	struct km_health_sub *sub;
};

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
}

static void rec_fini(struct rec *r)
{
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
}

static void rec_deliver(void *arg, const struct km_health_event *ev)
{
	struct rec *r = arg;

	pthread_mutex_lock(&r->mu);
	if (r->n < MAX_SEEN) {
		struct seen *s = &r->v[r->n++];

		s->seq = ev->t->seq;
		s->from = ev->t->from_state;
		s->to = ev->t->to_state;
		s->flapping = ev->t->flapping;
		snprintf(s->target, sizeof s->target, "%s", ev->t->target_name);
		snprintf(s->cause, sizeof s->cause, "%s", ev->t->cause);
		s->target_seq = ev->target->last_transition_seq;
	}
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void rec_overflow(void *arg, int64_t last_seq)
{
	struct rec *r = arg;

	pthread_mutex_lock(&r->mu);
	r->overflowed = true;
	r->overflow_seq = last_seq;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Waits until r has seen n events (or overflowed, if want_overflow). */
static bool rec_wait(struct rec *r, int n, bool want_overflow)
{
	struct timespec until = km_realtime_after(WAIT_NS);
	bool ok;

	pthread_mutex_lock(&r->mu);
	while (!(want_overflow ? r->overflowed : r->n >= n))
		if (pthread_cond_timedwait(&r->cv, &r->mu, &until))
			break;
	ok = want_overflow ? r->overflowed : r->n >= n;
	pthread_mutex_unlock(&r->mu);
	return ok;
}

static int rec_count(struct rec *r)
{
	int n;

	pthread_mutex_lock(&r->mu);
	n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static int64_t rec_subscribe(struct km_health *h, struct rec *r, bool paused,
			     size_t max_pending)
{
	struct km_health_sub_options o = {
		.max_pending = max_pending,
		.paused = paused,
		.deliver = rec_deliver,
		.overflow = rec_overflow,
		.arg = r,
	};
	int64_t start = -1;

	assert_int_equal(km_health_subscribe(h, &o, &r->sub, &start), 0);
	return start;
}

/* ---- fixture ------------------------------------------------------------------ */

struct fixture {
	char *dir, *db;
	struct km_store *s;
	struct km_health *h;
	struct km_reader *r;
	struct km_arena a;
};

static void open_all(struct fixture *f)
{
	struct km_store_options so = {.path = f->db};
	struct km_health_options ho = {0};
	struct km_error err = {0};

	if (km_store_open(&so, &f->s, &err))
		fail_msg("store: %s", err.msg);
	ho.store = f->s;
	if (km_health_open(&ho, &f->h, &err))
		fail_msg("hub: %s", err.msg);
	if (km_reader_open(f->s, &f->r, &err))
		fail_msg("reader: %s", err.msg);
}

static void close_all(struct fixture *f)
{
	struct km_error err = {0};

	km_reader_close(f->r);
	assert_int_equal(km_store_flush(f->s, &err), 0);
	km_health_close(f->h);
	km_store_close(f->s);
	f->r = NULL;
	f->h = NULL;
	f->s = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	f->dir = km_test_tmpdir();
	if (!f->dir || asprintf(&f->db, "%s/km.db", f->dir) < 0)
		return -1;
	km_arena_init(&f->a, 4096);
	open_all(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->s)
		close_all(f);
	km_arena_free(&f->a);
	km_test_rmrf(f->dir);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

/* A probe (and so its target) in the store, tracked by the hub. */
static int64_t probe(struct fixture *f, const char *name, int success_thr,
		     int failure_thr)
{
	static struct km_kv labels[] = {{"team", "shop"}};
	struct km_probe p = {
		.name = name,
		.labels = labels,
		.n_labels = 1,
		.type = KM_PROBE_TCP,
		.host = "127.0.0.1",
		.port = 9,
		.timeout_ms = 1000,
		.period_ms = 10000,
		.success_threshold = success_thr,
		.failure_threshold = failure_thr,
	};
	char tname[100];
	struct km_health_target t = {
		.name = tname,
		.labels = labels,
		.n_labels = 1,
		.success_threshold = success_thr,
		.failure_threshold = failure_thr,
	};
	struct km_error err = {0};

	if (km_store_create_probe(f->s, &p, &err))
		fail_msg("create %s: %s", name, err.msg);
	snprintf(tname, sizeof tname, "probe//%s", name);
	t.id = p.target_id;
	t.created_us = p.create_us;
	assert_int_equal(km_health_track(f->h, &t), 0);
	return p.target_id;
}

static int64_t clock_us = 1800000000000000;

static int observe(struct fixture *f, int64_t id, int verdict, const char *msg)
{
	struct km_observation o = {
		.target_id = id,
		.verdict = verdict,
		.started_us = clock_us,
		.duration_us = 1000,
		.error_class = verdict == KM_STATE_UNHEALTHY ? KM_EC_REFUSED
							     : 0,
		.message = msg,
	};

	clock_us += 1000000;
	return km_health_observe(f->h, &o);
}

#define OK(f, id) assert_int_equal(observe(f, id, KM_STATE_HEALTHY, NULL), 0)
#define FAIL(f, id, m) \
	assert_int_equal(observe(f, id, KM_STATE_UNHEALTHY, m), 0)

static int64_t count_rows(struct fixture *f, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY,
					 NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* ---- tests ------------------------------------------------------------------- */

/* The kubelet's thresholds, through the hub: a transition after exactly
 * failure_threshold failures, with its cause; current health in memory
 * agrees with the stored row and the announced event. */
static void test_observations_become_transitions(void **state)
{
	struct fixture *f = *state;
	struct km_health_view v;
	struct km_error err = {0};
	struct rec r;
	int64_t id;
	char sql[200];

	rec_init(&r);
	rec_subscribe(f->h, &r, false, 0);
	id = probe(f, "a", 2, 3);
	FAIL(f, id, "connect: refused\nsecond line");
	FAIL(f, id, "connect: refused");
	assert_int_equal(km_health_get(f->h, "probe//a", &f->a, &v, &err), 0);
	assert_int_equal(v.target.state, KM_STATE_UNKNOWN);
	assert_int_equal(v.consecutive, 2);
	assert_false(v.has_transition);
	FAIL(f, id, "connect: refused");
	assert_true(rec_wait(&r, 1, false));
	assert_int_equal(r.v[0].from, KM_STATE_UNKNOWN);
	assert_int_equal(r.v[0].to, KM_STATE_UNHEALTHY);
	assert_string_equal(r.v[0].target, "probe//a");
	assert_string_equal(r.v[0].cause,
			    "3 consecutive failures (connect: refused)");
	assert_int_equal(r.v[0].target_seq, r.v[0].seq);

	assert_int_equal(km_health_get(f->h, "probe//a", &f->a, &v, &err), 0);
	assert_int_equal(v.target.state, KM_STATE_UNHEALTHY);
	assert_int_equal(v.target.last_transition_seq, r.v[0].seq);
	assert_int_equal(v.consecutive, 3);
	assert_true(v.has_last);
	assert_false(v.last.success);
	assert_int_equal(v.last.error_class, KM_EC_REFUSED);
	assert_string_equal(v.last.message, "connect: refused");
	assert_true(v.has_transition);
	assert_int_equal(v.transition.seq, r.v[0].seq);
	assert_string_equal(v.target.labels[0].value, "shop");
	assert_int_equal(km_health_sequence(f->h), r.v[0].seq);
	/* Stored: the transition row, and the target's state. */
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM transitions WHERE seq = %lld AND "
		 "to_state = 3",
		 (long long)r.v[0].seq);
	assert_int_equal(count_rows(f, sql), 1);
	assert_int_equal(count_rows(f, "SELECT state FROM targets WHERE "
				       "name = 'probe//a'"),
			 KM_STATE_UNHEALTHY);

	/* Back up after exactly success_threshold successes. */
	OK(f, id);
	OK(f, id);
	assert_true(rec_wait(&r, 2, false));
	assert_int_equal(r.v[1].to, KM_STATE_HEALTHY);
	assert_string_equal(r.v[1].cause, "2 consecutive successes");
	assert_true(r.v[1].seq > r.v[0].seq);
	km_health_unsubscribe(r.sub);
	rec_fini(&r);
}

/* Nothing is published before the writer commits: with the database
 * locked by another connection the writer holds the transition, and
 * neither subscribers nor current health see it until the lock goes. */
static void test_published_only_after_commit(void **state)
{
	struct fixture *f = *state;
	struct km_health_view v;
	struct km_store_stats st;
	struct km_error err = {0};
	struct rec r;
	sqlite3 *blocker;
	int64_t id, seq0;
	int64_t until = km_mono_ns() + WAIT_NS;

	rec_init(&r);
	id = probe(f, "locked", 1, 1);
	seq0 = rec_subscribe(f->h, &r, false, 0);
	assert_int_equal(sqlite3_open(f->db, &blocker), SQLITE_OK);
	assert_int_equal(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL,
				      NULL),
			 SQLITE_OK);
	FAIL(f, id, "down");
	/* The writer has taken it off the queue and waits for the lock
	 * (its busy timeout is 5 s). */
	do {
		km_store_get_stats(f->s, &st);
		if (st.control_queue_depth == 0)
			break;
		sched_yield();
	} while (km_mono_ns() < until);
	assert_int_equal(st.control_queue_depth, 0);
	assert_int_equal(st.transitions_written, 0);
	assert_int_equal(rec_count(&r), 0);
	assert_int_equal(km_health_sequence(f->h), seq0);
	assert_int_equal(km_health_get(f->h, "probe//locked", &f->a, &v, &err),
			 0);
	assert_int_equal(v.target.state, KM_STATE_UNKNOWN);
	/* The newest result is current health already (ahead of the
	 * disk); the verdict is not. */
	assert_true(v.has_last);

	assert_int_equal(sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(blocker);
	assert_true(rec_wait(&r, 1, false));
	assert_int_equal(r.v[0].to, KM_STATE_UNHEALTHY);
	assert_int_equal(km_health_get(f->h, "probe//locked", &f->a, &v, &err),
			 0);
	assert_int_equal(v.target.state, KM_STATE_UNHEALTHY);
	km_health_unsubscribe(r.sub);
	rec_fini(&r);
}

/* DEGRADED is up under pressure; flapping is a flag with its own
 * transitions. */
static void test_degraded_and_flapping(void **state)
{
	struct fixture *f = *state;
	struct km_observation o = {.started_us = 1, .duration_us = 1};
	struct km_health_view v;
	struct km_error err = {0};
	struct rec r;
	int64_t id;
	bool flapped = false;

	rec_init(&r);
	rec_subscribe(f->h, &r, false, 0);
	id = probe(f, "node", 1, 1);
	o.target_id = id;
	o.verdict = KM_STATE_DEGRADED;
	o.reason = "node condition MemoryPressure=True";
	assert_int_equal(km_health_observe(f->h, &o), 0);
	assert_true(rec_wait(&r, 1, false));
	assert_int_equal(r.v[0].to, KM_STATE_DEGRADED);
	assert_string_equal(r.v[0].cause,
			    "1 consecutive success, degraded "
			    "(node condition MemoryPressure=True)");
	o.verdict = KM_STATE_HEALTHY;
	o.reason = NULL;
	assert_int_equal(km_health_observe(f->h, &o), 0);
	assert_true(rec_wait(&r, 2, false));
	assert_int_equal(r.v[1].from, KM_STATE_DEGRADED);
	assert_int_equal(r.v[1].to, KM_STATE_HEALTHY);
	assert_int_equal(km_health_get(f->h, "probe//node", &f->a, &v, &err),
			 0);
	assert_true(v.last.success); /* DEGRADED and HEALTHY are up */

	/* Up, down, up, ...: a flapping flag appears. */
	for (int i = 0; i < 12; i++)
		assert_int_equal(observe(f, id,
					 i % 2 ? KM_STATE_HEALTHY
					       : KM_STATE_UNHEALTHY,
					 "x"),
				 0);
	assert_true(rec_wait(&r, 14, false));
	for (int i = 0; i < r.n; i++)
		if (r.v[i].flapping && strstr(r.v[i].cause, "started flapping"))
			flapped = true;
	assert_true(flapped);
	assert_int_equal(km_health_get(f->h, "probe//node", &f->a, &v, &err),
			 0);
	assert_true(v.target.flapping);
	km_health_unsubscribe(r.sub);
	rec_fini(&r);
}

/* Several subscribers, each with its own queue: one live, one paused with
 * a small bound (cut off once, told where it stopped), one paused with
 * room (nothing before it is resumed, everything after, in order). */
static void test_subscribers_and_overflow(void **state)
{
	struct fixture *f = *state;
	struct rec live, small, roomy;
	int64_t id, start_small, start_roomy;

	rec_init(&live);
	rec_init(&small);
	rec_init(&roomy);
	id = probe(f, "flap", 1, 1);
	rec_subscribe(f->h, &live, false, 0);
	start_small = rec_subscribe(f->h, &small, true, 3);
	start_roomy = rec_subscribe(f->h, &roomy, true, 10);
	assert_int_equal(start_small, start_roomy);
	for (int i = 0; i < 5; i++) {
		FAIL(f, id, "down");
		OK(f, id);
	}
	assert_true(rec_wait(&live, 10, false));
	for (int i = 1; i < 10; i++)
		assert_true(live.v[i].seq > live.v[i - 1].seq);
	assert_true(rec_wait(&small, 0, true));
	assert_int_equal(small.overflow_seq, start_small);
	assert_int_equal(rec_count(&small), 0);
	/* The roomy one got nothing while paused, though all ten are
	 * published... */
	assert_int_equal(rec_count(&roomy), 0);
	assert_false(roomy.overflowed);
	km_health_resume(roomy.sub);
	assert_true(rec_wait(&roomy, 10, false));
	for (int i = 0; i < 10; i++)
		assert_int_equal(roomy.v[i].seq, live.v[i].seq);
	/* ...and the cut-off one gets nothing more. */
	FAIL(f, id, "down");
	assert_true(rec_wait(&roomy, 11, false));
	assert_int_equal(rec_count(&small), 0);

	km_health_unsubscribe(small.sub);
	km_health_unsubscribe(roomy.sub);
	km_health_unsubscribe(live.sub);
	{
		struct km_health_stats st;

		km_health_get_stats(f->h, &st);
		assert_int_equal(st.overflows, 1);
		assert_int_equal(st.subscribers, 0);
	}
	rec_fini(&live);
	rec_fini(&small);
	rec_fini(&roomy);
}

/* The switch from a replay to live, as WatchHealth makes it: subscribe
 * paused, replay stored transitions after since up to the start, resume.
 * With transitions arriving throughout, the union is exactly what the
 * database holds after since, each once, in order. */
static void test_replay_then_live_no_gap_no_repeat(void **state)
{
	struct fixture *f = *state;
	struct km_error err = {0};
	struct rec r;
	int64_t id, since, start, seqs[256];
	int n = 0;
	struct km_transition *v;
	size_t got;
	bool more;

	rec_init(&r);
	id = probe(f, "resume", 1, 1);
	for (int i = 0; i < 3; i++) {
		FAIL(f, id, "down");
		OK(f, id);
	}
	assert_int_equal(km_store_flush(f->s, &err), 0);
	since = km_health_sequence(f->h) - 3; /* the client saw up to here */
	FAIL(f, id, "down");                  /* before the subscription */
	assert_int_equal(km_store_flush(f->s, &err), 0);
	start = rec_subscribe(f->h, &r, true, 0);
	OK(f, id); /* during the replay */
	FAIL(f, id, "down");

	/* The replay: stored, after since, up to start. */
	assert_int_equal(km_reader_transitions_after(f->r, since, 100, &f->a,
						     &v, &got, &more, &err),
			 0);
	for (size_t i = 0; i < got && v[i].seq <= start; i++)
		seqs[n++] = v[i].seq;
	assert_int_equal(seqs[n - 1], start);
	km_health_resume(r.sub);
	OK(f, id); /* after */
	assert_true(rec_wait(&r, 3, false));
	for (int i = 0; i < r.n; i++)
		seqs[n++] = r.v[i].seq;

	/* Exactly the stored ones after since, once each, in order. */
	assert_int_equal(km_store_flush(f->s, &err), 0);
	assert_int_equal(km_reader_transitions_after(f->r, since, 100, &f->a,
						     &v, &got, &more, &err),
			 0);
	assert_int_equal((size_t)n, got);
	for (int i = 0; i < n; i++)
		assert_int_equal(seqs[i], v[i].seq);
	km_health_unsubscribe(r.sub);
	rec_fini(&r);
}

/* Deletion is a transition, committed with the deletion; the hub forgets
 * the target, drops its late observations, and a re-created probe starts
 * from a clean current state. */
static void test_deletion_is_a_transition(void **state)
{
	struct fixture *f = *state;
	struct km_health_hint stale = {0};
	struct km_health_view v;
	struct km_error err = {0};
	struct km_health_stats st;
	struct rec r;
	int64_t id, again;
	char sql[200];

	rec_init(&r);
	rec_subscribe(f->h, &r, false, 0);
	id = probe(f, "gone", 1, 1);
	{
		struct km_observation o = {.target_id = id,
					   .verdict = KM_STATE_HEALTHY,
					   .hint = &stale};

		assert_int_equal(km_health_observe(f->h, &o), 0);
	}
	assert_true(stale.entry != NULL);
	assert_true(rec_wait(&r, 1, false));
	assert_int_equal(km_store_delete_probe(f->s, "gone", false,
					       "probe deleted through the API",
					       &err),
			 0);
	/* Published before the deletion returned (handed to subscribers
	 * on the hub's thread, a moment later). */
	assert_int_equal(km_health_get(f->h, "probe//gone", &f->a, &v, &err),
			 KM_ENOTFOUND);
	assert_true(rec_wait(&r, 2, false));
	assert_int_equal(r.v[1].from, KM_STATE_HEALTHY);
	assert_int_equal(r.v[1].to, KM_STATE_DELETED);
	assert_string_equal(r.v[1].cause, "probe deleted through the API");
	assert_string_equal(r.v[1].target, "probe//gone");
	assert_int_equal(km_health_get(f->h, "probe//gone", &f->a, &v, &err),
			 KM_ENOTFOUND);
	assert_int_equal(observe(f, id, KM_STATE_UNHEALTHY, "late"),
			 KM_ENOTFOUND);
	km_health_get_stats(f->h, &st);
	assert_int_equal(st.unknown_dropped, 1);

	/* A transition that was on its way when the target went is not
	 * kept. */
	{
		struct km_transition t = {.target_id = id,
					  .from_state = KM_STATE_HEALTHY,
					  .to_state = KM_STATE_UNHEALTHY,
					  .cause = "late",
					  .target_name = "probe//gone"};

		assert_int_equal(km_store_add_transition(f->s, &t), 0);
		assert_int_equal(km_store_flush(f->s, &err), 0);
	}
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM transitions WHERE target_id = %lld",
		 (long long)id);
	assert_int_equal(count_rows(f, sql), 2);
	assert_int_equal(rec_count(&r), 2);

	/* Re-created: the same target, clean. */
	again = probe(f, "gone", 1, 1);
	assert_int_equal(again, id);
	assert_int_equal(km_health_get(f->h, "probe//gone", &f->a, &v, &err),
			 0);
	assert_int_equal(v.target.state, KM_STATE_UNKNOWN);
	assert_false(v.has_last);
	assert_int_equal(v.consecutive, 0);
	assert_false(v.has_transition);
	assert_int_equal(v.target.last_transition_seq, 0);

	/* A producer's hint taken before the deletion names freed memory:
	 * the hub notices (ASan would not forgive it) and finds the new
	 * entry. */
	{
		struct km_observation o = {.target_id = id,
					   .verdict = KM_STATE_HEALTHY,
					   .hint = &stale};

		assert_int_equal(km_health_observe(f->h, &o), 0);
		assert_int_equal(
			km_health_get(f->h, "probe//gone", &f->a, &v, &err), 0);
		assert_int_equal(v.consecutive, 1);
		assert_true(v.has_last);
		assert_int_equal(km_health_observe(f->h, &o), 0); /* fresh */
	}
	km_health_unsubscribe(r.sub);
	rec_fini(&r);
}

static bool match_team(const struct km_kv *labels, size_t n, void *arg)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(labels[i].key, "team"))
			return !strcmp(labels[i].value, arg);
	return false;
}

/* Listing from memory: id order, filters, pages, and the sequence the
 * snapshot reflects. */
static void test_list_snapshot(void **state)
{
	struct fixture *f = *state;
	struct km_health_filter flt = {0};
	struct km_target *v;
	struct rec r;
	size_t n;
	bool more;
	int64_t seq, ids[5];

	rec_init(&r);
	rec_subscribe(f->h, &r, false, 0);
	for (int i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof name, "l%d", i);
		ids[i] = probe(f, name, 1, 1);
	}
	FAIL(f, ids[1], "x");
	FAIL(f, ids[3], "x");
	assert_true(rec_wait(&r, 2, false));

	assert_int_equal(km_health_list(f->h, NULL, 0, 3, &f->a, &v, &n, &more,
					&seq),
			 0);
	assert_int_equal(n, 3);
	assert_true(more);
	assert_int_equal(seq, r.v[1].seq);
	assert_int_equal(v[0].id, ids[0]);
	assert_string_equal(v[2].name, "probe//l2");
	assert_string_equal(v[2].object_name, "l2");
	assert_int_equal(v[1].last_transition_seq, r.v[0].seq);
	assert_int_equal(km_health_list(f->h, NULL, v[2].id, 3, &f->a, &v, &n,
					&more, &seq),
			 0);
	assert_int_equal(n, 2);
	assert_false(more);

	flt.state = KM_STATE_UNHEALTHY;
	flt.match = match_team;
	flt.arg = "shop";
	assert_int_equal(km_health_list(f->h, &flt, 0, 10, &f->a, &v, &n, &more,
					&seq),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].id, ids[1]);
	assert_int_equal(v[1].id, ids[3]);
	flt.arg = "infra";
	assert_int_equal(km_health_list(f->h, &flt, 0, 10, &f->a, &v, &n, &more,
					&seq),
			 0);
	assert_int_equal(n, 0);
	flt = (struct km_health_filter){.kind = KM_KIND_POD};
	assert_int_equal(km_health_list(f->h, &flt, 0, 10, &f->a, &v, &n, &more,
					&seq),
			 0);
	assert_int_equal(n, 0);
	km_health_unsubscribe(r.sub);
	rec_fini(&r);
}

/* Kubernetes targets listed by their identity: namespace, node, owner,
 * uid (ListTargets' and WatchHealth's filters). */
static void test_list_by_identity(void **state)
{
	struct fixture *f = *state;
	struct km_target t[3] = {
		{.name = "pod/shop/a",
		 .uid = "u-a",
		 .node = "n1",
		 .owner = "deployment/shop/cart"},
		{.name = "pod/shop/b",
		 .uid = "u-b",
		 .node = "n2",
		 .owner = "deployment/shop/cart"},
		{.name = "pod/infra/c", .uid = "u-c", .node = "n1"},
	};
	struct km_health_filter flt = {0};
	struct km_error err = {0};
	struct km_target *v;
	size_t n;
	bool more;
	int64_t seq;

	assert_int_equal(km_store_ensure_targets(f->s, t, 3, &err), 0);
	for (int i = 0; i < 3; i++) {
		struct km_health_target ht = {.id = t[i].id,
					      .name = t[i].name,
					      .uid = t[i].uid,
					      .owner = t[i].owner,
					      .node = t[i].node};

		assert_int_equal(km_health_track(f->h, &ht), 0);
	}
#define LIST()                                                            \
	assert_int_equal(km_health_list(f->h, &flt, 0, 10, &f->a, &v, &n, \
					&more, &seq),                     \
			 0)
	flt.ns = "shop";
	LIST();
	assert_int_equal(n, 2);
	flt = (struct km_health_filter){.node = "n1"};
	LIST();
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "pod/shop/a");
	assert_string_equal(v[1].name, "pod/infra/c");
	flt = (struct km_health_filter){.owner = "deployment/shop/cart",
					.node = "n2"};
	LIST();
	assert_int_equal(n, 1);
	assert_string_equal(v[0].uid, "u-b");
	flt = (struct km_health_filter){.uid = "u-c"};
	LIST();
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "pod/infra/c");
	/* No owner is "": a filter for "" is none; a prefix is no match. */
	flt = (struct km_health_filter){.owner = "deployment/shop"};
	LIST();
	assert_int_equal(n, 0);
	flt = (struct km_health_filter){.ns = "sho"};
	LIST();
	assert_int_equal(n, 0);
#undef LIST
}

/* Current health survives a restart: loaded from the store at open. */
static void test_loaded_at_open(void **state)
{
	struct fixture *f = *state;
	struct km_health_view v;
	struct km_error err = {0};
	struct rec r;
	int64_t id, up, seq, last_seq;

	rec_init(&r);
	rec_subscribe(f->h, &r, false, 0);
	id = probe(f, "keep", 1, 2);
	up = probe(f, "up", 1, 1);
	OK(f, id);
	FAIL(f, id, "first");
	FAIL(f, id, "second");
	/* A success streak after a failure: counted from the indexes. */
	OK(f, up);
	FAIL(f, up, "blip");
	OK(f, up);
	OK(f, up);
	OK(f, up);
	assert_true(rec_wait(&r, 5, false));
	seq = r.v[1].seq;
	last_seq = r.v[4].seq;
	assert_string_equal(r.v[1].target, "probe//keep");
	km_health_unsubscribe(r.sub);
	rec_fini(&r);
	close_all(f);
	open_all(f);

	assert_int_equal(km_health_get(f->h, "probe//keep", &f->a, &v, &err),
			 0);
	assert_int_equal(v.target.state, KM_STATE_UNHEALTHY);
	assert_int_equal(v.target.last_transition_seq, seq);
	assert_true(v.has_last);
	assert_true(v.last.id > 0); /* stored: it has its row id */
	assert_string_equal(v.last.message, "second");
	assert_int_equal(v.consecutive, 2);
	assert_true(v.has_transition);
	assert_int_equal(v.transition.seq, seq);
	assert_string_equal(v.transition.cause, "2 consecutive failures "
						"(second)");
	assert_int_equal(km_health_sequence(f->h), last_seq);
	assert_int_equal(km_health_get(f->h, "probe//up", &f->a, &v, &err), 0);
	assert_true(v.last.success);
	assert_int_equal(v.consecutive, 3);
	assert_int_equal(v.target.state, KM_STATE_HEALTHY);
	/* Untracked since the restart: thresholds are 1 until a source
	 * tracks it again, and observations count on. */
	OK(f, id);
	assert_int_equal(km_health_get(f->h, "probe//keep", &f->a, &v, &err),
			 0);
	assert_int_equal(v.consecutive, 1);
}

/* ---- a disk that fails ----------------------------------------------------------- */

static pthread_mutex_t unwritable_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t unwritable_cv = PTHREAD_COND_INITIALIZER;
static int unwritable;

static void on_store_health(void *arg, bool writable,
			    const struct km_error *why)
{
	(void)arg;
	(void)why;
	pthread_mutex_lock(&unwritable_mu);
	unwritable += !writable;
	pthread_cond_broadcast(&unwritable_cv);
	pthread_mutex_unlock(&unwritable_mu);
}

static int teardown_faulty(void **state)
{
	km_test_vfs_fail(0); /* the store commits what it holds at close */
	return teardown(state);
}

/* The hub moves its ledger on when a transition is queued and publishes it
 * when it is committed. Commits that fail must not leave the two apart:
 * with the disk full, the ledger says UNHEALTHY then HEALTHY, nothing is
 * published; once the disk takes writes both transitions are, once each,
 * in order, and the hub's view (state, sequence, last transition) is the
 * database's and what the subscriber was told. */
static void test_failed_commits_published_once_after_retry(void **state)
{
	struct fixture *f = *state;
	struct km_store_options so = {.path = f->db,
				      .on_health = on_store_health};
	struct km_health_options ho = {0};
	struct timespec until = km_realtime_after(WAIT_NS);
	struct km_health_view v;
	struct km_store_stats st;
	struct km_error err = {0};
	struct rec r;
	int64_t id, seq0;
	char sql[200];

	close_all(f);
	km_test_vfs_install();
	if (km_store_open(&so, &f->s, &err))
		fail_msg("store: %s", err.msg);
	ho.store = f->s;
	if (km_health_open(&ho, &f->h, &err))
		fail_msg("hub: %s", err.msg);
	assert_int_equal(km_reader_open(f->s, &f->r, &err), 0);

	rec_init(&r);
	id = probe(f, "disk", 1, 1);
	seq0 = rec_subscribe(f->h, &r, false, 0);
	km_test_vfs_fail(SQLITE_FULL);
	FAIL(f, id, "down");
	OK(f, id);
	pthread_mutex_lock(&unwritable_mu);
	while (!unwritable)
		if (pthread_cond_timedwait(&unwritable_cv, &unwritable_mu,
					   &until))
			break;
	pthread_mutex_unlock(&unwritable_mu);
	assert_int_equal(unwritable, 1);

	/* Failed, retried, failed again: nothing published, both wait. */
	km_store_get_stats(f->s, &st);
	assert_true(st.commit_failures >= KM_STORE_FAILS_UNHEALTHY);
	assert_int_equal(st.control_queue_depth, 2);
	assert_int_equal(rec_count(&r), 0);
	assert_int_equal(km_health_sequence(f->h), seq0);
	assert_int_equal(km_health_get(f->h, "probe//disk", &f->a, &v, &err),
			 0);
	assert_int_equal(v.target.state, KM_STATE_UNKNOWN);
	assert_false(v.has_transition);

	km_test_vfs_fail(0);
	assert_int_equal(km_store_flush(f->s, &err), 0);
	assert_true(rec_wait(&r, 2, false));
	assert_int_equal(r.v[0].from, KM_STATE_UNKNOWN);
	assert_int_equal(r.v[0].to, KM_STATE_UNHEALTHY);
	assert_int_equal(r.v[1].from, KM_STATE_UNHEALTHY);
	assert_int_equal(r.v[1].to, KM_STATE_HEALTHY);
	assert_true(r.v[1].seq > r.v[0].seq && r.v[0].seq > seq0);
	assert_int_equal(r.v[1].target_seq, r.v[1].seq);
	assert_int_equal(km_health_sequence(f->h), r.v[1].seq);
	assert_int_equal(km_health_get(f->h, "probe//disk", &f->a, &v, &err),
			 0);
	assert_int_equal(v.target.state, KM_STATE_HEALTHY);
	assert_int_equal(v.target.last_transition_seq, r.v[1].seq);
	assert_true(v.has_transition);
	assert_int_equal(v.transition.seq, r.v[1].seq);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM transitions WHERE target_id = %lld",
		 (long long)id);
	assert_int_equal(count_rows(f, sql), 2);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM targets WHERE id = %lld AND state = %d "
		 "AND last_transition = %lld",
		 (long long)id, KM_STATE_HEALTHY, (long long)r.v[1].seq);
	assert_int_equal(count_rows(f, sql), 1);

	/* Once each: the next event is the next transition, no repeat. */
	FAIL(f, id, "down again");
	assert_true(rec_wait(&r, 3, false));
	assert_int_equal(km_store_flush(f->s, &err), 0);
	assert_int_equal(rec_count(&r), 3);
	assert_int_equal(r.v[2].from, KM_STATE_HEALTHY);
	assert_true(r.v[2].seq > r.v[1].seq);
	km_health_unsubscribe(r.sub);
	rec_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_observations_become_transitions, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_published_only_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_degraded_and_flapping,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscribers_and_overflow,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_replay_then_live_no_gap_no_repeat, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_deletion_is_a_transition,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_snapshot, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_list_by_identity, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_loaded_at_open, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_failed_commits_published_once_after_retry, setup,
			teardown_faulty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
