/* text.c — string buffers, percent-encoding, SHA-256 hex, AWS time formats
 * (see text.h). */
#include "backends/aws/text.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "net/crypto_lib.h"

int aws_buf_putn(sbx_buf *b, const char *s, size_t n)
{
	if (sbx_buf_reserve(b, n + 1) < 0)
		return -1;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int aws_buf_puts(sbx_buf *b, const char *s)
{
	return aws_buf_putn(b, s, strlen(s));
}

int aws_buf_printf(sbx_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || sbx_buf_reserve(b, (size_t)n + 1) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *aws_buf_str(sbx_buf *b)
{
	if (!b->data || sbx_buf_size(b) == 0)
		return "";
	return (const char *)sbx_buf_head(b);
}

static int unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

int aws_uri_encode(sbx_buf *out, const char *s, size_t n, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	if (sbx_buf_reserve(out, n * 3 + 1) < 0)
		return -1;
	char *p = (char *)out->data + out->len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = 0;
	out->len = (size_t)(p - (char *)out->data);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int aws_uri_decode(sbx_buf *out, const char *s, size_t n)
{
	if (sbx_buf_reserve(out, n + 1) < 0)
		return -1;
	char *p = (char *)out->data + out->len;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			*p++ = s[i];
			continue;
		}
		int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
		int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
		if (hi < 0 || lo < 0)
			return -1;
		*p++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*p = 0;
	out->len = (size_t)(p - (char *)out->data);
	return 0;
}

int aws_form_add(sbx_buf *form, const char *key, const char *value)
{
	if (sbx_buf_size(form) && aws_buf_puts(form, "&") < 0)
		return -1;
	if (aws_uri_encode(form, key, strlen(key), 0) < 0 || aws_buf_puts(form, "=") < 0)
		return -1;
	return aws_uri_encode(form, value, strlen(value), 0);
}

int aws_form_addf(sbx_buf *form, const char *key, const char *fmt, ...)
{
	char value[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(value, sizeof value, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof value)
		return -1;
	return aws_form_add(form, key, value);
}

int aws_base64(sbx_buf *out, const void *data, size_t n)
{
	size_t len = 4 * ((n + 2) / 3);
	if (sbx_buf_reserve(out, len + 1) < 0)
		return -1;
	int w = sbx_crypto()->encode_block(out->data + out->len, data, (int)n);
	if (w < 0)
		return -1;
	out->len += (size_t)w;
	out->data[out->len] = 0;
	return 0;
}

void aws_sha256_hex(const void *data, size_t n, char hex[AWS_SHA256_HEX])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	sbx_crypto()->digest(data, n, md, &mdlen, sbx_crypto()->sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

void aws_amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

void aws_iso8601(time_t t, char out[21])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int aws_parse_iso8601(const char *s, time_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int used = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &used) != 6 || used != 19)
		return -1;
	const char *rest = s + used;
	if (*rest == '.') {
		rest++;
		if (!isdigit((unsigned char)*rest))
			return -1;
		while (isdigit((unsigned char)*rest))
			rest++;
	}
	if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0 && strcmp(rest, "UTC") != 0)
		return -1;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = timegm(&tm);
	return 0;
}
