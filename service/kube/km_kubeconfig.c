/*
 * km_kubeconfig.h: a kubeconfig read with km_yaml.h (KM_YAML_LENIENT: keys
 * kubemedic does not read are skipped), one context resolved into a
 * struct km_kubeconfig; and the same from a pod's service account.
 *
 * The file is read in three passes over libyaml's document: the three
 * lists (clusters, users, contexts) into entries (a name and its body,
 * names unique); every entry's body checked (types, base64); then the
 * context chosen, and its cluster and user read again with what they ask
 * checked too (refusals, files read), into the result. Messages carry "kubeconfig PATH:LINE:COL".
 */
#include "km_kubeconfig.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "km_file.h"
#include "km_pbcheck.h"
#include "km_yaml.h"

/* One item of clusters, users or contexts. */
struct entry {
	const char *name;
	size_t index;            /* in its list */
	const yaml_node_t *item; /* {name, <body>} */
	const yaml_node_t *body; /* the cluster, user or context; may be
				    NULL */
};

struct list {
	const char *key;  /* "clusters" */
	const char *body; /* "cluster" */
	struct entry *e;
	size_t n;
};

struct reader {
	struct km_yaml y;
	const char *dir; /* relative paths' base; NULL: as given */
	struct km_kubeconfig *kc;
};

#define PATH_MSG 192

/* ---- values ------------------------------------------------------------ */

static int errorf_at(struct reader *rd, const yaml_node_t *n, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));

static int errorf_at(struct reader *rd, const yaml_node_t *n, const char *fmt,
		     ...)
{
	char what[KM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return km_yaml_errorf(&rd->y, n, "%s", what);
}

/* A string that, if given, is not empty. */
static int get_nonempty(struct reader *rd, const yaml_node_t *n,
			const char *path, const char **out)
{
	int rc = km_yaml_str(&rd->y, n, path, out);

	if (!rc && *out && !**out)
		return errorf_at(rd, n, "%s: must not be empty", path);
	return rc;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Standard base64 with its padding, as Go decodes a kubeconfig's []byte
 * fields (line breaks and blanks skipped), into *out (NUL-terminated, *len
 * bytes without it). Left NULL when not given or empty. */
static int get_base64(struct reader *rd, const yaml_node_t *n, const char *path,
		      const char **out, size_t *len)
{
	const char *s = NULL;
	char *compact;
	unsigned char *d;
	size_t m = 0, pad = 0;
	int rc, got;

	rc = km_yaml_str(&rd->y, n, path, &s);
	if (rc || !s)
		return rc;
	compact = km_arena_alloc(rd->y.a, strlen(s) + 1);
	if (!compact)
		return km_yaml_oom(&rd->y);
	for (; *s; s++) {
		if (*s == '\n' || *s == '\r' || *s == ' ' || *s == '\t')
			continue;
		if (*s == '=' ? ++pad > 2 : pad || !b64_char(*s))
			goto bad;
		compact[m++] = *s;
	}
	if (m == 0)
		return 0;
	if (m % 4 || m > INT_MAX)
		goto bad;
	d = km_arena_alloc(rd->y.a, m / 4 * 3 + 1);
	if (!d)
		return km_yaml_oom(&rd->y);
	got = EVP_DecodeBlock(d, (const unsigned char *)compact, (int)m);
	if (got < 0 || (size_t)got < pad)
		goto bad;
	*len = (size_t)got - pad;
	d[*len] = '\0';
	*out = (const char *)d;
	return 0;
bad:
	return errorf_at(rd, n, "%s: not valid base64", path);
}

/* file, relative to the kubeconfig's directory unless absolute. */
static const char *resolve(struct reader *rd, const char *file)
{
	if (file[0] == '/' || !rd->dir)
		return file;
	return km_arena_printf(rd->y.a, "%s%s%s", rd->dir,
			       strcmp(rd->dir, "/") ? "/" : "", file);
}

/* The file named by node n (field path) into *out in the arena. */
static int read_file(struct reader *rd, const yaml_node_t *n, const char *path,
		     const char *file, size_t max, const char *what,
		     const char **out, size_t *len)
{
	const char *full = resolve(rd, file);
	char *buf;
	int rc;

	if (!full)
		return km_yaml_oom(&rd->y);
	rc = km_file_read(full, max, what, &buf, len, NULL, rd->y.err);
	if (rc == KM_ENOMEM)
		return rc;
	if (rc) {
		km_error_prefix(rd->y.err, "%s:%zu:%zu: %s", rd->y.name,
				km_yaml_line(n), n->start_mark.column + 1,
				path);
		if (rd->y.err)
			rd->y.err->code = KM_EINVAL;
		return KM_EINVAL;
	}
	*out = km_arena_memdup(rd->y.a, buf, *len + 1);
	free(buf);
	return *out ? 0 : km_yaml_oom(&rd->y);
}

static bool has_private_key(const char *pem, size_t len)
{
	return memmem(pem, len, "-----BEGIN ", 11) &&
	       memmem(pem, len, "PRIVATE KEY-----", 16);
}

/* PEM bytes from a file (fn, at file_path) or data (dn, at data_path);
 * not both. kind: 'c' a certificate (or CA bundle), 'k' a key. */
static int get_pem(struct reader *rd, const yaml_node_t *body,
		   const char *where, const yaml_node_t *fn,
		   const char *file_path, const yaml_node_t *dn,
		   const char *data_path, const char *data, size_t data_len,
		   char kind, const char **out, size_t *len)
{
	const char *file = NULL, *field = data_path, *shown = "";
	const yaml_node_t *at = dn;
	int rc;

	if ((rc = get_nonempty(rd, fn, file_path, &file)))
		return rc;
	if (file && data)
		return errorf_at(rd, body, "%s: give %s or %s, not both", where,
				 strrchr(file_path, '.') + 1,
				 strrchr(data_path, '.') + 1);
	if (file) {
		rc = read_file(rd, fn, file_path, file, KM_KUBECONFIG_MAX_CERT,
			       kind == 'k' ? "a key file"
					   : "a certificate file",
			       out, len);
		if (rc)
			return rc;
		field = file_path;
		at = fn;
		shown = km_arena_printf(rd->y.a, " %s:", resolve(rd, file));
		if (!shown)
			return km_yaml_oom(&rd->y);
	} else if (data) {
		*out = data;
		*len = data_len;
	} else {
		return 0;
	}
	if (kind == 'k' && !has_private_key(*out, *len))
		return errorf_at(rd, at,
				 "%s:%s holds no PEM private key (\"-----BEGIN "
				 "PRIVATE KEY-----\")",
				 field, shown);
	if (kind != 'k' && !km_pem_has_certificate(*out, *len))
		return errorf_at(rd, at,
				 "%s:%s holds no PEM certificate (\"-----BEGIN "
				 "CERTIFICATE-----\")",
				 field, shown);
	return 0;
}

/* ---- lists ------------------------------------------------------------- */

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* The list at n ("- name: ...\n  <body>: ...") into l. */
static int read_list(struct reader *rd, const yaml_node_t *n, struct list *l)
{
	const char *keys[] = {"name", l->body};
	struct km_yaml_shown b;
	struct entry *sorted;
	size_t len, best = SIZE_MAX, first = 0;

	if (km_yaml_is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return errorf_at(rd, n, "%s: expected a list, got %s", l->key,
				 km_yaml_show(n, &b));
	len = km_yaml_seq_len(n);
	l->e = km_arena_calloc(rd->y.a, len ? len : 1, sizeof *l->e);
	sorted = km_arena_calloc(rd->y.a, len ? len : 1, sizeof *sorted);
	if (!l->e || !sorted)
		return km_yaml_oom(&rd->y);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = km_yaml_seq_item(&rd->y, n, i), *v[2];
		struct entry *e = &l->e[i];
		char where[PATH_MSG], path[PATH_MSG + 8];
		int rc;

		snprintf(where, sizeof where, "%s[%zu]", l->key, i);
		if (!item || item->type != YAML_MAPPING_NODE)
			return errorf_at(rd, item ? item : n,
					 "%s: expected a mapping {name, %s}, "
					 "got %s",
					 where, l->body,
					 item ? km_yaml_show(item, &b)
					      : "nothing");
		if ((rc = km_yaml_map(&rd->y, item, where, keys, 2, v,
				      KM_YAML_LENIENT)))
			return rc;
		snprintf(path, sizeof path, "%s.name", where);
		if ((rc = get_nonempty(rd, v[0], path, &e->name)))
			return rc;
		if (!e->name)
			return errorf_at(rd, item, "%s: missing", path);
		e->index = i;
		e->item = item;
		e->body = v[1];
	}
	l->n = len;
	/* Names are unique (client-go refuses duplicates); the pair whose
	 * second member comes first in the file is reported. */
	memcpy(sorted, l->e, len * sizeof *sorted);
	qsort(sorted, len, sizeof *sorted, cmp_entry);
	for (size_t i = 1; i < len; i++)
		if (!strcmp(sorted[i].name, sorted[i - 1].name) &&
		    sorted[i].index < best) {
			best = sorted[i].index;
			first = sorted[i - 1].index;
		}
	if (best != SIZE_MAX)
		return errorf_at(rd, l->e[best].item,
				 "%s[%zu].name: duplicate name %s: %s[%zu] at "
				 "line %zu has it already",
				 l->key, best,
				 km_yaml_show_bytes(l->e[best].name,
						    strlen(l->e[best].name),
						    &b),
				 l->key, first, km_yaml_line(l->e[first].item));
	return 0;
}

static const struct entry *find(const struct list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->e[i].name, name))
			return &l->e[i];
	return NULL;
}

/* "clusters in the file: "a", "b"" or "the file has no clusters". */
static const char *names_of(const struct list *l, char *buf, size_t size)
{
	size_t o;

	if (!l->n) {
		snprintf(buf, size, "the file has no %s", l->key);
		return buf;
	}
	o = (size_t)snprintf(buf, size, "%s in the file: ", l->key);
	for (size_t i = 0; i < l->n && o < size; i++) {
		struct km_yaml_shown b;
		const char *s = km_yaml_show_bytes(l->e[i].name,
						   strlen(l->e[i].name), &b);

		if (o + strlen(s) + 8 > size || o > 200) {
			snprintf(buf + o, size - o, "%s...", i ? ", " : "");
			break;
		}
		o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "",
				      s);
	}
	return buf;
}

/* ---- clusters, users, contexts ------------------------------------------ */

enum { C_SERVER, C_CA, C_CA_DATA, C_INSECURE, C_SERVER_NAME, C_PROXY, C_N };
static const char *const cluster_keys[C_N] = {
	"server",
	"certificate-authority",
	"certificate-authority-data",
	"insecure-skip-tls-verify",
	"tls-server-name",
	"proxy-url",
};

/* "https://HOST[:PORT][/PATH]", or http://; NULL if fine, else why not. */
static const char *server_error(const char *s)
{
	const char *host;

	if (!strncmp(s, "https://", 8))
		host = s + 8;
	else if (!strncmp(s, "http://", 7))
		host = s + 7;
	else
		return "expected a URL: https://HOST[:PORT]";
	if (!*host || *host == '/' || *host == ':')
		return "the URL names no host";
	for (const char *c = host; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return "the URL holds a blank or a control character";
	return NULL;
}

/* The cluster e (clusters[i].cluster); into rd->kc when chosen. */
static int parse_cluster(struct reader *rd, const struct entry *e, bool chosen)
{
	struct km_kubeconfig *kc = rd->kc;
	yaml_node_t *v[C_N];
	char where[PATH_MSG], p[C_N][PATH_MSG + 32];
	const char *server = NULL, *proxy = NULL, *sni = NULL, *ca_data = NULL;
	size_t ca_data_len = 0;
	bool insecure = false;
	struct km_yaml_shown b;
	int rc;

	snprintf(where, sizeof where, "clusters[%zu].cluster", e->index);
	if ((rc = km_yaml_map(&rd->y, e->body, where, cluster_keys, C_N, v,
			      KM_YAML_LENIENT)))
		return rc;
	for (size_t i = 0; i < C_N; i++)
		snprintf(p[i], sizeof p[i], "%s.%s", where, cluster_keys[i]);
	if ((rc = km_yaml_str(&rd->y, v[C_SERVER], p[C_SERVER], &server)) ||
	    (rc = get_base64(rd, v[C_CA_DATA], p[C_CA_DATA], &ca_data,
			     &ca_data_len)) ||
	    (rc = km_yaml_bool(&rd->y, v[C_INSECURE], p[C_INSECURE],
			       &insecure)) ||
	    (rc = get_nonempty(rd, v[C_SERVER_NAME], p[C_SERVER_NAME], &sni)) ||
	    (rc = km_yaml_str(&rd->y, v[C_PROXY], p[C_PROXY], &proxy)))
		return rc;
	if (!chosen)
		return 0;

	if (proxy && *proxy)
		return errorf_at(rd, v[C_PROXY],
				 "%s: not supported: kubemedic connects to the "
				 "API server directly",
				 p[C_PROXY]);
	if (!server || !*server)
		return errorf_at(rd, v[C_SERVER] ? v[C_SERVER] : e->item,
				 "%s: missing: the API server's URL "
				 "(https://HOST:PORT)",
				 p[C_SERVER]);
	if (server_error(server))
		return errorf_at(rd, v[C_SERVER], "%s: %s: %s", p[C_SERVER],
				 km_yaml_show(v[C_SERVER], &b),
				 server_error(server));
	if ((rc = get_pem(rd, e->body, where, v[C_CA], p[C_CA], v[C_CA_DATA],
			  p[C_CA_DATA], ca_data, ca_data_len, 'c', &kc->ca_pem,
			  &kc->ca_pem_len)))
		return rc;
	if (insecure && kc->ca_pem)
		return errorf_at(rd, v[C_INSECURE],
				 "%s: not allowed with a certificate "
				 "authority (certificate-authority or "
				 "certificate-authority-data): give one or "
				 "the other",
				 p[C_INSECURE]);
	/* Trailing slashes would double with the API's paths. */
	{
		char *s = km_arena_strdup(rd->y.a, server);
		size_t n;

		if (!s)
			return km_yaml_oom(&rd->y);
		n = strlen(s);
		while (n > 8 && s[n - 1] == '/')
			s[--n] = '\0';
		kc->server = s;
	}
	kc->insecure_skip_tls_verify = insecure;
	kc->tls_server_name = sni;
	kc->cluster = e->name;
	return 0;
}

enum {
	U_CERT,
	U_CERT_DATA,
	U_KEY,
	U_KEY_DATA,
	U_TOKEN,
	U_TOKEN_FILE,
	U_EXEC,
	U_AUTH_PROVIDER,
	U_USERNAME,
	U_PASSWORD,
	U_AS,
	U_AS_UID,
	U_AS_GROUPS,
	U_AS_EXTRA,
	U_N
};
static const char *const user_keys[U_N] = {
	"client-certificate",
	"client-certificate-data",
	"client-key",
	"client-key-data",
	"token",
	"tokenFile",
	"exec",
	"auth-provider",
	"username",
	"password",
	"as",
	"as-uid",
	"as-groups",
	"as-user-extra",
};

/* What a user may ask that kubemedic cannot honour, and why. */
static const char *user_refusal(int key)
{
	switch (key) {
	case U_EXEC:
		return "credential plugins (exec) are not supported yet: give "
		       "a token, tokenFile or client certificate";
	case U_AUTH_PROVIDER:
		return "auth providers are not supported yet: give a token, "
		       "tokenFile or client certificate";
	case U_USERNAME:
	case U_PASSWORD:
		return "basic authentication is not supported: give a token, "
		       "tokenFile or client certificate";
	default: return "impersonation is not supported";
	}
}

/* Whitespace off both ends, in place. */
static char *trim(char *s, size_t *len)
{
	while (*len && (s[*len - 1] == '\n' || s[*len - 1] == '\r' ||
			s[*len - 1] == ' ' || s[*len - 1] == '\t'))
		s[--*len] = '\0';
	while (*s == '\n' || *s == '\r' || *s == ' ' || *s == '\t') {
		s++;
		--*len;
	}
	return s;
}

/* What is wrong with a token (len bytes at t, trimmed) as the value of
 * an Authorization header, or NULL: it is sent as it is, so a line break
 * or another control character would end the header there and start
 * whatever follows as one of the request's own. Bearer tokens are
 * printable ASCII (RFC 6750's b64token; JWTs). Every token kubemedicd
 * sends passes here: a kubeconfig's token, its tokenFile's and the
 * ServiceAccount's, at start and when the file is read again. */
static const char *token_fault(const char *t, size_t len)
{
	if (!len)
		return "empty";
	if (strlen(t) != len)
		return "holds a NUL byte";
	if (strpbrk(t, "\r\n"))
		return "holds more than one line";
	if (!km_visible_ascii(t))
		return "holds a character a bearer token does not "
		       "(a space, a control character or non-ASCII)";
	return NULL;
}

int km_kubeconfig_read_token(const char *path, char **token,
			     struct km_error *err)
{
	const char *fault;
	char *buf = NULL, *t;
	size_t len = 0;
	int rc;

	*token = NULL;
	rc = km_file_read(path, KM_KUBECONFIG_MAX_TOKEN, "a token file", &buf,
			  &len, NULL, err);
	if (rc)
		return rc;
	t = trim(buf, &len);
	if ((fault = token_fault(t, len))) {
		rc = km_error_set(err, KM_EINVAL, "%s: %s", path, fault);
		free(buf);
		return rc;
	}
	memmove(buf, t, len + 1);
	*token = buf;
	return 0;
}

/* A token file's token (trimmed, token_fault's rules) into *token. */
static int read_token(struct reader *rd, const yaml_node_t *n, const char *path,
		      const char *file, const char **token)
{
	const char *raw, *fault;
	char *t;
	size_t len;
	int rc;

	rc = read_file(rd, n, path, file, KM_KUBECONFIG_MAX_TOKEN,
		       "a token file", &raw, &len);
	if (rc)
		return rc;
	t = trim((char *)raw, &len);
	if ((fault = token_fault(t, len)))
		return errorf_at(rd, n, "%s: %s: %s", path, resolve(rd, file),
				 fault);
	*token = t;
	return 0;
}

static int parse_user(struct reader *rd, const struct entry *e, bool chosen)
{
	struct km_kubeconfig *kc = rd->kc;
	yaml_node_t *v[U_N];
	char where[PATH_MSG], p[U_N][PATH_MSG + 32];
	const char *cert_data = NULL, *key_data = NULL, *token = NULL,
		   *token_file = NULL;
	size_t cert_len = 0, key_len = 0;
	int rc;

	snprintf(where, sizeof where, "users[%zu].user", e->index);
	if ((rc = km_yaml_map(&rd->y, e->body, where, user_keys, U_N, v,
			      KM_YAML_LENIENT)))
		return rc;
	for (size_t i = 0; i < U_N; i++)
		snprintf(p[i], sizeof p[i], "%s.%s", where, user_keys[i]);
	if ((rc = get_base64(rd, v[U_CERT_DATA], p[U_CERT_DATA], &cert_data,
			     &cert_len)) ||
	    (rc = get_base64(rd, v[U_KEY_DATA], p[U_KEY_DATA], &key_data,
			     &key_len)) ||
	    (rc = km_yaml_str(&rd->y, v[U_TOKEN], p[U_TOKEN], &token)) ||
	    (rc = get_nonempty(rd, v[U_TOKEN_FILE], p[U_TOKEN_FILE],
			       &token_file)))
		return rc;
	if (!chosen)
		return 0;

	for (int i = U_EXEC; i < U_N; i++)
		if (!km_yaml_is_null(v[i]))
			return errorf_at(rd, v[i], "%s: %s", p[i],
					 user_refusal(i));
	if ((rc = get_pem(rd, e->body, where, v[U_CERT], p[U_CERT],
			  v[U_CERT_DATA], p[U_CERT_DATA], cert_data, cert_len,
			  'c', &kc->client_cert_pem,
			  &kc->client_cert_pem_len)) ||
	    (rc = get_pem(rd, e->body, where, v[U_KEY], p[U_KEY], v[U_KEY_DATA],
			  p[U_KEY_DATA], key_data, key_len, 'k',
			  &kc->client_key_pem, &kc->client_key_pem_len)))
		return rc;
	if (kc->client_cert_pem && !kc->client_key_pem)
		return errorf_at(rd, e->body,
				 "%s: a client certificate needs its key "
				 "(client-key or client-key-data)",
				 where);
	if (kc->client_key_pem && !kc->client_cert_pem)
		return errorf_at(rd, e->body,
				 "%s: a client key needs its certificate "
				 "(client-certificate or "
				 "client-certificate-data)",
				 where);
	/* As client-go: the file, read now and again when it rotates, wins
	 * over token. */
	if (token_file) {
		if ((rc = read_token(rd, v[U_TOKEN_FILE], p[U_TOKEN_FILE],
				     token_file, &token)))
			return rc;
		kc->token_file = resolve(rd, token_file);
		if (!kc->token_file)
			return km_yaml_oom(&rd->y);
	}
	if (token && *token && !token_file) {
		const char *fault = token_fault(token, strlen(token));

		if (fault)
			return errorf_at(rd, v[U_TOKEN], "%s: %s", p[U_TOKEN],
					 fault);
	}
	kc->token = token && *token ? token : NULL;
	kc->user = e->name;
	return 0;
}

/* The context e's fields; its cluster and user must be in the file. */
static int parse_context(struct reader *rd, const struct entry *e,
			 const struct list *clusters, const struct list *users,
			 const struct entry **cluster,
			 const struct entry **user, const char **ns)
{
	static const char *const keys[] = {"cluster", "user", "namespace"};
	yaml_node_t *v[3];
	char where[PATH_MSG], p[3][PATH_MSG + 16], names[320];
	const char *cname = NULL, *uname = NULL;
	struct km_yaml_shown b;
	int rc;

	*cluster = NULL;
	*user = NULL;
	*ns = NULL;
	snprintf(where, sizeof where, "contexts[%zu].context", e->index);
	if ((rc = km_yaml_map(&rd->y, e->body, where, keys, 3, v,
			      KM_YAML_LENIENT)))
		return rc;
	for (size_t i = 0; i < 3; i++)
		snprintf(p[i], sizeof p[i], "%s.%s", where, keys[i]);
	if ((rc = km_yaml_str(&rd->y, v[0], p[0], &cname)) ||
	    (rc = km_yaml_str(&rd->y, v[1], p[1], &uname)) ||
	    (rc = km_yaml_str(&rd->y, v[2], p[2], ns)))
		return rc;
	if (!clusters)
		return 0; /* only checked */
	if (!cname || !*cname)
		return errorf_at(rd, v[0] ? v[0] : e->item,
				 "%s: missing: the context names no cluster",
				 p[0]);
	*cluster = find(clusters, cname);
	if (!*cluster)
		return errorf_at(rd, v[0], "%s: cluster %s not found; %s", p[0],
				 km_yaml_show(v[0], &b),
				 names_of(clusters, names, sizeof names));
	if (uname && *uname) {
		*user = find(users, uname);
		if (!*user)
			return errorf_at(rd, v[1], "%s: user %s not found; %s",
					 p[1], km_yaml_show(v[1], &b),
					 names_of(users, names, sizeof names));
	}
	return 0;
}

/* ---- the file ---------------------------------------------------------- */

enum { K_API_VERSION, K_KIND, K_CLUSTERS, K_USERS, K_CONTEXTS, K_CURRENT, K_N };
static const char *const top_keys[K_N] = {
	"apiVersion", "kind",     "clusters",
	"users",      "contexts", "current-context",
};

static int parse_doc(struct reader *rd, const yaml_node_t *root,
		     const char *context)
{
	struct km_kubeconfig *kc = rd->kc;
	struct list clusters = {"clusters", "cluster", NULL, 0},
		    users = {"users", "user", NULL, 0},
		    contexts = {"contexts", "context", NULL, 0};
	const struct entry *ctx, *cluster, *user;
	const char *api = NULL, *kind = NULL, *current = NULL, *ns = NULL;
	yaml_node_t *v[K_N];
	char names[320];
	struct km_yaml_shown b;
	int rc;

	if ((rc = km_yaml_map(&rd->y, root, "", top_keys, K_N, v,
			      KM_YAML_LENIENT)) ||
	    (rc = km_yaml_str(&rd->y, v[K_API_VERSION], "apiVersion", &api)) ||
	    (rc = km_yaml_str(&rd->y, v[K_KIND], "kind", &kind)) ||
	    (rc = km_yaml_str(&rd->y, v[K_CURRENT], "current-context",
			      &current)))
		return rc;
	if (api && *api && strcmp(api, "v1"))
		return errorf_at(rd, v[K_API_VERSION],
				 "apiVersion: %s: expected \"v1\"",
				 km_yaml_show(v[K_API_VERSION], &b));
	if (kind && *kind && strcmp(kind, "Config"))
		return errorf_at(rd, v[K_KIND],
				 "kind: %s: expected \"Config\" (a kubeconfig)",
				 km_yaml_show(v[K_KIND], &b));
	if ((rc = read_list(rd, v[K_CLUSTERS], &clusters)) ||
	    (rc = read_list(rd, v[K_USERS], &users)) ||
	    (rc = read_list(rd, v[K_CONTEXTS], &contexts)))
		return rc;
	/* Every entry's types and base64 first, chosen or not. */
	for (size_t i = 0; i < contexts.n; i++)
		if ((rc = parse_context(rd, &contexts.e[i], NULL, NULL,
					&cluster, &user, &ns)))
			return rc;
	for (size_t i = 0; i < clusters.n; i++)
		if ((rc = parse_cluster(rd, &clusters.e[i], false)))
			return rc;
	for (size_t i = 0; i < users.n; i++)
		if ((rc = parse_user(rd, &users.e[i], false)))
			return rc;

	if (context) {
		ctx = find(&contexts, context);
		if (!ctx)
			return km_error_set(
				rd->y.err, KM_EINVAL,
				"%s: context %s not found; %s", rd->y.name,
				km_yaml_show_bytes(context, strlen(context),
						   &b),
				names_of(&contexts, names, sizeof names));
	} else if (!current || !*current) {
		return km_error_set(rd->y.err, KM_EINVAL,
				    "%s: no current-context, and no context "
				    "was named; %s",
				    rd->y.name,
				    names_of(&contexts, names, sizeof names));
	} else {
		ctx = find(&contexts, current);
		if (!ctx)
			return errorf_at(
				rd, v[K_CURRENT],
				"current-context: context %s not found; %s",
				km_yaml_show(v[K_CURRENT], &b),
				names_of(&contexts, names, sizeof names));
	}
	if ((rc = parse_context(rd, ctx, &clusters, &users, &cluster, &user,
				&ns)))
		return rc;
	/* Then what the chosen ones ask, into kc. */
	if ((rc = parse_cluster(rd, cluster, true)) ||
	    (user && (rc = parse_user(rd, user, true))))
		return rc;
	kc->context = ctx->name;
	kc->ns = ns && *ns ? ns : "default";
	return 0;
}

static void reset(struct km_kubeconfig *kc)
{
	memset(kc, 0, sizeof *kc);
	km_arena_init(&kc->arena, 8192);
}

void km_kubeconfig_free(struct km_kubeconfig *kc)
{
	km_arena_free(&kc->arena);
	memset(kc, 0, sizeof *kc);
}

/* The directory relative paths in the file named name resolve against,
 * made absolute (a token_file outlives a chdir); NULL for the working
 * directory as it is. */
static int base_dir(struct reader *rd, const char *name)
{
	const char *slash = name ? strrchr(name, '/') : NULL;
	char cwd[PATH_MAX];

	if (!name)
		return 0;
	if (slash && name[0] == '/') {
		rd->dir = km_arena_strndup(
			rd->y.a, name,
			slash == name ? 1 : (size_t)(slash - name));
		return rd->dir ? 0 : km_yaml_oom(&rd->y);
	}
	if (!getcwd(cwd, sizeof cwd))
		return km_error_set(rd->y.err, KM_EIO,
				    "%s: cannot find the working directory: %s",
				    rd->y.name, strerror(errno));
	if (slash)
		rd->dir = km_arena_printf(rd->y.a, "%s/%.*s", cwd,
					  (int)(slash - name), name);
	else
		rd->dir = km_arena_strdup(rd->y.a, cwd);
	return rd->dir ? 0 : km_yaml_oom(&rd->y);
}

int km_kubeconfig_parse(struct km_kubeconfig *kc, const char *text, size_t len,
			const char *name, const char *context,
			struct km_error *err)
{
	struct reader rd = {.kc = kc};
	yaml_node_t *root;
	int rc;

	reset(kc);
	rd.y = (struct km_yaml){
		.a = &kc->arena,
		.err = err,
		.depth_note = "a kubeconfig needs at most 8",
	};
	rd.y.name = km_arena_printf(&kc->arena, "kubeconfig %s",
				    name ? name : "<kubeconfig>");
	if (!rd.y.name) {
		rc = km_error_set(err, KM_ENOMEM, "kubeconfig: out of memory");
		goto fail;
	}
	if ((rc = base_dir(&rd, name)))
		goto fail;
	rc = km_yaml_load(&rd.y, text, len, &root);
	if (!rc)
		rc = parse_doc(&rd, root, context);
	km_yaml_unload(&rd.y);
	if (rc)
		goto fail;
	if (name && !(kc->path = km_arena_strdup(&kc->arena, name))) {
		rc = km_error_set(err, KM_ENOMEM, "kubeconfig: out of memory");
		goto fail;
	}
	return 0;
fail:
	km_kubeconfig_free(kc);
	return rc;
}

int km_kubeconfig_load(struct km_kubeconfig *kc, const char *path,
		       const char *context, struct km_error *err)
{
	char *text;
	size_t len;
	int rc;

	memset(kc, 0, sizeof *kc);
	rc = km_file_read(path, KM_KUBECONFIG_MAX_FILE, "a kubeconfig", &text,
			  &len, NULL, err);
	if (rc) {
		km_error_prefix(err, "kubeconfig");
		return rc;
	}
	rc = km_kubeconfig_parse(kc, text, len, path, context, err);
	free(text);
	return rc;
}

/* ---- in a pod ---------------------------------------------------------- */

static bool port_ok(const char *s)
{
	long v = 0;

	if (!*s || strlen(s) > 5)
		return false;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9')
			return false;
		v = v * 10 + (*c - '0');
	}
	return v >= 1 && v <= 65535;
}

static bool host_ok(const char *s)
{
	if (!*s)
		return false;
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f ||
		    strchr("/?#@[]\\", *c))
			return false;
	return true;
}

/* The service account's file name in dir into *out (trimmed if text);
 * *out NULL if missing_ok and it does not exist. */
static int sa_file(struct km_kubeconfig *kc, const char *dir, const char *name,
		   size_t max, const char *what, bool text, bool missing_ok,
		   const char **path, const char **out, size_t *len,
		   struct km_error *err)
{
	char *buf, *t;
	int rc;

	*out = NULL;
	*path = km_arena_printf(&kc->arena, "%s/%s", dir, name);
	if (!*path)
		return km_error_set(err, KM_ENOMEM,
				    "in-cluster config: out of "
				    "memory");
	rc = km_file_read(*path, max, what, &buf, len, NULL, err);
	if (rc == KM_ENOTFOUND && missing_ok)
		return 0;
	if (rc) {
		km_error_prefix(err, "in-cluster config");
		if (err && rc != KM_ENOMEM)
			err->code = KM_EINVAL;
		return rc == KM_ENOMEM ? rc : KM_EINVAL;
	}
	t = text ? trim(buf, len) : buf;
	*out = km_arena_memdup(&kc->arena, t, *len + 1);
	free(buf);
	if (!*out)
		return km_error_set(err, KM_ENOMEM,
				    "in-cluster config: out of "
				    "memory");
	return 0;
}

int km_kubeconfig_in_cluster(struct km_kubeconfig *kc, const char *sa_dir,
			     struct km_error *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"),
		   *port = getenv("KUBERNETES_SERVICE_PORT"),
		   *pod_ns = getenv("POD_NAMESPACE"), *path, *ns;
	struct km_yaml_shown b;
	size_t len;
	int rc;

	reset(kc);
	if (!sa_dir)
		sa_dir = KM_KUBECONFIG_SA_DIR;
	if (!host || !*host || !port || !*port) {
		rc = km_error_set(err, KM_ENOTFOUND,
				  "in-cluster config: KUBERNETES_SERVICE_HOST "
				  "and KUBERNETES_SERVICE_PORT must be set "
				  "(they are in a pod)");
		goto fail;
	}
	if (!host_ok(host)) {
		rc = km_error_set(err, KM_EINVAL,
				  "in-cluster config: KUBERNETES_SERVICE_HOST="
				  "%s: not a host name or address",
				  km_yaml_show_bytes(host, strlen(host), &b));
		goto fail;
	}
	if (!port_ok(port)) {
		rc = km_error_set(err, KM_EINVAL,
				  "in-cluster config: KUBERNETES_SERVICE_PORT="
				  "%s: not a port number (1 to 65535)",
				  km_yaml_show_bytes(port, strlen(port), &b));
		goto fail;
	}
	kc->server = km_arena_printf(&kc->arena,
				     strchr(host, ':') ? "https://[%s]:%s"
						       : "https://%s:%s",
				     host, port);
	if (!kc->server) {
		rc = km_error_set(err, KM_ENOMEM,
				  "in-cluster config: out of memory");
		goto fail;
	}
	if ((rc = sa_file(kc, sa_dir, "token", KM_KUBECONFIG_MAX_TOKEN,
			  "a token file", true, false, &kc->token_file,
			  &kc->token, &len, err)))
		goto fail;
	{
		const char *fault = token_fault(kc->token, len); /* trimmed */

		if (fault) {
			rc = km_error_set(err, KM_EINVAL,
					  "in-cluster config: %s: %s",
					  kc->token_file, fault);
			goto fail;
		}
	}
	if ((rc = sa_file(kc, sa_dir, "ca.crt", KM_KUBECONFIG_MAX_CERT,
			  "a CA bundle", false, false, &path, &kc->ca_pem,
			  &kc->ca_pem_len, err)))
		goto fail;
	if (!km_pem_has_certificate(kc->ca_pem, kc->ca_pem_len)) {
		rc = km_error_set(err, KM_EINVAL,
				  "in-cluster config: %s: holds no PEM "
				  "certificate (\"-----BEGIN "
				  "CERTIFICATE-----\")",
				  path);
		goto fail;
	}
	if (pod_ns && *pod_ns) {
		kc->ns = km_arena_strdup(&kc->arena, pod_ns);
		if (!kc->ns) {
			rc = km_error_set(err, KM_ENOMEM,
					  "in-cluster config: out of memory");
			goto fail;
		}
	} else {
		if ((rc = sa_file(kc, sa_dir, "namespace", 1024,
				  "a namespace file", true, true, &path, &ns,
				  &len, err)))
			goto fail;
		kc->ns = ns && *ns ? ns : "default";
	}
	return 0;
fail:
	km_kubeconfig_free(kc);
	return rc;
}
