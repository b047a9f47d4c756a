/* json.c — the one JSON writer the CLI needs: strings. Bytes that are not
 * valid UTF-8 become U+FFFD, as Python's errors="replace" does. Characters
 * a terminal acts on (C0 and C1 controls, DEL, bidirectional marks) are
 * written as \uXXXX escapes, so JSON on a terminal is as safe as
 * termtext.c's output; a JSON reader gets the same string. */
#include <stdint.h>

#include "cli.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if invalid; its
 * code point in *out. */
static size_t utf8_len(const unsigned char *p, size_t n, uint32_t *out)
{
	unsigned c = p[0];
	size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
	for (size_t i = 1; i < len; i++)
		cp = cp << 6 | (p[i] & 0x3f);
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*out = cp;
	return len;
}

/* C1 controls and the marks that reorder text on a terminal. */
static int is_terminal_control(uint32_t cp)
{
	return (cp >= 0x80 && cp < 0xa0) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void json_str(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	fputc('"', f);
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		if (c == '"' || c == '\\') {
			fprintf(f, "\\%c", c);
			i++;
		} else if (c == '\n') {
			fputs("\\n", f);
			i++;
		} else if (c == '\t') {
			fputs("\\t", f);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
			i++;
		} else {
			uint32_t cp = 0;
			size_t len = utf8_len(p + i, n - i, &cp);
			if (len == 0) {
				fputs("\\ufffd", f);
				i++;
			} else if (is_terminal_control(cp)) {
				fprintf(f, "\\u%04x", (unsigned)cp);
				i += len;
			} else {
				fwrite(p + i, 1, len, f);
				i += len;
			}
		}
	}
	fputc('"', f);
}
