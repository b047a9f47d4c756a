/* exec.c — exec calls: the EXEC request, stdin upload, output collection,
 * the result, and re-attaching a running command after a reconnect. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void pack_request(sbx_call *c, const sbx_exec_opts *o)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, &c->request, (msgpack_packer_write)sbx_buf_append);
	unsigned n = 0;
	size_t argc = 0;
	while (o->argv[argc])
		argc++;
	sbx_pack_str(&pk, "argv");
	msgpack_pack_array(&pk, argc);
	for (size_t i = 0; i < argc; i++)
		sbx_pack_str(&pk, o->argv[i]);
	n++;
	if (o->env) {
		size_t envc = 0;
		while (o->env[envc])
			envc++;
		sbx_pack_str(&pk, "env");
		msgpack_pack_map(&pk, envc);
		for (size_t i = 0; i < envc; i++) {
			const char *eq = strchr(o->env[i], '=');
			size_t kl = eq ? (size_t)(eq - o->env[i]) : strlen(o->env[i]);
			msgpack_pack_str(&pk, kl);
			msgpack_pack_str_body(&pk, o->env[i], kl);
			sbx_pack_str(&pk, eq ? eq + 1 : "");
		}
		n++;
	}
	if (o->cwd && o->cwd[0]) {
		sbx_pack_kv_str(&pk, "cwd", o->cwd);
		n++;
	}
	if (o->user && o->user[0]) {
		sbx_pack_kv_str(&pk, "user", o->user);
		n++;
	}
	if (o->timeout_s > 0) {
		uint64_t ms = (uint64_t)(o->timeout_s * 1000);
		sbx_pack_kv_uint(&pk, "timeout_ms", ms ? ms : 1);
		n++;
	}
	if (o->grace_s > 0) {
		sbx_pack_kv_uint(&pk, "grace_ms", (uint64_t)(o->grace_s * 1000));
		n++;
	}
	sbx_pack_kv_uint(&pk, "limit", o->output_limit ? o->output_limit : SBX_DEFAULT_OUTPUT_LIMIT);
	sbx_pack_kv_bool(&pk, "stdin", o->input_len > 0 || o->stream_stdin);
	sbx_pack_kv_str(&pk, "key", c->key);
	c->npairs = n + 3;
}

static void prepare(sbx_call *c);

sbx_call *sbx_exec(sbx_session *s, const sbx_exec_opts *o, sbx_error *err)
{
	if (!o->argv || !o->argv[0]) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "exec needs a command (argv is empty)");
		return NULL;
	}
	if (s->failed) {
		*err = s->failure;
		return NULL;
	}
	sbx_call *c = call_new(s, CALL_EXEC);
	if (!c) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	c->eo = *o;
	if (!c->eo.output_limit)
		c->eo.output_limit = SBX_DEFAULT_OUTPUT_LIMIT;
	prepare(c);
	if (session_start_call(s, c, err) < 0)
		return NULL;
	return c;
}

/* Names the command (a fresh key: PREFIX-N, N in sending order, see
 * agent/ledger.h), packs its request and sets when the agent owes its end. */
static void prepare(sbx_call *c)
{
	sbx_session *s = c->s;
	const sbx_exec_opts *o = &c->eo;
	snprintf(c->key, sizeof c->key, "%s-%u", s->key_prefix, ++s->key_counter);
	sbx_buf_clear(&c->request);
	pack_request(c, o);
	c->deadline_ms = 0;
	if (o->timeout_s > 0) /* the agent kills it by then; output may still be draining */
		call_set_deadline(c, sbx_now_ms() + (uint64_t)((o->timeout_s + (o->grace_s > 0 ? o->grace_s : 2)) * 1000));
	c->sending = o->input_len > 0 || o->stream_stdin;
}

/* After a reconnect the agent says the EXEC never reached it: send it
 * again, unless streamed stdin already went (those bytes are gone). -1
 * when it cannot; 0 when the call was handed back to the session (which
 * reports any failure through on_done). */
static int resend(sbx_call *c)
{
	if (c->eo.stream_stdin && c->stdin_sent > 0)
		return -1;
	sbx_session *s = c->s;
	if (c->stream && s->conn)
		sbx_conn_set_user(s->conn, c->stream, NULL);
	c->stream = 0;
	c->started = c->reattached = 0;
	c->input_off = 0;
	c->stdin_end_sent = 0;
	prepare(c);
	session_start_call(s, c, NULL);
	return 0;
}

/* ---------------------------------------------------------------- stdin */

void exec_call_pump(sbx_call *c)
{
	sbx_conn *conn = c->s->conn;
	const sbx_exec_opts *o = &c->eo;
	if (c->input_off < o->input_len) {
		size_t n = o->input_len - c->input_off;
		if (n > SBX_CHUNK_MAX)
			n = SBX_CHUNK_MAX;
		long sent = sbx_conn_send_data(conn, c->stream, SBX_FD_IN, (const uint8_t *)o->input + c->input_off, n);
		if (sent > 0)
			c->input_off += (size_t)sent;
		return;
	}
	if (sbx_buf_size(&c->stdin_buf) > 0) {
		size_t n = sbx_buf_size(&c->stdin_buf);
		if (n > SBX_CHUNK_MAX)
			n = SBX_CHUNK_MAX;
		long sent = sbx_conn_send_data(conn, c->stream, SBX_FD_IN, sbx_buf_head(&c->stdin_buf), n);
		if (sent > 0) {
			sbx_buf_consume(&c->stdin_buf, (size_t)sent);
			c->stdin_sent += (uint64_t)sent;
		}
		return;
	}
	if (!o->stream_stdin || c->stdin_closed) {
		sbx_conn_send_end(conn, c->stream, SBX_FD_IN);
		c->stdin_end_sent = 1;
		c->sending = 0;
	}
}

int sbx_call_write_stdin(sbx_call *c, const void *p, size_t n)
{
	if (c->kind != CALL_EXEC || !c->eo.stream_stdin || c->stdin_closed)
		return -1;
	if (sbx_buf_append(&c->stdin_buf, p, n) < 0)
		return -1;
	c->sending = 1;
	session_pump(c->s);
	return 0;
}

size_t sbx_call_stdin_pending(const sbx_call *c)
{
	return sbx_buf_size(&c->stdin_buf);
}

int sbx_call_close_stdin(sbx_call *c)
{
	if (c->kind != CALL_EXEC || !c->eo.stream_stdin)
		return -1;
	c->stdin_closed = 1;
	c->sending = !c->stdin_end_sent;
	session_pump(c->s);
	return 0;
}

int sbx_call_signal(sbx_call *c, int signo)
{
	if (c->kind != CALL_EXEC || !c->started || !c->stream || !c->s->conn)
		return -1;
	sbx_conn_send_signal(c->s->conn, c->stream, signo);
	session_flush(c->s);
	return 0;
}

void sbx_call_cancel(sbx_call *c)
{
	sbx_session *s = c->s;
	if (c->started && c->stream && s->conn) {
		sbx_conn_send_cancel(s->conn, c->stream);
		session_flush(s);
		call_set_deadline(c, sbx_now_ms());
		return; /* the agent answers with ERROR cancelled */
	}
	sbx_error e;
	sbx_error_set(&e, SBX_E_CANCELLED, ECANCELED, "cancelled", "cancelled before it started");
	session_enter(s); /* on_done may close the session: destroy it after, not during */
	if (c->kind == CALL_EXEC)
		exec_call_fail(c, &e);
	else
		files_call_fail(c, &e);
	session_leave(s);
}

/* ---------------------------------------------------------------- output */

static void complete(sbx_call *c, sbx_exec_result *r);

/* More output than the limit: the agent (which stops a command at its
 * limit) is not honest. The call ends now with what it kept, and the
 * stream is cancelled: no more credit, so nothing more can come. */
static void over_limit(sbx_call *c, int fd)
{
	sbx_exec_result r;
	memset(&r, 0, sizeof r);
	r.exit_code = -1;
	r.truncated = 1;
	sbx_error_set(&r.error, SBX_E_LIMIT, EFBIG, "output_limit",
		      "the agent sent more than the output limit of %zu bytes on %s (output truncated; command cancelled)",
		      c->eo.output_limit, fd == SBX_FD_OUT ? "stdout" : "stderr");
	sbx_conn_send_cancel(c->s->conn, c->stream);
	complete(c, &r);
}

static void on_output(sbx_call *c, const sbx_msg *m)
{
	sbx_buf *b = m->fd == SBX_FD_OUT ? &c->out : &c->err;
	size_t n = m->len;
	c->have[m->fd] += n;
	if (c->deadline_ms) /* still producing: not stuck */
		call_set_deadline(c, sbx_now_ms());
	if (c->eo.on_output)
		c->eo.on_output(c->eo.ud, m->fd, m->data, n);
	if (!c->eo.no_accumulate) {
		size_t room = c->eo.output_limit > sbx_buf_size(b) ? c->eo.output_limit - sbx_buf_size(b) : 0;
		if (n > room) {
			n = room;
			c->truncated = 1;
		}
		if (sbx_buf_append(b, m->data, n) < 0)
			c->truncated = 1;
	}
	if (c->have[m->fd] > c->eo.output_limit)
		over_limit(c, m->fd);
	else
		sbx_conn_consumed(c->s->conn, c->stream, m->len);
}

static uint8_t *take(sbx_buf *b, size_t *len)
{
	*len = sbx_buf_size(b);
	if (sbx_buf_reserve(b, 1) < 0)
		return NULL;
	b->data[b->len] = 0;
	uint8_t *p = b->data;
	if (b->off) {
		memmove(p, p + b->off, *len + 1);
	}
	b->data = NULL;
	b->off = b->len = b->cap = 0;
	return p;
}

static void complete(sbx_call *c, sbx_exec_result *r)
{
	sbx_session *s = c->s;
	r->out = take(&c->out, &r->out_len);
	r->err = take(&c->err, &r->err_len);
	if (c->eo.on_done)
		c->eo.on_done(c->eo.ud, r);
	sbx_exec_result_free(r);
	(void)s;
	call_finish(c);
}

static void on_exit_msg(sbx_call *c, const sbx_msg *m)
{
	sbx_exec_result r;
	memset(&r, 0, sizeof r);
	r.exit_code = (int)sbx_map_int(m->body, "code", -1);
	r.signal = (int)sbx_map_int(m->body, "signal", 0);
	r.timed_out = sbx_map_bool(m->body, "timed_out", 0);
	r.truncated = c->truncated || sbx_map_bool(m->body, "stdout_truncated", 0) ||
		      sbx_map_bool(m->body, "stderr_truncated", 0);
	r.duration_ms = sbx_map_uint(m->body, "duration_ms", 0);
	if (c->corrupt.status != SBX_OK)
		r.error = c->corrupt;
	else if (r.timed_out)
		sbx_error_set(&r.error, SBX_E_TIMEOUT, ETIMEDOUT, "timeout", "command timed out after %.1f s",
			      c->eo.timeout_s);
	else if (r.truncated)
		sbx_error_set(&r.error, SBX_E_LIMIT, EFBIG, "output_limit",
			      "command output exceeded the limit of %zu bytes per stream (output truncated)",
			      c->eo.output_limit);
	if (c->s->addr[0])
		session_forget(c->s, c->key);
	complete(c, &r);
}

void exec_call_msg(sbx_call *c, const sbx_msg *m)
{
	sbx_exec_result r;
	switch (m->type) {
	case SBX_MSG_DATA:
		on_output(c, m);
		return;
	case SBX_MSG_END:
		if (m->err) /* reported when the command's EXIT arrives */
			sbx_error_set(&c->corrupt, SBX_E_CONN, m->err, "corrupt", "command output corrupted in transit: %s",
				      m->text);
		return;
	case SBX_MSG_EXIT:
		on_exit_msg(c, m);
		return;
	case SBX_MSG_ERROR:
		if (c->reattached && strcmp(m->code, "not_received") == 0 && resend(c) == 0)
			return;
		memset(&r, 0, sizeof r);
		sbx_error_from_msg(&r.error, m);
		r.exit_code = -1;
		complete(c, &r);
		return;
	}
}

void exec_call_fail(sbx_call *c, const sbx_error *e)
{
	sbx_exec_result r;
	memset(&r, 0, sizeof r);
	r.error = *e;
	r.exit_code = -1;
	complete(c, &r);
}

void exec_call_free(sbx_call *c)
{
	sbx_buf_free(&c->out);
	sbx_buf_free(&c->err);
	sbx_buf_free(&c->stdin_buf);
}

/* After a reconnect: ask the agent for the rest of this command. */
int exec_call_reattach(sbx_call *c)
{
	sbx_session *s = c->s;
	uint32_t id = sbx_conn_new_stream_id(s->conn);
	msgpack_packer *pk = sbx_conn_begin_map(s->conn, SBX_MSG_ATTACH, id, 3);
	if (!pk)
		return -1;
	sbx_pack_kv_str(pk, "key", c->key);
	sbx_pack_kv_uint(pk, "have_stdout", c->have[1]);
	sbx_pack_kv_uint(pk, "have_stderr", c->have[2]);
	if (sbx_conn_finish(s->conn) < 0)
		return -1;
	c->stream = id;
	c->reattached = 1;
	c->sending = 0; /* stdin is not resumed across connections */
	sbx_conn_set_user(s->conn, id, c);
	session_flush(s);
	return 0;
}

void sbx_exec_result_free(sbx_exec_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
	r->out_len = r->err_len = 0;
}
