/* test_msg.c — common/msg.c: the message catalog and codec. Every message
 * type round-trips through the encoder and decoder; malformed frame bodies
 * (wrong shape, wrong field types, bad values, truncated or trailing bytes,
 * deep nesting, huge claimed lengths) are rejected with a message; and the
 * sbx_map_* readers refuse what does not fit. */
#include "msg.h"
#include "test.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static int buf_write(void *data, const char *p, size_t n)
{
	return sbx_buf_append(data, p, n);
}

/* A packer that writes a bare msgpack value (no length prefix) into b. */
static void raw_init(msgpack_packer *pk, sbx_buf *b)
{
	sbx_buf_clear(b);
	msgpack_packer_init(pk, b, buf_write);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static char g_err[256];

/* Decodes a bare body; returns the decoder's result. The unpacked zone is
 * destroyed afterwards, so only scalar fields of *m may be used. */
static int decode_bytes(const uint8_t *p, size_t n, sbx_msg *m)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	g_err[0] = 0;
	int rc = sbx_msg_decode(p, n, &u, m, g_err, sizeof g_err);
	msgpack_unpacked_destroy(&u);
	return rc;
}

static int decode_buf(const sbx_buf *b, sbx_msg *m)
{
	return decode_bytes(sbx_buf_head(b), sbx_buf_size(b), m);
}

/* Decodes the single frame in b (length prefix + body) after checking the
 * prefix matches; keeps the unpacked zone alive in *u for map bodies. */
static int decode_frame(const sbx_buf *b, msgpack_unpacked *u, sbx_msg *m)
{
	if (sbx_buf_size(b) < 4)
		return -2;
	uint32_t len = be32(sbx_buf_head(b));
	if (len != sbx_buf_size(b) - 4)
		return -3;
	g_err[0] = 0;
	return sbx_msg_decode(sbx_buf_head(b) + 4, len, u, m, g_err, sizeof g_err);
}

#define CHECK_REJECTS(b, what)                                              \
	do {                                                                \
		sbx_msg rm_;                                                \
		CHECK_EQ_INT(decode_buf(b, &rm_), -1);                      \
		CHECK(g_err[0] != 0);                                       \
		if (!strstr(g_err, what)) {                                 \
			char t_[400];                                       \
			snprintf(t_, sizeof t_, "error \"%.250s\" lacks \"%.100s\"", g_err, what); \
			test_fail(__FILE__, __LINE__, t_);                  \
			return;                                             \
		}                                                           \
	} while (0)

/* ---- round trips ---- */

static void test_names_and_classes(void)
{
	CHECK_EQ_STR(sbx_msg_name(SBX_MSG_HELLO), "HELLO");
	CHECK_EQ_STR(sbx_msg_name(SBX_MSG_WINDOW), "WINDOW");
	CHECK_EQ_STR(sbx_msg_name(SBX_MSG_ERROR), "ERROR");
	CHECK_EQ_STR(sbx_msg_name(0x7f), "UNKNOWN");
	for (int t = 0; t < 256; t++) {
		int req = t == SBX_MSG_EXEC || t == SBX_MSG_WRITE || t == SBX_MSG_READ ||
			  t == SBX_MSG_STAT || t == SBX_MSG_ATTACH || t == SBX_MSG_FORWARD || t == SBX_MSG_JOBS ||
			  t == SBX_MSG_KILL || t == SBX_MSG_LOGS;
		int fin = t == SBX_MSG_EXIT || t == SBX_MSG_RESULT || t == SBX_MSG_ERROR;
		CHECK_EQ_INT(sbx_msg_is_request(t), req);
		CHECK_EQ_INT(sbx_msg_is_final(t), fin);
	}
}

static void test_roundtrip_map_types(void)
{
	static const int types[] = {SBX_MSG_HELLO, SBX_MSG_EXEC, SBX_MSG_WRITE, SBX_MSG_READ,
				    SBX_MSG_STAT, SBX_MSG_ATTACH, SBX_MSG_JOBS, SBX_MSG_KILL,
				    SBX_MSG_LOGS, SBX_MSG_EXIT, SBX_MSG_RESULT};
	sbx_buf b = {0};
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		uint32_t stream = types[i] == SBX_MSG_HELLO ? 0 : 0xfffffff0u + (uint32_t)i;
		sbx_frame_writer w;
		sbx_buf_clear(&b);
		CHECK_EQ_INT(sbx_frame_begin(&w, &b, types[i], stream, 1), 0);
		msgpack_pack_map(&w.pk, 6);
		sbx_pack_kv_str(&w.pk, "path", "/tmp/x y");
		sbx_pack_kv_int(&w.pk, "neg", -42);
		sbx_pack_kv_int(&w.pk, "big", INT64_MIN);
		sbx_pack_kv_uint(&w.pk, "u", UINT64_MAX);
		sbx_pack_kv_bool(&w.pk, "yes", 1);
		sbx_pack_kv_bool(&w.pk, "no", 0);
		CHECK_EQ_INT(sbx_frame_finish(&w, 1 << 20), 0);

		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		sbx_msg m;
		int rc = decode_frame(&b, &u, &m);
		if (rc != 0)
			msgpack_unpacked_destroy(&u);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(m.type, types[i]);
		CHECK_EQ_INT(m.stream, stream);
		CHECK(m.body != NULL);
		CHECK_EQ_INT(m.body->type, MSGPACK_OBJECT_MAP);
		char s[32];
		CHECK_EQ_INT(sbx_map_str(m.body, "path", s, sizeof s), 0);
		CHECK_EQ_STR(s, "/tmp/x y");
		CHECK_EQ_INT(sbx_map_int(m.body, "neg", 0), -42);
		CHECK(sbx_map_int(m.body, "big", 0) == INT64_MIN);
		CHECK(sbx_map_uint(m.body, "u", 0) == UINT64_MAX);
		CHECK_EQ_INT(sbx_map_bool(m.body, "yes", 0), 1);
		CHECK_EQ_INT(sbx_map_bool(m.body, "no", 1), 0);
		msgpack_unpacked_destroy(&u);
	}
	sbx_buf_free(&b);
}

static void test_roundtrip_scalar_types(void)
{
	static const int types[] = {SBX_MSG_PING, SBX_MSG_PONG, SBX_MSG_SIGNAL, SBX_MSG_WINDOW};
	static const uint64_t values[] = {0, 1, 127, 128, 65535, 65536, 0xffffffffull,
					  0x100000000ull, UINT64_MAX};
	sbx_buf b = {0};
	for (size_t i = 0; i < 4; i++) {
		for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
			uint32_t stream = types[i] <= SBX_MSG_GOAWAY ? 0 : 7;
			sbx_frame_writer w;
			sbx_buf_clear(&b);
			CHECK_EQ_INT(sbx_frame_begin(&w, &b, types[i], stream, 1), 0);
			msgpack_pack_uint64(&w.pk, values[k]);
			CHECK_EQ_INT(sbx_frame_finish(&w, 1 << 20), 0);
			msgpack_unpacked u;
			msgpack_unpacked_init(&u);
			sbx_msg m;
			int rc = decode_frame(&b, &u, &m);
			msgpack_unpacked_destroy(&u);
			CHECK_EQ_INT(rc, 0);
			CHECK_EQ_INT(m.type, types[i]);
			CHECK_EQ_INT(m.stream, stream);
			CHECK(m.value == values[k]);
		}
	}
	/* CANCEL: no body at all. */
	sbx_frame_writer w;
	sbx_buf_clear(&b);
	CHECK_EQ_INT(sbx_frame_begin(&w, &b, SBX_MSG_CANCEL, 99, 0), 0);
	CHECK_EQ_INT(sbx_frame_finish(&w, 1 << 20), 0);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	sbx_msg m;
	int rc = decode_frame(&b, &u, &m);
	msgpack_unpacked_destroy(&u);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(m.type, SBX_MSG_CANCEL);
	CHECK_EQ_INT(m.stream, 99);
	sbx_buf_free(&b);
}

/* RESIZE [23, s, rows, cols]: both 1..65535, two uints exactly. */
static int resize_body(sbx_buf *b, int64_t rows, int64_t cols, int extra, sbx_msg *m)
{
	msgpack_packer pk;
	raw_init(&pk, b);
	msgpack_pack_array(&pk, 4 + (extra ? 1 : 0));
	msgpack_pack_uint8(&pk, SBX_MSG_RESIZE);
	msgpack_pack_uint8(&pk, 5);
	msgpack_pack_int64(&pk, rows);
	msgpack_pack_int64(&pk, cols);
	if (extra)
		msgpack_pack_uint8(&pk, 1);
	return decode_buf(b, m);
}

static void test_resize(void)
{
	sbx_buf b = {0};
	sbx_msg m;
	CHECK_EQ_STR(sbx_msg_name(SBX_MSG_RESIZE), "RESIZE");
	CHECK_EQ_INT(resize_body(&b, 40, 120, 0, &m), 0);
	CHECK_EQ_INT(m.type, SBX_MSG_RESIZE);
	CHECK_EQ_INT(m.stream, 5);
	CHECK_EQ_INT(m.rows, 40);
	CHECK_EQ_INT(m.cols, 120);
	CHECK_EQ_INT(resize_body(&b, 1, 65535, 0, &m), 0);
	CHECK_EQ_INT(resize_body(&b, 0, 80, 0, &m), -1);
	CHECK_EQ_INT(resize_body(&b, 24, 0, 0, &m), -1);
	CHECK_EQ_INT(resize_body(&b, 65536, 80, 0, &m), -1);
	CHECK_EQ_INT(resize_body(&b, 24, -1, 0, &m), -1);
	CHECK_EQ_INT(resize_body(&b, 24, 80, 1, &m), -1);
	CHECK(strstr(g_err, "RESIZE") != NULL);
	sbx_buf_free(&b);
}

static void test_roundtrip_data_end(void)
{
	sbx_buf b = {0};
	uint8_t payload[300];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 7);
	for (int fd = 0; fd <= 2; fd++) {
		for (unsigned flags = 0; flags <= 1; flags++) {
			sbx_frame_writer w;
			sbx_buf_clear(&b);
			CHECK_EQ_INT(sbx_frame_begin(&w, &b, SBX_MSG_DATA, 5, 4), 0);
			msgpack_pack_uint8(&w.pk, (uint8_t)fd);
			msgpack_pack_uint8(&w.pk, (uint8_t)flags);
			msgpack_pack_bin(&w.pk, sizeof payload);
			msgpack_pack_bin_body(&w.pk, payload, sizeof payload);
			/* deflated: the declared length differs from the payload */
			msgpack_pack_uint32(&w.pk, flags ? 65536 : sizeof payload);
			CHECK_EQ_INT(sbx_frame_finish(&w, 1 << 20), 0);
			msgpack_unpacked u;
			msgpack_unpacked_init(&u);
			sbx_msg m;
			int rc = decode_frame(&b, &u, &m);
			CHECK_EQ_INT(rc, 0);
			CHECK_EQ_INT(m.type, SBX_MSG_DATA);
			CHECK_EQ_INT(m.stream, 5);
			CHECK_EQ_INT(m.fd, fd);
			CHECK_EQ_INT(m.flags, flags);
			CHECK_EQ_INT(m.len, sizeof payload);
			CHECK_EQ_INT(m.rawlen, flags ? 65536 : sizeof payload);
			CHECK(memcmp(m.data, payload, sizeof payload) == 0);
			/* The payload is not copied: it points into the frame. */
			CHECK(m.data > sbx_buf_head(&b) && m.data < sbx_buf_head(&b) + sbx_buf_size(&b));
			msgpack_unpacked_destroy(&u);
		}
	}
	/* Empty DATA */
	{
		sbx_frame_writer w;
		sbx_buf_clear(&b);
		sbx_frame_begin(&w, &b, SBX_MSG_DATA, 1, 4);
		msgpack_pack_uint8(&w.pk, 1);
		msgpack_pack_uint8(&w.pk, 0);
		msgpack_pack_bin(&w.pk, 0);
		msgpack_pack_uint32(&w.pk, 0);
		CHECK_EQ_INT(sbx_frame_finish(&w, 1 << 20), 0);
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		sbx_msg m;
		int rc = decode_frame(&b, &u, &m);
		msgpack_unpacked_destroy(&u);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(m.len, 0);
		CHECK_EQ_INT(m.rawlen, 0);
	}
	/* END */
	static const uint64_t counts[] = {0, 1, 1ull << 40, UINT64_MAX};
	static const uint32_t crcs[] = {0, 0xdeadbeef, 0xffffffffu, 1};
	for (int i = 0; i < 4; i++) {
		sbx_frame_writer w;
		sbx_buf_clear(&b);
		CHECK_EQ_INT(sbx_frame_begin(&w, &b, SBX_MSG_END, 3, 3), 0);
		msgpack_pack_uint8(&w.pk, (uint8_t)(i % 3));
		msgpack_pack_uint64(&w.pk, counts[i]);
		msgpack_pack_uint32(&w.pk, crcs[i]);
		CHECK_EQ_INT(sbx_frame_finish(&w, 1 << 20), 0);
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		sbx_msg m;
		int rc = decode_frame(&b, &u, &m);
		msgpack_unpacked_destroy(&u);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(m.type, SBX_MSG_END);
		CHECK_EQ_INT(m.fd, i % 3);
		CHECK(m.count == counts[i]);
		CHECK(m.crc == crcs[i]);
	}
	sbx_buf_free(&b);
}

static void test_roundtrip_error_goaway(void)
{
	sbx_buf b = {0};
	static const int types[] = {SBX_MSG_ERROR, SBX_MSG_GOAWAY};
	for (int i = 0; i < 2; i++) {
		sbx_frame_writer w;
		sbx_buf_clear(&b);
		uint32_t stream = types[i] == SBX_MSG_ERROR ? 12 : 0;
		CHECK_EQ_INT(sbx_frame_begin(&w, &b, types[i], stream, 3), 0);
		msgpack_pack_int(&w.pk, ENOENT);
		sbx_pack_str(&w.pk, "not_found");
		sbx_pack_str(&w.pk, "no such file: /x");
		CHECK_EQ_INT(sbx_frame_finish(&w, 1 << 20), 0);
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		sbx_msg m;
		int rc = decode_frame(&b, &u, &m);
		msgpack_unpacked_destroy(&u);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(m.type, types[i]);
		CHECK_EQ_INT(m.stream, stream);
		CHECK_EQ_INT(m.err, ENOENT);
		CHECK_EQ_STR(m.code, "not_found");
		CHECK_EQ_STR(m.text, "no such file: /x");
	}

	/* Long code/text are truncated, embedded NULs are made visible. */
	char longtext[2000];
	memset(longtext, 'x', sizeof longtext);
	longtext[5] = 0;
	sbx_frame_writer w;
	sbx_buf_clear(&b);
	sbx_frame_begin(&w, &b, SBX_MSG_ERROR, 1, 3);
	msgpack_pack_int(&w.pk, 4095);
	msgpack_pack_str(&w.pk, 100);
	msgpack_pack_str_body(&w.pk, longtext + 6, 100);
	msgpack_pack_str(&w.pk, sizeof longtext);
	msgpack_pack_str_body(&w.pk, longtext, sizeof longtext);
	CHECK_EQ_INT(sbx_frame_finish(&w, 1 << 20), 0);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	sbx_msg m;
	int rc = decode_frame(&b, &u, &m);
	msgpack_unpacked_destroy(&u);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(m.err, 4095);
	CHECK_EQ_INT(strlen(m.code), sizeof m.code - 1);
	CHECK_EQ_INT(strlen(m.text), sizeof m.text - 1);
	CHECK_EQ_INT(m.text[5], '?');
	sbx_buf_free(&b);
}

static void test_frame_finish_limit(void)
{
	sbx_buf b = {0};
	sbx_buf_append(&b, "keep", 4);
	sbx_frame_writer w;
	CHECK_EQ_INT(sbx_frame_begin(&w, &b, SBX_MSG_EXEC, 1, 1), 0);
	msgpack_pack_map(&w.pk, 1);
	static char big[2000];
	memset(big, 'a', sizeof big - 1);
	sbx_pack_kv_str(&w.pk, "k", big);
	/* Too large: the frame is removed and what was before it stays. */
	CHECK_EQ_INT(sbx_frame_finish(&w, 1000), -1);
	CHECK_EQ_INT(sbx_buf_size(&b), 4);
	CHECK(memcmp(sbx_buf_head(&b), "keep", 4) == 0);

	/* A frame exactly at the limit is fine; one byte over is not. */
	CHECK_EQ_INT(sbx_frame_begin(&w, &b, SBX_MSG_PING, 0, 1), 0);
	msgpack_pack_uint64(&w.pk, 5);
	size_t body = sbx_buf_size(&b) - 8;
	CHECK_EQ_INT(sbx_frame_finish(&w, body), 0);
	CHECK_EQ_INT(be32(sbx_buf_head(&b) + 4), body);
	CHECK_EQ_INT(sbx_frame_begin(&w, &b, SBX_MSG_PING, 0, 1), 0);
	msgpack_pack_uint64(&w.pk, 5);
	CHECK_EQ_INT(sbx_frame_finish(&w, body - 1), -1);
	CHECK_EQ_INT(sbx_buf_size(&b), 8 + body);
	sbx_buf_free(&b);
}

/* A frame built after part of the buffer was consumed, big enough to make
 * the buffer compact its head (memmove to offset 0) while it is packed:
 * the length prefix must still land on the frame. */
static void test_frame_after_compaction(void)
{
	for (size_t consumed = 1; consumed <= 250; consumed += 13) {
		for (size_t slen = 10; slen < 600; slen += 37) {
			sbx_buf b = {0};
			static uint8_t junk[250];
			memset(junk, 0xee, sizeof junk);
			sbx_buf_append(&b, junk, sizeof junk);
			sbx_buf_consume(&b, consumed);
			size_t keep = sbx_buf_size(&b);
			sbx_frame_writer w;
			CHECK_EQ_INT(sbx_frame_begin(&w, &b, SBX_MSG_ERROR, 9, 3), 0);
			msgpack_pack_int(&w.pk, 5);
			sbx_pack_str(&w.pk, "c");
			char *text = malloc(slen + 1);
			memset(text, 't', slen);
			text[slen] = 0;
			sbx_pack_str(&w.pk, text);
			free(text);
			CHECK_EQ_INT(sbx_frame_finish(&w, 1 << 20), 0);
			/* the untouched bytes before the frame are intact */
			for (size_t i = 0; i < keep; i++)
				CHECK_EQ_INT(sbx_buf_head(&b)[i], 0xee);
			const uint8_t *f = sbx_buf_head(&b) + keep;
			uint32_t len = be32(f);
			CHECK_EQ_INT(len + 4 + keep, sbx_buf_size(&b));
			sbx_msg m;
			CHECK_EQ_INT(decode_bytes(f + 4, len, &m), 0);
			CHECK_EQ_INT(m.type, SBX_MSG_ERROR);
			CHECK_EQ_INT(strlen(m.text), slen < sizeof m.text ? slen : sizeof m.text - 1);
			/* an oversized frame is removed, leaving the rest */
			CHECK_EQ_INT(sbx_frame_begin(&w, &b, SBX_MSG_PING, 0, 1), 0);
			msgpack_pack_uint64(&w.pk, 1);
			CHECK_EQ_INT(sbx_frame_finish(&w, 2), -1);
			CHECK_EQ_INT(sbx_buf_size(&b), keep + 4 + len);
			sbx_buf_free(&b);
		}
	}
}

/* ---- malformed frames ---- */

static void test_reject_not_array(void)
{
	sbx_buf b = {0};
	msgpack_packer pk;

	raw_init(&pk, &b);
	msgpack_pack_map(&pk, 0);
	CHECK_REJECTS(&b, "not an array");
	raw_init(&pk, &b);
	msgpack_pack_uint8(&pk, 2);
	CHECK_REJECTS(&b, "not an array");
	raw_init(&pk, &b);
	msgpack_pack_nil(&pk);
	CHECK_REJECTS(&b, "not an array");
	raw_init(&pk, &b);
	sbx_pack_str(&pk, "[2, 0, 1]");
	CHECK_REJECTS(&b, "not an array");
	raw_init(&pk, &b);
	msgpack_pack_array(&pk, 0);
	CHECK_REJECTS(&b, "not an array");
	raw_init(&pk, &b);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_uint8(&pk, SBX_MSG_PING);
	CHECK_REJECTS(&b, "not an array");
	/* empty frame body */
	sbx_msg m;
	CHECK_EQ_INT(decode_bytes((const uint8_t *)"", 0, &m), -1);
	CHECK(g_err[0] != 0);
	sbx_buf_free(&b);
}

static void test_reject_bad_header(void)
{
	sbx_buf b = {0};
	msgpack_packer pk;

	raw_init(&pk, &b); /* type as a string */
	msgpack_pack_array(&pk, 3);
	sbx_pack_str(&pk, "PING");
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint8(&pk, 1);
	CHECK_REJECTS(&b, "header");
	raw_init(&pk, &b); /* type > 255 */
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint16(&pk, 0x100 | SBX_MSG_PING);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint8(&pk, 1);
	CHECK_REJECTS(&b, "header");
	raw_init(&pk, &b); /* negative type */
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, -2);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint8(&pk, 1);
	CHECK_REJECTS(&b, "header");
	raw_init(&pk, &b); /* stream does not fit 32 bits */
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, SBX_MSG_WINDOW);
	msgpack_pack_uint64(&pk, 0x100000001ull);
	msgpack_pack_uint8(&pk, 1);
	CHECK_REJECTS(&b, "header");
	raw_init(&pk, &b); /* stream negative */
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, SBX_MSG_WINDOW);
	msgpack_pack_int(&pk, -1);
	msgpack_pack_uint8(&pk, 1);
	CHECK_REJECTS(&b, "header");
	raw_init(&pk, &b); /* stream as float */
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, SBX_MSG_WINDOW);
	msgpack_pack_double(&pk, 1.0);
	msgpack_pack_uint8(&pk, 1);
	CHECK_REJECTS(&b, "header");
	raw_init(&pk, &b); /* unknown type */
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, 0x7f);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint8(&pk, 1);
	CHECK_REJECTS(&b, "unknown message type 127");
	raw_init(&pk, &b);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint8(&pk, 0);
	CHECK_REJECTS(&b, "unknown message type 0");
	sbx_buf_free(&b);
}

static void test_reject_wrong_arity(void)
{
	sbx_buf b = {0};
	msgpack_packer pk;
	/* Map-bodied types with 0, 2 fields or the body missing. */
	static const int maps[] = {SBX_MSG_HELLO, SBX_MSG_EXEC, SBX_MSG_WRITE, SBX_MSG_READ,
				   SBX_MSG_STAT, SBX_MSG_ATTACH, SBX_MSG_EXIT, SBX_MSG_RESULT};
	for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
		raw_init(&pk, &b);
		msgpack_pack_array(&pk, 2);
		msgpack_pack_uint8(&pk, (uint8_t)maps[i]);
		msgpack_pack_uint8(&pk, 1);
		CHECK_REJECTS(&b, "expected a map body");
		raw_init(&pk, &b);
		msgpack_pack_array(&pk, 4);
		msgpack_pack_uint8(&pk, (uint8_t)maps[i]);
		msgpack_pack_uint8(&pk, 1);
		msgpack_pack_map(&pk, 0);
		msgpack_pack_map(&pk, 0);
		CHECK_REJECTS(&b, "expected a map body");
		raw_init(&pk, &b); /* body of the wrong type */
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint8(&pk, (uint8_t)maps[i]);
		msgpack_pack_uint8(&pk, 1);
		msgpack_pack_array(&pk, 0);
		CHECK_REJECTS(&b, "expected a map body");
		CHECK(strstr(g_err, sbx_msg_name(maps[i])) != NULL);
	}
	static const int scalars[] = {SBX_MSG_PING, SBX_MSG_PONG, SBX_MSG_SIGNAL, SBX_MSG_WINDOW};
	for (size_t i = 0; i < 4; i++) {
		raw_init(&pk, &b);
		msgpack_pack_array(&pk, 2);
		msgpack_pack_uint8(&pk, (uint8_t)scalars[i]);
		msgpack_pack_uint8(&pk, 0);
		CHECK_REJECTS(&b, "unsigned integer");
		raw_init(&pk, &b);
		msgpack_pack_array(&pk, 4);
		msgpack_pack_uint8(&pk, (uint8_t)scalars[i]);
		msgpack_pack_uint8(&pk, 0);
		msgpack_pack_uint8(&pk, 1);
		msgpack_pack_uint8(&pk, 1);
		CHECK_REJECTS(&b, "unsigned integer");
		raw_init(&pk, &b); /* negative */
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint8(&pk, (uint8_t)scalars[i]);
		msgpack_pack_uint8(&pk, 0);
		msgpack_pack_int(&pk, -9);
		CHECK_REJECTS(&b, "unsigned integer");
		raw_init(&pk, &b); /* string */
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint8(&pk, (uint8_t)scalars[i]);
		msgpack_pack_uint8(&pk, 0);
		sbx_pack_str(&pk, "9");
		CHECK_REJECTS(&b, "unsigned integer");
		raw_init(&pk, &b); /* float */
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint8(&pk, (uint8_t)scalars[i]);
		msgpack_pack_uint8(&pk, 0);
		msgpack_pack_double(&pk, 9.0);
		CHECK_REJECTS(&b, "unsigned integer");
	}
	raw_init(&pk, &b);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, SBX_MSG_CANCEL);
	msgpack_pack_uint8(&pk, 4);
	msgpack_pack_nil(&pk);
	CHECK_REJECTS(&b, "expected no body");

	/* DATA with 5 and 7 elements */
	for (int n = 5; n <= 7; n += 2) {
		raw_init(&pk, &b);
		msgpack_pack_array(&pk, (size_t)n);
		msgpack_pack_uint8(&pk, SBX_MSG_DATA);
		msgpack_pack_uint8(&pk, 1);
		msgpack_pack_uint8(&pk, 1);
		msgpack_pack_uint8(&pk, 0);
		msgpack_pack_bin(&pk, 1);
		msgpack_pack_bin_body(&pk, "x", 1);
		if (n == 7) {
			msgpack_pack_uint8(&pk, 1);
			msgpack_pack_uint8(&pk, 1);
		}
		CHECK_REJECTS(&b, "malformed DATA");
	}
	/* END with 4 and 6 */
	for (int n = 4; n <= 6; n += 2) {
		raw_init(&pk, &b);
		msgpack_pack_array(&pk, (size_t)n);
		msgpack_pack_uint8(&pk, SBX_MSG_END);
		msgpack_pack_uint8(&pk, 1);
		for (int k = 2; k < n; k++)
			msgpack_pack_uint8(&pk, 0);
		CHECK_REJECTS(&b, "malformed END");
	}
	/* ERROR / GOAWAY with 4 */
	static const int errs[] = {SBX_MSG_ERROR, SBX_MSG_GOAWAY};
	for (int i = 0; i < 2; i++) {
		raw_init(&pk, &b);
		msgpack_pack_array(&pk, 4);
		msgpack_pack_uint8(&pk, (uint8_t)errs[i]);
		msgpack_pack_uint8(&pk, 1);
		msgpack_pack_int(&pk, 2);
		sbx_pack_str(&pk, "code");
		CHECK_REJECTS(&b, "expected errno, code, text");
	}
	sbx_buf_free(&b);
}

/* Packs DATA [32, 1, fd, flags, bin(payload), rawlen] with given objects. */
enum { F_UINT, F_NEG, F_STR, F_BIN, F_NIL };
static void pack_field(msgpack_packer *pk, int kind, uint64_t v)
{
	switch (kind) {
	case F_UINT: msgpack_pack_uint64(pk, v); break;
	case F_NEG: msgpack_pack_int64(pk, -(int64_t)v); break;
	case F_STR: sbx_pack_str(pk, "1"); break;
	case F_BIN: msgpack_pack_bin(pk, 1); msgpack_pack_bin_body(pk, "1", 1); break;
	case F_NIL: msgpack_pack_nil(pk); break;
	}
}

static void pack_data(sbx_buf *b, int fdk, uint64_t fd, int flk, uint64_t flags, int pk_kind,
		      size_t plen, int rlk, uint64_t rawlen)
{
	msgpack_packer pk;
	raw_init(&pk, b);
	msgpack_pack_array(&pk, 6);
	msgpack_pack_uint8(&pk, SBX_MSG_DATA);
	msgpack_pack_uint8(&pk, 1);
	pack_field(&pk, fdk, fd);
	pack_field(&pk, flk, flags);
	if (pk_kind == F_BIN) {
		msgpack_pack_bin(&pk, plen);
		for (size_t i = 0; i < plen; i++)
			msgpack_pack_bin_body(&pk, "z", 1);
	} else if (pk_kind == F_STR) {
		msgpack_pack_str(&pk, plen);
		for (size_t i = 0; i < plen; i++)
			msgpack_pack_str_body(&pk, "z", 1);
	} else {
		pack_field(&pk, pk_kind, plen);
	}
	pack_field(&pk, rlk, rawlen);
}

static void test_reject_data_fields(void)
{
	sbx_buf b = {0};
	sbx_msg m;

	pack_data(&b, F_UINT, 1, F_UINT, 0, F_BIN, 3, F_UINT, 3);
	CHECK_EQ_INT(decode_buf(&b, &m), 0); /* the control case */

	pack_data(&b, F_UINT, 3, F_UINT, 0, F_BIN, 3, F_UINT, 3);
	CHECK_REJECTS(&b, "bad fd");
	pack_data(&b, F_UINT, 0x100000001ull, F_UINT, 0, F_BIN, 3, F_UINT, 3);
	CHECK_REJECTS(&b, "bad fd");
	pack_data(&b, F_NEG, 1, F_UINT, 0, F_BIN, 3, F_UINT, 3);
	CHECK_REJECTS(&b, "bad fd");
	pack_data(&b, F_STR, 1, F_UINT, 0, F_BIN, 3, F_UINT, 3);
	CHECK_REJECTS(&b, "bad fd");

	pack_data(&b, F_UINT, 1, F_UINT, 0x100, F_BIN, 3, F_UINT, 3);
	CHECK_REJECTS(&b, "bad flags");
	pack_data(&b, F_UINT, 1, F_NEG, 1, F_BIN, 3, F_UINT, 3);
	CHECK_REJECTS(&b, "bad flags");
	pack_data(&b, F_UINT, 1, F_NIL, 0, F_BIN, 3, F_UINT, 3);
	CHECK_REJECTS(&b, "bad flags");

	pack_data(&b, F_UINT, 1, F_UINT, 0, F_STR, 3, F_UINT, 3);
	CHECK_REJECTS(&b, "payload is not bin");
	pack_data(&b, F_UINT, 1, F_UINT, 0, F_NIL, 0, F_UINT, 0);
	CHECK_REJECTS(&b, "payload is not bin");

	pack_data(&b, F_UINT, 1, F_UINT, 0, F_BIN, 3, F_NEG, 3);
	CHECK_REJECTS(&b, "bad raw length");
	pack_data(&b, F_UINT, 1, F_UINT, 0, F_BIN, 3, F_STR, 3);
	CHECK_REJECTS(&b, "bad raw length");

	/* raw DATA whose declared length differs from its payload */
	pack_data(&b, F_UINT, 1, F_UINT, 0, F_BIN, 3, F_UINT, 4);
	CHECK_REJECTS(&b, "raw length differs");
	pack_data(&b, F_UINT, 1, F_UINT, 0, F_BIN, 3, F_UINT, 2);
	CHECK_REJECTS(&b, "raw length differs");
	pack_data(&b, F_UINT, 1, F_UINT, 0, F_BIN, 0, F_UINT, UINT64_MAX);
	CHECK_REJECTS(&b, "raw length differs");
	/* ... which is allowed when deflated */
	pack_data(&b, F_UINT, 1, F_UINT, SBX_DATA_DEFLATE, F_BIN, 3, F_UINT, 4000);
	CHECK_EQ_INT(decode_buf(&b, &m), 0);
	CHECK_EQ_INT(m.rawlen, 4000);
	sbx_buf_free(&b);
}

static void test_reject_end_error_fields(void)
{
	sbx_buf b = {0};
	msgpack_packer pk;
	sbx_msg m;
	struct {
		int fdk; uint64_t fd; int ck; uint64_t count; int crk; uint64_t crc; const char *what;
	} cases[] = {
		{F_UINT, 1, F_UINT, 5, F_UINT, 7, NULL},
		{F_UINT, 3, F_UINT, 5, F_UINT, 7, "bad fd"},
		{F_NEG, 1, F_UINT, 5, F_UINT, 7, "bad fd"},
		{F_UINT, 1, F_NEG, 5, F_UINT, 7, "bad count"},
		{F_UINT, 1, F_STR, 5, F_UINT, 7, "bad count"},
		{F_UINT, 1, F_UINT, 5, F_UINT, 0x100000000ull, "bad crc32"},
		{F_UINT, 1, F_UINT, 5, F_NEG, 7, "bad crc32"},
		{F_UINT, 1, F_UINT, 5, F_BIN, 7, "bad crc32"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		raw_init(&pk, &b);
		msgpack_pack_array(&pk, 5);
		msgpack_pack_uint8(&pk, SBX_MSG_END);
		msgpack_pack_uint8(&pk, 2);
		pack_field(&pk, cases[i].fdk, cases[i].fd);
		pack_field(&pk, cases[i].ck, cases[i].count);
		pack_field(&pk, cases[i].crk, cases[i].crc);
		if (!cases[i].what)
			CHECK_EQ_INT(decode_buf(&b, &m), 0);
		else
			CHECK_REJECTS(&b, cases[i].what);
	}
	/* ERROR/GOAWAY: errno in 0..4095, code and text strings */
	struct {
		int ek; int64_t e; int code_str; int text_str; int ok;
	} ecases[] = {
		{F_UINT, 0, 1, 1, 1},      {F_UINT, 4095, 1, 1, 1}, {F_UINT, 4096, 1, 1, 0},
		{F_NEG, 1, 1, 1, 0},       {F_STR, 0, 1, 1, 0},     {F_UINT, 2, 0, 1, 0},
		{F_UINT, 2, 1, 0, 0},
	};
	for (int t = 0; t < 2; t++) {
		int type = t ? SBX_MSG_GOAWAY : SBX_MSG_ERROR;
		for (size_t i = 0; i < sizeof ecases / sizeof ecases[0]; i++) {
			raw_init(&pk, &b);
			msgpack_pack_array(&pk, 5);
			msgpack_pack_uint8(&pk, (uint8_t)type);
			msgpack_pack_uint8(&pk, 2);
			pack_field(&pk, ecases[i].ek, (uint64_t)ecases[i].e);
			if (ecases[i].code_str)
				sbx_pack_str(&pk, "c");
			else
				msgpack_pack_uint8(&pk, 1);
			if (ecases[i].text_str)
				sbx_pack_str(&pk, "t");
			else {
				msgpack_pack_bin(&pk, 1);
				msgpack_pack_bin_body(&pk, "t", 1);
			}
			if (ecases[i].ok) {
				CHECK_EQ_INT(decode_buf(&b, &m), 0);
				CHECK_EQ_INT(m.err, ecases[i].e);
			} else {
				CHECK_REJECTS(&b, "expected errno, code, text");
			}
		}
	}
	sbx_buf_free(&b);
}

static void test_reject_trailing_and_truncated(void)
{
	sbx_buf b = {0};
	sbx_msg m;
	pack_data(&b, F_UINT, 1, F_UINT, 0, F_BIN, 40, F_UINT, 40);
	CHECK_EQ_INT(decode_buf(&b, &m), 0);
	size_t n = sbx_buf_size(&b);
	uint8_t *copy = malloc(n + 3);
	memcpy(copy, sbx_buf_head(&b), n);

	/* Every strict prefix is rejected (and read only within its length:
	 * the copy is exactly that long, so ASan would catch an overread). */
	for (size_t k = 0; k < n; k++) {
		uint8_t *p = malloc(k ? k : 1);
		memcpy(p, copy, k);
		int rc = decode_bytes(p, k, &m);
		free(p);
		CHECK_EQ_INT(rc, -1);
		CHECK(g_err[0] != 0);
	}
	/* Trailing bytes, including a complete second value. */
	copy[n] = 0xc0;
	CHECK_EQ_INT(decode_bytes(copy, n + 1, &m), -1);
	CHECK(strstr(g_err, "1 trailing") != NULL);
	copy[n + 1] = 0x00;
	copy[n + 2] = 0x00;
	CHECK_EQ_INT(decode_bytes(copy, n + 3, &m), -1);
	CHECK(strstr(g_err, "3 trailing") != NULL);
	free(copy);

	/* Invalid msgpack byte (0xc1 is never used) */
	static const uint8_t bad[] = {0x93, 0x02, 0x00, 0xc1};
	CHECK_EQ_INT(decode_bytes(bad, sizeof bad, &m), -1);
	CHECK(g_err[0] != 0);
	sbx_buf_free(&b);
}

static void test_reject_deep_nesting(void)
{
	sbx_buf b = {0};
	msgpack_packer pk;
	sbx_msg m;

	/* Moderate nesting inside a map body is fine. */
	raw_init(&pk, &b);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, SBX_MSG_EXEC);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_map(&pk, 1);
	sbx_pack_str(&pk, "deep");
	for (int i = 0; i < 20; i++)
		msgpack_pack_array(&pk, 1);
	msgpack_pack_nil(&pk);
	CHECK_EQ_INT(decode_buf(&b, &m), 0);

	/* 100,000 levels: rejected, without blowing the stack. */
	for (int depth = 100; depth <= 100000; depth *= 1000) {
		raw_init(&pk, &b);
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint8(&pk, SBX_MSG_EXEC);
		msgpack_pack_uint8(&pk, 1);
		msgpack_pack_map(&pk, 1);
		sbx_pack_str(&pk, "deep");
		for (int i = 0; i < depth; i++)
			msgpack_pack_array(&pk, 1);
		msgpack_pack_nil(&pk);
		CHECK_EQ_INT(decode_buf(&b, &m), -1);
		CHECK(g_err[0] != 0);
	}
	sbx_buf_free(&b);
}

/* Containers and strings that claim far more elements or bytes than the
 * frame holds: rejected as malformed, without trying to allocate what
 * they claim (under ASan a multi-gigabyte malloc aborts the process). */
static void test_reject_huge_claims(void)
{
	static const struct {
		const char *name;
		uint8_t bytes[16];
		size_t n;
	} cases[] = {
		{"array32 root", {0xdd, 0xff, 0xff, 0xff, 0xff}, 5},
		{"map32 root", {0xdf, 0xff, 0xff, 0xff, 0xff}, 5},
		{"array32 in frame", {0x93, 0x10, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff}, 8},
		{"map32 body", {0x93, 0x10, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff}, 8},
		{"map32 1G body", {0x93, 0x10, 0x01, 0xdf, 0x40, 0x00, 0x00, 0x00}, 8},
		{"array32 256M body", {0x93, 0x10, 0x01, 0xdd, 0x10, 0x00, 0x00, 0x00, 0xc0}, 9},
		{"array16 body", {0x93, 0x10, 0x01, 0xdc, 0xff, 0xff, 0xc0}, 7},
		{"root array32 claims", {0xdd, 0x7f, 0xff, 0xff, 0xff, 0x10, 0x01, 0x80}, 8},
		{"str32", {0x93, 0x02, 0x00, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, 9},
		{"bin32", {0x93, 0x02, 0x00, 0xc6, 0xff, 0xff, 0xff, 0xff, 'a'}, 9},
		{"ext32", {0x93, 0x02, 0x00, 0xc9, 0xff, 0xff, 0xff, 0xff, 1, 'a'}, 10},
		{"nested claims", {0x93, 0x10, 0x01, 0x81, 0xa1, 'k', 0xdd, 0x0f, 0xff, 0xff, 0xff, 0xdd,
				   0x0f, 0xff, 0xff, 0xff}, 16},
	};
	sbx_msg m;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t *p = malloc(cases[i].n);
		memcpy(p, cases[i].bytes, cases[i].n);
		int rc = decode_bytes(p, cases[i].n, &m);
		free(p);
		if (rc != -1 || !g_err[0]) {
			char t[400];
			snprintf(t, sizeof t, "%.50s: rc %d err \"%.250s\"", cases[i].name, rc, g_err);
			test_fail(__FILE__, __LINE__, t);
			return;
		}
	}
}

/* The decoder accepts every msgpack format inside a body, including
 * non-minimal encodings (str32 of 3 bytes, array32 of 2, ...). */
static void test_accepts_every_format(void)
{
	static const uint8_t vals[] = {
		0x05,                                     /* positive fixint */
		0xe0,                                     /* negative fixint */
		0xc0, 0xc2, 0xc3,                         /* nil false true */
		0xcc, 0xff, 0xcd, 0x01, 0x02, 0xce, 0, 0, 0, 1, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1,
		0xd0, 0x80, 0xd1, 0x80, 0x00, 0xd2, 0x80, 0, 0, 0, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0,
		0xca, 0x3f, 0x80, 0, 0, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
		0xa3, 'a', 'b', 'c',                      /* fixstr */
		0xd9, 3, 'a', 'b', 'c', 0xda, 0, 3, 'a', 'b', 'c', 0xdb, 0, 0, 0, 3, 'a', 'b', 'c',
		0xc4, 2, 1, 2, 0xc5, 0, 2, 1, 2, 0xc6, 0, 0, 0, 2, 1, 2,
		0xd4, 1, 9, 0xd5, 1, 9, 9, 0xd6, 1, 9, 9, 9, 9, 0xd7, 1, 9, 9, 9, 9, 9, 9, 9, 9,
		0xd8, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
		0xc7, 2, 1, 9, 9, 0xc8, 0, 2, 1, 9, 9, 0xc9, 0, 0, 0, 2, 1, 9, 9,
		0x92, 1, 2, 0xdc, 0, 2, 1, 2, 0xdd, 0, 0, 0, 2, 1, 2,
		0x81, 1, 2, 0xde, 0, 1, 1, 2, 0xdf, 0, 0, 0, 1, 1, 0x90,
		0x80, 0xdc, 0, 0, 0xdf, 0, 0, 0, 0, 0xa0, 0xc4, 0, 0xd9, 0,
	};
	/* Split the bytes into values (msgpack-c itself finds each length),
	 * then wrap them in a map body keyed by index. */
	size_t lens[64], nvals = 0;
	for (size_t i = 0; i < sizeof vals; nvals++) {
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		size_t off = 0;
		int rc = msgpack_unpack_next(&u, (const char *)vals + i, sizeof vals - i, &off);
		msgpack_unpacked_destroy(&u);
		CHECK(rc == MSGPACK_UNPACK_SUCCESS && nvals < 64);
		lens[nvals] = off;
		i += off;
	}
	CHECK(nvals > 40);
	sbx_buf b = {0};
	msgpack_packer pk;
	raw_init(&pk, &b);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, SBX_MSG_EXEC);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_map(&pk, nvals);
	size_t i = 0;
	for (size_t k = 0; k < nvals; k++) {
		msgpack_pack_uint32(&pk, (uint32_t)k);
		sbx_buf_append(&b, vals + i, lens[k]);
		i += lens[k];
	}
	CHECK_EQ_INT(i, sizeof vals);
	sbx_msg m;
	CHECK_EQ_INT(decode_buf(&b, &m), 0);
	CHECK_EQ_INT(m.type, SBX_MSG_EXEC);

	/* A 1 MiB body made of 1-byte elements is fine (each claims 1 byte). */
	raw_init(&pk, &b);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, SBX_MSG_EXEC);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_map(&pk, 1);
	sbx_pack_str(&pk, "k");
	msgpack_pack_array(&pk, 1 << 20);
	for (int k = 0; k < 1 << 20; k++)
		msgpack_pack_nil(&pk);
	CHECK_EQ_INT(decode_buf(&b, &m), 0);
	/* One element short: rejected. */
	sbx_buf_consume(&b, 0);
	b.len--;
	CHECK_EQ_INT(decode_buf(&b, &m), -1);
	sbx_buf_free(&b);
}

/* Random corruption of valid frames never crashes or reads out of bounds
 * (a crude fuzz; ASan does the real checking). */
static void test_mutated_frames(void)
{
	sbx_buf b = {0};
	uint8_t *p = NULL;
	srand(12345);
	int rejected = 0, accepted = 0;
	for (int round = 0; round < 20000; round++) {
		sbx_frame_writer w;
		sbx_buf_clear(&b);
		switch (round % 4) {
		case 0:
			sbx_frame_begin(&w, &b, SBX_MSG_EXEC, 3, 1);
			msgpack_pack_map(&w.pk, 3);
			sbx_pack_kv_str(&w.pk, "argv", "ls");
			sbx_pack_kv_int(&w.pk, "timeout", 30);
			sbx_pack_str(&w.pk, "env");
			msgpack_pack_array(&w.pk, 2);
			sbx_pack_str(&w.pk, "A=1");
			sbx_pack_str(&w.pk, "B=2");
			break;
		case 1:
			sbx_frame_begin(&w, &b, SBX_MSG_DATA, 3, 4);
			msgpack_pack_uint8(&w.pk, 1);
			msgpack_pack_uint8(&w.pk, 0);
			msgpack_pack_bin(&w.pk, 10);
			msgpack_pack_bin_body(&w.pk, "0123456789", 10);
			msgpack_pack_uint32(&w.pk, 10);
			break;
		case 2:
			sbx_frame_begin(&w, &b, SBX_MSG_ERROR, 3, 3);
			msgpack_pack_int(&w.pk, 2);
			sbx_pack_str(&w.pk, "nf");
			sbx_pack_str(&w.pk, "not found");
			break;
		default:
			sbx_frame_begin(&w, &b, SBX_MSG_END, 3, 3);
			msgpack_pack_uint8(&w.pk, 1);
			msgpack_pack_uint64(&w.pk, 10);
			msgpack_pack_uint32(&w.pk, 0xabcdef);
			break;
		}
		sbx_frame_finish(&w, 1 << 20);
		size_t n = sbx_buf_size(&b) - 4;
		p = realloc(p, n);
		memcpy(p, sbx_buf_head(&b) + 4, n);
		int flips = 1 + rand() % 3;
		for (int f = 0; f < flips; f++) {
			size_t at = (size_t)rand() % n;
			p[at] = (rand() % 2) ? (uint8_t)rand() : (uint8_t)(0xc0 + rand() % 32);
		}
		size_t len = (rand() % 5 == 0) ? (size_t)rand() % n : n;
		sbx_msg m;
		int rc = decode_bytes(p, len, &m);
		CHECK(rc == 0 || rc == -1);
		if (rc < 0) {
			CHECK(g_err[0] != 0);
			rejected++;
		} else {
			accepted++;
		}
	}
	CHECK(rejected > 1000);
	free(p);
	sbx_buf_free(&b);
}

/* ---- map helpers ---- */

static void test_map_helpers(void)
{
	sbx_buf b = {0};
	msgpack_packer pk;
	raw_init(&pk, &b);
	msgpack_pack_map(&pk, 12);
	sbx_pack_kv_str(&pk, "name", "alice");
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "nul", 3);
	msgpack_pack_str(&pk, 5);
	msgpack_pack_str_body(&pk, "ab\0cd", 5);
	sbx_pack_kv_str(&pk, "empty", "");
	sbx_pack_kv_str(&pk, "eight", "12345678");
	sbx_pack_kv_int(&pk, "neg", -5);
	sbx_pack_kv_uint(&pk, "huge", UINT64_MAX);
	sbx_pack_kv_bool(&pk, "t", 1);
	sbx_pack_str(&pk, "bin");
	msgpack_pack_bin(&pk, 3);
	msgpack_pack_bin_body(&pk, "abc", 3);
	/* a non-string key, skipped by lookups */
	msgpack_pack_uint8(&pk, 7);
	sbx_pack_str(&pk, "seven");
	sbx_pack_kv_int(&pk, "dup", 1);
	sbx_pack_kv_int(&pk, "dup", 2);
	sbx_pack_str(&pk, "flt");
	msgpack_pack_double(&pk, 1.5);

	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	CHECK(msgpack_unpack_next(&u, (const char *)sbx_buf_head(&b), sbx_buf_size(&b), &off) ==
	      MSGPACK_UNPACK_SUCCESS);
	const msgpack_object *map = &u.data;
	char s[9];

	CHECK_EQ_INT(sbx_map_str(map, "name", s, sizeof s), 0);
	CHECK_EQ_STR(s, "alice");
	/* embedded NUL */
	memset(s, 'Q', sizeof s);
	CHECK_EQ_INT(sbx_map_str(map, "nul", s, sizeof s), -1);
	CHECK(sbx_map_get(map, "nul") != NULL);
	CHECK_EQ_INT(sbx_map_str(map, "empty", s, sizeof s), 0);
	CHECK_EQ_STR(s, "");
	/* 8 chars + NUL fit in 9, not in 8 */
	CHECK_EQ_INT(sbx_map_str(map, "eight", s, 9), 0);
	CHECK_EQ_STR(s, "12345678");
	CHECK_EQ_INT(sbx_map_str(map, "eight", s, 8), -1);
	CHECK_EQ_INT(sbx_map_str(map, "absent", s, sizeof s), -1);
	CHECK_EQ_INT(sbx_map_str(map, "neg", s, sizeof s), -1);
	CHECK_EQ_INT(sbx_map_str(map, "bin", s, sizeof s), -1); /* bin is not str */
	/* Prefixes and extensions of a key do not match. */
	CHECK(sbx_map_get(map, "nam") == NULL);
	CHECK(sbx_map_get(map, "names") == NULL);
	CHECK(sbx_map_get(map, "") == NULL);
	/* First of duplicate keys wins */
	CHECK_EQ_INT(sbx_map_int(map, "dup", 0), 1);

	CHECK_EQ_INT(sbx_map_int(map, "neg", 0), -5);
	CHECK_EQ_INT(sbx_map_int(map, "huge", 77), 77); /* > INT64_MAX */
	CHECK_EQ_INT(sbx_map_int(map, "name", 77), 77);
	CHECK_EQ_INT(sbx_map_int(map, "flt", 77), 77);
	CHECK(sbx_map_uint(map, "huge", 0) == UINT64_MAX);
	CHECK_EQ_INT(sbx_map_uint(map, "neg", 3), 3);
	CHECK_EQ_INT(sbx_map_uint(map, "absent", 3), 3);
	CHECK_EQ_INT(sbx_map_bool(map, "t", 0), 1);
	CHECK_EQ_INT(sbx_map_bool(map, "neg", 0), 0); /* ints are not bools */
	CHECK_EQ_INT(sbx_map_bool(map, "absent", 1), 1);

	/* Not a map */
	const msgpack_object *notmap = sbx_map_get(map, "name");
	CHECK(sbx_map_get(notmap, "name") == NULL);
	CHECK(sbx_map_get(NULL, "name") == NULL);
	CHECK_EQ_INT(sbx_map_int(NULL, "x", 9), 9);
	CHECK_EQ_INT(sbx_map_str(NULL, "x", s, sizeof s), -1);

	/* sbx_obj_str directly */
	CHECK_EQ_INT(sbx_obj_str(NULL, s, sizeof s), -1);
	CHECK_EQ_INT(sbx_obj_str(sbx_map_get(map, "nul"), s, 100), -1);
	CHECK_EQ_INT(sbx_obj_str(sbx_map_get(map, "name"), s, 6), 0);
	CHECK_EQ_STR(s, "alice");
	CHECK_EQ_INT(sbx_obj_str(sbx_map_get(map, "name"), s, 5), -1);
	msgpack_unpacked_destroy(&u);
	sbx_buf_free(&b);
}

/* sbx_buf_take hands over what waits (after consumed bytes, past
 * doubling's slack) NUL-terminated and leaves the buffer empty and usable. */
static void test_buf_take(void)
{
	sbx_buf b = {0};
	size_t len = 99;
	uint8_t *p = sbx_buf_take(&b, &len); /* never allocated */
	CHECK(p != NULL);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(p[0], 0);
	free(p);
	static uint8_t big[300000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)('a' + i % 26);
	CHECK(sbx_buf_append(&b, "skip", 4) == 0);
	CHECK(sbx_buf_append(&b, big, sizeof big) == 0);
	sbx_buf_consume(&b, 4);
	p = sbx_buf_take(&b, &len);
	CHECK(p != NULL);
	CHECK_EQ_INT(len, sizeof big);
	CHECK(p && memcmp(p, big, sizeof big) == 0 && p[len] == 0);
	free(p);
	CHECK(b.data == NULL && sbx_buf_size(&b) == 0);
	CHECK(sbx_buf_append(&b, "again", 5) == 0);
	p = sbx_buf_take(&b, &len);
	CHECK(p && len == 5 && strcmp((char *)p, "again") == 0);
	free(p);
}

int main(void)
{
	RUN(test_names_and_classes);
	RUN(test_roundtrip_map_types);
	RUN(test_roundtrip_scalar_types);
	RUN(test_roundtrip_data_end);
	RUN(test_resize);
	RUN(test_roundtrip_error_goaway);
	RUN(test_frame_finish_limit);
	RUN(test_frame_after_compaction);
	RUN(test_reject_not_array);
	RUN(test_reject_bad_header);
	RUN(test_reject_wrong_arity);
	RUN(test_reject_data_fields);
	RUN(test_reject_end_error_fields);
	RUN(test_reject_trailing_and_truncated);
	RUN(test_reject_deep_nesting);
	RUN(test_reject_huge_claims);
	RUN(test_accepts_every_format);
	RUN(test_mutated_frames);
	RUN(test_map_helpers);
	RUN(test_buf_take);
	return test_summary();
}
