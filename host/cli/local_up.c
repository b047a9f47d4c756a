/* local_up.c — `sbx up` for the local backend (one agent per service, in a
 * box or with --host as a process) and finding a local service's agent;
 * the k8s backend shares the arguments and the state it writes, passing
 * its own start (cli_local_up's k8s_start). cmd_up.c picks the backend. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/un.h>

#include "backend.h"
#include "backends/local/box.h"
#include "backends/k8s/compose.h"
#include "services.h"
#include "transport/transport.h"

int cli_service_box(const cli_sandbox *sb, const char *svc, sbx_box *b)
{
	char bundle[4200];
	cli_service_path(sb, svc, "box", bundle, sizeof bundle);
	return sbx_box_load(b, bundle);
}

pid_t cli_service_pid(const cli_sandbox *sb, const char *svc)
{
	char path[4200];
	int pid = 0;
	sbx_box box;
	if (cli_service_box(sb, svc, &box) == 0) {
		pid = sbx_box_pid(&box); /* written by the runtime, out of the box's reach */
	} else {
		cli_service_path(sb, svc, "pid", path, sizeof path);
		FILE *f = fopen(path, "r");
		if (!f)
			return 0;
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return 0;
	/* A dead agent nobody reaped yet is a zombie: not running. */
	char stat_path[64], buf[256];
	snprintf(stat_path, sizeof stat_path, "/proc/%d/stat", pid);
	FILE *f = fopen(stat_path, "r");
	if (f) {
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		char *rp = strrchr(buf, ')');
		if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
			return 0;
	}
	return pid;
}

sbx_session *cli_local_session(sbx_loop *loop, const cli_sandbox *sb, const char *svc, sbx_error *err)
{
	sbx_box box;
	const char *argv[16];
	char sock[4200], key[4200];
	cli_service_path(sb, svc, "sock", sock, sizeof sock);
	int boxed = cli_service_box(sb, svc, &box) == 0;
	if (boxed && sbx_box_attach_argv(&box, argv, 16) == 0)
		return sbx_session_command(loop, argv, NULL, err);
	/* A box whose agent has no socket of ours (an Inspect sample's, see
	 * inspect_sbx/clistate.py): a second agent in it, on stdio. */
	if (boxed && access(sock, F_OK) < 0 && sbx_box_stdio_argv(&box, argv, 16) == 0)
		return sbx_session_command(loop, argv, NULL, err);
	sbx_session_opts so = {0};
	cli_service_session_opts(sb, svc, &so, key, sizeof key);
	return sbx_session_connect(loop, sock, &so, err);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx up [NAME] [-f values.yaml|compose.yaml] [--runtime crun|runc|runsc] [--memory SIZE]\n"
		"              [--pids N] [--cpus N] [--rootfs DIR] [--host [--isolate]] [--json]\n"
		"       sbx up [NAME] --backend ec2 [SETTINGS]   (see: sbx up --backend ec2 --help)\n"
		"       sbx up [NAME] --backend k8s [-f values.yaml|compose.yaml] [--context C] [--namespace N]\n"
		"                                   [--transport websocket|kubectl]\n"
		"       sbx up [NAME] --backend docker [-f compose.yaml|values.yaml] [--image IMAGE]\n"
		"                                   (see: sbx up --backend docker --help)\n"
		"\n"
		"Starts a local sandbox: one sbx-agent per service in the file (or a single\n"
		"service 'default'), each in its own container, kept running until\n"
		"`sbx down NAME`. NAME defaults to a random 8-letter name, printed on stdout.\n"
		"A container sees the host's /usr, /bin, /lib* and /sbin read-only and has\n"
		"its own /etc, /root (the working directory), /tmp, ...; root inside is an\n"
		"unprivileged id on the host; no network; limits below (docs/SECURITY.md).\n"
		"\n"
		"  -f FILE        take the services from a values.yaml or compose.yaml (a\n"
		"                 compose file is translated as `sbx compose2values` does;\n"
		"                 its default service is then named 'default'); environment,\n"
		"                 working_dir, user, mem_limit and cpus apply; image needs --rootfs\n"
		"  --runtime R    the OCI runtime: crun, runc or runsc (gVisor: its own kernel);\n"
		"                 default $SBX_RUNTIME, else crun where it runs here, else runc\n"
		"  --memory SIZE  memory limit (e.g. 512m, 4g; default 2g; 0: none)\n"
		"  --pids N       process limit (default 1024; 0: none)\n"
		"  --cpus N       CPU quota (e.g. 1.5; default: none, a 0.5 CPU share)\n"
		"  --rootfs DIR   run on this root filesystem (an unpacked image) instead of\n"
		"                 the host's OS; DIR is never written (an overlay takes the writes)\n"
		"  --host         UNSAFE: no container. The agent and the code it runs get this\n"
		"                 machine: your files, network, user and processes. For debugging\n"
		"  --isolate      with --host: new user, pid, mount and network namespaces and a\n"
		"                 private /tmp (the host's files stay visible)\n"
		"  --json         print {\"name\": ..., \"services\": [...]} instead\n"
		"  --backend k8s  install the agent-env chart as Helm release NAME instead\n"
		"                 ($KUBECONFIG, --context, --namespace; helm from $SBX_HELM or PATH,\n"
		"                 the chart from $SBX_CHART), wait for each service's pod, copy the\n"
		"                 agent in; exec, cp, ls and down then work on it as on a local one\n"
		"  --transport kubectl  reach the pods through `kubectl exec -i` ($SBX_KUBECTL\n"
		"                 or kubectl on PATH) instead of sbx's own exec WebSocket: the\n"
		"                 fallback for API servers or proxies that only kubectl gets through\n"
		"  --no-holder    k8s: start no connection holder. By default one holder per\n"
		"                 service keeps its connection open (STATE/NAME/hold/, a private\n"
		"                 socket) and each exec, cp, ... runs its own session over it\n"
		"                 instead of dialing; it exits at `sbx down`, when the pod is\n"
		"                 lost, or after $SBX_HOLD_IDLE seconds without calls (600)\n");
}

static void stop_started(cli_sandbox *sb, int upto)
{
	for (int i = 0; i < upto; i++) {
		sbx_box box;
		pid_t pid = cli_service_pid(sb, sb->services[i]);
		if (cli_service_box(sb, sb->services[i], &box) == 0)
			sbx_box_destroy(&box);
		else if (pid > 0)
			kill(pid, SIGKILL);
	}
}

/* Waits until the agent behind sock answers (it reports problems in its log). */
static int wait_answer(cli_sandbox *sb, const char *svc, pid_t child)
{
	char logf[4200];
	cli_service_path(sb, svc, "log", logf, sizeof logf);
	sbx_loop *loop = sbx_loop_new();
	for (int tries = 0; tries < 400; tries++) {
		int status;
		if (child > 0 && waitpid(child, &status, WNOHANG) == child) {
			cli_say(stderr, "sbx: the agent for %s/%s exited at start (status %d); see %s\n", sb->name, svc,
				WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), logf);
			sbx_loop_free(loop);
			return -1;
		}
		if (child == 0 && tries > 4 && !cli_service_pid(sb, svc)) {
			char last[512] = "";
			cli_last_log_line(sb, svc, last, sizeof last);
			cli_say(stderr, "sbx: the agent for %s/%s exited at start%s%s%s; see %s\n", sb->name, svc,
				last[0] ? " (\"" : "", last, last[0] ? "\")" : "", logf);
			sbx_loop_free(loop);
			return -1;
		}
		sbx_error e;
		sbx_session *s = cli_local_session(loop, sb, svc, &e);
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
	cli_say(stderr, "sbx: the agent for %s/%s did not answer within 10 s; see %s\n", sb->name, svc, logf);
	return -1;
}

/* --host: the agent as a plain host process (the old, uncontained mode). */
static int start_host_service(cli_sandbox *sb, const char *svc, int isolate)
{
	char sock[4200], pidf[4200], logf[4200], root[4200], err[512];
	cli_service_path(sb, svc, "sock", sock, sizeof sock);
	cli_service_path(sb, svc, "pid", pidf, sizeof pidf);
	cli_service_path(sb, svc, "log", logf, sizeof logf);
	cli_service_path(sb, svc, "root", root, sizeof root);
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		cli_say(stderr, "sbx: cannot create %s: %s\n", root, strerror(errno));
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
		cli_say(stderr, "sbx: cannot start the agent for %s/%s: %s\n", sb->name, svc, err);
		return -1;
	}
	FILE *f = fopen(pidf, "w");
	if (f) {
		fprintf(f, "%d\n", (int)pid);
		fclose(f);
	}
	return wait_answer(sb, svc, pid);
}

/* A listening unix socket at path, made by us (mode 0600 from the start:
 * no window where another process could connect first). */
static int listen_socket(const char *path, char *err, size_t len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, len, "socket path too long: %s (use a shorter $SBX_STATE_DIR)", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t old = umask(077);
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (rc < 0 || listen(fd, 128) < 0) {
		snprintf(err, len, "cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The agent inside a new box, listening on a socket sbx made and handed in. */
static int start_box_service(cli_sandbox *sb, const char *svc, const sbx_box_opts *bo)
{
	char sock[4200], logf[4200], bundle[4200], id[64], err[4600];
	cli_service_path(sb, svc, "sock", sock, sizeof sock);
	cli_service_path(sb, svc, "log", logf, sizeof logf);
	cli_service_path(sb, svc, "box", bundle, sizeof bundle);
	sbx_box box = {0};
	sbx_box_new_id(id, sizeof id);
	/* The agent listens on a socket sbx makes here and hands in as fd 3,
	 * and proves connections against the secret handed in as fd 4 (never a
	 * file the box could read). A runtime that hands in no fds (runsc) gets
	 * an agent listening inside instead, reached through its exec: that
	 * socket is in the box's own /run, where only the box itself (root
	 * inside already) can reach it, so it needs no secret. */
	const char *handed[] = {sbx_default_agent_path(), "--listen-fd", "3", "--secret-fd", "4", NULL};
	const char *inner[] = {sbx_default_agent_path(), "--listen", SBX_BOX_INNER_SOCKET, "--insecure-no-auth", NULL};
	const char *argv_probe[16];
	char key[4200];
	int lfd = -1, kfd = -1, log = -1, null = -1, rc = -1;
	if (sbx_box_pick_runtime(&box, bo, err, sizeof err) < 0 || sbx_box_check_reachable(bundle, err, sizeof err) < 0)
		goto out;
	int attach = sbx_box_attach_argv(&box, argv_probe, 16) == 0;
	if (sbx_box_prepare(&box, bo, bundle, id, handed[0], attach ? inner : handed, err, sizeof err) < 0)
		goto out;
	if (!attach && (lfd = listen_socket(sock, err, sizeof err)) < 0)
		goto out;
	if (!attach && (cli_service_secret_create(sb, svc, key, sizeof key) < 0 ||
			(kfd = open(key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)) {
		snprintf(err, sizeof err, "cannot make the agent's secret %s", key);
		goto out;
	}
	log = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (log < 0 || null < 0) {
		snprintf(err, sizeof err, "cannot open %s: %s", logf, strerror(errno));
		goto out;
	}
	int keep[2] = {lfd, kfd};
	pid_t runtime = sbx_box_run(&box, 1, null, log, log, keep, attach ? 0 : 2, err, sizeof err);
	rc = runtime < 0 ? -1 : sbx_box_started(&box, runtime, err, sizeof err);
out:
	if (lfd >= 0)
		close(lfd);
	if (kfd >= 0)
		close(kfd);
	if (log >= 0)
		close(log);
	if (null >= 0)
		close(null);
	if (rc < 0) {
		char last[512] = "";
		cli_last_log_line(sb, svc, last, sizeof last);
		cli_say(stderr, "sbx: cannot start %s/%s: %s%s%s\n", sb->name, svc, err, last[0] ? ": " : "", last);
		sbx_box_destroy(&box);
		return -1;
	}
	return wait_answer(sb, svc, 0);
}

/* A contained service: the box options the command line gives, completed
 * by what the service says in the values (env, workingDir, user, limits). */
static int start_local_service(cli_sandbox *sb, const char *svc, const sbx_box_opts *cmdline, const char *values)
{
	sbx_box_service spec = {0};
	char err[4400];
	if (values && sbx_box_service_read(values, svc, 0, &spec, err, sizeof err) < 0) {
		cli_say(stderr, "sbx up: %s\n", err);
		return -1;
	}
	if (spec.image[0] && !cmdline->rootfs) {
		cli_say(stderr,
			"sbx up: service %s runs image %s, which the local backend cannot pull: unpack the image into a "
			"directory and pass --rootfs DIR, or run it with --backend docker or --backend k8s\n",
			svc, spec.image);
		sbx_box_service_free(&spec);
		return -1;
	}
	sbx_box_opts bo = *cmdline;
	sbx_box_service_apply(&spec, &bo);
	int rc = start_box_service(sb, svc, &bo);
	sbx_box_service_free(&spec);
	return rc;
}

/* --memory, --pids and --cpus into bo (0 means "no limit" on the command
 * line, which sbx_box_opts spells UINT64_MAX, -1 and -1). */
static int limits_from_args(sbx_box_opts *bo, const char *memory, const char *pids, const char *cpus)
{
	if (memory) {
		long long m = cli_parse_size(memory);
		if (m < 0 || (m > 0 && m < 4 << 20)) {
			cli_say(stderr, "sbx up: --memory %s: give a size of at least 4m, like 512m or 4g (0: no limit)\n",
				memory);
			return -1;
		}
		bo->memory = m ? (uint64_t)m : UINT64_MAX;
	}
	char *end;
	if (pids) {
		long n = strtol(pids, &end, 10);
		if (*end || end == pids || n < 0) {
			cli_say(stderr, "sbx up: --pids %s: give a whole number (0: no limit)\n", pids);
			return -1;
		}
		bo->pids = n ? n : -1;
	}
	if (cpus) {
		double c = strtod(cpus, &end);
		if (*end || end == cpus || !(c >= 0) || c > 4096) {
			cli_say(stderr, "sbx up: --cpus %s: give a number of CPUs like 0.5 or 2 (0: no limit)\n", cpus);
			return -1;
		}
		bo->cpus = c > 0 ? c : -1;
	}
	return 0;
}

/* `sbx up` for the local backend and, with k8s_start, the k8s backend. */
int cli_local_up(int argc, char **argv, const char *generated_name, cli_k8s_start_fn *k8s_start)
{
	const char *file = NULL, *name = NULL, *backend = "local", *context = NULL, *ns = NULL, *transport = NULL;
	int isolate = 0, json = 0, host = 0, holder = 1;
	sbx_box_opts bo = {0};
	const char *memory = NULL, *pids = NULL, *cpus = NULL;
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
		else if (strcmp(argv[i], "--runtime") == 0 && i + 1 < argc)
			bo.runtime = argv[++i];
		else if (strcmp(argv[i], "--rootfs") == 0 && i + 1 < argc)
			bo.rootfs = argv[++i];
		else if (strcmp(argv[i], "--memory") == 0 && i + 1 < argc)
			memory = argv[++i];
		else if (strcmp(argv[i], "--pids") == 0 && i + 1 < argc)
			pids = argv[++i];
		else if (strcmp(argv[i], "--cpus") == 0 && i + 1 < argc)
			cpus = argv[++i];
		else if (strcmp(argv[i], "--host") == 0)
			host = 1;
		else if (strcmp(argv[i], "--isolate") == 0)
			isolate = 1;
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--no-holder") == 0)
			holder = 0;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else {
			cli_say(stderr, "sbx up: unexpected argument '%s'\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	int k8s = strcmp(backend, "k8s") == 0;
	if (k8s != (k8s_start != NULL) || (!k8s && strcmp(backend, "local") != 0)) {
		cli_say(stderr, "sbx up: unknown backend '%s' (local or k8s)\n", backend);
		return EXIT_USAGE;
	}
	if (!k8s && (context || ns || transport)) {
		cli_say(stderr, "sbx up: --context, --namespace and --transport are for --backend k8s\n");
		return EXIT_USAGE;
	}
	if (transport && strcmp(transport, "kubectl") != 0 && strcmp(transport, "websocket") != 0) {
		cli_say(stderr, "sbx up: unknown transport '%s' (websocket, the default, or kubectl)\n", transport);
		return EXIT_USAGE;
	}
	if (limits_from_args(&bo, memory, pids, cpus) < 0)
		return EXIT_USAGE;
	if (host && (bo.runtime || bo.rootfs || memory || pids || cpus)) {
		cli_say(stderr, "sbx up: --host runs no container: --runtime, --rootfs, --memory, --pids and --cpus "
				"do not apply\n");
		return EXIT_USAGE;
	}
	if (isolate && !host)
		cli_say(stderr, "sbx up: note: --isolate is implied (every local sandbox is a container); it only "
				"changes --host\n");
	if (!name)
		name = generated_name;
	if (!cli_valid_name(name)) {
		cli_say(stderr, "sbx up: bad name '%s': use lowercase letters, digits, '-' and '_' (at most 40)\n", name);
		return EXIT_USAGE;
	}
	cli_sandbox sb;
	if (cli_sandbox_load(name, &sb) == 0) {
		cli_say(stderr, "sbx up: sandbox '%s' already exists (remove it with: sbx down %s)\n", name, name);
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
			cli_say(stderr, "sbx up: %s\n", err);
			return 1;
		}
	} else if (file) {
		sb.nservices = services_from_file(file, sb.services, CLI_MAX_SERVICES, err, sizeof err);
		if (sb.nservices < 0) {
			cli_say(stderr, "sbx up: %s\n", err);
			return 1;
		}
	} else {
		sb.nservices = 1;
		strcpy(sb.services[0], "default");
	}
	if (mkdir(sb.dir, 0711) < 0) {
		cli_say(stderr, "sbx up: cannot create %s: %s\n", sb.dir, strerror(errno));
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
			cli_say(stderr, "sbx up: %s\n", err);
			cli_remove_tree(sb.dir);
			return 1;
		}
	}
	char values_path[4200];
	snprintf(values_path, sizeof values_path, "%s/values.yaml", sb.dir);
	if (k8s && k8s_start(&sb, compose_values_written ? values_path : file, context, ns,
				transport && !strcmp(transport, "kubectl")) < 0) {
		cli_remove_tree(sb.dir);
		return 1;
	}
	const char *values = compose_values_written ? values_path : file;
	for (int i = 0; !k8s && i < sb.nservices; i++) {
		if ((host ? start_host_service(&sb, sb.services[i], isolate)
			  : start_local_service(&sb, sb.services[i], &bo, values)) < 0) {
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
	if (k8s && holder)
		cli_hold_start(&sb);
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
