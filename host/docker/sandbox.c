/* sandbox.c — a docker sandbox's services up and down (sandbox.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "docker/sandbox.h"
#include "keyfile.h"
#include "sha256.h"
#include "sbx.h"

#define MAX_CONTAINERS 64

void sbx_docker_service_paths(const char *dir, const char *svc, char *run, size_t run_len, char *key,
			      size_t key_len)
{
	snprintf(run, run_len, "%s/%s.run", dir, svc);
	snprintf(key, key_len, "%s/%s.key", dir, svc);
}

/* The service's settings: from the values, or just the image. */
static int read_spec(const sbx_docker_up_opts *o, int i, sbx_docker_service *spec, char *err, size_t len)
{
	memset(spec, 0, sizeof *spec);
	if (o->values)
		return sbx_docker_service_read(o->values, o->services[i], i == 0, spec, err, len);
	snprintf(spec->box.image, sizeof spec->box.image, "%s", o->image ? o->image : "");
	return 0;
}

/* The run directory and a fresh secret, then the container. */
static int start_one(sbx_docker *d, const sbx_docker_up_opts *o, int i, char *id, size_t id_len, char *err,
		     size_t len)
{
	const char *svc = o->services[i];
	char run[4200], key[4200];
	sbx_docker_service_paths(o->dir, svc, run, sizeof run, key, sizeof key);
	if (mkdir(run, 0700) < 0) {
		snprintf(err, len, "cannot create %s: %s", run, strerror(errno));
		return -1;
	}
	sbx_auth_key k;
	int rc = sbx_keyfile_create(key, &k, err, len);
	sbx_wipe(&k, sizeof k);
	sbx_docker_service spec;
	if (rc < 0 || read_spec(o, i, &spec, err, len) < 0)
		return -1;
	sbx_docker_start_opts so = {.sandbox = o->name, .service = svc, .spec = &spec,
				    .agent = o->agent ? o->agent : sbx_default_agent_path(), .run_dir = run,
				    .secret_file = key};
	rc = sbx_docker_container_start(d, &so, id, id_len, err, len);
	sbx_docker_service_free(&spec);
	return rc;
}

/* One service started on a thread of its own, with an engine client of
 * its own (a client and its loop serve one thread). */
typedef struct starter {
	const sbx_docker_up_opts *o;
	int i;
	char *id;
	int rc;
	char err[8192];
} starter;

static void *start_thread(void *arg)
{
	starter *s = arg;
	sbx_docker d;
	s->rc = sbx_docker_open(&d, s->err, sizeof s->err);
	if (s->rc == 0)
		s->rc = start_one(&d, s->o, s->i, s->id, 128, s->err, sizeof s->err);
	sbx_docker_close(&d);
	return NULL;
}

/* Every service at once, as `docker compose up` does: a container start
 * is mostly waiting for the engine. */
int sbx_docker_up(sbx_docker *d, const sbx_docker_up_opts *o, char ids[][128], char *err, size_t err_len)
{
	int n = 0;
	while (o->services[n] && n < MAX_CONTAINERS)
		n++;
	starter *st = calloc((size_t)n, sizeof *st);
	pthread_t *th = calloc((size_t)n, sizeof *th);
	int rc = st && th ? 0 : -1, started = 0;
	for (; rc == 0 && started < n; started++) {
		st[started] = (starter){.o = o, .i = started, .id = ids[started], .rc = -1};
		ids[started][0] = 0;
		if (pthread_create(&th[started], NULL, start_thread, &st[started]) != 0)
			break;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; rc == 0 && i < n; i++)
		if (i >= started || st[i].rc < 0) {
			snprintf(err, err_len, "%s: %s", o->services[i], i < started ? st[i].err : "cannot start a thread");
			rc = -1;
		}
	if (!st || !th)
		snprintf(err, err_len, "out of memory");
	free(st);
	free(th);
	if (rc < 0) {
		char why[1024];
		sbx_docker_down(d, o->name, why, sizeof why); /* what it made, recorded or not */
	}
	return rc;
}

int sbx_docker_down(sbx_docker *d, const char *name, char *err, size_t err_len)
{
	char ids[MAX_CONTAINERS][80];
	int n = sbx_docker_container_list(d, name, ids, MAX_CONTAINERS, err, err_len), rc = n < 0 ? -1 : 0;
	for (int i = 0; i < n; i++)
		if (sbx_docker_container_remove(d, ids[i], err, err_len) < 0)
			rc = -1;
	return rc;
}
