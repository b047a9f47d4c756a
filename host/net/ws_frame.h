/* ws_frame.h — the WebSocket (RFC 6455) wire format, sans I/O.
 *
 * The client side of the framing: encoding masked frames, and a decoder
 * that is fed the server's bytes and reassembles messages (bounded size),
 * reporting control frames and protocol violations with the close code
 * RFC 6455 asks for. Also the opening handshake's request and the check of
 * its response. No sockets, no clocks: ws.c does the I/O. */
#ifndef SBX_WS_FRAME_H
#define SBX_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum {
	SBX_WS_CONT = 0x0,
	SBX_WS_TEXT = 0x1,
	SBX_WS_BINARY = 0x2,
	SBX_WS_CLOSE = 0x8,
	SBX_WS_PING = 0x9,
	SBX_WS_PONG = 0xA,
};

/* Close codes (RFC 6455 7.4.1). */
enum {
	SBX_WS_NORMAL = 1000,
	SBX_WS_GOING_AWAY = 1001,
	SBX_WS_PROTOCOL_ERROR = 1002,
	SBX_WS_NO_STATUS = 1005,    /* never sent: "the close frame had no code" */
	SBX_WS_ABNORMAL = 1006,     /* never sent: "no close frame at all" */
	SBX_WS_INVALID_DATA = 1007,
	SBX_WS_TOO_BIG = 1009,
};

#define SBX_WS_MAX_HEADER 14

/* Appends one client frame (always masked with a fresh random key): the
 * header, then the payload parts (iov-style, n parts) masked. 0, or -1
 * when out of memory. */
typedef struct sbx_ws_part {
	const void *p;
	size_t n;
} sbx_ws_part;
int sbx_ws_encode(sbx_buf *out, int opcode, const sbx_ws_part *parts, int nparts);
/* The same with a given key (tests: RFC examples). */
int sbx_ws_encode_key(sbx_buf *out, int opcode, const sbx_ws_part *parts, int nparts, const uint8_t key[4]);

/* XORs p with the key starting at key offset off (RFC 6455 5.3). */
void sbx_ws_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t off);

typedef struct sbx_ws_decoder_cb {
	/* A whole data message (fragments joined). */
	void (*on_message)(void *ud, int opcode, const uint8_t *p, size_t n);
	/* PING, PONG or CLOSE with its payload (at most 125 bytes). */
	void (*on_control)(void *ud, int opcode, const uint8_t *p, size_t n);
} sbx_ws_decoder_cb;

typedef struct sbx_ws_decoder {
	sbx_ws_decoder_cb cb;
	void *ud;
	size_t max_message;    /* bound on a message (all its fragments) */
	sbx_buf in;            /* bytes of a frame not complete yet */
	sbx_buf msg;           /* fragments of the message being assembled */
	int msg_opcode;        /* its opcode, 0 when none is open */
	int failed;
	int close_code;        /* the code to close with after a failure */
	char error[160];
} sbx_ws_decoder;

void sbx_ws_decoder_init(sbx_ws_decoder *d, size_t max_message, const sbx_ws_decoder_cb *cb, void *ud);
void sbx_ws_decoder_free(sbx_ws_decoder *d);
/* Feeds the server's bytes. 0, or -1 on a protocol violation: d->error
 * says what, d->close_code what to close with; feeding stops for good.
 * Callbacks may not free the decoder. */
int sbx_ws_decode(sbx_ws_decoder *d, const uint8_t *p, size_t n);

/* The close frame's payload: code, then reason (truncated to fit). */
size_t sbx_ws_close_payload(uint8_t out[125], int code, const char *reason);
/* Reads a received close payload; returns -1 if it is malformed (1 byte,
 * a code that may not be sent, reason not UTF-8). code 1005 if empty. */
int sbx_ws_parse_close(const uint8_t *p, size_t n, int *code, char *reason, size_t reason_len);

int sbx_ws_utf8_valid(const uint8_t *p, size_t n);

/* ---- opening handshake ---- */

/* A fresh Sec-WebSocket-Key (base64 of 16 random bytes, 24 chars + NUL). */
void sbx_ws_new_key(char key[25]);
/* The Sec-WebSocket-Accept a server must answer for key. */
void sbx_ws_accept_for(const char *key, char out[29]);

/* Appends the upgrade request: GET path_query HTTP/1.1, Host, the
 * WebSocket headers, Sec-WebSocket-Protocol from protocols (NULL-terminated
 * list, or NULL), then extra "Name: value" headers. */
int sbx_ws_request(sbx_buf *out, const char *host, const char *path_query, const char *key,
		   const char *const *protocols, const char *const *headers);

/* Checks a complete response head (through the blank line). Returns 0 and
 * copies the chosen subprotocol ("" if none) into protocol; or -1 with why
 * (the status line, the header at fault) and *status (0 if unparsable). */
int sbx_ws_check_response(const char *head, size_t n, const char *key, const char *const *protocols,
			  int *status, char *protocol, size_t protocol_len, char *why, size_t why_len);

#endif
