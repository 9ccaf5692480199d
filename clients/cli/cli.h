/*
 * What the kubemedic command's files share (kubemedic.c holds main, the
 * options and most commands; cli_history.c the history and latency
 * commands): the parsed options, the connection, and the helpers for
 * times, tables and -o json.
 */
#ifndef KM_CLI_H
#define KM_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "km_arena.h"
#include "km_client.h"

struct opts {
	const char *server, *output, *filename, *selector, *since, *until;
	const char *tls_ca, *tls_cert, *tls_key, *token_file, *server_name;
	const char *identity, *method, *out;
	const char *action, *reason, *key, *requester;
	bool active;
	bool dry_run, force, watch;
	const char *http, *tcp, *grpc, *grpc_service, *file, *ca_file;
	const char *workdir, *kind, *state, *cluster;
	const char *ns, *node, *owner, *uid;
	const char *period, *probe_timeout, *initial_delay, *max_age, *step;
	const char *labels[64], *headers[64], *env[256];
	int n_labels, n_headers, n_env;
	int64_t timeout_ms, min_size, success_threshold, failure_threshold;
	int64_t generation, limit, since_seq;
	bool exec, tls_verify, failures, successes, oldest_first, json;
	bool from_oldest;
	bool has_min_size;
	char **pos; /* positional arguments */
	int n_pos;
	char **cmd; /* after "--" */
	int n_cmd;
};

struct cli {
	struct opts o;
	struct km_client *c;
	struct km_arena a;
	struct km_client_status st;
};

/* A usage error (exit status 2): fmt has one %s, for arg. */
int usage_error(const char *fmt, const char *arg);
/* RFC 3339, or an age ("2h": that long ago), into epoch µs; -1 if
 * neither. */
int parse_time(const char *s, int64_t *us);
Google__Protobuf__Timestamp *timestamp(struct km_arena *a, int64_t us);
/* "2026-11-24 09:00:00Z"; "-" for NULL. */
const char *fmt_ts(char buf[40], const Google__Protobuf__Timestamp *ts);
/* "HEALTH_STATE_HEALTHY" -> "HEALTHY" */
const char *enum_short(const ProtobufCEnumDescriptor *d, int v,
		       const char *prefix);
#define STATE(v) \
	enum_short(&kubemedic__v1__health_state__descriptor, v, "HEALTH_STATE_")
#define ERRCLASS(v) \
	enum_short(&kubemedic__v1__error_class__descriptor, v, "ERROR_CLASS_")
/* s as it may be shown on a terminal (km_text_safe), in a. */
const char *safe(struct km_arena *a, const char *s);
/* -o json: one document; a list as one array written as its pages
 * arrive (json_list_add each element, json_list_end). */
int print_json(const ProtobufCMessage *m);
struct json_list {
	size_t n;
};
int json_list_add(struct json_list *l, const ProtobufCMessage *m);
void json_list_end(const struct json_list *l);
/* The server's error on stderr; exit status 1. */
int rpc_failed(struct cli *cli);
int connect_server(struct cli *cli);
/* --since and --until as the request's timestamps (unset: left NULL). */
int time_range(struct cli *cli, Google__Protobuf__Timestamp **start,
	       Google__Protobuf__Timestamp **end);

/* cli_history.c */
int cmd_history(struct cli *cli);
int cmd_latency(struct cli *cli);

#endif
