/* treefs.c — walking a tree into a tree stream and applying a stream to
 * the file system (treefs.h). */
#include "treefs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- walker */

static int walk_fail(treefs_walk *w, int err, const char *what, const char *name)
{
	w->err = err;
	snprintf(w->msg, sizeof w->msg, "%s %s: %s", what, name, strerror(err));
	errno = err;
	return -1;
}

static void queue_header(treefs_walk *w, int kind, uint32_t mode, uint64_t size, const char *name)
{
	w->pend_len = sbx_tree_header(w->pend, kind, mode, size, name, strlen(name));
	w->pend_off = 0;
}

/* The entry `name` in directory fd dfd (AT_FDCWD for the root): queue its
 * header and open what it needs. 1 when queued, 0 when skipped. */
static int walk_entry(treefs_walk *w, int dfd, const char *name, const char *sendname)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return walk_fail(w, errno, "cannot stat", name);
	uint32_t mode = st.st_mode & 07777;
	if (S_ISDIR(st.st_mode)) {
		if (w->depth >= SBX_TREE_DEPTH_MAX)
			return walk_fail(w, ELOOP, "directories nested deeper than 64 levels at", name);
		int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		if (!d) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			return walk_fail(w, e, "cannot open directory", name);
		}
		w->dirs[w->depth++] = d;
		queue_header(w, SBX_TREE_DIR, mode, 0, sendname);
		return 1;
	}
	if (S_ISREG(st.st_mode)) {
		int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			int e = fd < 0 ? errno : EINVAL;
			if (fd >= 0)
				close(fd);
			return walk_fail(w, e, "cannot read", name);
		}
		w->file_fd = fd;
		w->file_left = (uint64_t)st.st_size;
		queue_header(w, SBX_TREE_FILE, mode, w->file_left, sendname);
		if (!w->file_left) {
			close(fd);
			w->file_fd = -1;
		}
		return 1;
	}
	if (S_ISLNK(st.st_mode)) {
		char target[SBX_TREE_LINK_MAX + 1];
		ssize_t n = readlinkat(dfd, name, target, sizeof target);
		if (n <= 0 || n > SBX_TREE_LINK_MAX)
			return walk_fail(w, n < 0 ? errno : ENAMETOOLONG, "cannot read symlink", name);
		queue_header(w, SBX_TREE_LINK, 0777, (uint64_t)n, sendname);
		memcpy(w->pend + w->pend_len, target, (size_t)n);
		w->pend_len += (size_t)n;
		return 1;
	}
	w->skipped++;
	return 0;
}

int treefs_walk_open(treefs_walk *w, const char *path)
{
	memset(w, 0, sizeof *w);
	w->file_fd = -1;
	char copy[4096];
	snprintf(copy, sizeof copy, "%s", path);
	size_t len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = 0;
	const char *slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy;
	const char *sendname = sbx_tree_name_ok(base, strlen(base)) ? base : "root";
	int rc = walk_entry(w, AT_FDCWD, copy, sendname);
	if (rc == 0)
		return walk_fail(w, EINVAL, "cannot copy", "a socket, FIFO or device");
	if (rc < 0)
		return -1;
	w->root_sent = 1;
	return 0;
}

/* Queues the next record: a directory's next entry or its end. 0 at the
 * end of the tree. */
static int walk_next(treefs_walk *w)
{
	while (w->depth > 0) {
		DIR *d = w->dirs[w->depth - 1];
		errno = 0;
		struct dirent *e = readdir(d);
		if (!e) {
			if (errno)
				return walk_fail(w, errno, "cannot list", "a directory");
			closedir(d);
			w->depth--;
			queue_header(w, SBX_TREE_UP, 0, 0, "");
			return 1;
		}
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int rc = walk_entry(w, dirfd(d), e->d_name, e->d_name);
		if (rc != 0)
			return rc;
	}
	return 0;
}

long treefs_walk_read(treefs_walk *w, uint8_t *buf, size_t room)
{
	size_t n = 0;
	while (n < room) {
		if (w->pend_off < w->pend_len) {
			size_t k = w->pend_len - w->pend_off;
			k = k < room - n ? k : room - n;
			memcpy(buf + n, w->pend + w->pend_off, k);
			w->pend_off += k;
			n += k;
		} else if (w->file_fd >= 0) {
			size_t want = room - n < w->file_left ? room - n : (size_t)w->file_left;
			ssize_t r = read(w->file_fd, buf + n, want);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return walk_fail(w, r < 0 ? errno : EIO, "cannot read (it shrank while being copied?)",
						 "a file");
			n += (size_t)r;
			w->file_left -= (uint64_t)r;
			if (!w->file_left) {
				close(w->file_fd);
				w->file_fd = -1;
			}
		} else {
			int rc = walk_next(w);
			if (rc < 0)
				return -1;
			if (rc == 0)
				break;
		}
	}
	return (long)n;
}

void treefs_walk_close(treefs_walk *w)
{
	if (w->file_fd >= 0)
		close(w->file_fd);
	w->file_fd = -1;
	while (w->depth > 0)
		closedir(w->dirs[--w->depth]);
}

/* ---------------------------------------------------------------- applier */

static int apply_fail(treefs_apply *a, int err, const char *fmt, const char *name)
{
	a->err = err;
	snprintf(a->msg, sizeof a->msg, fmt, name, strerror(err));
	return -1;
}

static int cur_dir(treefs_apply *a) { return a->fds[a->depth]; }

/* The name an entry gets: the root is named by the receiver. */
static const char *target_name(treefs_apply *a, const char *name)
{
	return a->depth == 0 ? a->root : name;
}

/* 0 when name in the current directory is missing or a regular file (it
 * may be replaced), else -1: never replace a directory, symlink or device. */
static int replaceable(treefs_apply *a, const char *name)
{
	struct stat st;
	if (fstatat(cur_dir(a), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : apply_fail(a, errno, "cannot check %s: %s", name);
	if (S_ISREG(st.st_mode))
		return 0;
	const char *what = S_ISDIR(st.st_mode) ? "a directory" : S_ISLNK(st.st_mode) ? "a symlink" : "not a regular file";
	a->err = EEXIST;
	snprintf(a->msg, sizeof a->msg, "refusing to replace %s: it is %s (only regular files are replaced)", name,
		 what);
	return -1;
}

static void temp_name(treefs_apply *a, const char *name)
{
	static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	unsigned char r[6];
	if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
		unsigned long t = (unsigned long)time(NULL) ^ (unsigned long)getpid() ^ (unsigned long)(uintptr_t)a;
		for (size_t i = 0; i < sizeof r; i++)
			r[i] = (unsigned char)(t >> (i * 5));
	}
	char sfx[7];
	for (size_t i = 0; i < 6; i++)
		sfx[i] = abc[r[i] % (sizeof abc - 1)];
	sfx[6] = 0;
	snprintf(a->tmp, sizeof a->tmp, ".%.200s.sbx-%s", name, sfx);
}

static int settle(treefs_apply *a, int fd, mode_t mode)
{
	if (a->uid != (uid_t)-1 && fchown(fd, a->uid, a->gid) < 0)
		return -1;
	return fchmod(fd, mode);
}

static int on_dir(treefs_apply *a, uint32_t mode, const char *name)
{
	name = target_name(a, name);
	int dfd = cur_dir(a);
	mode_t final = 0;
	if (mkdirat(dfd, name, 0700) == 0) {
		final = (mode_t)mode & a->mode_mask;
	} else if (errno != EEXIST) {
		return apply_fail(a, errno, "cannot create directory %s: %s", name);
	}
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) /* ELOOP/ENOTDIR: a symlink or a file is there; never followed */
		return apply_fail(a, errno == ELOOP ? ENOTDIR : errno, "cannot copy a directory to %s: %s", name);
	if (final && a->uid != (uid_t)-1 && fchown(fd, a->uid, a->gid) < 0) {
		close(fd);
		return apply_fail(a, errno, "cannot chown %s: %s", name);
	}
	a->fds[++a->depth] = fd;
	a->modes[a->depth] = final ? final : 0;
	if (final && mode == 0) /* a mode of 0 is still "new": keep a marker */
		a->modes[a->depth] = 010000;
	return 0;
}

static int on_up(treefs_apply *a)
{
	int fd = a->fds[a->depth];
	mode_t m = a->modes[a->depth];
	int rc = 0;
	if (m && fchmod(fd, m & 07777) < 0)
		rc = apply_fail(a, errno, "cannot set the mode of %s: %s", "a directory");
	if (!rc && a->durable && fsync(fd) < 0 && errno != EINVAL)
		rc = apply_fail(a, errno, "cannot fsync %s: %s", "a directory");
	close(fd);
	a->depth--;
	return rc;
}

static int on_file(treefs_apply *a, uint32_t mode, const char *name)
{
	name = target_name(a, name);
	if (replaceable(a, name) < 0)
		return -1;
	for (int tries = 0; tries < 100; tries++) {
		temp_name(a, name);
		a->file_fd = openat(cur_dir(a), a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (a->file_fd >= 0 || errno != EEXIST)
			break;
	}
	if (a->file_fd < 0) {
		a->tmp[0] = 0;
		return apply_fail(a, errno, "cannot create a file beside %s: %s", name);
	}
	snprintf(a->name, sizeof a->name, "%s", name);
	a->mode = (mode_t)mode & a->mode_mask;
	return 0;
}

static int on_data(void *ud, const uint8_t *p, size_t n)
{
	treefs_apply *a = ud;
	while (n > 0) {
		ssize_t w = write(a->file_fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return apply_fail(a, errno, "cannot write %s: %s", a->name);
		p += w;
		n -= (size_t)w;
		a->bytes += (uint64_t)w;
	}
	return 0;
}

static void drop_temp(treefs_apply *a)
{
	if (a->file_fd >= 0)
		close(a->file_fd);
	a->file_fd = -1;
	if (a->tmp[0])
		unlinkat(a->fds[a->depth], a->tmp, 0);
	a->tmp[0] = 0;
}

/* The temp file is complete: owner, mode, fsync, then the rename — after
 * checking again that the target is still missing or a regular file. */
static int on_file_end(void *ud)
{
	treefs_apply *a = ud;
	int fd = a->file_fd;
	if (settle(a, fd, a->mode) < 0 || (a->durable && fsync(fd) < 0 && errno != EINVAL))
		return apply_fail(a, errno, "cannot finish %s: %s", a->name);
	a->file_fd = -1;
	if (close(fd) < 0)
		return apply_fail(a, errno, "cannot write %s: %s", a->name);
	if (replaceable(a, a->name) < 0)
		return -1;
	if (renameat(cur_dir(a), a->tmp, cur_dir(a), a->name) < 0)
		return apply_fail(a, errno, "cannot rename into %s: %s", a->name);
	a->tmp[0] = 0;
	return 0;
}

static int on_link(treefs_apply *a, const char *name, const char *target)
{
	name = target_name(a, name);
	if (replaceable(a, name) < 0)
		return -1;
	temp_name(a, name);
	if (symlinkat(target, cur_dir(a), a->tmp) < 0) {
		a->tmp[0] = 0;
		return apply_fail(a, errno, "cannot create symlink %s: %s", name);
	}
	if (a->uid != (uid_t)-1 && fchownat(cur_dir(a), a->tmp, a->uid, a->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return apply_fail(a, errno, "cannot chown %s: %s", name);
	if (renameat(cur_dir(a), a->tmp, cur_dir(a), name) < 0)
		return apply_fail(a, errno, "cannot rename into %s: %s", name);
	a->tmp[0] = 0;
	return 0;
}

static int on_entry(void *ud, int kind, uint32_t mode, uint64_t size, const char *name, const char *link)
{
	treefs_apply *a = ud;
	(void)size;
	switch (kind) {
	case SBX_TREE_DIR: return on_dir(a, mode, name);
	case SBX_TREE_UP: return on_up(a);
	case SBX_TREE_FILE: return on_file(a, mode, name);
	default: return on_link(a, name, link);
	}
}

int treefs_apply_open(treefs_apply *a, const char *path, int durable, uid_t uid, gid_t gid, uint64_t max)
{
	memset(a, 0, sizeof *a);
	a->file_fd = -1;
	a->fds[0] = -1;
	a->durable = durable;
	a->uid = uid;
	a->gid = gid;
	a->max = max;
	a->mode_mask = 07777;
	sbx_tree_sink sink = {.entry = on_entry, .data = on_data, .file_end = on_file_end, .ud = a};
	sbx_tree_dec_init(&a->dec, &sink);

	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	size_t len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		dir[--len] = 0;
	char *slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : dir;
	if (!sbx_tree_name_ok(base, strlen(base)))
		return apply_fail(a, EINVAL, "%s does not end in a name to create: %s", path);
	memcpy(a->root, base, strlen(base) + 1); /* name_ok: at most 255 bytes */
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
	a->fds[0] = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->fds[0] < 0)
		return apply_fail(a, errno, "cannot open directory %s: %s", dir);
	return 0;
}

int treefs_apply_feed(treefs_apply *a, const uint8_t *p, size_t n)
{
	a->fed += n;
	if (a->max && a->fed > a->max) {
		a->err = EFBIG;
		snprintf(a->msg, sizeof a->msg, "the copy is over the size limit of %llu bytes",
			 (unsigned long long)a->max);
		return -1;
	}
	if (sbx_tree_feed(&a->dec, p, n) < 0) {
		if (!a->err) {
			a->err = EBADMSG;
			snprintf(a->msg, sizeof a->msg, "%s", a->dec.err);
		}
		return -1;
	}
	return 0;
}

int treefs_apply_finish(treefs_apply *a)
{
	if (!sbx_tree_done(&a->dec)) {
		a->err = EBADMSG;
		snprintf(a->msg, sizeof a->msg, "the tree stream ended early");
		return -1;
	}
	if (a->durable && fsync(a->fds[0]) < 0 && errno != EINVAL)
		return apply_fail(a, errno, "cannot fsync %s: %s", "the target's directory");
	return 0;
}

void treefs_apply_close(treefs_apply *a)
{
	drop_temp(a);
	for (int i = a->depth; i >= 0; i--)
		if (a->fds[i] >= 0)
			close(a->fds[i]);
	a->depth = 0;
	a->fds[0] = -1;
}
