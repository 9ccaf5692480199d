/*
 * The configuration file, read with libyaml's document API.
 *
 * libyaml turns the text into a node graph (yaml_document_t); this file
 * walks that graph along a fixed schema: every mapping is checked against
 * the list of keys it may hold (map_fields), and every value is converted
 * by a typed getter (get_str, get_int, get_bool, get_duration, get_port)
 * that knows the key's path for its message. The schema is what bounds the
 * walk: no level accepts "anything", so an alias that refers to itself
 * ("&a [*a]") is met as a value of the wrong type, never followed forever.
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
#include <yaml.h>

#include "km_log.h"
#include "km_probe.h"
#include "km_time.h"

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
	c->transitions_retention_ms = 400 * MS_DAY;
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
	c->audit_retention_ms = 400 * MS_DAY;
	c->limits = KM_LIMITS_DEFAULTS;
}

void km_config_free(struct km_config *c)
{
	km_arena_free(&c->arena);
	km_config_defaults(c);
}

/* ---- the loader: messages and typed getters ----------------------------- */

struct loader {
	const char *name;   /* the file name, for messages */
	struct km_arena *a; /* where everything kept is allocated */
	yaml_document_t doc;
	bool have_doc;
	/* The daemon's own file: what probes name must exist here (a
	 * caFile), see km_config.h. */
	bool check_files;
	struct km_error *err;
};

/* A scalar shown in a message: quoted, escaped, cut at 64 bytes. */
struct shown {
	char s[64 * 4 + 8];
};

static const char *show_bytes(const char *v, size_t n, struct shown *b)
{
	size_t o = 0;

	b->s[o++] = '"';
	for (size_t i = 0; i < n && i < 64; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '"' || c == '\\') {
			b->s[o++] = '\\';
			b->s[o++] = (char)c;
		} else if (c < ' ' || c == 0x7f) {
			o += (size_t)snprintf(b->s + o, 5, "\\x%02x", c);
		} else {
			b->s[o++] = (char)c;
		}
	}
	if (n > 64) {
		memcpy(b->s + o, "...", 3);
		o += 3;
	}
	b->s[o++] = '"';
	b->s[o] = '\0';
	return b->s;
}

static bool is_null(const yaml_node_t *n);

/* What a node is, for "expected X, got Y". */
static const char *show_node(const yaml_node_t *n, struct shown *b)
{
	switch (n->type) {
	case YAML_MAPPING_NODE: return "a mapping";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_SCALAR_NODE:
		if (is_null(n))
			return "null";
		return show_bytes((const char *)n->data.scalar.value,
				  n->data.scalar.length, b);
	default: return "nothing";
	}
}

static size_t line_of(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

/* "NAME:LINE:COL: <fmt>" at node n. */
__attribute__((format(printf, 3, 4))) static int
lerr(struct loader *ld, const yaml_node_t *n, const char *fmt, ...)
{
	char what[KM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return km_error_set(ld->err, KM_EINVAL, "%s:%zu:%zu: %s", ld->name,
			    line_of(n), n->start_mark.column + 1, what);
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

static int oom(struct loader *ld)
{
	return km_error_set(ld->err, KM_ENOMEM, "%s: out of memory", ld->name);
}

static yaml_node_t *node_at(struct loader *ld, int i)
{
	return yaml_document_get_node(&ld->doc, i);
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_plain(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE &&
	       n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* YAML's null: an empty, "~" or "null" plain scalar. Null means "not
 * given", as it does for Kubernetes. */
static bool is_null(const yaml_node_t *n)
{
	const char *v;

	if (!n)
		return true;
	if (!is_plain(n))
		return false;
	v = scalar(n);
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
	       !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top -
			n->data.sequence.items.start);
}

/* Any non-null scalar, as text. NUL bytes (from a "\0" escape) would cut
 * the string short without anyone noticing, so they are refused. */
static int get_str(struct loader *ld, const yaml_node_t *n, const char *path,
		   const char **out)
{
	struct shown b;

	if (is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE)
		return lerr(ld, n, "%s: expected a string, got %s", path,
			    show_node(n, &b));
	if (strlen(scalar(n)) != n->data.scalar.length)
		return lerr(ld, n, "%s: must not contain NUL characters", path);
	*out = km_arena_strndup(ld->a, scalar(n), n->data.scalar.length);
	return *out ? 0 : oom(ld);
}

/* A decimal integer, optionally signed: what JSON and Kubernetes call an
 * integer. false for anything else, including out of int64's range. */
static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (*s == '+')
		s++;
	if (!isdigit((unsigned char)*s) &&
	    !(*s == '-' && isdigit((unsigned char)s[1])))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static bool all_digits(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static int get_int(struct loader *ld, const yaml_node_t *n, const char *path,
		   int64_t min, int64_t max, int64_t *out)
{
	struct shown b;
	int64_t v;

	if (is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE)
		return lerr(ld, n, "%s: expected an integer, got %s", path,
			    show_node(n, &b));
	if (!is_plain(n))
		return lerr(ld, n,
			    "%s: expected an integer, got the string %s "
			    "(write numbers without quotes)",
			    path, show_node(n, &b));
	if (!parse_i64(scalar(n), &v)) {
		if (all_digits(scalar(n)))
			return lerr(ld, n,
				    "%s: %s is out of range (%lld to "
				    "%lld)",
				    path, show_node(n, &b), (long long)min,
				    (long long)max);
		return lerr(ld, n, "%s: expected an integer, got %s", path,
			    show_node(n, &b));
	}
	if (v < min || v > max)
		return lerr(ld, n,
			    "%s: must be between %lld and %lld, got %lld", path,
			    (long long)min, (long long)max, (long long)v);
	*out = v;
	return 0;
}

static int get_bool(struct loader *ld, const yaml_node_t *n, const char *path,
		    bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};
	struct shown b;

	if (is_null(n))
		return 0;
	if (is_plain(n)) {
		for (size_t i = 0; i < 3; i++) {
			if (!strcmp(scalar(n), yes[i])) {
				*out = true;
				return 0;
			}
			if (!strcmp(scalar(n), no[i])) {
				*out = false;
				return 0;
			}
		}
	}
	return lerr(ld, n, "%s: expected true or false, got %s", path,
		    show_node(n, &b));
}

static int get_duration(struct loader *ld, const yaml_node_t *n,
			const char *path, int64_t min_ms, int64_t max_ms,
			const char *range, int64_t *out)
{
	struct shown b;
	int64_t v;

	if (is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE ||
	    strlen(scalar(n)) != n->data.scalar.length)
		return lerr(ld, n, "%s: expected a duration, got %s", path,
			    show_node(n, &b));
	if (km_duration_parse(scalar(n), &v) != 0) {
		if (all_digits(scalar(n)))
			return lerr(ld, n,
				    "%s: the duration %s needs a unit "
				    "(ms, s, m, h or d), e.g. \"%ss\"",
				    path, show_node(n, &b),
				    n->data.scalar.length < 20 ? scalar(n)
							       : "10");
		return lerr(ld, n,
			    "%s: expected a duration such as \"250ms\", "
			    "\"10s\", \"5m\", \"12h\", \"30d\" or \"1h30m\", "
			    "got %s",
			    path, show_node(n, &b));
	}
	if (v < min_ms || v > max_ms)
		return lerr(ld, n, "%s: must be %s, got %s", path, range,
			    show_node(n, &b));
	*out = v;
	return 0;
}

/* One of a fixed set of words; *out is its index. */
static int get_enum(struct loader *ld, const yaml_node_t *n, const char *path,
		    const char *const *words, size_t nwords, int *out)
{
	char list[256];
	size_t o = 0;
	struct shown b;

	if (is_null(n))
		return 0;
	if (n->type == YAML_SCALAR_NODE)
		for (size_t i = 0; i < nwords; i++)
			if (!strcmp(scalar(n), words[i]) &&
			    strlen(words[i]) == n->data.scalar.length) {
				*out = (int)i;
				return 0;
			}
	list[0] = '\0';
	for (size_t i = 0; i < nwords && o < sizeof list; i++)
		o += (size_t)snprintf(list + o, sizeof list - o, "%s\"%s\"",
				      i ? ", " : "", words[i]);
	return lerr(ld, n, "%s: Unsupported value: %s: supported values: %s",
		    path, show_node(n, &b), list);
}

/* ---- mappings ---------------------------------------------------------- */

/* Keys written the Go or shell way ("period_seconds", "PeriodSeconds")
 * are the same key to a person; say which one was meant. */
static bool loose_eq(const char *a, const char *b)
{
	for (;;) {
		while (*a == '_' || *a == '-')
			a++;
		while (*b == '_' || *b == '-')
			b++;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
		if (!*a)
			return true;
		a++;
		b++;
	}
}

/* Fewer than three edits apart, ignoring case, '_' and '-': a typo
 * ("periodSecond", "synchronus"). Long keys are not compared. */
static bool near_miss(const char *a, const char *b)
{
	char x[65], y[65];
	size_t nx = 0, ny = 0, prev[65], cur[65];

	for (; *a; a++)
		if (*a != '_' && *a != '-') {
			if (nx == 64)
				return false;
			x[nx++] = (char)tolower((unsigned char)*a);
		}
	for (; *b; b++)
		if (*b != '_' && *b != '-') {
			if (ny == 64)
				return false;
			y[ny++] = (char)tolower((unsigned char)*b);
		}
	if (nx < 4 || ny < 4)
		return false; /* "log" and "foo" are not typos of each other */
	for (size_t j = 0; j <= ny; j++)
		prev[j] = j;
	for (size_t i = 1; i <= nx; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= ny; j++) {
			size_t sub = prev[j - 1] + (x[i - 1] != y[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins)
					   : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (ny + 1) * sizeof *cur);
	}
	return prev[ny] < 3;
}

static const struct {
	const char *key, *hint;
} key_hints[] = {
	{"terminationGracePeriodSeconds",
	 "; it does not apply: kubemedic probes have no container to stop"},
	{"valueFrom", "; kubemedic probes run outside pods, so give the value"},
	{"<<", "; YAML merge keys are not supported"},
};

#define MAP_MAX_KEYS 16

/* Checks that the mapping n holds only keys from known[], each at most
 * once, and fills vals[i] with the value of known[i] (NULL when absent).
 * A null n (the key was given no value) is an empty mapping. where is the
 * mapping's path for messages, "" at the top level. */
static int map_fields(struct loader *ld, const yaml_node_t *n,
		      const char *where, const char *const *known,
		      size_t nknown, yaml_node_t **vals)
{
	const yaml_node_t *key_of[MAP_MAX_KEYS];
	char in[sizeof "in " + 192]; /* callers build where in char [192] */
	struct shown b;

	assert(nknown <= MAP_MAX_KEYS);
	for (size_t i = 0; i < nknown; i++)
		vals[i] = NULL;
	if (is_null(n))
		return 0;
	if (*where)
		snprintf(in, sizeof in, "in %s", where);
	else
		snprintf(in, sizeof in, "at the top level");
	if (n->type != YAML_MAPPING_NODE)
		return lerr(ld, n, "%s: expected a mapping, got %s",
			    *where ? where : "the document", show_node(n, &b));

	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
	     pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node_at(ld, pr->key),
			    *v = node_at(ld, pr->value);
		const char *key;
		size_t i;

		if (!k || !v)
			return km_error_set(ld->err, KM_EINTERNAL,
					    "%s: libyaml left a pair without "
					    "nodes",
					    ld->name);
		if (k->type != YAML_SCALAR_NODE)
			return lerr(ld, k,
				    "expected a key (a string) %s, got %s", in,
				    show_node(k, &b));
		key = scalar(k);
		for (i = 0; i < nknown; i++)
			if (!strcmp(key, known[i]) &&
			    strlen(known[i]) == k->data.scalar.length)
				break;
		if (i == nknown) {
			char list[320], hint[128] = "";
			size_t o = 0;

			list[0] = '\0';
			for (size_t j = 0; j < nknown && o < sizeof list; j++) {
				o += (size_t)snprintf(list + o, sizeof list - o,
						      "%s%s", j ? ", " : "",
						      known[j]);
				if (!*hint && loose_eq(key, known[j]))
					snprintf(hint, sizeof hint,
						 "; did you mean \"%s\"?",
						 known[j]);
			}
			for (size_t j = 0; !*hint && j < nknown; j++)
				if (near_miss(key, known[j]))
					snprintf(hint, sizeof hint,
						 "; did you mean \"%s\"?",
						 known[j]);
			for (size_t j = 0;
			     !*hint &&
			     j < sizeof key_hints / sizeof key_hints[0];
			     j++)
				if (!strcmp(key, key_hints[j].key))
					snprintf(hint, sizeof hint, "%s",
						 key_hints[j].hint);
			return lerr(ld, k, "unknown key %s %s (known: %s)%s",
				    show_node(k, &b), in, list, hint);
		}
		if (vals[i])
			return lerr(ld, k,
				    "duplicate key %s %s (first given "
				    "at line %zu)",
				    show_node(k, &b), in, line_of(key_of[i]));
		vals[i] = v;
		key_of[i] = k;
	}
	return 0;
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
static int get_port(struct loader *ld, const yaml_node_t *n, const char *path,
		    int *out)
{
	struct shown b;
	const char *text;
	int64_t v;

	if (is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE)
		return lerr(ld, n, "%s: expected a port number, got %s", path,
			    show_node(n, &b));
	text = scalar(n);
	if (!is_plain(n) && all_digits(text))
		return lerr(ld, n,
			    "%s: expected a port number, got the string "
			    "%s (write it without quotes)",
			    path, show_node(n, &b));
	if (is_port_name(text))
		return lerr(ld, n,
			    "%s: the named port %s needs a pod to look "
			    "it up in; kubemedic probes reach a host directly, "
			    "so give the port number",
			    path, show_node(n, &b));
	if (!is_plain(n) || !all_digits(text))
		return lerr(ld, n, "%s: expected a port number, got %s", path,
			    show_node(n, &b));
	if (!parse_i64(text, &v) || v < 1 || v > 65535)
		return lerr(ld, n,
			    "%s: Invalid value: %s: must be between 1 "
			    "and 65535, inclusive",
			    path, show_node(n, &b));
	*out = (int)v;
	return 0;
}

/* A list of {name, value} (httpHeaders, env). */
static int get_name_values(struct loader *ld, const yaml_node_t *n,
			   const char *path, struct km_kv **out, size_t *nout)
{
	static const char *const keys[] = {"name", "value"};
	struct shown b;
	size_t len;

	if (is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return lerr(ld, n,
			    "%s: expected a list of {name, value}, got %s",
			    path, show_node(n, &b));
	len = seq_len(n);
	*out = km_arena_calloc(ld->a, len ? len : 1, sizeof **out);
	if (!*out)
		return oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item =
			node_at(ld, n->data.sequence.items.start[i]);
		yaml_node_t *v[2];
		char ipath[192], fpath[208];
		struct km_kv *kv = &(*out)[i];
		int rc;

		pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (!item || item->type != YAML_MAPPING_NODE)
			return lerr(ld, item ? item : n,
				    "%s: expected a mapping {name, value}, "
				    "got %s",
				    ipath,
				    item ? show_node(item, &b) : "nothing");
		if (map_fields(ld, item, ipath, keys, 2, v))
			return KM_EINVAL;
		pathf(fpath, sizeof fpath, "%s.name", ipath);
		if (is_null(v[0]))
			return lerr(ld, item, "%s: Required value", fpath);
		kv->value = "";
		rc = get_str(ld, v[0], fpath, &kv->key);
		if (rc)
			return rc;
		pathf(fpath, sizeof fpath, "%s.value", ipath);
		rc = get_str(ld, v[1], fpath, &kv->value);
		if (rc)
			return rc;
	}
	*nout = len;
	return 0;
}

static int get_command(struct loader *ld, const yaml_node_t *n,
		       const char *path, struct km_probe *p)
{
	struct shown b;
	size_t len;

	if (is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return lerr(ld, n,
			    "%s: expected a list (the program, then its "
			    "arguments: [\"/bin/check\", \"--fast\"]), got %s",
			    path, show_node(n, &b));
	len = seq_len(n);
	p->argv = km_arena_calloc(ld->a, len + 1, sizeof *p->argv);
	if (!p->argv)
		return oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item =
			node_at(ld, n->data.sequence.items.start[i]);
		char ipath[192];
		int rc;

		pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (!item || is_null(item))
			return lerr(ld, item ? item : n,
				    "%s: expected a string, "
				    "got null (quote it: \"\")",
				    ipath);
		rc = get_str(ld, item, ipath, &p->argv[i]);
		if (rc)
			return rc;
	}
	p->argc = len;
	return 0;
}

static int get_labels(struct loader *ld, const yaml_node_t *n, const char *path,
		      struct km_probe *p)
{
	struct shown b;
	size_t len;

	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return lerr(ld, n,
			    "%s: expected a mapping of label keys to "
			    "values, got %s",
			    path, show_node(n, &b));
	len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	p->labels = km_arena_calloc(ld->a, len ? len : 1, sizeof *p->labels);
	if (!p->labels)
		return oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_pair_t *pr = &n->data.mapping.pairs.start[i];
		yaml_node_t *k = node_at(ld, pr->key),
			    *v = node_at(ld, pr->value);
		struct km_kv *kv = &p->labels[i];
		char kpath[192];
		int rc;

		if (!k || !v)
			return km_error_set(ld->err, KM_EINTERNAL,
					    "%s: libyaml left a pair without "
					    "nodes",
					    ld->name);
		if (k->type != YAML_SCALAR_NODE || is_null(k))
			return lerr(ld, k, "%s: expected a label key, got %s",
				    path, show_node(k, &b));
		rc = get_str(ld, k, path, &kv->key);
		if (rc)
			return rc;
		pathf(kpath, sizeof kpath, "%s.%s", path, kv->key);
		kv->value = "";
		rc = get_str(ld, v, kpath, &kv->value);
		if (rc)
			return rc;
		/* More than the limit is refused by km_probe_validate; below
		 * it, the quadratic search is cheap. */
		for (size_t j = 0; j < i && len <= KM_PROBE_MAX_LABELS; j++)
			if (!strcmp(p->labels[j].key, kv->key))
				return lerr(ld, k, "%s: duplicate label key %s",
					    path, show_node(k, &b));
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
static int parse_handler(struct loader *ld, const struct handler *h,
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
	if (map_fields(ld, n, path, keys, h->n, v))
		return KM_EINVAL;
	for (size_t i = 0; i < h->n; i++)
		pathf(f[i], sizeof f[i], "%s.%s", path, keys[i]);
	p->type = h->type;
	for (size_t i = 0; i < h->n && !rc; i++) {
		const struct handler_field *hf = &h->f[i];
		char *field = (char *)p + hf->off;

		switch (hf->kind) {
		case F_STR:
			rc = get_str(ld, v[i], f[i], (const char **)field);
			break;
		case F_PORT: rc = get_port(ld, v[i], f[i], (int *)field); break;
		case F_BOOL:
			rc = get_bool(ld, v[i], f[i], (bool *)field);
			break;
		case F_I64:
			rc = get_int(ld, v[i], f[i], INT64_MIN, INT64_MAX,
				     (int64_t *)field);
			break;
		case F_KVS:
			rc = get_name_values(
				ld, v[i], f[i], (struct km_kv **)field,
				(size_t *)((char *)p + hf->count_off));
			break;
		case F_COMMAND: rc = get_command(ld, v[i], f[i], p); break;
		case F_SCHEME:
			rc = get_str(ld, v[i], f[i], &scheme);
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
				line_of(v[scheme_at]),
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
static int parse_probe(struct loader *ld, const yaml_node_t *n,
		       const char *prefix, struct km_probe *p)
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
	struct shown b;
	int n_handlers = 0, h = -1, rc;

	memset(p, 0, sizeof *p);
	p->source = KM_SOURCE_CONFIG;
	if (n->type != YAML_MAPPING_NODE)
		return lerr(ld, n, "%s: expected a probe (a mapping), got %s",
			    prefix, show_node(n, &b));
	if (map_fields(ld, n, prefix, probe_keys, P_N, v))
		return KM_EINVAL;

	pathf(path, sizeof path, "%s.name", prefix);
	if ((rc = get_str(ld, v[P_NAME], path, &p->name)))
		return rc;
	pathf(path, sizeof path, "%s.labels", prefix);
	if ((rc = get_labels(ld, v[P_LABELS], path, p)))
		return rc;
	for (int i = 0; i < P_N - P_INITIAL; i++) {
		pathf(path, sizeof path, "%s.%s", prefix,
		      probe_keys[P_INITIAL + i]);
		if ((rc = get_int(ld, v[P_INITIAL + i], path, INT32_MIN,
				  INT32_MAX, tf[i])))
			return rc;
	}

	for (int i = 0; i < (int)H_N; i++)
		if (!is_null(v[P_HTTP + i])) {
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
	if (ld->check_files) {
		rc = km_probe_check_ca_file(p, &fc, ld->err);
		if (rc == KM_ENOMEM)
			return rc;
		if (rc)
			goto prefixed;
	}
	return 0;

prefixed:
	km_error_prefix(ld->err, "%s:%zu", ld->name, line_of(n));
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
static int check_unique_names(struct loader *ld, const yaml_node_t *list,
			      const struct km_probe *probes, size_t n)
{
	struct name_at *v;
	size_t best = SIZE_MAX, first = 0;

	if (n < 2)
		return 0;
	v = malloc(n * sizeof *v);
	if (!v)
		return oom(ld);
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
		yaml_node_t *a =
			node_at(ld, list->data.sequence.items.start[first]);
		yaml_node_t *b =
			node_at(ld, list->data.sequence.items.start[best]);

		return km_error_set(ld->err, KM_EINVAL,
				    "%s:%zu: probes[%zu].name: duplicate name "
				    "\"%s\": probes[%zu] at line %zu has it "
				    "already",
				    ld->name, line_of(b), best,
				    probes[best].name, first, line_of(a));
	}
}

/* A list of probes, with "probes" as the path for messages. */
static int parse_probe_list(struct loader *ld, const yaml_node_t *n,
			    struct km_probe **out, size_t *nout)
{
	struct km_probe *probes;
	struct shown b;
	size_t len;
	int rc;

	if (is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return lerr(ld, n,
			    "probes: expected a list of probes (\"- name: "
			    "...\"), got %s",
			    show_node(n, &b));
	len = seq_len(n);
	probes = km_arena_calloc(ld->a, len ? len : 1, sizeof *probes);
	if (!probes)
		return oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item =
			node_at(ld, n->data.sequence.items.start[i]);
		char prefix[32];

		pathf(prefix, sizeof prefix, "probes[%zu]", i);
		if (!item)
			return lerr(ld, n, "%s: missing", prefix);
		rc = parse_probe(ld, item, prefix, &probes[i]);
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
	if (!all_digits(colon + 1) || colon[1] == '-' || colon[1] == '+' ||
	    !parse_i64(colon + 1, &port) || port < 1 || port > 65535)
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
};

static int parse_database(struct loader *ld, const yaml_node_t *n,
			  struct km_config *c)
{
	static const char *const keys[] = {"path", "synchronous", "resultQueue",
					   "commitDelay"};
	static const char *const sync[] = {"full", "normal"};
	yaml_node_t *v[4];
	const char *path = NULL;
	int mode = -1;
	int rc;

	if (map_fields(ld, n, "database", keys, 4, v))
		return KM_EINVAL;
	if ((rc = get_str(ld, v[0], "database.path", &path)))
		return rc;
	if (path) {
		if (!*path)
			return lerr(ld, v[0],
				    "database.path: must not be empty");
		c->db_path = path;
	}
	if ((rc = get_enum(ld, v[1], "database.synchronous", sync, 2, &mode)) ||
	    (rc = get_int(ld, v[2], "database.resultQueue", 1, 1 << 24,
			  &c->result_queue)) ||
	    (rc = get_duration(ld, v[3], "database.commitDelay", 0, 10000,
			       "at most 10s", &c->db_commit_delay_ms)))
		return rc;
	if (mode >= 0)
		c->db_sync_normal = mode == 1;
	return 0;
}

static int parse_retention(struct loader *ld, const yaml_node_t *n,
			   struct km_config *c)
{
	static const char *const keys[] = {"results", "transitions", "interval",
					   "audit"};
	const int64_t max = 36500 * MS_DAY;
	yaml_node_t *v[4];
	int rc;

	if (map_fields(ld, n, "retention", keys, 4, v))
		return KM_EINVAL;
	if ((rc = get_duration(ld, v[3], "retention.audit", 0, max,
			       "at most 36500d (0 keeps the audit trail "
			       "forever)",
			       &c->audit_retention_ms)))
		return rc;
	if ((rc = get_duration(ld, v[0], "retention.results", 0, max,
			       "at most 36500d (0 keeps results forever)",
			       &c->results_retention_ms)) ||
	    (rc = get_duration(ld, v[1], "retention.transitions", 0, max,
			       "at most 36500d (0 keeps transitions forever)",
			       &c->transitions_retention_ms)) ||
	    (rc = get_duration(ld, v[2], "retention.interval", 1000, MS_DAY,
			       "between 1s and 1d", &c->retention_interval_ms)))
		return rc;
	return 0;
}

/* Nagios-style flap detection thresholds, in percent of state changes. */
static int parse_flap(struct loader *ld, const yaml_node_t *n,
		      struct km_config *c)
{
	static const char *const keys[] = {"lowThreshold", "highThreshold"};
	yaml_node_t *v[2];
	int64_t low = (int64_t)c->flap_low, high = (int64_t)c->flap_high;
	int rc;

	if (map_fields(ld, n, "flapDetection", keys, 2, v))
		return KM_EINVAL;
	if ((rc = get_int(ld, v[0], "flapDetection.lowThreshold", 0, 100,
			  &low)) ||
	    (rc = get_int(ld, v[1], "flapDetection.highThreshold", 1, 100,
			  &high)))
		return rc;
	if (low >= high)
		return lerr(ld, n,
			    "flapDetection: lowThreshold (%lld) must be "
			    "below highThreshold (%lld), or the flag could "
			    "never settle",
			    (long long)low, (long long)high);
	c->flap_low = (double)low;
	c->flap_high = (double)high;
	return 0;
}

static int parse_log(struct loader *ld, const yaml_node_t *n,
		     struct km_config *c)
{
	static const char *const keys[] = {"level", "format", "statsInterval"};
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	static const char *const formats[] = {"logfmt", "json"};
	yaml_node_t *v[3];
	int level = -1, json = -1;
	int64_t stats = c->stats_interval_ms;
	int rc;

	if (map_fields(ld, n, "log", keys, 3, v))
		return KM_EINVAL;
	if ((rc = get_enum(ld, v[0], "log.level", levels, 4, &level)) ||
	    (rc = get_enum(ld, v[1], "log.format", formats, 2, &json)) ||
	    (rc = get_duration(ld, v[2], "log.statsInterval", 0, MS_DAY,
			       "0 (off) or between 1s and 1d", &stats)))
		return rc;
	if (stats > 0 && stats < 1000) {
		struct shown b;

		return lerr(ld, v[2],
			    "log.statsInterval: must be 0 (off) or "
			    "between 1s and 1d, got %s",
			    show_node(v[2], &b));
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
static int get_str_list(struct loader *ld, const yaml_node_t *n,
			const char *path, const char ***out, size_t *count)
{
	struct shown b;
	size_t len;

	*out = NULL;
	*count = 0;
	if (is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return lerr(ld, n, "%s: expected a list of strings, got %s",
			    path, show_node(n, &b));
	len = seq_len(n);
	*out = km_arena_calloc(ld->a, len + 1, sizeof **out);
	if (!*out)
		return oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item =
			node_at(ld, n->data.sequence.items.start[i]);
		char ipath[192];
		int rc;

		pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (!item || is_null(item) || item->type != YAML_SCALAR_NODE ||
		    !item->data.scalar.length)
			return lerr(ld, item ? item : n,
				    "%s: expected a non-empty string", ipath);
		rc = get_str(ld, item, ipath, &(*out)[i]);
		if (rc)
			return rc;
	}
	*count = len;
	return 0;
}

/* A path that must name a file (checked when it is opened: here only that
 * it is given and not empty). */
static int get_path(struct loader *ld, const yaml_node_t *n, const char *path,
		    const char **out)
{
	int rc = get_str(ld, n, path, out);

	if (!rc && *out && !**out)
		return lerr(ld, n, "%s: must not be empty", path);
	return rc;
}

static int parse_tls(struct loader *ld, const yaml_node_t *n,
		     struct km_config *c)
{
	static const char *const keys[] = {
		"certFile", "keyFile", "clientCAFile", "clientCertificates"};
	static const char *const modes[] = {"optional", "require"};
	yaml_node_t *v[4];
	int mode = -1, rc;

	if (map_fields(ld, n, "tls", keys, 4, v))
		return KM_EINVAL;
	if ((rc = get_path(ld, v[0], "tls.certFile", &c->tls_cert_file)) ||
	    (rc = get_path(ld, v[1], "tls.keyFile", &c->tls_key_file)) ||
	    (rc = get_path(ld, v[2], "tls.clientCAFile",
			   &c->tls_client_ca_file)) ||
	    (rc = get_enum(ld, v[3], "tls.clientCertificates", modes, 2,
			   &mode)))
		return rc;
	if (!c->tls_cert_file != !c->tls_key_file)
		return lerr(ld, n,
			    "tls: certFile and keyFile go together (the "
			    "server's certificate chain and its key)");
	if (!c->tls_cert_file && (c->tls_client_ca_file || mode >= 0))
		return lerr(ld, n,
			    "tls: clientCAFile and clientCertificates need "
			    "certFile and keyFile");
	if (mode >= 0 && !c->tls_client_ca_file)
		return lerr(ld, v[3],
			    "tls.clientCertificates: needs clientCAFile (the "
			    "CA that signs client certificates)");
	c->tls_require_client_cert = mode == 1;
	return 0;
}

static int get_role(struct loader *ld, const yaml_node_t *n, const char *path,
		    int lowest, int *out)
{
	static const char *const roles[] = {"none", "viewer", "operator",
					    "admin"};
	int r = -1, rc;

	rc = get_enum(ld, n, path, roles + lowest, 4 - (size_t)lowest, &r);
	if (!rc && r >= 0)
		*out = r + lowest;
	return rc;
}

static int parse_binding(struct loader *ld, const yaml_node_t *n,
			 const char *path, struct km_auth_binding *b)
{
	static const char *const keys[] = {"role", "users", "groups"};
	yaml_node_t *v[3];
	char p[160];
	int rc;

	if (map_fields(ld, n, path, keys, 3, v))
		return KM_EINVAL;
	b->role = -1;
	pathf(p, sizeof p, "%s.role", path);
	if (!v[0] || is_null(v[0]))
		return lerr(ld, n,
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
		return lerr(ld, n, "%s: give users or groups (or both)", path);
	return 0;
}

static int parse_auth(struct loader *ld, const yaml_node_t *n,
		      struct km_config *c)
{
	static const char *const keys[] = {"tokenFile", "localUser",
					   "localRole", "healthRole",
					   "bindings"};
	yaml_node_t *v[5];
	struct shown b;
	int rc, health = -1;

	if (map_fields(ld, n, "auth", keys, 5, v))
		return KM_EINVAL;
	if ((rc = get_path(ld, v[0], "auth.tokenFile", &c->auth_token_file)) ||
	    (rc = get_str(ld, v[1], "auth.localUser", &c->auth_local_user)) ||
	    (rc = get_role(ld, v[2], "auth.localRole", KM_ROLE_NONE,
			   &c->auth_local_role)))
		return rc;
	if (v[3] && !is_null(v[3])) {
		rc = get_role(ld, v[3], "auth.healthRole", KM_ROLE_NONE,
			      &health);
		if (rc)
			return rc;
		if (health > KM_ROLE_VIEWER)
			return lerr(ld, v[3],
				    "auth.healthRole: none (anyone) or viewer, "
				    "got %s",
				    show_node(v[3], &b));
		c->auth_health_role = health;
	}
	/* "" turns the local identity off. */
	if (c->auth_local_user && !*c->auth_local_user)
		c->auth_local_user = NULL;
	if (v[4] && !is_null(v[4])) {
		size_t len;

		if (v[4]->type != YAML_SEQUENCE_NODE)
			return lerr(ld, v[4],
				    "auth.bindings: expected a list of "
				    "{role, users, groups}, got %s",
				    show_node(v[4], &b));
		len = seq_len(v[4]);
		c->auth_bindings = km_arena_calloc(ld->a, len ? len : 1,
						   sizeof *c->auth_bindings);
		if (!c->auth_bindings)
			return oom(ld);
		for (size_t i = 0; i < len; i++) {
			yaml_node_t *item =
				node_at(ld, v[4]->data.sequence.items.start[i]);
			char p[64];

			pathf(p, sizeof p, "auth.bindings[%zu]", i);
			if (!item)
				return lerr(ld, v[4], "%s: missing", p);
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
static int parse_limits(struct loader *ld, const yaml_node_t *n,
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

	if (map_fields(ld, n, "limits", keys, L_N, v))
		return KM_EINVAL;
	if ((rc = get_duration(ld, v[L_DEFAULT_DEADLINE],
			       "limits.defaultDeadline", 100, MS_HOUR,
			       "between 100ms and 1h",
			       &l->default_deadline_ms)) ||
	    (rc = get_duration(ld, v[L_MAX_DEADLINE], "limits.maxDeadline", 100,
			       MS_HOUR, "between 100ms and 1h",
			       &l->max_deadline_ms)) ||
	    (rc = get_int(ld, v[L_SELECTOR_BYTES], "limits.maxSelectorBytes",
			  64, 16 << 20, &l->max_selector_bytes)) ||
	    (rc = get_int(ld, v[L_SELECTOR_REQS],
			  "limits.maxSelectorRequirements", 1, 1000000,
			  &l->max_selector_requirements)) ||
	    (rc = get_int(ld, v[L_WATCH_TARGETS], "limits.maxWatchTargets", 1,
			  100000, &l->max_watch_targets)) ||
	    (rc = get_int(ld, v[L_PROBES], "limits.maxProbes", 1, 10000000,
			  &l->max_probes)) ||
	    (rc = get_int(ld, v[L_PROBES_IDENTITY],
			  "limits.maxProbesPerIdentity", 1, 10000000,
			  &l->max_probes_per_identity)) ||
	    (rc = get_int(ld, v[L_STREAMS], "limits.maxStreams", 1, 1000000,
			  &l->max_streams)) ||
	    (rc = get_int(ld, v[L_STREAMS_PEER], "limits.maxStreamsPerPeer", 1,
			  1000000, &l->max_streams_per_peer)) ||
	    (rc = get_int(ld, v[L_CALLS_CONN], "limits.maxCallsPerConnection",
			  1, INT32_MAX, &l->max_calls_per_connection)) ||
	    (rc = get_int(ld, v[L_REQUEST_MEMORY],
			  "limits.maxRequestMemoryBytes", 65536, 1 << 30,
			  &l->max_request_memory_bytes)))
		return rc;
	if (l->default_deadline_ms > l->max_deadline_ms)
		return lerr(ld,
			    v[L_DEFAULT_DEADLINE] ? v[L_DEFAULT_DEADLINE] : n,
			    "limits.defaultDeadline (%lldms) must not be "
			    "longer than limits.maxDeadline (%lldms)",
			    (long long)l->default_deadline_ms,
			    (long long)l->max_deadline_ms);
	return 0;
}

/* A list of strings (not null, no NUL) at path, bounded; *n items into *out, in
 * the arena. At most max items. */
static int get_bounded_str_list(struct loader *ld, const yaml_node_t *n,
				const char *path, size_t max, const char ***out,
				size_t *nout)
{
	struct shown b;
	size_t len;
	const char **v;

	if (n->type != YAML_SEQUENCE_NODE)
		return lerr(ld, n, "%s: expected a list, got %s", path,
			    show_node(n, &b));
	len = seq_len(n);
	if (len > max)
		return lerr(ld, n, "%s: %zu items, at most %zu allowed", path,
			    len, max);
	v = km_arena_calloc(ld->a, len ? len : 1, sizeof *v);
	if (!v)
		return oom(ld);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item =
			node_at(ld, n->data.sequence.items.start[i]);
		char ipath[192];
		int rc;

		pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (!item || is_null(item))
			return lerr(ld, item ? item : n,
				    "%s: expected a string, got null", ipath);
		rc = get_str(ld, item, ipath, &v[i]);
		if (rc)
			return rc;
	}
	*out = v;
	*nout = len;
	return 0;
}

/* A list of networks ("10.0.0.0/8") at path. */
static int get_networks(struct loader *ld, const yaml_node_t *n,
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
		return oom(ld);
	for (size_t i = 0; i < len; i++) {
		const char *why = km_cidr_parse(v[i], &nets[i]);
		yaml_node_t *item =
			node_at(ld, n->data.sequence.items.start[i]);
		struct shown b;

		if (why)
			return lerr(ld, item, "%s[%zu]: %s: %s", path, i,
				    show_node(item, &b), why);
	}
	*out = nets;
	*nout = len;
	return 0;
}

/* api: what probes created through the API may touch (km_probe.h). */
static int parse_api(struct loader *ld, const yaml_node_t *n,
		     struct km_config *c)
{
	static const char *const keys[] = {"allowExec", "allowFile",
					   "filePathPrefixes", "probeNetworks"};
	static const char *const net_keys[] = {"allow", "deny"};
	struct km_probe_policy *pol = &c->api_policy;
	yaml_node_t *v[4], *nv[2];
	int rc;

	if (map_fields(ld, n, "api", keys, 4, v))
		return KM_EINVAL;
	if ((rc = get_bool(ld, v[0], "api.allowExec", &pol->allow_exec)) ||
	    (rc = get_bool(ld, v[1], "api.allowFile", &pol->allow_file)))
		return rc;
	if (!is_null(v[2])) {
		const char **prefixes;
		size_t np;

		rc = get_bounded_str_list(ld, v[2], "api.filePathPrefixes",
					  KM_POLICY_MAX_PREFIXES, &prefixes,
					  &np);
		if (rc)
			return rc;
		for (size_t i = 0; i < np; i++) {
			yaml_node_t *item =
				node_at(ld, v[2]->data.sequence.items.start[i]);
			char norm[4096];
			struct shown b;

			if (prefixes[i][0] != '/')
				return lerr(ld, item,
					    "api.filePathPrefixes[%zu]: %s: "
					    "must be an absolute path",
					    i, show_node(item, &b));
			if (!km_path_normalize(prefixes[i], norm, sizeof norm))
				return lerr(ld, item,
					    "api.filePathPrefixes[%zu]: %s: "
					    "\"..\" climbs above \"/\"",
					    i, show_node(item, &b));
			prefixes[i] = km_arena_strdup(ld->a, norm);
			if (!prefixes[i])
				return oom(ld);
		}
		pol->file_prefixes = prefixes;
		pol->n_file_prefixes = np;
	}
	if (map_fields(ld, v[3], "api.probeNetworks", net_keys, 2, nv))
		return KM_EINVAL;
	/* A list given replaces the default list, whole. */
	if (!is_null(nv[0]) &&
	    (rc = get_networks(ld, nv[0], "api.probeNetworks.allow",
			       &pol->allow, &pol->n_allow)))
		return rc;
	if (!is_null(nv[1]) &&
	    (rc = get_networks(ld, nv[1], "api.probeNetworks.deny", &pol->deny,
			       &pol->n_deny)))
		return rc;
	return 0;
}

static int parse_prober(struct loader *ld, const yaml_node_t *n,
			struct km_config *c)
{
	static const char *const keys[] = {"watchdog", "maxExecChildren"};
	yaml_node_t *v[2];
	int64_t watchdog = c->watchdog_ms;
	int rc;

	if (map_fields(ld, n, "prober", keys, 2, v))
		return KM_EINVAL;
	if ((rc = get_duration(ld, v[0], "prober.watchdog", 0, MS_HOUR,
			       "0 (off) or between 1s and 1h", &watchdog)) ||
	    (rc = get_int(ld, v[1], "prober.maxExecChildren", 1, 4096,
			  &c->max_exec_children)))
		return rc;
	if (watchdog > 0 && watchdog < 1000) {
		struct shown b;

		return lerr(ld, v[0],
			    "prober.watchdog: must be 0 (off) or between 1s "
			    "and 1h, got %s",
			    show_node(v[0], &b));
	}
	c->watchdog_ms = watchdog;
	return 0;
}

static int parse_config(struct loader *ld, const yaml_node_t *root,
			struct km_config *c)
{
	yaml_node_t *v[K_N];
	const char *listen = NULL;
	int64_t threads = c->threads;
	int rc;

	if (map_fields(ld, root, "", top_keys, K_N, v))
		return KM_EINVAL;

	if ((rc = get_str(ld, v[K_LISTEN], "listen", &listen)))
		return rc;
	if (listen) {
		const char *why = listen_error(listen);
		struct shown b;

		if (why)
			return lerr(ld, v[K_LISTEN], "listen: %s: %s",
				    show_node(v[K_LISTEN], &b), why);
		c->listen = listen;
	}
	if ((rc = get_int(ld, v[K_THREADS], "threads", 0, 1024, &threads)) ||
	    (rc = get_int(ld, v[K_MAX_RECV], "maxReceiveMessageBytes", 1024,
			  1 << 30, &c->max_recv_message_bytes)) ||
	    (rc = get_duration(ld, v[K_GRACE], "shutdownGracePeriod", 0,
			       MS_HOUR, "at most 1h", &c->shutdown_grace_ms)) ||
	    (rc = get_bool(ld, v[K_INSECURE], "insecure", &c->insecure)) ||
	    (v[K_TLS] && !is_null(v[K_TLS]) &&
	     (rc = parse_tls(ld, v[K_TLS], c))) ||
	    (v[K_AUTH] && !is_null(v[K_AUTH]) &&
	     (rc = parse_auth(ld, v[K_AUTH], c))) ||
	    (rc = parse_database(ld, v[K_DATABASE], c)) ||
	    (rc = parse_retention(ld, v[K_RETENTION], c)) ||
	    (rc = parse_log(ld, v[K_LOG], c)) ||
	    (v[K_FLAP] && !is_null(v[K_FLAP]) &&
	     (rc = parse_flap(ld, v[K_FLAP], c))) ||
	    (rc = parse_api(ld, v[K_API], c)) ||
	    (rc = parse_prober(ld, v[K_PROBER], c)) ||
	    (rc = parse_limits(ld, v[K_LIMITS], c)))
		return rc;
	/* Decoding a request takes at least as much memory as its bytes. */
	if (c->limits.max_request_memory_bytes < c->max_recv_message_bytes)
		return lerr(ld,
			    !is_null(v[K_MAX_RECV]) ? v[K_MAX_RECV]
			    : !is_null(v[K_LIMITS]) ? v[K_LIMITS]
						    : root,
			    "limits.maxRequestMemoryBytes (%lld) must be at "
			    "least maxReceiveMessageBytes (%lld): decoding a "
			    "request takes at least its size",
			    (long long)c->limits.max_request_memory_bytes,
			    (long long)c->max_recv_message_bytes);
	c->threads = (int)threads;
	if (v[K_PROBES] && !is_null(v[K_PROBES])) {
		c->probes = NULL;
		c->n_probes = 0;
		return parse_probe_list(ld, v[K_PROBES], &c->probes,
					&c->n_probes);
	}
	return 0;
}

/* ---- documents --------------------------------------------------------- */

static int yaml_error(struct loader *ld, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "unknown problem";

	switch (p->error) {
	case YAML_MEMORY_ERROR: return oom(ld);
	case YAML_READER_ERROR:
		if (p->problem_value != -1)
			return km_error_set(ld->err, KM_EINVAL,
					    "%s: invalid YAML at byte %zu: %s "
					    "(#%X)",
					    ld->name, p->problem_offset,
					    problem,
					    (unsigned)p->problem_value);
		return km_error_set(ld->err, KM_EINVAL,
				    "%s: invalid YAML at byte %zu: %s",
				    ld->name, p->problem_offset, problem);
	default:
		if (p->context)
			return km_error_set(ld->err, KM_EINVAL,
					    "%s:%zu:%zu: invalid YAML: %s (%s "
					    "at line %zu, column %zu)",
					    ld->name, p->problem_mark.line + 1,
					    p->problem_mark.column + 1, problem,
					    p->context,
					    p->context_mark.line + 1,
					    p->context_mark.column + 1);
		return km_error_set(ld->err, KM_EINVAL,
				    "%s:%zu:%zu: invalid YAML: %s", ld->name,
				    p->problem_mark.line + 1,
				    p->problem_mark.column + 1, problem);
	}
}

/* libyaml's scanner costs O(depth^2) in nested flow collections (a 25 KB
 * file of "{a: {a: ..." takes a second, 1 MB of "[" minutes) and its
 * composer O(anchors^2 + aliases * anchors). A configuration needs
 * neither deep nesting nor thousands of anchors, so a first pass
 * over the events, which stops at the first excess, refuses such input
 * before yaml_parser_load spends its time on it. */
#define KM_CONFIG_MAX_DEPTH 64
#define KM_CONFIG_MAX_ANCHORS 1024
#define KM_CONFIG_MAX_ALIASES 65536

static int precheck(struct loader *ld, const char *yaml, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	size_t anchors = 0, aliases = 0;
	int depth = 0, rc = 0;

	if (!yaml_parser_initialize(&parser))
		return oom(ld);
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	for (;;) {
		yaml_event_type_t type;
		const yaml_char_t *anchor = NULL;

		if (!yaml_parser_parse(&parser, &ev)) {
			rc = yaml_error(ld, &parser);
			break;
		}
		type = ev.type;
		switch (type) {
		case YAML_SEQUENCE_START_EVENT:
			anchor = ev.data.sequence_start.anchor;
			depth++;
			break;
		case YAML_MAPPING_START_EVENT:
			anchor = ev.data.mapping_start.anchor;
			depth++;
			break;
		case YAML_SCALAR_EVENT: anchor = ev.data.scalar.anchor; break;
		case YAML_ALIAS_EVENT: aliases++; break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT: depth--; break;
		default: break;
		}
		if (depth > KM_CONFIG_MAX_DEPTH)
			rc = km_error_set(ld->err, KM_EINVAL,
					  "%s:%zu:%zu: nested more than %d "
					  "levels deep; a configuration needs "
					  "at most 6",
					  ld->name, ev.start_mark.line + 1,
					  ev.start_mark.column + 1,
					  KM_CONFIG_MAX_DEPTH);
		else if (anchor && ++anchors > KM_CONFIG_MAX_ANCHORS)
			rc = km_error_set(ld->err, KM_EINVAL,
					  "%s:%zu:%zu: more than %d anchors "
					  "(&name)",
					  ld->name, ev.start_mark.line + 1,
					  ev.start_mark.column + 1,
					  KM_CONFIG_MAX_ANCHORS);
		else if (aliases > KM_CONFIG_MAX_ALIASES)
			rc = km_error_set(ld->err, KM_EINVAL,
					  "%s:%zu:%zu: more than %d aliases "
					  "(*name)",
					  ld->name, ev.start_mark.line + 1,
					  ev.start_mark.column + 1,
					  KM_CONFIG_MAX_ALIASES);
		yaml_event_delete(&ev);
		if (rc || type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* Parses the text into ld->doc and checks it is the only document. The
 * root is NULL for an empty stream. */
static int load_doc(struct loader *ld, const char *yaml, size_t len,
		    yaml_node_t **root)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	yaml_node_t *second;
	int rc = 0;

	*root = NULL;
	rc = precheck(ld, yaml, len);
	if (rc)
		return rc;
	if (!yaml_parser_initialize(&parser))
		return oom(ld);
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &ld->doc)) {
		rc = yaml_error(ld, &parser);
		goto out;
	}
	ld->have_doc = true;
	if (!yaml_parser_load(&parser, &extra)) {
		rc = yaml_error(ld, &parser);
		goto out;
	}
	second = yaml_document_get_root_node(&extra);
	if (second)
		rc = km_error_set(ld->err, KM_EINVAL,
				  "%s:%zu: a second YAML document begins here; "
				  "the file must hold one",
				  ld->name, extra.start_mark.line + 1);
	yaml_document_delete(&extra);
	if (!rc)
		*root = yaml_document_get_root_node(&ld->doc);
out:
	yaml_parser_delete(&parser);
	return rc;
}

static void unload_doc(struct loader *ld)
{
	if (ld->have_doc)
		yaml_document_delete(&ld->doc);
	ld->have_doc = false;
}

static int load_string(struct km_config *c, const char *yaml, size_t len,
		       const char *name, bool check_files, struct km_error *err)
{
	struct km_config tmp = *c; /* committed only on success */
	struct loader ld = {.name = name ? name : "<config>",
			    .a = &tmp.arena,
			    .check_files = check_files,
			    .err = err};
	yaml_node_t *root;
	int rc;

	rc = load_doc(&ld, yaml ? yaml : "", yaml ? len : 0, &root);
	if (!rc && root && !is_null(root))
		rc = parse_config(&ld, root, &tmp);
	unload_doc(&ld);
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
static bool looks_like_config(struct loader *ld, const yaml_node_t *n)
{
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
	     pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node_at(ld, pr->key);

		if (!k || k->type != YAML_SCALAR_NODE)
			continue;
		for (size_t i = 0; i < K_N; i++)
			if (!strcmp(scalar(k), top_keys[i]))
				return true;
	}
	return false;
}

int km_config_parse_probes(const char *yaml, size_t len, const char *name,
			   struct km_arena *a, struct km_probe **out, size_t *n,
			   struct km_error *err)
{
	struct loader ld = {.name = name ? name : "<probes>",
			    .a = a,
			    .err = err};
	struct km_probe *probes = NULL;
	size_t count = 0;
	yaml_node_t *root;
	int rc;

	*out = NULL;
	*n = 0;
	rc = load_doc(&ld, yaml ? yaml : "", yaml ? len : 0, &root);
	if (rc || !root || is_null(root))
		goto out;
	if (root->type == YAML_SEQUENCE_NODE) {
		rc = parse_probe_list(&ld, root, &probes, &count);
	} else if (root->type == YAML_MAPPING_NODE &&
		   looks_like_config(&ld, root)) {
		struct km_config tmp;

		/* Every key is checked; only the probes are kept. The
		 * strings of the other keys go to a, a small waste. */
		km_config_defaults(&tmp); /* tmp.arena stays unused */
		rc = parse_config(&ld, root, &tmp);
		probes = tmp.probes;
		count = tmp.n_probes;
	} else if (root->type == YAML_MAPPING_NODE) {
		probes = km_arena_calloc(a, 1, sizeof *probes);
		if (!probes)
			rc = oom(&ld);
		else
			rc = parse_probe(&ld, root, "probe", probes);
		count = 1;
	} else {
		struct shown b;

		rc = lerr(&ld, root,
			  "expected a probe (a mapping), a list of "
			  "probes or a config file, got %s",
			  show_node(root, &b));
	}
	if (!rc) {
		*out = probes;
		*n = count;
	}
out:
	unload_doc(&ld);
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
	struct loader ld = {.name = name ? name : "<client config>",
			    .a = a,
			    .err = err};
	yaml_node_t *root, *v[6];
	int rc;

	memset(out, 0, sizeof *out);
	rc = load_doc(&ld, yaml ? yaml : "", yaml ? len : 0, &root);
	if (rc || !root || is_null(root))
		goto out;
	if (map_fields(&ld, root, "", keys, 6, v)) {
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
	unload_doc(&ld);
	return rc;
}
