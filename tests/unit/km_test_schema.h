/*
 * An old database for upgrade tests: the first `version` migrations
 * compiled into the binary applied and recorded exactly as
 * store_migrate.c records them, as a kubemedicd of that schema version
 * left its database. Needs cmocka, SQLite and OpenSSL's EVP (the
 * checksums).
 */
#ifndef KM_TEST_SCHEMA_H
#define KM_TEST_SCHEMA_H

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>

#include "km_embed.h"

extern const struct km_embedded_file km_migrations[];
extern const size_t km_migrations_count;

/* Creates path at schema `version` and returns it open (the caller adds
 * its rows and closes it). */
static inline sqlite3 *km_test_old_database(const char *path, int version)
{
	sqlite3 *db;

	assert_true(km_migrations_count > (size_t)version);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "PRAGMA journal_mode=WAL;"
				      "CREATE TABLE schema_migrations ("
				      " version INTEGER PRIMARY KEY,"
				      " name TEXT NOT NULL,"
				      " checksum TEXT NOT NULL,"
				      " applied_at INTEGER NOT NULL)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	for (int v = 1; v <= version; v++) {
		const struct km_embedded_file *m = &km_migrations[v - 1];
		unsigned char md[32];
		unsigned int mdlen = 0;
		char hex[65], *sql;

		assert_int_equal(sqlite3_exec(db, (const char *)m->data, NULL,
					      NULL, NULL),
				 SQLITE_OK);
		EVP_Digest(m->data, m->len, md, &mdlen, EVP_sha256(), NULL);
		for (unsigned i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		sql = sqlite3_mprintf("INSERT INTO schema_migrations VALUES "
				      "(%d, %Q, %Q, 1)",
				      v, m->name, hex);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_free(sql);
	}
	return db;
}

#endif
