/*
 * What probes created through the API may touch (km_probe.h): exec and
 * file probes only when the config allows them, files only under the
 * configured prefixes, networks only as the allow and deny lists say; and
 * whether a file will do as a probe's CA bundle.
 *
 * The rules here judge a probe as written. The probe engine applies the
 * same rules again where only it can: to the address a name resolves to,
 * to every redirect, and to the path realpath(3) makes of a file probe's
 * path (service/prober/).
 */
#include "km_probe.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "km_file.h"

/* ---- networks ------------------------------------------------------------ */

/* KM_POLICY_DEFAULT_DENY, parsed. */
static const struct km_cidr default_deny[] = {
	{AF_INET, 16, {169, 254}},
	{AF_INET6, 10, {0xfe, 0x80}},
	{AF_INET, 32, {100, 100, 100, 200}},
	{AF_INET6,
	 128,
	 {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}},
};
static const struct km_cidr default_allow[] = {
	{AF_INET, 0, {0}},
	{AF_INET6, 0, {0}},
};

void km_probe_policy_defaults(struct km_probe_policy *pol)
{
	memset(pol, 0, sizeof *pol);
	pol->allow = default_allow;
	pol->n_allow = sizeof default_allow / sizeof default_allow[0];
	pol->deny = default_deny;
	pol->n_deny = sizeof default_deny / sizeof default_deny[0];
}

int km_probe_policy_copy(struct km_arena *a, const struct km_probe_policy *src,
			 struct km_probe_policy *dst)
{
	const char **prefixes = NULL;

	*dst = *src;
	if (src->n_file_prefixes) {
		prefixes = km_arena_calloc(a, src->n_file_prefixes,
					   sizeof *prefixes);
		if (!prefixes)
			return KM_ENOMEM;
		for (size_t i = 0; i < src->n_file_prefixes; i++)
			if (!(prefixes[i] = km_arena_strdup(
				      a, src->file_prefixes[i])))
				return KM_ENOMEM;
	}
	dst->file_prefixes = prefixes;
	dst->allow =
		src->n_allow
			? km_arena_memdup(a, src->allow,
					  src->n_allow * sizeof *src->allow)
			: NULL;
	dst->deny = src->n_deny
			    ? km_arena_memdup(a, src->deny,
					      src->n_deny * sizeof *src->deny)
			    : NULL;
	if ((src->n_allow && !dst->allow) || (src->n_deny && !dst->deny))
		return KM_ENOMEM;
	return 0;
}

/* Every bit of c past its prefix is zero. */
static bool host_bits_clear(const struct km_cidr *c)
{
	int len = c->family == AF_INET ? 4 : 16;

	for (int i = 0; i < len; i++) {
		int keep = c->bits - 8 * i;
		uint8_t mask = keep >= 8   ? 0xff
			       : keep <= 0 ? 0
					   : (uint8_t)(0xff << (8 - keep));

		if (c->addr[i] & (uint8_t)~mask)
			return false;
	}
	return true;
}

const char *km_cidr_parse(const char *s, struct km_cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	memset(out, 0, sizeof *out);
	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return "expected an address and a prefix length, such as "
		       "\"10.0.0.0/8\" or \"fd00::/8\"";
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = AF_INET6;
	else
		return "expected an IPv4 or IPv6 address before the '/', "
		       "such as \"10.0.0.0/8\" or \"fd00::/8\"";
	max = out->family == AF_INET ? 32 : 128;
	out->bits = max;
	if (slash) {
		const char *d = slash + 1;
		int bits = 0;

		if (!*d || strlen(d) > 3)
			return "expected a prefix length after the '/'";
		for (; *d; d++) {
			if (*d < '0' || *d > '9')
				return "expected a prefix length after the '/'";
			bits = bits * 10 + (*d - '0');
		}
		if (bits > max)
			return out->family == AF_INET
				       ? "an IPv4 prefix length is 0 to 32"
				       : "an IPv6 prefix length is 0 to 128";
		out->bits = bits;
	}
	if (!host_bits_clear(out))
		return "bits are set past the prefix length (write the "
		       "network's first address)";
	return NULL;
}

void km_cidr_format(const struct km_cidr *c, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(c->family, c->addr, a, sizeof a);
	snprintf(buf, n, "%s/%d", a, c->bits);
}

/* An address as family and bytes; an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) becomes its IPv4 address, which is where a connection
 * to it goes. False for other families. */
static bool addr_bytes(const struct sockaddr *sa, int *family, uint8_t *b)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
					   0, 0, 0, 0, 0xff, 0xff};

	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(b, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a6 =
			((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (!memcmp(a6, mapped, sizeof mapped)) {
			*family = AF_INET;
			memcpy(b, a6 + 12, 4);
		} else {
			*family = AF_INET6;
			memcpy(b, a6, 16);
		}
		return true;
	}
	return false;
}

static bool cidr_holds(const struct km_cidr *c, int family, const uint8_t *b)
{
	int whole = c->bits / 8, rest = c->bits % 8;

	if (c->family != family)
		return false;
	if (memcmp(c->addr, b, (size_t)whole))
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		return (c->addr[whole] & mask) == (b[whole] & mask);
	}
	return true;
}

int km_probe_policy_addr(const struct km_probe_policy *pol,
			 const struct sockaddr *sa, char *why, size_t n)
{
	char text[INET6_ADDRSTRLEN] = "?", net[64];
	uint8_t b[16];
	int family;

	if (!addr_bytes(sa, &family, b)) {
		if (why)
			snprintf(why, n,
				 "not an IP address (family %d); "
				 "api.probeNetworks allows only IP addresses",
				 sa->sa_family);
		return KM_EPERM;
	}
	inet_ntop(family, b, text, sizeof text);
	/* Deny wins. */
	for (size_t i = 0; i < pol->n_deny; i++)
		if (cidr_holds(&pol->deny[i], family, b)) {
			if (why) {
				km_cidr_format(&pol->deny[i], net, sizeof net);
				snprintf(why, n,
					 "%s is in %s, denied by "
					 "api.probeNetworks",
					 text, net);
			}
			return KM_EPERM;
		}
	for (size_t i = 0; i < pol->n_allow; i++)
		if (cidr_holds(&pol->allow[i], family, b))
			return 0;
	if (why)
		snprintf(why, n,
			 "%s is in no network api.probeNetworks.allow "
			 "names",
			 text);
	return KM_EPERM;
}

/* ---- paths --------------------------------------------------------------- */

bool km_path_normalize(const char *path, char *out, size_t n)
{
	size_t o = 0;
	const char *p = path;

	if (!path || path[0] != '/' || n < 2)
		return false;
	out[o++] = '/';
	while (*p) {
		const char *start, *end;
		size_t len;

		while (*p == '/')
			p++;
		start = p;
		while (*p && *p != '/')
			p++;
		end = p;
		len = (size_t)(end - start);
		if (len == 0 || (len == 1 && start[0] == '.'))
			continue;
		if (len == 2 && start[0] == '.' && start[1] == '.') {
			if (o == 1)
				return false; /* above "/" */
			/* Back to the slash before the last component. */
			o--;
			while (o > 1 && out[o - 1] != '/')
				o--;
			if (o > 1)
				o--;
			continue;
		}
		if (o > 1) {
			if (o + 1 >= n)
				return false;
			out[o++] = '/';
		}
		if (o + len >= n)
			return false;
		memcpy(out + o, start, len);
		o += len;
	}
	out[o] = '\0';
	return true;
}

bool km_path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (n == 1 && prefix[0] == '/')
		return path[0] == '/';
	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

/* ---- the policy, on a probe as written ----------------------------------- */

/* The host as an address, if it is one: inet_pton's forms, an IPv6
 * address in brackets or with a zone ("fe80::1%eth0": the zone is left
 * out, the address judged), and inet_aton's ("127.1", "0x7f.0.0.1",
 * "2130706433"), which name resolution would read the same way. */
static bool host_addr(const char *host, struct sockaddr_storage *ss)
{
	char buf[256];
	size_t n = strlen(host);
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	char *zone;

	memset(ss, 0, sizeof *ss);
	if (n >= sizeof buf)
		return false;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
	} else {
		memcpy(buf, host, n + 1);
	}
	if (strchr(buf, ':')) {
		zone = strchr(buf, '%');
		if (zone)
			*zone = '\0';
		if (inet_pton(AF_INET6, buf, &v6->sin6_addr) != 1)
			return false;
		v6->sin6_family = AF_INET6;
		return true;
	}
	if (inet_aton(buf, &v4->sin_addr) == 0)
		return false;
	v4->sin_family = AF_INET;
	return true;
}

int km_probe_check_policy(const struct km_probe *p,
			  const struct km_probe_policy *pol,
			  struct km_error *err)
{
	char why[256], norm[4096];
	const char *field;
	struct sockaddr_storage ss;

	assert(p && pol);
	switch (p->type) {
	case KM_PROBE_EXEC:
		if (!pol->allow_exec)
			return km_error_set(
				err, KM_EPERM,
				"probe.exec: exec probes through the API are "
				"off; declare the probe in the config file, "
				"or set api.allowExec: true there");
		return 0;
	case KM_PROBE_FILE:
		if (!pol->allow_file)
			return km_error_set(
				err, KM_EPERM,
				"probe.file: file probes through the API are "
				"off; declare the probe in the config file, "
				"or set api.allowFile: true there");
		if (!pol->n_file_prefixes)
			return km_error_set(
				err, KM_EPERM,
				"probe.file.path: no directory is open to "
				"file probes through the API; list some in "
				"api.filePathPrefixes in the config file");
		if (!km_path_normalize(p->path, norm, sizeof norm))
			return km_error_set(err, KM_EPERM,
					    "probe.file.path: \"%s\" climbs "
					    "above \"/\"",
					    p->path);
		for (size_t i = 0; i < pol->n_file_prefixes; i++)
			if (km_path_under(norm, pol->file_prefixes[i]))
				return 0;
		return km_error_set(err, KM_EPERM,
				    "probe.file.path: \"%s\" is not under a "
				    "directory of api.filePathPrefixes",
				    p->path);
	case KM_PROBE_HTTP: field = "probe.http_get.host"; break;
	case KM_PROBE_TCP: field = "probe.tcp_socket.host"; break;
	case KM_PROBE_GRPC: field = "probe.grpc.host"; break;
	default: return 0;
	}
	/* A DNS name is judged by the address it resolves to, when the probe
	 * connects. */
	if (p->host && host_addr(p->host, &ss) &&
	    km_probe_policy_addr(pol, (struct sockaddr *)&ss, why, sizeof why))
		return km_error_set(err, KM_EPERM, "%s: %s", field, why);
	return 0;
}

/* ---- CA files ------------------------------------------------------------ */

/* A bounded regular file (km_file.h) that holds a certificate. */
int km_ca_file_read(const char *path, char **pem, size_t *len, struct stat *st,
		    struct km_error *err)
{
	int rc = km_file_read(path, KM_CA_FILE_MAX, "a CA bundle", pem, len, st,
			      err);

	if (rc)
		return rc;
	if (!km_pem_has_certificate(*pem, *len)) {
		free(*pem);
		*pem = NULL;
		*len = 0;
		return km_error_set(
			err, KM_EINVAL,
			"%s: holds no PEM certificate (\"-----BEGIN "
			"CERTIFICATE-----\")",
			path);
	}
	return 0;
}

int km_probe_check_ca_file(const struct km_probe *p,
			   const struct km_field_ctx *fc, struct km_error *err)
{
	const char *field = fc->style == KM_FIELDS_YAML ? "httpGet.caFile"
							: "http_get.ca_file";
	const char *prefix = fc->prefix ? fc->prefix : "";
	char *pem;
	size_t len;
	int rc;

	if (p->type != KM_PROBE_HTTP || !p->ca_file || !*p->ca_file)
		return 0;
	rc = km_ca_file_read(p->ca_file, &pem, &len, NULL, err);
	if (!rc) {
		free(pem);
		return 0;
	}
	if (rc == KM_ENOMEM)
		return rc;
	km_error_prefix(err, "%s%s%s", prefix, *prefix ? "." : "", field);
	if (err)
		err->code = KM_EINVAL;
	return KM_EINVAL;
}
