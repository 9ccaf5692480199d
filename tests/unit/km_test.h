/*
 * Helpers shared by the unit tests.
 */
#ifndef KM_TEST_H
#define KM_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh directory for one test's files, under $KM_TEST_TMPDIR (CTest),
 * else $TEST_TMPDIR (Bazel), else /tmp.
 * The caller frees the path and may remove the directory. */
static inline char *km_test_tmpdir(void)
{
	const char *base = getenv("KM_TEST_TMPDIR");
	char *p;

	if (!base || !*base)
		base = getenv("TEST_TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&p, "%s/km-test-XXXXXX", base) < 0)
		return NULL;
	if (!mkdtemp(p)) {
		free(p);
		return NULL;
	}
	return p;
}

static inline void km_test_rmrf(const char *dir)
{
	char *cmd;

	if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0) {
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
		free(cmd);
	}
}

/* The recorded answers of a real API server (tests/unit/kube_fixtures):
 * CMake passes the source tree's path; Bazel runs the tests in the
 * workspace. */
#ifndef KM_FIXTURES
#define KM_FIXTURES "tests/unit/kube_fixtures"
#endif

/* Fixture name, read whole with a NUL after it (*len its size; the caller
 * frees it); NULL if it cannot be read. */
static inline char *km_test_fixture(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf = NULL;
	long n;

	*len = 0;
	snprintf(path, sizeof path, "%s/%s", KM_FIXTURES, name);
	if (!(f = fopen(path, "rb")))
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
	    fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = '\0';
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

#ifdef cmocka_unit_test /* with cmocka.h included first */
/* km_test_fixture, or the test fails naming the file. */
static inline char *km_test_fixture_or_fail(const char *name, size_t *len)
{
	char *text = km_test_fixture(name, len);

	if (!text)
		fail_msg("%s/%s: cannot read (run from the source tree, or "
			 "build with KM_FIXTURES)",
			 KM_FIXTURES, name);
	return text;
}
#endif

#endif
