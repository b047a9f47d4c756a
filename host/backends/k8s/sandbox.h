/* sandbox.h — one Kubernetes sandbox from start to end, the part the CLI
 * and the Python provider share. sbx_k8s_start runs on the caller's loop as
 * a small state machine (never blocking, so many samples start at once):
 *
 *   kubeconfig (loaded, credentials brought up to date)
 *   -> helm install of the chart (release.h: limited and queued per process)
 *   -> each service's pod Running and Ready (ready.h: a watch, fast diagnosis)
 *   -> the agent in each pod (inject.h), all pods at once
 *   -> with .connect: one sbx_session_k8s per service running the agent
 *
 * Any failure after the install uninstalls the release before on_ready
 * reports it, so no release is left behind. sbx_k8s_stop uninstalls.
 * sbx_k8s_up / sbx_k8s_down are the blocking forms on a private loop (the
 * CLI's). The agent goes to $SBX_K8S_AGENT_DIR in the container (default /tmp). */
#ifndef SBX_K8S_SANDBOX_H
#define SBX_K8S_SANDBOX_H

#include "kubeconfig.h"
#include "sbx.h"

#define SBX_K8S_MAX_SERVICES 32

typedef struct sbx_k8s_box sbx_k8s_box;

/* What a running sandbox is; the CLI keeps it in its state directory. */
typedef struct sbx_k8s_sandbox {
	char release[64];
	char ns[256];
	char context[256];     /* "" = the kubeconfig's current context */
	char kubeconfig[1024]; /* "" = $KUBECONFIG or ~/.kube/config */
	int nservices;
	char services[SBX_K8S_MAX_SERVICES][64]; /* the default service first */
	char pods[SBX_K8S_MAX_SERVICES][256];
	char agents[SBX_K8S_MAX_SERVICES][512];  /* the agent's path in each pod */
	int kubectl;           /* reach the pods through `kubectl exec` (the fallback transport) */
} sbx_k8s_sandbox;

typedef struct sbx_k8s_up_opts {
	const char *release;        /* required (sbx_k8s_release_name makes one) */
	const char *chart;          /* NULL: $SBX_CHART, else chart/agent-env next to the program's ../ */
	const char *values;         /* a values file, or NULL */
	const char *const *services; /* the services the values define (default first); NULL: {"default"} */
	const char *kubeconfig, *context, *ns; /* NULL: the usual rules (kubeconfig.h) */
	const char *agent_path;     /* NULL: sbx_default_agent_path() */
	const char *task;           /* annotations.inspectTaskName */
	int timeout_s;              /* helm and readiness; 0: $INSPECT_HELM_TIMEOUT or 600 */
	int kubectl;                /* exec (agent copy, sessions) through kubectl, not the WebSocket */
	/* sbx_k8s_start only */
	int connect;                /* open a session per service before on_ready */
	void (*on_ready)(void *ud, sbx_k8s_box *b, const sbx_error *err); /* err NULL when ready */
	void (*on_progress)(void *ud, const char *what); /* optional: each slow step as it starts */
	void *ud;
} sbx_k8s_up_opts;

/* Starts bringing a sandbox up on loop (o->release etc. are copied). NULL
 * with err when it cannot start (a bad kubeconfig, helm not startable):
 * then nothing was installed. The handle stays valid after on_ready (even
 * on failure) until sbx_k8s_free, which may be called only when nothing is
 * under way: after on_ready, or after sbx_k8s_stop's on_done. */
sbx_k8s_box *sbx_k8s_start(sbx_loop *loop, const sbx_k8s_up_opts *o, sbx_error *err);
/* A sandbox brought up earlier (the CLI's record), to stop it. */
sbx_k8s_box *sbx_k8s_attach(sbx_loop *loop, const sbx_k8s_sandbox *sb);
/* What the sandbox is: release, namespace, services, pods, agent paths. */
const sbx_k8s_sandbox *sbx_k8s_info(const sbx_k8s_box *b);
/* The pod UID of service i as last seen ("" if unknown). */
const char *sbx_k8s_pod_uid(const sbx_k8s_box *b, int i);
/* Hands service i's session to the caller (who closes it); NULL if none. */
sbx_session *sbx_k8s_take_session(sbx_k8s_box *b, int i);
/* A new session to service i's pod: looks the pod up again (its UID may
 * have changed: a replaced pod), puts the agent there if it is missing and
 * starts it. on_done(session or NULL, the pod's UID, err) once; the caller
 * owns the session. One at a time per service. 0, or -1 with err. */
int sbx_k8s_reconnect(sbx_k8s_box *b, int i,
		      void (*on_done)(void *ud, sbx_session *s, const char *pod_uid, const sbx_error *err), void *ud,
		      sbx_error *err);
/* helm uninstall (a release already gone is not an error); on_done once.
 * While sbx_k8s_start is under way (Ctrl-C): stops the step in flight,
 * uninstalls, and on_ready is not called. Call once. */
void sbx_k8s_stop(sbx_k8s_box *b, void (*on_done)(void *ud, const sbx_error *err), void *ud);
void sbx_k8s_free(sbx_k8s_box *b);

/* Installs and waits. On failure the release is uninstalled and err says
 * what failed (helm's message or the pod's diagnosis). 0, or -1. */
int sbx_k8s_up(const sbx_k8s_up_opts *o, sbx_k8s_sandbox *sb, char *err, size_t err_len);
/* helm uninstall (a release already gone is not an error). 0, or -1. */
int sbx_k8s_down(const sbx_k8s_sandbox *sb, char *err, size_t err_len);

/* How a session reaches the agent in a pod: `AGENT --attach AGENT.sock`, a
 * stdio bridge to the agent listening next to the binary (started on first
 * use), so a dropped exec stream loses no command: the session dials a new
 * stream and re-attaches them. sock must hold the socket path (buffer of
 * sock_len); argv gets 4 entries. */
void sbx_k8s_agent_argv(const char *agent, char *sock, size_t sock_len, const char *argv[4]);
/* The session options that go with it (reconnect on). */
sbx_session_opts sbx_k8s_session_opts(void);

/* The kubectl command line for the fallback transport: $SBX_KUBECTL or
 * kubectl, then --kubeconfig (a single file) and --context when given. */
#define SBX_K8S_KUBECTL_ARGV 6
void sbx_k8s_kubectl_argv(const char *kubeconfig, const char *context, const char *argv[SBX_K8S_KUBECTL_ARGV]);

/* The connection settings of a loaded kubeconfig (pointers into cfg). */
void sbx_k8s_conn_from_config(const sbx_k8s_config *cfg, sbx_k8s_conn *k);
/* Loads sb's kubeconfig and context, brings its credentials up to date and
 * fills k. Free cfg afterwards. 0, or -1 with err. */
int sbx_k8s_sandbox_config(const sbx_k8s_sandbox *sb, sbx_k8s_config *cfg, sbx_k8s_conn *k, char *err,
			   size_t err_len);

#endif
