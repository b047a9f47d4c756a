/* files.c — file calls: upload (WRITE), download (READ) and STAT.
 *
 * Uploads stream from memory, a file descriptor or a path, one chunk per
 * turn, so a 1 GiB file needs no more memory than a chunk. Downloads land
 * in a file descriptor, in memory (bounded by the limit), or in a local
 * path through a temporary file renamed into place only when the transfer
 * arrived complete and its CRC32 matched. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static void pack_path_request(sbx_call *c, const sbx_file_opts *o, int is_write)
{
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
	if (!is_write) {
		sbx_pack_kv_uint(&pk, "limit", c->fo.limit);
		c->npairs++;
	}
}

static sbx_call *file_call(sbx_session *s, call_kind kind, const sbx_file_opts *o, sbx_error *err)
{
	if (!o->path || !o->path[0]) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "a path in the sandbox is required");
		return NULL;
	}
	if (s->failed) {
		*err = s->failure;
		return NULL;
	}
	sbx_call *c = call_new(s, kind);
	if (!c) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	c->fo = *o;
	return c;
}

/* ---------------------------------------------------------------- write */

sbx_call *sbx_write_file(sbx_session *s, const sbx_file_opts *o, sbx_error *err)
{
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
		struct stat st;
		total = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	}
	sbx_call *c = file_call(s, CALL_WRITE, o, err);
	if (!c) {
		if (own)
			close(fd);
		return NULL;
	}
	c->src_fd = fd;
	c->own_src_fd = own;
	c->total = total;
	c->sending = 1;
	pack_path_request(c, o, 1);
	if (session_start_call(s, c, err) < 0)
		return NULL;
	return c;
}

static void progress(sbx_call *c)
{
	if (c->fo.on_progress)
		c->fo.on_progress(c->fo.ud, c->done, c->total);
}

void files_call_pump(sbx_call *c)
{
	sbx_conn *conn = c->s->conn;
	if (c->kind != CALL_WRITE)
		return;
	if (c->fo.data) {
		if (c->done < c->fo.len) {
			size_t n = c->fo.len - (size_t)c->done;
			long sent = sbx_conn_send_data(conn, c->stream, SBX_FD_IN,
						       (const uint8_t *)c->fo.data + c->done,
						       n > SBX_CHUNK_MAX ? SBX_CHUNK_MAX : n);
			if (sent > 0) {
				c->done += (uint64_t)sent;
				progress(c);
			}
			return;
		}
	} else if (c->src_fd >= 0 && !c->src_eof) {
		/* read straight into the outbound frame */
		size_t room;
		uint8_t *buf = sbx_conn_data_begin(conn, c->stream, &room);
		if (!buf)
			return;
		ssize_t r = read(c->src_fd, buf, room);
		sbx_conn_data_commit(conn, c->stream, SBX_FD_IN, r > 0 ? (size_t)r : 0);
		if (r < 0 && errno == EINTR)
			return;
		if (r < 0) {
			sbx_error_set(&c->local_error, SBX_E_LOCAL, errno, "local", "reading the source failed: %s",
				      strerror(errno));
			sbx_call_cancel(c); /* the agent drops the temp file */
			c->sending = 0;
			return;
		}
		if (r > 0) {
			c->done += (uint64_t)r;
			progress(c);
			return;
		}
		c->src_eof = 1;
	}
	sbx_conn_send_end(conn, c->stream, SBX_FD_IN);
	c->sending = 0;
}

/* ---------------------------------------------------------------- read */

static int open_sink(sbx_call *c, sbx_error *err)
{
	const char *dst = c->fo.local_path;
	struct stat st;
	if (stat(dst, &st) == 0 && S_ISDIR(st.st_mode)) {
		sbx_error_set(err, SBX_E_LOCAL, EISDIR, "local", "%s is a directory", dst);
		return -1;
	}
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", dst);
	char *d = dirname(dir);
	char base[4096];
	snprintf(base, sizeof base, "%s", dst);
	char *b = basename(base);
	if (snprintf(c->sink_tmp, sizeof c->sink_tmp, "%s/.%.200s.sbx-XXXXXX", d, b) >= (int)sizeof c->sink_tmp) {
		sbx_error_set(err, SBX_E_LOCAL, ENAMETOOLONG, "local", "path too long: %s", dst);
		return -1;
	}
	c->sink_fd = mkostemp(c->sink_tmp, O_CLOEXEC);
	if (c->sink_fd < 0) {
		sbx_error_set(err, SBX_E_LOCAL, errno, "local", "cannot write %s: %s", dst, strerror(errno));
		c->sink_tmp[0] = 0;
		return -1;
	}
	return 0;
}

sbx_call *sbx_read_file(sbx_session *s, const sbx_file_opts *o, sbx_error *err)
{
	sbx_call *c = file_call(s, CALL_READ, o, err);
	if (!c)
		return NULL;
	if (!c->fo.limit)
		c->fo.limit = SBX_DEFAULT_READ_LIMIT;
	if (o->fd >= 0) {
		c->sink_fd = o->fd;
	} else if (o->local_path && open_sink(c, err) < 0) {
		call_finish(c);
		return NULL;
	}
	pack_path_request(c, o, 0);
	if (session_start_call(s, c, err) < 0)
		return NULL;
	return c;
}

static void sink_write(sbx_call *c, const sbx_msg *m, sbx_buf *mem)
{
	c->done += m->len;
	if (c->done > c->fo.limit && !c->sink_failed) {
		sbx_error_set(&c->local_error, SBX_E_LIMIT, EFBIG, "too_large", "%s is over the read limit of %llu bytes",
			      c->fo.path, (unsigned long long)c->fo.limit);
		c->sink_failed = 1;
	}
	if (c->sink_failed)
		goto out;
	if (c->sink_fd < 0) {
		if (sbx_buf_append(mem, m->data, m->len) < 0) {
			sbx_error_set(&c->local_error, SBX_E_LOCAL, ENOMEM, "local", "out of memory");
			c->sink_failed = 1;
		}
		goto out;
	}
	const uint8_t *p = m->data;
	size_t n = m->len;
	while (n > 0) {
		ssize_t w = write(c->sink_fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			sbx_error_set(&c->local_error, SBX_E_LOCAL, errno, "local", "writing %s failed: %s",
				      c->fo.local_path ? c->fo.local_path : "the destination", strerror(errno));
			c->sink_failed = 1;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
out:
	progress(c);
	sbx_conn_consumed(c->s->conn, c->stream, m->len);
}

/* ---------------------------------------------------------------- completion */

static void finish(sbx_call *c, sbx_file_result *r)
{
	if (c->sink_tmp[0]) {
		int ok = r->error.status == SBX_OK;
		if (close(c->sink_fd) < 0 || (ok && rename(c->sink_tmp, c->fo.local_path) < 0)) {
			if (ok)
				sbx_error_set(&r->error, SBX_E_LOCAL, errno, "local", "cannot write %s: %s",
					      c->fo.local_path, strerror(errno));
			ok = 0;
		}
		if (!ok)
			unlink(c->sink_tmp); /* the destination keeps its old contents */
		c->sink_tmp[0] = 0;
		c->sink_fd = -1;
	}
	if (c->fo.on_done)
		c->fo.on_done(c->fo.ud, r);
	sbx_file_result_free(r);
	call_finish(c);
}

static sbx_buf *mem_of(sbx_call *c)
{
	return &c->out; /* reads into memory reuse the exec output buffer */
}

void files_call_msg(sbx_call *c, const sbx_msg *m)
{
	sbx_file_result r;
	memset(&r, 0, sizeof r);
	switch (m->type) {
	case SBX_MSG_DATA:
		sink_write(c, m, mem_of(c));
		if (c->sink_failed && c->local_error.status == SBX_E_LIMIT)
			sbx_call_cancel(c);
		return;
	case SBX_MSG_END:
		if (m->err) {
			sbx_error_set(&c->local_error, SBX_E_CONN, m->err, "corrupt", "%s", m->text);
			c->sink_failed = 1;
		}
		return;
	case SBX_MSG_RESULT:
		if (c->kind == CALL_STAT) {
			sbx_stat_result *st = c->stat_out;
			st->exists = sbx_map_bool(m->body, "exists", 0);
			st->is_dir = sbx_map_bool(m->body, "is_dir", 0);
			st->is_link = sbx_map_bool(m->body, "is_link", 0);
			st->mode = (uint32_t)sbx_map_uint(m->body, "mode", 0);
			st->uid = (uint32_t)sbx_map_uint(m->body, "uid", 0);
			st->gid = (uint32_t)sbx_map_uint(m->body, "gid", 0);
			st->size = sbx_map_uint(m->body, "size", 0);
			st->mtime_ns = sbx_map_int(m->body, "mtime_ns", 0);
		}
		r.size = sbx_map_uint(m->body, "size", c->done);
		if (c->sink_failed)
			r.error = c->local_error;
		break;
	case SBX_MSG_ERROR:
		if (c->sink_failed)
			r.error = c->local_error; /* our cancel, for our reason */
		else
			sbx_error_from_msg(&r.error, m);
		break;
	default:
		return;
	}
	if (c->kind == CALL_STAT)
		c->stat_out->error = r.error;
	if (c->kind == CALL_READ && c->sink_fd < 0 && !c->sink_tmp[0] && r.error.status == SBX_OK) {
		sbx_buf *b = mem_of(c);
		r.len = sbx_buf_size(b);
		r.data = malloc(r.len + 1);
		if (r.data) {
			if (r.len) /* an empty file never allocated the buffer: no memcpy from NULL */
				memcpy(r.data, sbx_buf_head(b), r.len);
			r.data[r.len] = 0;
		}
	}
	finish(c, &r);
}

void files_call_fail(sbx_call *c, const sbx_error *e)
{
	sbx_file_result r;
	memset(&r, 0, sizeof r);
	r.error = c->local_error.status != SBX_OK ? c->local_error : *e;
	if (c->kind == CALL_STAT)
		c->stat_out->error = r.error;
	finish(c, &r);
}

void files_call_free(sbx_call *c)
{
	if (c->own_src_fd && c->src_fd >= 0)
		close(c->src_fd);
	if (c->sink_tmp[0]) {
		close(c->sink_fd);
		unlink(c->sink_tmp);
	}
	sbx_buf_free(&c->out);
}

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
	sbx_call *c = file_call(s, CALL_STAT, &o, &out->error);
	if (!c)
		return -1;
	c->stat_out = out;
	pack_path_request(c, &o, 1);
	if (session_start_call(s, c, &out->error) < 0)
		return -1;
	while (!done && sbx_loop_run_once(s->loop, -1) >= 0)
		;
	return out->error.status == SBX_OK ? 0 : -1;
}
