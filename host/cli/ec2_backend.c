/* ec2_backend.c — the EC2 backend of the CLI (backend.h) over the
 * commands in cmd_ec2.c: one instance, service "default", reached over
 * SSM. Held: `sbx up` starts a connection holder (hold.c) that keeps one
 * SSM session, and CLI calls go through it instead of starting their own. */
#include <string.h>

#include "backend.h"

static sbx_session *ec2_connect(sbx_loop *loop, const cli_sandbox *sb, const char *svc)
{
	(void)svc;
	return cli_ec2_connect(loop, sb);
}

static void ec2_ls(const cli_sandbox *sb, int json)
{
	char id[32] = "", region[32] = "";
	cli_ec2_describe(sb, id, sizeof id, region, sizeof region);
	if (!json) {
		printf("%-20s %-20s %-10s ec2:%s\n", sb->name, "default", id, region);
		return;
	}
	printf(", \"services\": [\"default\"], \"instance_id\": ");
	json_str(stdout, id, strlen(id));
	printf(", \"region\": ");
	json_str(stdout, region, strlen(region));
}

const cli_backend cli_ec2_backend = {
	.name = "ec2",
	.up = cli_ec2_up,
	.connect = ec2_connect,
	.release = cli_ec2_release,
	.down = cli_ec2_down,
	.down_all = cli_ec2_down_all,
	.ls = ec2_ls,
	.held = 1,
};
