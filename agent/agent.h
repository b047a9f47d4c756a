/* agent.h — the agent's shared state: connections, the lists each job
 * kind keeps (commands, file transfers), and the poll set that drives them.
 *
 * The agent is single-threaded. Each loop iteration every kind (kind.h)
 * adds the fds it wants watched to the poll set (with a callback), the loop
 * polls, runs the callbacks, then every kind "pumps" (moves data that
 * credit now allows) and sweeps objects that finished. Nothing is freed
 * inside a callback, so a callback never sees a freed object. */
#ifndef SBX_AGENT_H
#define SBX_AGENT_H

#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include "conn.h"
#include "ledger.h"
#include "nometa.h"

#define AGENT_VERSION "0.1.0"
#define AGENT_HIGH_WATER (256 * 1024)   /* stop producing when this much is queued */
#define AGENT_DETACHED_CAP (1024 * 1024) /* output kept per job while no host is attached */
#define AGENT_HANDSHAKE_MS 10000         /* listen mode: a connection's AUTH + HELLO deadline */

typedef struct agent agent;

typedef struct agent_conn {
	struct agent_conn *next;
	agent *ag;
	int fd_in, fd_out; /* the same fd for sockets */
	sbx_conn *conn;
	int dead;          /* closed or failed: swept at the end of the iteration */
	char peer[96];     /* who connected, for the log ("" on stdio) */
	uint64_t handshake_by; /* listen mode: closed if not ready by then (ms) */
	int inner;         /* opened by an agent FORWARD (forward.c): its end never ends a stdio agent */
} agent_conn;

typedef void (*poll_cb)(agent *ag, void *obj, short revents);

struct agent {
	int stdio;             /* serving one connection on stdin/stdout */
	int listen_fd;
	int sig_fd;            /* signalfd for SIGCHLD */
	agent_conn *conns;
	const struct agent_kind *const *kinds; /* NULL-terminated; see kind.h */
	struct job *jobs;      /* exec.c's running and kept commands */
	struct transfer *xfers; /* files.c's transfers in flight */
	struct forward *forwards; /* forward.c's forwarded TCP connections */
	sbx_hello hello;
	sbx_auth_key key;      /* the sandbox's secret; len 0: hosts need no proof */
	char workdir[PATH_MAX];
	const char *passwd_path, *group_path;
	const char *default_user; /* --user: commands run as this unless a request names one */
	uint64_t keep_ms;      /* how long detached results are kept */
	nometa *nometa;        /* --block-metadata: commands start in its cgroup; NULL: off */
	ledger sent;           /* which commands each host has sent (ATTACH) */
	uint64_t now;
	int quit;

	struct pollfd *pfds;   /* the poll set of this iteration */
	poll_cb *pcbs;
	void **pobjs;
	size_t npoll, cappoll;
	uint64_t next_wake;    /* earliest deadline any module asked for */
};

/* attach.c: `--attach PATH`, a stdio bridge to a listening agent. */
int agent_attach(const char *path, const char *keep);

/* listen.c: the listening socket and who connects to it. */
int agent_listen_on(const char *addr);

/* --idle: waits for SIGTERM/SIGINT/SIGHUP, reaping children; returns 0. */
int agent_idle(void);

/* --socket-owner's "UID[:GID]" (numeric; GID defaults to UID). 0, or -1
 * with a line on stderr. */
int agent_parse_owner(const char *owner, unsigned *uid, unsigned *gid);

/* Gives the unix socket file at addr to uid:gid: a root agent serving a
 * non-root host through a shared directory. 0, or -1 with a line on stderr. */
int agent_listen_give(const char *addr, unsigned uid, unsigned gid);
/* A listening socket inherited as fd (--listen-fd): made ours. -1 if not one. */
int agent_listen_inherited(int fd);
/* "uid 0 pid 12" (unix) or "127.0.0.1:5555" (TCP), for log lines. */
void agent_peer_name(int fd, char *out, size_t len);

/* kinds.c: serves with every kind this agent has. */
int agent_serve(agent *ag);

/* serve.c */
/* The loop, with kinds (a NULL-terminated table, see kind.h). */
int agent_run(agent *ag, const struct agent_kind *const *kinds);
void agent_watch(agent *ag, int fd, short events, poll_cb cb, void *obj);
void agent_wake_at(agent *ag, uint64_t when_ms);
uint64_t agent_now(void);
/* Serves a new host connection on fd (a socket; ours from now on) as if
 * accepted on the listening socket, but trusted: a fresh HELLO and no AUTH,
 * as it is opened from inside an authenticated connection (FORWARD
 * `agent`, forward.c). 0, or -1 (fd closed). */
int agent_serve_inner(agent *ag, int fd);
int agent_can_send(agent_conn *ac);

/* errors: a short code for an errno, used in ERROR replies */
const char *agent_errcode(int err);

#endif
