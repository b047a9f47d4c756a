/* internal.h — libsbx's private structures: the session, and the helpers
 * every host source shares. Only the host sources include this; the public
 * API is sbx.h; calls and their kinds are described in call.h. */
#ifndef SBX_INTERNAL_H
#define SBX_INTERNAL_H

#include <stdio.h>

#include "buf.h"
#include "conn.h"
#include "sbx.h"
#include "transport/transport.h"

#define HOST_HIGH_WATER (256 * 1024) /* stop feeding uploads past this queue */
/* An agent that lets more than this pile up unread (answers to its own
 * PINGs, WINDOW grants, requests) fails: it is not reading. */
#define HOST_OUT_MAX (4 * 1024 * 1024)
#define FORGET_MAX 64

struct sbx_session {
	sbx_loop *loop;
	sbx_transport *t;
	sbx_conn *conn;
	sbx_session_opts opts;   /* opts.secret/secret_file are not kept: see key */
	sbx_auth_key key;        /* the sandbox's secret (len 0: none) */
	char addr[256];          /* reconnectable sessions: where the agent listens */
	char boot_id[64];
	char version[32];
	sbx_call *calls;         /* every live call */
	sbx_timer *tick;         /* housekeeping: 1 s while busy, the next heartbeat when idle */
	uint64_t tick_due;       /* when tick fires */
	sbx_timer *retry;
	/* Reconnecting through something other than addr (a new SSM session). */
	sbx_transport *(*redial)(void *ud, char *err, size_t err_len);
	void *redial_ud;
	void (*redial_free)(void *ud);
	unsigned redial_tries, redial_backoff_ms;
	uint64_t drained_ms;     /* last time the agent took bytes (or none waited) */
	int reconnect_tries;
	int failed;
	sbx_error failure;
	int busy;                /* inside a callback: defer destruction */
	int in_transport;        /* inside a transport callback: defer its close */
	int close_pending;
	unsigned key_counter;
	char key_prefix[20];
	char forget[FORGET_MAX][40];
	int nforget;
};

/* session.c */
/* A session over any transport (it takes t: closed when this fails; NULL
 * with err set: out of memory, or a bad secret in so). */
sbx_session *session_new(sbx_loop *loop, sbx_transport *t, const sbx_session_opts *so, sbx_error *err);
void session_flush(sbx_session *s);
void session_pump(sbx_session *s);
/* Sends a call's request now or once the agent is ready. With err, a
 * failure to start finishes the call silently and fills err (-1). */
int session_start_call(sbx_session *s, sbx_call *c, sbx_error *err);
/* A finished call's key the agent may drop: sent with the next request of
 * a kind that carries the forget list (SBX_CALL_F_FORGET in call.h). */
void session_forget(sbx_session *s, const char *key);
/* Make s reconnect after a drop through redial (which returns a transport,
 * possibly still connecting), like a listening agent's socket: running
 * commands are re-attached after the new HELLO. tries in a row, the first
 * after backoff_ms, doubling (capped at 64x). free_ud(ud) when s goes. */
void session_set_redial(sbx_session *s, sbx_transport *(*redial)(void *ud, char *err, size_t err_len), void *ud,
			void (*free_ud)(void *ud), unsigned tries, unsigned backoff_ms);
void session_enter(sbx_session *s);
void session_leave(sbx_session *s);

/* exec.c: packs a command's EXEC pairs (argv, env, cwd, user, timeout,
 * grace, tty) into pk; how many pairs. */
unsigned exec_pack_command(msgpack_packer *pk, const sbx_exec_opts *o);

/* durable.c: fsync of a file (0, or -1 with errno; a file system without
 * fsync is fine) and of the directory holding path's last component. */
int sbx_fsync_fd(int fd);
int sbx_fsync_parent(const char *path);

/* error.c */
/* A session over a transport made elsewhere (the SSM data channel). It
 * takes the transport, and closes it when it cannot start. */
sbx_session *sbx_session_transport(sbx_loop *loop, sbx_transport *t, const sbx_session_opts *so, sbx_error *err);
void sbx_error_set(sbx_error *e, sbx_status st, int err_no, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void sbx_error_from_msg(sbx_error *e, const sbx_msg *m);

#endif
