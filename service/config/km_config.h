/*
 * km_config — kubemedicd's configuration file (YAML, read with libyaml).
 *
 *   listen: 127.0.0.1:7070
 *   threads: 0                      # gRPC worker threads; 0 = cores
 *   maxReceiveMessageBytes: 262144
 *   shutdownGracePeriod: 10s
 *   database:
 *     path: kubemedic.db
 *     synchronous: full             # full | normal
 *     resultQueue: 65536
 *     commitDelay: 100ms            # results wait this long to share a commit
 *     historyFlush: 10s             # open runs and rollups written this often
 *     maxOpenTargets: 1000000       # targets with history open in memory
 *   retention:
 *     runs: 30d                     # probe history as runs ("results" too)
 *     minuteRollups: 90d
 *     hourRollups: 730d
 *     transitions: 730d
 *     recoveries: 730d              # recoveries, their events, storms
 *     audit: 400d
 *     interval: 1m
 *   log:
 *     level: info                   # debug | info | warn | error
 *     format: logfmt                # logfmt | json
 *     statsInterval: 0              # "prober stats" line; 0 = off
 *   flapDetection:                  # percent of state changes over the
 *     lowThreshold: 5               # last 21 results (Nagios' defaults)
 *     highThreshold: 20
 *   api:                            # what probes created through the API
 *     allowExec: false              # may touch (config probes are trusted)
 *     allowFile: false
 *     filePathPrefixes: []          # directories open to file probes
 *     probeNetworks:                # deny wins; by default everything but
 *       allow: [0.0.0.0/0, ::/0]    # link-local and metadata addresses
 *       deny: [169.254.0.0/16, fe80::/10, 100.100.100.200/32,
 *              fd00:ec2::254/128]
 *   prober:
 *     watchdog: 10s                 # loop stalled this long: NOT_SERVING
 *     maxExecChildren: 64           # exec probes running at once
 *   limits:                         # what a caller of the API may ask
 *     defaultDeadline: 10s          # (km_limits.h; every key in
 *     maxDeadline: 60s              #  docs/config.md)
 *     maxSelectorBytes: 4096
 *     maxSelectorRequirements: 64
 *     maxWatchTargets: 100
 *     maxProbes: 10000
 *     maxStreams: 1000
 *     maxStreamsPerPeer: 100
 *     maxCallsPerConnection: 100
 *     maxRequestMemoryBytes: 4194304
 *   kube:                           # how Kubernetes objects are judged
 *     leaseGrace: 40s               # a node's Lease older: UNHEALTHY
 *     podStartupGrace: 5m           # a pod not ready after: UNHEALTHY
 *     controlPlanePeriod: 10s       # /livez and /readyz asked this often
 *   clusters:                       # Kubernetes clusters watched, each
 *     - name: prod-eu               # named: its targets are
 *       kubeconfig: /etc/km/eu.yaml # "prod-eu:pod/default/web-0"
 *       context: eu                 # else its current-context
 *       namespace: shop             # else every namespace
 *       labelSelector: team=shop    # else every object
 *     - name: here
 *       inCluster: true             # instead of kubeconfig
 *   recovery:                       # restart until healthy, carefully
 *     workers: 4                    # actions in flight at once
 *     queueMax: 1024
 *     maxAttempts: 5                # API attempts per recovery
 *     verifyWindow: 2m              # healthy again within: VERIFIED
 *     dryRun: false                 # record what would be done, only
 *     maxPolicyTargets: 100000
 *     podGracePeriod: 30s           # deletions and evictions; else the
 *                                   # pod's terminationGracePeriodSeconds
 *     drain: {timeout: 5m, retryInterval: 5s}
 *     leaderElection:               # one replica acts per cluster
 *       enabled: true
 *       namespace: kubemedic        # of the Lease; else the pod's own
 *       name: kubemedic-recovery
 *       leaseDuration: 15s          # renewDeadline 10s, retryPeriod 2s
 *     budget:
 *       maxConcurrent: 20
 *       maxConcurrentPerCluster: 10
 *       rates: {cordon: {rate: 1/min, burst: 1}}   # per cluster
 *       globalRates: {drain: {rate: 1/h}}          # across clusters
 *       storm: {share: 40, minUnhealthy: 3}
 *     policies:
 *       - name: crashloop
 *         match: {kinds: [pod], namespaces: [shop]}
 *         trigger: {unhealthyFor: 30s, reasons: [CrashLoopBackOff]}
 *         action: restart_pod
 *         escalation: {after: 3, ladder: [rollout_restart, cordon]}
 *         maxAttempts: 3
 *         backoff: {initial: 10s, max: 5m, resetAfter: 10m}
 *   probes:                         # Kubernetes Probe fields, plus name,
 *     - name: checkout-http         # labels, host and the file probe
 *       labels: {team: shop}
 *       httpGet: {host: 127.0.0.1, port: 8080, path: /healthz}
 *       periodSeconds: 5
 *       failureThreshold: 3
 *
 * Every key is documented with its default in docs/config.md. An unknown
 * key, a value of the wrong type, or a probe that fails validation is an
 * error naming the file, line and key. Probes loaded here are marked
 * KM_SOURCE_CONFIG. km_config_load (the daemon's file) also checks what
 * probes name on this machine: a caFile must be a regular, readable PEM
 * file of at most 1 MiB (km_probe_check_ca_file); km_config_load_string
 * and km_config_parse_probes do not (their text may describe another
 * machine: the CLI's probe files are the daemon's business).
 *
 * Ownership: everything a km_config points to lives in its arena and is
 * released by km_config_free.
 */
#ifndef KM_CONFIG_H
#define KM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_arena.h"
#include "km_auth.h"
#include "km_budget.h"
#include "km_error.h"
#include "km_limits.h"
#include "km_model.h"
#include "km_policy.h"
#include "km_probe.h"

/* The most entries of clusters: (each costs a connection and an informer
 * per resource). */
#define KM_CONFIG_MAX_CLUSTERS 256

/* One entry of clusters:. Checked here: the name (an RFC 1123 label, at
 * most 63 bytes, unique: it prefixes the cluster's targets), exactly one
 * of kubeconfig and in_cluster, context only with kubeconfig, at most one
 * in_cluster entry, the namespace (an RFC 1123 label) and the label
 * selector's syntax (km_selector_parse). The kubeconfig file itself is
 * read by main (km_kubeconfig_load). Paths are taken as written: relative
 * ones from the working directory, as every path of the file. */
struct km_config_cluster {
	const char *name;
	const char *kubeconfig;     /* NULL with in_cluster */
	const char *context;        /* NULL: the file's current-context */
	bool in_cluster;            /* the service account's cluster */
	const char *ns;             /* NULL: every namespace */
	const char *label_selector; /* NULL: every object */
};

struct km_config {
	struct km_arena arena;
	const char *path; /* the file read, or NULL */

	const char *listen;             /* "127.0.0.1:7070" */
	int threads;                    /* 0 = number of online CPUs */
	int64_t max_recv_message_bytes; /* 256 KiB */
	int64_t shutdown_grace_ms;      /* 10 s */

	const char *db_path;        /* "kubemedic.db" */
	bool db_sync_normal;        /* synchronous: normal */
	int64_t result_queue;       /* 65536 */
	int64_t db_commit_delay_ms; /* 100 ms */
	int64_t db_history_flush_ms; /* 10 s: open runs and rollups */
	int64_t db_max_open_targets; /* 1,000,000 */

	/* Retention, each 0 = keep forever. */
	int64_t results_retention_ms;     /* runs: 30 days */
	int64_t minutes_retention_ms;     /* minute rollups: 90 days */
	int64_t hours_retention_ms;       /* hour rollups: 730 days */
	int64_t transitions_retention_ms; /* 730 days */
	int64_t recoveries_retention_ms;  /* recoveries, storms: 730 days */
	int64_t retention_interval_ms;    /* 1 minute */

	int log_level;             /* enum km_log_level; info */
	bool log_json;             /* format: json */
	int64_t stats_interval_ms; /* 0 = no periodic stats line */

	double flap_low, flap_high; /* percent: 5 and 20 */

	/* The listener's security (docs/SECURITY.md). */
	bool insecure;             /* listen beyond loopback without TLS */
	const char *tls_cert_file; /* NULL: no TLS */
	const char *tls_key_file;
	const char *tls_client_ca_file; /* NULL: no client certificates */
	bool tls_require_client_cert;   /* clientCertificates: require */
	const char *auth_token_file;    /* NULL: no bearer tokens */
	const char *auth_local_user;    /* "local"; NULL: no local identity */
	int auth_local_role;            /* enum km_role; viewer */
	int auth_health_role;           /* viewer; none = anyone */
	bool auth_kube_tokens; /* bearer tokens reviewed by the cluster */
	/* auth.kubernetesAccessReview: the role of a token the cluster
	 * reviewed, from its RBAC (SubjectAccessReview); off: bindings only.
	 * What is asked for each role (index enum km_role; verb NULL: that
	 * role is not asked); strings static or in the arena. */
	bool auth_kube_access;
	struct km_auth_access auth_kube_access_as[KM_ROLE_ADMIN + 1];
	int64_t auth_kube_access_allowed_ms; /* cacheAllowed: 1 min */
	int64_t auth_kube_access_denied_ms;  /* cacheDenied: 10 s */
	struct km_auth_binding *auth_bindings;
	size_t n_auth_bindings;
	int64_t audit_retention_ms; /* 400 days; 0 = keep forever */

	struct km_limits limits; /* KM_LIMITS_DEFAULTS */

	/* api: what probes created through the API may touch; arrays in the
	 * arena (or km_probe_policy_defaults' static ones). */
	struct km_probe_policy api_policy;

	int64_t watchdog_ms;       /* prober.watchdog: 10 s; 0 = off */
	int64_t max_exec_children; /* prober.maxExecChildren: 64 */

	/* kube: the rules' tunables (km_kube_rules.h), for every cluster. */
	int64_t kube_lease_grace_ms;          /* 40 s */
	int64_t kube_pod_startup_grace_ms;    /* 5 min */
	int64_t kube_control_plane_period_ms; /* 10 s */

	/* clusters: in the arena; none by default. */
	struct km_config_cluster *clusters;
	size_t n_clusters;

	struct km_probe *probes;
	size_t n_probes;

	/* recovery: the engine's knobs (km_recovery_options), the safety
	 * budget (km_budget.h) and the automatic policies (km_policy.h),
	 * each checked by its module's rules; policies in the arena. */
	int recovery_workers;              /* 4 */
	int64_t recovery_queue_max;        /* 1024 */
	int recovery_max_attempts;         /* per recovery: 5 */
	int64_t recovery_verify_window_ms; /* 2 min */
	int64_t recovery_pod_grace_ms;     /* -1: each pod's own grace period */
	int64_t recovery_drain_timeout_ms; /* 5 min */
	int64_t recovery_drain_retry_ms;   /* 5 s: a blocked eviction's wait */
	bool recovery_dry_run;             /* record, never act */
	int64_t recovery_max_policy_targets;     /* 100,000 */
	struct km_budget_config recovery_budget; /* km_budget_config_defaults */
	struct km_policy_config *policies;       /* none by default */
	size_t n_policies;
	/* recovery.leaderElection: off unless enabled; namespace NULL: the
	 * pod's own (in a cluster), else "default"; identity NULL: the
	 * host's name and a random suffix (main makes it). */
	bool leader_election;
	const char *lease_ns, *lease_name; /* name: "kubemedic-recovery" */
	const char *lease_identity;
	int64_t lease_duration_ms, renew_deadline_ms, retry_period_ms;
};

/* A listen address beyond loopback needs TLS, or `insecure: true` said in
 * so many words: KM_EINVAL with a message saying which and why. (The
 * listen address may come from a flag, so main calls this after them.) */
int km_config_check_listen(const struct km_config *c, struct km_error *err);

/* Fills c with the defaults above (and an empty arena). */
void km_config_defaults(struct km_config *c);
/* Reads the YAML file at path over the defaults already in c. */
int km_config_load(struct km_config *c, const char *path, struct km_error *err);
/* The same from memory; name is used in messages. */
int km_config_load_string(struct km_config *c, const char *yaml, size_t len,
			  const char *name, struct km_error *err);
void km_config_free(struct km_config *c);

/* Probes alone, for `kubemedic probes create -f FILE`: the document may be
 * one probe (a mapping), a list of probes, or a whole config file (only
 * its probes: are taken). Allocated in a. */
int km_config_parse_probes(const char *yaml, size_t len, const char *name,
			   struct km_arena *a, struct km_probe **out, size_t *n,
			   struct km_error *err);

/* The CLI's client configuration ($KUBEMEDIC_CONFIG, else
 * ~/.config/kubemedic/client.yaml): where kubemedicd is and how to reach
 * it, as the CLI's flags say it. Every key is optional; unknown keys are
 * errors.
 *
 *   server: kubemedic.example.com:7070
 *   tlsCA: /etc/kubemedic/ca.crt
 *   tlsCert: ~/.kubemedic/alice.crt     # mutual TLS
 *   tlsKey: ~/.kubemedic/alice.key
 *   tokenFile: ~/.kubemedic/token       # or a bearer token
 *   tlsServerName: kubemedic            # if not the server's host
 */
struct km_client_config {
	const char *server;
	const char *tls_ca_file, *tls_cert_file, *tls_key_file;
	const char *token_file;
	const char *server_name;
};
int km_config_parse_client(const char *yaml, size_t len, const char *name,
			   struct km_arena *a, struct km_client_config *out,
			   struct km_error *err);

#endif
