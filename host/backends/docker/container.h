/* container.h — one service of a docker sandbox as a container with an
 * sbx agent in it.
 *
 * The image is not touched: the static agent is bind-mounted read-only at
 * /.sbx/sbx-agent and a host directory (the caller's, mode 0700) at
 * /.sbx/run. After the container starts, one detached exec starts the
 * agent as root, listening on /.sbx/run/agent.sock and serving only hosts
 * that prove the sandbox's secret (docs/agent-auth.md). The secret reaches
 * the agent as /.sbx/run/agent.key, a copy that is deleted as soon as the
 * agent answers, before any command can run; the host keeps the original
 * outside anything a container sees. The host then connects to the socket
 * directly: the data path does not pass through dockerd. */
#ifndef SBX_DOCKER_CONTAINER_H
#define SBX_DOCKER_CONTAINER_H

#include "backends/docker/engine.h"
#include "backends/docker/start_opts.h"

/* What sbx names the sandbox's network or volume NAME in the engine:
 * sbx-SANDBOX-NAME (labelled SBX_DOCKER_LABEL=SANDBOX). */
void sbx_docker_object_name(const char *sandbox, const char *name, char *out, size_t len);

/* Creates and starts the container, starts its agent and waits until the
 * agent answers (up to 10 s) and, with a healthcheck, until the container
 * is healthy (health.h). Fills id with the container's id. 0, or -1
 * with err; a container made on the way is removed. */
int sbx_docker_container_start(sbx_docker *d, const sbx_docker_start_opts *o, char *id, size_t id_len, char *err,
			       size_t err_len);

/* Removes a container and its anonymous volumes, killing what runs in it.
 * A container already gone is no error. 0, or -1 with err. */
int sbx_docker_container_remove(sbx_docker *d, const char *id, char *err, size_t err_len);

/* The container's state ("running", "exited", ...; "gone" when there is no
 * such container) and its main process's pid (0 when none). 0, or -1. */
int sbx_docker_container_status(sbx_docker *d, const char *id, char *status, size_t len, int *pid, char *err,
				size_t err_len);

/* The distinct sandbox names of the containers, networks and volumes
 * labelled SBX_DOCKER_OWNER_LABEL=owner: what `down --all` and cleanup
 * find when the directories are gone, however many. Returns how many, with
 * *names a malloc'd array of them (free it), or -1 with err. */
int sbx_docker_owned(sbx_docker *d, const char *owner, char (**names)[64], char *err, size_t err_len);

/* The ids of every container labelled SBX_DOCKER_LABEL (sandbox NULL: any
 * value). Returns how many (at most max), or -1 with err. */
int sbx_docker_container_list(sbx_docker *d, const char *sandbox, char ids[][80], int max, char *err,
			      size_t err_len);

#endif
