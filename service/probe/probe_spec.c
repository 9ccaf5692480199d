/*
 * Probe validation. The kubelet's rules are those of Kubernetes'
 * pkg/apis/core/validation (validateProbe, validateHandler,
 * validateHTTPGetAction, ...) after the API server's defaulting; where
 * kubemedic adds a rule, the message says which limit it is.
 */
#include "km_probe.h"

#include <ctype.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Formats "<prefix>.<field>: <why>" with the field in the caller's style. */
__attribute__((format(printf, 5, 6))) static int
field_err(struct km_error *err, const struct km_field_ctx *fc,
	  const char *api_name, const char *yaml_name, const char *fmt, ...)
{
	const char *field = fc->style == KM_FIELDS_YAML ? yaml_name : api_name;
	const char *prefix = fc->prefix ? fc->prefix : "";
	char why[KM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return km_error_set(err, KM_EINVAL, "%s%s%s: %s", prefix,
			    *prefix && *field ? "." : "", field, why);
}

#define FERR(api, yaml, ...) field_err(err, fc, api, yaml, __VA_ARGS__)

/* ---- names and labels -------------------------------------------------- */

static bool is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool km_is_dns1123_subdomain(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool edge = i == 0 || i == n - 1 || s[i - 1] == '.' ||
			    s[i + 1] == '.';

		if (c == '.' && edge)
			return false;
		if (edge ? !is_alnum_lower(c)
			 : !(is_alnum_lower(c) || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* Kubernetes' "qualified name" part and label value: [A-Za-z0-9] at both
 * ends, [-A-Za-z0-9_.] inside, at most 63 characters. */
static const char *name_part_error(const char *s, size_t n, bool allow_empty)
{
	if (n == 0)
		return allow_empty ? NULL : "must not be empty";
	if (n > 63)
		return "must be no more than 63 characters";
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = isalnum((unsigned char)c) &&
			     (unsigned char)c < 128;

		if ((i == 0 || i == n - 1) && !alnum)
			return "must begin and end with a letter or digit";
		if (!alnum && c != '-' && c != '_' && c != '.')
			return "may hold only letters, digits, '-', '_' and "
			       "'.'";
	}
	return NULL;
}

const char *km_label_key_error(const char *key)
{
	const char *slash = strchr(key, '/');

	if (slash) {
		char prefix[254];
		size_t pn = (size_t)(slash - key);

		if (pn == 0 || pn > 253)
			return "prefix must be a DNS subdomain of 1 to 253 "
			       "characters";
		memcpy(prefix, key, pn);
		prefix[pn] = '\0';
		if (!km_is_dns1123_subdomain(prefix))
			return "prefix must be a lower-case DNS subdomain";
		return name_part_error(slash + 1, strlen(slash + 1), false);
	}
	return name_part_error(key, strlen(key), false);
}

const char *km_label_value_error(const char *value)
{
	return name_part_error(value, strlen(value), true);
}

/* ---- timing ------------------------------------------------------------ */

int km_probe_set_timing(struct km_probe *p, const struct km_probe_timing *t,
			const struct km_field_ctx *fc, struct km_error *err)
{
	static const struct {
		const char *api, *yaml;
		size_t off;
	} fields[] = {
#define F(api, yaml) {#api, #yaml, offsetof(struct km_probe_timing, api)}
		F(initial_delay_seconds, initialDelaySeconds),
		F(timeout_seconds, timeoutSeconds),
		F(period_seconds, periodSeconds),
		F(success_threshold, successThreshold),
		F(failure_threshold, failureThreshold),
		F(period_milliseconds, periodMilliseconds),
		F(timeout_milliseconds, timeoutMilliseconds),
#undef F
	};
	int64_t period_ms, timeout_ms;

	/* The kubelet: every timing field is non-negative; 0 = default. */
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		int64_t v = *(const int64_t *)((const char *)t + fields[i].off);
		if (v < 0)
			return FERR(fields[i].api, fields[i].yaml,
				    "must be greater than or equal to 0 (got "
				    "%lld)",
				    (long long)v);
	}
	if (t->period_milliseconds && t->period_seconds)
		return FERR("period_milliseconds", "periodMilliseconds",
			    "give period_seconds or period_milliseconds, not "
			    "both");
	if (t->timeout_milliseconds && t->timeout_seconds)
		return FERR("timeout_milliseconds", "timeoutMilliseconds",
			    "give timeout_seconds or timeout_milliseconds, not "
			    "both");

	/* Bounds are checked before seconds become milliseconds, so that a
	 * huge value is refused instead of overflowing into a small one. */
	if (t->period_milliseconds) {
		if (t->period_milliseconds < KM_PROBE_MIN_PERIOD_MS)
			return FERR("period_milliseconds", "periodMilliseconds",
				    "must be at least %d (kubemedic's shortest "
				    "period), got %lld",
				    KM_PROBE_MIN_PERIOD_MS,
				    (long long)t->period_milliseconds);
		if (t->period_milliseconds > KM_PROBE_MAX_PERIOD_MS)
			return FERR("period_milliseconds", "periodMilliseconds",
				    "must be at most %lld seconds (one day)",
				    KM_PROBE_MAX_PERIOD_MS / 1000);
		period_ms = t->period_milliseconds;
	} else {
		if (t->period_seconds > KM_PROBE_MAX_PERIOD_MS / 1000)
			return FERR("period_seconds", "periodSeconds",
				    "must be at most %lld seconds (one day)",
				    KM_PROBE_MAX_PERIOD_MS / 1000);
		period_ms = (t->period_seconds ? t->period_seconds : 10) * 1000;
	}
	if (t->timeout_milliseconds) {
		if (t->timeout_milliseconds > KM_PROBE_MAX_TIMEOUT_MS)
			return FERR("timeout_milliseconds",
				    "timeoutMilliseconds",
				    "must be at most %lld seconds (one hour)",
				    KM_PROBE_MAX_TIMEOUT_MS / 1000);
		timeout_ms = t->timeout_milliseconds;
	} else {
		if (t->timeout_seconds > KM_PROBE_MAX_TIMEOUT_MS / 1000)
			return FERR("timeout_seconds", "timeoutSeconds",
				    "must be at most %lld seconds (one hour)",
				    KM_PROBE_MAX_TIMEOUT_MS / 1000);
		timeout_ms =
			(t->timeout_seconds ? t->timeout_seconds : 1) * 1000;
	}
	if (t->initial_delay_seconds > KM_PROBE_MAX_INITIAL_DELAY_MS / 1000)
		return FERR("initial_delay_seconds", "initialDelaySeconds",
			    "must be at most %lld (one day)",
			    KM_PROBE_MAX_INITIAL_DELAY_MS / 1000);
	if (t->success_threshold > KM_PROBE_MAX_THRESHOLD)
		return FERR("success_threshold", "successThreshold",
			    "must be at most %d", KM_PROBE_MAX_THRESHOLD);
	if (t->failure_threshold > KM_PROBE_MAX_THRESHOLD)
		return FERR("failure_threshold", "failureThreshold",
			    "must be at most %d", KM_PROBE_MAX_THRESHOLD);

	p->initial_delay_ms = t->initial_delay_seconds * 1000;
	p->timeout_ms = timeout_ms;
	p->period_ms = period_ms;
	p->success_threshold =
		(int32_t)(t->success_threshold ? t->success_threshold : 1);
	p->failure_threshold =
		(int32_t)(t->failure_threshold ? t->failure_threshold : 3);
	return 0;
}

void km_probe_get_timing(const struct km_probe *p, struct km_probe_timing *t)
{
	memset(t, 0, sizeof *t);
	t->initial_delay_seconds = p->initial_delay_ms / 1000;
	if (p->period_ms % 1000)
		t->period_milliseconds = p->period_ms;
	else
		t->period_seconds = p->period_ms / 1000;
	if (p->timeout_ms % 1000)
		t->timeout_milliseconds = p->timeout_ms;
	else
		t->timeout_seconds = p->timeout_ms / 1000;
	t->success_threshold = p->success_threshold;
	t->failure_threshold = p->failure_threshold;
}

/* ---- handlers ---------------------------------------------------------- */

int km_probe_parse_scheme(const char *scheme, bool *https,
			  const struct km_field_ctx *fc, struct km_error *err)
{
	const char *h = fc->style == KM_FIELDS_YAML ? "httpGet" : "http_get";
	char field[32];

	if (!scheme || !*scheme || strcmp(scheme, "HTTP") == 0) {
		*https = false;
		return 0;
	}
	if (strcmp(scheme, "HTTPS") == 0) {
		*https = true;
		return 0;
	}
	snprintf(field, sizeof field, "%s.scheme", h);
	return field_err(err, fc, field, field,
			 "Unsupported value: \"%s\": supported values: "
			 "\"HTTP\", \"HTTPS\"",
			 scheme);
}

int km_probe_handler_count_error(int count, const struct km_field_ctx *fc,
				 struct km_error *err)
{
	if (count == 0)
		return field_err(err, fc, "", "",
				 "must specify a handler type (one of %s)",
				 fc->style == KM_FIELDS_YAML
					 ? "httpGet, tcpSocket, grpc, exec, "
					   "file"
					 : "http_get, tcp_socket, grpc, exec, "
					   "file");
	if (count > 1)
		return field_err(err, fc, "", "",
				 "may not specify more than 1 handler type");
	return 0;
}

static bool has_space_or_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return true;
	return false;
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < ' ' && *s != '\t') || *s == 0x7f)
			return true;
	return false;
}

/* RFC 7230 token characters. */
static bool is_http_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) || (unsigned char)*s >= 128)
			if (!strchr("!#$%&'*+-.^_`|~", *s))
				return false;
	return true;
}

/* Kubernetes' environment variable names: [-._a-zA-Z][-._a-zA-Z0-9]*. */
static bool is_env_name(const char *s)
{
	if (!*s || isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) && (unsigned char)*s < 128) &&
		    !strchr("-._", *s))
			return false;
	return true;
}

static int check_host_port(const struct km_probe *p, const char *h_api,
			   const char *h_yaml, const struct km_field_ctx *fc,
			   struct km_error *err)
{
	char fa[48], fy[48];

	snprintf(fa, sizeof fa, "%s.host", h_api);
	snprintf(fy, sizeof fy, "%s.host", h_yaml);
	if (!p->host || !*p->host)
		return FERR(fa, fy,
			    "Required value: kubemedic probes run outside "
			    "the pod, so say which host to reach (an IP "
			    "address or a DNS name)");
	if (strlen(p->host) > 253 || has_space_or_ctl(p->host) ||
	    strpbrk(p->host, "/?#@"))
		return FERR(fa, fy,
			    "Invalid value: \"%s\": must be an IP address or "
			    "a DNS name",
			    p->host);
	snprintf(fa, sizeof fa, "%s.port", h_api);
	snprintf(fy, sizeof fy, "%s.port", h_yaml);
	if (p->port < 1 || p->port > 65535)
		return FERR(fa, fy,
			    "Invalid value: %d: must be between 1 and 65535, "
			    "inclusive",
			    p->port);
	return 0;
}

static int check_kvs(const struct km_kv *kv, size_t n, size_t max,
		     const char *fa, const char *fy, bool header,
		     const struct km_field_ctx *fc, struct km_error *err)
{
	if (n > max)
		return FERR(fa, fy,
			    "Too many: %zu: must have at most %zu items", n,
			    max);
	for (size_t i = 0; i < n; i++) {
		char a[64], y[64];

		snprintf(a, sizeof a, "%s[%zu].name", fa, i);
		snprintf(y, sizeof y, "%s[%zu].name", fy, i);
		if (header ? !is_http_token(kv[i].key)
			   : !is_env_name(kv[i].key))
			return FERR(a, y, "Invalid value: \"%s\": %s",
				    kv[i].key,
				    header ? "a valid HTTP header must consist "
					     "of alphanumeric characters or "
					     "one of !#$%&'*+-.^_`|~"
					   : "a valid environment variable "
					     "name must consist of letters, "
					     "digits, '_', '-' or '.', and "
					     "must not start with a digit");
		snprintf(a, sizeof a, "%s[%zu].value", fa, i);
		snprintf(y, sizeof y, "%s[%zu].value", fy, i);
		if (has_ctl(kv[i].value))
			return FERR(a, y, "must not hold control characters");
	}
	return 0;
}

static int check_abs_path(const char *path, const char *fa, const char *fy,
			  bool required, const struct km_field_ctx *fc,
			  struct km_error *err)
{
	if (!path || !*path)
		return required ? FERR(fa, fy, "Required value") : 0;
	if (path[0] != '/')
		return FERR(fa, fy,
			    "Invalid value: \"%s\": must be an "
			    "absolute path",
			    path);
	if (has_ctl(path))
		return FERR(fa, fy, "must not hold control characters");
	return 0;
}

int km_probe_validate(const struct km_probe *p, const struct km_field_ctx *fc,
		      struct km_error *err)
{
	int rc;

	if (!p->name || !*p->name)
		return FERR("name", "name", "Required value");
	if (!km_is_dns1123_subdomain(p->name))
		return FERR("name", "name",
			    "Invalid value: \"%s\": a lowercase RFC 1123 "
			    "subdomain must consist of lower case alphanumeric "
			    "characters, '-' or '.', and must start and end "
			    "with an alphanumeric character (at most 253)",
			    p->name);
	if (p->n_labels > KM_PROBE_MAX_LABELS)
		return FERR("labels", "labels",
			    "Too many: %zu: must have at "
			    "most %d labels",
			    p->n_labels, KM_PROBE_MAX_LABELS);
	for (size_t i = 0; i < p->n_labels; i++) {
		const char *why = km_label_key_error(p->labels[i].key);

		if (why)
			return FERR("labels", "labels",
				    "Invalid value: \"%s\": label key %s",
				    p->labels[i].key, why);
		why = km_label_value_error(p->labels[i].value);
		if (why)
			return FERR("labels", "labels",
				    "Invalid value: \"%s\": label value %s",
				    p->labels[i].value, why);
		/* A map has each key once; two values for one key would make
		 * selectors match one or the other by accident of order. (At
		 * most 64 labels: the quadratic search is cheap.) */
		for (size_t j = 0; j < i; j++)
			if (!strcmp(p->labels[j].key, p->labels[i].key))
				return FERR("labels", "labels",
					    "Duplicate value: \"%s\": a label "
					    "key may be given once",
					    p->labels[i].key);
	}

	switch (p->type) {
	case KM_PROBE_HTTP:
		rc = check_host_port(p, "http_get", "httpGet", fc, err);
		if (rc)
			return rc;
		if (p->path && (has_space_or_ctl(p->path) ||
				(*p->path && *p->path != '/')))
			return FERR("http_get.path", "httpGet.path",
				    "Invalid value: \"%s\": must be an "
				    "absolute URL path without spaces",
				    p->path);
		rc = check_kvs(p->headers, p->n_headers, KM_PROBE_MAX_HEADERS,
			       "http_get.http_headers", "httpGet.httpHeaders",
			       true, fc, err);
		if (rc)
			return rc;
		if (!p->https && (p->tls_verify || (p->ca_file && *p->ca_file)))
			return FERR("http_get.tls_verify", "httpGet.tlsVerify",
				    "applies only to scheme HTTPS");
		return check_abs_path(p->ca_file, "http_get.ca_file",
				      "httpGet.caFile", false, fc, err);
	case KM_PROBE_TCP:
		return check_host_port(p, "tcp_socket", "tcpSocket", fc, err);
	case KM_PROBE_GRPC:
		rc = check_host_port(p, "grpc", "grpc", fc, err);
		if (rc)
			return rc;
		if (p->service &&
		    (strlen(p->service) > 1024 || has_ctl(p->service)))
			return FERR("grpc.service", "grpc.service",
				    "must be at most 1024 printable "
				    "characters");
		return 0;
	case KM_PROBE_EXEC:
		if (p->argc == 0 || !p->argv[0][0])
			return FERR("exec.command", "exec.command",
				    "Required value: the program to run, then "
				    "its arguments (no shell)");
		if (p->argc > KM_PROBE_MAX_ARGS)
			return FERR("exec.command", "exec.command",
				    "Too many: %zu: must have at most %d items",
				    p->argc, KM_PROBE_MAX_ARGS);
		rc = check_kvs(p->env, p->n_env, KM_PROBE_MAX_ENV, "exec.env",
			       "exec.env", false, fc, err);
		if (rc)
			return rc;
		return check_abs_path(p->workdir, "exec.working_dir",
				      "exec.workingDir", false, fc, err);
	case KM_PROBE_FILE:
		rc = check_abs_path(p->path, "file.path", "file.path", true, fc,
				    err);
		if (rc)
			return rc;
		if (p->min_size < 0)
			return FERR("file.min_size", "file.minSize",
				    "must be greater than or equal to 0");
		if (p->max_age_s < 0)
			return FERR("file.max_age_seconds",
				    "file.maxAgeSeconds",
				    "must be greater than or equal to 0");
		return 0;
	}
	return km_probe_handler_count_error(0, fc, err);
}
