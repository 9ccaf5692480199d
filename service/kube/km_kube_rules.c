/*
 * The rules of km_kube_rules.h. Each judge writes its reason with say(),
 * which appends and truncates at the buffer's end (a reason is for a
 * person: a cut message is better than none). Strings from the API server
 * are quoted as they are, bounded by the buffer, with any byte that is not
 * UTF-8 (or a character cut by the bound) made '?': a reason goes into
 * protobuf strings, which must be UTF-8.
 */
#include "km_kube_rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "km_model.h"
#include "km_pbcheck.h"

#define SEC 1000000LL
#define LEASE_GRACE_DEFAULT (40 * SEC)
#define POD_GRACE_DEFAULT (300 * SEC)

static void start(struct km_kube_verdict *v, int state)
{
	v->state = state;
	v->reason[0] = '\0';
}

__attribute__((format(printf, 2, 3))) static void say(struct km_kube_verdict *v,
						      const char *fmt, ...)
{
	size_t len = strnlen(v->reason, sizeof v->reason);
	va_list ap;

	if (len >= sizeof v->reason - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(v->reason + len, sizeof v->reason - len, fmt, ap);
	va_end(ap);
	km_utf8_repair(v->reason + len,
		       strnlen(v->reason, sizeof v->reason) - len);
}

/* "52s", "6m12s", "2h5m": how long, as kubectl shows ages. */
static const char *span(char buf[32], int64_t us)
{
	int64_t s = us < 0 ? 0 : us / SEC;

	if (s < 60)
		snprintf(buf, 32, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, 32, "%lldm%llds", (long long)(s / 60),
			 (long long)(s % 60));
	else
		snprintf(buf, 32, "%lldh%lldm", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	return buf;
}

static bool has(const char *s)
{
	return s && *s;
}

/* ---- nodes ------------------------------------------------------------------ */

void km_kube_judge_node(const struct km_kube_node *n, int64_t now_us,
			const struct km_kube_rules_options *o,
			struct km_kube_verdict *v)
{
	int64_t grace = o && o->lease_grace_us > 0 ? o->lease_grace_us
						   : LEASE_GRACE_DEFAULT;
	char a[32], b[32];

	/* The Lease first: a silent kubelet leaves Ready as it last wrote
	 * it, True included, until the node lifecycle controller notices. */
	if (n->lease_renew_us && now_us - n->lease_renew_us > grace) {
		start(v, KM_STATE_UNHEALTHY);
		say(v,
		    "node lease not renewed for %s (grace %s): the kubelet "
		    "has gone silent",
		    span(a, now_us - n->lease_renew_us), span(b, grace));
		if (n->ready == KM_COND_TRUE)
			say(v, "; Ready is still True from before");
		return;
	}
	switch (n->ready) {
	case KM_COND_TRUE: break;
	case KM_COND_FALSE:
		start(v, KM_STATE_UNHEALTHY);
		say(v, "node is not ready");
		if (has(n->ready_reason))
			say(v, ": %s", n->ready_reason);
		if (has(n->ready_message))
			say(v, ": %s", n->ready_message);
		return;
	case KM_COND_UNKNOWN:
		start(v, KM_STATE_UNHEALTHY);
		say(v, "node is unreachable: Ready is Unknown");
		if (has(n->ready_reason))
			say(v, " (%s)", n->ready_reason);
		if (has(n->ready_message))
			say(v, ": %s", n->ready_message);
		return;
	default:
		start(v, KM_STATE_UNHEALTHY);
		say(v, "node has no Ready condition");
		return;
	}

	start(v, KM_STATE_HEALTHY);
	{
		static const char *const names[] = {"MemoryPressure",
						    "DiskPressure",
						    "PIDPressure",
						    "NetworkUnavailable"};
		const enum km_kube_cond c[] = {n->memory_pressure,
					       n->disk_pressure,
					       n->pid_pressure,
					       n->network_unavailable};
		int k = 0;

		for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
			if (c[i] != KM_COND_TRUE)
				continue;
			if (!k++) {
				start(v, KM_STATE_DEGRADED);
				say(v, "node is ready but under pressure: %s",
				    names[i]);
			} else {
				say(v, ", %s", names[i]);
			}
		}
	}
	if (v->state == KM_STATE_HEALTHY)
		say(v, "node is ready");
}

/* ---- pods ------------------------------------------------------------------- */

/* Waiting reasons that will not fix themselves by waiting a little:
 * judged at once, whatever the startup grace. */
static bool stuck_reason(const char *r)
{
	static const char *const bad[] = {
		"CrashLoopBackOff",  "ImagePullBackOff",
		"ErrImagePull",      "CreateContainerConfigError",
		"InvalidImageName",  "CreateContainerError",
		"RunContainerError", "ErrImageNeverPull",
	};

	if (!r)
		return false;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (!strcmp(r, bad[i]))
			return true;
	return false;
}

static const struct km_kube_container *
stuck_container(const struct km_kube_container *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (stuck_reason(c[i].waiting_reason))
			return &c[i];
	return NULL;
}

static void say_stuck(struct km_kube_verdict *v,
		      const struct km_kube_container *c, bool init)
{
	start(v, KM_STATE_UNHEALTHY);
	say(v, "%scontainer %s is in %s", init ? "init " : "",
	    has(c->name) ? c->name : "(unnamed)", c->waiting_reason);
	if (c->restart_count > 0 || has(c->last_terminated_reason)) {
		say(v, " (%d restart%s", c->restart_count,
		    c->restart_count == 1 ? "" : "s");
		if (has(c->last_terminated_reason))
			say(v, ", last exit: %s", c->last_terminated_reason);
		say(v, ")");
	}
	if (has(c->waiting_message))
		say(v, ": %s", c->waiting_message);
}

void km_kube_judge_pod(const struct km_kube_pod *p, int64_t now_us,
		       const struct km_kube_rules_options *o,
		       struct km_kube_verdict *v)
{
	int64_t grace = o && o->pod_startup_grace_us > 0
				? o->pod_startup_grace_us
				: POD_GRACE_DEFAULT;
	const struct km_kube_container *c;
	char a[32], b[32];

	/* A container that cannot start says more than the phase. */
	if ((c = stuck_container(p->init_containers, p->n_init_containers))) {
		say_stuck(v, c, true);
		return;
	}
	if ((c = stuck_container(p->containers, p->n_containers))) {
		say_stuck(v, c, false);
		return;
	}

	switch (p->phase) {
	case KM_POD_SUCCEEDED:
		start(v, KM_STATE_HEALTHY);
		say(v, "pod completed");
		if (has(p->owner_kind))
			say(v, " (its %s's work is done)", p->owner_kind);
		return;
	case KM_POD_FAILED:
		start(v, KM_STATE_UNHEALTHY);
		say(v, "pod failed");
		if (has(p->reason))
			say(v, ": %s", p->reason);
		if (has(p->message))
			say(v, ": %s", p->message);
		return;
	case KM_POD_UNKNOWN:
		start(v, KM_STATE_UNHEALTHY);
		say(v, "pod state is Unknown (its node cannot be reached)");
		return;
	case KM_POD_PENDING: {
		int64_t age = now_us - p->created_us;

		if (age <= grace) {
			start(v, KM_KUBE_NO_VERDICT);
			say(v, "pod is pending");
			return;
		}
		start(v, KM_STATE_UNHEALTHY);
		say(v, "pod pending for %s (startup grace %s)", span(a, age),
		    span(b, grace));
		if (p->scheduled == KM_COND_FALSE)
			say(v, ": not scheduled%s%s",
			    has(p->scheduled_message) ? ": " : "",
			    has(p->scheduled_message) ? p->scheduled_message
						      : "");
		else if (has(p->message))
			say(v, ": %s", p->message);
		return;
	}
	case KM_POD_RUNNING: break;
	default:
		start(v, KM_KUBE_NO_VERDICT);
		say(v, "pod has no phase yet");
		return;
	}

	/* Running: every container ready, or which are not. */
	{
		size_t not_ready = 0;

		for (size_t i = 0; i < p->n_containers; i++)
			not_ready += !p->containers[i].ready;
		if (!not_ready) {
			start(v, KM_STATE_HEALTHY);
			say(v, "pod is running, %zu of %zu containers ready",
			    p->n_containers, p->n_containers);
			return;
		}
		{
			int64_t since = p->started_us ? p->started_us
						      : p->created_us;
			int64_t age = now_us - since;

			start(v, age <= grace ? KM_KUBE_NO_VERDICT
					      : KM_STATE_UNHEALTHY);
			say(v,
			    "pod is running, %zu of %zu containers not "
			    "ready:",
			    not_ready, p->n_containers);
			for (size_t i = 0, k = 0; i < p->n_containers; i++)
				if (!p->containers[i].ready)
					say(v, "%s %s", k++ ? "," : "",
					    has(p->containers[i].name)
						    ? p->containers[i].name
						    : "(unnamed)");
			if (age > grace)
				say(v, " (started %s ago, startup grace %s)",
				    span(a, age), span(b, grace));
		}
	}
}

static const struct km_kube_container *
find_container(const struct km_kube_pod *p, const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < p->n_containers; i++)
		if (p->containers[i].name &&
		    !strcmp(p->containers[i].name, name))
			return &p->containers[i];
	return NULL;
}

size_t km_kube_pod_events(const struct km_kube_pod *before,
			  const struct km_kube_pod *after,
			  void (*fn)(const char *event, void *arg), void *arg)
{
	char line[KM_KUBE_REASON_MAX];
	size_t n = 0;

	for (size_t i = 0; i < after->n_containers; i++) {
		const struct km_kube_container *c = &after->containers[i];
		const struct km_kube_container *was =
			before ? find_container(before, c->name) : NULL;
		int32_t more;

		/* A pod seen for the first time has restarted before we
		 * looked: that is its past, not an event now. */
		if (!was || c->restart_count <= was->restart_count)
			continue;
		more = c->restart_count - was->restart_count;
		if (has(c->last_terminated_reason) &&
		    !strcmp(c->last_terminated_reason, "OOMKilled"))
			snprintf(line, sizeof line,
				 "container %s was OOMKilled (exit code %d) "
				 "and restarted: %d restart%s in all",
				 c->name ? c->name : "(unnamed)",
				 c->last_exit_code, c->restart_count,
				 c->restart_count == 1 ? "" : "s");
		else if (has(c->last_terminated_reason))
			snprintf(line, sizeof line,
				 "container %s restarted %s(last exit: %s, "
				 "code %d): %d restart%s in all",
				 c->name ? c->name : "(unnamed)",
				 more > 1 ? "more than once " : "",
				 c->last_terminated_reason, c->last_exit_code,
				 c->restart_count,
				 c->restart_count == 1 ? "" : "s");
		else
			snprintf(line, sizeof line,
				 "container %s restarted%s: %d restart%s in "
				 "all",
				 c->name ? c->name : "(unnamed)",
				 more > 1 ? " more than once" : "",
				 c->restart_count,
				 c->restart_count == 1 ? "" : "s");
		fn(line, arg);
		n++;
	}
	return n;
}

/* ---- services --------------------------------------------------------------- */

void km_kube_judge_service(const struct km_kube_service *s,
			   struct km_kube_verdict *v)
{
	if (!s->has_selector) {
		start(v, KM_KUBE_NO_VERDICT);
		say(v, "service has no selector: its endpoints are managed "
		       "elsewhere");
		return;
	}
	if (s->ready_endpoints > 0) {
		start(v, KM_STATE_HEALTHY);
		say(v, "%d of %d endpoints ready", s->ready_endpoints,
		    s->endpoints);
		return;
	}
	start(v, KM_STATE_UNHEALTHY);
	if (s->endpoints > 0)
		say(v, "no ready endpoints (0 of %d ready)", s->endpoints);
	else
		say(v, "no endpoints: no pod matches the selector");
}

/* ---- workloads -------------------------------------------------------------- */

void km_kube_judge_workload(const struct km_kube_workload *w,
			    struct km_kube_verdict *v)
{
	const char *unit =
		w->kind && !strcmp(w->kind, "DaemonSet") ? "pods" : "replicas";

	if (w->progressing == KM_COND_FALSE && has(w->progressing_reason) &&
	    !strcmp(w->progressing_reason, "ProgressDeadlineExceeded")) {
		start(v, KM_STATE_UNHEALTHY);
		say(v, "rollout stuck: ProgressDeadlineExceeded");
		if (has(w->progressing_message))
			say(v, ": %s", w->progressing_message);
		say(v, " (%d of %d %s ready)", w->ready, w->desired, unit);
		return;
	}
	if (w->desired <= 0) {
		start(v, KM_STATE_HEALTHY);
		say(v, "scaled to zero");
		return;
	}
	if (w->ready >= w->desired) {
		start(v, KM_STATE_HEALTHY);
		say(v, "%d of %d %s ready", w->ready, w->desired, unit);
		return;
	}
	start(v, w->ready > 0 ? KM_STATE_DEGRADED : KM_STATE_UNHEALTHY);
	say(v, "%d of %d %s ready", w->ready > 0 ? w->ready : 0, w->desired,
	    unit);
}

/* ---- the control plane ------------------------------------------------------ */

void km_kube_judge_apiserver(const char *endpoint, long http_status,
			     const char *body, size_t len,
			     struct km_kube_check *checks, size_t max,
			     size_t *n, struct km_kube_verdict *v)
{
	size_t pos = 0, failed = 0;

	*n = 0;
	start(v, http_status == 200 ? KM_STATE_HEALTHY : KM_STATE_UNHEALTHY);
	if (http_status == 200)
		say(v, "%s ok", endpoint);
	else if (http_status > 0)
		say(v, "%s answered HTTP %ld", endpoint, http_status);
	else
		say(v, "%s did not answer", endpoint);

	/* Lines "[+]name ok" and "[-]name failed: reason withheld". */
	while (body && pos < len) {
		const char *line = body + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - line) : len - pos;
		const char *name, *sp;
		bool ok;

		pos += l + (nl ? 1 : 0);
		if (l < 4 || line[0] != '[' || line[2] != ']' ||
		    (line[1] != '+' && line[1] != '-'))
			continue;
		ok = line[1] == '+';
		name = line + 3;
		sp = memchr(name, ' ', l - 3);
		if (!sp || sp == name)
			continue;
		if (*n < max) {
			checks[*n].name = name;
			checks[*n].name_len = (size_t)(sp - name);
			checks[*n].ok = ok;
		}
		(*n)++;
		if (!ok && http_status != 200) {
			say(v, "%s%.*s", failed++ ? ", " : ": failed ",
			    (int)(sp - name), name);
		}
	}
}
