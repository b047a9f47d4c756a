/* ws.c — the WebSocket client: connect through libcurl, upgrade, frames on the loop.
 *
 * States: CONNECTING (libcurl connects, TLS and proxy included, on a private
 * sbx_http), UPGRADING (our GET with Upgrade: websocket, waiting for the
 * 101), OPEN, CLOSING (our close frame sent, waiting for the server's) and
 * DONE (on_close reported). After libcurl handed the connection over, its
 * socket is ours to watch; bytes move with curl_easy_send/recv so TLS stays
 * libcurl's business. */
#include "ws.h"

#include "curl_lib.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#define MAX_RESPONSE_HEAD (16 * 1024)
#define MAX_REFUSAL_BODY 2048
#define CLOSE_WAIT_MS 2000
#define DEFAULT_CONNECT_TIMEOUT_MS 30000
#define RECV_CHUNK (64 * 1024)

typedef enum { WS_CONNECTING, WS_UPGRADING, WS_REFUSED, WS_OPEN, WS_CLOSING, WS_DONE } ws_state;

struct sbx_ws {
	sbx_loop *loop;
	sbx_ws_opts o;
	char *url;            /* as given, for messages */
	char *http_url;       /* ws -> http, wss -> https */
	char **protocols;     /* copies of o.protocols */
	char **headers;       /* copies of o.headers */
	ws_state state;
	sbx_http *http;       /* while connecting */
	sbx_http_call *connecting;
	CURL *easy;           /* the connection, once handed over */
	int fd;
	char key[25];
	sbx_buf out;          /* bytes to write (request, frames) */
	uint8_t *piece;       /* the next bytes of out, handed to libcurl (ws_flush) */
	size_t piece_off, piece_len;
	sbx_buf head;         /* the response head being read */
	int refused_status;
	size_t refused_body_want;
	char refused_why[300];
	sbx_ws_decoder dec;
	int want_writable;
	int in_writable;      /* inside on_writable: no nested call */
	int close_sent;
	sbx_timer *deadline;  /* connect or close timeout */
	sbx_timer *pinger;
	uint64_t last_rx;
	int busy;             /* inside our callbacks */
	int freed;            /* sbx_ws_free ran while busy */
};

static void ws_update_watch(sbx_ws *ws);
static void ws_flush(sbx_ws *ws);

/* ---------------------------------------------------------------- ending */

static void free_http_later(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_http_free(ud);
}

static void release(sbx_ws *ws)
{
	if (ws->fd >= 0) {
		sbx_loop_unwatch(ws->loop, ws->fd);
		ws->fd = -1;
	}
	sbx_timer_cancel(ws->loop, ws->deadline);
	sbx_timer_cancel(ws->loop, ws->pinger);
	ws->deadline = ws->pinger = NULL;
	if (ws->connecting) {
		sbx_http_cancel(ws->connecting);
		ws->connecting = NULL;
	}
	ws->easy = NULL;
	if (ws->http) {
		/* closes the connection; we may be inside that client's callback */
		sbx_loop_defer(ws->loop, free_http_later, ws->http);
		ws->http = NULL;
	}
}

static void free_later(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_ws *ws = ud;
	sbx_buf_free(&ws->out);
	free(ws->piece);
	sbx_buf_free(&ws->head);
	sbx_ws_decoder_free(&ws->dec);
	for (int i = 0; ws->protocols && ws->protocols[i]; i++)
		free(ws->protocols[i]);
	for (int i = 0; ws->headers && ws->headers[i]; i++)
		free(ws->headers[i]);
	free(ws->protocols);
	free(ws->headers);
	free(ws->url);
	free(ws->http_url);
	free(ws);
}

void sbx_ws_free(sbx_ws *ws)
{
	if (!ws || ws->freed)
		return;
	ws->freed = 1;
	release(ws);
	if (ws->busy)
		sbx_loop_defer(ws->loop, free_later, ws);
	else
		free_later(ws->loop, ws);
}

/* Reports the end once and drops the connection (the struct stays until
 * sbx_ws_free). */
static void finish(sbx_ws *ws, const sbx_error *why, int code, const char *reason)
{
	if (ws->state == WS_DONE || ws->freed)
		return;
	ws->state = WS_DONE;
	release(ws);
	ws->busy++;
	if (ws->o.on_close)
		ws->o.on_close(ws->o.ud, why, code, reason ? reason : "");
	ws->busy--;
}

static void fail(sbx_ws *ws, sbx_status st, const char *code, const char *fmt, const char *detail)
{
	sbx_error e;
	sbx_error_set(&e, st, st == SBX_E_TIMEOUT ? ETIMEDOUT : ECONNRESET, code, fmt, ws->url, detail);
	finish(ws, &e, SBX_WS_ABNORMAL, "");
}

/* ---------------------------------------------------------------- sending */

static int queue_frame(sbx_ws *ws, int opcode, const sbx_ws_part *parts, int nparts)
{
	if (sbx_ws_encode(&ws->out, opcode, parts, nparts) < 0)
		return -1;
	if (ws->state == WS_OPEN || ws->state == WS_CLOSING)
		ws_flush(ws);
	return 0;
}

int sbx_ws_send(sbx_ws *ws, int opcode, const sbx_ws_part *parts, int nparts)
{
	if (ws->freed || ws->close_sent || ws->state == WS_DONE || ws->state == WS_REFUSED)
		return -1;
	return queue_frame(ws, opcode, parts, nparts);
}

/* Bytes not yet taken by libcurl: the piece's rest and the queue. */
static size_t queued(const sbx_ws *ws)
{
	return ws->piece_len - ws->piece_off + sbx_buf_size(&ws->out);
}

size_t sbx_ws_queued(const sbx_ws *ws)
{
	return queued(ws);
}

void sbx_ws_want_writable(sbx_ws *ws, int on)
{
	ws->want_writable = on;
}

static void send_close(sbx_ws *ws, int code, const char *reason)
{
	if (ws->close_sent)
		return;
	uint8_t payload[125];
	sbx_ws_part part = {payload, sbx_ws_close_payload(payload, code, reason)};
	ws->close_sent = 1;
	queue_frame(ws, SBX_WS_CLOSE, &part, 1);
}

static void on_close_wait(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_ws *ws = ud;
	ws->deadline = NULL;
	sbx_error e = {0};
	finish(ws, &e, SBX_WS_ABNORMAL, "the server did not answer our close frame");
}

void sbx_ws_close(sbx_ws *ws, int code, const char *reason)
{
	if (ws->freed || ws->state == WS_DONE)
		return;
	if (ws->state != WS_OPEN) {
		sbx_error e;
		sbx_error_set(&e, SBX_E_CANCELLED, ECANCELED, "cancelled", "WebSocket %s: closed before it opened",
			      ws->url);
		finish(ws, &e, SBX_WS_ABNORMAL, "");
		return;
	}
	ws->state = WS_CLOSING;
	send_close(ws, code, reason);
	sbx_timer_cancel(ws->loop, ws->deadline);
	ws->deadline = sbx_loop_timer(ws->loop, CLOSE_WAIT_MS, on_close_wait, ws);
}

#define WS_PIECE (16 * 1024) /* one TLS record */

/* Moves the next WS_PIECE bytes of out to the piece, which stays where it
 * is until libcurl took all of it: a TLS write that would block must be
 * retried with the same bytes at the same address (OpenSSL fails a retry
 * from a buffer that moved or shrank: "bad write retry"), and out moves
 * whenever a frame makes it grow. */
static int load_piece(sbx_ws *ws)
{
	if (!ws->piece && !(ws->piece = malloc(WS_PIECE)))
		return -1;
	size_t n = sbx_buf_size(&ws->out) < WS_PIECE ? sbx_buf_size(&ws->out) : WS_PIECE;
	memcpy(ws->piece, sbx_buf_head(&ws->out), n);
	sbx_buf_consume(&ws->out, n);
	ws->piece_off = 0;
	ws->piece_len = n;
	return 0;
}

/* Writes what the socket takes. */
static void ws_flush(sbx_ws *ws)
{
	while (ws->easy && queued(ws) > 0) {
		if (ws->piece_off == ws->piece_len && load_piece(ws) < 0) {
			fail(ws, SBX_E_CONN, "connection", "WebSocket %s: sending failed: %s", "out of memory");
			return;
		}
		size_t sent = 0;
		CURLcode rc = sbx_curl()->easy_send(ws->easy, ws->piece + ws->piece_off, ws->piece_len - ws->piece_off,
						    &sent);
		if (rc == CURLE_AGAIN)
			break;
		if (rc != CURLE_OK) {
			fail(ws, SBX_E_CONN, "connection", "WebSocket %s: sending failed: %s", sbx_curl()->easy_strerror(rc));
			return;
		}
		ws->piece_off += sent;
	}
	ws_update_watch(ws);
	/* A sender writing from on_writable lands here again: it is told once,
	 * and the loop tells it again when the socket drains. */
	if (ws->want_writable && !ws->in_writable && ws->state == WS_OPEN &&
	    queued(ws) < SBX_WS_HIGH_WATER / 4 && ws->o.on_writable) {
		ws->busy++;
		ws->in_writable = 1;
		ws->o.on_writable(ws->o.ud);
		ws->in_writable = 0;
		ws->busy--;
	}
}

/* ---------------------------------------------------------------- receiving */

static void dec_message(void *ud, int opcode, const uint8_t *p, size_t n)
{
	sbx_ws *ws = ud;
	if (ws->freed || ws->state != WS_OPEN || !ws->o.on_message)
		return; /* after our close frame, data is dropped (RFC 6455 1.4) */
	ws->busy++;
	ws->o.on_message(ws->o.ud, opcode, p, n);
	ws->busy--;
}

static void dec_control(void *ud, int opcode, const uint8_t *p, size_t n)
{
	sbx_ws *ws = ud;
	if (ws->freed || ws->state == WS_DONE)
		return;
	if (opcode == SBX_WS_PING && !ws->close_sent) {
		sbx_ws_part part = {p, n};
		queue_frame(ws, SBX_WS_PONG, &part, 1);
	} else if (opcode == SBX_WS_CLOSE) {
		int code;
		char reason[128];
		if (sbx_ws_parse_close(p, n, &code, reason, sizeof reason) < 0) {
			send_close(ws, SBX_WS_PROTOCOL_ERROR, "bad close frame");
			ws_flush(ws);
			fail(ws, SBX_E_CONN, "protocol", "WebSocket %s: %s", "the server sent a malformed close frame");
			return;
		}
		send_close(ws, code == SBX_WS_NO_STATUS ? SBX_WS_NORMAL : code, "");
		ws_flush(ws);
		sbx_error e = {0};
		if (code != SBX_WS_NORMAL && code != SBX_WS_NO_STATUS) {
			char detail[200];
			snprintf(detail, sizeof detail, "%d%s%s", code, reason[0] ? ": " : "", reason);
			sbx_error_set(&e, SBX_E_CONN, ECONNRESET, "closed", "WebSocket %s: the server closed with code %s",
				      ws->url, detail);
		}
		finish(ws, &e, code, reason);
	}
}

static void on_ping_tick(sbx_loop *loop, void *ud);

static void opened(sbx_ws *ws, const char *protocol)
{
	ws->state = WS_OPEN;
	sbx_timer_cancel(ws->loop, ws->deadline);
	ws->deadline = NULL;
	if (ws->o.ping_ms || ws->o.dead_ms) {
		uint64_t every = ws->o.ping_ms ? ws->o.ping_ms : ws->o.dead_ms / 4 + 1;
		ws->pinger = sbx_loop_timer(ws->loop, every, on_ping_tick, ws);
	}
	ws->busy++;
	if (ws->o.on_open)
		ws->o.on_open(ws->o.ud, protocol);
	ws->busy--;
	if (!ws->freed && ws->state == WS_OPEN)
		ws_flush(ws); /* what was sent before the upgrade */
}

/* A refused upgrade: the body (often a JSON Status from Kubernetes) makes
 * the error message. */
static void refused(sbx_ws *ws)
{
	char detail[MAX_REFUSAL_BODY + 400];
	size_t n = sbx_buf_size(&ws->head);
	if (n > MAX_REFUSAL_BODY)
		n = MAX_REFUSAL_BODY;
	char *body = (char *)sbx_buf_head(&ws->head);
	for (size_t i = 0; i < n; i++)
		if (body[i] == '\r' || body[i] == '\n')
			body[i] = ' ';
	snprintf(detail, sizeof detail, "%s%s%.*s", ws->refused_why, n ? ": " : "", (int)n, body);
	sbx_error e;
	int denied = ws->refused_status == 401 || ws->refused_status == 403;
	sbx_error_set(&e, SBX_E_CONN, ECONNREFUSED, denied ? "denied" : "refused", "WebSocket %s: %s", ws->url, detail);
	finish(ws, &e, SBX_WS_ABNORMAL, "");
}

static size_t content_length(const char *head, size_t n)
{
	const char *p = head, *end = head + n;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			break;
		if (eol - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
			return (size_t)strtoul(p + 15, NULL, 10);
		p = eol + 1;
	}
	return 0;
}

/* Bytes while UPGRADING: collect the response head, check it, hand the
 * rest to the frame decoder. */
static void got_head_bytes(sbx_ws *ws, const uint8_t *p, size_t n)
{
	if (sbx_buf_append(&ws->head, p, n) < 0) {
		fail(ws, SBX_E_LOCAL, "io", "WebSocket %s: %s", "out of memory");
		return;
	}
	const char *h = (const char *)sbx_buf_head(&ws->head);
	size_t hn = sbx_buf_size(&ws->head);
	const char *end = memmem(h, hn, "\r\n\r\n", 4);
	if (!end) {
		if (hn > MAX_RESPONSE_HEAD)
			fail(ws, SBX_E_CONN, "protocol", "WebSocket %s: %s", "the server's response head is too large");
		return;
	}
	size_t head_len = (size_t)(end - h) + 4;
	char protocol[128];
	int status;
	if (sbx_ws_check_response(h, head_len, ws->key, (const char *const *)ws->protocols, &status, protocol,
				  sizeof protocol, ws->refused_why, sizeof ws->refused_why) < 0) {
		if (status == 0 || status == 101) {
			fail(ws, SBX_E_CONN, "protocol", "WebSocket %s: %s", ws->refused_why);
			return;
		}
		ws->state = WS_REFUSED;
		ws->refused_status = status;
		ws->refused_body_want = content_length(h, head_len);
		if (ws->refused_body_want > MAX_REFUSAL_BODY)
			ws->refused_body_want = MAX_REFUSAL_BODY;
		sbx_buf_consume(&ws->head, head_len);
		if (sbx_buf_size(&ws->head) >= ws->refused_body_want)
			refused(ws);
		return;
	}
	sbx_buf rest = {0};
	sbx_buf_append(&rest, h + head_len, hn - head_len);
	sbx_buf_free(&ws->head);
	opened(ws, protocol);
	if (!ws->freed && ws->state == WS_OPEN && sbx_buf_size(&rest) > 0) {
		ws->busy++;
		if (sbx_ws_decode(&ws->dec, sbx_buf_head(&rest), sbx_buf_size(&rest)) < 0 && !ws->freed) {
			send_close(ws, ws->dec.close_code, "protocol error");
			ws_flush(ws);
			fail(ws, SBX_E_CONN, "protocol", "WebSocket %s: %s", ws->dec.error);
		}
		ws->busy--;
	}
	sbx_buf_free(&rest);
}

static void got_bytes(sbx_ws *ws, const uint8_t *p, size_t n)
{
	ws->last_rx = sbx_now_ms();
	switch (ws->state) {
	case WS_UPGRADING:
		got_head_bytes(ws, p, n);
		break;
	case WS_REFUSED:
		sbx_buf_append(&ws->head, p, n);
		if (sbx_buf_size(&ws->head) >= ws->refused_body_want)
			refused(ws);
		break;
	case WS_OPEN:
	case WS_CLOSING:
		if (sbx_ws_decode(&ws->dec, p, n) < 0 && !ws->freed && ws->state != WS_DONE) {
			send_close(ws, ws->dec.close_code, "protocol error");
			ws_flush(ws);
			fail(ws, SBX_E_CONN, "protocol", "WebSocket %s: protocol error from the server: %s", ws->dec.error);
		}
		break;
	default:
		break;
	}
}

static void got_eof(sbx_ws *ws, const char *how)
{
	if (ws->state == WS_REFUSED) {
		refused(ws);
	} else if (ws->state == WS_CLOSING) {
		sbx_error e = {0};
		finish(ws, &e, SBX_WS_ABNORMAL, "");
	} else if (ws->state == WS_UPGRADING) {
		fail(ws, SBX_E_CONN, "connection", "WebSocket %s: the server closed the connection during the upgrade%s",
		     how);
	} else {
		fail(ws, SBX_E_CONN, "connection", "WebSocket %s: the connection ended without a close frame%s", how);
	}
}

static void on_io(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)fd;
	sbx_ws *ws = ud;
	ws->busy++;
	if (events & SBX_EV_WRITE)
		ws_flush(ws);
	if (events & (SBX_EV_READ | SBX_EV_ERROR)) {
		uint8_t buf[RECV_CHUNK];
		/* Read until libcurl says AGAIN: TLS may hold decrypted bytes the
		 * socket no longer shows. */
		while (ws->easy && !ws->freed && ws->state != WS_DONE) {
			size_t got = 0;
			CURLcode rc = sbx_curl()->easy_recv(ws->easy, buf, sizeof buf, &got);
			if (rc == CURLE_AGAIN)
				break;
			if (rc != CURLE_OK) {
				char how[200];
				snprintf(how, sizeof how, " (%s)", sbx_curl()->easy_strerror(rc));
				got_eof(ws, how);
				break;
			}
			if (got == 0) {
				got_eof(ws, "");
				break;
			}
			got_bytes(ws, buf, got);
		}
	}
	ws->busy--; /* freed from a callback meanwhile: the deferred free runs later */
}

static void ws_update_watch(sbx_ws *ws)
{
	if (ws->fd < 0 || ws->state == WS_DONE)
		return;
	unsigned ev = SBX_EV_READ | (queued(ws) > 0 ? SBX_EV_WRITE : 0);
	sbx_loop_watch(ws->loop, ws->fd, ev, on_io, ws);
}

static void on_ping_tick(sbx_loop *loop, void *ud)
{
	sbx_ws *ws = ud;
	ws->pinger = NULL;
	if (ws->state != WS_OPEN)
		return;
	uint64_t now = sbx_now_ms();
	if (ws->o.dead_ms && now - ws->last_rx > ws->o.dead_ms) {
		char detail[100];
		snprintf(detail, sizeof detail, "%.1f", (double)ws->o.dead_ms / 1000);
		fail(ws, SBX_E_TIMEOUT, "timeout", "WebSocket %s: nothing heard from the server for %s s", detail);
		return;
	}
	if (ws->o.ping_ms) {
		sbx_ws_part part = {"sbx", 3};
		queue_frame(ws, SBX_WS_PING, &part, 1);
	}
	uint64_t every = ws->o.ping_ms ? ws->o.ping_ms : ws->o.dead_ms / 4 + 1;
	if (ws->state == WS_OPEN)
		ws->pinger = sbx_loop_timer(loop, every, on_ping_tick, ws);
}

/* ---------------------------------------------------------------- connecting */

static void on_connect_timeout(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_ws *ws = ud;
	ws->deadline = NULL;
	fail(ws, SBX_E_TIMEOUT, "timeout", "WebSocket %s: %s", "the connection and upgrade did not complete in time");
}

/* The Host header and the request target, from the URL. */
static int split_url(const char *url, char *host, size_t host_len, char **target)
{
	CURLU *u = sbx_curl()->url();
	char *h = NULL, *port = NULL, *path = NULL, *query = NULL;
	int rc = -1;
	if (!u || sbx_curl()->url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    sbx_curl()->url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK)
		goto out;
	sbx_curl()->url_get(u, CURLUPART_PORT, &port, 0);
	sbx_curl()->url_get(u, CURLUPART_PATH, &path, 0);
	sbx_curl()->url_get(u, CURLUPART_QUERY, &query, 0);
	snprintf(host, host_len, "%s%s%s", h, port ? ":" : "", port ? port : "");
	size_t n = strlen(path ? path : "/") + (query ? strlen(query) + 1 : 0) + 1;
	*target = malloc(n);
	if (*target) {
		snprintf(*target, n, "%s%s%s", path ? path : "/", query ? "?" : "", query ? query : "");
		rc = 0;
	}
out:
	sbx_curl()->free(h);
	sbx_curl()->free(port);
	sbx_curl()->free(path);
	sbx_curl()->free(query);
	sbx_curl()->url_cleanup(u);
	return rc;
}

static void on_connected(void *ud, void *easy, const sbx_error *err)
{
	sbx_ws *ws = ud;
	ws->connecting = NULL;
	if (!easy) {
		finish(ws, err, SBX_WS_ABNORMAL, "");
		return;
	}
	ws->easy = easy;
	curl_socket_t s = CURL_SOCKET_BAD;
	if (sbx_curl()->easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK || s == CURL_SOCKET_BAD) {
		fail(ws, SBX_E_CONN, "connection", "WebSocket %s: %s", "libcurl gave no connected socket");
		return;
	}
	ws->fd = (int)s;
	char host[512];
	char *target = NULL;
	/* the request goes first, ahead of frames queued before the upgrade */
	sbx_buf req = {0};
	if (split_url(ws->http_url, host, sizeof host, &target) < 0 ||
	    sbx_ws_request(&req, host, target, ws->key, (const char *const *)ws->protocols,
			   (const char *const *)ws->headers) < 0 ||
	    sbx_buf_append(&req, sbx_buf_head(&ws->out), sbx_buf_size(&ws->out)) < 0) {
		free(target);
		sbx_buf_free(&req);
		fail(ws, SBX_E_INVALID, "invalid", "WebSocket %s: %s", "cannot build the upgrade request");
		return;
	}
	free(target);
	sbx_buf_free(&ws->out);
	ws->out = req;
	ws->state = WS_UPGRADING;
	ws->last_rx = sbx_now_ms();
	ws_flush(ws);
}

static char **copy_list(const char *const *l)
{
	size_t n = 0;
	while (l && l[n])
		n++;
	char **c = calloc(n + 1, sizeof *c);
	for (size_t i = 0; c && i < n; i++)
		c[i] = strdup(l[i]);
	return c;
}

sbx_ws *sbx_ws_connect(sbx_loop *loop, const sbx_ws_opts *o, sbx_error *err)
{
	if (!o->url) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "WebSocket: no URL");
		return NULL;
	}
	const char *rest;
	const char *scheme;
	if (strncmp(o->url, "wss://", 6) == 0)
		scheme = "https://", rest = o->url + 6;
	else if (strncmp(o->url, "ws://", 5) == 0)
		scheme = "http://", rest = o->url + 5;
	else if (strncmp(o->url, "https://", 8) == 0)
		scheme = "https://", rest = o->url + 8;
	else if (strncmp(o->url, "http://", 7) == 0)
		scheme = "http://", rest = o->url + 7;
	else {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid",
			      "WebSocket %s: the URL must start with ws://, wss://, http:// or https://", o->url);
		return NULL;
	}
	sbx_ws *ws = calloc(1, sizeof *ws);
	if (!ws) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	ws->loop = loop;
	ws->o = *o;
	ws->fd = -1;
	ws->url = strdup(o->url);
	ws->http_url = malloc(strlen(scheme) + strlen(rest) + 1);
	if (ws->http_url)
		sprintf(ws->http_url, "%s%s", scheme, rest);
	ws->protocols = copy_list(o->protocols);
	ws->headers = copy_list(o->headers);
	ws->o.protocols = NULL;
	ws->o.headers = NULL;
	ws->o.url = NULL;
	sbx_ws_new_key(ws->key);
	sbx_ws_decoder_cb dcb = {dec_message, dec_control};
	sbx_ws_decoder_init(&ws->dec, o->max_message ? o->max_message : SBX_WS_DEFAULT_MAX_MESSAGE, &dcb, ws);
	ws->http = sbx_http_new(loop);
	if (!ws->url || !ws->http_url || !ws->protocols || !ws->headers || !ws->http) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		if (ws->http)
			sbx_http_free(ws->http);
		ws->http = NULL;
		sbx_ws_free(ws);
		return NULL;
	}
	double ct = o->connect_timeout_s > 0 ? o->connect_timeout_s : DEFAULT_CONNECT_TIMEOUT_MS / 1000.0;
	sbx_http_request rq = {.url = ws->http_url, .tls = o->tls, .connect_timeout_s = ct};
	ws->connecting = sbx_http_connect(ws->http, &rq, on_connected, ws, err);
	if (!ws->connecting) {
		sbx_http_free(ws->http);
		ws->http = NULL;
		sbx_ws_free(ws);
		return NULL;
	}
	ws->deadline = sbx_loop_timer(loop, (uint64_t)(ct * 1000), on_connect_timeout, ws);
	return ws;
}
