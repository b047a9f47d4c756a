/* service.c — what a values.yaml service says about its box.
 *
 * The local backend reads the agent-env chart's values (a compose file is
 * translated to them first, host/backends/k8s/compose.c): per service it honours
 * env, workingDir, securityContext.runAsUser/runAsGroup and
 * resources.limits (memory, cpu). An image cannot be run without an image
 * store: the caller refuses it unless a --rootfs stands for it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/k8s/compose.h"
#include "backends/k8s/yamldoc.h"
#include "backends/local/box.h"

/* A Kubernetes memory quantity ("512Mi", "2G", "1e9", "1048576"): bytes,
 * or 0 when it is not one. */
static uint64_t memory_quantity(const char *s)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {{"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
		     {"k", 1e3},      {"K", 1e3},        {"M", 1e6},           {"G", 1e9}, {"T", 1e12}, {"", 1}};
	char *end;
	double v = strtod(s, &end);
	if (end == s || !(v > 0))
		return 0;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (!strcmp(end, units[i].suffix))
			return v * units[i].mult < 1.8e19 ? (uint64_t)(v * units[i].mult) : 0;
	return 0;
}

/* A CPU quantity ("500m", "2", "0.5"): CPUs, or 0. */
static double cpu_quantity(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || !(v > 0))
		return 0;
	if (!strcmp(end, "m"))
		return v / 1000;
	return *end ? 0 : v;
}

static int add_env(sbx_box_service *out, const char *name, const char *value)
{
	char **grown = realloc(out->env, (out->nenv + 2) * sizeof *grown);
	if (!grown)
		return -1;
	out->env = grown;
	size_t n = strlen(name) + strlen(value) + 2;
	if (!(out->env[out->nenv] = malloc(n)))
		return -1;
	snprintf(out->env[out->nenv], n, "%s=%s", name, value);
	out->env[++out->nenv] = NULL;
	return 0;
}

static int read_env(ydoc *d, yaml_node_t *env, sbx_box_service *out, char *err, size_t len)
{
	for (size_t i = 0; i < ydoc_len(env); i++) {
		yaml_node_t *item = ydoc_item(d, env, i);
		const char *name = ydoc_str(ydoc_get(d, item, "name"));
		const char *value = ydoc_str(ydoc_get(d, item, "value"));
		if (!name || !name[0] || strchr(name, '=')) {
			snprintf(err, len, "%s:%zu: env entries need a name (and a value)", d->path, ydoc_line(item));
			return -1;
		}
		if (add_env(out, name, value ? value : "") < 0) {
			snprintf(err, len, "out of memory");
			return -1;
		}
	}
	return 0;
}

static void copy_str(char *dst, size_t size, yaml_node_t *n)
{
	const char *s = ydoc_str(n);
	snprintf(dst, size, "%s", s ? s : "");
}

/* A compose file as values (the translation the k8s backend installs). */
static int load_values(ydoc *d, const char *path, char *err, size_t len)
{
	if (!sbx_compose_is_compose_file(path))
		return ydoc_load(d, path, 4 << 20, err, len);
	char *text = sbx_compose_to_values(path, NULL, NULL, err, len);
	if (!text)
		return -1;
	int rc = ydoc_load_string(d, path, text, strlen(text), err, len);
	free(text);
	return rc;
}

int sbx_box_service_read(const char *values, const char *svc, int is_default, sbx_box_service *out, char *err,
			 size_t len)
{
	memset(out, 0, sizeof *out);
	ydoc d;
	if (load_values(&d, values, err, len) < 0)
		return -1;
	yaml_node_t *svcs = ydoc_get(&d, ydoc_root(&d), "services");
	yaml_node_t *s = ydoc_get(&d, svcs, svc);
	if (!s && is_default) /* a compose file's default service is "default" in values */
		s = ydoc_get(&d, svcs, "default");
	int rc = 0;
	copy_str(out->image, sizeof out->image, ydoc_get(&d, s, "image"));
	copy_str(out->workdir, sizeof out->workdir, ydoc_get(&d, s, "workingDir"));
	yaml_node_t *sc = ydoc_get(&d, s, "securityContext");
	const char *uid = ydoc_str(ydoc_get(&d, sc, "runAsUser")), *gid = ydoc_str(ydoc_get(&d, sc, "runAsGroup"));
	if (uid)
		snprintf(out->user, sizeof out->user, "%s%s%s", uid, gid ? ":" : "", gid ? gid : "");
	yaml_node_t *limits = ydoc_get(&d, ydoc_get(&d, s, "resources"), "limits");
	const char *mem = ydoc_str(ydoc_get(&d, limits, "memory")), *cpu = ydoc_str(ydoc_get(&d, limits, "cpu"));
	if (mem && !(out->memory = memory_quantity(mem))) {
		snprintf(err, len, "%s: service %s: memory limit '%s' is not a size like 512Mi or 2G", values, svc, mem);
		rc = -1;
	} else if (cpu && !(out->cpus = cpu_quantity(cpu))) {
		snprintf(err, len, "%s: service %s: cpu limit '%s' is not like 500m or 2", values, svc, cpu);
		rc = -1;
	} else {
		rc = read_env(&d, ydoc_get(&d, s, "env"), out, err, len);
	}
	ydoc_free(&d);
	if (rc < 0)
		sbx_box_service_free(out);
	return rc;
}

void sbx_box_service_free(sbx_box_service *s)
{
	for (size_t i = 0; i < s->nenv; i++)
		free(s->env[i]);
	free(s->env);
	s->env = NULL;
	s->nenv = 0;
}

void sbx_box_service_apply(const sbx_box_service *s, sbx_box_opts *o)
{
	if (s->workdir[0])
		o->workdir = s->workdir;
	if (s->user[0])
		o->user = s->user;
	if (s->nenv)
		o->env = (const char *const *)s->env;
	if (s->memory && !o->memory)
		o->memory = s->memory;
	if (s->cpus > 0 && !o->cpus)
		o->cpus = s->cpus;
}
