/* fuzz_kubeconfig.c — the kubeconfig loader (host/backends/k8s/kubeconfig.c) on
 * any file contents: it loads a configuration with a server or fails with
 * a message; describing the loaded auth never fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "backends/k8s/kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("kubeconfig", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64], err[1024] = "", auth[256];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	sbx_k8s_config_opts o = {.kubeconfig = path, .serviceaccount_dir = "/nonexistent"};
	sbx_k8s_config cfg;
	memset(&cfg, 0, sizeof cfg);
	if (sbx_k8s_config_load(&o, &cfg, err, sizeof err) == 0) {
		FUZZ_ASSERT(cfg.server && cfg.namespace);
		sbx_k8s_auth_describe(&cfg, auth, sizeof auth);
		FUZZ_ASSERT(auth[0] != 0);
	} else {
		FUZZ_ASSERT(err[0] != 0);
	}
	sbx_k8s_config_free(&cfg);
	close(fd);
	return 0;
}
