/*
 * What all check types share.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_internal.h"
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

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return s[0] ? 1 : 0;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

size_t km_check_copy_text(char *dst, size_t cap, const char *src, size_t n)
{
	static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
	const unsigned char *s = (const unsigned char *)src;
	size_t out = 0, i = 0;

	if (cap == 0)
		return 0;
	while (i < n) {
		size_t len = utf8_len(s + i, n - i);
		const char *from = len ? src + i : repl;
		size_t copy = len ? len : 3;

		if (out + copy > cap - 1)
			break;
		memcpy(dst + out, from, copy);
		out += copy;
		i += len ? len : 1;
	}
	dst[out] = '\0';
	return out;
}

void km_check_set_linger(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 1};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

void km_check_close_now(int fd)
{
	struct linger lg = {.l_onoff = 0, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

int km_check_connect(const union km_check_addr *a, socklen_t len, int *fd,
		     int *connect_err)
{
	*fd = socket(a->sa.sa_family,
		     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return errno == EMFILE || errno == ENFILE ? KM_EFULL : KM_EIO;
	km_check_set_linger(*fd);
	*connect_err = connect(*fd, &a->sa, len) < 0 ? errno : 0;
	return 0;
}

bool km_check_parse_ip(const char *host, int port, union km_check_addr *a,
		       socklen_t *len)
{
	memset(a, 0, sizeof *a);
	if (inet_pton(AF_INET, host, &a->v4.sin_addr) == 1) {
		a->v4.sin_family = AF_INET;
		a->v4.sin_port = htons((uint16_t)port);
		*len = sizeof a->v4;
		return true;
	}
	if (inet_pton(AF_INET6, host, &a->v6.sin6_addr) == 1) {
		a->v6.sin6_family = AF_INET6;
		a->v6.sin6_port = htons((uint16_t)port);
		*len = sizeof a->v6;
		return true;
	}
	return false;
}
