/* services.h — service names from a values.yaml / compose.yaml file. */
#ifndef SBX_CLI_SERVICES_H
#define SBX_CLI_SERVICES_H

#include <stddef.h>

/* Fills names (default service first). Returns the count, or -1 with a
 * message naming the file and line in err. */
int services_from_file(const char *path, char names[][64], int max, char *err, size_t err_len);

#endif
