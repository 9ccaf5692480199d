/*
 * Leader election on a Lease (km_kube_leader.h).
 */
#include "km_kube_leader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "km_kube_action.h"
#include "km_kube_decode.h"
#include "km_log.h"
#include "km_time.h"

#define MS 1000000LL
#define IDENTITY_MAX 128
#define RECORD_MAX 320

struct km_kube_leader {
	struct km_kube_leader_options o;
	char ns[64], name[254], identity[IDENTITY_MAX + 1];
	char path[400];       /* the Lease's */
	char collection[128]; /* its namespace's leases */
	struct km_timer timer;
	struct km_kube_req *req;

	bool leading;
	char holder[IDENTITY_MAX + 1]; /* last seen */
	/* The record last seen (holder and renewTime) and when, by the
	 * local monotonic clock, it was first seen so. */
	char record[RECORD_MAX];
	int64_t record_seen_ns;
	int64_t renewed_ns; /* the last renewal that succeeded */
	/* What the GET found, for the write that follows. */
	char rv[64], acquired[40];
	int64_t transitions;
};

static void step(struct km_kube_leader *l);

static void arm(struct km_kube_leader *l, int64_t after_ms)
{
	km_loop_timer_set(l->o.loop, &l->timer, km_mono_ns() + after_ms * MS);
}

static void fired(struct km_loop *loop, void *arg)
{
	(void)loop;
	step(arg);
}

static void tell(struct km_kube_leader *l, bool leading, const char *holder)
{
	bool changed = leading != l->leading || strcmp(holder, l->holder);

	l->leading = leading;
	if (holder != l->holder) /* (the same buffer: nothing to copy) */
		snprintf(l->holder, sizeof l->holder, "%s", holder);
	if (changed && l->o.changed)
		l->o.changed(l->o.arg, leading, l->holder);
}

/* A MicroTime: RFC 3339 in UTC with microseconds. */
static void micro_time(int64_t us, char buf[40])
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;

	size_t n;

	gmtime_r(&s, &tm);
	n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 40 - n, ".%06dZ", (int)(us % 1000000));
}

/* Leading, the renewal failed (or could not be sent): past the renew
 * deadline, it leads no more. */
static void renewal_failed(struct km_kube_leader *l, const char *why)
{
	if (l->leading &&
	    km_mono_ns() - l->renewed_ns > l->o.renew_deadline_ms * MS) {
		km_log(KM_LOG_WARN,
		       "kube: leadership lost: the Lease was not renewed within "
		       "the renew deadline",
		       "lease", l->path, "error", why, NULL);
		tell(l, false, "");
	}
	arm(l, l->o.retry_period_ms);
}

static const char *str_at(const cJSON *o, const char *a, const char *b);

static void written(void *arg, long status, const char *body, size_t len,
		    const struct km_error *err)
{
	struct km_kube_leader *l = arg;
	char why[KM_ERROR_MSG_MAX];

	l->req = NULL;
	if (status == 200 || status == 201) {
		/* The version written: what a release updates. */
		cJSON *o = cJSON_ParseWithLength(body, len);

		snprintf(l->rv, sizeof l->rv, "%s",
			 str_at(o, "metadata", "resourceVersion"));
		cJSON_Delete(o);
		l->renewed_ns = km_mono_ns();
		if (!l->leading)
			km_log(KM_LOG_INFO, "kube: leading", "lease", l->path,
			       "identity", l->identity, NULL);
		tell(l, true, l->identity);
		arm(l, l->o.retry_period_ms);
		return;
	}
	if (status == 409) { /* another candidate wrote first */
		tell(l, false, l->holder);
		arm(l, l->o.retry_period_ms);
		return;
	}
	snprintf(why, sizeof why, "%s",
		 status ? "the API server refused the Lease's write"
			: (err ? err->msg : "no answer"));
	if (status)
		km_log(KM_LOG_WARN, "kube: cannot write the Lease", "lease",
		       l->path, "status", KM_I(status), NULL);
	renewal_failed(l, why);
}

/* The Lease with holder (this candidate, or "" to give it up) renewed
 * now; rv: the version it updates (NULL: a create). cJSON_free it. */
static char *lease_body(const struct km_kube_leader *l, const char *rv,
			const char *holder)
{
	char now[40];
	cJSON *o = cJSON_CreateObject(), *meta, *spec;
	char *body = NULL;

	micro_time(km_now_us(), now);
	meta = cJSON_AddObjectToObject(o, "metadata");
	spec = cJSON_AddObjectToObject(o, "spec");
	if (o && meta && spec &&
	    cJSON_AddStringToObject(o, "apiVersion",
				    "coordination.k8s.io/v1") &&
	    cJSON_AddStringToObject(o, "kind", "Lease") &&
	    cJSON_AddStringToObject(meta, "name", l->name) &&
	    cJSON_AddStringToObject(meta, "namespace", l->ns) &&
	    (!rv || cJSON_AddStringToObject(meta, "resourceVersion", rv)) &&
	    cJSON_AddStringToObject(spec, "holderIdentity", holder) &&
	    cJSON_AddNumberToObject(spec, "leaseDurationSeconds",
				    (double)(l->o.lease_duration_ms / 1000)) &&
	    cJSON_AddStringToObject(spec, "acquireTime",
				    *l->acquired ? l->acquired : now) &&
	    cJSON_AddStringToObject(spec, "renewTime", now) &&
	    cJSON_AddNumberToObject(spec, "leaseTransitions",
				    (double)l->transitions))
		body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return body;
}

/* Writes this candidate in: a create (rv NULL) or an update of the
 * version read. */
static void write_lease(struct km_kube_leader *l, const char *rv)
{
	char *body = lease_body(l, rv, l->identity);
	struct km_error err = {0};
	int rc;

	if (!body) {
		renewal_failed(l, "out of memory");
		return;
	}
	rc = km_kube_request(l->o.client, rv ? "PUT" : "POST",
			     rv ? l->path : l->collection, "application/json",
			     body, strlen(body), written, l, &l->req, &err);
	cJSON_free(body);
	if (rc)
		renewal_failed(l, err.msg);
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);

	v = v ? cJSON_GetObjectItemCaseSensitive(v, b) : NULL;
	return cJSON_IsString(v) ? v->valuestring : "";
}

static void read_done(void *arg, long status, const char *body, size_t len,
		      const struct km_error *err)
{
	struct km_kube_leader *l = arg;
	const char *holder, *renew;
	char record[RECORD_MAX];
	int64_t now = km_mono_ns();
	cJSON *o, *t;

	l->req = NULL;
	if (status == 404) { /* nobody has made it yet */
		*l->acquired = '\0';
		l->transitions = 0;
		write_lease(l, NULL);
		return;
	}
	if (status != 200) {
		renewal_failed(l, status ? "the API server refused the Lease's "
					   "read"
					 : (err ? err->msg : "no answer"));
		return;
	}
	o = cJSON_ParseWithLength(body, len);
	holder = str_at(o, "spec", "holderIdentity");
	renew = str_at(o, "spec", "renewTime");
	snprintf(l->rv, sizeof l->rv, "%s",
		 str_at(o, "metadata", "resourceVersion"));
	snprintf(l->acquired, sizeof l->acquired, "%s",
		 str_at(o, "spec", "acquireTime"));
	t = o ? cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(o, "spec"),
			"leaseTransitions")
	      : NULL;
	l->transitions = cJSON_IsNumber(t) && t->valuedouble >= 0 &&
					 t->valuedouble < 1e15
				 ? (int64_t)t->valuedouble
				 : 0;
	snprintf(record, sizeof record, "%.128s|%.64s", holder, renew);
	if (!o || !*l->rv) {
		cJSON_Delete(o);
		renewal_failed(l, "the Lease's answer is no Lease");
		return;
	}
	if (strcmp(record, l->record)) {
		snprintf(l->record, sizeof l->record, "%s", record);
		l->record_seen_ns = now;
	}
	if (*holder && strcmp(holder, l->identity) &&
	    now - l->record_seen_ns < l->o.lease_duration_ms * MS) {
		/* Another holds it, and renewed it within a lease duration
		 * of what this elector saw. */
		tell(l, false, holder);
		cJSON_Delete(o);
		arm(l, l->o.retry_period_ms);
		return;
	}
	if (strcmp(holder, l->identity)) { /* taken over: a new term */
		*l->acquired = '\0';
		l->transitions++;
	}
	cJSON_Delete(o);
	write_lease(l, l->rv);
}

static void step(struct km_kube_leader *l)
{
	struct km_error err = {0};

	if (l->req)
		return;
	if (km_kube_get(l->o.client, l->path, read_done, l, &l->req, &err))
		renewal_failed(l, err.msg);
}

int km_kube_leader_start(const struct km_kube_leader_options *o,
			 struct km_kube_leader **out, struct km_error *err)
{
	struct km_kube_leader *l;

	*out = NULL;
	if (!o->ns || !km_dns1123_label(o->ns))
		return km_error_set(err, KM_EINVAL,
				    "lease namespace \"%s\": not a DNS-1123 "
				    "label",
				    o->ns ? o->ns : "");
	if (!o->name || !km_dns1123_subdomain(o->name))
		return km_error_set(err, KM_EINVAL,
				    "lease name \"%s\": not a DNS-1123 "
				    "subdomain",
				    o->name ? o->name : "");
	if (!o->identity || !*o->identity || strlen(o->identity) > IDENTITY_MAX)
		return km_error_set(err, KM_EINVAL,
				    "lease identity: 1 to %d bytes",
				    IDENTITY_MAX);
	l = calloc(1, sizeof *l);
	if (!l)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	l->o = *o;
	if (!l->o.lease_duration_ms)
		l->o.lease_duration_ms = 15000;
	if (!l->o.renew_deadline_ms)
		l->o.renew_deadline_ms = 10000;
	if (!l->o.retry_period_ms)
		l->o.retry_period_ms = 2000;
	if (l->o.lease_duration_ms < 1000 ||
	    l->o.renew_deadline_ms >= l->o.lease_duration_ms ||
	    l->o.retry_period_ms >= l->o.renew_deadline_ms ||
	    l->o.retry_period_ms <= 0) {
		free(l);
		return km_error_set(err, KM_EINVAL,
				    "lease durations: need retry period < "
				    "renew deadline < lease duration (>= 1 s)");
	}
	snprintf(l->ns, sizeof l->ns, "%s", o->ns);
	snprintf(l->name, sizeof l->name, "%s", o->name);
	snprintf(l->identity, sizeof l->identity, "%s", o->identity);
	snprintf(l->collection, sizeof l->collection,
		 "/apis/coordination.k8s.io/v1/namespaces/%s/leases", l->ns);
	snprintf(l->path, sizeof l->path, "%s/%s", l->collection, l->name);
	l->o.ns = l->ns;
	l->o.name = l->name;
	l->o.identity = l->identity;
	km_timer_init(&l->timer, fired, l);
	km_loop_timer_set(l->o.loop, &l->timer, km_mono_ns());
	*out = l;
	return 0;
}

static void released(void *arg, long status, const char *body, size_t len,
		     const struct km_error *err)
{
	(void)arg;
	(void)body;
	(void)len;
	(void)err;
	if (status != 200)
		km_log(KM_LOG_WARN,
		       "kube: the Lease was not given up; another replica "
		       "takes over when it expires",
		       "status", KM_I(status), NULL);
}

void km_kube_leader_stop(struct km_kube_leader *l)
{
	if (!l)
		return;
	km_loop_timer_cancel(l->o.loop, &l->timer);
	km_kube_cancel(l->req);
	if (l->leading && *l->rv) {
		/* Given up: holder "", an update of the version last written
		 * (a 409 means it is not ours any more: nothing to give). */
		char *body = lease_body(l, l->rv, "");
		struct km_error err = {0};
		struct km_kube_req *r; /* the client's until it ends */

		if (!body ||
		    km_kube_request(l->o.client, "PUT", l->path,
				    "application/json", body, strlen(body),
				    released, NULL, &r, &err))
			km_log(KM_LOG_WARN, "kube: the Lease was not given up",
			       "error", body ? err.msg : "out of memory", NULL);
		cJSON_free(body);
	}
	free(l);
}

bool km_kube_leader_leading(const struct km_kube_leader *l)
{
	return l && l->leading;
}

const char *km_kube_leader_holder(const struct km_kube_leader *l)
{
	return l ? l->holder : "";
}
