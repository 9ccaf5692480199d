/*
 * km_grpc_msg — protobuf-c messages in and out of gRPC byte buffers, the
 * names of gRPC status codes, and deadlines between our clock and the
 * core's.
 *
 * For the three places that speak the C core directly: the server
 * (service/rpc/km_rpc.c), the client library (clients/c) and the gRPC health
 * check (service/prober/km_check_grpc.c). Stateless; any thread.
 */
#ifndef KM_GRPC_MSG_H
#define KM_GRPC_MSG_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "km_arena.h"
#include "km_error.h"

/* A new byte buffer holding msg packed; the caller destroys it. Never
 * NULL: gRPC's allocator aborts the process when memory runs out. */
grpc_byte_buffer *km_grpc_pack(const ProtobufCMessage *msg);
/* The message in bb, NULL if bb does not hold a valid one. Allocated in a
 * (nothing to free) or, with a NULL, by protobuf-c's default allocator
 * (protobuf_c_message_free_unpacked). */
ProtobufCMessage *km_grpc_unpack(const ProtobufCMessageDescriptor *d,
				 grpc_byte_buffer *bb, struct km_arena *a);
/* A request from a client: the message in bb unpacked into a with at most
 * budget bytes (0 = no limit) and its strings checked, as km_pb_decode
 * (km_pbcheck.h) says: 0, KM_EFULL, KM_EINVAL or KM_ENOMEM with err. */
int km_grpc_decode(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb,
		   struct km_arena *a, size_t budget, ProtobufCMessage **out,
		   struct km_error *err);
/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN" for a code out of range. */
const char *km_grpc_code_name(int code);

/* Deadlines between our CLOCK_MONOTONIC nanoseconds (km_mono_ns) and the
 * core's gpr_timespec. The core's monotonic clock has an origin of its
 * own, so what crosses is the time left. km_grpc_deadline: 0 is none
 * (infinite future); a time already past is a deadline already past.
 * km_grpc_deadline_mono: an infinite deadline is 0. */
gpr_timespec km_grpc_deadline(int64_t mono_ns);
int64_t km_grpc_deadline_mono(gpr_timespec deadline);

#endif
