/* k8s_backend.c — sandboxes on Kubernetes for the CLI: `sbx up --backend
 * k8s` through host/backends/k8s/sandbox.h, their record in STATE/NAME/k8s, and
 * sessions to their pods for exec, cp and ls: cli_k8s_backend (backend.h;
 * its `sbx up` arguments are parsed with the local ones, cmd_up.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backends/k8s/sandbox.h"
#include "backends/k8s/token_source.h"

static void record_path(const cli_sandbox *sb, char *out, size_t len)
{
	snprintf(out, len, "%s/k8s", sb->dir);
}

static int save(const cli_sandbox *sb, const sbx_k8s_sandbox *k, char *err, size_t err_len)
{
	char text[16384];
	size_t n = (size_t)snprintf(text, sizeof text, "release %s\nnamespace %s\ncontext %s\nkubeconfig %s\ntransport %s\n",
				    k->release, k->ns, k->context, k->kubeconfig, k->kubectl ? "kubectl" : "websocket");
	for (int i = 0; i < k->nservices && n < sizeof text; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "pod %s %s %s\n", k->services[i], k->pods[i],
				      k->agents[i]);
	char path[4200];
	snprintf(path, sizeof path, "%s/backend", sb->dir);
	if (cli_write_file(path, "k8s\n", 4, err, err_len) < 0)
		return -1;
	record_path(sb, path, sizeof path);
	return cli_write_file(path, text, strlen(text), err, err_len);
}

int cli_k8s_load(const cli_sandbox *sb, sbx_k8s_sandbox *k)
{
	char path[4200], line[2048];
	record_path(sb, path, sizeof path);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	memset(k, 0, sizeof *k);
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		char *sp = strchr(line, ' ');
		const char *v = sp ? sp + 1 : "";
		if (sp)
			*sp = 0;
		if (!strcmp(line, "release"))
			snprintf(k->release, sizeof k->release, "%s", v);
		else if (!strcmp(line, "namespace"))
			snprintf(k->ns, sizeof k->ns, "%s", v);
		else if (!strcmp(line, "context"))
			snprintf(k->context, sizeof k->context, "%s", v);
		else if (!strcmp(line, "kubeconfig"))
			snprintf(k->kubeconfig, sizeof k->kubeconfig, "%s", v);
		else if (!strcmp(line, "transport"))
			k->kubectl = !strcmp(v, "kubectl");
		else if (!strcmp(line, "pod") && k->nservices < SBX_K8S_MAX_SERVICES) {
			int i = k->nservices++;
			sscanf(v, "%63s %255s %511s", k->services[i], k->pods[i], k->agents[i]);
		}
	}
	fclose(f);
	return k->release[0] ? 0 : -1;
}

int cli_k8s_up(const cli_sandbox *sb, const char *values, const char *context, const char *ns, int kubectl)
{
	if (strchr(sb->name, '_') || strlen(sb->name) > 40) {
		cli_say(stderr, "sbx up: '%s' cannot name a Helm release: use lowercase letters, digits and '-'\n",
			sb->name);
		return -1;
	}
	const char *services[CLI_MAX_SERVICES + 1] = {0};
	for (int i = 0; i < sb->nservices; i++)
		services[i] = sb->services[i];
	const char *kubeconfig = getenv("KUBECONFIG");
	sbx_k8s_up_opts o = {.release = sb->name, .values = values, .services = services,
			     .kubeconfig = kubeconfig && *kubeconfig ? kubeconfig : NULL, .context = context, .ns = ns,
			     .task = sb->name, .kubectl = kubectl};
	sbx_k8s_sandbox k;
	char err[4096];
	if (sbx_k8s_up(&o, &k, err, sizeof err) < 0 || save(sb, &k, err, sizeof err) < 0) {
		cli_say(stderr, "sbx up: %s\n", err);
		return -1;
	}
	return 0;
}

int cli_k8s_down(const cli_sandbox *sb)
{
	sbx_k8s_sandbox k;
	char err[4096];
	if (cli_k8s_load(sb, &k) < 0)
		return 0;
	if (sbx_k8s_down(&k, err, sizeof err) < 0) {
		cli_say(stderr, "sbx down: %s\n", err);
		return -1;
	}
	return 0;
}

sbx_session *cli_k8s_connect(sbx_loop *loop, const cli_sandbox *sb, const char *svc)
{
	sbx_k8s_sandbox k;
	if (cli_k8s_load(sb, &k) < 0)
		return NULL;
	int i = 0;
	while (i < k.nservices && strcmp(k.services[i], svc) != 0)
		i++;
	if (i == k.nservices) {
		cli_say(stderr, "sbx: %s/k8s has no pod for service '%s'\n", sb->dir, svc);
		return NULL;
	}
	sbx_k8s_config cfg;
	sbx_k8s_conn conn;
	char err[2048];
	sbx_session *s = NULL;
	sbx_error e;
	if (sbx_k8s_sandbox_config(&k, &cfg, &conn, err, sizeof err) < 0) {
		cli_say(stderr, "sbx: %s\n", err);
	} else {
		char sock[600];
		const char *argv[4];
		sbx_k8s_agent_argv(k.agents[i], sock, sizeof sock, argv);
		const char *kubectl[SBX_K8S_KUBECTL_ARGV];
		sbx_k8s_kubectl_argv(k.kubeconfig, k.context, kubectl);
		sbx_k8s_exec x = {.ns = k.ns, .pod = k.pods[i], .argv = argv, .kubectl = k.kubectl ? kubectl : NULL};
		sbx_session_opts so = sbx_k8s_session_opts();
		sbx_k8s_conn_refreshing(&conn, &cfg, k.kubeconfig, k.context, k.ns);
		s = sbx_session_k8s(loop, &conn, &x, &so, &e);
		if (s && sbx_session_wait_ready(s, 30, &e) < 0) {
			sbx_session_close(s);
			s = NULL;
		}
		if (!s)
			cli_say(stderr, "sbx: cannot reach %s/%s (pod %s/%s): %s\n", sb->name, svc, k.ns, k.pods[i],
				e.message);
	}
	sbx_k8s_config_free(&cfg);
	return s;
}

static void k8s_ls(const cli_sandbox *sb, int json)
{
	sbx_k8s_sandbox k;
	int loaded = cli_k8s_load(sb, &k) == 0;
	if (json)
		printf(", \"services\": [");
	for (int i = 0; i < sb->nservices; i++) {
		char where[600] = "";
		if (loaded && i < k.nservices) /* the pod stands for the agent and its workdir */
			snprintf(where, sizeof where, "pod %s/%s", k.ns, k.pods[i]);
		cli_ls_service(sb, i, json, 0, 1, "k8s", where);
	}
	if (json)
		printf("]");
}

static int k8s_up(int argc, char **argv, const char *generated_name)
{
	return cli_local_up(argc, argv, generated_name, cli_k8s_up);
}

const cli_backend cli_k8s_backend = {
	.name = "k8s",
	.up = k8s_up,
	.connect = cli_k8s_connect,
	.down = cli_k8s_down,
	.ls = k8s_ls,
	.held = 1,
};
