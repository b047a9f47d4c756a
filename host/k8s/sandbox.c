/* sandbox.c — a Kubernetes sandbox's whole life on a private loop:
 * kubeconfig, helm install, readiness, agent injection; helm uninstall. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "inject.h"
#include "ready.h"
#include "release.h"
#include "sandbox.h"

void sbx_k8s_conn_from_config(const sbx_k8s_config *cfg, sbx_k8s_conn *k)
{
	*k = (sbx_k8s_conn){.server = cfg->server, .ca_pem = (const char *)cfg->ca_pem,
			    .client_cert_pem = (const char *)cfg->cert_pem, .client_key_pem = (const char *)cfg->key_pem,
			    .token = cfg->token, .tls_server_name = cfg->tls_server_name, .proxy_url = cfg->proxy_url,
			    .insecure = cfg->insecure};
}

void sbx_k8s_kubectl_argv(const char *kubeconfig, const char *context, const char *argv[SBX_K8S_KUBECTL_ARGV])
{
	const char *kubectl = getenv("SBX_KUBECTL");
	int n = 0;
	argv[n++] = kubectl && *kubectl ? kubectl : "kubectl";
	if (kubeconfig && *kubeconfig && !strchr(kubeconfig, ':')) { /* a list: kubectl reads $KUBECONFIG */
		argv[n++] = "--kubeconfig";
		argv[n++] = kubeconfig;
	}
	if (context && *context) {
		argv[n++] = "--context";
		argv[n++] = context;
	}
	argv[n] = NULL;
}

static int load_config(const char *kubeconfig, const char *context, const char *ns, sbx_k8s_config *cfg,
		       sbx_k8s_conn *k, char *err, size_t err_len)
{
	sbx_k8s_config_opts co = {.kubeconfig = kubeconfig && *kubeconfig ? kubeconfig : NULL,
				  .context = context && *context ? context : NULL, .namespace = ns && *ns ? ns : NULL};
	if (sbx_k8s_config_load(&co, cfg, err, err_len) < 0 || sbx_k8s_auth_refresh_sync(cfg, 60000, err, err_len) < 0)
		return -1;
	sbx_k8s_conn_from_config(cfg, k);
	return 0;
}

int sbx_k8s_sandbox_config(const sbx_k8s_sandbox *sb, sbx_k8s_config *cfg, sbx_k8s_conn *k, char *err,
			   size_t err_len)
{
	return load_config(sb->kubeconfig, sb->context, sb->ns, cfg, k, err, err_len);
}

/* $SBX_CHART, else ../chart/agent-env or ../../chart/agent-env from the program. */
static const char *default_chart(char *buf, size_t len)
{
	const char *env = getenv("SBX_CHART");
	if (env && *env)
		return env;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return "chart/agent-env";
	exe[n] = 0;
	*strrchr(exe, '/') = 0;
	for (int up = 1; up <= 2; up++) {
		char *slash = strrchr(exe, '/');
		if (!slash)
			break;
		*slash = 0;
		if ((size_t)snprintf(buf, len, "%s/chart/agent-env/Chart.yaml", exe) < len && access(buf, R_OK) == 0) {
			buf[strlen(buf) - strlen("/Chart.yaml")] = 0;
			return buf;
		}
	}
	return "chart/agent-env";
}

/* ---- waiting on a private loop ------------------------------------------------------------ */

typedef struct up_state {
	sbx_k8s_sandbox *sb;
	int done, failed;
	char *err;
	size_t err_len;
} up_state;

static void on_ready(void *ud, json_t *pods, const sbx_error *e)
{
	up_state *u = ud;
	u->done = 1;
	if (e) {
		u->failed = 1;
		snprintf(u->err, u->err_len, "%s", e->message);
		return;
	}
	for (int i = 0; i < u->sb->nservices; i++) {
		json_t *pod = json_object_get(pods, u->sb->services[i]);
		json_t *meta = json_object_get(pod, "metadata");
		snprintf(u->sb->pods[i], sizeof u->sb->pods[i], "%s", json_string_value(json_object_get(meta, "name")));
		const char *injected = json_string_value(
			json_object_get(json_object_get(meta, "annotations"), SBX_K8S_AGENT_ANNOTATION));
		snprintf(u->sb->agents[i], sizeof u->sb->agents[i], "%s", injected ? injected : "");
	}
}

static void on_injected(void *ud, const char *path, int uploaded, const char *e)
{
	(void)uploaded;
	up_state *u = ud;
	u->done = 1;
	if (e) {
		u->failed = 1;
		snprintf(u->err, u->err_len, "%s", e);
		return;
	}
	for (int i = 0; i < u->sb->nservices; i++)
		if (!u->sb->agents[i][0]) {
			snprintf(u->sb->agents[i], sizeof u->sb->agents[i], "%s", path);
			return;
		}
}

static int wait_and_inject(sbx_loop *loop, const sbx_k8s_up_opts *o, const sbx_k8s_conn *k, sbx_k8s_sandbox *sb,
			   char *err, size_t err_len)
{
	sbx_error e;
	sbx_k8s_api *api = sbx_k8s_api_new(loop, k, &e);
	if (!api) {
		snprintf(err, err_len, "%s", e.message);
		return -1;
	}
	const char *services[SBX_K8S_MAX_SERVICES + 1] = {0};
	for (int i = 0; i < sb->nservices; i++)
		services[i] = sb->services[i];
	up_state u = {.sb = sb, .err = err, .err_len = err_len};
	sbx_k8s_ready_opts ro = {.ns = sb->ns, .release = sb->release, .services = services,
				 .timeout_ms = (o->timeout_s > 0 ? o->timeout_s : 600) * 1000, .on_done = on_ready,
				 .ud = &u};
	int rc = sbx_k8s_wait_ready(api, &ro, &e) ? sbx_loop_run_until(loop, &u.done) : -1;
	if (!u.done && rc < 0 && !u.failed)
		snprintf(err, err_len, "%s", e.message);
	sbx_k8s_api_free(api);
	if (rc < 0 || u.failed)
		return -1;
	/* the agent into each pod whose chart did not inject it (one at a time: simple, and few) */
	for (int i = 0; i < sb->nservices; i++) {
		if (sb->agents[i][0])
			continue;
		u.done = 0;
		const char *dir = getenv("SBX_K8S_AGENT_DIR");
		const char *kubectl[SBX_K8S_KUBECTL_ARGV];
		sbx_k8s_kubectl_argv(sb->kubeconfig, sb->context, kubectl);
		sbx_k8s_inject_opts io = {.k = k, .ns = sb->ns, .pod = sb->pods[i], .agent_path = o->agent_path,
					  .dir = dir && *dir ? dir : NULL, .kubectl = sb->kubectl ? kubectl : NULL,
					  .on_done = on_injected, .ud = &u};
		if (!sbx_k8s_inject_agent(loop, &io, err, err_len) || sbx_loop_run_until(loop, &u.done) < 0 || u.failed)
			return -1;
	}
	return 0;
}

int sbx_k8s_up(const sbx_k8s_up_opts *o, sbx_k8s_sandbox *sb, char *err, size_t err_len)
{
	static const char *const just_default[] = {"default", NULL};
	memset(sb, 0, sizeof *sb);
	sbx_k8s_config cfg;
	sbx_k8s_conn k;
	if (load_config(o->kubeconfig, o->context, o->ns, &cfg, &k, err, err_len) < 0) {
		sbx_k8s_config_free(&cfg);
		return -1;
	}
	snprintf(sb->release, sizeof sb->release, "%s", o->release);
	snprintf(sb->ns, sizeof sb->ns, "%s", cfg.namespace);
	snprintf(sb->context, sizeof sb->context, "%s", o->context ? o->context : "");
	snprintf(sb->kubeconfig, sizeof sb->kubeconfig, "%s", o->kubeconfig ? o->kubeconfig : "");
	sb->kubectl = o->kubectl;
	const char *const *svc = o->services ? o->services : just_default;
	while (sb->nservices < SBX_K8S_MAX_SERVICES && svc[sb->nservices]) {
		snprintf(sb->services[sb->nservices], sizeof sb->services[0], "%s", svc[sb->nservices]);
		sb->nservices++;
	}
	char chart[PATH_MAX];
	const char *values[] = {o->values, NULL};
	sbx_k8s_release_opts ro = {.release = sb->release, .ns = sb->ns, .kube_context = o->context,
				   .kubeconfig = o->kubeconfig, .chart = o->chart ? o->chart : default_chart(chart, sizeof chart),
				   .values = o->values ? values : NULL, .task = o->task, .timeout_s = o->timeout_s};
	int rc = sbx_k8s_release_install_sync(&ro, err, err_len);
	if (rc == 0) {
		sbx_loop *loop = sbx_loop_new();
		rc = loop ? wait_and_inject(loop, o, &k, sb, err, err_len) : -1;
		if (loop)
			sbx_loop_free(loop);
		if (rc < 0) { /* leave nothing behind */
			char uerr[1000];
			if (sbx_k8s_release_uninstall_sync(&ro, uerr, sizeof uerr) < 0) {
				size_t n = strlen(err);
				snprintf(err + n, err_len - n, "; uninstalling release %s also failed: %s", sb->release, uerr);
			}
		}
	}
	sbx_k8s_config_free(&cfg);
	return rc;
}

int sbx_k8s_down(const sbx_k8s_sandbox *sb, char *err, size_t err_len)
{
	sbx_k8s_release_opts ro = {.release = sb->release, .ns = sb->ns, .kube_context = sb->context,
				   .kubeconfig = sb->kubeconfig};
	return sbx_k8s_release_uninstall_sync(&ro, err, err_len);
}
