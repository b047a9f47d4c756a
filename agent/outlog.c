/* outlog.c — retained exec output (see outlog.h). */
#include "outlog.h"

#include <stdlib.h>
#include <string.h>

int outlog_append(outlog *l, int fd, const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0;
	outlog_chunk *c = malloc(sizeof *c + n);
	if (!c)
		return -1;
	c->next = NULL;
	c->fd = fd;
	c->fd_off = l->fd_total[fd];
	c->seq_off = l->seq_total;
	c->len = n;
	c->sent = 0;
	c->stream_end = 0;
	memcpy(c->data, p, n);
	l->fd_total[fd] += n;
	l->seq_total += n;
	l->bytes += n;
	l->chunks++;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
	if (!l->cursor)
		l->cursor = c;
	return 0;
}

size_t outlog_next(outlog *l, int *fd, const uint8_t **p)
{
	outlog_chunk *c = l->cursor;
	if (!c)
		return 0;
	*fd = c->fd;
	*p = c->data + c->sent;
	return c->len - c->sent;
}

void outlog_sent(outlog *l, size_t n)
{
	outlog_chunk *c = l->cursor;
	if (!c)
		return;
	c->sent += n;
	l->stream_sent += n;
	if (c->sent == c->len) {
		c->stream_end = l->stream_sent;
		l->cursor = c->next;
	}
}

size_t outlog_unsent(const outlog *l)
{
	size_t n = 0;
	for (const outlog_chunk *c = l->cursor; c; c = c->next)
		n += c->len - c->sent;
	return n;
}

static void drop_head(outlog *l)
{
	outlog_chunk *c = l->head;
	l->head = c->next;
	if (!l->head)
		l->tail = NULL;
	if (l->cursor == c)
		l->cursor = c->next;
	l->bytes -= c->len;
	l->chunks--;
	free(c);
}

void outlog_ack(outlog *l, uint64_t acked)
{
	while (l->head && l->head != l->cursor && l->head->stream_end <= acked)
		drop_head(l);
}

void outlog_restart(outlog *l, const uint64_t have[3])
{
	outlog_chunk **link = &l->head;
	l->tail = NULL;
	while (*link) {
		outlog_chunk *c = *link;
		uint64_t got = have[c->fd];
		if (got >= c->fd_off + c->len) { /* the host has all of it */
			*link = c->next;
			l->bytes -= c->len;
			l->chunks--;
			free(c);
			continue;
		}
		if (got > c->fd_off) { /* the host has its front part */
			size_t cut = (size_t)(got - c->fd_off);
			memmove(c->data, c->data + cut, c->len - cut);
			c->len -= cut;
			c->fd_off = got;
			c->seq_off += cut;
			l->bytes -= cut;
		}
		c->sent = 0;
		c->stream_end = 0;
		l->tail = c;
		link = &c->next;
	}
	l->cursor = l->head;
	l->stream_sent = 0;
}

void outlog_free(outlog *l)
{
	while (l->head)
		drop_head(l);
	memset(l, 0, sizeof *l);
}

size_t outlog_mem(const outlog *l)
{
	return l->bytes + l->chunks * sizeof(outlog_chunk);
}

void outlog_trim(outlog *l, size_t cap, uint64_t dropped[3])
{
	while (l->head && outlog_mem(l) > cap) {
		dropped[l->head->fd] += l->head->len;
		drop_head(l);
	}
}

const outlog_chunk *outlog_at(const outlog *l, uint64_t seq)
{
	for (const outlog_chunk *c = l->head; c; c = c->next)
		if (c->seq_off + c->len > seq)
			return c;
	return NULL;
}
