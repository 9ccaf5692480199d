/*
 * Availability: how long a target was up and down in a window, how often
 * it went down, and what the recovery actions on it achieved — from its
 * stored transitions and recoveries (km_reader_add_availability in
 * km_store.h says what each number means).
 *
 * A target's state is a step function of time: the transitions are its
 * steps. One pass over the transitions inside the window, in (at, seq)
 * order, turns them into spans of one state each, and each span is added
 * to the totals and spread over the steps it covers; spans come in time
 * order, so the steps are walked once: O(transitions + steps). The index
 * transitions_target_time (target_id, at, seq, to_state) (migration 0006)
 * serves every transition query in that order without sorting, and the
 * window's from the index alone.
 *
 * Everything adds into the caller's struct km_avail, so a selection of
 * targets is the same call once per target.
 */
#include <string.h>

#include "store_internal.h"

/* The reader's lazily prepared statements of this file. */
enum {
	L_OPENING = KM_LAZY_AVAILABILITY,
	L_FIRST_AFTER,
	L_WINDOW,
	L_EFFECTS,
	L_COUNT
};
_Static_assert(L_COUNT <= KM_LAZY_AVAILABILITY + 8, "lazy statement slots");

static const char *const lazy_sql[] = {
	/* The state the window opens in: the last transition at or before
	 * its start, in the target's present life (?2 = created_at). */
	[L_OPENING - KM_LAZY_AVAILABILITY] =
		"SELECT to_state FROM transitions WHERE target_id = ?1 AND "
		"at >= ?2 AND at <= ?3 ORDER BY at DESC, seq DESC LIMIT 1",
	/* When retention removed that one: the state the next one left. */
	[L_FIRST_AFTER - KM_LAZY_AVAILABILITY] =
		"SELECT from_state FROM transitions WHERE target_id = ?1 AND "
		"at > ?2 ORDER BY at, seq LIMIT 1",
	[L_WINDOW - KM_LAZY_AVAILABILITY] =
		"SELECT at, to_state FROM transitions WHERE target_id = ?1 AND "
		"at > ?2 AND at < ?3 ORDER BY at, seq",
	/* One grouped query by the index recoveries_target (target_name,
	 * id); the other conditions are checked on its rows. Phases: 6
	 * verified; 1-4 not final; 8 cancelled, 9 skipped, 10 dry run never
	 * acted. */
	[L_EFFECTS - KM_LAZY_AVAILABILITY] =
		"SELECT action, count(*), sum(phase = 6), "
		"sum(phase IN (1, 2, 3, 4)) FROM recoveries WHERE "
		"target_name = ?1 AND created_at >= ?2 AND created_at < ?3 AND "
		"dry_run = 0 AND phase NOT IN (8, 9, 10) GROUP BY action",
};

static int lazy(struct km_reader *r, unsigned slot, sqlite3_stmt **st,
		struct km_error *err)
{
	return km_reader_lazy_stmt(
		r, slot, lazy_sql[slot - KM_LAZY_AVAILABILITY], st, err);
}

static bool up_state(int s)
{
	return s == KM_STATE_HEALTHY || s == KM_STATE_DEGRADED;
}

static bool observed_state(int s)
{
	return up_state(s) || s == KM_STATE_UNHEALTHY;
}

/* Adds the span [a, b) in state s to the totals and to the steps it
 * covers. */
static void add_span(const struct km_avail_query *q, struct km_avail *acc,
		     int64_t a, int64_t b, int s)
{
	bool up = up_state(s);
	size_t i;

	if (a >= b || !observed_state(s))
		return;
	acc->observed_us += b - a;
	if (up)
		acc->up_us += b - a;
	if (!q->n_steps)
		return;
	/* a >= from_us: the span lies within the window. */
	i = (size_t)((a - q->from_us) / q->step_us);
	while (a < b && i < q->n_steps) {
		int64_t edge = q->from_us + (int64_t)(i + 1) * q->step_us;
		int64_t e = b < edge ? b : edge;

		acc->step_observed_us[i] += e - a;
		if (up)
			acc->step_up_us[i] += e - a;
		a = e;
		i++;
	}
}

/* The state the window opens in at `start` (see km_store.h). */
static int opening_state(struct km_reader *r, const struct km_target *t,
			 int64_t start, int *state, struct km_error *err)
{
	sqlite3_stmt *st;
	bool found;
	int rc;

	rc = lazy(r, L_OPENING, &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int64(st, 2, t->created_us);
	sqlite3_bind_int64(st, 3, start);
	rc = sqlite3_step(st);
	found = rc == SQLITE_ROW;
	if (found)
		*state = sqlite3_column_int(st, 0);
	rc = km_reader_done(r, st, rc, err, "availability: opening state");
	if (rc || found)
		return rc;

	rc = lazy(r, L_FIRST_AFTER, &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int64(st, 2, start);
	rc = sqlite3_step(st);
	*state = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : t->state;
	return km_reader_done(r, st, rc, err, "availability: opening state");
}

static int add_effects(struct km_reader *r, const struct km_target *t,
		       int64_t from, int64_t to, struct km_avail *acc,
		       struct km_error *err)
{
	sqlite3_stmt *st;
	int rc;

	rc = lazy(r, L_EFFECTS, &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int action = sqlite3_column_int(st, 0);
		struct km_avail_action *x;

		if (action < 1 || action > KM_ACTION_MAX)
			continue; /* a newer binary's action: not ours */
		x = &acc->actions[action];
		x->attempts += sqlite3_column_int64(st, 1);
		x->verified += sqlite3_column_int64(st, 2);
		x->pending += sqlite3_column_int64(st, 3);
	}
	return km_reader_done(r, st, rc, err, "availability: recoveries");
}

static int check_query(const struct km_avail_query *q,
		       const struct km_avail *acc, struct km_error *err)
{
	if (q->from_us >= q->to_us)
		return km_error_set(err, KM_EINVAL,
				    "availability: an empty window");
	if (!q->n_steps)
		return 0;
	if (q->n_steps > KM_AVAIL_MAX_STEPS || q->step_us <= 0 ||
	    !acc->step_up_us || !acc->step_observed_us)
		return km_error_set(err, KM_EINVAL,
				    "availability: %zu steps of %lld us",
				    q->n_steps, (long long)q->step_us);
	/* Exactly enough steps to cover the window, no more. */
	if ((q->to_us - q->from_us - 1) / q->step_us + 1 != (int64_t)q->n_steps)
		return km_error_set(err, KM_EINVAL,
				    "availability: %zu steps of %lld us do not "
				    "cover the window of %lld us",
				    q->n_steps, (long long)q->step_us,
				    (long long)(q->to_us - q->from_us));
	return 0;
}

/* Adds the results counted in [from, to) (whole minutes) to acc, in one
 * step of km_reader_rollups. */
static int add_span_results(struct km_reader *r, int64_t target_id,
			    int64_t from, int64_t to, struct km_avail *acc,
			    struct km_error *err)
{
	struct km_rollup_query q = {.target_id = target_id,
				    .from_us = from,
				    .to_us = to,
				    .step_us = to - from};
	struct km_rollup_series s;
	struct km_arena a;
	int rc;

	if (from >= to)
		return 0;
	km_arena_init(&a, 512);
	rc = km_reader_rollups(r, &q, &a, &s, err);
	for (size_t i = 0; !rc && i < s.n; i++) {
		acc->results += s.steps[i].count;
		acc->failed_results += s.steps[i].failures;
	}
	km_arena_free(&a);
	return rc;
}

/* The results of [from, to), rounded out to minutes: the whole hours
 * inside from hour rows, the minutes at either end from minute rows. */
static int add_results(struct km_reader *r, int64_t target_id, int64_t from,
		       int64_t to, struct km_avail *acc, struct km_error *err)
{
	int64_t m0 = km_floor_div(from, KM_MINUTE_US) * KM_MINUTE_US;
	int64_t m1 = -km_floor_div(-to, KM_MINUTE_US) * KM_MINUTE_US; /* up */
	int64_t h0 = -km_floor_div(-m0, KM_HOUR_US) * KM_HOUR_US;
	int64_t h1 = km_floor_div(m1, KM_HOUR_US) * KM_HOUR_US;
	int rc;

	if (h0 >= h1)
		return add_span_results(r, target_id, m0, m1, acc, err);
	if ((rc = add_span_results(r, target_id, m0, h0, acc, err)) ||
	    (rc = add_span_results(r, target_id, h0, h1, acc, err)))
		return rc;
	return add_span_results(r, target_id, h1, m1, acc, err);
}

int km_reader_add_availability(struct km_reader *r, const struct km_target *t,
			       const struct km_avail_query *q,
			       struct km_avail *acc, struct km_error *err)
{
	int64_t from = q->from_us, to = q->to_us, cur;
	sqlite3_stmt *st;
	int rc, state;

	rc = check_query(q, acc, err);
	if (rc)
		return rc;
	acc->targets++;
	/* The window within the target's life and before now. */
	if (from < t->created_us)
		from = t->created_us;
	if (to > q->now_us)
		to = q->now_us;
	if (t->deleted_us > 0 && to > t->deleted_us)
		to = t->deleted_us;
	if (from >= to)
		return 0;

	rc = opening_state(r, t, from, &state, err);
	if (rc)
		return rc;
	if (state == KM_STATE_UNHEALTHY)
		acc->incidents++; /* under way when the window opens */

	rc = lazy(r, L_WINDOW, &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	cur = from;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t at = sqlite3_column_int64(st, 0);
		int next = sqlite3_column_int(st, 1);

		if (at < cur) /* ORDER BY at: only a bug gets here */
			at = cur;
		add_span(q, acc, cur, at, state);
		if (next == KM_STATE_UNHEALTHY && state != KM_STATE_UNHEALTHY)
			acc->incidents++;
		state = next;
		cur = at;
	}
	rc = km_reader_done(r, st, rc, err, "availability: transitions");
	if (rc)
		return rc;
	add_span(q, acc, cur, to, state);
	/* Open at the end, unless the target's deletion ended the window
	 * (its DELETED transition, at deleted_us, is not read). */
	if (state == KM_STATE_UNHEALTHY &&
	    !(t->deleted_us > 0 && to == t->deleted_us))
		acc->open_incidents++;

	rc = add_results(r, t->id, from, to, acc, err);
	if (rc)
		return rc;
	return add_effects(r, t, from, to, acc, err);
}
