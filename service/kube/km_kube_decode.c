/*
 * Reading the API server's JSON (km_kube_decode.h). Each field is fetched
 * by a path of names with a getter that checks its type and says which
 * field was wrong; the path of the object being read is kept in struct rd
 * only to be named in errors.
 */
#include "km_kube_decode.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "km_model.h"
#include "km_pbcheck.h"

struct rd {
	struct km_arena *a;
	struct km_error *err;
	const char *kind; /* for messages: "Pod" */
};

/* ---- cJSON's memory -------------------------------------------------------------- */

/* While this thread parses an answer, cJSON's nodes come from the answer's
 * arena and are dropped with it, not freed one by one: a third of cJSON's
 * time on a list page was malloc and free (bench/RESULTS.md). Elsewhere,
 * and on every other thread, cJSON uses malloc and free as before. The
 * hooks are process-wide, so they are set once, before main and before
 * any thread. */
static __thread struct km_arena *tree_arena;

static void *tree_alloc(size_t n)
{
	return tree_arena ? km_arena_alloc(tree_arena, n) : malloc(n);
}

static void tree_free(void *p)
{
	if (!tree_arena)
		free(p);
}

__attribute__((constructor)) static void tree_hooks(void)
{
	cJSON_Hooks h = {.malloc_fn = tree_alloc, .free_fn = tree_free};

	cJSON_InitHooks(&h);
}

static const cJSON *get(const cJSON *o, const char *name)
{
	return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name)
				 : NULL;
}

/* JSON null is "not given", as Kubernetes reads it. */
static bool absent(const cJSON *v)
{
	return !v || cJSON_IsNull(v);
}

static int bad(struct rd *r, const char *path, const char *what)
{
	return km_error_set(r->err, KM_EINVAL, "%s: %s: %s", r->kind, path,
			    what);
}

/* A string kept as it is when it is UTF-8, else copied with '?' for each
 * byte that is not. */
static int text(struct rd *r, const char *s, const char *path, const char **out)
{
	size_t n = strlen(s), bad_at = km_utf8_invalid_at(s, n);
	char *copy;

	if (bad_at == n) {
		*out = s;
		return 0;
	}
	copy = km_arena_strndup(r->a, s, n);
	if (!copy)
		return km_error_set(r->err, KM_ENOMEM, "%s: out of memory",
				    path);
	km_utf8_repair(copy + bad_at, n - bad_at);
	*out = copy;
	return 0;
}

static int get_str(struct rd *r, const cJSON *o, const char *name,
		   const char *path, const char **out)
{
	const cJSON *v = get(o, name);

	*out = NULL;
	if (absent(v))
		return 0;
	if (!cJSON_IsString(v) || !v->valuestring)
		return bad(r, path, "expected a string");
	return text(r, v->valuestring, path, out);
}

static int get_bool(struct rd *r, const cJSON *o, const char *name,
		    const char *path, bool *out)
{
	const cJSON *v = get(o, name);

	if (absent(v))
		return 0;
	if (!cJSON_IsBool(v))
		return bad(r, path, "expected true or false");
	*out = cJSON_IsTrue(v);
	return 0;
}

/* An integer in [min, max]; JSON numbers reach cJSON as doubles, exact up
 * to 2^53, far beyond any field read here. */
static int get_int(struct rd *r, const cJSON *o, const char *name,
		   const char *path, int64_t min, int64_t max, int64_t *out)
{
	const cJSON *v = get(o, name);
	double d;

	if (absent(v))
		return 0;
	if (!cJSON_IsNumber(v))
		return bad(r, path, "expected an integer");
	d = v->valuedouble;
	/* NaN fails both comparisons; then the integer part must be all. */
	if (!(d >= (double)min && d <= (double)max) || (double)(int64_t)d != d)
		return km_error_set(r->err, KM_EINVAL,
				    "%s: %s: expected an integer from %lld "
				    "to %lld",
				    r->kind, path, (long long)min,
				    (long long)max);
	*out = (int64_t)d;
	return 0;
}

static int get_i32(struct rd *r, const cJSON *o, const char *name,
		   const char *path, int32_t *out)
{
	int64_t v = *out;
	int rc = get_int(r, o, name, path, 0, INT32_MAX, &v);

	*out = (int32_t)v;
	return rc;
}

static int get_time(struct rd *r, const cJSON *o, const char *name,
		    const char *path, int64_t *out)
{
	const cJSON *v = get(o, name);
	int64_t us;

	if (absent(v))
		return 0;
	if (!cJSON_IsString(v) || !v->valuestring ||
	    (us = km_kube_parse_time(v->valuestring)) < 0)
		return bad(r, path, "expected a time (RFC 3339)");
	*out = us;
	return 0;
}

static int get_object(struct rd *r, const cJSON *o, const char *name,
		      const char *path, const cJSON **out)
{
	const cJSON *v = get(o, name);

	*out = NULL;
	if (absent(v))
		return 0;
	if (!cJSON_IsObject(v))
		return bad(r, path, "expected an object");
	*out = v;
	return 0;
}

static int get_array(struct rd *r, const cJSON *o, const char *name,
		     const char *path, const cJSON **out, size_t *n)
{
	const cJSON *v = get(o, name);

	*out = NULL;
	*n = 0;
	if (absent(v))
		return 0;
	if (!cJSON_IsArray(v))
		return bad(r, path, "expected a list");
	*out = v;
	*n = (size_t)cJSON_GetArraySize(v);
	return 0;
}

static enum km_kube_cond cond_status(const char *s)
{
	if (!s)
		return KM_COND_ABSENT;
	if (!strcmp(s, "True"))
		return KM_COND_TRUE;
	if (!strcmp(s, "False"))
		return KM_COND_FALSE;
	return KM_COND_UNKNOWN; /* "Unknown", or anything else */
}

/* ---- conditions, by type ----------------------------------------------------- */

struct cond {
	const char *type;
	enum km_kube_cond *status;
	const char **reason, **message; /* may be NULL */
};

/* Fills each wanted condition from status.conditions, wherever in the list
 * it is; a type given twice is read where it is last, as Go decodes it
 * into a map. */
static int conditions(struct rd *r, const cJSON *status, struct cond *want,
		      size_t n_want)
{
	const cJSON *list, *c;
	size_t n, i = 0;
	char path[64];
	int rc;

	if ((rc = get_array(r, status, "conditions", "status.conditions", &list,
			    &n)))
		return rc;
	cJSON_ArrayForEach(c, list)
	{
		const char *type, *st;

		snprintf(path, sizeof path, "status.conditions[%zu]", i++);
		if (!cJSON_IsObject(c))
			return bad(r, path, "expected an object");
		if ((rc = get_str(r, c, "type", path, &type)))
			return rc;
		if (!type)
			continue;
		for (size_t k = 0; k < n_want; k++) {
			if (strcmp(type, want[k].type))
				continue;
			if ((rc = get_str(r, c, "status", path, &st)))
				return rc;
			*want[k].status = cond_status(st);
			if (want[k].reason &&
			    (rc = get_str(r, c, "reason", path,
					  want[k].reason)))
				return rc;
			if (want[k].message &&
			    (rc = get_str(r, c, "message", path,
					  want[k].message)))
				return rc;
		}
	}
	return 0;
}

/* ---- metadata ---------------------------------------------------------------- */

/* metadata.labels: strings, at most KM_KUBE_LABELS_MAX kept (the first;
 * a key given twice keeps its first value, as cJSON reads one). */
static int labels_of(struct rd *r, const cJSON *md, struct km_kube_meta *m)
{
	const cJSON *labels, *l;
	struct km_kv *kv;
	size_t n = 0;
	int rc;

	if ((rc = get_object(r, md, "labels", "metadata.labels", &labels)) ||
	    !labels || !labels->child)
		return rc;
	kv = km_arena_alloc(r->a, KM_KUBE_LABELS_MAX * sizeof *kv);
	if (!kv)
		return km_error_set(r->err, KM_ENOMEM, "out of memory");
	cJSON_ArrayForEach(l, labels)
	{
		bool seen = false;

		if (!cJSON_IsString(l) || !l->valuestring || !l->string)
			return bad(r, "metadata.labels", "expected strings");
		for (size_t i = 0; i < n && !seen; i++)
			seen = !strcmp(kv[i].key, l->string);
		if (seen || n == KM_KUBE_LABELS_MAX)
			continue;
		if ((rc = text(r, l->string, "metadata.labels", &kv[n].key)) ||
		    (rc = text(r, l->valuestring, "metadata.labels",
			       &kv[n].value)))
			return rc;
		n++;
	}
	m->labels = kv;
	m->n_labels = n;
	return 0;
}

static int meta(struct rd *r, const cJSON *obj, struct km_kube_meta *m)
{
	const cJSON *md, *refs, *ref;
	int64_t deleted = 0;
	size_t n, i = 0;
	char path[64];
	int rc;

	if ((rc = get_object(r, obj, "metadata", "metadata", &md)))
		return rc;
	if (!md)
		return bad(r, "metadata", "missing");
	if ((rc = get_str(r, md, "namespace", "metadata.namespace", &m->ns)) ||
	    (rc = get_str(r, md, "name", "metadata.name", &m->name)) ||
	    (rc = get_str(r, md, "uid", "metadata.uid", &m->uid)) ||
	    (rc = get_str(r, md, "resourceVersion", "metadata.resourceVersion",
			  &m->resource_version)) ||
	    (rc = get_time(r, md, "creationTimestamp",
			   "metadata.creationTimestamp", &m->created_us)) ||
	    (rc = get_time(r, md, "deletionTimestamp",
			   "metadata.deletionTimestamp", &deleted)) ||
	    (rc = get_array(r, md, "ownerReferences",
			    "metadata.ownerReferences", &refs, &n)))
		return rc;
	if (!m->ns)
		m->ns = "";
	m->deleting = deleted > 0;
	if ((rc = labels_of(r, md, m)))
		return rc;
	cJSON_ArrayForEach(ref, refs)
	{
		bool controller = false;

		snprintf(path, sizeof path, "metadata.ownerReferences[%zu]",
			 i++);
		if (!cJSON_IsObject(ref))
			return bad(r, path, "expected an object");
		if ((rc = get_bool(r, ref, "controller", path, &controller)))
			return rc;
		if (!controller)
			continue;
		if ((rc = get_str(r, ref, "kind", path, &m->owner_kind)) ||
		    (rc = get_str(r, ref, "name", path, &m->owner_name)) ||
		    (rc = get_str(r, ref, "uid", path, &m->owner_uid)))
			return rc;
		break;
	}
	return 0;
}

/* ---- kinds ------------------------------------------------------------------- */

static int node(struct rd *r, const cJSON *obj, struct km_kube_node *n)
{
	const cJSON *md, *labels, *spec, *status;
	struct cond want[] = {
		{"Ready", &n->ready, &n->ready_reason, &n->ready_message},
		{"MemoryPressure", &n->memory_pressure, NULL, NULL},
		{"DiskPressure", &n->disk_pressure, NULL, NULL},
		{"PIDPressure", &n->pid_pressure, NULL, NULL},
		{"NetworkUnavailable", &n->network_unavailable, NULL, NULL},
	};
	int rc;

	if ((rc = get_object(r, obj, "metadata", "metadata", &md)) ||
	    (rc = get_object(r, md, "labels", "metadata.labels", &labels)) ||
	    (rc = get_str(r, labels, "topology.kubernetes.io/zone",
			  "metadata.labels[topology.kubernetes.io/zone]",
			  &n->zone)) ||
	    (!n->zone &&
	     (rc = get_str(r, labels, "failure-domain.beta.kubernetes.io/zone",
			   "metadata.labels[failure-domain.beta.kubernetes.io/"
			   "zone]",
			   &n->zone))) ||
	    (rc = get_object(r, obj, "spec", "spec", &spec)) ||
	    (rc = get_bool(r, spec, "unschedulable", "spec.unschedulable",
			   &n->unschedulable)) ||
	    (rc = get_object(r, obj, "status", "status", &status)))
		return rc;
	return conditions(r, status, want, sizeof want / sizeof want[0]);
}

static int lease(struct rd *r, const cJSON *obj, struct km_kube_lease *l)
{
	const cJSON *spec;
	int rc;

	if ((rc = get_object(r, obj, "spec", "spec", &spec)) ||
	    (rc = get_time(r, spec, "renewTime", "spec.renewTime",
			   &l->renew_us)))
		return rc;
	return get_i32(r, spec, "leaseDurationSeconds",
		       "spec.leaseDurationSeconds", &l->duration_s);
}

static int containers(struct rd *r, const cJSON *status, const char *field,
		      const struct km_kube_container **out, size_t *n_out)
{
	const cJSON *list, *c;
	struct km_kube_container *v;
	size_t n, i = 0;
	char path[96];
	int rc;

	*out = NULL;
	*n_out = 0;
	if ((rc = get_array(r, status, field, field, &list, &n)) || !n)
		return rc;
	if (n > KM_KUBE_CONTAINERS_MAX)
		n = KM_KUBE_CONTAINERS_MAX; /* as the cache keeps them */
	v = km_arena_alloc(r->a, n * sizeof *v);
	if (!v)
		return km_error_set(r->err, KM_ENOMEM, "out of memory");
	memset(v, 0, n * sizeof *v);
	cJSON_ArrayForEach(c, list)
	{
		const cJSON *state, *waiting, *last, *term;
		struct km_kube_container *k = &v[i];
		int64_t code = 0;

		if (i == n)
			break;
		snprintf(path, sizeof path, "status.%s[%zu]", field, i++);
		if (!cJSON_IsObject(c))
			return bad(r, path, "expected an object");
		if ((rc = get_str(r, c, "name", path, &k->name)) ||
		    (rc = get_bool(r, c, "ready", path, &k->ready)) ||
		    (rc = get_i32(r, c, "restartCount", path,
				  &k->restart_count)) ||
		    (rc = get_object(r, c, "state", path, &state)) ||
		    (rc = get_object(r, state, "waiting", path, &waiting)) ||
		    (rc = get_str(r, waiting, "reason", path,
				  &k->waiting_reason)) ||
		    (rc = get_str(r, waiting, "message", path,
				  &k->waiting_message)) ||
		    (rc = get_object(r, c, "lastState", path, &last)) ||
		    (rc = get_object(r, last, "terminated", path, &term)) ||
		    (rc = get_str(r, term, "reason", path,
				  &k->last_terminated_reason)) ||
		    (rc = get_int(r, term, "exitCode", path, INT32_MIN,
				  INT32_MAX, &code)))
			return rc;
		k->last_exit_code = (int32_t)code;
	}
	*out = v;
	*n_out = i;
	return 0;
}

/* ---- a pod's own probes, for the mirror ---------------------------------------- */

void km_kube_probe_settle(struct km_kube_probe *k, const char *host,
			  const char *scheme, bool named_port,
			  const char *pod_ip)
{
	if (!k->type) {
		k->skip = "only httpGet, tcpSocket and grpc probes are run "
			  "from outside the pod";
		return;
	}
	/* The kubelet would probe the host named, kubemedic probes only the
	 * pod's own address. */
	if (host && *host && (!pod_ip || strcmp(host, pod_ip)))
		k->skip = "it names a host other than the pod's address";
	if (!k->port)
		k->skip = named_port ? "its named port is not one of the "
				       "container's ports"
				     : "no port";
	if (k->type == KM_PROBE_HTTP) {
		k->https = scheme && !strcmp(scheme, "HTTPS");
		if (scheme && *scheme && strcmp(scheme, "HTTP") && !k->https)
			k->skip = "its scheme is neither HTTP nor HTTPS";
	}
	if (k->skip)
		k->type = 0;
}

/* An IntOrString port: a number, or the name of one of the container's
 * ports (*named; 0 when it names none of them). */
static int probe_port(struct rd *r, const cJSON *container, const cJSON *h,
		      const char *path, int32_t *port, bool *named)
{
	const cJSON *v = get(h, "port"), *ports, *cp;

	*port = 0;
	*named = false;
	if (cJSON_IsNumber(v)) {
		int64_t n = 0;
		int rc = get_int(r, h, "port", path, 1, 65535, &n);

		*port = (int32_t)n;
		return rc;
	}
	if (!cJSON_IsString(v))
		return 0;
	*named = true;
	ports = get(container, "ports");
	if (!cJSON_IsArray(ports))
		ports = NULL;
	cJSON_ArrayForEach(cp, ports)
	{
		const cJSON *name = get(cp, "name"),
			    *num = get(cp, "containerPort");

		if (cJSON_IsString(name) &&
		    !strcmp(name->valuestring, v->valuestring) &&
		    cJSON_IsNumber(num) && num->valuedouble >= 1 &&
		    num->valuedouble <= 65535 &&
		    num->valuedouble == (double)(int32_t)num->valuedouble) {
			*port = (int32_t)num->valuedouble;
			return 0;
		}
	}
	return 0;
}

static int probe_of(struct rd *r, const cJSON *container, const cJSON *pr,
		    const char *path, const char *pod_ip,
		    struct km_kube_probe *k)
{
	const cJSON *http, *tcp, *grpc, *hdrs, *hv;
	const char *host = NULL, *scheme = NULL;
	bool named = false;
	int rc;

	if ((rc = get_i32(r, pr, "initialDelaySeconds", path,
			  &k->initial_delay_s)) ||
	    (rc = get_i32(r, pr, "periodSeconds", path, &k->period_s)) ||
	    (rc = get_i32(r, pr, "timeoutSeconds", path, &k->timeout_s)) ||
	    (rc = get_i32(r, pr, "successThreshold", path, &k->success)) ||
	    (rc = get_i32(r, pr, "failureThreshold", path, &k->failure)) ||
	    (rc = get_object(r, pr, "httpGet", path, &http)) ||
	    (rc = get_object(r, pr, "tcpSocket", path, &tcp)) ||
	    (rc = get_object(r, pr, "grpc", path, &grpc)))
		return rc;
	if (http) {
		size_t n = 0, i = 0;

		k->type = KM_PROBE_HTTP;
		if ((rc = get_str(r, http, "path", path, &k->path)) ||
		    (rc = get_str(r, http, "scheme", path, &scheme)) ||
		    (rc = get_array(r, http, "httpHeaders", path, &hdrs, &n)) ||
		    (rc = get_str(r, http, "host", path, &host)) ||
		    (rc = probe_port(r, container, http, path, &k->port,
				     &named)))
			return rc;
		if (n > 64)
			n = 64; /* KM_PROBE_MAX_HEADERS */
		if (n) {
			const char **h =
				km_arena_alloc(r->a, 2 * n * sizeof *h);

			if (!h)
				return km_error_set(r->err, KM_ENOMEM,
						    "out of memory");
			cJSON_ArrayForEach(hv, hdrs)
			{
				if (i == n)
					break;
				if ((rc = get_str(r, hv, "name", path,
						  &h[2 * i])) ||
				    (rc = get_str(r, hv, "value", path,
						  &h[2 * i + 1])))
					return rc;
				if (!h[2 * i])
					continue; /* refused by the checks */
				if (!h[2 * i + 1])
					h[2 * i + 1] = "";
				i++;
			}
			k->headers = h;
			k->n_headers = i;
		}
	} else if (tcp) {
		k->type = KM_PROBE_TCP;
		if ((rc = get_str(r, tcp, "host", path, &host)) ||
		    (rc = probe_port(r, container, tcp, path, &k->port,
				     &named)))
			return rc;
	} else if (grpc) {
		int64_t port = 0;

		k->type = KM_PROBE_GRPC;
		if ((rc = get_int(r, grpc, "port", path, 1, 65535, &port)) ||
		    (rc = get_str(r, grpc, "service", path, &k->service)))
			return rc;
		k->port = (int32_t)port;
	}
	km_kube_probe_settle(k, host, scheme, named, pod_ip);
	return 0;
}

/* spec.containers' livenessProbe and readinessProbe, of a pod annotated
 * kubemedic.io/probe: "true". */
static int pod_probes(struct rd *r, const cJSON *spec, struct km_kube_pod *p)
{
	static const struct {
		const char *field, *which;
	} kinds[] = {{"livenessProbe", "liveness"},
		     {"readinessProbe", "readiness"}};
	const cJSON *list, *c;
	struct km_kube_probe *v;
	size_t n, i = 0, out = 0;
	char path[96];
	int rc;

	if ((rc = get_array(r, spec, "containers", "spec.containers", &list,
			    &n)) ||
	    !n)
		return rc;
	v = km_arena_alloc(r->a, KM_KUBE_PROBES_MAX * sizeof *v);
	if (!v)
		return km_error_set(r->err, KM_ENOMEM, "out of memory");
	memset(v, 0, KM_KUBE_PROBES_MAX * sizeof *v);
	cJSON_ArrayForEach(c, list)
	{
		const char *name = NULL;

		snprintf(path, sizeof path, "spec.containers[%zu]", i++);
		if (!cJSON_IsObject(c))
			return bad(r, path, "expected an object");
		if ((rc = get_str(r, c, "name", path, &name)))
			return rc;
		for (size_t k = 0; name && k < 2; k++) {
			const cJSON *pr;

			snprintf(path, sizeof path, "spec.containers[%zu].%s",
				 i - 1, kinds[k].field);
			if ((rc = get_object(r, c, kinds[k].field, path, &pr)))
				return rc;
			if (!pr)
				continue;
			if (out == KM_KUBE_PROBES_MAX)
				break;
			v[out].container = name;
			v[out].which = kinds[k].which;
			if ((rc = probe_of(r, c, pr, path, p->pod_ip, &v[out])))
				return rc;
			out++;
		}
	}
	p->probes = v;
	p->n_probes = out;
	return 0;
}

static int pod(struct rd *r, const cJSON *obj, struct km_kube_pod *p)
{
	const cJSON *spec, *status;
	const char *phase = NULL;
	struct cond want[] = {
		{"PodScheduled", &p->scheduled, NULL, &p->scheduled_message},
	};
	static const struct {
		const char *name;
		enum km_kube_pod_phase phase;
	} phases[] = {
		{"Pending", KM_POD_PENDING},     {"Running", KM_POD_RUNNING},
		{"Succeeded", KM_POD_SUCCEEDED}, {"Failed", KM_POD_FAILED},
		{"Unknown", KM_POD_UNKNOWN},
	};
	int rc;

	if ((rc = get_object(r, obj, "spec", "spec", &spec)) ||
	    (rc = get_str(r, spec, "nodeName", "spec.nodeName",
			  &p->node_name)) ||
	    (rc = get_object(r, obj, "status", "status", &status)) ||
	    (rc = get_str(r, status, "phase", "status.phase", &phase)) ||
	    (rc = get_str(r, status, "reason", "status.reason", &p->reason)) ||
	    (rc = get_str(r, status, "message", "status.message",
			  &p->message)) ||
	    (rc = get_time(r, status, "startTime", "status.startTime",
			   &p->started_us)) ||
	    (rc = conditions(r, status, want, 1)) ||
	    (rc = containers(r, status, "initContainerStatuses",
			     &p->init_containers, &p->n_init_containers)) ||
	    (rc = containers(r, status, "containerStatuses", &p->containers,
			     &p->n_containers)))
		return rc;
	p->phase = KM_POD_PHASE_UNSET;
	for (size_t i = 0; phase && i < sizeof phases / sizeof phases[0]; i++)
		if (!strcmp(phase, phases[i].name))
			p->phase = phases[i].phase;
	if (phase && p->phase == KM_POD_PHASE_UNSET)
		p->phase = KM_POD_UNKNOWN; /* a phase this release does not
					      know says nothing good */
	{
		const cJSON *ann = get(get(obj, "metadata"), "annotations"),
			    *opt_in = get(ann, "kubemedic.io/probe");

		p->mirror = cJSON_IsString(opt_in) &&
			    !strcmp(opt_in->valuestring, "true");
	}
	if (!p->mirror)
		return 0;
	if ((rc = get_str(r, status, "podIP", "status.podIP", &p->pod_ip)))
		return rc;
	return pod_probes(r, spec, p);
}

static int service(struct rd *r, const cJSON *obj, struct km_kube_service *s)
{
	const cJSON *spec, *sel;
	int rc;

	if ((rc = get_object(r, obj, "spec", "spec", &spec)) ||
	    (rc = get_object(r, spec, "selector", "spec.selector", &sel)))
		return rc;
	s->has_selector = sel && sel->child;
	return 0;
}

static int slice(struct rd *r, const cJSON *obj,
		 struct km_kube_endpointslice *s)
{
	const cJSON *md, *labels, *list, *e;
	size_t n, i = 0;
	char path[64];
	int rc;

	if ((rc = get_object(r, obj, "metadata", "metadata", &md)) ||
	    (rc = get_object(r, md, "labels", "metadata.labels", &labels)) ||
	    (rc = get_str(r, labels, "kubernetes.io/service-name",
			  "metadata.labels[kubernetes.io/service-name]",
			  &s->service)) ||
	    (rc = get_array(r, obj, "endpoints", "endpoints", &list, &n)))
		return rc;
	if (n > INT32_MAX)
		return bad(r, "endpoints", "too many");
	cJSON_ArrayForEach(e, list)
	{
		const cJSON *conds;
		bool ready = true; /* unset: "interpret as ready" */

		snprintf(path, sizeof path, "endpoints[%zu].conditions", i++);
		if (!cJSON_IsObject(e))
			return bad(r, path, "expected an object");
		if ((rc = get_object(r, e, "conditions", path, &conds)) ||
		    (rc = get_bool(r, conds, "ready", path, &ready)))
			return rc;
		s->endpoints++;
		s->ready += ready;
	}
	return 0;
}

static int workload(struct rd *r, enum km_kube_resource res, const cJSON *obj,
		    struct km_kube_workload *w)
{
	const cJSON *spec, *status;
	struct cond want[] = {
		{"Progressing", &w->progressing, &w->progressing_reason,
		 &w->progressing_message},
	};
	int rc;

	if ((rc = get_object(r, obj, "spec", "spec", &spec)) ||
	    (rc = get_object(r, obj, "status", "status", &status)))
		return rc;
	if (res == KM_RES_DAEMONSET) {
		if ((rc = get_i32(r, status, "desiredNumberScheduled",
				  "status.desiredNumberScheduled",
				  &w->desired)))
			return rc;
		return get_i32(r, status, "numberReady", "status.numberReady",
			       &w->ready);
	}
	w->desired = 1; /* spec.replicas defaults to 1 */
	if ((rc = get_i32(r, spec, "replicas", "spec.replicas", &w->desired)) ||
	    (rc = get_i32(r, status, "readyReplicas", "status.readyReplicas",
			  &w->ready)))
		return rc;
	if (res == KM_RES_DEPLOYMENT)
		return conditions(r, status, want, 1);
	return 0;
}

int km_kube_decode_object(enum km_kube_resource res, const km_json *obj,
			  struct km_arena *a, struct km_kube_object *out,
			  struct km_error *err)
{
	static const char *const kinds[KM_RES_N] = {
		[KM_RES_NODE] = "Node",
		[KM_RES_LEASE] = "Lease",
		[KM_RES_POD] = "Pod",
		[KM_RES_SERVICE] = "Service",
		[KM_RES_ENDPOINTSLICE] = "EndpointSlice",
		[KM_RES_DEPLOYMENT] = "Deployment",
		[KM_RES_STATEFULSET] = "StatefulSet",
		[KM_RES_DAEMONSET] = "DaemonSet",
		[KM_RES_REPLICASET] = "ReplicaSet",
	};
	struct rd r = {.a = a, .err = err, .kind = kinds[res]};
	int rc;

	memset(out, 0, sizeof *out);
	out->resource = res;
	if (!cJSON_IsObject(obj))
		return bad(&r, "(object)", "expected an object");
	if ((rc = meta(&r, obj, &out->meta)))
		return rc;
	if (!out->meta.name || !*out->meta.name)
		return bad(&r, "metadata.name", "missing");
	if (!out->meta.uid || !*out->meta.uid)
		return bad(&r, "metadata.uid", "missing");
	/* The rules' structs name the object too (as the cache's copies
	 * do), so a decoded object can be judged as it is. */
	switch (res) {
	case KM_RES_NODE:
		out->u.node.name = out->meta.name;
		return node(&r, obj, &out->u.node);
	case KM_RES_LEASE: return lease(&r, obj, &out->u.lease);
	case KM_RES_POD:
		out->u.pod.ns = out->meta.ns;
		out->u.pod.name = out->meta.name;
		out->u.pod.owner_kind = out->meta.owner_kind;
		out->u.pod.created_us = out->meta.created_us;
		return pod(&r, obj, &out->u.pod);
	case KM_RES_SERVICE:
		out->u.service.ns = out->meta.ns;
		out->u.service.name = out->meta.name;
		return service(&r, obj, &out->u.service);
	case KM_RES_ENDPOINTSLICE: return slice(&r, obj, &out->u.slice);
	case KM_RES_REPLICASET:
	case KM_RES_DEPLOYMENT:
	case KM_RES_STATEFULSET:
	case KM_RES_DAEMONSET:
		out->u.workload.kind = kinds[res];
		out->u.workload.ns = out->meta.ns;
		out->u.workload.name = out->meta.name;
		return workload(&r, res, obj, &out->u.workload);
	default: return bad(&r, "(object)", "unknown resource");
	}
}

/* ---- documents ----------------------------------------------------------------- */

/* Parses exactly one JSON value, with only whitespace after it. */
static int parse(const char *body, size_t len, const char *what,
		 struct km_arena *tree, km_json **root, struct km_error *err)
{
	const char *end = NULL;

	*root = NULL;
	if (len > KM_KUBE_BODY_MAX)
		return km_error_set(err, KM_EINVAL,
				    "%s: %zu bytes, more than the %u read",
				    what, len, KM_KUBE_BODY_MAX);
	tree_arena = tree;
	*root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	tree_arena = NULL;
	if (!*root) {
		size_t at = end && end >= body ? (size_t)(end - body) : 0;

		return km_error_set(err, KM_EINVAL,
				    "%s: not JSON (at byte %zu of %zu)", what,
				    at, len);
	}
	for (; end && end < body + len; end++)
		if (*end != ' ' && *end != '\n' && *end != '\r' &&
		    *end != '\t') {
			*root = NULL;
			return km_error_set(err, KM_EINVAL,
					    "%s: more after the JSON value "
					    "(at byte %zu)",
					    what, (size_t)(end - body));
		}
	return 0;
}

int km_kube_parse_list(const char *body, size_t len, struct km_arena *tree,
		       km_json **root, struct km_kube_list *out,
		       struct km_error *err)
{
	struct rd r = {.a = NULL, .err = err, .kind = "List"};
	const cJSON *md;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = parse(body, len, "list", tree, root, err)))
		return rc;
	if (!cJSON_IsObject(*root))
		rc = bad(&r, "(list)", "expected an object");
	else if (!(rc = get_object(&r, *root, "metadata", "metadata", &md)) &&
		 !(rc = get_array(&r, *root, "items", "items", &out->items,
				  &out->n_items))) {
		const cJSON *rv = get(md, "resourceVersion"),
			    *cont = get(md, "continue");

		/* Versions and tokens are opaque, sent back as they are:
		 * strings of printable ASCII or nothing. */
		out->resource_version = cJSON_IsString(rv) ? rv->valuestring
							   : "";
		out->continue_token = cJSON_IsString(cont) ? cont->valuestring
							   : "";
		if (!km_visible_ascii(out->continue_token))
			rc = bad(&r, "metadata.continue",
				 "not printable ASCII");
		else if (!km_visible_ascii(out->resource_version))
			rc = bad(&r, "metadata.resourceVersion",
				 "not printable ASCII");
	}
	if (rc) {
		*root = NULL;
		memset(out, 0, sizeof *out);
	}
	return rc;
}

const km_json *km_kube_first(const struct km_kube_list *l)
{
	return l->items ? l->items->child : NULL;
}

const km_json *km_kube_next(const km_json *item)
{
	return item ? item->next : NULL;
}

static void status_of(const cJSON *s, struct km_kube_status *out)
{
	const cJSON *code = get(s, "code"), *reason = get(s, "reason"),
		    *msg = get(s, "message"), *details = get(s, "details");
	const cJSON *retry, *cause, *type, *cmsg;

	out->code = cJSON_IsNumber(code) && code->valuedouble >= 0 &&
				    code->valuedouble < 1000
			    ? (int)code->valuedouble
			    : 0;
	out->reason = cJSON_IsString(reason) ? reason->valuestring : "";
	out->message = cJSON_IsString(msg) ? msg->valuestring : "";
	out->retry_after_s = 0;
	out->cause_type = out->cause_message = "";
	if (!cJSON_IsObject(details))
		return;
	retry = get(details, "retryAfterSeconds");
	/* An int32 on the wire: what is beyond is no answer of the API's. */
	if (cJSON_IsNumber(retry) && retry->valuedouble >= 1 &&
	    retry->valuedouble <= INT32_MAX)
		out->retry_after_s = (int64_t)retry->valuedouble;
	cause = get(details, "causes");
	cause = cJSON_IsArray(cause) ? cause->child : NULL;
	type = get(cause, "reason"); /* Go's StatusCause.Type is "reason" */
	cmsg = get(cause, "message");
	out->cause_type = cJSON_IsString(type) ? type->valuestring : "";
	out->cause_message = cJSON_IsString(cmsg) ? cmsg->valuestring : "";
}

int km_kube_parse_event(const char *line, size_t len, struct km_arena *tree,
			km_json **root, struct km_kube_event *out,
			struct km_error *err)
{
	static const struct {
		const char *name;
		enum km_kube_event_type type;
	} types[] = {
		{"ADDED", KM_EV_ADDED},     {"MODIFIED", KM_EV_MODIFIED},
		{"DELETED", KM_EV_DELETED}, {"BOOKMARK", KM_EV_BOOKMARK},
		{"ERROR", KM_EV_ERROR},
	};
	const cJSON *type, *obj;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = parse(line, len, "watch event", tree, root, err)))
		return rc;
	type = get(*root, "type");
	obj = get(*root, "object");
	if (!cJSON_IsString(type) || !cJSON_IsObject(obj)) {
		rc = km_error_set(err, KM_EINVAL,
				  "watch event: expected {\"type\": ..., "
				  "\"object\": {...}}");
		goto fail;
	}
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (!strcmp(type->valuestring, types[i].name))
			out->type = types[i].type;
	if (!out->type) {
		rc = km_error_set(err, KM_EINVAL,
				  "watch event: unknown type \"%.40s\"",
				  type->valuestring);
		goto fail;
	}
	out->object = obj;
	if (out->type == KM_EV_ERROR) {
		status_of(obj, &out->status);
	} else {
		const cJSON *md = get(obj, "metadata"),
			    *rv = get(md, "resourceVersion"),
			    *end = get(get(md, "annotations"),
				       "k8s.io/initial-events-end");

		out->initial_events_end = out->type == KM_EV_BOOKMARK &&
					  cJSON_IsString(end) &&
					  !strcmp(end->valuestring, "true");

		out->resource_version = cJSON_IsString(rv) ? rv->valuestring
							   : "";
		if (!km_visible_ascii(out->resource_version)) {
			rc = km_error_set(err, KM_EINVAL,
					  "watch event: "
					  "resourceVersion not "
					  "printable ASCII");
			goto fail;
		}
	}
	return 0;
fail:
	*root = NULL;
	memset(out, 0, sizeof *out);
	return rc;
}

void km_kube_parse_status(const char *body, size_t len, struct km_arena *a,
			  struct km_kube_status *out)
{
	struct km_error err = {0};
	struct km_arena tree;
	km_json *root = NULL;
	struct rd r = {.a = a, .err = &err, .kind = "Status"};

	memset(out, 0, sizeof *out);
	out->reason = out->message = out->cause_type = out->cause_message = "";
	/* A watch asked for protobuf is refused in protobuf. */
	if (len >= 4 && !memcmp(body, "k8s\0", 4)) {
		if (!km_kube_parse_status_pb(body, len, a, out)) {
			memset(out, 0, sizeof *out);
			out->reason = out->message = out->cause_type =
				out->cause_message = "";
		}
		return;
	}
	km_arena_init(&tree, 4096);
	if (parse(body, len, "status", &tree, &root, &err) ||
	    !cJSON_IsObject(root)) {
		km_arena_free(&tree);
		return;
	}
	status_of(root, out);
	/* The tree goes: what is kept is copied, and made UTF-8. */
	if (text(&r, out->reason, "reason", &out->reason) ||
	    text(&r, out->message, "message", &out->message) ||
	    text(&r, out->cause_type, "details.causes[0].reason",
		 &out->cause_type) ||
	    text(&r, out->cause_message, "details.causes[0].message",
		 &out->cause_message) ||
	    !(out->reason = km_arena_strdup(a, out->reason)) ||
	    !(out->message = km_arena_strdup(a, out->message)) ||
	    !(out->cause_type = km_arena_strdup(a, out->cause_type)) ||
	    !(out->cause_message = km_arena_strdup(a, out->cause_message)))
		out->reason = out->message = out->cause_type =
			out->cause_message = "";
	km_arena_free(&tree);
}

/* ---- time ---------------------------------------------------------------------- */

static bool digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

int64_t km_kube_parse_time(const char *s)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31};
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, frac_us = 0, off = 0;
	const char *p;
	time_t t;

	if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' ||
	    !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
	    s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !digits(s + 17, 2, &sec))
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    h > 23 || mi > 59 || sec > 60)
		return -1;
	if (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400)))
		return -1;
	p = s + 19;
	if (*p == '.') {
		int n = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 6)
				frac_us = frac_us * 10 + (*p - '0');
		if (!n || n > 9)
			return -1;
		for (; n < 6; n++)
			frac_us *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;

		if (!digits(p + 1, 2, &oh) || p[3] != ':' ||
		    !digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		off = (oh * 60 + om) * 60 * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec == 60 ? 59 : sec;
	t = timegm(&tm);
	if (t == (time_t)-1 || (int64_t)t - off < 0)
		return -1;
	return ((int64_t)t - off) * 1000000 + frac_us;
}
