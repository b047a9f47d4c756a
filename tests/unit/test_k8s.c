/* test_k8s.c — sbx sessions to an agent in a Kubernetes pod, against the
 * API emulator (tests/k8s/emulator.py, checked against kubectl by
 * tests/k8s/test_emulator.py): the native exec WebSocket transport (v5 and
 * v4), its errors (missing pod, bad token, untrusted server, agent that
 * will not start), keepalive through an idle-timeout, and the `kubectl
 * exec -i` command transport as the fallback. */
#include "backends/k8s/kubeconfig.h"
#include "backends/k8s/sandbox.h"
#include "backends/k8s/token_source.h"
#include "net_util.h"
#include "outcome.h"

static char certs[256], root[256], kubeconfig[300];
static char *ca_pem;
static char server[100];
static net_peer emu, idle_emu, rot_emu;
static char rot_token[300]; /* the one token rot_emu accepts now */
static sbx_loop *loop;
static const char *TOKEN = "k8s-test-token";

static sbx_k8s_conn conn(void)
{
	return (sbx_k8s_conn){.server = server, .ca_pem = ca_pem, .token = TOKEN};
}

static sbx_session *open_pod(const sbx_k8s_conn *k, const char *pod, const char *const *argv, uint64_t ping_ms,
			     sbx_error *err)
{
	const char *def[] = {it_agent(), "--stdio", NULL};
	sbx_k8s_exec x = {.ns = "ns1", .pod = pod, .argv = argv ? argv : def};
	sbx_session_opts so = {.ping_ms = ping_ms};
	sbx_session *s = sbx_session_k8s(loop, k, &x, &so, err);
	if (!s)
		return NULL;
	if (sbx_session_wait_ready(s, 30, err) < 0) {
		sbx_session_close(s);
		return NULL;
	}
	return s;
}

/* exec, stderr, exit code, cwd in the pod, and a file both ways */
static void exercise(sbx_session *s, const char *pod, size_t file_size)
{
	sbx_exec_result r;
	const char *argv[] = {"sh", "-c", "printf out; printf err >&2; pwd >&2; exit 5", NULL};
	CHECKF(it_exec(s, &r, argv) == 0, "%s", r.error.message);
	CHECK_EQ_INT(r.exit_code, 5);
	CHECK_EQ_STR((char *)r.out, "out");
	char want[400];
	snprintf(want, sizeof want, "err%s/ns1/%s\n", root, pod);
	CHECK_EQ_STR((char *)r.err, want);
	sbx_exec_result_free(&r);

	uint8_t *data = malloc(file_size);
	it_fill_random(data, file_size, file_size);
	sbx_file_opts w = SBX_FILE_OPTS_INIT;
	w.path = "sub/blob.bin";
	w.data = data;
	w.len = file_size;
	sbx_file_result fr;
	int wrc = sbx_write_file_sync(s, &w, &fr);
	sbx_file_result_free(&fr);
	char local[400];
	snprintf(local, sizeof local, "%s/ns1/%s/sub/blob.bin", root, pod);
	size_t n = 0;
	uint8_t *on_disk = it_read_local(local, &n);
	sbx_file_opts rd = SBX_FILE_OPTS_INIT;
	rd.path = "sub/blob.bin";
	int rrc = sbx_read_file_sync(s, &rd, &fr);
	int same_disk = on_disk && n == file_size && memcmp(on_disk, data, n) == 0;
	int same_read = rrc == 0 && fr.len == file_size && memcmp(fr.data, data, file_size) == 0;
	free(on_disk);
	free(data);
	sbx_file_result_free(&fr);
	CHECK(wrc == 0);
	CHECK(same_disk); /* it landed in the pod's directory */
	CHECK(same_read);
}

static void test_session_over_v5_exec(void)
{
	sbx_error err;
	sbx_k8s_conn k = conn();
	sbx_session *s = open_pod(&k, "agent-pod", NULL, 0, &err);
	CHECKF(s, "%s", err.message);
	exercise(s, "agent-pod", 8 << 20);
	sbx_session_close(s);
}

static void test_session_over_v4_exec(void)
{
	sbx_error err;
	sbx_k8s_conn k = conn();
	sbx_session *s = open_pod(&k, "v4-pod", NULL, 0, &err);
	CHECKF(s, "%s", err.message);
	exercise(s, "v4-pod", 1 << 20);
	sbx_session_close(s);
}

typedef struct many {
	int done, ok;
} many;

static void many_done(void *ud, sbx_exec_result *r)
{
	many *m = ud;
	m->done++;
	if (r->error.status == SBX_OK && r->exit_code == 0 && r->out_len == 6)
		m->ok++;
}

static void test_concurrent_execs_on_one_stream(void)
{
	sbx_error err;
	sbx_k8s_conn k = conn();
	sbx_session *s = open_pod(&k, "agent-pod", NULL, 0, &err);
	CHECKF(s, "%s", err.message);
	many m = {0};
	const char *argv[] = {"sh", "-c", "sleep 0.2; echo hello", NULL};
	for (int i = 0; i < 20; i++) {
		sbx_exec_opts o = {.argv = argv, .on_done = many_done, .ud = &m};
		CHECKF(sbx_exec(s, &o, &err), "%s", err.message);
	}
	uint64_t end = sbx_now_ms() + 30000;
	while (m.done < 20 && sbx_now_ms() < end)
		sbx_loop_run_once(loop, 50);
	sbx_session_close(s);
	CHECK_EQ_INT(m.done, 20);
	CHECK_EQ_INT(m.ok, 20);
}

static void test_missing_pod_is_named(void)
{
	sbx_error err;
	sbx_k8s_conn k = conn();
	CHECK(open_pod(&k, "no-such-pod", NULL, 0, &err) == NULL);
	CHECKF(strstr(err.message, "pods \\\"no-such-pod\\\" not found") || strstr(err.message, "no-such-pod\" not found"),
	       "%s", err.message);
	CHECKF(strstr(err.message, "404"), "%s", err.message);
}

static void test_bad_credentials_and_trust(void)
{
	sbx_error err;
	sbx_k8s_conn k = conn();
	k.token = "wrong";
	CHECK(open_pod(&k, "agent-pod", NULL, 0, &err) == NULL);
	CHECKF(strstr(err.message, "401") && strstr(err.message, "Unauthorized"), "%s", err.message);
	k = conn();
	k.ca_pem = NULL; /* the system store does not trust the emulator */
	CHECK(open_pod(&k, "agent-pod", NULL, 0, &err) == NULL);
	CHECKF(strstr(err.message, "TLS") && strstr(err.message, server), "%s", err.message);
	k = conn();
	k.server = NULL;
	CHECK(open_pod(&k, "agent-pod", NULL, 0, &err) == NULL);
	CHECK(err.status == SBX_E_INVALID);
	CHECKF(strstr(err.message, "server"), "%s", err.message);
	/* client certificate instead of a token */
	char *cert = net_read_pem(certs, "client.pem"), *key = net_read_pem(certs, "client.key");
	k = conn();
	k.token = NULL;
	k.client_cert_pem = cert;
	k.client_key_pem = key;
	sbx_session *s = open_pod(&k, "agent-pod", NULL, 0, &err);
	free(cert);
	free(key);
	CHECKF(s, "%s", err.message);
	sbx_session_close(s);
}

static void test_agent_that_fails_is_explained(void)
{
	sbx_error err;
	sbx_k8s_conn k = conn();
	const char *bad[] = {"sh", "-c", "echo 'sbx-agent: not installed here' >&2; exit 3", NULL};
	CHECK(open_pod(&k, "agent-pod", bad, 0, &err) == NULL);
	CHECKF(strstr(err.message, "exited with code 3") && strstr(err.message, "not installed here") &&
	       strstr(err.message, "pod ns1/agent-pod"), "%s", err.message);
	const char *missing[] = {"/no/such/agent", "--stdio", NULL};
	CHECK(open_pod(&k, "agent-pod", missing, 0, &err) == NULL);
	CHECKF(strstr(err.message, "/no/such/agent"), "%s", err.message);
}

typedef struct hostile_seen {
	int done;
	sbx_exec_result r;
} hostile_seen;

static void hostile_done(void *ud, sbx_exec_result *r)
{
	hostile_seen *h = ud;
	h->done++;
	h->r.error = r->error;
	h->r.out_len = r->out_len;
}

/* A hostile agent at the far end of an exec WebSocket: the session to it
 * fails with a clear error (or the call is cut off), and a healthy pod's
 * session on the same loop keeps working. */
static void test_hostile_agent_over_websocket(void)
{
	char tool[300];
	const char *build = getenv("BUILD");
	snprintf(tool, sizeof tool, "%s/tests/hostile_agent", build && *build ? build : "build");
	char abs_tool[PATH_MAX];
	CHECKF(realpath(tool, abs_tool), "no %s (make tools)", tool);
	sbx_k8s_conn k = conn();
	sbx_error err;
	sbx_session *healthy = open_pod(&k, "agent-pod", NULL, 0, &err);
	CHECKF(healthy, "%s", err.message);
	static const struct {
		const char *attack;
		sbx_status status;
		const char *want;
	} cases[] = {
		{"bigframe", SBX_E_CONN, "frame of 4294967295"},
		{"bomb", SBX_E_CONN, "does not inflate to its declared"},
		{"flood", SBX_E_LIMIT, "more than the output limit"},
		{"garbage", SBX_E_CONN, "protocol error"},
		{"midframe", SBX_E_CONN, "middle of a frame"},
		{"neverexits", SBX_E_TIMEOUT, "did not end this call"},
	};
	const char *argv[] = {abs_tool, NULL};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sbx_k8s_exec x = {.ns = "ns1", .pod = "agent-pod", .argv = argv};
		sbx_session_opts so = {.overdue_ms = 1000};
		sbx_session *s = sbx_session_k8s(loop, &k, &x, &so, &err);
		CHECKF(s && sbx_session_wait_ready(s, 30, &err) == 0, "%s: %s", cases[i].attack, err.message);
		hostile_seen h = {0};
		const char *cmd[] = {cases[i].attack, NULL};
		sbx_exec_opts o = {.argv = cmd, .on_done = hostile_done, .ud = &h, .output_limit = 1u << 20,
				   .timeout_s = 0.2};
		CHECK(sbx_exec(s, &o, &err) != NULL);
		it_run_until(loop, &h.done, 30);
		it_run_for(loop, 50);
		sbx_session_close(s);
		CHECKF(h.done == 1, "%s: reported %d times", cases[i].attack, h.done);
		CHECKF(h.r.error.status == cases[i].status && strstr(h.r.error.message, cases[i].want),
		       "%s: %s: %s", cases[i].attack, sbx_status_name(h.r.error.status), h.r.error.message);
		sbx_exec_result r;
		const char *echo[] = {"echo", "fine", NULL};
		CHECKF(it_exec(healthy, &r, echo) == 0 && strcmp((char *)r.out, "fine\n") == 0,
		       "after %s the healthy pod's session broke: %s", cases[i].attack, r.error.message);
		sbx_exec_result_free(&r);
	}
	sbx_session_close(healthy);
}

/* ---- a dropped exec stream ----------------------------------------------------------------- */

/* Kills the `sbx-agent --attach SOCK` bridge: the exec stream ends as if
 * the network or the API server had dropped it. */
static int kill_bridge(const char *marker)
{
	pid_t pids[4];
	int n = it_procs_with(marker, pids, 4);
	for (int i = 0; i < n && i < 4; i++)
		kill(pids[i], SIGKILL);
	return n;
}

/* The exec stream runs `sbx-agent --attach SOCK`: killing that bridge at
 * random moments while an exec and two 4 MiB transfers are in flight, the
 * session dials a new stream to the same listening agent, re-attaches the
 * command and collects it whole, exactly once; transfers complete or fail
 * saying the target is unchanged, and never leave a half-written file. */
static void test_dropped_stream_reconnects(void)
{
	enum { ROUNDS = 16, SIZE = 4 << 20, LINES = 20 };
	char sock[300], marker[340], pod_dir[400];
	snprintf(sock, sizeof sock, "%s/ns1/agent-pod/sbx-drop.sock", root);
	snprintf(marker, sizeof marker, "--attach %s", sock);
	snprintf(pod_dir, sizeof pod_dir, "%s/ns1/agent-pod", root);
	const char *argv[] = {it_agent(), "--attach", sock, NULL};
	sbx_k8s_conn k = conn();
	sbx_k8s_exec x = {.ns = "ns1", .pod = "agent-pod", .argv = argv};
	sbx_session_opts so = {.reconnect = 1};
	sbx_error err;
	sbx_session *s = sbx_session_k8s(loop, &k, &x, &so, &err);
	CHECKF(s && sbx_session_wait_ready(s, 30, &err) == 0, "%s", err.message);
	char boot[64];
	snprintf(boot, sizeof boot, "%s", sbx_session_boot_id(s));
	uint8_t *data = malloc(SIZE);
	it_fill_random(data, SIZE, 7);
	char src[500], down[500];
	snprintf(src, sizeof src, "%s/src.bin", pod_dir);
	snprintf(down, sizeof down, "%s/down.bin", root);
	it_write_local(src, data, SIZE);
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	char why[1200] = "";
	int cuts = 0;
	it_round_spec sp = {.dir = pod_dir, .pattern = data, .size = SIZE, .lines = LINES, .sleep = "0.01",
			    .source = "src.bin", .down_path = down};
	for (int round = 0; round < ROUNDS && !why[0]; round++) {
		it_round_reset(&sp);
		it_round rc;
		CHECKF(it_round_start(s, &rc, &sp, why, sizeof why) == 0, "%.600s", why);
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		it_run_for(loop, rng % 250);
		if (!it_round_done(&rc))
			cuts += kill_bridge(marker) > 0;
		it_round_settle(loop, &rc, &sp, 60, 0);
		char what[800] = "";
		if (it_round_reported_once(&rc, what, sizeof what) < 0)
			snprintf(why, sizeof why, "round %d: %s", round, what);
		else if (!it_round_output_whole(&rc, &sp))
			snprintf(why, sizeof why, "round %d: the command was not collected whole: %s", round, rc.ex.message);
		else if (it_round_targets(&rc, &sp, what, sizeof what) < 0)
			snprintf(why, sizeof why, "round %d: %s", round, what);
		it_outcome *files[] = {&rc.up, &rc.down};
		for (int i = 0; i < 2 && !why[0]; i++)
			if (files[i]->status != SBX_OK && !strstr(files[i]->message, "unchanged"))
				snprintf(why, sizeof why, "round %d: %s: %s", round, i ? "download" : "upload",
					 files[i]->message);
		it_round_free(&rc);
	}
	const sbx_error *f = sbx_session_failure(s);
	char boot_after[64];
	snprintf(boot_after, sizeof boot_after, "%s", sbx_session_boot_id(s));
	CHECKF(!why[0], "%.600s", why);
	CHECKF(!f, "the session gave up: %s", f ? f->message : "");
	CHECK_EQ_STR(boot_after, boot); /* the same agent all along */
	CHECKF(cuts >= ROUNDS / 2, "only %d of %d rounds were cut mid-flight", cuts, ROUNDS);
	printf("     %d rounds, %d streams dropped mid-flight\n", ROUNDS, cuts);
	sbx_session_close(s);
	free(data);
	/* the listening agent stays in the pod, as it would in a container */
	pid_t pids[4];
	char listener[340];
	snprintf(listener, sizeof listener, "--listen %s", sock);
	int n = it_procs_with(listener, pids, 4);
	for (int i = 0; i < n && i < 4; i++)
		kill(pids[i], SIGTERM);
}

/* An exec plugin's token expires (EKS: after 15 minutes; here it says 30 s,
 * inside the minute sbx refreshes ahead). The API server (rot_emu) accepts
 * only the current token: after the rotation the first token is refused.
 * The stream is cut; the redial must run the plugin again and present the
 * new token, and the session goes on with the same agent. */
static void test_redial_refreshes_an_expiring_token(void)
{
	char plugin[400], runs[400], kc[400], rot_server[100];
	snprintf(plugin, sizeof plugin, "%s/plugin.sh", certs);
	snprintf(runs, sizeof runs, "%s/plugin.runs", certs);
	snprintf(kc, sizeof kc, "%s/kubeconfig-exec", certs);
	snprintf(rot_server, sizeof rot_server, "https://127.0.0.1:%d", rot_emu.port);
	FILE *f = fopen(plugin, "w");
	CHECK(f);
	fprintf(f, "#!/bin/sh\necho run >> '%s'\n"
		   "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
		   "\"status\":{\"token\":\"%%s\",\"expirationTimestamp\":\"%%s\"}}' \"$(cat '%s')\" "
		   "\"$(date -u -d '+30 seconds' +%%Y-%%m-%%dT%%H:%%M:%%SZ)\"\n",
		runs, rot_token);
	fclose(f);
	chmod(plugin, 0755);
	char cmd[1600];
	snprintf(cmd, sizeof cmd,
		 "printf '{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"e\","
		 "\"clusters\":[{\"name\":\"e\",\"cluster\":{\"server\":\"%s\",\"certificate-authority-data\":\"%%s\"}}],"
		 "\"users\":[{\"name\":\"u\",\"user\":{\"exec\":{\"apiVersion\":\"client.authentication.k8s.io/v1\","
		 "\"command\":\"%s\",\"interactiveMode\":\"Never\"}}}],"
		 "\"contexts\":[{\"name\":\"e\",\"context\":{\"cluster\":\"e\",\"user\":\"u\"}}]}' "
		 "\"$(base64 -w0 %s/ca.pem)\" > %s",
		 rot_server, plugin, certs, kc);
	CHECK(system(cmd) == 0);
	it_write_local(rot_token, "tok-1", 5);

	sbx_k8s_config cfg;
	sbx_k8s_config_opts co = {.kubeconfig = kc};
	char err[1500];
	int loaded = sbx_k8s_config_load(&co, &cfg, err, sizeof err) == 0 &&
		     sbx_k8s_auth_refresh_sync(&cfg, 20000, err, sizeof err) == 0;
	if (!loaded)
		sbx_k8s_config_free(&cfg);
	CHECKF(loaded, "%.600s", err);
	sbx_k8s_conn k;
	sbx_k8s_conn_from_config(&cfg, &k);
	sbx_k8s_conn_refreshing(&k, &cfg, kc, NULL, NULL);
	int refreshing = k.token_source != NULL && strcmp(k.token, "tok-1") == 0;

	char sock[300], marker[340];
	snprintf(sock, sizeof sock, "%s/ns1/agent-pod/sbx-rot.sock", root);
	snprintf(marker, sizeof marker, "--attach %s", sock);
	const char *argv[] = {it_agent(), "--attach", sock, NULL};
	sbx_k8s_exec x = {.ns = "ns1", .pod = "agent-pod", .argv = argv};
	sbx_session_opts so = {.reconnect = 1};
	sbx_error e;
	sbx_session *s = sbx_session_k8s(loop, &k, &x, &so, &e);
	sbx_k8s_config_free(&cfg); /* the session keeps its own source */
	CHECK(refreshing);
	CHECKF(s && sbx_session_wait_ready(s, 30, &e) == 0, "%s", e.message);
	char boot[64];
	snprintf(boot, sizeof boot, "%s", sbx_session_boot_id(s));
	sbx_exec_result r;
	const char *one[] = {"echo", "one", NULL};
	CHECKF(it_exec(s, &r, one) == 0 && r.exit_code == 0, "%s", r.error.message);
	sbx_exec_result_free(&r);

	it_write_local(rot_token, "tok-2", 5); /* tok-1 expired: refused from now on */
	CHECK(kill_bridge(marker) > 0);
	const char *two[] = {"echo", "two", NULL};
	int rc = it_exec(s, &r, two);
	char why[600];
	snprintf(why, sizeof why, "%s", rc == 0 ? "" : r.error.message);
	int ok = rc == 0 && r.exit_code == 0 && r.out && strcmp((char *)r.out, "two\n") == 0;
	sbx_exec_result_free(&r);
	const sbx_error *failed = sbx_session_failure(s);
	snprintf(err, sizeof err, "%s", failed ? failed->message : "");
	int same_agent = strcmp(sbx_session_boot_id(s), boot) == 0;
	sbx_session_close(s);
	size_t n = 0;
	char *log = (char *)it_read_local(runs, &n);
	int plugin_runs = 0;
	for (size_t i = 0; log && i + 3 <= n; i++)
		plugin_runs += memcmp(log + i, "run", 3) == 0;
	free(log);
	pid_t pids[4];
	char listener[340];
	snprintf(listener, sizeof listener, "--listen %s", sock);
	int np = it_procs_with(listener, pids, 4);
	for (int i = 0; i < np && i < 4; i++)
		kill(pids[i], SIGTERM);
	CHECKF(ok, "the command after the redial failed: %s", why);
	CHECKF(!err[0], "the session gave up: %.600s", err);
	CHECK(same_agent);
	CHECKF(plugin_runs >= 2, "the plugin ran %d times", plugin_runs); /* at the start and for the redial */
}

static void test_heartbeats_survive_idle_timeout(void)
{
	/* idle_emu cuts exec streams after 4 s without a data frame, as a
	 * kubelet's streamingConnectionIdleTimeout would */
	char idle_server[100];
	snprintf(idle_server, sizeof idle_server, "https://127.0.0.1:%d", idle_emu.port);
	sbx_k8s_conn k = conn();
	k.server = idle_server;
	sbx_error err;
	sbx_session *s = open_pod(&k, "agent-pod", NULL, 200, &err);
	CHECKF(s, "%s", err.message);
	it_run_for(loop, 9000); /* heartbeats go out about once a second: 4x margin */
	CHECKF(!sbx_session_failure(s), "%s", sbx_session_failure(s)->message);
	sbx_exec_result r;
	const char *argv[] = {"echo", "alive", NULL};
	CHECKF(it_exec(s, &r, argv) == 0, "%s", r.error.message);
	CHECK_EQ_STR((char *)r.out, "alive\n");
	sbx_exec_result_free(&r);
	sbx_session_close(s);
	/* with heartbeats rarer than the idle timeout, the stream is cut: the
	 * emulator does enforce it */
	s = open_pod(&k, "agent-pod", NULL, 10000, &err);
	CHECKF(s, "%s", err.message);
	uint64_t end = sbx_now_ms() + 30000;
	while (!sbx_session_failure(s) && sbx_now_ms() < end)
		sbx_loop_run_once(loop, 50);
	CHECK(sbx_session_failure(s));
	CHECKF(strstr(sbx_session_failure(s)->message, "exec stream to pod ns1/agent-pod ended"), "%s",
	       sbx_session_failure(s)->message);
	sbx_session_close(s);
}

static const char *kubectl_path(void)
{
	static char path[512];
	const char *env = getenv("KUBECTL");
	if (env && env[0])
		return env;
	FILE *f = popen("tests/chart/get-helm.sh build/tools 4 kubectl 2>/dev/null", "r");
	if (!f)
		return NULL;
	if (!fgets(path, sizeof path, f))
		path[0] = 0;
	pclose(f);
	path[strcspn(path, "\n")] = 0;
	return path[0] ? path : NULL;
}

static void test_kubectl_exec_fallback_transport(void)
{
	const char *kubectl = kubectl_path();
	CHECKF(kubectl, "no kubectl (tests/chart/get-helm.sh build/tools 4 kubectl failed)");
	/* sbx_k8s_exec.kubectl: the same exec through `kubectl exec -i` */
	const char *prefix[] = {kubectl, "--kubeconfig", kubeconfig, NULL};
	const char *argv[] = {it_agent(), "--stdio", NULL};
	sbx_k8s_exec x = {.ns = "ns1", .pod = "agent-pod", .argv = argv, .kubectl = prefix};
	sbx_error err;
	sbx_session *s = sbx_session_k8s(loop, NULL, &x, NULL, &err); /* no API settings: kubectl has them */
	CHECKF(s, "%s", err.message);
	int ready = sbx_session_wait_ready(s, 60, &err);
	CHECKF(ready == 0, "%s", err.message);
	exercise(s, "agent-pod", 2 << 20);
	sbx_session_close(s);
}

static int write_kubeconfig(void)
{
	snprintf(kubeconfig, sizeof kubeconfig, "%s/kubeconfig", certs);
	char cmd[1200];
	snprintf(cmd, sizeof cmd,
		 "printf '{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"e\","
		 "\"clusters\":[{\"name\":\"e\",\"cluster\":{\"server\":\"%s\",\"certificate-authority-data\":\"%%s\"}}],"
		 "\"users\":[{\"name\":\"u\",\"user\":{\"token\":\"%s\"}}],"
		 "\"contexts\":[{\"name\":\"e\",\"context\":{\"cluster\":\"e\",\"user\":\"u\"}}]}' "
		 "\"$(base64 -w0 %s/ca.pem)\" > %s",
		 server, TOKEN, certs, kubeconfig);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (!net_have_python() || net_make_certs(certs, sizeof certs) < 0) {
		printf("FAIL test_k8s: python3 with ssl and openssl are needed\n");
		return 1;
	}
	it_tmpdir(root, sizeof root, "k8sroot");
	ca_pem = net_read_pem(certs, "ca.pem");
	const char *a1[] = {"python3", "tests/k8s/emulator.py", "--tls", certs, "--root", root, "--token", TOKEN,
			    "--pod", "ns1/agent-pod:app=agent", "--pod", "ns1/v4-pod:app=agent,ann.emulator.sbx/no-v5=true",
			    NULL};
	const char *a2[] = {"python3", "tests/k8s/emulator.py", "--tls", certs, "--root", root, "--token", TOKEN,
			    "--idle-timeout-ms", "4000", "--pod", "ns1/agent-pod:app=agent", NULL};
	snprintf(rot_token, sizeof rot_token, "%s/rotating-token", certs);
	it_write_local(rot_token, "tok-1", 5);
	const char *a3[] = {"python3", "tests/k8s/emulator.py", "--tls", certs, "--root", root, "--token-file", rot_token,
			    "--pod", "ns1/agent-pod:app=agent", NULL};
	if (net_peer_start(&emu, a1) < 0 || net_peer_start(&idle_emu, a2) < 0 || net_peer_start(&rot_emu, a3) < 0) {
		printf("FAIL test_k8s: the emulator did not start\n");
		return 1;
	}
	snprintf(server, sizeof server, "https://127.0.0.1:%d", emu.port);
	write_kubeconfig();
	loop = sbx_loop_new();
	IT_RUN(test_session_over_v5_exec);
	IT_RUN(test_session_over_v4_exec);
	IT_RUN(test_concurrent_execs_on_one_stream);
	IT_RUN(test_missing_pod_is_named);
	IT_RUN(test_bad_credentials_and_trust);
	IT_RUN(test_agent_that_fails_is_explained);
	IT_RUN(test_hostile_agent_over_websocket);
	IT_RUN(test_dropped_stream_reconnects);
	IT_RUN(test_redial_refreshes_an_expiring_token);
	IT_RUN(test_heartbeats_survive_idle_timeout);
	IT_RUN(test_kubectl_exec_fallback_transport);
	sbx_loop_free(loop);
	net_peer_stop(&emu);
	net_peer_stop(&idle_emu);
	net_peer_stop(&rot_emu);
	free(ca_pem);
	it_rm_rf(certs);
	it_rm_rf(root);
	return test_summary();
}
