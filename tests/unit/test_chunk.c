/* test_chunk.c — common/chunk.c: adaptive per-chunk raw deflate.
 * Compressible chunks shrink and round-trip; incompressible ones go raw and
 * make the sender back off (4, 8, ... 64 chunks); the inflater accepts only
 * a stream that ends exactly at the declared length with no bytes left
 * over, which is what defuses a deflate bomb. Output buffers are allocated
 * at their exact size so ASan catches any write past them. */
#include "chunk.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint8_t rnd8(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)(rng >> 24);
}

static uint8_t *random_bytes(size_t n)
{
	uint8_t *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = rnd8();
	return p;
}

static uint8_t *text_bytes(size_t n)
{
	static const char *words[] = {"sandbox ", "agent ", "stream ", "window ", "credit\n",
				      "exec ", "stdout ", "0123 "};
	uint8_t *p = malloc(n);
	size_t i = 0;
	while (i < n) {
		const char *w = words[rnd8() % 8];
		for (size_t k = 0; w[k] && i < n; k++)
			p[i++] = (uint8_t)w[k];
	}
	return p;
}

/* Raw deflate (no header) of n bytes, by zlib directly: for crafting input. */
static uint8_t *raw_deflate(const uint8_t *in, size_t n, size_t *out_len)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	size_t cap = deflateBound(&z, (uLong)n);
	uint8_t *out = malloc(cap);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	*out_len = cap - z.avail_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	return out;
}

static void test_compressible_roundtrip(void)
{
	sbx_deflater d = {0};
	sbx_inflater f = {0};
	size_t sizes[] = {128, 1000, 4096, 65536};
	for (size_t s = 0; s < 4; s++) {
		size_t n = sizes[s];
		uint8_t *in = text_bytes(n);
		uint8_t *z = malloc(n);
		size_t zn = sbx_deflate_chunk(&d, in, n, z, n);
		CHECK(zn > 0);
		CHECK(zn <= n - n / 8); /* saved at least an eighth */
		uint8_t *out = malloc(n);
		CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn, out, n), 0);
		CHECK(memcmp(in, out, n) == 0);
		/* Each chunk is independent: a fresh inflater decodes it too. */
		sbx_inflater f2 = {0};
		memset(out, 0, n);
		CHECK_EQ_INT(sbx_inflate_chunk(&f2, z, zn, out, n), 0);
		CHECK(memcmp(in, out, n) == 0);
		sbx_inflater_free(&f2);
		free(in);
		free(z);
		free(out);
	}
	/* Zeros compress enormously. */
	uint8_t *zeros = calloc(1, 65536);
	uint8_t *z = malloc(65536);
	size_t zn = sbx_deflate_chunk(&d, zeros, 65536, z, 65536);
	CHECK(zn > 0 && zn < 1024);
	uint8_t *out = malloc(65536);
	memset(out, 1, 65536);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn, out, 65536), 0);
	CHECK(memcmp(out, zeros, 65536) == 0);
	free(zeros);
	free(z);
	free(out);
	sbx_deflater_free(&d);
	sbx_inflater_free(&f);
	/* free twice is harmless */
	sbx_deflater_free(&d);
	sbx_inflater_free(&f);
}

static void test_small_chunks_sent_raw(void)
{
	sbx_deflater d = {0};
	uint8_t in[127], out[127];
	memset(in, 'a', sizeof in);
	CHECK_EQ_INT(sbx_deflate_chunk(&d, in, sizeof in, out, sizeof out), 0);
	CHECK_EQ_INT(sbx_deflate_chunk(&d, in, 0, out, sizeof out), 0);
	/* ... and that is not a failure: no back-off */
	CHECK_EQ_INT(d.skip, 0);
	uint8_t big[256];
	memset(big, 'a', sizeof big);
	uint8_t zbuf[256];
	CHECK(sbx_deflate_chunk(&d, big, sizeof big, zbuf, sizeof zbuf) > 0);
	sbx_deflater_free(&d);
}

static void test_random_backs_off(void)
{
	sbx_deflater d = {0};
	size_t n = 16384;
	uint8_t *rnd = random_bytes(n);
	uint8_t *txt = text_bytes(n);
	uint8_t *z = malloc(n);

	CHECK_EQ_INT(sbx_deflate_chunk(&d, rnd, n, z, n), 0);
	CHECK_EQ_INT(d.skip, 4);
	/* The next 4 chunks go raw without trying, even compressible ones. */
	for (int i = 0; i < 4; i++) {
		CHECK_EQ_INT(sbx_deflate_chunk(&d, txt, n, z, n), 0);
		CHECK_EQ_INT(d.skip, 3 - i);
	}
	/* Then it tries again, and a success resets the pause. */
	CHECK(sbx_deflate_chunk(&d, txt, n, z, n) > 0);
	CHECK_EQ_INT(d.skip, 0);
	CHECK_EQ_INT(sbx_deflate_chunk(&d, rnd, n, z, n), 0);
	CHECK_EQ_INT(d.skip, 4);

	/* Repeated failures double the pause up to 64. */
	unsigned expect[] = {8, 16, 32, 64, 64, 64};
	for (int k = 0; k < 6; k++) {
		unsigned skipped = 0;
		while (d.skip > 0) {
			CHECK_EQ_INT(sbx_deflate_chunk(&d, rnd, n, z, n), 0);
			skipped++;
		}
		CHECK(skipped >= 4);
		CHECK_EQ_INT(sbx_deflate_chunk(&d, rnd, n, z, n), 0); /* tried, failed */
		CHECK_EQ_INT(d.skip, expect[k]);
	}
	/* After the pause, compressible data compresses again and the next
	 * failure pauses only 4 again. */
	while (d.skip > 0)
		sbx_deflate_chunk(&d, txt, n, z, n);
	CHECK(sbx_deflate_chunk(&d, txt, n, z, n) > 0);
	CHECK_EQ_INT(sbx_deflate_chunk(&d, rnd, n, z, n), 0);
	CHECK_EQ_INT(d.skip, 4);
	free(rnd);
	free(txt);
	free(z);
	sbx_deflater_free(&d);
}

/* Compressible, but not by an eighth: sent raw. Also a tiny output buffer
 * must never be overrun. */
static void test_not_enough_savings(void)
{
	sbx_deflater d = {0};
	size_t n = 8192;
	/* 7 random bytes out of 8: deflate saves well under 1/8 */
	uint8_t *in = random_bytes(n);
	for (size_t i = 0; i < n; i += 8)
		in[i] = 'x';
	uint8_t *z = malloc(n);
	CHECK_EQ_INT(sbx_deflate_chunk(&d, in, n, z, n), 0);
	CHECK(d.skip > 0);
	sbx_deflater_free(&d);

	sbx_deflater d2 = {0};
	uint8_t *txt = text_bytes(n);
	uint8_t *tiny = malloc(16);
	CHECK_EQ_INT(sbx_deflate_chunk(&d2, txt, n, tiny, 16), 0);
	/* out_cap larger than the input is clamped to what saves 1/8 */
	uint8_t *huge = malloc(4 * n);
	size_t zn = sbx_deflate_chunk(&d2, txt, n, huge, 4 * n);
	CHECK_EQ_INT(zn, 0); /* still pausing after the failure above */
	while (d2.skip)
		sbx_deflate_chunk(&d2, txt, n, huge, 4 * n);
	zn = sbx_deflate_chunk(&d2, txt, n, huge, 4 * n);
	CHECK(zn > 0 && zn <= n - n / 8);
	free(in);
	free(z);
	free(txt);
	free(tiny);
	free(huge);
	sbx_deflater_free(&d2);
}

static void test_inflate_rejects_corrupt(void)
{
	sbx_inflater f = {0};
	size_t n = 4096;
	uint8_t *txt = text_bytes(n);
	size_t zn;
	uint8_t *z = raw_deflate(txt, n, &zn);
	CHECK(z != NULL);
	uint8_t *out = malloc(n);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn, out, n), 0);

	/* Invalid block type 3 in the first header */
	uint8_t bad[] = {0x07, 0x00, 0x00};
	CHECK_EQ_INT(sbx_inflate_chunk(&f, bad, sizeof bad, out, n), -1);
	/* Pure garbage */
	uint8_t *g = random_bytes(512);
	g[0] |= 0x06; /* block type 3: invalid */
	CHECK_EQ_INT(sbx_inflate_chunk(&f, g, 512, out, n), -1);
	/* Truncated stream */
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn - 1, out, n), -1);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn / 2, out, n), -1);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, 0, out, n), -1);
	/* A zlib-wrapped stream is not raw deflate */
	uLongf zl = compressBound((uLong)n);
	uint8_t *zw = malloc(zl);
	CHECK(compress(zw, &zl, txt, (uLong)n) == Z_OK);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, zw, zl, out, n), -1);

	/* Flipping bits anywhere: rejected or (rarely) a different valid
	 * stream of the exact length; never a crash or an overrun. */
	int rejected = 0;
	uint8_t *m = malloc(zn);
	for (size_t i = 0; i < zn * 8; i += 3) {
		memcpy(m, z, zn);
		m[i / 8] ^= (uint8_t)(1u << (i % 8));
		if (sbx_inflate_chunk(&f, m, zn, out, n) < 0)
			rejected++;
	}
	CHECK(rejected > (int)(zn * 8 / 3) / 2);

	/* The inflater is reusable after failures. */
	memset(out, 0, n);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn, out, n), 0);
	CHECK(memcmp(out, txt, n) == 0);
	free(m);
	free(zw);
	free(g);
	free(txt);
	free(z);
	free(out);
	sbx_inflater_free(&f);
}

/* 10 MiB of zeros deflate to ~10 KiB; declared as 64 KiB it must be
 * rejected after writing at most 64 KiB (the output buffer is exactly
 * 64 KiB, so ASan would report any write past it). */
static void test_inflate_rejects_bomb(void)
{
	size_t big = 10u << 20;
	uint8_t *zeros = calloc(1, big);
	size_t zn;
	uint8_t *z = raw_deflate(zeros, big, &zn);
	free(zeros);
	CHECK(z != NULL);
	CHECK(zn < 65536);
	sbx_inflater f = {0};
	uint8_t *out = malloc(65536);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn, out, 65536), -1);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn, out, 0), -1);
	free(out);
	free(z);
	sbx_inflater_free(&f);
}

static void test_inflate_length_exact(void)
{
	sbx_inflater f = {0};
	size_t n = 5000;
	uint8_t *txt = text_bytes(n);
	size_t zn;
	uint8_t *z = raw_deflate(txt, n, &zn);
	CHECK(z != NULL);

	/* Declared longer than what it inflates to */
	uint8_t *out = malloc(n + 1);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn, out, n + 1), -1);
	free(out);
	out = malloc(65536);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn, out, 65536), -1);
	free(out);
	/* Declared shorter */
	out = malloc(n - 1);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn, out, n - 1), -1);
	free(out);
	out = malloc(1);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn, out, 1), -1);
	free(out);
	/* Trailing garbage after a complete stream */
	uint8_t *zt = malloc(zn + 4);
	memcpy(zt, z, zn);
	memcpy(zt + zn, "junk", 4);
	out = malloc(n);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, zt, zn + 1, out, n), -1);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, zt, zn + 4, out, n), -1);
	/* Two complete streams back to back: the second is trailing bytes */
	uint8_t *two = malloc(2 * zn);
	memcpy(two, z, zn);
	memcpy(two + zn, z, zn);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, two, 2 * zn, out, n), -1);
	/* And exactly right still works */
	CHECK_EQ_INT(sbx_inflate_chunk(&f, z, zn, out, n), 0);
	CHECK(memcmp(out, txt, n) == 0);

	/* An empty stream (final empty fixed block) inflates to 0 bytes. */
	uint8_t empty_z[] = {0x03, 0x00};
	CHECK_EQ_INT(sbx_inflate_chunk(&f, empty_z, sizeof empty_z, out, 0), 0);
	CHECK_EQ_INT(sbx_inflate_chunk(&f, empty_z, sizeof empty_z, out, 1), -1);
	free(out);
	free(two);
	free(zt);
	free(txt);
	free(z);
	sbx_inflater_free(&f);
}

/* sbx_crc32 (carry-less multiply where the CPU has it) agrees with zlib's
 * crc32 for every length, alignment and running value, chained or not. */
static void test_crc32_matches_zlib(void)
{
	size_t cap = 70000;
	uint8_t *buf = random_bytes(cap);
	/* every length up to 1100 at several misalignments */
	for (size_t off = 0; off < 17; off += 3) {
		for (size_t n = 0; n <= 1100; n++) {
			uint32_t want = (uint32_t)crc32(0, buf + off, (uInt)n);
			uint32_t got = sbx_crc32(0, buf + off, n);
			if (got != want) {
				char m[120];
				snprintf(m, sizeof m, "len %zu off %zu: %08x != zlib %08x", n, off, got, want);
				test_fail(__FILE__, __LINE__, m);
				free(buf);
				return;
			}
		}
	}
	/* running values: chained in random pieces == one pass */
	uint32_t whole = (uint32_t)crc32(0, buf, (uInt)cap);
	CHECK(sbx_crc32(0, buf, cap) == whole);
	for (int round = 0; round < 50; round++) {
		uint32_t c = 0;
		size_t at = 0;
		while (at < cap) {
			size_t k = (rnd8() << 4 | rnd8()) % 5000;
			if (k > cap - at)
				k = cap - at;
			c = sbx_crc32(c, buf + at, k);
			at += k;
		}
		CHECK(c == whole);
	}
	/* nonzero starting values, zero bytes, all-ones bytes */
	memset(buf, 0, 4096);
	CHECK(sbx_crc32(0x12345678, buf, 4096) == (uint32_t)crc32(0x12345678, buf, 4096));
	memset(buf, 0xff, 4096);
	CHECK(sbx_crc32(0xffffffffu, buf, 4096) == (uint32_t)crc32(0xffffffffu, buf, 4096));
	CHECK(sbx_crc32(0, (const uint8_t *)"123456789", 9) == 0xcbf43926u);
	free(buf);
}

int main(void)
{
	RUN(test_compressible_roundtrip);
	RUN(test_small_chunks_sent_raw);
	RUN(test_random_backs_off);
	RUN(test_not_enough_savings);
	RUN(test_inflate_rejects_corrupt);
	RUN(test_inflate_rejects_bomb);
	RUN(test_inflate_length_exact);
	RUN(test_crc32_matches_zlib);
	return test_summary();
}
