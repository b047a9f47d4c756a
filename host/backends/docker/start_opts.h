/* start_opts.h — what starting one service of a docker sandbox takes
 * (container.h starts the container, agent.h the agent in it) and the
 * names both use: where the agent and its socket are inside, the labels. */
#ifndef SBX_DOCKER_START_OPTS_H
#define SBX_DOCKER_START_OPTS_H

#include "backends/docker/service.h"

#define SBX_DOCKER_AGENT_PATH "/.sbx/sbx-agent"
#define SBX_DOCKER_RUN_PATH "/.sbx/run"
#define SBX_DOCKER_SOCKET_NAME "agent.sock"
#define SBX_DOCKER_LABEL "sbx.sandbox" /* on every container sbx makes: the sandbox's name */
#define SBX_DOCKER_OWNER_LABEL "sbx.owner" /* the directory holding the sandbox's (its dir's parent) */

typedef struct sbx_docker_start_opts {
	const char *sandbox;             /* the sandbox's name (label, container name) */
	const char *service;             /* the service's name */
	const sbx_docker_service *spec;  /* what the service says */
	const char *agent;               /* the static agent on the host */
	const char *run_dir;             /* host directory (0700) mounted at /.sbx/run */
	const char *secret_file;         /* the sandbox's secret (0600), not in run_dir */
	const char *owner;               /* SBX_DOCKER_OWNER_LABEL's value (NULL: none) */
} sbx_docker_start_opts;

#endif
