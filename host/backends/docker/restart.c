/* restart.c — a restarted container's agent put back (restart.h). */
#include <stdio.h>
#include <string.h>

#include "backends/docker/agent.h"
#include "backends/docker/container.h"
#include "backends/docker/restart.h"

/* The container's state: running, StartedAt, Config.User. */
static int inspect(sbx_docker *d, const char *id, int *running, char *at, size_t len, char *user, size_t ulen,
		   char *err, size_t err_len)
{
	char path[300];
	snprintf(path, sizeof path, "/containers/%s/json", id);
	json_t *j = NULL;
	long st = sbx_docker_call(d, "GET", path, NULL, &j, 0, err, err_len);
	json_t *state = json_object_get(j, "State");
	const char *s = json_string_value(json_object_get(state, "StartedAt"));
	const char *u = json_string_value(json_object_get(json_object_get(j, "Config"), "User"));
	*running = json_is_true(json_object_get(state, "Running"));
	snprintf(at, len, "%s", s ? s : "");
	if (user)
		snprintf(user, ulen, "%s", u ? u : "");
	json_decref(j);
	return st == 200 ? 0 : -1;
}

int sbx_docker_started_at(sbx_docker *d, const char *id, char *out, size_t len, char *err, size_t err_len)
{
	int running;
	return inspect(d, id, &running, out, len, NULL, 0, err, err_len);
}

int sbx_docker_revive(sbx_docker *d, const char *id, const char *sandbox, const char *svc, const char *run_dir,
		      const char *secret_file, char *started_at, size_t len, char *err, size_t err_len)
{
	char now[64];
	int running;
	sbx_docker_service spec;
	memset(&spec, 0, sizeof spec);
	if (inspect(d, id, &running, now, sizeof now, spec.box.user, sizeof spec.box.user, err, err_len) < 0)
		return -1;
	if (!running || !now[0] || !strcmp(now, started_at))
		return 0;
	sbx_docker_start_opts o = {.sandbox = sandbox, .service = svc, .spec = &spec, .run_dir = run_dir,
				   .secret_file = secret_file};
	char sock[4200];
	snprintf(sock, sizeof sock, "%s/%s", run_dir, SBX_DOCKER_SOCKET_NAME);
	remove(sock); /* the dead agent's: the new one listens afresh */
	if (sbx_docker_agent_start(d, id, &o, err, err_len) < 0)
		return -1;
	snprintf(started_at, len, "%s", now);
	return 1;
}
