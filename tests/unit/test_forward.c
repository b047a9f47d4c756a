/* test_forward.c — sbx_forward_open (FORWARD, docs/PROTOCOL.md §10.7)
 * through libsbx against a real agent (host mode, so its loopback is this
 * machine's) and a hostile one: only loopback targets are reached, a
 * refused port is a clear error, bytes cross byte-exact with half-close,
 * an agent without the capability is refused the call (not sent FORWARD),
 * and an agent flooding a forward stream past its window fails its session
 * without growing the host's heap past a bound. (The CLI and the boxes:
 * tests/cli/test_port_forward.py.) */
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "it_util.h"

size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static size_t heap_in_use(void)
{
	if (__sanitizer_get_current_allocated_bytes)
		return __sanitizer_get_current_allocated_bytes();
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static sbx_loop *g_loop;
static sbx_session *g_s;
static char g_dir[128];

typedef struct done_rec {
	int done;
	sbx_forward_result r;
} done_rec;

static void on_done(void *ud, const sbx_forward_result *r)
{
	done_rec *d = ud;
	d->r = *r;
	d->done = 1;
}

/* Forwards our end of a socketpair to host:port; the other end in *mine. */
static sbx_call *open_pair(sbx_session *s, const char *host, unsigned port, done_rec *d, int *mine, sbx_error *err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return NULL;
	*mine = sv[0];
	sbx_forward_opts o = {.port = port, .host = host, .fd = sv[1], .on_done = on_done, .ud = d};
	return sbx_forward_open(s, &o, err);
}

static void test_refuses_non_loopback(void)
{
	const char *hosts[] = {"10.0.0.1", "8.8.8.8", "0.0.0.0", "::", "::ffff:10.0.0.1", "example.com", NULL};
	for (int i = 0; hosts[i]; i++) {
		done_rec d = {0};
		int mine = -1;
		sbx_error err;
		sbx_call *c = open_pair(g_s, hosts[i], 80, &d, &mine, &err);
		CHECK(c != NULL);
		int rc = it_run_until(g_loop, &d.done, 20);
		close(mine);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_STR(d.r.error.code, "permission");
		CHECK(strstr(d.r.error.message, "loopback") != NULL);
	}
}

static void test_refused_port(void)
{
	done_rec d = {0};
	int mine = -1;
	sbx_error err;
	CHECK(open_pair(g_s, NULL, (unsigned)it_free_port(), &d, &mine, &err) != NULL);
	int rc = it_run_until(g_loop, &d.done, 20);
	char b;
	ssize_t r = read(mine, &b, 1); /* the call closed its end: EOF here */
	close(mine);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(d.r.error.status, SBX_E_REMOTE);
	CHECK_EQ_STR(d.r.error.code, "refused");
	CHECK_EQ_INT(d.r.error.err_no, ECONNREFUSED);
	CHECK_EQ_INT(r, 0);
}

static void test_bad_arguments(void)
{
	sbx_error err;
	sbx_forward_opts o = {.port = 0, .fd = -1};
	CHECK(sbx_forward_open(g_s, &o, &err) == NULL);
	CHECK_EQ_INT(err.status, SBX_E_INVALID);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	o = (sbx_forward_opts){.port = 70000, .fd = sv[1]};
	CHECK(sbx_forward_open(g_s, &o, &err) == NULL);
	CHECK(strstr(err.message, "1..65535") != NULL);
	char b;
	CHECK_EQ_INT(read(sv[0], &b, 1), 0); /* the fd was closed, as documented */
	close(sv[0]);
}

/* A server in a child: reads everything to EOF, answers with the count
 * and the sha256 of what it read, then closes. */
static pid_t digest_server(int *port)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sin;
	if (bind(ls, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(ls, 4) < 0 ||
	    getsockname(ls, (struct sockaddr *)&sin, &sl) < 0)
		return -1;
	*port = ntohs(sin.sin_port);
	pid_t pid = fork();
	if (pid != 0) {
		close(ls);
		return pid;
	}
	alarm(60);
	int c = accept(ls, NULL, NULL);
	size_t cap = 8u << 20, n = 0;
	uint8_t *buf = malloc(cap);
	ssize_t r;
	while (n < cap && (r = read(c, buf + n, cap - n)) > 0)
		n += (size_t)r;
	char hex[65], line[128];
	it_sha256_hex(buf, n, hex);
	int len = snprintf(line, sizeof line, "%zu %s\n", n, hex);
	if (write(c, line, (size_t)len) < 0)
		_exit(1);
	close(c);
	_exit(0);
}

static void test_bytes_and_half_close(void)
{
	int port = 0;
	pid_t srv = digest_server(&port);
	CHECK(srv > 0);
	done_rec d = {0};
	int mine = -1;
	sbx_error err;
	CHECK(open_pair(g_s, "127.0.0.1", (unsigned)port, &d, &mine, &err) != NULL);
	size_t total = 3u << 20;
	uint8_t *data = malloc(total);
	it_fill_random(data, total, 7);
	fcntl(mine, F_SETFL, O_NONBLOCK);
	size_t off = 0;
	char reply[256];
	size_t got = 0;
	uint64_t end = sbx_now_ms() + 60000;
	while (!d.done && sbx_now_ms() < end) {
		if (off < total) {
			ssize_t w = write(mine, data + off, total - off);
			if (w > 0)
				off += (size_t)w;
			if (off == total)
				shutdown(mine, SHUT_WR); /* half-close: the server sees EOF, still answers */
		}
		ssize_t r = read(mine, reply + got, sizeof reply - 1 - got);
		if (r > 0)
			got += (size_t)r;
		sbx_loop_run_once(g_loop, 5);
	}
	ssize_t r;
	while ((r = read(mine, reply + got, sizeof reply - 1 - got)) > 0)
		got += (size_t)r;
	reply[got] = 0;
	close(mine);
	char hex[65], want[128];
	it_sha256_hex(data, total, hex);
	snprintf(want, sizeof want, "%zu %s\n", total, hex);
	free(data);
	waitpid(srv, NULL, 0);
	CHECK(d.done);
	CHECK_EQ_INT(d.r.error.status, SBX_OK);
	CHECK_EQ_STR(reply, want);
	CHECK_EQ_INT(d.r.sent, total);
	CHECK_EQ_INT(d.r.received, strlen(want));
}

static void hostile_path(char *out, size_t len)
{
	const char *build = getenv("BUILD");
	snprintf(out, len, "%s/tests/hostile_agent", build && build[0] ? build : "build");
}

/* An agent without the "forward" capability is never sent FORWARD (it
 * would end the session): the call is refused with a clear error. */
static void test_old_agent(void)
{
	char tool[PATH_MAX];
	hostile_path(tool, sizeof tool);
	CHECK(access(tool, X_OK) == 0);
	const char *argv[] = {tool, NULL};
	setenv("HOSTILE_NO_FORWARD", "1", 1);
	sbx_error err;
	sbx_session *s = sbx_session_command(g_loop, argv, NULL, &err);
	unsetenv("HOSTILE_NO_FORWARD");
	CHECK(s != NULL);
	int ready = sbx_session_wait_ready(s, 20, &err);
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	sbx_forward_opts o = {.port = 80, .fd = sv[1]};
	sbx_call *c = ready == 0 ? sbx_forward_open(s, &o, &err) : NULL;
	int alive = sbx_session_failure(s) == NULL;
	sbx_session_close(s);
	close(sv[0]);
	CHECK_EQ_INT(ready, 0);
	CHECK(c == NULL);
	CHECK_EQ_STR(err.code, "unsupported");
	CHECK(strstr(err.message, "\"forward\" capability") != NULL);
	CHECK(alive);
}

/* Attack: an agent sends DATA on a forward stream past the window while
 * nobody reads the local end. The connection rejects it (protocol error);
 * the host holds no more than a bounded amount meanwhile. */
static void test_hostile_flood(void)
{
	char tool[PATH_MAX];
	hostile_path(tool, sizeof tool);
	CHECK(access(tool, X_OK) == 0);
	const char *argv[] = {tool, NULL};
	sbx_error err;
	sbx_session *s = sbx_session_command(g_loop, argv, NULL, &err);
	CHECK(s != NULL);
	CHECK_EQ_INT(sbx_session_wait_ready(s, 20, &err), 0);
	size_t base = heap_in_use(), peak = base;
	done_rec d = {0};
	int mine = -1;
	sbx_call *c = open_pair(s, NULL, 80, &d, &mine, &err);
	uint64_t end = sbx_now_ms() + 30000;
	while (c && !d.done && sbx_now_ms() < end) {
		sbx_loop_run_once(g_loop, 5);
		size_t h = heap_in_use();
		if (h > peak)
			peak = h;
	}
	const sbx_error *f = sbx_session_failure(s);
	int window = f && strstr(f->message, "window") != NULL;
	sbx_session_close(s);
	close(mine);
	CHECK(c != NULL);
	CHECK(d.done);
	CHECK_EQ_INT(d.r.error.status, SBX_E_CONN);
	CHECK(window);
	if (base) /* valgrind's allocator reports nothing */
		CHECK(peak - base < (16u << 20));
}

/* FORWARD agent: a listening unix socket whose connections become agent
 * forwards on outer, as the CLI's connection holder does. */
typedef struct holder {
	sbx_session *outer;
	int opened;
} holder;

static void on_holder_accept(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)events;
	holder *h = ud;
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	sbx_forward_opts o = {.agent = 1, .fd = c};
	sbx_error err;
	if (sbx_forward_open(h->outer, &o, &err))
		h->opened++;
}

static int holder_socket(char *path, size_t len)
{
	snprintf(path, len, "%s/hold.sock", g_dir);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun.sun_path)
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(ls, 8) < 0)
		return -1;
	return ls;
}

static int echo_through(sbx_session *s, const char *word)
{
	const char *argv[] = {"echo", word, NULL};
	sbx_exec_opts o = {.argv = argv, .timeout_s = 20};
	sbx_exec_result r;
	int ok = sbx_exec_sync(s, &o, &r) == 0 && r.exit_code == 0 && r.out_len == strlen(word) + 1 &&
		 !memcmp(r.out, word, strlen(word));
	sbx_exec_result_free(&r);
	return ok;
}

/* Two sessions at once through agent forwards on the one connection, each
 * a full handshake; closing them leaves the outer session (and the stdio
 * agent) serving. */
static void test_agent_target(void)
{
	char path[256];
	holder h = {.outer = g_s};
	int ls = holder_socket(path, sizeof path);
	CHECK(ls >= 0);
	sbx_loop_watch(g_loop, ls, SBX_EV_READ, on_holder_accept, &h);
	sbx_error err;
	sbx_session *a = sbx_session_connect(g_loop, path, NULL, &err);
	sbx_session *b = sbx_session_connect(g_loop, path, NULL, &err);
	CHECK(a && b);
	CHECK_EQ_INT(sbx_session_wait_ready(a, 20, &err), 0);
	CHECK_EQ_INT(sbx_session_wait_ready(b, 20, &err), 0);
	CHECK_EQ_INT(h.opened, 2);
	CHECK_EQ_STR(sbx_session_boot_id(a), sbx_session_boot_id(g_s));
	CHECK(echo_through(a, "through-a"));
	CHECK(echo_through(b, "through-b"));
	sbx_session_close(a);
	CHECK(echo_through(b, "still-b"));
	sbx_session_close(b);
	sbx_loop_unwatch(g_loop, ls);
	close(ls);
	unlink(path);
	for (int i = 0; i < 20; i++) /* let the agent see both ends close */
		sbx_loop_run_once(g_loop, 10);
	CHECK(echo_through(g_s, "outer-alive"));
}

/* A listening agent with a secret: the inner connection is trusted (no
 * AUTH: it lives inside the authenticated one), while a direct connection
 * without the secret is still refused. */
static void test_agent_target_listener(void)
{
	char lpath[256], key[300], path[256];
	snprintf(lpath, sizeof lpath, "%s/agent.sock", g_dir);
	pid_t agent = it_start_listener(lpath, g_dir);
	CHECK(agent > 0);
	sbx_session_opts so = {0};
	it_listener_opts(lpath, &so, key, sizeof key);
	sbx_error err;
	holder h = {.outer = sbx_session_connect(g_loop, lpath, &so, &err)};
	CHECK(h.outer && sbx_session_wait_ready(h.outer, 20, &err) == 0);
	int ls = holder_socket(path, sizeof path);
	CHECK(ls >= 0);
	sbx_loop_watch(g_loop, ls, SBX_EV_READ, on_holder_accept, &h);
	sbx_session *inner = sbx_session_connect(g_loop, path, NULL, &err);
	CHECK(inner && sbx_session_wait_ready(inner, 20, &err) == 0);
	CHECK(echo_through(inner, "inner-no-secret"));
	sbx_session *direct = sbx_session_connect(g_loop, lpath, NULL, &err);
	int refused = !direct || sbx_session_wait_ready(direct, 20, &err) < 0;
	CHECK(refused);
	CHECK_EQ_STR(err.code, "auth");
	if (direct)
		sbx_session_close(direct);
	sbx_session_close(inner);
	sbx_loop_unwatch(g_loop, ls);
	close(ls);
	unlink(path);
	sbx_session_close(h.outer);
	it_stop_listener(agent, SIGTERM);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	it_agent();
	it_tmpdir(g_dir, sizeof g_dir, "forward");
	g_loop = sbx_loop_new();
	g_s = it_local(g_loop, g_dir, 0);
	if (!g_s) {
		printf("FAIL setup: no agent\n");
		return 1;
	}
	RUN(test_refuses_non_loopback);
	RUN(test_refused_port);
	RUN(test_bad_arguments);
	RUN(test_bytes_and_half_close);
	RUN(test_old_agent);
	RUN(test_hostile_flood);
	RUN(test_agent_target);
	RUN(test_agent_target_listener);
	sbx_session_close(g_s);
	sbx_loop_free(g_loop);
	it_rm_rf(g_dir);
	return test_summary();
}
