/* local_backend.c — the local backend of the CLI (backend.h): one agent
 * per service in its own container (host/backends/local/box.h) or, with --host, as
 * a plain process, listening on STATE/NAME/SVC.sock (state.c says which
 * files a service has). Its `sbx up`, and finding a service's agent, are
 * local_up.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "backends/local/box.h"

/* A ready session to a local service's agent, or NULL after saying why. */
static sbx_session *local_connect(sbx_loop *loop, const cli_sandbox *sb, const char *svc)
{
	const char *name = sb->name;
	sbx_error err;
	sbx_session *s = cli_local_session(loop, sb, svc, &err);
	if (s && sbx_session_wait_ready(s, 10, &err) == 0)
		return s;
	if (s)
		sbx_session_close(s);
	char last[512];
	cli_last_log_line(sb, svc, last, sizeof last);
	if (!cli_service_pid(sb, svc))
		cli_say(stderr, "sbx: the agent of %s/%s is not running%s%s%s\n"
				"     recreate the sandbox: sbx down %s && sbx up %s\n",
			name, svc, last[0] ? " (its last words: \"" : "", last, last[0] ? "\")" : "", name, name);
	else
		cli_say(stderr, "sbx: cannot reach %s/%s: %s\n", name, svc, err.message);
	return NULL;
}


/* Ends every process of the sandbox's services. */
static int local_down(const cli_sandbox *sb)
{
	for (int k = 0; k < sb->nservices; k++) {
		sbx_box box;
		if (cli_service_box(sb, sb->services[k], &box) == 0) {
			sbx_box_destroy(&box); /* every process in it, setsid'd or not */
			continue;
		}
		pid_t pid = cli_service_pid(sb, sb->services[k]);
		if (pid <= 0)
			continue;
		kill(pid, SIGTERM);
		for (int i = 0; i < 100 && cli_service_pid(sb, sb->services[k]); i++)
			usleep(10000);
		if (cli_service_pid(sb, sb->services[k]))
			kill(pid, SIGKILL);
	}
	return 0;
}

static void local_ls(const cli_sandbox *sb, int json)
{
	if (json)
		printf(", \"services\": [");
	for (int k = 0; k < sb->nservices; k++) {
		pid_t pid = cli_service_pid(sb, sb->services[k]);
		char root[4200], agent[32];
		sbx_box box;
		if (cli_service_box(sb, sb->services[k], &box) == 0)
			snprintf(root, sizeof root, "%s/rootfs (%s)", box.bundle, box.runtime);
		else
			cli_service_path(sb, sb->services[k], "root", root, sizeof root);
		snprintf(agent, sizeof agent, pid ? "pid %d" : "dead", (int)pid);
		cli_ls_service(sb, k, json, (int)pid, pid != 0, agent, root);
	}
	if (json)
		printf("]");
}

static int local_up(int argc, char **argv, const char *generated_name)
{
	return cli_local_up(argc, argv, generated_name, NULL);
}

const cli_backend cli_local_backend = {
	.name = "local",
	.up = local_up,
	.connect = local_connect,
	.down = local_down,
	.ls = local_ls,
};
