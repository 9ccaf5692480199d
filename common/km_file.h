/*
 * km_file — reading a small file named by a configuration, safely.
 *
 * A file a configuration names (a CA bundle, a client key, a token, a
 * kubeconfig) is read whole and must be a regular file: a FIFO would block
 * whoever opens it, a device is not a file of text. stat(2) is asked
 * first, the file is opened with O_NONBLOCK (were it swapped for a FIFO
 * since, open returns) and checked again once open, and at most max bytes
 * are read (one more tells a file that grew).
 *
 * Thread-safety: touches only its arguments. Blocks on the file system:
 * never call it on an event loop. Memory: what it returns is malloc'd and
 * the caller's.
 */
#ifndef KM_FILE_H
#define KM_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "km_error.h"

/* The regular file at path into *buf (malloc'd, NUL-terminated; *len bytes
 * without the NUL), and its identity into st (if not NULL). what names the
 * kind of file in messages about its size ("a CA bundle": "...more than a
 * CA bundle's limit of 1048576 bytes (1 MiB)"). KM_EINVAL (not a regular
 * file, too large), KM_ENOTFOUND, KM_EIO, KM_ENOMEM, with a message
 * starting with the path. */
int km_file_read(const char *path, size_t max, const char *what, char **buf,
		 size_t *len, struct stat *st, struct km_error *err);

/* Whether len bytes hold a PEM certificate block ("-----BEGIN
 * CERTIFICATE-----", or the TRUSTED or X509 forms OpenSSL also reads). */
bool km_pem_has_certificate(const char *buf, size_t len);

#endif
