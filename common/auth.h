/* auth.h — the host proves it holds the sandbox's secret: the AUTH message
 * a listening agent sends before its HELLO (a challenge with a fresh nonce)
 * and the host's answer (an HMAC-SHA256 of that nonce), docs/PROTOCOL.md §5.1.
 *
 * This file owns the message bodies, the proof and the secret's text form.
 * It computes and encodes only: conn.c decides when AUTH is sent and what a
 * bad one does, keyfile.c reads and writes secret files. */
#ifndef SBX_AUTH_H
#define SBX_AUTH_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SBX_AUTH_ALG "hmac-sha256"
#define SBX_AUTH_NONCE_LEN 32
#define SBX_AUTH_PROOF_LEN 32
#define SBX_AUTH_KEY_MIN 16 /* shortest secret accepted */
#define SBX_AUTH_KEY_MAX 64 /* longest secret accepted */
#define SBX_AUTH_KEY_LEN 32 /* what sbx generates: 256 random bits */

/* A secret: its bytes and length (SBX_AUTH_KEY_MIN..SBX_AUTH_KEY_MAX). */
typedef struct sbx_auth_key {
	uint8_t bytes[SBX_AUTH_KEY_MAX];
	size_t len;
} sbx_auth_key;

/* proof = HMAC-SHA256(key, "sbx-auth-v1 host" NUL || nonce). The label
 * names the direction (the host proves itself to the agent), so a proof
 * can never be reflected as some other value. */
void sbx_auth_proof(const sbx_auth_key *k, const uint8_t nonce[SBX_AUTH_NONCE_LEN],
		    uint8_t proof[SBX_AUTH_PROOF_LEN]);

/* Append one complete AUTH frame: the agent's challenge
 * [5, 0, {"alg": "hmac-sha256", "nonce": bin(32)}] or the host's answer
 * [5, 0, {"proof": bin(32)}]. 0, or -1 when out of memory. */
int sbx_auth_pack_challenge(sbx_buf *out, const uint8_t nonce[SBX_AUTH_NONCE_LEN]);
int sbx_auth_pack_proof(sbx_buf *out, const sbx_auth_key *k, const uint8_t nonce[SBX_AUTH_NONCE_LEN]);

/* The nonce of a challenge body; -1 with a reason when the algorithm is not
 * ours or the nonce is not a bin of SBX_AUTH_NONCE_LEN bytes. */
int sbx_auth_read_challenge(const msgpack_object *body, uint8_t nonce[SBX_AUTH_NONCE_LEN], char *err,
			    size_t err_len);
/* 1 when an answer body carries the right proof for nonce (compared in
 * constant time), else 0 with a reason that reveals nothing about the key. */
int sbx_auth_check_proof(const msgpack_object *body, const sbx_auth_key *k,
			 const uint8_t nonce[SBX_AUTH_NONCE_LEN], char *err, size_t err_len);

/* A secret's text form: hex digits (an even number, SBX_AUTH_KEY_MIN..MAX
 * bytes), leading and trailing whitespace ignored. 0, or -1 when malformed. */
int sbx_auth_key_parse(const char *text, size_t n, sbx_auth_key *k);
/* Writes 2 * k->len hex digits and a NUL into out (at least 2 * len + 1). */
void sbx_auth_key_format(const sbx_auth_key *k, char *out);

#endif
