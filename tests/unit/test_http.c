/* test_http.c — HTTP requests on the loop (host/net/http.c) against a real
 * local HTTP(S) server (tests/net/server.py) with certificates made by
 * openssl: TLS trust, client certificates, server name, proxy, limits,
 * streaming, timeouts, cancellation and the errors of each failure. */
#include "net/http.h"
#include "net_util.h"

static char certs[256];
static char *ca_pem, *other_ca_pem, *client_pem, *client_key;
static net_peer tls_srv, mtls_srv, plain_srv;
static sbx_loop *loop;
static sbx_http *http;

static void url(char *out, size_t len, const net_peer *p, const char *scheme, const char *path)
{
	snprintf(out, len, "%s://127.0.0.1:%d%s", scheme, p->port, path);
}

static int get(const char *u, const sbx_http_tls *tls, sbx_http_response *r)
{
	sbx_http_request rq = {.url = u, .tls = *tls, .timeout_s = 20};
	return sbx_http_sync(http, &rq, r);
}

static void test_get_over_tls_with_ca(void)
{
	char u[200];
	url(u, sizeof u, &tls_srv, "https", "/echo?a=1");
	sbx_http_response r;
	sbx_http_tls tls = {.ca_pem = ca_pem};
	CHECKF(get(u, &tls, &r) == 0, "%s", r.error.message);
	CHECK_EQ_INT(r.status, 200);
	CHECK(strstr((char *)r.body, "\"method\": \"GET\""));
	CHECK(strstr((char *)r.body, "\"/echo?a=1\""));
	char v[64];
	CHECK_EQ_STR(sbx_http_header(&r, "x-echo", v, sizeof v), "yes");
	CHECK(sbx_http_header(&r, "X-Absent", v, sizeof v) == NULL);
	sbx_http_response_free(&r);
}

static void test_methods_headers_and_body(void)
{
	char u[200];
	url(u, sizeof u, &tls_srv, "https", "/echo");
	/* GET with a body too: a body must not turn it into a POST */
	const char *methods[] = {"POST", "PUT", "PATCH", "DELETE", "GET"};
	for (int i = 0; i < 5; i++) {
		const char *hdrs[] = {"X-Test: value-7", "Content-Type: application/json", NULL};
		const char *body = "{\"k\":\"\xc3\xa9\"}";
		sbx_http_request rq = {.method = methods[i], .url = u, .headers = hdrs, .body = body,
				       .body_len = strlen(body), .tls = {.ca_pem = ca_pem}, .timeout_s = 20};
		sbx_http_response r;
		CHECKF(sbx_http_sync(http, &rq, &r) == 0, "%s", r.error.message);
		char want[64];
		snprintf(want, sizeof want, "\"method\": \"%s\"", methods[i]);
		CHECKF(strstr((char *)r.body, want), "%s", r.body);
		CHECK(strstr((char *)r.body, "\"X-Test\": \"value-7\""));
		char len[32];
		snprintf(len, sizeof len, "\"body_len\": %zu", strlen(body));
		CHECKF(strstr((char *)r.body, len), "%s", r.body);
		sbx_http_response_free(&r);
	}
	sbx_http_request rq = {.method = "HEAD", .url = u, .tls = {.ca_pem = ca_pem}};
	sbx_http_response r;
	CHECKF(sbx_http_sync(http, &rq, &r) == 0, "%s", r.error.message);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(r.body_len, 0);
	sbx_http_response_free(&r);
}

static void test_error_status_keeps_body(void)
{
	char u[200];
	url(u, sizeof u, &tls_srv, "https", "/status/404");
	sbx_http_response r;
	sbx_http_tls tls = {.ca_pem = ca_pem};
	CHECK(get(u, &tls, &r) == 0); /* a response is not a transport error */
	CHECK_EQ_INT(r.status, 404);
	CHECK_EQ_STR((char *)r.body, "status 404 body");
	sbx_http_response_free(&r);
}

static void test_body_limit(void)
{
	char u[200];
	url(u, sizeof u, &tls_srv, "https", "/big?n=100000");
	sbx_http_request rq = {.url = u, .tls = {.ca_pem = ca_pem}, .max_body = 1000};
	sbx_http_response r;
	CHECK(sbx_http_sync(http, &rq, &r) < 0);
	CHECK_ERR(r.error, SBX_E_LIMIT, "too_large");
	CHECKF(strstr(r.error.message, u) && strstr(r.error.message, "1000 bytes"), "%s", r.error.message);
	sbx_http_response_free(&r);
	rq.max_body = 100000; /* exactly at the limit is fine */
	CHECKF(sbx_http_sync(http, &rq, &r) == 0, "%s", r.error.message);
	CHECK_EQ_INT(r.body_len, 100000);
	sbx_http_response_free(&r);
}

typedef struct stream_state {
	char got[512];
	size_t n;
	int chunks;
	int stop_after;
} stream_state;

static int on_stream(void *ud, const uint8_t *p, size_t n)
{
	stream_state *st = ud;
	if (st->n + n < sizeof st->got) {
		memcpy(st->got + st->n, p, n);
		st->n += n;
	}
	st->chunks++;
	return st->stop_after && st->chunks >= st->stop_after;
}

static void test_streaming_body(void)
{
	char u[200];
	url(u, sizeof u, &tls_srv, "https", "/stream?n=5");
	stream_state st = {0};
	sbx_http_request rq = {.url = u, .tls = {.ca_pem = ca_pem}, .on_body = on_stream, .ud = &st};
	sbx_http_response r;
	CHECKF(sbx_http_sync(http, &rq, &r) == 0, "%s", r.error.message);
	CHECK_EQ_INT(r.body_len, 0);
	st.got[st.n] = 0;
	CHECK_EQ_STR(st.got, "line 0\nline 1\nline 2\nline 3\nline 4\n");
	CHECK(st.chunks >= 2); /* it came as it was written, not at the end */
	sbx_http_response_free(&r);

	stream_state stop = {.stop_after = 1};
	rq.ud = &stop;
	CHECK(sbx_http_sync(http, &rq, &r) < 0);
	CHECK_ERR(r.error, SBX_E_CANCELLED, "cancelled");
	CHECK_EQ_INT(stop.chunks, 1);
	sbx_http_response_free(&r);

	/* an error status is collected, not streamed */
	url(u, sizeof u, &tls_srv, "https", "/status/500");
	stream_state none = {0};
	rq.ud = &none;
	CHECK(sbx_http_sync(http, &rq, &r) == 0);
	CHECK_EQ_INT(r.status, 500);
	CHECK_EQ_STR((char *)r.body, "status 500 body");
	CHECK_EQ_INT(none.chunks, 0);
	sbx_http_response_free(&r);
}

static void test_timeout_names_url(void)
{
	char u[200];
	url(u, sizeof u, &tls_srv, "https", "/slow?ms=3000");
	sbx_http_request rq = {.url = u, .tls = {.ca_pem = ca_pem}, .timeout_s = 0.3};
	sbx_http_response r;
	CHECK(sbx_http_sync(http, &rq, &r) < 0);
	CHECK_ERR(r.error, SBX_E_TIMEOUT, "timeout");
	CHECKF(strstr(r.error.message, u), "%s", r.error.message);
	sbx_http_response_free(&r);
}

static void test_refused_connection(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sin;
	bind(fd, (struct sockaddr *)&sin, sizeof sin);
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	close(fd); /* a port nobody listens on */
	char u[200];
	snprintf(u, sizeof u, "https://127.0.0.1:%d/x", ntohs(sin.sin_port));
	sbx_http_response r;
	sbx_http_tls tls = {0};
	CHECK(get(u, &tls, &r) < 0);
	CHECK_ERR(r.error, SBX_E_CONN, "connection");
	CHECKF(strstr(r.error.message, "cannot connect") && strstr(r.error.message, u), "%s", r.error.message);
	sbx_http_response_free(&r);
}

static void test_untrusted_server(void)
{
	char u[200];
	url(u, sizeof u, &tls_srv, "https", "/echo");
	sbx_http_response r;
	sbx_http_tls sys = {0}; /* the system store does not know our test CA */
	CHECK(get(u, &sys, &r) < 0);
	CHECK_ERR(r.error, SBX_E_CONN, "tls");
	CHECKF(strstr(r.error.message, "certificate authority") && strstr(r.error.message, u), "%s",
	       r.error.message);
	sbx_http_response_free(&r);
	sbx_http_tls other = {.ca_pem = other_ca_pem};
	CHECK(get(u, &other, &r) < 0);
	CHECK_ERR(r.error, SBX_E_CONN, "tls");
	sbx_http_response_free(&r);
	sbx_http_tls insecure = {.insecure = 1};
	CHECKF(get(u, &insecure, &r) == 0, "%s", r.error.message);
	CHECK_EQ_INT(r.status, 200);
	sbx_http_response_free(&r);
}

static void test_client_certificate(void)
{
	char u[200];
	url(u, sizeof u, &mtls_srv, "https", "/echo");
	sbx_http_response r;
	sbx_http_tls none = {.ca_pem = ca_pem};
	CHECK(get(u, &none, &r) < 0); /* the server demands a certificate */
	CHECK(r.error.status == SBX_E_CONN);
	sbx_http_response_free(&r);
	sbx_http_tls mine = {.ca_pem = ca_pem, .cert_pem = client_pem, .key_pem = client_key};
	CHECKF(get(u, &mine, &r) == 0, "%s", r.error.message);
	CHECKF(strstr((char *)r.body, "\"client_cn\": \"sbx-test-client\""), "%s", r.body);
	sbx_http_response_free(&r);
	sbx_http_tls garbage = {.ca_pem = ca_pem, .cert_pem = "not a certificate", .key_pem = client_key};
	CHECK(get(u, &garbage, &r) < 0);
	CHECK_ERR(r.error, SBX_E_CONN, "tls");
	CHECKF(strstr(r.error.message, "client certificate"), "%s", r.error.message);
	sbx_http_response_free(&r);
}

static void test_tls_server_name(void)
{
	char u[200];
	url(u, sizeof u, &tls_srv, "https", "/echo");
	sbx_http_response r;
	/* the certificate names api.sbx.test too: verified as that name */
	sbx_http_tls named = {.ca_pem = ca_pem, .server_name = "api.sbx.test"};
	CHECKF(get(u, &named, &r) == 0, "%s", r.error.message);
	CHECK_EQ_INT(r.status, 200);
	char want[64];
	snprintf(want, sizeof want, "\"Host\": \"127.0.0.1:%d\"", tls_srv.port);
	CHECKF(strstr((char *)r.body, want), "%s", r.body);
	sbx_http_response_free(&r);
	sbx_http_tls wrong = {.ca_pem = ca_pem, .server_name = "wrong.sbx.test"};
	CHECK(get(u, &wrong, &r) < 0);
	CHECK_ERR(r.error, SBX_E_CONN, "tls");
	sbx_http_response_free(&r);
}

static void test_through_proxy(void)
{
	char u[200], proxy[100], count[200];
	url(u, sizeof u, &tls_srv, "https", "/echo");
	snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", plain_srv.port);
	url(count, sizeof count, &plain_srv, "http", "/count");
	sbx_http_response r;
	sbx_http_tls tls = {.ca_pem = ca_pem, .proxy = proxy};
	CHECKF(get(u, &tls, &r) == 0, "%s", r.error.message);
	CHECK_EQ_INT(r.status, 200);
	sbx_http_response_free(&r);
	sbx_http_tls direct = {.proxy = ""};
	CHECK(get(count, &direct, &r) == 0);
	CHECKF(strstr((char *)r.body, "\"connect\": 1"), "%s", r.body);
	sbx_http_response_free(&r);
}

typedef struct many_state {
	int done, ok;
} many_state;

static void many_done(void *ud, sbx_http_response *r)
{
	many_state *st = ud;
	st->done++;
	if (r->status == 200 && r->body_len == 1000)
		st->ok++;
}

static void never_done(void *ud, sbx_http_response *r)
{
	(void)r;
	*(int *)ud = 1;
}

static void test_concurrent_and_cancel(void)
{
	char u[200], slow[200];
	url(u, sizeof u, &tls_srv, "https", "/big?n=1000");
	url(slow, sizeof slow, &tls_srv, "https", "/slow?ms=500");
	many_state st = {0};
	int cancelled_called = 0;
	sbx_error err;
	sbx_http_request srq = {.url = slow, .tls = {.ca_pem = ca_pem}, .on_done = never_done, .ud = &cancelled_called};
	sbx_http_call *c = sbx_http_start(http, &srq, &err);
	CHECK(c);
	for (int i = 0; i < 20; i++) {
		sbx_http_request rq = {.url = u, .tls = {.ca_pem = ca_pem}, .on_done = many_done, .ud = &st};
		CHECKF(sbx_http_start(http, &rq, &err), "%s", err.message);
	}
	sbx_http_cancel(c);
	int twenty = 0;
	uint64_t end = sbx_now_ms() + 20000;
	while (st.done < 20 && sbx_now_ms() < end)
		sbx_loop_run_once(loop, 50);
	twenty = st.done;
	it_run_for(loop, 700); /* past the slow one's answer */
	CHECK_EQ_INT(twenty, 20);
	CHECK_EQ_INT(st.ok, 20);
	CHECK_EQ_INT(cancelled_called, 0);
}

static void test_bad_url(void)
{
	sbx_http_response r;
	sbx_http_tls tls = {0};
	CHECK(get("nope://what", &tls, &r) < 0);
	CHECK(r.error.status == SBX_E_INVALID);
	CHECKF(strstr(r.error.message, "nope://what"), "%s", r.error.message);
	sbx_http_response_free(&r);
	sbx_http_request rq = {.url = NULL};
	CHECK(sbx_http_sync(http, &rq, &r) < 0);
	CHECK(r.error.status == SBX_E_INVALID);
}

static void test_free_with_calls_in_flight(void)
{
	sbx_http *h2 = sbx_http_new(loop);
	char slow[200];
	url(slow, sizeof slow, &tls_srv, "https", "/slow?ms=300");
	int called = 0;
	sbx_error err;
	for (int i = 0; i < 3; i++) {
		sbx_http_request rq = {.url = slow, .tls = {.ca_pem = ca_pem}, .on_done = never_done, .ud = &called};
		CHECK(sbx_http_start(h2, &rq, &err));
	}
	it_run_for(loop, 50);
	sbx_http_free(h2);
	it_run_for(loop, 400);
	CHECK_EQ_INT(called, 0);
}

typedef struct free_from_done {
	sbx_http *h;
	int called;
} free_from_done;

static void free_client_done(void *ud, sbx_http_response *r)
{
	free_from_done *st = ud;
	CHECK_EQ_INT(r->status, 200);
	st->called++;
	sbx_http_free(st->h); /* the EC2 sandbox's cleanup does this */
}

/* Freeing the client from a done callback, with more calls finishing in the
 * same turn: the rest are dropped and nothing touches freed memory (SAN). */
static void test_free_from_done_callback(void)
{
	free_from_done st = {.h = sbx_http_new(loop)};
	char u[200];
	url(u, sizeof u, &tls_srv, "https", "/echo");
	sbx_error err;
	for (int i = 0; i < 4; i++) {
		sbx_http_request rq = {.url = u, .tls = {.ca_pem = ca_pem}, .on_done = free_client_done, .ud = &st};
		CHECK(sbx_http_start(st.h, &rq, &err));
	}
	it_run_for(loop, 500);
	CHECK_EQ_INT(st.called, 1);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (!net_have_python() || net_make_certs(certs, sizeof certs) < 0) {
		printf("skip test_http: python3 with ssl and openssl are needed\n");
		return 0;
	}
	ca_pem = net_read_pem(certs, "ca.pem");
	other_ca_pem = net_read_pem(certs, "other-ca.pem");
	client_pem = net_read_pem(certs, "client.pem");
	client_key = net_read_pem(certs, "client.key");
	const char *a1[] = {"python3", "tests/net/server.py", "--tls", certs, NULL};
	const char *a2[] = {"python3", "tests/net/server.py", "--tls", certs, "--require-client-cert", NULL};
	const char *a3[] = {"python3", "tests/net/server.py", NULL};
	if (net_peer_start(&tls_srv, a1) < 0 || net_peer_start(&mtls_srv, a2) < 0 ||
	    net_peer_start(&plain_srv, a3) < 0) {
		printf("FAIL test_http: the test server did not start\n");
		return 1;
	}
	loop = sbx_loop_new();
	http = sbx_http_new(loop);
	RUN(test_get_over_tls_with_ca);
	RUN(test_methods_headers_and_body);
	RUN(test_error_status_keeps_body);
	RUN(test_body_limit);
	RUN(test_streaming_body);
	RUN(test_timeout_names_url);
	RUN(test_refused_connection);
	RUN(test_untrusted_server);
	RUN(test_client_certificate);
	RUN(test_tls_server_name);
	RUN(test_through_proxy);
	RUN(test_concurrent_and_cancel);
	RUN(test_bad_url);
	RUN(test_free_with_calls_in_flight);
	RUN(test_free_from_done_callback);
	sbx_http_free(http);
	sbx_loop_free(loop);
	net_peer_stop(&tls_srv);
	net_peer_stop(&mtls_srv);
	net_peer_stop(&plain_srv);
	free(ca_pem);
	free(other_ca_pem);
	free(client_pem);
	free(client_key);
	it_rm_rf(certs);
	return test_summary();
}
