/* buf.h — a growable byte buffer used as an append-only queue.
 *
 * Bytes are appended at the tail and consumed from the head; consumed space
 * is reclaimed lazily. Used for outbound frame queues and pending stdin. */
#ifndef SBX_BUF_H
#define SBX_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct sbx_buf {
	uint8_t *data;
	size_t off; /* first unconsumed byte */
	size_t len; /* end of valid bytes */
	size_t cap;
} sbx_buf;

/* Make room for `extra` more bytes at the tail. 0, or -1 when out of memory. */
int sbx_buf_reserve(sbx_buf *b, size_t extra);
int sbx_buf_append(sbx_buf *b, const void *data, size_t n);
/* Bytes waiting to be consumed, and where they start. */
static inline size_t sbx_buf_size(const sbx_buf *b) { return b->len - b->off; }
static inline uint8_t *sbx_buf_head(const sbx_buf *b) { return b->data ? b->data + b->off : NULL; }
/* Drop n bytes from the head. */
void sbx_buf_consume(sbx_buf *b, size_t n);
void sbx_buf_clear(sbx_buf *b);
/* Hands over the waiting bytes, NUL-terminated (*len excludes the NUL),
 * without copying them; the buffer is left empty. NULL when out of memory. */
uint8_t *sbx_buf_take(sbx_buf *b, size_t *len);
void sbx_buf_free(sbx_buf *b);

#endif
