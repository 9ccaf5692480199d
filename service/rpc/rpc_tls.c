/*
 * TLS credentials for the listener, read again when their files change.
 *
 * The C core asks a "certificate config fetcher" for the server's
 * certificates at start and again on new handshakes; ours looks at the
 * three files (certificate chain, key, client CA) at most once a second and
 * hands the core new certificates when one of them changed (device, inode,
 * size or modification time), so a renewed certificate — cert-manager
 * rewrites a Secret's files in place — is served without a restart. A file
 * that cannot be read or does not parse is logged, and the certificates in
 * use stay.
 *
 * Files are read whole, at most RPC_TLS_FILE_MAX bytes, and must be regular
 * files (a FIFO would block the thread that opened it).
 */
#include "rpc_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "km_log.h"
#include "km_time.h"

#define RPC_TLS_FILE_MAX (1 << 20)
#define RECHECK_NS 1000000000LL

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct km_rpc_tls_state {
	char *cert_file, *key_file, *ca_file;
	pthread_mutex_t mu;
	int64_t checked;                           /* mono ns */
	struct file_id cert, key, ca;              /* what is served */
	grpc_ssl_server_certificate_config *first; /* until the core takes it */
};

/* Reads a regular file of at most RPC_TLS_FILE_MAX bytes into a
 * NUL-terminated malloc'd string, and says which file it was. */
static int read_pem(const char *path, const char *what, char **out,
		    struct file_id *id, struct km_error *err)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	char *buf;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return km_error_set(err, KM_EINVAL,
				    "tls.%s: cannot open %s: %s", what, path,
				    strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return km_error_set(err, KM_EINVAL,
				    "tls.%s: %s is not a regular file", what,
				    path);
	}
	if (st.st_size > RPC_TLS_FILE_MAX) {
		close(fd);
		return km_error_set(err, KM_EINVAL,
				    "tls.%s: %s is larger than %d bytes", what,
				    path, RPC_TLS_FILE_MAX);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	while (got < (size_t)st.st_size &&
	       (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	if (!strstr(buf, "-----BEGIN ")) {
		free(buf);
		return km_error_set(err, KM_EINVAL,
				    "tls.%s: %s holds no PEM block", what,
				    path);
	}
	*id = (struct file_id){st.st_dev, st.st_ino, st.st_size, st.st_mtim};
	*out = buf;
	return 0;
}

static bool same_file(const char *path, const struct file_id *id)
{
	struct stat st;

	if (!path)
		return true;
	if (stat(path, &st))
		return false;
	return st.st_dev == id->dev && st.st_ino == id->ino &&
	       st.st_size == id->size &&
	       st.st_mtim.tv_sec == id->mtime.tv_sec &&
	       st.st_mtim.tv_nsec == id->mtime.tv_nsec;
}

/* Reads all three files; on success *config holds them. */
static int load(struct km_rpc_tls_state *t,
		grpc_ssl_server_certificate_config **config,
		struct km_error *err)
{
	char *cert = NULL, *key = NULL, *ca = NULL;
	struct file_id cid, kid, aid = {0};
	grpc_ssl_pem_key_cert_pair pair;
	int rc;

	rc = read_pem(t->cert_file, "certFile", &cert, &cid, err);
	if (!rc)
		rc = read_pem(t->key_file, "keyFile", &key, &kid, err);
	if (!rc && t->ca_file)
		rc = read_pem(t->ca_file, "clientCAFile", &ca, &aid, err);
	if (rc)
		goto out;
	pair.private_key = key;
	pair.cert_chain = cert;
	/* The core copies what it keeps; a bad key or certificate shows at
	 * the next handshake, which fails (and is logged by the core). */
	*config = grpc_ssl_server_certificate_config_create(ca, &pair, 1);
	if (!*config) {
		rc = km_error_set(err, KM_EINVAL,
				  "tls: the certificate or key does not load");
		goto out;
	}
	t->cert = cid;
	t->key = kid;
	t->ca = aid;
out:
	if (key)
		memset(key, 0, strlen(key));
	free(cert);
	free(key);
	free(ca);
	return rc;
}

static grpc_ssl_certificate_config_reload_status
fetch(void *arg, grpc_ssl_server_certificate_config **config)
{
	struct km_rpc_tls_state *t = arg;
	grpc_ssl_certificate_config_reload_status st =
		GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
	struct km_error err = {0};
	int64_t now = km_mono_ns();

	pthread_mutex_lock(&t->mu);
	if (t->first) {
		*config = t->first;
		t->first = NULL;
		t->checked = now;
		st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
	} else if (now - t->checked >= RECHECK_NS) {
		t->checked = now;
		if (!same_file(t->cert_file, &t->cert) ||
		    !same_file(t->key_file, &t->key) ||
		    !same_file(t->ca_file, &t->ca)) {
			if (load(t, config, &err)) {
				km_log(KM_LOG_ERROR,
				       "TLS files changed but do "
				       "not load; serving the "
				       "previous certificates",
				       "err", err.msg, NULL);
				st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
			} else {
				km_log(KM_LOG_INFO, "TLS certificates reloaded",
				       "cert", t->cert_file, NULL);
				st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
			}
		}
	}
	pthread_mutex_unlock(&t->mu);
	return st;
}

void km_rpc_tls_free(struct km_rpc_tls_state *t)
{
	if (!t)
		return;
	if (t->first)
		grpc_ssl_server_certificate_config_destroy(t->first);
	pthread_mutex_destroy(&t->mu);
	free(t->cert_file);
	free(t->key_file);
	free(t->ca_file);
	free(t);
}

int km_rpc_tls_credentials(const struct km_rpc_tls *o,
			   struct km_rpc_tls_state **state,
			   grpc_server_credentials **creds,
			   struct km_error *err)
{
	struct km_rpc_tls_state *t = calloc(1, sizeof *t);
	grpc_ssl_server_credentials_options *opts;
	grpc_ssl_client_certificate_request_type req =
		!o->client_ca_file ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
		: o->require_client_cert
			? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
			: GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
	int rc;

	*state = NULL;
	*creds = NULL;
	if (!t)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	pthread_mutex_init(&t->mu, NULL);
	t->cert_file = strdup(o->cert_file ? o->cert_file : "");
	t->key_file = strdup(o->key_file ? o->key_file : "");
	t->ca_file = o->client_ca_file ? strdup(o->client_ca_file) : NULL;
	if (!t->cert_file || !t->key_file ||
	    (o->client_ca_file && !t->ca_file)) {
		km_rpc_tls_free(t);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	/* Read once now, so a missing or broken file stops the start with a
	 * message instead of failing every handshake. */
	rc = load(t, &t->first, err);
	if (rc) {
		km_rpc_tls_free(t);
		return rc;
	}
	opts = grpc_ssl_server_credentials_create_options_using_config_fetcher(
		req, fetch, t);
	*creds = opts ? grpc_ssl_server_credentials_create_with_options(opts)
		      : NULL;
	if (!*creds) {
		km_rpc_tls_free(t);
		return km_error_set(err, KM_EINTERNAL,
				    "cannot create TLS credentials");
	}
	*state = t;
	return 0;
}
