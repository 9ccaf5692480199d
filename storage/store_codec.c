/*
 * Encoding of string lists in blob columns, and small column helpers.
 *
 * A list is stored as its strings each followed by a NUL: "a\0b\0"; a
 * key/value list alternates keys and values. SQLite compares such blobs
 * bytewise, and they need no escaping (no string of ours holds a NUL).
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

int km_store_list_encode_strs(const char *const *v, size_t n, char **out,
			      size_t *len)
{
	size_t total = 0;
	char *p;

	for (size_t i = 0; i < n; i++)
		total += strlen(v[i]) + 1;
	*out = p = malloc(total ? total : 1);
	if (!p)
		return KM_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]) + 1;
		memcpy(p, v[i], l);
		p += l;
	}
	*len = total;
	return 0;
}

int km_store_list_encode_kv(const struct km_kv *kv, size_t n, char **out,
			    size_t *len)
{
	size_t total = 0;
	char *p;

	for (size_t i = 0; i < n; i++)
		total += strlen(kv[i].key) + strlen(kv[i].value) + 2;
	*out = p = malloc(total ? total : 1);
	if (!p)
		return KM_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(kv[i].key) + 1, vl = strlen(kv[i].value) + 1;
		memcpy(p, kv[i].key, kl);
		memcpy(p + kl, kv[i].value, vl);
		p += kl + vl;
	}
	*len = total;
	return 0;
}

/* Counts the strings in a blob; -1 if the last one is not terminated. */
static long count_strs(const char *b, size_t len)
{
	long n = 0;

	if (len && b[len - 1] != '\0')
		return -1;
	for (size_t i = 0; i < len; i++)
		n += b[i] == '\0';
	return n;
}

int km_store_list_decode_strs(struct km_arena *a, const void *blob, size_t len,
			      const char ***out, size_t *n)
{
	long cnt = count_strs(blob, len);
	const char **v;
	char *copy;

	*out = NULL;
	*n = 0;
	if (cnt < 0)
		return KM_ECORRUPT;
	if (cnt == 0)
		return 0;
	v = km_arena_alloc(a, (size_t)cnt * sizeof *v);
	copy = km_arena_memdup(a, blob, len);
	if (!v || !copy)
		return KM_ENOMEM;
	for (long i = 0; i < cnt; i++) {
		v[i] = copy;
		copy += strlen(copy) + 1;
	}
	*out = v;
	*n = (size_t)cnt;
	return 0;
}

int km_store_list_decode_kv(struct km_arena *a, const void *blob, size_t len,
			    struct km_kv **out, size_t *n)
{
	const char **v;
	size_t cnt;
	struct km_kv *kv;
	int rc = km_store_list_decode_strs(a, blob, len, &v, &cnt);

	*out = NULL;
	*n = 0;
	if (rc)
		return rc;
	if (cnt % 2)
		return KM_ECORRUPT;
	if (!cnt)
		return 0;
	kv = km_arena_alloc(a, cnt / 2 * sizeof *kv);
	if (!kv)
		return KM_ENOMEM;
	for (size_t i = 0; i < cnt / 2; i++) {
		kv[i].key = v[2 * i];
		kv[i].value = v[2 * i + 1];
	}
	*out = kv;
	*n = cnt / 2;
	return 0;
}

const char *km_store_col_text(struct km_arena *a, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return km_arena_strndup(a, t ? (const char *)t : "",
				(size_t)sqlite3_column_bytes(st, col));
}
