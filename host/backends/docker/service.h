/* service.h — what a service of a values file (or a compose file, which is
 * translated to values first: host/backends/k8s/compose.c) asks of its container.
 *
 * The fields the local backend reads (local/box.h: image, workingDir,
 * user, env, limits) plus what only an image-running backend can honour:
 * the command and its args (compose's entrypoint and command), and the
 * healthcheck to wait for. */
#ifndef SBX_DOCKER_SERVICE_H
#define SBX_DOCKER_SERVICE_H

#include "backends/local/box.h"

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
	int isolated;        /* networkIsolated (compose's network_mode: none) */
	char **volumes;      /* "NAME:/path[:ro]" of the sandbox's named volumes; NULL: none */
	char **networks;     /* the sandbox's networks it joins; NULL: none (then no network);
			      * a service of the values without any joins "default" */
	/* docker: (host/backends/k8s/compose_docker.c) */
	int init;            /* an init process as pid 1 */
	char **ports;        /* "HOST_IP:[HOST_PORT]:PORT/PROTO" to publish; NULL: none */
	char **depends_on;   /* services that must be up (healthy, with a healthcheck) first */
	char build_context[4096]; /* a directory to build the image from ("": none) */
	char build_dockerfile[256];
} sbx_docker_service;

/* 0, or -1 with "FILE: why" in err (a service with neither an image nor
 * a build is one). */
int sbx_docker_service_read(const char *values, const char *svc, int is_default, sbx_docker_service *out,
			    char *err, size_t len);
void sbx_docker_service_free(sbx_docker_service *s);

/* A compose file (docker rules: sbx_compose_to_docker_values in
 * host/backends/k8s/compose.h) or a Dockerfile (defaults.h) as a values file
 * written to out (0600): 1; 0 when file is a values file already
 * (nothing written); -1 with "FILE:LINE:COL: why" in err. warn may be NULL. */
int sbx_docker_translate(const char *file, const char *out, void (*warn)(void *ud, const char *msg), void *ud,
			 char *err, size_t len);

/* Compose's default network: what a service without `networks` (and not
 * isolated, i.e. no `network_mode: none`) joins, as compose's would. A
 * top-level network of that name configures it (e.g. `internal: true`). */
#define SBX_DOCKER_DEFAULT_NETWORK "default"

/* The names under the values' top-level `volumes:` (is_network 0) or
 * `networks:` as a NULL-terminated list (NULL when none); -1 with err.
 * A network marked `internal: true` is listed with a leading '!'. The
 * networks include SBX_DOCKER_DEFAULT_NETWORK when a service needs it. */
int sbx_docker_values_names(const char *values, int is_network, char ***out, char *err, size_t len);
void sbx_docker_list_free(char **list);

#endif
