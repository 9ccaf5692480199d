/*
 * km_selector — Kubernetes label selectors.
 *
 *   "team=shop,tier in (web, api),!canary,env!=dev,owner"
 *
 * The syntax of k8s.io/apimachinery's labels.Parse: requirements joined by
 * commas (all must hold); operators =, ==, !=, in, notin, exists ("key")
 * and does-not-exist ("!key"); spaces allowed around tokens. Keys and
 * values must be valid label keys and values. The empty selector matches
 * everything.
 *
 * Ownership: a parsed selector lives in the arena given to the parser.
 * Matching is read-only and thread-safe.
 */
#ifndef KM_SELECTOR_H
#define KM_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "km_arena.h"
#include "km_error.h"
#include "km_model.h"

struct km_selector;

/* KM_EINVAL with a message naming the position and the problem. */
int km_selector_parse(const char *s, struct km_arena *a,
		      struct km_selector **out, struct km_error *err);
bool km_selector_matches(const struct km_selector *sel,
			 const struct km_kv *labels, size_t n);
bool km_selector_empty(const struct km_selector *sel);

#endif
