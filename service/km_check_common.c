/*
 * What all check types share.
 */
#include <stdarg.h>
#include <stdio.h>

#include "km_check.h"

void km_check_fail(struct km_check_result *r, int error_class,
		   int32_t status_code, const char *fmt, ...)
{
	va_list ap;

	r->success = false;
	r->error_class = error_class;
	r->status_code = status_code;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof r->message, fmt, ap);
	va_end(ap);
}

#include <curl/curl.h>
#include <sys/socket.h>

#include "check_internal.h"

void km_check_set_linger(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 1};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

void km_check_curl_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}
