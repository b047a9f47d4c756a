/* engine.h — a client of the Docker Engine API over its unix socket.
 *
 * Requests are JSON over HTTP/1.1 on $DOCKER_HOST (unix:// only), default
 * /var/run/docker.sock, through libcurl on an sbx loop (host/net/http.h);
 * nothing here runs the docker CLI. Podman's Docker-compatible socket
 * works the same. Every failure is one line in err saying what to do. */
#ifndef SBX_DOCKER_ENGINE_H
#define SBX_DOCKER_ENGINE_H

#include <jansson.h>
#include <stddef.h>

#include "net/http.h"
#include "loop.h"

typedef struct sbx_docker {
	char socket[1024]; /* the engine's unix socket */
	sbx_loop *loop;    /* the client's own loop (a session can run on it too) */
	sbx_http *http;
	/* Progress of pulls and builds, one line each (NULL: quiet). */
	void (*progress)(void *ud, const char *line);
	void *progress_ud;
} sbx_docker;

/* Where the engine is: $DOCKER_HOST's unix:// path, else the default.
 * 0, or -1 when DOCKER_HOST names something other than a unix socket. */
int sbx_docker_socket_path(char *out, size_t len, char *err, size_t err_len);

/* Opens a client and checks the engine answers (GET /_ping). 0, or -1 with
 * "cannot reach the Docker engine at ...: is dockerd running? ..." (or a
 * permission problem) in err. Free with sbx_docker_close either way. */
int sbx_docker_open(sbx_docker *d, char *err, size_t err_len);
void sbx_docker_close(sbx_docker *d);

/* METHOD PATH (e.g. "/containers/create?name=x") with body as JSON (NULL:
 * none). Returns the HTTP status, with the response's JSON in *out when
 * out is given and the body is JSON (else *out = NULL; the caller
 * json_decref's it), or -1 with err when no response came. For a status
 * of 400 or more err holds the engine's message. timeout_s 0: 60 s. */
long sbx_docker_call(sbx_docker *d, const char *method, const char *path, json_t *body, json_t **out,
		     double timeout_s, char *err, size_t err_len);

/* GET PATH with the body as bytes: up to out_len - 1 of them into out
 * (NUL-terminated), their count in *n. The HTTP status, or -1 with err. */
long sbx_docker_get_raw(sbx_docker *d, const char *path, char *out, size_t out_len, size_t *n, char *err,
			size_t err_len);

/* METHOD PATH with body (body_len bytes of content_type; NULL: none),
 * whose answer is a stream of JSON objects (pull, build): each one goes to
 * on_json as it arrives. The HTTP status, or -1 with err when no answer
 * came; for 400 or more err holds the engine's message. timeout_s 0: none. */
long sbx_docker_stream(sbx_docker *d, const char *method, const char *path, const void *body, size_t body_len,
		       const char *content_type, void (*on_json)(void *ud, json_t *j), void *ud, double timeout_s,
		       char *err, size_t err_len);

/* Whether the engine maps container users to other host users (rootless,
 * or userns-remap: GET /info's SecurityOptions): then container root is
 * not host root, and a file it makes is not ours to give away. 1, 0, or
 * 0 when the engine does not say. */
int sbx_docker_remaps_users(sbx_docker *d);

/* Whether the engine is Podman's Docker-compatible service (GET /version
 * names a "Podman Engine" component). 1 or 0. */
int sbx_docker_is_podman(sbx_docker *d);

/* A NULL-terminated list of strings as a JSON array (NULL: empty). */
json_t *sbx_docker_strings(char *const *list);

#endif
