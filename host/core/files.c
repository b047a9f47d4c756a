/* files.c — the file call kinds (call.h): upload (WRITE), download (READ)
 * and STAT, three ops over one instance struct.
 *
 * Uploads stream from memory, a file descriptor or a path, one chunk per
 * turn, so a 1 GiB file needs no more memory than a chunk. A source that
 * can run dry (a pipe, a terminal, a socket) is read only when it is
 * readable, waiting on the loop: a read never blocks the loop, and a
 * signal meant to cancel the copy finds it there. Downloads land
 * in a file descriptor, in memory (bounded by the limit), or in a local
 * path through a temporary file renamed into place only when the transfer
 * arrived complete and its CRC32 matched, fsynced before the rename and its
 * directory after it (durable.c) unless the caller set no_fsync. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "call.h"
#include "internal.h"
#include "treefs.h"

#define DROP_NOTE "during a file transfer; the target is unchanged"

/* A file call: the head, then the transfer's state. */
typedef struct file_call {
	sbx_call call;
	sbx_file_opts fo;
	int src_fd, own_src_fd;   /* write source */
	int src_eof;
	int src_may_block;        /* the source is not a regular file: poll before reading */
	int src_watched;          /* waiting on the loop for the source to be readable */
	uint64_t total, done;
	int sink_fd;              /* read sink */
	char sink_tmp[4200];      /* read into a path: the temp file */
	int sink_failed;
	sbx_buf sink_pending;     /* what a full non-blocking sink fd has not taken yet */
	int sink_watched;         /* waiting on the loop for the sink to take it */
	int result_held;          /* RESULT came first: finish once the sink took it all */
	sbx_file_result held;     /* that result */
	int cancelled;            /* we sent CANCEL after a local failure */
	sbx_error local_error;
	sbx_buf mem;              /* read into memory */
	sbx_stat_result *stat_out;
	treefs_walk *walk;        /* tree write: the local tree being sent */
	treefs_apply *apply;      /* tree read: the local tree being created */
	int mode;                 /* read into a path: the source's mode from RESULT, -1 unknown */
} file_call;

static const sbx_call_ops write_ops, read_ops, stat_ops;

static file_call *file_of(sbx_call *c) { return (file_call *)c; }

static void pack_path_request(file_call *f, const sbx_file_opts *o, int is_write)
{
	sbx_call *c = &f->call;
	msgpack_packer pk;
	msgpack_packer_init(&pk, &c->request, (msgpack_packer_write)sbx_buf_append);
	sbx_pack_kv_str(&pk, "path", o->path);
	c->npairs = 1;
	if (is_write && o->user && o->user[0]) {
		sbx_pack_kv_str(&pk, "user", o->user);
		c->npairs++;
	}
	if (is_write && o->mode >= 0) {
		sbx_pack_kv_int(&pk, "mode", o->mode);
		c->npairs++;
	}
	if (is_write && o->no_fsync) { /* the agent fsyncs unless told not to */
		sbx_pack_kv_bool(&pk, "fsync", 0);
		c->npairs++;
	}
	if (!is_write || (o->tree && o->limit)) {
		sbx_pack_kv_uint(&pk, "limit", f->fo.limit);
		c->npairs++;
	}
	if (o->tree) {
		sbx_pack_kv_bool(&pk, "tree", 1);
		c->npairs++;
	}
}

static file_call *new_file_call(sbx_session *s, const sbx_call_ops *ops, const sbx_file_opts *o, sbx_error *err)
{
	if (!o->path || !o->path[0]) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "a path in the sandbox is required");
		return NULL;
	}
	if (s->failed) {
		*err = s->failure;
		return NULL;
	}
	if (o->tree && (!o->local_path || !(sbx_conn_peer(s->conn)->caps & SBX_CAP_TREE))) {
		if (!o->local_path)
			sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "a tree copy needs a local_path");
		else
			sbx_error_set(err, SBX_E_INVALID, ENOTSUP, "unsupported",
				      "the agent in this sandbox is too old to copy trees (no \"tree\" capability); "
				      "recreate the sandbox with this sbx's agent");
		return NULL;
	}
	file_call *f = (file_call *)call_new(s, ops, sizeof *f);
	if (!f) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	f->fo = *o;
	f->src_fd = -1;
	f->sink_fd = -1;
	f->mode = -1;
	return f;
}

/* ---------------------------------------------------------------- write */

/* A tree write: the walk feeds the stream (write_pump). */
static sbx_call *write_tree(sbx_session *s, const sbx_file_opts *o, sbx_error *err)
{
	file_call *f = new_file_call(s, &write_ops, o, err);
	if (!f)
		return NULL;
	f->walk = malloc(sizeof *f->walk);
	if (!f->walk || treefs_walk_open(f->walk, o->local_path) < 0) {
		if (f->walk)
			sbx_error_set(err, SBX_E_LOCAL, f->walk->err, "local", "%s", f->walk->msg);
		else
			sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "local", "out of memory");
		call_finish(&f->call);
		return NULL;
	}
	f->call.sending = 1;
	pack_path_request(f, o, 1);
	if (session_start_call(s, &f->call, err) < 0)
		return NULL;
	return &f->call;
}

sbx_call *sbx_write_file(sbx_session *s, const sbx_file_opts *o, sbx_error *err)
{
	if (o->tree)
		return write_tree(s, o, err);
	int fd = -1, own = 0;
	uint64_t total = o->len;
	if (!o->data) {
		if (o->fd >= 0) {
			fd = o->fd;
		} else if (o->local_path) {
			fd = open(o->local_path, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				sbx_error_set(err, SBX_E_LOCAL, errno, "local", "cannot read %s: %s", o->local_path,
					      strerror(errno));
				return NULL;
			}
			own = 1;
		} else if (o->len) {
			sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "write_file needs data, fd or local_path");
			return NULL;
		}
	}
	struct stat st;
	int regular = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	if (!o->data)
		total = regular ? (uint64_t)st.st_size : 0;
	file_call *f = new_file_call(s, &write_ops, o, err);
	if (!f) {
		if (own)
			close(fd);
		return NULL;
	}
	f->src_fd = fd;
	f->own_src_fd = own;
	f->src_may_block = fd >= 0 && !regular;
	f->total = total;
	f->call.sending = 1;
	pack_path_request(f, o, 1);
	if (session_start_call(s, &f->call, err) < 0)
		return NULL;
	return &f->call;
}

static void progress(file_call *f)
{
	if (f->fo.on_progress)
		f->fo.on_progress(f->fo.ud, f->done, f->total);
}

static void on_src_readable(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)events;
	file_call *f = ud;
	sbx_loop_unwatch(loop, fd);
	f->src_watched = 0;
	session_pump(f->call.s);
}

/* Whether the source can be read without blocking; if not, waits for it on
 * the loop (which pumps again when it is). A source the loop cannot watch
 * is read as it is. */
static int src_ready(file_call *f)
{
	if (!f->src_may_block)
		return 1;
	if (f->src_watched)
		return 0;
	struct pollfd pf = {.fd = f->src_fd, .events = POLLIN};
	if (poll(&pf, 1, 0) != 0)
		return 1; /* readable, at its end, or failed: read() says which */
	if (sbx_loop_watch(f->call.s->loop, f->src_fd, SBX_EV_READ, on_src_readable, f) < 0)
		return 1;
	f->src_watched = 1;
	return 0;
}

static void write_pump(sbx_call *c)
{
	file_call *f = file_of(c);
	sbx_conn *conn = c->s->conn;
	if (f->fo.data) {
		if (f->done < f->fo.len) {
			size_t n = f->fo.len - (size_t)f->done;
			long sent = sbx_conn_send_data(conn, c->stream, SBX_FD_IN,
						       (const uint8_t *)f->fo.data + f->done,
						       n > SBX_CHUNK_MAX ? SBX_CHUNK_MAX : n);
			if (sent > 0) {
				f->done += (uint64_t)sent;
				progress(f);
			}
			return;
		}
	} else if (f->walk && !f->src_eof) {
		size_t room;
		uint8_t *buf = sbx_conn_data_begin(conn, c->stream, &room);
		if (!buf)
			return;
		long r = treefs_walk_read(f->walk, buf, room);
		int over = r > 0 && f->fo.limit && f->done + (uint64_t)r > f->fo.limit;
		sbx_conn_data_commit(conn, c->stream, SBX_FD_IN, r > 0 && !over ? (size_t)r : 0);
		if (r < 0 || over) {
			if (over)
				sbx_error_set(&f->local_error, SBX_E_LIMIT, EFBIG, "too_large",
					      "%s is over the size limit of %llu bytes", f->fo.local_path,
					      (unsigned long long)f->fo.limit);
			else
				sbx_error_set(&f->local_error, SBX_E_LOCAL, f->walk->err, "local", "%s", f->walk->msg);
			sbx_call_cancel(c); /* the agent drops its temp file */
			c->sending = 0;
			return;
		}
		if (r > 0) {
			f->done += (uint64_t)r;
			progress(f);
			return;
		}
		f->src_eof = 1;
	} else if (f->src_fd >= 0 && !f->src_eof) {
		if (!src_ready(f))
			return;
		/* read straight into the outbound frame */
		size_t room;
		uint8_t *buf = sbx_conn_data_begin(conn, c->stream, &room);
		if (!buf)
			return;
		ssize_t r = read(f->src_fd, buf, room);
		sbx_conn_data_commit(conn, c->stream, SBX_FD_IN, r > 0 ? (size_t)r : 0);
		if (r < 0 && errno == EINTR)
			return;
		if (r < 0) {
			sbx_error_set(&f->local_error, SBX_E_LOCAL, errno, "local", "reading the source failed: %s",
				      strerror(errno));
			sbx_call_cancel(c); /* the agent drops the temp file */
			c->sending = 0;
			return;
		}
		if (r > 0 && f->fo.limit && f->done + (uint64_t)r > f->fo.limit) {
			sbx_error_set(&f->local_error, SBX_E_LIMIT, EFBIG, "too_large", "the source is over the size limit of %llu bytes",
				      (unsigned long long)f->fo.limit);
			sbx_call_cancel(c); /* that chunk was sent: the agent drops the temp file */
			c->sending = 0;
			return;
		}
		if (r > 0) {
			f->done += (uint64_t)r;
			progress(f);
			return;
		}
		f->src_eof = 1;
	}
	sbx_conn_send_end(conn, c->stream, SBX_FD_IN);
	c->sending = 0;
}

/* ---------------------------------------------------------------- read */

/* A download replaces only a regular file (or creates a missing one):
 * never a directory, a symlink (it is not followed either) or a device. */
static int check_replaceable(const char *dst, sbx_error *err)
{
	struct stat st;
	if (lstat(dst, &st) < 0 || S_ISREG(st.st_mode))
		return 0;
	sbx_error_set(err, SBX_E_LOCAL, S_ISDIR(st.st_mode) ? EISDIR : EEXIST, "local",
		      "refusing to replace %s: it is %s (a download replaces only a regular file)", dst,
		      S_ISDIR(st.st_mode) ? "a directory" : S_ISLNK(st.st_mode) ? "a symlink" : "not a regular file");
	return -1;
}

static int open_sink(file_call *f, sbx_error *err)
{
	const char *dst = f->fo.local_path;
	if (check_replaceable(dst, err) < 0)
		return -1;
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", dst);
	char *d = dirname(dir);
	char base[4096];
	snprintf(base, sizeof base, "%s", dst);
	char *b = basename(base);
	if (snprintf(f->sink_tmp, sizeof f->sink_tmp, "%s/.%.200s.sbx-XXXXXX", d, b) >= (int)sizeof f->sink_tmp) {
		sbx_error_set(err, SBX_E_LOCAL, ENAMETOOLONG, "local", "path too long: %s", dst);
		return -1;
	}
	f->sink_fd = mkostemp(f->sink_tmp, O_CLOEXEC);
	if (f->sink_fd < 0) {
		sbx_error_set(err, SBX_E_LOCAL, errno, "local", "cannot write %s: %s", dst, strerror(errno));
		f->sink_tmp[0] = 0;
		return -1;
	}
	return 0;
}

sbx_call *sbx_read_file(sbx_session *s, const sbx_file_opts *o, sbx_error *err)
{
	file_call *f = new_file_call(s, &read_ops, o, err);
	if (!f)
		return NULL;
	if (!f->fo.limit)
		f->fo.limit = SBX_DEFAULT_READ_LIMIT;
	if (o->tree) {
		f->apply = malloc(sizeof *f->apply);
		uint64_t max = f->fo.limit == UINT64_MAX ? 0 : f->fo.limit;
		if (!f->apply || treefs_apply_open(f->apply, o->local_path, !o->no_fsync, (uid_t)-1, (gid_t)-1, max) < 0) {
			if (f->apply)
				sbx_error_set(err, SBX_E_LOCAL, f->apply->err, "local", "%s", f->apply->msg);
			else
				sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "local", "out of memory");
			call_finish(&f->call);
			return NULL;
		}
		f->apply->mode_mask = 01777; /* no set-id file from a sandbox */
	} else if (o->fd >= 0) {
		f->sink_fd = o->fd;
	} else if (o->local_path && open_sink(f, err) < 0) {
		call_finish(&f->call);
		return NULL;
	}
	pack_path_request(f, o, 0);
	if (session_start_call(s, &f->call, err) < 0)
		return NULL;
	return &f->call;
}

/* Writes p to the sink fd until it is written, the fd would block (a
 * non-blocking sink that is full) or fails: the bytes written, or -1 with
 * local_error set. */
static ssize_t sink_write_some(file_call *f, const uint8_t *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(f->sink_fd, p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w < 0) {
			sbx_error_set(&f->local_error, SBX_E_LOCAL, errno, "local", "writing %s failed: %s",
				      f->fo.local_path ? f->fo.local_path : "the destination", strerror(errno));
			return -1;
		}
		done += (size_t)w;
	}
	return (ssize_t)done;
}

static void finish(file_call *f, sbx_file_result *r);

static void sink_unwatch(file_call *f)
{
	if (f->sink_watched)
		sbx_loop_unwatch(f->call.s->loop, f->sink_fd);
	f->sink_watched = 0;
}

/* The sink failed while bytes waited for it: they go, and the call ends
 * (RESULT already came) or the agent is told to stop. */
static void sink_broke(file_call *f)
{
	sink_unwatch(f);
	sbx_buf_clear(&f->sink_pending);
	f->sink_failed = 1;
	if (f->result_held) {
		f->held.error = f->local_error;
		finish(f, &f->held);
	} else if (!f->cancelled) {
		f->cancelled = 1;
		sbx_call_cancel(&f->call);
	}
}

/* The full sink can take more: what it takes is granted back to the agent;
 * once it took everything, a RESULT that came meanwhile ends the call. */
static void on_sink_writable(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)fd;
	(void)events;
	file_call *f = ud;
	sbx_call *c = &f->call;
	ssize_t w = sink_write_some(f, sbx_buf_head(&f->sink_pending), sbx_buf_size(&f->sink_pending));
	if (w < 0) {
		sink_broke(f);
		return;
	}
	sbx_buf_consume(&f->sink_pending, (size_t)w);
	if (w > 0 && c->stream && c->s->conn) {
		sbx_conn_consumed(c->s->conn, c->stream, (size_t)w);
		session_flush(c->s);
	}
	if (sbx_buf_size(&f->sink_pending) > 0)
		return;
	sink_unwatch(f);
	if (f->result_held)
		finish(f, &f->held);
}

/* Writes what the sink fd takes now. A non-blocking sink that is full (a
 * pipe to a slow reader) keeps the rest in sink_pending, and the loop
 * waits for it (on_sink_writable): the slow reader holds back only its own
 * stream, whose credit is withheld meanwhile, never the loop. The bytes
 * taken now, or -1 with local_error set. */
static ssize_t sink_write_fd(file_call *f, const uint8_t *p, size_t n)
{
	ssize_t taken = 0;
	if (sbx_buf_size(&f->sink_pending) == 0 && (taken = sink_write_some(f, p, n)) < 0)
		return -1;
	if ((size_t)taken == n)
		return taken;
	if (sbx_buf_append(&f->sink_pending, p + taken, n - (size_t)taken) < 0) {
		sbx_error_set(&f->local_error, SBX_E_LOCAL, ENOMEM, "local", "out of memory");
		return -1;
	}
	if (!f->sink_watched) {
		if (sbx_loop_watch(f->call.s->loop, f->sink_fd, SBX_EV_WRITE, on_sink_writable, f) < 0) {
			sbx_error_set(&f->local_error, SBX_E_LOCAL, errno, "local",
				      "cannot wait for %s to take more: %s",
				      f->fo.local_path ? f->fo.local_path : "the destination", strerror(errno));
			return -1;
		}
		f->sink_watched = 1;
	}
	return taken;
}

/* One chunk of a read reaches its sink; the bytes the sink took are
 * granted back to the agent. */
static void sink_write(file_call *f, const sbx_msg *m)
{
	size_t taken = m->len;
	f->done += m->len;
	if (f->done > f->fo.limit && !f->sink_failed) {
		sbx_error_set(&f->local_error, SBX_E_LIMIT, EFBIG, "too_large", "%s is over the read limit of %llu bytes",
			      f->fo.path, (unsigned long long)f->fo.limit);
		f->sink_failed = 1;
	}
	if (f->sink_failed) {
		/* dropped */
	} else if (f->apply) {
		if (treefs_apply_feed(f->apply, m->data, m->len) < 0) {
			sbx_error_set(&f->local_error, f->apply->err == EFBIG ? SBX_E_LIMIT : SBX_E_LOCAL, f->apply->err,
				      "local", "%s: %s", f->fo.local_path, f->apply->msg);
			f->sink_failed = 1;
		}
	} else if (f->sink_fd < 0) {
		if (sbx_buf_append(&f->mem, m->data, m->len) < 0) {
			sbx_error_set(&f->local_error, SBX_E_LOCAL, ENOMEM, "local", "out of memory");
			f->sink_failed = 1;
		}
	} else {
		ssize_t w = sink_write_fd(f, m->data, m->len);
		if (w < 0) {
			sbx_buf_clear(&f->sink_pending);
			sink_unwatch(f);
			f->sink_failed = 1;
		} else {
			taken = (size_t)w;
		}
	}
	progress(f);
	if (taken > 0)
		sbx_conn_consumed(f->call.s->conn, f->call.stream, taken);
}

/* ---------------------------------------------------------------- completion */

/* A read into local_path ends: the temp file becomes the destination when
 * the transfer succeeded (fsynced first, and its directory after the
 * rename, unless no_fsync), else it goes and the destination is unchanged. */
static void commit_sink(file_call *f, sbx_file_result *r)
{
	int ok = r->error.status == SBX_OK;
	int durable = ok && !f->fo.no_fsync;
	/* the source's mode (set-id bits cleared), umask-free */
	int rc = ok && f->mode >= 0 ? fchmod(f->sink_fd, (mode_t)f->mode & 01777) : 0;
	if (rc == 0 && durable)
		rc = sbx_fsync_fd(f->sink_fd);
	if (close(f->sink_fd) < 0)
		rc = -1;
	if (rc == 0 && ok && check_replaceable(f->fo.local_path, &r->error) < 0) {
		ok = 0; /* something else appeared there meanwhile */
	} else if (rc == 0 && ok && rename(f->sink_tmp, f->fo.local_path) < 0) {
		rc = -1;
	}
	if (rc < 0) {
		if (ok)
			sbx_error_set(&r->error, SBX_E_LOCAL, errno, "local", "cannot write %s: %s",
				      f->fo.local_path, strerror(errno));
		ok = 0;
	}
	if (!ok)
		unlink(f->sink_tmp); /* the destination keeps its old contents */
	else if (durable && sbx_fsync_parent(f->fo.local_path) < 0)
		sbx_error_set(&r->error, SBX_E_LOCAL, errno, "local", "cannot make %s durable: %s",
			      f->fo.local_path, strerror(errno));
	f->sink_tmp[0] = 0;
	f->sink_fd = -1;
}

/* A tree read ends: complete (and durable) or closed with what it made. */
static void finish_tree(file_call *f, sbx_file_result *r)
{
	if (r->error.status == SBX_OK && treefs_apply_finish(f->apply) < 0)
		sbx_error_set(&r->error, SBX_E_LOCAL, f->apply->err, "local", "%s: %s", f->fo.local_path, f->apply->msg);
	treefs_apply_close(f->apply);
	free(f->apply);
	f->apply = NULL;
}

static void finish(file_call *f, sbx_file_result *r)
{
	if (f->apply)
		finish_tree(f, r);
	if (f->sink_tmp[0])
		commit_sink(f, r);
	if (f->call.ops == &stat_ops)
		f->stat_out->error = r->error;
	if (f->fo.on_done)
		f->fo.on_done(f->fo.ud, r);
	sbx_file_result_free(r);
	call_finish(&f->call);
}

static void stat_fill(sbx_stat_result *st, const sbx_msg *m)
{
	st->exists = sbx_map_bool(m->body, "exists", 0);
	st->is_dir = sbx_map_bool(m->body, "is_dir", 0);
	st->is_link = sbx_map_bool(m->body, "is_link", 0);
	st->mode = (uint32_t)sbx_map_uint(m->body, "mode", 0);
	st->uid = (uint32_t)sbx_map_uint(m->body, "uid", 0);
	st->gid = (uint32_t)sbx_map_uint(m->body, "gid", 0);
	st->size = sbx_map_uint(m->body, "size", 0);
	st->mtime_ns = sbx_map_int(m->body, "mtime_ns", 0);
}

/* A read into memory that succeeded: the bytes, NUL-terminated, handed
 * over without a copy. */
static void take_mem(file_call *f, sbx_file_result *r)
{
	r->data = sbx_buf_take(&f->mem, &r->len);
}

static void file_on_message(sbx_call *c, const sbx_msg *m)
{
	file_call *f = file_of(c);
	sbx_file_result r;
	memset(&r, 0, sizeof r);
	switch (m->type) {
	case SBX_MSG_DATA:
		sink_write(f, m);
		if (f->sink_failed && !f->cancelled) { /* over the limit, ENOSPC...: stop the agent at once */
			f->cancelled = 1;
			sbx_call_cancel(c);
		}
		return;
	case SBX_MSG_END:
		if (m->err) {
			sbx_error_set(&f->local_error, SBX_E_CONN, m->err, "corrupt", "%s", m->text);
			f->sink_failed = 1;
		}
		return;
	case SBX_MSG_RESULT:
		if (c->ops == &stat_ops)
			stat_fill(f->stat_out, m);
		r.size = sbx_map_uint(m->body, "size", f->done);
		if (sbx_map_get(m->body, "mode"))
			f->mode = (int)(sbx_map_uint(m->body, "mode", 0) & 07777);
		if (f->sink_failed)
			r.error = f->local_error;
		break;
	case SBX_MSG_ERROR:
		if (f->sink_failed)
			r.error = f->local_error; /* our cancel, for our reason */
		else
			sbx_error_from_msg(&r.error, m);
		break;
	default:
		return;
	}
	if (c->ops == &read_ops && f->sink_fd < 0 && !f->sink_tmp[0] && r.error.status == SBX_OK)
		take_mem(f, &r);
	if (r.error.status == SBX_OK && sbx_buf_size(&f->sink_pending) > 0) {
		f->held = r; /* the sink still has to take the last bytes */
		f->result_held = 1;
		return;
	}
	finish(f, &r);
}

static void file_fail(sbx_call *c, const sbx_error *e)
{
	file_call *f = file_of(c);
	sbx_file_result r;
	memset(&r, 0, sizeof r);
	r.error = f->local_error.status != SBX_OK ? f->local_error : *e;
	finish(f, &r);
}

static void file_free(sbx_call *c)
{
	file_call *f = file_of(c);
	if (f->src_watched)
		sbx_loop_unwatch(c->s->loop, f->src_fd);
	sink_unwatch(f);
	sbx_buf_free(&f->sink_pending);
	if (f->own_src_fd && f->src_fd >= 0)
		close(f->src_fd);
	if (f->walk) {
		treefs_walk_close(f->walk);
		free(f->walk);
	}
	if (f->apply) {
		treefs_apply_close(f->apply);
		free(f->apply);
	}
	if (f->sink_tmp[0]) {
		close(f->sink_fd);
		unlink(f->sink_tmp);
	}
	sbx_buf_free(&f->mem);
}

static const sbx_call_ops write_ops = {
	.name = "write",
	.request = SBX_MSG_WRITE,
	.drop_note = DROP_NOTE,
	.on_message = file_on_message,
	.pump = write_pump,
	.fail = file_fail,
	.free = file_free,
};

static const sbx_call_ops read_ops = {
	.name = "read",
	.request = SBX_MSG_READ,
	.drop_note = DROP_NOTE,
	.on_message = file_on_message,
	.fail = file_fail,
	.free = file_free,
};

static const sbx_call_ops stat_ops = {
	.name = "stat",
	.request = SBX_MSG_STAT,
	.drop_note = DROP_NOTE,
	.on_message = file_on_message,
	.fail = file_fail,
	.free = file_free,
};

void sbx_file_result_free(sbx_file_result *r)
{
	free(r->data);
	r->data = NULL;
	r->len = 0;
}

/* ---------------------------------------------------------------- stat */

static void stat_done(void *ud, sbx_file_result *r)
{
	(void)r;
	*(int *)ud = 1;
}

int sbx_stat_sync(sbx_session *s, const char *path, sbx_stat_result *out)
{
	memset(out, 0, sizeof *out);
	int done = 0;
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	o.path = path;
	o.on_done = stat_done;
	o.ud = &done;
	file_call *f = new_file_call(s, &stat_ops, &o, &out->error);
	if (!f)
		return -1;
	f->stat_out = out;
	pack_path_request(f, &o, 1);
	if (session_start_call(s, &f->call, &out->error) < 0)
		return -1;
	while (!done && sbx_loop_run_once(s->loop, -1) >= 0)
		;
	return out->error.status == SBX_OK ? 0 : -1;
}
