/* secret.c — the secret of each local sandbox's agent: STATE/NAME/SVC.key,
 * mode 0600, made by `sbx up` before the agent starts (the agent reads it
 * with --secret-file) and read by every later CLI call that connects.
 * The state directory is not visible inside an isolated sandbox. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "keyfile.h"
#include "sha256.h"

int cli_service_secret_create(const cli_sandbox *sb, const char *svc, char *path, size_t len)
{
	cli_service_path(sb, svc, "key", path, len);
	sbx_auth_key k;
	char err[512];
	int rc = sbx_keyfile_create(path, &k, err, sizeof err);
	sbx_wipe(&k, sizeof k);
	if (rc < 0)
		cli_say(stderr, "sbx: %s\n", err);
	return rc;
}

void cli_service_session_opts(const cli_sandbox *sb, const char *svc, sbx_session_opts *so, char *path,
			      size_t len)
{
	cli_service_path(sb, svc, "key", path, len);
	so->secret_file = path;
}
