/* health.c — healthchecks (health.h): Docker runs the check itself
 * (State.Health); sbx polls the container's state until it is healthy.
 * Podman's service runs checks only from systemd timers, which a service
 * started by hand has not: there sbx asks it to run the check
 * (GET /v4.0.0/libpod/containers/ID/healthcheck) once per interval. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backends/docker/health.h"

#define NS 1000000000.0

json_t *sbx_docker_healthcheck(const sbx_docker_service *s)
{
	if (!s->health)
		return NULL;
	json_t *test = json_array();
	char **argv = s->health;
	if (argv[0] && argv[1] && argv[2] && !argv[3] && !strcmp(argv[0], "sh") && !strcmp(argv[1], "-c")) {
		/* a compose CMD-SHELL check: sent as one, since Podman re-splits
		 * a CMD's arguments at spaces */
		json_array_append_new(test, json_string("CMD-SHELL"));
		json_array_append_new(test, json_string(argv[2]));
	} else {
		json_array_append_new(test, json_string("CMD"));
		for (size_t i = 0; argv[i]; i++)
			json_array_append_new(test, json_string(argv[i]));
	}
	json_t *h = json_object();
	json_object_set_new(h, "Test", test);
	if (s->health_interval > 0)
		json_object_set_new(h, "Interval", json_integer((json_int_t)(s->health_interval * NS)));
	if (s->health_timeout > 0)
		json_object_set_new(h, "Timeout", json_integer((json_int_t)(s->health_timeout * NS)));
	if (s->health_start > 0)
		json_object_set_new(h, "StartPeriod", json_integer((json_int_t)(s->health_start * NS)));
	if (s->health_retries > 0)
		json_object_set_new(h, "Retries", json_integer(s->health_retries));
	return h;
}

/* How long a check may take to settle: its start period and every retry
 * (Docker's defaults: 30 s apart, 30 s each, 3 tries), plus a minute. */
static double patience_s(const sbx_docker_service *s)
{
	double interval = s->health_interval > 0 ? s->health_interval : 30;
	double timeout = s->health_timeout > 0 ? s->health_timeout : 30;
	int retries = s->health_retries > 0 ? s->health_retries : 3;
	return s->health_start + (retries + 1) * (interval + timeout) + 60;
}

/* The output of the last check in State.Health.Log, on one line. */
static void last_check(json_t *health, char *out, size_t len)
{
	json_t *log = json_object_get(health, "Log");
	const char *text = json_string_value(json_object_get(json_array_get(log, json_array_size(log) - 1), "Output"));
	snprintf(out, len, "%s", text ? text : "");
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	size_t n = strlen(out);
	while (n && out[n - 1] == ' ')
		out[--n] = 0;
}

/* 1 healthy, 0 starting, -1 with err (unhealthy, stopped, no answer). */
static int poll_health(sbx_docker *d, const char *id, char *err, size_t len)
{
	char path[300], output[1024];
	snprintf(path, sizeof path, "/containers/%s/json", id);
	json_t *j = NULL;
	if (sbx_docker_call(d, "GET", path, NULL, &j, 0, err, len) != 200) {
		json_decref(j);
		return -1;
	}
	json_t *state = json_object_get(j, "State"), *health = json_object_get(state, "Health");
	const char *status = json_string_value(json_object_get(health, "Status"));
	int rc = status && !strcmp(status, "healthy") ? 1 : 0;
	if (!json_is_true(json_object_get(state, "Running"))) {
		snprintf(err, len, "its container stopped while its healthcheck was starting (exit code %d)",
			 (int)json_integer_value(json_object_get(state, "ExitCode")));
		rc = -1;
	} else if (status && !strcmp(status, "unhealthy")) {
		last_check(health, output, sizeof output);
		snprintf(err, len, "it is unhealthy: its healthcheck failed%s%s%s", output[0] ? ": \"" : "", output,
			 output[0] ? "\"" : "");
		rc = -1;
	}
	json_decref(j);
	return rc;
}

int sbx_docker_wait_healthy(sbx_docker *d, const char *id, const sbx_docker_service *s, char *err, size_t err_len)
{
	if (!s->health)
		return 0;
	double waited = 0, limit = patience_s(s), next_run = 0;
	double interval = s->health_interval > 0 ? s->health_interval : 30;
	int podman = sbx_docker_is_podman(d);
	for (;;) {
		if (podman && waited >= next_run) {
			char path[300], ignored[256];
			snprintf(path, sizeof path, "/v4.0.0/libpod/containers/%s/healthcheck", id);
			sbx_docker_call(d, "GET", path, NULL, NULL, 0, ignored, sizeof ignored);
			next_run = waited + interval;
		}
		int rc = poll_health(d, id, err, err_len);
		if (rc != 0)
			return rc > 0 ? 0 : -1;
		if (waited >= limit) {
			snprintf(err, err_len, "its healthcheck still says 'starting' after %.0f s", waited);
			return -1;
		}
		usleep(200000);
		waited += 0.2;
	}
}
