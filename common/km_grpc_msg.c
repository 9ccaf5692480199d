#include "km_grpc_msg.h"

#include <grpc/byte_buffer_reader.h>

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

const char *km_grpc_code_name(int code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
		"PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
		"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED",
	};

	if (code < 0 || code >= (int)(sizeof names / sizeof names[0]))
		return "UNKNOWN";
	return names[code];
}
