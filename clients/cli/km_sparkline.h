/*
 * km_sparkline — a window of values as one line of block characters, for
 * the CLI's history and availability: "▁▁▁▁█▇▁▁ ▁" (a space where a step
 * has no data).
 *
 * Each value maps linearly from [lo, hi] onto the eight blocks U+2581 ..
 * U+2588 (values outside are clamped; NaN is "no data"). With lo == hi
 * every value with data is the lowest block. Output is UTF-8: three bytes
 * a block, one a space, NUL-terminated.
 */
#ifndef KM_SPARKLINE_H
#define KM_SPARKLINE_H

#include <stddef.h>

/* Bytes km_sparkline needs for n values, the NUL included. */
#define KM_SPARKLINE_BYTES(n) (3 * (size_t)(n) + 1)

/* Writes v[0..n) into out (at least KM_SPARKLINE_BYTES(n) bytes); returns
 * the length written, the NUL excluded. */
size_t km_sparkline(const double *v, size_t n, double lo, double hi, char *out);

#endif
