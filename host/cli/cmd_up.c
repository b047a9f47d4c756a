/* cmd_up.c — `sbx up`: picks the backend named by --backend (backend.h,
 * "local" by default) and hands it the whole command line. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "backend.h"

static void random_name(char *out)
{
	unsigned char r[8];
	if (getrandom(r, sizeof r, 0) != sizeof r)
		for (int i = 0; i < 8; i++)
			r[i] = (unsigned char)(rand() ^ getpid());
	for (int i = 0; i < 8; i++)
		out[i] = (char)('a' + r[i] % 26);
	out[8] = 0;
}

int cmd_up(int argc, char **argv)
{
	const char *backend = "local";
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--backend") == 0)
			backend = argv[i + 1];
	const cli_backend *b = cli_backend_find(backend);
	if (!b) {
		cli_say(stderr, "sbx up: unknown backend '%s' (%s)\n", backend, cli_backend_names());
		return EXIT_USAGE;
	}
	char generated[9];
	random_name(generated);
	return b->up(argc, argv, generated);
}
