/*
 * kubemedic history and kubemedic latency: a target's past.
 *
 * history shows runs (QueryProbeHistory): consecutive results of one
 * outcome as one line — first and last time, how many, the durations'
 * mean, minimum and maximum, a failure's first and last message — under a
 * line drawn from QueryLatency: the share of failures per step of the
 * window, with the window's results and failures. latency shows each
 * step's results, failures and p50/p90/p99, under a line of the p99.
 *
 * A window of about LINE_STEPS steps: its step is a whole number of
 * minutes, or of hours (from a whole hour: the server then reads its hour
 * rollups) once a step is an hour or more.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "km_sparkline.h"
#include "km_time.h"

#define LINE_STEPS 60
#define MINUTE_US INT64_C(60000000)
#define HOUR_US INT64_C(3600000000)
#define DAY_US (24 * HOUR_US)

/* "850us", "12.3ms", "1.20s"; "-" for a negative (no value). */
static const char *fmt_us(char buf[24], int64_t us)
{
	if (us < 0)
		snprintf(buf, 24, "-");
	else if (us < 1000)
		snprintf(buf, 24, "%lldus", (long long)us);
	else if (us < 1000000)
		snprintf(buf, 24, "%.1fms", (double)us / 1e3);
	else
		snprintf(buf, 24, "%.2fs", (double)us / 1e6);
	return buf;
}

static int64_t floor_to(int64_t v, int64_t unit)
{
	int64_t q = v / unit;

	return (v % unit < 0 ? q - 1 : q) * unit;
}

/* A window [*from, to) cut into about LINE_STEPS steps: *step_s whole
 * minutes, or whole hours from a whole hour. */
static void auto_steps(int64_t *from, int64_t to, int64_t *step_s)
{
	int64_t span = to - *from, step = span / LINE_STEPS;

	if (step >= HOUR_US) {
		step = (step + HOUR_US - 1) / HOUR_US * HOUR_US;
		*from = floor_to(*from, HOUR_US);
	} else {
		step = (step + MINUTE_US - 1) / MINUTE_US * MINUTE_US;
		if (step < MINUTE_US)
			step = MINUTE_US;
	}
	*step_s = step / 1000000;
}

/* The window of --since/--until: default_span back from now without
 * --since, until now without --until. 0, or a usage error's status. */
static int window(struct cli *cli, int64_t default_span, int64_t *from,
		  int64_t *to)
{
	*to = km_now_us();
	if (cli->o.until && parse_time(cli->o.until, to))
		return usage_error("--until: want RFC 3339 or an age like 2h, "
				   "got \"%s\"",
				   cli->o.until);
	*from = *to - default_span;
	if (cli->o.since && parse_time(cli->o.since, from))
		return usage_error("--since: want RFC 3339 or an age like 2h, "
				   "got \"%s\"",
				   cli->o.since);
	if (*to <= *from)
		return usage_error("--until must be after --since%s", "");
	return 0;
}

static int query_latency(struct cli *cli, int64_t from, int64_t to,
			 int64_t step_s,
			 Kubemedic__V1__QueryLatencyResponse **r)
{
	Kubemedic__V1__QueryLatencyRequest req =
		KUBEMEDIC__V1__QUERY_LATENCY_REQUEST__INIT;

	req.target = cli->o.pos[1];
	req.start_time = timestamp(&cli->a, from);
	req.end_time = timestamp(&cli->a, to);
	req.step_seconds = step_s;
	if (!req.start_time || !req.end_time) {
		fprintf(stderr, "kubemedic: out of memory\n");
		return 1;
	}
	return km_client_query_latency(cli->c, &req, &cli->a, r, &cli->st)
		       ? rpc_failed(cli)
		       : 0;
}

/* "2026-09-21 13:00:00Z .. 14:00:00Z, 1m steps" */
static void print_window(const Kubemedic__V1__QueryLatencyResponse *r,
			 int64_t to, int64_t step_s)
{
	Google__Protobuf__Timestamp end = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	char a[40], b[40];

	end.seconds = to / 1000000;
	printf("%s .. %s, %lld%s steps",
	       fmt_ts(a, r->n_steps ? r->steps[0]->start_time : NULL),
	       fmt_ts(b, &end),
	       (long long)(step_s % 3600 ? step_s / 60 : step_s / 3600),
	       step_s % 3600 ? "m" : "h");
	if (r->coarse_until_time)
		printf("; before %s minute rollups are gone: an hour counts "
		       "whole",
		       fmt_ts(a, r->coarse_until_time));
}

/* The failures line above the history: the share of failures per step,
 * drawn from 0 to the worst step's share. Without it (a server without
 * QueryLatency, a usage error in --since/--until) the history is still
 * shown, after a note on stderr. */
static void failure_line(struct cli *cli)
{
	Kubemedic__V1__QueryLatencyResponse *r;
	int64_t from, to, step_s, results = 0, failures = 0;
	double *v, worst = 0;
	char *line;

	if (window(cli, DAY_US, &from, &to))
		return;
	auto_steps(&from, to, &step_s);
	if (query_latency(cli, from, to, step_s, &r)) {
		fprintf(stderr, "kubemedic: (no failures line: the server did "
				"not answer QueryLatency)\n");
		return;
	}
	v = km_arena_calloc(&cli->a, r->n_steps ? r->n_steps : 1, sizeof *v);
	line = km_arena_alloc(&cli->a, KM_SPARKLINE_BYTES(r->n_steps));
	if (!v || !line) {
		fprintf(stderr, "kubemedic: (no failures line: out of "
				"memory)\n");
		return;
	}
	for (size_t i = 0; i < r->n_steps; i++) {
		const Kubemedic__V1__LatencyStep *s = r->steps[i];

		results += s->count;
		failures += s->failures;
		v[i] = s->count ? (double)s->failures / (double)s->count : NAN;
		if (s->count && v[i] > worst)
			worst = v[i];
	}
	km_sparkline(v, r->n_steps, 0, worst, line);
	printf("Failures  %s  %lld results, %lld failed", line,
	       (long long)results, (long long)failures);
	if (results)
		printf(" (%.1f%%; worst step %.1f%%)",
		       100.0 * (double)failures / (double)results,
		       100.0 * worst);
	printf("\n          ");
	print_window(r, to, step_s);
	printf("\n\n");
}

static void print_run(struct cli *cli, const Kubemedic__V1__ProbeResult *x)
{
	char t0[40], t1[40], mean[24], lo[24], hi[24];
	const char *msg = safe(&cli->a, x->message);

	printf("%-20s %-20s %7lld  %-6s %8s %8s %8s  %-12s %4d  ",
	       fmt_ts(t0, x->start_time),
	       fmt_ts(t1,
		      x->last_start_time ? x->last_start_time : x->start_time),
	       (long long)(x->count ? x->count : 1), x->success ? "ok" : "FAIL",
	       fmt_us(mean, x->duration_us),
	       fmt_us(lo, x->count ? x->duration_min_us : x->duration_us),
	       fmt_us(hi, x->count ? x->duration_max_us : x->duration_us),
	       x->success ? "-" : ERRCLASS(x->error_class), x->status_code);
	if (*x->first_message && strcmp(x->first_message, x->message))
		printf("%s (first: %s)\n", msg,
		       safe(&cli->a, x->first_message));
	else
		printf("%s\n", msg);
}

int cmd_history(struct cli *cli)
{
	Kubemedic__V1__QueryProbeHistoryRequest req =
		KUBEMEDIC__V1__QUERY_PROBE_HISTORY_REQUEST__INIT;
	int64_t left = cli->o.limit ? cli->o.limit : 100;
	struct json_list jl = {0};
	int rc, shown = 0, pages = 0;

	if (cli->o.n_pos != 2)
		return usage_error("history TARGET%s", "");
	if (cli->o.failures && cli->o.successes)
		return usage_error("--failures and --successes exclude each "
				   "other%s",
				   "");
	if ((rc = time_range(cli, &req.start_time, &req.end_time)) ||
	    (rc = connect_server(cli)))
		return rc;
	req.target = cli->o.pos[1];
	req.outcome = cli->o.failures ? KUBEMEDIC__V1__OUTCOME__OUTCOME_FAILURE
		      : cli->o.successes
			      ? KUBEMEDIC__V1__OUTCOME__OUTCOME_SUCCESS
			      : 0;
	req.order = cli->o.oldest_first
			    ? KUBEMEDIC__V1__ORDER__ORDER_OLDEST_FIRST
			    : KUBEMEDIC__V1__ORDER__ORDER_NEWEST_FIRST;
	do {
		Kubemedic__V1__QueryProbeHistoryResponse *r;

		req.page_size = (int32_t)(left < 1000 ? left : 1000);
		if (km_client_query_probe_history(cli->c, &req, &cli->a, &r,
						  &cli->st))
			return rpc_failed(cli);
		/* Above the first page: the target is known to exist. */
		if (!cli->o.json && !pages++)
			failure_line(cli);
		for (size_t i = 0; i < r->n_results; i++) {
			const Kubemedic__V1__ProbeResult *x = r->results[i];

			if (cli->o.json) {
				if (json_list_add(&jl, &x->base))
					return 1;
				continue;
			}
			if (!shown++)
				printf("%-20s %-20s %7s  %-6s %8s %8s %8s  "
				       "%-12s %4s  %s\n",
				       "FIRST", "LAST", "COUNT", "RESULT",
				       "MEAN", "MIN", "MAX", "CLASS", "CODE",
				       "MESSAGE");
			print_run(cli, x);
		}
		left -= (int64_t)r->n_results;
		req.page_token = r->next_page_token;
	} while (left > 0 && req.page_token && *req.page_token);
	if (cli->o.json)
		json_list_end(&jl);
	else if (!shown)
		printf("No results in that range.\n");
	return 0;
}

/* --step: a duration in whole seconds (the server wants whole minutes,
 * and says so). */
static int parse_step(const char *s, int64_t *step_s)
{
	int64_t ms;

	if (km_duration_parse(s, &ms) || ms <= 0 || ms % 1000)
		return usage_error("--step: want a duration like 5m or 1h, "
				   "got \"%s\"",
				   s);
	*step_s = ms / 1000;
	return 0;
}

static void print_latency_table(struct cli *cli,
				const Kubemedic__V1__QueryLatencyResponse *r)
{
	char b[40], q[24];

	printf("%-20s %8s %7s", "TIME", "RESULTS", "FAILED");
	for (size_t k = 0; k < r->n_quantiles; k++) {
		snprintf(q, sizeof q, "P%g", r->quantiles[k] * 100);
		printf(" %9s", q);
	}
	printf("\n");
	for (size_t i = 0; i < r->n_steps; i++) {
		const Kubemedic__V1__LatencyStep *s = r->steps[i];

		printf("%-20s %8lld %7lld", fmt_ts(b, s->start_time),
		       (long long)s->count, (long long)s->failures);
		for (size_t k = 0; k < r->n_quantiles; k++)
			printf(" %9s", fmt_us(q, k < s->n_quantile_us
							 ? s->quantile_us[k]
							 : -1));
		printf("\n");
	}
	(void)cli;
}

int cmd_latency(struct cli *cli)
{
	Kubemedic__V1__QueryLatencyResponse *r;
	int64_t from, to, step_s = 0, lo = INT64_MAX, hi = -1;
	size_t p99 = 0;
	double *v;
	char *line, a[24], b[24];
	int rc;

	if (cli->o.n_pos != 2)
		return usage_error("latency TARGET%s", "");
	if ((rc = window(cli, HOUR_US, &from, &to)))
		return rc;
	if (cli->o.step) {
		rc = parse_step(cli->o.step, &step_s);
		/* Steps of whole hours from a whole hour: the server reads
		 * its hour rollups, and the steps are the clock's hours. */
		if (!rc && step_s % 3600 == 0)
			from = floor_to(from, HOUR_US);
	} else {
		auto_steps(&from, to, &step_s);
	}
	if (rc || (rc = connect_server(cli)) ||
	    (rc = query_latency(cli, from, to, step_s, &r)))
		return rc;
	if (cli->o.json)
		return print_json(&r->base);
	/* The line draws the quantile nearest 0.99 (the default's last). */
	for (size_t k = 0; k < r->n_quantiles; k++)
		if (fabs(r->quantiles[k] - 0.99) <
		    fabs(r->quantiles[p99] - 0.99))
			p99 = k;
	v = km_arena_calloc(&cli->a, r->n_steps ? r->n_steps : 1, sizeof *v);
	line = km_arena_alloc(&cli->a, KM_SPARKLINE_BYTES(r->n_steps));
	if (!v || !line) {
		fprintf(stderr, "kubemedic: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < r->n_steps; i++) {
		const Kubemedic__V1__LatencyStep *s = r->steps[i];
		int64_t x = p99 < s->n_quantile_us ? s->quantile_us[p99] : -1;

		v[i] = x < 0 ? NAN : (double)x;
		if (x >= 0 && x < lo)
			lo = x;
		if (x > hi)
			hi = x;
	}
	/* From 0: a line from the lowest value would make 1.59 ms against
	 * 1.60 ms look like a cliff. */
	km_sparkline(v, r->n_steps, 0, hi < 0 ? 0 : (double)hi, line);
	printf("P%g  %s  ", r->n_quantiles ? r->quantiles[p99] * 100 : 99,
	       line);
	if (hi < 0)
		printf("no results\n     ");
	else
		printf("%s .. %s\n     ", fmt_us(a, lo), fmt_us(b, hi));
	print_window(r, to, step_s);
	printf("\n\n");
	print_latency_table(cli, r);
	return 0;
}
