/* sandbox.h — one Kubernetes sandbox from start to end, the part the CLI
 * and the Python provider share: load the kubeconfig, `helm install` the
 * chart (release.h), wait for each service's pod (ready.h), put the agent
 * in each pod (inject.h); and `helm uninstall` at the end.
 *
 * The agent goes to $SBX_K8S_AGENT_DIR in the container (default /tmp).
 * These are blocking calls on a private loop, for the CLI; the pieces they
 * join are asynchronous for callers with their own loop. */
#ifndef SBX_K8S_SANDBOX_H
#define SBX_K8S_SANDBOX_H

#include "kubeconfig.h"
#include "sbx.h"

#define SBX_K8S_MAX_SERVICES 32

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
} sbx_k8s_up_opts;

/* Installs and waits. On failure the release is uninstalled and err says
 * what failed (helm's message or the pod's diagnosis). 0, or -1. */
int sbx_k8s_up(const sbx_k8s_up_opts *o, sbx_k8s_sandbox *sb, char *err, size_t err_len);
/* helm uninstall (a release already gone is not an error). 0, or -1. */
int sbx_k8s_down(const sbx_k8s_sandbox *sb, char *err, size_t err_len);

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
