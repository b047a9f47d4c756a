/* ssm_channel.c — sequence numbers, acknowledgements, retransmission and
 * reordering on an SSM data channel (see ssm_channel.h). Callbacks may
 * call ssm_channel_send but must not free the channel. */
#include "backends/aws/ssm_channel.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/aws/ssm_msg.h"

/* RFC 6298 with a floor: 200 ms as Linux's TCP (RFC 6298's 1 s would slow
 * loss recovery); the session-manager-plugin's estimate had none, so on a
 * fast link its timeout fell to ~65 ms and any RTT jump resent the whole
 * window. The ceiling bounds the backoff of a silent link. */
#define RTO_INITIAL_MS 1000.0
#define RTO_MIN_MS 200.0
#define RTO_MAX_MS 8000.0
#define CLOCK_GRANULARITY_MS 10.0

typedef struct out_msg {
	uint8_t *bytes; /* the encoded message, resent as is */
	size_t n;
	uint8_t id[16];
	uint64_t first_sent, last_sent;
	uint64_t order;  /* when it was last sent, counted in sends (see settle_duplicates) */
	uint64_t conn;   /* on which WebSocket (ssm_channel_resend_all starts a new one) */
	unsigned sends;
	int acked;
} out_msg;

typedef struct in_msg {
	uint8_t *payload; /* NULL: slot empty */
	size_t n;
	uint32_t payload_type;
	int64_t seq;
} in_msg;

struct ssm_channel {
	ssm_channel_opts o;
	ssm_channel_cb cb;
	const char *out_type, *in_type;

	out_msg *out;        /* ring of max_unacked, by sequence number */
	int64_t out_front;   /* sequence number of the oldest kept message */
	int64_t out_next;    /* next sequence number to send */

	in_msg *in;          /* ring of max_reorder early messages */
	int64_t in_expected; /* next sequence number to deliver */
	size_t in_buffered;

	double srtt, rttvar, rto;
	int have_rtt;
	int paused;
	uint64_t resends;
	uint64_t send_order, conn;
	uint64_t settled;    /* messages taken as delivered without their own ack */
};

static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (why && whylen)
		vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

ssm_channel *ssm_channel_new(const ssm_channel_opts *o, const ssm_channel_cb *cb)
{
	ssm_channel *ch = calloc(1, sizeof *ch);
	if (!ch)
		return NULL;
	if (o)
		ch->o = *o;
	if (!ch->o.max_unacked)
		ch->o.max_unacked = 1024;
	if (!ch->o.max_reorder)
		ch->o.max_reorder = 1024;
	if (!ch->o.max_resends)
		ch->o.max_resends = 450; /* about an hour at the backed-off timeout */
	ch->cb = *cb;
	ch->out_type = ch->o.agent_side ? SSM_OUTPUT_STREAM : SSM_INPUT_STREAM;
	ch->in_type = ch->o.agent_side ? SSM_INPUT_STREAM : SSM_OUTPUT_STREAM;
	ch->out = calloc(ch->o.max_unacked, sizeof *ch->out);
	ch->in = calloc(ch->o.max_reorder, sizeof *ch->in);
	ch->rto = RTO_INITIAL_MS;
	if (!ch->out || !ch->in) {
		ssm_channel_free(ch);
		return NULL;
	}
	return ch;
}

void ssm_channel_free(ssm_channel *ch)
{
	if (!ch)
		return;
	if (ch->out)
		for (size_t i = 0; i < ch->o.max_unacked; i++)
			free(ch->out[i].bytes);
	if (ch->in)
		for (size_t i = 0; i < ch->o.max_reorder; i++)
			free(ch->in[i].payload);
	free(ch->out);
	free(ch->in);
	free(ch);
}

static out_msg *out_slot(const ssm_channel *ch, int64_t seq)
{
	return &ch->out[(uint64_t)seq % ch->o.max_unacked];
}

/* ------------------------------------------------------------- sending */

static uint64_t created_date(const ssm_channel *ch, uint64_t now_ms)
{
	return ch->o.wall_clock_ms ? ch->o.wall_clock_ms() : now_ms;
}

int ssm_channel_writable(const ssm_channel *ch)
{
	return !ch->paused && (size_t)(ch->out_next - ch->out_front) < ch->o.max_unacked;
}

int ssm_channel_send(ssm_channel *ch, uint32_t payload_type, const void *p, size_t n, uint64_t now_ms)
{
	if (n > SSM_MAX_PAYLOAD) {
		errno = EINVAL;
		return -1;
	}
	if (!ssm_channel_writable(ch)) {
		errno = EAGAIN;
		return -1;
	}
	sbx_buf b = {0};
	out_msg *m = out_slot(ch, ch->out_next);
	ssm_uuid_random(m->id);
	if (ssm_msg_encode(&b, ch->out_type, ch->out_next, 0, m->id, payload_type, p, (uint32_t)n,
			   created_date(ch, now_ms)) < 0) {
		sbx_buf_free(&b);
		errno = ENOMEM;
		return -1;
	}
	free(m->bytes);
	m->bytes = b.data; /* the buffer's data is the message (off is 0) */
	m->n = b.len;
	m->first_sent = m->last_sent = now_ms;
	m->order = ++ch->send_order;
	m->conn = ch->conn;
	m->sends = 1;
	m->acked = 0;
	ch->out_next++;
	ch->cb.send(ch->cb.ud, m->bytes, m->n);
	return 0;
}

static void send_ack(ssm_channel *ch, const ssm_msg *m, uint64_t now_ms)
{
	sbx_buf payload = {0}, msg = {0};
	uint8_t id[16];
	ssm_uuid_random(id);
	if (ssm_ack_json(&payload, m) == 0 &&
	    ssm_msg_encode(&msg, SSM_ACKNOWLEDGE, 0, SSM_FLAGS_SYN | SSM_FLAGS_FIN, id, 0, payload.data,
			   (uint32_t)payload.len, created_date(ch, now_ms)) == 0)
		ch->cb.send(ch->cb.ud, msg.data, msg.len);
	sbx_buf_free(&payload);
	sbx_buf_free(&msg);
}

/* ------------------------------------------------------ acknowledgements */

static void update_rtt(ssm_channel *ch, double sample)
{
	if (!ch->have_rtt) {
		ch->srtt = sample;
		ch->rttvar = sample / 2;
		ch->have_rtt = 1;
	} else {
		double d = ch->srtt > sample ? ch->srtt - sample : sample - ch->srtt;
		ch->rttvar = 0.75 * ch->rttvar + 0.25 * d;
		ch->srtt = 0.875 * ch->srtt + 0.125 * sample;
	}
	double var = 4 * ch->rttvar;
	ch->rto = ch->srtt + (var > CLOCK_GRANULARITY_MS ? var : CLOCK_GRANULARITY_MS);
	if (ch->rto < RTO_MIN_MS)
		ch->rto = RTO_MIN_MS;
	if (ch->rto > RTO_MAX_MS)
		ch->rto = RTO_MAX_MS;
}

/* A timeout fired: the estimate was too low (or the link is silent). RFC 6298
 * 5.5: back off, until an acknowledgement of a message sent once gives a new
 * sample. */
static void back_off(ssm_channel *ch)
{
	ch->rto *= 2;
	if (ch->rto > RTO_MAX_MS)
		ch->rto = RTO_MAX_MS;
}

/* The agent drops a duplicate of a message it already processed without
 * acknowledging it (amazon-ssm-agent's datachannel.go), so a message whose
 * ack was lost with a WebSocket would be resent for ever. But one WebSocket
 * carries messages and acks in order, and the agent acknowledges a message
 * it had not processed (or buffers, then acknowledges) when it arrives: so
 * when a message sent later on the same WebSocket is acknowledged, an
 * earlier one that was already resent on it and is still unacknowledged
 * reached the agent and was dropped as a duplicate. It is taken as
 * delivered. Only with opts.ordered_link: a link that loses single
 * messages would make this lose data. */
static void settle_duplicates(ssm_channel *ch, const out_msg *acked)
{
	if (!ch->o.ordered_link || acked->conn != ch->conn)
		return;
	for (int64_t s = ch->out_front; s < ch->out_next; s++) {
		out_msg *o = out_slot(ch, s);
		if (!o->acked && o->sends > 1 && o->conn == ch->conn && o->order < acked->order) {
			o->acked = 1;
			ch->settled++;
		}
	}
}

static void on_ack(ssm_channel *ch, const ssm_msg *m, uint64_t now_ms)
{
	ssm_ack ack;
	if (ssm_parse_ack(m->payload, m->payload_len, &ack, NULL, 0) < 0)
		return; /* a malformed ack is not acted on; the message will be resent */
	if (strcmp(ack.type, ch->out_type) != 0 || ack.seq < ch->out_front || ack.seq >= ch->out_next)
		return;
	out_msg *o = out_slot(ch, ack.seq);
	if (o->acked || memcmp(o->id, ack.id, 16) != 0)
		return;
	o->acked = 1;
	if (o->sends == 1) /* Karn: no samples from retransmitted messages */
		update_rtt(ch, (double)(now_ms - o->first_sent));
	const out_msg *front = out_slot(ch, ch->out_front);
	if (!front->acked && front->order < o->order) /* only then can any be settled */
		settle_duplicates(ch, o);
	while (ch->out_front < ch->out_next && out_slot(ch, ch->out_front)->acked) {
		out_msg *f = out_slot(ch, ch->out_front);
		free(f->bytes);
		f->bytes = NULL;
		f->acked = 0;
		ch->out_front++;
	}
}

/* ------------------------------------------------------------ receiving */

static void deliver_buffered(ssm_channel *ch)
{
	for (;;) {
		in_msg *slot = &ch->in[(uint64_t)ch->in_expected % ch->o.max_reorder];
		if (!slot->payload || slot->seq != ch->in_expected)
			return;
		uint8_t *p = slot->payload;
		size_t n = slot->n;
		uint32_t type = slot->payload_type;
		slot->payload = NULL;
		ch->in_buffered--;
		ch->in_expected++;
		ch->cb.data(ch->cb.ud, type, p, n);
		free(p);
	}
}

static void on_data(ssm_channel *ch, const ssm_msg *m, uint64_t now_ms)
{
	if (m->seq < ch->in_expected) { /* a duplicate: our ack was lost */
		send_ack(ch, m, now_ms);
		return;
	}
	if (m->seq == ch->in_expected) {
		send_ack(ch, m, now_ms);
		ch->in_expected++;
		ch->cb.data(ch->cb.ud, m->payload_type, m->payload, m->payload_len);
		deliver_buffered(ch);
		return;
	}
	if ((uint64_t)(m->seq - ch->in_expected) >= ch->o.max_reorder)
		return; /* too far ahead: not acknowledged, so the peer sends it again later */
	in_msg *slot = &ch->in[(uint64_t)m->seq % ch->o.max_reorder];
	if (!slot->payload) {
		/* +1 so an empty payload still marks the slot taken. */
		slot->payload = malloc((size_t)m->payload_len + 1);
		if (!slot->payload)
			return;
		memcpy(slot->payload, m->payload, m->payload_len);
		slot->n = m->payload_len;
		slot->payload_type = m->payload_type;
		slot->seq = m->seq;
		ch->in_buffered++;
	}
	send_ack(ch, m, now_ms);
}

int ssm_channel_input(ssm_channel *ch, const uint8_t *msg, size_t n, uint64_t now_ms, char *why, size_t whylen)
{
	ssm_msg m;
	if (ssm_msg_decode(msg, n, ch->o.check_digest, &m, why, whylen) < 0)
		return -1;
	if (strcmp(m.type, SSM_ACKNOWLEDGE) == 0) {
		on_ack(ch, &m, now_ms);
	} else if (strcmp(m.type, ch->in_type) == 0) {
		on_data(ch, &m, now_ms);
	} else if (strcmp(m.type, SSM_CHANNEL_CLOSED) == 0) {
		char sid[128], output[1024];
		if (ssm_parse_channel_closed(m.payload, m.payload_len, sid, sizeof sid, output, sizeof output, NULL,
					     0) < 0)
			snprintf(output, sizeof output, "the channel was closed (unreadable reason)");
		if (ch->cb.closed)
			ch->cb.closed(ch->cb.ud, output);
	} else if (strcmp(m.type, SSM_PAUSE_PUBLICATION) == 0) {
		ch->paused = 1;
	} else if (strcmp(m.type, SSM_START_PUBLICATION) == 0) {
		ch->paused = 0;
	} else if (strcmp(m.type, ch->out_type) == 0) {
		return fail(why, whylen, "the peer sent %s, which only this side sends", m.type);
	}
	/* Other types are for features sbx does not use; ignored as the plugin does. */
	return 0;
}

/* ------------------------------------------------------- retransmission */

int ssm_channel_tick(ssm_channel *ch, uint64_t now_ms, char *why, size_t whylen)
{
	if (ch->paused)
		return 0;
	int resent = 0;
	double rto = ch->rto; /* the timeout these messages were due by, before backing off */
	for (int64_t s = ch->out_front; s < ch->out_next; s++) {
		out_msg *o = out_slot(ch, s);
		if (o->acked || (double)(now_ms - o->last_sent) < rto)
			continue;
		if (o->sends >= ch->o.max_resends)
			return fail(why, whylen, "SSM message %lld was sent %u times without an acknowledgement",
				    (long long)s, o->sends);
		o->sends++;
		o->last_sent = now_ms;
		o->order = ++ch->send_order;
		ch->resends++;
		resent = 1;
		ch->cb.send(ch->cb.ud, o->bytes, o->n);
	}
	if (resent)
		back_off(ch);
	return 0;
}

uint64_t ssm_channel_next_deadline(const ssm_channel *ch)
{
	uint64_t next = UINT64_MAX;
	if (ch->paused)
		return next;
	for (int64_t s = ch->out_front; s < ch->out_next; s++) {
		const out_msg *o = out_slot(ch, s);
		uint64_t due = o->last_sent + (uint64_t)ch->rto;
		if (!o->acked && due < next)
			next = due;
	}
	return next;
}

void ssm_channel_resend_all(ssm_channel *ch, uint64_t now_ms)
{
	ch->conn++; /* a new WebSocket: what the old one carried says nothing of it */
	for (int64_t s = ch->out_front; s < ch->out_next; s++) {
		out_msg *o = out_slot(ch, s);
		if (o->acked)
			continue;
		o->sends++;
		o->last_sent = now_ms;
		o->order = ++ch->send_order;
		o->conn = ch->conn;
		ch->resends++;
		ch->cb.send(ch->cb.ud, o->bytes, o->n);
	}
}

size_t ssm_channel_unacked(const ssm_channel *ch)
{
	size_t n = 0;
	for (int64_t s = ch->out_front; s < ch->out_next; s++)
		n += !out_slot(ch, s)->acked;
	return n;
}

size_t ssm_channel_buffered(const ssm_channel *ch)
{
	return ch->in_buffered;
}

unsigned ssm_channel_rto_ms(const ssm_channel *ch)
{
	return (unsigned)ch->rto;
}

uint64_t ssm_channel_resends(const ssm_channel *ch)
{
	return ch->resends;
}

uint64_t ssm_channel_settled(const ssm_channel *ch)
{
	return ch->settled;
}
