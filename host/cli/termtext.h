/* termtext.h — text from outside sbx made safe for the user's terminal.
 *
 * Agent log lines ("last words"), error messages (whose text an agent, a
 * cluster or a cloud API wrote), file names: anything the CLI prints that
 * is not the command's own stdout/stderr stream goes through
 * cli_termtext, here through cli_say, so escape sequences a sandbox wrote
 * cannot move the cursor, retitle the window or hide lines. The command's
 * streams (sink.c, `cp ... -`) are never touched: they stay byte-exact. */
#ifndef SBX_CLI_TERMTEXT_H
#define SBX_CLI_TERMTEXT_H

#include <stddef.h>
#include <stdio.h>

/* Longest message cli_say prints (bytes, after escaping). */
#define CLI_SAY_MAX 2048

/* Copies n bytes at s into out (out_len >= 32 bytes, always
 * NUL-terminated) so that a terminal shows them as text and does nothing
 * else: valid, printable UTF-8 and tabs as they are; ESC as \e, CR as \r;
 * other control characters (C0, DEL, C1), bidirectional overrides and
 * bytes that are not valid UTF-8 as \xNN per byte; a newline as is when
 * keep_newlines, else as \n. What does not fit is cut at a character
 * boundary and marked "...[+N bytes]". Returns the length written. */
size_t cli_termtext(char *out, size_t out_len, const char *s, size_t n, int keep_newlines);

/* fprintf(f, fmt, ...) with the whole message passed through cli_termtext
 * (newlines kept), capped at CLI_SAY_MAX. For every message of the CLI. */
void cli_say(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
