/* main.c — the sbx command line: dispatch to the subcommands. */
#include <signal.h>
#include <string.h>

#include "cli.h"

#define SBX_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx COMMAND [ARGS]\n"
		"\n"
		"Fast sandboxes for running untrusted code (local backend).\n"
		"\n"
		"  up [NAME] [-f FILE]        start a sandbox (one agent per service in FILE)\n"
		"  up [NAME] --backend ec2    start one on an EC2 instance (reached over SSM)\n"
		"  exec NAME[/SVC] -- CMD...  run a command in it, streaming stdin/stdout/stderr\n"
		"                             (-it: interactive, on a terminal, as docker exec)\n"
		"  shell NAME[/SVC] [-u USER] an interactive login shell in it (bash, else sh)\n"
		"  ps NAME[/SVC]              list its detached commands (exec -d)\n"
		"  logs NAME[/SVC] ID [-f]    a detached command's output (-f: follow)\n"
		"  kill NAME[/SVC] ID [-s SIG] signal a detached command\n"
		"  cp SRC DST                 copy a file in or out (NAME[/SVC]:PATH on one side)\n"
		"  port-forward NAME[/SVC] [ADDR:]LPORT:RPORT...\n"
		"                             forward local ports to its loopback (as kubectl)\n"
		"  ls [--json]                list sandboxes\n"
		"  down NAME... | --all       stop and remove sandboxes\n"
		"  down --all --backend ec2   remove every EC2 instance and object sbx made\n"
		"  compose2values FILE [-o F] translate a compose file to agent-env values\n"
		"  k8s-config [--context C]   show the Kubernetes server, namespace and login\n"
		"  version                    print the version\n"
		"\n"
		"`sbx COMMAND --help` explains each. State lives in $SBX_STATE_DIR\n"
		"(default $XDG_RUNTIME_DIR/sbx or /tmp/sbx-UID). The agent binary is\n"
		"$SBX_AGENT, else sbx-agent next to sbx or in PREFIX/libexec/sbx, else on\n"
		"$PATH; the agent-env chart is $SBX_CHART, else PREFIX/share/sbx/chart.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN); /* a closed stdout or socket is an error, not death */
	const char *cmd = argv[1];
	if (!strcmp(cmd, "up"))
		return cmd_up(argc - 1, argv + 1);
	if (!strcmp(cmd, "exec"))
		return cmd_exec(argc - 1, argv + 1);
	if (!strcmp(cmd, "shell"))
		return cmd_shell(argc - 1, argv + 1);
	if (!strcmp(cmd, "ps"))
		return cmd_ps(argc - 1, argv + 1);
	if (!strcmp(cmd, "logs"))
		return cmd_logs(argc - 1, argv + 1);
	if (!strcmp(cmd, "kill"))
		return cmd_kill(argc - 1, argv + 1);
	if (!strcmp(cmd, "cp"))
		return cmd_cp(argc - 1, argv + 1);
	if (!strcmp(cmd, "port-forward"))
		return cmd_port_forward(argc - 1, argv + 1);
	if (!strcmp(cmd, "hold")) /* internal: `sbx up` starts it */
		return cmd_hold(argc - 1, argv + 1);
	if (!strcmp(cmd, "ls"))
		return cmd_ls(argc - 1, argv + 1);
	if (!strcmp(cmd, "down"))
		return cmd_down(argc - 1, argv + 1);
	if (!strcmp(cmd, "compose2values"))
		return cmd_compose2values(argc - 1, argv + 1);
	if (!strcmp(cmd, "k8s-config"))
		return cmd_k8s_config(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("sbx %s (protocol %d)\n", SBX_VERSION, 1);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	cli_say(stderr, "sbx: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
