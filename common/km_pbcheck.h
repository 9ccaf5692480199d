/*
 * km_pbcheck — protobuf messages from strangers: unpacked within a memory
 * budget, and held to proto3's rule for strings (valid UTF-8) and ours (no
 * NUL characters).
 *
 * Why a budget. protobuf-c turns a few wire bytes into many bytes of
 * memory: an empty repeated string is 2 bytes on the wire and ~50 in
 * memory, an unknown field 2 bytes and ~70 (protobuf-c keeps unknown
 * fields, with a copy of their bytes). 4 MiB of such fields became 179 MB.
 * The budget stops the unpacking once it has allocated that much, whatever
 * the message holds.
 *
 * Why strings are checked on the wire. protobuf-c gives a string as a C
 * string, so "probe//up-http\0junk" arrives as "probe//up-http": after
 * unpacking, the NUL and what follows it are gone without a trace. So the
 * packed message is walked again with the same descriptors, every string
 * field of every nested message checked with its length, and a bad one is
 * named by its path as the .proto spells it ("probe.labels[2].key"; index
 * i is the i-th occurrence of a repeated field). Unknown fields are not
 * checked (nothing reads them).
 *
 * The walk also refuses field numbers protobuf does not allow (0, and
 * above 2^29-1): protobuf-c keeps them as unknown fields, and would pack
 * them again into bytes it refuses itself.
 *
 * Stateless, pure; any thread. Used by the gRPC server on every request
 * (through km_grpc_decode) and by the request fuzz target.
 */
#ifndef KM_PBCHECK_H
#define KM_PBCHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_arena.h"
#include "km_error.h"

/* Messages nested deeper than this are refused (the API's go 3 deep). */
#define KM_PB_MAX_DEPTH 32

/* Unpacks data[0..len) as a d into a, allocating at most budget bytes
 * (0 = no limit), then checks its strings (km_pb_check_strings). 0 and
 * *out, or:
 *   KM_EFULL   unpacking needed more than budget bytes (the message says
 *              how many were allowed);
 *   KM_EINVAL  not a valid d ("malformed request: not a valid
 *              kubemedic.v1.GetProbeRequest message"), or a string field
 *              that is not UTF-8 or holds a NUL, named by its path;
 *   KM_ENOMEM  the arena could not grow.
 * Whatever was allocated stays in a (reset it to release it). */
int km_pb_decode(const ProtobufCMessageDescriptor *d, const uint8_t *data,
		 size_t len, struct km_arena *a, size_t budget,
		 ProtobufCMessage **out, struct km_error *err);

/* km_pb_decode without the check of strings, for messages whose strings
 * are read and repaired by their reader (km_kube_decode: an API server's
 * objects, proto2, where protobuf-c checks no UTF-8). The same budget and
 * codes; messages "too large: ..." and "malformed: ...". */
int km_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *data,
		 size_t len, struct km_arena *a, size_t budget,
		 ProtobufCMessage **out, struct km_error *err);

/* Walks the packed d in data[0..len): every string field, at any depth, is
 * valid UTF-8 without NUL. 0, or KM_EINVAL naming the field path and the
 * offset of the first bad byte in the string ("target: must not contain
 * NUL characters (byte 14)"), or KM_EINVAL for bytes that are not a
 * message or nest deeper than KM_PB_MAX_DEPTH. */
int km_pb_check_strings(const ProtobufCMessageDescriptor *d,
			const uint8_t *data, size_t len, struct km_error *err);

/* The offset of the first byte of s[0..n) that does not belong to a
 * well-formed UTF-8 sequence (Unicode's definition: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or n if there is none. */
size_t km_utf8_invalid_at(const char *s, size_t n);

/* Makes s[0..n) UTF-8 in place: each byte km_utf8_invalid_at would name
 * becomes '?'. For text from elsewhere that ends up in protobuf strings. */
void km_utf8_repair(char *s, size_t n);

/* Whether s is only visible ASCII (0x21 to 0x7e; "" is): what an opaque
 * token sent back as it is may hold — a resourceVersion, a continue
 * token, a bearer token in a header — so that no space, line break or
 * control character can change the request it goes into. */
bool km_visible_ascii(const char *s);

#endif
