/* test_conn.c — common/conn.c: the sans-I/O connection state machine.
 *
 * A host conn and an agent conn talk to each other in memory: what one
 * queues in sbx_conn_out is fed to the other with sbx_conn_feed, whole or
 * in small pieces. Covered: the handshake, requests opening streams on both
 * sides, DATA under credit-based flow control and WINDOW grants, END
 * verification (a forged END flags only its stream), compression, finals
 * closing streams, PING/PONG, and sbx_conn_tick with a fake clock. Then a
 * hostile agent feeds hand-built bytes to a host conn: every violation must
 * fail the connection with a message, queue a GOAWAY saying why, and never
 * allocate what a frame merely claims. Last, the agent's tolerance for
 * stragglers and its refusal of a reused stream id. */
#include "conn.h"
#include "test.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ------------------------------------------------------------ recording */

typedef struct side {
	sbx_conn *c;
	int hellos;
	sbx_hello peer;
	int nmsg;
	int count[256];         /* messages delivered, per type */
	uint32_t last_stream;
	int last_type;
	sbx_buf data[3];        /* DATA payload received, per fd */
	int deflated;           /* DATA messages that arrived deflated */
	int ends;
	int end_err[16];
	int end_fd[16];
	uint32_t end_stream[16];
	char end_text[512];
	int credits;
	uint32_t credit_stream;
	int auto_consume;       /* grant received DATA back at once */
	char cmd[64];           /* "cmd" of the last request */
	int final_had_stream;   /* the stream was still open during its final */
	int err;                /* ERROR: errno/code/text */
	char code[32];
	char text[512];
	uint64_t signo;
} side;

static void on_hello(sbx_conn *c, const sbx_hello *peer, void *ud)
{
	side *s = ud;
	(void)c;
	s->hellos++;
	s->peer = *peer;
}

static void on_msg(sbx_conn *c, const sbx_msg *m, void *ud)
{
	side *s = ud;
	s->nmsg++;
	s->count[m->type & 0xff]++;
	s->last_type = m->type;
	s->last_stream = m->stream;
	switch (m->type) {
	case SBX_MSG_DATA:
		sbx_buf_append(&s->data[m->fd], m->data, m->len);
		if (m->flags & SBX_DATA_DEFLATE)
			s->deflated++;
		if (m->len != m->rawlen)
			s->err = -1; /* inflated length must equal the declared one */
		if (s->auto_consume)
			sbx_conn_consumed(c, m->stream, m->len);
		break;
	case SBX_MSG_END:
		if (s->ends < 16) {
			s->end_err[s->ends] = m->err;
			s->end_fd[s->ends] = m->fd;
			s->end_stream[s->ends] = m->stream;
		}
		s->ends++;
		snprintf(s->end_text, sizeof s->end_text, "%s", m->text);
		break;
	case SBX_MSG_EXIT:
	case SBX_MSG_RESULT:
		s->final_had_stream = sbx_conn_has_stream(c, m->stream);
		break;
	case SBX_MSG_ERROR:
		s->final_had_stream = sbx_conn_has_stream(c, m->stream);
		s->err = m->err;
		snprintf(s->code, sizeof s->code, "%s", m->code);
		snprintf(s->text, sizeof s->text, "%s", m->text);
		break;
	case SBX_MSG_SIGNAL:
		s->signo = m->value;
		break;
	default:
		if (sbx_msg_is_request(m->type))
			sbx_map_str(m->body, "cmd", s->cmd, sizeof s->cmd);
	}
}

static void on_credit(sbx_conn *c, uint32_t stream, void *ud)
{
	side *s = ud;
	(void)c;
	s->credits++;
	s->credit_stream = stream;
}

static void side_free(side *s)
{
	sbx_conn_free(s->c);
	for (int i = 0; i < 3; i++)
		sbx_buf_free(&s->data[i]);
	memset(s, 0, sizeof *s);
}

static sbx_conn_config base_cfg(sbx_role role, side *s)
{
	sbx_conn_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.role = role;
	if (role == SBX_ROLE_AGENT) {
		strcpy(cfg.hello.version, "agent-1.2.3");
		strcpy(cfg.hello.boot_id, "3f1c2d4e-boot");
		strcpy(cfg.hello.arch, "aarch64");
		cfg.hello.pid = 4242;
		cfg.hello.uid = 0;
		cfg.hello.caps = SBX_CAP_USER | SBX_CAP_ATTACH;
	} else {
		strcpy(cfg.hello.version, "host-9");
		strcpy(cfg.hello.arch, "x86_64");
		cfg.hello.pid = 77;
		cfg.hello.uid = 1000;
	}
	cfg.cb.on_hello = on_hello;
	cfg.cb.on_msg = on_msg;
	cfg.cb.on_credit = on_credit;
	cfg.ud = s;
	return cfg;
}

/* ------------------------------------------------------------ shuttling */

/* Moves everything `from` has queued into `to`, in pieces of `piece`
 * bytes (0 = all at once). 1 if bytes moved, 0 if none, -1 if to failed. */
static int pump(sbx_conn *from, sbx_conn *to, size_t piece)
{
	size_t n;
	const uint8_t *p = sbx_conn_out(from, &n);
	if (n == 0)
		return 0;
	uint8_t *copy = malloc(n);
	memcpy(copy, p, n);
	sbx_conn_out_consume(from, n);
	int rc = 1;
	for (size_t off = 0; off < n;) {
		size_t k = piece && piece < n - off ? piece : n - off;
		if (sbx_conn_feed(to, copy + off, k) < 0) {
			rc = -1;
			break;
		}
		off += k;
	}
	free(copy);
	return rc;
}

typedef struct pair {
	side host, agent;
} pair;

static int shuttle(pair *p, size_t piece)
{
	for (int i = 0; i < 1000000; i++) {
		int a = pump(p->agent.c, p->host.c, piece);
		if (a < 0)
			return -1;
		int b = pump(p->host.c, p->agent.c, piece);
		if (b < 0)
			return -1;
		if (!a && !b)
			return 0;
	}
	return -2;
}

/* Both sides created from the given configs (or defaults) and shaken hands. */
static int pair_open(pair *p, const sbx_conn_config *hcfg, const sbx_conn_config *acfg, size_t piece)
{
	memset(p, 0, sizeof *p);
	sbx_conn_config h = hcfg ? *hcfg : base_cfg(SBX_ROLE_HOST, &p->host);
	sbx_conn_config a = acfg ? *acfg : base_cfg(SBX_ROLE_AGENT, &p->agent);
	h.ud = &p->host;
	a.ud = &p->agent;
	p->host.c = sbx_conn_new(&h);
	p->agent.c = sbx_conn_new(&a);
	if (!p->host.c || !p->agent.c)
		return -1;
	if (shuttle(p, piece) < 0)
		return -1;
	return sbx_conn_ready(p->host.c) && sbx_conn_ready(p->agent.c) ? 0 : -1;
}

static void pair_close(pair *p)
{
	side_free(&p->host);
	side_free(&p->agent);
}

/* Host opens a request of `type` with {"cmd": cmd}. 0 or -1. */
static uint32_t open_request(pair *p, int type, const char *cmd)
{
	uint32_t id = sbx_conn_new_stream_id(p->host.c);
	msgpack_packer *pk = sbx_conn_begin_map(p->host.c, type, id, 1);
	if (!pk)
		return 0;
	sbx_pack_kv_str(pk, "cmd", cmd);
	if (sbx_conn_finish(p->host.c) < 0)
		return 0;
	return id;
}

/* ------------------------------------------------------------ frames */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Decoded frames (scalar fields only: bodies are gone afterwards). */
typedef struct frames {
	int n;
	sbx_msg m[64];
	size_t bytes;
} frames;

/* Splits bytes into frames and decodes each; -1 if any is malformed. */
static int parse(const uint8_t *p, size_t n, frames *f)
{
	memset(f, 0, sizeof *f);
	f->bytes = n;
	size_t off = 0;
	while (off < n) {
		if (n - off < 4)
			return -1;
		uint32_t len = be32(p + off);
		if (len > n - off - 4)
			return -1;
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		char err[200];
		sbx_msg m;
		int rc = sbx_msg_decode(p + off + 4, len, &u, &m, err, sizeof err);
		msgpack_unpacked_destroy(&u);
		if (rc < 0)
			return -1;
		m.body = NULL;
		m.data = NULL;
		if (f->n < 64)
			f->m[f->n] = m;
		f->n++;
		off += 4 + len;
	}
	return 0;
}

static int parse_out(sbx_conn *c, frames *f)
{
	size_t n;
	const uint8_t *p = sbx_conn_out(c, &n);
	return parse(p, n, f);
}

static void f_data(sbx_buf *b, uint32_t stream, unsigned fd, unsigned flags, const void *payload,
		   size_t plen, uint64_t rawlen)
{
	sbx_frame_writer w;
	sbx_frame_begin(&w, b, SBX_MSG_DATA, stream, 4);
	msgpack_pack_uint8(&w.pk, (uint8_t)fd);
	msgpack_pack_uint8(&w.pk, (uint8_t)flags);
	msgpack_pack_bin(&w.pk, plen);
	msgpack_pack_bin_body(&w.pk, payload, plen);
	msgpack_pack_uint64(&w.pk, rawlen);
	sbx_frame_finish(&w, 1u << 30);
}

static void f_end(sbx_buf *b, uint32_t stream, unsigned fd, uint64_t count, uint32_t crc)
{
	sbx_frame_writer w;
	sbx_frame_begin(&w, b, SBX_MSG_END, stream, 3);
	msgpack_pack_uint8(&w.pk, (uint8_t)fd);
	msgpack_pack_uint64(&w.pk, count);
	msgpack_pack_uint32(&w.pk, crc);
	sbx_frame_finish(&w, 1u << 30);
}

/* PING/PONG/WINDOW/SIGNAL: [type, stream, value] */
static void f_value(sbx_buf *b, int type, uint32_t stream, uint64_t v)
{
	sbx_frame_writer w;
	sbx_frame_begin(&w, b, type, stream, 1);
	msgpack_pack_uint64(&w.pk, v);
	sbx_frame_finish(&w, 1u << 30);
}

static void f_map(sbx_buf *b, int type, uint32_t stream)
{
	sbx_frame_writer w;
	sbx_frame_begin(&w, b, type, stream, 1);
	msgpack_pack_map(&w.pk, 1);
	sbx_pack_kv_int(&w.pk, "code", 0);
	sbx_frame_finish(&w, 1u << 30);
}

static void f_errmsg(sbx_buf *b, int type, uint32_t stream, int err, const char *code, const char *text)
{
	sbx_frame_writer w;
	sbx_frame_begin(&w, b, type, stream, 3);
	msgpack_pack_int(&w.pk, err);
	sbx_pack_str(&w.pk, code);
	sbx_pack_str(&w.pk, text);
	sbx_frame_finish(&w, 1u << 30);
}

/* A HELLO as a peer of `role` would send it, with overrides. */
typedef struct hello_spec {
	uint64_t proto;
	uint64_t max_frame;
	uint64_t window;
	int no_proto;
} hello_spec;

static void f_hello(sbx_buf *b, const char *role, hello_spec h)
{
	sbx_frame_writer w;
	sbx_frame_begin(&w, b, SBX_MSG_HELLO, 0, 1);
	msgpack_pack_map(&w.pk, h.no_proto ? 5 : 6);
	if (!h.no_proto)
		sbx_pack_kv_uint(&w.pk, "proto", h.proto);
	sbx_pack_kv_str(&w.pk, "role", role);
	sbx_pack_kv_str(&w.pk, "version", "evil-0");
	sbx_pack_kv_uint(&w.pk, "max_frame", h.max_frame);
	sbx_pack_kv_uint(&w.pk, "window", h.window);
	sbx_pack_str(&w.pk, "caps");
	msgpack_pack_array(&w.pk, 1);
	sbx_pack_str(&w.pk, "deflate");
	sbx_frame_finish(&w, 1u << 30);
}

static const hello_spec good_hello = {SBX_PROTO_VERSION, SBX_DEFAULT_MAX_FRAME, SBX_DEFAULT_WINDOW, 0};

/* Raw deflate of n bytes (for hand-made compressed DATA). */
static uint8_t *raw_deflate(const uint8_t *in, size_t n, size_t *out_len)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);
	size_t cap = deflateBound(&z, (uLong)n);
	uint8_t *out = malloc(cap);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_FINISH);
	*out_len = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

static uint8_t *text_bytes(size_t n)
{
	static const char line[] = "total 48\ndrwxr-xr-x  2 root root 4096 Nov 23 10:06 agent\n";
	uint8_t *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)line[(i * 7 / 5) % (sizeof line - 1)];
	return p;
}

static uint8_t *random_bytes(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n);
	uint64_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 32);
	}
	return p;
}

/* Heap bytes in use (ASan's count when running under it). */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));
static size_t heap_in_use(void)
{
	if (__sanitizer_get_current_allocated_bytes)
		return __sanitizer_get_current_allocated_bytes();
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/* ------------------------------------------------------------ handshake */

static void test_handshake(void)
{
	static const size_t pieces[] = {0, 1, 3, 5};
	for (size_t i = 0; i < 4; i++) {
		pair p;
		memset(&p, 0, sizeof p);
		sbx_conn_config h = base_cfg(SBX_ROLE_HOST, &p.host);
		sbx_conn_config a = base_cfg(SBX_ROLE_AGENT, &p.agent);
		h.hello.window = 65536;
		a.hello.max_frame = 4 << 20;
		p.host.c = sbx_conn_new(&h);
		p.agent.c = sbx_conn_new(&a);
		CHECK(p.host.c && p.agent.c);
		/* The agent speaks first; the host says nothing until then. */
		CHECK_EQ_INT(sbx_conn_out_size(p.host.c), 0);
		CHECK(sbx_conn_out_size(p.agent.c) > 0);
		frames f;
		CHECK_EQ_INT(parse_out(p.agent.c, &f), 0);
		CHECK_EQ_INT(f.n, 1);
		CHECK_EQ_INT(f.m[0].type, SBX_MSG_HELLO);
		CHECK(!sbx_conn_ready(p.agent.c));
		CHECK(sbx_conn_peer(p.host.c) == NULL);

		CHECK_EQ_INT(pump(p.agent.c, p.host.c, pieces[i]), 1);
		CHECK_EQ_INT(p.host.hellos, 1);
		CHECK(sbx_conn_ready(p.host.c));
		CHECK_EQ_INT(p.host.peer.proto, SBX_PROTO_VERSION);
		CHECK_EQ_STR(p.host.peer.version, "agent-1.2.3");
		CHECK_EQ_STR(p.host.peer.boot_id, "3f1c2d4e-boot");
		CHECK_EQ_STR(p.host.peer.arch, "aarch64");
		CHECK_EQ_INT(p.host.peer.pid, 4242);
		CHECK_EQ_INT(p.host.peer.uid, 0);
		CHECK_EQ_INT(p.host.peer.max_frame, 4 << 20);
		CHECK_EQ_INT(p.host.peer.window, SBX_DEFAULT_WINDOW);
		CHECK_EQ_INT(p.host.peer.caps, SBX_CAP_DEFLATE | SBX_CAP_USER | SBX_CAP_ATTACH);
		CHECK(sbx_conn_peer(p.host.c) != NULL);
		CHECK_EQ_STR(sbx_conn_peer(p.host.c)->boot_id, "3f1c2d4e-boot");

		/* The host answered with its own HELLO. */
		CHECK_EQ_INT(parse_out(p.host.c, &f), 0);
		CHECK_EQ_INT(f.n, 1);
		CHECK_EQ_INT(f.m[0].type, SBX_MSG_HELLO);
		CHECK_EQ_INT(pump(p.host.c, p.agent.c, pieces[i]), 1);
		CHECK_EQ_INT(p.agent.hellos, 1);
		CHECK(sbx_conn_ready(p.agent.c));
		CHECK_EQ_STR(p.agent.peer.version, "host-9");
		CHECK_EQ_INT(p.agent.peer.pid, 77);
		CHECK_EQ_INT(p.agent.peer.uid, 1000);
		CHECK_EQ_INT(p.agent.peer.window, 65536);
		CHECK_EQ_INT(p.agent.peer.max_frame, SBX_DEFAULT_MAX_FRAME);
		CHECK_EQ_INT(p.agent.peer.caps, SBX_CAP_DEFLATE);
		CHECK_EQ_INT(p.agent.peer.compress, 0);
		/* nothing more to say */
		CHECK_EQ_INT(shuttle(&p, 0), 0);
		CHECK(sbx_conn_error(p.host.c) == NULL);
		CHECK(sbx_conn_error(p.agent.c) == NULL);
		CHECK_EQ_INT(p.host.nmsg + p.agent.nmsg, 0);
		pair_close(&p);
	}
}

/* A tiny max_frame is raised to the minimum a 64 KiB chunk needs. */
static void test_max_frame_floor(void)
{
	pair p;
	memset(&p, 0, sizeof p);
	sbx_conn_config a = base_cfg(SBX_ROLE_AGENT, &p.agent);
	a.hello.max_frame = 100;
	CHECK_EQ_INT(pair_open(&p, NULL, &a, 0), 0);
	CHECK_EQ_INT(p.host.peer.max_frame, SBX_MIN_MAX_FRAME);
	pair_close(&p);
}

/* ------------------------------------------------------------ streams */

static void test_request_opens_stream(void)
{
	pair p;
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 0), 0);
	uint32_t a = open_request(&p, SBX_MSG_EXEC, "ls -l");
	uint32_t b = open_request(&p, SBX_MSG_READ, "/etc/passwd");
	CHECK(a != 0 && b != 0 && a != b);
	CHECK(sbx_conn_has_stream(p.host.c, a));
	CHECK(!sbx_conn_has_stream(p.agent.c, a));
	CHECK_EQ_INT(sbx_conn_open_streams(p.host.c), 2);
	CHECK_EQ_INT(shuttle(&p, 1), 0);
	CHECK(sbx_conn_has_stream(p.agent.c, a));
	CHECK(sbx_conn_has_stream(p.agent.c, b));
	CHECK_EQ_INT(sbx_conn_open_streams(p.agent.c), 2);
	CHECK_EQ_INT(p.agent.count[SBX_MSG_EXEC], 1);
	CHECK_EQ_INT(p.agent.count[SBX_MSG_READ], 1);
	CHECK_EQ_STR(p.agent.cmd, "/etc/passwd");
	CHECK_EQ_INT(p.agent.last_stream, b);
	/* Credits on both sides come from the other side's HELLO window. */
	CHECK_EQ_INT(sbx_conn_credit(p.agent.c, a), SBX_DEFAULT_WINDOW);
	CHECK_EQ_INT(sbx_conn_credit(p.host.c, a), SBX_DEFAULT_WINDOW);
	CHECK_EQ_INT(sbx_conn_credit(p.host.c, 12345), 0);
	/* user pointers per stream */
	int tag;
	sbx_conn_set_user(p.host.c, a, &tag);
	CHECK(sbx_conn_user(p.host.c, a) == &tag);
	CHECK(sbx_conn_user(p.host.c, b) == NULL);
	sbx_conn_set_user(p.host.c, 999, &tag); /* no such stream: ignored */
	CHECK(sbx_conn_user(p.host.c, 999) == NULL);
	/* Fresh ids skip open ones */
	uint32_t c = sbx_conn_new_stream_id(p.host.c);
	CHECK(c != a && c != b && c != 0);
	pair_close(&p);
}

/* DATA under flow control: the sender takes only what credit allows, the
 * receiver's WINDOW (batched at a quarter of the window) restores it. */
static void test_data_credit(void)
{
	static const size_t pieces[] = {0, 1, 777};
	for (size_t pi = 0; pi < 3; pi++) {
		pair p;
		memset(&p, 0, sizeof p);
		sbx_conn_config h = base_cfg(SBX_ROLE_HOST, &p.host);
		h.hello.window = 16384; /* what the agent may send per stream */
		CHECK_EQ_INT(pair_open(&p, &h, NULL, pieces[pi]), 0);
		uint32_t s = open_request(&p, SBX_MSG_EXEC, "cat");
		CHECK_EQ_INT(shuttle(&p, pieces[pi]), 0);
		CHECK_EQ_INT(sbx_conn_credit(p.agent.c, s), 16384);

		size_t total = 100000;
		uint8_t *src = random_bytes(total, 7);
		long n = sbx_conn_send_data(p.agent.c, s, SBX_FD_OUT, src, total);
		CHECK_EQ_INT(n, 16384);
		CHECK_EQ_INT(sbx_conn_credit(p.agent.c, s), 0);
		/* no credit: nothing taken, nothing queued */
		size_t before = sbx_conn_out_size(p.agent.c);
		CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, s, SBX_FD_OUT, src + n, total - n), 0);
		CHECK_EQ_INT(sbx_conn_out_size(p.agent.c), before);
		CHECK_EQ_INT(shuttle(&p, pieces[pi]), 0);
		CHECK_EQ_INT(sbx_buf_size(&p.host.data[1]), 16384);
		CHECK_EQ_INT(p.host.count[SBX_MSG_DATA], 1);

		/* Below a quarter of the window: no WINDOW yet. */
		sbx_conn_consumed(p.host.c, s, 1000);
		CHECK_EQ_INT(sbx_conn_out_size(p.host.c), 0);
		sbx_conn_consumed(p.host.c, s, 3095);
		CHECK_EQ_INT(sbx_conn_out_size(p.host.c), 0);
		sbx_conn_consumed(p.host.c, s, 1);
		frames f;
		CHECK_EQ_INT(parse_out(p.host.c, &f), 0);
		CHECK_EQ_INT(f.n, 1);
		CHECK_EQ_INT(f.m[0].type, SBX_MSG_WINDOW);
		CHECK_EQ_INT(f.m[0].stream, s);
		CHECK_EQ_INT(f.m[0].value, 4096);
		CHECK_EQ_INT(shuttle(&p, pieces[pi]), 0);
		CHECK_EQ_INT(p.agent.credits, 1);
		CHECK_EQ_INT(p.agent.credit_stream, s);
		CHECK_EQ_INT(sbx_conn_credit(p.agent.c, s), 4096);
		/* Consumed and unknown streams / zero amounts are ignored. */
		sbx_conn_consumed(p.host.c, 4242, 100000);
		sbx_conn_consumed(p.host.c, s, 0);
		CHECK_EQ_INT(sbx_conn_out_size(p.host.c), 0);

		/* Now run the rest through with the host consuming at once. */
		p.host.auto_consume = 1;
		sbx_conn_consumed(p.host.c, s, 16384 - 4096);
		CHECK_EQ_INT(shuttle(&p, pieces[pi]), 0);
		CHECK_EQ_INT(sbx_conn_credit(p.agent.c, s), 16384);
		size_t sent = (size_t)n;
		int rounds = 0;
		while (sent < total) {
			long k = sbx_conn_send_data(p.agent.c, s, SBX_FD_OUT, src + sent, total - sent);
			CHECK(k > 0);
			CHECK(k <= 16384);
			sent += (size_t)k;
			CHECK_EQ_INT(shuttle(&p, pieces[pi]), 0);
			rounds++;
		}
		CHECK(rounds >= 5);
		CHECK_EQ_INT(sbx_buf_size(&p.host.data[1]), total);
		CHECK(memcmp(sbx_buf_head(&p.host.data[1]), src, total) == 0);
		CHECK_EQ_INT(sbx_buf_size(&p.host.data[2]), 0);
		CHECK(sbx_conn_error(p.host.c) == NULL && sbx_conn_error(p.agent.c) == NULL);

		/* send_data refuses unknown streams and bad fds */
		CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, 999, 1, src, 10), -1);
		CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, s, 3, src, 10), -1);
		CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, s, -1, src, 10), -1);
		free(src);
		pair_close(&p);
	}
}

/* Zero-copy sends: begin offers min(credit, 64 KiB) of room inside the
 * queue, commit sends what was filled (0: nothing), with counts, CRC and
 * credit exactly as send_data; with compression the chunk is deflated
 * over the reserved frame. Text and random, raw and ALWAYS. */
static void test_data_zero_copy(void)
{
	for (int mode = 0; mode < 2; mode++) {
		pair p;
		memset(&p, 0, sizeof p);
		sbx_conn_config h = base_cfg(SBX_ROLE_HOST, &p.host);
		h.hello.window = 100000;
		h.hello.compress = mode ? SBX_COMPRESS_ALWAYS : SBX_COMPRESS_NEVER;
		CHECK_EQ_INT(pair_open(&p, &h, NULL, 0), 0);
		uint32_t s = open_request(&p, SBX_MSG_READ, "f");
		CHECK_EQ_INT(shuttle(&p, 0), 0);
		size_t total = 100000;
		uint8_t *txt = text_bytes(total / 2), *rnd = random_bytes(total / 2, 3);
		uint8_t *all = malloc(total);
		memcpy(all, txt, total / 2);
		memcpy(all + total / 2, rnd, total / 2);
		size_t room, sent = 0;
		/* an empty commit sends nothing */
		CHECK(sbx_conn_data_begin(p.agent.c, s, &room) != NULL);
		CHECK_EQ_INT(room, 65536);
		CHECK_EQ_INT(sbx_conn_data_commit(p.agent.c, s, SBX_FD_OUT, 0), 0);
		CHECK_EQ_INT(sbx_conn_out_size(p.agent.c), 0);
		uint8_t *dst;
		while ((dst = sbx_conn_data_begin(p.agent.c, s, &room)) != NULL) {
			size_t k = total - sent < room ? total - sent : room;
			if (k > 30000)
				k = 30000; /* fill part of the room */
			memcpy(dst, all + sent, k);
			CHECK_EQ_INT(sbx_conn_data_commit(p.agent.c, s, SBX_FD_OUT, k), 0);
			sent += k;
		}
		CHECK_EQ_INT(room, 0); /* the credit is used up: exactly the window */
		CHECK_EQ_INT(sent, total);
		CHECK_EQ_INT(sbx_conn_credit(p.agent.c, s), 0);
		CHECK_EQ_INT(sbx_conn_data_commit(p.agent.c, s, SBX_FD_OUT, 1), -1); /* over the credit */
		CHECK_EQ_INT(sbx_conn_send_end(p.agent.c, s, SBX_FD_OUT), 0);
		CHECK_EQ_INT(shuttle(&p, 0), 0);
		CHECK_EQ_INT(sbx_buf_size(&p.host.data[1]), total);
		CHECK(memcmp(sbx_buf_head(&p.host.data[1]), all, total) == 0);
		CHECK_EQ_INT(p.host.ends, 1);
		CHECK_EQ_INT(p.host.end_err[0], 0);
		if (mode)
			CHECK(p.host.deflated >= 1); /* the text part went deflated */
		else
			CHECK_EQ_INT(p.host.deflated, 0);
		CHECK(sbx_conn_error(p.host.c) == NULL);
		CHECK(sbx_conn_data_begin(p.agent.c, 999, &room) == NULL);
		CHECK_EQ_INT(sbx_conn_data_commit(p.agent.c, 999, SBX_FD_OUT, 1), -1);
		free(txt);
		free(rnd);
		free(all);
		pair_close(&p);
	}
}

/* Large sends are cut into chunks of at most 64 KiB. */
static void test_data_chunking(void)
{
	pair p;
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 0), 0);
	uint32_t s = open_request(&p, SBX_MSG_WRITE, "/tmp/f");
	size_t total = 200000;
	uint8_t *src = random_bytes(total, 3);
	CHECK_EQ_INT(sbx_conn_send_data(p.host.c, s, SBX_FD_IN, src, total), total);
	frames f;
	CHECK_EQ_INT(parse_out(p.host.c, &f), 0);
	CHECK_EQ_INT(f.n, 5); /* request + 4 chunks */
	CHECK_EQ_INT(f.m[1].type, SBX_MSG_DATA);
	CHECK_EQ_INT(f.m[1].len, SBX_CHUNK_MAX);
	CHECK_EQ_INT(f.m[4].len, total - 3 * SBX_CHUNK_MAX);
	CHECK_EQ_INT(sbx_conn_send_end(p.host.c, s, SBX_FD_IN), 0);
	CHECK_EQ_INT(sbx_conn_send_end(p.host.c, s, SBX_FD_IN), -1); /* only once */
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(sbx_buf_size(&p.agent.data[0]), total);
	CHECK(memcmp(sbx_buf_head(&p.agent.data[0]), src, total) == 0);
	CHECK_EQ_INT(p.agent.ends, 1);
	CHECK_EQ_INT(p.agent.end_err[0], 0);
	CHECK_EQ_INT(p.agent.end_fd[0], 0);
	free(src);
	pair_close(&p);
}

/* END carries count and CRC32: a correct one gives err 0; a forged one
 * gives EBADMSG on its stream only, and the connection stays healthy. */
static void test_end_verification(void)
{
	pair p;
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 1), 0);
	p.host.auto_consume = 1;
	uint32_t a = open_request(&p, SBX_MSG_EXEC, "a");
	uint32_t b = open_request(&p, SBX_MSG_EXEC, "b");
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	uint8_t *src = text_bytes(5000);
	CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, a, SBX_FD_OUT, src, 3000), 3000);
	CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, a, SBX_FD_ERR, src + 3000, 2000), 2000);
	CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, b, SBX_FD_OUT, src, 5000), 5000);
	CHECK_EQ_INT(sbx_conn_send_end(p.agent.c, a, SBX_FD_OUT), 0);
	CHECK_EQ_INT(shuttle(&p, 1), 0);
	CHECK_EQ_INT(p.host.ends, 1);
	CHECK_EQ_INT(p.host.end_err[0], 0);
	CHECK_EQ_INT(p.host.end_stream[0], a);
	CHECK_EQ_INT(p.host.end_fd[0], 1);

	/* Forged END for a's stderr: right count, wrong CRC. */
	uint32_t crc = (uint32_t)crc32(0, src + 3000, 2000);
	sbx_buf bad = {0};
	f_end(&bad, a, SBX_FD_ERR, 2000, crc ^ 1);
	CHECK_EQ_INT(sbx_conn_feed(p.host.c, sbx_buf_head(&bad), sbx_buf_size(&bad)), 0);
	CHECK_EQ_INT(p.host.ends, 2);
	CHECK_EQ_INT(p.host.end_err[1], EBADMSG);
	CHECK_EQ_INT(p.host.end_stream[1], a);
	CHECK(strstr(p.host.end_text, "transfer check failed") != NULL);
	CHECK(sbx_conn_error(p.host.c) == NULL);
	CHECK(sbx_conn_has_stream(p.host.c, a));
	CHECK_EQ_INT(sbx_conn_out_size(p.host.c), 0); /* no GOAWAY */

	/* Forged END for b's stdout: right CRC, wrong count. */
	crc = (uint32_t)crc32(0, src, 5000);
	sbx_buf_clear(&bad);
	f_end(&bad, b, SBX_FD_OUT, 5001, crc);
	CHECK_EQ_INT(sbx_conn_feed(p.host.c, sbx_buf_head(&bad), sbx_buf_size(&bad)), 0);
	CHECK_EQ_INT(p.host.end_err[2], EBADMSG);
	CHECK_EQ_INT(p.host.end_stream[2], b);
	/* b's stderr END (no data on it: count 0, crc 0) is still fine. */
	sbx_buf_clear(&bad);
	f_end(&bad, b, SBX_FD_ERR, 0, 0);
	CHECK_EQ_INT(sbx_conn_feed(p.host.c, sbx_buf_head(&bad), sbx_buf_size(&bad)), 0);
	CHECK_EQ_INT(p.host.end_err[3], 0);

	/* The connection goes on: more data, a final, pings. */
	uint32_t c = open_request(&p, SBX_MSG_EXEC, "c");
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, c, SBX_FD_OUT, src, 100), 100);
	CHECK_EQ_INT(sbx_conn_send_end(p.agent.c, c, SBX_FD_OUT), 0);
	msgpack_packer *pk = sbx_conn_begin_map(p.agent.c, SBX_MSG_EXIT, a, 1);
	sbx_pack_kv_int(pk, "code", 0);
	CHECK_EQ_INT(sbx_conn_finish(p.agent.c), 0);
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(p.host.ends, 5);
	CHECK_EQ_INT(p.host.end_err[4], 0);
	CHECK_EQ_INT(p.host.count[SBX_MSG_EXIT], 1);
	CHECK(!sbx_conn_has_stream(p.host.c, a));
	CHECK(sbx_conn_error(p.host.c) == NULL && sbx_conn_error(p.agent.c) == NULL);
	sbx_buf_free(&bad);
	free(src);
	pair_close(&p);
}

/* The host asks for compression (config and HELLO compress = ALWAYS):
 * the agent deflates text output, which arrives identical; random data
 * goes raw. The host deflates what it sends too. */
static void test_compression(void)
{
	static const size_t pieces[] = {0, 1};
	for (size_t pi = 0; pi < 2; pi++) {
		pair p;
		memset(&p, 0, sizeof p);
		sbx_conn_config h = base_cfg(SBX_ROLE_HOST, &p.host);
		h.compress = SBX_COMPRESS_ALWAYS;
		h.hello.compress = SBX_COMPRESS_ALWAYS;
		CHECK_EQ_INT(pair_open(&p, &h, NULL, pieces[pi]), 0);
		CHECK_EQ_INT(p.agent.peer.compress, SBX_COMPRESS_ALWAYS);
		p.host.auto_consume = 1;
		p.agent.auto_consume = 1;
		uint32_t s = open_request(&p, SBX_MSG_EXEC, "cat big.log");
		CHECK_EQ_INT(shuttle(&p, 0), 0);

		size_t total = 300000;
		uint8_t *txt = text_bytes(total);
		CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, s, SBX_FD_OUT, txt, total), total);
		CHECK_EQ_INT(sbx_conn_send_end(p.agent.c, s, SBX_FD_OUT), 0);
		frames f;
		CHECK_EQ_INT(parse_out(p.agent.c, &f), 0);
		CHECK(f.bytes < total / 4); /* deflated on the wire */
		int deflated = 0;
		for (int i = 0; i < f.n && i < 64; i++)
			if (f.m[i].type == SBX_MSG_DATA && (f.m[i].flags & SBX_DATA_DEFLATE))
				deflated++;
		CHECK_EQ_INT(deflated, 5); /* 300000 bytes = 5 chunks */
		CHECK_EQ_INT(shuttle(&p, pieces[pi]), 0);
		CHECK_EQ_INT(p.host.deflated, 5);
		CHECK_EQ_INT(p.host.err, 0);
		CHECK_EQ_INT(sbx_buf_size(&p.host.data[1]), total);
		CHECK(memcmp(sbx_buf_head(&p.host.data[1]), txt, total) == 0);
		CHECK_EQ_INT(p.host.ends, 1);
		CHECK_EQ_INT(p.host.end_err[0], 0); /* CRC over the raw bytes */

		/* Random stderr: not compressible, sent raw, still identical. */
		uint8_t *rnd = random_bytes(70000, 9);
		CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, s, SBX_FD_ERR, rnd, 70000), 70000);
		CHECK_EQ_INT(parse_out(p.agent.c, &f), 0);
		CHECK(f.bytes > 70000);
		for (int i = 0; i < f.n; i++)
			CHECK(!(f.m[i].flags & SBX_DATA_DEFLATE));
		CHECK_EQ_INT(shuttle(&p, pieces[pi]), 0);
		CHECK_EQ_INT(sbx_buf_size(&p.host.data[2]), 70000);
		CHECK(memcmp(sbx_buf_head(&p.host.data[2]), rnd, 70000) == 0);

		/* host -> agent stdin is compressed as well */
		CHECK_EQ_INT(sbx_conn_send_data(p.host.c, s, SBX_FD_IN, txt, 100000), 100000);
		CHECK_EQ_INT(parse_out(p.host.c, &f), 0);
		CHECK(f.bytes < 100000 / 4);
		CHECK_EQ_INT(shuttle(&p, pieces[pi]), 0);
		CHECK_EQ_INT(p.agent.deflated, 2);
		CHECK_EQ_INT(sbx_buf_size(&p.agent.data[0]), 100000);
		CHECK(memcmp(sbx_buf_head(&p.agent.data[0]), txt, 100000) == 0);
		CHECK(sbx_conn_error(p.host.c) == NULL && sbx_conn_error(p.agent.c) == NULL);
		free(txt);
		free(rnd);
		pair_close(&p);
	}

	/* Without the host asking, the agent sends raw. */
	pair p;
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 0), 0);
	uint32_t s = open_request(&p, SBX_MSG_EXEC, "x");
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	uint8_t *txt = text_bytes(50000);
	CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, s, SBX_FD_OUT, txt, 50000), 50000);
	CHECK(sbx_conn_out_size(p.agent.c) > 50000);
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(p.host.deflated, 0);
	free(txt);
	pair_close(&p);
}

/* Finals close the stream on both sides (after the callback has run). */
static void test_final_closes_stream(void)
{
	pair p;
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 0), 0);
	uint32_t a = open_request(&p, SBX_MSG_EXEC, "true");
	uint32_t b = open_request(&p, SBX_MSG_STAT, "/nope");
	uint32_t c = open_request(&p, SBX_MSG_READ, "/etc/hostname");
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(sbx_conn_open_streams(p.agent.c), 3);

	msgpack_packer *pk = sbx_conn_begin_map(p.agent.c, SBX_MSG_EXIT, a, 1);
	CHECK(pk != NULL);
	sbx_pack_kv_int(pk, "code", 0);
	CHECK_EQ_INT(sbx_conn_finish(p.agent.c), 0);
	CHECK(!sbx_conn_has_stream(p.agent.c, a));
	CHECK_EQ_INT(shuttle(&p, 1), 0);
	CHECK_EQ_INT(p.host.count[SBX_MSG_EXIT], 1);
	CHECK_EQ_INT(p.host.final_had_stream, 1);
	CHECK(!sbx_conn_has_stream(p.host.c, a));

	CHECK_EQ_INT(sbx_conn_send_error(p.agent.c, b, ENOENT, "not_found", "no such file: %s", "/nope"), 0);
	CHECK(!sbx_conn_has_stream(p.agent.c, b));
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(p.host.count[SBX_MSG_ERROR], 1);
	CHECK_EQ_INT(p.host.err, ENOENT);
	CHECK_EQ_STR(p.host.code, "not_found");
	CHECK_EQ_STR(p.host.text, "no such file: /nope");
	CHECK(!sbx_conn_has_stream(p.host.c, b));

	pk = sbx_conn_begin_map(p.agent.c, SBX_MSG_RESULT, c, 1);
	sbx_pack_kv_uint(pk, "size", 12);
	CHECK_EQ_INT(sbx_conn_finish(p.agent.c), 0);
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(p.host.count[SBX_MSG_RESULT], 1);
	CHECK_EQ_INT(sbx_conn_open_streams(p.host.c), 0);
	CHECK_EQ_INT(sbx_conn_open_streams(p.agent.c), 0);
	CHECK(sbx_conn_error(p.host.c) == NULL && sbx_conn_error(p.agent.c) == NULL);
	pair_close(&p);
}

/* SIGNAL and CANCEL reach the agent on open streams only. */
static void test_signal_cancel(void)
{
	pair p;
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 0), 0);
	uint32_t s = open_request(&p, SBX_MSG_EXEC, "sleep 100");
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(sbx_conn_send_signal(p.host.c, s, 15), 0);
	CHECK_EQ_INT(sbx_conn_send_cancel(p.host.c, s), 0);
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(p.agent.count[SBX_MSG_SIGNAL], 1);
	CHECK_EQ_INT(p.agent.signo, 15);
	CHECK_EQ_INT(p.agent.count[SBX_MSG_CANCEL], 1);
	/* The agent finishes; a late signal for it is ignored. */
	CHECK_EQ_INT(sbx_conn_send_error(p.agent.c, s, ECANCELED, "cancelled", "cancelled"), 0);
	CHECK_EQ_INT(sbx_conn_send_signal(p.host.c, s, 9), 0);
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(p.agent.count[SBX_MSG_SIGNAL], 1);
	CHECK(sbx_conn_error(p.agent.c) == NULL && sbx_conn_error(p.host.c) == NULL);
	pair_close(&p);
}

/* ------------------------------------------------------------ heartbeats */

static void test_ping_pong(void)
{
	pair p;
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 0), 0);
	sbx_buf b = {0};
	f_value(&b, SBX_MSG_PING, 0, 0xdeadbeefcafeull);
	CHECK_EQ_INT(sbx_conn_feed(p.agent.c, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	frames f;
	CHECK_EQ_INT(parse_out(p.agent.c, &f), 0);
	CHECK_EQ_INT(f.n, 1);
	CHECK_EQ_INT(f.m[0].type, SBX_MSG_PONG);
	CHECK(f.m[0].value == 0xdeadbeefcafeull);
	/* the host answers pings too, and PONGs need no answer */
	CHECK_EQ_INT(sbx_conn_feed(p.host.c, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	CHECK_EQ_INT(parse_out(p.host.c, &f), 0);
	CHECK_EQ_INT(f.n, 1);
	CHECK_EQ_INT(f.m[0].type, SBX_MSG_PONG);
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(sbx_conn_out_size(p.host.c) + sbx_conn_out_size(p.agent.c), 0);
	CHECK_EQ_INT(p.host.nmsg + p.agent.nmsg, 0); /* not handed to the owner */
	CHECK(sbx_conn_error(p.agent.c) == NULL && sbx_conn_error(p.host.c) == NULL);
	sbx_buf_free(&b);
	pair_close(&p);
}

static void test_tick(void)
{
	pair p;
	memset(&p, 0, sizeof p);
	sbx_conn_config h = base_cfg(SBX_ROLE_HOST, &p.host);
	h.ping_ms = 1000;
	h.dead_ms = 5000;
	sbx_conn_config a = base_cfg(SBX_ROLE_AGENT, &p.agent);
	a.dead_ms = 3000;
	CHECK_EQ_INT(pair_open(&p, &h, &a, 0), 0);
	uint64_t t = 100000;
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, t), 0);
	CHECK_EQ_INT(sbx_conn_tick(p.agent.c, t), 0);
	CHECK_EQ_INT(sbx_conn_out_size(p.host.c), 0);
	/* Quiet for less than ping_ms: nothing. */
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, t + 999), 0);
	CHECK_EQ_INT(sbx_conn_out_size(p.host.c), 0);
	/* ping_ms of send silence: a PING. */
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, t + 1000), 0);
	frames f;
	CHECK_EQ_INT(parse_out(p.host.c, &f), 0);
	CHECK_EQ_INT(f.n, 1);
	CHECK_EQ_INT(f.m[0].type, SBX_MSG_PING);
	uint64_t nonce = f.m[0].value;
	/* While output is pending no second PING is queued. */
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, t + 2500), 0);
	CHECK_EQ_INT(parse_out(p.host.c, &f), 0);
	CHECK_EQ_INT(f.n, 1);
	/* The agent answers; the host's tick sees traffic. */
	CHECK_EQ_INT(pump(p.host.c, p.agent.c, 0), 1);
	CHECK_EQ_INT(sbx_conn_tick(p.agent.c, t + 2500), 0);
	CHECK_EQ_INT(parse_out(p.agent.c, &f), 0);
	CHECK_EQ_INT(f.m[0].type, SBX_MSG_PONG);
	CHECK(f.m[0].value == nonce);
	CHECK_EQ_INT(pump(p.agent.c, p.host.c, 0), 1);
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, t + 3000), 0);
	/* The next PING has a new nonce. */
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, t + 4000), 0);
	CHECK_EQ_INT(parse_out(p.host.c, &f), 0);
	CHECK_EQ_INT(f.n, 1);
	CHECK(f.m[0].value != nonce);
	sbx_conn_out_consume(p.host.c, sbx_conn_out_size(p.host.c));
	/* The agent never answers: dead dead_ms after the last receipt
	 * (the PONG, seen at t+3000). */
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, t + 7999), 0);
	CHECK(sbx_conn_error(p.host.c) == NULL);
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, t + 8000), -1);
	CHECK(sbx_conn_error(p.host.c) != NULL);
	CHECK(strstr(sbx_conn_error(p.host.c), "dead") != NULL);
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, t + 8001), -1);
	/* The agent (no ping_ms) only watches: it last heard at t+2500 */
	CHECK_EQ_INT(sbx_conn_tick(p.agent.c, t + 5499), 0);
	CHECK_EQ_INT(sbx_conn_out_size(p.agent.c), 0);
	CHECK_EQ_INT(sbx_conn_tick(p.agent.c, t + 5500), -1);
	CHECK(strstr(sbx_conn_error(p.agent.c), "host sent nothing") != NULL);
	pair_close(&p);

	/* No ping_ms/dead_ms: tick never does anything. */
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 0), 0);
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, 1), 0);
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, 1ull << 40), 0);
	CHECK_EQ_INT(sbx_conn_out_size(p.host.c), 0);
	pair_close(&p);
}

/* ------------------------------------------------------------ hostile agent */

/* A host conn that has accepted a valid agent HELLO (and whose own HELLO
 * was taken off its queue). window: the host's per-stream window. */
static sbx_conn *hostile_host(side *s, uint64_t window, int handshake)
{
	memset(s, 0, sizeof *s);
	sbx_conn_config cfg = base_cfg(SBX_ROLE_HOST, s);
	cfg.hello.window = window;
	s->c = sbx_conn_new(&cfg);
	if (handshake) {
		side tmp;
		memset(&tmp, 0, sizeof tmp);
		sbx_conn_config acfg = base_cfg(SBX_ROLE_AGENT, &tmp);
		sbx_conn *agent = sbx_conn_new(&acfg);
		size_t n;
		const uint8_t *p = sbx_conn_out(agent, &n);
		int rc = sbx_conn_feed(s->c, p, n);
		sbx_conn_free(agent);
		if (rc < 0 || !sbx_conn_ready(s->c))
			return NULL;
		sbx_conn_out_consume(s->c, sbx_conn_out_size(s->c));
	}
	return s->c;
}

static char g_why[600];

/* Feeds bytes (in pieces of `piece`, 0 = whole) expecting the connection
 * to fail with `what` in its error and in a queued GOAWAY. 0, or -1 with
 * the reason in g_why. */
static int expect_fail(sbx_conn *c, const uint8_t *p, size_t n, size_t piece, const char *what,
		       int want_goaway)
{
	int rc = 0;
	size_t before = sbx_conn_out_size(c);
	for (size_t off = 0; off < n && rc == 0;) {
		size_t k = piece && piece < n - off ? piece : n - off;
		rc = sbx_conn_feed(c, p + off, k); /* may fail before the last piece */
		off += k;
	}
	if (rc != -1) {
		snprintf(g_why, sizeof g_why, "feed returned %d, expected -1 (%s)", rc, what);
		return -1;
	}
	const char *e = sbx_conn_error(c);
	if (!e || !strstr(e, what)) {
		snprintf(g_why, sizeof g_why, "error \"%.400s\" lacks \"%.100s\"", e ? e : "(null)", what);
		return -1;
	}
	frames f;
	if (parse_out(c, &f) < 0) {
		snprintf(g_why, sizeof g_why, "queued output does not parse");
		return -1;
	}
	if (!want_goaway) {
		if (sbx_conn_out_size(c) != before) {
			snprintf(g_why, sizeof g_why, "something was queued, expected nothing");
			return -1;
		}
	} else {
		if (f.n < 1 || f.n > 64 || f.m[f.n - 1].type != SBX_MSG_GOAWAY) {
			snprintf(g_why, sizeof g_why, "no GOAWAY queued (%d frames)", f.n);
			return -1;
		}
		const sbx_msg *g = &f.m[f.n - 1];
		if (g->err != EPROTO || strcmp(g->code, "protocol") != 0 || !strstr(g->text, what)) {
			snprintf(g_why, sizeof g_why, "GOAWAY %d %s \"%.400s\" lacks \"%.100s\"", g->err,
				 g->code, g->text, what);
			return -1;
		}
	}
	/* Failure is sticky, and nothing more is queued. */
	size_t q = sbx_conn_out_size(c);
	uint8_t ping[16];
	sbx_buf b = {0};
	f_value(&b, SBX_MSG_PING, 0, 1);
	memcpy(ping, sbx_buf_head(&b), sbx_buf_size(&b));
	rc = sbx_conn_feed(c, ping, sbx_buf_size(&b));
	sbx_buf_free(&b);
	if (rc != -1 || sbx_conn_out_size(c) != q || sbx_conn_ready(c)) {
		snprintf(g_why, sizeof g_why, "not sticky after failure");
		return -1;
	}
	return 0;
}

#define EXPECT_FAIL(c, p, n, piece, what)                                  \
	do {                                                               \
		if (expect_fail(c, p, n, piece, what, 1) < 0) {            \
			test_fail(__FILE__, __LINE__, g_why);              \
			return;                                            \
		}                                                          \
	} while (0)

#define EXPECT_FAIL_NO_GOAWAY(c, p, n, piece, what)                        \
	do {                                                               \
		if (expect_fail(c, p, n, piece, what, 0) < 0) {            \
			test_fail(__FILE__, __LINE__, g_why);              \
			return;                                            \
		}                                                          \
	} while (0)

static void test_hostile_huge_length(void)
{
	static const size_t pieces[] = {0, 1, 2};
	for (size_t i = 0; i < 3; i++) {
		side s;
		sbx_conn *h = hostile_host(&s, 0, 1);
		CHECK(h != NULL);
		size_t heap = heap_in_use();
		static const uint8_t bytes[] = {0xff, 0xff, 0xff, 0xff, 0x93, 0x02, 0x00, 0x01};
		EXPECT_FAIL(h, bytes, sizeof bytes, pieces[i], "frame of 4294967295 bytes (limit 1048576)");
		CHECK(heap_in_use() < heap + 65536);
		side_free(&s);
	}
}

static void test_hostile_frame_limits(void)
{
	side s;
	sbx_conn *h = hostile_host(&s, 0, 1);
	CHECK(h != NULL);
	uint32_t over = SBX_DEFAULT_MAX_FRAME + 1;
	uint8_t hdr[4] = {(uint8_t)(over >> 24), (uint8_t)(over >> 16), (uint8_t)(over >> 8), (uint8_t)over};
	EXPECT_FAIL(h, hdr, 4, 1, "limit 1048576");
	side_free(&s);

	/* A zero-length frame */
	h = hostile_host(&s, 0, 1);
	static const uint8_t zero[8] = {0};
	EXPECT_FAIL(h, zero, 8, 0, "frame of 0 bytes");
	side_free(&s);

	/* Exactly max_frame is allowed, and only what arrives is buffered. */
	h = hostile_host(&s, 0, 1);
	size_t heap = heap_in_use();
	uint32_t max = SBX_DEFAULT_MAX_FRAME;
	uint8_t hdr2[14] = {(uint8_t)(max >> 24), (uint8_t)(max >> 16), (uint8_t)(max >> 8), (uint8_t)max};
	memset(hdr2 + 4, 0x93, 10);
	CHECK_EQ_INT(sbx_conn_feed(h, hdr2, sizeof hdr2), 0);
	CHECK(heap_in_use() < heap + 65536);
	CHECK(sbx_conn_error(h) == NULL);
	/* The peer hangs up mid-frame */
	sbx_conn_eof(h);
	CHECK(sbx_conn_error(h) != NULL);
	CHECK(strstr(sbx_conn_error(h), "in the middle of a frame") != NULL);
	CHECK_EQ_INT(sbx_conn_out_size(h), 0); /* no one to tell */
	side_free(&s);

	/* A host configured with a smaller max_frame enforces it. */
	memset(&s, 0, sizeof s);
	sbx_conn_config cfg = base_cfg(SBX_ROLE_HOST, &s);
	cfg.hello.max_frame = 200000;
	s.c = h = sbx_conn_new(&cfg);
	uint8_t hdr3[4] = {0, 0x03, 0x0d, 0x41}; /* 200001 */
	EXPECT_FAIL(h, hdr3, 4, 0, "frame of 200001 bytes (limit 200000)");
	side_free(&s);
}

static void test_hostile_eof(void)
{
	side s;
	sbx_conn *h = hostile_host(&s, 0, 1);
	CHECK(h != NULL);
	sbx_buf b = {0};
	f_value(&b, SBX_MSG_PING, 0, 5);
	/* all but the last byte of a frame, then EOF */
	CHECK_EQ_INT(sbx_conn_feed(h, sbx_buf_head(&b), sbx_buf_size(&b) - 1), 0);
	sbx_conn_out_consume(h, sbx_conn_out_size(h));
	sbx_conn_eof(h);
	CHECK(sbx_conn_error(h) != NULL);
	CHECK(strstr(sbx_conn_error(h), "in the middle of a frame") != NULL);
	side_free(&s);
	/* two bytes of a length prefix, then EOF */
	h = hostile_host(&s, 0, 1);
	CHECK_EQ_INT(sbx_conn_feed(h, (const uint8_t *)"\0\0", 2), 0);
	sbx_conn_eof(h);
	CHECK(strstr(sbx_conn_error(h), "in the middle of a frame (2 bytes") != NULL);
	side_free(&s);
	/* EOF between frames is an orderly close */
	h = hostile_host(&s, 0, 1);
	CHECK_EQ_INT(sbx_conn_feed(h, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	sbx_conn_eof(h);
	CHECK(sbx_conn_error(h) != NULL);
	CHECK(strstr(sbx_conn_error(h), "connection closed by the agent") != NULL);
	CHECK(!sbx_conn_ready(h));
	sbx_buf_free(&b);
	side_free(&s);
}

static void test_hostile_garbage(void)
{
	side s;
	sbx_conn *h = hostile_host(&s, 0, 1);
	CHECK(h != NULL);
	static const uint8_t g[] = {0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1};
	EXPECT_FAIL(h, g, sizeof g, 0, "not a valid msgpack value");
	side_free(&s);

	/* Text where a frame should be ("HTTP" is a 1.2 GB length prefix) */
	h = hostile_host(&s, 0, 1);
	static const char http[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
	EXPECT_FAIL(h, (const uint8_t *)http, sizeof http - 1, 0, "limit");
	side_free(&s);

	/* A frame with trailing bytes after its value */
	h = hostile_host(&s, 0, 1);
	static const uint8_t t[] = {0, 0, 0, 5, 0x93, 0x02, 0x00, 0x01, 0xc0};
	EXPECT_FAIL(h, t, sizeof t, 1, "trailing");
	side_free(&s);

	/* A body claiming 2^32 elements */
	h = hostile_host(&s, 0, 1);
	static const uint8_t big[] = {0, 0, 0, 8, 0x93, 0x10, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff};
	EXPECT_FAIL(h, big, sizeof big, 0, "not a valid msgpack value");
	side_free(&s);

	/* Not an array */
	h = hostile_host(&s, 0, 1);
	static const uint8_t na[] = {0, 0, 0, 1, 0x80};
	EXPECT_FAIL(h, na, sizeof na, 0, "not an array");
	side_free(&s);
}

static void test_hostile_types(void)
{
	side s;
	sbx_buf b = {0};
	/* unknown message type */
	sbx_conn *h = hostile_host(&s, 0, 1);
	CHECK(h != NULL);
	f_value(&b, 0x7e, 0, 1);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "unknown message type 126");
	side_free(&s);
	/* requests (and SIGNAL/CANCEL) are not for the host */
	static const int reqs[] = {SBX_MSG_EXEC, SBX_MSG_WRITE, SBX_MSG_READ, SBX_MSG_STAT,
				   SBX_MSG_ATTACH};
	for (size_t i = 0; i < 5; i++) {
		h = hostile_host(&s, 0, 1);
		sbx_buf_clear(&b);
		f_map(&b, reqs[i], 5);
		char what[64];
		snprintf(what, sizeof what, "%s is not allowed toward the host", sbx_msg_name(reqs[i]));
		EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, what);
		side_free(&s);
	}
	h = hostile_host(&s, 0, 1);
	sbx_buf_clear(&b);
	f_value(&b, SBX_MSG_SIGNAL, 5, 9);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "SIGNAL is not allowed toward the host");
	side_free(&s);
	/* connection-level messages on a stream, stream messages on 0 */
	h = hostile_host(&s, 0, 1);
	sbx_buf_clear(&b);
	f_value(&b, SBX_MSG_PING, 3, 9);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "PING on stream 3");
	side_free(&s);
	h = hostile_host(&s, 0, 1);
	sbx_buf_clear(&b);
	f_data(&b, 0, 1, 0, "x", 1, 1);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "DATA on stream 0");
	side_free(&s);
	h = hostile_host(&s, 0, 1);
	sbx_buf_clear(&b);
	f_map(&b, SBX_MSG_EXIT, 0);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "EXIT on stream 0");
	side_free(&s);
	sbx_buf_free(&b);
}

/* Messages for streams the host never opened. */
static void test_hostile_no_request(void)
{
	side s;
	sbx_buf b = {0};
	for (int k = 0; k < 6; k++) {
		sbx_conn *h = hostile_host(&s, 0, 1);
		CHECK(h != NULL);
		/* one open stream, so the table is not empty */
		uint32_t id = sbx_conn_new_stream_id(h);
		msgpack_packer *pk = sbx_conn_begin_map(h, SBX_MSG_EXEC, id, 0);
		CHECK(pk != NULL);
		CHECK_EQ_INT(sbx_conn_finish(h), 0);
		sbx_conn_out_consume(h, sbx_conn_out_size(h));
		uint32_t never = id + 1000;
		sbx_buf_clear(&b);
		const char *what = NULL;
		switch (k) {
		case 0: f_map(&b, SBX_MSG_EXIT, never); what = "EXIT for stream"; break;
		case 1: f_data(&b, never, 1, 0, "abc", 3, 3); what = "DATA for stream"; break;
		case 2: f_end(&b, never, 1, 0, 0); what = "END for stream"; break;
		case 3: f_value(&b, SBX_MSG_WINDOW, never, 100); what = "WINDOW for stream"; break;
		case 4: f_map(&b, SBX_MSG_RESULT, never); what = "RESULT for stream"; break;
		default:
			f_errmsg(&b, SBX_MSG_ERROR, never, 2, "nf", "x");
			what = "ERROR for stream";
		}
		char full[128];
		snprintf(full, sizeof full, "%s %u, which has no request", what, never);
		EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, full);
		CHECK(sbx_conn_has_stream(h, id)); /* the open stream is untouched */
		side_free(&s);
	}
	sbx_buf_free(&b);
}

/* Opens stream `id` on a hostile host; returns the id. */
static uint32_t hostile_open(sbx_conn *h)
{
	uint32_t id = sbx_conn_new_stream_id(h);
	sbx_conn_begin_map(h, SBX_MSG_EXEC, id, 0);
	sbx_conn_finish(h);
	sbx_conn_out_consume(h, sbx_conn_out_size(h));
	return id;
}

static void test_hostile_window(void)
{
	side s;
	sbx_buf b = {0};
	static uint8_t payload[SBX_CHUNK_MAX + 1];
	/* A window of 4096: 4096 bytes are fine, one more is not. */
	sbx_conn *h = hostile_host(&s, 4096, 1);
	CHECK(h != NULL);
	uint32_t id = hostile_open(h);
	f_data(&b, id, 1, 0, payload, 4000, 4000);
	f_data(&b, id, 2, 0, payload, 96, 96);
	CHECK_EQ_INT(sbx_conn_feed(h, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	CHECK_EQ_INT(s.count[SBX_MSG_DATA], 2);
	sbx_buf_clear(&b);
	f_data(&b, id, 1, 0, payload, 1, 1);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "exceeds its window (0 left");
	CHECK_EQ_INT(s.count[SBX_MSG_DATA], 2);
	side_free(&s);

	/* After the host grants credit back, more may come; no more than that. */
	h = hostile_host(&s, 4096, 1);
	id = hostile_open(h);
	sbx_buf_clear(&b);
	f_data(&b, id, 1, 0, payload, 4096, 4096);
	CHECK_EQ_INT(sbx_conn_feed(h, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	sbx_conn_consumed(h, id, 1024); /* quarter of the window: granted */
	CHECK(sbx_conn_out_size(h) > 0);
	sbx_buf_clear(&b);
	f_data(&b, id, 1, 0, payload, 1024, 1024);
	CHECK_EQ_INT(sbx_conn_feed(h, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	sbx_conn_out_consume(h, sbx_conn_out_size(h));
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "exceeds its window");
	side_free(&s);

	/* A raw chunk over 64 KiB, within a 1 MiB window */
	h = hostile_host(&s, 0, 1);
	id = hostile_open(h);
	sbx_buf_clear(&b);
	f_data(&b, id, 1, 0, payload, SBX_CHUNK_MAX + 1, SBX_CHUNK_MAX + 1);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "chunk limit 65536");
	side_free(&s);

	/* A deflated chunk declaring more than the window: refused before
	 * inflating anything. */
	h = hostile_host(&s, 4096, 1);
	id = hostile_open(h);
	sbx_buf_clear(&b);
	f_data(&b, id, 1, SBX_DATA_DEFLATE, "\x03\x00", 2, 5000);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "exceeds its window");
	side_free(&s);

	/* unknown DATA flag bits */
	h = hostile_host(&s, 0, 1);
	id = hostile_open(h);
	sbx_buf_clear(&b);
	f_data(&b, id, 1, 0x02, "x", 1, 1);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "unknown flags 0x2");
	side_free(&s);
	/* END for stdin is not the agent's to send */
	h = hostile_host(&s, 0, 1);
	id = hostile_open(h);
	sbx_buf_clear(&b);
	f_end(&b, id, 0, 0, 0);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "END on fd 0 is not allowed in this direction");
	side_free(&s);

	/* stdin data is not for the host */
	h = hostile_host(&s, 0, 1);
	id = hostile_open(h);
	sbx_buf_clear(&b);
	f_data(&b, id, 0, 0, "x", 1, 1);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "DATA on fd 0 is not allowed");
	side_free(&s);
	sbx_buf_free(&b);
}

static void test_hostile_window_increment(void)
{
	side s;
	sbx_buf b = {0};
	static const uint64_t bad[] = {0, (1ull << 40), UINT64_MAX, UINT64_MAX - SBX_DEFAULT_WINDOW + 1,
				       UINT64_MAX - SBX_DEFAULT_WINDOW + 2};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sbx_conn *h = hostile_host(&s, 0, 1);
		CHECK(h != NULL);
		uint32_t id = hostile_open(h);
		uint64_t credit = sbx_conn_credit(h, id);
		CHECK_EQ_INT(credit, SBX_DEFAULT_WINDOW);
		sbx_buf_clear(&b);
		f_value(&b, SBX_MSG_WINDOW, id, bad[i]);
		int rc = sbx_conn_feed(h, sbx_buf_head(&b), sbx_buf_size(&b));
		if (rc != -1) {
			char m[160];
			snprintf(m, sizeof m, "WINDOW +%llu accepted: credit %llu -> %llu",
				 (unsigned long long)bad[i], (unsigned long long)credit,
				 (unsigned long long)sbx_conn_credit(h, id));
			test_fail(__FILE__, __LINE__, m);
			side_free(&s);
			sbx_buf_free(&b);
			return;
		}
		CHECK(strstr(sbx_conn_error(h), "out of bounds") != NULL);
		CHECK_EQ_INT(s.credits, 0);
		side_free(&s);
	}
	/* A sane increment is accepted and reported. */
	sbx_conn *h = hostile_host(&s, 0, 1);
	uint32_t id = hostile_open(h);
	sbx_buf_clear(&b);
	f_value(&b, SBX_MSG_WINDOW, id, 12345);
	CHECK_EQ_INT(sbx_conn_feed(h, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	CHECK_EQ_INT(sbx_conn_credit(h, id), SBX_DEFAULT_WINDOW + 12345);
	CHECK_EQ_INT(s.credits, 1);
	side_free(&s);
	sbx_buf_free(&b);
}

/* Deflated DATA must inflate to exactly its declared length. */
static void test_hostile_deflate(void)
{
	side s;
	sbx_buf b = {0};
	size_t big = 10u << 20;
	uint8_t *zeros = calloc(1, big);
	size_t zn;
	uint8_t *bomb = raw_deflate(zeros, big, &zn);
	free(zeros);
	CHECK(zn < SBX_DEFAULT_MAX_FRAME);
	sbx_conn *h = hostile_host(&s, 0, 1);
	CHECK(h != NULL);
	uint32_t id = hostile_open(h);
	size_t heap = heap_in_use();
	f_data(&b, id, 1, SBX_DATA_DEFLATE, bomb, zn, SBX_CHUNK_MAX);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "does not inflate to its declared 65536 bytes");
	CHECK(heap_in_use() < heap + 2 * sbx_buf_size(&b) + (1u << 20));
	CHECK_EQ_INT(s.count[SBX_MSG_DATA], 0);
	side_free(&s);
	free(bomb);

	/* inflates to less than declared */
	uint8_t *txt = text_bytes(1000);
	uint8_t *z = raw_deflate(txt, 1000, &zn);
	h = hostile_host(&s, 0, 1);
	id = hostile_open(h);
	sbx_buf_clear(&b);
	f_data(&b, id, 1, SBX_DATA_DEFLATE, z, zn, 1001);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "does not inflate");
	side_free(&s);
	/* corrupt deflate stream */
	h = hostile_host(&s, 0, 1);
	id = hostile_open(h);
	sbx_buf_clear(&b);
	f_data(&b, id, 1, SBX_DATA_DEFLATE, "\x07\xff\xff\xff", 4, 1000);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "does not inflate");
	side_free(&s);
	/* exactly right is delivered inflated */
	h = hostile_host(&s, 0, 1);
	id = hostile_open(h);
	sbx_buf_clear(&b);
	f_data(&b, id, 1, SBX_DATA_DEFLATE, z, zn, 1000);
	CHECK_EQ_INT(sbx_conn_feed(h, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	CHECK_EQ_INT(sbx_buf_size(&s.data[1]), 1000);
	CHECK(memcmp(sbx_buf_head(&s.data[1]), txt, 1000) == 0);
	/* and counted for END by its inflated bytes */
	sbx_buf_clear(&b);
	f_end(&b, id, 1, 1000, (uint32_t)crc32(0, txt, 1000));
	CHECK_EQ_INT(sbx_conn_feed(h, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	CHECK_EQ_INT(s.ends, 1);
	CHECK_EQ_INT(s.end_err[0], 0);
	/* DATA after END, a second END */
	sbx_buf_clear(&b);
	f_end(&b, id, 1, 1000, (uint32_t)crc32(0, txt, 1000));
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "second END");
	side_free(&s);
	h = hostile_host(&s, 0, 1);
	id = hostile_open(h);
	sbx_buf_clear(&b);
	f_end(&b, id, 2, 0, 0);
	f_data(&b, id, 2, 0, "x", 1, 1);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "DATA after END");
	side_free(&s);
	free(txt);
	free(z);
	sbx_buf_free(&b);
}

static void test_hostile_hello(void)
{
	side s;
	sbx_buf b = {0};
	/* second HELLO */
	sbx_conn *h = hostile_host(&s, 0, 1);
	CHECK(h != NULL);
	f_hello(&b, "agent", good_hello);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "second HELLO");
	side_free(&s);

	/* a valid hand-made HELLO is accepted (control) */
	h = hostile_host(&s, 0, 0);
	sbx_buf_clear(&b);
	f_hello(&b, "agent", good_hello);
	CHECK_EQ_INT(sbx_conn_feed(h, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	CHECK(sbx_conn_ready(h));
	CHECK_EQ_STR(s.peer.version, "evil-0");
	CHECK_EQ_INT(s.peer.uid, -1); /* absent: unknown */
	side_free(&s);

	/* wrong protocol versions */
	static const uint64_t protos[] = {0, 2, 0x100000001ull, UINT64_MAX};
	for (size_t i = 0; i < 4; i++) {
		h = hostile_host(&s, 0, 0);
		sbx_buf_clear(&b);
		hello_spec hs = good_hello;
		hs.proto = protos[i];
		f_hello(&b, "agent", hs);
		EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "protocol version");
		CHECK_EQ_INT(s.hellos, 0);
		side_free(&s);
	}
	h = hostile_host(&s, 0, 0);
	sbx_buf_clear(&b);
	hello_spec hs = good_hello;
	hs.no_proto = 1;
	f_hello(&b, "agent", hs);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "protocol version");
	side_free(&s);

	/* limits out of bounds */
	static const hello_spec bounds[] = {
		{1, SBX_MIN_MAX_FRAME - 1, SBX_DEFAULT_WINDOW, 0},
		{1, 0, SBX_DEFAULT_WINDOW, 0},
		{1, SBX_DEFAULT_MAX_FRAME, 4095, 0},
		{1, SBX_DEFAULT_MAX_FRAME, 0, 0},
		{1, SBX_DEFAULT_MAX_FRAME, (1ull << 32) + 1, 0},
	};
	for (size_t i = 0; i < 5; i++) {
		h = hostile_host(&s, 0, 0);
		sbx_buf_clear(&b);
		f_hello(&b, "agent", bounds[i]);
		EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "out of bounds");
		side_free(&s);
	}

	/* anything before HELLO */
	h = hostile_host(&s, 0, 0);
	sbx_buf_clear(&b);
	f_value(&b, SBX_MSG_PING, 0, 1);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 1, "first message is PING, expected HELLO");
	side_free(&s);
	h = hostile_host(&s, 0, 0);
	sbx_buf_clear(&b);
	f_map(&b, SBX_MSG_EXIT, 2);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "expected HELLO");
	side_free(&s);
	/* HELLO with a non-map body */
	h = hostile_host(&s, 0, 0);
	sbx_buf_clear(&b);
	f_value(&b, SBX_MSG_HELLO, 0, 1);
	EXPECT_FAIL(h, sbx_buf_head(&b), sbx_buf_size(&b), 0, "malformed HELLO");
	side_free(&s);
	sbx_buf_free(&b);
}

/* A GOAWAY from the peer fails the connection with the peer's words; no
 * GOAWAY goes back. */
static void test_goaway_received(void)
{
	side s;
	sbx_buf b = {0};
	sbx_conn *h = hostile_host(&s, 0, 1);
	CHECK(h != NULL);
	f_errmsg(&b, SBX_MSG_GOAWAY, 0, ENOSPC, "disk", "disk on fire");
	EXPECT_FAIL_NO_GOAWAY(h, sbx_buf_head(&b), sbx_buf_size(&b), 1, "disk on fire");
	CHECK(strstr(sbx_conn_error(h), "agent closed the connection") != NULL);
	side_free(&s);

	/* A GOAWAY from a real peer, end to end */
	pair p;
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 0), 0);
	sbx_buf_clear(&b);
	f_data(&b, 0, 0, 0, "", 0, 0); /* DATA on stream 0: the agent objects */
	CHECK_EQ_INT(sbx_conn_feed(p.agent.c, sbx_buf_head(&b), sbx_buf_size(&b)), -1);
	CHECK_EQ_INT(shuttle(&p, 1), -1); /* the host fails on the GOAWAY */
	CHECK(sbx_conn_error(p.host.c) != NULL);
	CHECK(strstr(sbx_conn_error(p.host.c), "DATA on stream 0") != NULL);
	CHECK(strstr(sbx_conn_error(p.host.c), "(protocol)") != NULL);
	CHECK_EQ_INT(sbx_conn_out_size(p.host.c), 0);
	pair_close(&p);
	sbx_buf_free(&b);
}

/* sbx_conn_fail from the owner: sticky, no GOAWAY. */
static void test_owner_fail(void)
{
	pair p;
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 0), 0);
	sbx_conn_fail(p.host.c, "transport closed: %s", "EPIPE");
	CHECK_EQ_STR(sbx_conn_error(p.host.c), "transport closed: EPIPE");
	sbx_conn_fail(p.host.c, "second reason");
	CHECK_EQ_STR(sbx_conn_error(p.host.c), "transport closed: EPIPE");
	CHECK(!sbx_conn_ready(p.host.c));
	CHECK_EQ_INT(sbx_conn_out_size(p.host.c), 0);
	CHECK_EQ_INT(sbx_conn_tick(p.host.c, 1000), -1);
	pair_close(&p);
}

/* Several frames in one feed, and one frame split at every offset. */
static void test_framing_splits(void)
{
	pair p;
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 0), 0);
	p.host.auto_consume = 1;
	uint32_t s = open_request(&p, SBX_MSG_EXEC, "x");
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	uint8_t *src = random_bytes(3000, 1);
	/* 3 DATA frames of 1000 + END */
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, s, SBX_FD_OUT, src + i * 1000, 1000), 1000);
	CHECK_EQ_INT(sbx_conn_send_end(p.agent.c, s, SBX_FD_OUT), 0);
	size_t n;
	const uint8_t *out = sbx_conn_out(p.agent.c, &n);
	uint8_t *wire = malloc(n);
	memcpy(wire, out, n);
	sbx_conn_out_consume(p.agent.c, n);
	/* Split the whole sequence in two at every offset. */
	for (size_t cut = 0; cut <= n; cut += 7) {
		side h2;
		sbx_conn *h = hostile_host(&h2, 0, 1);
		CHECK(h != NULL);
		/* the same stream id must be open on this host */
		uint32_t id;
		do
			id = hostile_open(h);
		while (id < s);
		CHECK_EQ_INT(id, s);
		CHECK_EQ_INT(sbx_conn_feed(h, wire, cut), 0);
		CHECK_EQ_INT(sbx_conn_feed(h, wire + cut, n - cut), 0);
		CHECK_EQ_INT(sbx_buf_size(&h2.data[1]), 3000);
		CHECK(memcmp(sbx_buf_head(&h2.data[1]), src, 3000) == 0);
		CHECK_EQ_INT(h2.ends, 1);
		CHECK_EQ_INT(h2.end_err[0], 0);
		side_free(&h2);
	}
	free(wire);
	free(src);
	pair_close(&p);
}

/* ------------------------------------------------------------ agent side */

/* An agent conn that has received a valid host HELLO. */
static sbx_conn *ready_agent(side *s)
{
	memset(s, 0, sizeof *s);
	sbx_conn_config cfg = base_cfg(SBX_ROLE_AGENT, s);
	s->c = sbx_conn_new(&cfg);
	sbx_conn_out_consume(s->c, sbx_conn_out_size(s->c));
	sbx_buf b = {0};
	f_hello(&b, "host", good_hello);
	int rc = sbx_conn_feed(s->c, sbx_buf_head(&b), sbx_buf_size(&b));
	sbx_buf_free(&b);
	if (rc < 0 || !sbx_conn_ready(s->c))
		return NULL;
	/* the agent does not send a second HELLO */
	if (sbx_conn_out_size(s->c) != 0)
		return NULL;
	return s->c;
}

static void test_agent_ignores_stragglers(void)
{
	side s;
	sbx_conn *a = ready_agent(&s);
	CHECK(a != NULL);
	sbx_buf b = {0};
	f_data(&b, 99, 0, 0, "late", 4, 4);
	f_value(&b, SBX_MSG_WINDOW, 99, 4096);
	f_end(&b, 99, 0, 4, 0);
	f_value(&b, SBX_MSG_SIGNAL, 99, 9);
	{
		sbx_frame_writer w;
		sbx_frame_begin(&w, &b, SBX_MSG_CANCEL, 99, 0);
		sbx_frame_finish(&w, 1 << 20);
	}
	CHECK_EQ_INT(sbx_conn_feed(a, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	CHECK(sbx_conn_error(a) == NULL);
	CHECK_EQ_INT(s.nmsg, 0);
	CHECK_EQ_INT(s.credits, 0);
	CHECK_EQ_INT(sbx_conn_out_size(a), 0);
	CHECK_EQ_INT(sbx_conn_open_streams(a), 0);
	/* Same in 1-byte pieces */
	for (size_t i = 0; i < sbx_buf_size(&b); i++)
		CHECK_EQ_INT(sbx_conn_feed(a, sbx_buf_head(&b) + i, 1), 0);
	CHECK(sbx_conn_error(a) == NULL);
	CHECK_EQ_INT(s.nmsg, 0);
	/* The stream of a finished request: same. */
	sbx_buf_clear(&b);
	f_map(&b, SBX_MSG_EXEC, 7);
	CHECK_EQ_INT(sbx_conn_feed(a, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	CHECK_EQ_INT(s.count[SBX_MSG_EXEC], 1);
	CHECK_EQ_INT(sbx_conn_send_error(a, 7, EINTR, "cancelled", "x"), 0);
	sbx_conn_out_consume(a, sbx_conn_out_size(a));
	sbx_buf_clear(&b);
	f_data(&b, 7, 0, 0, "late", 4, 4);
	f_value(&b, SBX_MSG_WINDOW, 7, 4096);
	CHECK_EQ_INT(sbx_conn_feed(a, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	CHECK(sbx_conn_error(a) == NULL);
	CHECK_EQ_INT(s.count[SBX_MSG_DATA], 0);
	/* but stray DATA in the wrong direction is still a violation */
	sbx_buf_clear(&b);
	f_data(&b, 99, 1, 0, "out", 3, 3);
	EXPECT_FAIL(a, sbx_buf_head(&b), sbx_buf_size(&b), 0, "DATA on fd 1 is not allowed");
	sbx_buf_free(&b);
	side_free(&s);
}

static void test_agent_rejects(void)
{
	side s;
	sbx_buf b = {0};
	/* a request reusing an open stream id */
	sbx_conn *a = ready_agent(&s);
	CHECK(a != NULL);
	f_map(&b, SBX_MSG_EXEC, 5);
	CHECK_EQ_INT(sbx_conn_feed(a, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	CHECK(sbx_conn_has_stream(a, 5));
	sbx_buf_clear(&b);
	f_map(&b, SBX_MSG_READ, 5);
	EXPECT_FAIL(a, sbx_buf_head(&b), sbx_buf_size(&b), 0, "READ reuses open stream 5");
	CHECK_EQ_INT(s.count[SBX_MSG_READ], 0);
	CHECK(strstr(sbx_conn_error(a), "protocol error from host") != NULL);
	side_free(&s);

	/* finals are not for the agent */
	static const int finals[] = {SBX_MSG_EXIT, SBX_MSG_RESULT};
	for (int i = 0; i < 2; i++) {
		a = ready_agent(&s);
		sbx_buf_clear(&b);
		f_map(&b, finals[i], 5);
		EXPECT_FAIL(a, sbx_buf_head(&b), sbx_buf_size(&b), 0, "is not allowed toward the agent");
		side_free(&s);
	}
	a = ready_agent(&s);
	sbx_buf_clear(&b);
	f_errmsg(&b, SBX_MSG_ERROR, 5, 1, "x", "y");
	EXPECT_FAIL(a, sbx_buf_head(&b), sbx_buf_size(&b), 0, "ERROR is not allowed toward the agent");
	side_free(&s);

	/* END for stdout is not the host's to send */
	a = ready_agent(&s);
	sbx_buf_clear(&b);
	f_map(&b, SBX_MSG_EXEC, 5);
	f_end(&b, 5, 1, 0, 0);
	EXPECT_FAIL(a, sbx_buf_head(&b), sbx_buf_size(&b), 0, "END on fd 1 is not allowed in this direction");
	side_free(&s);

	/* a request on stream 0 */
	a = ready_agent(&s);
	sbx_buf_clear(&b);
	f_map(&b, SBX_MSG_EXEC, 0);
	EXPECT_FAIL(a, sbx_buf_head(&b), sbx_buf_size(&b), 0, "EXEC on stream 0");
	side_free(&s);

	/* the host's DATA may not exceed the agent's window either */
	a = ready_agent(&s);
	sbx_buf_clear(&b);
	f_map(&b, SBX_MSG_WRITE, 9);
	static uint8_t chunk[SBX_CHUNK_MAX];
	for (int i = 0; i < 16; i++)
		f_data(&b, 9, 0, 0, chunk, SBX_CHUNK_MAX, SBX_CHUNK_MAX);
	CHECK_EQ_INT(sbx_conn_feed(a, sbx_buf_head(&b), sbx_buf_size(&b)), 0);
	CHECK_EQ_INT(sbx_buf_size(&s.data[0]), SBX_DEFAULT_WINDOW);
	sbx_buf_clear(&b);
	f_data(&b, 9, 0, 0, chunk, 1, 1);
	EXPECT_FAIL(a, sbx_buf_head(&b), sbx_buf_size(&b), 0, "exceeds its window");
	side_free(&s);

	/* before HELLO */
	memset(&s, 0, sizeof s);
	sbx_conn_config cfg = base_cfg(SBX_ROLE_AGENT, &s);
	s.c = a = sbx_conn_new(&cfg);
	sbx_conn_out_consume(a, sbx_conn_out_size(a));
	sbx_buf_clear(&b);
	f_map(&b, SBX_MSG_EXEC, 1);
	EXPECT_FAIL(a, sbx_buf_head(&b), sbx_buf_size(&b), 0, "expected HELLO");
	side_free(&s);
	sbx_buf_free(&b);
}


/* Many streams at once with interleaved traffic, through 1-byte feeding. */
static void test_many_streams(void)
{
	pair p;
	CHECK_EQ_INT(pair_open(&p, NULL, NULL, 0), 0);
	p.host.auto_consume = 1;
	enum { N = 300 };
	uint32_t ids[N];
	for (int i = 0; i < N; i++) {
		ids[i] = open_request(&p, SBX_MSG_EXEC, "x");
		CHECK(ids[i] != 0);
	}
	CHECK_EQ_INT(shuttle(&p, 0), 0);
	CHECK_EQ_INT(sbx_conn_open_streams(p.agent.c), N);
	for (int i = 0; i < N; i++) {
		char line[32];
		int len = snprintf(line, sizeof line, "stream %u\n", ids[i]);
		CHECK_EQ_INT(sbx_conn_send_data(p.agent.c, ids[i], SBX_FD_OUT, (uint8_t *)line, (size_t)len), len);
		CHECK_EQ_INT(sbx_conn_send_end(p.agent.c, ids[i], SBX_FD_OUT), 0);
	}
	for (int i = N - 1; i >= 0; i--) {
		msgpack_packer *pk = sbx_conn_begin_map(p.agent.c, SBX_MSG_EXIT, ids[i], 1);
		sbx_pack_kv_int(pk, "code", i);
		CHECK_EQ_INT(sbx_conn_finish(p.agent.c), 0);
	}
	CHECK_EQ_INT(shuttle(&p, 1), 0);
	CHECK_EQ_INT(p.host.ends, N);
	for (int i = 0; i < 16; i++)
		CHECK_EQ_INT(p.host.end_err[i], 0);
	CHECK_EQ_INT(p.host.count[SBX_MSG_EXIT], N);
	CHECK_EQ_INT(sbx_conn_open_streams(p.host.c), 0);
	CHECK_EQ_INT(sbx_conn_open_streams(p.agent.c), 0);
	CHECK(sbx_conn_error(p.host.c) == NULL && sbx_conn_error(p.agent.c) == NULL);
	pair_close(&p);
}

int main(void)
{
	RUN(test_handshake);
	RUN(test_max_frame_floor);
	RUN(test_request_opens_stream);
	RUN(test_data_credit);
	RUN(test_data_chunking);
	RUN(test_end_verification);
	RUN(test_compression);
	RUN(test_data_zero_copy);
	RUN(test_final_closes_stream);
	RUN(test_signal_cancel);
	RUN(test_ping_pong);
	RUN(test_tick);
	RUN(test_hostile_huge_length);
	RUN(test_hostile_frame_limits);
	RUN(test_hostile_eof);
	RUN(test_hostile_garbage);
	RUN(test_hostile_types);
	RUN(test_hostile_no_request);
	RUN(test_hostile_window);
	RUN(test_hostile_window_increment);
	RUN(test_hostile_deflate);
	RUN(test_hostile_hello);
	RUN(test_goaway_received);
	RUN(test_owner_fail);
	RUN(test_framing_splits);
	RUN(test_agent_ignores_stragglers);
	RUN(test_agent_rejects);
	RUN(test_many_streams);
	return test_summary();
}
