/* cmd_k8s_config.c — `sbx k8s-config`: the Kubernetes settings sbx would
 * use (server, namespace, how it logs in), for debugging. Never secrets. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "backends/k8s/kubeconfig.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx k8s-config [--kubeconfig FILES] [--context C] [--namespace N] [--login] [--json]\n"
		"\n"
		"Shows which API server, namespace and credentials sbx would use: the\n"
		"KUBECONFIG files merged as kubectl merges them (or the pod's service\n"
		"account), the current or given context. Secrets are never printed.\n"
		"\n"
		"  --login   also run the exec credential plugin (or re-read the token\n"
		"            file) and show what it returned and until when\n");
}

static void row(int json, int *first, const char *key, const char *value)
{
	if (!json) {
		printf("%-16s %s\n", key, value ? value : "-");
		return;
	}
	printf("%s\"%s\": ", *first ? "{" : ", ", key);
	*first = 0;
	if (value)
		json_str(stdout, value, strlen(value));
	else
		printf("null");
}

int cmd_k8s_config(int argc, char **argv)
{
	sbx_k8s_config_opts o = {0};
	int json = 0, login = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--kubeconfig") && i + 1 < argc)
			o.kubeconfig = argv[++i];
		else if (!strcmp(argv[i], "--context") && i + 1 < argc)
			o.context = argv[++i];
		else if ((!strcmp(argv[i], "--namespace") || !strcmp(argv[i], "-n")) && i + 1 < argc)
			o.namespace = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--login"))
			login = 1;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			cli_say(stderr, "sbx k8s-config: unexpected argument '%s'\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	sbx_k8s_config c;
	char err[4096];
	if (sbx_k8s_config_load(&o, &c, err, sizeof err) < 0) {
		cli_say(stderr, "sbx k8s-config: %s\n", err);
		return 1;
	}
	if (login && sbx_k8s_auth_refresh_sync(&c, 30000, err, sizeof err) < 0) {
		cli_say(stderr, "sbx k8s-config: %s\n", err);
		sbx_k8s_config_free(&c);
		return 1;
	}
	char ca[4200], auth[4200], ns[300], cred[200] = "";
	if (c.ca_file)
		snprintf(ca, sizeof ca, "%s", c.ca_file);
	else if (c.ca_pem)
		snprintf(ca, sizeof ca, "inline (%zu bytes)", c.ca_pem_len);
	else
		snprintf(ca, sizeof ca, "the system's CAs");
	sbx_k8s_auth_describe(&c, auth, sizeof auth);
	snprintf(ns, sizeof ns, "%s (from %s)", c.namespace, c.namespace_from);
	if (login) {
		char until[64] = "no expiry";
		if (c.expires) {
			time_t t = (time_t)c.expires;
			strftime(until, sizeof until, "expires %Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		}
		snprintf(cred, sizeof cred, "%s%s%s, %s", c.token ? "token" : "",
			 c.token && c.cert_pem ? " + " : "", c.cert_pem ? "client certificate" : "", until);
	}
	int first = 1;
	row(json, &first, "origin", c.origin);
	row(json, &first, "context", c.context);
	row(json, &first, "cluster", c.cluster);
	row(json, &first, "user", c.user);
	row(json, &first, "server", c.server);
	row(json, &first, "namespace", json ? c.namespace : ns);
	if (json)
		row(json, &first, "namespace_from", c.namespace_from);
	row(json, &first, "ca", ca);
	row(json, &first, "tls_server_name", c.tls_server_name);
	row(json, &first, "insecure", c.insecure ? "true" : "false");
	row(json, &first, "proxy", c.proxy_url);
	row(json, &first, "auth", auth);
	if (login)
		row(json, &first, "credential", cred);
	if (json)
		printf("}\n");
	sbx_k8s_config_free(&c);
	return 0;
}
