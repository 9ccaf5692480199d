/*
 * The storms on, recorded and told (km_storms.h).
 */
#include "km_storms.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_log.h"
#include "km_time.h"

struct on {
	struct km_budget_storm s; /* the numbers at its start */
	int64_t started_us;       /* epoch */
	int64_t refused;
};

struct km_storms {
	struct km_store *store;
	pthread_mutex_t mu; /* what follows */
	struct on *v;
	size_t n, cap;
	km_storms_fn fn;
	void *fn_arg;
};

static const char *group_name(int group)
{
	return group == KM_BUDGET_ZONE ? "zone" : "policy";
}

/* The writer's answer to a write nobody waits for: said if it failed. */
static void written(void *arg, int rc, const struct km_error *err)
{
	if (rc)
		km_log(KM_LOG_ERROR, "recovery: a storm cannot be recorded",
		       "what", (const char *)arg, "error", err ? err->msg : "",
		       NULL);
}

int km_storms_new(struct km_store *store, struct km_storms **out,
		  struct km_error *err)
{
	struct km_storms *t = calloc(1, sizeof *t);
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!t)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	rc = km_store_end_storms(store, "kubemedicd stopped without ending it",
				 &n, err);
	if (rc) {
		free(t);
		return rc;
	}
	if (n)
		km_log(KM_LOG_INFO,
		       "recovery: storms a previous run left on are ended; "
		       "the storm guard counts again from the targets' health",
		       "storms", KM_I((int64_t)n), NULL);
	t->store = store;
	pthread_mutex_init(&t->mu, NULL);
	*out = t;
	return 0;
}

static struct km_storm record_of(const struct on *o)
{
	return (struct km_storm){
		.group = o->s.group == KM_BUDGET_ZONE ? KM_STORM_ZONE
						      : KM_STORM_POLICY,
		.name = o->s.name,
		.cluster = o->s.cluster,
		.unhealthy = (int64_t)o->s.unhealthy,
		.total = (int64_t)o->s.total,
		.share_pct = o->s.share_pct,
		.why = o->s.why,
		.refused = o->refused,
		.started_us = o->started_us,
	};
}

static void end_one(struct km_storms *t, const struct on *o, const char *note)
{
	struct km_storm m = record_of(o);

	m.end_note = note;
	if (km_store_end_storm_async(t->store, &m, written, "its end"))
		km_log(KM_LOG_ERROR,
		       "recovery: a storm's end cannot be recorded", "group",
		       group_name(o->s.group), "name", o->s.name, NULL);
}

void km_storms_free(struct km_storms *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		end_one(t, &t->v[i], "kubemedicd stopped");
	free(t->v);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static bool same(const struct km_budget_storm *a,
		 const struct km_budget_storm *b)
{
	return a->group == b->group && !strcmp(a->name, b->name) &&
	       !strcmp(a->cluster, b->cluster);
}

/* The entry of s's group, or NULL. Under t->mu. */
static struct on *find(struct km_storms *t, const struct km_budget_storm *s)
{
	for (size_t i = 0; i < t->n; i++)
		if (same(&t->v[i].s, s))
			return &t->v[i];
	return NULL;
}

/* Under t->mu: a listener cleared is never called afterwards. */
static void tell(struct km_storms *t)
{
	if (t->fn)
		t->fn(t->fn_arg, t->n);
}

static void started(struct km_storms *t, const struct km_budget_storm *s)
{
	struct on o = {.s = *s, .started_us = km_now_us()};
	struct km_storm m = record_of(&o);

	km_log(KM_LOG_WARN,
	       "recovery: storm: automatic actions stop; a person's need "
	       "force",
	       s->group == KM_BUDGET_ZONE ? "zone" : "policy", s->name,
	       "cluster", *s->cluster ? s->cluster : "(default)", "why", s->why,
	       NULL);
	pthread_mutex_lock(&t->mu);
	if (find(t, s)) { /* cannot be: the budget ends one first */
		pthread_mutex_unlock(&t->mu);
		return;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct on *v = realloc(t->v, cap * sizeof *v);

		if (!v) {
			pthread_mutex_unlock(&t->mu);
			km_log(KM_LOG_ERROR,
			       "recovery: out of memory: a storm is not "
			       "recorded (the guard holds it all the same)",
			       "name", s->name, NULL);
			return;
		}
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = o;
	tell(t);
	pthread_mutex_unlock(&t->mu);
	if (km_store_begin_storm_async(t->store, &m, NULL, NULL))
		km_log(KM_LOG_ERROR, "recovery: a storm cannot be recorded",
		       "name", s->name, NULL);
}

static void ended(struct km_storms *t, const struct km_budget_storm *s)
{
	struct on *o, copy;

	pthread_mutex_lock(&t->mu);
	o = find(t, s);
	if (!o) {
		pthread_mutex_unlock(&t->mu);
		return;
	}
	copy = *o;
	memmove(o, o + 1, (size_t)(t->v + t->n - (o + 1)) * sizeof *o);
	t->n--;
	tell(t);
	pthread_mutex_unlock(&t->mu);
	km_log(KM_LOG_INFO, "recovery: the storm is over",
	       s->group == KM_BUDGET_ZONE ? "zone" : "policy", s->name,
	       "cluster", *s->cluster ? s->cluster : "(default)", "unhealthy",
	       KM_I((int64_t)s->unhealthy), "of", KM_I((int64_t)s->total),
	       "refused", KM_I(copy.refused), NULL);
	end_one(t, &copy, "");
}

void km_storms_change(struct km_storms *t,
		      const struct km_budget_storm_change *c)
{
	if (c->change > 0)
		started(t, &c->storm);
	else if (c->change < 0)
		ended(t, &c->storm);
}

void km_storms_refused(struct km_storms *t, const struct km_budget_storm *s)
{
	struct on *o;

	pthread_mutex_lock(&t->mu);
	if ((o = find(t, s)))
		o->refused++;
	pthread_mutex_unlock(&t->mu);
}

static const char *copy(struct km_arena *a, const char *s)
{
	const char *d = km_arena_strdup(a, s);

	return d ? d : "";
}

size_t km_storms_on(struct km_storms *t, struct km_storm *out, size_t max,
		    struct km_arena *a)
{
	size_t n;

	pthread_mutex_lock(&t->mu);
	n = t->n;
	for (size_t i = 0; i < n && i < max; i++) {
		out[i] = record_of(&t->v[i]);
		out[i].name = copy(a, out[i].name);
		out[i].cluster = copy(a, out[i].cluster);
		out[i].why = copy(a, out[i].why);
		out[i].end_note = "";
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

size_t km_storms_count(struct km_storms *t)
{
	size_t n;

	pthread_mutex_lock(&t->mu);
	n = t->n;
	pthread_mutex_unlock(&t->mu);
	return n;
}

void km_storms_set_listener(struct km_storms *t, km_storms_fn fn, void *arg)
{
	pthread_mutex_lock(&t->mu);
	t->fn = fn;
	t->fn_arg = arg;
	tell(t);
	pthread_mutex_unlock(&t->mu);
}
