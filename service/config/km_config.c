/*
 * The configuration file, read with libyaml's document API through
 * km_yaml.h: every mapping is checked against the list of keys it may hold
 * (km_yaml_map), and every value is converted by a typed getter
 * (km_yaml_str, km_yaml_int, km_yaml_bool, km_yaml_duration, get_port
 * here) that knows the key's path for its message. The schema is what
 * bounds the walk: no level accepts "anything", so an alias that refers to
 * itself ("&a [*a]") is met as a value of the wrong type, never followed
 * forever.
 *
 * YAML types follow Kubernetes: integers are plain scalars ("5", not "5" in
 * quotes), null ("", "~", "null") means "not given", and a string field
 * takes any scalar as text. Probes are assembled field by field (a probe's
 * handler through the table handlers[]) and then judged by km_probe.h's
 * km_probe_validate and km_probe_set_timing (the rules the API applies).
 *
 * Messages: "FILE:LINE:COL: key.path: problem" for what this file finds,
 * "FILE:LINE: probes[i].field: problem" for what km_probe.h finds (LINE
 * being the probe's first line). Lines and columns count from 1. libyaml's
 * document keeps no trace of aliases, so a bad value reached through "*a"
 * is reported where "&a" defined it.
 */
#include "km_config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "km_log.h"
#include "km_policy.h"
#include "km_probe.h"
#include "km_time.h"
#include "km_yaml.h"

#define KM_CONFIG_MAX_FILE (16u << 20) /* bigger is surely a mistake */

#define DEF_LISTEN "127.0.0.1:7070"
#define DEF_DB_PATH "kubemedic.db"
#define MS_MINUTE (60LL * 1000)
#define MS_HOUR (60 * MS_MINUTE)
#define MS_DAY (24 * MS_HOUR)

void km_config_defaults(struct km_config *c)
{
	memset(c, 0, sizeof *c);
	km_arena_init(&c->arena, 16384);
	c->listen = DEF_LISTEN;
	c->threads = 0;
	c->max_recv_message_bytes = 256 << 10;
	c->shutdown_grace_ms = 10 * 1000;
	c->db_path = DEF_DB_PATH;
	c->db_sync_normal = false;
	c->result_queue = 65536;
	c->db_commit_delay_ms = 100;
	c->results_retention_ms = 30 * MS_DAY;
	c->minutes_retention_ms = 90 * MS_DAY;
	c->hours_retention_ms = 730 * MS_DAY;
	c->transitions_retention_ms = 730 * MS_DAY;
	c->recoveries_retention_ms = 730 * MS_DAY;
	c->db_history_flush_ms = 10000;
	c->db_max_open_targets = 1000000;
	c->retention_interval_ms = MS_MINUTE;
	c->flap_low = 5;
	c->flap_high = 20;
	c->log_level = KM_LOG_INFO;
	c->log_json = false;
	km_probe_policy_defaults(&c->api_policy);
	c->watchdog_ms = 10 * 1000;
	c->max_exec_children = 64;
	c->auth_local_user = "local";
	c->auth_local_role = KM_ROLE_VIEWER;
	c->auth_health_role = KM_ROLE_VIEWER;
	for (int r = KM_ROLE_VIEWER; r <= KM_ROLE_ADMIN; r++)
		c->auth_kube_access_as[r] = (struct km_auth_access){
			.group = "kubemedic.io",
			.resource = "health",
			.subresource = "",
			.name = "",
			.ns = "",
			.verb = r == KM_ROLE_VIEWER     ? "get"
				: r == KM_ROLE_OPERATOR ? "update"
							: "*",
		};
	c->auth_kube_access_allowed_ms = MS_MINUTE;
	c->auth_kube_access_denied_ms = 10 * 1000;
	c->audit_retention_ms = 400 * MS_DAY;
	c->limits = KM_LIMITS_DEFAULTS;
	c->kube_lease_grace_ms = 40 * 1000;
	c->kube_pod_startup_grace_ms = 5 * MS_MINUTE;
	c->kube_control_plane_period_ms = 10 * 1000;
	c->recovery_workers = 4;
	c->recovery_queue_max = 1024;
	c->recovery_max_attempts = 5;
	c->recovery_verify_window_ms = 2 * MS_MINUTE;
	c->recovery_pod_grace_ms = -1; /* the pod's own */
	c->recovery_drain_timeout_ms = 5 * MS_MINUTE;
	c->recovery_drain_retry_ms = 5000;
	c->recovery_dry_run = false;
	c->recovery_max_policy_targets = KM_POLICY_MAX_TARGETS_DEFAULT;
	km_budget_config_defaults(&c->recovery_budget);
	c->lease_name = "kubemedic-recovery";
	c->lease_duration_ms = 15000;
	c->renew_deadline_ms = 10000;
	c->retry_period_ms = 2000;
}

void km_config_free(struct km_config *c)
{
	km_arena_free(&c->arena);
	km_config_defaults(c);
}

/* ---- reading YAML (km_yaml.h) -------------------------------------------- */

/* Words for keys someone may bring from a pod's probe. */
static const struct km_yaml_hint key_hints[] = {
	{"terminationGracePeriodSeconds",
	 "; it does not apply: kubemedic probes have no container to stop"},
	{"valueFrom", "; kubemedic probes run outside pods, so give the value"},
};

/* A reader of a file named name (or dflt) into a, messages into err. */
static struct km_yaml reader(const char *name, const char *dflt,
			     struct km_arena *a, struct km_error *err)
{
	return (struct km_yaml){
		.name = name ? name : dflt,
		.a = a,
		.err = err,
		.hints = key_hints,
		.n_hints = sizeof key_hints / sizeof key_hints[0],
		.depth_note = "a configuration needs at most 6",
	};
}

/* A key path for messages ("probes[2].httpGet.port"). Paths are short;
 * were one ever cut, only a message would be shorter. */
__attribute__((format(printf, 3, 4))) static void pathf(char *buf, size_t size,
							const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* ---- probes ------------------------------------------------------------ */

/* Kubernetes' IANA_SVC_NAME: what a named port looks like. */
static bool is_port_name(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;

	if (n == 0 || n > 15 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (islower((unsigned char)s[i]))
			letter = true;
		else if (!isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return letter;
}

/* Kubernetes allows a port to be a number or the name of a container
 * port; kubemedic has no container to look the name up in. */
static int get_port(struct km_yaml *ld, const yaml_node_t *n, const char *path,
		    int *out)
{
	struct km_yaml_shown b;
	const char *text;
	int64_t v;

	if (km_yaml_is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE)
		return km_yaml_errorf(ld, n,
				      "%s: expected a port number, got %s",
				      path, km_yaml_show(n, &b));
	text = km_yaml_scalar(n);
	if (!km_yaml_is_plain(n) && km_yaml_all_digits(text))
		return km_yaml_errorf(
			ld, n,
			"%s: expected a port number, got the string "
			"%s (write it without quotes)",
			path, km_yaml_show(n, &b));
	if (is_port_name(text))
		return km_yaml_errorf(
			ld, n,
			"%s: the named port %s needs a pod to look "
			"it up in; kubemedic probes reach a host directly, "
			"so give the port number",
			path, km_yaml_show(n, &b));
	if (!km_yaml_is_plain(n) || !km_yaml_all_digits(text))
		return km_yaml_errorf(ld, n,
				      "%s: expected a port number, got %s",
				      path, km_yaml_show(n, &b));
	if (!km_yaml_parse_i64(text, &v) || v < 1 || v > 65535)
		return km_yaml_errorf(
			ld, n,
			"%s: Invalid value: %s: must be between 1 "
			"and 65535, inclusive",
			path, km_yaml_show(n, &b));
	*out = (int)v;
	return 0;
}

/* A list of {name, value} (httpHeaders, env). */
static int get_name_values(struct km_yaml *ld, const yaml_node_t *n,
			   const char *path, struct km_kv **out, size_t *nout)
{
	static const char *const keys[] = {"name", "value"};
	struct km_yaml_shown b;
	size_t len;

	if (km_yaml_is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return km_yaml_errorf(
			ld, n, "%s: expected a list of {name, value}, got %s",
			path, km_yaml_show(n, &b));
	len = km_yaml_seq_len(n);
	*out = km_arena_calloc(ld->a, len ? len : 1, sizeof **out);
	if (!*out)
		return km_yaml_oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item =
			km_yaml_node(ld, n->data.sequence.items.start[i]);
		yaml_node_t *v[2];
		char ipath[192], fpath[208];
		struct km_kv *kv = &(*out)[i];
		int rc;

		pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (!item || item->type != YAML_MAPPING_NODE)
			return km_yaml_errorf(
				ld, item ? item : n,
				"%s: expected a mapping {name, value}, "
				"got %s",
				ipath,
				item ? km_yaml_show(item, &b) : "nothing");
		if (km_yaml_map(ld, item, ipath, keys, 2, v, 0))
			return KM_EINVAL;
		pathf(fpath, sizeof fpath, "%s.name", ipath);
		if (km_yaml_is_null(v[0]))
			return km_yaml_errorf(ld, item, "%s: Required value",
					      fpath);
		kv->value = "";
		rc = km_yaml_str(ld, v[0], fpath, &kv->key);
		if (rc)
			return rc;
		pathf(fpath, sizeof fpath, "%s.value", ipath);
		rc = km_yaml_str(ld, v[1], fpath, &kv->value);
		if (rc)
			return rc;
	}
	*nout = len;
	return 0;
}

static int get_command(struct km_yaml *ld, const yaml_node_t *n,
		       const char *path, struct km_probe *p)
{
	struct km_yaml_shown b;
	size_t len;

	if (km_yaml_is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return km_yaml_errorf(
			ld, n,
			"%s: expected a list (the program, then its "
			"arguments: [\"/bin/check\", \"--fast\"]), got %s",
			path, km_yaml_show(n, &b));
	len = km_yaml_seq_len(n);
	p->argv = km_arena_calloc(ld->a, len + 1, sizeof *p->argv);
	if (!p->argv)
		return km_yaml_oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item =
			km_yaml_node(ld, n->data.sequence.items.start[i]);
		char ipath[192];
		int rc;

		pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (!item || km_yaml_is_null(item))
			return km_yaml_errorf(ld, item ? item : n,
					      "%s: expected a string, "
					      "got null (quote it: \"\")",
					      ipath);
		rc = km_yaml_str(ld, item, ipath, &p->argv[i]);
		if (rc)
			return rc;
	}
	p->argc = len;
	return 0;
}

static int get_labels(struct km_yaml *ld, const yaml_node_t *n,
		      const char *path, struct km_probe *p)
{
	struct km_yaml_shown b;
	size_t len;

	if (km_yaml_is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return km_yaml_errorf(ld, n,
				      "%s: expected a mapping of label keys to "
				      "values, got %s",
				      path, km_yaml_show(n, &b));
	len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	p->labels = km_arena_calloc(ld->a, len ? len : 1, sizeof *p->labels);
	if (!p->labels)
		return km_yaml_oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_pair_t *pr = &n->data.mapping.pairs.start[i];
		yaml_node_t *k = km_yaml_node(ld, pr->key),
			    *v = km_yaml_node(ld, pr->value);
		struct km_kv *kv = &p->labels[i];
		char kpath[192];
		int rc;

		if (!k || !v)
			return km_error_set(ld->err, KM_EINTERNAL,
					    "%s: libyaml left a pair without "
					    "nodes",
					    ld->name);
		if (k->type != YAML_SCALAR_NODE || km_yaml_is_null(k))
			return km_yaml_errorf(
				ld, k, "%s: expected a label key, got %s", path,
				km_yaml_show(k, &b));
		rc = km_yaml_str(ld, k, path, &kv->key);
		if (rc)
			return rc;
		pathf(kpath, sizeof kpath, "%s.%s", path, kv->key);
		kv->value = "";
		rc = km_yaml_str(ld, v, kpath, &kv->value);
		if (rc)
			return rc;
		/* More than the limit is refused by km_probe_validate; below
		 * it, the quadratic search is cheap. */
		for (size_t j = 0; j < i && len <= KM_PROBE_MAX_LABELS; j++)
			if (!strcmp(p->labels[j].key, kv->key))
				return km_yaml_errorf(
					ld, k, "%s: duplicate label key %s",
					path, km_yaml_show(k, &b));
	}
	p->n_labels = len;
	return 0;
}

/* ---- probe handlers ------------------------------------------------------
 *
 * The five handlers (httpGet, tcpSocket, grpc, exec, file) have one shape:
 * a mapping of known keys, each read by its typed getter into its field of
 * struct km_probe, in the order of the table (which is the order of their
 * messages). A handler is a row of handlers[]; parse_handler reads any of
 * them.
 */

enum field_kind {
	F_STR,     /* const char *: get_str */
	F_PORT,    /* int: get_port */
	F_BOOL,    /* bool: get_bool */
	F_I64,     /* int64_t, any value: get_int */
	F_KVS,     /* struct km_kv * and its count: get_name_values */
	F_COMMAND, /* argv and argc: get_command */
	F_SCHEME,  /* "HTTP"/"HTTPS" into a bool, judged after the others */
};

struct handler_field {
	const char *key;
	enum field_kind kind;
	size_t off;       /* of the field in struct km_probe */
	size_t count_off; /* F_KVS: of its count */
};

#define HANDLER_FIELDS_MAX 8

struct handler {
	const char *key; /* in a probe: "httpGet" */
	enum km_probe_type type;
	size_t n;
	struct handler_field f[HANDLER_FIELDS_MAX];
};

#define FIELD(k, kind, member)                                \
	{                                                     \
		k, kind, offsetof(struct km_probe, member), 0 \
	}
#define KVS(k, member, count)                                \
	{                                                    \
		k, F_KVS, offsetof(struct km_probe, member), \
			offsetof(struct km_probe, count)     \
	}

/* In the order of their keys in probe_keys (P_HTTP on). */
static const struct handler handlers[] = {
	{"httpGet",
	 KM_PROBE_HTTP,
	 7,
	 {
		 FIELD("host", F_STR, host),
		 FIELD("port", F_PORT, port),
		 FIELD("path", F_STR, path),
		 FIELD("scheme", F_SCHEME, https),
		 KVS("httpHeaders", headers, n_headers),
		 FIELD("tlsVerify", F_BOOL, tls_verify),
		 FIELD("caFile", F_STR, ca_file),
	 }},
	{"tcpSocket",
	 KM_PROBE_TCP,
	 2,
	 {
		 FIELD("host", F_STR, host),
		 FIELD("port", F_PORT, port),
	 }},
	{"grpc",
	 KM_PROBE_GRPC,
	 3,
	 {
		 FIELD("host", F_STR, host),
		 FIELD("port", F_PORT, port),
		 FIELD("service", F_STR, service),
	 }},
	{"exec",
	 KM_PROBE_EXEC,
	 3,
	 {
		 FIELD("command", F_COMMAND, argv),
		 KVS("env", env, n_env),
		 FIELD("workingDir", F_STR, workdir),
	 }},
	{"file",
	 KM_PROBE_FILE,
	 3,
	 {
		 FIELD("path", F_STR, path),
		 FIELD("minSize", F_I64, min_size),
		 FIELD("maxAgeSeconds", F_I64, max_age_s),
	 }},
};
#define H_N (sizeof handlers / sizeof handlers[0])

#undef FIELD
#undef KVS

/* The handler h from the mapping n at path (its key's path, for
 * messages) into p. */
static int parse_handler(struct km_yaml *ld, const struct handler *h,
			 const yaml_node_t *n, const char *path,
			 const struct km_field_ctx *fc, struct km_probe *p)
{
	const char *keys[HANDLER_FIELDS_MAX] = {NULL};
	yaml_node_t *v[HANDLER_FIELDS_MAX];
	char f[HANDLER_FIELDS_MAX][192];
	const char *scheme = NULL;
	size_t scheme_at = h->n;
	int rc = 0;

	assert(h->n <= HANDLER_FIELDS_MAX);
	for (size_t i = 0; i < h->n; i++)
		keys[i] = h->f[i].key;
	if (km_yaml_map(ld, n, path, keys, h->n, v, 0))
		return KM_EINVAL;
	for (size_t i = 0; i < h->n; i++)
		pathf(f[i], sizeof f[i], "%s.%s", path, keys[i]);
	p->type = h->type;
	for (size_t i = 0; i < h->n && !rc; i++) {
		const struct handler_field *hf = &h->f[i];
		char *field = (char *)p + hf->off;

		switch (hf->kind) {
		case F_STR:
			rc = km_yaml_str(ld, v[i], f[i], (const char **)field);
			break;
		case F_PORT: rc = get_port(ld, v[i], f[i], (int *)field); break;
		case F_BOOL:
			rc = km_yaml_bool(ld, v[i], f[i], (bool *)field);
			break;
		case F_I64:
			rc = km_yaml_int(ld, v[i], f[i], INT64_MIN, INT64_MAX,
					 (int64_t *)field);
			break;
		case F_KVS:
			rc = get_name_values(
				ld, v[i], f[i], (struct km_kv **)field,
				(size_t *)((char *)p + hf->count_off));
			break;
		case F_COMMAND: rc = get_command(ld, v[i], f[i], p); break;
		case F_SCHEME:
			rc = km_yaml_str(ld, v[i], f[i], &scheme);
			scheme_at = i;
			break;
		}
	}
	if (rc)
		return rc;
	if (scheme_at < h->n &&
	    km_probe_parse_scheme(scheme,
				  (bool *)((char *)p + h->f[scheme_at].off), fc,
				  ld->err)) {
		km_error_prefix(ld->err, "%s:%zu:%zu", ld->name,
				km_yaml_line(v[scheme_at]),
				v[scheme_at]->start_mark.column + 1);
		return KM_EINVAL;
	}
	return 0;
}

enum {
	P_NAME,
	P_LABELS,
	P_HTTP,
	P_TCP,
	P_GRPC,
	P_EXEC,
	P_FILE, /* in handlers[] order */
	P_INITIAL,
	P_TIMEOUT,
	P_PERIOD,
	P_SUCCESS,
	P_FAILURE,
	P_PERIOD_MS,
	P_TIMEOUT_MS,
	P_N
};

static const char *const probe_keys[P_N] = {
	"name",
	"labels",
	"httpGet",
	"tcpSocket",
	"grpc",
	"exec",
	"file",
	"initialDelaySeconds",
	"timeoutSeconds",
	"periodSeconds",
	"successThreshold",
	"failureThreshold",
	"periodMilliseconds",
	"timeoutMilliseconds",
};

/* One probe from the mapping n; prefix is "probes[i]" or "probe". */
static int parse_probe(struct km_yaml *ld, const yaml_node_t *n,
		       const char *prefix, bool check_files, struct km_probe *p)
{
	struct km_field_ctx fc = {KM_FIELDS_YAML, prefix};
	struct km_probe_timing t = {0};
	int64_t *tf[] = {
		&t.initial_delay_seconds, &t.timeout_seconds,
		&t.period_seconds,        &t.success_threshold,
		&t.failure_threshold,     &t.period_milliseconds,
		&t.timeout_milliseconds,
	};
	yaml_node_t *v[P_N];
	char path[192];
	struct km_yaml_shown b;
	int n_handlers = 0, h = -1, rc;

	memset(p, 0, sizeof *p);
	p->source = KM_SOURCE_CONFIG;
	if (n->type != YAML_MAPPING_NODE)
		return km_yaml_errorf(
			ld, n, "%s: expected a probe (a mapping), got %s",
			prefix, km_yaml_show(n, &b));
	if (km_yaml_map(ld, n, prefix, probe_keys, P_N, v, 0))
		return KM_EINVAL;

	pathf(path, sizeof path, "%s.name", prefix);
	if ((rc = km_yaml_str(ld, v[P_NAME], path, &p->name)))
		return rc;
	pathf(path, sizeof path, "%s.labels", prefix);
	if ((rc = get_labels(ld, v[P_LABELS], path, p)))
		return rc;
	for (int i = 0; i < P_N - P_INITIAL; i++) {
		pathf(path, sizeof path, "%s.%s", prefix,
		      probe_keys[P_INITIAL + i]);
		if ((rc = km_yaml_int(ld, v[P_INITIAL + i], path, INT32_MIN,
				      INT32_MAX, tf[i])))
			return rc;
	}

	for (int i = 0; i < (int)H_N; i++)
		if (!km_yaml_is_null(v[P_HTTP + i])) {
			n_handlers++;
			h = i;
		}
	if (n_handlers != 1) {
		km_probe_handler_count_error(n_handlers, &fc, ld->err);
		goto prefixed;
	}
	assert(!strcmp(probe_keys[P_HTTP + h], handlers[h].key));
	pathf(path, sizeof path, "%s.%s", prefix, probe_keys[P_HTTP + h]);
	rc = parse_handler(ld, &handlers[h], v[P_HTTP + h], path, &fc, p);
	if (rc)
		return rc;

	if (km_probe_validate(p, &fc, ld->err) ||
	    km_probe_set_timing(p, &t, &fc, ld->err))
		goto prefixed;
	if (check_files) {
		rc = km_probe_check_ca_file(p, &fc, ld->err);
		if (rc == KM_ENOMEM)
			return rc;
		if (rc)
			goto prefixed;
	}
	return 0;

prefixed:
	km_error_prefix(ld->err, "%s:%zu", ld->name, km_yaml_line(n));
	return KM_EINVAL;
}

struct name_at {
	const char *name;
	size_t index;
};

static int cmp_name_at(const void *a, const void *b)
{
	const struct name_at *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Names must be unique: they are the probes' identity ("probe//<name>").
 * Reports the pair whose second member comes first in the file. */
static int check_unique_names(struct km_yaml *ld, const yaml_node_t *list,
			      const struct km_probe *probes, size_t n)
{
	struct name_at *v;
	size_t best = SIZE_MAX, first = 0;

	if (n < 2)
		return 0;
	v = malloc(n * sizeof *v);
	if (!v)
		return km_yaml_oom(ld);
	for (size_t i = 0; i < n; i++)
		v[i] = (struct name_at){probes[i].name, i};
	qsort(v, n, sizeof *v, cmp_name_at);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(v[i].name, v[i - 1].name) && v[i].index < best) {
			best = v[i].index;
			first = v[i - 1].index;
		}
	free(v);
	if (best == SIZE_MAX)
		return 0;
	{
		yaml_node_t *a = km_yaml_node(
			ld, list->data.sequence.items.start[first]);
		yaml_node_t *b =
			km_yaml_node(ld, list->data.sequence.items.start[best]);

		return km_error_set(ld->err, KM_EINVAL,
				    "%s:%zu: probes[%zu].name: duplicate name "
				    "\"%s\": probes[%zu] at line %zu has it "
				    "already",
				    ld->name, km_yaml_line(b), best,
				    probes[best].name, first, km_yaml_line(a));
	}
}

/* A list of probes, with "probes" as the path for messages. */
static int parse_probe_list(struct km_yaml *ld, const yaml_node_t *n,
			    bool check_files, struct km_probe **out,
			    size_t *nout)
{
	struct km_probe *probes;
	struct km_yaml_shown b;
	size_t len;
	int rc;

	if (km_yaml_is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return km_yaml_errorf(
			ld, n,
			"probes: expected a list of probes (\"- name: "
			"...\"), got %s",
			km_yaml_show(n, &b));
	len = km_yaml_seq_len(n);
	probes = km_arena_calloc(ld->a, len ? len : 1, sizeof *probes);
	if (!probes)
		return km_yaml_oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item =
			km_yaml_node(ld, n->data.sequence.items.start[i]);
		char prefix[32];

		pathf(prefix, sizeof prefix, "probes[%zu]", i);
		if (!item)
			return km_yaml_errorf(ld, n, "%s: missing", prefix);
		rc = parse_probe(ld, item, prefix, check_files, &probes[i]);
		if (rc)
			return rc;
	}
	rc = check_unique_names(ld, n, probes, len);
	if (rc)
		return rc;
	*out = probes;
	*nout = len;
	return 0;
}

/* ---- the whole file ---------------------------------------------------- */

/* "HOST:PORT" or "[IPv6]:PORT"; NULL if fine, else why not. */
static const char *listen_error(const char *s)
{
	const char *colon, *host_end;
	int64_t port;

	if (s[0] == '[') {
		host_end = strchr(s, ']');
		if (!host_end || host_end == s + 1 || host_end[1] != ':')
			return "an IPv6 address must be written \"[ADDRESS]:PORT\", "
			       "e.g. \"[::1]:7070\"";
		colon = host_end + 1;
		/* Hex digits, ':' and '.', then maybe "%zone" ("%eth0"). */
		for (const char *c = s + 1, *zone = NULL; c < host_end; c++) {
			if (!zone && *c == '%' && c + 1 < host_end)
				zone = c;
			else if (zone ? !isalnum((unsigned char)*c) &&
						 !strchr("-_.", *c)
				      : !isxdigit((unsigned char)*c) &&
						 !strchr(":.", *c))
				return "the address in brackets must be an IPv6 "
				       "address";
		}
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return "expected HOST:PORT, e.g. \"127.0.0.1:7070\"";
		if (colon == s)
			return "the host is missing: give an address, e.g. "
			       "\"0.0.0.0:7070\" to listen on all of them";
		if (memchr(s, ':', (size_t)(colon - s)))
			return "put an IPv6 address in brackets, e.g. "
			       "\"[::1]:7070\"";
		for (const char *c = s; c < colon; c++)
			if ((unsigned char)*c <= ' ' || *c == 0x7f ||
			    strchr("/?#@[]", *c))
				return "the host must be an IP address or a DNS "
				       "name";
	}
	if (!km_yaml_all_digits(colon + 1) || colon[1] == '-' ||
	    colon[1] == '+' || !km_yaml_parse_i64(colon + 1, &port) ||
	    port < 1 || port > 65535)
		return "the port must be a number from 1 to 65535";
	return NULL;
}

/* Whether a HOST:PORT (valid by listen_error) names a loopback address:
 * 127.0.0.0/8, ::1 (also as ::ffff:127.x), or localhost. */
static bool loopback_listen(const char *s)
{
	if (!strncmp(s, "127.", 4) || !strncmp(s, "localhost:", 10))
		return true;
	return !strncmp(s, "[::1]:", 6) || !strncmp(s, "[::ffff:127.", 12);
}

int km_config_check_listen(const struct km_config *c, struct km_error *err)
{
	if (c->tls_cert_file || c->insecure || loopback_listen(c->listen))
		return 0;
	return km_error_set(
		err, KM_EINVAL,
		"listen: %s is not a loopback address, and without TLS anyone "
		"who reaches it could call kubemedicd: configure tls.certFile "
		"and tls.keyFile (docs/SECURITY.md), or set insecure: true to "
		"accept that",
		c->listen);
}

enum {
	K_LISTEN,
	K_INSECURE,
	K_TLS,
	K_AUTH,
	K_THREADS,
	K_MAX_RECV,
	K_GRACE,
	K_DATABASE,
	K_RETENTION,
	K_LOG,
	K_FLAP,
	K_API,
	K_PROBER,
	K_PROBES,
	K_LIMITS,
	K_KUBE,
	K_CLUSTERS,
	K_RECOVERY,
	K_N
};
static const char *const top_keys[K_N] = {
	"listen",
	"insecure",
	"tls",
	"auth",
	"threads",
	"maxReceiveMessageBytes",
	"shutdownGracePeriod",
	"database",
	"retention",
	"log",
	"flapDetection",
	"api",
	"prober",
	"probes",
	"limits",
	"kube",
	"clusters",
	"recovery",
};

static int parse_database(struct km_yaml *ld, const yaml_node_t *n,
			  struct km_config *c)
{
	static const char *const keys[] = {"path", "synchronous", "resultQueue",
					   "commitDelay", "historyFlush",
					   "maxOpenTargets"};
	static const char *const sync[] = {"full", "normal"};
	yaml_node_t *v[6];
	const char *path = NULL;
	int mode = -1;
	int rc;

	if (km_yaml_map(ld, n, "database", keys, 6, v, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_str(ld, v[0], "database.path", &path)))
		return rc;
	if (path) {
		if (!*path)
			return km_yaml_errorf(
				ld, v[0], "database.path: must not be empty");
		c->db_path = path;
	}
	if ((rc = km_yaml_enum(ld, v[1], "database.synchronous", sync, 2,
			       &mode)) ||
	    (rc = km_yaml_int(ld, v[2], "database.resultQueue", 1, 1 << 24,
			      &c->result_queue)) ||
	    (rc = km_yaml_duration(ld, v[3], "database.commitDelay", 0, 10000,
				   "at most 10s", &c->db_commit_delay_ms)) ||
	    (rc = km_yaml_duration(ld, v[4], "database.historyFlush", 1000,
				   300000, "between 1s and 5m",
				   &c->db_history_flush_ms)) ||
	    (rc = km_yaml_int(ld, v[5], "database.maxOpenTargets", 1,
			      100000000, &c->db_max_open_targets)))
		return rc;
	if (mode >= 0)
		c->db_sync_normal = mode == 1;
	return 0;
}

static int parse_retention(struct km_yaml *ld, const yaml_node_t *n,
			   struct km_config *c)
{
	/* "results" is the name before runs (schema 6): the same setting. */
	static const char *const keys[] = {
		"runs",	       "results",    "minuteRollups", "hourRollups",
		"transitions", "recoveries", "audit",	      "interval"};
	int64_t *const into[] = {
		&c->results_retention_ms,     &c->results_retention_ms,
		&c->minutes_retention_ms,     &c->hours_retention_ms,
		&c->transitions_retention_ms, &c->recoveries_retention_ms,
		&c->audit_retention_ms};
	const int64_t max = 36500 * MS_DAY;
	yaml_node_t *v[8];
	int rc;

	if (km_yaml_map(ld, n, "retention", keys, 8, v, 0))
		return KM_EINVAL;
	if (v[0] && v[1])
		return km_yaml_errorf(ld, v[1],
				      "retention.results: an old name of "
				      "retention.runs; give one of them");
	for (int i = 0; i < 7; i++) {
		char what[48];

		snprintf(what, sizeof what, "retention.%s", keys[i]);
		if ((rc = km_yaml_duration(ld, v[i], what, 0, max,
					   "at most 36500d (0 keeps them "
					   "forever)",
					   into[i])))
			return rc;
	}
	return km_yaml_duration(ld, v[7], "retention.interval", 1000, MS_DAY,
				"between 1s and 1d", &c->retention_interval_ms);
}

/* Nagios-style flap detection thresholds, in percent of state changes. */
static int parse_flap(struct km_yaml *ld, const yaml_node_t *n,
		      struct km_config *c)
{
	static const char *const keys[] = {"lowThreshold", "highThreshold"};
	yaml_node_t *v[2];
	int64_t low = (int64_t)c->flap_low, high = (int64_t)c->flap_high;
	int rc;

	if (km_yaml_map(ld, n, "flapDetection", keys, 2, v, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_int(ld, v[0], "flapDetection.lowThreshold", 0, 100,
			      &low)) ||
	    (rc = km_yaml_int(ld, v[1], "flapDetection.highThreshold", 1, 100,
			      &high)))
		return rc;
	if (low >= high)
		return km_yaml_errorf(
			ld, n,
			"flapDetection: lowThreshold (%lld) must be "
			"below highThreshold (%lld), or the flag could "
			"never settle",
			(long long)low, (long long)high);
	c->flap_low = (double)low;
	c->flap_high = (double)high;
	return 0;
}

static int parse_log(struct km_yaml *ld, const yaml_node_t *n,
		     struct km_config *c)
{
	static const char *const keys[] = {"level", "format", "statsInterval"};
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	static const char *const formats[] = {"logfmt", "json"};
	yaml_node_t *v[3];
	int level = -1, json = -1;
	int64_t stats = c->stats_interval_ms;
	int rc;

	if (km_yaml_map(ld, n, "log", keys, 3, v, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_enum(ld, v[0], "log.level", levels, 4, &level)) ||
	    (rc = km_yaml_enum(ld, v[1], "log.format", formats, 2, &json)) ||
	    (rc = km_yaml_duration(ld, v[2], "log.statsInterval", 0, MS_DAY,
				   "0 (off) or between 1s and 1d", &stats)))
		return rc;
	if (stats > 0 && stats < 1000) {
		struct km_yaml_shown b;

		return km_yaml_errorf(ld, v[2],
				      "log.statsInterval: must be 0 (off) or "
				      "between 1s and 1d, got %s",
				      km_yaml_show(v[2], &b));
	}
	c->stats_interval_ms = stats;
	/* km_log's numbering, not this table's, is what the daemon uses. */
	if (level >= 0)
		c->log_level = km_log_level_parse(levels[level]);
	if (json >= 0)
		c->log_json = json == 1;
	return 0;
}

/* A list of strings (or null). */
static int get_str_list(struct km_yaml *ld, const yaml_node_t *n,
			const char *path, const char ***out, size_t *count)
{
	struct km_yaml_shown b;
	size_t len;

	*out = NULL;
	*count = 0;
	if (km_yaml_is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return km_yaml_errorf(ld, n,
				      "%s: expected a list of strings, got %s",
				      path, km_yaml_show(n, &b));
	len = km_yaml_seq_len(n);
	*out = km_arena_calloc(ld->a, len + 1, sizeof **out);
	if (!*out)
		return km_yaml_oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item =
			km_yaml_node(ld, n->data.sequence.items.start[i]);
		char ipath[192];
		int rc;

		pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (!item || km_yaml_is_null(item) ||
		    item->type != YAML_SCALAR_NODE || !item->data.scalar.length)
			return km_yaml_errorf(ld, item ? item : n,
					      "%s: expected a non-empty string",
					      ipath);
		rc = km_yaml_str(ld, item, ipath, &(*out)[i]);
		if (rc)
			return rc;
	}
	*count = len;
	return 0;
}

/* A path that must name a file (checked when it is opened: here only that
 * it is given and not empty). */
static int get_path(struct km_yaml *ld, const yaml_node_t *n, const char *path,
		    const char **out)
{
	int rc = km_yaml_str(ld, n, path, out);

	if (!rc && *out && !**out)
		return km_yaml_errorf(ld, n, "%s: must not be empty", path);
	return rc;
}

static int parse_tls(struct km_yaml *ld, const yaml_node_t *n,
		     struct km_config *c)
{
	static const char *const keys[] = {
		"certFile", "keyFile", "clientCAFile", "clientCertificates"};
	static const char *const modes[] = {"optional", "require"};
	yaml_node_t *v[4];
	int mode = -1, rc;

	if (km_yaml_map(ld, n, "tls", keys, 4, v, 0))
		return KM_EINVAL;
	if ((rc = get_path(ld, v[0], "tls.certFile", &c->tls_cert_file)) ||
	    (rc = get_path(ld, v[1], "tls.keyFile", &c->tls_key_file)) ||
	    (rc = get_path(ld, v[2], "tls.clientCAFile",
			   &c->tls_client_ca_file)) ||
	    (rc = km_yaml_enum(ld, v[3], "tls.clientCertificates", modes, 2,
			       &mode)))
		return rc;
	if (!c->tls_cert_file != !c->tls_key_file)
		return km_yaml_errorf(
			ld, n,
			"tls: certFile and keyFile go together (the "
			"server's certificate chain and its key)");
	if (!c->tls_cert_file && (c->tls_client_ca_file || mode >= 0))
		return km_yaml_errorf(
			ld, n,
			"tls: clientCAFile and clientCertificates need "
			"certFile and keyFile");
	if (mode >= 0 && !c->tls_client_ca_file)
		return km_yaml_errorf(
			ld, v[3],
			"tls.clientCertificates: needs clientCAFile (the "
			"CA that signs client certificates)");
	c->tls_require_client_cert = mode == 1;
	return 0;
}

static int get_role(struct km_yaml *ld, const yaml_node_t *n, const char *path,
		    int lowest, int *out)
{
	static const char *const roles[] = {"none", "viewer", "operator",
					    "admin"};
	int r = -1, rc;

	rc = km_yaml_enum(ld, n, path, roles + lowest, 4 - (size_t)lowest, &r);
	if (!rc && r >= 0)
		*out = r + lowest;
	return rc;
}

static int parse_binding(struct km_yaml *ld, const yaml_node_t *n,
			 const char *path, struct km_auth_binding *b)
{
	static const char *const keys[] = {"role", "users", "groups"};
	yaml_node_t *v[3];
	char p[160];
	int rc;

	if (km_yaml_map(ld, n, path, keys, 3, v, 0))
		return KM_EINVAL;
	b->role = -1;
	pathf(p, sizeof p, "%s.role", path);
	if (!v[0] || km_yaml_is_null(v[0]))
		return km_yaml_errorf(ld, n,
				      "%s: Required value (viewer, operator or "
				      "admin)",
				      p);
	if ((rc = get_role(ld, v[0], p, KM_ROLE_VIEWER, &b->role)))
		return rc;
	pathf(p, sizeof p, "%s.users", path);
	if ((rc = get_str_list(ld, v[1], p, &b->users, &b->n_users)))
		return rc;
	pathf(p, sizeof p, "%s.groups", path);
	if ((rc = get_str_list(ld, v[2], p, &b->groups, &b->n_groups)))
		return rc;
	if (!b->n_users && !b->n_groups)
		return km_yaml_errorf(
			ld, n, "%s: give users or groups (or both)", path);
	return 0;
}

/* Kubernetes' names, as the API server checks them: a DNS subdomain (an
 * API group, a resource: km_dns1123_subdomain), a DNS label (a
 * namespace), a verb ("get", "create", or a custom one such as
 * "escalate"). */
static bool is_verb(const char *s)
{
	size_t n = strlen(s);

	if (!strcmp(s, "*"))
		return true;
	if (!n || n > 63 || !islower((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* One string of an access; *out stays when the key is not given. */
static int get_access_part(struct km_yaml *ld, const yaml_node_t *n,
			   const char *role, const char *key, bool may_be_empty,
			   const char **out)
{
	struct km_yaml_shown b;
	const char *s = NULL;
	char p[128];
	bool ok;
	int rc;

	if (!n)
		return 0;
	pathf(p, sizeof p, "auth.kubernetesAccessReview.%s.%s", role, key);
	if (km_yaml_is_null(n))
		return km_yaml_errorf(ld, n, "%s: expected a string, got null",
				      p);
	if ((rc = km_yaml_str(ld, n, p, &s)))
		return rc;
	if (!*s) {
		ok = may_be_empty;
	} else if (!strcmp(key, "verb")) {
		ok = is_verb(s);
	} else if (!strcmp(key, "group")) {
		ok = !strcmp(s, "*") || km_dns1123_subdomain(s);
	} else if (!strcmp(key, "namespace")) {
		ok = km_dns1123_label(s);
	} else if (!strcmp(key, "name")) {
		ok = strlen(s) <= 253 && !strchr(s, '/') && !strchr(s, '%') &&
		     strcmp(s, ".") && strcmp(s, "..");
		for (size_t i = 0; ok && s[i]; i++)
			ok = (unsigned char)s[i] > ' ' && s[i] != 0x7f;
	} else { /* resource, subresource */
		ok = !strcmp(s, "*") || km_dns1123_subdomain(s);
	}
	if (!ok)
		return km_yaml_errorf(
			ld, n, "%s: %s is not %s", p, km_yaml_show(n, &b),
			!strcmp(key, "verb")
				? "a verb (lowercase letters, digits and "
				  "'-', such as get, update or create; or *)"
			: !strcmp(key, "group")
				? "an API group (a DNS subdomain such as "
				  "kubemedic.io; \"\" for the core group; or *)"
			: !strcmp(key, "namespace")
				? "a namespace (a DNS label; \"\" for the "
				  "whole cluster)"
			: !strcmp(key, "name")
				? "an object name (no '/', '%', spaces or "
				  "control characters, at most 253 bytes)"
				: "a resource (lowercase, such as health or "
				  "recoveries; or *)");
	*out = s;
	return 0;
}

/* One role's access: a mapping over the defaults, or none (not asked). */
static int parse_access_role(struct km_yaml *ld, const yaml_node_t *n, int role,
			     struct km_auth_access *w)
{
	static const char *const keys[] = {"group", "resource",  "subresource",
					   "name",  "namespace", "verb"};
	const char *rn = km_role_name(role);
	struct km_yaml_shown b;
	yaml_node_t *v[6];
	char p[96];
	int rc;

	pathf(p, sizeof p, "auth.kubernetesAccessReview.%s", rn);
	if (!n || km_yaml_is_null(n))
		return 0;
	if (n->type == YAML_SCALAR_NODE) {
		if (!strcmp(km_yaml_scalar(n), "none") &&
		    n->data.scalar.length == 4) {
			w->verb = NULL;
			return 0;
		}
		return km_yaml_errorf(ld, n,
				      "%s: expected {group, resource, "
				      "subresource, name, namespace, verb} or "
				      "none (the %s role is not asked of the "
				      "cluster), got %s",
				      p, rn, km_yaml_show(n, &b));
	}
	if (km_yaml_map(ld, n, p, keys, 6, v, 0))
		return KM_EINVAL;
	if ((rc = get_access_part(ld, v[0], rn, "group", true, &w->group)) ||
	    (rc = get_access_part(ld, v[1], rn, "resource", false,
				  &w->resource)) ||
	    (rc = get_access_part(ld, v[2], rn, "subresource", true,
				  &w->subresource)) ||
	    (rc = get_access_part(ld, v[3], rn, "name", true, &w->name)) ||
	    (rc = get_access_part(ld, v[4], rn, "namespace", true, &w->ns)) ||
	    (rc = get_access_part(ld, v[5], rn, "verb", false, &w->verb)))
		return rc;
	return 0;
}

static bool same_access(const struct km_auth_access *a,
			const struct km_auth_access *b)
{
	return !strcmp(a->group, b->group) &&
	       !strcmp(a->resource, b->resource) &&
	       !strcmp(a->subresource, b->subresource) &&
	       !strcmp(a->name, b->name) && !strcmp(a->ns, b->ns) &&
	       !strcmp(a->verb, b->verb);
}

/* auth.kubernetesAccessReview: true (the defaults), false, or a mapping
 * of roles and cache times. */
static int parse_access_review(struct km_yaml *ld, const yaml_node_t *n,
			       struct km_config *c)
{
	static const char *const keys[] = {"viewer", "operator", "admin",
					   "cacheAllowed", "cacheDenied"};
	const char *const path = "auth.kubernetesAccessReview";
	yaml_node_t *v[5];
	int rc, asked = 0;

	if (!n || km_yaml_is_null(n))
		return 0;
	if (n->type == YAML_SCALAR_NODE)
		return km_yaml_bool(ld, n, path, &c->auth_kube_access);
	if (km_yaml_map(ld, n, path, keys, 5, v, 0))
		return KM_EINVAL;
	c->auth_kube_access = true;
	for (int r = KM_ROLE_VIEWER; r <= KM_ROLE_ADMIN; r++)
		if ((rc = parse_access_role(ld, v[r - 1], r,
					    &c->auth_kube_access_as[r])))
			return rc;
	if ((rc = km_yaml_duration(ld, v[3],
				   "auth.kubernetesAccessReview."
				   "cacheAllowed",
				   0, MS_HOUR, "between 0s and 1h",
				   &c->auth_kube_access_allowed_ms)) ||
	    (rc = km_yaml_duration(ld, v[4],
				   "auth.kubernetesAccessReview."
				   "cacheDenied",
				   0, MS_HOUR, "between 0s and 1h",
				   &c->auth_kube_access_denied_ms)))
		return rc;
	for (int r = KM_ROLE_VIEWER; r <= KM_ROLE_ADMIN; r++) {
		const struct km_auth_access *w = &c->auth_kube_access_as[r];

		if (!w->verb)
			continue;
		asked++;
		for (int q = KM_ROLE_VIEWER; q < r; q++)
			if (c->auth_kube_access_as[q].verb &&
			    same_access(&c->auth_kube_access_as[q], w))
				return km_yaml_errorf(
					ld, v[r - 1] ? v[r - 1] : n,
					"%s.%s: asks the cluster the same as "
					"%s (\"%s\" on %s%s%s): a caller "
					"allowed one would always have %s",
					path, km_role_name(r), km_role_name(q),
					w->verb, w->resource,
					*w->group ? "." : "", w->group,
					km_role_name(r));
	}
	if (!asked)
		return km_yaml_errorf(ld, n,
				      "%s: every role is none: nothing would "
				      "be asked (false turns it off)",
				      path);
	return 0;
}

static int parse_auth(struct km_yaml *ld, const yaml_node_t *n,
		      struct km_config *c)
{
	static const char *const keys[] = {"tokenFile",
					   "localUser",
					   "localRole",
					   "healthRole",
					   "bindings",
					   "kubernetesTokens",
					   "kubernetesAccessReview"};
	yaml_node_t *v[7];
	struct km_yaml_shown b;
	int rc, health = -1;

	if (km_yaml_map(ld, n, "auth", keys, 7, v, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_bool(ld, v[5], "auth.kubernetesTokens",
			       &c->auth_kube_tokens)) ||
	    (rc = parse_access_review(ld, v[6], c)))
		return rc;
	if (c->auth_kube_access && !c->auth_kube_tokens)
		return km_yaml_errorf(
			ld, v[6],
			"auth.kubernetesAccessReview: needs "
			"auth.kubernetesTokens: true (it asks the cluster "
			"about the identities its TokenReviews give)");
	if ((rc = get_path(ld, v[0], "auth.tokenFile", &c->auth_token_file)) ||
	    (rc = km_yaml_str(ld, v[1], "auth.localUser",
			      &c->auth_local_user)) ||
	    (rc = get_role(ld, v[2], "auth.localRole", KM_ROLE_NONE,
			   &c->auth_local_role)))
		return rc;
	if (v[3] && !km_yaml_is_null(v[3])) {
		rc = get_role(ld, v[3], "auth.healthRole", KM_ROLE_NONE,
			      &health);
		if (rc)
			return rc;
		if (health > KM_ROLE_VIEWER)
			return km_yaml_errorf(
				ld, v[3],
				"auth.healthRole: none (anyone) or viewer, "
				"got %s",
				km_yaml_show(v[3], &b));
		c->auth_health_role = health;
	}
	/* "" turns the local identity off. */
	if (c->auth_local_user && !*c->auth_local_user)
		c->auth_local_user = NULL;
	if (v[4] && !km_yaml_is_null(v[4])) {
		size_t len;

		if (v[4]->type != YAML_SEQUENCE_NODE)
			return km_yaml_errorf(
				ld, v[4],
				"auth.bindings: expected a list of "
				"{role, users, groups}, got %s",
				km_yaml_show(v[4], &b));
		len = km_yaml_seq_len(v[4]);
		c->auth_bindings = km_arena_calloc(ld->a, len ? len : 1,
						   sizeof *c->auth_bindings);
		if (!c->auth_bindings)
			return km_yaml_oom(ld);
		for (size_t i = 0; i < len; i++) {
			yaml_node_t *item = km_yaml_node(
				ld, v[4]->data.sequence.items.start[i]);
			char p[64];

			pathf(p, sizeof p, "auth.bindings[%zu]", i);
			if (!item)
				return km_yaml_errorf(ld, v[4], "%s: missing",
						      p);
			rc = parse_binding(ld, item, p, &c->auth_bindings[i]);
			if (rc)
				return rc;
		}
		c->n_auth_bindings = len;
	}
	return 0;
}

/* The limits: section. Each key is a bound on what one caller may ask
 * for; docs/config.md says why each default is what it is. */
static int parse_limits(struct km_yaml *ld, const yaml_node_t *n,
			struct km_config *c)
{
	enum {
		L_DEFAULT_DEADLINE,
		L_MAX_DEADLINE,
		L_SELECTOR_BYTES,
		L_SELECTOR_REQS,
		L_WATCH_TARGETS,
		L_PROBES,
		L_PROBES_IDENTITY,
		L_STREAMS,
		L_STREAMS_PEER,
		L_CALLS_CONN,
		L_REQUEST_MEMORY,
		L_N
	};
	static const char *const keys[L_N] = {
		"defaultDeadline",       "maxDeadline",
		"maxSelectorBytes",      "maxSelectorRequirements",
		"maxWatchTargets",       "maxProbes",
		"maxProbesPerIdentity",  "maxStreams",
		"maxStreamsPerPeer",     "maxCallsPerConnection",
		"maxRequestMemoryBytes",
	};
	struct km_limits *l = &c->limits;
	yaml_node_t *v[L_N];
	int rc;

	if (km_yaml_map(ld, n, "limits", keys, L_N, v, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_duration(ld, v[L_DEFAULT_DEADLINE],
				   "limits.defaultDeadline", 100, MS_HOUR,
				   "between 100ms and 1h",
				   &l->default_deadline_ms)) ||
	    (rc = km_yaml_duration(ld, v[L_MAX_DEADLINE], "limits.maxDeadline",
				   100, MS_HOUR, "between 100ms and 1h",
				   &l->max_deadline_ms)) ||
	    (rc = km_yaml_int(ld, v[L_SELECTOR_BYTES],
			      "limits.maxSelectorBytes", 64, 16 << 20,
			      &l->max_selector_bytes)) ||
	    (rc = km_yaml_int(ld, v[L_SELECTOR_REQS],
			      "limits.maxSelectorRequirements", 1, 1000000,
			      &l->max_selector_requirements)) ||
	    (rc = km_yaml_int(ld, v[L_WATCH_TARGETS], "limits.maxWatchTargets",
			      1, 100000, &l->max_watch_targets)) ||
	    (rc = km_yaml_int(ld, v[L_PROBES], "limits.maxProbes", 1, 10000000,
			      &l->max_probes)) ||
	    (rc = km_yaml_int(ld, v[L_PROBES_IDENTITY],
			      "limits.maxProbesPerIdentity", 1, 10000000,
			      &l->max_probes_per_identity)) ||
	    (rc = km_yaml_int(ld, v[L_STREAMS], "limits.maxStreams", 1, 1000000,
			      &l->max_streams)) ||
	    (rc = km_yaml_int(ld, v[L_STREAMS_PEER], "limits.maxStreamsPerPeer",
			      1, 1000000, &l->max_streams_per_peer)) ||
	    (rc = km_yaml_int(ld, v[L_CALLS_CONN],
			      "limits.maxCallsPerConnection", 1, INT32_MAX,
			      &l->max_calls_per_connection)) ||
	    (rc = km_yaml_int(ld, v[L_REQUEST_MEMORY],
			      "limits.maxRequestMemoryBytes", 65536, 1 << 30,
			      &l->max_request_memory_bytes)))
		return rc;
	if (l->default_deadline_ms > l->max_deadline_ms)
		return km_yaml_errorf(
			ld, v[L_DEFAULT_DEADLINE] ? v[L_DEFAULT_DEADLINE] : n,
			"limits.defaultDeadline (%lldms) must not be "
			"longer than limits.maxDeadline (%lldms)",
			(long long)l->default_deadline_ms,
			(long long)l->max_deadline_ms);
	return 0;
}

/* A list of strings (not null, no NUL) at path, bounded; *n items into *out, in
 * the arena. At most max items. */
static int get_bounded_str_list(struct km_yaml *ld, const yaml_node_t *n,
				const char *path, size_t max, const char ***out,
				size_t *nout)
{
	struct km_yaml_shown b;
	size_t len;
	const char **v;

	if (n->type != YAML_SEQUENCE_NODE)
		return km_yaml_errorf(ld, n, "%s: expected a list, got %s",
				      path, km_yaml_show(n, &b));
	len = km_yaml_seq_len(n);
	if (len > max)
		return km_yaml_errorf(ld, n,
				      "%s: %zu items, at most %zu allowed",
				      path, len, max);
	v = km_arena_calloc(ld->a, len ? len : 1, sizeof *v);
	if (!v)
		return km_yaml_oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item =
			km_yaml_node(ld, n->data.sequence.items.start[i]);
		char ipath[192];
		int rc;

		pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (!item || km_yaml_is_null(item))
			return km_yaml_errorf(ld, item ? item : n,
					      "%s: expected a string, got null",
					      ipath);
		rc = km_yaml_str(ld, item, ipath, &v[i]);
		if (rc)
			return rc;
	}
	*out = v;
	*nout = len;
	return 0;
}

/* A list of networks ("10.0.0.0/8") at path. */
static int get_networks(struct km_yaml *ld, const yaml_node_t *n,
			const char *path, const struct km_cidr **out,
			size_t *nout)
{
	const char **v;
	struct km_cidr *nets;
	size_t len;
	int rc;

	rc = get_bounded_str_list(ld, n, path, KM_POLICY_MAX_NETWORKS, &v,
				  &len);
	if (rc)
		return rc;
	nets = km_arena_calloc(ld->a, len ? len : 1, sizeof *nets);
	if (!nets)
		return km_yaml_oom(ld);
	for (size_t i = 0; i < len; i++) {
		const char *why = km_cidr_parse(v[i], &nets[i]);
		yaml_node_t *item =
			km_yaml_node(ld, n->data.sequence.items.start[i]);
		struct km_yaml_shown b;

		if (why)
			return km_yaml_errorf(ld, item, "%s[%zu]: %s: %s", path,
					      i, km_yaml_show(item, &b), why);
	}
	*out = nets;
	*nout = len;
	return 0;
}

/* api: what probes created through the API may touch (km_probe.h). */
static int parse_api(struct km_yaml *ld, const yaml_node_t *n,
		     struct km_config *c)
{
	static const char *const keys[] = {"allowExec", "allowFile",
					   "filePathPrefixes", "probeNetworks"};
	static const char *const net_keys[] = {"allow", "deny"};
	struct km_probe_policy *pol = &c->api_policy;
	yaml_node_t *v[4], *nv[2];
	int rc;

	if (km_yaml_map(ld, n, "api", keys, 4, v, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_bool(ld, v[0], "api.allowExec", &pol->allow_exec)) ||
	    (rc = km_yaml_bool(ld, v[1], "api.allowFile", &pol->allow_file)))
		return rc;
	if (!km_yaml_is_null(v[2])) {
		const char **prefixes;
		size_t np;

		rc = get_bounded_str_list(ld, v[2], "api.filePathPrefixes",
					  KM_POLICY_MAX_PREFIXES, &prefixes,
					  &np);
		if (rc)
			return rc;
		for (size_t i = 0; i < np; i++) {
			yaml_node_t *item = km_yaml_node(
				ld, v[2]->data.sequence.items.start[i]);
			char norm[4096];
			struct km_yaml_shown b;

			if (prefixes[i][0] != '/')
				return km_yaml_errorf(
					ld, item,
					"api.filePathPrefixes[%zu]: %s: "
					"must be an absolute path",
					i, km_yaml_show(item, &b));
			if (!km_path_normalize(prefixes[i], norm, sizeof norm))
				return km_yaml_errorf(
					ld, item,
					"api.filePathPrefixes[%zu]: %s: "
					"\"..\" climbs above \"/\"",
					i, km_yaml_show(item, &b));
			prefixes[i] = km_arena_strdup(ld->a, norm);
			if (!prefixes[i])
				return km_yaml_oom(ld);
		}
		pol->file_prefixes = prefixes;
		pol->n_file_prefixes = np;
	}
	if (km_yaml_map(ld, v[3], "api.probeNetworks", net_keys, 2, nv, 0))
		return KM_EINVAL;
	/* A list given replaces the default list, whole. */
	if (!km_yaml_is_null(nv[0]) &&
	    (rc = get_networks(ld, nv[0], "api.probeNetworks.allow",
			       &pol->allow, &pol->n_allow)))
		return rc;
	if (!km_yaml_is_null(nv[1]) &&
	    (rc = get_networks(ld, nv[1], "api.probeNetworks.deny", &pol->deny,
			       &pol->n_deny)))
		return rc;
	return 0;
}

static int parse_prober(struct km_yaml *ld, const yaml_node_t *n,
			struct km_config *c)
{
	static const char *const keys[] = {"watchdog", "maxExecChildren"};
	yaml_node_t *v[2];
	int64_t watchdog = c->watchdog_ms;
	int rc;

	if (km_yaml_map(ld, n, "prober", keys, 2, v, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_duration(ld, v[0], "prober.watchdog", 0, MS_HOUR,
				   "0 (off) or between 1s and 1h",
				   &watchdog)) ||
	    (rc = km_yaml_int(ld, v[1], "prober.maxExecChildren", 1, 4096,
			      &c->max_exec_children)))
		return rc;
	if (watchdog > 0 && watchdog < 1000) {
		struct km_yaml_shown b;

		return km_yaml_errorf(
			ld, v[0],
			"prober.watchdog: must be 0 (off) or between 1s "
			"and 1h, got %s",
			km_yaml_show(v[0], &b));
	}
	c->watchdog_ms = watchdog;
	return 0;
}

/* kube: how the clusters' objects are judged (km_kube_rules.h). */
static int parse_kube(struct km_yaml *ld, const yaml_node_t *n,
		      struct km_config *c)
{
	static const char *const keys[] = {"leaseGrace", "podStartupGrace",
					   "controlPlanePeriod"};
	yaml_node_t *v[3];
	int rc;

	if (km_yaml_map(ld, n, "kube", keys, 3, v, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_duration(ld, v[0], "kube.leaseGrace", 1000, MS_HOUR,
				   "between 1s and 1h",
				   &c->kube_lease_grace_ms)) ||
	    (rc = km_yaml_duration(ld, v[1], "kube.podStartupGrace", 1000,
				   MS_DAY, "between 1s and 1d",
				   &c->kube_pod_startup_grace_ms)) ||
	    (rc = km_yaml_duration(ld, v[2], "kube.controlPlanePeriod", 1000,
				   MS_HOUR, "between 1s and 1h",
				   &c->kube_control_plane_period_ms)))
		return rc;
	return 0;
}

static int parse_cluster(struct km_yaml *ld, const yaml_node_t *n,
			 const char *path, struct km_config_cluster *cl)
{
	enum {
		C_NAME,
		C_KUBECONFIG,
		C_CONTEXT,
		C_IN_CLUSTER,
		C_NAMESPACE,
		C_SELECTOR,
		C_N
	};
	static const char *const keys[C_N] = {"name",      "kubeconfig",
					      "context",   "inCluster",
					      "namespace", "labelSelector"};
	yaml_node_t *v[C_N];
	struct km_yaml_shown b;
	char p[224];
	int rc;

	if (km_yaml_is_null(n) || n->type != YAML_MAPPING_NODE)
		return km_yaml_errorf(ld, n,
				      "%s: expected a mapping {name, "
				      "kubeconfig | inCluster, ...}, got %s",
				      path, km_yaml_show(n, &b));
	if (km_yaml_map(ld, n, path, keys, C_N, v, 0))
		return KM_EINVAL;
	pathf(p, sizeof p, "%s.name", path);
	if ((rc = km_yaml_str(ld, v[C_NAME], p, &cl->name)))
		return rc;
	if (!cl->name)
		return km_yaml_errorf(ld, n,
				      "%s: Required value: every cluster "
				      "needs a name (its targets are "
				      "\"NAME:kind/namespace/name\")",
				      p);
	if (!km_dns1123_label(cl->name))
		return km_yaml_errorf(
			ld, v[C_NAME],
			"%s: %s: must be lower-case letters, digits and "
			"'-', starting and ending with a letter or digit, "
			"at most 63 characters (an RFC 1123 label: it "
			"prefixes the cluster's targets)",
			p, km_yaml_show(v[C_NAME], &b));
	pathf(p, sizeof p, "%s.kubeconfig", path);
	if ((rc = get_path(ld, v[C_KUBECONFIG], p, &cl->kubeconfig)))
		return rc;
	pathf(p, sizeof p, "%s.context", path);
	if ((rc = get_path(ld, v[C_CONTEXT], p, &cl->context)))
		return rc;
	pathf(p, sizeof p, "%s.inCluster", path);
	if ((rc = km_yaml_bool(ld, v[C_IN_CLUSTER], p, &cl->in_cluster)))
		return rc;
	if (cl->kubeconfig && cl->in_cluster)
		return km_yaml_errorf(ld, v[C_IN_CLUSTER],
				      "%s: give kubeconfig or inCluster: "
				      "true, not both",
				      path);
	if (!cl->kubeconfig && !cl->in_cluster)
		return km_yaml_errorf(ld, n,
				      "%s: give kubeconfig (a file) or "
				      "inCluster: true (the cluster "
				      "kubemedicd runs in)",
				      path);
	if (cl->context && !cl->kubeconfig)
		return km_yaml_errorf(ld, v[C_CONTEXT],
				      "%s.context: needs kubeconfig (in "
				      "the cluster there are no contexts)",
				      path);
	pathf(p, sizeof p, "%s.namespace", path);
	if ((rc = km_yaml_str(ld, v[C_NAMESPACE], p, &cl->ns)))
		return rc;
	if (cl->ns && !*cl->ns)
		cl->ns = NULL; /* "": every namespace */
	if (cl->ns && !km_dns1123_label(cl->ns))
		return km_yaml_errorf(
			ld, v[C_NAMESPACE],
			"%s: %s is not a namespace name: lower-case "
			"letters, digits and '-', starting and ending with "
			"a letter or digit, at most 63 characters",
			p, km_yaml_show(v[C_NAMESPACE], &b));
	pathf(p, sizeof p, "%s.labelSelector", path);
	if ((rc = km_yaml_str(ld, v[C_SELECTOR], p, &cl->label_selector)))
		return rc;
	if (cl->label_selector && !*cl->label_selector)
		cl->label_selector = NULL; /* "": every object */
	if (cl->label_selector) {
		struct km_arena a;
		struct km_selector *sel;
		struct km_error e = {0};

		/* The API server would refuse it at every list, each time
		 * logged; better said once, now. */
		km_arena_init(&a, 1024);
		rc = km_selector_parse(cl->label_selector, &a, &sel, &e);
		km_arena_free(&a);
		if (rc == KM_ENOMEM)
			return km_yaml_oom(ld);
		if (rc)
			return km_yaml_errorf(ld, v[C_SELECTOR], "%s: %s", p,
					      e.msg);
	}
	return 0;
}

/* clusters: the Kubernetes clusters watched, each named. */
static int parse_clusters(struct km_yaml *ld, const yaml_node_t *n,
			  struct km_config *c)
{
	struct km_config_cluster *v;
	struct km_yaml_shown b;
	size_t len, in_cluster = SIZE_MAX;
	int rc;

	if (n->type != YAML_SEQUENCE_NODE)
		return km_yaml_errorf(ld, n,
				      "clusters: expected a list of clusters "
				      "(\"- name: ...\"), got %s",
				      km_yaml_show(n, &b));
	len = km_yaml_seq_len(n);
	if (len > KM_CONFIG_MAX_CLUSTERS)
		return km_yaml_errorf(ld, n,
				      "clusters: %zu clusters, at most %d "
				      "allowed",
				      len, KM_CONFIG_MAX_CLUSTERS);
	v = km_arena_calloc(ld->a, len ? len : 1, sizeof *v);
	if (!v)
		return km_yaml_oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = km_yaml_seq_item(ld, n, i);
		char p[32];

		pathf(p, sizeof p, "clusters[%zu]", i);
		if (!item)
			return km_yaml_errorf(ld, n, "%s: missing", p);
		if ((rc = parse_cluster(ld, item, p, &v[i])))
			return rc;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(v[j].name, v[i].name))
				return km_yaml_errorf(
					ld, item,
					"%s.name: duplicate name \"%s\": "
					"clusters[%zu] at line %zu has it "
					"already",
					p, v[i].name, j,
					km_yaml_line(
						km_yaml_seq_item(ld, n, j)));
		if (v[i].in_cluster && in_cluster != SIZE_MAX)
			return km_yaml_errorf(
				ld, item,
				"%s.inCluster: clusters[%zu] is already "
				"the cluster kubemedicd runs in",
				p, in_cluster);
		if (v[i].in_cluster)
			in_cluster = i;
	}
	c->clusters = v;
	c->n_clusters = len;
	return 0;
}

/* ---- recovery ---------------------------------------------------------- */

/* "N/UNIT" or "N/DURATION" ("1/min", "30/min", "5/s", "1/5m", "2/90s"),
 * or 0 (no limit), into r's count and period. */
static int get_rate(struct km_yaml *ld, const yaml_node_t *n, const char *path,
		    struct km_budget_rate *r)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"s", 1000},
		     {"min", MS_MINUTE},
		     {"h", MS_HOUR},
		     {"d", MS_DAY}};
	struct km_yaml_shown b;
	const char *text, *slash;
	char count[24];
	int64_t v, per = -1;

	if (km_yaml_is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE)
		return km_yaml_errorf(ld, n,
				      "%s: expected a rate (\"1/min\"), got %s",
				      path, km_yaml_show(n, &b));
	text = km_yaml_scalar(n);
	if (!strcmp(text, "0")) {
		r->count = 0;
		return 0;
	}
	slash = strchr(text, '/');
	if (!slash || (size_t)(slash - text) >= sizeof count)
		goto bad;
	memcpy(count, text, (size_t)(slash - text));
	count[slash - text] = '\0';
	if (!km_yaml_all_digits(count) || !km_yaml_parse_i64(count, &v) ||
	    v < 1 || v > 1000000)
		goto bad;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (!strcmp(slash + 1, units[i].unit))
			per = units[i].ms;
	if (per < 0 && km_duration_parse(slash + 1, &per))
		goto bad;
	if (per < 1000 || per > MS_DAY)
		return km_yaml_errorf(ld, n,
				      "%s: the period of %s must be between "
				      "1s and 1d",
				      path, km_yaml_show(n, &b));
	r->count = v;
	r->per_ms = per;
	return 0;
bad:
	return km_yaml_errorf(ld, n,
			      "%s: expected a rate: COUNT/PERIOD, a count "
			      "from 1 to 1000000 and a period of s, min, h, d "
			      "or a duration (\"1/min\", \"5/s\", \"1/10m\"), "
			      "or 0 for no limit; got %s",
			      path, km_yaml_show(n, &b));
}

/* rates: {ACTION: {rate, burst}, ...} at path. */
static int parse_rates(struct km_yaml *ld, const yaml_node_t *n,
		       const char *path, struct km_budget_rate *rates)
{
	static const char *const actions[KM_ACTION_MAX] = {"restart_pod",
							   "rollout_restart",
							   "cordon", "uncordon",
							   "drain"};
	static const char *const keys[] = {"rate", "burst"};
	yaml_node_t *v[KM_ACTION_MAX];
	int rc;

	if (km_yaml_map(ld, n, path, actions, KM_ACTION_MAX, v, 0))
		return KM_EINVAL;
	for (int a = 1; a <= KM_ACTION_MAX; a++) {
		yaml_node_t *rv[2];
		char p[224];

		if (km_yaml_is_null(v[a - 1]))
			continue;
		pathf(p, sizeof p, "%s.%s", path, actions[a - 1]);
		if (km_yaml_map(ld, v[a - 1], p, keys, 2, rv, 0))
			return KM_EINVAL;
		pathf(p, sizeof p, "%s.%s.rate", path, actions[a - 1]);
		if (!rv[0])
			return km_yaml_errorf(ld, v[a - 1],
					      "%s: Required value (\"1/min\", "
					      "or 0 for no limit)",
					      p);
		if ((rc = get_rate(ld, rv[0], p, &rates[a])))
			return rc;
		pathf(p, sizeof p, "%s.%s.burst", path, actions[a - 1]);
		if ((rc = km_yaml_int(ld, rv[1], p, 1, 1000000,
				      &rates[a].burst)))
			return rc;
	}
	return 0;
}

static int parse_budget(struct km_yaml *ld, const yaml_node_t *n,
			struct km_budget_config *bc)
{
	enum {
		B_MAX,
		B_PER_CLUSTER,
		B_RATES,
		B_GLOBAL,
		B_STORM,
		B_MEMBERS,
		B_N
	};
	static const char *const keys[B_N] = {
		"maxConcurrent", "maxConcurrentPerCluster",
		"rates",         "globalRates",
		"storm",         "maxStormMembers"};
	static const char *const storm_keys[] = {"share", "minUnhealthy"};
	yaml_node_t *v[B_N], *sv[2];
	int64_t max = bc->max_concurrent, per = bc->max_concurrent_per_cluster;
	int64_t share = bc->storm_share_pct, min = bc->storm_min_unhealthy;
	int64_t members = (int64_t)bc->max_members;
	struct km_error e = {0};
	int rc;

	if (km_yaml_map(ld, n, "recovery.budget", keys, B_N, v, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_int(ld, v[B_MAX], "recovery.budget.maxConcurrent", 1,
			      10000, &max)) ||
	    (rc = km_yaml_int(ld, v[B_PER_CLUSTER],
			      "recovery.budget.maxConcurrentPerCluster", 1,
			      10000, &per)) ||
	    (rc = km_yaml_int(ld, v[B_MEMBERS],
			      "recovery.budget.maxStormMembers", 1, 10000000,
			      &members)))
		return rc;
	if (per > max)
		return km_yaml_errorf(
			ld, v[B_PER_CLUSTER] ? v[B_PER_CLUSTER] : n,
			"recovery.budget.maxConcurrentPerCluster (%lld) must "
			"be at most maxConcurrent (%lld)",
			(long long)per, (long long)max);
	if (!km_yaml_is_null(v[B_RATES]) &&
	    (rc = parse_rates(ld, v[B_RATES], "recovery.budget.rates",
			      bc->rates)))
		return rc;
	if (!km_yaml_is_null(v[B_GLOBAL]) &&
	    (rc = parse_rates(ld, v[B_GLOBAL], "recovery.budget.globalRates",
			      bc->global_rates)))
		return rc;
	if (km_yaml_map(ld, v[B_STORM], "recovery.budget.storm", storm_keys, 2,
			sv, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_int(ld, sv[0], "recovery.budget.storm.share", 1, 99,
			      &share)) ||
	    (rc = km_yaml_int(ld, sv[1], "recovery.budget.storm.minUnhealthy",
			      1, 1000000, &min)))
		return rc;
	bc->max_concurrent = (int)max;
	bc->max_concurrent_per_cluster = (int)per;
	bc->storm_share_pct = (int)share;
	bc->storm_min_unhealthy = (int)min;
	bc->max_members = (size_t)members;
	/* The module's own rules, once more: they are the contract. */
	if (km_budget_config_check(bc, &e))
		return km_yaml_errorf(ld, n, "recovery.budget.%s", e.msg);
	return 0;
}

/* An action's name at path into *out. */
static int get_action(struct km_yaml *ld, const yaml_node_t *n,
		      const char *path, int *out)
{
	struct km_yaml_shown b;
	const char *s = NULL;
	int rc = km_yaml_str(ld, n, path, &s);

	if (rc || !s)
		return rc;
	*out = km_action_parse(s, strlen(s));
	if (!*out)
		return km_yaml_errorf(ld, n,
				      "%s: unknown action %s (known: "
				      "restart_pod, rollout_restart, cordon, "
				      "drain)",
				      path, km_yaml_show(n, &b));
	return 0;
}

/* A list of strings at path, as the policy's (const) list. */
static int get_policy_list(struct km_yaml *ld, const yaml_node_t *n,
			   const char *path, const char *const **out,
			   size_t *nout)
{
	const char **v = NULL;
	int rc;

	if (km_yaml_is_null(n))
		return 0;
	rc = get_bounded_str_list(ld, n, path, KM_POLICY_MAX_LIST, &v, nout);
	*out = v;
	return rc;
}

enum {
	PO_NAME,
	PO_MATCH,
	PO_TRIGGER,
	PO_ACTION,
	PO_ESCALATION,
	PO_MAX_ATTEMPTS,
	PO_BACKOFF,
	PO_N
};

/* The node and path km_policy_config_check's field names. */
static const yaml_node_t *policy_field_node(
	struct km_yaml *ld, yaml_node_t *const *v, yaml_node_t *const *mv,
	yaml_node_t *const *tv, yaml_node_t *const *ev, yaml_node_t *const *bv,
	const yaml_node_t *whole, int field, int index, char *p, size_t len)
{
	const yaml_node_t *list = NULL, *n = NULL;

	switch (field) {
	case KM_PF_NAME:
		pathf(p, len, "name");
		n = v[PO_NAME];
		break;
	case KM_PF_CLUSTERS:
	case KM_PF_NAMESPACES:
		pathf(p, len, "match.%s",
		      field == KM_PF_CLUSTERS ? "clusters" : "namespaces");
		list = n = mv[field == KM_PF_CLUSTERS ? 0 : 2];
		break;
	case KM_PF_KINDS:
		pathf(p, len, "match.kinds");
		n = mv[1];
		break;
	case KM_PF_SELECTOR:
		pathf(p, len, "match.labelSelector");
		n = mv[3];
		break;
	case KM_PF_UNHEALTHY_FOR:
		pathf(p, len, "trigger.unhealthyFor");
		n = tv[0];
		break;
	case KM_PF_REASONS:
		pathf(p, len, "trigger.reasons");
		list = n = tv[1];
		break;
	case KM_PF_LADDER:
		if (index <= 0) {
			pathf(p, len, "action");
			n = v[PO_ACTION];
		} else {
			pathf(p, len, "escalation.ladder[%d]", index - 1);
			n = ev[1] ? km_yaml_seq_item(ld, ev[1],
						     (size_t)index - 1)
				  : NULL;
		}
		index = -1;
		break;
	case KM_PF_ESCALATE_AFTER:
		pathf(p, len, "escalation.after");
		n = ev[0];
		break;
	case KM_PF_MAX_ATTEMPTS:
		pathf(p, len, "maxAttempts");
		n = v[PO_MAX_ATTEMPTS];
		break;
	case KM_PF_BACKOFF:
		pathf(p, len, "backoff");
		n = bv[0] ? bv[0] : v[PO_BACKOFF];
		break;
	default: pathf(p, len, "?");
	}
	if (list && index >= 0 && list->type == YAML_SEQUENCE_NODE) {
		size_t used = strlen(p);

		pathf(p + used, len - used, "[%d]", index);
		n = km_yaml_seq_item(ld, list, (size_t)index);
	}
	return n ? n : whole;
}

static int parse_policy(struct km_yaml *ld, const yaml_node_t *n,
			const char *path, struct km_policy_config *pc)
{
	static const char *const keys[PO_N] = {"name",       "match",
					       "trigger",    "action",
					       "escalation", "maxAttempts",
					       "backoff"};
	static const char *const match_keys[] = {"clusters", "kinds",
						 "namespaces", "labelSelector"};
	static const char *const trigger_keys[] = {"unhealthyFor", "reasons"};
	static const char *const esc_keys[] = {"after", "ladder"};
	static const char *const backoff_keys[] = {"initial", "max",
						   "resetAfter"};
	yaml_node_t *v[PO_N], *mv[4], *tv[2], *ev[2], *bv[3];
	struct km_yaml_shown b;
	struct km_error e = {0};
	const char **kinds = NULL;
	size_t n_kinds = 0;
	int64_t i64;
	int field, index, rc;
	char p[224], fp[96];

	km_policy_config_defaults(pc);
	if (km_yaml_is_null(n) || n->type != YAML_MAPPING_NODE)
		return km_yaml_errorf(ld, n,
				      "%s: expected a mapping {name, match, "
				      "trigger, action, ...}, got %s",
				      path, km_yaml_show(n, &b));
	if (km_yaml_map(ld, n, path, keys, PO_N, v, 0))
		return KM_EINVAL;
	pathf(p, sizeof p, "%s.name", path);
	if ((rc = km_yaml_str(ld, v[PO_NAME], p, &pc->name)))
		return rc;
	if (!pc->name)
		return km_yaml_errorf(ld, n,
				      "%s: Required value: every policy needs "
				      "a name (its requester is "
				      "\"policy:NAME\")",
				      p);

	pathf(p, sizeof p, "%s.match", path);
	if (!v[PO_MATCH] || km_yaml_is_null(v[PO_MATCH]))
		return km_yaml_errorf(ld, n,
				      "%s: Required value: at least "
				      "match.kinds",
				      p);
	if (km_yaml_map(ld, v[PO_MATCH], p, match_keys, 4, mv, 0))
		return KM_EINVAL;
	pathf(p, sizeof p, "%s.match.clusters", path);
	if ((rc = get_policy_list(ld, mv[0], p, &pc->clusters,
				  &pc->n_clusters)))
		return rc;
	pathf(p, sizeof p, "%s.match.kinds", path);
	if (km_yaml_is_null(mv[1]))
		return km_yaml_errorf(ld, v[PO_MATCH],
				      "%s: Required value: one or more of pod, "
				      "node, deployment, statefulset, "
				      "daemonset, probe",
				      p);
	if ((rc = get_bounded_str_list(ld, mv[1], p, 8, &kinds, &n_kinds)))
		return rc;
	for (size_t i = 0; i < n_kinds; i++) {
		int k = km_kind_parse(kinds[i], strlen(kinds[i]));

		if (!k || !(KM_POLICY_KINDS & (1u << k)))
			return km_yaml_errorf(
				ld, km_yaml_seq_item(ld, mv[1], i),
				"%s[%zu]: %s is not a kind a policy acts on "
				"(pod, node, deployment, statefulset, "
				"daemonset, probe)",
				p, i,
				km_yaml_show(km_yaml_seq_item(ld, mv[1], i),
					     &b));
		pc->kinds |= 1u << k;
	}
	if (!pc->kinds)
		return km_yaml_errorf(ld, mv[1],
				      "%s: Required value: one or more of pod, "
				      "node, deployment, statefulset, "
				      "daemonset, probe",
				      p);
	pathf(p, sizeof p, "%s.match.namespaces", path);
	if ((rc = get_policy_list(ld, mv[2], p, &pc->namespaces,
				  &pc->n_namespaces)))
		return rc;
	pathf(p, sizeof p, "%s.match.labelSelector", path);
	if ((rc = km_yaml_str(ld, mv[3], p, &pc->label_selector)))
		return rc;

	pathf(p, sizeof p, "%s.trigger", path);
	if (km_yaml_map(ld, v[PO_TRIGGER], p, trigger_keys, 2, tv, 0))
		return KM_EINVAL;
	if (km_yaml_is_null(tv[0]) && km_yaml_is_null(tv[1]))
		return km_yaml_errorf(ld, v[PO_TRIGGER] ? v[PO_TRIGGER] : n,
				      "%s: Required value: unhealthyFor, "
				      "reasons or both",
				      p);
	pathf(p, sizeof p, "%s.trigger.unhealthyFor", path);
	if ((rc = km_yaml_duration(ld, tv[0], p, 0, MS_DAY, "at most 1d",
				   &pc->unhealthy_for_ms)))
		return rc;
	pathf(p, sizeof p, "%s.trigger.reasons", path);
	if ((rc = get_policy_list(ld, tv[1], p, &pc->reasons, &pc->n_reasons)))
		return rc;

	pathf(p, sizeof p, "%s.action", path);
	if (km_yaml_is_null(v[PO_ACTION]))
		return km_yaml_errorf(ld, n,
				      "%s: Required value: restart_pod, "
				      "rollout_restart, cordon or drain",
				      p);
	if ((rc = get_action(ld, v[PO_ACTION], p, &pc->ladder[0])))
		return rc;
	pc->n_ladder = 1;

	pathf(p, sizeof p, "%s.escalation", path);
	if (km_yaml_map(ld, v[PO_ESCALATION], p, esc_keys, 2, ev, 0))
		return KM_EINVAL;
	pathf(p, sizeof p, "%s.escalation.after", path);
	i64 = pc->escalate_after;
	if ((rc = km_yaml_int(ld, ev[0], p, 1, 100, &i64)))
		return rc;
	pc->escalate_after = (int)i64;
	if (!km_yaml_is_null(ev[1])) {
		const char **rungs;
		size_t n_rungs;

		pathf(p, sizeof p, "%s.escalation.ladder", path);
		if ((rc = get_bounded_str_list(ld, ev[1], p,
					       KM_POLICY_MAX_RUNGS - 1, &rungs,
					       &n_rungs)))
			return rc;
		for (size_t i = 0; i < n_rungs; i++) {
			pathf(p, sizeof p, "%s.escalation.ladder[%zu]", path,
			      i);
			if ((rc = get_action(ld, km_yaml_seq_item(ld, ev[1], i),
					     p, &pc->ladder[i + 1])))
				return rc;
		}
		pc->n_ladder += n_rungs;
	}

	pathf(p, sizeof p, "%s.maxAttempts", path);
	i64 = pc->max_attempts;
	if ((rc = km_yaml_int(ld, v[PO_MAX_ATTEMPTS], p, 1, 100, &i64)))
		return rc;
	pc->max_attempts = (int)i64;

	pathf(p, sizeof p, "%s.backoff", path);
	if (km_yaml_map(ld, v[PO_BACKOFF], p, backoff_keys, 3, bv, 0))
		return KM_EINVAL;
	pathf(p, sizeof p, "%s.backoff.initial", path);
	if ((rc = km_yaml_duration(ld, bv[0], p, 1000, MS_DAY,
				   "between 1s and 1d",
				   &pc->backoff.initial_ms)))
		return rc;
	pathf(p, sizeof p, "%s.backoff.max", path);
	if ((rc = km_yaml_duration(ld, bv[1], p, 1000, MS_DAY,
				   "between 1s and 1d", &pc->backoff.max_ms)))
		return rc;
	pathf(p, sizeof p, "%s.backoff.resetAfter", path);
	if ((rc = km_yaml_duration(ld, bv[2], p, 1000, MS_DAY,
				   "between 1s and 1d",
				   &pc->backoff.reset_after_ms)))
		return rc;

	/* km_policy's rules, pointed at the key they concern. */
	if (km_policy_config_check(pc, &field, &index, &e)) {
		const char *why = strstr(e.msg, ": ");
		const yaml_node_t *at = policy_field_node(
			ld, v, mv, tv, ev, bv, n, field, index, fp, sizeof fp);

		return km_yaml_errorf(ld, at, "%s.%s: %s", path, fp,
				      why ? why + 2 : e.msg);
	}
	return 0;
}

static int parse_policies(struct km_yaml *ld, const yaml_node_t *n,
			  struct km_config *c)
{
	struct km_policy_config *v;
	struct km_yaml_shown b;
	size_t len;
	int rc;

	if (n->type != YAML_SEQUENCE_NODE)
		return km_yaml_errorf(ld, n,
				      "recovery.policies: expected a list of "
				      "policies (\"- name: ...\"), got %s",
				      km_yaml_show(n, &b));
	len = km_yaml_seq_len(n);
	if (len > KM_POLICY_MAX)
		return km_yaml_errorf(ld, n,
				      "recovery.policies: %zu policies, at "
				      "most %d allowed",
				      len, KM_POLICY_MAX);
	v = km_arena_calloc(ld->a, len ? len : 1, sizeof *v);
	if (!v)
		return km_yaml_oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = km_yaml_seq_item(ld, n, i);
		char p[40];

		pathf(p, sizeof p, "recovery.policies[%zu]", i);
		if (!item)
			return km_yaml_errorf(ld, n, "%s: missing", p);
		if ((rc = parse_policy(ld, item, p, &v[i])))
			return rc;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(v[j].name, v[i].name))
				return km_yaml_errorf(
					ld, item,
					"%s.name: duplicate name \"%s\": "
					"recovery.policies[%zu] at line %zu "
					"has it already",
					p, v[i].name, j,
					km_yaml_line(
						km_yaml_seq_item(ld, n, j)));
	}
	c->policies = v;
	c->n_policies = len;
	return 0;
}

/* recovery.leaderElection: the Lease's names are Kubernetes names, the
 * durations ordered as client-go's (retry < renew deadline < lease). */
static int parse_leader(struct km_yaml *ld, const yaml_node_t *n,
			struct km_config *c)
{
	enum { L_ON, L_NS, L_NAME, L_ID, L_LEASE, L_RENEW, L_RETRY, L_N };
	static const char *const keys[L_N] = {"enabled",       "namespace",
					      "name",          "identity",
					      "leaseDuration", "renewDeadline",
					      "retryPeriod"};
	static const char *const path[L_N] = {
		"recovery.leaderElection.enabled",
		"recovery.leaderElection.namespace",
		"recovery.leaderElection.name",
		"recovery.leaderElection.identity",
		"recovery.leaderElection.leaseDuration",
		"recovery.leaderElection.renewDeadline",
		"recovery.leaderElection.retryPeriod"};
	yaml_node_t *v[L_N];
	int rc;

	if (km_yaml_map(ld, n, "recovery.leaderElection", keys, L_N, v, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_bool(ld, v[L_ON], path[L_ON], &c->leader_election)) ||
	    (rc = km_yaml_str(ld, v[L_NS], path[L_NS], &c->lease_ns)) ||
	    (rc = km_yaml_str(ld, v[L_NAME], path[L_NAME], &c->lease_name)) ||
	    (rc = km_yaml_str(ld, v[L_ID], path[L_ID], &c->lease_identity)) ||
	    (rc = km_yaml_duration(ld, v[L_LEASE], path[L_LEASE], 1000, MS_HOUR,
				   "between 1s and 1h",
				   &c->lease_duration_ms)) ||
	    (rc = km_yaml_duration(ld, v[L_RENEW], path[L_RENEW], 1, MS_HOUR,
				   "between 1ms and 1h",
				   &c->renew_deadline_ms)) ||
	    (rc = km_yaml_duration(ld, v[L_RETRY], path[L_RETRY], 1, MS_HOUR,
				   "between 1ms and 1h", &c->retry_period_ms)))
		return rc;
	if (c->lease_ns && !km_dns1123_label(c->lease_ns))
		return km_yaml_errorf(ld, v[L_NS],
				      "%s: \"%s\" is no namespace name (a "
				      "DNS-1123 label)",
				      path[L_NS], c->lease_ns);
	if (!km_dns1123_subdomain(c->lease_name))
		return km_yaml_errorf(ld, v[L_NAME],
				      "%s: \"%s\" is no Lease name (a DNS-1123 "
				      "subdomain)",
				      path[L_NAME], c->lease_name);
	if (c->lease_identity &&
	    (!*c->lease_identity || strlen(c->lease_identity) > 128))
		return km_yaml_errorf(ld, v[L_ID], "%s: 1 to 128 bytes",
				      path[L_ID]);
	if (!(c->retry_period_ms < c->renew_deadline_ms &&
	      c->renew_deadline_ms < c->lease_duration_ms))
		return km_yaml_errorf(ld, n,
				      "recovery.leaderElection: retryPeriod "
				      "(%lldms) < renewDeadline (%lldms) < "
				      "leaseDuration (%lldms) is needed: a "
				      "leader stops leading before its Lease "
				      "can expire for the others",
				      (long long)c->retry_period_ms,
				      (long long)c->renew_deadline_ms,
				      (long long)c->lease_duration_ms);
	return 0;
}

static int parse_recovery(struct km_yaml *ld, const yaml_node_t *n,
			  struct km_config *c)
{
	enum {
		R_WORKERS,
		R_QUEUE,
		R_ATTEMPTS,
		R_VERIFY,
		R_DRY,
		R_TARGETS,
		R_BUDGET,
		R_POLICIES,
		R_LEADER,
		R_GRACE,
		R_DRAIN,
		R_N
	};
	static const char *const keys[R_N] = {
		"workers",        "queueMax", "maxAttempts",
		"verifyWindow",   "dryRun",   "maxPolicyTargets",
		"budget",         "policies", "leaderElection",
		"podGracePeriod", "drain"};
	enum { D_TIMEOUT, D_RETRY, D_N };
	static const char *const drain_keys[D_N] = {"timeout", "retryInterval"};
	yaml_node_t *v[R_N], *dv[D_N];
	int64_t workers = c->recovery_workers,
		attempts = c->recovery_max_attempts;
	int rc;

	if (km_yaml_map(ld, n, "recovery", keys, R_N, v, 0))
		return KM_EINVAL;
	if ((rc = km_yaml_int(ld, v[R_WORKERS], "recovery.workers", 1, 1024,
			      &workers)) ||
	    (rc = km_yaml_int(ld, v[R_QUEUE], "recovery.queueMax", 1, 1 << 20,
			      &c->recovery_queue_max)) ||
	    (rc = km_yaml_int(ld, v[R_ATTEMPTS], "recovery.maxAttempts", 1, 100,
			      &attempts)) ||
	    (rc = km_yaml_duration(ld, v[R_VERIFY], "recovery.verifyWindow",
				   1000, MS_HOUR, "between 1s and 1h",
				   &c->recovery_verify_window_ms)) ||
	    (rc = km_yaml_bool(ld, v[R_DRY], "recovery.dryRun",
			       &c->recovery_dry_run)) ||
	    (rc = km_yaml_int(ld, v[R_TARGETS], "recovery.maxPolicyTargets", 1,
			      10000000, &c->recovery_max_policy_targets)) ||
	    (rc = km_yaml_duration(ld, v[R_GRACE], "recovery.podGracePeriod", 0,
				   MS_HOUR, "between 0s and 1h",
				   &c->recovery_pod_grace_ms)))
		return rc;
	if (!km_yaml_is_null(v[R_DRAIN]) &&
	    ((rc = km_yaml_map(ld, v[R_DRAIN], "recovery.drain", drain_keys,
			       D_N, dv, 0)) ||
	     (rc = km_yaml_duration(ld, dv[D_TIMEOUT], "recovery.drain.timeout",
				    10 * 1000, 24 * MS_HOUR,
				    "between 10s and 24h",
				    &c->recovery_drain_timeout_ms)) ||
	     (rc = km_yaml_duration(ld, dv[D_RETRY],
				    "recovery.drain.retryInterval", 1000,
				    5 * MS_MINUTE, "between 1s and 5m",
				    &c->recovery_drain_retry_ms))))
		return rc ? rc : KM_EINVAL;
	c->recovery_workers = (int)workers;
	c->recovery_max_attempts = (int)attempts;
	if (!km_yaml_is_null(v[R_BUDGET]) &&
	    (rc = parse_budget(ld, v[R_BUDGET], &c->recovery_budget)))
		return rc;
	if (!km_yaml_is_null(v[R_LEADER]) &&
	    (rc = parse_leader(ld, v[R_LEADER], c)))
		return rc;
	if (!km_yaml_is_null(v[R_POLICIES])) {
		c->policies = NULL;
		c->n_policies = 0;
		return parse_policies(ld, v[R_POLICIES], c);
	}
	return 0;
}

static int parse_config(struct km_yaml *ld, const yaml_node_t *root,
			bool check_files, struct km_config *c)
{
	yaml_node_t *v[K_N];
	const char *listen = NULL;
	int64_t threads = c->threads;
	int rc;

	if (km_yaml_map(ld, root, "", top_keys, K_N, v, 0))
		return KM_EINVAL;

	if ((rc = km_yaml_str(ld, v[K_LISTEN], "listen", &listen)))
		return rc;
	if (listen) {
		const char *why = listen_error(listen);
		struct km_yaml_shown b;

		if (why)
			return km_yaml_errorf(ld, v[K_LISTEN], "listen: %s: %s",
					      km_yaml_show(v[K_LISTEN], &b),
					      why);
		c->listen = listen;
	}
	if ((rc = km_yaml_int(ld, v[K_THREADS], "threads", 0, 1024,
			      &threads)) ||
	    (rc = km_yaml_int(ld, v[K_MAX_RECV], "maxReceiveMessageBytes", 1024,
			      1 << 30, &c->max_recv_message_bytes)) ||
	    (rc = km_yaml_duration(ld, v[K_GRACE], "shutdownGracePeriod", 0,
				   MS_HOUR, "at most 1h",
				   &c->shutdown_grace_ms)) ||
	    (rc = km_yaml_bool(ld, v[K_INSECURE], "insecure", &c->insecure)) ||
	    (v[K_TLS] && !km_yaml_is_null(v[K_TLS]) &&
	     (rc = parse_tls(ld, v[K_TLS], c))) ||
	    (v[K_AUTH] && !km_yaml_is_null(v[K_AUTH]) &&
	     (rc = parse_auth(ld, v[K_AUTH], c))) ||
	    (rc = parse_database(ld, v[K_DATABASE], c)) ||
	    (rc = parse_retention(ld, v[K_RETENTION], c)) ||
	    (rc = parse_log(ld, v[K_LOG], c)) ||
	    (v[K_FLAP] && !km_yaml_is_null(v[K_FLAP]) &&
	     (rc = parse_flap(ld, v[K_FLAP], c))) ||
	    (rc = parse_api(ld, v[K_API], c)) ||
	    (rc = parse_prober(ld, v[K_PROBER], c)) ||
	    (rc = parse_limits(ld, v[K_LIMITS], c)) ||
	    (rc = parse_kube(ld, v[K_KUBE], c)))
		return rc;
	if (!km_yaml_is_null(v[K_CLUSTERS]) &&
	    (rc = parse_clusters(ld, v[K_CLUSTERS], c)))
		return rc;
	if (!km_yaml_is_null(v[K_RECOVERY]) &&
	    (rc = parse_recovery(ld, v[K_RECOVERY], c)))
		return rc;
	/* Decoding a request takes at least as much memory as its bytes. */
	if (c->limits.max_request_memory_bytes < c->max_recv_message_bytes)
		return km_yaml_errorf(
			ld,
			!km_yaml_is_null(v[K_MAX_RECV]) ? v[K_MAX_RECV]
			: !km_yaml_is_null(v[K_LIMITS]) ? v[K_LIMITS]
							: root,
			"limits.maxRequestMemoryBytes (%lld) must be at "
			"least maxReceiveMessageBytes (%lld): decoding a "
			"request takes at least its size",
			(long long)c->limits.max_request_memory_bytes,
			(long long)c->max_recv_message_bytes);
	c->threads = (int)threads;
	if (v[K_PROBES] && !km_yaml_is_null(v[K_PROBES])) {
		c->probes = NULL;
		c->n_probes = 0;
		return parse_probe_list(ld, v[K_PROBES], check_files,
					&c->probes, &c->n_probes);
	}
	return 0;
}

/* ---- documents --------------------------------------------------------- */

static int load_string(struct km_config *c, const char *yaml, size_t len,
		       const char *name, bool check_files, struct km_error *err)
{
	struct km_config tmp = *c; /* committed only on success */
	struct km_yaml ld = reader(name, "<config>", &tmp.arena, err);
	yaml_node_t *root;
	int rc;

	rc = km_yaml_load(&ld, yaml, len, &root);
	if (!rc && root && !km_yaml_is_null(root))
		rc = parse_config(&ld, root, check_files, &tmp);
	km_yaml_unload(&ld);
	if (rc) {
		c->arena = tmp.arena; /* keeps what was allocated */
		return rc;
	}
	*c = tmp;
	return 0;
}

int km_config_load_string(struct km_config *c, const char *yaml, size_t len,
			  const char *name, struct km_error *err)
{
	return load_string(c, yaml, len, name, false, err);
}

int km_config_load(struct km_config *c, const char *path, struct km_error *err)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	const char *copy;
	int rc;

	f = fopen(path, "rb");
	if (!f)
		return km_error_set(err,
				    errno == ENOENT ? KM_ENOTFOUND : KM_EIO,
				    "%s: cannot open: %s", path,
				    strerror(errno));
	for (;;) {
		size_t got;

		if (len == cap) {
			char *nb;

			if (cap >= KM_CONFIG_MAX_FILE) {
				rc = km_error_set(err, KM_EINVAL,
						  "%s: larger than %u MiB; is "
						  "it the right file?",
						  path,
						  KM_CONFIG_MAX_FILE >> 20);
				goto fail;
			}
			cap = cap ? 2 * cap : 16384;
			nb = realloc(buf, cap);
			if (!nb) {
				rc = km_error_set(err, KM_ENOMEM,
						  "%s: out of memory", path);
				goto fail;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f)) {
				rc = km_error_set(err, KM_EIO,
						  "%s: cannot read: %s", path,
						  strerror(errno));
				goto fail;
			}
			break;
		}
	}
	fclose(f);
	f = NULL;

	rc = load_string(c, buf, len, path, true, err);
	if (rc)
		goto fail;
	copy = km_arena_strdup(&c->arena, path);
	if (!copy) {
		rc = km_error_set(err, KM_ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	c->path = copy;
	free(buf);
	return 0;

fail:
	if (f)
		fclose(f);
	free(buf);
	return rc;
}

/* True if the mapping has a key only a whole config file has. */
static bool looks_like_config(struct km_yaml *ld, const yaml_node_t *n)
{
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
	     pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = km_yaml_node(ld, pr->key);

		if (!k || k->type != YAML_SCALAR_NODE)
			continue;
		for (size_t i = 0; i < K_N; i++)
			if (!strcmp(km_yaml_scalar(k), top_keys[i]))
				return true;
	}
	return false;
}

int km_config_parse_probes(const char *yaml, size_t len, const char *name,
			   struct km_arena *a, struct km_probe **out, size_t *n,
			   struct km_error *err)
{
	struct km_yaml ld = reader(name, "<probes>", a, err);
	struct km_probe *probes = NULL;
	size_t count = 0;
	yaml_node_t *root;
	int rc;

	*out = NULL;
	*n = 0;
	rc = km_yaml_load(&ld, yaml, len, &root);
	if (rc || !root || km_yaml_is_null(root))
		goto out;
	if (root->type == YAML_SEQUENCE_NODE) {
		rc = parse_probe_list(&ld, root, false, &probes, &count);
	} else if (root->type == YAML_MAPPING_NODE &&
		   looks_like_config(&ld, root)) {
		struct km_config tmp;

		/* Every key is checked; only the probes are kept. The
		 * strings of the other keys go to a, a small waste. */
		km_config_defaults(&tmp); /* tmp.arena stays unused */
		rc = parse_config(&ld, root, false, &tmp);
		probes = tmp.probes;
		count = tmp.n_probes;
	} else if (root->type == YAML_MAPPING_NODE) {
		probes = km_arena_calloc(a, 1, sizeof *probes);
		if (!probes)
			rc = km_yaml_oom(&ld);
		else
			rc = parse_probe(&ld, root, "probe", false, probes);
		count = 1;
	} else {
		struct km_yaml_shown b;

		rc = km_yaml_errorf(&ld, root,
				    "expected a probe (a mapping), a list of "
				    "probes or a config file, got %s",
				    km_yaml_show(root, &b));
	}
	if (!rc) {
		*out = probes;
		*n = count;
	}
out:
	km_yaml_unload(&ld);
	return rc;
}

/* ---- the CLI's own file ------------------------------------------------- */

int km_config_parse_client(const char *yaml, size_t len, const char *name,
			   struct km_arena *a, struct km_client_config *out,
			   struct km_error *err)
{
	static const char *const keys[] = {"server",    "tlsCA",
					   "tlsCert",   "tlsKey",
					   "tokenFile", "tlsServerName"};
	struct km_yaml ld = reader(name, "<client config>", a, err);
	yaml_node_t *root, *v[6];
	int rc;

	memset(out, 0, sizeof *out);
	rc = km_yaml_load(&ld, yaml, len, &root);
	if (rc || !root || km_yaml_is_null(root))
		goto out;
	if (km_yaml_map(&ld, root, "", keys, 6, v, 0)) {
		rc = KM_EINVAL;
		goto out;
	}
	if ((rc = get_path(&ld, v[0], "server", &out->server)) ||
	    (rc = get_path(&ld, v[1], "tlsCA", &out->tls_ca_file)) ||
	    (rc = get_path(&ld, v[2], "tlsCert", &out->tls_cert_file)) ||
	    (rc = get_path(&ld, v[3], "tlsKey", &out->tls_key_file)) ||
	    (rc = get_path(&ld, v[4], "tokenFile", &out->token_file)) ||
	    (rc = get_path(&ld, v[5], "tlsServerName", &out->server_name)))
		goto out;
out:
	km_yaml_unload(&ld);
	return rc;
}
