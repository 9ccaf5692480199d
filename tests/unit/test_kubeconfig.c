/* The kubeconfig and the in-cluster configuration
 * (service/kube/km_kubeconfig.h): kubectl's files resolved into a server,
 * PEM bytes and a token; every refusal's message, exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "km_kubeconfig.h"
#include "km_test.h"

#define CA_PEM "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
#define CA_B64                                                         \
	"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCi0tLS0tRU5EIENFUlRJ" \
	"RklDQVRFLS0tLS0K"
#define CERT_PEM \
	"-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
#define CERT_B64                                                       \
	"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNMSUVOVAotLS0tLUVORCBD" \
	"RVJUSUZJQ0FURS0tLS0tCg=="
#define KEY_PEM                                                             \
	"-----BEGIN EC PRIVATE KEY-----\nKEY\n-----END EC PRIVATE KEY-----" \
	"\n"
#define KEY_B64                                                        \
	"LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCktFWQotLS0tLUVORCBF" \
	"QyBQUklWQVRFIEtFWS0tLS0tCg=="

static char *dir;

static int setup(void **state)
{
	(void)state;
	dir = km_test_tmpdir();
	return dir ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	km_test_rmrf(dir);
	free(dir);
	return 0;
}

/* dir/name, in a static buffer of its own per call site's use. */
static const char *at(const char *name, char buf[512])
{
	snprintf(buf, 512, "%s/%s", dir, name);
	return buf;
}

static void write_file(const char *name, const char *text)
{
	char p[512];
	FILE *f = fopen(at(name, p), "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Loads text written as dir/config. */
static int load(struct km_kubeconfig *kc, const char *text, const char *context,
		struct km_error *err)
{
	char p[512];

	write_file("config", text);
	return km_kubeconfig_load(kc, at("config", p), context, err);
}

/* text must be refused with the message "kubeconfig DIR/config" + want
 * (want begins with ":LINE:COL: ..." or ": ..."). */
static void expect_refused(const char *text, const char *context,
			   const char *want)
{
	struct km_kubeconfig kc;
	struct km_error err = {0};
	char full[1024];

	snprintf(full, sizeof full, "kubeconfig %s/config%s", dir, want);
	assert_int_equal(load(&kc, text, context, &err), KM_EINVAL);
	assert_int_equal(err.code, KM_EINVAL);
	assert_string_equal(err.msg, full);
	assert_null(kc.server);
	km_kubeconfig_free(&kc);
}

/* ---- good files ---------------------------------------------------------- */

/* What kubectl writes (kind: the -data fields), with what kubemedic does
 * not read around it. */
static const char kubectl_style[] =
	"apiVersion: v1\n"
	"kind: Config\n"
	"preferences: {colors: true}\n"
	"clusters:\n"
	"- cluster:\n"
	"    certificate-authority-data: " CA_B64 "\n"
	"    server: https://10.0.0.1:6443/\n"
	"    extensions:\n"
	"    - name: client.authentication.k8s.io/exec\n"
	"      extension: {audience: x}\n"
	"  name: kind-kind\n"
	"- cluster:\n"
	"    server: https://other:443\n"
	"    proxy-url: http://proxy:3128\n"
	"  name: other\n"
	"contexts:\n"
	"- context:\n"
	"    cluster: kind-kind\n"
	"    user: kind-kind\n"
	"  name: kind-kind\n"
	"- context: {cluster: other, user: gke, namespace: shop}\n"
	"  name: other\n"
	"current-context: kind-kind\n"
	"users:\n"
	"- name: kind-kind\n"
	"  user:\n"
	"    client-certificate-data: " CERT_B64 "\n"
	"    client-key-data: |\n"
	"      LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCktFWQotLS0tLUVORCBF\n"
	"      QyBQUklWQVRFIEtFWS0tLS0tCg==\n"
	"- name: gke\n"
	"  user:\n"
	"    exec: {command: gke-gcloud-auth-plugin}\n";

static void test_kubectl_data_fields(void **state)
{
	struct km_kubeconfig kc;
	struct km_error err = {0};
	char p[512];

	(void)state;
	assert_int_equal(load(&kc, kubectl_style, NULL, &err), 0);
	assert_string_equal(kc.path, at("config", p));
	assert_string_equal(kc.context, "kind-kind");
	assert_string_equal(kc.cluster, "kind-kind");
	assert_string_equal(kc.user, "kind-kind");
	assert_string_equal(kc.server, "https://10.0.0.1:6443");
	assert_string_equal(kc.ca_pem, CA_PEM);
	assert_int_equal(kc.ca_pem_len, strlen(CA_PEM));
	assert_string_equal(kc.client_cert_pem, CERT_PEM);
	assert_int_equal(kc.client_cert_pem_len, strlen(CERT_PEM));
	assert_string_equal(kc.client_key_pem, KEY_PEM);
	assert_int_equal(kc.client_key_pem_len, strlen(KEY_PEM));
	assert_null(kc.token);
	assert_null(kc.token_file);
	assert_null(kc.tls_server_name);
	assert_false(kc.insecure_skip_tls_verify);
	assert_string_equal(kc.ns, "default");
	km_kubeconfig_free(&kc);
	km_kubeconfig_free(&kc); /* twice is harmless */
}

/* The other context's user runs a plugin and its cluster a proxy:
 * refused when chosen, with the field named. */
static void test_named_context(void **state)
{
	(void)state;
	expect_refused(kubectl_style, "other",
		       ":14:16: clusters[1].cluster.proxy-url: not supported: "
		       "kubemedic connects to the API server directly");
}

static void test_file_references(void **state)
{
	struct km_kubeconfig kc;
	struct km_error err = {0};
	char text[2048], key[512], p[512];

	(void)state;
	assert_int_equal(mkdir(at("sub", p), 0700), 0);
	write_file("ca.crt", CA_PEM);
	write_file("sub/client.crt", CERT_PEM);
	write_file("client.key", KEY_PEM);
	write_file("sub/token", "  secret-token\n");
	snprintf(text, sizeof text,
		 "clusters:\n"
		 "- name: c\n"
		 "  cluster:\n"
		 "    server: https://api.example:6443\n"
		 "    certificate-authority: ca.crt\n"
		 "    tls-server-name: kubernetes.default\n"
		 "users:\n"
		 "- name: u\n"
		 "  user:\n"
		 "    client-certificate: sub/client.crt\n"
		 "    client-key: %s\n"
		 "    token: overridden\n"
		 "    tokenFile: sub/token\n"
		 "contexts:\n"
		 "- name: x\n"
		 "  context: {cluster: c, user: u, namespace: shop}\n"
		 "- name: y\n"
		 "  context: {cluster: c}\n"
		 "current-context: x\n",
		 at("client.key", key));
	assert_int_equal(load(&kc, text, NULL, &err), 0);
	assert_string_equal(kc.server, "https://api.example:6443");
	assert_string_equal(kc.ca_pem, CA_PEM);
	assert_string_equal(kc.client_cert_pem, CERT_PEM);
	assert_string_equal(kc.client_key_pem, KEY_PEM);
	assert_string_equal(kc.tls_server_name, "kubernetes.default");
	/* The file wins over token, trimmed, and is kept to be re-read. */
	assert_string_equal(kc.token, "secret-token");
	assert_string_equal(kc.token_file, at("sub/token", p));
	assert_string_equal(kc.ns, "shop");
	assert_string_equal(kc.context, "x");
	km_kubeconfig_free(&kc);

	/* A named context; no user is no credentials; namespace "default". */
	assert_int_equal(load(&kc, text, "y", &err), 0);
	assert_string_equal(kc.context, "y");
	assert_null(kc.user);
	assert_null(kc.token);
	assert_null(kc.client_cert_pem);
	assert_string_equal(kc.ca_pem, CA_PEM);
	assert_string_equal(kc.ns, "default");
	km_kubeconfig_free(&kc);
}

/* Relative names resolve against the kubeconfig's directory, also when
 * its own path is relative. */
static void test_relative_kubeconfig_path(void **state)
{
	struct km_kubeconfig kc;
	struct km_error err = {0};
	char cwd[512], p[512];

	(void)state;
	assert_int_equal(mkdir(at("rel", p), 0700), 0);
	write_file("rel/ca.pem", CA_PEM);
	write_file("rel/tok", "t0k\n");
	write_file("rel/config", "clusters: [{name: c, cluster: {server: "
				 "'http://127.0.0.1:8001', "
				 "certificate-authority: ca.pem}}]\n"
				 "users: [{name: u, user: {token: abc}}]\n"
				 "contexts: [{name: x, context: {cluster: c, "
				 "user: u}}]\n"
				 "current-context: x\n");
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(km_kubeconfig_load(&kc, "rel/config", NULL, &err), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(kc.server, "http://127.0.0.1:8001");
	assert_string_equal(kc.ca_pem, CA_PEM);
	assert_string_equal(kc.token, "abc");
	assert_null(kc.token_file);
	km_kubeconfig_free(&kc);
}

/* ---- malformed files ------------------------------------------------------ */

static void test_malformed(void **state)
{
	char text[2048], p[512];

	(void)state;
	/* Contexts, clusters, users missing name what exists. */
	expect_refused("contexts: [{name: a, context: {cluster: c}}, "
		       "{name: b, context: {cluster: c}}]\n",
		       "prod",
		       ": context \"prod\" not found; contexts in the file: "
		       "\"a\", \"b\"");
	expect_refused("clusters: []\n", NULL,
		       ": no current-context, and no context was named; the "
		       "file has no contexts");
	expect_refused("", NULL,
		       ": no current-context, and no context was named; the "
		       "file has no contexts");
	expect_refused("contexts: [{name: a, context: {cluster: c}}]\n"
		       "current-context: b\n",
		       NULL,
		       ":2:18: current-context: context \"b\" not found; "
		       "contexts in the file: \"a\"");
	expect_refused("clusters: [{name: c1, cluster: {server: "
		       "'https://x'}}]\n"
		       "contexts:\n"
		       "- name: a\n"
		       "  context:\n"
		       "    cluster: c2\n"
		       "current-context: a\n",
		       NULL,
		       ":5:14: contexts[0].context.cluster: cluster \"c2\" not "
		       "found; clusters in the file: \"c1\"");
	expect_refused("clusters: [{name: c, cluster: {server: 'https://x'}}]\n"
		       "contexts: [{name: a, context: {cluster: c, user: "
		       "me}}]\n"
		       "current-context: a\n",
		       NULL,
		       ":2:50: contexts[0].context.user: user \"me\" not "
		       "found; the file has no users");
	expect_refused("contexts: [{name: a, context: {user: u}}]\n", "a",
		       ":1:12: contexts[0].context.cluster: missing: the "
		       "context names no cluster");

	/* The shape of the file. */
	expect_refused("apiVersion: v2\n", NULL,
		       ":1:13: apiVersion: \"v2\": expected \"v1\"");
	expect_refused("kind: Pod\n", NULL,
		       ":1:7: kind: \"Pod\": expected \"Config\" (a "
		       "kubeconfig)");
	expect_refused("- a\n", NULL,
		       ":1:1: the document: expected a mapping, got a list");
	expect_refused("clusters: {a: b}\n", NULL,
		       ":1:11: clusters: expected a list, got a mapping");
	expect_refused("users: [x]\n", NULL,
		       ":1:9: users[0]: expected a mapping {name, user}, got "
		       "\"x\"");
	expect_refused("users: [{user: {}}]\n", NULL,
		       ":1:9: users[0].name: missing");
	expect_refused("users:\n- name: u\n- name: v\n- name: u\n", NULL,
		       ":4:3: users[2].name: duplicate name \"u\": users[0] "
		       "at line 2 has it already");
	expect_refused("users:\n- name: u\n  user:\n    token: [a]\n", NULL,
		       ":4:12: users[0].user.token: expected a string, got a "
		       "list");
	/* A token is sent as a header's value: nothing that would end the
	 * header, or is not a bearer token's, whether written in the file
	 * or read from tokenFile. */
	write_file("crlf-token", "abc\r\nX-Injected: 1\n");
	expect_refused("clusters: [{name: c, cluster: {server: "
		       "'https://127.0.0.1:6443'}}]\n"
		       "users: [{name: u, user: {token: \"abc\\r\\nX-Injected: "
		       "1\"}}]\n"
		       "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
		       "current-context: x\n",
		       NULL,
		       ":2:33: users[0].user.token: holds more than one line");
	expect_refused("clusters: [{name: c, cluster: {server: "
		       "'https://127.0.0.1:6443'}}]\n"
		       "users: [{name: u, user: {token: \"abc def\"}}]\n"
		       "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
		       "current-context: x\n",
		       NULL,
		       ":2:33: users[0].user.token: holds a character a bearer "
		       "token does not (a space, a control character or "
		       "non-ASCII)");
	{
		char want[1024];

		snprintf(want, sizeof want,
			 ":2:37: users[0].user.tokenFile: %s/crlf-token: "
			 "holds more than one line",
			 dir);
		expect_refused("clusters: [{name: c, cluster: {server: "
			       "'https://127.0.0.1:6443'}}]\n"
			       "users: [{name: u, user: {tokenFile: "
			       "crlf-token}}]\n"
			       "contexts: [{name: x, context: {cluster: c, "
			       "user: u}}]\n"
			       "current-context: x\n",
			       NULL, want);
	}
	expect_refused("key: [\n", NULL,
		       ":2:1: invalid YAML: did not find expected node "
		       "content (while parsing a flow node at line 2, column "
		       "1)");

	/* Base64 is checked in every entry, chosen or not. */
	expect_refused("users:\n"
		       "- name: u\n"
		       "  user:\n"
		       "    client-key-data: bm90IGJhc2U2NA=!\n",
		       NULL,
		       ":4:22: users[0].user.client-key-data: not valid "
		       "base64");
	expect_refused("clusters:\n"
		       "- name: c\n"
		       "  cluster:\n"
		       "    certificate-authority-data: aGVsbG8\n",
		       NULL,
		       ":4:33: clusters[0].cluster.certificate-authority-data: "
		       "not valid base64");
	expect_refused("clusters:\n"
		       "- name: c\n"
		       "  cluster:\n"
		       "    insecure-skip-tls-verify: yes\n",
		       NULL,
		       ":4:31: clusters[0].cluster.insecure-skip-tls-verify: "
		       "expected true or false, got \"yes\"");

#define CTX                                                 \
	"contexts: [{name: a, context: {cluster: c, user: " \
	"u}}]\ncurrent-context: a\n"
	/* The chosen cluster. */
	expect_refused(CTX "clusters: [{name: c, cluster: {}}]\n"
			   "users: [{name: u}]\n",
		       NULL,
		       ":3:12: clusters[0].cluster.server: missing: the API "
		       "server's URL (https://HOST:PORT)");
	expect_refused(CTX "clusters: [{name: c, cluster: {server: "
			   "10.0.0.1:6443}}]\n"
			   "users: [{name: u}]\n",
		       NULL,
		       ":3:40: clusters[0].cluster.server: \"10.0.0.1:6443\": "
		       "expected a URL: https://HOST[:PORT]");
	expect_refused(CTX "clusters: [{name: c, cluster: {server: "
			   "'https://x', certificate-authority: ca, "
			   "certificate-authority-data: " CA_B64 "}}]\n"
			   "users: [{name: u}]\n",
		       NULL,
		       ":3:31: clusters[0].cluster: give certificate-authority "
		       "or certificate-authority-data, not both");
	expect_refused(CTX "clusters: [{name: c, cluster: {server: "
			   "'https://x', insecure-skip-tls-verify: true, "
			   "certificate-authority-data: " CA_B64 "}}]\n"
			   "users: [{name: u}]\n",
		       NULL,
		       ":3:79: clusters[0].cluster.insecure-skip-tls-verify: "
		       "not allowed with a certificate authority "
		       "(certificate-authority or certificate-authority-data): "
		       "give one or the other");
	expect_refused(CTX "clusters: [{name: c, cluster: {server: "
			   "'https://x', certificate-authority-data: "
			   "aGVsbG8=}}]\n"
			   "users: [{name: u}]\n",
		       NULL,
		       ":3:81: clusters[0].cluster.certificate-authority-data: "
		       "holds no PEM certificate (\"-----BEGIN "
		       "CERTIFICATE-----\")");

	/* The chosen user. */
#define CLUSTER "clusters: [{name: c, cluster: {server: 'https://x'}}]\n"
	expect_refused(
		CTX CLUSTER "users:\n"
			    "- name: u\n"
			    "  user:\n"
			    "    exec:\n"
			    "      command: aws\n",
		NULL,
		":8:7: users[0].user.exec: credential plugins (exec) are "
		"not supported yet: give a token, tokenFile or client "
		"certificate");
	expect_refused(CTX CLUSTER "users:\n"
				   "- name: u\n"
				   "  user:\n"
				   "    auth-provider: {name: gcp}\n",
		       NULL,
		       ":7:20: users[0].user.auth-provider: auth providers are "
		       "not supported yet: give a token, tokenFile or client "
		       "certificate");
	expect_refused(CTX CLUSTER "users:\n"
				   "- name: u\n"
				   "  user: {username: admin, password: x}\n",
		       NULL,
		       ":6:20: users[0].user.username: basic authentication is "
		       "not supported: give a token, tokenFile or client "
		       "certificate");
	expect_refused(CTX CLUSTER "users:\n"
				   "- name: u\n"
				   "  user: {token: t, as: root}\n",
		       NULL,
		       ":6:24: users[0].user.as: impersonation is not "
		       "supported");
	expect_refused(CTX CLUSTER "users:\n"
				   "- name: u\n"
				   "  user: {client-certificate-data: " CERT_B64
				   "}\n",
		       NULL,
		       ":6:9: users[0].user: a client certificate needs its "
		       "key (client-key or client-key-data)");
	expect_refused(CTX CLUSTER "users:\n"
				   "- name: u\n"
				   "  user: {client-key-data: " KEY_B64 "}\n",
		       NULL,
		       ":6:9: users[0].user: a client key needs its "
		       "certificate (client-certificate or "
		       "client-certificate-data)");
	expect_refused(CTX CLUSTER "users:\n"
				   "- name: u\n"
				   "  user: {client-certificate-data: " CERT_B64
				   ", client-key-data: " CERT_B64 "}\n",
		       NULL,
		       ":6:138: users[0].user.client-key-data: holds no PEM "
		       "private key (\"-----BEGIN PRIVATE KEY-----\")");
	expect_refused(CTX CLUSTER "users:\n"
				   "- name: u\n"
				   "  user: {client-certificate: a.crt, "
				   "client-certificate-data: " CERT_B64 "}\n",
		       NULL,
		       ":6:9: users[0].user: give client-certificate or "
		       "client-certificate-data, not both");

	/* Files named that cannot be read name the path and the field. */
	snprintf(text, sizeof text,
		 ":6:21: users[0].user.tokenFile: %s: No such file or "
		 "directory",
		 at("missing", p));
	expect_refused(CTX CLUSTER "users:\n"
				   "- name: u\n"
				   "  user: {tokenFile: missing}\n",
		       NULL, text);
	write_file("empty-token", " \n");
	snprintf(text, sizeof text, ":6:21: users[0].user.tokenFile: %s: empty",
		 at("empty-token", p));
	expect_refused(CTX CLUSTER "users:\n"
				   "- name: u\n"
				   "  user: {tokenFile: empty-token}\n",
		       NULL, text);
	write_file("not-a-cert", "hello\n");
	snprintf(text, sizeof text,
		 ":3:76: clusters[0].cluster.certificate-authority: %s: holds "
		 "no PEM certificate (\"-----BEGIN CERTIFICATE-----\")",
		 at("not-a-cert", p));
	expect_refused(CTX "clusters: [{name: c, cluster: {server: "
			   "'https://x', certificate-authority: "
			   "not-a-cert}}]\n"
			   "users: [{name: u}]\n",
		       NULL, text);
	snprintf(text, sizeof text,
		 ":3:76: clusters[0].cluster.certificate-authority: %s: a "
		 "directory, not a regular file",
		 at(".", p));
	expect_refused(CTX "clusters: [{name: c, cluster: {server: "
			   "'https://x', certificate-authority: .}}]\n"
			   "users: [{name: u}]\n",
		       NULL, text);
}

/* A FIFO would block the reader: refused before it is opened, as a
 * referenced file and as the kubeconfig itself; a file past its bound. */
static void test_fifo_and_bounds(void **state)
{
	struct km_kubeconfig kc;
	struct km_error err = {0};
	char text[1024], p[512], want[1024];
	FILE *f;

	(void)state;
	assert_int_equal(mkfifo(at("fifo", p), 0600), 0);
	snprintf(want, sizeof want,
		 ":6:133: users[0].user.client-key: %s: a FIFO, not a regular "
		 "file",
		 at("fifo", p));
	expect_refused(CTX CLUSTER "users:\n"
				   "- name: u\n"
				   "  user: {client-certificate-data: " CERT_B64
				   ", client-key: fifo}\n"
				   "",
		       NULL, want);
	assert_int_equal(km_kubeconfig_load(&kc, at("fifo", p), NULL, &err),
			 KM_EINVAL);
	snprintf(want, sizeof want,
		 "kubeconfig: %s: a FIFO, not a regular file", at("fifo", p));
	assert_string_equal(err.msg, want);
	assert_int_equal(km_kubeconfig_load(&kc, at("nope", p), NULL, &err),
			 KM_ENOTFOUND);
	snprintf(want, sizeof want, "kubeconfig: %s: No such file or directory",
		 at("nope", p));
	assert_string_equal(err.msg, want);

	/* A kubeconfig of more than 4 MiB. */
	f = fopen(at("big", p), "w");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), (4 << 20) + 1), 0);
	fclose(f);
	assert_int_equal(km_kubeconfig_load(&kc, at("big", p), NULL, &err),
			 KM_EINVAL);
	snprintf(want, sizeof want,
		 "kubeconfig: %s: 4194305 bytes, more than a kubeconfig's "
		 "limit of 4194304 (4 MiB)",
		 at("big", p));
	assert_string_equal(err.msg, want);

	/* A certificate file of more than 1 MiB. */
	f = fopen(at("big.crt", p), "w");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), (1 << 20) + 1), 0);
	fclose(f);
	snprintf(text, sizeof text,
		 ":3:76: clusters[0].cluster.certificate-authority: %s: "
		 "1048577 bytes, more than a certificate file's limit of "
		 "1048576 (1 MiB)",
		 at("big.crt", p));
	expect_refused(CTX "clusters: [{name: c, cluster: {server: "
			   "'https://x', certificate-authority: big.crt}}]\n"
			   "users: [{name: u}]\n",
		       NULL, text);
}

/* ---- in a pod -------------------------------------------------------------- */

/* The token file read again when it rotates (the API client's and the
 * token reviewer's reader). */
static void test_read_token(void **state)
{
	struct km_error err = {0};
	char p[512], want[600], *tok = NULL;

	(void)state;
	write_file("tok", "  abc.def-ghi \n\n");
	assert_int_equal(km_kubeconfig_read_token(at("tok", p), &tok, &err), 0);
	assert_string_equal(tok, "abc.def-ghi");
	free(tok);
	write_file("tok", " \n");
	assert_int_equal(km_kubeconfig_read_token(at("tok", p), &tok, &err),
			 KM_EINVAL);
	assert_null(tok);
	snprintf(want, sizeof want, "%s: empty", at("tok", p));
	assert_string_equal(err.msg, want);
	/* It goes into an HTTP header: one line only. */
	write_file("tok", "abc\r\nX-Injected: 1\n");
	assert_int_equal(km_kubeconfig_read_token(at("tok", p), &tok, &err),
			 KM_EINVAL);
	snprintf(want, sizeof want, "%s: holds more than one line",
		 at("tok", p));
	assert_string_equal(err.msg, want);
	assert_int_equal(mkfifo(at("tokfifo", p), 0600), 0);
	assert_int_equal(km_kubeconfig_read_token(at("tokfifo", p), &tok, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "a FIFO, not a regular file"));
	assert_int_equal(km_kubeconfig_read_token(at("missing", p), &tok, &err),
			 KM_ENOTFOUND);
}

static void test_in_cluster(void **state)
{
	struct km_kubeconfig kc;
	struct km_error err = {0};
	char sa[512], p[512], want[1024];

	(void)state;
	assert_int_equal(mkdir(at("sa", sa), 0700), 0);
	write_file("sa/token", "eyJhbGciOi.token\n");
	write_file("sa/ca.crt", CA_PEM);
	write_file("sa/namespace", "kube-system");
	unsetenv("POD_NAMESPACE");

	/* Not in a pod. */
	unsetenv("KUBERNETES_SERVICE_HOST");
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(km_kubeconfig_in_cluster(&kc, sa, &err), KM_ENOTFOUND);
	assert_string_equal(err.msg,
			    "in-cluster config: KUBERNETES_SERVICE_HOST and "
			    "KUBERNETES_SERVICE_PORT must be set (they are in "
			    "a pod)");

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	assert_int_equal(km_kubeconfig_in_cluster(&kc, sa, &err), 0);
	assert_string_equal(kc.server, "https://10.96.0.1:443");
	assert_string_equal(kc.token, "eyJhbGciOi.token");
	assert_string_equal(kc.token_file, at("sa/token", p));
	assert_string_equal(kc.ca_pem, CA_PEM);
	assert_int_equal(kc.ca_pem_len, strlen(CA_PEM));
	assert_string_equal(kc.ns, "kube-system");
	assert_null(kc.path);
	assert_null(kc.context);
	km_kubeconfig_free(&kc);

	/* IPv6: in brackets; POD_NAMESPACE wins. */
	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	setenv("POD_NAMESPACE", "monitoring", 1);
	assert_int_equal(km_kubeconfig_in_cluster(&kc, sa, &err), 0);
	assert_string_equal(kc.server, "https://[fd00:10:96::1]:443");
	assert_string_equal(kc.ns, "monitoring");
	km_kubeconfig_free(&kc);
	unsetenv("POD_NAMESPACE");

	/* No namespace file: "default". */
	assert_int_equal(unlink(at("sa/namespace", p)), 0);
	assert_int_equal(km_kubeconfig_in_cluster(&kc, sa, &err), 0);
	assert_string_equal(kc.ns, "default");
	km_kubeconfig_free(&kc);

	/* Malformed. */
	setenv("KUBERNETES_SERVICE_PORT", "https", 1);
	assert_int_equal(km_kubeconfig_in_cluster(&kc, sa, &err), KM_EINVAL);
	assert_string_equal(err.msg,
			    "in-cluster config: KUBERNETES_SERVICE_PORT="
			    "\"https\": not a port number (1 to 65535)");
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv("KUBERNETES_SERVICE_HOST", "a/b", 1);
	assert_int_equal(km_kubeconfig_in_cluster(&kc, sa, &err), KM_EINVAL);
	assert_string_equal(err.msg,
			    "in-cluster config: KUBERNETES_SERVICE_HOST="
			    "\"a/b\": not a host name or address");
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	write_file("sa/token", "\n");
	assert_int_equal(km_kubeconfig_in_cluster(&kc, sa, &err), KM_EINVAL);
	snprintf(want, sizeof want, "in-cluster config: %s: empty",
		 at("sa/token", p));
	assert_string_equal(err.msg, want);
	/* A token becomes a header as it is: a line break in it would start
	 * a header of the file's writer's choosing. */
	write_file("sa/token", "abc\r\nX-Injected: 1\n");
	assert_int_equal(km_kubeconfig_in_cluster(&kc, sa, &err), KM_EINVAL);
	snprintf(want, sizeof want,
		 "in-cluster config: %s: holds more than one line",
		 at("sa/token", p));
	assert_string_equal(err.msg, want);
	assert_int_equal(unlink(at("sa/token", p)), 0);
	assert_int_equal(mkfifo(at("sa/token", p), 0600), 0);
	assert_int_equal(km_kubeconfig_in_cluster(&kc, sa, &err), KM_EINVAL);
	snprintf(want, sizeof want,
		 "in-cluster config: %s: a FIFO, not a regular file",
		 at("sa/token", p));
	assert_string_equal(err.msg, want);
	assert_int_equal(unlink(at("sa/token", p)), 0);
	write_file("sa/token", "t");
	assert_int_equal(unlink(at("sa/ca.crt", p)), 0);
	assert_int_equal(km_kubeconfig_in_cluster(&kc, sa, &err), KM_EINVAL);
	snprintf(want, sizeof want,
		 "in-cluster config: %s: No such file or directory",
		 at("sa/ca.crt", p));
	assert_string_equal(err.msg, want);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubectl_data_fields),
		cmocka_unit_test(test_named_context),
		cmocka_unit_test(test_file_references),
		cmocka_unit_test(test_relative_kubeconfig_path),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_fifo_and_bounds),
		cmocka_unit_test(test_in_cluster),
		cmocka_unit_test(test_read_token),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
