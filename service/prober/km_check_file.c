/*
 * File checks (kubemedic's own probe type): success iff the path exists,
 * is at least min_size bytes, and — with max_age_seconds — was modified
 * that recently (a heartbeat file a job touches). One stat(2) on the loop:
 * cheap on a local file system. (A hung network mount would stall the
 * loop; probes of such paths belong in an exec probe with a timeout.)
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "check_internal.h"

static int file_start(void *checker, struct km_check *c)
{
	const struct km_probe *p = c->probe;
	struct km_check_result res = {.success = true};
	struct stat st;

	(void)checker;
	if (stat(p->path, &st) < 0) {
		int e = errno;

		km_check_fail(&res,
			      e == ENOENT || e == ENOTDIR ? KM_EC_FILE_MISSING
							  : KM_EC_INTERNAL,
			      0, "%s: %s", p->path, strerror(e));
	} else if ((int64_t)st.st_size < p->min_size) {
		km_check_fail(&res, KM_EC_FILE_TOO_SMALL, 0,
			      "%s: %lld bytes, less than minSize %lld", p->path,
			      (long long)st.st_size, (long long)p->min_size);
	} else if (p->max_age_s > 0) {
		struct timespec now;
		int64_t age;

		clock_gettime(CLOCK_REALTIME, &now);
		age = (int64_t)now.tv_sec - (int64_t)st.st_mtim.tv_sec;
		if (age > p->max_age_s)
			km_check_fail(&res, KM_EC_FILE_STALE, 0,
				      "%s: modified %llds ago, more than "
				      "maxAgeSeconds %lld",
				      p->path, (long long)age,
				      (long long)p->max_age_s);
	}
	c->done(c, &res);
	return 0;
}

const struct km_check_type km_check_file = {
	.name = "file",
	.start = file_start,
};
