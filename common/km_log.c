#include "km_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum km_log_level min_level = KM_LOG_INFO;
static bool json_format;

void km_log_setup(enum km_log_level level, bool json)
{
	min_level = level;
	json_format = json;
}

int km_log_level_parse(const char *s)
{
	static const char *names[] = {"debug", "info", "warn", "error"};

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

bool km_log_enabled(enum km_log_level level)
{
	return level >= min_level;
}

const char *km_fmt_i64(char buf[24], int64_t v)
{
	snprintf(buf, 24, "%lld", (long long)v);
	return buf;
}

/* A line buffer that silently truncates: a log line is never worth a
 * failure. */
struct line {
	char buf[4096];
	size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
	if (n > sizeof l->buf - 2 - l->len)
		n = sizeof l->buf - 2 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void put_escaped(struct line *l, const char *s, bool json)
{
	char esc[8];

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(l, esc, 2);
		} else if (c == '\n') {
			put(l, "\\n", 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof esc, json ? "\\u%04x" : "\\x%02x",
				 c);
			puts_(l, esc);
		} else {
			put(l, s, 1);
		}
	}
}

static bool needs_quotes(const char *v)
{
	if (!*v)
		return true;
	for (; *v; v++)
		if (*v <= ' ' || *v == '"' || *v == '=' || *v == '\\')
			return true;
	return false;
}

static void put_logfmt_value(struct line *l, const char *v)
{
	if (needs_quotes(v)) {
		put(l, "\"", 1);
		put_escaped(l, v, false);
		put(l, "\"", 1);
	} else {
		puts_(l, v);
	}
}

void km_log(enum km_log_level level, const char *msg, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	struct line l = {.len = 0};
	const char *k, *v;
	va_list ap;

	if (level < min_level)
		return;
	if (json_format) {
		struct timeval tv;
		struct tm tm;
		char ts[96];

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
		puts_(&l, "{\"ts\":\"");
		puts_(&l, ts);
		puts_(&l, "\",\"level\":\"");
		puts_(&l, names[level]);
		puts_(&l, "\",\"msg\":\"");
		put_escaped(&l, msg, true);
		put(&l, "\"", 1);
	} else {
		puts_(&l, "level=");
		puts_(&l, names[level]);
		puts_(&l, " msg=");
		put_logfmt_value(&l, msg);
	}
	va_start(ap, msg);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (!v)
			v = "";
		if (json_format) {
			puts_(&l, ",\"");
			put_escaped(&l, k, true);
			puts_(&l, "\":\"");
			put_escaped(&l, v, true);
			put(&l, "\"", 1);
		} else {
			put(&l, " ", 1);
			puts_(&l, k);
			put(&l, "=", 1);
			put_logfmt_value(&l, v);
		}
	}
	va_end(ap);
	if (json_format)
		l.buf[l.len++] = '}';
	l.buf[l.len++] = '\n';
	/* One write per line keeps lines from different threads whole. */
	if (write(STDERR_FILENO, l.buf, l.len) < 0) {
		/* Nowhere left to report it. */
	}
}
