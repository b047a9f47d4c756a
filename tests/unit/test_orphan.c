/* test_orphan.c — commands whose caller vanished (docs/PROTOCOL.md §12,
 * EXEC orphan_ms): on a listening agent, a command started from a session
 * that cannot re-attach is killed as soon as its connection closes; one
 * from a session that reconnects keeps running for it to come back. */
#include "it_util.h"

static sbx_loop *g_loop;
static char g_dir[128];

static sbx_session *connect_ready(const char *sock, int reconnect)
{
	char key[300];
	sbx_session_opts so = {.reconnect = reconnect};
	it_listener_opts(sock, &so, key, sizeof key);
	sbx_error err;
	sbx_session *s = sbx_session_connect(g_loop, sock, &so, &err);
	if (s && sbx_session_wait_ready(s, 20, &err) < 0) {
		sbx_session_close(s);
		s = NULL;
	}
	return s;
}

static void ignore_done(void *ud, sbx_exec_result *r)
{
	(void)ud;
	(void)r;
}

/* Starts `sh -c "sleep 1000; : MARKER"` and waits until it runs: 0, or -1. */
static int start_marked(sbx_session *s, const char *marker)
{
	char script[128];
	snprintf(script, sizeof script, "sleep 1000; : %s", marker);
	const char *a[] = {"sh", "-c", script, NULL};
	sbx_exec_opts o = {.argv = a, .on_done = ignore_done};
	sbx_error err;
	if (!sbx_exec(s, &o, &err))
		return -1;
	uint64_t end = sbx_now_ms() + 20000;
	while (it_procs_with(marker, NULL, 0) <= 0 && sbx_now_ms() < end)
		sbx_loop_run_once(g_loop, 20);
	return it_procs_with(marker, NULL, 0) > 0 ? 0 : -1;
}

static void check_orphan(int reconnect)
{
	char sock[256], marker[32];
	snprintf(sock, sizeof sock, "%s/agent%d.sock", g_dir, reconnect);
	it_marker(marker, sizeof marker);
	pid_t agent = it_start_listener(sock, g_dir);
	CHECK(agent > 0);
	sbx_session *s = connect_ready(sock, reconnect);
	int started = s ? start_marked(s, marker) : -1;
	sbx_session_close(s); /* the caller vanishes */
	int left = started == 0 ? it_wait_procs_gone(marker, reconnect ? 1.0 : 10.0) : -1;
	it_kill_marked(marker);
	it_stop_listener(agent, SIGTERM);
	CHECK(s != NULL);
	CHECK_EQ_INT(started, 0);
	if (reconnect)
		CHECKF(left > 0, "a re-attachable command was killed with its connection (%d left)", left);
	else
		CHECKF(left == 0, "the command outlived its caller (%d processes left)", left);
}

static void test_no_reattach_kills_at_once(void) { check_orphan(0); }
static void test_reattach_keeps_it_running(void) { check_orphan(1); }

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	it_agent();
	it_tmpdir(g_dir, sizeof g_dir, "orphan");
	g_loop = sbx_loop_new();
	IT_RUN(test_no_reattach_kills_at_once);
	IT_RUN(test_reattach_keeps_it_running);
	sbx_loop_free(g_loop);
	it_rm_rf(g_dir);
	return test_summary();
}
