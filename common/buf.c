/* buf.c — growable byte queue (see buf.h). */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

int sbx_buf_reserve(sbx_buf *b, size_t extra)
{
	if (b->cap - b->len >= extra)
		return 0;
	/* Reclaim consumed space first when it is enough. */
	if (b->off > 0 && b->cap - (b->len - b->off) >= extra) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		return 0;
	}
	size_t need = b->len + extra;
	if (need < extra)
		return -1;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return -1;
		cap *= 2;
	}
	uint8_t *p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int sbx_buf_append(sbx_buf *b, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	if (sbx_buf_reserve(b, n) < 0)
		return -1;
	memcpy(b->data + b->len, data, n);
	b->len += n;
	return 0;
}

void sbx_buf_consume(sbx_buf *b, size_t n)
{
	if (n > b->len - b->off)
		n = b->len - b->off;
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

uint8_t *sbx_buf_take(sbx_buf *b, size_t *len)
{
	*len = sbx_buf_size(b);
	if (sbx_buf_reserve(b, 1) < 0)
		return NULL;
	uint8_t *p = b->data;
	if (b->off)
		memmove(p, p + b->off, *len);
	p[*len] = 0;
	if (b->cap - *len > 65536) { /* give back what doubling left unused */
		uint8_t *q = realloc(p, *len + 1);
		if (q)
			p = q;
	}
	*b = (sbx_buf){0};
	return p;
}

void sbx_buf_clear(sbx_buf *b)
{
	b->off = b->len = 0;
}

void sbx_buf_free(sbx_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}
