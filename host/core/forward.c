/* forward.c — the forward call kind (call.h): one TCP connection to a
 * port on the sandbox's loopback (FORWARD), joined to a local socket.
 *
 * Bytes the local socket gives go up as DATA fd 0, read only while the
 * stream has credit (the session calls pump then); the agent's DATA fd 1
 * is written to the local socket and credited back only once written, so
 * a slow local reader holds at most one window (the conn rejects an agent
 * that sends past it). EOF on either side travels as END and half-closes
 * the other (shutdown SHUT_WR); the agent's RESULT ends the call once
 * everything it sent was written here. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "call.h"
#include "internal.h"

typedef struct forward_call {
	sbx_call call;
	sbx_forward_opts fo;
	int fd;                 /* the local socket (ours; -1 once closed) */
	unsigned watching;      /* SBX_EV_* we asked the loop for */
	int local_eof;          /* the local side said EOF: END fd 0 sent */
	sbx_buf to_local;       /* from the agent, not yet written (<= one window) */
	int remote_eof;         /* END fd 1: shut the local side's writing once flushed */
	int remote_done;        /* RESULT arrived: ends once to_local is written */
	sbx_error local_error;  /* the local socket failed: reported when the cancel is answered */
	sbx_forward_result result;
} forward_call;

static const sbx_call_ops forward_ops;

static forward_call *forward_of(sbx_call *c)
{
	return (forward_call *)c;
}

static void on_local(sbx_loop *loop, int fd, unsigned events, void *ud);

/* Watches the local socket for what we can do now. */
static void rewatch(forward_call *f)
{
	if (f->fd < 0)
		return;
	unsigned ev = 0;
	if (f->call.started && f->call.stream && !f->local_eof && !f->call.sending)
		ev |= SBX_EV_READ;
	if (sbx_buf_size(&f->to_local) > 0)
		ev |= SBX_EV_WRITE;
	if (ev != f->watching)
		sbx_loop_watch(f->call.s->loop, f->fd, ev, on_local, f);
	f->watching = ev;
}

/* Reports r and ends the call (the local socket is closed first). */
static void complete(forward_call *f)
{
	if (f->fd >= 0) {
		sbx_loop_unwatch(f->call.s->loop, f->fd);
		close(f->fd);
		f->fd = -1;
	}
	if (f->fo.on_done)
		f->fo.on_done(f->fo.ud, &f->result);
	call_finish(&f->call);
}

/* Gives up on the remote side (CANCEL; its answer is ignored) and ends
 * the call with e. */
static void abort_with(forward_call *f, const sbx_error *e)
{
	sbx_call *c = &f->call;
	if (c->stream && c->s->conn) {
		sbx_conn_send_cancel(c->s->conn, c->stream);
		session_flush(c->s);
	}
	f->result.error = *e;
	complete(f);
}

/* ---------------------------------------------------------------- agent -> local */

static void flush_local(forward_call *f)
{
	sbx_call *c = &f->call;
	while (sbx_buf_size(&f->to_local) > 0) {
		ssize_t w = send(f->fd, sbx_buf_head(&f->to_local), sbx_buf_size(&f->to_local), MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0) {
			sbx_error e;
			sbx_error_set(&e, SBX_E_LOCAL, errno, "io", "the local connection closed: %s", strerror(errno));
			abort_with(f, &e);
			return;
		}
		sbx_buf_consume(&f->to_local, (size_t)w);
		if (c->stream && c->s->conn && !f->remote_done)
			sbx_conn_consumed(c->s->conn, c->stream, (size_t)w);
	}
	if (sbx_buf_size(&f->to_local) > 0) {
		rewatch(f);
		session_flush(c->s); /* the WINDOWs granted so far */
		return;
	}
	if (f->remote_eof)
		shutdown(f->fd, SHUT_WR);
	if (f->remote_done) {
		complete(f);
		return;
	}
	rewatch(f);
	session_flush(c->s);
}

static void bad_agent(forward_call *f, const char *what)
{
	sbx_error e;
	sbx_error_set(&e, SBX_E_CONN, EPROTO, "protocol", "the agent sent %s on a forward stream", what);
	abort_with(f, &e);
}

static void forward_on_message(sbx_call *c, const sbx_msg *m)
{
	forward_call *f = forward_of(c);
	switch (m->type) {
	case SBX_MSG_DATA:
		if (m->fd != SBX_FD_OUT) {
			bad_agent(f, "stderr");
			return;
		}
		if (sbx_buf_append(&f->to_local, m->data, m->len) < 0) {
			sbx_error e;
			sbx_error_set(&e, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
			abort_with(f, &e);
			return;
		}
		f->result.received += m->len;
		flush_local(f);
		return;
	case SBX_MSG_END:
		if (m->fd != SBX_FD_OUT) {
			bad_agent(f, "an END of stderr");
			return;
		}
		f->remote_eof = 1;
		flush_local(f);
		return;
	case SBX_MSG_RESULT:
		f->remote_done = 1;
		call_unbind(c); /* the stream is closed; what it sent is still written here */
		flush_local(f);
		return;
	case SBX_MSG_ERROR:
		call_unbind(c);
		if (f->local_error.status != SBX_OK)
			f->result.error = f->local_error;
		else
			sbx_error_from_msg(&f->result.error, m);
		complete(f);
		return;
	default:
		bad_agent(f, sbx_msg_name(m->type));
		return;
	}
}

/* ---------------------------------------------------------------- local -> agent */

/* The session has credit for us: one chunk from the local socket, read
 * straight into the outbound frame. */
static void forward_pump(sbx_call *c)
{
	forward_call *f = forward_of(c);
	sbx_conn *conn = c->s->conn;
	size_t room;
	uint8_t *buf = sbx_conn_data_begin(conn, c->stream, &room);
	if (!buf)
		return;
	ssize_t r = recv(f->fd, buf, room, 0);
	sbx_conn_data_commit(conn, c->stream, SBX_FD_IN, r > 0 ? (size_t)r : 0);
	if (r > 0) {
		f->result.sent += (uint64_t)r;
		return;
	}
	if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
		c->sending = 0; /* wait for the socket */
	} else if (r == 0) {
		sbx_conn_send_end(conn, c->stream, SBX_FD_IN);
		f->local_eof = 1;
		c->sending = 0;
	} else {
		/* pump must not end the call (the session is walking its calls):
		 * cancel, and report this when the agent answers */
		sbx_error_set(&f->local_error, SBX_E_LOCAL, errno, "io", "the local connection failed: %s",
			      strerror(errno));
		sbx_conn_send_cancel(conn, c->stream);
		call_set_deadline(c, sbx_now_ms());
		f->local_eof = 1;
		c->sending = 0;
	}
	rewatch(f);
}

static void on_local(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)fd;
	forward_call *f = ud;
	sbx_session *s = f->call.s;
	session_enter(s);
	if (events & SBX_EV_WRITE) {
		flush_local(f); /* may end the call */
	} else if (events & SBX_EV_READ) {
		f->call.sending = 1; /* read by pump, as credit allows */
		rewatch(f);
		session_pump(s);
	}
	session_leave(s);
}

/* ---------------------------------------------------------------- life */

static void forward_fail(sbx_call *c, const sbx_error *e)
{
	forward_call *f = forward_of(c);
	f->result.error = *e;
	complete(f);
}

static void forward_free(sbx_call *c)
{
	forward_call *f = forward_of(c);
	if (f->fd >= 0) {
		sbx_loop_unwatch(c->s->loop, f->fd);
		close(f->fd);
	}
	sbx_buf_free(&f->to_local);
}

static const sbx_call_ops forward_ops = {
	.name = "forward",
	.request = SBX_MSG_FORWARD,
	.caps = SBX_CAP_FORWARD,
	.drop_note = "a forwarded connection does not survive a reconnect",
	.on_message = forward_on_message,
	.pump = forward_pump,
	.fail = forward_fail,
	.free = forward_free,
};

static int check(sbx_session *s, const sbx_forward_opts *o, sbx_error *err)
{
	if (!o->agent && (o->port < 1 || o->port > 65535)) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "the remote port must be 1..65535 (got %u)", o->port);
		return -1;
	}
	if (o->fd < 0) {
		sbx_error_set(err, SBX_E_INVALID, EBADF, "invalid", "forward needs a connected local socket (fd)");
		return -1;
	}
	if (s->failed) {
		*err = s->failure;
		return -1;
	}
	if (!sbx_session_ready(s)) {
		sbx_error_set(err, SBX_E_INVALID, EAGAIN, "invalid",
			      "forward needs a ready session (sbx_session_wait_ready) to know the agent can forward");
		return -1;
	}
	if (!(sbx_conn_peer(s->conn)->caps & SBX_CAP_FORWARD)) {
		sbx_error_set(err, SBX_E_REMOTE, ENOTSUP, "unsupported",
			      "the sandbox's agent (version %s) cannot forward ports: it lacks the \"forward\" "
			      "capability; update sbx-agent in the sandbox",
			      s->version);
		return -1;
	}
	if (o->agent && !(sbx_conn_peer(s->conn)->caps & SBX_CAP_AGENT_FORWARD)) {
		sbx_error_set(err, SBX_E_REMOTE, ENOTSUP, "unsupported",
			      "the sandbox's agent (version %s) cannot forward to itself: it lacks the "
			      "\"agent-forward\" capability; update sbx-agent in the sandbox",
			      s->version);
		return -1;
	}
	return 0;
}

static void pack_request(forward_call *f, const sbx_forward_opts *o)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, &f->call.request, (msgpack_packer_write)sbx_buf_append);
	if (o->agent) {
		sbx_pack_kv_bool(&pk, "agent", 1);
		f->call.npairs = 1;
		return;
	}
	sbx_pack_kv_uint(&pk, "port", o->port);
	f->call.npairs = 1;
	if (o->host && o->host[0]) {
		sbx_pack_kv_str(&pk, "host", o->host);
		f->call.npairs++;
	}
}

sbx_call *sbx_forward_open(sbx_session *s, const sbx_forward_opts *o, sbx_error *err)
{
	if (check(s, o, err) < 0) {
		if (o->fd >= 0)
			close(o->fd);
		return NULL;
	}
	forward_call *f = (forward_call *)call_new(s, &forward_ops, sizeof *f);
	if (!f) {
		close(o->fd);
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	f->fo = *o;
	f->fo.host = NULL; /* packed: the caller's string need not outlive this call */
	f->fd = o->fd;
	fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK);
	pack_request(f, o);
	f->call.sending = 1; /* pump reads the local socket once the stream has credit */
	if (session_start_call(s, &f->call, err) < 0)
		return NULL; /* finished: forward_free closed fd */
	return &f->call;
}
