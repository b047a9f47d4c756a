/* cmd_up.c — `sbx up`: start a local sandbox (one agent per service). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "k8s/compose.h"
#include "services.h"
#include "transport/transport.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx up [NAME] [-f values.yaml|compose.yaml] [--isolate] [--json]\n"
		"       sbx up [NAME] --backend ec2 [SETTINGS]   (see: sbx up --backend ec2 --help)\n"
		"       sbx up [NAME] --backend k8s [-f values.yaml|compose.yaml] [--context C] [--namespace N]\n"
		"                                   [--transport websocket|kubectl]\n"
		"\n"
		"Starts a local sandbox: one sbx-agent per service in the file (or a single\n"
		"service 'default'), kept running until `sbx down NAME`. NAME defaults to a\n"
		"random 8-letter name, printed on stdout.\n"
		"\n"
		"  -f FILE     take the service names from a values.yaml or compose.yaml\n"
		"              (a compose file is translated as `sbx compose2values` does;\n"
		"              its default service is then named 'default')\n"
		"  --isolate   run each agent in new user, pid, mount and network namespaces:\n"
		"              no network, a private /tmp, its own process tree\n"
		"  --json      print {\"name\": ..., \"services\": [...]} instead\n"
		"  --backend k8s  install the agent-env chart as Helm release NAME instead\n"
		"              ($KUBECONFIG, --context, --namespace; helm from $SBX_HELM or PATH,\n"
		"              the chart from $SBX_CHART), wait for each service's pod, copy the\n"
		"              agent in; exec, cp, ls and down then work on it as on a local one\n"
		"  --transport kubectl  reach the pods through `kubectl exec -i` ($SBX_KUBECTL\n"
		"              or kubectl on PATH) instead of sbx's own exec WebSocket: the\n"
		"              fallback for API servers or proxies that only kubectl gets through\n");
}

static void random_name(char *out)
{
	unsigned char r[8];
	if (getrandom(r, sizeof r, 0) != sizeof r)
		for (int i = 0; i < 8; i++)
			r[i] = (unsigned char)(rand() ^ getpid());
	for (int i = 0; i < 8; i++)
		out[i] = (char)('a' + r[i] % 26);
	out[8] = 0;
}

static void stop_started(cli_sandbox *sb, int upto)
{
	for (int i = 0; i < upto; i++) {
		pid_t pid = cli_service_pid(sb, sb->services[i]);
		if (pid > 0)
			kill(pid, SIGKILL);
	}
}

/* Starts one agent and waits until it answers. */
static int start_service(cli_sandbox *sb, const char *svc, int isolate)
{
	char sock[4200], pidf[4200], logf[4200], root[4200], err[512];
	cli_service_path(sb, svc, "sock", sock, sizeof sock);
	cli_service_path(sb, svc, "pid", pidf, sizeof pidf);
	cli_service_path(sb, svc, "log", logf, sizeof logf);
	cli_service_path(sb, svc, "root", root, sizeof root);
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "sbx: cannot create %s: %s\n", root, strerror(errno));
		return -1;
	}
	char key[4200];
	if (cli_service_secret_create(sb, svc, key, sizeof key) < 0)
		return -1;
	int log = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	const char *argv[] = {sbx_default_agent_path(), "--listen", sock, "--secret-file", key, "--workdir", root, NULL};
	/* the agent gets a clean environment: none of ours (cloud keys, tokens) */
	sbx_spawn_opts o = {.argv = argv, .envp = sbx_sandbox_env, .isolate = isolate, .keep_dir = sb->dir};
	pid_t pid = log >= 0 && null >= 0 ? sbx_spawn_process(&o, null, log, log, err, sizeof err) : -1;
	if (log >= 0)
		close(log);
	if (null >= 0)
		close(null);
	if (pid < 0) {
		fprintf(stderr, "sbx: cannot start the agent for %s/%s: %s\n", sb->name, svc, err);
		return -1;
	}
	FILE *f = fopen(pidf, "w");
	if (f) {
		fprintf(f, "%d\n", (int)pid);
		fclose(f);
	}
	/* Wait for the socket to answer (the agent reports problems in its log). */
	sbx_loop *loop = sbx_loop_new();
	sbx_session_opts so = {0};
	cli_service_session_opts(sb, svc, &so, key, sizeof key);
	for (int tries = 0; tries < 200; tries++) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "sbx: the agent for %s/%s exited at start (status %d); see %s\n", sb->name, svc,
				WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), logf);
			sbx_loop_free(loop);
			return -1;
		}
		sbx_error e;
		sbx_session *s = access(sock, F_OK) == 0 ? sbx_session_connect(loop, sock, &so, &e) : NULL;
		if (s && sbx_session_wait_ready(s, 5, &e) == 0) {
			sbx_session_close(s);
			sbx_loop_free(loop);
			return 0;
		}
		if (s)
			sbx_session_close(s);
		usleep(25000);
	}
	sbx_loop_free(loop);
	fprintf(stderr, "sbx: the agent for %s/%s did not answer within 5 s; see %s\n", sb->name, svc, logf);
	return -1;
}

int cmd_up(int argc, char **argv)
{
	const char *file = NULL, *name = NULL, *backend = "local", *context = NULL, *ns = NULL, *transport = NULL;
	int isolate = 0, json = 0;
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--backend") != 0)
			continue;
		if (!strcmp(argv[i + 1], "ec2")) {
			char generated[9];
			random_name(generated);
			return cli_ec2_up(argc, argv, generated);
		}
		if (strcmp(argv[i + 1], "local") != 0 && strcmp(argv[i + 1], "k8s") != 0) {
			fprintf(stderr, "sbx up: unknown backend '%s' (local, k8s or ec2)\n", argv[i + 1]);
			return EXIT_USAGE;
		}
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
			backend = argv[++i];
		else if (strcmp(argv[i], "--context") == 0 && i + 1 < argc)
			context = argv[++i];
		else if (strcmp(argv[i], "--namespace") == 0 && i + 1 < argc)
			ns = argv[++i];
		else if (strcmp(argv[i], "--transport") == 0 && i + 1 < argc)
			transport = argv[++i];
		else if (strcmp(argv[i], "--isolate") == 0)
			isolate = 1;
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else {
			fprintf(stderr, "sbx up: unexpected argument '%s'\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	int k8s = strcmp(backend, "k8s") == 0;
	if (!k8s && strcmp(backend, "local") != 0) {
		fprintf(stderr, "sbx up: unknown backend '%s' (local or k8s)\n", backend);
		return EXIT_USAGE;
	}
	if (!k8s && (context || ns || transport)) {
		fprintf(stderr, "sbx up: --context, --namespace and --transport are for --backend k8s\n");
		return EXIT_USAGE;
	}
	if (transport && strcmp(transport, "kubectl") != 0 && strcmp(transport, "websocket") != 0) {
		fprintf(stderr, "sbx up: unknown transport '%s' (websocket, the default, or kubectl)\n", transport);
		return EXIT_USAGE;
	}
	char generated[9];
	if (!name) {
		random_name(generated);
		name = generated;
	}
	if (!cli_valid_name(name)) {
		fprintf(stderr, "sbx up: bad name '%s': use lowercase letters, digits, '-' and '_' (at most 40)\n", name);
		return EXIT_USAGE;
	}
	cli_sandbox sb;
	if (cli_sandbox_load(name, &sb) == 0) {
		fprintf(stderr, "sbx up: sandbox '%s' already exists (remove it with: sbx down %s)\n", name, name);
		return 1;
	}
	memset(&sb, 0, sizeof sb);
	snprintf(sb.name, sizeof sb.name, "%s", name);
	snprintf(sb.dir, sizeof sb.dir, "%s/%s", cli_state_dir(), name);
	char err[2048];
	char *compose_values = NULL;
	if (file && sbx_compose_is_compose_file(file)) {
		/* The same translation the k8s backend installs: services renamed
		 * and checked exactly as there. */
		compose_values = cli_compose_values(file, err, sizeof err);
		if (!compose_values) {
			fprintf(stderr, "sbx up: %s\n", err);
			return 1;
		}
	} else if (file) {
		sb.nservices = services_from_file(file, sb.services, CLI_MAX_SERVICES, err, sizeof err);
		if (sb.nservices < 0) {
			fprintf(stderr, "sbx up: %s\n", err);
			return 1;
		}
	} else {
		sb.nservices = 1;
		strcpy(sb.services[0], "default");
	}
	if (mkdir(sb.dir, 0700) < 0) {
		fprintf(stderr, "sbx up: cannot create %s: %s\n", sb.dir, strerror(errno));
		free(compose_values);
		return 1;
	}
	int compose_values_written = compose_values != NULL;
	if (compose_values) {
		char values[4200];
		snprintf(values, sizeof values, "%s/values.yaml", sb.dir);
		int rc = cli_write_file(values, compose_values, strlen(compose_values), err, sizeof err);
		free(compose_values);
		if (rc == 0)
			sb.nservices = services_from_file(values, sb.services, CLI_MAX_SERVICES, err, sizeof err);
		if (rc < 0 || sb.nservices < 0) {
			fprintf(stderr, "sbx up: %s\n", err);
			cli_remove_tree(sb.dir);
			return 1;
		}
	}
	char values_path[4200];
	snprintf(values_path, sizeof values_path, "%s/values.yaml", sb.dir);
	if (k8s && cli_k8s_up(&sb, compose_values_written ? values_path : file, context, ns,
				transport && !strcmp(transport, "kubectl")) < 0) {
		cli_remove_tree(sb.dir);
		return 1;
	}
	for (int i = 0; !k8s && i < sb.nservices; i++) {
		if (start_service(&sb, sb.services[i], isolate) < 0) {
			stop_started(&sb, i + 1);
			cli_remove_tree(sb.dir);
			return 1;
		}
	}
	char path[4200];
	snprintf(path, sizeof path, "%s/services", sb.dir);
	FILE *f = fopen(path, "w");
	for (int i = 0; f && i < sb.nservices; i++)
		fprintf(f, "%s\n", sb.services[i]);
	if (f)
		fclose(f);
	if (json) {
		printf("{\"name\": ");
		json_str(stdout, name, strlen(name));
		printf(", \"services\": [");
		for (int i = 0; i < sb.nservices; i++) {
			printf(i ? ", " : "");
			json_str(stdout, sb.services[i], strlen(sb.services[i]));
		}
		printf("]}\n");
	} else {
		printf("%s\n", name);
	}
	return 0;
}
