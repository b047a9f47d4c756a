/* replay.c — runs a fuzz target over its saved inputs, without libFuzzer:
 * tests/fuzz/corpus/NAME (the seeds) and tests/fuzz/regress/NAME (every
 * crash a fuzzer found, kept once fixed). Built into the test suite as
 * build/tests/test_fuzz_NAME, so those inputs run under gcc, ASan and
 * valgrind on every `make test`. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#ifndef FUZZ_NAME
#error "build with -DFUZZ_NAME=\"target\""
#endif

static int run_dir(const char *kind, int required)
{
	char dir[256];
	snprintf(dir, sizeof dir, "tests/fuzz/%s/%s", kind, FUZZ_NAME);
	DIR *d = opendir(dir);
	if (!d) {
		if (required)
			printf("FAIL fuzz_%s_%s: no inputs in %s\n", FUZZ_NAME, kind, dir);
		return required ? -1 : 0;
	}
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[600];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		uint8_t *buf = malloc(1 << 20);
		size_t len = fread(buf, 1, 1 << 20, f);
		fclose(f);
		/* an exact-size copy, so ASan sees reads past the input */
		uint8_t *in = malloc(len ? len : 1);
		memcpy(in, buf, len);
		free(buf);
		LLVMFuzzerTestOneInput(in, len);
		free(in);
		n++;
	}
	closedir(d);
	if (n == 0 && required) {
		printf("FAIL fuzz_%s_%s: no inputs in %s\n", FUZZ_NAME, kind, dir);
		return -1;
	}
	printf("ok   fuzz_%s_%s (%d inputs)\n", FUZZ_NAME, kind, n);
	return 0;
}

int main(void)
{
	int rc = run_dir("corpus", 1);
	rc |= run_dir("regress", 0);
	return rc < 0 ? 1 : 0;
}
