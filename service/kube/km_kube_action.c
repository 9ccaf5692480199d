/*
 * Recovery actions as requests, and their answers as outcomes
 * (km_kube_action.h). Every string that goes into a path is checked first
 * (DNS-1123 names and UUIDs hold nothing that needs escaping in a URL or
 * JSON); bodies are built with cJSON all the same.
 */
#include "km_kube_action.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "km_arena.h"
#include "km_kube_decode.h"

#define RESTARTED_AT "kubectl.kubernetes.io/restartedAt"
#define GRACE_MAX (366LL * 24 * 3600)
#define SMP "application/strategic-merge-patch+json"

/* ---- names ------------------------------------------------------------------- */

bool km_kube_uuid(const char *s)
{
	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

/* The field's value, shown in a message: cut and made printable. */
static const char *shown(const char *s, char *buf, size_t n)
{
	size_t i = 0;

	for (; s && *s && i + 1 < n; s++)
		buf[i++] = *s >= 0x20 && *s < 0x7f && *s != '"' ? *s : '?';
	buf[i] = '\0';
	return buf;
}

static int check(bool ok, const char *field, const char *v, const char *what,
		 struct km_error *err)
{
	char buf[72];

	if (ok)
		return 0;
	if (!v)
		return km_error_set(err, KM_EINVAL, "%s: missing", field);
	return km_error_set(err, KM_EINVAL, "%s: \"%s\"%s is not %s", field,
			    shown(v, buf, 64), strlen(v) > 63 ? "..." : "",
			    what);
}

static const char *kind_name(enum km_kube_action_kind k)
{
	switch (k) {
	case KM_KUBE_ACT_RESTART_POD: return "restart pod";
	case KM_KUBE_ACT_ROLLOUT_RESTART: return "rollout restart";
	case KM_KUBE_ACT_CORDON: return "cordon";
	case KM_KUBE_ACT_UNCORDON: return "uncordon";
	case KM_KUBE_ACT_EVICT: return "evict";
	}
	return NULL;
}

/* A workload's resource in apps/v1 and its kind. */
static bool workload(enum km_kube_resource r, const char **resource,
		     const char **kind)
{
	switch (r) {
	case KM_RES_DEPLOYMENT:
		*resource = "deployments";
		*kind = "Deployment";
		return true;
	case KM_RES_STATEFULSET:
		*resource = "statefulsets";
		*kind = "StatefulSet";
		return true;
	case KM_RES_DAEMONSET:
		*resource = "daemonsets";
		*kind = "DaemonSet";
		return true;
	default: return false;
	}
}

/* Checks every field a's kind uses. */
static int validate(const struct km_kube_action *a, struct km_error *err)
{
	const char *res, *kind;
	int rc;

	if (!kind_name(a->kind))
		return km_error_set(err, KM_EINVAL, "action: unknown kind %d",
				    (int)a->kind);
	if (a->kind == KM_KUBE_ACT_CORDON || a->kind == KM_KUBE_ACT_UNCORDON)
		return check(km_dns1123_subdomain(a->name), "name", a->name,
			     "a node name (a DNS-1123 subdomain)", err);
	if (a->kind == KM_KUBE_ACT_ROLLOUT_RESTART &&
	    !workload(a->workload, &res, &kind))
		return km_error_set(err, KM_EINVAL,
				    "workload: a rollout restart is of a "
				    "Deployment, StatefulSet or DaemonSet");
	if ((rc = check(km_dns1123_label(a->ns), "namespace", a->ns,
			"a namespace (a DNS-1123 label)", err)) ||
	    (rc = check(km_dns1123_subdomain(a->name), "name", a->name,
			"an object name (a DNS-1123 subdomain)", err)))
		return rc;
	if (a->kind == KM_KUBE_ACT_ROLLOUT_RESTART)
		return 0;
	if ((rc = check(km_kube_uuid(a->uid), "uid", a->uid,
			"a uid (an RFC 4122 UUID)", err)))
		return rc;
	if (a->grace_period_s != -1 &&
	    (a->grace_period_s < 0 || a->grace_period_s > GRACE_MAX))
		return km_error_set(err, KM_EINVAL,
				    "grace_period_s: %lld is not -1 (the "
				    "pod's own) or 0 to %lld seconds",
				    (long long)a->grace_period_s, GRACE_MAX);
	return 0;
}

/* ---- requests ----------------------------------------------------------------- */

/* {"apiVersion":"v1","kind":"DeleteOptions","preconditions":{"uid":…},
 * "gracePeriodSeconds":…} into o. */
static bool delete_options(cJSON *o, const struct km_kube_action *a)
{
	cJSON *pre;

	return o && cJSON_AddStringToObject(o, "apiVersion", "v1") &&
	       cJSON_AddStringToObject(o, "kind", "DeleteOptions") &&
	       (pre = cJSON_AddObjectToObject(o, "preconditions")) &&
	       cJSON_AddStringToObject(pre, "uid", a->uid) &&
	       (a->grace_period_s < 0 ||
		cJSON_AddNumberToObject(o, "gracePeriodSeconds",
					(double)a->grace_period_s));
}

/* RFC 3339 in UTC, whole seconds, of epoch microseconds (0: now). */
static bool rfc3339(int64_t us, char *buf, size_t n)
{
	time_t t = us ? (time_t)(us / 1000000) : time(NULL);
	struct tm tm;

	if (us < 0 || !gmtime_r(&t, &tm))
		return false;
	return strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 20;
}

int km_kube_action_build(const struct km_kube_action *a,
			 struct km_kube_action_request *out,
			 struct km_error *err)
{
	const char *res = NULL, *kind = NULL;
	cJSON *doc = NULL, *o = NULL;
	char at[32];
	int n = -1, rc;
	bool ok = false;

	memset(out, 0, sizeof *out);
	if ((rc = validate(a, err)))
		return rc;
	doc = cJSON_CreateObject();
	switch (a->kind) {
	case KM_KUBE_ACT_RESTART_POD:
		out->method = "DELETE";
		out->content_type = "application/json";
		n = asprintf(&out->path, "/api/v1/namespaces/%s/pods/%s", a->ns,
			     a->name);
		ok = delete_options(doc, a);
		break;
	case KM_KUBE_ACT_EVICT:
		out->method = "POST";
		out->content_type = "application/json";
		n = asprintf(&out->path,
			     "/api/v1/namespaces/%s/pods/%s/eviction", a->ns,
			     a->name);
		ok = doc &&
		     cJSON_AddStringToObject(doc, "apiVersion", "policy/v1") &&
		     cJSON_AddStringToObject(doc, "kind", "Eviction") &&
		     (o = cJSON_AddObjectToObject(doc, "metadata")) &&
		     cJSON_AddStringToObject(o, "name", a->name) &&
		     cJSON_AddStringToObject(o, "namespace", a->ns) &&
		     delete_options(
			     cJSON_AddObjectToObject(doc, "deleteOptions"), a);
		break;
	case KM_KUBE_ACT_CORDON:
	case KM_KUBE_ACT_UNCORDON:
		out->method = "PATCH";
		out->content_type = SMP;
		n = asprintf(&out->path, "/api/v1/nodes/%s", a->name);
		ok = doc && (o = cJSON_AddObjectToObject(doc, "spec")) &&
		     cJSON_AddBoolToObject(o, "unschedulable",
					   a->kind == KM_KUBE_ACT_CORDON);
		break;
	case KM_KUBE_ACT_ROLLOUT_RESTART:
		workload(a->workload, &res, &kind);
		if (!rfc3339(a->now_us, at, sizeof at)) {
			cJSON_Delete(doc);
			return km_error_set(err, KM_EINVAL,
					    "now_us: %lld is no time",
					    (long long)a->now_us);
		}
		out->method = "PATCH";
		out->content_type = SMP;
		n = asprintf(&out->path, "/apis/apps/v1/namespaces/%s/%s/%s",
			     a->ns, res, a->name);
		ok = doc && (o = cJSON_AddObjectToObject(doc, "spec")) &&
		     (o = cJSON_AddObjectToObject(o, "template")) &&
		     (o = cJSON_AddObjectToObject(o, "metadata")) &&
		     (o = cJSON_AddObjectToObject(o, "annotations")) &&
		     cJSON_AddStringToObject(o, RESTARTED_AT, at);
		break;
	}
	if (n < 0)
		out->path = NULL;
	if (ok && n >= 0)
		out->body = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (!out->body) {
		km_kube_action_request_free(out);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	out->len = strlen(out->body);
	return 0;
}

void km_kube_action_request_free(struct km_kube_action_request *r)
{
	free(r->path);
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* ---- answers ------------------------------------------------------------------ */

const char *km_kube_outcome_name(enum km_kube_outcome o)
{
	switch (o) {
	case KM_KUBE_DONE: return "DONE";
	case KM_KUBE_GONE: return "GONE";
	case KM_KUBE_CONFLICT: return "CONFLICT";
	case KM_KUBE_THROTTLED: return "THROTTLED";
	case KM_KUBE_RETRY: return "RETRY";
	case KM_KUBE_FAILED: return "FAILED";
	}
	return "?";
}

/* "restart pod shop/web-0", "rollout restart Deployment shop/web",
 * "cordon node worker-3": what a is, for a person (the fields checked, or
 * "?" where they are not). */
static void describe(const struct km_kube_action *a, char *buf, size_t n)
{
	const char *res = "", *kind = "workload", *what = kind_name(a->kind);
	char ns[72], name[72];

	shown(a->ns, ns, 64);
	shown(a->name, name, 64);
	if (!what)
		what = "action";
	if (a->kind == KM_KUBE_ACT_CORDON || a->kind == KM_KUBE_ACT_UNCORDON)
		snprintf(buf, n, "%s node %s", what, name);
	else if (a->kind == KM_KUBE_ACT_ROLLOUT_RESTART)
		snprintf(buf, n, "%s %s %s/%s", what,
			 workload(a->workload, &res, &kind) ? kind : "workload",
			 ns, name);
	else if (a->kind == KM_KUBE_ACT_EVICT)
		snprintf(buf, n, "evict pod %s/%s", ns, name);
	else
		snprintf(buf, n, "%s %s/%s", what, ns, name);
}

/* The API server's words for "the uid precondition failed": v1.37's, and
 * those of the releases before it. */
static bool uid_precondition(const char *msg)
{
	return strstr(msg, "UID in the precondition") ||
	       strstr(msg, "UID in precondition");
}

enum km_kube_outcome km_kube_action_outcome(const struct km_kube_action *a,
					    long http_status, const char *body,
					    size_t len, int64_t *retry_after_s,
					    char *why, size_t why_len)
{
	bool pod = a->kind == KM_KUBE_ACT_RESTART_POD ||
		   a->kind == KM_KUBE_ACT_EVICT;
	enum km_kube_outcome o;
	struct km_kube_status st;
	struct km_arena ar;
	char what[200];
	char dummy[1];

	if (!why || !why_len) {
		why = dummy;
		why_len = sizeof dummy;
	}
	describe(a, what, sizeof what);
	km_arena_init(&ar, 1024);
	km_kube_parse_status(body ? body : "", body ? len : 0, &ar, &st);
	*retry_after_s = st.retry_after_s;
	switch (http_status) {
	case 200:
	case 201:
	case 202:
		o = KM_KUBE_DONE;
		snprintf(why, why_len, "%s: done (HTTP %ld)", what,
			 http_status);
		break;
	case 404:
		if (pod) {
			o = KM_KUBE_GONE;
			snprintf(why, why_len,
				 "%s: the pod is already gone; nothing to do",
				 what);
		} else {
			o = KM_KUBE_FAILED;
			snprintf(why, why_len, "%s: not found: %.300s", what,
				 st.message);
		}
		break;
	case 409:
		if (pod && uid_precondition(st.message)) {
			o = KM_KUBE_GONE;
			char uid[48];

			snprintf(why, why_len,
				 "%s: the pod of uid %s is gone and another "
				 "has its name; it is left alone",
				 what, shown(a->uid, uid, 40));
		} else {
			o = KM_KUBE_CONFLICT;
			snprintf(why, why_len,
				 "%s: a conflict; read it again and retry: "
				 "%.300s",
				 what, st.message);
		}
		break;
	case 429:
		o = KM_KUBE_THROTTLED;
		if (!strcmp(st.cause_type, "DisruptionBudget"))
			snprintf(why, why_len,
				 "%s: refused by a PodDisruptionBudget, "
				 "retry later: %.300s",
				 what,
				 *st.cause_message ? st.cause_message
						   : st.message);
		else
			snprintf(why, why_len,
				 "%s: the API server is throttling requests; "
				 "retry later%s%.300s",
				 what, *st.message ? ": " : "", st.message);
		break;
	case 0:
	case 500:
	case 502:
	case 503:
	case 504:
		o = KM_KUBE_RETRY;
		if (http_status)
			snprintf(why, why_len,
				 "%s: the API server failed (HTTP %ld); "
				 "retry%s%.300s",
				 what, http_status, *st.message ? ": " : "",
				 st.message);
		else
			snprintf(why, why_len,
				 "%s: no answer from the API server; retry",
				 what);
		break;
	default:
		o = KM_KUBE_FAILED;
		snprintf(why, why_len, "%s: refused (HTTP %ld%s%s)%s%.300s",
			 what, http_status, *st.reason ? " " : "", st.reason,
			 *st.message ? ": " : "", st.message);
		break;
	}
	km_arena_free(&ar);
	return o;
}
