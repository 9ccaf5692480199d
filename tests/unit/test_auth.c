/*
 * km_auth: the authenticator chain (certificates, hashed tokens, the local
 * identity), bindings and roles, the messages of refusals, the token file's
 * format and its reload, and the authorization table — checked against
 * every method of every service in the descriptor set compiled into the
 * binary, so a method cannot be added without a rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "km_auth.h"
#include "km_embed.h"
#include "km_test.h"
#include "km_time.h"

extern const struct km_embedded_file km_descriptor_set[];

static char *dir;
static struct km_arena arena;

static int setup(void **state)
{
	(void)state;
	dir = km_test_tmpdir();
	km_arena_init(&arena, 4096);
	return dir ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	km_arena_free(&arena);
	km_test_rmrf(dir);
	free(dir);
	return 0;
}

static void hex_sha256(const char *token, char out[65])
{
	unsigned char h[32];
	unsigned int n = 0;

	EVP_Digest(token, strlen(token), h, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* Writes the token file: one line per "token user groups" triple, the
 * token hashed as an admin would. */
static char *token_file(const char *name, const char *const *tokens, size_t n)
{
	char *path, hash[65];
	FILE *f;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return NULL;
	f = fopen(path, "w");
	fprintf(f, "# kubemedic tokens: sha256 user groups\n\n");
	for (size_t i = 0; i + 2 < n; i += 3) {
		hex_sha256(tokens[i], hash);
		fprintf(f, "%s %s %s\n", hash, tokens[i + 1], tokens[i + 2]);
	}
	fclose(f);
	return path;
}

static const char *sre[] = {"sre"};
static const char *alice[] = {"alice"};
static const char *ops[] = {"ops", "sre-leads"};

static struct km_auth *open_auth(const char *tokens)
{
	static const char *u_alice[] = {"alice"}, *u_local[] = {"local"};
	static struct km_auth_binding b[] = {
		{KM_ROLE_OPERATOR, NULL, 0, sre, 1},
		{KM_ROLE_ADMIN, u_alice, 1, NULL, 0},
		{KM_ROLE_VIEWER, NULL, 0, ops, 2},
		{KM_ROLE_OPERATOR, u_local, 1, NULL, 0},
	};
	struct km_auth_options o = {
		.token_file = tokens,
		.local_user = "local",
		.local_role = KM_ROLE_VIEWER,
		.bindings = b,
		.n_bindings = 4,
		.health_role = KM_ROLE_VIEWER,
	};
	struct km_auth *a = NULL;
	struct km_error err = {0};

	(void)alice;
	if (km_auth_open(&o, &a, &err))
		fail_msg("open: %s", err.msg);
	return a;
}

static void test_tokens(void **state)
{
	static const char *const t[] = {"tok-bob",   "bob",   "ops",
					"tok-carol", "carol", "sre,ops"};
	char *path = token_file("tokens", t, 6);
	struct km_auth *a = open_auth(path);
	struct km_auth_request req = {.peer = "ipv4:10.0.0.9:1234",
				      .tls = true};
	struct km_identity id;
	struct km_error err = {0};

	(void)state;
	req.bearer = "tok-bob";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_string_equal(id.user, "bob");
	assert_string_equal(id.by, "token");
	assert_int_equal(id.n_groups, 1);
	assert_string_equal(id.groups[0], "ops");
	assert_int_equal(id.role, KM_ROLE_VIEWER);
	assert_string_equal(id.peer, "ipv4:10.0.0.9:1234");

	/* Groups pick the highest role any binding gives. */
	req.bearer = "tok-carol";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_int_equal(id.n_groups, 2);
	assert_int_equal(id.role, KM_ROLE_OPERATOR);

	/* An unknown token is an error, not an anonymous caller. */
	req.bearer = "tok-bob-not";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
			 KM_EAUTH);
	assert_non_null(strstr(err.msg, "not known"));
	assert_string_equal(id.user, "");
	req.bearer = "";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
			 KM_EAUTH);

	/* The file holds hashes only: the token itself is not there. */
	{
		FILE *f = fopen(path, "r");
		char buf[4096];
		size_t n = fread(buf, 1, sizeof buf - 1, f);

		fclose(f);
		buf[n] = '\0';
		assert_null(strstr(buf, "tok-bob"));
	}
	km_auth_close(a);
	free(path);
}

/* The reviewer (Kubernetes' TokenReview in the daemon; here the faults
 * and answers a real API server cannot be made to give on demand). */
struct reviewer {
	int calls;
	int answer; /* 0, KM_EAUTH, KM_EUNAVAIL */
};

static int review(void *arg, const char *token, struct km_arena *ar,
		  struct km_auth_subject *out, struct km_error *err)
{
	static const char *pod[] = {"web-0"};
	static const struct km_auth_extra extra[] = {
		{"authentication.kubernetes.io/pod-name", pod, 1}};
	struct reviewer *r = arg;
	const char **groups;

	r->calls++;
	if (r->answer)
		return km_error_set(err, r->answer,
				    r->answer == KM_EAUTH
					    ? "token review: not authenticated"
					    : "token review: the API server "
					      "did not answer");
	/* "sa-token", or "user:NAME" for a user of that name. */
	out->user = km_arena_strdup(
		ar, !strcmp(token, "sa-token") ? "system:serviceaccount:ci:bot"
		    : !strncmp(token, "user:", 5) ? token + 5
						  : "someone");
	out->uid = "uid-1";
	groups = km_arena_calloc(ar, 2, sizeof *groups);
	groups[0] = "system:serviceaccounts";
	groups[1] = "sre";
	out->groups = groups;
	out->n_groups = 2;
	out->extra = extra;
	out->n_extra = 1;
	return 0;
}

static void test_token_review(void **state)
{
	static const char *const t[] = {"tok-bob", "bob", "ops"};
	char *path = token_file("tokens-rv", t, 3);
	static struct km_auth_binding b[] = {
		{KM_ROLE_OPERATOR, NULL, 0, sre, 1},
	};
	struct reviewer rv = {0};
	struct km_auth_options o = {
		.token_file = path,
		.bindings = b,
		.n_bindings = 1,
		.health_role = KM_ROLE_VIEWER,
		.review = review,
		.review_arg = &rv,
	};
	struct km_auth_request req = {.peer = "ipv4:10.0.0.9:1234",
				      .tls = true};
	struct km_identity id;
	struct km_error err = {0};
	struct km_auth *a = NULL;

	(void)state;
	assert_int_equal(km_auth_open(&o, &a, &err), 0);
	/* The token file first: a token it knows is not reviewed. */
	req.bearer = "tok-bob";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_string_equal(id.by, "token");
	assert_int_equal(rv.calls, 0);
	/* Another token is reviewed, once: the answer is kept. */
	req.bearer = "sa-token";
	for (int i = 0; i < 3; i++) {
		assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
				 0);
		assert_string_equal(id.user, "system:serviceaccount:ci:bot");
		assert_string_equal(id.by, "kube");
		assert_int_equal(id.n_groups, 2);
		assert_int_equal(id.role, KM_ROLE_OPERATOR); /* group sre */
	}
	assert_int_equal(rv.calls, 1);
	/* Not valid: refused, and the refusal kept too. */
	rv.answer = KM_EAUTH;
	req.bearer = "forged";
	for (int i = 0; i < 2; i++) {
		assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
				 KM_EAUTH);
		assert_string_equal(err.msg, "token review: not authenticated");
	}
	assert_int_equal(rv.calls, 2);
	/* A reviewer that cannot answer: UNAVAILABLE, asked again next
	 * time (not cached). */
	rv.answer = KM_EUNAVAIL;
	req.bearer = "other";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
			 KM_EUNAVAIL);
	assert_string_equal(err.msg,
			    "the bearer token could not be checked: token "
			    "review: the API server did not answer");
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
			 KM_EUNAVAIL);
	assert_int_equal(rv.calls, 4);
	/* An error message names the Kubernetes user. */
	rv.answer = 0;
	req.bearer = "sa-token";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	id.role = KM_ROLE_VIEWER;
	assert_int_equal(km_auth_check(&id, KM_ROLE_ADMIN, "CreateProbe", &err),
			 KM_EPERM);
	assert_non_null(strstr(err.msg, "Kubernetes user "
					"\"system:serviceaccount:ci:bot\""));
	km_auth_close(a);
	free(path);
}

/* A changed token file is read again (it is looked at once a second). */
static void test_token_file_reload(void **state)
{
	static const char *const one[] = {"first", "u1", "ops"};
	static const char *const two[] = {"second", "u2", "sre"};
	char *path = token_file("reload", one, 3);
	struct km_auth *a = open_auth(path);
	struct km_auth_request req = {.peer = "p", .tls = true};
	struct km_identity id;
	struct km_error err = {0};
	struct timespec wait = {1, 100 * 1000 * 1000};

	(void)state;
	req.bearer = "second";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
			 KM_EAUTH);
	free(token_file("reload", two, 3));
	/* The file's next look is a second after the last. */
	nanosleep(&wait, NULL);
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_string_equal(id.user, "u2");
	assert_int_equal(id.role, KM_ROLE_OPERATOR);
	req.bearer = "first";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
			 KM_EAUTH);

	/* A broken file keeps the tokens read before. */
	{
		FILE *f = fopen(path, "w");

		fprintf(f, "not-a-hash someone\n");
		fclose(f);
	}
	nanosleep(&wait, NULL);
	req.bearer = "second";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	km_auth_close(a);
	free(path);
}

static void test_token_file_errors(void **state)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{"abc bob\n", ":1: want"},
		{"\n# c\n"
		 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
		 ":3: no user"},
		{"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		 "00 bob\n",
		 "longer than 64"},
		{"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 "
		 "bob g1 extra\n",
		 "unexpected text"},
		{"tok-in-clear bob\n", "never tokens"},
	};
	struct km_auth_options o = {.health_role = KM_ROLE_VIEWER};
	struct km_error err = {0};
	struct km_auth *a;
	char *path;

	(void)state;
	if (asprintf(&path, "%s/bad", dir) < 0)
		fail();
	o.token_file = path;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		FILE *f = fopen(path, "w");

		fputs(bad[i].text, f);
		fclose(f);
		assert_int_equal(km_auth_open(&o, &a, &err), KM_EINVAL);
		if (!strstr(err.msg, bad[i].want))
			fail_msg("\"%s\" lacks \"%s\"", err.msg, bad[i].want);
		assert_non_null(strstr(err.msg, path));
	}
	/* sha256: prefixes are fine. */
	{
		FILE *f = fopen(path, "w");

		fputs("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934c"
		      "a495991b7852b855 empty\n",
		      f);
		fclose(f);
		assert_int_equal(km_auth_open(&o, &a, &err), 0);
		km_auth_close(a);
	}
	o.token_file = "/nonexistent/tokens";
	assert_int_equal(km_auth_open(&o, &a, &err), KM_EINVAL);
	assert_non_null(strstr(err.msg, "auth.tokenFile"));
	free(path);
}

/* Certificates: the CN (or a SAN) is the user, O= values are the groups;
 * names only count from a TLS handshake. */
static void test_certificates(void **state)
{
	struct km_auth *a = open_auth(NULL);
	const char *names[] = {"alice.example.com", "alice"};
	const char *orgs[] = {"sre"};
	struct km_auth_request req = {.peer = "p",
				      .tls = true,
				      .cert_cn = "svc-a",
				      .cert_orgs = orgs,
				      .n_cert_orgs = 1};
	struct km_identity id;
	struct km_error err = {0};

	(void)state;
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_string_equal(id.user, "svc-a");
	assert_string_equal(id.by, "cert");
	assert_int_equal(id.role, KM_ROLE_OPERATOR); /* group sre */

	/* A SAN names the user of a binding too. */
	req.cert_cn = "alice-laptop";
	req.cert_names = names;
	req.n_cert_names = 2;
	req.n_cert_orgs = 0;
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_string_equal(id.user, "alice-laptop");
	assert_int_equal(id.role, KM_ROLE_ADMIN);

	/* A certificate wins over a token on the same call. */
	req.bearer = "whatever";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_string_equal(id.by, "cert");

	/* No binding: an identity with no role. */
	req = (struct km_auth_request){.peer = "p",
				       .tls = true,
				       .cert_cn = "mallory"};
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_int_equal(id.role, KM_ROLE_NONE);
	km_auth_close(a);
}

/* The local identity is for plaintext loopback callers only. */
static void test_local_identity(void **state)
{
	struct km_auth *a = open_auth(NULL);
	struct km_auth_request req = {.peer = "ipv4:127.0.0.1:5",
				      .loopback = true};
	struct km_identity id;
	struct km_error err = {0};

	(void)state;
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_string_equal(id.user, "local");
	assert_string_equal(id.by, "local");
	/* Its own role is viewer; a binding raises it to operator. */
	assert_int_equal(id.role, KM_ROLE_OPERATOR);

	req.loopback = false;
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_string_equal(id.user, "");
	assert_int_equal(id.role, KM_ROLE_NONE);

	req.loopback = true;
	req.tls = true; /* over TLS, credentials are the TLS ones */
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_string_equal(id.user, "");
	km_auth_close(a);
}

static void test_refusal_messages(void **state)
{
	struct km_identity anon = {.user = "", .by = "none", .peer = "p"};
	struct km_identity bob = {.user = "bob",
				  .by = "token",
				  .peer = "p",
				  .role = KM_ROLE_VIEWER};
	struct km_error err = {0};

	(void)state;
	assert_int_equal(km_auth_check(&anon, KM_ROLE_NONE, "Check", &err), 0);
	assert_int_equal(km_auth_check(&anon, KM_ROLE_VIEWER, "ListProbes",
				       &err),
			 KM_EAUTH);
	assert_non_null(strstr(err.msg, "ListProbes needs the viewer role"));
	assert_non_null(strstr(err.msg, "no credentials"));
	assert_int_equal(km_auth_check(&bob, KM_ROLE_VIEWER, "x", &err), 0);
	assert_int_equal(km_auth_check(&bob, KM_ROLE_ADMIN,
				       "exec probes (they run commands)", &err),
			 KM_EPERM);
	assert_string_equal(err.msg,
			    "exec probes (they run commands) needs the admin "
			    "role; token user \"bob\" has viewer");
	assert_int_equal(km_auth_check(&bob, KM_ROLE_NOBODY, "Nope", &err),
			 KM_EPERM);
}

/* Every method of every service in the descriptor set has a rule; the
 * table names no method that does not exist; the rules are the ones
 * the security page documents. */
static void test_table_covers_every_method(void **state)
{
	const struct km_embedded_file *set = &km_descriptor_set[0];
	Google__Protobuf__FileDescriptorSet *fds;
	struct km_auth *a = open_auth(NULL);
	const char *const *paths;
	size_t n_paths = km_auth_table(&paths), seen = 0;

	(void)state;
	fds = google__protobuf__file_descriptor_set__unpack(NULL, set->len,
							    set->data);
	assert_non_null(fds);
	for (size_t f = 0; f < fds->n_file; f++) {
		const Google__Protobuf__FileDescriptorProto *fd = fds->file[f];

		for (size_t s = 0; s < fd->n_service; s++) {
			const Google__Protobuf__ServiceDescriptorProto *sd =
				fd->service[s];

			for (size_t m = 0; m < sd->n_method; m++) {
				char path[256];
				bool listed = false;

				snprintf(path, sizeof path, "/%s.%s/%s",
					 fd->package, sd->name,
					 sd->method[m]->name);
				if (km_auth_method_role(a, path) ==
				    KM_ROLE_NOBODY)
					fail_msg("no rule for %s in "
						 "km_auth_table.c",
						 path);
				for (size_t i = 0; i < n_paths; i++)
					listed |= !strcmp(paths[i], path);
				assert_true(listed);
				seen++;
			}
		}
	}
	/* Every rule is a real method (v1alpha reflection is v1's). */
	assert_int_equal(seen, n_paths);
	google__protobuf__file_descriptor_set__free_unpacked(fds, NULL);

	assert_int_equal(km_auth_method_role(a, "/kubemedic.v1.Nope/X"),
			 KM_ROLE_NOBODY);
	assert_int_equal(km_auth_method_role(
				 a, "/kubemedic.v1.ProbeService/CreateProbe"),
			 KM_ROLE_OPERATOR);
	assert_int_equal(km_auth_method_role(
				 a,
				 "/kubemedic.v1.AuditService/ListAuditEvents"),
			 KM_ROLE_ADMIN);
	assert_int_equal(km_auth_method_role(a, "/grpc.health.v1.Health/Check"),
			 KM_ROLE_VIEWER);
	assert_true(km_auth_method_mutates(
		"/kubemedic.v1.ProbeService/DeleteProbe"));
	assert_false(
		km_auth_method_mutates("/kubemedic.v1.ProbeService/GetProbe"));
	km_auth_close(a);
}

static void test_probe_roles(void **state)
{
	struct km_probe p = {.type = KM_PROBE_HTTP};
	const char *why;

	(void)state;
	assert_int_equal(km_auth_probe_role(&p, &why), KM_ROLE_OPERATOR);
	p.ca_file = "/etc/ca.pem";
	assert_int_equal(km_auth_probe_role(&p, &why), KM_ROLE_ADMIN);
	assert_non_null(strstr(why, "ca_file"));
	p = (struct km_probe){.type = KM_PROBE_EXEC};
	assert_int_equal(km_auth_probe_role(&p, &why), KM_ROLE_ADMIN);
	p = (struct km_probe){.type = KM_PROBE_FILE};
	assert_int_equal(km_auth_probe_role(&p, &why), KM_ROLE_ADMIN);
	p = (struct km_probe){.type = KM_PROBE_GRPC};
	assert_int_equal(km_auth_probe_role(&p, &why), KM_ROLE_OPERATOR);
	assert_string_equal(km_role_name(KM_ROLE_OPERATOR), "operator");
	assert_int_equal(km_role_parse("admin"), KM_ROLE_ADMIN);
	assert_int_equal(km_role_parse("root"), -1);
}

/* The cluster's RBAC (SubjectAccessReview in the daemon): allows a user
 * the verbs listed for it, or cannot answer. */
struct rbac {
	int calls;
	int answer; /* 0: as the rules say; KM_EUNAVAIL; KM_EINVAL: junk */
	const char *unavail_verb; /* only this verb cannot be answered */
	const char *user;         /* the rules: this user may do these */
	const char *verbs[4];
	struct km_auth_subject last; /* what the last question carried */
	char last_verb[16];
};

static int access_review(void *arg, const struct km_auth_subject *who,
			 const struct km_auth_access *what,
			 struct km_error *err)
{
	struct rbac *r = arg;

	r->calls++;
	r->last = *who;
	snprintf(r->last_verb, sizeof r->last_verb, "%s", what->verb);
	if (r->answer == KM_EUNAVAIL &&
	    (!r->unavail_verb || !strcmp(r->unavail_verb, what->verb)))
		return km_error_set(err, KM_EUNAVAIL,
				    "SubjectAccessReview: connection refused");
	if (r->answer == KM_EINVAL) /* an error the reviewer did not expect */
		return km_error_set(err, KM_EINTERNAL, "junk");
	for (size_t i = 0; i < 4 && r->verbs[i]; i++)
		if (r->user && !strcmp(who->user, r->user) &&
		    !strcmp(r->verbs[i], what->verb))
			return 0;
	return km_error_set(err, KM_EPERM,
			    "the cluster's RBAC does not "
			    "allow it");
}

static const struct km_auth_access view_access = {
	"kubemedic.io", "health", "", "", "", "get"};
static const struct km_auth_access operate_access = {
	"kubemedic.io", "health", "", "", "", "update"};
static const struct km_auth_access admin_access = {
	"kubemedic.io", "health", "", "", "ops", "*"};

static struct km_auth *open_rbac(struct reviewer *rv, struct rbac *rb,
				 const struct km_auth_binding *b, size_t nb,
				 int64_t allowed_ms, int64_t denied_ms)
{
	struct km_auth_options o = {
		.bindings = b,
		.n_bindings = nb,
		.health_role = KM_ROLE_VIEWER,
		.review = review,
		.review_arg = rv,
		.access_review = access_review,
		.access_review_arg = rb,
		.access = {NULL, &view_access, &operate_access, &admin_access},
		.access_allowed_ms = allowed_ms,
		.access_denied_ms = denied_ms,
	};
	struct km_error err = {0};
	struct km_auth *a = NULL;

	assert_int_equal(km_auth_open(&o, &a, &err), 0);
	return a;
}

/* The role of a reviewed token from the cluster's RBAC: the highest role
 * allowed, asked from the top; the subject asked about is all the token
 * review said; bindings and RBAC both grant. */
static void test_access_review_roles(void **state)
{
	static struct km_auth_binding b[] = {
		{KM_ROLE_OPERATOR, NULL, 0, sre, 1},
	};
	struct reviewer rv = {0};
	struct rbac rb = {.user = "system:serviceaccount:ci:viewer",
			  .verbs = {"get"}};
	struct km_auth_request req = {.peer = "ipv4:10.0.0.9:1234",
				      .tls = true,
				      .bearer = "user:system:serviceaccount:ci:"
						"viewer"};
	struct km_identity id;
	struct km_error err = {0};
	struct km_auth *a = open_rbac(&rv, &rb, NULL, 0, 60000, 10000);

	(void)state;
	/* Allowed get only: viewer, after admin and operator were refused;
	 * asked once for all three, the answers kept. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
				 0);
		assert_string_equal(id.by, "kube");
		assert_int_equal(id.role, KM_ROLE_VIEWER);
	}
	assert_int_equal(rb.calls, 3);
	assert_string_equal(rb.last_verb, "get");
	/* What was asked about is what the token review said. */
	assert_string_equal(rb.last.user, "system:serviceaccount:ci:viewer");
	assert_string_equal(rb.last.uid, "uid-1");
	assert_int_equal(rb.last.n_groups, 2);
	assert_string_equal(rb.last.groups[1], "sre");
	assert_int_equal(rb.last.n_extra, 1);
	assert_string_equal(rb.last.extra[0].key,
			    "authentication.kubernetes.io/pod-name");
	assert_string_equal(rb.last.extra[0].values[0], "web-0");
	/* A refusal names the role and what the cluster must allow. */
	assert_int_equal(km_auth_check(&id, KM_ROLE_OPERATOR, "RequestRecovery",
				       &err),
			 KM_EPERM);
	assert_string_equal(
		err.msg, "RequestRecovery needs the operator role; Kubernetes "
			 "user \"system:serviceaccount:ci:viewer\" has viewer "
			 "(the cluster's RBAC gives operator to whom it allows "
			 "\"update\" on health.kubemedic.io)");
	assert_int_equal(km_auth_check(&id, KM_ROLE_ADMIN, "ListAuditEvents",
				       &err),
			 KM_EPERM);
	assert_non_null(strstr(err.msg, "allows \"*\" on health.kubemedic.io "
					"in namespace ops)"));

	/* Allowed update and get: operator, asked twice (admin, operator). */
	rb.calls = 0;
	rb.user = "system:serviceaccount:ci:op";
	rb.verbs[1] = "update";
	req.bearer = "user:system:serviceaccount:ci:op";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_int_equal(id.role, KM_ROLE_OPERATOR);
	assert_int_equal(rb.calls, 2);
	assert_string_equal(rb.last_verb, "update");

	/* Allowed everything: admin, asked once. */
	rb.calls = 0;
	rb.user = "system:serviceaccount:ci:root";
	rb.verbs[2] = "*";
	req.bearer = "user:system:serviceaccount:ci:root";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_int_equal(id.role, KM_ROLE_ADMIN);
	assert_int_equal(rb.calls, 1);

	/* Allowed nothing: identified, no role, refused everything with the
	 * role it lacks and the access that would give it. */
	rb.calls = 0;
	req.bearer = "user:system:serviceaccount:ci:nobody";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_int_equal(id.role, KM_ROLE_NONE);
	assert_string_equal(id.user, "system:serviceaccount:ci:nobody");
	assert_int_equal(rb.calls, 3);
	assert_int_equal(km_auth_check(&id, KM_ROLE_VIEWER, "GetHealth", &err),
			 KM_EPERM);
	assert_string_equal(
		err.msg,
		"GetHealth needs the viewer role; Kubernetes user "
		"\"system:serviceaccount:ci:nobody\" has no role (the "
		"cluster's RBAC gives viewer to whom it allows \"get\" "
		"on health.kubemedic.io)");
	km_auth_close(a);

	/* With a binding: only the roles above it are asked. */
	a = open_rbac(&rv, &rb, b, 1, 60000, 10000);
	rb.calls = 0;
	rb.user = "system:serviceaccount:ci:viewer";
	req.bearer = "sa-token"; /* group sre: operator by the binding */
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_int_equal(id.role, KM_ROLE_OPERATOR);
	assert_int_equal(rb.calls, 1);
	assert_string_equal(rb.last_verb, "*");
	/* Identities that are not the cluster's are never asked. */
	{
		struct km_auth_request local = {.peer = "ipv4:127.0.0.1:9",
						.loopback = true};

		assert_int_equal(km_auth_identify(a, &local, &arena, &id, &err),
				 0);
		assert_int_equal(rb.calls, 1);
		assert_null(id.access);
	}
	km_auth_close(a);
}

/* An API server that cannot answer fails the call, never a lower role in
 * silence, and is asked again next time. */
static void test_access_review_unavailable(void **state)
{
	struct reviewer rv = {0};
	struct rbac rb = {.user = "system:serviceaccount:ci:op",
			  .verbs = {"get", "update"}};
	struct km_auth_request req = {
		.peer = "ipv4:10.0.0.9:1234",
		.tls = true,
		.bearer = "user:system:serviceaccount:ci:op"};
	struct km_identity id;
	struct km_error err = {0};
	struct km_auth *a = open_rbac(&rv, &rb, NULL, 0, 60000, 10000);

	(void)state;
	rb.answer = KM_EUNAVAIL;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
				 KM_EUNAVAIL);
		assert_string_equal(
			err.msg,
			"the role of Kubernetes user "
			"\"system:serviceaccount:ci:op\" could not be asked of "
			"the cluster (admin: * on health): "
			"SubjectAccessReview: connection refused");
	}
	assert_int_equal(rb.calls, 2);
	/* admin answered (denied, kept); operator cannot be: not viewer. */
	rb.unavail_verb = "update";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
			 KM_EUNAVAIL);
	assert_non_null(strstr(err.msg, "(operator: update on health)"));
	assert_int_equal(rb.calls, 4);
	/* Back: operator; admin's refusal was kept, not asked again. */
	rb.answer = 0;
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_int_equal(id.role, KM_ROLE_OPERATOR);
	assert_int_equal(rb.calls, 5);
	/* A reviewer's unexpected error is UNAVAILABLE too. */
	rb.answer = KM_EINVAL;
	req.bearer = "user:someone-else";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
			 KM_EUNAVAIL);
	assert_non_null(strstr(err.msg, ": junk"));
	km_auth_close(a);
}

/* Answers are kept per subject and access, for their time, and at most
 * KM_AUTH_ACCESS_CACHE_MAX of them. */
static void test_access_review_cache(void **state)
{
	struct reviewer rv = {0};
	struct rbac rb = {.user = "system:serviceaccount:ci:viewer",
			  .verbs = {"get"}};
	struct km_auth_request req = {
		.peer = "ipv4:10.0.0.9:1234",
		.tls = true,
		.bearer = "user:system:serviceaccount:ci:viewer"};
	struct km_identity id;
	struct km_error err = {0};
	struct km_auth *a;
	int64_t deadline;
	char tok[64];

	(void)state;
	/* Not kept (0): asked on every call. */
	a = open_rbac(&rv, &rb, NULL, 0, 0, 0);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
				 0);
		assert_int_equal(rb.calls, 3 * i);
	}
	km_auth_close(a);

	/* Allowed answers kept 50 ms, refusals an hour: the allowed one is
	 * asked again once its time is over, the refusals are not. Polled
	 * against a deadline: this checks expiry, not timing. */
	a = open_rbac(&rv, &rb, NULL, 0, 50, 3600 * 1000);
	rb.calls = 0;
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_int_equal(rb.calls, 3);
	deadline = km_mono_ns() / 1000000 + 5000;
	while (rb.calls == 3 && km_mono_ns() / 1000000 < deadline) {
		struct timespec ts = {0, 5 * 1000 * 1000};

		assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
				 0);
		assert_int_equal(id.role, KM_ROLE_VIEWER);
		nanosleep(&ts, NULL); /* not to spin; the loop checks */
	}
	assert_int_equal(rb.calls, 4);
	assert_string_equal(rb.last_verb, "get");
	/* The binding of the cluster is gone: the next answer says so. */
	rb.verbs[0] = NULL;
	deadline = km_mono_ns() / 1000000 + 5000;
	for (;;) {
		struct timespec ts = {0, 5 * 1000 * 1000};

		assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
				 0);
		if (id.role == KM_ROLE_NONE ||
		    km_mono_ns() / 1000000 > deadline)
			break;
		nanosleep(&ts, NULL); /* not to spin; the loop checks */
	}
	assert_int_equal(id.role, KM_ROLE_NONE);
	km_auth_close(a);

	/* Bounded: past KM_AUTH_ACCESS_CACHE_MAX answers, the soonest to
	 * expire (the first) makes room. Only admin is asked here (a binding
	 * gives everyone operator). */
	{
		static const char *const everyone[] = {
			"system:serviceaccounts"};
		static struct km_auth_binding b[] = {
			{KM_ROLE_OPERATOR, NULL, 0, (const char **)everyone, 1},
		};

		a = open_rbac(&rv, &rb, b, 1, 3600 * 1000, 3600 * 1000);
	}
	rb.calls = 0;
	for (int i = 0; i < KM_AUTH_ACCESS_CACHE_MAX; i++) {
		snprintf(tok, sizeof tok, "user:u%d", i);
		req.bearer = tok;
		assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err),
				 0);
		km_arena_reset(&arena);
	}
	assert_int_equal(rb.calls, KM_AUTH_ACCESS_CACHE_MAX);
	req.bearer = "user:u0"; /* kept: not asked */
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_int_equal(rb.calls, KM_AUTH_ACCESS_CACHE_MAX);
	req.bearer = "user:one-more"; /* makes room: u0's goes */
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	req.bearer = "user:u0";
	assert_int_equal(km_auth_identify(a, &req, &arena, &id, &err), 0);
	assert_int_equal(rb.calls, KM_AUTH_ACCESS_CACHE_MAX + 2);
	km_auth_close(a);
}

/* An access without a verb or resource is refused when opened. */
static void test_access_review_options(void **state)
{
	static const struct km_auth_access no_verb = {
		"kubemedic.io", "health", "", "", "", ""};
	struct km_auth_options o = {
		.review = review,
		.access_review = access_review,
		.access = {NULL, &no_verb, NULL, NULL},
	};
	struct km_error err = {0};
	struct km_auth *a = NULL;

	(void)state;
	assert_int_equal(km_auth_open(&o, &a, &err), KM_EINVAL);
	assert_null(a);
	assert_string_equal(err.msg, "the access asked for the viewer role "
				     "needs a verb and a resource");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_token_review),
		cmocka_unit_test(test_access_review_roles),
		cmocka_unit_test(test_access_review_unavailable),
		cmocka_unit_test(test_access_review_cache),
		cmocka_unit_test(test_access_review_options),
		cmocka_unit_test(test_token_file_reload),
		cmocka_unit_test(test_token_file_errors),
		cmocka_unit_test(test_certificates),
		cmocka_unit_test(test_local_identity),
		cmocka_unit_test(test_refusal_messages),
		cmocka_unit_test(test_table_covers_every_method),
		cmocka_unit_test(test_probe_roles),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
