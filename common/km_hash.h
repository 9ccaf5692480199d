/*
 * km_hash — the one hash function of kubemedic: 64-bit FNV-1a.
 *
 * Used where a well-spread, stable (never seeded, the same in every run
 * and on every machine) hash of short keys is wanted: hash tables keyed by
 * names or ids, a probe's first-run offset within its period (stable
 * across restarts), page tokens bound to their query. Not for anything an
 * attacker could exploit by choosing keys that collide: tables that hold
 * caller-chosen keys bound their size instead, or start from a seed of
 * km_hash_seed (the Kubernetes caches: names an API server chooses).
 */
#ifndef KM_HASH_H
#define KM_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#define KM_HASH_INIT 14695981039346656037ULL
#define KM_HASH_PRIME 1099511628211ULL

static inline uint64_t km_hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= KM_HASH_PRIME;
	}
	return h;
}

/* The bytes of a NUL-terminated string; NULL hashes as "". */
static inline uint64_t km_hash_str(uint64_t h, const char *s)
{
	if (s)
		for (; *s; s++) {
			h ^= (unsigned char)*s;
			h *= KM_HASH_PRIME;
		}
	return h;
}

/* A string as one field of a hashed tuple: followed by a byte no UTF-8
 * text holds (0xff), so ("ab", "c") and ("a", "bc") hash apart. */
static inline uint64_t km_hash_field(uint64_t h, const char *s)
{
	h = km_hash_str(h, s) ^ 0xff;
	return h * KM_HASH_PRIME;
}

static inline uint64_t km_hash_i64(uint64_t h, int64_t v)
{
	uint64_t u = (uint64_t)v;
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(u >> (8 * i));
	return km_hash_bytes(h, b, 8);
}

/* The bucket of hash h in a table of n buckets (a power of two). FNV-1a's
 * low bits are its weakest (a multiply carries upward only, so they depend
 * on the low bits of the input alone: 10,000 consecutive ids filled 5,227
 * of 16,384 buckets), so the high half is folded in first (7,715). */
static inline size_t km_hash_bucket(uint64_t h, size_t n)
{
	return (size_t)((h ^ (h >> 32)) & (n - 1));
}

/* A starting value for the hashes of one table, in place of KM_HASH_INIT,
 * that whoever chooses its keys cannot guess: from the kernel, or from the
 * clock if it has no randomness to give yet (then collisions cost time,
 * not correctness). */
static inline uint64_t km_hash_seed(void)
{
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == sizeof seed)
		return seed ^ KM_HASH_INIT;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return km_hash_i64(KM_HASH_INIT, ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

#endif
