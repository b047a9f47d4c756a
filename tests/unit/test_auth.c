/* test_auth.c — common/auth.c and the AUTH phase of common/conn.c: an agent
 * with a secret accepts nothing until the host proves it holds the same
 * secret. In memory, an agent conn and a host conn (or hand-made frames):
 * the right key works; a wrong key, no key, no AUTH at all, a request or
 * HELLO before AUTH, a proof replayed from another connection, and every
 * malformed AUTH body fail the connection with a GOAWAY coded "auth" (or
 * "protocol") and deliver nothing to the owner. Also the secret's text
 * form. */
#include "auth.h"
#include "conn.h"
#include "sha256.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct side {
	sbx_conn *c;
	int hellos, msgs;
} side;

static void on_hello(sbx_conn *c, const sbx_hello *peer, void *ud)
{
	(void)c;
	(void)peer;
	((side *)ud)->hellos++;
}

static void on_msg(sbx_conn *c, const sbx_msg *m, void *ud)
{
	(void)c;
	(void)m;
	((side *)ud)->msgs++;
}

static sbx_auth_key key_of(uint8_t fill)
{
	sbx_auth_key k = {.len = SBX_AUTH_KEY_LEN};
	memset(k.bytes, fill, k.len);
	return k;
}

static sbx_conn *new_side(side *s, sbx_role role, const sbx_auth_key *k, uint8_t nonce_fill)
{
	memset(s, 0, sizeof *s);
	sbx_conn_config cfg = {.role = role, .cb = {.on_hello = on_hello, .on_msg = on_msg}, .ud = s};
	strcpy(cfg.hello.boot_id, "b00t");
	cfg.auth_key = k;
	memset(cfg.auth_nonce, nonce_fill, sizeof cfg.auth_nonce);
	s->c = sbx_conn_new(&cfg);
	return s->c;
}

/* Moves what from queued into to; -1 when to failed. */
static int pump(sbx_conn *from, sbx_conn *to)
{
	size_t n;
	const uint8_t *p = sbx_conn_out(from, &n);
	if (n == 0)
		return 0;
	uint8_t *copy = malloc(n);
	memcpy(copy, p, n);
	sbx_conn_out_consume(from, n);
	int rc = sbx_conn_feed(to, copy, n);
	free(copy);
	return rc < 0 ? -1 : 1;
}

static void shuttle(side *host, side *agent)
{
	for (int i = 0; i < 100; i++) {
		int a = pump(agent->c, host->c);
		int b = pump(host->c, agent->c);
		if (a <= 0 && b <= 0)
			return;
	}
}

/* The first frame queued by c, decoded: its type and (GOAWAY) code. */
static int first_frame(sbx_conn *c, char *code, size_t code_len, int *err)
{
	size_t n;
	const uint8_t *p = sbx_conn_out(c, &n);
	if (n < 4)
		return -1;
	size_t len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	if (len > n - 4)
		return -1;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	sbx_msg m;
	char why[200];
	int rc = sbx_msg_decode(p + 4, len, &u, &m, why, sizeof why);
	msgpack_unpacked_destroy(&u);
	if (rc < 0)
		return -1;
	if (code)
		snprintf(code, code_len, "%s", m.code);
	if (err)
		*err = m.err;
	return m.type;
}

/* Feeds hand-made frames to an agent expecting AUTH and checks it fails
 * with a GOAWAY of code `code`, mentioning `what`, delivering nothing. */
static int refused(const sbx_buf *frames, const char *code, const char *what, char *why, size_t why_len)
{
	sbx_auth_key k = key_of(1);
	side a;
	new_side(&a, SBX_ROLE_AGENT, &k, 9);
	size_t n;
	sbx_conn_out(a.c, &n);
	sbx_conn_out_consume(a.c, n); /* its challenge and HELLO */
	int rc = sbx_conn_feed(a.c, sbx_buf_head(frames), sbx_buf_size(frames));
	char got[32] = "";
	int err = 0;
	int type = first_frame(a.c, got, sizeof got, &err);
	const char *e = sbx_conn_error(a.c);
	int ok = rc < 0 && e && strstr(e, what) && type == SBX_MSG_GOAWAY && strcmp(got, code) == 0 &&
		 strcmp(sbx_conn_error_code(a.c), code) == 0 && a.msgs == 0 && a.hellos == 0 &&
		 !sbx_conn_ready(a.c) && err == (strcmp(code, "auth") == 0 ? EACCES : EPROTO);
	snprintf(why, why_len, "rc %d type %d code '%s' errno %d msgs %d error: %s", rc, type, got, err, a.msgs,
		 e ? e : "(none)");
	sbx_conn_free(a.c);
	return ok;
}

#define CHECK_REFUSED(frames, code, what)                                          \
	do {                                                                       \
		char why_[700];                                                    \
		if (!refused(frames, code, what, why_, sizeof why_)) {             \
			test_fail(__FILE__, __LINE__, why_);                       \
			return;                                                    \
		}                                                                  \
	} while (0)

static void f_auth_proof(sbx_buf *b, const void *proof, size_t n, int as_str)
{
	sbx_frame_writer w;
	sbx_frame_begin(&w, b, SBX_MSG_AUTH, 0, 1);
	msgpack_pack_map(&w.pk, 1);
	sbx_pack_str(&w.pk, "proof");
	if (as_str) {
		msgpack_pack_str(&w.pk, n);
		msgpack_pack_str_body(&w.pk, proof, n);
	} else {
		msgpack_pack_bin(&w.pk, n);
		msgpack_pack_bin_body(&w.pk, proof, n);
	}
	sbx_frame_finish(&w, 1u << 20);
}

static void f_hello(sbx_buf *b)
{
	sbx_frame_writer w;
	sbx_frame_begin(&w, b, SBX_MSG_HELLO, 0, 1);
	msgpack_pack_map(&w.pk, 3);
	sbx_pack_kv_uint(&w.pk, "proto", SBX_PROTO_VERSION);
	sbx_pack_kv_uint(&w.pk, "max_frame", SBX_DEFAULT_MAX_FRAME);
	sbx_pack_kv_uint(&w.pk, "window", SBX_DEFAULT_WINDOW);
	sbx_frame_finish(&w, 1u << 20);
}

static void f_exec(sbx_buf *b, uint32_t stream)
{
	sbx_frame_writer w;
	sbx_frame_begin(&w, b, SBX_MSG_EXEC, stream, 1);
	msgpack_pack_map(&w.pk, 1);
	sbx_pack_str(&w.pk, "argv");
	msgpack_pack_array(&w.pk, 1);
	sbx_pack_str(&w.pk, "id");
	sbx_frame_finish(&w, 1u << 20);
}

/* ---------------------------------------------------------------- tests */

static void test_right_key(void)
{
	sbx_auth_key k = key_of(7);
	side h, a;
	new_side(&a, SBX_ROLE_AGENT, &k, 3);
	CHECK_EQ_INT(first_frame(a.c, NULL, 0, NULL), SBX_MSG_AUTH); /* the challenge comes first */
	new_side(&h, SBX_ROLE_HOST, &k, 0);
	shuttle(&h, &a);
	CHECK(sbx_conn_ready(h.c) && sbx_conn_ready(a.c));
	CHECK_EQ_INT(h.hellos, 1);
	CHECK_EQ_INT(a.hellos, 1);
	msgpack_packer *pk = sbx_conn_begin_map(h.c, SBX_MSG_STAT, 5, 1);
	CHECK(pk != NULL);
	sbx_pack_kv_str(pk, "path", "/");
	CHECK(sbx_conn_finish(h.c) == 0);
	shuttle(&h, &a);
	CHECK_EQ_INT(a.msgs, 1);
	CHECK(sbx_conn_error(a.c) == NULL && sbx_conn_error(h.c) == NULL);
	sbx_conn_free(h.c);
	sbx_conn_free(a.c);
}

static void test_wrong_key(void)
{
	sbx_auth_key k = key_of(7), wrong = key_of(7);
	wrong.bytes[31] ^= 1;
	side h, a;
	new_side(&a, SBX_ROLE_AGENT, &k, 3);
	new_side(&h, SBX_ROLE_HOST, &wrong, 0);
	shuttle(&h, &a);
	CHECK(!sbx_conn_ready(a.c) && !sbx_conn_ready(h.c));
	CHECK_EQ_INT(a.hellos, 0);
	CHECK_EQ_STR(sbx_conn_error_code(a.c), "auth");
	CHECK(strstr(sbx_conn_error(a.c), "does not match") != NULL);
	/* the host learns why from the GOAWAY */
	CHECK_EQ_STR(sbx_conn_error_code(h.c), "auth");
	CHECK(strstr(sbx_conn_error(h.c), "agent closed the connection") != NULL);
	sbx_conn_free(h.c);
	sbx_conn_free(a.c);
	/* a key of another length with the same first bytes is another key */
	wrong = key_of(7);
	wrong.len = 31;
	new_side(&a, SBX_ROLE_AGENT, &k, 3);
	new_side(&h, SBX_ROLE_HOST, &wrong, 0);
	shuttle(&h, &a);
	CHECK(!sbx_conn_ready(a.c));
	CHECK_EQ_STR(sbx_conn_error_code(a.c), "auth");
	sbx_conn_free(h.c);
	sbx_conn_free(a.c);
}

static void test_host_without_key(void)
{
	sbx_auth_key k = key_of(7);
	side h, a;
	new_side(&a, SBX_ROLE_AGENT, &k, 3);
	new_side(&h, SBX_ROLE_HOST, NULL, 0);
	shuttle(&h, &a);
	CHECK(!sbx_conn_ready(h.c) && !sbx_conn_ready(a.c));
	CHECK_EQ_STR(sbx_conn_error_code(h.c), "auth");
	CHECK(strstr(sbx_conn_error(h.c), "this session has none") != NULL);
	CHECK_EQ_INT(a.msgs, 0);
	sbx_conn_free(h.c);
	sbx_conn_free(a.c);
}

/* A host with a secret still serves an agent that asks for no proof (a
 * --stdio agent): the secret is only ever an answer. */
static void test_agent_without_key(void)
{
	sbx_auth_key k = key_of(7);
	side h, a;
	new_side(&a, SBX_ROLE_AGENT, NULL, 3);
	CHECK_EQ_INT(first_frame(a.c, NULL, 0, NULL), SBX_MSG_HELLO);
	new_side(&h, SBX_ROLE_HOST, &k, 0);
	shuttle(&h, &a);
	CHECK(sbx_conn_ready(h.c) && sbx_conn_ready(a.c));
	sbx_conn_free(h.c);
	sbx_conn_free(a.c);
}

/* The host's AUTH frame captured from one connection does not open another
 * (each connection has its own nonce). */
static void test_replayed_proof(void)
{
	sbx_auth_key k = key_of(7);
	side h, a;
	new_side(&a, SBX_ROLE_AGENT, &k, 3);
	new_side(&h, SBX_ROLE_HOST, &k, 0);
	pump(a.c, h.c);
	size_t n;
	const uint8_t *p = sbx_conn_out(h.c, &n);
	sbx_buf captured = {0};
	sbx_buf_append(&captured, p, n); /* AUTH + HELLO, as a sniffer would see them */
	CHECK(pump(h.c, a.c) == 1 && sbx_conn_ready(a.c));
	sbx_conn_free(h.c);
	sbx_conn_free(a.c);
	/* replayed to a new connection of the same agent: a new nonce */
	CHECK_REFUSED(&captured, "auth", "does not match");
	sbx_buf_free(&captured);
}

static void test_skipping_auth(void)
{
	sbx_buf b = {0};
	f_hello(&b);
	CHECK_REFUSED(&b, "auth", "HELLO before AUTH");
	sbx_buf_clear(&b);
	f_exec(&b, 3);
	CHECK_REFUSED(&b, "auth", "EXEC before AUTH");
	sbx_buf_clear(&b);
	sbx_frame_writer w;
	sbx_frame_begin(&w, &b, SBX_MSG_PING, 0, 1);
	msgpack_pack_uint64(&w.pk, 1);
	sbx_frame_finish(&w, 1024);
	CHECK_REFUSED(&b, "auth", "PING before AUTH");
	sbx_buf_free(&b);
}

static void test_malformed_proofs(void)
{
	sbx_buf b = {0};
	uint8_t zero[64] = {0};
	f_auth_proof(&b, zero, 32, 0);
	CHECK_REFUSED(&b, "auth", "does not match");
	sbx_buf_clear(&b);
	f_auth_proof(&b, zero, 31, 0);
	CHECK_REFUSED(&b, "auth", "no 32-byte proof");
	sbx_buf_clear(&b);
	f_auth_proof(&b, zero, 33, 0);
	CHECK_REFUSED(&b, "auth", "no 32-byte proof");
	sbx_buf_clear(&b);
	f_auth_proof(&b, zero, 32, 1);
	CHECK_REFUSED(&b, "auth", "no 32-byte proof");
	sbx_buf_clear(&b);
	f_auth_proof(&b, zero, 0, 0);
	CHECK_REFUSED(&b, "auth", "no 32-byte proof");
	/* not a map, on a stream, empty */
	sbx_buf_clear(&b);
	sbx_frame_writer w;
	sbx_frame_begin(&w, &b, SBX_MSG_AUTH, 0, 1);
	msgpack_pack_bin(&w.pk, 32);
	msgpack_pack_bin_body(&w.pk, zero, 32);
	sbx_frame_finish(&w, 1024);
	CHECK_REFUSED(&b, "protocol", "expected a map body");
	sbx_buf_clear(&b);
	sbx_frame_begin(&w, &b, SBX_MSG_AUTH, 7, 1);
	msgpack_pack_map(&w.pk, 0);
	sbx_frame_finish(&w, 1024);
	CHECK_REFUSED(&b, "protocol", "AUTH on stream 7");
	sbx_buf_clear(&b);
	sbx_frame_begin(&w, &b, SBX_MSG_AUTH, 0, 0);
	sbx_frame_finish(&w, 1024);
	CHECK_REFUSED(&b, "protocol", "expected a map body");
	sbx_buf_free(&b);
}

/* A right proof, then a second AUTH or the right proof for another nonce. */
static void test_second_auth(void)
{
	sbx_auth_key k = key_of(7);
	side h, a;
	new_side(&a, SBX_ROLE_AGENT, &k, 3);
	new_side(&h, SBX_ROLE_HOST, &k, 0);
	shuttle(&h, &a);
	CHECK(sbx_conn_ready(a.c));
	sbx_buf b = {0};
	uint8_t nonce[SBX_AUTH_NONCE_LEN];
	memset(nonce, 3, sizeof nonce);
	sbx_auth_pack_proof(&b, &k, nonce);
	CHECK(sbx_conn_feed(a.c, sbx_buf_head(&b), sbx_buf_size(&b)) < 0);
	CHECK(strstr(sbx_conn_error(a.c), "unexpected AUTH") != NULL);
	sbx_buf_free(&b);
	sbx_conn_free(h.c);
	sbx_conn_free(a.c);
}

/* What a hostile agent can send a host in the AUTH phase. */
static void test_hostile_challenges(void)
{
	sbx_auth_key k = key_of(7);
	struct {
		const char *alg;
		size_t nonce_len;
		const char *what;
	} cases[] = {
		{"md5", 32, "unknown algorithm"},
		{NULL, 32, "unknown algorithm"},
		{"hmac-sha256", 31, "no 32-byte nonce"},
		{"hmac-sha256", 0, "no 32-byte nonce"},
		{"hmac-sha256-but-longer-than-the-buffer-holds", 32, "unknown algorithm"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		side h;
		new_side(&h, SBX_ROLE_HOST, &k, 0);
		sbx_buf b = {0};
		sbx_frame_writer w;
		uint8_t nonce[64] = {0};
		sbx_frame_begin(&w, &b, SBX_MSG_AUTH, 0, 1);
		msgpack_pack_map(&w.pk, cases[i].alg ? 2 : 1);
		if (cases[i].alg)
			sbx_pack_kv_str(&w.pk, "alg", cases[i].alg);
		sbx_pack_str(&w.pk, "nonce");
		msgpack_pack_bin(&w.pk, cases[i].nonce_len);
		msgpack_pack_bin_body(&w.pk, nonce, cases[i].nonce_len);
		sbx_frame_finish(&w, 1024);
		int rc = sbx_conn_feed(h.c, sbx_buf_head(&b), sbx_buf_size(&b));
		const char *e = sbx_conn_error(h.c);
		int ok = rc < 0 && e && strstr(e, cases[i].what);
		sbx_buf_free(&b);
		sbx_conn_free(h.c);
		CHECK(ok);
	}
	/* a challenge twice, and a challenge after HELLO */
	for (int after_hello = 0; after_hello < 2; after_hello++) {
		side h;
		new_side(&h, SBX_ROLE_HOST, &k, 0);
		sbx_buf b = {0};
		uint8_t nonce[SBX_AUTH_NONCE_LEN] = {1};
		if (after_hello)
			f_hello(&b);
		else
			sbx_auth_pack_challenge(&b, nonce);
		sbx_auth_pack_challenge(&b, nonce);
		int rc = sbx_conn_feed(h.c, sbx_buf_head(&b), sbx_buf_size(&b));
		const char *e = sbx_conn_error(h.c);
		int ok = rc < 0 && e && strstr(e, after_hello ? "AUTH after HELLO" : "challenge sent twice");
		sbx_buf_free(&b);
		sbx_conn_free(h.c);
		CHECK(ok);
	}
}

/* The proof is HMAC-SHA256(key, "sbx-auth-v1 host\0" || nonce), as
 * docs/PROTOCOL.md states, so other implementations can interoperate. */
static void test_proof_definition(void)
{
	sbx_auth_key k = key_of(0x42);
	uint8_t nonce[SBX_AUTH_NONCE_LEN], msg[17 + SBX_AUTH_NONCE_LEN], want[32], got[32];
	for (int i = 0; i < SBX_AUTH_NONCE_LEN; i++)
		nonce[i] = (uint8_t)i;
	memcpy(msg, "sbx-auth-v1 host", 17);
	memcpy(msg + 17, nonce, sizeof nonce);
	sbx_hmac_sha256(k.bytes, k.len, msg, sizeof msg, want);
	sbx_auth_proof(&k, nonce, got);
	CHECK(memcmp(want, got, 32) == 0);
}

static void test_key_text(void)
{
	sbx_auth_key k;
	const char *good = "  00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n";
	CHECK(sbx_auth_key_parse(good, strlen(good), &k) == 0);
	CHECK_EQ_INT(k.len, 32);
	CHECK_EQ_INT(k.bytes[31], 0xff);
	char text[2 * SBX_AUTH_KEY_MAX + 1];
	sbx_auth_key_format(&k, text);
	CHECK_EQ_STR(text, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	const char *bad[] = {"", "\n", "0011", "0g112233445566778899aabbccddeeff",
			     "00112233445566778899aabbccddeef", /* odd */
			     "0011223344556677 8899aabbccddeeff00"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(sbx_auth_key_parse(bad[i], strlen(bad[i]), &k) < 0);
	char big[2 * SBX_AUTH_KEY_MAX + 3];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	CHECK(sbx_auth_key_parse(big, strlen(big), &k) < 0); /* 65 bytes */
	CHECK(sbx_auth_key_parse(big, 2 * SBX_AUTH_KEY_MAX, &k) == 0);
	CHECK(sbx_auth_key_parse(big, 2 * SBX_AUTH_KEY_MIN, &k) == 0);
	CHECK(sbx_auth_key_parse(big, 2 * SBX_AUTH_KEY_MIN - 2, &k) < 0);
}

int main(void)
{
	RUN(test_right_key);
	RUN(test_wrong_key);
	RUN(test_host_without_key);
	RUN(test_agent_without_key);
	RUN(test_replayed_proof);
	RUN(test_skipping_auth);
	RUN(test_malformed_proofs);
	RUN(test_second_auth);
	RUN(test_hostile_challenges);
	RUN(test_proof_definition);
	RUN(test_key_text);
	return test_summary();
}
