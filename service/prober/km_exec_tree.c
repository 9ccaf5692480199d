/*
 * Finding and killing what an exec run became (km_exec_tree.h): a cgroup
 * v2 per run where kubemedicd's own cgroup lets it make them, /proc's
 * lists of children otherwise.
 */
#include "km_exec_tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "km_log.h"

/* Descendants found per run at most, and rounds of looking. */
#define TREE_MAX 1024
#define TREE_ROUNDS 32

/* Runs' cgroups are numbered by the process, not by checker. */
static atomic_ullong run_seq = 1;

struct km_cgroups {
	int dirfd; /* kubemedicd's own cgroup directory */
	char path[4096];
};

/* ---- /proc --------------------------------------------------------------- */

bool km_proc_is_ours(void)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);

	if (n <= 0)
		return false;
	buf[n] = '\0';
	return atoi(buf) == (int)getpid();
}

/* Appends the pids of one "children" file to out. */
static size_t read_children(const char *path, pid_t *out, size_t max)
{
	char buf[4096];
	size_t n = 0;
	ssize_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	for (char *p = buf, *end; n < max; p = end) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		if (v > 0)
			out[n++] = (pid_t)v;
	}
	return n;
}

size_t km_proc_children(pid_t pid, pid_t *out, size_t max)
{
	char dir[64];
	DIR *d;
	struct dirent *e;
	size_t n = 0;

	if (pid)
		snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	else
		snprintf(dir, sizeof dir, "/proc/self/task");
	d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		char path[384];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/children", dir, e->d_name);
		n += read_children(path, out + n, max - n);
	}
	closedir(d);
	return n;
}

static bool has(const pid_t *v, size_t n, pid_t p)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == p)
			return true;
	return false;
}

size_t km_proc_kill_tree(pid_t root)
{
	pid_t *found = malloc(TREE_MAX * sizeof *found);
	size_t n = 0, looked = 0;

	if (!found) {
		kill(root, SIGKILL);
		return 0;
	}
	/* Stopped, a process forks no more: look until nothing new turns
	 * up, stopping each as it is found. */
	kill(root, SIGSTOP);
	found[n++] = root;
	for (int round = 0; round < TREE_ROUNDS; round++) {
		size_t before = n;

		for (size_t i = 0; i < n && n < TREE_MAX; i++) {
			pid_t kids[256];
			size_t k = km_proc_children(found[i], kids, 256);

			for (size_t j = 0; j < k && n < TREE_MAX; j++)
				if (!has(found, n, kids[j])) {
					kill(kids[j], SIGSTOP);
					found[n++] = kids[j];
				}
		}
		looked = n;
		if (n == before)
			break;
	}
	for (size_t i = 0; i < looked; i++)
		kill(found[i], SIGKILL);
	free(found);
	return looked - 1;
}

int64_t km_boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t km_proc_start_ns(pid_t pid)
{
	char path[64], buf[1024];
	const char *p;
	ssize_t len;
	long long ticks;
	long hz = sysconf(_SC_CLK_TCK);
	int fd;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (len <= 0 || hz <= 0)
		return -1;
	buf[len] = '\0';
	/* The command name may hold anything, ')' included: fields are
	 * counted from its last ')'. starttime is field 22; the state,
	 * field 3, comes right after the name. */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	for (int field = 2; field < 21; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -1;
	}
	if (sscanf(p, " %lld", &ticks) != 1)
		return -1;
	return ticks * (1000000000LL / hz);
}

/* ---- cgroup v2 ----------------------------------------------------------- */

/* kubemedicd's cgroup v2 path ("0::/x/y" in /proc/self/cgroup). */
static bool own_cgroup(char *out, size_t n)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	bool ok = false;

	if (!f)
		return false;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, n, "%s", line + 3);
			ok = true;
			break;
		}
	fclose(f);
	return ok;
}

/* The mount point of the cgroup2 hierarchy, and the hierarchy's path at
 * its root (not "/" where the mount shows part of it), from
 * /proc/self/mountinfo. */
static bool cgroup2_mount(char *mnt, size_t n, char *root, size_t rn)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	bool ok = false;

	if (!f)
		return false;
	while (fgets(line, sizeof line, f)) {
		/* id parent major:minor root mount-point options ... - fstype
		 * ... */
		char r[4096], m[4096];
		const char *dash = strstr(line, " - ");

		if (!dash || strncmp(dash + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", r, m) != 2)
			continue;
		snprintf(mnt, n, "%s", m);
		snprintf(root, rn, "%s", r);
		ok = true;
		break;
	}
	fclose(f);
	return ok;
}

/* Writes text to dir/name (a cgroup file). 0 or an errno. */
static int write_file(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	ssize_t w;
	int e;

	if (fd < 0)
		return errno;
	w = write(fd, text, strlen(text));
	e = w < 0 ? errno : 0;
	close(fd);
	return e;
}

/* Removes what an earlier kubemedicd left (it was killed): empty cgroups
 * of runs, named km-run-<pid>-<n>, whose pid is no process now, or is
 * ours on the first open in this process (a container's PID 1, started
 * again). Another live kubemedicd's are left alone: one may be between
 * making a cgroup and moving its child in. */
static void remove_stale(struct km_cgroups *cg)
{
	static atomic_bool opened_before;
	bool first = !atomic_exchange(&opened_before, true);
	int fd = openat(cg->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		long pid;
		char *end;

		if (strncmp(e->d_name, "km-run-", 7))
			continue;
		pid = strtol(e->d_name + 7, &end, 10);
		if (end == e->d_name + 7 || *end != '-' || pid <= 0)
			continue;
		if (pid == (long)getpid()
			    ? first
			    : kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			unlinkat(cg->dirfd, e->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

struct km_cgroups *km_cgroups_open(char *why, size_t n)
{
	char own[4096], mnt[4096], root[4096], probe[64];
	struct km_cgroups *cg;
	const char *rel;
	size_t rl;

	if (!own_cgroup(own, sizeof own)) {
		snprintf(why, n,
			 "no cgroup v2 (no \"0::\" line in "
			 "/proc/self/cgroup)");
		return NULL;
	}
	if (!cgroup2_mount(mnt, sizeof mnt, root, sizeof root)) {
		snprintf(why, n, "no cgroup2 file system mounted");
		return NULL;
	}
	/* own is relative to the hierarchy's root; the mount shows it from
	 * root on. */
	rl = strcmp(root, "/") ? strlen(root) : 0;
	if (strncmp(own, root, rl) || (own[rl] && own[rl] != '/')) {
		snprintf(why, n,
			 "kubemedicd's cgroup %s is not under the mounted "
			 "part of the hierarchy (%s)",
			 own, root);
		return NULL;
	}
	rel = own + rl;
	cg = calloc(1, sizeof *cg);
	if (!cg) {
		snprintf(why, n, "out of memory");
		return NULL;
	}
	snprintf(cg->path, sizeof cg->path, "%s%s", mnt,
		 strcmp(rel, "/") ? rel : "");
	cg->dirfd = open(cg->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cg->dirfd < 0) {
		snprintf(why, n, "%s: %s", cg->path, strerror(errno));
		free(cg);
		return NULL;
	}
	if (faccessat(cg->dirfd, "cgroup.procs", F_OK, 0) < 0) {
		snprintf(why, n, "%s is no cgroup v2 directory", cg->path);
		goto fail;
	}
	/* kubemedicd stays in its own cgroup: a run can join a child of it
	 * only while no controller is enabled for its children (cgroup v2's
	 * "no internal processes" rule; the move would fail EBUSY). */
	{
		char ctl[256] = "";
		int fd = openat(cg->dirfd, "cgroup.subtree_control",
				O_RDONLY | O_CLOEXEC);
		ssize_t len = fd >= 0 ? read(fd, ctl, sizeof ctl - 1) : -1;

		if (fd >= 0)
			close(fd);
		if (len > 0 && ctl[0] != '\n') {
			ctl[len] = '\0';
			ctl[strcspn(ctl, "\n")] = '\0';
			snprintf(why, n,
				 "%s enables controllers for its children "
				 "(%s): kubemedicd's own process is there, so "
				 "a run could not join a cgroup below it",
				 cg->path, ctl);
			goto fail;
		}
	}
	/* Can a cgroup be made here, and killed? */
	snprintf(probe, sizeof probe, "km-run-%d-probe", (int)getpid());
	if (mkdirat(cg->dirfd, probe, 0755) < 0 && errno != EEXIST) {
		snprintf(why, n, "cannot make a cgroup in %s: %s", cg->path,
			 strerror(errno));
		goto fail;
	}
	{
		char kill_file[96];

		snprintf(kill_file, sizeof kill_file, "%s/cgroup.kill", probe);
		if (faccessat(cg->dirfd, kill_file, W_OK, 0) < 0) {
			snprintf(why, n,
				 "no cgroup.kill in %s (Linux 5.14 or later "
				 "has it)",
				 cg->path);
			unlinkat(cg->dirfd, probe, AT_REMOVEDIR);
			goto fail;
		}
	}
	unlinkat(cg->dirfd, probe, AT_REMOVEDIR);
	remove_stale(cg);
	return cg;
fail:
	close(cg->dirfd);
	free(cg);
	return NULL;
}

const char *km_cgroups_dir(const struct km_cgroups *cg)
{
	return cg->path;
}

void km_cgroups_close(struct km_cgroups *cg)
{
	if (!cg)
		return;
	close(cg->dirfd);
	free(cg);
}

int km_cgroup_make(struct km_cgroups *cg, char *name, size_t n, int *procs_fd)
{
	char procs[96];
	int e;

	*procs_fd = -1;
	/* A name never used before by this process; one left by a process
	 * of the same pid (a container's PID 1, restarted) is not reused. */
	for (;;) {
		snprintf(name, n, "km-run-%d-%llu", (int)getpid(),
			 (unsigned long long)atomic_fetch_add(&run_seq, 1));
		if (mkdirat(cg->dirfd, name, 0755) == 0)
			break;
		if (errno != EEXIST)
			return errno;
	}
	snprintf(procs, sizeof procs, "%s/cgroup.procs", name);
	*procs_fd = openat(cg->dirfd, procs, O_WRONLY | O_CLOEXEC);
	if (*procs_fd < 0) {
		e = errno;
		unlinkat(cg->dirfd, name, AT_REMOVEDIR);
		return e;
	}
	return 0;
}

void km_cgroup_kill(struct km_cgroups *cg, const char *name)
{
	char path[96];
	int e;

	snprintf(path, sizeof path, "%s/cgroup.kill", name);
	e = write_file(cg->dirfd, path, "1");
	if (e)
		km_log(KM_LOG_WARN, "exec check: cannot kill a run's cgroup",
		       "cgroup", name, "error", strerror(e), NULL);
}

bool km_cgroup_remove(struct km_cgroups *cg, const char *name)
{
	return unlinkat(cg->dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT;
}
