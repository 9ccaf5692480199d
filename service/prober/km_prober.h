/*
 * km_prober — the probe engine: every probe, on one event loop thread.
 *
 * What it owns: a thread running a km_loop; per probe a copy of its
 * definition and its schedule; the checker of every check type that has
 * one (km_check.h: the curl multi handles, the gRPC completion queue and
 * its thread, the running children).
 *
 * Scheduling: the first run of a probe comes after its initial delay plus
 * a deterministic offset within its period (a hash of its target name), so
 * 10,000 probes with one period never fire together; then one run per
 * period at fixed times (no drift). A probe never overlaps itself: a run
 * still going when the next is due makes that slot skipped (counted). The
 * lag between a run's due time and its start is measured.
 *
 * Failures are never silent: a check kubemedic itself cannot run (no
 * timer for its deadline, a type that cannot start it) is a result with
 * KM_EC_INTERNAL and counted in check_errors; a probe whose next run
 * cannot be scheduled is logged and counted in schedule_errors.
 *
 * The prober is one producer of the health hub (km_health.h): every
 * result is an observation of the probe's target. The hub keeps the
 * verdict (the kubelet's thresholds, flapping), stores the result and
 * makes the transitions; the prober only runs checks on time. A probe's
 * target must be tracked by the hub before the probe is upserted here.
 *
 * A watchdog (optional) watches the loop itself: a heartbeat timer on the
 * loop stamps the time every quarter of the watchdog's period (at most
 * every second), and a thread of the prober's (km-watchdog) reports when
 * the stamp is older than the period, and again when the loop turns
 * (km_prober_options.on_watchdog). Nothing on the loop may block, so a
 * stall is a bug (or a machine starved of CPU): it is made visible rather
 * than left to freeze every probe in silence.
 *
 * Threads: km_prober_upsert / remove / get_stats / run_on_loop from any
 * thread (the change is handed to the loop and takes effect at once);
 * start and stop from one thread.
 */
#ifndef KM_PROBER_H
#define KM_PROBER_H

#include <stdbool.h>
#include <stdint.h>

#include "km_error.h"
#include "km_model.h"

struct km_prober;
struct km_health;
struct km_probe_policy;

struct km_prober_options {
	struct km_health *health; /* where results go */
	/* What probes of the API may touch, at every run (km_probe.h);
	 * copied. NULL: km_probe_policy_defaults'. Probes of the config file
	 * are not held to it. */
	const struct km_probe_policy *policy;
	/* Exec probes running at once (prober.maxExecChildren); 0 = 64. */
	int max_exec_children;
	/* The loop watchdog (prober.watchdog): when the loop has not turned
	 * for watchdog_ms (a callback that blocks), on_watchdog(arg, false)
	 * is called and a line logged; when it turns again,
	 * on_watchdog(arg, true). 0 = off. The callback runs on the
	 * watchdog's own thread (km-watchdog), never after km_prober_stop
	 * has begun. */
	int64_t watchdog_ms;
	void (*on_watchdog)(void *arg, bool turning);
	void *watchdog_arg;
};

/* For the daemon, once, before any thread starts: makes the process a
 * child subreaper (PR_SET_CHILD_SUBREAPER: what exec probes' processes
 * leave when they exit becomes its child, not init's) and blocks SIGCHLD
 * in the calling thread, so that every thread started after inherits the
 * mask and the prober takes SIGCHLD through a signalfd. Probers started
 * afterwards reap every child that is no exec run's, and kill those still
 * alive unless the process is PID 1 (km_check_exec.c). KM_EIO if prctl
 * fails. */
int km_prober_init_process(struct km_error *err);

int km_prober_start(const struct km_prober_options *o, struct km_prober **out,
		    struct km_error *err);
/* Stops the loop, abandons running checks (children killed, calls
 * cancelled), frees everything. NULL is accepted. */
void km_prober_stop(struct km_prober *pr);

/* Adds a probe, or replaces the definition of the probe of that name (a
 * run in flight finishes with the definition it started with; a new
 * period or initial delay reschedules it). p is copied; p->target_id must
 * be set. KM_ENOMEM. */
int km_prober_upsert(struct km_prober *pr, const struct km_probe *p);
/* Stops running the probe named name (a run in flight is cancelled). */
int km_prober_remove(struct km_prober *pr, const char *name);

struct km_prober_stats {
	uint64_t probes; /* defined now */
	uint64_t runs;   /* checks started */
	uint64_t results_ok, results_failed;
	uint64_t skipped_overlap; /* due while the last run still ran */
	uint64_t skipped_late;    /* slots missed entirely (loop behind) */
	uint64_t in_flight;
	/* Checks failed by kubemedic itself (an INTERNAL result, logged): a
	 * type that could not start, no timer for a check's deadline, a
	 * check that did not report by its deadline. */
	uint64_t check_errors;
	/* Probes left without a next run because its timer could not be
	 * armed (logged; an update schedules the probe again). */
	uint64_t schedule_errors;
	/* Blocking calls (file checks' stat, CA files) handed to the offload
	 * pool; those abandoned in their call (a check timed out meanwhile);
	 * threads still in such a call now. */
	uint64_t offload_jobs, offload_abandoned, offload_stuck;
	/* Exec runs refused because prober.maxExecChildren were running. */
	uint64_t exec_refused;
	int64_t lag_p50_us, lag_p99_us, lag_max_us; /* since start */
};
/* Schedule lag over the runs started since the previous report, for a
 * periodic line: a since-start percentile hides today's trouble under
 * hours of calm, and start-up's under a short run. */
struct km_prober_interval {
	uint64_t runs;
	int64_t lag_p50_us, lag_p99_us, lag_max_us;
};

/* The totals; and, if iv is not NULL, the interval since the previous
 * call with an iv, which starts a new one (so one caller should own
 * intervals: main's stats line). One snapshot: iv->runs is exactly the
 * difference of out->runs between two such calls. Any thread. */
void km_prober_get_stats(struct km_prober *pr, struct km_prober_stats *out,
			 struct km_prober_interval *iv);

/* Runs fn(arg) on the loop thread, after everything posted before it.
 * For diagnostics and tests: a loop that is behind (a stall) cannot be
 * produced on demand otherwise. KM_ENOMEM. */
int km_prober_run_on_loop(struct km_prober *pr, void (*fn)(void *arg),
			  void *arg);

/* True while the watchdog finds the loop stalled (false when it is off).
 * Any thread. */
bool km_prober_loop_stalled(struct km_prober *pr);

/* The deterministic first-run offset of a target within a period. */
int64_t km_prober_offset_ms(const char *target_name, int64_t period_ms);

#endif
