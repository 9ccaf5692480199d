/*
 * km_embed — files compiled into the binary by the build (embed_gen):
 * the SQL migrations and the API's descriptor set for reflection.
 */
#ifndef KM_EMBED_H
#define KM_EMBED_H

#include <stddef.h>

struct km_embedded_file {
	const char *name;          /* base name, e.g. "0001_initial.sql" */
	const unsigned char *data; /* NUL-terminated for convenience */
	size_t len;                /* without the NUL */
};

#endif
