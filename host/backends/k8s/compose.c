/* compose.c — docker compose -> agent-env chart values.
 *
 * The input is read with libyaml into a document (yamldoc.h); the output is
 * built as a second libyaml document and emitted, so quoting is always
 * right. Each compose mapping is first sorted into the keys we translate,
 * the keys we ignore (a warning) and everything else (an error naming the
 * key and its line); then the values are written in the chart's order. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"
#include "compose_cv.h"
#include "yamldoc.h"

#define MAX_COMPOSE_BYTES (4u << 20)

/* ---- scalar conversions --------------------------------------------------------- */

static int need_text(cv *c, yaml_node_t *n, const char *key)
{
	if (!ydoc_str(n) || ydoc_is_null(n))
		return cv_bad(c, n, "'%s' must be text, not %s", key, ydoc_kind(n));
	return 0;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* Compose durations as the k8s sandbox accepts them: "1h", "1m30s", "10s". */
static int duration_seconds(cv *c, yaml_node_t *n, const char *key, long *out)
{
	const char *s = ydoc_str(n);
	long total = 0;
	int parts = 0;
	const char *units = "hms";
	static const long mult[] = {3600, 60, 1};
	int next_unit = 0;
	while (s && *s) {
		char *end;
		if (!isdigit((unsigned char)*s))
			break;
		long v = strtol(s, &end, 10);
		const char *u = *end ? strchr(units + next_unit, *end) : NULL;
		if (!u || v > 1000000)
			break;
		next_unit = (int)(u - units) + 1;
		total += v * mult[u - units];
		parts++;
		s = end + 1;
	}
	if (!s || *s || !parts)
		return cv_bad(c, n, "'%s: %s' is not a duration sbx understands: use hours, minutes and seconds "
				 "such as 30s or 1m30s",
			   key, s ? ydoc_str(n) : ydoc_kind(n));
	*out = total;
	return 0;
}

/* Compose byte values ("512m", "1.5GB", 1073741824) as Kubernetes quantities. */
static int byte_quantity(cv *c, yaml_node_t *n, const char *key, char *out, size_t len)
{
	const char *s = ydoc_str(n);
	if (!s || ydoc_is_null(n))
		return cv_bad(c, n, "'%s' must be a size such as 512m or 2g, not %s", key, ydoc_kind(n));
	size_t digits = strspn(s, "0123456789");
	size_t num = digits;
	if (digits && s[num] == '.' && isdigit((unsigned char)s[num + 1]))
		num += 1 + strspn(s + num + 1, "0123456789");
	const char *unit = s + num;
	static const struct {
		const char *in, *out;
	} units[] = {{"", ""}, {"b", ""}, {"k", "Ki"}, {"kb", "Ki"}, {"m", "Mi"}, {"mb", "Mi"}, {"g", "Gi"}, {"gb", "Gi"}};
	for (size_t i = 0; digits && num < 40 && i < sizeof units / sizeof *units; i++) {
		if (strcasecmp(unit, units[i].in) == 0) {
			if (!*unit && num != digits)
				break; /* "1.5" bytes */
			snprintf(out, len, "%.*s%s", (int)num, s, units[i].out);
			return 0;
		}
	}
	return cv_bad(c, n, "'%s: %s' is not a size sbx understands: use a number with b, k, m or g (e.g. 512m, 1.5g)",
		   key, s);
}

/* Compose cpus ("0.5", 2) as a Kubernetes quantity. */
static int cpu_quantity(cv *c, yaml_node_t *n, const char *key, char *out, size_t len)
{
	const char *s = ydoc_str(n);
	size_t digits = s ? strspn(s, "0123456789") : 0;
	size_t num = s && s[digits] == '.' ? digits + 1 + strspn(s + digits + 1, "0123456789") : digits;
	if (!s || num == 0 || s[num] || num > 30 || strtod(s, NULL) <= 0)
		return cv_bad(c, n, "'%s' must be a positive number of CPUs such as 0.5 or 2, not '%s'", key,
			   s ? s : ydoc_kind(n));
	snprintf(out, len, "%s", s);
	return 0;
}

/* A volume or network name as a Kubernetes name: '_' and '.' become '-',
 * upper case becomes lower case (what the k8s sandbox does). */
static void k8s_name(const char *in, char *out, size_t len, int keep_dots)
{
	size_t i = 0;
	for (; in[i] && i + 1 < len; i++) {
		char ch = (char)tolower((unsigned char)in[i]);
		out[i] = ch == '_' || (ch == '.' && !keep_dots) ? '-' : ch;
	}
	out[i] = 0;
}

static int valid_k8s_name(const char *s, size_t max, int dots)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || s[0] == '-' || s[n - 1] == '-' || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' ||
		      (dots && s[i] == '.')))
			return 0;
	return 1;
}

/* A list of strings, or one string split on whitespace (entrypoint, command). */
static int argv_list(cv *c, yaml_node_t *n, const char *key)
{
	int seq = cv_seq(c);
	if (n->type == YAML_SCALAR_NODE) {
		char *copy = strdup(ydoc_str(n));
		if (!copy)
			abort();
		for (char *save = NULL, *w = strtok_r(copy, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save))
			cv_push(c, seq, cv_str(c, w));
		free(copy);
		return seq;
	}
	if (n->type != YAML_SEQUENCE_NODE)
		return cv_bad(c, n, "'%s' must be a list of strings or one string, not %s", key, ydoc_kind(n));
	for (size_t i = 0; i < ydoc_len(n); i++) {
		yaml_node_t *item = ydoc_item(&c->in, n, i);
		if (!ydoc_str(item))
			return cv_bad(c, item, "'%s' items must be strings, not %s", key, ydoc_kind(item));
		cv_push(c, seq, cv_str(c, ydoc_str(item)));
	}
	return seq;
}

/* ---- service keys ------------------------------------------------------------- */

static int env_item(cv *c, int seq, yaml_node_t *at, const char *name, size_t name_len, int value)
{
	if (name_len == 0)
		return cv_bad(c, at, "an environment variable has an empty name");
	char nm[256];
	if (name_len >= sizeof nm)
		return cv_bad(c, at, "environment variable name longer than %zu bytes", sizeof nm - 1);
	memcpy(nm, name, name_len);
	nm[name_len] = 0;
	int m = cv_map(c);
	cv_set(c, m, "name", cv_str(c, nm));
	cv_set(c, m, "value", value);
	cv_push(c, seq, m);
	return 0;
}

static int environment(cv *c, yaml_node_t *n)
{
	int seq = cv_seq(c);
	if (n->type == YAML_SEQUENCE_NODE) {
		for (size_t i = 0; i < ydoc_len(n); i++) {
			yaml_node_t *item = ydoc_item(&c->in, n, i);
			const char *s = ydoc_str(item);
			const char *eq = s ? strchr(s, '=') : NULL;
			if (!eq)
				return cv_bad(c, item,
					   "environment entry '%s' has no '=': write NAME=VALUE (sbx does not copy "
					   "variables from the host into the sandbox)",
					   s ? s : ydoc_kind(item));
			if (env_item(c, seq, item, s, (size_t)(eq - s), cv_str(c, eq + 1)) < 0)
				return -1;
		}
		return seq;
	}
	if (n->type != YAML_MAPPING_NODE)
		return cv_bad(c, n, "'environment' must be a mapping or a list of NAME=VALUE, not %s", ydoc_kind(n));
	size_t np;
	ypair *ps = ydoc_pairs(&c->in, n, &np);
	int rc = seq;
	for (size_t i = 0; i < np && rc > 0; i++) {
		const char *k = ydoc_str(ps[i].key), *v = ydoc_str(ps[i].value);
		if (!k)
			rc = cv_bad(c, ps[i].key, "environment variable names must be text");
		else if (!v && !ydoc_is_null(ps[i].value))
			rc = cv_bad(c, ps[i].value, "environment variable '%s' must be text, not %s", k,
				 ydoc_kind(ps[i].value));
		else if (ydoc_is_null(ps[i].value))
			rc = cv_bad(c, ps[i].value,
				 "environment variable '%s' has no value: give it one (sbx does not copy variables "
				 "from the host into the sandbox)",
				 k);
		else if (env_item(c, seq, ps[i].key, k, strlen(k), cv_like(c, ps[i].value)) < 0)
			rc = -1;
	}
	free(ps);
	return rc;
}

static int service_volumes(cv *c, yaml_node_t *n)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return cv_bad(c, n, "'volumes' must be a list of \"name:/path\", not %s", ydoc_kind(n));
	int seq = cv_seq(c);
	for (size_t i = 0; i < ydoc_len(n); i++) {
		yaml_node_t *item = ydoc_item(&c->in, n, i);
		const char *s = ydoc_str(item);
		if (!s)
			return cv_bad(c, item, "only the short volume syntax \"name:/path[:ro]\" is supported, not %s",
				   ydoc_kind(item));
		const char *colon = strchr(s, ':');
		if (!colon)
			return cv_bad(c, item, "volume '%s' has no mount path: write \"name:/path\"", s);
		if (s[0] == '.' || s[0] == '/' || s[0] == '~')
			return cv_bad(c, item,
				   "volume '%s' is a bind mount of a host path, which Kubernetes pods cannot see: "
				   "use a named volume (defined under top-level volumes:) or copy the files in",
				   s);
		char raw[256], name[256], path[1024];
		snprintf(raw, sizeof raw, "%.*s", (int)(colon - s), s);
		k8s_name(raw, name, sizeof name, 0);
		snprintf(path, sizeof path, "%s", colon + 1);
		char *mode = strchr(path, ':');
		if (mode) {
			*mode++ = 0;
			if (strcmp(mode, "ro") && strcmp(mode, "rw"))
				return cv_bad(c, item, "volume '%s': mode '%s' is not supported (use ro or rw)", s, mode);
		}
		if (!ydoc_get(&c->in, c->volumes, raw))
			return cv_bad(c, item, "volume '%s' is not defined: add it under the top-level volumes:", raw);
		char out[1400];
		snprintf(out, sizeof out, "%s:%s%s", name, path, mode && !strcmp(mode, "ro") ? ":ro" : "");
		cv_push(c, seq, cv_str(c, out));
	}
	return seq;
}

static int healthcheck_test(cv *c, yaml_node_t *t, int *probe_off)
{
	int seq = cv_seq(c);
	if (ydoc_str(t) && !ydoc_is_null(t)) { /* a string is CMD-SHELL */
		cv_push(c, seq, cv_str(c, "sh"));
		cv_push(c, seq, cv_str(c, "-c"));
		cv_push(c, seq, cv_str(c, ydoc_str(t)));
		return seq;
	}
	const char *kind = ydoc_str(ydoc_item(&c->in, t, 0));
	if (!kind)
		return cv_bad(c, t, "healthcheck 'test' must be [\"CMD\", ...], [\"CMD-SHELL\", \"...\"] or a string");
	for (size_t i = 1; i < ydoc_len(t); i++)
		if (!ydoc_str(ydoc_item(&c->in, t, i)))
			return cv_bad(c, ydoc_item(&c->in, t, i), "healthcheck 'test' items must be strings");
	if (!strcmp(kind, "NONE")) {
		*probe_off = 1;
		return seq;
	}
	if (!strcmp(kind, "CMD")) {
		if (ydoc_len(t) < 2)
			return cv_bad(c, t, "healthcheck 'test' [\"CMD\"] has no command");
		for (size_t i = 1; i < ydoc_len(t); i++)
			cv_push(c, seq, cv_str(c, ydoc_str(ydoc_item(&c->in, t, i))));
		return seq;
	}
	if (!strcmp(kind, "CMD-SHELL")) {
		if (ydoc_len(t) != 2)
			return cv_bad(c, t, "healthcheck 'test' [\"CMD-SHELL\", ...] takes exactly one shell command");
		cv_push(c, seq, cv_str(c, "sh"));
		cv_push(c, seq, cv_str(c, "-c"));
		cv_push(c, seq, cv_str(c, ydoc_str(ydoc_item(&c->in, t, 1))));
		return seq;
	}
	return cv_bad(c, t, "healthcheck 'test' starts with '%s': only CMD, CMD-SHELL and NONE are supported", kind);
}

/* healthcheck -> readinessProbe; 0 when the check is disabled. */
static int healthcheck(cv *c, yaml_node_t *n)
{
	enum { TEST, INTERVAL, TIMEOUT, START_PERIOD, RETRIES, NKEYS }; /* 'disable' is refused, as by the k8s sandbox */
	static const char *const names[NKEYS] = {"test", "interval", "timeout", "start_period", "retries"};
	static const ignored_key ign[] = {{"start_interval", "Kubernetes probes have no separate start interval"},
					  {NULL, NULL}};
	yaml_node_t *k[NKEYS];
	if (cv_sort_keys(c, n, "healthcheck", names, NKEYS, k, ign, EXT_WARN) < 0)
		return -1;
	if (!k[TEST])
		return cv_bad(c, n, "healthcheck has no 'test'");
	int off = 0;
	int cmd = healthcheck_test(c, k[TEST], &off);
	if (cmd < 0 || off)
		return off ? 0 : -1;
	int probe = cv_map(c), exec = cv_map(c);
	cv_set(c, exec, "command", cmd);
	cv_set(c, probe, "exec", exec);
	static const struct {
		int key;
		const char *out;
	} durations[] = {{START_PERIOD, "initialDelaySeconds"}, {INTERVAL, "periodSeconds"}, {TIMEOUT, "timeoutSeconds"}};
	for (size_t i = 0; i < sizeof durations / sizeof *durations; i++) {
		long secs = 0;
		if (!k[durations[i].key])
			continue;
		if (duration_seconds(c, k[durations[i].key], names[durations[i].key], &secs) < 0)
			return -1;
		cv_set(c, probe, durations[i].out, cv_int(c, secs));
	}
	if (k[RETRIES]) {
		const char *r = ydoc_str(k[RETRIES]);
		if (!r || !all_digits(r) || strlen(r) > 6)
			return cv_bad(c, k[RETRIES], "healthcheck 'retries' must be a whole number");
		cv_set(c, probe, "failureThreshold", cv_int(c, atol(r) + 1)); /* N retries = N+1 failures */
	}
	return probe;
}

/* {cpus, memory} -> {cpu, memory} */
static int resource_set(cv *c, yaml_node_t *n, const char *what)
{
	enum { CPUS, MEMORY, NKEYS };
	static const char *const names[NKEYS] = {"cpus", "memory"};
	static const ignored_key ign[] = {{"pids", "Kubernetes has no per-container pid limit"},
					  {"devices", "devices cannot be reserved through the agent-env chart"},
					  {NULL, NULL}};
	yaml_node_t *k[NKEYS];
	if (cv_sort_keys(c, n, what, names, NKEYS, k, ign, EXT_REFUSE) < 0)
		return -1;
	int m = cv_map(c);
	char q[64];
	if (k[CPUS]) {
		if (cpu_quantity(c, k[CPUS], "cpus", q, sizeof q) < 0)
			return -1;
		cv_set(c, m, "cpu", cv_like(c, k[CPUS]));
	}
	if (k[MEMORY]) {
		if (byte_quantity(c, k[MEMORY], "memory", q, sizeof q) < 0)
			return -1;
		cv_set(c, m, "memory", cv_str(c, q));
	}
	return m;
}

/* deploy.resources, else mem_limit / cpus -> resources; requests default to
 * the limits (Guaranteed QoS, as the chart's own default). 0: none given. */
static int resources(cv *c, yaml_node_t *deploy, yaml_node_t *mem_limit, yaml_node_t *cpus)
{
	static const char *const dnames[] = {"resources"};
	static const ignored_key dign[] = {
		{"restart_policy", "Kubernetes restarts containers itself"},
		{"replicas", "every service is one pod"},
		{NULL, NULL}};
	yaml_node_t *res;
	if (cv_sort_keys(c, deploy, "deploy", dnames, 1, &res, dign, EXT_REFUSE) < 0)
		return -1;
	if (res && !ydoc_is_null(res)) {
		static const char *const rnames[] = {"limits", "reservations"};
		yaml_node_t *k[2];
		if (cv_sort_keys(c, res, "deploy.resources", rnames, 2, k, NULL, EXT_REFUSE) < 0)
			return -1;
		if (mem_limit)
			cv_warn(c, mem_limit, "'mem_limit' ignored: deploy.resources is set and takes precedence");
		if (cpus)
			cv_warn(c, cpus, "'cpus' ignored: deploy.resources is set and takes precedence");
		int limits = k[0] ? resource_set(c, k[0], "deploy.resources.limits") : 0;
		int requests = k[1] ? resource_set(c, k[1], "deploy.resources.reservations") : 0;
		if (limits < 0 || requests < 0)
			return -1;
		if (!limits && !requests)
			return 0;
		int m = cv_map(c);
		if (limits)
			cv_set(c, m, "limits", limits);
		if (requests)
			cv_set(c, m, "requests", requests);
		else
			cv_set(c, m, "requests", resource_set(c, k[0], "deploy.resources.limits"));
		return m;
	}
	if (!mem_limit && !cpus)
		return 0;
	char q[64];
	int m = cv_map(c);
	for (int pass = 0; pass < 2; pass++) { /* limits, then the same as requests */
		int set = cv_map(c);
		if (cpus) {
			if (cpu_quantity(c, cpus, "cpus", q, sizeof q) < 0)
				return -1;
			cv_set(c, set, "cpu", cv_like(c, cpus));
		}
		if (mem_limit) {
			if (byte_quantity(c, mem_limit, "mem_limit", q, sizeof q) < 0)
				return -1;
			cv_set(c, set, "memory", cv_str(c, q));
		}
		cv_set(c, m, pass ? "requests" : "limits", set);
	}
	return m;
}

/* user "uid[:gid]" and security_opt (seccomp) -> securityContext; 0: none. */
static int security_context(cv *c, yaml_node_t *user, yaml_node_t *opts)
{
	if (!user && !opts)
		return 0;
	int m = cv_map(c);
	if (user) {
		const char *u = ydoc_str(user);
		char uid[32] = "", gid[32] = "";
		const char *colon = u ? strchr(u, ':') : NULL;
		if (u && colon && colon - u < 31 && strlen(colon + 1) < 31) {
			snprintf(uid, sizeof uid, "%.*s", (int)(colon - u), u);
			snprintf(gid, sizeof gid, "%s", colon + 1);
		} else if (u && strlen(u) < 31) {
			snprintf(uid, sizeof uid, "%s", u);
		}
		if (!all_digits(uid) || (colon && !all_digits(gid)) || strlen(uid) > 10 || strlen(gid) > 10)
			return cv_bad(c, user,
				   "user '%s': Kubernetes needs numeric ids; write \"UID\" or \"UID:GID\" (e.g. "
				   "\"1000:1000\")",
				   u ? u : ydoc_kind(user));
		cv_set(c, m, "runAsUser", cv_plain(c, uid));
		if (colon)
			cv_set(c, m, "runAsGroup", cv_plain(c, gid));
	}
	if (opts) {
		if (opts->type != YAML_SEQUENCE_NODE)
			return cv_bad(c, opts, "'security_opt' must be a list, not %s", ydoc_kind(opts));
		int prof = 0;
		for (size_t i = 0; i < ydoc_len(opts); i++)
			if ((prof = cv_seccomp_profile(c, ydoc_item(&c->in, opts, i))) < 0)
				return -1;
		if (prof)
			cv_set(c, m, "seccompProfile", prof);
	}
	return m;
}

/* null or {} */
static int empty_mapping(cv *c, yaml_node_t *n)
{
	size_t np = 0;
	free(ydoc_pairs(&c->in, n, &np));
	return ydoc_is_null(n) || (n->type == YAML_MAPPING_NODE && np == 0);
}

static int service_networks(cv *c, yaml_node_t *n)
{
	int seq = cv_seq(c);
	size_t count = n->type == YAML_SEQUENCE_NODE ? ydoc_len(n) : 0;
	size_t np = 0;
	ypair *ps = n->type == YAML_MAPPING_NODE ? ydoc_pairs(&c->in, n, &np) : NULL;
	if (n->type != YAML_SEQUENCE_NODE && n->type != YAML_MAPPING_NODE)
		return cv_bad(c, n, "'networks' must be a list of network names, not %s", ydoc_kind(n));
	int rc = seq;
	for (size_t i = 0; i < count + np && rc > 0; i++) {
		yaml_node_t *item = i < count ? ydoc_item(&c->in, n, i) : ps[i - count].key;
		const char *name = ydoc_str(item);
		if (i >= count && !empty_mapping(c, ps[i - count].value)) {
			rc = cv_bad(c, ps[i - count].value,
				 "network '%s': per-service network settings (aliases, addresses) are not supported",
				 name ? name : "?");
			break;
		}
		if (!name || ydoc_is_null(item)) {
			rc = cv_bad(c, item, "'networks' items must be network names");
			break;
		}
		if (!ydoc_get(&c->in, c->networks, name)) {
			rc = cv_bad(c, item, "network '%s' is not defined: add it under the top-level networks:", name);
			break;
		}
		char k8s[256];
		k8s_name(name, k8s, sizeof k8s, 1);
		cv_push(c, seq, cv_str(c, k8s));
	}
	free(ps);
	return rc;
}

enum {
	S_RUNTIME, S_IMAGE, S_ENTRYPOINT, S_COMMAND, S_WORKING_DIR, S_ENVIRONMENT, S_VOLUMES, S_HEALTHCHECK,
	S_MEM_LIMIT, S_CPUS, S_DEPLOY, S_USER, S_SECURITY_OPT, S_NETWORK_MODE, S_NETWORKS, S_HOSTNAME,
	S_X_DEFAULT, S_X_INSPECT, S_X_K8S, S_BUILD, S_X_LOCAL, S_MEMSWAP,
	S_INIT, S_PORTS, S_DEPENDS_ON, S_READ_ONLY, S_STOP_GRACE, S_NKEYS /* from S_INIT: docker only */
};
#define S_K8S_NKEYS S_INIT
static const char *const service_keys[S_NKEYS] = {
	"runtime", "image", "entrypoint", "command", "working_dir", "environment", "volumes", "healthcheck",
	"mem_limit", "cpus", "deploy", "user", "security_opt", "network_mode", "networks", "hostname", "x-default",
	"x-inspect_k8s_sandbox", "x-k8s", "build", "x-local", "memswap_limit",
	"init", "ports", "depends_on", "read_only", "stop_grace_period"};
static const ignored_key service_ignored[] = {
	{"expose", "every port is open to the other services of the sandbox"},
	{"init", "Kubernetes has no init process option"},
	{NULL, NULL}};

/* The chart's own default image, for a service without 'image:'. */
#define DEFAULT_IMAGE "python:3.12-bookworm"

/* build / x-local: one warning naming both (images come from a registry). */
static void warn_local_image(cv *c, yaml_node_t **k)
{
	if (c->docker || (!k[S_BUILD] && !k[S_X_LOCAL]))
		return;
	const char *both = k[S_BUILD] && k[S_X_LOCAL] ? "'x-local' and 'build'" : k[S_BUILD] ? "'build'" : "'x-local'";
	yaml_node_t *at = k[S_X_LOCAL] ? k[S_X_LOCAL] : k[S_BUILD];
	cv_warn(c, at, "%s ignored: Kubernetes pulls every image from a registry; push the image and set 'image'%s",
	     both, k[S_IMAGE] ? "" : " (until then the chart's " DEFAULT_IMAGE " is used)");
}

/* One service -> one services.<name> mapping (-1 on error). */
static int service(cv *c, const char *name, yaml_node_t *n, const char *renamed_from)
{
	yaml_node_t *k[S_NKEYS];
	if (ydoc_is_null(n))
		return cv_bad(c, n, "the service is empty: it needs at least an image");
	for (int i = S_K8S_NKEYS; i < S_NKEYS; i++)
		k[i] = NULL;
	if (cv_sort_keys(c, n, "a service", service_keys, c->docker ? S_NKEYS : S_K8S_NKEYS, k, service_ignored,
			 EXT_QUIET) < 0)
		return -1;
	int m = cv_map(c), v;
	if (k[S_RUNTIME]) {
		if (need_text(c, k[S_RUNTIME], "runtime") < 0)
			return -1;
		cv_set(c, m, "runtimeClassName", cv_str(c, ydoc_str(k[S_RUNTIME])));
	}
	if (k[S_IMAGE] && need_text(c, k[S_IMAGE], "image") < 0)
		return -1;
	if (k[S_IMAGE] || !c->docker || !k[S_BUILD]) /* docker builds an image without a name */
		cv_set(c, m, "image", cv_str(c, k[S_IMAGE] ? ydoc_str(k[S_IMAGE]) : DEFAULT_IMAGE));
	if (k[S_ENTRYPOINT] && !ydoc_is_null(k[S_ENTRYPOINT])) {
		if ((v = argv_list(c, k[S_ENTRYPOINT], "entrypoint")) < 0)
			return -1;
		cv_set(c, m, "command", v);
	}
	if (k[S_COMMAND] && !ydoc_is_null(k[S_COMMAND])) {
		if ((v = argv_list(c, k[S_COMMAND], "command")) < 0)
			return -1;
		cv_set(c, m, "args", v);
	}
	if (k[S_WORKING_DIR]) {
		if (need_text(c, k[S_WORKING_DIR], "working_dir") < 0)
			return -1;
		cv_set(c, m, "workingDir", cv_str(c, ydoc_str(k[S_WORKING_DIR])));
	}
	cv_set(c, m, "dnsRecord", cv_plain(c, "true")); /* every compose service has a DNS name */
	if (renamed_from && valid_k8s_name(renamed_from, 63, 0)) {
		int names = cv_seq(c);
		cv_push(c, names, cv_str(c, renamed_from)); /* its compose name still resolves */
		cv_set(c, m, "additionalDnsRecords", names);
	}
	if (k[S_ENVIRONMENT] && !ydoc_is_null(k[S_ENVIRONMENT])) {
		if ((v = environment(c, k[S_ENVIRONMENT])) < 0)
			return -1;
		cv_set(c, m, "env", v);
	}
	if (k[S_VOLUMES] && !ydoc_is_null(k[S_VOLUMES])) {
		if ((v = service_volumes(c, k[S_VOLUMES])) < 0)
			return -1;
		cv_set(c, m, "volumes", v);
	}
	if (k[S_HEALTHCHECK] && !ydoc_is_null(k[S_HEALTHCHECK])) {
		if ((v = healthcheck(c, k[S_HEALTHCHECK])) < 0)
			return -1;
		if (v)
			cv_set(c, m, "readinessProbe", v);
	}
	if ((v = resources(c, k[S_DEPLOY], k[S_MEM_LIMIT], k[S_CPUS])) < 0)
		return -1;
	if (k[S_X_INSPECT] && k[S_X_K8S])
		return cv_bad(c, k[S_X_K8S], "both 'x-inspect_k8s_sandbox' and 'x-k8s' are set: use one ('x-k8s' is its "
					  "short name)");
	yaml_node_t *ext = k[S_X_INSPECT] ? k[S_X_INSPECT] : k[S_X_K8S];
	if (ext && (v = cv_service_extension(c, ext, k[S_X_INSPECT] ? "x-inspect_k8s_sandbox" : "x-k8s", v)) < 0)
		return -1;
	if (v)
		cv_set(c, m, "resources", v);
	if ((v = security_context(c, k[S_USER], k[S_SECURITY_OPT])) < 0)
		return -1;
	if (v)
		cv_set(c, m, "securityContext", v);
	if (k[S_MEMSWAP] && !ydoc_is_null(k[S_MEMSWAP]))
		cv_warn(c, k[S_MEMSWAP], "'memswap_limit: %s' ignored: Kubernetes has no per-container swap limit",
		     ydoc_str(k[S_MEMSWAP]) ? ydoc_str(k[S_MEMSWAP]) : ydoc_kind(k[S_MEMSWAP]));
	const char *mode = k[S_NETWORK_MODE] ? ydoc_str(k[S_NETWORK_MODE]) : NULL;
	if (k[S_NETWORK_MODE] && !(mode && !strcmp(mode, "bridge"))) { /* bridge: compose's default */
		if (!mode || strcmp(mode, "none"))
			return cv_bad(c, k[S_NETWORK_MODE],
				   "network_mode '%s' is not supported: only 'none' (and 'bridge', the default) translate",
				   mode ? mode : ydoc_kind(k[S_NETWORK_MODE]));
		if (k[S_NETWORKS])
			return cv_bad(c, k[S_NETWORKS], "'network_mode: none' and 'networks' cannot both be set");
		cv_set(c, m, "networkIsolated", cv_plain(c, "true"));
	}
	if (k[S_NETWORKS] && !ydoc_is_null(k[S_NETWORKS])) {
		if ((v = service_networks(c, k[S_NETWORKS])) < 0)
			return -1;
		cv_set(c, m, "networks", v);
	}
	if (k[S_HOSTNAME]) {
		const char *h = ydoc_str(k[S_HOSTNAME]);
		const char *own = renamed_from ? renamed_from : name;
		if (!h || strcmp(h, own))
			return cv_bad(c, k[S_HOSTNAME], "hostname '%s' is not supported: only the service's own name ('%s') is",
				   h ? h : ydoc_kind(k[S_HOSTNAME]), own);
	}
	if (k[S_X_DEFAULT] && ydoc_bool(k[S_X_DEFAULT]) < 0)
		return cv_bad(c, k[S_X_DEFAULT], "'x-default' must be true or false");
	warn_local_image(c, k);
	if (c->docker && cv_docker_service(c, m, k[S_INIT], k[S_PORTS], k[S_DEPENDS_ON], k[S_READ_ONLY], k[S_BUILD]) < 0)
		return -1;
	return m;
}

/* ---- top level --------------------------------------------------------------------- */

/* Which service is "default": the one named so, else the one marked
 * x-default: true, else the first when there are several. A lone service
 * keeps its name (*out = n: none; the chart then adds its own default). */
static int pick_default(cv *c, ypair *svcs, size_t n, size_t *out)
{
	int marked = -1;
	for (size_t i = 0; i < n; i++) {
		const char *name = ydoc_str(svcs[i].key);
		if (name && !strcmp(name, "default")) {
			*out = i;
			return 0;
		}
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *x = svcs[i].value->type == YAML_MAPPING_NODE ? ydoc_get(&c->in, svcs[i].value, "x-default") : NULL;
		if (ydoc_bool(x) != 1)
			continue;
		if (marked >= 0)
			return cv_bad(c, x, "services '%s' and '%s' are both marked x-default: true; mark one",
				   ydoc_str(svcs[marked].key), ydoc_str(svcs[i].key));
		marked = (int)i;
	}
	if (marked < 0 && c->docker) /* Inspect's docker sandbox has no fallback */
		return cv_bad(c, svcs[0].key, "no default service: name one service 'default' or mark it "
					      "'x-default: true'");
	*out = marked >= 0 ? (size_t)marked : n > 1 ? 0 : n;
	return 0;
}

static int services(cv *c, yaml_node_t *n)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return cv_bad(c, n, "'services' must be a mapping of service names to services%s",
			   n ? "" : " (there is none)");
	size_t np;
	ypair *ps = ydoc_pairs(&c->in, n, &np);
	if (np == 0) {
		free(ps);
		return cv_bad(c, n, "'services' is empty: define at least one service");
	}
	size_t dflt = 0;
	int rc = pick_default(c, ps, np, &dflt);
	c->services = n;
	c->default_from = !rc && dflt < np ? ydoc_str(ps[dflt].key) : NULL;
	for (size_t i = 0; i < np && !rc; i++) {
		const char *name = ydoc_str(ps[i].key);
		if (i != dflt && (!name || !valid_k8s_name(name, 63, 0))) /* the default is renamed */
			rc = cv_bad(c, ps[i].key,
				 "service name '%s' is not a Kubernetes name: use lower-case letters, digits and '-' "
				 "(at most 63, starting and ending with a letter or digit)",
				 name ? name : "?");
	}
	int m = rc ? -1 : cv_map(c);
	for (size_t pass = 0; pass < np + 1 && !rc; pass++) { /* the default first, then file order */
		size_t i = pass == 0 ? dflt : pass - 1;
		if ((pass > 0 && i == dflt) || i >= np)
			continue;
		const char *name = ydoc_str(ps[i].key);
		int renamed = strcmp(name, "default") != 0 && i == dflt;
		c->svc = name;
		int v = service(c, renamed ? "default" : name, ps[i].value, renamed ? name : NULL);
		c->svc = NULL;
		if (v < 0)
			rc = -1;
		else
			cv_setq(c, m, renamed ? "default" : name, v);
		if (renamed && v >= 0)
			cv_warn(c, ps[i].key, "service '%s' becomes the sandbox's 'default' service (its name still "
					   "resolves inside the sandbox)",
			     name);
	}
	free(ps);
	return rc ? -1 : m;
}

/* Top-level volumes (empty ones only) -> PVCs; networks (bridge) -> names. */
static int definitions(cv *c, yaml_node_t *n, int is_network)
{
	const char *what = is_network ? "network" : "volume";
	if (n->type != YAML_MAPPING_NODE)
		return cv_bad(c, n, "top-level '%ss' must be a mapping, not %s", what, ydoc_kind(n));
	int m = cv_map(c);
	size_t np;
	ypair *ps = ydoc_pairs(&c->in, n, &np);
	int rc = m;
	for (size_t i = 0; i < np && rc > 0; i++) {
		const char *raw = ydoc_str(ps[i].key);
		char name[256];
		k8s_name(raw ? raw : "", name, sizeof name, is_network);
		if (!valid_k8s_name(name, is_network ? 55 : 59, is_network)) {
			rc = cv_bad(c, ps[i].key, "%s name '%s' does not make a Kubernetes name ('%s'): use letters, "
					       "digits and '-'",
				 what, raw ? raw : "?", name);
			break;
		}
		for (size_t j = 0; j < i; j++) {
			char other[256];
			k8s_name(ydoc_str(ps[j].key), other, sizeof other, is_network);
			if (!strcmp(other, name)) {
				rc = cv_bad(c, ps[i].key, "%ss '%s' and '%s' both become '%s' in Kubernetes: rename one",
					 what, ydoc_str(ps[j].key), raw, name);
				break;
			}
		}
		if (rc < 0)
			break;
		yaml_node_t *v = ps[i].value;
		int internal = 0;
		if (!is_network) {
			if (!empty_mapping(c, v)) {
				rc = cv_bad(c, v, "volume '%s' has settings: only empty volumes (\"%s: {}\") translate, "
					       "each to a shared PersistentVolumeClaim",
					 raw, raw);
				break;
			}
		} else {
			static const char *const names[] = {"driver", "internal"};
			yaml_node_t *k[2];
			if (cv_sort_keys(c, v, "a network", names, 2, k, NULL, EXT_WARN) < 0) {
				rc = -1;
				break;
			}
			const char *driver = ydoc_str(k[0]);
			if (k[0] && (!driver || strcmp(driver, "bridge"))) {
				rc = cv_bad(c, k[0], "network driver '%s' is not supported: only bridge networks translate",
					 driver ? driver : ydoc_kind(k[0]));
				break;
			}
			if (ydoc_bool(k[1]) != 1 && !c->docker)
				cv_warn(c, ps[i].key,
				     "network '%s' is not internal: in Kubernetes no network reaches the internet; "
				     "allow sites with x-inspect_k8s_sandbox: allow_domains",
				     raw);
			internal = ydoc_bool(k[1]) == 1;
		}
		int def = cv_map(c);
		if (c->docker && internal)
			cv_set(c, def, "internal", cv_plain(c, "true"));
		cv_setq(c, m, name, def);
	}
	free(ps);
	return rc;
}

static int string_list(cv *c, yaml_node_t *n, const char *key)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return cv_bad(c, n, "'%s' must be a list, not %s", key, ydoc_kind(n));
	int seq = cv_seq(c);
	for (size_t i = 0; i < ydoc_len(n); i++) {
		yaml_node_t *item = ydoc_item(&c->in, n, i);
		if (!ydoc_str(item) || ydoc_is_null(item))
			return cv_bad(c, item, "'%s' items must be text, not %s", key, ydoc_kind(item));
		cv_push(c, seq, cv_str(c, ydoc_str(item)));
	}
	return seq;
}

/* x-inspect_k8s_sandbox / x-k8s: settings of the chart that compose lacks. */
static int extension(cv *c, int values, yaml_node_t *n, const char *key)
{
	enum { DOMAINS, ENTITIES, SA_NAME, SA_CREATE, SA_AUTOMOUNT, NKEYS };
	static const char *const names[NKEYS] = {"allow_domains", "allow_entities", "service_account_name",
						 "service_account_create", "automount_service_account_token"};
	static const char *const out[NKEYS] = {"allowDomains", "allowEntities", "serviceAccountName",
					       "serviceAccountCreate", "automountServiceAccountToken"};
	yaml_node_t *k[NKEYS];
	char what[64];
	snprintf(what, sizeof what, "'%s'", key);
	if (cv_sort_keys(c, n, what, names, NKEYS, k, NULL, EXT_REFUSE) < 0)
		return -1;
	for (int i = 0; i < NKEYS; i++) {
		if (!k[i] || ydoc_is_null(k[i]))
			continue;
		int v;
		if (i <= ENTITIES) {
			v = string_list(c, k[i], names[i]);
		} else if (i == SA_NAME) {
			v = need_text(c, k[i], names[i]) < 0 ? -1 : cv_str(c, ydoc_str(k[i]));
			if (v > 0 && (cv_plain_number(k[i]) || ydoc_bool(k[i]) >= 0))
				v = cv_bad(c, k[i], "'%s' must be text: quote it (\"%s\")", names[i], ydoc_str(k[i]));
		} else {
			int b = ydoc_bool(k[i]);
			v = b < 0 ? cv_bad(c, k[i], "'%s' must be true or false", names[i]) : cv_plain(c, b ? "true" : "false");
		}
		if (v < 0)
			return -1;
		cv_set(c, values, out[i], v);
	}
	return 0;
}

static int translate(cv *c)
{
	enum { SERVICES, VOLUMES, NETWORKS, X_INSPECT, X_K8S, VERSION, NKEYS };
	static const char *const names[NKEYS] = {"services", "volumes", "networks", "x-inspect_k8s_sandbox", "x-k8s",
						 "version"};
	static const ignored_key ign[] = {{"name", "the sandbox is named by sbx"}, {NULL, NULL}};
	yaml_node_t *root = ydoc_root(&c->in), *k[NKEYS];
	if (!root || ydoc_is_null(root))
		return cv_bad(c, NULL, "the file is empty: a compose file needs 'services:'");
	if (root->type != YAML_MAPPING_NODE)
		return cv_bad(c, root, "a compose file is a mapping with 'services:', not %s", ydoc_kind(root));
	/* Top-level x- keys other than ours only hold YAML anchors: quiet. */
	if (cv_sort_keys(c, root, "a compose file", names, NKEYS, k, ign, EXT_QUIET) < 0)
		return -1;
	if (k[X_INSPECT] && k[X_K8S])
		return cv_bad(c, k[X_K8S], "both 'x-inspect_k8s_sandbox' and 'x-k8s' are set: use one");
	c->volumes = k[VOLUMES];
	c->networks = k[NETWORKS];
	int values = cv_map(c); /* in the k8s sandbox's order */
	int v = services(c, k[SERVICES]);
	if (v < 0)
		return -1;
	cv_set(c, values, "services", v);
	if (k[VOLUMES] && !ydoc_is_null(k[VOLUMES])) {
		if ((v = definitions(c, k[VOLUMES], 0)) < 0)
			return -1;
		cv_set(c, values, "volumes", v);
	}
	if (k[NETWORKS] && !ydoc_is_null(k[NETWORKS])) {
		if ((v = definitions(c, k[NETWORKS], 1)) < 0)
			return -1;
		cv_set(c, values, "networks", v);
	}
	yaml_node_t *ext = k[X_INSPECT] ? k[X_INSPECT] : k[X_K8S];
	if (ext && extension(c, values, ext, k[X_INSPECT] ? "x-inspect_k8s_sandbox" : "x-k8s") < 0)
		return -1;
	return 0;
}

/* ---- emitting ---------------------------------------------------------------------- */

typedef struct strbuf {
	char *p;
	size_t len, cap;
} strbuf;

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
	strbuf *b = data;
	if (b->len + size + 1 > b->cap) {
		size_t cap = (b->len + size + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, buffer, size);
	b->len += size;
	b->p[b->len] = 0;
	return 1;
}

/* Dumps (and deletes) the output document. */
static char *emit(cv *c)
{
	yaml_emitter_t e;
	strbuf b = {0};
	if (!yaml_emitter_initialize(&e)) {
		yaml_document_delete(&c->out);
		snprintf(c->err, c->err_len, "%s: out of memory", c->in.path);
		return NULL;
	}
	yaml_emitter_set_output(&e, write_handler, &b);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, -1);
	yaml_emitter_set_indent(&e, 2);
	int ok = yaml_emitter_open(&e) && yaml_emitter_dump(&e, &c->out) && yaml_emitter_close(&e) &&
		 yaml_emitter_flush(&e);
	if (!ok) {
		snprintf(c->err, c->err_len, "%s: cannot write the values: %s", c->in.path,
			 e.problem ? e.problem : "out of memory");
		free(b.p);
		b.p = NULL;
	}
	yaml_emitter_delete(&e);
	return b.p;
}

static char *run(cv *c)
{
	char *text = NULL;
	yaml_document_initialize(&c->out, NULL, NULL, NULL, 1, 1);
	if (translate(c) == 0)
		text = emit(c); /* deletes c->out */
	else
		yaml_document_delete(&c->out);
	ydoc_free(&c->in);
	return text;
}

char *sbx_compose_to_values(const char *path, sbx_compose_warn_fn warn_fn, void *ud, char *err, size_t err_len)
{
	cv c = {.err = err, .err_len = err_len, .warn = warn_fn, .ud = ud};
	if (ydoc_load(&c.in, path, MAX_COMPOSE_BYTES, err, err_len) < 0)
		return NULL;
	return run(&c);
}

char *sbx_compose_to_docker_values(const char *path, sbx_compose_warn_fn warn_fn, void *ud, char *err,
				   size_t err_len)
{
	cv c = {.err = err, .err_len = err_len, .warn = warn_fn, .ud = ud, .docker = 1};
	if (ydoc_load(&c.in, path, MAX_COMPOSE_BYTES, err, err_len) < 0)
		return NULL;
	return run(&c);
}

char *sbx_compose_string_to_values(const char *path, const char *text, size_t len, sbx_compose_warn_fn warn_fn,
				   void *ud, char *err, size_t err_len)
{
	cv c = {.err = err, .err_len = err_len, .warn = warn_fn, .ud = ud};
	if (ydoc_load_string(&c.in, path, text, len, err, err_len) < 0)
		return NULL;
	return run(&c);
}

int sbx_compose_is_compose_file(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = strlen(base);
	int yaml = (n > 5 && !strcmp(base + n - 5, ".yaml")) || (n > 4 && !strcmp(base + n - 4, ".yml"));
	return yaml && strstr(base, "compose") != NULL;
}
