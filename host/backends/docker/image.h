/* image.h — a service's image in the engine: there already, else pulled
 * (POST /images/create), or built from the service's build context
 * (POST /build with a tar of it, tar.h). Progress goes to d->progress. */
#ifndef SBX_DOCKER_IMAGE_H
#define SBX_DOCKER_IMAGE_H

#include "backends/docker/engine.h"
#include "backends/docker/service.h"

#define SBX_DOCKER_BUILD_MAX (512u << 20) /* the largest build context sent */

/* An image reference: [registry[:port]/]name[:tag][@digest], so it can go
 * into a request path as it is. */
int sbx_docker_valid_image(const char *image);

/* Makes s->box.image usable: with a build context, builds it (when
 * s->box.image is empty it becomes sbx-SANDBOX-SVC:latest, labelled
 * sbx.sandbox=SANDBOX so down removes it); else pulls it when the engine
 * lacks it. 0, or -1 with one line in err: a pull the registry refused
 * ("cannot pull ..."), a failed build with its output's last lines. */
int sbx_docker_image_ensure(sbx_docker *d, sbx_docker_service *s, const char *sandbox, const char *svc, char *err,
			    size_t err_len);

/* Removes the images labelled sbx.sandbox=sandbox (what builds made). */
void sbx_docker_image_remove_built(sbx_docker *d, const char *sandbox);

#endif
