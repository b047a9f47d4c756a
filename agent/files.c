/* files.c — the files job kind (kind.h): the WRITE, READ and STAT requests.
 *
 * A write lands in a temporary file beside the target and is renamed into
 * place only after every byte arrived and the transfer's CRC32 and length
 * match, so a failed or interrupted write never leaves a half-written
 * target; unless the host said `fsync: false`, file and directory are
 * fsynced before the RESULT, so that holds across a power loss too. A read streams the file as credit allows and ends with END
 * (count + CRC32) and a RESULT. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "fsops.h"
#include "kind.h"
#include "treefs.h"
#include "users.h"

/* A WRITE or READ in flight. */
typedef struct transfer {
	struct transfer *next;
	agent_conn *owner;
	uint32_t stream;
	int type;              /* SBX_MSG_READ or SBX_MSG_WRITE */
	int fd;
	char path[PATH_MAX];
	char tmp[PATH_MAX];    /* WRITE: the temp file being filled */
	uint64_t size, done, limit;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	int durable;           /* WRITE: fsync before the RESULT (its `fsync` key) */
	treefs_walk *walk;     /* READ with `tree`: the tree being sent */
	treefs_apply *apply;   /* WRITE with `tree`: the tree being created */
	int finished;          /* swept */
} transfer;

static transfer *find(agent_conn *ac, uint32_t stream)
{
	for (transfer *t = ac->ag->xfers; t; t = t->next)
		if (t->owner == ac && t->stream == stream && !t->finished)
			return t;
	return NULL;
}

static transfer *add(agent_conn *ac, const sbx_msg *m, const char *path)
{
	transfer *t = calloc(1, sizeof *t);
	if (!t) {
		sbx_conn_send_error(ac->conn, m->stream, ENOMEM, "io", "agent out of memory");
		return NULL;
	}
	t->owner = ac;
	t->stream = m->stream;
	t->type = m->type;
	t->fd = -1;
	snprintf(t->path, sizeof t->path, "%s", path);
	t->next = ac->ag->xfers;
	ac->ag->xfers = t;
	return t;
}

/* Resolves the request's path; replies with ERROR when it is unusable. */
static int request_path(agent_conn *ac, const sbx_msg *m, char *out, size_t len)
{
	char raw[PATH_MAX];
	if (sbx_map_str(m->body, "path", raw, sizeof raw) < 0 || !raw[0]) {
		sbx_conn_send_error(ac->conn, m->stream, EINVAL, "invalid", "path must be a non-empty string");
		return -1;
	}
	if (fsops_resolve(ac->ag->workdir, raw, out, len) < 0) {
		sbx_conn_send_error(ac->conn, m->stream, errno, agent_errcode(errno), "%s: %s", raw, strerror(errno));
		return -1;
	}
	return 0;
}

/* Closes a tree transfer's walk or applier (an unfinished file's temp
 * file goes). */
static void close_tree(transfer *t)
{
	if (t->walk) {
		treefs_walk_close(t->walk);
		free(t->walk);
		t->walk = NULL;
	}
	if (t->apply) {
		treefs_apply_close(t->apply);
		free(t->apply);
		t->apply = NULL;
	}
}

/* Ends a transfer without committing anything: a write's temp file goes. */
static void abandon(transfer *t)
{
	close_tree(t);
	if (t->type == SBX_MSG_WRITE)
		fsops_abort_temp(t->fd, t->tmp);
	else if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->finished = 1;
}

static void fail(transfer *t, int err, const char *what)
{
	sbx_conn_send_error(t->owner->conn, t->stream, err, agent_errcode(err), "%s %s: %s", what, t->path,
			    strerror(err));
	abandon(t);
}

/* ---------------------------------------------------------------- write */

/* A tree write failed: its message, then the transfer ends. */
static void tree_fail(transfer *t, treefs_apply *a)
{
	sbx_conn_send_error(t->owner->conn, t->stream, a->err, agent_errcode(a->err), "%s: %s", t->path, a->msg);
	abandon(t);
}

/* A tree write: the stream (tree.h) is applied as it arrives. */
static void tree_write_open(transfer *t, uint64_t limit)
{
	t->apply = malloc(sizeof *t->apply);
	if (!t->apply) {
		fail(t, ENOMEM, "out of memory for");
		return;
	}
	if (treefs_apply_open(t->apply, t->path, t->durable, t->uid, t->gid, limit) < 0)
		tree_fail(t, t->apply);
}

static void files_write(agent_conn *ac, const sbx_msg *m)
{
	char path[PATH_MAX];
	if (request_path(ac, m, path, sizeof path) < 0)
		return;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	char spec[256];
	if (sbx_map_str(m->body, "user", spec, sizeof spec) == 0 && spec[0]) {
		agent_user u;
		char err[256];
		if (agent_user_lookup(spec, ac->ag->passwd_path, ac->ag->group_path, &u, err, sizeof err) < 0) {
			sbx_conn_send_error(ac->conn, m->stream, errno, "bad_user", "%s", err);
			return;
		}
		uid = u.uid;
		gid = u.gid;
	}
	transfer *t = add(ac, m, path);
	if (!t)
		return;
	t->mode = (mode_t)sbx_map_int(m->body, "mode", -1);
	t->durable = sbx_map_bool(m->body, "fsync", 1);
	t->uid = uid;
	t->gid = gid;
	if (fsops_make_parents(path, uid, gid, t->durable) < 0) {
		fail(t, errno, "cannot create the parent directories of");
		return;
	}
	if (sbx_map_bool(m->body, "tree", 0)) {
		tree_write_open(t, sbx_map_uint(m->body, "limit", 0));
		return;
	}
	t->fd = fsops_open_temp(path, t->tmp, sizeof t->tmp);
	if (t->fd < 0)
		fail(t, errno, "cannot write");
}

static void write_chunk(transfer *t, const sbx_msg *m)
{
	if (t->apply) {
		if (treefs_apply_feed(t->apply, m->data, m->len) < 0) {
			tree_fail(t, t->apply);
			return;
		}
		t->done += m->len;
		sbx_conn_consumed(t->owner->conn, t->stream, m->len);
		return;
	}
	const uint8_t *p = m->data;
	size_t n = m->len;
	while (n > 0) {
		ssize_t w = write(t->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fail(t, errno, "cannot write");
			return;
		}
		p += w;
		n -= (size_t)w;
	}
	t->done += m->len;
	sbx_conn_consumed(t->owner->conn, t->stream, m->len);
}

static void write_end(transfer *t, const sbx_msg *m)
{
	if (t->apply && !m->err) {
		if (treefs_apply_finish(t->apply) < 0) {
			tree_fail(t, t->apply);
			return;
		}
		close_tree(t); /* everything is in place */
		t->finished = 1;
		msgpack_packer *pk = sbx_conn_begin_map(t->owner->conn, SBX_MSG_RESULT, t->stream, 1);
		if (pk) {
			sbx_pack_kv_uint(pk, "size", t->done);
			sbx_conn_finish(t->owner->conn);
		}
		return;
	}
	if (t->apply) {
		sbx_conn_send_error(t->owner->conn, t->stream, m->err, "corrupt", "%s: %s", t->path, m->text);
		abandon(t);
		return;
	}
	if (m->err) {
		sbx_conn_send_error(t->owner->conn, t->stream, m->err, "corrupt", "%s: %s (target left unchanged)",
				    t->path, m->text);
		fsops_abort_temp(t->fd, t->tmp);
	} else if (fsops_commit_temp(t->fd, t->tmp, t->path, t->mode, t->uid, t->gid, t->durable) < 0) {
		t->fd = -1;
		sbx_conn_send_error(t->owner->conn, t->stream, errno, agent_errcode(errno), "cannot write %s: %s",
				    t->path, strerror(errno));
	} else {
		msgpack_packer *pk = sbx_conn_begin_map(t->owner->conn, SBX_MSG_RESULT, t->stream, 1);
		if (pk) {
			sbx_pack_kv_uint(pk, "size", t->done);
			sbx_conn_finish(t->owner->conn);
		}
	}
	t->fd = -1;
	t->finished = 1;
}

/* DATA/END for a write in progress. Returns 0 if the stream is not one. */
static int on_data(agent_conn *ac, const sbx_msg *m)
{
	transfer *t = find(ac, m->stream);
	if (!t || t->type != SBX_MSG_WRITE)
		return 0;
	if (m->type == SBX_MSG_DATA)
		write_chunk(t, m);
	else
		write_end(t, m);
	return 1;
}

/* ---------------------------------------------------------------- read */

/* A tree read: the walk (treefs.h) fills DATA frames as credit allows. */
static void tree_read_open(agent_conn *ac, const sbx_msg *m, const char *path, uint64_t limit)
{
	treefs_walk *w = malloc(sizeof *w);
	if (!w) {
		sbx_conn_send_error(ac->conn, m->stream, ENOMEM, "io", "agent out of memory");
		return;
	}
	if (treefs_walk_open(w, path) < 0) {
		sbx_conn_send_error(ac->conn, m->stream, w->err, agent_errcode(w->err), "%s", w->msg);
		treefs_walk_close(w);
		free(w);
		return;
	}
	transfer *t = add(ac, m, path);
	if (!t) {
		treefs_walk_close(w);
		free(w);
		return;
	}
	t->walk = w;
	t->limit = limit;
}

static void files_read(agent_conn *ac, const sbx_msg *m)
{
	char path[PATH_MAX];
	if (request_path(ac, m, path, sizeof path) < 0)
		return;
	uint64_t limit = sbx_map_uint(m->body, "limit", 0);
	if (sbx_map_bool(m->body, "tree", 0)) {
		tree_read_open(ac, m, path, limit);
		return;
	}
	uint64_t size;
	int fd = fsops_open_read(path, &size);
	if (fd < 0) {
		int e = errno;
		sbx_conn_send_error(ac->conn, m->stream, e, agent_errcode(e), "cannot read %s: %s", path, strerror(e));
		return;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		sbx_conn_send_error(ac->conn, m->stream, EINVAL, "invalid",
				    "cannot read %s: not a regular file (a FIFO or device would block the agent)", path);
		return;
	}
	if (limit && size > limit) {
		close(fd);
		sbx_conn_send_error(ac->conn, m->stream, EFBIG, "too_large",
				    "%s is %llu bytes, over the read limit of %llu bytes", path,
				    (unsigned long long)size, (unsigned long long)limit);
		return;
	}
	transfer *t = add(ac, m, path);
	if (!t) {
		close(fd);
		return;
	}
	t->fd = fd;
	t->size = size;
	t->limit = limit;
}

static void read_step(transfer *t)
{
	sbx_conn *c = t->owner->conn;
	while (agent_can_send(t->owner) && !t->finished) {
		/* read straight into the outbound frame; sent below unless over the limit */
		size_t room;
		uint8_t *buf = sbx_conn_data_begin(c, t->stream, &room);
		if (!buf)
			return;
		ssize_t r = t->walk ? treefs_walk_read(t->walk, buf, room) : read(t->fd, buf, room);
		if (r < 0 && t->walk) {
			sbx_conn_data_commit(c, t->stream, SBX_FD_OUT, 0);
			sbx_conn_send_error(c, t->stream, t->walk->err, agent_errcode(t->walk->err), "%s", t->walk->msg);
			abandon(t);
			return;
		}
		int over = r > 0 && t->limit && t->done + (uint64_t)r > t->limit;
		sbx_conn_data_commit(c, t->stream, SBX_FD_OUT, r > 0 && !over ? (size_t)r : 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fail(t, errno, "cannot read");
			return;
		}
		if (r == 0) {
			struct stat st;
			int have_mode = !t->walk && fstat(t->fd, &st) == 0;
			if (t->fd >= 0)
				close(t->fd);
			t->fd = -1;
			close_tree(t);
			sbx_conn_send_end(c, t->stream, SBX_FD_OUT);
			msgpack_packer *pk = sbx_conn_begin_map(c, SBX_MSG_RESULT, t->stream, have_mode ? 2 : 1);
			if (pk) {
				if (have_mode)
					sbx_pack_kv_uint(pk, "mode", st.st_mode & 07777);
				sbx_pack_kv_uint(pk, "size", t->done);
				sbx_conn_finish(c);
			}
			t->finished = 1;
			return;
		}
		t->done += (uint64_t)r;
		if (over) {
			fail(t, EFBIG, "over the read limit:");
			return;
		}
	}
}

static void files_pump(agent *ag)
{
	for (transfer *t = ag->xfers; t; t = t->next)
		if (t->type == SBX_MSG_READ && !t->finished && t->owner && !t->owner->dead)
			read_step(t);
}

/* ---------------------------------------------------------------- stat */

static void files_stat(agent_conn *ac, const sbx_msg *m)
{
	char path[PATH_MAX];
	if (request_path(ac, m, path, sizeof path) < 0)
		return;
	fsops_stat st;
	if (fsops_stat_path(path, sbx_map_bool(m->body, "follow", 1), &st) < 0) {
		sbx_conn_send_error(ac->conn, m->stream, errno, agent_errcode(errno), "cannot stat %s: %s", path,
				    strerror(errno));
		return;
	}
	msgpack_packer *pk = sbx_conn_begin_map(ac->conn, SBX_MSG_RESULT, m->stream, 8);
	if (!pk)
		return;
	sbx_pack_kv_bool(pk, "exists", st.exists);
	sbx_pack_kv_uint(pk, "mode", st.mode);
	sbx_pack_kv_uint(pk, "size", st.size);
	sbx_pack_kv_uint(pk, "uid", st.uid);
	sbx_pack_kv_uint(pk, "gid", st.gid);
	sbx_pack_kv_int(pk, "mtime_ns", st.mtime_ns);
	sbx_pack_kv_bool(pk, "is_dir", st.is_dir);
	sbx_pack_kv_bool(pk, "is_link", st.is_link);
	sbx_conn_finish(ac->conn);
}

/* ---------------------------------------------------------------- lifecycle */

static int cancel(agent_conn *ac, uint32_t stream)
{
	transfer *t = find(ac, stream);
	if (!t)
		return 0;
	fail(t, ECANCELED, "cancelled:");
	return 1;
}

/* The connection is gone: abandon its transfers (temp files removed). */
static void files_detach(agent_conn *ac)
{
	for (transfer *t = ac->ag->xfers; t; t = t->next) {
		if (t->owner == ac && !t->finished)
			abandon(t);
	}
}

static void files_sweep(agent *ag)
{
	transfer **link = &ag->xfers;
	while (*link) {
		transfer *t = *link;
		if (t->finished) {
			*link = t->next;
			free(t);
		} else {
			link = &t->next;
		}
	}
}

static int files_request(agent_conn *ac, const sbx_msg *m)
{
	switch (m->type) {
	case SBX_MSG_WRITE: files_write(ac, m); return 1;
	case SBX_MSG_READ: files_read(ac, m); return 1;
	case SBX_MSG_STAT: files_stat(ac, m); return 1;
	}
	return 0;
}

/* DATA/END into a write, CANCEL of a transfer (a SIGNAL means nothing to
 * a transfer: not taken). */
static int files_stream(agent_conn *ac, const sbx_msg *m)
{
	if (m->type == SBX_MSG_CANCEL)
		return cancel(ac, m->stream);
	if (m->type == SBX_MSG_DATA || m->type == SBX_MSG_END)
		return on_data(ac, m);
	return 0;
}

const agent_kind agent_files_kind = {
	.name = "files",
	.caps = SBX_CAP_TREE,
	.request = files_request,
	.stream = files_stream,
	.detach = files_detach,
	.pump = files_pump,
	.sweep = files_sweep,
};
