/* call.h — the call-kind interface: what a session needs from a call, and
 * the head every call starts with.
 *
 * A call kind (exec, file write/read/stat, forward)
 * is one source file that fills one const sbx_call_ops and embeds an
 * sbx_call as the first member of its own instance struct. The session
 * (session.c) holds every call through this head and calls the kind only
 * through c->ops; it never names a kind. A new kind plugs in like this:
 *
 *   typedef struct pty_call { sbx_call call; ...its own state... } pty_call;
 *   static const sbx_call_ops pty_ops = {.name = "pty", .request = ..., ...};
 *   sbx_call *sbx_pty(sbx_session *s, ...) {
 *           pty_call *p = (pty_call *)call_new(s, &pty_ops, sizeof *p);
 *           ...pack the request's map pairs into p->call.request...
 *           session_start_call(s, &p->call, err);
 *   }
 *
 * and touches no existing file but sbx.h (its public entry points).
 *
 * Ownership: the session owns the list of calls and the stream binding;
 * the kind owns its instance and its result until it hands the result to
 * its caller's on_done. A call ends exactly once, by the kind calling
 * call_finish (which calls ops->free and frees the instance). This file
 * and call.c depend on no other host source; session.c and the kinds
 * depend on them. */
#ifndef SBX_CALL_H
#define SBX_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"
#include "sbx.h"

/* ops->flags */
#define SBX_CALL_F_FORGET 1u /* its request carries the session's forget list
			      * (keys of finished calls the agent may drop) */

/* One call kind. Every function slot runs on the loop's thread with the
 * session entered (session_enter), so on_done callbacks may close the
 * session: it is destroyed only after the slot returns. Implementations
 * MUST NOT free the call themselves (they end it once, with call_finish,
 * after its on_done), MUST NOT end or fail another call, and MUST NOT
 * walk or change the session's list of calls. */
typedef struct sbx_call_ops {
	const char *name; /* "exec", "write": for messages and logs */
	int request;      /* the message type that starts it (SBX_MSG_EXEC, ...) */
	unsigned flags;   /* SBX_CALL_F_* */
	/* The agent capabilities (SBX_CAP_*, conn.h) a call of this kind
	 * needs: the session refuses to start one on an agent whose HELLO
	 * lacks any of them (call_check_caps), failing it "unsupported". 0:
	 * every agent serves it. A need that depends on the call's options
	 * (exec's tty, write's tree) stays the kind's own check. */
	uint32_t caps;
	/* Said (after the reason) when a dropped connection ends a started
	 * call of a kind that cannot re-attach. */
	const char *drop_note;

	/* A message on the call's stream (DATA, END, EXIT, RESULT, ERROR). An
	 * ending message reports to the caller and ends with call_finish. */
	void (*on_message)(sbx_call *c, const sbx_msg *m);
	/* The stream has credit and c->sending is set: send at most one chunk
	 * (sbx_conn_send_data & co.), clear c->sending when all is sent.
	 * NULL: the kind never uploads. */
	void (*pump)(sbx_call *c);
	/* The call fails with e (connection lost, cancelled before it started,
	 * overdue, session closed): report e through on_done, then
	 * call_finish. Required. */
	void (*fail)(sbx_call *c, const sbx_error *e);
	/* Releases what the instance owns (buffers, fds, temp files); the
	 * head and the instance itself are freed by call_finish. NULL: none. */
	void (*free)(sbx_call *c);
	/* After a reconnect (new HELLO from the same agent): ask the agent for
	 * the rest of a started call (new stream via call_bind). -1 when it
	 * cannot. NULL: the kind cannot survive a dropped connection; the
	 * session fails it with drop_note. */
	int (*reattach)(sbx_call *c);
} sbx_call_ops;

/* The head of every call. The session reads and writes these fields; a
 * kind reads them and sets request, npairs, sending and deadline_ms. */
struct sbx_call {
	const sbx_call_ops *ops;
	sbx_session *s;
	struct sbx_call *next, *prev; /* in the session's list of calls */
	uint32_t stream;              /* 0 until sent (and after a drop) */
	int started;
	sbx_buf request;              /* the request's map pairs, packed once */
	unsigned npairs;
	int sending;                  /* has bytes to upload */
	uint64_t deadline_ms;         /* the agent must have ended it by then; 0 = no limit */
};

/* call.c: the life of a call, shared by every kind */

/* A zeroed instance of size bytes (>= sizeof(sbx_call)) of kind ops,
 * linked into s's calls; NULL when out of memory. */
sbx_call *call_new(sbx_session *s, const sbx_call_ops *ops, size_t size);
/* Unlinks c, releases it (ops->free) and frees it: after its on_done. */
void call_finish(sbx_call *c);
/* Fails c through its kind (which reports and finishes it). */
void call_fail(sbx_call *c, const sbx_error *e);
/* Routes the agent's messages on stream id to c. */
void call_bind(sbx_call *c, uint32_t id);
/* Stops routing c's stream to it (c->stream becomes 0). */
void call_unbind(sbx_call *c);
/* The agent owes c its end by now + the session's overdue_ms. */
void call_set_deadline(sbx_call *c, uint64_t from_ms);
/* 0 when the session's agent (ready: it said HELLO) has every capability
 * c->ops->caps names; else -1 with e: SBX_E_REMOTE "unsupported", naming
 * the first missing capability and the agent's version. */
int call_check_caps(const sbx_call *c, sbx_error *e);

#endif
