/* test_pty.c — terminals end to end: libsbx driving a real sbx-agent (a
 * local child process) with sbx_exec_opts.tty: the command gets a /dev/pts
 * device of the size asked as its controlling terminal; typed bytes go
 * through the line discipline (echo, Ctrl-C, Ctrl-D); sbx_call_resize
 * sends SIGWINCH; a call without tty cannot be resized. */
#include "it_util.h"

static sbx_loop *g_loop;
static sbx_session *g_s;
static char g_wd[128];

typedef struct rec {
	int done;
	char buf[8192];
	size_t len;
	sbx_exec_result res;
} rec;

static void rec_output(void *ud, int fd, const uint8_t *p, size_t n)
{
	rec *r = ud;
	(void)fd;
	if (r->len + n < sizeof r->buf) {
		memcpy(r->buf + r->len, p, n);
		r->len += n;
		r->buf[r->len] = 0;
	}
}

static void rec_done(void *ud, sbx_exec_result *res)
{
	rec *r = ud;
	r->res = *res;
	res->out = res->err = NULL;
	r->done = 1;
}

static int wait_for(rec *r, const char *text, double timeout_s)
{
	uint64_t end = sbx_now_ms() + (uint64_t)(timeout_s * 1000);
	while (!strstr(r->buf, text) && !r->done && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 50);
	return strstr(r->buf, text) ? 0 : -1;
}

static sbx_call *start(rec *r, const char *const *argv, unsigned rows, unsigned cols, int in)
{
	*r = (rec){0};
	sbx_exec_opts o = {.argv = argv, .tty = 1, .rows = rows, .cols = cols, .stream_stdin = in,
			   .on_output = rec_output, .no_accumulate = 1, .on_done = rec_done, .ud = r,
			   .timeout_s = 60};
	sbx_error err;
	return sbx_exec(g_s, &o, &err);
}

static void test_pts_of_the_size_asked(void)
{
	static rec r;
	const char *a[] = {"sh", "-c", "tty; stty size; test -t 0 && test -t 2 && echo all-tty", NULL};
	CHECK(start(&r, a, 33, 101, 0) != NULL);
	CHECK(it_run_until(g_loop, &r.done, 30) == 0);
	CHECKF(r.res.error.status == SBX_OK, "%s", r.res.error.message);
	CHECK_EQ_INT(r.res.exit_code, 0);
	CHECKF(strncmp(r.buf, "/dev/pts/", 9) == 0, "got '%.200s'", r.buf);
	CHECKF(strstr(r.buf, "\r\n33 101\r\nall-tty\r\n") != NULL, "got '%.200s'", r.buf);
	sbx_exec_result_free(&r.res);

	const char *b[] = {"stty", "size", NULL};
	CHECK(start(&r, b, 0, 0, 0) != NULL);
	CHECK(it_run_until(g_loop, &r.done, 30) == 0);
	CHECK_EQ_STR(r.buf, "24 80\r\n");
	sbx_exec_result_free(&r.res);
}

static void test_typed_keys(void)
{
	static rec r;
	const char *a[] = {"cat", NULL};
	sbx_call *c = start(&r, a, 0, 0, 1);
	CHECK(c != NULL);
	CHECK(sbx_call_write_stdin(c, "hello\n", 6) == 0);
	CHECKF(wait_for(&r, "hello\r\nhello\r\n", 30) == 0, "got '%.200s'", r.buf); /* echo, then cat */
	CHECK(sbx_call_write_stdin(c, "\x04", 1) == 0);                       /* Ctrl-D: EOF */
	CHECK(it_run_until(g_loop, &r.done, 30) == 0);
	CHECK_EQ_INT(r.res.exit_code, 0);
	sbx_exec_result_free(&r.res);

	const char *b[] = {"sh", "-c", "echo ready; exec sleep 100", NULL};
	c = start(&r, b, 0, 0, 1);
	CHECK(c != NULL);
	CHECK(wait_for(&r, "ready", 30) == 0);
	CHECK(sbx_call_write_stdin(c, "\x03", 1) == 0); /* Ctrl-C: SIGINT */
	CHECK(it_run_until(g_loop, &r.done, 30) == 0);
	CHECK_EQ_INT(r.res.signal, SIGINT);
	CHECK_EQ_INT(r.res.exit_code, 130);
	sbx_exec_result_free(&r.res);
}

static void test_resize(void)
{
	static rec r;
	const char *a[] = {"sh", "-c", "trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done", NULL};
	sbx_call *c = start(&r, a, 0, 0, 0);
	CHECK(c != NULL);
	CHECK(wait_for(&r, "ready", 30) == 0);
	CHECK(sbx_call_resize(c, 0, 10) == -1);
	CHECK(sbx_call_resize(c, 50, 132) == 0);
	CHECK(it_run_until(g_loop, &r.done, 30) == 0);
	CHECKF(strstr(r.buf, "50 132") != NULL, "got '%.200s'", r.buf);
	sbx_exec_result_free(&r.res);

	/* no tty: nothing to resize */
	const char *b[] = {"sleep", "0.2", NULL};
	sbx_exec_opts o = {.argv = b, .on_done = rec_done, .ud = &r};
	r = (rec){0};
	sbx_error err;
	c = sbx_exec(g_s, &o, &err);
	CHECK(c != NULL);
	CHECK(sbx_call_resize(c, 24, 80) == -1);
	CHECK(it_run_until(g_loop, &r.done, 30) == 0);
	sbx_exec_result_free(&r.res);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	it_agent();
	it_tmpdir(g_wd, sizeof g_wd, "pty");
	g_loop = sbx_loop_new();
	g_s = it_local(g_loop, g_wd, 0);
	if (!g_s) {
		printf("FAIL setup: cannot start a local agent (%s)\n", it_agent());
		return 1;
	}
	IT_RUN(test_pts_of_the_size_asked);
	IT_RUN(test_typed_keys);
	IT_RUN(test_resize);
	sbx_session_close(g_s);
	sbx_loop_free(g_loop);
	it_rm_rf(g_wd);
	return test_summary();
}
