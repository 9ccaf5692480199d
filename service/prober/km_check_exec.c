/*
 * Exec checks: run a program, success if it exits with status 0 — the
 * kubelet's exec probe, on the prober's loop, with no thread per child and
 * no SIGCHLD handler.
 *
 * One run:
 *  - posix_spawn: the child leads a process group of its own, starts with
 *    an empty signal mask and every signal at its default (kubemedicd blocks
 *    SIGTERM/SIGINT and ignores SIGPIPE; a probe must not inherit that),
 *    stdin from /dev/null, stdout and stderr into one pipe, no other
 *    descriptor open, in probe->workdir when one is given, with the
 *    probe's env and nothing else (tokens live in kubemedicd's own);
 *  - the pipe is read (non-blocking) whenever it has data, so the child
 *    never blocks on a full pipe: the first KM_CHECK_OUTPUT_MAX bytes are
 *    kept, the rest is read and dropped;
 *  - a pidfd becomes readable when the child exits. Then whatever is left
 *    of its process group is killed (a probe leaves no processes behind;
 *    grandchildren that keep the pipe open do not hold the check up), the
 *    pipe is read for what it holds, the child is reaped and the run
 *    reports;
 *  - a timer at the deadline kills the whole process group with SIGKILL
 *    and reports TIMEOUT at once; the child is reaped in the background
 *    when its pidfd says it is gone. cancel does the same without
 *    reporting; destroy kills and reaps synchronously.
 * The group is always killed before its leader is reaped: an unreaped
 * leader keeps its pid, hence the group id, from being reused.
 *
 * Semantics where the kubelet leaves room:
 *  - argv[0] without a '/' is looked up like execvp does, in the PATH of
 *    the probe's env, "/bin:/usr/bin" if it sets none; with a '/', it is
 *    taken as is, relative to the working directory;
 *  - a program that cannot be started is the probe's failure, reported as
 *    a shell would: exit code 127 when it is not found, 126 when it is
 *    found but cannot be run (permissions, format, a working directory that
 *    cannot be entered), with a "cannot run ..." message. A failure of
 *    kubemedicd itself (no memory, no descriptors, no processes) is not the
 *    probe's: start returns a km_err code;
 *  - the message of a failure is the program's output (stdout and stderr
 *    interleaved as written; leading and trailing white space trimmed;
 *    made valid UTF-8), or "exit code N" / "killed by signal N (SIGX)"
 *    when it printed nothing; a timeout says "timed out after N ms;
 *    process group killed", then "; output: ..." if there was some;
 *    success has an empty message.
 *
 * Without pidfds (kernels before 5.3, valgrind 3.19) a run polls for its
 * child's exit with waitid(P_PID, WNOHANG) on a timer instead, from 1 ms
 * backing off to 20 ms; everything else is the same.
 *
 * Requires SIGCHLD not to be ignored (the kernel would reap the children
 * and their exit statuses would be lost): creating the checker refuses.
 * Descriptors: everything of ours is O_CLOEXEC; the child closes every
 * descriptor from 3 up before exec anyway.
 *
 * Threads: the loop's only (destroy: after the loop stopped, before
 * km_loop_destroy). Memory: one struct exec_run (about 10 KiB) per run,
 * owned by the checker from start until its child is reaped, which may be
 * after the run reported or was cancelled.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "km_arena.h"
#include "km_check.h"
#include "km_list.h"
#include "km_log.h"
#include "km_time.h"

/* Read at most this much per wakeup of the pipe (fairness between runs),
 * and at most this much more once the child has exited or timed out. */
#define READ_BUDGET (64 * 1024)
#define FINAL_READ_BUDGET (256 * 1024)
/* How long destroy waits for killed children to be reapable. */
#define DESTROY_WAIT_MS 5000
/* Polling for exits without a pidfd: first interval, longest interval. */
#define POLL_FIRST_NS 1000000LL
#define POLL_MAX_NS 20000000LL

struct exec_run {
	struct km_exec_checker *x;
	struct km_check *c;    /* NULL once reported or cancelled */
	pid_t pid;             /* 0: never started (see spawn_code) */
	bool reaped;           /* or never started */
	int pidfd;             /* -1 once reaped, or when polling */
	int outfd;             /* -1 once closed */
	int spawn_code;        /* 126 or 127 when pid is 0 */
	struct km_timer timer; /* the deadline, or "report now" */
	struct km_timer poll;  /* without a pidfd: look for the exit */
	int64_t poll_every;
	size_t len;          /* bytes kept in out */
	struct km_list link; /* x->runs, once started */
	char out[KM_CHECK_OUTPUT_MAX];
};

struct km_exec_checker {
	struct km_loop *loop;
	/* Every run not freed yet: running, or killed and not yet reaped. */
	struct km_list runs;
	bool told_polling; /* logged that there are no pidfds */
	char sink[16384];  /* output past the limit is read into it */
};

/* ---- runs ---------------------------------------------------------------- */

static void close_output(struct exec_run *r)
{
	if (r->outfd < 0)
		return;
	km_loop_del_fd(r->x->loop, r->outfd);
	close(r->outfd);
	r->outfd = -1;
}

static void run_free(struct exec_run *r)
{
	struct km_exec_checker *x = r->x;

	km_loop_timer_cancel(x->loop, &r->timer);
	km_loop_timer_cancel(x->loop, &r->poll);
	close_output(r);
	if (r->pidfd >= 0) {
		km_loop_del_fd(x->loop, r->pidfd);
		close(r->pidfd);
	}
	km_list_del(&r->link);
	free(r);
}

/* Reads what the pipe holds, up to budget bytes. False at end of file (or
 * an error, which ends reading all the same). */
static bool read_output(struct exec_run *r, size_t budget)
{
	struct km_exec_checker *x = r->x;

	while (budget) {
		bool keep = r->len < sizeof r->out;
		char *to = keep ? r->out + r->len : x->sink;
		size_t room = keep ? sizeof r->out - r->len : sizeof x->sink;
		ssize_t n;

		if (room > budget)
			room = budget;
		n = read(r->outfd, to, room);
		if (n > 0) {
			if (keep)
				r->len += (size_t)n;
			budget -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			return n < 0 && errno == EAGAIN;
		}
	}
	return true;
}

/* Reads the rest of what the pipe holds (bounded), then closes it: no
 * waiting for end of file, which a grandchild could hold off. */
static void finish_output(struct exec_run *r)
{
	if (r->outfd < 0)
		return;
	read_output(r, FINAL_READ_BUDGET);
	close_output(r);
}

/* The kept output, trimmed and made valid UTF-8, into dst. */
static size_t output_text(const struct exec_run *r, char *dst, size_t cap)
{
	const char *s = r->out, *e = r->out + r->len;

	while (s < e && strchr(" \t\r\n\v\f", *s) && *s)
		s++;
	while (e > s && strchr(" \t\r\n\v\f", e[-1]) && e[-1])
		e--;
	return km_check_copy_text(dst, cap, s, (size_t)(e - s));
}

/* waitid on the pidfd (or the pid). True if the child has exited (si
 * filled). With keep, the child stays a zombie (WNOWAIT). A child that is
 * gone without us (ECHILD: reaped by someone else) counts as exited with
 * si_code 0. */
static bool child_exited(struct exec_run *r, siginfo_t *si, bool keep)
{
	int opts = WEXITED | WNOHANG | (keep ? WNOWAIT : 0);
	int rc;

	memset(si, 0, sizeof *si);
	if (r->pidfd >= 0)
		rc = waitid(P_PIDFD, (id_t)r->pidfd, si, opts);
	else
		rc = waitid(P_PID, (id_t)r->pid, si, opts);
	if (rc < 0) {
		if (errno == EINTR)
			return false;
		memset(si, 0, sizeof *si);
		return true;
	}
	return si->si_pid != 0;
}

/* Reaps the child if it is gone; then the run has no process left. */
static bool try_reap(struct exec_run *r)
{
	siginfo_t si;

	if (r->reaped)
		return true;
	if (!child_exited(r, &si, false))
		return false;
	r->reaped = true;
	km_loop_timer_cancel(r->x->loop, &r->poll);
	if (r->pidfd >= 0) {
		km_loop_del_fd(r->x->loop, r->pidfd);
		close(r->pidfd);
		r->pidfd = -1;
	}
	return true;
}

/* The run no longer reports: stop its timer and output; free it now if
 * its child is reaped, else leave it to child_event (the child was
 * killed). */
static void detach(struct exec_run *r)
{
	r->c = NULL;
	km_loop_timer_cancel(r->x->loop, &r->timer);
	close_output(r);
	if (try_reap(r))
		run_free(r);
}

/* Hands r's result to the prober; the run is detached first, so done may
 * start and cancel other runs freely. */
static void report(struct exec_run *r, const struct km_check_result *res)
{
	struct km_check *c = r->c;

	c->impl = NULL;
	detach(r);
	c->done(c, res);
}

/* The child has exited (it is still a zombie). */
static void finish_exited(struct exec_run *r, const siginfo_t *si)
{
	struct km_check_result res = {0};
	char sig[24];
	size_t n;

	/* Whatever the probe left running dies with it (unless the child
	 * was reaped behind our back: then its pid may be another's). */
	if (si->si_pid)
		kill(-r->pid, SIGKILL);
	finish_output(r);
	try_reap(r);

	switch (si->si_code) {
	case CLD_EXITED:
		if (si->si_status == 0) {
			res.success = true;
			break;
		}
		res.error_class = KM_EC_EXIT_CODE;
		res.status_code = si->si_status;
		if (!output_text(r, res.message, sizeof res.message))
			snprintf(res.message, sizeof res.message,
				 "exit code %d", si->si_status);
		break;
	case CLD_KILLED:
	case CLD_DUMPED:
		res.error_class = KM_EC_SIGNAL;
		res.status_code = si->si_status;
		n = output_text(r, res.message, sizeof res.message);
		if (!n) {
			const char *abbrev = sigabbrev_np(si->si_status);

			snprintf(sig, sizeof sig, "SIG%s",
				 abbrev ? abbrev : "?");
			snprintf(res.message, sizeof res.message,
				 "killed by signal %d (%s)%s", si->si_status,
				 sig,
				 si->si_code == CLD_DUMPED ? ", core dumped"
							   : "");
		}
		break;
	default:
		km_check_fail(&res, KM_EC_INTERNAL, 0,
			      "the exit status of pid %d was lost (is "
			      "SIGCHLD ignored?)",
			      (int)r->pid);
		break;
	}
	report(r, &res);
}

static void on_output(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	struct exec_run *r = arg;

	(void)l;
	(void)fd;
	(void)events;
	if (!read_output(r, READ_BUDGET))
		close_output(r);
}

/* The child may have exited. False if r is gone. */
static bool child_event(struct exec_run *r)
{
	siginfo_t si;

	if (!r->c) {
		/* Killed earlier (timeout, cancel): reap and forget. */
		if (!try_reap(r))
			return true;
		run_free(r);
		return false;
	}
	/* Spurious wake-ups (a recycled descriptor number) find nothing. */
	if (!child_exited(r, &si, true))
		return true;
	finish_exited(r, &si); /* reaps, reports, frees */
	return false;
}

static void on_pidfd(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	(void)l;
	(void)fd;
	(void)events;
	child_event(arg);
}

static void on_poll(struct km_loop *l, void *arg)
{
	struct exec_run *r = arg;

	if (!child_event(r))
		return;
	r->poll_every = r->poll_every * 2 < POLL_MAX_NS ? r->poll_every * 2
							: POLL_MAX_NS;
	if (km_loop_timer_set(l, &r->poll, km_mono_ns() + r->poll_every))
		km_log(KM_LOG_ERROR, "exec check: cannot re-arm the exit poll",
		       "pid", KM_I(r->pid), NULL);
}

static void on_timer(struct km_loop *l, void *arg)
{
	struct exec_run *r = arg;
	struct km_check_result res = {0};
	struct km_check *c = r->c;
	siginfo_t si;
	size_t n;

	(void)l;
	if (!r->pid) {
		/* Could not start: report now, from the loop. */
		km_check_fail(&res, KM_EC_EXIT_CODE, r->spawn_code, "%s",
			      r->out);
		report(r, &res);
		return;
	}
	/* Exited in time, and the pidfd's turn had not come yet. */
	if (child_exited(r, &si, true)) {
		finish_exited(r, &si);
		return;
	}
	kill(-r->pid, SIGKILL);
	finish_output(r);
	n = (size_t)snprintf(res.message, sizeof res.message,
			     "timed out after %lld ms; process group killed",
			     (long long)((c->deadline - c->started) / 1000000));
	if (r->len && n + 11 < sizeof res.message) {
		size_t k = n + 10;

		if (output_text(r, res.message + k, sizeof res.message - k))
			memcpy(res.message + n, "; output: ", 10);
	}
	res.error_class = KM_EC_TIMEOUT;
	report(r, &res);
}

/* ---- start --------------------------------------------------------------- */

/* pidfd_open; KM_EXEC_FORCE_POLL (a test build) pretends there is none. */
static int open_pidfd(pid_t pid)
{
#ifdef KM_EXEC_FORCE_POLL
	(void)pid;
	errno = ENOSYS;
	return -1;
#else
	return pidfd_open(pid, 0);
#endif
}

/* strerror without its buffer for unknown values. */
static const char *errtext(int e)
{
	const char *d = strerrordesc_np(e);

	return d ? d : "unknown error";
}

/* Everything posix_spawn needs, built once per run. */
struct spawn_plan {
	const char *file; /* argv[0] */
	char **argv, **envp;
	const char *path; /* PATH of the child's environment */
	int dirfd;        /* working directory, or -1 */
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
};

/* The child's environment: the probe's own entries (the last of equal
 * names wins), nothing of kubemedicd's (tokens live there). */
static char **build_env(const struct km_probe *p, struct km_arena *a,
			const char **path)
{
	size_t k = 0;
	char **envp;

	*path = NULL;
	envp = km_arena_calloc(a, p->n_env + 1, sizeof *envp);
	if (!envp)
		return NULL;
	for (size_t j = 0; j < p->n_env; j++) {
		bool later = false;

		for (size_t i = j + 1; i < p->n_env && !later; i++)
			later = !strcmp(p->env[i].key, p->env[j].key);
		if (later)
			continue;
		envp[k] =
			km_arena_printf(a, "%s=%s", p->env[j].key,
					p->env[j].value ? p->env[j].value : "");
		if (!envp[k])
			return NULL;
		if (!strcmp(p->env[j].key, "PATH"))
			*path = envp[k] + 5;
		k++;
	}
	envp[k] = NULL;
	return envp;
}

/* errno values that say kubemedicd, not the probe, is short of something. */
static bool daemon_errno(int e)
{
	return e == ENOMEM || e == EAGAIN || e == EMFILE || e == ENFILE;
}

/* Spawns path, unless a look from here already says how exec would fail
 * (not there, not executable, a directory): that costs no process, and is
 * what gets an answer under valgrind, whose posix_spawn cannot pass the
 * child's exec error back. Returns 0 or an errno. */
static int try_spawn(struct spawn_plan *sp, const char *path, pid_t *pid)
{
	int at = sp->dirfd >= 0 ? sp->dirfd : AT_FDCWD;
	struct stat st;

	if (fstatat(at, path, &st, 0) < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == EACCES ||
		    errno == ELOOP || errno == ENAMETOOLONG)
			return errno;
	} else if (S_ISDIR(st.st_mode) ||
		   (faccessat(at, path, X_OK, AT_EACCESS) < 0 &&
		    errno == EACCES)) {
		return EACCES;
	}
	return posix_spawn(pid, path, &sp->fa, &sp->attr, sp->argv, sp->envp);
}

/* Like execvp's search: each PATH entry in turn ("" is the working
 * directory); a missing file or directory moves on, so does a permission
 * error (remembered); anything else stops. Returns 0 or an errno. */
static int spawn_search(struct spawn_plan *sp, pid_t *pid)
{
	const char *dir = sp->path ? sp->path : "/bin:/usr/bin";
	bool eacces = false;
	char cand[PATH_MAX];

	if (strchr(sp->file, '/'))
		return try_spawn(sp, sp->file, pid);
	for (;;) {
		const char *colon = strchr(dir, ':');
		size_t dlen = colon ? (size_t)(colon - dir) : strlen(dir);
		int n, e;

		if (dlen)
			n = snprintf(cand, sizeof cand, "%.*s/%s", (int)dlen,
				     dir, sp->file);
		else
			n = snprintf(cand, sizeof cand, "%s", sp->file);
		if (n > 0 && (size_t)n < sizeof cand) {
			e = try_spawn(sp, cand, pid);
			if (e == 0)
				return 0;
			if (e == EACCES)
				eacces = true;
			else if (e != ENOENT && e != ENOTDIR && e != ESTALE &&
				 e != ENODEV && e != ETIMEDOUT && e != ELOOP &&
				 e != ENAMETOOLONG)
				return e;
		}
		if (!colon)
			break;
		dir = colon + 1;
	}
	return eacces ? EACCES : ENOENT;
}

/* The run reports "cannot run" from the loop, at once. */
static int cannot_run(struct exec_run *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int cannot_run(struct exec_run *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->out, sizeof r->out, fmt, ap);
	va_end(ap);
	r->spawn_code = code;
	return km_loop_timer_set(r->x->loop, &r->timer,
				 km_loop_now(r->x->loop));
}

static int spawn_failed(struct exec_run *r, const struct spawn_plan *sp, int e)
{
	if (e == ENOENT && !strchr(sp->file, '/'))
		return cannot_run(r, 127,
				  "cannot run \"%s\": not found in "
				  "PATH \"%s\"",
				  sp->file,
				  sp->path ? sp->path : "/bin:/usr/bin");
	return cannot_run(r, e == ENOENT ? 127 : 126, "cannot run \"%s\": %s",
			  sp->file, errtext(e));
}

/* kubemedicd, not the probe, is short of something (memory, descriptors,
 * processes; pidfd_open where the kernel or valgrind lacks it). start has
 * only a code to return, so the log says why. */
static int sys_fail(const struct km_check *c, const char *step, int e)
{
	km_log(KM_LOG_WARN, "exec check cannot start", "probe",
	       c->probe->name ? c->probe->name : "", "step", step, "error",
	       errtext(e), NULL);
	return e == ENOMEM ? KM_ENOMEM : KM_EIO;
}

static int exec_create(const struct km_check_env *env, void **out,
		       struct km_error *err)
{
	struct km_exec_checker *x;
	struct sigaction sa;

	*out = NULL;
	if (sigaction(SIGCHLD, NULL, &sa) == 0 &&
	    (sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT)))
		return km_error_set(err, KM_EPRECOND,
				    "SIGCHLD is ignored: exec checks could not "
				    "learn how their programs exited");
	x = calloc(1, sizeof *x);
	if (!x)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	x->loop = env->loop;
	km_list_init(&x->runs);
	*out = x;
	return 0;
}

static int exec_start(void *checker, struct km_check *c)
{
	struct km_exec_checker *x = checker;
	const struct km_probe *p = c->probe;
	struct exec_run *r;
	struct spawn_plan sp = {.dirfd = -1};
	struct km_arena a;
	bool fa_init = false, attr_init = false;
	sigset_t mask, dfl;
	int pfd[2] = {-1, -1};
	int rc = 0, e;

	if (!p->argc || !p->argv[0] || !p->argv[0][0])
		return KM_EINVAL;
	km_arena_init(&a, 4096);
	r = calloc(1, sizeof *r);
	if (!r) {
		rc = sys_fail(c, "calloc", ENOMEM);
		goto fail;
	}
	r->x = x;
	r->c = c;
	km_list_init(&r->link);
	r->pidfd = r->outfd = -1;
	r->reaped = true; /* until there is a child */
	km_timer_init(&r->timer, on_timer, r);
	km_timer_init(&r->poll, on_poll, r);

	sp.file = p->argv[0];
	sp.argv = km_arena_calloc(&a, p->argc + 1, sizeof *sp.argv);
	if (!sp.argv || !(sp.envp = build_env(p, &a, &sp.path))) {
		rc = sys_fail(c, "environment", ENOMEM);
		goto fail;
	}
	for (size_t i = 0; i < p->argc; i++)
		sp.argv[i] = (char *)p->argv[i];

	/* Opened here, entered in the child: a directory that is not there
	 * is told apart from a program that is not. */
	if (p->workdir && p->workdir[0]) {
		sp.dirfd = open(p->workdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (sp.dirfd < 0) {
			e = errno;
			if (daemon_errno(e)) {
				rc = sys_fail(c, "open working directory", e);
				goto fail;
			}
			rc = cannot_run(r, 126,
					"cannot run \"%s\": working "
					"directory \"%s\": %s",
					sp.file, p->workdir, errtext(e));
			goto started;
		}
	}

	/* The read end non-blocking for us; the write end blocking for the
	 * child, and above 2 so that setting up 0-2 cannot clobber it. */
	if (pipe2(pfd, O_CLOEXEC) < 0 ||
	    fcntl(pfd[0], F_SETFL, O_NONBLOCK) < 0) {
		rc = sys_fail(c, "pipe", errno);
		goto fail;
	}
	if (pfd[1] <= 2) {
		int fd = fcntl(pfd[1], F_DUPFD_CLOEXEC, 3);

		if (fd < 0) {
			rc = sys_fail(c, "pipe", errno);
			goto fail;
		}
		close(pfd[1]);
		pfd[1] = fd;
	}

	if (posix_spawn_file_actions_init(&sp.fa)) {
		rc = sys_fail(c, "posix_spawn_file_actions_init", ENOMEM);
		goto fail;
	}
	fa_init = true;
	if ((sp.dirfd >= 0 &&
	     posix_spawn_file_actions_addfchdir_np(&sp.fa, sp.dirfd)) ||
	    posix_spawn_file_actions_adddup2(&sp.fa, pfd[1], 1) ||
	    posix_spawn_file_actions_adddup2(&sp.fa, pfd[1], 2) ||
	    posix_spawn_file_actions_addopen(&sp.fa, 0, "/dev/null", O_RDONLY,
					     0) ||
	    posix_spawn_file_actions_addclosefrom_np(&sp.fa, 3)) {
		rc = sys_fail(c, "posix_spawn_file_actions", ENOMEM);
		goto fail;
	}
	if (posix_spawnattr_init(&sp.attr)) {
		rc = sys_fail(c, "posix_spawnattr_init", ENOMEM);
		goto fail;
	}
	attr_init = true;
	sigemptyset(&mask);
	sigfillset(&dfl);
	posix_spawnattr_setsigmask(&sp.attr, &mask);
	posix_spawnattr_setsigdefault(&sp.attr, &dfl);
	posix_spawnattr_setpgroup(&sp.attr, 0);
	posix_spawnattr_setflags(&sp.attr, POSIX_SPAWN_SETPGROUP |
						   POSIX_SPAWN_SETSIGMASK |
						   POSIX_SPAWN_SETSIGDEF);

	e = spawn_search(&sp, &r->pid);
	if (!e)
		r->reaped = false;
	if (e) {
		r->pid = 0;
		if (daemon_errno(e)) {
			rc = sys_fail(c, "posix_spawn", e);
			goto fail;
		}
		rc = spawn_failed(r, &sp, e);
		goto started;
	}
	close(pfd[1]);
	pfd[1] = -1;
	r->outfd = pfd[0];
	pfd[0] = -1;

	/* The child cannot be reaped by anyone but us: its pid is still its
	 * own when we open the pidfd, even if it has exited already. */
	r->pidfd = open_pidfd(r->pid);
	e = r->pidfd < 0 ? errno : 0;
	if (e == ENOSYS && !x->told_polling) {
		km_log(KM_LOG_INFO,
		       "exec checks poll for exits: no pidfd_open "
		       "(a kernel before 5.3, or valgrind)",
		       NULL);
		x->told_polling = true;
	}
	r->poll_every = POLL_FIRST_NS;
	if ((e && e != ENOSYS) ||
	    (rc = r->pidfd >= 0
			  ? km_loop_add_fd(x->loop, r->pidfd, EPOLLIN, on_pidfd,
					   r)
			  : km_loop_timer_set(x->loop, &r->poll,
					      km_mono_ns() + r->poll_every)) ||
	    (rc = km_loop_add_fd(x->loop, r->outfd, EPOLLIN, on_output, r)) ||
	    (rc = km_loop_timer_set(x->loop, &r->timer, c->deadline))) {
		siginfo_t si;

		rc = rc ? sys_fail(c, "event loop",
				   rc == KM_ENOMEM ? ENOMEM : EIO)
			: sys_fail(c, "pidfd_open", e);
		kill(-r->pid, SIGKILL);
		/* SIGKILL: this wait is short. */
		while (waitid(P_PID, (id_t)r->pid, &si, WEXITED) < 0 &&
		       errno == EINTR)
			;
		r->reaped = true;
		goto fail;
	}

started:
	if (rc)
		goto fail;
	km_list_add_head(&x->runs, &r->link);
	c->impl = r;
	goto out;

fail:
	if (r)
		run_free(r); /* not listed yet; its child, if any, is reaped */
out:
	if (attr_init)
		posix_spawnattr_destroy(&sp.attr);
	if (fa_init)
		posix_spawn_file_actions_destroy(&sp.fa);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (sp.dirfd >= 0)
		close(sp.dirfd);
	km_arena_free(&a);
	return rc;
}

static void exec_cancel(void *checker, struct km_check *c)
{
	struct exec_run *r = c->impl;

	(void)checker;
	if (!r)
		return;
	c->impl = NULL;
	if (!r->reaped)
		kill(-r->pid, SIGKILL);
	detach(r);
}

static void exec_destroy(void *checker)
{
	struct km_exec_checker *x = checker;
	int64_t until = km_mono_ns() + (int64_t)DESTROY_WAIT_MS * 1000000;

	if (!x)
		return;
	while (!km_list_empty(&x->runs)) {
		struct exec_run *r =
			km_list_first(&x->runs, struct exec_run, link);

		if (!r->reaped) {
			struct pollfd pfd = {.fd = r->pidfd, .events = POLLIN};
			int64_t left;

			kill(-r->pid, SIGKILL);
			close_output(r);
			/* Without a pidfd, poll sleeps 1 ms at a time. */
			while (!try_reap(r) &&
			       (left = until - km_mono_ns()) > 0)
				poll(&pfd, pfd.fd >= 0 ? 1 : 0,
				     pfd.fd >= 0 ? (int)(left / 1000000) + 1
						 : 1);
			if (!r->reaped)
				km_log(KM_LOG_WARN,
				       "exec probe: a killed child did not "
				       "exit; leaving it unreaped",
				       "pid", KM_I(r->pid), NULL);
		}
		run_free(r);
	}
	free(x);
}

const struct km_check_type km_check_exec = {
	.name = "exec",
	.create = exec_create,
	.destroy = exec_destroy,
	.start = exec_start,
	.cancel = exec_cancel,
};
