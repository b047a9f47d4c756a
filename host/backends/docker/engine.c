/* engine.c — the Docker Engine API client (engine.h): one HTTP request
 * over the engine's unix socket per call, JSON in and out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/docker/engine.h"

#define DEFAULT_SOCKET "/var/run/docker.sock"

int sbx_docker_socket_path(char *out, size_t len, char *err, size_t err_len)
{
	const char *host = getenv("DOCKER_HOST");
	if (!host || !host[0]) {
		snprintf(out, len, "%s", DEFAULT_SOCKET);
		return 0;
	}
	if (strncmp(host, "unix://", 7) != 0) {
		snprintf(err, err_len,
			 "DOCKER_HOST=%s: sbx reaches the Docker engine only over a unix socket (unix:///path); "
			 "unset DOCKER_HOST or point it at the engine's socket",
			 host);
		return -1;
	}
	snprintf(out, len, "%s", host + 7);
	return 0;
}

/* Why the engine at d->socket cannot be used, from what connecting says. */
static void unreachable(const sbx_docker *d, const char *cause, char *err, size_t err_len)
{
	if (access(d->socket, F_OK) == 0 && access(d->socket, R_OK | W_OK) < 0 && errno == EACCES)
		snprintf(err, err_len,
			 "permission denied on the Docker engine's socket %s: run sbx as root or as a member of "
			 "the socket's group (usually docker)",
			 d->socket);
	else
		snprintf(err, err_len,
			 "cannot reach the Docker engine at unix://%s: is dockerd running? (start it, e.g. "
			 "`systemctl start docker`, or set DOCKER_HOST=unix:///path/to/docker.sock): %s",
			 d->socket, access(d->socket, F_OK) < 0 ? "no such socket" : cause);
}

int sbx_docker_open(sbx_docker *d, char *err, size_t err_len)
{
	memset(d, 0, sizeof *d);
	if (sbx_docker_socket_path(d->socket, sizeof d->socket, err, err_len) < 0)
		return -1;
	d->loop = sbx_loop_new();
	d->http = d->loop ? sbx_http_new(d->loop) : NULL;
	if (!d->http) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	char why[1024];
	long st = sbx_docker_call(d, "GET", "/_ping", NULL, NULL, 10, why, sizeof why);
	if (st < 0) {
		unreachable(d, why, err, err_len);
		return -1;
	}
	if (st != 200) {
		snprintf(err, err_len, "the Docker engine at unix://%s answered /_ping with HTTP %ld: %s", d->socket,
			 st, why);
		return -1;
	}
	return 0;
}

int sbx_docker_remaps_users(sbx_docker *d)
{
	char err[256];
	json_t *info = NULL;
	int remaps = 0;
	if (sbx_docker_call(d, "GET", "/info", NULL, &info, 0, err, sizeof err) == 200) {
		json_t *opts = json_object_get(info, "SecurityOptions");
		for (size_t i = 0; i < json_array_size(opts); i++) {
			const char *o = json_string_value(json_array_get(opts, i));
			remaps |= o && (strstr(o, "name=rootless") || strstr(o, "name=userns"));
		}
	}
	json_decref(info);
	return remaps;
}

int sbx_docker_is_podman(sbx_docker *d)
{
	char err[256];
	json_t *version = NULL;
	int podman = 0;
	if (sbx_docker_call(d, "GET", "/version", NULL, &version, 0, err, sizeof err) == 200) {
		json_t *parts = json_object_get(version, "Components");
		for (size_t i = 0; i < json_array_size(parts); i++) {
			const char *name = json_string_value(json_object_get(json_array_get(parts, i), "Name"));
			podman |= name && strstr(name, "Podman") != NULL;
		}
	}
	json_decref(version);
	return podman;
}

void sbx_docker_close(sbx_docker *d)
{
	if (d->http)
		sbx_http_free(d->http);
	if (d->loop)
		sbx_loop_free(d->loop);
	d->http = NULL;
	d->loop = NULL;
}

/* The engine's {"message": "..."} (or the raw body) into err. */
static void error_message(const sbx_http_response *r, json_t *j, const char *method, const char *path, char *err,
			  size_t err_len)
{
	const char *msg = json_string_value(json_object_get(j, "message"));
	if (!msg)
		msg = r->body_len ? (const char *)r->body : "(no message)";
	snprintf(err, err_len, "%s %s: %s", method, path, msg);
	size_t n = strlen(err);
	while (n && (err[n - 1] == '\n' || err[n - 1] == '\r'))
		err[--n] = 0;
}

long sbx_docker_call(sbx_docker *d, const char *method, const char *path, json_t *body, json_t **out,
		     double timeout_s, char *err, size_t err_len)
{
	char url[4200];
	snprintf(url, sizeof url, "http://docker%s", path);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	const char *headers[] = {"Content-Type: application/json", NULL};
	sbx_http_request rq = {.method = method,
			       .url = url,
			       .unix_socket = d->socket,
			       .headers = body ? headers : NULL,
			       .body = text,
			       .body_len = text ? strlen(text) : 0,
			       .tls = {.proxy = ""},
			       .timeout_s = timeout_s > 0 ? timeout_s : 60,
			       .connect_timeout_s = 10};
	sbx_http_response r;
	int rc = sbx_http_sync(d->http, &rq, &r);
	free(text);
	if (out)
		*out = NULL;
	if (rc < 0) {
		snprintf(err, err_len, "%s", r.error.message);
		sbx_http_response_free(&r);
		return -1;
	}
	json_t *j = r.body_len ? json_loadb((const char *)r.body, r.body_len, 0, NULL) : NULL;
	long status = r.status;
	if (status >= 400)
		error_message(&r, j, method, path, err, err_len);
	if (out)
		*out = j;
	else if (j)
		json_decref(j);
	sbx_http_response_free(&r);
	return status;
}

long sbx_docker_get_raw(sbx_docker *d, const char *path, char *out, size_t out_len, size_t *n, char *err,
			size_t err_len)
{
	char url[4200];
	snprintf(url, sizeof url, "http://docker%s", path);
	sbx_http_request rq = {.method = "GET", .url = url, .unix_socket = d->socket, .tls = {.proxy = ""},
			       .timeout_s = 30, .connect_timeout_s = 10};
	sbx_http_response r;
	*n = 0;
	out[0] = 0;
	if (sbx_http_sync(d->http, &rq, &r) < 0) {
		snprintf(err, err_len, "%s", r.error.message);
		sbx_http_response_free(&r);
		return -1;
	}
	*n = r.body_len < out_len ? r.body_len : out_len - 1;
	memcpy(out, r.body, *n);
	out[*n] = 0;
	long status = r.status;
	sbx_http_response_free(&r);
	return status;
}

json_t *sbx_docker_strings(char *const *list)
{
	json_t *a = json_array();
	for (size_t i = 0; list && list[i]; i++)
		json_array_append_new(a, json_string(list[i]));
	return a;
}

/* Splits the streamed body into JSON objects (one per line, as the
 * engine writes them) for the caller. */
typedef struct json_lines {
	char *buf;
	size_t len, cap;
	void (*on_json)(void *ud, json_t *j);
	void *ud;
} json_lines;

static void emit_lines(json_lines *l, int all)
{
	size_t start = 0;
	if (!l->len)
		return;
	for (size_t i = 0; i < l->len; i++) {
		if (l->buf[i] != '\n' && !(all && i + 1 == l->len))
			continue;
		size_t end = l->buf[i] == '\n' ? i : i + 1;
		json_t *j = end > start ? json_loadb(l->buf + start, end - start, 0, NULL) : NULL;
		if (j) {
			l->on_json(l->ud, j);
			json_decref(j);
		}
		start = i + 1;
	}
	memmove(l->buf, l->buf + start, l->len - start);
	l->len -= start;
}

static int on_lines(void *ud, const uint8_t *p, size_t n)
{
	json_lines *l = ud;
	if (l->len + n > l->cap) {
		size_t cap = (l->len + n) * 2;
		char *b = realloc(l->buf, cap);
		if (!b)
			return 1;
		l->buf = b;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, p, n);
	l->len += n;
	emit_lines(l, 0);
	return 0;
}

long sbx_docker_stream(sbx_docker *d, const char *method, const char *path, const void *body, size_t body_len,
		       const char *content_type, void (*on_json)(void *ud, json_t *j), void *ud, double timeout_s,
		       char *err, size_t err_len)
{
	char url[4200], ct[200];
	snprintf(url, sizeof url, "http://docker%s", path);
	snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
	const char *headers[] = {ct, NULL};
	json_lines l = {.on_json = on_json, .ud = ud};
	sbx_http_request rq = {.method = method, .url = url, .unix_socket = d->socket, .headers = body ? headers : NULL,
			       .body = body, .body_len = body_len, .tls = {.proxy = ""}, .timeout_s = timeout_s,
			       .connect_timeout_s = 10, .on_body = on_lines, .ud = &l};
	sbx_http_response r;
	int rc = sbx_http_sync(d->http, &rq, &r);
	if (rc == 0 || r.status)
		emit_lines(&l, 1);
	free(l.buf);
	if (rc < 0 && !r.status) {
		snprintf(err, err_len, "%s", r.error.message);
		sbx_http_response_free(&r);
		return -1;
	}
	long status = r.status;
	if (status >= 400) {
		json_t *j = r.body_len ? json_loadb((const char *)r.body, r.body_len, 0, NULL) : NULL;
		error_message(&r, j, method, path, err, err_len);
		json_decref(j);
	}
	sbx_http_response_free(&r);
	return status;
}
