/* exec.c — the exec call kind (call.h): the EXEC request, stdin upload,
 * output collection, the result, signals, and re-attaching a running
 * command after a reconnect. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "internal.h"

/* How long a running command waits in the agent for a session that can
 * re-attach it after a drop; a session that cannot gets it killed at once
 * (docs/PROTOCOL.md §12, orphan_ms). */
#define ORPHAN_KEEP_MS (10u * 60 * 1000)
#define MAX_TIMEOUT_S (86400.0 * 365) /* what the agent honours */

/* An exec call: the head, then what only an exec needs. */
typedef struct exec_call {
	sbx_call call;
	sbx_exec_opts eo;
	char key[40];
	size_t key_off;         /* where the key's pair starts in call.request */
	size_t input_off;
	sbx_buf stdin_buf;
	uint64_t stdin_sent;   /* streamed stdin bytes handed to the connection */
	int stdin_closed, stdin_end_sent;
	int reattached;        /* asked for again after a reconnect */
	sbx_buf out, err;
	uint64_t have[3];      /* bytes received per fd */
	uint64_t held;         /* manual credit: received on this stream, not yet granted */
	int truncated;
	sbx_error corrupt;     /* an END check failed: reported at EXIT */
} exec_call;

static const sbx_call_ops exec_ops;

/* The exec behind c, or NULL when c is another kind's call. */
static exec_call *exec_of(sbx_call *c)
{
	return c->ops == &exec_ops ? (exec_call *)c : NULL;
}

static int can_reattach(const sbx_session *s)
{
	return s->opts.reconnect && (s->addr[0] || s->redial);
}

/* The tty pairs of a terminal exec; how many. */
static unsigned pack_tty(msgpack_packer *pk, const sbx_exec_opts *o)
{
	sbx_pack_kv_bool(pk, "tty", 1);
	if (!o->rows || !o->cols || o->rows > 65535 || o->cols > 65535)
		return 1;
	sbx_pack_kv_uint(pk, "rows", o->rows);
	sbx_pack_kv_uint(pk, "cols", o->cols);
	return 3;
}

static void pack_request(exec_call *x, const sbx_exec_opts *o)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, &x->call.request, (msgpack_packer_write)sbx_buf_append);
	unsigned n = exec_pack_command(&pk, o);
	sbx_pack_kv_uint(&pk, "limit", o->output_limit == SBX_OUTPUT_UNLIMITED ? 0 : o->output_limit);
	sbx_pack_kv_bool(&pk, "stdin", o->input_len > 0 || o->stream_stdin);
	sbx_pack_kv_uint(&pk, "orphan_ms", can_reattach(x->call.s) ? ORPHAN_KEEP_MS : 0);
	x->key_off = x->call.request.len;
	sbx_pack_kv_str(&pk, "key", x->key);
	x->call.npairs = n + 4;
}

unsigned exec_pack_command(msgpack_packer *pk, const sbx_exec_opts *o)
{
	unsigned n = 0;
	size_t argc = 0;
	while (o->argv[argc])
		argc++;
	sbx_pack_str(pk, "argv");
	msgpack_pack_array(pk, argc);
	for (size_t i = 0; i < argc; i++)
		sbx_pack_str(pk, o->argv[i]);
	n++;
	if (o->env) {
		size_t envc = 0;
		while (o->env[envc])
			envc++;
		sbx_pack_str(pk, "env");
		msgpack_pack_map(pk, envc);
		for (size_t i = 0; i < envc; i++) {
			const char *eq = strchr(o->env[i], '=');
			size_t kl = eq ? (size_t)(eq - o->env[i]) : strlen(o->env[i]);
			msgpack_pack_str(pk, kl);
			msgpack_pack_str_body(pk, o->env[i], kl);
			sbx_pack_str(pk, eq ? eq + 1 : "");
		}
		n++;
	}
	if (o->cwd && o->cwd[0]) {
		sbx_pack_kv_str(pk, "cwd", o->cwd);
		n++;
	}
	if (o->user && o->user[0]) {
		sbx_pack_kv_str(pk, "user", o->user);
		n++;
	}
	if (o->timeout_s > 0) {
		uint64_t ms = (uint64_t)(o->timeout_s * 1000);
		sbx_pack_kv_uint(pk, "timeout_ms", ms ? ms : 1);
		n++;
	}
	if (o->grace_s > 0) {
		sbx_pack_kv_uint(pk, "grace_ms", (uint64_t)(o->grace_s * 1000));
		n++;
	}
	if (o->tty)
		n += pack_tty(pk, o);
	return n;
}

/* A fresh key (PREFIX-N, N in sending order, see agent/ledger.h) packed
 * in place of the request's last pair. */
static void new_key(exec_call *x)
{
	sbx_session *s = x->call.s;
	snprintf(x->key, sizeof x->key, "%s-%u", s->key_prefix, ++s->key_counter);
	x->call.request.len = x->key_off;
	msgpack_packer pk;
	msgpack_packer_init(&pk, &x->call.request, (msgpack_packer_write)sbx_buf_append);
	sbx_pack_kv_str(&pk, "key", x->key);
}

static void prepare(exec_call *x);
static void arm(exec_call *x);

sbx_call *sbx_exec(sbx_session *s, const sbx_exec_opts *o, sbx_error *err)
{
	if (!o->argv || !o->argv[0]) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "exec needs a command (argv is empty)");
		return NULL;
	}
	if (!(o->timeout_s >= 0 && o->timeout_s <= MAX_TIMEOUT_S) || !(o->grace_s >= 0 && o->grace_s <= MAX_TIMEOUT_S)) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid",
			      "timeout and grace must be between 0 and %.0f seconds", MAX_TIMEOUT_S);
		return NULL;
	}
	if (s->failed) {
		*err = s->failure;
		return NULL;
	}
	exec_call *x = (exec_call *)call_new(s, &exec_ops, sizeof *x);
	if (!x) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	x->eo = *o;
	if (!x->eo.output_limit)
		x->eo.output_limit = SBX_DEFAULT_OUTPUT_LIMIT;
	prepare(x);
	/* packed: the caller may free these once sbx_exec returns */
	x->eo.argv = x->eo.env = NULL;
	x->eo.cwd = x->eo.user = NULL;
	if (session_start_call(s, &x->call, err) < 0)
		return NULL;
	return &x->call;
}

/* Packs the request once, while the caller's argv, env, cwd and user are
 * surely alive (they need not outlive sbx_exec), and names the command. */
static void prepare(exec_call *x)
{
	sbx_buf_clear(&x->call.request);
	pack_request(x, &x->eo);
	new_key(x);
	arm(x);
}

/* Sets when the agent owes the command's end. */
static void arm(exec_call *x)
{
	sbx_call *c = &x->call;
	const sbx_exec_opts *o = &x->eo;
	c->deadline_ms = 0;
	if (o->timeout_s > 0) /* the agent kills it by then; output may still be draining */
		call_set_deadline(c, sbx_now_ms() + (uint64_t)((o->timeout_s + (o->grace_s > 0 ? o->grace_s : 2)) * 1000));
	c->sending = o->input_len > 0 || o->stream_stdin;
}

/* After a reconnect the agent says the EXEC never reached it: send it
 * again, unless streamed stdin already went (those bytes are gone). -1
 * when it cannot; 0 when the call was handed back to the session (which
 * reports any failure through on_done). */
static int resend(exec_call *x)
{
	if (x->eo.stream_stdin && x->stdin_sent > 0)
		return -1;
	sbx_call *c = &x->call;
	call_unbind(c);
	c->started = x->reattached = 0;
	x->held = 0;
	x->input_off = 0;
	x->stdin_end_sent = 0;
	new_key(x); /* the request as packed at the start; only the key is new */
	arm(x);
	session_start_call(c->s, c, NULL);
	return 0;
}

/* ---------------------------------------------------------------- stdin */

/* Sends at most one chunk of n bytes at p as stdin; the bytes sent. */
static size_t send_stdin(exec_call *x, const void *p, size_t n)
{
	if (n > SBX_CHUNK_MAX)
		n = SBX_CHUNK_MAX;
	long sent = sbx_conn_send_data(x->call.s->conn, x->call.stream, SBX_FD_IN, p, n);
	return sent > 0 ? (size_t)sent : 0;
}

static void exec_pump(sbx_call *c)
{
	exec_call *x = exec_of(c);
	const sbx_exec_opts *o = &x->eo;
	if (x->input_off < o->input_len) {
		x->input_off += send_stdin(x, (const uint8_t *)o->input + x->input_off, o->input_len - x->input_off);
		return;
	}
	if (sbx_buf_size(&x->stdin_buf) > 0) {
		size_t sent = send_stdin(x, sbx_buf_head(&x->stdin_buf), sbx_buf_size(&x->stdin_buf));
		sbx_buf_consume(&x->stdin_buf, sent);
		x->stdin_sent += sent;
		return;
	}
	if (!o->stream_stdin || x->stdin_closed) {
		sbx_conn_send_end(c->s->conn, c->stream, SBX_FD_IN);
		x->stdin_end_sent = 1;
		c->sending = 0;
	}
}

int sbx_call_write_stdin(sbx_call *c, const void *p, size_t n)
{
	exec_call *x = exec_of(c);
	if (!x || !x->eo.stream_stdin || x->stdin_closed)
		return -1;
	if (sbx_buf_append(&x->stdin_buf, p, n) < 0)
		return -1;
	c->sending = 1;
	session_pump(c->s);
	return 0;
}

size_t sbx_call_stdin_pending(const sbx_call *c)
{
	exec_call *x = exec_of((sbx_call *)c);
	return x ? sbx_buf_size(&x->stdin_buf) : 0;
}

int sbx_call_close_stdin(sbx_call *c)
{
	exec_call *x = exec_of(c);
	if (!x || !x->eo.stream_stdin)
		return -1;
	x->stdin_closed = 1;
	c->sending = !x->stdin_end_sent;
	session_pump(c->s);
	return 0;
}

int sbx_call_signal(sbx_call *c, int signo)
{
	if (!exec_of(c) || !c->started || !c->stream || !c->s->conn)
		return -1;
	sbx_conn_send_signal(c->s->conn, c->stream, signo);
	session_flush(c->s);
	return 0;
}

int sbx_call_resize(sbx_call *c, unsigned rows, unsigned cols)
{
	exec_call *x = exec_of(c);
	if (!x || !x->eo.tty || !c->started || !c->stream || !c->s->conn || rows < 1 || cols < 1 ||
	    rows > 65535 || cols > 65535 || !(sbx_conn_peer(c->s->conn)->caps & SBX_CAP_PTY))
		return -1;
	sbx_conn_send_resize(c->s->conn, c->stream, rows, cols);
	session_flush(c->s);
	return 0;
}

/* ---------------------------------------------------------------- output */

static void complete(exec_call *x, sbx_exec_result *r);

/* More output than the limit: the agent (which stops a command at its
 * limit) is not honest. The call ends now with what it kept, and the
 * stream is cancelled: no more credit, so nothing more can come. */
static void over_limit(exec_call *x, int fd)
{
	sbx_exec_result r;
	memset(&r, 0, sizeof r);
	r.exit_code = -1;
	r.truncated = 1;
	sbx_error_set(&r.error, SBX_E_LIMIT, EFBIG, "output_limit",
		      "the agent sent more than the output limit of %zu bytes on %s (output truncated; command cancelled)",
		      x->eo.output_limit, fd == SBX_FD_OUT ? "stdout" : "stderr");
	sbx_conn_send_cancel(x->call.s->conn, x->call.stream);
	complete(x, &r);
}

static void on_output(exec_call *x, const sbx_msg *m)
{
	sbx_call *c = &x->call;
	sbx_buf *b = m->fd == SBX_FD_OUT ? &x->out : &x->err;
	size_t n = m->len;
	x->have[m->fd] += n;
	if (x->eo.manual_credit) /* before on_output: it may consume at once */
		x->held += n;
	if (c->deadline_ms) /* still producing: not stuck */
		call_set_deadline(c, sbx_now_ms());
	if (x->eo.on_output)
		x->eo.on_output(x->eo.ud, m->fd, m->data, n);
	if (!x->eo.no_accumulate) {
		size_t room = x->eo.output_limit > sbx_buf_size(b) ? x->eo.output_limit - sbx_buf_size(b) : 0;
		if (n > room) {
			n = room;
			x->truncated = 1;
		}
		if (sbx_buf_append(b, m->data, n) < 0)
			x->truncated = 1;
	}
	if (x->have[m->fd] > x->eo.output_limit)
		over_limit(x, m->fd);
	else if (!x->eo.manual_credit)
		sbx_conn_consumed(c->s->conn, c->stream, m->len);
}

int sbx_call_consumed(sbx_call *c, size_t n)
{
	exec_call *x = exec_of(c);
	if (!x || !x->eo.manual_credit)
		return -1;
	if (n > x->held)
		n = (size_t)x->held;
	if (n == 0 || !c->stream || !c->s->conn)
		return 0;
	x->held -= n;
	sbx_conn_consumed(c->s->conn, c->stream, n);
	if (c->deadline_ms) /* the agent could not send while the caller held its credit */
		call_set_deadline(c, sbx_now_ms());
	session_flush(c->s);
	return 0;
}

static void complete(exec_call *x, sbx_exec_result *r)
{
	r->out = sbx_buf_take(&x->out, &r->out_len);
	r->err = sbx_buf_take(&x->err, &r->err_len);
	if (x->eo.on_done)
		x->eo.on_done(x->eo.ud, r);
	sbx_exec_result_free(r);
	call_finish(&x->call);
}

static void on_exit_msg(exec_call *x, const sbx_msg *m)
{
	sbx_exec_result r;
	memset(&r, 0, sizeof r);
	r.exit_code = (int)sbx_map_int(m->body, "code", -1);
	r.signal = (int)sbx_map_int(m->body, "signal", 0);
	r.timed_out = sbx_map_bool(m->body, "timed_out", 0);
	r.truncated = x->truncated || sbx_map_bool(m->body, "stdout_truncated", 0) ||
		      sbx_map_bool(m->body, "stderr_truncated", 0);
	r.duration_ms = sbx_map_uint(m->body, "duration_ms", 0);
	if (x->corrupt.status != SBX_OK)
		r.error = x->corrupt;
	else if (r.timed_out)
		sbx_error_set(&r.error, SBX_E_TIMEOUT, ETIMEDOUT, "timeout", "command timed out after %.1f s",
			      x->eo.timeout_s);
	else if (r.truncated)
		sbx_error_set(&r.error, SBX_E_LIMIT, EFBIG, "output_limit",
			      "command output exceeded the limit of %zu bytes per stream (output truncated)",
			      x->eo.output_limit);
	if (x->call.s->addr[0])
		session_forget(x->call.s, x->key);
	complete(x, &r);
}

static void exec_fail(sbx_call *c, const sbx_error *e)
{
	sbx_exec_result r;
	memset(&r, 0, sizeof r);
	r.error = *e;
	r.exit_code = -1;
	complete(exec_of(c), &r);
}

static void exec_on_message(sbx_call *c, const sbx_msg *m)
{
	exec_call *x = exec_of(c);
	sbx_error e;
	switch (m->type) {
	case SBX_MSG_DATA:
		on_output(x, m);
		return;
	case SBX_MSG_END:
		if (m->err) /* reported when the command's EXIT arrives */
			sbx_error_set(&x->corrupt, SBX_E_CONN, m->err, "corrupt", "command output corrupted in transit: %s",
				      m->text);
		return;
	case SBX_MSG_EXIT:
		on_exit_msg(x, m);
		return;
	case SBX_MSG_ERROR:
		if (x->reattached && strcmp(m->code, "not_received") == 0 && resend(x) == 0)
			return;
		sbx_error_from_msg(&e, m);
		exec_fail(c, &e);
		return;
	}
}

static void exec_free(sbx_call *c)
{
	exec_call *x = exec_of(c);
	sbx_buf_free(&x->out);
	sbx_buf_free(&x->err);
	sbx_buf_free(&x->stdin_buf);
}

/* After a reconnect: ask the agent for the rest of this command. */
static int exec_reattach(sbx_call *c)
{
	exec_call *x = exec_of(c);
	sbx_session *s = c->s;
	uint32_t id = sbx_conn_new_stream_id(s->conn);
	msgpack_packer *pk = sbx_conn_begin_map(s->conn, SBX_MSG_ATTACH, id, 3);
	if (!pk)
		return -1;
	sbx_pack_kv_str(pk, "key", x->key);
	sbx_pack_kv_uint(pk, "have_stdout", x->have[1]);
	sbx_pack_kv_uint(pk, "have_stderr", x->have[2]);
	if (sbx_conn_finish(s->conn) < 0)
		return -1;
	call_bind(c, id);
	x->reattached = 1;
	x->held = 0; /* the new stream starts with a fresh window */
	c->sending = 0; /* stdin is not resumed across connections */
	session_flush(s);
	return 0;
}

static const sbx_call_ops exec_ops = {
	.name = "exec",
	.request = SBX_MSG_EXEC,
	.flags = SBX_CALL_F_FORGET,
	.on_message = exec_on_message,
	.pump = exec_pump,
	.fail = exec_fail,
	.free = exec_free,
	.reattach = exec_reattach,
};

void sbx_exec_result_free(sbx_exec_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
	r->out_len = r->err_len = 0;
}
