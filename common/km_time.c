#include "km_time.h"

#include <stdio.h>

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
