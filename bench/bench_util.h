/*
 * bench/bench_util.h — what the benchmarks that call a real kubemedicd
 * share (bench_availability, bench_history_read): dying with a message,
 * medians and 99th percentiles next to a baseline's, and a kubemedicd
 * started on a database and stopped again.
 *
 * Single-threaded callers; the daemon's log is drained by a thread of its
 * own (struct bench_daemon).
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "km_client.h"

/* Prints "PROGRAM: what: msg" to stderr and exits 1. */
_Noreturn void bench_die(const char *what, const char *msg);

/* Median and 99th percentile of v[0..n) (sorted here; ns), in µs. */
void bench_stats(int64_t *v, long n, double *p50, double *p99);
/* One line: name's p50 and p99, the baseline's, and their ratios. Sorts
 * both arrays. */
void bench_report(const char *name, int64_t *v, long n, const char *base,
		  int64_t *b, long nb);

/* Epoch µs as a google.protobuf.Timestamp. */
Google__Protobuf__Timestamp bench_ts(int64_t us);

/* A kubemedicd of our own: its stderr drained by a thread into
 * DIR/kubemedicd.log (a pipe left unread would block its logging), and
 * the address it says it listens on. */
struct bench_daemon {
	pid_t pid;
	FILE *err;
	FILE *log;
	pthread_t drain;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char addr[128];
	bool ended;
};

/* Starts kubemedicd (the binary at path) on 127.0.0.1:0 over db, its log
 * in dir, and returns once it listens (dies after 60 s, or if it ends). */
void bench_daemon_start(const char *path, const char *dir, const char *db,
			struct bench_daemon *d);
/* SIGTERM, wait, and close the log. */
void bench_daemon_stop(struct bench_daemon *d);

#endif
