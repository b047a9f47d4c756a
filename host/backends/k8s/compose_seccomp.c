/* compose_seccomp.c — compose's security_opt seccomp entries as Kubernetes
 * seccomp profiles, with the k8s sandbox's rules: unconfined, builtin
 * (RuntimeDefault) or a Localhost profile at a relative path that must
 * already be on every node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose_cv.h"

/* One security_opt entry, "seccomp=VALUE" or "seccomp:VALUE": unconfined ->
 * Unconfined, builtin -> RuntimeDefault, a relative path -> a Localhost
 * profile (which must be on every node). Returns the profile, or -1. */
int cv_seccomp_profile(cv *c, yaml_node_t *item)
{
	const char *s = ydoc_str(item);
	if (!s || ydoc_is_null(item) || strncmp(s, "seccomp", 7) || (s[7] != '=' && s[7] != ':'))
		return cv_bad(c, item,
			   "security_opt '%s' is not supported: only seccomp=unconfined, seccomp=builtin or "
			   "seccomp=PROFILE.json translate to Kubernetes (set other options in a values.yaml "
			   "securityContext)",
			   s ? s : ydoc_kind(item));
	const char *v = s + 8;
	int prof = cv_map(c);
	if (!strcmp(v, "unconfined")) {
		cv_set(c, prof, "type", cv_plain(c, "Unconfined"));
		return prof;
	}
	if (!strcmp(v, "builtin")) {
		cv_set(c, prof, "type", cv_plain(c, "RuntimeDefault"));
		return prof;
	}
	int escapes = !strcmp(v, "..") || !strncmp(v, "../", 3) || strstr(v, "/../") ||
		      (strlen(v) >= 3 && !strcmp(v + strlen(v) - 3, "/.."));
	if (!*v || *v == '/' || escapes)
		return cv_bad(c, item,
			   "seccomp profile '%s' is not usable: Kubernetes reads a Localhost profile relative "
			   "to the kubelet's seccomp directory, so give a relative path without '..' (or "
			   "unconfined / builtin)",
			   v);
	cv_set(c, prof, "type", cv_plain(c, "Localhost"));
	cv_set(c, prof, "localhostProfile", cv_str(c, v));
	cv_note(c, item,
	     "seccomp profile '%s' becomes a Localhost profile: the file must be on every node, at "
	     "/var/lib/kubelet/seccomp/%s by default (a missing file fails when the pod starts)",
	     v, v);
	return prof;
}
