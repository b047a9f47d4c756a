/* defaults.h — Inspect's docker sandbox defaults for a task that gives a
 * Dockerfile instead of a compose file: one service `default` built from
 * it (the Dockerfile's directory is the context), with an init process
 * and no network. (Without any file, sandbox.h's image-only service gets
 * the same init and no network.) */
#ifndef SBX_DOCKER_DEFAULTS_H
#define SBX_DOCKER_DEFAULTS_H

#include <stddef.h>

/* Whether path names a Dockerfile: Dockerfile, NAME.Dockerfile, Dockerfile.NAME. */
int sbx_docker_is_dockerfile(const char *path);

/* The values document (malloc'd YAML) for a Dockerfile at path, or NULL
 * with err when it does not exist. */
char *sbx_docker_dockerfile_values(const char *path, char *err, size_t err_len);

#endif
