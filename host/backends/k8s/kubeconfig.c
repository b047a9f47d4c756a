/* kubeconfig.c — kubeconfig files and the in-cluster service account,
 * resolved into one sbx_k8s_config.
 *
 * Merging follows kubectl: the files of the KUBECONFIG list are read in
 * order, the first file that names a cluster, user or context wins, and the
 * first non-empty current-context wins. Relative paths inside a file are
 * relative to that file's directory. Unknown keys are ignored (as kubectl
 * does); settings sbx cannot honour (impersonation, auth-provider, basic
 * auth) are errors rather than silently dropped. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kubeconfig.h"
#include "yamldoc.h"

#define MAX_FILES 32
#define MAX_KUBECONFIG_BYTES (16u << 20)
#define MAX_PEM_BYTES (1u << 20)
#define MAX_TOKEN_BYTES (64u << 10)
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct kfile {
	char *path, *dir;
	ydoc doc;
} kfile;

typedef struct kc {
	kfile files[MAX_FILES];
	int n;
	char *err;
	size_t err_len;
	sbx_k8s_config *cfg;
} kc;

/* ---- small helpers ------------------------------------------------------------ */

static char *dup_or_die(const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

static int bad(kc *k, const kfile *f, yaml_node_t *at, const char *fmt, ...)
{
	char msg[1500];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (f && at)
		snprintf(k->err, k->err_len, "%s:%zu:%zu: %s", f->path, ydoc_line(at), ydoc_col(at), msg);
	else if (f)
		snprintf(k->err, k->err_len, "%s: %s", f->path, msg);
	else
		snprintf(k->err, k->err_len, "%s", msg);
	return -1;
}

/* Reads a whole file (at most max bytes). NULL with errno on failure
 * (EFBIG when too large). */
static unsigned char *read_all(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	unsigned char *buf = malloc(max + 1);
	size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
	int e = ferror(f) ? EIO : 0;
	fclose(f);
	if (!buf || e || n > max) {
		free(buf);
		errno = !buf ? ENOMEM : e ? e : EFBIG;
		return NULL;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

/* Standard base64, whitespace ignored. NULL when the text is not base64. */
static unsigned char *base64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s);
	unsigned char *out = malloc(n / 4 * 3 + 4);
	if (!out)
		abort();
	unsigned acc = 0;
	int bits = 0, pad = 0;
	size_t o = 0;
	for (; *s; s++) {
		int v;
		char ch = *s;
		if (isspace((unsigned char)ch))
			continue;
		if (ch == '=') {
			pad++;
			continue;
		}
		if (pad)
			break; /* data after padding */
		if (ch >= 'A' && ch <= 'Z')
			v = ch - 'A';
		else if (ch >= 'a' && ch <= 'z')
			v = ch - 'a' + 26;
		else if (ch >= '0' && ch <= '9')
			v = ch - '0' + 52;
		else if (ch == '+' || ch == '-')
			v = 62;
		else if (ch == '/' || ch == '_')
			v = 63;
		else
			break;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (*s || pad > 2 || bits >= 6) {
		free(out);
		return NULL;
	}
	out[o] = 0;
	*len = o;
	return out;
}

static int looks_like_pem(const unsigned char *p, size_t n)
{
	return memmem(p, n, "-----BEGIN ", 11) != NULL;
}

/* A path from FILE, made absolute against FILE's directory. */
static char *resolve(const kfile *f, const char *path)
{
	char buf[8192];
	if (path[0] == '/' || !f)
		return dup_or_die(path);
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	snprintf(buf, sizeof buf, "%s/%s", f->dir, path);
	return dup_or_die(buf);
}

/* The text of KEY in map, NULL when absent; -1 (err set) when not text. */
static int text(kc *k, const kfile *f, yaml_node_t *map, const char *what, const char *key, const char **out)
{
	yaml_node_t *v = ydoc_get((ydoc *)&f->doc, map, key);
	*out = NULL;
	if (!v || ydoc_is_null(v))
		return 0;
	if (!ydoc_str(v))
		return bad(k, f, v, "%s: '%s' must be text, not %s", what, key, ydoc_kind(v));
	*out = ydoc_str(v);
	return 0;
}

/* A PEM from KEY (a file) or KEY-data (base64), read now. */
static int pem(kc *k, const kfile *f, yaml_node_t *map, const char *what, const char *key, char **file,
	       unsigned char **data, size_t *len)
{
	char data_key[64];
	snprintf(data_key, sizeof data_key, "%s-data", key);
	const char *path, *b64;
	if (text(k, f, map, what, key, &path) < 0 || text(k, f, map, what, data_key, &b64) < 0)
		return -1;
	if (b64 && *b64) { /* kubectl: the data wins over the file */
		*data = base64_decode(b64, len);
		yaml_node_t *at = ydoc_get((ydoc *)&f->doc, map, data_key);
		if (!*data)
			return bad(k, f, at, "%s: '%s' is not valid base64: paste the output of `base64 -w0 FILE`",
				   what, data_key);
		if (!looks_like_pem(*data, *len))
			return bad(k, f, at, "%s: '%s' does not decode to a PEM block (-----BEGIN ...)", what, data_key);
		return 0;
	}
	if (!path || !*path)
		return 0;
	*file = resolve(f, path);
	*data = read_all(*file, MAX_PEM_BYTES, len);
	yaml_node_t *at = ydoc_get((ydoc *)&f->doc, map, key);
	if (!*data)
		return bad(k, f, at, "%s: %s '%s': cannot read it: %s. Fix the path, or embed the file with %s", what,
			   key, *file, errno == EFBIG ? "larger than 1 MiB" : strerror(errno), data_key);
	if (!looks_like_pem(*data, *len))
		return bad(k, f, at, "%s: %s '%s' is not a PEM file (no -----BEGIN line)", what, key, *file);
	return 0;
}

/* A string list (exec args) as a NULL-terminated array. */
static int string_array(kc *k, const kfile *f, yaml_node_t *seq, const char *what, char ***out)
{
	size_t n = ydoc_len(seq);
	if (seq && !ydoc_is_null(seq) && seq->type != YAML_SEQUENCE_NODE)
		return bad(k, f, seq, "%s must be a list, not %s", what, ydoc_kind(seq));
	*out = calloc(n + 1, sizeof **out);
	if (!*out)
		abort();
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = ydoc_item((ydoc *)&f->doc, seq, i);
		if (!ydoc_str(item))
			return bad(k, f, item, "%s items must be text", what);
		(*out)[i] = dup_or_die(ydoc_str(item));
	}
	return 0;
}

/* ---- finding entries across the merged files ------------------------------------ */

/* The body (e.g. the "cluster:" mapping) of the entry NAME in list LIST
 * (clusters, users, contexts), from the first file that has it. */
static int find_entry(kc *k, const char *list, const char *body_key, const char *name, kfile **from,
		      yaml_node_t **body)
{
	*from = NULL;
	*body = NULL;
	for (int i = 0; i < k->n; i++) {
		kfile *f = &k->files[i];
		yaml_node_t *seq = ydoc_get(&f->doc, ydoc_root(&f->doc), list);
		if (!seq || ydoc_is_null(seq))
			continue;
		if (seq->type != YAML_SEQUENCE_NODE)
			return bad(k, f, seq, "'%s' must be a list of {name, %s}, not %s", list, body_key, ydoc_kind(seq));
		for (size_t j = 0; j < ydoc_len(seq); j++) {
			yaml_node_t *e = ydoc_item(&f->doc, seq, j);
			const char *ename = ydoc_str(ydoc_get(&f->doc, e, "name"));
			if (!e || e->type != YAML_MAPPING_NODE || !ename)
				return bad(k, f, e, "every entry of '%s' needs a 'name' and a '%s' mapping", list, body_key);
			if (strcmp(ename, name))
				continue;
			yaml_node_t *b = ydoc_get(&f->doc, e, body_key);
			if (b && !ydoc_is_null(b) && b->type != YAML_MAPPING_NODE)
				return bad(k, f, b, "%s '%s': '%s' must be a mapping, not %s", list, name, body_key,
					   ydoc_kind(b));
			*from = f;
			*body = b ? b : e;
			return 1;
		}
	}
	return 0;
}

/* The names in LIST across all files, for "did you mean" messages. */
static void names_of(kc *k, const char *list, char *out, size_t len)
{
	out[0] = 0;
	for (int i = 0; i < k->n; i++) {
		kfile *f = &k->files[i];
		yaml_node_t *seq = ydoc_get(&f->doc, ydoc_root(&f->doc), list);
		for (size_t j = 0; j < ydoc_len(seq); j++) {
			const char *nm = ydoc_str(ydoc_get(&f->doc, ydoc_item(&f->doc, seq, j), "name"));
			size_t used = strlen(out);
			if (nm && used + strlen(nm) + 3 < len)
				snprintf(out + used, len - used, "%s%s", used ? ", " : "", nm);
		}
	}
	if (!out[0])
		snprintf(out, len, "none");
}

static void file_list(kc *k, char *out, size_t len)
{
	out[0] = 0;
	for (int i = 0; i < k->n; i++) {
		size_t used = strlen(out);
		snprintf(out + used, len - used, "%s%s", i ? ":" : "", k->files[i].path);
	}
}

/* ---- the parts of a context --------------------------------------------------------- */

/* The cluster or user (kind) a context names, or -1 with an error listing
 * the ones that exist and the kubectl command (fix, with %s for the name)
 * that adds it. */
static int find_named(kc *k, const char *kind, const char *name, const char *fix, kfile **f, yaml_node_t **b)
{
	char list[32];
	snprintf(list, sizeof list, "%ss", kind);
	int found = find_entry(k, list, kind, name, f, b);
	if (found)
		return found > 0 ? 0 : -1;
	char names[512], files[2048], how[600];
	names_of(k, list, names, sizeof names);
	file_list(k, files, sizeof files);
	snprintf(how, sizeof how, fix, name);
	return bad(k, NULL, NULL, "%s: context '%s' uses %s '%s', which no kubeconfig file defines (%s: %s); "
		   "add it with `%s`", files, k->cfg->context, kind, name, list, names, how);
}

static int load_cluster(kc *k, const char *name)
{
	sbx_k8s_config *c = k->cfg;
	kfile *f;
	yaml_node_t *b;
	if (find_named(k, "cluster", name, "kubectl config set-cluster %s --server=https://HOST:PORT", &f, &b) < 0)
		return -1;
	char what[300];
	snprintf(what, sizeof what, "cluster '%s'", name);
	const char *server, *tls_name, *proxy;
	if (text(k, f, b, what, "server", &server) < 0 || text(k, f, b, what, "tls-server-name", &tls_name) < 0 ||
	    text(k, f, b, what, "proxy-url", &proxy) < 0)
		return -1;
	if (!server || !*server)
		return bad(k, f, b, "%s has no 'server': add server: https://HOST:PORT", what);
	if (strncmp(server, "https://", 8) && strncmp(server, "http://", 7))
		return bad(k, f, ydoc_get(&f->doc, b, "server"),
			   "%s: server '%s' is not an http(s) URL: write https://HOST:PORT", what, server);
	c->server = dup_or_die(server);
	size_t sl = strlen(c->server);
	while (sl > 8 && c->server[sl - 1] == '/')
		c->server[--sl] = 0;
	c->tls_server_name = dup_or_die(tls_name && *tls_name ? tls_name : NULL);
	c->proxy_url = dup_or_die(proxy && *proxy ? proxy : NULL);
	yaml_node_t *insecure = ydoc_get(&f->doc, b, "insecure-skip-tls-verify");
	if (insecure && !ydoc_is_null(insecure)) {
		int v = ydoc_bool(insecure);
		if (v < 0)
			return bad(k, f, insecure, "%s: insecure-skip-tls-verify must be true or false", what);
		c->insecure = v;
	}
	if (pem(k, f, b, what, "certificate-authority", &c->ca_file, &c->ca_pem, &c->ca_pem_len) < 0)
		return -1;
	return 0;
}

static int load_exec(kc *k, kfile *f, yaml_node_t *e, const char *what)
{
	sbx_k8s_exec_plugin *x = calloc(1, sizeof *x);
	if (!x)
		abort();
	k->cfg->exec = x;
	const char *cmd, *api, *hint, *mode;
	if (e->type != YAML_MAPPING_NODE)
		return bad(k, f, e, "%s: 'exec' must be a mapping", what);
	if (text(k, f, e, what, "command", &cmd) < 0 || text(k, f, e, what, "apiVersion", &api) < 0 ||
	    text(k, f, e, what, "installHint", &hint) < 0 || text(k, f, e, what, "interactiveMode", &mode) < 0)
		return -1;
	if (!cmd || !*cmd)
		return bad(k, f, e, "%s: exec has no 'command': name the credential plugin to run", what);
	if (!api || (strcmp(api, "client.authentication.k8s.io/v1") &&
		     strcmp(api, "client.authentication.k8s.io/v1beta1")))
		return bad(k, f, e,
			   "%s: exec apiVersion '%s' is not supported: use client.authentication.k8s.io/v1 "
			   "(or v1beta1)",
			   what, api ? api : "(none)");
	x->command = strchr(cmd, '/') ? resolve(f, cmd) : dup_or_die(cmd);
	x->api_version = dup_or_die(api);
	x->install_hint = dup_or_die(hint);
	x->interactive_always = mode && !strcmp(mode, "Always");
	x->provide_cluster_info = ydoc_bool(ydoc_get(&f->doc, e, "provideClusterInfo")) == 1;
	if (string_array(k, f, ydoc_get(&f->doc, e, "args"), "exec args", &x->args) < 0)
		return -1;
	yaml_node_t *env = ydoc_get(&f->doc, e, "env");
	size_t n = ydoc_len(env);
	if (env && !ydoc_is_null(env) && env->type != YAML_SEQUENCE_NODE)
		return bad(k, f, env, "%s: exec env must be a list of {name, value}", what);
	x->env = calloc(n + 1, sizeof *x->env);
	if (!x->env)
		abort();
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = ydoc_item(&f->doc, env, i);
		const char *nm = ydoc_str(ydoc_get(&f->doc, item, "name"));
		const char *val = ydoc_str(ydoc_get(&f->doc, item, "value"));
		if (!nm || !*nm || !val)
			return bad(k, f, item, "%s: every exec env entry needs a 'name' and a 'value'", what);
		size_t len = strlen(nm) + strlen(val) + 2;
		x->env[i] = malloc(len);
		if (!x->env[i])
			abort();
		snprintf(x->env[i], len, "%s=%s", nm, val);
	}
	return 0;
}

static int load_user(kc *k, const char *name)
{
	sbx_k8s_config *c = k->cfg;
	kfile *f;
	yaml_node_t *b;
	if (find_named(k, "user", name, "kubectl config set-credentials %s ...", &f, &b) < 0)
		return -1;
	char what[300];
	snprintf(what, sizeof what, "user '%s'", name);
	static const struct {
		const char *key, *fix;
	} refused[] = {
		{"auth-provider", "auth-provider plugins were removed from Kubernetes clients: use an exec plugin "
				  "(e.g. gke-gcloud-auth-plugin, kubelogin)"},
		{"username", "basic authentication is not supported: use a token, a client certificate or an exec plugin"},
		{"as", "impersonation is not supported: use the impersonated identity's own credentials"},
		{"as-groups", "impersonation is not supported: use the impersonated identity's own credentials"},
	};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		yaml_node_t *v = ydoc_get(&f->doc, b, refused[i].key);
		if (v && !ydoc_is_null(v))
			return bad(k, f, v, "%s: '%s': %s", what, refused[i].key, refused[i].fix);
	}
	if (pem(k, f, b, what, "client-certificate", &c->cert_file, &c->cert_pem, &c->cert_pem_len) < 0 ||
	    pem(k, f, b, what, "client-key", &c->key_file, &c->key_pem, &c->key_pem_len) < 0)
		return -1;
	if (!c->cert_pem != !c->key_pem)
		return bad(k, f, b, "%s has a client %s but no client %s: set both (client-certificate and "
				    "client-key, or their -data forms)",
			   what, c->cert_pem ? "certificate" : "key", c->cert_pem ? "key" : "certificate");
	const char *token, *token_file;
	if (text(k, f, b, what, "token", &token) < 0 || text(k, f, b, what, "tokenFile", &token_file) < 0)
		return -1;
	if (token && *token) {
		c->token = dup_or_die(token); /* kubectl: token beats tokenFile */
	} else if (token_file && *token_file) {
		c->token_file = resolve(f, token_file);
		size_t len;
		unsigned char *t = read_all(c->token_file, MAX_TOKEN_BYTES, &len);
		if (!t)
			return bad(k, f, ydoc_get(&f->doc, b, "tokenFile"), "%s: tokenFile '%s': cannot read it: %s",
				   what, c->token_file, strerror(errno));
		while (len && isspace(t[len - 1]))
			t[--len] = 0;
		c->token = (char *)t;
		c->token_read_ms = sbx_now_ms();
	}
	yaml_node_t *e = ydoc_get(&f->doc, b, "exec");
	if (e && !ydoc_is_null(e) && load_exec(k, f, e, what) < 0)
		return -1;
	return 0;
}

/* ---- the namespace ------------------------------------------------------------------ */

static const char *sa_dir(const sbx_k8s_config_opts *o)
{
	if (o && o->serviceaccount_dir)
		return o->serviceaccount_dir;
	const char *env = getenv("SBX_K8S_SERVICEACCOUNT_DIR");
	return env && *env ? env : SA_DIR;
}

static int set_namespace(kc *k, const sbx_k8s_config_opts *o, const char *context_ns)
{
	sbx_k8s_config *c = k->cfg;
	const char *env = getenv("INSPECT_K8S_DEFAULT_NAMESPACE");
	char path[4200];
	snprintf(path, sizeof path, "%s/namespace", sa_dir(o));
	size_t len;
	unsigned char *file = read_all(path, 256, &len);
	while (file && len && isspace(file[len - 1]))
		file[--len] = 0;
	if (o && o->namespace && *o->namespace) {
		c->namespace = dup_or_die(o->namespace);
		c->namespace_from = "the --namespace option";
	} else if (env && *env) {
		c->namespace = dup_or_die(env);
		c->namespace_from = "INSPECT_K8S_DEFAULT_NAMESPACE";
	} else if (file && *file) {
		c->namespace = dup_or_die((char *)file);
		c->namespace_from = "the service account's namespace file";
	} else if (context_ns && *context_ns) {
		c->namespace = dup_or_die(context_ns);
		c->namespace_from = "the context";
	} else {
		c->namespace = dup_or_die("default");
		c->namespace_from = "the default";
	}
	free(file);
	/* A namespace is a DNS label; anything else would end up in URLs. */
	size_t n = strlen(c->namespace);
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)c->namespace[i]) && !isdigit((unsigned char)c->namespace[i]) &&
		    c->namespace[i] != '-')
			n = 0;
	if (n == 0 || n > 63 || c->namespace[0] == '-' || c->namespace[n - 1] == '-')
		return bad(k, NULL, NULL,
			   "%s: namespace '%s' (from %s) is not a valid namespace: use lower-case letters, digits "
			   "and '-'",
			   c->origin, c->namespace, c->namespace_from);
	return 0;
}

/* ---- in-cluster ------------------------------------------------------------------------ */

static int load_in_cluster(kc *k, const sbx_k8s_config_opts *o)
{
	sbx_k8s_config *c = k->cfg;
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = sa_dir(o);
	char buf[4200];
	snprintf(buf, sizeof buf, "in-cluster service account (%s)", dir);
	c->origin = dup_or_die(buf);
	c->in_cluster = 1;
	if (!port || !*port)
		return bad(k, NULL, NULL, "in-cluster: KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is "
				      "not; set both, or point KUBECONFIG at a kubeconfig file");
	snprintf(buf, sizeof buf, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
	c->server = dup_or_die(buf);
	snprintf(buf, sizeof buf, "%s/token", dir);
	c->token_file = dup_or_die(buf);
	size_t len;
	unsigned char *t = read_all(c->token_file, MAX_TOKEN_BYTES, &len);
	if (!t)
		return bad(k, NULL, NULL, "in-cluster: cannot read the service account token %s: %s (is a service "
				      "account token mounted? automountServiceAccountToken: true)",
			   c->token_file, strerror(errno));
	while (len && isspace(t[len - 1]))
		t[--len] = 0;
	c->token = (char *)t;
	c->token_read_ms = sbx_now_ms();
	snprintf(buf, sizeof buf, "%s/ca.crt", dir);
	c->ca_file = dup_or_die(buf);
	c->ca_pem = read_all(c->ca_file, MAX_PEM_BYTES, &c->ca_pem_len);
	if (!c->ca_pem)
		return bad(k, NULL, NULL, "in-cluster: cannot read the cluster's CA %s: %s", c->ca_file, strerror(errno));
	if (!looks_like_pem(c->ca_pem, c->ca_pem_len))
		return bad(k, NULL, NULL, "in-cluster: %s is not a PEM file", c->ca_file);
	return set_namespace(k, o, NULL);
}

/* ---- kubeconfig files ---------------------------------------------------------------------- */

/* Loads the files of the list; missing ones are skipped when the list came
 * from $KUBECONFIG or the default (kubectl does the same). */
static int load_files(kc *k, const char *list, int explicit)
{
	char *copy = dup_or_die(list);
	int rc = 0;
	for (char *save = NULL, *p = strtok_r(copy, ":", &save); p && rc == 0; p = strtok_r(NULL, ":", &save)) {
		int dup = 0;
		for (int i = 0; i < k->n; i++)
			dup |= !strcmp(k->files[i].path, p);
		if (dup)
			continue;
		struct stat st;
		if (stat(p, &st) < 0 && errno == ENOENT && !explicit)
			continue;
		if (k->n == MAX_FILES) {
			rc = bad(k, NULL, NULL, "more than %d kubeconfig files in the list", MAX_FILES);
			break;
		}
		kfile *f = &k->files[k->n];
		f->path = dup_or_die(p);
		f->dir = dup_or_die(p);
		char *slash = strrchr(f->dir, '/');
		if (slash)
			*(slash == f->dir ? slash + 1 : slash) = 0;
		else
			strcpy(f->dir, ".");
		k->n++;
		if (ydoc_load(&f->doc, f->path, MAX_KUBECONFIG_BYTES, k->err, k->err_len) < 0) {
			if (explicit && errno == ENOENT)
				snprintf(k->err + strlen(k->err), k->err_len - strlen(k->err),
					 " (check --kubeconfig / KUBECONFIG)");
			rc = -1;
			break;
		}
		yaml_node_t *root = ydoc_root(&f->doc);
		if (root && !ydoc_is_null(root) && root->type != YAML_MAPPING_NODE)
			rc = bad(k, f, root, "a kubeconfig is a mapping (apiVersion, clusters, users, contexts), not %s",
				 ydoc_kind(root));
	}
	free(copy);
	return rc;
}

static int load_kubeconfig(kc *k, const sbx_k8s_config_opts *o)
{
	sbx_k8s_config *c = k->cfg;
	char files[2048];
	file_list(k, files, sizeof files);
	c->origin = dup_or_die(files);
	const char *ctx = o ? o->context : NULL;
	kfile *cur_file = NULL;
	for (int i = 0; !ctx && i < k->n; i++) {
		kfile *f = &k->files[i];
		const char *cur;
		if (text(k, f, ydoc_root(&f->doc), "kubeconfig", "current-context", &cur) < 0)
			return -1;
		if (cur && *cur) {
			ctx = cur;
			cur_file = f;
		}
	}
	char names[1024];
	names_of(k, "contexts", names, sizeof names);
	if (!ctx)
		return bad(k, NULL, NULL, "%s: no current-context is set: pass --context NAME or run "
				      "`kubectl config use-context NAME` (contexts: %s)",
			   files, names);
	c->context = dup_or_die(ctx);
	kfile *f;
	yaml_node_t *b;
	int found = find_entry(k, "contexts", "context", ctx, &f, &b);
	if (found < 0)
		return -1;
	if (!found)
		return bad(k, cur_file, NULL, "context '%s'%s does not exist in %s (contexts: %s)", ctx,
			   cur_file ? " (the current-context)" : "", files, names);
	char what[300];
	snprintf(what, sizeof what, "context '%s'", ctx);
	const char *cluster, *user, *ns;
	if (text(k, f, b, what, "cluster", &cluster) < 0 || text(k, f, b, what, "user", &user) < 0 ||
	    text(k, f, b, what, "namespace", &ns) < 0)
		return -1;
	if (!cluster || !*cluster)
		return bad(k, f, b, "%s has no 'cluster': name one of the clusters", what);
	c->cluster = dup_or_die(cluster);
	c->user = dup_or_die(user && *user ? user : NULL);
	if (load_cluster(k, cluster) < 0 || (c->user && load_user(k, user) < 0))
		return -1;
	return set_namespace(k, o, ns);
}

int sbx_k8s_config_load(const sbx_k8s_config_opts *o, sbx_k8s_config *cfg, char *err, size_t err_len)
{
	memset(cfg, 0, sizeof *cfg);
	kc k = {.err = err, .err_len = err_len, .cfg = cfg};
	const char *list = o ? o->kubeconfig : NULL;
	int explicit = list != NULL;
	char home_cfg[4200];
	if (!list)
		list = getenv("KUBECONFIG");
	if (!list || !*list) {
		const char *home = getenv("HOME");
		snprintf(home_cfg, sizeof home_cfg, "%s/.kube/config", home ? home : "");
		list = home_cfg;
	}
	int rc = load_files(&k, list, explicit);
	if (rc == 0 && k.n > 0) {
		rc = load_kubeconfig(&k, o);
	} else if (rc == 0 && getenv("KUBERNETES_SERVICE_HOST") && *getenv("KUBERNETES_SERVICE_HOST")) {
		rc = load_in_cluster(&k, o);
	} else if (rc == 0) {
		rc = bad(&k, NULL, NULL,
			 "no Kubernetes configuration: no kubeconfig file exists (looked for %s) and this is not a "
			 "pod (KUBERNETES_SERVICE_HOST is unset); set KUBECONFIG or create ~/.kube/config",
			 list);
	}
	for (int i = 0; i < k.n; i++) {
		ydoc_free(&k.files[i].doc);
		free(k.files[i].path);
		free(k.files[i].dir);
	}
	if (rc < 0)
		sbx_k8s_config_free(cfg);
	return rc;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void sbx_k8s_config_free(sbx_k8s_config *c)
{
	free(c->origin);
	free(c->context);
	free(c->cluster);
	free(c->user);
	free(c->server);
	free(c->namespace);
	free(c->ca_file);
	free(c->ca_pem);
	free(c->tls_server_name);
	free(c->proxy_url);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_pem);
	free(c->key_pem);
	free(c->token);
	free(c->token_file);
	if (c->exec) {
		free(c->exec->command);
		free_strv(c->exec->args);
		free_strv(c->exec->env);
		free(c->exec->api_version);
		free(c->exec->install_hint);
		free(c->exec);
	}
	memset(c, 0, sizeof *c);
}

void sbx_k8s_auth_describe(const sbx_k8s_config *c, char *out, size_t len)
{
	if (c->exec)
		snprintf(out, len, "exec plugin (%s)", c->exec->command);
	else if (c->cert_pem && c->token)
		snprintf(out, len, "client certificate + %s", c->token_file ? "token file" : "token");
	else if (c->cert_pem)
		snprintf(out, len, "client certificate");
	else if (c->token_file)
		snprintf(out, len, "token file (%s)", c->token_file);
	else if (c->token)
		snprintf(out, len, "token");
	else
		snprintf(out, len, "none");
}
