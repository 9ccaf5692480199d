/*
 * Every target's open run (km_runs.h): a chained hash table by target id
 * and a min-heap by the time each run comes due for its flush.
 */
#include "km_runs.h"

#include <stdlib.h>
#include <string.h>

#include "km_hash.h"

struct entry {
	struct entry *next;
	struct km_run run; /* run.target_id is the key */
	int64_t row_id;
	int64_t due_us;
	int64_t written_count; /* run.count when last written */
	int64_t last_add_us;   /* now_us of the last result folded */
	void *aux;             /* the caller's (km_runs_aux) */
	size_t heap_i;
};

struct km_runs {
	void (*free_aux)(void *aux);
	int64_t flush_us;
	size_t max_open;
	struct entry **b;
	size_t nb, n;
	uint64_t seed;
	struct entry **heap;
	size_t heap_cap;
};

int km_runs_new(const struct km_runs_options *o, struct km_runs **out)
{
	struct km_runs *t = calloc(1, sizeof *t);

	*out = NULL;
	if (!t)
		return KM_ENOMEM;
	t->flush_us = o && o->flush_us > 0 ? o->flush_us
					   : KM_RUNS_FLUSH_US_DEFAULT;
	t->max_open = o && o->max_open ? o->max_open : KM_RUNS_MAX_OPEN_DEFAULT;
	t->free_aux = o ? o->free_aux : NULL;
	t->nb = 64;
	t->seed = km_hash_seed();
	if (!(t->b = calloc(t->nb, sizeof *t->b))) {
		free(t);
		return KM_ENOMEM;
	}
	*out = t;
	return 0;
}

void km_runs_free(struct km_runs *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nb; i++)
		for (struct entry *e = t->b[i], *nx; e; e = nx) {
			nx = e->next;
			km_run_clear(&e->run);
			if (e->aux && t->free_aux)
				t->free_aux(e->aux);
			free(e);
		}
	free(t->b);
	free(t->heap);
	free(t);
}

/* ---- the table ---------------------------------------------------------- */

static size_t slot(const struct km_runs *t, int64_t id)
{
	return km_hash_bucket(km_hash_i64(t->seed, id), t->nb);
}

static struct entry *find(const struct km_runs *t, int64_t id)
{
	for (struct entry *e = t->b[slot(t, id)]; e; e = e->next)
		if (e->run.target_id == id)
			return e;
	return NULL;
}

/* Doubles the buckets past one entry per bucket; failing, it only gets
 * slower. */
static void grow(struct km_runs *t)
{
	size_t nb = t->nb * 2;
	struct entry **b;

	if (t->n < t->nb || !(b = calloc(nb, sizeof *b)))
		return;
	for (size_t i = 0; i < t->nb; i++)
		for (struct entry *e = t->b[i], *nx; e; e = nx) {
			size_t k = km_hash_bucket(
				km_hash_i64(t->seed, e->run.target_id), nb);

			nx = e->next;
			e->next = b[k];
			b[k] = e;
		}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

static void unlink_entry(struct km_runs *t, struct entry *e)
{
	struct entry **p = &t->b[slot(t, e->run.target_id)];

	while (*p != e)
		p = &(*p)->next;
	*p = e->next;
	t->n--;
}

/* ---- the heap (n entries: every open run is in it) ---------------------- */

static void heap_set(struct km_runs *t, size_t i, struct entry *e)
{
	t->heap[i] = e;
	e->heap_i = i;
}

static void sift_up(struct km_runs *t, size_t i)
{
	struct entry *e = t->heap[i];

	while (i > 0 && t->heap[(i - 1) / 2]->due_us > e->due_us) {
		heap_set(t, i, t->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(t, i, e);
}

static void sift_down(struct km_runs *t, size_t i, size_t n)
{
	struct entry *e = t->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && t->heap[c + 1]->due_us < t->heap[c]->due_us)
			c++;
		if (t->heap[c]->due_us >= e->due_us)
			break;
		heap_set(t, i, t->heap[c]);
		i = c;
	}
	heap_set(t, i, e);
}

static void heap_fix(struct km_runs *t, struct entry *e)
{
	sift_up(t, e->heap_i);
	sift_down(t, e->heap_i, t->n);
}

/* Removes e from the heap, whose size is still t->n + 1 (e is unlinked
 * from the table already). */
static void heap_remove(struct km_runs *t, struct entry *e)
{
	size_t last = t->n; /* the heap's last index */
	size_t i = e->heap_i;
	struct entry *m = t->heap[last];

	if (i != last) {
		heap_set(t, i, m);
		sift_up(t, i);
		sift_down(t, m->heap_i, last);
	}
}

/* ---- runs --------------------------------------------------------------- */

/* Hands e's run over to *w (moved: e's is empty after); its aux too when
 * the entry ends (!open). */
static void hand_over(struct entry *e, struct km_run_write *w, bool open)
{
	w->aux = open ? NULL : e->aux;
	w->run = e->run;
	w->row_id = e->row_id;
	w->open = open;
	w->changed = e->run.count != e->written_count;
	w->last_add_us = e->last_add_us;
	memset(&e->run, 0, sizeof e->run);
}

/* km_runs_add; *at is the target's entry when it has one after. */
static int add(struct km_runs *t, const struct km_result *r, int64_t now_us,
	       struct km_run_write *closed, bool *has_closed, struct entry **at)
{
	struct entry *e = find(t, r->target_id);
	int rc;

	*has_closed = false;
	*at = e;
	if (e)
		e->last_add_us = now_us;
	if (e && km_run_fits(&e->run, r))
		return km_run_add(&e->run, r);
	if (e) {
		int64_t id = r->target_id;

		hand_over(e, closed, false);
		closed->aux = NULL; /* stays with the target */
		*has_closed = true;
		if ((rc = km_run_begin(&e->run, r))) {
			/* No memory for the next run: the target has none
			 * open (the closed one is the caller's still). */
			e->run.target_id = id; /* for its bucket */
			unlink_entry(t, e);
			heap_remove(t, e);
			if (e->aux && t->free_aux)
				t->free_aux(e->aux);
			free(e);
			*at = NULL;
			return rc;
		}
		/* The target keeps its flush time: a target whose outcome
		 * flips faster than flush_us still comes due. */
		e->row_id = 0;
		e->written_count = 0;
		return 0;
	}
	if (t->n >= t->max_open)
		return KM_EFULL;
	if (t->n == t->heap_cap) {
		size_t cap = t->heap_cap ? t->heap_cap * 2 : 64;
		struct entry **h = realloc(t->heap, cap * sizeof *h);

		if (!h)
			return KM_ENOMEM;
		t->heap = h;
		t->heap_cap = cap;
	}
	if (!(e = calloc(1, sizeof *e)))
		return KM_ENOMEM;
	if ((rc = km_run_begin(&e->run, r))) {
		free(e);
		return rc;
	}
	e->due_us = now_us + t->flush_us;
	e->last_add_us = now_us;
	e->next = t->b[slot(t, r->target_id)];
	t->b[slot(t, r->target_id)] = e;
	heap_set(t, t->n, e);
	t->n++;
	sift_up(t, e->heap_i);
	grow(t);
	*at = e;
	return 0;
}

int km_runs_add(struct km_runs *t, const struct km_result *r, int64_t now_us,
		struct km_run_write *closed, bool *has_closed, void ***aux)
{
	struct entry *e;
	int rc = add(t, r, now_us, closed, has_closed, &e);

	if (aux)
		*aux = e ? &e->aux : NULL;
	return rc;
}

bool km_runs_end(struct km_runs *t, int64_t target_id,
		 struct km_run_write *closed)
{
	struct entry *e = find(t, target_id);

	if (!e)
		return false;
	unlink_entry(t, e);
	heap_remove(t, e);
	hand_over(e, closed, false);
	free(e);
	return true;
}

bool km_runs_due(struct km_runs *t, int64_t now_us, struct km_run_write *out)
{
	struct entry *e;

	if (!t->n || t->heap[0]->due_us > now_us)
		return false;
	e = t->heap[0];
	out->run = e->run; /* borrowed */
	out->row_id = e->row_id;
	out->open = true;
	out->changed = e->run.count != e->written_count;
	out->last_add_us = e->last_add_us;
	out->aux = e->aux;
	return true;
}

bool km_runs_get(struct km_runs *t, int64_t target_id, struct km_run_write *out)
{
	struct entry *e = find(t, target_id);

	if (!e)
		return false;
	out->run = e->run; /* borrowed */
	out->row_id = e->row_id;
	out->open = true;
	out->changed = e->run.count != e->written_count;
	out->last_add_us = e->last_add_us;
	out->aux = e->aux;
	return true;
}

void **km_runs_aux(struct km_runs *t, int64_t target_id)
{
	struct entry *e = find(t, target_id);

	return e ? &e->aux : NULL;
}

int km_runs_each(struct km_runs *t,
		 int (*fn)(void *arg, const struct km_run_write *w), void *arg)
{
	for (size_t i = 0; i < t->nb; i++)
		for (struct entry *e = t->b[i]; e; e = e->next) {
			struct km_run_write w = {.run = e->run,
						 .row_id = e->row_id,
						 .open = true,
						 .changed = e->run.count !=
							    e->written_count,
						 .last_add_us = e->last_add_us,
						 .aux = e->aux};
			int rc = fn(arg, &w);

			if (rc)
				return rc;
		}
	return 0;
}

void km_runs_unwritten_all(struct km_runs *t, void (*fn)(void *aux))
{
	for (size_t i = 0; i < t->nb; i++)
		for (struct entry *e = t->b[i]; e; e = e->next) {
			e->written_count = -1;
			if (fn && e->aux)
				fn(e->aux);
		}
}

int km_runs_written(struct km_runs *t, int64_t target_id, int64_t row_id,
		    int64_t now_us)
{
	struct entry *e = find(t, target_id);

	if (!e)
		return KM_ENOTFOUND;
	e->row_id = row_id;
	e->written_count = e->run.count;
	e->due_us = now_us + t->flush_us;
	heap_fix(t, e);
	return 0;
}

bool km_runs_pop(struct km_runs *t, struct km_run_write *out)
{
	return t->n && km_runs_end(t, t->heap[0]->run.target_id, out);
}

size_t km_runs_open(const struct km_runs *t)
{
	return t->n;
}

int64_t km_runs_next_due(const struct km_runs *t)
{
	return t->n ? t->heap[0]->due_us : INT64_MAX;
}
