/* text.h — small text helpers the AWS code shares: NUL-terminated strings
 * in an sbx_buf, SigV4 percent-encoding and decoding, SHA-256 in hex, and
 * AWS's time formats. */
#ifndef SBX_AWS_TEXT_H
#define SBX_AWS_TEXT_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

#define AWS_SHA256_HEX 65 /* 64 hex digits + NUL */

/* Append a string / n bytes / formatted text, keeping the buffer
 * NUL-terminated (the NUL is not counted in its size). 0 or -1 (ENOMEM). */
int aws_buf_puts(sbx_buf *b, const char *s);
int aws_buf_putn(sbx_buf *b, const char *s, size_t n);
int aws_buf_printf(sbx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The buffer's text: "" when empty. */
const char *aws_buf_str(sbx_buf *b);

/* Percent-encode n bytes as SigV4 does: every byte but A-Z a-z 0-9 - _ . ~
 * becomes %XX (uppercase), and '/' too unless keep_slash. 0 or -1. */
int aws_uri_encode(sbx_buf *out, const char *s, size_t n, int keep_slash);
/* Decode %XX escapes ('+' stays '+'). -1 on a malformed escape. */
int aws_uri_decode(sbx_buf *out, const char *s, size_t n);

/* Append "key=value" (both percent-encoded) to a form or query string,
 * with '&' before it unless it is the first. 0 or -1. */
int aws_form_add(sbx_buf *form, const char *key, const char *value);
int aws_form_addf(sbx_buf *form, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Base64 (standard alphabet, padded) of n bytes, appended. 0 or -1. */
int aws_base64(sbx_buf *out, const void *data, size_t n);

/* Lowercase hex SHA-256 of n bytes. */
void aws_sha256_hex(const void *data, size_t n, char hex[AWS_SHA256_HEX]);

/* "20150830T123600Z" (17 bytes with NUL) and "2015-08-30T12:36:00Z" (21). */
void aws_amz_date(time_t t, char out[17]);
void aws_iso8601(time_t t, char out[21]);
/* Parse ISO 8601 UTC as AWS writes it: "2015-08-30T12:36:00Z", with
 * optional fractional seconds or a "+00:00" offset. -1 if malformed. */
int aws_parse_iso8601(const char *s, time_t *out);

#endif
