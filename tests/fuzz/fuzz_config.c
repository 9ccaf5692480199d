/*
 * libFuzzer target: km_config_load_string and km_config_parse_probes on
 * arbitrary bytes. Beyond "no crash, no leak, no undefined behaviour", it
 * checks the loader's promises: an accepted file yields probes that pass
 * km_probe_validate and are marked KM_SOURCE_CONFIG; a refused one leaves
 * a one-line message and the config untouched.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "km_config.h"
#include "km_probe.h"

static void check_error(int rc, const struct km_error *err)
{
	size_t n = strnlen(err->msg, sizeof err->msg);

	CHECK(rc == KM_EINVAL || rc == KM_ENOMEM);
	CHECK(err->code == rc);
	CHECK(n > 0 && n < sizeof err->msg);
}

static void check_probes(const struct km_probe *p, size_t n)
{
	struct km_field_ctx fc = {KM_FIELDS_YAML, "fuzz"};

	CHECK(n == 0 || p != NULL);
	for (size_t i = 0; i < n; i++) {
		CHECK(p[i].source == KM_SOURCE_CONFIG);
		CHECK(p[i].name && strlen(p[i].name) > 0);
		CHECK(km_probe_validate(&p[i], &fc, NULL) == 0);
		CHECK(p[i].period_ms >= 100 && p[i].timeout_ms > 0);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(p[i].name, p[j].name) != 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_config c;
	struct km_error err = {0};
	struct km_arena a;
	struct km_probe *probes;
	size_t n;
	int rc;

	km_config_defaults(&c);
	rc = km_config_load_string(&c, (const char *)data, size, "fuzz.yaml",
				   &err);
	if (rc == 0) {
		CHECK(c.listen && *c.listen && c.db_path && *c.db_path);
		CHECK(c.threads >= 0 && c.threads <= 1024);
		CHECK(c.max_recv_message_bytes >= 1024 &&
		      c.max_recv_message_bytes <= (1 << 30));
		CHECK(c.retention_interval_ms >= 1000);
		check_probes(c.probes, c.n_probes);
	} else {
		check_error(rc, &err);
		CHECK(c.n_probes == 0 && c.threads == 0);
	}
	km_config_free(&c);

	km_arena_init(&a, 0);
	memset(&err, 0, sizeof err);
	rc = km_config_parse_probes((const char *)data, size, "fuzz.yaml", &a,
				    &probes, &n, &err);
	if (rc == 0)
		check_probes(probes, n);
	else
		check_error(rc, &err);
	km_arena_free(&a);
	return 0;
}
