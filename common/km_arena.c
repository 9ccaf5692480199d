/*
 * The arena: chunks of memory handed out from the front, released
 * together.
 *
 * Why chunks grow and big ones are mapped. A gRPC worker's arena serves
 * one call after another: most need a few KiB, a few (a page of 1,000
 * probes, a hostile request) need megabytes. With fixed 16 KiB chunks from
 * malloc, one such call left thousands of freed chunks in the thread's
 * malloc heap, which glibc keeps: a 4 MiB request of unknown fields left
 * the daemon 160 MB larger for good. So a new chunk is as large as what
 * the arena already holds (up to GROW_MAX), and a chunk of MAP_MIN bytes
 * or more comes from mmap and goes back to the system the moment the
 * arena lets it go, whatever malloc's heuristics would do.
 */
#include "km_arena.h"

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct km_arena_chunk {
	struct km_arena_chunk *next;
	size_t size, off;
	size_t mapped; /* bytes mapped (header included); 0 = malloc */
	max_align_t data[];
};

#define ALIGN (sizeof(max_align_t))
#define DEFAULT_CHUNK 8192
#define GROW_MAX (1u << 20)  /* chunks grow with the arena up to this */
#define MAP_MIN (128u << 10) /* chunks this large come from mmap */

static size_t base_size(const struct km_arena *a)
{
	return a->chunk_size ? a->chunk_size : DEFAULT_CHUNK;
}

/* A chunk with room for at least size bytes; NULL on out-of-memory. */
static struct km_arena_chunk *chunk_new(size_t size)
{
	struct km_arena_chunk *c;
	size_t total = sizeof *c + size;

	if (total < size)
		return NULL;
	if (total >= MAP_MIN) {
		size_t page = (size_t)sysconf(_SC_PAGESIZE);
		size_t len = (total + page - 1) & ~(page - 1);
		void *p;

		if (len < total)
			return NULL;
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		c = p;
		c->mapped = len;
		c->size = len - sizeof *c;
	} else {
		c = malloc(total);
		if (!c)
			return NULL;
		c->mapped = 0;
		c->size = size;
	}
	c->off = 0;
	c->next = NULL;
	return c;
}

static void chunk_free(struct km_arena_chunk *c)
{
	if (c->mapped)
		munmap(c, c->mapped);
	else
		free(c);
}

void km_arena_init(struct km_arena *a, size_t chunk_size)
{
	a->head = NULL;
	a->spare = NULL;
	a->chunk_size = chunk_size;
	a->used = 0;
}

void *km_arena_alloc(struct km_arena *a, size_t size)
{
	struct km_arena_chunk *c = a->head;
	size_t need = (size + ALIGN - 1) & ~(ALIGN - 1);
	void *p;

	if (need < size)
		return NULL;
	if (!c || c->size - c->off < need) {
		size_t cs = base_size(a);

		/* A rewound chunk first, if it is large enough. */
		if (a->spare && a->spare->size >= need) {
			c = a->spare;
			a->spare = c->next;
			c->off = 0;
			c->next = a->head;
			a->head = c;
			goto take;
		}
		/* Grow with the arena: few chunks, however much it holds. */
		if (a->used > cs)
			cs = a->used < GROW_MAX ? a->used : GROW_MAX;
		if (need > cs) {
			/* A big one-off allocation, of its own size. */
			c = chunk_new(need);
			if (!c)
				return NULL;
			/* Behind the current chunk, so the current chunk's
			 * free space is not wasted. */
			if (a->head) {
				c->next = a->head->next;
				a->head->next = c;
			} else {
				a->head = c;
			}
		} else {
			c = chunk_new(cs);
			if (!c)
				return NULL;
			c->next = a->head;
			a->head = c;
		}
	}
take:
	p = (char *)c->data + c->off;
	c->off += need;
	a->used += need;
	return p;
}

void *km_arena_calloc(struct km_arena *a, size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	p = km_arena_alloc(a, n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void *km_arena_memdup(struct km_arena *a, const void *src, size_t n)
{
	void *p = km_arena_alloc(a, n ? n : 1);

	if (p && n)
		memcpy(p, src, n);
	return p;
}

char *km_arena_strndup(struct km_arena *a, const char *s, size_t n)
{
	char *p = km_arena_alloc(a, n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

char *km_arena_strdup(struct km_arena *a, const char *s)
{
	return s ? km_arena_strndup(a, s, strlen(s)) : NULL;
}

char *km_arena_printf(struct km_arena *a, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	p = km_arena_alloc(a, (size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

static void chunks_free(struct km_arena_chunk *c)
{
	struct km_arena_chunk *next;

	for (; c; c = next) {
		next = c->next;
		chunk_free(c);
	}
}

void km_arena_rewind(struct km_arena *a)
{
	struct km_arena_chunk *c = a->head, *next;

	/* The largest first would be best; the order of use is good
	 * enough: the same run of documents asks for the same sizes. */
	for (; c; c = next) {
		next = c->next;
		c->off = 0;
		c->next = a->spare;
		a->spare = c;
	}
	a->head = NULL;
	a->used = 0;
}

void km_arena_reset(struct km_arena *a)
{
	struct km_arena_chunk *c, *next;

	chunks_free(a->spare);
	a->spare = NULL;
	if (!a->head)
		return;
	if (a->head->size > 4 * base_size(a)) {
		km_arena_free(a); /* do not hoard one huge chunk */
		return;
	}
	/* Keep the most recent regular chunk, free the others. */
	for (c = a->head->next; c; c = next) {
		next = c->next;
		chunk_free(c);
	}
	a->head->next = NULL;
	a->head->off = 0;
	a->used = 0;
}

void km_arena_free(struct km_arena *a)
{
	chunks_free(a->head);
	chunks_free(a->spare);
	a->head = a->spare = NULL;
	a->used = 0;
}

static void *pb_alloc(void *data, size_t size)
{
	return km_arena_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
	(void)data;
	(void)p; /* released with the arena */
}

void km_arena_protobuf_allocator(struct km_arena *a,
				 struct ProtobufCAllocator *out)
{
	out->alloc = pb_alloc;
	out->free = pb_free;
	out->allocator_data = a;
}
