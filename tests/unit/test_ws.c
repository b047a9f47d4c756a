/* test_ws.c — the WebSocket client (host/net/ws.c) against a real server
 * (tests/net/server.py): echo over ws:// and wss://, subprotocols,
 * fragments, pings both ways, closes from either side, refused and broken
 * upgrades, hostile frames, proxies, freeing from callbacks, and frames
 * queued while the TLS socket is full. */
#include "net_util.h"
#include "net/ws.h"

static char certs[256];
static char *ca_pem;
static net_peer tls_srv, plain_srv;
static sbx_loop *loop;

typedef struct client {
	sbx_ws *ws;
	int opened, closed;
	char protocol[64];
	int messages;
	int last_op;
	uint8_t *last;
	size_t last_n;
	sbx_error why;
	int code;
	char reason[128];
	int free_on_message;
	char log[256]; /* short text messages, each followed by '|' */
} client;

static void c_open(void *ud, const char *protocol)
{
	client *c = ud;
	c->opened = 1;
	snprintf(c->protocol, sizeof c->protocol, "%s", protocol);
}

static void c_message(void *ud, int op, const uint8_t *p, size_t n)
{
	client *c = ud;
	c->messages++;
	c->last_op = op;
	free(c->last);
	c->last = malloc(n + 1);
	memcpy(c->last, p, n);
	c->last[n] = 0;
	c->last_n = n;
	if (op == SBX_WS_TEXT && strlen(c->log) + n + 2 < sizeof c->log) {
		strncat(c->log, (const char *)p, n);
		strcat(c->log, "|");
	}
	if (c->free_on_message) {
		sbx_ws_free(c->ws);
		c->ws = NULL;
		c->closed = 1;
	}
}

static void c_close(void *ud, const sbx_error *why, int code, const char *reason)
{
	client *c = ud;
	c->closed = 1;
	c->why = *why;
	c->code = code;
	snprintf(c->reason, sizeof c->reason, "%s", reason);
}

static int connect_to(client *c, const char *url, const sbx_http_tls *tls, const char *const *protocols,
		      uint64_t ping_ms, uint64_t dead_ms)
{
	memset(c, 0, sizeof *c);
	sbx_ws_opts o = {.url = url, .protocols = protocols, .ping_ms = ping_ms, .dead_ms = dead_ms,
			 .connect_timeout_s = 20, .on_open = c_open, .on_message = c_message, .on_close = c_close,
			 .ud = c};
	if (tls)
		o.tls = *tls;
	sbx_error err;
	c->ws = sbx_ws_connect(loop, &o, &err);
	if (!c->ws) {
		fprintf(stderr, "connect: %s\n", err.message);
		return -1;
	}
	return 0;
}

static void done_with(client *c)
{
	sbx_ws_free(c->ws);
	c->ws = NULL;
	free(c->last);
	c->last = NULL;
}

static int send_text(client *c, const char *s)
{
	sbx_ws_part p = {s, strlen(s)};
	return sbx_ws_send(c->ws, SBX_WS_TEXT, &p, 1);
}

static int wait_messages(client *c, int n)
{
	uint64_t end = sbx_now_ms() + 20000;
	while (c->messages < n && !c->closed && sbx_now_ms() < end)
		sbx_loop_run_once(loop, 50);
	return c->messages >= n ? 0 : -1;
}

static void test_echo_wss_with_subprotocol(void)
{
	char url[200];
	snprintf(url, sizeof url, "wss://127.0.0.1:%d/ws?accept=v4.channel.k8s.io", tls_srv.port);
	const char *protos[] = {"v5.channel.k8s.io", "v4.channel.k8s.io", NULL};
	sbx_http_tls tls = {.ca_pem = ca_pem};
	client c;
	CHECK(connect_to(&c, url, &tls, protos, 0, 0) == 0);
	CHECK(send_text(&c, "sent before the upgrade") == 0);
	CHECK(wait_messages(&c, 1) == 0);
	CHECK(c.opened);
	CHECK_EQ_STR(c.protocol, "v4.channel.k8s.io");
	CHECK_EQ_STR((char *)c.last, "sent before the upgrade");
	/* a 1 MiB binary message in two parts */
	size_t n = 1 << 20;
	uint8_t *big = malloc(n);
	it_fill_random(big, n, 3);
	sbx_ws_part parts[] = {{"\x01", 1}, {big, n}};
	CHECK(sbx_ws_send(c.ws, SBX_WS_BINARY, parts, 2) == 0);
	int ok = wait_messages(&c, 2) == 0 && c.last_op == SBX_WS_BINARY && c.last_n == n + 1 &&
		 c.last[0] == 1 && memcmp(c.last + 1, big, n) == 0;
	free(big);
	CHECK(ok);
	CHECK(!c.closed);
	done_with(&c);
}

/* Frames queued while the TLS socket is full: libcurl answers AGAIN, the
 * queue grows (and its buffer moves) with every later frame, and OpenSSL
 * takes the retried write only from the address it first saw. Once the
 * server reads, every frame arrives and echoes back intact; before the fix
 * the connection failed with "bad write retry". */
static void test_wss_queue_grows_while_socket_full(void)
{
	char url[200];
	snprintf(url, sizeof url, "wss://127.0.0.1:%d/ws/slow?ms=700", tls_srv.port);
	sbx_http_tls tls = {.ca_pem = ca_pem};
	client c;
	CHECK(connect_to(&c, url, &tls, NULL, 0, 0) == 0);
	uint64_t end = sbx_now_ms() + 20000;
	while (!c.opened && !c.closed && sbx_now_ms() < end)
		sbx_loop_run_once(loop, 50);
	CHECK(c.opened);
	enum { FRAMES = 48 };
	size_t n = 200 * 1024 + 17; /* not a multiple of a TLS record */
	uint8_t *frame = malloc(n);
	CHECK(frame);
	it_fill_random(frame, n, 9);
	int sent = 0;
	for (int i = 0; i < FRAMES && c.ws && !c.closed; i++) {
		frame[0] = (uint8_t)i;
		sbx_ws_part p = {frame, n};
		if (sbx_ws_send(c.ws, SBX_WS_BINARY, &p, 1) == 0)
			sent++;
	}
	CHECK_EQ_INT(sent, FRAMES);
	CHECKF(sbx_ws_queued(c.ws) > 0, "the socket never filled: the test proves nothing");
	end = sbx_now_ms() + 30000;
	while (c.messages < FRAMES && !c.closed && sbx_now_ms() < end)
		sbx_loop_run_once(loop, 50);
	CHECKF(!c.closed, "%s", c.why.message);
	CHECK_EQ_INT(c.messages, FRAMES);
	frame[0] = FRAMES - 1;
	CHECK(c.last_n == n && memcmp(c.last, frame, n) == 0);
	free(frame);
	done_with(&c);
}

static void test_no_common_subprotocol(void)
{
	char url[200];
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws?accept=", plain_srv.port);
	const char *protos[] = {"v5.channel.k8s.io", NULL};
	client c;
	CHECK(connect_to(&c, url, NULL, protos, 0, 0) == 0);
	CHECK(send_text(&c, "x") == 0);
	CHECK(wait_messages(&c, 1) == 0);
	CHECK_EQ_STR(c.protocol, "");
	done_with(&c);
}

static void test_fragments_and_server_ping(void)
{
	char url[200];
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", plain_srv.port);
	client c;
	CHECK(connect_to(&c, url, NULL, NULL, 0, 0) == 0);
	CHECK(send_text(&c, "fragment") == 0);
	/* the ping between the fragments was answered: the server says so */
	CHECK(wait_messages(&c, 2) == 0);
	CHECK_EQ_STR(c.log, "hello world|pong:mid|");
	/* the server pings; our pong comes back to us as text */
	CHECK(send_text(&c, "ping-me") == 0);
	CHECK(wait_messages(&c, 3) == 0);
	CHECK_EQ_STR(c.log, "hello world|pong:mid|pong:are you there|");
	done_with(&c);
}

static void test_keepalive_pings_keep_it_alive(void)
{
	char url[200];
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", plain_srv.port);
	client c;
	/* silence is fatal after 1.5 s, but our pings (every 100 ms) draw pongs */
	CHECK(connect_to(&c, url, NULL, NULL, 100, 1500) == 0);
	it_run_for(loop, 3000);
	CHECK(c.opened);
	CHECKF(!c.closed, "%s", c.why.message);
	CHECK(send_text(&c, "still here") == 0);
	CHECK(wait_messages(&c, 1) == 0);
	done_with(&c);
}

static void test_dead_server_detected(void)
{
	char url[200];
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws/hostile?kind=none", plain_srv.port);
	/* /ws/drop upgrades and then hangs up: use a server that stays silent
	 * instead: /ws with no pings sent by us and a short dead time */
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", plain_srv.port);
	client c;
	CHECK(connect_to(&c, url, NULL, NULL, 0, 200) == 0);
	uint64_t end = sbx_now_ms() + 10000;
	while (!c.closed && sbx_now_ms() < end)
		sbx_loop_run_once(loop, 50);
	CHECK(c.closed);
	CHECK_ERR(c.why, SBX_E_TIMEOUT, "timeout");
	CHECKF(strstr(c.why.message, "nothing heard"), "%s", c.why.message);
	done_with(&c);
}

static void run_until_closed(client *c)
{
	uint64_t end = sbx_now_ms() + 20000;
	while (!c->closed && sbx_now_ms() < end)
		sbx_loop_run_once(loop, 50);
}

static void test_server_closes_with_code(void)
{
	char url[200];
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", plain_srv.port);
	client c;
	CHECK(connect_to(&c, url, NULL, NULL, 0, 0) == 0);
	CHECK(send_text(&c, "close-me") == 0);
	run_until_closed(&c);
	CHECK(c.closed);
	CHECK_EQ_INT(c.code, 4000);
	CHECK_EQ_STR(c.reason, "bye now");
	CHECK_ERR(c.why, SBX_E_CONN, "closed");
	CHECKF(strstr(c.why.message, "4000: bye now"), "%s", c.why.message);
	CHECK(send_text(&c, "too late") < 0);
	done_with(&c);
}

static void test_client_close_is_clean(void)
{
	char url[200];
	snprintf(url, sizeof url, "wss://127.0.0.1:%d/ws", tls_srv.port);
	sbx_http_tls tls = {.ca_pem = ca_pem};
	client c;
	CHECK(connect_to(&c, url, &tls, NULL, 0, 0) == 0);
	CHECK(send_text(&c, "x") == 0);
	CHECK(wait_messages(&c, 1) == 0);
	sbx_ws_close(c.ws, SBX_WS_NORMAL, "done");
	run_until_closed(&c);
	CHECK(c.closed);
	CHECKF(c.why.status == SBX_OK, "%s", c.why.message);
	CHECK_EQ_INT(c.code, 1000);
	done_with(&c);
}

static void test_refused_upgrade_shows_body(void)
{
	char url[200];
	snprintf(url, sizeof url, "wss://127.0.0.1:%d/ws/refuse", tls_srv.port);
	sbx_http_tls tls = {.ca_pem = ca_pem};
	client c;
	CHECK(connect_to(&c, url, &tls, NULL, 0, 0) == 0);
	run_until_closed(&c);
	CHECK(!c.opened);
	CHECK_ERR(c.why, SBX_E_CONN, "denied");
	CHECKF(strstr(c.why.message, "403") && strstr(c.why.message, "is forbidden") && strstr(c.why.message, url),
	       "%s", c.why.message);
	done_with(&c);
}

static void test_bad_accept_and_drop(void)
{
	char url[200];
	client c;
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws/badaccept", plain_srv.port);
	CHECK(connect_to(&c, url, NULL, NULL, 0, 0) == 0);
	run_until_closed(&c);
	CHECK(!c.opened);
	CHECK_ERR(c.why, SBX_E_CONN, "protocol");
	CHECKF(strstr(c.why.message, "Sec-WebSocket-Accept"), "%s", c.why.message);
	done_with(&c);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws/drop", plain_srv.port);
	CHECK(connect_to(&c, url, NULL, NULL, 0, 0) == 0);
	run_until_closed(&c);
	CHECK(c.opened);
	CHECK_ERR(c.why, SBX_E_CONN, "connection");
	CHECKF(strstr(c.why.message, "without a close frame"), "%s", c.why.message);
	CHECK_EQ_INT(c.code, SBX_WS_ABNORMAL);
	done_with(&c);
}

static void test_hostile_server_frames(void)
{
	const char *kinds[] = {"masked", "rsv", "bigcontrol", "fragcontrol", "badutf8", "huge",
			       "topbit", "contfirst", "badopcode", "badclose", "closecode", "interleave"};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		char url[200];
		snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws/hostile?kind=%s", plain_srv.port, kinds[i]);
		client c;
		CHECK(connect_to(&c, url, NULL, NULL, 0, 0) == 0);
		run_until_closed(&c);
		CHECKF(c.closed && c.why.status == SBX_E_CONN && strcmp(c.why.code, "protocol") == 0,
		       "%s: status %d code %s: %s", kinds[i], c.why.status, c.why.code, c.why.message);
		CHECKF(c.messages == 0, "%s", kinds[i]);
		done_with(&c);
	}
}

static void test_connect_failures(void)
{
	client c;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sin;
	bind(fd, (struct sockaddr *)&sin, sizeof sin);
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	close(fd);
	char url[200];
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", ntohs(sin.sin_port));
	CHECK(connect_to(&c, url, NULL, NULL, 0, 0) == 0);
	run_until_closed(&c);
	CHECK_ERR(c.why, SBX_E_CONN, "connection");
	CHECKF(strstr(c.why.message, "cannot connect"), "%s", c.why.message);
	done_with(&c);
	snprintf(url, sizeof url, "wss://127.0.0.1:%d/ws", tls_srv.port);
	sbx_http_tls sys = {0};
	CHECK(connect_to(&c, url, &sys, NULL, 0, 0) == 0);
	run_until_closed(&c);
	CHECK_ERR(c.why, SBX_E_CONN, "tls");
	done_with(&c);
	sbx_error err;
	sbx_ws_opts o = {.url = "ftp://x/"};
	CHECK(sbx_ws_connect(loop, &o, &err) == NULL);
	CHECK(err.status == SBX_E_INVALID);
}

static void test_through_proxy(void)
{
	char url[200], proxy[100];
	snprintf(url, sizeof url, "wss://127.0.0.1:%d/ws", tls_srv.port);
	snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", plain_srv.port);
	sbx_http_tls tls = {.ca_pem = ca_pem, .proxy = proxy};
	client c;
	CHECK(connect_to(&c, url, &tls, NULL, 0, 0) == 0);
	CHECK(send_text(&c, "via proxy") == 0);
	CHECK(wait_messages(&c, 1) == 0);
	CHECK_EQ_STR((char *)c.last, "via proxy");
	done_with(&c);
}

static void test_free_from_callback(void)
{
	char url[200];
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", plain_srv.port);
	client c;
	CHECK(connect_to(&c, url, NULL, NULL, 0, 0) == 0);
	c.free_on_message = 1;
	CHECK(send_text(&c, "one") == 0);
	CHECK(send_text(&c, "two") == 0);
	CHECK(wait_messages(&c, 1) == 0);
	it_run_for(loop, 200);
	CHECK_EQ_INT(c.messages, 1); /* nothing after the free */
	free(c.last);
	/* and freeing while still connecting */
	CHECK(connect_to(&c, url, NULL, NULL, 0, 0) == 0);
	sbx_ws_free(c.ws);
	it_run_for(loop, 200);
	CHECK(!c.opened && !c.closed);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (!net_have_python() || net_make_certs(certs, sizeof certs) < 0) {
		printf("skip test_ws: python3 with ssl and openssl are needed\n");
		return 0;
	}
	ca_pem = net_read_pem(certs, "ca.pem");
	const char *a1[] = {"python3", "tests/net/server.py", "--tls", certs, NULL};
	const char *a2[] = {"python3", "tests/net/server.py", NULL};
	if (net_peer_start(&tls_srv, a1) < 0 || net_peer_start(&plain_srv, a2) < 0) {
		printf("FAIL test_ws: the test server did not start\n");
		return 1;
	}
	loop = sbx_loop_new();
	RUN(test_echo_wss_with_subprotocol);
	RUN(test_wss_queue_grows_while_socket_full);
	RUN(test_no_common_subprotocol);
	RUN(test_fragments_and_server_ping);
	RUN(test_keepalive_pings_keep_it_alive);
	RUN(test_dead_server_detected);
	RUN(test_server_closes_with_code);
	RUN(test_client_close_is_clean);
	RUN(test_refused_upgrade_shows_body);
	RUN(test_bad_accept_and_drop);
	RUN(test_hostile_server_frames);
	RUN(test_connect_failures);
	RUN(test_through_proxy);
	RUN(test_free_from_callback);
	sbx_loop_free(loop);
	net_peer_stop(&tls_srv);
	net_peer_stop(&plain_srv);
	free(ca_pem);
	it_rm_rf(certs);
	return test_summary();
}
