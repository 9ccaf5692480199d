/*
 * km_model — the records kubemedic keeps: probe definitions, targets,
 * results, transitions and recoveries.
 *
 * These are plain C structs shared by every layer (config, API mapping,
 * storage, prober, CLI). Strings and arrays inside them are borrowed: whoever
 * filled the struct owns them, usually through a km_arena. Integer enum
 * values are stored in the database and equal the API's enum numbers, so
 * they never change meaning.
 */
#ifndef KM_MODEL_H
#define KM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Same numbers as kubemedic.v1.HealthState. */
enum km_state {
	KM_STATE_UNKNOWN = 1,
	KM_STATE_HEALTHY = 2,
	KM_STATE_UNHEALTHY = 3,
	KM_STATE_DEGRADED = 4,
	KM_STATE_DELETED = 5, /* only as a transition's to_state */
};

/* Same numbers as kubemedic.v1.TargetKind. */
enum km_kind {
	KM_KIND_PROBE = 1,
	KM_KIND_NODE = 2,
	KM_KIND_POD = 3,
	KM_KIND_SERVICE = 4,
	KM_KIND_DEPLOYMENT = 5,
	KM_KIND_STATEFULSET = 6,
	KM_KIND_DAEMONSET = 7,
	KM_KIND_CONTROL_PLANE = 8,
};
#define KM_KIND_MAX KM_KIND_CONTROL_PLANE

/* "probe", "node", ...; NULL for a value out of range. */
const char *km_kind_name(int kind);
/* The inverse; 0 if unknown. */
int km_kind_parse(const char *name, size_t len);
const char *km_state_name(int state); /* "HEALTHY", ... */

/* Same numbers as kubemedic.v1.ErrorClass. */
enum km_error_class {
	KM_EC_NONE = 0,
	KM_EC_TIMEOUT = 1,
	KM_EC_REFUSED = 2,
	KM_EC_DNS = 3,
	KM_EC_TLS = 4,
	KM_EC_HTTP_STATUS = 5,
	KM_EC_GRPC_STATUS = 6,
	KM_EC_EXIT_CODE = 7,
	KM_EC_SIGNAL = 8,
	KM_EC_FILE_MISSING = 9,
	KM_EC_FILE_STALE = 10,
	KM_EC_FILE_TOO_SMALL = 11,
	KM_EC_NETWORK = 12,
	KM_EC_INTERNAL = 13,
	KM_EC_CONDITION = 14,
};
#define KM_EC_MAX KM_EC_CONDITION

struct km_kv {
	const char *key;
	const char *value;
};

enum km_probe_type {
	KM_PROBE_HTTP = 1,
	KM_PROBE_TCP = 2,
	KM_PROBE_GRPC = 3,
	KM_PROBE_EXEC = 4,
	KM_PROBE_FILE = 5,
};
/* The highest probe type: the prober's table of check types has a row
 * for each up to it. */
#define KM_PROBE_TYPE_MAX KM_PROBE_FILE

enum km_probe_source {
	KM_SOURCE_API = 1,
	KM_SOURCE_CONFIG = 2,
};

/* A probe definition. Timing is kept in milliseconds; the kubelet's
 * defaults and rules are applied by km_probe_set_timing and
 * km_probe_validate (service/probe/km_probe.h), which the config loader
 * and the API both use. */
struct km_probe {
	int64_t id;
	const char *name;
	struct km_kv *labels;
	size_t n_labels;

	enum km_probe_type type;
	const char *host;      /* http, tcp, grpc */
	int port;              /* http, tcp, grpc */
	const char *path;      /* http: URL path; file: file path */
	bool https;            /* http */
	bool tls_verify;       /* http, https only */
	const char *ca_file;   /* http, https only; NULL = system store */
	struct km_kv *headers; /* http */
	size_t n_headers;
	const char *service; /* grpc health service name */
	const char **argv;   /* exec */
	size_t argc;
	struct km_kv *env; /* exec */
	size_t n_env;
	const char *workdir; /* exec */
	int64_t min_size;    /* file */
	int64_t max_age_s;   /* file; 0 = any age */

	int64_t initial_delay_ms;
	int64_t timeout_ms;
	int64_t period_ms;
	int32_t success_threshold;
	int32_t failure_threshold;

	/* Kept by the store. */
	enum km_probe_source source;
	const char *created_by; /* the API caller's user; NULL: the config */
	int64_t generation;
	int64_t create_us, update_us;
	int64_t target_id;
};

struct km_target {
	int64_t id;
	const char *name; /* "[cluster:]kind/namespace/name" */
	const char *cluster;
	int kind; /* enum km_kind */
	const char *ns;
	const char *object_name;
	const char *uid;
	const char *owner;
	const char *node;
	struct km_kv *labels;
	size_t n_labels;
	int state; /* enum km_state */
	bool flapping;
	int64_t state_since_us;
	int64_t last_transition_seq; /* 0 = none */
	int64_t created_us;
	int64_t deleted_us; /* 0 = live */
};

struct km_result {
	int64_t id; /* assigned by the store */
	int64_t target_id;
	int64_t started_us; /* Unix epoch microseconds */
	int64_t duration_us;
	bool success;
	int error_class; /* enum km_error_class */
	int32_t status_code;
	const char *message; /* may be NULL; stored up to 10 KiB */
};
#define KM_RESULT_MESSAGE_MAX 10240

struct km_transition {
	int64_t seq; /* assigned by the store */
	int64_t target_id;
	int64_t at_us;
	int from_state, to_state; /* enum km_state */
	bool flapping;
	const char *cause;
	/* Not stored (the row has target_id): handed through to the store's
	 * on_transition callback so listeners need no lookup. May be NULL. */
	const char *target_name;
	const struct km_kv *labels;
	size_t n_labels;
	/* Stored transitions read for a watch's replay: their target's
	 * identity as it is now (NULL otherwise). */
	const char *target_uid, *target_owner, *target_node;
};

/* Same numbers as kubemedic.v1.RecoveryAction. */
enum km_recovery_action {
	KM_ACTION_RESTART_POD = 1,
	KM_ACTION_ROLLOUT_RESTART = 2,
	KM_ACTION_CORDON = 3,
	KM_ACTION_UNCORDON = 4,
	KM_ACTION_DRAIN = 5,
};
#define KM_ACTION_MAX KM_ACTION_DRAIN

/* Same numbers as kubemedic.v1.RecoveryPhase. A recovery starts REQUESTED
 * (or is decided at once: SKIPPED, DRY_RUN), is QUEUED for a worker,
 * DISPATCHED to the API server (again after a failed attempt), then
 * SUCCEEDED (accepted) or FAILED (after the last attempt); a success is
 * then VERIFIED or NOT_RECOVERED by the target's health. */
enum km_recovery_phase {
	KM_PHASE_REQUESTED = 1,
	KM_PHASE_QUEUED = 2,
	KM_PHASE_DISPATCHED = 3,
	KM_PHASE_SUCCEEDED = 4,
	KM_PHASE_FAILED = 5,
	KM_PHASE_VERIFIED = 6,
	KM_PHASE_NOT_RECOVERED = 7,
	KM_PHASE_CANCELLED = 8,
	KM_PHASE_SKIPPED = 9,
	KM_PHASE_DRY_RUN = 10,
};
#define KM_PHASE_MAX KM_PHASE_DRY_RUN

/* Whether a recovery in phase can change no more: FAILED, VERIFIED,
 * NOT_RECOVERED, CANCELLED, SKIPPED, DRY_RUN. SUCCEEDED is not final (it
 * awaits verification); nor is a value out of range. */
bool km_recovery_phase_final(int phase);
/* Lowercase names for logs and the CLI: "restart_pod", "rollout_restart",
 * "cordon", "uncordon", "drain"; "requested", "queued", "dispatched",
 * "succeeded", "failed", "verified", "not_recovered", "cancelled",
 * "skipped", "dry_run". NULL for a value out of range. */
const char *km_action_name(int action);
const char *km_phase_name(int phase);
/* The inverses, of name[0..len) (exactly, lowercase); 0 if unknown. */
int km_action_parse(const char *name, size_t len);
int km_phase_parse(const char *name, size_t len);

/* One recovery (storage/km_store.h keeps them). Strings are borrowed:
 * owned by an arena or the caller; NULL reads as "". */
struct km_recovery {
	int64_t id; /* assigned by the store */
	int64_t target_id;
	const char *target;     /* the target's full name */
	const char *cluster;    /* the target's cluster ("" = the only one) */
	const char *target_uid; /* the object acted on, and only it */
	int action;             /* enum km_recovery_action */
	int phase;              /* enum km_recovery_phase */
	const char *reason;
	const char *requester;       /* an identity, or "policy:<name>" */
	const char *policy;          /* "" for a manual request */
	const char *idempotency_key; /* "" = none */
	bool dry_run;
	bool force;
	int32_t attempts;
	const char *skip_rule;  /* the rule that refused it (SKIPPED) */
	const char *last_error; /* the last answer's words */
	int32_t http_status;    /* of the last answer; 0 = none */
	int64_t cause_seq;      /* the transition that caused it; 0 = none */
	/* Epoch microseconds; 0 = not (yet). */
	int64_t created_us, updated_us;
	int64_t dispatched_us; /* the last attempt sent */
	int64_t finished_us;   /* SUCCEEDED or FAILED */
	int64_t verified_us;   /* VERIFIED or NOT_RECOVERED */
	int64_t not_before_us; /* the next attempt's earliest time */
	int64_t seq;           /* its newest event's */
};

/* One change of a recovery (a WatchRecoveries event). r is the recovery
 * as that change left it, as far as the event says: its identity (id,
 * target, action, reason, requester, ...) with the event's phase,
 * attempts, http_status, last_error (the event's message), updated_us
 * (= at_us) and seq; skip_rule only in a SKIPPED event. Its
 * dispatched_us, finished_us, verified_us and not_before_us are 0: read
 * the recovery for them. */
struct km_recovery_event {
	int64_t seq;
	int64_t at_us;
	struct km_recovery r;
};

/* The storm guard's groups (kubemedic.v1.StormGroup): a policy's matched
 * targets, or a zone's nodes. */
enum km_storm_group {
	KM_STORM_POLICY = 1,
	KM_STORM_ZONE = 2,
};

/* A storm: while on, automatic recoveries in its group stop (see
 * service/recovery/km_budget.h). Strings are borrowed, as above. */
struct km_storm {
	int64_t id;                   /* assigned by the store */
	int group;                    /* enum km_storm_group */
	const char *name;             /* the policy, or the zone */
	const char *cluster;          /* "" = the only one */
	int64_t unhealthy, total;     /* at its start */
	int share_pct;                /* a storm is MORE than this share */
	const char *why;              /* in words */
	int64_t refused;              /* automatic recoveries it refused */
	int64_t started_us, ended_us; /* epoch µs; ended 0 = on */
	const char *end_note;         /* "" or what cut it short */
};

/* A copy of e and every string it points to in one malloc'd block: free()
 * releases it. NULL strings are copied as "". NULL on out-of-memory. */
struct km_recovery_event *
km_recovery_event_dup(const struct km_recovery_event *e);

struct km_arena;
/* Deep copy of src into dst, every string and array in the arena. Returns
 * 0 or KM_ENOMEM. */
int km_probe_copy(struct km_arena *a, const struct km_probe *src,
		  struct km_probe *dst);

/* A copy of t and everything it points to (cause, target name, labels) in
 * one malloc'd block: free() releases it. NULL on out-of-memory. */
struct km_transition *km_transition_dup(const struct km_transition *t);

/* True when a and b define the same probe: labels, handler and timing.
 * Ignores id, source, generation and times. Labels compare as a map (any
 * order); headers, argv and env in order. */
bool km_probe_spec_equal(const struct km_probe *a, const struct km_probe *b);

/* The parts of a target name "[cluster:]kind/namespace/name", pointing into
 * the parsed string (not NUL-terminated: use the lengths). */
struct km_target_name {
	const char *cluster, *ns, *name;
	size_t cluster_len, ns_len, name_len;
	int kind;
};

/* Kubernetes names (RFC 1123): a label is [a-z0-9]([-a-z0-9]*[a-z0-9])?,
 * 1 to 63 bytes (namespaces, policies, clusters); a subdomain is labels
 * joined by dots, at most 253 bytes (most objects' names). NULL is none. */
bool km_dns1123_label(const char *s);
bool km_dns1123_subdomain(const char *s);

/* Splits and checks a target name: a known kind, a non-empty object name,
 * no stray '/' or ':'. Returns 0 or KM_EINVAL with a message in why (at
 * least 128 bytes). */
int km_target_name_parse(const char *s, struct km_target_name *out, char *why,
			 size_t why_len);

/* A target name's parts as C strings: what a lookup in a cluster's cache
 * needs ("" for no cluster or no namespace). */
struct km_target_parts {
	int kind; /* enum km_kind */
	char cluster[128], ns[256], name[256];
};
/* km_target_name_parse into *out; a part longer than its buffer is
 * KM_EINVAL too ("target name too long"). */
int km_target_name_split(const char *s, struct km_target_parts *out, char *why,
			 size_t why_len);

#endif
