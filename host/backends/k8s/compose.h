/* compose.h — docker compose files translated to values of the agent-env
 * chart, with the rules of the Inspect k8s sandbox's converter (so a task's
 * compose.yaml behaves the same under both). docs/compose.md lists them. */
#ifndef SBX_K8S_COMPOSE_H
#define SBX_K8S_COMPOSE_H

#include <stddef.h>

/* Called once per ignored key with "FILE:LINE:COL: ... ignored: why", and
 * for messages that only inform (nothing ignored) with "note: FILE:...". */
typedef void (*sbx_compose_warn_fn)(void *ud, const char *msg);

/* Whether PATH names a compose file rather than a values file:
 * compose.yaml, docker-compose.yml, *.compose.yaml, compose.*.yml, ... */
int sbx_compose_is_compose_file(const char *path);

/* Translate the compose file at PATH. Returns the values document (YAML,
 * NUL-terminated, malloc'd), or NULL with "FILE:LINE:COL: what, and how to
 * fix it" in err. warn may be NULL. */
char *sbx_compose_to_values(const char *path, sbx_compose_warn_fn warn, void *ud, char *err, size_t err_len);

/* The same for the docker backend: also init, ports, depends_on, build
 * (a service's `docker:` mapping) and read_only; a service with build and
 * no image gets no image (the docker backend names what it builds). */
char *sbx_compose_to_docker_values(const char *path, sbx_compose_warn_fn warn, void *ud, char *err, size_t err_len);

/* The same from a string (path names it in messages). */
char *sbx_compose_string_to_values(const char *path, const char *text, size_t len, sbx_compose_warn_fn warn,
				   void *ud, char *err, size_t err_len);

#endif
