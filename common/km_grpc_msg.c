#include "km_grpc_msg.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/time.h>

#include "km_pbcheck.h"
#include "km_time.h"

grpc_byte_buffer *km_grpc_pack(const ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	grpc_slice slice = grpc_slice_malloc(n);
	grpc_byte_buffer *bb;

	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
	bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}

ProtobufCMessage *km_grpc_unpack(const ProtobufCMessageDescriptor *d,
				 grpc_byte_buffer *bb, struct km_arena *a)
{
	ProtobufCAllocator alloc;
	grpc_byte_buffer_reader reader;
	grpc_slice s;
	ProtobufCMessage *m;

	if (!grpc_byte_buffer_reader_init(&reader, bb))
		return NULL;
	s = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	if (a)
		km_arena_protobuf_allocator(a, &alloc);
	m = protobuf_c_message_unpack(d, a ? &alloc : NULL,
				      GRPC_SLICE_LENGTH(s),
				      GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	return m;
}

int km_grpc_decode(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb,
		   struct km_arena *a, size_t budget, ProtobufCMessage **out,
		   struct km_error *err)
{
	grpc_byte_buffer_reader reader;
	grpc_slice s;
	int rc;

	*out = NULL;
	if (!grpc_byte_buffer_reader_init(&reader, bb))
		return km_error_set(err, KM_EINVAL,
				    "malformed request: not a valid %s message",
				    d->name);
	s = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	rc = km_pb_decode(d, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), a,
			  budget, out, err);
	grpc_slice_unref(s);
	return rc;
}

const char *km_grpc_code_name(int code)
{
	static const char *const names[] = {
		"OK",
		"CANCELLED",
		"UNKNOWN",
		"INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED",
		"NOT_FOUND",
		"ALREADY_EXISTS",
		"PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION",
		"ABORTED",
		"OUT_OF_RANGE",
		"UNIMPLEMENTED",
		"INTERNAL",
		"UNAVAILABLE",
		"DATA_LOSS",
		"UNAUTHENTICATED",
	};

	if (code < 0 || code >= (int)(sizeof names / sizeof names[0]))
		return "UNKNOWN";
	return names[code];
}

gpr_timespec km_grpc_deadline(int64_t mono_ns)
{
	if (!mono_ns)
		return gpr_inf_future(GPR_CLOCK_MONOTONIC);
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_nanos(mono_ns - km_mono_ns(),
						GPR_TIMESPAN));
}

int64_t km_grpc_deadline_mono(gpr_timespec deadline)
{
	gpr_timespec left;

	if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0)
		return 0;
	left = gpr_time_sub(deadline, gpr_now(deadline.clock_type));
	return km_mono_ns() + left.tv_sec * 1000000000LL + left.tv_nsec;
}
