/* cp_target.h — the path a `sbx cp` copy lands at (docker cp's rules). */
#ifndef SBX_CLI_CP_TARGET_H
#define SBX_CLI_CP_TARGET_H

#include <stddef.h>

/* What is at the destination path (followed through symlinks). */
typedef struct cp_dest_info {
	int exists, is_dir;
} cp_dest_info;

/* The path to create for copying src to dst: dst itself, or dst/BASE when
 * dst is an existing directory. -1 with err when the rules refuse: dst
 * ends in '/' and is missing or not a directory, or a directory source
 * would go over a non-directory. */
int cp_target(const char *src, int src_is_dir, const char *dst, const cp_dest_info *info, char *out, size_t len,
	      char *err, size_t err_len);

#endif
