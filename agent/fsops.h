/* fsops.h — filesystem helpers behind the write_file, read_file and stat
 * requests: parent directories, atomic writes through a temporary file,
 * opening for reading, stat as plain fields, and path resolution.
 *
 * Every function returns 0 (or an fd) on success and -1 with errno set on
 * failure; none of them switches user (the caller forks for that). */
#ifndef SBX_AGENT_FSOPS_H
#define SBX_AGENT_FSOPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* mkdir -p of the parent directories of path (mode 0755, less the umask).
 * Each directory created here is chowned to (uid, gid) when
 * uid != (uid_t)-1; existing ones are left alone. ENOTDIR when a component
 * exists and is not a directory. durable: the parent of each directory
 * created is fsynced, so the new path survives a crash. */
int fsops_make_parents(const char *path, uid_t uid, gid_t gid, int durable);

/* Start an atomic write of path: create "<dir>/.<base>.sbx-XXXXXX" (mode
 * 0600, O_CLOEXEC) in the same directory and store its name in tmp. Returns
 * the fd. EISDIR when path is an existing directory or ends in '/';
 * ENAMETOOLONG when the name does not fit tmp_len. */
int fsops_open_temp(const char *path, char *tmp, size_t tmp_len);

/* Finish an atomic write; always consumes fd.
 * Owner: an existing target's owner is kept (best effort: when that is not
 * permitted, as for a non-root agent, the writer owns the file, as with
 * `sed -i`); a new file gets (uid, gid) when uid != (uid_t)-1.
 * Mode: `mode` when given, else the existing target's mode, else 0644; set
 * after the chown so set-id bits survive.
 * Durable (durable != 0): the temp file is fsynced before the rename and
 * the target's directory after it, so once this returns 0 a power loss
 * leaves the new contents, and before the rename it leaves the old ones.
 * Then rename(tmp, path). On failure tmp is unlinked (a failed directory
 * fsync after the rename is reported, the new file stays). An existing
 * target is looked up through symlinks, but a symlink at path is
 * replaced, not written through. */
int fsops_commit_temp(int fd, const char *tmp, const char *path, mode_t mode,
		      uid_t uid, gid_t gid, int durable);

/* fsync the directory holding path (its last component's parent). */
int fsops_sync_parent(const char *path);

/* Give up an atomic write: close fd (when >= 0) and unlink tmp. errno is
 * preserved. */
void fsops_abort_temp(int fd, const char *tmp);

/* Open path for reading (O_RDONLY|O_CLOEXEC, never blocking in open on a
 * FIFO). EISDIR for a directory. *size is the size of a regular file, 0 for
 * anything else (read until end of file). Returns the fd. */
int fsops_open_read(const char *path, uint64_t *size);

typedef struct fsops_stat {
	int exists;
	uint32_t mode; /* st_mode: type and permission bits */
	uint64_t size;
	uint32_t uid, gid;
	int64_t mtime_ns; /* since the epoch */
	int is_dir, is_link;
} fsops_stat;

/* stat (follow != 0) or lstat path. A missing path (ENOENT, or ENOTDIR
 * when a component is a file) is not an error: 0 with exists = 0. */
int fsops_stat_path(const char *path, int follow, fsops_stat *out);

/* Resolve path against the absolute directory base (the sandbox's working
 * directory; unused when path is absolute) into a clean absolute path in
 * out: no "//", "." or ".." components, no trailing '/'. ".." is resolved
 * by name, as Go's filepath.Clean does, and never climbs above "/".
 * ENAMETOOLONG when it does not fit out_len; EINVAL when base is needed
 * but not absolute. */
int fsops_resolve(const char *base, const char *path, char *out,
		  size_t out_len);

#endif
