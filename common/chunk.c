/* chunk.c — adaptive per-chunk raw deflate (see chunk.h). */
#include "chunk.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define BACKOFF_FIRST 4
#define BACKOFF_MAX 64
#define PROBE 4096 /* sample tried first after a chunk did not shrink */

/* Deflates n bytes into at most cap bytes; the compressed length, or 0. */
static size_t deflate_into(sbx_deflater *d, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	deflateReset(&d->z);
	d->z.next_in = (Bytef *)in;
	d->z.avail_in = (uInt)n;
	d->z.next_out = out;
	d->z.avail_out = (uInt)cap;
	return deflate(&d->z, Z_FINISH) == Z_STREAM_END ? cap - d->z.avail_out : 0;
}

size_t sbx_deflate_chunk(sbx_deflater *d, const uint8_t *in, size_t n, uint8_t *out, size_t out_cap)
{
	if (sbx_deflater_skips(d, n)) {
		if (n >= 128)
			d->skip--;
		return 0;
	}
	if (!d->ready) {
		memset(&d->z, 0, sizeof d->z);
		if (deflateInit2(&d->z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return 0;
		d->ready = 1;
		d->backoff = BACKOFF_FIRST;
	}
	size_t want = n - n / 8; /* must save at least 1/8 */
	if (out_cap > want)
		out_cap = want;
	/* Deflating data that does not compress is slow (zlib manages about
	 * 50 MB/s on random bytes): once a chunk failed, try a sample first,
	 * so probing an incompressible stream costs 1/16 of a full attempt. */
	int probe_ok = d->backoff == BACKOFF_FIRST || n <= 2 * PROBE || out_cap < PROBE ||
		       deflate_into(d, in, PROBE, out, PROBE - PROBE / 8) > 0;
	size_t z = probe_ok ? deflate_into(d, in, n, out, out_cap) : 0;
	if (z > 0) {
		d->backoff = BACKOFF_FIRST;
		return z;
	}
	/* Did not shrink enough: pause, longer each time. */
	d->skip = d->backoff;
	if (d->backoff < BACKOFF_MAX)
		d->backoff *= 2;
	return 0;
}

int sbx_deflater_skips(const sbx_deflater *d, size_t n)
{
	return n < 128 || d->skip > 0;
}

void sbx_deflater_free(sbx_deflater *d)
{
	if (d->ready)
		deflateEnd(&d->z);
	d->ready = 0;
}

int sbx_inflate_chunk(sbx_inflater *f, const uint8_t *in, size_t n, uint8_t *out, size_t expect)
{
	if (!f->ready) {
		memset(&f->z, 0, sizeof f->z);
		if (inflateInit2(&f->z, -15) != Z_OK)
			return -1;
		f->ready = 1;
	} else {
		inflateReset(&f->z);
	}
	f->z.next_in = (Bytef *)in;
	f->z.avail_in = (uInt)n;
	f->z.next_out = out;
	f->z.avail_out = (uInt)expect;
	int rc = inflate(&f->z, Z_FINISH);
	/* Z_STREAM_END with every input byte used and exactly `expect` out. */
	if (rc != Z_STREAM_END || f->z.avail_in != 0 || f->z.avail_out != 0)
		return -1;
	return 0;
}

void sbx_inflater_free(sbx_inflater *f)
{
	if (f->ready)
		inflateEnd(&f->z);
	f->ready = 0;
}

/* ---------------------------------------------------------------- crc32 */

#if defined(__x86_64__)
/* CRC-32 by folding with carry-less multiplies (Intel, "Fast CRC
 * Computation for Generic Polynomials Using PCLMULQDQ"; the 16- and
 * 64-byte constants are those of Linux's crc32-pclmul, the 256-byte ones
 * x^(2048+-32) mod P derived the same way). crc is the raw register, not
 * inverted; len is a multiple of 16.
 *
 * The end of every variant: four 16-byte lanes at consecutive offsets
 * folded into one, the remaining 16-byte blocks (len < 64), then a Barrett
 * reduction to 32 bits. */
__attribute__((target("pclmul,sse4.1"))) static inline uint32_t fold_finish(__m128i x1, __m128i x2, __m128i x3,
									       __m128i x4, const uint8_t *p, size_t len)
{
	const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);
	const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);
	const __m128i poly = _mm_set_epi64x(0x1f7011641, 0x1db710641);
	const __m128i mask32 = _mm_setr_epi32(-1, 0, -1, 0);
	__m128i rest[3] = {x2, x3, x4};
	for (int i = 0; i < 3; i++)
		x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x00), _mm_clmulepi64_si128(x1, k3k4, 0x11)),
				   rest[i]);
	for (; len >= 16; p += 16, len -= 16)
		x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x00), _mm_clmulepi64_si128(x1, k3k4, 0x11)),
				   _mm_loadu_si128((const __m128i *)p));
	x2 = _mm_clmulepi64_si128(x1, k3k4, 0x10);
	x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
	x2 = _mm_srli_si128(x1, 4);
	x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5, 0x00), x2);
	x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x10);
	x2 = _mm_clmulepi64_si128(_mm_and_si128(x2, mask32), poly, 0x00);
	x1 = _mm_xor_si128(x1, x2);
	return (uint32_t)_mm_extract_epi32(x1, 1);
}

/* 128-bit multiplies, four lanes, 64 bytes a step; len >= 64. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc32_clmul(uint32_t crc, const uint8_t *p, size_t len)
{
	const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);
	__m128i x1 = _mm_loadu_si128((const __m128i *)(p + 0));
	__m128i x2 = _mm_loadu_si128((const __m128i *)(p + 16));
	__m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32));
	__m128i x4 = _mm_loadu_si128((const __m128i *)(p + 48));
	x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
	p += 64;
	len -= 64;
	for (; len >= 64; p += 64, len -= 64) {
		__m128i a1 = _mm_clmulepi64_si128(x1, k1k2, 0x00), b1 = _mm_clmulepi64_si128(x1, k1k2, 0x11);
		__m128i a2 = _mm_clmulepi64_si128(x2, k1k2, 0x00), b2 = _mm_clmulepi64_si128(x2, k1k2, 0x11);
		__m128i a3 = _mm_clmulepi64_si128(x3, k1k2, 0x00), b3 = _mm_clmulepi64_si128(x3, k1k2, 0x11);
		__m128i a4 = _mm_clmulepi64_si128(x4, k1k2, 0x00), b4 = _mm_clmulepi64_si128(x4, k1k2, 0x11);
		x1 = _mm_xor_si128(_mm_xor_si128(a1, b1), _mm_loadu_si128((const __m128i *)(p + 0)));
		x2 = _mm_xor_si128(_mm_xor_si128(a2, b2), _mm_loadu_si128((const __m128i *)(p + 16)));
		x3 = _mm_xor_si128(_mm_xor_si128(a3, b3), _mm_loadu_si128((const __m128i *)(p + 32)));
		x4 = _mm_xor_si128(_mm_xor_si128(a4, b4), _mm_loadu_si128((const __m128i *)(p + 48)));
	}
	return fold_finish(x1, x2, x3, x4, p, len);
}

/* 512-bit multiplies (four lanes each), four accumulators, 256 bytes a
 * step; len >= 256. */
__attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.1"))) static uint32_t crc32_vclmul(uint32_t crc, const uint8_t *p,
											 size_t len)
{
	const __m512i k256 = _mm512_set_epi64(0x1322d1430, 0x11542778a, 0x1322d1430, 0x11542778a, 0x1322d1430,
					      0x11542778a, 0x1322d1430, 0x11542778a);
	const __m512i k64 = _mm512_set_epi64(0x1c6e41596, 0x154442bd4, 0x1c6e41596, 0x154442bd4, 0x1c6e41596,
					     0x154442bd4, 0x1c6e41596, 0x154442bd4);
	__m512i z0 = _mm512_loadu_si512(p), z1 = _mm512_loadu_si512(p + 64);
	__m512i z2 = _mm512_loadu_si512(p + 128), z3 = _mm512_loadu_si512(p + 192);
	z0 = _mm512_xor_si512(z0, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)crc)));
	p += 256;
	len -= 256;
#define FOLD(z, k, next)                                                                                   \
	_mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z, k, 0x00), _mm512_clmulepi64_epi128(z, k, 0x11), \
				  next, 0x96)
	for (; len >= 256; p += 256, len -= 256) {
		z0 = FOLD(z0, k256, _mm512_loadu_si512(p));
		z1 = FOLD(z1, k256, _mm512_loadu_si512(p + 64));
		z2 = FOLD(z2, k256, _mm512_loadu_si512(p + 128));
		z3 = FOLD(z3, k256, _mm512_loadu_si512(p + 192));
	}
	z0 = FOLD(z0, k64, z1);
	z0 = FOLD(z0, k64, z2);
	z0 = FOLD(z0, k64, z3);
	for (; len >= 64; p += 64, len -= 64)
		z0 = FOLD(z0, k64, _mm512_loadu_si512(p));
#undef FOLD
	return fold_finish(_mm512_extracti32x4_epi32(z0, 0), _mm512_extracti32x4_epi32(z0, 1),
			   _mm512_extracti32x4_epi32(z0, 2), _mm512_extracti32x4_epi32(z0, 3), p, len);
}
#endif

uint32_t sbx_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
#if defined(__x86_64__)
	static int have = -1; /* 0: zlib only, 1: 128-bit, 2: 512-bit multiplies */
	if (have < 0) {
		__builtin_cpu_init();
		have = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
		if (have && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq"))
			have = 2;
	}
	if (have && n >= 64) {
		size_t bulk = n & ~(size_t)15;
		crc = ~(have == 2 && bulk >= 256 ? crc32_vclmul(~crc, p, bulk) : crc32_clmul(~crc, p, bulk));
		p += bulk;
		n -= bulk;
	}
#endif
	return (uint32_t)crc32(crc, p, (uInt)n);
}
