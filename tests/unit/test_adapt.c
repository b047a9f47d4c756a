/* test_adapt.c — common/adapt.c, the AUTO compression policy, on a
 * simulated link: a sender pushes 64 KiB chunks through a queue into a
 * kernel buffer that a link drains at a fixed rate, with a compressor of a
 * fixed speed and ratio, all in virtual time. AUTO must stay raw on a
 * link faster than the compressor, deflate on a slow one (and beat raw by
 * far), go back to raw when the data stops compressing, and never even
 * try when the link keeps up with the sender. */
#include "adapt.h"
#include "test.h"

#include <stdint.h>

#define CHUNK (64 * 1024)
#define KBUF (256 * 1024) /* the transport's buffer (socket or pipe) */
#define HIGH (256 * 1024) /* the sender stops producing above this queue */

typedef struct sim {
	double link_Bps, deflate_Bps, ratio; /* link 0 = infinitely fast */
	double now;                          /* seconds */
	double queue;                        /* bytes waiting for the transport */
	double kbuf;                         /* bytes in the transport's buffer */
	double kbuf_at;                      /* when kbuf was last drained */
	uint64_t chunks, deflated;
} sim;

static void drain_kbuf(sim *s)
{
	if (s->link_Bps <= 0) {
		s->kbuf = 0;
	} else {
		s->kbuf -= (s->now - s->kbuf_at) * s->link_Bps;
		if (s->kbuf < 0)
			s->kbuf = 0;
	}
	s->kbuf_at = s->now;
}

/* The owner's flush: write what fits into the transport, report it. */
static void flush(sim *s, sbx_adapt *a)
{
	drain_kbuf(s);
	double room = KBUF - s->kbuf;
	double w = s->queue < room ? s->queue : room;
	if (w <= 0)
		return;
	s->kbuf += w;
	s->queue -= w;
	sbx_adapt_wrote(a, (uint64_t)(s->now * 1e9), (size_t)w, (size_t)s->queue);
}

/* Waits (in virtual time) until the transport is writable again. */
static void wait_writable(sim *s, sbx_adapt *a)
{
	double need = s->kbuf - (KBUF - 64 * 1024); /* writable with 64 KiB free */
	if (need > 0)
		s->now += need / s->link_Bps;
	flush(s, a);
}

/* Sends `total` bytes; returns the goodput in bytes per second. */
static double run(sim *s, sbx_adapt *a, double total)
{
	double sent = 0, start = s->now;
	while (sent < total) {
		size_t z = 0;
		uint64_t ns = 0;
		if (sbx_adapt_try_deflate(a)) {
			double t = CHUNK / s->deflate_Bps;
			s->now += t;
			ns = (uint64_t)(t * 1e9) + 1;
			if (s->ratio >= 8.0 / 7.0)
				z = (size_t)(CHUNK / s->ratio);
		}
		sbx_adapt_chunk(a, CHUNK, z, ns);
		s->chunks++;
		s->deflated += z > 0;
		s->queue += z > 0 ? (double)z : CHUNK;
		sent += CHUNK;
		flush(s, a);
		while (s->queue > HIGH)
			wait_writable(s, a);
	}
	while (s->queue > 0)
		wait_writable(s, a);
	s->now += s->kbuf / (s->link_Bps > 0 ? s->link_Bps : 1e18);
	return total / (s->now - start);
}

#define MB 1e6

/* A 2 GB/s local pipe and a 160 MB/s compressor: raw all the way (one
 * trial chunk to learn the compressor is too slow), full link speed. */
static void test_fast_link_stays_raw(void)
{
	sim s = {.link_Bps = 2000 * MB, .deflate_Bps = 160 * MB, .ratio = 3.8};
	sbx_adapt a;
	sbx_adapt_init(&a, SBX_COMPRESS_AUTO);
	double g = run(&s, &a, 200 * MB);
	CHECK(s.deflated <= 4);
	CHECK(g > 0.9 * s.link_Bps);
}

/* A 50 MB/s link and text that compresses 3.8x at 160 MB/s: deflate,
 * and the transfer runs near the compressor's speed, 3x the link. The
 * periodic returns to raw (to re-measure the link) cost little. */
static void test_slow_link_deflates(void)
{
	sim s = {.link_Bps = 50 * MB, .deflate_Bps = 160 * MB, .ratio = 3.8};
	sbx_adapt a;
	sbx_adapt_init(&a, SBX_COMPRESS_AUTO);
	double g = run(&s, &a, 400 * MB);
	CHECK(g > 2.5 * s.link_Bps);
	CHECK(s.deflated > s.chunks * 8 / 10);
	CHECK(s.deflated < s.chunks); /* it did go back to raw to look at the link */
}

/* Same slow link, data that does not compress: raw, at link speed. */
static void test_incompressible_stays_raw(void)
{
	sim s = {.link_Bps = 50 * MB, .deflate_Bps = 60 * MB, .ratio = 1.0};
	sbx_adapt a;
	sbx_adapt_init(&a, SBX_COMPRESS_AUTO);
	double g = run(&s, &a, 200 * MB);
	CHECK(g > 0.9 * s.link_Bps);
	CHECK_EQ_INT(s.deflated, 0);
}

/* Text first, then random bytes on the same slow link: it stops
 * deflating once the chunks stop shrinking. */
static void test_stops_when_data_stops_compressing(void)
{
	sim s = {.link_Bps = 50 * MB, .deflate_Bps = 160 * MB, .ratio = 3.8};
	sbx_adapt a;
	sbx_adapt_init(&a, SBX_COMPRESS_AUTO);
	run(&s, &a, 50 * MB);
	CHECK(a.deflating);
	s.ratio = 1.0;
	s.deflate_Bps = 60 * MB;
	double g = run(&s, &a, 200 * MB);
	CHECK(!a.deflating);
	CHECK(g > 0.85 * s.link_Bps);
}

/* A link that always keeps up (the queue never backs up): nothing is
 * measured and nothing is ever deflated, not even a trial chunk. */
static void test_idle_link_never_tries(void)
{
	sim s = {.link_Bps = 0, .deflate_Bps = 160 * MB, .ratio = 3.8};
	sbx_adapt a;
	sbx_adapt_init(&a, SBX_COMPRESS_AUTO);
	run(&s, &a, 100 * MB);
	CHECK_EQ_INT(s.deflated, 0);
	CHECK(a.deflate_bps == 0);
	CHECK(a.link_bps == 0);
}

/* NEVER and ALWAYS do what they say whatever the link. */
static void test_fixed_modes(void)
{
	sim s = {.link_Bps = 50 * MB, .deflate_Bps = 160 * MB, .ratio = 3.8};
	sbx_adapt a;
	sbx_adapt_init(&a, SBX_COMPRESS_NEVER);
	run(&s, &a, 20 * MB);
	CHECK_EQ_INT(s.deflated, 0);
	sim f = {.link_Bps = 2000 * MB, .deflate_Bps = 160 * MB, .ratio = 3.8};
	sbx_adapt_init(&a, SBX_COMPRESS_ALWAYS);
	run(&f, &a, 20 * MB);
	CHECK_EQ_INT(f.deflated, f.chunks);
}

int main(void)
{
	RUN(test_fast_link_stays_raw);
	RUN(test_slow_link_deflates);
	RUN(test_incompressible_stays_raw);
	RUN(test_stops_when_data_stops_compressing);
	RUN(test_idle_link_never_tries);
	RUN(test_fixed_modes);
	return test_summary();
}
