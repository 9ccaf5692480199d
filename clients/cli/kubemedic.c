/*
 * kubemedic — the command line for kubemedicd, on the C client library.
 *
 * Tables for people, -o json for scripts: one JSON document per answer, a
 * list as one array (written as its pages arrive, one element per line;
 * "[]" when it is empty), and JSON Lines for watch, which never ends.
 *
 * Whatever a server sent is printed in tables and messages through
 * km_text_safe (km_json.h): a probe's output or a cause can hold terminal
 * escape sequences and line breaks, which are shown as escapes, never
 * written to the terminal. (JSON output escapes them by its own rules.)
 *
 * Exit status: 0 success, 1 the server answered an error or could not be
 * reached, 2 a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_availability.h"
#include "km_client.h"
#include "km_config.h"
#include "km_json.h"
#include "km_probe.h"
#include "km_time.h"

#define DEFAULT_SERVER "127.0.0.1:7070"

static const char usage_text[] =
	"usage: kubemedic [--server HOST:PORT] [-o table|json] COMMAND ...\n"
	"\n"
	"Probes:\n"
	"  probes create -f FILE             probes from YAML (a probe, a list, or a\n"
	"                                    config file's probes:)\n"
	"  probes create NAME HANDLER [TIMING] [--label K=V]...\n"
	"      HANDLER: --http URL [-H 'Name: value']... [--tls-verify] [--ca-file F]\n"
	"               --tcp HOST:PORT | --grpc HOST:PORT [--grpc-service S]\n"
	"               --file PATH [--min-size N] [--max-age DURATION]\n"
	"               --exec [--env K=V]... [--workdir DIR] -- COMMAND [ARG]...\n"
	"      TIMING:  --period D --probe-timeout D --initial-delay D\n"
	"               --success-threshold N --failure-threshold N\n"
	"  probes get NAME\n"
	"  probes list [-l SELECTOR]\n"
	"  probes update (-f FILE | NAME HANDLER ...) [--generation N]\n"
	"                                    replaces the whole definition\n"
	"  probes delete NAME\n"
	"\n"
	"Health:\n"
	"  status TARGET                     verdict, last result, last transition\n"
	"  targets [--kind K] [--state S] [-l SELECTOR] [--cluster C]\n"
	"          [--namespace NS] [--node N] [--owner O] [--uid U]\n"
	"  history TARGET [--since T] [--until T] [--failures|--successes]\n"
	"                 [--oldest-first] [--limit N]\n"
	"                                    runs of results of one outcome,\n"
	"                                    under a line of the failures per\n"
	"                                    step of the window (default 24h)\n"
	"  latency TARGET [--since T] [--until T] [--step D]\n"
	"                                    results, failures and p50/p90/p99\n"
	"                                    per step (default: the last hour,\n"
	"                                    about 60 steps; D whole minutes)\n"
	"  transitions TARGET [--since T] [--until T] [--oldest-first] [--limit N]\n"
	"  watch [TARGET]... [--kind K] [-l SELECTOR] [--cluster C]\n"
	"        [--namespace NS] [--node N] [--owner O] [--uid U]\n"
	"        [--since-sequence N | --from-oldest]\n"
	"                                    transitions as they happen; with N,\n"
	"                                    first those stored after sequence N\n"
	"                                    (--from-oldest: all stored), then a\n"
	"                                    line where the live ones start\n"
	"  health [SERVICE]                  grpc.health.v1 Check (\"\" = the daemon)\n"
	"  availability (TARGET | -l SELECTOR [--kind K] [--cluster C] |\n"
	"        --kind K [--cluster C] | --cluster C) [--since T] [--until T]\n"
	"        [--step D]                  uptime, down time, incidents, MTTR,\n"
	"                                    MTBF, step by step (default 60\n"
	"                                    steps) and each recovery action's\n"
	"                                    fixes; default window: 30 days\n"
	"\n"
	"Recovery (operators act, viewers read):\n"
	"  recover TARGET --action A --reason TEXT [--dry-run] [--force]\n"
	"        [--idempotency-key K]       restart_pod, rollout_restart, cordon\n"
	"                                    or uncordon; recorded, then done\n"
	"                                    and checked by kubemedicd\n"
	"  recoveries [TARGET] [--state PHASE] [--action A] [--cluster C]\n"
	"        [--requester WHO] [--since T] [--until T] [--limit N]\n"
	"                                    recoveries, newest first (cluster\n"
	"                                    \"-\": the unprefixed one)\n"
	"  recoveries -w [TARGET] [--since-sequence N | --from-oldest]\n"
	"                                    each change of a recovery as it is\n"
	"                                    recorded (first the stored ones\n"
	"                                    after N)\n"
	"  recovery ID                       one recovery\n"
	"  cancel ID [--reason TEXT]         a recovery not yet dispatched\n"
	"  storms [--active] [--cluster C] [--since T] [--until T] [--limit N]\n"
	"                                    the storm guard's storms, newest\n"
	"                                    first: while one is on, automatic\n"
	"                                    recoveries in its group stop\n"
	"  policies                          the automatic recovery policies\n"
	"\n"
	"Audit (admins):\n"
	"  audit [--identity USER] [--method METHOD] [--since T] [--until T]\n"
	"        [--limit N]                 changes and refusals, newest first\n"
	"\n"
	"Tokens (no server needed):\n"
	"  token new USER [GROUP,...] --out FILE\n"
	"                                    a new random bearer token into FILE\n"
	"                                    (created 0600), and its line for\n"
	"                                    auth.tokenFile on stdout\n"
	"\n"
	"Options:\n"
	"  -s, --server HOST:PORT  kubemedicd address ($KUBEMEDIC_SERVER, default " DEFAULT_SERVER
	")\n"
	"  -o, --output FORMAT     table (default) or json (a list is one array;\n"
	"                          watch prints one object per line)\n"
	"      --timeout D         deadline of each call (default 10s)\n"
	"      --tls-ca FILE       TLS, trusting FILE's CA ($KUBEMEDIC_TLS_CA)\n"
	"      --tls-cert FILE     client certificate, mutual TLS "
	"($KUBEMEDIC_TLS_CERT)\n"
	"      --tls-key FILE      its key ($KUBEMEDIC_TLS_KEY)\n"
	"      --tls-server-name N the name in the server's certificate, if "
	"not its host\n"
	"      --token-file FILE   a bearer token ($KUBEMEDIC_TOKEN_FILE)\n"
	"Defaults for these and --server come from $KUBEMEDIC_CONFIG, else\n"
	"~/.config/kubemedic/client.yaml (keys server, tlsCA, tlsCert, tlsKey,\n"
	"tokenFile, tlsServerName); the environment wins over the file, flags\n"
	"over both.\n"
	"\n"
	"TARGET is kind/namespace/name: probe//checkout-http, pod/default/web-0.\n"
	"T is RFC 3339 (2026-11-24T09:00:00Z) or an age (90m, 2h, 7d: that long\n"
	"ago). D is a duration: 500ms, 10s, 5m, 1h30m.\n";

int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "kubemedic: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(kubemedic --help for usage)\n");
	return 2;
}

/* ---- parsing helpers ----------------------------------------------------- */

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* RFC 3339 ("2026-11-24T09:00:00Z", "...+02:00", fractional seconds) or an
 * age ("2h": that long ago). */
int parse_time(const char *s, int64_t *us)
{
	struct tm tm = {0};
	const char *p;
	int64_t ms, frac = 0, scale = 100000;
	time_t t;

	if (km_duration_parse(s, &ms) == 0) {
		*us = km_now_us() - ms * 1000;
		return 0;
	}
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			if (scale)
				frac += (*p - '0') * scale;
	}
	t = timegm(&tm);
	if (*p == 'Z' && !p[1]) {
		/* UTC */
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
			  ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		t -= *p == '+' ? off : -off;
	} else {
		return -1;
	}
	*us = (int64_t)t * 1000000 + frac;
	return 0;
}

Google__Protobuf__Timestamp *timestamp(struct km_arena *a, int64_t us)
{
	Google__Protobuf__Timestamp *ts = km_arena_alloc(a, sizeof *ts);

	if (ts) {
		*ts = (Google__Protobuf__Timestamp)
			GOOGLE__PROTOBUF__TIMESTAMP__INIT;
		ts->seconds = us / 1000000;
		ts->nanos = (int32_t)(us % 1000000 * 1000);
	}
	return ts;
}

const char *fmt_ts(char buf[40], const Google__Protobuf__Timestamp *ts)
{
	struct tm tm;
	time_t t;

	if (!ts)
		return "-";
	t = (time_t)ts->seconds;
	gmtime_r(&t, &tm);
	strftime(buf, 40, "%Y-%m-%d %H:%M:%SZ", &tm);
	return buf;
}

static const char *fmt_ms(char buf[32], int64_t ms)
{
	if (ms % 1000)
		snprintf(buf, 32, "%lldms", (long long)ms);
	else
		snprintf(buf, 32, "%llds", (long long)(ms / 1000));
	return buf;
}

/* "HEALTH_STATE_HEALTHY" -> "HEALTHY" */
const char *enum_short(const ProtobufCEnumDescriptor *d, int v,
		       const char *prefix)
{
	const ProtobufCEnumValue *ev =
		protobuf_c_enum_descriptor_get_value(d, v);
	size_t n = strlen(prefix);

	if (!ev)
		return "?";
	return strncmp(ev->name, prefix, n) == 0 ? ev->name + n : ev->name;
}

/* An enum value by its short or full name, case-insensitive. */
static int parse_enum(const ProtobufCEnumDescriptor *d, const char *prefix,
		      const char *s, int *out)
{
	size_t n = strlen(prefix);

	for (unsigned i = 0; i < d->n_values; i++) {
		const char *name = d->values[i].name;
		if (!strcasecmp(name, s) ||
		    (!strncmp(name, prefix, n) && !strcasecmp(name + n, s))) {
			*out = d->values[i].value;
			return 0;
		}
	}
	return -1;
}

/* ---- output -------------------------------------------------------------- */

int print_json(const ProtobufCMessage *m)
{
	struct km_error err = {0};

	if (km_json_write(stdout, m, KM_JSON_PRETTY, &err)) {
		fprintf(stderr, "kubemedic: %s\n", err.msg);
		return 1;
	}
	return 0;
}

static int print_json_line(const ProtobufCMessage *m)
{
	struct km_error err = {0};

	if (km_json_write(stdout, m, 0, &err)) {
		fprintf(stderr, "kubemedic: %s\n", err.msg);
		return 1;
	}
	return 0;
}

/* s as it may be shown on a terminal (km_text_safe), in a. */
const char *safe(struct km_arena *a, const char *s)
{
	const char *out = km_text_safe(s, a);

	return out ? out : "(out of memory)";
}

/* -o json for a list: one array, written as the pages arrive, one element
 * per line; "[]" for none. On an error midway the array is left open, so
 * the output does not parse as a complete answer. */
int json_list_add(struct json_list *l, const ProtobufCMessage *m)
{
	struct km_error err = {0};
	char *s;

	if (km_json_to_string(m, 0, &s, NULL, &err)) {
		fprintf(stderr, "kubemedic: %s\n", err.msg);
		return 1;
	}
	printf("%s%s", l->n++ ? ",\n" : "[\n", s);
	free(s);
	return 0;
}

void json_list_end(const struct json_list *l)
{
	fputs(l->n ? "\n]\n" : "[]\n", stdout);
}

int rpc_failed(struct cli *cli)
{
	fprintf(stderr, "kubemedic: %s\n", safe(&cli->a, cli->st.message));
	return 1;
}

/* Map entries of any map<string,string> field: the entry's key and value
 * are its fields 1 and 2, found through the descriptor. */
static void print_labels(struct km_arena *a, size_t n,
			 ProtobufCMessage *const *entries)
{
	if (!n)
		printf("-");
	for (size_t i = 0; i < n; i++) {
		const ProtobufCMessageDescriptor *d = entries[i]->descriptor;
		const char *base = (const char *)entries[i];
		const char *k = *(char *const *)(base + d->fields[0].offset);
		const char *v = *(char *const *)(base + d->fields[1].offset);

		printf("%s%s=%s", i ? "," : "", safe(a, k), safe(a, v));
	}
}

static const char *probe_type(const Kubemedic__V1__Probe *p)
{
	return p->http_get     ? (strcmp(p->http_get->scheme, "HTTPS") ? "http"
								       : "https")
	       : p->tcp_socket ? "tcp"
	       : p->grpc       ? "grpc"
	       : p->exec       ? "exec"
	       : p->file       ? "file"
			       : "?";
}

static int64_t period_ms(const Kubemedic__V1__Probe *p)
{
	return p->period_milliseconds ? p->period_milliseconds
				      : (int64_t)p->period_seconds * 1000;
}

static int64_t timeout_ms(const Kubemedic__V1__Probe *p)
{
	return p->timeout_milliseconds ? p->timeout_milliseconds
				       : (int64_t)p->timeout_seconds * 1000;
}

static void print_probe_row(struct km_arena *a, const Kubemedic__V1__Probe *p)
{
	char b1[32], b2[32];

	printf("%-28s %-6s %-8s %-8s %3d/%-3d %-7s ", safe(a, p->name),
	       probe_type(p), fmt_ms(b1, period_ms(p)),
	       fmt_ms(b2, timeout_ms(p)), p->success_threshold,
	       p->failure_threshold,
	       p->source == KUBEMEDIC__V1__PROBE_SOURCE__PROBE_SOURCE_CONFIG
		       ? "config"
		       : "api");
	print_labels(a, p->n_labels, (ProtobufCMessage *const *)p->labels);
	printf("\n");
}

static void print_probe_header(void)
{
	printf("%-28s %-6s %-8s %-8s %-7s %-7s %s\n", "NAME", "TYPE", "PERIOD",
	       "TIMEOUT", "OK/FAIL", "SOURCE", "LABELS");
}

static void print_probe(struct km_arena *a, const Kubemedic__V1__Probe *p)
{
	char b[40], t1[32], t2[32];

	printf("Name:        %s\n", safe(a, p->name));
	printf("Target:      %s\n", safe(a, p->target));
	printf("Source:      %s\n",
	       p->source == KUBEMEDIC__V1__PROBE_SOURCE__PROBE_SOURCE_CONFIG
		       ? "config file"
		       : "API");
	printf("Generation:  %lld\n", (long long)p->generation);
	printf("Labels:      ");
	print_labels(a, p->n_labels, (ProtobufCMessage *const *)p->labels);
	printf("\n");
	if (p->http_get) {
		printf("HTTP GET:    %s://%s:%d%s\n",
		       strcmp(p->http_get->scheme, "HTTPS") ? "http" : "https",
		       safe(a, p->http_get->host), p->http_get->port,
		       safe(a, p->http_get->path));
		for (size_t i = 0; i < p->http_get->n_http_headers; i++)
			printf("  Header:    %s: %s\n",
			       safe(a, p->http_get->http_headers[i]->name),
			       safe(a, p->http_get->http_headers[i]->value));
		if (p->http_get->tls_verify)
			printf("  TLS:       verified%s%s\n",
			       *p->http_get->ca_file ? " against " : "",
			       safe(a, p->http_get->ca_file));
	} else if (p->tcp_socket) {
		printf("TCP:         %s:%d\n", safe(a, p->tcp_socket->host),
		       p->tcp_socket->port);
	} else if (p->grpc) {
		printf("gRPC health: %s:%d service \"%s\"\n",
		       safe(a, p->grpc->host), p->grpc->port,
		       safe(a, p->grpc->service));
	} else if (p->exec) {
		printf("Exec:       ");
		for (size_t i = 0; i < p->exec->n_command; i++)
			printf(" %s", safe(a, p->exec->command[i]));
		printf("\n");
		if (*p->exec->working_dir)
			printf("  Workdir:   %s\n",
			       safe(a, p->exec->working_dir));
		for (size_t i = 0; i < p->exec->n_env; i++)
			printf("  Env:       %s=%s\n",
			       safe(a, p->exec->env[i]->name),
			       safe(a, p->exec->env[i]->value));
	} else if (p->file) {
		printf("File:        %s", safe(a, p->file->path));
		if (p->file->min_size)
			printf(" (at least %lld bytes)",
			       (long long)p->file->min_size);
		if (p->file->max_age_seconds)
			printf(" (modified in the last %llds)",
			       (long long)p->file->max_age_seconds);
		printf("\n");
	}
	printf("Timing:      initial delay %ds, period %s, timeout %s\n",
	       p->initial_delay_seconds, fmt_ms(t1, period_ms(p)),
	       fmt_ms(t2, timeout_ms(p)));
	printf("Thresholds:  %d success, %d failure\n", p->success_threshold,
	       p->failure_threshold);
	printf("Created:     %s\n", fmt_ts(b, p->create_time));
	printf("Updated:     %s\n", fmt_ts(b, p->update_time));
}

/* ---- connection ---------------------------------------------------------- */

int connect_server(struct cli *cli)
{
	struct km_client_options co = {
		.tls_ca_file = cli->o.tls_ca,
		.tls_cert_file = cli->o.tls_cert,
		.tls_key_file = cli->o.tls_key,
		.token_file = cli->o.token_file,
		.server_name = cli->o.server_name,
	};

	if (km_client_open_ex(cli->o.server, &co, &cli->c, &cli->st))
		return rpc_failed(cli);
	km_client_set_timeout(cli->c, cli->o.timeout_ms);
	return 0;
}

/* ---- probes -------------------------------------------------------------- */

/* Builds a probe from command-line flags (the YAML path uses the config
 * parser instead, so both accept exactly what the daemon accepts). */
static int probe_from_flags(struct cli *cli, const char *name,
			    Kubemedic__V1__Probe **out)
{
	struct opts *o = &cli->o;
	struct km_arena *a = &cli->a;
	Kubemedic__V1__Probe *p = km_arena_alloc(a, sizeof *p);
	int handlers = !!o->http + !!o->tcp + !!o->grpc + !!o->file + o->exec;
	int64_t v;

	if (!p)
		return 1;
	*p = (Kubemedic__V1__Probe)KUBEMEDIC__V1__PROBE__INIT;
	p->name = (char *)name;
	if (handlers != 1)
		return usage_error("give exactly one of --http, --tcp, --grpc, "
				   "--file, --exec%s",
				   "");
	if (o->http) {
		Kubemedic__V1__HTTPGetAction *h = km_arena_alloc(a, sizeof *h);
		char *url = km_arena_strdup(a, o->http), *host, *port, *path;
		const char *rest;

		*h = (Kubemedic__V1__HTTPGetAction)
			KUBEMEDIC__V1__HTTPGET_ACTION__INIT;
		if (!strncmp(url, "https://", 8)) {
			h->scheme = "HTTPS";
			host = url + 8;
			h->port = 443;
		} else if (!strncmp(url, "http://", 7)) {
			h->scheme = "HTTP";
			host = url + 7;
			h->port = 80;
		} else {
			return usage_error("--http: want http://HOST[:PORT]"
					   "[/PATH] or https://..., got \"%s\"",
					   o->http);
		}
		path = strchr(host, '/');
		h->path = path ? km_arena_strdup(a, path) : "/";
		if (path)
			*path = '\0';
		rest = host;
		if (*host == '[') { /* [::1]:8080 */
			char *close = strchr(host, ']');
			if (!close)
				return usage_error("--http: bad IPv6 host in "
						   "\"%s\"",
						   o->http);
			*close = '\0';
			host++;
			rest = close + 1;
			port = *rest == ':' ? (char *)rest + 1 : NULL;
		} else {
			port = strrchr(host, ':');
			if (port)
				*port++ = '\0';
		}
		if (port) {
			if (parse_int(port, 1, 65535, &v))
				return usage_error("--http: bad port in \"%s\"",
						   o->http);
			h->port = (int32_t)v;
		}
		h->host = host;
		h->tls_verify = o->tls_verify;
		if (o->ca_file)
			h->ca_file = (char *)o->ca_file;
		if (o->n_headers) {
			h->http_headers =
				km_arena_calloc(a, (size_t)o->n_headers,
						sizeof *h->http_headers);
			for (int i = 0; i < o->n_headers; i++) {
				Kubemedic__V1__HTTPHeader *hd =
					km_arena_alloc(a, sizeof *hd);
				char *hv = km_arena_strdup(a, o->headers[i]);
				char *colon = strchr(hv, ':');

				if (!colon)
					return usage_error(
						"-H: want 'Name: value', got "
						"\"%s\"",
						o->headers[i]);
				*colon++ = '\0';
				while (*colon == ' ')
					colon++;
				*hd = (Kubemedic__V1__HTTPHeader)
					KUBEMEDIC__V1__HTTPHEADER__INIT;
				hd->name = hv;
				hd->value = colon;
				h->http_headers[i] = hd;
			}
			h->n_http_headers = (size_t)o->n_headers;
		}
		p->http_get = h;
	} else if (o->tcp || o->grpc) {
		char *hp = km_arena_strdup(a, o->tcp ? o->tcp : o->grpc);
		char *colon = strrchr(hp, ':');
		char *host = hp;

		if (!colon || parse_int(colon + 1, 1, 65535, &v))
			return usage_error("want HOST:PORT, got \"%s\"", hp);
		*colon = '\0';
		if (*host == '[' && colon[-1] == ']') {
			host++;
			colon[-1] = '\0';
		}
		if (o->tcp) {
			p->tcp_socket =
				km_arena_alloc(a, sizeof *p->tcp_socket);
			*p->tcp_socket = (Kubemedic__V1__TCPSocketAction)
				KUBEMEDIC__V1__TCPSOCKET_ACTION__INIT;
			p->tcp_socket->host = host;
			p->tcp_socket->port = (int32_t)v;
		} else {
			p->grpc = km_arena_alloc(a, sizeof *p->grpc);
			*p->grpc = (Kubemedic__V1__GRPCAction)
				KUBEMEDIC__V1__GRPCACTION__INIT;
			p->grpc->host = host;
			p->grpc->port = (int32_t)v;
			if (o->grpc_service)
				p->grpc->service = (char *)o->grpc_service;
		}
	} else if (o->file) {
		p->file = km_arena_alloc(a, sizeof *p->file);
		*p->file = (Kubemedic__V1__FileAction)
			KUBEMEDIC__V1__FILE_ACTION__INIT;
		p->file->path = (char *)o->file;
		p->file->min_size = o->min_size;
		if (o->max_age) {
			int64_t ms;
			if (km_duration_parse(o->max_age, &ms))
				return usage_error("--max-age: bad duration "
						   "\"%s\"",
						   o->max_age);
			p->file->max_age_seconds = (ms + 999) / 1000;
		}
	} else {
		Kubemedic__V1__ExecAction *e = km_arena_alloc(a, sizeof *e);

		*e = (Kubemedic__V1__ExecAction)KUBEMEDIC__V1__EXEC_ACTION__INIT;
		if (!o->n_cmd)
			return usage_error("--exec: give the command after "
					   "--, e.g. --exec -- /bin/check "
					   "--quick%s",
					   "");
		e->command = o->cmd;
		e->n_command = (size_t)o->n_cmd;
		if (o->workdir)
			e->working_dir = (char *)o->workdir;
		if (o->n_env) {
			e->env = km_arena_calloc(a, (size_t)o->n_env,
						 sizeof *e->env);
			for (int i = 0; i < o->n_env; i++) {
				Kubemedic__V1__EnvVar *ev =
					km_arena_alloc(a, sizeof *ev);
				char *kv = km_arena_strdup(a, o->env[i]);
				char *eq = strchr(kv, '=');

				if (!eq)
					return usage_error(
						"--env: want K=V, got "
						"\"%s\"",
						o->env[i]);
				*eq = '\0';
				*ev = (Kubemedic__V1__EnvVar)
					KUBEMEDIC__V1__ENV_VAR__INIT;
				ev->name = kv;
				ev->value = eq + 1;
				e->env[i] = ev;
			}
			e->n_env = (size_t)o->n_env;
		}
		p->exec = e;
	}

	/* Timing: whole seconds go to the kubelet's fields. */
	if (o->period) {
		int64_t ms;
		if (km_duration_parse(o->period, &ms) || ms > INT32_MAX)
			return usage_error("--period: bad duration \"%s\"",
					   o->period);
		if (ms % 1000)
			p->period_milliseconds = (int32_t)ms;
		else
			p->period_seconds = (int32_t)(ms / 1000);
	}
	if (o->probe_timeout) {
		int64_t ms;
		if (km_duration_parse(o->probe_timeout, &ms) || ms > INT32_MAX)
			return usage_error("--probe-timeout: bad duration "
					   "\"%s\"",
					   o->probe_timeout);
		if (ms % 1000)
			p->timeout_milliseconds = (int32_t)ms;
		else
			p->timeout_seconds = (int32_t)(ms / 1000);
	}
	if (o->initial_delay) {
		int64_t ms;
		if (km_duration_parse(o->initial_delay, &ms) || ms % 1000 ||
		    ms > INT32_MAX)
			return usage_error("--initial-delay: whole seconds, "
					   "got \"%s\"",
					   o->initial_delay);
		p->initial_delay_seconds = (int32_t)(ms / 1000);
	}
	p->success_threshold = (int32_t)o->success_threshold;
	p->failure_threshold = (int32_t)o->failure_threshold;
	if (o->n_labels) {
		p->labels = km_arena_calloc(a, (size_t)o->n_labels,
					    sizeof *p->labels);
		for (int i = 0; i < o->n_labels; i++) {
			Kubemedic__V1__Probe__LabelsEntry *l =
				km_arena_alloc(a, sizeof *l);
			char *kv = km_arena_strdup(a, o->labels[i]);
			char *eq = strchr(kv, '=');

			if (!eq)
				return usage_error("--label: want K=V, got "
						   "\"%s\"",
						   o->labels[i]);
			*eq = '\0';
			*l = (Kubemedic__V1__Probe__LabelsEntry)
				KUBEMEDIC__V1__PROBE__LABELS_ENTRY__INIT;
			l->key = kv;
			l->value = eq + 1;
			p->labels[i] = l;
		}
		p->n_labels = (size_t)o->n_labels;
	}
	*out = p;
	return 0;
}

/* A probe read from YAML, as a request: the shared conversion, without the
 * fields only the server fills in. */
static Kubemedic__V1__Probe *request_probe(struct km_arena *a,
					   const struct km_probe *k)
{
	Kubemedic__V1__Probe *p = km_probe_to_pb(k, a);

	if (p) {
		p->source =
			KUBEMEDIC__V1__PROBE_SOURCE__PROBE_SOURCE_UNSPECIFIED;
		p->target = "";
		p->generation = 0;
		p->create_time = NULL;
		p->update_time = NULL;
	}
	return p;
}

/* The probes a create/update names: from -f FILE, or from flags. */
static int probes_to_send(struct cli *cli, const char *verb,
			  Kubemedic__V1__Probe ***out, size_t *n)
{
	struct opts *o = &cli->o;

	if (o->filename) {
		struct km_error err = {0};
		struct km_probe *v;
		size_t cnt;
		char *text = NULL;
		size_t len = 0;
		FILE *f = strcmp(o->filename, "-") ? fopen(o->filename, "r")
						   : stdin;

		if (o->n_pos > 2)
			return usage_error("probes %s -f FILE takes no NAME",
					   verb);
		if (!f) {
			fprintf(stderr, "kubemedic: %s: %s\n", o->filename,
				strerror(errno));
			return 2;
		}
		{
			FILE *mem = open_memstream(&text, &len);
			char buf[8192];
			size_t r;

			while ((r = fread(buf, 1, sizeof buf, f)) > 0)
				fwrite(buf, 1, r, mem);
			fclose(mem);
		}
		if (f != stdin)
			fclose(f);
		if (km_config_parse_probes(text, len, o->filename, &cli->a, &v,
					   &cnt, &err)) {
			free(text);
			fprintf(stderr, "kubemedic: %s\n",
				safe(&cli->a, err.msg));
			return 2;
		}
		free(text);
		if (!cnt) {
			fprintf(stderr, "kubemedic: %s: no probes in it\n",
				o->filename);
			return 2;
		}
		*out = km_arena_calloc(&cli->a, cnt, sizeof **out);
		for (size_t i = 0; i < cnt; i++)
			if (!((*out)[i] = request_probe(&cli->a, &v[i]))) {
				fprintf(stderr, "kubemedic: out of memory\n");
				return 1;
			}
		*n = cnt;
		return 0;
	}
	if (o->n_pos != 3)
		return usage_error("probes %s: give -f FILE, or NAME and a "
				   "handler flag",
				   verb);
	*out = km_arena_calloc(&cli->a, 1, sizeof **out);
	*n = 1;
	return probe_from_flags(cli, o->pos[2], &(*out)[0]);
}

static int probes_create(struct cli *cli)
{
	Kubemedic__V1__Probe **v;
	size_t n;
	int rc = probes_to_send(cli, "create", &v, &n), failed = 0;

	if (rc || (rc = connect_server(cli)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		Kubemedic__V1__CreateProbeRequest req =
			KUBEMEDIC__V1__CREATE_PROBE_REQUEST__INIT;
		Kubemedic__V1__Probe *got;

		req.probe = v[i];
		if (km_client_create_probe(cli->c, &req, &cli->a, &got,
					   &cli->st)) {
			fprintf(stderr, "kubemedic: probe %s: %s\n",
				safe(&cli->a, v[i]->name),
				safe(&cli->a, cli->st.message));
			failed = 1;
			continue;
		}
		if (cli->o.json)
			print_json_line(&got->base);
		else
			printf("probe/%s created (target %s)\n",
			       safe(&cli->a, got->name),
			       safe(&cli->a, got->target));
	}
	return failed;
}

static int probes_update(struct cli *cli)
{
	Kubemedic__V1__Probe **v;
	size_t n;
	int rc = probes_to_send(cli, "update", &v, &n), failed = 0;

	if (rc || (rc = connect_server(cli)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		Kubemedic__V1__UpdateProbeRequest req =
			KUBEMEDIC__V1__UPDATE_PROBE_REQUEST__INIT;
		Kubemedic__V1__Probe *got;

		v[i]->generation = cli->o.generation;
		req.probe = v[i];
		if (km_client_update_probe(cli->c, &req, &cli->a, &got,
					   &cli->st)) {
			fprintf(stderr, "kubemedic: probe %s: %s\n",
				safe(&cli->a, v[i]->name),
				safe(&cli->a, cli->st.message));
			failed = 1;
			continue;
		}
		if (cli->o.json)
			print_json_line(&got->base);
		else
			printf("probe/%s updated (generation %lld)\n",
			       safe(&cli->a, got->name),
			       (long long)got->generation);
	}
	return failed;
}

static int probes_get(struct cli *cli)
{
	Kubemedic__V1__GetProbeRequest req =
		KUBEMEDIC__V1__GET_PROBE_REQUEST__INIT;
	Kubemedic__V1__Probe *p;
	int rc;

	if (cli->o.n_pos != 3)
		return usage_error("probes get NAME%s", "");
	if ((rc = connect_server(cli)))
		return rc;
	req.name = cli->o.pos[2];
	if (km_client_get_probe(cli->c, &req, &cli->a, &p, &cli->st))
		return rpc_failed(cli);
	if (cli->o.json)
		return print_json(&p->base);
	print_probe(&cli->a, p);
	return 0;
}

static int probes_list(struct cli *cli)
{
	Kubemedic__V1__ListProbesRequest req =
		KUBEMEDIC__V1__LIST_PROBES_REQUEST__INIT;
	struct json_list jl = {0};
	int rc, shown = 0;

	if (cli->o.n_pos != 2)
		return usage_error("probes list takes no NAME%s", "");
	if ((rc = connect_server(cli)))
		return rc;
	if (cli->o.selector)
		req.label_selector = (char *)cli->o.selector;
	req.page_size = 500;
	do {
		Kubemedic__V1__ListProbesResponse *r;

		if (km_client_list_probes(cli->c, &req, &cli->a, &r, &cli->st))
			return rpc_failed(cli);
		for (size_t i = 0; i < r->n_probes; i++) {
			if (cli->o.json) {
				if (json_list_add(&jl, &r->probes[i]->base))
					return 1;
				continue;
			}
			if (!shown++)
				print_probe_header();
			print_probe_row(&cli->a, r->probes[i]);
		}
		req.page_token = r->next_page_token;
	} while (req.page_token && *req.page_token);
	if (cli->o.json)
		json_list_end(&jl);
	else if (!shown)
		printf("No probes%s.\n", cli->o.selector ? " match" : "");
	return 0;
}

static int probes_delete(struct cli *cli)
{
	Kubemedic__V1__DeleteProbeRequest req =
		KUBEMEDIC__V1__DELETE_PROBE_REQUEST__INIT;
	Kubemedic__V1__DeleteProbeResponse *r;
	int rc;

	if (cli->o.n_pos != 3)
		return usage_error("probes delete NAME%s", "");
	if ((rc = connect_server(cli)))
		return rc;
	req.name = cli->o.pos[2];
	if (km_client_delete_probe(cli->c, &req, &cli->a, &r, &cli->st))
		return rpc_failed(cli);
	if (cli->o.json)
		return print_json(&r->base);
	printf("probe/%s deleted (its history is kept)\n",
	       safe(&cli->a, req.name));
	return 0;
}

static int cmd_probes(struct cli *cli)
{
	const char *sub = cli->o.n_pos > 1 ? cli->o.pos[1] : "";

	if (!strcmp(sub, "create"))
		return probes_create(cli);
	if (!strcmp(sub, "get"))
		return probes_get(cli);
	if (!strcmp(sub, "list"))
		return probes_list(cli);
	if (!strcmp(sub, "update"))
		return probes_update(cli);
	if (!strcmp(sub, "delete"))
		return probes_delete(cli);
	return usage_error("probes: want create, get, list, update or delete, "
			   "got \"%s\"",
			   sub);
}

/* ---- health -------------------------------------------------------------- */

static int status_recoveries(struct cli *cli, const char *target);

static int cmd_status(struct cli *cli)
{
	Kubemedic__V1__GetHealthRequest req =
		KUBEMEDIC__V1__GET_HEALTH_REQUEST__INIT;
	Kubemedic__V1__TargetHealth *h;
	char b[40];
	int rc;

	if (cli->o.n_pos != 2)
		return usage_error(
			"status TARGET (e.g. probe//checkout-http)%s", "");
	if ((rc = connect_server(cli)))
		return rc;
	req.target = cli->o.pos[1];
	if (km_client_get_health(cli->c, &req, &cli->a, &h, &cli->st))
		return rpc_failed(cli);
	if (cli->o.json)
		return print_json(&h->base);
	printf("Target:      %s\n", safe(&cli->a, h->target->name));
	printf("State:       %s%s\n", STATE(h->target->state),
	       h->target->flapping ? " (flapping)" : "");
	printf("Since:       %s\n", fmt_ts(b, h->target->state_since));
	if (h->last_result) {
		const Kubemedic__V1__ProbeResult *r = h->last_result;

		printf("Last result: %s at %s, %lld us",
		       r->success ? "ok" : "FAIL", fmt_ts(b, r->start_time),
		       (long long)r->duration_us);
		if (!r->success)
			printf(", %s %d", ERRCLASS(r->error_class),
			       r->status_code);
		if (*r->message)
			printf(", \"%s\"", safe(&cli->a, r->message));
		printf(" (%d in a row)\n", h->consecutive);
	} else {
		printf("Last result: none yet\n");
	}
	if (h->last_transition)
		printf("Transition:  %s -> %s at %s: %s\n",
		       STATE(h->last_transition->from_state),
		       STATE(h->last_transition->to_state),
		       fmt_ts(b, h->last_transition->time),
		       safe(&cli->a, h->last_transition->cause));
	return status_recoveries(cli, cli->o.pos[1]);
}

static int cmd_targets(struct cli *cli)
{
	Kubemedic__V1__ListTargetsRequest req =
		KUBEMEDIC__V1__LIST_TARGETS_REQUEST__INIT;
	struct json_list jl = {0};
	int rc, shown = 0, v;

	if (cli->o.n_pos != 1)
		return usage_error(
			"targets takes no argument (filters: --kind, "
			"--state, -l, --cluster, --namespace, --node, "
			"--owner, --uid)%s",
			"");
	if (cli->o.kind) {
		if (parse_enum(&kubemedic__v1__target_kind__descriptor,
			       "TARGET_KIND_", cli->o.kind, &v))
			return usage_error("--kind: unknown kind \"%s\"",
					   cli->o.kind);
		req.kind = v;
	}
	if (cli->o.state) {
		if (parse_enum(&kubemedic__v1__health_state__descriptor,
			       "HEALTH_STATE_", cli->o.state, &v))
			return usage_error("--state: unknown state \"%s\"",
					   cli->o.state);
		req.state = v;
	}
	if (cli->o.selector)
		req.label_selector = (char *)cli->o.selector;
	if (cli->o.cluster)
		req.cluster = (char *)cli->o.cluster;
	req.namespace_ = (char *)(cli->o.ns ? cli->o.ns : "");
	req.node = (char *)(cli->o.node ? cli->o.node : "");
	req.owner = (char *)(cli->o.owner ? cli->o.owner : "");
	req.uid = (char *)(cli->o.uid ? cli->o.uid : "");
	if ((rc = connect_server(cli)))
		return rc;
	req.page_size = 1000;
	do {
		Kubemedic__V1__ListTargetsResponse *r;

		if (km_client_list_targets(cli->c, &req, &cli->a, &r, &cli->st))
			return rpc_failed(cli);
		for (size_t i = 0; i < r->n_targets; i++) {
			const Kubemedic__V1__Target *t = r->targets[i];
			char b[40];

			if (cli->o.json) {
				if (json_list_add(&jl, &t->base))
					return 1;
				continue;
			}
			if (!shown++)
				printf("%-40s %-10s %-9s %-20s %s\n", "TARGET",
				       "STATE", "FLAPPING", "SINCE", "LABELS");
			printf("%-40s %-10s %-9s %-20s ",
			       safe(&cli->a, t->name), STATE(t->state),
			       t->flapping ? "yes" : "no",
			       fmt_ts(b, t->state_since));
			print_labels(&cli->a, t->n_labels,
				     (ProtobufCMessage *const *)t->labels);
			printf("\n");
		}
		req.page_token = r->next_page_token;
	} while (req.page_token && *req.page_token);
	if (cli->o.json)
		json_list_end(&jl);
	else if (!shown)
		printf("No targets match.\n");
	return 0;
}

int time_range(struct cli *cli, Google__Protobuf__Timestamp **start,
	       Google__Protobuf__Timestamp **end)
{
	int64_t us;

	if (cli->o.since) {
		if (parse_time(cli->o.since, &us))
			return usage_error("--since: want RFC 3339 or an age "
					   "like 2h, got \"%s\"",
					   cli->o.since);
		*start = timestamp(&cli->a, us);
	}
	if (cli->o.until) {
		if (parse_time(cli->o.until, &us))
			return usage_error("--until: want RFC 3339 or an age "
					   "like 2h, got \"%s\"",
					   cli->o.until);
		*end = timestamp(&cli->a, us);
	}
	return 0;
}

static int cmd_transitions(struct cli *cli)
{
	Kubemedic__V1__QueryTransitionsRequest req =
		KUBEMEDIC__V1__QUERY_TRANSITIONS_REQUEST__INIT;
	int64_t left = cli->o.limit ? cli->o.limit : 100;
	struct json_list jl = {0};
	int rc, shown = 0;

	if (cli->o.n_pos != 2)
		return usage_error("transitions TARGET%s", "");
	if ((rc = time_range(cli, &req.start_time, &req.end_time)) ||
	    (rc = connect_server(cli)))
		return rc;
	req.target = cli->o.pos[1];
	req.order = cli->o.oldest_first
			    ? KUBEMEDIC__V1__ORDER__ORDER_OLDEST_FIRST
			    : KUBEMEDIC__V1__ORDER__ORDER_NEWEST_FIRST;
	do {
		Kubemedic__V1__QueryTransitionsResponse *r;

		req.page_size = (int32_t)(left < 1000 ? left : 1000);
		if (km_client_query_transitions(cli->c, &req, &cli->a, &r,
						&cli->st))
			return rpc_failed(cli);
		for (size_t i = 0; i < r->n_transitions; i++) {
			const Kubemedic__V1__Transition *t = r->transitions[i];
			char b[40];

			if (cli->o.json) {
				if (json_list_add(&jl, &t->base))
					return 1;
				continue;
			}
			if (!shown++)
				printf("%-8s %-20s %-24s %-9s %s\n", "SEQ",
				       "TIME", "CHANGE", "FLAPPING", "CAUSE");
			printf("%-8lld %-20s %-10s -> %-10s %-9s %s\n",
			       (long long)t->sequence, fmt_ts(b, t->time),
			       STATE(t->from_state), STATE(t->to_state),
			       t->flapping ? "yes" : "no",
			       safe(&cli->a, t->cause));
		}
		left -= (int64_t)r->n_transitions;
		req.page_token = r->next_page_token;
	} while (left > 0 && req.page_token && *req.page_token);
	if (cli->o.json)
		json_list_end(&jl);
	else if (!shown)
		printf("No transitions in that range.\n");
	return 0;
}

/* Streams transitions until interrupted (or the server ends the stream). */
static int cmd_watch(struct cli *cli)
{
	Kubemedic__V1__WatchHealthRequest req =
		KUBEMEDIC__V1__WATCH_HEALTH_REQUEST__INIT;
	struct km_client_stream *s;
	int rc, v;

	if (cli->o.kind) {
		if (parse_enum(&kubemedic__v1__target_kind__descriptor,
			       "TARGET_KIND_", cli->o.kind, &v))
			return usage_error("--kind: unknown kind \"%s\"",
					   cli->o.kind);
		req.kind = v;
	}
	if (cli->o.selector)
		req.label_selector = (char *)cli->o.selector;
	if (cli->o.cluster)
		req.cluster = (char *)cli->o.cluster;
	req.namespace_ = (char *)(cli->o.ns ? cli->o.ns : "");
	req.node = (char *)(cli->o.node ? cli->o.node : "");
	req.owner = (char *)(cli->o.owner ? cli->o.owner : "");
	req.uid = (char *)(cli->o.uid ? cli->o.uid : "");
	if (cli->o.from_oldest && cli->o.since_seq)
		return usage_error("--from-oldest replays everything stored: "
				   "leave out --since-sequence%s",
				   "");
	req.since_sequence = cli->o.since_seq;
	req.from_oldest = cli->o.from_oldest;
	if (cli->o.n_pos > 1) {
		req.targets = cli->o.pos + 1;
		req.n_targets = (size_t)cli->o.n_pos - 1;
	}
	if ((rc = connect_server(cli)))
		return rc;
	if (km_client_stream_open(cli->c,
				  "/kubemedic.v1.HealthService/WatchHealth",
				  &req.base, &s, &cli->st))
		return rpc_failed(cli);
	if (!cli->o.json)
		printf("%-8s %-20s %-40s %-24s %s\n", "SEQ", "TIME", "TARGET",
		       "CHANGE", "CAUSE");
	fflush(stdout);
	for (;;) {
		ProtobufCMessage *m;
		const Kubemedic__V1__HealthEvent *ev;
		const Kubemedic__V1__Transition *t;
		char b[40];

		rc = km_client_stream_next(
			s, &kubemedic__v1__health_event__descriptor, &cli->a, 0,
			&m, &cli->st);
		if (rc)
			break;
		ev = (const Kubemedic__V1__HealthEvent *)m;
		t = ev->transition;
		if (cli->o.json)
			print_json_line(m);
		else if (ev->replay_end || !t)
			printf("-- stored transitions up to %lld above; live "
			       "from here --\n",
			       (long long)ev->sequence);
		else
			printf("%-8lld %-20s %-40s %-10s -> %-10s %s%s\n",
			       (long long)t->sequence, fmt_ts(b, t->time),
			       safe(&cli->a, t->target), STATE(t->from_state),
			       STATE(t->to_state), safe(&cli->a, t->cause),
			       t->flapping ? " [flapping]" : "");
		fflush(stdout);
		km_arena_reset(&cli->a);
	}
	km_client_stream_close(s);
	return rpc_failed(cli);
}

static int cmd_audit(struct cli *cli)
{
	Kubemedic__V1__ListAuditEventsRequest req =
		KUBEMEDIC__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
	int64_t left = cli->o.limit ? cli->o.limit : 100;
	struct json_list jl = {0};
	int rc, shown = 0;

	if (cli->o.n_pos != 1)
		return usage_error("audit takes no arguments (filters are "
				   "--identity, --method, --since, --until)%s",
				   "");
	if ((rc = time_range(cli, &req.start_time, &req.end_time)) ||
	    (rc = connect_server(cli)))
		return rc;
	req.identity = (char *)(cli->o.identity ? cli->o.identity : "");
	req.method = (char *)(cli->o.method ? cli->o.method : "");
	do {
		Kubemedic__V1__ListAuditEventsResponse *r;

		req.page_size = (int32_t)(left < 1000 ? left : 1000);
		if (km_client_list_audit_events(cli->c, &req, &cli->a, &r,
						&cli->st))
			return rpc_failed(cli);
		for (size_t i = 0; i < r->n_events; i++) {
			const Kubemedic__V1__AuditEvent *e = r->events[i];
			char b[40];

			if (cli->o.json) {
				if (json_list_add(&jl, &e->base))
					return 1;
				continue;
			}
			if (!shown++)
				printf("%-20s %-16s %-6s %-34s %-24s %s\n",
				       "TIME", "IDENTITY", "BY", "METHOD",
				       "OBJECT", "OUTCOME");
			printf("%-20s %-16s %-6s %-34s %-24s %s%s%s\n",
			       fmt_ts(b, e->time),
			       *e->identity ? safe(&cli->a, e->identity)
					    : "(anonymous)",
			       safe(&cli->a, e->authenticated_by),
			       safe(&cli->a,
				    strrchr(e->method, '.')
					    ? strrchr(e->method, '.') + 1
					    : e->method),
			       *e->object ? safe(&cli->a, e->object) : "-",
			       km_client_code_name(e->code),
			       *e->message ? ": " : "",
			       safe(&cli->a, e->message));
		}
		left -= (int64_t)r->n_events;
		req.page_token = r->next_page_token;
	} while (left > 0 && req.page_token && *req.page_token);
	if (cli->o.json)
		json_list_end(&jl);
	else if (!shown)
		printf("No audit events match.\n");
	return 0;
}

/* ---- recovery ------------------------------------------------------------ */

#define ACTION(v)                                                  \
	enum_short(&kubemedic__v1__recovery_action__descriptor, v, \
		   "RECOVERY_ACTION_")
#define PHASE(v)                                                  \
	enum_short(&kubemedic__v1__recovery_phase__descriptor, v, \
		   "RECOVERY_PHASE_")

/* The target's last recoveries, under its status. A daemon that refuses
 * to list them (an older one) leaves the status as it was. */
static int status_recoveries(struct cli *cli, const char *target)
{
	Kubemedic__V1__ListRecoveriesRequest req =
		KUBEMEDIC__V1__LIST_RECOVERIES_REQUEST__INIT;
	Kubemedic__V1__ListRecoveriesResponse *r;
	char b[40];

	req.target = (char *)target;
	req.page_size = 3;
	if (km_client_list_recoveries(cli->c, &req, &cli->a, &r, &cli->st))
		return 0;
	for (size_t i = 0; i < r->n_recoveries; i++) {
		const Kubemedic__V1__Recovery *v = r->recoveries[i];

		printf("%s %s %s %s by %s%s%s\n",
		       i ? "            " : "Recoveries:",
		       fmt_ts(b, v->create_time), ACTION(v->action),
		       PHASE(v->phase), safe(&cli->a, v->requester),
		       *v->last_error ? ": " : "",
		       safe(&cli->a, v->last_error));
	}
	return 0;
}

static void print_recovery(struct cli *cli, const Kubemedic__V1__Recovery *r)
{
	char b[40];

	printf("Recovery:    %s\n", safe(&cli->a, r->id));
	printf("Target:      %s (uid %s)\n", safe(&cli->a, r->target),
	       safe(&cli->a, r->target_uid));
	printf("Action:      %s%s%s\n", ACTION(r->action),
	       r->dry_run ? " (dry run)" : "", r->force ? " (forced)" : "");
	printf("Phase:       %s", PHASE(r->phase));
	if (*r->skip_rule)
		printf(" (%s)", safe(&cli->a, r->skip_rule));
	printf("\nReason:      %s\n", safe(&cli->a, r->reason));
	printf("Requester:   %s\n", safe(&cli->a, r->requester));
	printf("Attempts:    %d\n", r->attempts);
	if (*r->last_error)
		printf("Last answer: %s\n", safe(&cli->a, r->last_error));
	printf("Created:     %s\n", fmt_ts(b, r->create_time));
	printf("Updated:     %s\n", fmt_ts(b, r->update_time));
}

static int cmd_recover(struct cli *cli)
{
	Kubemedic__V1__RequestRecoveryRequest req =
		KUBEMEDIC__V1__REQUEST_RECOVERY_REQUEST__INIT;
	Kubemedic__V1__Recovery *r;
	int action, rc;

	if (cli->o.n_pos != 2)
		return usage_error("recover TARGET --action A --reason TEXT "
				   "(e.g. recover pod/shop/cart-0 --action "
				   "restart_pod --reason \"stuck\")%s",
				   "");
	if (!cli->o.action ||
	    parse_enum(&kubemedic__v1__recovery_action__descriptor,
		       "RECOVERY_ACTION_", cli->o.action, &action) ||
	    !action)
		return usage_error("--action: restart_pod, rollout_restart, "
				   "cordon, uncordon or drain (got \"%s\")",
				   cli->o.action ? cli->o.action : "");
	if (!cli->o.reason || !*cli->o.reason)
		return usage_error("--reason: say why, for the history%s", "");
	if ((rc = connect_server(cli)))
		return rc;
	req.target = cli->o.pos[1];
	req.action = (Kubemedic__V1__RecoveryAction)action;
	req.reason = (char *)cli->o.reason;
	req.dry_run = cli->o.dry_run;
	req.force = cli->o.force;
	req.idempotency_key = (char *)(cli->o.key ? cli->o.key : "");
	if (km_client_request_recovery(cli->c, &req, &cli->a, &r, &cli->st))
		return rpc_failed(cli);
	if (cli->o.json)
		return print_json(&r->base);
	print_recovery(cli, r);
	return 0;
}

static int cmd_recovery(struct cli *cli)
{
	Kubemedic__V1__GetRecoveryRequest req =
		KUBEMEDIC__V1__GET_RECOVERY_REQUEST__INIT;
	Kubemedic__V1__Recovery *r;
	int rc;

	if (cli->o.n_pos != 2)
		return usage_error("recovery ID%s", "");
	if ((rc = connect_server(cli)))
		return rc;
	req.id = cli->o.pos[1];
	if (km_client_get_recovery(cli->c, &req, &cli->a, &r, &cli->st))
		return rpc_failed(cli);
	if (cli->o.json)
		return print_json(&r->base);
	print_recovery(cli, r);
	return 0;
}

static int cmd_cancel(struct cli *cli)
{
	Kubemedic__V1__CancelRecoveryRequest req =
		KUBEMEDIC__V1__CANCEL_RECOVERY_REQUEST__INIT;
	Kubemedic__V1__Recovery *r;
	int rc;

	if (cli->o.n_pos != 2)
		return usage_error("cancel ID [--reason TEXT]%s", "");
	if ((rc = connect_server(cli)))
		return rc;
	req.id = cli->o.pos[1];
	req.reason = (char *)(cli->o.reason ? cli->o.reason : "");
	if (km_client_cancel_recovery(cli->c, &req, &cli->a, &r, &cli->st))
		return rpc_failed(cli);
	if (cli->o.json)
		return print_json(&r->base);
	print_recovery(cli, r);
	return 0;
}

/* recoveries -w [TARGET] [--since-sequence N]: each recovery event as it
 * is committed (after the stored ones after N). */
static int watch_recoveries(struct cli *cli)
{
	Kubemedic__V1__WatchRecoveriesRequest req =
		KUBEMEDIC__V1__WATCH_RECOVERIES_REQUEST__INIT;
	struct km_client_stream *s;
	int rc;

	req.target = cli->o.n_pos == 2 ? cli->o.pos[1] : "";
	req.since_sequence = cli->o.since_seq;
	req.from_oldest = cli->o.from_oldest;
	if (cli->o.from_oldest && cli->o.since_seq)
		return usage_error("--from-oldest replays everything stored: "
				   "leave out --since-sequence%s",
				   "");
	if ((rc = connect_server(cli)))
		return rc;
	if (km_client_stream_open(cli->c,
				  "/kubemedic.v1.RecoveryService/"
				  "WatchRecoveries",
				  &req.base, &s, &cli->st))
		return rpc_failed(cli);
	if (!cli->o.json)
		printf("%-8s %-20s %-8s %-16s %-14s %-36s %s\n", "SEQ", "TIME",
		       "ID", "ACTION", "PHASE", "TARGET", "ANSWER");
	fflush(stdout);
	for (;;) {
		ProtobufCMessage *m;
		const Kubemedic__V1__RecoveryEvent *ev;
		const Kubemedic__V1__Recovery *v;
		char b[40];

		rc = km_client_stream_next(
			s, &kubemedic__v1__recovery_event__descriptor, &cli->a,
			0, &m, &cli->st);
		if (rc)
			break;
		ev = (const Kubemedic__V1__RecoveryEvent *)m;
		v = ev->recovery;
		if (cli->o.json)
			print_json_line(m);
		else if (v)
			printf("%-8lld %-20s %-8s %-16s %-14s %-36s %s\n",
			       (long long)ev->sequence, fmt_ts(b, ev->time),
			       safe(&cli->a, v->id), ACTION(v->action),
			       PHASE(v->phase), safe(&cli->a, v->target),
			       safe(&cli->a, v->last_error));
		fflush(stdout);
		km_arena_reset(&cli->a);
	}
	km_client_stream_close(s);
	return rpc_failed(cli);
}

static int cmd_recoveries(struct cli *cli)
{
	Kubemedic__V1__ListRecoveriesRequest req =
		KUBEMEDIC__V1__LIST_RECOVERIES_REQUEST__INIT;
	int64_t left = cli->o.limit ? cli->o.limit : 100;
	struct json_list jl = {0};
	int rc, phase = 0, action = 0, shown = 0;

	if (cli->o.n_pos > 2)
		return usage_error("recoveries [TARGET] (filters are --state, "
				   "--action, --cluster, --requester, --since, "
				   "--until)%s",
				   "");
	if (cli->o.watch)
		return watch_recoveries(cli);
	if (cli->o.state &&
	    parse_enum(&kubemedic__v1__recovery_phase__descriptor,
		       "RECOVERY_PHASE_", cli->o.state, &phase))
		return usage_error("--state: a recovery phase (queued, "
				   "dispatched, succeeded, verified, ...), "
				   "not \"%s\"",
				   cli->o.state);
	if (cli->o.action &&
	    (parse_enum(&kubemedic__v1__recovery_action__descriptor,
			"RECOVERY_ACTION_", cli->o.action, &action) ||
	     !action))
		return usage_error("--action: restart_pod, rollout_restart, "
				   "cordon, uncordon or drain (got \"%s\")",
				   cli->o.action);
	req.action = (Kubemedic__V1__RecoveryAction)action;
	req.cluster = (char *)(cli->o.cluster ? cli->o.cluster : "");
	req.requester = (char *)(cli->o.requester ? cli->o.requester : "");
	if ((rc = time_range(cli, &req.start_time, &req.end_time)) ||
	    (rc = connect_server(cli)))
		return rc;
	req.target = cli->o.n_pos == 2 ? cli->o.pos[1] : "";
	req.phase = (Kubemedic__V1__RecoveryPhase)phase;
	do {
		Kubemedic__V1__ListRecoveriesResponse *r;

		req.page_size = (int32_t)(left < 1000 ? left : 1000);
		if (km_client_list_recoveries(cli->c, &req, &cli->a, &r,
					      &cli->st))
			return rpc_failed(cli);
		for (size_t i = 0; i < r->n_recoveries; i++) {
			const Kubemedic__V1__Recovery *v = r->recoveries[i];
			char b[40];

			if (cli->o.json) {
				if (json_list_add(&jl, &v->base))
					return 1;
				continue;
			}
			if (!shown++)
				printf("%-8s %-20s %-16s %-14s %-3s %-36s %s\n",
				       "ID", "CREATED", "ACTION", "PHASE", "#",
				       "TARGET", "LAST ANSWER");
			printf("%-8s %-20s %-16s %-14s %-3d %-36s %s\n",
			       safe(&cli->a, v->id), fmt_ts(b, v->create_time),
			       ACTION(v->action), PHASE(v->phase), v->attempts,
			       safe(&cli->a, v->target),
			       safe(&cli->a, v->last_error));
		}
		left -= (int64_t)r->n_recoveries;
		req.page_token = r->next_page_token;
	} while (left > 0 && req.page_token && *req.page_token);
	if (cli->o.json)
		json_list_end(&jl);
	else if (!shown)
		printf("No recoveries match.\n");
	return 0;
}

/* The step in whole seconds: --step, or the window in
 * KM_CLI_AVAILABILITY_STEPS steps (the server's default window when
 * --since and --until are not given). */
static int availability_step(struct cli *cli,
			     const Kubemedic__V1__GetAvailabilityRequest *req,
			     int64_t *step_s)
{
	int64_t ms, end, start;

	if (cli->o.step) {
		if (km_duration_parse(cli->o.step, &ms) || ms < 1000)
			return usage_error("--step: a duration of at least 1s, "
					   "got \"%s\"",
					   cli->o.step);
		*step_s = (ms + 999) / 1000;
		return 0;
	}
	end = req->end_time ? req->end_time->seconds * 1000000 +
				      req->end_time->nanos / 1000
			    : km_now_us();
	start = req->start_time ? req->start_time->seconds * 1000000 +
					  req->start_time->nanos / 1000
				: end - 30LL * 86400 * 1000000;
	*step_s = km_cli_availability_step(end - start);
	return 0;
}

static int cmd_availability(struct cli *cli)
{
	Kubemedic__V1__GetAvailabilityRequest req =
		KUBEMEDIC__V1__GET_AVAILABILITY_REQUEST__INIT;
	Kubemedic__V1__Availability *a;
	char subject[512];
	int64_t age;
	int rc, v;

	if (cli->o.n_pos > 2)
		return usage_error("availability takes one TARGET, or a "
				   "selection (-l, --kind, --cluster)%s",
				   "");
	if (cli->o.n_pos == 2 &&
	    (cli->o.selector || cli->o.kind || cli->o.cluster))
		return usage_error("availability: a TARGET or a selection (-l, "
				   "--kind, --cluster), not both%s",
				   "");
	if (cli->o.n_pos == 1 &&
	    !(cli->o.selector || cli->o.kind || cli->o.cluster))
		return usage_error("availability: TARGET, or a selection (-l "
				   "SELECTOR, --kind K, --cluster C)%s",
				   "");
	if (cli->o.kind) {
		if (parse_enum(&kubemedic__v1__target_kind__descriptor,
			       "TARGET_KIND_", cli->o.kind, &v) ||
		    !v)
			return usage_error("--kind: unknown kind \"%s\"",
					   cli->o.kind);
		req.kind = v;
	}
	req.target = cli->o.n_pos == 2 ? cli->o.pos[1] : "";
	req.label_selector = (char *)(cli->o.selector ? cli->o.selector : "");
	req.cluster = (char *)(cli->o.cluster ? cli->o.cluster : "");
	if ((rc = time_range(cli, &req.start_time, &req.end_time)))
		return rc;
	/* An age and no --until: the window ends at the now the age is
	 * counted from, so that "--since 1h" is exactly an hour (and its
	 * default step a whole minute). */
	if (cli->o.since && !cli->o.until &&
	    km_duration_parse(cli->o.since, &age) == 0) {
		int64_t now = km_now_us();

		req.start_time = timestamp(&cli->a, now - age * 1000);
		req.end_time = timestamp(&cli->a, now);
	}
	if ((rc = availability_step(cli, &req, &req.step_seconds)) ||
	    (rc = connect_server(cli)))
		return rc;
	if (km_client_get_availability(cli->c, &req, &cli->a, &a, &cli->st))
		return rpc_failed(cli);
	if (cli->o.json)
		return print_json(&a->base);
	if (cli->o.n_pos == 2)
		snprintf(subject, sizeof subject, "%s", req.target);
	else
		snprintf(subject, sizeof subject, "%s%s%s%s%s%s",
			 cli->o.selector ? "-l " : "",
			 cli->o.selector ? cli->o.selector : "",
			 cli->o.kind ? " --kind " : "",
			 cli->o.kind ? cli->o.kind : "",
			 cli->o.cluster ? " --cluster " : "",
			 cli->o.cluster ? cli->o.cluster : "");
	km_cli_availability_print(stdout, a, subject, &cli->a);
	return 0;
}

#define GROUP(v) \
	enum_short(&kubemedic__v1__storm_group__descriptor, v, "STORM_GROUP_")

static int cmd_storms(struct cli *cli)
{
	Kubemedic__V1__ListStormsRequest req =
		KUBEMEDIC__V1__LIST_STORMS_REQUEST__INIT;
	int64_t left = cli->o.limit ? cli->o.limit : 100;
	struct json_list jl = {0};
	int rc, shown = 0;

	if (cli->o.n_pos != 1)
		return usage_error("storms (filters are --active, --cluster, "
				   "--since, --until)%s",
				   "");
	if ((rc = time_range(cli, &req.start_time, &req.end_time)) ||
	    (rc = connect_server(cli)))
		return rc;
	req.active_only = cli->o.active;
	req.cluster = (char *)(cli->o.cluster ? cli->o.cluster : "");
	do {
		Kubemedic__V1__ListStormsResponse *r;

		req.page_size = (int32_t)(left < 1000 ? left : 1000);
		if (km_client_list_storms(cli->c, &req, &cli->a, &r, &cli->st))
			return rpc_failed(cli);
		for (size_t i = 0; i < r->n_storms; i++) {
			const Kubemedic__V1__Storm *v = r->storms[i];
			char b[40], e[40];

			if (cli->o.json) {
				if (json_list_add(&jl, &v->base))
					return 1;
				continue;
			}
			if (!shown++)
				printf("%-6s %-20s %-20s %-7s %-24s %-8s %s\n",
				       "ID", "STARTED", "ENDED", "GROUP",
				       "NAME", "REFUSED", "WHY");
			printf("%-6s %-20s %-20s %-7s %-24s %-8lld %s%s%s\n",
			       *v->id ? safe(&cli->a, v->id) : "-",
			       fmt_ts(b, v->start_time),
			       v->active ? "(on)" : fmt_ts(e, v->end_time),
			       GROUP(v->group), safe(&cli->a, v->name),
			       (long long)v->refused, safe(&cli->a, v->why),
			       *v->end_note ? "; ended: " : "",
			       safe(&cli->a, v->end_note));
		}
		left -= (int64_t)r->n_storms;
		req.page_token = r->next_page_token;
	} while (left > 0 && req.page_token && *req.page_token);
	if (cli->o.json)
		json_list_end(&jl);
	else if (!shown)
		printf("No storms%s.\n", cli->o.active ? " on" : " match");
	return 0;
}

static void ms_text(char *b, size_t n, int64_t ms)
{
	if (ms % 60000 == 0 && ms)
		snprintf(b, n, "%lldm", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(b, n, "%llds", (long long)(ms / 1000));
	else
		snprintf(b, n, "%lldms", (long long)ms);
}

static void print_list(struct cli *cli, const char *label, char **v, size_t n,
		       const char *none)
{
	printf("  %-15s", label);
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? ", " : "", safe(&cli->a, v[i]));
	printf("%s\n", n ? "" : none);
}

static int cmd_policies(struct cli *cli)
{
	Kubemedic__V1__ListPoliciesRequest req =
		KUBEMEDIC__V1__LIST_POLICIES_REQUEST__INIT;
	Kubemedic__V1__ListPoliciesResponse *r;
	int rc;

	if (cli->o.n_pos != 1)
		return usage_error("policies takes no arguments%s", "");
	if ((rc = connect_server(cli)))
		return rc;
	if (km_client_list_policies(cli->c, &req, &cli->a, &r, &cli->st))
		return rpc_failed(cli);
	if (cli->o.json)
		return print_json(&r->base);
	if (!r->n_policies)
		printf("No automatic recovery policies.\n");
	if (r->dry_run)
		printf("Dry run: every recovery is recorded, none is done.\n");
	for (size_t i = 0; i < r->n_policies; i++) {
		const Kubemedic__V1__Policy *p = r->policies[i];
		char a[24], b[24], c[24];

		printf("%s\n", safe(&cli->a, p->name));
		print_list(cli, "clusters:", p->clusters, p->n_clusters, "all");
		printf("  %-15s", "kinds:");
		for (size_t k = 0; k < p->n_kinds; k++)
			printf("%s%s", k ? ", " : "",
			       enum_short(
				       &kubemedic__v1__target_kind__descriptor,
				       p->kinds[k], "TARGET_KIND_"));
		printf("\n");
		print_list(cli, "namespaces:", p->namespaces, p->n_namespaces,
			   "all");
		if (*p->label_selector)
			printf("  %-15s%s\n",
			       "selector:", safe(&cli->a, p->label_selector));
		ms_text(a, sizeof a, p->unhealthy_for_ms);
		printf("  %-15sUNHEALTHY for %s", "trigger:", a);
		for (size_t k = 0; k < p->n_reasons; k++)
			printf("%s%s", k ? ", " : ", cause holds ",
			       safe(&cli->a, p->reasons[k]));
		printf("\n  %-15s", "ladder:");
		for (size_t k = 0; k < p->n_ladder; k++)
			printf("%s%s", k ? " -> " : "", ACTION(p->ladder[k]));
		printf(" (next rung after %d failures; gives up after %d on "
		       "the last)\n",
		       p->escalate_after, p->max_attempts);
		ms_text(a, sizeof a, p->backoff_initial_ms);
		ms_text(b, sizeof b, p->backoff_max_ms);
		ms_text(c, sizeof c, p->backoff_reset_after_ms);
		printf("  %-15s%s doubling to %s; reset after %s healthy\n",
		       "backoff:", a, b, c);
	}
	return 0;
}

/* A user or group name of the token file: printable, no spaces (they
 * separate the fields), no commas in a user (they separate groups). */
static bool token_name_ok(const char *s, bool commas)
{
	if (!*s || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '#' ||
		    (*s == ',' && !commas))
			return false;
	return true;
}

/* kubemedic token new USER [GROUPS] --out FILE: 32 random bytes as
 * "kmt_" and unpadded base64url (a prefix secret scanners can look for)
 * into FILE, which must not exist; the line for auth.tokenFile, which
 * holds only the token's SHA-256, on stdout. */
static int cmd_token(struct cli *cli)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				  "qrstuvwxyz0123456789-_";
	const char *user, *groups;
	unsigned char raw[32], h[32];
	char tok[4 + 44] = "kmt_", line[128];
	size_t n = 4, got = 0;
	unsigned int hl = 0;
	int fd, len;

	if (cli->o.n_pos < 3 || cli->o.n_pos > 4 ||
	    strcmp(cli->o.pos[1], "new"))
		return usage_error("usage: token new USER [GROUP,...] --out "
				   "FILE%s",
				   "");
	user = cli->o.pos[2];
	groups = cli->o.n_pos == 4 ? cli->o.pos[3] : "";
	if (!token_name_ok(user, false))
		return usage_error("token new: the user \"%s\" is empty, "
				   "longer than 253 bytes, or holds a space, a "
				   "comma, a '#' or a control character",
				   user);
	if (*groups && !token_name_ok(groups, true))
		return usage_error("token new: groups are comma-separated "
				   "names without spaces, '#' or control "
				   "characters, got \"%s\"",
				   groups);
	if (!cli->o.out)
		return usage_error("token new: --out FILE says where the token "
				   "goes (it is never printed)%s",
				   "");
	while (got < sizeof raw) {
		ssize_t r = getrandom(raw + got, sizeof raw - got, 0);

		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "kubemedic: getrandom: %s\n",
				strerror(errno));
			return 1;
		}
		got += r > 0 ? (size_t)r : 0;
	}
	for (size_t i = 0; i < sizeof raw; i += 3) {
		unsigned v = (unsigned)raw[i] << 16 |
			     (i + 1 < sizeof raw ? raw[i + 1] << 8 : 0) |
			     (i + 2 < sizeof raw ? raw[i + 2] : 0);

		tok[n++] = b64[v >> 18 & 63];
		tok[n++] = b64[v >> 12 & 63];
		if (i + 1 < sizeof raw)
			tok[n++] = b64[v >> 6 & 63];
		if (i + 2 < sizeof raw)
			tok[n++] = b64[v & 63];
	}
	tok[n] = '\0';
	OPENSSL_cleanse(raw, sizeof raw);
	EVP_Digest(tok, n, h, &hl, EVP_sha256(), NULL);
	fd = open(cli->o.out,
		  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		fprintf(stderr, "kubemedic: token new: %s: %s%s\n", cli->o.out,
			strerror(errno),
			errno == EEXIST ? " (a token file is never overwritten)"
					: "");
		OPENSSL_cleanse(tok, sizeof tok);
		return 1;
	}
	tok[n] = '\n';
	len = write(fd, tok, n + 1) == (ssize_t)(n + 1) && !fsync(fd);
	OPENSSL_cleanse(tok, sizeof tok);
	if (close(fd) || !len) {
		fprintf(stderr, "kubemedic: token new: writing %s: %s\n",
			cli->o.out, strerror(errno));
		unlink(cli->o.out);
		return 1;
	}
	for (int i = 0; i < 32; i++)
		snprintf(line + 2 * i, 3, "%02x", h[i]);
	printf("%s %s%s%s\n", line, user, *groups ? " " : "", groups);
	return 0;
}

static int cmd_health(struct cli *cli)
{
	Grpc__Health__V1__HealthCheckRequest req =
		GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *r;
	int rc;

	if (cli->o.n_pos > 2)
		return usage_error("health [SERVICE]%s", "");
	if ((rc = connect_server(cli)))
		return rc;
	if (cli->o.n_pos == 2)
		req.service = cli->o.pos[1];
	if (km_client_health_check(cli->c, &req, &cli->a, &r, &cli->st))
		return rpc_failed(cli);
	if (cli->o.json)
		print_json(&r->base);
	else
		printf("%s\n",
		       protobuf_c_enum_descriptor_get_value(
			       &grpc__health__v1__health_check_response__serving_status__descriptor,
			       r->status)
			       ->name);
	/* Scripts can branch on it: 0 only when SERVING. */
	return r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
		       ? 0
		       : 3;
}

/* ---- main ---------------------------------------------------------------- */

enum {
	O_TIMEOUT = 256,
	O_HTTP,
	O_TCP,
	O_GRPC,
	O_GRPC_SERVICE,
	O_FILE,
	O_EXEC,
	O_MIN_SIZE,
	O_MAX_AGE,
	O_TLS_VERIFY,
	O_CA_FILE,
	O_ENV,
	O_WORKDIR,
	O_PERIOD,
	O_PROBE_TIMEOUT,
	O_INITIAL_DELAY,
	O_SUCCESS,
	O_FAILURE,
	O_GENERATION,
	O_KIND,
	O_STATE,
	O_CLUSTER,
	O_NAMESPACE,
	O_NODE,
	O_OWNER,
	O_UID,
	O_SINCE,
	O_UNTIL,
	O_FAILURES,
	O_SUCCESSES,
	O_OLDEST,
	O_LIMIT,
	O_LABEL,
	O_SINCE_SEQ,
	O_FROM_OLDEST,
	O_REQUESTER,
	O_ACTIVE,
	O_TLS_CA,
	O_TLS_CERT,
	O_TLS_KEY,
	O_TOKEN_FILE,
	O_SERVER_NAME,
	O_IDENTITY,
	O_METHOD,
	O_OUT,
	O_ACTION,
	O_REASON,
	O_KEY,
	O_DRY_RUN,
	O_FORCE,
	O_STEP,
};

static void env_default(const char **v, const char *name)
{
	const char *e = getenv(name);

	if (e && *e)
		*v = e;
}

/* "~/x" as $HOME/x, in the arena of the client config. */
static const char *expand_home(struct km_arena *a, const char *p)
{
	const char *home = getenv("HOME");

	if (!p || p[0] != '~' || p[1] != '/' || !home)
		return p;
	return km_arena_printf(a, "%s%s", home, p + 1);
}

/* Defaults from the client config file, if there is one. */
static int client_defaults(struct opts *o)
{
	static struct km_arena a;
	struct km_client_config cc;
	struct km_error err = {0};
	const char *path = getenv("KUBEMEDIC_CONFIG");
	bool given = path && *path;
	char *text = NULL, *home_path = NULL;
	size_t len = 0;
	FILE *f;
	int rc = 0;

	if (!given) {
		const char *home = getenv("HOME");

		if (!home ||
		    asprintf(&home_path, "%s/.config/kubemedic/client.yaml",
			     home) < 0)
			return 0;
		path = home_path;
	}
	f = fopen(path, "rbe");
	if (!f) {
		free(home_path);
		if (given) {
			fprintf(stderr,
				"kubemedic: $KUBEMEDIC_CONFIG: cannot "
				"open %s\n",
				path);
			return 2;
		}
		return 0;
	}
	text = malloc(1 << 16);
	if (text)
		len = fread(text, 1, 1 << 16, f);
	fclose(f);
	km_arena_init(&a, 4096);
	if (!text || km_config_parse_client(text, len, path, &a, &cc, &err)) {
		fprintf(stderr, "kubemedic: %s\n",
			text ? err.msg : "out of memory");
		rc = 2;
	} else {
		o->server = cc.server;
		o->tls_ca = expand_home(&a, cc.tls_ca_file);
		o->tls_cert = expand_home(&a, cc.tls_cert_file);
		o->tls_key = expand_home(&a, cc.tls_key_file);
		o->token_file = expand_home(&a, cc.token_file);
		o->server_name = cc.server_name;
	}
	free(text);
	free(home_path);
	return rc;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option opts[] = {
		{"server", required_argument, NULL, 's'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{"filename", required_argument, NULL, 'f'},
		{"selector", required_argument, NULL, 'l'},
		{"header", required_argument, NULL, 'H'},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"http", required_argument, NULL, O_HTTP},
		{"tcp", required_argument, NULL, O_TCP},
		{"grpc", required_argument, NULL, O_GRPC},
		{"grpc-service", required_argument, NULL, O_GRPC_SERVICE},
		{"file", required_argument, NULL, O_FILE},
		{"exec", no_argument, NULL, O_EXEC},
		{"min-size", required_argument, NULL, O_MIN_SIZE},
		{"max-age", required_argument, NULL, O_MAX_AGE},
		{"tls-verify", no_argument, NULL, O_TLS_VERIFY},
		{"ca-file", required_argument, NULL, O_CA_FILE},
		{"env", required_argument, NULL, O_ENV},
		{"workdir", required_argument, NULL, O_WORKDIR},
		{"period", required_argument, NULL, O_PERIOD},
		{"probe-timeout", required_argument, NULL, O_PROBE_TIMEOUT},
		{"initial-delay", required_argument, NULL, O_INITIAL_DELAY},
		{"success-threshold", required_argument, NULL, O_SUCCESS},
		{"failure-threshold", required_argument, NULL, O_FAILURE},
		{"generation", required_argument, NULL, O_GENERATION},
		{"kind", required_argument, NULL, O_KIND},
		{"state", required_argument, NULL, O_STATE},
		{"cluster", required_argument, NULL, O_CLUSTER},
		{"namespace", required_argument, NULL, O_NAMESPACE},
		{"node", required_argument, NULL, O_NODE},
		{"owner", required_argument, NULL, O_OWNER},
		{"uid", required_argument, NULL, O_UID},
		{"since", required_argument, NULL, O_SINCE},
		{"until", required_argument, NULL, O_UNTIL},
		{"failures", no_argument, NULL, O_FAILURES},
		{"successes", no_argument, NULL, O_SUCCESSES},
		{"oldest-first", no_argument, NULL, O_OLDEST},
		{"limit", required_argument, NULL, O_LIMIT},
		{"label", required_argument, NULL, O_LABEL},
		{"since-sequence", required_argument, NULL, O_SINCE_SEQ},
		{"from-oldest", no_argument, NULL, O_FROM_OLDEST},
		{"requester", required_argument, NULL, O_REQUESTER},
		{"active", no_argument, NULL, O_ACTIVE},
		{"tls-ca", required_argument, NULL, O_TLS_CA},
		{"tls-cert", required_argument, NULL, O_TLS_CERT},
		{"tls-key", required_argument, NULL, O_TLS_KEY},
		{"token-file", required_argument, NULL, O_TOKEN_FILE},
		{"tls-server-name", required_argument, NULL, O_SERVER_NAME},
		{"identity", required_argument, NULL, O_IDENTITY},
		{"method", required_argument, NULL, O_METHOD},
		{"out", required_argument, NULL, O_OUT},
		{"action", required_argument, NULL, O_ACTION},
		{"reason", required_argument, NULL, O_REASON},
		{"idempotency-key", required_argument, NULL, O_KEY},
		{"dry-run", no_argument, NULL, O_DRY_RUN},
		{"force", no_argument, NULL, O_FORCE},
		{"step", required_argument, NULL, O_STEP},
		{"watch", no_argument, NULL, 'w'},
		{0},
	};
	int dashdash = argc, c;

	/* Everything after "--" is the exec probe's command, untouched. */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			dashdash = i;
			break;
		}
	o->cmd = argv + dashdash + 1;
	o->n_cmd = dashdash < argc ? argc - dashdash - 1 : 0;
	/* The file, then the environment, then the flags below. */
	if ((c = client_defaults(o)))
		return c;
	env_default(&o->server, "KUBEMEDIC_SERVER");
	env_default(&o->tls_ca, "KUBEMEDIC_TLS_CA");
	env_default(&o->tls_cert, "KUBEMEDIC_TLS_CERT");
	env_default(&o->tls_key, "KUBEMEDIC_TLS_KEY");
	env_default(&o->token_file, "KUBEMEDIC_TOKEN_FILE");
	env_default(&o->server_name, "KUBEMEDIC_TLS_SERVER_NAME");
	if (!o->server || !*o->server)
		o->server = DEFAULT_SERVER;
	o->timeout_ms = 10000;

	opterr = 0;
	while ((c = getopt_long(dashdash, argv, "s:o:hf:l:H:w", opts, NULL)) !=
	       -1) {
		int64_t ms;

		switch (c) {
		case 's': o->server = optarg; break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "table"))
				return usage_error("-o: table or json, got "
						   "\"%s\"",
						   optarg);
			o->json = !strcmp(optarg, "json");
			break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case 'f': o->filename = optarg; break;
		case 'l': o->selector = optarg; break;
		case 'H':
			if (o->n_headers == 64)
				return usage_error("too many -H%s", "");
			o->headers[o->n_headers++] = optarg;
			break;
		case O_TIMEOUT:
			if (km_duration_parse(optarg, &ms))
				return usage_error("--timeout: bad duration "
						   "\"%s\"",
						   optarg);
			o->timeout_ms = ms;
			break;
		case O_HTTP: o->http = optarg; break;
		case O_TCP: o->tcp = optarg; break;
		case O_GRPC: o->grpc = optarg; break;
		case O_GRPC_SERVICE: o->grpc_service = optarg; break;
		case O_FILE: o->file = optarg; break;
		case O_EXEC: o->exec = true; break;
		case O_MIN_SIZE:
			if (parse_int(optarg, 0, INT64_MAX, &o->min_size))
				return usage_error("--min-size: bytes, got "
						   "\"%s\"",
						   optarg);
			break;
		case O_MAX_AGE: o->max_age = optarg; break;
		case O_TLS_VERIFY: o->tls_verify = true; break;
		case O_CA_FILE: o->ca_file = optarg; break;
		case O_ENV:
			if (o->n_env == 256)
				return usage_error("too many --env%s", "");
			o->env[o->n_env++] = optarg;
			break;
		case O_WORKDIR: o->workdir = optarg; break;
		case O_PERIOD: o->period = optarg; break;
		case O_PROBE_TIMEOUT: o->probe_timeout = optarg; break;
		case O_INITIAL_DELAY: o->initial_delay = optarg; break;
		case O_SUCCESS:
			if (parse_int(optarg, 1, INT32_MAX,
				      &o->success_threshold))
				return usage_error("--success-threshold: a "
						   "positive number, got "
						   "\"%s\"",
						   optarg);
			break;
		case O_FAILURE:
			if (parse_int(optarg, 1, INT32_MAX,
				      &o->failure_threshold))
				return usage_error("--failure-threshold: a "
						   "positive number, got "
						   "\"%s\"",
						   optarg);
			break;
		case O_GENERATION:
			if (parse_int(optarg, 1, INT64_MAX, &o->generation))
				return usage_error("--generation: a positive "
						   "number, got \"%s\"",
						   optarg);
			break;
		case O_KIND: o->kind = optarg; break;
		case O_STATE: o->state = optarg; break;
		case O_CLUSTER: o->cluster = optarg; break;
		case O_NAMESPACE: o->ns = optarg; break;
		case O_NODE: o->node = optarg; break;
		case O_OWNER: o->owner = optarg; break;
		case O_UID: o->uid = optarg; break;
		case O_SINCE: o->since = optarg; break;
		case O_UNTIL: o->until = optarg; break;
		case O_FAILURES: o->failures = true; break;
		case O_SUCCESSES: o->successes = true; break;
		case O_OLDEST: o->oldest_first = true; break;
		case O_LIMIT:
			if (parse_int(optarg, 1, 1000000, &o->limit))
				return usage_error("--limit: 1 to 1000000, got "
						   "\"%s\"",
						   optarg);
			break;
		case O_SINCE_SEQ:
			if (parse_int(optarg, 0, INT64_MAX, &o->since_seq))
				return usage_error(
					"--since-sequence: a sequence "
					"number, got \"%s\"",
					optarg);
			break;
		case O_FROM_OLDEST: o->from_oldest = true; break;
		case O_REQUESTER: o->requester = optarg; break;
		case O_ACTIVE: o->active = true; break;
		case O_TLS_CA: o->tls_ca = optarg; break;
		case O_TLS_CERT: o->tls_cert = optarg; break;
		case O_TLS_KEY: o->tls_key = optarg; break;
		case O_TOKEN_FILE: o->token_file = optarg; break;
		case O_SERVER_NAME: o->server_name = optarg; break;
		case O_IDENTITY: o->identity = optarg; break;
		case O_METHOD: o->method = optarg; break;
		case O_OUT: o->out = optarg; break;
		case O_ACTION: o->action = optarg; break;
		case O_REASON: o->reason = optarg; break;
		case O_KEY: o->key = optarg; break;
		case O_DRY_RUN: o->dry_run = true; break;
		case O_FORCE: o->force = true; break;
		case O_STEP: o->step = optarg; break;
		case 'w': o->watch = true; break;
		case O_LABEL:
			if (o->n_labels == 64)
				return usage_error("too many --label%s", "");
			o->labels[o->n_labels++] = optarg;
			break;
		default:
			return usage_error(
				"unknown or incomplete option \"%s\"",
				argv[optind - 1]);
		}
	}
	o->pos = argv + optind;
	o->n_pos = dashdash - optind;
	if (o->n_cmd && !o->exec)
		return usage_error("arguments after -- are only for --exec%s",
				   "");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct cli *);
	} cmds[] = {
		{"probes", cmd_probes},
		{"status", cmd_status},
		{"targets", cmd_targets},
		{"history", cmd_history},
		{"latency", cmd_latency},
		{"transitions", cmd_transitions},
		{"health", cmd_health},
		{"audit", cmd_audit},
		{"watch", cmd_watch},
		{"token", cmd_token},
		{"recover", cmd_recover},
		{"recoveries", cmd_recoveries},
		{"recovery", cmd_recovery},
		{"cancel", cmd_cancel},
		{"storms", cmd_storms},
		{"policies", cmd_policies},
		{"availability", cmd_availability},
	};
	struct cli cli = {0};
	int rc;

	km_arena_init(&cli.a, 65536);
	rc = parse_args(argc, argv, &cli.o);
	if (rc)
		return rc;
	if (!cli.o.n_pos) {
		fputs(usage_text, stderr);
		return 2;
	}
	rc = -1;
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(cli.o.pos[0], cmds[i].name))
			rc = cmds[i].fn(&cli);
	if (rc == -1)
		rc = usage_error("unknown command \"%s\"", cli.o.pos[0]);
	km_client_close(cli.c);
	km_arena_free(&cli.a);
	fflush(stdout);
	return rc;
}
