/* outlog.h — an exec's output on its way to the host, kept until acknowledged.
 *
 * Output read from a command's stdout/stderr is appended here as chunks in
 * the order it was produced, sent from here as flow-control credit allows,
 * and dropped once the host has granted the credit back (which proves it
 * consumed the bytes). When a connection drops, what was not acknowledged
 * is still here, so a host that reconnects and says how much of each fd it
 * already has receives exactly the rest: nothing lost, nothing twice.
 *
 * A detached command's log is a ring instead (outlog_trim): never
 * acknowledged, its oldest chunks dropped past a memory bound, and read by
 * any number of readers that each keep only a position (seq). */
#ifndef SBX_OUTLOG_H
#define SBX_OUTLOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct outlog_chunk {
	struct outlog_chunk *next;
	int fd;              /* 1 stdout, 2 stderr */
	uint64_t fd_off;     /* offset of data[0] within its fd's output */
	uint64_t seq_off;    /* offset of data[0] within all output, both fds */
	size_t len;
	size_t sent;         /* bytes of it sent on the current stream */
	uint64_t stream_end; /* stream offset just past it, once fully sent */
	uint8_t data[];
} outlog_chunk;

typedef struct outlog {
	outlog_chunk *head, *tail;
	outlog_chunk *cursor;   /* first chunk not fully sent */
	size_t bytes;           /* total retained */
	size_t chunks;          /* how many chunks hold it */
	uint64_t seq_total;     /* bytes produced, both fds */
	uint64_t fd_total[3];   /* bytes produced per fd */
	uint64_t stream_sent;   /* bytes sent on the current stream */
} outlog;

/* Appends produced output. -1 on ENOMEM. */
int outlog_append(outlog *l, int fd, const uint8_t *p, size_t n);
/* The next unsent piece (fd, pointer, length), or 0 when all is sent. */
size_t outlog_next(outlog *l, int *fd, const uint8_t **p);
/* Marks n bytes of the piece returned by outlog_next as sent. */
void outlog_sent(outlog *l, size_t n);
/* Unsent bytes retained. */
size_t outlog_unsent(const outlog *l);
/* The host has acknowledged `acked` bytes of the current stream. */
void outlog_ack(outlog *l, uint64_t acked);
/* A new stream replaces the old one; the host already has `have[fd]`
 * bytes of each fd. Drops those and rewinds the rest to unsent. */
void outlog_restart(outlog *l, const uint64_t have[3]);
void outlog_free(outlog *l);
/* Memory the log holds: its bytes plus each chunk's header (so a flood
 * of one-byte writes counts for what it costs). */
size_t outlog_mem(const outlog *l);
/* Ring: drops the oldest chunks until outlog_mem <= cap; how many bytes
 * of each fd went is added to dropped[fd]. */
void outlog_trim(outlog *l, size_t cap, uint64_t dropped[3]);
/* Ring readers: the first chunk holding bytes at or after seq, or NULL. */
const outlog_chunk *outlog_at(const outlog *l, uint64_t seq);

#endif
