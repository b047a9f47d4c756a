/* serve.c — the agent's loop: connections in and out, the poll set, and
 * handing each request and stream message to the job kinds (kind.h),
 * which it reaches only through their slots. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/signalfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "kind.h"

uint64_t agent_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *agent_errcode(int err)
{
	switch (err) {
	case ENOENT: return "not_found";
	case EACCES:
	case EPERM: return "permission";
	case EISDIR: return "is_directory";
	case ENOTDIR: return "not_directory";
	case EFBIG: return "too_large";
	case EEXIST: return "exists";
	case ENOSPC: return "no_space";
	case EINVAL: return "invalid";
	case ECANCELED: return "cancelled";
	}
	return "io";
}

/* ---------------------------------------------------------------- poll set */

void agent_watch(agent *ag, int fd, short events, poll_cb cb, void *obj)
{
	if (ag->npoll == ag->cappoll) {
		size_t cap = ag->cappoll ? ag->cappoll * 2 : 64;
		struct pollfd *p = realloc(ag->pfds, cap * sizeof *p);
		poll_cb *c = realloc(ag->pcbs, cap * sizeof *c);
		void **o = realloc(ag->pobjs, cap * sizeof *o);
		if (p)
			ag->pfds = p;
		if (c)
			ag->pcbs = c;
		if (o)
			ag->pobjs = o;
		if (!p || !c || !o)
			return; /* try again next iteration */
		ag->cappoll = cap;
	}
	ag->pfds[ag->npoll] = (struct pollfd){.fd = fd, .events = events};
	ag->pcbs[ag->npoll] = cb;
	ag->pobjs[ag->npoll] = obj;
	ag->npoll++;
}

void agent_wake_at(agent *ag, uint64_t when)
{
	if (when && (ag->next_wake == 0 || when < ag->next_wake))
		ag->next_wake = when;
}

/* ---------------------------------------------------------------- connections */

int agent_can_send(agent_conn *ac)
{
	return ac && !ac->dead && sbx_conn_ready(ac->conn) &&
	       sbx_conn_out_size(ac->conn) < AGENT_HIGH_WATER;
}

/* Messages on a stream a request opened, as opposed to requests. */
static int is_stream_msg(int type)
{
	return type == SBX_MSG_DATA || type == SBX_MSG_END || type == SBX_MSG_SIGNAL || type == SBX_MSG_CANCEL ||
	       type == SBX_MSG_RESIZE;
}

/* Offers m to kind k: 1 when k took it. */
static int offer(const agent_kind *k, agent_conn *ac, const sbx_msg *m)
{
	if (is_stream_msg(m->type))
		return k->stream && k->stream(ac, m);
	return k->request && k->request(ac, m);
}

static void on_msg(sbx_conn *c, const sbx_msg *m, void *ud)
{
	agent_conn *ac = ud;
	(void)c;
	for (const agent_kind *const *k = ac->ag->kinds; *k; k++)
		if (offer(*k, ac, m))
			return;
	if (m->type == SBX_MSG_CANCEL) /* nothing of that stream is left */
		sbx_conn_send_error(ac->conn, m->stream, ECANCELED, "cancelled", "cancelled");
}

static void on_credit(sbx_conn *c, uint32_t stream, void *ud)
{
	agent_conn *ac = ud;
	(void)c;
	for (const agent_kind *const *k = ac->ag->kinds; *k; k++)
		if ((*k)->credit)
			(*k)->credit(ac, stream);
}

typedef enum { PHASE_POLL, PHASE_PUMP, PHASE_SWEEP, PHASE_REAP, PHASE_STOP } phase;
typedef void (*phase_fn)(agent *ag);

static phase_fn phase_slot(const agent_kind *k, phase p)
{
	switch (p) {
	case PHASE_POLL: return k->poll;
	case PHASE_PUMP: return k->pump;
	case PHASE_SWEEP: return k->sweep;
	case PHASE_REAP: return k->reap;
	case PHASE_STOP: return k->stop;
	}
	return NULL;
}

/* Runs one of the loop's phases of every kind, in the table's order. */
static void each_kind(agent *ag, phase p)
{
	for (const agent_kind *const *k = ag->kinds; *k; k++) {
		phase_fn fn = phase_slot(*k, p);
		if (fn)
			fn(ag);
	}
}

static void conn_close(agent_conn *ac, const char *why)
{
	if (ac->dead)
		return;
	ac->dead = 1;
	if (why && ac->peer[0])
		fprintf(stderr, "sbx-agent: connection from %s: %s\n", ac->peer, why);
	else if (why)
		fprintf(stderr, "sbx-agent: %s\n", why);
	for (const agent_kind *const *k = ac->ag->kinds; *k; k++)
		if ((*k)->detach)
			(*k)->detach(ac);
}

static void conn_io(agent *ag, void *obj, short revents)
{
	agent_conn *ac = obj;
	(void)ag;
	if (ac->dead)
		return;
	if (revents & POLLOUT) {
		size_t len;
		const uint8_t *p = sbx_conn_out(ac->conn, &len);
		ssize_t w = len ? write(ac->fd_out, p, len) : 0;
		if (w > 0)
			sbx_conn_out_consume(ac->conn, (size_t)w);
		else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(ac, "write to host failed");
			return;
		}
	}
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		uint8_t buf[128 * 1024];
		ssize_t r = read(ac->fd_in, buf, sizeof buf);
		if (r > 0) {
			if (sbx_conn_feed(ac->conn, buf, (size_t)r) < 0) {
				/* flush the GOAWAY, best effort, then close */
				size_t len;
				const uint8_t *p = sbx_conn_out(ac->conn, &len);
				if (len && write(ac->fd_out, p, len) < 0) {
				}
				conn_close(ac, sbx_conn_error(ac->conn));
			}
		} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			conn_close(ac, NULL);
		}
	}
}

/* trusted: no AUTH asked (stdio, and connections opened from inside an
 * authenticated one) */
static agent_conn *conn_add(agent *ag, int fd_in, int fd_out, int trusted)
{
	agent_conn *ac = calloc(1, sizeof *ac);
	if (!ac)
		return NULL;
	if (ag->listen_fd >= 0) {
		agent_peer_name(fd_in, ac->peer, sizeof ac->peer);
		ac->handshake_by = agent_now() + AGENT_HANDSHAKE_MS;
	}
	ac->ag = ag;
	ac->fd_in = fd_in;
	ac->fd_out = fd_out;
	fcntl(fd_in, F_SETFL, fcntl(fd_in, F_GETFL) | O_NONBLOCK);
	fcntl(fd_out, F_SETFL, fcntl(fd_out, F_GETFL) | O_NONBLOCK);
	sbx_conn_config cfg = {
		.role = SBX_ROLE_AGENT,
		.hello = ag->hello,
		.clock_ns = sbx_monotonic_ns,
		.fixed_window = sbx_fixed_window_env(), /* pins only the windows this agent grants */
		.cb = {.on_msg = on_msg, .on_credit = on_credit},
		.ud = ac,
	};
	/* A fresh nonce per connection, or no connection: a proof must never
	 * be good twice. */
	if (ag->key.len && !trusted) {
		cfg.auth_key = &ag->key;
		if (getrandom(cfg.auth_nonce, sizeof cfg.auth_nonce, 0) != sizeof cfg.auth_nonce) {
			fprintf(stderr, "sbx-agent: no random bytes for a nonce: %s\n", strerror(errno));
			free(ac);
			return NULL;
		}
	}
	ac->conn = sbx_conn_new(&cfg);
	if (!ac->conn) {
		free(ac);
		return NULL;
	}
	ac->next = ag->conns;
	ag->conns = ac;
	return ac;
}

static void conns_sweep(agent *ag)
{
	agent_conn **link = &ag->conns;
	while (*link) {
		agent_conn *ac = *link;
		if (!ac->dead) {
			link = &ac->next;
			continue;
		}
		*link = ac->next;
		close(ac->fd_in);
		if (ac->fd_out != ac->fd_in)
			close(ac->fd_out);
		if (ag->stdio && !ac->inner)
			ag->quit = 1; /* the one host is gone */
		sbx_conn_free(ac->conn);
		free(ac);
	}
}

int agent_serve_inner(agent *ag, int fd)
{
	agent_conn *ac = conn_add(ag, fd, fd, 1);
	if (!ac) {
		close(fd);
		return -1;
	}
	ac->inner = 1;
	snprintf(ac->peer, sizeof ac->peer, "agent forward");
	ac->handshake_by = agent_now() + AGENT_HANDSHAKE_MS;
	return 0;
}

static void on_accept(agent *ag, void *obj, short revents)
{
	(void)obj;
	(void)revents;
	int fd = accept4(ag->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	/* TCP (the SSM agent forwarding to 127.0.0.1:PORT): small replies go out at once
	 * instead of waiting for the peer's delayed ACK (~40 ms per round trip). On a
	 * unix socket this fails harmlessly. */
	int one = 1;
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (fd >= 0 && !conn_add(ag, fd, fd, 0))
		close(fd);
}

static void on_signal(agent *ag, void *obj, short revents)
{
	(void)obj;
	(void)revents;
	struct signalfd_siginfo si;
	while (read(ag->sig_fd, &si, sizeof si) == sizeof si) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			ag->quit = 1;
	}
	each_kind(ag, PHASE_REAP);
}

/* ---------------------------------------------------------------- the loop */

/* A listening agent does not keep a connection that has not finished its
 * handshake (AUTH and HELLO) in AGENT_HANDSHAKE_MS: a local process cannot
 * hold connections open without the secret. Checked after poll, so the
 * sweep that follows closes it; watch_conns asks poll to wake in time. */
static int handshake_pending(const agent_conn *ac)
{
	return ac->handshake_by && !ac->dead && !sbx_conn_ready(ac->conn);
}

static void handshake_deadlines(agent *ag)
{
	for (agent_conn *ac = ag->conns; ac; ac = ac->next)
		if (handshake_pending(ac) && ag->now >= ac->handshake_by)
			conn_close(ac, "no handshake in time: closed");
}

static void watch_conns(agent *ag)
{
	for (agent_conn *ac = ag->conns; ac; ac = ac->next) {
		if (handshake_pending(ac))
			agent_wake_at(ag, ac->handshake_by);
		if (ac->dead)
			continue;
		short in = POLLIN, out = sbx_conn_out_size(ac->conn) ? POLLOUT : 0;
		if (ac->fd_in == ac->fd_out) {
			agent_watch(ag, ac->fd_in, in | out, conn_io, ac);
		} else {
			agent_watch(ag, ac->fd_in, in, conn_io, ac);
			if (out)
				agent_watch(ag, ac->fd_out, out, conn_io, ac);
		}
	}
}

static int setup_signals(agent *ag)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	ag->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return ag->sig_fd < 0 ? -1 : 0;
}

int agent_run(agent *ag, const agent_kind *const *kinds)
{
	ag->kinds = kinds;
	if (setup_signals(ag) < 0) {
		perror("sbx-agent: signalfd");
		return 1;
	}
	if (ag->stdio && !conn_add(ag, 0, 1, 0)) {
		fprintf(stderr, "sbx-agent: out of memory\n");
		return 1;
	}
	while (!ag->quit) {
		ag->now = agent_now();
		ag->npoll = 0;
		ag->next_wake = 0;
		agent_watch(ag, ag->sig_fd, POLLIN, on_signal, NULL);
		if (ag->listen_fd >= 0)
			agent_watch(ag, ag->listen_fd, POLLIN, on_accept, NULL);
		watch_conns(ag);
		each_kind(ag, PHASE_POLL);
		int timeout = -1;
		if (ag->next_wake)
			timeout = ag->next_wake > ag->now ? (int)(ag->next_wake - ag->now) : 0;
		int n = poll(ag->pfds, ag->npoll, timeout);
		if (n < 0 && errno != EINTR) {
			perror("sbx-agent: poll");
			return 1;
		}
		ag->now = agent_now();
		for (size_t i = 0; n > 0 && i < ag->npoll; i++)
			if (ag->pfds[i].revents)
				ag->pcbs[i](ag, ag->pobjs[i], ag->pfds[i].revents);
		each_kind(ag, PHASE_PUMP);
		each_kind(ag, PHASE_SWEEP);
		handshake_deadlines(ag);
		conns_sweep(ag);
	}
	each_kind(ag, PHASE_STOP);
	return 0;
}
