/* fuzz_termtext.c — the CLI's terminal sanitizer (host/cli/termtext.c) on
 * any bytes. The first byte picks the mode (bit 0: keep newlines) and the
 * output size; the rest is the text. Whatever the text, the output fits,
 * is valid UTF-8, and holds no character a terminal acts on (controls
 * other than tab and a kept newline, DEL, C1, bidirectional marks); text
 * that was already safe and fits comes out unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "termtext.h"

/* The code point at p (its length in *len), or -1 when not valid UTF-8. */
static long decode(const unsigned char *p, size_t n, size_t *len)
{
	static const unsigned char mask[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
	size_t l = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (l == 0 || l > n)
		return -1;
	long cp = p[0] & mask[l];
	for (size_t i = 1; i < l; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	static const long min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[l] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*len = l;
	return cp;
}

static int acts_on_terminal(long cp, int keep_newlines)
{
	if (cp == '\t' || (cp == '\n' && keep_newlines))
		return 0;
	if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
		return 1;
	return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/* 1 when every character of s[0..n) is valid and shown as is. */
static int all_safe(const unsigned char *s, size_t n, int keep_newlines)
{
	for (size_t i = 0, l; i < n; i += l) {
		long cp = decode(s + i, n - i, &l);
		if (cp < 0 || acts_on_terminal(cp, keep_newlines))
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	int keep = data[0] & 1;
	size_t out_len = 32 + (size_t)(data[0] >> 1) * 16; /* 32..2064 */
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	char *out = malloc(out_len + 1);
	if (!out)
		return 0;
	out[out_len] = 'G'; /* guard: never written */
	size_t w = cli_termtext(out, out_len, s, n, keep);
	FUZZ_ASSERT(w < out_len);
	FUZZ_ASSERT(out[w] == 0 && strlen(out) == w);
	FUZZ_ASSERT(out[out_len] == 'G');
	FUZZ_ASSERT(all_safe((const unsigned char *)out, w, keep));
	if (all_safe((const unsigned char *)s, n, keep) && n < out_len && !memchr(s, 0, n))
		FUZZ_ASSERT(w == n && memcmp(out, s, n) == 0);
	free(out);
	return 0;
}
