/*
 * The probe engine's loop thread: schedules, runs checks, and hands every
 * result to the health hub.
 *
 * Reading guide. A `spec` is one immutable copy of a probe definition,
 * reference counted because a run keeps using the definition it started
 * with while an update installs a new one. A `probe_rt` is a probe's life
 * on the loop: its current spec, its next-run timer, the run in flight (at
 * most one). Other threads never touch either: they post commands (upsert,
 * remove) that run on the loop. Every result goes to the health hub as an
 * observation; verdicts and transitions are the hub's.
 */
#include "km_prober.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "km_arena.h"
#include "km_check.h"
#include "km_hash.h"
#include "km_health.h"
#include "km_log.h"
#include "km_loop.h"
#include "km_offload.h"
#include "km_probe.h"
#include "km_time.h"

#define NS_PER_MS 1000000LL
/* How long past its deadline a check may take to report before the prober
 * gives up on it (a bug in a check type, never expected). */
#define GUARD_NS (2000 * NS_PER_MS)

struct spec {
	struct km_arena arena;
	struct km_probe p;
	const char *target_name; /* "probe//<name>" */
	int refs;
};

struct probe_rt {
	struct km_prober *pr;
	struct spec *spec;
	struct km_timer timer; /* the next slot */
	int64_t due;           /* when the next slot is due */
	bool running;
	struct spec *run_spec; /* what the running check uses */
	int64_t run_due;
	struct km_check check;
	struct km_timer guard;
	int64_t started_us;
	struct km_health_hint hint; /* where the hub keeps the target */
	struct probe_rt *next;      /* hash chain */
};

#define LAG_BUCKETS (64 * 8)

struct km_prober {
	struct km_prober_options o;
	struct km_loop *loop;
	pthread_t thread;
	bool thread_started;
	/* Each check type's checker, by probe type (check_types). */
	void *checkers[KM_PROBE_TYPE_MAX + 1];
	/* What the checkers share: blocking calls' threads, counters. */
	struct km_offload *offload;
	struct km_check_counters counters;
	/* The API's probe policy, copied (o.policy points here). */
	struct km_arena policy_arena;
	struct km_probe_policy policy;

	/* The watchdog: the loop's heartbeat (CLOCK_MONOTONIC ns), stamped
	 * every beat_ns by a timer of the loop, and the thread that reads
	 * it. */
	struct km_timer beat_timer;
	int64_t beat_ns;
	_Atomic int64_t beat;
	atomic_bool stalled;
	pthread_t wd_thread;
	bool wd_started;
	pthread_mutex_t wd_mu;
	pthread_cond_t wd_cv;
	bool wd_stop; /* under wd_mu */

	/* Loop thread only. */
	struct probe_rt **buckets;
	size_t n_buckets, n_probes;

	pthread_mutex_t stats_mu;
	struct km_prober_stats stats;
	uint64_t lag_hist[LAG_BUCKETS];
	uint64_t lag_count;
	/* The histogram as the last report of an interval left it. */
	uint64_t lag_mark[LAG_BUCKETS];
	uint64_t lag_mark_count;
	int64_t lag_max_interval_us;
};

/* ---- check types --------------------------------------------------------- */

/* Every check type, by the probe type it runs: the one place a type is
 * registered (km_check.h). */
static const struct km_check_type *const check_types[KM_PROBE_TYPE_MAX + 1] = {
	[KM_PROBE_HTTP] = &km_check_http, [KM_PROBE_TCP] = &km_check_tcp,
	[KM_PROBE_GRPC] = &km_check_grpc, [KM_PROBE_EXEC] = &km_check_exec,
	[KM_PROBE_FILE] = &km_check_file,
};

/* The type of a probe type number; NULL if none. */
static const struct km_check_type *check_type(int type)
{
	return type > 0 && type <= KM_PROBE_TYPE_MAX ? check_types[type] : NULL;
}

/* ---- small things -------------------------------------------------------- */

/* Plain FNV-1a of the name: offsets must stay where they were across
 * versions (tests/unit/test_hash.c pins the values). */
static uint64_t name_hash(const char *s)
{
	return km_hash_str(KM_HASH_INIT, s);
}

int64_t km_prober_offset_ms(const char *target_name, int64_t period_ms)
{
	return period_ms > 0
		       ? (int64_t)(name_hash(target_name) % (uint64_t)period_ms)
		       : 0;
}

/* Log-linear histogram: 8 sub-buckets per power of two, so a percentile
 * is within 12.5% of the truth. */
static size_t lag_bucket(uint64_t us)
{
	int msb;

	if (us < 8)
		return (size_t)us;
	msb = 63 - __builtin_clzll(us);
	return (size_t)((msb - 2) * 8 + (int)((us >> (msb - 3)) & 7));
}

static int64_t lag_bucket_top(size_t b)
{
	int msb;

	if (b < 8)
		return (int64_t)b;
	msb = (int)(b / 8) + 2;
	return (int64_t)((8 + (b % 8) + 1) << (msb - 3)) - 1;
}

static void record_lag(struct km_prober *pr, int64_t lag_ns)
{
	uint64_t us = lag_ns > 0 ? (uint64_t)lag_ns / 1000 : 0;
	size_t b = lag_bucket(us);

	if (b >= LAG_BUCKETS)
		b = LAG_BUCKETS - 1;
	pr->lag_hist[b]++;
	pr->lag_count++;
	if ((int64_t)us > pr->stats.lag_max_us)
		pr->stats.lag_max_us = (int64_t)us;
	if ((int64_t)us > pr->lag_max_interval_us)
		pr->lag_max_interval_us = (int64_t)us;
}

/* The q-quantile of the lags recorded since the histogram was at mark
 * (all of them if mark is NULL). */
static int64_t lag_percentile(const struct km_prober *pr, double q,
			      const uint64_t *mark, uint64_t mark_count)
{
	uint64_t count = pr->lag_count - mark_count;
	uint64_t want = (uint64_t)(q * (double)count), seen = 0;

	if (!count)
		return 0;
	for (size_t b = 0; b < LAG_BUCKETS; b++) {
		seen += pr->lag_hist[b] - (mark ? mark[b] : 0);
		if (seen > want)
			return lag_bucket_top(b);
	}
	return lag_bucket_top(LAG_BUCKETS - 1);
}

static void spec_unref(struct spec *s)
{
	assert(!s || s->refs > 0);
	if (s && --s->refs == 0) {
		km_arena_free(&s->arena);
		free(s);
	}
}

/* One more in a counter of pr->stats. */
static void count(struct km_prober *pr, uint64_t *counter)
{
	pthread_mutex_lock(&pr->stats_mu);
	(*counter)++;
	pthread_mutex_unlock(&pr->stats_mu);
}

/* ---- the registry -------------------------------------------------------- */

static struct probe_rt **slot_of(struct km_prober *pr, const char *name)
{
	struct probe_rt **pp =
		&pr->buckets[km_hash_bucket(name_hash(name), pr->n_buckets)];

	while (*pp && strcmp((*pp)->spec->p.name, name))
		pp = &(*pp)->next;
	return pp;
}

static int grow(struct km_prober *pr)
{
	size_t n = pr->n_buckets * 2;
	struct probe_rt **b = calloc(n, sizeof *b);

	if (!b)
		return KM_ENOMEM;
	for (size_t i = 0; i < pr->n_buckets; i++) {
		struct probe_rt *rt = pr->buckets[i], *next;

		for (; rt; rt = next) {
			size_t k =
				km_hash_bucket(name_hash(rt->spec->p.name), n);
			next = rt->next;
			rt->next = b[k];
			b[k] = rt;
		}
	}
	free(pr->buckets);
	pr->buckets = b;
	pr->n_buckets = n;
	return 0;
}

/* ---- results ------------------------------------------------------------ */

static void check_done(struct km_check *c, const struct km_check_result *r)
{
	struct probe_rt *rt = c->owner;
	struct km_prober *pr = rt->pr;
	struct spec *s = rt->run_spec;
	struct km_observation o = {
		.target_id = s->p.target_id,
		.verdict = r->success ? KM_STATE_HEALTHY : KM_STATE_UNHEALTHY,
		.started_us = rt->started_us,
		.duration_us = (km_mono_ns() - c->started) / 1000,
		.error_class = r->success ? KM_EC_NONE : r->error_class,
		.status_code = r->status_code,
		.message = r->message[0] ? r->message : NULL,
		.hint = &rt->hint,
	};
	char why[64];
	int rc;

	/* An exec probe's message is its program's output, which only
	 * admins may read: the cause of a transition, which every viewer
	 * sees, says how it ended instead. */
	if (s->p.type == KM_PROBE_EXEC && !r->success) {
		if (r->error_class == KM_EC_EXIT_CODE)
			snprintf(why, sizeof why, "exit code %d",
				 r->status_code);
		else if (r->error_class == KM_EC_SIGNAL)
			snprintf(why, sizeof why, "killed by signal %d",
				 r->status_code);
		else if (r->error_class == KM_EC_TIMEOUT)
			snprintf(why, sizeof why, "no exit within %lld ms",
				 (long long)s->p.timeout_ms);
		else
			snprintf(why, sizeof why, "could not run");
		o.reason = why;
	}

	km_loop_timer_cancel(pr->loop, &rt->guard);
	rt->running = false;
	/* KM_ENOTFOUND: the probe's target was deleted while the check ran
	 * (its removal is on its way to this loop); the hub drops it. */
	rc = km_health_observe(pr->o.health, &o);
	if (rc && rc != KM_ENOTFOUND)
		km_log(KM_LOG_WARN, "result not recorded", "target",
		       s->target_name, "err", km_strerror(rc), NULL);
	pthread_mutex_lock(&pr->stats_mu);
	if (r->success)
		pr->stats.results_ok++;
	else
		pr->stats.results_failed++;
	pr->stats.in_flight--;
	pthread_mutex_unlock(&pr->stats_mu);
	rt->run_spec = NULL;
	spec_unref(s);
}

/* ---- running checks ------------------------------------------------------ */

static void cancel_check(struct probe_rt *rt)
{
	struct km_prober *pr = rt->pr;
	int type;
	const struct km_check_type *t;

	if (!rt->running)
		return;
	assert(rt->run_spec && rt->run_spec->refs > 0);
	type = rt->run_spec->p.type;
	t = check_type(type);
	km_loop_timer_cancel(pr->loop, &rt->guard);
	/* A run in flight was started by its type, which then has a cancel
	 * (only types that report before start returns have none). */
	assert(t && t->cancel);
	if (t && t->cancel)
		t->cancel(pr->checkers[type], &rt->check);
	rt->running = false;
	spec_unref(rt->run_spec);
	rt->run_spec = NULL;
	pthread_mutex_lock(&pr->stats_mu);
	pr->stats.in_flight--;
	pthread_mutex_unlock(&pr->stats_mu);
}

static void guard_fired(struct km_loop *l, void *arg)
{
	struct probe_rt *rt = arg;
	struct km_check_result r;

	(void)l;
	km_log(KM_LOG_ERROR,
	       "a check did not report by its deadline; "
	       "abandoning it",
	       "target", rt->run_spec->target_name, NULL);
	count(rt->pr, &rt->pr->stats.check_errors);
	km_check_fail(&r, KM_EC_INTERNAL, 0,
		      "kubemedic lost track of this check (a bug: please "
		      "report it)");
	/* Report first (it needs run_spec), then abandon the run. */
	{
		struct spec *s = rt->run_spec;

		assert(s->refs > 0);
		s->refs++;
		check_done(&rt->check, &r);
		rt->running = true;
		rt->run_spec = s;
		pthread_mutex_lock(&rt->pr->stats_mu);
		rt->pr->stats.in_flight++;
		pthread_mutex_unlock(&rt->pr->stats_mu);
		cancel_check(rt);
	}
}

static void start_check(struct probe_rt *rt)
{
	struct km_prober *pr = rt->pr;
	struct km_check *c = &rt->check;
	const struct km_check_type *t;
	int type, rc;

	assert(!rt->running && !rt->run_spec && rt->spec->refs > 0);
	/* Its result will be recorded in the hub's entry for the target:
	 * fetched from memory meanwhile, not when the result arrives. */
	km_health_prefetch(&rt->hint);
	rt->running = true;
	rt->run_spec = rt->spec;
	rt->spec->refs++;
	*c = (struct km_check){
		.loop = pr->loop,
		.probe = &rt->run_spec->p,
		/* The config's probes are trusted; any other came through the
		 * API and is held to its policy. */
		.policy = rt->run_spec->p.source == KM_SOURCE_CONFIG
				  ? NULL
				  : &pr->policy,
		.started = km_mono_ns(),
		.done = check_done,
		.owner = rt,
	};
	c->deadline = c->started + rt->run_spec->p.timeout_ms * NS_PER_MS;
	rt->started_us = km_now_us();
	pthread_mutex_lock(&pr->stats_mu);
	pr->stats.runs++;
	pr->stats.in_flight++;
	record_lag(pr, c->started - rt->run_due);
	pthread_mutex_unlock(&pr->stats_mu);

	/* The guard is what ends a run its type never reports: without it
	 * the probe could hang for good, so no guard, no run. */
	rc = km_loop_timer_set(pr->loop, &rt->guard, c->deadline + GUARD_NS);
	if (rc) {
		struct km_check_result r;

		km_log(KM_LOG_ERROR,
		       "check not started: no timer for its "
		       "deadline",
		       "target", rt->run_spec->target_name, "error",
		       km_strerror(rc), NULL);
		count(pr, &pr->stats.check_errors);
		km_check_fail(&r, KM_EC_INTERNAL, 0,
			      "kubemedic could not start the check: %s (no "
			      "timer for its deadline)",
			      km_strerror(rc));
		check_done(c, &r);
		return;
	}

	type = rt->run_spec->p.type;
	t = check_type(type);
	rc = t ? t->start(pr->checkers[type], c) : KM_EINTERNAL;
	if (rc) {
		struct km_check_result r;

		count(pr, &pr->stats.check_errors);
		km_check_fail(&r, KM_EC_INTERNAL, 0,
			      "kubemedic could not start the check: %s",
			      km_strerror(rc));
		check_done(c, &r);
	}
}

/* A probe whose next run has no timer would stop without a word: it is
 * logged and counted, and runs again when an update schedules it anew
 * (do_upsert). Only a heap that cannot grow gets here. */
static void arm_slot(struct probe_rt *rt)
{
	struct km_prober *pr = rt->pr;
	int rc = km_loop_timer_set(pr->loop, &rt->timer, rt->due);

	if (!rc)
		return;
	km_log(KM_LOG_ERROR,
	       "probe not scheduled: no timer for its next "
	       "run; it runs again when it is next updated",
	       "probe", rt->spec->p.name, "error", km_strerror(rc), NULL);
	count(pr, &pr->stats.schedule_errors);
}

static void slot_due(struct km_loop *l, void *arg)
{
	struct probe_rt *rt = arg;
	struct km_prober *pr = rt->pr;
	int64_t now = km_mono_ns(), period = rt->spec->p.period_ms * NS_PER_MS;
	int64_t this_due = rt->due;

	(void)l;
	/* Fixed rate: the next slot is one period after this one's due time,
	 * not after now, so runs do not drift. Slots already past are
	 * skipped rather than run in a burst. The next slot is armed before
	 * this one's check starts, which may report at once: whatever the
	 * result leads to finds the probe already scheduled. */
	rt->due += period;
	if (rt->due <= now) {
		int64_t missed = (now - rt->due) / period + 1;

		rt->due += missed * period;
		pthread_mutex_lock(&pr->stats_mu);
		pr->stats.skipped_late += (uint64_t)missed;
		pthread_mutex_unlock(&pr->stats_mu);
	}
	arm_slot(rt);

	if (rt->running) {
		pthread_mutex_lock(&pr->stats_mu);
		pr->stats.skipped_overlap++;
		pthread_mutex_unlock(&pr->stats_mu);
	} else {
		rt->run_due = this_due;
		start_check(rt);
	}
}

/* ---- commands from other threads ----------------------------------------- */

struct upsert_cmd {
	struct km_prober *pr;
	struct spec *spec;
};

static void schedule_first(struct probe_rt *rt)
{
	const struct km_probe *p = &rt->spec->p;

	rt->due = km_mono_ns() + p->initial_delay_ms * NS_PER_MS +
		  km_prober_offset_ms(rt->spec->target_name, p->period_ms) *
			  NS_PER_MS;
	arm_slot(rt);
}

static void do_upsert(struct km_loop *l, void *arg)
{
	struct upsert_cmd *cmd = arg;
	struct km_prober *pr = cmd->pr;
	struct probe_rt **pp = slot_of(pr, cmd->spec->p.name), *rt = *pp;

	(void)l;
	if (rt) {
		/* A probe left unscheduled (arm_slot) is scheduled anew. */
		bool retime = rt->spec->p.period_ms != cmd->spec->p.period_ms ||
			      rt->spec->p.initial_delay_ms !=
				      cmd->spec->p.initial_delay_ms ||
			      !km_timer_armed(&rt->timer);

		spec_unref(rt->spec);
		rt->spec = cmd->spec;
		if (retime)
			schedule_first(rt);
		free(cmd);
		return;
	}
	rt = calloc(1, sizeof *rt);
	if (!rt) {
		km_log(KM_LOG_ERROR, "probe not scheduled: out of memory",
		       "probe", cmd->spec->p.name, NULL);
		spec_unref(cmd->spec);
		free(cmd);
		return;
	}
	rt->pr = pr;
	rt->spec = cmd->spec;
	km_timer_init(&rt->timer, slot_due, rt);
	km_timer_init(&rt->guard, guard_fired, rt);
	/* A table that cannot grow keeps working, with longer chains. */
	if (pr->n_probes >= pr->n_buckets && grow(pr) == 0)
		pp = slot_of(pr, cmd->spec->p.name);
	*pp = rt;
	pr->n_probes++;
	schedule_first(rt);
	pthread_mutex_lock(&pr->stats_mu);
	pr->stats.probes = pr->n_probes;
	pthread_mutex_unlock(&pr->stats_mu);
	free(cmd);
}

int km_prober_upsert(struct km_prober *pr, const struct km_probe *p)
{
	struct upsert_cmd *cmd = calloc(1, sizeof *cmd);
	struct spec *s = calloc(1, sizeof *s);

	if (!cmd || !s)
		goto oom;
	km_arena_init(&s->arena, 512);
	s->refs = 1;
	if (km_probe_copy(&s->arena, p, &s->p) ||
	    !(s->target_name =
		      km_arena_printf(&s->arena, "probe//%s", p->name)))
		goto oom;
	cmd->pr = pr;
	cmd->spec = s;
	if (km_loop_post(pr->loop, do_upsert, cmd))
		goto oom;
	return 0;
oom:
	if (s)
		km_arena_free(&s->arena);
	free(s);
	free(cmd);
	return KM_ENOMEM;
}

static void free_rt(struct km_prober *pr, struct probe_rt *rt)
{
	cancel_check(rt);
	km_loop_timer_cancel(pr->loop, &rt->timer);
	spec_unref(rt->spec);
	free(rt);
}

struct remove_cmd {
	struct km_prober *pr;
	char name[];
};

static void do_remove(struct km_loop *l, void *arg)
{
	struct remove_cmd *cmd = arg;
	struct km_prober *pr = cmd->pr;
	struct probe_rt **pp = slot_of(pr, cmd->name), *rt = *pp;

	(void)l;
	if (rt) {
		*pp = rt->next;
		pr->n_probes--;
		free_rt(pr, rt);
		pthread_mutex_lock(&pr->stats_mu);
		pr->stats.probes = pr->n_probes;
		pthread_mutex_unlock(&pr->stats_mu);
	}
	free(cmd);
}

int km_prober_remove(struct km_prober *pr, const char *name)
{
	size_t n = strlen(name) + 1;
	struct remove_cmd *cmd = malloc(sizeof *cmd + n);

	if (!cmd)
		return KM_ENOMEM;
	cmd->pr = pr;
	memcpy(cmd->name, name, n);
	if (km_loop_post(pr->loop, do_remove, cmd)) {
		free(cmd);
		return KM_ENOMEM;
	}
	return 0;
}

struct run_cmd {
	void (*fn)(void *arg);
	void *arg;
};

static void do_run(struct km_loop *l, void *arg)
{
	struct run_cmd *cmd = arg;

	(void)l;
	cmd->fn(cmd->arg);
	free(cmd);
}

int km_prober_run_on_loop(struct km_prober *pr, void (*fn)(void *arg),
			  void *arg)
{
	struct run_cmd *cmd = malloc(sizeof *cmd);

	if (!cmd)
		return KM_ENOMEM;
	cmd->fn = fn;
	cmd->arg = arg;
	if (km_loop_post(pr->loop, do_run, cmd)) {
		free(cmd);
		return KM_ENOMEM;
	}
	return 0;
}

/* ---- the watchdog -------------------------------------------------------- */

/* The loop's heartbeat: a timer of the loop stamps the time. */
static void beat(struct km_loop *l, void *arg)
{
	struct km_prober *pr = arg;
	int64_t now = km_mono_ns();

	atomic_store(&pr->beat, now);
	if (km_loop_timer_set(l, &pr->beat_timer, now + pr->beat_ns))
		km_log(KM_LOG_ERROR,
		       "prober watchdog: no timer for the heartbeat; the loop "
		       "will be reported stalled",
		       NULL);
}

/* km-watchdog: compares the heartbeat with the clock every beat. */
static void *watchdog_main(void *arg)
{
	struct km_prober *pr = arg;
	int64_t period = pr->o.watchdog_ms * NS_PER_MS, since = 0;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setname_np(pthread_self(), "km-watchdog");
	pthread_mutex_lock(&pr->wd_mu);
	while (!pr->wd_stop) {
		struct timespec until = km_realtime_after(pr->beat_ns);
		int64_t last, now;

		pthread_cond_timedwait(&pr->wd_cv, &pr->wd_mu, &until);
		if (pr->wd_stop)
			break;
		last = atomic_load(&pr->beat);
		now = km_mono_ns();
		if (!atomic_load(&pr->stalled) && now - last > period) {
			since = last;
			atomic_store(&pr->stalled, true);
			km_log(KM_LOG_ERROR,
			       "prober loop stalled: it has not turned for "
			       "longer than prober.watchdog; health NOT_SERVING",
			       "stalled_ms", KM_I((now - last) / NS_PER_MS),
			       "watchdog_ms", KM_I(pr->o.watchdog_ms), NULL);
			if (pr->o.on_watchdog)
				pr->o.on_watchdog(pr->o.watchdog_arg, false);
		} else if (atomic_load(&pr->stalled) && now - last <= period) {
			atomic_store(&pr->stalled, false);
			km_log(KM_LOG_INFO,
			       "prober loop turns again; health SERVING",
			       "stalled_ms", KM_I((last - since) / NS_PER_MS),
			       NULL);
			if (pr->o.on_watchdog)
				pr->o.on_watchdog(pr->o.watchdog_arg, true);
		}
	}
	pthread_mutex_unlock(&pr->wd_mu);
	return NULL;
}

bool km_prober_loop_stalled(struct km_prober *pr)
{
	return atomic_load(&pr->stalled);
}

/* The heartbeat's timer, armed before the loop runs, and the thread. */
static int watchdog_start(struct km_prober *pr, struct km_error *err)
{
	int e;

	if (pr->o.watchdog_ms <= 0)
		return 0;
	/* A quarter of the period, at most a second: a stall is seen at
	 * most that much late. */
	pr->beat_ns = pr->o.watchdog_ms * NS_PER_MS / 4;
	if (pr->beat_ns > 1000 * NS_PER_MS)
		pr->beat_ns = 1000 * NS_PER_MS;
	atomic_store(&pr->beat, km_mono_ns());
	km_timer_init(&pr->beat_timer, beat, pr);
	if (km_loop_timer_set(pr->loop, &pr->beat_timer,
			      km_mono_ns() + pr->beat_ns))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	e = pthread_create(&pr->wd_thread, NULL, watchdog_main, pr);
	if (e)
		return km_error_set(err, KM_EIO,
				    "cannot start the watchdog thread: %s",
				    strerror(e));
	pr->wd_started = true;
	return 0;
}

static void watchdog_stop(struct km_prober *pr)
{
	if (!pr->wd_started)
		return;
	pthread_mutex_lock(&pr->wd_mu);
	pr->wd_stop = true;
	pthread_cond_signal(&pr->wd_cv);
	pthread_mutex_unlock(&pr->wd_mu);
	pthread_join(pr->wd_thread, NULL);
	pr->wd_started = false;
}

/* ---- the process ---------------------------------------------------------- */

/* Set by km_prober_init_process: probers reap what exec runs leave. */
static atomic_bool subreaper;

int km_prober_init_process(struct km_error *err)
{
	sigset_t chld;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		return km_error_set(err, KM_EIO,
				    "cannot become a child subreaper: %s",
				    strerror(errno));
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, NULL);
	atomic_store(&subreaper, true);
	return 0;
}

/* ---- life cycle ---------------------------------------------------------- */

static void *prober_main(void *arg)
{
	struct km_prober *pr = arg;

	pthread_setname_np(pthread_self(), "km-prober");
	if (km_loop_run(pr->loop))
		km_log(KM_LOG_ERROR, "prober loop failed", NULL);
	return NULL;
}

void km_prober_get_stats(struct km_prober *pr, struct km_prober_stats *out,
			 struct km_prober_interval *iv)
{
	struct km_offload_stats os;

	km_offload_get_stats(pr->offload, &os);
	pthread_mutex_lock(&pr->stats_mu);
	*out = pr->stats;
	out->offload_jobs = os.jobs;
	out->offload_abandoned = os.abandoned;
	out->offload_stuck = os.stuck;
	out->exec_refused = atomic_load(&pr->counters.exec_refused);
	out->lag_p50_us = lag_percentile(pr, 0.50, NULL, 0);
	out->lag_p99_us = lag_percentile(pr, 0.99, NULL, 0);
	if (iv) {
		iv->runs = pr->lag_count - pr->lag_mark_count;
		iv->lag_p50_us = lag_percentile(pr, 0.50, pr->lag_mark,
						pr->lag_mark_count);
		iv->lag_p99_us = lag_percentile(pr, 0.99, pr->lag_mark,
						pr->lag_mark_count);
		iv->lag_max_us = pr->lag_max_interval_us;
		memcpy(pr->lag_mark, pr->lag_hist, sizeof pr->lag_mark);
		pr->lag_mark_count = pr->lag_count;
		pr->lag_max_interval_us = 0;
	}
	pthread_mutex_unlock(&pr->stats_mu);
}

int km_prober_start(const struct km_prober_options *o, struct km_prober **out,
		    struct km_error *err)
{
	struct km_prober *pr = calloc(1, sizeof *pr);
	struct km_check_env env = {0};
	int rc;

	*out = NULL;
	if (!pr)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	pr->o = *o;
	pthread_mutex_init(&pr->stats_mu, NULL);
	pthread_mutex_init(&pr->wd_mu, NULL);
	pthread_cond_init(&pr->wd_cv, NULL);
	km_arena_init(&pr->policy_arena, 1024);
	if (o->policy) {
		if (km_probe_policy_copy(&pr->policy_arena, o->policy,
					 &pr->policy)) {
			rc = km_error_set(err, KM_ENOMEM, "out of memory");
			goto fail;
		}
	} else {
		km_probe_policy_defaults(&pr->policy);
	}
	pr->o.policy = &pr->policy;
	pr->n_buckets = 1024;
	pr->buckets = calloc(pr->n_buckets, sizeof *pr->buckets);
	if (!pr->buckets) {
		rc = km_error_set(err, KM_ENOMEM, "out of memory");
		goto fail;
	}
	rc = km_loop_create(&pr->loop, err);
	if (rc)
		goto fail;
	rc = km_offload_create(pr->loop, &pr->offload, err);
	if (rc)
		goto fail;
	env.loop = pr->loop;
	env.offload = pr->offload;
	env.counters = &pr->counters;
	env.max_exec_children = o->max_exec_children > 0 ? o->max_exec_children
							 : 64;
	env.reap_orphans = atomic_load(&subreaper);
	for (int i = 0; i <= KM_PROBE_TYPE_MAX; i++) {
		const struct km_check_type *t = check_types[i];

		/* Every probe type has a row; number 0 is none. */
		assert(!t == !i);
		if (!t || !t->create)
			continue;
		rc = t->create(&env, &pr->checkers[i], err);
		if (rc)
			goto fail;
	}
	rc = watchdog_start(pr, err);
	if (rc)
		goto fail;
	rc = pthread_create(&pr->thread, NULL, prober_main, pr);
	if (rc) {
		rc = km_error_set(err, KM_EIO,
				  "cannot start the prober "
				  "thread: %s",
				  strerror(rc));
		goto fail;
	}
	pr->thread_started = true;
	*out = pr;
	return 0;
fail:
	km_prober_stop(pr);
	return rc;
}

void km_prober_stop(struct km_prober *pr)
{
	if (!pr)
		return;
	/* No report of a stall from here on: the loop stops. */
	watchdog_stop(pr);
	if (pr->thread_started) {
		km_loop_stop(pr->loop);
		pthread_join(pr->thread, NULL);
		/* Upserts and removes posted after the loop stopped would leak
		 * their copies: let them land, then free everything below. */
		km_loop_run_pending(pr->loop);
	}
	if (pr->loop)
		km_loop_timer_cancel(pr->loop, &pr->beat_timer);
	/* The loop no longer runs: whatever is left is ours to free. */
	for (size_t i = 0; pr->buckets && i < pr->n_buckets; i++) {
		struct probe_rt *rt = pr->buckets[i], *next;

		for (; rt; rt = next) {
			next = rt->next;
			free_rt(pr, rt);
		}
	}
	for (int i = KM_PROBE_TYPE_MAX; i > 0; i--)
		if (check_types[i]->destroy)
			check_types[i]->destroy(pr->checkers[i]);
	/* Jobs still in the pool belong to no run any more. */
	km_offload_destroy(pr->offload);
	km_loop_destroy(pr->loop);
	free(pr->buckets);
	km_arena_free(&pr->policy_arena);
	pthread_cond_destroy(&pr->wd_cv);
	pthread_mutex_destroy(&pr->wd_mu);
	pthread_mutex_destroy(&pr->stats_mu);
	free(pr);
}
