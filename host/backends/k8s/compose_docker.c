/* compose_docker.c — the compose keys only an image-running engine honours
 * (init, ports, depends_on, read_only, build, stop_grace_period), written
 * under a service's `docker:` mapping of the values when the translator
 * runs for the docker backend (sbx_compose_to_docker_values). The k8s
 * translation never sees them: there they stay ignored or refused. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose_cv.h"

static int digits(const char *s, size_t n)
{
	if (n == 0 || n > 5)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return atoi(s) > 0 && atoi(s) < 65536;
}

/* Copies src into dst[cap] whole, or not at all: 0, or -1 when it does not fit. */
static int copy_whole(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* One short-syntax port "[HOST_IP:][HOST_PORT:]PORT[/PROTO]" as
 * "HOST_IP:HOST_PORT:PORT/PROTO" (HOST_IP 127.0.0.1 unless given; HOST_PORT
 * empty: the engine picks one). 0, or -1 with the error set. */
static int short_port(cv *c, yaml_node_t *item, const char *s, char *out, size_t len)
{
	char buf[200], ip[64] = "127.0.0.1", host[16] = "", proto[8] = "tcp";
	snprintf(buf, sizeof buf, "%s", s);
	char *slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		if (strcmp(slash + 1, "tcp") && strcmp(slash + 1, "udp"))
			return cv_bad(c, item, "port '%s': protocol must be tcp or udp", s);
		copy_whole(proto, sizeof proto, slash + 1);
	}
	char *last = strrchr(buf, ':');
	const char *target = last ? last + 1 : buf;
	if (last) {
		*last = 0;
		char *mid = strrchr(buf, ':');
		const char *hp = mid ? mid + 1 : buf;
		if (mid) {
			*mid = 0;
			if (!buf[0] || strchr(buf, '[') || copy_whole(ip, sizeof ip, buf))
				return cv_bad(c, item, "port '%s': the host address must be an IPv4 address", s);
		}
		if ((hp[0] && !digits(hp, strlen(hp))) || copy_whole(host, sizeof host, hp))
			return cv_bad(c, item, "port '%s': the host port must be a number (ranges are not supported)", s);
	}
	if (!digits(target, strlen(target)))
		return cv_bad(c, item, "port '%s': the container port must be a number 1-65535 (ranges are not supported)",
			      s);
	snprintf(out, len, "%s:%s:%s/%s", ip, host, target, proto);
	return 0;
}

/* The long syntax {target, published, host_ip, protocol}. */
static int long_port(cv *c, yaml_node_t *item, char *out, size_t len)
{
	static const char *const names[] = {"target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"};
	yaml_node_t *k[7];
	if (cv_sort_keys(c, item, "a port", names, 7, k, NULL, EXT_WARN) < 0)
		return -1;
	const char *t = ydoc_str(k[0]), *p = k[1] ? ydoc_str(k[1]) : "", *ip = k[2] ? ydoc_str(k[2]) : "127.0.0.1",
		   *proto = k[3] ? ydoc_str(k[3]) : "tcp";
	if (!t || !p || !ip || !proto)
		return cv_bad(c, item, "a port needs 'target' (the container's port), and text in published/host_ip/protocol");
	char s[200];
	snprintf(s, sizeof s, "%s:%s:%s/%s", ip, p, t, proto);
	return short_port(c, item, s, out, len);
}

static int ports(cv *c, yaml_node_t *n)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return cv_bad(c, n, "'ports' must be a list, not %s", ydoc_kind(n));
	int seq = cv_seq(c);
	for (size_t i = 0; i < ydoc_len(n); i++) {
		yaml_node_t *item = ydoc_item(&c->in, n, i);
		char out[300];
		int rc = item->type == YAML_MAPPING_NODE ? long_port(c, item, out, sizeof out)
		       : ydoc_str(item)		 ? short_port(c, item, ydoc_str(item), out, sizeof out)
						 : cv_bad(c, item, "a port must be text or a mapping, not %s", ydoc_kind(item));
		if (rc < 0)
			return -1;
		yaml_document_append_sequence_item(&c->out, seq, cv_str(c, out));
	}
	return seq;
}

/* A service's name as the values call it (the default is renamed). */
static const char *values_name(cv *c, const char *name)
{
	return c->default_from && !strcmp(name, c->default_from) ? "default" : name;
}

static int depends_on(cv *c, yaml_node_t *n)
{
	int m = cv_map(c);
	size_t count = n->type == YAML_SEQUENCE_NODE ? ydoc_len(n) : 0, np = 0;
	ypair *ps = n->type == YAML_MAPPING_NODE ? ydoc_pairs(&c->in, n, &np) : NULL;
	if (n->type != YAML_SEQUENCE_NODE && n->type != YAML_MAPPING_NODE)
		return cv_bad(c, n, "'depends_on' must be a list of services or a mapping, not %s", ydoc_kind(n));
	int rc = m;
	for (size_t i = 0; i < count + np && rc > 0; i++) {
		yaml_node_t *item = i < count ? ydoc_item(&c->in, n, i) : ps[i - count].key;
		const char *name = ydoc_str(item), *cond = "service_started";
		if (i >= count) {
			yaml_node_t *cn = ydoc_get(&c->in, ps[i - count].value, "condition");
			cond = cn ? ydoc_str(cn) : cond;
		}
		if (!name || !ydoc_get(&c->in, c->services, name)) {
			rc = cv_bad(c, item, "depends_on: '%s' is not a service of this file", name ? name : "?");
		} else if (!cond || (strcmp(cond, "service_started") && strcmp(cond, "service_healthy") &&
				     strcmp(cond, "service_completed_successfully"))) {
			rc = cv_bad(c, item, "depends_on '%s': condition must be service_started, service_healthy or "
					     "service_completed_successfully",
				    name);
		} else if (!strcmp(cond, "service_completed_successfully")) {
			rc = cv_bad(c, item, "depends_on '%s': service_completed_successfully is not supported (every sbx "
					     "service keeps running); use service_healthy",
				    name);
		} else {
			cv_setq(c, m, values_name(c, name), cv_plain(c, cond));
		}
	}
	free(ps);
	return rc;
}

/* build: "DIR" or {context, dockerfile}: the context as an absolute path
 * (relative to the compose file's directory). */
static int build(cv *c, yaml_node_t *n)
{
	const char *ctx = ydoc_str(n), *file = "Dockerfile";
	if (n->type == YAML_MAPPING_NODE) {
		static const char *const names[] = {"context", "dockerfile"};
		static const ignored_key ign[] = {{"args", "build args are not passed"}, {"target", "the last stage is built"},
						  {NULL, NULL}};
		yaml_node_t *k[2];
		if (cv_sort_keys(c, n, "'build'", names, 2, k, ign, EXT_WARN) < 0)
			return -1;
		ctx = k[0] ? ydoc_str(k[0]) : ".";
		file = k[1] ? ydoc_str(k[1]) : file;
	}
	if (!ctx || !file || ydoc_is_null(n))
		return cv_bad(c, n, "'build' must be a directory or {context: DIR, dockerfile: FILE}");
	char dir[PATH_MAX], path[2 * PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(c->in.path, '/');
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - c->in.path) : 1, slash ? c->in.path : ".");
	snprintf(path, sizeof path, "%s/%s", ctx[0] == '/' ? "" : dir, ctx);
	if (!realpath(path, real))
		return cv_bad(c, n, "build context '%s' does not exist (it is relative to the compose file's directory)",
			      ctx);
	int m = cv_map(c);
	cv_set(c, m, "context", cv_str(c, real));
	cv_set(c, m, "dockerfile", cv_str(c, file));
	return m;
}

int cv_docker_service(cv *c, int m, yaml_node_t *init, yaml_node_t *port_list, yaml_node_t *deps,
		      yaml_node_t *read_only, yaml_node_t *build_spec)
{
	int d = cv_map(c), any = 0, v;
	if (init && !ydoc_is_null(init)) {
		if (ydoc_bool(init) < 0)
			return cv_bad(c, init, "'init' must be true or false");
		cv_set(c, d, "init", cv_plain(c, ydoc_bool(init) ? "true" : "false"));
		any = 1;
	}
	if (port_list && !ydoc_is_null(port_list)) {
		if ((v = ports(c, port_list)) < 0)
			return -1;
		cv_set(c, d, "ports", v);
		any = 1;
	}
	if (deps && !ydoc_is_null(deps)) {
		if ((v = depends_on(c, deps)) < 0)
			return -1;
		cv_set(c, d, "dependsOn", v);
		any = 1;
	}
	if (build_spec) {
		if ((v = build(c, build_spec)) < 0)
			return -1;
		cv_set(c, d, "build", v);
		any = 1;
	}
	if (any)
		cv_set(c, m, "docker", d);
	if (read_only && !ydoc_is_null(read_only)) {
		if (ydoc_bool(read_only) < 0)
			return cv_bad(c, read_only, "'read_only' must be true or false");
		int sc = cv_get(c, m, "securityContext");
		if (!sc) {
			sc = cv_map(c);
			cv_set(c, m, "securityContext", sc);
		}
		cv_set(c, sc, "readOnlyRootFilesystem", cv_plain(c, ydoc_bool(read_only) ? "true" : "false"));
	}
	return 0;
}
