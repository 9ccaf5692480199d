#include "km_error.h"

#include <stdio.h>
#include <string.h>

int km_error_vset(struct km_error *err, int code, const char *fmt, va_list ap)
{
	if (err) {
		err->code = code;
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	}
	return code;
}

int km_error_set(struct km_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	km_error_vset(err, code, fmt, ap);
	va_end(ap);
	return code;
}

void km_error_prefix(struct km_error *err, const char *fmt, ...)
{
	char buf[2 * KM_ERROR_MSG_MAX + 2];
	size_t n;
	va_list ap;
	int len;

	if (!err)
		return;
	va_start(ap, fmt);
	len = vsnprintf(buf, KM_ERROR_MSG_MAX, fmt, ap);
	va_end(ap);
	n = len < 0                          ? 0
	    : (size_t)len < KM_ERROR_MSG_MAX ? (size_t)len
					     : KM_ERROR_MSG_MAX - 1;
	memcpy(buf + n, ": ", 2);
	memcpy(buf + n + 2, err->msg,
	       strnlen(err->msg, KM_ERROR_MSG_MAX - 1) + 1);
	/* Truncate to fit; the message is for people, its tail matters least. */
	buf[KM_ERROR_MSG_MAX - 1] = '\0';
	memcpy(err->msg, buf, KM_ERROR_MSG_MAX);
}

const char *km_strerror(int code)
{
	switch (code) {
	case KM_OK: return "ok";
	case KM_EINVAL: return "invalid argument";
	case KM_ENOTFOUND: return "not found";
	case KM_EEXIST: return "already exists";
	case KM_EPRECOND: return "failed precondition";
	case KM_EUNAVAIL: return "unavailable";
	case KM_ENOMEM: return "out of memory";
	case KM_EIO: return "i/o error";
	case KM_EFULL: return "resource exhausted";
	case KM_ECORRUPT: return "data corrupted";
	case KM_ETOONEW: return "database too new";
	case KM_EDEADLINE: return "deadline exceeded";
	case KM_EINTERNAL: return "internal error";
	case KM_EUNIMPL: return "unimplemented";
	case KM_ERANGE: return "out of range";
	case KM_ECANCELLED: return "cancelled";
	case KM_EPERM: return "permission denied";
	case KM_EAUTH: return "unauthenticated";
	}
	return "unknown error";
}
