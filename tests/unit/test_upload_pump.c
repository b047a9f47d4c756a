/* test_upload_pump.c — a session keeps feeding an upload whenever it holds
 * credit and its output queue has room.
 *
 * The agent here is a bare sbx_conn driven by hand over an in-memory
 * transport that takes every byte at once (so the transport never asks for
 * on_writable), or one that takes a little more than the host's queue
 * limit and then reports itself writable again once the agent read it
 * all (so on_writable finds the host's queue still full and drains it). With a large agent window the agent grants credit only
 * every window/4 consumed bytes, which is more than the host's queue
 * limit: a host that stops pumping once its queue drains, although it
 * still holds credit, never sends enough to earn the next grant and the
 * upload stalls (the hang window auto-tuning exposed). */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "window.h"
#include "core/internal.h"
#include "test.h"

/* ---------------------------------------------------------------- a transport that takes everything */

typedef struct mem_transport {
	sbx_transport t; /* first: the session holds a pointer to it */
	sbx_buf to_agent;
	size_t room;     /* bytes it takes before it is full (0: any number) */
	int want_write;
	int *closed; /* set on close (the session frees us) */
} mem_transport;

static long mem_write(sbx_transport *t, const uint8_t *p, size_t n)
{
	mem_transport *m = (mem_transport *)t;
	size_t free_room = m->room ? m->room - sbx_buf_size(&m->to_agent) : n;
	if (n > free_room)
		n = free_room;
	return sbx_buf_append(&m->to_agent, p, n) < 0 ? -1 : (long)n;
}

static void mem_want_write(sbx_transport *t, int on) { ((mem_transport *)t)->want_write = on; }

static void mem_close(sbx_transport *t)
{
	mem_transport *m = (mem_transport *)t;
	*m->closed = 1;
	sbx_buf_free(&m->to_agent);
	free(m);
}

static const sbx_transport_ops mem_ops = {"memory", mem_write, mem_want_write, mem_close};

/* ---------------------------------------------------------------- a hand-driven agent */

typedef struct fake_agent {
	sbx_conn *conn;
	uint64_t received;
	int ended;
} fake_agent;

/* Consumes every DATA at once (as a fast disk would) and answers END. */
static void agent_msg(sbx_conn *c, const sbx_msg *m, void *ud)
{
	fake_agent *a = ud;
	if (m->type == SBX_MSG_DATA) {
		a->received += m->len;
		sbx_conn_consumed(c, m->stream, m->len);
	} else if (m->type == SBX_MSG_END) {
		a->ended = 1;
		msgpack_packer *pk = sbx_conn_begin_map(c, SBX_MSG_RESULT, m->stream, 1);
		sbx_pack_kv_uint(pk, "size", a->received);
		sbx_conn_finish(c);
	}
}

static sbx_conn *agent_conn(fake_agent *a, uint64_t window)
{
	sbx_conn_config cfg = {
		.role = SBX_ROLE_AGENT,
		.hello = {.window = window, .uid = 1000},
		.compress = SBX_COMPRESS_NEVER,
		.cb = {.on_msg = agent_msg},
		.ud = a,
	};
	snprintf(cfg.hello.version, sizeof cfg.hello.version, "fake");
	snprintf(cfg.hello.boot_id, sizeof cfg.hello.boot_id, "0123456789abcdef0123456789abcdef");
	return sbx_conn_new(&cfg);
}

/* Moves bytes both ways until nothing moves; how many rounds moved some. */
static int shuttle(mem_transport *m, fake_agent *a)
{
	int rounds = 0;
	for (;;) {
		int moved = 0;
		if (sbx_buf_size(&m->to_agent) > 0) {
			sbx_conn_feed(a->conn, sbx_buf_head(&m->to_agent), sbx_buf_size(&m->to_agent));
			sbx_buf_clear(&m->to_agent);
			moved = 1;
		}
		size_t len;
		const uint8_t *p = sbx_conn_out(a->conn, &len);
		if (len > 0) {
			uint8_t *copy = malloc(len);
			memcpy(copy, p, len);
			sbx_conn_out_consume(a->conn, len);
			m->t.ev.on_data(m->t.ud, copy, len);
			free(copy);
			moved = 1;
		}
		if (!moved && m->want_write) {
			m->t.ev.on_writable(m->t.ud);
			moved = sbx_buf_size(&m->to_agent) > 0;
		}
		if (!moved)
			return rounds;
		rounds++;
	}
}

typedef struct upload {
	int done;
	sbx_file_result r;
} upload;

static void upload_done(void *ud, sbx_file_result *r)
{
	upload *u = ud;
	u->done = 1;
	u->r = *r;
}

/* Uploads total bytes from memory to an agent announcing window; checks
 * that every byte arrives and the call completes. */
static void check_upload(uint64_t window, size_t total, size_t room)
{
	sbx_loop *loop = sbx_loop_new();
	fake_agent a = {0};
	a.conn = agent_conn(&a, window);
	CHECK(a.conn);
	int closed = 0;
	mem_transport *m = calloc(1, sizeof *m);
	m->t.ops = &mem_ops;
	m->t.loop = loop;
	m->closed = &closed;
	m->room = room;
	sbx_error err;
	sbx_session *s = sbx_session_transport(loop, &m->t, NULL, &err);
	CHECK(s);
	shuttle(m, &a);
	CHECK(sbx_session_ready(s));

	uint8_t *data = malloc(total);
	for (size_t i = 0; i < total; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	upload u = {0};
	sbx_file_opts o = {.path = "f", .data = data, .len = total, .fd = -1, .mode = -1, .on_done = upload_done, .ud = &u};
	sbx_call *c = sbx_write_file(s, &o, &err);
	CHECK(c);
	shuttle(m, &a);
	if (!u.done)
		fprintf(stderr, "upload stalled: the agent has %llu of %zu bytes, the host holds credit\n",
			(unsigned long long)a.received, total);
	CHECK(u.done);
	CHECK_EQ_INT(a.received, total);
	CHECK(a.ended);
	CHECK(u.r.error.status == SBX_OK);
	sbx_session_close(s);
	CHECK(closed);
	sbx_conn_free(a.conn);
	free(data);
	sbx_loop_free(loop);
}

#define SOCKET_ROOM (HOST_HIGH_WATER + 64 * 1024) /* a socket buffer a little over the queue limit */

/* The old default: the agent grants every 256 KiB, the host's queue limit. */
static void test_upload_default_window(void)
{
	check_upload(SBX_DEFAULT_WINDOW, 8u << 20, 0);
	check_upload(SBX_DEFAULT_WINDOW, 8u << 20, SOCKET_ROOM);
}

/* A grown window: grants every 2 MiB, far past the host's queue limit. */
static void test_upload_large_window(void) { check_upload(8u << 20, 24u << 20, 0); }

/* The largest a tuned window gets (SBX_WINDOW_MAX, 32 MiB: grants every 8 MiB). */
static void test_upload_max_window(void) { check_upload(SBX_WINDOW_MAX, 2 * SBX_WINDOW_MAX + (8u << 20), 0); }

/* The transport fills up: on_writable must drain the queue and refill it. */
static void test_upload_full_transport(void)
{
	check_upload(8u << 20, 24u << 20, SOCKET_ROOM);
	check_upload(16u << 20, 40u << 20, SOCKET_ROOM);
}

int main(void)
{
	RUN(test_upload_default_window);
	RUN(test_upload_large_window);
	RUN(test_upload_max_window);
	RUN(test_upload_full_transport);
	return test_summary();
}
