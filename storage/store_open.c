/*
 * The store's life cycle: open (check that the database can be written,
 * lock it against a second daemon, configure the connection, migrate,
 * check a write, start the writer), close, and the SQLite helpers every
 * storage file uses, with the one mapping of SQLite's errors to km_err.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "km_log.h"
#include "store_internal.h"

/* ---- sqlite helpers ---------------------------------------------------- */

bool km_store_is_fault(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_PROTOCOL:
	case SQLITE_NOMEM:
	case SQLITE_NOLFS:
	case SQLITE_PERM: return true;
	}
	return false;
}

/* The message of one storage fault: what happened in words, SQLite's own
 * as detail, and what a person can do about it. */
static int set_err(struct km_error *err, int rc, const char *what,
		   const char *detail)
{
	const char *sep = what ? ": " : "";

	what = what ? what : "";
	switch (rc & 0xff) {
	case SQLITE_INTERRUPT:
		return km_error_set(err, KM_EDEADLINE, "%s%sdeadline exceeded",
				    what, sep);
	case SQLITE_FULL:
		return km_error_set(err, KM_EFULL,
				    "%s%sthe database's disk is full (SQLite: "
				    "%s): nothing is stored until space is "
				    "freed on its file system",
				    what, sep, detail);
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return km_error_set(err, KM_EUNAVAIL,
				    "%s%sthe database cannot be written "
				    "(SQLite: %s): check the permissions, "
				    "owner and mount of the database file and "
				    "its directory",
				    what, sep, detail);
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_PROTOCOL:
	case SQLITE_NOLFS:
		return km_error_set(err, KM_EUNAVAIL,
				    "%s%sI/O error on the database (SQLite: "
				    "%s): its disk or file system is failing "
				    "or went read-only",
				    what, sep, detail);
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return km_error_set(err, KM_EUNAVAIL, "%s%s%s", what, sep,
				    detail);
	case SQLITE_NOMEM:
		return km_error_set(err, KM_ENOMEM, "%s%s%s", what, sep,
				    detail);
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return km_error_set(err, KM_ECORRUPT, "%s%s%s", what, sep,
				    detail);
	}
	return km_error_set(err, KM_EIO, "%s%s%s", what, sep, detail);
}

int km_store_sqlite_err(sqlite3 *db, int rc, struct km_error *err,
			const char *what)
{
	return set_err(err, rc, what,
		       db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

int km_store_exec(sqlite3 *db, const char *sql, struct km_error *err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		rc = set_err(err, rc, NULL, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

int km_store_write_check(sqlite3 *db, struct km_error *err)
{
	sqlite3_stmt *st = NULL;
	char sql[64];
	int rc, v;

	rc = km_store_exec(db, "BEGIN IMMEDIATE", err);
	if (rc)
		return rc;
	rc = km_store_prepare(db, "PRAGMA user_version", &st, err);
	if (rc)
		goto fail;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = km_store_sqlite_err(db, sqlite3_errcode(db), err,
					 "write check");
		goto fail;
	}
	v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v);
	rc = km_store_exec(db, sql, err);
	if (!rc)
		rc = km_store_exec(db, "COMMIT", err);
	if (!rc)
		return 0;
fail:
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int km_store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st,
		     struct km_error *err)
{
	int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
				    NULL);

	if (rc != SQLITE_OK)
		return km_store_sqlite_err(db, rc, err, "prepare");
	return 0;
}

/* ---- writable, and ours alone ------------------------------------------- */

/* Refuses a database kubemedicd could open but not write. SQLite opens a
 * file it cannot write read-only without a word, and a directory where it
 * cannot create the WAL fails the first query with "unable to open
 * database file": both are better said at start, with what to fix. The
 * effective ids decide (AT_EACCESS), as they will for every write. */
static int check_writable(const char *path, struct km_error *err)
{
	char *copy = strdup(path);
	const char *dir;
	int rc = 0, e;

	if (!copy)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	dir = dirname(copy);
	if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS)) {
		e = errno;
		if (e == EROFS)
			rc = km_error_set(err, KM_EUNAVAIL,
					  "database %s is on a read-only file "
					  "system (%s): kubemedicd writes the "
					  "database, its -wal and -shm files "
					  "and %s.lock there; give it a "
					  "writable volume",
					  path, dir, path);
		else if (e == EACCES || e == EPERM)
			rc = km_error_set(err, KM_EUNAVAIL,
					  "database %s: the directory %s is "
					  "not writable by uid %d: SQLite "
					  "creates the database's -wal and "
					  "-shm files beside it, and "
					  "kubemedicd %s.lock; make the "
					  "directory writable, or put the "
					  "database elsewhere",
					  path, dir, (int)geteuid(), path);
		else
			rc = km_error_set(err, KM_EUNAVAIL,
					  "database %s: directory %s: %s", path,
					  dir, strerror(e));
	} else if (faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) &&
		   errno != ENOENT) {
		e = errno;
		if (e == EROFS)
			rc = km_error_set(err, KM_EUNAVAIL,
					  "database %s is on a read-only file "
					  "system; give it a writable volume",
					  path);
		else if (e == EACCES || e == EPERM)
			rc = km_error_set(err, KM_EUNAVAIL,
					  "database %s is a read-only file "
					  "for uid %d: make it readable and "
					  "writable by the daemon's user "
					  "(chmod, chown), or copy it",
					  path, (int)geteuid());
		else
			rc = km_error_set(err, KM_EUNAVAIL, "database %s: %s",
					  path, strerror(e));
	}
	free(copy);
	return rc;
}

/* One daemon per database: an exclusive flock(2) on "<db>.lock", which the
 * kernel drops when the process dies however it dies. Not SQLite's
 * locking_mode=EXCLUSIVE: in WAL mode that keeps the WAL index in the
 * writer's private memory and shuts out the readers' connections of our own
 * process. Not a lock on the database file itself: SQLite's POSIX locks on
 * it vanish when any descriptor of the file is closed, and NFS emulates
 * flock with those very locks. The file is named after the real path when
 * the database exists (a symlink to it finds the same lock) and keeps the
 * holder's pid, for the refusal of the next one. */
static int take_lock(struct km_store *s, struct km_error *err)
{
	char *real = realpath(s->path, NULL);
	char holder[32] = "";
	ssize_t n;
	int fd;

	if (asprintf(&s->lock_path, "%s.lock", real ? real : s->path) < 0) {
		s->lock_path = NULL;
		free(real);
		return km_error_set(err, KM_ENOMEM, "out of memory");
	}
	free(real);
	fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		  0644);
	if (fd < 0)
		return km_error_set(err, KM_EUNAVAIL,
				    "database %s: cannot open its lock file "
				    "%s: %s",
				    s->path, s->lock_path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int e = errno;

		if (e != EWOULDBLOCK) {
			close(fd);
			return km_error_set(err, KM_EUNAVAIL,
					    "database %s: cannot lock %s: %s",
					    s->path, s->lock_path, strerror(e));
		}
		n = pread(fd, holder, sizeof holder - 1, 0);
		holder[n > 0 ? n : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		close(fd);
		return km_error_set(err, KM_EUNAVAIL,
				    "database %s is in use by another "
				    "kubemedicd (%s%s, which holds %s): two "
				    "daemons on one database would run every "
				    "probe twice; stop that one, or give this "
				    "one another --db",
				    s->path, holder[0] ? "pid " : "pid unknown",
				    holder, s->lock_path);
	}
	/* Ours. The pid is for the message above; a disk too full to take it
	 * is found by the write check that follows. */
	n = snprintf(holder, sizeof holder, "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, holder, (size_t)n, 0) != n)
		km_log(KM_LOG_WARN, "cannot write the pid into the lock file",
		       "lock", s->lock_path, "err", strerror(errno), NULL);
	s->lock_fd = fd;
	return 0;
}

/* ---- open / close ------------------------------------------------------ */

static int configure(sqlite3 *db, bool sync_normal, struct km_error *err)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int rc;

	sqlite3_busy_timeout(db, 5000);
	rc = km_store_prepare(db, "PRAGMA journal_mode=WAL", &st, err);
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0)
				: NULL;
	if (!mode || strcmp(mode, "wal") != 0) {
		rc = km_error_set(err, KM_EIO,
				  "cannot switch to WAL mode (journal mode is "
				  "%s): %s",
				  mode ? mode : "?", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return rc;
	}
	sqlite3_finalize(st);
	rc = km_store_exec(db,
			   sync_normal ? "PRAGMA synchronous=NORMAL"
				       : "PRAGMA synchronous=FULL",
			   err);
	/* Checkpoints every 10,000 WAL pages (about 40 MB) instead of
	 * 1,000. A result dirties its target's index page, so at 10,000
	 * targets nearly every row adds a page to the WAL; a checkpoint
	 * copies each page once however often it was written since the
	 * last, and ten times the interval sees each page several times.
	 * The CPU per row fell by about a fifth (bench/wal_checkpoint.py;
	 * bench/RESULTS.md, issue 3, "What changed between run B and run
	 * D"). */
	if (!rc)
		rc = km_store_exec(db,
				   "PRAGMA foreign_keys=ON;"
				   "PRAGMA cache_size=-65536;"
				   "PRAGMA wal_autocheckpoint=10000;"
				   "PRAGMA journal_size_limit=67108864",
				   err);
	return rc;
}

int km_store_open(const struct km_store_options *opts, struct km_store **out,
		  struct km_error *err)
{
	struct km_store *s;
	int rc;

	*out = NULL;
	if (!opts->path || !opts->path[0])
		return km_error_set(err, KM_EINVAL, "database path is empty");
	s = calloc(1, sizeof *s);
	if (!s)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	s->o = *opts;
	if (!s->o.result_queue)
		s->o.result_queue = 65536;
	if (!s->o.control_queue)
		s->o.control_queue = 4096;
	if (!s->o.batch_max)
		s->o.batch_max = 8192;
	if (!s->o.retention_interval_ms)
		s->o.retention_interval_ms = 60000;
	if (!s->o.retention_batch)
		s->o.retention_batch = 2000;
	s->lock_fd = -1;
	s->path = strdup(opts->path);
	s->o.path = s->path;
	s->ring_cap = s->o.result_queue;
	s->ring = calloc(s->ring_cap, sizeof *s->ring);
	km_list_init(&s->ctl);
	s->batch_res = calloc(s->ring_cap, sizeof *s->batch_res);
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->fold_mu, NULL);
	pthread_cond_init(&s->work_cv, NULL);
	pthread_cond_init(&s->room_cv, NULL);
	pthread_cond_init(&s->done_cv, NULL);
	if (!s->path || !s->ring || !s->batch_res) {
		rc = km_error_set(err, KM_ENOMEM, "out of memory");
		goto fail;
	}

	rc = check_writable(s->path, err);
	if (!rc)
		rc = take_lock(s, err);
	if (rc)
		goto fail;
	rc = sqlite3_open_v2(s->path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		rc = km_error_set(
			err, KM_EIO, "cannot open database %s: %s", s->path,
			s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 0);
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		rc = km_error_set(err, KM_EUNAVAIL,
				  "database %s could only be opened "
				  "read-only: check the permissions, owner "
				  "and mount of the file",
				  s->path);
		goto fail;
	}
	rc = configure(s->db, s->o.sync_normal, err);
	if (rc) {
		km_error_prefix(err, "database %s", s->path);
		goto fail;
	}
	rc = km_store_migrate(s, err);
	if (rc)
		goto fail;
	rc = km_store_write_check(s->db, err);
	if (rc) {
		km_error_prefix(err, "database %s: write check", s->path);
		goto fail;
	}
	rc = km_store_writer_start(s, err);
	if (rc)
		goto fail;
	*out = s;
	return 0;

fail:
	km_store_close(s);
	return rc;
}

void km_store_close(struct km_store *s)
{
	if (!s)
		return;
	km_store_writer_stop(s);
	if (s->db) {
		/* A clean close checkpoints the WAL into the main file. */
		int rc = sqlite3_close(s->db);
		if (rc != SQLITE_OK)
			km_log(KM_LOG_ERROR, "database close failed", "db",
			       s->path, "err", sqlite3_errstr(rc), NULL);
	}
	/* After the close: its last checkpoint is under the lock too. The
	 * file stays (unlinking it would race with the next daemon's open). */
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->lock_path);
	pthread_cond_destroy(&s->done_cv);
	pthread_cond_destroy(&s->room_cv);
	pthread_cond_destroy(&s->work_cv);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->fold_mu);
	free(s->batch_res);
	free(s->ring);
	free(s->announce);
	free(s->rannounce);
	free(s->path);
	free(s);
}
