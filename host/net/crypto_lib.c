/* crypto_lib.c — libcrypto's table (crypto_lib.h), filled on first use
 * through dynlib.h. */
#include "crypto_lib.h"

#include <openssl/opensslv.h>
#include <pthread.h>

#include "dynlib.h"

#if OPENSSL_VERSION_MAJOR != 3
#error "crypto_lib.c loads libcrypto.so.3: build against OpenSSL 3"
#endif

static sbx_crypto_api api;
static int loaded;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
	const sbx_dynlib_fn fns[] = {
		{(void **)&api.digest, "EVP_Digest"},
		{(void **)&api.encode_block, "EVP_EncodeBlock"},
		{(void **)&api.sha1, "EVP_sha1"},
		{(void **)&api.sha256, "EVP_sha256"},
		{(void **)&api.hmac, "HMAC"},
		{(void **)&api.rand_bytes, "RAND_bytes"},
	};
	loaded = sbx_dynlib_load("libcrypto.so.3", fns, sizeof fns / sizeof fns[0], "libssl3 on Debian/Ubuntu",
				 load_error, sizeof load_error) == 0;
}

const sbx_crypto_api *sbx_crypto(void)
{
	pthread_once(&once, load);
	if (!loaded)
		sbx_dynlib_die(load_error);
	return &api;
}
