/* image.c — present, pulled or built images (image.h). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/curl_lib.h"
#include "backends/docker/start_opts.h"
#include "backends/docker/image.h"
#include "backends/docker/tar.h"

#define TAIL_LINES 6

int sbx_docker_valid_image(const char *image)
{
	if (!image[0] || image[0] == '/' || strstr(image, ".."))
		return 0;
	for (const char *p = image; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("._-/:@", *p)))
			return 0;
	return 1;
}

/* What a pull or build stream said: its error, its last output lines. */
typedef struct progress {
	sbx_docker *d;
	const char *verb, *image;
	char error[1024];
	char tail[TAIL_LINES][256];
	int ntail;
} progress;

static void say(progress *p, const char *text)
{
	char line[600];
	snprintf(line, sizeof line, "%s %s: %s", p->verb, p->image, text);
	if (p->d->progress)
		p->d->progress(p->d->progress_ud, line);
}

/* Each JSON object of the stream: {"status", "id", "progress"} (pull),
 * {"stream": "..."} (build), {"error", "errorDetail"} (either). */
static void on_json(void *ud, json_t *j)
{
	progress *p = ud;
	const char *error = json_string_value(json_object_get(j, "error"));
	const char *status = json_string_value(json_object_get(j, "status"));
	const char *stream = json_string_value(json_object_get(j, "stream"));
	if (error) {
		snprintf(p->error, sizeof p->error, "%s", error);
		p->error[strcspn(p->error, "\r\n")] = 0;
	} else if (status) {
		const char *id = json_string_value(json_object_get(j, "id"));
		if (json_object_get(j, "progress"))
			return; /* byte counts: too many lines to show */
		char text[400];
		snprintf(text, sizeof text, "%s%s%s", id ? id : "", id ? ": " : "", status);
		say(p, text);
	} else if (stream) {
		for (const char *line = stream; *line;) { /* one piece may hold several lines */
			size_t n = strcspn(line, "\r\n");
			char text[256];
			snprintf(text, sizeof text, "%.*s", (int)(n < 255 ? n : 255), line);
			line += n + (line[n] ? 1 : 0);
			if (!text[0] || !strncmp(text, "Removing intermediate container", 31))
				continue;
			say(p, text);
			if (p->ntail == TAIL_LINES) {
				memmove(p->tail[0], p->tail[1], sizeof p->tail[0] * (TAIL_LINES - 1));
				p->ntail--;
			}
			snprintf(p->tail[p->ntail++], sizeof p->tail[0], "%s", text);
		}
	}
}

static int pull(sbx_docker *d, const char *image, char *err, size_t len)
{
	const char *slash = strrchr(image, '/'), *colon = strrchr(image, ':');
	int tagged = strchr(image, '@') || (colon && (!slash || colon > slash));
	char path[1300];
	char *q = sbx_curl()->easy_escape(NULL, image, 0);
	snprintf(path, sizeof path, "/images/create?fromImage=%s%s", q ? q : "", tagged ? "" : "&tag=latest");
	sbx_curl()->free(q);
	progress p = {.d = d, .verb = "pulling", .image = image};
	say(&p, "not in the engine; pulling");
	char why[1024] = "";
	long st = sbx_docker_stream(d, "POST", path, NULL, 0, NULL, on_json, &p, 0, why, sizeof why);
	if (st == 200 && !p.error[0])
		return 0;
	snprintf(err, len,
		 "cannot pull image %s: %s (it is not in the Docker engine at unix://%s and no registry gave it: "
		 "check the name, log in to its registry with docker login, or get it with docker load or "
		 "docker build -t %s)",
		 image, p.error[0] ? p.error : why[0] ? why : "the pull failed", d->socket, image);
	return -1;
}

static void tail_text(const progress *p, char *out, size_t len)
{
	out[0] = 0;
	for (int i = 0; i < p->ntail; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? " | " : "", p->tail[i]);
}

/* named: the compose file named the image (then it is not labelled,
 * so it stays after down, as with compose). */
static int build(sbx_docker *d, sbx_docker_service *s, int named, const char *sandbox, char *err, size_t len)
{
	char *tar = NULL, tail[TAIL_LINES * 260], why[1024] = "";
	size_t tar_len = 0;
	if (sbx_docker_tar_context(s->build_context, SBX_DOCKER_BUILD_MAX, &tar, &tar_len, err, len) < 0)
		return -1;
	char labels[300], path[2400];
	snprintf(labels, sizeof labels, "{\"%s\":\"%s\"}", SBX_DOCKER_LABEL, sandbox);
	char *qt = sbx_curl()->easy_escape(NULL, s->box.image, 0), *qf = sbx_curl()->easy_escape(NULL, s->build_dockerfile, 0),
	     *ql = sbx_curl()->easy_escape(NULL, labels, 0);
	snprintf(path, sizeof path, "/build?t=%s&dockerfile=%s&rm=1&forcerm=1%s%s", qt ? qt : "", qf ? qf : "",
		 named ? "" : "&labels=", named ? "" : ql ? ql : "");
	sbx_curl()->free(qt);
	sbx_curl()->free(qf);
	sbx_curl()->free(ql);
	progress p = {.d = d, .verb = "building", .image = s->box.image};
	long st = sbx_docker_stream(d, "POST", path, tar, tar_len, "application/x-tar", on_json, &p, 0, why, sizeof why);
	free(tar);
	if (st == 200 && !p.error[0])
		return 0;
	tail_text(&p, tail, sizeof tail);
	snprintf(err, len, "building %s from %s failed: %s%s%s", s->box.image, s->build_context,
		 p.error[0] ? p.error : why[0] ? why : "the engine gave no reason", tail[0] ? "; its output ends: " : "",
		 tail);
	return -1;
}

int sbx_docker_image_ensure(sbx_docker *d, sbx_docker_service *s, const char *sandbox, const char *svc, char *err,
			    size_t err_len)
{
	int named = s->box.image[0] != 0;
	if (s->build_context[0] && !named)
		snprintf(s->box.image, sizeof s->box.image, "sbx-%s-%s:latest", sandbox, svc);
	if (!sbx_docker_valid_image(s->box.image)) {
		snprintf(err, err_len, "'%s' is not an image reference (like name:tag or registry/name@sha256:...)",
			 s->box.image);
		return -1;
	}
	if (s->build_context[0])
		return build(d, s, named, sandbox, err, err_len);
	char path[1200], why[512];
	snprintf(path, sizeof path, "/images/%s/json", s->box.image);
	long st = sbx_docker_call(d, "GET", path, NULL, NULL, 0, why, sizeof why);
	if (st == 200)
		return 0;
	if (st == 404)
		return pull(d, s->box.image, err, err_len);
	snprintf(err, err_len, "%s", why);
	return -1;
}

void sbx_docker_image_remove_built(sbx_docker *d, const char *sandbox)
{
	char filter[300], path[600], err[256];
	snprintf(filter, sizeof filter, "{\"label\":[\"%s=%s\"]}", SBX_DOCKER_LABEL, sandbox);
	char *q = sbx_curl()->easy_escape(NULL, filter, 0);
	snprintf(path, sizeof path, "/images/json?filters=%s", q ? q : "");
	sbx_curl()->free(q);
	json_t *j = NULL;
	if (sbx_docker_call(d, "GET", path, NULL, &j, 0, err, sizeof err) == 200)
		for (size_t i = 0; i < json_array_size(j); i++) {
			const char *id = json_string_value(json_object_get(json_array_get(j, i), "Id"));
			char del[300];
			snprintf(del, sizeof del, "/images/%s?force=true", id ? id : "");
			if (id)
				sbx_docker_call(d, "DELETE", del, NULL, NULL, 0, err, sizeof err);
		}
	json_decref(j);
}
