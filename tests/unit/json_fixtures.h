/*
 * Messages for the km_json tests, each with the exact output expected.
 *
 * test_json compares km_json's output with `compact` and `pretty`;
 * json_samples prints the same messages for check_json.py, which parses
 * them with Python's json module and checks them independently. Messages
 * live in static storage built on the first call; nothing to free.
 */
#ifndef KM_JSON_FIXTURES_H
#define KM_JSON_FIXTURES_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct km_json_sample {
	const char *name;
	const ProtobufCMessage *msg;
	const char *compact; /* the expected output without flags */
	const char *pretty;  /* with KM_JSON_PRETTY; NULL if not pinned */
	/* A string field whose raw bytes check_json.py decodes itself: the
	 * dotted path of its JSON key, its bytes; path NULL if none. */
	const char *raw_path;
	const char *raw;
};

const struct km_json_sample *km_json_samples(size_t *n);

#endif
