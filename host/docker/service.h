/* service.h — what a service of a values file (or a compose file, which is
 * translated to values first: host/k8s/compose.c) asks of its container.
 *
 * The fields the local backend reads (local/box.h: image, workingDir,
 * user, env, limits) plus what only an image-running backend can honour:
 * the command and its args (compose's entrypoint and command), and the
 * healthcheck to wait for. */
#ifndef SBX_DOCKER_SERVICE_H
#define SBX_DOCKER_SERVICE_H

#include "local/box.h"

typedef struct sbx_docker_service {
	sbx_box_service box; /* image, workdir, user, env, memory, cpus */
	char **command;      /* the entrypoint, NULL-terminated; NULL: the image's */
	char **args;         /* the command, NULL-terminated; NULL: the image's */
	/* compose's healthcheck (the values' readinessProbe): the check's argv
	 * (NULL: none) and its timing, in seconds and tries (0: Docker's default) */
	char **health;
	double health_start, health_interval, health_timeout;
	int health_retries;
	int read_only;       /* securityContext.readOnlyRootFilesystem: a read-only root */
} sbx_docker_service;

/* 0, or -1 with "FILE: why" in err (a service without an image is one). */
int sbx_docker_service_read(const char *values, const char *svc, int is_default, sbx_docker_service *out,
			    char *err, size_t len);
void sbx_docker_service_free(sbx_docker_service *s);

#endif
