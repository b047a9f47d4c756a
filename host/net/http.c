/* http.c — HTTP requests through libcurl's multi interface on an sbx_loop.
 *
 * Owns the glue between libcurl and the loop (libcurl tells which sockets
 * to watch and when to time out; the loop calls back into
 * curl_multi_socket_action), the per-request state (headers, bounded body,
 * streaming) and the translation of libcurl's errors into sbx_error values
 * that name the request and the cause. */
#include "http.h"

#include <ctype.h>
#include "curl_lib.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "core/internal.h"

#define MAX_HEADER_BLOCK (64 * 1024)
#define DEFAULT_CONNECT_TIMEOUT_MS 30000

struct sbx_http {
	sbx_loop *loop;
	CURLM *multi;
	sbx_timer *timer;       /* libcurl's timeout */
	sbx_timer *reap;        /* removes cancelled calls outside libcurl callbacks */
	sbx_http_call *calls;
	int frozen;             /* a connection was handed over (sbx_http_connect) */
	int finishing;          /* inside check_done: a callback may free the client */
	int freed;              /* sbx_http_free was called from such a callback */
};

struct sbx_http_call {
	sbx_http *h;
	sbx_http_call *next, *prev;
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *connect_to; /* tls.server_name */
	char method[16];
	char *url;
	sbx_http_request rq;
	size_t max_body;
	sbx_buf body, head;
	int cancelled;          /* by the user: no callback, reaped soon */
	int over_limit;         /* the body passed max_body */
	int stopped;            /* on_body asked to stop */
	int timeout_ms;
	sbx_http_connected_cb on_connected;
	void *connected_ud;
	char errbuf[CURL_ERROR_SIZE];
};

static void global_init(void)
{
	static int done;
	if (!done) {
		sbx_curl()->global_init(CURL_GLOBAL_DEFAULT);
		done = 1;
	}
}

/* ---------------------------------------------------------------- loop glue */

static void check_done(sbx_http *h);

static void on_socket(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	sbx_http *h = ud;
	int flags = 0, running;
	if (events & SBX_EV_READ)
		flags |= CURL_CSELECT_IN;
	if (events & SBX_EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	if (events & SBX_EV_ERROR)
		flags |= CURL_CSELECT_ERR;
	sbx_curl()->multi_socket_action(h->multi, fd, flags, &running);
	check_done(h);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)easy;
	(void)socketp;
	sbx_http *h = userp;
	if (what == CURL_POLL_REMOVE) {
		sbx_loop_unwatch(h->loop, s);
		return 0;
	}
	unsigned ev = (what & CURL_POLL_IN ? SBX_EV_READ : 0) | (what & CURL_POLL_OUT ? SBX_EV_WRITE : 0);
	return sbx_loop_watch(h->loop, s, ev, on_socket, h) < 0 ? -1 : 0;
}

static void on_timeout(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_http *h = ud;
	int running;
	h->timer = NULL; /* fired: the loop frees it */
	sbx_curl()->multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	sbx_http *h = userp;
	sbx_timer_cancel(h->loop, h->timer);
	h->timer = NULL;
	if (timeout_ms >= 0) {
		h->timer = sbx_loop_timer(h->loop, (uint64_t)timeout_ms, on_timeout, h);
		if (!h->timer)
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- calls */

static void call_unlink(sbx_http_call *c)
{
	sbx_http *h = c->h;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

/* Frees a call; its easy handle too unless it was handed over (NULL). */
static void call_free(sbx_http_call *c)
{
	if (c->easy) {
		sbx_curl()->multi_remove_handle(c->h->multi, c->easy);
		sbx_curl()->easy_cleanup(c->easy);
	}
	sbx_curl()->slist_free_all(c->headers);
	sbx_curl()->slist_free_all(c->connect_to);
	sbx_buf_free(&c->body);
	sbx_buf_free(&c->head);
	free(c->url);
	free(c);
}

static void reap_cancelled(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_http *h = ud;
	h->reap = NULL;
	sbx_http_call *c = h->calls;
	while (c) {
		sbx_http_call *next = c->next;
		if (c->cancelled) {
			call_unlink(c);
			call_free(c);
		}
		c = next;
	}
}

void sbx_http_cancel(sbx_http_call *c)
{
	if (!c || c->cancelled)
		return;
	c->cancelled = 1;
	sbx_http *h = c->h;
	/* libcurl forbids removing a handle from inside its callbacks, and
	 * the caller may be in one (on_body): remove it from the loop. */
	if (!h->reap)
		h->reap = sbx_loop_timer(h->loop, 0, reap_cancelled, h);
}

static int is_tls_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
		return 1;
	default:
		return 0;
	}
}

/* Turns libcurl's result into an sbx_error naming the request. */
static void describe_failure(sbx_http_call *c, CURLcode rc, sbx_error *e)
{
	const char *detail = c->errbuf[0] ? c->errbuf : sbx_curl()->easy_strerror(rc);
	const char *m = c->method, *u = c->url;
	if (c->over_limit) {
		sbx_error_set(e, SBX_E_LIMIT, EFBIG, "too_large",
			      "%s %s: the response body is larger than the limit of %zu bytes", m, u, c->max_body);
	} else if (c->stopped || c->cancelled) {
		sbx_error_set(e, SBX_E_CANCELLED, ECANCELED, "cancelled", "%s %s: stopped by the caller", m, u);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		sbx_error_set(e, SBX_E_TIMEOUT, ETIMEDOUT, "timeout", "%s %s: timed out (%s)", m, u, detail);
	} else if (rc == CURLE_SSL_CERTPROBLEM) {
		sbx_error_set(e, SBX_E_CONN, EPROTO, "tls",
			      "%s %s: the client certificate or key was rejected: %s (check client-certificate and client-key)",
			      m, u, detail);
	} else if (is_tls_error(rc)) {
		sbx_error_set(e, SBX_E_CONN, EPROTO, "tls",
			      "%s %s: TLS failed: %s (check the certificate authority, the server name, or the client certificate)",
			      m, u, detail);
	} else if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY) {
		sbx_error_set(e, SBX_E_CONN, EHOSTUNREACH, "connection", "%s %s: cannot resolve the host: %s", m, u,
			      detail);
	} else if (rc == CURLE_COULDNT_CONNECT) {
		sbx_error_set(e, SBX_E_CONN, ECONNREFUSED, "connection",
			      "%s %s: cannot connect: %s (is the server running and reachable?)", m, u, detail);
	} else if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
		sbx_error_set(e, SBX_E_INVALID, EINVAL, "invalid", "%s %s: bad URL: %s", m, u, detail);
	} else {
		sbx_error_set(e, SBX_E_CONN, EIO, "connection", "%s %s: %s", m, u, detail);
	}
}

static int noop_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)easy, (void)s, (void)what, (void)userp, (void)socketp;
	return 0;
}

static int noop_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi, (void)timeout_ms, (void)userp;
	return 0;
}

/* A connect-only call succeeded: the connection now belongs to the
 * caller. libcurl drops a CONNECT_ONLY connection when its handle leaves
 * the multi, so the handle stays, and the client stops listening to
 * libcurl (its socket is the caller's to watch) until sbx_http_free. */
static void hand_over(sbx_http_call *c)
{
	sbx_http *h = c->h;
	sbx_curl()->multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, noop_socket_cb);
	sbx_curl()->multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, noop_timer_cb);
	sbx_timer_cancel(h->loop, h->timer);
	h->timer = NULL;
	curl_socket_t s = CURL_SOCKET_BAD;
	if (sbx_curl()->easy_getinfo(c->easy, CURLINFO_ACTIVESOCKET, &s) == CURLE_OK && s != CURL_SOCKET_BAD)
		sbx_loop_unwatch(h->loop, (int)s);
	h->frozen = 1;
}

static void finish(sbx_http_call *c, CURLcode rc)
{
	if (c->on_connected) {
		sbx_error e = {0};
		CURL *easy = NULL;
		if (rc == CURLE_OK) {
			hand_over(c);
			easy = c->easy;
		} else {
			describe_failure(c, rc, &e);
			call_unlink(c);
		}
		sbx_http_connected_cb cb = c->on_connected;
		void *ud = c->connected_ud;
		c->on_connected = NULL;
		if (!easy)
			call_free(c);
		cb(ud, easy, &e);
		return;
	}
	call_unlink(c);
	sbx_http_response r = {0};
	long status = 0;
	sbx_curl()->easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	r.status = status;
	if (rc != CURLE_OK)
		describe_failure(c, rc, &r.error);
	sbx_buf_append(&c->head, "", 1);
	sbx_buf_append(&c->body, "", 1);
	r.headers = (char *)c->head.data;
	r.body = c->body.data;
	r.body_len = c->body.len - 1;
	c->head = (sbx_buf){0};
	c->body = (sbx_buf){0};
	void (*done)(void *, sbx_http_response *) = c->rq.on_done;
	void *ud = c->rq.ud;
	call_free(c);
	if (done)
		done(ud, &r);
	sbx_http_response_free(&r);
}

static void check_done(sbx_http *h)
{
	CURLMsg *msg;
	int left;
	h->finishing++;
	while (!h->frozen && !h->freed && (msg = sbx_curl()->multi_info_read(h->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		sbx_http_call *c = NULL;
		sbx_curl()->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
		CURLcode rc = msg->data.result;
		if (!c || c->cancelled)
			continue; /* reaped later */
		finish(c, rc);
	}
	if (--h->finishing == 0 && h->freed)
		sbx_http_free(h);
}

/* ---------------------------------------------------------------- libcurl callbacks */

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	sbx_http_call *c = ud;
	size_t len = size * n;
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
		sbx_buf_clear(&c->head); /* a new response (after 100, a redirect, a proxy) */
	if (sbx_buf_size(&c->head) + len > MAX_HEADER_BLOCK)
		return 0;
	if (sbx_buf_append(&c->head, p, len) < 0)
		return 0;
	return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
	sbx_http_call *c = ud;
	size_t len = size * n;
	if (c->cancelled)
		return 0;
	long status = 0;
	sbx_curl()->easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	if (c->rq.on_body && status >= 200 && status < 300) {
		if (c->rq.on_body(c->rq.ud, (const uint8_t *)p, len) != 0) {
			c->stopped = 1;
			return 0;
		}
		return len;
	}
	if (sbx_buf_size(&c->body) + len > c->max_body) {
		c->over_limit = 1;
		return 0;
	}
	if (sbx_buf_append(&c->body, p, len) < 0)
		return 0;
	return len;
}

/* ---------------------------------------------------------------- setting up a request */

/* tls.server_name: ask libcurl for https://NAME:PORT/... (so SNI and
 * verification use NAME) but connect to the URL's real host, and keep the
 * real Host header. */
static int apply_server_name(sbx_http_call *c, const char *name)
{
	CURLU *u = sbx_curl()->url();
	char *host = NULL, *port = NULL, *url = NULL;
	int rc = -1;
	if (!u || sbx_curl()->url_set(u, CURLUPART_URL, c->url, 0) != CURLUE_OK ||
	    sbx_curl()->url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    sbx_curl()->url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	if (sbx_curl()->url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK ||
	    sbx_curl()->url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK)
		goto out;
	char line[600];
	snprintf(line, sizeof line, "%s:%s:%s:%s", name, port, host, port);
	c->connect_to = sbx_curl()->slist_append(NULL, line);
	if (!c->connect_to)
		goto out;
	sbx_curl()->easy_setopt(c->easy, CURLOPT_CONNECT_TO, c->connect_to);
	snprintf(line, sizeof line, "Host: %s:%s", host, port);
	c->headers = sbx_curl()->slist_append(c->headers, line);
	sbx_curl()->easy_setopt(c->easy, CURLOPT_URL, url);
	rc = 0;
out:
	sbx_curl()->free(host);
	sbx_curl()->free(port);
	sbx_curl()->free(url);
	sbx_curl()->url_cleanup(u);
	return rc;
}

static void set_blob(CURL *e, CURLoption opt, const char *pem)
{
	struct curl_blob b = {.data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
	sbx_curl()->easy_setopt(e, opt, &b);
}

static void apply_tls(CURL *e, const sbx_http_tls *t)
{
	if (t->ca_pem) {
		set_blob(e, CURLOPT_CAINFO_BLOB, t->ca_pem);
		sbx_curl()->easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
	if (t->cert_pem) {
		set_blob(e, CURLOPT_SSLCERT_BLOB, t->cert_pem);
		sbx_curl()->easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (t->key_pem) {
		set_blob(e, CURLOPT_SSLKEY_BLOB, t->key_pem);
		sbx_curl()->easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (t->insecure) {
		sbx_curl()->easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		sbx_curl()->easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (t->proxy)
		sbx_curl()->easy_setopt(e, CURLOPT_PROXY, t->proxy);
}

static sbx_http_call *call_start(sbx_http *h, const sbx_http_request *rq, sbx_error *err)
{
	const char *method = rq->method ? rq->method : "GET";
	if (!rq->url || !rq->url[0] || strlen(method) >= sizeof ((sbx_http_call *)0)->method) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "HTTP request without a URL or with a bad method");
		return NULL;
	}
	sbx_http_call *c = calloc(1, sizeof *c);
	if (!c || !(c->url = strdup(rq->url)) || !(c->easy = sbx_curl()->easy_init())) {
		if (c)
			free(c->url);
		free(c);
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "%s %s: out of memory", method, rq->url);
		return NULL;
	}
	c->h = h;
	c->rq = *rq;
	snprintf(c->method, sizeof c->method, "%s", method);
	c->max_body = rq->max_body ? rq->max_body : SBX_HTTP_DEFAULT_MAX_BODY;
	CURL *e = c->easy;
	sbx_curl()->easy_setopt(e, CURLOPT_URL, c->url);
	sbx_curl()->easy_setopt(e, CURLOPT_PRIVATE, c);
	sbx_curl()->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	sbx_curl()->easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
	sbx_curl()->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (rq->unix_socket) /* e.g. the Docker engine: http://docker/PATH over a unix socket */
		sbx_curl()->easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, rq->unix_socket);
	sbx_curl()->easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	sbx_curl()->easy_setopt(e, CURLOPT_HEADERDATA, c);
	sbx_curl()->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	sbx_curl()->easy_setopt(e, CURLOPT_WRITEDATA, c);
	sbx_curl()->easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	sbx_curl()->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 rq->connect_timeout_s > 0 ? (long)(rq->connect_timeout_s * 1000) : (long)DEFAULT_CONNECT_TIMEOUT_MS);
	if (rq->timeout_s > 0)
		sbx_curl()->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(rq->timeout_s * 1000));
	apply_tls(e, &rq->tls);
	for (const char *const *hp = rq->headers; hp && *hp; hp++)
		c->headers = sbx_curl()->slist_append(c->headers, *hp);
	c->headers = sbx_curl()->slist_append(c->headers, "Expect:");
	if (rq->tls.server_name && rq->tls.server_name[0] && apply_server_name(c, rq->tls.server_name) < 0) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "%s %s: bad URL or TLS server name '%s'", method,
			      rq->url, rq->tls.server_name);
		call_free(c);
		return NULL;
	}
	sbx_curl()->easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
	/* POSTFIELDS turns a request into a POST: any other method with a
	 * body (even GET) is named explicitly. */
	if (strcmp(method, "HEAD") == 0)
		sbx_curl()->easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") != 0 || rq->body)
		sbx_curl()->easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (rq->body || strcmp(method, "POST") == 0) {
		sbx_curl()->easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
		sbx_curl()->easy_setopt(e, CURLOPT_COPYPOSTFIELDS, rq->body ? (const char *)rq->body : "");
	}
	c->next = h->calls;
	if (c->next)
		c->next->prev = c;
	h->calls = c;
	return c;
}

static int call_launch(sbx_http_call *c, sbx_error *err)
{
	if (sbx_curl()->multi_add_handle(c->h->multi, c->easy) != CURLM_OK) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "%s %s: cannot start the request", c->method, c->url);
		call_unlink(c);
		call_free(c);
		return -1;
	}
	return 0;
}

sbx_http_call *sbx_http_start(sbx_http *h, const sbx_http_request *rq, sbx_error *err)
{
	sbx_http_call *c = call_start(h, rq, err);
	if (!c || call_launch(c, err) < 0)
		return NULL;
	return c;
}

sbx_http_call *sbx_http_connect(sbx_http *h, const sbx_http_request *rq, sbx_http_connected_cb cb, void *ud,
				sbx_error *err)
{
	sbx_http_request r = *rq;
	r.body = NULL;
	r.body_len = 0;
	r.on_body = NULL;
	r.on_done = NULL;
	sbx_http_call *c = call_start(h, &r, err);
	if (!c)
		return NULL;
	c->on_connected = cb;
	c->connected_ud = ud;
	sbx_curl()->easy_setopt(c->easy, CURLOPT_CONNECT_ONLY, 1L);
	sbx_curl()->easy_setopt(c->easy, CURLOPT_HTTPPROXYTUNNEL, 1L); /* ws:// through a proxy too */
	if (call_launch(c, err) < 0)
		return NULL;
	return c;
}

/* ---------------------------------------------------------------- client */

sbx_http *sbx_http_new(sbx_loop *loop)
{
	char why[512];
	if (sbx_curl_load(why, sizeof why) < 0) {
		fprintf(stderr, "libsbx: %s\n", why);
		errno = ENOSYS;
		return NULL;
	}
	global_init();
	sbx_http *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->loop = loop;
	h->multi = sbx_curl()->multi_init();
	if (!h->multi) {
		free(h);
		return NULL;
	}
	sbx_curl()->multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	sbx_curl()->multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	sbx_curl()->multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	sbx_curl()->multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

void sbx_http_free(sbx_http *h)
{
	if (!h)
		return;
	if (h->finishing) { /* from a done callback: check_done frees it when it returns */
		h->freed = 1;
		return;
	}
	while (h->calls) {
		sbx_http_call *c = h->calls;
		call_unlink(c);
		call_free(c);
	}
	sbx_timer_cancel(h->loop, h->timer);
	sbx_timer_cancel(h->loop, h->reap);
	sbx_curl()->multi_cleanup(h->multi);
	free(h);
}

/* ---------------------------------------------------------------- sync, responses */

typedef struct sync_state {
	sbx_http_response *r;
	int done;
	const sbx_http_request *user;
} sync_state;

static int sync_body(void *ud, const uint8_t *p, size_t n)
{
	sync_state *st = ud;
	return st->user->on_body(st->user->ud, p, n);
}

static void sync_done(void *ud, sbx_http_response *r)
{
	sync_state *st = ud;
	*st->r = *r;
	*r = (sbx_http_response){0}; /* the caller owns the buffers now */
	st->done = 1;
}

int sbx_http_sync(sbx_http *h, const sbx_http_request *rq, sbx_http_response *r)
{
	*r = (sbx_http_response){0};
	sync_state st = {r, 0, rq};
	sbx_http_request q = *rq;
	q.on_done = sync_done;
	q.on_body = rq->on_body ? sync_body : NULL;
	q.ud = &st;
	sbx_http_call *c = sbx_http_start(h, &q, &r->error);
	if (!c)
		return -1;
	while (!st.done) {
		if (sbx_loop_run_once(h->loop, -1) < 0 && errno != EINTR) {
			sbx_http_cancel(c);
			sbx_error_set(&r->error, SBX_E_LOCAL, errno, "io", "%s: the event loop failed", rq->url);
			return -1;
		}
	}
	return r->error.status == SBX_OK ? 0 : -1;
}

void sbx_http_response_free(sbx_http_response *r)
{
	if (!r)
		return;
	free(r->headers);
	free(r->body);
	r->headers = NULL;
	r->body = NULL;
	r->body_len = 0;
}

const char *sbx_http_header(const sbx_http_response *r, const char *name, char *out, size_t out_len)
{
	size_t nl = strlen(name);
	for (const char *p = r->headers; p && *p;) {
		const char *eol = strchr(p, '\n');
		const char *end = eol ? eol : p + strlen(p);
		if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = end;
			while (ve > v && isspace((unsigned char)ve[-1]))
				ve--;
			snprintf(out, out_len, "%.*s", (int)(ve - v), v);
			return out;
		}
		p = eol ? eol + 1 : end;
	}
	return NULL;
}
