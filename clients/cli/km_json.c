/*
 * km_json — protobuf-c message to proto3 canonical JSON.
 *
 * One recursive walk over the descriptors (put_message -> put_field ->
 * put_value) appends to a growable buffer. The buffer's errors are sticky
 * (the first failed allocation marks it and later appends do nothing), so
 * the walk only checks for errors where it can itself fail: well-known types
 * it refuses, out-of-range timestamps, depth. The whole document is built
 * before anything is written, which lets km_json_write promise all or
 * nothing on a stream.
 */
#include "km_json.h"
#include "km_arena.h"

#include <assert.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- output buffer ------------------------------------------------------ */

struct jbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static bool buf_reserve(struct jbuf *b, size_t extra)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (extra < b->cap - b->len)
		return true; /* room for extra bytes and the NUL */
	cap = b->cap ? b->cap : 256;
	while (cap - b->len <= extra) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void buf_put(struct jbuf *b, const char *s, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_puts(struct jbuf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static void buf_putc(struct jbuf *b, char c)
{
	buf_put(b, &c, 1);
}

/* ---- walk context ------------------------------------------------------- */

#define PATH_MAX_LEN 256

struct ctx {
	struct jbuf b;
	bool pretty;
	int depth;          /* object/array nesting, for indentation */
	int msg_depth;      /* message nesting, for KM_JSON_MAX_DEPTH */
	locale_t c_numeric; /* created on the first float, freed at the end */
	struct km_error *err;
	/* The field being printed, for error messages: "target.stateSince". */
	char path[PATH_MAX_LEN];
	size_t path_len;
};

/* Appends ".jsonName" of a field to the path; returns the length to pop to. */
static size_t path_push_field(struct ctx *c, const char *proto_name)
{
	size_t old = c->path_len;
	size_t n = c->path_len;
	bool up = false;

	if (n && n < sizeof c->path - 1)
		c->path[n++] = '.';
	for (const char *p = proto_name; *p && n < sizeof c->path - 1; p++) {
		if (*p == '_') {
			up = true;
			continue;
		}
		c->path[n++] = up && *p >= 'a' && *p <= 'z'
				       ? (char)(*p - 'a' + 'A')
				       : *p;
		up = false;
	}
	c->path[n] = '\0';
	c->path_len = n;
	return old;
}

/* Appends "[i]" to the path; returns the length to pop to. */
static size_t path_push_index(struct ctx *c, size_t i)
{
	size_t old = c->path_len;
	int n;

	n = snprintf(c->path + old, sizeof c->path - old, "[%zu]", i);
	if (n > 0)
		c->path_len = old + (size_t)n < sizeof c->path
				      ? old + (size_t)n
				      : sizeof c->path - 1;
	return old;
}

static void path_pop(struct ctx *c, size_t old)
{
	c->path_len = old;
	c->path[old] = '\0';
}

static int fail(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records KM_EINVAL with the current field path as prefix. */
static int fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	km_error_vset(c->err, KM_EINVAL, fmt, ap);
	va_end(ap);
	if (c->path_len)
		km_error_prefix(c->err, "%s", c->path);
	return KM_EINVAL;
}

static void newline(struct ctx *c)
{
	if (!c->pretty)
		return;
	buf_putc(&c->b, '\n');
	for (int i = 0; i < c->depth; i++)
		buf_put(&c->b, "  ", 2);
}

/* Opens an object or array; elements call sep() before themselves. */
static void open_(struct ctx *c, char bracket)
{
	buf_putc(&c->b, bracket);
	c->depth++;
}

static void sep(struct ctx *c, bool first)
{
	if (!first)
		buf_putc(&c->b, ',');
	newline(c);
}

static void close_(struct ctx *c, char bracket, bool empty)
{
	c->depth--;
	if (!empty)
		newline(c);
	buf_putc(&c->b, bracket);
}

/* ---- names -------------------------------------------------------------- */

/* protoc's ToJsonName: drop each '_' and upper-case the letter after it. */
static void put_json_name(struct ctx *c, const char *proto_name)
{
	bool up = false;

	buf_putc(&c->b, '"');
	for (const char *p = proto_name; *p; p++) {
		if (*p == '_') {
			up = true;
			continue;
		}
		if (up && *p >= 'a' && *p <= 'z')
			buf_putc(&c->b, (char)(*p - 'a' + 'A'));
		else
			buf_putc(&c->b, *p);
		up = false;
	}
	buf_puts(&c->b, c->pretty ? "\": " : "\":");
}

/* protoc's MapEntryName: "http_headers" -> "HttpHeadersEntry". */
static bool is_map_entry_name(const char *field, const char *entry)
{
	bool up = true;

	for (const char *p = field; *p; p++) {
		char ch = *p;

		if (ch == '_') {
			up = true;
			continue;
		}
		if (up && ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		up = false;
		if (*entry++ != ch)
			return false;
	}
	return strcmp(entry, "Entry") == 0;
}

/* ---- strings and bytes -------------------------------------------------- */

/*
 * Length of the well-formed UTF-8 sequence at s (Unicode Table 3-7), or, when
 * it is ill-formed, minus the length of its maximal subpart (at least 1):
 * that many bytes become one U+FFFD.
 */
static int utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xBF;
	int need;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		need = 1;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		need = 2;
		if (s[0] == 0xE0)
			lo = 0xA0; /* no overlong forms */
		else if (s[0] == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		need = 3;
		if (s[0] == 0xF0)
			lo = 0x90;
		else if (s[0] == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
	} else {
		return -1; /* 80..C1, F5..FF never start a sequence */
	}
	for (int i = 1; i <= need; i++) {
		if ((size_t)i >= n || s[i] < lo || s[i] > hi)
			return -i;
		lo = 0x80;
		hi = 0xBF;
	}
	return need + 1;
}

static void put_string(struct ctx *c, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;

	buf_putc(&c->b, '"');
	while (i < n) {
		unsigned char ch = s[i];
		const char *esc = NULL;
		char u[7];
		int len;

		if (ch >= 0x20 && ch != '"' && ch != '\\' && ch < 0x80) {
			i++;
			continue; /* plain ASCII, copied with its run */
		}
		len = ch < 0x80 ? 1 : utf8_seq(s + i, n - i);
		if (len > 1) {
			i += (size_t)len; /* valid UTF-8, copied with its run */
			continue;
		}
		buf_put(&c->b, str + run, i - run);
		switch (ch) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			if (ch < 0x20) {
				memcpy(u, "\\u00", 4);
				u[4] = hex[ch >> 4];
				u[5] = hex[ch & 0xF];
				u[6] = '\0';
				esc = u;
			} else {
				esc = "\xEF\xBF\xBD"; /* U+FFFD */
			}
		}
		buf_puts(&c->b, esc);
		i += len < 0 ? (size_t)-len : 1;
		run = i;
	}
	buf_put(&c->b, str + run, n - run);
	buf_putc(&c->b, '"');
}

static void put_cstring(struct ctx *c, const char *s)
{
	if (!s)
		s = "";
	put_string(c, s, strlen(s));
}

static void put_base64(struct ctx *c, const uint8_t *d, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];

	buf_putc(&c->b, '"');
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		q[0] = tab[v >> 18 & 63];
		q[1] = tab[v >> 12 & 63];
		q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		q[3] = i + 2 < n ? tab[v & 63] : '=';
		buf_put(&c->b, q, 4);
	}
	buf_putc(&c->b, '"');
}

/* ---- numbers ------------------------------------------------------------ */

static void put_fmt(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put_fmt(struct ctx *c, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	assert(n > 0 && (size_t)n < sizeof tmp);
	buf_put(&c->b, tmp, (size_t)n);
}

/*
 * The fewest %g digits that read back as the same float or double, so 0.1
 * prints as 0.1 rather than 0.10000000000000001 (the digits Python's repr
 * picks; at most 9 for a float, 17 for a double). JSON has no NaN or
 * Infinity, so those are strings. Formatting and parsing happen in the "C"
 * locale, so a program that called setlocale() still gets '.' as the decimal
 * point.
 */
static void put_floating(struct ctx *c, double v, bool is_float)
{
	char tmp[40];
	locale_t old;
	int max = is_float ? 9 : 17;

	if (isnan(v)) {
		buf_puts(&c->b, "\"NaN\"");
		return;
	}
	if (isinf(v)) {
		buf_puts(&c->b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
		return;
	}
	if (!c->c_numeric) {
		c->c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
		if (!c->c_numeric) {
			c->b.oom = true; /* reported as KM_ENOMEM at the end */
			return;
		}
	}
	old = uselocale(c->c_numeric);
	for (int prec = 1; prec <= max; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (prec == max || (is_float ? strtof(tmp, NULL) == (float)v
					     : strtod(tmp, NULL) == v))
			break;
	}
	uselocale(old);
	buf_puts(&c->b, tmp);
}

/* ---- well-known types --------------------------------------------------- */

/* Days since 1970-01-01 to a proleptic Gregorian date (Hinnant's
 * civil_from_days), exact for the years Timestamp allows. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	yoe = z - era * 146097;
	yoe = (yoe - yoe / 1460 + yoe / 36524 - yoe / 146096) / 365;
	doy = z - era * 146097 - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* Field number `id` of a well-known type, checked against what we expect. */
static const ProtobufCFieldDescriptor *
wkt_field(const ProtobufCMessageDescriptor *d, unsigned id, ProtobufCType type)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(d, id);

	if (!f || f->type != type || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return f;
}

#define TS_MIN (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TS_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

static int put_timestamp(struct ctx *c, const ProtobufCMessage *m)
{
	const ProtobufCFieldDescriptor *fs, *fn;
	int64_t secs, days, sod, y;
	int32_t nanos;
	unsigned mon, day;

	fs = wkt_field(m->descriptor, 1, PROTOBUF_C_TYPE_INT64);
	fn = wkt_field(m->descriptor, 2, PROTOBUF_C_TYPE_INT32);
	if (!fs || !fn)
		return fail(c,
			    "google.protobuf.Timestamp: unexpected descriptor");
	memcpy(&secs, (const char *)m + fs->offset, sizeof secs);
	memcpy(&nanos, (const char *)m + fn->offset, sizeof nanos);
	if (secs < TS_MIN || secs > TS_MAX)
		return fail(c,
			    "timestamp seconds %" PRId64
			    " out of range 0001-01-01..9999-12-31",
			    secs);
	if (nanos < 0 || nanos > 999999999)
		return fail(c,
			    "timestamp nanos %" PRId32
			    " out of range 0..999999999",
			    nanos);
	days = secs / 86400;
	sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	civil_from_days(days, &y, &mon, &day);
	put_fmt(c, "\"%04" PRId64 "-%02u-%02uT%02u:%02u:%02u", y, mon, day,
		(unsigned)(sod / 3600), (unsigned)(sod / 60 % 60),
		(unsigned)(sod % 60));
	if (nanos == 0)
		;
	else if (nanos % 1000000 == 0)
		put_fmt(c, ".%03" PRId32, nanos / 1000000);
	else if (nanos % 1000 == 0)
		put_fmt(c, ".%06" PRId32, nanos / 1000);
	else
		put_fmt(c, ".%09" PRId32, nanos);
	buf_puts(&c->b, "Z\"");
	return 0;
}

/* Well-known types whose canonical JSON is not their fields' JSON and that
 * this printer does not do (see the header). */
static const char *const unsupported_wkt[] = {
	"google.protobuf.Any",         "google.protobuf.Duration",
	"google.protobuf.FieldMask",   "google.protobuf.Struct",
	"google.protobuf.Value",       "google.protobuf.ListValue",
	"google.protobuf.DoubleValue", "google.protobuf.FloatValue",
	"google.protobuf.Int64Value",  "google.protobuf.UInt64Value",
	"google.protobuf.Int32Value",  "google.protobuf.UInt32Value",
	"google.protobuf.BoolValue",   "google.protobuf.StringValue",
	"google.protobuf.BytesValue",
};

/* ---- fields ------------------------------------------------------------- */

static int put_message(struct ctx *c, const ProtobufCMessage *m);

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM: return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: return 8;
	case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* One value of field f stored at v (an element, for repeated fields). */
static int put_value(struct ctx *c, const ProtobufCFieldDescriptor *f,
		     const void *v)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		put_fmt(c, "%" PRId32, *(const int32_t *)v);
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		put_fmt(c, "%" PRIu32, *(const uint32_t *)v);
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		put_fmt(c, "\"%" PRId64 "\"", *(const int64_t *)v);
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		put_fmt(c, "\"%" PRIu64 "\"", *(const uint64_t *)v);
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		put_floating(c, *(const float *)v, true);
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		put_floating(c, *(const double *)v, false);
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		buf_puts(&c->b,
			 *(const protobuf_c_boolean *)v ? "true" : "false");
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		int32_t n = *(const int32_t *)v;
		const ProtobufCEnumValue *ev;

		if (strcmp(ed->name, "google.protobuf.NullValue") == 0) {
			buf_puts(&c->b, "null");
			return 0;
		}
		ev = protobuf_c_enum_descriptor_get_value(ed, n);
		if (ev)
			put_cstring(c, ev->name);
		else
			put_fmt(c, "%" PRId32, n);
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING:
		put_cstring(c, *(char *const *)v);
		return 0;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *bd = v;

		put_base64(c, bd->data, bd->len);
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)v;

		if (!sub) { /* a set oneof member or a repeated element */
			buf_puts(&c->b, "{}");
			return 0;
		}
		return put_message(c, sub);
	}
	}
	return fail(c, "field type %d unknown", (int)f->type);
}

/*
 * Whether field f of m is printed: the canonical printer's rule of presence.
 * proto3 singular fields are present when not at their default; oneof
 * members when selected; proto2 optional ones as protobuf-c packs them.
 */
static bool is_present(const ProtobufCMessage *m,
		       const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)m;
	const void *v = base + f->offset;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)(base + f->quantifier_offset) > 0;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) ==
		       f->id;
	if (f->label == PROTOBUF_C_LABEL_REQUIRED)
		return true;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
		if (f->type == PROTOBUF_C_TYPE_STRING ||
		    f->type == PROTOBUF_C_TYPE_MESSAGE) {
			const void *p = *(const void *const *)v;

			return p && p != f->default_value;
		}
		return *(const protobuf_c_boolean *)(base +
						     f->quantifier_offset);
	}
	/* PROTOBUF_C_LABEL_NONE: proto3 implicit presence */
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM: return *(const uint32_t *)v != 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: return *(const uint64_t *)v != 0;
	case PROTOBUF_C_TYPE_FLOAT: {
		uint32_t bits; /* -0.0 is not the default */

		memcpy(&bits, v, sizeof bits);
		return bits != 0;
	}
	case PROTOBUF_C_TYPE_DOUBLE: {
		uint64_t bits;

		memcpy(&bits, v, sizeof bits);
		return bits != 0;
	}
	case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)v != 0;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)v;

		return s && *s;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)v)->len > 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(const ProtobufCMessage *const *)v != NULL;
	}
	return false;
}

/* Whether repeated field f of message type parent is a map<K, V>: protoc
 * makes it a nested "<Field>Entry" message with key = 1, value = 2. */
static bool is_map(const ProtobufCMessageDescriptor *parent,
		   const ProtobufCFieldDescriptor *f)
{
	const ProtobufCMessageDescriptor *e = f->descriptor;
	const ProtobufCFieldDescriptor *k, *v;
	size_t plen = strlen(parent->name);

	if (f->label != PROTOBUF_C_LABEL_REPEATED ||
	    f->type != PROTOBUF_C_TYPE_MESSAGE || e->n_fields != 2)
		return false;
	k = &e->fields[0];
	v = &e->fields[1];
	if (k->id != 1 || strcmp(k->name, "key") != 0 ||
	    k->label == PROTOBUF_C_LABEL_REPEATED || v->id != 2 ||
	    strcmp(v->name, "value") != 0 ||
	    v->label == PROTOBUF_C_LABEL_REPEATED)
		return false;
	switch (k->type) {
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_ENUM:
	case PROTOBUF_C_TYPE_MESSAGE:
		return false; /* not a valid map key type */
	default: break;
	}
	return strncmp(e->name, parent->name, plen) == 0 &&
	       e->name[plen] == '.' &&
	       strcmp(e->name + plen + 1, e->short_name) == 0 &&
	       is_map_entry_name(f->name, e->short_name);
}

/* Orders two map keys of key field k; for the last-wins rule. */
static int key_cmp(const ProtobufCFieldDescriptor *k, const void *a,
		   const void *b)
{
	switch (k->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *x = *(char *const *)a, *y = *(char *const *)b;

		return strcmp(x ? x : "", y ? y : "");
	}
	case PROTOBUF_C_TYPE_BOOL:
		return (*(const protobuf_c_boolean *)a != 0) -
		       (*(const protobuf_c_boolean *)b != 0);
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return memcmp(a, b, 4); /* equality is all we need */
	default: return memcmp(a, b, 8);
	}
}

/* Prints a map key as a JSON string: the canonical form of its value. */
static void put_map_key(struct ctx *c, const ProtobufCFieldDescriptor *k,
			const void *v)
{
	switch (k->type) {
	case PROTOBUF_C_TYPE_STRING: put_cstring(c, *(char *const *)v); return;
	case PROTOBUF_C_TYPE_BOOL:
		buf_puts(&c->b, *(const protobuf_c_boolean *)v ? "\"true\""
							       : "\"false\"");
		return;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		put_value(c, k, v); /* quoted already */
		return;
	default:
		buf_putc(&c->b, '"');
		put_value(c, k, v);
		buf_putc(&c->b, '"');
	}
}

static int put_map(struct ctx *c, const ProtobufCFieldDescriptor *f,
		   ProtobufCMessage *const *entries, size_t n)
{
	const ProtobufCMessageDescriptor *e = f->descriptor;
	const ProtobufCFieldDescriptor *k = &e->fields[0], *v = &e->fields[1];
	bool first = true;
	int rc = 0;

	open_(c, '{');
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *ei = (const char *)entries[i];
		bool later = false;
		size_t old;

		if (!ei)
			continue;
		/* A key that comes again later is overridden by it, as when
		 * the message is parsed from the wire; maps are small. */
		for (size_t j = i + 1; j < n && !later; j++)
			later = entries[j] && key_cmp(k, ei + k->offset,
						      (const char *)entries[j] +
							      k->offset) == 0;
		if (later)
			continue;
		sep(c, first);
		first = false;
		put_map_key(c, k, ei + k->offset);
		buf_puts(&c->b, c->pretty ? ": " : ":");
		old = path_push_index(c, i);
		rc = put_value(c, v, ei + v->offset);
		path_pop(c, old);
	}
	close_(c, '}', first);
	return rc;
}

static int put_field(struct ctx *c, const ProtobufCMessage *m,
		     const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)m;
	const char *arr;
	size_t n, sz;
	int rc = 0;

	if (f->label != PROTOBUF_C_LABEL_REPEATED)
		return put_value(c, f, base + f->offset);
	n = *(const size_t *)(base + f->quantifier_offset);
	arr = *(const char *const *)(base + f->offset);
	if (is_map(m->descriptor, f))
		return put_map(c, f, (ProtobufCMessage *const *)arr, n);
	sz = elem_size(f->type);
	open_(c, '[');
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t old = path_push_index(c, i);

		sep(c, i == 0);
		rc = put_value(c, f, arr + i * sz);
		path_pop(c, old);
	}
	close_(c, ']', n == 0);
	return rc;
}

static int put_message(struct ctx *c, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	bool first = true;
	int rc = 0;

	if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
		return fail(c, "not a protobuf-c message");
	if (c->msg_depth >= KM_JSON_MAX_DEPTH)
		return fail(c, "messages nested deeper than %d",
			    KM_JSON_MAX_DEPTH);
	if (strncmp(d->name, "google.protobuf.", 16) == 0) {
		if (strcmp(d->name, "google.protobuf.Timestamp") == 0)
			return put_timestamp(c, m);
		for (size_t i = 0;
		     i < sizeof unsupported_wkt / sizeof *unsupported_wkt; i++)
			if (strcmp(d->name, unsupported_wkt[i]) == 0)
				return fail(c,
					    "%s: JSON mapping not implemented",
					    d->name);
	}
	c->msg_depth++;
	open_(c, '{');
	for (unsigned i = 0; i < d->n_fields && rc == 0; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		size_t old;

		if (!is_present(m, f))
			continue;
		sep(c, first);
		first = false;
		put_json_name(c, f->name);
		old = path_push_field(c, f->name);
		rc = put_field(c, m, f);
		path_pop(c, old);
	}
	close_(c, '}', first);
	c->msg_depth--;
	return rc;
}

/* ---- API ---------------------------------------------------------------- */

int km_json_to_string(const ProtobufCMessage *msg, unsigned flags, char **out,
		      size_t *len, struct km_error *err)
{
	struct ctx c = {.pretty = flags & KM_JSON_PRETTY, .err = err};
	int rc;

	*out = NULL;
	if (len)
		*len = 0;
	if (!msg)
		return km_error_set(err, KM_EINVAL, "no message to print");
	rc = put_message(&c, msg);
	if (c.c_numeric)
		freelocale(c.c_numeric);
	if (rc == 0 && c.b.oom)
		rc = km_error_set(err, KM_ENOMEM,
				  "out of memory printing JSON");
	if (rc == 0 && !c.b.p) /* cannot happen: a message prints "{}" */
		rc = km_error_set(err, KM_EINTERNAL, "empty JSON output");
	if (rc) {
		free(c.b.p);
		return rc;
	}
	*out = c.b.p;
	if (len)
		*len = c.b.len;
	return 0;
}

int km_json_write(FILE *out, const ProtobufCMessage *msg, unsigned flags,
		  struct km_error *err)
{
	char *s;
	size_t n;
	int rc;

	rc = km_json_to_string(msg, flags, &s, &n, err);
	if (rc)
		return rc;
	if (fwrite(s, 1, n, out) != n || putc('\n', out) == EOF ||
	    fflush(out) == EOF)
		rc = km_error_set(err, KM_EIO, "writing JSON: %m");
	free(s);
	return rc;
}

/* ---- text for a terminal ----------------------------------------------- */

/* The code point of the well-formed sequence of len bytes at s. */
static uint32_t utf8_decode(const unsigned char *s, int len)
{
	static const unsigned char lead_mask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
	uint32_t cp = s[0] & lead_mask[len];

	for (int i = 1; i < len; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	return cp;
}

static bool cp_unsafe(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

const char *km_text_safe(const char *str, struct km_arena *a)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t n = strlen((const char *)s), i, o = 0;
	bool clean = true;
	char *out;

	for (i = 0; i < n && clean;) {
		int len = utf8_seq(s + i, n - i);

		if (len < 0 || cp_unsafe(utf8_decode(s + i, len)))
			clean = false;
		else
			i += (size_t)len;
	}
	if (clean)
		return (const char *)s;
	/* At most 6 bytes out ("\u202e") for each byte in. */
	if (n > (SIZE_MAX - 1) / 6)
		return NULL;
	out = km_arena_alloc(a, 6 * n + 1);
	if (!out)
		return NULL;
	for (i = 0; i < n;) {
		int len = utf8_seq(s + i, n - i);
		uint32_t cp;

		if (len < 0) {
			/* Each byte of an ill-formed sequence, visibly. */
			for (int k = 0; k < -len; k++)
				o += (size_t)sprintf(out + o, "\\x%02x",
						     s[i + (size_t)k]);
			i += (size_t)-len;
			continue;
		}
		cp = utf8_decode(s + i, len);
		if (!cp_unsafe(cp)) {
			memcpy(out + o, s + i, (size_t)len);
			o += (size_t)len;
		} else if (cp == '\n' || cp == '\r' || cp == '\t') {
			out[o++] = '\\';
			out[o++] = cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't';
		} else if (cp < 0x80) {
			o += (size_t)sprintf(out + o, "\\x%02x", (unsigned)cp);
		} else {
			o += (size_t)sprintf(out + o, "\\u%04x", (unsigned)cp);
		}
		i += (size_t)len;
	}
	out[o] = '\0';
	return out;
}
