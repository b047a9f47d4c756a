/* fuzz.h — shared by the fuzz targets (tests/fuzz/fuzz_*.c).
 *
 * Each target defines LLVMFuzzerTestOneInput. `make fuzz` links it with
 * libFuzzer (clang); the test suite links it with replay.c, which runs
 * every saved input (tests/fuzz/corpus/NAME and tests/fuzz/regress/NAME)
 * through it once, so found crashes stay fixed under gcc and valgrind. */
#ifndef SBX_FUZZ_H
#define SBX_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant (not a rejected input): crash so the fuzzer keeps it. */
#define FUZZ_ASSERT(cond)                                                                  \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* fuzz_auth.c: the agent's secret and its (fixed) nonce, so seeds made by
 * seeds.c carry a proof the target accepts. */
#define FUZZ_AUTH_KEY_BYTE 0x5a
#define FUZZ_AUTH_NONCE_BYTE 0xa5

#endif
