/*
 * bench_kube_decode — which library decodes the Kubernetes API server's
 * answers (issue 10): the time, memory and instructions it takes to turn a
 * PodList, and one watch event, into what kubemedic's pod rule reads.
 *
 *   bench_kube_decode --json LIST.json [--proto LIST.pb]
 *                     [--watch-json EVENTS.jsonl] [--watch-proto EVENTS.pb]
 *                     [--rounds N] [--only NAME] [--no-mem]
 *
 * The inputs are written by `kmctl podlist` (tests/e2e/cluster), with the
 * API server's own encoders. Candidates, each a complete decode:
 *  - jansson, json-c, cjson: the list (or one watch event's line) parsed
 *    into the library's tree, the fields below copied out, the tree freed;
 *  - protobuf-c: "k8s\0" and the runtime.Unknown envelope read in place,
 *    the PodList (or a watch frame's WatchEvent and its Pod) unpacked by
 *    protoc-c's code from the k8s.io generated.proto files, the fields
 *    copied, the message freed;
 *  - protobuf-c-arena: the same, with protobuf-c allocating from a bump
 *    arena that is dropped whole (no free per field).
 * What is copied (struct kd_pod): metadata namespace, name, uid,
 * resourceVersion, the controller ownerReference (kind, name, uid),
 * deletionTimestamp, labels; spec.nodeName; status phase, conditions (type,
 * status), containerStatuses (name, ready, restartCount,
 * state.waiting.reason, lastState.terminated.reason), podIP, startTime.
 * Strings and arrays go to an arena owned by the result, the same code for
 * every candidate; the clock includes freeing it.
 *
 * First, every candidate's result is hashed and the hashes must agree (the
 * same pods, fields and values from each encoding). Then, unless --no-mem,
 * each candidate decodes the list once in a forked child: peak heap is
 * mallinfo2's bytes in use just before the tree is freed (tree and result
 * both alive) less the bytes in use before; peak RSS is VmHWM after the
 * decode less VmRSS before it (the child resets VmHWM through
 * /proc/self/clear_refs). Then N rounds, each timing every candidate once
 * on the list and once on every watch event, in an order rotated from round
 * to round; best and median of the N rounds are printed with the ratio to
 * jansson's. --only NAME runs one candidate's decodes (for callgrind).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <jansson.h>

#include "kube_decode.h"

#ifdef KD_PROTOBUF
#include "k8s.io/api/core/v1/generated.pb-c.h"
#endif

/* ---- the result: what the pod rule needs, in one arena --------------- */

#define KD_CHUNK (256 * 1024)

void *kd_alloc(struct kd_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n > a->left) {
		size_t sz = n > KD_CHUNK ? n : KD_CHUNK;
		struct kd_chunk *c = malloc(sizeof(*c) + sz);
		if (!c)
			return NULL;
		c->next = a->head;
		a->head = c;
		a->p = c->data;
		a->left = sz;
	}
	void *r = a->p;
	a->p += n;
	a->left -= n;
	return r;
}

void kd_arena_free(struct kd_arena *a)
{
	struct kd_chunk *c = a->head;
	while (c) {
		struct kd_chunk *n = c->next;
		free(c);
		c = n;
	}
	memset(a, 0, sizeof(*a));
}

char *kd_strndup(struct kd_arena *a, const char *s, size_t n)
{
	if (!s)
		return NULL;
	char *d = kd_alloc(a, n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

static void kd_result_free(struct kd_result *r)
{
	kd_arena_free(&r->arena);
	memset(r, 0, sizeof(*r));
}

/* Unix seconds of an RFC 3339 time as metav1.Time writes it
 * ("2026-11-19T07:04:42Z", UTC, no fraction); -1 if it is not one. */
static int64_t kd_parse_time(const char *s, size_t n)
{
	int v[6];
	static const int at[6] = {0, 5, 8, 11, 14, 17};
	static const int len[6] = {4, 2, 2, 2, 2, 2};
	if (n != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return -1;
	for (int i = 0; i < 6; i++) {
		v[i] = 0;
		for (int j = 0; j < len[i]; j++) {
			char c = s[at[i] + j];
			if (c < '0' || c > '9')
				return -1;
			v[i] = v[i] * 10 + (c - '0');
		}
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return -1;
	/* days from civil (Howard Hinnant's algorithm) */
	int y = v[0] - (v[1] <= 2);
	int era = y / 400;
	int yoe = y - era * 400;
	int doy = (153 * (v[1] + (v[1] > 2 ? -3 : 9)) + 2) / 5 + v[2] - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = (int64_t)era * 146097 + doe - 719468;
	return days * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
}

/* ---- JSON: one extractor over three libraries' trees ------------------ */

static const char *jstr(const struct kd_json *j, struct kd_arena *a, void *o,
			const char *key)
{
	size_t n;
	const char *s = o ? j->str(j->get(o, key), &n) : NULL;
	return s ? kd_strndup(a, s, n) : NULL;
}

static int64_t jtime(const struct kd_json *j, void *o, const char *key)
{
	size_t n;
	const char *s = o ? j->str(j->get(o, key), &n) : NULL;
	return s ? kd_parse_time(s, n) : 0;
}

static int kd_json_pod(const struct kd_json *j, struct kd_arena *a, void *pod,
		       struct kd_pod *p)
{
	const char *k;
	void *v;
	struct kd_it it;

	memset(p, 0, sizeof(*p));
	void *md = j->get(pod, "metadata");
	if (!md)
		return -1;
	p->ns = jstr(j, a, md, "namespace");
	p->name = jstr(j, a, md, "name");
	p->uid = jstr(j, a, md, "uid");
	p->resource_version = jstr(j, a, md, "resourceVersion");
	p->deleted_at = jtime(j, md, "deletionTimestamp");
	void *owners = j->get(md, "ownerReferences");
	if (owners) {
		j->begin(owners, &it);
		while (j->next(&it, &k, &v)) {
			if (j->boolean(j->get(v, "controller")) != 1)
				continue;
			p->owner_kind = jstr(j, a, v, "kind");
			p->owner_name = jstr(j, a, v, "name");
			p->owner_uid = jstr(j, a, v, "uid");
			break;
		}
	}
	void *labels = j->get(md, "labels");
	if (labels && (p->n_labels = j->count(labels)) > 0) {
		p->labels = kd_alloc(a, p->n_labels * sizeof(*p->labels));
		size_t i = 0;
		j->begin(labels, &it);
		while (i < p->n_labels && j->next(&it, &k, &v)) {
			size_t n;
			const char *s = j->str(v, &n);
			if (!k || !s)
				continue;
			p->labels[i].key = kd_strndup(a, k, strlen(k));
			p->labels[i].value = kd_strndup(a, s, n);
			i++;
		}
		p->n_labels = i;
	}
	p->node = jstr(j, a, j->get(pod, "spec"), "nodeName");
	void *st = j->get(pod, "status");
	if (!st)
		return 0;
	p->phase = jstr(j, a, st, "phase");
	p->pod_ip = jstr(j, a, st, "podIP");
	p->start_time = jtime(j, st, "startTime");
	void *conds = j->get(st, "conditions");
	if (conds && (p->n_conds = j->count(conds)) > 0) {
		p->conds = kd_alloc(a, p->n_conds * sizeof(*p->conds));
		size_t i = 0;
		j->begin(conds, &it);
		while (i < p->n_conds && j->next(&it, &k, &v)) {
			p->conds[i].type = jstr(j, a, v, "type");
			p->conds[i].status = jstr(j, a, v, "status");
			i++;
		}
		p->n_conds = i;
	}
	void *cs = j->get(st, "containerStatuses");
	if (cs && (p->n_cstats = j->count(cs)) > 0) {
		p->cstats = kd_alloc(a, p->n_cstats * sizeof(*p->cstats));
		size_t i = 0;
		j->begin(cs, &it);
		while (i < p->n_cstats && j->next(&it, &k, &v)) {
			struct kd_cstat *c = &p->cstats[i++];
			int64_t rc = 0;
			c->name = jstr(j, a, v, "name");
			c->ready = j->boolean(j->get(v, "ready")) == 1;
			j->integer(j->get(v, "restartCount"), &rc);
			c->restarts = (int32_t)rc;
			void *s = j->get(v, "state");
			c->waiting_reason =
				jstr(j, a, s ? j->get(s, "waiting") : NULL,
				     "reason");
			void *l = j->get(v, "lastState");
			c->last_terminated_reason =
				jstr(j, a, l ? j->get(l, "terminated") : NULL,
				     "reason");
		}
		p->n_cstats = i;
	}
	return 0;
}

/* A PodList's items, or a watch event's object, into r. */
int kd_json_list(const struct kd_json *j, void *root, struct kd_result *r)
{
	void *items = root ? j->get(root, "items") : NULL;
	if (!items)
		return -1;
	size_t n = j->count(items);
	r->pods = kd_alloc(&r->arena, (n ? n : 1) * sizeof(*r->pods));
	struct kd_it it;
	const char *k;
	void *v;
	j->begin(items, &it);
	while (r->n < n && j->next(&it, &k, &v))
		if (kd_json_pod(j, &r->arena, v, &r->pods[r->n++]) < 0)
			return -1;
	return 0;
}

int kd_json_event(const struct kd_json *j, void *root, struct kd_result *r)
{
	void *obj = root ? j->get(root, "object") : NULL;
	if (!obj)
		return -1;
	r->event_type = jstr(j, &r->arena, root, "type");
	r->pods = kd_alloc(&r->arena, sizeof(*r->pods));
	r->n = 1;
	return kd_json_pod(j, &r->arena, obj, &r->pods[0]);
}

/* Called by each candidate with its tree and the result both alive: where
 * the memory of a decode peaks. Records the heap in use in --mem children. */
static bool g_mem_probe;
static size_t g_heap_at_peak;

void kd_peak(void)
{
	if (g_mem_probe) {
		struct mallinfo2 mi = mallinfo2();
		g_heap_at_peak = mi.uordblks + mi.hblkhd;
	}
}

/* jansson */
static void *ja_get(void *o, const char *k)
{
	return json_object_get(o, k);
}
static const char *ja_str(void *n, size_t *len)
{
	if (!json_is_string((json_t *)n))
		return NULL;
	*len = json_string_length(n);
	return json_string_value(n);
}
static int ja_bool(void *n)
{
	return json_is_boolean((json_t *)n) ? json_is_true((json_t *)n) : -1;
}
static bool ja_int(void *n, int64_t *v)
{
	if (!json_is_integer((json_t *)n))
		return false;
	*v = json_integer_value(n);
	return true;
}
static size_t ja_count(void *n)
{
	return json_is_array((json_t *)n)    ? json_array_size(n)
	       : json_is_object((json_t *)n) ? json_object_size(n)
					     : 0;
}
static void ja_begin(void *n, struct kd_it *it)
{
	it->node = n;
	it->i = 0;
	it->n = json_is_array((json_t *)n) ? json_array_size(n) : 0;
	it->cur = json_is_object((json_t *)n) ? json_object_iter(n) : NULL;
}
static bool ja_next(struct kd_it *it, const char **k, void **v)
{
	if (it->i < it->n) {
		*k = NULL;
		*v = json_array_get(it->node, it->i++);
		return true;
	}
	if (!it->cur)
		return false;
	*k = json_object_iter_key(it->cur);
	*v = json_object_iter_value(it->cur);
	it->cur = json_object_iter_next(it->node, it->cur);
	return true;
}
static const struct kd_json kd_jansson = {ja_get,   ja_str,   ja_bool, ja_int,
					  ja_count, ja_begin, ja_next};

static int cand_jansson(const char *buf, size_t len, struct kd_result *r,
			bool event)
{
	json_error_t err;
	json_t *root = json_loadb(buf, len, 0, &err);
	if (!root) {
		fprintf(stderr, "jansson: %s (line %d)\n", err.text, err.line);
		return -1;
	}
	int rc = json_is_object(root)
			 ? (event ? kd_json_event(&kd_jansson, root, r)
				  : kd_json_list(&kd_jansson, root, r))
			 : -1;
	kd_peak();
	json_decref(root);
	return rc;
}

/* cJSON */
static void *cj_get(void *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}
static const char *cj_str(void *n, size_t *len)
{
	if (!cJSON_IsString((cJSON *)n))
		return NULL;
	*len = strlen(((cJSON *)n)->valuestring);
	return ((cJSON *)n)->valuestring;
}
static int cj_bool(void *n)
{
	return cJSON_IsBool((cJSON *)n) ? cJSON_IsTrue((cJSON *)n) : -1;
}
static bool cj_int(void *n, int64_t *v)
{
	if (!cJSON_IsNumber((cJSON *)n))
		return false;
	*v = (int64_t)((cJSON *)n)->valuedouble;
	return true;
}
static size_t cj_count(void *n)
{
	return cJSON_IsArray((cJSON *)n) || cJSON_IsObject((cJSON *)n)
		       ? (size_t)cJSON_GetArraySize(n)
		       : 0;
}
static void cj_begin(void *n, struct kd_it *it)
{
	it->cur = cJSON_IsArray((cJSON *)n) || cJSON_IsObject((cJSON *)n)
			  ? ((cJSON *)n)->child
			  : NULL;
}
static bool cj_next(struct kd_it *it, const char **k, void **v)
{
	cJSON *c = it->cur;
	if (!c)
		return false;
	*k = c->string;
	*v = c;
	it->cur = c->next;
	return true;
}
static const struct kd_json kd_cjson = {cj_get,   cj_str,   cj_bool, cj_int,
					cj_count, cj_begin, cj_next};

static int cand_cjson(const char *buf, size_t len, struct kd_result *r,
		      bool event)
{
	cJSON *root = cJSON_ParseWithLength(buf, len);
	if (!root) {
		fprintf(stderr, "cJSON: error near byte %td\n",
			cJSON_GetErrorPtr() - buf);
		return -1;
	}
	int rc = cJSON_IsObject(root)
			 ? (event ? kd_json_event(&kd_cjson, root, r)
				  : kd_json_list(&kd_cjson, root, r))
			 : -1;
	kd_peak();
	cJSON_Delete(root);
	return rc;
}

/* cJSON with its allocation hooks on a bump arena, dropped whole after the
 * fields are copied out (as protobuf-c-arena below). The hooks are global
 * in cJSON: fine here, one thread; a daemon would need a lock or a
 * thread-local arena behind them. */
static struct kd_arena *g_cj_arena;
static void *cj_arena_malloc(size_t n)
{
	return kd_alloc(g_cj_arena, n);
}
static void cj_arena_free(void *p)
{
	(void)p;
}

static int cand_cjson_arena(const char *buf, size_t len, struct kd_result *r,
			    bool event)
{
	struct kd_arena a = {0};
	cJSON_Hooks hooks = {cj_arena_malloc, cj_arena_free};
	g_cj_arena = &a;
	cJSON_InitHooks(&hooks);
	int rc = cand_cjson(buf, len, r, event);
	cJSON_InitHooks(NULL);
	kd_arena_free(&a);
	return rc;
}

/* ---- protobuf: the API server's own encoding ------------------------- */

#ifdef KD_PROTOBUF

/* The envelope is read in place: protobuf-c would copy runtime.Unknown's
 * raw bytes (the whole list) before the list is unpacked from them. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int s = 0; s < 64 && *p < end; s += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* The last length-delimited field number `want` of a message: 1 found, 0
 * absent, -1 malformed. */
static int pb_field(const uint8_t *p, size_t len, uint32_t want,
		    const uint8_t **out, size_t *out_len)
{
	const uint8_t *end = p + len;
	int found = 0;
	while (p < end) {
		uint64_t key, v;
		if (!pb_varint(&p, end, &key))
			return -1;
		switch (key & 7) {
		case 0:
			if (!pb_varint(&p, end, &v))
				return -1;
			break;
		case 1:
			if (end - p < 8)
				return -1;
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				return -1;
			p += 4;
			break;
		case 2:
			if (!pb_varint(&p, end, &v) || v > (uint64_t)(end - p))
				return -1;
			if ((key >> 3) == want) {
				*out = p;
				*out_len = (size_t)v;
				found = 1;
			}
			p += v;
			break;
		default: return -1;
		}
	}
	return found;
}

/* "k8s\0" + runtime.Unknown{typeMeta{apiVersion, kind}, raw}: the raw
 * object if it is of kind `kind` and not otherwise encoded. */
static int pb_unwrap(const uint8_t *buf, size_t len, const char *kind,
		     const uint8_t **raw, size_t *raw_len)
{
	const uint8_t *tm, *k, *enc;
	size_t tm_len, k_len, enc_len;
	if (len < 4 || memcmp(buf, "k8s\0", 4) != 0)
		return -1;
	buf += 4;
	len -= 4;
	if (pb_field(buf, len, 1, &tm, &tm_len) != 1 ||
	    pb_field(tm, tm_len, 2, &k, &k_len) != 1 || k_len != strlen(kind) ||
	    memcmp(k, kind, k_len) != 0)
		return -1;
	if (pb_field(buf, len, 3, &enc, &enc_len) != 0 && enc_len != 0)
		return -1; /* contentEncoding: none is used */
	return pb_field(buf, len, 2, raw, raw_len) == 1 ? 0 : -1;
}

typedef K8s__Io__Api__Core__V1__Pod pb_pod_t;
typedef K8s__Io__Api__Core__V1__PodList pb_podlist_t;

static const char *pstr(struct kd_arena *a, const char *s)
{
	/* protobuf-c gives "" for an absent string; JSON has no member */
	return s && *s ? kd_strndup(a, s, strlen(s)) : NULL;
}

static int kd_pb_pod(struct kd_arena *a, const pb_pod_t *pod, struct kd_pod *p)
{
	memset(p, 0, sizeof(*p));
	const K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__ObjectMeta *md =
		pod->metadata;
	if (!md)
		return -1;
	p->ns = pstr(a, md->namespace_);
	p->name = pstr(a, md->name);
	p->uid = pstr(a, md->uid);
	p->resource_version = pstr(a, md->resourceversion);
	if (md->deletiontimestamp)
		p->deleted_at = md->deletiontimestamp->seconds;
	for (size_t i = 0; i < md->n_ownerreferences; i++) {
		const K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__OwnerReference
			*o = md->ownerreferences[i];
		if (!o->has_controller || !o->controller)
			continue;
		p->owner_kind = pstr(a, o->kind);
		p->owner_name = pstr(a, o->name);
		p->owner_uid = pstr(a, o->uid);
		break;
	}
	if (md->n_labels) {
		p->labels = kd_alloc(a, md->n_labels * sizeof(*p->labels));
		for (size_t i = 0; i < md->n_labels; i++) {
			p->labels[i].key =
				kd_strndup(a, md->labels[i]->key,
					   strlen(md->labels[i]->key));
			p->labels[i].value =
				kd_strndup(a, md->labels[i]->value,
					   strlen(md->labels[i]->value));
		}
		p->n_labels = md->n_labels;
	}
	if (pod->spec)
		p->node = pstr(a, pod->spec->nodename);
	const K8s__Io__Api__Core__V1__PodStatus *st = pod->status;
	if (!st)
		return 0;
	p->phase = pstr(a, st->phase);
	p->pod_ip = pstr(a, st->podip);
	if (st->starttime)
		p->start_time = st->starttime->seconds;
	if (st->n_conditions) {
		p->conds = kd_alloc(a, st->n_conditions * sizeof(*p->conds));
		for (size_t i = 0; i < st->n_conditions; i++) {
			p->conds[i].type = pstr(a, st->conditions[i]->type);
			p->conds[i].status = pstr(a, st->conditions[i]->status);
		}
		p->n_conds = st->n_conditions;
	}
	if (st->n_containerstatuses) {
		p->cstats = kd_alloc(a, st->n_containerstatuses *
						sizeof(*p->cstats));
		for (size_t i = 0; i < st->n_containerstatuses; i++) {
			const K8s__Io__Api__Core__V1__ContainerStatus *s =
				st->containerstatuses[i];
			struct kd_cstat *c = &p->cstats[i];
			memset(c, 0, sizeof(*c));
			c->name = pstr(a, s->name);
			c->ready = s->ready;
			c->restarts = s->restartcount;
			if (s->state && s->state->waiting)
				c->waiting_reason =
					pstr(a, s->state->waiting->reason);
			if (s->laststate && s->laststate->terminated)
				c->last_terminated_reason = pstr(
					a, s->laststate->terminated->reason);
		}
		p->n_cstats = st->n_containerstatuses;
	}
	return 0;
}

/* protobuf-c's allocator on a bump arena: free does nothing, the arena is
 * dropped whole once the fields are copied out. */
static void *pb_arena_alloc(void *data, size_t n)
{
	return kd_alloc(data, n);
}
static void pb_arena_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

static int pb_list(const char *buf, size_t len, struct kd_result *r, bool arena)
{
	const uint8_t *raw;
	size_t raw_len;
	struct kd_arena pa = {0};
	ProtobufCAllocator al = {pb_arena_alloc, pb_arena_free, &pa};
	if (pb_unwrap((const uint8_t *)buf, len, "PodList", &raw, &raw_len))
		return -1;
	pb_podlist_t *l = k8s__io__api__core__v1__pod_list__unpack(
		arena ? &al : NULL, raw_len, raw);
	if (!l) {
		kd_arena_free(&pa);
		return -1;
	}
	int rc = 0;
	r->pods = kd_alloc(&r->arena,
			   (l->n_items ? l->n_items : 1) * sizeof(*r->pods));
	for (size_t i = 0; i < l->n_items && rc == 0; i++)
		rc = kd_pb_pod(&r->arena, l->items[i], &r->pods[r->n++]);
	kd_peak();
	if (arena)
		kd_arena_free(&pa);
	else
		k8s__io__api__core__v1__pod_list__free_unpacked(l, NULL);
	return rc;
}

/* A watch frame's body (the length prefix already taken off):
 * metav1.WatchEvent{type = 1, object = 2: RawExtension{raw = 1}}, raw
 * being "k8s\0" + Unknown around the Pod. */
static int pb_event(const char *buf, size_t len, struct kd_result *r,
		    bool arena)
{
	const uint8_t *p = (const uint8_t *)buf, *type, *obj, *raw, *pod;
	size_t type_len, obj_len, raw_len, pod_len;
	if (pb_field(p, len, 1, &type, &type_len) != 1 ||
	    pb_field(p, len, 2, &obj, &obj_len) != 1 ||
	    pb_field(obj, obj_len, 1, &raw, &raw_len) != 1 ||
	    pb_unwrap(raw, raw_len, "Pod", &pod, &pod_len))
		return -1;
	struct kd_arena pa = {0};
	ProtobufCAllocator al = {pb_arena_alloc, pb_arena_free, &pa};
	pb_pod_t *m = k8s__io__api__core__v1__pod__unpack(arena ? &al : NULL,
							  pod_len, pod);
	if (!m) {
		kd_arena_free(&pa);
		return -1;
	}
	r->event_type = kd_strndup(&r->arena, (const char *)type, type_len);
	r->pods = kd_alloc(&r->arena, sizeof(*r->pods));
	r->n = 1;
	int rc = kd_pb_pod(&r->arena, m, &r->pods[0]);
	kd_peak();
	if (arena)
		kd_arena_free(&pa);
	else
		k8s__io__api__core__v1__pod__free_unpacked(m, NULL);
	return rc;
}

static int cand_pb(const char *buf, size_t len, struct kd_result *r, bool event)
{
	return event ? pb_event(buf, len, r, false)
		     : pb_list(buf, len, r, false);
}

static int cand_pb_arena(const char *buf, size_t len, struct kd_result *r,
			 bool event)
{
	return event ? pb_event(buf, len, r, true) : pb_list(buf, len, r, true);
}

#endif /* KD_PROTOBUF */

/* ---- the harness ------------------------------------------------------ */

struct cand {
	const char *name;
	bool proto; /* reads the protobuf inputs */
	int (*decode)(const char *buf, size_t len, struct kd_result *r,
		      bool event);
};

static const struct cand cands[] = {
	{"jansson", false, cand_jansson},
	{"json-c", false, cand_jsonc},
	{"cjson", false, cand_cjson},
	{"cjson-arena", false, cand_cjson_arena},
#ifdef KD_PROTOBUF
	{"protobuf-c", true, cand_pb},
	{"protobuf-c-arena", true, cand_pb_arena},
#endif
};
#define NCANDS (sizeof(cands) / sizeof(cands[0]))

struct input {
	char *buf;
	size_t len;
	/* watch streams: the events, split by their framing */
	size_t n_events;
	const char **ev;
	size_t *ev_len;
};

static int read_file(const char *path, struct input *in)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	in->buf = malloc((size_t)n + 1);
	if (!in->buf || fread(in->buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "%s: short read\n", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	in->buf[n] = 0;
	in->len = (size_t)n;
	return 0;
}

static int add_event(struct input *in, const char *p, size_t n)
{
	if (!(in->n_events & (in->n_events + 1)) || in->n_events == 0) {
		size_t cap = (in->n_events + 1) * 2;
		in->ev = realloc(in->ev, cap * sizeof(*in->ev));
		in->ev_len = realloc(in->ev_len, cap * sizeof(*in->ev_len));
		if (!in->ev || !in->ev_len)
			return -1;
	}
	in->ev[in->n_events] = p;
	in->ev_len[in->n_events++] = n;
	return 0;
}

/* Newline-delimited JSON, or 4-byte big-endian length-prefixed frames. */
static int split_events(struct input *in, bool proto)
{
	const char *p = in->buf, *end = in->buf + in->len;
	while (p < end) {
		if (proto) {
			if (end - p < 4)
				return -1;
			const uint8_t *u = (const uint8_t *)p;
			size_t n = (size_t)u[0] << 24 | (size_t)u[1] << 16 |
				   (size_t)u[2] << 8 | u[3];
			p += 4;
			if (n > (size_t)(end - p) || add_event(in, p, n))
				return -1;
			p += n;
		} else {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (n && add_event(in, p, n))
				return -1;
			p += n + 1;
		}
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* FNV-1a over everything extracted, to check that the candidates agree. */
static uint64_t h_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}
static uint64_t h_str(uint64_t h, const char *s)
{
	return s ? h_bytes(h, s, strlen(s) + 1) : h_bytes(h, "\xff", 1);
}
static int cmp_kv(const void *a, const void *b)
{
	return strcmp(((const struct kd_kv *)a)->key,
		      ((const struct kd_kv *)b)->key);
}
static uint64_t hash_result(struct kd_result *r)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	h = h_str(h, r->event_type);
	for (size_t i = 0; i < r->n; i++) {
		struct kd_pod *p = &r->pods[i];
		h = h_str(h, p->ns);
		h = h_str(h, p->name);
		h = h_str(h, p->uid);
		h = h_str(h, p->resource_version);
		h = h_str(h, p->owner_kind);
		h = h_str(h, p->owner_name);
		h = h_str(h, p->owner_uid);
		h = h_bytes(h, &p->deleted_at, sizeof(p->deleted_at));
		/* map order is the encoder's: sort before hashing */
		qsort(p->labels, p->n_labels, sizeof(*p->labels), cmp_kv);
		for (size_t j = 0; j < p->n_labels; j++) {
			h = h_str(h, p->labels[j].key);
			h = h_str(h, p->labels[j].value);
		}
		h = h_str(h, p->node);
		h = h_str(h, p->phase);
		for (size_t j = 0; j < p->n_conds; j++) {
			h = h_str(h, p->conds[j].type);
			h = h_str(h, p->conds[j].status);
		}
		for (size_t j = 0; j < p->n_cstats; j++) {
			struct kd_cstat *c = &p->cstats[j];
			h = h_str(h, c->name);
			h = h_bytes(h, &c->ready, sizeof(c->ready));
			h = h_bytes(h, &c->restarts, sizeof(c->restarts));
			h = h_str(h, c->waiting_reason);
			h = h_str(h, c->last_terminated_reason);
		}
		h = h_str(h, p->pod_ip);
		h = h_bytes(h, &p->start_time, sizeof(p->start_time));
	}
	return h;
}

static struct input g_list[2], g_watch[2]; /* [0] JSON, [1] protobuf */

/* One complete decode of the list: the time callgrind counts (--only). */
__attribute__((noinline)) static int run_list(const struct cand *c,
					      struct kd_result *r)
{
	struct input *in = &g_list[c->proto];
	return c->decode(in->buf, in->len, r, false);
}

/* Every watch event once, each decoded and freed. */
__attribute__((noinline)) static int run_events(const struct cand *c,
						uint64_t *hash)
{
	struct input *in = &g_watch[c->proto];
	uint64_t h = 0;
	for (size_t i = 0; i < in->n_events; i++) {
		struct kd_result r = {0};
		if (c->decode(in->ev[i], in->ev_len[i], &r, true) < 0) {
			kd_result_free(&r);
			return -1;
		}
		if (hash)
			h ^= hash_result(&r) + i;
		kd_result_free(&r);
	}
	if (hash)
		*hash = h;
	return 0;
}

static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t kl = strlen(key);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

struct mem {
	double heap_mib, rss_mib, secs;
	int ok;
};

/* One decode of the list in a forked child: its peak heap and RSS. */
static struct mem measure_mem(const struct cand *c)
{
	struct mem m = {0};
	int fd[2];
	if (pipe(fd))
		return m;
	pid_t pid = fork();
	if (pid == 0) {
		close(fd[0]);
		FILE *f = fopen("/proc/self/clear_refs", "w");
		if (f) {
			fputs("5", f); /* reset VmHWM */
			fclose(f);
		}
		struct mallinfo2 mi = mallinfo2();
		size_t heap0 = mi.uordblks + mi.hblkhd;
		long rss0 = status_kib("VmRSS");
		struct kd_result r = {0};
		g_mem_probe = true;
		double t0 = now_s();
		int rc = run_list(c, &r);
		kd_result_free(&r);
		double t1 = now_s();
		long hwm = status_kib("VmHWM");
		struct mem out = {(double)(g_heap_at_peak - heap0) / 1048576.0,
				  (double)(hwm - rss0) / 1024.0, t1 - t0,
				  rc == 0};
		ssize_t w = write(fd[1], &out, sizeof(out));
		_exit(w == sizeof(out) ? 0 : 1);
	}
	close(fd[1]);
	if (pid > 0) {
		if (read(fd[0], &m, sizeof(m)) != sizeof(m))
			m.ok = 0;
		waitpid(pid, NULL, 0);
	}
	close(fd[0]);
	return m;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define MAX_ROUNDS 50

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_kube_decode --json LIST.json [--proto LIST.pb]\n"
		"         [--watch-json EVENTS.jsonl] [--watch-proto "
		"EVENTS.pb]\n"
		"         [--rounds N] [--only NAME] [--no-mem]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *paths[4] = {0}; /* list json, list pb, watch json, pb */
	const char *only = NULL;
	int rounds = 5;
	bool mem = true;
	static const struct option opts[] = {
		{"json", required_argument, NULL, 'j'},
		{"proto", required_argument, NULL, 'p'},
		{"watch-json", required_argument, NULL, 'w'},
		{"watch-proto", required_argument, NULL, 'W'},
		{"rounds", required_argument, NULL, 'r'},
		{"only", required_argument, NULL, 'o'},
		{"no-mem", no_argument, NULL, 'M'},
		{0}};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'j': paths[0] = optarg; break;
		case 'p': paths[1] = optarg; break;
		case 'w': paths[2] = optarg; break;
		case 'W': paths[3] = optarg; break;
		case 'r': rounds = atoi(optarg); break;
		case 'o': only = optarg; break;
		case 'M': mem = false; break;
		default: usage();
		}
	}
	if (!paths[0] || rounds < 1 || rounds > MAX_ROUNDS)
		usage();
#ifndef KD_PROTOBUF
	if (paths[1] || paths[3])
		fprintf(stderr, "built without the k8s.io protos: protobuf "
				"inputs ignored\n");
	paths[1] = paths[3] = NULL;
#endif
	for (int i = 0; i < 4; i++) {
		struct input *in = i < 2 ? &g_list[i] : &g_watch[i - 2];
		if (paths[i] && read_file(paths[i], in))
			return 1;
		if (i >= 2 && paths[i] && split_events(in, i == 3)) {
			fprintf(stderr, "%s: bad framing\n", paths[i]);
			return 1;
		}
	}
	const struct cand *run[NCANDS];
	size_t n = 0;
	for (size_t i = 0; i < NCANDS; i++) {
		if (cands[i].proto && !paths[1])
			continue;
		if (only && strcmp(only, cands[i].name))
			continue;
		run[n++] = &cands[i];
	}
	if (!n) {
		fprintf(stderr, "no candidate named %s\n", only);
		return 2;
	}
	bool events = g_watch[0].n_events &&
		      (!paths[1] || g_watch[1].n_events == g_watch[0].n_events);

	/* --only: just the decodes, for callgrind --toggle-collect */
	if (only) {
		for (int r = 0; r < rounds; r++) {
			struct kd_result res = {0};
			if (run_list(run[0], &res) < 0)
				return 1;
			kd_result_free(&res);
			if (events && run_events(run[0], NULL) < 0)
				return 1;
		}
		printf("%s: %d round(s) done\n", run[0]->name, rounds);
		return 0;
	}

	/* memory first, while this process's heap holds nothing freed that
	 * a child could reuse without its RSS growing */
	struct mem m[NCANDS] = {0};
	if (mem) {
		for (size_t i = 0; i < n; i++) {
			m[i] = measure_mem(run[i]);
			if (!m[i].ok) {
				fprintf(stderr, "%s: memory child failed\n",
					run[i]->name);
				return 1;
			}
		}
	}

	/* the same pods and fields from every candidate */
	uint64_t h0 = 0, e0 = 0;
	size_t pods = 0;
	for (size_t i = 0; i < n; i++) {
		struct kd_result r = {0};
		if (run_list(run[i], &r) < 0) {
			fprintf(stderr, "%s: the list does not decode\n",
				run[i]->name);
			return 1;
		}
		uint64_t h = hash_result(&r), e = 0;
		pods = r.n;
		kd_result_free(&r);
		if (events && run_events(run[i], &e) < 0) {
			fprintf(stderr, "%s: a watch event does not decode\n",
				run[i]->name);
			return 1;
		}
		if (i == 0) {
			h0 = h;
			e0 = e;
		} else if (h != h0 || e != e0) {
			fprintf(stderr, "%s extracts other values than %s\n",
				run[i]->name, run[0]->name);
			return 1;
		}
	}
	printf("inputs: %zu pods, JSON %.1f MiB", pods,
	       (double)g_list[0].len / 1048576.0);
	if (paths[1])
		printf(", protobuf %.1f MiB",
		       (double)g_list[1].len / 1048576.0);
	if (events)
		printf("; %zu watch events, JSON %.0f B/event%s",
		       g_watch[0].n_events,
		       (double)g_watch[0].len / (double)g_watch[0].n_events,
		       paths[1] ? "" : "");
	if (events && paths[1])
		printf(", protobuf %.0f B/event",
		       (double)g_watch[1].len / (double)g_watch[1].n_events);
	printf("\nall %zu candidates extract the same values (hash %016" PRIx64
	       ")\n\n",
	       n, h0);
	fflush(stdout);

	static double tl[NCANDS][MAX_ROUNDS], te[NCANDS][MAX_ROUNDS];
	for (int r = 0; r < rounds; r++) {
		for (size_t k = 0; k < n; k++) {
			size_t i = (k + (size_t)r) % n;
			struct kd_result res = {0};
			double t0 = now_s();
			run_list(run[i], &res);
			kd_result_free(&res);
			double t1 = now_s();
			if (events)
				run_events(run[i], NULL);
			double t2 = now_s();
			tl[i][r] = t1 - t0;
			te[i][r] =
				events ? (t2 - t1) / (double)g_watch[0].n_events
				       : 0;
		}
	}

	printf("%d rounds, order rotated each round; ratio = candidate / "
	       "%s (best)\n\n",
	       rounds, run[0]->name);
	printf("| candidate | list best s | list median s | ratio | MB/s "
	       "(input) | pods/s | peak heap MiB | peak RSS MiB | event best "
	       "µs | event median µs | event ratio |\n");
	printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
	       "| ---: | ---: |\n");
	double base_l = 0, base_e = 0;
	for (size_t i = 0; i < n; i++) {
		qsort(tl[i], (size_t)rounds, sizeof(double), cmp_d);
		qsort(te[i], (size_t)rounds, sizeof(double), cmp_d);
		double bl = tl[i][0], ml = tl[i][rounds / 2];
		double be = te[i][0] * 1e6, me = te[i][rounds / 2] * 1e6;
		if (i == 0) {
			base_l = bl;
			base_e = be;
		}
		printf("| %s | %.3f | %.3f | %.2f | %.0f | %.0f |",
		       run[i]->name, bl, ml, bl / base_l,
		       (double)g_list[run[i]->proto].len / 1e6 / bl,
		       (double)pods / bl);
		if (mem)
			printf(" %.0f | %.0f |", m[i].heap_mib, m[i].rss_mib);
		else
			printf(" - | - |");
		if (events)
			printf(" %.1f | %.1f | %.2f |\n", be, me, be / base_e);
		else
			printf(" - | - | - |\n");
	}
	return 0;
}
