/*
 * km_yaml.h's toolkit: libyaml's document read along a schema, with
 * messages naming the file, line, column and key. Moved out of km_config.c
 * (every message as it was) so that other files (the kubeconfig) are read
 * the same way.
 */
#include "km_yaml.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_time.h"

/* ---- messages and typed getters ----------------------------------------- */

const char *km_yaml_show_bytes(const char *v, size_t n, struct km_yaml_shown *b)
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

bool km_yaml_is_null(const yaml_node_t *n);

/* What a node is, for "expected X, got Y". */
const char *km_yaml_show(const yaml_node_t *n, struct km_yaml_shown *b)
{
	switch (n->type) {
	case YAML_MAPPING_NODE: return "a mapping";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_SCALAR_NODE:
		if (km_yaml_is_null(n))
			return "null";
		return km_yaml_show_bytes((const char *)n->data.scalar.value,
					  n->data.scalar.length, b);
	default: return "nothing";
	}
}

size_t km_yaml_line(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

/* "NAME:LINE:COL: <fmt>" at node n. */
int km_yaml_errorf(struct km_yaml *y, const yaml_node_t *n, const char *fmt,
		   ...)
{
	char what[KM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return km_error_set(y->err, KM_EINVAL, "%s:%zu:%zu: %s", y->name,
			    km_yaml_line(n), n->start_mark.column + 1, what);
}

int km_yaml_oom(struct km_yaml *y)
{
	return km_error_set(y->err, KM_ENOMEM, "%s: out of memory", y->name);
}

yaml_node_t *km_yaml_node(struct km_yaml *y, int i)
{
	return yaml_document_get_node(&y->doc, i);
}

const char *km_yaml_scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

bool km_yaml_is_plain(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE &&
	       n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* YAML's null: an empty, "~" or "null" plain scalar. Null means "not
 * given", as it does for Kubernetes. */
bool km_yaml_is_null(const yaml_node_t *n)
{
	const char *v;

	if (!n)
		return true;
	if (!km_yaml_is_plain(n))
		return false;
	v = km_yaml_scalar(n);
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
	       !strcmp(v, "Null") || !strcmp(v, "NULL");
}

size_t km_yaml_seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top -
			n->data.sequence.items.start);
}

yaml_node_t *km_yaml_seq_item(struct km_yaml *y, const yaml_node_t *n, size_t i)
{
	return km_yaml_node(y, n->data.sequence.items.start[i]);
}

/* Any non-null scalar, as text. NUL bytes (from a "\0" escape) would cut
 * the string short without anyone noticing, so they are refused. */
int km_yaml_str(struct km_yaml *y, const yaml_node_t *n, const char *path,
		const char **out)
{
	struct km_yaml_shown b;

	if (km_yaml_is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE)
		return km_yaml_errorf(y, n, "%s: expected a string, got %s",
				      path, km_yaml_show(n, &b));
	if (strlen(km_yaml_scalar(n)) != n->data.scalar.length)
		return km_yaml_errorf(
			y, n, "%s: must not contain NUL characters", path);
	*out = km_arena_strndup(y->a, km_yaml_scalar(n), n->data.scalar.length);
	return *out ? 0 : km_yaml_oom(y);
}

/* A decimal integer, optionally signed: what JSON and Kubernetes call an
 * integer. false for anything else, including out of int64's range. */
bool km_yaml_parse_i64(const char *s, int64_t *out)
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

bool km_yaml_all_digits(const char *s)
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

int km_yaml_int(struct km_yaml *y, const yaml_node_t *n, const char *path,
		int64_t min, int64_t max, int64_t *out)
{
	struct km_yaml_shown b;
	int64_t v;

	if (km_yaml_is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE)
		return km_yaml_errorf(y, n, "%s: expected an integer, got %s",
				      path, km_yaml_show(n, &b));
	if (!km_yaml_is_plain(n))
		return km_yaml_errorf(
			y, n,
			"%s: expected an integer, got the string %s "
			"(write numbers without quotes)",
			path, km_yaml_show(n, &b));
	if (!km_yaml_parse_i64(km_yaml_scalar(n), &v)) {
		if (km_yaml_all_digits(km_yaml_scalar(n)))
			return km_yaml_errorf(y, n,
					      "%s: %s is out of range (%lld to "
					      "%lld)",
					      path, km_yaml_show(n, &b),
					      (long long)min, (long long)max);
		return km_yaml_errorf(y, n, "%s: expected an integer, got %s",
				      path, km_yaml_show(n, &b));
	}
	if (v < min || v > max)
		return km_yaml_errorf(
			y, n, "%s: must be between %lld and %lld, got %lld",
			path, (long long)min, (long long)max, (long long)v);
	*out = v;
	return 0;
}

int km_yaml_bool(struct km_yaml *y, const yaml_node_t *n, const char *path,
		 bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};
	struct km_yaml_shown b;

	if (km_yaml_is_null(n))
		return 0;
	if (km_yaml_is_plain(n)) {
		for (size_t i = 0; i < 3; i++) {
			if (!strcmp(km_yaml_scalar(n), yes[i])) {
				*out = true;
				return 0;
			}
			if (!strcmp(km_yaml_scalar(n), no[i])) {
				*out = false;
				return 0;
			}
		}
	}
	return km_yaml_errorf(y, n, "%s: expected true or false, got %s", path,
			      km_yaml_show(n, &b));
}

int km_yaml_duration(struct km_yaml *y, const yaml_node_t *n, const char *path,
		     int64_t min_ms, int64_t max_ms, const char *range,
		     int64_t *out)
{
	struct km_yaml_shown b;
	int64_t v;

	if (km_yaml_is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE ||
	    strlen(km_yaml_scalar(n)) != n->data.scalar.length)
		return km_yaml_errorf(y, n, "%s: expected a duration, got %s",
				      path, km_yaml_show(n, &b));
	if (km_duration_parse(km_yaml_scalar(n), &v) != 0) {
		if (km_yaml_all_digits(km_yaml_scalar(n)))
			return km_yaml_errorf(
				y, n,
				"%s: the duration %s needs a unit "
				"(ms, s, m, h or d), e.g. \"%ss\"",
				path, km_yaml_show(n, &b),
				n->data.scalar.length < 20 ? km_yaml_scalar(n)
							   : "10");
		return km_yaml_errorf(
			y, n,
			"%s: expected a duration such as \"250ms\", "
			"\"10s\", \"5m\", \"12h\", \"30d\" or \"1h30m\", "
			"got %s",
			path, km_yaml_show(n, &b));
	}
	if (v < min_ms || v > max_ms)
		return km_yaml_errorf(y, n, "%s: must be %s, got %s", path,
				      range, km_yaml_show(n, &b));
	*out = v;
	return 0;
}

/* One of a fixed set of words; *out is its index. */
int km_yaml_enum(struct km_yaml *y, const yaml_node_t *n, const char *path,
		 const char *const *words, size_t nwords, int *out)
{
	char list[256];
	size_t o = 0;
	struct km_yaml_shown b;

	if (km_yaml_is_null(n))
		return 0;
	if (n->type == YAML_SCALAR_NODE)
		for (size_t i = 0; i < nwords; i++)
			if (!strcmp(km_yaml_scalar(n), words[i]) &&
			    strlen(words[i]) == n->data.scalar.length) {
				*out = (int)i;
				return 0;
			}
	list[0] = '\0';
	for (size_t i = 0; i < nwords && o < sizeof list; i++)
		o += (size_t)snprintf(list + o, sizeof list - o, "%s\"%s\"",
				      i ? ", " : "", words[i]);
	return km_yaml_errorf(y, n,
			      "%s: Unsupported value: %s: supported values: %s",
			      path, km_yaml_show(n, &b), list);
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

/* For every file: libyaml does not merge. */
static const struct km_yaml_hint merge_hint = {
	"<<", "; YAML merge keys are not supported"};

/* The hint for an unknown key: the caller's, else the merge key's. */
static const char *key_hint(const struct km_yaml *y, const char *key)
{
	for (size_t j = 0; j < y->n_hints; j++)
		if (!strcmp(key, y->hints[j].key))
			return y->hints[j].hint;
	return !strcmp(key, merge_hint.key) ? merge_hint.hint : NULL;
}

/* Unknown keys: the list of known ones, and a hint when one was surely
 * meant (written another way, or a typo), else the caller's word on it. */
int km_yaml_map(struct km_yaml *y, const yaml_node_t *n, const char *where,
		const char *const *known, size_t nknown, yaml_node_t **vals,
		unsigned flags)
{
	const yaml_node_t *key_of[KM_YAML_MAP_MAX_KEYS];
	char in[sizeof "in " + 192]; /* callers build where in char [192] */
	struct km_yaml_shown b;

	assert(nknown <= KM_YAML_MAP_MAX_KEYS);
	for (size_t i = 0; i < nknown; i++)
		vals[i] = NULL;
	if (km_yaml_is_null(n))
		return 0;
	if (*where)
		snprintf(in, sizeof in, "in %s", where);
	else
		snprintf(in, sizeof in, "at the top level");
	if (n->type != YAML_MAPPING_NODE)
		return km_yaml_errorf(y, n, "%s: expected a mapping, got %s",
				      *where ? where : "the document",
				      km_yaml_show(n, &b));

	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
	     pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = km_yaml_node(y, pr->key),
			    *v = km_yaml_node(y, pr->value);
		const char *key;
		size_t i;

		if (!k || !v)
			return km_error_set(y->err, KM_EINTERNAL,
					    "%s: libyaml left a pair without "
					    "nodes",
					    y->name);
		if (k->type != YAML_SCALAR_NODE && (flags & KM_YAML_LENIENT))
			continue; /* can be no known key */
		if (k->type != YAML_SCALAR_NODE)
			return km_yaml_errorf(
				y, k, "expected a key (a string) %s, got %s",
				in, km_yaml_show(k, &b));
		key = km_yaml_scalar(k);
		for (i = 0; i < nknown; i++)
			if (!strcmp(key, known[i]) &&
			    strlen(known[i]) == k->data.scalar.length)
				break;
		if (i == nknown && (flags & KM_YAML_LENIENT))
			continue;
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
			if (!*hint && key_hint(y, key))
				snprintf(hint, sizeof hint, "%s",
					 key_hint(y, key));
			return km_yaml_errorf(y, k,
					      "unknown key %s %s (known: %s)%s",
					      km_yaml_show(k, &b), in, list,
					      hint);
		}
		if (vals[i])
			return km_yaml_errorf(
				y, k,
				"duplicate key %s %s (first given "
				"at line %zu)",
				km_yaml_show(k, &b), in,
				km_yaml_line(key_of[i]));
		vals[i] = v;
		key_of[i] = k;
	}
	return 0;
}

/* ---- documents --------------------------------------------------------- */

static int yaml_error(struct km_yaml *y, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "unknown problem";

	switch (p->error) {
	case YAML_MEMORY_ERROR: return km_yaml_oom(y);
	case YAML_READER_ERROR:
		if (p->problem_value != -1)
			return km_error_set(y->err, KM_EINVAL,
					    "%s: invalid YAML at byte %zu: %s "
					    "(#%X)",
					    y->name, p->problem_offset, problem,
					    (unsigned)p->problem_value);
		return km_error_set(y->err, KM_EINVAL,
				    "%s: invalid YAML at byte %zu: %s", y->name,
				    p->problem_offset, problem);
	default:
		if (p->context)
			return km_error_set(y->err, KM_EINVAL,
					    "%s:%zu:%zu: invalid YAML: %s (%s "
					    "at line %zu, column %zu)",
					    y->name, p->problem_mark.line + 1,
					    p->problem_mark.column + 1, problem,
					    p->context,
					    p->context_mark.line + 1,
					    p->context_mark.column + 1);
		return km_error_set(y->err, KM_EINVAL,
				    "%s:%zu:%zu: invalid YAML: %s", y->name,
				    p->problem_mark.line + 1,
				    p->problem_mark.column + 1, problem);
	}
}

/* libyaml's scanner costs O(depth^2) in nested flow collections (a 25 KB
 * file of "{a: {a: ..." takes a second, 1 MB of "[" minutes) and its
 * composer O(anchors^2 + aliases * anchors). A configuration file needs
 * neither deep nesting nor thousands of anchors, so a first pass
 * over the events, which stops at the first excess, refuses such input
 * before yaml_parser_load spends its time on it. */
static int precheck(struct km_yaml *y, const char *yaml, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	size_t anchors = 0, aliases = 0;
	int depth = 0, rc = 0;

	if (!yaml_parser_initialize(&parser))
		return km_yaml_oom(y);
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	for (;;) {
		yaml_event_type_t type;
		const yaml_char_t *anchor = NULL;

		if (!yaml_parser_parse(&parser, &ev)) {
			rc = yaml_error(y, &parser);
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
		if (depth > KM_YAML_MAX_DEPTH)
			rc = km_error_set(y->err, KM_EINVAL,
					  "%s:%zu:%zu: nested more than %d "
					  "levels deep%s%s",
					  y->name, ev.start_mark.line + 1,
					  ev.start_mark.column + 1,
					  KM_YAML_MAX_DEPTH,
					  y->depth_note ? "; " : "",
					  y->depth_note ? y->depth_note : "");
		else if (anchor && ++anchors > KM_YAML_MAX_ANCHORS)
			rc = km_error_set(y->err, KM_EINVAL,
					  "%s:%zu:%zu: more than %d anchors "
					  "(&name)",
					  y->name, ev.start_mark.line + 1,
					  ev.start_mark.column + 1,
					  KM_YAML_MAX_ANCHORS);
		else if (aliases > KM_YAML_MAX_ALIASES)
			rc = km_error_set(y->err, KM_EINVAL,
					  "%s:%zu:%zu: more than %d aliases "
					  "(*name)",
					  y->name, ev.start_mark.line + 1,
					  ev.start_mark.column + 1,
					  KM_YAML_MAX_ALIASES);
		yaml_event_delete(&ev);
		if (rc || type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* The text into y->doc, after precheck, checking it is the only
 * document. */
int km_yaml_load(struct km_yaml *y, const char *yaml, size_t len,
		 yaml_node_t **root)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	yaml_node_t *second;
	int rc = 0;

	*root = NULL;
	if (!yaml) {
		yaml = "";
		len = 0;
	}
	rc = precheck(y, yaml, len);
	if (rc)
		return rc;
	if (!yaml_parser_initialize(&parser))
		return km_yaml_oom(y);
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &y->doc)) {
		rc = yaml_error(y, &parser);
		goto out;
	}
	y->have_doc = true;
	if (!yaml_parser_load(&parser, &extra)) {
		rc = yaml_error(y, &parser);
		goto out;
	}
	second = yaml_document_get_root_node(&extra);
	if (second)
		rc = km_error_set(y->err, KM_EINVAL,
				  "%s:%zu: a second YAML document begins here; "
				  "the file must hold one",
				  y->name, extra.start_mark.line + 1);
	yaml_document_delete(&extra);
	if (!rc)
		*root = yaml_document_get_root_node(&y->doc);
out:
	yaml_parser_delete(&parser);
	return rc;
}

void km_yaml_unload(struct km_yaml *y)
{
	if (y->have_doc)
		yaml_document_delete(&y->doc);
	y->have_doc = false;
}
