/*
 * bench/bench_util.c — see bench_util.h.
 */
#include "bench_util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void bench_die(const char *what, const char *msg)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
		msg);
	exit(1);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

void bench_stats(int64_t *v, long n, double *p50, double *p99)
{
	qsort(v, (size_t)n, sizeof *v, cmp_i64);
	*p50 = (double)v[n / 2] / 1000.0;
	*p99 = (double)v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1000.0;
}

void bench_report(const char *name, int64_t *v, long n, const char *base,
		  int64_t *b, long nb)
{
	double p50, p99, b50, b99;

	bench_stats(v, n, &p50, &p99);
	bench_stats(b, nb, &b50, &b99);
	printf("%-34s p50 %9.1f us  p99 %9.1f us | %-22s p50 %9.1f us  "
	       "p99 %9.1f us | ratio p50 %6.2f  p99 %6.2f\n",
	       name, p50, p99, base, b50, b99, p50 / b50, p99 / b99);
}

Google__Protobuf__Timestamp bench_ts(int64_t us)
{
	Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

	t.seconds = us / 1000000;
	t.nanos = (int32_t)(us % 1000000 * 1000);
	return t;
}

static void *drain(void *arg)
{
	struct bench_daemon *d = arg;
	char line[4096];

	while (fgets(line, sizeof line, d->err)) {
		char *p = strstr(line, "listen=");

		fputs(line, d->log);
		if (strstr(line, "kubemedicd started") && p) {
			pthread_mutex_lock(&d->mu);
			sscanf(p + 7, "%127[^ \n\"]", d->addr);
			pthread_cond_broadcast(&d->cv);
			pthread_mutex_unlock(&d->mu);
		}
	}
	pthread_mutex_lock(&d->mu);
	d->ended = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

void bench_daemon_start(const char *path, const char *dir, const char *db,
			struct bench_daemon *d)
{
	int fd[2];
	char logpath[4096];
	struct timespec until;

	snprintf(logpath, sizeof logpath, "%s/kubemedicd.log", dir);
	if (pipe(fd) || !(d->log = fopen(logpath, "w")))
		bench_die("daemon", strerror(errno));
	d->pid = fork();
	if (d->pid < 0)
		bench_die("fork", strerror(errno));
	if (d->pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		execl(path, path, "--listen", "127.0.0.1:0", "--db", db,
		      (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(fd[1]);
	d->err = fdopen(fd[0], "r");
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	pthread_create(&d->drain, NULL, drain, d);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&d->mu);
	while (!d->addr[0] && !d->ended &&
	       pthread_cond_timedwait(&d->cv, &d->mu, &until) == 0)
		;
	pthread_mutex_unlock(&d->mu);
	if (!d->addr[0])
		bench_die("kubemedicd", "did not start (see its log in --dir)");
}

void bench_daemon_stop(struct bench_daemon *d)
{
	int status;

	kill(d->pid, SIGTERM);
	waitpid(d->pid, &status, 0);
	pthread_join(d->drain, NULL);
	fclose(d->err);
	fclose(d->log);
}
