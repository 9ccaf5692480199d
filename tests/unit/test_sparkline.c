/*
 * km_sparkline: the block chosen for each value, clamping, gaps, and a flat
 * window.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "km_sparkline.h"

static void test_levels_clamps_and_gaps(void **state)
{
	const double v[] = {0, 50, 100, -3, 250, NAN, 99.9, 14.3};
	char out[KM_SPARKLINE_BYTES(8)];
	size_t len;

	(void)state;
	len = km_sparkline(v, 8, 0, 100, out);
	assert_int_equal(len, strlen(out));
	assert_string_equal(out, "▁▅█▁█ █▂");
}

static void test_flat_and_empty(void **state)
{
	const double v[] = {7, 7, 7};
	char out[KM_SPARKLINE_BYTES(3)];

	(void)state;
	km_sparkline(v, 3, 7, 7, out);
	assert_string_equal(out, "▁▁▁");
	assert_int_equal(km_sparkline(v, 0, 0, 1, out), 0);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels_clamps_and_gaps),
		cmocka_unit_test(test_flat_and_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
