/*
 * The state machine and the flap detector of km_ledger.h.
 */
#include "km_ledger.h"

#include <assert.h>

#include "km_model.h"

void km_ledger_init(struct km_ledger *lg, int state)
{
	*lg = (struct km_ledger){.state = state ? state : KM_STATE_UNKNOWN};
}

double km_ledger_flap_percent(const struct km_ledger *lg)
{
	double sum = 0;

	/* Pair k compares observations k and k+1 ago; k = 0 is the newest
	 * pair (weight 1.25), k = 19 the oldest (0.75). A window not yet full
	 * counts only the pairs it has: as if it had started full of its
	 * first outcome, which has no changes. */
	for (int k = 0; k + 1 < lg->n_history; k++) {
		bool a = lg->history >> k & 1, b = lg->history >> (k + 1) & 1;

		if (a != b)
			sum += 1.25 - 0.5 * k / (KM_FLAP_WINDOW - 2);
	}
	return sum * 100.0 / (KM_FLAP_WINDOW - 1);
}

bool km_ledger_observe(struct km_ledger *lg, const struct km_ledger_cfg *cfg,
		       int verdict, struct km_ledger_change *ch)
{
	int from = lg->state;
	bool was_flapping = lg->flapping;
	bool success = verdict != KM_STATE_UNHEALTHY;
	double pct;

	assert(verdict == KM_STATE_HEALTHY || verdict == KM_STATE_DEGRADED ||
	       verdict == KM_STATE_UNHEALTHY);
	lg->history = (lg->history << 1 | (success ? 1u : 0u)) &
		      ((1u << KM_FLAP_WINDOW) - 1);
	if (lg->n_history < KM_FLAP_WINDOW)
		lg->n_history++;

	if (success) {
		lg->failures = 0;
		if (lg->successes < INT32_MAX)
			lg->successes++;
		/* Up once the threshold is met; then HEALTHY and DEGRADED
		 * follow each observation, since both are up. */
		if (lg->successes >= cfg->success_threshold)
			lg->state = verdict;
	} else {
		lg->successes = 0;
		if (lg->failures < INT32_MAX)
			lg->failures++;
		if (lg->state != KM_STATE_UNHEALTHY &&
		    lg->failures >= cfg->failure_threshold)
			lg->state = KM_STATE_UNHEALTHY;
	}

	pct = km_ledger_flap_percent(lg);
	if (!lg->flapping && pct >= cfg->flap_high)
		lg->flapping = true;
	else if (lg->flapping && pct < cfg->flap_low)
		lg->flapping = false;

	if (from == lg->state && was_flapping == lg->flapping)
		return false;
	ch->from = from;
	ch->to = lg->state;
	ch->flapping = lg->flapping;
	ch->flap_changed = was_flapping != lg->flapping;
	ch->flap_percent = pct;
	return true;
}
