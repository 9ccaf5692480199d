/*
 * km_check — one run of one probe, on the prober's event loop.
 *
 * The prober (km_prober.c) owns the schedule and the runs' results; check
 * types own the mechanics of one run: HTTP over a connection of our own or
 * libcurl's multi socket API (km_check_http.c), TCP through a non-blocking
 * connect or libcurl for names (km_check_tcp.c), gRPC health through the C
 * core (km_check_grpc.c), exec through posix_spawn and a pidfd
 * (km_check_exec.c), files through stat on a thread of the offload pool
 * (km_check_file.c, km_offload.h). Each type is one struct km_check_type
 * (below).
 *
 * Contract of a check type:
 *  - start(checker, c) begins the run without blocking: every wait (a
 *    socket, a child, a gRPC completion, a timeout) goes through c->loop.
 *    It returns 0, or a km_err code if the run could not even start (then
 *    done is not called and the prober records an INTERNAL failure).
 *  - The type enforces c->deadline itself and calls c->done(c, &result)
 *    exactly once, on the loop thread, by the deadline (a little after at
 *    most); possibly before start returns (a file check, a connection
 *    refused at once), which the prober allows for. A timeout is a result
 *    (KM_EC_TIMEOUT), reported by the type because only it knows what to
 *    say and what to clean up (the exec type kills the whole process group
 *    first).
 *  - cancel(checker, c) abandons a run that has not reported (probe
 *    deleted, prober stopping): the type stops it, releases what it can at
 *    once and the rest in the background, and never calls done for it.
 * A run's state hangs from c->impl, which says which of the type's ways
 * owns the run; after done or cancel the type no longer touches c.
 *
 * A probe that came through the API (c->policy set) is held to the API's
 * probe policy by every type, where only the run can tell (km_probe.h):
 * exec and file probes only if still allowed, files by their real path,
 * every address connected to. A refusal is the run's result, naming the
 * rule; the type never connects to a denied address.
 *
 * A type may have a per-prober context (a "checker": the curl multi handle,
 * the gRPC completion queue, the set of running children), created with
 * the loop (and what else the prober shares: struct km_check_env) and
 * destroyed after the loop has stopped; destroying it
 * abandons and cleans up whatever still runs (kills children, cancels
 * calls). Threads: everything here runs on the loop's thread, create and
 * destroy on the thread that owns the prober while the loop is not
 * running.
 */
#ifndef KM_CHECK_H
#define KM_CHECK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_loop.h"
#include "km_model.h"
#include "km_probe.h"

/* Bodies and outputs are read up to this much, as the kubelet does. */
#define KM_CHECK_OUTPUT_MAX 10240

struct km_check_result {
	bool success;
	int error_class;     /* enum km_error_class */
	int32_t status_code; /* HTTP, gRPC, exit code, signal */
	char message[KM_RESULT_MESSAGE_MAX];
};

struct km_check {
	struct km_loop *loop;
	const struct km_probe *probe; /* valid until done or cancel */
	/* What the probe may touch: the API's policy for a probe of the API,
	 * NULL for the config's (trusted). Valid until done or cancel. */
	const struct km_probe_policy *policy;
	int64_t started;  /* CLOCK_MONOTONIC ns */
	int64_t deadline; /* started + timeout */
	void (*done)(struct km_check *c, const struct km_check_result *r);
	void *owner; /* the caller's (the prober's) */
	void *impl;  /* the check type's run, NULL when none */
};

/* Fills r as a success without a message. Cheaper than zero-initialising
 * the whole struct (10 KiB of message) once per check. */
static inline void km_check_pass(struct km_check_result *r)
{
	r->success = true;
	r->error_class = 0;
	r->status_code = 0;
	r->message[0] = '\0';
}

/* Fills r as a failure with a printf-style message. */
void km_check_fail(struct km_check_result *r, int error_class,
		   int32_t status_code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Copies n bytes of foreign text (a program's output, a peer's status
 * message) into dst, which holds cap bytes with the NUL, as valid UTF-8:
 * the message is stored and sent as a protobuf string. Invalid sequences
 * and NUL bytes become U+FFFD; the copy ends on a character boundary when
 * dst is full. Returns the length written. */
size_t km_check_copy_text(char *dst, size_t cap, const char *src, size_t n);

/* Counters the check types keep for the prober's stats; any thread
 * reads them. */
struct km_check_counters {
	_Atomic uint64_t exec_refused; /* runs past prober.maxExecChildren */
	_Atomic uint64_t exec_orphans_reaped; /* children that were no run */
	_Atomic uint64_t exec_orphans_killed; /* ...and were still alive */
};

struct km_offload;

/* What the prober gives every checker it creates. Everything here
 * outlives the checkers. */
struct km_check_env {
	struct km_loop *loop;
	/* Blocking calls (stat, realpath, reading a CA file) go here, never
	 * to the loop. */
	struct km_offload *offload;
	struct km_check_counters *counters;
	/* exec: children running at once; 0 = no limit. */
	int max_exec_children;
	/* exec: the process is a child subreaper (km_prober_init_process):
	 * children that are no run of the checker's are reaped, and killed
	 * where they can only be what a run left behind (km_check_exec.c). */
	bool reap_orphans;
	/* exec: never put runs in a cgroup of their own; track their
	 * descendants through /proc instead (tests of that way). */
	bool no_cgroups;
};

/* ---- check types ----------------------------------------------------------
 *
 * A check type is one descriptor, defined in its km_check_<name>.c and
 * registered by one row of the prober's table (km_prober.c), indexed by
 * the probe type it runs: a new type is a new file and a row.
 *
 * checker is the type's per-prober context, made by create (or NULL for a
 * type whose create is NULL) and handed to every other function.
 */
struct km_check_type {
	const char *name; /* "http", "tcp", ...: for messages */
	/* Makes the checker for env->loop, before the loop runs; on failure
	 * returns a km_err code with err filled and *checker NULL. NULL: the
	 * type needs no context. */
	int (*create)(const struct km_check_env *env, void **checker,
		      struct km_error *err);
	/* After the loop has stopped: frees the checker, abandoning what
	 * still runs (children killed and reaped, calls cancelled) and
	 * whatever cancelled runs left behind. NULL is accepted; NULL
	 * destroy: nothing to free. */
	void (*destroy)(void *checker);
	/* start and cancel as in the contract above. */
	int (*start)(void *checker, struct km_check *c);
	/* NULL for a type whose runs always report before start returns
	 * (they are never in flight, so never cancelled). */
	void (*cancel)(void *checker, struct km_check *c);
};

/* HTTP(S): our own connection for plain HTTP to an IP address, libcurl's
 * multi socket API for HTTPS and DNS names. */
extern const struct km_check_type km_check_http;
/* TCP: a non-blocking connect of our own to an IP address; a DNS name is
 * resolved and connected by libcurl (CONNECT_ONLY) in a checker of the
 * HTTP type the TCP checker keeps, so no lookup ever blocks the loop. */
extern const struct km_check_type km_check_tcp;
/* grpc.health.v1.Health/Check on a fresh channel, through the C core. */
extern const struct km_check_type km_check_grpc;
/* A program run with posix_spawn, watched through a pidfd. */
extern const struct km_check_type km_check_exec;
/* stat(2) (and realpath(3) for a probe of the API) on a thread of the
 * offload pool, within the probe's timeout. */
extern const struct km_check_type km_check_file;

#endif
