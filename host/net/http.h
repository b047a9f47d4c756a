/* http.h — HTTP(S) requests on the host's event loop (libcurl multi).
 *
 * One sbx_http per loop drives any number of requests; libcurl's sockets
 * and timeouts are watched by the sbx_loop, so a request never blocks
 * another. Used by the Kubernetes API client, the AWS API clients and, for
 * connecting (TLS, proxy), by the WebSocket client (ws.h).
 *
 * Errors name the method, the URL and the cause (connect, TLS, timeout,
 * body too large), as sbx_error values. */
#ifndef SBX_HTTP_H
#define SBX_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "sbx.h"

#define SBX_HTTP_DEFAULT_MAX_BODY (16u * 1024 * 1024)

typedef struct sbx_http sbx_http;
typedef struct sbx_http_call sbx_http_call;

/* How to reach a server: TLS trust and identity, proxy. PEM strings are
 * NUL-terminated; NULL fields use libcurl's defaults (system CA store, no
 * client certificate, the proxy from the environment). */
typedef struct sbx_http_tls {
	const char *ca_pem;      /* CAs to trust instead of the system store */
	const char *cert_pem;    /* client certificate ... */
	const char *key_pem;     /* ... and its private key */
	const char *server_name; /* verify the server (and send SNI) as this name */
	const char *proxy;       /* "http://host:port", "socks5://..."; "" = no proxy */
	int insecure;            /* skip server verification (tests, insecure-skip-tls-verify) */
} sbx_http_tls;

typedef struct sbx_http_response {
	sbx_error error;       /* SBX_OK when a response arrived (any status) */
	long status;           /* HTTP status, 0 when none arrived */
	char *headers;         /* the last response's header block, NUL-terminated */
	uint8_t *body;         /* the body (NUL-terminated); empty when streamed */
	size_t body_len;
} sbx_http_response;

typedef struct sbx_http_request {
	const char *method;            /* default "GET" */
	const char *url;               /* required */
	const char *const *headers;    /* "Name: value", NULL-terminated, or NULL */
	const void *body;              /* sent as is (copied at start) */
	size_t body_len;
	sbx_http_tls tls;
	const char *unix_socket;        /* connect to this unix socket instead of the URL's host */
	double timeout_s;              /* the whole request; 0 = none */
	double connect_timeout_s;      /* 0 = 30 s */
	size_t max_body;               /* 0 = SBX_HTTP_DEFAULT_MAX_BODY */
	/* Streaming (watches): with on_body set, the body of a 2xx response
	 * goes to on_body as it arrives instead of into the response; return
	 * non-zero to stop (the request then ends with SBX_E_CANCELLED). Error
	 * bodies (non-2xx) are still collected, so on_done can show them. */
	int (*on_body)(void *ud, const uint8_t *p, size_t n);
	/* Called once with the result; r is freed after it returns. */
	void (*on_done)(void *ud, sbx_http_response *r);
	void *ud;
} sbx_http_request;

/* NULL when out of memory, or when libcurl cannot be loaded (curl_lib.h; said on stderr). */
sbx_http *sbx_http_new(sbx_loop *loop);
/* Cancels every request in flight (their on_done is not called) and frees.
 * Allowed from an on_done callback (the client goes once that returns);
 * not from on_body or on_connected. */
void sbx_http_free(sbx_http *h);

/* Starts a request. Returns a handle valid until on_done returned, or NULL
 * with err set (on_done is then never called). */
sbx_http_call *sbx_http_start(sbx_http *h, const sbx_http_request *rq, sbx_error *err);
/* Stops a request; its on_done is not called. Safe from callbacks. */
void sbx_http_cancel(sbx_http_call *c);

/* Blocking: runs the loop until the request is done. Fills *r (free it
 * with sbx_http_response_free); 0 when a response arrived, else -1. */
int sbx_http_sync(sbx_http *h, const sbx_http_request *rq, sbx_http_response *r);
void sbx_http_response_free(sbx_http_response *r);

/* The value of header name (case-insensitive) in r's headers, copied into
 * out; NULL when absent. */
const char *sbx_http_header(const sbx_http_response *r, const char *name, char *out, size_t out_len);

/* ---- for ws.c: connect only, then hand the connection over ----
 * Connects (TCP, proxy CONNECT, TLS) to rq->url's host as libcurl would for
 * a request, then calls on_connected with the connected easy handle (move
 * bytes with curl_easy_send/recv; its socket is CURLINFO_ACTIVESOCKET, for
 * the caller to watch), or with NULL and the error. Use a client of its
 * own: after the handover it serves nothing else, and sbx_http_free (not
 * curl_easy_cleanup) closes the connection. rq->on_done and body unused. */
typedef void (*sbx_http_connected_cb)(void *ud, void *easy, const sbx_error *err);
sbx_http_call *sbx_http_connect(sbx_http *h, const sbx_http_request *rq, sbx_http_connected_cb cb, void *ud,
				sbx_error *err);

#endif
