/* sandbox.c — a Kubernetes sandbox's whole life on the caller's loop
 * (see sandbox.h): kubeconfig, helm install, readiness, agent injection,
 * sessions; helm uninstall. Each step starts one asynchronous piece; its
 * callback moves to the next step or to fail(). The blocking forms run the
 * same machine on a private loop. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/progress.h"
#include "api.h"
#include "core/internal.h"
#include "inject.h"
#include "ready.h"
#include "release.h"
#include "sandbox.h"
#include "token_source.h"

void sbx_k8s_conn_from_config(const sbx_k8s_config *cfg, sbx_k8s_conn *k)
{
	*k = (sbx_k8s_conn){.server = cfg->server, .ca_pem = (const char *)cfg->ca_pem,
			    .client_cert_pem = (const char *)cfg->cert_pem, .client_key_pem = (const char *)cfg->key_pem,
			    .token = cfg->token, .tls_server_name = cfg->tls_server_name, .proxy_url = cfg->proxy_url,
			    .insecure = cfg->insecure};
}

void sbx_k8s_agent_argv(const char *agent, char *sock, size_t sock_len, const char *argv[4])
{
	snprintf(sock, sock_len, "%s.sock", agent);
	argv[0] = agent;
	argv[1] = "--attach";
	argv[2] = sock;
	argv[3] = NULL;
}

sbx_session_opts sbx_k8s_session_opts(void)
{
	return (sbx_session_opts){.reconnect = 1};
}

void sbx_k8s_kubectl_argv(const char *kubeconfig, const char *context, const char *argv[SBX_K8S_KUBECTL_ARGV])
{
	const char *kubectl = getenv("SBX_KUBECTL");
	int n = 0;
	argv[n++] = kubectl && *kubectl ? kubectl : "kubectl";
	if (kubeconfig && *kubeconfig && !strchr(kubeconfig, ':')) { /* a list: kubectl reads $KUBECONFIG */
		argv[n++] = "--kubeconfig";
		argv[n++] = kubeconfig;
	}
	if (context && *context) {
		argv[n++] = "--context";
		argv[n++] = context;
	}
	argv[n] = NULL;
}

static int load_config(const char *kubeconfig, const char *context, const char *ns, sbx_k8s_config *cfg,
		       sbx_k8s_conn *k, char *err, size_t err_len)
{
	sbx_k8s_config_opts co = {.kubeconfig = kubeconfig && *kubeconfig ? kubeconfig : NULL,
				  .context = context && *context ? context : NULL, .namespace = ns && *ns ? ns : NULL};
	if (sbx_k8s_config_load(&co, cfg, err, err_len) < 0 || sbx_k8s_auth_refresh_sync(cfg, 60000, err, err_len) < 0)
		return -1;
	sbx_k8s_conn_from_config(cfg, k);
	return 0;
}

int sbx_k8s_sandbox_config(const sbx_k8s_sandbox *sb, sbx_k8s_config *cfg, sbx_k8s_conn *k, char *err,
			   size_t err_len)
{
	return load_config(sb->kubeconfig, sb->context, sb->ns, cfg, k, err, err_len);
}

/* ---- the state machine -------------------------------------------------------------------- */

typedef enum { ST_INSTALL, ST_READY, ST_INJECT, ST_UP, ST_FAILING, ST_FAILED, ST_STOPPING, ST_STOPPED } box_step;

typedef struct box_svc {
	sbx_k8s_box *b;
	int i;
	sbx_k8s_inject *inject;
	sbx_session *session;
	char uid[64];
	/* a reconnect in flight */
	int reconnecting;
	sbx_timer *hop;
	void (*on_reconnect)(void *ud, sbx_session *s, const char *pod_uid, const sbx_error *err);
	void *reconnect_ud;
	char annotation[512];
} box_svc;

struct sbx_k8s_box {
	sbx_loop *loop;
	sbx_k8s_sandbox sb;
	sbx_k8s_config cfg;
	int have_cfg;
	sbx_k8s_conn k;
	sbx_k8s_api *api;
	char chart[PATH_MAX], values[PATH_MAX], agent_path[PATH_MAX], task[256];
	int timeout_s, connect;
	box_step step;
	sbx_k8s_release *helm;
	sbx_k8s_ready *ready;
	sbx_timer *hop;            /* the next step, from the loop rather than a callback */
	int injecting;             /* injections in flight */
	box_svc svc[SBX_K8S_MAX_SERVICES];
	const char *kubectl[SBX_K8S_KUBECTL_ARGV]; /* the fallback transport's command, when sb.kubectl */
	sbx_error failure;
	void (*on_ready)(void *ud, sbx_k8s_box *b, const sbx_error *err);
	void (*on_progress)(void *ud, const char *what);
	void *ud;
	void (*on_stop)(void *ud, const sbx_error *err);
	void *stop_ud;
};

static void release_opts(sbx_k8s_box *b, sbx_k8s_release_opts *ro, const char **values)
{
	*ro = (sbx_k8s_release_opts){.release = b->sb.release, .ns = b->sb.ns, .kube_context = b->sb.context,
				     .kubeconfig = b->sb.kubeconfig, .chart = b->chart, .task = b->task,
				     .timeout_s = b->timeout_s, .ud = b};
	values[0] = b->values[0] ? b->values : NULL;
	values[1] = NULL;
	ro->values = values[0] ? values : NULL;
}

/* Stops whatever step is in flight (not helm) and closes sessions not handed out. */
static void stop_pieces(sbx_k8s_box *b)
{
	if (b->ready)
		sbx_k8s_ready_cancel(b->ready);
	b->ready = NULL;
	if (b->hop)
		sbx_timer_cancel(b->loop, b->hop);
	b->hop = NULL;
	for (int i = 0; i < b->sb.nservices; i++) {
		box_svc *v = &b->svc[i];
		if (v->inject)
			sbx_k8s_inject_cancel(v->inject);
		v->inject = NULL;
		if (v->session)
			sbx_session_close(v->session);
		v->session = NULL;
	}
	b->injecting = 0;
}

static void report_ready(sbx_k8s_box *b, const sbx_error *err)
{
	void (*cb)(void *, sbx_k8s_box *, const sbx_error *) = b->on_ready;
	b->on_ready = NULL;
	if (cb)
		cb(b->ud, b, err);
}

static void report_stopped(sbx_k8s_box *b, const sbx_error *err)
{
	b->step = ST_STOPPED;
	void (*cb)(void *, const sbx_error *) = b->on_stop;
	b->on_stop = NULL;
	if (cb)
		cb(b->stop_ud, err);
}

/* ---- removal ----------------------------------------------------------------------------- */

static void uninstalled(void *ud, const char *err)
{
	sbx_k8s_box *b = ud;
	b->helm = NULL;
	if (b->step == ST_FAILING) {
		if (err) {
			size_t n = strlen(b->failure.message);
			snprintf(b->failure.message + n, sizeof b->failure.message - n,
				 "; uninstalling release %s also failed: %.300s", b->sb.release, err);
		}
		b->step = ST_FAILED;
		if (b->on_stop) /* stopped meanwhile: the removal is done either way */
			report_stopped(b, err ? &b->failure : NULL);
		else
			report_ready(b, &b->failure);
		return;
	}
	sbx_error e;
	if (err)
		sbx_error_set(&e, SBX_E_REMOTE, EIO, "helm", "%s", err);
	report_stopped(b, err ? &e : NULL);
}

/* helm uninstall; 0, or -1 with why. */
static int uninstall(sbx_k8s_box *b, char *why, size_t len)
{
	sbx_k8s_release_opts ro;
	const char *values[2];
	release_opts(b, &ro, values);
	ro.on_done = uninstalled;
	sbx_announce(b->on_progress, b->ud, "uninstalling release %s", b->sb.release);
	b->helm = sbx_k8s_release_uninstall(b->loop, &ro, why, len);
	return b->helm ? 0 : -1;
}

static void report_later(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_k8s_box *b = ud;
	b->hop = NULL;
	if (b->step == ST_FAILED)
		report_ready(b, &b->failure);
	else
		report_stopped(b, NULL);
}

static void copy_text(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

/* Something after the install failed: uninstall, then on_ready(err). */
static void fail(sbx_k8s_box *b, const sbx_error *why, const char *what)
{
	char msg[2048];
	if (strncmp(why->message, "release ", 8) == 0) /* ready.c's messages name the release already */
		snprintf(msg, sizeof msg, "%s%s%s", what, *what ? ": " : "", why->message);
	else
		snprintf(msg, sizeof msg, "release %s: %s%s%s", b->sb.release, what, *what ? ": " : "", why->message);
	b->failure = *why;
	copy_text(b->failure.message, sizeof b->failure.message, msg);
	stop_pieces(b);
	b->step = ST_FAILING;
	char err[600];
	if (uninstall(b, err, sizeof err) < 0) {
		size_t n = strlen(b->failure.message);
		snprintf(b->failure.message + n, sizeof b->failure.message - n,
			 "; uninstalling it could not start (%.300s): remove it with `helm uninstall %s`", err,
			 b->sb.release);
		b->step = ST_FAILED;
		b->hop = sbx_loop_timer(b->loop, 0, report_later, b);
	}
}

/* ---- sessions ---------------------------------------------------------------------------- */

/* The kubectl command line when the sandbox uses the fallback transport, else NULL. */
static const char *const *kubectl_of(sbx_k8s_box *b)
{
	if (!b->sb.kubectl)
		return NULL;
	sbx_k8s_kubectl_argv(b->sb.kubeconfig, b->sb.context, b->kubectl);
	return b->kubectl;
}

static sbx_session *open_session(sbx_k8s_box *b, int i, sbx_error *err)
{
	char sock[600];
	const char *argv[4];
	sbx_k8s_agent_argv(b->sb.agents[i], sock, sizeof sock, argv);
	sbx_k8s_exec x = {.ns = b->sb.ns, .pod = b->sb.pods[i], .argv = argv, .kubectl = kubectl_of(b)};
	sbx_session_opts so = sbx_k8s_session_opts();
	sbx_k8s_conn k = b->k;
	sbx_k8s_conn_refreshing(&k, &b->cfg, b->sb.kubeconfig, b->sb.context, b->sb.ns);
	return sbx_session_k8s(b->loop, &k, &x, &so, err);
}

static void connect_all(sbx_k8s_box *b)
{
	for (int i = 0; b->connect && i < b->sb.nservices; i++) {
		sbx_error e;
		if (!(b->svc[i].session = open_session(b, i, &e))) {
			char what[600];
			snprintf(what, sizeof what, "cannot start the agent in pod %s/%s", b->sb.ns, b->sb.pods[i]);
			fail(b, &e, what);
			return;
		}
	}
	b->step = ST_UP;
	report_ready(b, NULL);
}

/* ---- the agent in each pod --------------------------------------------------------------- */

static void injected(void *ud, const char *path, int uploaded, const char *err)
{
	(void)uploaded;
	box_svc *v = ud;
	sbx_k8s_box *b = v->b;
	v->inject = NULL;
	b->injecting--;
	if (err) {
		sbx_error e;
		sbx_error_set(&e, SBX_E_REMOTE, EIO, "inject", "%s", err);
		fail(b, &e, "");
		return;
	}
	snprintf(b->sb.agents[v->i], sizeof b->sb.agents[0], "%s", path);
	if (b->injecting == 0)
		connect_all(b);
}

static sbx_k8s_inject *inject_into(sbx_k8s_box *b, box_svc *v, const char *annotation,
				   void (*done)(void *, const char *, int, const char *), char *err, size_t len)
{
	const char *dir = getenv("SBX_K8S_AGENT_DIR");
	sbx_k8s_inject_opts io = {.k = &b->k, .ns = b->sb.ns, .pod = b->sb.pods[v->i],
				  .agent_path = b->agent_path[0] ? b->agent_path : NULL, .dir = dir && *dir ? dir : NULL,
				  .injected_path = annotation && *annotation ? annotation : NULL, .kubectl = kubectl_of(b),
				  .on_done = done, .ud = v};
	return sbx_k8s_inject_agent(b->loop, &io, err, len);
}

static void inject_all(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_k8s_box *b = ud;
	b->hop = NULL;
	b->step = ST_INJECT;
	sbx_announce(b->on_progress, b->ud, "putting the agent into %d pod(s) of release %s", b->sb.nservices, b->sb.release);
	b->injecting = b->sb.nservices;
	for (int i = 0; i < b->sb.nservices; i++) {
		char err[600];
		box_svc *v = &b->svc[i];
		v->inject = inject_into(b, v, b->sb.agents[i], injected, err, sizeof err);
		if (!v->inject) {
			sbx_error e;
			sbx_error_set(&e, SBX_E_LOCAL, EIO, "inject", "%s", err);
			fail(b, &e, "");
			return;
		}
	}
}

/* ---- readiness --------------------------------------------------------------------------- */

static const char *meta_str(json_t *pod, const char *key)
{
	return json_string_value(json_object_get(json_object_get(pod, "metadata"), key));
}

static const char *annotation_of(json_t *pod)
{
	json_t *ann = json_object_get(json_object_get(pod, "metadata"), "annotations");
	return json_string_value(json_object_get(ann, SBX_K8S_AGENT_ANNOTATION));
}

static void pods_ready(void *ud, json_t *pods, const sbx_error *err)
{
	sbx_k8s_box *b = ud;
	b->ready = NULL;
	if (err) {
		fail(b, err, "");
		return;
	}
	for (int i = 0; i < b->sb.nservices; i++) {
		json_t *pod = json_object_get(pods, b->sb.services[i]);
		const char *name = meta_str(pod, "name"), *uid = meta_str(pod, "uid"), *agent = annotation_of(pod);
		snprintf(b->sb.pods[i], sizeof b->sb.pods[i], "%s", name ? name : "");
		snprintf(b->svc[i].uid, sizeof b->svc[i].uid, "%s", uid ? uid : "");
		snprintf(b->sb.agents[i], sizeof b->sb.agents[i], "%s", agent ? agent : "");
	}
	/* from the loop: this runs inside the watch's callback */
	b->hop = sbx_loop_timer(b->loop, 0, inject_all, b);
}

static void installed(void *ud, const char *err)
{
	sbx_k8s_box *b = ud;
	b->helm = NULL;
	if (err) { /* release.c has uninstalled what the install left */
		sbx_error_set(&b->failure, SBX_E_REMOTE, EIO, "helm", "%s", err);
		b->step = ST_FAILED;
		report_ready(b, &b->failure);
		return;
	}
	b->step = ST_READY;
	sbx_announce(b->on_progress, b->ud, "waiting for the pods of release %s", b->sb.release);
	sbx_error e;
	const char *services[SBX_K8S_MAX_SERVICES + 1] = {0};
	for (int i = 0; i < b->sb.nservices; i++)
		services[i] = b->sb.services[i];
	sbx_k8s_ready_opts ro = {.ns = b->sb.ns, .release = b->sb.release, .services = services,
				 .timeout_ms = (b->timeout_s > 0 ? b->timeout_s : 600) * 1000, .on_done = pods_ready,
				 .ud = b};
	if (!(b->api = sbx_k8s_api_new(b->loop, &b->k, &e)) || !(b->ready = sbx_k8s_wait_ready(b->api, &ro, &e)))
		fail(b, &e, "cannot watch its pods");
}

/* ---- the handle -------------------------------------------------------------------------- */

static sbx_k8s_box *box_new(sbx_loop *loop)
{
	sbx_k8s_box *b = calloc(1, sizeof *b);
	if (!b)
		abort();
	b->loop = loop;
	for (int i = 0; i < SBX_K8S_MAX_SERVICES; i++)
		b->svc[i] = (box_svc){.b = b, .i = i};
	return b;
}

static void copy_opt(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

sbx_k8s_box *sbx_k8s_start(sbx_loop *loop, const sbx_k8s_up_opts *o, sbx_error *err)
{
	static const char *const just_default[] = {"default", NULL};
	if (!o->release || !*o->release || !o->on_ready) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "a k8s sandbox needs a release name and on_ready");
		return NULL;
	}
	sbx_k8s_box *b = box_new(loop);
	char why[2048];
	if (load_config(o->kubeconfig, o->context, o->ns, &b->cfg, &b->k, why, sizeof why) < 0) {
		sbx_k8s_config_free(&b->cfg);
		free(b);
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "kubeconfig", "%s", why);
		return NULL;
	}
	b->have_cfg = 1;
	sbx_k8s_sandbox *sb = &b->sb;
	copy_opt(sb->release, sizeof sb->release, o->release);
	copy_opt(sb->ns, sizeof sb->ns, b->cfg.namespace);
	copy_opt(sb->context, sizeof sb->context, o->context);
	copy_opt(sb->kubeconfig, sizeof sb->kubeconfig, o->kubeconfig);
	const char *const *svc = o->services ? o->services : just_default;
	while (sb->nservices < SBX_K8S_MAX_SERVICES && svc[sb->nservices]) {
		copy_opt(sb->services[sb->nservices], sizeof sb->services[0], svc[sb->nservices]);
		sb->nservices++;
	}
	copy_opt(b->chart, sizeof b->chart, o->chart ? o->chart : sbx_default_chart_path());
	copy_opt(b->values, sizeof b->values, o->values);
	copy_opt(b->agent_path, sizeof b->agent_path, o->agent_path);
	copy_opt(b->task, sizeof b->task, o->task);
	b->timeout_s = o->timeout_s;
	sb->kubectl = o->kubectl;
	b->connect = o->connect;
	b->on_ready = o->on_ready;
	b->on_progress = o->on_progress;
	b->ud = o->ud;
	sbx_k8s_release_opts ro;
	const char *values[2];
	release_opts(b, &ro, values);
	ro.on_done = installed;
	sbx_announce(b->on_progress, b->ud, "installing release %s", sb->release);
	if (!(b->helm = sbx_k8s_release_install(loop, &ro, why, sizeof why))) {
		sbx_k8s_free(b);
		sbx_error_set(err, SBX_E_LOCAL, EIO, "helm", "%s", why);
		return NULL;
	}
	return b;
}

sbx_k8s_box *sbx_k8s_attach(sbx_loop *loop, const sbx_k8s_sandbox *sb)
{
	sbx_k8s_box *b = box_new(loop);
	b->sb = *sb;
	b->step = ST_UP;
	return b;
}

const sbx_k8s_sandbox *sbx_k8s_info(const sbx_k8s_box *b)
{
	return &b->sb;
}

const char *sbx_k8s_pod_uid(const sbx_k8s_box *b, int i)
{
	return i >= 0 && i < b->sb.nservices ? b->svc[i].uid : "";
}

sbx_session *sbx_k8s_take_session(sbx_k8s_box *b, int i)
{
	if (i < 0 || i >= b->sb.nservices || b->step != ST_UP)
		return NULL;
	sbx_session *s = b->svc[i].session;
	b->svc[i].session = NULL;
	return s;
}

static void reconnected(box_svc *v, sbx_session *s, const sbx_error *err);

/* Reconnects under way end now, failing (the API client goes: it may be answering one). */
static void end_reconnects(sbx_k8s_box *b)
{
	int any = 0;
	for (int i = 0; i < b->sb.nservices; i++)
		any |= b->svc[i].reconnecting;
	if (!any)
		return;
	if (b->api)
		sbx_k8s_api_free(b->api);
	b->api = NULL;
	for (int i = 0; i < b->sb.nservices; i++) {
		box_svc *v = &b->svc[i];
		if (!v->reconnecting)
			continue;
		if (v->hop)
			sbx_timer_cancel(b->loop, v->hop);
		v->hop = NULL;
		if (v->inject)
			sbx_k8s_inject_cancel(v->inject);
		v->inject = NULL;
		sbx_error e;
		sbx_error_set(&e, SBX_E_CANCELLED, ECANCELED, "cancelled", "release %s is being removed", b->sb.release);
		reconnected(v, NULL, &e);
	}
}

void sbx_k8s_stop(sbx_k8s_box *b, void (*on_done)(void *ud, const sbx_error *err), void *ud)
{
	end_reconnects(b);
	b->on_stop = on_done;
	b->stop_ud = ud;
	b->on_ready = NULL; /* a start under way is not reported */
	if (b->step == ST_FAILING)
		return; /* its uninstall is running: uninstalled() reports */
	int nothing_there = b->step == ST_FAILED || b->step == ST_STOPPED;
	stop_pieces(b);
	if (b->helm) /* the install: kill it and uninstall what it made */
		sbx_k8s_release_cancel(b->helm);
	b->helm = NULL;
	b->step = ST_STOPPING;
	char err[600];
	if (nothing_there) {
		b->step = ST_STOPPED;
		b->hop = sbx_loop_timer(b->loop, 0, report_later, b);
	} else if (uninstall(b, err, sizeof err) < 0) {
		sbx_error_set(&b->failure, SBX_E_LOCAL, EIO, "helm", "%s", err);
		b->step = ST_FAILED;
		b->on_ready = NULL;
		report_stopped(b, &b->failure);
	}
}

/* ---- reconnecting ------------------------------------------------------------------------ */

static void reconnected(box_svc *v, sbx_session *s, const sbx_error *err)
{
	v->reconnecting = 0;
	void (*cb)(void *, sbx_session *, const char *, const sbx_error *) = v->on_reconnect;
	v->on_reconnect = NULL;
	cb(v->reconnect_ud, s, v->uid, err);
}

static void reinjected(void *ud, const char *path, int uploaded, const char *err)
{
	(void)uploaded;
	box_svc *v = ud;
	sbx_k8s_box *b = v->b;
	v->inject = NULL;
	sbx_error e;
	if (err) {
		sbx_error_set(&e, SBX_E_CONN, EIO, "inject", "%s", err);
		reconnected(v, NULL, &e);
		return;
	}
	snprintf(b->sb.agents[v->i], sizeof b->sb.agents[0], "%s", path);
	sbx_session *s = open_session(b, v->i, &e);
	reconnected(v, s, s ? NULL : &e);
}

static void reinject(sbx_loop *loop, void *ud)
{
	(void)loop;
	box_svc *v = ud;
	v->hop = NULL;
	char err[600];
	if (!(v->inject = inject_into(v->b, v, v->annotation, reinjected, err, sizeof err))) {
		sbx_error e;
		sbx_error_set(&e, SBX_E_CONN, EIO, "inject", "%s", err);
		reconnected(v, NULL, &e);
	}
}

static void got_pod(void *ud, json_t *pod, const sbx_error *err)
{
	box_svc *v = ud;
	if (err) {
		reconnected(v, NULL, err);
		return;
	}
	const char *uid = meta_str(pod, "uid"), *agent = annotation_of(pod);
	snprintf(v->uid, sizeof v->uid, "%s", uid ? uid : "");
	snprintf(v->annotation, sizeof v->annotation, "%s", agent ? agent : "");
	v->hop = sbx_loop_timer(v->b->loop, 0, reinject, v); /* not from inside the API's callback */
}

int sbx_k8s_reconnect(sbx_k8s_box *b, int i,
		      void (*on_done)(void *ud, sbx_session *s, const char *pod_uid, const sbx_error *err), void *ud,
		      sbx_error *err)
{
	if (i < 0 || i >= b->sb.nservices || b->step != ST_UP || !b->api || b->svc[i].reconnecting) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid",
			      "release %s: cannot reconnect service %d (not up, or a reconnect is under way)",
			      b->sb.release, i);
		return -1;
	}
	box_svc *v = &b->svc[i];
	v->on_reconnect = on_done;
	v->reconnect_ud = ud;
	if (sbx_k8s_get_pod(b->api, b->sb.ns, b->sb.pods[i], got_pod, v, err) < 0)
		return -1;
	v->reconnecting = 1;
	return 0;
}

void sbx_k8s_free(sbx_k8s_box *b)
{
	if (!b)
		return;
	stop_pieces(b);
	for (int i = 0; i < SBX_K8S_MAX_SERVICES; i++)
		if (b->svc[i].hop)
			sbx_timer_cancel(b->loop, b->svc[i].hop);
	if (b->helm)
		sbx_k8s_release_cancel(b->helm);
	if (b->api)
		sbx_k8s_api_free(b->api);
	if (b->have_cfg)
		sbx_k8s_config_free(&b->cfg);
	free(b);
}

/* ---- the blocking forms ------------------------------------------------------------------ */

typedef struct sync_state {
	int done;
	sbx_error err;
	int failed;
} sync_state;

static void sync_ready(void *ud, sbx_k8s_box *b, const sbx_error *err)
{
	(void)b;
	sync_state *s = ud;
	s->done = 1;
	if (err) {
		s->failed = 1;
		s->err = *err;
	}
}

static void sync_stopped(void *ud, const sbx_error *err)
{
	sync_ready(ud, NULL, err);
}

int sbx_k8s_up(const sbx_k8s_up_opts *o, sbx_k8s_sandbox *sb, char *err, size_t err_len)
{
	memset(sb, 0, sizeof *sb);
	sbx_loop *loop = sbx_loop_new();
	if (!loop) {
		snprintf(err, err_len, "cannot create an event loop: %s", strerror(errno));
		return -1;
	}
	sync_state s = {0};
	sbx_k8s_up_opts so = *o;
	so.connect = 0;
	so.on_ready = sync_ready;
	so.ud = &s;
	sbx_k8s_box *b = sbx_k8s_start(loop, &so, &s.err);
	int rc = -1;
	if (!b) {
		snprintf(err, err_len, "%s", s.err.message);
	} else if (sbx_loop_run_until(loop, &s.done) < 0) {
		snprintf(err, err_len, "release %s: the event loop failed: %s", o->release, strerror(errno));
		s.done = 0; /* stop and wait for the uninstall */
		sbx_k8s_stop(b, sync_stopped, &s);
		sbx_loop_run_until(loop, &s.done);
	} else if (s.failed) {
		snprintf(err, err_len, "%s", s.err.message);
	} else {
		*sb = *sbx_k8s_info(b);
		rc = 0;
	}
	sbx_k8s_free(b);
	sbx_loop_free(loop);
	return rc;
}

int sbx_k8s_down(const sbx_k8s_sandbox *sb, char *err, size_t err_len)
{
	sbx_loop *loop = sbx_loop_new();
	if (!loop) {
		snprintf(err, err_len, "cannot create an event loop: %s", strerror(errno));
		return -1;
	}
	sync_state s = {0};
	sbx_k8s_box *b = sbx_k8s_attach(loop, sb);
	sbx_k8s_stop(b, sync_stopped, &s);
	int rc = s.done ? 0 : sbx_loop_run_until(loop, &s.done);
	if (rc < 0)
		snprintf(err, err_len, "release %s: the event loop failed: %s", sb->release, strerror(errno));
	else if (s.failed)
		snprintf(err, err_len, "%s", s.err.message);
	sbx_k8s_free(b);
	sbx_loop_free(loop);
	return rc < 0 || s.failed ? -1 : 0;
}
