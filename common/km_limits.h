/*
 * km_limits — the bounds an operator sets on what callers of the API may
 * ask for (the configuration's limits: section; docs/config.md gives each
 * key, its default and why). The configuration fills one; main hands it
 * to the API, which checks what it owns (selectors, watch filters, the
 * number of probes) and passes the transport's bounds to km_rpc.
 *
 * Plain data, no functions beyond the defaults.
 */
#ifndef KM_LIMITS_H
#define KM_LIMITS_H

#include <stdint.h>

struct km_limits {
	int64_t default_deadline_ms;       /* unary calls without one */
	int64_t max_deadline_ms;           /* unary calls: cut to this */
	int64_t max_selector_bytes;        /* a label selector's length */
	int64_t max_selector_requirements; /* and its requirements */
	int64_t max_watch_targets;         /* WatchHealth's targets */
	int64_t max_probes;                /* probes in all (API creates) */
	int64_t max_probes_per_identity;   /* ... created by one identity */
	int64_t max_streams;               /* streaming calls at once */
	int64_t max_streams_per_peer;      /* ... from one client address */
	int64_t max_calls_per_connection;  /* HTTP/2 concurrent streams */
	int64_t max_request_memory_bytes;  /* to decode one request */
};

/* The defaults, as docs/config.md gives them. */
#define KM_LIMITS_DEFAULTS                                   \
	((struct km_limits){                                 \
		.default_deadline_ms = 10 * 1000,            \
		.max_deadline_ms = 60 * 1000,                \
		.max_selector_bytes = 4096,                  \
		.max_selector_requirements = 64,             \
		.max_watch_targets = 100,                    \
		.max_probes = 10000,                         \
		.max_probes_per_identity = 2000,             \
		.max_streams = 1000,                         \
		.max_streams_per_peer = 100,                 \
		.max_calls_per_connection = 100,             \
		.max_request_memory_bytes = 4 * 1024 * 1024, \
	})

#endif
