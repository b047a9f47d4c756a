/* execcred.c — keeping a sbx_k8s_config's credentials current: re-reading
 * tokenFile, and running exec credential plugins (the way EKS, GKE and AKS
 * log in) as child processes on the event loop.
 *
 * A plugin gets our environment plus its `env`, KUBERNETES_EXEC_INFO (an
 * ExecCredential with spec.interactive = false and, when it asks, the
 * cluster), stdin from /dev/null; it prints an ExecCredential whose status
 * holds a token or a client certificate and key, and an optional expiry.
 * The credential is kept in the config until 60 s before it expires. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/child.h"
#include "kubeconfig.h"

#define EXPIRY_MARGIN_S 60
#define TOKEN_FILE_REREAD_MS 60000
#define MAX_PLUGIN_OUTPUT (1u << 20)
#define STDERR_TAIL 2000

extern char **environ;

/* ---- parsing the ExecCredential ------------------------------------------------- */

/* RFC 3339 ("2026-11-23T12:00:00Z", fractions and offsets allowed) to unix
 * seconds; -1 when malformed. */
static int64_t parse_rfc3339(const char *s)
{
	struct tm tm = {0};
	int n = 0;
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &n) != 6 || n == 0)
		return -1;
	const char *p = s + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	long offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm, k = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) != 2 || k != 5)
			return -1;
		offset = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) - offset;
}

static char *dup_or_die(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

int sbx_k8s_exec_credential_parse(sbx_k8s_config *cfg, const char *text, size_t len, char *err, size_t err_len)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, 0, &jerr);
	if (!root) {
		snprintf(err, err_len, "its output is not JSON (line %d: %s)", jerr.line, jerr.text);
		return -1;
	}
	int rc = -1;
	const char *kind = json_string_value(json_object_get(root, "kind"));
	const char *api = json_string_value(json_object_get(root, "apiVersion"));
	json_t *status = json_object_get(root, "status");
	const char *token = json_string_value(json_object_get(status, "token"));
	const char *cert = json_string_value(json_object_get(status, "clientCertificateData"));
	const char *key = json_string_value(json_object_get(status, "clientKeyData"));
	const char *exp = json_string_value(json_object_get(status, "expirationTimestamp"));
	int64_t expires = exp ? parse_rfc3339(exp) : 0;
	if (!json_is_object(root) || !kind || strcmp(kind, "ExecCredential"))
		snprintf(err, err_len, "its output is not an ExecCredential (kind is '%s')", kind ? kind : "missing");
	else if (cfg->exec && (!api || strcmp(api, cfg->exec->api_version)))
		snprintf(err, err_len, "it answered with apiVersion '%s' but the kubeconfig asked for '%s'",
			 api ? api : "missing", cfg->exec->api_version);
	else if (!json_is_object(status))
		snprintf(err, err_len, "its ExecCredential has no status");
	else if (!token && !(cert && key))
		snprintf(err, err_len, "its ExecCredential status has neither a token nor clientCertificateData and "
				       "clientKeyData");
	else if ((cert || key) && !(cert && key))
		snprintf(err, err_len, "its ExecCredential status has %s without %s", cert ? "clientCertificateData" : "clientKeyData",
			 cert ? "clientKeyData" : "clientCertificateData");
	else if (expires < 0)
		snprintf(err, err_len, "its expirationTimestamp '%s' is not an RFC 3339 time", exp);
	else
		rc = 0;
	if (rc == 0) {
		if (token) {
			free(cfg->token);
			cfg->token = dup_or_die(token);
		}
		if (cert) {
			free(cfg->cert_pem);
			free(cfg->key_pem);
			cfg->cert_pem = (unsigned char *)dup_or_die(cert);
			cfg->cert_pem_len = strlen(cert);
			cfg->key_pem = (unsigned char *)dup_or_die(key);
			cfg->key_pem_len = strlen(key);
		}
		cfg->expires = expires;
		cfg->have_exec_credential = 1;
	}
	json_decref(root);
	return rc;
}

/* ---- KUBERNETES_EXEC_INFO ------------------------------------------------------------ */

static char *base64_encode(const unsigned char *p, size_t n)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		abort();
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
		*o++ = tbl[v >> 18 & 63];
		*o++ = tbl[v >> 12 & 63];
		*o++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? tbl[v & 63] : '=';
	}
	*o = 0;
	return out;
}

static char *exec_info(const sbx_k8s_config *cfg)
{
	json_t *spec = json_pack("{s:b}", "interactive", 0);
	if (cfg->exec->provide_cluster_info) {
		json_t *cluster = json_pack("{s:s, s:b}", "server", cfg->server, "insecure-skip-tls-verify", cfg->insecure);
		if (cfg->tls_server_name)
			json_object_set_new(cluster, "tls-server-name", json_string(cfg->tls_server_name));
		if (cfg->proxy_url)
			json_object_set_new(cluster, "proxy-url", json_string(cfg->proxy_url));
		if (cfg->ca_pem) {
			char *b64 = base64_encode(cfg->ca_pem, cfg->ca_pem_len);
			json_object_set_new(cluster, "certificate-authority-data", json_string(b64));
			free(b64);
		}
		json_object_set_new(spec, "cluster", cluster);
	}
	json_t *info = json_pack("{s:s, s:s, s:o}", "apiVersion", cfg->exec->api_version, "kind", "ExecCredential",
				 "spec", spec);
	char *s = info ? json_dumps(info, JSON_COMPACT) : NULL;
	json_decref(info);
	if (!s)
		abort();
	return s;
}

/* Our environment, with the plugin's env and KUBERNETES_EXEC_INFO on top. */
static char **plugin_env(const sbx_k8s_config *cfg)
{
	size_t n = 0, extra = 1;
	while (environ[n])
		n++;
	while (cfg->exec->env[extra - 1])
		extra++;
	char **env = calloc(n + extra + 1, sizeof *env);
	if (!env)
		abort();
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		size_t name_len = strcspn(environ[i], "=");
		int overridden = !strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21);
		for (size_t j = 0; cfg->exec->env[j] && !overridden; j++)
			overridden = !strncmp(environ[i], cfg->exec->env[j], name_len + 1);
		if (!overridden)
			env[k++] = dup_or_die(environ[i]);
	}
	for (size_t j = 0; cfg->exec->env[j]; j++)
		env[k++] = dup_or_die(cfg->exec->env[j]);
	char *info = exec_info(cfg);
	env[k] = malloc(strlen(info) + 22);
	if (!env[k])
		abort();
	sprintf(env[k], "KUBERNETES_EXEC_INFO=%s", info);
	free(info);
	return env;
}

static void free_env(char **env)
{
	for (size_t i = 0; env[i]; i++)
		free(env[i]);
	free(env);
}

/* ---- running the plugin on the loop ----------------------------------------------------- */

typedef struct waiter {
	sbx_k8s_auth_done done;
	void *ud;
} waiter;

typedef struct plugin_run {
	sbx_k8s_config *cfg;
	int timeout_ms;
	waiter *waiters; /* everyone who asked while it ran */
	size_t nwaiters;
} plugin_run;

static void add_waiter(plugin_run *r, sbx_k8s_auth_done done, void *ud)
{
	waiter *w = realloc(r->waiters, (r->nwaiters + 1) * sizeof *w);
	if (!w)
		abort();
	w[r->nwaiters++] = (waiter){done, ud};
	r->waiters = w;
}

static void finish(plugin_run *r, const char *msg)
{
	r->cfg->refreshing = NULL; /* a waiter may start the next refresh */
	for (size_t i = 0; i < r->nwaiters; i++)
		r->waiters[i].done(r->waiters[i].ud, msg);
	free(r->waiters);
	free(r);
}

static void on_plugin_done(void *ud, const sbx_child_result *res)
{
	plugin_run *r = ud;
	const sbx_k8s_exec_plugin *x = r->cfg->exec;
	char why[800] = "", msg[4000], errs[STDERR_TAIL + 1];
	size_t en = strlen(res->err);
	const char *tail = res->err + (en > STDERR_TAIL ? en - STDERR_TAIL : 0);
	snprintf(errs, sizeof errs, "%s", tail);
	for (char *c = errs; *c; c++)
		if (*c == '\n')
			*c = ' ';
	if (res->timed_out)
		snprintf(why, sizeof why, "did not finish within %d ms and was killed", r->timeout_ms);
	else if (res->out_truncated)
		snprintf(why, sizeof why, "printed more than %u bytes", MAX_PLUGIN_OUTPUT);
	else if (res->exit_code != 0)
		sbx_child_describe(res, r->timeout_ms, why, sizeof why);
	else if (sbx_k8s_exec_credential_parse(r->cfg, res->out, res->out_len, why, sizeof why) == 0) {
		finish(r, NULL);
		return;
	}
	snprintf(msg, sizeof msg, "exec credential plugin '%s' (user '%s'): %s%s%s%s%s", x->command,
		 r->cfg->user ? r->cfg->user : "?", why, *errs ? "; its stderr: " : "", errs,
		 x->install_hint ? ". " : "", x->install_hint ? x->install_hint : "");
	finish(r, msg);
}

static int start_plugin(sbx_loop *loop, sbx_k8s_config *cfg, int timeout_ms, sbx_k8s_auth_done done, void *ud,
			char *err, size_t err_len)
{
	const sbx_k8s_exec_plugin *x = cfg->exec;
	if (x->interactive_always) {
		snprintf(err, err_len, "exec credential plugin '%s' (user '%s') has interactiveMode: Always, but sbx "
				       "runs it without a terminal; log in first or set interactiveMode: IfAvailable",
			 x->command, cfg->user ? cfg->user : "?");
		return -1;
	}
	size_t argc = 0;
	while (x->args[argc])
		argc++;
	const char **argv = calloc(argc + 2, sizeof *argv);
	if (!argv)
		abort();
	argv[0] = x->command;
	for (size_t i = 0; i < argc; i++)
		argv[i + 1] = x->args[i];
	char **env = plugin_env(cfg);
	plugin_run *r = calloc(1, sizeof *r);
	if (!r)
		abort();
	*r = (plugin_run){.cfg = cfg, .timeout_ms = timeout_ms};
	sbx_child_opts o = {.argv = argv, .envp = (const char *const *)env, .timeout_ms = timeout_ms,
			    .max_out = MAX_PLUGIN_OUTPUT, .on_done = on_plugin_done, .ud = r};
	char serr[512];
	sbx_child *child = sbx_child_run(loop, &o, serr, sizeof serr);
	free(argv);
	free_env(env);
	if (!child) {
		snprintf(err, err_len, "exec credential plugin '%s': %s", x->command, serr);
		free(r);
		return -1;
	}
	add_waiter(r, done, ud);
	cfg->refreshing = r;
	return 0;
}

/* ---- refresh ---------------------------------------------------------------------------- */

typedef struct deferred_done {
	sbx_k8s_auth_done done;
	void *ud;
	char msg[600];
} deferred_done;

static void run_deferred(sbx_loop *loop, void *ud)
{
	(void)loop;
	deferred_done *d = ud;
	d->done(d->ud, d->msg[0] ? d->msg : NULL);
	free(d);
}

static int reread_token_file(sbx_k8s_config *cfg, char *err, size_t err_len)
{
	FILE *f = fopen(cfg->token_file, "r");
	char buf[65536];
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (!f || ferror(f) || n == 0) {
		snprintf(err, err_len, "cannot re-read the token file %s: %s", cfg->token_file,
			 !f ? strerror(errno) : n == 0 ? "it is empty" : "read error");
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	free(cfg->token);
	cfg->token = dup_or_die(buf);
	cfg->token_read_ms = sbx_now_ms();
	return 0;
}

int sbx_k8s_auth_refresh(sbx_loop *loop, sbx_k8s_config *cfg, int timeout_ms, sbx_k8s_auth_done done, void *ud,
			 char *err, size_t err_len)
{
	if (cfg->refreshing) {
		add_waiter(cfg->refreshing, done, ud);
		return 0;
	}
	if (cfg->exec) {
		int64_t now = (int64_t)time(NULL);
		int fresh = cfg->have_exec_credential && (cfg->expires == 0 || cfg->expires - now > EXPIRY_MARGIN_S);
		if (!fresh)
			return start_plugin(loop, cfg, timeout_ms, done, ud, err, err_len);
	}
	deferred_done *d = calloc(1, sizeof *d);
	if (!d)
		abort();
	d->done = done;
	d->ud = ud;
	if (!cfg->exec && cfg->token_file && sbx_now_ms() - cfg->token_read_ms >= TOKEN_FILE_REREAD_MS)
		reread_token_file(cfg, d->msg, sizeof d->msg);
	sbx_loop_defer(loop, run_deferred, d);
	return 0;
}

typedef struct sync_wait {
	int done;
	char *err;
	size_t err_len;
	int failed;
} sync_wait;

static void sync_done(void *ud, const char *msg)
{
	sync_wait *w = ud;
	w->done = 1;
	if (msg) {
		w->failed = 1;
		snprintf(w->err, w->err_len, "%s", msg);
	}
}

int sbx_k8s_auth_refresh_sync(sbx_k8s_config *cfg, int timeout_ms, char *err, size_t err_len)
{
	sbx_loop *loop = sbx_loop_new();
	if (!loop) {
		snprintf(err, err_len, "cannot create an event loop: %s", strerror(errno));
		return -1;
	}
	sync_wait w = {.err = err, .err_len = err_len};
	int rc = sbx_k8s_auth_refresh(loop, cfg, timeout_ms, sync_done, &w, err, err_len);
	if (rc == 0 && sbx_loop_run_until(loop, &w.done) < 0) {
		snprintf(err, err_len, "event loop failed: %s", strerror(errno));
		rc = -1;
	}
	sbx_loop_free(loop);
	return rc < 0 || w.failed ? -1 : 0;
}
