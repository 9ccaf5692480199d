/*
 * The safety budget (km_budget.h): the targets with an action in flight
 * (a hash table: one at a time each), counters of actions in flight per
 * cluster and in all, token buckets per cluster and action kind and per
 * action kind in all, and the storm guard's groups and members.
 *
 * Token buckets in integers: a token is worth per_us units, a bucket
 * gains count units a microsecond and holds at most burst tokens; so
 * "1/min" refills one token in exactly 60,000,000 µs, with no rounding
 * drift over simulated hours. A bucket starts full.
 */
#include "km_budget.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtable.h"

#define MS_MINUTE (60LL * 1000)
#define MS_DAY (24LL * 3600 * 1000)

struct bucket {
	bool started;
	int64_t credit; /* units; a token is per_us of them */
	int64_t last_us;
};

struct cluster {
	char *name;
	int in_flight;
	struct bucket b[KM_ACTION_MAX + 1];
};

struct active {
	struct rt_node node; /* key: target */
	char *target;
	size_t cluster;
};

struct group {
	int kind;
	char *name, *cluster;
	size_t total, unhealthy;
	bool storm;
	int64_t since_us;
};

struct member {
	struct rt_node node; /* key: group kind, cluster, name, target */
	char *key;
	size_t group;
	bool unhealthy;
};

struct km_budget {
	struct km_budget_config c;
	struct cluster *clusters;
	size_t n_clusters;
	int in_flight;
	struct bucket global[KM_ACTION_MAX + 1];
	struct rt active;
	struct group *groups;
	size_t n_groups, cap_groups;
	struct rt members;
	struct km_budget_stats stats;
};

void km_budget_config_defaults(struct km_budget_config *c)
{
	memset(c, 0, sizeof *c);
	c->max_concurrent = 20;
	c->max_concurrent_per_cluster = 10;
	c->rates[KM_ACTION_RESTART_POD] =
		(struct km_budget_rate){30, MS_MINUTE, 10};
	c->rates[KM_ACTION_ROLLOUT_RESTART] =
		(struct km_budget_rate){5, MS_MINUTE, 3};
	c->rates[KM_ACTION_CORDON] = (struct km_budget_rate){1, MS_MINUTE, 1};
	c->rates[KM_ACTION_UNCORDON] = (struct km_budget_rate){5, MS_MINUTE, 5};
	c->rates[KM_ACTION_DRAIN] =
		(struct km_budget_rate){1, 5 * MS_MINUTE, 1};
	for (int a = 1; a <= KM_ACTION_MAX; a++)
		c->global_rates[a] = (struct km_budget_rate){0, MS_MINUTE, 1};
	c->storm_share_pct = 40;
	c->storm_min_unhealthy = 3;
	c->max_members = KM_BUDGET_MAX_MEMBERS_DEFAULT;
}

static int check_rate(const struct km_budget_rate *r, const char *what,
		      int action, struct km_error *err)
{
	if (r->count < 0 || r->count > 1000000)
		return km_error_set(err, KM_EINVAL,
				    "%s.%s: the count must be between 0 (no "
				    "limit) and 1000000",
				    what, km_action_name(action));
	if (!r->count)
		return 0;
	if (r->per_ms < 1000 || r->per_ms > MS_DAY)
		return km_error_set(err, KM_EINVAL,
				    "%s.%s: the period must be between 1s and "
				    "1d",
				    what, km_action_name(action));
	if (r->burst < 1 || r->burst > 1000000)
		return km_error_set(err, KM_EINVAL,
				    "%s.%s.burst: must be between 1 and "
				    "1000000",
				    what, km_action_name(action));
	return 0;
}

int km_budget_config_check(const struct km_budget_config *c,
			   struct km_error *err)
{
	int rc;

	if (c->max_concurrent < 1 || c->max_concurrent > 10000)
		return km_error_set(err, KM_EINVAL,
				    "maxConcurrent: must be between 1 and "
				    "10000");
	if (c->max_concurrent_per_cluster < 1 ||
	    c->max_concurrent_per_cluster > c->max_concurrent)
		return km_error_set(err, KM_EINVAL,
				    "maxConcurrentPerCluster: must be between "
				    "1 and maxConcurrent (%d)",
				    c->max_concurrent);
	for (int a = 1; a <= KM_ACTION_MAX; a++)
		if ((rc = check_rate(&c->rates[a], "rates", a, err)) ||
		    (rc = check_rate(&c->global_rates[a], "globalRates", a,
				     err)))
			return rc;
	if (c->storm_share_pct < 1 || c->storm_share_pct > 99)
		return km_error_set(err, KM_EINVAL,
				    "storm.share: must be between 1 and 99 "
				    "(percent)");
	if (c->storm_min_unhealthy < 1 || c->storm_min_unhealthy > 1000000)
		return km_error_set(err, KM_EINVAL,
				    "storm.minUnhealthy: must be between 1 "
				    "and 1000000");
	return 0;
}

int km_budget_new(const struct km_budget_config *c, struct km_budget **out,
		  struct km_error *err)
{
	struct km_budget *b;
	int rc;

	*out = NULL;
	if ((rc = km_budget_config_check(c, err)))
		return rc;
	b = calloc(1, sizeof *b);
	if (!b)
		return km_error_set(err, KM_ENOMEM, "budget: out of memory");
	b->c = *c;
	if (!b->c.max_members)
		b->c.max_members = KM_BUDGET_MAX_MEMBERS_DEFAULT;
	if (rt_init(&b->active) || rt_init(&b->members)) {
		km_budget_free(b);
		return km_error_set(err, KM_ENOMEM, "budget: out of memory");
	}
	*out = b;
	return 0;
}

void km_budget_free(struct km_budget *b)
{
	if (!b)
		return;
	for (size_t i = 0; b->active.b && i < b->active.nb; i++)
		for (struct rt_node *n = b->active.b[i], *nx; n; n = nx) {
			nx = n->next;
			free(((struct active *)n)->target);
			free(n);
		}
	for (size_t i = 0; b->members.b && i < b->members.nb; i++)
		for (struct rt_node *n = b->members.b[i], *nx; n; n = nx) {
			nx = n->next;
			free(((struct member *)n)->key);
			free(n);
		}
	rt_fini(&b->active);
	rt_fini(&b->members);
	for (size_t i = 0; i < b->n_clusters; i++)
		free(b->clusters[i].name);
	free(b->clusters);
	for (size_t i = 0; i < b->n_groups; i++) {
		free(b->groups[i].name);
		free(b->groups[i].cluster);
	}
	free(b->groups);
	free(b);
}

/* ---- token buckets ----------------------------------------------------- */

/* Whether a token is there now; if not, *at when one will be. */
static bool bucket_has(struct bucket *k, const struct km_budget_rate *r,
		       int64_t now_us, int64_t *at)
{
	int64_t per_us = r->per_ms * 1000, cap = r->burst * per_us;

	if (!r->count)
		return true;
	if (!k->started) {
		k->started = true;
		k->credit = cap;
		k->last_us = now_us;
	}
	if (now_us > k->last_us) {
		int64_t need = cap - k->credit, dt = now_us - k->last_us;

		k->credit = dt > need / r->count ? cap
						 : k->credit + dt * r->count;
		k->last_us = now_us;
	}
	if (k->credit >= per_us)
		return true;
	*at = now_us + (per_us - k->credit + r->count - 1) / r->count;
	return false;
}

static void bucket_take(struct bucket *k, const struct km_budget_rate *r)
{
	if (r->count)
		k->credit -= r->per_ms * 1000;
}

/* "1/min", "5/s", "1/5min", "2/90s". */
static const char *rate_text(const struct km_budget_rate *r, char *buf,
			     size_t len)
{
	static const struct {
		int64_t ms;
		const char *unit;
	} units[] = {{MS_DAY, "d"},
		     {3600 * 1000, "h"},
		     {MS_MINUTE, "min"},
		     {1000, "s"}};

	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (r->per_ms % units[i].ms == 0) {
			int64_t n = r->per_ms / units[i].ms;

			if (n == 1)
				snprintf(buf, len, "%" PRId64 "/%s", r->count,
					 units[i].unit);
			else
				snprintf(buf, len, "%" PRId64 "/%" PRId64 "%s",
					 r->count, n, units[i].unit);
			return buf;
		}
	snprintf(buf, len, "%" PRId64 "/%" PRId64 "ms", r->count, r->per_ms);
	return buf;
}

/* ---- groups and members ------------------------------------------------ */

static const char *str0(const char *s)
{
	return s ? s : "";
}

static struct group *group_find(const struct km_budget *b, int kind,
				const char *name, const char *cluster)
{
	for (size_t i = 0; i < b->n_groups; i++) {
		struct group *g = &b->groups[i];

		if (g->kind == kind && !strcmp(g->name, name) &&
		    !strcmp(g->cluster, cluster))
			return g;
	}
	return NULL;
}

static int group_add(struct km_budget *b, int kind, const char *name,
		     const char *cluster, size_t *idx)
{
	struct group *g;

	if (b->n_groups == KM_BUDGET_MAX_GROUPS)
		return KM_EFULL;
	if (b->n_groups == b->cap_groups) {
		size_t cap = b->cap_groups ? b->cap_groups * 2 : 16;
		struct group *v = realloc(b->groups, cap * sizeof *v);

		if (!v)
			return KM_ENOMEM;
		b->groups = v;
		b->cap_groups = cap;
	}
	g = &b->groups[b->n_groups];
	memset(g, 0, sizeof *g);
	g->kind = kind;
	g->name = strdup(name);
	g->cluster = strdup(cluster);
	if (!g->name || !g->cluster) {
		free(g->name);
		free(g->cluster);
		return KM_ENOMEM;
	}
	*idx = b->n_groups++;
	return 0;
}

static bool storming(const struct km_budget *b, const struct group *g)
{
	return g->unhealthy >= (size_t)b->c.storm_min_unhealthy &&
	       g->unhealthy * 100 > (size_t)b->c.storm_share_pct * g->total;
}

static void storm_fill(const struct km_budget *b, const struct group *g,
		       struct km_budget_storm *s)
{
	size_t pct = g->total ? g->unhealthy * 100 / g->total : 0;
	bool zone = g->kind == KM_BUDGET_ZONE;

	memset(s, 0, sizeof *s);
	s->group = g->kind;
	snprintf(s->name, sizeof s->name, "%s", g->name);
	snprintf(s->cluster, sizeof s->cluster, "%s", g->cluster);
	s->unhealthy = g->unhealthy;
	s->total = g->total;
	s->share_pct = b->c.storm_share_pct;
	s->since_us = g->since_us;
	snprintf(s->why, sizeof s->why,
		 "storm: %zu of %zu %s %s%s%s%s unhealthy (%zu%% %s %d%%)",
		 g->unhealthy, g->total,
		 zone ? "nodes in" : "targets of policy", g->name,
		 *g->cluster ? " (" : "", g->cluster, *g->cluster ? ")" : "",
		 pct, g->storm ? ">" : "<=", b->c.storm_share_pct);
}

int km_budget_target_state(struct km_budget *b,
			   const struct km_budget_member *m, int64_t now_us,
			   struct km_budget_storm_change *out)
{
	struct km_budget_storm_change scratch;
	const char *cluster;
	struct member *mb;
	struct group *g;
	bool was;
	char *key;
	size_t gi;
	int rc;

	if (!out)
		out = &scratch;
	memset(out, 0, sizeof *out);
	if (!m ||
	    (m->group != KM_BUDGET_POLICY && m->group != KM_BUDGET_ZONE) ||
	    !m->name || !*m->name || !m->target || !*m->target)
		return KM_EINVAL;
	/* A policy's targets span clusters: its group has none. */
	cluster = m->group == KM_BUDGET_ZONE ? str0(m->cluster) : "";
	if (asprintf(&key, "%d\x1f%s\x1f%s\x1f%s", m->group, cluster, m->name,
		     m->target) < 0)
		return KM_ENOMEM;
	mb = (struct member *)rt_find(&b->members, key);
	if (!mb && m->gone) {
		free(key);
		return 0;
	}
	if (!mb) {
		if (b->members.n >= b->c.max_members) {
			free(key);
			return KM_EFULL;
		}
		g = group_find(b, m->group, m->name, cluster);
		if (g) {
			gi = (size_t)(g - b->groups);
		} else if ((rc = group_add(b, m->group, m->name, cluster,
					   &gi))) {
			free(key);
			return rc;
		}
		mb = calloc(1, sizeof *mb);
		if (!mb) {
			free(key);
			return KM_ENOMEM;
		}
		mb->key = key;
		mb->node.key = key;
		mb->group = gi;
		rt_insert(&b->members, &mb->node);
		b->groups[gi].total++;
	} else {
		free(key);
	}
	g = &b->groups[mb->group];
	was = g->storm;
	if (mb->unhealthy)
		g->unhealthy--;
	if (m->gone) {
		g->total--;
		rt_remove(&b->members, &mb->node);
		free(mb->key);
		free(mb);
	} else {
		mb->unhealthy = m->unhealthy;
		if (mb->unhealthy)
			g->unhealthy++;
	}
	g->storm = storming(b, g);
	if (g->storm != was) {
		if (g->storm)
			g->since_us = now_us;
		out->change = g->storm ? 1 : -1;
		storm_fill(b, g, &out->storm);
	}
	return 0;
}

size_t km_budget_storms(const struct km_budget *b, struct km_budget_storm *out,
			size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < b->n_groups; i++)
		if (b->groups[i].storm) {
			if (n < max)
				storm_fill(b, &b->groups[i], &out[n]);
			n++;
		}
	return n;
}

/* ---- admission --------------------------------------------------------- */

static int cluster_get(struct km_budget *b, const char *name, size_t *idx)
{
	struct cluster *v;

	for (size_t i = 0; i < b->n_clusters; i++)
		if (!strcmp(b->clusters[i].name, name)) {
			*idx = i;
			return 0;
		}
	if (b->n_clusters == KM_BUDGET_MAX_CLUSTERS)
		return KM_EFULL;
	v = realloc(b->clusters, (b->n_clusters + 1) * sizeof *v);
	if (!v)
		return KM_ENOMEM;
	b->clusters = v;
	memset(&v[b->n_clusters], 0, sizeof *v);
	if (!(v[b->n_clusters].name = strdup(name)))
		return KM_ENOMEM;
	*idx = b->n_clusters++;
	return 0;
}

static void refuse(struct km_budget_verdict *out, int why, uint64_t *counter,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void refuse(struct km_budget_verdict *out, int why, uint64_t *counter,
		   const char *fmt, ...)
{
	va_list ap;

	out->ok = false;
	out->refusal = why;
	(*counter)++;
	va_start(ap, fmt);
	vsnprintf(out->rule, sizeof out->rule, fmt, ap);
	va_end(ap);
}

int km_budget_admit(struct km_budget *b, const struct km_budget_request *r,
		    int64_t now_us, struct km_budget_verdict *out)
{
	const char *cl = str0(r->cluster), *in = *cl ? " in " : "";
	const struct group *storm = NULL;
	struct bucket *cb, *gb;
	struct active *act;
	struct cluster *c;
	int64_t at = 0;
	char rate[48];
	size_t ci;
	int rc;

	struct km_budget_storm *keep = out->storm;

	memset(out, 0, sizeof *out);
	out->storm = keep;
	if (!r->target || !*r->target || !km_action_name(r->action))
		return KM_EINVAL;
	if (rt_find(&b->active, r->target)) {
		refuse(out, KM_BUDGET_BUSY, &b->stats.refused_target,
		       "one at a time: an action on %s is in flight",
		       r->target);
		return 0;
	}
	if (r->policy && *r->policy) {
		const struct group *g =
			group_find(b, KM_BUDGET_POLICY, r->policy, "");

		if (g && g->storm)
			storm = g;
	}
	if (!storm && r->zone && *r->zone) {
		const struct group *g =
			group_find(b, KM_BUDGET_ZONE, r->zone, cl);

		if (g && g->storm)
			storm = g;
	}
	if (storm && (r->automatic || !r->force)) {
		struct km_budget_storm s;

		storm_fill(b, storm, &s);
		refuse(out, KM_BUDGET_STORM, &b->stats.refused_storm, "%s%s",
		       s.why,
		       r->automatic ? ": automatic actions stop"
				    : ": only a forced request passes");
		if (out->storm)
			*out->storm = s;
		return 0;
	}
	if ((rc = cluster_get(b, cl, &ci)))
		return rc;
	c = &b->clusters[ci];
	if (b->in_flight >= b->c.max_concurrent) {
		refuse(out, KM_BUDGET_CONCURRENCY,
		       &b->stats.refused_concurrency,
		       "max concurrent: %d actions in flight", b->in_flight);
		return 0;
	}
	if (c->in_flight >= b->c.max_concurrent_per_cluster) {
		refuse(out, KM_BUDGET_CONCURRENCY,
		       &b->stats.refused_concurrency,
		       "max concurrent: %d actions in flight%s%s", c->in_flight,
		       *cl ? " in " : " in the cluster", cl);
		return 0;
	}
	cb = &c->b[r->action];
	gb = &b->global[r->action];
	if (!bucket_has(cb, &b->c.rates[r->action], now_us, &at)) {
		refuse(out, KM_BUDGET_RATE, &b->stats.refused_rate,
		       "rate limit: %s %s%s%s", km_action_name(r->action),
		       rate_text(&b->c.rates[r->action], rate, sizeof rate), in,
		       cl);
		out->retry_at_us = at;
		return 0;
	}
	if (!bucket_has(gb, &b->c.global_rates[r->action], now_us, &at)) {
		refuse(out, KM_BUDGET_RATE, &b->stats.refused_rate,
		       "global rate limit: %s %s", km_action_name(r->action),
		       rate_text(&b->c.global_rates[r->action], rate,
				 sizeof rate));
		out->retry_at_us = at;
		return 0;
	}
	act = calloc(1, sizeof *act);
	if (!act || !(act->target = strdup(r->target))) {
		free(act);
		return KM_ENOMEM;
	}
	bucket_take(cb, &b->c.rates[r->action]);
	bucket_take(gb, &b->c.global_rates[r->action]);
	act->node.key = act->target;
	act->cluster = ci;
	rt_insert(&b->active, &act->node);
	c->in_flight++;
	b->in_flight++;
	b->stats.admitted++;
	out->ok = true;
	return 0;
}

int km_budget_release(struct km_budget *b, const char *target)
{
	struct active *a;

	if (!target || !(a = (struct active *)rt_find(&b->active, target)))
		return KM_ENOTFOUND;
	rt_remove(&b->active, &a->node);
	b->clusters[a->cluster].in_flight--;
	b->in_flight--;
	free(a->target);
	free(a);
	return 0;
}

void km_budget_get_stats(const struct km_budget *b, struct km_budget_stats *out)
{
	*out = b->stats;
	out->in_flight = (size_t)b->in_flight;
	out->members = b->members.n;
	out->groups = b->n_groups;
}
