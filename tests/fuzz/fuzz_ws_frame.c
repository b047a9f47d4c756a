/* fuzz_ws_frame.c — the WebSocket frame decoder (host/net/ws_frame.c) fed a
 * server's bytes in pieces of varying size: messages never exceed the
 * bound, control payloads never exceed 125 bytes, a failure says why and
 * stops the decoder for good, and close payloads parse or are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "net/ws_frame.h"

#define MAX_MESSAGE 4096

static void on_message(void *ud, int opcode, const uint8_t *p, size_t n)
{
	(void)ud;
	FUZZ_ASSERT(opcode == SBX_WS_TEXT || opcode == SBX_WS_BINARY);
	FUZZ_ASSERT(n <= MAX_MESSAGE);
	FUZZ_ASSERT(opcode == SBX_WS_BINARY || sbx_ws_utf8_valid(p, n));
	if (n) {
		volatile uint8_t touch = p[0] ^ p[n - 1]; /* the bytes are readable (ASan) */
		(void)touch;
	}
}

static void on_control(void *ud, int opcode, const uint8_t *p, size_t n)
{
	(void)ud;
	FUZZ_ASSERT(opcode == SBX_WS_CLOSE || opcode == SBX_WS_PING || opcode == SBX_WS_PONG);
	FUZZ_ASSERT(n <= 125);
	if (opcode == SBX_WS_CLOSE) {
		int code = 0;
		char reason[126];
		if (sbx_ws_parse_close(p, n, &code, reason, sizeof reason) == 0)
			FUZZ_ASSERT(strlen(reason) < sizeof reason);
	}
}

/* The first byte is the piece size (1..256); the rest is the stream. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t piece = (size_t)data[0] + 1;
	data++;
	size--;
	sbx_ws_decoder d;
	sbx_ws_decoder_cb cb = {.on_message = on_message, .on_control = on_control};
	sbx_ws_decoder_init(&d, MAX_MESSAGE, &cb, NULL);
	int failed = 0;
	for (size_t off = 0; off < size; off += piece) {
		size_t n = size - off < piece ? size - off : piece;
		if (sbx_ws_decode(&d, data + off, n) < 0) {
			FUZZ_ASSERT(d.error[0] != 0 && d.close_code >= 1000);
			failed = 1;
			FUZZ_ASSERT(sbx_ws_decode(&d, data, size) < 0); /* stopped for good */
			break;
		}
	}
	FUZZ_ASSERT(failed || d.in.len < SBX_WS_MAX_HEADER + MAX_MESSAGE + 1);
	sbx_ws_decoder_free(&d);
	return 0;
}
