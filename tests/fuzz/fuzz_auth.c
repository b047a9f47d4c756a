/* fuzz_auth.c — the AUTH phase of common/conn fed hostile bytes, both ways.
 *
 * Input: one byte (bit 0: which side we are, 0 = an agent with a secret
 * fed what a host sends, 1 = a host with the secret fed what an agent
 * sends; the other bits: the feed size, 0 = all at once), then the peer's
 * bytes. Invariants: the agent hands its owner nothing (no HELLO, no
 * request) unless the bytes fed so far hold the one valid proof for its
 * nonce; a failed connection says why; nothing crashes or leaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "conn.h"
#include "fuzz.h"

typedef struct fed {
	const uint8_t *p;
	size_t n;             /* bytes fed so far */
	uint8_t proof[SBX_AUTH_PROOF_LEN];
} fed;

static int has_proof(const fed *f)
{
	return f->n >= sizeof f->proof && memmem(f->p, f->n, f->proof, sizeof f->proof) != NULL;
}

static void on_hello(sbx_conn *c, const sbx_hello *peer, void *ud)
{
	(void)peer;
	if (sbx_conn_peer(c) && ud)
		FUZZ_ASSERT(has_proof(ud));
}

static void on_msg(sbx_conn *c, const sbx_msg *m, void *ud)
{
	(void)c;
	(void)m;
	if (ud)
		FUZZ_ASSERT(has_proof(ud));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int host = data[0] & 1;
	size_t stride = data[0] >> 1 ? (size_t)(data[0] >> 1) : size;
	data++, size--;
	sbx_auth_key k = {.len = SBX_AUTH_KEY_LEN};
	memset(k.bytes, FUZZ_AUTH_KEY_BYTE, k.len);
	fed f = {.p = data};
	sbx_conn_config cfg = {.role = host ? SBX_ROLE_HOST : SBX_ROLE_AGENT, .auth_key = &k,
			       .cb = {.on_hello = on_hello, .on_msg = on_msg}, .ud = host ? NULL : &f};
	memset(cfg.auth_nonce, FUZZ_AUTH_NONCE_BYTE, sizeof cfg.auth_nonce);
	sbx_auth_proof(&k, cfg.auth_nonce, f.proof);
	snprintf(cfg.hello.boot_id, sizeof cfg.hello.boot_id, "fuzz");
	sbx_conn *c = sbx_conn_new(&cfg);
	int failed = 0;
	for (size_t off = 0; off < size && !failed; off += stride) {
		size_t n = size - off < stride ? size - off : stride;
		f.n = off + n;
		failed = sbx_conn_feed(c, data + off, n) < 0;
		FUZZ_ASSERT(failed == (sbx_conn_error(c) != NULL));
		if (!host && sbx_conn_ready(c))
			FUZZ_ASSERT(has_proof(&f));
		size_t len;
		sbx_conn_out(c, &len);
		sbx_conn_out_consume(c, len);
	}
	if (!failed)
		sbx_conn_eof(c);
	sbx_conn_free(c);
	return 0;
}
