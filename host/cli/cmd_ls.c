/* cmd_ls.c — `sbx ls` lists sandboxes; `sbx down` removes them. Both go
 * through each sandbox's backend (backend.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

int cmd_ls(int argc, char **argv)
{
	int json = argc > 1 && strcmp(argv[1], "--json") == 0;
	if (argc > 1 && !json) {
		int help = strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0;
		fprintf(help ? stdout : stderr, "usage: sbx ls [--json]\n\nLists sandboxes, their services and agents.\n");
		return help ? 0 : EXIT_USAGE;
	}
	cli_names names;
	if (cli_sandbox_names(&names) < 0)
		return EXIT_SBX_ERROR;
	if (json)
		printf("[");
	else if (names.n)
		printf("%-20s %-20s %-10s %s\n", "NAME", "SERVICE", "AGENT", "WORKDIR");
	int listed = 0;
	for (int i = 0; i < names.n; i++) {
		cli_sandbox sb;
		if (cli_sandbox_load(names.name[i], &sb) < 0)
			continue; /* removed since it was listed */
		const cli_backend *b = cli_backend_of(&sb);
		if (json) {
			printf("%s{\"name\": ", listed++ ? ", " : "");
			json_str(stdout, sb.name, strlen(sb.name));
			printf(", \"backend\": \"%s\"", b->name);
		}
		b->ls(&sb, json);
		if (json)
			printf("}");
	}
	if (json)
		printf("]\n");
	cli_names_free(&names);
	return 0;
}

static int down_one(const char *name)
{
	cli_sandbox sb;
	if (cli_sandbox_load(name, &sb) < 0) {
		cli_print_no_sandbox(name);
		return 1;
	}
	cli_hold_stop(&sb);
	if (cli_backend_of(&sb)->down(&sb) < 0)
		return 1; /* the state stays: retry with sbx down NAME */
	if (cli_sandbox_remove(&sb) < 0) {
		cli_say(stderr, "sbx down: %s is stopped but its state %s stays: %s (remove it, then sbx down %s)\n",
			name, sb.dir, strerror(errno), name);
		return 1;
	}
	return 0;
}

/* --all: every sandbox in the state of backend (NULL: of every backend). */
static int down_all(const char *backend)
{
	cli_names names;
	if (cli_sandbox_names(&names) < 0)
		return 1;
	int rc = 0;
	for (int i = 0; i < names.n; i++) {
		cli_sandbox sb;
		if (cli_sandbox_load(names.name[i], &sb) < 0)
			continue; /* removed since it was listed */
		const cli_backend *b = cli_backend_of(&sb);
		if (!backend || !strcmp(backend, b->name))
			rc |= down_one(names.name[i]);
	}
	cli_names_free(&names);
	return rc;
}

int cmd_down(int argc, char **argv)
{
	int all = 0, rc = 0, named = 0;
	const char *backend = NULL;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--backend") && i + 1 < argc)
			backend = argv[i + 1];
		else if (!strcmp(argv[i], "--all"))
			all = 1;
	const cli_backend *b = backend ? cli_backend_find(backend) : NULL;
	if (backend && !b) {
		cli_say(stderr, "sbx down: unknown backend '%s' (%s)\n", backend, cli_backend_names());
		return EXIT_USAGE;
	}
	if (all && b && b->down_all) /* only with --all: `down NAME --backend B` is one sandbox */
		return b->down_all(argc, argv);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--all")) {
			all = 1;
		} else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: sbx down NAME... | --all [--backend local|k8s|docker] | --all --backend ec2 [--region R] [--s3-bucket B]\n\n"
			       "Stops a sandbox's agents (and the commands they run) and deletes its\n"
			       "state and working directories; a k8s sandbox's Helm release is uninstalled;\n"
			       "a docker sandbox's containers are removed; an EC2 sandbox's instance is\n"
			       "terminated and its S3 object deleted.\n"
			       "--all --backend B removes every sandbox of backend B (without --backend:\n"
			       "every sandbox); --all --backend ec2 removes every instance tagged\n"
			       "sbx-owner and every object under PREFIX/sbx/ (settings as for sbx up).\n"
			       "Exits 1 when any sandbox could not be removed (said why); it stays in\n"
			       "sbx ls, so that sbx down NAME can be retried.\n");
			return 0;
		} else {
			named++;
			rc |= down_one(argv[i]);
		}
	}
	if (all)
		rc |= down_all(backend);
	else if (!named) {
		cli_say(stderr, "usage: sbx down NAME... | --all\n");
		return EXIT_USAGE;
	}
	return rc;
}
