/* defaults.c — a Dockerfile as a one-service values document (defaults.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/docker/defaults.h"

int sbx_docker_is_dockerfile(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = strlen(base);
	return !strcasecmp(base, "Dockerfile") || !strncasecmp(base, "Dockerfile.", 11) ||
	       (n > 11 && !strcasecmp(base + n - 11, ".Dockerfile"));
}

/* JSON strings are YAML flow scalars: quote with \" and \\ escaped. */
static void quoted(char *out, size_t len, const char *s)
{
	size_t o = 0;
	if (len < 3)
		return;
	out[o++] = '"';
	for (; *s && o + 3 < len; s++) {
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o++] = '"';
	out[o] = 0;
}

char *sbx_docker_dockerfile_values(const char *path, char *err, size_t err_len)
{
	char real[PATH_MAX], dir[PATH_MAX], qdir[2 * PATH_MAX + 4], qfile[600];
	if (!realpath(path, real)) {
		snprintf(err, err_len, "%s: no such Dockerfile", path);
		return NULL;
	}
	char *slash = strrchr(real, '/');
	snprintf(dir, sizeof dir, "%.*s", slash == real ? 1 : (int)(slash - real), real);
	quoted(qdir, sizeof qdir, dir);
	quoted(qfile, sizeof qfile, slash + 1);
	size_t len = strlen(qdir) + strlen(qfile) + 200;
	char *text = malloc(len);
	if (text)
		snprintf(text, len,
			 "services:\n  default:\n    networkIsolated: true\n    docker:\n      init: true\n"
			 "      build:\n        context: %s\n        dockerfile: %s\n",
			 qdir, qfile);
	return text;
}
