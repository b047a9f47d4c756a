/* msg.h — the protocol's message catalog: type numbers, field layouts, and
 * the encoder/decoder between one frame's msgpack array and struct sbx_msg.
 *
 * Every frame body is a msgpack array whose first two elements are the
 * message type and the stream id. docs/PROTOCOL.md is the normative text;
 * this file is its C form. Nothing here touches I/O. */
#ifndef SBX_MSG_H
#define SBX_MSG_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SBX_PROTO_VERSION 1

enum sbx_msg_type {
	SBX_MSG_HELLO = 0x01,  /* [1, 0, map]                both sides, first frame */
	SBX_MSG_PING = 0x02,   /* [2, 0, nonce]              either side */
	SBX_MSG_PONG = 0x03,   /* [3, 0, nonce]              answer to PING */
	SBX_MSG_GOAWAY = 0x04, /* [4, 0, errno, code, text]  fatal, then close */
	SBX_MSG_AUTH = 0x05,   /* [5, 0, map]                before HELLO: challenge / proof */

	SBX_MSG_EXEC = 0x10,   /* [16, s, map]  host -> agent requests */
	SBX_MSG_WRITE = 0x11,  /* [17, s, map] */
	SBX_MSG_READ = 0x12,   /* [18, s, map] */
	SBX_MSG_STAT = 0x13,   /* [19, s, map] */
	SBX_MSG_ATTACH = 0x14, /* [20, s, map] */
	SBX_MSG_SIGNAL = 0x15, /* [21, s, signo]      host -> agent, on an exec */
	SBX_MSG_CANCEL = 0x16, /* [22, s]             host -> agent */
	SBX_MSG_RESIZE = 0x17, /* [23, s, rows, cols] host -> agent, on a tty exec (cap "pty") */
	SBX_MSG_FORWARD = 0x18, /* [24, s, map]        host -> agent, a TCP connection (cap "forward") */
	SBX_MSG_JOBS = 0x19,   /* [25, s, map]  list detached commands (cap "detach") */
	SBX_MSG_KILL = 0x1a,   /* [26, s, map]  signal a detached command (cap "detach") */
	SBX_MSG_LOGS = 0x1b,   /* [27, s, map]  a detached command's retained output (cap "detach") */

	SBX_MSG_DATA = 0x20,   /* [32, s, fd, flags, bin, rawlen] either way */
	SBX_MSG_END = 0x21,    /* [33, s, fd, count, crc32]       end of fd's data */
	SBX_MSG_WINDOW = 0x22, /* [34, s, increment]              flow credit */

	SBX_MSG_EXIT = 0x30,   /* [48, s, map]    agent -> host, ends an exec */
	SBX_MSG_RESULT = 0x31, /* [49, s, map]    agent -> host, ends other requests */
	SBX_MSG_ERROR = 0x32,  /* [50, s, errno, code, text] ends any request */
};

/* DATA flags */
#define SBX_DATA_DEFLATE 0x01 /* payload is a raw deflate stream of rawlen bytes */

/* Stream fds: 0 = toward the agent (stdin / file contents written),
 * 1 = stdout / file contents read, 2 = stderr. */
#define SBX_FD_IN 0
#define SBX_FD_OUT 1
#define SBX_FD_ERR 2

/* A decoded message. Pointers refer into the frame being decoded (or the
 * connection's inflate buffer) and are valid only during the callback. */
typedef struct sbx_msg {
	int type;
	uint32_t stream;
	const msgpack_object *body; /* HELLO/AUTH/requests/EXIT/RESULT: the map */
	uint64_t value;             /* PING/PONG nonce, SIGNAL signo, WINDOW increment */
	unsigned rows, cols;        /* RESIZE: 1..65535 each */
	int fd;                     /* DATA, END */
	unsigned flags;             /* DATA */
	const uint8_t *data;        /* DATA payload (after inflate) */
	size_t len;
	size_t rawlen;              /* DATA: declared decompressed length */
	uint64_t count;             /* END */
	uint32_t crc;               /* END */
	int err;                    /* ERROR/GOAWAY: errno value (Linux numbering) */
	char code[32];              /* ERROR/GOAWAY: short symbolic code */
	char text[512];             /* ERROR/GOAWAY: human message (truncated) */
} sbx_msg;

const char *sbx_msg_name(int type);
int sbx_msg_is_request(int type);
int sbx_msg_is_final(int type);

/* Decode one frame body (msgpack bytes). Returns 0, or -1 with a reason
 * in err. `zone_obj` receives the unpacked root which owns memory that
 * `out` points into; free it with msgpack_unpacked_destroy. */
int sbx_msg_decode(const uint8_t *p, size_t n, msgpack_unpacked *zone_obj,
		   sbx_msg *out, char *err, size_t err_len);

/* ---- Encoding: each appends one complete frame (length prefix + body) ----
 * Map-bodied messages are built with sbx_frame_begin / a msgpack_packer /
 * sbx_frame_finish so callers can add any fields. */
typedef struct sbx_frame_writer {
	sbx_buf *out;
	size_t start;
	msgpack_packer pk;
} sbx_frame_writer;

/* Starts a frame [type, stream, ...]; `nfields` counts the elements after
 * the stream id. Pack those elements with w->pk, then call finish. */
int sbx_frame_begin(sbx_frame_writer *w, sbx_buf *out, int type, uint32_t stream, unsigned nfields);
/* Patches the length prefix. -1 if the frame is larger than max_frame
 * (the frame is then removed from the buffer). */
int sbx_frame_finish(sbx_frame_writer *w, size_t max_frame);

/* msgpack helpers for building maps */
void sbx_pack_str(msgpack_packer *pk, const char *s);
void sbx_pack_kv_str(msgpack_packer *pk, const char *k, const char *v);
void sbx_pack_kv_int(msgpack_packer *pk, const char *k, int64_t v);
void sbx_pack_kv_uint(msgpack_packer *pk, const char *k, uint64_t v);
void sbx_pack_kv_bool(msgpack_packer *pk, const char *k, int v);

/* msgpack helpers for reading maps (NULL/defaults when absent or mistyped) */
const msgpack_object *sbx_map_get(const msgpack_object *map, const char *key);
/* Copies a str value into out (NUL-terminated). -1 if absent, not a string,
 * contains NUL, or does not fit. */
int sbx_map_str(const msgpack_object *map, const char *key, char *out, size_t out_len);
int64_t sbx_map_int(const msgpack_object *map, const char *key, int64_t dflt);
uint64_t sbx_map_uint(const msgpack_object *map, const char *key, uint64_t dflt);
int sbx_map_bool(const msgpack_object *map, const char *key, int dflt);
/* Copies a str object (not NUL-terminated in msgpack) into out. */
int sbx_obj_str(const msgpack_object *o, char *out, size_t out_len);

#endif
