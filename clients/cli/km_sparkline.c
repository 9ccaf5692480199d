/*
 * Sparklines (km_sparkline.h).
 */
#include "km_sparkline.h"

#include <math.h>
#include <string.h>

size_t km_sparkline(const double *v, size_t n, double lo, double hi, char *out)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		int level = 0;

		if (isnan(v[i])) {
			out[len++] = ' ';
			continue;
		}
		if (hi > lo) {
			double x = (v[i] - lo) / (hi - lo);

			x = x < 0 ? 0 : x > 1 ? 1 : x;
			level = (int)(x * 7 + 0.5);
		}
		/* U+2581 + level: E2 96 81..88 */
		out[len++] = (char)0xe2;
		out[len++] = (char)0x96;
		out[len++] = (char)(0x81 + level);
	}
	out[len] = '\0';
	return len;
}
