/* test_sha256.c — common/sha256.c: SHA-256 against FIPS 180-4 examples,
 * HMAC-SHA256 against the RFC 4231 test vectors (keys shorter than, equal
 * to and longer than the block), every message length 0..300 fed whole
 * and byte by byte against OpenSSL, and the constant-time compare. */
#include "sha256.h"
#include "test.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <string.h>

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void test_sha256_fips(void)
{
	uint8_t d[32];
	char h[65];
	sbx_sha256_digest("abc", 3, d);
	hex(d, 32, h);
	CHECK_EQ_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sbx_sha256_digest("", 0, d);
	hex(d, 32, h);
	CHECK_EQ_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sbx_sha256_digest(two, strlen(two), d);
	hex(d, 32, h);
	CHECK_EQ_STR(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* one million 'a', fed in uneven pieces */
	static uint8_t a[1000];
	memset(a, 'a', sizeof a);
	sbx_sha256 s;
	sbx_sha256_init(&s);
	for (int i = 0; i < 1000; i++) {
		sbx_sha256_update(&s, a, 999);
		sbx_sha256_update(&s, a, 1);
	}
	sbx_sha256_final(&s, d);
	hex(d, 32, h);
	CHECK_EQ_STR(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

typedef struct {
	const char *key_hex; /* or a repeated byte */
	uint8_t key_byte;
	size_t key_len;
	const char *data;
	uint8_t data_byte;
	size_t data_len;
	const char *mac; /* hex, possibly truncated (case 5) */
} rfc4231;

static size_t unhex(const char *s, uint8_t *out)
{
	size_t n = strlen(s) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void test_hmac_rfc4231(void)
{
	static const char long_data[] =
		"This is a test using a larger than block-size key and a larger than block-size data. The key "
		"needs to be hashed before being used by the HMAC algorithm.";
	const rfc4231 cases[] = {
		{NULL, 0x0b, 20, "Hi There", 0, 0, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{"4a656665", 0, 0, "what do ya want for nothing?", 0, 0,
		 "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{NULL, 0xaa, 20, NULL, 0xdd, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
		{"0102030405060708090a0b0c0d0e0f10111213141516171819", 0, 0, NULL, 0xcd, 50,
		 "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
		{NULL, 0x0c, 20, "Test With Truncation", 0, 0, "a3b6167473100ee06e0c796c2955552b"},
		{NULL, 0xaa, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 0, 0,
		 "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{NULL, 0xaa, 131, long_data, 0, 0, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const rfc4231 *c = &cases[i];
		uint8_t key[200], data[200], mac[32];
		size_t klen = c->key_hex ? unhex(c->key_hex, key) : c->key_len;
		if (!c->key_hex)
			memset(key, c->key_byte, klen);
		size_t dlen = c->data ? strlen(c->data) : c->data_len;
		if (c->data)
			memcpy(data, c->data, dlen);
		else
			memset(data, c->data_byte, dlen);
		sbx_hmac_sha256(key, klen, data, dlen, mac);
		char h[65];
		hex(mac, 32, h);
		h[strlen(c->mac)] = 0;
		if (strcmp(h, c->mac) != 0) {
			char m[200];
			snprintf(m, sizeof m, "RFC 4231 case %zu: %s != %s", i + 1, h, c->mac);
			test_fail(__FILE__, __LINE__, m);
			return;
		}
	}
}

/* Every length around the block and padding boundaries, whole and in
 * single bytes, against OpenSSL. */
static void test_against_openssl(void)
{
	uint8_t msg[300], key[130];
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)(i * 131 + 7);
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)(i * 17 + 3);
	for (size_t n = 0; n <= sizeof msg; n++) {
		uint8_t ours[32], theirs[32], piecewise[32];
		unsigned tl = 0;
		sbx_sha256_digest(msg, n, ours);
		EVP_Digest(msg, n, theirs, &tl, EVP_sha256(), NULL);
		CHECK(memcmp(ours, theirs, 32) == 0);
		size_t klen = n % sizeof key;
		sbx_hmac h;
		sbx_hmac_init(&h, key, klen);
		for (size_t i = 0; i < n; i++)
			sbx_hmac_update(&h, msg + i, 1);
		sbx_hmac_final(&h, piecewise);
		sbx_hmac_sha256(key, klen, msg, n, ours);
		HMAC(EVP_sha256(), key, (int)klen, msg, n, theirs, &tl);
		CHECK(memcmp(ours, theirs, 32) == 0);
		CHECK(memcmp(piecewise, theirs, 32) == 0);
	}
}

static void test_equal_ct(void)
{
	uint8_t a[32], b[32];
	memset(a, 7, sizeof a);
	memcpy(b, a, sizeof b);
	CHECK(sbx_equal_ct(a, b, 32));
	for (int i = 0; i < 32; i++) {
		b[i] ^= 0x80;
		CHECK(!sbx_equal_ct(a, b, 32));
		b[i] ^= 0x80;
	}
	CHECK(sbx_equal_ct(a, b, 0));
	sbx_wipe(a, sizeof a);
	for (int i = 0; i < 32; i++)
		CHECK(a[i] == 0);
}

int main(void)
{
	RUN(test_sha256_fips);
	RUN(test_hmac_rfc4231);
	RUN(test_against_openssl);
	RUN(test_equal_ct);
	return test_summary();
}
