/* container.c — a service's container (container.h): create with the
 * agent and run directory mounted, start, its agent (agent.h), its health;
 * why it stopped; remove, status, list. */
#include "net/curl_lib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/docker/agent.h"
#include "backends/docker/container.h"
#include "backends/docker/health.h"
#include "backends/docker/image.h"
#include "sbx.h"

/* The image's config, or NULL with "not here: how to get it" in err. */
static json_t *image_config(sbx_docker *d, const char *image, char *err, size_t len)
{
	char path[1200];
	if (!sbx_docker_valid_image(image)) {
		snprintf(err, len, "'%s' is not an image reference (like name:tag or registry/name@sha256:...)", image);
		return NULL;
	}
	snprintf(path, sizeof path, "/images/%s/json", image);
	json_t *j = NULL;
	long st = sbx_docker_call(d, "GET", path, NULL, &j, 0, err, len);
	if (st == 404)
		snprintf(err, len,
			 "image %s is not in the Docker engine at unix://%s: get it with docker pull %s, docker "
			 "load or docker build -t %s",
			 image, d->socket, image, image);
	if (st != 200) {
		json_decref(j);
		return NULL;
	}
	json_t *cfg = json_incref(json_object_get(j, "Config"));
	json_decref(j);
	return cfg ? cfg : json_object();
}

void sbx_docker_object_name(const char *sandbox, const char *name, char *out, size_t len)
{
	snprintf(out, len, "sbx-%s-%s", sandbox, name);
}

/* "IP:[HOST_PORT]:PORT/PROTO" each -> {"PORT/PROTO": [{HostIp, HostPort}]} */
static json_t *port_bindings(char **ports)
{
	json_t *pb = json_object();
	for (size_t i = 0; ports[i]; i++) {
		char ip[64] = "", host[16] = "", target[32] = "";
		if (sscanf(ports[i], "%63[^:]:%15[^:]:%31s", ip, host, target) != 3 &&
		    sscanf(ports[i], "%63[^:]::%31s", ip, target) != 2)
			continue;
		json_t *b = json_object();
		json_object_set_new(b, "HostIp", json_string(ip));
		json_object_set_new(b, "HostPort", json_string(host));
		json_t *list = json_object_get(pb, target);
		if (!list) {
			list = json_array();
			json_object_set_new(pb, target, list);
		}
		json_array_append_new(list, b);
	}
	return pb;
}

static json_t *host_config(const sbx_docker_start_opts *o)
{
	char agent[4200], run[4200];
	snprintf(agent, sizeof agent, "%s:%s:ro", o->agent, SBX_DOCKER_AGENT_PATH);
	snprintf(run, sizeof run, "%s:%s", o->run_dir, SBX_DOCKER_RUN_PATH);
	json_t *hc = json_object();
	json_t *binds = json_array();
	json_array_append_new(binds, json_string(agent));
	json_array_append_new(binds, json_string(run));
	for (size_t i = 0; o->spec->volumes && o->spec->volumes[i]; i++) { /* NAME:/path[:ro] */
		char name[300], bind[4400];
		const char *v = o->spec->volumes[i], *colon = strchr(v, ':');
		snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - v) : 0, v);
		sbx_docker_object_name(o->sandbox, name, bind, sizeof bind);
		snprintf(bind + strlen(bind), sizeof bind - strlen(bind), "%s", colon ? colon : "");
		json_array_append_new(binds, json_string(bind));
	}
	json_object_set_new(hc, "Binds", binds);
	char net[300] = "none";
	if (o->spec->networks && o->spec->networks[0] && !o->spec->isolated)
		sbx_docker_object_name(o->sandbox, o->spec->networks[0], net, sizeof net);
	json_object_set_new(hc, "NetworkMode", json_string(net));
	if (o->spec->init)
		json_object_set_new(hc, "Init", json_true());
	if (o->spec->ports)
		json_object_set_new(hc, "PortBindings", port_bindings(o->spec->ports));
	if (o->spec->box.memory)
		json_object_set_new(hc, "Memory", json_integer((json_int_t)o->spec->box.memory));
	if (o->spec->box.cpus > 0)
		json_object_set_new(hc, "NanoCpus", json_integer((json_int_t)(o->spec->box.cpus * 1e9)));
	if (o->spec->read_only)
		json_object_set_new(hc, "ReadonlyRootfs", json_true());
	return hc;
}

/* POST /containers/create's body. With neither a command from the service
 * nor one in the image, the container idles on the mounted agent itself
 * (`sbx-agent --idle`), so an image needs no shell and no tail. */
static json_t *create_body(const sbx_docker_start_opts *o, json_t *image_cfg)
{
	const sbx_docker_service *s = o->spec;
	json_t *b = json_object();
	json_object_set_new(b, "Image", json_string(s->box.image));
	if (s->command)
		json_object_set_new(b, "Entrypoint", sbx_docker_strings(s->command));
	if (s->args)
		json_object_set_new(b, "Cmd", sbx_docker_strings(s->args));
	int image_runs = json_array_size(json_object_get(image_cfg, "Cmd")) ||
			 json_array_size(json_object_get(image_cfg, "Entrypoint"));
	if (!s->command && !s->args && !image_runs) {
		char *idle[] = {SBX_DOCKER_AGENT_PATH, "--idle", NULL};
		json_object_set_new(b, "Entrypoint", sbx_docker_strings(idle));
	}
	if (s->box.env)
		json_object_set_new(b, "Env", sbx_docker_strings(s->box.env));
	if (s->box.workdir[0])
		json_object_set_new(b, "WorkingDir", json_string(s->box.workdir));
	if (s->box.user[0])
		json_object_set_new(b, "User", json_string(s->box.user));
	json_t *labels = json_object();
	json_object_set_new(labels, SBX_DOCKER_LABEL, json_string(o->sandbox));
	json_object_set_new(labels, "sbx.service", json_string(o->service));
	if (o->owner)
		json_object_set_new(labels, SBX_DOCKER_OWNER_LABEL, json_string(o->owner));
	json_object_set_new(b, "Labels", labels);
	json_object_set_new(b, "HostConfig", host_config(o));
	json_t *pb = json_object_get(json_object_get(b, "HostConfig"), "PortBindings"), *exposed = json_object();
	const char *port;
	json_t *ignored;
	json_object_foreach(pb, port, ignored)
		json_object_set_new(exposed, port, json_object());
	json_object_set_new(b, "ExposedPorts", exposed);
	if (s->networks && s->networks[0] && !s->isolated) { /* its name (and the default's) resolve there */
		char net[300];
		sbx_docker_object_name(o->sandbox, s->networks[0], net, sizeof net);
		json_t *ep = json_object(), *cfg = json_object(), *aliases = json_array();
		json_array_append_new(aliases, json_string(o->service));
		json_object_set_new(cfg, "Aliases", aliases);
		json_object_set_new(ep, net, cfg);
		json_t *nc = json_object();
		json_object_set_new(nc, "EndpointsConfig", ep);
		json_object_set_new(b, "NetworkingConfig", nc);
	}
	json_t *health = sbx_docker_healthcheck(s);
	if (health)
		json_object_set_new(b, "Healthcheck", health);
	return b;
}

static int create(sbx_docker *d, const sbx_docker_start_opts *o, char *id, size_t id_len, char *err, size_t len)
{
	json_t *cfg = image_config(d, o->spec->box.image, err, len);
	if (!cfg)
		return -1;
	json_t *body = create_body(o, cfg), *out = NULL;
	json_decref(cfg);
	char path[300];
	snprintf(path, sizeof path, "/containers/create?name=sbx-%s-%s", o->sandbox, o->service);
	long st = sbx_docker_call(d, "POST", path, body, &out, 0, err, len);
	json_decref(body);
	const char *cid = json_string_value(json_object_get(out, "Id"));
	if (st == 201 && cid)
		snprintf(id, id_len, "%s", cid);
	json_decref(out);
	if (st == 409)
		snprintf(err + strlen(err), len - strlen(err), " (remove it: sbx down %s, or docker rm -f sbx-%s-%s)",
			 o->sandbox, o->sandbox, o->service);
	return st == 201 && cid ? 0 : -1;
}

/* The last lines a stopped container wrote (stdout and stderr), on one
 * line: Docker's log stream without a tty is frames of an 8-byte header
 * ([stream, 0, 0, 0, size as big-endian uint32]) and the payload. */
static void last_output(sbx_docker *d, const char *id, char *out, size_t len)
{
	char raw[4096], path[300], err[256];
	size_t n = 0, o = 0;
	snprintf(path, sizeof path, "/containers/%s/logs?stdout=true&stderr=true&tail=5", id);
	out[0] = 0;
	if (sbx_docker_get_raw(d, path, raw, sizeof raw, &n, err, sizeof err) != 200)
		return;
	for (size_t i = 0; i + 8 <= n && o + 1 < len;) {
		const unsigned char *h = (const unsigned char *)raw + i;
		size_t size = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
		for (size_t k = i + 8; k < i + 8 + size && k < n && o + 1 < len; k++)
			out[o++] = raw[k] == '\n' || raw[k] == '\r' ? ' ' : raw[k];
		i += 8 + size;
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = 0;
}

/* When the container has stopped: says so in err (exit code, last
 * output) and returns 1; else 0. */
static int explain_stopped(sbx_docker *d, const char *id, char *err, size_t len)
{
	char path[300], why[256], output[1024];
	snprintf(path, sizeof path, "/containers/%s/json", id);
	int stopped = 0, code = 0;
	/* Podman may say "running" or "stopped" for a moment after the command
	 * ended (its cleanup is asynchronous): ask again for up to a second. */
	for (int tries = 0; tries < 10 && !stopped; tries++) {
		json_t *j = NULL;
		long st = sbx_docker_call(d, "GET", path, NULL, &j, 0, why, sizeof why);
		json_t *state = json_object_get(j, "State");
		/* "exited", not "created": one that never started keeps the start's own error */
		const char *status = json_string_value(json_object_get(state, "Status"));
		stopped = st == 200 && status && !strcmp(status, "exited");
		code = (int)json_integer_value(json_object_get(state, "ExitCode"));
		int settling = st == 200 && status && (!strcmp(status, "running") || !strcmp(status, "stopping") ||
							 !strcmp(status, "stopped"));
		json_decref(j);
		if (!settling)
			break;
		if (!stopped)
			usleep(100000);
	}
	if (!stopped)
		return 0;
	last_output(d, id, output, sizeof output);
	snprintf(err, len, "its container stopped at start with exit code %d%s%s%s (its command must keep running: "
			   "give the service a command that does, e.g. [\"tail\", \"-f\", \"/dev/null\"])",
		 code, output[0] ? "; its output ends: \"" : "", output, output[0] ? "\"" : "");
	return 1;
}

/* The service's networks after its first (which create joined). */
static int connect_networks(sbx_docker *d, const sbx_docker_start_opts *o, const char *id, char *err, size_t len)
{
	for (size_t i = 1; o->spec->networks && !o->spec->isolated && o->spec->networks[i]; i++) {
		char net[300], path[400];
		sbx_docker_object_name(o->sandbox, o->spec->networks[i], net, sizeof net);
		snprintf(path, sizeof path, "/networks/%s/connect", net);
		json_t *b = json_object(), *cfg = json_object(), *aliases = json_array();
		json_array_append_new(aliases, json_string(o->service));
		json_object_set_new(cfg, "Aliases", aliases);
		json_object_set_new(b, "Container", json_string(id));
		json_object_set_new(b, "EndpointConfig", cfg);
		long st = sbx_docker_call(d, "POST", path, b, NULL, 0, err, len);
		json_decref(b);
		if (st != 200)
			return -1;
	}
	return 0;
}

int sbx_docker_container_start(sbx_docker *d, const sbx_docker_start_opts *o, char *id, size_t id_len, char *err,
			       size_t err_len)
{
	char path[300];
	id[0] = 0;
	if (!sbx_docker_agent_static(o->agent)) {
		snprintf(err, err_len,
			 "the agent %s is not a static executable, so it cannot run in an arbitrary image: point "
			 "SBX_AGENT at a static sbx-agent (make agent without SAN=1 builds one)",
			 o->agent);
		return -1;
	}
	if (create(d, o, id, id_len, err, err_len) < 0)
		return -1;
	int rc = connect_networks(d, o, id, err, err_len);
	snprintf(path, sizeof path, "/containers/%s/start", id);
	long st = rc < 0 ? 0 : sbx_docker_call(d, "POST", path, NULL, NULL, 0, err, err_len);
	rc = st == 204 || st == 304 ? 0 : -1;
	if (rc == 0)
		rc = sbx_docker_agent_start(d, id, o, err, err_len);
	if (rc == 0)
		rc = sbx_docker_wait_healthy(d, id, o->spec, err, err_len);
	if (rc < 0 && id[0])
		explain_stopped(d, id, err, err_len);
	if (rc < 0) {
		char ignored[256];
		sbx_docker_container_remove(d, id, ignored, sizeof ignored);
		id[0] = 0;
	}
	return rc;
}

int sbx_docker_container_remove(sbx_docker *d, const char *id, char *err, size_t err_len)
{
	char path[300];
	snprintf(path, sizeof path, "/containers/%s?force=true&v=true", id);
	long st = sbx_docker_call(d, "DELETE", path, NULL, NULL, 0, err, err_len);
	return st == 204 || st == 404 ? 0 : -1;
}

int sbx_docker_container_status(sbx_docker *d, const char *id, char *status, size_t len, int *pid, char *err,
				size_t err_len)
{
	char path[300];
	snprintf(path, sizeof path, "/containers/%s/json", id);
	json_t *j = NULL;
	long st = sbx_docker_call(d, "GET", path, NULL, &j, 0, err, err_len);
	json_t *state = json_object_get(j, "State");
	const char *s = json_string_value(json_object_get(state, "Status"));
	snprintf(status, len, "%s", st == 404 ? "gone" : s ? s : "unknown");
	*pid = (int)json_integer_value(json_object_get(state, "Pid"));
	json_decref(j);
	return st == 200 || st == 404 ? 0 : -1;
}

int sbx_docker_container_list(sbx_docker *d, const char *sandbox, char ids[][80], int max, char *err,
			      size_t err_len)
{
	char filter[300];
	snprintf(filter, sizeof filter, "{\"label\":[\"%s%s%s\"]}", SBX_DOCKER_LABEL, sandbox ? "=" : "",
		 sandbox ? sandbox : "");
	char *q = sbx_curl()->easy_escape(NULL, filter, 0);
	char path[600];
	snprintf(path, sizeof path, "/containers/json?all=true&filters=%s", q ? q : "");
	sbx_curl()->free(q);
	json_t *j = NULL;
	long st = sbx_docker_call(d, "GET", path, NULL, &j, 0, err, err_len);
	int n = 0;
	for (size_t i = 0; st == 200 && i < json_array_size(j) && n < max; i++) {
		const char *id = json_string_value(json_object_get(json_array_get(j, i), "Id"));
		if (id)
			snprintf(ids[n++], 80, "%.79s", id);
	}
	json_decref(j);
	return st == 200 ? n : -1;
}

/* Adds the sandbox label's value of each item of list (at key) not yet in
 * the *names array of n (grown as needed). The new count, or -1. */
static int add_names(json_t *list, const char *key, char (**names)[64], int n, size_t *cap)
{
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *labels = json_object_get(json_object_get(json_array_get(list, i), key), SBX_DOCKER_LABEL);
		const char *name = json_string_value(labels);
		int seen = !name || strlen(name) >= 64;
		for (int k = 0; k < n && !seen; k++)
			seen = !strcmp((*names)[k], name);
		if (seen)
			continue;
		if ((size_t)n == *cap) {
			size_t grown = *cap ? 2 * *cap : 64;
			char(*more)[64] = realloc(*names, grown * sizeof *more);
			if (!more)
				return -1;
			*names = more;
			*cap = grown;
		}
		snprintf((*names)[n++], 64, "%s", name);
	}
	return n;
}

int sbx_docker_owned(sbx_docker *d, const char *owner, char (**names)[64], char *err, size_t err_len)
{
	size_t cap = 0;
	*names = NULL;
	static const char *const kinds[] = {"/containers/json?all=true&", "/networks?", "/volumes?"};
	char filter[4400];
	snprintf(filter, sizeof filter, "{\"label\":[\"%s=%s\"]}", SBX_DOCKER_OWNER_LABEL, owner);
	char *q = sbx_curl()->easy_escape(NULL, filter, 0);
	int n = 0;
	for (int k = 0; k < 3 && n >= 0; k++) {
		char path[9000];
		snprintf(path, sizeof path, "%sfilters=%s", kinds[k], q ? q : "");
		json_t *j = NULL;
		if (sbx_docker_call(d, "GET", path, NULL, &j, 0, err, err_len) != 200)
			n = -1;
		else if ((n = add_names(k == 2 ? json_object_get(j, "Volumes") : j, "Labels", names, n, &cap)) < 0)
			snprintf(err, err_len, "out of memory");
		json_decref(j);
	}
	sbx_curl()->free(q);
	if (n < 0) {
		free(*names);
		*names = NULL;
	}
	return n;
}
