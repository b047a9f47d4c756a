/* test_ssm_transport.c — the whole EC2 reach path without AWS: the SSM API
 * (StartSession, DescribeInstanceInformation, TerminateSession; signatures
 * checked with botocore) and the Session Manager data channel served by
 * tests/aws/ssm_emulator.py, forwarding to a real sbx-agent listening on
 * loopback as the instance's agent would. A session over it runs commands
 * and moves files; with the emulator losing messages the retransmissions
 * still deliver every byte in order. Bad tokens, KMS, a wrong session type
 * and a closed agent port fail with errors that say so. */
#include "backends/aws/api.h"
#include "backends/aws/ssm.h"
#include "aws_fixture.h"
#include "core/internal.h"
#include "test.h"
#include "transport/ssm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define AKID "AKIDSBXTEST"
#define SECRET "sbx-test-secret"

static sbx_loop *loop;
static sbx_http *http;
static int agent_port; /* the agent's, or (for one case) a port nothing listens on */
static aws_agent agent = {-1, 0};
static char key_path[128]; /* the agent's secret (docs/agent-auth.md) */

static int start_agent(void)
{
	const char *path = getenv("SBX_AGENT");
	snprintf(key_path, sizeof key_path, "/tmp/sbx-test-ssm-transport.%d.key", (int)getpid());
	if (aws_agent_start(&agent, path ? path : "build/sbx-agent", key_path, NULL) < 0)
		return -1;
	agent_port = agent.port;
	return 0;
}

/* The emulator forwarding to agent_port, signatures checked; extra: one more
 * flag ("--drop-every" takes 7). */
static int start_emulator(aws_emulator *e, const char *extra)
{
	char port[16];
	snprintf(port, sizeof port, "%d", agent_port);
	const char *args[12] = {"--agent-port", port, "--access-key", AKID, "--secret", SECRET};
	int n = 6;
	if (extra && *extra) {
		args[n++] = extra;
		if (strcmp(extra, "--drop-every") == 0)
			args[n++] = "7";
	}
	args[n] = NULL;
	return aws_emulator_start(e, args, NULL);
}

static aws_client *client_for(const aws_emulator *e, const char *secret)
{
	aws_credentials cr;
	memset(&cr, 0, sizeof cr);
	snprintf(cr.access_key_id, sizeof cr.access_key_id, AKID);
	snprintf(cr.secret_access_key, sizeof cr.secret_access_key, "%s", secret);
	aws_client_opts o = {.region = "eu-west-2", .endpoint_url = e->endpoint, .static_creds = &cr,
			     .max_retries = 1, .max_retries_set = 1, .backoff_base_ms = 10};
	sbx_error err;
	return aws_client_new(loop, http, &o, &err);
}

/* ------------------------------------------------------------- waiting */

typedef struct waiter {
	int done;
	sbx_error err;
	char text[128];
	aws_ssm_session s;
} waiter;

static void on_session(void *ud, const sbx_error *err, const aws_ssm_session *s)
{
	waiter *w = ud;
	w->done = 1;
	w->err = err ? *err : (sbx_error){0};
	if (s)
		w->s = *s;
}

static void on_text(void *ud, const sbx_error *err, const char *v)
{
	waiter *w = ud;
	w->done = 1;
	w->err = err ? *err : (sbx_error){0};
	snprintf(w->text, sizeof w->text, "%s", v ? v : "");
}

static void on_done(void *ud, const sbx_error *err)
{
	waiter *w = ud;
	w->done = 1;
	w->err = err ? *err : (sbx_error){0};
}

static int start_session(aws_client *c, aws_ssm_session *out, sbx_error *err)
{
	char port[16];
	snprintf(port, sizeof port, "%d", agent_port);
	const char *params[] = {"portNumber", port, "localPortNumber", "0", NULL};
	waiter w = {0};
	if (aws_ssm_start_session(c, "i-0123456789abcdef0", "AWS-StartPortForwardingSession", params, on_session, &w,
				  err) < 0)
		return -1;
	sbx_loop_run_until(loop, &w.done);
	*err = w.err;
	*out = w.s;
	return w.err.status == SBX_OK ? 0 : -1;
}

/* Open a session over the data channel and wait for the agent's HELLO. */
static sbx_session *open_session(const aws_ssm_session *as, double timeout_s, sbx_error *err)
{
	sbx_ssm_opts o = {.stream_url = as->stream_url, .token = as->token, .session_id = as->session_id,
			  .connect_timeout_s = timeout_s};
	char why[512];
	sbx_transport *t = sbx_ssm_transport(loop, &o, why, sizeof why);
	if (!t) {
		sbx_error_set(err, SBX_E_CONN, EIO, "connection", "%s", why);
		return NULL;
	}
	sbx_session_opts so = {.secret_file = key_path};
	sbx_session *s = sbx_session_transport(loop, t, &so, err);
	if (s && sbx_session_wait_ready(s, timeout_s + 5, err) < 0) {
		sbx_session_close(s);
		return NULL;
	}
	return s;
}

/* --------------------------------------------------------------- tests */

static void exec_and_files_over(const char *emulator_flag)
{
	aws_emulator e;
	CHECK(start_emulator(&e, emulator_flag) == 0);
	aws_client *c = client_for(&e, SECRET);
	aws_ssm_session as;
	sbx_error err;
	int started = start_session(c, &as, &err);
	if (started < 0)
		printf("# %s\n", err.message);
	sbx_session *s = started == 0 ? open_session(&as, 20, &err) : NULL;
	if (started == 0 && !s)
		printf("# %s\n", err.message);
	int ok_exec = 0, ok_file = 0;
	if (s) {
		const char *argv[] = {"sh", "-c", "echo hello over ssm; echo err >&2; exit 3", NULL};
		sbx_exec_opts eo = {.argv = argv};
		sbx_exec_result r;
		if (sbx_exec_sync(s, &eo, &r) == 0)
			ok_exec = r.exit_code == 3 && r.out_len == 15 && memcmp(r.out, "hello over ssm\n", 15) == 0 &&
				  r.err_len == 4;
		sbx_exec_result_free(&r);

		size_t n = 3 * 1024 * 1024 + 17;
		uint8_t *data = malloc(n);
		for (size_t i = 0; i < n; i++)
			data[i] = (uint8_t)((i * 2654435761u) >> 13);
		char path[64];
		snprintf(path, sizeof path, "/tmp/sbx-ssm-test-%d", (int)getpid());
		sbx_file_opts wo = {.path = path, .data = data, .len = n, .fd = -1, .mode = -1};
		sbx_file_result wr, rr;
		int w = sbx_write_file_sync(s, &wo, &wr);
		sbx_file_opts ro = {.path = path, .fd = -1};
		int rd = w == 0 ? sbx_read_file_sync(s, &ro, &rr) : -1;
		ok_file = w == 0 && rd == 0 && rr.len == n && memcmp(rr.data, data, n) == 0;
		if (!ok_file)
			printf("# file: %s %s\n", wr.error.message, rd == 0 ? "" : rr.error.message);
		sbx_file_result_free(&wr);
		if (w == 0)
			sbx_file_result_free(&rr);
		unlink(path);
		free(data);
		sbx_session_close(s);
	}
	waiter t = {0};
	if (started == 0 && aws_ssm_terminate_session(c, as.session_id, on_done, &t, &err) == 0)
		sbx_loop_run_until(loop, &t.done);
	aws_client_free(c);

	/* What the emulator saw: no protocol complaints; resends when it dropped messages. */
	char cmd[160];
	snprintf(cmd, sizeof cmd, "python3 -c \"import urllib.request;print(urllib.request.urlopen('%s/stats').read()"
				  ".decode())\"", e.endpoint);
	FILE *p = popen(cmd, "r");
	char stats[2048] = "";
	if (p) {
		if (!fgets(stats, sizeof stats, p))
			stats[0] = 0;
		pclose(p);
	}
	aws_emulator_stop(&e);
	CHECK(started == 0);
	CHECK(s != NULL);
	CHECK(ok_exec);
	CHECK(ok_file);
	CHECK(t.done && t.err.status == SBX_OK);
	CHECK(strstr(stats, "\"bad\": []") != NULL);
	CHECK(strstr(stats, "\"acks_received\": 0") == NULL);
	if (emulator_flag)
		CHECK(strstr(stats, "\"resends\": 0") == NULL);
}

static void session_over_the_data_channel(void)
{
	exec_and_files_over(NULL);
}

static void session_despite_lost_messages(void)
{
	exec_and_files_over("--drop-every");
}

static void api_calls_and_signatures(void)
{
	aws_emulator e;
	CHECK(start_emulator(&e, NULL) == 0);
	aws_client *c = client_for(&e, SECRET);
	waiter w = {0};
	sbx_error err;
	int rc = aws_ssm_ping_status(c, "i-0123456789abcdef0", on_text, &w, &err);
	if (rc == 0)
		sbx_loop_run_until(loop, &w.done);
	aws_client_free(c);
	aws_client *bad = client_for(&e, "wrong-secret");
	waiter b = {0};
	int rc2 = aws_ssm_ping_status(bad, "i-0123456789abcdef0", on_text, &b, &err);
	if (rc2 == 0)
		sbx_loop_run_until(loop, &b.done);
	aws_client_free(bad);
	aws_emulator_stop(&e);
	CHECK(rc == 0 && w.err.status == SBX_OK);
	CHECK_EQ_STR(w.text, "Online");
	CHECK(rc2 == 0 && b.err.status == SBX_E_REMOTE);
	CHECK(strstr(b.err.message, "InvalidSignatureException") != NULL);
}

static void failures_are_named(void)
{
	struct {
		const char *flag;
		int bad_token, close_agent;
		const char *expect;
	} cases[] = {
		{NULL, 1, 0, "SSM data channel"},
		{"--kms", 0, 0, "KMS"},
		{"--session-type", 0, 0, "not a port forwarding session"},
		{NULL, 0, 1, "could not connect to the agent's port"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		aws_emulator e;
		const char *flag = cases[i].flag;
		int started_em;
		if (flag && strcmp(flag, "--session-type") == 0) {
			/* a shell session instead of a port session */
			started_em = start_emulator(&e, "--session-type=Standard_Stream");
		} else {
			started_em = start_emulator(&e, flag);
		}
		CHECK(started_em == 0);
		aws_client *c = client_for(&e, SECRET);
		aws_ssm_session as;
		sbx_error err;
		CHECK(start_session(c, &as, &err) == 0);
		if (cases[i].bad_token)
			snprintf(as.token, sizeof as.token, "not-the-token");
		int saved_port = agent_port;
		if (cases[i].close_agent)
			agent_port = aws_free_port(); /* nothing listens there */
		sbx_session *s = NULL;
		if (cases[i].close_agent) {
			/* the emulator was told the agent's port at start: restart it pointing nowhere */
			aws_emulator_stop(&e);
			CHECK(start_emulator(&e, NULL) == 0);
			aws_client_free(c);
			c = client_for(&e, SECRET);
			CHECK(start_session(c, &as, &err) == 0);
		}
		s = open_session(&as, 5, &err);
		agent_port = saved_port;
		aws_client_free(c);
		aws_emulator_stop(&e);
		if (s)
			sbx_session_close(s);
		if (!strstr(err.message, cases[i].expect))
			printf("# case %zu: %s\n", i, err.message);
		CHECK(s == NULL);
		CHECK(strstr(err.message, cases[i].expect) != NULL);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (start_agent() < 0) {
		printf("FAIL agent: sbx-agent --listen did not start\n");
		return 1;
	}
	loop = sbx_loop_new();
	http = sbx_http_new(loop);
	RUN(api_calls_and_signatures);
	RUN(session_over_the_data_channel);
	RUN(session_despite_lost_messages);
	RUN(failures_are_named);
	sbx_http_free(http);
	sbx_loop_free(loop);
	aws_agent_stop(&agent);
	return test_summary();
}
