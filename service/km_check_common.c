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
