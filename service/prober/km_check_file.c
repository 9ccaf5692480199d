/*
 * File checks (kubemedic's own probe type): success iff the path exists,
 * is at least min_size bytes, and — with max_age_seconds — was modified
 * that recently (a heartbeat file a job touches).
 *
 * The stat(2) runs on a thread of the offload pool (km_offload.h), never
 * on the loop: a file system that does not answer (a hung NFS mount)
 * stalls this probe, which times out at its deadline ("stat of PATH did
 * not return within N ms"), not the loop and every other probe. The thread
 * stays in its call, counted as stuck, and another takes its place.
 *
 * A probe of the API (c->policy set) must still be allowed
 * (api.allowFile), and its path must lie under a directory of
 * api.filePathPrefixes once realpath(3) has resolved it (symbolic links
 * and ".." included), on the pool's thread too. What is then looked at is
 * the resolved path, so what was judged is what is stat'ed. A path outside
 * is not looked at: the run fails, naming the rule, and says nothing of
 * where the path leads.
 *
 * Memory: per run a struct file_run (the check's side: its timer) and a
 * struct file_job (the pool's side: a copy of everything the call needs,
 * so that a job abandoned in a hung call lives on without the run or the
 * probe). The run is freed when it reports or is cancelled; the job by
 * whoever holds it last (km_offload.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "check_internal.h"
#include "km_offload.h"

#ifdef KM_FILE_FAULTS
void (*km_check_file_fault)(const char *path);
#endif

struct file_checker {
	struct km_offload *offload;
};

struct file_job {
	struct km_offload_job job;
	struct file_run *run; /* the run waiting for it */
	/* In: the path and, for a probe of the API, the prefixes. */
	char *path;
	char **prefixes;
	size_t n_prefixes;
	bool check_prefixes;
	/* Out. */
	int real_err; /* realpath's errno */
	bool outside; /* the real path is under no prefix */
	int stat_err; /* stat's errno */
	struct stat st;
};

struct file_run {
	struct km_check *c;
	struct file_checker *x;
	struct file_job *job; /* submitted, until done or abandoned */
	struct km_timer timeout;
};

/* ---- the pool's side ----------------------------------------------------- */

static void job_free(struct km_offload_job *oj)
{
	struct file_job *j = (struct file_job *)oj;

	for (size_t i = 0; i < j->n_prefixes; i++)
		free(j->prefixes[i]);
	free(j->prefixes);
	free(j->path);
	free(j);
}

/* Under one of the prefixes, as written or as realpath has it (a prefix
 * that is itself a symbolic link, such as /var/run -> /run). */
static bool under_a_prefix(const struct file_job *j, const char *real)
{
	for (size_t i = 0; i < j->n_prefixes; i++) {
		char *rp;
		bool in;

		if (km_path_under(real, j->prefixes[i]))
			return true;
		rp = realpath(j->prefixes[i], NULL);
		in = rp && km_path_under(real, rp);
		free(rp);
		if (in)
			return true;
	}
	return false;
}

/* A pool thread: the calls that may block. */
static void job_work(struct km_offload_job *oj)
{
	struct file_job *j = (struct file_job *)oj;
	char *real = NULL;
	const char *target = j->path;

#ifdef KM_FILE_FAULTS
	if (km_check_file_fault)
		km_check_file_fault(j->path);
#endif
	if (j->check_prefixes) {
		real = realpath(j->path, NULL);
		if (!real) {
			j->real_err = errno;
			return;
		}
		if (!under_a_prefix(j, real)) {
			j->outside = true;
			free(real);
			return;
		}
		target = real;
	}
	if (stat(target, &j->st) < 0)
		j->stat_err = errno;
	free(real);
}

/* ---- the loop's side ----------------------------------------------------- */

static void run_report(struct file_run *r, const struct km_check_result *res)
{
	struct km_check *c = r->c;

	km_loop_timer_cancel(c->loop, &r->timeout);
	c->impl = NULL;
	free(r);
	c->done(c, res);
}

static void fail_errno(struct km_check_result *res, const char *path, int e)
{
	km_check_fail(res,
		      e == ENOENT || e == ENOTDIR ? KM_EC_FILE_MISSING
						  : KM_EC_INTERNAL,
		      0, "%s: %s", path, strerror(e));
}

static void job_done(struct km_offload_job *oj)
{
	struct file_job *j = (struct file_job *)oj;
	struct file_run *r = j->run;
	const struct km_probe *p = r->c->probe;
	struct km_check_result res;

	km_check_pass(&res);
	r->job = NULL;
	if (j->real_err) {
		fail_errno(&res, p->path, j->real_err);
	} else if (j->outside) {
		km_check_fail(&res, KM_EC_INTERNAL, 0,
			      "%s: not looked at: its real path is under no "
			      "directory of api.filePathPrefixes",
			      p->path);
	} else if (j->stat_err) {
		fail_errno(&res, p->path, j->stat_err);
	} else if ((int64_t)j->st.st_size < p->min_size) {
		km_check_fail(&res, KM_EC_FILE_TOO_SMALL, 0,
			      "%s: %lld bytes, less than minSize %lld", p->path,
			      (long long)j->st.st_size, (long long)p->min_size);
	} else if (p->max_age_s > 0) {
		struct timespec now;
		int64_t age;

		clock_gettime(CLOCK_REALTIME, &now);
		age = (int64_t)now.tv_sec - (int64_t)j->st.st_mtim.tv_sec;
		if (age > p->max_age_s)
			km_check_fail(&res, KM_EC_FILE_STALE, 0,
				      "%s: modified %llds ago, more than "
				      "maxAgeSeconds %lld",
				      p->path, (long long)age,
				      (long long)p->max_age_s);
	}
	job_free(oj);
	run_report(r, &res);
}

static void timed_out(struct km_loop *l, void *arg)
{
	struct file_run *r = arg;
	struct km_check_result res;

	(void)l;
	km_offload_abandon(r->x->offload, &r->job->job);
	r->job = NULL;
	km_check_fail(&res, KM_EC_TIMEOUT, 0,
		      "stat of %s did not return within %lld ms (a file "
		      "system that does not answer?); its thread is left to it",
		      r->c->probe->path, (long long)r->c->probe->timeout_ms);
	run_report(r, &res);
}

static struct file_job *job_new(const struct km_check *c)
{
	struct file_job *j = calloc(1, sizeof *j);
	const struct km_probe_policy *pol = c->policy;

	if (!j)
		return NULL;
	j->job.work = job_work;
	j->job.done = job_done;
	j->job.free_job = job_free;
	if (!(j->path = strdup(c->probe->path)))
		goto oom;
	if (pol) {
		j->check_prefixes = true;
		j->prefixes =
			calloc(pol->n_file_prefixes + 1, sizeof *j->prefixes);
		if (!j->prefixes)
			goto oom;
		for (; j->n_prefixes < pol->n_file_prefixes; j->n_prefixes++)
			if (!(j->prefixes[j->n_prefixes] = strdup(
				      pol->file_prefixes[j->n_prefixes])))
				goto oom;
	}
	return j;
oom:
	job_free(&j->job);
	return NULL;
}

static int file_start(void *checker, struct km_check *c)
{
	struct file_checker *x = checker;
	struct file_run *r;
	int rc;

	if (c->policy && !c->policy->allow_file) {
		struct km_check_result res;

		/* Stored while allowed; the config says otherwise now. */
		km_check_fail(&res, KM_EC_INTERNAL, 0,
			      "not run: file probes through the API are off "
			      "(api.allowFile)");
		c->done(c, &res);
		return 0;
	}
	r = calloc(1, sizeof *r);
	if (!r)
		return KM_ENOMEM;
	r->c = c;
	r->x = x;
	km_timer_init(&r->timeout, timed_out, r);
	r->job = job_new(c);
	if (!r->job) {
		free(r);
		return KM_ENOMEM;
	}
	r->job->run = r;
	rc = km_loop_timer_set(c->loop, &r->timeout, c->deadline);
	if (!rc)
		rc = km_offload_submit(x->offload, &r->job->job);
	if (rc) {
		km_loop_timer_cancel(c->loop, &r->timeout);
		job_free(&r->job->job);
		free(r);
		return rc;
	}
	c->impl = r;
	return 0;
}

static void file_cancel(void *checker, struct km_check *c)
{
	struct file_checker *x = checker;
	struct file_run *r = c->impl;

	if (!r)
		return;
	if (r->job)
		km_offload_abandon(x->offload, &r->job->job);
	km_loop_timer_cancel(c->loop, &r->timeout);
	c->impl = NULL;
	free(r);
}

static int file_create(const struct km_check_env *env, void **out,
		       struct km_error *err)
{
	struct file_checker *x = calloc(1, sizeof *x);

	*out = NULL;
	if (!x)
		return km_error_set(err, KM_ENOMEM, "out of memory");
	x->offload = env->offload;
	*out = x;
	return 0;
}

static void file_destroy(void *checker)
{
	free(checker);
}

const struct km_check_type km_check_file = {
	.name = "file",
	.create = file_create,
	.destroy = file_destroy,
	.start = file_start,
	.cancel = file_cancel,
};
