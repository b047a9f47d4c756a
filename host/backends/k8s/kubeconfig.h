/* kubeconfig.h — where a Kubernetes API server is and how to log in to it.
 *
 * Resolves a kubeconfig (the KUBECONFIG list merged as kubectl merges it,
 * the current or a chosen context) or the pod's service account
 * (in-cluster) into plain values that an HTTP client hands to libcurl:
 *
 *   server          CURLOPT_URL prefix
 *   ca_pem          CURLOPT_CAINFO_BLOB (NULL: the system's CAs)
 *   insecure        CURLOPT_SSL_VERIFYPEER/VERIFYHOST = 0
 *   tls_server_name the name to verify the server's certificate against
 *   proxy_url       CURLOPT_PROXY
 *   cert_pem/key_pem CURLOPT_SSLCERT_BLOB / CURLOPT_SSLKEY_BLOB ("PEM")
 *   token           "Authorization: Bearer TOKEN"
 *
 * Every file a kubeconfig names is read at load time, so a missing file is
 * an error up front. Credentials that change (tokenFile, exec plugins) are
 * brought up to date by sbx_k8s_auth_refresh() (execcred.c) before use. */
#ifndef SBX_K8S_KUBECONFIG_H
#define SBX_K8S_KUBECONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"

/* An exec credential plugin (users[].user.exec), as kubectl runs it. */
typedef struct sbx_k8s_exec_plugin {
	char *command;     /* a relative path with a '/' is resolved against the kubeconfig's directory */
	char **args;       /* NULL-terminated */
	char **env;        /* "NAME=VALUE", NULL-terminated; added to our environment */
	char *api_version; /* client.authentication.k8s.io/v1 or v1beta1 */
	char *install_hint;
	int provide_cluster_info;
	int interactive_always; /* interactiveMode: Always (we never have a terminal) */
} sbx_k8s_exec_plugin;

typedef struct sbx_k8s_config {
	char *origin;          /* "FILE[:FILE...]" or "in-cluster service account (DIR)" */
	int in_cluster;
	char *context, *cluster, *user; /* names (NULL in-cluster) */

	char *server;          /* "https://host:port[/path]", no trailing '/' */
	char *namespace;
	const char *namespace_from; /* which rule chose it (static text) */

	char *ca_file;         /* where ca_pem came from (NULL: inline data or none) */
	unsigned char *ca_pem;
	size_t ca_pem_len;
	int insecure;          /* insecure-skip-tls-verify */
	char *tls_server_name;
	char *proxy_url;

	/* Client certificate (TLS). From files, inline data or an exec plugin. */
	char *cert_file, *key_file;
	unsigned char *cert_pem, *key_pem;
	size_t cert_pem_len, key_pem_len;
	/* Bearer token. From the kubeconfig, tokenFile or an exec plugin. */
	char *token;
	char *token_file;      /* re-read by sbx_k8s_auth_refresh() (rotated tokens) */
	uint64_t token_read_ms; /* when token_file was last read (sbx_now_ms) */
	sbx_k8s_exec_plugin *exec;
	int64_t expires;       /* exec credential expiry, unix seconds; 0: never */
	int have_exec_credential;
	struct plugin_run *refreshing; /* the plugin run in flight, shared by every caller */
} sbx_k8s_config;

typedef struct sbx_k8s_config_opts {
	const char *kubeconfig; /* ':'-separated list; NULL: $KUBECONFIG, else ~/.kube/config */
	const char *context;    /* NULL: the current-context */
	const char *namespace;  /* an explicit namespace (--namespace) beats every rule */
	/* The service account directory; NULL: $SBX_K8S_SERVICEACCOUNT_DIR, else
	 * /var/run/secrets/kubernetes.io/serviceaccount. */
	const char *serviceaccount_dir;
} sbx_k8s_config_opts;

/* Load the configuration. Uses the kubeconfig files when any exists (or one
 * was named), else the in-cluster service account when
 * KUBERNETES_SERVICE_HOST is set. The namespace is, in order: o->namespace,
 * $INSPECT_K8S_DEFAULT_NAMESPACE, the service account's namespace file, the
 * context's namespace, "default". 0, or -1 with an error naming the file,
 * the key and the fix; cfg is then empty (free is still safe). */
int sbx_k8s_config_load(const sbx_k8s_config_opts *o, sbx_k8s_config *cfg, char *err, size_t err_len);
void sbx_k8s_config_free(sbx_k8s_config *cfg);

/* "token", "token file", "client certificate", "exec plugin (CMD)",
 * "client certificate + token", "none": how requests authenticate. Never
 * shows a secret. */
void sbx_k8s_auth_describe(const sbx_k8s_config *cfg, char *out, size_t len);

/* execcred.c: make the credentials current. Re-reads token_file when it was
 * read more than a minute ago; runs the exec plugin when there is no
 * credential yet or it expires within 60 s (kubectl's margin is similar),
 * as a child process watched by the loop, killed after timeout_ms. Calls
 * made while the plugin runs wait for that same run (one plugin process,
 * however many requests need a token). done runs exactly once, from the
 * loop, with NULL or an error message (which names the plugin, its exit
 * status, its stderr and its install hint). Returns 0, or -1 when it could
 * not start (err set; done will not run). Do not free cfg or the loop while
 * a refresh is pending. */
typedef void (*sbx_k8s_auth_done)(void *ud, const char *err);
int sbx_k8s_auth_refresh(sbx_loop *loop, sbx_k8s_config *cfg, int timeout_ms, sbx_k8s_auth_done done, void *ud,
			 char *err, size_t err_len);
/* The same, waiting for it on a private loop. 0, or -1 with err. */
int sbx_k8s_auth_refresh_sync(sbx_k8s_config *cfg, int timeout_ms, char *err, size_t err_len);

/* Parse an ExecCredential (the plugin's stdout) into cfg's token or client
 * certificate and expiry. 0, or -1 with err (what is wrong, for messages). */
int sbx_k8s_exec_credential_parse(sbx_k8s_config *cfg, const char *json, size_t len, char *err, size_t err_len);

#endif
