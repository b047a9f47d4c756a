/* cmd_ls.c — `sbx ls` lists local sandboxes; `sbx down` removes them. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "local/box.h"
#include "k8s/sandbox.h"

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
		sbx_k8s_sandbox k8s;
		int is_k8s = cli_k8s_load(&sb, &k8s) == 0;
		if (json) {
			printf("%s{\"name\": ", i ? ", " : "");
			json_str(stdout, sb.name, strlen(sb.name));
			printf(", \"backend\": \"%s\", \"services\": [", is_k8s ? "k8s" : sb.backend[0] ? sb.backend : "local");
		}
		if (!strcmp(sb.backend, "ec2")) {
			char id[32], region[32];
			cli_ec2_describe(&sb, id, sizeof id, region, sizeof region);
			if (json) {
				printf("\"default\"], \"instance_id\": ");
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
			sbx_box box;
			if (cli_service_box(&sb, sb.services[k], &box) == 0)
				snprintf(root, sizeof root, "%s/rootfs (%s)", box.bundle, box.runtime);
			else
				cli_service_path(&sb, sb.services[k], "root", root, sizeof root);
			if (is_k8s && k < k8s.nservices) { /* the pod stands for the agent and its workdir */
				pid = 0;
				snprintf(root, sizeof root, "pod %s/%s", k8s.ns, k8s.pods[k]);
			}
			if (json) {
				printf("%s{\"name\": ", k ? ", " : "");
				json_str(stdout, sb.services[k], strlen(sb.services[k]));
				printf(", \"pid\": %d, \"running\": %s, \"workdir\": ", (int)pid, pid || is_k8s ? "true" : "false");
				json_str(stdout, root, strlen(root));
				printf("}");
			} else {
				char agent[32];
				snprintf(agent, sizeof agent, is_k8s ? "k8s" : pid ? "pid %d" : "dead", (int)pid);
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
	if (cli_k8s_down(&sb) < 0)
		return 1; /* the state stays: retry with sbx down NAME */
	for (int k = 0; k < sb.nservices; k++) {
		sbx_box box;
		if (cli_service_box(&sb, sb.services[k], &box) == 0) {
			sbx_box_destroy(&box); /* every process in it, setsid'd or not */
			continue;
		}
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
	const char *backend = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--all")) {
			all = 1;
		} else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
			backend = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: sbx down NAME... | --all [--backend local|k8s] | --all --backend ec2 [--region R] [--s3-bucket B]\n\n"
			       "Stops a sandbox's agents (and the commands they run) and deletes its\n"
			       "state and working directories; a k8s sandbox's Helm release is uninstalled;\n"
			       "an EC2 sandbox's instance is terminated and its S3 object deleted.\n"
			       "--all --backend k8s removes every k8s sandbox sbx made (local: the others);\n"
			       "--all --backend ec2 removes every instance tagged sbx-owner and every object\n"
			       "under PREFIX/sbx/ (settings as for sbx up).\n");
			return 0;
		} else {
			named++;
			rc |= down_one(argv[i]);
		}
	}
	if (all) {
		char names[256][64];
		int n = cli_sandbox_names(names, 256);
		for (int i = 0; i < n; i++) {
			cli_sandbox sb;
			char k8s[4200];
			snprintf(k8s, sizeof k8s, "%.4000s/%.63s/k8s", cli_state_dir(), names[i]);
			int is_k8s = access(k8s, F_OK) == 0;
			if (!backend || (strcmp(backend, "k8s") == 0) == is_k8s)
				rc |= cli_sandbox_load(names[i], &sb) == 0 ? down_one(names[i]) : 0;
		}
	} else if (!named) {
		cli_say(stderr, "usage: sbx down NAME... | --all\n");
		return EXIT_USAGE;
	}
	return rc;
}
