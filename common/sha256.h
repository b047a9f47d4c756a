/* sha256.h — SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), small and
 * dependency-free so the static agent can authenticate its host without
 * linking a crypto library. Pure computation: no I/O, no allocation. */
#ifndef SBX_SHA256_H
#define SBX_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SBX_SHA256_LEN 32
#define SBX_SHA256_BLOCK 64

typedef struct sbx_sha256 {
	uint32_t h[8];
	uint8_t block[SBX_SHA256_BLOCK];
	size_t fill;    /* bytes waiting in block */
	uint64_t total; /* bytes hashed so far */
} sbx_sha256;

void sbx_sha256_init(sbx_sha256 *s);
void sbx_sha256_update(sbx_sha256 *s, const void *p, size_t n);
void sbx_sha256_final(sbx_sha256 *s, uint8_t out[SBX_SHA256_LEN]);
void sbx_sha256_digest(const void *p, size_t n, uint8_t out[SBX_SHA256_LEN]);

/* HMAC-SHA256 in steps: init with the key, update with the message parts,
 * final writes the tag and wipes the key material from the context. */
typedef struct sbx_hmac {
	sbx_sha256 inner;
	uint8_t okey[SBX_SHA256_BLOCK]; /* key XOR opad */
} sbx_hmac;

void sbx_hmac_init(sbx_hmac *h, const uint8_t *key, size_t key_len);
void sbx_hmac_update(sbx_hmac *h, const void *p, size_t n);
void sbx_hmac_final(sbx_hmac *h, uint8_t out[SBX_SHA256_LEN]);
void sbx_hmac_sha256(const uint8_t *key, size_t key_len, const void *p, size_t n, uint8_t out[SBX_SHA256_LEN]);

/* 1 when a and b hold the same n bytes; the time taken depends only on n. */
int sbx_equal_ct(const uint8_t *a, const uint8_t *b, size_t n);
/* Overwrites n bytes with zeros in a way the compiler keeps. */
void sbx_wipe(void *p, size_t n);

#endif
