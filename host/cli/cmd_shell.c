/* cmd_shell.c — `sbx shell NAME[/SERVICE] [-u USER]`: an interactive login
 * shell in a sandbox (bash when the image has it, else sh), on a terminal
 * when this side is one: `sbx exec -it ... -- sh -c ...` spelled short. */
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Runs as sh so it works on any image; picks bash when present. */
static const char *const login_shell = "if command -v bash >/dev/null 2>&1; then exec bash -l; fi; exec sh -l";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx shell NAME[/SERVICE] [-u USER] [-w DIR]\n"
		"\n"
		"An interactive login shell in the sandbox: bash if it has one, else sh.\n"
		"On a terminal it gets a terminal (like `sbx exec -it`); otherwise it\n"
		"reads commands from stdin. Exits with the shell's exit status.\n"
		"\n"
		"  -u, --user USER     log in as USER (name, uid, name:group or uid:gid)\n"
		"  -w, --cwd DIR       start in DIR\n");
}

int cmd_shell(int argc, char **argv)
{
	const char *target = NULL, *user = NULL, *cwd = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if ((!strcmp(a, "-u") || !strcmp(a, "--user")) && v) {
			user = argv[++i];
		} else if ((!strcmp(a, "-w") || !strcmp(a, "--cwd")) && v) {
			cwd = argv[++i];
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (a[0] != '-' && !target) {
			target = a;
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!target) {
		usage(stderr);
		return EXIT_USAGE;
	}
	char *args[16];
	int n = 0;
	args[n++] = "exec";
	args[n++] = isatty(0) ? "-it" : "-i";
	if (user) {
		args[n++] = "-u";
		args[n++] = (char *)user;
	}
	if (cwd) {
		args[n++] = "-w";
		args[n++] = (char *)cwd;
	}
	args[n++] = (char *)target;
	args[n++] = "--";
	args[n++] = "sh";
	args[n++] = "-c";
	args[n++] = (char *)login_shell;
	args[n] = NULL;
	return cmd_exec(n, args);
}
