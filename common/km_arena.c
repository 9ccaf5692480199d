#include "km_arena.h"

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct km_arena_chunk {
	struct km_arena_chunk *next;
	size_t size, off;
	max_align_t data[];
};

#define ALIGN (sizeof(max_align_t))

void km_arena_init(struct km_arena *a, size_t chunk_size)
{
	a->head = NULL;
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
		size_t cs = a->chunk_size ? a->chunk_size : 8192;
		if (cs < need)
			cs = need;
		c = malloc(sizeof *c + cs);
		if (!c)
			return NULL;
		c->size = cs;
		c->off = 0;
		/* A big one-off allocation goes behind the current chunk so
		 * the current chunk's free space is not wasted. */
		if (a->head && need > (a->chunk_size ? a->chunk_size : 8192)) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
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

void km_arena_reset(struct km_arena *a)
{
	struct km_arena_chunk *c, *next;

	if (!a->head)
		return;
	if (a->head->size > 4 * (a->chunk_size ? a->chunk_size : 8192)) {
		km_arena_free(a); /* do not hoard one huge chunk */
		return;
	}
	/* Keep the most recent regular chunk, free the others. */
	for (c = a->head->next; c; c = next) {
		next = c->next;
		free(c);
	}
	a->head->next = NULL;
	a->head->off = 0;
	a->used = 0;
}

void km_arena_free(struct km_arena *a)
{
	struct km_arena_chunk *c, *next;

	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
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
