/* main.c — sbx-agent's command line: serve on stdio or listen on a socket. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent.h"
#include "keyfile.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx-agent --stdio | --listen ADDR | --attach PATH [options]\n"
		"\n"
		"The sbx in-sandbox agent: runs commands and moves files for an sbx host,\n"
		"speaking the sbx protocol (docs/PROTOCOL.md).\n"
		"\n"
		"  --stdio            serve one host on stdin/stdout, exit when it leaves\n"
		"  --listen ADDR      serve hosts on a unix socket path or 127.0.0.1:PORT;\n"
		"                     commands survive a dropped connection and can be re-attached\n"
		"  --listen-fd N      serve hosts on the listening socket inherited as fd N\n"
		"                     (how a contained local sandbox gets its socket)\n"
		"  --attach PATH      connect stdin/stdout to the agent listening on the unix\n"
		"                     socket PATH, starting it (detached) if none answers: a\n"
		"                     stdio stream whose commands survive the stream; the\n"
		"                     listener's secret is PATH.key (made once, mode 0600)\n"
		"  --secret-file PATH the sandbox's secret (hex digits, a file only its owner can\n"
		"                     read): --listen serves only hosts that prove they hold it\n"
		"  --secret-fd N      the same, read from file descriptor N (then closed)\n"
		"  --socket-owner UID[:GID] give the --listen unix socket file to this user\n"
		"                     (a root agent serving a non-root host; it still\n"
		"                     serves only hosts that hold the secret)\n"
		"  --insecure-no-auth --listen without a secret: anyone who can connect drives\n"
		"                     this agent (and, as root, the machine); for debugging only\n"
		"  --workdir DIR      directory relative paths resolve against (default: cwd)\n"
		"  --user USER[:GROUP] run commands as this user unless a request names one\n"
		"  --keep SECONDS     keep results of detached commands this long (default 600)\n"
		"  --block-metadata   commands cannot reach the instance metadata service\n"
		"                     (169.254.169.254, fd00:ec2::254); the agent itself still\n"
		"                     can. Needs root and cgroup v2 (systemd: Delegate=yes);\n"
		"                     the agent refuses to start if it cannot set this up\n"
		"  --version          print the version\n");
}

static void make_boot_id(char *out, size_t len)
{
	unsigned char r[16] = {0};
	if (getrandom(r, sizeof r, 0) != sizeof r) {
		pid_t p = getpid();
		memcpy(r, &p, sizeof p);
	}
	for (size_t i = 0; i < sizeof r && 2 * i + 2 < len; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static const char *arch_name(void)
{
#if defined(__x86_64__)
	return "x86_64";
#elif defined(__aarch64__)
	return "aarch64";
#else
	return "unknown";
#endif
}

/* --secret-file PATH or --secret-fd N into ag->key; -1 after saying why. */
static int load_secret(agent *ag, const char *file, const char *fd_text, unsigned owner)
{
	char err[400];
	int rc;
	if (file) {
		rc = sbx_keyfile_read_also(file, owner, &ag->key, err, sizeof err);
	} else {
		char *end;
		long fd = strtol(fd_text, &end, 10);
		if (end == fd_text || *end || fd < 0 || fd > 1 << 20) {
			fprintf(stderr, "sbx-agent: --secret-fd wants a file descriptor number, not '%s'\n", fd_text);
			return -1;
		}
		rc = sbx_keyfile_read_fd((int)fd, &ag->key, err, sizeof err);
		close((int)fd);
	}
	if (rc < 0)
		fprintf(stderr, "sbx-agent: %s\n", err);
	return rc;
}

/* --block-metadata: the commands' cgroup, before any host can connect. */
static int block_metadata(agent *ag)
{
	static nometa nm;
	char err[2048];
	if (nometa_setup(&nm, err, sizeof err) < 0) {
		fprintf(stderr, "sbx-agent: %s\n", err);
		return -1;
	}
	ag->nometa = &nm;
	return 0;
}

int main(int argc, char **argv)
{
	static agent ag;
	const char *listen_addr = NULL, *attach_path = NULL, *keep = "600", *socket_owner = NULL;
	const char *secret_file = NULL, *secret_fd = NULL, *workdir = NULL;
	unsigned owner_uid = 0, owner_gid = 0;
	int insecure = 0, inherited = -1, nometa_wanted = 0;
	ag.listen_fd = -1;
	ag.keep_ms = 600 * 1000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--stdio") == 0) {
			ag.stdio = 1;
		} else if (strcmp(a, "--listen") == 0 && v) {
			listen_addr = v;
			i++;
		} else if (strcmp(a, "--listen-fd") == 0 && v) {
			inherited = atoi(v);
			listen_addr = v;
			i++;
		} else if (strcmp(a, "--socket-owner") == 0 && v) {
			if (agent_parse_owner(v, &owner_uid, &owner_gid) < 0)
				return 2;
			socket_owner = v;
			i++;
		} else if (strcmp(a, "--attach") == 0 && v) {
			attach_path = v;
			i++;
		} else if (strcmp(a, "--secret-file") == 0 && v) {
			secret_file = v;
			i++;
		} else if (strcmp(a, "--secret-fd") == 0 && v) {
			secret_fd = v;
			i++;
		} else if (strcmp(a, "--insecure-no-auth") == 0) {
			insecure = 1;
		} else if (strcmp(a, "--workdir") == 0 && v) {
			workdir = v;
			i++;
		} else if (strcmp(a, "--user") == 0 && v) {
			ag.default_user = v;
			i++;
		} else if (strcmp(a, "--keep") == 0 && v) {
			ag.keep_ms = (uint64_t)strtoull(v, NULL, 10) * 1000;
			keep = v;
			i++;
		} else if (strcmp(a, "--block-metadata") == 0) {
			nometa_wanted = 1;
		} else if (strcmp(a, "--version") == 0) {
			printf("sbx-agent %s (protocol %d, %s)\n", AGENT_VERSION, SBX_PROTO_VERSION, arch_name());
			return 0;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "sbx-agent: unknown or incomplete option: %s\n", a);
			usage(stderr);
			return 2;
		}
	}
	/* The secret's path is relative to where we started, --workdir or not. */
	if ((secret_file || secret_fd) && load_secret(&ag, secret_file, secret_fd, owner_uid) < 0)
		return 2;
	if (workdir && chdir(workdir) < 0) {
		fprintf(stderr, "sbx-agent: --workdir %s: %s\n", workdir, strerror(errno));
		return 2;
	}
	if (attach_path && nometa_wanted) {
		/* the bridge would reach a listener that may already run without it */
		fprintf(stderr, "sbx-agent: --block-metadata works with --stdio, --listen and --listen-fd "
				"(the agent that runs the commands), not with --attach\n");
		return 2;
	}
	if (attach_path && !ag.stdio && !listen_addr)
		return agent_attach(attach_path, keep); /* the listener gets our cwd as its workdir */
	if (ag.stdio == (listen_addr != NULL)) {
		usage(stderr);
		return 2;
	}
	if (listen_addr && !ag.key.len && !insecure) {
		fprintf(stderr, "sbx-agent: --listen needs --secret-file or --secret-fd (anyone who can connect "
				"would drive this agent); --insecure-no-auth overrides, for debugging only\n");
		return 2;
	}
	if (nometa_wanted && block_metadata(&ag) < 0)
		return 2;
	if (!getcwd(ag.workdir, sizeof ag.workdir))
		strcpy(ag.workdir, "/");
	if (inherited >= 0 && (ag.listen_fd = agent_listen_inherited(inherited)) < 0)
		return 1;
	if (inherited < 0 && listen_addr && (ag.listen_fd = agent_listen_on(listen_addr)) < 0)
		return 1;
	if (socket_owner && (inherited >= 0 || !listen_addr)) {
		fprintf(stderr, "sbx-agent: --socket-owner goes with --listen on a unix socket\n");
		return 2;
	}
	if (socket_owner && agent_listen_give(listen_addr, owner_uid, owner_gid) < 0)
		return 2;
	snprintf(ag.hello.version, sizeof ag.hello.version, "%s", AGENT_VERSION);
	make_boot_id(ag.hello.boot_id, sizeof ag.hello.boot_id);
	snprintf(ag.hello.arch, sizeof ag.hello.arch, "%s", arch_name());
	/* Requests carry argv and env whole: take any the kernel's execve takes
	 * (at most 6 MiB of strings, whatever the stack limit), not just 1 MiB. */
	ag.hello.max_frame = SBX_AGENT_MAX_FRAME;
	ag.hello.pid = getpid();
	ag.hello.uid = getuid();
	ag.hello.caps |= SBX_CAP_ORPHAN | SBX_CAP_PTY | SBX_CAP_FORWARD | SBX_CAP_TREE | SBX_CAP_AGENT_FORWARD;
	if (!ag.stdio)
		ag.hello.caps |= SBX_CAP_ATTACH | SBX_CAP_DETACH;
	if (geteuid() == 0)
		ag.hello.caps |= SBX_CAP_USER;
	int rc = agent_serve(&ag);
	if (ag.nometa)
		nometa_cleanup(ag.nometa);
	return rc;
}
