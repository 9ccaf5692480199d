/*
 * km_probe — what a probe is, shared by the daemon and the CLI: the rules
 * a probe definition must follow (the kubelet's and kubemedic's own),
 * Kubernetes label selectors, and the conversion between a definition
 * (struct km_probe, km_model.h) and the API's kubemedic.v1.Probe.
 *
 * Nothing here runs a probe or keeps state: the probe engine is prober/,
 * the verdicts are health/. Every function is pure or allocates only in
 * the arena it is given, except the two that read a CA file
 * (km_ca_file_read over km_file.h, km_probe_check_ca_file); all are
 * thread-safe.
 */
#ifndef KM_PROBE_H
#define KM_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>

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

/* ---- what probes may touch -------------------------------------------------
 *
 * Probes declared in the config file are trusted. A probe that comes
 * through the API (any source but KM_SOURCE_CONFIG) is held to a policy,
 * set by the config file's api: section (docs/config.md):
 *  - exec probes only with allow_exec, file probes only with allow_file;
 *  - a file probe's path must lie under one of file_prefixes (none: no
 *    file probe at all). Checked here on the path as written, "." and
 *    ".." resolved by name (no ".." climbs out), and again by the file
 *    check, off the loop, on the path realpath(3) makes of it (no
 *    symbolic link leads out);
 *  - HTTP, TCP and gRPC probes reach only addresses in an allow network
 *    and in no deny network (deny wins). Checked here for a host that is
 *    an IP address (in any form inet_aton(3) reads: "2852039166" is
 *    169.254.169.254); the checks apply the same rule to every address
 *    they connect to, after name resolution and for every redirect
 *    (km_probe_policy_addr), so a name cannot lead around it.
 * The defaults: no exec, no file, allow everything but link-local and the
 * clouds' metadata addresses (KM_POLICY_DEFAULT_DENY). Loopback stays
 * allowed.
 */

struct km_cidr {
	int family;       /* AF_INET or AF_INET6 */
	int bits;         /* prefix length: 0-32 or 0-128 */
	uint8_t addr[16]; /* network byte order; AF_INET uses 4 bytes */
};

#define KM_POLICY_MAX_PREFIXES 64
#define KM_POLICY_MAX_NETWORKS 256
#define KM_POLICY_DEFAULT_DENY \
	"169.254.0.0/16, fe80::/10, 100.100.100.200/32, fd00:ec2::254/128"

/* Borrowed arrays: owned by whoever filled the struct (the config's
 * arena, km_probe_policy_copy's, or static defaults). */
struct km_probe_policy {
	bool allow_exec;
	bool allow_file;
	const char *const *file_prefixes; /* absolute, normalised */
	size_t n_file_prefixes;
	const struct km_cidr *allow, *deny;
	size_t n_allow, n_deny;
};

/* The defaults above (static storage). */
void km_probe_policy_defaults(struct km_probe_policy *pol);
/* A deep copy of src in a. KM_ENOMEM. */
int km_probe_policy_copy(struct km_arena *a, const struct km_probe_policy *src,
			 struct km_probe_policy *dst);

/* "10.0.0.0/8", "fd00::/8", or an address alone (/32, /128). NULL if s is
 * one, else why not ("bits set beyond the prefix: 10.0.0.0/8?"). */
const char *km_cidr_parse(const char *s, struct km_cidr *out);
/* "10.0.0.0/8" into buf (at least 64 bytes). */
void km_cidr_format(const struct km_cidr *c, char *buf, size_t n);

/* 0 if pol lets a probe reach sa (an AF_INET or AF_INET6 address; an
 * IPv4-mapped IPv6 address is judged as its IPv4 address), else KM_EPERM
 * with the rule in why ("169.254.169.254 is in 169.254.0.0/16, denied by
 * api.probeNetworks"). why may be NULL. */
int km_probe_policy_addr(const struct km_probe_policy *pol,
			 const struct sockaddr *sa, char *why, size_t n);

/* path with "." and empty components dropped and ".." resolved by name,
 * into out (n bytes; PATH_MAX is enough). False if path is not absolute,
 * ".." would climb above "/", or out is too small. */
bool km_path_normalize(const char *path, char *out, size_t n);
/* True if path is prefix or lies under it (component by component:
 * "/data" holds "/data/x", not "/database"). Both normalised. */
bool km_path_under(const char *path, const char *prefix);

/* What the API calls before it stores p: 0, or KM_EPERM with a message
 * naming the field (in the API's words) and the config key that would
 * allow it. Touches no file system. Does not validate (km_probe_validate
 * does). */
int km_probe_check_policy(const struct km_probe *p,
			  const struct km_probe_policy *pol,
			  struct km_error *err);

/* ---- CA files ---------------------------------------------------------------
 *
 * A probe's caFile is read by the probe engine off its loop; these say
 * whether a file will do: a regular file (a FIFO would block whoever opens
 * it; a device is not a bundle), readable, at most KM_CA_FILE_MAX bytes,
 * holding at least one PEM certificate. Opened with O_NONBLOCK only after
 * stat(2) said it is a regular file, and checked again once open.
 */
#define KM_CA_FILE_MAX (1 << 20)

/* The bundle at path into *pem (malloc'd, NUL-terminated; *len bytes
 * without the NUL), and its identity into st (if not NULL). KM_EINVAL
 * (not a regular file, too large, no certificate), KM_ENOTFOUND, KM_EIO,
 * KM_ENOMEM, with a message starting with the path. Blocks on the file
 * system: never call it on an event loop. */
int km_ca_file_read(const char *path, char **pem, size_t *len, struct stat *st,
		    struct km_error *err);
/* For a probe with a ca_file: km_ca_file_read, the message naming the
 * field ("probes[0].httpGet.caFile: ..."); 0 for others. KM_EINVAL for
 * every refusal (the caller's input). Blocks as km_ca_file_read does. */
int km_probe_check_ca_file(const struct km_probe *p,
			   const struct km_field_ctx *fc, struct km_error *err);

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
