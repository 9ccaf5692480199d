/*
 * The informers' cache (km_kube_cache.h): one allocation per object, two
 * chained hash tables over the same entries (by namespace/name, by uid),
 * and a mark per entry for relists.
 */
#include "km_kube_cache.h"

#include <stdlib.h>
#include <string.h>

#include "km_hash.h"

#define MAX_OBJECTS_DEFAULT 1000000
#define MIN_BUCKETS 64

/* An object and its place in both tables; the object's arrays and
 * strings follow it in the same block. */
struct entry {
	struct entry *next_name, *next_uid;
	uint64_t h_name, h_uid;
	uint64_t mark;
	struct km_kube_object obj;
};

struct km_kube_cache {
	enum km_kube_resource resource;
	size_t max_objects;
	size_t count;
	size_t n_buckets; /* a power of two, in both tables */
	struct entry **by_name, **by_uid;
	uint64_t seed;
	uint64_t mark;
};

#define ENTRY_OF(o) \
	((struct entry *)(void *)((char *)(o)-offsetof(struct entry, obj)))

static const char *const kind_names[KM_RES_N] = {
	[KM_RES_DEPLOYMENT] = "Deployment",
	[KM_RES_STATEFULSET] = "StatefulSet",
	[KM_RES_DAEMONSET] = "DaemonSet",
	[KM_RES_REPLICASET] = "ReplicaSet",
};

/* ---- one object, one block -------------------------------------------------- */

/* Calls fn on every string field of o the cache copies (the ones the
 * rules' structs repeat from the metadata are set after, see aliases). */
static void each_string(struct km_kube_object *o,
			void (*fn)(const char **s, void *arg), void *arg)
{
	struct km_kube_meta *m = &o->meta;

	fn(&m->ns, arg);
	fn(&m->name, arg);
	fn(&m->uid, arg);
	fn(&m->resource_version, arg);
	fn(&m->owner_kind, arg);
	fn(&m->owner_name, arg);
	fn(&m->owner_uid, arg);
	/* The array is the block's own by now (dup copies it first). */
	for (size_t i = 0; i < m->n_labels; i++) {
		struct km_kv *kv = (struct km_kv *)&m->labels[i];

		fn(&kv->key, arg);
		fn(&kv->value, arg);
	}
	switch (o->resource) {
	case KM_RES_NODE:
		fn(&o->u.node.ready_reason, arg);
		fn(&o->u.node.ready_message, arg);
		fn(&o->u.node.zone, arg);
		break;
	case KM_RES_POD: {
		struct km_kube_pod *p = &o->u.pod;
		/* The arrays are the block's own by now (dup copies them
		 * first), so their strings can be rewritten. */
		struct km_kube_container *c[2] = {
			(struct km_kube_container *)p->init_containers,
			(struct km_kube_container *)p->containers};
		size_t n[2] = {p->n_init_containers, p->n_containers};

		fn(&p->node_name, arg);
		fn(&p->reason, arg);
		fn(&p->message, arg);
		fn(&p->scheduled_message, arg);
		for (int k = 0; k < 2; k++)
			for (size_t i = 0; i < n[k]; i++) {
				fn(&c[k][i].name, arg);
				fn(&c[k][i].waiting_reason, arg);
				fn(&c[k][i].waiting_message, arg);
				fn(&c[k][i].last_terminated_reason, arg);
			}
		break;
	}
	case KM_RES_ENDPOINTSLICE: fn(&o->u.slice.service, arg); break;
	case KM_RES_DEPLOYMENT:
	case KM_RES_STATEFULSET:
	case KM_RES_DAEMONSET:
	case KM_RES_REPLICASET:
		fn(&o->u.workload.progressing_reason, arg);
		fn(&o->u.workload.progressing_message, arg);
		break;
	default: break;
	}
}

/* The length kept of s: at most KM_KUBE_STRING_MAX bytes, cut before a
 * UTF-8 continuation byte so that a character is never halved. */
static size_t kept_len(const char *s)
{
	size_t n = strnlen(s, KM_KUBE_STRING_MAX + 1);

	if (n > KM_KUBE_STRING_MAX) {
		n = KM_KUBE_STRING_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	return n;
}

static void measure(const char **s, void *arg)
{
	if (*s)
		*(size_t *)arg += kept_len(*s) + 1;
}

static void copy_out(const char **s, void *arg)
{
	char **at = arg;
	size_t n;

	if (!*s)
		return;
	n = kept_len(*s);
	memcpy(*at, *s, n);
	(*at)[n] = '\0';
	*s = *at;
	*at += n + 1;
}

/* The rules' structs name the object too; they share the metadata's
 * copies. */
static void aliases(struct km_kube_object *o)
{
	const struct km_kube_meta *m = &o->meta;

	switch (o->resource) {
	case KM_RES_NODE: o->u.node.name = m->name; break;
	case KM_RES_POD:
		o->u.pod.ns = m->ns;
		o->u.pod.name = m->name;
		o->u.pod.owner_kind = m->owner_kind;
		o->u.pod.created_us = m->created_us;
		break;
	case KM_RES_SERVICE:
		o->u.service.ns = m->ns;
		o->u.service.name = m->name;
		break;
	case KM_RES_DEPLOYMENT:
	case KM_RES_STATEFULSET:
	case KM_RES_DAEMONSET:
	case KM_RES_REPLICASET:
		o->u.workload.kind = kind_names[o->resource];
		o->u.workload.ns = m->ns;
		o->u.workload.name = m->name;
		break;
	default: break;
	}
}

/* The resources whose labels are kept: what a recovery policy matches. */
static bool keeps_labels(enum km_kube_resource r)
{
	return r == KM_RES_NODE || r == KM_RES_POD || r == KM_RES_DEPLOYMENT ||
	       r == KM_RES_STATEFULSET || r == KM_RES_DAEMONSET;
}

static struct entry *dup_entry(const struct km_kube_object *src)
{
	struct km_kube_object tmp = *src;
	size_t n_init = 0, n_cont = 0, n_labels = 0, strings = 0, size;
	struct km_kube_container *arr = NULL;
	struct km_kv *kv;
	struct entry *e;
	char *at;

	if (keeps_labels(src->resource) && src->meta.labels)
		n_labels = src->meta.n_labels < KM_KUBE_LABELS_MAX
				   ? src->meta.n_labels
				   : KM_KUBE_LABELS_MAX;
	tmp.meta.n_labels = n_labels;
	if (!n_labels)
		tmp.meta.labels = NULL;

	if (src->resource == KM_RES_POD) {
		n_init = src->u.pod.n_init_containers;
		n_cont = src->u.pod.n_containers;
		if (!src->u.pod.init_containers)
			n_init = 0;
		if (!src->u.pod.containers)
			n_cont = 0;
		if (n_init > KM_KUBE_CONTAINERS_MAX)
			n_init = KM_KUBE_CONTAINERS_MAX;
		if (n_cont > KM_KUBE_CONTAINERS_MAX)
			n_cont = KM_KUBE_CONTAINERS_MAX;
		tmp.u.pod.n_init_containers = n_init;
		tmp.u.pod.n_containers = n_cont;
		/* The mirror's, not the rules': never kept. */
		tmp.u.pod.pod_ip = NULL;
		tmp.u.pod.probes = NULL;
		tmp.u.pod.n_probes = 0;
	}
	/* Measured on the source: each_string only reads here. */
	each_string(&tmp, measure, &strings);
	size = sizeof *e + (n_init + n_cont) * sizeof *arr +
	       n_labels * sizeof *kv + strings;
	e = malloc(size);
	if (!e)
		return NULL;
	memset(e, 0, sizeof *e);
	e->obj = tmp;
	if (n_init + n_cont) {
		arr = (struct km_kube_container *)(void *)(e + 1);
		if (n_init)
			memcpy(arr, src->u.pod.init_containers,
			       n_init * sizeof *arr);
		if (n_cont)
			memcpy(arr + n_init, src->u.pod.containers,
			       n_cont * sizeof *arr);
		e->obj.u.pod.init_containers = n_init ? arr : NULL;
		e->obj.u.pod.containers = n_cont ? arr + n_init : NULL;
	} else if (src->resource == KM_RES_POD) {
		e->obj.u.pod.init_containers = NULL;
		e->obj.u.pod.containers = NULL;
	}
	kv = (struct km_kv *)(void *)((char *)(void *)(e + 1) +
				      (n_init + n_cont) * sizeof *arr);
	if (n_labels)
		memcpy(kv, src->meta.labels, n_labels * sizeof *kv);
	e->obj.meta.labels = n_labels ? kv : NULL;
	at = (char *)(void *)(kv + n_labels);
	each_string(&e->obj, copy_out, &at);
	aliases(&e->obj);
	return e;
}

void km_kube_object_free(struct km_kube_object *o)
{
	if (o)
		free(ENTRY_OF(o));
}

/* ---- the tables ------------------------------------------------------------- */

static uint64_t name_hash(const struct km_kube_cache *c, const char *ns,
			  const char *name)
{
	return km_hash_field(km_hash_field(c->seed, ns ? ns : ""), name);
}

static uint64_t uid_hash(const struct km_kube_cache *c, const char *uid)
{
	return km_hash_field(c->seed, uid);
}

static bool eq(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

int km_kube_cache_new(enum km_kube_resource r, size_t max_objects,
		      struct km_kube_cache **out, struct km_error *err)
{
	struct km_kube_cache *c = calloc(1, sizeof *c);

	*out = NULL;
	if (!c)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	c->resource = r;
	c->max_objects = max_objects ? max_objects : MAX_OBJECTS_DEFAULT;
	c->n_buckets = MIN_BUCKETS;
	c->by_name = calloc(c->n_buckets, sizeof *c->by_name);
	c->by_uid = calloc(c->n_buckets, sizeof *c->by_uid);
	if (!c->by_name || !c->by_uid) {
		km_kube_cache_free(c);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	c->seed = km_hash_seed(); /* one an API server cannot guess */
	c->seed ^= KM_HASH_INIT;
	*out = c;
	return 0;
}

void km_kube_cache_free(struct km_kube_cache *c)
{
	if (!c)
		return;
	if (c->by_uid)
		for (size_t i = 0; i < c->n_buckets; i++)
			for (struct entry *e = c->by_uid[i], *next; e;
			     e = next) {
				next = e->next_uid;
				free(e);
			}
	free(c->by_name);
	free(c->by_uid);
	free(c);
}

size_t km_kube_cache_count(const struct km_kube_cache *c)
{
	return c->count;
}

static struct entry *find_uid(const struct km_kube_cache *c, const char *uid,
			      uint64_t h)
{
	for (struct entry *e = c->by_uid[km_hash_bucket(h, c->n_buckets)]; e;
	     e = e->next_uid)
		if (e->h_uid == h && eq(e->obj.meta.uid, uid))
			return e;
	return NULL;
}

static struct entry *find_name(const struct km_kube_cache *c, const char *ns,
			       const char *name, uint64_t h)
{
	for (struct entry *e = c->by_name[km_hash_bucket(h, c->n_buckets)]; e;
	     e = e->next_name)
		if (e->h_name == h && eq(e->obj.meta.name, name) &&
		    eq(e->obj.meta.ns, ns))
			return e;
	return NULL;
}

static void link_entry(struct km_kube_cache *c, struct entry *e)
{
	struct entry **b = &c->by_name[km_hash_bucket(e->h_name, c->n_buckets)];
	struct entry **u = &c->by_uid[km_hash_bucket(e->h_uid, c->n_buckets)];

	e->next_name = *b;
	*b = e;
	e->next_uid = *u;
	*u = e;
	c->count++;
}

static void unlink_entry(struct km_kube_cache *c, struct entry *e)
{
	struct entry **p;

	for (p = &c->by_name[km_hash_bucket(e->h_name, c->n_buckets)]; *p != e;
	     p = &(*p)->next_name)
		;
	*p = e->next_name;
	for (p = &c->by_uid[km_hash_bucket(e->h_uid, c->n_buckets)]; *p != e;
	     p = &(*p)->next_uid)
		;
	*p = e->next_uid;
	c->count--;
}

/* Doubles both tables when there are more objects than buckets; a table
 * that cannot grow keeps working, with longer chains. */
static void maybe_grow(struct km_kube_cache *c)
{
	size_t n = c->n_buckets * 2;
	struct entry **bn, **bu;

	if (c->count < c->n_buckets)
		return;
	bn = calloc(n, sizeof *bn);
	bu = calloc(n, sizeof *bu);
	if (!bn || !bu) {
		free(bn);
		free(bu);
		return;
	}
	for (size_t i = 0; i < c->n_buckets; i++)
		for (struct entry *e = c->by_uid[i], *next; e; e = next) {
			size_t a = km_hash_bucket(e->h_name, n);
			size_t b = km_hash_bucket(e->h_uid, n);

			next = e->next_uid;
			e->next_name = bn[a];
			bn[a] = e;
			e->next_uid = bu[b];
			bu[b] = e;
		}
	free(c->by_name);
	free(c->by_uid);
	c->by_name = bn;
	c->by_uid = bu;
	c->n_buckets = n;
}

int km_kube_cache_put(struct km_kube_cache *c, const struct km_kube_object *o,
		      enum km_kube_put *what, struct km_kube_object **old,
		      const struct km_kube_object **stored,
		      struct km_error *err)
{
	const struct km_kube_meta *m = &o->meta;
	struct entry *prev, *e;
	uint64_t hu, hn;

	if (old)
		*old = NULL;
	if (stored)
		*stored = NULL;
	if (o->resource != c->resource)
		return km_error_set(err, KM_EINVAL,
				    "object of resource %d put in the cache "
				    "of resource %d",
				    (int)o->resource, (int)c->resource);
	if (!m->name || !*m->name)
		return km_error_set(err, KM_EINVAL,
				    "object without metadata.name");
	if (!m->uid || !*m->uid)
		return km_error_set(err, KM_EINVAL,
				    "%s%s%s: object without metadata.uid",
				    m->ns ? m->ns : "",
				    m->ns && *m->ns ? "/" : "", m->name);

	hu = uid_hash(c, m->uid);
	hn = name_hash(c, m->ns, m->name);
	prev = find_uid(c, m->uid, hu);
	if (prev && m->resource_version && prev->obj.meta.resource_version &&
	    !strcmp(m->resource_version, prev->obj.meta.resource_version) &&
	    eq(prev->obj.meta.name, m->name) && eq(prev->obj.meta.ns, m->ns)) {
		prev->mark = c->mark;
		*what = KM_PUT_UNCHANGED;
		if (stored)
			*stored = &prev->obj;
		return 0;
	}
	if (prev) {
		*what = KM_PUT_UPDATED;
	} else if ((prev = find_name(c, m->ns, m->name, hn))) {
		*what = KM_PUT_REPLACED;
	} else {
		*what = KM_PUT_ADDED;
		if (c->count >= c->max_objects)
			return km_error_set(err, KM_EFULL,
					    "more than %zu objects of one "
					    "resource",
					    c->max_objects);
	}

	e = dup_entry(o);
	if (!e)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	e->h_uid = hu;
	e->h_name = hn;
	e->mark = c->mark;
	if (prev) {
		unlink_entry(c, prev);
		/* An update under another name (never from a real API
		 * server: names are immutable) may also collide with a
		 * third object holding that name: the newer wins. */
		{
			struct entry *other = find_name(c, m->ns, m->name, hn);

			if (other) {
				unlink_entry(c, other);
				free(other);
			}
		}
		if (old)
			*old = &prev->obj;
		else
			free(prev);
	}
	link_entry(c, e);
	maybe_grow(c);
	if (stored)
		*stored = &e->obj;
	return 0;
}

struct km_kube_object *km_kube_cache_remove(struct km_kube_cache *c,
					    const char *uid)
{
	struct entry *e;

	if (!uid)
		return NULL;
	e = find_uid(c, uid, uid_hash(c, uid));
	if (!e)
		return NULL;
	unlink_entry(c, e);
	return &e->obj;
}

const struct km_kube_object *km_kube_cache_get(const struct km_kube_cache *c,
					       const char *ns, const char *name)
{
	struct entry *e;

	if (!name)
		return NULL;
	e = find_name(c, ns, name, name_hash(c, ns, name));
	return e ? &e->obj : NULL;
}

const struct km_kube_object *
km_kube_cache_get_uid(const struct km_kube_cache *c, const char *uid)
{
	struct entry *e;

	if (!uid)
		return NULL;
	e = find_uid(c, uid, uid_hash(c, uid));
	return e ? &e->obj : NULL;
}

void km_kube_cache_each(const struct km_kube_cache *c,
			void (*fn)(const struct km_kube_object *o, void *arg),
			void *arg)
{
	for (size_t i = 0; i < c->n_buckets; i++)
		for (struct entry *e = c->by_uid[i]; e; e = e->next_uid)
			fn(&e->obj, arg);
}

void km_kube_cache_relist_begin(struct km_kube_cache *c)
{
	c->mark++;
}

size_t km_kube_cache_relist_end(struct km_kube_cache *c,
				void (*fn)(struct km_kube_object *o, void *arg),
				void *arg)
{
	size_t gone = 0;

	for (size_t i = 0; i < c->n_buckets; i++) {
		struct entry *e = c->by_uid[i], *next;

		for (; e; e = next) {
			next = e->next_uid;
			if (e->mark == c->mark)
				continue;
			unlink_entry(c, e);
			gone++;
			if (fn)
				fn(&e->obj, arg);
			else
				free(e);
		}
	}
	return gone;
}
