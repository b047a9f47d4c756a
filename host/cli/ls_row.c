/* ls_row.c — one service row of `sbx ls` (backend.h: cli_ls_service), which
 * every backend's ls prints; apart from cmd_ls.c, which calls the backends. */
#include <stdio.h>
#include <string.h>

#include "backend.h"

void cli_ls_service(const cli_sandbox *sb, int k, int json, int pid, int running, const char *agent,
		    const char *where)
{
	if (!json) {
		printf("%-20s %-20s %-10s %s\n", k ? "" : sb->name, sb->services[k], agent, where);
		return;
	}
	printf("%s{\"name\": ", k ? ", " : "");
	json_str(stdout, sb->services[k], strlen(sb->services[k]));
	printf(", \"pid\": %d, \"running\": %s, \"workdir\": ", pid, running ? "true" : "false");
	json_str(stdout, where, strlen(where));
	printf("}");
}
