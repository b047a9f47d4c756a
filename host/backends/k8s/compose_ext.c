/* compose_ext.c — a service's x-inspect_k8s_sandbox (or its short name
 * x-k8s): Kubernetes resources that compose cannot express, such as a
 * request-only ephemeral-storage, merged into what mem_limit, cpus and
 * deploy.resources gave. A key set both ways is an error, not a choice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose_cv.h"

/* x-inspect_k8s_sandbox.resources (or x-k8s): Kubernetes requests and limits
 * compose cannot express (ephemeral-storage, hugepages-2Mi, ...), merged into
 * res (0: none yet). A key that mem_limit, cpus or deploy set is refused.
 * Returns the resources mapping, 0 or -1. */
static int ext_resources(cv *c, yaml_node_t *n, const char *ext, int res)
{
	static const char *const names[] = {"requests", "limits"};
	yaml_node_t *k[2];
	char what[80];
	snprintf(what, sizeof what, "'%s.resources'", ext);
	if (cv_sort_keys(c, n, what, names, 2, k, NULL, EXT_REFUSE) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		if (!k[i] || ydoc_is_null(k[i]))
			continue;
		if (k[i]->type != YAML_MAPPING_NODE)
			return cv_bad(c, k[i], "'%s.resources.%s' must map resource names to quantities, not %s", ext,
				   names[i], ydoc_kind(k[i]));
		if (!res)
			res = cv_map(c);
		int set = cv_get(c, res, names[i]);
		if (!set) {
			set = cv_map(c);
			cv_set(c, res, names[i], set);
		}
		size_t np;
		ypair *ps = ydoc_pairs(&c->in, k[i], &np);
		int rc = 0;
		for (size_t p = 0; p < np && !rc; p++) {
			const char *key = ydoc_str(ps[p].key), *v = ydoc_str(ps[p].value);
			if (!key || !v || ydoc_is_null(ps[p].value))
				rc = cv_bad(c, ps[p].value, "'%s.resources.%s' entries must be quantities such as 80Gi", ext,
					 names[i]);
			else if (cv_get(c, set, key))
				rc = cv_bad(c, ps[p].key,
					 "%s.%s in '%s.resources' is already set by mem_limit, cpus or deploy.resources: "
					 "set it in one place",
					 names[i], key, ext);
			else
				cv_setq(c, set, key, cv_like(c, ps[p].value));
		}
		free(ps);
		if (rc)
			return -1;
	}
	return res;
}

/* A service's x-inspect_k8s_sandbox (or x-k8s): only 'resources'. */
int cv_service_extension(cv *c, yaml_node_t *n, const char *ext, int res)
{
	static const char *const names[] = {"resources"};
	yaml_node_t *r;
	char what[80];
	snprintf(what, sizeof what, "a service's '%s'", ext);
	if (cv_sort_keys(c, n, what, names, 1, &r, NULL, EXT_REFUSE) < 0)
		return -1;
	return r && !ydoc_is_null(r) ? ext_resources(c, r, ext, res) : res;
}
