/*
 * Automatic policies (km_policy.h) in simulated time: matching, triggers
 * that are durations (through km_policy_due) and reasons, the kubelet's
 * backoff and its reset, the escalation ladder and giving up, flapping,
 * one action in flight per key, and the bound on tracked targets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "km_policy.h"

#define S (1000000LL)
#define T0 (1000 * S)

static const char *const shop[] = {"shop"};
static const char *const prod[] = {"prod"};

/* A pod policy: restart_pod, triggered at once. */
static struct km_policy_config pod_policy(const char *name)
{
	struct km_policy_config c;

	km_policy_config_defaults(&c);
	c.name = name;
	c.kinds = 1u << KM_KIND_POD;
	c.ladder[0] = KM_ACTION_RESTART_POD;
	c.n_ladder = 1;
	return c;
}

static struct km_policy_set *set_of(const struct km_policy_config *c, size_t n,
				    size_t max_targets)
{
	struct km_policy_options o = {.max_targets = max_targets};
	struct km_policy_set *s = NULL;
	struct km_error err = {0};

	if (km_policy_set_new(c, n, &o, &s, &err))
		fprintf(stderr, "%s\n", err.msg);
	assert_non_null(s);
	return s;
}

static const struct km_kv web_labels[] = {{"app", "web"}, {"tier", "front"}};

static struct km_policy_target pod(const char *name, int state)
{
	return (struct km_policy_target){
		.name = name,
		.cluster = "prod",
		.kind = KM_KIND_POD,
		.ns = "shop",
		.labels = web_labels,
		.n_labels = 2,
		.owner = "prod:deployment/shop/web",
		.node = "n1",
		.state = state,
		.cause = "back-off 10s restarting failed container: "
			 "CrashLoopBackOff",
		.cause_seq = 7,
	};
}

static struct km_policy_decision observe(struct km_policy_set *s,
					 struct km_policy_target t, int64_t now)
{
	struct km_policy_decision d;

	assert_int_equal(km_policy_observe(s, &t, now, &d), 0);
	return d;
}

static void outcome(struct km_policy_set *s, const char *key, int phase,
		    int64_t now, const char *rule)
{
	struct km_policy_decision d;

	assert_int_equal(km_policy_outcome(s, key, phase, now, &d), 0);
	assert_string_equal(d.rule, rule);
}

/* Clusters, kinds, namespaces and the selector each narrow the match. */
static void test_match(void **state)
{
	struct km_policy_config c = pod_policy("web");
	struct km_policy_set *s;
	struct km_policy_target t;
	struct km_policy_decision d;
	static const struct km_kv other[] = {{"app", "db"}};

	(void)state;
	c.clusters = prod;
	c.n_clusters = 1;
	c.namespaces = shop;
	c.n_namespaces = 1;
	c.label_selector = "app=web,tier in (front)";
	s = set_of(&c, 1, 0);

	t = pod("prod:pod/shop/a", KM_STATE_UNHEALTHY);
	t.cluster = "dev";
	t.owner = NULL;
	d = observe(s, t, T0);
	assert_int_equal(d.verdict, KM_POLICY_NONE);
	assert_string_equal(d.rule, "no_policy");
	assert_null(d.policy);

	t = pod("prod:pod/kube-system/a", KM_STATE_UNHEALTHY);
	t.ns = "kube-system";
	t.owner = NULL;
	assert_string_equal(observe(s, t, T0).rule, "no_policy");

	t = pod("prod:pod/shop/db", KM_STATE_UNHEALTHY);
	t.labels = other;
	t.n_labels = 1;
	t.owner = NULL;
	assert_string_equal(observe(s, t, T0).rule, "no_policy");

	t = pod("prod:node//n1", KM_STATE_UNHEALTHY);
	t.kind = KM_KIND_NODE;
	t.ns = NULL;
	t.owner = NULL;
	assert_string_equal(observe(s, t, T0).rule, "no_policy");

	/* All four hold: the pod is restarted, as the policy. */
	t = pod("prod:pod/shop/web-1", KM_STATE_UNHEALTHY);
	d = observe(s, t, T0);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	assert_string_equal(d.rule, "trigger");
	assert_string_equal(d.policy, "web");
	assert_string_equal(d.requester, "policy:web");
	assert_string_equal(d.key, "prod:deployment/shop/web");
	assert_string_equal(d.subject, "prod:pod/shop/web-1");
	assert_string_equal(d.act_on, "prod:pod/shop/web-1");
	assert_int_equal(d.act_on_kind, KM_KIND_POD);
	assert_int_equal(d.action, KM_ACTION_RESTART_POD);
	assert_int_equal(d.attempt, 1);
	assert_int_equal(d.cause_seq, 7);
	assert_non_null(strstr(d.reason, "CrashLoopBackOff"));
	assert_non_null(strstr(d.reason, "by policy web"));

	/* The first matching policy wins; healthy targets are not tracked. */
	km_policy_set_free(s);
	{
		struct km_policy_config two[2] = {pod_policy("first"),
						  pod_policy("second")};

		two[0].label_selector = "app=db";
		s = set_of(two, 2, 0);
		t = pod("prod:pod/shop/web-1", KM_STATE_HEALTHY);
		d = observe(s, t, T0);
		assert_string_equal(d.rule, "healthy");
		assert_string_equal(d.policy, "second");
		t.state = KM_STATE_UNHEALTHY;
		d = observe(s, t, T0);
		assert_int_equal(d.verdict, KM_POLICY_ACT);
		assert_string_equal(d.policy, "second");
	}
	km_policy_set_free(s);
}

/* UNHEALTHY for 30s fires through due, not before, without a new
 * transition; a target healthy again in time never fires. */
static void test_duration_due(void **state)
{
	struct km_policy_config c = pod_policy("slow");
	struct km_policy_set *s;
	struct km_policy_decision d;
	struct km_policy_target t =
		pod("prod:pod/shop/web-1", KM_STATE_UNHEALTHY);
	int64_t next;

	(void)state;
	c.unhealthy_for_ms = 30 * 1000;
	s = set_of(&c, 1, 0);
	assert_int_equal(km_policy_due(s, T0, &d, &next), 0);
	assert_int_equal(next, INT64_MAX);

	d = observe(s, t, T0);
	assert_int_equal(d.verdict, KM_POLICY_NONE);
	assert_string_equal(d.rule, "waiting");
	assert_int_equal(d.next_us, T0 + 30 * S);
	/* A repeated UNHEALTHY does not restart the clock. */
	d = observe(s, t, T0 + 10 * S);
	assert_int_equal(d.next_us, T0 + 30 * S);

	assert_int_equal(km_policy_due(s, T0 + 30 * S - 1, &d, &next), 0);
	assert_int_equal(next, T0 + 30 * S);
	assert_int_equal(km_policy_due(s, T0 + 30 * S, &d, &next), 1);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	assert_string_equal(d.act_on, "prod:pod/shop/web-1");
	assert_non_null(strstr(d.reason, "UNHEALTHY for 30s"));
	/* In flight: nothing more is due, and observing says so. */
	assert_int_equal(km_policy_due(s, T0 + 100 * S, &d, &next), 0);
	assert_string_equal(observe(s, t, T0 + 100 * S).rule, "in_flight");
	km_policy_set_free(s);

	/* Healthy before the 30 s: nothing fires. */
	s = set_of(&c, 1, 0);
	observe(s, t, T0);
	t.state = KM_STATE_HEALTHY;
	d = observe(s, t, T0 + 20 * S);
	assert_string_equal(d.rule, "healthy");
	assert_int_equal(km_policy_due(s, T0 + 40 * S, &d, &next), 0);
	assert_int_equal(next, T0 + 20 * S + 600 * S); /* its forgetting */
	km_policy_set_free(s);
}

/* reasons: a cause holding one (any case) fires; another does not. */
static void test_reasons(void **state)
{
	static const char *const reasons[] = {"CrashLoopBackOff",
					      "node lease not renewed"};
	struct km_policy_config c = pod_policy("crash");
	struct km_policy_set *s;
	struct km_policy_decision d;
	struct km_policy_target t =
		pod("prod:pod/shop/web-1", KM_STATE_UNHEALTHY);
	int64_t next;

	(void)state;
	c.reasons = reasons;
	c.n_reasons = 2;
	c.kinds |= 1u << KM_KIND_NODE;
	c.ladder[1] = KM_ACTION_CORDON;
	c.n_ladder = 2;
	s = set_of(&c, 1, 0);
	t.cause = "OOMKilled";
	d = observe(s, t, T0);
	assert_int_equal(d.verdict, KM_POLICY_NONE);
	assert_string_equal(d.rule, "reason");
	assert_int_equal(km_policy_due(s, T0 + 3600 * S, &d, &next), 0);
	t.cause = "back-off restarting: crashloopbackoff";
	d = observe(s, t, T0 + 5 * S);
	assert_int_equal(d.verdict, KM_POLICY_ACT);

	/* A node whose Lease is stale: the cordon rung applies to it
	 * directly (restart_pod is stepped over). */
	t = (struct km_policy_target){.name = "prod:node//n7",
				      .cluster = "prod",
				      .kind = KM_KIND_NODE,
				      .state = KM_STATE_UNHEALTHY,
				      .cause =
					      "Node lease not renewed for 45s"};
	d = observe(s, t, T0);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	assert_int_equal(d.action, KM_ACTION_CORDON);
	assert_string_equal(d.act_on, "prod:node//n7");
	assert_int_equal(d.rung, 1);
	assert_non_null(strstr(d.reason, "restart_pod stepped over"));
	km_policy_set_free(s);
}

/* The kubelet's backoff: 10, 20, 40, ... capped at 300 s between the end
 * of one attempt and the next. */
static void test_backoff_sequence(void **state)
{
	static const int64_t want[] = {10, 20, 40, 80, 160, 300, 300, 300};
	struct km_policy_config c = pod_policy("loop");
	struct km_policy_set *s;
	struct km_policy_decision d;
	int64_t now = T0, next;

	(void)state;
	c.max_attempts = 20;
	s = set_of(&c, 1, 0);
	d = observe(s, pod("prod:pod/shop/web-1", KM_STATE_UNHEALTHY), now);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		now += 120 * S; /* the verify window */
		outcome(s, "prod:deployment/shop/web", KM_PHASE_NOT_RECOVERED,
			now, "retry");
		assert_int_equal(
			km_policy_due(s, now + want[i] * S - 1, &d, &next), 0);
		assert_int_equal(next, now + want[i] * S);
		now += want[i] * S;
		assert_int_equal(km_policy_due(s, now, &d, &next), 1);
		assert_int_equal(d.attempt, (int)i + 2);
	}
	km_policy_set_free(s);
}

/* After 10 minutes healthy everything is forgotten: the next failure is
 * acted on at once and the backoff starts at 10 s again. Healthy for
 * less is a relapse: it counts, and waits. */
static void test_backoff_reset(void **state)
{
	struct km_policy_config c = pod_policy("loop");
	struct km_policy_set *s;
	struct km_policy_decision d;
	struct km_policy_stats st;
	const char *key = "prod:deployment/shop/web";
	int64_t now = T0, next;

	(void)state;
	c.max_attempts = 20;
	s = set_of(&c, 1, 0);
	/* Three failures: the delay is 80 s now. */
	for (int i = 0; i < 3; i++) {
		if (i == 0)
			d = observe(s,
				    pod("prod:pod/shop/web-1",
					KM_STATE_UNHEALTHY),
				    now);
		else
			assert_int_equal(km_policy_due(s, now, &d, &next), 1);
		assert_int_equal(d.verdict, KM_POLICY_ACT);
		now += 60 * S;
		outcome(s, key, KM_PHASE_NOT_RECOVERED, now, "retry");
		now += 1000 * S;
	}
	assert_int_equal(km_policy_due(s, now, &d, &next), 1);
	assert_int_equal(d.attempt, 4);
	now += 30 * S;
	outcome(s, key, KM_PHASE_VERIFIED, now, "verified");
	/* The replacement is healthy for 30 s, then fails: a relapse,
	 * which waits the backoff (80 s from the verification). */
	d = observe(s, pod("prod:pod/shop/web-2", KM_STATE_HEALTHY), now);
	assert_string_equal(d.rule, "healthy");
	d = observe(s, pod("prod:pod/shop/web-2", KM_STATE_UNHEALTHY),
		    now + 30 * S);
	assert_int_equal(d.verdict, KM_POLICY_NONE);
	assert_string_equal(d.rule, "waiting");
	assert_int_equal(d.next_us, now + 80 * S);
	assert_int_equal(km_policy_due(s, now + 80 * S - 1, &d, &next), 0);
	now += 80 * S;
	assert_int_equal(km_policy_due(s, now, &d, &next), 1);
	assert_int_equal(d.attempt, 5); /* the relapse counted */
	now += 30 * S;
	outcome(s, key, KM_PHASE_VERIFIED, now, "verified");

	/* Healthy for 9 min 59 s is not enough: still tracked, and the
	 * relapse is attempt 6, not a fresh start. */
	observe(s, pod("prod:pod/shop/web-3", KM_STATE_HEALTHY), now);
	assert_int_equal(km_policy_due(s, now + 599 * S, &d, &next), 0);
	km_policy_get_stats(s, &st);
	assert_int_equal(st.tracked, 1);
	now += 599 * S;
	d = observe(s, pod("prod:pod/shop/web-3", KM_STATE_UNHEALTHY), now);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	assert_int_equal(d.attempt, 6);
	now += 30 * S;
	outcome(s, key, KM_PHASE_VERIFIED, now, "verified");

	/* Healthy for 10 minutes: forgotten. */
	observe(s, pod("prod:pod/shop/web-3", KM_STATE_HEALTHY), now);
	assert_int_equal(km_policy_due(s, now + 600 * S - 1, &d, &next), 0);
	assert_int_equal(next, now + 600 * S);
	now += 600 * S;
	assert_int_equal(km_policy_due(s, now, &d, &next), 0);
	km_policy_get_stats(s, &st);
	assert_int_equal(st.tracked, 0);
	assert_int_equal(next, INT64_MAX);
	d = observe(s, pod("prod:pod/shop/web-3", KM_STATE_UNHEALTHY), now);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	assert_int_equal(d.attempt, 1);
	now += 60 * S;
	outcome(s, key, KM_PHASE_NOT_RECOVERED, now, "retry");
	assert_int_equal(km_policy_due(s, now, &d, &next), 0);
	assert_int_equal(next, now + 10 * S);
	km_policy_set_free(s);
}

/* restart_pod, then the owner's rollout restart, then the pod's node's
 * cordon, each after 2 failed verifications; the last rung gets
 * maxAttempts (2), then the policy gives up and says so. A replacement
 * pod (a new name) climbs on where its predecessor left off. */
static void test_ladder(void **state)
{
	struct km_policy_config c = pod_policy("ladder");
	struct km_policy_set *s;
	struct km_policy_decision d;
	const char *key = "prod:deployment/shop/web";
	static const struct {
		int action;
		const char *act_on;
		int attempt;
		const char *rule;
	} steps[] = {
		{KM_ACTION_RESTART_POD, "prod:pod/shop/web-0", 1, "retry"},
		{KM_ACTION_RESTART_POD, "prod:pod/shop/web-1", 2, "escalated"},
		{KM_ACTION_ROLLOUT_RESTART, "prod:deployment/shop/web", 1,
		 "retry"},
		{KM_ACTION_ROLLOUT_RESTART, "prod:deployment/shop/web", 2,
		 "escalated"},
		{KM_ACTION_CORDON, "prod:node//n1", 1, "retry"},
		{KM_ACTION_CORDON, "prod:node//n1", 2, "gave_up"},
	};
	int64_t now = T0, next;
	char name[64];

	(void)state;
	c.kinds |= 1u << KM_KIND_NODE;
	c.ladder[1] = KM_ACTION_ROLLOUT_RESTART;
	c.ladder[2] = KM_ACTION_CORDON;
	c.n_ladder = 3;
	c.escalate_after = 2;
	c.max_attempts = 2;
	s = set_of(&c, 1, 0);
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		/* Each failure leaves a new pod of the owner, unhealthy. */
		snprintf(name, sizeof name, "prod:pod/shop/web-%zu", i);
		if (i > 0) {
			observe(s, pod(name, KM_STATE_UNHEALTHY), now);
			assert_int_equal(
				km_policy_due(s, now + 600 * S, &d, &next), 1);
			now += 600 * S;
		} else {
			d = observe(s, pod(name, KM_STATE_UNHEALTHY), now);
		}
		assert_int_equal(d.verdict, KM_POLICY_ACT);
		assert_int_equal(d.action, steps[i].action);
		assert_string_equal(d.act_on, steps[i].act_on);
		assert_int_equal(d.attempt, steps[i].attempt);
		assert_string_equal(d.key, key);
		now += 60 * S;
		assert_int_equal(
			km_policy_outcome(s, key,
					  i % 2 ? KM_PHASE_FAILED
						: KM_PHASE_NOT_RECOVERED,
					  now, &d),
			0);
		assert_string_equal(d.rule, steps[i].rule);
		/* The old pod goes away. */
		observe(s, pod(name, KM_STATE_DELETED), now);
	}
	assert_non_null(strstr(d.reason, "gives up"));
	assert_non_null(strstr(d.reason, "cordon failed 2 times"));
	/* Given up: the next unhealthy pod gets nothing, ever. */
	d = observe(s, pod("prod:pod/shop/web-9", KM_STATE_UNHEALTHY), now);
	assert_int_equal(d.verdict, KM_POLICY_NONE);
	assert_string_equal(d.rule, "gave_up");
	assert_int_equal(km_policy_due(s, now + 86400 * S, &d, &next), 0);
	{
		struct km_policy_stats st;

		km_policy_get_stats(s, &st);
		assert_int_equal(st.gave_up, 1);
		assert_int_equal(st.acts, 6);
	}
	km_policy_set_free(s);
}

/* The replacement of a restarted pod crash-loops before its predecessor
 * is gone (a pod that takes its grace period to stop is still UNHEALTHY
 * when its replacement fails): the newest unhealthy pod is the subject,
 * so the ladder climbs on with the replacement, after the backoff —
 * the predecessor's deletion does not end it. Another pod's news that is
 * not UNHEALTHY changes nothing. */
static void test_ladder_replacement_first(void **state)
{
	struct km_policy_config c = pod_policy("loop");
	struct km_policy_set *s;
	struct km_policy_decision d;
	const char *key = "prod:deployment/shop/web";
	int64_t now = T0, next;

	(void)state;
	c.label_selector = "app=web";
	c.max_attempts = 10;
	s = set_of(&c, 1, 0);
	d = observe(s, pod("prod:pod/shop/web-1", KM_STATE_UNHEALTHY), now);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	assert_string_equal(d.act_on, "prod:pod/shop/web-1");
	now += S;
	d = observe(s, pod("prod:pod/shop/web-2", KM_STATE_UNHEALTHY), now);
	assert_int_equal(d.verdict, KM_POLICY_NONE);
	assert_string_equal(d.rule, "in_flight");
	assert_string_equal(d.subject, "prod:pod/shop/web-2");
	/* A pod of the owner the policy does not match is not the key's
	 * subject, UNHEALTHY or not. */
	{
		struct km_policy_target t =
			pod("prod:pod/shop/web-x", KM_STATE_UNHEALTHY);

		t.labels = NULL;
		t.n_labels = 0;
		d = observe(s, t, now);
		assert_int_equal(d.verdict, KM_POLICY_NONE);
		assert_string_equal(d.rule, "other_pod");
	}
	now += 5 * S;
	d = observe(s, pod("prod:pod/shop/web-1", KM_STATE_DELETED), now);
	assert_int_equal(d.verdict, KM_POLICY_NONE);
	assert_string_equal(d.rule, "other_pod");
	now += 60 * S;
	outcome(s, key, KM_PHASE_NOT_RECOVERED, now, "retry");
	assert_int_equal(km_policy_due(s, now + 10 * S - 1, &d, &next), 0);
	assert_int_equal(next, now + 10 * S);
	now += 10 * S;
	assert_int_equal(km_policy_due(s, now, &d, &next), 1);
	assert_int_equal(d.action, KM_ACTION_RESTART_POD);
	assert_string_equal(d.act_on, "prod:pod/shop/web-2");
	assert_int_equal(d.attempt, 2);
	/* web-2 is unhealthy since web-1 was: one workload, broken all
	 * along. */
	assert_non_null(strstr(d.reason, "UNHEALTHY for 76s"));
	now += 60 * S;
	outcome(s, key, KM_PHASE_NOT_RECOVERED, now, "retry");
	/* web-3 replaces web-2 and is healthy, web-2 still not gone: the
	 * subject stays web-2 (the other pod's health is no news of it);
	 * web-2 goes, and the key waits for the next unhealthy pod. */
	d = observe(s, pod("prod:pod/shop/web-3", KM_STATE_HEALTHY), now);
	assert_string_equal(d.rule, "other_pod");
	assert_int_equal(km_policy_due(s, now + 20 * S, &d, &next), 1);
	assert_string_equal(d.act_on, "prod:pod/shop/web-2");
	outcome(s, key, KM_PHASE_NOT_RECOVERED, now + 21 * S, "retry");
	d = observe(s, pod("prod:pod/shop/web-2", KM_STATE_DELETED),
		    now + 22 * S);
	assert_string_equal(d.rule, "healthy");
	assert_int_equal(km_policy_due(s, now + 500 * S, &d, &next), 0);
	km_policy_set_free(s);
}

/* Two pods of an owner broken: the one acted on is replaced and its
 * recovery VERIFIED, but the other became the subject meanwhile and is
 * UNHEALTHY still — the workload is not healthy: its turn comes after the
 * backoff, on the same rung, its attempt not counted as a failure. */
static void test_verified_while_another_pod_is_broken(void **state)
{
	struct km_policy_config c = pod_policy("loop");
	struct km_policy_set *s;
	struct km_policy_decision d;
	const char *key = "prod:deployment/shop/web";
	int64_t now = T0, next;

	(void)state;
	s = set_of(&c, 1, 0);
	d = observe(s, pod("prod:pod/shop/web-1", KM_STATE_UNHEALTHY), now);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	assert_string_equal(d.act_on, "prod:pod/shop/web-1");
	now += S;
	d = observe(s, pod("prod:pod/shop/web-2", KM_STATE_UNHEALTHY), now);
	assert_string_equal(d.rule, "in_flight");
	assert_true(d.matched);
	/* The workload shares the pods' key, but the policy (of pods) does
	 * not match it: its news names the key's policy, not as its own. */
	{
		struct km_policy_target w = pod(key, KM_STATE_UNHEALTHY);

		w.kind = KM_KIND_DEPLOYMENT;
		w.owner = NULL;
		d = observe(s, w, now);
		assert_string_equal(d.rule, "other_pod");
		assert_string_equal(d.policy, "loop");
		assert_false(d.matched);
	}
	/* web-1's replacement is healthy, web-1 goes: VERIFIED. */
	d = observe(s, pod("prod:pod/shop/web-3", KM_STATE_HEALTHY), now + S);
	assert_string_equal(d.rule, "other_pod");
	d = observe(s, pod("prod:pod/shop/web-1", KM_STATE_DELETED),
		    now + 2 * S);
	assert_string_equal(d.rule, "other_pod");
	now += 10 * S;
	outcome(s, key, KM_PHASE_VERIFIED, now, "verified");
	assert_int_equal(km_policy_due(s, now + 10 * S - 1, &d, &next), 0);
	assert_int_equal(next, now + 10 * S);
	assert_int_equal(km_policy_due(s, now + 10 * S, &d, &next), 1);
	assert_int_equal(d.action, KM_ACTION_RESTART_POD);
	assert_string_equal(d.act_on, "prod:pod/shop/web-2");
	assert_int_equal(d.rung, 0);
	assert_int_equal(d.attempt, 1);
	/* This one's VERIFIED, with no other pod broken, is the key's. */
	outcome(s, key, KM_PHASE_VERIFIED, now + 20 * S, "verified");
	d = observe(s, pod("prod:pod/shop/web-2", KM_STATE_DELETED),
		    now + 21 * S);
	assert_int_equal(km_policy_due(s, now + 500 * S, &d, &next), 0);
	assert_int_equal(d.verdict, KM_POLICY_NONE);
	km_policy_set_free(s);
}

/* A pod without a workload owner steps over rollout_restart; one on no
 * node has no cordon rung: the ladder is spent, and the policy says so. */
static void test_ladder_steps_over(void **state)
{
	struct km_policy_config c = pod_policy("bare");
	struct km_policy_set *s;
	struct km_policy_decision d;
	struct km_policy_target t =
		pod("prod:pod/shop/solo", KM_STATE_UNHEALTHY);
	int64_t next;

	(void)state;
	c.ladder[1] = KM_ACTION_ROLLOUT_RESTART;
	c.ladder[2] = KM_ACTION_CORDON;
	c.n_ladder = 3;
	c.escalate_after = 1;
	s = set_of(&c, 1, 0);
	t.owner = "prod:job/shop/batch";
	t.node = NULL;
	d = observe(s, t, T0);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	assert_string_equal(d.key, "prod:job/shop/batch");
	outcome(s, "prod:job/shop/batch", KM_PHASE_NOT_RECOVERED, T0 + S,
		"escalated");
	assert_int_equal(km_policy_due(s, T0 + 100 * S, &d, &next), 0);
	assert_int_equal(next, INT64_MAX);
	d = observe(s, t, T0 + 100 * S);
	assert_string_equal(d.rule, "gave_up");
	km_policy_set_free(s);
}

/* Flapping targets are never acted on, not even when due; once the flag
 * clears they are. */
static void test_flapping(void **state)
{
	struct km_policy_config c = pod_policy("flap");
	struct km_policy_set *s;
	struct km_policy_decision d;
	struct km_policy_target t =
		pod("prod:pod/shop/web-1", KM_STATE_UNHEALTHY);
	int64_t next;

	(void)state;
	c.unhealthy_for_ms = 5000;
	s = set_of(&c, 1, 0);
	t.flapping = true;
	d = observe(s, t, T0);
	assert_int_equal(d.verdict, KM_POLICY_NONE);
	assert_string_equal(d.rule, "flapping");
	assert_int_equal(km_policy_due(s, T0 + 3600 * S, &d, &next), 0);
	assert_int_equal(next, INT64_MAX);
	t.flapping = false;
	d = observe(s, t, T0 + 3600 * S);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	km_policy_set_free(s);
}

/* Outcomes: only for a key with an action in flight; SKIPPED counts no
 * failure. */
static void test_outcomes(void **state)
{
	struct km_policy_config c = pod_policy("o");
	struct km_policy_set *s;
	struct km_policy_decision d;
	const char *key = "prod:deployment/shop/web";
	int64_t next;

	(void)state;
	c.max_attempts = 1;
	s = set_of(&c, 1, 0);
	assert_int_equal(km_policy_outcome(s, key, KM_PHASE_VERIFIED, T0, &d),
			 KM_ENOTFOUND);
	d = observe(s, pod("prod:pod/shop/web-1", KM_STATE_UNHEALTHY), T0);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	assert_int_equal(km_policy_outcome(s, key, KM_PHASE_QUEUED, T0, &d),
			 KM_EINVAL);
	outcome(s, key, KM_PHASE_SKIPPED, T0, "skipped");
	assert_int_equal(km_policy_outcome(s, key, KM_PHASE_SKIPPED, T0, &d),
			 KM_ENOTFOUND);
	/* Skipped: again after the backoff, still attempt 1. */
	assert_int_equal(km_policy_due(s, T0 + 10 * S, &d, &next), 1);
	assert_int_equal(d.attempt, 1);
	outcome(s, key, KM_PHASE_FAILED, T0 + 20 * S, "gave_up");
	km_policy_set_free(s);
}

/* At most max_targets keys; past it nothing is acted on, counted. */
static void test_bounds(void **state)
{
	struct km_policy_config c = pod_policy("b");
	struct km_policy_set *s;
	struct km_policy_decision d;
	struct km_policy_stats st;
	struct km_policy_target t = pod("prod:pod/shop/a", KM_STATE_UNHEALTHY);

	(void)state;
	c.unhealthy_for_ms = 1000;
	s = set_of(&c, 1, 2);
	t.owner = NULL;
	assert_string_equal(observe(s, t, T0).rule, "waiting");
	t.name = "prod:pod/shop/b";
	assert_string_equal(observe(s, t, T0).rule, "waiting");
	t.name = "prod:pod/shop/c";
	d = observe(s, t, T0);
	assert_string_equal(d.rule, "full");
	assert_non_null(strstr(d.reason, "track 2 targets"));
	km_policy_get_stats(s, &st);
	assert_int_equal(st.tracked, 2);
	assert_int_equal(st.max_targets, 2);
	assert_int_equal(st.refused_full, 1);
	/* A deleted one is forgotten after reset_after: room again. */
	t.name = "prod:pod/shop/a";
	t.state = KM_STATE_DELETED;
	observe(s, t, T0);
	while (km_policy_due(s, T0 + 600 * S, &d, NULL) == 1)
		; /* b's action, then a forgotten */
	t.name = "prod:pod/shop/c";
	t.state = KM_STATE_UNHEALTHY;
	assert_string_equal(observe(s, t, T0 + 600 * S).rule, "waiting");
	km_policy_get_stats(s, &st);
	assert_int_equal(st.tracked, 2);
	assert_int_equal(st.refused_full, 1);
	km_policy_set_free(s);
}

/* The rules of a policy, with the field named. */
static void test_config_check(void **state)
{
	static const char *const empty[] = {""};
	struct km_policy_config c, two[2];
	struct km_policy_set *s = NULL;
	struct km_error err = {0};
	int field, index;

	(void)state;
	c = pod_policy("Bad_Name");
	assert_int_equal(km_policy_config_check(&c, &field, &index, &err),
			 KM_EINVAL);
	assert_int_equal(field, KM_PF_NAME);
	c = pod_policy("x");
	c.ladder[0] = KM_ACTION_CORDON;
	c.kinds = 1u << KM_KIND_DEPLOYMENT;
	assert_int_equal(km_policy_config_check(&c, &field, &index, &err),
			 KM_EINVAL);
	assert_int_equal(field, KM_PF_LADDER);
	assert_int_equal(index, 0);
	assert_string_equal(err.msg, "ladder[0]: cordon does not apply to "
				     "deployment (the kinds this policy "
				     "matches)");
	c = pod_policy("x");
	c.ladder[1] = KM_ACTION_UNCORDON;
	c.kinds |= 1u << KM_KIND_NODE;
	c.n_ladder = 2;
	assert_int_equal(km_policy_config_check(&c, &field, &index, &err),
			 KM_EINVAL);
	assert_int_equal(index, 1);
	assert_non_null(strstr(err.msg, "uncordon heals nothing"));
	c = pod_policy("x");
	c.namespaces = empty;
	c.n_namespaces = 1;
	assert_int_equal(km_policy_config_check(&c, &field, &index, &err),
			 KM_EINVAL);
	assert_int_equal(field, KM_PF_NAMESPACES);
	c = pod_policy("x");
	c.label_selector = "app in (";
	assert_int_equal(km_policy_config_check(&c, &field, &index, &err),
			 KM_EINVAL);
	assert_int_equal(field, KM_PF_SELECTOR);
	c = pod_policy("x");
	c.backoff.initial_ms = 400 * 1000;
	assert_int_equal(km_policy_config_check(&c, &field, &index, &err),
			 KM_EINVAL);
	assert_int_equal(field, KM_PF_BACKOFF);
	c = pod_policy("x");
	c.kinds = 1u << KM_KIND_SERVICE;
	assert_int_equal(km_policy_config_check(&c, &field, &index, &err),
			 KM_EINVAL);
	assert_int_equal(field, KM_PF_KINDS);
	c = pod_policy("x");
	assert_int_equal(km_policy_config_check(&c, &field, &index, &err), 0);
	c.kinds = 1u << KM_KIND_PROBE;
	assert_int_equal(km_policy_config_check(&c, &field, &index, &err), 0);
	c.kinds = (1u << KM_KIND_PROBE) | (1u << KM_KIND_SERVICE);
	assert_int_equal(km_policy_config_check(&c, &field, &index, &err),
			 KM_EINVAL);
	assert_int_equal(field, KM_PF_KINDS);
	assert_non_null(strstr(err.msg, "daemonset, probe"));

	two[0] = pod_policy("same");
	two[1] = pod_policy("same");
	assert_int_equal(km_policy_set_new(two, 2, NULL, &s, &err), KM_EINVAL);
	assert_null(s);
	assert_string_equal(err.msg, "policies[1].name: duplicate name "
				     "\"same\": policies[0] has it already");
	two[1] = pod_policy("other");
	two[1].max_attempts = 0;
	assert_int_equal(km_policy_set_new(two, 2, NULL, &s, &err), KM_EINVAL);
	assert_string_equal(err.msg, "policies[1]: maxAttempts: must be "
				     "between 1 and 100");
}

/* A pod's mirrored liveness probe stands for its pod; one of its pod's
 * owner's ladder; a readiness probe is not matched; the pod's deletion is
 * its probe's; a defined probe has nothing to restart. */
static struct km_policy_target probe(const char *name, const char *pod,
				     int state)
{
	return (struct km_policy_target){
		.name = name,
		.cluster = "prod",
		.kind = KM_KIND_PROBE,
		.ns = "shop",
		.owner = pod,
		.node = "n1",
		.pod_owner = pod ? "prod:deployment/shop/web" : NULL,
		.state = state,
		.cause = "HTTP probe failed with statuscode: 500",
		.cause_seq = 9,
	};
}

static void test_probe(void **state)
{
	struct km_policy_config c = pod_policy("liveness");
	struct km_policy_set *s;
	struct km_policy_decision d;
	struct km_policy_target t;
	const char *key = "prod:deployment/shop/web";
	int64_t now = T0, next;

	(void)state;
	c.kinds = 1u << KM_KIND_PROBE;
	c.ladder[1] = KM_ACTION_ROLLOUT_RESTART;
	c.ladder[2] = KM_ACTION_CORDON;
	c.n_ladder = 3;
	c.escalate_after = 2;
	s = set_of(&c, 1, 0);
	assert_true(
		km_policy_action_applies(KM_ACTION_RESTART_POD, KM_KIND_PROBE));
	assert_true(km_policy_action_applies(KM_ACTION_DRAIN, KM_KIND_PROBE));
	assert_false(km_policy_action_applies(KM_ACTION_RESTART_POD,
					      KM_KIND_SERVICE));

	/* A readiness probe restarts nothing. */
	d = observe(s,
		    probe("prod:probe/shop/web-0.app.readiness",
			  "prod:pod/shop/web-0", KM_STATE_UNHEALTHY),
		    now);
	assert_string_equal(d.rule, "no_policy");

	/* The liveness probe: its pod, on its pod's owner's ladder. */
	d = observe(s,
		    probe("prod:probe/shop/web-0.app.liveness",
			  "prod:pod/shop/web-0", KM_STATE_UNHEALTHY),
		    now);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	assert_int_equal(d.action, KM_ACTION_RESTART_POD);
	assert_string_equal(d.act_on, "prod:pod/shop/web-0");
	assert_int_equal(d.act_on_kind, KM_KIND_POD);
	assert_string_equal(d.key, key);
	assert_string_equal(d.subject, "prod:probe/shop/web-0.app.liveness");
	assert_string_equal(d.requester, "policy:liveness");
	outcome(s, key, KM_PHASE_NOT_RECOVERED, now + S, "retry");

	/* The probe's own deletion, after its pod's owner is forgotten,
	 * keys on the pod: it does not end the subject; the pod's does (or
	 * the key would act on a pod that is gone, after the backoff). */
	t = probe("prod:probe/shop/web-0.app.liveness", "prod:pod/shop/web-0",
		  KM_STATE_DELETED);
	t.pod_owner = NULL;
	assert_string_equal(observe(s, t, now + 2 * S).key,
			    "prod:pod/shop/web-0");
	d = observe(s, pod("prod:pod/shop/web-0", KM_STATE_DELETED),
		    now + 3 * S);
	assert_string_equal(d.key, key);
	assert_int_equal(km_policy_due(s, now + 11 * S, &d, &next), 0);
	/* The replacement's probe fails: it climbs on. */
	d = observe(s,
		    probe("prod:probe/shop/web-1.app.liveness",
			  "prod:pod/shop/web-1", KM_STATE_UNHEALTHY),
		    now + 4 * S);
	assert_string_equal(d.rule, "waiting"); /* the backoff: 10 s */
	/* A pod's news is not its probe's: the subject stays. */
	d = observe(s, pod("prod:pod/shop/web-1", KM_STATE_HEALTHY),
		    now + 5 * S);
	assert_string_equal(d.rule, "other_pod");
	assert_int_equal(km_policy_due(s, now + 11 * S, &d, &next), 1);
	assert_string_equal(d.act_on, "prod:pod/shop/web-1");
	assert_int_equal(d.attempt, 2);
	outcome(s, key, KM_PHASE_FAILED, now + 12 * S, "escalated");
	/* rollout_restart: the pod's owner. */
	assert_int_equal(km_policy_due(s, now + 600 * S, &d, &next), 1);
	assert_int_equal(d.action, KM_ACTION_ROLLOUT_RESTART);
	assert_string_equal(d.act_on, key);
	assert_int_equal(d.act_on_kind, KM_KIND_DEPLOYMENT);
	outcome(s, key, KM_PHASE_FAILED, now + 601 * S, "retry");
	assert_int_equal(km_policy_due(s, now + 1200 * S, &d, &next), 1);
	outcome(s, key, KM_PHASE_FAILED, now + 1201 * S, "escalated");
	/* cordon: the pod's node. */
	assert_int_equal(km_policy_due(s, now + 1800 * S, &d, &next), 1);
	assert_int_equal(d.action, KM_ACTION_CORDON);
	assert_string_equal(d.act_on, "prod:node//n1");
	km_policy_set_free(s);

	/* Without the pod's owner known: the pod's own ladder; its rollout
	 * restart is stepped over. */
	c.ladder[0] = KM_ACTION_ROLLOUT_RESTART;
	c.ladder[1] = KM_ACTION_RESTART_POD;
	c.n_ladder = 2;
	s = set_of(&c, 1, 0);
	t = probe("prod:probe/shop/solo.app.liveness", "prod:pod/shop/solo",
		  KM_STATE_UNHEALTHY);
	t.pod_owner = NULL;
	d = observe(s, t, now);
	assert_int_equal(d.verdict, KM_POLICY_ACT);
	assert_string_equal(d.key, "prod:pod/shop/solo");
	assert_int_equal(d.action, KM_ACTION_RESTART_POD);
	assert_string_equal(d.act_on, "prod:pod/shop/solo");
	assert_non_null(strstr(d.reason, "rollout_restart stepped over: the "
					 "probe's pod has no Deployment"));

	/* A defined probe: no pod, nothing to restart. */
	d = observe(s, probe("prod:probe//checkout", NULL, KM_STATE_UNHEALTHY),
		    now);
	assert_int_equal(d.verdict, KM_POLICY_NONE);
	assert_string_equal(d.rule, "gave_up");
	assert_string_equal(d.key, "prod:probe//checkout");
	assert_non_null(strstr(d.reason, "a defined probe"));
	km_policy_set_free(s);
}

/* Many keys acted on at once (none of them in the heap while in flight),
 * then all back in it: the heap has room for every entry, not only for
 * those in it when the entry was made (bench/recovery_latency.sh, 1,000
 * pods at once: a heap overflow). */
static void test_many_in_flight(void **state)
{
	struct km_policy_config c = pod_policy("many");
	struct km_policy_set *s;
	struct km_policy_decision d;
	struct km_policy_target t;
	char name[64], owner[64];
	int64_t next;
	int n = 0;

	(void)state;
	s = set_of(&c, 1, 0);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof name, "prod:pod/shop/w-%d-x", i);
		snprintf(owner, sizeof owner, "prod:deployment/shop/w-%d", i);
		t = pod(name, KM_STATE_UNHEALTHY);
		t.owner = owner;
		d = observe(s, t, T0);
		assert_int_equal(d.verdict, KM_POLICY_ACT);
	}
	for (int i = 0; i < 300; i++) {
		snprintf(owner, sizeof owner, "prod:deployment/shop/w-%d", i);
		outcome(s, owner, KM_PHASE_SKIPPED, T0 + S, "skipped");
	}
	while (km_policy_due(s, T0 + 20 * S, &d, &next) == 1) {
		outcome(s, d.key, KM_PHASE_SKIPPED, T0 + 20 * S, "skipped");
		n++;
	}
	assert_int_equal(n, 300);
	km_policy_set_free(s);
}

/* From a health event's target and transition. */
static void test_target_from(void **state)
{
	struct km_target tg = {.name = "prod:pod/shop/web-1",
			       .cluster = "prod",
			       .kind = KM_KIND_POD,
			       .ns = "shop",
			       .owner = "prod:deployment/shop/web",
			       .node = "n1",
			       .state = KM_STATE_HEALTHY};
	struct km_transition tr = {.seq = 42,
				   .to_state = KM_STATE_UNHEALTHY,
				   .flapping = true,
				   .cause = "CrashLoopBackOff",
				   .target_name = "prod:pod/shop/web-1"};
	struct km_policy_target t;

	(void)state;
	km_policy_target_from(&tg, &tr, &t);
	assert_string_equal(t.name, "prod:pod/shop/web-1");
	assert_int_equal(t.kind, KM_KIND_POD);
	assert_int_equal(t.state, KM_STATE_UNHEALTHY);
	assert_true(t.flapping);
	assert_string_equal(t.cause, "CrashLoopBackOff");
	assert_int_equal(t.cause_seq, 42);
	assert_string_equal(t.node, "n1");
	km_policy_target_from(NULL, &tr, &t);
	assert_int_equal(t.kind, KM_KIND_POD); /* from the name */
	assert_null(t.owner);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_duration_due),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_backoff_sequence),
		cmocka_unit_test(test_backoff_reset),
		cmocka_unit_test(test_ladder),
		cmocka_unit_test(test_ladder_replacement_first),
		cmocka_unit_test(test_verified_while_another_pod_is_broken),
		cmocka_unit_test(test_ladder_steps_over),
		cmocka_unit_test(test_flapping),
		cmocka_unit_test(test_outcomes),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_target_from),
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_many_in_flight),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
