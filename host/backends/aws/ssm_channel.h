/* ssm_channel.h — reliable delivery on an SSM data channel, sans-I/O.
 *
 * Session Manager carries stream data as numbered messages over a
 * WebSocket that may drop and be re-dialled; each side acknowledges every
 * data message and resends what stays unacknowledged. This object is that
 * state machine for one side (the client, or the agent side for
 * emulators): feed it each received binary message and the time, and it
 * calls back with in-order payloads and with messages to send (acks, data,
 * retransmissions). It never reads a clock or a socket.
 *
 *  - outgoing data gets sequence numbers 0, 1, 2, ... and is kept until
 *    acknowledged; ssm_channel_tick() resends any message unacknowledged
 *    for longer than the retransmission timeout, which follows the
 *    measured round trip (RFC 6298: smoothed RTT + 4 x its variation,
 *    Karn's rule, start 1 s, at least 200 ms, doubled after a timeout up
 *    to 8 s), and fails the channel after max_resends sends of one message;
 *    the agent drops duplicates without an ack, so with ordered_link a
 *    message resent before one that is acknowledged on the same WebSocket
 *    is taken as delivered (its ack was lost; see settle_duplicates);
 *  - incoming data is acknowledged, delivered in sequence order, buffered
 *    when early (bounded), and acknowledged again but not delivered when a
 *    duplicate;
 *  - pause_publication / start_publication stop and restart sending;
 *    channel_closed ends the channel with the agent's text.
 *
 * Every byte from the peer is hostile: malformed messages, acks for
 * unknown messages and out-of-window sequence numbers are errors or are
 * ignored, never trusted. */
#ifndef SBX_AWS_SSM_CHANNEL_H
#define SBX_AWS_SSM_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct ssm_channel ssm_channel;

typedef struct ssm_channel_cb {
	/* One binary WebSocket message to send now. */
	void (*send)(void *ud, const uint8_t *msg, size_t n);
	/* One in-order data payload from the peer. */
	void (*data)(void *ud, uint32_t payload_type, const uint8_t *p, size_t n);
	/* The peer closed the channel (channel_closed), with its text. */
	void (*closed)(void *ud, const char *output);
	void *ud;
} ssm_channel_cb;

typedef struct ssm_channel_opts {
	int agent_side;           /* send output_stream_data, receive input_stream_data */
	int check_digest;         /* verify payload SHA-256 of received messages (client: yes) */
	size_t max_unacked;       /* outgoing window in messages; default 1024 */
	size_t max_reorder;       /* early messages buffered; default 1024 */
	unsigned max_resends;     /* per message before failing; default 450 (~1 hour) */
	/* The link keeps order and loses no single message between re-dials
	 * (a WebSocket): acks lost with a dropped WebSocket are inferred. */
	int ordered_link;
	/* The CreatedDate of messages sent: milliseconds since the epoch, as the
	 * agent expects (the now_ms this object is given is a monotonic clock).
	 * NULL: now_ms is used (tests with a fake clock). */
	uint64_t (*wall_clock_ms)(void);
} ssm_channel_opts;

ssm_channel *ssm_channel_new(const ssm_channel_opts *o, const ssm_channel_cb *cb);
void ssm_channel_free(ssm_channel *ch);

/* A received binary message at time now_ms. 0, or -1 with why when the
 * message is malformed (the caller should close the channel). */
int ssm_channel_input(ssm_channel *ch, const uint8_t *msg, size_t n, uint64_t now_ms, char *why, size_t whylen);

/* Send one data payload (at most SSM_MAX_PAYLOAD bytes). 0; -1 with errno
 * EAGAIN while the outgoing window is full or publication is paused (wait
 * for ssm_channel_writable), ENOMEM, EINVAL. */
int ssm_channel_send(ssm_channel *ch, uint32_t payload_type, const void *p, size_t n, uint64_t now_ms);
int ssm_channel_writable(const ssm_channel *ch);

/* Resend what is due. 0, or -1 with why when a message was sent
 * max_resends times without an acknowledgement. */
int ssm_channel_tick(ssm_channel *ch, uint64_t now_ms, char *why, size_t whylen);
/* When tick next has work: an absolute time in ms, or UINT64_MAX. */
uint64_t ssm_channel_next_deadline(const ssm_channel *ch);

/* After the WebSocket was re-dialled: resend every unacknowledged message
 * now (sequence numbers continue). */
void ssm_channel_resend_all(ssm_channel *ch, uint64_t now_ms);

/* Introspection for tests and stats. */
size_t ssm_channel_unacked(const ssm_channel *ch);
size_t ssm_channel_buffered(const ssm_channel *ch);
unsigned ssm_channel_rto_ms(const ssm_channel *ch);
uint64_t ssm_channel_resends(const ssm_channel *ch);
/* Messages taken as delivered because a later one was acknowledged. */
uint64_t ssm_channel_settled(const ssm_channel *ch);

#endif
