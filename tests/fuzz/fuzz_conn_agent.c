/* fuzz_conn_agent.c — the agent side of common/conn fed hostile host bytes.
 *
 * The input is what a host sends (the first byte picks the feed size, as in
 * fuzz_conn_host.c). The agent answers every request the way the real one
 * does in shape: output DATA (compressed when the host asked), END and a
 * final EXIT, RESULT or ERROR, so replies race the host's CANCELs, SIGNALs
 * and WINDOWs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "fuzz.h"

static void reply(sbx_conn *c, const sbx_msg *m)
{
	static const uint8_t out[3000] = {'o'};
	sbx_conn_send_data(c, m->stream, 1, out, sizeof out);
	sbx_conn_send_end(c, m->stream, 1);
	if (m->type == SBX_MSG_STAT) {
		sbx_conn_send_error(c, m->stream, 2, "not_found", "no such file");
		return;
	}
	msgpack_packer *pk = sbx_conn_begin_map(c, m->type == SBX_MSG_EXEC ? SBX_MSG_EXIT : SBX_MSG_RESULT,
						m->stream, 1);
	if (!pk)
		return;
	sbx_pack_kv_int(pk, "code", 0);
	sbx_conn_finish(c);
}

static void on_msg(sbx_conn *c, const sbx_msg *m, void *ud)
{
	(void)ud;
	if (m->type == SBX_MSG_DATA) {
		FUZZ_ASSERT(m->len == m->rawlen);
		sbx_conn_consumed(c, m->stream, m->len);
	} else if (m->type == SBX_MSG_EXEC || m->type == SBX_MSG_READ || m->type == SBX_MSG_STAT) {
		FUZZ_ASSERT(m->body != NULL);
		reply(c, m);
	} else if (m->type == SBX_MSG_CANCEL && sbx_conn_has_stream(c, m->stream)) {
		sbx_conn_send_error(c, m->stream, 125, "cancelled", "cancelled");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t stride = data[0] ? data[0] : size;
	data++, size--;
	sbx_conn_config cfg = {.role = SBX_ROLE_AGENT, .dead_ms = 1000, .cb = {.on_msg = on_msg}};
	snprintf(cfg.hello.boot_id, sizeof cfg.hello.boot_id, "fuzz");
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
	sbx_conn_free(c);
	return 0;
}
