/*
 * Kubernetes label selectors, parsed the way k8s.io/apimachinery's
 * labels.Parse does it: a small lexer (identifiers, the operators
 * = == != ! ( ) , and the keywords in / notin), then one requirement after
 * another, joined by commas.
 *
 * The lexer treats every byte that is neither whitespace nor one of
 * "=!(),<>" as part of an identifier, exactly as Kubernetes does; the key and
 * value rules (km_label_key_error, km_label_value_error) then decide what is
 * a valid label. ">" and "<" are lexed so that "replicas>3" gets a clear
 * "not supported" message rather than an invalid-key one.
 *
 * Matching follows labels.Requirement.Matches: "=", "==" and "in" need the
 * key to be present; "!=" and "notin" also hold when it is absent.
 */
#include "km_probe.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum sel_op {
	SEL_EQ,        /* = or ==, one value */
	SEL_NE,        /* !=, one value */
	SEL_IN,        /* in (v, ...) */
	SEL_NOTIN,     /* notin (v, ...) */
	SEL_EXISTS,    /* key */
	SEL_NOTEXISTS, /* !key */
};

struct sel_req {
	const char *key;
	enum sel_op op;
	const char **values;
	size_t n_values;
};

struct km_selector {
	struct sel_req *reqs;
	size_t n;
};

/* ---- lexer ------------------------------------------------------------- */

enum tok_kind {
	T_END,
	T_IDENT,
	T_NOT,   /* ! */
	T_EQ,    /* = */
	T_EQEQ,  /* == */
	T_NE,    /* != */
	T_IN,    /* in (a keyword only where an operator is expected) */
	T_NOTIN, /* notin */
	T_OPEN,  /* ( */
	T_CLOSE, /* ) */
	T_COMMA, /* , */
	T_GT,    /* > (Kubernetes' gt; not supported here) */
	T_LT,    /* < */
};

struct tok {
	enum tok_kind kind;
	size_t pos; /* offset of its first byte */
	size_t len;
};

struct parser {
	const char *s;
	size_t len;
	size_t pos;
	struct km_arena *a;
	struct km_error *err;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_special(char c)
{
	return c && strchr("=!(),<>", c) != NULL;
}

/* Reads the next token. Keywords are recognised by the caller, which knows
 * whether it expects an operator (see is_keyword). */
static struct tok lex(struct parser *p)
{
	struct tok t;
	const char *s = p->s;

	while (p->pos < p->len && is_space(s[p->pos]))
		p->pos++;
	t.pos = p->pos;
	t.len = 1;
	if (p->pos >= p->len) {
		t.kind = T_END;
		t.len = 0;
		return t;
	}
	switch (s[p->pos]) {
	case '=':
		t.kind = T_EQ;
		if (p->pos + 1 < p->len && s[p->pos + 1] == '=') {
			t.kind = T_EQEQ;
			t.len = 2;
		}
		break;
	case '!':
		t.kind = T_NOT;
		if (p->pos + 1 < p->len && s[p->pos + 1] == '=') {
			t.kind = T_NE;
			t.len = 2;
		}
		break;
	case '(': t.kind = T_OPEN; break;
	case ')': t.kind = T_CLOSE; break;
	case ',': t.kind = T_COMMA; break;
	case '>': t.kind = T_GT; break;
	case '<': t.kind = T_LT; break;
	default:
		t.kind = T_IDENT;
		t.len = 0;
		while (p->pos + t.len < p->len &&
		       !is_space(s[p->pos + t.len]) &&
		       !is_special(s[p->pos + t.len]))
			t.len++;
		break;
	}
	p->pos += t.len;
	return t;
}

static struct tok peek(struct parser *p)
{
	size_t save = p->pos;
	struct tok t = lex(p);

	p->pos = save;
	return t;
}

static bool tok_is(const struct parser *p, const struct tok *t,
		   const char *word)
{
	return t->kind == T_IDENT && t->len == strlen(word) &&
	       memcmp(p->s + t->pos, word, t->len) == 0;
}

/* ---- errors ------------------------------------------------------------ */

#define SHOW_MAX 120 /* bytes of the selector quoted in a message */

/* "label selector "<s>": position <pos+1>: <what>". Long selectors are
 * cut so the message still fits; the position says where to look. */
__attribute__((format(printf, 3, 4))) static int
perr(struct parser *p, size_t pos, const char *fmt, ...)
{
	char what[KM_ERROR_MSG_MAX];
	va_list ap;
	int shown = p->len > SHOW_MAX ? SHOW_MAX : (int)p->len;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return km_error_set(p->err, KM_EINVAL,
			    "label selector \"%.*s%s\": position %zu: %s",
			    shown, p->s, p->len > SHOW_MAX ? "..." : "",
			    pos + 1, what);
}

/* "expected X" at the end of the input, "found 'y', expected X" before. */
static int expected(struct parser *p, const struct tok *t, const char *what)
{
	if (t->kind == T_END)
		return perr(p, t->pos, "expected %s", what);
	return perr(p, t->pos, "found '%.*s', expected %s",
		    t->len > 40 ? 40 : (int)t->len, p->s + t->pos, what);
}

/* ---- parser ------------------------------------------------------------ */

static const char *ident_dup(struct parser *p, const struct tok *t)
{
	return km_arena_strndup(p->a, p->s + t->pos, t->len);
}

static int check_key(struct parser *p, const struct tok *t, const char *key)
{
	const char *why = km_label_key_error(key);

	if (why)
		return perr(p, t->pos, "invalid label key \"%.*s\": %s",
			    t->len > 80 ? 80 : (int)t->len, key, why);
	return 0;
}

static int check_value(struct parser *p, const struct tok *t, const char *value)
{
	const char *why = km_label_value_error(value);

	if (why)
		return perr(p, t->pos, "invalid label value \"%.*s\": %s",
			    t->len > 80 ? 80 : (int)t->len, value, why);
	return 0;
}

/* An upper bound on the values of the list opened at p->pos: one more than
 * the commas before the closing parenthesis. */
static size_t count_list(const struct parser *p)
{
	size_t n = 1;

	for (size_t i = p->pos; i < p->len && p->s[i] != ')'; i++)
		n += p->s[i] == ',';
	return n;
}

static int add_value(struct parser *p, struct sel_req *r, const struct tok *t)
{
	const char *v = t ? ident_dup(p, t) : "";

	if (!v)
		return km_error_set(p->err, KM_ENOMEM, "out of memory");
	if (t && check_value(p, t, v))
		return KM_EINVAL;
	r->values[r->n_values++] = v;
	return 0;
}

/* "(" [values] ")" after in / notin. As in Kubernetes, empty entries are
 * the empty value: "()" and "(a,)" both contain "". */
static int parse_list(struct parser *p, struct sel_req *r)
{
	struct tok t = lex(p);
	bool want_value = true; /* after "(" or "," */

	if (t.kind != T_OPEN)
		return expected(p, &t, "'('");
	r->values = km_arena_calloc(p->a, count_list(p), sizeof *r->values);
	if (!r->values)
		return km_error_set(p->err, KM_ENOMEM, "out of memory");
	for (;;) {
		t = lex(p);
		switch (t.kind) {
		case T_IDENT:
			if (!want_value)
				return expected(p, &t, "',' or ')'");
			if (add_value(p, r, &t))
				return KM_EINVAL;
			want_value = false;
			break;
		case T_COMMA:
		case T_CLOSE:
			if (want_value && add_value(p, r, NULL))
				return KM_ENOMEM;
			if (t.kind == T_CLOSE)
				return 0;
			want_value = true;
			break;
		case T_END: return expected(p, &t, "')'");
		default:
			return expected(p, &t,
					want_value ? "a value, ',' or ')'"
						   : "',' or ')'");
		}
	}
}

/* The value after =, == or !=; nothing before "," or the end is "". */
static int parse_exact(struct parser *p, struct sel_req *r)
{
	struct tok t = peek(p);

	r->values = km_arena_calloc(p->a, 1, sizeof *r->values);
	if (!r->values)
		return km_error_set(p->err, KM_ENOMEM, "out of memory");
	if (t.kind == T_END || t.kind == T_COMMA)
		return add_value(p, r, NULL);
	t = lex(p);
	if (t.kind != T_IDENT)
		return expected(p, &t, "a value");
	return add_value(p, r, &t);
}

static int parse_requirement(struct parser *p, struct sel_req *r)
{
	struct tok t = lex(p), op;
	bool negated = false;

	if (t.kind == T_NOT) {
		negated = true;
		t = lex(p);
	}
	if (t.kind != T_IDENT)
		return expected(p, &t,
				negated ? "a label key" : "'!' or a label key");
	r->key = ident_dup(p, &t);
	if (!r->key)
		return km_error_set(p->err, KM_ENOMEM, "out of memory");
	if (check_key(p, &t, r->key))
		return KM_EINVAL;

	op = peek(p);
	if (negated || op.kind == T_END || op.kind == T_COMMA) {
		r->op = negated ? SEL_NOTEXISTS : SEL_EXISTS;
		return 0; /* the caller checks what follows */
	}
	lex(p);
	switch (op.kind) {
	case T_EQ:
	case T_EQEQ: r->op = SEL_EQ; return parse_exact(p, r);
	case T_NE: r->op = SEL_NE; return parse_exact(p, r);
	case T_GT:
	case T_LT:
		return perr(p, op.pos,
			    "operator '%c' is not supported (use =, "
			    "==, !=, in or notin)",
			    p->s[op.pos]);
	case T_IDENT:
		if (tok_is(p, &op, "in") || tok_is(p, &op, "notin")) {
			r->op = tok_is(p, &op, "in") ? SEL_IN : SEL_NOTIN;
			return parse_list(p, r);
		}
		break;
	default: break;
	}
	return expected(p, &op, "one of =, ==, !=, in, notin, ',' or the end");
}

/* Requirements are at most one more than the commas in the string. */
static size_t count_commas(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == ',';
	return n;
}

int km_selector_parse(const char *s, struct km_arena *a,
		      struct km_selector **out, struct km_error *err)
{
	struct parser p = {.s = s ? s : "", .a = a, .err = err};
	struct km_selector *sel;
	struct tok t;
	int rc;

	*out = NULL;
	p.len = strlen(p.s);
	sel = km_arena_calloc(a, 1, sizeof *sel);
	if (!sel)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	if (peek(&p).kind == T_END) {
		*out = sel; /* empty: matches everything */
		return 0;
	}
	sel->reqs = km_arena_calloc(a, count_commas(p.s, p.len) + 1,
				    sizeof *sel->reqs);
	if (!sel->reqs)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	for (;;) {
		rc = parse_requirement(&p, &sel->reqs[sel->n]);
		if (rc)
			return rc;
		sel->n++;
		t = lex(&p);
		if (t.kind == T_END)
			break;
		if (t.kind != T_COMMA)
			return expected(&p, &t, "',' or the end");
		t = peek(&p);
		if (t.kind != T_IDENT && t.kind != T_NOT)
			return expected(&p, &t, "a requirement after ','");
	}
	*out = sel;
	return 0;
}

/* ---- size, before parsing ---------------------------------------------- */

/* An upper bound on the requirements of s[0..n): one more than its commas
 * outside parentheses (commas inside separate the values of an "in" or
 * "notin" list). Exact for any selector that parses. */
static size_t count_requirements(const char *s, size_t n)
{
	size_t reqs = 1;
	int depth = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '(')
			depth++;
		else if (s[i] == ')' && depth > 0)
			depth--;
		else if (s[i] == ',' && depth == 0)
			reqs++;
	}
	return reqs;
}

int km_selector_check_size(const char *s, int64_t max_bytes,
			   int64_t max_requirements, const char *field,
			   struct km_error *err)
{
	size_t n = s ? strlen(s) : 0, reqs;

	if (!n)
		return 0;
	if ((uint64_t)n > (uint64_t)max_bytes)
		return km_error_set(err, KM_EINVAL,
				    "%s: the selector is %zu bytes long; this "
				    "server takes at most %lld "
				    "(limits.maxSelectorBytes)",
				    field, n, (long long)max_bytes);
	reqs = count_requirements(s, n);
	if ((uint64_t)reqs > (uint64_t)max_requirements)
		return km_error_set(err, KM_EINVAL,
				    "%s: the selector has %zu requirements; "
				    "this server takes at most %lld "
				    "(limits.maxSelectorRequirements)",
				    field, reqs, (long long)max_requirements);
	return 0;
}

/* ---- matching ---------------------------------------------------------- */

static const char *lookup(const struct km_kv *labels, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (labels[i].key && strcmp(labels[i].key, key) == 0)
			return labels[i].value ? labels[i].value : "";
	return NULL;
}

static bool in_values(const struct sel_req *r, const char *v)
{
	for (size_t i = 0; i < r->n_values; i++)
		if (strcmp(r->values[i], v) == 0)
			return true;
	return false;
}

static bool req_matches(const struct sel_req *r, const struct km_kv *labels,
			size_t n)
{
	const char *v = lookup(labels, n, r->key);

	switch (r->op) {
	case SEL_EQ:
	case SEL_IN: return v && in_values(r, v);
	case SEL_NE:
	case SEL_NOTIN: return !v || !in_values(r, v);
	case SEL_EXISTS: return v != NULL;
	case SEL_NOTEXISTS: return v == NULL;
	}
	return false;
}

bool km_selector_matches(const struct km_selector *sel,
			 const struct km_kv *labels, size_t n)
{
	if (!sel)
		return true;
	for (size_t i = 0; i < sel->n; i++)
		if (!req_matches(&sel->reqs[i], labels, n))
			return false;
	return true;
}

bool km_selector_empty(const struct km_selector *sel)
{
	return !sel || sel->n == 0;
}
