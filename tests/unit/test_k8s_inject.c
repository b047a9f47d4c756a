/* test_k8s_inject.c — the agent copied into a pod over exec
 * (host/backends/k8s/inject.c) against the Kubernetes API emulator: uploaded once,
 * found by its hash the second time, then run as the session's agent over
 * the exec WebSocket; a chart-injected agent is used as is; a pod that is
 * not there gives an error naming it. */
#include <stdlib.h>
#include <sys/stat.h>

#include "backends/k8s/inject.h"
#include "net_util.h"

static char certs[256], root[256], server[100];
static char *ca_pem;
static net_peer emu;
static sbx_loop *loop;
static const char *TOKEN = "inject-test-token";

typedef struct seen {
	int done, uploaded;
	char path[512], err[2000];
} seen;

static void keep(void *ud, const char *path, int uploaded, const char *err)
{
	seen *s = ud;
	s->done = 1;
	s->uploaded = uploaded;
	snprintf(s->path, sizeof s->path, "%s", path ? path : "");
	snprintf(s->err, sizeof s->err, "%s", err ? err : "");
}

static int inject(const char *pod, const char *injected, seen *s)
{
	sbx_k8s_conn k = {.server = server, .ca_pem = ca_pem, .token = TOKEN};
	sbx_k8s_inject_opts o = {.k = &k, .ns = "ns1", .pod = pod, .agent_path = it_agent(), .dir = "bin",
				 .injected_path = injected, .on_done = keep, .ud = s};
	char err[600];
	if (!sbx_k8s_inject_agent(loop, &o, err, sizeof err)) {
		snprintf(s->err, sizeof s->err, "%s", err);
		return -1;
	}
	return it_run_until(loop, &s->done, 60);
}

static void test_upload_once_then_found(void)
{
	seen s = {0};
	CHECKF(inject("plain", NULL, &s) == 0, "%.500s", s.err);
	CHECKF(!s.err[0], "%.500s", s.err);
	CHECK(s.uploaded);
	CHECKF(strncmp(s.path, "bin/sbx-agent-", 14) == 0 && strlen(s.path) == 14 + 16, "%s", s.path);
	char local[800];
	snprintf(local, sizeof local, "%s/ns1/plain/%s", root, s.path);
	struct stat st, agent;
	CHECK(stat(local, &st) == 0 && stat(it_agent(), &agent) == 0);
	CHECK_EQ_INT(st.st_size, agent.st_size);
	CHECK(st.st_mode & 0100);
	seen again = {0};
	CHECK(inject("plain", NULL, &again) == 0);
	CHECKF(!again.err[0], "%.500s", again.err);
	CHECK(!again.uploaded);
	CHECK_EQ_STR(again.path, s.path);
	/* and the session runs it */
	sbx_k8s_conn k = {.server = server, .ca_pem = ca_pem, .token = TOKEN};
	const char *argv[] = {s.path, "--stdio", NULL};
	sbx_k8s_exec x = {.ns = "ns1", .pod = "plain", .argv = argv};
	sbx_error err;
	sbx_session *sess = sbx_session_k8s(loop, &k, &x, NULL, &err);
	CHECKF(sess, "%s", err.message);
	int ready = sbx_session_wait_ready(sess, 30, &err);
	sbx_exec_result r;
	const char *cmd[] = {"sh", "-c", "echo hello from the pod", NULL};
	int rc = ready == 0 ? it_exec(sess, &r, cmd) : -1;
	sbx_session_close(sess);
	CHECKF(ready == 0, "%s", err.message);
	CHECK(rc == 0);
	CHECK_EQ_STR((char *)r.out, "hello from the pod\n");
	sbx_exec_result_free(&r);
}

static void test_chart_injected_agent_is_used(void)
{
	seen s = {0};
	CHECK(inject("plain", "/sbx/bin/sbx-agent", &s) == 0);
	CHECKF(!s.err[0], "%.500s", s.err);
	CHECK(!s.uploaded);
	CHECK_EQ_STR(s.path, "/sbx/bin/sbx-agent");
}

static void test_missing_pod_is_named(void)
{
	seen s = {0};
	CHECK(inject("nope", NULL, &s) == 0);
	CHECKF(strstr(s.err, "copying the agent into pod ns1/nope") && strstr(s.err, "pods \\\"nope\\\" not found") ,
	       "%.500s", s.err);
}

static void test_missing_local_agent(void)
{
	sbx_k8s_conn k = {.server = server, .ca_pem = ca_pem, .token = TOKEN};
	seen s = {0};
	sbx_k8s_inject_opts o = {.k = &k, .ns = "ns1", .pod = "plain", .agent_path = "/no/such/agent",
				 .on_done = keep, .ud = &s};
	char err[600];
	CHECK(sbx_k8s_inject_agent(loop, &o, err, sizeof err) == NULL);
	CHECKF(strstr(err, "cannot read the agent /no/such/agent") && strstr(err, "make agent"), "%s", err);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (!net_have_python() || net_make_certs(certs, sizeof certs) < 0) {
		printf("FAIL test_k8s_inject: python3 with ssl and openssl are needed\n");
		return 1;
	}
	it_tmpdir(root, sizeof root, "k8sinject");
	ca_pem = net_read_pem(certs, "ca.pem");
	const char *argv[] = {"python3", "tests/k8s/emulator.py", "--tls", certs, "--root", root, "--token", TOKEN,
			      "--pod", "ns1/plain:app=x", NULL};
	if (net_peer_start(&emu, argv) < 0) {
		printf("FAIL test_k8s_inject: the emulator did not start\n");
		return 1;
	}
	snprintf(server, sizeof server, "https://127.0.0.1:%d", emu.port);
	loop = sbx_loop_new();
	IT_RUN(test_upload_once_then_found);
	IT_RUN(test_chart_injected_agent_is_used);
	IT_RUN(test_missing_pod_is_named);
	IT_RUN(test_missing_local_agent);
	sbx_loop_free(loop);
	net_peer_stop(&emu);
	free(ca_pem);
	it_rm_rf(certs);
	it_rm_rf(root);
	return test_summary();
}
