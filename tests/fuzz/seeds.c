/* seeds.c — writes the seed corpora under tests/fuzz/corpus/ (`make
 * fuzz-seeds`; the files are committed). A real host and agent connection
 * talk in memory: the host opens the streams fuzz_conn_host.c opens, the
 * agent answers with raw and deflated output, END, EXIT, RESULT, ERROR,
 * PINGs and WINDOWs. Each direction's bytes seed a conn target; every
 * frame body seeds fuzz_msg; deflated chunks seed fuzz_chunk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chunk.h"
#include "conn.h"
#include "fuzz.h"

static sbx_buf g_to_host, g_to_agent;
static uint32_t g_ids[4]; /* the streams the host opened */

static void save(const char *target, const char *name, uint8_t stride, const uint8_t *p, size_t n)
{
	char path[256];
	snprintf(path, sizeof path, "tests/fuzz/corpus/%s", target);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "tests/fuzz/corpus/%s/%s", target, name);
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	if (stride != 0xff)
		fputc(stride, f);
	fwrite(p, 1, n, f);
	fclose(f);
}

static void h_hello(sbx_conn *c, const sbx_hello *peer, void *ud)
{
	(void)peer;
	(void)ud;
	static const int types[] = {SBX_MSG_EXEC, SBX_MSG_EXEC, SBX_MSG_WRITE, SBX_MSG_READ};
	for (int i = 0; i < 4; i++) {
		uint32_t id = g_ids[i] = sbx_conn_new_stream_id(c);
		msgpack_packer *pk = sbx_conn_begin_map(c, types[i], id, 1);
		sbx_pack_kv_str(pk, "path", "x");
		sbx_conn_finish(c);
	}
}
static void h_msg(sbx_conn *c, const sbx_msg *m, void *ud)
{
	(void)ud;
	if (m->type == SBX_MSG_DATA)
		sbx_conn_consumed(c, m->stream, m->len);
}
static void a_msg(sbx_conn *c, const sbx_msg *m, void *ud)
{
	(void)ud;
	if (m->type == SBX_MSG_DATA)
		sbx_conn_consumed(c, m->stream, m->len);
}

/* Moves bytes both ways until both sides are quiet, recording them. */
static void pump(sbx_conn *h, sbx_conn *a)
{
	for (int moved = 1; moved;) {
		moved = 0;
		size_t len;
		const uint8_t *p = sbx_conn_out(a, &len);
		if (len) {
			sbx_buf_append(&g_to_host, p, len);
			sbx_conn_feed(h, p, len);
			sbx_conn_out_consume(a, len);
			moved = 1;
		}
		p = sbx_conn_out(h, &len);
		if (len) {
			sbx_buf_append(&g_to_agent, p, len);
			sbx_conn_feed(a, p, len);
			sbx_conn_out_consume(h, len);
			moved = 1;
		}
	}
}

static void conversation(int compress)
{
	sbx_buf_clear(&g_to_host);
	sbx_buf_clear(&g_to_agent);
	sbx_conn_config hc = {.role = SBX_ROLE_HOST, .compress = compress, .hello = {.compress = compress},
			      .ping_ms = 5, .cb = {.on_hello = h_hello, .on_msg = h_msg}};
	sbx_conn_config ac = {.role = SBX_ROLE_AGENT, .compress = compress, .cb = {.on_msg = a_msg}};
	snprintf(ac.hello.boot_id, sizeof ac.hello.boot_id, "0123456789abcdef");
	snprintf(ac.hello.version, sizeof ac.hello.version, "seed");
	ac.hello.caps = SBX_CAP_ATTACH;
	sbx_conn *h = sbx_conn_new(&hc), *a = sbx_conn_new(&ac);
	pump(h, a);
	static uint8_t text[20000], noise[9000];
	for (size_t i = 0; i < sizeof text; i++)
		text[i] = "hello sandbox\n"[i % 14];
	uint32_t x = 1;
	for (size_t i = 0; i < sizeof noise; i++)
		noise[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
	/* stream 1: exec with stdout and stderr */
	sbx_conn_send_data(a, g_ids[0], 1, text, sizeof text);
	sbx_conn_send_data(a, g_ids[0], 2, noise, sizeof noise);
	sbx_conn_send_end(a, g_ids[0], 1);
	sbx_conn_send_end(a, g_ids[0], 2);
	msgpack_packer *pk = sbx_conn_begin_map(a, SBX_MSG_EXIT, g_ids[0], 3);
	sbx_pack_kv_int(pk, "code", 3);
	sbx_pack_kv_bool(pk, "stdout_truncated", 0);
	sbx_pack_kv_uint(pk, "duration_ms", 12);
	sbx_conn_finish(a);
	pump(h, a);
	/* stream 2: an error; stream 3: an upload, then its result */
	sbx_conn_send_error(a, g_ids[1], 2, "not_found", "executable not found: %s", "nope");
	sbx_conn_send_data(h, g_ids[2], 0, text, 5000);
	sbx_conn_send_end(h, g_ids[2], 0);
	sbx_conn_send_signal(h, g_ids[0], 15);
	sbx_conn_send_resize(h, g_ids[0], 40, 120);
	pump(h, a);
	pk = sbx_conn_begin_map(a, SBX_MSG_RESULT, g_ids[2], 1);
	sbx_pack_kv_uint(pk, "size", 5000);
	sbx_conn_finish(a);
	/* stream 4: a read */
	sbx_conn_send_data(a, g_ids[3], 1, noise, 3000);
	sbx_conn_send_end(a, g_ids[3], 1);
	pk = sbx_conn_begin_map(a, SBX_MSG_RESULT, g_ids[3], 1);
	sbx_pack_kv_uint(pk, "size", 3000);
	sbx_conn_finish(a);
	pump(h, a);
	sbx_conn_tick(h, 100); /* a PING, answered */
	pump(h, a);
	/* a new request on a terminal, resized, that the agent cancels */
	uint32_t id = sbx_conn_new_stream_id(h);
	pk = sbx_conn_begin_map(h, SBX_MSG_EXEC, id, 6);
	sbx_pack_str(pk, "argv");
	msgpack_pack_array(pk, 2);
	sbx_pack_str(pk, "echo");
	sbx_pack_str(pk, "hi");
	sbx_pack_kv_bool(pk, "stream_stdin", 1);
	sbx_pack_kv_bool(pk, "tty", 1);
	sbx_pack_kv_uint(pk, "rows", 24);
	sbx_pack_kv_uint(pk, "cols", 80);
	sbx_pack_kv_uint(pk, "orphan_ms", 0);
	sbx_conn_finish(h);
	sbx_conn_send_resize(h, id, 1, 65535);
	sbx_conn_send_cancel(h, id);
	pump(h, a);
	sbx_conn_send_error(a, id, 125, "cancelled", "cancelled");
	pump(h, a);
	sbx_conn_free(h);
	sbx_conn_free(a);
}

/* Every frame of a recorded direction, body only, for fuzz_msg. */
static int save_frames(const sbx_buf *b, const char *tag, int n)
{
	const uint8_t *p = sbx_buf_head((sbx_buf *)b);
	size_t len = sbx_buf_size(b);
	while (len >= 4) {
		uint32_t fl = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		if (fl + 4 > len)
			break;
		char name[64];
		snprintf(name, sizeof name, "%s-%02d", tag, n++);
		save("msg", name, 0xff, p + 4, fl);
		p += 4 + fl;
		len -= 4 + fl;
	}
	return n;
}

/* fuzz_auth: a host and an agent with the target's secret and nonce shake
 * hands and run one STAT; each direction's bytes seed one side, and a
 * wrong proof and a bare HELLO seed the refusals. */
static void auth_seeds(void)
{
	sbx_auth_key k = {.len = SBX_AUTH_KEY_LEN};
	memset(k.bytes, FUZZ_AUTH_KEY_BYTE, k.len);
	sbx_conn_config a = {.role = SBX_ROLE_AGENT, .auth_key = &k};
	memset(a.auth_nonce, FUZZ_AUTH_NONCE_BYTE, sizeof a.auth_nonce);
	sbx_conn_config h = {.role = SBX_ROLE_HOST, .auth_key = &k};
	sbx_conn *ac = sbx_conn_new(&a), *hc = sbx_conn_new(&h);
	sbx_buf to_agent = {0}, to_host = {0};
	for (int round = 0; round < 4; round++) {
		size_t n;
		const uint8_t *p = sbx_conn_out(ac, &n);
		sbx_buf_append(&to_host, p, n);
		sbx_conn_feed(hc, p, n);
		sbx_conn_out_consume(ac, n);
		if (round == 1 && sbx_conn_ready(hc)) {
			msgpack_packer *pk = sbx_conn_begin_map(hc, SBX_MSG_STAT, 2, 1);
			sbx_pack_kv_str(pk, "path", "/");
			sbx_conn_finish(hc);
		}
		p = sbx_conn_out(hc, &n);
		sbx_buf_append(&to_agent, p, n);
		sbx_conn_feed(ac, p, n);
		sbx_conn_out_consume(hc, n);
	}
	save("auth", "agent-honest-host", 0, sbx_buf_head(&to_agent), sbx_buf_size(&to_agent));
	save("auth", "agent-honest-host-stride7", 7 << 1, sbx_buf_head(&to_agent), sbx_buf_size(&to_agent));
	save("auth", "host-honest-agent", 1, sbx_buf_head(&to_host), sbx_buf_size(&to_host));
	save("auth", "host-honest-agent-stride3", 3 << 1 | 1, sbx_buf_head(&to_host), sbx_buf_size(&to_host));
	uint8_t *bytes = sbx_buf_head(&to_agent);
	bytes[20] ^= 1; /* inside the proof */
	save("auth", "agent-wrong-proof", 0, bytes, sbx_buf_size(&to_agent));
	sbx_buf_free(&to_agent);
	sbx_buf_free(&to_host);
	sbx_conn_free(ac);
	sbx_conn_free(hc);
}

int main(void)
{
	auth_seeds();
	mkdir("tests/fuzz/corpus", 0755);
	static const uint8_t strides[] = {0, 1, 13, 200};
	int nmsg = 0;
	for (int compress = 0; compress < 2; compress++) {
		conversation(compress ? SBX_COMPRESS_ALWAYS : SBX_COMPRESS_NEVER);
		for (size_t i = 0; i < sizeof strides; i++) {
			char name[64];
			snprintf(name, sizeof name, "talk-%s-stride%d", compress ? "deflate" : "raw", strides[i]);
			save("conn_host", name, strides[i], sbx_buf_head(&g_to_host), sbx_buf_size(&g_to_host));
			save("conn_agent", name, strides[i], sbx_buf_head(&g_to_agent), sbx_buf_size(&g_to_agent));
		}
		nmsg = save_frames(&g_to_host, compress ? "agent-z" : "agent", nmsg);
		nmsg = save_frames(&g_to_agent, compress ? "host-z" : "host", nmsg);
	}
	/* chunks: [declared length, 2 bytes][deflated bytes] */
	sbx_deflater d = {0};
	static const char *texts[] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
				      "#!/bin/sh\necho hello; echo hello; echo hello; echo hello; echo hello\n",
				      "{\"a\": [1, 2, 3], \"b\": {\"c\": \"ddddddddddddddddddddddddddddddddd\"}}"};
	for (int i = 0; i < 3; i++) {
		uint8_t z[512];
		size_t n = strlen(texts[i]);
		z[0] = (uint8_t)(n >> 8);
		z[1] = (uint8_t)n;
		size_t zl = sbx_deflate_chunk(&d, (const uint8_t *)texts[i], n, z + 2, sizeof z - 2);
		char name[32];
		snprintf(name, sizeof name, "deflated-%d", i);
		save("chunk", name, 0xff, z, zl + 2);
		d.skip = 0;
	}
	sbx_deflater_free(&d);
	save("chunk", "raw-text", 0xff, (const uint8_t *)"\x00\x10" "not deflate at all", 20);
	printf("seeds: conn_host, conn_agent (8 each), msg (%d), chunk (4)\n", nmsg);
	return 0;
}
