/* conn.c — the sans-I/O protocol connection (see conn.h).
 *
 * Reading order: feeding bytes and splitting frames, the handshake,
 * dispatching each message (with the role and stream checks that keep a
 * hostile peer from doing anything but failing its own connection), then
 * the sending side, then flow control and heartbeats. */
#include "conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "chunk.h"
#include "sha256.h"
#include "streams.h"

struct sbx_conn {
	sbx_conn_config cfg;
	sbx_hello peer;
	int got_hello;
	int sent_hello;
	sbx_adapt adapt; /* whether to deflate the next chunk */
	uint64_t peer_max_frame;

	sbx_buf in;  /* a partial frame, when one straddles feeds */
	sbx_buf out; /* encoded frames waiting for the transport */
	sbx_streams streams;
	uint32_t next_stream;

	sbx_deflater deflater;
	sbx_inflater inflater;
	uint8_t *zin;  /* inflate output, allocated on first use */
	uint8_t *zout; /* deflate output, allocated on first use */

	msgpack_unpacked unpacked;
	sbx_frame_writer w; /* the frame being built by begin_map/finish */
	int w_type;
	uint32_t w_stream;

	uint64_t bytes_in, bytes_out;
	uint64_t seen_in, seen_out;   /* counters at the last tick */
	uint64_t last_rx, last_tx;    /* time of the last tick that saw traffic */
	uint64_t ping_nonce;

	sbx_wintune tune;   /* receive window tuning (window.h) */
	uint64_t probe_nonce; /* the PING timing the round trip */
	uint64_t probe_ns;    /* when it was sent; 0: none outstanding */
	uint64_t probed_ns;   /* when the last one was answered */

	sbx_auth_key key;                  /* the sandbox's secret; len 0: none */
	uint8_t nonce[SBX_AUTH_NONCE_LEN]; /* agent: this connection's challenge */
	int auth_waiting;                  /* agent: no valid proof from the host yet */
	int auth_answered;                 /* host: our proof is sent */

	int failed;
	char error[512];
	char error_code[32];
};

static void send_hello(sbx_conn *c);

/* AUTO needs a clock to time the link and the compressor. */
static void set_compress(sbx_conn *c, int mode)
{
	if (mode != SBX_COMPRESS_NEVER && mode != SBX_COMPRESS_ALWAYS && !c->cfg.clock_ns)
		mode = SBX_COMPRESS_NEVER;
	sbx_adapt_init(&c->adapt, mode);
}

uint64_t sbx_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static void handle_frame(sbx_conn *c, const uint8_t *p, size_t n);

/* ---------------------------------------------------------------- life */

sbx_conn *sbx_conn_new(const sbx_conn_config *cfg)
{
	sbx_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->cfg.auth_key = NULL; /* the caller's copy may go: ours is c->key */
	if (cfg->auth_key)
		c->key = *cfg->auth_key;
	memcpy(c->nonce, cfg->auth_nonce, sizeof c->nonce);
	sbx_wipe(c->cfg.auth_nonce, sizeof c->cfg.auth_nonce);
	if (!c->cfg.hello.max_frame)
		c->cfg.hello.max_frame = SBX_DEFAULT_MAX_FRAME;
	if (c->cfg.hello.max_frame < SBX_MIN_MAX_FRAME)
		c->cfg.hello.max_frame = SBX_MIN_MAX_FRAME;
	if (!c->cfg.hello.window)
		c->cfg.hello.window = SBX_DEFAULT_WINDOW;
	c->cfg.hello.proto = SBX_PROTO_VERSION;
	c->cfg.hello.caps |= SBX_CAP_DEFLATE;
	set_compress(c, cfg->compress);
	sbx_wintune_init(&c->tune, !cfg->fixed_window && cfg->clock_ns != NULL, c->cfg.hello.window,
			 cfg->window_max, cfg->window_budget);
	c->peer_max_frame = SBX_MIN_MAX_FRAME;
	c->next_stream = 1;
	msgpack_unpacked_init(&c->unpacked);
	if (c->cfg.role == SBX_ROLE_AGENT && c->key.len) {
		c->auth_waiting = 1;
		if (sbx_auth_pack_challenge(&c->out, c->nonce) < 0) {
			sbx_conn_free(c);
			return NULL;
		}
	}
	if (c->cfg.role == SBX_ROLE_AGENT)
		send_hello(c);
	return c;
}

void sbx_conn_free(sbx_conn *c)
{
	if (!c)
		return;
	sbx_buf_free(&c->in);
	sbx_buf_free(&c->out);
	sbx_streams_free(&c->streams);
	sbx_deflater_free(&c->deflater);
	sbx_inflater_free(&c->inflater);
	free(c->zin);
	free(c->zout);
	msgpack_unpacked_destroy(&c->unpacked);
	sbx_wipe(&c->key, sizeof c->key);
	free(c);
}

const char *sbx_conn_error(const sbx_conn *c) { return c->failed ? c->error : NULL; }
const char *sbx_conn_error_code(const sbx_conn *c) { return c->error_code; }
int sbx_conn_ready(const sbx_conn *c) { return c->got_hello && c->sent_hello && !c->failed; }
const sbx_hello *sbx_conn_peer(const sbx_conn *c) { return c->got_hello ? &c->peer : NULL; }
size_t sbx_conn_open_streams(const sbx_conn *c) { return c->streams.count; }

static void vfail(sbx_conn *c, const char *fmt, va_list ap)
{
	if (c->failed)
		return;
	c->failed = 1;
	vsnprintf(c->error, sizeof c->error, fmt, ap);
}

void sbx_conn_fail(sbx_conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(c, fmt, ap);
	va_end(ap);
}

/* A fatal error caused by the peer: fail, and tell the peer why with a
 * GOAWAY carrying err and code. */
static void goaway(sbx_conn *c, int err, const char *code, const char *what, const char *text)
{
	if (c->failed)
		return;
	sbx_conn_fail(c, "%s from %s: %s", what, c->cfg.role == SBX_ROLE_HOST ? "agent" : "host", text);
	snprintf(c->error_code, sizeof c->error_code, "%s", code);
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, &c->out, SBX_MSG_GOAWAY, 0, 3) == 0) {
		msgpack_pack_int(&w.pk, err);
		sbx_pack_str(&w.pk, code);
		sbx_pack_str(&w.pk, text);
		sbx_frame_finish(&w, c->peer_max_frame);
	}
}

static void vgoaway(sbx_conn *c, int err, const char *code, const char *what, const char *fmt, va_list ap)
{
	char text[400];
	vsnprintf(text, sizeof text, fmt, ap);
	goaway(c, err, code, what, text);
}

/* A protocol violation by the peer. */
static void protocol_error(sbx_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void protocol_error(sbx_conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vgoaway(c, EPROTO, "protocol", "protocol error", fmt, ap);
	va_end(ap);
}

/* The host did not prove it holds the secret (or, on the host, cannot). */
static void auth_error(sbx_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void auth_error(sbx_conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vgoaway(c, EACCES, "auth", "authentication failed", fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- feeding */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks a length prefix; -1 (after failing) when it is out of bounds. */
static int check_len(sbx_conn *c, uint32_t len)
{
	if (len == 0 || len > c->cfg.hello.max_frame) {
		protocol_error(c, "frame of %u bytes (limit %llu)", len,
			       (unsigned long long)c->cfg.hello.max_frame);
		return -1;
	}
	return 0;
}

/* Completes the partial frame in c->in from p; returns bytes taken. */
static size_t fill_partial(sbx_conn *c, const uint8_t *p, size_t n)
{
	size_t taken = 0;
	size_t have = sbx_buf_size(&c->in);
	if (have < 4) {
		size_t k = 4 - have < n ? 4 - have : n;
		sbx_buf_append(&c->in, p, k);
		taken += k;
		have += k;
		if (have < 4)
			return taken;
		if (check_len(c, be32(sbx_buf_head(&c->in))) < 0)
			return n;
	}
	size_t total = 4 + (size_t)be32(sbx_buf_head(&c->in));
	size_t k = total - have < n - taken ? total - have : n - taken;
	if (sbx_buf_append(&c->in, p + taken, k) < 0) {
		sbx_conn_fail(c, "out of memory buffering a frame");
		return n;
	}
	taken += k;
	if (sbx_buf_size(&c->in) == total) {
		handle_frame(c, sbx_buf_head(&c->in) + 4, total - 4);
		sbx_buf_clear(&c->in);
	}
	return taken;
}

int sbx_conn_feed(sbx_conn *c, const uint8_t *p, size_t n)
{
	c->bytes_in += n;
	while (n > 0 && !c->failed) {
		if (sbx_buf_size(&c->in) > 0 || n < 4) {
			size_t k = fill_partial(c, p, n);
			p += k;
			n -= k;
			continue;
		}
		uint32_t len = be32(p);
		if (check_len(c, len) < 0)
			break;
		if (n - 4 < len) {
			size_t k = fill_partial(c, p, n);
			p += k;
			n -= k;
			continue;
		}
		handle_frame(c, p + 4, len); /* whole frame in place: no copy */
		p += 4 + (size_t)len;
		n -= 4 + (size_t)len;
	}
	return c->failed ? -1 : 0;
}

int sbx_conn_eof(sbx_conn *c)
{
	size_t partial = sbx_buf_size(&c->in);
	if (partial > 0)
		sbx_conn_fail(c, "connection closed in the middle of a frame (%zu bytes of it arrived)", partial);
	else
		sbx_conn_fail(c, "connection closed by the %s",
			      c->cfg.role == SBX_ROLE_HOST ? "agent" : "host");
	return partial > 0;
}

/* ---------------------------------------------------------------- handshake */

static const char *cap_names[] = {"deflate", "attach", "user", "orphan", "pty", "forward", "detach", "tree",
				   "agent-forward"};
#define NCAPS (sizeof cap_names / sizeof cap_names[0])

const char *sbx_cap_name(uint32_t bit)
{
	for (size_t i = 0; i < NCAPS; i++)
		if (bit == 1u << i)
			return cap_names[i];
	return "?";
}

static void send_hello(sbx_conn *c)
{
	const sbx_hello *h = &c->cfg.hello;
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, &c->out, SBX_MSG_HELLO, 0, 1) < 0)
		return;
	msgpack_pack_map(&w.pk, 11);
	sbx_pack_kv_uint(&w.pk, "proto", h->proto);
	sbx_pack_kv_str(&w.pk, "role", c->cfg.role == SBX_ROLE_AGENT ? "agent" : "host");
	sbx_pack_kv_str(&w.pk, "version", h->version);
	sbx_pack_kv_str(&w.pk, "boot_id", h->boot_id);
	sbx_pack_kv_str(&w.pk, "arch", h->arch);
	sbx_pack_kv_int(&w.pk, "pid", h->pid);
	sbx_pack_kv_int(&w.pk, "uid", h->uid);
	sbx_pack_kv_uint(&w.pk, "max_frame", h->max_frame);
	sbx_pack_kv_uint(&w.pk, "window", h->window);
	sbx_pack_kv_uint(&w.pk, "compress", (uint64_t)h->compress);
	sbx_pack_str(&w.pk, "caps");
	unsigned ncaps = 0;
	for (unsigned i = 0; i < NCAPS; i++)
		ncaps += (h->caps >> i) & 1;
	msgpack_pack_array(&w.pk, ncaps);
	for (unsigned i = 0; i < NCAPS; i++)
		if (h->caps & (1u << i))
			sbx_pack_str(&w.pk, cap_names[i]);
	sbx_frame_finish(&w, SBX_MIN_MAX_FRAME);
	c->sent_hello = 1;
}

static int decode_hello(sbx_conn *c, const msgpack_object *map)
{
	sbx_hello *h = &c->peer;
	memset(h, 0, sizeof *h);
	uint64_t proto = sbx_map_uint(map, "proto", 0);
	h->proto = (uint32_t)proto;
	if (proto != SBX_PROTO_VERSION) {
		protocol_error(c, "peer speaks protocol version %llu, this side speaks %u",
			       (unsigned long long)proto, SBX_PROTO_VERSION);
		return -1;
	}
	sbx_map_str(map, "version", h->version, sizeof h->version);
	sbx_map_str(map, "boot_id", h->boot_id, sizeof h->boot_id);
	sbx_map_str(map, "arch", h->arch, sizeof h->arch);
	h->pid = sbx_map_int(map, "pid", 0);
	h->uid = sbx_map_int(map, "uid", -1);
	h->max_frame = sbx_map_uint(map, "max_frame", 0);
	h->window = sbx_map_uint(map, "window", 0);
	uint64_t compress = sbx_map_uint(map, "compress", SBX_COMPRESS_AUTO);
	h->compress = compress <= SBX_COMPRESS_ALWAYS ? (int)compress : SBX_COMPRESS_AUTO;
	if (h->max_frame < SBX_MIN_MAX_FRAME || h->window < 4096 || h->window > (1ull << 32)) {
		protocol_error(c, "HELLO has max_frame %llu / window %llu out of bounds",
			       (unsigned long long)h->max_frame, (unsigned long long)h->window);
		return -1;
	}
	const msgpack_object *caps = sbx_map_get(map, "caps");
	if (caps && caps->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < caps->via.array.size; i++) {
			char name[16];
			if (sbx_obj_str(&caps->via.array.ptr[i], name, sizeof name) < 0)
				continue;
			for (unsigned k = 0; k < NCAPS; k++)
				if (strcmp(name, cap_names[k]) == 0)
					h->caps |= 1u << k;
		}
	}
	return 0;
}

static void on_hello(sbx_conn *c, const sbx_msg *m)
{
	if (c->got_hello) {
		protocol_error(c, "second HELLO");
		return;
	}
	if (decode_hello(c, m->body) < 0)
		return;
	c->got_hello = 1;
	c->peer_max_frame = c->peer.max_frame;
	if (c->cfg.role == SBX_ROLE_AGENT)
		set_compress(c, c->peer.compress);
	if (!(c->peer.caps & SBX_CAP_DEFLATE))
		set_compress(c, SBX_COMPRESS_NEVER);
	if (!c->sent_hello)
		send_hello(c);
	if (c->cfg.cb.on_hello)
		c->cfg.cb.on_hello(c, &c->peer, c->cfg.ud);
}

/* ---------------------------------------------------------------- dispatch */

static void deliver(sbx_conn *c, const sbx_msg *m)
{
	if (c->cfg.cb.on_msg)
		c->cfg.cb.on_msg(c, m, c->cfg.ud);
}

/* ---------------------------------------------------------------- streams */

/* Exec output credit is also the acknowledgement by which the agent drops
 * retained output (docs/PROTOCOL.md §7): a host granting more than it
 * consumed would lose output on re-attach, so those windows stay fixed. */
static int tunable(const sbx_conn *c, int type)
{
	return !(c->cfg.role == SBX_ROLE_HOST && (type == SBX_MSG_EXEC || type == SBX_MSG_ATTACH));
}

static void open_stream(sbx_conn *c, sbx_stream *s, int type)
{
	s->type = type;
	s->send_credit = c->peer.window;
	s->recv_left = c->cfg.hello.window;
	sbx_wintune_open(&c->tune, &s->rwin, tunable(c, type));
}

static void close_stream(sbx_conn *c, uint32_t stream)
{
	sbx_stream *s = sbx_streams_get(&c->streams, stream);
	if (s)
		sbx_wintune_close(&c->tune, &s->rwin);
	sbx_streams_del(&c->streams, stream);
}

/* Which messages each role may receive. */
static int allowed(const sbx_conn *c, int type)
{
	switch (type) {
	case SBX_MSG_HELLO:
	case SBX_MSG_PING:
	case SBX_MSG_PONG:
	case SBX_MSG_GOAWAY:
	case SBX_MSG_DATA:
	case SBX_MSG_END:
	case SBX_MSG_WINDOW:
		return 1;
	case SBX_MSG_EXIT:
	case SBX_MSG_RESULT:
	case SBX_MSG_ERROR:
		return c->cfg.role == SBX_ROLE_HOST;
	default:
		return c->cfg.role == SBX_ROLE_AGENT &&
		       (sbx_msg_is_request(type) || type == SBX_MSG_SIGNAL || type == SBX_MSG_CANCEL ||
			type == SBX_MSG_RESIZE);
	}
}

/* Finds the stream a message refers to. The host knows every stream it
 * opened (and keeps it until the agent's final), so anything else is a
 * hostile or broken agent. The agent may see stragglers for a stream it
 * just finished; it ignores those. */
static sbx_stream *stream_for(sbx_conn *c, const sbx_msg *m)
{
	sbx_stream *s = sbx_streams_get(&c->streams, m->stream);
	if (!s && c->cfg.role == SBX_ROLE_HOST)
		protocol_error(c, "%s for stream %u, which has no request", sbx_msg_name(m->type),
			       m->stream);
	return s;
}

/* The stream a DATA or END is for, after checking that its fd flows this
 * way (fd 0 toward the agent, 1 and 2 toward the host) and is not ended. */
static sbx_stream *data_stream(sbx_conn *c, const sbx_msg *m)
{
	int fd_ok = c->cfg.role == SBX_ROLE_AGENT ? m->fd == SBX_FD_IN : m->fd != SBX_FD_IN;
	if (!fd_ok) {
		protocol_error(c, "%s on fd %d is not allowed in this direction", sbx_msg_name(m->type), m->fd);
		return NULL;
	}
	sbx_stream *s = stream_for(c, m);
	if (s && (s->recv_end & (1u << m->fd))) {
		protocol_error(c, "%s on stream %u fd %d", m->type == SBX_MSG_END ? "second END" : "DATA after END", m->stream, m->fd);
		return NULL;
	}
	return s;
}

/* A PING with the next nonce (heartbeats and round-trip probes share
 * them); the nonce, or 0 when it could not be queued. */
static uint64_t send_ping(sbx_conn *c)
{
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, &c->out, SBX_MSG_PING, 0, 1) < 0)
		return 0;
	uint64_t nonce = ++c->ping_nonce;
	msgpack_pack_uint64(&w.pk, nonce);
	return sbx_frame_finish(&w, c->peer_max_frame) == 0 ? nonce : 0;
}

/* Round trips for window tuning: one PING at a time while a tuned stream
 * receives, at most every PROBE_EVERY_NS once a sample exists; a PING
 * unanswered for PROBE_LOST_NS is given up (the peer answers every PING,
 * §12, but its PONG may queue behind a lot of DATA). */
#define PROBE_EVERY_NS 1000000000ull
#define PROBE_LOST_NS 10000000000ull

static void probe_rtt(sbx_conn *c)
{
	if (!c->tune.on)
		return;
	uint64_t now = c->cfg.clock_ns();
	if (c->probe_ns && now - c->probe_ns < PROBE_LOST_NS)
		return;
	if (c->tune.rtt_ns && now - c->probed_ns < PROBE_EVERY_NS)
		return;
	c->probe_nonce = send_ping(c);
	if (c->probe_nonce)
		c->probe_ns = now;
}

static void on_pong(sbx_conn *c, const sbx_msg *m)
{
	if (!c->probe_ns || m->value != c->probe_nonce)
		return; /* a heartbeat's, or a stale one */
	uint64_t now = c->cfg.clock_ns();
	sbx_wintune_rtt(&c->tune, now - c->probe_ns);
	c->probe_ns = 0;
	c->probed_ns = now;
}

static void on_data(sbx_conn *c, sbx_msg *m)
{
	sbx_stream *s = data_stream(c, m);
	if (!s)
		return;
	if (m->flags & ~(unsigned)SBX_DATA_DEFLATE) {
		protocol_error(c, "DATA with unknown flags 0x%x", m->flags);
		return;
	}
	if (m->rawlen > SBX_CHUNK_MAX || m->rawlen > s->recv_left) {
		protocol_error(c, "DATA of %zu bytes on stream %u exceeds its window (%llu left, chunk limit %d)",
			       m->rawlen, m->stream, (unsigned long long)s->recv_left, SBX_CHUNK_MAX);
		return;
	}
	if (m->flags & SBX_DATA_DEFLATE) {
		if (!c->zin && !(c->zin = malloc(SBX_CHUNK_MAX))) {
			sbx_conn_fail(c, "out of memory inflating a chunk");
			return;
		}
		if (sbx_inflate_chunk(&c->inflater, m->data, m->len, c->zin, m->rawlen) < 0) {
			protocol_error(c, "DATA chunk on stream %u does not inflate to its declared %zu bytes",
				       m->stream, m->rawlen);
			return;
		}
		m->data = c->zin;
		m->len = m->rawlen;
	}
	s->recv_left -= m->len;
	s->recv_count[m->fd] += m->len;
	s->recv_crc[m->fd] = sbx_crc32(s->recv_crc[m->fd], m->data, m->len);
	s->recv_held += m->len;
	if (s->rwin.tuned) {
		s->recv_unacked += sbx_wintune_received(&c->tune, &s->rwin, m->len, s->recv_held, c->cfg.clock_ns());
		probe_rtt(c);
	}
	deliver(c, m);
}

static void on_end(sbx_conn *c, sbx_msg *m)
{
	sbx_stream *s = data_stream(c, m);
	if (!s)
		return;
	s->recv_end |= 1u << m->fd;
	if (m->count != s->recv_count[m->fd] || m->crc != s->recv_crc[m->fd]) {
		m->err = EBADMSG;
		snprintf(m->text, sizeof m->text,
			 "transfer check failed: peer sent %llu bytes crc32 %08x, received %llu bytes crc32 %08x",
			 (unsigned long long)m->count, m->crc,
			 (unsigned long long)s->recv_count[m->fd], s->recv_crc[m->fd]);
	}
	deliver(c, m);
}

static void on_window(sbx_conn *c, const sbx_msg *m)
{
	sbx_stream *s = stream_for(c, m);
	if (!s)
		return;
	if (m->value == 0 || m->value > (1ull << 40) || s->send_credit + m->value > (1ull << 40)) {
		protocol_error(c, "WINDOW increment %llu on stream %u is out of bounds",
			       (unsigned long long)m->value, m->stream);
		return;
	}
	s->send_credit += m->value;
	if (c->cfg.cb.on_credit)
		c->cfg.cb.on_credit(c, m->stream, c->cfg.ud);
}

static void on_request(sbx_conn *c, const sbx_msg *m)
{
	sbx_stream *s = sbx_streams_add(&c->streams, m->stream);
	if (!s) {
		protocol_error(c, "%s reuses open stream %u", sbx_msg_name(m->type), m->stream);
		return;
	}
	open_stream(c, s, m->type);
	deliver(c, m);
}

static void on_final(sbx_conn *c, const sbx_msg *m)
{
	if (!stream_for(c, m))
		return;
	deliver(c, m);
	close_stream(c, m->stream);
}

static void send_pong(sbx_conn *c, uint64_t nonce)
{
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, &c->out, SBX_MSG_PONG, 0, 1) == 0) {
		msgpack_pack_uint64(&w.pk, nonce);
		sbx_frame_finish(&w, c->peer_max_frame);
	}
}

/* ---------------------------------------------------------------- authentication */

/* Agent: the host's answer to our challenge. Nothing else is accepted
 * before a valid one, and a wrong one ends the connection. */
static void agent_on_auth(sbx_conn *c, const sbx_msg *m)
{
	if (!c->auth_waiting) {
		protocol_error(c, "unexpected AUTH (this agent %s)",
			       c->key.len ? "already accepted a proof" : "asks for no proof");
		return;
	}
	char why[200];
	if (!sbx_auth_check_proof(m->body, &c->key, c->nonce, why, sizeof why)) {
		auth_error(c, "%s", why);
		return;
	}
	c->auth_waiting = 0;
	sbx_wipe(c->nonce, sizeof c->nonce); /* one proof per connection */
}

/* Host: the agent's challenge, which comes before its HELLO. */
static void host_on_auth(sbx_conn *c, const sbx_msg *m)
{
	if (c->got_hello || c->auth_answered) {
		protocol_error(c, "AUTH %s", c->got_hello ? "after HELLO" : "challenge sent twice");
		return;
	}
	if (!c->key.len) {
		auth_error(c, "the agent asks for proof of the sandbox's secret and this session has none");
		return;
	}
	uint8_t nonce[SBX_AUTH_NONCE_LEN];
	char why[200];
	if (sbx_auth_read_challenge(m->body, nonce, why, sizeof why) < 0) {
		protocol_error(c, "%s", why);
		return;
	}
	if (sbx_auth_pack_proof(&c->out, &c->key, nonce) < 0)
		sbx_conn_fail(c, "out of memory answering the agent's AUTH");
	c->auth_answered = 1;
}

static void on_auth(sbx_conn *c, const sbx_msg *m)
{
	if (m->stream != 0)
		protocol_error(c, "AUTH on stream %u", m->stream);
	else if (c->cfg.role == SBX_ROLE_AGENT)
		agent_on_auth(c, m);
	else
		host_on_auth(c, m);
}

static void dispatch(sbx_conn *c, sbx_msg *m)
{
	if (m->type == SBX_MSG_AUTH) {
		on_auth(c, m);
		return;
	}
	if (c->auth_waiting && m->type != SBX_MSG_GOAWAY) {
		auth_error(c, "%s before AUTH: this agent serves only a host that proves it holds the sandbox's secret",
			   sbx_msg_name(m->type));
		return;
	}
	if (!c->got_hello && m->type != SBX_MSG_HELLO) {
		protocol_error(c, "first message is %s, expected HELLO", sbx_msg_name(m->type));
		return;
	}
	if (!allowed(c, m->type)) {
		protocol_error(c, "%s is not allowed toward the %s", sbx_msg_name(m->type),
			       c->cfg.role == SBX_ROLE_HOST ? "host" : "agent");
		return;
	}
	int conn_level = m->type <= SBX_MSG_AUTH;
	if (conn_level != (m->stream == 0)) {
		protocol_error(c, "%s on stream %u", sbx_msg_name(m->type), m->stream);
		return;
	}
	switch (m->type) {
	case SBX_MSG_HELLO: on_hello(c, m); return;
	case SBX_MSG_PING: send_pong(c, m->value); return;
	case SBX_MSG_PONG: on_pong(c, m); return;
	case SBX_MSG_GOAWAY:
		sbx_conn_fail(c, "%s closed the connection: %s (%s)",
			      c->cfg.role == SBX_ROLE_HOST ? "agent" : "host", m->text, m->code);
		snprintf(c->error_code, sizeof c->error_code, "%s", m->code);
		return;
	case SBX_MSG_DATA: on_data(c, m); return;
	case SBX_MSG_END: on_end(c, m); return;
	case SBX_MSG_WINDOW: on_window(c, m); return;
	case SBX_MSG_EXIT:
	case SBX_MSG_RESULT:
	case SBX_MSG_ERROR: on_final(c, m); return;
	case SBX_MSG_SIGNAL:
	case SBX_MSG_CANCEL:
	case SBX_MSG_RESIZE:
		if (sbx_streams_get(&c->streams, m->stream))
			deliver(c, m);
		return;
	default: on_request(c, m); return;
	}
}

static void handle_frame(sbx_conn *c, const uint8_t *p, size_t n)
{
	sbx_msg m;
	char err[200];
	if (sbx_msg_decode(p, n, &c->unpacked, &m, err, sizeof err) < 0)
		protocol_error(c, "%s", err);
	else
		dispatch(c, &m);
	msgpack_unpacked_destroy(&c->unpacked);
}

/* ---------------------------------------------------------------- sending */

const uint8_t *sbx_conn_out(sbx_conn *c, size_t *len)
{
	*len = sbx_buf_size(&c->out);
	return sbx_buf_head(&c->out);
}

void sbx_conn_out_consume(sbx_conn *c, size_t n)
{
	sbx_buf_consume(&c->out, n);
	c->bytes_out += n;
	if (c->cfg.clock_ns)
		sbx_adapt_wrote(&c->adapt, c->cfg.clock_ns(), n, sbx_buf_size(&c->out));
}

size_t sbx_conn_out_size(const sbx_conn *c) { return sbx_buf_size(&c->out); }

uint32_t sbx_conn_new_stream_id(sbx_conn *c)
{
	do {
		c->next_stream++;
		if (c->next_stream == 0)
			c->next_stream = 1;
	} while (sbx_streams_get(&c->streams, c->next_stream));
	return c->next_stream;
}

msgpack_packer *sbx_conn_begin_map(sbx_conn *c, int type, uint32_t stream, unsigned npairs)
{
	if (sbx_frame_begin(&c->w, &c->out, type, stream, 1) < 0)
		return NULL;
	msgpack_pack_map(&c->w.pk, npairs);
	c->w_type = type;
	c->w_stream = stream;
	return &c->w.pk;
}

int sbx_conn_finish(sbx_conn *c)
{
	if (sbx_frame_finish(&c->w, c->peer_max_frame) < 0)
		return -1;
	if (sbx_msg_is_request(c->w_type)) {
		sbx_stream *s = sbx_streams_add(&c->streams, c->w_stream);
		if (!s)
			return -1;
		open_stream(c, s, c->w_type);
	} else if (sbx_msg_is_final(c->w_type)) {
		close_stream(c, c->w_stream);
	}
	return 0;
}

int sbx_conn_send_signal(sbx_conn *c, uint32_t stream, int signo)
{
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, &c->out, SBX_MSG_SIGNAL, stream, 1) < 0)
		return -1;
	msgpack_pack_int(&w.pk, signo);
	return sbx_frame_finish(&w, c->peer_max_frame);
}

int sbx_conn_send_resize(sbx_conn *c, uint32_t stream, unsigned rows, unsigned cols)
{
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, &c->out, SBX_MSG_RESIZE, stream, 2) < 0)
		return -1;
	msgpack_pack_uint32(&w.pk, rows);
	msgpack_pack_uint32(&w.pk, cols);
	return sbx_frame_finish(&w, c->peer_max_frame);
}

int sbx_conn_send_cancel(sbx_conn *c, uint32_t stream)
{
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, &c->out, SBX_MSG_CANCEL, stream, 0) < 0)
		return -1;
	return sbx_frame_finish(&w, c->peer_max_frame);
}

int sbx_conn_send_error(sbx_conn *c, uint32_t stream, int err, const char *code, const char *fmt, ...)
{
	char text[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, &c->out, SBX_MSG_ERROR, stream, 3) < 0)
		return -1;
	msgpack_pack_int(&w.pk, err);
	sbx_pack_str(&w.pk, code);
	sbx_pack_str(&w.pk, text);
	close_stream(c, stream);
	return sbx_frame_finish(&w, c->peer_max_frame);
}

/* Deflates p into c->zout when the compression mode says so and it
 * shrinks; returns the deflated length, or 0 to send p raw. */
static size_t maybe_deflate(sbx_conn *c, const uint8_t *p, size_t n)
{
	int try_deflate = sbx_adapt_try_deflate(&c->adapt);
	if (try_deflate && !c->zout)
		c->zout = malloc(SBX_CHUNK_MAX);
	size_t z = 0;
	uint64_t ns = 0; /* how long deflating took; 0 when not tried */
	if (try_deflate && c->zout) {
		int timed = c->cfg.clock_ns && !sbx_deflater_skips(&c->deflater, n);
		uint64_t t0 = timed ? c->cfg.clock_ns() : 0;
		z = sbx_deflate_chunk(&c->deflater, p, n, c->zout, SBX_CHUNK_MAX);
		if (timed)
			ns = c->cfg.clock_ns() - t0 + 1;
	}
	sbx_adapt_chunk(&c->adapt, n, z, ns);
	return z;
}

static int send_chunk(sbx_conn *c, uint32_t stream, int fd, const uint8_t *p, size_t n)
{
	const uint8_t *payload = p;
	size_t plen = n;
	unsigned flags = 0;
	size_t z = maybe_deflate(c, p, n);
	if (z > 0) {
		payload = c->zout;
		plen = z;
		flags = SBX_DATA_DEFLATE;
	}
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, &c->out, SBX_MSG_DATA, stream, 4) < 0)
		return -1;
	msgpack_pack_uint8(&w.pk, (uint8_t)fd);
	msgpack_pack_uint8(&w.pk, (uint8_t)flags);
	msgpack_pack_bin(&w.pk, plen);
	msgpack_pack_bin_body(&w.pk, payload, plen);
	msgpack_pack_uint32(&w.pk, (uint32_t)n);
	return sbx_frame_finish(&w, c->peer_max_frame);
}

static void count_sent(sbx_stream *s, int fd, const uint8_t *p, size_t n)
{
	s->sent_crc[fd] = sbx_crc32(s->sent_crc[fd], p, n);
	s->sent_count[fd] += n;
	s->send_credit -= n;
}

long sbx_conn_send_data(sbx_conn *c, uint32_t stream, int fd, const uint8_t *p, size_t n)
{
	sbx_stream *s = sbx_streams_get(&c->streams, stream);
	if (!s || fd < 0 || fd > 2)
		return -1;
	size_t sent = 0;
	while (sent < n && s->send_credit > 0) {
		size_t k = n - sent;
		if (k > SBX_CHUNK_MAX)
			k = SBX_CHUNK_MAX;
		if (k > s->send_credit)
			k = (size_t)s->send_credit;
		if (send_chunk(c, stream, fd, p + sent, k) < 0)
			return -1;
		count_sent(s, fd, p + sent, k);
		sent += k;
	}
	return (long)sent;
}

/* A raw DATA frame with fixed-width fields, so its header can be written
 * before the payload's length is known: length prefix, fixarray(6), type,
 * uint32 stream, fd, flags 0, bin32 length | payload | uint32 rawlen. */
#define DATA_HEAD 18
#define DATA_TAIL 5

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint8_t *sbx_conn_data_begin(sbx_conn *c, uint32_t stream, size_t *room)
{
	*room = 0;
	sbx_stream *s = sbx_streams_get(&c->streams, stream);
	if (!s || s->send_credit == 0)
		return NULL;
	size_t n = s->send_credit < SBX_CHUNK_MAX ? (size_t)s->send_credit : SBX_CHUNK_MAX;
	if (sbx_buf_reserve(&c->out, DATA_HEAD + n + DATA_TAIL) < 0)
		return NULL;
	*room = n;
	return c->out.data + c->out.len + DATA_HEAD;
}

int sbx_conn_data_commit(sbx_conn *c, uint32_t stream, int fd, size_t n)
{
	sbx_stream *s = sbx_streams_get(&c->streams, stream);
	if (!s || fd < 0 || fd > 2 || n > s->send_credit || n > SBX_CHUNK_MAX)
		return -1;
	if (n == 0)
		return 0;
	uint8_t *frame = c->out.data + c->out.len;
	uint8_t *p = frame + DATA_HEAD;
	count_sent(s, fd, p, n);
	/* Deflating writes a normal frame over this one (from c->zout). */
	size_t z = maybe_deflate(c, p, n);
	if (z > 0) {
		sbx_frame_writer w;
		if (sbx_frame_begin(&w, &c->out, SBX_MSG_DATA, stream, 4) < 0)
			return -1;
		msgpack_pack_uint8(&w.pk, (uint8_t)fd);
		msgpack_pack_uint8(&w.pk, SBX_DATA_DEFLATE);
		msgpack_pack_bin(&w.pk, z);
		msgpack_pack_bin_body(&w.pk, c->zout, z);
		msgpack_pack_uint32(&w.pk, (uint32_t)n);
		return sbx_frame_finish(&w, c->peer_max_frame);
	}
	put_be32(frame, (uint32_t)(DATA_HEAD - 4 + n + DATA_TAIL));
	frame[4] = 0x96; /* fixarray of 6 */
	frame[5] = SBX_MSG_DATA;
	frame[6] = 0xce; /* uint32 */
	put_be32(frame + 7, stream);
	frame[11] = (uint8_t)fd;
	frame[12] = 0;
	frame[13] = 0xc6; /* bin32 */
	put_be32(frame + 14, (uint32_t)n);
	p[n] = 0xce;
	put_be32(p + n + 1, (uint32_t)n);
	c->out.len += DATA_HEAD + n + DATA_TAIL;
	return 0;
}

int sbx_conn_send_end(sbx_conn *c, uint32_t stream, int fd)
{
	sbx_stream *s = sbx_streams_get(&c->streams, stream);
	if (!s || fd < 0 || fd > 2 || (s->sent_end & (1u << fd)))
		return -1;
	s->sent_end |= 1u << fd;
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, &c->out, SBX_MSG_END, stream, 3) < 0)
		return -1;
	msgpack_pack_uint8(&w.pk, (uint8_t)fd);
	msgpack_pack_uint64(&w.pk, s->sent_count[fd]);
	msgpack_pack_uint32(&w.pk, s->sent_crc[fd]);
	return sbx_frame_finish(&w, c->peer_max_frame);
}

uint64_t sbx_conn_credit(sbx_conn *c, uint32_t stream)
{
	sbx_stream *s = sbx_streams_get(&c->streams, stream);
	return s ? s->send_credit : 0;
}

/* ---------------------------------------------------------------- flow control */

/* Grants are batched: one WINDOW per quarter of the stream's window. A
 * tuned window may add its growth to the grant or withhold a shrink's debt
 * (window.h). */
void sbx_conn_consumed(sbx_conn *c, uint32_t stream, size_t n)
{
	sbx_stream *s = sbx_streams_get(&c->streams, stream);
	if (!s || n == 0)
		return;
	s->recv_held -= n < s->recv_held ? n : s->recv_held;
	s->recv_unacked += sbx_wintune_consumed(&s->rwin, n);
	if (s->recv_unacked == 0 || s->recv_unacked < s->rwin.size / 4)
		return;
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, &c->out, SBX_MSG_WINDOW, stream, 1) < 0)
		return;
	msgpack_pack_uint64(&w.pk, s->recv_unacked);
	if (sbx_frame_finish(&w, c->peer_max_frame) < 0)
		return;
	s->recv_left += s->recv_unacked;
	s->recv_unacked = 0;
}

uint64_t sbx_conn_recv_window(sbx_conn *c, uint32_t stream)
{
	sbx_stream *s = sbx_streams_get(&c->streams, stream);
	return s ? s->rwin.size : 0;
}

uint64_t sbx_conn_recv_window_total(const sbx_conn *c) { return c->tune.total; }
uint64_t sbx_conn_rtt_ns(const sbx_conn *c) { return c->tune.rtt_ns; }

int sbx_fixed_window_env(void)
{
	const char *v = getenv("SBX_FIXED_WINDOW");
	return v && v[0] && strcmp(v, "0") != 0;
}

int sbx_conn_has_stream(sbx_conn *c, uint32_t stream)
{
	return sbx_streams_get(&c->streams, stream) != NULL;
}

/* ---------------------------------------------------------------- heartbeats */

int sbx_conn_tick(sbx_conn *c, uint64_t now)
{
	if (c->failed)
		return -1;
	if (c->last_rx == 0)
		c->last_rx = c->last_tx = now;
	if (c->bytes_in != c->seen_in) {
		c->seen_in = c->bytes_in;
		c->last_rx = now;
	}
	if (c->bytes_out != c->seen_out || sbx_buf_size(&c->out) > 0) {
		c->seen_out = c->bytes_out;
		c->last_tx = now;
	}
	if (c->cfg.dead_ms && now - c->last_rx >= c->cfg.dead_ms) {
		sbx_conn_fail(c, "%s sent nothing for %llu ms (connection dead)",
			      c->cfg.role == SBX_ROLE_HOST ? "agent" : "host",
			      (unsigned long long)(now - c->last_rx));
		return -1;
	}
	if (c->cfg.ping_ms && c->sent_hello && now - c->last_tx >= c->cfg.ping_ms) {
		send_ping(c);
		c->last_tx = now;
	}
	return 0;
}

uint64_t sbx_conn_tick_due(const sbx_conn *c)
{
	uint64_t due = UINT64_MAX;
	if (c->failed || c->last_rx == 0)
		return 0;
	if (c->cfg.dead_ms)
		due = c->last_rx + c->cfg.dead_ms;
	if (c->cfg.ping_ms && c->sent_hello && c->last_tx + c->cfg.ping_ms < due)
		due = c->last_tx + c->cfg.ping_ms;
	return due;
}

void sbx_conn_set_user(sbx_conn *c, uint32_t stream, void *user)
{
	sbx_stream *s = sbx_streams_get(&c->streams, stream);
	if (s)
		s->user = user;
}

void *sbx_conn_user(sbx_conn *c, uint32_t stream)
{
	sbx_stream *s = sbx_streams_get(&c->streams, stream);
	return s ? s->user : NULL;
}
