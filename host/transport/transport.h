/* transport.h — what a transport is: a byte pipe to an agent.
 *
 * A transport opens, moves bytes both ways and reports when it closed.
 * Everything above it (requests, flow control, files) is the session's
 * business, so a new transport is one small file. Transports built on file
 * descriptors (child processes, sockets) share fdpipe.c. */
#ifndef SBX_TRANSPORT_H
#define SBX_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"
#include "sbx.h"

typedef struct sbx_transport sbx_transport;

typedef struct sbx_transport_events {
	void (*on_data)(void *ud, const uint8_t *p, size_t n);
	void (*on_writable)(void *ud);
	/* The pipe is gone; why says how (e.g. how the agent process exited). */
	void (*on_closed)(void *ud, const char *why);
} sbx_transport_events;

typedef struct sbx_transport_ops {
	const char *name;
	/* Bytes taken (possibly fewer than n), or -1 when the pipe broke (an
	 * on_closed follows from the loop). */
	long (*write)(sbx_transport *t, const uint8_t *p, size_t n);
	/* Ask for on_writable when the pipe can take more. */
	void (*want_write)(sbx_transport *t, int on);
	/* Close and free; no callback runs afterwards. */
	void (*close)(sbx_transport *t);
} sbx_transport_ops;

struct sbx_transport {
	const sbx_transport_ops *ops;
	sbx_loop *loop;
	sbx_transport_events ev;
	void *ud;
};

/* fdpipe.c: a transport over a read fd and a write fd (may be equal).
 * When child > 0 the transport owns that process: on close it reports how
 * the process exited, with the tail of err_fd's output (its stderr). */
sbx_transport *sbx_fdpipe_new(sbx_loop *loop, int rfd, int wfd, pid_t child, int err_fd,
			      const char *what);
/* Runs cleanup(ud) at the end of close, after the child is gone (e.g. to
 * delete the container the child ran). */
void sbx_fdpipe_on_close(sbx_transport *t, void (*cleanup)(void *ud), void *ud);

/* spawn.c: run argv with stdin/stdout on a socketpair. isolate: new user,
 * pid, mount and network namespaces with a private /tmp. */
typedef struct sbx_spawn_opts {
	const char *const *argv;
	const char *const *envp; /* NULL: inherit (commands only; agents get sbx_sandbox_env) */
	const char *workdir;
	int isolate;
	const char *keep_dir; /* isolate: stays visible even under the private /tmp */
	int extra_fds[2];     /* each > 2 becomes the child's fd 3, 4 (a listening socket, a secret) */
} sbx_spawn_opts;
/* The environment an agent starts with: PATH, HOME, LANG and nothing of the
 * host's own (no AWS keys, no KUBECONFIG, no tokens). */
extern const char *const sbx_sandbox_env[];
sbx_transport *sbx_spawn_transport(sbx_loop *loop, const sbx_spawn_opts *o, char *err, size_t err_len);
/* The same start-up without a transport: stdio on the given fds. */
pid_t sbx_spawn_process(const sbx_spawn_opts *o, int in_fd, int out_fd, int err_fd, char *err, size_t err_len);

/* local/transport.c: an agent (`--stdio`) inside a new box (local/box.h);
 * bundle: a new private directory for it (NULL: a temporary one). The box
 * is deleted with the transport. */
sbx_transport *sbx_box_transport(sbx_loop *loop, const sbx_box_opts *o, const char *agent_path, const char *bundle,
				 char *err, size_t err_len);

/* connect.c: "unix:/path", "/path" or "HOST:PORT" (numeric IPv4). */
sbx_transport *sbx_connect_transport(sbx_loop *loop, const char *addr, char *err, size_t err_len);

/* k8s.c: the stdin/stdout of a pod exec over the API server's WebSocket. */
sbx_transport *sbx_k8s_transport(sbx_loop *loop, const sbx_k8s_conn *k, const sbx_k8s_exec *x, char *err,
				 size_t err_len);
/* The same exec, to dial again after a drop (a session's redial hook): a
 * copy of k and x taken now. */
typedef struct sbx_k8s_dialer sbx_k8s_dialer;
sbx_k8s_dialer *sbx_k8s_dialer_new(sbx_loop *loop, const sbx_k8s_conn *k, const sbx_k8s_exec *x);
sbx_transport *sbx_k8s_dialer_dial(void *dialer, char *err, size_t err_len);
void sbx_k8s_dialer_free(void *dialer);

#endif
