/*
 * libFuzzer target: km_selector_parse and km_selector_matches on arbitrary
 * bytes (up to the first NUL, as a C string arrives). An accepted selector
 * is matched against a few label sets; a refused one must leave KM_EINVAL
 * and a message that quotes the selector.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "km_probe.h"

static const struct km_kv labels[] = {
	{"team", "shop"}, {"tier", "web"},
	{"a", ""},        {"app.kubernetes.io/name", "cart"},
	{"in", "notin"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_selector *sel = NULL;
	struct km_error err = {0};
	struct km_arena a;
	char *s = malloc(size + 1);
	int rc;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	km_arena_init(&a, 0);
	rc = km_selector_parse(s, &a, &sel, &err);
	if (rc == 0) {
		bool all, none;

		CHECK(sel != NULL);
		all = km_selector_matches(sel, labels,
					  sizeof labels / sizeof labels[0]);
		none = km_selector_matches(sel, NULL, 0);
		if (km_selector_empty(sel))
			CHECK(all && none);
		for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
			(void)km_selector_matches(sel, &labels[i], 1);
	} else {
		CHECK(rc == KM_EINVAL || rc == KM_ENOMEM);
		CHECK(sel == NULL && err.code == rc);
		CHECK(strnlen(err.msg, sizeof err.msg) < sizeof err.msg);
		if (rc == KM_EINVAL)
			CHECK(strncmp(err.msg, "label selector \"", 16) == 0);
	}
	km_arena_free(&a);
	free(s);
	return 0;
}
