/* health.h — a service's healthcheck on Docker: compose's healthcheck (as
 * the values' readinessProbe) into the container's Healthcheck, and the
 * wait until the engine calls the container healthy. */
#ifndef SBX_DOCKER_HEALTH_H
#define SBX_DOCKER_HEALTH_H

#include "backends/docker/engine.h"
#include "backends/docker/service.h"

/* The create body's Healthcheck, or NULL when the service has none. */
json_t *sbx_docker_healthcheck(const sbx_docker_service *s);

/* Waits until the container is healthy (at once without a healthcheck).
 * 0, or -1 with err: unhealthy (with the failing check's output), stopped,
 * or still starting after the check's own time plus a minute. */
int sbx_docker_wait_healthy(sbx_docker *d, const char *id, const sbx_docker_service *s, char *err, size_t err_len);

#endif
