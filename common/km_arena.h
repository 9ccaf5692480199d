/*
 * km_arena — a bump allocator for things that die together.
 *
 * A gRPC call, a query's result rows, a parsed config: everything allocated
 * for one of them comes from one arena and is released by one km_arena_reset
 * or km_arena_free. Functions that "return into an arena" leave ownership
 * with the arena's owner; nothing they return is freed on its own.
 *
 * Allocation never fails quietly: on out-of-memory it returns NULL and the
 * caller reports KM_ENOMEM. Not thread-safe: an arena belongs to one thread
 * at a time.
 *
 * km_arena_protobuf_allocator() adapts an arena for protobuf-c, so unpacked
 * requests need no protobuf_c_message_free_unpacked().
 *
 * Memory: chunks grow with what the arena holds (up to 1 MiB each), and
 * chunks of 128 KiB or more are mapped and returned to the system when the
 * arena releases them, so a call that once needed megabytes does not leave
 * them in malloc's heap.
 */
#ifndef KM_ARENA_H
#define KM_ARENA_H

#include <stddef.h>
#include <stdint.h>

struct km_arena_chunk;

struct km_arena {
	struct km_arena_chunk *head;  /* current chunk; older ones follow */
	struct km_arena_chunk *spare; /* rewound chunks, reused first */
	size_t chunk_size;            /* default size of a new chunk */
	size_t used;                  /* bytes handed out since reset */
};

/* An arena is usable after zero-initialisation or km_arena_init. */
void km_arena_init(struct km_arena *a, size_t chunk_size);
void *km_arena_alloc(struct km_arena *a, size_t size);
void *km_arena_calloc(struct km_arena *a, size_t n, size_t size);
char *km_arena_strdup(struct km_arena *a, const char *s);
char *km_arena_strndup(struct km_arena *a, const char *s, size_t n);
void *km_arena_memdup(struct km_arena *a, const void *p, size_t n);
/* A T initialised from INIT (a protobuf-c message and its *__INIT macro,
 * say) in the arena; NULL on out-of-memory. */
#define KM_ARENA_NEW(a, T, INIT) \
	((T *)km_arena_memdup((a), &(T)INIT, sizeof(T)))
char *km_arena_printf(struct km_arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Keeps the current chunk for reuse if it is no bigger than four times
 * chunk_size, frees the rest. */
void km_arena_reset(struct km_arena *a);
/* Everything handed out is dead, but every chunk is kept and used again
 * before any new one: for a run of big documents in a row (the pages of
 * one list), whose memory would otherwise be mapped, faulted in page by
 * page and unmapped once each. km_arena_reset or km_arena_free gives the
 * memory back. */
void km_arena_rewind(struct km_arena *a);
void km_arena_free(struct km_arena *a);

struct ProtobufCAllocator;
void km_arena_protobuf_allocator(struct km_arena *a,
				 struct ProtobufCAllocator *out);

#endif
