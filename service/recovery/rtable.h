/*
 * rtable — the string-keyed hash table km_policy and km_budget keep their
 * entries in (internal to service/recovery).
 *
 * Intrusive and chained: an entry embeds a struct rt_node whose key it
 * owns; the table owns only its bucket array, which doubles when the
 * entries outnumber the buckets. Keys are target names an API server
 * chooses, so the hashes start from a per-table seed (km_hash_seed).
 * Not thread-safe: the owner of the table serialises access.
 */
#ifndef KM_RTABLE_H
#define KM_RTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "km_hash.h"

struct rt_node {
	struct rt_node *next;
	uint64_t hash;
	const char *key; /* owned by the entry */
};

struct rt {
	struct rt_node **b;
	size_t nb, n;
	uint64_t seed;
};

static inline int rt_init(struct rt *t)
{
	t->nb = 64;
	t->n = 0;
	t->seed = km_hash_seed();
	t->b = calloc(t->nb, sizeof *t->b);
	return t->b ? 0 : -1;
}

static inline void rt_fini(struct rt *t)
{
	free(t->b);
	t->b = NULL;
	t->nb = t->n = 0;
}

static inline uint64_t rt_hash(const struct rt *t, const char *key)
{
	return km_hash_str(t->seed, key);
}

static inline struct rt_node *rt_find(const struct rt *t, const char *key)
{
	uint64_t h = rt_hash(t, key);

	for (struct rt_node *n = t->b[km_hash_bucket(h, t->nb)]; n; n = n->next)
		if (n->hash == h && !strcmp(n->key, key))
			return n;
	return NULL;
}

/* Links n (its key set, not in the table). Growing may fail quietly: the
 * table then only gets slower. */
static inline void rt_insert(struct rt *t, struct rt_node *n)
{
	size_t i;

	if (t->n >= t->nb) {
		size_t nb = t->nb * 2;
		struct rt_node **b = calloc(nb, sizeof *b);

		if (b) {
			for (size_t j = 0; j < t->nb; j++)
				for (struct rt_node *e = t->b[j], *nx; e;
				     e = nx) {
					nx = e->next;
					i = km_hash_bucket(e->hash, nb);
					e->next = b[i];
					b[i] = e;
				}
			free(t->b);
			t->b = b;
			t->nb = nb;
		}
	}
	n->hash = rt_hash(t, n->key);
	i = km_hash_bucket(n->hash, t->nb);
	n->next = t->b[i];
	t->b[i] = n;
	t->n++;
}

static inline void rt_remove(struct rt *t, struct rt_node *n)
{
	struct rt_node **p = &t->b[km_hash_bucket(n->hash, t->nb)];

	while (*p && *p != n)
		p = &(*p)->next;
	if (*p) {
		*p = n->next;
		t->n--;
	}
}

#endif
