/*
 * Exec checks with real children on a real km_loop.
 *
 * The test process is a child subreaper: a probe's grandchildren are
 * reparented to it, so the test can reap them and see how they died, and
 * every test can end by asserting that no child at all is left
 * (waitpid(-1) says ECHILD) and that no descriptor leaked. Like
 * kubemedicd, the test ignores SIGPIPE and blocks SIGTERM and SIGINT: the
 * children must not inherit either.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "km_check.h"
#include "km_exec_tree.h"
#include "km_loop.h"
#include "km_test.h"
#include "km_time.h"

#define MS 1000000LL
#define SAFETY_MS 10000
#define MAX_CHECKS 64

/* The test's directory: scripts run there unless a test says otherwise. */
static const char *g_dir;

struct harness {
	struct km_loop *loop;
	void *x;
	struct km_check_counters counters;
	const struct km_probe_policy *policy; /* for the next start */
	struct km_timer safety, linger, cancel_timer, stop_timer;
	char *dir;
	int fds_before;

	struct km_check checks[MAX_CHECKS];
	int done_calls;
	bool timed_out;             /* the safety timer fired */
	int64_t linger_ms;          /* keep running this long after a done */
	int outstanding;            /* stop when it reaches 0 */
	struct km_check_result res; /* of the last done */
	int64_t done_at;
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

static void stop_now(struct km_loop *l, void *arg)
{
	(void)arg;
	km_loop_stop(l);
}

static void safety_fired(struct km_loop *l, void *arg)
{
	struct harness *h = arg;

	h->timed_out = true;
	km_loop_stop(l);
}

static void on_done(struct km_check *c, const struct km_check_result *r)
{
	struct harness *h = c->owner;

	h->done_calls++;
	h->res = *r;
	h->done_at = km_mono_ns();
	if (--h->outstanding > 0)
		return;
	if (h->linger_ms)
		km_loop_timer_set(h->loop, &h->linger,
				  km_mono_ns() + h->linger_ms * MS);
	else
		km_loop_stop(h->loop);
}

/* The checker's options for the next setup (setup_* below). */
static struct km_check_env g_env;
/* The checker of this test reaps orphans. */
static bool g_reaps;

static int setup(void **state)
{
	struct harness *h = calloc(1, sizeof *h);
	struct km_error err = {0};
	struct km_check_env env = g_env;

	g_reaps = env.reap_orphans;
	if (!h)
		return -1;
	h->fds_before = count_fds();
	env.counters = &h->counters;
	if (km_loop_create(&h->loop, &err) ||
	    ((env.loop = h->loop), km_check_exec.create(&env, &h->x, &err))) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	km_timer_init(&h->safety, safety_fired, h);
	km_timer_init(&h->linger, stop_now, h);
	km_timer_init(&h->stop_timer, stop_now, h);
	h->dir = km_test_tmpdir();
	g_dir = h->dir;
	*state = h;
	return h->dir ? 0 : -1;
}

/* Descendants through /proc, not a cgroup per run. */
static int setup_proc(void **state)
{
	g_env = (struct km_check_env){.no_cgroups = true};
	return setup(state);
}

/* As kubemedicd: children that are no run's are reaped (and killed). */
static int setup_reaping(void **state)
{
	g_env = (struct km_check_env){.reap_orphans = true};
	return setup(state);
}

static int setup_reaping_proc(void **state)
{
	g_env = (struct km_check_env){.reap_orphans = true, .no_cgroups = true};
	return setup(state);
}

/* At most two children at once. */
static int setup_cap(void **state)
{
	g_env = (struct km_check_env){.max_exec_children = 2};
	return setup(state);
}

static int teardown(void **state)
{
	struct harness *h = *state;
	int rc = 0;

	g_env = (struct km_check_env){0};
	km_check_exec.destroy(h->x);
	km_loop_destroy(h->loop);
	km_test_rmrf(h->dir);
	free(h->dir);
	/* Nothing left behind: no child (reaped or not), no descriptor. */
	errno = 0;
	if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD) {
		fprintf(stderr, "teardown: a child is left\n");
		rc = -1;
	}
	if (count_fds() != h->fds_before) {
		fprintf(stderr, "teardown: %d descriptors before, %d after\n",
			h->fds_before, count_fds());
		rc = -1;
	}
	free(h);
	return rc;
}

/* A probe on a static argv (at most 8 items). */
struct probe_buf {
	struct km_probe p;
	const char *argv[8];
	struct km_kv env[4];
};

static struct km_probe *probe_of(struct probe_buf *b, int64_t timeout_ms,
				 const char *arg0, ...)
{
	va_list ap;
	const char *a;
	size_t n = 0;

	memset(b, 0, sizeof *b);
	b->p.type = KM_PROBE_EXEC;
	b->p.timeout_ms = timeout_ms;
	b->p.workdir = g_dir;
	va_start(ap, arg0);
	for (a = arg0; a && n < 8; a = va_arg(ap, const char *))
		b->argv[n++] = a;
	va_end(ap);
	b->p.argv = b->argv;
	b->p.argc = n;
	return &b->p;
}

static struct km_check *start(struct harness *h, int i,
			      const struct km_probe *p)
{
	struct km_check *c = &h->checks[i];

	memset(c, 0, sizeof *c);
	c->loop = h->loop;
	c->probe = p;
	c->policy = h->policy;
	c->started = km_mono_ns();
	c->deadline = c->started + p->timeout_ms * MS;
	c->done = on_done;
	c->owner = h;
	/* Counted first: a run may report before start returns. */
	h->outstanding++;
	assert_int_equal(km_check_exec.start(h->x, c), 0);
	return c;
}

static void run(struct harness *h)
{
	km_loop_timer_set(h->loop, &h->safety, km_mono_ns() + SAFETY_MS * MS);
	assert_int_equal(km_loop_run(h->loop), 0);
	km_loop_timer_cancel(h->loop, &h->safety);
	assert_false(h->timed_out);
}

/* Runs one check to its end. */
static const struct km_check_result *check(struct harness *h,
					   const struct km_probe *p)
{
	start(h, 0, p);
	run(h);
	assert_int_equal(h->done_calls, 1);
	return &h->res;
}

static char *path_in(struct harness *h, const char *name)
{
	static char buf[2][512];
	static int k;

	k ^= 1;
	snprintf(buf[k], sizeof buf[k], "%s/%s", h->dir, name);
	return buf[k];
}

/* A pid a script wrote into dir/name. */
static pid_t read_pid(struct harness *h, const char *name)
{
	FILE *f = fopen(path_in(h, name), "r");
	int pid = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &pid), 1);
	fclose(f);
	assert_true(pid > 1);
	return pid;
}

/* Waits (up to 3 s) for our child pid to end; its wait status. */
static int reap(pid_t pid)
{
	int64_t until = km_mono_ns() + 3000 * MS;
	int st = 0;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		assert_int_equal(r, 0);
		assert_true(km_mono_ns() < until);
		usleep(10000);
	}
}

/* pid was killed with SIGKILL and nothing of it is left. */
static void assert_killed(pid_t pid)
{
	int st = reap(pid);

	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
}

/* pid was a child of ours and has been reaped (by the checker). */
static void assert_reaped(pid_t pid)
{
	errno = 0;
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	assert_int_equal(kill(pid, 0), -1);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* ---- exit statuses ------------------------------------------------------- */

static void test_true_succeeds(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r =
		check(h, probe_of(&b, 5000, "/bin/true", NULL));

	assert_true(r->success);
	assert_int_equal(r->error_class, KM_EC_NONE);
	assert_int_equal(r->status_code, 0);
	assert_string_equal(r->message, "");
}

static void test_false_fails_with_exit_code(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r =
		check(h, probe_of(&b, 5000, "/bin/false", NULL));

	assert_false(r->success);
	assert_int_equal(r->error_class, KM_EC_EXIT_CODE);
	assert_int_equal(r->status_code, 1);
	assert_string_equal(r->message, "exit code 1");
}

static void test_exit_code_and_output(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r = check(
		h, probe_of(&b, 5000, "sh", "-c",
			    "echo '  out'; echo err >&2; echo; exit 3", NULL));

	assert_false(r->success);
	assert_int_equal(r->error_class, KM_EC_EXIT_CODE);
	assert_int_equal(r->status_code, 3);
	/* stdout and stderr in order, trimmed. */
	assert_string_equal(r->message, "out\nerr");
}

static void test_success_keeps_no_message(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r =
		check(h, probe_of(&b, 5000, "sh", "-c", "echo all good", NULL));

	assert_true(r->success);
	assert_string_equal(r->message, "");
}

static void test_killed_by_signal(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	/* SIGTERM is blocked in the test, as in kubemedicd: the child must
	 * start with an empty mask or this would hang until the timeout. */
	const struct km_check_result *r =
		check(h, probe_of(&b, 5000, "sh", "-c",
				  "kill -TERM $$; sleep 5", NULL));

	assert_false(r->success);
	assert_int_equal(r->error_class, KM_EC_SIGNAL);
	assert_int_equal(r->status_code, SIGTERM);
	assert_string_equal(r->message, "killed by signal 15 (SIGTERM)");
}

static void test_child_signals_are_reset(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	/* grep itself reads its mask (a shell blocks signals while it waits
	 * for its children); the missing file makes it fail, so the output
	 * is reported. */
	const struct km_check_result *r =
		check(h, probe_of(&b, 5000, "grep", "-h", "-E", "^Sig(Blk|Ign)",
				  "/proc/self/status", "/nonexistent", NULL));
	unsigned long long blk = 1, ign = 1;

	assert_int_equal(r->status_code, 2);
	assert_int_equal(sscanf(r->message, "SigBlk:\t%llx\nSigIgn:\t%llx",
				&blk, &ign),
			 2);
	/* Nothing blocked; none of signals 1-31 ignored (kubemedicd ignores
	 * SIGPIPE). glibc's posix_spawn leaves its two internal signals (32,
	 * 33) ignored in every child; nothing asks for them. */
	assert_int_equal(blk, 0);
	assert_int_equal(ign & 0x7fffffffULL, 0);
}

static void test_only_std_fds_are_inherited(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	int leak = dup(2); /* no O_CLOEXEC on purpose */
	const struct km_check_result *r;

	assert_true(leak > 2);
	r = check(h, probe_of(&b, 5000, "sh", "-c",
			      /* The glob's own directory descriptor is
			       * gone by the time [ -e ] looks. */
			      "cd /proc/$$/fd && "
			      "for f in *; do [ -e $f ] && echo $f; done; "
			      "readlink 0; [ -p 1 ] && [ -p 2 ] && echo pipes; "
			      "exit 1",
			      NULL));
	close(leak);
	assert_int_equal(r->status_code, 1);
	assert_string_equal(r->message, "0\n1\n2\n/dev/null\npipes");
}

/* ---- output -------------------------------------------------------------- */

static void test_output_kept_to_the_limit(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	/* 1 MB: far past the pipe's 64 KiB, so the child would block if the
	 * checker stopped reading at the limit. */
	const struct km_check_result *r = check(
		h, probe_of(&b, 5000, "sh", "-c",
			    "head -c 1000000 /dev/zero | tr '\\0' x; exit 1",
			    NULL));
	size_t n = strlen(r->message);

	assert_int_equal(r->error_class, KM_EC_EXIT_CODE);
	/* The first 10 KiB are kept; the message holds all but one byte of
	 * them (its NUL). */
	assert_int_equal(n, KM_RESULT_MESSAGE_MAX - 1);
	assert_true(KM_CHECK_OUTPUT_MAX >= n);
	for (size_t i = 0; i < n; i++)
		if (r->message[i] != 'x')
			fail_msg("byte %zu is %d", i, r->message[i]);
}

static void test_large_output_success(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r =
		check(h, probe_of(&b, 5000, "sh", "-c",
				  "head -c 1000000 /dev/zero", NULL));

	assert_true(r->success);
	assert_string_equal(r->message, "");
}

static void test_output_made_valid_utf8(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r = check(
		h,
		probe_of(&b, 5000, "sh", "-c",
			 "printf 'a\\000b\\377c \\303\\251\\n'; exit 2", NULL));

	assert_int_equal(r->status_code, 2);
	assert_string_equal(r->message, "a\xef\xbf\xbd"
					"b\xef\xbf\xbd"
					"c \xc3\xa9");
}

static void test_copy_text_ends_on_a_character(void **state)
{
	char buf[6];

	(void)state;
	/* "ab" + é (2 bytes) + € (3 bytes): the euro does not fit. */
	assert_int_equal(km_check_copy_text(buf, sizeof buf,
					    "ab\xc3\xa9\xe2\x82\xac", 7),
			 4);
	assert_string_equal(buf, "ab\xc3\xa9");
	/* Overlong, surrogate, truncated: one U+FFFD per bad byte, as many
	 * as fit (one, in 5 bytes and the NUL). */
	assert_int_equal(km_check_copy_text(buf, sizeof buf, "\xc0\xaf", 2), 3);
	assert_string_equal(buf, "\xef\xbf\xbd");
	assert_int_equal(km_check_copy_text(buf, 4, "\xed\xa0\x80", 3), 3);
	assert_int_equal(km_check_copy_text(buf, sizeof buf, "a\xe2\x82", 3),
			 4);
	assert_string_equal(buf, "a\xef\xbf\xbd");
}

/* ---- timeouts, grandchildren, cancel ------------------------------------- */

static void test_timeout_kills_the_group(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r;
	pid_t leader, grandchild;
	int64_t t0 = km_mono_ns();

	h->linger_ms = 300; /* time to reap the leader in the background */
	start(h, 0,
	      probe_of(&b, 200, "sh", "-c",
		       "echo $$ > leader; sleep 60 & echo $! > gc; "
		       "echo started; exec sleep 60",
		       NULL));
	run(h);
	r = &h->res;
	assert_int_equal(h->done_calls, 1);
	assert_false(r->success);
	assert_int_equal(r->error_class, KM_EC_TIMEOUT);
	assert_int_equal(r->status_code, 0);
	assert_string_equal(r->message, "timed out after 200 ms; process "
					"group killed; output: started");
	/* Reported at the deadline, not at the end of sleep. */
	assert_true(h->done_at - t0 >= 200 * MS);
	assert_true(h->done_at - t0 < 700 * MS);

	leader = read_pid(h, "leader");
	grandchild = read_pid(h, "gc");
	/* The checker reaped the leader while the loop ran on. */
	assert_reaped(leader);
	/* The grandchild died with the group (and came to us, the
	 * subreaper). */
	assert_killed(grandchild);
}

static void test_exit_with_grandchild_holding_the_pipe(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r;
	int64_t t0 = km_mono_ns();

	/* The grandchild keeps stdout open for 60 s: the check must report
	 * when the program exits, not when the pipe closes. */
	r = check(h,
		  probe_of(&b, 5000, "sh", "-c",
			   "sleep 60 & echo $! > gc; echo bye; exit 4", NULL));
	assert_int_equal(r->error_class, KM_EC_EXIT_CODE);
	assert_int_equal(r->status_code, 4);
	assert_string_equal(r->message, "bye");
	assert_true(km_mono_ns() - t0 < 2000 * MS);
	/* What the probe left behind was killed with it. */
	assert_killed(read_pid(h, "gc"));
}

static void cancel_fired(struct km_loop *l, void *arg)
{
	struct harness *h = arg;

	km_check_exec.cancel(h->x, &h->checks[0]);
	/* Let the loop run on: the child is reaped in the background. */
	km_loop_timer_set(l, &h->stop_timer, km_mono_ns() + 300 * MS);
}

static void test_cancel_kills_and_reaps(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	pid_t leader;

	start(h, 0,
	      probe_of(&b, 5000, "sh", "-c", "echo $$ > leader; exec sleep 60",
		       NULL));
	km_timer_init(&h->cancel_timer, cancel_fired, h);
	km_loop_timer_set(h->loop, &h->cancel_timer, km_mono_ns() + 150 * MS);
	run(h);
	assert_int_equal(h->done_calls, 0);
	leader = read_pid(h, "leader");
	/* Reaped before the checker is destroyed: no zombie waits for it. */
	assert_reaped(leader);
}

static void test_cancel_then_destroy(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	struct km_check *c;

	/* Cancel right after start; destroy reaps what is left. */
	c = start(h, 0, probe_of(&b, 5000, "sleep", "60", NULL));
	km_check_exec.cancel(h->x, c);
	km_check_exec.destroy(h->x);
	h->x = NULL;
	assert_int_equal(h->done_calls, 0);
}

static void test_destroy_with_runs_in_flight(void **state)
{
	struct harness *h = *state;
	struct probe_buf b[3];

	start(h, 0, probe_of(&b[0], 5000, "sleep", "60", NULL));
	start(h, 1, probe_of(&b[1], 5000, "sh", "-c", "exec sleep 60", NULL));
	start(h, 2,
	      probe_of(&b[2], 5000, "sh", "-c",
		       "sleep 60 & echo $! > gc; exec sleep 60", NULL));
	km_loop_timer_set(h->loop, &h->stop_timer, km_mono_ns() + 200 * MS);
	run(h);
	assert_int_equal(h->done_calls, 0);
	km_check_exec.destroy(h->x); /* kills and reaps synchronously */
	h->x = NULL;
	assert_killed(read_pid(h, "gc"));
}

static void test_many_at_once(void **state)
{
	struct harness *h = *state;
	struct probe_buf *b = calloc(MAX_CHECKS, sizeof *b);

	assert_non_null(b);
	for (int i = 0; i < MAX_CHECKS; i++)
		start(h, i, probe_of(&b[i], 5000, "/bin/true", NULL));
	run(h);
	assert_int_equal(h->done_calls, MAX_CHECKS);
	assert_true(h->res.success);
	free(b);
}

/* ---- environment, working directory, PATH -------------------------------- */

/* The child's environment is the probe's, nothing of ours: tokens live
 * in kubemedicd's. cat shows it as it is (entries end in NUL, made
 * U+FFFD in the message). */
static void test_env_is_the_probes_own(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	struct km_probe *p;
	const struct km_check_result *r;

	setenv("KM_TEST_INHERITED", "secret-token", 1);
	setenv("KM_TEST_OVERRIDE", "daemon", 1);
	p = probe_of(&b, 5000, "/bin/cat", "/proc/self/environ", "/nonexistent",
		     NULL);
	b.env[0] = (struct km_kv){"KM_TEST_NEW", "first"};
	b.env[1] = (struct km_kv){"KM_TEST_OVERRIDE", "probe"};
	b.env[2] = (struct km_kv){"KM_TEST_NEW", "new"}; /* the last wins */
	p->env = b.env;
	p->n_env = 3;
	r = check(h, p);
	unsetenv("KM_TEST_INHERITED");
	unsetenv("KM_TEST_OVERRIDE");
	assert_int_equal(r->status_code, 1);
	assert_string_equal(
		r->message,
		"KM_TEST_OVERRIDE=probe\xef\xbf\xbd"
		"KM_TEST_NEW=new\xef\xbf\xbd"
		"/bin/cat: /nonexistent: No such file or directory");
}

/* Nothing at all unless the probe says so: not even PATH. */
static void test_env_empty(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r;

	r = check(h, probe_of(&b, 5000, "cat", "/proc/self/environ",
			      "/nonexistent", NULL));
	assert_int_equal(r->status_code, 1);
	assert_string_equal(r->message, "cat: /nonexistent: No such file or "
					"directory");
}

static void test_workdir(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	struct km_probe *p;
	const struct km_check_result *r;
	char *real = realpath(h->dir, NULL);

	/* A relative program path is relative to the working directory. */
	write_file(path_in(h, "probe.sh"), "#!/bin/sh\npwd\nexit 5\n", 0755);
	p = probe_of(&b, 5000, "./probe.sh", NULL);
	p->workdir = h->dir;
	r = check(h, p);
	assert_int_equal(r->error_class, KM_EC_EXIT_CODE);
	assert_int_equal(r->status_code, 5);
	assert_string_equal(r->message, real);
	free(real);
}

static void test_path_from_probe_env(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	struct km_probe *p;
	const struct km_check_result *r;

	write_file(path_in(h, "km-probe-in-path"),
		   "#!/bin/sh\necho found\n"
		   "exit 6\n",
		   0755);
	p = probe_of(&b, 5000, "km-probe-in-path", NULL);
	b.env[0] = (struct km_kv){"PATH", h->dir};
	p->env = b.env;
	p->n_env = 1;
	r = check(h, p);
	assert_int_equal(r->status_code, 6);
	assert_string_equal(r->message, "found");
}

/* ---- programs that cannot run -------------------------------------------- */

static void test_not_in_path_is_127(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	struct km_probe *p =
		probe_of(&b, 5000, "km-no-such-program", "x", NULL);
	const struct km_check_result *r;

	b.env[0] = (struct km_kv){"PATH", "/nonexistent:/bin"};
	p->env = b.env;
	p->n_env = 1;
	r = check(h, p);
	assert_false(r->success);
	assert_int_equal(r->error_class, KM_EC_EXIT_CODE);
	assert_int_equal(r->status_code, 127);
	assert_string_equal(r->message, "cannot run \"km-no-such-program\": "
					"not found in PATH "
					"\"/nonexistent:/bin\"");
}

static void test_missing_path_is_127(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r =
		check(h, probe_of(&b, 5000, "/nonexistent/probe", NULL));

	assert_int_equal(r->error_class, KM_EC_EXIT_CODE);
	assert_int_equal(r->status_code, 127);
	assert_string_equal(r->message, "cannot run \"/nonexistent/probe\": "
					"No such file or directory");
}

static void test_not_executable_is_126(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r;
	char msg[600];

	/* No execute bit: refused even to root. */
	write_file(path_in(h, "plain"), "#!/bin/sh\nexit 0\n", 0644);
	r = check(h, probe_of(&b, 5000, path_in(h, "plain"), NULL));
	assert_int_equal(r->error_class, KM_EC_EXIT_CODE);
	assert_int_equal(r->status_code, 126);
	snprintf(msg, sizeof msg, "cannot run \"%s\": Permission denied",
		 path_in(h, "plain"));
	assert_string_equal(r->message, msg);
}

static void test_missing_workdir_is_126(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	struct km_probe *p = probe_of(&b, 5000, "/bin/true", NULL);
	const struct km_check_result *r;

	p->workdir = "/nonexistent-dir";
	r = check(h, p);
	assert_int_equal(r->error_class, KM_EC_EXIT_CODE);
	assert_int_equal(r->status_code, 126);
	assert_string_equal(r->message,
			    "cannot run \"/bin/true\": working directory "
			    "\"/nonexistent-dir\": No such file or directory");
}

static void test_cancel_before_cannot_run_reports(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	struct km_check *c =
		start(h, 0, probe_of(&b, 5000, "/nonexistent", NULL));

	km_check_exec.cancel(h->x, c);
	km_loop_timer_set(h->loop, &h->stop_timer, km_mono_ns() + 50 * MS);
	run(h);
	assert_int_equal(h->done_calls, 0);
}

/* ---- what runs leave behind ---------------------------------------------- */

static void on_exited(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	km_loop_stop(l);
}

/* Runs the loop until pid has exited — its pidfd says so, no sleeping —
 * and is reaped: by the checker when it reaps orphans (SIGCHLD, then its
 * sweep: a few turns of the loop), else by us (it is our child: we are a
 * subreaper). */
static void await_gone(struct harness *h, pid_t pid, bool checker_reaps)
{
	int fd = pidfd_open(pid, 0);

	if (fd < 0) {
		assert_int_equal(errno, ESRCH); /* gone and reaped already */
		return;
	}
	assert_int_equal(km_loop_add_fd(h->loop, fd, EPOLLIN, on_exited, h), 0);
	run(h);
	km_loop_del_fd(h->loop, fd);
	close(fd);
	/* Exited, it may still be its parent's zombie (a parent killed
	 * with it, exiting): ours once that parent is gone. Gone is when no
	 * process has its pid. */
	for (int turn = 0;; turn++) {
		siginfo_t si;

		if (!checker_reaps)
			waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG);
		if (kill(pid, 0) < 0 && errno == ESRCH)
			break;
		if (turn == 300)
			fail_msg("process %d exited and was not reaped",
				 (int)pid);
		/* One turn: the loop stops at its first event or in 10 ms. */
		km_loop_timer_set(h->loop, &h->stop_timer,
				  km_mono_ns() + 10 * MS);
		run(h);
	}
}

/* No child of ours is a zombie (/proc/self/task/x/children, then each
 * one's state). */
static void assert_no_zombie_children(void)
{
	pid_t kids[256];
	size_t n = km_proc_children(0, kids, 256);

	for (size_t i = 0; i < n; i++) {
		char path[64], buf[512], *p;
		FILE *f;

		snprintf(path, sizeof path, "/proc/%d/stat", (int)kids[i]);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(buf, sizeof buf, f);
		fclose(f);
		p = p ? strrchr(buf, ')') : NULL;
		if (p && p[1] == ' ' && p[2] == 'Z')
			fail_msg("child %d is a zombie", (int)kids[i]);
	}
}

/* A process that leaves the run's group and session (setsid) is killed
 * at the timeout all the same: with the run's cgroup, or found through
 * /proc while the leader lives. */
static void test_setsid_escape_killed_at_timeout(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r;

	start(h, 0,
	      probe_of(&b, 300, "sh", "-c",
		       "setsid sleep 300 & echo $! > esc; "
		       "while [ ! -s esc ]; do :; done; echo escaped; "
		       "exec sleep 60",
		       NULL));
	run(h);
	r = &h->res;
	assert_int_equal(r->error_class, KM_EC_TIMEOUT);
	assert_non_null(strstr(r->message, "escaped"));
	await_gone(h, read_pid(h, "esc"), g_reaps);
}

/* The same escape by a run that exits at once: the cgroup has it; without
 * one, it is kubemedicd's orphan, killed by the sweep that follows the
 * run's end (not PID 1). */
static void test_setsid_escape_after_exit(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r;

	r = check(h, probe_of(&b, 5000, "sh", "-c",
			      "setsid sleep 300 & echo $! > esc; "
			      "while [ ! -s esc ]; do :; done; exit 0",
			      NULL));
	assert_true(r->success);
	await_gone(h, read_pid(h, "esc"), g_reaps);
	assert_no_zombie_children();
}

/* The orphan of sh -c 'sleep 5 & exit 0' is no zombie of ours for long:
 * killed (by the run's cgroup, or by the sweep) and reaped by the
 * checker. */
static void test_orphan_reaped(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r;

	r = check(h, probe_of(&b, 5000, "sh", "-c",
			      "sleep 5 & echo $! > bg; exit 0", NULL));
	assert_true(r->success);
	await_gone(h, read_pid(h, "bg"), true);
	assert_no_zombie_children();
	assert_true(atomic_load(&h->counters.exec_orphans_reaped) >= 1);
}

/* A process of a run still going is not taken for a leftover: started
 * after that run was, it is left alone until the run ends. */
static void test_running_runs_orphans_left_alone(void **state)
{
	struct harness *h = *state;
	struct probe_buf b[2];

	/* The first run leaves an orphan (its subshell exits at once) and
	 * goes on until the second, quick one has ended (a sweep follows
	 * that end); then it asks whether its orphan lives. */
	start(h, 0,
	      probe_of(&b[0], 5000, "sh", "-c",
		       "(sleep 60 & echo $! > bg.tmp; mv bg.tmp bg); "
		       "while [ ! -e go ]; do sleep 0.01; done; sleep 0.1; "
		       "kill -0 $(cat bg)",
		       NULL));
	start(h, 1,
	      probe_of(&b[1], 5000, "sh", "-c",
		       "while [ ! -e bg ]; do sleep 0.01; done; touch go",
		       NULL));
	run(h);
	assert_int_equal(h->done_calls, 2);
	/* The last to end was the first: its orphan was alive. */
	assert_true(h->res.success);
	await_gone(h, read_pid(h, "bg"), true);
}

/* Children that are no run's are reaped (zombies) and killed (alive), and
 * never a run's: its exit status stays its own. */
static void test_sweep_takes_orphans_not_runs(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	const struct km_check_result *r;
	pid_t zombie = fork(), alive;

	if (zombie == 0)
		_exit(0);
	alive = fork();
	if (alive == 0) {
		pause();
		_exit(0);
	}
	assert_true(zombie > 0 && alive > 0);
	r = check(h, probe_of(&b, 5000, "sh", "-c", "sleep 0.2; exit 3", NULL));
	assert_int_equal(r->error_class, KM_EC_EXIT_CODE);
	assert_int_equal(r->status_code, 3);
	await_gone(h, zombie, true);
	await_gone(h, alive, true);
	/* Both taken by the checker, not by us. */
	errno = 0;
	assert_int_equal(waitpid(zombie, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	errno = 0;
	assert_int_equal(waitpid(alive, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	assert_true(atomic_load(&h->counters.exec_orphans_reaped) >= 2);
	assert_int_equal(atomic_load(&h->counters.exec_orphans_killed), 1);
}

/* prober.maxExecChildren: a run past it fails at once, counted; a child
 * killed but not reaped still counts. */
static void test_cap_on_children(void **state)
{
	struct harness *h = *state;
	struct probe_buf b[3];
	struct km_check *c;

	start(h, 0, probe_of(&b[0], 5000, "sleep", "60", NULL));
	start(h, 1, probe_of(&b[1], 5000, "sleep", "60", NULL));
	c = start(h, 2, probe_of(&b[2], 5000, "/bin/true", NULL));
	/* Reported before start returned. */
	assert_int_equal(h->done_calls, 1);
	assert_null(c->impl);
	assert_false(h->res.success);
	assert_int_equal(h->res.error_class, KM_EC_INTERNAL);
	assert_string_equal(h->res.message,
			    "not run: too many exec probes running (2, "
			    "prober.maxExecChildren)");
	assert_int_equal(atomic_load(&h->counters.exec_refused), 1);
	km_check_exec.cancel(h->x, &h->checks[0]);
	km_check_exec.cancel(h->x, &h->checks[1]);
	h->outstanding = 0;
}

/* A probe of the API while the config allows exec probes no more. */
static void test_api_exec_not_run_when_off(void **state)
{
	struct harness *h = *state;
	struct probe_buf b;
	struct km_probe_policy pol;
	struct km_check *c;

	km_probe_policy_defaults(&pol);
	h->policy = &pol;
	c = start(h, 0, probe_of(&b, 5000, "/bin/true", NULL));
	assert_int_equal(h->done_calls, 1);
	assert_null(c->impl);
	assert_int_equal(h->res.error_class, KM_EC_INTERNAL);
	assert_string_equal(h->res.message, "not run: exec probes through "
					    "the API are off (api.allowExec)");
	pol.allow_exec = true;
	h->outstanding = 0;
	run(h); /* takes the stop its report asked for */
	h->done_calls = 0;
	assert_true(check(h, probe_of(&b, 5000, "/bin/true", NULL))->success);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_true_succeeds),
		T(test_false_fails_with_exit_code),
		T(test_exit_code_and_output),
		T(test_success_keeps_no_message),
		T(test_killed_by_signal),
		T(test_child_signals_are_reset),
		T(test_only_std_fds_are_inherited),
		T(test_output_kept_to_the_limit),
		T(test_large_output_success),
		T(test_output_made_valid_utf8),
		cmocka_unit_test(test_copy_text_ends_on_a_character),
		T(test_timeout_kills_the_group),
		T(test_exit_with_grandchild_holding_the_pipe),
		T(test_cancel_kills_and_reaps),
		T(test_cancel_then_destroy),
		T(test_destroy_with_runs_in_flight),
		T(test_many_at_once),
		T(test_env_is_the_probes_own),
		T(test_env_empty),
		T(test_workdir),
		T(test_path_from_probe_env),
		T(test_not_in_path_is_127),
		T(test_missing_path_is_127),
		T(test_not_executable_is_126),
		T(test_missing_workdir_is_126),
		T(test_cancel_before_cannot_run_reports),
		T(test_setsid_escape_killed_at_timeout),
		/* After exit, only with reaping (kubemedicd always reaps):
		 * where no cgroup can be made (a sandbox with a read-only
		 * cgroupfs) a checker that does not reap cannot find the
		 * escape once its parent is gone, and the run lasts until
		 * its timeout. */
		T(test_api_exec_not_run_when_off),
		cmocka_unit_test_setup_teardown(
			test_setsid_escape_killed_at_timeout, setup_proc,
			teardown),
		cmocka_unit_test_setup_teardown(test_setsid_escape_after_exit,
						setup_reaping_proc, teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_takes_orphans_not_runs, setup_reaping,
			teardown),
		cmocka_unit_test_setup_teardown(test_setsid_escape_after_exit,
						setup_reaping, teardown),
		cmocka_unit_test_setup_teardown(test_orphan_reaped,
						setup_reaping, teardown),
		cmocka_unit_test_setup_teardown(test_orphan_reaped,
						setup_reaping_proc, teardown),
		cmocka_unit_test_setup_teardown(
			test_running_runs_orphans_left_alone, setup_reaping,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_running_runs_orphans_left_alone,
			setup_reaping_proc, teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_takes_orphans_not_runs, setup_reaping_proc,
			teardown),
		cmocka_unit_test_setup_teardown(test_cap_on_children, setup_cap,
						teardown),
#undef T
	};
	sigset_t block;

	/* As kubemedicd: SIGPIPE ignored, SIGTERM, SIGINT and SIGCHLD
	 * blocked (a checker that reaps takes SIGCHLD through a signalfd). */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
