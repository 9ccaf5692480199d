/*
 * Prints km_json output for check_json.py: every fixture, then generated
 * strings of random bytes and random timestamps, each as a block
 *
 *   === <name> [utf8=<path>:<hex of the raw bytes>] [ts=<path>:<s>:<ns>]
 *   <compact document>
 *   <pretty document, one or more lines>
 *
 * The checks in the header let the script compare with Python's own UTF-8
 * decoder and date arithmetic. Exits non-zero if km_json fails.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_fixtures.h"
#include "km_json.h"
#include "kubemedic/v1/common.pb-c.h"

/* splitmix64: fixed seed, so every run checks the same documents. */
static uint64_t next(void)
{
	static uint64_t state = 20261126;
	uint64_t z = (state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static void put_hex(const char *s)
{
	for (; *s; s++)
		printf("%02x", (unsigned char)*s);
}

static int emit(const ProtobufCMessage *m)
{
	struct km_error err = {0};

	if (km_json_write(stdout, m, 0, &err) ||
	    km_json_write(stdout, m, KM_JSON_PRETTY, &err)) {
		fprintf(stderr, "json_samples: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* Bytes 1..255, with the ones that start, continue or break UTF-8 and the
 * ones JSON escapes drawn more often than plain ASCII. */
static char random_byte(void)
{
	static const unsigned char hot[] = {
		0x01, 0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x1F, '"',  '\\', 0x7F,
		0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
		0xE0, 0xE1, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF,
	};
	uint64_t r = next();

	if (r % 3 == 0)
		return (char)hot[(r >> 8) % sizeof hot];
	return (char)(1 + (r >> 8) % 255);
}

int main(void)
{
	size_t n;
	const struct km_json_sample *s = km_json_samples(&n);
	char str[48];

	for (size_t i = 0; i < n; i++) {
		printf("=== %s", s[i].name);
		if (s[i].raw_path) {
			printf(" utf8=%s:", s[i].raw_path);
			put_hex(s[i].raw);
		}
		printf("\n");
		if (emit(s[i].msg))
			return 1;
	}

	for (int i = 0; i < 500; i++) {
		Kubemedic__V1__ProbeResult r =
			KUBEMEDIC__V1__PROBE_RESULT__INIT;
		size_t len = 1 + next() % (sizeof str - 1);

		for (size_t j = 0; j < len; j++)
			str[j] = random_byte();
		str[len] = '\0';
		r.message = str;
		printf("=== random_string_%d utf8=message:", i);
		put_hex(str);
		printf("\n");
		if (emit(&r.base))
			return 1;
	}

	for (int i = 0; i < 500; i++) {
		const int64_t lo = -62135596800LL, hi = 253402300799LL;
		Kubemedic__V1__Transition t = KUBEMEDIC__V1__TRANSITION__INIT;
		Google__Protobuf__Timestamp ts =
			GOOGLE__PROTOBUF__TIMESTAMP__INIT;
		int32_t unit = 1;

		ts.seconds = lo + (int64_t)(next() % (uint64_t)(hi - lo + 1));
		if (i < 8) /* the ends of the range */
			ts.seconds = i % 2 ? hi - i / 2 : lo + i / 2;
		/* 0..9 trailing zeros, so every fraction length occurs */
		for (int z = 0; z < i % 10; z++)
			unit *= 10;
		ts.nanos = (int32_t)(next() % 1000000000);
		ts.nanos -= ts.nanos % unit;
		t.sequence = 1 + i;
		t.time = &ts;
		printf("=== random_timestamp_%d ts=time:%" PRId64 ":%" PRId32
		       "\n",
		       i, ts.seconds, ts.nanos);
		if (emit(&t.base))
			return 1;
	}
	return 0;
}
