/*
 * libFuzzer target: km_rollup_unpack on arbitrary bytes (a blob read back
 * from the database is input). A refused blob must say why; an accepted
 * one must hold consistent minutes, pack again no longer than it came
 * (packing is minimal), and unpack from that to the same hour.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "km_rollup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct km_rollup_hour h, back;
	static uint8_t buf[KM_ROLLUP_PACK_MAX];
	struct km_error err = {0};
	size_t len;

	if (km_rollup_unpack(data, size, &h, &err)) {
		CHECK(err.code == KM_EINVAL && err.msg[0]);
		return 0;
	}
	for (int m = 0; m < 60; m++)
		CHECK(h.min[m].failures <= h.min[m].count);
	len = km_rollup_pack(&h, buf);
	CHECK(len <= size && len <= KM_ROLLUP_PACK_MAX);
	CHECK(km_rollup_unpack(buf, len, &back, &err) == 0);
	CHECK(memcmp(&h, &back, sizeof h) == 0);
	return 0;
}
