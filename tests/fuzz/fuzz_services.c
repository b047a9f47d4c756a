/* fuzz_services.c — the YAML service parser of `sbx up -f` (host/cli/
 * services.c) on any file contents. It either names between 1 and 16
 * services, each a valid sandbox name, or fails with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "fuzz.h"
#include "services.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("services.yaml", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64], err[512];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	char names[16][64];
	err[0] = 0;
	int n = services_from_file(path, names, 16, err, sizeof err);
	close(fd);
	if (n < 0) {
		FUZZ_ASSERT(err[0] != 0);
		return 0;
	}
	FUZZ_ASSERT(n >= 1 && n <= 16);
	for (int i = 0; i < n; i++)
		FUZZ_ASSERT(cli_valid_name(names[i]));
	return 0;
}
