/* fuzz_chunk.c — common/chunk's deflate path both ways.
 *
 * Inflate: the first two bytes are the declared length (0..65535), the rest
 * a chunk from a hostile peer; whatever it is, inflating writes at most the
 * declared length. Deflate: the input compressed by the adaptive deflater
 * must inflate back to exactly itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "conn.h"
#include "fuzz.h"

static sbx_inflater g_inf;
static sbx_deflater g_def;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t expect = (size_t)data[0] << 8 | data[1];
	uint8_t *out = malloc(expect + 1);
	if (sbx_inflate_chunk(&g_inf, data + 2, size - 2, out, expect) == 0)
		FUZZ_ASSERT(g_inf.z.total_out == expect);
	free(out);

	size_t n = size > SBX_CHUNK_MAX ? SBX_CHUNK_MAX : size;
	size_t cap = n + n / 8 + 64;
	uint8_t *z = malloc(cap), *back = malloc(n + 1);
	size_t zlen = sbx_deflate_chunk(&g_def, data, n, z, cap);
	if (zlen > 0) {
		FUZZ_ASSERT(zlen < n);
		FUZZ_ASSERT(sbx_inflate_chunk(&g_inf, z, zlen, back, n) == 0);
		FUZZ_ASSERT(memcmp(back, data, n) == 0);
	}
	free(z);
	free(back);
	return 0;
}
