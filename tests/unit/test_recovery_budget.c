/*
 * The safety budget (km_budget.h) in simulated time: token buckets and
 * their refill, max concurrent (global and per cluster), one action per
 * target, and the storm guard per zone and per policy — its start above
 * the share, its end at or below it, force passing manual requests only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "km_budget.h"

#define S (1000000LL)
#define T0 (1000 * S)

static struct km_budget *budget(const struct km_budget_config *c)
{
	struct km_budget *b = NULL;
	struct km_error err = {0};

	if (km_budget_new(c, &b, &err))
		fprintf(stderr, "%s\n", err.msg);
	assert_non_null(b);
	return b;
}

static struct km_budget_request req(const char *target, int action)
{
	return (struct km_budget_request){.cluster = "prod",
					  .target = target,
					  .action = action,
					  .automatic = true,
					  .policy = "p"};
}

static bool admit(struct km_budget *b, struct km_budget_request r, int64_t now,
		  struct km_budget_verdict *v)
{
	assert_int_equal(km_budget_admit(b, &r, now, v), 0);
	return v->ok;
}

/* cordon 1/min: one, then refused until exactly a minute later. */
static void test_rate_limit(void **state)
{
	struct km_budget_config c;
	struct km_budget *b;
	struct km_budget_verdict v;
	struct km_budget_stats st;

	(void)state;
	km_budget_config_defaults(&c);
	b = budget(&c);
	assert_true(admit(b, req("prod:node//a", KM_ACTION_CORDON), T0, &v));
	assert_int_equal(km_budget_release(b, "prod:node//a"), 0);
	assert_false(admit(b, req("prod:node//b", KM_ACTION_CORDON), T0, &v));
	assert_string_equal(v.rule, "rate limit: cordon 1/min in prod");
	assert_int_equal(v.refusal, KM_BUDGET_RATE);
	assert_int_equal(v.retry_at_us, T0 + 60 * S);
	assert_false(admit(b, req("prod:node//b", KM_ACTION_CORDON),
			   T0 + 60 * S - 1, &v));
	assert_true(admit(b, req("prod:node//b", KM_ACTION_CORDON), T0 + 60 * S,
			  &v));
	/* Another cluster has its own bucket; another action too. */
	{
		struct km_budget_request r =
			req("dev:node//a", KM_ACTION_CORDON);

		r.cluster = "dev";
		assert_true(admit(b, r, T0 + 60 * S, &v));
	}
	assert_true(admit(b, req("prod:pod/x/y", KM_ACTION_RESTART_POD),
			  T0 + 60 * S, &v));
	km_budget_get_stats(b, &st);
	assert_int_equal(st.admitted, 4);
	assert_int_equal(st.refused_rate, 2);
	assert_int_equal(st.in_flight, 3);
	km_budget_free(b);
}

/* A burst of 3 at 5/min: three at once, then one every 12 s; idle time
 * refills up to the burst, no more. */
static void test_bucket_refill(void **state)
{
	struct km_budget_config c;
	struct km_budget *b;
	struct km_budget_verdict v;
	char name[32];
	int n = 0;

	(void)state;
	km_budget_config_defaults(&c);
	c.rates[KM_ACTION_ROLLOUT_RESTART] =
		(struct km_budget_rate){5, 60000, 3};
	c.max_concurrent = c.max_concurrent_per_cluster = 1000;
	b = budget(&c);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "prod:deployment/x/%d", n++);
		assert_int_equal(admit(b, req(name, KM_ACTION_ROLLOUT_RESTART),
				       T0, &v),
				 i < 3);
	}
	assert_string_equal(v.rule,
			    "rate limit: rollout_restart 5/min in prod");
	assert_int_equal(v.retry_at_us, T0 + 12 * S);
	snprintf(name, sizeof name, "prod:deployment/x/%d", n++);
	assert_false(admit(b, req(name, KM_ACTION_ROLLOUT_RESTART),
			   T0 + 12 * S - 1, &v));
	assert_true(admit(b, req(name, KM_ACTION_ROLLOUT_RESTART), T0 + 12 * S,
			  &v));
	/* An hour idle: three again, not sixty. */
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "prod:deployment/x/%d", n++);
		assert_int_equal(admit(b, req(name, KM_ACTION_ROLLOUT_RESTART),
				       T0 + 3600 * S, &v),
				 i < 3);
	}
	km_budget_free(b);
}

/* globalRates: across clusters. */
static void test_global_rate(void **state)
{
	struct km_budget_config c;
	struct km_budget *b;
	struct km_budget_verdict v;
	struct km_budget_request r = req("dev:node//a", KM_ACTION_DRAIN);

	(void)state;
	km_budget_config_defaults(&c);
	c.global_rates[KM_ACTION_DRAIN] =
		(struct km_budget_rate){1, 3600000, 1};
	b = budget(&c);
	assert_true(admit(b, req("prod:node//a", KM_ACTION_DRAIN), T0, &v));
	r.cluster = "dev";
	assert_false(admit(b, r, T0 + 600 * S, &v));
	assert_string_equal(v.rule, "global rate limit: drain 1/h");
	assert_int_equal(v.retry_at_us, T0 + 3600 * S);
	assert_true(admit(b, r, T0 + 3600 * S, &v));
	km_budget_free(b);
}

/* maxConcurrent and maxConcurrentPerCluster; a release frees a slot. */
static void test_max_concurrent(void **state)
{
	struct km_budget_config c;
	struct km_budget *b;
	struct km_budget_verdict v;
	struct km_budget_request r;
	char name[32];

	(void)state;
	km_budget_config_defaults(&c);
	c.max_concurrent = 3;
	c.max_concurrent_per_cluster = 2;
	b = budget(&c);
	assert_true(
		admit(b, req("prod:pod/x/0", KM_ACTION_RESTART_POD), T0, &v));
	assert_true(
		admit(b, req("prod:pod/x/1", KM_ACTION_RESTART_POD), T0, &v));
	assert_false(
		admit(b, req("prod:pod/x/2", KM_ACTION_RESTART_POD), T0, &v));
	assert_string_equal(v.rule, "max concurrent: 2 actions in flight in "
				    "prod");
	r = req("dev:pod/x/0", KM_ACTION_RESTART_POD);
	r.cluster = "dev";
	assert_true(admit(b, r, T0, &v));
	r.target = "dev:pod/x/1";
	assert_false(admit(b, r, T0, &v));
	assert_string_equal(v.rule, "max concurrent: 3 actions in flight");
	assert_int_equal(v.refusal, KM_BUDGET_CONCURRENCY);
	assert_int_equal(km_budget_release(b, "prod:pod/x/0"), 0);
	assert_int_equal(km_budget_release(b, "prod:pod/x/0"), KM_ENOTFOUND);
	assert_true(admit(b, r, T0, &v));
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof name, "%s:pod/x/%d", i ? "dev" : "prod",
			 i ? i - 1 : 1);
		assert_int_equal(km_budget_release(b, name), 0);
	}
	{
		struct km_budget_stats st;

		km_budget_get_stats(b, &st);
		assert_int_equal(st.in_flight, 0);
		assert_int_equal(st.refused_concurrency, 2);
	}
	km_budget_free(b);
}

/* Never two actions at once on one target — not even forced. */
static void test_one_per_target(void **state)
{
	struct km_budget_config c;
	struct km_budget *b;
	struct km_budget_verdict v;
	struct km_budget_request r = req("prod:node//a", KM_ACTION_CORDON);

	(void)state;
	km_budget_config_defaults(&c);
	b = budget(&c);
	assert_true(admit(b, r, T0, &v));
	r.action = KM_ACTION_DRAIN;
	r.automatic = false;
	r.force = true;
	r.policy = NULL;
	assert_false(admit(b, r, T0, &v));
	assert_string_equal(v.rule, "one at a time: an action on prod:node//a "
				    "is in flight");
	assert_int_equal(v.refusal, KM_BUDGET_BUSY);
	km_budget_release(b, "prod:node//a");
	assert_true(admit(b, r, T0, &v));
	r.target = NULL;
	assert_int_equal(km_budget_admit(b, &r, T0, &v), KM_EINVAL);
	km_budget_free(b);
}

static int set_node(struct km_budget *b, const char *zone, int i,
		    bool unhealthy, int64_t now,
		    struct km_budget_storm_change *ch)
{
	char name[32];
	struct km_budget_member m = {.group = KM_BUDGET_ZONE,
				     .name = zone,
				     .cluster = "prod",
				     .target = name,
				     .unhealthy = unhealthy};

	snprintf(name, sizeof name, "prod:node//%s-%d", zone, i);
	assert_int_equal(km_budget_target_state(b, &m, now, ch), 0);
	return ch->change;
}

/* 10 nodes in zone-a: 4 unhealthy (40%) is no storm, 5 is; automatic
 * actions in the zone stop, manual ones need force; below the share
 * again, the storm ends. */
static void test_storm_zone(void **state)
{
	struct km_budget_config c;
	struct km_budget *b;
	struct km_budget_verdict v;
	struct km_budget_storm_change ch;
	struct km_budget_storm storms[2], which;
	struct km_budget_request r =
		req("prod:node//zone-a-9", KM_ACTION_CORDON);

	(void)state;
	km_budget_config_defaults(&c);
	b = budget(&c);
	for (int i = 0; i < 10; i++)
		assert_int_equal(set_node(b, "zone-a", i, false, T0, &ch), 0);
	set_node(b, "zone-b", 0, true, T0, &ch);
	for (int i = 0; i < 4; i++)
		assert_int_equal(set_node(b, "zone-a", i, true, T0, &ch), 0);
	assert_int_equal(km_budget_storms(b, storms, 2), 0);
	assert_int_equal(set_node(b, "zone-a", 4, true, T0 + S, &ch), 1);
	assert_int_equal(ch.storm.group, KM_BUDGET_ZONE);
	assert_int_equal(ch.storm.unhealthy, 5);
	assert_int_equal(ch.storm.total, 10);
	assert_int_equal(ch.storm.since_us, T0 + S);
	assert_string_equal(ch.storm.why, "storm: 5 of 10 nodes in zone-a "
					  "(prod) unhealthy (50% > 40%)");
	/* The same state again changes nothing. */
	assert_int_equal(set_node(b, "zone-a", 4, true, T0 + S, &ch), 0);
	assert_int_equal(km_budget_storms(b, storms, 2), 1);
	assert_string_equal(storms[0].name, "zone-a");

	r.zone = "zone-a";
	v.storm = &which;
	assert_false(admit(b, r, T0 + 2 * S, &v));
	assert_string_equal(v.rule, "storm: 5 of 10 nodes in zone-a (prod) "
				    "unhealthy (50% > 40%): automatic actions "
				    "stop");
	assert_int_equal(v.refusal, KM_BUDGET_STORM);
	assert_ptr_equal(v.storm, &which);
	assert_int_equal(which.group, KM_BUDGET_ZONE);
	assert_string_equal(which.name, "zone-a");
	assert_string_equal(which.cluster, "prod");
	v.storm = NULL;
	r.force = true; /* a policy cannot force */
	assert_false(admit(b, r, T0 + 2 * S, &v));
	r.automatic = false;
	r.policy = NULL;
	r.force = false;
	assert_false(admit(b, r, T0 + 2 * S, &v));
	assert_non_null(strstr(v.rule, "only a forced request passes"));
	r.force = true;
	assert_true(admit(b, r, T0 + 2 * S, &v));
	/* Another zone (of another cluster too) is not stopped. */
	r = req("prod:node//zone-b-1", KM_ACTION_DRAIN);
	r.zone = "zone-b";
	r.policy = NULL;
	assert_true(admit(b, r, T0 + 2 * S, &v));

	/* Back to 4 of 10: the storm ends, with its numbers. */
	assert_int_equal(set_node(b, "zone-a", 0, false, T0 + 9 * S, &ch), -1);
	assert_int_equal(ch.storm.unhealthy, 4);
	assert_string_equal(ch.storm.why, "storm: 4 of 10 nodes in zone-a "
					  "(prod) unhealthy (40% <= 40%)");
	assert_int_equal(km_budget_storms(b, storms, 2), 0);
	r = req("prod:node//zone-a-8", KM_ACTION_UNCORDON);
	r.zone = "zone-a";
	assert_true(admit(b, r, T0 + 10 * S, &v));
	km_budget_free(b);
}

/* A policy's targets: the share of them, at least minUnhealthy; members
 * that go away leave the count. */
static void test_storm_policy(void **state)
{
	struct km_budget_config c;
	struct km_budget *b;
	struct km_budget_verdict v;
	struct km_budget_storm_change ch;
	struct km_budget_member m = {.group = KM_BUDGET_POLICY, .name = "p"};
	char name[32];

	(void)state;
	km_budget_config_defaults(&c);
	b = budget(&c);
	m.target = name;
	/* Two of two unhealthy: 100%, but fewer than minUnhealthy (3). */
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof name, "prod:pod/x/%d", i);
		m.unhealthy = true;
		assert_int_equal(km_budget_target_state(b, &m, T0, &ch), 0);
		assert_int_equal(ch.change, 0);
	}
	/* A third: 3 of 3 is a storm. */
	snprintf(name, sizeof name, "prod:pod/x/2");
	assert_int_equal(km_budget_target_state(b, &m, T0, &ch), 0);
	assert_int_equal(ch.change, 1);
	assert_string_equal(ch.storm.why, "storm: 3 of 3 targets of policy p "
					  "unhealthy (100% > 40%)");
	assert_false(
		admit(b, req("prod:pod/x/0", KM_ACTION_RESTART_POD), T0, &v));
	assert_non_null(strstr(v.rule, "targets of policy p"));
	/* Another policy is not stopped. */
	{
		struct km_budget_request r =
			req("prod:pod/x/0", KM_ACTION_RESTART_POD);

		r.policy = "q";
		assert_true(admit(b, r, T0, &v));
	}
	/* Five healthy ones join: the storm lasts to 3 of 7 (42%) and
	 * ends at 3 of 8 (37%). */
	m.unhealthy = false;
	for (int i = 3; i < 8; i++) {
		snprintf(name, sizeof name, "prod:pod/x/%d", i);
		assert_int_equal(km_budget_target_state(b, &m, T0, &ch), 0);
		assert_int_equal(ch.change, i == 7 ? -1 : 0);
	}
	assert_int_equal(ch.storm.total, 8);
	/* One is deleted: 3 of 7, a storm again. */
	m.gone = true;
	snprintf(name, sizeof name, "prod:pod/x/3");
	assert_int_equal(km_budget_target_state(b, &m, T0, &ch), 0);
	assert_int_equal(ch.change, 1);
	assert_int_equal(ch.storm.total, 7);
	m.name = NULL;
	assert_int_equal(km_budget_target_state(b, &m, T0, &ch), KM_EINVAL);
	km_budget_free(b);
}

/* The storm guard's members are bounded. */
static void test_member_bound(void **state)
{
	struct km_budget_config c;
	struct km_budget *b;
	struct km_budget_member m = {.group = KM_BUDGET_POLICY, .name = "p"};

	(void)state;
	km_budget_config_defaults(&c);
	c.max_members = 2;
	b = budget(&c);
	m.target = "a";
	assert_int_equal(km_budget_target_state(b, &m, T0, NULL), 0);
	m.target = "b";
	assert_int_equal(km_budget_target_state(b, &m, T0, NULL), 0);
	m.target = "c";
	assert_int_equal(km_budget_target_state(b, &m, T0, NULL), KM_EFULL);
	m.target = "a"; /* a known one still counts */
	m.unhealthy = true;
	assert_int_equal(km_budget_target_state(b, &m, T0, NULL), 0);
	km_budget_free(b);
}

static void test_config_check(void **state)
{
	struct km_budget_config c;
	struct km_budget *b = NULL;
	struct km_error err = {0};

	(void)state;
	km_budget_config_defaults(&c);
	assert_int_equal(km_budget_config_check(&c, &err), 0);
	c.storm_share_pct = 100;
	assert_int_equal(km_budget_new(&c, &b, &err), KM_EINVAL);
	assert_null(b);
	assert_string_equal(err.msg, "storm.share: must be between 1 and 99 "
				     "(percent)");
	km_budget_config_defaults(&c);
	c.max_concurrent_per_cluster = 21;
	assert_int_equal(km_budget_config_check(&c, &err), KM_EINVAL);
	assert_string_equal(err.msg, "maxConcurrentPerCluster: must be between "
				     "1 and maxConcurrent (20)");
	km_budget_config_defaults(&c);
	c.rates[KM_ACTION_CORDON].burst = 0;
	assert_int_equal(km_budget_config_check(&c, &err), KM_EINVAL);
	assert_string_equal(err.msg, "rates.cordon.burst: must be between 1 "
				     "and 1000000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_bucket_refill),
		cmocka_unit_test(test_global_rate),
		cmocka_unit_test(test_max_concurrent),
		cmocka_unit_test(test_one_per_target),
		cmocka_unit_test(test_storm_zone),
		cmocka_unit_test(test_storm_policy),
		cmocka_unit_test(test_member_bound),
		cmocka_unit_test(test_config_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
