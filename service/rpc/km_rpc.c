/*
 * The gRPC C core behind km_rpc.h.
 *
 * Reading guide. A `struct tag` is what we hand the core with each batch;
 * when the batch completes, the worker thread that owns the queue calls
 * tag->done. Three kinds of objects carry tags:
 *  - a `pending` is one outstanding "give me the next call of method M"
 *    request on one queue; when it completes it re-arms itself and turns
 *    the new call into
 *  - a `km_rpc_call`, reference counted: each batch in flight holds a
 *    reference, so does a stream's owner. Its batches: close (the core
 *    tells us the call is over and whether it was cancelled), send, recv,
 *    status;
 *  - the server's shutdown tag.
 * Per call at most one send and one recv batch are in flight (a core
 * rule); further stream messages wait in the call's queue.
 *
 * Workers: threads 0..N-1 each keep every method requested on their own
 * queue (plus the catch-all for unknown methods); when a method is
 * own_thread, worker N keeps only those requested, and the others never
 * request them, so such a call can only land on worker N.
 *
 * Who reads the sockets. The core's epoll engine makes whichever thread
 * waits in grpc_completion_queue_next on a polling queue the one that
 * reads every connection. The workers' queues poll; worker N's does not
 * (GRPC_CQ_NON_POLLING: it only waits for its calls' events), because a
 * second poller beside busy workers hands every call from thread to thread
 * (measured: 13% more instructions per call with one worker). When no
 * worker is waiting in its queue — all are in handlers — nobody reads, and
 * worker N's calls could not even arrive: so worker N then polls a queue
 * that serves nothing else (backup_cq) for a moment, and the calls it
 * exists for are read and answered.
 *
 * Streaming calls are counted under srv->mu, in all and per client
 * address (struct peer, in a small hash table), from admission until the
 * call is over (close_done).
 */
#include "km_rpc.h"
#include "rpc_internal.h"

#include <assert.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "km_grpc_msg.h"
#include "km_hash.h"
#include "km_list.h"
#include "km_log.h"
#include "km_time.h"

struct tag {
	void (*done)(struct tag *t, bool ok);
};

#define container_of(p, type, member) \
	((type *)((char *)(p)-offsetof(type, member)))

struct method_entry {
	const struct km_rpc_method *m;
	void *handle; /* from grpc_server_register_method */
};

struct worker;

/* A client address with streaming calls open (a hash table's entry). */
#define PEER_BUCKETS 64
struct peer {
	struct peer *next;
	int streams;
	char addr[]; /* "ipv4:127.0.0.1", without the port */
};

/* One outstanding request for a new call on one queue. */
struct pending {
	struct tag tag;
	struct worker *w;
	struct method_entry *me; /* NULL: any unregistered method */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_call_details details;
};

struct worker {
	struct km_rpc_server *srv;
	int index;
	bool own; /* serves the own_thread methods, and only those */
	grpc_completion_queue *cq;
	pthread_t thread;
	bool started;
	void *data;
	struct km_arena arena;   /* unary calls, reset after each */
	struct pending *pending; /* n_methods + 1 */
};

struct km_rpc_server {
	struct km_rpc_options o;
	struct method_entry *methods;
	grpc_server *server;
	bool server_started;
	struct worker *workers;
	int n_workers;
	int port;

	grpc_completion_queue *backup_cq; /* polled by worker N, see above */
	atomic_int polling; /* workers waiting in their queue (who read) */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool shutdown_done;
	atomic_bool quitting; /* the server is shut down: drain */
	struct tag shutdown_tag;
	struct km_list streams;       /* live server streams, under mu */
	struct km_rpc_tls_state *tls; /* the listener's certificates */
	int n_streams;                /* admitted streaming calls, under mu */
	struct peer *peers[PEER_BUCKETS]; /* their addresses, under mu */
};

struct km_rpc_call {
	struct km_rpc_server *srv;
	struct worker *w;
	const struct method_entry *me;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	bool has_details;
	grpc_call_details details;
	atomic_int refs;

	pthread_mutex_t mu;
	struct tag close_tag, send_tag, status_tag, recv_tag;
	int cancelled;
	bool closed, md_sent, send_busy, finishing, status_started;
	grpc_status_code fin_code;
	grpc_slice fin_details;
	bool has_fin_details;
	grpc_byte_buffer *sending;
	grpc_byte_buffer **queue;
	size_t q_head, q_len, q_cap;
	grpc_byte_buffer *recv_buf;
	void (*on_done)(void *arg, struct km_rpc_call *c);
	void *on_done_arg;
	void (*on_drain)(void *arg, struct km_rpc_call *c);
	void *on_drain_arg;
	struct km_arena arena;      /* bidi: per request */
	struct km_list stream_link; /* srv->streams, under srv->mu */
	bool listed;       /* on srv->streams (the call's thread only) */
	struct peer *peer; /* admitted as a stream of this peer (srv->mu) */
};

/* ---- status mapping ------------------------------------------------------ */

grpc_status_code km_rpc_status_from_err(int code)
{
	switch (code) {
	case KM_OK: return GRPC_STATUS_OK;
	case KM_EINVAL: return GRPC_STATUS_INVALID_ARGUMENT;
	case KM_ENOTFOUND: return GRPC_STATUS_NOT_FOUND;
	case KM_EEXIST: return GRPC_STATUS_ALREADY_EXISTS;
	case KM_EPRECOND: return GRPC_STATUS_FAILED_PRECONDITION;
	case KM_ETOONEW: return GRPC_STATUS_FAILED_PRECONDITION;
	case KM_EUNAVAIL: return GRPC_STATUS_UNAVAILABLE;
	case KM_ENOMEM: return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case KM_EFULL: return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case KM_ECORRUPT: return GRPC_STATUS_DATA_LOSS;
	case KM_EDEADLINE: return GRPC_STATUS_DEADLINE_EXCEEDED;
	case KM_EUNIMPL: return GRPC_STATUS_UNIMPLEMENTED;
	case KM_ERANGE: return GRPC_STATUS_OUT_OF_RANGE;
	case KM_ECANCELLED: return GRPC_STATUS_CANCELLED;
	case KM_EPERM: return GRPC_STATUS_PERMISSION_DENIED;
	case KM_EAUTH: return GRPC_STATUS_UNAUTHENTICATED;
	case KM_EIO:
	case KM_EINTERNAL:
	default: return GRPC_STATUS_INTERNAL;
	}
}

/* ---- streams admitted: counted in all and per client address ------------- */

/* The client's address without its port ("ipv4:127.0.0.1:5678" ->
 * "ipv4:127.0.0.1", "ipv6:[::1]:5678" -> "ipv6:[::1]"); other forms
 * ("unix:/run/x.sock") whole. Not authenticated: for counting only.
 * malloc'd; NULL on out-of-memory. */
static char *peer_addr(grpc_call *call)
{
	char *peer = grpc_call_get_peer(call);
	size_t n = peer ? strlen(peer) : 0;
	char *out, *colon;

	if (peer &&
	    (!strncmp(peer, "ipv4:", 5) || !strncmp(peer, "ipv6:", 5))) {
		colon = strrchr(peer, ':');
		if (colon > peer + 4)
			n = (size_t)(colon - peer);
	}
	out = malloc(n + 1);
	if (out) {
		memcpy(out, peer ? peer : "", n);
		out[n] = '\0';
	}
	gpr_free(peer);
	return out;
}

/* Admits a new streaming call if the limits allow: 0, or KM_EFULL naming
 * the limit (KM_ENOMEM). The call's thread, before it starts. */
static int stream_admit(struct km_rpc_call *c, struct km_error *err)
{
	struct km_rpc_server *s = c->srv;
	struct peer **pp, *p;
	char *addr;
	size_t b;
	int rc = 0;

	assert(!c->peer);
	if (!s->o.max_streams && !s->o.max_streams_per_peer)
		return 0;
	addr = peer_addr(c->call);
	if (!addr)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	b = km_hash_str(KM_HASH_INIT, addr) % PEER_BUCKETS;
	pthread_mutex_lock(&s->mu);
	for (pp = &s->peers[b]; *pp && strcmp((*pp)->addr, addr);
	     pp = &(*pp)->next)
		;
	p = *pp;
	if (s->o.max_streams && s->n_streams >= s->o.max_streams) {
		rc = km_error_set(err, KM_EFULL,
				  "too many streams: %d are open, the most "
				  "this server takes (limits.maxStreams); "
				  "retry later",
				  s->n_streams);
	} else if (s->o.max_streams_per_peer && p &&
		   p->streams >= s->o.max_streams_per_peer) {
		rc = km_error_set(err, KM_EFULL,
				  "too many streams from %s: %d are open, the "
				  "most one client address may have "
				  "(limits.maxStreamsPerPeer); close some",
				  addr, p->streams);
	} else if (!p) {
		p = malloc(sizeof *p + strlen(addr) + 1);
		if (!p)
			rc = km_error_set(err, KM_ENOMEM, "out of memory");
		else {
			strcpy(p->addr, addr);
			p->streams = 0;
			p->next = s->peers[b];
			s->peers[b] = p;
		}
	}
	if (!rc) {
		p->streams++;
		s->n_streams++;
		c->peer = p;
	}
	pthread_mutex_unlock(&s->mu);
	free(addr);
	return rc;
}

/* The call is over: it no longer counts. */
static void stream_release(struct km_rpc_call *c)
{
	struct km_rpc_server *s = c->srv;
	struct peer *p = c->peer, **pp;

	if (!p)
		return;
	pthread_mutex_lock(&s->mu);
	assert(p->streams > 0 && s->n_streams > 0);
	s->n_streams--;
	if (--p->streams == 0) {
		pp = &s->peers[km_hash_str(KM_HASH_INIT, p->addr) %
			       PEER_BUCKETS];
		while (*pp != p)
			pp = &(*pp)->next;
		*pp = p->next;
		free(p);
	}
	pthread_mutex_unlock(&s->mu);
	c->peer = NULL;
}

/* ---- calls --------------------------------------------------------------- */

static void call_destroy(struct km_rpc_call *c)
{
	assert(atomic_load(&c->refs) == 0 && !c->listed && !c->peer);
	grpc_call_unref(c->call);
	grpc_metadata_array_destroy(&c->md);
	if (c->has_details)
		grpc_call_details_destroy(&c->details);
	if (c->has_fin_details)
		grpc_slice_unref(c->fin_details);
	if (c->sending)
		grpc_byte_buffer_destroy(c->sending);
	if (c->recv_buf)
		grpc_byte_buffer_destroy(c->recv_buf);
	for (size_t i = 0; i < c->q_len; i++)
		grpc_byte_buffer_destroy(c->queue[(c->q_head + i) % c->q_cap]);
	free(c->queue);
	km_arena_free(&c->arena);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* A reference is only ever taken by a holder of one: a count that was
 * already 0 is a call being destroyed (or freed). */
void km_rpc_call_ref(struct km_rpc_call *c)
{
	int before = atomic_fetch_add(&c->refs, 1);

	assert(before > 0);
	(void)before;
}

void km_rpc_call_unref(struct km_rpc_call *c)
{
	int before = atomic_fetch_sub(&c->refs, 1);

	assert(before > 0);
	if (before == 1)
		call_destroy(c);
}

#ifndef NDEBUG
/* The send queue is a ring of q_cap slots: q_len of them used from
 * q_head on (mu held). For asserts only. */
static inline bool queue_ok(const struct km_rpc_call *c)
{
	return c->q_len <= c->q_cap &&
	       (c->q_cap ? c->q_head < c->q_cap : c->q_head == 0 && !c->queue);
}
#endif

void km_rpc_call_on_done(struct km_rpc_call *c,
			 void (*fn)(void *arg, struct km_rpc_call *c),
			 void *arg)
{
	bool over;

	pthread_mutex_lock(&c->mu);
	over = c->closed;
	if (!over) {
		c->on_done = fn;
		c->on_done_arg = arg;
	}
	pthread_mutex_unlock(&c->mu);
	if (over)
		fn(arg, c);
}

static void start_batch(struct km_rpc_call *c, const grpc_op *ops, size_t n,
			struct tag *t)
{
	grpc_call_error e;

	km_rpc_call_ref(c);
	e = grpc_call_start_batch(c->call, ops, n, t, NULL);
	if (e != GRPC_CALL_OK) {
		/* Only a bug of ours gets here (ops in the wrong order or
		 * twice); complete the tag as failed so the books balance. */
		km_log(KM_LOG_ERROR, "grpc_call_start_batch failed", "error",
		       KM_I(e), NULL);
		t->done(t, false);
	}
}

static void set_fin(struct km_rpc_call *c, grpc_status_code code,
		    const char *msg)
{
	c->finishing = true;
	c->fin_code = code;
	if (msg && *msg) {
		c->fin_details = grpc_slice_from_copied_string(msg);
		c->has_fin_details = true;
	}
}

static void start_status_locked(struct km_rpc_call *c)
{
	grpc_op ops[2];
	size_t n = 0;

	memset(ops, 0, sizeof ops);
	if (!c->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->md_sent = true;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = c->fin_code;
	ops[n].data.send_status_from_server.status_details =
		c->has_fin_details ? &c->fin_details : NULL;
	n++;
	c->status_started = true;
	start_batch(c, ops, n, &c->status_tag);
}

static void start_send_locked(struct km_rpc_call *c, grpc_byte_buffer *bb)
{
	grpc_op ops[2];
	size_t n = 0;

	memset(ops, 0, sizeof ops);
	if (!c->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->md_sent = true;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].data.send_message.send_message = bb;
	n++;
	c->sending = bb;
	c->send_busy = true;
	start_batch(c, ops, n, &c->send_tag);
}

static void start_recv_locked(struct km_rpc_call *c)
{
	grpc_op op;

	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->recv_buf;
	start_batch(c, &op, 1, &c->recv_tag);
}

/* After a send completes or a finish is asked for: the next step. */
static void advance_locked(struct km_rpc_call *c)
{
	assert(queue_ok(c));
	if (c->send_busy || c->status_started)
		return;
	if (c->q_len && !c->closed) {
		grpc_byte_buffer *bb = c->queue[c->q_head];
		c->q_head = (c->q_head + 1) % c->q_cap;
		c->q_len--;
		start_send_locked(c, bb);
	} else if (c->finishing) {
		start_status_locked(c);
	}
}

static void drop_queue_locked(struct km_rpc_call *c)
{
	assert(queue_ok(c));
	while (c->q_len) {
		grpc_byte_buffer_destroy(c->queue[c->q_head]);
		c->q_head = (c->q_head + 1) % c->q_cap;
		c->q_len--;
	}
}

static void close_done(struct tag *t, bool ok)
{
	struct km_rpc_call *c = container_of(t, struct km_rpc_call, close_tag);
	struct km_rpc_server *s = c->srv;
	void (*fn)(void *, struct km_rpc_call *);
	void *arg;

	(void)ok;
	pthread_mutex_lock(&c->mu);
	c->closed = true;
	drop_queue_locked(c);
	fn = c->on_done;
	arg = c->on_done_arg;
	c->on_done = NULL;
	pthread_mutex_unlock(&c->mu);

	if (c->listed) {
		pthread_mutex_lock(&s->mu);
		km_list_del(&c->stream_link);
		c->listed = false;
		pthread_mutex_unlock(&s->mu);
	}
	stream_release(c);
	if (fn)
		fn(arg, c);
	km_rpc_call_unref(c);
}

static void status_done(struct tag *t, bool ok)
{
	struct km_rpc_call *c = container_of(t, struct km_rpc_call, status_tag);

	(void)ok;
	km_rpc_call_unref(c);
}

static void send_done(struct tag *t, bool ok)
{
	struct km_rpc_call *c = container_of(t, struct km_rpc_call, send_tag);
	void (*drain)(void *, struct km_rpc_call *) = NULL;
	void *drain_arg = NULL;

	pthread_mutex_lock(&c->mu);
	if (c->sending)
		grpc_byte_buffer_destroy(c->sending);
	c->sending = NULL;
	c->send_busy = false;
	if (!ok)
		drop_queue_locked(c);
	advance_locked(c);
	/* Bidi: the response is out, read the next request. */
	if (ok && c->me && c->me->m->kind == KM_RPC_BIDI && !c->send_busy &&
	    !c->finishing && !c->closed)
		start_recv_locked(c);
	if (ok && !c->send_busy && !c->finishing && !c->closed) {
		drain = c->on_drain;
		drain_arg = c->on_drain_arg;
	}
	pthread_mutex_unlock(&c->mu);
	if (drain)
		drain(drain_arg, c);
	km_rpc_call_unref(c);
}

void km_rpc_call_on_drain(struct km_rpc_call *c,
			  void (*fn)(void *arg, struct km_rpc_call *c),
			  void *arg)
{
	pthread_mutex_lock(&c->mu);
	c->on_drain = fn;
	c->on_drain_arg = arg;
	pthread_mutex_unlock(&c->mu);
}

void *km_rpc_call_worker_data(const struct km_rpc_call *c)
{
	return c->w->data;
}

int km_rpc_stream_send(struct km_rpc_call *c, const ProtobufCMessage *msg)
{
	grpc_byte_buffer *bb;
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	if (c->closed || c->finishing) {
		rc = KM_EUNAVAIL;
	} else if (c->q_len == c->srv->o.stream_queue_max) {
		set_fin(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
			"the client reads too slowly: the stream's queue is "
			"full; reconnect and resume");
		advance_locked(c);
		rc = KM_EFULL;
	} else {
		bb = km_grpc_pack(msg);
		if (!c->send_busy) {
			start_send_locked(c, bb);
		} else {
			if (c->q_len == c->q_cap) {
				size_t cap = c->q_cap ? c->q_cap * 2 : 8;
				grpc_byte_buffer **q = malloc(cap * sizeof *q);
				if (!q) {
					grpc_byte_buffer_destroy(bb);
					pthread_mutex_unlock(&c->mu);
					return KM_ENOMEM;
				}
				for (size_t i = 0; i < c->q_len; i++)
					q[i] = c->queue[(c->q_head + i) %
							c->q_cap];
				free(c->queue);
				c->queue = q;
				c->q_cap = cap;
				c->q_head = 0;
			}
			c->queue[(c->q_head + c->q_len) % c->q_cap] = bb;
			c->q_len++;
			assert(queue_ok(c) &&
			       c->q_len <= c->srv->o.stream_queue_max);
		}
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void km_rpc_stream_finish(struct km_rpc_call *c, int km_code,
			  const char *message)
{
	pthread_mutex_lock(&c->mu);
	if (!c->finishing && !c->closed) {
		set_fin(c, km_rpc_status_from_err(km_code), message);
		advance_locked(c);
	}
	pthread_mutex_unlock(&c->mu);
}

static struct km_rpc_call *call_new(struct worker *w, struct pending *p)
{
	struct km_rpc_call *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->srv = w->srv;
	c->w = w;
	c->me = p->me;
	c->call = p->call;
	c->deadline = p->deadline;
	c->md = p->md;
	if (!p->me) {
		c->details = p->details;
		c->has_details = true;
	}
	atomic_init(&c->refs, 1);
	km_list_init(&c->stream_link);
	pthread_mutex_init(&c->mu, NULL);
	c->close_tag.done = close_done;
	c->send_tag.done = send_done;
	c->status_tag.done = status_done;
	km_arena_init(&c->arena, 4096);
	return c;
}

static void start_close(struct km_rpc_call *c)
{
	grpc_op op;

	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	start_batch(c, &op, 1, &c->close_tag);
}

/* ---- the hooks: who may call, and what was done ----------------------- */

static int authorize(struct km_rpc_call *c, struct km_rpc_ctx *ctx,
		     const ProtobufCMessage *req, struct km_error *err)
{
	const struct km_rpc_options *o = &c->srv->o;

	return o->authorize ? o->authorize(o->hook_arg, ctx, c->me->m, req, err)
			    : 0;
}

static void completed(struct km_rpc_call *c, struct km_rpc_ctx *ctx,
		      const ProtobufCMessage *req, int rc,
		      const struct km_error *err)
{
	const struct km_rpc_options *o = &c->srv->o;

	if (o->completed)
		o->completed(o->hook_arg, ctx, c->me->m, req, rc, err);
}

/* "ipv4:127.x.y.z:port" or "ipv6:[::1]:port" (brackets possibly
 * percent-encoded), as grpc_call_get_peer spells them. */
static bool loopback_peer(const char *a)
{
	if (!strncmp(a, "ipv4:127.", 9))
		return true;
	return !strncmp(a, "ipv6:[::1]:", 11) ||
	       !strncmp(a, "ipv6:%5B::1%5D:", 15) ||
	       !strncmp(a, "ipv6:[::ffff:127.", 17) ||
	       !strncmp(a, "ipv6:%5B::ffff:127.", 19);
}

/* The O= values of an RFC 2253 subject ("CN=alice,O=sre,O=ops"), which
 * may escape commas in values ("O=a\,b"). */
static int subject_orgs(const char *subj, size_t len, struct km_arena *a,
			struct km_rpc_peer *out)
{
	size_t i = 0;

	while (i < len) {
		size_t start = i, j;
		char *v;

		while (i < len &&
		       !(subj[i] == ',' && (i == 0 || subj[i - 1] != '\\')))
			i++;
		/* subj[start, i) is one RDN ("O=sre"), spaces trimmed. */
		while (start < i && subj[start] == ' ')
			start++;
		if (i - start > 2 && subj[start] == 'O' &&
		    subj[start + 1] == '=') {
			const char **grown;

			v = km_arena_alloc(a, i - start - 1);
			if (!v)
				return KM_ENOMEM;
			/* "\," and the other escapes stand for the character
			 * escaped. */
			j = 0;
			for (size_t k = start + 2; k < i; k++) {
				if (subj[k] == '\\' && k + 1 < i)
					k++;
				v[j++] = subj[k];
			}
			v[j] = '\0';
			grown = km_arena_alloc(a, (out->n_cert_orgs + 1) *
							  sizeof *grown);
			if (!grown)
				return KM_ENOMEM;
			if (out->n_cert_orgs)
				memcpy(grown, out->cert_orgs,
				       out->n_cert_orgs * sizeof *grown);
			grown[out->n_cert_orgs++] = v;
			out->cert_orgs = grown;
		}
		i++; /* the comma */
	}
	return 0;
}

static char *prop_dup(struct km_arena *a, const grpc_auth_property *p)
{
	return km_arena_strndup(a, p->value, p->value_length);
}

const char *km_rpc_call_address(struct km_rpc_call *c, struct km_arena *a)
{
	char *peer = grpc_call_get_peer(c->call);
	const char *out = km_arena_strdup(a, peer ? peer : "");

	gpr_free(peer);
	return out ? out : "";
}

/* Appends p's value to the arena-allocated vector *v of *n strings. */
static int push_prop(struct km_arena *a, const grpc_auth_property *p,
		     const char ***v, size_t *n)
{
	const char **grown = km_arena_alloc(a, (*n + 1) * sizeof *grown);

	if (!grown)
		return KM_ENOMEM;
	if (*n)
		memcpy(grown, *v, *n * sizeof *grown);
	if (!(grown[*n] = prop_dup(a, p)))
		return KM_ENOMEM;
	*v = grown;
	(*n)++;
	return 0;
}

/* The names of the properties a verified certificate gives. */
static int cert_props(grpc_auth_context *ac, struct km_arena *a,
		      struct km_rpc_peer *out)
{
	grpc_auth_property_iterator it =
		grpc_auth_context_property_iterator(ac);
	const grpc_auth_property *p;
	int rc = 0;

	while (!rc && (p = grpc_auth_property_iterator_next(&it))) {
		if (strncmp(p->name, "x509_", 5))
			continue;
		if (!strcmp(p->name + 5, &GRPC_X509_CN_PROPERTY_NAME[5])) {
			if (!out->cert_cn && !(out->cert_cn = prop_dup(a, p)))
				rc = KM_ENOMEM;
		} else if (!strcmp(p->name + 5,
				   &GRPC_X509_SAN_PROPERTY_NAME[5])) {
			rc = push_prop(a, p, &out->cert_names,
				       &out->n_cert_names);
		} else if (!strcmp(p->name + 5,
				   &GRPC_X509_SUBJECT_PROPERTY_NAME[5]) &&
			   !out->n_cert_orgs) {
			rc = subject_orgs(p->value, p->value_length, a, out);
		}
	}
	return rc;
}

int km_rpc_call_peer(struct km_rpc_call *c, struct km_arena *a,
		     struct km_rpc_peer *out)
{
	grpc_auth_context *ac = grpc_call_auth_context(c->call);
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (ac) {
		grpc_auth_property_iterator it =
			grpc_auth_context_find_properties_by_name(
				ac, GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
		const grpc_auth_property *p =
			grpc_auth_property_iterator_next(&it);

		out->tls =
			p && p->value_length == 3 &&
			!memcmp(p->value, GRPC_SSL_TRANSPORT_SECURITY_TYPE, 3);
		/* Names only from a certificate the handshake verified. */
		if (out->tls && grpc_auth_context_peer_is_authenticated(ac))
			rc = cert_props(ac, a, out);
		grpc_auth_context_release(ac);
	}
	if (!rc && !out->tls) {
		out->address = km_rpc_call_address(c, a);
		out->loopback = loopback_peer(out->address);
	}

	for (size_t i = 0; !rc && i < c->md.count; i++) {
		const grpc_metadata *m = &c->md.metadata[i];
		size_t kl = GRPC_SLICE_LENGTH(m->key);
		size_t vl = GRPC_SLICE_LENGTH(m->value);
		const char *v = (const char *)GRPC_SLICE_START_PTR(m->value);

		if (kl != 13 ||
		    memcmp(GRPC_SLICE_START_PTR(m->key), "authorization", 13))
			continue;
		if (vl > 7 && !strncasecmp(v, "Bearer ", 7)) {
			if (!(out->bearer = km_arena_strndup(a, v + 7, vl - 7)))
				rc = KM_ENOMEM;
		}
		break;
	}
	return rc;
}

/* Sends a whole unary reply (or error) in one batch. */
static void reply_unary(struct km_rpc_call *c, const ProtobufCMessage *resp,
			int code, const char *msg)
{
	grpc_op ops[3];
	size_t n = 0;

	memset(ops, 0, sizeof ops);
	pthread_mutex_lock(&c->mu);
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	c->md_sent = true;
	if (!code && resp) {
		c->sending = km_grpc_pack(resp);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = c->sending;
		n++;
	}
	set_fin(c, km_rpc_status_from_err(code), code ? msg : NULL);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = c->fin_code;
	ops[n].data.send_status_from_server.status_details =
		c->has_fin_details ? &c->fin_details : NULL;
	n++;
	c->status_started = true;
	start_batch(c, ops, n, &c->status_tag);
	pthread_mutex_unlock(&c->mu);
}

/* The request of c, decoded into a (km_grpc_decode: within the memory
 * budget, strings checked). */
static int decode(struct km_rpc_call *c, grpc_byte_buffer *bb,
		  struct km_arena *a, ProtobufCMessage **req,
		  struct km_error *err)
{
	const struct km_rpc_method *m = c->me->m;
	size_t budget = c->srv->o.max_request_memory;
	int rc;

	*req = NULL;
	if (!bb)
		return km_error_set(err, KM_EINVAL, "no request message");
	rc = km_grpc_decode(m->request, bb, a, budget, req, err);
	if (rc == KM_EFULL)
		km_error_set(err, KM_EFULL,
			     "request too large: decoding the %s needs more "
			     "than %zu bytes of memory "
			     "(limits.maxRequestMemoryBytes)",
			     m->request->name, budget);
	return rc;
}

/* A unary call's deadline for its handler: the client's, or the default
 * if it gave none, and never later than the maximum from now. */
static int64_t unary_deadline(const struct km_rpc_server *s, int64_t d)
{
	int64_t now = km_mono_ns();

	if (!d && s->o.default_deadline_ms > 0)
		d = now + s->o.default_deadline_ms * 1000000;
	if (s->o.max_deadline_ms > 0 &&
	    (!d || d > now + s->o.max_deadline_ms * 1000000))
		d = now + s->o.max_deadline_ms * 1000000;
	return d;
}

static void serve_unary(struct km_rpc_call *c, grpc_byte_buffer *payload)
{
	struct worker *w = c->w;
	const struct km_rpc_method *m = c->me->m;
	struct km_rpc_ctx ctx = {.arena = &w->arena,
				 .worker_data = w->data,
				 .method_arg = m->arg,
				 .call = c};
	struct km_error err = {0};
	ProtobufCMessage *req, *resp = NULL;
	int rc;

	ctx.deadline_mono_ns =
		unary_deadline(c->srv, km_grpc_deadline_mono(c->deadline));
	rc = decode(c, payload, &w->arena, &req, &err);
	if (!rc && ctx.deadline_mono_ns && km_mono_ns() > ctx.deadline_mono_ns)
		rc = km_error_set(&err, KM_EDEADLINE,
				  "deadline exceeded before the call started");
	else if (!rc) {
		rc = authorize(c, &ctx, req, &err);
		if (!rc)
			rc = m->handle(&ctx, req, &resp, &err);
		if (!rc && !resp)
			rc = km_error_set(&err, KM_EINTERNAL,
					  "%s returned no response", m->path);
		completed(c, &ctx, req, rc, &err);
	}
	reply_unary(c, resp, rc, err.msg);
	km_arena_reset(&w->arena);
}

/* A started stream sends its initial metadata at once, even with no
 * message to send yet: the client then knows the server has taken the
 * call (a watcher is registered, nothing it asked for can be missed). */
static void send_metadata(struct km_rpc_call *c)
{
	grpc_op op;

	pthread_mutex_lock(&c->mu);
	if (!c->md_sent && !c->send_busy && !c->closed && !c->finishing) {
		memset(&op, 0, sizeof op);
		op.op = GRPC_OP_SEND_INITIAL_METADATA;
		c->md_sent = true;
		c->send_busy = true; /* a send without a message */
		start_batch(c, &op, 1, &c->send_tag);
	}
	pthread_mutex_unlock(&c->mu);
}

static void serve_stream(struct km_rpc_call *c, grpc_byte_buffer *payload)
{
	struct km_rpc_server *s = c->srv;
	struct worker *w = c->w;
	const struct km_rpc_method *m = c->me->m;
	struct km_rpc_ctx ctx = {.arena = &w->arena,
				 .worker_data = w->data,
				 .method_arg = m->arg,
				 .call = c};
	struct km_error err = {0};
	ProtobufCMessage *req;
	int rc;

	pthread_mutex_lock(&s->mu);
	km_list_add_head(&s->streams, &c->stream_link);
	c->listed = true;
	pthread_mutex_unlock(&s->mu);

	ctx.deadline_mono_ns = km_grpc_deadline_mono(c->deadline);
	/* Counted (and maybe refused) once the caller is known to be
	 * allowed: one who may not watch never takes a place. */
	rc = decode(c, payload, &w->arena, &req, &err);
	if (!rc) {
		rc = authorize(c, &ctx, req, &err);
		if (!rc)
			rc = stream_admit(c, &err);
		if (!rc)
			rc = m->stream_start(&ctx, req, &err);
		completed(c, &ctx, req, rc, &err);
	}
	if (rc)
		km_rpc_stream_finish(c, rc, err.msg);
	else
		send_metadata(c);
	km_arena_reset(&w->arena);
}

static void bidi_recv_done(struct tag *t, bool ok)
{
	struct km_rpc_call *c = container_of(t, struct km_rpc_call, recv_tag);
	const struct km_rpc_method *m = c->me->m;
	struct km_rpc_ctx ctx = {.arena = &c->arena,
				 .worker_data = c->w->data,
				 .method_arg = m->arg,
				 .call = c};
	struct km_error err = {0};
	ProtobufCMessage *req, *resp = NULL;
	grpc_byte_buffer *bb = c->recv_buf;
	int rc;

	c->recv_buf = NULL;
	if (!ok || !bb) {
		/* The client half-closed (or the call failed): done. */
		km_rpc_stream_finish(c, 0, NULL);
		km_rpc_call_unref(c);
		return;
	}
	ctx.deadline_mono_ns = km_grpc_deadline_mono(c->deadline);
	rc = decode(c, bb, &c->arena, &req, &err);
	grpc_byte_buffer_destroy(bb);
	if (!rc) {
		rc = authorize(c, &ctx, req, &err);
		if (!rc)
			rc = m->handle(&ctx, req, &resp, &err);
		completed(c, &ctx, req, rc, &err);
	}
	if (rc)
		km_rpc_stream_finish(c, rc, err.msg);
	else if (km_rpc_stream_send(c, resp) != 0)
		km_rpc_stream_finish(c, KM_EINTERNAL, "could not send");
	km_arena_reset(&c->arena);
	km_rpc_call_unref(c);
}

static void serve_bidi(struct km_rpc_call *c)
{
	struct km_error err = {0};

	if (stream_admit(c, &err)) {
		km_rpc_stream_finish(c, err.code, err.msg);
		return;
	}
	c->recv_tag.done = bidi_recv_done;
	pthread_mutex_lock(&c->mu);
	start_recv_locked(c);
	pthread_mutex_unlock(&c->mu);
}

static void serve_unknown(struct km_rpc_call *c)
{
	char msg[600];
	char *method = grpc_slice_to_c_string(c->details.method);

	snprintf(
		msg, sizeof msg,
		"unknown method %s: kubemedicd serves kubemedic.v1 "
		"HealthService, ProbeService, RecoveryService and AuditService, "
		"grpc.health.v1.Health and server reflection",
		method);
	gpr_free(method);
	reply_unary(c, NULL, KM_EUNIMPL, msg);
}

/* ---- pending requests ---------------------------------------------------- */

static void arm(struct pending *p);

static void pending_done(struct tag *t, bool ok)
{
	struct pending *p = container_of(t, struct pending, tag);
	grpc_byte_buffer *payload = p->payload;
	struct km_rpc_call *c;

	if (!ok) {
		/* The server is shutting down: this request is withdrawn. */
		grpc_metadata_array_destroy(&p->md);
		if (!p->me)
			grpc_call_details_destroy(&p->details);
		if (p->payload)
			grpc_byte_buffer_destroy(p->payload);
		p->call = NULL;
		return;
	}
	c = call_new(p->w, p);
	p->payload = NULL;
	arm(p); /* the next call of this method, on this queue */
	if (!c) {
		km_log(KM_LOG_ERROR, "out of memory for a call", NULL);
		if (payload)
			grpc_byte_buffer_destroy(payload);
		return;
	}
	start_close(c);
	if (!c->me) {
		serve_unknown(c);
	} else {
		switch (c->me->m->kind) {
		case KM_RPC_UNARY: serve_unary(c, payload); break;
		case KM_RPC_SERVER_STREAM: serve_stream(c, payload); break;
		case KM_RPC_BIDI: serve_bidi(c); break;
		}
	}
	if (payload)
		grpc_byte_buffer_destroy(payload);
	km_rpc_call_unref(c); /* the dispatcher's reference */
}

static void arm(struct pending *p)
{
	struct km_rpc_server *s = p->w->srv;
	grpc_call_error e;

	p->call = NULL;
	p->payload = NULL;
	grpc_metadata_array_init(&p->md);
	if (p->me) {
		e = grpc_server_request_registered_call(
			s->server, p->me->handle, &p->call, &p->deadline,
			&p->md,
			p->me->m->kind == KM_RPC_BIDI ? NULL : &p->payload,
			p->w->cq, p->w->cq, &p->tag);
	} else {
		grpc_call_details_init(&p->details);
		e = grpc_server_request_call(s->server, &p->call, &p->details,
					     &p->md, p->w->cq, p->w->cq,
					     &p->tag);
	}
	if (e != GRPC_CALL_OK) {
		/* Refused once the server is shutting down. */
		grpc_metadata_array_destroy(&p->md);
		if (!p->me)
			grpc_call_details_destroy(&p->details);
	}
}

/* ---- workers ------------------------------------------------------------- */

/* A worker shuts its own queue down, once the server is shut down and the
 * queue has been empty for a moment: only then can no handler of this
 * thread still be about to start a batch (a handler that was running when
 * the server finished shutting down replies when it returns, and a queue
 * must not be shut down before that reply is started). */
static gpr_timespec after_ms(int ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct km_rpc_server *s = w->srv;
	bool cq_down = false;

	pthread_setname_np(pthread_self(), w->own ? "km-rpc-own" : "km-rpc");

	for (;;) {
		/* Nothing wakes a worker whose queue is idle when the server is
		 * done, so it looks at `quitting` every tenth of a second;
		 * worker N looks every 50 ms whether the workers still read. */
		gpr_timespec deadline =
			cq_down ? gpr_inf_future(GPR_CLOCK_REALTIME)
				: after_ms(w->own ? 50 : 100);
		grpc_event ev;

		if (!w->own)
			atomic_fetch_add(&s->polling, 1);
		ev = grpc_completion_queue_next(w->cq, deadline, NULL);
		if (!w->own)
			atomic_fetch_sub(&s->polling, 1);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_QUEUE_TIMEOUT) {
			/* An empty queue after the shutdown: no handler of
			 * this thread can still be about to start a batch. */
			if (atomic_load(&s->quitting)) {
				grpc_completion_queue_shutdown(w->cq);
				cq_down = true;
			} else if (w->own && !atomic_load(&s->polling)) {
				/* Every worker is in a handler: read the
				 * sockets for a while (what arrives for this
				 * thread is queued on w->cq, next turn). */
				grpc_completion_queue_next(s->backup_cq,
							   after_ms(10), NULL);
			}
			continue;
		}
		if (ev.type == GRPC_OP_COMPLETE)
			((struct tag *)ev.tag)->done(ev.tag, ev.success);
	}
	return NULL;
}

static void shutdown_done(struct tag *t, bool ok)
{
	struct km_rpc_server *s =
		container_of(t, struct km_rpc_server, shutdown_tag);

	(void)ok;
	pthread_mutex_lock(&s->mu);
	s->shutdown_done = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Waits for the shutdown tag until deadline_ns (0 = forever). */
static bool wait_shutdown(struct km_rpc_server *s, int64_t deadline_ns)
{
	bool done;

	pthread_mutex_lock(&s->mu);
	while (!s->shutdown_done) {
		if (deadline_ns) {
			int64_t left = deadline_ns - km_mono_ns();
			struct timespec ts;

			if (left <= 0)
				break;
			ts = km_realtime_after(left);
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		} else {
			pthread_cond_wait(&s->cv, &s->mu);
		}
	}
	done = s->shutdown_done;
	pthread_mutex_unlock(&s->mu);
	return done;
}

static void destroy(struct km_rpc_server *s)
{
	atomic_store(&s->quitting, true);
	for (int i = 0; i < s->n_workers; i++) {
		struct worker *w = &s->workers[i];

		if (!w->cq)
			continue;
		if (w->started) {
			pthread_join(w->thread, NULL);
		} else {
			grpc_completion_queue_shutdown(w->cq);
			worker_main(w); /* drain to SHUTDOWN */
		}
	}
	if (s->server)
		grpc_server_destroy(s->server);
	if (s->backup_cq) {
		grpc_completion_queue_shutdown(s->backup_cq);
		while (grpc_completion_queue_next(
			       s->backup_cq, gpr_inf_future(GPR_CLOCK_REALTIME),
			       NULL)
			       .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(s->backup_cq);
	}
	/* The server held the fetcher; it is gone now. */
	km_rpc_tls_free(s->tls);
	for (int i = 0; i < s->n_workers; i++) {
		struct worker *w = &s->workers[i];

		if (w->cq)
			grpc_completion_queue_destroy(w->cq);
		if (s->o.worker_fini && w->data)
			s->o.worker_fini(s->o.worker_arg, w->data);
		km_arena_free(&w->arena);
		free(w->pending);
	}
	free(s->workers);
	free(s->methods);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
	grpc_shutdown();
}

void km_rpc_server_shutdown(struct km_rpc_server *s, int64_t grace_ms)
{
	struct km_list *pos;

	if (!s)
		return;
	if (s->server_started) {
		/* Stop accepting; end live streams after what they queued. */
		grpc_server_shutdown_and_notify(s->server, s->workers[0].cq,
						&s->shutdown_tag);
		pthread_mutex_lock(&s->mu);
		km_list_for_each (pos, &s->streams)
			km_rpc_stream_finish(
				km_list_entry(pos, struct km_rpc_call,
					      stream_link),
				KM_EUNAVAIL, "kubemedicd is shutting down");
		pthread_mutex_unlock(&s->mu);
		if (!wait_shutdown(s, km_mono_ns() + grace_ms * 1000000)) {
			km_log(KM_LOG_WARN,
			       "grace period over: cancelling calls in flight",
			       "grace_ms", KM_I(grace_ms), NULL);
			grpc_server_cancel_all_calls(s->server);
			wait_shutdown(s, 0);
		}
	}
	destroy(s);
}

/* ---- start --------------------------------------------------------------- */

static grpc_completion_queue *new_cq(grpc_cq_polling_type polling)
{
	grpc_completion_queue_attributes attr = {
		.version = 1,
		.cq_completion_type = GRPC_CQ_NEXT,
		.cq_polling_type = polling,
	};

	return grpc_completion_queue_create(
		grpc_completion_queue_factory_lookup(&attr), &attr, NULL);
}

int km_rpc_server_start(const struct km_rpc_options *o,
			struct km_rpc_server **out, struct km_error *err)
{
	struct km_rpc_server *s;
	grpc_server_credentials *creds;
	grpc_arg arg[3];
	grpc_channel_args args;
	bool own = false;
	int rc = 0;

	*out = NULL;
	if (o->threads < 1)
		return km_error_set(err, KM_EINVAL, "threads must be >= 1");
	for (size_t i = 0; i < o->n_methods; i++) {
		if (o->methods[i].own_thread &&
		    o->methods[i].kind != KM_RPC_UNARY)
			return km_error_set(err, KM_EINVAL,
					    "%s: only unary methods can have a "
					    "thread of their own",
					    o->methods[i].path);
		own |= o->methods[i].own_thread;
	}
	grpc_init();
	s = calloc(1, sizeof *s);
	if (!s) {
		grpc_shutdown();
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	km_list_init(&s->streams);
	s->o = *o;
	if (!s->o.stream_queue_max)
		s->o.stream_queue_max = 1024;
	s->shutdown_tag.done = shutdown_done;
	s->n_workers = o->threads + (own ? 1 : 0);
	s->workers = calloc((size_t)s->n_workers, sizeof *s->workers);
	s->methods = calloc(o->n_methods + 1, sizeof *s->methods);
	if (!s->workers || !s->methods) {
		rc = km_error_set(err, KM_ENOMEM, "out of memory");
		goto fail;
	}

	/* No SO_REUSEPORT: a second server on our port must fail loudly, not
	 * silently take half of the connections. */
	args.num_args = 0;
	args.args = arg;
	arg[args.num_args].type = GRPC_ARG_INTEGER;
	arg[args.num_args].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;
	arg[args.num_args++].value.integer = 0;
	if (o->max_recv_message_bytes > 0) {
		arg[args.num_args].type = GRPC_ARG_INTEGER;
		arg[args.num_args].key =
			(char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
		arg[args.num_args++].value.integer =
			(int)o->max_recv_message_bytes;
	}
	if (o->max_streams_per_connection > 0) {
		arg[args.num_args].type = GRPC_ARG_INTEGER;
		arg[args.num_args].key =
			(char *)GRPC_ARG_MAX_CONCURRENT_STREAMS;
		arg[args.num_args++].value.integer =
			o->max_streams_per_connection;
	}
	s->server = grpc_server_create(&args, NULL);
	if (own) {
		s->backup_cq = new_cq(GRPC_CQ_DEFAULT_POLLING);
		grpc_server_register_completion_queue(s->server, s->backup_cq,
						      NULL);
	}

	for (int i = 0; i < s->n_workers; i++) {
		struct worker *w = &s->workers[i];

		w->srv = s;
		w->index = i;
		w->own = i == o->threads;
		km_arena_init(&w->arena, 16384);
		w->cq = new_cq(w->own ? GRPC_CQ_NON_POLLING
				      : GRPC_CQ_DEFAULT_POLLING);
		grpc_server_register_completion_queue(s->server, w->cq, NULL);
		w->pending = calloc(o->n_methods + 1, sizeof *w->pending);
		if (!w->pending) {
			rc = km_error_set(err, KM_ENOMEM, "out of memory");
			goto fail;
		}
		if (o->worker_init) {
			rc = o->worker_init(o->worker_arg, i, &w->data, err);
			if (rc)
				goto fail;
		}
	}
	for (size_t i = 0; i < o->n_methods; i++) {
		const struct km_rpc_method *m = &o->methods[i];

		s->methods[i].m = m;
		s->methods[i].handle = grpc_server_register_method(
			s->server, m->path, NULL,
			m->kind == KM_RPC_BIDI
				? GRPC_SRM_PAYLOAD_NONE
				: GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
			0);
		if (!s->methods[i].handle) {
			rc = km_error_set(err, KM_EINTERNAL,
					  "cannot register method %s", m->path);
			goto fail;
		}
	}

	if (o->tls) {
		rc = km_rpc_tls_credentials(o->tls, &s->tls, &creds, err);
		if (rc)
			goto fail;
	} else {
		creds = grpc_insecure_server_credentials_create();
	}
	s->port = grpc_server_add_http2_port(s->server, o->listen, creds);
	grpc_server_credentials_release(creds);
	if (s->port == 0) {
		rc = km_error_set(err, KM_EUNAVAIL,
				  "cannot listen on %s: the address is in use, "
				  "not local, or not HOST:PORT",
				  o->listen);
		goto fail;
	}
	grpc_server_start(s->server);
	s->server_started = true;

	for (int i = 0; i < s->n_workers; i++) {
		struct worker *w = &s->workers[i];

		for (size_t k = 0; k <= o->n_methods; k++) {
			struct pending *p = &w->pending[k];

			p->tag.done = pending_done;
			p->w = w;
			p->me = k < o->n_methods ? &s->methods[k] : NULL;
			/* Each method on the workers or on its own thread;
			 * unknown methods on the workers. */
			if (p->me ? p->me->m->own_thread == w->own : !w->own)
				arm(p);
		}
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			rc = km_error_set(err, KM_EIO,
					  "cannot start worker thread");
			goto fail;
		}
		w->started = true;
	}
	*out = s;
	return 0;

fail:
	if (s->server_started) {
		/* Workers not started yet drain in destroy(). */
		grpc_server_shutdown_and_notify(s->server, s->workers[0].cq,
						&s->shutdown_tag);
		grpc_server_cancel_all_calls(s->server);
		if (!s->workers[0].started) {
			/* Nobody drains queue 0 yet: do it here. */
			for (;;) {
				grpc_event ev = grpc_completion_queue_next(
					s->workers[0].cq,
					gpr_inf_future(GPR_CLOCK_REALTIME),
					NULL);
				((struct tag *)ev.tag)->done(ev.tag, ev.success);
				if (ev.tag == &s->shutdown_tag)
					break;
			}
		}
		wait_shutdown(s, 0);
	}
	destroy(s);
	return rc;
}

int km_rpc_server_port(const struct km_rpc_server *s)
{
	return s->port;
}
