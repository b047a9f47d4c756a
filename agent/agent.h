/* agent.h — the agent's shared state: connections, running commands
 * (jobs), file transfers, and the poll set that drives them.
 *
 * The agent is single-threaded. Each loop iteration every module adds the
 * fds it wants watched to the poll set (with a callback), the loop polls,
 * runs the callbacks, then every module "pumps" (moves data that credit now
 * allows) and sweeps objects that finished. Nothing is freed inside a
 * callback, so a callback never sees a freed object. */
#ifndef SBX_AGENT_H
#define SBX_AGENT_H

#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include "conn.h"
#include "ledger.h"
#include "outlog.h"

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
} agent_conn;

typedef struct job {
	struct job *next;
	char key[64];          /* host-chosen id used to re-attach */
	agent_conn *owner;     /* NULL while detached */
	uint32_t stream;
	pid_t pid;
	int out_fd, err_fd, in_fd; /* -1 once closed */
	sbx_buf stdin_buf;     /* stdin waiting for the pipe */
	int stdin_ended;       /* END arrived: close stdin once flushed */
	outlog log;
	uint64_t limit;        /* per-stream output limit, 0 = none */
	int truncated[3];
	uint64_t deadline_ms;  /* timeout (0 = none) */
	uint64_t kill_at_ms;   /* SIGKILL after the grace period */
	uint64_t grace_ms;
	int timed_out;
	int reaped;
	int wait_status;
	uint64_t started_ms, ended_ms;
	int done;              /* EXIT sent: swept */
} job;

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
	int finished;          /* swept */
} transfer;

typedef void (*poll_cb)(agent *ag, void *obj, short revents);

struct agent {
	int stdio;             /* serving one connection on stdin/stdout */
	int listen_fd;
	int sig_fd;            /* signalfd for SIGCHLD */
	agent_conn *conns;
	job *jobs;
	transfer *xfers;
	sbx_hello hello;
	sbx_auth_key key;      /* the sandbox's secret; len 0: hosts need no proof */
	char workdir[PATH_MAX];
	const char *passwd_path, *group_path;
	uint64_t keep_ms;      /* how long detached results are kept */
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
/* "uid 0 pid 12" (unix) or "127.0.0.1:5555" (TCP), for log lines. */
void agent_peer_name(int fd, char *out, size_t len);

/* serve.c */
int agent_serve(agent *ag);
void agent_watch(agent *ag, int fd, short events, poll_cb cb, void *obj);
void agent_wake_at(agent *ag, uint64_t when_ms);
uint64_t agent_now(void);
int agent_can_send(agent_conn *ac);

/* exec.c */
void exec_start(agent_conn *ac, const sbx_msg *m);
void exec_attach(agent_conn *ac, const sbx_msg *m);
void exec_on_stdin(agent_conn *ac, const sbx_msg *m);
void exec_on_signal(agent_conn *ac, const sbx_msg *m);
int exec_cancel(agent_conn *ac, uint32_t stream);
void exec_on_credit(agent_conn *ac, uint32_t stream);
void exec_detach(agent_conn *ac);
void exec_reap(agent *ag);
void exec_poll(agent *ag);
void exec_pump(agent *ag);
void exec_sweep(agent *ag);
void exec_kill_all(agent *ag);

/* files.c */
void files_write(agent_conn *ac, const sbx_msg *m);
void files_read(agent_conn *ac, const sbx_msg *m);
void files_stat(agent_conn *ac, const sbx_msg *m);
int files_on_data(agent_conn *ac, const sbx_msg *m);
int files_cancel(agent_conn *ac, uint32_t stream);
void files_detach(agent_conn *ac);
void files_pump(agent *ag);
void files_sweep(agent *ag);

/* errors: a short code for an errno, used in ERROR replies */
const char *agent_errcode(int err);

#endif
