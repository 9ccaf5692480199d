/*
 * kubemedicd — start-up, the wait for a signal, and an orderly stop.
 *
 *   kubemedicd [--config FILE] [--listen HOST:PORT] [--db PATH]
 *              [--threads N] [--log-level LEVEL] [--log-format FORMAT]
 *              [--stats-interval DURATION]
 *              [--kubeconfig FILE [--context NAME] | --in-cluster]
 *
 * Kubernetes: --kubeconfig (or --in-cluster) watches one cluster whose
 * targets are unprefixed ("pod/default/web-0"); the config's clusters:
 * watches several, each target prefixed with its cluster's name
 * ("prod-eu:pod/default/web-0"). Not both. Every kubeconfig is read before
 * anything starts: one that cannot be is a configuration error.
 *
 * Flags override the config file. Exit status: 0 after a clean stop on
 * SIGTERM/SIGINT, 1 when something failed at run time, 2 for a usage or
 * configuration error.
 *
 * While it runs, the main thread only waits for signals. It also logs the
 * probe engine's and the writer's counters in one "prober stats" line:
 * every log.statsInterval (--stats-interval), and at once on SIGUSR1.
 *
 * Start order: the store (migrations, the config's probes), the health
 * hub (current health loaded from the store), the probe engine with every
 * stored probe, then the API.
 *
 * Stop order (each step needs the next one's services until it is done):
 * health NOT_SERVING and no new calls, in-flight calls finish within the
 * grace period, streams end (and with them their hub subscriptions); the
 * probe engine stops (running checks abandoned, children killed); the
 * store commits what is queued and the hub announces it; the hub stops;
 * then the database is closed.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "km_api.h"
#include "km_auth.h"
#include "km_config.h"
#include "km_health.h"
#include "km_kube.h"
#include "km_recovery.h"
#include "km_kube_review.h"
#include "km_kubeconfig.h"
#include "km_log.h"
#include "km_prober.h"
#include "km_store.h"
#include "km_time.h"

#define KM_VERSION "0.1.0"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kubemedicd [options]\n"
		"\n"
		"  -c, --config FILE      YAML configuration (docs/config.md)\n"
		"  -l, --listen HOST:PORT gRPC address (default 127.0.0.1:7070;"
		" port 0 = any)\n"
		"  -d, --db PATH          SQLite database (default "
		"kubemedic.db)\n"
		"  -t, --threads N        gRPC worker threads (default: cores)\n"
		"      --log-level LEVEL  debug, info, warn or error\n"
		"      --log-format FMT   logfmt or json\n"
		"      --stats-interval D log \"prober stats\" every D "
		"(e.g. 10s; 0 = off)\n"
		"      --kubeconfig FILE  watch the cluster of FILE's context "
		"(kubectl's format)\n"
		"      --context NAME     that context instead of its "
		"current-context\n"
		"      --in-cluster       watch the cluster kubemedicd runs in "
		"(its service account)\n"
		"                         (several clusters: the config's "
		"clusters:, not both)\n"
		"  -V, --version          print the version and exit\n"
		"  -h, --help             this text\n");
}

struct flags {
	const char *config, *listen, *db, *log_level, *log_format;
	const char *kubeconfig, *context;
	bool in_cluster;
	int threads;
	int64_t stats_interval_ms; /* -1 = not given */
};

static int parse_flags(int argc, char **argv, struct flags *f)
{
	enum {
		LOG_LEVEL = 256,
		LOG_FORMAT,
		STATS_INTERVAL,
		KUBECONFIG,
		CONTEXT,
		IN_CLUSTER
	};
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, 'l'},
		{"db", required_argument, NULL, 'd'},
		{"threads", required_argument, NULL, 't'},
		{"log-level", required_argument, NULL, LOG_LEVEL},
		{"log-format", required_argument, NULL, LOG_FORMAT},
		{"stats-interval", required_argument, NULL, STATS_INTERVAL},
		{"kubeconfig", required_argument, NULL, KUBECONFIG},
		{"context", required_argument, NULL, CONTEXT},
		{"in-cluster", no_argument, NULL, IN_CLUSTER},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	memset(f, 0, sizeof *f);
	f->threads = -1;
	f->stats_interval_ms = -1;
	while ((c = getopt_long(argc, argv, "c:l:d:t:Vh", opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'c': f->config = optarg; break;
		case 'l': f->listen = optarg; break;
		case 'd': f->db = optarg; break;
		case LOG_LEVEL: f->log_level = optarg; break;
		case LOG_FORMAT: f->log_format = optarg; break;
		case KUBECONFIG: f->kubeconfig = optarg; break;
		case CONTEXT: f->context = optarg; break;
		case IN_CLUSTER: f->in_cluster = true; break;
		case STATS_INTERVAL:
			if (km_duration_parse(optarg, &f->stats_interval_ms) ||
			    (f->stats_interval_ms > 0 &&
			     f->stats_interval_ms < 1000) ||
			    f->stats_interval_ms > 86400000) {
				fprintf(stderr,
					"kubemedicd: --stats-interval: "
					"want 0 (off) or a duration "
					"from 1s to 1d, got \"%s\"\n",
					optarg);
				return 2;
			}
			break;
		case 't':
			errno = 0;
			f->threads = (int)strtol(optarg, &end, 10);
			if (errno || *end || f->threads < 1 ||
			    f->threads > 1024) {
				fprintf(stderr,
					"kubemedicd: --threads: want a "
					"number from 1 to 1024, got "
					"\"%s\"\n",
					optarg);
				return 2;
			}
			break;
		case 'V': printf("kubemedicd %s\n", KM_VERSION); exit(0);
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return 2;
		}
	}
	if (f->in_cluster && f->kubeconfig) {
		fprintf(stderr, "kubemedicd: --in-cluster and --kubeconfig "
				"name two clusters; give one\n");
		return 2;
	}
	if (f->context && !f->kubeconfig) {
		fprintf(stderr, "kubemedicd: --context needs --kubeconfig\n");
		return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "kubemedicd: unexpected argument \"%s\"\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

/* Hands every stored probe to the hub (its target's thresholds and
 * labels; the target's verdict was loaded from the store) and to the
 * engine. */
static int schedule_stored_probes(struct km_store *store,
				  struct km_health *health,
				  struct km_prober *pr, size_t *count,
				  struct km_error *err)
{
	struct km_reader *r = NULL;
	struct km_arena a;
	char *after = NULL;
	bool more = true;
	int rc;

	*count = 0;
	km_arena_init(&a, 65536);
	rc = km_reader_open(store, &r, err);
	while (!rc && more) {
		struct km_probe *v;
		size_t n;

		rc = km_reader_list_probes(r, after, 1000, NULL, NULL, &a, &v,
					   &n, &more, err);
		for (size_t i = 0; !rc && i < n; i++) {
			char name[300];
			struct km_health_target t = {
				.id = v[i].target_id,
				.name = name,
				.labels = v[i].labels,
				.n_labels = v[i].n_labels,
				.success_threshold = v[i].success_threshold,
				.failure_threshold = v[i].failure_threshold,
				.created_us = v[i].create_us,
			};

			snprintf(name, sizeof name, "probe//%s", v[i].name);
			rc = km_health_track(health, &t);
			if (!rc)
				rc = km_prober_upsert(pr, &v[i]);
			if (rc)
				km_error_set(err, rc, "scheduling probe %s",
					     v[i].name);
			else
				(*count)++;
		}
		if (!rc && n) {
			/* The cursor must outlive the arena reset. */
			char *next = strdup(v[n - 1].name);

			free(after);
			after = next;
			if (!after)
				rc = km_error_set(err, KM_ENOMEM,
						  "out of memory");
		}
		km_arena_reset(&a);
	}
	free(after);
	km_reader_close(r);
	km_arena_free(&a);
	return rc;
}

static int apply_flags(struct km_config *cfg, const struct flags *f)
{
	if (f->listen && !*f->listen) {
		fprintf(stderr, "kubemedicd: --listen: empty address\n");
		return 2;
	}
	if (f->listen)
		cfg->listen = f->listen;
	if (f->db)
		cfg->db_path = f->db;
	if (f->threads > 0)
		cfg->threads = f->threads;
	if (f->stats_interval_ms >= 0)
		cfg->stats_interval_ms = f->stats_interval_ms;
	if (f->log_level) {
		int l = km_log_level_parse(f->log_level);
		if (l < 0) {
			fprintf(stderr,
				"kubemedicd: --log-level: one of debug, "
				"info, warn, error\n");
			return 2;
		}
		cfg->log_level = l;
	}
	if (f->log_format) {
		if (strcmp(f->log_format, "json") &&
		    strcmp(f->log_format, "logfmt")) {
			fprintf(stderr, "kubemedicd: --log-format: logfmt or "
					"json\n");
			return 2;
		}
		cfg->log_json = !strcmp(f->log_format, "json");
	}
	if (cfg->threads <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->threads = n > 0 ? (int)n : 1;
	}
	return 0;
}

/* The engine's and the writer's counters, in one line. Counters and the
 * lag_* percentiles are totals since start: a reader takes differences;
 * the interval_* fields cover the runs started since the previous line. */
static void log_stats(struct km_prober *pr, struct km_health *health,
		      struct km_store *store, struct km_kube *kube)
{
	struct km_prober_stats p;
	struct km_prober_interval iv;
	struct km_health_stats h;
	struct km_store_stats s;

	km_prober_get_stats(pr, &p, &iv);
	km_health_get_stats(health, &h);
	km_store_get_stats(store, &s);
	km_log(KM_LOG_INFO, "prober stats", "probes", KM_I(p.probes), "runs",
	       KM_I(p.runs), "ok", KM_I(p.results_ok), "failed",
	       KM_I(p.results_failed), "in_flight", KM_I(p.in_flight),
	       "skipped_overlap", KM_I(p.skipped_overlap), "skipped_late",
	       KM_I(p.skipped_late), "check_errors", KM_I(p.check_errors),
	       "schedule_errors", KM_I(p.schedule_errors), "offload_jobs",
	       KM_I(p.offload_jobs), "offload_abandoned",
	       KM_I(p.offload_abandoned), "offload_stuck",
	       KM_I(p.offload_stuck), "exec_refused", KM_I(p.exec_refused),
	       "lag_p50_us", KM_I(p.lag_p50_us), "lag_p99_us",
	       KM_I(p.lag_p99_us), "lag_max_us", KM_I(p.lag_max_us),
	       "interval_runs", KM_I(iv.runs), "interval_lag_p50_us",
	       KM_I(iv.lag_p50_us), "interval_lag_p99_us", KM_I(iv.lag_p99_us),
	       "interval_lag_max_us", KM_I(iv.lag_max_us), "transitions",
	       KM_I(h.transitions), "published", KM_I(h.published),
	       "unknown_dropped", KM_I(h.unknown_dropped), "subscribers",
	       KM_I(h.subscribers), "subscriber_overflows", KM_I(h.overflows),
	       "results_queued", KM_I(s.results_queued), "results_written",
	       KM_I(s.results_written), "results_dropped",
	       KM_I(s.results_dropped), "queue_depth",
	       KM_I(s.result_queue_depth), "control_queue_max",
	       KM_I(s.control_queue_max_depth), "batches", KM_I(s.batches),
	       "commit_failures", KM_I(s.commit_failures),
	       "transitions_retried", KM_I(s.transitions_retried),
	       "writer_idle", KM_I(s.writer_idle), "writer_boosts",
	       KM_I(s.writer_boosts), NULL);
	if (kube) {
		struct km_kube_stats k;

		km_kube_get_stats(kube, &k);
		km_log(KM_LOG_INFO, "kube stats", "clusters", KM_I(k.clusters),
		       "objects", KM_I(k.objects), "targets", KM_I(k.targets),
		       "observations", KM_I(k.observations), "lists",
		       KM_I(k.lists), "watches", KM_I(k.watches), "events",
		       KM_I(k.events), "bookmarks", KM_I(k.bookmarks), "gone",
		       KM_I(k.gone), "failures", KM_I(k.failures),
		       "bad_objects", KM_I(k.bad_objects), "requests",
		       KM_I(k.requests), "throttled", KM_I(k.throttled),
		       "failed_requests", KM_I(k.failed_requests), "bytes",
		       KM_I(k.bytes), "mirrored_probes", KM_I(k.mirrored),
		       "mirror_skipped", KM_I(k.mirror_skipped),
		       "mirror_over_limit", KM_I(k.mirror_over_limit), NULL);
	}
}

/* The store's health, from its writer thread: commits failing over and
 * over turn grpc.health.v1 for "" NOT_SERVING until one succeeds (the
 * store logs the fault itself). */
static void store_health(void *api, bool writable, const struct km_error *why)
{
	(void)why;
	km_api_set_serving(api, KM_API_NS_STORAGE, writable);
}

/* The probe engine's loop watchdog: a loop that does not turn is the
 * daemon's health too (its own reason; once stopping has begun, the
 * API's own reason keeps it NOT_SERVING whatever this says). */
static void on_watchdog(void *api, bool turning)
{
	km_api_set_serving(api, KM_API_NS_LOOP, turning);
}

/* The clusters to watch and their kubeconfigs, read before anything
 * starts: a file that cannot be read, or that is refused, is a
 * configuration error. The options point into kc[]. */
struct kube_plan {
	struct km_kubeconfig *kc;
	struct km_kube_cluster_options *cl;
	size_t n;
};

static void kube_plan_free(struct kube_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		km_kubeconfig_free(&p->kc[i]);
	free(p->kc);
	free(p->cl);
	memset(p, 0, sizeof *p);
}

/* Either the one cluster of --kubeconfig (or --in-cluster), unprefixed,
 * or the config's clusters:, each named; never both, so that a target's
 * name always says which cluster it is from. Nothing without either.
 * Returns 0, or 2 with the message printed. */
static int kube_plan(const struct km_config *cfg, const struct flags *f,
		     struct kube_plan *p)
{
	bool flag = f->kubeconfig || f->in_cluster;
	size_t n = flag ? 1 : cfg->n_clusters;

	memset(p, 0, sizeof *p);
	if (flag && cfg->n_clusters) {
		fprintf(stderr,
			"kubemedicd: %s watches one cluster whose targets "
			"are unprefixed, and %s's clusters: names %zu whose "
			"targets are prefixed; give one or the other (name "
			"this cluster in clusters:)\n",
			f->kubeconfig ? "--kubeconfig" : "--in-cluster",
			cfg->path ? cfg->path : "the config", cfg->n_clusters);
		return 2;
	}
	if (!n)
		return 0;
	p->kc = calloc(n, sizeof *p->kc);
	p->cl = calloc(n, sizeof *p->cl);
	if (!p->kc || !p->cl) {
		fprintf(stderr, "kubemedicd: out of memory\n");
		kube_plan_free(p);
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		const struct km_config_cluster *c = flag ? NULL
							 : &cfg->clusters[i];
		const char *file = flag ? f->kubeconfig : c->kubeconfig;
		const char *context = flag ? f->context : c->context;
		struct km_kubeconfig *kc = &p->kc[i];
		struct km_error err = {0};
		int rc;

		rc = file ? km_kubeconfig_load(kc, file, context, &err)
			  : km_kubeconfig_in_cluster(kc, NULL, &err);
		p->n = i + 1; /* kc[i] is freed whatever happened */
		if (rc) {
			if (c)
				fprintf(stderr,
					"kubemedicd: cluster \"%s\": %s\n",
					c->name, err.msg);
			else
				fprintf(stderr, "kubemedicd: %s\n", err.msg);
			kube_plan_free(p);
			return 2;
		}
		p->cl[i] = (struct km_kube_cluster_options){
			.name = c ? c->name : "",
			.ns = c ? c->ns : NULL,
			.label_selector = c ? c->label_selector : NULL,
			.client =
				{
					.server = kc->server,
					.ca_pem = kc->ca_pem,
					.ca_len = kc->ca_pem_len,
					.cert_pem = kc->client_cert_pem,
					.cert_len = kc->client_cert_pem_len,
					.key_pem = kc->client_key_pem,
					.key_len = kc->client_key_pem_len,
					.token = kc->token,
					.token_file = kc->token_file,
					.insecure_skip_tls_verify =
						kc->insecure_skip_tls_verify,
					.tls_server_name = kc->tls_server_name,
					.user_agent = "kubemedic/" KM_VERSION,
				},
		};
	}
	return 0;
}

/* Watches the planned clusters through km_kube (nothing when there are
 * none): each with its own client and informers, so one that is down
 * never stalls the others. */
static int start_kube(const struct km_config *cfg, const struct kube_plan *p,
		      struct km_store *store, struct km_health *health,
		      struct km_prober *prober, struct km_kube **out,
		      struct km_error *err)
{
	struct km_kube_options ko = {
		.store = store,
		.health = health,
		.prober = prober,
		.clusters = p->cl,
		.n_clusters = p->n,
		.rules =
			{
				.lease_grace_us =
					cfg->kube_lease_grace_ms * 1000,
				.pod_startup_grace_us =
					cfg->kube_pod_startup_grace_ms * 1000,
			},
		.control_plane_period_ms = cfg->kube_control_plane_period_ms,
	};
	int rc;

	*out = NULL;
	if (!p->n)
		return 0;
	rc = km_kube_start(&ko, out, err);
	for (size_t i = 0; !rc && i < p->n; i++) {
		const struct km_kubeconfig *kc = &p->kc[i];

		km_log(KM_LOG_INFO, "watching a cluster", "cluster",
		       *p->cl[i].name ? p->cl[i].name : "(default)", "server",
		       kc->server, "context",
		       kc->context ? kc->context : "(in-cluster)", "user",
		       kc->user ? kc->user : "", "namespace",
		       p->cl[i].ns ? p->cl[i].ns : "(all)", NULL);
	}
	return rc;
}

/* Waits for a signal in set other than SIGUSR1 and returns it; logs the
 * stats on SIGUSR1 and every interval_ms (0 = never). */
static int wait_for_stop(const sigset_t *set, int64_t interval_ms,
			 struct km_prober *pr, struct km_health *health,
			 struct km_store *store, struct km_kube *kube)
{
	int64_t next = km_mono_ns() + interval_ms * 1000000;

	for (;;) {
		int64_t left = next - km_mono_ns();
		struct timespec ts = {.tv_sec = left / 1000000000,
				      .tv_nsec = left % 1000000000};
		int sig;

		if (interval_ms > 0 && left <= 0) {
			log_stats(pr, health, store, kube);
			next += interval_ms * 1000000;
			continue;
		}
		sig = interval_ms > 0 ? sigtimedwait(set, NULL, &ts)
				      : sigwaitinfo(set, NULL);
		if (sig == SIGUSR1)
			log_stats(pr, health, store, kube);
		else if (sig > 0)
			return sig;
		/* < 0: EAGAIN (the interval is up) or EINTR. */
	}
}

/* The Lease's namespace when the config names none: the pod's own (the
 * service account's namespace file), else "default". */
static const char *lease_namespace(char *buf, size_t len)
{
	FILE *f = fopen("/var/run/secrets/kubernetes.io/serviceaccount/"
			"namespace",
			"re");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return n ? buf : "default";
}

/* This replica's identity for leader election: its host name (the pod's
 * name, in a cluster) and a random suffix, unique per process as
 * client-go's. */
static const char *replica_identity(char *buf, size_t len)
{
	char host[64] = "kubemedicd";
	unsigned char r[6] = {0};
	FILE *f = fopen("/dev/urandom", "re");

	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	if (!f || fread(r, 1, sizeof r, f) != sizeof r) {
		/* Unique enough without: the pid and the clock. */
		long long t = (long long)km_now_us() ^ getpid();

		memcpy(r, &t, sizeof r);
	}
	if (f)
		fclose(f);
	snprintf(buf, len, "%s_%02x%02x%02x%02x%02x%02x", host, r[0], r[1],
		 r[2], r[3], r[4], r[5]);
	return buf;
}

int main(int argc, char **argv)
{
	struct km_config cfg;
	struct flags f;
	struct km_error err = {0};
	struct km_api *api = NULL;
	struct km_store *store = NULL;
	struct km_prober *prober = NULL;
	struct km_health *health = NULL;
	struct km_health_options ho = {0};
	struct km_prober_options po = {0};
	size_t scheduled = 0;
	struct km_store_options so = {0};
	struct km_api_options ao = {0};
	struct km_auth *auth = NULL;
	struct km_auth_options aopt = {0};
	struct km_kube *kube = NULL;
	struct km_recovery_engine *recovery = NULL;
	char lease_ns[64], identity[129];
	struct kube_plan plan = {0};
	struct km_kube_reviewer *reviewer = NULL;
	sigset_t stop;
	int rc, sig = 0;
	char addr[300];

	rc = parse_flags(argc, argv, &f);
	if (rc)
		return rc;
	km_config_defaults(&cfg);
	if (f.config && km_config_load(&cfg, f.config, &err)) {
		fprintf(stderr, "kubemedicd: %s\n", err.msg);
		km_config_free(&cfg);
		return 2;
	}
	rc = apply_flags(&cfg, &f);
	if (!rc && km_config_check_listen(&cfg, &err)) {
		fprintf(stderr, "kubemedicd: %s\n", err.msg);
		rc = 2;
	}
	if (!rc)
		rc = kube_plan(&cfg, &f, &plan);
	if (!rc && cfg.auth_kube_tokens && !plan.n) {
		fprintf(stderr, "kubemedicd: auth.kubernetesTokens: tokens are "
				"reviewed by a cluster's API server: give "
				"--kubeconfig, --in-cluster or clusters:\n");
		rc = 2;
	}
	if (rc) {
		kube_plan_free(&plan);
		km_config_free(&cfg);
		return rc;
	}
	km_log_setup(cfg.log_level, cfg.log_json);

	/* Signals are taken by wait_for_stop() below, so every thread started
	 * from here on must have them blocked. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Before any thread: what exec probes leave is ours to reap. */
	if (km_prober_init_process(&err)) {
		fprintf(stderr, "kubemedicd: %s\n", err.msg);
		kube_plan_free(&plan);
		km_config_free(&cfg);
		return 1;
	}

	rc = 1;
	/* Bearer tokens the token file does not know, reviewed by the
	 * (first) cluster's API server. */
	if (cfg.auth_kube_tokens) {
		if (km_kube_reviewer_new(&plan.cl[0].client, &reviewer, &err))
			goto fail;
		aopt.review = km_kube_token_review;
		aopt.review_arg = reviewer;
	}
	/* And the role of who they are, asked of the same cluster's RBAC. */
	if (cfg.auth_kube_access) {
		aopt.access_review = km_kube_access_review;
		aopt.access_review_arg = reviewer;
		for (int r = KM_ROLE_VIEWER; r <= KM_ROLE_ADMIN; r++)
			if (cfg.auth_kube_access_as[r].verb)
				aopt.access[r] = &cfg.auth_kube_access_as[r];
		aopt.access_allowed_ms = cfg.auth_kube_access_allowed_ms;
		aopt.access_denied_ms = cfg.auth_kube_access_denied_ms;
	}
	aopt.token_file = cfg.auth_token_file;
	aopt.local_user = cfg.auth_local_user;
	aopt.local_role = cfg.auth_local_role;
	aopt.bindings = cfg.auth_bindings;
	aopt.n_bindings = cfg.n_auth_bindings;
	aopt.health_role = cfg.auth_health_role;
	if (km_auth_open(&aopt, &auth, &err))
		goto fail;
	if (km_api_create(&api, &err))
		goto fail;
	so.path = cfg.db_path;
	so.sync_normal = cfg.db_sync_normal;
	so.result_queue = (size_t)cfg.result_queue;
	so.commit_delay_us = cfg.db_commit_delay_ms * 1000;
	so.flush_us = cfg.db_history_flush_ms * 1000;
	so.max_open = (size_t)cfg.db_max_open_targets;
	so.results_retention_us = cfg.results_retention_ms * 1000;
	so.minutes_retention_us = cfg.minutes_retention_ms * 1000;
	so.hours_retention_us = cfg.hours_retention_ms * 1000;
	so.transitions_retention_us = cfg.transitions_retention_ms * 1000;
	so.recoveries_retention_us = cfg.recoveries_retention_ms * 1000;
	so.audit_retention_us = cfg.audit_retention_ms * 1000;
	so.retention_interval_ms = cfg.retention_interval_ms;
	so.on_health = store_health;
	so.health_arg = api;
	if (km_store_open(&so, &store, &err))
		goto fail;
	if (km_store_sync_config_probes(store, cfg.probes, cfg.n_probes,
					&err)) {
		km_error_prefix(&err, "config probes");
		goto fail;
	}
	ho.store = store;
	ho.flap_low = cfg.flap_low;
	ho.flap_high = cfg.flap_high;
	if (km_health_open(&ho, &health, &err))
		goto fail;
	po.health = health;
	po.policy = &cfg.api_policy;
	po.max_exec_children = (int)cfg.max_exec_children;
	po.watchdog_ms = cfg.watchdog_ms;
	po.on_watchdog = on_watchdog;
	po.watchdog_arg = api;
	if (km_prober_start(&po, &prober, &err) ||
	    schedule_stored_probes(store, health, prober, &scheduled, &err))
		goto fail;
	if (start_kube(&cfg, &plan, store, health, prober, &kube, &err))
		goto fail;
	if (kube) {
		struct km_recovery_options ro = {
			.store = store,
			.health = health,
			.kube = kube,
			.workers = cfg.recovery_workers,
			.queue_max = (size_t)cfg.recovery_queue_max,
			.max_attempts = cfg.recovery_max_attempts,
			.verify_window_ms = cfg.recovery_verify_window_ms,
			/* Kubernetes counts grace in whole seconds. */
			.pod_grace_s = cfg.recovery_pod_grace_ms < 0
					       ? -1
					       : (cfg.recovery_pod_grace_ms +
						  999) / 1000,
			.drain_timeout_ms = cfg.recovery_drain_timeout_ms,
			.drain_retry_ms = cfg.recovery_drain_retry_ms,
			.dry_run = cfg.recovery_dry_run,
			.policies = cfg.policies,
			.n_policies = cfg.n_policies,
			.max_policy_targets =
				(size_t)cfg.recovery_max_policy_targets,
			.budget = &cfg.recovery_budget,
		};

		if (cfg.leader_election) {
			ro.lease_ns =
				cfg.lease_ns ? cfg.lease_ns
					     : lease_namespace(lease_ns,
							       sizeof lease_ns);
			ro.lease_name = cfg.lease_name;
			ro.identity =
				cfg.lease_identity
					? cfg.lease_identity
					: replica_identity(identity,
							   sizeof identity);
			ro.lease_duration_ms = cfg.lease_duration_ms;
			ro.renew_deadline_ms = cfg.renew_deadline_ms;
			ro.retry_period_ms = cfg.retry_period_ms;
			km_log(KM_LOG_INFO, "recovery: leader election",
			       "lease", ro.lease_name, "namespace", ro.lease_ns,
			       "identity", ro.identity, NULL);
		}
		if (km_recovery_start(&ro, &recovery, &err)) {
			km_error_prefix(&err, "recovery");
			goto fail;
		}
	}
	ao.listen = cfg.listen;
	ao.threads = cfg.threads;
	ao.max_recv_message_bytes = cfg.max_recv_message_bytes;
	ao.health = health;
	ao.prober = prober;
	ao.probe_policy = &cfg.api_policy;
	ao.auth = auth;
	ao.tls_cert_file = cfg.tls_cert_file;
	ao.tls_key_file = cfg.tls_key_file;
	ao.tls_client_ca_file = cfg.tls_client_ca_file;
	ao.tls_require_client_cert = cfg.tls_require_client_cert;
	ao.limits = &cfg.limits;
	ao.recovery = recovery;
	if (km_api_start(api, store, &ao, &err))
		goto fail;

	/* The bound address, with the real port when asked for port 0. */
	snprintf(addr, sizeof addr, "%.*s:%d",
		 (int)(strrchr(cfg.listen, ':')
			       ? strrchr(cfg.listen, ':') - cfg.listen
			       : (long)strlen(cfg.listen)),
		 cfg.listen, km_api_port(api));
	km_log(KM_LOG_INFO, "kubemedicd started", "version", KM_VERSION,
	       "listen", addr, "db", cfg.db_path, "threads", KM_I(cfg.threads),
	       "schema", KM_I(km_store_schema_version(store)), "probes",
	       KM_I(scheduled), NULL);

	sig = wait_for_stop(&stop, cfg.stats_interval_ms, prober, health, store,
			    kube);
	km_log(KM_LOG_INFO, "stopping", "signal", strsignal(sig), "grace_ms",
	       KM_I(cfg.shutdown_grace_ms), NULL);
	km_api_stop(api, cfg.shutdown_grace_ms);
	rc = 0;
fail:
	if (rc)
		km_log(KM_LOG_ERROR, "kubemedicd failed", "err", err.msg, NULL);
	km_api_stop(api, 0);
	/* On km-kube's loop: stopped while the loop runs. What it had in
	 * flight stays recorded, taken back at the next start. */
	km_recovery_stop(recovery);
	/* The clusters' last changes are flushed to the store. */
	km_kube_stop(kube);
	kube_plan_free(&plan); /* km_kube copied what it needs */
	/* No API call can reach the prober now; its last results and
	 * transitions go to the store, which commits them (and the hub
	 * announces them to no one by now), then the hub stops. */
	km_prober_stop(prober);
	if (store) {
		struct km_error ferr = {0};

		if (km_store_flush(store, &ferr))
			km_log(KM_LOG_ERROR, "last writes failed", "err",
			       ferr.msg, NULL);
	}
	km_health_close(health);
	km_store_close(store);
	km_api_destroy(api);
	km_auth_close(auth);
	km_kube_reviewer_free(reviewer);
	km_config_free(&cfg);
	if (!rc)
		km_log(KM_LOG_INFO, "stopped", NULL);
	return rc;
}
