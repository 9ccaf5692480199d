/*
 * km_rpc — kubemedic's one thin layer over gRPC's C core (1.51).
 *
 * Everything of the server that knows grpc_call, completion queues and
 * byte buffers is here; the API's handlers see protobuf-c messages, km_err
 * codes and this header. (The C core's API changes between releases;
 * keeping the server in one file keeps an upgrade small. The other users
 * of the core, the gRPC health check and the client library, share
 * km_grpc_msg.h with it.)
 *
 * Model. A server has N worker threads, each with its own completion queue
 * (gRPC's advice: one queue per thread, threads = cores). Every method of
 * the table is registered with the core and kept requested on every queue,
 * so a call is served entirely by the thread whose queue it arrived on.
 * Every asynchronous operation is a batch with a tag; a tag is a struct
 * whose first member says what to do when its batch completes.
 *
 * Kinds of method:
 *  - unary: handle() runs on the worker thread and returns the response
 *    (allocated in ctx->arena, released after it is sent);
 *  - server streaming: stream_start() runs once with the request; the
 *    handler keeps the call (km_rpc_call_ref) and sends from any thread
 *    with km_rpc_stream_send, then km_rpc_stream_finish. on_done tells it
 *    when the call is over, whoever ended it;
 *  - bidirectional, one response per request: handle() runs for each
 *    request message (server reflection).
 *
 * Failures are answered with the right status: a request that does not
 * unpack is INVALID_ARGUMENT, an unknown method UNIMPLEMENTED, an oversize
 * message RESOURCE_EXHAUSTED (by the core, from max_recv_message_bytes).
 * Handlers fail with a km_err code and message; km_rpc_status_from_err
 * maps the code.
 *
 * Every request is decoded by km_grpc_decode (km_pbcheck.h) before a
 * handler sees it: within max_request_memory bytes of the arena
 * (RESOURCE_EXHAUSTED beyond), every string field valid UTF-8 without NUL
 * (INVALID_ARGUMENT naming the field path). Handlers can rely on both.
 *
 * Bounds (each 0 = none): unary calls without a deadline get
 * default_deadline_ms, longer ones are cut to max_deadline_ms (the
 * handler's ctx->deadline_mono_ns; streams keep the client's); streaming
 * calls (server streams and bidi) are counted, in all and per client
 * address (the peer gRPC reports, without its port), once the request is
 * decoded and authorized, and one over max_streams or max_streams_per_peer
 * is refused with RESOURCE_EXHAUSTED naming the limit; max_streams_per_connection is HTTP/2's
 * SETTINGS_MAX_CONCURRENT_STREAMS (calls beyond it wait in the client).
 *
 * Methods marked own_thread are served by one more thread with a
 * completion queue of its own, never by the N workers, and the workers
 * never serve them: a call that must be answered while every worker is
 * busy with slow calls (grpc.health.v1 Check: a liveness probe that
 * queued behind them would get the daemon restarted). Such handlers must
 * be quick.
 *
 * Shutdown (km_rpc_server_shutdown): stop accepting calls; end server
 * streams with UNAVAILABLE after what they have queued; let unary calls in
 * flight finish within the grace period, then cancel what is left; drain
 * and destroy the queues.
 */
#ifndef KM_RPC_H
#define KM_RPC_H

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "km_arena.h"
#include "km_error.h"

struct km_rpc_server;
struct km_rpc_call;

enum km_rpc_kind { KM_RPC_UNARY, KM_RPC_SERVER_STREAM, KM_RPC_BIDI };

struct km_rpc_ctx {
	struct km_arena *arena;   /* request, response, scratch */
	int64_t deadline_mono_ns; /* 0 = none */
	void *worker_data;        /* from options.worker_init */
	void *method_arg;         /* km_rpc_method.arg */
	struct km_rpc_call *call;
	void *identity; /* set by options.authorize, or NULL */
};

struct km_rpc_method {
	const char *path; /* "/kubemedic.v1.ProbeService/GetProbe" */
	enum km_rpc_kind kind;
	const ProtobufCMessageDescriptor *request;
	/* Unary and bidi. Set *resp (arena-allocated) and return 0, or
	 * return a km_err code with err filled. */
	int (*handle)(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
		      ProtobufCMessage **resp, struct km_error *err);
	/* Server streaming. */
	int (*stream_start)(struct km_rpc_ctx *ctx, const ProtobufCMessage *req,
			    struct km_error *err);
	void *arg;
	bool own_thread; /* unary only: served apart from the workers */
};

/* TLS for the listener (mutual TLS with client_ca_file). The files are
 * PEM, at most 1 MiB each, and are read again when they change (looked at
 * on new handshakes, at most once a second): a renewed certificate is
 * served without a restart; a file that does not parse is logged and the
 * previous certificates stay. */
struct km_rpc_tls {
	const char *cert_file;      /* the server's certificate chain */
	const char *key_file;       /* its private key */
	const char *client_ca_file; /* NULL: clients present no certificate */
	bool require_client_cert;   /* with client_ca_file: no certificate, no
	                               handshake (else a verified certificate
	                               is optional and other credentials, a
	                               bearer token, may be used) */
};

struct km_rpc_method;

/* Checks a call before its handler runs, on the worker thread, with its
 * request unpacked: 0 lets it through (ctx->identity may be set for the
 * handler), a km_err code with err filled answers the call with it. In
 * both hooks m points into options.methods (its index says which). */
typedef int (*km_rpc_authorize_fn)(void *arg, struct km_rpc_ctx *ctx,
				   const struct km_rpc_method *m,
				   const ProtobufCMessage *req,
				   struct km_error *err);
/* Told of each handled request and its outcome (0 or the km_err code the
 * call is answered with), on the worker thread, before the answer leaves:
 * for an audit trail. Not called for requests that do not unpack. */
typedef void (*km_rpc_completed_fn)(void *arg, struct km_rpc_ctx *ctx,
				    const struct km_rpc_method *m,
				    const ProtobufCMessage *req, int rc,
				    const struct km_error *err);

struct km_rpc_options {
	const char *listen; /* "127.0.0.1:7070"; port 0 = any free */
	int threads;        /* >= 1 */
	int64_t max_recv_message_bytes;
	const struct km_rpc_method *methods;
	size_t n_methods;
	/* Per worker thread, on that thread, before it serves a call. */
	int (*worker_init)(void *arg, int index, void **worker_data,
			   struct km_error *err);
	void (*worker_fini)(void *arg, void *worker_data);
	void *worker_arg;
	size_t stream_queue_max;       /* messages queued per stream; 1024 */
	const struct km_rpc_tls *tls;  /* NULL: plaintext */
	km_rpc_authorize_fn authorize; /* NULL: every call is let through */
	km_rpc_completed_fn completed; /* NULL: none */
	void *hook_arg;

	/* Bounds; 0 = none (see the top of this file). */
	int64_t default_deadline_ms;    /* unary calls without a deadline */
	int64_t max_deadline_ms;        /* unary calls: longer ones are cut */
	int max_streams;                /* streaming calls at once, in all */
	int max_streams_per_peer;       /* ... from one client address */
	int max_streams_per_connection; /* HTTP/2 concurrent streams */
	size_t max_request_memory;      /* arena bytes to decode a request */
};

/* Creates, binds and starts the server. worker_init is called for index
 * 0..threads-1 (the workers) and, when a method is own_thread, index
 * threads (its thread). */
int km_rpc_server_start(const struct km_rpc_options *o,
			struct km_rpc_server **out, struct km_error *err);
/* The bound port (useful after listening on port 0). */
int km_rpc_server_port(const struct km_rpc_server *s);
/* Graceful stop, then frees everything. NULL is accepted. */
void km_rpc_server_shutdown(struct km_rpc_server *s, int64_t grace_ms);

/* ---- server streams ----------------------------------------------------- */

/* A call lives while it has references: each batch in flight holds one,
 * and so must a stream's owner from stream_start until it is done with
 * the call (after on_done); the last unref frees it. Only a holder of a
 * reference may take another. Any thread. */
void km_rpc_call_ref(struct km_rpc_call *c);
void km_rpc_call_unref(struct km_rpc_call *c);
/* fn is called once, on a worker thread, when the call is over: finished,
 * cancelled by the client, past its deadline, or ended by shutdown. If it
 * is over already, fn runs at once on the calling thread. */
void km_rpc_call_on_done(struct km_rpc_call *c,
			 void (*fn)(void *arg, struct km_rpc_call *c),
			 void *arg);
/* fn is called on the call's worker thread each time the stream's send
 * queue has emptied (every queued message is out), until replaced with
 * NULL: a producer with much to send (a replay) sends a page and waits
 * for this before the next one, instead of flooding the queue. */
void km_rpc_call_on_drain(struct km_rpc_call *c,
			  void (*fn)(void *arg, struct km_rpc_call *c),
			  void *arg);
/* The worker_data of the thread that serves the call (for on_drain). */
void *km_rpc_call_worker_data(const struct km_rpc_call *c);

/* Queues msg (packed at once; msg may be freed after the call). Any
 * thread. KM_EUNAVAIL if the call is over or finishing; KM_EFULL if the
 * client reads too slowly (the stream is then ended with
 * RESOURCE_EXHAUSTED); KM_ENOMEM if the queue could not grow (msg is
 * dropped, the stream goes on). */
int km_rpc_stream_send(struct km_rpc_call *c, const ProtobufCMessage *msg);
/* Ends the stream after the queued messages, with code (0 = OK) and
 * message. Any thread; later calls are ignored. */
void km_rpc_stream_finish(struct km_rpc_call *c, int km_code,
			  const char *message);

/* ---- who is calling ------------------------------------------------------ */

/* What the transport says about the caller of a call. Authenticated parts
 * (the certificate's names) come from a handshake that verified the
 * certificate against the client CA; the address is only informative. */
struct km_rpc_peer {
	bool tls; /* over TLS */
	/* Without TLS only (a TLS caller is identified by its credentials,
	 * never by where it comes from; km_rpc_call_address() says that): */
	const char *address;     /* "ipv4:127.0.0.1:52066", "ipv6:[::1]:..." */
	bool loopback;           /* from a loopback address */
	const char *cert_cn;     /* the verified client certificate's
	                               common name, or NULL */
	const char **cert_names; /* its subject alternative names */
	size_t n_cert_names;
	const char **cert_orgs; /* its subject's O= values (groups) */
	size_t n_cert_orgs;
	const char *bearer; /* `authorization: Bearer <token>`, or
	                               NULL */
};

/* Fills out for the call (strings in a), in one pass over the
 * connection's properties. KM_ENOMEM. */
int km_rpc_call_peer(struct km_rpc_call *c, struct km_arena *a,
		     struct km_rpc_peer *out);

/* The caller's address, in a ("" when out of memory). */
const char *km_rpc_call_address(struct km_rpc_call *c, struct km_arena *a);

/* ---- status mapping ----------------------------------------------------- */

grpc_status_code km_rpc_status_from_err(int km_code);

#endif
