/*
 * km_pbcheck: requests decoded within a memory budget, every string field
 * at every depth valid UTF-8 without NUL and named by its path when it is
 * not, and the UTF-8 rules themselves (Unicode's table 3-7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "km_pbcheck.h"
#include "kubemedic/v1/health.pb-c.h"
#include "kubemedic/v1/probe.pb-c.h"

static struct km_arena arena;

static int setup(void **state)
{
	(void)state;
	km_arena_init(&arena, 4096);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	km_arena_free(&arena);
	return 0;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

static void test_utf8_valid(void **state)
{
	static const char *const ok[] = {
		"",
		"plain ascii",
		"\xc3\xa9",           /* é */
		"\xe2\x82\xac",       /* € */
		"\xf0\x9f\x98\x80",   /* U+1F600 */
		"\xf4\x8f\xbf\xbf",   /* U+10FFFF, the last */
		"\xed\x9f\xbf",       /* U+D7FF, before the surrogates */
		"\xee\x80\x80",       /* U+E000, after them */
		"\xe0\xa0\x80",       /* U+0800, the first 3-byte */
		"\xf0\x90\x80\x80",   /* U+10000, the first 4-byte */
		"\x1b[31mred\x1b[0m", /* control characters are UTF-8 */
		"\xc2\x9b",           /* U+009B too */
	};

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		assert_int_equal(km_utf8_invalid_at(ok[i], strlen(ok[i])),
				 strlen(ok[i]));
}

static void test_utf8_invalid(void **state)
{
	static const struct {
		const char *s;
		size_t at;
	} bad[] = {
		{"\x80", 0},             /* a lone continuation */
		{"ab\xbf", 2},           /* ... after ASCII */
		{"\xc0\x80", 0},         /* overlong NUL */
		{"\xc1\xbf", 0},         /* overlong */
		{"\xe0\x80\x80", 0},     /* overlong 3-byte */
		{"\xe0\x9f\xbf", 0},     /* ... the last one */
		{"\xed\xa0\x80", 0},     /* U+D800, a surrogate */
		{"\xed\xbf\xbf", 0},     /* U+DFFF */
		{"\xf0\x8f\xbf\xbf", 0}, /* overlong 4-byte */
		{"\xf4\x90\x80\x80", 0}, /* U+110000 */
		{"\xf5\x80\x80\x80", 0}, /* no such lead byte */
		{"\xff", 0},             /* nor this */
		{"x\xe2\x82", 1},        /* cut short at the end */
		{"\xe2\x28\xa1", 0},     /* continuation missing */
		{"ok\xc3\xa9\xc3", 4},   /* the good one, then a cut one */
		{"\xf0\x9f\x98\x80\xf0\x9f\x98", 4},
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(km_utf8_invalid_at(bad[i].s, strlen(bad[i].s)),
				 bad[i].at);
}

/* ---- wire helpers --------------------------------------------------------- */

struct buf {
	uint8_t b[4096];
	size_t n;
};

static void put_varint(struct buf *w, uint64_t v)
{
	do {
		uint8_t byte = v & 0x7f;

		v >>= 7;
		w->b[w->n++] = byte | (v ? 0x80 : 0);
	} while (v);
}

/* A length-delimited field: key, length, bytes. */
static void put_bytes(struct buf *w, unsigned field, const void *p, size_t n)
{
	put_varint(w, (uint64_t)field << 3 | 2);
	put_varint(w, n);
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static int decode(const ProtobufCMessageDescriptor *d, const struct buf *w,
		  size_t budget, ProtobufCMessage **m, struct km_error *err)
{
	return km_pb_decode(d, w->b, w->n, &arena, budget, m, err);
}

/* ---- strings -------------------------------------------------------------- */

static void test_nul_is_refused_not_cut(void **state)
{
	struct buf w = {0};
	struct km_error err = {0};
	ProtobufCMessage *m = NULL;

	(void)state;
	/* GetHealthRequest.target = "probe//up-http\0junk": protobuf-c alone
	 * gives "probe//up-http". */
	put_bytes(&w, 1, "probe//up-http\0junk", 19);
	{
		Kubemedic__V1__GetHealthRequest *cut =
			kubemedic__v1__get_health_request__unpack(NULL, w.n,
								  w.b);

		assert_non_null(cut);
		assert_string_equal(cut->target, "probe//up-http");
		kubemedic__v1__get_health_request__free_unpacked(cut, NULL);
	}
	assert_int_equal(decode(&kubemedic__v1__get_health_request__descriptor,
				&w, 0, &m, &err),
			 KM_EINVAL);
	assert_null(m);
	assert_string_equal(
		err.msg, "target: must not contain NUL characters (byte 14)");

	/* The same for grpc.health.v1's service. */
	w.n = 0;
	put_bytes(&w, 1, "\0", 1);
	assert_int_equal(
		decode(&grpc__health__v1__health_check_request__descriptor, &w,
		       0, &m, &err),
		KM_EINVAL);
	assert_string_equal(
		err.msg, "service: must not contain NUL characters (byte 0)");
}

static void test_bad_utf8_named_by_path(void **state)
{
	struct buf label = {0}, entry = {0}, probe = {0}, req = {0};
	struct km_error err = {0};
	ProtobufCMessage *m;

	(void)state;
	/* CreateProbeRequest{probe: Probe{name: "p", labels: [{k: v},
	 * {"\xffx": v}]}} */
	put_bytes(&entry, 1, "k", 1);
	put_bytes(&entry, 2, "v", 1);
	put_bytes(&label, 1, "\xffx", 2);
	put_bytes(&label, 2, "v", 1);
	put_bytes(&probe, 1, "p", 1);
	put_bytes(&probe, 2, entry.b, entry.n); /* labels[0] */
	put_bytes(&probe, 2, label.b, label.n); /* labels[1] */
	put_bytes(&req, 1, probe.b, probe.n);
	assert_int_equal(
		decode(&kubemedic__v1__create_probe_request__descriptor, &req,
		       0, &m, &err),
		KM_EINVAL);
	assert_string_equal(err.msg, "probe.labels[1].key: not valid UTF-8 "
				     "(byte 0 is 0xff)");
}

static void test_repeated_strings_indexed(void **state)
{
	struct buf w = {0};
	struct km_error err = {0};
	ProtobufCMessage *m;

	(void)state;
	put_bytes(&w, 4, "probe//a", 8);
	put_bytes(&w, 2, "team=shop", 9); /* another field in between */
	put_bytes(&w, 4, "probe//b", 8);
	put_bytes(&w, 4, "probe//c\xed\xa0\x80", 11); /* a surrogate */
	assert_int_equal(
		decode(&kubemedic__v1__watch_health_request__descriptor, &w, 0,
		       &m, &err),
		KM_EINVAL);
	assert_string_equal(err.msg,
			    "targets[2]: not valid UTF-8 (byte 8 is 0xed)");
}

static void test_good_request_and_unknown_fields(void **state)
{
	Kubemedic__V1__WatchHealthRequest in =
		KUBEMEDIC__V1__WATCH_HEALTH_REQUEST__INIT;
	const Kubemedic__V1__WatchHealthRequest *out;
	char *targets[] = {"probe//caf\xc3\xa9", "node//w-1"};
	struct km_error err = {0};
	ProtobufCMessage *m;
	struct buf w = {0};

	(void)state;
	in.label_selector = "team=shop";
	in.targets = targets;
	in.n_targets = 2;
	w.n = kubemedic__v1__watch_health_request__pack(&in, w.b);
	/* A field this server does not know, holding a NUL: a newer
	 * client's; nothing reads it, so it is not judged. */
	put_bytes(&w, 99, "x\0y", 3);
	assert_int_equal(
		decode(&kubemedic__v1__watch_health_request__descriptor, &w, 0,
		       &m, &err),
		0);
	out = (const void *)m;
	assert_int_equal(out->n_targets, 2);
	assert_string_equal(out->targets[0], "probe//caf\xc3\xa9");
	assert_string_equal(out->label_selector, "team=shop");
}

static void test_malformed(void **state)
{
	static const uint8_t cut[] = {0x0a, 0x64, 'a', 'b', 'c'};
	struct buf w = {0};
	struct km_error err = {0};
	ProtobufCMessage *m;

	(void)state;
	memcpy(w.b, cut, sizeof cut);
	w.n = sizeof cut;
	assert_int_equal(decode(&kubemedic__v1__get_probe_request__descriptor,
				&w, 0, &m, &err),
			 KM_EINVAL);
	assert_string_equal(err.msg, "malformed request: not a valid "
				     "kubemedic.v1.GetProbeRequest message");
	/* The walk alone refuses what it cannot read, too. */
	assert_int_equal(km_pb_check_strings(
				 &kubemedic__v1__get_probe_request__descriptor,
				 cut, sizeof cut, &err),
			 KM_EINVAL);
	assert_int_equal(km_pb_check_strings(
				 &kubemedic__v1__get_probe_request__descriptor,
				 (const uint8_t *)"\x0b", 1, &err),
			 KM_EINVAL); /* a group */
	/* Field number 0, which protobuf-c keeps as an unknown field (and
	 * would pack into bytes it refuses), and one past 2^29 - 1. */
	memcpy(w.b, "\x80\x00\x00", 3);
	w.n = 3;
	assert_int_equal(decode(&kubemedic__v1__get_probe_request__descriptor,
				&w, 0, &m, &err),
			 KM_EINVAL);
	assert_string_equal(err.msg, "malformed request: 0 is not a field "
				     "number (1 to 536870911)");
	w.n = 0;
	put_varint(&w, (536870912ull << 3) | 0);
	put_varint(&w, 1);
	assert_int_equal(decode(&kubemedic__v1__get_probe_request__descriptor,
				&w, 0, &m, &err),
			 KM_EINVAL);
	w.n = 0;
	put_varint(&w, (536870911ull << 3) | 0); /* the last one: unknown */
	put_varint(&w, 1);
	assert_int_equal(decode(&kubemedic__v1__get_probe_request__descriptor,
				&w, 0, &m, &err),
			 0);
	/* An empty message is a valid one. */
	w.n = 0;
	assert_int_equal(decode(&kubemedic__v1__get_probe_request__descriptor,
				&w, 0, &m, &err),
			 0);
}

/* DescriptorProto.nested_type nests without end: depth is bounded. */
static void nest(struct buf *w, int levels)
{
	struct buf inner = {0};

	if (levels > 1)
		nest(&inner, levels - 1);
	else
		put_bytes(&inner, 1, "\xff", 1); /* name, not UTF-8 */
	put_bytes(w, 3, inner.b, inner.n);
}

static void test_depth(void **state)
{
	struct buf w = {0};
	struct km_error err = {0};

	(void)state;
	nest(&w, 3);
	assert_int_equal(
		km_pb_check_strings(
			&google__protobuf__descriptor_proto__descriptor, w.b,
			w.n, &err),
		KM_EINVAL);
	assert_string_equal(err.msg, "nested_type[0].nested_type[0]."
				     "nested_type[0].name: not valid UTF-8 "
				     "(byte 0 is 0xff)");
	w.n = 0;
	nest(&w, KM_PB_MAX_DEPTH + 2);
	assert_int_equal(
		km_pb_check_strings(
			&google__protobuf__descriptor_proto__descriptor, w.b,
			w.n, &err),
		KM_EINVAL);
	assert_non_null(strstr(err.msg, "messages nested more than 32 deep"));
}

/* ---- the budget ----------------------------------------------------------- */

static void test_budget(void **state)
{
	enum { N = 100000 };
	uint8_t *unknown = malloc(2 * N), *targets = malloc(2 * N);
	struct km_error err = {0};
	ProtobufCMessage *m;
	size_t used;

	(void)state;
	km_arena_reset(&arena);
	assert_non_null(unknown);
	assert_non_null(targets);
	for (size_t i = 0; i < N; i++) {
		unknown[2 * i] = 15 << 3; /* field 15, a varint */
		unknown[2 * i + 1] = 1;
		targets[2 * i] = 4 << 3 | 2; /* targets: "" */
		targets[2 * i + 1] = 0;
	}
	/* 200 KB of unknown fields cost several MB once unpacked. */
	assert_int_equal(
		km_pb_decode(&kubemedic__v1__get_probe_request__descriptor,
			     unknown, 2 * N, &arena, 1 << 20, &m, &err),
		KM_EFULL);
	assert_null(m);
	assert_string_equal(err.msg,
			    "request too large: decoding the "
			    "kubemedic.v1.GetProbeRequest needs more than "
			    "1048576 bytes of memory");
	assert_true(arena.used <= 1 << 20);
	km_arena_reset(&arena);
	assert_int_equal(
		km_pb_decode(&kubemedic__v1__get_probe_request__descriptor,
			     unknown, 2 * N, &arena, 0, &m, &err),
		0);
	used = arena.used;
	assert_true(used > 4 << 20);
	km_arena_reset(&arena);
	/* Known fields: 100,000 empty targets. */
	assert_int_equal(
		km_pb_decode(&kubemedic__v1__watch_health_request__descriptor,
			     targets, 2 * N, &arena, 1 << 20, &m, &err),
		KM_EFULL);
	km_arena_reset(&arena);
	/* Within the budget, the same as without one. */
	assert_int_equal(
		km_pb_decode(&kubemedic__v1__watch_health_request__descriptor,
			     targets, 200, &arena, 1 << 20, &m, &err),
		0);
	assert_int_equal(((Kubemedic__V1__WatchHealthRequest *)m)->n_targets,
			 100);
	free(unknown);
	free(targets);
}

/* Opaque tokens sent back as they are: visible ASCII only. */
static void test_visible_ascii(void **state)
{
	(void)state;
	assert_true(km_visible_ascii(""));
	assert_true(km_visible_ascii("161329"));
	assert_true(km_visible_ascii("eyJ2IjoibWV0YS5rOHMuaW8vdjEi~!"));
	assert_false(km_visible_ascii("a b"));
	assert_false(km_visible_ascii("abc\r\nX-Injected: 1"));
	assert_false(km_visible_ascii("tab\there"));
	assert_false(km_visible_ascii("del\x7f"));
	assert_false(km_visible_ascii("caf\xc3\xa9"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_utf8_invalid),
		cmocka_unit_test(test_visible_ascii),
		cmocka_unit_test(test_nul_is_refused_not_cut),
		cmocka_unit_test(test_bad_utf8_named_by_path),
		cmocka_unit_test(test_repeated_strings_indexed),
		cmocka_unit_test(test_good_request_and_unknown_fields),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_budget),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
