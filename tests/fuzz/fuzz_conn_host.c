/* fuzz_conn_host.c — the host side of common/conn fed hostile agent bytes.
 *
 * The input is what an agent sends: the first byte picks how the rest is
 * split into feeds (1..256 bytes each, or all at once), so frames straddle
 * feeds at every offset. When the agent's HELLO arrives the host opens
 * streams 1-4 (two EXECs, a WRITE and a READ), so DATA, END, EXIT and
 * RESULT for them reach the stream checks. Consumed DATA is granted back,
 * uploads are sent as credit allows, and time moves on between feeds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "fuzz.h"

static void on_hello(sbx_conn *c, const sbx_hello *peer, void *ud)
{
	(void)peer;
	(void)ud;
	static const int types[] = {SBX_MSG_EXEC, SBX_MSG_EXEC, SBX_MSG_WRITE, SBX_MSG_READ};
	for (int i = 0; i < 4; i++) {
		uint32_t id = sbx_conn_new_stream_id(c);
		msgpack_packer *pk = sbx_conn_begin_map(c, types[i], id, 1);
		if (!pk)
			return;
		sbx_pack_kv_str(pk, "path", "x");
		sbx_conn_finish(c);
	}
}

static void on_msg(sbx_conn *c, const sbx_msg *m, void *ud)
{
	(void)ud;
	if (m->type == SBX_MSG_DATA) {
		FUZZ_ASSERT(m->len == m->rawlen);
		sbx_conn_consumed(c, m->stream, m->len);
	}
}

static void on_credit(sbx_conn *c, uint32_t stream, void *ud)
{
	(void)ud;
	static const uint8_t upload[4096];
	sbx_conn_send_data(c, stream, 0, upload, sizeof upload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t stride = data[0] ? data[0] : size;
	data++, size--;
	sbx_conn_config cfg = {
		.role = SBX_ROLE_HOST,
		.ping_ms = 10,
		.dead_ms = 1000,
		.cb = {.on_hello = on_hello, .on_msg = on_msg, .on_credit = on_credit},
	};
	sbx_conn *c = sbx_conn_new(&cfg);
	uint64_t now = 0;
	int failed = 0;
	for (size_t off = 0; off < size && !failed; off += stride) {
		size_t n = size - off < stride ? size - off : stride;
		failed = sbx_conn_feed(c, data + off, n) < 0;
		FUZZ_ASSERT(failed == (sbx_conn_error(c) != NULL));
		now += 7;
		sbx_conn_tick(c, now);
		size_t len;
		sbx_conn_out(c, &len);
		sbx_conn_out_consume(c, len);
	}
	if (!failed)
		sbx_conn_eof(c);
	FUZZ_ASSERT(sbx_conn_error(c) != NULL);
	sbx_conn_free(c);
	return 0;
}
