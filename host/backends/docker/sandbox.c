/* sandbox.c — a docker sandbox's services up and down (sandbox.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "net/curl_lib.h"
#include "backends/docker/image.h"
#include "backends/docker/sandbox.h"
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

/* The owner label's value: the parent of the sandbox's directory. */
static void owner_of(const sbx_docker_up_opts *o, char *out, size_t len)
{
	const char *slash = strrchr(o->dir, '/');
	snprintf(out, len, "%.*s", slash ? (int)(slash == o->dir ? 1 : slash - o->dir) : 1, slash ? o->dir : ".");
}

/* The service's settings: from the values, or just the image. */
static int read_spec(const sbx_docker_up_opts *o, int i, sbx_docker_service *spec, char *err, size_t len)
{
	memset(spec, 0, sizeof *spec);
	if (o->values)
		return sbx_docker_service_read(o->values, o->services[i], i == 0, spec, err, len);
	snprintf(spec->box.image, sizeof spec->box.image, "%s", o->image ? o->image : "");
	spec->init = 1; /* Inspect's default service: init, no network */
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
	if (sbx_docker_image_ensure(d, &spec, o->name, svc, err, len) < 0) {
		sbx_docker_service_free(&spec);
		return -1;
	}
	char owner[4200];
	owner_of(o, owner, sizeof owner);
	sbx_docker_start_opts so = {.sandbox = o->name, .service = svc, .spec = &spec, .owner = owner,
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
	int rc, done;
	int deps[MAX_CONTAINERS], ndeps; /* services to wait for (depends_on) */
	struct starter *all;
	pthread_mutex_t *lock;
	pthread_cond_t *cond;
	char err[8192];
} starter;

/* Waits until every service s depends on is up: 0, or -1 naming the
 * first that failed. */
static int wait_deps(starter *s)
{
	int rc = 0;
	pthread_mutex_lock(s->lock);
	for (int k = 0; k < s->ndeps && rc == 0; k++) {
		starter *dep = &s->all[s->deps[k]];
		while (!dep->done)
			pthread_cond_wait(s->cond, s->lock);
		if (dep->rc < 0) {
			snprintf(s->err, sizeof s->err, "not started: it depends on %s, which failed",
				 s->o->services[dep->i]);
			rc = -1;
		}
	}
	pthread_mutex_unlock(s->lock);
	return rc;
}

static void *start_thread(void *arg)
{
	starter *s = arg;
	sbx_docker d;
	s->rc = wait_deps(s);
	if (s->rc == 0)
		s->rc = sbx_docker_open(&d, s->err, sizeof s->err);
	if (s->rc == 0) {
		d.progress = s->o->progress;
		d.progress_ud = s->o->progress_ud;
		s->rc = start_one(&d, s->o, s->i, s->id, 128, s->err, sizeof s->err);
		sbx_docker_close(&d);
	}
	pthread_mutex_lock(s->lock);
	s->done = 1;
	pthread_cond_broadcast(s->cond);
	pthread_mutex_unlock(s->lock);
	return NULL;
}

/* The index of service name (the default answers to "default" too). */
static int service_index(const sbx_docker_up_opts *o, int n, const char *name)
{
	for (int j = 0; j < n; j++)
		if (!strcmp(o->services[j], name))
			return j;
	return !strcmp(name, "default") && n > 0 ? 0 : -1;
}

/* Each service's depends_on as indexes; -1 with err on a cycle. */
static int read_deps(const sbx_docker_up_opts *o, starter *st, int n, char *err, size_t len)
{
	for (int i = 0; i < n && o->values; i++) {
		sbx_docker_service spec;
		if (sbx_docker_service_read(o->values, o->services[i], i == 0, &spec, err, len) < 0)
			return -1;
		for (size_t k = 0; spec.depends_on && spec.depends_on[k] && st[i].ndeps < MAX_CONTAINERS; k++) {
			int j = service_index(o, n, spec.depends_on[k]);
			if (j >= 0 && j != i)
				st[i].deps[st[i].ndeps++] = j;
		}
		sbx_docker_service_free(&spec);
	}
	for (int i = 0; i < n; i++) { /* a cycle: some service reaches itself within n steps */
		int seen[MAX_CONTAINERS] = {0}, stack[MAX_CONTAINERS * 8], top = 0;
		for (int k = 0; k < st[i].ndeps; k++)
			stack[top++] = st[i].deps[k];
		while (top > 0) {
			int j = stack[--top];
			if (j == i) {
				snprintf(err, len, "%s: its depends_on leads back to itself: break the cycle", o->services[i]);
				return -1;
			}
			if (seen[j]++)
				continue;
			for (int k = 0; k < st[j].ndeps && top < MAX_CONTAINERS * 8; k++)
				stack[top++] = st[j].deps[k];
		}
	}
	return 0;
}

static int create_shared(sbx_docker *d, const sbx_docker_up_opts *o, char *err, size_t len);

/* Every service at once, as `docker compose up` does: a container start
 * is mostly waiting for the engine. */
int sbx_docker_up(sbx_docker *d, const sbx_docker_up_opts *orig, char ids[][128], char *err, size_t err_len)
{
	sbx_docker_up_opts copy = *orig, *o = &copy; /* with values in place of a compose file or Dockerfile */
	char values[4200];
	snprintf(values, sizeof values, "%s/values.yaml", orig->dir);
	int tr = orig->values ? sbx_docker_translate(orig->values, values, NULL, NULL, err, err_len) : 0;
	if (tr < 0)
		return -1;
	if (tr > 0)
		copy.values = values;
	int n = 0;
	while (o->services[n] && n < MAX_CONTAINERS)
		n++;
	starter *st = calloc((size_t)n, sizeof *st);
	pthread_t *th = calloc((size_t)n, sizeof *th);
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	int rc = st && th ? 0 : -1, started = 0;
	for (int i = 0; rc == 0 && i < n; i++)
		st[i] = (starter){.o = o, .i = i, .id = ids[i], .rc = -1, .all = st, .lock = &lock, .cond = &cond};
	if (rc == 0 && read_deps(o, st, n, err, err_len) < 0) {
		free(st);
		free(th);
		return -1;
	}
	if (rc == 0 && create_shared(d, o, err, err_len) < 0)
		rc = -2;
	for (; rc == 0 && started < n; started++) {
		ids[started][0] = 0;
		if (pthread_create(&th[started], NULL, start_thread, &st[started]) != 0)
			break;
	}
	if (rc == 0 && started < n) { /* those never started count as failed, so dependants stop waiting */
		pthread_mutex_lock(&lock);
		for (int i = started; i < n; i++)
			st[i].done = 1;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; rc == 0 && i < n; i++) /* the first failure that is not a dependant's */
		if ((i >= started || st[i].rc < 0) && !strstr(st[i].err, "not started: it depends on")) {
			snprintf(err, err_len, "%s: %s", o->services[i], i < started ? st[i].err : "cannot start a thread");
			rc = -1;
		}
	for (int i = 0; rc == 0 && i < n; i++)
		if (i >= started || st[i].rc < 0) {
			snprintf(err, err_len, "%s: %s", o->services[i], i < started ? st[i].err : "cannot start a thread");
			rc = -1;
		}
	if (!st || !th)
		snprintf(err, err_len, "out of memory");
	if (rc == -2)
		rc = -1;
	free(st);
	free(th);
	if (rc < 0) {
		char why[1024];
		sbx_docker_down(d, o->name, why, sizeof why); /* what it made, recorded or not */
	}
	return rc;
}

/* The labels of everything sbx makes for sandbox name. */
static json_t *labels(const sbx_docker_up_opts *o)
{
	char owner[4200];
	owner_of(o, owner, sizeof owner);
	json_t *l = json_object();
	json_object_set_new(l, SBX_DOCKER_LABEL, json_string(o->name));
	json_object_set_new(l, SBX_DOCKER_OWNER_LABEL, json_string(owner));
	return l;
}

/* The values' named volumes and networks (internal ones: no route out). */
static int create_shared(sbx_docker *d, const sbx_docker_up_opts *o, char *err, size_t len)
{
	for (int is_net = 0; is_net < 2 && o->values; is_net++) {
		char **names;
		if (sbx_docker_values_names(o->values, is_net, &names, err, len) < 0)
			return -1;
		for (size_t i = 0; names && names[i]; i++) {
			char full[300];
			int internal = names[i][0] == '!';
			sbx_docker_object_name(o->name, names[i] + internal, full, sizeof full);
			json_t *b = json_object();
			json_object_set_new(b, "Name", json_string(full));
			json_object_set_new(b, "Labels", labels(o));
			if (is_net) {
				json_object_set_new(b, "Internal", json_boolean(internal));
				json_object_set_new(b, "CheckDuplicate", json_true());
			}
			long st = sbx_docker_call(d, "POST", is_net ? "/networks/create" : "/volumes/create", b, NULL, 0,
						  err, len);
			json_decref(b);
			if (st != 201) {
				snprintf(err + strlen(err), len - strlen(err), " (creating %s %s)", is_net ? "network" : "volume",
					 full);
				sbx_docker_list_free(names);
				return -1;
			}
		}
		sbx_docker_list_free(names);
	}
	return 0;
}

/* Removes the networks or volumes labelled as name's. 0, or -1 with err. */
static int remove_shared(sbx_docker *d, const char *name, int is_net, char *err, size_t len)
{
	char filter[300], path[700];
	snprintf(filter, sizeof filter, "{\"label\":[\"%s=%s\"]}", SBX_DOCKER_LABEL, name);
	char *q = sbx_curl()->easy_escape(NULL, filter, 0);
	snprintf(path, sizeof path, "/%s?filters=%s", is_net ? "networks" : "volumes", q ? q : "");
	sbx_curl()->free(q);
	json_t *j = NULL;
	if (sbx_docker_call(d, "GET", path, NULL, &j, 0, err, len) != 200) {
		json_decref(j);
		return -1;
	}
	json_t *list = is_net ? j : json_object_get(j, "Volumes");
	int rc = 0;
	for (size_t i = 0; i < json_array_size(list); i++) {
		const char *id = json_string_value(json_object_get(json_array_get(list, i), is_net ? "Id" : "Name"));
		snprintf(path, sizeof path, "/%s/%s", is_net ? "networks" : "volumes", id ? id : "");
		long st = id ? sbx_docker_call(d, "DELETE", path, NULL, NULL, 0, err, len) : 404;
		if (st != 204 && st != 404)
			rc = -1;
	}
	json_decref(j);
	return rc;
}

int sbx_docker_down(sbx_docker *d, const char *name, char *err, size_t err_len)
{
	char ids[MAX_CONTAINERS][80];
	int n = sbx_docker_container_list(d, name, ids, MAX_CONTAINERS, err, err_len), rc = n < 0 ? -1 : 0;
	for (int i = 0; i < n; i++)
		if (sbx_docker_container_remove(d, ids[i], err, err_len) < 0)
			rc = -1;
	if (rc == 0 && (remove_shared(d, name, 1, err, err_len) < 0 || remove_shared(d, name, 0, err, err_len) < 0))
		rc = -1;
	if (rc == 0)
		sbx_docker_image_remove_built(d, name);
	return rc;
}
