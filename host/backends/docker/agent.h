/* agent.h — the sbx agent inside a service's container (container.h says
 * how it gets there and who may drive it; container.c calls this). */
#ifndef SBX_DOCKER_AGENT_H
#define SBX_DOCKER_AGENT_H

#include "backends/docker/engine.h"
#include "backends/docker/start_opts.h"

/* Whether path is a static ELF executable (no program interpreter): only
 * such an agent runs in any image. */
int sbx_docker_agent_static(const char *path);

/* In the running container id: hands the agent its secret (a copy in
 * o->run_dir, deleted before this returns), starts it with a detached
 * exec and waits up to 10 s until it answers. 0, or -1 with err. */
int sbx_docker_agent_start(sbx_docker *d, const char *id, const sbx_docker_start_opts *o, char *err,
			   size_t err_len);

/* The address of the agent's socket in run_dir for sbx_session_connect:
 * the path itself, or, when that is longer than a unix socket address
 * allows, /proc/self/fd/N/agent.sock through an O_PATH descriptor of
 * run_dir. Returns that descriptor (the caller closes it once no session
 * reconnects through it) or -2 when none was needed; -1 with err. */
int sbx_docker_agent_addr(const char *run_dir, char *addr, size_t len, char *err, size_t err_len);

#endif
