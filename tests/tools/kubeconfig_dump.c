/* kubeconfig_dump.c — test tool: loads a Kubernetes configuration with
 * sbx_k8s_config_load() and prints every resolved field as JSON, secrets
 * included, so tests can compare it with what kubectl resolves.
 *
 *   kubeconfig_dump [--kubeconfig F] [--context C] [--namespace N]
 *                   [--sa-dir D] [--refresh N] [--parallel N] [--timeout MS]
 *
 * --refresh N calls sbx_k8s_auth_refresh N times (one loop, one after the
 * other), as a client making N requests would; --parallel N makes N calls at
 * once and waits for all. Errors go to stderr, exit 1. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/k8s/kubeconfig.h"

typedef struct refresher {
	sbx_k8s_config *cfg;
	int left, timeout_ms, done, failed;
	sbx_loop *loop;
} refresher;

static void next(refresher *r);

static void on_done(void *ud, const char *err)
{
	refresher *r = ud;
	if (err) {
		fprintf(stderr, "%s\n", err);
		r->failed = 1;
		r->done = 1;
		return;
	}
	next(r);
}

static void next(refresher *r)
{
	char err[4096];
	if (r->left-- <= 0) {
		r->done = 1;
		return;
	}
	if (sbx_k8s_auth_refresh(r->loop, r->cfg, r->timeout_ms, on_done, r, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		r->failed = r->done = 1;
	}
}

/* pending counts down; an error makes it negative for good */
static void on_parallel_done(void *ud, const char *err)
{
	int *pending = ud;
	if (err) {
		fprintf(stderr, "%s\n", err);
		*pending = -1000000;
	}
	(*pending)--;
}

static json_t *str(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *blob(const unsigned char *p, size_t n)
{
	return p ? json_stringn((const char *)p, n) : json_null();
}

int main(int argc, char **argv)
{
	sbx_k8s_config_opts o = {0};
	int refresh = 0, parallel = 0, timeout_ms = 10000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--kubeconfig"))
			o.kubeconfig = argv[i + 1];
		else if (!strcmp(argv[i], "--context"))
			o.context = argv[i + 1];
		else if (!strcmp(argv[i], "--namespace"))
			o.namespace = argv[i + 1];
		else if (!strcmp(argv[i], "--sa-dir"))
			o.serviceaccount_dir = argv[i + 1];
		else if (!strcmp(argv[i], "--refresh"))
			refresh = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--parallel"))
			parallel = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--timeout"))
			timeout_ms = atoi(argv[i + 1]);
	}
	sbx_k8s_config c;
	char err[4096];
	if (sbx_k8s_config_load(&o, &c, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	int rc = 0;
	if (refresh > 0) {
		refresher r = {.cfg = &c, .left = refresh, .timeout_ms = timeout_ms, .loop = sbx_loop_new()};
		next(&r);
		if (sbx_loop_run_until(r.loop, &r.done) < 0)
			r.failed = 1;
		sbx_loop_free(r.loop);
		rc = r.failed;
	}
	if (parallel > 0) {
		sbx_loop *loop = sbx_loop_new();
		int pending = parallel;
		for (int i = 0; i < parallel; i++) {
			if (sbx_k8s_auth_refresh(loop, &c, timeout_ms, on_parallel_done, &pending, err, sizeof err) < 0) {
				fprintf(stderr, "%s\n", err);
				return 1;
			}
		}
		while (pending > 0 && sbx_loop_run_once(loop, -1) >= 0)
			;
		sbx_loop_free(loop);
		if (pending < 0)
			rc = 1;
	}
	char auth[4200];
	sbx_k8s_auth_describe(&c, auth, sizeof auth);
	json_t *args = json_array(), *env = json_array();
	for (size_t i = 0; c.exec && c.exec->args[i]; i++)
		json_array_append_new(args, json_string(c.exec->args[i]));
	for (size_t i = 0; c.exec && c.exec->env[i]; i++)
		json_array_append_new(env, json_string(c.exec->env[i]));
	json_t *out = json_pack(
		"{s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:s,"
		" s:o, s:o, s:o}",
		"origin", str(c.origin), "in_cluster", c.in_cluster, "context", str(c.context), "cluster", str(c.cluster),
		"user", str(c.user), "server", str(c.server), "namespace", str(c.namespace), "namespace_from",
		c.namespace_from, "ca_file", str(c.ca_file), "ca_pem", blob(c.ca_pem, c.ca_pem_len), "insecure",
		c.insecure, "tls_server_name", str(c.tls_server_name), "proxy_url", str(c.proxy_url), "cert_file",
		str(c.cert_file), "key_file", str(c.key_file), "cert_pem", blob(c.cert_pem, c.cert_pem_len), "key_pem",
		blob(c.key_pem, c.key_pem_len), "token", str(c.token), "token_file", str(c.token_file), "expires",
		(json_int_t)c.expires, "auth", auth, "exec_command", str(c.exec ? c.exec->command : NULL), "exec_args",
		args, "exec_env", env);
	char *s = json_dumps(out, JSON_INDENT(1) | JSON_SORT_KEYS);
	puts(s);
	free(s);
	json_decref(out);
	sbx_k8s_config_free(&c);
	return rc;
}
