/*
 * The health ledger: the kubelet's thresholds and Nagios-style flap
 * detection with hysteresis.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "km_ledger.h"
#include "km_model.h"

static const struct km_ledger_cfg cfg3 = {.success_threshold = 2,
					  .failure_threshold = 3,
					  .flap_low = 5,
					  .flap_high = 20};

/* Feeds outcomes ("s" success, "d" degraded, "f" failure); returns how
 * many changes. */
static int feed(struct km_ledger *lg, const struct km_ledger_cfg *cfg,
		const char *outcomes, struct km_ledger_change *last)
{
	int changes = 0;

	for (const char *p = outcomes; *p; p++) {
		struct km_ledger_change ch;

		int v = *p == 's'   ? KM_STATE_HEALTHY
			: *p == 'd' ? KM_STATE_DEGRADED
				    : KM_STATE_UNHEALTHY;

		if (km_ledger_observe(lg, cfg, v, &ch)) {
			changes++;
			if (last)
				*last = ch;
		}
	}
	return changes;
}

static void test_thresholds_from_unknown(void **state)
{
	struct km_ledger lg;
	struct km_ledger_change ch;

	(void)state;
	km_ledger_init(&lg, 0);
	assert_int_equal(lg.state, KM_STATE_UNKNOWN);
	/* Two failures: not yet. The third: UNHEALTHY. */
	assert_int_equal(feed(&lg, &cfg3, "ff", NULL), 0);
	assert_int_equal(lg.state, KM_STATE_UNKNOWN);
	assert_true(km_ledger_observe(&lg, &cfg3, KM_STATE_UNHEALTHY, &ch));
	assert_int_equal(ch.from, KM_STATE_UNKNOWN);
	assert_int_equal(ch.to, KM_STATE_UNHEALTHY);
	assert_int_equal(lg.failures, 3);
	/* More failures change nothing. */
	assert_int_equal(feed(&lg, &cfg3, "fff", NULL), 0);
	/* One success is not enough with successThreshold 2 ... */
	assert_int_equal(feed(&lg, &cfg3, "s", NULL), 0);
	assert_int_equal(lg.state, KM_STATE_UNHEALTHY);
	/* ... and a failure in between starts the count again. */
	assert_int_equal(feed(&lg, &cfg3, "fs", NULL), 0);
	assert_true(km_ledger_observe(&lg, &cfg3, KM_STATE_HEALTHY, &ch));
	assert_int_equal(ch.to, KM_STATE_HEALTHY);
	assert_int_equal(lg.successes, 2);
	assert_int_equal(lg.failures, 0);
}

static void test_starts_from_a_stored_state(void **state)
{
	struct km_ledger lg;
	struct km_ledger_change ch;

	(void)state;
	/* After a restart the verdict continues: a healthy target stays
	 * healthy on its first success, and needs the full threshold of
	 * failures to go down. */
	km_ledger_init(&lg, KM_STATE_HEALTHY);
	assert_int_equal(feed(&lg, &cfg3, "ssff", NULL), 0);
	assert_int_equal(feed(&lg, &cfg3, "f", &ch), 1);
	assert_int_equal(ch.from, KM_STATE_HEALTHY);
	assert_int_equal(ch.to, KM_STATE_UNHEALTHY);
}

static void test_threshold_one(void **state)
{
	struct km_ledger_cfg c = {.success_threshold = 1,
				  .failure_threshold = 1,
				  .flap_low = 5,
				  .flap_high = 101};
	struct km_ledger lg;

	(void)state;
	km_ledger_init(&lg, 0);
	/* Every change of outcome is a change of state. */
	assert_int_equal(feed(&lg, &c, "sfsfs", NULL), 5);
	assert_int_equal(lg.state, KM_STATE_HEALTHY);
}

static void test_flap_percent_weights(void **state)
{
	struct km_ledger lg;

	(void)state;
	km_ledger_init(&lg, 0);
	feed(&lg, &cfg3, "sssssssssssssssssssss", NULL); /* 21, no change */
	assert_true(km_ledger_flap_percent(&lg) == 0.0);
	/* One change, as the newest pair: weight 1.25 of 20 pairs. */
	feed(&lg, &cfg3, "f", NULL);
	assert_true(km_ledger_flap_percent(&lg) > 6.24 &&
		    km_ledger_flap_percent(&lg) < 6.26);
	/* Twenty more results push it to the oldest pair: weight 0.75. */
	feed(&lg, &cfg3, "fffffffffffffffffff", NULL);
	assert_true(km_ledger_flap_percent(&lg) > 3.74 &&
		    km_ledger_flap_percent(&lg) < 3.76);
	/* One more and it leaves the window. */
	feed(&lg, &cfg3, "f", NULL);
	assert_true(km_ledger_flap_percent(&lg) == 0.0);
	/* Alternating outcomes: every pair changed, 100%. */
	feed(&lg, &cfg3, "sfsfsfsfsfsfsfsfsfsfs", NULL);
	assert_true(km_ledger_flap_percent(&lg) > 99.99 &&
		    km_ledger_flap_percent(&lg) < 100.01);
}

static void test_flapping_hysteresis(void **state)
{
	struct km_ledger_cfg c = {.success_threshold = 1,
				  .failure_threshold = 3,
				  .flap_low = 5,
				  .flap_high = 20};
	struct km_ledger lg;
	struct km_ledger_change ch = {0};
	int changes;

	(void)state;
	km_ledger_init(&lg, 0);
	feed(&lg, &c, "sssssssssssssssssssss", NULL);
	assert_int_equal(lg.state, KM_STATE_HEALTHY);
	/* Blips: s f s f ... the state never reaches UNHEALTHY (threshold
	 * 3) but the outcome keeps changing: flapping starts once the
	 * weighted share reaches 20%. */
	changes = feed(&lg, &c, "fsfs", &ch);
	assert_int_equal(changes, 1);
	assert_true(ch.flap_changed);
	assert_true(ch.flapping);
	assert_int_equal(ch.from, KM_STATE_HEALTHY);
	assert_int_equal(ch.to, KM_STATE_HEALTHY);
	assert_true(ch.flap_percent >= 20);
	/* Calm again: it stays flapping while the share is >= 5% ... */
	feed(&lg, &c, "ssssssssssssss", NULL);
	assert_true(lg.flapping);
	assert_true(km_ledger_flap_percent(&lg) >= 5);
	/* ... and stops only below the low threshold. */
	changes = feed(&lg, &c, "sssss", &ch);
	assert_int_equal(changes, 1);
	assert_false(lg.flapping);
	assert_true(ch.flap_changed);
	assert_false(ch.flapping);
	assert_true(ch.flap_percent < 5);
}

/* DEGRADED is up: it counts toward success_threshold, and once up the
 * state follows each observation between HEALTHY and DEGRADED at once;
 * failures bring it down as from HEALTHY. */
static void test_degraded_is_up_under_pressure(void **state)
{
	struct km_ledger lg;
	struct km_ledger_change ch;

	(void)state;
	km_ledger_init(&lg, 0);
	/* "s" then "d": two up observations meet the threshold of 2; the
	 * verdict is the latest's. */
	assert_int_equal(feed(&lg, &cfg3, "s", NULL), 0);
	assert_int_equal(feed(&lg, &cfg3, "d", &ch), 1);
	assert_int_equal(ch.from, KM_STATE_UNKNOWN);
	assert_int_equal(ch.to, KM_STATE_DEGRADED);
	assert_int_equal(lg.successes, 2);
	assert_int_equal(feed(&lg, &cfg3, "s", &ch), 1);
	assert_int_equal(ch.from, KM_STATE_DEGRADED);
	assert_int_equal(ch.to, KM_STATE_HEALTHY);
	assert_int_equal(feed(&lg, &cfg3, "dd", &ch), 1);
	assert_int_equal(ch.to, KM_STATE_DEGRADED);
	/* Two failures are below the threshold of 3: still DEGRADED; the
	 * third brings it down. */
	assert_int_equal(feed(&lg, &cfg3, "ff", NULL), 0);
	assert_int_equal(lg.state, KM_STATE_DEGRADED);
	assert_int_equal(feed(&lg, &cfg3, "f", &ch), 1);
	assert_int_equal(ch.from, KM_STATE_DEGRADED);
	assert_int_equal(ch.to, KM_STATE_UNHEALTHY);
	/* Coming back needs the full success threshold of up verdicts. */
	assert_int_equal(feed(&lg, &cfg3, "d", NULL), 0);
	assert_int_equal(feed(&lg, &cfg3, "d", &ch), 1);
	assert_int_equal(ch.to, KM_STATE_DEGRADED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thresholds_from_unknown),
		cmocka_unit_test(test_starts_from_a_stored_state),
		cmocka_unit_test(test_threshold_one),
		cmocka_unit_test(test_flap_percent_weights),
		cmocka_unit_test(test_flapping_hysteresis),
		cmocka_unit_test(test_degraded_is_up_under_pressure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
