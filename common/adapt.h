/* adapt.h — when to deflate outbound DATA: only while it makes the
 * transfer faster.
 *
 * Compression pays when the link is slower than the compressor: zlib
 * level 1 turns text into a third of its size at ~150 MB/s, which beats a
 * 50 MB/s link and loses badly to a 2 GB/s local pipe. So in AUTO mode the
 * sender measures both and picks the faster:
 *
 *   link   the rate the transport drains our queue while the queue stays
 *          non-empty (the link, not we, is then the bottleneck), measured
 *          only while sending raw, so it is the raw link rate;
 *   deflate the compressor's input rate and ratio on this data, from a
 *          trial chunk (and from every deflated chunk).
 *
 * Raw goodput is `link`; deflated goodput is min(deflate, link * ratio).
 * It deflates while the second is clearly larger, and every PROBE bytes of
 * deflating goes back to raw long enough to measure the link again (links
 * change: a proxy warms up, a neighbour stops). A link that never backs
 * up is faster than we are: it stays raw and costs nothing.
 *
 * Sans-I/O like the connection: the caller passes the times. */
#ifndef SBX_ADAPT_H
#define SBX_ADAPT_H

#include <stddef.h>
#include <stdint.h>

/* Compression modes, also the HELLO `compress` values. */
#define SBX_COMPRESS_AUTO 0   /* deflate while it makes transfers faster */
#define SBX_COMPRESS_NEVER 1
#define SBX_COMPRESS_ALWAYS 2 /* deflate every chunk that shrinks */

typedef struct sbx_adapt {
	int mode;
	int deflating;         /* AUTO's current choice */
	int want_trial;        /* deflate the next chunk to measure the compressor */

	/* link: drain rate over raw sends that found the queue backed up */
	uint64_t last_write_ns; /* when the transport last took bytes */
	int backed_up;          /* it left bytes queued then */
	uint64_t win_bytes, win_ns;
	double link_bps;        /* 0 = not measured */

	/* compressor */
	double deflate_bps;     /* raw bytes in per second; 0 = not measured */
	double ratio;           /* raw / deflated */
	uint64_t deflated_since_probe; /* raw bytes deflated since the link was measured */
	uint64_t raw_since_trial;      /* raw bytes sent since the compressor was measured */
} sbx_adapt;

void sbx_adapt_init(sbx_adapt *a, int mode);

/* Should the next chunk be deflated? (ALWAYS: yes; NEVER: no.) */
int sbx_adapt_try_deflate(const sbx_adapt *a);

/* A chunk of n raw bytes went out: deflated to z bytes in ns nanoseconds,
 * or raw (z == 0; ns is then the deflate attempt's time, 0 if none). */
void sbx_adapt_chunk(sbx_adapt *a, size_t n, size_t z, uint64_t ns);

/* The transport took `wrote` bytes of our queue at time now_ns, leaving
 * `left` queued. */
void sbx_adapt_wrote(sbx_adapt *a, uint64_t now_ns, size_t wrote, size_t left);

#endif
