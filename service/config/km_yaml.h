/*
 * km_yaml — reading a YAML file along a fixed schema, with messages that
 * name the file, line, column and key.
 *
 *   struct km_yaml y = {.name = path, .a = &arena, .err = err};
 *   yaml_node_t *root, *v[2];
 *   static const char *const keys[] = {"listen", "threads"};
 *
 *   if (km_yaml_load(&y, text, len, &root) ||
 *       km_yaml_map(&y, root, "", keys, 2, v, 0) ||
 *       km_yaml_str(&y, v[0], "listen", &listen) || ...)
 *           goto fail;
 *   km_yaml_unload(&y);
 *
 * libyaml turns the text into a node graph (yaml_document_t); a reader
 * walks that graph from the root: every mapping is checked against the
 * keys it may hold (km_yaml_map: unknown keys are an error with a "did
 * you mean" hint, or, with KM_YAML_LENIENT, ignored), and every value is
 * converted by a typed getter (km_yaml_str, km_yaml_int, km_yaml_bool,
 * km_yaml_duration, km_yaml_enum) that knows the key's path for its
 * message. The schema is what bounds the walk: no level accepts
 * "anything", so an alias that refers to itself ("&a [*a]") is met as a
 * value of the wrong type, never followed forever. Before libyaml composes
 * the document, a first pass over its events refuses nesting deeper than
 * KM_YAML_MAX_DEPTH, more than KM_YAML_MAX_ANCHORS anchors or
 * KM_YAML_MAX_ALIASES aliases (libyaml's costs there are quadratic), and
 * a file must hold one document.
 *
 * YAML types follow Kubernetes: integers are plain scalars ("5", not "5"
 * in quotes), null ("", "~", "null") means "not given" (every getter
 * leaves *out alone), and a string takes any scalar as text.
 *
 * Messages: "NAME:LINE:COL: key.path: problem", lines and columns from 1
 * (km_yaml_errorf). libyaml's document keeps no trace of aliases, so a bad
 * value reached through "*a" is reported where "&a" defined it. Every
 * function returning int returns 0 or a negative km_err code (KM_EINVAL
 * for the input's faults, KM_ENOMEM, KM_EINTERNAL) with y->err filled.
 *
 * Ownership: the caller owns the struct km_yaml and the arena; the
 * document is libyaml's, from km_yaml_load until km_yaml_unload (always
 * call it, also after a failed load); nodes die with it. Strings kept
 * (km_yaml_str) live in y->a. Thread-safety: a struct km_yaml belongs to
 * one thread; different ones share nothing.
 */
#ifndef KM_YAML_H
#define KM_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "km_arena.h"
#include "km_error.h"

#define KM_YAML_MAX_DEPTH 64
#define KM_YAML_MAX_ANCHORS 1024
#define KM_YAML_MAX_ALIASES 65536
/* The most keys km_yaml_map checks a mapping against. */
#define KM_YAML_MAP_MAX_KEYS 24

/* A word added to km_yaml_map's message about an unknown key. */
struct km_yaml_hint {
	const char *key;  /* the unknown key, exactly */
	const char *hint; /* appended to the message: "; it does not apply" */
};

struct km_yaml {
	/* Set by the caller. */
	const char *name;   /* the file name, for messages */
	struct km_arena *a; /* where everything kept is allocated */
	struct km_error *err;
	const struct km_yaml_hint *hints; /* for unknown keys; may be NULL */
	size_t n_hints;
	/* Appended to the message for nesting past KM_YAML_MAX_DEPTH ("a
	 * configuration needs at most 6"); NULL for none. */
	const char *depth_note;
	/* km_yaml's. */
	yaml_document_t doc;
	bool have_doc;
};

/* Parses len bytes of text (NULL: none) into y->doc. *root is NULL for
 * an empty stream. */
int km_yaml_load(struct km_yaml *y, const char *text, size_t len,
		 yaml_node_t **root);
/* Releases the document; harmless when there is none. */
void km_yaml_unload(struct km_yaml *y);

/* ---- nodes ---- */

/* The node numbered i in the document (a pair's key or value, a list's
 * item), NULL if none. */
yaml_node_t *km_yaml_node(struct km_yaml *y, int i);
/* A scalar node's text (NUL-terminated; may hold NULs, see
 * km_yaml_str). */
const char *km_yaml_scalar(const yaml_node_t *n);
/* A scalar written without quotes. */
bool km_yaml_is_plain(const yaml_node_t *n);
/* YAML's null: NULL, or an empty, "~" or "null" plain scalar. */
bool km_yaml_is_null(const yaml_node_t *n);
size_t km_yaml_seq_len(const yaml_node_t *n);
/* A list's item i (< km_yaml_seq_len), NULL if none. */
yaml_node_t *km_yaml_seq_item(struct km_yaml *y, const yaml_node_t *n,
			      size_t i);
/* The line of n, from 1. */
size_t km_yaml_line(const yaml_node_t *n);

/* ---- messages ---- */

/* A value shown in a message: quoted, escaped, cut at 64 bytes. */
struct km_yaml_shown {
	char s[64 * 4 + 8];
};
const char *km_yaml_show_bytes(const char *v, size_t n,
			       struct km_yaml_shown *b);
/* What a node is, for "expected X, got Y": "a mapping", "a list", "null"
 * or the scalar shown; b holds the text. */
const char *km_yaml_show(const yaml_node_t *n, struct km_yaml_shown *b);
/* KM_EINVAL with "NAME:LINE:COL: <fmt>" at node n. */
int km_yaml_errorf(struct km_yaml *y, const yaml_node_t *n, const char *fmt,
		   ...) __attribute__((format(printf, 3, 4)));
/* KM_ENOMEM with "NAME: out of memory". */
int km_yaml_oom(struct km_yaml *y);

/* ---- typed getters: path names the key in messages ("a.b[2].c") ---- */

/* Any non-null scalar, as text in y->a; NUL bytes refused. */
int km_yaml_str(struct km_yaml *y, const yaml_node_t *n, const char *path,
		const char **out);
/* A plain decimal integer in [min, max]. */
int km_yaml_int(struct km_yaml *y, const yaml_node_t *n, const char *path,
		int64_t min, int64_t max, int64_t *out);
/* true/True/TRUE or false/False/FALSE, plain. */
int km_yaml_bool(struct km_yaml *y, const yaml_node_t *n, const char *path,
		 bool *out);
/* A duration ("250ms", "1h30m", km_duration_parse) in milliseconds, in
 * [min_ms, max_ms]; range says so in words ("at most 1h"). */
int km_yaml_duration(struct km_yaml *y, const yaml_node_t *n, const char *path,
		     int64_t min_ms, int64_t max_ms, const char *range,
		     int64_t *out);
/* One of nwords words; *out is its index. */
int km_yaml_enum(struct km_yaml *y, const yaml_node_t *n, const char *path,
		 const char *const *words, size_t nwords, int *out);

/* Text helpers the getters use. A decimal integer, optionally signed:
 * false for anything else, including out of int64's range. */
bool km_yaml_parse_i64(const char *s, int64_t *out);
/* Digits only, after an optional sign; false for "". */
bool km_yaml_all_digits(const char *s);

/* ---- mappings ---- */

/* Unknown keys are ignored, not an error (files that carry extensions). */
#define KM_YAML_LENIENT 1u

/* Checks that the mapping n holds only keys from known[] (nknown at most
 * KM_YAML_MAP_MAX_KEYS), each at most once, and fills vals[i] with the
 * value of known[i] (NULL when absent). A null n (the key was given no
 * value) is an empty mapping. where is the mapping's path for messages,
 * "" at the top level (at most 191 bytes). flags: 0 or KM_YAML_LENIENT.
 * An unknown key's message lists the known ones and, for a near miss
 * ("period_seconds", "periodSecond"), says which was meant. */
int km_yaml_map(struct km_yaml *y, const yaml_node_t *n, const char *where,
		const char *const *known, size_t nknown, yaml_node_t **vals,
		unsigned flags);

#endif
