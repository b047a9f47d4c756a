/* compose_cv.h — the compose translator's shared state and helpers, for the
 * files of host/backends/k8s/compose*.c only (not part of libsbx's API).
 *
 * A cv holds the input document, the output document being built, and where
 * messages go. Output helpers return node ids of the output document; they
 * abort only when libyaml is out of memory. Message helpers prefix the file,
 * line, column and service. */
#ifndef SBX_K8S_COMPOSE_CV_H
#define SBX_K8S_COMPOSE_CV_H

#include <stddef.h>
#include <yaml.h>

#include "yamldoc.h"

typedef struct cv {
	ydoc in;
	yaml_document_t out;
	const char *svc; /* the service being translated, for messages */
	char *err;
	size_t err_len;
	void (*warn)(void *ud, const char *msg); /* compose.h's sbx_compose_warn_fn */
	void *ud;
	yaml_node_t *volumes, *networks; /* top-level definitions */
	yaml_node_t *services;           /* the services mapping */
	const char *default_from;        /* the compose name of the service renamed 'default' */
	int docker;                      /* for the docker backend: compose_docker.c's keys too */
} cv;

/* An error at node at (NULL: the file) into c->err; returns -1. */
int cv_bad(cv *c, yaml_node_t *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A warning (something was ignored), and a note (nothing was). */
void cv_warn(cv *c, yaml_node_t *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cv_note(cv *c, yaml_node_t *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Output nodes: a mapping, a sequence, user text (always quoted), our own
 * plain scalars, and a scalar copied as written (a plain number stays one). */
int cv_map(cv *c);
int cv_seq(cv *c);
int cv_str(cv *c, const char *s);
int cv_plain(cv *c, const char *s);
int cv_plain_number(yaml_node_t *n);
int cv_like(cv *c, yaml_node_t *n);
int cv_int(cv *c, long v); /* a plain number */
void cv_push(cv *c, int seq, int value); /* appends to output sequence seq */
/* The value of KEY in output mapping map, or 0; adding KEY (ours, or the user's). */
int cv_get(cv *c, int map, const char *key);
void cv_set(cv *c, int map, const char *key, int value);
void cv_setq(cv *c, int map, const char *key, int value);

typedef struct ignored_key {
	const char *key, *why;
} ignored_key;

/* What cv_sort_keys does with an "x-" key it was not asked for. */
enum { EXT_WARN, EXT_QUIET, EXT_REFUSE };

/* Fills found[i] with the value of names[i] (NULL when absent). Keys in
 * ign get a warning, other "x-" keys are handled as ext says, and any
 * other key is an error naming the keys sbx translates. 0 or -1. */
int cv_sort_keys(cv *c, yaml_node_t *map, const char *what, const char *const *names, size_t nnames,
		 yaml_node_t **found, const ignored_key *ign, int ext);

/* One security_opt entry -> a seccompProfile mapping, or -1. */
int cv_seccomp_profile(cv *c, yaml_node_t *item);
/* A service's extension mapping n (named ext) merged into resources res
 * (0: none yet): the resources mapping, 0 (none) or -1. */
int cv_service_extension(cv *c, yaml_node_t *n, const char *ext, int res);

/* docker only: a service's init, ports, depends_on, build (under `docker:`
 * of its values mapping m) and read_only (securityContext). 0 or -1. */
int cv_docker_service(cv *c, int m, yaml_node_t *init, yaml_node_t *ports, yaml_node_t *depends_on,
		      yaml_node_t *read_only, yaml_node_t *build);

#endif
