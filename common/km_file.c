/*
 * km_file.h: a bounded read of a regular file, taken out of km_probe's CA
 * file check (its messages as they were) for every file a configuration
 * names.
 */
#include "km_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool km_pem_has_certificate(const char *buf, size_t len)
{
	static const char *const begins[] = {
		"-----BEGIN CERTIFICATE-----",
		"-----BEGIN TRUSTED CERTIFICATE-----",
		"-----BEGIN X509 CERTIFICATE-----",
	};

	for (size_t i = 0; i < sizeof begins / sizeof begins[0]; i++)
		if (memmem(buf, len, begins[i], strlen(begins[i])))
			return true;
	return false;
}

static const char *file_kind(mode_t m)
{
	return S_ISDIR(m)    ? "a directory"
	       : S_ISFIFO(m) ? "a FIFO"
	       : S_ISSOCK(m) ? "a socket"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISBLK(m)  ? "a block device"
			     : "not a regular file";
}

/* "1 MiB", "64 KiB" or "100 bytes": a limit in words. */
static void size_words(size_t n, char *buf, size_t size)
{
	if (n >= (1u << 20) && n % (1u << 20) == 0)
		snprintf(buf, size, "%zu MiB", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, size, "%zu KiB", n >> 10);
	else
		snprintf(buf, size, "%zu bytes", n);
}

int km_file_read(const char *path, size_t max, const char *what, char **out,
		 size_t *len, struct stat *st, struct km_error *err)
{
	struct stat s1, s2;
	char *buf = NULL, words[32];
	size_t got = 0;
	int fd = -1, rc, e;

	*out = NULL;
	*len = 0;
	size_words(max, words, sizeof words);
	/* stat first: opening a FIFO for reading waits for a writer, and
	 * opening a device may do something. */
	if (stat(path, &s1) < 0) {
		e = errno;
		return km_error_set(err, e == ENOENT ? KM_ENOTFOUND : KM_EINVAL,
				    "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(s1.st_mode))
		return km_error_set(err, KM_EINVAL,
				    "%s: %s, not a regular file", path,
				    file_kind(s1.st_mode));
	if ((unsigned long long)s1.st_size > max)
		return km_error_set(err, KM_EINVAL,
				    "%s: %lld bytes, more than %s's limit of "
				    "%zu (%s)",
				    path, (long long)s1.st_size, what, max,
				    words);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		return km_error_set(err,
				    e == ENOENT   ? KM_ENOTFOUND
				    : e == ENOMEM ? KM_ENOMEM
						  : KM_EINVAL,
				    "%s: cannot open: %s", path, strerror(e));
	}
	if (fstat(fd, &s2) < 0 || !S_ISREG(s2.st_mode)) {
		rc = km_error_set(err, KM_EINVAL, "%s: not a regular file",
				  path);
		goto fail;
	}
	/* One byte more than the limit tells a file that grew. */
	buf = malloc(max + 2);
	if (!buf) {
		rc = km_error_set(err, KM_ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	while (got < max + 1) {
		ssize_t n = read(fd, buf + got, max + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = km_error_set(err, KM_EIO, "%s: cannot read: %s",
					  path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > max) {
		rc = km_error_set(err, KM_EINVAL,
				  "%s: more than %s's limit of %zu bytes (%s)",
				  path, what, max, words);
		goto fail;
	}
	buf[got] = '\0';
	close(fd);
	if (st)
		*st = s2;
	*out = buf;
	*len = got;
	return 0;
fail:
	free(buf);
	close(fd);
	return rc;
}
