/* service.c — a docker service's container settings from values
 * (service.h): the local backend's reader for the shared fields, then the
 * command and args lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker/service.h"
#include "k8s/compose.h"
#include "k8s/yamldoc.h"

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

static void free_list(char **l)
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
	if (!sbx_compose_is_compose_file(path))
		return ydoc_load(d, path, 4 << 20, err, len);
	char *text = sbx_compose_to_values(path, NULL, NULL, err, len);
	if (!text)
		return -1;
	int rc = ydoc_load_string(d, path, text, strlen(text), err, len);
	free(text);
	return rc;
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
	if (!out->box.image[0]) {
		snprintf(err, len, "%s: service %s has no image: say which image it runs (image: NAME)", values, svc);
		sbx_docker_service_free(out);
		return -1;
	}
	return 0;
}

void sbx_docker_service_free(sbx_docker_service *s)
{
	sbx_box_service_free(&s->box);
	free_list(s->command);
	free_list(s->args);
	free_list(s->health);
	s->command = s->args = s->health = NULL;
}
