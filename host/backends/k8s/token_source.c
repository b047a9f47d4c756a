/* token_source.c — current Kubernetes credentials for a session's redials
 * (see token_source.h). Refreshing blocks for at most the plugin's run
 * (60 s limit), and only when the credential is about to expire. */
#include "backends/k8s/token_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct token_source {
	char *kubeconfig, *context, *ns;
	sbx_k8s_config cfg;
	int loaded;
} token_source;

static char *dup_opt(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

void *sbx_k8s_token_source_new(const sbx_k8s_config *cfg, const char *kubeconfig, const char *context,
			       const char *ns)
{
	if (!cfg->exec && !cfg->token_file)
		return NULL;
	token_source *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->kubeconfig = dup_opt(kubeconfig);
	t->context = dup_opt(context);
	t->ns = dup_opt(ns);
	return t;
}

const char *sbx_k8s_token_source_get(void *source, char *err, size_t err_len)
{
	token_source *t = source;
	char why[1500];
	if (!t->loaded) {
		sbx_k8s_config_opts co = {.kubeconfig = t->kubeconfig, .context = t->context, .namespace = t->ns};
		if (sbx_k8s_config_load(&co, &t->cfg, why, sizeof why) < 0) {
			sbx_k8s_config_free(&t->cfg);
			snprintf(err, err_len, "cannot load the kubeconfig again for fresh credentials: %s", why);
			return NULL;
		}
		t->loaded = 1;
	}
	if (sbx_k8s_auth_refresh_sync(&t->cfg, 60000, why, sizeof why) < 0) {
		snprintf(err, err_len, "cannot refresh the Kubernetes credentials: %s", why);
		return NULL;
	}
	return t->cfg.token ? t->cfg.token : "";
}

void sbx_k8s_token_source_free(void *source)
{
	token_source *t = source;
	if (!t)
		return;
	if (t->loaded)
		sbx_k8s_config_free(&t->cfg);
	free(t->kubeconfig);
	free(t->context);
	free(t->ns);
	free(t);
}

void sbx_k8s_conn_refreshing(sbx_k8s_conn *k, const sbx_k8s_config *cfg, const char *kubeconfig,
			     const char *context, const char *ns)
{
	k->token_ud = sbx_k8s_token_source_new(cfg, kubeconfig, context, ns);
	k->token_source = k->token_ud ? sbx_k8s_token_source_get : NULL;
	k->token_free = k->token_ud ? sbx_k8s_token_source_free : NULL;
}
