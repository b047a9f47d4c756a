/* ws.h — a WebSocket client (RFC 6455) on the host's event loop.
 *
 * libcurl makes the connection (TCP, proxy CONNECT, TLS: the settings of
 * http.h); the upgrade request, the framing (ws_frame.h) and the socket's
 * I/O on the sbx_loop are ours. Messages are whole (fragments joined) and
 * bounded. Pings keep idle connections alive and detect dead ones.
 * Used by the Kubernetes exec transport and the SSM data channel. */
#ifndef SBX_WS_H
#define SBX_WS_H

#include "http.h"
#include "ws_frame.h"

#define SBX_WS_DEFAULT_MAX_MESSAGE (32u * 1024 * 1024)
#define SBX_WS_HIGH_WATER (1024 * 1024) /* queued bytes a good sender stays under */

typedef struct sbx_ws sbx_ws;

typedef struct sbx_ws_opts {
	const char *url;              /* ws://, wss:// (or http://, https://) */
	const char *const *headers;   /* extra request headers ("Name: value"), e.g. Authorization */
	const char *const *protocols; /* subprotocols offered, preferred first; NULL = none */
	sbx_http_tls tls;
	double connect_timeout_s;     /* connect + TLS + upgrade; 0 = 30 s */
	size_t max_message;           /* 0 = SBX_WS_DEFAULT_MAX_MESSAGE */
	uint64_t ping_ms;             /* send a ping this often; 0 = never */
	uint64_t dead_ms;             /* fail after this long without a byte from the server; 0 = never */
	/* The upgrade succeeded; protocol is the subprotocol the server chose ("" if none). */
	void (*on_open)(void *ud, const char *protocol);
	/* A whole text or binary message. */
	void (*on_message)(void *ud, int opcode, const uint8_t *p, size_t n);
	/* The send queue fell below SBX_WS_HIGH_WATER / 4 (after sbx_ws_want_writable(1)). */
	void (*on_writable)(void *ud);
	/* Once, at the end: why->status is SBX_OK for a clean close (the server's
	 * code 1000 or none), else the failure (connect, TLS, refused upgrade,
	 * protocol violation, dead peer). code/reason from the close frame, or
	 * 1006 and "" when none came. The connection is gone; sbx_ws_free it. */
	void (*on_close)(void *ud, const sbx_error *why, int code, const char *reason);
	void *ud;
} sbx_ws_opts;

/* Starts connecting. Messages sent before the upgrade completed are queued.
 * Returns NULL with err set when it cannot even start (bad URL). */
sbx_ws *sbx_ws_connect(sbx_loop *loop, const sbx_ws_opts *o, sbx_error *err);

/* Queues one message made of parts (e.g. a channel byte and a payload).
 * 0, or -1 once the connection is closing or closed. */
int sbx_ws_send(sbx_ws *ws, int opcode, const sbx_ws_part *parts, int nparts);
/* Bytes queued and not yet written to the socket. */
size_t sbx_ws_queued(const sbx_ws *ws);
/* Ask for (or stop asking for) on_writable. */
void sbx_ws_want_writable(sbx_ws *ws, int on);
/* Starts the closing handshake; on_close follows (at most ~2 s later). */
void sbx_ws_close(sbx_ws *ws, int code, const char *reason);
/* Drops the connection at once; no callback runs afterwards. Safe from
 * this connection's own callbacks. */
void sbx_ws_free(sbx_ws *ws);

#endif
