/* auth_probe.c — test tool: what any local process could try against a
 * listening agent. Connects to ADDR with libsbx and runs `id -u` there.
 *
 *   auth_probe ADDR [--secret-file F | --secret-hex HEX]
 *
 * (--secret-hex exists only so a test can offer a wrong secret as an
 * unprivileged user; real callers never put a secret in argv.)
 * Prints "uid N" and exits 0 when the agent ran the command, else
 * "refused CODE: MESSAGE" and exits 1. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "sbx.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: auth_probe ADDR [--secret-file F | --secret-hex HEX]\n");
		return 2;
	}
	sbx_session_opts so = {.dead_ms = 15000};
	sbx_auth_key k;
	if (argc == 4 && strcmp(argv[2], "--secret-file") == 0) {
		so.secret_file = argv[3];
	} else if (argc == 4 && strcmp(argv[2], "--secret-hex") == 0) {
		if (sbx_auth_key_parse(argv[3], strlen(argv[3]), &k) < 0) {
			fprintf(stderr, "auth_probe: bad hex secret\n");
			return 2;
		}
		so.secret = k.bytes;
		so.secret_len = k.len;
	}
	sbx_loop *loop = sbx_loop_new();
	sbx_error err;
	sbx_session *s = sbx_session_connect(loop, argv[1], &so, &err);
	int rc = 1;
	if (s && sbx_session_wait_ready(s, 15, &err) == 0) {
		const char *id[] = {"id", "-u", NULL};
		sbx_exec_result r;
		if (sbx_exec_sync(s, &(sbx_exec_opts){.argv = id, .timeout_s = 10}, &r) == 0) {
			printf("uid %s", (const char *)r.out);
			rc = 0;
		} else {
			err = r.error;
		}
		sbx_exec_result_free(&r);
	}
	if (rc)
		printf("refused %s: %s\n", err.code, err.message);
	sbx_session_close(s);
	sbx_loop_free(loop);
	return rc;
}
