/* termtext.c — the CLI's one sanitizer for text that did not come from the
 * command's own streams (termtext.h): one input character at a time, either
 * copied or escaped, then capped. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "termtext.h"

/* Room kept for "...[+N bytes]" when the text is cut. */
#define CUT_MARK_MAX 32

/* Length of the valid UTF-8 sequence at p (n bytes left), with its code
 * point in *cp; 0 when p does not start one (overlong forms, surrogates
 * and values over U+10FFFF are not valid). */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t min;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	} else if ((p[0] & 0xe0) == 0xc0) {
		len = 2, min = 0x80, *cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3, min = 0x800, *cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4, min = 0x10000, *cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (p[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

/* A code point a terminal acts on rather than shows: C0 and C1 controls,
 * DEL, and the marks that reorder text (bidirectional overrides and
 * isolates, as in "trojan source"). */
static int is_control(uint32_t cp)
{
	if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
		return 1;
	if (cp == 0x200e || cp == 0x200f || cp == 0x061c)
		return 1;
	return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The output for the character at p: written to piece (>= 17 bytes,
 * NUL-terminated); returns the input bytes it stands for. */
static size_t next_piece(const unsigned char *p, size_t n, int keep_newlines, char *piece)
{
	uint32_t cp;
	size_t len = utf8_seq(p, n, &cp);
	if (len == 0) { /* not UTF-8: one byte, escaped */
		snprintf(piece, 17, "\\x%02x", p[0]);
		return 1;
	}
	if (cp == '\t' || (cp == '\n' && keep_newlines) || !is_control(cp)) {
		memcpy(piece, p, len);
		piece[len] = 0;
	} else if (cp == 0x1b) {
		strcpy(piece, "\\e");
	} else if (cp == '\n') {
		strcpy(piece, "\\n");
	} else if (cp == '\r') {
		strcpy(piece, "\\r");
	} else {
		piece[0] = 0;
		for (size_t i = 0; i < len; i++)
			snprintf(piece + 4 * i, 5, "\\x%02x", p[i]);
	}
	return len;
}

/* Writes the pieces of s[0..n) into out while they fit in limit bytes;
 * returns the input bytes consumed, *outlen the bytes written. */
static size_t emit(char *out, size_t limit, const unsigned char *s, size_t n, int keep_newlines, size_t *outlen)
{
	size_t i = 0, o = 0;
	char piece[17];
	while (i < n) {
		size_t used = next_piece(s + i, n - i, keep_newlines, piece);
		size_t plen = strlen(piece);
		if (o + plen > limit)
			break;
		if (out)
			memcpy(out + o, piece, plen);
		o += plen;
		i += used;
	}
	*outlen = o;
	return i;
}

size_t cli_termtext(char *out, size_t out_len, const char *s, size_t n, int keep_newlines)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o;
	if (out_len < CUT_MARK_MAX) {
		if (out_len)
			out[0] = 0;
		return 0;
	}
	if (emit(NULL, out_len - 1, u, n, keep_newlines, &o) == n) { /* it all fits */
		emit(out, out_len - 1, u, n, keep_newlines, &o);
		out[o] = 0;
		return o;
	}
	size_t used = emit(out, out_len - CUT_MARK_MAX, u, n, keep_newlines, &o);
	int m = snprintf(out + o, out_len - o, "...[+%zu bytes]", n - used);
	return o + (m > 0 ? (size_t)m : 0);
}

void cli_say(FILE *f, const char *fmt, ...)
{
	char raw[2 * CLI_SAY_MAX], safe[CLI_SAY_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1;
	int newline = len > 0 && raw[len - 1] == '\n';
	cli_termtext(safe, sizeof safe - 1, raw, len - (size_t)newline, 1);
	fputs(safe, f);
	if (newline) /* the message's own end survives a cut */
		fputc('\n', f);
}
