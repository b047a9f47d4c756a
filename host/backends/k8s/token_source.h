/* token_source.h — a session's own source of current Kubernetes credentials.
 *
 * A bearer token from an exec plugin (EKS: 15 minutes) or a projected
 * service-account token file expires while a session lives on; each redial
 * must present a current one. A token source keeps its own loaded kubeconfig
 * (not the caller's, which may be freed first) and, when asked, refreshes
 * it: the plugin runs again when its credential expires within a minute,
 * the token file is re-read when older than a minute (execcred.c). It plugs
 * into sbx_k8s_conn.token_source / token_ud / token_free. */
#ifndef SBX_K8S_TOKEN_SOURCE_H
#define SBX_K8S_TOKEN_SOURCE_H

#include <stddef.h>

#include "backends/k8s/kubeconfig.h"
#include "sbx.h"

/* For credentials that can change (an exec plugin or a token file in cfg),
 * a source loading the same kubeconfig, context and namespace; NULL when
 * cfg's token is fixed (nothing to refresh) or out of memory. */
void *sbx_k8s_token_source_new(const sbx_k8s_config *cfg, const char *kubeconfig, const char *context,
			       const char *ns);
/* The current bearer token (valid until the next call), or NULL with err. */
const char *sbx_k8s_token_source_get(void *source, char *err, size_t err_len);
void sbx_k8s_token_source_free(void *source);

/* Set k's token_source, token_ud and token_free to a new source for cfg
 * (left NULL when cfg's token is fixed). */
void sbx_k8s_conn_refreshing(sbx_k8s_conn *k, const sbx_k8s_config *cfg, const char *kubeconfig,
			     const char *context, const char *ns);

#endif
