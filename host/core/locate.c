/* locate.c — where sbx finds what it ships beside itself: the static agent
 * (sbx-agent) and the agent-env chart. One search for every backend, the
 * CLI and the Python extension (see sbx.h):
 *
 *   1. the environment: $SBX_AGENT / $SBX_CHART;
 *   2. next to the code that is running — the object holding this file
 *      (the sbx program, libsbx.so or the Python extension, found with
 *      dladdr) and the program itself:
 *        DIR/sbx-agent                  a build tree (build/sbx, build/sbx-agent)
 *        DIR/libexec/sbx-agent          the Python wheel (inspect_sbx/libexec/)
 *        DIR/../libexec/sbx/sbx-agent   `make install` (PREFIX/bin, PREFIX/lib)
 *        DIR/../../sbx-agent            a build tree's Python package (BUILD/python/inspect_sbx)
 *      and for the chart DIR/chart/agent-env (the wheel),
 *      DIR/../share/sbx/chart/agent-env (`make install`), and a checkout's
 *      chart/agent-env up to five levels up;
 *   3. the agent only: each directory of $PATH.
 *
 * What was looked at is kept for the error message of whoever fails to
 * find the agent (sbx_locate_tried). */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbx.h"

#define TRIED_MAX 2048

static char agent_tried[TRIED_MAX], chart_tried[TRIED_MAX];

static void note(char *tried, const char *what)
{
	size_t n = strlen(tried), w = strlen(what);
	if (n + w + 3 >= TRIED_MAX)
		return; /* the list says enough already */
	if (n) {
		memcpy(tried + n, ", ", 2);
		n += 2;
	}
	memcpy(tried + n, what, w + 1);
}

/* The directory of the object holding this code, and of the program. */
static int code_dirs(char dirs[2][PATH_MAX])
{
	int n = 0;
	Dl_info info;
	if (dladdr((void *)code_dirs, &info) && info.dli_fname && info.dli_fname[0] == '/' &&
	    realpath(info.dli_fname, dirs[n]))
		n++;
	ssize_t len = readlink("/proc/self/exe", dirs[n], PATH_MAX - 1);
	if (len > 0) {
		dirs[n][len] = 0;
		if (n == 0 || strcmp(dirs[0], dirs[n]) != 0)
			n++;
	}
	for (int i = 0; i < n; i++) {
		char *slash = strrchr(dirs[i], '/');
		if (slash)
			*(slash == dirs[i] ? slash + 1 : slash) = 0;
	}
	return n;
}

/* out = dir + "/" + rel when that exists with mode; noted either way. */
static int try_path(char *tried, const char *dir, const char *rel, int mode, char *out, size_t outlen)
{
	if ((size_t)snprintf(out, outlen, "%s/%s", dir, rel) >= outlen)
		return 0;
	note(tried, out);
	return access(out, mode) == 0;
}

static int from_path_env(char *out, size_t outlen)
{
	const char *path = getenv("PATH");
	if (!path || !*path) {
		note(agent_tried, "$PATH (unset)");
		return 0;
	}
	note(agent_tried, "each directory of $PATH");
	char *copy = strdup(path), *save = NULL;
	int found = 0;
	for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found; d = strtok_r(NULL, ":", &save)) {
		if (*d != '/')
			continue; /* a relative PATH entry would depend on the working directory */
		found = (size_t)snprintf(out, outlen, "%s/sbx-agent", d) < outlen && access(out, X_OK) == 0;
	}
	free(copy);
	return found;
}

const char *sbx_default_agent_path(void)
{
	static char path[PATH_MAX];
	agent_tried[0] = 0;
	const char *env = getenv("SBX_AGENT");
	if (env && *env)
		return env;
	note(agent_tried, "$SBX_AGENT (unset)");
	static const char *const rel[] = {"sbx-agent", "libexec/sbx-agent", "../libexec/sbx/sbx-agent",
					  "../../sbx-agent"};
	char dirs[2][PATH_MAX];
	int n = code_dirs(dirs);
	for (int i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof rel / sizeof rel[0]; k++)
			if (try_path(agent_tried, dirs[i], rel[k], X_OK, path, sizeof path))
				return path;
	if (from_path_env(path, sizeof path))
		return path;
	return "sbx-agent";
}

const char *sbx_default_chart_path(void)
{
	static char path[PATH_MAX];
	chart_tried[0] = 0;
	const char *env = getenv("SBX_CHART");
	if (env && *env)
		return env;
	note(chart_tried, "$SBX_CHART (unset)");
	static const char *const rel[] = {"chart/agent-env", "../share/sbx/chart/agent-env", "../chart/agent-env",
					  "../../chart/agent-env", "../../../chart/agent-env",
					  "../../../../chart/agent-env", "../../../../../chart/agent-env"};
	char dirs[2][PATH_MAX], probe[PATH_MAX + 16];
	int n = code_dirs(dirs);
	for (int i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof rel / sizeof rel[0]; k++)
			if (try_path(chart_tried, dirs[i], rel[k], R_OK, path, sizeof path) &&
			    (size_t)snprintf(probe, sizeof probe, "%s/Chart.yaml", path) < sizeof probe &&
			    access(probe, R_OK) == 0)
				return path;
	return "chart/agent-env";
}

int sbx_agent_check(const char *path, char *err, size_t err_len)
{
	if (access(path, X_OK) == 0)
		return 0;
	if (strchr(path, '/') == NULL || strcmp(path, "sbx-agent") == 0)
		snprintf(err, err_len, "cannot find sbx-agent (looked at %.1500s): set SBX_AGENT to the static agent "
				       "(`make agent` builds build/sbx-agent; `make install` puts it in PREFIX/libexec/sbx)",
			 agent_tried[0] ? agent_tried : "$SBX_AGENT");
	else
		snprintf(err, err_len, "cannot read the agent %.1500s: %s (from %s; `make agent` builds build/sbx-agent)",
			 path, strerror(errno),
			 getenv("SBX_AGENT") && strcmp(getenv("SBX_AGENT"), path) == 0 ? "$SBX_AGENT" : "the caller");
	return -1;
}

const char *sbx_locate_tried(int chart)
{
	return chart ? chart_tried : agent_tried;
}
