/*
 * Availability from stored history (km_reader_add_availability): a case
 * computed by hand, a window opening mid-incident, an incident still open
 * at the end (and a window reaching past now), a deleted target, a target
 * created inside the window and one re-created, UNKNOWN time left out,
 * the opening state when retention removed the transitions before the
 * window, steps that add up to the totals, random histories against a
 * second-by-second recount, recoveries counted per action (dry runs,
 * skipped and cancelled ones left out), and the recoveries query's index.
 * On a real SQLite file, written through the store's writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_store.h"
#include "km_test.h"

#define S 1000000LL           /* one second in µs */
#define T0 (1700000000LL * S) /* an arbitrary epoch for the histories */

enum { U = KM_STATE_UNKNOWN, H = KM_STATE_HEALTHY, X = KM_STATE_UNHEALTHY };
enum { D = KM_STATE_DEGRADED, GONE = KM_STATE_DELETED };

struct fixture {
	char *dir;
	char *db;
	struct km_store *s;
	struct km_reader *r;
	struct km_arena a;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct km_store_options o = {0};
	struct km_error err = {0};

	if (!f || !(f->dir = km_test_tmpdir()) ||
	    asprintf(&f->db, "%s/km.db", f->dir) < 0)
		return -1;
	km_arena_init(&f->a, 4096);
	o.path = f->db;
	if (km_store_open(&o, &f->s, &err) ||
	    km_reader_open(f->s, &f->r, &err)) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	km_reader_close(f->r);
	km_store_close(f->s);
	km_arena_free(&f->a);
	km_test_rmrf(f->dir);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

/* ---- building histories -------------------------------------------------- */

static int64_t make_target(struct fixture *f, const char *name,
			   int64_t created_us)
{
	struct km_target t = {.name = name, .created_us = created_us};
	struct km_error err = {0};

	if (km_store_ensure_target(f->s, &t, &err))
		fail_msg("ensure %s: %s", name, err.msg);
	return t.id;
}

static void add(struct fixture *f, int64_t id, int64_t at, int from, int to)
{
	struct km_transition t = {.target_id = id,
				  .at_us = at,
				  .from_state = from,
				  .to_state = to,
				  .cause = "test"};

	assert_int_equal(km_store_add_transition(f->s, &t), 0);
}

static void flush(struct fixture *f)
{
	struct km_error err = {0};

	if (km_store_flush(f->s, &err))
		fail_msg("flush: %s", err.msg);
}

/* The target as the API finds it (deleted ones too). */
static struct km_target find(struct fixture *f, const char *name)
{
	struct km_target t;
	struct km_error err = {0};

	if (km_reader_find_target(f->r, name, &f->a, &t, &err))
		fail_msg("find %s: %s", name, err.msg);
	return t;
}

/* One target's availability over [from, to) seen at now, no steps. */
static struct km_avail avail(struct fixture *f, const char *name, int64_t from,
			     int64_t to, int64_t now)
{
	struct km_target t = find(f, name);
	struct km_avail_query q = {.from_us = from, .to_us = to, .now_us = now};
	struct km_avail acc = {0};
	struct km_error err = {0};

	if (km_reader_add_availability(f->r, &t, &q, &acc, &err))
		fail_msg("availability of %s: %s", name, err.msg);
	assert_int_equal(acc.targets, 1);
	return acc;
}

static void assert_avail(const struct km_avail *a, int64_t observed_s,
			 int64_t up_s, int64_t incidents, int64_t open)
{
	assert_int_equal(a->observed_us, observed_s * S);
	assert_int_equal(a->up_us, up_s * S);
	assert_int_equal(a->incidents, incidents);
	assert_int_equal(a->open_incidents, open);
}

/* Created at T0; HEALTHY at +10 s, UNHEALTHY at +100 s, HEALTHY again at
 * +130 s. */
static void simple_history(struct fixture *f, const char *name)
{
	int64_t id = make_target(f, name, T0);

	add(f, id, T0 + 10 * S, U, H);
	add(f, id, T0 + 100 * S, H, X);
	add(f, id, T0 + 130 * S, X, H);
	flush(f);
}

/* ---- cases ------------------------------------------------------------ */

static void test_hand_computed(void **state)
{
	struct fixture *f = *state;
	struct km_avail a;

	simple_history(f, "probe//web");
	/* [T0, T0+200 s): UNKNOWN 10 s, then up 90, down 30, up 70. */
	a = avail(f, "probe//web", T0, T0 + 200 * S, T0 + 1000 * S);
	assert_avail(&a, 190, 160, 1, 0);
	/* The window before anything happened: nothing observed. */
	a = avail(f, "probe//web", T0, T0 + 10 * S, T0 + 1000 * S);
	assert_avail(&a, 0, 0, 0, 0);
	/* A window starting on a transition opens in the state it made. */
	a = avail(f, "probe//web", T0 + 100 * S, T0 + 130 * S, T0 + 1000 * S);
	assert_avail(&a, 30, 0, 1, 1);
	a = avail(f, "probe//web", T0 + 130 * S, T0 + 131 * S, T0 + 1000 * S);
	assert_avail(&a, 1, 1, 0, 0);
}

static void test_opens_mid_incident(void **state)
{
	struct fixture *f = *state;
	struct km_avail a;

	simple_history(f, "probe//web");
	/* From +110 s: down 20 s (the incident under way counts), up 70. */
	a = avail(f, "probe//web", T0 + 110 * S, T0 + 200 * S, T0 + 1000 * S);
	assert_avail(&a, 90, 70, 1, 0);
}

static void test_open_at_end(void **state)
{
	struct fixture *f = *state;
	struct km_avail a;

	simple_history(f, "probe//web");
	/* Ends at +120 s, mid-incident: open. */
	a = avail(f, "probe//web", T0, T0 + 120 * S, T0 + 1000 * S);
	assert_avail(&a, 110, 90, 1, 1);
	/* A window reaching past now stops at now (+120 s): the same. */
	a = avail(f, "probe//web", T0, T0 + 5000 * S, T0 + 120 * S);
	assert_avail(&a, 110, 90, 1, 1);
}

static void test_deleted_target(void **state)
{
	struct fixture *f = *state;
	int64_t id = make_target(f, "probe//gone", T0);
	struct km_avail a;
	struct km_target t;

	add(f, id, T0 + 10 * S, U, H);
	add(f, id, T0 + 100 * S, H, X);
	add(f, id, T0 + 150 * S, X, GONE);
	add(f, id, T0 + 160 * S, U, H); /* after the deletion: not kept */
	flush(f);
	t = find(f, "probe//gone");
	assert_int_equal(t.deleted_us, T0 + 150 * S);
	/* Up 90 s, down 50 s until the deletion; nothing open after it. */
	a = avail(f, "probe//gone", T0, T0 + 300 * S, T0 + 1000 * S);
	assert_avail(&a, 140, 90, 1, 0);
	/* A window ending before the deletion has it open. */
	a = avail(f, "probe//gone", T0, T0 + 120 * S, T0 + 1000 * S);
	assert_avail(&a, 110, 90, 1, 1);
	/* A window after it: nothing. */
	a = avail(f, "probe//gone", T0 + 150 * S, T0 + 300 * S, T0 + 1000 * S);
	assert_avail(&a, 0, 0, 0, 0);
}

static void test_created_inside_window(void **state)
{
	struct fixture *f = *state;
	int64_t id = make_target(f, "probe//new", T0 + 50 * S);
	struct km_avail a;

	add(f, id, T0 + 60 * S, U, X);
	add(f, id, T0 + 80 * S, X, H);
	flush(f);
	/* Before +50 s it did not exist; UNKNOWN to +60 s; down 20, up 20. */
	a = avail(f, "probe//new", T0, T0 + 100 * S, T0 + 1000 * S);
	assert_avail(&a, 40, 20, 1, 0);
}

static void test_recreated_target(void **state)
{
	struct fixture *f = *state;
	int64_t id = make_target(f, "probe//again", T0), id2;
	struct km_avail a;

	add(f, id, T0 + 10 * S, U, X);
	add(f, id, T0 + 40 * S, X, GONE);
	flush(f);
	/* Re-created at +100 s: the same row, a new life from UNKNOWN. */
	id2 = make_target(f, "probe//again", T0 + 100 * S);
	assert_int_equal(id2, id);
	add(f, id, T0 + 110 * S, U, H);
	flush(f);
	/* Only the present life counts: UNKNOWN 10 s, up 90 s. */
	a = avail(f, "probe//again", T0, T0 + 200 * S, T0 + 1000 * S);
	assert_avail(&a, 90, 90, 0, 0);
}

static void test_unknown_excluded(void **state)
{
	struct fixture *f = *state;
	int64_t id = make_target(f, "probe//blink", T0);
	struct km_avail a;

	add(f, id, T0, U, H);
	add(f, id, T0 + 30 * S, H, U); /* no verdict for 40 s */
	add(f, id, T0 + 70 * S, U, D); /* degraded is up */
	add(f, id, T0 + 80 * S, D, X); /* an incident */
	add(f, id, T0 + 90 * S, X, U); /* unknown mid-incident */
	add(f, id, T0 + 95 * S, U, X); /* unhealthy again: a second one */
	add(f, id, T0 + 99 * S, X, X); /* flapping changed: no entry */
	flush(f);
	a = avail(f, "probe//blink", T0, T0 + 100 * S, T0 + 1000 * S);
	/* Observed: 30 + 10 + 10 + 5 = 55 s; up 40; incidents 2, open. */
	assert_avail(&a, 55, 40, 2, 1);
}

/* Retention deleted the transitions before the window: the opening state
 * is the next transition's from_state, or, with none after, the target's
 * state now. */
static void test_opening_after_retention(void **state)
{
	struct fixture *f = *state;
	int64_t id = make_target(f, "probe//old", T0);
	int64_t id2 = make_target(f, "probe//still", T0);
	struct km_avail a;
	sqlite3 *db;

	add(f, id, T0 + 10 * S, U, X);
	add(f, id, T0 + 100 * S, X, H);
	add(f, id2, T0 + 10 * S, U, X);
	flush(f);
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "DELETE FROM transitions WHERE at < "
				      "1700000050000000",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	/* Down from +50 s (the window's start) to +100 s, then up. */
	a = avail(f, "probe//old", T0 + 50 * S, T0 + 200 * S, T0 + 1000 * S);
	assert_avail(&a, 150, 100, 1, 0);
	/* No transition left at all: UNHEALTHY, its state now. */
	a = avail(f, "probe//still", T0 + 50 * S, T0 + 200 * S, T0 + 1000 * S);
	assert_avail(&a, 150, 0, 1, 1);
}

static void test_steps(void **state)
{
	struct fixture *f = *state;
	struct km_target t;
	int64_t up[KM_AVAIL_MAX_STEPS], obs[KM_AVAIL_MAX_STEPS];
	int64_t sum_up = 0, sum_obs = 0;
	struct km_avail acc = {.step_up_us = up, .step_observed_us = obs};
	struct km_avail_query q = {.from_us = T0,
				   .to_us = T0 + 200 * S,
				   .now_us = T0 + 1000 * S,
				   .step_us = 7 * S,
				   .n_steps = 29}; /* the last one 4 s */
	struct km_error err = {0};

	memset(up, 0, sizeof up);
	memset(obs, 0, sizeof obs);
	simple_history(f, "probe//web");
	t = find(f, "probe//web");
	assert_int_equal(km_reader_add_availability(f->r, &t, &q, &acc, &err),
			 0);
	for (size_t i = 0; i < q.n_steps; i++) {
		sum_up += up[i];
		sum_obs += obs[i];
	}
	assert_int_equal(sum_up, acc.up_us);
	assert_int_equal(sum_obs, acc.observed_us);
	/* [7, 14): UNKNOWN to 10, then up 4; [98, 105): up 2, down 5;
	 * [126, 133): down 4, up 3; [196, 200): the short last one. */
	assert_int_equal(obs[1], 4 * S);
	assert_int_equal(up[1], 4 * S);
	assert_int_equal(obs[14], 7 * S);
	assert_int_equal(up[14], 2 * S);
	assert_int_equal(up[18], 3 * S);
	assert_int_equal(obs[28], 4 * S);
	assert_int_equal(up[28], 4 * S);
	assert_int_equal(obs[0], 0); /* [0, 7): UNKNOWN */

	/* Steps that do not cover the window exactly are refused. */
	q.n_steps = 28;
	assert_int_equal(km_reader_add_availability(f->r, &t, &q, &acc, &err),
			 KM_EINVAL);
	q.n_steps = 30;
	assert_int_equal(km_reader_add_availability(f->r, &t, &q, &acc, &err),
			 KM_EINVAL);
	q.n_steps = 0;
	q.to_us = q.from_us;
	assert_int_equal(km_reader_add_availability(f->r, &t, &q, &acc, &err),
			 KM_EINVAL);
}

/* ---- random histories against a recount, second by second ---------------- */

#define RAND_TARGETS 30
#define RAND_SPAN 4000 /* seconds of history */

struct rtrans {
	int64_t at_s;
	int to;
};

static int pick_state(unsigned *seed)
{
	static const int states[] = {U, H, H, X, X, D};

	return states[rand_r(seed) % 6];
}

/* The state at second s of a history (transitions in order, in whole
 * seconds since T0, none before the target's creation): the last one at
 * or before s, else UNKNOWN. */
static int state_at(const struct rtrans *tr, size_t n, int64_t s)
{
	int st = U;

	for (size_t i = 0; i < n && tr[i].at_s <= s; i++)
		st = tr[i].to;
	return st;
}

static void test_random_vs_recount(void **state)
{
	struct fixture *f = *state;
	unsigned seed = 12;
	static struct rtrans tr[RAND_TARGETS][200];
	size_t ntr[RAND_TARGETS];
	int64_t created[RAND_TARGETS];
	char names[RAND_TARGETS][32];

	for (int k = 0; k < RAND_TARGETS; k++) {
		int64_t at = 0, id;
		int cur = U;

		snprintf(names[k], sizeof names[k], "probe//r%d", k);
		created[k] = rand_r(&seed) % 500;
		id = make_target(f, names[k], T0 + created[k] * S);
		ntr[k] = (size_t)(rand_r(&seed) % 200);
		at = created[k];
		for (size_t i = 0; i < ntr[k]; i++) {
			int to = pick_state(&seed);

			/* Ties in time happen: seq orders them. */
			at += rand_r(&seed) % 40;
			add(f, id, T0 + at * S, cur, to);
			tr[k][i] = (struct rtrans){at, to};
			cur = to;
		}
	}
	flush(f);

	for (int round = 0; round < 200; round++) {
		int k = rand_r(&seed) % RAND_TARGETS;
		int64_t from = rand_r(&seed) % RAND_SPAN;
		int64_t to = from + 1 + rand_r(&seed) % (RAND_SPAN - from);
		int64_t now = rand_r(&seed) % (RAND_SPAN + 100);
		int64_t step = 1 + rand_r(&seed) % 300;
		size_t n_steps = (size_t)((to - from - 1) / step + 1);
		int64_t up[KM_AVAIL_MAX_STEPS] = {0},
			obs[KM_AVAIL_MAX_STEPS] = {0};
		int64_t w_up = 0, w_obs = 0, w_inc = 0, w_open = 0;
		struct km_avail acc = {.step_up_us = up,
				       .step_observed_us = obs};
		struct km_avail_query q = {.from_us = T0 + from * S,
					   .to_us = T0 + to * S,
					   .now_us = T0 + now * S};
		struct km_target t = find(f, names[k]);
		struct km_error err = {0};
		int64_t lo = from > created[k] ? from : created[k];
		int64_t hi = to < now ? to : now;
		int prev = 0;

		if (n_steps > KM_AVAIL_MAX_STEPS)
			continue;
		q.step_us = step * S;
		q.n_steps = n_steps;
		if (km_reader_add_availability(f->r, &t, &q, &acc, &err))
			fail_msg("round %d: %s", round, err.msg);

		/* The recount: second by second. */
		for (int64_t s = lo; s < hi; s++) {
			int st = state_at(tr[k], ntr[k], s);

			w_obs += st == H || st == D || st == X;
			w_up += st == H || st == D;
		}
		/* Incidents: UNHEALTHY at the opening, then each entry. */
		if (lo < hi) {
			prev = state_at(tr[k], ntr[k], lo);
			w_inc = prev == X;
			for (size_t i = 0; i < ntr[k]; i++) {
				if (tr[k][i].at_s <= lo || tr[k][i].at_s >= hi)
					continue;
				if (tr[k][i].to == X && prev != X)
					w_inc++;
				prev = tr[k][i].to;
			}
			w_open = prev == X;
		}
		assert_int_equal(acc.observed_us, w_obs * S);
		assert_int_equal(acc.up_us, w_up * S);
		assert_int_equal(acc.incidents, w_inc);
		assert_int_equal(acc.open_incidents, w_open);
		for (size_t i = 0; i < n_steps; i++) {
			int64_t s0 = from + (int64_t)i * step;
			int64_t s1 = s0 + step < to ? s0 + step : to;
			int64_t e_up = 0, e_obs = 0;

			for (int64_t s = s0 < lo ? lo : s0; s < s1 && s < hi;
			     s++) {
				int st = state_at(tr[k], ntr[k], s);

				e_obs += st == H || st == D || st == X;
				e_up += st == H || st == D;
			}
			assert_int_equal(obs[i], e_obs * S);
			assert_int_equal(up[i], e_up * S);
		}
	}
}

/* ---- recoveries --------------------------------------------------------- */

static void recovery(struct fixture *f, const char *target, int action,
		     int64_t created_us, bool dry_run, int first, int last)
{
	struct km_recovery r = {.target = target,
				.action = action,
				.reason = "test",
				.requester = "alice",
				.dry_run = dry_run,
				.phase = first,
				.created_us = created_us};
	struct km_error err = {0};

	if (km_store_create_recovery(f->s, &r, &f->a, NULL, &err))
		fail_msg("create recovery: %s", err.msg);
	if (last) {
		struct km_recovery_update u = {.id = r.id, .phase = last};

		if (km_store_update_recovery(f->s, &u, &err))
			fail_msg("update recovery: %s", err.msg);
	}
}

static void test_recoveries_per_action(void **state)
{
	struct fixture *f = *state;
	const char *pod = "pod/shop/web-0";
	int64_t in = T0 + 100 * S;
	struct km_avail a;

	make_target(f, pod, T0);
	make_target(f, "pod/shop/web-1", T0);
	/* Restarts: two verified, one not recovered, one failed, one still
	 * dispatched; a dry run, a skipped and a cancelled one (none acted);
	 * one before the window; one of another pod. */
	recovery(f, pod, KM_ACTION_RESTART_POD, in, false, 0,
		 KM_PHASE_VERIFIED);
	recovery(f, pod, KM_ACTION_RESTART_POD, in + S, false, 0,
		 KM_PHASE_VERIFIED);
	recovery(f, pod, KM_ACTION_RESTART_POD, in + 2 * S, false, 0,
		 KM_PHASE_NOT_RECOVERED);
	recovery(f, pod, KM_ACTION_RESTART_POD, in + 3 * S, false, 0,
		 KM_PHASE_FAILED);
	recovery(f, pod, KM_ACTION_RESTART_POD, in + 4 * S, false, 0,
		 KM_PHASE_DISPATCHED);
	recovery(f, pod, KM_ACTION_RESTART_POD, in + 5 * S, true,
		 KM_PHASE_DRY_RUN, 0);
	recovery(f, pod, KM_ACTION_RESTART_POD, in + 6 * S, false,
		 KM_PHASE_SKIPPED, 0);
	recovery(f, pod, KM_ACTION_RESTART_POD, in + 7 * S, false, 0,
		 KM_PHASE_CANCELLED);
	recovery(f, pod, KM_ACTION_RESTART_POD, T0 + 10 * S, false, 0,
		 KM_PHASE_VERIFIED);
	recovery(f, "pod/shop/web-1", KM_ACTION_RESTART_POD, in, false, 0,
		 KM_PHASE_VERIFIED);
	/* Rollout restarts: one verified. */
	recovery(f, pod, KM_ACTION_ROLLOUT_RESTART, in, false, 0,
		 KM_PHASE_VERIFIED);

	a = avail(f, pod, T0 + 50 * S, T0 + 200 * S, T0 + 1000 * S);
	assert_int_equal(a.actions[KM_ACTION_RESTART_POD].attempts, 5);
	assert_int_equal(a.actions[KM_ACTION_RESTART_POD].verified, 2);
	assert_int_equal(a.actions[KM_ACTION_RESTART_POD].pending, 1);
	assert_int_equal(a.actions[KM_ACTION_ROLLOUT_RESTART].attempts, 1);
	assert_int_equal(a.actions[KM_ACTION_ROLLOUT_RESTART].verified, 1);
	assert_int_equal(a.actions[KM_ACTION_CORDON].attempts, 0);
	/* The window from T0 takes the early one too. */
	a = avail(f, pod, T0, T0 + 200 * S, T0 + 1000 * S);
	assert_int_equal(a.actions[KM_ACTION_RESTART_POD].attempts, 6);
	assert_int_equal(a.actions[KM_ACTION_RESTART_POD].verified, 3);
}

/* The recoveries query seeks the index on target_name rather than scan the
 * table (the schema is frozen: this is the index there is). */
static void test_recoveries_use_index(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;
	sqlite3_stmt *st;
	char plan[1024] = "";

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_prepare_v2(
			db,
			"EXPLAIN QUERY PLAN SELECT action, count(*), "
			"sum(phase = 6), sum(phase IN (1, 2, 3, 4)) FROM "
			"recoveries WHERE target_name = ?1 AND created_at >= "
			"?2 AND created_at < ?3 AND dry_run = 0 AND phase NOT "
			"IN (8, 9, 10) GROUP BY action",
			-1, &st, NULL),
		SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		strncat(plan, (const char *)sqlite3_column_text(st, 3),
			sizeof plan - strlen(plan) - 2);
		strcat(plan, ";");
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (!strstr(plan, "USING INDEX recoveries_target"))
		fail_msg("plan: %s", plan);
}

/* The results counted: from the rollups, the window's ends rounded out
 * to minutes, its whole hours from hour rows — against a count of what
 * was added. A result every 7 s over 3 hours, every 5th failing. */
static void test_results_from_rollups(void **state)
{
	struct fixture *f = *state;
	const int64_t HR = 3600 * S, base = 20000 * 24 * HR; /* a midnight */
	int64_t id = make_target(f, "probe//counted", base - HR);
	const int64_t windows[][2] = {
		{base + 10 * S, base + 3 * HR}, /* ends inside */
		{base + 30 * 60 * S + 30 * S, base + 2 * HR + 90 * S},
		{base + 5 * 60 * S, base + 40 * 60 * S}, /* within an hour */
		{base - HR, base + 4 * HR},              /* all of it */
	};

	for (int64_t t = base; t < base + 3 * HR; t += 7 * S) {
		struct km_result r = {.target_id = id,
				      .started_us = t,
				      .duration_us = 900,
				      .success = (t / (7 * S)) % 5 != 0};

		assert_int_equal(km_store_add_result(f->s, &r), 0);
	}
	flush(f);
	for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
		int64_t from = windows[w][0], to = windows[w][1];
		int64_t m0 = from / (60 * S) * 60 * S;
		int64_t m1 = (to + 60 * S - 1) / (60 * S) * 60 * S;
		int64_t want = 0, fails = 0;
		struct km_avail a =
			avail(f, "probe//counted", from, to, base + 5 * HR);

		for (int64_t t = base; t < base + 3 * HR; t += 7 * S)
			if (t >= m0 && t < m1) {
				want++;
				fails += (t / (7 * S)) % 5 == 0;
			}
		assert_int_equal(a.results, want);
		assert_int_equal(a.failed_results, fails);
	}
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_hand_computed),
		T(test_opens_mid_incident),
		T(test_open_at_end),
		T(test_deleted_target),
		T(test_created_inside_window),
		T(test_recreated_target),
		T(test_unknown_excluded),
		T(test_opening_after_retention),
		T(test_steps),
		T(test_random_vs_recount),
		T(test_recoveries_per_action),
		T(test_recoveries_use_index),
		T(test_results_from_rollups),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
