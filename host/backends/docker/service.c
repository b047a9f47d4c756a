/* service.c — a docker service's container settings from values
 * (service.h): the local backend's reader for the shared fields, then the
 * command and args lists. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/docker/defaults.h"
#include "backends/docker/service.h"
#include "backends/k8s/compose.h"
#include "backends/k8s/yamldoc.h"

void sbx_docker_list_free(char **l);

/* A sequence of scalars as a NULL-terminated malloc'd array; NULL when the
 * node is absent. Sets *bad when an item is not text. */
static char **read_list(ydoc *d, yaml_node_t *seq, int *bad)
{
	if (!seq)
		return NULL;
	size_t n = ydoc_len(seq);
	char **out = calloc(n + 1, sizeof *out);
	if (!out) {
		*bad = 1;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *s = ydoc_str(ydoc_item(d, seq, i));
		if (!s || !(out[i] = strdup(s)))
			*bad = 1;
		if (!out[i])
			break;
	}
	return out;
}

void sbx_docker_list_free(char **l)
{
	for (size_t i = 0; l && l[i]; i++)
		free(l[i]);
	free(l);
}

/* A scalar as a number, 0 when absent or not one. */
static double number(yaml_node_t *n)
{
	const char *s = ydoc_str(n);
	return s ? atof(s) : 0;
}

/* The values document (a compose file is translated first). */
static int load(ydoc *d, const char *path, char *err, size_t len)
{
	int dockerfile = sbx_docker_is_dockerfile(path);
	if (!dockerfile && !sbx_compose_is_compose_file(path))
		return ydoc_load(d, path, 4 << 20, err, len);
	char *text = dockerfile ? sbx_docker_dockerfile_values(path, err, len)
				: sbx_compose_to_docker_values(path, NULL, NULL, err, len);
	if (!text)
		return -1;
	int rc = ydoc_load_string(d, path, text, strlen(text), err, len);
	free(text);
	return rc;
}

/* The service's `docker:` mapping (compose_docker.c writes it). */
static void read_docker(ydoc *d, yaml_node_t *dk, sbx_docker_service *out, int *bad)
{
	out->init = ydoc_bool(ydoc_get(d, dk, "init")) == 1;
	out->ports = read_list(d, ydoc_get(d, dk, "ports"), bad);
	yaml_node_t *deps = ydoc_get(d, dk, "dependsOn");
	size_t n = 0;
	ypair *ps = deps ? ydoc_pairs(d, deps, &n) : NULL;
	if (n) {
		out->depends_on = calloc(n + 1, sizeof *out->depends_on);
		for (size_t i = 0; out->depends_on && i < n; i++)
			out->depends_on[i] = strdup(ydoc_str(ps[i].key) ? ydoc_str(ps[i].key) : "");
	}
	free(ps);
	yaml_node_t *b = ydoc_get(d, dk, "build");
	const char *ctx = ydoc_str(ydoc_get(d, b, "context")), *file = ydoc_str(ydoc_get(d, b, "dockerfile"));
	snprintf(out->build_context, sizeof out->build_context, "%s", ctx ? ctx : "");
	snprintf(out->build_dockerfile, sizeof out->build_dockerfile, "%s", file ? file : "Dockerfile");
}

/* Whether a service of the values has neither networks nor
 * networkIsolated: compose then puts it on the project's default network. */
static int needs_default_network(ydoc *d)
{
	size_t n = 0;
	yaml_node_t *svcs = ydoc_get(d, ydoc_root(d), "services");
	ypair *ps = svcs && svcs->type == YAML_MAPPING_NODE ? ydoc_pairs(d, svcs, &n) : NULL;
	int needs = 0;
	for (size_t i = 0; i < n && !needs; i++)
		needs = !ydoc_get(d, ps[i].value, "networks") &&
			ydoc_bool(ydoc_get(d, ps[i].value, "networkIsolated")) != 1;
	free(ps);
	return needs;
}

int sbx_docker_values_names(const char *values, int is_network, char ***out, char *err, size_t len)
{
	ydoc d;
	*out = NULL;
	if (load(&d, values, err, len) < 0)
		return -1;
	size_t n = 0;
	yaml_node_t *m = ydoc_get(&d, ydoc_root(&d), is_network ? "networks" : "volumes");
	ypair *ps = m && m->type == YAML_MAPPING_NODE ? ydoc_pairs(&d, m, &n) : NULL;
	int add_default = is_network && !ydoc_get(&d, m, SBX_DOCKER_DEFAULT_NETWORK) && needs_default_network(&d);
	if (n + add_default)
		*out = calloc(n + add_default + 1, sizeof **out);
	for (size_t i = 0; *out && i < n; i++) {
		const char *name = ydoc_str(ps[i].key);
		int internal = is_network && ydoc_bool(ydoc_get(&d, ps[i].value, "internal")) == 1;
		size_t size = strlen(name ? name : "") + 2;
		if (((*out)[i] = malloc(size)))
			snprintf((*out)[i], size, "%s%s", internal ? "!" : "", name ? name : "");
	}
	if (*out && add_default)
		(*out)[n] = strdup(SBX_DOCKER_DEFAULT_NETWORK);
	free(ps);
	ydoc_free(&d);
	return 0;
}

/* A service without networks (and not isolated) joins the default one. */
static char **default_networks(int *bad)
{
	char **l = calloc(2, sizeof *l);
	if (!l || !(l[0] = strdup(SBX_DOCKER_DEFAULT_NETWORK)))
		*bad = 1;
	return l;
}

static int read_command(const char *values, const char *svc, int is_default, sbx_docker_service *out, char *err,
			size_t len)
{
	ydoc d;
	if (load(&d, values, err, len) < 0)
		return -1;
	yaml_node_t *svcs = ydoc_get(&d, ydoc_root(&d), "services");
	yaml_node_t *s = ydoc_get(&d, svcs, svc);
	if (!s && is_default)
		s = ydoc_get(&d, svcs, "default");
	int bad = 0;
	out->command = read_list(&d, ydoc_get(&d, s, "command"), &bad);
	out->args = read_list(&d, ydoc_get(&d, s, "args"), &bad);
	yaml_node_t *probe = ydoc_get(&d, s, "readinessProbe");
	out->health = read_list(&d, ydoc_get(&d, ydoc_get(&d, probe, "exec"), "command"), &bad);
	out->health_start = number(ydoc_get(&d, probe, "initialDelaySeconds"));
	out->health_interval = number(ydoc_get(&d, probe, "periodSeconds"));
	out->health_timeout = number(ydoc_get(&d, probe, "timeoutSeconds"));
	out->health_retries = (int)number(ydoc_get(&d, probe, "failureThreshold"));
	out->read_only = ydoc_bool(ydoc_get(&d, ydoc_get(&d, s, "securityContext"), "readOnlyRootFilesystem")) == 1;
	out->isolated = ydoc_bool(ydoc_get(&d, s, "networkIsolated")) == 1;
	out->volumes = read_list(&d, ydoc_get(&d, s, "volumes"), &bad);
	out->networks = read_list(&d, ydoc_get(&d, s, "networks"), &bad);
	if (!out->networks && !out->isolated)
		out->networks = default_networks(&bad);
	read_docker(&d, ydoc_get(&d, s, "docker"), out, &bad);
	ydoc_free(&d);
	if (bad)
		snprintf(err, len, "%s: service %s: command and args must be lists of strings", values, svc);
	return bad ? -1 : 0;
}

int sbx_docker_service_read(const char *values, const char *svc, int is_default, sbx_docker_service *out,
			    char *err, size_t len)
{
	memset(out, 0, sizeof *out);
	if (sbx_box_service_read(values, svc, is_default, &out->box, err, len) < 0)
		return -1;
	if (read_command(values, svc, is_default, out, err, len) < 0) {
		sbx_docker_service_free(out);
		return -1;
	}
	if (!out->box.image[0] && !out->build_context[0]) {
		snprintf(err, len, "%s: service %s has no image: say which image it runs (image: NAME)", values, svc);
		sbx_docker_service_free(out);
		return -1;
	}
	return 0;
}

void sbx_docker_service_free(sbx_docker_service *s)
{
	sbx_box_service_free(&s->box);
	sbx_docker_list_free(s->command);
	sbx_docker_list_free(s->args);
	sbx_docker_list_free(s->health);
	sbx_docker_list_free(s->volumes);
	sbx_docker_list_free(s->networks);
	sbx_docker_list_free(s->ports);
	sbx_docker_list_free(s->depends_on);
	s->command = s->args = s->health = s->volumes = s->networks = s->ports = s->depends_on = NULL;
}

int sbx_docker_translate(const char *file, const char *out, void (*warn)(void *ud, const char *msg), void *ud,
			 char *err, size_t len)
{
	int dockerfile = sbx_docker_is_dockerfile(file);
	if (!dockerfile && !sbx_compose_is_compose_file(file))
		return 0;
	char *text = dockerfile ? sbx_docker_dockerfile_values(file, err, len)
				: sbx_compose_to_docker_values(file, warn, ud, err, len);
	if (!text)
		return -1;
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(text);
	int ok = fd >= 0 && write(fd, text, n) == (ssize_t)n;
	if (fd >= 0 && close(fd) < 0)
		ok = 0;
	free(text);
	if (!ok)
		snprintf(err, len, "cannot write %s: %s", out, strerror(errno));
	return ok ? 1 : -1;
}
