/*
 * km_check — one run of one probe, on the prober's event loop.
 *
 * The prober (km_prober.c) owns the schedule and the health ledger; check
 * types own the mechanics of one run: HTTP through libcurl's multi socket
 * API (km_check_http.c), TCP through a non-blocking connect
 * (km_check_tcp.c), gRPC health through the C core (km_check_grpc.c), exec
 * through posix_spawn and a pidfd (km_check_exec.c), files through stat
 * (km_check_file.c).
 *
 * Contract of a check type:
 *  - start(c) begins the run without blocking: every wait (a socket, a
 *    child, a gRPC completion, a timeout) goes through c->loop. It returns
 *    0, or a km_err code if the run could not even start (then done is not
 *    called and the prober records an INTERNAL failure).
 *  - The type enforces c->deadline itself and calls c->done(c, &result)
 *    exactly once, on the loop thread, by the deadline (a little after at
 *    most); possibly before start returns (a file check, a connection
 *    refused at once), which the prober allows for: a timeout is a result (ERROR_CLASS_TIMEOUT), reported by the
 *    type because only it knows what to say and what to clean up (the exec
 *    type kills the whole process group first).
 *  - cancel(c) abandons a run that has not reported (probe deleted,
 *    prober stopping): the type stops it, releases what it can at once and
 *    the rest in the background, and never calls done for it.
 * After done or cancel the type no longer touches c.
 *
 * Every check type has a per-prober context (a "checker": the curl multi
 * handle, the gRPC completion queue, the set of running children), created
 * with the loop and destroyed after the loop has stopped; destroying it
 * abandons and cleans up whatever still runs (kills children, cancels
 * calls).
 */
#ifndef KM_CHECK_H
#define KM_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "km_error.h"
#include "km_loop.h"
#include "km_model.h"

/* Bodies and outputs are read up to this much, as the kubelet does. */
#define KM_CHECK_OUTPUT_MAX 10240

struct km_check_result {
	bool success;
	int error_class;             /* enum km_error_class */
	int32_t status_code;         /* HTTP, gRPC, exit code, signal */
	char message[KM_RESULT_MESSAGE_MAX];
};

struct km_check {
	struct km_loop *loop;
	const struct km_probe *probe; /* valid until done or cancel */
	int64_t started;              /* CLOCK_MONOTONIC ns */
	int64_t deadline;             /* started + timeout */
	void (*done)(struct km_check *c, const struct km_check_result *r);
	void *owner;                  /* the prober's */
	void *impl;                   /* the check type's */
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

/* ---- check types ---------------------------------------------------------- */

struct km_http_checker;
int km_http_checker_create(struct km_loop *l, struct km_http_checker **out,
			   struct km_error *err);
void km_http_checker_destroy(struct km_http_checker *x);
int km_http_check_start(struct km_http_checker *x, struct km_check *c);
void km_http_check_cancel(struct km_http_checker *x, struct km_check *c);

/* TCP: a non-blocking connect of our own to an IP address; a DNS name is
 * resolved and connected by libcurl (CONNECT_ONLY) through the same
 * checker as HTTP, so no lookup ever blocks the loop. */
int km_tcp_check_start(struct km_http_checker *x, struct km_check *c);
void km_tcp_check_cancel(struct km_http_checker *x, struct km_check *c);

/* File checks are one stat(2): they report before returning. */
int km_file_check_run(struct km_check *c);

struct km_exec_checker;
int km_exec_checker_create(struct km_loop *l, struct km_exec_checker **out,
			   struct km_error *err);
void km_exec_checker_destroy(struct km_exec_checker *x);
int km_exec_check_start(struct km_exec_checker *x, struct km_check *c);
void km_exec_check_cancel(struct km_exec_checker *x, struct km_check *c);

struct km_grpc_checker;
int km_grpc_checker_create(struct km_loop *l, struct km_grpc_checker **out,
			   struct km_error *err);
void km_grpc_checker_destroy(struct km_grpc_checker *x);
int km_grpc_check_start(struct km_grpc_checker *x, struct km_check *c);
void km_grpc_check_cancel(struct km_grpc_checker *x, struct km_check *c);

#endif
