/*
 * What the check types share inside the service (not a public contract).
 */
#ifndef KM_CHECK_INTERNAL_H
#define KM_CHECK_INTERNAL_H

#include "km_check.h"

/* SO_LINGER {on, 1 s} on a probe's socket, as the kubelet sets it. */
void km_check_set_linger(int fd);

/* curl_global_init, once per process. */
void km_check_curl_global_init(void);

/* TCP checks to DNS names go through the HTTP checker (libcurl resolves
 * and connects with CONNECT_ONLY). */
int check_tcp_by_name(struct km_http_checker *x, struct km_check *c);
void check_tcp_by_name_cancel(struct km_check *c);

#endif
