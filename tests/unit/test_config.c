/*
 * The configuration file: defaults, every key, every probe type, every
 * class of error (with the file, line and key in the message), durations,
 * km_config_parse_probes' three document shapes, and a Kubernetes probe
 * pasted from a pod spec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "km_config.h"
#include "km_log.h"
#include "km_probe.h"
#include "km_time.h"
#include "km_test.h"

#ifndef KM_SOURCE_DIR
#error "KM_SOURCE_DIR must name the source tree (set by CMake)"
#endif

#define DAY_MS (24LL * 3600 * 1000)

static int load(struct km_config *c, const char *yaml, struct km_error *err)
{
	return km_config_load_string(c, yaml, strlen(yaml), "test.yaml", err);
}

/* Loads yaml, which must be accepted, into a fresh config. */
static void load_ok(struct km_config *c, const char *yaml)
{
	struct km_error err = {0};

	km_config_defaults(c);
	if (load(c, yaml, &err) != 0) {
		fprintf(stderr, "unexpected error: %s\n", err.msg);
		fail();
	}
}

/* Loads yaml, which must be refused with code, and checks that the message
 * holds every string of the NULL-terminated list. */
static void check_error(int code, const char *yaml, ...)
{
	struct km_config c;
	struct km_error err = {0};
	const char *want;
	va_list ap;
	int rc;

	km_config_defaults(&c);
	rc = load(&c, yaml, &err);
	if (rc != code)
		fprintf(stderr, "rc %d (want %d) for:\n%s\nmessage: %s\n", rc,
			code, yaml, err.msg);
	assert_int_equal(rc, code);
	assert_int_equal(err.code, code);
	va_start(ap, yaml);
	while ((want = va_arg(ap, const char *))) {
		if (!strstr(err.msg, want))
			fprintf(stderr, "message \"%s\"\n lacks \"%s\"\n",
				err.msg, want);
		assert_non_null(strstr(err.msg, want));
	}
	va_end(ap);
	/* Nothing of a refused file is taken. */
	assert_string_equal(c.listen, "127.0.0.1:7070");
	assert_int_equal(c.n_probes, 0);
	km_config_free(&c);
}

#define EXPECT_ERROR(yaml, ...) check_error(KM_EINVAL, yaml, __VA_ARGS__, NULL)

static void assert_defaults(const struct km_config *c)
{
	assert_null(c->path);
	assert_string_equal(c->listen, "127.0.0.1:7070");
	assert_int_equal(c->threads, 0);
	assert_int_equal(c->max_recv_message_bytes, 256 << 10);
	assert_int_equal(c->shutdown_grace_ms, 10000);
	assert_string_equal(c->db_path, "kubemedic.db");
	assert_false(c->db_sync_normal);
	assert_int_equal(c->result_queue, 65536);
	assert_int_equal(c->db_commit_delay_ms, 100);
	assert_int_equal(c->results_retention_ms, 30 * DAY_MS);
	assert_int_equal(c->minutes_retention_ms, 90 * DAY_MS);
	assert_int_equal(c->hours_retention_ms, 730 * DAY_MS);
	assert_int_equal(c->transitions_retention_ms, 730 * DAY_MS);
	assert_int_equal(c->recoveries_retention_ms, 730 * DAY_MS);
	assert_int_equal(c->db_history_flush_ms, 10000);
	assert_int_equal(c->db_max_open_targets, 1000000);
	assert_int_equal(c->retention_interval_ms, 60000);
	assert_int_equal(c->log_level, KM_LOG_INFO);
	assert_false(c->log_json);
	assert_int_equal(c->stats_interval_ms, 0);
	assert_null(c->probes);
	assert_int_equal(c->n_probes, 0);
	assert_false(c->api_policy.allow_exec);
	assert_false(c->api_policy.allow_file);
	assert_int_equal(c->api_policy.n_file_prefixes, 0);
	assert_int_equal(c->api_policy.n_allow, 2);
	assert_int_equal(c->api_policy.n_deny, 4);
	assert_int_equal(c->watchdog_ms, 10000);
	assert_int_equal(c->max_exec_children, 64);
	assert_int_equal(c->limits.default_deadline_ms, 10000);
	assert_int_equal(c->limits.max_deadline_ms, 60000);
	assert_int_equal(c->limits.max_selector_bytes, 4096);
	assert_int_equal(c->limits.max_selector_requirements, 64);
	assert_int_equal(c->limits.max_watch_targets, 100);
	assert_int_equal(c->limits.max_probes, 10000);
	assert_int_equal(c->limits.max_streams, 1000);
	assert_int_equal(c->limits.max_streams_per_peer, 100);
	assert_int_equal(c->limits.max_calls_per_connection, 100);
	assert_int_equal(c->limits.max_request_memory_bytes, 4 << 20);
	assert_int_equal(c->kube_lease_grace_ms, 40000);
	assert_int_equal(c->kube_pod_startup_grace_ms, 300000);
	assert_int_equal(c->kube_control_plane_period_ms, 10000);
	assert_null(c->clusters);
	assert_int_equal(c->n_clusters, 0);
}

static void test_defaults(void **state)
{
	static const char *const empty[] = {
		"",
		"\n\n",
		"# only a comment\n",
		"---\n",
		"---\n...\n",
		"~\n",
		"null",
		"retention:\nlog: ~\ndatabase: null\nprobes:\n",
	};
	struct km_config c;

	(void)state;
	km_config_defaults(&c);
	assert_defaults(&c);
	km_config_free(&c);
	for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
		load_ok(&c, empty[i]);
		assert_defaults(&c);
		km_config_free(&c);
	}
	/* NULL text is the empty file. */
	km_config_defaults(&c);
	assert_int_equal(km_config_load_string(&c, NULL, 0, NULL, NULL), 0);
	assert_defaults(&c);
	km_config_free(&c);
}

static const char full_config[] =
	"listen: 0.0.0.0:9090\n"
	"threads: 8\n"
	"maxReceiveMessageBytes: 1048576\n"
	"shutdownGracePeriod: 1m30s\n"
	"database:\n"
	"  path: /var/lib/kubemedic/km.db\n"
	"  synchronous: normal\n"
	"  resultQueue: 1024\n"
	"  commitDelay: 0\n"
	"  historyFlush: 30s\n"
	"  maxOpenTargets: 20000\n"
	"retention:\n"
	"  runs: 7d\n"
	"  minuteRollups: 14d\n"
	"  hourRollups: 0\n"
	"  recoveries: 100d\n"
	"  transitions: 0\n"
	"  interval: 250ms\n" /* refused: below 1s, replaced below */
	"log:\n"
	"  level: debug\n"
	"  format: json\n"
	"  statsInterval: 30s\n"
	"probes:\n"
	"  - name: checkout-http\n"
	"    labels: {team: shop}\n"
	"    httpGet: {host: 127.0.0.1, port: 8080, path: /healthz}\n"
	"    periodSeconds: 5\n"
	"    failureThreshold: 3\n";

static void test_full_config(void **state)
{
	struct km_config c;
	char *yaml = strdup(full_config);
	const struct km_probe *p;

	(void)state;
	memcpy(strstr(yaml, "250ms"), "5s   ", 5);
	load_ok(&c, yaml);
	free(yaml);
	assert_string_equal(c.listen, "0.0.0.0:9090");
	assert_int_equal(c.threads, 8);
	assert_int_equal(c.max_recv_message_bytes, 1048576);
	assert_int_equal(c.shutdown_grace_ms, 90000);
	assert_string_equal(c.db_path, "/var/lib/kubemedic/km.db");
	assert_true(c.db_sync_normal);
	assert_int_equal(c.result_queue, 1024);
	assert_int_equal(c.db_commit_delay_ms, 0);
	assert_int_equal(c.db_history_flush_ms, 30000);
	assert_int_equal(c.db_max_open_targets, 20000);
	assert_int_equal(c.results_retention_ms, 7 * DAY_MS);
	assert_int_equal(c.minutes_retention_ms, 14 * DAY_MS);
	assert_int_equal(c.hours_retention_ms, 0);
	assert_int_equal(c.recoveries_retention_ms, 100 * DAY_MS);
	assert_int_equal(c.transitions_retention_ms, 0);
	assert_int_equal(c.retention_interval_ms, 5000);
	assert_int_equal(c.log_level, KM_LOG_DEBUG);
	assert_true(c.log_json);
	assert_int_equal(c.stats_interval_ms, 30000);
	assert_int_equal(c.n_probes, 1);
	p = &c.probes[0];
	assert_string_equal(p->name, "checkout-http");
	assert_int_equal(p->n_labels, 1);
	assert_string_equal(p->labels[0].key, "team");
	assert_string_equal(p->labels[0].value, "shop");
	assert_int_equal(p->type, KM_PROBE_HTTP);
	assert_string_equal(p->host, "127.0.0.1");
	assert_int_equal(p->port, 8080);
	assert_string_equal(p->path, "/healthz");
	assert_false(p->https);
	assert_int_equal(p->period_ms, 5000);
	assert_int_equal(p->timeout_ms, 1000);
	assert_int_equal(p->initial_delay_ms, 0);
	assert_int_equal(p->success_threshold, 1);
	assert_int_equal(p->failure_threshold, 3);
	assert_int_equal(p->source, KM_SOURCE_CONFIG);
	km_config_free(&c);

	/* The interval's lower bound. */
	EXPECT_ERROR(full_config, "test.yaml:18:13: retention.interval: must "
				  "be between 1s and 1d, got \"250ms\"");
}

static void test_log_levels(void **state)
{
	static const struct {
		const char *word;
		int level;
	} levels[] = {{"debug", KM_LOG_DEBUG},
		      {"info", KM_LOG_INFO},
		      {"warn", KM_LOG_WARN},
		      {"error", KM_LOG_ERROR}};
	struct km_config c;
	char yaml[64];

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		snprintf(yaml, sizeof yaml, "log: {level: %s, format: logfmt}",
			 levels[i].word);
		load_ok(&c, yaml);
		assert_int_equal(c.log_level, levels[i].level);
		assert_false(c.log_json);
		km_config_free(&c);
	}
	EXPECT_ERROR("log:\n  level: verbose\n",
		     "test.yaml:2:10: log.level: Unsupported value: "
		     "\"verbose\": supported values: \"debug\", \"info\", "
		     "\"warn\", \"error\"");
	EXPECT_ERROR("log: {format: text}",
		     "log.format: Unsupported value: "
		     "\"text\": supported values: \"logfmt\", \"json\"");
	EXPECT_ERROR("log: {level: INFO}", "log.level: Unsupported value");
	EXPECT_ERROR("log: {statsInterval: 500ms}",
		     "test.yaml:1:22: "
		     "log.statsInterval: must be 0 (off) or between 1s and 1d, "
		     "got \"500ms\"");
	EXPECT_ERROR("log: {statsInterval: 2d}",
		     "log.statsInterval: must be 0 "
		     "(off) or between 1s and 1d, got \"2d\"");
	EXPECT_ERROR("log: {statsInterval: 10}",
		     "log.statsInterval: the "
		     "duration \"10\" needs a unit");
	load_ok(&c, "log: {statsInterval: 0}");
	assert_int_equal(c.stats_interval_ms, 0);
	km_config_free(&c);
	load_ok(&c, "log: {statsInterval: 1s}");
	assert_int_equal(c.stats_interval_ms, 1000);
	km_config_free(&c);
	EXPECT_ERROR("database: {commitDelay: 11s}",
		     "database.commitDelay: "
		     "must be at most 10s, got \"11s\"");
	EXPECT_ERROR("database: {commitDelay: 5}",
		     "database.commitDelay: the "
		     "duration \"5\" needs a unit");
	load_ok(&c, "database: {commitDelay: 250ms}");
	assert_int_equal(c.db_commit_delay_ms, 250);
	km_config_free(&c);
	EXPECT_ERROR("database: {synchronous: off}",
		     "database.synchronous: Unsupported value: \"off\": "
		     "supported values: \"full\", \"normal\"");
}

static void test_load_over_existing(void **state)
{
	struct km_config c;
	struct km_error err = {0};

	(void)state;
	load_ok(&c, "threads: 3\nlog: {format: json}\n");
	/* A second file overrides only what it says. */
	assert_int_equal(load(&c, "listen: 10.0.0.1:1\n", &err), 0);
	assert_int_equal(c.threads, 3);
	assert_true(c.log_json);
	assert_string_equal(c.listen, "10.0.0.1:1");
	/* A refused file changes nothing. */
	assert_int_equal(load(&c, "threads: 5\nlisten: nope\n", &err),
			 KM_EINVAL);
	assert_int_equal(c.threads, 3);
	assert_string_equal(c.listen, "10.0.0.1:1");
	km_config_free(&c);
	assert_defaults(&c);
}

/* ---- probes ------------------------------------------------------------ */

/* Loads one probe (given as the items of a "probes:" entry) and returns it
 * in *c's arena. */
static const struct km_probe *one_probe(struct km_config *c, const char *yaml)
{
	char *doc;

	assert_true(asprintf(&doc, "probes:\n  - %s", yaml) > 0);
	load_ok(c, doc);
	free(doc);
	assert_int_equal(c->n_probes, 1);
	assert_int_equal(c->probes[0].source, KM_SOURCE_CONFIG);
	return &c->probes[0];
}

static void test_probe_http(void **state)
{
	struct km_config c;
	const struct km_probe *p;

	(void)state;
	p = one_probe(&c, "name: shop.example\n"
			  "    labels:\n"
			  "      team: shop\n"
			  "      app.kubernetes.io/name: cart\n"
			  "      version: 2\n"
			  "      empty:\n"
			  "    httpGet:\n"
			  "      host: shop.example.com\n"
			  "      port: 8443\n"
			  "      path: /ready?full=1\n"
			  "      scheme: HTTPS\n"
			  "      tlsVerify: true\n"
			  "      caFile: /etc/ssl/shop-ca.pem\n"
			  "      httpHeaders:\n"
			  "        - name: Host\n"
			  "          value: shop.internal\n"
			  "        - {name: X-Empty}\n"
			  "    initialDelaySeconds: 5\n"
			  "    timeoutSeconds: 2\n"
			  "    periodSeconds: 20\n"
			  "    successThreshold: 2\n"
			  "    failureThreshold: 5\n");
	assert_string_equal(p->name, "shop.example");
	assert_int_equal(p->n_labels, 4);
	assert_string_equal(p->labels[1].key, "app.kubernetes.io/name");
	assert_string_equal(p->labels[2].value, "2");
	assert_string_equal(p->labels[3].value, "");
	assert_int_equal(p->type, KM_PROBE_HTTP);
	assert_string_equal(p->host, "shop.example.com");
	assert_int_equal(p->port, 8443);
	assert_string_equal(p->path, "/ready?full=1");
	assert_true(p->https);
	assert_true(p->tls_verify);
	assert_string_equal(p->ca_file, "/etc/ssl/shop-ca.pem");
	assert_int_equal(p->n_headers, 2);
	assert_string_equal(p->headers[0].key, "Host");
	assert_string_equal(p->headers[0].value, "shop.internal");
	assert_string_equal(p->headers[1].key, "X-Empty");
	assert_string_equal(p->headers[1].value, "");
	assert_int_equal(p->initial_delay_ms, 5000);
	assert_int_equal(p->timeout_ms, 2000);
	assert_int_equal(p->period_ms, 20000);
	assert_int_equal(p->success_threshold, 2);
	assert_int_equal(p->failure_threshold, 5);
	km_config_free(&c);

	/* Scheme spelled as the kubelet spells it; absent is HTTP. */
	p = one_probe(&c, "name: a\n    httpGet: {host: h, port: 80, "
			  "scheme: HTTP, tlsVerify: false}\n");
	assert_false(p->https);
	assert_false(p->tls_verify);
	assert_null(p->path);
	km_config_free(&c);
}

static void test_probe_tcp_grpc(void **state)
{
	struct km_config c;
	const struct km_probe *p;

	(void)state;
	p = one_probe(&c, "name: db\n    tcpSocket: {host: \"::1\", port: "
			  "5432}\n    periodMilliseconds: 100\n"
			  "    timeoutMilliseconds: 50\n");
	assert_int_equal(p->type, KM_PROBE_TCP);
	assert_string_equal(p->host, "::1");
	assert_int_equal(p->port, 5432);
	assert_int_equal(p->period_ms, 100);
	assert_int_equal(p->timeout_ms, 50);
	km_config_free(&c);

	p = one_probe(&c, "name: api\n    grpc:\n      host: 10.0.0.7\n"
			  "      port: 50051\n      service: shop.v1.Cart\n");
	assert_int_equal(p->type, KM_PROBE_GRPC);
	assert_string_equal(p->host, "10.0.0.7");
	assert_int_equal(p->port, 50051);
	assert_string_equal(p->service, "shop.v1.Cart");
	km_config_free(&c);

	p = one_probe(&c, "name: api\n    grpc: {host: h, port: 1}\n");
	assert_null(p->service);
	km_config_free(&c);
}

static void test_probe_exec_file(void **state)
{
	struct km_config c;
	const struct km_probe *p;

	(void)state;
	p = one_probe(&c, "name: script\n    exec:\n"
			  "      command: [/usr/local/bin/check, --fast, 3]\n"
			  "      env:\n"
			  "        - {name: MODE, value: strict}\n"
			  "        - name: _EMPTY\n"
			  "      workingDir: /srv\n");
	assert_int_equal(p->type, KM_PROBE_EXEC);
	assert_int_equal(p->argc, 3);
	assert_string_equal(p->argv[0], "/usr/local/bin/check");
	assert_string_equal(p->argv[1], "--fast");
	assert_string_equal(p->argv[2], "3");
	assert_null(p->argv[3]); /* NULL-terminated, as execv wants */
	assert_int_equal(p->n_env, 2);
	assert_string_equal(p->env[0].key, "MODE");
	assert_string_equal(p->env[0].value, "strict");
	assert_string_equal(p->env[1].key, "_EMPTY");
	assert_string_equal(p->env[1].value, "");
	assert_string_equal(p->workdir, "/srv");
	km_config_free(&c);

	p = one_probe(&c, "name: beat\n    file: {path: /run/beat, minSize: "
			  "10, maxAgeSeconds: 90}\n");
	assert_int_equal(p->type, KM_PROBE_FILE);
	assert_string_equal(p->path, "/run/beat");
	assert_int_equal(p->min_size, 10);
	assert_int_equal(p->max_age_s, 90);
	km_config_free(&c);
}

static void test_probe_list(void **state)
{
	struct km_config c;

	(void)state;
	load_ok(&c, "probes:\n"
		    "  - {name: a, tcpSocket: {host: h, port: 1}}\n"
		    "  - {name: b, file: {path: /x}}\n"
		    "  - {name: c, exec: {command: [\"true\"]}}\n");
	assert_int_equal(c.n_probes, 3);
	assert_string_equal(c.probes[0].name, "a");
	assert_string_equal(c.probes[1].name, "b");
	assert_string_equal(c.probes[2].name, "c");
	km_config_free(&c);

	/* Anchors and aliases share definitions. */
	load_ok(&c, "probes:\n"
		    "  - name: a\n"
		    "    labels: &team {team: shop}\n"
		    "    exec: &cmd {command: [\"true\"]}\n"
		    "  - name: b\n"
		    "    labels: *team\n"
		    "    exec: *cmd\n");
	assert_int_equal(c.n_probes, 2);
	assert_string_equal(c.probes[1].labels[0].value, "shop");
	assert_string_equal(c.probes[1].argv[0], "true");
	km_config_free(&c);
}

/* ---- errors ------------------------------------------------------------ */

static void test_flap_detection(void **state)
{
	struct km_config c;

	(void)state;
	km_config_defaults(&c);
	assert_true(c.flap_low == 5 && c.flap_high == 20);
	km_config_free(&c);
	load_ok(&c, "flapDetection: {lowThreshold: 10, highThreshold: 40}\n");
	assert_true(c.flap_low == 10 && c.flap_high == 40);
	km_config_free(&c);
	EXPECT_ERROR("flapDetection: {lowThreshold: 30, highThreshold: 30}\n",
		     "test.yaml:1",
		     "lowThreshold (30) must be below "
		     "highThreshold (30)");
	EXPECT_ERROR("flapDetection: {highThreshold: 101}\n",
		     "flapDetection.highThreshold");
	EXPECT_ERROR("flapDetection: {low: 1}\n", "unknown key \"low\"");
}

static void test_unknown_keys(void **state)
{
	(void)state;
	EXPECT_ERROR("retention:\n  results: 1d\n  foo: 1\n",
		     "test.yaml:3:3: unknown key \"foo\" in retention (known: "
		     "runs, results, minuteRollups, hourRollups, transitions, "
		     "recoveries, audit, interval)");
	EXPECT_ERROR("retention:\n  results: 1d\n  runs: 2d\n",
		     "retention.results: an old name of retention.runs; give "
		     "one of them");
	EXPECT_ERROR("threads: 1\nlistn: a:1\n",
		     "test.yaml:2:1: unknown key \"listn\" at the top level "
		     "(known: listen, insecure, tls, auth, threads, "
		     "maxReceiveMessageBytes, shutdownGracePeriod, database, "
		     "retention, log, flapDetection, api, prober, probes, "
		     "limits, kube, clusters, recovery)");
	EXPECT_ERROR("max_receive_message_bytes: 1\n",
		     "unknown key \"max_receive_message_bytes\"",
		     "did you mean \"maxReceiveMessageBytes\"?");
	EXPECT_ERROR("database: {Path: x}\n",
		     "test.yaml:1:12: unknown key "
		     "\"Path\" in database",
		     "did you mean \"path\"?");
	EXPECT_ERROR("log: {colour: true}\n",
		     "unknown key \"colour\" in log "
		     "(known: level, format, statsInterval)");
	EXPECT_ERROR("probes:\n  - name: a\n    periodSecond: 3\n",
		     "test.yaml:3:5: unknown key \"periodSecond\" in probes[0] "
		     "(known: name, labels, httpGet,",
		     "did you mean \"periodSeconds\"?");
	EXPECT_ERROR("probes:\n  - name: a\n    httpGet: {host: h, port: 1, "
		     "url: /x}\n",
		     "test.yaml:3:33: unknown key \"url\" in "
		     "probes[0].httpGet (known: host, port, path, scheme, "
		     "httpHeaders, tlsVerify, caFile)");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x]}\n"
		     "    terminationGracePeriodSeconds: 5\n",
		     "test.yaml:4:5: unknown key "
		     "\"terminationGracePeriodSeconds\" in probes[0]",
		     "it does not apply");
	EXPECT_ERROR("probes:\n  - name: a\n    exec:\n      command: [x]\n"
		     "      env:\n        - name: A\n          valueFrom: {}\n",
		     "test.yaml:7:11: unknown key \"valueFrom\" in "
		     "probes[0].exec.env[0] (known: name, value)",
		     "outside pods");
	EXPECT_ERROR("probes:\n  - name: a\n    tcpSocket: {host: h, port: 1, "
		     "timeout: 3}\n",
		     "unknown key \"timeout\" in "
		     "probes[0].tcpSocket (known: host, port)");
	EXPECT_ERROR("probes:\n  - name: a\n    grpc: {port: 1, svc: x}\n",
		     "unknown key \"svc\" in probes[0].grpc (known: host, "
		     "port, service)");
	EXPECT_ERROR("probes:\n  - name: a\n    file: {path: /x, age: 3}\n",
		     "unknown key \"age\" in probes[0].file (known: path, "
		     "minSize, maxAgeSeconds)");
	EXPECT_ERROR("base: &b {threads: 1}\n<<: *b\n", "unknown key \"base\"");
	EXPECT_ERROR("<<: {threads: 1}\n", "unknown key \"<<\"",
		     "merge keys are not supported");
	EXPECT_ERROR("[a]: 1\n", "test.yaml:1:1: expected a key (a string) at "
				 "the top level, got a list");
}

/* The networks of a list as text, "a,b,c". */
static void nets_text(const struct km_cidr *v, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && o < cap; i++) {
		char one[64];

		km_cidr_format(&v[i], one, sizeof one);
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "",
				      one);
	}
}

/* api: every key, its default, and its bad values. */
static void test_api_section(void **state)
{
	struct km_config c;
	char text[512];

	(void)state;
	km_config_defaults(&c);
	nets_text(c.api_policy.allow, c.api_policy.n_allow, text, sizeof text);
	assert_string_equal(text, "0.0.0.0/0,::/0");
	nets_text(c.api_policy.deny, c.api_policy.n_deny, text, sizeof text);
	assert_string_equal(text, "169.254.0.0/16,fe80::/10,"
				  "100.100.100.200/32,fd00:ec2::254/128");
	km_config_free(&c);

	load_ok(&c, "api:\n"
		    "  allowExec: true\n"
		    "  allowFile: true\n"
		    "  filePathPrefixes: [/var/lib/beats/, /srv//x/./y, /]\n"
		    "  probeNetworks:\n"
		    "    allow: [10.0.0.0/8, \"fd00::/8\"]\n"
		    "    deny: [10.9.0.0/16]\n");
	assert_true(c.api_policy.allow_exec);
	assert_true(c.api_policy.allow_file);
	assert_int_equal(c.api_policy.n_file_prefixes, 3);
	assert_string_equal(c.api_policy.file_prefixes[0], "/var/lib/beats");
	assert_string_equal(c.api_policy.file_prefixes[1], "/srv/x/y");
	assert_string_equal(c.api_policy.file_prefixes[2], "/");
	nets_text(c.api_policy.allow, c.api_policy.n_allow, text, sizeof text);
	assert_string_equal(text, "10.0.0.0/8,fd00::/8");
	nets_text(c.api_policy.deny, c.api_policy.n_deny, text, sizeof text);
	assert_string_equal(text, "10.9.0.0/16");
	km_config_free(&c);

	/* A list given replaces its default whole; the other stays. An
	 * empty list is empty. */
	load_ok(&c, "api: {probeNetworks: {deny: []}}\n");
	assert_int_equal(c.api_policy.n_deny, 0);
	assert_int_equal(c.api_policy.n_allow, 2);
	assert_false(c.api_policy.allow_exec);
	km_config_free(&c);
	load_ok(&c, "api: {allowFile: false, filePathPrefixes: [],"
		    " probeNetworks: {allow: [127.0.0.1]}}\n");
	assert_int_equal(c.api_policy.n_allow, 1);
	assert_int_equal(c.api_policy.allow[0].bits, 32);
	assert_int_equal(c.api_policy.n_deny, 4);
	assert_int_equal(c.api_policy.n_file_prefixes, 0);
	km_config_free(&c);
	load_ok(&c, "api:\nprober: ~\n"); /* null: the defaults */
	assert_int_equal(c.api_policy.n_deny, 4);
	km_config_free(&c);

	EXPECT_ERROR("api: {allowExec: yes}\n",
		     "test.yaml:1:18: api.allowExec: expected true or false, "
		     "got \"yes\"");
	EXPECT_ERROR("api: {allowFile: 1}\n",
		     "api.allowFile: expected true or false");
	EXPECT_ERROR("api: {allowShell: true}\n",
		     "unknown key \"allowShell\" in api (known: allowExec, "
		     "allowFile, filePathPrefixes, probeNetworks)");
	EXPECT_ERROR("api: [x]\n", "api: expected a mapping, got a list");
	EXPECT_ERROR("api: {filePathPrefixes: /data}\n",
		     "api.filePathPrefixes: expected a list, got \"/data\"");
	EXPECT_ERROR("api: {filePathPrefixes: [/data, var/lib]}\n",
		     "test.yaml:1:33: api.filePathPrefixes[1]: \"var/lib\": "
		     "must be an absolute path");
	EXPECT_ERROR("api: {filePathPrefixes: [/a/../..]}\n",
		     "api.filePathPrefixes[0]: \"/a/../..\": \"..\" climbs "
		     "above \"/\"");
	EXPECT_ERROR("api: {filePathPrefixes: [~]}\n",
		     "api.filePathPrefixes[0]: expected a string, got null");
	EXPECT_ERROR("api: {filePathPrefixes: [[/a]]}\n",
		     "api.filePathPrefixes[0]: expected a string, got a list");
	EXPECT_ERROR("api: {probeNetworks: [10.0.0.0/8]}\n",
		     "api.probeNetworks: expected a mapping, got a list");
	EXPECT_ERROR("api: {probeNetworks: {permit: []}}\n",
		     "unknown key \"permit\" in api.probeNetworks (known: "
		     "allow, deny)");
	EXPECT_ERROR("api: {probeNetworks: {allow: 10.0.0.0/8}}\n",
		     "api.probeNetworks.allow: expected a list");
	EXPECT_ERROR("api: {probeNetworks: {deny: [10.0.0.1/8]}}\n",
		     "test.yaml:1:30: api.probeNetworks.deny[0]: "
		     "\"10.0.0.1/8\": bits are set past the prefix length");
	EXPECT_ERROR("api: {probeNetworks: {allow: [0.0.0.0/0, \"::/200\"]}}\n",
		     "api.probeNetworks.allow[1]: \"::/200\": an IPv6 prefix "
		     "length is 0 to 128");
	EXPECT_ERROR("api: {probeNetworks: {allow: [metadata.internal]}}\n",
		     "api.probeNetworks.allow[0]: \"metadata.internal\": "
		     "expected an IPv4 or IPv6 address");
	{
		/* Bounds: 64 prefixes, 256 networks. */
		char *many = malloc(65 * 8 + 64);
		size_t o;

		assert_non_null(many);
		o = (size_t)sprintf(many, "api: {filePathPrefixes: [");
		for (int i = 0; i < 65; i++)
			o += (size_t)sprintf(many + o, "%s/d%d", i ? "," : "",
					     i);
		strcpy(many + o, "]}\n");
		EXPECT_ERROR(many, "api.filePathPrefixes: 65 items, at most "
				   "64 allowed");
		free(many);
		many = malloc(257 * 16 + 64);
		assert_non_null(many);
		o = (size_t)sprintf(many, "api: {probeNetworks: {deny: [");
		for (int i = 0; i < 257; i++)
			o += (size_t)sprintf(many + o, "%s10.0.%d.0/24",
					     i ? "," : "", i % 256);
		strcpy(many + o, "]}}\n");
		EXPECT_ERROR(many, "api.probeNetworks.deny: 257 items, at "
				   "most 256 allowed");
		free(many);
	}
}

/* prober: every key, its default, and its bad values. */
static void test_prober_section(void **state)
{
	struct km_config c;

	(void)state;
	load_ok(&c, "prober: {watchdog: 30s, maxExecChildren: 1}\n");
	assert_int_equal(c.watchdog_ms, 30000);
	assert_int_equal(c.max_exec_children, 1);
	km_config_free(&c);
	load_ok(&c, "prober:\n  watchdog: 0\n  maxExecChildren: 4096\n");
	assert_int_equal(c.watchdog_ms, 0);
	assert_int_equal(c.max_exec_children, 4096);
	km_config_free(&c);
	load_ok(&c, "prober: {watchdog: 1h}\n");
	assert_int_equal(c.watchdog_ms, 3600000);
	assert_int_equal(c.max_exec_children, 64);
	km_config_free(&c);

	EXPECT_ERROR("prober: {watchdog: 500ms}\n",
		     "test.yaml:1:20: prober.watchdog: must be 0 (off) or "
		     "between 1s and 1h, got \"500ms\"");
	EXPECT_ERROR("prober: {watchdog: 2h}\n",
		     "prober.watchdog: must be 0 (off) or between 1s and 1h");
	EXPECT_ERROR("prober: {watchdog: 10}\n",
		     "prober.watchdog: the duration \"10\" needs a unit");
	EXPECT_ERROR("prober: {maxExecChildren: 0}\n",
		     "prober.maxExecChildren: must be between 1 and 4096, got "
		     "0");
	EXPECT_ERROR("prober: {maxExecChildren: 4097}\n",
		     "prober.maxExecChildren: must be between 1 and 4096");
	EXPECT_ERROR("prober: {maxExecChildren: many}\n",
		     "prober.maxExecChildren: expected an integer");
	EXPECT_ERROR("prober: {maxExecChildrn: 3}\n",
		     "unknown key \"maxExecChildrn\" in prober (known: "
		     "watchdog, maxExecChildren)",
		     "did you mean \"maxExecChildren\"?");
	EXPECT_ERROR("prober: 5\n", "prober: expected a mapping, got \"5\"");
}

static void test_kube_section(void **state)
{
	struct km_config c;

	(void)state;
	load_ok(&c, "kube:\n"
		    "  leaseGrace: 1m\n"
		    "  podStartupGrace: 10m\n"
		    "  controlPlanePeriod: 2s\n");
	assert_int_equal(c.kube_lease_grace_ms, 60000);
	assert_int_equal(c.kube_pod_startup_grace_ms, 600000);
	assert_int_equal(c.kube_control_plane_period_ms, 2000);
	km_config_free(&c);
	load_ok(&c, "kube: {leaseGrace: 1h, podStartupGrace: 1d}\n");
	assert_int_equal(c.kube_lease_grace_ms, 3600000);
	assert_int_equal(c.kube_pod_startup_grace_ms, 86400000);
	assert_int_equal(c.kube_control_plane_period_ms, 10000);
	km_config_free(&c);
	load_ok(&c, "kube:\n");
	assert_int_equal(c.kube_lease_grace_ms, 40000);
	km_config_free(&c);

	EXPECT_ERROR("kube: {leaseGrace: 999ms}\n",
		     "test.yaml:1:20: kube.leaseGrace: must be between 1s and "
		     "1h, got \"999ms\"");
	EXPECT_ERROR("kube: {leaseGrace: 0}\n",
		     "test.yaml:1:20: kube.leaseGrace: must be between 1s and "
		     "1h, got \"0\"");
	EXPECT_ERROR("kube: {leaseGrace: 61m}\n",
		     "kube.leaseGrace: must be between 1s and 1h");
	EXPECT_ERROR("kube: {podStartupGrace: 25h}\n",
		     "test.yaml:1:25: kube.podStartupGrace: must be between 1s "
		     "and 1d, got \"25h\"");
	EXPECT_ERROR("kube: {podStartupGrace: 300}\n",
		     "kube.podStartupGrace: the duration \"300\" needs a unit");
	EXPECT_ERROR("kube: {controlPlanePeriod: 500ms}\n",
		     "test.yaml:1:28: kube.controlPlanePeriod: must be between "
		     "1s and 1h, got \"500ms\"");
	EXPECT_ERROR("kube: {controlPlanePeriod: [1s]}\n",
		     "kube.controlPlanePeriod: expected a duration, got a "
		     "list");
	EXPECT_ERROR("kube: {leaseGracePeriod: 40s}\n",
		     "test.yaml:1:8: unknown key \"leaseGracePeriod\" in kube "
		     "(known: leaseGrace, podStartupGrace, "
		     "controlPlanePeriod)");
	EXPECT_ERROR("kube: 5\n", "test.yaml:1:7: kube: expected a mapping, "
				  "got \"5\"");
}

/* clusters: each entry's keys, what each must be, and the rules between
 * entries; every refusal with its exact message. */
static void test_clusters(void **state)
{
	static const struct {
		const char *yaml, *want;
	} bad[] = {
		{"clusters: {name: a}\n",
		 "test.yaml:1:11: clusters: expected a list of clusters "
		 "(\"- name: ...\"), got a mapping"},
		{"clusters: a\n", "test.yaml:1:11: clusters: expected a list "
				  "of clusters (\"- name: ...\"), got \"a\""},
		{"clusters: [a]\n",
		 "test.yaml:1:12: clusters[0]: expected a mapping {name, "
		 "kubeconfig | inCluster, ...}, got \"a\""},
		{"clusters: [~]\n",
		 "test.yaml:1:12: clusters[0]: expected a mapping {name, "
		 "kubeconfig | inCluster, ...}, got null"},
		{"clusters:\n- kubeconfig: k\n",
		 "test.yaml:2:3: clusters[0].name: Required value: every "
		 "cluster needs a name (its targets are "
		 "\"NAME:kind/namespace/name\")"},
		{"clusters:\n- {name: Prod, kubeconfig: k}\n",
		 "test.yaml:2:10: clusters[0].name: \"Prod\": must be "
		 "lower-case letters, digits and '-', starting and ending "
		 "with a letter or digit, at most 63 characters (an RFC 1123 "
		 "label: it prefixes the cluster's targets)"},
		{"clusters:\n- {name: \"a:b\", kubeconfig: k}\n",
		 "test.yaml:2:10: clusters[0].name: \"a:b\": must be "
		 "lower-case letters"},
		{"clusters:\n- {name: a/b, kubeconfig: k}\n",
		 "clusters[0].name: \"a/b\": must be lower-case"},
		{"clusters:\n- {name: -a, kubeconfig: k}\n",
		 "clusters[0].name: \"-a\": must be lower-case"},
		{"clusters:\n- {name: a-, kubeconfig: k}\n",
		 "clusters[0].name: \"a-\": must be lower-case"},
		{"clusters:\n- {name: a.b, kubeconfig: k}\n",
		 "clusters[0].name: \"a.b\": must be lower-case"},
		{"clusters:\n- {name: \"\", kubeconfig: k}\n",
		 "clusters[0].name: \"\": must be lower-case"},
		{"clusters:\n- {name: "
		 "a234567890123456789012345678901234567890123456789012345678901"
		 "234, kubeconfig: k}\n",
		 "clusters[0].name: "
		 "\"a234567890123456789012345678901234567890123456789012345678901"
		 "234\": must be lower-case"},
		{"clusters:\n- {name: [a], kubeconfig: k}\n",
		 "test.yaml:2:10: clusters[0].name: expected a string, got a "
		 "list"},
		{"clusters:\n- {name: a}\n",
		 "test.yaml:2:3: clusters[0]: give kubeconfig (a file) or "
		 "inCluster: true (the cluster kubemedicd runs in)"},
		{"clusters:\n- {name: a, inCluster: false}\n",
		 "test.yaml:2:3: clusters[0]: give kubeconfig (a file) or "
		 "inCluster: true"},
		{"clusters:\n- {name: a, kubeconfig: k, inCluster: true}\n",
		 "test.yaml:2:39: clusters[0]: give kubeconfig or inCluster: "
		 "true, not both"},
		{"clusters:\n- {name: a, kubeconfig: \"\"}\n",
		 "test.yaml:2:25: clusters[0].kubeconfig: must not be empty"},
		{"clusters:\n- {name: a, inCluster: yes}\n",
		 "test.yaml:2:24: clusters[0].inCluster: expected true or "
		 "false"},
		{"clusters:\n- {name: a, inCluster: true, context: c}\n",
		 "test.yaml:2:39: clusters[0].context: needs kubeconfig (in "
		 "the cluster there are no contexts)"},
		{"clusters:\n- {name: a, kubeconfig: k, namespace: Shop}\n",
		 "test.yaml:2:39: clusters[0].namespace: \"Shop\" is not a "
		 "namespace name: lower-case letters, digits and '-', "
		 "starting and ending with a letter or digit, at most 63 "
		 "characters"},
		{"clusters:\n- {name: a, kubeconfig: k, namespace: [a, b]}\n",
		 "test.yaml:2:39: clusters[0].namespace: expected a string, "
		 "got a list"},
		{"clusters:\n- {name: a, kubeconfig: k, labelSelector: "
		 "\"=shop\"}\n",
		 "test.yaml:2:43: clusters[0].labelSelector: label selector "
		 "\"=shop\": position"},
		{"clusters:\n- {name: a, kubeconfig: k, labelSelector: "
		 "\"a in b\"}\n",
		 "test.yaml:2:43: clusters[0].labelSelector: label selector "
		 "\"a in b\": position"},
		{"clusters:\n- {name: a, kubeconfig: k, namespaces: [x]}\n",
		 "test.yaml:2:28: unknown key \"namespaces\" in clusters[0] "
		 "(known: name, kubeconfig, context, inCluster, namespace, "
		 "labelSelector); did you mean \"namespace\"?"},
		{"clusters:\n- {name: a, kubeConfig: k}\n",
		 "unknown key \"kubeConfig\" in clusters[0]",
		 /* km_yaml's hint; only the start is checked */},
		{"clusters:\n"
		 "- {name: eu, kubeconfig: k1}\n"
		 "- {name: us, kubeconfig: k2}\n"
		 "- {name: eu, kubeconfig: k3}\n",
		 "test.yaml:4:3: clusters[2].name: duplicate name \"eu\": "
		 "clusters[0] at line 2 has it already"},
		{"clusters:\n"
		 "- {name: a, inCluster: true}\n"
		 "- {name: b, inCluster: true}\n",
		 "test.yaml:3:3: clusters[1].inCluster: clusters[0] is "
		 "already the cluster kubemedicd runs in"},
	};
	struct km_config c;
	char yaml[300 * 1024];
	size_t o;

	(void)state;
	load_ok(&c, "clusters:\n"
		    "  - name: prod-eu\n"
		    "    kubeconfig: /etc/kubemedic/eu.kubeconfig\n"
		    "    context: eu-admin\n"
		    "    namespace: shop\n"
		    "    labelSelector: \"team=shop, tier in (web, api)\"\n"
		    "  - name: 0here\n"
		    "    inCluster: true\n"
		    "  - name: rel\n"
		    "    kubeconfig: kube/rel.yaml\n"
		    "    namespace: \"\"\n"
		    "    labelSelector: \"\"\n"
		    "    inCluster: false\n");
	assert_int_equal(c.n_clusters, 3);
	assert_string_equal(c.clusters[0].name, "prod-eu");
	assert_string_equal(c.clusters[0].kubeconfig,
			    "/etc/kubemedic/eu.kubeconfig");
	assert_string_equal(c.clusters[0].context, "eu-admin");
	assert_false(c.clusters[0].in_cluster);
	assert_string_equal(c.clusters[0].ns, "shop");
	assert_string_equal(c.clusters[0].label_selector,
			    "team=shop, tier in (web, api)");
	assert_string_equal(c.clusters[1].name, "0here");
	assert_null(c.clusters[1].kubeconfig);
	assert_null(c.clusters[1].context);
	assert_true(c.clusters[1].in_cluster);
	assert_null(c.clusters[1].ns);
	assert_null(c.clusters[1].label_selector);
	/* Paths as written: relative to the working directory. "" for the
	 * namespace and the selector: every one. */
	assert_string_equal(c.clusters[2].kubeconfig, "kube/rel.yaml");
	assert_null(c.clusters[2].ns);
	assert_null(c.clusters[2].label_selector);
	km_config_free(&c);
	/* An empty list, and none: no cluster. */
	load_ok(&c, "clusters: []\n");
	assert_int_equal(c.n_clusters, 0);
	km_config_free(&c);
	load_ok(&c, "clusters:\n");
	assert_int_equal(c.n_clusters, 0);
	km_config_free(&c);
	/* A name of 63 bytes, the most. */
	load_ok(&c,
		"clusters:\n- {name: "
		"a23456789012345678901234567890123456789012345678901234567890"
		"123, kubeconfig: k}\n");
	assert_int_equal(strlen(c.clusters[0].name), 63);
	km_config_free(&c);

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		EXPECT_ERROR(bad[i].yaml, bad[i].want);

	/* KM_CONFIG_MAX_CLUSTERS, and one more. */
	for (int n = KM_CONFIG_MAX_CLUSTERS; n <= KM_CONFIG_MAX_CLUSTERS + 1;
	     n++) {
		o = (size_t)snprintf(yaml, sizeof yaml, "clusters:\n");
		for (int i = 0; i < n; i++)
			o += (size_t)snprintf(yaml + o, sizeof yaml - o,
					      "- {name: c%d, kubeconfig: k}\n",
					      i);
		if (n == KM_CONFIG_MAX_CLUSTERS) {
			load_ok(&c, yaml);
			assert_int_equal(c.n_clusters, n);
			km_config_free(&c);
		} else {
			EXPECT_ERROR(yaml, "test.yaml:2:1: clusters: 257 "
					   "clusters, at most 256 allowed");
		}
	}
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	EXPECT_ERROR("threads: 1\nlog: {}\nthreads: 2\n",
		     "test.yaml:3:1: duplicate key \"threads\" at the top "
		     "level (first given at line 1)");
	EXPECT_ERROR("probes:\n  - name: a\n    name: b\n",
		     "test.yaml:3:5: duplicate key \"name\" in probes[0] "
		     "(first given at line 2)");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x]}\n"
		     "    labels: {a: 1, b: 2, a: 3}\n",
		     "test.yaml:4:26: probes[0].labels: duplicate label key "
		     "\"a\"");
}

static void test_wrong_types(void **state)
{
	(void)state;
	EXPECT_ERROR("threads: abc\n", "test.yaml:1:10: threads: expected an "
				       "integer, got \"abc\"");
	EXPECT_ERROR("threads: 1.5\n", "test.yaml:1:10: threads: expected an "
				       "integer, got \"1.5\"");
	EXPECT_ERROR("threads: \"4\"\n",
		     "threads: expected an integer, got "
		     "the string \"4\" (write numbers without quotes)");
	EXPECT_ERROR("threads: [4]\n", "threads: expected an integer, got a "
				       "list");
	EXPECT_ERROR("threads: 0x10\n", "threads: expected an integer, got "
					"\"0x10\"");
	EXPECT_ERROR("threads: 99999999999999999999\n",
		     "threads: \"99999999999999999999\" is out of range (0 to "
		     "1024)");
	EXPECT_ERROR("listen: {host: a}\n", "test.yaml:1:9: listen: expected "
					    "a string, got a mapping");
	EXPECT_ERROR("retention: 30d\n", "test.yaml:1:12: retention: expected "
					 "a mapping, got \"30d\"");
	EXPECT_ERROR("database:\n  - path: x\n",
		     "test.yaml:2:3: database: "
		     "expected a mapping, got a list");
	EXPECT_ERROR("probes: {name: a}\n", "test.yaml:1:9: probes: expected "
					    "a list of probes");
	EXPECT_ERROR("probes: [a]\n", "test.yaml:1:10: probes[0]: expected a "
				      "probe (a mapping), got \"a\"");
	EXPECT_ERROR("probes:\n  -\n", "test.yaml:2:4: probes[0]: expected a "
				       "probe (a mapping), got null");
	EXPECT_ERROR("probes:\n  - name: a\n    labels: [a, b]\n",
		     "test.yaml:3:13: probes[0].labels: expected a mapping of "
		     "label keys to values, got a list");
	EXPECT_ERROR("probes:\n  - name: a\n    labels: {a: [b]}\n",
		     "probes[0].labels.a: expected a string, got a list");
	EXPECT_ERROR("probes:\n  - name: [a]\n",
		     "test.yaml:2:11: "
		     "probes[0].name: expected a string, got a list");
	EXPECT_ERROR("probes:\n  - name: a\n    periodSeconds: 1.5\n",
		     "test.yaml:3:20: probes[0].periodSeconds: expected an "
		     "integer, got \"1.5\"");
	EXPECT_ERROR("probes:\n  - name: a\n    failureThreshold: \"abc\"\n",
		     "test.yaml:3:23: probes[0].failureThreshold: expected an "
		     "integer, got the string \"abc\"");
	EXPECT_ERROR("probes:\n  - name: a\n    periodSeconds: 3000000000\n",
		     "probes[0].periodSeconds: must be between -2147483648 "
		     "and 2147483647, got 3000000000");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: \"true\"}\n",
		     "test.yaml:3:21: probes[0].exec.command: expected a list "
		     "(the program, then its arguments");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x, ~]}\n",
		     "probes[0].exec.command[1]: expected a string, got null");
	EXPECT_ERROR(
		"probes:\n  - name: a\n    exec: {command: [x, [y]]}\n",
		"probes[0].exec.command[1]: expected a string, got a list");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x], env: "
		     "{A: b}}\n",
		     "probes[0].exec.env: expected a list of "
		     "{name, value}, got a mapping");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x], env: "
		     "[A]}\n",
		     "probes[0].exec.env[0]: expected a mapping "
		     "{name, value}, got \"A\"");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x], env: "
		     "[{value: b}]}\n",
		     "probes[0].exec.env[0].name: Required "
		     "value");
	EXPECT_ERROR("probes:\n  - name: a\n    httpGet: {host: h, port: 1, "
		     "tlsVerify: yes}\n",
		     "probes[0].httpGet.tlsVerify: "
		     "expected true or false, got \"yes\"");
	EXPECT_ERROR("probes:\n  - name: a\n    httpGet: {host: h, port: 1, "
		     "httpHeaders: {A: b}}\n",
		     "probes[0].httpGet.httpHeaders: "
		     "expected a list of {name, value}");
	EXPECT_ERROR("probes:\n  - name: a\n    httpGet: [h, 1]\n",
		     "test.yaml:3:14: probes[0].httpGet: expected a mapping, "
		     "got a list");
	EXPECT_ERROR("probes:\n  - name: a\n    file: {path: /x, minSize: "
		     "1k}\n",
		     "probes[0].file.minSize: expected an integer, "
		     "got \"1k\"");
	EXPECT_ERROR("listen: \"a\\0b:1\"\n", "listen: must not contain NUL "
					      "characters");
}

static void test_ports(void **state)
{
	(void)state;
	EXPECT_ERROR("probes:\n  - name: web\n    httpGet:\n      host: h\n"
		     "      port: http\n",
		     "test.yaml:5:13: probes[0].httpGet.port: the named port "
		     "\"http\" needs a pod",
		     "give the port number");
	EXPECT_ERROR("probes:\n  - name: web\n    tcpSocket: {host: h, port: "
		     "\"metrics\"}\n",
		     "probes[0].tcpSocket.port: the named "
		     "port \"metrics\" needs a pod");
	EXPECT_ERROR("probes:\n  - name: web\n    grpc: {host: h, port: "
		     "\"8080\"}\n",
		     "probes[0].grpc.port: expected a port "
		     "number, got the string \"8080\" (write it without "
		     "quotes)");
	EXPECT_ERROR("probes:\n  - name: web\n    tcpSocket: {host: h, port: "
		     "70000}\n",
		     "probes[0].tcpSocket.port: Invalid value: "
		     "\"70000\": must be between 1 and 65535, inclusive");
	EXPECT_ERROR("probes:\n  - name: web\n    tcpSocket: {host: h, port: "
		     "-1}\n",
		     "Invalid value: \"-1\": must be between 1 and "
		     "65535");
	EXPECT_ERROR("probes:\n  - name: web\n    tcpSocket: {host: h, port: "
		     "99999999999999999999999}\n",
		     "Invalid value: "
		     "\"99999999999999999999999\"");
	EXPECT_ERROR("probes:\n  - name: web\n    tcpSocket: {host: h, port: "
		     "80.5}\n",
		     "probes[0].tcpSocket.port: expected a port "
		     "number, got \"80.5\"");
	EXPECT_ERROR("probes:\n  - name: web\n    tcpSocket: {host: h, port: "
		     "{a: 1}}\n",
		     "expected a port number, got a mapping");
	/* No port at all: km_probe_spec's message, at the probe's line. */
	EXPECT_ERROR("probes:\n  - name: web\n    tcpSocket: {host: h}\n",
		     "test.yaml:2: probes[0].tcpSocket.port: Invalid value: 0: "
		     "must be between 1 and 65535");
}

/* What km_probe_spec refuses comes back as FILE:LINE: probes[i].field. */
static void test_probe_validation(void **state)
{
	(void)state;
	EXPECT_ERROR("threads: 1\nprobes:\n  - name: a\n    exec: {command: "
		     "[x]}\n  - name: b\n    httpGet: {port: 80}\n",
		     "test.yaml:5: probes[1].httpGet.host: Required value");
	EXPECT_ERROR("probes:\n  - name: a\n    labels: {x: 1}\n",
		     "test.yaml:2: probes[0]: must specify a handler type (one "
		     "of httpGet, tcpSocket, grpc, exec, file)");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x]}\n"
		     "    file: {path: /x}\n",
		     "test.yaml:2: probes[0]: may not specify more than 1 "
		     "handler type");
	/* A null handler is no handler. */
	EXPECT_ERROR("probes:\n  - name: a\n    exec:\n",
		     "test.yaml:2: probes[0]: must specify a handler type");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {}\n",
		     "test.yaml:2: probes[0].exec.command: Required value");
	EXPECT_ERROR("probes:\n  - exec: {command: [x]}\n",
		     "test.yaml:2: probes[0].name: Required value");
	EXPECT_ERROR("probes:\n  - name: Web_1\n    exec: {command: [x]}\n",
		     "test.yaml:2: probes[0].name: Invalid value: \"Web_1\"");
	EXPECT_ERROR("probes:\n  - name: a\n    labels: {\"-x\": y}\n"
		     "    exec: {command: [x]}\n",
		     "test.yaml:2: probes[0].labels: Invalid value: \"-x\": "
		     "label key");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x]}\n"
		     "    periodSeconds: -1\n",
		     "test.yaml:2: probes[0].periodSeconds: must be greater "
		     "than or equal to 0 (got -1)");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x]}\n"
		     "    periodSeconds: 1\n    periodMilliseconds: 500\n",
		     "probes[0].periodMilliseconds: give period_seconds or "
		     "period_milliseconds, not both");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x]}\n"
		     "    periodMilliseconds: 50\n",
		     "probes[0].periodMilliseconds: must be at least 100");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x]}\n"
		     "    timeoutSeconds: 7200\n",
		     "probes[0].timeoutSeconds: must be at most 3600 seconds");
	EXPECT_ERROR("probes:\n  - name: a\n    httpGet: {host: h, port: 1, "
		     "scheme: https}\n",
		     "test.yaml:3:41: "
		     "probes[0].httpGet.scheme: Unsupported value: \"https\": "
		     "supported values: \"HTTP\", \"HTTPS\"");
	EXPECT_ERROR("probes:\n  - name: a\n    httpGet: {host: h, port: 1, "
		     "tlsVerify: true}\n",
		     "test.yaml:2: "
		     "probes[0].httpGet.tlsVerify: applies only to scheme "
		     "HTTPS");
	EXPECT_ERROR("probes:\n  - name: a\n    httpGet: {host: h, port: 1, "
		     "httpHeaders: [{name: \"Bad Header\", value: x}]}\n",
		     "probes[0].httpGet.httpHeaders[0].name: Invalid value: "
		     "\"Bad Header\"");
	EXPECT_ERROR(
		"probes:\n  - name: a\n    file: {path: relative}\n",
		"probes[0].file.path: Invalid value: \"relative\": must be "
		"an absolute path");
	EXPECT_ERROR("probes:\n  - name: a\n    file: {path: /x, minSize: "
		     "-1}\n",
		     "probes[0].file.minSize: must be greater than or "
		     "equal to 0");
	EXPECT_ERROR("probes:\n  - name: a\n    exec: {command: [x], env: "
		     "[{name: 1A}]}\n",
		     "probes[0].exec.env[0].name: Invalid "
		     "value: \"1A\"");
}

static void test_duplicate_probe_names(void **state)
{
	(void)state;
	EXPECT_ERROR("probes:\n"
		     "  - name: a\n    exec: {command: [x]}\n"
		     "  - name: b\n    exec: {command: [x]}\n"
		     "  - name: c\n    exec: {command: [x]}\n"
		     "  - name: b\n    exec: {command: [x]}\n"
		     "  - name: a\n    exec: {command: [x]}\n",
		     "test.yaml:8: probes[3].name: duplicate name \"b\": "
		     "probes[1] at line 4 has it already");
}

static void test_threads_listen_limits(void **state)
{
	static const char *const good_listen[] = {
		"127.0.0.1:7070",     "\"[::1]:7070\"",
		"'[::]:1'",           "localhost:65535",
		"0.0.0.0:80",         "\"[fe80::1%eth0]:7070\"",
		"kubemedic.svc:7070",
	};
	struct km_config c;
	char yaml[80];

	(void)state;
	for (size_t i = 0; i < sizeof good_listen / sizeof *good_listen; i++) {
		snprintf(yaml, sizeof yaml, "listen: %s\n", good_listen[i]);
		load_ok(&c, yaml);
		km_config_free(&c);
	}
	load_ok(&c, "listen: \"[::1]:7070\"\nthreads: 1024\n"
		    "maxReceiveMessageBytes: 1073741824\n"
		    "limits: {maxRequestMemoryBytes: 1073741824}\n");
	assert_string_equal(c.listen, "[::1]:7070");
	assert_int_equal(c.threads, 1024);
	assert_int_equal(c.max_recv_message_bytes, 1 << 30);
	km_config_free(&c);
	load_ok(&c, "maxReceiveMessageBytes: 1024\n");
	assert_int_equal(c.max_recv_message_bytes, 1024);
	km_config_free(&c);

	EXPECT_ERROR("threads: 1025\n", "test.yaml:1:10: threads: must be "
					"between 0 and 1024, got 1025");
	EXPECT_ERROR("threads: -1\n", "threads: must be between 0 and 1024, "
				      "got -1");
	EXPECT_ERROR("maxReceiveMessageBytes: 1023\n",
		     "maxReceiveMessageBytes: "
		     "must be between 1024 and 1073741824, got 1023");
	EXPECT_ERROR("maxReceiveMessageBytes: 1073741825\n",
		     "maxReceiveMessageBytes: must be between 1024 and "
		     "1073741824");
	EXPECT_ERROR("database: {resultQueue: 0}\n", "database.resultQueue: "
						     "must be between 1 and");
	EXPECT_ERROR("database: {path: \"\"}\n", "database.path: must not be "
						 "empty");
	EXPECT_ERROR("listen: \"\"\n", "test.yaml:1:9: listen: \"\": expected "
				       "HOST:PORT");
	EXPECT_ERROR("listen: 7070\n", "listen: \"7070\": expected HOST:PORT");
	EXPECT_ERROR("listen: :7070\n", "listen: \":7070\": the host is "
					"missing");
	EXPECT_ERROR("listen: ::1:7070\n", "put an IPv6 address in brackets, "
					   "e.g. \"[::1]:7070\"");
	EXPECT_ERROR("listen: \"[::1]7070\"\n", "an IPv6 address must be "
						"written \"[ADDRESS]:PORT\"");
	EXPECT_ERROR("listen: \"[]:7070\"\n",
		     "an IPv6 address must be written");
	EXPECT_ERROR("listen: \"[x]:7070\"\n", "must be an IPv6 address");
	EXPECT_ERROR("listen: host:0\n", "the port must be a number from 1 to "
					 "65535");
	EXPECT_ERROR("listen: host:65536\n", "the port must be a number");
	EXPECT_ERROR("listen: host:+80\n", "the port must be a number");
	EXPECT_ERROR("listen: \"host:\"\n", "the port must be a number");
	EXPECT_ERROR("listen: \"a b:80\"\n", "the host must be an IP address "
					     "or a DNS name");
	EXPECT_ERROR("listen: unix:/run/km.sock\n",
		     "the port must be a number");
}

/* The limits: section: every key, its range, and the two rules between
 * keys. */
static void test_limits(void **state)
{
	static const struct {
		const char *yaml, *want;
	} bad[] = {
		/* each key: below its range, above it, the wrong type */
		{"defaultDeadline: 99ms", "limits.defaultDeadline: must be "
					  "between 100ms and 1h, got \"99ms\""},
		{"defaultDeadline: 2h", "limits.defaultDeadline: must be "
					"between 100ms and 1h"},
		{"defaultDeadline: 10", "limits.defaultDeadline: the duration "
					"\"10\" needs a unit"},
		{"maxDeadline: 0", "limits.maxDeadline: must be between 100ms "
				   "and 1h, got \"0\""},
		{"maxDeadline: 61m", "limits.maxDeadline: must be between"},
		{"maxDeadline: [1s]", "limits.maxDeadline: expected a "
				      "duration, got a list"},
		{"maxSelectorBytes: 63", "limits.maxSelectorBytes: must be "
					 "between 64 and 16777216, got 63"},
		{"maxSelectorBytes: 16777217", "limits.maxSelectorBytes: must "
					       "be between 64 and 16777216"},
		{"maxSelectorBytes: 4k", "limits.maxSelectorBytes: expected "
					 "an integer, got \"4k\""},
		{"maxSelectorRequirements: 0",
		 "limits.maxSelectorRequirements: must be between 1 and "
		 "1000000, got 0"},
		{"maxSelectorRequirements: 1000001",
		 "limits.maxSelectorRequirements: must be between 1 and"},
		{"maxWatchTargets: 0", "limits.maxWatchTargets: must be "
				       "between 1 and 100000, got 0"},
		{"maxWatchTargets: 100001", "limits.maxWatchTargets: must be "
					    "between 1 and 100000"},
		{"maxWatchTargets: \"5\"", "limits.maxWatchTargets: expected "
					   "an integer, got the string"},
		{"maxProbes: 0", "limits.maxProbes: must be between 1 and "
				 "10000000, got 0"},
		{"maxProbes: -5", "limits.maxProbes: must be between 1 and"},
		{"maxProbes: 10000001", "limits.maxProbes: must be between 1"},
		{"maxProbesPerIdentity: 0", "limits.maxProbesPerIdentity: must "
					    "be between 1 and 10000000, got 0"},
		{"maxProbesPerIdentity: 1.5", "limits.maxProbesPerIdentity: "
					      "expected an integer"},
		{"maxStreams: 0", "limits.maxStreams: must be between 1 and "
				  "1000000, got 0"},
		{"maxStreams: 1000001", "limits.maxStreams: must be between"},
		{"maxStreamsPerPeer: 0", "limits.maxStreamsPerPeer: must be "
					 "between 1 and 1000000, got 0"},
		{"maxStreamsPerPeer: true", "limits.maxStreamsPerPeer: "
					    "expected an integer"},
		{"maxCallsPerConnection: 0", "limits.maxCallsPerConnection: "
					     "must be between 1 and "
					     "2147483647, got 0"},
		{"maxCallsPerConnection: 2147483648",
		 "limits.maxCallsPerConnection: must be between 1 and "
		 "2147483647"},
		{"maxRequestMemoryBytes: 65535",
		 "limits.maxRequestMemoryBytes: must be between 65536 and "
		 "1073741824, got 65535"},
		{"maxRequestMemoryBytes: 1073741825",
		 "limits.maxRequestMemoryBytes: must be between 65536"},
		/* unknown keys, with a hint */
		{"maxProbe: 5", "unknown key \"maxProbe\" in limits (known: "
				"defaultDeadline, maxDeadline, "
				"maxSelectorBytes, maxSelectorRequirements, "
				"maxWatchTargets, maxProbes, "
				"maxProbesPerIdentity, maxStreams, "
				"maxStreamsPerPeer, maxCallsPerConnection, "
				"maxRequestMemoryBytes); did you mean "
				"\"maxProbes\"?"},
		{"max_streams: 5", "did you mean \"maxStreams\"?"},
		/* between keys */
		{"defaultDeadline: 2m",
		 "limits.defaultDeadline (120000ms) must "
		 "not be longer than limits.maxDeadline "
		 "(60000ms)"},
		{"{defaultDeadline: 5s, maxDeadline: 1s}",
		 "limits.defaultDeadline (5000ms) must not be longer than "
		 "limits.maxDeadline (1000ms)"},
		{"maxRequestMemoryBytes: 200000",
		 "limits.maxRequestMemoryBytes (200000) must be at least "
		 "maxReceiveMessageBytes (262144)"},
	};
	struct km_config c;
	char yaml[512];

	(void)state;
	load_ok(&c, "limits:\n"
		    "  defaultDeadline: 2s\n"
		    "  maxDeadline: 5m\n"
		    "  maxSelectorBytes: 1024\n"
		    "  maxSelectorRequirements: 8\n"
		    "  maxWatchTargets: 10\n"
		    "  maxProbes: 50\n"
		    "  maxProbesPerIdentity: 5\n"
		    "  maxStreams: 20\n"
		    "  maxStreamsPerPeer: 4\n"
		    "  maxCallsPerConnection: 32\n"
		    "  maxRequestMemoryBytes: 1048576\n");
	assert_int_equal(c.limits.default_deadline_ms, 2000);
	assert_int_equal(c.limits.max_deadline_ms, 300000);
	assert_int_equal(c.limits.max_selector_bytes, 1024);
	assert_int_equal(c.limits.max_selector_requirements, 8);
	assert_int_equal(c.limits.max_watch_targets, 10);
	assert_int_equal(c.limits.max_probes, 50);
	assert_int_equal(c.limits.max_probes_per_identity, 5);
	assert_int_equal(c.limits.max_streams, 20);
	assert_int_equal(c.limits.max_streams_per_peer, 4);
	assert_int_equal(c.limits.max_calls_per_connection, 32);
	assert_int_equal(c.limits.max_request_memory_bytes, 1 << 20);
	km_config_free(&c);
	/* A key left out keeps its default; an empty section is all of
	 * them. */
	load_ok(&c, "limits: {maxProbes: 7}\n");
	assert_int_equal(c.limits.max_probes, 7);
	assert_int_equal(c.limits.max_streams, 1000);
	assert_int_equal(c.limits.max_probes_per_identity, 2000);
	km_config_free(&c);
	load_ok(&c, "limits:\n");
	assert_int_equal(c.limits.max_deadline_ms, 60000);
	km_config_free(&c);
	/* The bounds of each range are accepted. */
	load_ok(&c,
		"maxReceiveMessageBytes: 65536\n"
		"limits: {defaultDeadline: 100ms, maxDeadline: 1h, "
		"maxSelectorBytes: 16777216, maxSelectorRequirements: 1, "
		"maxWatchTargets: 100000, maxProbes: 1, maxStreams: 1000000, "
		"maxStreamsPerPeer: 1, maxCallsPerConnection: 2147483647, "
		"maxRequestMemoryBytes: 65536}\n");
	assert_int_equal(c.limits.max_calls_per_connection, INT32_MAX);
	km_config_free(&c);

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (bad[i].yaml[0] == '{')
			snprintf(yaml, sizeof yaml, "limits: %s\n",
				 bad[i].yaml);
		else
			snprintf(yaml, sizeof yaml, "limits:\n  %s\n",
				 bad[i].yaml);
		EXPECT_ERROR(yaml, "test.yaml:", bad[i].want);
	}
	EXPECT_ERROR("limits: 5\n", "limits: expected a mapping");
	/* Raising the receive limit past the decoding budget is refused
	 * where it is raised. */
	EXPECT_ERROR("maxReceiveMessageBytes: 8388608\n",
		     "test.yaml:1:25: limits.maxRequestMemoryBytes (4194304) "
		     "must be at least maxReceiveMessageBytes (8388608)");
	load_ok(&c, "maxReceiveMessageBytes: 8388608\n"
		    "limits: {maxRequestMemoryBytes: 8388608}\n");
	km_config_free(&c);
}

static void test_durations(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
		{"0", 0},
		{"0s", 0},
		{"250ms", 250},
		{"10s", 10000},
		{"5m", 300000},
		{"12h", 12 * 3600000LL},
		{"30d", 30 * DAY_MS},
		{"1h30m", 5400000},
		{"1m30s500ms", 90500},
		{"1s1h", 3601000},
		{"007s", 7000},
		{"9223372036854775807ms", INT64_MAX},
	};
	static const char *const bad[] = {
		"",
		"10",
		"-1s",
		"s",
		"1",
		"1.5h",
		"1 s",
		" 1s",
		"1s ",
		"1S",
		"1w",
		"1us",
		"1ns",
		"1y",
		"1sm",
		"+1s",
		"1h-1m",
		"ms",
		"9223372036854775808ms",
		"106751991167301d",
		"5000000000000000h",
		"9223372036854775807ms1ms",
		"0x10s",
	};
	int64_t ms;

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		ms = -1;
		if (km_duration_parse(good[i].s, &ms) != 0)
			fprintf(stderr, "refused \"%s\"\n", good[i].s);
		assert_int_equal(km_duration_parse(good[i].s, &ms), 0);
		assert_int_equal(ms, good[i].ms);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ms = 42;
		if (km_duration_parse(bad[i], &ms) != KM_EINVAL)
			fprintf(stderr, "accepted \"%s\"\n", bad[i]);
		assert_int_equal(km_duration_parse(bad[i], &ms), KM_EINVAL);
		assert_int_equal(ms, 42); /* untouched */
	}
	assert_int_equal(km_duration_parse(NULL, &ms), KM_EINVAL);

	EXPECT_ERROR("shutdownGracePeriod: 10\n",
		     "test.yaml:1:22: "
		     "shutdownGracePeriod: the duration \"10\" needs a unit "
		     "(ms, s, m, h or d), e.g. \"10s\"");
	EXPECT_ERROR("retention: {results: 1 week}\n",
		     "retention.results: "
		     "expected a duration such as \"250ms\", \"10s\", \"5m\", "
		     "\"12h\", \"30d\" or \"1h30m\", got \"1 week\"");
	EXPECT_ERROR("retention: {results: [1d]}\n",
		     "retention.results: "
		     "expected a duration, got a list");
	EXPECT_ERROR("shutdownGracePeriod: 2h\n", "shutdownGracePeriod: must "
						  "be at most 1h, got \"2h\"");
	EXPECT_ERROR("retention: {transitions: 36501d}\n",
		     "retention.transitions: must be at most 36500d");
	EXPECT_ERROR("retention: {interval: 0}\n",
		     "retention.interval: must "
		     "be between 1s and 1d, got \"0\"");
}

static void test_malformed_yaml(void **state)
{
	static const char nul_in_middle[] = "threads: 1\n\0threads: 2\n";
	struct km_config c;
	struct km_error err = {0};

	(void)state;
	EXPECT_ERROR("threads: 1\nlog: [a, b\n",
		     "test.yaml:3:1: invalid YAML: "
		     "did not find expected ',' or ']' (while parsing a flow "
		     "sequence at line 2, column 6)");
	EXPECT_ERROR("a: b: c\n", "test.yaml:1:5: invalid YAML: mapping values "
				  "are not allowed in this context");
	EXPECT_ERROR("threads: 1\n  log: x\n",
		     "test.yaml:2:6: invalid YAML: "
		     "mapping values are not allowed");
	EXPECT_ERROR("\tthreads: 1\n", "test.yaml:1:1: invalid YAML: found "
				       "character that cannot start any token");
	EXPECT_ERROR("threads: *nope\n", "test.yaml:1:10: invalid YAML: found "
					 "undefined alias");
	EXPECT_ERROR("threads: \"1\n", "invalid YAML: found unexpected end of "
				       "stream");
	EXPECT_ERROR("threads: 1\n---\nthreads: 2\n",
		     "test.yaml:2: a second "
		     "YAML document begins here");
	EXPECT_ERROR("threads: \xff\xfe\n", "test.yaml: invalid YAML at byte "
					    "9: invalid leading UTF-8 octet");
	EXPECT_ERROR("- a\n- b\n", "test.yaml:1:1: the document: expected a "
				   "mapping, got a list");
	EXPECT_ERROR("just text\n", "test.yaml:1:1: the document: expected a "
				    "mapping, got \"just text\"");

	/* A NUL byte inside the buffer is input, not its end. */
	km_config_defaults(&c);
	assert_int_equal(km_config_load_string(&c, nul_in_middle,
					       sizeof nul_in_middle - 1,
					       "nul.yaml", &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "nul.yaml: invalid YAML at byte 11"));
	km_config_free(&c);
}

/* The document's schema bounds the walk: an alias that contains itself is
 * a value of the wrong type, not an endless loop. */
static void test_recursive_aliases(void **state)
{
	(void)state;
	EXPECT_ERROR("probes: &a [*a]\n", "probes[0]: expected a probe (a "
					  "mapping), got a list");
	EXPECT_ERROR("probes:\n  - &p {name: a, labels: *p}\n",
		     "probes[0].labels.labels: expected a string, "
		     "got a mapping");
	EXPECT_ERROR("database: &d {path: *d}\n", "database.path: expected a "
						  "string, got a mapping");
	EXPECT_ERROR("&r {log: *r}\n", "unknown key \"log\" in log");
}

/* Input that would make libyaml quadratic is refused before it is: deep
 * flow nesting (1 MB of "[" once took minutes) and thousands of anchors. */
static void test_pathological(void **state)
{
	const size_t big = 1 << 20;
	char *s = malloc(big + 16);
	size_t o;

	(void)state;
	assert_non_null(s);
	memset(s, '[', big);
	s[big] = '\0';
	EXPECT_ERROR(s, "test.yaml:1:65: nested more than 64 levels deep; a "
			"configuration needs at most 6");
	memcpy(s, "probes: ", 8);
	memset(s + 8, '{', 100);
	strcpy(s + 108, "a: 1");
	EXPECT_ERROR(s, "test.yaml:1:72: nested more than 64 levels deep");
	/* 64 levels are YAML's business, and then the schema's. */
	memset(s, '[', 64);
	memset(s + 64, ']', 64);
	s[128] = '\0';
	EXPECT_ERROR(s, "test.yaml:1:1: the document: expected a mapping, got "
			"a list");
	/* Block nesting counts too. */
	o = (size_t)sprintf(s, "probes:\n");
	for (int i = 0; i < 70; i++)
		o += (size_t)sprintf(s + o, "- ");
	strcpy(s + o, "x\n");
	EXPECT_ERROR(s, "test.yaml:2:127: nested more than 64 levels deep");

	o = (size_t)sprintf(s, "probes:\n");
	for (int i = 0; i < 1025; i++)
		o += (size_t)sprintf(s + o, "  - &a%d x\n", i);
	EXPECT_ERROR(s, "test.yaml:1026:5: more than 1024 anchors (&name)");
	o = (size_t)sprintf(s, "x: &a 1\nprobes:\n");
	for (int i = 0; i < 65537; i++)
		o += (size_t)sprintf(s + o, "- *a\n");
	EXPECT_ERROR(s, "test.yaml:65539:3: more than 65536 aliases (*name)");
	free(s);
}

/* ---- km_config_parse_probes and km_config_load ------------------------ */

static int parse_probes(const char *yaml, struct km_arena *a,
			struct km_probe **out, size_t *n, struct km_error *err)
{
	return km_config_parse_probes(yaml, strlen(yaml), "p.yaml", a, out, n,
				      err);
}

static void test_parse_probes(void **state)
{
	struct km_arena a;
	struct km_probe *p;
	struct km_error err = {0};
	size_t n;

	(void)state;
	km_arena_init(&a, 0);
	/* One probe. */
	assert_int_equal(parse_probes("name: one\ntcpSocket: {host: h, port: "
				      "1}\n",
				      &a, &p, &n, &err),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(p[0].name, "one");
	assert_int_equal(p[0].source, KM_SOURCE_CONFIG);
	/* A list. */
	assert_int_equal(parse_probes("- {name: a, file: {path: /a}}\n"
				      "- {name: b, file: {path: /b}}\n",
				      &a, &p, &n, &err),
			 0);
	assert_int_equal(n, 2);
	assert_string_equal(p[1].path, "/b");
	/* A whole config file: only its probes. */
	assert_int_equal(parse_probes("listen: 1.2.3.4:5\nprobes:\n"
				      "  - {name: c, file: {path: /c}}\n",
				      &a, &p, &n, &err),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(p[0].name, "c");
	/* ... whose other keys are still checked. */
	assert_int_equal(parse_probes("threads: many\nprobes: []\n", &a, &p, &n,
				      &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "p.yaml:1:10: threads: expected an "
					"integer"));
	assert_int_equal(parse_probes("log: {}\n", &a, &p, &n, &err), 0);
	assert_int_equal(n, 0);
	/* Nothing at all. */
	assert_int_equal(parse_probes("", &a, &p, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(p);
	assert_int_equal(parse_probes("[]", &a, &p, &n, &err), 0);
	assert_int_equal(n, 0);
	/* Messages for a single probe say "probe". */
	assert_int_equal(parse_probes("name: a\ntcpSocket: {port: 1}\n", &a, &p,
				      &n, &err),
			 KM_EINVAL);
	assert_string_equal(err.msg, "p.yaml:1: probe.tcpSocket.host: Required "
				     "value: kubemedic probes run outside the "
				     "pod, so say which host to reach (an IP "
				     "address or a DNS name)");
	assert_null(p);
	assert_int_equal(n, 0);
	assert_int_equal(parse_probes("name: a\nlisten2: x\n", &a, &p, &n,
				      &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "p.yaml:2:1: unknown key \"listen2\" "
					"in probe (known: name,"));
	assert_int_equal(parse_probes("- {name: a, file: {path: /a}}\n"
				      "- {name: a, file: {path: /b}}\n",
				      &a, &p, &n, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "p.yaml:2: probes[1].name: duplicate "
					"name \"a\": probes[0] at line 1"));
	assert_int_equal(parse_probes("hello", &a, &p, &n, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg,
			       "p.yaml:1:1: expected a probe (a "
			       "mapping), a list of probes or a config "
			       "file, got \"hello\""));
	assert_int_equal(parse_probes("[", &a, &p, &n, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "p.yaml:2:1: invalid YAML"));
	km_arena_free(&a);
}

/* A probe copied from a pod spec (kubectl get pod -o yaml), with the host
 * kubemedic needs added, is the probe the kubelet would run. */
static void test_pasted_kubernetes_probe(void **state)
{
	static const char pasted[] = "name: liveness-web\n"
				     "httpGet:\n"
				     "  host: 10.244.1.17\n"
				     "  path: /healthz\n"
				     "  port: 8080\n"
				     "  scheme: HTTP\n"
				     "  httpHeaders:\n"
				     "  - name: Custom-Header\n"
				     "    value: Awesome\n"
				     "initialDelaySeconds: 3\n"
				     "periodSeconds: 3\n"
				     "timeoutSeconds: 1\n"
				     "successThreshold: 1\n"
				     "failureThreshold: 3\n";
	static struct km_kv headers[] = {{"Custom-Header", "Awesome"}};
	const struct km_probe want = {
		.name = "liveness-web",
		.type = KM_PROBE_HTTP,
		.host = "10.244.1.17",
		.port = 8080,
		.path = "/healthz",
		.headers = headers,
		.n_headers = 1,
		.initial_delay_ms = 3000,
		.timeout_ms = 1000,
		.period_ms = 3000,
		.success_threshold = 1,
		.failure_threshold = 3,
		.source = KM_SOURCE_CONFIG,
	};
	struct km_probe_timing t;
	struct km_arena a;
	struct km_probe *p;
	struct km_error err = {0};
	size_t n;

	(void)state;
	km_arena_init(&a, 0);
	assert_int_equal(parse_probes(pasted, &a, &p, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_true(km_probe_spec_equal(p, &want));
	assert_int_equal(p->source, KM_SOURCE_CONFIG);
	/* And back: the timing fields the user wrote. */
	km_probe_get_timing(p, &t);
	assert_int_equal(t.initial_delay_seconds, 3);
	assert_int_equal(t.period_seconds, 3);
	assert_int_equal(t.timeout_seconds, 1);
	assert_int_equal(t.success_threshold, 1);
	assert_int_equal(t.failure_threshold, 3);
	assert_int_equal(t.period_milliseconds, 0);
	assert_int_equal(t.timeout_milliseconds, 0);

	/* Pasted with the key it came under, it is a (wrong) config file. */
	assert_int_equal(parse_probes("livenessProbe:\n  exec: {command: "
				      "[x]}\n",
				      &a, &p, &n, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "unknown key \"livenessProbe\" in "
					"probe"));
	km_arena_free(&a);
}

static void test_load_file(void **state)
{
	struct km_config c;
	struct km_error err = {0};
	char *dir = km_test_tmpdir(), *path;
	FILE *f;

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&path, "%s/km.yaml", dir) > 0);

	km_config_defaults(&c);
	assert_int_equal(km_config_load(&c, path, &err), KM_ENOTFOUND);
	assert_non_null(strstr(err.msg, "km.yaml: cannot open: No such file"));
	assert_int_equal(km_config_load(&c, dir, &err), KM_EIO);
	assert_non_null(strstr(err.msg, "cannot read: Is a directory"));

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("threads: 2\nretention:\n  bogus: 1\n", f);
	fclose(f);
	assert_int_equal(km_config_load(&c, path, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "km.yaml:3:3: unknown key \"bogus\" "
					"in retention"));
	assert_null(c.path);
	assert_int_equal(c.threads, 0);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("threads: 2\n", f);
	fclose(f);
	assert_int_equal(km_config_load(&c, path, &err), 0);
	assert_string_equal(c.path, path);
	assert_int_equal(c.threads, 2);
	km_config_free(&c);

	km_test_rmrf(dir);
	free(path);
	free(dir);
}

/* The daemon's file names a caFile on this machine: km_config_load checks
 * it (a FIFO would stall the probe engine), km_config_load_string (text
 * from elsewhere, the CLI's) does not. */
static void test_ca_file_checked_at_load(void **state)
{
	static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n"
				  "-----END CERTIFICATE-----\n";
	struct km_config c;
	struct km_error err = {0};
	char *dir = km_test_tmpdir(), *path, *fifo, *ca, *yaml, want[700];
	FILE *f;

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&path, "%s/km.yaml", dir) > 0);
	assert_true(asprintf(&fifo, "%s/ca-fifo", dir) > 0);
	assert_true(asprintf(&ca, "%s/ca.pem", dir) > 0);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	f = fopen(ca, "w");
	assert_non_null(f);
	fputs(pem, f);
	fclose(f);

	assert_true(asprintf(&yaml,
			     "probes:\n"
			     "  - name: ok\n"
			     "    tcpSocket: {host: 127.0.0.1, port: 1}\n"
			     "  - name: tls\n"
			     "    httpGet: {host: 127.0.0.1, port: 1, scheme: "
			     "HTTPS,\n"
			     "              tlsVerify: true, caFile: %s}\n",
			     fifo) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	km_config_defaults(&c);
	alarm(10); /* a FIFO opened for good would hang here */
	assert_int_equal(km_config_load(&c, path, &err), KM_EINVAL);
	alarm(0);
	snprintf(want, sizeof want,
		 "%s:4: probes[1].httpGet.caFile: %s: a FIFO, not a regular "
		 "file",
		 path, fifo);
	assert_string_equal(err.msg, want);
	assert_int_equal(c.n_probes, 0);
	/* The same text from elsewhere is not about this machine. */
	assert_int_equal(
		km_config_load_string(&c, yaml, strlen(yaml), "x", &err), 0);
	assert_int_equal(c.n_probes, 2);
	km_config_free(&c);
	free(yaml);

	/* A real bundle loads. */
	assert_true(asprintf(&yaml,
			     "probes:\n  - name: tls\n"
			     "    httpGet: {host: h, port: 1, scheme: HTTPS, "
			     "caFile: %s}\n",
			     ca) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	km_config_defaults(&c);
	assert_int_equal(km_config_load(&c, path, &err), 0);
	assert_string_equal(c.probes[0].ca_file, ca);
	km_config_free(&c);
	free(yaml);

	/* Not there, or no certificate in it. */
	assert_true(asprintf(&yaml,
			     "probes:\n  - name: tls\n"
			     "    httpGet: {host: h, port: 1, scheme: HTTPS, "
			     "caFile: %s}\n",
			     path) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	km_config_defaults(&c);
	assert_int_equal(km_config_load(&c, path, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "probes[0].httpGet.caFile: "));
	assert_non_null(strstr(err.msg, "holds no PEM certificate"));
	km_config_free(&c);
	free(yaml);

	km_test_rmrf(dir);
	free(ca);
	free(fifo);
	free(path);
	free(dir);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	buf = calloc(1, 1 << 20);
	if (buf)
		len = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

/* deploy/kubemedic.example.yaml is safe on a fresh machine and loads. */
static void test_example_file(void **state)
{
	struct km_config c;
	struct km_error err = {0};
	const char *path = KM_SOURCE_DIR "/deploy/kubemedic.example.yaml";

	(void)state;
	km_config_defaults(&c);
	if (km_config_load(&c, path, &err) != 0)
		fprintf(stderr, "%s\n", err.msg);
	assert_int_equal(km_config_load(&c, path, &err), 0);
	assert_string_equal(c.path, path);
	assert_string_equal(c.listen, "127.0.0.1:7070");
	assert_string_equal(c.db_path, "kubemedic.db");
	/* Plaintext local callers read; changes need a token (make run). */
	assert_string_equal(c.auth_local_user, "local");
	assert_int_equal(c.auth_local_role, KM_ROLE_VIEWER);
	assert_string_equal(c.auth_token_file, "kubemedic.tokens");
	assert_false(c.insecure);
	assert_int_equal(c.n_probes, 3);
	assert_int_equal(c.probes[0].type, KM_PROBE_FILE);
	assert_string_equal(c.probes[0].path, "/tmp/kubemedic-heartbeat");
	assert_true(c.probes[0].max_age_s > 0);
	assert_int_equal(c.probes[1].type, KM_PROBE_EXEC);
	assert_string_equal(c.probes[1].argv[0], "true");
	assert_int_equal(c.probes[2].type, KM_PROBE_TCP);
	assert_string_equal(c.probes[2].host, "127.0.0.1");
	assert_int_equal(c.probes[2].port, 7070);
	for (size_t i = 0; i < c.n_probes; i++)
		assert_int_equal(c.probes[i].source, KM_SOURCE_CONFIG);
	km_config_free(&c);
}

/* The YAML examples of docs/config.md load: the documentation cannot
 * drift from the loader unnoticed. Each ```yaml block after `heading`
 * up to the next "## " heading is checked with check(). */
static void check_doc_blocks(const char *heading, int min_blocks,
			     void (*check)(const char *yaml, size_t len))
{
	char *doc = read_file(KM_SOURCE_DIR "/docs/config.md");
	const char *p, *end, *block;
	int blocks = 0;

	assert_non_null(doc);
	p = strstr(doc, heading);
	assert_non_null(p);
	p += strlen(heading);
	end = strstr(p, "\n## ");
	if (!end)
		end = p + strlen(p);
	while ((block = strstr(p, "```yaml\n")) && block < end) {
		const char *close;

		block += strlen("```yaml\n");
		close = strstr(block, "```");
		assert_non_null(close);
		check(block, (size_t)(close - block));
		blocks++;
		p = close + 3;
	}
	assert_true(blocks >= min_blocks);
	free(doc);
}

static void check_config_block(const char *yaml, size_t len)
{
	struct km_config c;
	struct km_error err = {0};

	km_config_defaults(&c);
	if (km_config_load_string(&c, yaml, len, "docs", &err) != 0)
		fprintf(stderr, "docs/config.md example: %s\n", err.msg);
	assert_int_equal(err.code, 0);
	km_config_free(&c);
}

static void check_probes_block(const char *yaml, size_t len)
{
	struct km_arena a;
	struct km_probe *p;
	struct km_error err = {0};
	size_t n;

	km_arena_init(&a, 0);
	if (km_config_parse_probes(yaml, len, "docs", &a, &p, &n, &err) != 0)
		fprintf(stderr, "docs/config.md example: %s\n", err.msg);
	assert_int_equal(err.code, 0);
	assert_true(n >= 1);
	km_arena_free(&a);
}

static void test_doc_examples(void **state)
{
	(void)state;
	check_doc_blocks("## A complete example", 1, check_config_block);
	check_doc_blocks("## Probes", 1, check_config_block);
	check_doc_blocks("## Kubernetes clusters", 1, check_config_block);
	check_doc_blocks("## Recovery", 1, check_config_block);
	check_doc_blocks("## What probes created through the API may touch", 1,
			 check_config_block);
	check_doc_blocks("## Probe files for the CLI", 3, check_probes_block);
}

/* recovery: the engine's keys, the budget and the policies, with their
 * defaults; every refusal names the key and the line. */
static void test_recovery_section(void **state)
{
	struct km_config c;
	const struct km_policy_config *p;

	(void)state;
	/* Defaults. */
	load_ok(&c, "");
	assert_int_equal(c.recovery_workers, 4);
	assert_int_equal(c.recovery_queue_max, 1024);
	assert_int_equal(c.recovery_max_attempts, 5);
	assert_int_equal(c.recovery_verify_window_ms, 120000);
	assert_false(c.recovery_dry_run);
	assert_int_equal(c.recovery_max_policy_targets, 100000);
	assert_int_equal(c.recovery_pod_grace_ms, -1);
	assert_int_equal(c.recovery_drain_timeout_ms, 300000);
	assert_int_equal(c.recovery_drain_retry_ms, 5000);
	assert_false(c.leader_election);
	assert_null(c.lease_ns);
	assert_string_equal(c.lease_name, "kubemedic-recovery");
	assert_int_equal(c.lease_duration_ms, 15000);
	assert_int_equal(c.renew_deadline_ms, 10000);
	assert_int_equal(c.retry_period_ms, 2000);
	load_ok(&c, "recovery:\n  leaderElection: {enabled: true, namespace: "
		    "ops, name: km.lease, identity: a-1, leaseDuration: 3s, "
		    "renewDeadline: 2s, retryPeriod: 500ms}\n");
	assert_true(c.leader_election);
	assert_string_equal(c.lease_ns, "ops");
	assert_string_equal(c.lease_name, "km.lease");
	assert_string_equal(c.lease_identity, "a-1");
	assert_int_equal(c.lease_duration_ms, 3000);
	assert_int_equal(c.renew_deadline_ms, 2000);
	assert_int_equal(c.retry_period_ms, 500);
	assert_int_equal(c.recovery_budget.max_concurrent, 20);
	assert_int_equal(c.recovery_budget.max_concurrent_per_cluster, 10);
	assert_int_equal(c.recovery_budget.rates[KM_ACTION_CORDON].count, 1);
	assert_int_equal(c.recovery_budget.rates[KM_ACTION_CORDON].per_ms,
			 60000);
	assert_int_equal(c.recovery_budget.rates[KM_ACTION_RESTART_POD].count,
			 30);
	assert_int_equal(c.recovery_budget.global_rates[KM_ACTION_DRAIN].count,
			 0);
	assert_int_equal(c.recovery_budget.storm_share_pct, 40);
	assert_int_equal(c.recovery_budget.storm_min_unhealthy, 3);
	assert_int_equal(c.n_policies, 0);
	km_config_free(&c);

	load_ok(&c,
		"recovery:\n"
		"  workers: 8\n"
		"  queueMax: 64\n"
		"  maxAttempts: 3\n"
		"  verifyWindow: 90s\n"
		"  dryRun: true\n"
		"  maxPolicyTargets: 500\n"
		"  podGracePeriod: 0s\n"
		"  drain: {timeout: 90s, retryInterval: 2s}\n"
		"  budget:\n"
		"    maxConcurrent: 6\n"
		"    maxConcurrentPerCluster: 2\n"
		"    rates:\n"
		"      cordon: {rate: 2/h, burst: 2}\n"
		"      drain: {rate: 1/10m}\n"
		"      restart_pod: {rate: 0}\n"
		"    globalRates: {rollout_restart: {rate: 5/s, burst: 7}}\n"
		"    storm: {share: 25, minUnhealthy: 5}\n"
		"  policies:\n"
		"    - name: crashloop\n"
		"      match:\n"
		"        clusters: [prod-eu]\n"
		"        kinds: [pod]\n"
		"        namespaces: [shop, web]\n"
		"        labelSelector: app=web\n"
		"      trigger:\n"
		"        unhealthyFor: 30s\n"
		"        reasons: [CrashLoopBackOff, \"node lease not "
		"renewed\"]\n"
		"      action: restart_pod\n"
		"      escalation: {after: 2, ladder: [rollout_restart, "
		"cordon]}\n"
		"      maxAttempts: 4\n"
		"      backoff: {initial: 5s, max: 2m, resetAfter: 15m}\n"
		"    - name: nodes\n"
		"      match: {kinds: [node]}\n"
		"      trigger: {reasons: [NotReady]}\n"
		"      action: cordon\n");
	assert_int_equal(c.recovery_workers, 8);
	assert_int_equal(c.recovery_queue_max, 64);
	assert_int_equal(c.recovery_max_attempts, 3);
	assert_int_equal(c.recovery_verify_window_ms, 90000);
	assert_true(c.recovery_dry_run);
	assert_int_equal(c.recovery_max_policy_targets, 500);
	assert_int_equal(c.recovery_pod_grace_ms, 0);
	assert_int_equal(c.recovery_drain_timeout_ms, 90000);
	assert_int_equal(c.recovery_drain_retry_ms, 2000);
	assert_int_equal(c.recovery_budget.max_concurrent, 6);
	assert_int_equal(c.recovery_budget.max_concurrent_per_cluster, 2);
	assert_int_equal(c.recovery_budget.rates[KM_ACTION_CORDON].count, 2);
	assert_int_equal(c.recovery_budget.rates[KM_ACTION_CORDON].per_ms,
			 3600000);
	assert_int_equal(c.recovery_budget.rates[KM_ACTION_CORDON].burst, 2);
	assert_int_equal(c.recovery_budget.rates[KM_ACTION_DRAIN].per_ms,
			 600000);
	assert_int_equal(c.recovery_budget.rates[KM_ACTION_DRAIN].burst, 1);
	assert_int_equal(c.recovery_budget.rates[KM_ACTION_RESTART_POD].count,
			 0);
	/* Not named: its default stays. */
	assert_int_equal(c.recovery_budget.rates[KM_ACTION_UNCORDON].count, 5);
	assert_int_equal(
		c.recovery_budget.global_rates[KM_ACTION_ROLLOUT_RESTART].count,
		5);
	assert_int_equal(
		c.recovery_budget.global_rates[KM_ACTION_ROLLOUT_RESTART].per_ms,
		1000);
	assert_int_equal(
		c.recovery_budget.global_rates[KM_ACTION_ROLLOUT_RESTART].burst,
		7);
	assert_int_equal(c.recovery_budget.storm_share_pct, 25);
	assert_int_equal(c.recovery_budget.storm_min_unhealthy, 5);
	assert_int_equal(c.n_policies, 2);
	p = &c.policies[0];
	assert_string_equal(p->name, "crashloop");
	assert_int_equal(p->n_clusters, 1);
	assert_string_equal(p->clusters[0], "prod-eu");
	assert_int_equal(p->kinds, 1u << KM_KIND_POD);
	assert_int_equal(p->n_namespaces, 2);
	assert_string_equal(p->namespaces[1], "web");
	assert_string_equal(p->label_selector, "app=web");
	assert_int_equal(p->unhealthy_for_ms, 30000);
	assert_int_equal(p->n_reasons, 2);
	assert_string_equal(p->reasons[1], "node lease not renewed");
	assert_int_equal(p->n_ladder, 3);
	assert_int_equal(p->ladder[0], KM_ACTION_RESTART_POD);
	assert_int_equal(p->ladder[1], KM_ACTION_ROLLOUT_RESTART);
	assert_int_equal(p->ladder[2], KM_ACTION_CORDON);
	assert_int_equal(p->escalate_after, 2);
	assert_int_equal(p->max_attempts, 4);
	assert_int_equal(p->backoff.initial_ms, 5000);
	assert_int_equal(p->backoff.max_ms, 120000);
	assert_int_equal(p->backoff.reset_after_ms, 900000);
	/* A policy's defaults. */
	p = &c.policies[1];
	assert_int_equal(p->kinds, 1u << KM_KIND_NODE);
	assert_int_equal(p->n_clusters, 0);
	assert_null(p->label_selector);
	assert_int_equal(p->unhealthy_for_ms, 0);
	assert_int_equal(p->n_ladder, 1);
	assert_int_equal(p->escalate_after, 3);
	assert_int_equal(p->max_attempts, 3);
	assert_int_equal(p->backoff.initial_ms, 10000);
	assert_int_equal(p->backoff.max_ms, 300000);
	assert_int_equal(p->backoff.reset_after_ms, 600000);
	/* What the modules take, they take. */
	{
		struct km_policy_set *s = NULL;
		struct km_budget *b = NULL;
		struct km_error err = {0};

		assert_int_equal(km_policy_set_new(c.policies, c.n_policies,
						   NULL, &s, &err),
				 0);
		assert_int_equal(km_budget_new(&c.recovery_budget, &b, &err),
				 0);
		km_policy_set_free(s);
		km_budget_free(b);
	}
	km_config_free(&c);
}

/* A pod's mirrored liveness probe may be a policy's kind. */
static void test_recovery_probe_kind(void **state)
{
	struct km_config c;

	(void)state;
	load_ok(&c, "recovery:\n  policies:\n    - name: liveness\n"
		    "      match: {kinds: [probe], namespaces: [shop]}\n"
		    "      trigger: {unhealthyFor: 0s}\n"
		    "      action: restart_pod\n"
		    "      escalation: {ladder: [rollout_restart, drain]}\n");
	assert_int_equal(c.n_policies, 1);
	assert_int_equal(c.policies[0].kinds, 1u << KM_KIND_PROBE);
	assert_int_equal(c.policies[0].n_ladder, 3);
	assert_int_equal(c.policies[0].ladder[0], KM_ACTION_RESTART_POD);
	km_config_free(&c);
}

static void test_recovery_errors(void **state)
{
	static const struct {
		const char *yaml, *want;
	} bad[] = {
		{"recovery: {workers: 0}\n",
		 "test.yaml:1:21: recovery.workers: "},
		{"recovery: {verifyWindow: 2h}\n",
		 "test.yaml:1:26: recovery.verifyWindow: must be between 1s "
		 "and 1h, got \"2h\""},
		{"recovery: {dryRun: yes}\n",
		 "test.yaml:1:20: recovery.dryRun"},
		{"recovery: {podGracePeriod: 2h}\n",
		 "recovery.podGracePeriod: must be between 0s and 1h"},
		{"recovery: {podGracePeriod: -5s}\n",
		 "recovery.podGracePeriod"},
		{"recovery: {drain: {timeout: 1s}}\n",
		 "recovery.drain.timeout: must be between 10s and 24h"},
		{"recovery: {drain: {retryInterval: 10m}}\n",
		 "recovery.drain.retryInterval: must be between 1s and 5m"},
		{"recovery: {drain: {retry: 1s}}\n",
		 "unknown key \"retry\" in recovery.drain (known: timeout, "
		 "retryInterval)"},
		{"recovery: {leaderElection: {namespace: Kube_System}}\n",
		 "recovery.leaderElection.namespace: \"Kube_System\" is no "
		 "namespace name"},
		{"recovery: {leaderElection: {name: -lease}}\n",
		 "recovery.leaderElection.name: \"-lease\" is no Lease name"},
		{"recovery: {leaderElection: {identity: \"\"}}\n",
		 "recovery.leaderElection.identity: 1 to 128 bytes"},
		{"recovery: {leaderElection: {leaseDuration: 5s, "
		 "renewDeadline: 5s}}\n",
		 "recovery.leaderElection: retryPeriod (2000ms) < renewDeadline "
		 "(5000ms) < leaseDuration (5000ms) is needed"},
		{"recovery: {leaderElection: {enabled: 1}}\n",
		 "recovery.leaderElection.enabled"},
		{"recovery: {workrs: 2}\n",
		 "test.yaml:1:12: unknown key \"workrs\" in recovery (known: "
		 "workers, queueMax, maxAttempts, verifyWindow, dryRun, "
		 "maxPolicyTargets, budget, policies, leaderElection, "
		 "podGracePeriod, drain)"},
		{"recovery:\n  budget: {maxConcurrent: 2, "
		 "maxConcurrentPerCluster: 3}\n",
		 "test.yaml:2:55: recovery.budget.maxConcurrentPerCluster (3) "
		 "must be at most maxConcurrent (2)"},
		{"recovery:\n  budget:\n    rates: {cordon: {rate: 1/week}}\n",
		 "test.yaml:3:28: recovery.budget.rates.cordon.rate: expected "
		 "a rate: COUNT/PERIOD"},
		{"recovery:\n  budget:\n    rates: {cordon: {rate: 1/2d}}\n",
		 "test.yaml:3:28: recovery.budget.rates.cordon.rate: the "
		 "period of \"1/2d\" must be between 1s and 1d"},
		{"recovery:\n  budget:\n    rates: {cordon: {burst: 2}}\n",
		 "test.yaml:3:21: recovery.budget.rates.cordon.rate: Required "
		 "value"},
		{"recovery:\n  budget:\n    rates: {reboot: {rate: 1/h}}\n",
		 "test.yaml:3:13: unknown key \"reboot\" in "
		 "recovery.budget.rates (known: restart_pod, rollout_restart, "
		 "cordon, uncordon, drain)"},
		{"recovery:\n  budget:\n    storm: {share: 100}\n",
		 "test.yaml:3:20: recovery.budget.storm.share: "},
		{"recovery:\n  policies: {name: a}\n",
		 "test.yaml:2:13: recovery.policies: expected a list of "
		 "policies"},
		{"recovery:\n  policies:\n    - match: {kinds: [pod]}\n",
		 "test.yaml:3:7: recovery.policies[0].name: Required value"},
		{"recovery:\n  policies:\n    - name: Crash_Loop\n"
		 "      match: {kinds: [pod]}\n      trigger: {unhealthyFor: "
		 "1m}\n      action: restart_pod\n",
		 "test.yaml:3:13: recovery.policies[0].name: must be "
		 "lower-case letters"},
		{"recovery:\n  policies:\n    - name: a\n      trigger: "
		 "{unhealthyFor: 1m}\n      action: restart_pod\n",
		 "test.yaml:3:7: recovery.policies[0].match: Required value"},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [service]}\n",
		 "test.yaml:4:23: recovery.policies[0].match.kinds[0]: "
		 "\"service\" is not a kind a policy acts on (pod, node, "
		 "deployment, statefulset, daemonset, probe)"},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [probe, probes]}\n",
		 "test.yaml:4:30: recovery.policies[0].match.kinds[1]: "
		 "\"probes\" is not a kind a policy acts on"},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [pod]}\n      action: restart_pod\n",
		 "test.yaml:3:7: recovery.policies[0].trigger: Required value: "
		 "unhealthyFor, reasons or both"},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [pod]}\n      trigger: {unhealthyFor: "
		 "1m}\n",
		 "test.yaml:3:7: recovery.policies[0].action: Required value"},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [pod]}\n      trigger: {unhealthyFor: "
		 "1m}\n      action: reboot\n",
		 "test.yaml:6:15: recovery.policies[0].action: unknown action "
		 "\"reboot\""},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [node]}\n      trigger: {unhealthyFor: "
		 "1m}\n      action: restart_pod\n",
		 "test.yaml:6:15: recovery.policies[0].action: restart_pod does "
		 "not apply to node (the kinds this policy matches)"},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [pod]}\n      trigger: {unhealthyFor: "
		 "1m}\n      action: restart_pod\n"
		 "      escalation: {ladder: [rollout_restart, uncordon]}\n",
		 "test.yaml:7:46: recovery.policies[0].escalation.ladder[1]: "
		 "uncordon heals nothing"},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [pod], labelSelector: \"app in (\"}\n"
		 "      trigger: {unhealthyFor: 1m}\n      action: "
		 "restart_pod\n",
		 "test.yaml:4:44: recovery.policies[0].match.labelSelector: "},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [pod], namespaces: [\"\"]}\n"
		 "      trigger: {unhealthyFor: 1m}\n      action: "
		 "restart_pod\n",
		 "test.yaml:4:42: recovery.policies[0].match.namespaces[0]: "
		 "must not be empty"},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [pod]}\n      trigger: {unhealthyFor: "
		 "1m}\n      action: restart_pod\n"
		 "      backoff: {initial: 5m, max: 1m}\n",
		 "test.yaml:7:26: recovery.policies[0].backoff: needs 1s <= "
		 "initial (300000ms) <= max (60000ms) <= 1d"},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [pod]}\n      trigger: {unhealthyFor: "
		 "1m}\n      action: restart_pod\n      maxAttempts: 0\n",
		 "test.yaml:7:20: recovery.policies[0].maxAttempts: "},
		{"recovery:\n  policies:\n    - name: a\n"
		 "      match: {kinds: [pod]}\n      trigger: {unhealthyFor: "
		 "1m}\n      action: restart_pod\n      retries: 2\n",
		 "test.yaml:7:7: unknown key \"retries\" in "
		 "recovery.policies[0] (known: name, match, trigger, action, "
		 "escalation, maxAttempts, backoff)"},
		{"recovery:\n  policies:\n"
		 "    - {name: a, match: {kinds: [pod]}, trigger: {reasons: "
		 "[x]}, action: restart_pod}\n"
		 "    - {name: a, match: {kinds: [pod]}, trigger: {reasons: "
		 "[x]}, action: restart_pod}\n",
		 "test.yaml:4:7: recovery.policies[1].name: duplicate name "
		 "\"a\": recovery.policies[0] at line 3 has it already"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		check_error(KM_EINVAL, bad[i].yaml, bad[i].want, NULL);
}

/* tls, insecure and auth: what each key takes, and the listen rule. */
static void test_security_keys(void **state)
{
	struct km_config c;
	struct km_error err = {0};
	struct km_client_config cc;
	struct km_arena a;

	(void)state;
	/* Bearer tokens reviewed by the cluster: off unless asked. */
	km_config_defaults(&c);
	assert_false(c.auth_kube_tokens);
	km_config_free(&c);
	load_ok(&c, "auth: {kubernetesTokens: true}\n");
	assert_true(c.auth_kube_tokens);
	km_config_free(&c);
	check_error(KM_EINVAL, "auth: {kubernetesTokens: 1}\n",
		    "test.yaml:1:26: auth.kubernetesTokens: expected true or "
		    "false, got \"1\"",
		    NULL);
	check_error(KM_EINVAL, "auth: {kubernetesToken: true}\n",
		    "did you mean \"kubernetesTokens\"?", NULL);
	/* Roles from the cluster's RBAC: off unless asked; true is the
	 * defaults. */
	km_config_defaults(&c);
	assert_false(c.auth_kube_access);
	km_config_free(&c);
	load_ok(&c, "auth: {kubernetesTokens: true, "
		    "kubernetesAccessReview: true}\n");
	assert_true(c.auth_kube_access);
	for (int r = KM_ROLE_VIEWER; r <= KM_ROLE_ADMIN; r++) {
		assert_string_equal(c.auth_kube_access_as[r].group,
				    "kubemedic.io");
		assert_string_equal(c.auth_kube_access_as[r].resource,
				    "health");
		assert_string_equal(c.auth_kube_access_as[r].ns, "");
		assert_string_equal(c.auth_kube_access_as[r].subresource, "");
		assert_string_equal(c.auth_kube_access_as[r].name, "");
	}
	assert_string_equal(c.auth_kube_access_as[KM_ROLE_VIEWER].verb, "get");
	assert_string_equal(c.auth_kube_access_as[KM_ROLE_OPERATOR].verb,
			    "update");
	assert_string_equal(c.auth_kube_access_as[KM_ROLE_ADMIN].verb, "*");
	assert_int_equal(c.auth_kube_access_allowed_ms, 60000);
	assert_int_equal(c.auth_kube_access_denied_ms, 10000);
	km_config_free(&c);
	load_ok(&c, "auth:\n  kubernetesTokens: true\n"
		    "  kubernetesAccessReview:\n"
		    "    viewer: {verb: list}\n"
		    "    operator: {resource: recoveries, verb: create, "
		    "namespace: kubemedic}\n"
		    "    admin: none\n"
		    "    cacheAllowed: 2s\n    cacheDenied: 0s\n");
	assert_true(c.auth_kube_access);
	assert_string_equal(c.auth_kube_access_as[KM_ROLE_VIEWER].verb, "list");
	assert_string_equal(c.auth_kube_access_as[KM_ROLE_VIEWER].resource,
			    "health");
	assert_string_equal(c.auth_kube_access_as[KM_ROLE_OPERATOR].resource,
			    "recoveries");
	assert_string_equal(c.auth_kube_access_as[KM_ROLE_OPERATOR].group,
			    "kubemedic.io");
	assert_string_equal(c.auth_kube_access_as[KM_ROLE_OPERATOR].ns,
			    "kubemedic");
	assert_null(c.auth_kube_access_as[KM_ROLE_ADMIN].verb);
	assert_int_equal(c.auth_kube_access_allowed_ms, 2000);
	assert_int_equal(c.auth_kube_access_denied_ms, 0);
	km_config_free(&c);
	load_ok(&c, "auth: {kubernetesTokens: true, kubernetesAccessReview: "
		    "{viewer: {group: \"\", resource: pods, subresource: log, "
		    "name: web-0, verb: get}}}\n");
	assert_string_equal(c.auth_kube_access_as[KM_ROLE_VIEWER].group, "");
	assert_string_equal(c.auth_kube_access_as[KM_ROLE_VIEWER].subresource,
			    "log");
	assert_string_equal(c.auth_kube_access_as[KM_ROLE_VIEWER].name,
			    "web-0");
	km_config_free(&c);
	load_ok(&c, "auth: {kubernetesAccessReview: false}\n");
	assert_false(c.auth_kube_access);
	km_config_free(&c);
	EXPECT_ERROR("auth: {kubernetesAccessReview: true}\n",
		     "test.yaml:1:32: auth.kubernetesAccessReview: needs "
		     "auth.kubernetesTokens: true");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "yes}\n",
		     "auth.kubernetesAccessReview: expected true or false");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{operater: {verb: update}}}\n",
		     "unknown key \"operater\" in auth.kubernetesAccessReview",
		     "did you mean \"operator\"?");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{viewer: {verbs: get}}}\n",
		     "in auth.kubernetesAccessReview.viewer",
		     "did you mean \"verb\"?");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{viewer: {verb: GET}}}\n",
		     "auth.kubernetesAccessReview.viewer.verb: \"GET\" is not "
		     "a verb");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{viewer: {verb: \"\"}}}\n",
		     "auth.kubernetesAccessReview.viewer.verb: \"\" is not a "
		     "verb");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{admin: {verb: ~}}}\n",
		     "auth.kubernetesAccessReview.admin.verb: expected a "
		     "string, got null");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{viewer: {group: Kubemedic.IO}}}\n",
		     "auth.kubernetesAccessReview.viewer.group: "
		     "\"Kubemedic.IO\" is not an API group");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{viewer: {resource: \"\"}}}\n",
		     "auth.kubernetesAccessReview.viewer.resource: \"\" is "
		     "not a resource");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{operator: {namespace: kube_system}}}\n",
		     "auth.kubernetesAccessReview.operator.namespace: "
		     "\"kube_system\" is not a namespace");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{operator: {name: a/b}}}\n",
		     "auth.kubernetesAccessReview.operator.name: \"a/b\" is "
		     "not an object name");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{admin: root}}\n",
		     "auth.kubernetesAccessReview.admin: expected {group, "
		     "resource, subresource, name, namespace, verb} or none");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{operator: {verb: get}}}\n",
		     "auth.kubernetesAccessReview.operator: asks the cluster "
		     "the same as viewer (\"get\" on health.kubemedic.io)");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{viewer: none, operator: none, admin: none}}\n",
		     "auth.kubernetesAccessReview: every role is none");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{cacheAllowed: 2h}}\n",
		     "auth.kubernetesAccessReview.cacheAllowed: must be "
		     "between 0s and 1h");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "{cacheDenied: 10}}\n",
		     "auth.kubernetesAccessReview.cacheDenied: the duration "
		     "\"10\" needs a unit");
	EXPECT_ERROR("auth: {kubernetesTokens: true, kubernetesAccessReview: "
		     "[viewer]}\n",
		     "auth.kubernetesAccessReview: expected a mapping");
	km_config_defaults(&c);
	assert_string_equal(c.auth_local_user, "local");
	assert_int_equal(c.auth_local_role, KM_ROLE_VIEWER);
	assert_int_equal(c.auth_health_role, KM_ROLE_VIEWER);
	assert_null(c.tls_cert_file);
	assert_false(c.insecure);
	/* Loopback needs nothing; beyond it, TLS or insecure: true. */
	assert_int_equal(km_config_check_listen(&c, &err), 0);
	c.listen = "0.0.0.0:7070";
	assert_int_equal(km_config_check_listen(&c, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "listen: 0.0.0.0:7070 is not a "
					"loopback address"));
	assert_non_null(strstr(err.msg, "insecure: true"));
	c.listen = "[::]:7070";
	assert_int_equal(km_config_check_listen(&c, &err), KM_EINVAL);
	c.listen = "[::1]:7070";
	assert_int_equal(km_config_check_listen(&c, &err), 0);
	c.listen = "localhost:7070";
	assert_int_equal(km_config_check_listen(&c, &err), 0);
	c.listen = "127.1.2.3:7070";
	assert_int_equal(km_config_check_listen(&c, &err), 0);
	km_config_free(&c);

	load_ok(&c, "listen: 0.0.0.0:7070\ninsecure: true\n");
	assert_true(c.insecure);
	assert_int_equal(km_config_check_listen(&c, &err), 0);
	km_config_free(&c);

	load_ok(&c, "listen: 10.0.0.1:7070\n"
		    "tls:\n  certFile: /s.crt\n  keyFile: /s.key\n"
		    "  clientCAFile: /ca.crt\n  clientCertificates: require\n"
		    "auth:\n  tokenFile: /tokens\n  localUser: \"\"\n"
		    "  localRole: none\n  healthRole: none\n"
		    "  bindings:\n"
		    "    - {role: admin, users: [alice]}\n"
		    "    - {role: viewer, groups: [ops, sre]}\n"
		    "retention: {audit: 30d}\n");
	assert_string_equal(c.tls_cert_file, "/s.crt");
	assert_string_equal(c.tls_key_file, "/s.key");
	assert_string_equal(c.tls_client_ca_file, "/ca.crt");
	assert_true(c.tls_require_client_cert);
	assert_int_equal(km_config_check_listen(&c, &err), 0);
	assert_string_equal(c.auth_token_file, "/tokens");
	assert_null(c.auth_local_user); /* "" turns it off */
	assert_int_equal(c.auth_local_role, KM_ROLE_NONE);
	assert_int_equal(c.auth_health_role, KM_ROLE_NONE);
	assert_int_equal(c.n_auth_bindings, 2);
	assert_int_equal(c.auth_bindings[0].role, KM_ROLE_ADMIN);
	assert_string_equal(c.auth_bindings[0].users[0], "alice");
	assert_int_equal(c.auth_bindings[1].n_groups, 2);
	assert_string_equal(c.auth_bindings[1].groups[1], "sre");
	assert_int_equal(c.audit_retention_ms, 30LL * 86400 * 1000);
	km_config_free(&c);

	EXPECT_ERROR("tls: {certFile: /a}\n",
		     "tls: certFile and keyFile go together");
	EXPECT_ERROR("tls: {clientCAFile: /ca}\n", "need certFile and keyFile");
	EXPECT_ERROR("tls: {certFile: /a, keyFile: /b, "
		     "clientCertificates: require}\n",
		     "tls.clientCertificates: needs clientCAFile");
	EXPECT_ERROR("tls: {certFile: /a, keyFile: /b, clientCAFile: /c, "
		     "clientCertificates: always}\n",
		     "tls.clientCertificates");
	EXPECT_ERROR("tls: {certFile: \"\", keyFile: /b}\n",
		     "tls.certFile: must not be empty");
	EXPECT_ERROR("insecure: yes please\n",
		     "insecure: expected true or false");
	EXPECT_ERROR("auth: {localRole: root}\n", "auth.localRole");
	EXPECT_ERROR("auth: {healthRole: admin}\n",
		     "auth.healthRole: none (anyone) or viewer");
	EXPECT_ERROR("auth: {bindings: [{users: [a]}]}\n",
		     "auth.bindings[0].role: Required value");
	EXPECT_ERROR("auth: {bindings: [{role: none, users: [a]}]}\n",
		     "auth.bindings[0].role");
	EXPECT_ERROR("auth: {bindings: [{role: viewer}]}\n",
		     "auth.bindings[0]: give users or groups");
	EXPECT_ERROR("auth: {bindings: [{role: viewer, users: [\"\"]}]}\n",
		     "auth.bindings[0].users[0]: expected a non-empty string");
	EXPECT_ERROR("auth: {bindings: {role: viewer}}\n",
		     "auth.bindings: expected a list");
	EXPECT_ERROR("auth: {tokens: /t}\n", "unknown key \"tokens\" in auth");

	/* The CLI's client.yaml. */
	km_arena_init(&a, 1024);
	assert_int_equal(
		km_config_parse_client(
			"server: km:7070\ntlsCA: /ca\ntlsCert: /c\n"
			"tlsKey: /k\ntokenFile: ~/t\n"
			"tlsServerName: kubemedic\n",
			strlen("server: km:7070\ntlsCA: /ca\ntlsCert: /c\n"
			       "tlsKey: /k\ntokenFile: ~/t\n"
			       "tlsServerName: kubemedic\n"),
			"client.yaml", &a, &cc, &err),
		0);
	assert_string_equal(cc.server, "km:7070");
	assert_string_equal(cc.tls_ca_file, "/ca");
	assert_string_equal(cc.token_file, "~/t");
	assert_string_equal(cc.server_name, "kubemedic");
	assert_int_equal(km_config_parse_client("tlsca: /x\n", 10,
						"client.yaml", &a, &cc, &err),
			 KM_EINVAL);
	assert_non_null(
		strstr(err.msg, "client.yaml:1:1: unknown key \"tlsca\""));
	km_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_flap_detection),
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_log_levels),
		cmocka_unit_test(test_load_over_existing),
		cmocka_unit_test(test_probe_http),
		cmocka_unit_test(test_probe_tcp_grpc),
		cmocka_unit_test(test_probe_exec_file),
		cmocka_unit_test(test_probe_list),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_api_section),
		cmocka_unit_test(test_prober_section),
		cmocka_unit_test(test_kube_section),
		cmocka_unit_test(test_clusters),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_probe_validation),
		cmocka_unit_test(test_duplicate_probe_names),
		cmocka_unit_test(test_threads_listen_limits),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_malformed_yaml),
		cmocka_unit_test(test_recursive_aliases),
		cmocka_unit_test(test_pathological),
		cmocka_unit_test(test_parse_probes),
		cmocka_unit_test(test_pasted_kubernetes_probe),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_ca_file_checked_at_load),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_doc_examples),
		cmocka_unit_test(test_security_keys),
		cmocka_unit_test(test_recovery_section),
		cmocka_unit_test(test_recovery_errors),
		cmocka_unit_test(test_recovery_probe_kind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
