/*
 * Requests in: protobuf-c's unpack with an allocator that stops at a
 * budget, then a second walk over the packed bytes that judges every
 * string field (see km_pbcheck.h for why on the wire).
 *
 * The walk reads the wire format directly: a key (field number and wire
 * type) as a varint, then a varint, 8 bytes, 4 bytes, or a length and that
 * many bytes. For a length-delimited field the message's descriptor says
 * whether it is a string (judged), a message (walked with its own
 * descriptor, one level deeper) or anything else (skipped). It runs after
 * protobuf-c accepted the same bytes, but does not rely on it: every
 * length is checked against what is left.
 */
#include "km_pbcheck.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* ---- UTF-8 ---------------------------------------------------------------- */

size_t km_utf8_invalid_at(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned c = u[i];
		unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */
		size_t len;

		if (c < 0x80) {
			i++;
			continue;
		}
		/* Unicode 15, table 3-7: the well-formed sequences. */
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
		} else if (c == 0xe0) {
			len = 3;
			lo = 0xa0; /* no overlong forms */
		} else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
			len = 3;
		} else if (c == 0xed) {
			len = 3;
			hi = 0x9f; /* no surrogates */
		} else if (c == 0xf0) {
			len = 4;
			lo = 0x90;
		} else if (c >= 0xf1 && c <= 0xf3) {
			len = 4;
		} else if (c == 0xf4) {
			len = 4;
			hi = 0x8f; /* nothing above U+10FFFF */
		} else {
			return i;
		}
		if (n - i < len || u[i + 1] < lo || u[i + 1] > hi)
			return i;
		for (size_t k = 2; k < len; k++)
			if ((u[i + k] & 0xc0) != 0x80)
				return i;
		i += len;
	}
	return n;
}

bool km_visible_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

void km_utf8_repair(char *s, size_t n)
{
	for (size_t i = 0, bad; i < n; i += bad + 1) {
		bad = km_utf8_invalid_at(s + i, n - i);
		if (bad == n - i)
			break;
		s[i + bad] = '?';
	}
}

/* ---- the wire ------------------------------------------------------------- */

/* A varint at p[*pos..len) (at most 10 bytes); false if cut short. */
static bool read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	uint64_t r = 0;

	for (int i = 0; i < 10; i++) {
		uint8_t b;

		if (*pos >= len)
			return false;
		b = p[(*pos)++];
		r |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

#define PATH_MAX_LEN 256
#define KM_PB_MAX_FIELD 536870911u /* 2^29 - 1 */
#define COUNTED_FIELDS 64 /* occurrences counted for the first 64 fields */

/* Where the walk is: the field at each level, with its index when
 * repeated. The path a message names ("probe.labels[2]") is only written
 * when there is an error to name it in: formatting it at every field cost
 * a GetHealth call more than the rest of the walk. */
struct walk {
	const ProtobufCMessageDescriptor *top;
	struct km_error *err;
	int depth; /* fields in at[] */
	struct {
		const ProtobufCFieldDescriptor *f;
		uint32_t index;
	} at[KM_PB_MAX_DEPTH];
	char path[PATH_MAX_LEN];
};

static int malformed(struct walk *w)
{
	return km_error_set(w->err, KM_EINVAL,
			    "malformed request: not a valid %s message",
			    w->top->name);
}

static const char *path_of(struct walk *w)
{
	size_t len = 0;

	w->path[0] = '\0';
	for (int i = 0; i < w->depth && len < PATH_MAX_LEN - 1; i++) {
		const ProtobufCFieldDescriptor *f = w->at[i].f;
		int n;

		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			n = snprintf(w->path + len, PATH_MAX_LEN - len,
				     "%s%s[%u]", i ? "." : "", f->name,
				     w->at[i].index);
		else
			n = snprintf(w->path + len, PATH_MAX_LEN - len, "%s%s",
				     i ? "." : "", f->name);
		if (n < 0)
			break;
		len = len + (size_t)n < PATH_MAX_LEN ? len + (size_t)n
						     : PATH_MAX_LEN - 1;
	}
	return w->path;
}

static int check_string(struct walk *w, const uint8_t *s, size_t n)
{
	const char *nul = n ? memchr(s, '\0', n) : NULL;
	size_t bad;

	if (nul)
		return km_error_set(w->err, KM_EINVAL,
				    "%s: must not contain NUL characters (byte "
				    "%zu)",
				    path_of(w),
				    (size_t)((const uint8_t *)nul - s));
	bad = km_utf8_invalid_at((const char *)s, n);
	if (bad < n)
		return km_error_set(w->err, KM_EINVAL,
				    "%s: not valid UTF-8 (byte %zu is 0x%02x)",
				    path_of(w), bad, s[bad]);
	return 0;
}

static int walk_message(struct walk *w, const ProtobufCMessageDescriptor *d,
			const uint8_t *p, size_t len, int depth)
{
	uint32_t seen[COUNTED_FIELDS] = {0};
	size_t pos = 0;

	if (depth > KM_PB_MAX_DEPTH)
		return km_error_set(w->err, KM_EINVAL,
				    "%s: messages nested more than %d deep",
				    path_of(w), KM_PB_MAX_DEPTH);
	while (pos < len) {
		const ProtobufCFieldDescriptor *f;
		const uint8_t *payload = NULL;
		uint64_t key, n = 0;
		uint32_t num;
		size_t idx;
		int rc;

		if (!read_varint(p, len, &pos, &key))
			return malformed(w);
		/* protobuf-c reads a field number as 32 bits and keeps 0 and
		 * numbers past 2^29 as unknown fields (and packs them again
		 * into what it refuses); protobuf says they are no field. */
		if (key >> 3 == 0 || key >> 3 > KM_PB_MAX_FIELD)
			return km_error_set(w->err, KM_EINVAL,
					    "malformed request: %llu is not a "
					    "field number (1 to %u)",
					    (unsigned long long)(key >> 3),
					    KM_PB_MAX_FIELD);
		switch (key & 7) {
		case 0: /* varint */
			if (!read_varint(p, len, &pos, &n))
				return malformed(w);
			break;
		case 1: /* 64-bit */
			if (len - pos < 8)
				return malformed(w);
			pos += 8;
			break;
		case 5: /* 32-bit */
			if (len - pos < 4)
				return malformed(w);
			pos += 4;
			break;
		case 2: /* length-delimited */
			if (!read_varint(p, len, &pos, &n) || n > len - pos)
				return malformed(w);
			payload = p + pos;
			pos += (size_t)n;
			break;
		default: /* groups: protobuf-c refuses them too */
			return malformed(w);
		}
		num = (uint32_t)(key >> 3);
		f = protobuf_c_message_descriptor_get_field(d, num);
		if (!f || !payload ||
		    (f->type != PROTOBUF_C_TYPE_STRING &&
		     f->type != PROTOBUF_C_TYPE_MESSAGE))
			continue;
		idx = (size_t)(f - d->fields);
		w->at[depth - 1].f = f;
		w->at[depth - 1].index = idx < COUNTED_FIELDS ? seen[idx]++ : 0;
		w->depth = depth;
		if (f->type == PROTOBUF_C_TYPE_STRING)
			rc = check_string(w, payload, (size_t)n);
		else
			rc = walk_message(w, f->descriptor, payload, (size_t)n,
					  depth + 1);
		w->depth = depth - 1;
		if (rc)
			return rc;
	}
	return 0;
}

int km_pb_check_strings(const ProtobufCMessageDescriptor *d,
			const uint8_t *data, size_t len, struct km_error *err)
{
	struct walk w;

	w.top = d;
	w.err = err;
	w.depth = 0;
	return walk_message(&w, d, data, len, 1);
}

/* ---- unpacking within a budget ------------------------------------------ */

struct budget {
	struct km_arena *a;
	size_t left;
	bool over, oom;
};

static void *budget_alloc(void *data, size_t size)
{
	struct budget *b = data;
	/* What the arena will really use: sizes are rounded up. */
	size_t need = (size + sizeof(max_align_t) - 1) &
		      ~(sizeof(max_align_t) - 1);
	void *p;

	if (need < size || need > b->left) {
		b->over = true;
		return NULL;
	}
	p = km_arena_alloc(b->a, size);
	if (!p) {
		b->oom = true;
		return NULL;
	}
	b->left -= need;
	return p;
}

static void budget_free(void *data, void *p)
{
	(void)data;
	(void)p; /* released with the arena */
}

/* Unpacks within the budget; what went wrong is said with what (a
 * request, a watch event) in front. */
static int unpack(const ProtobufCMessageDescriptor *d, const uint8_t *data,
		  size_t len, struct km_arena *a, size_t budget,
		  const char *too_large, const char *malformed,
		  ProtobufCMessage **out, struct km_error *err)
{
	struct budget b = {.a = a, .left = budget ? budget : SIZE_MAX};
	ProtobufCAllocator alloc = {budget_alloc, budget_free, &b};
	ProtobufCMessage *m;

	*out = NULL;
	m = protobuf_c_message_unpack(d, &alloc, len, len ? data : NULL);
	if (!m) {
		if (b.over)
			return km_error_set(err, KM_EFULL,
					    "%s: decoding the %s needs more "
					    "than %zu bytes of memory",
					    too_large, d->name, budget);
		if (b.oom)
			return km_error_set(err, KM_ENOMEM, "out of memory");
		return km_error_set(err, KM_EINVAL,
				    "%s: not a valid %s message", malformed,
				    d->name);
	}
	*out = m;
	return 0;
}

int km_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *data,
		 size_t len, struct km_arena *a, size_t budget,
		 ProtobufCMessage **out, struct km_error *err)
{
	return unpack(d, data, len, a, budget, "too large", "malformed", out,
		      err);
}

int km_pb_decode(const ProtobufCMessageDescriptor *d, const uint8_t *data,
		 size_t len, struct km_arena *a, size_t budget,
		 ProtobufCMessage **out, struct km_error *err)
{
	ProtobufCMessage *m;
	int rc = unpack(d, data, len, a, budget, "request too large",
			"malformed request", &m, err);

	if (rc)
		return rc;
	rc = km_pb_check_strings(d, data, len, err);
	if (rc)
		return rc;
	*out = m;
	return 0;
}
