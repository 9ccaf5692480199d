/*
 * km_log — one line per event on stderr.
 *
 *   level=info msg="listening" addr=127.0.0.1:7070 threads=2
 *   {"ts":"2026-11-26T14:12:32.123456Z","level":"info","msg":"listening","addr":"127.0.0.1:7070","threads":"2"}
 *
 * Call with string key/value pairs ending in NULL:
 *
 *   km_log(KM_LOG_INFO, "listening", "addr", addr, "threads", KM_I(n), NULL);
 *
 * KM_I formats an integer into a buffer that lives until the end of the
 * enclosing full expression. Values are quoted and escaped as needed.
 * Thread-safe: each line is written with one write(2).
 */
#ifndef KM_LOG_H
#define KM_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum km_log_level { KM_LOG_DEBUG, KM_LOG_INFO, KM_LOG_WARN, KM_LOG_ERROR };

/* Set once at start-up, before threads exist. Defaults: info, logfmt. */
void km_log_setup(enum km_log_level min_level, bool json);
/* Parses "debug", "info", "warn", "error"; -1 if unknown. */
int km_log_level_parse(const char *s);
bool km_log_enabled(enum km_log_level level);

void km_log(enum km_log_level level, const char *msg, ...)
	__attribute__((sentinel));

const char *km_fmt_i64(char buf[24], int64_t v);
#define KM_I(v) km_fmt_i64((char[24]){0}, (int64_t)(v))

#endif
