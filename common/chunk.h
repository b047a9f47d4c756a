/* chunk.h — per-chunk compression for DATA frames.
 *
 * Each DATA chunk is compressed on its own (raw deflate, no shared history),
 * so a receiver inflates every chunk independently into a buffer of exactly
 * the declared length: a chunk that inflates to more is rejected, which is
 * what makes a deflate bomb harmless. The sender compresses adaptively: a
 * chunk that does not shrink goes out raw, and after such a chunk the sender
 * stops trying for a while (doubling the pause each time, up to a cap). */
#ifndef SBX_CHUNK_H
#define SBX_CHUNK_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

typedef struct sbx_deflater {
	z_stream z;
	int ready;
	unsigned skip;    /* chunks to send raw before trying again */
	unsigned backoff; /* next pause length */
} sbx_deflater;

typedef struct sbx_inflater {
	z_stream z;
	int ready;
} sbx_inflater;

/* Try to compress n bytes into out (capacity out_cap). Returns the
 * compressed length when it saved at least 1/8, or 0 (send raw). */
size_t sbx_deflate_chunk(sbx_deflater *d, const uint8_t *in, size_t n, uint8_t *out, size_t out_cap);
/* Whether sbx_deflate_chunk would skip n bytes without trying (too short,
 * or pausing after a chunk that did not shrink). */
int sbx_deflater_skips(const sbx_deflater *d, size_t n);
void sbx_deflater_free(sbx_deflater *d);

/* Inflate exactly `expect` bytes. 0, or -1 when the input is corrupt,
 * inflates to more or fewer bytes than expected, or has trailing bytes. */
int sbx_inflate_chunk(sbx_inflater *f, const uint8_t *in, size_t n, uint8_t *out, size_t expect);
void sbx_inflater_free(sbx_inflater *f);

/* zlib's crc32() (same polynomial, same running value), several times
 * faster on CPUs with carry-less multiply: every byte of every transfer
 * goes through it on both sides, and zlib's table-driven loop was a third
 * of each side's CPU time on a fast link. */
uint32_t sbx_crc32(uint32_t crc, const uint8_t *p, size_t n);

#endif
