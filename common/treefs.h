/* treefs.h — the file-system ends of a tree stream (tree.h), shared by
 * the agent and libsbx: a walker that turns a path into stream bytes and
 * an applier that turns stream bytes into files. This (with treefs.c) is
 * the one part of common/ that touches the file system; it needs only
 * libc, so both ends build it.
 *
 * Containment: the applier creates every entry with *at() calls relative
 * to directory fds it opened itself with O_NOFOLLOW, so a symlink in the
 * stream (or one planted in the target tree) is never followed; a file is
 * written to `.NAME.sbx-XXXXXX` and renamed over NAME only when NAME is
 * missing or a regular file (a directory, symlink or device is never
 * replaced); a directory is merged into only when it is a real directory.
 * Modes are set with fchmod (no umask). */
#ifndef SBX_TREEFS_H
#define SBX_TREEFS_H

#include <dirent.h>
#include <stdint.h>
#include <sys/types.h>

#include "tree.h"

/* ---- walker: pull-style, so an event loop can fill a frame at a time */
typedef struct treefs_walk {
	DIR *dirs[SBX_TREE_DEPTH_MAX];
	int depth;
	int file_fd;
	uint64_t file_left;
	uint8_t pend[SBX_TREE_HDR + SBX_TREE_LINK_MAX + 1];
	size_t pend_len, pend_off;
	int root_sent;
	uint64_t skipped;        /* sockets, FIFOs, devices: not copied */
	int err;                 /* errno of a failure */
	char msg[512];
} treefs_walk;

/* Starts at path (lstat: a symlink is sent as a link). -1 with errno and
 * w->msg when path is missing or not a file, directory or symlink. */
int treefs_walk_open(treefs_walk *w, const char *path);
/* Fills buf with up to room stream bytes: >0 bytes, 0 at the end, -1 on
 * an error (w->err, w->msg). */
long treefs_walk_read(treefs_walk *w, uint8_t *buf, size_t room);
void treefs_walk_close(treefs_walk *w);

/* ---- applier: push-style */
typedef struct treefs_apply {
	sbx_tree_dec dec;
	int fds[SBX_TREE_DEPTH_MAX + 1]; /* [0]: the target's parent */
	mode_t modes[SBX_TREE_DEPTH_MAX + 1]; /* a new directory's final mode, 0 for a merged one */
	int depth;
	char root[SBX_TREE_NAME_MAX + 1]; /* the target's name in fds[0] */
	int durable;
	uid_t uid;
	gid_t gid;
	uint64_t max, fed;       /* stream bytes allowed (0 = no bound) / seen */
	uint64_t bytes;          /* file contents written */
	int file_fd;             /* the temp file being filled */
	char tmp[SBX_TREE_NAME_MAX + 32];
	char name[SBX_TREE_NAME_MAX + 1];
	mode_t mode;
	mode_t mode_mask;        /* applied to every mode; 07777 after open (a host clears set-id bits) */
	int err;
	char msg[512];
} treefs_apply;

/* Creates the stream's root entry at path (its parent must exist),
 * merging into a real directory there. uid/gid: owner of what is created
 * ((uid_t)-1: keep ours). max: bound on stream bytes, 0 for none. */
int treefs_apply_open(treefs_apply *a, const char *path, int durable, uid_t uid, gid_t gid, uint64_t max);
/* -1 with a->err/a->msg: malformed stream, over max, or a local failure
 * (ENOSPC...); call treefs_apply_close then. */
int treefs_apply_feed(treefs_apply *a, const uint8_t *p, size_t n);
/* The stream ended: -1 unless the root entry was complete. */
int treefs_apply_finish(treefs_apply *a);
/* Removes a temp file still open and closes everything (any time). */
void treefs_apply_close(treefs_apply *a);

#endif
