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
 * the token file does not know is asked of the API server), and, when
 * configured, SubjectAccessReview for the role of the identities it gives
 * (below).
 *
 * Roles. viewer (reads, watches, grpc.health.v1), operator (HTTP, TCP and
 * gRPC probes; recovery later) and admin (exec and file probes, caFile,
 * workingDir, the audit trail; policies later). Each role includes the
 * ones below it. Bindings in the configuration give roles to users and
 * groups; an identity's role is the highest any binding gives it.
 *
 * Roles from the cluster's RBAC. With options.access_review, an identity
 * a TokenReview gave (by "kube") may have more: for each role above what
 * the bindings give, highest first, the cluster is asked whether the
 * subject may do that role's access (options.access: a verb on a
 * resource, SubjectAccessReview's resourceAttributes); the first allowed
 * is its role. Bindings and RBAC both grant, neither takes away. An
 * access review that cannot be answered fails the call (KM_EUNAVAIL),
 * never a lower role in silence. Answers are kept per subject (user,
 * groups, uid, extra) and access asked: access_allowed_ms when allowed,
 * access_denied_ms when not, at most KM_AUTH_ACCESS_CACHE_MAX of them (the
 * soonest to expire makes room); one that failed is not kept.
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

struct km_auth_access;

struct km_identity {
	const char *user; /* "" when anonymous */
	const char **groups;
	size_t n_groups;
	const char *by; /* "cert", "token", "kube", "local" or "none" */
	const char *peer;
	int role; /* enum km_role */
	/* For a "kube" identity whose role the cluster's RBAC decides: the
	 * access asked for each role (NULL where none), named in refusals so
	 * that a refused caller learns what to be granted. NULL otherwise. */
	const struct km_auth_access *const *access;
};

/* Who a reviewer (TokenReview) says a token belongs to: its status.user,
 * all of it, since an access review asks about exactly this subject. */
struct km_auth_extra {
	const char *key; /* "authentication.kubernetes.io/pod-name" */
	const char **values;
	size_t n_values;
};

struct km_auth_subject {
	const char *user; /* "system:serviceaccount:NS:NAME" */
	const char *uid;  /* "" when none */
	const char **groups;
	size_t n_groups;
	const struct km_auth_extra *extra;
	size_t n_extra;
};

/* What the cluster is asked about a role (SubjectAccessReview's
 * resourceAttributes): may the subject do verb on resource (of API group
 * group; subresource and name when not "") in namespace ns ("" = across
 * the cluster: a ClusterRoleBinding grants it, a RoleBinding does not)? */
struct km_auth_access {
	const char *group;       /* "kubemedic.io" */
	const char *resource;    /* "health" */
	const char *subresource; /* "" */
	const char *name;        /* "" */
	const char *ns;          /* "" */
	const char *verb;        /* "get" */
};

#define KM_AUTH_ACCESS_CACHE_MAX 3072

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
	 * it). 0 with *out filled (in ar); KM_EAUTH with err saying why the
	 * token is not valid; KM_EUNAVAIL when the reviewer cannot answer.
	 * Called from the API's threads, may block (its own timeout);
	 * answers are cached (a minute when valid, 10 s when not). NULL:
	 * none. */
	int (*review)(void *arg, const char *token, struct km_arena *ar,
		      struct km_auth_subject *out, struct km_error *err);
	void *review_arg;
	/* The role of what review says, from the cluster's RBAC (Kubernetes'
	 * SubjectAccessReview, main wires it): 0 when who may do what,
	 * KM_EPERM when not (err: the API server's reason, if any),
	 * KM_EUNAVAIL when it cannot be asked. Called from the API's
	 * threads, may block (its own timeout). NULL: bindings only. */
	int (*access_review)(void *arg, const struct km_auth_subject *who,
			     const struct km_auth_access *what,
			     struct km_error *err);
	void *access_review_arg;
	/* What access_review is asked for each role (index enum km_role;
	 * NULL: the role is never asked, only bindings give it). Copied. */
	const struct km_auth_access *access[KM_ROLE_ADMIN + 1];
	int64_t access_allowed_ms; /* how long answers are kept; 0: not */
	int64_t access_denied_ms;
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
 * the role missing and what needed it ("CreateProbe needs operator"),
 * and, when the cluster's RBAC decides id's role, the access that gives
 * it ("update on health.kubemedic.io"). */
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
