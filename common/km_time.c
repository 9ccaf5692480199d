#include "km_time.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "km_error.h"

const char *km_fmt_time_us(char buf[40], int64_t us)
{
	time_t s = (time_t)(us / 1000000);
	long frac = (long)(us % 1000000);
	struct tm tm;

	if (frac < 0) {
		frac += 1000000;
		s -= 1;
	}
	gmtime_r(&s, &tm);
	/* The int casts bound what GCC assumes each field may print. */
	snprintf(buf, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
		 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
		 tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		 tm.tm_sec % 100, frac % 1000000);
	return buf;
}

int km_duration_parse(const char *s, int64_t *ms)
{
	int64_t total = 0;

	if (!s || !*s)
		return KM_EINVAL;
	if (strcmp(s, "0") == 0) {
		*ms = 0;
		return 0;
	}
	while (*s) {
		int64_t v = 0, unit;

		if (!isdigit((unsigned char)*s))
			return KM_EINVAL;
		for (; isdigit((unsigned char)*s); s++) {
			int d = *s - '0';

			if (v > (INT64_MAX - d) / 10)
				return KM_EINVAL;
			v = v * 10 + d;
		}
		if (s[0] == 'm' && s[1] == 's') {
			unit = 1;
			s += 2;
		} else {
			switch (*s) {
			case 's': unit = 1000; break;
			case 'm': unit = 60000LL; break;
			case 'h': unit = 3600000LL; break;
			case 'd': unit = 86400000LL; break;
			default: return KM_EINVAL;
			}
			s++;
		}
		if (v > INT64_MAX / unit || total > INT64_MAX - v * unit)
			return KM_EINVAL;
		total += v * unit;
	}
	*ms = total;
	return 0;
}
