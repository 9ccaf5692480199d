/*
 * km_error — the one error vocabulary of kubemedic.
 *
 * Every fallible function returns 0 on success or a negative km_err code,
 * and, when the caller passes a non-NULL struct km_error, a message a person
 * can act on ("probe.period_seconds: must be greater than or equal to 0").
 * The gRPC server maps codes to gRPC status codes (km_rpc_status_from_err,
 * service/rpc/km_rpc.h); no other layer of the daemon turns them into
 * gRPC's.
 *
 * Thread-safety: functions here touch only their arguments.
 */
#ifndef KM_ERROR_H
#define KM_ERROR_H

#include <stdarg.h>

enum km_err {
	KM_OK = 0,
	KM_EINVAL = -1,    /* the caller's input is wrong */
	KM_ENOTFOUND = -2, /* the named object does not exist */
	KM_EEXIST = -3,    /* an object of that name exists already */
	KM_EPRECOND = -4,  /* not possible in the current state */
	KM_EUNAVAIL = -5,  /* shutting down, or a dependency is down */
	KM_ENOMEM = -6,
	KM_EIO = -7,         /* the operating system or SQLite failed */
	KM_EFULL = -8,       /* a bounded queue or a size limit is exhausted */
	KM_ECORRUPT = -9,    /* stored data is not what we wrote */
	KM_ETOONEW = -10,    /* the database is newer than this binary */
	KM_EDEADLINE = -11,  /* the caller's deadline passed */
	KM_EINTERNAL = -12,  /* a bug: an invariant did not hold */
	KM_EUNIMPL = -13,    /* not built yet */
	KM_ERANGE = -14,     /* valid, but past the end of what exists */
	KM_ECANCELLED = -15, /* the caller went away */
	KM_EPERM = -16,      /* not allowed: the caller's role, or the
			      * configuration */
	KM_EAUTH = -17,      /* the caller is not authenticated */
};

#define KM_ERROR_MSG_MAX 512

struct km_error {
	int code;
	char msg[KM_ERROR_MSG_MAX];
};

/* Records code and a printf-style message in err (if non-NULL) and returns
 * code, so that `return km_error_set(err, KM_EINVAL, "...")` reads well. */
int km_error_set(struct km_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int km_error_vset(struct km_error *err, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Prefixes the message already in err with "prefix: ". */
void km_error_prefix(struct km_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A short name for a code: "invalid argument", "not found", ... */
const char *km_strerror(int code);

#endif
