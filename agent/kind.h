/* kind.h — the job-kind interface: what the agent's loop (serve.c) needs
 * from the code that serves one kind of request (exec.c: commands,
 * files.c: file transfers, forward.c: TCP connections to its loopback).
 *
 * A kind keeps its own objects (jobs, transfers) in its own list hung on
 * struct agent and drives them in the loop's phases through the slots
 * below. serve.c calls kinds only through these slots, in the order of the
 * table kinds.c hands to agent_run, and never names one. A new kind plugs
 * in like this:
 *
 *   pty.c:   static int pty_request(agent_conn *ac, const sbx_msg *m) {...}
 *            ...
 *            const agent_kind agent_pty_kind = {.name = "pty",
 *                    .request = pty_request, .stream = ..., ...};
 *   kind.h:  extern const agent_kind agent_pty_kind;
 *   kinds.c: one more entry in the table;
 *   agent.h: the list of its objects in struct agent (if it keeps any).
 *
 * No existing dispatch changes. Ownership: a kind allocates and frees its
 * own objects; it frees them only in its sweep slot (the loop's last
 * phase), so no poll callback ever sees a freed object. Every slot may be
 * NULL. Slots run on the agent's one thread; they MUST NOT block, MUST NOT
 * free an agent_conn (a failed write marks the connection dead for the
 * loop to sweep) and MUST NOT touch another kind's objects. */
#ifndef SBX_AGENT_KIND_H
#define SBX_AGENT_KIND_H

#include "agent.h"

typedef struct agent_kind {
	const char *name; /* "exec", "files" */
	/* The capabilities (SBX_CAP_*, conn.h) this kind offers: kinds.c adds
	 * them to the agent's HELLO, caps always, listen_caps only when it
	 * listens (on stdio it serves one connection and keeps nothing across
	 * connections). A new kind's bit needs no line in main.c. */
	uint32_t caps;
	uint32_t listen_caps;

	/* A request that opens a stream (EXEC, ATTACH, WRITE, READ, STAT,
	 * ...): serve it (replying with ERROR if it cannot start) and return
	 * 1, or return 0 when the type is not this kind's. */
	int (*request)(agent_conn *ac, const sbx_msg *m);
	/* DATA, END, SIGNAL or CANCEL on a stream: return 1 when one of this
	 * kind's live objects owns the stream (and the message was handled,
	 * CANCEL included: the kind replies ERROR cancelled), else 0. A CANCEL
	 * that no kind takes is answered by the loop. */
	int (*stream)(agent_conn *ac, const sbx_msg *m);
	/* The host granted credit on a stream (may not be this kind's). */
	void (*credit)(agent_conn *ac, uint32_t stream);
	/* ac is gone: detach from it (keep or abandon what it owned). */
	void (*detach)(agent_conn *ac);

	/* The loop's phases, once per iteration in this order: poll (add fds
	 * with agent_watch, deadlines with agent_wake_at), then after poll()
	 * pump (move what credit and pipes allow), then sweep (free what
	 * finished). */
	void (*poll)(agent *ag);
	void (*pump)(agent *ag);
	void (*sweep)(agent *ag);
	/* SIGCHLD arrived: collect exited children of this kind's. */
	void (*reap)(agent *ag);
	/* The agent is exiting: stop what still runs. */
	void (*stop)(agent *ag);
} agent_kind;

/* The kinds of this agent (kinds.c lists them for agent_run). */
extern const agent_kind agent_exec_kind;
extern const agent_kind agent_files_kind;
extern const agent_kind agent_forward_kind;
extern const agent_kind agent_detached_kind;

#endif
