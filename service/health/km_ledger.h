/*
 * km_ledger — the health verdict of one target, from its observations.
 *
 * The kubelet's rules: a target becomes UNHEALTHY after failure_threshold
 * consecutive failures and HEALTHY after success_threshold consecutive
 * successes; before either it stays where it was (UNKNOWN at first).
 * An observation's verdict is HEALTHY, DEGRADED (up, but under pressure:
 * a success for the thresholds) or UNHEALTHY (a failure); once a target is
 * up, it is HEALTHY or DEGRADED as its latest observation says.
 *
 * Flap detection, as Nagios does it: over the last 21 observations, the
 * share of the 20 consecutive pairs whose outcome differs, each change
 * weighted from 0.75 (oldest) to 1.25 (newest) so recent changes count
 * more. A target starts flapping when the share reaches the high
 * threshold and stops when it falls below the low one (hysteresis, so the
 * flag itself does not flap). Flapping is a flag beside the state: it does
 * not change the state, it marks a target recovery should leave alone.
 *
 * Pure functions over a small struct: no allocation, no threads. The
 * health hub keeps one ledger per target, under its lock.
 */
#ifndef KM_LEDGER_H
#define KM_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#define KM_FLAP_WINDOW 21

struct km_ledger_cfg {
	int32_t success_threshold;
	int32_t failure_threshold;
	double flap_low;  /* percent; default 5 */
	double flap_high; /* percent; default 20 */
};

struct km_ledger {
	int state; /* enum km_state */
	bool flapping;
	int32_t successes; /* consecutive (HEALTHY or DEGRADED) */
	int32_t failures;  /* consecutive */
	uint32_t history;  /* bit i = outcome i observations ago (1 = ok) */
	uint8_t n_history; /* up to KM_FLAP_WINDOW */
};

struct km_ledger_change {
	int from, to; /* equal when only flapping changed */
	bool flapping;
	bool flap_changed;
	double flap_percent;
};

void km_ledger_init(struct km_ledger *lg, int state);
/* Records one observation with its verdict (KM_STATE_HEALTHY, _DEGRADED or
 * _UNHEALTHY). Returns true, with ch filled, when the state or the
 * flapping flag changed. */
bool km_ledger_observe(struct km_ledger *lg, const struct km_ledger_cfg *cfg,
		       int verdict, struct km_ledger_change *ch);
/* The weighted share of changes in the window, in percent (0..100). */
double km_ledger_flap_percent(const struct km_ledger *lg);

#endif
