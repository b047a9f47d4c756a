/* release.h — Helm releases of the agent-env chart, installed and
 * uninstalled by running `helm` as a child process on the loop.
 *
 * Flags and labels are the k8s sandbox's, so its cleanup tools see our
 * releases and ours see theirs: the label inspectSandbox=true (plus
 * $INSPECT_HELM_LABELS), annotations.inspectTaskName=TASK, --timeout from
 * $INSPECT_HELM_TIMEOUT (default 600 s), --create-namespace when
 * $INSPECT_HELM_CREATE_NAMESPACE is set, corednsImage from
 * $INSPECT_SANDBOX_COREDNS_IMAGE. Install does not --wait: readiness is
 * watched through the API (ready.h), which fails fast with a diagnosis.
 *
 * At most $INSPECT_MAX_HELM_INSTALL installs and $INSPECT_MAX_HELM_UNINSTALL
 * uninstalls (default 8 each) run at once in the process; more wait in a
 * FIFO queue and start as slots free up (the clean-up uninstall of a failed
 * install runs in the install's slot).
 *
 * A failed install is uninstalled before the failure is reported, so no
 * half-made release is left behind. Errors name the release, what helm was
 * doing and helm's own message. */
#ifndef SBX_K8S_RELEASE_H
#define SBX_K8S_RELEASE_H

#include "loop.h"

#define SBX_K8S_RELEASE_NAME_LEN 8

typedef struct sbx_k8s_release sbx_k8s_release;

typedef struct sbx_k8s_release_opts {
	const char *helm;            /* NULL: $SBX_HELM, else "helm" on PATH */
	const char *release;         /* required */
	const char *ns;              /* required */
	const char *kube_context;    /* --kube-context, or NULL */
	const char *kubeconfig;      /* --kubeconfig, or NULL */
	/* install only */
	const char *chart;           /* the chart directory */
	const char *const *values;   /* values files, NULL-terminated, or NULL */
	const char *task;            /* annotations.inspectTaskName, or NULL */
	int timeout_s;               /* 0: $INSPECT_HELM_TIMEOUT, else 600 */
	/* err is NULL on success, else a sentence saying what failed. */
	void (*on_done)(void *ud, const char *err);
	void *ud;
} sbx_k8s_release_opts;

/* A fresh release name: 8 random lowercase letters and digits, starting
 * with a letter (as the k8s sandbox makes them). out holds 9 bytes. */
void sbx_k8s_release_name(char out[SBX_K8S_RELEASE_NAME_LEN + 1]);

/* The helm command line for "install" or "uninstall", NULL-terminated
 * (free it with sbx_k8s_release_argv_free). NULL with err when a required
 * option is missing or an environment setting is bad. */
char **sbx_k8s_release_argv(const char *verb, const sbx_k8s_release_opts *o, char *err, size_t err_len);
void sbx_k8s_release_argv_free(char **argv);

/* Start `helm install` / `helm uninstall`, or queue it when the limit is
 * reached. NULL with err when helm could not be started or a setting is bad
 * (on_done then never runs). */
sbx_k8s_release *sbx_k8s_release_install(sbx_loop *loop, const sbx_k8s_release_opts *o, char *err,
					 size_t err_len);
sbx_k8s_release *sbx_k8s_release_uninstall(sbx_loop *loop, const sbx_k8s_release_opts *o, char *err,
					   size_t err_len);
/* Kills helm (or leaves the queue) and frees; on_done does not run. */
void sbx_k8s_release_cancel(sbx_k8s_release *r);

/* Blocking forms on a private loop: 0, or -1 with err. */
int sbx_k8s_release_install_sync(const sbx_k8s_release_opts *o, char *err, size_t err_len);
int sbx_k8s_release_uninstall_sync(const sbx_k8s_release_opts *o, char *err, size_t err_len);

#endif
