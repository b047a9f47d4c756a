/* test_ws_frame.c — the WebSocket codec (host/net/ws_frame.c) on its own:
 * RFC 6455 examples, length encodings, fragmentation, hostile frames,
 * close payloads, UTF-8, the handshake's key and response checks, and a
 * random-input run that must never crash or misbehave. */
#include <stdlib.h>

#include "it_util.h"
#include "net/ws_frame.h"

typedef struct got {
	int messages, controls;
	int last_op;
	uint8_t last[70000];
	size_t last_n;
	int ctl_op[8];
} got;

static void on_msg(void *ud, int op, const uint8_t *p, size_t n)
{
	got *g = ud;
	g->messages++;
	g->last_op = op;
	g->last_n = n < sizeof g->last ? n : sizeof g->last;
	memcpy(g->last, p, g->last_n);
}

static void on_ctl(void *ud, int op, const uint8_t *p, size_t n)
{
	(void)p;
	(void)n;
	got *g = ud;
	if (g->controls < 8)
		g->ctl_op[g->controls] = op;
	g->controls++;
}

static const sbx_ws_decoder_cb cbs = {on_msg, on_ctl};

/* A server frame (unmasked), for feeding the decoder. */
static size_t server_frame(uint8_t *out, int fin, int op, const void *p, size_t n)
{
	size_t h = 0;
	out[h++] = (uint8_t)((fin ? 0x80 : 0) | op);
	if (n < 126) {
		out[h++] = (uint8_t)n;
	} else if (n <= 0xffff) {
		out[h++] = 126;
		out[h++] = (uint8_t)(n >> 8);
		out[h++] = (uint8_t)n;
	} else {
		out[h++] = 127;
		for (int s = 56; s >= 0; s -= 8)
			out[h++] = (uint8_t)((uint64_t)n >> s);
	}
	memcpy(out + h, p, n);
	return h + n;
}

static void test_rfc_masked_hello(void)
{
	/* RFC 6455 5.7: a single-frame masked text message "Hello" */
	static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
	static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
	sbx_buf b = {0};
	sbx_ws_part parts[] = {{"Hel", 3}, {"lo", 2}}; /* parts keep the mask phase */
	CHECK(sbx_ws_encode_key(&b, SBX_WS_TEXT, parts, 2, key) == 0);
	CHECK_EQ_INT(sbx_buf_size(&b), sizeof want);
	CHECK(memcmp(sbx_buf_head(&b), want, sizeof want) == 0);
	sbx_buf_free(&b);
}

static void test_length_encodings(void)
{
	size_t sizes[] = {0, 125, 126, 65535, 65536};
	size_t heads[] = {6, 6, 8, 8, 14};
	static uint8_t data[65536];
	for (int i = 0; i < 5; i++) {
		sbx_buf b = {0};
		sbx_ws_part part = {data, sizes[i]};
		CHECK(sbx_ws_encode(&b, SBX_WS_BINARY, &part, 1) == 0);
		CHECK_EQ_INT(sbx_buf_size(&b), heads[i] + sizes[i]);
		uint8_t *h = sbx_buf_head(&b);
		CHECK_EQ_INT(h[0], 0x82);
		CHECK(h[1] & 0x80); /* client frames are masked */
		sbx_buf_free(&b);
	}
}

static void test_decode_byte_by_byte(void)
{
	got g = {0};
	sbx_ws_decoder d;
	sbx_ws_decoder_init(&d, 1 << 20, &cbs, &g);
	uint8_t f[70000];
	static uint8_t big[66000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7);
	size_t n = server_frame(f, 1, SBX_WS_BINARY, big, sizeof big);
	for (size_t i = 0; i < n; i++)
		CHECK(sbx_ws_decode(&d, f + i, 1) == 0);
	CHECK_EQ_INT(g.messages, 1);
	CHECK_EQ_INT(g.last_n, sizeof big);
	CHECK(memcmp(g.last, big, sizeof big) == 0);
	/* two frames in one feed, then a 126-length one */
	uint8_t two[600];
	size_t k = server_frame(two, 1, SBX_WS_TEXT, "ab", 2);
	k += server_frame(two + k, 1, SBX_WS_BINARY, big, 300);
	CHECK(sbx_ws_decode(&d, two, k) == 0);
	CHECK_EQ_INT(g.messages, 3);
	CHECK_EQ_INT(g.last_n, 300);
	sbx_ws_decoder_free(&d);
}

static void test_fragments_with_ping_between(void)
{
	/* RFC 6455 5.6: "Hel" + "lo", and a control frame may come between */
	got g = {0};
	sbx_ws_decoder d;
	sbx_ws_decoder_init(&d, 1024, &cbs, &g);
	uint8_t f[100];
	size_t n = server_frame(f, 0, SBX_WS_TEXT, "Hel", 3);
	n += server_frame(f + n, 1, SBX_WS_PING, "x", 1);
	n += server_frame(f + n, 1, SBX_WS_CONT, "lo", 2);
	CHECK(sbx_ws_decode(&d, f, n) == 0);
	CHECK_EQ_INT(g.messages, 1);
	CHECK_EQ_INT(g.last_op, SBX_WS_TEXT);
	CHECK_EQ_INT(g.last_n, 5);
	CHECK(memcmp(g.last, "Hello", 5) == 0);
	CHECK_EQ_INT(g.controls, 1);
	CHECK_EQ_INT(g.ctl_op[0], SBX_WS_PING);
	sbx_ws_decoder_free(&d);
}

/* Feeds raw bytes; expects a failure with that close code. */
static int hostile(const uint8_t *p, size_t n, size_t max, int code, int *messages)
{
	got g = {0};
	sbx_ws_decoder d;
	sbx_ws_decoder_init(&d, max, &cbs, &g);
	int rc = sbx_ws_decode(&d, p, n);
	int ok = rc < 0 && d.failed && d.close_code == code && d.error[0];
	/* once failed, it stays failed */
	ok = ok && sbx_ws_decode(&d, (const uint8_t *)"\x82\x00", 2) < 0;
	*messages = g.messages;
	sbx_ws_decoder_free(&d);
	return ok;
}

static void test_hostile_frames(void)
{
	int m;
	static const uint8_t masked[] = {0x82, 0x83, 1, 2, 3, 4, 'a', 'b', 'c'};
	CHECK(hostile(masked, sizeof masked, 100, SBX_WS_PROTOCOL_ERROR, &m) && m == 0);
	static const uint8_t rsv[] = {0xC2, 0x01, 'a'};
	CHECK(hostile(rsv, sizeof rsv, 100, SBX_WS_PROTOCOL_ERROR, &m));
	static const uint8_t opcode3[] = {0x83, 0x01, 'a'};
	CHECK(hostile(opcode3, sizeof opcode3, 100, SBX_WS_PROTOCOL_ERROR, &m));
	static const uint8_t opcode11[] = {0x8B, 0x00};
	CHECK(hostile(opcode11, sizeof opcode11, 100, SBX_WS_PROTOCOL_ERROR, &m));
	static const uint8_t bigping[] = {0x89, 0x7E, 0x00, 0x7E};
	CHECK(hostile(bigping, sizeof bigping, 1000, SBX_WS_PROTOCOL_ERROR, &m));
	static const uint8_t fragping[] = {0x09, 0x00};
	CHECK(hostile(fragping, sizeof fragping, 100, SBX_WS_PROTOCOL_ERROR, &m));
	static const uint8_t cont[] = {0x80, 0x01, 'a'};
	CHECK(hostile(cont, sizeof cont, 100, SBX_WS_PROTOCOL_ERROR, &m));
	static const uint8_t interleave[] = {0x01, 0x01, 'a', 0x82, 0x01, 'b'};
	CHECK(hostile(interleave, sizeof interleave, 100, SBX_WS_PROTOCOL_ERROR, &m));
	static const uint8_t topbit[] = {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1};
	CHECK(hostile(topbit, sizeof topbit, 100, SBX_WS_PROTOCOL_ERROR, &m));
	/* a huge declared length fails on the header, before any payload */
	static const uint8_t huge[] = {0x82, 0x7F, 0, 0, 1, 0, 0, 0, 0, 0};
	CHECK(hostile(huge, sizeof huge, 1 << 20, SBX_WS_TOO_BIG, &m));
	/* the bound covers all fragments of a message */
	uint8_t frag[300];
	static uint8_t zeros[100];
	size_t n = server_frame(frag, 0, SBX_WS_BINARY, zeros, 60);
	n += server_frame(frag + n, 0, SBX_WS_CONT, zeros, 60);
	CHECK(hostile(frag, n, 100, SBX_WS_TOO_BIG, &m) && m == 0);
	static const uint8_t badutf8[] = {0x81, 0x02, 0xC3, 0x28};
	CHECK(hostile(badutf8, sizeof badutf8, 100, SBX_WS_INVALID_DATA, &m) && m == 0);
	/* UTF-8 is checked on the whole message: a split sequence is fine */
	got g = {0};
	sbx_ws_decoder d;
	sbx_ws_decoder_init(&d, 100, &cbs, &g);
	static const uint8_t split[] = {0x01, 0x01, 0xC3, 0x80, 0x01, 0xA9};
	CHECK(sbx_ws_decode(&d, split, sizeof split) == 0);
	CHECK_EQ_INT(g.messages, 1);
	sbx_ws_decoder_free(&d);
}

static void test_close_payloads(void)
{
	int code;
	char reason[64];
	CHECK(sbx_ws_parse_close((const uint8_t *)"", 0, &code, reason, sizeof reason) == 0);
	CHECK_EQ_INT(code, SBX_WS_NO_STATUS);
	CHECK(sbx_ws_parse_close((const uint8_t *)"\x03", 1, &code, reason, sizeof reason) < 0);
	CHECK(sbx_ws_parse_close((const uint8_t *)"\x03\xed", 2, &code, reason, sizeof reason) < 0); /* 1005 */
	CHECK(sbx_ws_parse_close((const uint8_t *)"\x03\xe7", 2, &code, reason, sizeof reason) < 0); /* 999 */
	CHECK(sbx_ws_parse_close((const uint8_t *)"\x13\x88", 2, &code, reason, sizeof reason) < 0); /* 5000 */
	CHECK(sbx_ws_parse_close((const uint8_t *)"\x0f\xa0\xff", 3, &code, reason, sizeof reason) < 0);
	CHECK(sbx_ws_parse_close((const uint8_t *)"\x0f\xa0" "bye", 5, &code, reason, sizeof reason) == 0);
	CHECK_EQ_INT(code, 4000);
	CHECK_EQ_STR(reason, "bye");
	uint8_t out[125];
	char long_reason[200];
	memset(long_reason, 'r', sizeof long_reason - 1);
	long_reason[sizeof long_reason - 1] = 0;
	size_t n = sbx_ws_close_payload(out, 1000, long_reason);
	CHECK_EQ_INT(n, 125);
	CHECK(out[0] == 0x03 && out[1] == 0xe8);
	/* a multi-byte character at the cut is dropped whole */
	char accents[200] = "";
	for (int i = 0; i < 70; i++)
		strcat(accents, "\xc3\xa9");
	n = sbx_ws_close_payload(out, 1000, accents);
	CHECK(sbx_ws_utf8_valid(out + 2, n - 2));
}

static void test_utf8(void)
{
	CHECK(sbx_ws_utf8_valid((const uint8_t *)"plain", 5));
	CHECK(sbx_ws_utf8_valid((const uint8_t *)"\xce\xba\xe1\xbd\xb9\xf0\x9f\x98\x80", 9));
	CHECK(!sbx_ws_utf8_valid((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
	CHECK(!sbx_ws_utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));     /* overlong */
	CHECK(!sbx_ws_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
	CHECK(!sbx_ws_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	CHECK(!sbx_ws_utf8_valid((const uint8_t *)"\xe2\x82", 2));         /* cut */
	CHECK(!sbx_ws_utf8_valid((const uint8_t *)"\x80", 1));
}

static void test_handshake_key_and_response(void)
{
	char accept[29];
	sbx_ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", accept); /* RFC 6455 1.3 */
	CHECK_EQ_STR(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	char key[25];
	sbx_ws_new_key(key);
	CHECK_EQ_INT(strlen(key), 24);
	sbx_ws_accept_for(key, accept);
	const char *protos[] = {"v5.channel.k8s.io", "v4.channel.k8s.io", NULL};
	char head[512], proto[64], why[300];
	int status;
	snprintf(head, sizeof head,
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
		 "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n",
		 accept);
	CHECKF(sbx_ws_check_response(head, strlen(head), key, protos, &status, proto, sizeof proto, why,
				     sizeof why) == 0, "%s", why);
	CHECK_EQ_STR(proto, "v4.channel.k8s.io");
	CHECK_EQ_INT(status, 101);
	snprintf(head, sizeof head,
		 "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
		 "Sec-WebSocket-Protocol: v9.other\r\n\r\n", accept);
	CHECK(sbx_ws_check_response(head, strlen(head), key, protos, &status, proto, sizeof proto, why, sizeof why) <
	      0);
	CHECKF(strstr(why, "v9.other"), "%s", why);
	snprintf(head, sizeof head,
		 "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n");
	CHECK(sbx_ws_check_response(head, strlen(head), key, protos, &status, proto, sizeof proto, why, sizeof why) <
	      0);
	CHECKF(strstr(why, "Accept"), "%s", why);
	snprintf(head, sizeof head, "HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		 accept);
	CHECK(sbx_ws_check_response(head, strlen(head), key, protos, &status, proto, sizeof proto, why, sizeof why) <
	      0);
	snprintf(head, sizeof head, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
	CHECK(sbx_ws_check_response(head, strlen(head), key, protos, &status, proto, sizeof proto, why, sizeof why) <
	      0);
	CHECK_EQ_INT(status, 403);
	CHECKF(strstr(why, "403 Forbidden"), "%s", why);
	CHECK(sbx_ws_check_response("garbage\r\n\r\n", 11, key, protos, &status, proto, sizeof proto, why,
				    sizeof why) < 0);
	CHECK_EQ_INT(status, 0);
	sbx_buf req = {0};
	const char *hdrs[] = {"Authorization: Bearer t0k", NULL};
	CHECK(sbx_ws_request(&req, "h:1", "/p?q=1", key, protos, hdrs) == 0);
	sbx_buf_append(&req, "", 1);
	const char *r = (const char *)sbx_buf_head(&req);
	CHECK(strncmp(r, "GET /p?q=1 HTTP/1.1\r\nHost: h:1\r\n", 32) == 0);
	CHECK(strstr(r, "Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n"));
	CHECK(strstr(r, "Authorization: Bearer t0k\r\n"));
	CHECK(strstr(r, "Sec-WebSocket-Version: 13\r\n"));
	CHECK(strcmp(r + strlen(r) - 4, "\r\n\r\n") == 0);
	sbx_buf_free(&req);
}

static void test_random_input_never_misbehaves(void)
{
	uint64_t x = 88172645463325252ull;
	static uint8_t buf[4096];
	for (int round = 0; round < 2000; round++) {
		got g = {0};
		sbx_ws_decoder d;
		sbx_ws_decoder_init(&d, 1000, &cbs, &g);
		size_t n = 1 + (size_t)(round * 37 % sizeof buf);
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[i] = (uint8_t)x;
			if (round % 3 == 0 && i % 5 == 1)
				buf[i] &= 0x7f; /* unmasked and short more often */
		}
		size_t off = 0;
		while (off < n) {
			size_t k = 1 + (size_t)(x % 97);
			if (k > n - off)
				k = n - off;
			if (sbx_ws_decode(&d, buf + off, k) < 0)
				break;
			off += k;
		}
		CHECK(g.last_n <= 1000);
		CHECK(sbx_buf_size(&d.in) <= 1000 + SBX_WS_MAX_HEADER);
		sbx_ws_decoder_free(&d);
	}
}

int main(void)
{
	RUN(test_rfc_masked_hello);
	RUN(test_length_encodings);
	RUN(test_decode_byte_by_byte);
	RUN(test_fragments_with_ping_between);
	RUN(test_hostile_frames);
	RUN(test_close_payloads);
	RUN(test_utf8);
	RUN(test_handshake_key_and_response);
	RUN(test_random_input_never_misbehaves);
	return test_summary();
}
