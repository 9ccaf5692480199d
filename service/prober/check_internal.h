/*
 * What the check types share inside the service (not a public contract).
 */
#ifndef KM_CHECK_INTERNAL_H
#define KM_CHECK_INTERNAL_H

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "km_check.h"

#ifdef KM_FILE_FAULTS
/* Tests only: in a build of km_check_file.c with KM_FILE_FAULTS (never
 * the daemon's), called on the offload pool's thread before each file
 * check's realpath and stat, with the probe's path. A hook that blocks is
 * a file system that does not answer. */
extern void (*km_check_file_fault)(const char *path);
#endif

/* SO_LINGER {on, 1 s} on a probe's socket, as the kubelet sets it. */
void km_check_set_linger(int fd);

/* Closes a probe's socket from the loop: switches SO_LINGER off, then
 * close(2). On Linux a lingering close only waits: tcp_close() sends the
 * same FIN and keeps the same FIN-WAIT and TIME-WAIT timers either way,
 * then sleeps until the peer acknowledges the FIN or the linger time runs
 * out. That sleep is a round trip per check on a live network (10,000
 * checks a second at 100 us each would fill the loop) and the whole second
 * for a peer that stopped answering; the kubelet can afford it with a
 * goroutine per probe, one event loop cannot. So the socket lingers as the
 * kubelet's does for its whole life, and is let go without the wait. */
void km_check_close_now(int fd);

union km_check_addr {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

/* Opens a probe's non-blocking socket to a, with SO_LINGER 1 s
 * (km_check_set_linger), and starts connecting. Returns 0 with *fd set,
 * or KM_EFULL (out of descriptors) / KM_EIO if no socket could be had.
 * *connect_err is then 0 (connected at once), EINPROGRESS, or connect's
 * errno; *fd is the caller's to close in every case. */
int km_check_connect(const union km_check_addr *a, socklen_t len, int *fd,
		     int *connect_err);

/* The error class of a failed connection: refused, or another network
 * error. */
static inline int km_check_errno_class(int e)
{
	return e == ECONNREFUSED ? KM_EC_REFUSED : KM_EC_NETWORK;
}

/* Fills a from an IP literal; false for anything else (a DNS name). */
bool km_check_parse_ip(const char *host, int port, union km_check_addr *a,
		       socklen_t *len);

/* Starts c as a libcurl CONNECT_ONLY transfer to c->probe's host and
 * port in http_checker (a checker of km_check_http): libcurl resolves the
 * name off the loop and connects; success iff connected by the deadline.
 * For TCP checks aimed at DNS names. Returns, reports and is cancelled
 * (km_check_http.cancel on the same checker) as any HTTP run. */
int km_check_http_connect_only(void *http_checker, struct km_check *c);

/* Resolves c->probe's host (a DNS name) through libcurl, off the loop, to
 * the addresses c->policy allows (all, without one), in the order the
 * resolver gives them (ports set): at most max of them into out, their
 * number into *n, before done reports success. Connects to nothing. Fails
 * as a TCP check to the name would: DNS, or NETWORK "not connected: ..."
 * naming the rule when every address is denied. For the gRPC checks of
 * probes of the API, which then connect to those addresses. Cancelled
 * with km_check_http.cancel on the same checker. */
int km_check_http_resolve(void *http_checker, struct km_check *c,
			  union km_check_addr *out, size_t max, size_t *n);

#endif
