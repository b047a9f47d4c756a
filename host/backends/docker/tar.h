/* tar.h — a build context as the tar stream `POST /build` takes: the
 * files under a directory (regular files, directories, symlinks; owner
 * root, modes kept) in ustar format, minus what its .dockerignore names. */
#ifndef SBX_DOCKER_TAR_H
#define SBX_DOCKER_TAR_H

#include <stddef.h>

/* .dockerignore, minimally: each line a pattern (fnmatch, '*' not
 * crossing '/', a leading '/' or './' dropped, '#' comments) matched
 * against a path relative to dir or any of its leading directories.
 * '!' exceptions and '**' are refused with err saying so. The Dockerfile
 * and .dockerignore are always sent, as Docker does.
 * The tar (malloc'd) in *out, its size in *len: 0, or -1 with err (also
 * when the context is larger than max bytes). */
int sbx_docker_tar_context(const char *dir, size_t max, char **out, size_t *len, char *err, size_t err_len);

#endif
