/*
 * Automatic policies as a state machine per key (km_policy.h): an entry
 * remembers its subject (the target that triggered), since when it is
 * UNHEALTHY or HEALTHY, the ladder's rung and the failures on it, the
 * backoff, and whether an action is in flight. What happens next in time
 * is one wake-up per entry in a min-heap: ACT (the trigger's duration or
 * the backoff ends) or EXPIRE (reset_after of health: the key is
 * forgotten, which is the kubelet's reset). km_policy_due pops them.
 */
#include "km_policy.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_arena.h"
#include "km_probe.h"
#include "rtable.h"

#define MS_DAY (24LL * 3600 * 1000)
#define US(ms) ((ms)*1000)

enum wake { W_NONE, W_ACT, W_EXPIRE };

struct pol {
	struct km_selector *sel; /* NULL: every target */
	char requester[80];
};

struct entry {
	struct rt_node node; /* key: key */
	char *key;
	size_t pol;
	/* The subject: the target that triggered (or last did). */
	char *subject, *cluster, *owner, *nodename;
	char *podowner; /* a pod's probe: its pod's owner; NULL: unknown */
	int kind;
	int state; /* enum km_state; DELETED when gone or no longer matched */
	bool flapping, reason_ok;
	char cause[128];
	int64_t cause_seq;
	int64_t unhealthy_since_us, healthy_since_us;
	/* The ladder and the backoff. */
	int rung, failures;
	int64_t delay_ms, not_before_us;
	bool in_flight, gave_up, relapse;
	/* Another pod became the subject while an action was in flight: its
	 * VERIFIED is the acted-on pod's, not the key's. */
	bool moved;
	/* The heap. */
	int wake;
	int64_t due_us;
	size_t heap_i; /* SIZE_MAX: not in the heap */
};

struct km_policy_set {
	struct km_arena a; /* the configuration's copy and selectors */
	struct km_policy_config *cfg;
	struct pol *pol;
	size_t n;
	size_t max_targets;
	struct rt table;
	struct entry **heap;
	size_t heap_n, heap_cap;
	struct km_policy_stats stats;
};

/* ---- the configuration ------------------------------------------------- */

void km_policy_config_defaults(struct km_policy_config *c)
{
	memset(c, 0, sizeof *c);
	c->escalate_after = 3;
	c->max_attempts = 3;
	c->backoff.initial_ms = 10 * 1000;
	c->backoff.max_ms = 300 * 1000;
	c->backoff.reset_after_ms = 600 * 1000;
}

bool km_policy_action_applies(int action, int kind)
{
	switch (action) {
	case KM_ACTION_RESTART_POD:
		return kind == KM_KIND_POD || kind == KM_KIND_PROBE;
	case KM_ACTION_ROLLOUT_RESTART:
		return kind == KM_KIND_POD || kind == KM_KIND_PROBE ||
		       kind == KM_KIND_DEPLOYMENT ||
		       kind == KM_KIND_STATEFULSET || kind == KM_KIND_DAEMONSET;
	case KM_ACTION_CORDON:
	case KM_ACTION_UNCORDON:
	case KM_ACTION_DRAIN:
		return kind == KM_KIND_POD || kind == KM_KIND_PROBE ||
		       kind == KM_KIND_NODE;
	default: return false;
	}
}

static bool is_dns_label(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > KM_POLICY_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* A list of at most KM_POLICY_MAX_LIST non-empty strings. */
static int check_list(const char *const *v, size_t n, const char *what, int f,
		      int *field, int *index, struct km_error *err)
{
	if (n > KM_POLICY_MAX_LIST) {
		*field = f;
		return km_error_set(err, KM_EINVAL, "%s: %zu items, at most %d",
				    what, n, KM_POLICY_MAX_LIST);
	}
	for (size_t i = 0; i < n; i++)
		if (!v[i] || !*v[i]) {
			*field = f;
			*index = (int)i;
			return km_error_set(err, KM_EINVAL,
					    "%s[%zu]: must not be empty", what,
					    i);
		}
	return 0;
}

/* "pod, node" for a kinds mask, into buf. */
static const char *kinds_text(unsigned kinds, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int k = 1; k <= KM_KIND_MAX; k++)
		if (kinds & (1u << k)) {
			int w = snprintf(buf + used, len - used, "%s%s",
					 used ? ", " : "", km_kind_name(k));

			if (w < 0 || (size_t)w >= len - used)
				break;
			used += (size_t)w;
		}
	return buf;
}

int km_policy_config_check(const struct km_policy_config *c, int *field,
			   int *index, struct km_error *err)
{
	int f = KM_PF_NONE, i = -1, rc;
	char kinds[128];

	if (!field)
		field = &f;
	if (!index)
		index = &i;
	*field = KM_PF_NONE;
	*index = -1;
	if (!is_dns_label(c->name)) {
		*field = KM_PF_NAME;
		return km_error_set(err, KM_EINVAL,
				    "name: must be lower-case letters, digits "
				    "and '-', starting and ending with a "
				    "letter or digit, at most %d characters "
				    "(it names the requester \"policy:NAME\")",
				    KM_POLICY_NAME_MAX);
	}
	if ((rc = check_list(c->clusters, c->n_clusters, "clusters",
			     KM_PF_CLUSTERS, field, index, err)) ||
	    (rc = check_list(c->namespaces, c->n_namespaces, "namespaces",
			     KM_PF_NAMESPACES, field, index, err)) ||
	    (rc = check_list(c->reasons, c->n_reasons, "reasons", KM_PF_REASONS,
			     field, index, err)))
		return rc;
	if (!c->kinds || (c->kinds & ~KM_POLICY_KINDS)) {
		*field = KM_PF_KINDS;
		return km_error_set(err, KM_EINVAL,
				    "kinds: Required value: one or more of "
				    "pod, node, deployment, statefulset, "
				    "daemonset, probe");
	}
	if (c->label_selector && *c->label_selector) {
		struct km_arena a;
		struct km_selector *sel;

		km_arena_init(&a, 1024);
		rc = km_selector_parse(c->label_selector, &a, &sel, err);
		km_arena_free(&a);
		if (rc) {
			*field = KM_PF_SELECTOR;
			if (rc == KM_EINVAL)
				km_error_prefix(err, "labelSelector");
			return rc;
		}
	}
	if (c->unhealthy_for_ms < 0 || c->unhealthy_for_ms > MS_DAY) {
		*field = KM_PF_UNHEALTHY_FOR;
		return km_error_set(err, KM_EINVAL,
				    "unhealthyFor: must be between 0 and 1d");
	}
	if (c->n_ladder < 1 || c->n_ladder > KM_POLICY_MAX_RUNGS) {
		*field = KM_PF_LADDER;
		return km_error_set(err, KM_EINVAL,
				    "action: Required value: the ladder holds "
				    "1 to %d actions, got %zu",
				    KM_POLICY_MAX_RUNGS, c->n_ladder);
	}
	for (size_t r = 0; r < c->n_ladder; r++) {
		int act = c->ladder[r];
		bool any = false;

		*index = (int)r;
		*field = KM_PF_LADDER;
		if (!km_action_name(act))
			return km_error_set(err, KM_EINVAL,
					    "ladder[%zu]: unknown action %d", r,
					    act);
		if (act == KM_ACTION_UNCORDON)
			return km_error_set(err, KM_EINVAL,
					    "ladder[%zu]: uncordon heals "
					    "nothing: it cannot be a policy's "
					    "action",
					    r);
		for (int k = 1; k <= KM_KIND_MAX; k++)
			if ((c->kinds & (1u << k)) &&
			    km_policy_action_applies(act, k))
				any = true;
		if (!any)
			return km_error_set(
				err, KM_EINVAL,
				"ladder[%zu]: %s does not apply to %s (the "
				"kinds this policy matches)",
				r, km_action_name(act),
				kinds_text(c->kinds, kinds, sizeof kinds));
		for (size_t q = 0; q < r; q++)
			if (c->ladder[q] == act)
				return km_error_set(
					err, KM_EINVAL,
					"ladder[%zu]: %s is ladder[%zu] "
					"already: a rung is climbed once",
					r, km_action_name(act), q);
	}
	*index = -1;
	if (c->escalate_after < 1 || c->escalate_after > 100) {
		*field = KM_PF_ESCALATE_AFTER;
		return km_error_set(err, KM_EINVAL,
				    "escalateAfter: must be between 1 and 100");
	}
	if (c->max_attempts < 1 || c->max_attempts > 100) {
		*field = KM_PF_MAX_ATTEMPTS;
		return km_error_set(err, KM_EINVAL,
				    "maxAttempts: must be between 1 and 100");
	}
	if (c->backoff.initial_ms < 1000 || c->backoff.max_ms > MS_DAY ||
	    c->backoff.initial_ms > c->backoff.max_ms) {
		*field = KM_PF_BACKOFF;
		return km_error_set(err, KM_EINVAL,
				    "backoff: needs 1s <= initial (%" PRId64
				    "ms) <= max (%" PRId64 "ms) <= 1d",
				    c->backoff.initial_ms, c->backoff.max_ms);
	}
	if (c->backoff.reset_after_ms < 1000 ||
	    c->backoff.reset_after_ms > MS_DAY) {
		*field = KM_PF_BACKOFF;
		return km_error_set(err, KM_EINVAL,
				    "backoff.resetAfter: must be between 1s "
				    "and 1d");
	}
	return 0;
}

/* ---- the set ----------------------------------------------------------- */

static const char **copy_list(struct km_arena *a, const char *const *v,
			      size_t n)
{
	const char **out = km_arena_calloc(a, n ? n : 1, sizeof *out);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(out[i] = km_arena_strdup(a, v[i])))
			return NULL;
	return out;
}

static int copy_policy(struct km_policy_set *s, size_t i,
		       const struct km_policy_config *src, struct km_error *err)
{
	struct km_policy_config *d = &s->cfg[i];
	struct pol *p = &s->pol[i];
	const char **cl, **ns, **re;
	int rc;

	*d = *src;
	d->name = km_arena_strdup(&s->a, src->name);
	cl = copy_list(&s->a, src->clusters, src->n_clusters);
	ns = copy_list(&s->a, src->namespaces, src->n_namespaces);
	re = copy_list(&s->a, src->reasons, src->n_reasons);
	if (!d->name || !cl || !ns || !re)
		return km_error_set(err, KM_ENOMEM, "policies: out of memory");
	d->clusters = cl;
	d->namespaces = ns;
	d->reasons = re;
	d->label_selector = NULL;
	if (src->label_selector && *src->label_selector) {
		d->label_selector = km_arena_strdup(&s->a, src->label_selector);
		if (!d->label_selector)
			return km_error_set(err, KM_ENOMEM,
					    "policies: out of memory");
		rc = km_selector_parse(d->label_selector, &s->a, &p->sel, err);
		if (rc)
			return rc;
	}
	snprintf(p->requester, sizeof p->requester, "policy:%s", d->name);
	return 0;
}

int km_policy_set_new(const struct km_policy_config *cfg, size_t n,
		      const struct km_policy_options *o,
		      struct km_policy_set **out, struct km_error *err)
{
	struct km_policy_set *s;
	int rc;

	*out = NULL;
	if (n > KM_POLICY_MAX)
		return km_error_set(err, KM_EINVAL,
				    "policies: %zu policies, at most %d", n,
				    KM_POLICY_MAX);
	for (size_t i = 0; i < n; i++) {
		if ((rc = km_policy_config_check(&cfg[i], NULL, NULL, err))) {
			km_error_prefix(err, "policies[%zu]", i);
			return rc;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cfg[i].name, cfg[j].name))
				return km_error_set(
					err, KM_EINVAL,
					"policies[%zu].name: duplicate name "
					"\"%s\": policies[%zu] has it already",
					i, cfg[i].name, j);
	}
	s = calloc(1, sizeof *s);
	if (!s)
		return km_error_set(err, KM_ENOMEM, "policies: out of memory");
	km_arena_init(&s->a, 4096);
	s->n = n;
	s->max_targets = o && o->max_targets ? o->max_targets
					     : KM_POLICY_MAX_TARGETS_DEFAULT;
	s->cfg = km_arena_calloc(&s->a, n ? n : 1, sizeof *s->cfg);
	s->pol = km_arena_calloc(&s->a, n ? n : 1, sizeof *s->pol);
	if (!s->cfg || !s->pol || rt_init(&s->table)) {
		rc = km_error_set(err, KM_ENOMEM, "policies: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if ((rc = copy_policy(s, i, &cfg[i], err)))
			goto fail;
	*out = s;
	return 0;

fail:
	km_policy_set_free(s);
	return rc;
}

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	free(e->key);
	free(e->subject);
	free(e->cluster);
	free(e->owner);
	free(e->nodename);
	free(e->podowner);
	free(e);
}

void km_policy_set_free(struct km_policy_set *s)
{
	if (!s)
		return;
	if (s->table.b)
		for (size_t i = 0; i < s->table.nb; i++)
			for (struct rt_node *n = s->table.b[i], *nx; n;
			     n = nx) {
				nx = n->next;
				entry_free((struct entry *)n);
			}
	rt_fini(&s->table);
	free(s->heap);
	km_arena_free(&s->a);
	free(s);
}

const struct km_policy_config *
km_policy_set_policies(const struct km_policy_set *s, size_t *n)
{
	*n = s->n;
	return s->cfg;
}

bool km_policy_tracks(const struct km_policy_set *s, const char *key)
{
	return s && key && rt_find(&s->table, key) != NULL;
}

void km_policy_get_stats(const struct km_policy_set *s,
			 struct km_policy_stats *out)
{
	*out = s->stats;
	out->tracked = s->table.n;
	out->max_targets = s->max_targets;
}

void km_policy_target_from(const struct km_target *t,
			   const struct km_transition *tr,
			   struct km_policy_target *out)
{
	memset(out, 0, sizeof *out);
	if (t) {
		out->name = t->name;
		out->cluster = t->cluster;
		out->kind = t->kind;
		out->ns = t->ns;
		out->labels = t->labels;
		out->n_labels = t->n_labels;
		out->owner = t->owner;
		out->node = t->node;
		out->state = t->state;
		out->flapping = t->flapping;
		out->cause_seq = t->last_transition_seq;
	}
	if (tr) {
		if (!out->name)
			out->name = tr->target_name;
		if (!out->labels) {
			out->labels = tr->labels;
			out->n_labels = tr->n_labels;
		}
		if (!out->owner)
			out->owner = tr->target_owner;
		if (!out->node)
			out->node = tr->target_node;
		out->state = tr->to_state;
		out->flapping = tr->flapping;
		out->cause = tr->cause;
		out->cause_seq = tr->seq;
	}
	if (out->name && (!t || !out->kind)) {
		struct km_target_name tn;
		char why[128];

		if (!km_target_name_parse(out->name, &tn, why, sizeof why))
			out->kind = tn.kind;
	}
}

/* ---- the heap of wake-ups ---------------------------------------------- */

static void heap_swap(struct km_policy_set *s, size_t i, size_t j)
{
	struct entry *t = s->heap[i];

	s->heap[i] = s->heap[j];
	s->heap[j] = t;
	s->heap[i]->heap_i = i;
	s->heap[j]->heap_i = j;
}

static void heap_up(struct km_policy_set *s, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (s->heap[p]->due_us <= s->heap[i]->due_us)
			break;
		heap_swap(s, i, p);
		i = p;
	}
}

static void heap_down(struct km_policy_set *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->heap_n && s->heap[l]->due_us < s->heap[m]->due_us)
			m = l;
		if (r < s->heap_n && s->heap[r]->due_us < s->heap[m]->due_us)
			m = r;
		if (m == i)
			return;
		heap_swap(s, i, m);
		i = m;
	}
}

static void heap_remove(struct km_policy_set *s, struct entry *e)
{
	size_t i = e->heap_i;

	if (i == SIZE_MAX)
		return;
	e->heap_i = SIZE_MAX;
	s->heap_n--;
	if (i == s->heap_n)
		return;
	s->heap[i] = s->heap[s->heap_n];
	s->heap[i]->heap_i = i;
	heap_up(s, i);
	heap_down(s, s->heap[i]->heap_i);
}

/* The heap has room for every entry (reserved when an entry is made), so
 * pushing never fails. */
static void heap_push(struct km_policy_set *s, struct entry *e)
{
	e->heap_i = s->heap_n;
	s->heap[s->heap_n++] = e;
	heap_up(s, e->heap_i);
}

static const struct km_policy_config *cfg_of(const struct km_policy_set *s,
					     const struct entry *e)
{
	return &s->cfg[e->pol];
}

/* What the entry waits for, and until when. */
static void schedule(struct km_policy_set *s, struct entry *e)
{
	const struct km_policy_config *c = cfg_of(s, e);

	heap_remove(s, e);
	e->wake = W_NONE;
	if (e->in_flight)
		return;
	if (e->state == KM_STATE_UNHEALTHY) {
		int64_t at = e->unhealthy_since_us + US(c->unhealthy_for_ms);

		if (e->flapping || e->gave_up || !e->reason_ok)
			return;
		e->wake = W_ACT;
		e->due_us = at > e->not_before_us ? at : e->not_before_us;
	} else if (e->state == KM_STATE_HEALTHY ||
		   e->state == KM_STATE_DELETED) {
		e->wake = W_EXPIRE;
		e->due_us = e->healthy_since_us + US(c->backoff.reset_after_ms);
	} else {
		return; /* UNKNOWN, DEGRADED: the next transition decides */
	}
	heap_push(s, e);
}

static void forget(struct km_policy_set *s, struct entry *e)
{
	heap_remove(s, e);
	rt_remove(&s->table, &e->node);
	entry_free(e);
}

/* ---- deciding ---------------------------------------------------------- */

/* The decision's reason, cut to fit (a long target name shortens the
 * words, never the decision). */
__attribute__((format(printf, 2, 3))) static void
reasonf(struct km_policy_decision *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof out->reason, fmt, ap);
	va_end(ap);
}

static void none(struct km_policy_decision *out, const char *rule)
{
	out->verdict = KM_POLICY_NONE;
	out->rule = rule;
}

static void decision_init(struct km_policy_decision *out)
{
	memset(out, 0, sizeof *out);
	out->rule = "no_policy";
}

static void set_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static void fill_identity(const struct km_policy_set *s, const struct entry *e,
			  struct km_policy_decision *out)
{
	const struct km_policy_config *c = cfg_of(s, e);

	out->policy = c->name;
	set_str(out->requester, sizeof out->requester,
		s->pol[e->pol].requester);
	set_str(out->key, sizeof out->key, e->key);
	set_str(out->subject, sizeof out->subject, e->subject);
	out->cause_seq = e->cause_seq;
	out->rung = e->rung;
	out->next_us = e->wake != W_NONE ? e->due_us : 0;
}

/* Whether owner names a pod's target: the subject is a pod's probe. */
static bool owner_is_pod(const char *owner)
{
	struct km_target_name tn;
	char w[128];

	return owner && *owner &&
	       !km_target_name_parse(owner, &tn, w, sizeof w) &&
	       tn.kind == KM_KIND_POD;
}

/* A mirrored probe is named "POD.CONTAINER.liveness" (km_kube_mirror.h). */
static bool is_liveness(const char *name)
{
	static const char sfx[] = ".liveness";
	size_t n = strlen(name), k = sizeof sfx - 1;

	return n > k && !strcmp(name + n - k, sfx);
}

/* A probe subject stands for its pod: restart_pod the pod, rollout_restart
 * the pod's owner, cordon and drain the pod's node. */
static bool resolve_probe(const struct entry *e, int action, char *buf,
			  size_t len, int *kind, const char **why)
{
	struct km_target_name tn;
	char w[128];
	int n;

	if (!owner_is_pod(e->owner)) {
		*why = "the probe is no pod's (a defined probe: kubemedic has "
		       "nothing to restart)";
		return false;
	}
	switch (action) {
	case KM_ACTION_RESTART_POD:
		*kind = KM_KIND_POD;
		set_str(buf, len, e->owner);
		return true;
	case KM_ACTION_ROLLOUT_RESTART:
		if (!e->podowner ||
		    km_target_name_parse(e->podowner, &tn, w, sizeof w) ||
		    (tn.kind != KM_KIND_DEPLOYMENT &&
		     tn.kind != KM_KIND_STATEFULSET &&
		     tn.kind != KM_KIND_DAEMONSET)) {
			*why = "the probe's pod has no Deployment, StatefulSet "
			       "or DaemonSet";
			return false;
		}
		*kind = tn.kind;
		set_str(buf, len, e->podowner);
		return true;
	case KM_ACTION_CORDON:
	case KM_ACTION_DRAIN:
		if (!e->nodename || !*e->nodename) {
			*why = "the probe's pod is on no node";
			return false;
		}
		n = snprintf(buf, len, "%s%snode//%s",
			     e->cluster ? e->cluster : "",
			     e->cluster && *e->cluster ? ":" : "", e->nodename);
		if (n < 0 || (size_t)n >= len) {
			*why = "the node's name is too long";
			return false;
		}
		*kind = KM_KIND_NODE;
		return true;
	default: *why = "the action is not a remedy"; return false;
	}
}

/* What rung's action acts on for e's subject: the target name into buf
 * and its kind, or false with why. */
static bool resolve(const struct entry *e, int action, char *buf, size_t len,
		    int *kind, const char **why)
{
	struct km_target_name tn;
	char w[128];

	if (e->kind == KM_KIND_PROBE)
		return resolve_probe(e, action, buf, len, kind, why);
	switch (action) {
	case KM_ACTION_RESTART_POD:
		if (e->kind != KM_KIND_POD) {
			*why = "the target is not a pod";
			return false;
		}
		break;
	case KM_ACTION_ROLLOUT_RESTART:
		if (e->kind == KM_KIND_POD) {
			if (!e->owner ||
			    km_target_name_parse(e->owner, &tn, w, sizeof w) ||
			    (tn.kind != KM_KIND_DEPLOYMENT &&
			     tn.kind != KM_KIND_STATEFULSET &&
			     tn.kind != KM_KIND_DAEMONSET)) {
				*why = "the pod has no Deployment, StatefulSet "
				       "or DaemonSet";
				return false;
			}
			*kind = tn.kind;
			set_str(buf, len, e->owner);
			return true;
		}
		if (!km_policy_action_applies(action, e->kind)) {
			*why = "the target is not a workload";
			return false;
		}
		break;
	case KM_ACTION_CORDON:
	case KM_ACTION_DRAIN:
		if (e->kind == KM_KIND_POD) {
			int n;

			if (!e->nodename || !*e->nodename) {
				*why = "the pod is on no node";
				return false;
			}
			n = snprintf(buf, len, "%s%snode//%s",
				     e->cluster ? e->cluster : "",
				     e->cluster && *e->cluster ? ":" : "",
				     e->nodename);
			if (n < 0 || (size_t)n >= len) {
				*why = "the node's name is too long";
				return false;
			}
			*kind = KM_KIND_NODE;
			return true;
		}
		if (e->kind != KM_KIND_NODE) {
			*why = "the target is neither a pod nor a node";
			return false;
		}
		break;
	default: *why = "the action is not a remedy"; return false;
	}
	*kind = e->kind;
	set_str(buf, len, e->subject);
	return true;
}

/* The trigger holds and the backoff is over: the action of the first
 * rung from e->rung on that applies to the subject; the ladder is spent
 * when none does. */
static void act(struct km_policy_set *s, struct entry *e, int64_t now_us,
		struct km_policy_decision *out)
{
	const struct km_policy_config *c = cfg_of(s, e);
	char stepped[160] = "";
	const char *why = NULL;
	int kind = 0;
	size_t r;

	for (r = (size_t)e->rung; r < c->n_ladder; r++) {
		if (resolve(e, c->ladder[r], out->act_on, sizeof out->act_on,
			    &kind, &why))
			break;
		snprintf(stepped, sizeof stepped, "; %s stepped over: %s",
			 km_action_name(c->ladder[r]), why);
	}
	if (r != (size_t)e->rung) {
		e->rung = (int)r;
		e->failures = 0;
	}
	if (r == c->n_ladder) {
		e->gave_up = true;
		s->stats.gave_up++;
		schedule(s, e);
		fill_identity(s, e, out);
		out->act_on[0] = '\0';
		none(out, "gave_up");
		reasonf(out, "%s: gave up: no rung of policy %s applies%s",
			e->subject, c->name, stepped);
		return;
	}
	e->in_flight = true;
	schedule(s, e);
	s->stats.acts++;
	fill_identity(s, e, out);
	out->verdict = KM_POLICY_ACT;
	out->rule = "trigger";
	out->action = c->ladder[r];
	out->act_on_kind = kind;
	out->attempt = e->failures + 1;
	reasonf(out,
		"%s UNHEALTHY for %" PRId64 "s%s%s%s: %s %s (rung %zu of %zu, "
		"attempt %d of %d) by policy %s%s",
		e->subject, (now_us - e->unhealthy_since_us) / 1000000,
		e->cause[0] ? " (" : "", e->cause, e->cause[0] ? ")" : "",
		km_action_name(c->ladder[r]), out->act_on, r + 1, c->n_ladder,
		out->attempt,
		r + 1 == c->n_ladder ? c->max_attempts : c->escalate_after,
		c->name, stepped);
}

/* After the entry changed: act now if due, else say what it waits for. */
static void evaluate(struct km_policy_set *s, struct entry *e, int64_t now_us,
		     struct km_policy_decision *out)
{
	schedule(s, e);
	if (e->wake == W_ACT && e->due_us <= now_us) {
		act(s, e, now_us, out);
		return;
	}
	fill_identity(s, e, out);
	if (e->in_flight)
		none(out, "in_flight");
	else if (e->state != KM_STATE_UNHEALTHY)
		none(out, "healthy");
	else if (e->gave_up)
		none(out, "gave_up");
	else if (e->flapping)
		none(out, "flapping");
	else if (!e->reason_ok)
		none(out, "reason");
	else
		none(out, "waiting");
}

/* One more failed verification: climb, or give up at the top. */
static const char *fail(struct km_policy_set *s, struct entry *e)
{
	const struct km_policy_config *c = cfg_of(s, e);

	e->failures++;
	if ((size_t)e->rung + 1 >= c->n_ladder) {
		if (e->failures >= c->max_attempts) {
			e->gave_up = true;
			s->stats.gave_up++;
			return "gave_up";
		}
		return "retry";
	}
	if (e->failures >= c->escalate_after) {
		e->rung++;
		e->failures = 0;
		return "escalated";
	}
	return "retry";
}

static void backoff(const struct km_policy_config *c, struct entry *e,
		    int64_t now_us)
{
	e->not_before_us = now_us + US(e->delay_ms);
	e->delay_ms = e->delay_ms * 2 > c->backoff.max_ms ? c->backoff.max_ms
							  : e->delay_ms * 2;
}

static bool strmatch(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

static bool matches(const struct km_policy_set *s, size_t i,
		    const struct km_policy_target *t)
{
	const struct km_policy_config *c = &s->cfg[i];
	bool ok;
	size_t j;

	if (t->kind <= 0 || t->kind > KM_KIND_MAX ||
	    !(c->kinds & (1u << t->kind)))
		return false;
	/* A pod's readiness probe restarts nothing (the kubelet's rule). */
	if (t->kind == KM_KIND_PROBE && owner_is_pod(t->owner) &&
	    !is_liveness(t->name))
		return false;
	for (ok = !c->n_clusters, j = 0; !ok && j < c->n_clusters; j++)
		ok = strmatch(c->clusters[j], t->cluster);
	if (!ok)
		return false;
	for (ok = !c->n_namespaces, j = 0; !ok && j < c->n_namespaces; j++)
		ok = t->ns && !strcmp(c->namespaces[j], t->ns);
	if (!ok)
		return false;
	return !s->pol[i].sel ||
	       km_selector_matches(s->pol[i].sel, t->labels, t->n_labels);
}

static bool reason_holds(const struct km_policy_config *c, const char *cause)
{
	if (!c->n_reasons)
		return true;
	for (size_t i = 0; i < c->n_reasons; i++)
		if (cause && strcasestr(cause, c->reasons[i]))
			return true;
	return false;
}

static int dup_into(char **dst, const char *src)
{
	char *d = NULL;

	if (src && !(d = strdup(src)))
		return KM_ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

/* Makes t the entry's subject. */
static int take_subject(struct entry *e, const struct km_policy_target *t)
{
	if (e->in_flight && e->subject && strcmp(e->subject, t->name))
		e->moved = true;
	if (dup_into(&e->subject, t->name) ||
	    dup_into(&e->cluster, t->cluster) ||
	    dup_into(&e->owner, t->owner) || dup_into(&e->nodename, t->node) ||
	    dup_into(&e->podowner, t->pod_owner))
		return KM_ENOMEM;
	e->kind = t->kind;
	return 0;
}

/* A fresh ladder for policy p. */
static void reset_ladder(const struct km_policy_set *s, struct entry *e,
			 size_t p)
{
	e->pol = p;
	e->rung = 0;
	e->failures = 0;
	e->delay_ms = s->cfg[p].backoff.initial_ms;
	e->not_before_us = 0;
	e->gave_up = false;
	e->relapse = false;
}

/* The ladder's key: a pod's owner's; a pod's probe's pod's owner's, or
 * its pod's; else the target's own name. */
static const char *key_of(const struct km_policy_target *t)
{
	if (t->kind == KM_KIND_POD && t->owner && *t->owner)
		return t->owner;
	if (t->kind == KM_KIND_PROBE && owner_is_pod(t->owner))
		return t->pod_owner && *t->pod_owner ? t->pod_owner : t->owner;
	return t->name;
}

static struct entry *entry_new(struct km_policy_set *s, const char *key,
			       size_t p)
{
	struct entry *e;

	/* Room for every entry, in the heap now or not (one in flight is
	 * not, and goes back in when its outcome comes). */
	if (s->table.n + 1 > s->heap_cap) {
		size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
		struct entry **h = realloc(s->heap, cap * sizeof *h);

		if (!h)
			return NULL;
		s->heap = h;
		s->heap_cap = cap;
	}
	e = calloc(1, sizeof *e);
	if (!e || !(e->key = strdup(key))) {
		free(e);
		return NULL;
	}
	e->node.key = e->key;
	e->heap_i = SIZE_MAX;
	e->state = KM_STATE_UNKNOWN;
	reset_ladder(s, e, p);
	rt_insert(&s->table, &e->node);
	return e;
}

int km_policy_observe(struct km_policy_set *s, const struct km_policy_target *t,
		      int64_t now_us, struct km_policy_decision *out)
{
	struct km_policy_decision scratch;
	struct km_policy_target gone = {0};
	const char *key;
	struct entry *e;
	size_t p;

	if (!out)
		out = &scratch;
	decision_init(out);
	if (!t || !t->name || !*t->name)
		return KM_EINVAL;
	key = key_of(t);
	e = (struct entry *)rt_find(&s->table, key);
	for (p = 0; p < s->n && !matches(s, p, t); p++)
		;
	if (p < s->n) {
		out->policy = s->cfg[p].name;
		out->matched = true;
	}
	set_str(out->key, sizeof out->key, key);
	set_str(out->subject, sizeof out->subject, t->name);
	out->cause_seq = t->cause_seq;
	/* The subject is a pod's probe, and its pod is gone: so is the
	 * probe (whose own deletion may come when the pod, and so its
	 * owner, the key, is no longer known). */
	if (e && e->kind == KM_KIND_PROBE && t->kind == KM_KIND_POD &&
	    t->state == KM_STATE_DELETED && e->owner && e->subject &&
	    !strcmp(e->owner, t->name)) {
		gone.name = e->subject;
		gone.state = KM_STATE_DELETED;
		gone.cause_seq = t->cause_seq;
		t = &gone;
		p = s->n;
	}

	/* Another pod of the owner is the subject, and still UNHEALTHY: this
	 * one's news is not the key's, unless it is UNHEALTHY too (and
	 * matched): then it becomes the subject, below — the newest
	 * unhealthy one. A replacement that fails while its predecessor is
	 * still stopping must not be lost when the predecessor's deletion
	 * comes (the ladder would stop, with the workload still broken). */
	if (e && e->state == KM_STATE_UNHEALTHY && e->subject &&
	    strcmp(e->subject, t->name) &&
	    (t->state != KM_STATE_UNHEALTHY || p == s->n)) {
		fill_identity(s, e, out);
		set_str(out->subject, sizeof out->subject, t->name);
		none(out, "other_pod");
		return 0;
	}

	if (t->state == KM_STATE_UNHEALTHY && p < s->n) {
		bool was = e && e->state == KM_STATE_UNHEALTHY;

		if (!e) {
			if (s->table.n >= s->max_targets) {
				s->stats.refused_full++;
				none(out, "full");
				reasonf(out,
					"%s: not acted on: policies track "
					"%zu targets already (the most)",
					t->name, s->max_targets);
				return 0;
			}
			if (!(e = entry_new(s, key, p)))
				return KM_ENOMEM;
		} else if (e->pol != p) {
			reset_ladder(s, e, p);
		}
		if (take_subject(e, t))
			return KM_ENOMEM;
		if (!was)
			e->unhealthy_since_us = now_us;
		e->state = KM_STATE_UNHEALTHY;
		e->flapping = t->flapping;
		e->cause_seq = t->cause_seq;
		set_str(e->cause, sizeof e->cause, t->cause);
		e->reason_ok = reason_holds(&s->cfg[p], t->cause);
		if (e->relapse && !e->in_flight) {
			/* VERIFIED, then UNHEALTHY again before the reset:
			 * the remedy did not hold. */
			e->relapse = false;
			(void)fail(s, e);
		}
		evaluate(s, e, now_us, out);
		if (e->gave_up && out->verdict == KM_POLICY_NONE &&
		    !out->reason[0])
			reasonf(out, "%s: policy %s gave up: every rung failed",
				e->subject, s->cfg[e->pol].name);
		return 0;
	}
	if (!e) {
		none(out,
		     t->state == KM_STATE_UNHEALTHY ? "no_policy" : "healthy");
		return 0;
	}
	/* Not UNHEALTHY (or no longer matched): the subject's news. */
	if (t->state == KM_STATE_UNHEALTHY || t->state == KM_STATE_DELETED) {
		e->state = KM_STATE_DELETED;
		e->healthy_since_us = now_us;
	} else if (t->state == KM_STATE_HEALTHY) {
		if (e->state != KM_STATE_HEALTHY)
			e->healthy_since_us = now_us;
		e->state = KM_STATE_HEALTHY;
	} else {
		e->state = t->state;
	}
	e->flapping = t->flapping;
	evaluate(s, e, now_us, out);
	if (t->state == KM_STATE_UNHEALTHY)
		none(out, "no_policy");
	return 0;
}

int km_policy_outcome(struct km_policy_set *s, const char *key, int phase,
		      int64_t now_us, struct km_policy_decision *out)
{
	struct km_policy_decision scratch;
	const struct km_policy_config *c;
	struct entry *e;
	const char *rule;

	if (!out)
		out = &scratch;
	decision_init(out);
	if (!key)
		return KM_EINVAL;
	e = (struct entry *)rt_find(&s->table, key);
	if (!e || !e->in_flight)
		return KM_ENOTFOUND;
	c = cfg_of(s, e);
	switch (phase) {
	case KM_PHASE_VERIFIED:
		rule = "verified";
		/* The pod acted on is healthy again, but another of the
		 * owner's became the subject meanwhile and still is
		 * UNHEALTHY: the workload is not; its turn comes after the
		 * backoff (no failure of the rung). */
		if (e->moved && e->state == KM_STATE_UNHEALTHY)
			break;
		/* Healthy again, proven: the forgetting clock starts, and
		 * UNHEALTHY before it ends is a relapse. */
		e->relapse = true;
		e->state = KM_STATE_HEALTHY;
		e->healthy_since_us = now_us;
		break;
	case KM_PHASE_NOT_RECOVERED:
	case KM_PHASE_FAILED: rule = fail(s, e); break;
	case KM_PHASE_SKIPPED:
	case KM_PHASE_CANCELLED:
	case KM_PHASE_DRY_RUN: rule = "skipped"; break;
	default: return KM_EINVAL;
	}
	e->in_flight = false;
	e->moved = false;
	backoff(c, e, now_us);
	schedule(s, e);
	fill_identity(s, e, out);
	none(out, rule);
	if (e->gave_up)
		reasonf(out,
			"%s: policy %s gives up: %s failed %d times, the "
			"last rung of %zu",
			e->subject, c->name,
			km_action_name(c->ladder[c->n_ladder - 1]), e->failures,
			c->n_ladder);
	else if (!strcmp(rule, "escalated"))
		reasonf(out,
			"%s: %s failed %d times: policy %s escalates to %s",
			e->subject, km_action_name(c->ladder[e->rung - 1]),
			c->escalate_after, c->name,
			km_action_name(c->ladder[e->rung]));
	else
		reasonf(out, "%s: %s %s; next no sooner than in %" PRId64 "s",
			e->subject, km_action_name(c->ladder[e->rung]),
			km_phase_name(phase),
			(e->not_before_us - now_us) / 1000000);
	return 0;
}

int km_policy_due(struct km_policy_set *s, int64_t now_us,
		  struct km_policy_decision *out, int64_t *next_us)
{
	struct km_policy_decision scratch;

	if (!out)
		out = &scratch;
	while (s->heap_n && s->heap[0]->due_us <= now_us) {
		struct entry *e = s->heap[0];

		if (e->wake == W_EXPIRE) {
			forget(s, e);
			continue;
		}
		decision_init(out);
		act(s, e, now_us, out);
		if (out->verdict == KM_POLICY_ACT)
			return 1;
	}
	if (next_us)
		*next_us = s->heap_n ? s->heap[0]->due_us : INT64_MAX;
	return 0;
}
