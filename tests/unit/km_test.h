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

#endif
