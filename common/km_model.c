#include "km_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_arena.h"
#include "km_error.h"

static const char *const kind_names[] = {
	[KM_KIND_PROBE] = "probe",
	[KM_KIND_NODE] = "node",
	[KM_KIND_POD] = "pod",
	[KM_KIND_SERVICE] = "service",
	[KM_KIND_DEPLOYMENT] = "deployment",
	[KM_KIND_STATEFULSET] = "statefulset",
	[KM_KIND_DAEMONSET] = "daemonset",
	[KM_KIND_CONTROL_PLANE] = "controlplane",
};

const char *km_kind_name(int kind)
{
	if (kind < 1 || kind > KM_KIND_MAX)
		return NULL;
	return kind_names[kind];
}

int km_kind_parse(const char *name, size_t len)
{
	for (int k = 1; k <= KM_KIND_MAX; k++)
		if (strlen(kind_names[k]) == len &&
		    memcmp(kind_names[k], name, len) == 0)
			return k;
	return 0;
}

const char *km_state_name(int state)
{
	switch (state) {
	case KM_STATE_UNKNOWN: return "UNKNOWN";
	case KM_STATE_HEALTHY: return "HEALTHY";
	case KM_STATE_UNHEALTHY: return "UNHEALTHY";
	case KM_STATE_DEGRADED: return "DEGRADED";
	case KM_STATE_DELETED: return "DELETED";
	}
	return "UNSPECIFIED";
}

int km_target_name_parse(const char *s, struct km_target_name *out, char *why,
			 size_t why_len)
{
	const char *colon, *slash1, *slash2, *kind;

	memset(out, 0, sizeof *out);
	slash1 = strchr(s, '/');
	if (!slash1) {
		snprintf(
			why, why_len,
			"target \"%s\" is not of the form kind/namespace/name "
			"(e.g. \"probe//checkout-http\", \"pod/default/web-0\")",
			s);
		return KM_EINVAL;
	}
	colon = memchr(s, ':', (size_t)(slash1 - s));
	kind = s;
	if (colon) {
		out->cluster = s;
		out->cluster_len = (size_t)(colon - s);
		kind = colon + 1;
		if (out->cluster_len == 0) {
			snprintf(why, why_len,
				 "target \"%s\": empty cluster before ':'", s);
			return KM_EINVAL;
		}
	}
	out->kind = km_kind_parse(kind, (size_t)(slash1 - kind));
	if (!out->kind) {
		snprintf(why, why_len,
			 "target \"%s\": unknown kind \"%.*s\" (one of probe, "
			 "node, pod, service, deployment, statefulset, "
			 "daemonset, controlplane)",
			 s, (int)(slash1 - kind), kind);
		return KM_EINVAL;
	}
	slash2 = strchr(slash1 + 1, '/');
	if (!slash2) {
		snprintf(why, why_len,
			 "target \"%s\" is not of the form kind/namespace/name "
			 "(cluster-scoped objects have an empty namespace: "
			 "\"node//worker-3\")",
			 s);
		return KM_EINVAL;
	}
	out->ns = slash1 + 1;
	out->ns_len = (size_t)(slash2 - out->ns);
	out->name = slash2 + 1;
	out->name_len = strlen(out->name);
	if (out->name_len == 0 || strchr(out->name, '/') ||
	    strchr(out->name, ':') || memchr(out->ns, ':', out->ns_len)) {
		snprintf(
			why, why_len,
			"target \"%s\": the name must be non-empty and hold no "
			"'/' or ':'",
			s);
		return KM_EINVAL;
	}
	return 0;
}

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool kv_eq(const struct km_kv *a, size_t na, const struct km_kv *b,
		  size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!str_eq(a[i].key, b[i].key) ||
		    !str_eq(a[i].value, b[i].value))
			return false;
	return true;
}

/* Labels are a map: the same pairs in any order are equal. (Quadratic,
 * but a probe has at most KM_PROBE_MAX_LABELS of them.) */
static bool labels_eq(const struct km_kv *a, size_t na, const struct km_kv *b,
		      size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		bool found = false;

		for (size_t j = 0; j < nb && !found; j++)
			found = str_eq(a[i].key, b[j].key) &&
				str_eq(a[i].value, b[j].value);
		if (!found)
			return false;
	}
	return true;
}

bool km_probe_spec_equal(const struct km_probe *a, const struct km_probe *b)
{
	if (a->argc != b->argc)
		return false;
	for (size_t i = 0; i < a->argc; i++)
		if (!str_eq(a->argv[i], b->argv[i]))
			return false;
	return str_eq(a->name, b->name) &&
	       labels_eq(a->labels, a->n_labels, b->labels, b->n_labels) &&
	       a->type == b->type && str_eq(a->host, b->host) &&
	       a->port == b->port && str_eq(a->path, b->path) &&
	       a->https == b->https && a->tls_verify == b->tls_verify &&
	       str_eq(a->ca_file, b->ca_file) &&
	       kv_eq(a->headers, a->n_headers, b->headers, b->n_headers) &&
	       str_eq(a->service, b->service) &&
	       kv_eq(a->env, a->n_env, b->env, b->n_env) &&
	       str_eq(a->workdir, b->workdir) && a->min_size == b->min_size &&
	       a->max_age_s == b->max_age_s &&
	       a->initial_delay_ms == b->initial_delay_ms &&
	       a->timeout_ms == b->timeout_ms && a->period_ms == b->period_ms &&
	       a->success_threshold == b->success_threshold &&
	       a->failure_threshold == b->failure_threshold;
}

static int copy_str(struct km_arena *a, const char **s)
{
	if (!*s)
		return 0;
	*s = km_arena_strdup(a, *s);
	return *s ? 0 : KM_ENOMEM;
}

static int copy_kv(struct km_arena *a, struct km_kv **kv, size_t n)
{
	struct km_kv *v;

	if (!n) {
		*kv = NULL;
		return 0;
	}
	v = km_arena_alloc(a, n * sizeof *v);
	if (!v)
		return KM_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i] = (*kv)[i];
		if (copy_str(a, &v[i].key) || copy_str(a, &v[i].value))
			return KM_ENOMEM;
	}
	*kv = v;
	return 0;
}

int km_probe_copy(struct km_arena *a, const struct km_probe *src,
		  struct km_probe *dst)
{
	*dst = *src;
	if (copy_str(a, &dst->name) || copy_str(a, &dst->host) ||
	    copy_str(a, &dst->path) || copy_str(a, &dst->ca_file) ||
	    copy_str(a, &dst->service) || copy_str(a, &dst->workdir) ||
	    copy_kv(a, &dst->labels, dst->n_labels) ||
	    copy_kv(a, &dst->headers, dst->n_headers) ||
	    copy_kv(a, &dst->env, dst->n_env))
		return KM_ENOMEM;
	if (dst->argc) {
		/* NULL-terminated, ready for execvp-style use. */
		const char **v = km_arena_alloc(a, (dst->argc + 1) * sizeof *v);
		if (!v)
			return KM_ENOMEM;
		for (size_t i = 0; i < dst->argc; i++) {
			v[i] = src->argv[i];
			if (copy_str(a, &v[i]))
				return KM_ENOMEM;
		}
		v[dst->argc] = NULL;
		dst->argv = v;
	}
	return 0;
}

struct km_transition *km_transition_dup(const struct km_transition *t)
{
	const char *cause = t->cause ? t->cause : "";
	size_t n = sizeof *t + t->n_labels * sizeof(struct km_kv);
	struct km_transition *d;
	struct km_kv *kv;
	char *p;

	n += strlen(cause) + 1;
	if (t->target_name)
		n += strlen(t->target_name) + 1;
	for (size_t i = 0; i < t->n_labels; i++)
		n += strlen(t->labels[i].key) + strlen(t->labels[i].value) + 2;
	d = malloc(n);
	if (!d)
		return NULL;
	*d = *t;
	kv = (struct km_kv *)(d + 1);
	p = (char *)(kv + t->n_labels);
	d->cause = strcpy(p, cause);
	p += strlen(p) + 1;
	if (t->target_name) {
		d->target_name = strcpy(p, t->target_name);
		p += strlen(p) + 1;
	}
	for (size_t i = 0; i < t->n_labels; i++) {
		kv[i].key = strcpy(p, t->labels[i].key);
		p += strlen(p) + 1;
		kv[i].value = strcpy(p, t->labels[i].value);
		p += strlen(p) + 1;
	}
	d->labels = t->n_labels ? kv : NULL;
	return d;
}

/* ---- recoveries ---------------------------------------------------------- */

static const char *const action_names[] = {
	[KM_ACTION_RESTART_POD] = "restart_pod",
	[KM_ACTION_ROLLOUT_RESTART] = "rollout_restart",
	[KM_ACTION_CORDON] = "cordon",
	[KM_ACTION_UNCORDON] = "uncordon",
	[KM_ACTION_DRAIN] = "drain",
};

static const char *const phase_names[] = {
	[KM_PHASE_REQUESTED] = "requested",
	[KM_PHASE_QUEUED] = "queued",
	[KM_PHASE_DISPATCHED] = "dispatched",
	[KM_PHASE_SUCCEEDED] = "succeeded",
	[KM_PHASE_FAILED] = "failed",
	[KM_PHASE_VERIFIED] = "verified",
	[KM_PHASE_NOT_RECOVERED] = "not_recovered",
	[KM_PHASE_CANCELLED] = "cancelled",
	[KM_PHASE_SKIPPED] = "skipped",
	[KM_PHASE_DRY_RUN] = "dry_run",
};

bool km_recovery_phase_final(int phase)
{
	switch (phase) {
	case KM_PHASE_FAILED:
	case KM_PHASE_VERIFIED:
	case KM_PHASE_NOT_RECOVERED:
	case KM_PHASE_CANCELLED:
	case KM_PHASE_SKIPPED:
	case KM_PHASE_DRY_RUN: return true;
	}
	return false;
}

const char *km_action_name(int action)
{
	return action >= 1 && action <= KM_ACTION_MAX ? action_names[action]
						      : NULL;
}

const char *km_phase_name(int phase)
{
	return phase >= 1 && phase <= KM_PHASE_MAX ? phase_names[phase] : NULL;
}

static int parse_name(const char *const *names, int max, const char *name,
		      size_t len)
{
	for (int i = 1; i <= max; i++)
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
			return i;
	return 0;
}

int km_action_parse(const char *name, size_t len)
{
	return parse_name(action_names, KM_ACTION_MAX, name, len);
}

int km_phase_parse(const char *name, size_t len)
{
	return parse_name(phase_names, KM_PHASE_MAX, name, len);
}

/* The string fields of a recovery, for measuring and copying them. */
#define RECOVERY_N_STRINGS 9
static void recovery_strings(struct km_recovery *r,
			     const char **f[RECOVERY_N_STRINGS])
{
	f[0] = &r->target;
	f[1] = &r->cluster;
	f[2] = &r->target_uid;
	f[3] = &r->reason;
	f[4] = &r->requester;
	f[5] = &r->policy;
	f[6] = &r->idempotency_key;
	f[7] = &r->skip_rule;
	f[8] = &r->last_error;
}

struct km_recovery_event *
km_recovery_event_dup(const struct km_recovery_event *e)
{
	struct km_recovery_event src = *e, *d;
	const char **f[RECOVERY_N_STRINGS];
	size_t len = sizeof *d;
	char *p;

	recovery_strings(&src.r, f);
	for (size_t i = 0; i < RECOVERY_N_STRINGS; i++)
		len += strlen(*f[i] ? *f[i] : "") + 1;
	d = malloc(len);
	if (!d)
		return NULL;
	*d = *e;
	p = (char *)(d + 1);
	recovery_strings(&d->r, f);
	for (size_t i = 0; i < RECOVERY_N_STRINGS; i++) {
		size_t n = strlen(*f[i] ? *f[i] : "") + 1;

		memcpy(p, *f[i] ? *f[i] : "", n);
		*f[i] = p;
		p += n;
	}
	return d;
}

/* ---- Kubernetes names --------------------------------------------------- */

static bool dns_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One label of [a-z0-9]([-a-z0-9]*[a-z0-9])?, n bytes long. */
static bool dns_label(const char *s, size_t n)
{
	if (!n || n > 63 || !dns_alnum(s[0]) || !dns_alnum(s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!dns_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool km_dns1123_label(const char *s)
{
	return s && dns_label(s, strlen(s));
}

bool km_dns1123_subdomain(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	const char *p = s;

	if (!n || n > 253)
		return false;
	for (;;) {
		const char *dot = memchr(p, '.', n - (size_t)(p - s));
		size_t k = dot ? (size_t)(dot - p) : n - (size_t)(p - s);

		if (!dns_label(p, k))
			return false;
		if (!dot)
			return true;
		p = dot + 1;
	}
}

int km_target_name_split(const char *s, struct km_target_parts *out, char *why,
			 size_t why_len)
{
	struct km_target_name tn;

	if (km_target_name_parse(s, &tn, why, why_len))
		return KM_EINVAL;
	if (tn.cluster_len >= sizeof out->cluster ||
	    tn.ns_len >= sizeof out->ns || tn.name_len >= sizeof out->name) {
		snprintf(why, why_len, "target name too long");
		return KM_EINVAL;
	}
	out->kind = tn.kind;
	snprintf(out->cluster, sizeof out->cluster, "%.*s", (int)tn.cluster_len,
		 tn.cluster ? tn.cluster : "");
	snprintf(out->ns, sizeof out->ns, "%.*s", (int)tn.ns_len,
		 tn.ns ? tn.ns : "");
	snprintf(out->name, sizeof out->name, "%.*s", (int)tn.name_len,
		 tn.name);
	return 0;
}
