/* inject.h — putting the static agent into a pod's container over pod
 * exec, so any image with /bin/sh can run it.
 *
 * The agent lands at DIR/sbx-agent-HASH (HASH: the first 16 hex digits of
 * the binary's SHA-256), so the name says which build it is: a probe exec
 * (`test -x`) finds an agent already there and nothing is uploaded. The
 * upload is one exec whose stdin carries the binary, written to a temporary
 * name, checked for size, made executable and renamed into place (two
 * hosts racing both end with a whole file). A pod whose chart injected the
 * agent with its init container says where in the annotation
 * sbx/agent-path: then nothing is probed or uploaded. */
#ifndef SBX_K8S_INJECT_H
#define SBX_K8S_INJECT_H

#include "sbx.h"

#define SBX_K8S_AGENT_ANNOTATION "sbx/agent-path"

typedef struct sbx_k8s_inject sbx_k8s_inject;

typedef struct sbx_k8s_inject_opts {
	const sbx_k8s_conn *k;       /* must stay valid until on_done */
	const char *ns, *pod;
	const char *container;       /* NULL: the pod's default container */
	const char *agent_path;      /* the local static agent; NULL: sbx_default_agent_path() */
	const char *dir;             /* where in the container; NULL: /tmp */
	const char *injected_path;   /* the pod's sbx/agent-path annotation, or NULL */
	const char *const *kubectl;  /* exec through kubectl (sbx_k8s_exec.kubectl); valid until on_done */
	/* path: where the agent is in the container (valid during the call);
	 * uploaded: whether this call copied it. err NULL on success. */
	void (*on_done)(void *ud, const char *path, int uploaded, const char *err);
	void *ud;
} sbx_k8s_inject_opts;

/* Starts; on_done runs once from the loop. NULL with err when it could not
 * start (e.g. the local agent cannot be read); on_done then never runs. */
sbx_k8s_inject *sbx_k8s_inject_agent(sbx_loop *loop, const sbx_k8s_inject_opts *o, char *err, size_t err_len);
/* Stops; on_done does not run. */
void sbx_k8s_inject_cancel(sbx_k8s_inject *in);

#endif
