/* auth.c — the AUTH message bodies, the proof and the secret's text form
 * (see auth.h). */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "msg.h"
#include "sha256.h"

static const char PROOF_LABEL[] = "sbx-auth-v1 host"; /* hashed with its NUL */

void sbx_auth_proof(const sbx_auth_key *k, const uint8_t nonce[SBX_AUTH_NONCE_LEN],
		    uint8_t proof[SBX_AUTH_PROOF_LEN])
{
	sbx_hmac h;
	sbx_hmac_init(&h, k->bytes, k->len);
	sbx_hmac_update(&h, PROOF_LABEL, sizeof PROOF_LABEL);
	sbx_hmac_update(&h, nonce, SBX_AUTH_NONCE_LEN);
	sbx_hmac_final(&h, proof);
}

static void pack_bin(msgpack_packer *pk, const char *key, const uint8_t *p, size_t n)
{
	sbx_pack_str(pk, key);
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, p, n);
}

int sbx_auth_pack_challenge(sbx_buf *out, const uint8_t nonce[SBX_AUTH_NONCE_LEN])
{
	sbx_frame_writer w;
	if (sbx_frame_begin(&w, out, SBX_MSG_AUTH, 0, 1) < 0)
		return -1;
	msgpack_pack_map(&w.pk, 2);
	sbx_pack_kv_str(&w.pk, "alg", SBX_AUTH_ALG);
	pack_bin(&w.pk, "nonce", nonce, SBX_AUTH_NONCE_LEN);
	return sbx_frame_finish(&w, 1024);
}

int sbx_auth_pack_proof(sbx_buf *out, const sbx_auth_key *k, const uint8_t nonce[SBX_AUTH_NONCE_LEN])
{
	uint8_t proof[SBX_AUTH_PROOF_LEN];
	sbx_auth_proof(k, nonce, proof);
	sbx_frame_writer w;
	int rc = sbx_frame_begin(&w, out, SBX_MSG_AUTH, 0, 1);
	if (rc == 0) {
		msgpack_pack_map(&w.pk, 1);
		pack_bin(&w.pk, "proof", proof, sizeof proof);
		rc = sbx_frame_finish(&w, 1024);
	}
	sbx_wipe(proof, sizeof proof);
	return rc;
}

/* The bin value of key when it is exactly n bytes, else NULL. */
static const uint8_t *bin_of(const msgpack_object *body, const char *key, size_t n)
{
	const msgpack_object *o = sbx_map_get(body, key);
	if (!o || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != n)
		return NULL;
	return (const uint8_t *)o->via.bin.ptr;
}

int sbx_auth_read_challenge(const msgpack_object *body, uint8_t nonce[SBX_AUTH_NONCE_LEN], char *err,
			    size_t err_len)
{
	char alg[32];
	if (sbx_map_str(body, "alg", alg, sizeof alg) < 0 || strcmp(alg, SBX_AUTH_ALG) != 0) {
		snprintf(err, err_len, "AUTH challenge names an unknown algorithm (this side knows %s)", SBX_AUTH_ALG);
		return -1;
	}
	const uint8_t *p = bin_of(body, "nonce", SBX_AUTH_NONCE_LEN);
	if (!p) {
		snprintf(err, err_len, "AUTH challenge has no %d-byte nonce", SBX_AUTH_NONCE_LEN);
		return -1;
	}
	memcpy(nonce, p, SBX_AUTH_NONCE_LEN);
	return 0;
}

int sbx_auth_check_proof(const msgpack_object *body, const sbx_auth_key *k,
			 const uint8_t nonce[SBX_AUTH_NONCE_LEN], char *err, size_t err_len)
{
	const uint8_t *got = bin_of(body, "proof", SBX_AUTH_PROOF_LEN);
	if (!got) {
		snprintf(err, err_len, "AUTH answer has no %d-byte proof", SBX_AUTH_PROOF_LEN);
		return 0;
	}
	uint8_t want[SBX_AUTH_PROOF_LEN];
	sbx_auth_proof(k, nonce, want);
	int ok = sbx_equal_ct(got, want, sizeof want);
	sbx_wipe(want, sizeof want);
	if (!ok)
		snprintf(err, err_len, "the proof does not match this sandbox's secret");
	return ok;
}

/* ---------------------------------------------------------------- text form */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int sbx_auth_key_parse(const char *text, size_t n, sbx_auth_key *k)
{
	while (n > 0 && is_space(text[0])) {
		text++;
		n--;
	}
	while (n > 0 && is_space(text[n - 1]))
		n--;
	if (n % 2 || n / 2 < SBX_AUTH_KEY_MIN || n / 2 > SBX_AUTH_KEY_MAX)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			sbx_wipe(k, sizeof *k);
			return -1;
		}
		k->bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	k->len = n / 2;
	return 0;
}

void sbx_auth_key_format(const sbx_auth_key *k, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < k->len; i++) {
		out[2 * i] = digits[k->bytes[i] >> 4];
		out[2 * i + 1] = digits[k->bytes[i] & 15];
	}
	out[2 * k->len] = 0;
}
