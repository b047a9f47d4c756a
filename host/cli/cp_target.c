/* cp_target.c — where `sbx cp` lands a copy, by docker cp's rules: a
 * destination that is an existing directory receives the source inside it
 * (under the source's base name); a destination ending in '/' must be an
 * existing directory; a directory source over an existing non-directory is
 * an error; otherwise the destination path itself is created or replaced.
 * The same rules on both sides: the caller says what exists there. */
#include <stdio.h>
#include <string.h>

#include "cp_target.h"

/* The last component of path, trailing slashes ignored: "" for "/" or "". */
static void base_name(const char *path, char *out, size_t len)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	size_t start = n;
	while (start > 0 && path[start - 1] != '/')
		start--;
	if (n == 1 && path[0] == '/')
		start = n = 0;
	snprintf(out, len, "%.*s", (int)(n - start), path + start);
}

int cp_target(const char *src, int src_is_dir, const char *dst, const cp_dest_info *info, char *out, size_t len,
	      char *err, size_t err_len)
{
	size_t dl = strlen(dst);
	int slash = dl > 0 && dst[dl - 1] == '/';
	if (slash && !info->exists) {
		snprintf(err, err_len, "destination directory %s does not exist (create it first, or drop the "
				       "trailing '/' to name the copy)", dst);
		return -1;
	}
	if (info->exists && !info->is_dir && (slash || src_is_dir)) {
		snprintf(err, err_len, "%s is not a directory; %s", dst,
			 src_is_dir ? "a directory cannot be copied over a file" : "drop the trailing '/'");
		return -1;
	}
	if (!info->exists || !info->is_dir) {
		snprintf(out, len, "%s", dst);
		return 0;
	}
	char base[256];
	base_name(src, base, sizeof base);
	if (!base[0] || !strcmp(base, ".") || !strcmp(base, "..")) {
		snprintf(err, err_len, "'%s' does not end in a name to create in %s; give the destination's own name "
				       "instead (DIR/NAME)", src, dst);
		return -1;
	}
	if (snprintf(out, len, "%s%s%s", dst, slash ? "" : "/", base) >= (int)len) {
		snprintf(err, err_len, "path too long: %s/%s", dst, base);
		return -1;
	}
	return 0;
}
