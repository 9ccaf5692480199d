/*
 * km_arena: what it hands out stays intact and aligned across chunks, big
 * one-offs do not waste the current chunk, a reset keeps one small chunk,
 * and memory a big call needed goes back to the system when the arena
 * lets it go (the worker arenas of the gRPC server serve one call after
 * another: a hostile request must not leave the daemon larger for good).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_arena.h"

/* The resident set of this process in KiB, from /proc/self/status. */
static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	assert_non_null(f);
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void test_alignment_and_contents(void **state)
{
	struct km_arena a;
	unsigned char *p[4000];

	(void)state;
	km_arena_init(&a, 1024);
	/* Sizes that cross many chunk boundaries, each filled with its own
	 * byte: nothing handed out overlaps anything else. */
	for (size_t i = 0; i < 4000; i++) {
		size_t n = 1 + (i * 37) % 700;

		p[i] = km_arena_alloc(&a, n);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % _Alignof(max_align_t), 0);
		memset(p[i], (int)(i & 0xff), n);
	}
	for (size_t i = 0; i < 4000; i++) {
		size_t n = 1 + (i * 37) % 700;

		for (size_t k = 0; k < n; k++)
			assert_int_equal(p[i][k], i & 0xff);
	}
	km_arena_free(&a);
	assert_null(a.head);
}

static void test_big_one_off_keeps_current_chunk(void **state)
{
	struct km_arena a;
	char *small, *big, *after;

	(void)state;
	km_arena_init(&a, 4096);
	small = km_arena_alloc(&a, 16);
	big = km_arena_alloc(&a, 1 << 20);
	after = km_arena_alloc(&a, 16);
	assert_non_null(small);
	assert_non_null(big);
	assert_non_null(after);
	memset(big, 1, 1 << 20);
	/* The small allocations share the first chunk (sizes are rounded
	 * up to sizeof(max_align_t)). */
	assert_ptr_equal(after, small + sizeof(max_align_t));
	km_arena_free(&a);
}

static void test_reset_reuses_a_small_chunk(void **state)
{
	struct km_arena a;
	void *first, *again;

	(void)state;
	km_arena_init(&a, 4096);
	first = km_arena_alloc(&a, 100);
	km_arena_reset(&a);
	again = km_arena_alloc(&a, 100);
	assert_ptr_equal(first, again);
	assert_int_equal(a.used, (100 + sizeof(max_align_t) - 1) /
					 sizeof(max_align_t) *
					 sizeof(max_align_t));

	/* After a big call the arena starts small again. */
	for (int i = 0; i < 10000; i++)
		assert_non_null(km_arena_alloc(&a, 1000));
	km_arena_reset(&a);
	assert_int_equal(a.used, 0);
	assert_non_null(km_arena_alloc(&a, 100));
	km_arena_free(&a);
}

static void test_overflowing_sizes_fail(void **state)
{
	struct km_arena a;

	(void)state;
	km_arena_init(&a, 4096);
	assert_null(km_arena_alloc(&a, SIZE_MAX - 4));
	assert_null(km_arena_calloc(&a, SIZE_MAX / 2, 4));
	assert_non_null(km_arena_calloc(&a, 0, 4));
	km_arena_free(&a);
}

/* 96 MiB handed out in 1 KiB pieces, with small long-lived mallocs of
 * someone else's in between (as a gRPC worker has: the core allocates
 * while a handler runs). After the reset the process must be about as
 * large as before: the arena's memory went back to the system, it did not
 * stay behind in malloc's heap pinned by the small blocks. */
static void test_big_call_memory_returns(void **state)
{
	enum { PIECES = 96 * 1024, PIN_EVERY = 16 };
	void **pins = calloc(PIECES / PIN_EVERY, sizeof *pins);
	struct km_arena a;
	long before, peak, after;

	(void)state;
	assert_non_null(pins);
	km_arena_init(&a, 16384);
	assert_non_null(km_arena_alloc(&a, 1)); /* the kept chunk */
	km_arena_reset(&a);
	before = rss_kib();
	for (size_t i = 0; i < PIECES; i++) {
		char *p = km_arena_alloc(&a, 1024);

		assert_non_null(p);
		memset(p, 'x', 1024);
		if (i % PIN_EVERY == 0) {
			pins[i / PIN_EVERY] = malloc(24);
			assert_non_null(pins[i / PIN_EVERY]);
		}
	}
	peak = rss_kib();
	km_arena_reset(&a);
	after = rss_kib();
	print_message("RSS KiB: before %ld, peak %ld, after reset %ld\n",
		      before, peak, after);
	assert_true(peak - before > 80 * 1024);
	assert_true(after - before < 16 * 1024);
	for (size_t i = 0; i < PIECES / PIN_EVERY; i++)
		free(pins[i]);
	free(pins);
	km_arena_free(&a);
}

/* A rewind keeps every chunk and hands them out again before mapping a
 * new one: the second "page" of the same size touches no new memory (its
 * pieces are where the first page's were); a reset then gives it back. */
static void test_rewind_reuses_every_chunk(void **state)
{
	enum { PIECES = 16 * 1024 };
	struct km_arena a;
	char *first[2], *last[2];
	long peak, again, after;

	(void)state;
	km_arena_init(&a, 128 << 10);
	for (int page = 0; page < 2; page++) {
		for (size_t i = 0; i < PIECES; i++) {
			char *p = km_arena_alloc(&a, 1024);

			assert_non_null(p);
			memset(p, 'x', 1024);
			if (i == 0)
				first[page] = p;
			last[page] = p;
		}
		if (page == 0) {
			peak = rss_kib();
			km_arena_rewind(&a);
			assert_int_equal(a.used, 0);
		}
	}
	again = rss_kib();
	assert_ptr_equal(first[0], first[1]);
	assert_ptr_equal(last[0], last[1]);
	assert_true(again - peak < 1024); /* no second 16 MiB */
	km_arena_reset(&a);
	after = rss_kib();
	print_message("RSS KiB: page 1 %ld, page 2 %ld, after reset %ld\n",
		      peak, again, after);
	assert_true(again - after > 12 * 1024);
	km_arena_free(&a);
}

/* protobuf-c through the arena: unpacked messages need no free. */
static void test_protobuf_allocator(void **state)
{
	struct km_arena a;
	ProtobufCAllocator pa;
	char *p;

	(void)state;
	km_arena_init(&a, 256);
	km_arena_protobuf_allocator(&a, &pa);
	p = pa.alloc(pa.allocator_data, 1000);
	assert_non_null(p);
	memset(p, 0, 1000);
	pa.free(pa.allocator_data, p); /* a no-op: the arena owns it */
	assert_true(a.used >= 1000);
	km_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alignment_and_contents),
		cmocka_unit_test(test_big_one_off_keeps_current_chunk),
		cmocka_unit_test(test_reset_reuses_a_small_chunk),
		cmocka_unit_test(test_overflowing_sizes_fail),
		cmocka_unit_test(test_big_call_memory_returns),
		cmocka_unit_test(test_rewind_reuses_every_chunk),
		cmocka_unit_test(test_protobuf_allocator),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
