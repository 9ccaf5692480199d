/*
 * km_probe — what a probe is, shared by the daemon and the CLI: the rules
 * a probe definition must follow (the kubelet's and kubemedic's own),
 * Kubernetes label selectors, and the conversion between a definition
 * (struct km_probe, km_model.h) and the API's kubemedic.v1.Probe.
 *
 * Nothing here runs a probe or keeps state: the probe engine is prober/,
 * the verdicts are health/. Every function is pure or allocates only in
 * the arena it is given; all are thread-safe.
 */
#ifndef KM_PROBE_H
#define KM_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "km_arena.h"
#include "km_error.h"
#include "km_model.h"
#include "kubemedic/v1/probe.pb-c.h"

/* ---- definitions -----------------------------------------------------------
 *
 * The kubelet's rules first (exactly one handler; non-negative timing with
 * its defaults: timeout 1 s, period 10 s, success threshold 1, failure
 * threshold 3; ports 1-65535; scheme HTTP or HTTPS; header names that are
 * HTTP tokens; environment variable names), then kubemedic's own limits
 * (names, labels, sub-second periods down to 100 ms, upper bounds).
 *
 * Field names in messages follow the caller's vocabulary: the API's
 * ("probe.http_get.port") or the config file's ("httpGet.port"), with a
 * caller-given prefix. Both the API and the config loader use these
 * functions, so a probe is accepted or refused the same way whichever door
 * it comes through.
 *
 */

enum km_field_style {
	KM_FIELDS_API,  /* snake_case, as in the .proto */
	KM_FIELDS_YAML, /* camelCase, as in a Kubernetes Probe */
};

/* Where the fields of one probe come from, for messages. */
struct km_field_ctx {
	enum km_field_style style;
	const char *prefix; /* "probe" or "probes[3]"; may be "" */
};

/* Limits beyond the kubelet's. */
#define KM_PROBE_MIN_PERIOD_MS 100
#define KM_PROBE_MAX_PERIOD_MS (24LL * 3600 * 1000)
#define KM_PROBE_MAX_TIMEOUT_MS (3600LL * 1000)
#define KM_PROBE_MAX_INITIAL_DELAY_MS (24LL * 3600 * 1000)
#define KM_PROBE_MAX_THRESHOLD 10000
#define KM_PROBE_MAX_LABELS 64
#define KM_PROBE_MAX_HEADERS 64
#define KM_PROBE_MAX_ARGS 256
#define KM_PROBE_MAX_ENV 256

/* The timing fields as a user writes them; 0 = unset. */
struct km_probe_timing {
	int64_t initial_delay_seconds;
	int64_t timeout_seconds;
	int64_t period_seconds;
	int64_t success_threshold;
	int64_t failure_threshold;
	int64_t period_milliseconds;
	int64_t timeout_milliseconds;
};

/* Checks t (negative values, seconds-and-milliseconds both given, upper
 * bounds), applies the kubelet's defaults and stores the result in p. */
int km_probe_set_timing(struct km_probe *p, const struct km_probe_timing *t,
			const struct km_field_ctx *fc, struct km_error *err);
/* The inverse, for presenting a stored probe: whole seconds where the
 * value is a whole number of seconds, milliseconds otherwise. */
void km_probe_get_timing(const struct km_probe *p, struct km_probe_timing *t);

/* "HTTP" or "HTTPS" ("" = HTTP), exactly as the kubelet spells them. */
int km_probe_parse_scheme(const char *scheme, bool *https,
			  const struct km_field_ctx *fc, struct km_error *err);

/* Validates everything but timing (set by km_probe_set_timing): name,
 * labels, and the handler's fields. p->type must be set; the caller
 * reports "no handler" / "more than one handler" with
 * km_probe_handler_count_error. */
int km_probe_validate(const struct km_probe *p, const struct km_field_ctx *fc,
		      struct km_error *err);
int km_probe_handler_count_error(int count, const struct km_field_ctx *fc,
				 struct km_error *err);

/* Kubernetes name and label rules, exposed for other callers. */
bool km_is_dns1123_subdomain(const char *s);
/* NULL if valid, otherwise why not. */
const char *km_label_key_error(const char *key);
const char *km_label_value_error(const char *value);

/* ---- label selectors -------------------------------------------------------
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

struct km_selector;

/* KM_EINVAL with a message naming the position and the problem. */
int km_selector_parse(const char *s, struct km_arena *a,
		      struct km_selector **out, struct km_error *err);
/* Before parsing a selector from a stranger: at most max_bytes long and
 * at most max_requirements requirements (commas outside parentheses, plus
 * one), measured in one pass without allocating. 0, or KM_EINVAL naming
 * field and the limit's key (limits.maxSelectorBytes,
 * limits.maxSelectorRequirements). A parse costs its length, and every
 * match its requirements: the API refuses giant selectors first. */
int km_selector_check_size(const char *s, int64_t max_bytes,
			   int64_t max_requirements, const char *field,
			   struct km_error *err);
bool km_selector_matches(const struct km_selector *sel,
			 const struct km_kv *labels, size_t n);
bool km_selector_empty(const struct km_selector *sel);

/* ---- the API's form --------------------------------------------------------
 *
 * A probe definition between its two forms, struct km_probe and
 * kubemedic.v1.Probe. Shared by the API (requests in, answers out) and the
 * CLI (probes read from YAML go out as requests), so a probe means the
 * same on both sides. Everything is allocated in the arena given.
 */

/* Reads and validates pb (the kubelet's rules and kubemedic's, as
 * km_probe_validate); KM_EINVAL names the field as the .proto does
 * ("probe.http_get.port: ..."). Output-only fields are ignored. */
int km_probe_from_pb(const Kubemedic__V1__Probe *pb, struct km_arena *a,
		     struct km_probe *out, struct km_error *err);
/* The message for p, output-only fields (source, target, generation,
 * times) included; NULL on out-of-memory. */
Kubemedic__V1__Probe *km_probe_to_pb(const struct km_probe *p,
				     struct km_arena *a);

/* Epoch microseconds as a google.protobuf.Timestamp, in the arena; NULL on
 * out-of-memory. */
Google__Protobuf__Timestamp *km_pb_timestamp(struct km_arena *a, int64_t us);

#endif
