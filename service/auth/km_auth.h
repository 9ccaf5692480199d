/*
 * km_auth — who is calling, and what they may do.
 *
 * Identity. Every call has one, found by a chain of authenticators over
 * what the transport says about the caller (struct km_auth_request: a
 * listener fills it from its own protocol — the gRPC listener today, the
 * HTTP listener of the status page later):
 *   1. a client certificate the TLS handshake verified against the client
 *      CA: the user is its common name, its subject alternative names are
 *      other names for it, its subject's O= values are its groups (as
 *      Kubernetes reads client certificates);
 *   2. a bearer token (`authorization: Bearer <token>`), looked up in the
 *      token file, which holds only SHA-256 hashes of tokens, compared in
 *      constant time; an unknown token is an error, not an anonymous call;
 *   3. the local identity, for a plaintext connection from a loopback
 *      address, if the configuration names one (its role is viewer unless
 *      configured otherwise).
 * The Kubernetes integration adds TokenReview as one more link (a token
 * the token file does not know is asked of the API server).
 *
 * Roles. viewer (reads, watches, grpc.health.v1), operator (HTTP, TCP and
 * gRPC probes; recovery later) and admin (exec and file probes, caFile,
 * workingDir, the audit trail; policies later). Each role includes the
 * ones below it. Bindings in the configuration give roles to users and
 * groups; an identity's role is the highest any binding gives it.
 *
 * Authorization. One table (km_auth_table.c) maps every gRPC method, and
 * every probe type and privileged probe field, to the role it needs; a
 * method the table does not know needs a role no one has (closed, not
 * open), and a test checks that every method of every service is in it.
 *
 * Threads: km_auth_identify and the checks from any thread (the token
 * file is read again when it changes, under a lock); open and close from
 * one. Memory: an identity lives in the arena the caller gives.
 */
#ifndef KM_AUTH_H
#define KM_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_arena.h"
#include "km_error.h"
#include "km_model.h"

enum km_role {
	KM_ROLE_NONE = 0, /* nothing (or, as a requirement: anyone) */
	KM_ROLE_VIEWER = 1,
	KM_ROLE_OPERATOR = 2,
	KM_ROLE_ADMIN = 3,
	KM_ROLE_NOBODY = 4, /* a requirement no identity meets */
};

/* "none", "viewer", "operator", "admin"; and the inverse (-1 if none). */
const char *km_role_name(int role);
int km_role_parse(const char *s);

/* What the transport says about a caller. Certificate names only from a
 * handshake that verified the certificate. */
struct km_auth_request {
	const char *peer;    /* an address, for the audit trail */
	bool loopback;       /* from a loopback address */
	bool tls;            /* over TLS */
	const char *cert_cn; /* verified client certificate, or NULL */
	const char *const *cert_names; /* its subject alternative names */
	size_t n_cert_names;
	const char *const *cert_orgs; /* its subject's O= values */
	size_t n_cert_orgs;
	const char *bearer; /* a bearer token, or NULL */
};

struct km_identity {
	const char *user; /* "" when anonymous */
	const char **groups;
	size_t n_groups;
	const char *by; /* "cert", "token", "local" or "none" */
	const char *peer;
	int role; /* enum km_role */
};

struct km_auth_binding {
	int role;
	const char **users; /* names: a certificate's CN or one of its
	                              SANs, a token's user, the local user */
	size_t n_users;
	const char **groups;
	size_t n_groups;
};

struct km_auth_options {
	const char *token_file; /* "<sha256 hex> <user> [group,group]"
	                              lines; NULL = no tokens */
	const char *local_user; /* plaintext loopback callers' identity;
	                              NULL = none (they are anonymous) */
	int local_role;         /* the local user's own role */
	const struct km_auth_binding *bindings;
	size_t n_bindings;
	int health_role; /* what grpc.health.v1 and reflection
	                              need: KM_ROLE_VIEWER (default) or
	                              KM_ROLE_NONE (anyone) */
	/* One more link of the chain: a bearer token the token file does
	 * not know is reviewed here (Kubernetes' TokenReview, main wires
	 * it). 0 with *user and *groups (NUL-separated "a\0b\0", n) in
	 * ar; KM_EAUTH with err saying why the token is not valid;
	 * KM_EUNAVAIL when the reviewer cannot answer. Called from the
	 * API's threads, may block (its own timeout); answers are cached
	 * (a minute when valid, 10 s when not). NULL: none. */
	int (*review)(void *arg, const char *token, struct km_arena *ar,
		      const char **user, const char ***groups, size_t *n_groups,
		      struct km_error *err);
	void *review_arg;
};

struct km_auth;

/* Reads the token file (an error names the file and the line). */
int km_auth_open(const struct km_auth_options *o, struct km_auth **out,
		 struct km_error *err);
void km_auth_close(struct km_auth *a);

/* Who calls: 0 with *out filled (an anonymous identity, role
 * KM_ROLE_NONE, when no credentials came), or KM_EAUTH with err saying
 * why when credentials came that are not valid (an unknown token). */
int km_auth_identify(struct km_auth *a, const struct km_auth_request *req,
		     struct km_arena *ar, struct km_identity *out,
		     struct km_error *err);

/* 0 if id's role meets needed; else KM_EAUTH for an anonymous caller
 * ("present a client certificate or a bearer token") or KM_EPERM naming
 * the role missing and what needed it ("CreateProbe needs operator"). */
int km_auth_check(const struct km_identity *id, int needed, const char *what,
		  struct km_error *err);

/* ---- the table (km_auth_table.c) ---------------------------------------- */

/* The role a gRPC method ("/kubemedic.v1.ProbeService/CreateProbe")
 * needs; KM_ROLE_NOBODY for one the table does not know. */
int km_auth_method_role(const struct km_auth *a, const char *path);

/* The role creating or changing p through the API needs (its type, and
 * fields that reach the daemon's own files: caFile, workingDir), and a
 * short reason ("exec probes"). */
int km_auth_probe_role(const struct km_probe *p, const char **why);

/* Whether a method changes something: its successful calls are recorded
 * in the audit trail too (refusals of every method are). */
bool km_auth_method_mutates(const char *path);

/* Every method path of the table, for the test that checks every method
 * of every service has a rule. */
size_t km_auth_table(const char *const **paths);

/* What grpc.health.v1 and reflection need (options.health_role). */
int km_auth_health_role(const struct km_auth *a);

#endif
