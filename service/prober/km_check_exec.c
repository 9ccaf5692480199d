/*
 * Exec checks: run a program, success if it exits with status 0 — the
 * kubelet's exec probe, on the prober's loop, with no thread per child and
 * no SIGCHLD handler.
 *
 * A run leaves nothing behind (km_exec_tree.h says how): its process
 * group is killed at its end, and so is whatever left the group — through
 * the run's own cgroup v2 where kubemedicd may make one, else through
 * /proc. kubemedicd is a child subreaper (km_prober_init_process), so
 * what a run's processes leave when they exit becomes its child: with
 * env->reap_orphans the checker reaps every child that is no run's
 * (zombies would pile up otherwise, and as PID 1 of a container it gets
 * every orphan there is), and kills those still alive — kubemedicd starts
 * no other process, so they can only be what a run left — unless it is
 * PID 1, where they may be anyone's. It learns of them through SIGCHLD
 * (a signalfd, when the process blocks SIGCHLD as kubemedicd does), and
 * looks every second besides. Reaping goes by waitid(P_ALL, WNOWAIT)
 * first, so a run's own child is left to the run: its exit status is
 * never taken from it.
 *
 * One run:
 *  - posix_spawn: the child leads a process group of its own, starts with
 *    an empty signal mask and every signal at its default (kubemedicd blocks
 *    SIGTERM/SIGINT and ignores SIGPIPE; a probe must not inherit that),
 *    stdin from /dev/null, stdout and stderr into one pipe, no other
 *    descriptor open, in probe->workdir when one is given, with the
 *    probe's env and nothing else (tokens live in kubemedicd's own);
 *  - not started at all when prober.maxExecChildren children are running
 *    (killed ones not reaped yet count): an INTERNAL result at once,
 *    counted in exec_refused; nor, for a probe of the API, when the API's
 *    policy no longer allows exec probes;
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

#include <sched.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>

#include "km_arena.h"
#include "km_check.h"
#include "km_exec_tree.h"
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
/* Looking for children that are no run's, and for runs' cgroups to
 * remove, besides SIGCHLD. */
#define SWEEP_NS 1000000000LL
/* Leftovers remembered as killed until they are gone. */
#define KILLED_KEPT 64

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
	bool counted;        /* in x->children */
	int64_t spawned_at;  /* CLOCK_BOOTTIME ns, just before the spawn */
	char cgroup[48];     /* its cgroup, "" if none */
	char out[KM_CHECK_OUTPUT_MAX];
};

/* A run's cgroup, killed, waiting for its last process to go. */
struct dead_cgroup {
	struct km_list link;
	char name[48];
};

struct km_exec_checker {
	struct km_loop *loop;
	/* Every run not freed yet: running, or killed and not yet reaped. */
	struct km_list runs;
	bool told_polling; /* logged that there are no pidfds */
	/* Children of runs not reaped yet, and the most allowed (0: any). */
	int children, max_children;
	struct km_check_counters *counters;
	int64_t told_refused; /* when a refusal was last logged */
	/* A cgroup per run (NULL: /proc), and those left to remove. */
	struct km_cgroups *cgroups;
	struct km_list dead_cgroups;
	/* Children that are no run's: reaped (reap), and killed (kill)
	 * when they can only be runs' leftovers. */
	bool reap, kill;
	bool proc_ours;    /* /proc speaks our PID namespace */
	int sigfd;         /* SIGCHLD, or -1 */
	char *spawn_stack; /* spawn_into_cgroup's child's, made once */
	/* The last leftovers killed (kill_leftovers). */
	struct killed {
		pid_t pid;
		int64_t born;
	} killed[KILLED_KEPT];
	unsigned killed_next;
	struct km_timer sweep_timer;
	char sink[16384]; /* output past the limit is read into it */
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

/* Removes a run's cgroup (killed already), or leaves it to the sweep
 * while its processes are still going. */
static void release_cgroup(struct km_exec_checker *x, const char *name)
{
	struct dead_cgroup *d;

	if (km_cgroup_remove(x->cgroups, name))
		return;
	d = calloc(1, sizeof *d);
	if (!d) {
		km_log(KM_LOG_WARN,
		       "exec check: a run's cgroup is left behind (out of "
		       "memory)",
		       "cgroup", name, NULL);
		return;
	}
	snprintf(d->name, sizeof d->name, "%s", name);
	km_list_add_tail(&x->dead_cgroups, &d->link);
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
	if (r->cgroup[0])
		release_cgroup(x, r->cgroup);
	km_list_del(&r->link);
	free(r);
}

/* Everything the run started dies: its cgroup's processes, or (without
 * one, while the leader still has its children) its descendants found
 * through /proc; and its process group. */
static void kill_run(struct exec_run *r, bool tree)
{
	struct km_exec_checker *x = r->x;

	if (r->cgroup[0])
		km_cgroup_kill(x->cgroups, r->cgroup);
	else if (tree && !r->reaped && x->proc_ours)
		km_proc_kill_tree(r->pid);
	kill(-r->pid, SIGKILL);
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
	if (r->counted) {
		r->counted = false;
		r->x->children--;
	}
	/* What it left is an orphan now: looked for at once, not at the
	 * next second. (The sweep timer is armed whenever there is a sweep,
	 * and re-arming one never fails.) */
	if (km_timer_armed(&r->x->sweep_timer))
		km_loop_timer_set(r->x->loop, &r->x->sweep_timer,
				  km_loop_now(r->x->loop));
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
	 * was reaped behind our back: then its pid may be another's; its
	 * cgroup is ours all the same). Its children are orphans already:
	 * the cgroup, or the sweep, has them. */
	if (si->si_pid)
		kill_run(r, false);
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
	kill_run(r, true);
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
	/* With a cgroup for the run: its cgroup.procs, the pipe's write end
	 * and a stack for spawn_into_cgroup's child. */
	int cgroup_fd, out_fd;
	char *stack;
};

/* ---- spawning into a cgroup ----------------------------------------------
 *
 * posix_spawn (glibc 2.36) cannot start a child in a cgroup, and moving it
 * in after it returned is too late: a short script forks (and exits)
 * before the parent gets the CPU back. So a run with a cgroup is spawned
 * here, as glibc's posix_spawn spawns (clone with CLONE_VM | CLONE_VFORK,
 * on a stack of its own; the parent waits until the child has exec'd or
 * failed), except that the child's first act is to move itself into the
 * cgroup: everything it starts is there. The child shares the parent's
 * memory, so it makes raw system calls only (no library state, no
 * sanitizer interceptor), with every signal blocked until just before
 * execve. The same file actions and attributes as the posix_spawn path:
 * its own process group, signals at their defaults and unblocked, stdin
 * from /dev/null, stdout and stderr into the pipe, nothing else open, the
 * working directory.
 */
#define SPAWN_STACK (64 * 1024)

struct spawn_child {
	const char *path;
	char *const *argv, *const *envp;
	int dirfd, out_fd, cgroup_fd;
	/* Signals kubemedicd ignores (SIGPIPE): set back to their default;
	 * those with handlers are reset by execve itself. */
	int ignored[64];
	int n_ignored;
	sigset_t empty;
	volatile int err; /* the child's errno if it could not exec */
};

/* The kernel's struct sigaction (x86-64, arm64, ...): all SIG_DFL here. */
struct kernel_sigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static int spawn_child_main(void *arg)
{
	struct spawn_child *a = arg;
	struct kernel_sigaction dfl = {0};
	long rc = 0;
	int nul;

	/* Into the run's cgroup first ("0" is the writer itself). */
	if (syscall(SYS_write, a->cgroup_fd, "0", 1) < 0)
		goto fail;
	for (int i = 0; i < a->n_ignored; i++)
		syscall(SYS_rt_sigaction, a->ignored[i], &dfl, NULL,
			sizeof dfl.mask);
	if (syscall(SYS_setpgid, 0, 0) < 0 ||
	    (a->dirfd >= 0 && syscall(SYS_fchdir, a->dirfd) < 0) ||
	    syscall(SYS_dup3, a->out_fd, 1, 0) < 0 ||
	    syscall(SYS_dup3, a->out_fd, 2, 0) < 0)
		goto fail;
	nul = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
	if (nul < 0 || (nul != 0 && (syscall(SYS_dup3, nul, 0, 0) < 0 ||
				     syscall(SYS_close, nul) < 0)))
		goto fail;
	if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
		goto fail;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &a->empty, NULL, 8);
	rc = syscall(SYS_execve, a->path, a->argv, a->envp);
	(void)rc;
fail:
	a->err = errno ? errno : EINVAL;
	syscall(SYS_exit, 127);
	return 127;
}

/* posix_spawn's contract, into sp->cgroup_fd's cgroup: 0 with *pid set,
 * or an errno (the child, if it came to be, reaped). */
static int spawn_into_cgroup(struct spawn_plan *sp, const char *path,
			     pid_t *pid)
{
	struct spawn_child a = {.path = path,
				.argv = sp->argv,
				.envp = sp->envp,
				.dirfd = sp->dirfd,
				.out_fd = sp->out_fd,
				.cgroup_fd = sp->cgroup_fd};
	sigset_t all, old;
	pid_t p;
	int e;

	sigemptyset(&a.empty);
	for (int sig = 1; sig < 64 && a.n_ignored < 64; sig++) {
		struct sigaction sa;

		if (sig != SIGKILL && sig != SIGSTOP &&
		    sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			a.ignored[a.n_ignored++] = sig;
	}
	/* No handler may run in a child that shares our memory. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	p = clone(spawn_child_main, sp->stack + SPAWN_STACK,
		  CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
	e = p < 0 ? errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		return e;
	if (a.err) {
		siginfo_t si;

		while (waitid(P_PID, (id_t)p, &si, WEXITED) < 0 &&
		       errno == EINTR)
			;
		return a.err;
	}
	*pid = p;
	return 0;
}

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
	if (sp->cgroup_fd >= 0)
		return spawn_into_cgroup(sp, path, pid);
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

static void exec_destroy(void *checker);

/* Runs that are not started: a probe of the API while the API's policy
 * says no exec probes; any, while prober.maxExecChildren children run.
 * Reported at once (true). */
static bool refused(struct km_exec_checker *x, struct km_check *c)
{
	struct km_check_result res;

	if (c->policy && !c->policy->allow_exec) {
		/* Stored while allowed; the config says otherwise now. */
		km_check_fail(&res, KM_EC_INTERNAL, 0,
			      "not run: exec probes through the API are off "
			      "(api.allowExec)");
		c->done(c, &res);
		return true;
	}
	if (x->max_children && x->children >= x->max_children) {
		int64_t now = km_mono_ns();

		atomic_fetch_add(&x->counters->exec_refused, 1);
		/* One line in ten seconds is enough to know. */
		if (now - x->told_refused > 10000000000LL || !x->told_refused) {
			x->told_refused = now;
			km_log(KM_LOG_WARN,
			       "exec check not run: prober.maxExecChildren "
			       "children are running",
			       "probe", c->probe->name ? c->probe->name : "",
			       "max", KM_I(x->max_children), NULL);
		}
		km_check_fail(&res, KM_EC_INTERNAL, 0,
			      "not run: too many exec probes running (%d, "
			      "prober.maxExecChildren)",
			      x->children);
		c->done(c, &res);
		return true;
	}
	return false;
}

/* The cgroup a run's child will go in (if runs get one), made before the
 * spawn: its cgroup.procs, or -1 without. */
static int make_cgroup(struct km_exec_checker *x, struct exec_run *r)
{
	int fd, e;

	if (!x->cgroups)
		return -1;
	e = km_cgroup_make(x->cgroups, r->cgroup, sizeof r->cgroup, &fd);
	if (e) {
		km_log(KM_LOG_WARN,
		       "exec check: cannot make a run a cgroup of its own; "
		       "its descendants are tracked through /proc",
		       "probe", r->c->probe->name ? r->c->probe->name : "",
		       "error", errtext(e), NULL);
		r->cgroup[0] = '\0';
		return -1;
	}
	return fd;
}

/* The run whose child is pid, if any. */
static struct exec_run *run_of(struct km_exec_checker *x, pid_t pid)
{
	struct km_list *pos;

	km_list_for_each (pos, &x->runs) {
		struct exec_run *r = km_list_entry(pos, struct exec_run, link);

		if (!r->reaped && r->pid == pid)
			return r;
	}
	return NULL;
}

/* Killed by the sweep, and maybe not dead yet (a process takes a moment
 * to exit): not killed, nor counted, twice. */
static bool killed_already(const struct km_exec_checker *x, pid_t pid,
			   int64_t born)
{
	for (size_t i = 0; i < KILLED_KEPT; i++)
		if (x->killed[i].pid == pid && x->killed[i].born == born)
			return true;
	return false;
}

/* Kills children of ours that are no run's and are still alive: what
 * runs left (kubemedicd starts no other process). One that started after
 * a run still going did may be that run's, still at work (a script that
 * starts a server, then asks it): it is left until every such run has
 * ended (a later sweep), when the run's cgroup, or this, ends it. */
static void kill_leftovers(struct km_exec_checker *x)
{
	pid_t kids[256];
	size_t n = km_proc_children(0, kids, 256);
	int64_t oldest = INT64_MAX;
	struct km_list *pos;

	if (!n)
		return;
	km_list_for_each (pos, &x->runs) {
		struct exec_run *r = km_list_entry(pos, struct exec_run, link);

		if (!r->reaped && r->spawned_at < oldest)
			oldest = r->spawned_at;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t born;

		if (run_of(x, kids[i]))
			continue;
		/* A clock tick (10 ms) of margin: start times are read to
		 * one. */
		born = km_proc_start_ns(kids[i]);
		if (born < 0 ||
		    (oldest != INT64_MAX && born + 20000000LL >= oldest))
			continue;
		if (killed_already(x, kids[i], born))
			continue;
		if (kill(kids[i], SIGKILL) == 0) {
			x->killed[x->killed_next++ % KILLED_KEPT] =
				(struct killed){kids[i], born};
			atomic_fetch_add(&x->counters->exec_orphans_killed, 1);
		}
	}
}

/* Children that are no run's (reparented to kubemedicd, a subreaper),
 * and runs' cgroups that have emptied. A zombie is looked at without
 * being reaped first (WNOWAIT): one that is a run's is the run's own
 * business, handled as its pidfd would, so no exit status is taken from
 * a run. */
static void sweep(struct km_exec_checker *x)
{
	struct km_list *pos, *tmp;

	for (int guard = 0; x->reap && guard < 65536; guard++) {
		siginfo_t si;
		struct exec_run *r;
		pid_t pid;

		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    !si.si_pid)
			break;
		pid = si.si_pid;
		r = run_of(x, pid);
		if (r) {
			if (child_event(r))
				break; /* not gone after all: later */
			continue;
		}
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG) < 0)
			break;
		atomic_fetch_add(&x->counters->exec_orphans_reaped, 1);
	}
	if (x->kill)
		kill_leftovers(x);
	km_list_for_each_safe (pos, tmp, &x->dead_cgroups) {
		struct dead_cgroup *d =
			km_list_entry(pos, struct dead_cgroup, link);

		if (km_cgroup_remove(x->cgroups, d->name)) {
			km_list_del(&d->link);
			free(d);
		}
	}
}

static void on_sweep_timer(struct km_loop *l, void *arg)
{
	struct km_exec_checker *x = arg;

	sweep(x);
	if (km_loop_timer_set(l, &x->sweep_timer, km_mono_ns() + SWEEP_NS))
		km_log(KM_LOG_ERROR,
		       "exec check: no timer to look for orphans; SIGCHLD "
		       "alone tells of them",
		       NULL);
}

static void on_sigchld(struct km_loop *l, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si[16];

	(void)l;
	(void)events;
	/* Signals coalesce: one sweep finds every child that is done. */
	while (read(fd, si, sizeof si) > 0)
		;
	sweep(arg);
}

/* How children that are no run's are found, and what ends a run's
 * leftovers; logged once. */
static int setup_containment(struct km_exec_checker *x,
			     const struct km_check_env *env,
			     struct km_error *err)
{
	char why[512] = "";
	sigset_t mask;

	x->proc_ours = km_proc_is_ours();
	if (!env->no_cgroups)
		x->cgroups = km_cgroups_open(why, sizeof why);
	else
		snprintf(why, sizeof why, "cgroups not wanted");
	x->reap = env->reap_orphans;
	x->kill = env->reap_orphans && getpid() != 1 && x->proc_ours;
	if (x->reap && pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0 &&
	    sigismember(&mask, SIGCHLD)) {
		sigset_t chld;

		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		x->sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
		if (x->sigfd >= 0 &&
		    km_loop_add_fd(x->loop, x->sigfd, EPOLLIN, on_sigchld, x)) {
			close(x->sigfd);
			x->sigfd = -1;
		}
	}
	if ((x->reap || x->cgroups) &&
	    km_loop_timer_set(x->loop, &x->sweep_timer,
			      km_mono_ns() + SWEEP_NS))
		return km_error_set(err, KM_ENOMEM, "out of memory");
	if (x->cgroups)
		km_log(KM_LOG_INFO,
		       "exec checks: each run in a cgroup of its own, killed "
		       "whole at its end",
		       "under", km_cgroups_dir(x->cgroups), "orphans",
		       !x->reap  ? "left to the parent process"
		       : x->kill ? "reaped, and killed"
				 : "reaped (PID 1: not killed)",
		       NULL);
	else
		km_log(KM_LOG_INFO,
		       "exec checks: no cgroup per run; descendants found "
		       "through /proc at a timeout",
		       "why", why, "proc", x->proc_ours ? "ours" : "not ours",
		       "orphans",
		       !x->reap  ? "left to the parent process"
		       : x->kill ? "reaped, and killed"
				 : "reaped (PID 1: not killed)",
		       NULL);
	return 0;
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
	km_list_init(&x->dead_cgroups);
	x->max_children = env->max_exec_children;
	x->counters = env->counters;
	x->sigfd = -1;
	km_timer_init(&x->sweep_timer, on_sweep_timer, x);
	if (setup_containment(x, env, err)) {
		exec_destroy(x);
		return KM_ENOMEM;
	}
	*out = x;
	return 0;
}

static int exec_start(void *checker, struct km_check *c)
{
	struct km_exec_checker *x = checker;
	const struct km_probe *p = c->probe;
	struct exec_run *r;
	struct spawn_plan sp = {.dirfd = -1, .cgroup_fd = -1, .out_fd = -1};
	struct km_arena a;
	bool fa_init = false, attr_init = false;
	sigset_t mask, dfl;
	int pfd[2] = {-1, -1};
	int rc = 0, e;

	if (!p->argc || !p->argv[0] || !p->argv[0][0])
		return KM_EINVAL;
	if (refused(x, c))
		return 0;
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

	sp.cgroup_fd = make_cgroup(x, r);
	sp.out_fd = pfd[1];
	if (sp.cgroup_fd >= 0 && !x->spawn_stack &&
	    !(x->spawn_stack = malloc(SPAWN_STACK))) {
		rc = sys_fail(c, "spawn stack", ENOMEM);
		goto fail;
	}
	sp.stack = x->spawn_stack;
	r->spawned_at = km_boottime_ns();
	e = spawn_search(&sp, &r->pid);
	if (sp.cgroup_fd >= 0) {
		close(sp.cgroup_fd);
		sp.cgroup_fd = -1;
		if (e) {
			km_cgroup_remove(x->cgroups, r->cgroup);
			r->cgroup[0] = '\0';
		}
	}
	if (!e) {
		r->reaped = false;
		r->counted = true;
		x->children++;
	}
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
	if (sp.cgroup_fd >= 0) {
		close(sp.cgroup_fd);
		km_cgroup_remove(x->cgroups, r->cgroup);
	}
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
		kill_run(r, true);
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

			kill_run(r, true);
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
	/* What is left of runs' cgroups: one last try each. */
	while (!km_list_empty(&x->dead_cgroups)) {
		struct dead_cgroup *d = km_list_first(&x->dead_cgroups,
						      struct dead_cgroup, link);

		if (!km_cgroup_remove(x->cgroups, d->name))
			km_log(KM_LOG_WARN,
			       "exec check: a run's cgroup still holds "
			       "processes; left behind",
			       "cgroup", d->name, NULL);
		km_list_del(&d->link);
		free(d);
	}
	km_loop_timer_cancel(x->loop, &x->sweep_timer);
	if (x->sigfd >= 0) {
		km_loop_del_fd(x->loop, x->sigfd);
		close(x->sigfd);
	}
	km_cgroups_close(x->cgroups);
	free(x->spawn_stack);
	free(x);
}

const struct km_check_type km_check_exec = {
	.name = "exec",
	.create = exec_create,
	.destroy = exec_destroy,
	.start = exec_start,
	.cancel = exec_cancel,
};
