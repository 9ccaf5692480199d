/*
 * Storage: migrations, the writer's batching and overload policy, keyset
 * paging of history, retention, probe definitions, and storage faults
 * (one store per database, unwritable databases refused, failed commits
 * retried, errors mapped) on a disk that fails on demand (km_test_vfs.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "km_store.h"
#include "km_test.h"
#include "km_test_heard.h"
#include "km_test_vfs.h"
#include "km_time.h"

extern char **environ;

struct fixture {
	char *dir;
	char *db;
	struct km_store *s;
	struct km_reader *r;
	struct km_arena a;
};

static int open_store(struct fixture *f, struct km_store_options *o)
{
	struct km_error err = {0};
	struct km_store_options def = {0};

	if (!o)
		o = &def;
	o->path = f->db;
	if (km_store_open(o, &f->s, &err)) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	if (km_reader_open(f->s, &f->r, &err)) {
		fprintf(stderr, "reader: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void close_store(struct fixture *f)
{
	km_reader_close(f->r);
	f->r = NULL;
	km_store_close(f->s);
	f->s = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	f->dir = km_test_tmpdir();
	if (!f->dir || asprintf(&f->db, "%s/km.db", f->dir) < 0)
		return -1;
	km_arena_init(&f->a, 4096);
	*state = f;
	return open_store(f, NULL);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close_store(f);
	km_arena_free(&f->a);
	km_test_rmrf(f->dir);
	free(f->db);
	free(f->dir);
	free(f);
	return 0;
}

static int64_t make_target(struct fixture *f, const char *name)
{
	struct km_target t = {.name = name};
	struct km_error err = {0};

	assert_int_equal(km_store_ensure_target(f->s, &t, &err), 0);
	assert_true(t.id > 0);
	return t.id;
}

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	return db;
}

static int64_t raw_count(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *st;
	int64_t n;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* ---- migrations ---------------------------------------------------------- */

static void test_migrations_applied_once(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(km_store_schema_version(f->s),
			 km_store_binary_schema_version());
	assert_true(km_store_binary_schema_version() >= 1);
	close_store(f);
	/* Reopening applies nothing new and keeps one row per migration. */
	assert_int_equal(open_store(f, NULL), 0);
	assert_int_equal(raw_count(f->db,
				   "SELECT count(*) FROM schema_migrations"),
			 km_store_binary_schema_version());
	assert_int_equal(raw_count(f->db,
				   "SELECT count(*) FROM schema_migrations "
				   "WHERE length(checksum) = 64"),
			 km_store_binary_schema_version());
}

static void test_newer_database_refused(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {.path = f->db};
	struct km_store *s = NULL;
	struct km_error err = {0};
	sqlite3 *db;

	close_store(f);
	db = raw_open(f->db);
	assert_int_equal(sqlite3_exec(db,
				      "INSERT INTO schema_migrations VALUES "
				      "(999, 'from_the_future', 'x', 0)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(km_store_open(&o, &s, &err), KM_ETOONEW);
	assert_null(s);
	assert_non_null(strstr(err.msg, "newer than this kubemedicd"));
	assert_non_null(strstr(err.msg, "999"));
	/* Nothing was changed by the refusal. */
	assert_int_equal(raw_count(f->db, "SELECT max(version) FROM "
					  "schema_migrations"),
			 999);
	db = raw_open(f->db);
	sqlite3_exec(db, "DELETE FROM schema_migrations WHERE version = 999",
		     NULL, NULL, NULL);
	sqlite3_close(db);
	assert_int_equal(open_store(f, NULL), 0);
}

static void test_edited_migration_refused(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {.path = f->db};
	struct km_store *s = NULL;
	struct km_error err = {0};
	sqlite3 *db;

	close_store(f);
	db = raw_open(f->db);
	sqlite3_exec(db,
		     "UPDATE schema_migrations SET checksum = 'abc' "
		     "WHERE version = 1",
		     NULL, NULL, NULL);
	sqlite3_close(db);
	assert_int_equal(km_store_open(&o, &s, &err), KM_ECORRUPT);
	assert_non_null(strstr(err.msg, "0001_initial.sql"));
	assert_non_null(strstr(err.msg, "edited"));
	assert_null(s);
}

static void test_not_a_database_refused(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {0};
	struct km_store *s = NULL;
	struct km_error err = {0};
	char *path;
	FILE *fp;

	assert_true(asprintf(&path, "%s/garbage.db", f->dir) > 0);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 512; i++)
		fputs("this is not sqlite ", fp);
	fclose(fp);
	o.path = path;
	assert_int_not_equal(km_store_open(&o, &s, &err), 0);
	assert_null(s);
	assert_non_null(strstr(err.msg, path));
	free(path);
}

/* ---- writer ------------------------------------------------------------- */

static void test_results_batched_and_flushed(void **state)
{
	struct fixture *f = *state;
	int64_t tid = make_target(f, "probe//batch");
	struct km_store_stats st;
	struct km_error err = {0};
	int64_t t0 = km_now_us();
	const int N = 20000;

	for (int i = 0; i < N; i++) {
		struct km_result r = {.target_id = tid,
				      .started_us = t0 + i,
				      .duration_us = 100,
				      .success = i % 3 != 0,
				      .error_class = i % 3 ? 0 : 5,
				      .status_code = 200,
				      .message = i % 3 ? NULL : "HTTP 500"};
		assert_int_equal(km_store_add_result(f->s, &r), 0);
	}
	assert_int_equal(km_store_flush(f->s, &err), 0);
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.results_written, N);
	assert_int_equal(st.results_dropped, 0);
	/* Batching: far fewer transactions than rows. */
	assert_true(st.batches < (uint64_t)N / 10);
	/* Every result is in a run; each failure (one in three) is a run of
	 * its own, with its message. */
	assert_int_equal(raw_count(f->db, "SELECT sum(count) FROM runs"), N);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM runs WHERE "
					  "first_message = 'HTTP 500' AND "
					  "last_message IS NULL AND count = 1"),
			 (N + 2) / 3);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM results"), 0);
}

static void test_overload_drops_oldest(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {.result_queue = 64};
	struct km_store_stats st;
	struct km_error err = {0};
	int64_t tid;
	sqlite3 *db;

	close_store(f);
	assert_int_equal(open_store(f, &o), 0);
	tid = make_target(f, "probe//overload");
	/* Hold the write lock so the writer cannot drain the queue. */
	db = raw_open(f->db);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
			 SQLITE_OK);
	for (int i = 0; i < 1000; i++) {
		struct km_result r = {.target_id = tid,
				      .started_us = i,
				      .success = true};
		assert_int_equal(km_store_add_result(f->s, &r), 0);
	}
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(km_store_flush(f->s, &err), 0);
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.results_queued, 1000);
	assert_true(st.results_dropped > 0);
	assert_int_equal(st.results_written + st.results_dropped, 1000);
	assert_true(st.result_queue_max_depth <= 64);
	/* What survived is the newest: the last result is always kept. */
	assert_int_equal(raw_count(f->db, "SELECT max(last_at) FROM runs"),
			 999);
}

static void add_results(struct fixture *f, int64_t tid, int from, int n)
{
	for (int i = from; i < from + n; i++) {
		struct km_result r = {.target_id = tid,
				      .started_us = i,
				      .success = true};
		assert_int_equal(km_store_add_result(f->s, &r), 0);
	}
}

/* The scheduling policy of this process's thread named km-writer. */
static int writer_policy(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int policy = -1;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[320], comm[32] = "";
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm",
			 e->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue;
		if (fgets(comm, sizeof comm, fp) &&
		    strcmp(comm, "km-writer\n") == 0)
			policy = sched_getscheduler((pid_t)atoi(e->d_name));
		fclose(fp);
	}
	closedir(d);
	return policy;
}

static void wait_written(struct fixture *f, uint64_t n)
{
	struct km_store_stats st;

	do {
		km_store_get_stats(f->s, &st);
	} while (st.results_written < n && usleep(1000) == 0);
	assert_int_equal(st.results_written, n);
}

/* Whether this thread, 10 nice steps down like the writer, could go
 * SCHED_IDLE and come back (CAP_SYS_NICE or RLIMIT_NICE; a build sandbox
 * may have neither). Found out on a thread of its own. */
static void *idle_and_back(void *arg)
{
	struct sched_param none = {0};

	errno = 0;
	setpriority(PRIO_PROCESS, (id_t)gettid(),
		    getpriority(PRIO_PROCESS, (id_t)gettid()) + 10);
	*(bool *)arg =
		!errno &&
		pthread_setschedparam(pthread_self(), SCHED_IDLE, &none) == 0 &&
		pthread_setschedparam(pthread_self(), SCHED_OTHER, &none) == 0;
	return NULL;
}

static bool idle_allowed_here(void)
{
	pthread_t t;
	bool ok = false;

	assert_int_equal(pthread_create(&t, NULL, idle_and_back, &ok), 0);
	pthread_join(t, NULL);
	return ok;
}

/* Where it may, the writer runs as SCHED_IDLE so it never delays a probe,
 * and a queue a quarter full gives it an ordinary share until it has
 * caught up. Where it could not come back from SCHED_IDLE it never goes
 * there. Nothing is dropped either way. */
static void test_writer_idle_until_behind(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {.result_queue = 64};
	struct km_store_stats st;
	struct km_error err = {0};
	bool idle = idle_allowed_here();
	int64_t tid;
	sqlite3 *db;

	close_store(f);
	assert_int_equal(open_store(f, &o), 0);
	tid = make_target(f, "probe//idle");
	/* A synchronous write (the target) does not count as falling
	 * behind; a result alone goes back to SCHED_IDLE. */
	add_results(f, tid, 0, 1);
	wait_written(f, 1);
	assert_int_equal(writer_policy(), idle ? SCHED_IDLE : SCHED_OTHER);
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.writer_idle, idle);
	assert_int_equal(st.writer_boosts, 0);

	/* Hold the write lock while 40 of 64 slots fill. */
	db = raw_open(f->db);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
			 SQLITE_OK);
	add_results(f, tid, 1, 40);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	wait_written(f, 41);
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.writer_boosts, idle ? 1 : 0);
	assert_int_equal(st.results_dropped, 0);

	/* Caught up: the next batch is written as SCHED_IDLE again. */
	add_results(f, tid, 41, 1);
	wait_written(f, 42);
	assert_int_equal(writer_policy(), idle ? SCHED_IDLE : SCHED_OTHER);
	assert_int_equal(km_store_flush(f->s, &err), 0);
	assert_int_equal(raw_count(f->db, "SELECT sum(count) FROM runs"), 42);
}

static void test_group_commit(void **state)
{
	struct fixture *f = *state;
	struct km_test_heard a = KM_TEST_HEARD_INIT;
	/* Results alone would wait ten minutes: everything below commits
	 * for another reason. */
	struct km_store_options o = {.commit_delay_us = 600LL * 1000000,
				     .batch_max = 16};
	struct km_error err = {0};
	struct km_store_stats st;
	int64_t tid;
	struct km_transition tr = {.from_state = KM_STATE_UNKNOWN,
				   .to_state = KM_STATE_HEALTHY,
				   .cause = "1 consecutive success"};

	close_store(f);
	assert_int_equal(open_store(f, &o), 0);
	km_store_set_listener(f->s, km_test_heard_one, &a);
	tid = make_target(f, "probe//group");
	tr.target_id = tid;

	/* A few results wait for company... */
	add_results(f, tid, 0, 5);
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.results_written, 0);
	/* ...until a transition comes: it commits at once, with them. */
	assert_int_equal(km_store_add_transition(f->s, &tr), 0);
	km_test_heard_wait(&a, 1);
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.results_written, 5);

	/* A full batch does not wait. */
	add_results(f, tid, 5, 16);
	do {
		km_store_get_stats(f->s, &st);
	} while (st.results_written < 21 && usleep(1000) == 0);
	assert_int_equal(st.results_written, 21);

	/* A flush does not wait either. */
	add_results(f, tid, 21, 3);
	assert_int_equal(km_store_flush(f->s, &err), 0);
	assert_int_equal(raw_count(f->db, "SELECT sum(count) FROM runs"), 24);

	/* Nor does the close: nothing queued is lost. */
	add_results(f, tid, 24, 2);
	close_store(f);
	assert_int_equal(raw_count(f->db, "SELECT sum(count) FROM runs"), 26);
	assert_int_equal(open_store(f, NULL), 0);
}

static void test_transitions_update_target(void **state)
{
	struct fixture *f = *state;
	int64_t tid = make_target(f, "probe//trans");
	struct km_error err = {0};
	struct km_target t;
	struct km_transition tr = {.target_id = tid,
				   .at_us = 1000,
				   .from_state = KM_STATE_UNKNOWN,
				   .to_state = KM_STATE_UNHEALTHY,
				   .cause = "3 consecutive failures"};

	assert_int_equal(km_store_add_transition(f->s, &tr), 0);
	tr.at_us = 2000;
	tr.from_state = KM_STATE_UNHEALTHY;
	tr.flapping = true; /* flapping only: state_since stays */
	assert_int_equal(km_store_add_transition(f->s, &tr), 0);
	assert_int_equal(km_store_flush(f->s, &err), 0);
	assert_int_equal(
		km_reader_get_target(f->r, "probe//trans", &f->a, &t, &err), 0);
	assert_int_equal(t.state, KM_STATE_UNHEALTHY);
	assert_true(t.flapping);
	assert_int_equal(t.state_since_us, 1000);
	assert_true(t.last_transition_seq > 0);
}

static void test_sync_write_committed_before_return(void **state)
{
	struct fixture *f = *state;
	struct km_error err = {0};
	struct km_probe p = {.name = "durable",
			     .type = KM_PROBE_TCP,
			     .host = "127.0.0.1",
			     .port = 80,
			     .timeout_ms = 1000,
			     .period_ms = 10000,
			     .success_threshold = 1,
			     .failure_threshold = 3};

	assert_int_equal(km_store_create_probe(f->s, &p, &err), 0);
	/* Another connection sees it at once: it is committed. */
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM probes WHERE "
					  "name = 'durable'"),
			 1);
}

/* ---- paging ------------------------------------------------------------- */

/* 250 results at t = 1000 + 10 i; every 5th a failure; pairs share a time
 * so that paging must break ties by id. As rows of `results`, the way a
 * schema-5 database holds them (raw_results): km_reader_query_results
 * reads those. */
static int64_t fill_history(struct fixture *f)
{
	struct km_store_options raw = {.raw_results = true};
	struct km_error err = {0};
	int64_t tid;

	close_store(f);
	assert_int_equal(open_store(f, &raw), 0);
	tid = make_target(f, "probe//hist");

	make_target(f, "probe//other");
	for (int i = 0; i < 250; i++) {
		struct km_result r = {.target_id = tid,
				      .started_us = 1000 + 10 * (i / 2),
				      .success = i % 5 != 0,
				      .status_code = i};
		struct km_result noise = r;

		noise.target_id = tid + 1;
		assert_int_equal(km_store_add_result(f->s, &r), 0);
		assert_int_equal(km_store_add_result(f->s, &noise), 0);
	}
	assert_int_equal(km_store_flush(f->s, &err), 0);
	return tid;
}

static void page_through(struct fixture *f, struct km_history_query q,
			 int expect_total, bool oldest_first)
{
	struct km_error err = {0};
	int total = 0;
	int64_t last_t = oldest_first ? INT64_MIN : INT64_MAX, last_id = 0;
	bool more = true;
	int pages = 0;

	q.oldest_first = oldest_first;
	while (more) {
		struct km_result *v;
		size_t n;

		assert_int_equal(km_reader_query_results(f->r, &q, &f->a, &v,
							 &n, &more, &err),
				 0);
		pages++;
		for (size_t i = 0; i < n; i++) {
			/* Strictly ordered by (time, id): no repeats, no
			 * skips across page boundaries. */
			if (oldest_first)
				assert_true(v[i].started_us > last_t ||
					    (v[i].started_us == last_t &&
					     v[i].id > last_id));
			else
				assert_true(v[i].started_us < last_t ||
					    (v[i].started_us == last_t &&
					     v[i].id < last_id));
			last_t = v[i].started_us;
			last_id = v[i].id;
			assert_int_equal(v[i].target_id, q.target_id);
			if (q.outcome == KM_OUTCOME_FAILURE)
				assert_false(v[i].success);
			if (q.outcome == KM_OUTCOME_SUCCESS)
				assert_true(v[i].success);
			assert_true(v[i].started_us >= q.from_us &&
				    v[i].started_us < q.to_us);
		}
		total += (int)n;
		if (more)
			assert_int_equal(n, q.limit);
		q.has_cursor = true;
		q.cursor_us = last_t;
		q.cursor_id = last_id;
		km_arena_reset(&f->a);
	}
	assert_int_equal(total, expect_total);
	/* The more flag is exact: no empty trailing page. */
	assert_int_equal(pages, expect_total ? (expect_total + (int)q.limit -
						1) / (int)q.limit
					     : 1);
}

static void test_history_paging_both_orders(void **state)
{
	struct fixture *f = *state;
	struct km_history_query q = {.from_us = INT64_MIN,
				     .to_us = INT64_MAX,
				     .limit = 7};

	q.target_id = fill_history(f);
	page_through(f, q, 250, false);
	page_through(f, q, 250, true);
	q.outcome = KM_OUTCOME_FAILURE;
	page_through(f, q, 50, false);
	q.outcome = KM_OUTCOME_SUCCESS;
	page_through(f, q, 200, true);
	/* Time range [1100, 1200): times 1100..1190, 10 distinct x 2. */
	q.outcome = KM_OUTCOME_ANY;
	q.from_us = 1100;
	q.to_us = 1200;
	page_through(f, q, 20, false);
	page_through(f, q, 20, true);
}

static void test_history_page_limit_and_more_flag(void **state)
{
	struct fixture *f = *state;
	struct km_history_query q = {.from_us = INT64_MIN,
				     .to_us = INT64_MAX,
				     .limit = 250};
	struct km_error err = {0};
	struct km_result *v;
	size_t n;
	bool more;

	q.target_id = fill_history(f);
	assert_int_equal(km_reader_query_results(f->r, &q, &f->a, &v, &n, &more,
						 &err),
			 0);
	assert_int_equal(n, 250);
	assert_false(more); /* exactly all of them: no phantom next page */
	q.limit = 249;
	assert_int_equal(km_reader_query_results(f->r, &q, &f->a, &v, &n, &more,
						 &err),
			 0);
	assert_true(more);
}

static void test_history_uses_indexes(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db = raw_open(f->db);
	sqlite3_stmt *st;
	char plan[1024] = "";
	const char *q =
		"EXPLAIN QUERY PLAN SELECT id FROM results WHERE target_id = 1 "
		"AND started_at >= 0 AND started_at < 100 AND "
		"(started_at, id) < (50, 7) AND success = 0 ORDER BY "
		"started_at DESC, id DESC LIMIT 10";

	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		strncat(plan, (const char *)sqlite3_column_text(st, 3),
			sizeof plan - strlen(plan) - 2);
		strcat(plan, ";");
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* The failures-only partial index, seeked by the keyset cursor, and
	 * no sort step. */
	assert_non_null(strstr(plan, "results_target_failures"));
	assert_null(strstr(plan, "TEMP B-TREE"));
	assert_null(strstr(plan, "SCAN results"));
}

static void test_transition_history(void **state)
{
	struct fixture *f = *state;
	int64_t tid = make_target(f, "probe//th");
	struct km_history_query q = {.target_id = tid,
				     .from_us = INT64_MIN,
				     .to_us = INT64_MAX,
				     .limit = 3,
				     .oldest_first = true};
	struct km_error err = {0};
	struct km_transition *v;
	size_t n;
	bool more;

	for (int i = 0; i < 5; i++) {
		struct km_transition t = {
			.target_id = tid,
			.at_us = 100 * (i + 1),
			.from_state = i % 2 ? KM_STATE_UNHEALTHY
					    : KM_STATE_HEALTHY,
			.to_state = i % 2 ? KM_STATE_HEALTHY
					  : KM_STATE_UNHEALTHY,
			.cause = "x"};
		assert_int_equal(km_store_add_transition(f->s, &t), 0);
	}
	assert_int_equal(km_store_flush(f->s, &err), 0);
	assert_int_equal(km_reader_query_transitions(f->r, &q, &f->a, &v, &n,
						     &more, &err),
			 0);
	assert_int_equal(n, 3);
	assert_true(more);
	assert_int_equal(v[0].at_us, 100);
	assert_true(v[1].seq > v[0].seq);
	q.has_cursor = true;
	q.cursor_us = v[2].at_us;
	q.cursor_id = v[2].seq;
	assert_int_equal(km_reader_query_transitions(f->r, &q, &f->a, &v, &n,
						     &more, &err),
			 0);
	assert_int_equal(n, 2);
	assert_false(more);
	assert_int_equal(v[1].at_us, 500);
}

static void test_deadline_interrupts_query(void **state)
{
	struct fixture *f = *state;
	struct km_history_query q = {.from_us = INT64_MIN,
				     .to_us = INT64_MAX,
				     .limit = 100};
	struct km_error err = {0};
	struct km_result *v;
	size_t n;
	bool more;

	q.target_id = fill_history(f);
	km_reader_set_deadline(f->r, km_mono_ns() - 1);
	assert_int_equal(km_reader_query_results(f->r, &q, &f->a, &v, &n, &more,
						 &err),
			 KM_EDEADLINE);
	km_reader_set_deadline(f->r, 0);
	assert_int_equal(km_reader_query_results(f->r, &q, &f->a, &v, &n, &more,
						 &err),
			 0);
	assert_int_equal(n, 100);
}

/* km_reader_target_health answers what the separate reads answer. */
static void test_target_health_matches_separate_reads(void **state)
{
	struct fixture *f = *state;
	int64_t tid = make_target(f, "probe//hh");
	struct km_error err = {0};
	struct km_target_health h;
	struct km_target t;
	struct km_result last;
	struct km_transition tr;
	int n;

	/* A target without results or transitions. */
	assert_int_equal(km_reader_target_health(f->r, "probe//hh", 100, &f->a,
						 &h, &err),
			 0);
	assert_int_equal(h.target.id, tid);
	assert_false(h.has_last);
	assert_int_equal(h.consecutive, 0);
	assert_false(h.has_transition);

	/* 8 results: s s f s s s f f, so the newest two are failures. */
	for (int i = 0; i < 8; i++) {
		bool fail = i == 2 || i >= 6;
		struct km_result r = {.target_id = tid,
				      .started_us = 1000 + i,
				      .duration_us = 5,
				      .success = !fail,
				      .error_class = fail ? 5 : 0,
				      .status_code = fail ? 500 : 200,
				      .message = fail ? "HTTP 500" : NULL};
		assert_int_equal(km_store_add_result(f->s, &r), 0);
	}
	tr = (struct km_transition){.target_id = tid,
				    .at_us = 1007,
				    .from_state = KM_STATE_HEALTHY,
				    .to_state = KM_STATE_UNHEALTHY,
				    .cause = "2 consecutive failures"};
	assert_int_equal(km_store_add_transition(f->s, &tr), 0);
	assert_int_equal(km_store_flush(f->s, &err), 0);

	assert_int_equal(km_reader_target_health(f->r, "probe//hh", 100, &f->a,
						 &h, &err),
			 0);
	assert_int_equal(
		km_reader_get_target(f->r, "probe//hh", &f->a, &t, &err), 0);
	assert_int_equal(km_reader_last_result(f->r, tid, &f->a, &last, &err),
			 0);
	assert_int_equal(km_reader_consecutive(f->r, tid, 100, &n, &err), 0);
	assert_int_equal(h.target.id, t.id);
	assert_string_equal(h.target.name, t.name);
	assert_int_equal(h.target.state, KM_STATE_UNHEALTHY);
	assert_int_equal(h.target.last_transition_seq, t.last_transition_seq);
	assert_true(h.has_last);
	assert_int_equal(h.last.id, last.id);
	assert_int_equal(h.last.started_us, 1007);
	assert_false(h.last.success);
	assert_string_equal(h.last.message, "HTTP 500");
	assert_int_equal(h.consecutive, n);
	assert_int_equal(h.consecutive, 2);
	assert_true(h.has_transition);
	assert_int_equal(km_reader_get_transition(f->r, t.last_transition_seq,
						  &f->a, &tr, &err),
			 0);
	assert_int_equal(h.transition.seq, tr.seq);
	assert_int_equal(h.transition.at_us, 1007);
	assert_string_equal(h.transition.cause, "2 consecutive failures");

	/* The streak stops at cap. */
	assert_int_equal(km_reader_target_health(f->r, "probe//hh", 1, &f->a,
						 &h, &err),
			 0);
	assert_int_equal(h.consecutive, 1);

	/* Retention removed the transition: none to show. */
	{
		sqlite3 *db = raw_open(f->db);
		assert_int_equal(sqlite3_exec(db, "DELETE FROM transitions",
					      NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_close(db);
	}
	assert_int_equal(km_reader_target_health(f->r, "probe//hh", 100, &f->a,
						 &h, &err),
			 0);
	assert_false(h.has_transition);
	assert_true(h.has_last);

	/* Unknown target; deadline past (and the reader still works). */
	assert_int_equal(km_reader_target_health(f->r, "probe//nope", 100,
						 &f->a, &h, &err),
			 KM_ENOTFOUND);
	assert_non_null(strstr(err.msg, "\"probe//nope\" not found"));
	km_reader_set_deadline(f->r, km_mono_ns() - 1);
	km_reader_target_health(f->r, "probe//hh", 100, &f->a, &h, &err);
	km_reader_set_deadline(f->r, 0);
	assert_int_equal(km_reader_target_health(f->r, "probe//hh", 100, &f->a,
						 &h, &err),
			 0);
	assert_int_equal(h.consecutive, 2);
}

/* ---- retention ---------------------------------------------------------- */

static void test_retention_deletes_old_rows_only(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {.results_retention_us = 3600LL * 1000000,
				     .transitions_retention_us =
					     3600LL * 1000000,
				     .retention_interval_ms = 3600000,
				     .retention_batch = 100};
	struct km_error err = {0};
	struct km_store_stats st;
	int64_t tid, now = km_now_us();

	close_store(f);
	assert_int_equal(open_store(f, &o), 0);
	tid = make_target(f, "probe//ret");
	for (int i = 0; i < 1000; i++) {
		/* 700 failures two hours old (one run), then 300 fresh
		 * successes (another). */
		struct km_result r = {.target_id = tid,
				      .success = i >= 700,
				      .error_class = i < 700 ? 1 : 0,
				      .started_us =
					      i < 700 ? now - 7200000000LL + i
						      : now + i};
		assert_int_equal(km_store_add_result(f->s, &r), 0);
	}
	for (int i = 0; i < 10; i++) {
		struct km_transition t = {.target_id = tid,
					  .from_state = 1,
					  .to_state = 2,
					  .at_us = i < 4 ? now - 7200000000LL
							 : now,
					  .cause = ""};
		assert_int_equal(km_store_add_transition(f->s, &t), 0);
	}
	assert_int_equal(km_store_flush(f->s, &err), 0);
	/* The sweep deletes the old run and the 4 old transitions (some may
	 * already have gone in the sweep the writer runs at start-up); the
	 * rollups have no retention here. */
	km_store_retention_sweep(f->s);
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.retention_deleted, 5);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM runs"), 1);
	assert_int_equal(raw_count(f->db, "SELECT sum(count) FROM runs"), 300);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM transitions"),
			 6);
	assert_int_equal(
		raw_count(f->db, "SELECT min(first_at) FROM runs") > now, 1);
	assert_int_equal(
		raw_count(f->db, "SELECT count(*) FROM rollup_minutes"), 2);
}

/* ---- probes ------------------------------------------------------------- */

static struct km_probe sample_probe(const char *name)
{
	static struct km_kv labels[] = {{"team", "shop"}, {"tier", "web"}};
	static struct km_kv headers[] = {{"X-Probe", "kubemedic"}};
	struct km_probe p = {.name = name,
			     .labels = labels,
			     .n_labels = 2,
			     .type = KM_PROBE_HTTP,
			     .host = "127.0.0.1",
			     .port = 8080,
			     .path = "/healthz",
			     .headers = headers,
			     .n_headers = 1,
			     .initial_delay_ms = 0,
			     .timeout_ms = 1000,
			     .period_ms = 10000,
			     .success_threshold = 1,
			     .failure_threshold = 3};
	return p;
}

static void test_probe_crud(void **state)
{
	struct fixture *f = *state;
	struct km_error err = {0};
	struct km_probe p = sample_probe("web"), got, dup = sample_probe("web");
	struct km_target t;

	assert_int_equal(km_store_create_probe(f->s, &p, &err), 0);
	assert_int_equal(p.generation, 1);
	assert_int_equal(p.source, KM_SOURCE_API);
	assert_int_equal(km_store_create_probe(f->s, &dup, &err), KM_EEXIST);
	assert_non_null(strstr(err.msg, "already exists"));

	assert_int_equal(km_reader_get_probe(f->r, "web", &f->a, &got, &err),
			 0);
	assert_true(km_probe_spec_equal(&p, &got));
	assert_int_equal(got.generation, 1);
	assert_int_equal(
		km_reader_get_target(f->r, "probe//web", &f->a, &t, &err), 0);
	assert_int_equal(t.kind, KM_KIND_PROBE);
	assert_string_equal(t.object_name, "web");
	assert_int_equal(t.n_labels, 2);
	assert_int_equal(t.state, KM_STATE_UNKNOWN);

	p.port = 9090;
	assert_int_equal(km_store_update_probe(f->s, &p, 1, false, NULL, &err),
			 0);
	assert_int_equal(p.generation, 2);
	assert_int_equal(km_store_update_probe(f->s, &p, 1, false, NULL, &err),
			 KM_EPRECOND);
	assert_non_null(strstr(err.msg, "generation 2"));
	assert_int_equal(km_reader_get_probe(f->r, "web", &f->a, &got, &err),
			 0);
	assert_int_equal(got.port, 9090);

	assert_int_equal(
		km_store_delete_probe(f->s, "web", false, "test", &err), 0);
	assert_int_equal(km_store_delete_probe(f->s, "web", false, "test",
					       &err),
			 KM_ENOTFOUND);
	assert_int_equal(km_reader_get_probe(f->r, "web", &f->a, &got, &err),
			 KM_ENOTFOUND);
	assert_int_equal(km_reader_get_target(f->r, "probe//web", &f->a, &t,
					      &err),
			 KM_ENOTFOUND);
	/* Re-creating revives the same target, so history continues. */
	dup = sample_probe("web");
	assert_int_equal(km_store_create_probe(f->s, &dup, &err), 0);
	assert_int_equal(dup.target_id, p.target_id);
}

static bool match_team(const struct km_probe *p, void *arg)
{
	for (size_t i = 0; i < p->n_labels; i++)
		if (!strcmp(p->labels[i].key, "team"))
			return !strcmp(p->labels[i].value, arg);
	return false;
}

static void test_probe_list_paging_and_filter(void **state)
{
	struct fixture *f = *state;
	struct km_error err = {0};
	struct km_probe *v;
	size_t n;
	bool more;
	char names[30][16];
	static struct km_kv other[] = {{"team", "infra"}};

	for (int i = 0; i < 30; i++) {
		struct km_probe p = sample_probe(names[i]);

		snprintf(names[i], sizeof names[i], "p%02d", i);
		p.name = names[i];
		if (i % 3 == 0) {
			p.labels = other;
			p.n_labels = 1;
		}
		assert_int_equal(km_store_create_probe(f->s, &p, &err), 0);
	}
	assert_int_equal(km_reader_list_probes(f->r, NULL, 12, NULL, NULL,
					       &f->a, &v, &n, &more, &err),
			 0);
	assert_int_equal(n, 12);
	assert_true(more);
	assert_string_equal(v[11].name, "p11");
	assert_int_equal(km_reader_list_probes(f->r, "p11", 100, match_team,
					       "shop", &f->a, &v, &n, &more,
					       &err),
			 0);
	/* p12..p29 without multiples of 3: 18 - 6 = 12. */
	assert_int_equal(n, 12);
	assert_false(more);
	assert_string_equal(v[0].name, "p13");
}

static bool even_target(const struct km_target *t, void *arg)
{
	(void)arg;
	return (t->name[strlen(t->name) - 1] - '0') % 2 == 0;
}

/* Pages of a filtered list count only the rows the filter keeps: "more"
 * is set by a kept row past the limit, never by a skipped one. */
static void test_target_list_paging_and_filter(void **state)
{
	struct fixture *f = *state;
	struct km_target_filter flt = {.kind = KM_KIND_PROBE,
				       .match = even_target};
	struct km_error err = {0};
	struct km_target *v;
	char name[32];
	size_t n;
	bool more;

	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof name, "probe//t%d", i);
		make_target(f, name);
	}
	assert_int_equal(km_reader_list_targets(f->r, &flt, 0, 3, &f->a, &v, &n,
						&more, &err),
			 0);
	assert_int_equal(n, 3);
	assert_true(more);
	assert_string_equal(v[0].name, "probe//t0");
	assert_string_equal(v[2].name, "probe//t4");
	assert_int_equal(km_reader_list_targets(f->r, &flt, v[2].id, 3, &f->a,
						&v, &n, &more, &err),
			 0);
	/* t6 and t8; t9 is skipped, so no next page. */
	assert_int_equal(n, 2);
	assert_false(more);
	assert_string_equal(v[1].name, "probe//t8");
	/* Exactly the limit, followed only by skipped rows. */
	assert_int_equal(km_reader_list_targets(f->r, &flt, 0, 5, &f->a, &v, &n,
						&more, &err),
			 0);
	assert_int_equal(n, 5);
	assert_false(more);
	/* Unfiltered: every row counts. */
	assert_int_equal(km_reader_list_targets(f->r, NULL, 0, 9, &f->a, &v, &n,
						&more, &err),
			 0);
	assert_int_equal(n, 9);
	assert_true(more);
}

/* Targets of watched objects: made many at once (an informer's first
 * list), all or none; identity kept and updated; deleted with a
 * transition while their history stays; a probe's target refused. */
static void test_object_targets(void **state)
{
	struct fixture *f = *state;
	struct km_kv labels[] = {{"app", "cart"}};
	struct km_target t[3] = {
		{.name = "pod/shop/cart-0",
		 .uid = "u-0",
		 .node = "node-1",
		 .owner = "deployment/shop/cart",
		 .labels = labels,
		 .n_labels = 1},
		{.name = "node//node-1", .uid = "u-n1"},
		{.name = "prod:service/shop/cart"},
	};
	struct km_target bad[2] = {{.name = "pod/shop/cart-1"},
				   {.name = "nonsense/x/y"}};
	struct km_error err = {0};
	struct km_target got;
	struct km_transition *tr;
	size_t n;
	bool more;

	assert_int_equal(km_store_ensure_targets(f->s, t, 3, &err), 0);
	assert_true(t[0].id > 0 && t[1].id > 0 && t[2].id > 0);
	assert_int_equal(km_reader_get_target(f->r, "pod/shop/cart-0", &f->a,
					      &got, &err),
			 0);
	assert_int_equal(got.kind, KM_KIND_POD);
	assert_string_equal(got.uid, "u-0");
	assert_string_equal(got.node, "node-1");
	assert_string_equal(got.owner, "deployment/shop/cart");
	assert_int_equal(got.n_labels, 1);
	assert_int_equal(km_reader_get_target(f->r, "prod:service/shop/cart",
					      &f->a, &got, &err),
			 0);
	assert_string_equal(got.cluster, "prod");
	/* The pod moves to another node: the same target, updated. */
	t[0].node = "node-2";
	assert_int_equal(km_store_ensure_targets(f->s, t, 1, &err), 0);
	assert_int_equal(km_reader_get_target(f->r, "pod/shop/cart-0", &f->a,
					      &got, &err),
			 0);
	assert_int_equal(got.id, t[0].id);
	assert_string_equal(got.node, "node-2");
	/* One bad name: nothing of the batch is made. */
	assert_int_equal(km_store_ensure_targets(f->s, bad, 2, &err),
			 KM_EINVAL);
	assert_non_null(strstr(err.msg, "nonsense"));
	assert_int_equal(km_reader_get_target(f->r, "pod/shop/cart-1", &f->a,
					      &got, &err),
			 KM_ENOTFOUND);

	/* Deleted: a transition to DELETED with the cause, the row kept. */
	assert_int_equal(km_store_delete_target(f->s, "pod/shop/cart-0",
						"pod deleted", &err),
			 0);
	assert_int_equal(km_reader_get_target(f->r, "pod/shop/cart-0", &f->a,
					      &got, &err),
			 KM_ENOTFOUND);
	assert_int_equal(km_reader_find_target(f->r, "pod/shop/cart-0", &f->a,
					       &got, &err),
			 0);
	assert_int_equal(km_reader_transitions_after(f->r, 0, 10, &f->a, &tr,
						     &n, &more, &err),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(tr[0].to_state, KM_STATE_DELETED);
	assert_string_equal(tr[0].cause, "pod deleted");
	assert_string_equal(tr[0].target_name, "pod/shop/cart-0");
	/* A watch's replay matches its filters on the target's identity. */
	assert_string_equal(tr[0].target_uid, "u-0");
	assert_string_equal(tr[0].target_node, "node-2");
	assert_string_equal(tr[0].target_owner, "deployment/shop/cart");
	assert_int_equal(km_store_delete_target(f->s, "pod/shop/cart-0",
						"again", &err),
			 KM_ENOTFOUND);
	assert_string_equal(err.msg, "target \"pod/shop/cart-0\" not found");
	/* A defined probe's target goes with its probe only; a probe
	 * target without a definition (a pod's probe, mirrored) goes. */
	{
		struct km_probe p = sample_probe("p");

		assert_int_equal(km_store_create_probe(f->s, &p, &err), 0);
	}
	assert_int_equal(km_store_delete_target(f->s, "probe//p", "no", &err),
			 KM_EINVAL);
	assert_string_equal(
		err.msg, "target \"probe//p\" is a probe's: delete the probe");
	make_target(f, "probe/shop/cart-0.app.readiness");
	assert_int_equal(
		km_store_delete_target(f->s, "probe/shop/cart-0.app.readiness",
				       "pod deleted", &err),
		0);
	/* An empty batch is nothing to do. */
	assert_int_equal(km_store_ensure_targets(f->s, t, 0, &err), 0);
}

/* km_store_change_targets' answer, for a test to wait on. */
struct changed {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, on_writer;
	int rc;
	char why[KM_ERROR_MSG_MAX];
	pthread_t caller;
};

static void on_changed(void *arg, int rc, const struct km_error *err)
{
	struct changed *c = arg;

	pthread_mutex_lock(&c->mu);
	c->done = true;
	c->rc = rc;
	c->on_writer = !pthread_equal(pthread_self(), c->caller);
	snprintf(c->why, sizeof c->why, "%s", rc ? err->msg : "");
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static int change_and_wait(struct fixture *f, struct km_target_change *c,
			   size_t n, struct changed *out)
{
	struct timespec until = km_realtime_after(10LL * 1000000000);

	*out = (struct changed){.mu = PTHREAD_MUTEX_INITIALIZER,
				.cv = PTHREAD_COND_INITIALIZER,
				.caller = pthread_self()};
	assert_int_equal(km_store_change_targets(f->s, c, n, on_changed, out),
			 0);
	pthread_mutex_lock(&out->mu);
	while (!out->done)
		if (pthread_cond_timedwait(&out->cv, &out->mu, &until))
			break;
	pthread_mutex_unlock(&out->mu);
	if (!out->done)
		fail_msg("no answer from the writer");
	assert_true(out->on_writer);
	return out->rc;
}

/* A source's changes without waiting: deletions and makes in one
 * transaction, in order (a name deleted and made again in one change),
 * the ids set when the writer answers, all or none. */
static void test_change_targets_async(void **state)
{
	struct fixture *f = *state;
	struct km_target_change c[3] = {
		{.t = {.name = "pod/shop/a", .uid = "a-1", .node = "n1"},
		 .make = true},
		{.t = {.name = "pod/shop/b", .uid = "b-1"}, .make = true},
		/* Deleting what does not exist is no error. */
		{.t = {.name = "pod/shop/none"}, .delete_cause = "pod deleted"},
	};
	struct km_target_change bad[2] = {
		{.t = {.name = "pod/shop/b"}, .delete_cause = "pod deleted"},
		{.t = {.name = "nonsense/x/y"}, .make = true},
	};
	struct km_error err = {0};
	struct km_target got;
	struct km_transition *tr;
	struct changed ch;
	int64_t a_id;
	size_t n;
	bool more;

	assert_int_equal(change_and_wait(f, c, 3, &ch), 0);
	assert_true(c[0].t.id > 0 && c[1].t.id > 0);
	a_id = c[0].t.id;
	assert_int_equal(
		km_reader_get_target(f->r, "pod/shop/a", &f->a, &got, &err), 0);
	assert_int_equal(got.id, a_id);
	assert_string_equal(got.uid, "a-1");
	assert_string_equal(got.node, "n1");

	/* Replaced under its name: deleted (a transition), made again. */
	c[0] = (struct km_target_change){.t = {.name = "pod/shop/a",
					       .uid = "a-2"},
					 .delete_cause = "pod deleted",
					 .make = true};
	assert_int_equal(change_and_wait(f, c, 1, &ch), 0);
	assert_int_equal(c[0].t.id, a_id); /* revived */
	assert_int_equal(
		km_reader_get_target(f->r, "pod/shop/a", &f->a, &got, &err), 0);
	assert_string_equal(got.uid, "a-2");
	assert_int_equal(got.state, KM_STATE_UNKNOWN);
	assert_int_equal(km_reader_transitions_after(f->r, 0, 10, &f->a, &tr,
						     &n, &more, &err),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(tr[0].to_state, KM_STATE_DELETED);
	assert_string_equal(tr[0].target_name, "pod/shop/a");
	assert_string_equal(tr[0].cause, "pod deleted");

	/* One bad name: the deletion before it is undone too. */
	assert_int_equal(change_and_wait(f, bad, 2, &ch), KM_EINVAL);
	assert_non_null(strstr(ch.why, "nonsense"));
	assert_int_equal(
		km_reader_get_target(f->r, "pod/shop/b", &f->a, &got, &err), 0);
	assert_int_equal(km_reader_transitions_after(f->r, 0, 10, &f->a, &tr,
						     &n, &more, &err),
			 0);
	assert_int_equal(n, 1);
}

/* The watch replay's pages: every target's transitions in seq order,
 * with the target's name, one row more telling whether a page follows. */
static void test_transitions_after_paging(void **state)
{
	struct fixture *f = *state;
	int64_t ids[2] = {make_target(f, "probe//ta"),
			  make_target(f, "probe//tb")};
	struct km_error err = {0};
	struct km_transition *v;
	int64_t after = 0;
	size_t n, total = 0;
	bool more = true;

	for (int i = 0; i < 5; i++) {
		struct km_transition t = {.target_id = ids[i % 2],
					  .at_us = 100 * (i + 1),
					  .from_state = KM_STATE_UNKNOWN,
					  .to_state = KM_STATE_HEALTHY,
					  .cause = "x"};
		assert_int_equal(km_store_add_transition(f->s, &t), 0);
	}
	assert_int_equal(km_store_flush(f->s, &err), 0);
	for (int page = 0; more; page++) {
		assert_int_equal(km_reader_transitions_after(f->r, after, 2,
							     &f->a, &v, &n,
							     &more, &err),
				 0);
		assert_int_equal(n, page < 2 ? 2 : 1);
		assert_true(more == (page < 2));
		for (size_t i = 0; i < n; i++) {
			assert_true(v[i].seq > after);
			after = v[i].seq;
			assert_string_equal(v[i].target_name,
					    total % 2 ? "probe//tb"
						      : "probe//ta");
			total++;
		}
	}
	assert_int_equal(total, 5);
	/* Past the end: an empty page, no next one. */
	assert_int_equal(km_reader_transitions_after(f->r, after, 2, &f->a, &v,
						     &n, &more, &err),
			 0);
	assert_int_equal(n, 0);
	assert_false(more);
}

static void test_config_probes_protected_and_synced(void **state)
{
	struct fixture *f = *state;
	struct km_error err = {0};
	struct km_probe cfg[2] = {sample_probe("cfg-a"), sample_probe("cfg-b")};
	struct km_probe api = sample_probe("cfg-b"), got;

	assert_int_equal(km_store_create_probe(f->s, &api, &err), 0);
	assert_int_equal(km_store_sync_config_probes(f->s, cfg, 2, &err), 0);
	assert_int_equal(km_reader_get_probe(f->r, "cfg-b", &f->a, &got, &err),
			 0);
	assert_int_equal(got.source, KM_SOURCE_CONFIG); /* taken over */
	assert_int_equal(km_store_delete_probe(f->s, "cfg-a", false, "test",
					       &err),
			 KM_EPRECOND);
	assert_non_null(strstr(err.msg, "config file"));
	got.port = 1;
	assert_int_equal(km_store_update_probe(f->s, &got, 0, false, NULL,
					       &err),
			 KM_EPRECOND);

	/* Unchanged: no new generation. Dropped from the file: deleted. */
	cfg[0] = sample_probe("cfg-a");
	assert_int_equal(km_store_sync_config_probes(f->s, cfg, 1, &err), 0);
	assert_int_equal(km_reader_get_probe(f->r, "cfg-a", &f->a, &got, &err),
			 0);
	assert_int_equal(got.generation, 1);
	assert_int_equal(km_reader_get_probe(f->r, "cfg-b", &f->a, &got, &err),
			 KM_ENOTFOUND);
	cfg[0].period_ms = 5000;
	assert_int_equal(km_store_sync_config_probes(f->s, cfg, 1, &err), 0);
	assert_int_equal(km_reader_get_probe(f->r, "cfg-a", &f->a, &got, &err),
			 0);
	assert_int_equal(got.generation, 2);
	assert_int_equal(got.period_ms, 5000);
}

/* ---- storage faults ------------------------------------------------------ */

/* What the store tells on_health, and the transitions its listener is told
 * of after each commit, for tests to wait on (events, not sleeps). */
#define MAX_TOLD 64

struct told {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int unhealthy, healthy; /* on_health calls */
	char why[KM_ERROR_MSG_MAX];
	uint64_t failures_then; /* commit_failures when told unhealthy */
	struct km_store *s;
	int n;
	int64_t seq[MAX_TOLD];
	char cause[MAX_TOLD][32];
};

static struct told told;

static void told_reset(struct km_store *s)
{
	pthread_mutex_lock(&told.mu);
	told.unhealthy = told.healthy = told.n = 0;
	told.why[0] = '\0';
	told.s = s;
	pthread_mutex_unlock(&told.mu);
}

static void on_health(void *arg, bool writable, const struct km_error *why)
{
	struct km_store_stats st;

	(void)arg;
	pthread_mutex_lock(&told.mu);
	if (writable) {
		told.healthy++;
		told.why[0] = why ? '?' : '\0'; /* no reason to be healthy */
	} else {
		told.unhealthy++;
		snprintf(told.why, sizeof told.why, "%s", why->msg);
		km_store_get_stats(told.s, &st);
		told.failures_then = st.commit_failures;
	}
	pthread_cond_broadcast(&told.cv);
	pthread_mutex_unlock(&told.mu);
}

static void on_commit(void *arg, const struct km_transition *t)
{
	(void)arg;
	pthread_mutex_lock(&told.mu);
	if (told.n < MAX_TOLD) {
		told.seq[told.n] = t->seq;
		snprintf(told.cause[told.n], sizeof told.cause[0], "%s",
			 t->cause);
		told.n++;
	}
	pthread_cond_broadcast(&told.cv);
	pthread_mutex_unlock(&told.mu);
}

#define WAIT_NS (10LL * 1000000000) /* a failure guard, not a pacer */

/* Transitions announced so far. (Asserts never run with told.mu held: a
 * failure would leave it locked and the writer stuck on it.) */
static int told_count(void)
{
	int n;

	pthread_mutex_lock(&told.mu);
	n = told.n;
	pthread_mutex_unlock(&told.mu);
	return n;
}

/* Waits until *counter (a field of told) reaches n. */
static bool told_wait(int *counter, int n)
{
	struct timespec until = km_realtime_after(WAIT_NS);
	bool ok;

	pthread_mutex_lock(&told.mu);
	while (*counter < n)
		if (pthread_cond_timedwait(&told.cv, &told.mu, &until))
			break;
	ok = *counter >= n;
	pthread_mutex_unlock(&told.mu);
	return ok;
}

/* The fixture's store again, with on_health and the listener wired, on
 * the failing VFS. */
static void open_faulty(struct fixture *f, struct km_store_options *o)
{
	struct km_store_options def = {0};

	close_store(f);
	km_test_vfs_install();
	km_test_vfs_fail(0);
	if (!o)
		o = &def;
	o->on_health = on_health;
	assert_int_equal(open_store(f, o), 0);
	told_reset(f->s);
	km_store_set_listener(f->s, on_commit, NULL);
}

static int teardown_faulty(void **state)
{
	km_test_vfs_fail(0);
	km_test_vfs_readonly(false);
	return teardown(state);
}

static void add_transition(struct fixture *f, int64_t tid, int from, int to,
			   const char *cause)
{
	struct km_transition t = {.target_id = tid,
				  .at_us = km_now_us(),
				  .from_state = from,
				  .to_state = to,
				  .cause = cause};

	assert_int_equal(km_store_add_transition(f->s, &t), 0);
}

static void test_second_store_refused(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {.path = f->db};
	struct km_store *s = NULL;
	struct km_error err = {0};
	char pid[32];
	int rc;

	/* The fixture's store holds it: this very process. */
	rc = km_store_open(&o, &s, &err);
	km_store_close(s);
	assert_int_equal(rc, KM_EUNAVAIL);
	snprintf(pid, sizeof pid, "pid %d,", (int)getpid());
	assert_non_null(strstr(err.msg, f->db));
	assert_non_null(strstr(err.msg, pid));
	assert_non_null(strstr(err.msg, "in use by another kubemedicd"));
	/* Readers do not take it. */
	struct km_reader *r = NULL;
	assert_int_equal(km_reader_open(f->s, &r, &err), 0);
	km_reader_close(r);
	/* Closed, it is free again. */
	close_store(f);
	assert_int_equal(open_store(f, NULL), 0);
}

static void test_lock_dropped_when_holder_dies(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {.path = f->db};
	struct km_store *s = NULL;
	struct km_error err = {0};
	int ready[2], status, rc;
	char c, pid[32];
	pid_t child;
	ssize_t got;

	close_store(f);
	assert_int_equal(pipe(ready), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct km_store *cs = NULL;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(ready[0]);
		if (km_store_open(&o, &cs, &err))
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		pause(); /* until SIGKILL: no close, no unlock */
		_exit(0);
	}
	close(ready[1]);
	got = read(ready[0], &c, 1);
	close(ready[0]);
	rc = km_store_open(&o, &s, &err);
	km_store_close(s);
	/* The kernel drops the lock with the process. */
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(got, 1);
	assert_int_equal(rc, KM_EUNAVAIL);
	snprintf(pid, sizeof pid, "pid %d,", (int)child);
	assert_non_null(strstr(err.msg, pid));
	assert_int_equal(open_store(f, NULL), 0);
}

static void test_lock_not_inherited_by_children(void **state)
{
	struct fixture *f = *state;
	char *argv[] = {"sleep", "60", NULL};
	pid_t child;
	int status;

	/* A probe's child (exec probes) outliving the store must not keep
	 * the database locked. */
	assert_int_equal(
		posix_spawnp(&child, "sleep", NULL, NULL, argv, environ), 0);
	close_store(f);
	assert_int_equal(open_store(f, NULL), 0);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
}

static void test_read_only_database_refused(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {.path = f->db};
	struct km_store *s = NULL;
	struct km_error err = {0};

	close_store(f);
	km_test_vfs_install();
	km_test_vfs_readonly(true);
	assert_int_equal(km_store_open(&o, &s, &err), KM_EUNAVAIL);
	km_test_vfs_readonly(false);
	assert_null(s);
	assert_non_null(strstr(err.msg, f->db));
	assert_non_null(strstr(err.msg, "read-only"));
	assert_int_equal(open_store(f, NULL), 0);
}

static void test_full_disk_refused_at_open(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {.path = f->db};
	struct km_store *s = NULL;
	struct km_error err = {0};

	close_store(f);
	km_test_vfs_install();
	km_test_vfs_fail(SQLITE_FULL);
	/* Nothing to migrate: only the write check finds it. */
	assert_int_equal(km_store_open(&o, &s, &err), KM_EFULL);
	km_test_vfs_fail(0);
	assert_null(s);
	assert_non_null(strstr(err.msg, "write check"));
	assert_non_null(strstr(err.msg, "disk is full"));
	assert_int_equal(open_store(f, NULL), 0);
}

/* A full disk: the transitions of every failed batch stay queued, in
 * order, and are committed and announced once each when the disk takes
 * writes again; results of the failed batches are dropped and counted;
 * synchronous writes answer KM_EFULL with words a person can act on; the
 * store goes unhealthy after KM_STORE_FAILS_UNHEALTHY failures and healthy
 * again by itself, with nothing queued (its write check). */
static void test_failed_commits_keep_transitions(void **state)
{
	struct fixture *f = *state;
	struct km_probe p = sample_probe("during");
	struct km_store_stats st;
	struct km_error err = {0};
	int64_t tid;
	char cause[16];

	open_faulty(f, NULL);
	tid = make_target(f, "probe//faulty");
	km_test_vfs_fail(SQLITE_FULL);
	for (int i = 0; i < 5; i++) {
		struct km_result r = {.target_id = tid,
				      .started_us = km_now_us(),
				      .success = true};

		snprintf(cause, sizeof cause, "t%d", i);
		add_transition(f, tid,
			       i % 2 ? KM_STATE_UNHEALTHY : KM_STATE_HEALTHY,
			       i % 2 ? KM_STATE_HEALTHY : KM_STATE_UNHEALTHY,
			       cause);
		assert_int_equal(km_store_add_result(f->s, &r), 0);
	}
	assert_true(told_wait(&told.unhealthy, 1));
	assert_true(told.failures_then >= KM_STORE_FAILS_UNHEALTHY);
	assert_non_null(strstr(told.why, "disk is full"));

	/* A caller is answered with the fault, at once (not after the
	 * backoff, not when the disk is back). */
	assert_int_equal(km_store_create_probe(f->s, &p, &err), KM_EFULL);
	assert_non_null(strstr(err.msg, "disk is full"));
	assert_non_null(strstr(err.msg, "free"));
	assert_int_equal(km_store_flush(f->s, &err), KM_EFULL);

	/* Nothing was announced, nothing is stored, everything waits. */
	km_store_get_stats(f->s, &st);
	assert_true(st.failing);
	assert_int_equal(st.control_queue_depth, 5);
	assert_int_equal(st.transitions_written, 0);
	assert_int_equal(st.transitions_lost, 0);
	assert_true(st.transitions_retried >= 5);
	assert_int_equal(st.results_dropped, 0); /* held in the open run */
	assert_int_equal(told_count(), 0);

	/* The disk is back: the writer finds out by itself. */
	km_test_vfs_fail(0);
	assert_true(told_wait(&told.healthy, 1));
	assert_int_equal(km_store_flush(f->s, &err), 0);
	km_store_get_stats(f->s, &st);
	assert_false(st.failing);
	assert_int_equal(st.transitions_written, 5);
	assert_int_equal(st.control_queue_depth, 0);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM transitions"),
			 5);
	/* And the results, which waited in their run. */
	assert_int_equal(raw_count(f->db, "SELECT sum(count) FROM runs"), 5);
	/* Announced once each, in the order they were queued (the writer
	 * is idle: told is still). */
	assert_int_equal(told_count(), 5);
	assert_string_equal(told.why, "");
	for (int i = 0; i < 5; i++) {
		snprintf(cause, sizeof cause, "t%d", i);
		assert_string_equal(told.cause[i], cause);
		if (i)
			assert_true(told.seq[i] > told.seq[i - 1]);
	}
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM transitions "
					  "WHERE cause = 't4' AND seq = "
					  "(SELECT max(seq) FROM transitions)"),
			 1);
	/* The probe refused during the fault can be created now. */
	assert_int_equal(km_store_create_probe(f->s, &p, &err), 0);
}

/* A refusal's audit event queued while commits fail is kept and written
 * when they succeed again, like a transition. */
static void test_failed_commits_keep_audit_events(void **state)
{
	struct fixture *f = *state;
	struct km_audit_event e = {
		.at_us = 1,
		.identity = "alice",
		.by = "token",
		.peer = "ipv4:127.0.0.1:1",
		.method = "/kubemedic.v1.ProbeService/CreateProbe",
		.object = "x",
		.code = 7,
		.message = "refused"};
	struct km_store_stats st;
	struct km_error err = {0};

	open_faulty(f, NULL);
	km_test_vfs_fail(SQLITE_FULL);
	assert_int_equal(km_store_add_audit(f->s, &e), 0);
	assert_true(told_wait(&told.unhealthy, 1));
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.control_queue_depth, 1);
	assert_int_equal(st.audit_written, 0);
	km_test_vfs_fail(0);
	assert_int_equal(km_store_flush(f->s, &err), 0);
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.audit_written, 1);
	assert_int_equal(st.audit_dropped, 0);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM audit WHERE "
					  "identity = 'alice'"),
			 1);
}

/* With nothing queued (results of failed batches are dropped), the writer
 * still finds out when the disk is back: it tries a one-page write at each
 * retry. */
static void test_recovery_seen_without_traffic(void **state)
{
	struct fixture *f = *state;
	struct km_store_options o = {.flush_us = 1000};
	struct km_store_stats st;
	struct km_result r = {.started_us = 1, .success = true};

	open_faulty(f, &o);
	r.target_id = make_target(f, "probe//quiet");
	km_test_vfs_fail(SQLITE_FULL);
	/* The result's run comes due at once (flush_us 1 ms), and its
	 * write fails. */
	assert_int_equal(km_store_add_result(f->s, &r), 0);
	assert_true(told_wait(&told.unhealthy, 1));
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.result_queue_depth + st.control_queue_depth, 0);
	assert_int_equal(st.results_dropped, 0); /* held in its open run */
	km_test_vfs_fail(0);
	assert_true(told_wait(&told.healthy, 1));
	km_store_get_stats(f->s, &st);
	assert_false(st.failing);
	/* Nothing lost: the run was written again once the disk was back. */
	close_store(f);
	assert_int_equal(raw_count(f->db, "SELECT sum(count) FROM runs"), 1);
	assert_int_equal(open_store(f, NULL), 0);
}

/* A file system gone read-only, a failing device, a file that may not be
 * written: KM_EUNAVAIL (the API's UNAVAILABLE), with what to look at. */
static void test_io_errors_answer_unavailable(void **state)
{
	struct fixture *f = *state;
	struct km_probe p = sample_probe("io");
	struct km_error err = {0};

	open_faulty(f, NULL);
	km_test_vfs_fail(SQLITE_IOERR_WRITE);
	assert_int_equal(km_store_create_probe(f->s, &p, &err), KM_EUNAVAIL);
	assert_non_null(strstr(err.msg, "I/O error"));
	km_test_vfs_fail(SQLITE_READONLY);
	assert_int_equal(km_store_create_probe(f->s, &p, &err), KM_EUNAVAIL);
	assert_non_null(strstr(err.msg, "cannot be written"));
	km_test_vfs_fail(0);
	assert_int_equal(km_store_create_probe(f->s, &p, &err), 0);
}

struct create_call {
	struct fixture *f;
	int rc;
	bool done;
};

static void *create_thread(void *arg)
{
	struct create_call *c = arg;
	struct km_probe p = sample_probe("blocked");
	struct km_error err = {0};
	int rc = km_store_create_probe(c->f->s, &p, &err);

	pthread_mutex_lock(&told.mu);
	c->rc = rc;
	c->done = true;
	pthread_cond_broadcast(&told.cv);
	pthread_mutex_unlock(&told.mu);
	return NULL;
}

/* A control queue full of transitions that wait for the disk does not
 * hold a caller until the fault ends: it gets the fault at once. */
static void test_full_queue_while_failing_answers_at_once(void **state)
{
	struct fixture *f = *state;
	/* Batches of 2: the queue stays full while the writer tries. */
	struct km_store_options o = {.control_queue = 4, .batch_max = 2};
	struct create_call c = {.f = f};
	struct timespec until;
	pthread_t t;
	int64_t tid;

	open_faulty(f, &o);
	tid = make_target(f, "probe//many");
	km_test_vfs_fail(SQLITE_FULL);
	for (int i = 0; i < 10; i++)
		add_transition(f, tid, KM_STATE_UNKNOWN, KM_STATE_UNHEALTHY,
			       "queued");
	assert_true(told_wait(&told.unhealthy, 1));
	assert_int_equal(pthread_create(&t, NULL, create_thread, &c), 0);
	until = km_realtime_after(WAIT_NS);
	pthread_mutex_lock(&told.mu);
	while (!c.done)
		if (pthread_cond_timedwait(&told.cv, &told.mu, &until))
			break;
	pthread_mutex_unlock(&told.mu);
	km_test_vfs_fail(0); /* lets a stuck caller go, to fail cleanly */
	pthread_join(t, NULL);
	assert_true(c.done);
	assert_int_equal(c.rc, KM_EFULL);
}

static void *close_thread(void *arg)
{
	struct create_call *c = arg;

	km_store_close(c->f->s);
	pthread_mutex_lock(&told.mu);
	c->done = true;
	pthread_cond_broadcast(&told.cv);
	pthread_mutex_unlock(&told.mu);
	return NULL;
}

/* Closing while commits fail ends: the transitions that still cannot be
 * committed are given up (logged, counted), not retried forever. */
static void test_close_while_failing_ends(void **state)
{
	struct fixture *f = *state;
	struct create_call c = {.f = f};
	struct timespec until;
	pthread_t t;
	int64_t tid;

	open_faulty(f, NULL);
	tid = make_target(f, "probe//closing");
	km_test_vfs_fail(SQLITE_FULL);
	add_transition(f, tid, KM_STATE_UNKNOWN, KM_STATE_UNHEALTHY, "gone");
	assert_true(told_wait(&told.unhealthy, 1));
	km_reader_close(f->r);
	f->r = NULL;
	assert_int_equal(pthread_create(&t, NULL, close_thread, &c), 0);
	until = km_realtime_after(WAIT_NS);
	pthread_mutex_lock(&told.mu);
	while (!c.done)
		if (pthread_cond_timedwait(&told.cv, &told.mu, &until))
			break;
	pthread_mutex_unlock(&told.mu);
	if (!c.done) {
		f->s = NULL; /* the stuck thread has it */
		fail_msg("km_store_close did not return");
	}
	pthread_join(t, NULL);
	f->s = NULL;
	km_test_vfs_fail(0);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM transitions"),
			 0);
	assert_int_equal(open_store(f, NULL), 0);
}

/* A transition SQLite refuses for what it is (here a trigger; a bug in
 * real life) would fail every retry and hold up everything behind it: it
 * alone is dropped, logged and counted. */
static void test_refused_transition_does_not_block_the_rest(void **state)
{
	struct fixture *f = *state;
	struct km_store_stats st;
	struct km_error err = {0};
	sqlite3 *db = raw_open(f->db);
	int64_t tid;

	assert_int_equal(sqlite3_exec(db,
				      "CREATE TRIGGER refuse BEFORE INSERT ON "
				      "transitions WHEN NEW.cause = 'bad' "
				      "BEGIN SELECT RAISE(ABORT, 'refused'); "
				      "END",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	open_faulty(f, NULL);
	tid = make_target(f, "probe//poison");
	add_transition(f, tid, KM_STATE_UNKNOWN, KM_STATE_UNHEALTHY, "a");
	add_transition(f, tid, KM_STATE_UNHEALTHY, KM_STATE_HEALTHY, "bad");
	add_transition(f, tid, KM_STATE_UNHEALTHY, KM_STATE_HEALTHY, "c");
	assert_true(told_wait(&told.n, 2));
	assert_int_equal(km_store_flush(f->s, &err), 0);
	km_store_get_stats(f->s, &st);
	assert_int_equal(st.transitions_lost, 1);
	assert_int_equal(st.transitions_written, 2);
	assert_int_equal(told_count(), 2);
	assert_string_equal(told.cause[0], "a");
	assert_string_equal(told.cause[1], "c");
}

static void test_target_names(void **state)
{
	struct km_target_name tn;
	char why[256];

	(void)state;
	assert_int_equal(km_target_name_parse("prod-eu:pod/default/web-0", &tn,
					      why, sizeof why),
			 0);
	assert_int_equal(tn.kind, KM_KIND_POD);
	assert_int_equal(tn.cluster_len, 7);
	assert_int_equal(tn.ns_len, 7);
	assert_int_equal(tn.name_len, 5);
	assert_int_equal(km_target_name_parse("node//worker-3", &tn, why,
					      sizeof why),
			 0);
	assert_int_equal(tn.ns_len, 0);
	assert_int_equal(km_target_name_parse("widget//x", &tn, why,
					      sizeof why),
			 KM_EINVAL);
	assert_non_null(strstr(why, "unknown kind \"widget\""));
	assert_int_equal(km_target_name_parse("probe/x", &tn, why, sizeof why),
			 KM_EINVAL);
	assert_int_equal(km_target_name_parse("probe//", &tn, why, sizeof why),
			 KM_EINVAL);
	assert_int_equal(km_target_name_parse("probe//a/b", &tn, why,
					      sizeof why),
			 KM_EINVAL);
	assert_int_equal(km_target_name_parse(":pod/a/b", &tn, why, sizeof why),
			 KM_EINVAL);
	/* The parts as C strings, for a cache's lookup. */
	{
		struct km_target_parts p;
		char long_name[400];

		assert_int_equal(km_target_name_split("prod-eu:pod/default/"
						      "web-0",
						      &p, why, sizeof why),
				 0);
		assert_int_equal(p.kind, KM_KIND_POD);
		assert_string_equal(p.cluster, "prod-eu");
		assert_string_equal(p.ns, "default");
		assert_string_equal(p.name, "web-0");
		assert_int_equal(km_target_name_split("node//worker-3", &p, why,
						      sizeof why),
				 0);
		assert_string_equal(p.cluster, "");
		assert_string_equal(p.ns, "");
		assert_string_equal(p.name, "worker-3");
		assert_int_equal(km_target_name_split("widget//x", &p, why,
						      sizeof why),
				 KM_EINVAL);
		assert_non_null(strstr(why, "unknown kind"));
		memset(long_name, 'a', sizeof long_name);
		memcpy(long_name, "pod/ns/", 7);
		long_name[sizeof long_name - 1] = '\0';
		assert_int_equal(km_target_name_split(long_name, &p, why,
						      sizeof why),
				 KM_EINVAL);
		assert_string_equal(why, "target name too long");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TF(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown_faulty)
		T(test_migrations_applied_once),
		T(test_newer_database_refused),
		T(test_edited_migration_refused),
		T(test_not_a_database_refused),
		T(test_results_batched_and_flushed),
		T(test_overload_drops_oldest),
		T(test_writer_idle_until_behind),
		T(test_group_commit),
		T(test_transitions_update_target),
		T(test_sync_write_committed_before_return),
		T(test_history_paging_both_orders),
		T(test_history_page_limit_and_more_flag),
		T(test_history_uses_indexes),
		T(test_transition_history),
		T(test_deadline_interrupts_query),
		T(test_target_health_matches_separate_reads),
		T(test_retention_deletes_old_rows_only),
		T(test_probe_crud),
		T(test_probe_list_paging_and_filter),
		T(test_target_list_paging_and_filter),
		T(test_object_targets),
		T(test_change_targets_async),
		T(test_transitions_after_paging),
		T(test_config_probes_protected_and_synced),
		T(test_second_store_refused),
		T(test_lock_dropped_when_holder_dies),
		T(test_lock_not_inherited_by_children),
		TF(test_read_only_database_refused),
		TF(test_full_disk_refused_at_open),
		TF(test_failed_commits_keep_transitions),
		TF(test_failed_commits_keep_audit_events),
		TF(test_recovery_seen_without_traffic),
		TF(test_io_errors_answer_unavailable),
		TF(test_full_queue_while_failing_answers_at_once),
		TF(test_refused_transition_does_not_block_the_rest),
		TF(test_close_while_failing_ends),
		cmocka_unit_test(test_target_names),
#undef TF
#undef T
	};
	pthread_mutex_init(&told.mu, NULL);
	pthread_cond_init(&told.cv, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
