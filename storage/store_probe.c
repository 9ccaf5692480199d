/*
 * Probe definitions and targets: the synchronous writes.
 *
 * Each public function here packages its work as a sync_op and hands it to
 * the writer thread (km_store_run_sync), so it shares the writer's connection
 * and transaction and returns only after the commit. The *_op functions run
 * on the writer thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_log.h"
#include "km_time.h"
#include "store_internal.h"

/* ---- rows <-> structs -------------------------------------------------- */

/* Bound as ?1..?22 by bind_spec; the same order in INSERT and UPDATE. */
#define PROBE_SPEC_COLS                                                      \
	"name, labels, type, host, port, path, https, tls_verify, ca_file, " \
	"headers, service, argv, env, workdir, min_size, max_age_s, "        \
	"initial_delay_ms, timeout_ms, period_ms, success_threshold, "       \
	"failure_threshold, source"

/* Owns the encoded blobs bound by bind_spec until the statement is done. */
struct spec_blobs {
	char *labels, *headers, *argv, *env;
	size_t labels_len, headers_len, argv_len, env_len;
};

static void spec_blobs_free(struct spec_blobs *b)
{
	free(b->labels);
	free(b->headers);
	free(b->argv);
	free(b->env);
}

static int bind_spec(sqlite3_stmt *st, const struct km_probe *p,
		     struct spec_blobs *b)
{
	memset(b, 0, sizeof *b);
	if (km_store_list_encode_kv(p->labels, p->n_labels, &b->labels,
				    &b->labels_len) ||
	    km_store_list_encode_kv(p->headers, p->n_headers, &b->headers,
				    &b->headers_len) ||
	    km_store_list_encode_strs(p->argv, p->argc, &b->argv,
				      &b->argv_len) ||
	    km_store_list_encode_kv(p->env, p->n_env, &b->env, &b->env_len)) {
		spec_blobs_free(b);
		return KM_ENOMEM;
	}
#define TEXT(i, v) sqlite3_bind_text(st, i, (v) ? (v) : "", -1, SQLITE_STATIC)
#define BLOB(i, v, l) sqlite3_bind_blob(st, i, v, (int)(l), SQLITE_STATIC)
	TEXT(1, p->name);
	BLOB(2, b->labels, b->labels_len);
	sqlite3_bind_int(st, 3, p->type);
	TEXT(4, p->host);
	sqlite3_bind_int(st, 5, p->port);
	TEXT(6, p->path);
	sqlite3_bind_int(st, 7, p->https);
	sqlite3_bind_int(st, 8, p->tls_verify);
	TEXT(9, p->ca_file);
	BLOB(10, b->headers, b->headers_len);
	TEXT(11, p->service);
	BLOB(12, b->argv, b->argv_len);
	BLOB(13, b->env, b->env_len);
	TEXT(14, p->workdir);
	sqlite3_bind_int64(st, 15, p->min_size);
	sqlite3_bind_int64(st, 16, p->max_age_s);
	sqlite3_bind_int64(st, 17, p->initial_delay_ms);
	sqlite3_bind_int64(st, 18, p->timeout_ms);
	sqlite3_bind_int64(st, 19, p->period_ms);
	sqlite3_bind_int(st, 20, p->success_threshold);
	sqlite3_bind_int(st, 21, p->failure_threshold);
	sqlite3_bind_int(st, 22, p->source ? p->source : KM_SOURCE_API);
#undef TEXT
#undef BLOB
	return 0;
}

int km_store_probe_from_row(struct km_arena *a, sqlite3_stmt *st,
			    struct km_probe *p)
{
	int rc = 0;

	memset(p, 0, sizeof *p);
	p->id = sqlite3_column_int64(st, 0);
	p->target_id = sqlite3_column_int64(st, 1);
	p->generation = sqlite3_column_int64(st, 2);
	p->create_us = sqlite3_column_int64(st, 3);
	p->update_us = sqlite3_column_int64(st, 4);
	/* Columns 5.. follow PROBE_SPEC_COLS. */
	p->name = km_store_col_text(a, st, 5);
	rc |= km_store_list_decode_kv(a, sqlite3_column_blob(st, 6),
				      (size_t)sqlite3_column_bytes(st, 6),
				      &p->labels, &p->n_labels);
	p->type = sqlite3_column_int(st, 7);
	p->host = km_store_col_text(a, st, 8);
	p->port = sqlite3_column_int(st, 9);
	p->path = km_store_col_text(a, st, 10);
	p->https = sqlite3_column_int(st, 11);
	p->tls_verify = sqlite3_column_int(st, 12);
	p->ca_file = km_store_col_text(a, st, 13);
	rc |= km_store_list_decode_kv(a, sqlite3_column_blob(st, 14),
				      (size_t)sqlite3_column_bytes(st, 14),
				      &p->headers, &p->n_headers);
	p->service = km_store_col_text(a, st, 15);
	rc |= km_store_list_decode_strs(a, sqlite3_column_blob(st, 16),
					(size_t)sqlite3_column_bytes(st, 16),
					&p->argv, &p->argc);
	rc |= km_store_list_decode_kv(a, sqlite3_column_blob(st, 17),
				      (size_t)sqlite3_column_bytes(st, 17),
				      &p->env, &p->n_env);
	p->workdir = km_store_col_text(a, st, 18);
	p->min_size = sqlite3_column_int64(st, 19);
	p->max_age_s = sqlite3_column_int64(st, 20);
	p->initial_delay_ms = sqlite3_column_int64(st, 21);
	p->timeout_ms = sqlite3_column_int64(st, 22);
	p->period_ms = sqlite3_column_int64(st, 23);
	p->success_threshold = sqlite3_column_int(st, 24);
	p->failure_threshold = sqlite3_column_int(st, 25);
	p->source = sqlite3_column_int(st, 26);
	if (!p->name || !p->host || !p->path || !p->ca_file || !p->service ||
	    !p->workdir)
		return KM_ENOMEM;
	return rc ? KM_ECORRUPT : 0;
}

const char *const km_store_probe_select =
	"SELECT id, target_id, generation, created_at, updated_at, " PROBE_SPEC_COLS
	" FROM probes";

/* ---- targets ----------------------------------------------------------- */

/* Creates t->name (or revives it if deleted) and sets t->id. Runs on the
 * writer thread. */
int km_store_target_ensure(struct km_store *s, struct km_target *t,
			   int64_t now_us, struct km_error *err)
{
	struct km_target_name tn;
	char why[256];
	char *labels = NULL;
	size_t labels_len = 0;
	sqlite3_stmt *st = NULL;
	int rc;

	if (km_target_name_parse(t->name, &tn, why, sizeof why))
		return km_error_set(err, KM_EINVAL, "%s", why);
	if (km_store_list_encode_kv(t->labels, t->n_labels, &labels,
				    &labels_len))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	st = s->stmt[W_UPSERT_TARGET];
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, tn.cluster ? tn.cluster : "",
			  (int)tn.cluster_len, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, tn.kind);
	sqlite3_bind_text(st, 4, tn.ns, (int)tn.ns_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, tn.name, (int)tn.name_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, t->uid ? t->uid : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, t->owner ? t->owner : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, t->node ? t->node : "", -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 9, labels, (int)labels_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, now_us);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = km_store_sqlite_err(s->db, rc, err, "upsert target");
		goto out;
	}
	t->id = sqlite3_column_int64(st, 0);
	rc = 0;
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	free(labels);
	return rc;
}

static int ensure_target_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct km_target *t = arg;

	return km_store_target_ensure(
		s, t, t->created_us ? t->created_us : km_now_us(), err);
}

int km_store_ensure_target(struct km_store *s, struct km_target *t,
			   struct km_error *err)
{
	return km_store_run_sync(s, ensure_target_op, t, err);
}

struct targets_args {
	struct km_target *t;
	size_t n;
};

/* The op's savepoint undoes every target of the batch when one fails. */
static int ensure_targets_op(struct km_store *s, void *arg,
			     struct km_error *err)
{
	struct targets_args *a = arg;
	int64_t now = km_now_us();

	for (size_t i = 0; i < a->n; i++) {
		struct km_target *t = &a->t[i];
		int rc = km_store_target_ensure(
			s, t, t->created_us ? t->created_us : now, err);

		if (rc)
			return rc;
	}
	return 0;
}

int km_store_ensure_targets(struct km_store *s, struct km_target *t, size_t n,
			    struct km_error *err)
{
	struct targets_args a = {.t = t, .n = n};

	if (!n)
		return 0;
	return km_store_run_sync(s, ensure_targets_op, &a, err);
}

struct delete_target_args {
	const char *name, *cause;
};

static int delete_target_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct delete_target_args *a = arg;
	sqlite3_stmt *st = NULL;
	int64_t id, defined;
	int rc;

	/* A defined probe's target goes with its probe (DeleteProbe); a
	 * probe target without a definition (a pod's probe, mirrored) is
	 * deleted like any. */
	rc = km_store_prepare(s->db,
			      "SELECT id, EXISTS (SELECT 1 FROM probes WHERE "
			      "target_id = targets.id) FROM targets WHERE "
			      "name = ?1 AND deleted_at = 0",
			      &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE
			     ? km_error_set(err, KM_ENOTFOUND,
					    "target \"%s\" not found", a->name)
			     : km_store_sqlite_err(s->db, rc, err,
						   "find target");
		sqlite3_finalize(st);
		return rc;
	}
	id = sqlite3_column_int64(st, 0);
	defined = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	if (defined)
		return km_error_set(err, KM_EINVAL,
				    "target \"%s\" is a probe's: delete the "
				    "probe",
				    a->name);
	return km_store_target_delete(s, id, a->cause, err);
}

struct changes_args {
	struct km_target_change *c;
	size_t n;
	km_store_done_fn done;
	void *done_arg;
};

/* The op's savepoint undoes every change of the batch when one fails. */
static int change_targets_op(struct km_store *s, void *arg,
			     struct km_error *err)
{
	struct changes_args *a = arg;
	int64_t now = km_now_us();

	for (size_t i = 0; i < a->n; i++) {
		struct km_target_change *c = &a->c[i];
		int rc = 0;

		if (c->delete_cause) {
			struct delete_target_args d = {.name = c->t.name,
						       .cause =
							       c->delete_cause};

			rc = delete_target_op(s, &d, err);
			if (rc == KM_ENOTFOUND)
				rc = 0;
		}
		if (!rc && c->make)
			rc = km_store_target_ensure(
				s, &c->t,
				c->t.created_us ? c->t.created_us : now, err);
		if (rc)
			return rc;
	}
	return 0;
}

static void changes_done(void *arg, int rc, const struct km_error *err)
{
	struct changes_args *a = arg;

	a->done(a->done_arg, rc, err);
	free(a);
}

int km_store_change_targets(struct km_store *s, struct km_target_change *c,
			    size_t n, km_store_done_fn done, void *arg)
{
	struct changes_args *a = malloc(sizeof *a);
	int rc;

	if (!a)
		return KM_ENOMEM;
	*a = (struct changes_args){.c = c,
				   .n = n,
				   .done = done,
				   .done_arg = arg};
	rc = km_store_run_async(s, change_targets_op, a, changes_done, a);
	if (rc)
		free(a);
	return rc;
}

int km_store_delete_target(struct km_store *s, const char *name,
			   const char *cause, struct km_error *err)
{
	struct delete_target_args a = {.name = name, .cause = cause};

	return km_store_run_sync(s, delete_target_op, &a, err);
}

int km_store_target_delete(struct km_store *s, int64_t target_id,
			   const char *cause, struct km_error *err)
{
	struct km_arena a;
	struct km_transition t = {.target_id = target_id,
				  .to_state = KM_STATE_DELETED,
				  .cause = cause};
	sqlite3_stmt *st = NULL;
	bool written;
	int rc;

	km_arena_init(&a, 1024);
	rc = km_store_prepare(
		s->db,
		"SELECT name, labels, state FROM targets WHERE id = ?1 "
		"AND deleted_at = 0",
		&st, err);
	if (rc)
		goto out;
	sqlite3_bind_int64(st, 1, target_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) { /* deleted already: nothing to record */
		rc = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		rc = km_store_sqlite_err(s->db, rc, err, "read target");
		goto out;
	}
	t.target_name = km_store_col_text(&a, st, 0);
	if (km_store_list_decode_kv(&a, sqlite3_column_blob(st, 1),
				    (size_t)sqlite3_column_bytes(st, 1),
				    (struct km_kv **)&t.labels, &t.n_labels)) {
		rc = km_error_set(err, KM_ECORRUPT,
				  "target %lld: undecodable labels",
				  (long long)target_id);
		goto out;
	}
	t.from_state = sqlite3_column_int(st, 2);
	t.at_us = km_now_us();
	rc = km_store_write_transition(s, &t, &written);
	if (rc)
		rc = km_store_sqlite_err(s->db, rc, err, "delete target");
out:
	sqlite3_finalize(st);
	km_arena_free(&a);
	return rc;
}

/* ---- probes ------------------------------------------------------------ */

struct probe_key {
	int64_t id, target_id, generation;
	int source;
};

/* Looks up a probe's identity; KM_ENOTFOUND if there is none. */
static int find_probe(struct km_store *s, const char *name, struct probe_key *k,
		      struct km_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	/* Zeroed on failure too: callers test rc, but the compiler cannot see
	 * that km_error_set never returns 0 (-Wmaybe-uninitialized at -O3). */
	*k = (struct probe_key){0};
	rc = km_store_prepare(s->db,
			      "SELECT id, target_id, generation, source FROM "
			      "probes WHERE name = ?1",
			      &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		k->id = sqlite3_column_int64(st, 0);
		k->target_id = sqlite3_column_int64(st, 1);
		k->generation = sqlite3_column_int64(st, 2);
		k->source = sqlite3_column_int(st, 3);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = km_error_set(err, KM_ENOTFOUND, "probe \"%s\" not found",
				  name);
	} else {
		rc = km_store_sqlite_err(s->db, rc, err, "find probe");
	}
	sqlite3_finalize(st);
	return rc;
}

static int create_probe_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct km_probe *p = arg;
	struct probe_key k;
	struct km_target t = {0};
	struct spec_blobs b;
	sqlite3_stmt *st = NULL;
	char tname[300];
	int64_t now = km_now_us();
	int rc;

	rc = find_probe(s, p->name, &k, NULL);
	if (rc == 0)
		return km_error_set(err, KM_EEXIST,
				    "probe \"%s\" already exists; use "
				    "UpdateProbe to change it",
				    p->name);
	if (rc != KM_ENOTFOUND)
		return find_probe(s, p->name, &k, err);

	snprintf(tname, sizeof tname, "probe//%s", p->name);
	t.name = tname;
	t.labels = p->labels;
	t.n_labels = p->n_labels;
	rc = km_store_target_ensure(s, &t, now, err);
	if (rc)
		return rc;

	rc = km_store_prepare(
		s->db,
		"INSERT INTO probes (" PROBE_SPEC_COLS
		", target_id, generation, created_at, updated_at, created_by) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
		"?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "
		"?21, ?22, ?23, 1, ?24, ?24, ?25) RETURNING id",
		&st, err);
	if (rc)
		return rc;
	if (bind_spec(st, p, &b)) {
		sqlite3_finalize(st);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	sqlite3_bind_int64(st, 23, t.id);
	sqlite3_bind_int64(st, 24, now);
	if (p->created_by)
		sqlite3_bind_text(st, 25, p->created_by, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		p->id = sqlite3_column_int64(st, 0);
		p->target_id = t.id;
		p->generation = 1;
		p->create_us = p->update_us = now;
		if (!p->source)
			p->source = KM_SOURCE_API;
		rc = 0;
	} else {
		rc = km_store_sqlite_err(s->db, rc, err, "insert probe");
	}
	sqlite3_finalize(st);
	spec_blobs_free(&b);
	return rc;
}

int km_store_create_probe(struct km_store *s, struct km_probe *p,
			  struct km_error *err)
{
	return km_store_run_sync(s, create_probe_op, p, err);
}

/* Replaces the spec of probe k with p; bumps the generation. */
static int replace_probe(struct km_store *s, const struct probe_key *k,
			 struct km_probe *p, struct km_error *err)
{
	struct spec_blobs b;
	sqlite3_stmt *st = NULL;
	int64_t now = km_now_us();
	int rc;

	rc = km_store_prepare(
		s->db,
		"UPDATE probes SET (" PROBE_SPEC_COLS
		") = (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
		"?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, "
		"?22), generation = generation + 1, updated_at = "
		"?24 WHERE id = ?23 RETURNING generation, "
		"created_at",
		&st, err);
	if (rc)
		return rc;
	if (bind_spec(st, p, &b)) {
		sqlite3_finalize(st);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	sqlite3_bind_int64(st, 23, k->id);
	sqlite3_bind_int64(st, 24, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		p->id = k->id;
		p->target_id = k->target_id;
		p->generation = sqlite3_column_int64(st, 0);
		p->create_us = sqlite3_column_int64(st, 1);
		p->update_us = now;
		rc = 0;
	} else {
		rc = km_store_sqlite_err(s->db, rc, err, "update probe");
	}
	sqlite3_finalize(st);
	spec_blobs_free(&b);
	if (rc)
		return rc;

	/* The target carries the probe's labels for ListTargets. */
	rc = km_store_prepare(s->db,
			      "UPDATE targets SET labels = ?2 WHERE id = ?1",
			      &st, err);
	if (rc)
		return rc;
	{
		char *labels = NULL;
		size_t len = 0;

		if (km_store_list_encode_kv(p->labels, p->n_labels, &labels,
					    &len)) {
			sqlite3_finalize(st);
			return km_error_set(err, KM_ENOMEM, "out of memory");
		}
		sqlite3_bind_int64(st, 1, k->target_id);
		sqlite3_bind_blob(st, 2, labels, (int)len, SQLITE_STATIC);
		rc = sqlite3_step(st);
		free(labels);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0
				 : km_store_sqlite_err(s->db, rc, err,
						       "update target labels");
}

struct update_args {
	struct km_probe *p;
	int64_t expected_generation;
	bool allow_config;
	bool changed;
};

static int read_probe(struct km_store *s, const char *name, struct km_arena *a,
		      struct km_probe *out, struct km_error *err);

static int update_probe_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct update_args *u = arg;
	struct probe_key k;
	int rc = find_probe(s, u->p->name, &k, err);

	if (rc)
		return rc;
	if (k.source == KM_SOURCE_CONFIG && !u->allow_config)
		return km_error_set(err, KM_EPRECOND,
				    "probe \"%s\" is defined in the config "
				    "file; change it there and restart "
				    "kubemedicd",
				    u->p->name);
	if (u->expected_generation && u->expected_generation != k.generation)
		return km_error_set(err, KM_EPRECOND,
				    "probe \"%s\" is at generation %lld, not "
				    "%lld: it changed since you read it; read "
				    "it again and retry",
				    u->p->name, (long long)k.generation,
				    (long long)u->expected_generation);
	u->p->source = k.source;
	/* The same definition again changes nothing, the generation
	 * included: a client that applies its desired state repeatedly (as
	 * `kubectl apply` users do) must not look like a writer to others
	 * watching the generation. */
	{
		struct km_arena a;
		struct km_probe cur;
		bool same;

		km_arena_init(&a, 4096);
		rc = read_probe(s, u->p->name, &a, &cur, err);
		same = rc == 0 && km_probe_spec_equal(&cur, u->p);
		if (same) {
			u->p->id = cur.id;
			u->p->target_id = cur.target_id;
			u->p->generation = cur.generation;
			u->p->create_us = cur.create_us;
			u->p->update_us = cur.update_us;
		}
		km_arena_free(&a);
		if (rc || same)
			return rc;
	}
	u->changed = true;
	return replace_probe(s, &k, u->p, err);
}

int km_store_update_probe(struct km_store *s, struct km_probe *p,
			  int64_t expected_generation, bool allow_config,
			  bool *changed, struct km_error *err)
{
	struct update_args u = {p, expected_generation, allow_config, false};
	int rc = km_store_run_sync(s, update_probe_op, &u, err);

	if (changed)
		*changed = rc == 0 && u.changed;
	return rc;
}

struct delete_args {
	const char *name;
	bool allow_config;
	const char *cause;
};

static int delete_probe_row(struct km_store *s, const struct probe_key *k,
			    const char *cause, struct km_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = km_store_prepare(s->db, "DELETE FROM probes WHERE id = ?1",
				  &st, err);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, k->id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return km_store_sqlite_err(s->db, rc, err, "delete probe");
	return km_store_target_delete(s, k->target_id, cause, err);
}

static int delete_probe_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct delete_args *d = arg;
	struct probe_key k;
	int rc = find_probe(s, d->name, &k, err);

	if (rc)
		return rc;
	if (k.source == KM_SOURCE_CONFIG && !d->allow_config)
		return km_error_set(err, KM_EPRECOND,
				    "probe \"%s\" is defined in the config "
				    "file; remove it there and restart "
				    "kubemedicd",
				    d->name);
	return delete_probe_row(s, &k, d->cause, err);
}

int km_store_delete_probe(struct km_store *s, const char *name,
			  bool allow_config, const char *cause,
			  struct km_error *err)
{
	struct delete_args d = {name, allow_config, cause};

	return km_store_run_sync(s, delete_probe_op, &d, err);
}

struct sync_args {
	struct km_probe *probes;
	size_t n;
};

static int read_probe(struct km_store *s, const char *name, struct km_arena *a,
		      struct km_probe *out, struct km_error *err)
{
	sqlite3_stmt *st = NULL;
	char *sql =
		km_arena_printf(a, "%s WHERE name = ?1", km_store_probe_select);
	int rc;

	if (!sql)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	rc = km_store_prepare(s->db, sql, &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = km_store_probe_from_row(a, st, out)
			     ? km_error_set(err, KM_ECORRUPT,
					    "probe \"%s\": undecodable row",
					    name)
			     : 0;
	else
		rc = km_store_sqlite_err(s->db, rc, err, "read probe");
	sqlite3_finalize(st);
	return rc;
}

static int sync_config_op(struct km_store *s, void *arg, struct km_error *err)
{
	struct sync_args *a = arg;
	struct km_arena arena;
	sqlite3_stmt *st = NULL;
	int rc = 0;

	km_arena_init(&arena, 4096);
	for (size_t i = 0; i < a->n && !rc; i++) {
		struct km_probe *p = &a->probes[i];
		struct probe_key k;
		struct km_probe cur;

		p->source = KM_SOURCE_CONFIG;
		rc = find_probe(s, p->name, &k, NULL);
		if (rc == KM_ENOTFOUND) {
			rc = create_probe_op(s, p, err);
			continue;
		}
		if (rc) {
			rc = find_probe(s, p->name, &k, err);
			continue;
		}
		rc = read_probe(s, p->name, &arena, &cur, err);
		if (rc)
			continue;
		if (k.source != KM_SOURCE_CONFIG)
			km_log(KM_LOG_WARN,
			       "config probe takes over the API probe of the "
			       "same name",
			       "probe", p->name, NULL);
		if (k.source != KM_SOURCE_CONFIG ||
		    !km_probe_spec_equal(&cur, p)) {
			rc = replace_probe(s, &k, p, err);
		} else {
			p->id = cur.id;
			p->target_id = cur.target_id;
			p->generation = cur.generation;
			p->create_us = cur.create_us;
			p->update_us = cur.update_us;
		}
		km_arena_reset(&arena);
	}
	if (rc)
		goto out;

	/* Config probes that left the file go away. Names are collected
	 * first: deleting rows under a running SELECT of the same table is
	 * not something to rely on. */
	rc = km_store_prepare(s->db, "SELECT name FROM probes WHERE source = 2",
			      &st, err);
	if (rc)
		goto out;
	{
		const char **gone = NULL;
		size_t n_gone = 0, cap = 0;

		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *name = km_store_col_text(&arena, st, 0);
			bool listed = false;

			for (size_t i = 0; i < a->n && !listed; i++)
				listed = strcmp(a->probes[i].name, name) == 0;
			if (listed)
				continue;
			if (n_gone == cap) {
				const char **g;
				cap = cap ? 2 * cap : 16;
				g = km_arena_alloc(&arena, cap * sizeof *g);
				if (!g) {
					rc = SQLITE_NOMEM;
					break;
				}
				if (n_gone)
					memcpy(g, gone, n_gone * sizeof *g);
				gone = g;
			}
			gone[n_gone++] = name;
		}
		if (rc != SQLITE_DONE) {
			rc = km_store_sqlite_err(s->db, rc, err,
						 "list config probes");
			goto out;
		}
		rc = 0;
		for (size_t i = 0; i < n_gone && !rc; i++) {
			struct probe_key k;

			rc = find_probe(s, gone[i], &k, err);
			if (!rc)
				rc = delete_probe_row(
					s, &k,
					"probe removed from the config file",
					err);
			if (!rc)
				km_log(KM_LOG_INFO, "config probe removed",
				       "probe", gone[i], NULL);
		}
	}
out:
	sqlite3_finalize(st);
	km_arena_free(&arena);
	return rc;
}

int km_store_sync_config_probes(struct km_store *s, struct km_probe *probes,
				size_t n, struct km_error *err)
{
	struct sync_args a = {probes, n};

	return km_store_run_sync(s, sync_config_op, &a, err);
}
