/*
 * km_kube_client — requests to one Kubernetes API server, on a km_loop.
 *
 * One client per cluster: its requests share one libcurl multi handle
 * (km_curl.h), and over TLS they are HTTP/2 streams of one connection
 * (CURLPIPE_MULTIPLEX, PIPEWAIT), so a dozen watches cost one connection.
 * Credentials are the kubeconfig's (or the pod's service account): a CA,
 * a client certificate and key, and/or a bearer token, read again from its
 * file when that is older than a minute or the server answered 401, so a
 * rotated service-account token is picked up. Every request names
 * kubemedic and its version (User-Agent).
 *
 * Requests are reads (km_kube_get, km_kube_watch) and writes
 * (km_kube_request: POST, PATCH, PUT, DELETE, with a body of at most
 * KM_KUBE_REQUEST_BODY_MAX bytes, copied), all through one path: the same
 * bucket, credentials, timeouts and bounds. A write goes out once per
 * call, on a new connection: on a reused one that died under it, libcurl
 * would send it again by itself, unseen by a caller that counts attempts.
 *
 * Throttling: requests (not the bytes of a watch) go out at most qps a
 * second with bursts of burst, as client-go's token bucket; the others
 * wait in order. A write is a request like any other. Bounds: an answer
 * is read up to KM_KUBE_BODY_MAX bytes
 * (a larger one fails the request), a watch line likewise, a watch's
 * protobuf frame up to KM_KUBE_FRAME_MAX; a GET or a write has a
 * total timeout, a watch a bound of its own (its timeoutSeconds plus a
 * margin); connecting has a timeout of its own. A request that cannot
 * start when it is made fails there (no callback); one that waited for
 * the bucket and then cannot start ends through its end callback.
 *
 * Threads: the loop's, for everything. Memory: each request's buffers,
 * freed when it ends; a request's callbacks run on the loop and never
 * after km_kube_cancel.
 */
#ifndef KM_KUBE_CLIENT_H
#define KM_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "km_error.h"
#include "km_loop.h"

struct km_kube_client_options {
	const char *name;   /* for logs: the cluster's name */
	const char *server; /* "https://10.0.0.1:6443" */
	const char *ca_pem; /* NULL: the system's store */
	size_t ca_len;
	const char *cert_pem, *key_pem; /* client certificate; NULL: none */
	size_t cert_len, key_len;
	const char *token;      /* bearer token; NULL: none */
	const char *token_file; /* read when older than 60 s; NULL: none */
	bool insecure_skip_tls_verify;
	const char *tls_server_name; /* NULL: the server's host */
	const char *user_agent;      /* "kubemedic/0.1.0" */
	double qps;                  /* 0: 20 */
	int burst;                   /* 0: 40 */
	int64_t timeout_ms;          /* a GET's or a write's; 0: 60 s */
	int64_t connect_timeout_ms;  /* 0: 10 s */
};

/* What every request to one API server carries, the client's and the
 * token reviewer's (km_kube_review.h): the server (no '/' at its end), its
 * CA, the client certificate and key, whether to verify, the user agent,
 * the bearer token and the file it is read again from. Copies. */
struct km_kube_creds {
	char *server, *user_agent;
	char *ca, *cert, *key;
	size_t ca_len, cert_len, key_len;
	bool insecure;
	char *token, *token_file;
};

/* Copies o's into c. KM_EINVAL (a server that is no http(s) URL, a
 * tls-server-name), KM_ENOMEM; c holds nothing to free on failure. */
int km_kube_creds_copy(struct km_kube_creds *c,
		       const struct km_kube_client_options *o,
		       struct km_error *err);
void km_kube_creds_free(struct km_kube_creds *c);
/* A request's TLS, identity and safety options (https/http only, no
 * redirects, no signals): all but its URL, headers (the bearer token is
 * the caller's to send) and timeouts. */
void km_kube_creds_apply(const struct km_kube_creds *c, CURL *e);

struct km_kube_client;
struct km_kube_req;

/* The end of a request: the HTTP status (0 when none came: err says
 * why), and the body (a GET's or a write's answer; for a watch, what
 * followed a status other than 200, at most 64 KiB). A 429's or 503's
 * Retry-After header: km_kube_req_retry_after, in this callback. */
typedef void (*km_kube_end_fn)(void *arg, long status, const char *body,
			       size_t len, const struct km_error *err);
/* How a watch's answer came, by its Content-Type: newline-delimited JSON,
 * or (asked for) Kubernetes' protobuf stream: length-prefixed frames. */
enum km_kube_format {
	KM_KUBE_JSON,
	KM_KUBE_PROTOBUF,
};
/* One event of a watch's answer: a line of JSON without its '\n', or a
 * protobuf frame without its 4-byte length (km_kube_parse_event_pb). */
typedef void (*km_kube_event_fn)(void *arg, enum km_kube_format f,
				 const char *data, size_t len);

/* Copies what it needs of o. KM_EINVAL (a server that is no http(s) URL),
 * KM_ENOMEM. */
int km_kube_client_new(struct km_loop *l,
		       const struct km_kube_client_options *o,
		       struct km_kube_client **out, struct km_error *err);
/* Cancels every request (no callback runs). NULL is accepted. */
void km_kube_client_free(struct km_kube_client *c);

/* GET path (with its query) of the server; end gets the whole answer. */
int km_kube_get(struct km_kube_client *c, const char *path, km_kube_end_fn end,
		void *arg, struct km_kube_req **out, struct km_error *err);
/* A watch: GET path, each event of a 200 answer to event, then end. The
 * path should carry timeoutSeconds; the request is bounded by it plus a
 * minute.
 * Asked for JSON, the answer is cut into lines. Asked for protobuf
 * (protobuf: Accept: application/vnd.kubernetes.protobuf;stream=watch,
 * then application/json), the server's Content-Type decides: protobuf is
 * cut into frames (a 4-byte big-endian length, then that many bytes; a
 * length over KM_KUBE_FRAME_MAX fails the request, read no further), and
 * anything else into lines, as JSON (a server or resource without
 * protobuf answers so). A non-200 answer's body is handed to end whole
 * (an error Status, maybe protobuf: km_kube_parse_status reads both). */
int km_kube_watch(struct km_kube_client *c, const char *path, int64_t timeout_s,
		  bool protobuf, km_kube_event_fn event, km_kube_end_fn end,
		  void *arg, struct km_kube_req **out, struct km_error *err);
/* The largest body km_kube_request sends: an action's is a few hundred
 * bytes; a whole object PUT back is rarely more than a few KiB. */
#define KM_KUBE_REQUEST_BODY_MAX (1u << 20)

/* A write: method ("POST", "PATCH", "PUT" or "DELETE"; any other is
 * KM_EINVAL) to path (with its query) of the server, with body (len
 * bytes, copied; NULL: none, as for most DELETEs) of content_type
 * ("application/json", "application/strategic-merge-patch+json", ...:
 * printable ASCII; required with a body). end gets the whole answer
 * (Accept: application/json), as for km_kube_get. KM_EINVAL (a method,
 * a path not starting with '/' or holding a space or control character,
 * a body over KM_KUBE_REQUEST_BODY_MAX, a body without a type),
 * KM_ENOMEM; *out is then NULL and no callback runs. */
int km_kube_request(struct km_kube_client *c, const char *method,
		    const char *path, const char *content_type,
		    const char *body, size_t len, km_kube_end_fn end, void *arg,
		    struct km_kube_req **out, struct km_error *err);
/* In r's end callback only: the seconds a 429's or 503's Retry-After
 * header asked to wait (a number or an HTTP date, as libcurl reads it);
 * 0 when there was none. The API server sends it with a throttled
 * request's plain-text 429 (API Priority and Fairness), whose body has no
 * Status; with a Status, details.retryAfterSeconds says the same
 * (km_kube_parse_status). */
int64_t km_kube_req_retry_after(const struct km_kube_req *r);

/* No callback of r runs after this; r is freed. */
void km_kube_cancel(struct km_kube_req *r);

struct km_kube_client_stats {
	uint64_t requests, throttled, failed, bytes, token_reads;
	uint64_t writes; /* of the requests, km_kube_request's */
};
void km_kube_client_stats(const struct km_kube_client *c,
			  struct km_kube_client_stats *out);

#endif
