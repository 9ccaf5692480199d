/*
 * Automatic recovery (recovery_internal.h): the hub hands every committed
 * transition to the engine's subscription (on its thread); a copy goes to
 * the loop, where the policies judge it (km_policy.h) and the storm guard
 * counts it (km_budget.h, km_zones.h). A decision to act becomes a
 * recovery as a person's does — checked against the cluster's cache,
 * admitted by the budget, recorded (REQUESTED, or SKIPPED naming the rule
 * that refused it, or DRY_RUN), then dispatched — requested by
 * "policy:NAME" and linked to the transition that caused it. Its end goes
 * back to the policy (the next rung, the backoff).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_kube_source.h"
#include "km_log.h"
#include "recovery_internal.h"

/* A transition, copied for the loop: its strings and labels in one block. */
struct tev {
	struct km_recovery_engine *e;
	struct km_policy_target t;
};

static char *put_str(char **at, const char *v)
{
	char *d = *at;
	size_t n = strlen(v) + 1;

	memcpy(d, v, n);
	*at += n;
	return d;
}

static struct tev *tev_new(struct km_recovery_engine *e,
			   const struct km_health_event *ev)
{
	struct km_policy_target t;
	const char *strs[6];
	size_t len = sizeof(struct tev), nl;
	struct tev *x;
	struct km_kv *kv;
	char *at;

	km_policy_target_from(ev->target, ev->t, &t);
	strs[0] = t.name;
	strs[1] = t.cluster;
	strs[2] = t.ns;
	strs[3] = t.owner;
	strs[4] = t.node;
	strs[5] = t.cause;
	nl = t.labels ? t.n_labels : 0;
	for (size_t i = 0; i < 6; i++)
		len += strs[i] ? strlen(strs[i]) + 1 : 0;
	len += nl * sizeof *kv;
	for (size_t i = 0; i < nl; i++)
		len += strlen(t.labels[i].key) + strlen(t.labels[i].value) + 2;
	if (!t.name || !(x = malloc(len)))
		return NULL;
	x->e = e;
	x->t = t;
	kv = (struct km_kv *)(x + 1);
	at = (char *)(kv + nl);
	for (size_t i = 0; i < nl; i++) {
		kv[i].key = put_str(&at, t.labels[i].key);
		kv[i].value = put_str(&at, t.labels[i].value);
	}
	x->t.labels = nl ? kv : NULL;
	x->t.n_labels = nl;
	x->t.name = put_str(&at, strs[0]);
	x->t.cluster = strs[1] ? put_str(&at, strs[1]) : NULL;
	x->t.ns = strs[2] ? put_str(&at, strs[2]) : NULL;
	x->t.owner = strs[3] ? put_str(&at, strs[3]) : NULL;
	x->t.node = strs[4] ? put_str(&at, strs[4]) : NULL;
	x->t.cause = strs[5] ? put_str(&at, strs[5]) : NULL;
	return x;
}

/* The due timer at next_us (policy time: monotonic µs), if earlier. */
static void arm_due(struct km_recovery_engine *e, int64_t next_us)
{
	int64_t at;

	if (next_us <= 0 || next_us == INT64_MAX || e->stopping)
		return;
	at = next_us * 1000;
	if (!km_timer_armed(&e->due) || e->due.due > at)
		km_loop_timer_set(e->loop, &e->due, at);
}

void rec_policy_told(struct km_recovery_engine *e, const char *key, int phase)
{
	struct km_policy_decision d;

	if (!e->policies)
		return;
	if (phase == KM_PHASE_CANCELLED || phase == KM_PHASE_DRY_RUN)
		phase = KM_PHASE_SKIPPED;
	if (km_policy_outcome(e->policies, key, phase, mono_us(), &d))
		return;
	if (!strcmp(d.rule, "gave_up"))
		km_log(KM_LOG_WARN, "recovery: a policy gave up on a target",
		       "policy", d.policy ? d.policy : "", "target", key, "why",
		       d.reason, NULL);
	arm_due(e, d.next_us);
}

/* A policy's recovery is recorded: REQUESTED goes on as a person's;
 * SKIPPED and DRY_RUN end here. */
static void policy_created(struct job *j, int rc, const struct km_error *err)
{
	struct km_recovery_engine *e = j->e;

	if (rc) {
		km_log(KM_LOG_ERROR,
		       "recovery: a policy's recovery cannot be "
		       "recorded",
		       "target", j->r.target, "error", err->msg, NULL);
		j->r.phase = KM_PHASE_SKIPPED;
	}
	if (rc || j->r.phase != KM_PHASE_REQUESTED) {
		rec_job_done(j);
		return;
	}
	km_log(KM_LOG_INFO, "recovery: requested by a policy", "id",
	       KM_I(j->r.id), "target", j->r.target, "action",
	       km_action_name(j->r.action), "requester", j->r.requester, NULL);
	j->verify = rec_verify_target(e, j);
	if (rec_describe(e, j))
		j->failed_at_start = true;
	km_list_del(&j->node); /* take puts it where it belongs */
	rec_take(e->loop, j);
}

/* A policy's job: when it was decided, and — for a pod's probe — which
 * of the replacement's probes verification waits for. */
static void job_decided(struct km_recovery_engine *e, struct job *j,
			const struct km_policy_decision *d)
{
	struct km_target_name tn;
	char why[128];
	const char *dot, *end;

	j->decided_ns = e->decided_ns ? e->decided_ns : km_mono_ns();
	if ((d->action != KM_ACTION_RESTART_POD &&
	     d->action != KM_ACTION_ROLLOUT_RESTART) ||
	    km_target_name_parse(d->subject, &tn, why, sizeof why) ||
	    tn.kind != KM_KIND_PROBE)
		return;
	/* "POD.CONTAINER.KIND": a container's name has no dot. */
	end = tn.name + tn.name_len;
	for (dot = end - 1; dot > tn.name && *dot != '.'; dot--)
		;
	for (dot--; dot > tn.name && *dot != '.'; dot--)
		;
	if (dot > tn.name)
		j->probe_sfx =
			km_arena_strndup(&j->a, dot, (size_t)(end - dot));
}

/* An ACT decision: a recovery, checked, admitted or refused, recorded. */
static void act(struct km_recovery_engine *e,
		const struct km_policy_decision *d)
{
	struct km_recovery r = {
		.target = d->act_on,
		.action = d->action,
		.reason = d->reason,
		.requester = d->requester,
		.policy = d->policy,
		.idempotency_key = "",
		.cause_seq = d->cause_seq,
		.phase = KM_PHASE_REQUESTED,
		.dry_run = e->o.dry_run,
	};
	struct km_error err = {0};
	struct km_arena a;
	struct job *j;
	bool admitted = false;
	int rc;

	km_arena_init(&a, 1024);
	rc = rec_check_on_loop(e, &r, &a, &err);
	if (rc == KM_EUNAVAIL) { /* not this replica's to act on */
		km_arena_free(&a);
		rec_policy_told(e, d->key, KM_PHASE_SKIPPED);
		return;
	}
	if (rc) {
		r.phase = KM_PHASE_SKIPPED;
		r.skip_rule = r.last_error = err.msg;
	} else if (e->budget) {
		struct km_budget_request q = {.cluster = r.cluster,
					      .target = r.target,
					      .action = r.action,
					      .zone = km_zones_of(e->zones,
								  r.target),
					      .policy = d->policy,
					      .automatic = true};
		struct km_budget_storm storm;
		struct km_budget_verdict v = {.storm = &storm};

		if (km_budget_admit(e->budget, &q, mono_us(), &v)) {
			r.phase = KM_PHASE_SKIPPED;
			r.skip_rule = r.last_error = "the budget failed";
		} else if (!v.ok) {
			if (v.refusal == KM_BUDGET_STORM)
				km_storms_refused(e->storms, &storm);
			r.phase = KM_PHASE_SKIPPED;
			r.skip_rule = r.last_error =
				km_arena_strdup(&a, v.rule);
		} else {
			admitted = true;
		}
	}
	if (r.phase == KM_PHASE_REQUESTED && r.dry_run) {
		r.phase = KM_PHASE_DRY_RUN;
		r.last_error = "dry run: every check passed; nothing was sent";
	}
	if (admitted && r.phase != KM_PHASE_REQUESTED) {
		km_budget_release(e->budget, r.target);
		admitted = false;
	}
	j = rec_job_new(e, &r);
	km_arena_free(&a);
	if (!j || !(j->policy_key = strdup(d->key))) {
		if (j)
			rec_job_free(j);
		if (admitted)
			km_budget_release(e->budget, d->act_on);
		rec_policy_told(e, d->key, KM_PHASE_SKIPPED);
		return;
	}
	j->admitted = admitted;
	job_decided(e, j, d);
	pthread_mutex_lock(&e->mu);
	e->accepted++;
	e->writes++;
	pthread_mutex_unlock(&e->mu);
	km_list_add_tail(&e->active, &j->node);
	memset(&j->u, 0, sizeof j->u);
	j->then = policy_created;
	j->w_pending = true;
	rc = km_store_create_recovery_async(e->o.store, &j->r, &j->a, NULL,
					    rec_write_done, j);
	if (rc) {
		km_error_set(&err, rc, "the store refused the recovery");
		rec_write_done(j, rc,
			       &err); /* lands through the loop, as any */
	}
}

/* The storm guard counts the policy's members. */
static void storm_member(struct km_recovery_engine *e, const char *policy,
			 const struct km_policy_target *t)
{
	struct km_budget_member m = {
		.group = KM_BUDGET_POLICY,
		.name = policy,
		.cluster = t->cluster ? t->cluster : "",
		.target = t->name,
		.unhealthy = t->state == KM_STATE_UNHEALTHY,
		.gone = t->state == KM_STATE_DELETED,
	};
	struct km_budget_storm_change c = {0};

	if (e->budget && !km_budget_target_state(e->budget, &m, mono_us(), &c))
		km_storms_change(e->storms, &c);
}

static void judge_siblings(struct km_recovery_engine *e,
			   const struct km_policy_target *t);

/* The Kubernetes object behind a target, as the cluster's cache has it:
 * NULL when it is none (a probe), or gone. Valid until the cache
 * changes: use it at once. */
static const struct km_kube_object *object_of(struct km_recovery_engine *e,
					      const struct km_policy_target *t)
{
	static const enum km_kube_resource res[KM_KIND_MAX + 1] = {
		[KM_KIND_NODE] = KM_RES_NODE,
		[KM_KIND_POD] = KM_RES_POD,
		[KM_KIND_DEPLOYMENT] = KM_RES_DEPLOYMENT,
		[KM_KIND_STATEFULSET] = KM_RES_STATEFULSET,
		[KM_KIND_DAEMONSET] = KM_RES_DAEMONSET,
	};
	struct km_target_parts tn;
	char why[128];
	struct km_kube_source *src;

	if (t->kind <= 0 || t->kind > KM_KIND_MAX ||
	    (!res[t->kind] && t->kind != KM_KIND_NODE) ||
	    km_target_name_split(t->name, &tn, why, sizeof why))
		return NULL;
	src = km_kube_cluster_source(e->o.kube, tn.cluster);
	return src ? km_kube_source_get(src, res[t->kind], tn.ns, tn.name)
		   : NULL;
}

/* A pod's probe knows its pod, not the pod's owner, which keys the
 * policies' ladder (km_policy.h): found in the hub's copy of the pod,
 * into buf; and it has no labels of its own: a selector sees its pod's
 * (the cluster's cache). Nothing when t is not a pod's probe; no owner
 * when the pod is not known (gone). */
static void probe_pod(struct km_recovery_engine *e, struct km_policy_target *t,
		      char *buf, size_t len)
{
	struct km_target_name tn;
	struct km_health_view v;
	struct km_error err = {0};
	struct km_arena a;
	char why[128];

	if (t->kind != KM_KIND_PROBE || !t->owner ||
	    km_target_name_parse(t->owner, &tn, why, sizeof why) ||
	    tn.kind != KM_KIND_POD)
		return;
	if (!t->labels) {
		struct km_policy_target pod = {.name = t->owner,
					       .kind = KM_KIND_POD};
		const struct km_kube_object *o = object_of(e, &pod);

		if (o) {
			t->labels = o->meta.labels;
			t->n_labels = o->meta.n_labels;
		}
	}
	if (t->pod_owner)
		return;
	km_arena_init(&a, 2048);
	if (!km_health_get(e->o.health, t->owner, &a, &v, &err) &&
	    v.target.owner && *v.target.owner && strlen(v.target.owner) < len) {
		snprintf(buf, len, "%s", v.target.owner);
		t->pod_owner = buf;
	}
	km_arena_free(&a);
}

static void judge(struct km_recovery_engine *e,
		  const struct km_policy_target *in)
{
	struct km_policy_target with = *in, *t = &with;
	struct km_policy_decision d;
	char pod_owner[KM_POLICY_TARGET_MAX];

	/* A node's zone counts first: an action this transition causes sees
	 * the storm it completes. */
	if (t->kind == KM_KIND_NODE)
		km_zones_node(e->zones, t->name, t->state, mono_us());
	if (!e->policies)
		return;
	probe_pod(e, t, pod_owner, sizeof pod_owner);
	/* Targets carry no labels of their own: a Kubernetes object's are
	 * its metadata's, for the policies' selectors. */
	if (!t->labels) {
		const struct km_kube_object *o = object_of(e, t);

		if (o) {
			t->labels = o->meta.labels;
			t->n_labels = o->meta.n_labels;
		}
	}
	if (km_policy_observe(e->policies, t, mono_us(), &d))
		return;
	if (t->kind == KM_KIND_POD && t->owner && *t->owner &&
	    t->state != KM_STATE_UNHEALTHY &&
	    km_policy_tracks(e->policies, t->owner))
		judge_siblings(e, t);
	e->decided_ns = km_mono_ns(); /* (the siblings' judges reset it) */
	/* The storm guard counts the policy's own matches (not a workload
	 * whose pods it matches: their key is the workload's name). */
	if (d.matched)
		storm_member(e, d.policy, t);
	if (d.verdict == KM_POLICY_ACT)
		act(e, &d);
	e->decided_ns = 0;
	if (d.verdict != KM_POLICY_ACT && !strcmp(d.rule, "full") &&
	    !e->full_said) {
		e->full_said = true;
		km_log(KM_LOG_ERROR,
		       "recovery: the policies track as many targets as "
		       "recovery.maxPolicyTargets allows; more are not acted "
		       "on",
		       "target", t->name, NULL);
	}
	arm_due(e, d.next_us);
}

/* A live target as the hub has it now, judged: an UNHEALTHY one with
 * its last transition (its cause, for a policy's reasons), read from the
 * hub — the few that are; the others as they are. */
static void judge_current(struct km_recovery_engine *e,
			  const struct km_target *v, struct km_arena *a)
{
	struct km_health_view view;
	struct km_policy_target t;
	struct km_error err = {0};

	if (v->state == KM_STATE_UNHEALTHY &&
	    !km_health_get(e->o.health, v->name, a, &view, &err) &&
	    view.has_transition &&
	    view.transition.to_state == KM_STATE_UNHEALTHY)
		km_policy_target_from(&view.target, &view.transition, &t);
	else
		km_policy_target_from(v, NULL, &t);
	judge(e, &t);
}

/* A pod of an owner a ladder is climbing for went HEALTHY (or away):
 * another of its pods that is UNHEALTHY still — and made no transition
 * since it became the key's news — is the key's next subject. */
static void judge_siblings(struct km_recovery_engine *e,
			   const struct km_policy_target *t)
{
	struct km_health_filter f = {.kind = KM_KIND_POD,
				     .state = KM_STATE_UNHEALTHY,
				     .cluster = t->cluster,
				     .owner = t->owner};
	struct km_target *v;
	struct km_arena a;
	int64_t after = 0, seq;
	size_t n;
	bool more = true;

	km_arena_init(&a, 16384);
	while (more &&
	       !km_health_list(e->o.health, &f, after, 64, &a, &v, &n, &more,
			       &seq) &&
	       n) {
		for (size_t i = 0; i < n; i++) {
			struct km_policy_target p;
			const struct km_kube_object *o;

			/* Not the news itself, nor a pod on its way out (a
			 * restarted one, stopping). */
			km_policy_target_from(&v[i], NULL, &p);
			if (!strcmp(v[i].name, t->name) ||
			    !(o = object_of(e, &p)) || o->meta.deleting)
				continue;
			judge_current(e, &v[i], &a);
		}
		after = v[n - 1].id;
		km_arena_rewind(&a);
	}
	km_arena_free(&a);
}

static void on_tev(struct km_loop *l, void *arg)
{
	struct tev *x = arg;

	(void)l;
	if (!x->e->stopping)
		judge(x->e, &x->t);
	free(x);
}

/* The hub's thread: a transition, to the loop. */
static void deliver(void *arg, const struct km_health_event *ev)
{
	struct km_recovery_engine *e = arg;
	struct tev *x;

	/* Without policies only nodes matter (their zones). */
	if (!e->policies && (!ev->target || ev->target->kind != KM_KIND_NODE))
		return;
	x = tev_new(e, ev);
	if (!x || km_loop_post(e->loop, on_tev, x)) {
		free(x);
		km_log(KM_LOG_ERROR,
		       "recovery: out of memory: a transition is not judged "
		       "by the policies",
		       NULL);
	}
}

static void rescan(struct km_loop *l, void *arg);

/* The hub's thread: the queue overflowed (the loop was far behind): the
 * loop subscribes again and judges every target's current health. */
static void overflowed(void *arg, int64_t last_seq)
{
	struct km_recovery_engine *e = arg;

	(void)last_seq;
	if (km_loop_post(e->loop, rescan, e))
		km_log(KM_LOG_ERROR, "recovery: cannot resume the policies",
		       NULL);
}

int rec_subscribe(struct km_recovery_engine *e)
{
	struct km_health_sub_options so = {.deliver = deliver,
					   .overflow = overflowed,
					   .arg = e};
	int64_t start;

	return km_health_subscribe(e->o.health, &so, &e->sub, &start);
}

/* Every live target's current health, to the policies and the storm
 * guard: at start, and after the subscription overflowed. */
void rec_judge_all(struct km_recovery_engine *e)
{
	struct km_health_filter f = {0};
	struct km_target *v;
	struct km_arena a;
	int64_t after = 0, seq;
	size_t n;
	bool more = true;

	km_arena_init(&a, 65536);
	while (more &&
	       !km_health_list(e->o.health, &f, after, 512, &a, &v, &n, &more,
			       &seq) &&
	       n) {
		struct km_arena one;

		km_arena_init(&one, 4096);
		for (size_t i = 0; i < n; i++) {
			judge_current(e, &v[i], &one);
			km_arena_rewind(&one);
		}
		km_arena_free(&one);
		after = v[n - 1].id;
		km_arena_rewind(&a);
	}
	km_arena_free(&a);
}

static void rescan(struct km_loop *l, void *arg)
{
	struct km_recovery_engine *e = arg;

	(void)l;
	if (e->stopping)
		return;
	km_health_unsubscribe(e->sub);
	e->sub = NULL;
	if (rec_subscribe(e)) {
		km_log(KM_LOG_ERROR, "recovery: cannot resume the policies",
		       NULL);
		return;
	}
	km_log(KM_LOG_WARN,
	       "recovery: the policies fell behind the transitions; judging "
	       "every target's current health",
	       NULL);
	rec_judge_all(e);
}

void rec_due_fired(struct km_loop *l, void *arg)
{
	struct km_recovery_engine *e = arg;
	struct km_policy_decision d;
	int64_t next = INT64_MAX;

	(void)l;
	while (!e->stopping &&
	       km_policy_due(e->policies, mono_us(), &d, &next) == 1) {
		e->decided_ns = km_mono_ns();
		act(e, &d);
	}
	e->decided_ns = 0;
	arm_due(e, next);
}
