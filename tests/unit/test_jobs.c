/* test_jobs.c — libsbx's detached commands (host/core/jobs.c, agent/detached.c)
 * against a listening agent: start one, see it in the list while it runs
 * and with its exit code after, read its output (twice: reading takes
 * nothing), follow one to its end, kill one, refuse bad ids and signals
 * before sending, and refuse everything on a stdio agent (no capability). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "core/internal.h"
#include "it_util.h"

static sbx_loop *loop;
static sbx_session *s;

typedef struct out_buf {
	char text[4096];
	size_t len;
} out_buf;

static int collect(void *ud, int fd, const uint8_t *p, size_t n)
{
	out_buf *o = ud;
	(void)fd;
	if (o->len + n < sizeof o->text) {
		memcpy(o->text + o->len, p, n);
		o->len += n;
		o->text[o->len] = 0;
	}
	return 0;
}

/* The job with this id in the agent's list (copied to *out); 0 when found. */
static int find_job(const char *id, sbx_job *out)
{
	sbx_job *jobs;
	size_t n;
	sbx_error err;
	if (sbx_jobs_sync(s, &jobs, &n, &err) < 0)
		return -1;
	int rc = -1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(jobs[i].id, id)) {
			*out = jobs[i];
			rc = 0;
		}
	free(jobs);
	return rc;
}

/* Waits (up to 10 s) until the job has ended. */
static int wait_ended(const char *id, sbx_job *j)
{
	for (int i = 0; i < 1000; i++) {
		if (find_job(id, j) == 0 && !j->running)
			return 0;
		usleep(10000);
	}
	return -1;
}

static void test_start_list_logs(void)
{
	const char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	sbx_exec_opts o = {.argv = argv};
	char id[16];
	sbx_error err;
	CHECK_EQ_INT(sbx_exec_detached_sync(s, &o, id, &err), 0);
	CHECK_EQ_INT(strlen(id), 12);
	CHECK_EQ_INT(strspn(id, "0123456789abcdef"), 12);
	sbx_job j = {0};
	CHECK_EQ_INT(wait_ended(id, &j), 0);
	CHECK_EQ_INT(j.exit_code, 3);
	CHECK_EQ_STR(j.command, "sh -c echo out; echo err >&2; exit 3");
	for (int round = 0; round < 2; round++) { /* reading leaves the output there */
		out_buf b = {0};
		sbx_logs_opts lo = {.id = id, .on_output = collect, .ud = &b};
		sbx_logs_result r;
		CHECK_EQ_INT(sbx_job_logs_sync(s, &lo, &r), 0);
		CHECK_EQ_INT(r.running, 0);
		CHECK_EQ_INT(r.exit_code, 3);
		CHECK(!strcmp(b.text, "out\nerr\n") || !strcmp(b.text, "err\nout\n"));
		CHECK_EQ_INT(r.dropped[1] + r.dropped[2], 0);
	}
}

static void test_follow_and_running(void)
{
	const char *argv[] = {"sh", "-c", "echo a; sleep 0.3; echo b; exit 5", NULL};
	const char *slow[] = {"sh", "-c", "echo first; exec sleep 31701", NULL};
	sbx_exec_opts o = {.argv = argv};
	char id[16], id2[16];
	sbx_error err;
	CHECK_EQ_INT(sbx_exec_detached_sync(s, &o, id, &err), 0);
	out_buf b = {0};
	sbx_logs_opts lo = {.id = id, .follow = 1, .on_output = collect, .ud = &b};
	sbx_logs_result r;
	CHECK_EQ_INT(sbx_job_logs_sync(s, &lo, &r), 0);
	CHECK_EQ_INT(r.exit_code, 5);
	CHECK_EQ_STR(b.text, "a\nb\n");
	o.argv = slow;
	CHECK_EQ_INT(sbx_exec_detached_sync(s, &o, id2, &err), 0);
	sbx_job j = {0};
	for (int i = 0; i < 1000; i++) { /* until "first" is out */
		b.len = 0;
		b.text[0] = 0;
		lo = (sbx_logs_opts){.id = id2, .on_output = collect, .ud = &b};
		CHECK_EQ_INT(sbx_job_logs_sync(s, &lo, &r), 0);
		if (b.len)
			break;
		usleep(10000);
	}
	CHECK_EQ_INT(r.running, 1); /* no follow: what is there, then it returns */
	CHECK_EQ_STR(b.text, "first\n");
	int sent;
	CHECK_EQ_INT(sbx_job_kill_sync(s, id2, SIGKILL, &sent, &err), 0);
	CHECK_EQ_INT(sent, 1);
	CHECK_EQ_INT(wait_ended(id2, &j), 0);
	CHECK_EQ_INT(j.exit_code, 137);
	CHECK_EQ_INT(sbx_job_kill_sync(s, id2, SIGKILL, &sent, &err), 0);
	CHECK_EQ_INT(sent, 0); /* already over */
}

static void test_bad_ids_and_signals(void)
{
	int sent;
	sbx_error err;
	const char *bad[] = {"", "../etc", "ABC", "a b", "0123456789abcdef", "x;y", "\x1b[2J"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_EQ_INT(sbx_job_kill_sync(s, bad[i], SIGTERM, &sent, &err), -1);
		CHECK_EQ_INT(err.status, SBX_E_INVALID);
	}
	CHECK_EQ_INT(sbx_job_kill_sync(s, "abc", 0, &sent, &err), -1);
	CHECK_EQ_INT(err.status, SBX_E_INVALID);
	CHECK_EQ_INT(sbx_job_kill_sync(s, "abc", 65, &sent, &err), -1);
	CHECK_EQ_INT(sbx_job_kill_sync(s, "0000deadbeef", SIGTERM, &sent, &err), -1);
	CHECK_EQ_STR(err.code, "not_found");
	sbx_logs_opts lo = {.id = "0000deadbeef"};
	sbx_logs_result r;
	CHECK_EQ_INT(sbx_job_logs_sync(s, &lo, &r), -1);
	CHECK_EQ_STR(r.error.code, "not_found");
}

/* The kinds declare the capabilities (agent/kind.h); the HELLO must offer
 * exactly the bits main.c used to list (with AGENT_FORWARD, which the forward
 * kind declares): a listening agent ATTACH and DETACH besides, root USER besides. */
static void test_hello_caps_unchanged(void)
{
	char dir[256];
	it_tmpdir(dir, sizeof dir, "jobs-caps");
	sbx_session *st = it_local(loop, dir, 0);
	CHECK(st != NULL);
	sbx_error err;
	CHECK_EQ_INT(sbx_session_wait_ready(st, 20, &err), 0);
	uint32_t root = geteuid() == 0 ? SBX_CAP_USER : 0;
	uint32_t base = SBX_CAP_DEFLATE | SBX_CAP_ORPHAN | SBX_CAP_PTY | SBX_CAP_FORWARD | SBX_CAP_TREE |
			SBX_CAP_AGENT_FORWARD | root;
	CHECK_EQ_INT(sbx_conn_peer(st->conn)->caps, base);
	sbx_session_close(st);
	it_rm_rf(dir);
	CHECK_EQ_INT(sbx_conn_peer(s->conn)->caps, base | SBX_CAP_ATTACH | SBX_CAP_DETACH);
	CHECK_EQ_STR(sbx_cap_name(SBX_CAP_DETACH), "detach");
	CHECK_EQ_STR(sbx_cap_name(SBX_CAP_AGENT_FORWARD), "agent-forward");
	CHECK_EQ_STR(sbx_cap_name(0x100000), "?");
}

static void test_stdio_agent_refuses(void)
{
	char dir[256];
	it_tmpdir(dir, sizeof dir, "jobs-stdio");
	sbx_session *st = it_local(loop, dir, 0);
	CHECK(st != NULL);
	const char *argv[] = {"true", NULL};
	sbx_exec_opts o = {.argv = argv};
	char id[16];
	sbx_error err;
	int rc = sbx_exec_detached_sync(st, &o, id, &err);
	sbx_job *jobs;
	size_t n;
	sbx_error err2;
	int rc2 = sbx_jobs_sync(st, &jobs, &n, &err2);
	sbx_session_close(st);
	it_rm_rf(dir);
	CHECK_EQ_INT(rc, -1);
	CHECK_EQ_STR(err.code, "unsupported");
	CHECK_EQ_INT(rc2, -1);
	CHECK_EQ_STR(err2.code, "unsupported");
	CHECK(strstr(err2.message, "\"detach\" capability") != NULL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	loop = sbx_loop_new();
	char dir[128], sock[200], key[320];
	it_tmpdir(dir, sizeof dir, "jobs");
	snprintf(sock, sizeof sock, "%s/agent.sock", dir);
	pid_t agent = it_start_listener(sock, dir);
	if (agent < 0) {
		printf("FAIL setup: no listening agent\n");
		return 1;
	}
	sbx_session_opts so = {0};
	it_listener_opts(sock, &so, key, sizeof key);
	sbx_error err;
	s = sbx_session_connect(loop, sock, &so, &err);
	if (!s || sbx_session_wait_ready(s, 20, &err) < 0) {
		printf("FAIL setup: %s\n", err.message);
		it_stop_listener(agent, SIGKILL);
		return 1;
	}
	RUN(test_start_list_logs);
	RUN(test_follow_and_running);
	RUN(test_bad_ids_and_signals);
	RUN(test_hello_caps_unchanged);
	RUN(test_stdio_agent_refuses);
	sbx_session_close(s);
	it_stop_listener(agent, SIGTERM);
	it_rm_rf(dir);
	sbx_loop_free(loop);
	return test_summary();
}
