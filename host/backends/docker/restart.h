/* restart.h — a container Docker restarted (`docker restart`, a restart
 * policy, the engine coming back): its processes, the agent among them,
 * are gone while the container runs again. Told by the container's
 * State.StartedAt against the one recorded at up (and, for a session that
 * reconnects, by the agent's boot id); handled as the k8s backend handles
 * a restarted pod: the agent is put back and the caller is told, since
 * what the sandbox's commands started is lost. */
#ifndef SBX_DOCKER_RESTART_H
#define SBX_DOCKER_RESTART_H

#include "backends/docker/engine.h"

/* The container's State.StartedAt ("" when it has none). 0, or -1. */
int sbx_docker_started_at(sbx_docker *d, const char *id, char *out, size_t len, char *err, size_t err_len);

/* When container id of service svc (run directory run_dir, secret
 * secret_file: sandbox.h's paths) runs and started at another time than
 * started_at: starts its agent again (as the container's user, like at
 * up), puts the new time in started_at and returns 1. 0 when it was not
 * restarted or does not run; -1 with err. */
int sbx_docker_revive(sbx_docker *d, const char *id, const char *sandbox, const char *svc, const char *run_dir,
		      const char *secret_file, char *started_at, size_t len, char *err, size_t err_len);

#endif
