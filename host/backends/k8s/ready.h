/* ready.h — waiting for a release's pods: one pod per service, found by
 * the labels the chart puts on them (app.kubernetes.io/instance=RELEASE,
 * inspect/service=SERVICE), Running and Ready.
 *
 * Watches the pods rather than polling. Fails fast, with a diagnosis
 * (sbx_k8s_pod_diagnosis: status and Warning events) as the message, when
 * a pod cannot become ready by waiting: ImagePullBackOff, ErrImageNeverPull,
 * InvalidImageName, CrashLoopBackOff, CreateContainerConfigError,
 * Unschedulable, phase Failed. On timeout, the message is the diagnosis of
 * the first service that is not ready (code "not_ready", SBX_E_TIMEOUT). */
#ifndef SBX_K8S_READY_H
#define SBX_K8S_READY_H

#include "api.h"

typedef struct sbx_k8s_ready sbx_k8s_ready;

typedef struct sbx_k8s_ready_opts {
	const char *ns;                /* required */
	const char *release;           /* required */
	const char *const *services;   /* NULL-terminated, at least one */
	int timeout_ms;                /* 0: 600 s */
	/* pods is {"SERVICE": pod, ...} (borrowed: valid during the call) when
	 * every service has a ready pod, else NULL with err. Runs once. */
	void (*on_done)(void *ud, json_t *pods, const sbx_error *err);
	void *ud;
} sbx_k8s_ready_opts;

sbx_k8s_ready *sbx_k8s_wait_ready(sbx_k8s_api *a, const sbx_k8s_ready_opts *o, sbx_error *err);
/* Stops waiting; on_done does not run. */
void sbx_k8s_ready_cancel(sbx_k8s_ready *r);

/* Helpers (exposed for tests): is the pod Running and Ready (and not being
 * deleted)? Can it not become ready by waiting (why: the reason)? */
int sbx_k8s_pod_is_ready(json_t *pod);
int sbx_k8s_pod_is_stuck(json_t *pod, char *why, size_t len);

#endif
