/* docker_backend.c — the docker backend of the CLI (backend.h): `sbx up
 * --backend docker` makes one container per service through the Docker
 * Engine API (host/backends/docker/sandbox.h), each with an agent listening on
 * STATE/NAME/SVC.run/agent.sock (the host directory mounted at /.sbx/run,
 * mode 0700) and proving connections against STATE/NAME/SVC.key.
 * STATE/NAME/docker records "container SVC ID STARTED_AT" per service
 * (STARTED_AT: the container's State.StartedAt, to tell a container Docker
 * restarted: host/backends/docker/restart.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "backends/docker/restart.h"
#include "backends/docker/sandbox.h"
#include "backends/k8s/compose.h"
#include "services.h"

#define INSPECT_DEFAULT_IMAGE "aisiuk/inspect-tool-support"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx up [NAME] --backend docker [-f compose.yaml|Dockerfile|values.yaml] [--image IMAGE] [--json]\n"
		"\n"
		"Starts a sandbox on the Docker engine at $DOCKER_HOST (unix:// only; default\n"
		"/var/run/docker.sock): one container per service of the file, made from its\n"
		"image (pulled when the engine lacks it, or built from its build: context)\n"
		"with its command, entrypoint, environment, working_dir, user, limits, init,\n"
		"ports (on 127.0.0.1 unless an address is given), named volumes and networks\n"
		"(internal: no route out; without networks a service has no network), in\n"
		"depends_on order. Volumes, networks and built images go at sbx down.\n"
		"The static agent is mounted read-only at /.sbx/sbx-agent; sbx reaches it over\n"
		"a unix socket in a host directory mounted at /.sbx/run (docs/docker.md).\n"
		"\n"
		"  -f FILE        the services: a compose file (translated as for --backend k8s,\n"
		"                 plus init, ports, depends_on, read_only, build; its default\n"
		"                 service, named 'default' or marked x-default: true, is then\n"
		"                 called 'default'), a Dockerfile (one service 'default' built\n"
		"                 from it, init, no network), or a values file\n"
		"  --image IMAGE  without -f: one service 'default' running IMAGE with init and\n"
		"                 no network (default " INSPECT_DEFAULT_IMAGE ",\n"
		"                 as Inspect's docker sandbox)\n"
		"  --json         print {\"name\": ..., \"services\": [...]} instead of the name\n");
}

typedef struct up_args {
	const char *name, *file, *image;
	int json;
} up_args;

/* 0, 1 for --help, or -1 after saying what is wrong. */
static int parse_up(int argc, char **argv, up_args *a)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f") && i + 1 < argc)
			a->file = argv[++i];
		else if (!strcmp(argv[i], "--image") && i + 1 < argc)
			a->image = argv[++i];
		else if (!strcmp(argv[i], "--backend") && i + 1 < argc)
			i++;
		else if (!strcmp(argv[i], "--json"))
			a->json = 1;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
		else if (argv[i][0] != '-' && !a->name)
			a->name = argv[i];
		else {
			cli_say(stderr, "sbx up: unexpected argument '%s' for --backend docker\n", argv[i]);
			return -1;
		}
	}
	if (a->file && a->image) {
		cli_say(stderr, "sbx up: --image is for a sandbox without -f (a file names each service's image)\n");
		return -1;
	}
	return 0;
}

static void print_warning(void *ud, const char *msg)
{
	(void)ud;
	if (strncmp(msg, "note: ", 6) == 0)
		cli_say(stderr, "sbx: note: %s\n", msg + 6);
	else
		cli_say(stderr, "sbx: warning: %s\n", msg);
}

/* Pull and build progress (from the starting threads: one write each). */
static void print_progress(void *ud, const char *line)
{
	(void)ud;
	cli_say(stderr, "sbx up: %s\n", line);
}

/* STATE/NAME with its services (and values.yaml when the file is a
 * compose file); the values path in values ("" without a file). */
static int make_state(cli_sandbox *sb, const up_args *a, char *values, size_t vlen)
{
	char err[2048];
	values[0] = 0;
	if (mkdir(sb->dir, 0700) < 0) {
		cli_say(stderr, "sbx up: cannot create %s: %s\n", sb->dir, strerror(errno));
		return -1;
	}
	if (a->file) {
		snprintf(values, vlen, "%s/values.yaml", sb->dir);
		int tr = sbx_docker_translate(a->file, values, print_warning, NULL, err, sizeof err);
		if (tr < 0) {
			cli_say(stderr, "sbx up: %s\n", err);
			return -1;
		}
		if (tr == 0)
			snprintf(values, vlen, "%s", a->file);
	}
	if (values[0]) {
		sb->nservices = services_from_file(values, sb->services, CLI_MAX_SERVICES, err, sizeof err);
		if (sb->nservices < 0) {
			cli_say(stderr, "sbx up: %s\n", err);
			return -1;
		}
	} else {
		sb->nservices = 1;
		strcpy(sb->services[0], "default");
	}
	char path[4200];
	snprintf(path, sizeof path, "%s/backend", sb->dir);
	if (cli_write_file(path, "docker\n", 7, err, sizeof err) < 0) {
		cli_say(stderr, "sbx up: %s\n", err);
		return -1;
	}
	return 0;
}

/* The record's container id of svc ("" when none), and when it started
 * (started may be NULL). */
static void record_get_started(const cli_sandbox *sb, const char *svc, char *id, size_t len, char *started,
			       size_t slen)
{
	char path[4200], line[512], s[64], cid[128], at[64];
	snprintf(path, sizeof path, "%s/docker", sb->dir);
	id[0] = 0;
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f)) {
		at[0] = 0;
		if (sscanf(line, "container %63s %127s %63s", s, cid, at) >= 2 && !strcmp(s, svc)) {
			snprintf(id, len, "%s", cid);
			if (started)
				snprintf(started, slen, "%s", at);
		}
	}
	if (f)
		fclose(f);
}

static void record_get(const cli_sandbox *sb, const char *svc, char *id, size_t len)
{
	record_get_started(sb, svc, id, len, NULL, 0);
}

/* STATE/NAME/docker: "container SVC ID STARTED_AT" per service. */
static int record_write(const cli_sandbox *sb, char ids[][128], char started[][64])
{
	char path[4200], text[CLI_MAX_SERVICES * 320] = "", err[512];
	snprintf(path, sizeof path, "%s/docker", sb->dir);
	for (int i = 0; i < sb->nservices; i++)
		snprintf(text + strlen(text), sizeof text - strlen(text), "container %s %s %s\n", sb->services[i], ids[i],
			 started[i][0] ? started[i] : "-");
	if (cli_write_file(path, text, strlen(text), err, sizeof err) == 0)
		return 0;
	cli_say(stderr, "sbx: %s\n", err);
	return -1;
}

/* The record again with svc's start time changed. */
static void record_restarted(const cli_sandbox *sb, const char *svc, const char *started_at)
{
	char ids[CLI_MAX_SERVICES][128], started[CLI_MAX_SERVICES][64];
	for (int i = 0; i < sb->nservices; i++) {
		record_get_started(sb, sb->services[i], ids[i], sizeof ids[i], started[i], sizeof started[i]);
		if (!strcmp(sb->services[i], svc))
			snprintf(started[i], sizeof started[i], "%s", started_at);
	}
	record_write(sb, ids, started);
}

/* The sandbox's containers through host/backends/docker/sandbox.h (it writes each
 * service's SVC.key and SVC.run/ in STATE/NAME, where the CLI's secret.c
 * and docker_connect look for them). */
static int start_services(sbx_docker *d, const cli_sandbox *sb, const char *values, const char *image)
{
	const char *services[CLI_MAX_SERVICES + 1] = {0};
	for (int i = 0; i < sb->nservices; i++)
		services[i] = sb->services[i];
	char ids[CLI_MAX_SERVICES][128], err[9000];
	sbx_docker_up_opts o = {.name = sb->name, .dir = sb->dir, .services = services,
				.values = values[0] ? values : NULL, .image = image ? image : INSPECT_DEFAULT_IMAGE,
				.progress = print_progress};
	if (sbx_docker_up(d, &o, ids, err, sizeof err) < 0) {
		cli_say(stderr, "sbx up: cannot start %s/%s\n", sb->name, err);
		return -1;
	}
	char started[CLI_MAX_SERVICES][64];
	for (int i = 0; i < sb->nservices; i++)
		if (sbx_docker_started_at(d, ids[i], started[i], sizeof started[i], err, sizeof err) < 0)
			started[i][0] = 0;
	return record_write(sb, ids, started);
}

static int open_engine(sbx_docker *d, const char *cmd)
{
	char err[2048];
	if (sbx_docker_open(d, err, sizeof err) == 0)
		return 0;
	cli_say(stderr, "sbx%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", err);
	sbx_docker_close(d);
	return -1;
}

static int remove_containers(sbx_docker *d, const cli_sandbox *sb)
{
	char err[1024];
	int rc = 0;
	for (int k = 0; k < sb->nservices; k++) {
		char id[128];
		record_get(sb, sb->services[k], id, sizeof id);
		if (id[0] && sbx_docker_container_remove(d, id, err, sizeof err) < 0) {
			cli_say(stderr, "sbx down: %s\n", err);
			rc = -1;
		}
	}
	if (sbx_docker_down(d, sb->name, err, sizeof err) < 0) { /* also any a crash left unrecorded */
		cli_say(stderr, "sbx down: %s\n", err);
		rc = -1;
	}
	return rc;
}

static void print_up(const cli_sandbox *sb, int json)
{
	if (!json) {
		printf("%s\n", sb->name);
		return;
	}
	printf("{\"name\": ");
	json_str(stdout, sb->name, strlen(sb->name));
	printf(", \"services\": [");
	for (int i = 0; i < sb->nservices; i++) {
		printf(i ? ", " : "");
		json_str(stdout, sb->services[i], strlen(sb->services[i]));
	}
	printf("]}\n");
}

static int docker_up(int argc, char **argv, const char *generated_name)
{
	up_args a = {0};
	int p = parse_up(argc, argv, &a);
	if (p != 0) {
		usage(p > 0 ? stdout : stderr);
		return p > 0 ? 0 : EXIT_USAGE;
	}
	const char *name = a.name ? a.name : generated_name;
	cli_sandbox sb;
	if (!cli_valid_name(name)) {
		cli_say(stderr, "sbx up: bad name '%s': use lowercase letters, digits, '-' and '_' (at most 40)\n", name);
		return EXIT_USAGE;
	}
	if (cli_sandbox_load(name, &sb) == 0) {
		cli_say(stderr, "sbx up: sandbox '%s' already exists (remove it with: sbx down %s)\n", name, name);
		return 1;
	}
	memset(&sb, 0, sizeof sb);
	snprintf(sb.name, sizeof sb.name, "%s", name);
	snprintf(sb.dir, sizeof sb.dir, "%s/%s", cli_state_dir(), name);
	snprintf(sb.backend, sizeof sb.backend, "docker");
	sbx_docker d;
	if (open_engine(&d, "up") < 0)
		return 1;
	char values[4200];
	int rc = make_state(&sb, &a, values, sizeof values);
	if (rc == 0)
		rc = start_services(&d, &sb, values, a.image);
	char path[4200], err[512];
	snprintf(path, sizeof path, "%s/services", sb.dir);
	char text[CLI_MAX_SERVICES * 65] = "";
	for (int i = 0; i < sb.nservices; i++)
		snprintf(text + strlen(text), sizeof text - strlen(text), "%s\n", sb.services[i]);
	if (rc == 0 && cli_write_file(path, text, strlen(text), err, sizeof err) < 0) {
		cli_say(stderr, "sbx up: %s\n", err);
		rc = -1;
	}
	if (rc < 0) { /* what sbx made goes again */
		remove_containers(&d, &sb);
		cli_remove_tree(sb.dir);
	}
	sbx_docker_close(&d);
	if (rc == 0)
		print_up(&sb, a.json);
	return rc == 0 ? 0 : 1;
}

/* Why svc cannot be reached, from its container's state. */
static void explain(const cli_sandbox *sb, const char *svc, const sbx_error *e)
{
	char id[128], status[64] = "", err[1024];
	int pid = 0;
	record_get(sb, svc, id, sizeof id);
	sbx_docker d;
	if (id[0] && sbx_docker_open(&d, err, sizeof err) == 0)
		sbx_docker_container_status(&d, id, status, sizeof status, &pid, err, sizeof err);
	else if (id[0])
		cli_say(stderr, "sbx: %s\n", err);
	sbx_docker_close(&d);
	if (status[0] && strcmp(status, "running") != 0)
		cli_say(stderr, "sbx: the container of %s/%s is %s\n     recreate the sandbox: sbx down %s && sbx up %s ...\n",
			sb->name, svc, status, sb->name, sb->name);
	else
		cli_say(stderr, "sbx: cannot reach %s/%s: %s\n", sb->name, svc, e->message);
}

/* When Docker restarted svc's container since up: its agent started
 * again and the user told that what ran there is gone. 1 when it did. */
static int revive(const cli_sandbox *sb, const char *svc)
{
	char id[128], started[64] = "", run[4200], key[4200], err[2048];
	record_get_started(sb, svc, id, sizeof id, started, sizeof started);
	sbx_docker d;
	if (!id[0] || sbx_docker_open(&d, err, sizeof err) < 0) {
		sbx_docker_close(&d);
		return 0;
	}
	sbx_docker_service_paths(sb->dir, svc, run, sizeof run, key, sizeof key);
	int rc = sbx_docker_revive(&d, id, sb->name, svc, run, key, started, sizeof started, err, sizeof err);
	sbx_docker_close(&d);
	if (rc < 0)
		cli_say(stderr, "sbx: the container of %s/%s was restarted and its agent cannot start again: %s\n",
			sb->name, svc, err);
	if (rc > 0) {
		cli_say(stderr, "sbx: warning: Docker restarted the container of %s/%s (at %s): the processes its "
				"commands started are gone; its agent was started again\n",
			sb->name, svc, started);
		record_restarted(sb, svc, started);
	}
	return rc > 0;
}

/* The session may reconnect through a /proc/self/fd address, so its
 * directory descriptor stays open for the rest of this CLI process. */
static sbx_session *docker_connect(sbx_loop *loop, const cli_sandbox *sb, const char *svc)
{
	char run[4200], sock[4300], key[4200], err[4400];
	cli_service_path(sb, svc, "run", run, sizeof run);
	if (sbx_docker_agent_addr(run, sock, sizeof sock, err, sizeof err) == -1) {
		cli_say(stderr, "sbx: %s\n", err);
		return NULL;
	}
	sbx_session_opts so = {0};
	cli_service_session_opts(sb, svc, &so, key, sizeof key);
	sbx_error e;
	sbx_session *s = sbx_session_connect(loop, sock, &so, &e);
	if (s && sbx_session_wait_ready(s, 10, &e) == 0)
		return s;
	if (s)
		sbx_session_close(s);
	if (revive(sb, svc)) { /* a container Docker restarted: once more */
		s = sbx_session_connect(loop, sock, &so, &e);
		if (s && sbx_session_wait_ready(s, 10, &e) == 0)
			return s;
		if (s)
			sbx_session_close(s);
	}
	explain(sb, svc, &e);
	return NULL;
}

static int docker_down(const cli_sandbox *sb)
{
	sbx_docker d;
	if (open_engine(&d, "down") < 0)
		return -1; /* the state stays: its containers may still run */
	int rc = remove_containers(&d, sb);
	sbx_docker_close(&d);
	return rc;
}

static void docker_ls(const cli_sandbox *sb, int json)
{
	sbx_docker d;
	char err[1024];
	int open = sbx_docker_open(&d, err, sizeof err) == 0;
	if (json)
		printf(", \"services\": [");
	for (int k = 0; k < sb->nservices; k++) {
		char id[128], status[64] = "unknown", where[300];
		int pid = 0;
		record_get(sb, sb->services[k], id, sizeof id);
		if (open && id[0])
			sbx_docker_container_status(&d, id, status, sizeof status, &pid, err, sizeof err);
		snprintf(where, sizeof where, "container %.12s (%s)", id, status);
		cli_ls_service(sb, k, json, pid, !strcmp(status, "running"), open ? status : "no engine", where);
	}
	if (json)
		printf("]");
	sbx_docker_close(&d);
}

/* `sbx down --all --backend docker`: every docker sandbox of this state
 * directory, also those whose STATE/NAME is gone (found by the owner
 * label: containers, networks and volumes sbx made from this state). */
static int docker_down_all(int argc, char **argv)
{
	int all = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: sbx down --all --backend docker\n\n"
			       "Removes every docker sandbox of this state directory ($SBX_STATE_DIR): its\n"
			       "containers, networks, volumes and built images, found by sbx's labels\n"
			       "(sbx.owner=STATE), so also those whose state was lost. Remove one\n"
			       "sandbox with sbx down NAME.\n");
			return 0;
		}
		if (!strcmp(argv[i], "--all"))
			all = 1;
		else if (!strcmp(argv[i], "--backend") && i + 1 < argc)
			i++;
		else {
			cli_say(stderr, "sbx down: with --backend docker give --all (remove one sandbox with: sbx down NAME)\n");
			return EXIT_USAGE;
		}
	}
	if (!all) {
		cli_say(stderr, "usage: sbx down --all --backend docker\n");
		return EXIT_USAGE;
	}
	sbx_docker d;
	if (open_engine(&d, "down") < 0)
		return 1;
	char(*names)[64] = NULL, err[2048];
	int rc = 0;
	cli_names recorded;
	if (cli_sandbox_names(&recorded) < 0)
		rc = 1;
	else {
		for (int i = 0; i < recorded.n; i++) { /* recorded ones, their state too */
			cli_sandbox sb;
			if (cli_sandbox_load(recorded.name[i], &sb) < 0 || strcmp(sb.backend, "docker"))
				continue;
			if (remove_containers(&d, &sb) < 0 || cli_sandbox_remove(&sb) < 0)
				rc = 1;
		}
		cli_names_free(&recorded);
	}
	int n = sbx_docker_owned(&d, cli_state_dir(), &names, err, sizeof err);
	if (n < 0) {
		cli_say(stderr, "sbx down: %s\n", err);
		rc = 1;
	}
	for (int i = 0; i < n; i++) { /* what a lost state left */
		if (sbx_docker_down(&d, names[i], err, sizeof err) < 0) {
			cli_say(stderr, "sbx down: %s: %s\n", names[i], err);
			rc = 1;
		}
	}
	free(names);
	sbx_docker_close(&d);
	return rc;
}

const cli_backend cli_docker_backend = {
	.name = "docker",
	.up = docker_up,
	.connect = docker_connect,
	.down = docker_down,
	.down_all = docker_down_all,
	.ls = docker_ls,
};
