/*
 * What probes created through the API may touch (km_probe.h): networks as
 * CIDR lists (deny wins, IPv4-mapped addresses judged as IPv4, the
 * default keeping link-local and metadata addresses out), exec and file
 * probes only when allowed, file paths only under the prefixes (".."
 * cannot climb out), hosts in every form name resolution reads as an
 * address; and which files will do as a CA bundle (a FIFO is refused
 * without being opened for good).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "km_probe.h"
#include "km_test.h"

static struct sockaddr_storage addr(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, text, &v4->sin_addr) == 1)
		v4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1)
		v6->sin6_family = AF_INET6;
	else
		fail_msg("not an address: %s", text);
	return ss;
}

/* pol's verdict on an address; why receives the rule. */
static int judge(const struct km_probe_policy *pol, const char *text, char *why,
		 size_t n)
{
	struct sockaddr_storage ss = addr(text);

	if (why)
		why[0] = '\0';
	return km_probe_policy_addr(pol, (struct sockaddr *)&ss, why, n);
}

static void test_cidr_parse(void **state)
{
	struct km_cidr c;
	char buf[64];

	(void)state;
	assert_null(km_cidr_parse("10.0.0.0/8", &c));
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.bits, 8);
	km_cidr_format(&c, buf, sizeof buf);
	assert_string_equal(buf, "10.0.0.0/8");
	assert_null(km_cidr_parse("fd00:ec2::254/128", &c));
	assert_int_equal(c.family, AF_INET6);
	km_cidr_format(&c, buf, sizeof buf);
	assert_string_equal(buf, "fd00:ec2::254/128");
	/* An address alone is a network of one. */
	assert_null(km_cidr_parse("192.0.2.7", &c));
	assert_int_equal(c.bits, 32);
	assert_null(km_cidr_parse("::1", &c));
	assert_int_equal(c.bits, 128);
	assert_null(km_cidr_parse("0.0.0.0/0", &c));
	assert_int_equal(c.bits, 0);

	assert_non_null(strstr(km_cidr_parse("10.0.0.1/8", &c), "bits are "
								"set"));
	assert_non_null(strstr(km_cidr_parse("10.0.0.0/33", &c), "0 to 32"));
	assert_non_null(strstr(km_cidr_parse("::/129", &c), "0 to 128"));
	assert_non_null(strstr(km_cidr_parse("10.0.0.0/", &c), "prefix "
							       "length"));
	assert_non_null(strstr(km_cidr_parse("10.0.0.0/8x", &c), "prefix"));
	assert_non_null(strstr(km_cidr_parse("10.0.0.0/-1", &c), "prefix"));
	assert_non_null(km_cidr_parse("example.com/8", &c));
	assert_non_null(km_cidr_parse("", &c));
	assert_non_null(km_cidr_parse("/8", &c));
	assert_non_null(km_cidr_parse("10.1/8", &c)); /* inet_pton only */
}

static void test_default_networks(void **state)
{
	struct km_probe_policy pol;
	char why[256];

	(void)state;
	km_probe_policy_defaults(&pol);
	assert_false(pol.allow_exec);
	assert_false(pol.allow_file);
	assert_int_equal(pol.n_file_prefixes, 0);
	/* Metadata services and link-local: out. */
	assert_int_equal(judge(&pol, "169.254.169.254", why, sizeof why),
			 KM_EPERM);
	assert_string_equal(why, "169.254.169.254 is in 169.254.0.0/16, "
				 "denied by api.probeNetworks");
	assert_int_equal(judge(&pol, "169.254.0.1", NULL, 0), KM_EPERM);
	assert_int_equal(judge(&pol, "100.100.100.200", why, sizeof why),
			 KM_EPERM);
	assert_non_null(strstr(why, "100.100.100.200/32"));
	assert_int_equal(judge(&pol, "fd00:ec2::254", why, sizeof why),
			 KM_EPERM);
	assert_non_null(strstr(why, "fd00:ec2::254/128"));
	assert_int_equal(judge(&pol, "fe80::1", why, sizeof why), KM_EPERM);
	assert_non_null(strstr(why, "fe80::/10"));
	assert_int_equal(judge(&pol, "febf:ffff::1", NULL, 0), KM_EPERM);
	/* An IPv4-mapped IPv6 address goes where its IPv4 address does. */
	assert_int_equal(judge(&pol, "::ffff:169.254.169.254", why, sizeof why),
			 KM_EPERM);
	assert_string_equal(why, "169.254.169.254 is in 169.254.0.0/16, "
				 "denied by api.probeNetworks");
	/* Everything else is in: loopback (the tests' targets), private
	 * networks, the neighbours of the denied ranges. */
	assert_int_equal(judge(&pol, "127.0.0.1", NULL, 0), 0);
	assert_int_equal(judge(&pol, "::1", NULL, 0), 0);
	assert_int_equal(judge(&pol, "10.1.2.3", NULL, 0), 0);
	assert_int_equal(judge(&pol, "169.255.0.1", NULL, 0), 0);
	assert_int_equal(judge(&pol, "100.100.100.201", NULL, 0), 0);
	assert_int_equal(judge(&pol, "fec0::1", NULL, 0), 0);
	assert_int_equal(judge(&pol, "fd00:ec2::253", NULL, 0), 0);
	assert_int_equal(judge(&pol, "2001:db8::1", NULL, 0), 0);
}

static void test_allow_and_deny(void **state)
{
	struct km_cidr allow[2], deny[1];
	struct km_probe_policy pol = {.allow = allow,
				      .n_allow = 2,
				      .deny = deny,
				      .n_deny = 1};
	char why[256];

	(void)state;
	assert_null(km_cidr_parse("10.0.0.0/8", &allow[0]));
	assert_null(km_cidr_parse("fd00::/8", &allow[1]));
	assert_null(km_cidr_parse("10.9.0.0/16", &deny[0]));
	assert_int_equal(judge(&pol, "10.1.2.3", NULL, 0), 0);
	assert_int_equal(judge(&pol, "fd12::1", NULL, 0), 0);
	/* Deny wins over allow. */
	assert_int_equal(judge(&pol, "10.9.1.1", why, sizeof why), KM_EPERM);
	assert_string_equal(why, "10.9.1.1 is in 10.9.0.0/16, denied by "
				 "api.probeNetworks");
	/* Not in an allowed network: out, loopback too. */
	assert_int_equal(judge(&pol, "127.0.0.1", why, sizeof why), KM_EPERM);
	assert_string_equal(why, "127.0.0.1 is in no network "
				 "api.probeNetworks.allow names");
	assert_int_equal(judge(&pol, "::1", NULL, 0), KM_EPERM);
	assert_int_equal(judge(&pol, "11.0.0.1", NULL, 0), KM_EPERM);
	/* Odd prefix lengths. */
	assert_null(km_cidr_parse("192.168.4.0/22", &allow[0]));
	assert_int_equal(judge(&pol, "192.168.7.255", NULL, 0), 0);
	assert_int_equal(judge(&pol, "192.168.8.0", NULL, 0), KM_EPERM);
	assert_int_equal(judge(&pol, "192.168.3.255", NULL, 0), KM_EPERM);
	/* Nothing allowed at all. */
	pol.n_allow = 0;
	assert_int_equal(judge(&pol, "192.168.4.1", NULL, 0), KM_EPERM);
}

static void test_policy_copy(void **state)
{
	static const char *const prefixes[] = {"/data", "/srv/beats"};
	struct km_probe_policy src, dst;
	struct km_arena a;

	(void)state;
	km_probe_policy_defaults(&src);
	src.allow_file = true;
	src.file_prefixes = prefixes;
	src.n_file_prefixes = 2;
	km_arena_init(&a, 0);
	assert_int_equal(km_probe_policy_copy(&a, &src, &dst), 0);
	assert_true(dst.allow_file);
	assert_int_equal(dst.n_file_prefixes, 2);
	assert_ptr_not_equal(dst.file_prefixes, src.file_prefixes);
	assert_string_equal(dst.file_prefixes[1], "/srv/beats");
	assert_ptr_not_equal(dst.deny, src.deny);
	assert_int_equal(dst.n_deny, src.n_deny);
	assert_memory_equal(dst.deny, src.deny, src.n_deny * sizeof *src.deny);
	assert_int_equal(judge(&dst, "169.254.169.254", NULL, 0), KM_EPERM);
	km_arena_free(&a);
}

static void test_paths(void **state)
{
	char out[64];

	(void)state;
	assert_true(km_path_normalize("/a/./b//c/../d/", out, sizeof out));
	assert_string_equal(out, "/a/b/d");
	assert_true(km_path_normalize("/", out, sizeof out));
	assert_string_equal(out, "/");
	assert_true(km_path_normalize("/a/..", out, sizeof out));
	assert_string_equal(out, "/");
	assert_true(km_path_normalize("//x/ab/..", out, sizeof out));
	assert_string_equal(out, "/x");
	assert_false(km_path_normalize("/..", out, sizeof out));
	assert_false(km_path_normalize("/a/../../etc", out, sizeof out));
	assert_false(km_path_normalize("a/b", out, sizeof out));
	assert_false(km_path_normalize("", out, sizeof out));
	assert_false(km_path_normalize("/0123456789/0123456789", out, 16));

	assert_true(km_path_under("/data", "/data"));
	assert_true(km_path_under("/data/x/y", "/data"));
	assert_false(km_path_under("/database", "/data"));
	assert_false(km_path_under("/dat", "/data"));
	assert_true(km_path_under("/anything", "/"));
}

/* km_probe_check_policy on p: KM_EPERM with a message holding want, or 0
 * when want is NULL. */
static void expect_policy(const struct km_probe *p,
			  const struct km_probe_policy *pol, const char *want)
{
	struct km_error err = {0};
	int rc = km_probe_check_policy(p, pol, &err);

	if (!want) {
		if (rc)
			fprintf(stderr, "refused: %s\n", err.msg);
		assert_int_equal(rc, 0);
		return;
	}
	if (rc != KM_EPERM || !strstr(err.msg, want))
		fprintf(stderr, "rc %d, message \"%s\", want \"%s\"\n", rc,
			err.msg, want);
	assert_int_equal(rc, KM_EPERM);
	assert_int_equal(err.code, KM_EPERM);
	assert_non_null(strstr(err.msg, want));
}

static void test_exec_and_file_rules(void **state)
{
	static const char *argv[] = {"/bin/true"};
	static const char *const prefixes[] = {"/data", "/srv/beats"};
	struct km_probe_policy pol;
	struct km_probe exec = {.type = KM_PROBE_EXEC, .argv = argv, .argc = 1};
	struct km_probe file = {.type = KM_PROBE_FILE, .path = "/data/beat"};

	(void)state;
	km_probe_policy_defaults(&pol);
	expect_policy(&exec, &pol,
		      "probe.exec: exec probes through the API "
		      "are off; declare the probe in the config "
		      "file, or set api.allowExec: true there");
	expect_policy(&file, &pol, "set api.allowFile: true");
	pol.allow_exec = true;
	expect_policy(&exec, &pol, NULL);
	expect_policy(&file, &pol, "api.allowFile");
	pol.allow_file = true;
	/* Allowed, but no directory is open. */
	expect_policy(&file, &pol,
		      "probe.file.path: no directory is open to "
		      "file probes through the API; list some in "
		      "api.filePathPrefixes");
	pol.file_prefixes = prefixes;
	pol.n_file_prefixes = 2;
	expect_policy(&file, &pol, NULL);
	file.path = "/srv/beats/./x//y";
	expect_policy(&file, &pol, NULL);
	file.path = "/srv/beats";
	expect_policy(&file, &pol, NULL);
	file.path = "/data/../etc/shadow";
	expect_policy(&file, &pol,
		      "probe.file.path: \"/data/../etc/shadow\" "
		      "is not under a directory of "
		      "api.filePathPrefixes");
	file.path = "/database/x";
	expect_policy(&file, &pol, "is not under");
	file.path = "/srv/beats/../../data/x"; /* climbs back in: fine */
	expect_policy(&file, &pol, NULL);
	file.path = "/../data/x";
	expect_policy(&file, &pol, "climbs above");
	/* Network probes are not the exec or file rules' business. */
	pol.allow_exec = pol.allow_file = false;
	file.type = KM_PROBE_TCP;
	file.host = "127.0.0.1";
	file.port = 80;
	expect_policy(&file, &pol, NULL);
}

static void test_network_hosts(void **state)
{
	static const struct {
		enum km_probe_type type;
		const char *host, *want;
	} cases[] = {
		{KM_PROBE_HTTP, "169.254.169.254",
		 "probe.http_get.host: 169.254.169.254 is in 169.254.0.0/16, "
		 "denied by api.probeNetworks"},
		{KM_PROBE_TCP, "169.254.169.254", "probe.tcp_socket.host: "},
		{KM_PROBE_GRPC, "169.254.169.254", "probe.grpc.host: "},
		/* The forms name resolution reads as an IPv4 address. */
		{KM_PROBE_HTTP, "2852039166", "169.254.169.254 is in"},
		{KM_PROBE_HTTP, "0xa9.0xfe.0xa9.0xfe", "169.254.169.254 is in"},
		{KM_PROBE_HTTP, "169.254.43518", "169.254.169.254 is in"},
		{KM_PROBE_TCP, "0251.0376.0251.0376", "169.254.169.254 is in"},
		/* IPv6: bare, bracketed, with a zone, IPv4-mapped. */
		{KM_PROBE_HTTP, "fe80::1", "fe80::1 is in fe80::/10"},
		{KM_PROBE_GRPC, "[fe80::1]", "fe80::/10"},
		{KM_PROBE_TCP, "fe80::1%eth0", "fe80::/10"},
		{KM_PROBE_GRPC, "[::ffff:169.254.169.254]", "169.254.0.0/16"},
		{KM_PROBE_HTTP, "100.100.100.200", "100.100.100.200/32"},
		{KM_PROBE_HTTP, "fd00:ec2::254", "fd00:ec2::254/128"},
		/* Allowed: loopback, names (judged when resolved). */
		{KM_PROBE_HTTP, "127.0.0.1", NULL},
		{KM_PROBE_TCP, "::1", NULL},
		{KM_PROBE_GRPC, "[::1]", NULL},
		{KM_PROBE_HTTP, "metadata.google.internal", NULL},
		{KM_PROBE_HTTP, "localhost", NULL},
	};
	struct km_probe_policy pol;

	(void)state;
	km_probe_policy_defaults(&pol);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct km_probe p = {.type = cases[i].type,
				     .host = cases[i].host,
				     .port = 80};

		expect_policy(&p, &pol, cases[i].want);
	}
}

/* ---- CA files ------------------------------------------------------------ */

static const char pem[] = "-----BEGIN CERTIFICATE-----\n"
			  "MIIBszCCAVmgAwIBAgIUJ3Q=\n"
			  "-----END CERTIFICATE-----\n";

static char *write_tmp(const char *dir, const char *name, const void *data,
		       size_t len)
{
	char *path;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

/* km_ca_file_read refuses path with code and a message holding want. */
static void expect_ca_refused(const char *path, int code, const char *want)
{
	struct km_error err = {0};
	char *buf = (char *)1;
	size_t len = 1;
	int rc;

	rc = km_ca_file_read(path, &buf, &len, NULL, &err);
	if (rc != code || !strstr(err.msg, want))
		fprintf(stderr, "rc %d: \"%s\" (want %d, \"%s\")\n", rc,
			err.msg, code, want);
	assert_int_equal(rc, code);
	assert_non_null(strstr(err.msg, want));
	assert_null(buf);
	assert_int_equal(len, 0);
}

static void test_ca_files(void **state)
{
	char *dir = km_test_tmpdir(), *good, *fifo, *big, *der, *missing;
	struct km_error err = {0};
	struct stat st;
	char *buf;
	size_t len;
	int fd;

	(void)state;
	assert_non_null(dir);
	good = write_tmp(dir, "ca.pem", pem, sizeof pem - 1);
	der = write_tmp(dir, "ca.der", "\x30\x82\x01\xb3\x00\x01", 6);
	assert_true(asprintf(&fifo, "%s/fifo", dir) > 0);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_true(asprintf(&big, "%s/big.pem", dir) > 0);
	assert_true(asprintf(&missing, "%s/missing.pem", dir) > 0);
	fd = open(big, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pem, sizeof pem - 1),
			 (ssize_t)sizeof pem - 1);
	assert_int_equal(ftruncate(fd, KM_CA_FILE_MAX + 1), 0);
	close(fd);

	assert_int_equal(km_ca_file_read(good, &buf, &len, &st, &err), 0);
	assert_int_equal(len, sizeof pem - 1);
	assert_string_equal(buf, pem);
	assert_true(S_ISREG(st.st_mode));
	free(buf);

	/* A FIFO is refused at once: nothing waits for a writer (the alarm
	 * ends the test if something does). */
	alarm(10);
	expect_ca_refused(fifo, KM_EINVAL, "fifo: a FIFO, not a regular file");
	alarm(0);
	expect_ca_refused(dir, KM_EINVAL, "a directory, not a regular file");
	expect_ca_refused("/dev/null", KM_EINVAL,
			  "/dev/null: a character device");
	expect_ca_refused(big, KM_EINVAL,
			  "1048577 bytes, more than a CA bundle's limit of "
			  "1048576 (1 MiB)");
	expect_ca_refused(der, KM_EINVAL, "ca.der: holds no PEM certificate");
	expect_ca_refused(missing, KM_ENOTFOUND,
			  "missing.pem: No such file or directory");

	/* As a probe's field, in either vocabulary; no ca_file: nothing to
	 * check. */
	{
		struct km_probe p = {.type = KM_PROBE_HTTP,
				     .https = true,
				     .tls_verify = true,
				     .ca_file = fifo};
		struct km_field_ctx api = {KM_FIELDS_API, "probe"};
		struct km_field_ctx yaml = {KM_FIELDS_YAML, "probes[2]"};
		char want[600];

		assert_int_equal(km_probe_check_ca_file(&p, &api, &err),
				 KM_EINVAL);
		snprintf(want, sizeof want,
			 "probe.http_get.ca_file: %s: a FIFO, not a regular "
			 "file",
			 fifo);
		assert_string_equal(err.msg, want);
		p.ca_file = missing;
		assert_int_equal(km_probe_check_ca_file(&p, &yaml, &err),
				 KM_EINVAL);
		assert_int_equal(err.code, KM_EINVAL);
		assert_int_equal(
			strncmp(err.msg, "probes[2].httpGet.caFile: ", 26), 0);
		p.ca_file = good;
		assert_int_equal(km_probe_check_ca_file(&p, &api, &err), 0);
		p.ca_file = NULL;
		assert_int_equal(km_probe_check_ca_file(&p, &api, &err), 0);
	}
	km_test_rmrf(dir);
	free(good);
	free(der);
	free(fifo);
	free(big);
	free(missing);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_default_networks),
		cmocka_unit_test(test_allow_and_deny),
		cmocka_unit_test(test_policy_copy),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_exec_and_file_rules),
		cmocka_unit_test(test_network_hosts),
		cmocka_unit_test(test_ca_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
