/*
 * km_kubeconfig — where the Kubernetes API server is and how to reach it:
 * from a kubeconfig file (kubectl's format), or from inside a pod.
 *
 *   apiVersion: v1
 *   kind: Config
 *   clusters:
 *     - name: prod
 *       cluster:
 *         server: https://10.0.0.1:6443
 *         certificate-authority-data: LS0tLS1CRUdJTi...   # or
 *         certificate-authority: ca.crt     # relative: to the file's dir
 *         insecure-skip-tls-verify: false
 *         tls-server-name: kubernetes
 *   users:
 *     - name: admin
 *       user:
 *         client-certificate-data: ...   # or client-certificate: FILE
 *         client-key-data: ...           # or client-key: FILE
 *         token: ...                     # or tokenFile: FILE
 *   contexts:
 *     - name: prod-admin
 *       context: {cluster: prod, user: admin, namespace: shop}
 *   current-context: prod-admin
 *
 * km_kubeconfig_load reads such a file and resolves one context (the one
 * named, else current-context) into a struct km_kubeconfig: the server, the
 * CA, client certificate and key as PEM bytes (from a file or decoded from
 * the -data field), the token, the namespace ("default" when the context
 * sets none). Relative file names resolve against the kubeconfig's
 * directory, as kubectl does. Keys kubemedic does not read are ignored
 * (kubeconfigs carry extensions and preferences); what would change how
 * the server is reached and cannot be honoured is refused, naming the
 * field: a cluster's proxy-url, a user's exec or auth-provider plugin,
 * username/password, impersonation (as, as-uid, as-groups,
 * as-user-extra). Those refusals, and reading the files named, concern
 * the chosen context's cluster and user only; every entry's types and
 * base64 are checked (kubectl decodes them all too). Names must be unique
 * within clusters, users and contexts.
 *
 * tokenFile: the token is read once here (whitespace trimmed, as
 * client-go does) and wins over token; token_file keeps the resolved path
 * so that the API client re-reads it when it rotates.
 *
 * km_kubeconfig_in_cluster builds the same from a pod's environment:
 * https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (an IPv6 host
 * in brackets), and the service account's token, ca.crt and namespace in
 * /var/run/secrets/kubernetes.io/serviceaccount (token_file set: kubelet
 * rotates the token). The namespace is $POD_NAMESPACE if set, else the
 * namespace file's, else "default".
 *
 * Messages name the file, line and field: "kubeconfig /x/config:12:7:
 * users[0].user.client-key-data: not valid base64"; a context, cluster or
 * user that is not there names what is; a file that cannot be read names
 * its path and the field that named it. Bounds: the kubeconfig at most
 * KM_KUBECONFIG_MAX_FILE bytes, a certificate, key or CA file at most
 * KM_KUBECONFIG_MAX_CERT, a token file at most KM_KUBECONFIG_MAX_TOKEN;
 * regular files only (km_file.h: a FIFO would
 * block the reader).
 *
 * Ownership: every string and byte buffer of a km_kubeconfig lives in its
 * arena, released by km_kubeconfig_free; on failure nothing is kept. Both
 * loaders block on the file system (call them at start-up, or off any
 * event loop); they read the environment (in-cluster) and touch nothing
 * shared otherwise.
 */
#ifndef KM_KUBECONFIG_H
#define KM_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "km_arena.h"
#include "km_error.h"

#define KM_KUBECONFIG_MAX_FILE (4u << 20)
#define KM_KUBECONFIG_MAX_CERT (1u << 20)
#define KM_KUBECONFIG_MAX_TOKEN (64u << 10)
#define KM_KUBECONFIG_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct km_kubeconfig {
	struct km_arena arena;
	const char *path;    /* the kubeconfig read; NULL in-cluster */
	const char *context; /* the context chosen; NULL in-cluster */
	const char *cluster; /* its cluster's name; NULL in-cluster */
	const char *user;    /* its user's name; NULL for none, in-cluster */
	const char *server;  /* "https://HOST:PORT" (or http://), no '/' at
				the end */
	const char *tls_server_name; /* for SNI and verification; NULL */
	bool insecure_skip_tls_verify;
	/* PEM bytes, NUL-terminated (len without it); NULL when not given:
	 * the system's CAs, no client certificate. */
	const char *ca_pem;
	size_t ca_pem_len;
	const char *client_cert_pem;
	size_t client_cert_pem_len;
	const char *client_key_pem;
	size_t client_key_pem_len;
	const char *token;      /* bearer token; NULL for none */
	const char *token_file; /* re-read when it rotates; NULL for none */
	const char *ns;         /* the namespace: "default" when unset */
};

/* Reads the kubeconfig at path and resolves context (NULL: its
 * current-context). 0, or KM_EINVAL (the file's fault, or a context,
 * cluster or user missing), KM_ENOTFOUND (the kubeconfig does not exist),
 * KM_EIO, KM_ENOMEM, with err's message. kc is overwritten (not freed):
 * on failure it holds nothing to free. */
int km_kubeconfig_load(struct km_kubeconfig *kc, const char *path,
		       const char *context, struct km_error *err);

/* The same from len bytes of text; name is the file's name for messages
 * and relative paths (NULL: "<kubeconfig>", paths relative to the working
 * directory). */
int km_kubeconfig_parse(struct km_kubeconfig *kc, const char *text, size_t len,
			const char *name, const char *context,
			struct km_error *err);

/* In a pod: the API server from the environment, credentials from sa_dir
 * (NULL: KM_KUBECONFIG_SA_DIR). KM_ENOTFOUND when
 * KUBERNETES_SERVICE_HOST or _PORT is unset (not in a pod), KM_EINVAL for
 * what is malformed, with err's message. */
int km_kubeconfig_in_cluster(struct km_kubeconfig *kc, const char *sa_dir,
			     struct km_error *err);

/* The token in the token file at path, read now (a service account's
 * rotates; the API client and the token reviewer read it again):
 * whitespace trimmed at both ends, malloc'd into *token. KM_EINVAL when
 * it is empty, holds a NUL or a line break (it goes into an HTTP header),
 * or is larger than KM_KUBECONFIG_MAX_TOKEN; what km_file_read says of a
 * file it cannot read. Blocks on the file system. */
int km_kubeconfig_read_token(const char *path, char **token,
			     struct km_error *err);

/* Releases what kc holds; harmless twice, or on a zeroed kc. */
void km_kubeconfig_free(struct km_kubeconfig *kc);

#endif
