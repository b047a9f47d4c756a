/* cmd_compose.c — `sbx compose2values`: a compose file as agent-env values. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "backends/k8s/compose.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx compose2values COMPOSE.yaml [-o VALUES.yaml] [--backend docker]\n"
		"\n"
		"Translates a docker compose file into values for the agent-env chart, with\n"
		"the rules of the Inspect k8s sandbox (docs/compose.md). Prints the values\n"
		"on stdout, or writes them to -o FILE. Ignored keys are reported on stderr;\n"
		"a key that cannot be translated is an error naming the key and its line.\n"
		"--backend docker: what `sbx up --backend docker` uses (also init, ports,\n"
		"depends_on, read_only and build, under each service's docker:; docs/docker.md).\n");
}

static void print_warning(void *ud, const char *msg)
{
	(void)ud;
	if (strncmp(msg, "note: ", 6) == 0)
		cli_say(stderr, "sbx: note: %s\n", msg + 6);
	else
		cli_say(stderr, "sbx: warning: %s\n", msg);
}

char *cli_compose_values(const char *path, char *err, size_t err_len)
{
	return sbx_compose_to_values(path, print_warning, NULL, err, err_len);
}

int cmd_compose2values(int argc, char **argv)
{
	const char *in = NULL, *out = NULL;
	int docker = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			out = argv[++i];
		} else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
			docker = strcmp(argv[++i], "docker") == 0;
			if (!docker && strcmp(argv[i], "k8s") && strcmp(argv[i], "local")) {
				cli_say(stderr, "sbx compose2values: --backend takes k8s, local or docker\n");
				return EXIT_USAGE;
			}
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] != '-' && !in) {
			in = argv[i];
		} else {
			cli_say(stderr, "sbx compose2values: unexpected argument '%s'\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!in) {
		usage(stderr);
		return EXIT_USAGE;
	}
	char err[2048];
	char *values = docker ? sbx_compose_to_docker_values(in, print_warning, NULL, err, sizeof err)
			      : cli_compose_values(in, err, sizeof err);
	if (!values) {
		cli_say(stderr, "sbx compose2values: %s\n", err);
		return 1;
	}
	int rc = 0;
	if (out) {
		rc = cli_write_file(out, values, strlen(values), err, sizeof err);
		if (rc < 0)
			cli_say(stderr, "sbx compose2values: %s\n", err);
	} else if (fputs(values, stdout) == EOF || fflush(stdout) == EOF) {
		rc = -1;
		cli_say(stderr, "sbx compose2values: cannot write to stdout\n");
	}
	free(values);
	return rc < 0 ? 1 : 0;
}
