/* forward.c — the forward job kind (kind.h): FORWARD, a TCP connection
 * from the agent to a port on its own loopback, carried by one stream.
 *
 * The agent connects (non-blocking) to 127.0.0.1:PORT (or ::1, or another
 * 127/8 address: loopback only, never a name to resolve, never another
 * host) in its own network namespace. Then DATA fd 0 from the host goes to
 * the socket and what the socket gives goes back as DATA fd 1, under the
 * stream's credit both ways, exactly like an exec's stdin and stdout: the
 * agent buffers at most one window toward the socket and reads the socket
 * only while it has credit. END fd 0 half-closes the socket's sending side
 * once the buffered bytes are written; the socket's EOF becomes END fd 1;
 * with both done the stream ends with RESULT {sent, received}. A failed
 * connect or a socket error ends it with ERROR (errno: ECONNREFUSED, ...);
 * CANCEL and a lost host connection close the socket.
 *
 * FORWARD `agent: true` targets the agent itself instead of a port: a
 * socketpair whose one end is served as a new host connection (a fresh
 * HELLO; no AUTH: it is opened from inside an authenticated connection,
 * which it cannot outlive; serve.c) and whose
 * other end is this forward's socket. A host keeps one connection open and
 * runs many sessions through it (the CLI's connection holder). Only the
 * host sends FORWARD, so nothing in the sandbox reaches this. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "kind.h"

/* One forwarded connection. */
typedef struct forward {
	struct forward *next;
	agent_conn *owner;
	uint32_t stream;
	int sock;
	int connecting;     /* connect() in progress */
	char target[64];    /* "127.0.0.1:80", for messages */
	sbx_buf to_sock;    /* from the host, not yet written (at most one window) */
	int host_ended;     /* END fd 0 arrived: shut down writing once flushed */
	int wr_shut;
	int sock_eof;       /* the socket said EOF: END fd 1 sent */
	uint64_t sent, received; /* bytes written to / read from the socket */
	int finished;       /* swept */
} forward;

/* The errno's code in ERROR replies: connection errors get their own. */
static const char *errcode(int err)
{
	switch (err) {
	case ECONNREFUSED: return "refused";
	case ECONNRESET:
	case EPIPE: return "reset";
	case ETIMEDOUT: return "timeout";
	}
	return agent_errcode(err);
}

static forward *find(agent_conn *ac, uint32_t stream)
{
	for (forward *f = ac->ag->forwards; f; f = f->next)
		if (f->owner == ac && f->stream == stream && !f->finished)
			return f;
	return NULL;
}

static void close_sock(forward *f)
{
	if (f->sock >= 0)
		close(f->sock);
	f->sock = -1;
	f->finished = 1;
}

static void fail(forward *f, int err, const char *what)
{
	if (f->owner && !f->owner->dead)
		sbx_conn_send_error(f->owner->conn, f->stream, err, errcode(err), "%s %s: %s", what, f->target,
				    strerror(err));
	close_sock(f);
}

/* Both directions are done: the final message. */
static void maybe_done(forward *f)
{
	if (f->finished || !f->sock_eof || !f->wr_shut)
		return;
	msgpack_packer *pk = sbx_conn_begin_map(f->owner->conn, SBX_MSG_RESULT, f->stream, 2);
	if (pk) {
		sbx_pack_kv_uint(pk, "sent", f->sent);
		sbx_pack_kv_uint(pk, "received", f->received);
		sbx_conn_finish(f->owner->conn);
	}
	close_sock(f);
}

/* ---------------------------------------------------------------- request */

/* The request's target as a loopback socket address; -1 (and *why) when
 * it is not loopback. No name is ever resolved but "localhost". */
static int loopback_addr(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (!host[0] || !strcmp(host, "localhost"))
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		if ((ntohl(in4->sin_addr.s_addr) >> 24) != 127)
			return -1;
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = sizeof *in4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return -1;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof *in6;
		return 0;
	}
	return -1;
}

static forward *add(agent_conn *ac, const sbx_msg *m, const char *host, unsigned port)
{
	forward *f = calloc(1, sizeof *f);
	if (!f) {
		sbx_conn_send_error(ac->conn, m->stream, ENOMEM, "io", "agent out of memory");
		return NULL;
	}
	f->owner = ac;
	f->stream = m->stream;
	f->sock = -1;
	if (port)
		snprintf(f->target, sizeof f->target, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
	else
		snprintf(f->target, sizeof f->target, "the %s", host);
	f->next = ac->ag->forwards;
	ac->ag->forwards = f;
	return f;
}

/* FORWARD agent: a socketpair, one end a new connection to this agent. */
static void forward_to_agent(agent_conn *ac, const sbx_msg *m)
{
	forward *f = add(ac, m, "agent", 0);
	if (!f)
		return;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		fail(f, errno, "cannot connect to");
		return;
	}
	f->sock = sv[0];
	if (agent_serve_inner(ac->ag, sv[1]) < 0)
		fail(f, ENOMEM, "cannot connect to");
}

static void forward_open(agent_conn *ac, const sbx_msg *m)
{
	if (sbx_map_bool(m->body, "agent", 0)) {
		forward_to_agent(ac, m);
		return;
	}
	uint64_t port = sbx_map_uint(m->body, "port", 0);
	char host[48] = "";
	const msgpack_object *h = sbx_map_get(m->body, "host");
	if (port < 1 || port > 65535 || (h && sbx_map_str(m->body, "host", host, sizeof host) < 0)) {
		sbx_conn_send_error(ac->conn, m->stream, EINVAL, "invalid",
				    "FORWARD needs a port 1..65535 (and host, if any, a loopback address)");
		return;
	}
	struct sockaddr_storage ss;
	socklen_t len;
	if (loopback_addr(host, (unsigned)port, &ss, &len) < 0) {
		sbx_conn_send_error(ac->conn, m->stream, EACCES, "permission",
				    "forward to %s refused: only loopback addresses (127.0.0.1, ::1) of the "
				    "sandbox's own network namespace can be reached",
				    host);
		return;
	}
	forward *f = add(ac, m, host[0] && strcmp(host, "localhost") ? host : "127.0.0.1", (unsigned)port);
	if (!f)
		return;
	f->sock = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->sock < 0) {
		fail(f, errno, "cannot connect to");
		return;
	}
	int one = 1;
	(void)setsockopt(f->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(f->sock, (struct sockaddr *)&ss, len) == 0)
		return;
	if (errno == EINPROGRESS)
		f->connecting = 1;
	else
		fail(f, errno, "cannot connect to");
}

/* ---------------------------------------------------------------- host -> socket */

static void shut_write(forward *f)
{
	if (f->wr_shut || !f->host_ended || sbx_buf_size(&f->to_sock) > 0 || f->connecting)
		return;
	shutdown(f->sock, SHUT_WR);
	f->wr_shut = 1;
	maybe_done(f);
}

static void flush_to_sock(forward *f)
{
	while (!f->finished && !f->connecting && sbx_buf_size(&f->to_sock) > 0) {
		ssize_t w = send(f->sock, sbx_buf_head(&f->to_sock), sbx_buf_size(&f->to_sock), MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			fail(f, errno, "cannot send to");
			return;
		}
		sbx_buf_consume(&f->to_sock, (size_t)w);
		f->sent += (uint64_t)w;
		sbx_conn_consumed(f->owner->conn, f->stream, (size_t)w);
	}
	if (!f->finished)
		shut_write(f);
}

static void on_host_data(forward *f, const sbx_msg *m)
{
	if (m->type == SBX_MSG_END) {
		f->host_ended = 1;
	} else if (sbx_buf_append(&f->to_sock, m->data, m->len) < 0) {
		fail(f, ENOMEM, "out of memory forwarding to");
		return;
	}
	flush_to_sock(f);
}

/* ---------------------------------------------------------------- socket -> host */

/* Reads the socket into DATA fd 1 while credit and the queue allow. */
static void read_sock(forward *f)
{
	sbx_conn *c = f->owner->conn;
	while (!f->finished && !f->sock_eof && agent_can_send(f->owner)) {
		size_t room;
		uint8_t *buf = sbx_conn_data_begin(c, f->stream, &room);
		if (!buf)
			return;
		ssize_t r = recv(f->sock, buf, room, 0);
		sbx_conn_data_commit(c, f->stream, SBX_FD_OUT, r > 0 ? (size_t)r : 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r < 0) {
			fail(f, errno, "connection to");
			return;
		}
		if (r == 0) {
			f->sock_eof = 1;
			sbx_conn_send_end(c, f->stream, SBX_FD_OUT);
			maybe_done(f);
			return;
		}
		f->received += (uint64_t)r;
	}
}

/* connect() finished, one way or the other. */
static void connected(forward *f)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(f->sock, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		fail(f, err, "cannot connect to");
		return;
	}
	f->connecting = 0;
	flush_to_sock(f);
}

static void on_sock(agent *ag, void *obj, short revents)
{
	forward *f = obj;
	(void)ag;
	if (f->finished || !f->owner || f->owner->dead)
		return;
	if (f->connecting) {
		connected(f);
		return;
	}
	if (revents & POLLOUT)
		flush_to_sock(f);
	if (revents & (POLLIN | POLLHUP | POLLERR))
		read_sock(f);
}

/* ---------------------------------------------------------------- the kind's slots */

static int forward_request(agent_conn *ac, const sbx_msg *m)
{
	if (m->type != SBX_MSG_FORWARD)
		return 0;
	forward_open(ac, m);
	return 1;
}

/* DATA/END toward the socket, CANCEL (SIGNAL and RESIZE mean nothing
 * here: taken and ignored). */
static int forward_stream(agent_conn *ac, const sbx_msg *m)
{
	forward *f = find(ac, m->stream);
	if (!f)
		return 0;
	if (m->type == SBX_MSG_CANCEL)
		fail(f, ECANCELED, "cancelled: connection to");
	else if (m->type == SBX_MSG_DATA || m->type == SBX_MSG_END)
		on_host_data(f, m);
	return 1;
}

static void forward_poll(agent *ag)
{
	for (forward *f = ag->forwards; f; f = f->next) {
		if (f->finished || f->sock < 0)
			continue;
		short ev = 0;
		if (f->connecting || sbx_buf_size(&f->to_sock) > 0)
			ev |= POLLOUT;
		if (!f->connecting && !f->sock_eof && agent_can_send(f->owner) &&
		    sbx_conn_credit(f->owner->conn, f->stream) > 0)
			ev |= POLLIN;
		if (ev)
			agent_watch(ag, f->sock, ev, on_sock, f);
	}
}

/* The host is gone: its connections close (the peers see EOF/RST). */
static void forward_detach(agent_conn *ac)
{
	for (forward *f = ac->ag->forwards; f; f = f->next)
		if (f->owner == ac && !f->finished)
			close_sock(f);
}

static void forward_sweep(agent *ag)
{
	forward **link = &ag->forwards;
	while (*link) {
		forward *f = *link;
		if (f->finished) {
			*link = f->next;
			sbx_buf_free(&f->to_sock);
			free(f);
		} else {
			link = &f->next;
		}
	}
}

static void forward_stop(agent *ag)
{
	for (forward *f = ag->forwards; f; f = f->next)
		close_sock(f);
	forward_sweep(ag);
}

const agent_kind agent_forward_kind = {
	.name = "forward",
	.caps = SBX_CAP_FORWARD | SBX_CAP_AGENT_FORWARD,
	.request = forward_request,
	.stream = forward_stream,
	.detach = forward_detach,
	.poll = forward_poll,
	.sweep = forward_sweep,
	.stop = forward_stop,
};
