/* ws_frame.c — WebSocket framing and opening handshake (RFC 6455), sans I/O.
 *
 * The decoder trusts nothing: reserved bits, masked server frames, unknown
 * opcodes, oversized or fragmented control frames, stray continuations,
 * 64-bit lengths with the top bit set, messages over the bound and text
 * that is not UTF-8 all stop it with the close code the RFC asks for.
 * A frame's declared length is checked before its payload is buffered. */
#include "ws_frame.h"

#include <ctype.h>
#include "crypto_lib.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static void random_bytes(uint8_t *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(p + got, n - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	/* getrandom on Linux >= 3.17 does not fail for small sizes; if it
	 * somehow did, a weak mask key is not a security problem for a client
	 * that never talks through an HTTP cache it does not trust. */
}

/* ---------------------------------------------------------------- encoding */

void sbx_ws_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t off)
{
	for (size_t i = 0; i < n; i++)
		p[i] ^= key[(off + i) & 3];
}

int sbx_ws_encode_key(sbx_buf *out, int opcode, const sbx_ws_part *parts, int nparts, const uint8_t key[4])
{
	uint64_t len = 0;
	for (int i = 0; i < nparts; i++)
		len += parts[i].n;
	if (sbx_buf_reserve(out, SBX_WS_MAX_HEADER + (size_t)len) < 0)
		return -1;
	uint8_t h[SBX_WS_MAX_HEADER];
	size_t hl = 0;
	h[hl++] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		h[hl++] = (uint8_t)(0x80 | len);
	} else if (len <= 0xffff) {
		h[hl++] = 0x80 | 126;
		h[hl++] = (uint8_t)(len >> 8);
		h[hl++] = (uint8_t)len;
	} else {
		h[hl++] = 0x80 | 127;
		for (int s = 56; s >= 0; s -= 8)
			h[hl++] = (uint8_t)(len >> s);
	}
	memcpy(h + hl, key, 4);
	hl += 4;
	sbx_buf_append(out, h, hl);
	size_t off = 0;
	for (int i = 0; i < nparts; i++) {
		uint8_t *dst = out->data + out->len;
		sbx_buf_append(out, parts[i].p, parts[i].n);
		sbx_ws_mask(dst, parts[i].n, key, off);
		off += parts[i].n;
	}
	return 0;
}

int sbx_ws_encode(sbx_buf *out, int opcode, const sbx_ws_part *parts, int nparts)
{
	uint8_t key[4];
	random_bytes(key, sizeof key);
	return sbx_ws_encode_key(out, opcode, parts, nparts, key);
}

size_t sbx_ws_close_payload(uint8_t out[125], int code, const char *reason)
{
	out[0] = (uint8_t)(code >> 8);
	out[1] = (uint8_t)code;
	size_t n = reason ? strlen(reason) : 0;
	if (n > 123)
		n = 123;
	/* do not cut a UTF-8 sequence in half */
	while (n > 0 && n < (reason ? strlen(reason) : 0) && ((uint8_t)reason[n] & 0xC0) == 0x80)
		n--;
	if (n)
		memcpy(out + 2, reason, n);
	return 2 + n;
}

/* ---------------------------------------------------------------- UTF-8 */

int sbx_ws_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		uint32_t cp;
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i <= need)
			return 0;
		for (size_t k = 1; k <= need; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3F);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += need + 1;
	}
	return 1;
}

/* ---------------------------------------------------------------- decoding */

void sbx_ws_decoder_init(sbx_ws_decoder *d, size_t max_message, const sbx_ws_decoder_cb *cb, void *ud)
{
	memset(d, 0, sizeof *d);
	d->cb = *cb;
	d->ud = ud;
	d->max_message = max_message;
}

void sbx_ws_decoder_free(sbx_ws_decoder *d)
{
	sbx_buf_free(&d->in);
	sbx_buf_free(&d->msg);
}

static int fail(sbx_ws_decoder *d, int code, const char *what)
{
	d->failed = 1;
	d->close_code = code;
	snprintf(d->error, sizeof d->error, "%s", what);
	return -1;
}

static int deliver(sbx_ws_decoder *d, int opcode, const uint8_t *p, size_t n)
{
	if (opcode == SBX_WS_TEXT && !sbx_ws_utf8_valid(p, n))
		return fail(d, SBX_WS_INVALID_DATA, "the server sent a text message that is not UTF-8");
	d->cb.on_message(d->ud, opcode, p, n);
	return 0;
}

/* Handles one frame if p holds a whole one. Returns the bytes it used, 0
 * if more are needed, -1 on a violation. */
static long one_frame(sbx_ws_decoder *d, const uint8_t *p, size_t n)
{
	if (n < 2)
		return 0;
	int fin = p[0] & 0x80, opcode = p[0] & 0x0f;
	if (p[0] & 0x70)
		return fail(d, SBX_WS_PROTOCOL_ERROR, "the server set reserved bits (no extension was agreed)");
	if (p[1] & 0x80)
		return fail(d, SBX_WS_PROTOCOL_ERROR, "the server sent a masked frame");
	uint64_t len = p[1] & 0x7f;
	size_t hl = 2;
	if (len == 126) {
		if (n < 4)
			return 0;
		len = (uint64_t)p[2] << 8 | p[3];
		hl = 4;
	} else if (len == 127) {
		if (n < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		if (len >> 63)
			return fail(d, SBX_WS_PROTOCOL_ERROR, "the server sent a frame length with the top bit set");
		hl = 10;
	}
	if (opcode >= 8) {
		if (opcode != SBX_WS_CLOSE && opcode != SBX_WS_PING && opcode != SBX_WS_PONG)
			return fail(d, SBX_WS_PROTOCOL_ERROR, "the server sent an unknown control opcode");
		if (!fin || len > 125)
			return fail(d, SBX_WS_PROTOCOL_ERROR, "the server sent a fragmented or oversized control frame");
	} else if (opcode == SBX_WS_CONT) {
		if (!d->msg_opcode)
			return fail(d, SBX_WS_PROTOCOL_ERROR, "the server sent a continuation frame with no message open");
	} else if (opcode == SBX_WS_TEXT || opcode == SBX_WS_BINARY) {
		if (d->msg_opcode)
			return fail(d, SBX_WS_PROTOCOL_ERROR,
				    "the server started a message before finishing the previous one");
	} else {
		return fail(d, SBX_WS_PROTOCOL_ERROR, "the server sent an unknown data opcode");
	}
	if (opcode < 8 && len > d->max_message - sbx_buf_size(&d->msg)) {
		char why[160];
		snprintf(why, sizeof why, "the server sent a message larger than the limit of %zu bytes", d->max_message);
		return fail(d, SBX_WS_TOO_BIG, why);
	}
	if (n - hl < len)
		return 0;
	const uint8_t *payload = p + hl;
	size_t plen = (size_t)len;
	if (opcode >= 8) {
		d->cb.on_control(d->ud, opcode, payload, plen);
	} else if (fin && opcode != SBX_WS_CONT) {
		if (deliver(d, opcode, payload, plen) < 0)
			return -1;
	} else {
		if (opcode != SBX_WS_CONT)
			d->msg_opcode = opcode;
		if (sbx_buf_append(&d->msg, payload, plen) < 0)
			return fail(d, SBX_WS_TOO_BIG, "out of memory assembling a message");
		if (fin) {
			int op = d->msg_opcode;
			d->msg_opcode = 0;
			int rc = deliver(d, op, sbx_buf_head(&d->msg), sbx_buf_size(&d->msg));
			sbx_buf_clear(&d->msg);
			if (rc < 0)
				return -1;
		}
	}
	return (long)(hl + plen);
}

/* Handles every whole frame in p; returns the bytes used or -1. */
static long frames(sbx_ws_decoder *d, const uint8_t *p, size_t n)
{
	size_t used = 0;
	for (;;) {
		long r = one_frame(d, p + used, n - used);
		if (r < 0)
			return -1;
		if (r == 0)
			return (long)used;
		used += (size_t)r;
	}
}

int sbx_ws_decode(sbx_ws_decoder *d, const uint8_t *p, size_t n)
{
	if (d->failed)
		return -1;
	if (sbx_buf_size(&d->in) == 0) {
		/* the common case: parse straight from the input, keep the tail */
		long used = frames(d, p, n);
		if (used < 0)
			return -1;
		if ((size_t)used < n && sbx_buf_append(&d->in, p + used, n - (size_t)used) < 0)
			return fail(d, SBX_WS_TOO_BIG, "out of memory buffering a frame");
		return 0;
	}
	if (sbx_buf_append(&d->in, p, n) < 0)
		return fail(d, SBX_WS_TOO_BIG, "out of memory buffering a frame");
	long used = frames(d, sbx_buf_head(&d->in), sbx_buf_size(&d->in));
	if (used < 0)
		return -1;
	sbx_buf_consume(&d->in, (size_t)used);
	return 0;
}

int sbx_ws_parse_close(const uint8_t *p, size_t n, int *code, char *reason, size_t reason_len)
{
	if (reason_len)
		reason[0] = 0;
	if (n == 0) {
		*code = SBX_WS_NO_STATUS;
		return 0;
	}
	if (n == 1)
		return -1;
	int c = p[0] << 8 | p[1];
	int ok = (c >= 1000 && c <= 1014 && c != 1004 && c != 1005 && c != 1006) || (c >= 3000 && c <= 4999);
	if (!ok || !sbx_ws_utf8_valid(p + 2, n - 2))
		return -1;
	*code = c;
	if (reason_len)
		snprintf(reason, reason_len, "%.*s", (int)(n - 2), (const char *)p + 2);
	return 0;
}

/* ---------------------------------------------------------------- handshake */

void sbx_ws_new_key(char key[25])
{
	uint8_t raw[16];
	random_bytes(raw, sizeof raw);
	sbx_crypto()->encode_block((unsigned char *)key, raw, sizeof raw);
}

void sbx_ws_accept_for(const char *key, char out[29])
{
	char in[128];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n = snprintf(in, sizeof in, "%s%s", key, WS_GUID);
	sbx_crypto()->digest(in, (size_t)n, md, &mdlen, sbx_crypto()->sha1(), NULL);
	sbx_crypto()->encode_block((unsigned char *)out, md, (int)mdlen);
}

static int appendf(sbx_buf *b, const char *fmt, const char *a, const char *c)
{
	char line[8192];
	int n = snprintf(line, sizeof line, fmt, a, c);
	if (n < 0 || (size_t)n >= sizeof line)
		return -1;
	return sbx_buf_append(b, line, (size_t)n);
}

int sbx_ws_request(sbx_buf *out, const char *host, const char *path_query, const char *key,
		   const char *const *protocols, const char *const *headers)
{
	int rc = 0;
	rc |= appendf(out, "GET %s HTTP/1.1\r\nHost: %s\r\n", path_query, host);
	rc |= appendf(out, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s%s\r\n", key, "");
	rc |= sbx_buf_append(out, "Sec-WebSocket-Version: 13\r\n", 27);
	if (protocols && protocols[0]) {
		rc |= sbx_buf_append(out, "Sec-WebSocket-Protocol: ", 24);
		for (int i = 0; protocols[i]; i++)
			rc |= appendf(out, "%s%s", i ? ", " : "", protocols[i]);
		rc |= sbx_buf_append(out, "\r\n", 2);
	}
	for (int i = 0; headers && headers[i]; i++)
		rc |= appendf(out, "%s%s\r\n", headers[i], "");
	rc |= sbx_buf_append(out, "\r\n", 2);
	return rc ? -1 : 0;
}

/* Finds header name in a response head; copies its (trimmed) value. */
static int find_header(const char *head, size_t n, const char *name, char *out, size_t out_len)
{
	size_t nl = strlen(name);
	const char *end = head + n;
	const char *p = memchr(head, '\n', n); /* skip the status line */
	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && isspace((unsigned char)ve[-1]))
				ve--;
			snprintf(out, out_len, "%.*s", (int)(ve - v), v);
			return 1;
		}
		p = eol;
	}
	return 0;
}

/* Is token (case-insensitive) one of the comma-separated items of list? */
static int has_token(const char *list, const char *token)
{
	size_t tl = strlen(token);
	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *te = e;
		while (te > p && (te[-1] == ' ' || te[-1] == '\t'))
			te--;
		if ((size_t)(te - p) == tl && strncasecmp(p, token, tl) == 0)
			return 1;
		p = e;
	}
	return 0;
}

/* The 3-digit status of a status line of sl bytes ("HTTP/1.1 101 ..."),
 * read within those bytes: the head is not NUL-terminated. */
static int status_code(const char *line, size_t sl, int *code)
{
	size_t i = 8;
	while (i < sl && line[i] == ' ')
		i++;
	if (i + 3 > sl)
		return -1;
	*code = 0;
	for (size_t k = i; k < i + 3; k++) {
		if (line[k] < '0' || line[k] > '9')
			return -1;
		*code = *code * 10 + (line[k] - '0');
	}
	return 0;
}

int sbx_ws_check_response(const char *head, size_t n, const char *key, const char *const *protocols,
			  int *status, char *protocol, size_t protocol_len, char *why, size_t why_len)
{
	char v[256];
	*status = 0;
	protocol[0] = 0;
	const char *eol = memchr(head, '\n', n);
	size_t sl = eol ? (size_t)(eol - head) : n;
	while (sl > 0 && (head[sl - 1] == '\r'))
		sl--;
	int code = 0;
	if (sl < 12 || strncmp(head, "HTTP/1.", 7) != 0 || status_code(head, sl, &code) < 0) {
		snprintf(why, why_len, "not an HTTP response: '%.*s'", (int)(sl > 80 ? 80 : sl), head);
		return -1;
	}
	*status = code;
	if (code != 101) {
		snprintf(why, why_len, "the server refused the WebSocket upgrade: %.*s", (int)(sl > 120 ? 120 : sl), head);
		return -1;
	}
	if (!find_header(head, n, "Upgrade", v, sizeof v) || strcasecmp(v, "websocket") != 0) {
		snprintf(why, why_len, "the server's 101 response lacks 'Upgrade: websocket'");
		return -1;
	}
	if (!find_header(head, n, "Connection", v, sizeof v) || !has_token(v, "upgrade")) {
		snprintf(why, why_len, "the server's 101 response lacks 'Connection: Upgrade'");
		return -1;
	}
	char want[29];
	sbx_ws_accept_for(key, want);
	if (!find_header(head, n, "Sec-WebSocket-Accept", v, sizeof v) || strcmp(v, want) != 0) {
		snprintf(why, why_len, "the server's Sec-WebSocket-Accept is missing or wrong");
		return -1;
	}
	if (find_header(head, n, "Sec-WebSocket-Extensions", v, sizeof v) && v[0]) {
		snprintf(why, why_len, "the server chose an extension we did not offer: %s", v);
		return -1;
	}
	if (find_header(head, n, "Sec-WebSocket-Protocol", v, sizeof v) && v[0]) {
		int offered = 0;
		for (int i = 0; protocols && protocols[i]; i++)
			if (strcmp(protocols[i], v) == 0)
				offered = 1;
		if (!offered) {
			snprintf(why, why_len, "the server chose subprotocol '%s', which we did not offer", v);
			return -1;
		}
		snprintf(protocol, protocol_len, "%s", v);
	}
	return 0;
}
