/*
 * km_curl — libcurl's multi socket API driven by a km_loop: the one glue
 * between curl and the loop, for every subsystem that makes HTTP requests
 * on a loop (the HTTP checks, the Kubernetes client).
 *
 * curl tells which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to
 * wake it (CURLMOPT_TIMERFUNCTION); the loop calls curl_multi_socket_action
 * when either happens, and every transfer curl then reports finished is
 * handed to the owner's done function, once, in the order curl reported
 * them. The owner adds its easy handles with curl_multi_add_handle on
 * km_curl_multi and removes them (in done, or to cancel) with
 * curl_multi_remove_handle; its multi options (HTTP/2 multiplexing,
 * connection limits) are its own too.
 *
 * A timer that cannot be armed would leave curl's transfers waiting for a
 * wake-up that never comes: the timer callback fails instead, as libcurl
 * asks (7.88), and curl fails the transfers of the handle as it next
 * drives them. It is logged with the owner's name.
 *
 * Threads: the loop's. Memory: the multi handle and a list of finished
 * transfers, grown as needed; the owner's easy handles stay the owner's.
 */
#ifndef KM_CURL_H
#define KM_CURL_H

#include <curl/curl.h>

#include "km_error.h"
#include "km_loop.h"

struct km_curl;

/* Called on the loop's thread for each finished transfer; may remove and
 * free easy and add new transfers, but must not destroy the km_curl. */
typedef void (*km_curl_done_fn)(void *arg, CURL *easy, CURLcode result);

/* name: for log lines ("HTTP checks", "kube prod-eu"). Initialises
 * libcurl's globals once. KM_ENOMEM, KM_EINTERNAL. */
int km_curl_create(struct km_loop *l, const char *name, km_curl_done_fn done,
		   void *arg, struct km_curl **out, struct km_error *err);
/* Cleans up the multi handle; the owner removes its transfers first.
 * NULL is accepted. */
void km_curl_destroy(struct km_curl *c);

CURLM *km_curl_multi(struct km_curl *c);

/* Once per process, from any thread, before any other use of libcurl:
 * curl_global_init (km_curl_create calls it too). */
void km_curl_global_init(void);

#endif
