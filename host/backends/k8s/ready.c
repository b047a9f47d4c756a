/* ready.c — a watch on a release's pods until each service has a ready
 * pod, a pod is stuck (then its events are fetched for the diagnosis), or
 * the time is up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ready.h"

#define DEFAULT_TIMEOUT_MS 600000

struct sbx_k8s_ready {
	sbx_k8s_api *api;
	sbx_loop *loop;
	char *ns, *release, *selector;
	char **services;
	sbx_k8s_watch *watch;
	sbx_timer *timer;
	json_t *pods;          /* name -> pod, as the watch last saw them */
	char rv[64];           /* the last resourceVersion seen, to resume a watch */
	int timeout_ms;
	int diagnosing;        /* an events request is in flight */
	int cancelled;         /* cancelled while diagnosing: free when it answers */
	sbx_error pending;     /* the error the diagnosis will complete */
	char stuck_pod[256];   /* the pod being diagnosed */
	void (*on_done)(void *ud, json_t *pods, const sbx_error *err);
	void *ud;
};

static const char *str_at(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);
	if (b)
		v = json_object_get(v, b);
	return json_string_value(v);
}

int sbx_k8s_pod_is_ready(json_t *pod)
{
	json_t *meta = json_object_get(pod, "metadata"), *status = json_object_get(pod, "status");
	if (json_object_get(meta, "deletionTimestamp") || !str_at(status, "phase", NULL) ||
	    strcmp(str_at(status, "phase", NULL), "Running") != 0)
		return 0;
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(status, "conditions"), i, c)
	{
		const char *type = str_at(c, "type", NULL), *st = str_at(c, "status", NULL);
		if (type && st && strcmp(type, "Ready") == 0)
			return strcmp(st, "True") == 0;
	}
	return 0;
}

static const char *const STUCK_REASONS[] = {"ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
					    "CrashLoopBackOff", "CreateContainerConfigError", NULL};

static int stuck_container(json_t *statuses, char *why, size_t len)
{
	size_t i;
	json_t *cs;
	json_array_foreach(statuses, i, cs)
	{
		const char *reason = str_at(json_object_get(cs, "state"), "waiting", "reason");
		for (size_t k = 0; reason && STUCK_REASONS[k]; k++)
			if (strcmp(reason, STUCK_REASONS[k]) == 0) {
				snprintf(why, len, "container %s: %s", str_at(cs, "name", NULL) ? str_at(cs, "name", NULL) : "?",
					 reason);
				return 1;
			}
	}
	return 0;
}

int sbx_k8s_pod_is_stuck(json_t *pod, char *why, size_t len)
{
	json_t *status = json_object_get(pod, "status");
	const char *phase = str_at(status, "phase", NULL);
	if (phase && strcmp(phase, "Failed") == 0) {
		snprintf(why, len, "phase Failed");
		return 1;
	}
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(status, "conditions"), i, c)
	{
		const char *type = str_at(c, "type", NULL), *reason = str_at(c, "reason", NULL);
		if (type && reason && strcmp(type, "PodScheduled") == 0 && strcmp(reason, "Unschedulable") == 0) {
			snprintf(why, len, "Unschedulable");
			return 1;
		}
	}
	return stuck_container(json_object_get(status, "initContainerStatuses"), why, len) ||
	       stuck_container(json_object_get(status, "containerStatuses"), why, len);
}

/* ---- ending ------------------------------------------------------------------------------ */

static void ready_free(sbx_k8s_ready *r)
{
	if (r->watch)
		sbx_k8s_watch_cancel(r->watch);
	if (r->timer)
		sbx_timer_cancel(r->loop, r->timer);
	for (size_t i = 0; r->services && r->services[i]; i++)
		free(r->services[i]);
	free(r->services);
	json_decref(r->pods);
	free(r->ns);
	free(r->release);
	free(r->selector);
	free(r);
}

static void stop_watching(sbx_k8s_ready *r)
{
	if (r->watch)
		sbx_k8s_watch_cancel(r->watch);
	r->watch = NULL;
	if (r->timer)
		sbx_timer_cancel(r->loop, r->timer);
	r->timer = NULL;
}

static void finish(sbx_k8s_ready *r, json_t *pods, const sbx_error *err)
{
	stop_watching(r);
	r->on_done(r->ud, pods, err);
	ready_free(r);
}

static void on_events(void *ud, json_t *events, const sbx_error *err)
{
	sbx_k8s_ready *r = ud;
	(void)err; /* no events: the diagnosis says what the pod's status says */
	r->diagnosing = 0;
	if (r->cancelled) {
		ready_free(r);
		return;
	}
	char diag[400];
	json_t *pod = json_object_get(r->pods, r->stuck_pod);
	sbx_k8s_pod_diagnosis(pod, events, diag, sizeof diag);
	sbx_error e = r->pending;
	snprintf(e.message, sizeof e.message, "release %s: %s", r->release, diag[0] ? diag : "pod not ready");
	finish(r, NULL, &e);
}

static void fetch_events(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_k8s_ready *r = ud;
	sbx_error e;
	if (r->cancelled || sbx_k8s_list_events(r->api, r->ns, r->stuck_pod, on_events, r, &e) < 0)
		on_events(r, NULL, &e);
}

/* Fails with the diagnosis of pod `name` once its events are in. The
 * request starts from the loop, not from inside the watch's callback
 * (where the HTTP client cannot take a new request). */
static void fail_with_pod(sbx_k8s_ready *r, const char *name, sbx_status st)
{
	stop_watching(r);
	sbx_error_set(&r->pending, st, 0, "not_ready", "not ready");
	snprintf(r->stuck_pod, sizeof r->stuck_pod, "%s", name);
	r->diagnosing = 1;
	sbx_loop_defer(r->loop, fetch_events, r);
}

/* ---- watching ---------------------------------------------------------------------------- */

static json_t *pod_of_service(sbx_k8s_ready *r, const char *service, int want_ready)
{
	const char *name;
	json_t *pod, *any = NULL;
	json_object_foreach(r->pods, name, pod)
	{
		const char *svc = str_at(json_object_get(pod, "metadata"), "labels", "inspect/service");
		if (!svc || strcmp(svc, service) != 0)
			continue;
		if (sbx_k8s_pod_is_ready(pod))
			return pod;
		any = pod;
	}
	return want_ready ? NULL : any;
}

static void check(sbx_k8s_ready *r)
{
	const char *name;
	json_t *pod;
	json_object_foreach(r->pods, name, pod)
	{
		char why[200];
		if (sbx_k8s_pod_is_stuck(pod, why, sizeof why)) {
			fail_with_pod(r, name, SBX_E_REMOTE);
			return;
		}
	}
	json_t *ready = json_object();
	for (size_t i = 0; r->services[i]; i++) {
		json_t *p = pod_of_service(r, r->services[i], 1);
		if (!p) {
			json_decref(ready);
			return;
		}
		json_object_set(ready, r->services[i], p);
	}
	finish(r, ready, NULL);
	json_decref(ready);
}

static void on_timeout(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_k8s_ready *r = ud;
	r->timer = NULL;
	for (size_t i = 0; r->services[i]; i++) {
		if (pod_of_service(r, r->services[i], 1))
			continue;
		json_t *pod = pod_of_service(r, r->services[i], 0);
		if (pod) {
			fail_with_pod(r, str_at(pod, "metadata", "name"), SBX_E_TIMEOUT);
			return;
		}
		sbx_error e;
		sbx_error_set(&e, SBX_E_TIMEOUT, 0, "not_ready",
			      "release %s: no pod of service '%s' appeared in namespace %s within %d s (selector %s)",
			      r->release, r->services[i], r->ns, r->timeout_ms / 1000, r->selector);
		finish(r, NULL, &e);
		return;
	}
}

static int start_watch(sbx_k8s_ready *r, sbx_error *err);

static void on_pod_event(void *ud, const char *type, json_t *pod)
{
	sbx_k8s_ready *r = ud;
	const char *name = str_at(pod, "metadata", "name"), *rv = str_at(pod, "metadata", "resourceVersion");
	if (rv)
		snprintf(r->rv, sizeof r->rv, "%s", rv);
	if (!name || strcmp(type, "BOOKMARK") == 0)
		return;
	if (strcmp(type, "DELETED") == 0)
		json_object_del(r->pods, name);
	else
		json_object_set(r->pods, name, pod);
	check(r);
}

static void on_watch_end(void *ud, const sbx_error *err)
{
	sbx_k8s_ready *r = ud;
	r->watch = NULL;
	sbx_error e;
	if (err && strcmp(err->code, "gone") == 0) { /* too old to resume: start over */
		r->rv[0] = 0;
		json_object_clear(r->pods);
	} else if (err) {
		e = *err;
		char msg[sizeof e.message];
		snprintf(msg, sizeof msg, "%s", err->message);
		snprintf(e.message, sizeof e.message, "release %.30s: watching its pods failed: %.400s", r->release, msg);
		finish(r, NULL, &e);
		return;
	}
	if (start_watch(r, &e) < 0)
		finish(r, NULL, &e);
}

static int start_watch(sbx_k8s_ready *r, sbx_error *err)
{
	sbx_k8s_watch_opts w = {.ns = r->ns, .selector = r->selector, .resource_version = r->rv[0] ? r->rv : NULL,
				.on_event = on_pod_event, .on_end = on_watch_end, .ud = r};
	r->watch = sbx_k8s_watch_pods(r->api, &w, err);
	return r->watch ? 0 : -1;
}

static char *dup_or_die(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

sbx_k8s_ready *sbx_k8s_wait_ready(sbx_k8s_api *a, const sbx_k8s_ready_opts *o, sbx_error *err)
{
	if (!o->ns || !o->release || !o->services || !o->services[0] || !o->on_done) {
		sbx_error_set(err, SBX_E_INVALID, 0, "invalid", "waiting for pods needs a namespace, a release, "
								 "at least one service and on_done");
		return NULL;
	}
	sbx_k8s_ready *r = calloc(1, sizeof *r);
	if (!r)
		abort();
	r->api = a;
	r->loop = sbx_k8s_api_loop(a);
	r->ns = dup_or_die(o->ns);
	r->release = dup_or_die(o->release);
	size_t n = 0;
	while (o->services[n])
		n++;
	if (!(r->services = calloc(n + 1, sizeof *r->services)))
		abort();
	for (size_t i = 0; i < n; i++)
		r->services[i] = dup_or_die(o->services[i]);
	char sel[300];
	snprintf(sel, sizeof sel, "app.kubernetes.io/instance=%s,inspect/service", o->release);
	r->selector = dup_or_die(sel);
	r->pods = json_object();
	r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	r->on_done = o->on_done;
	r->ud = o->ud;
	if (start_watch(r, err) < 0) {
		ready_free(r);
		return NULL;
	}
	r->timer = sbx_loop_timer(r->loop, (uint64_t)r->timeout_ms, on_timeout, r);
	return r;
}

void sbx_k8s_ready_cancel(sbx_k8s_ready *r)
{
	if (!r)
		return;
	if (r->diagnosing) {
		r->cancelled = 1;
		return;
	}
	ready_free(r);
}
