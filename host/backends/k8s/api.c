/* api.c — Kubernetes API calls (pods, events, watches) over http.h, and
 * the diagnosis of pods that are not ready.
 *
 * Owns the copied connection settings, one sbx_http for all calls, the
 * translation of the API server's Status replies into sbx_error values, and
 * the line splitting of watch streams (one JSON event per line, bounded). */
#include "backends/k8s/api.h"

#include "net/curl_lib.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "core/internal.h"

#define MAX_LIST_BODY (64u * 1024 * 1024)
#define MAX_WATCH_LINE (8u * 1024 * 1024)
#define REQUEST_TIMEOUT_S 60

typedef struct get_req {
	sbx_k8s_api *a;
	struct get_req *next, *prev;
	sbx_http_call *call;
	sbx_k8s_json_cb cb;
	void *ud;
	char *url;
} get_req;

struct sbx_k8s_watch {
	sbx_k8s_api *a;
	sbx_k8s_watch *next, *prev;
	sbx_http_call *call;
	sbx_k8s_watch_opts o;
	char *url;
	sbx_buf line;
	int busy, cancelled;
	sbx_error failure;     /* a bad event line stopped the watch */
};

struct sbx_k8s_api {
	sbx_loop *loop;
	sbx_http *http;
	char *server, *ca, *cert, *key, *auth, *server_name, *proxy;
	int insecure;
	get_req *gets;
	sbx_k8s_watch *watches;
};

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

sbx_loop *sbx_k8s_api_loop(const sbx_k8s_api *a)
{
	return a->loop;
}

sbx_k8s_api *sbx_k8s_api_new(sbx_loop *loop, const sbx_k8s_conn *k, sbx_error *err)
{
	if (!k || !k->server || !k->server[0]) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid",
			      "no Kubernetes API server given (the kubeconfig's cluster.server)");
		return NULL;
	}
	sbx_k8s_api *a = calloc(1, sizeof *a);
	if (!a)
		goto oom;
	a->loop = loop;
	a->http = sbx_http_new(loop);
	a->server = strdup(k->server);
	size_t sl = a->server ? strlen(a->server) : 0;
	while (sl > 0 && a->server[sl - 1] == '/')
		a->server[--sl] = 0;
	a->ca = dup_or_null(k->ca_pem);
	a->cert = dup_or_null(k->client_cert_pem);
	a->key = dup_or_null(k->client_key_pem);
	a->server_name = dup_or_null(k->tls_server_name);
	a->proxy = dup_or_null(k->proxy_url);
	a->insecure = k->insecure;
	if (k->token && k->token[0]) {
		size_t n = strlen(k->token) + 32;
		a->auth = malloc(n);
		if (a->auth)
			snprintf(a->auth, n, "Authorization: Bearer %s", k->token);
	}
	if (!a->http || !a->server || (k->token && k->token[0] && !a->auth)) {
		sbx_k8s_api_free(a);
		goto oom;
	}
	return a;
oom:
	sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
	return NULL;
}

static void watch_free(sbx_k8s_watch *w);

void sbx_k8s_api_free(sbx_k8s_api *a)
{
	if (!a)
		return;
	sbx_http_free(a->http); /* no on_done runs after this */
	while (a->gets) {
		get_req *g = a->gets;
		a->gets = g->next;
		free(g->url);
		free(g);
	}
	while (a->watches)
		watch_free(a->watches);
	free(a->server);
	free(a->ca);
	free(a->cert);
	free(a->key);
	free(a->auth);
	free(a->server_name);
	free(a->proxy);
	free(a);
}

/* ---------------------------------------------------------------- requests */

static sbx_http_request base_request(sbx_k8s_api *a, const char *url, const char **headers)
{
	headers[0] = "Accept: application/json";
	headers[1] = a->auth;
	headers[2] = NULL;
	return (sbx_http_request){
		.url = url,
		.headers = headers,
		.tls = {.ca_pem = a->ca, .cert_pem = a->cert, .key_pem = a->key, .server_name = a->server_name,
			.proxy = a->proxy, .insecure = a->insecure},
		.max_body = MAX_LIST_BODY,
	};
}

/* A non-2xx reply: the Status message when there is one. */
static void api_error(sbx_error *e, const char *method, const char *url, const sbx_http_response *r)
{
	const char *code = r->status == 404 ? "not_found"
			   : r->status == 401 || r->status == 403 ? "denied"
			   : r->status == 410 ? "gone"
			   : "api";
	json_t *st = json_loadb((const char *)r->body, r->body_len, 0, NULL);
	const char *msg = st ? json_string_value(json_object_get(st, "message")) : NULL;
	const char *reason = st ? json_string_value(json_object_get(st, "reason")) : NULL;
	sbx_status s = r->status == 401 || r->status == 403 ? SBX_E_CONN : SBX_E_REMOTE;
	int eno = r->status == 404 ? ENOENT : r->status == 401 || r->status == 403 ? EACCES : EIO;
	if (msg)
		sbx_error_set(e, s, eno, code, "%s %s: HTTP %ld %s: %s", method, url, r->status, reason ? reason : "",
			      msg);
	else
		sbx_error_set(e, s, eno, code, "%s %s: HTTP %ld: %.200s", method, url, r->status, (const char *)r->body);
	json_decref(st);
}

static void get_done(void *ud, sbx_http_response *r)
{
	get_req *g = ud;
	sbx_k8s_api *a = g->a;
	if (g->prev)
		g->prev->next = g->next;
	else
		a->gets = g->next;
	if (g->next)
		g->next->prev = g->prev;
	sbx_error e = {0};
	json_t *obj = NULL;
	if (r->error.status != SBX_OK) {
		e = r->error;
	} else if (r->status < 200 || r->status >= 300) {
		api_error(&e, "GET", g->url, r);
	} else {
		json_error_t jerr;
		obj = json_loadb((const char *)r->body, r->body_len, 0, &jerr);
		if (!obj)
			sbx_error_set(&e, SBX_E_REMOTE, EPROTO, "api", "GET %s: the response is not JSON: %s", g->url,
				      jerr.text);
	}
	g->cb(g->ud, obj, obj ? NULL : &e);
	json_decref(obj);
	free(g->url);
	free(g);
}

int sbx_k8s_get(sbx_k8s_api *a, const char *path, sbx_k8s_json_cb cb, void *ud, sbx_error *err)
{
	get_req *g = calloc(1, sizeof *g);
	size_t n = strlen(a->server) + strlen(path) + 1;
	char *url = malloc(n);
	if (!g || !url) {
		free(g);
		free(url);
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return -1;
	}
	snprintf(url, n, "%s%s", a->server, path);
	g->a = a;
	g->cb = cb;
	g->ud = ud;
	g->url = url;
	const char *headers[3];
	sbx_http_request rq = base_request(a, url, headers);
	rq.timeout_s = REQUEST_TIMEOUT_S;
	rq.on_done = get_done;
	rq.ud = g;
	g->call = sbx_http_start(a->http, &rq, err);
	if (!g->call) {
		free(url);
		free(g);
		return -1;
	}
	g->next = a->gets;
	if (g->next)
		g->next->prev = g;
	a->gets = g;
	return 0;
}

/* Appends "&key=escaped(value)" (or "?..." first) when value is set. */
static void add_param(char *path, size_t len, const char *key, const char *value)
{
	if (!value || !value[0])
		return;
	char *e = sbx_curl()->easy_escape(NULL, value, 0);
	size_t n = strlen(path);
	snprintf(path + n, len - n, "%s%s=%s", strchr(path, '?') ? "&" : "?", key, e ? e : "");
	sbx_curl()->free(e);
}

static void ns_path(char *path, size_t len, const char *ns, const char *resource)
{
	if (ns) {
		char *e = sbx_curl()->easy_escape(NULL, ns, 0);
		snprintf(path, len, "/api/v1/namespaces/%s/%s", e ? e : "", resource);
		sbx_curl()->free(e);
	} else {
		snprintf(path, len, "/api/v1/%s", resource);
	}
}

int sbx_k8s_list_pods(sbx_k8s_api *a, const char *ns, const char *selector, sbx_k8s_json_cb cb, void *ud,
		      sbx_error *err)
{
	char path[2048];
	ns_path(path, sizeof path, ns, "pods");
	add_param(path, sizeof path, "labelSelector", selector);
	return sbx_k8s_get(a, path, cb, ud, err);
}

int sbx_k8s_get_pod(sbx_k8s_api *a, const char *ns, const char *name, sbx_k8s_json_cb cb, void *ud,
		    sbx_error *err)
{
	char path[2048];
	char *e = sbx_curl()->easy_escape(NULL, name, 0);
	char res[600];
	snprintf(res, sizeof res, "pods/%s", e ? e : "");
	sbx_curl()->free(e);
	ns_path(path, sizeof path, ns ? ns : "default", res);
	return sbx_k8s_get(a, path, cb, ud, err);
}

int sbx_k8s_list_events(sbx_k8s_api *a, const char *ns, const char *name, sbx_k8s_json_cb cb, void *ud,
			sbx_error *err)
{
	char path[2048], sel[600];
	ns_path(path, sizeof path, ns ? ns : "default", "events");
	if (name) {
		snprintf(sel, sizeof sel, "involvedObject.name=%s", name);
		add_param(path, sizeof path, "fieldSelector", sel);
	}
	return sbx_k8s_get(a, path, cb, ud, err);
}

/* ---------------------------------------------------------------- watches */

static void watch_unlink(sbx_k8s_watch *w)
{
	sbx_k8s_api *a = w->a;
	if (w->prev)
		w->prev->next = w->next;
	else if (a->watches == w)
		a->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
}

static void watch_free(sbx_k8s_watch *w)
{
	watch_unlink(w);
	sbx_buf_free(&w->line);
	free(w->url);
	free(w);
}

/* One line of the stream: {"type": ..., "object": {...}}. 0, or -1 when
 * the line is not an event (w->failure says why). */
static int watch_line(sbx_k8s_watch *w, const char *p, size_t n)
{
	json_error_t jerr;
	json_t *ev = json_loadb(p, n, 0, &jerr);
	const char *type = ev ? json_string_value(json_object_get(ev, "type")) : NULL;
	json_t *obj = ev ? json_object_get(ev, "object") : NULL;
	if (!type || !json_is_object(obj)) {
		sbx_error_set(&w->failure, SBX_E_REMOTE, EPROTO, "api", "watch %s: not a watch event: %.120s", w->url, p);
		json_decref(ev);
		return -1;
	}
	if (strcmp(type, "ERROR") == 0) {
		const char *msg = json_string_value(json_object_get(obj, "message"));
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		sbx_error_set(&w->failure, SBX_E_REMOTE, code == 410 ? ESTALE : EIO, code == 410 ? "gone" : "api",
			      "watch %s: %s", w->url, msg ? msg : "the server ended the watch with an error");
		json_decref(ev);
		return -1;
	}
	w->o.on_event(w->o.ud, type, obj);
	json_decref(ev);
	return 0;
}

static int watch_body(void *ud, const uint8_t *p, size_t n)
{
	sbx_k8s_watch *w = ud;
	if (sbx_buf_append(&w->line, p, n) < 0)
		return 1;
	w->busy++;
	int stop = 0;
	while (!stop && !w->cancelled) {
		uint8_t *head = sbx_buf_head(&w->line);
		uint8_t *nl = memchr(head, '\n', sbx_buf_size(&w->line));
		if (!nl) {
			if (sbx_buf_size(&w->line) > MAX_WATCH_LINE) {
				sbx_error_set(&w->failure, SBX_E_LIMIT, EFBIG, "too_large",
					      "watch %s: an event is larger than %u bytes", w->url, MAX_WATCH_LINE);
				stop = 1;
			}
			break;
		}
		size_t len = (size_t)(nl - head);
		if (len > 0 && watch_line(w, (const char *)head, len) < 0)
			stop = 1;
		sbx_buf_consume(&w->line, len + 1);
	}
	w->busy--;
	if (w->cancelled) {
		watch_free(w); /* cancelled from on_event: the call is already cancelled */
		return 1;
	}
	return stop;
}

static void watch_done(void *ud, sbx_http_response *r)
{
	sbx_k8s_watch *w = ud;
	sbx_error e = {0};
	const sbx_error *err = NULL;
	if (w->failure.status != SBX_OK) {
		err = &w->failure;
	} else if (r->error.status != SBX_OK) {
		e = r->error;
		err = &e;
	} else if (r->status < 200 || r->status >= 300) {
		api_error(&e, "watch", w->url, r);
		err = &e;
	}
	void (*on_end)(void *, const sbx_error *) = w->o.on_end;
	void *wud = w->o.ud;
	watch_free(w);
	if (on_end)
		on_end(wud, err);
}

sbx_k8s_watch *sbx_k8s_watch_pods(sbx_k8s_api *a, const sbx_k8s_watch_opts *o, sbx_error *err)
{
	char path[2048], num[32];
	ns_path(path, sizeof path, o->ns, "pods");
	add_param(path, sizeof path, "watch", "true");
	add_param(path, sizeof path, "labelSelector", o->selector);
	add_param(path, sizeof path, "resourceVersion", o->resource_version);
	if (o->timeout_s > 0) {
		snprintf(num, sizeof num, "%d", o->timeout_s);
		add_param(path, sizeof path, "timeoutSeconds", num);
	}
	sbx_k8s_watch *w = calloc(1, sizeof *w);
	size_t n = strlen(a->server) + strlen(path) + 1;
	if (!w || !(w->url = malloc(n))) {
		free(w);
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	snprintf(w->url, n, "%s%s", a->server, path);
	w->a = a;
	w->o = *o;
	const char *headers[3];
	sbx_http_request rq = base_request(a, w->url, headers);
	rq.on_body = watch_body;
	rq.on_done = watch_done;
	rq.ud = w;
	w->call = sbx_http_start(a->http, &rq, err);
	if (!w->call) {
		free(w->url);
		free(w);
		return NULL;
	}
	w->next = a->watches;
	if (w->next)
		w->next->prev = w;
	a->watches = w;
	return w;
}

void sbx_k8s_watch_cancel(sbx_k8s_watch *w)
{
	if (!w || w->cancelled)
		return;
	w->cancelled = 1;
	sbx_http_cancel(w->call);
	if (!w->busy)
		watch_free(w);
}

/* ---------------------------------------------------------------- diagnosis */

static const char *str_at(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);
	if (b)
		v = json_object_get(v, b);
	return json_string_value(v);
}

static void appendf(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void appendf(char *out, size_t len, const char *fmt, ...)
{
	size_t n = strlen(out);
	if (n >= len - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out + n, len - n, fmt, ap);
	va_end(ap);
}

static void describe_containers(json_t *statuses, const char *kind, char *out, size_t len)
{
	size_t i;
	json_t *c;
	json_array_foreach(statuses, i, c)
	{
		const char *name = str_at(c, "name", NULL);
		json_t *state = json_object_get(c, "state");
		json_t *waiting = json_object_get(state, "waiting");
		json_t *term = json_object_get(state, "terminated");
		json_t *last = json_object_get(json_object_get(c, "lastState"), "terminated");
		if (waiting) {
			const char *reason = str_at(waiting, "reason", NULL);
			const char *msg = str_at(waiting, "message", NULL);
			appendf(out, len, "; %s %s is waiting: %s", kind, name ? name : "?", reason ? reason : "?");
			if (msg)
				appendf(out, len, " (%s)", msg);
			if (last)
				appendf(out, len, ", last exit code %lld",
					(long long)json_integer_value(json_object_get(last, "exitCode")));
		} else if (term) {
			const char *reason = str_at(term, "reason", NULL);
			appendf(out, len, "; %s %s terminated: %s, exit code %lld", kind, name ? name : "?",
				reason ? reason : "?", (long long)json_integer_value(json_object_get(term, "exitCode")));
		} else if (!json_is_true(json_object_get(c, "ready")) && strcmp(kind, "container") == 0) {
			appendf(out, len, "; %s %s is running but not ready", kind, name ? name : "?");
		}
	}
}

void sbx_k8s_pod_diagnosis(json_t *pod, json_t *events, char *out, size_t len)
{
	out[0] = 0;
	if (len < 2)
		return;
	json_t *status = json_object_get(pod, "status");
	const char *phase = str_at(status, "phase", NULL);
	int ready = 0;
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(status, "conditions"), i, c)
	{
		const char *type = str_at(c, "type", NULL), *st = str_at(c, "status", NULL);
		if (type && st && strcmp(type, "Ready") == 0 && strcmp(st, "True") == 0)
			ready = 1;
	}
	if (phase && strcmp(phase, "Running") == 0 && ready)
		return;
	appendf(out, len, "pod %s/%s is %s%s", str_at(pod, "metadata", "namespace") ? str_at(pod, "metadata", "namespace") : "?",
		str_at(pod, "metadata", "name") ? str_at(pod, "metadata", "name") : "?", phase ? phase : "in no phase",
		phase && strcmp(phase, "Running") == 0 ? " but not ready" : "");
	json_array_foreach(json_object_get(status, "conditions"), i, c)
	{
		const char *type = str_at(c, "type", NULL), *st = str_at(c, "status", NULL);
		if (type && st && strcmp(type, "PodScheduled") == 0 && strcmp(st, "False") == 0) {
			const char *reason = str_at(c, "reason", NULL), *msg = str_at(c, "message", NULL);
			appendf(out, len, "; not scheduled: %s%s%s", reason ? reason : "", msg ? ": " : "", msg ? msg : "");
		}
	}
	describe_containers(json_object_get(status, "initContainerStatuses"), "init container", out, len);
	describe_containers(json_object_get(status, "containerStatuses"), "container", out, len);
	int shown = 0;
	json_array_foreach(json_object_get(events, "items"), i, c)
	{
		const char *type = str_at(c, "type", NULL);
		if (!type || strcmp(type, "Warning") != 0 || shown >= 5)
			continue;
		const char *reason = str_at(c, "reason", NULL), *msg = str_at(c, "message", NULL);
		appendf(out, len, "%s%s: %s", shown ? "; " : "; events: ", reason ? reason : "?", msg ? msg : "");
		shown++;
	}
}
