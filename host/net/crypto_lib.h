/* crypto_lib.h — libcrypto (OpenSSL 3), loaded on first use (dynlib.h
 * says why). The remote backends hash, sign and encode with it (SigV4,
 * SSM message digests, the WebSocket handshake, the k8s agent's digest);
 * they call it only through the table sbx_crypto() returns. Types and
 * constants still come from OpenSSL's headers. */
#ifndef SBX_CRYPTO_LIB_H
#define SBX_CRYPTO_LIB_H

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

typedef struct sbx_crypto_api {
	int (*digest)(const void *data, size_t n, unsigned char *md, unsigned int *size, const EVP_MD *type,
		      ENGINE *impl);
	int (*encode_block)(unsigned char *t, const unsigned char *f, int n); /* base64 */
	const EVP_MD *(*sha1)(void);
	const EVP_MD *(*sha256)(void);
	unsigned char *(*hmac)(const EVP_MD *md, const void *key, int key_len, const unsigned char *d, size_t n,
			       unsigned char *out, unsigned int *out_len);
	int (*rand_bytes)(unsigned char *buf, int num);
} sbx_crypto_api;

/* The table, loading libcrypto if needed; when it cannot be loaded this
 * says so on stderr and aborts (every caller is past a libcurl load, and
 * libcurl needs libcrypto too, so that means a broken installation). */
const sbx_crypto_api *sbx_crypto(void);

#endif
