/* cmd_ls.c — `sbx ls` lists local sandboxes; `sbx down` removes them. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cmd_ls(int argc, char **argv)
{
	int json = argc > 1 && strcmp(argv[1], "--json") == 0;
	if (argc > 1 && !json) {
		int help = strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0;
		fprintf(help ? stdout : stderr, "usage: sbx ls [--json]\n\nLists local sandboxes, their services and agents.\n");
		return help ? 0 : EXIT_USAGE;
	}
	char names[256][64];
	int n = cli_sandbox_names(names, 256);
	if (json)
		printf("[");
	else if (n)
		printf("%-20s %-20s %-10s %s\n", "NAME", "SERVICE", "AGENT", "WORKDIR");
	for (int i = 0; i < n; i++) {
		cli_sandbox sb;
		if (cli_sandbox_load(names[i], &sb) < 0)
			continue;
		if (json) {
			printf("%s{\"name\": ", i ? ", " : "");
			json_str(stdout, sb.name, strlen(sb.name));
			printf(", \"services\": [");
		}
		if (!strcmp(sb.backend, "ec2")) {
			char id[32], region[32];
			cli_ec2_describe(&sb, id, sizeof id, region, sizeof region);
			if (json) {
				printf("\"default\"], \"backend\": \"ec2\", \"instance_id\": ");
				json_str(stdout, id, strlen(id));
				printf(", \"region\": ");
				json_str(stdout, region, strlen(region));
				printf("}");
			} else {
				printf("%-20s %-20s %-10s ec2:%s\n", sb.name, "default", id, region);
			}
			continue;
		}
		for (int k = 0; k < sb.nservices; k++) {
			pid_t pid = cli_service_pid(&sb, sb.services[k]);
			char root[4200];
			cli_service_path(&sb, sb.services[k], "root", root, sizeof root);
			if (json) {
				printf("%s{\"name\": ", k ? ", " : "");
				json_str(stdout, sb.services[k], strlen(sb.services[k]));
				printf(", \"pid\": %d, \"running\": %s, \"workdir\": ", (int)pid, pid ? "true" : "false");
				json_str(stdout, root, strlen(root));
				printf("}");
			} else {
				char agent[32];
				snprintf(agent, sizeof agent, pid ? "pid %d" : "dead", (int)pid);
				printf("%-20s %-20s %-10s %s\n", k ? "" : sb.name, sb.services[k], agent, root);
			}
		}
		if (json)
			printf("]}");
	}
	if (json)
		printf("]\n");
	return 0;
}

static int down_one(const char *name)
{
	cli_sandbox sb;
	if (cli_sandbox_load(name, &sb) < 0) {
		cli_print_no_sandbox(name);
		return 1;
	}
	if (!strcmp(sb.backend, "ec2"))
		return cli_ec2_down(&sb);
	for (int k = 0; k < sb.nservices; k++) {
		pid_t pid = cli_service_pid(&sb, sb.services[k]);
		if (pid <= 0)
			continue;
		kill(pid, SIGTERM);
		for (int i = 0; i < 100 && cli_service_pid(&sb, sb.services[k]); i++)
			usleep(10000);
		if (cli_service_pid(&sb, sb.services[k]))
			kill(pid, SIGKILL);
	}
	cli_remove_tree(sb.dir);
	return 0;
}

int cmd_down(int argc, char **argv)
{
	int all = 0, rc = 0, named = 0;
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--backend") && !strcmp(argv[i + 1], "ec2"))
			return cli_ec2_down_all(argc, argv);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--all")) {
			all = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: sbx down NAME... | --all | --all --backend ec2 [--region R] [--s3-bucket B]\n\n"
			       "Stops a sandbox's agents (and the commands they run) and deletes its\n"
			       "state and working directories; an EC2 sandbox's instance is terminated and\n"
			       "its S3 object deleted. --all --backend ec2 removes every instance tagged\n"
			       "sbx-owner and every object under PREFIX/sbx/ (settings as for sbx up).\n");
			return 0;
		} else {
			named++;
			rc |= down_one(argv[i]);
		}
	}
	if (all) {
		char names[256][64];
		int n = cli_sandbox_names(names, 256);
		for (int i = 0; i < n; i++)
			rc |= down_one(names[i]);
	} else if (!named) {
		fprintf(stderr, "usage: sbx down NAME... | --all\n");
		return EXIT_USAGE;
	}
	return rc;
}
