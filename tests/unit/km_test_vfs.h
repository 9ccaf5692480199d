/*
 * A disk that fails on demand, for the tests of what the store does when
 * commits fail: an SQLite VFS over the default one ("unix") that passes
 * everything through, except that
 *  - km_test_vfs_fail(code) makes every later write (xWrite, xTruncate)
 *    to a database, WAL or journal file fail with code — SQLITE_FULL as a
 *    full disk does, SQLITE_IOERR_WRITE as a file system gone read-only
 *    or a failing device does — and km_test_vfs_fail(0) lets them through
 *    again;
 *  - km_test_vfs_readonly(true) opens main databases read-only, as SQLite
 *    does by itself when it may not write the file.
 * km_test_vfs_install makes it the process's default VFS, so every
 * connection opened afterwards (the store's writer and readers) uses it.
 * Header-only: each test includes it once.
 */
#ifndef KM_TEST_VFS_H
#define KM_TEST_VFS_H

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>

struct km_tv_file {
	sqlite3_file base;
	int flags;          /* SQLITE_OPEN_* it was opened with */
	sqlite3_file *real; /* the default VFS's file, right after this */
};

static sqlite3_vfs km_tv_vfs;
static sqlite3_vfs *km_tv_real;
static atomic_int km_tv_fail_code;
static atomic_bool km_tv_readonly;
static atomic_long km_tv_failed; /* writes failed so far */

#define KM_TV_REAL(f) (((struct km_tv_file *)(f))->real)
#define KM_TV_WRITES \
	(SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL)

static inline int km_tv_fails(sqlite3_file *f)
{
	int code = atomic_load(&km_tv_fail_code);

	if (!code || !(((struct km_tv_file *)f)->flags & KM_TV_WRITES))
		return 0;
	atomic_fetch_add(&km_tv_failed, 1);
	return code;
}

static inline int km_tv_close(sqlite3_file *f)
{
	return KM_TV_REAL(f)->pMethods->xClose(KM_TV_REAL(f));
}

static inline int km_tv_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o)
{
	return KM_TV_REAL(f)->pMethods->xRead(KM_TV_REAL(f), p, n, o);
}

static inline int km_tv_write(sqlite3_file *f, const void *p, int n,
			      sqlite3_int64 o)
{
	int rc = km_tv_fails(f);

	return rc ? rc
		  : KM_TV_REAL(f)->pMethods->xWrite(KM_TV_REAL(f), p, n, o);
}

static inline int km_tv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	int rc = km_tv_fails(f);

	return rc ? rc
		  : KM_TV_REAL(f)->pMethods->xTruncate(KM_TV_REAL(f), size);
}

static inline int km_tv_sync(sqlite3_file *f, int flags)
{
	return KM_TV_REAL(f)->pMethods->xSync(KM_TV_REAL(f), flags);
}

static inline int km_tv_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return KM_TV_REAL(f)->pMethods->xFileSize(KM_TV_REAL(f), size);
}

static inline int km_tv_lock(sqlite3_file *f, int l)
{
	return KM_TV_REAL(f)->pMethods->xLock(KM_TV_REAL(f), l);
}

static inline int km_tv_unlock(sqlite3_file *f, int l)
{
	return KM_TV_REAL(f)->pMethods->xUnlock(KM_TV_REAL(f), l);
}

static inline int km_tv_check_lock(sqlite3_file *f, int *out)
{
	return KM_TV_REAL(f)->pMethods->xCheckReservedLock(KM_TV_REAL(f), out);
}

static inline int km_tv_control(sqlite3_file *f, int op, void *arg)
{
	return KM_TV_REAL(f)->pMethods->xFileControl(KM_TV_REAL(f), op, arg);
}

static inline int km_tv_sector(sqlite3_file *f)
{
	return KM_TV_REAL(f)->pMethods->xSectorSize(KM_TV_REAL(f));
}

static inline int km_tv_caps(sqlite3_file *f)
{
	return KM_TV_REAL(f)->pMethods->xDeviceCharacteristics(KM_TV_REAL(f));
}

static inline int km_tv_shm_map(sqlite3_file *f, int pg, int sz, int ext,
				void volatile **pp)
{
	return KM_TV_REAL(f)->pMethods->xShmMap(KM_TV_REAL(f), pg, sz, ext, pp);
}

static inline int km_tv_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return KM_TV_REAL(f)->pMethods->xShmLock(KM_TV_REAL(f), off, n, flags);
}

static inline void km_tv_shm_barrier(sqlite3_file *f)
{
	KM_TV_REAL(f)->pMethods->xShmBarrier(KM_TV_REAL(f));
}

static inline int km_tv_shm_unmap(sqlite3_file *f, int del)
{
	return KM_TV_REAL(f)->pMethods->xShmUnmap(KM_TV_REAL(f), del);
}

static inline int km_tv_fetch(sqlite3_file *f, sqlite3_int64 o, int n,
			      void **pp)
{
	return KM_TV_REAL(f)->pMethods->xFetch(KM_TV_REAL(f), o, n, pp);
}

static inline int km_tv_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return KM_TV_REAL(f)->pMethods->xUnfetch(KM_TV_REAL(f), o, p);
}

static const sqlite3_io_methods km_tv_methods = {
	.iVersion = 3,
	.xClose = km_tv_close,
	.xRead = km_tv_read,
	.xWrite = km_tv_write,
	.xTruncate = km_tv_truncate,
	.xSync = km_tv_sync,
	.xFileSize = km_tv_size,
	.xLock = km_tv_lock,
	.xUnlock = km_tv_unlock,
	.xCheckReservedLock = km_tv_check_lock,
	.xFileControl = km_tv_control,
	.xSectorSize = km_tv_sector,
	.xDeviceCharacteristics = km_tv_caps,
	.xShmMap = km_tv_shm_map,
	.xShmLock = km_tv_shm_lock,
	.xShmBarrier = km_tv_shm_barrier,
	.xShmUnmap = km_tv_shm_unmap,
	.xFetch = km_tv_fetch,
	.xUnfetch = km_tv_unfetch,
};

static inline int km_tv_open(sqlite3_vfs *vfs, const char *name,
			     sqlite3_file *f, int flags, int *out_flags)
{
	struct km_tv_file *tf = (struct km_tv_file *)f;
	int rc;

	(void)vfs;
	tf->real = (sqlite3_file *)&tf[1];
	tf->flags = flags;
	if ((flags & SQLITE_OPEN_MAIN_DB) && atomic_load(&km_tv_readonly))
		flags = (flags &
			 ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) |
			SQLITE_OPEN_READONLY;
	rc = km_tv_real->xOpen(km_tv_real, name, tf->real, flags, out_flags);
	/* SQLite calls xClose only on a file whose pMethods is set. */
	f->pMethods = tf->real->pMethods ? &km_tv_methods : NULL;
	return rc;
}

/* Registers the shim as the default VFS (once per process). */
static inline void km_test_vfs_install(void)
{
	if (km_tv_real)
		return;
	km_tv_real = sqlite3_vfs_find(NULL);
	km_tv_vfs = *km_tv_real;
	km_tv_vfs.zName = "km-test-faults";
	km_tv_vfs.szOsFile =
		(int)sizeof(struct km_tv_file) + km_tv_real->szOsFile;
	km_tv_vfs.xOpen = km_tv_open;
	km_tv_vfs.pNext = NULL;
	sqlite3_vfs_register(&km_tv_vfs, 1);
}

/* From now on writes fail with code (0: they work). */
static inline void km_test_vfs_fail(int code)
{
	atomic_store(&km_tv_fail_code, code);
}

/* Main databases opened from now on are read-only (false: read-write). */
static inline void km_test_vfs_readonly(bool on)
{
	atomic_store(&km_tv_readonly, on);
}

/* How many writes have failed so far. */
static inline long km_test_vfs_failed(void)
{
	return atomic_load(&km_tv_failed);
}

#endif
