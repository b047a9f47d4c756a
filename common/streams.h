/* streams.h — the per-connection table of open streams.
 *
 * A stream is one request and everything that flows for it (data, credit,
 * the final reply). The table maps a 32-bit stream id to its flow-control
 * and checksum state; it is an open-addressing hash table with linear
 * probing and backward-shift deletion, so lookups stay O(1) with thousands
 * of streams open at once. */
#ifndef SBX_STREAMS_H
#define SBX_STREAMS_H

#include <stddef.h>
#include <stdint.h>

#include "window.h"

typedef struct sbx_stream {
	uint32_t id;        /* 0 = empty slot */
	int type;           /* the request type that opened it */
	uint64_t send_credit;  /* bytes we may still send on it */
	uint64_t recv_left;    /* bytes the peer may still send us */
	uint64_t recv_unacked; /* consumed bytes not yet granted back */
	uint64_t recv_held;    /* received bytes the owner has not consumed yet */
	sbx_rwin rwin;         /* our receive window on it (window.h) */
	uint64_t sent_count[3], recv_count[3];
	uint32_t sent_crc[3], recv_crc[3];
	unsigned sent_end, recv_end; /* bit per fd: END sent / received */
	void *user;            /* the owner's object for this stream */
} sbx_stream;

typedef struct sbx_streams {
	sbx_stream *slots;
	size_t cap;   /* power of two */
	size_t count;
} sbx_streams;

sbx_stream *sbx_streams_get(sbx_streams *t, uint32_t id);
/* Insert a zeroed stream. NULL when id exists already or out of memory. */
sbx_stream *sbx_streams_add(sbx_streams *t, uint32_t id);
void sbx_streams_del(sbx_streams *t, uint32_t id);
void sbx_streams_free(sbx_streams *t);

#endif
