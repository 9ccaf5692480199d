/*
 * Migrations: migrations/NNNN_name.sql, embedded in the binary, applied in
 * order at open (each in its own transaction) and recorded with their
 * SHA-256 in schema_migrations. A database with migrations this binary
 * does not know, or whose recorded checksum differs, is refused with a
 * message saying what to do.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "km_embed.h"
#include "km_log.h"
#include "km_time.h"
#include "store_internal.h"

extern const struct km_embedded_file km_migrations[];
extern const size_t km_migrations_count;

/* ---- migrations -------------------------------------------------------- */

static void sha256_hex(const unsigned char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* "0007_add_x.sql" -> 7; -1 if the name is not of that form. */
static int migration_version(const char *name)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		v = v * 10 + (name[i] - '0');
	}
	return name[4] == '_' ? v : -1;
}

int km_store_binary_schema_version(void)
{
	return (int)km_migrations_count;
}

int km_store_migrate(struct km_store *s, struct km_error *err)
{
	sqlite3 *db = s->db;
	sqlite3_stmt *st = NULL;
	int applied = 0, rc;

	/* The build embeds migrations sorted by name; they must be 1..N. */
	for (size_t i = 0; i < km_migrations_count; i++)
		if (migration_version(km_migrations[i].name) != (int)i + 1)
			return km_error_set(err, KM_EINTERNAL,
					    "embedded migration %s is out of "
					    "sequence (expected version %zu)",
					    km_migrations[i].name, i + 1);

	rc = km_store_exec(db,
			   "CREATE TABLE IF NOT EXISTS schema_migrations ("
			   " version INTEGER PRIMARY KEY,"
			   " name TEXT NOT NULL,"
			   " checksum TEXT NOT NULL,"
			   " applied_at INTEGER NOT NULL)",
			   err);
	if (rc)
		goto fail_msg;

	rc = km_store_prepare(db,
			      "SELECT version, name, checksum FROM "
			      "schema_migrations ORDER BY version",
			      &st, err);
	if (rc)
		goto fail_msg;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int v = sqlite3_column_int(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *sum = (const char *)sqlite3_column_text(st, 2);
		char want[65];

		if (v > (int)km_migrations_count) {
			km_error_set(err, KM_ETOONEW,
				     "database %s has schema version %d (%s), "
				     "newer than this kubemedicd, which knows "
				     "versions up to %zu: run the kubemedicd "
				     "that wrote it (or newer), or restore a "
				     "backup",
				     s->path, v, name ? name : "?",
				     km_migrations_count);
			goto fail;
		}
		if (v < 1 || v != applied + 1) {
			km_error_set(err, KM_ECORRUPT,
				     "database %s: schema_migrations has a gap "
				     "before version %d",
				     s->path, v);
			goto fail;
		}
		sha256_hex(km_migrations[v - 1].data, km_migrations[v - 1].len,
			   want);
		if (!sum || strcmp(sum, want) != 0) {
			km_error_set(err, KM_ECORRUPT,
				     "database %s: migration %s was applied "
				     "with checksum %.12s… but this binary's "
				     "copy has %.12s…: a released migration "
				     "was edited; restore it and add a new "
				     "migration instead",
				     s->path, km_migrations[v - 1].name,
				     sum ? sum : "(none)", want);
			goto fail;
		}
		applied = v;
	}
	if (rc != SQLITE_DONE) {
		km_store_sqlite_err(db, rc, err, "reading schema_migrations");
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;

	for (int v = applied + 1; v <= (int)km_migrations_count; v++) {
		const struct km_embedded_file *m = &km_migrations[v - 1];
		char sum[65];

		sha256_hex(m->data, m->len, sum);
		rc = km_store_exec(db, "BEGIN IMMEDIATE", err);
		if (!rc)
			rc = km_store_exec(db, (const char *)m->data, err);
		if (!rc)
			rc = km_store_prepare(db,
					      "INSERT INTO schema_migrations "
					      "VALUES (?1, ?2, ?3, ?4)",
					      &st, err);
		if (!rc) {
			sqlite3_bind_int(st, 1, v);
			sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, sum, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 4, km_now_us());
			rc = sqlite3_step(st) == SQLITE_DONE
				     ? 0
				     : km_store_sqlite_err(db,
							   sqlite3_errcode(db),
							   err, "record");
			sqlite3_finalize(st);
			st = NULL;
		}
		if (!rc)
			rc = km_store_exec(db, "COMMIT", err);
		if (rc) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			km_error_prefix(err, "database %s: migration %s failed",
					s->path, m->name);
			return rc;
		}
		km_log(KM_LOG_INFO, "migration applied", "db", s->path,
		       "migration", m->name, NULL);
		applied = v;
	}
	s->schema_version = applied;
	return 0;

fail_msg:
	km_error_prefix(err, "database %s", s->path);
fail:
	sqlite3_finalize(st);
	return err ? err->code : KM_EIO;
}

int km_store_schema_version(struct km_store *s)
{
	return s->schema_version;
}
