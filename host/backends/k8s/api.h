/* api.h — a small Kubernetes API client on the host's loop: pods (get,
 * list and watch by label) and events, and a readable diagnosis of a pod
 * that is not ready. JSON is jansson's; requests go through http.h.
 *
 * Errors carry the API server's own Status message ("pods \"x\" not found")
 * with the method, URL and HTTP status; code is "not_found" (404),
 * "denied" (401, 403), "gone" (410: a watch's resourceVersion expired) or
 * "api" (anything else). */
#ifndef SBX_K8S_API_H
#define SBX_K8S_API_H

#include <jansson.h>

#include "net/http.h"
#include "sbx.h"

typedef struct sbx_k8s_api sbx_k8s_api;
typedef struct sbx_k8s_watch sbx_k8s_watch;

/* The connection settings are copied. NULL with err if k lacks a server. */
sbx_k8s_api *sbx_k8s_api_new(sbx_loop *loop, const sbx_k8s_conn *k, sbx_error *err);
/* The loop the client runs on. */
sbx_loop *sbx_k8s_api_loop(const sbx_k8s_api *a);
/* Cancels requests and watches in flight (no callbacks) and frees. */
void sbx_k8s_api_free(sbx_k8s_api *a);

/* obj is the response (borrowed: valid during the call), or NULL with err. */
typedef void (*sbx_k8s_json_cb)(void *ud, json_t *obj, const sbx_error *err);

/* GET path ("/api/v1/..."). Returns 0, or -1 with err (cb is then not called). */
int sbx_k8s_get(sbx_k8s_api *a, const char *path, sbx_k8s_json_cb cb, void *ud, sbx_error *err);
/* A PodList of namespace ns (NULL: all namespaces) matching selector (NULL: all). */
int sbx_k8s_list_pods(sbx_k8s_api *a, const char *ns, const char *selector, sbx_k8s_json_cb cb, void *ud,
		      sbx_error *err);
int sbx_k8s_get_pod(sbx_k8s_api *a, const char *ns, const char *name, sbx_k8s_json_cb cb, void *ud,
		    sbx_error *err);
/* An EventList of the events about pod `name` (NULL: every event in ns). */
int sbx_k8s_list_events(sbx_k8s_api *a, const char *ns, const char *name, sbx_k8s_json_cb cb, void *ud,
			sbx_error *err);

/* Watches pods: on_event("ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK", pod) per
 * change, from resource_version (NULL: the current pods first, as ADDED).
 * on_end once when the watch ends (err NULL for a clean end, e.g. the
 * server's timeout); the watch is then freed. */
typedef struct sbx_k8s_watch_opts {
	const char *ns;                /* NULL: all namespaces */
	const char *selector;          /* label selector, or NULL */
	const char *resource_version;  /* or NULL */
	int timeout_s;                 /* asks the server to end the watch; 0 = its default */
	void (*on_event)(void *ud, const char *type, json_t *object);
	void (*on_end)(void *ud, const sbx_error *err);
	void *ud;
} sbx_k8s_watch_opts;
sbx_k8s_watch *sbx_k8s_watch_pods(sbx_k8s_api *a, const sbx_k8s_watch_opts *o, sbx_error *err);
/* Stops a watch; no callback follows. */
void sbx_k8s_watch_cancel(sbx_k8s_watch *w);

/* Why is this pod not ready? One paragraph from its status (phase,
 * conditions, waiting/terminated containers) and the Warning events among
 * events (an EventList, or NULL). Empty when the pod is Running and Ready. */
void sbx_k8s_pod_diagnosis(json_t *pod, json_t *events, char *out, size_t len);

#endif
