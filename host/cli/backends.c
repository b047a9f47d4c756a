/* backends.c — the table of CLI backends (backend.h), and cli_connect:
 * "NAME[/SERVICE]" to a session through the sandbox's backend. */
#include <string.h>

#include "backend.h"

static const cli_backend *const backends[] = {
	&cli_local_backend,
	&cli_k8s_backend,
	&cli_ec2_backend,
	&cli_docker_backend,
};

#define NBACKENDS (sizeof backends / sizeof backends[0])

const cli_backend *cli_backend_find(const char *name)
{
	for (size_t i = 0; i < NBACKENDS; i++)
		if (!strcmp(backends[i]->name, name))
			return backends[i];
	return NULL;
}

const cli_backend *cli_backend_of(const cli_sandbox *sb)
{
	const cli_backend *b = cli_backend_find(sb->backend);
	return b ? b : &cli_local_backend;
}

const char *cli_backend_names(void)
{
	return "local, k8s, ec2 or docker";
}

/* The index of svc in sb (the default, first, when svc is NULL), or -1
 * after listing the services there are. */
static int find_service(const cli_sandbox *sb, const char *svc)
{
	for (int i = 0; i < sb->nservices; i++)
		if (!svc || strcmp(sb->services[i], svc) == 0)
			return i;
	cli_say(stderr, "sbx: sandbox '%s' has no service '%s'; its services:", sb->name, svc);
	for (int i = 0; i < sb->nservices; i++)
		cli_say(stderr, "%s %s", i ? "," : "", sb->services[i]);
	cli_say(stderr, "\n");
	return -1;
}

/* "NAME[/SERVICE]" to sb and the service's name; -1 after saying why. */
static int resolve(const char *target, cli_sandbox *sb, const char **svc_out)
{
	char name[128];
	snprintf(name, sizeof name, "%s", target);
	char *slash = strchr(name, '/');
	const char *svc = NULL;
	if (slash) {
		*slash = 0;
		svc = slash + 1;
	}
	if (cli_sandbox_load(name, sb) < 0) {
		cli_print_no_sandbox(name);
		return -1;
	}
	int found = find_service(sb, svc);
	if (found < 0)
		return -1;
	*svc_out = sb->services[found];
	return 0;
}

/* The last session a backend's connect made in this process (a CLI
 * command has one), for cli_disconnect; one through a holder is not it. */
static sbx_session *direct_session;
static const cli_backend *direct_backend;

static sbx_session *connect_backend(sbx_loop *loop, const cli_backend *b, cli_sandbox *sb, const char *svc)
{
	sbx_session *s = b->connect(loop, sb, svc);
	if (s) {
		direct_session = s;
		direct_backend = b;
	}
	return s;
}

sbx_session *cli_connect_direct(sbx_loop *loop, const char *target, cli_sandbox *sb, const char **svc_out)
{
	if (resolve(target, sb, svc_out) < 0)
		return NULL;
	return connect_backend(loop, cli_backend_of(sb), sb, *svc_out);
}

sbx_session *cli_connect(sbx_loop *loop, const char *target, cli_sandbox *sb, const char **svc_out)
{
	if (resolve(target, sb, svc_out) < 0)
		return NULL;
	const cli_backend *b = cli_backend_of(sb);
	sbx_session *s = b->held ? cli_hold_connect(loop, sb, *svc_out) : NULL;
	return s ? s : connect_backend(loop, b, sb, *svc_out);
}

void cli_disconnect(sbx_loop *loop, sbx_session *s)
{
	if (!s)
		return;
	if (s == direct_session && direct_backend->release) {
		direct_session = NULL;
		direct_backend->release(loop, s);
		return;
	}
	if (s == direct_session)
		direct_session = NULL;
	sbx_session_close(s);
}
