/*
 * `kubemedic availability`'s table (cli_availability.h).
 */
#include "cli_availability.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "km_json.h"
#include "km_sparkline.h"

int64_t km_cli_availability_step(int64_t window_us)
{
	int64_t n = KM_CLI_AVAILABILITY_STEPS * 1000000LL;

	return window_us > 0 ? (window_us + n - 1) / n : 1;
}

/* "3d 4h", "2h 5m", "7m 12s", "45s": the two largest units. */
static const char *fmt_dur(char buf[32], int64_t s)
{
	if (s >= 86400)
		snprintf(buf, 32, "%lldd %lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(buf, 32, "%lldh %lldm", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, 32, "%lldm %llds", (long long)(s / 60),
			 (long long)(s % 60));
	else
		snprintf(buf, 32, "%llds", (long long)s);
	return buf;
}

/* "12h", "1d 12h", "90s": a step's length. */
static const char *fmt_step(char buf[32], int64_t s)
{
	if (s % 86400 == 0)
		snprintf(buf, 32, "%lldd", (long long)(s / 86400));
	else if (s % 3600 == 0)
		snprintf(buf, 32, "%lldh", (long long)(s / 3600));
	else if (s % 60 == 0)
		snprintf(buf, 32, "%lldm", (long long)(s / 60));
	else
		return fmt_dur(buf, s);
	return buf;
}

static const char *fmt_time(char buf[40], const Google__Protobuf__Timestamp *t)
{
	struct tm tm;
	time_t s;

	if (!t)
		return "-";
	s = (time_t)t->seconds;
	gmtime_r(&s, &tm);
	strftime(buf, 40, "%Y-%m-%d %H:%M:%SZ", &tm);
	return buf;
}

static const char *safe(struct km_arena *a, const char *s)
{
	const char *out = km_text_safe(s, a);

	return out ? out : "(out of memory)";
}

static const char *action_name(int v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
		&kubemedic__v1__recovery_action__descriptor, v);
	static const char prefix[] = "RECOVERY_ACTION_";

	if (!ev)
		return "?";
	return strncmp(ev->name, prefix, sizeof prefix - 1)
		       ? ev->name
		       : ev->name + sizeof prefix - 1;
}

/* The steps' uptime as a sparkline from lo (the lowest step's uptime
 * rounded down to a multiple of 10, at most 90) to 100: a dip shows
 * however small the scale needs to be, and the scale is printed. */
static void print_steps(FILE *out, const Kubemedic__V1__Availability *a,
			struct km_arena *ar)
{
	double *v, lo = 90, worst = NAN;
	char *line, b[32];
	size_t n = a->n_steps;

	if (!n)
		return;
	v = km_arena_calloc(ar, n, sizeof *v);
	line = km_arena_alloc(ar, KM_SPARKLINE_BYTES(n));
	if (!v || !line)
		return;
	for (size_t i = 0; i < n; i++) {
		v[i] = a->steps[i]->uptime_percent;
		if (!isnan(v[i]) && (isnan(worst) || v[i] < worst))
			worst = v[i];
	}
	if (!isnan(worst) && worst < lo)
		lo = worst <= 0 ? 0 : (double)((int)(worst / 10) * 10);
	km_sparkline(v, n, lo, 100, line);
	fprintf(out, "per %-8s %s\n", fmt_step(b, a->step_seconds), line);
	if (isnan(worst))
		fprintf(out, "            (nothing observed in any step)\n");
	else
		fprintf(out,
			"            (\u2581 %.0f%% .. \u2588 100%%; worst step "
			"%.3f%%; blank: nothing observed)\n",
			lo, worst);
}

void km_cli_availability_print(FILE *out, const Kubemedic__V1__Availability *a,
			       const char *subject, struct km_arena *ar)
{
	char b1[40], b2[40], d1[32], d2[32];
	size_t shown = 0;

	if (a->target && *a->target)
		fprintf(out, "%s\n", safe(ar, subject));
	else
		fprintf(out, "%d target%s (%s)\n", a->targets,
			a->targets == 1 ? "" : "s", safe(ar, subject));
	fprintf(out, "window      %s .. %s\n", fmt_time(b1, a->start_time),
		fmt_time(b2, a->end_time));
	if (isnan(a->uptime_percent))
		fprintf(out, "uptime      -  (nothing observed)\n");
	else
		fprintf(out, "uptime      %.3f%%  (observed %s, down %s)\n",
			a->uptime_percent, fmt_dur(d1, a->observed_seconds),
			fmt_dur(d2, a->downtime_seconds));
	fprintf(out, "incidents   %d (%d open)\n", a->incidents,
		a->open_incidents);
	if (a->incidents) {
		fprintf(out, "MTTR        %s\n", fmt_dur(d1, a->mttr_seconds));
		fprintf(out, "MTBF        %s\n", fmt_dur(d1, a->mtbf_seconds));
	} else {
		fprintf(out, "MTTR        -\nMTBF        -\n");
	}
	print_steps(out, a, ar);

	for (size_t i = 0; i < a->n_actions; i++) {
		const Kubemedic__V1__ActionEffect *e = a->actions[i];
		int done = e->attempts - e->pending;

		if (!shown++)
			fprintf(out, "\n%-16s %8s %8s %8s %6s\n", "ACTION",
				"ATTEMPTS", "VERIFIED", "PENDING", "FIXED");
		if (done > 0)
			fprintf(out, "%-16s %8d %8d %8d %5.0f%%\n",
				action_name(e->action), e->attempts,
				e->verified, e->pending,
				100.0 * e->verified / done);
		else
			fprintf(out, "%-16s %8d %8d %8d %6s\n",
				action_name(e->action), e->attempts,
				e->verified, e->pending, "-");
	}
	if (!shown)
		fprintf(out, "\nNo recovery acted in the window.\n");
}
