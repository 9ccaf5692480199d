/*
 * gRPC checks: grpc.health.v1.Health/Check on probe->host:probe->port,
 * success if the call is OK and the answer SERVING — the kubelet's gRPC
 * probe.
 *
 * As the kubelet does, every check dials a new connection: a fresh
 * insecure channel with a subchannel pool of its own
 * (GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, so channels to one address share no
 * connection), destroyed after its one call. The call's deadline is the
 * check's; the call fails fast (no wait-for-ready), so a refused connection
 * is reported as such rather than as a timeout.
 *
 * Completions: one completion queue per checker, drained by one thread
 * (cq_main) that hands each completion to the loop with km_loop_post; the
 * run is then finished on the loop thread (on_complete). Each call is one
 * batch of all six operations, so a run has exactly one completion.
 *
 * Results:
 *  - OK and SERVING: success, status_code 1 (SERVING);
 *  - OK and another status: GRPC_STATUS with status_code = that serving
 *    status, "health status NOT_SERVING" (UNKNOWN, SERVICE_UNKNOWN, or the
 *    number of a status this proto does not name);
 *  - OK without a (valid) response: GRPC_STATUS, status_code INTERNAL (13),
 *    as gRPC libraries report a response that does not parse;
 *  - DEADLINE_EXCEEDED: TIMEOUT, status_code 4, "timed out after N ms
 *    (DEADLINE_EXCEEDED: ...)";
 *  - UNAVAILABLE whose details (or the core's debug error string) say why
 *    the connection failed: "Connection refused" → REFUSED; unreachable
 *    network or host, reset connection → NETWORK; name resolution → DNS;
 *    status_code 14, the message is "UNAVAILABLE: " and the details;
 *  - any other status: GRPC_STATUS, status_code = the gRPC code, message
 *    "NOT_FOUND: " and the status details.
 *
 * A probe of the API (c->policy) connects only where the API's probe
 * policy allows. The C core resolves names itself, where no rule could
 * see the addresses, so such a probe's DNS name is resolved first through
 * libcurl (km_check_http_resolve, off the loop; a denied address is
 * refused there, never connected to), and the channel is made to the
 * address it yields ("ipv4:10.1.2.3:50051"), with the name as its
 * authority; an IP address is judged before the channel is made. Probes
 * of the config file keep the core's own resolution.
 *
 * Threads: start, cancel and on_complete on the loop thread; cq_main on
 * its own. destroy after the loop has stopped (and before km_loop_destroy):
 * it cancels every call, shuts the queue down, lets the thread drain it
 * and joins it, then frees every run itself — completions posted to the
 * loop but never run stay in the loop until km_loop_destroy drops them,
 * so the loop must not run again after destroy.
 * Memory: one struct grpc_run per check (channel, call, buffers), owned by
 * the checker from start until its completion has been handled, which is
 * after cancel for a cancelled run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_internal.h"
#include "grpc/health/v1/health.pb-c.h"
#include "km_check.h"
#include "km_grpc_msg.h"
#include "km_list.h"
#include "km_log.h"
#include "km_time.h"

#define HEALTH_CHECK "/grpc.health.v1.Health/Check"
/* Addresses of a name tried, at most (probes of the API). */
#define MAX_ADDRS 16
#define ST(x) GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x

struct grpc_run {
	struct km_grpc_checker *x;
	struct km_check *c; /* NULL once cancelled */
	grpc_channel *channel;
	grpc_call *call;
	grpc_metadata_array initial_md, trailing_md;
	grpc_byte_buffer *send, *recv;
	grpc_status_code status;
	grpc_slice details;
	const char *error_string; /* the core's, gpr_free */
	int ok;                   /* the batch's success, from cq_main */
	struct km_list link;      /* x->runs, once the batch is started */
	/* A name being resolved first (probes of the API): the run handed
	 * to the resolver, and the addresses it finds. */
	bool resolving;
	struct km_check sub;
	union km_check_addr addrs[MAX_ADDRS];
	size_t n_addrs;
	/* Then: the name as the channels' authority, and the addresses of
	 * the other family, tried if those of the first cannot be reached
	 * (malloc'd, or NULL). */
	char *authority;
	char *next_target;
};

struct km_grpc_checker {
	struct km_loop *loop;
	grpc_completion_queue *cq;
	pthread_t thread;
	bool thread_started;
	atomic_bool closing;
	/* Every run whose completion has not been handled (loop thread). */
	struct km_list runs;
	/* A checker of km_check_http: resolves the names of probes of the
	 * API (km_check_http_resolve). */
	void *resolver;
};

static const char *serving_name(int status)
{
	switch (status) {
	case ST(UNKNOWN): return "UNKNOWN";
	case ST(SERVING): return "SERVING";
	case ST(NOT_SERVING): return "NOT_SERVING";
	case ST(SERVICE_UNKNOWN): return "SERVICE_UNKNOWN";
	}
	return NULL;
}

/* ---- runs ---------------------------------------------------------------- */

static void run_free(struct grpc_run *r)
{
	if (r->call)
		grpc_call_unref(r->call);
	if (r->channel)
		grpc_channel_destroy(r->channel);
	grpc_metadata_array_destroy(&r->initial_md);
	grpc_metadata_array_destroy(&r->trailing_md);
	if (r->send)
		grpc_byte_buffer_destroy(r->send);
	if (r->recv)
		grpc_byte_buffer_destroy(r->recv);
	grpc_slice_unref(r->details);
	gpr_free((void *)r->error_string);
	free(r->authority);
	free(r->next_target);
	free(r);
}

/* "<prefix><text>" into res->message, text made valid UTF-8. */
static void set_message(struct km_check_result *res, const char *prefix,
			const char *text)
{
	size_t n = (size_t)snprintf(res->message, sizeof res->message, "%s",
				    prefix);

	if (n < sizeof res->message - 1)
		km_check_copy_text(res->message + n, sizeof res->message - n,
				   text, strlen(text));
}

/* Why a connection failed, from the words the core uses (its status
 * details, or its debug error string); 0 if they say nothing we know. */
static int connect_class(const char *details, const char *debug)
{
	static const struct {
		const char *words;
		int error_class;
	} known[] = {
		{"Connection refused", KM_EC_REFUSED},
		{"Network is unreachable", KM_EC_NETWORK},
		{"No route to host", KM_EC_NETWORK},
		{"Host is unreachable", KM_EC_NETWORK},
		{"Connection reset by peer", KM_EC_NETWORK},
		{"DNS resolution failed", KM_EC_DNS},
		{"Domain name not found", KM_EC_DNS},
	};

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strstr(details, known[i].words) ||
		    (debug && strstr(debug, known[i].words)))
			return known[i].error_class;
	return 0;
}

/* The verdict on a finished call. */
static void judge(struct grpc_run *r, const struct km_check *c,
		  struct km_check_result *res)
{
	Grpc__Health__V1__HealthCheckResponse *resp = NULL;
	char *details, prefix[128];
	int cls;

	memset(res, 0, sizeof *res);
	if (r->status == GRPC_STATUS_OK) {
		if (r->recv)
			resp = (Grpc__Health__V1__HealthCheckResponse *)km_grpc_unpack(
				&grpc__health__v1__health_check_response__descriptor,
				r->recv, NULL);
		if (!resp) {
			km_check_fail(res, KM_EC_GRPC_STATUS,
				      GRPC_STATUS_INTERNAL,
				      "status OK but %s HealthCheckResponse",
				      r->recv ? "a malformed" : "no");
		} else if (resp->status == ST(SERVING)) {
			res->success = true;
			res->status_code = ST(SERVING);
		} else if (serving_name(resp->status)) {
			km_check_fail(res, KM_EC_GRPC_STATUS, resp->status,
				      "health status %s",
				      serving_name(resp->status));
		} else {
			km_check_fail(res, KM_EC_GRPC_STATUS, resp->status,
				      "health status %d", resp->status);
		}
		if (resp)
			grpc__health__v1__health_check_response__free_unpacked(
				resp, NULL);
		return;
	}

	details = grpc_slice_to_c_string(r->details);
	res->success = false;
	res->status_code = r->status;
	if (r->status == GRPC_STATUS_DEADLINE_EXCEEDED) {
		res->error_class = KM_EC_TIMEOUT;
		snprintf(prefix, sizeof prefix,
			 "timed out after %lld ms (DEADLINE_EXCEEDED: ",
			 (long long)((c->deadline - c->started) / 1000000));
		set_message(res, prefix, details);
		/* Close the parenthesis if it fits. */
		if (strlen(res->message) < sizeof res->message - 1)
			strcat(res->message, ")");
	} else {
		cls = r->status == GRPC_STATUS_UNAVAILABLE
			      ? connect_class(details, r->error_string)
			      : 0;
		res->error_class = cls ? cls : KM_EC_GRPC_STATUS;
		snprintf(prefix, sizeof prefix,
			 "%s: ", km_grpc_code_name(r->status));
		set_message(res, prefix, details);
	}
	gpr_free(details);
}

static bool next_family(struct grpc_run *r);

/* The run's one completion, on the loop thread. */
static void on_complete(struct km_loop *l, void *arg)
{
	struct grpc_run *r = arg;
	struct km_check_result res;
	struct km_check *c = r->c;

	(void)l;
	km_list_del(&r->link);
	if (!c) { /* cancelled: nobody to tell */
		run_free(r);
		return;
	}
	if (!r->ok)
		/* The batch itself failed (not the call): a core problem. */
		km_check_fail(&res, KM_EC_INTERNAL, 0,
			      "the gRPC core failed the health check batch");
	else
		judge(r, c, &res);
	c->impl = NULL;
	if (r->next_target && !res.success &&
	    (res.error_class == KM_EC_REFUSED ||
	     res.error_class == KM_EC_NETWORK) &&
	    km_mono_ns() < c->deadline && next_family(r)) {
		run_free(r);
		return;
	}
	run_free(r);
	c->done(c, &res);
}

/* The checker's thread: every completion of the queue goes to the loop. */
static void *cq_main(void *arg)
{
	struct km_grpc_checker *x = arg;

	pthread_setname_np(pthread_self(), "km-grpc-probe");
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(
			x->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		struct grpc_run *r = ev.tag;

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		r->ok = ev.success;
		/* Out of memory: wait for some rather than lose the run; once
		 * destroy has begun, it frees the run itself. */
		while (km_loop_post(x->loop, on_complete, r) != 0 &&
		       !atomic_load(&x->closing)) {
			struct timespec ms = km_timespec_ns(1000000);

			nanosleep(&ms, NULL);
		}
	}
	return NULL;
}

/* ---- the checker ----------------------------------------------------------- */

static int grpc_create(const struct km_check_env *env, void **out,
		       struct km_error *err)
{
	struct km_grpc_checker *x;
	int rc;

	*out = NULL;
	x = calloc(1, sizeof *x);
	if (!x)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	rc = km_check_http.create(env, &x->resolver, err);
	if (rc) {
		free(x);
		return rc;
	}
	grpc_init();
	x->loop = env->loop;
	km_list_init(&x->runs);
	atomic_init(&x->closing, false);
	*out = x;
	return 0;
}

/* The queue and its thread come with the first gRPC check: a thread
 * waiting in grpc_completion_queue_next also polls for every other queue
 * of the process (the C core shares one poller), so an idle one would
 * cost the API server hand-offs for nothing. Loop thread only. */
static int start_queue(struct km_grpc_checker *x)
{
	int e;

	if (x->thread_started)
		return 0;
	if (!x->cq)
		x->cq = grpc_completion_queue_create_for_next(NULL);
	if (!x->cq)
		return KM_ENOMEM;
	e = pthread_create(&x->thread, NULL, cq_main, x);
	if (e) {
		km_log(KM_LOG_ERROR, "cannot start the gRPC probe thread",
		       "err", strerror(e), NULL);
		return KM_EIO;
	}
	x->thread_started = true;
	return 0;
}

static void grpc_destroy(void *checker)
{
	struct km_grpc_checker *x = checker;
	struct km_list *pos;

	if (!x)
		return;
	km_list_for_each (pos, &x->runs) {
		struct grpc_run *r = km_list_entry(pos, struct grpc_run, link);

		r->c = NULL;
		grpc_call_cancel(r->call, NULL);
	}
	atomic_store(&x->closing, true);
	if (x->cq) {
		grpc_completion_queue_shutdown(x->cq);
		/* The queue reports SHUTDOWN after every call's completion. */
		if (x->thread_started)
			pthread_join(x->thread, NULL);
		else
			cq_main(x);
	}
	/* Every completion has been taken; those the loop did not run are
	 * still listed. */
	while (!km_list_empty(&x->runs)) {
		struct grpc_run *r =
			km_list_first(&x->runs, struct grpc_run, link);

		km_list_del(&r->link);
		run_free(r);
	}
	if (x->cq)
		grpc_completion_queue_destroy(x->cq);
	/* Runs resolving were cancelled with their probes. */
	km_check_http.destroy(x->resolver);
	free(x);
	grpc_shutdown();
}

/* ---- one check ------------------------------------------------------------- */

/* Makes r's channel to target (authority, if not NULL, in place of the
 * target's) and starts its one batch. On failure r is the caller's. */
static int start_call(struct km_grpc_checker *x, struct grpc_run *r,
		      const char *target, const char *authority)
{
	struct km_check *c = r->c;
	const struct km_probe *p = c->probe;
	Grpc__Health__V1__HealthCheckRequest req =
		GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	grpc_channel_credentials *creds;
	grpc_arg args[5];
	grpc_channel_args cargs = {.num_args = 4, .args = args};
	grpc_slice method;
	gpr_timespec deadline;
	grpc_op ops[6];

	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
	args[0].value.integer = 1;
	/* One attempt, as the kubelet makes: no retries, no service config
	 * from DNS. */
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = (char *)GRPC_ARG_ENABLE_RETRIES;
	args[1].value.integer = 0;
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = (char *)GRPC_ARG_SERVICE_CONFIG_DISABLE_RESOLUTION;
	args[2].value.integer = 1;
	args[3].type = GRPC_ARG_STRING;
	args[3].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
	args[3].value.string = (char *)"kubemedic-probe";
	if (authority) {
		args[4].type = GRPC_ARG_STRING;
		args[4].key = (char *)GRPC_ARG_DEFAULT_AUTHORITY;
		args[4].value.string = (char *)authority;
		cargs.num_args = 5;
	}
	creds = grpc_insecure_credentials_create();
	r->channel = grpc_channel_create(target, creds, &cargs);
	grpc_channel_credentials_release(creds);

	deadline = km_grpc_deadline(c->deadline);
	method = grpc_slice_from_static_string(HEALTH_CHECK);
	r->call = grpc_channel_create_call(r->channel, NULL,
					   GRPC_PROPAGATE_DEFAULTS, x->cq,
					   method, NULL, deadline, NULL);
	grpc_slice_unref(method);
	if (!r->call)
		return KM_EINTERNAL;

	req.service = (char *)(p->service ? p->service : "");
	r->send = km_grpc_pack(&req.base);

	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = r->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata =
		&r->initial_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &r->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &r->trailing_md;
	ops[5].data.recv_status_on_client.status = &r->status;
	ops[5].data.recv_status_on_client.status_details = &r->details;
	ops[5].data.recv_status_on_client.error_string = &r->error_string;
	if (grpc_call_start_batch(r->call, ops, 6, r, NULL) != GRPC_CALL_OK) {
		km_log(KM_LOG_ERROR, "grpc check: the core refused the batch",
		       "probe", p->name ? p->name : "", NULL);
		return KM_EINTERNAL;
	}
	/* From here the completion owns r: it always comes. */
	km_list_add_head(&x->runs, &r->link);
	c->impl = r;
	return 0;
}

/* The C core's target for the addresses of one family among a[]:
 * "ipv4:10.1.2.3:50051,10.1.2.4:50051" or "ipv6:[fd00::1]:50051", which
 * it uses as they are (pick_first tries them in order); NULL if there are
 * none (or no memory). */
static char *family_target(const union km_check_addr *a, size_t n, int family)
{
	size_t cap = 8 + n * (INET6_ADDRSTRLEN + 10), o;
	char *t = malloc(cap);
	bool any = false;

	if (!t)
		return NULL;
	o = (size_t)snprintf(t, cap,
			     "%s:", family == AF_INET6 ? "ipv6" : "ipv4");
	for (size_t i = 0; i < n; i++) {
		char ip[INET6_ADDRSTRLEN] = "?";
		bool v6 = a[i].sa.sa_family == AF_INET6;

		if (a[i].sa.sa_family != family)
			continue;
		inet_ntop(family,
			  v6 ? (const void *)&a[i].v6.sin6_addr
			     : (const void *)&a[i].v4.sin_addr,
			  ip, sizeof ip);
		o += (size_t)snprintf(
			t + o, cap - o, v6 ? "%s[%s]:%d" : "%s%s:%d",
			any ? "," : "", ip,
			ntohs(v6 ? a[i].v6.sin6_port : a[i].v4.sin_port));
		any = true;
	}
	if (!any) {
		free(t);
		return NULL;
	}
	return t;
}

/* The first family's addresses could not be reached: a new call to the
 * other's, for the rest of the deadline, in a run of its own. False if
 * it could not be started (the caller reports the first failure). */
static bool next_family(struct grpc_run *r)
{
	struct km_grpc_checker *x = r->x;
	struct grpc_run *n = calloc(1, sizeof *n);

	if (!n)
		return false;
	n->x = x;
	n->c = r->c;
	km_list_init(&n->link);
	n->details = grpc_empty_slice();
	grpc_metadata_array_init(&n->initial_md);
	grpc_metadata_array_init(&n->trailing_md);
	n->authority = r->authority;
	r->authority = NULL;
	if (start_call(x, n, r->next_target, n->authority)) {
		run_free(n);
		return false;
	}
	return true;
}

/* The resolver's verdict on a probe of the API's name: connect to the
 * address, or report why not. */
static void resolved(struct km_check *sub, const struct km_check_result *res)
{
	struct grpc_run *r = sub->owner;
	struct km_grpc_checker *x = r->x;
	struct km_check *c = r->c;
	struct km_check_result fail;
	char *target = NULL;
	int first, rc;

	r->resolving = false;
	c->impl = NULL;
	if (!res->success) {
		run_free(r);
		c->done(c, res);
		return;
	}
	/* The family the resolver put first, then the other. */
	first = r->addrs[0].sa.sa_family;
	r->next_target = family_target(r->addrs, r->n_addrs,
				       first == AF_INET ? AF_INET6 : AF_INET);
	rc = (target = family_target(r->addrs, r->n_addrs, first)) &&
			     asprintf(&r->authority, "%s:%d", c->probe->host,
				      c->probe->port) >= 0
		     ? start_call(x, r, target, r->authority)
		     : KM_ENOMEM;
	free(target);
	if (rc) {
		run_free(r);
		km_check_fail(&fail, KM_EC_INTERNAL, 0,
			      "kubemedic could not start the check: %s",
			      km_strerror(rc));
		c->done(c, &fail);
	}
}

static int grpc_start(void *checker, struct km_check *c)
{
	struct km_grpc_checker *x = checker;
	const struct km_probe *p = c->probe;
	struct grpc_run *r;
	char *target;
	int rc;

	if (!p->host || !p->host[0] || p->port <= 0 || p->port > 65535)
		return KM_EINVAL;
	rc = start_queue(x);
	if (rc)
		return rc;
	r = calloc(1, sizeof *r);
	if (!r)
		return KM_ENOMEM;
	r->x = x;
	r->c = c;
	km_list_init(&r->link);
	r->details = grpc_empty_slice();
	grpc_metadata_array_init(&r->initial_md);
	grpc_metadata_array_init(&r->trailing_md);

	if (c->policy) {
		char host[256], why[256];
		size_t n = strlen(p->host);
		struct km_check_result res;
		socklen_t len;

		/* "[::1]" is an address too. */
		snprintf(host, sizeof host, "%.*s",
			 (int)(p->host[0] == '[' && n > 2 ? n - 2 : n),
			 p->host + (p->host[0] == '[' && n > 2));
		if (!km_check_parse_ip(host, p->port, &r->addrs[0], &len)) {
			/* A name: its address first, off the loop. */
			r->sub = *c;
			r->sub.done = resolved;
			r->sub.owner = r;
			r->sub.impl = NULL;
			r->resolving = true;
			c->impl = r;
			rc = km_check_http_resolve(x->resolver, &r->sub,
						   r->addrs, MAX_ADDRS,
						   &r->n_addrs);
			if (rc) {
				c->impl = NULL;
				run_free(r);
			}
			return rc;
		}
		if (km_probe_policy_addr(c->policy, &r->addrs[0].sa, why,
					 sizeof why)) {
			run_free(r);
			km_check_fail(&res, KM_EC_NETWORK, 0,
				      "not connected to %s:%d: %s", p->host,
				      p->port, why);
			c->done(c, &res);
			return 0;
		}
	}
	/* An IPv6 literal needs its brackets in a target. */
	if (asprintf(&target,
		     strchr(p->host, ':') && p->host[0] != '[' ? "[%s]:%d"
							       : "%s:%d",
		     p->host, p->port) < 0) {
		run_free(r);
		return KM_ENOMEM;
	}
	rc = start_call(x, r, target, NULL);
	free(target);
	if (rc)
		run_free(r);
	return rc;
}

static void grpc_cancel(void *checker, struct km_check *c)
{
	struct km_grpc_checker *x = checker;
	struct grpc_run *r = c->impl;

	if (!r)
		return;
	c->impl = NULL;
	if (r->resolving) {
		/* No call yet: the resolver's run goes, and r with it. */
		km_check_http.cancel(x->resolver, &r->sub);
		run_free(r);
		return;
	}
	r->c = NULL;
	/* The completion still comes (CANCELLED) and frees the run. */
	grpc_call_cancel(r->call, NULL);
}

const struct km_check_type km_check_grpc = {
	.name = "grpc",
	.create = grpc_create,
	.destroy = grpc_destroy,
	.start = grpc_start,
	.cancel = grpc_cancel,
};
