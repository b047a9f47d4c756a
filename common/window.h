/* window.h — per-stream receive window auto-tuning (the policy only).
 *
 * A stream's receiver grants its sender credit (WINDOW); one stream then
 * moves at most window / round trip. A fixed 1 MiB window caps a stream at
 * ~100 MB/s over 10 ms and ~25 MB/s over 40 ms. Tuning sizes each stream's
 * window to what its sender and consumer can actually use:
 *
 *   grow    when a whole window arrived within two round trips while at
 *           most half of it waited unconsumed (the sender was
 *           window-limited and the consumer kept up): the window doubles,
 *           up to `max` per stream, and only while the connection's
 *           windows together stay within `budget`;
 *   shrink  when more than half the window waits unconsumed as new data
 *           arrives (a slow consumer, or one that stopped reading): the
 *           window halves, down to `base`. The sender keeps the credit it
 *           holds; the next grants withhold the difference (`debt`).
 *
 * The round trip is measured by the connection (PING/PONG, conn.c).
 * Sans-I/O like the connection: the caller passes the times. */
#ifndef SBX_WINDOW_H
#define SBX_WINDOW_H

#include <stdint.h>

/* 32 MiB lets one stream move ~800 MB/s over 40 ms (measured: a 1 GiB
 * write over a unix socket behind a 40 ms relay went 351 -> 600 MB/s from
 * 16 MiB); what it may cost in memory is bounded per connection by the
 * budget, and a window grows only while its consumer keeps up. */
#define SBX_WINDOW_MAX (32u * 1024 * 1024)    /* one stream's window, at most */
#define SBX_WINDOW_BUDGET (64u * 1024 * 1024) /* all of a connection's stream windows */

/* One stream's receive window. */
typedef struct sbx_rwin {
	uint64_t size;        /* the current window */
	uint64_t debt;        /* consumed bytes still to withhold after a shrink */
	uint64_t epoch_ns;    /* when the current growth measurement began (0: not yet) */
	uint64_t epoch_bytes; /* bytes arrived since then */
	int tuned;            /* 0: this stream keeps `base` */
} sbx_rwin;

/* A connection's tuning state. */
typedef struct sbx_wintune {
	int on;          /* 0: every window stays `base` (SBX_FIXED_WINDOW, no clock) */
	uint64_t base;   /* the HELLO window: every stream starts (and ends up) there */
	uint64_t max;    /* per stream */
	uint64_t budget; /* sum of the open streams' windows */
	uint64_t total;  /* that sum now */
	uint64_t rtt_ns; /* smoothed round trip; 0 until measured */
} sbx_wintune;

/* Sets up tuning; max and budget 0 take the defaults above. */
void sbx_wintune_init(sbx_wintune *t, int on, uint64_t base, uint64_t max, uint64_t budget);
/* A stream opens (tuned or not) with the base window; and closes. */
void sbx_wintune_open(sbx_wintune *t, sbx_rwin *w, int tuned);
void sbx_wintune_close(sbx_wintune *t, sbx_rwin *w);
/* A round-trip sample. */
void sbx_wintune_rtt(sbx_wintune *t, uint64_t sample_ns);
/* n bytes arrived at now_ns and `held` received bytes (these included)
 * wait unconsumed: may shrink the window, or grow it. Returns the growth,
 * which the receiver must grant on top of consumed bytes. */
uint64_t sbx_wintune_received(sbx_wintune *t, sbx_rwin *w, uint64_t n, uint64_t held, uint64_t now_ns);
/* The consumer took n bytes: how many of them to grant back (n minus what
 * pays a shrink's debt). */
uint64_t sbx_wintune_consumed(sbx_rwin *w, uint64_t n);

#endif
