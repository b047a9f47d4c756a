/* test_arm64.c — smoke test of the cross-built aarch64 agent under
 * qemu-user: handshake, an exec and a file round trip through libsbx.
 * Skipped (with a reason) when qemu-aarch64-static or the arm64 build is
 * missing; `make test` builds it whenever the cross compiler is present. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbx.h"
#include "test.h"

/* The cross-built agent is never sanitized, so the SAN suite uses it too. */
static const char *agent_path(void)
{
	return "build/arm64/sbx-agent";
}

static void test_arm64_agent_under_qemu(void)
{
	const char *argv[] = {"qemu-aarch64-static", agent_path(), "--stdio", NULL};
	sbx_loop *loop = sbx_loop_new();
	sbx_error err;
	sbx_session *s = sbx_session_command(loop, argv, NULL, &err);
	CHECK(s != NULL);
	CHECK(sbx_session_wait_ready(s, 30, &err) == 0);
	const char *cmd[] = {"sh", "-c", "cat; echo arm", NULL};
	sbx_exec_opts o = {.argv = cmd, .input = "hello ", .input_len = 6};
	sbx_exec_result r;
	CHECK(sbx_exec_sync(s, &o, &r) == 0);
	CHECK_EQ_STR((char *)r.out, "hello arm\n");
	sbx_exec_result_free(&r);
	char data[100000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)(i * 7);
	char path[] = "/tmp/sbx-arm64-XXXXXX";
	CHECK(mkdtemp(path) != NULL);
	char file[600];
	snprintf(file, sizeof file, "%s/f.bin", path);
	sbx_file_opts w = SBX_FILE_OPTS_INIT;
	w.path = file;
	w.data = data;
	w.len = sizeof data;
	sbx_file_result fr;
	CHECK(sbx_write_file_sync(s, &w, &fr) == 0);
	sbx_file_opts rd = SBX_FILE_OPTS_INIT;
	rd.path = file;
	CHECK(sbx_read_file_sync(s, &rd, &fr) == 0);
	CHECK(fr.len == sizeof data && memcmp(fr.data, data, sizeof data) == 0);
	sbx_file_result_free(&fr);
	unlink(file);
	rmdir(path);
	sbx_session_close(s);
	sbx_loop_free(loop);
}

int main(void)
{
	if (access(agent_path(), X_OK) != 0) {
		printf("skip test_arm64_agent_under_qemu: %s not built (needs gcc-aarch64-linux-gnu)\n", agent_path());
		return 0;
	}
	if (system("command -v qemu-aarch64-static >/dev/null") != 0) {
		printf("skip test_arm64_agent_under_qemu: qemu-aarch64-static not installed\n");
		return 0;
	}
	RUN(test_arm64_agent_under_qemu);
	return test_summary();
}
