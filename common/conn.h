/* conn.h — the sans-I/O protocol connection shared by agent and host.
 *
 * A connection is fed the bytes that arrived from the peer and produces the
 * bytes to send back; it never touches a socket, a clock or a process. It
 * owns framing (length prefix, maximum frame size), the handshake, the
 * stream table with per-stream credit-based flow control, per-chunk
 * compression, CRC32 per transfer, heartbeats and fatal protocol errors.
 * Everything it decodes is handed to the owner through callbacks. */
#ifndef SBX_CONN_H
#define SBX_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "adapt.h"
#include "auth.h"
#include "buf.h"
#include "msg.h"
#include "window.h"

typedef enum { SBX_ROLE_AGENT, SBX_ROLE_HOST } sbx_role;

/* Capabilities announced in HELLO. */
#define SBX_CAP_DEFLATE 0x01 /* accepts deflated DATA */
#define SBX_CAP_ATTACH 0x02  /* keeps execs across connections (listen mode) */
#define SBX_CAP_USER 0x04    /* can switch users (runs as root) */
#define SBX_CAP_ORPHAN 0x08  /* honours EXEC orphan_ms (kills commands whose caller went) */
#define SBX_CAP_PTY 0x10     /* EXEC tty/rows/cols and RESIZE (terminals) */
#define SBX_CAP_FORWARD 0x20 /* FORWARD: TCP connections to its loopback */
#define SBX_CAP_DETACH 0x40  /* EXEC detach, JOBS, KILL, LOGS (detached commands) */
#define SBX_CAP_TREE 0x80    /* WRITE/READ `tree`: directory trees as one stream (tree.h) */
#define SBX_CAP_AGENT_FORWARD 0x100 /* FORWARD `agent`: a new connection to the agent itself */

/* The HELLO name of one capability bit ("forward" for SBX_CAP_FORWARD);
 * "?" for a bit this build does not know. */
const char *sbx_cap_name(uint32_t bit);

#define SBX_CHUNK_MAX (64 * 1024)         /* largest DATA payload, raw */
#define SBX_DEFAULT_MAX_FRAME (1024 * 1024)
#define SBX_AGENT_MAX_FRAME (8 * 1024 * 1024) /* the agent's: the largest argv + env execve accepts, and more */
#define SBX_DEFAULT_WINDOW (1024 * 1024)
#define SBX_MIN_MAX_FRAME (SBX_CHUNK_MAX + 1024)

/* The HELLO both sides send: ours is filled by the owner, the peer's is
 * decoded by the connection. */
typedef struct sbx_hello {
	uint32_t proto;
	char version[32];
	char boot_id[64];
	char arch[16];
	int64_t pid;
	int64_t uid;
	uint64_t max_frame; /* largest frame the sender accepts */
	uint64_t window;    /* initial credit the sender grants per stream */
	uint32_t caps;
	int compress;       /* host -> agent: SBX_COMPRESS_* for what you send */
} sbx_hello;

typedef struct sbx_conn sbx_conn;

typedef struct sbx_conn_callbacks {
	/* The peer's HELLO arrived (already validated). */
	void (*on_hello)(sbx_conn *c, const sbx_hello *peer, void *ud);
	/* Any other message meant for the owner: requests, SIGNAL, CANCEL,
	 * DATA (already inflated and counted), END (m->err = EBADMSG when the
	 * byte count or CRC32 does not match what arrived), EXIT, RESULT,
	 * ERROR. After a final message returns, its stream is gone. */
	void (*on_msg)(sbx_conn *c, const sbx_msg *m, void *ud);
	/* The peer granted more credit on a stream. */
	void (*on_credit)(sbx_conn *c, uint32_t stream, void *ud);
} sbx_conn_callbacks;

typedef struct sbx_conn_config {
	sbx_role role;
	sbx_hello hello;       /* what we announce; max_frame/window 0 = default */
	int compress;          /* SBX_COMPRESS_* for our outbound DATA (agent: the host's HELLO decides) */
	/* A monotonic clock in nanoseconds, for SBX_COMPRESS_AUTO (it times the
	 * link and the compressor). NULL: AUTO never compresses. */
	uint64_t (*clock_ns)(void);
	uint64_t ping_ms;      /* host: PING after this much send silence; 0 = never */
	/* Receive window tuning (window.h, docs/PROTOCOL.md §7.1): on unless
	 * fixed_window or no clock_ns. 0 = the defaults (SBX_WINDOW_MAX per
	 * stream, SBX_WINDOW_BUDGET per connection). */
	int fixed_window;
	uint64_t window_max;
	uint64_t window_budget;
	uint64_t dead_ms;      /* fail after this much receive silence; 0 = never */
	/* The sandbox's secret (copied; NULL: none), docs/PROTOCOL.md §5.1.
	 * Agent: sends an AUTH challenge before its HELLO and accepts nothing
	 * until the host proves it holds the secret. Host: answers a challenge
	 * with the proof (an agent that sends none is served without it). */
	const sbx_auth_key *auth_key;
	uint8_t auth_nonce[SBX_AUTH_NONCE_LEN]; /* agent: fresh random bytes per connection */
	sbx_conn_callbacks cb;
	void *ud;
} sbx_conn_config;

/* Creates the connection. The agent queues its HELLO at once; the host
 * answers with its own HELLO when the agent's arrives. NULL on ENOMEM. */
sbx_conn *sbx_conn_new(const sbx_conn_config *cfg);
void sbx_conn_free(sbx_conn *c);

/* Feeds bytes from the peer. 0, or -1 after a fatal protocol error (see
 * sbx_conn_error; a GOAWAY telling the peer why is queued). */
int sbx_conn_feed(sbx_conn *c, const uint8_t *p, size_t n);
/* The peer closed its side: the connection fails. Returns 1 when that cut
 * a frame short (the error then says so), else 0. */
int sbx_conn_eof(sbx_conn *c);

/* Outbound bytes: what to write to the transport, and how much was written. */
const uint8_t *sbx_conn_out(sbx_conn *c, size_t *len);
void sbx_conn_out_consume(sbx_conn *c, size_t n);
size_t sbx_conn_out_size(const sbx_conn *c);

/* CLOCK_MONOTONIC in nanoseconds: what owners pass as clock_ns. */
uint64_t sbx_monotonic_ns(void);

/* Periodic housekeeping: sends PINGs, detects a silent peer. -1 if dead. */
int sbx_conn_tick(sbx_conn *c, uint64_t now_ms);

/* The earliest time (ms, the clock given to sbx_conn_tick) at which a
 * tick could act if no byte moves meanwhile: the PING after send silence
 * or the dead-peer check. 0: tick now (never ticked yet); UINT64_MAX: no
 * heartbeat configured. Traffic since the last tick only moves it later,
 * so an owner may sleep until then. */
uint64_t sbx_conn_tick_due(const sbx_conn *c);

/* NULL while healthy, else why the connection failed. */
const char *sbx_conn_error(const sbx_conn *c);
/* Why it failed, as a short code: "auth" when the host could not prove it
 * holds the secret (either side), "protocol", or "" (transport, memory). */
const char *sbx_conn_error_code(const sbx_conn *c);
/* Marks the connection failed with a message (e.g. transport closed). */
void sbx_conn_fail(sbx_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbx_conn_ready(const sbx_conn *c);            /* both HELLOs exchanged */
const sbx_hello *sbx_conn_peer(const sbx_conn *c);
size_t sbx_conn_open_streams(const sbx_conn *c);

/* ---- sending ---- */

/* Host: a fresh stream id for a request. */
uint32_t sbx_conn_new_stream_id(sbx_conn *c);

/* Map-bodied messages (requests, EXIT, RESULT): begin, pack `npairs`
 * key/value pairs with w->pk, finish. Requests open their stream, finals
 * close it. finish returns -1 when the frame is too large for the peer. */
msgpack_packer *sbx_conn_begin_map(sbx_conn *c, int type, uint32_t stream, unsigned npairs);
int sbx_conn_finish(sbx_conn *c);

int sbx_conn_send_signal(sbx_conn *c, uint32_t stream, int signo);
int sbx_conn_send_cancel(sbx_conn *c, uint32_t stream);
/* A terminal's new size (rows, cols: 1..65535); only to a peer with SBX_CAP_PTY. */
int sbx_conn_send_resize(sbx_conn *c, uint32_t stream, unsigned rows, unsigned cols);
/* Final error reply for a request; closes the stream. */
int sbx_conn_send_error(sbx_conn *c, uint32_t stream, int err, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Sends up to n bytes (as much as credit allows, in chunks). Returns the
 * number of bytes taken, or -1 if the stream is not open. */
long sbx_conn_send_data(sbx_conn *c, uint32_t stream, int fd, const uint8_t *p, size_t n);
/* Zero-copy sending: begin returns where to put up to *room bytes of one
 * chunk (room <= credit and <= SBX_CHUNK_MAX; NULL when there is no credit
 * or memory), inside the outbound queue; commit sends the first n of them
 * (0: nothing). No other call on c may come in between. */
uint8_t *sbx_conn_data_begin(sbx_conn *c, uint32_t stream, size_t *room);
int sbx_conn_data_commit(sbx_conn *c, uint32_t stream, int fd, size_t n);
/* Ends fd's data with its byte count and CRC32. */
int sbx_conn_send_end(sbx_conn *c, uint32_t stream, int fd);
uint64_t sbx_conn_credit(sbx_conn *c, uint32_t stream);

/* The owner has consumed n received bytes of a stream: grant them back
 * (batched into WINDOW messages). */
void sbx_conn_consumed(sbx_conn *c, uint32_t stream, size_t n);

/* Our current receive window on a stream (0: not open), the sum over all
 * open streams, and the measured round trip (ns; 0 until measured). */
uint64_t sbx_conn_recv_window(sbx_conn *c, uint32_t stream);
uint64_t sbx_conn_recv_window_total(const sbx_conn *c);
uint64_t sbx_conn_rtt_ns(const sbx_conn *c);

/* SBX_FIXED_WINDOW=1 (or any value but "0" and ""): the caller's side
 * keeps the fixed HELLO window (for side-by-side measurements). */
int sbx_fixed_window_env(void);

int sbx_conn_has_stream(sbx_conn *c, uint32_t stream);
/* The owner's object attached to an open stream (NULL if none). */
void sbx_conn_set_user(sbx_conn *c, uint32_t stream, void *user);
void *sbx_conn_user(sbx_conn *c, uint32_t stream);

#endif
