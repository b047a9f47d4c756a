/* sandbox.h — a whole docker sandbox: one container per service (each as
 * container.h makes it), all started at once (a thread and an engine
 * client each); and its removal. What the CLI's `sbx up --backend docker` and `sbx down`
 * do, without the CLI's state: any caller (a binding, a test) can use it.
 *
 * Per service the caller's directory dir gets SVC.key (the agent's
 * secret, 0600; keep it: every connection proves it) and SVC.run/ (0700,
 * mounted at /.sbx/run; the agent's socket is there). */
#ifndef SBX_DOCKER_SANDBOX_H
#define SBX_DOCKER_SANDBOX_H

#include "backends/docker/agent.h"
#include "backends/docker/container.h"

typedef struct sbx_docker_up_opts {
	const char *name;            /* the sandbox: labels and container names */
	const char *dir;             /* an existing directory no container sees */
	const char *const *services; /* NULL-terminated, the default first */
	const char *values;          /* a values or compose file; NULL: every service runs image */
	const char *image;           /* without values */
	const char *agent;           /* the static agent; NULL: sbx_default_agent_path() */
	/* pull and build progress, one line each (any thread; NULL: quiet) */
	void (*progress)(void *ud, const char *line);
	void *progress_ud;
} sbx_docker_up_opts;

/* Creates the values' named volumes and networks (internal, labelled),
 * then starts every service, each after those in its depends_on (which
 * are then up and, with a healthcheck, healthy); ids[i] receives service i's container id. 0 when
 * every one is up (its agent answering, healthy where it has a check), or
 * -1 with "SVC: why" (the first service in order that failed) in err after
 * removing every container it made. d is used only for that removal. */
int sbx_docker_up(sbx_docker *d, const sbx_docker_up_opts *o, char ids[][128], char *err, size_t err_len);

/* Removes every container, network, volume and built image labelled as
 * the sandbox name's. 0, or -1. */
int sbx_docker_down(sbx_docker *d, const char *name, char *err, size_t err_len);

/* Service svc's run directory and secret under dir. */
void sbx_docker_service_paths(const char *dir, const char *svc, char *run, size_t run_len, char *key,
			      size_t key_len);

#endif
