/* release.c — `helm install` and `helm uninstall` of one release as child
 * processes on the loop (child.h), with the k8s sandbox's flags, the
 * clean-up of an install that failed halfway, and the per-process limits on
 * how many installs and uninstalls run at once (a FIFO queue each). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/child.h"
#include "release.h"

#define DEFAULT_TIMEOUT_S 600
#define KILL_MARGIN_MS 30000 /* helm reports its own timeout first */
#define DEFAULT_MAX_RUNNING 8

typedef struct helm_queue helm_queue;

struct sbx_k8s_release {
	sbx_loop *loop;
	sbx_child *child;
	char **argv;           /* waiting for a slot: the command to run */
	helm_queue *queue;     /* installs' or uninstalls' */
	int has_slot;
	sbx_k8s_release *next_waiting;
	char *verb;
	char **uninstall_argv; /* install: to clean up after a failure */
	char *name;
	int timeout_ms;
	char install_err[3000]; /* install failed: kept while the clean-up runs */
	void (*on_done)(void *ud, const char *err);
	void *ud;
};

void sbx_k8s_release_name(char out[SBX_K8S_RELEASE_NAME_LEN + 1])
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[SBX_K8S_RELEASE_NAME_LEN];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd)
		for (size_t i = 0; i < sizeof rnd; i++) /* no /dev/urandom: still unlikely to collide */
			rnd[i] = (unsigned char)(rand() ^ (getpid() << i));
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < sizeof rnd; i++)
		out[i] = i == 0 ? chars[rnd[i] % 26] : chars[rnd[i] % 36];
	out[SBX_K8S_RELEASE_NAME_LEN] = 0;
}

/* ---- the command line ------------------------------------------------------------------ */

typedef struct argv_list {
	char **v;
	size_t n;
} argv_list;

static void add(argv_list *a, const char *s)
{
	char **v = realloc(a->v, (a->n + 2) * sizeof *v);
	if (!v || !(v[a->n] = strdup(s)))
		abort();
	v[++a->n] = NULL;
	a->v = v;
}

static void add_pair(argv_list *a, const char *flag, const char *value)
{
	add(a, flag);
	add(a, value);
}

/* helm --set-string takes key=value with ',' separating pairs: escape it. */
static void add_set_string(argv_list *a, const char *key, const char *value)
{
	size_t n = strlen(key) + 2 * strlen(value) + 2;
	char *kv = malloc(n), *p = kv;
	if (!kv)
		abort();
	p += sprintf(p, "%s=", key);
	for (const char *c = value; *c; c++) {
		if (*c == ',' || *c == '\\')
			*p++ = '\\';
		*p++ = *c;
	}
	*p = 0;
	add_pair(a, "--set-string", kv);
	free(kv);
}

void sbx_k8s_release_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

static int env_set(const char *name)
{
	const char *v = getenv(name);
	return v && *v && strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0;
}

/* The timeout in seconds: o->timeout_s, else $INSPECT_HELM_TIMEOUT, else 600. */
static int timeout_of(const sbx_k8s_release_opts *o, char *err, size_t err_len)
{
	if (o->timeout_s > 0)
		return o->timeout_s;
	const char *v = getenv("INSPECT_HELM_TIMEOUT");
	if (!v || !*v)
		return DEFAULT_TIMEOUT_S;
	char *end;
	long t = strtol(v, &end, 10);
	if (*end || t <= 0 || t > 86400) {
		snprintf(err, err_len, "INSPECT_HELM_TIMEOUT='%s' is not a number of seconds between 1 and 86400; "
				       "set it to e.g. 600 or unset it", v);
		return -1;
	}
	return (int)t;
}

char **sbx_k8s_release_argv(const char *verb, const sbx_k8s_release_opts *o, char *err, size_t err_len)
{
	int install = strcmp(verb, "install") == 0;
	if (!o->release || !*o->release || !o->ns || !*o->ns || (install && (!o->chart || !*o->chart))) {
		snprintf(err, err_len, "helm %s needs a release name, a namespace%s", verb, install ? " and a chart" : "");
		return NULL;
	}
	int timeout_s = timeout_of(o, err, err_len);
	if (timeout_s < 0)
		return NULL;
	const char *helm = o->helm ? o->helm : getenv("SBX_HELM");
	argv_list a = {0};
	add(&a, helm && *helm ? helm : "helm");
	add(&a, verb);
	add(&a, o->release);
	if (install)
		add(&a, o->chart);
	add_pair(&a, "--namespace", o->ns);
	if (o->kube_context && *o->kube_context)
		add_pair(&a, "--kube-context", o->kube_context);
	if (o->kubeconfig && *o->kubeconfig)
		add_pair(&a, "--kubeconfig", o->kubeconfig);
	char num[32];
	snprintf(num, sizeof num, "%ds", timeout_s);
	add_pair(&a, "--timeout", num);
	if (!install) {
		add(&a, "--ignore-not-found");
		return a.v;
	}
	/* The values are checked by the chart's values.schema.json and the
	 * objects by the API server: skip helm's download of the cluster's
	 * whole OpenAPI schema, the heaviest request of an install. */
	add(&a, "--disable-openapi-validation");
	const char *extra = getenv("INSPECT_HELM_LABELS");
	char labels[1024];
	snprintf(labels, sizeof labels, "inspectSandbox=true%s%s", extra && *extra ? "," : "", extra ? extra : "");
	add_pair(&a, "--labels", labels);
	if (o->task && *o->task)
		add_set_string(&a, "annotations.inspectTaskName", o->task);
	const char *coredns = getenv("INSPECT_SANDBOX_COREDNS_IMAGE");
	if (coredns && *coredns)
		add_set_string(&a, "corednsImage", coredns);
	if (env_set("INSPECT_HELM_CREATE_NAMESPACE"))
		add(&a, "--create-namespace");
	for (size_t i = 0; o->values && o->values[i]; i++)
		add_pair(&a, "--values", o->values[i]);
	return a.v;
}

/* ---- the limits ------------------------------------------------------------------------ */

/* One per verb for the whole process: how many run, and who waits (FIFO). */
struct helm_queue {
	const char *env;       /* the setting that limits it */
	int running;
	sbx_k8s_release *head, *tail;
};

static helm_queue g_installs = {.env = "INSPECT_MAX_HELM_INSTALL"};
static helm_queue g_uninstalls = {.env = "INSPECT_MAX_HELM_UNINSTALL"};

/* The queue's limit: $INSPECT_MAX_HELM_(UN)INSTALL, else 8; -1 with err when bad. */
static int limit_of(const helm_queue *q, char *err, size_t err_len)
{
	const char *v = getenv(q->env);
	if (!v || !*v)
		return DEFAULT_MAX_RUNNING;
	char *end;
	long n = strtol(v, &end, 10);
	if (*end || n < 1 || n > 10000) {
		snprintf(err, err_len, "%s='%s' is not a number between 1 and 10000; set it to e.g. %d or unset it",
			 q->env, v, DEFAULT_MAX_RUNNING);
		return -1;
	}
	return (int)n;
}

static int has_room(const helm_queue *q)
{
	char err[200];
	int limit = limit_of(q, err, sizeof err);
	return q->running < (limit < 0 ? DEFAULT_MAX_RUNNING : limit);
}

static void unqueue(sbx_k8s_release *r)
{
	helm_queue *q = r->queue;
	sbx_k8s_release **p = &q->head, *prev = NULL;
	while (*p && *p != r) {
		prev = *p;
		p = &(*p)->next_waiting;
	}
	if (!*p)
		return;
	*p = r->next_waiting;
	if (q->tail == r)
		q->tail = prev;
	r->next_waiting = NULL;
}

/* ---- running helm ------------------------------------------------------------------------ */

static void pump(helm_queue *q);

static void give_back_slot(sbx_k8s_release *r)
{
	if (r->has_slot)
		r->queue->running--;
	r->has_slot = 0;
}

static void release_free(sbx_k8s_release *r)
{
	sbx_k8s_release_argv_free(r->argv);
	sbx_k8s_release_argv_free(r->uninstall_argv);
	free(r->verb);
	free(r->name);
	free(r);
}

static void finish(sbx_k8s_release *r, const char *msg)
{
	helm_queue *q = r->queue;
	r->child = NULL;
	give_back_slot(r);
	r->on_done(r->ud, msg);
	release_free(r);
	pump(q);
}

static void on_cleanup_done(void *ud, const sbx_child_result *res)
{
	sbx_k8s_release *r = ud;
	char msg[sizeof r->install_err + 800], how[120];
	if (res->exit_code == 0) {
		snprintf(msg, sizeof msg, "%s; the release was uninstalled", r->install_err);
	} else {
		sbx_child_describe(res, r->timeout_ms, how, sizeof how);
		snprintf(msg, sizeof msg, "%s; uninstalling it also failed (helm %s: %.400s), remove it with "
					  "`helm uninstall %s`", r->install_err, how, res->err, r->name);
	}
	finish(r, msg);
}

static void on_helm_done(void *ud, const sbx_child_result *res)
{
	sbx_k8s_release *r = ud;
	if (res->exit_code == 0) {
		finish(r, NULL);
		return;
	}
	char how[120];
	sbx_child_describe(res, r->timeout_ms, how, sizeof how);
	snprintf(r->install_err, sizeof r->install_err, "helm %s of release %s failed: helm %s%s%.2000s", r->verb,
		 r->name, how, *res->err ? ": " : "", res->err);
	if (r->uninstall_argv) {
		char err[300];
		sbx_child_opts co = {.argv = (const char *const *)r->uninstall_argv, .timeout_ms = r->timeout_ms,
				     .on_done = on_cleanup_done, .ud = r};
		r->child = sbx_child_run(r->loop, &co, err, sizeof err);
		if (r->child)
			return;
	}
	finish(r, r->install_err);
}

/* Runs r's helm in a slot of its queue. 0, or -1 with err (r not freed). */
static int launch(sbx_k8s_release *r, char *err, size_t err_len)
{
	sbx_child_opts co = {.argv = (const char *const *)r->argv, .timeout_ms = r->timeout_ms,
			     .on_done = on_helm_done, .ud = r};
	char why[300];
	r->child = sbx_child_run(r->loop, &co, why, sizeof why);
	sbx_k8s_release_argv_free(r->argv);
	r->argv = NULL;
	if (!r->child) {
		snprintf(err, err_len, "helm %s of release %s: %s", r->verb, r->name, why);
		return -1;
	}
	r->has_slot = 1;
	r->queue->running++;
	return 0;
}

/* Starts the releases waiting in q while it has room. */
static void pump(helm_queue *q)
{
	while (q->head && has_room(q)) {
		sbx_k8s_release *r = q->head;
		unqueue(r);
		char err[600];
		if (launch(r, err, sizeof err) < 0) {
			r->on_done(r->ud, err);
			release_free(r);
		}
	}
}

static sbx_k8s_release *start(sbx_loop *loop, const char *verb, const sbx_k8s_release_opts *o, char *err,
			      size_t err_len)
{
	int install = strcmp(verb, "install") == 0;
	helm_queue *q = install ? &g_installs : &g_uninstalls;
	if (limit_of(q, err, err_len) < 0)
		return NULL;
	char **argv = sbx_k8s_release_argv(verb, o, err, err_len);
	if (!argv)
		return NULL;
	sbx_k8s_release *r = calloc(1, sizeof *r);
	if (!r || !(r->verb = strdup(verb)) || !(r->name = strdup(o->release)))
		abort();
	r->loop = loop;
	r->argv = argv;
	r->queue = q;
	r->on_done = o->on_done;
	r->ud = o->ud;
	r->timeout_ms = timeout_of(o, err, err_len) * 1000 + KILL_MARGIN_MS;
	if (install)
		r->uninstall_argv = sbx_k8s_release_argv("uninstall", o, err, err_len);
	if (!has_room(q) || q->head) { /* wait for a slot, in order */
		if (q->tail)
			q->tail->next_waiting = r;
		else
			q->head = r;
		q->tail = r;
		return r;
	}
	if (launch(r, err, err_len) < 0) {
		release_free(r);
		return NULL;
	}
	return r;
}

sbx_k8s_release *sbx_k8s_release_install(sbx_loop *loop, const sbx_k8s_release_opts *o, char *err, size_t err_len)
{
	return start(loop, "install", o, err, err_len);
}

sbx_k8s_release *sbx_k8s_release_uninstall(sbx_loop *loop, const sbx_k8s_release_opts *o, char *err,
					   size_t err_len)
{
	return start(loop, "uninstall", o, err, err_len);
}

void sbx_k8s_release_cancel(sbx_k8s_release *r)
{
	if (!r)
		return;
	helm_queue *q = r->queue;
	unqueue(r);
	sbx_child_cancel(r->child);
	give_back_slot(r);
	release_free(r);
	pump(q);
}

/* ---- blocking forms ---------------------------------------------------------------------- */

typedef struct sync_state {
	int done;
	char *err;
	size_t err_len;
	int failed;
} sync_state;

static void sync_done(void *ud, const char *msg)
{
	sync_state *s = ud;
	s->done = 1;
	if (msg) {
		s->failed = 1;
		snprintf(s->err, s->err_len, "%s", msg);
	}
}

static int run_sync(const char *verb, const sbx_k8s_release_opts *o, char *err, size_t err_len)
{
	sbx_loop *loop = sbx_loop_new();
	if (!loop) {
		snprintf(err, err_len, "cannot create an event loop: %s", strerror(errno));
		return -1;
	}
	sync_state s = {.err = err, .err_len = err_len};
	sbx_k8s_release_opts so = *o;
	so.on_done = sync_done;
	so.ud = &s;
	sbx_k8s_release *r = start(loop, verb, &so, err, err_len);
	int rc = r ? sbx_loop_run_until(loop, &s.done) : -1;
	if (r && rc < 0) {
		snprintf(err, err_len, "helm %s of release %s: the event loop failed: %s", verb, o->release,
			 strerror(errno));
		if (!s.done)
			sbx_k8s_release_cancel(r);
	}
	sbx_loop_free(loop);
	return rc < 0 || s.failed ? -1 : 0;
}

int sbx_k8s_release_install_sync(const sbx_k8s_release_opts *o, char *err, size_t err_len)
{
	return run_sync("install", o, err, err_len);
}

int sbx_k8s_release_uninstall_sync(const sbx_k8s_release_opts *o, char *err, size_t err_len)
{
	return run_sync("uninstall", o, err, err_len);
}
