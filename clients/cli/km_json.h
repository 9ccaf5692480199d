/*
 * km_json — prints any protobuf-c message as JSON, for the CLI's `-o json`.
 *
 * Generic over ProtobufCMessage: it walks the protobuf-c descriptors only,
 * so every message of the API (and any other protoc-c output) prints without
 * per-message code. The output follows the proto3 canonical JSON mapping
 * (protobuf.dev/programming-guides/proto3/#json), as printed by the
 * reference printers with their default options:
 *
 *  - keys are the lowerCamelCase json_name protoc derives from the field
 *    name ("http_get" -> "httpGet"; protobuf-c 1.4 keeps only the proto
 *    name, and a custom json_name option is therefore not honoured);
 *  - fields come in field-number order; proto3 fields at their default value
 *    (0, "", false, empty bytes, enum 0, empty repeated or map, unset
 *    message) are left out, while a set oneof member, a proto2 field that is
 *    set, and a proto3 `optional` field that is set are printed even when
 *    they hold the default;
 *  - 64-bit integers are JSON strings ("-42"), 32-bit ones numbers;
 *    float/double are numbers with the fewest digits that read back to the
 *    same value, and "NaN", "Infinity", "-Infinity" as strings; -0.0 counts
 *    as set and prints as -0 (as protobuf C++ does; protobuf-c 1.4 itself
 *    does not put a -0.0 on the wire, so it only shows in local messages);
 *  - enums print the proto name of the value ("HEALTH_STATE_HEALTHY"), or
 *    the number when the value is not in the enum; google.protobuf.NullValue
 *    prints as null;
 *  - strings are escaped per RFC 8259: '"' and '\\', \b \f \n \r \t in their
 *    short form, the other control characters as \u00XX; valid UTF-8 is
 *    passed through, and each maximal ill-formed subsequence (Unicode's
 *    "best practice", what Python's errors="replace" does) becomes U+FFFD,
 *    so the output is always valid UTF-8;
 *  - bytes are standard base64 with padding;
 *  - repeated fields are arrays; map fields (a repeated field of a nested
 *    "<Field>Entry" message with key = 1 and value = 2) are objects whose
 *    names are the keys as strings ("true", "42"); map values print even
 *    when default; when a key repeats, the last entry wins (as on the wire)
 *    and the object keeps the others in their original order;
 *  - google.protobuf.Timestamp is an RFC 3339 string in UTC with 0, 3, 6 or
 *    9 fractional digits ("2026-11-26T14:12:32.123456Z"); one outside
 *    0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z, or with nanos
 *    outside 0..999999999, is an error (KM_EINVAL), as in the reference
 *    printers.
 *
 * Not covered: the other well-known types with a special mapping (Any,
 * Duration, FieldMask, Struct, Value, ListValue and the wrappers) are refused
 * with KM_EINVAL naming the type instead of being printed in a form a JSON
 * parser for protobuf would reject; the API uses none of them. Unknown fields
 * are dropped, as in the reference printers.
 *
 * Layout: compact (no whitespace at all) or, with KM_JSON_PRETTY, one field
 * or element per line indented by two spaces per level, ": " after a key,
 * and "{}" for an object with no fields.
 *
 * Threads: any thread; no global state (a "C" numeric locale is used for
 * numbers through uselocale(), whatever setlocale() the program made).
 * Memory: the caller owns msg and keeps it alive during the call; the
 * functions allocate only their output (km_json_to_string) or a temporary
 * buffer freed before they return (km_json_write). Nesting deeper than
 * KM_JSON_MAX_DEPTH messages is refused, so a cyclic hand-built message
 * cannot recurse without end.
 */
#ifndef KM_JSON_H
#define KM_JSON_H

#include <stddef.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "km_error.h"

/* Flags for the functions below; 0 is compact output. */
enum km_json_flags {
	KM_JSON_PRETTY = 1u << 0, /* indented, one field per line */
};

/* The deepest nesting of messages printed (the reference parsers' limit). */
#define KM_JSON_MAX_DEPTH 100

/*
 * Renders msg into *out, a malloc'd NUL-terminated string without a trailing
 * newline that the caller frees; *len (if len is non-NULL) gets its length.
 * Returns 0, KM_EINVAL (msg is NULL, nested too deep, an out-of-range
 * Timestamp, an unsupported well-known type; err names the field) or
 * KM_ENOMEM. On error *out is NULL.
 */
int km_json_to_string(const ProtobufCMessage *msg, unsigned flags, char **out,
		      size_t *len, struct km_error *err);

/*
 * Writes msg to out followed by one newline, so that compact output of a
 * stream of messages is JSON Lines. The whole document is rendered before
 * anything is written: on KM_EINVAL or KM_ENOMEM nothing reaches out.
 * Returns 0, the errors of km_json_to_string, or KM_EIO when writing (or
 * flushing) out fails.
 */
int km_json_write(FILE *out, const ProtobufCMessage *msg, unsigned flags,
		  struct km_error *err);

/*
 * Text for a terminal: what the CLI's tables and messages print of what a
 * server sent. A probe's output, a target's message, a cause: any of them
 * can hold escape sequences that would recolour, retitle or clear the
 * reader's terminal, or line breaks that forge rows. Control characters
 * (C0, DEL, and C1, U+0080..U+009F), the bidirectional overrides that
 * reorder what follows them on screen (U+202A..U+202E, U+2066..U+2069)
 * and bytes that are not UTF-8 are written as visible escapes: \n \r \t,
 * \xNN for the other bytes, \uNNNN for code points. Everything else,
 * printable UTF-8 included, is kept; a backslash is kept as it is (the
 * output is for people, not to be parsed back).
 *
 * Returns s itself when nothing needs escaping, else the escaped copy in
 * a; NULL only when a cannot grow. NULL s is "".
 */
struct km_arena;
const char *km_text_safe(const char *s, struct km_arena *a);

#endif
