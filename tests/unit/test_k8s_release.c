/* test_k8s_release.c — the release lifecycle pieces: commands run to
 * completion on the loop (host/core/child.c), helm install/uninstall
 * (host/backends/k8s/release.c) with a recording helm and with the real helm against
 * an API server that is not there, and waiting for a release's pods
 * (host/backends/k8s/ready.c) against the Kubernetes API emulator, and the whole
 * sandbox machine (host/backends/k8s/sandbox.c) on the test's loop with the real helm. */
#include <stdlib.h>

#include "core/child.h"
#include "backends/k8s/inject.h"
#include "backends/k8s/ready.h"
#include "backends/k8s/release.h"
#include "backends/k8s/sandbox.h"
#include "net_util.h"

static char tmp[256], certs[256], root[256], server[100];
static char *ca_pem;
static net_peer emu;
static sbx_loop *loop;
static const char *TOKEN = "release-test-token";

/* ---- child.c ----------------------------------------------------------------------------- */

typedef struct child_seen {
	int done, exit_code, timed_out, out_truncated;
	size_t out_len;
	char out[256], err[256];
} child_seen;

static void keep_child(void *ud, const sbx_child_result *r)
{
	child_seen *s = ud;
	s->done = 1;
	s->exit_code = r->exit_code;
	s->timed_out = r->timed_out;
	s->out_truncated = r->out_truncated;
	s->out_len = r->out_len;
	snprintf(s->out, sizeof s->out, "%s", r->out);
	snprintf(s->err, sizeof s->err, "%s", r->err);
}

static void test_child_output_status_and_timeout(void)
{
	const char *argv[] = {"sh", "-c", "echo out; echo err1 >&2; echo err2 >&2; exit 3", NULL};
	child_seen s = {0};
	char err[200];
	sbx_child_opts o = {.argv = argv, .on_done = keep_child, .ud = &s};
	CHECK(sbx_child_run(loop, &o, err, sizeof err));
	CHECK(it_run_until(loop, &s.done, 20) == 0);
	CHECK_EQ_INT(s.exit_code, 3);
	CHECK_EQ_STR(s.out, "out\n");
	CHECK_EQ_STR(s.err, "err1\nerr2"); /* trailing newline cut */
	CHECK(!s.out_truncated);
	const char *chatty[] = {"sh", "-c", "head -c 100000 /dev/zero; echo done >&2", NULL};
	s = (child_seen){0};
	o = (sbx_child_opts){.argv = chatty, .max_out = 1000, .on_done = keep_child, .ud = &s};
	CHECK(sbx_child_run(loop, &o, err, sizeof err));
	CHECK(it_run_until(loop, &s.done, 20) == 0);
	CHECK_EQ_INT(s.exit_code, 0); /* read to its end, not killed */
	CHECK(s.out_truncated && s.out_len == 1000);
	CHECK_EQ_STR(s.err, "done");
	const char *slow[] = {"sh", "-c", "sleep 30", NULL};
	s = (child_seen){0};
	o = (sbx_child_opts){.argv = slow, .timeout_ms = 200, .on_done = keep_child, .ud = &s};
	CHECK(sbx_child_run(loop, &o, err, sizeof err));
	CHECK(it_run_until(loop, &s.done, 20) == 0);
	CHECK(s.timed_out);
	CHECK_EQ_INT(s.exit_code, 128 + 9);
	const char *missing[] = {"/no/such/helm", NULL};
	s = (child_seen){0};
	o = (sbx_child_opts){.argv = missing, .on_done = keep_child, .ud = &s};
	CHECK(sbx_child_run(loop, &o, err, sizeof err));
	CHECK(it_run_until(loop, &s.done, 20) == 0);
	sbx_child_result r = {.exit_code = s.exit_code, .err = s.err};
	char how[100];
	sbx_child_describe(&r, 0, how, sizeof how);
	CHECKF(strstr(how, "command not found"), "%s (stderr %s)", how, s.err);
}

static void test_child_cancel_kills_it(void)
{
	char marker[64], script[200], err[200];
	it_marker(marker, sizeof marker);
	snprintf(script, sizeof script, "sleep 30 # %s", marker);
	const char *argv[] = {"sh", "-c", script, NULL};
	child_seen s = {0};
	sbx_child_opts o = {.argv = argv, .on_done = keep_child, .ud = &s};
	sbx_child *c = sbx_child_run(loop, &o, err, sizeof err);
	CHECK(c);
	it_run_for(loop, 100);
	sbx_child_cancel(c);
	CHECK(it_wait_procs_gone(marker, 10) == 0);
	it_run_for(loop, 50);
	CHECK(!s.done);
}

/* ---- release.c: names and command lines --------------------------------------------------- */

static void test_release_names(void)
{
	char a[9], b[9];
	sbx_k8s_release_name(a);
	sbx_k8s_release_name(b);
	CHECK_EQ_INT(strlen(a), 8);
	CHECK(a[0] >= 'a' && a[0] <= 'z');
	for (int i = 0; i < 8; i++)
		CHECK((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= '0' && a[i] <= '9'));
	CHECK(strcmp(a, b) != 0);
}

static void join(char **argv, char *out, size_t len)
{
	out[0] = 0;
	for (size_t i = 0; argv[i]; i++) {
		size_t n = strlen(out);
		snprintf(out + n, len - n, "%s%s", i ? " " : "", argv[i]);
	}
}

static void test_release_command_lines(void)
{
	unsetenv("INSPECT_HELM_TIMEOUT");
	unsetenv("INSPECT_HELM_LABELS");
	unsetenv("INSPECT_HELM_CREATE_NAMESPACE");
	unsetenv("INSPECT_SANDBOX_COREDNS_IMAGE");
	unsetenv("SBX_HELM");
	const char *values[] = {"a.yaml", "b.yaml", NULL};
	sbx_k8s_release_opts o = {.release = "abcd1234", .ns = "evals", .chart = "chart/agent-env",
				  .values = values, .task = "my,task", .kube_context = "ctx",
				  .kubeconfig = "/k/config"};
	char err[300], line[1000];
	char **argv = sbx_k8s_release_argv("install", &o, err, sizeof err);
	CHECK(argv);
	join(argv, line, sizeof line);
	sbx_k8s_release_argv_free(argv);
	const char *want1 = "helm install abcd1234 chart/agent-env --namespace evals --kube-context ctx --kubeconfig "
			   "/k/config --timeout 600s --disable-openapi-validation --labels inspectSandbox=true --set-string "
			   "annotations.inspectTaskName=my\\,task --values a.yaml --values b.yaml";
	CHECK_EQ_STR(line, want1);
	setenv("INSPECT_HELM_TIMEOUT", "42", 1);
	setenv("INSPECT_HELM_LABELS", "team=x", 1);
	setenv("INSPECT_HELM_CREATE_NAMESPACE", "true", 1);
	setenv("INSPECT_SANDBOX_COREDNS_IMAGE", "reg/coredns:1", 1);
	setenv("SBX_HELM", "/opt/helm", 1);
	o = (sbx_k8s_release_opts){.release = "r", .ns = "n", .chart = "c"};
	argv = sbx_k8s_release_argv("install", &o, err, sizeof err);
	CHECK(argv);
	join(argv, line, sizeof line);
	sbx_k8s_release_argv_free(argv);
	const char *want2 = "/opt/helm install r c --namespace n --timeout 42s --disable-openapi-validation --labels inspectSandbox=true,team=x "
			   "--set-string corednsImage=reg/coredns:1 --create-namespace";
	CHECK_EQ_STR(line, want2);
	argv = sbx_k8s_release_argv("uninstall", &o, err, sizeof err);
	CHECK(argv);
	join(argv, line, sizeof line);
	sbx_k8s_release_argv_free(argv);
	const char *want3 = "/opt/helm uninstall r --namespace n --timeout 42s --ignore-not-found";
	CHECK_EQ_STR(line, want3);
	setenv("INSPECT_HELM_TIMEOUT", "ten", 1);
	CHECK(sbx_k8s_release_argv("install", &o, err, sizeof err) == NULL);
	CHECKF(strstr(err, "INSPECT_HELM_TIMEOUT='ten'"), "%.500s", err);
	unsetenv("INSPECT_HELM_TIMEOUT");
	unsetenv("INSPECT_HELM_LABELS");
	unsetenv("INSPECT_HELM_CREATE_NAMESPACE");
	unsetenv("INSPECT_SANDBOX_COREDNS_IMAGE");
	unsetenv("SBX_HELM");
	o.chart = NULL;
	CHECK(sbx_k8s_release_argv("install", &o, err, sizeof err) == NULL);
	CHECKF(strstr(err, "chart"), "%.500s", err);
}

/* ---- release.c: running helm -------------------------------------------------------------- */

/* A helm that logs its arguments and fails `install` when FAIL_INSTALL is set. */
static void fake_helm(char *path, size_t len, const char *log)
{
	snprintf(path, len, "%s/helm", tmp);
	char script[600];
	snprintf(script, sizeof script,
		 "#!/bin/sh\necho \"$*\" >> %s\n"
		 "if [ \"$1\" = install ] && [ -n \"$FAIL_INSTALL\" ]; then\n"
		 "  echo 'Error: INSTALLATION FAILED: services \"x\" is forbidden' >&2; exit 1\nfi\n"
		 "if [ \"$1\" = uninstall ] && [ -n \"$FAIL_UNINSTALL\" ]; then echo 'Error: cluster gone' >&2; exit 1; fi\n",
		 log);
	it_write_local(path, script, strlen(script));
	chmod(path, 0755);
}

static void test_install_and_uninstall_run_helm(void)
{
	char helm[300], log[300], err[1000];
	snprintf(log, sizeof log, "%s/helm.log", tmp);
	unlink(log);
	fake_helm(helm, sizeof helm, log);
	unsetenv("FAIL_INSTALL");
	sbx_k8s_release_opts o = {.helm = helm, .release = "rel1", .ns = "ns1", .chart = "chart/agent-env"};
	CHECKF(sbx_k8s_release_install_sync(&o, err, sizeof err) == 0, "%.500s", err);
	CHECKF(sbx_k8s_release_uninstall_sync(&o, err, sizeof err) == 0, "%.500s", err);
	size_t n;
	char *got = (char *)it_read_local(log, &n);
	CHECK(got);
	int ok = strstr(got, "install rel1 chart/agent-env --namespace ns1") && strstr(got, "uninstall rel1 --namespace ns1");
	free(got);
	CHECK(ok);
}

static void test_failed_install_is_uninstalled(void)
{
	char helm[300], log[300], err[1000];
	snprintf(log, sizeof log, "%s/helm-fail.log", tmp);
	unlink(log);
	fake_helm(helm, sizeof helm, log);
	setenv("FAIL_INSTALL", "1", 1);
	sbx_k8s_release_opts o = {.helm = helm, .release = "rel2", .ns = "ns1", .chart = "chart/agent-env"};
	int rc = sbx_k8s_release_install_sync(&o, err, sizeof err);
	unsetenv("FAIL_INSTALL");
	CHECK(rc == -1);
	CHECKF(strstr(err, "helm install of release rel2 failed: helm exited with status 1: Error: INSTALLATION "
			   "FAILED: services \"x\" is forbidden; the release was uninstalled"), "%.500s", err);
	size_t n;
	char *got = (char *)it_read_local(log, &n);
	CHECK(got);
	int ok = strstr(got, "uninstall rel2 --namespace ns1") != NULL;
	free(got);
	CHECK(ok);
	setenv("FAIL_INSTALL", "1", 1);
	setenv("FAIL_UNINSTALL", "1", 1);
	rc = sbx_k8s_release_install_sync(&o, err, sizeof err);
	unsetenv("FAIL_INSTALL");
	unsetenv("FAIL_UNINSTALL");
	CHECK(rc == -1);
	CHECKF(strstr(err, "uninstalling it also failed (helm exited with status 1: Error: cluster gone), remove it "
			   "with `helm uninstall rel2`"), "%.500s", err);
	o.helm = "/no/such/helm";
	CHECK(sbx_k8s_release_uninstall_sync(&o, err, sizeof err) == -1);
	CHECKF(strstr(err, "helm uninstall of release rel2 failed: helm could not be run (command not found)"), "%.500s", err);
}

static char helm_path[400];

static const char *real_helm(void)
{
	if (helm_path[0])
		return helm_path;
	FILE *p = popen("tests/chart/get-helm.sh build/tools 4 2>/dev/null", "r");
	if (p) {
		if (!fgets(helm_path, sizeof helm_path, p))
			helm_path[0] = 0;
		pclose(p);
	}
	helm_path[strcspn(helm_path, "\n")] = 0;
	return helm_path[0] ? helm_path : NULL;
}

/* The real helm, against an API server that refuses connections. */
static void test_real_helm_error_names_release(void)
{
	const char *helm = real_helm();
	CHECKF(helm, "tests/chart/get-helm.sh found no helm");
	char kc[300], err[3000];
	snprintf(kc, sizeof kc, "%s/dead-kubeconfig", tmp);
	const char *cfg = "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"dead\",\"clusters\":[{\"name\":"
			  "\"dead\",\"cluster\":{\"server\":\"https://127.0.0.1:1\"}}],\"users\":[{\"name\":\"u\",\"user\":"
			  "{\"token\":\"t\"}}],\"contexts\":[{\"name\":\"dead\",\"context\":{\"cluster\":\"dead\",\"user\":\"u\"}}]}";
	it_write_local(kc, cfg, strlen(cfg));
	chmod(kc, 0600);
	sbx_k8s_release_opts o = {.helm = helm, .release = "deadrel1", .ns = "ns1", .chart = "chart/agent-env",
				  .kubeconfig = kc, .timeout_s = 20};
	CHECK(sbx_k8s_release_install_sync(&o, err, sizeof err) == -1);
	CHECKF(strstr(err, "helm install of release deadrel1 failed") && strstr(err, "127.0.0.1:1") &&
	       strstr(err, "connection refused"), "%.500s", err);
}

/* ---- ready.c ----------------------------------------------------------------------------- */

typedef struct ready_seen {
	int done;
	char pods[300];
	sbx_error err;
} ready_seen;

static void keep_ready(void *ud, json_t *pods, const sbx_error *err)
{
	ready_seen *s = ud;
	s->done = 1;
	if (err)
		s->err = *err;
	const char *svc;
	json_t *pod;
	json_object_foreach(pods, svc, pod)
	{
		size_t n = strlen(s->pods);
		snprintf(s->pods + n, sizeof s->pods - n, "%s%s=%s", n ? " " : "", svc,
			 json_string_value(json_object_get(json_object_get(pod, "metadata"), "name")));
	}
}

static int wait_for(sbx_k8s_api *api, const char *release, const char *const *services, int timeout_ms,
		    ready_seen *s)
{
	sbx_k8s_ready_opts o = {.ns = "ns1", .release = release, .services = services, .timeout_ms = timeout_ms,
				.on_done = keep_ready, .ud = s};
	sbx_error err;
	if (!sbx_k8s_wait_ready(api, &o, &err))
		return -1;
	return it_run_until(loop, &s->done, 30);
}

static sbx_k8s_api *emu_api(void)
{
	sbx_k8s_conn k = {.server = server, .ca_pem = ca_pem, .token = TOKEN};
	sbx_error err;
	return sbx_k8s_api_new(loop, &k, &err);
}

static void test_ready_finds_each_service(void)
{
	sbx_k8s_api *api = emu_api();
	CHECK(api);
	const char *services[] = {"default", "web", NULL};
	ready_seen s = {0};
	int rc = wait_for(api, "rel1", services, 20000, &s);
	sbx_k8s_api_free(api);
	CHECK(rc == 0);
	CHECKF(s.err.status == SBX_OK, "%.400s", s.err.message);
	CHECK_EQ_STR(s.pods, "default=agent-env-rel1-default-0 web=agent-env-rel1-web-0");
}

static void test_ready_fails_fast_with_diagnosis(void)
{
	sbx_k8s_api *api = emu_api();
	CHECK(api);
	const char *services[] = {"default", NULL};
	ready_seen s = {0};
	uint64_t t0 = sbx_now_ms();
	int rc = wait_for(api, "pullfail", services, 600000, &s);
	CHECK(rc == 0);
	CHECK(sbx_now_ms() - t0 < 300000); /* not the 10 min timeout (a bound, not a speed target) */
	CHECK_ERR(s.err, SBX_E_REMOTE, "not_ready");
	CHECKF(strstr(s.err.message, "release pullfail: pod ns1/agent-env-pullfail-default-0 is Pending") &&
	       strstr(s.err.message, "ImagePullBackOff") && strstr(s.err.message, "events: Failed"), "%.400s", s.err.message);
	s = (ready_seen){0};
	rc = wait_for(api, "unsched", services, 600000, &s);
	CHECK(rc == 0);
	CHECK_ERR(s.err, SBX_E_REMOTE, "not_ready");
	CHECKF(strstr(s.err.message, "not scheduled: Unschedulable") && strstr(s.err.message, "FailedScheduling"), "%.400s",
	       s.err.message);
	sbx_k8s_api_free(api);
}

static void test_ready_times_out_naming_the_service(void)
{
	sbx_k8s_api *api = emu_api();
	CHECK(api);
	const char *services[] = {"default", "db", NULL};
	ready_seen s = {0};
	int rc = wait_for(api, "rel1", services, 500, &s);
	sbx_k8s_api_free(api);
	CHECK(rc == 0);
	CHECK_ERR(s.err, SBX_E_TIMEOUT, "not_ready");
	CHECKF(strstr(s.err.message, "release rel1: no pod of service 'db' appeared in namespace ns1"), "%.400s",
	       s.err.message);
}

static void test_ready_cancel(void)
{
	sbx_k8s_api *api = emu_api();
	CHECK(api);
	const char *services[] = {"nothing", NULL};
	ready_seen s = {0};
	sbx_k8s_ready_opts o = {.ns = "ns1", .release = "rel1", .services = services, .timeout_ms = 300,
				.on_done = keep_ready, .ud = &s};
	sbx_error err;
	sbx_k8s_ready *r = sbx_k8s_wait_ready(api, &o, &err);
	CHECK(r);
	it_run_for(loop, 100);
	sbx_k8s_ready_cancel(r);
	it_run_for(loop, 400);
	sbx_k8s_api_free(api);
	CHECK(!s.done);
}

/* ---- the whole lifecycle against the emulator, with the real helm ------------------------- */

typedef struct injected {
	int done;
	char path[512], err[1000];
} injected;

static void keep_injected(void *ud, const char *path, int uploaded, const char *err)
{
	(void)uploaded;
	injected *in = ud;
	in->done = 1;
	snprintf(in->path, sizeof in->path, "%s", path ? path : "");
	snprintf(in->err, sizeof in->err, "%s", err ? err : "");
}

static void test_helm_release_lifecycle_on_emulator(void)
{
	const char *helm = real_helm();
	CHECKF(helm, "tests/chart/get-helm.sh found no helm");
	char kc[300], vals[300], cfg[16384], err[3000];
	snprintf(kc, sizeof kc, "%s/emu-kubeconfig", tmp);
	snprintf(vals, sizeof vals, "%s/values.yaml", tmp);
	char *ca64 = NULL;
	{
		char cmd[400];
		snprintf(cmd, sizeof cmd, "base64 -w0 %s/ca.pem", certs);
		FILE *p = popen(cmd, "r");
		static char buf[8192];
		size_t n = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
		if (p)
			pclose(p);
		buf[n] = 0;
		ca64 = buf;
	}
	snprintf(cfg, sizeof cfg, "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"e\",\"clusters\":"
		 "[{\"name\":\"e\",\"cluster\":{\"server\":\"%s\",\"certificate-authority-data\":\"%s\"}}],"
		 "\"users\":[{\"name\":\"u\",\"user\":{\"token\":\"%s\"}}],\"contexts\":[{\"name\":\"e\",\"context\":"
		 "{\"cluster\":\"e\",\"user\":\"u\"}}]}", server, ca64, TOKEN);
	it_write_local(kc, cfg, strlen(cfg));
	chmod(kc, 0600);
	const char *v = "services:\n  default:\n    image: python:3.12\n  web:\n    image: nginx\n";
	it_write_local(vals, v, strlen(v));
	char name[9];
	sbx_k8s_release_name(name);
	const char *values[] = {vals, NULL};
	sbx_k8s_release_opts o = {.helm = helm, .release = name, .ns = "life", .chart = "chart/agent-env",
				  .values = values, .kubeconfig = kc, .task = "lifecycle test"};
	CHECKF(sbx_k8s_release_install_sync(&o, err, sizeof err) == 0, "%.500s", err);
	sbx_k8s_api *api = emu_api();
	const char *services[] = {"default", "web", NULL};
	ready_seen s = {0};
	sbx_k8s_ready_opts ro = {.ns = "life", .release = name, .services = services, .timeout_ms = 60000,
				 .on_done = keep_ready, .ud = &s};
	sbx_error e;
	CHECK(sbx_k8s_wait_ready(api, &ro, &e));
	CHECK(it_run_until(loop, &s.done, 60) == 0);
	CHECKF(s.err.status == SBX_OK, "%.400s", s.err.message);
	char want[200];
	snprintf(want, sizeof want, "default=agent-env-%s-default-0 web=agent-env-%s-web-0", name, name);
	CHECK_EQ_STR(s.pods, want);
	/* the agent goes in, and a session runs it */
	char pod[64];
	snprintf(pod, sizeof pod, "agent-env-%s-default-0", name);
	sbx_k8s_conn k = {.server = server, .ca_pem = ca_pem, .token = TOKEN};
	injected in = {0};
	sbx_k8s_inject_opts io = {.k = &k, .ns = "life", .pod = pod, .agent_path = it_agent(), .dir = "bin",
				  .on_done = keep_injected, .ud = &in};
	CHECK(sbx_k8s_inject_agent(loop, &io, err, sizeof err));
	CHECK(it_run_until(loop, &in.done, 60) == 0);
	CHECKF(!in.err[0], "%.500s", in.err);
	const char *argv[] = {in.path, "--stdio", NULL};
	sbx_k8s_exec x = {.ns = "life", .pod = pod, .argv = argv};
	sbx_session *sess = sbx_session_k8s(loop, &k, &x, NULL, &e);
	CHECK(sess);
	int ready = sbx_session_wait_ready(sess, 30, &e);
	sbx_exec_result r = {0};
	const char *cmd[] = {"sh", "-c", "echo in $(basename $PWD)", NULL};
	int rc = ready == 0 ? it_exec(sess, &r, cmd) : -1;
	sbx_session_close(sess);
	CHECKF(ready == 0, "%s", e.message);
	CHECK(rc == 0);
	char said[100];
	snprintf(said, sizeof said, "in %s\n", pod);
	CHECK_EQ_STR((char *)r.out, said);
	sbx_exec_result_free(&r);
	/* uninstall takes the pods with it */
	CHECKF(sbx_k8s_release_uninstall_sync(&o, err, sizeof err) == 0, "%.500s", err);
	CHECKF(sbx_k8s_release_uninstall_sync(&o, err, sizeof err) == 0, "a second uninstall: %.500s", err);
	it_run_for(loop, 300);
	s = (ready_seen){0};
	ro.timeout_ms = 300;
	CHECK(sbx_k8s_wait_ready(api, &ro, &e));
	CHECK(it_run_until(loop, &s.done, 30) == 0);
	sbx_k8s_api_free(api);
	CHECKF(strstr(s.err.message, "no pod of service 'default' appeared"), "%.400s", s.err.message);
}

/* ---- sandbox.c: the whole machine on the caller's loop --------------------------------------- */

typedef struct box_seen {
	int ready, stopped, progress;
	sbx_error err;
	int failed;
} box_seen;

static void box_ready(void *ud, sbx_k8s_box *b, const sbx_error *err)
{
	(void)b;
	box_seen *s = ud;
	s->ready = 1;
	if (err) {
		s->failed = 1;
		s->err = *err;
	}
}

static void box_stopped(void *ud, const sbx_error *err)
{
	box_seen *s = ud;
	s->stopped = 1;
	if (err) {
		s->failed = 1;
		s->err = *err;
	}
}

static void box_progress(void *ud, const char *what)
{
	(void)what;
	((box_seen *)ud)->progress++;
}

static void test_sandbox_on_callers_loop(void)
{
	const char *helm = real_helm();
	CHECKF(helm, "tests/chart/get-helm.sh found no helm");
	setenv("SBX_HELM", helm, 1);
	setenv("SBX_K8S_AGENT_DIR", "bin", 1);
	char kc[300], vals[300], name[9];
	snprintf(kc, sizeof kc, "%s/emu-kubeconfig", tmp); /* written by the lifecycle test */
	snprintf(vals, sizeof vals, "%s/values.yaml", tmp);
	sbx_k8s_release_name(name);
	const char *services[] = {"default", "web", NULL};
	box_seen s = {0};
	sbx_k8s_up_opts o = {.release = name, .chart = "chart/agent-env", .values = vals, .services = services,
			     .kubeconfig = kc, .ns = "boxes", .agent_path = it_agent(), .task = "box test",
			     .connect = 1, .on_ready = box_ready, .on_progress = box_progress, .ud = &s};
	sbx_error e;
	sbx_k8s_box *b = sbx_k8s_start(loop, &o, &e);
	CHECKF(b, "%.400s", e.message);
	CHECK(it_run_until(loop, &s.ready, 90) == 0);
	CHECKF(!s.failed, "%.400s", s.err.message);
	CHECK(s.progress >= 3); /* installing, waiting, putting the agent in */
	const sbx_k8s_sandbox *sb = sbx_k8s_info(b);
	CHECK_EQ_INT(sb->nservices, 2);
	CHECK(sbx_k8s_pod_uid(b, 1)[0] != 0);
	sbx_session *web = sbx_k8s_take_session(b, 1);
	CHECK(web);
	CHECK(sbx_k8s_take_session(b, 1) == NULL); /* once */
	sbx_exec_result r = {0};
	const char *cmd[] = {"sh", "-c", "echo in $(basename $PWD)", NULL};
	int ready = sbx_session_wait_ready(web, 30, &e);
	int rc = ready == 0 ? it_exec(web, &r, cmd) : -1;
	sbx_session_close(web);
	CHECKF(ready == 0 && rc == 0, "%.400s", e.message);
	char said[100];
	snprintf(said, sizeof said, "in agent-env-%s-web-0\n", name);
	CHECK_EQ_STR((char *)r.out, said);
	sbx_exec_result_free(&r);
	sbx_k8s_stop(b, box_stopped, &s);
	CHECK(it_run_until(loop, &s.stopped, 60) == 0);
	CHECKF(!s.failed, "%.400s", s.err.message);
	sbx_k8s_free(b); /* the default service's session, never taken, goes with it */
	/* a stop while helm install runs: on_ready never comes, nothing is left */
	s = (box_seen){0};
	sbx_k8s_release_name(name);
	o.release = name;
	b = sbx_k8s_start(loop, &o, &e);
	CHECKF(b, "%.400s", e.message);
	sbx_k8s_stop(b, box_stopped, &s);
	CHECK(it_run_until(loop, &s.stopped, 60) == 0);
	CHECK(!s.ready);
	CHECKF(!s.failed, "%.400s", s.err.message);
	sbx_k8s_free(b);
	char list[700], out[200] = "";
	snprintf(list, sizeof list, "%s --kubeconfig %s list -n boxes -q", helm, kc);
	FILE *p = popen(list, "r");
	CHECK(p);
	size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
	out[n] = 0;
	CHECK(p && pclose(p) == 0);
	CHECKF(n == 0, "releases left in namespace boxes: %s", out);
	unsetenv("SBX_HELM");
	unsetenv("SBX_K8S_AGENT_DIR");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (!net_have_python() || net_make_certs(certs, sizeof certs) < 0) {
		printf("FAIL test_k8s_release: python3 with ssl and openssl are needed\n");
		return 1;
	}
	it_tmpdir(tmp, sizeof tmp, "release");
	it_tmpdir(root, sizeof root, "k8sready");
	ca_pem = net_read_pem(certs, "ca.pem");
	const char *R1 = "app.kubernetes.io/instance=rel1";
	char p1[200], p2[200];
	snprintf(p1, sizeof p1, "ns1/agent-env-rel1-default-0:%s,inspect/service=default", R1);
	snprintf(p2, sizeof p2, "ns1/agent-env-rel1-web-0:%s,inspect/service=web", R1);
	const char *argv[] = {"python3", "tests/k8s/emulator.py", "--tls", certs, "--root", root, "--token", TOKEN,
			      "--pod", p1, "--pod", p2,
			      "--pod", "ns1/agent-env-pullfail-default-0:app.kubernetes.io/instance=pullfail,"
				       "inspect/service=default,ann.emulator.sbx/waiting=ImagePullBackOff",
			      "--pod", "ns1/agent-env-unsched-default-0:app.kubernetes.io/instance=unsched,"
				       "inspect/service=default,ann.emulator.sbx/phase=Pending",
			      NULL};
	if (net_peer_start(&emu, argv) < 0) {
		printf("FAIL test_k8s_release: the emulator did not start\n");
		return 1;
	}
	snprintf(server, sizeof server, "https://127.0.0.1:%d", emu.port);
	loop = sbx_loop_new();
	IT_RUN(test_child_output_status_and_timeout);
	IT_RUN(test_child_cancel_kills_it);
	IT_RUN(test_release_names);
	IT_RUN(test_release_command_lines);
	IT_RUN(test_install_and_uninstall_run_helm);
	IT_RUN(test_failed_install_is_uninstalled);
	IT_RUN(test_real_helm_error_names_release);
	IT_RUN(test_ready_finds_each_service);
	IT_RUN(test_ready_fails_fast_with_diagnosis);
	IT_RUN(test_ready_times_out_naming_the_service);
	IT_RUN(test_ready_cancel);
	IT_RUN(test_helm_release_lifecycle_on_emulator);
	IT_RUN(test_sandbox_on_callers_loop);
	sbx_loop_free(loop);
	net_peer_stop(&emu);
	free(ca_pem);
	it_rm_rf(certs);
	it_rm_rf(root);
	it_rm_rf(tmp);
	return test_summary();
}
