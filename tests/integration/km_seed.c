/*
 * km_seed — writes results and transitions into a kubemedic database
 * through the storage layer (km_store), for integration tests and
 * benchmarks, until the probe engine produces them itself.
 *
 *   km_seed --db PATH --target NAME [--results N] [--start-us T]
 *           [--step-us S] [--fail-every K] [--message TEXT]
 *           [--transition AT_US:FROM:TO:CAUSE]... [--raw]
 *
 * Results i = 0..N-1 start at T + i*S; every K-th (i % K == K-1) fails
 * with HTTP status 500. States are numbers (1 UNKNOWN, 2 HEALTHY,
 * 3 UNHEALTHY, 4 DEGRADED). Prints the target id. Works while kubemedicd
 * has the database open (SQLite serialises the two writers).
 *
 * Results are folded into runs and rollups, as kubemedicd writes them;
 * with --raw each is a row of `results` instead (the store's raw_results:
 * a database from before runs, schema 5's way), which kubemedicd converts
 * into runs after it starts.
 *
 * Every result is written: the store's ring drops the oldest result when
 * full (65536 by default), so km_seed flushes every SEED_FLUSH_EVERY
 * results and fails if the store reports a drop.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_store.h"
#include "km_time.h"

#define SEED_FLUSH_EVERY 32768

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},
		{"target", required_argument, NULL, 't'},
		{"results", required_argument, NULL, 'n'},
		{"start-us", required_argument, NULL, 's'},
		{"step-us", required_argument, NULL, 'S'},
		{"fail-every", required_argument, NULL, 'f'},
		{"message", required_argument, NULL, 'm'},
		{"transition", required_argument, NULL, 'T'},
		{"raw", no_argument, NULL, 'r'},
		{0},
	};
	struct km_store_options so = {0};
	struct km_store *s = NULL;
	struct km_target t = {0};
	struct km_error err = {0};
	const char *transitions[256];
	const char *message = NULL;
	long long n = 0, start = km_now_us(), step = 1000000, fail_every = 0;
	int n_tr = 0, c, rc = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': so.path = optarg; break;
		case 't': t.name = optarg; break;
		case 'n': n = atoll(optarg); break;
		case 's': start = atoll(optarg); break;
		case 'S': step = atoll(optarg); break;
		case 'f': fail_every = atoll(optarg); break;
		case 'm': message = optarg; break;
		case 'r': so.raw_results = true; break;
		case 'T':
			if (n_tr < 256)
				transitions[n_tr++] = optarg;
			break;
		default:
			fprintf(stderr,
				"usage: see the comment in km_seed.c\n");
			return 2;
		}
	}
	if (!so.path || !t.name) {
		fprintf(stderr, "km_seed: --db and --target are required\n");
		return 2;
	}
	/* The target exists from the first result on (a backfill). */
	t.created_us = start;
	if (km_store_open(&so, &s, &err) || km_store_ensure_target(s, &t, &err))
		goto out;
	for (long long i = 0; i < n; i++) {
		bool fail = fail_every && i % fail_every == fail_every - 1;
		struct km_result r = {
			.target_id = t.id,
			.started_us = start + i * step,
			.duration_us = 1000 + i % 500,
			.success = !fail,
			.error_class = fail ? KM_EC_HTTP_STATUS : KM_EC_NONE,
			.status_code = fail ? 500 : 200,
			.message = fail ? (message ? message : "HTTP 500")
					: NULL,
		};
		if (km_store_add_result(s, &r)) {
			fprintf(stderr, "km_seed: queue refused a result\n");
			goto out;
		}
		if (i % SEED_FLUSH_EVERY == SEED_FLUSH_EVERY - 1 &&
		    km_store_flush(s, &err))
			goto out;
	}
	for (int i = 0; i < n_tr; i++) {
		struct km_transition tr = {.target_id = t.id,
					   .target_name = t.name};
		char *copy = strdup(transitions[i]), *save = NULL;
		char *at = strtok_r(copy, ":", &save);
		char *from = strtok_r(NULL, ":", &save);
		char *to = strtok_r(NULL, ":", &save);
		char *cause = strtok_r(NULL, "", &save);

		if (!at || !from || !to) {
			fprintf(stderr,
				"km_seed: --transition AT:FROM:TO:CAUSE\n");
			free(copy);
			goto out;
		}
		tr.at_us = atoll(at);
		tr.from_state = atoi(from);
		tr.to_state = atoi(to);
		tr.cause = cause ? cause : "";
		rc = km_store_add_transition(s, &tr);
		free(copy);
		if (rc) {
			rc = 1;
			goto out;
		}
	}
	if (km_store_flush(s, &err))
		goto out;
	{
		struct km_store_stats st;

		km_store_get_stats(s, &st);
		if (st.results_dropped) {
			fprintf(stderr,
				"km_seed: the store dropped %llu "
				"results\n",
				(unsigned long long)st.results_dropped);
			goto out;
		}
	}
	printf("%lld\n", (long long)t.id);
	rc = 0;
out:
	if (rc && err.msg[0])
		fprintf(stderr, "km_seed: %s\n", err.msg);
	km_store_close(s);
	return rc;
}
