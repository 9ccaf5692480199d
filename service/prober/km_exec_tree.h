/*
 * km_exec_tree — what an exec probe's run started, whatever it became:
 * found, and killed. For km_check_exec.c (not a public contract).
 *
 * A run's process group is killed at its end, but a process can leave
 * its group (setsid) and its parent (a daemon's double fork). Two ways to
 * find such a process, chosen when the checker is made:
 *
 *  - cgroup v2 (km_cgroups_open succeeds): each run gets a cgroup of its
 *    own, km-run-<daemon pid>-<n>, created under kubemedicd's own cgroup
 *    (which must be writable, with no controller enabled for its children,
 *    on a kernel with cgroup.kill: Linux 5.14).
 *    The cgroup is made, its cgroup.procs opened, before the child is
 *    spawned, and the child moves itself in before it execs
 *    (km_check_exec.c's spawn_into_cgroup): everything it starts is
 *    there. Everything in it is killed at the run's end through
 *    cgroup.kill, whatever its session or parent, and the cgroup is
 *    removed once empty.
 *  - /proc otherwise: at a timeout or a cancel, the run's descendants are
 *    found through /proc/PID/task/TID/children while its leader lives,
 *    stopped (so that none forks meanwhile), then killed
 *    (km_proc_kill_tree). Those whose parent exited before are
 *    kubemedicd's children (it is a subreaper): see km_check_exec.c's
 *    sweep.
 *
 * /proc is read only where its process IDs are ours (km_proc_is_ours: a
 * /proc of another PID namespace would name other processes).
 *
 * Threads: the loop's. Everything here touches only cgroupfs and procfs,
 * which answer from memory: nothing waits on a disk.
 */
#ifndef KM_EXEC_TREE_H
#define KM_EXEC_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct km_cgroups;

/* Where runs' cgroups go; NULL with why filled (n bytes) when cgroup v2
 * cannot be used here. */
struct km_cgroups *km_cgroups_open(char *why, size_t n);
/* The directory runs' cgroups are made in, for messages. */
const char *km_cgroups_dir(const struct km_cgroups *cg);
void km_cgroups_close(struct km_cgroups *cg);

/* Makes a cgroup for the next run, named km-run-<daemon pid>-<n> with n
 * never used before (nor left by another), into name (at least 48
 * bytes), with its cgroup.procs open in *procs_fd (for the child to move
 * itself in before it execs: km_check_exec.c). 0, or an errno (the run
 * then goes without). */
int km_cgroup_make(struct km_cgroups *cg, char *name, size_t n, int *procs_fd);
/* Kills every process in the cgroup name (cgroup.kill). */
void km_cgroup_kill(struct km_cgroups *cg, const char *name);
/* Removes the cgroup: true once it is gone (or was), false while
 * processes remain in it (try again later). */
bool km_cgroup_remove(struct km_cgroups *cg, const char *name);

/* True if /proc names processes by our PID namespace's numbers. */
bool km_proc_is_ours(void);
/* The children of every thread of pid (pid 0: this process), at most
 * max of them into out; their number. */
size_t km_proc_children(pid_t pid, pid_t *out, size_t max);
/* Stops root's descendants, as found through /proc (again and again,
 * until no new one appears), then kills them all, root included, with
 * SIGKILL. Returns how many were found besides root. */
size_t km_proc_kill_tree(pid_t root);

/* CLOCK_BOOTTIME now, and when pid started on the same clock (from
 * /proc/PID/stat, to a clock tick: 10 ms), or -1 if it cannot be read.
 * A process that started before a run did cannot be that run's. */
int64_t km_boottime_ns(void);
int64_t km_proc_start_ns(pid_t pid);

#endif
