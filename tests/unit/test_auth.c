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
		  const char **user, const char ***groups, size_t *n_groups,
		  struct km_error *err)
{
	struct reviewer *r = arg;

	r->calls++;
	if (r->answer)
		return km_error_set(err, r->answer,
				    r->answer == KM_EAUTH
					    ? "token review: not authenticated"
					    : "token review: the API server "
					      "did not answer");
	*user = km_arena_strdup(ar, !strcmp(token, "sa-token")
					    ? "system:serviceaccount:ci:bot"
					    : "someone");
	*groups = km_arena_calloc(ar, 2, sizeof **groups);
	(*groups)[0] = "system:serviceaccounts";
	(*groups)[1] = "sre";
	*n_groups = 2;
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_token_review),
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
