/* sha256.c — SHA-256 per FIPS 180-4 §6.2 and HMAC per RFC 2104 (see
 * sha256.h). Written for clarity over speed: the agent hashes a few
 * hundred bytes per connection. */
#include "sha256.h"

#include <string.h>

/* FIPS 180-4 §4.2.2: the first 32 bits of the fractional parts of the cube
 * roots of the first 64 primes. */
static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* One 64-byte block into the state (§6.2.2). */
static void compress(uint32_t h[8], const uint8_t *block)
{
	uint32_t w[64];
	for (int t = 0; t < 16; t++)
		w[t] = load_be32(block + 4 * t);
	for (int t = 16; t < 64; t++) {
		uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
		uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
		w[t] = w[t - 16] + s0 + w[t - 7] + s1;
	}
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
	for (int t = 0; t < 64; t++) {
		uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = k + S1 + ch + K[t] + w[t];
		uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
		uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t t2 = S0 + maj;
		k = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
	h[5] += f;
	h[6] += g;
	h[7] += k;
	sbx_wipe(w, sizeof w);
}

void sbx_sha256_init(sbx_sha256 *s)
{
	/* §5.3.3: the first 32 bits of the fractional parts of the square
	 * roots of the first 8 primes. */
	static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
				       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	memcpy(s->h, H0, sizeof H0);
	s->fill = 0;
	s->total = 0;
}

void sbx_sha256_update(sbx_sha256 *s, const void *data, size_t n)
{
	const uint8_t *p = data;
	s->total += n;
	while (n > 0) {
		size_t k = SBX_SHA256_BLOCK - s->fill;
		if (k > n)
			k = n;
		memcpy(s->block + s->fill, p, k);
		s->fill += k;
		p += k;
		n -= k;
		if (s->fill == SBX_SHA256_BLOCK) {
			compress(s->h, s->block);
			s->fill = 0;
		}
	}
}

/* §5.1.1: a 1 bit, zeros, then the message length in bits as 64 bits. */
void sbx_sha256_final(sbx_sha256 *s, uint8_t out[SBX_SHA256_LEN])
{
	uint64_t bits = s->total * 8;
	uint8_t pad = 0x80;
	sbx_sha256_update(s, &pad, 1);
	pad = 0;
	while (s->fill != SBX_SHA256_BLOCK - 8)
		sbx_sha256_update(s, &pad, 1);
	uint8_t len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)(bits >> (56 - 8 * i));
	sbx_sha256_update(s, len, 8);
	for (int i = 0; i < 8; i++)
		store_be32(out + 4 * i, s->h[i]);
	sbx_wipe(s, sizeof *s);
}

void sbx_sha256_digest(const void *p, size_t n, uint8_t out[SBX_SHA256_LEN])
{
	sbx_sha256 s;
	sbx_sha256_init(&s);
	sbx_sha256_update(&s, p, n);
	sbx_sha256_final(&s, out);
}

/* ---------------------------------------------------------------- HMAC */

/* RFC 2104 §2: a key longer than the block is hashed first; the key is
 * zero-padded to the block, XORed with ipad (0x36) for the inner hash
 * and with opad (0x5c) for the outer one. */
void sbx_hmac_init(sbx_hmac *h, const uint8_t *key, size_t key_len)
{
	uint8_t k[SBX_SHA256_BLOCK] = {0};
	if (key_len > SBX_SHA256_BLOCK)
		sbx_sha256_digest(key, key_len, k);
	else if (key_len > 0)
		memcpy(k, key, key_len);
	uint8_t ikey[SBX_SHA256_BLOCK];
	for (int i = 0; i < SBX_SHA256_BLOCK; i++) {
		ikey[i] = k[i] ^ 0x36;
		h->okey[i] = k[i] ^ 0x5c;
	}
	sbx_sha256_init(&h->inner);
	sbx_sha256_update(&h->inner, ikey, sizeof ikey);
	sbx_wipe(k, sizeof k);
	sbx_wipe(ikey, sizeof ikey);
}

void sbx_hmac_update(sbx_hmac *h, const void *p, size_t n)
{
	sbx_sha256_update(&h->inner, p, n);
}

void sbx_hmac_final(sbx_hmac *h, uint8_t out[SBX_SHA256_LEN])
{
	uint8_t ihash[SBX_SHA256_LEN];
	sbx_sha256_final(&h->inner, ihash);
	sbx_sha256 outer;
	sbx_sha256_init(&outer);
	sbx_sha256_update(&outer, h->okey, sizeof h->okey);
	sbx_sha256_update(&outer, ihash, sizeof ihash);
	sbx_sha256_final(&outer, out);
	sbx_wipe(h, sizeof *h);
	sbx_wipe(ihash, sizeof ihash);
}

void sbx_hmac_sha256(const uint8_t *key, size_t key_len, const void *p, size_t n, uint8_t out[SBX_SHA256_LEN])
{
	sbx_hmac h;
	sbx_hmac_init(&h, key, key_len);
	sbx_hmac_update(&h, p, n);
	sbx_hmac_final(&h, out);
}

/* ---------------------------------------------------------------- helpers */

int sbx_equal_ct(const uint8_t *a, const uint8_t *b, size_t n)
{
	volatile uint8_t diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

void sbx_wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;
	while (n--)
		*v++ = 0;
}
