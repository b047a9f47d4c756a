/* fsops.c — filesystem helpers for write_file, read_file and stat (see
 * fsops.h). Owns the atomic-write protocol: a temporary file next to the
 * target, owner and mode settled on the open fd, its data fsynced, then
 * one rename(), then the directory fsynced (durable writes). */
#include "fsops.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* At most this much of the target's name goes into a temporary file's
 * name, so ".<base>.sbx-XXXXXX" stays under NAME_MAX. */
#define TEMP_BASE_MAX 200

/* mkdir one directory of a mkdir -p walk. An existing directory (or a
 * symlink to one) is fine; anything else existing there is ENOTDIR. A new
 * one is made durable (its parent fsynced) when asked. */
static int make_dir(const char *dir, uid_t uid, gid_t gid, int durable)
{
	struct stat st;
	int err;

	if (mkdir(dir, 0755) == 0) {
		if (uid != (uid_t)-1 && lchown(dir, uid, gid) < 0)
			return -1;
		return durable ? fsops_sync_parent(dir) : 0;
	}
	err = errno;
	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		errno = ENOTDIR;
		return -1;
	}
	if (err != EEXIST)
		errno = err;
	return -1;
}

int fsops_make_parents(const char *path, uid_t uid, gid_t gid, int durable)
{
	char dir[PATH_MAX];
	struct stat st;
	size_t len = strlen(path), i;

	if (len >= sizeof dir) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, len + 1);

	/* The parent: drop trailing slashes, then the last component, keeping
	 * the '/' before it. Nothing left means the current directory. */
	while (len > 1 && dir[len - 1] == '/')
		len--;
	while (len > 0 && dir[len - 1] != '/')
		len--;
	dir[len] = '\0';
	if (len == 0)
		return 0;

	/* Usually the parent is already there. */
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;

	/* Every component of dir is now followed by a '/'. */
	for (i = 1; i < len; i++) {
		if (dir[i] != '/' || dir[i - 1] == '/')
			continue;
		dir[i] = '\0';
		if (make_dir(dir, uid, gid, durable) < 0)
			return -1;
		dir[i] = '/';
	}
	return 0;
}

int fsops_open_temp(const char *path, char *tmp, size_t tmp_len)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int dir_len = slash ? (int)(slash - path) + 1 : 0; /* with the '/' */
	struct stat st;
	int n, fd;

	if (tmp_len > 0)
		tmp[0] = '\0';
	if (path[0] == '\0') {
		errno = ENOENT;
		return -1;
	}
	if (strlen(path) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (base[0] == '\0' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
		errno = EISDIR;
		return -1;
	}
	n = snprintf(tmp, tmp_len, "%.*s.%.*s.sbx-XXXXXX", dir_len, path,
		     TEMP_BASE_MAX, base);
	if (n < 0 || (size_t)n >= tmp_len) {
		if (tmp_len > 0)
			tmp[0] = '\0';
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		tmp[0] = '\0';
	return fd;
}

/* Owner of the file being written: the existing target's, else (uid, gid)
 * when given. Keeping the target's owner is best effort (EPERM ignored). */
static int settle_owner(int fd, const struct stat *target, uid_t uid,
			gid_t gid)
{
	if (target) {
		if (fchown(fd, target->st_uid, target->st_gid) < 0 &&
		    errno != EPERM)
			return -1;
		return 0;
	}
	if (uid != (uid_t)-1)
		return fchown(fd, uid, gid);
	return 0;
}

static void close_quietly(int fd);

/* fsync that tolerates file systems without it (EINVAL: nothing to do). */
static int sync_fd(int fd)
{
	if (fsync(fd) < 0 && errno != EINVAL)
		return -1;
	return 0;
}

int fsops_sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = sync_fd(fd);
	close_quietly(fd);
	return rc;
}

int fsops_commit_temp(int fd, const char *tmp, const char *path, mode_t mode,
		      uid_t uid, gid_t gid, int durable)
{
	struct stat st;
	const struct stat *target = stat(path, &st) == 0 ? &st : NULL;
	mode_t m;

	if (mode != (mode_t)-1)
		m = mode & 07777;
	else if (target)
		m = target->st_mode & 07777;
	else
		m = 0644;

	/* chown before chmod: a chown clears set-id bits. */
	if (settle_owner(fd, target, uid, gid) < 0)
		goto fail;
	if (fchmod(fd, m) < 0)
		goto fail;
	if (durable && sync_fd(fd) < 0) /* the data is on disk before its name is */
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	/* the rename itself is on disk before the write is reported done */
	if (durable && fsops_sync_parent(path) < 0)
		return -1;
	return 0;

fail:
	fsops_abort_temp(fd, tmp);
	return -1;
}

/* close() that keeps errno, for error paths. */
static void close_quietly(int fd)
{
	int saved = errno;

	close(fd);
	errno = saved;
}

void fsops_abort_temp(int fd, const char *tmp)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	if (tmp && tmp[0])
		unlink(tmp);
	errno = saved;
}

int fsops_open_read(const char *path, uint64_t *size)
{
	struct stat st;
	int fd, flags;

	/* O_NONBLOCK keeps open() of a FIFO with no writer from hanging. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		goto fail;
	*size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	return fd;

fail:
	close_quietly(fd);
	return -1;
}

int fsops_stat_path(const char *path, int follow, fsops_stat *out)
{
	struct stat st;
	int r = follow ? stat(path, &st) : lstat(path, &st);

	memset(out, 0, sizeof *out);
	if (r < 0)
		return (errno == ENOENT || errno == ENOTDIR) ? 0 : -1;
	out->exists = 1;
	out->mode = (uint32_t)st.st_mode;
	out->size = (uint64_t)st.st_size;
	out->uid = (uint32_t)st.st_uid;
	out->gid = (uint32_t)st.st_gid;
	out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
			st.st_mtim.tv_nsec;
	out->is_dir = S_ISDIR(st.st_mode);
	out->is_link = S_ISLNK(st.st_mode);
	return 0;
}

/* Remove the last component of the clean absolute path out[0..*len). */
static void drop_last(char *out, size_t *len)
{
	while (*len > 1 && out[*len - 1] != '/')
		(*len)--;
	if (*len > 1)
		(*len)--;
	out[*len] = '\0';
}

/* Append the components of p to the clean absolute path out[0..*len),
 * skipping empty and "." components and resolving "..". */
static int append_clean(char *out, size_t out_len, size_t *len, const char *p)
{
	while (*p) {
		const char *c = p;
		size_t n, sep;

		while (*p && *p != '/')
			p++;
		n = (size_t)(p - c);
		while (*p == '/')
			p++;
		if (n == 0 || (n == 1 && c[0] == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			drop_last(out, len);
			continue;
		}
		sep = *len > 1 ? 1 : 0;
		if (*len + sep + n + 1 > out_len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (sep)
			out[(*len)++] = '/';
		memcpy(out + *len, c, n);
		*len += n;
		out[*len] = '\0';
	}
	return 0;
}

int fsops_resolve(const char *base, const char *path, char *out,
		  size_t out_len)
{
	size_t len = 1;

	if (out_len < 2) {
		errno = ENAMETOOLONG;
		return -1;
	}
	out[0] = '/';
	out[1] = '\0';
	if (path[0] != '/') {
		if (!base || base[0] != '/') {
			errno = EINVAL;
			return -1;
		}
		if (append_clean(out, out_len, &len, base) < 0)
			return -1;
	}
	return append_clean(out, out_len, &len, path);
}
