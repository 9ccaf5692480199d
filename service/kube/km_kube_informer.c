/*
 * List, then watch (km_kube_informer.h). One request at a time per
 * informer; every callback of the client runs on the loop, and a watch
 * line that asks for a relist (410) only marks it: the relist starts from
 * a timer, outside the client's callbacks.
 */
#include "km_kube_informer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "km_kube_decode.h"
#include "km_log.h"
#include "km_time.h"

#define PAGE_DEFAULT 500
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define WATCH_MIN_S 300 /* a watch asks to end after 5 to 10 minutes */
#define WATCH_SPREAD_S 300
#define URL_MAX 4096
#define RV_MAX 128
#define WHY_MAX (KM_ERROR_MSG_MAX + 256)
#define TREE_CHUNK (128u << 10)
#define STALL_NS (15LL * 1000000000) /* a list's stream silent this long */

struct km_kube_informer {
	struct km_loop *loop;
	struct km_kube_client *client;
	struct km_kube_source *source;
	enum km_kube_resource res;
	char path[512];
	char cluster[128]; /* for logs */
	char *selector;    /* URL-encoded, or NULL */
	size_t page_size;
	void (*changed)(void *arg);
	void (*status)(void *arg, enum km_kube_resource r, const char *why);
	void *arg;

	enum km_kube_informer_state state;
	struct km_kube_req *req;
	char rv[RV_MAX]; /* where the watch goes on from */
	char cont[URL_MAX / 2];
	bool synced, failing, relist_now, watch_saw_event;
	/* The list in progress comes as a watch's initial events; the
	 * server refused or ignored that once, so lists go in pages. */
	bool streaming, paged_only;
	/* Pods are watched in protobuf (km_kube_decode.h), unless the server
	 * answered such a watch in JSON once: then in JSON from then on. */
	bool json_only;
	int64_t last_line_ns; /* while streaming */
	struct km_timer stall;
	int64_t backoff_ms;
	int64_t watch_started_ns;
	int64_t list_started_ns;   /* this list's first page */
	size_t listed, list_pages; /* what this list brought */
	struct km_timer timer;     /* backoff, or a relist asked by a line */
	struct km_arena tree;      /* the answer being read; reset after it */
	struct km_kube_informer_stats stats;
};

static void start_list(struct km_kube_informer *inf, bool first_page);
static void stream_over(struct km_kube_informer *inf);
static void gone(struct km_kube_informer *inf);
static void start_watch(struct km_kube_informer *inf);

/* ---- paths ----------------------------------------------------------------------- */

static const struct {
	const char *group; /* "" = the core API */
	const char *name;
} resources[KM_RES_N] = {
	[KM_RES_NODE] = {"", "nodes"},
	[KM_RES_LEASE] = {"coordination.k8s.io/v1", "leases"},
	[KM_RES_POD] = {"", "pods"},
	[KM_RES_SERVICE] = {"", "services"},
	[KM_RES_ENDPOINTSLICE] = {"discovery.k8s.io/v1", "endpointslices"},
	[KM_RES_DEPLOYMENT] = {"apps/v1", "deployments"},
	[KM_RES_STATEFULSET] = {"apps/v1", "statefulsets"},
	[KM_RES_DAEMONSET] = {"apps/v1", "daemonsets"},
	[KM_RES_REPLICASET] = {"apps/v1", "replicasets"},
};

const char *km_kube_resource_name(enum km_kube_resource r)
{
	return resources[r].name;
}

const char *km_kube_resource_path(enum km_kube_resource r, const char *ns,
				  char *buf, size_t len)
{
	const char *g = resources[r].group;

	/* Nodes are cluster-scoped; node Leases live in one namespace. */
	if (r == KM_RES_NODE)
		ns = NULL;
	if (r == KM_RES_LEASE)
		ns = "kube-node-lease";
	snprintf(buf, len, "%s%s%s%s%s/%s", *g ? "/apis/" : "/api/v1",
		 *g ? g : "", ns && *ns ? "/namespaces/" : "",
		 ns && *ns ? ns : "", "", resources[r].name);
	return buf;
}

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static bool urlencode(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '~') {
			if (o + 1 >= len)
				return false;
			out[o++] = (char)ch;
		} else {
			if (o + 3 >= len)
				return false;
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return true;
}

/* ---- failing, and trying again ------------------------------------------------------ */

/* A number for spreading things out (not a secret): the kernel's, or
 * the clock's if it has none to give yet. */
static uint32_t spread(void)
{
	uint32_t r;

	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
		r = (uint32_t)km_mono_ns();
	return r;
}

static int64_t jitter(int64_t ms)
{
	/* 75% to 125% of ms. */
	return ms * 3 / 4 + (int64_t)(spread() % (uint32_t)(ms / 2 + 1));
}

/* A watch asks to end after 5 to 10 minutes: watches of many informers
 * and daemons do not end, and come back, all at once. */
static int64_t watch_timeout_s(void)
{
	return WATCH_MIN_S + spread() % WATCH_SPREAD_S;
}

static void timer_fired(struct km_loop *l, void *arg)
{
	struct km_kube_informer *inf = arg;

	(void)l;
	if (inf->relist_now || !inf->rv[0]) {
		inf->relist_now = false;
		start_list(inf, true);
	} else {
		start_watch(inf);
	}
}

static void fail(struct km_kube_informer *inf, const char *why, bool relist)
{
	stream_over(inf);
	inf->stats.failures++;
	inf->state = KM_INF_BACKOFF;
	inf->failing = true;
	km_kube_source_watching(inf->source, inf->res, false, km_now_us());
	if (relist)
		inf->rv[0] = '\0';
	if (inf->status)
		inf->status(inf->arg, inf->res, why);
	if (km_loop_timer_set(inf->loop, &inf->timer,
			      km_mono_ns() +
				      jitter(inf->backoff_ms) * 1000000LL))
		km_log(KM_LOG_ERROR,
		       "kube: cannot arm a timer; the resource is not "
		       "watched",
		       "resource", resources[inf->res].name, NULL);
	inf->backoff_ms *= 2;
	if (inf->backoff_ms > BACKOFF_MAX_MS)
		inf->backoff_ms = BACKOFF_MAX_MS;
}

static void healthy(struct km_kube_informer *inf)
{
	inf->backoff_ms = BACKOFF_MIN_MS;
	if (inf->failing) {
		inf->failing = false;
		if (inf->status)
			inf->status(inf->arg, inf->res, NULL);
	}
}

/* What went wrong with an answer, in words: the Status's message when
 * the server sent one. */
static void explain(long status, const char *body, size_t len,
		    const struct km_error *err, const char *what, char *out,
		    size_t n)
{
	struct km_kube_status st;
	struct km_arena a;

	if (err) {
		snprintf(out, n, "%s: %s", what, err->msg);
		return;
	}
	km_arena_init(&a, 1024);
	km_kube_parse_status(body, len, &a, &st);
	if (st.message[0])
		snprintf(out, n, "%s: HTTP %ld %s: %s", what, status, st.reason,
			 st.message);
	else
		snprintf(out, n, "%s: HTTP %ld", what, status);
	km_arena_free(&a);
}

/* A 410: the watch's resourceVersion left the server's history, so
 * whatever changed meanwhile is known only by listing again. */
static void gone(struct km_kube_informer *inf)
{
	inf->stats.gone++;
	inf->rv[0] = '\0';
	km_log(KM_LOG_INFO, "kube: the watch's version is gone; listing again",
	       "cluster", inf->cluster, "resource", resources[inf->res].name,
	       NULL);
}

/* ---- listing ------------------------------------------------------------------------- */

/* A decoded object (rc: how its decoding went) to the source. */
static void put_object(struct km_kube_informer *inf, int rc,
		       const struct km_kube_object *o, struct km_error *err,
		       int64_t now)
{
	if (rc || km_kube_source_put(inf->source, o, now, err)) {
		inf->stats.bad_objects++;
		km_log(KM_LOG_WARN, "kube: an object is skipped", "resource",
		       resources[inf->res].name, "error", err->msg, NULL);
	}
}

static void put_item(struct km_kube_informer *inf, const km_json *item,
		     struct km_arena *a, int64_t now)
{
	struct km_kube_object o;
	struct km_error err = {0};

	put_object(inf, km_kube_decode_object(inf->res, item, a, &o, &err), &o,
		   &err, now);
}

/* A watch event's object, from its JSON or its protobuf. */
static int decode_event(struct km_kube_informer *inf,
			const struct km_kube_event *ev,
			struct km_kube_object *o, struct km_error *err)
{
	if (ev->pb_object)
		return km_kube_decode_object_pb(inf->res, ev->pb_object,
						&inf->tree, o, err);
	return km_kube_decode_object(inf->res, ev->object, &inf->tree, o, err);
}

/* Whether this resource's watches ask for protobuf. */
static bool ask_protobuf(const struct km_kube_informer *inf)
{
	return km_kube_pb_supported(inf->res) && !inf->json_only;
}

/* Every object listed: what the list did not bring is gone. */
static void list_end(struct km_kube_informer *inf, int64_t now)
{
	km_kube_source_relist_end(inf->source, inf->res, now);
	km_kube_source_watching(inf->source, inf->res, true, now);
	/* Each list's end, with what it took: the first is the informer's
	 * initial sync (bench/RESULTS.md measures it from here). */
	km_log(KM_LOG_INFO, "kube: listed", "cluster", inf->cluster, "resource",
	       resources[inf->res].name, "objects", KM_I(inf->listed), "pages",
	       KM_I(inf->list_pages), "how",
	       inf->list_pages ? "pages" : "stream", "ms",
	       KM_I((km_mono_ns() - inf->list_started_ns) / 1000000),
	       "encoding",
	       !inf->list_pages && ask_protobuf(inf) ? "protobuf" : "json",
	       NULL);
	inf->synced = true;
	healthy(inf);
	/* Synced: what waits for this resource may start now. */
	if (inf->changed)
		inf->changed(inf->arg);
}

static void list_done(void *arg, long status, const char *body, size_t len,
		      const struct km_error *err)
{
	struct km_kube_informer *inf = arg;
	struct km_kube_list l;
	struct km_error perr = {0};
	km_json *root = NULL;
	char why[WHY_MAX];
	int64_t now = km_now_us();

	inf->req = NULL;
	if (err || status != 200) {
		explain(status, body, len, err, "list", why, sizeof why);
		km_arena_free(&inf->tree); /* the pages' kept chunks */
		/* An expired continue token: the list starts over. */
		fail(inf, why, true);
		return;
	}
	if (km_kube_parse_list(body, len, &inf->tree, &root, &l, &perr)) {
		km_arena_free(&inf->tree);
		snprintf(why, sizeof why, "list: %s", perr.msg);
		fail(inf, why, true);
		return;
	}
	inf->stats.pages++;
	for (const km_json *it = km_kube_first(&l); it; it = km_kube_next(it)) {
		put_item(inf, it, &inf->tree, now);
		inf->listed++;
	}
	inf->list_pages++;
	if (strlen(l.continue_token) >= sizeof inf->cont ||
	    strlen(l.resource_version) >= sizeof inf->rv) {
		km_arena_free(&inf->tree);
		fail(inf, "list: a continue token or resourceVersion too long",
		     true);
		return;
	}
	snprintf(inf->cont, sizeof inf->cont, "%s", l.continue_token);
	if (!inf->cont[0])
		snprintf(inf->rv, sizeof inf->rv, "%s", l.resource_version);
	/* A page's tree is tens of MiB: kept for the next page of the list
	 * (not mapped and faulted in again), given back at its end. */
	if (inf->cont[0])
		km_arena_rewind(&inf->tree);
	else
		km_arena_free(&inf->tree);
	if (inf->changed)
		inf->changed(inf->arg);
	if (inf->cont[0]) {
		start_list(inf, false);
		return;
	}
	list_end(inf, now);
	start_watch(inf);
}

static void start_stream(struct km_kube_informer *inf);
static void watch_event(void *arg, enum km_kube_format f, const char *data,
			size_t len);
static void watch_done(void *arg, long status, const char *body, size_t len,
		       const struct km_error *err);

static void start_list(struct km_kube_informer *inf, bool first_page)
{
	char url[URL_MAX], enc[URL_MAX / 2 * 3];
	struct km_error err = {0};
	int n;

	inf->state = KM_INF_LISTING;
	if (first_page) {
		inf->stats.lists++;
		inf->cont[0] = '\0';
		inf->list_started_ns = km_mono_ns();
		inf->listed = inf->list_pages = 0;
		km_kube_source_relist_begin(inf->source, inf->res);
		if (!inf->paged_only) {
			start_stream(inf);
			return;
		}
	}
	n = snprintf(url, sizeof url, "%s?limit=%zu", inf->path,
		     inf->page_size);
	if (inf->selector)
		n += snprintf(url + n, sizeof url - (size_t)n,
			      "&labelSelector=%s", inf->selector);
	if (inf->cont[0] && urlencode(inf->cont, enc, sizeof enc))
		snprintf(url + n, sizeof url - (size_t)n, "&continue=%s", enc);
	if (km_kube_get(inf->client, url, list_done, inf, &inf->req, &err))
		fail(inf, err.msg, true);
}

/* The list as a watch's initial events (sendInitialEvents=true, the API
 * server's WatchList: beta and on by default since 1.32): every object
 * from the server's watch cache in one stream, each decoded as it comes
 * while the server writes the next, then a bookmark marking the end, and
 * the same stream goes on as the watch. Paged, every page of 500 is a
 * read of etcd and a 4 MiB JSON document built whole on the server:
 * 30,000 pods took twice as long (bench/RESULTS.md). A server that
 * refuses the parameters (before 1.27; or the feature turned off), or
 * ignores them and so never says the list is over, is listed in pages
 * from then on. */
static void start_stream(struct km_kube_informer *inf)
{
	char url[URL_MAX];
	struct km_error err = {0};
	int64_t t = watch_timeout_s();
	int n;

	n = snprintf(url, sizeof url,
		     "%s?watch=1&sendInitialEvents=true&"
		     "resourceVersionMatch=NotOlderThan&"
		     "allowWatchBookmarks=true&timeoutSeconds=%lld",
		     inf->path, (long long)t);
	if (inf->selector)
		snprintf(url + n, sizeof url - (size_t)n, "&labelSelector=%s",
			 inf->selector);
	inf->streaming = true;
	inf->watch_saw_event = false;
	inf->watch_started_ns = inf->last_line_ns = km_mono_ns();
	km_loop_timer_set(inf->loop, &inf->stall, inf->last_line_ns + STALL_NS);
	if (km_kube_watch(inf->client, url, t, ask_protobuf(inf), watch_event,
			  watch_done, inf, &inf->req, &err))
		fail(inf, err.msg, true);
}

static void stream_over(struct km_kube_informer *inf)
{
	inf->streaming = false;
	km_loop_timer_cancel(inf->loop, &inf->stall);
}

/* From now on this resource is listed in pages: at once, from a timer
 * (this may run inside a line of the stream, where no request starts). */
static void page_from_now(struct km_kube_informer *inf, const char *why)
{
	km_log(KM_LOG_INFO,
	       "kube: the API server streams no list; listing in pages",
	       "cluster", inf->cluster, "resource", resources[inf->res].name,
	       "why", why, NULL);
	stream_over(inf);
	km_kube_cancel(inf->req);
	inf->req = NULL;
	inf->paged_only = true;
	inf->relist_now = true;
	inf->state = KM_INF_BACKOFF;
	km_loop_timer_set(inf->loop, &inf->timer, km_mono_ns());
}

static void stall_fired(struct km_loop *l, void *arg)
{
	struct km_kube_informer *inf = arg;
	int64_t now = km_mono_ns();

	if (!inf->streaming)
		return;
	if (now - inf->last_line_ns < STALL_NS) {
		km_loop_timer_set(l, &inf->stall, inf->last_line_ns + STALL_NS);
		return;
	}
	page_from_now(inf, "no end of the initial events in 15 s");
}

/* ---- watching ------------------------------------------------------------------------ */

/* One event of the watch: a line of JSON or a frame of protobuf. */
static void watch_event(void *arg, enum km_kube_format f, const char *data,
			size_t len)
{
	struct km_kube_informer *inf = arg;
	struct km_kube_event ev;
	struct km_error err = {0};
	km_json *root = NULL;
	int64_t now = km_now_us();
	int rc;

	if (inf->streaming)
		inf->last_line_ns = km_mono_ns();
	if (f == KM_KUBE_JSON && ask_protobuf(inf)) {
		/* Asked for protobuf, answered in JSON: this request goes on
		 * in JSON, and the next ones ask for it (no request starts
		 * here: this runs inside the client's callback). */
		inf->json_only = true;
		km_log(KM_LOG_INFO,
		       "kube: the API server answers no protobuf; watching in "
		       "JSON",
		       "cluster", inf->cluster, "resource",
		       resources[inf->res].name, NULL);
	}
	if (f == KM_KUBE_PROTOBUF)
		rc = km_kube_parse_event_pb(inf->res, data, len, &inf->tree,
					    &ev, &err);
	else
		rc = km_kube_parse_event(data, len, &inf->tree, &root, &ev,
					 &err);
	if (rc) {
		km_arena_reset(&inf->tree);
		inf->stats.bad_objects++;
		km_log(KM_LOG_WARN, "kube: a watch event is skipped",
		       "resource", resources[inf->res].name, "error", err.msg,
		       NULL);
		return;
	}
	inf->stats.events++;
	inf->watch_saw_event = true;
	if (ev.type != KM_EV_ERROR)
		km_kube_source_watching(inf->source, inf->res, true, now);
	switch (ev.type) {
	case KM_EV_ERROR:
		/* 410: the version is gone; anything else: watch again. */
		if (ev.status.code == 410) {
			gone(inf);
			inf->relist_now = true;
		}
		{
			char why[WHY_MAX];

			snprintf(why, sizeof why, "watch: %d %s: %s",
				 ev.status.code, ev.status.reason,
				 ev.status.message);
			if (ev.status.code != 410)
				km_log(KM_LOG_WARN, "kube: the watch failed",
				       "resource", resources[inf->res].name,
				       "error", why, NULL);
		}
		km_kube_cancel(inf->req);
		inf->req = NULL;
		if (inf->relist_now) {
			stream_over(inf);
			inf->state = KM_INF_BACKOFF;
			km_loop_timer_set(inf->loop, &inf->timer, km_mono_ns());
		} else {
			fail(inf, "watch: the server sent an error",
			     inf->streaming);
		}
		break;
	case KM_EV_BOOKMARK:
		inf->stats.bookmarks++;
		if (inf->streaming && ev.initial_events_end &&
		    ev.resource_version[0] &&
		    strlen(ev.resource_version) < sizeof inf->rv) {
			/* The list is over; the stream goes on as its
			 * watch, from the bookmark's version. */
			stream_over(inf);
			snprintf(inf->rv, sizeof inf->rv, "%s",
				 ev.resource_version);
			inf->state = KM_INF_WATCHING;
			list_end(inf, now);
		}
		break;
	case KM_EV_ADDED:
	case KM_EV_MODIFIED:
		if (inf->streaming && ev.type == KM_EV_MODIFIED) {
			/* Initial events are all ADDED: a server that sends
			 * a change before the list's end has ignored
			 * sendInitialEvents (a plain watch: it would never
			 * say the list is over). */
			page_from_now(inf, "a change came before the list's "
					   "end: sendInitialEvents ignored");
			break;
		}
		{
			struct km_kube_object o;

			rc = decode_event(inf, &ev, &o, &err);
			put_object(inf, rc, &o, &err, now);
		}
		inf->listed += inf->streaming;
		if (inf->changed)
			inf->changed(inf->arg);
		break;
	case KM_EV_DELETED: {
		struct km_kube_object o;

		if (inf->streaming) {
			page_from_now(inf, "a deletion came before the list's "
					   "end: sendInitialEvents ignored");
			break;
		}
		if (decode_event(inf, &ev, &o, &err)) {
			inf->stats.bad_objects++;
		} else {
			km_kube_source_delete(inf->source, inf->res, o.meta.uid,
					      now);
			if (inf->changed)
				inf->changed(inf->arg);
		}
		break;
	}
	}
	/* The initial events' versions are each object's, in no order:
	 * not a place to watch from. */
	if (ev.type != KM_EV_ERROR && !inf->streaming && ev.resource_version &&
	    ev.resource_version[0] &&
	    strlen(ev.resource_version) < sizeof inf->rv)
		snprintf(inf->rv, sizeof inf->rv, "%s", ev.resource_version);
	/* An event's tree is some KiB: its chunk is kept for the next. */
	km_arena_reset(&inf->tree);
}

static void watch_done(void *arg, long status, const char *body, size_t len,
		       const struct km_error *err)
{
	struct km_kube_informer *inf = arg;
	bool streaming = inf->streaming;
	char why[WHY_MAX];

	inf->req = NULL;
	stream_over(inf);
	if (status == 410) { /* the version is gone: list again */
		gone(inf);
		start_list(inf, true);
		return;
	}
	/* 400 or 422: a server that knows no sendInitialEvents, or has
	 * its WatchList turned off. */
	if (streaming && !err && (status == 400 || status == 422)) {
		explain(status, body, len, err, "watch", why, sizeof why);
		page_from_now(inf, why);
		return;
	}
	if (err || status != 200) {
		explain(status, body, len, err, streaming ? "list" : "watch",
			why, sizeof why);
		fail(inf, why, streaming);
		return;
	}
	if (streaming) {
		fail(inf, "list: the stream ended before its last object",
		     true);
		return;
	}
	/* The server ended it (timeoutSeconds): go on from where it was. A
	 * watch that ends at once with nothing said is no success. */
	if (inf->watch_saw_event ||
	    km_mono_ns() - inf->watch_started_ns > 30LL * 1000000000)
		healthy(inf);
	else
		inf->backoff_ms = inf->backoff_ms < BACKOFF_MAX_MS
					  ? inf->backoff_ms * 2
					  : BACKOFF_MAX_MS;
	start_watch(inf);
}

static void start_watch(struct km_kube_informer *inf)
{
	char url[URL_MAX], rv[RV_MAX * 3];
	struct km_error err = {0};
	int64_t t = watch_timeout_s();
	int n;

	if (!urlencode(inf->rv, rv, sizeof rv))
		rv[0] = '\0';
	n = snprintf(url, sizeof url,
		     "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&"
		     "timeoutSeconds=%lld",
		     inf->path, rv, (long long)t);
	if (inf->selector)
		snprintf(url + n, sizeof url - (size_t)n, "&labelSelector=%s",
			 inf->selector);
	inf->state = KM_INF_WATCHING;
	inf->watch_saw_event = false;
	inf->watch_started_ns = km_mono_ns();
	inf->stats.watches++;
	if (km_kube_watch(inf->client, url, t, ask_protobuf(inf), watch_event,
			  watch_done, inf, &inf->req, &err))
		fail(inf, err.msg, false);
}

/* ---- life ---------------------------------------------------------------------------- */

int km_kube_informer_start(struct km_loop *l,
			   const struct km_kube_informer_options *o,
			   struct km_kube_informer **out, struct km_error *err)
{
	struct km_kube_informer *inf = calloc(1, sizeof *inf);

	*out = NULL;
	if (!inf)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	inf->loop = l;
	inf->client = o->client;
	inf->source = o->source;
	inf->res = o->resource;
	inf->page_size = o->page_size ? o->page_size : PAGE_DEFAULT;
	inf->changed = o->changed;
	inf->status = o->status;
	inf->arg = o->arg;
	snprintf(inf->cluster, sizeof inf->cluster, "%s",
		 o->cluster && *o->cluster ? o->cluster : "(default)");
	inf->backoff_ms = BACKOFF_MIN_MS;
	km_timer_init(&inf->timer, timer_fired, inf);
	km_timer_init(&inf->stall, stall_fired, inf);
	/* An event's tree (a pod is about 50 KiB of cJSON nodes) fits in
	 * one chunk, which stays between events; a list page grows it. */
	km_arena_init(&inf->tree, TREE_CHUNK);
	km_kube_resource_path(o->resource, o->ns, inf->path, sizeof inf->path);
	if (o->label_selector && *o->label_selector) {
		size_t n = strlen(o->label_selector) * 3 + 1;

		inf->selector = malloc(n);
		if (!inf->selector ||
		    !urlencode(o->label_selector, inf->selector, n)) {
			free(inf->selector);
			free(inf);
			return km_error_set(err, KM_ENOMEM, "out of memory");
		}
	}
	*out = inf;
	start_list(inf, true);
	return 0;
}

void km_kube_informer_free(struct km_kube_informer *inf)
{
	if (!inf)
		return;
	km_kube_cancel(inf->req);
	km_loop_timer_cancel(inf->loop, &inf->timer);
	km_loop_timer_cancel(inf->loop, &inf->stall);
	km_arena_free(&inf->tree);
	free(inf->selector);
	free(inf);
}

bool km_kube_informer_synced(const struct km_kube_informer *inf)
{
	return inf->synced;
}

enum km_kube_informer_state
km_kube_informer_state(const struct km_kube_informer *inf)
{
	return inf->state;
}

void km_kube_informer_stats(const struct km_kube_informer *inf,
			    struct km_kube_informer_stats *out)
{
	*out = inf->stats;
}
