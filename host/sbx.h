/* sbx.h — libsbx, the sbx host controller library. This is the public API.
 *
 * A session drives one agent over one byte stream (a child process, a
 * command such as `kubectl exec -i`, or a socket to a listening agent).
 * Every session runs on an sbx_loop; one loop drives any number of
 * sessions. Calls are asynchronous: they return at once and report through
 * an on_done callback run by the loop. The *_sync wrappers run the loop
 * until their call is done, for simple programs.
 *
 * Memory: results own their buffers; free them with sbx_*_result_free. */
#ifndef SBX_H
#define SBX_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"

#define SBX_DEFAULT_OUTPUT_LIMIT (10u * 1024 * 1024) /* per exec stream */
#define SBX_DEFAULT_READ_LIMIT (100u * 1024 * 1024)
#define SBX_OUTPUT_UNLIMITED SIZE_MAX /* sbx_exec_opts.output_limit: no limit */

/* What went wrong, as a shell user or a Python caller would classify it. */
typedef enum sbx_status {
	SBX_OK = 0,
	SBX_E_REMOTE,    /* the agent refused: see err_no / code (not_found, permission, ...) */
	SBX_E_TIMEOUT,   /* the command ran past its timeout and was killed */
	SBX_E_LIMIT,     /* output or file over its limit (output kept, truncated) */
	SBX_E_CONN,      /* the connection to the agent failed or was closed */
	SBX_E_LOCAL,     /* a local file could not be read or written */
	SBX_E_CANCELLED, /* the caller cancelled the call */
	SBX_E_INVALID,   /* bad arguments */
} sbx_status;

typedef struct sbx_error {
	sbx_status status;
	int err_no;        /* errno (Linux numbering) when one applies */
	char code[32];     /* the agent's short code, e.g. "not_found" */
	char message[512]; /* a sentence saying what failed and why */
} sbx_error;

typedef struct sbx_session sbx_session;
typedef struct sbx_call sbx_call;

/* ---------------------------------------------------------------- sessions */

/* Compression modes (the wire values; common/adapt.h defines the same). */
#define SBX_COMPRESS_AUTO 0   /* deflate while the link is slower than zlib */
#define SBX_COMPRESS_NEVER 1
#define SBX_COMPRESS_ALWAYS 2 /* deflate every chunk that shrinks */

typedef struct sbx_session_opts {
	int compress;        /* SBX_COMPRESS_*, both directions; default AUTO */
	uint64_t ping_ms;    /* heartbeat interval; default 15000, 0 = default */
	uint64_t dead_ms;    /* fail after this much silence; default 60000 */
	/* An agent that has not ended an exec this long after its timeout
	 * (and grace), or a call this long after it was cancelled, is not
	 * honest: the call fails with SBX_E_TIMEOUT. Output still arriving
	 * keeps it alive. Default 30000. */
	uint64_t overdue_ms;
	int reconnect;       /* sockets only: reconnect and re-attach running execs */
	/* The sandbox's secret, for an agent that asks the host to prove it
	 * holds one (`sbx-agent --listen ... --secret-file F`; docs/agent-auth.md):
	 * secret_len bytes (16..64, copied), else read from secret_file (hex,
	 * mode 0600) when the session is created. Neither: an agent that asks
	 * refuses the session (status SBX_E_CONN, code "auth", EACCES). An
	 * agent that does not ask never sees it. */
	const unsigned char *secret;
	size_t secret_len;
	const char *secret_file;
	/* Called once when the session fails for good (not for a reconnect). */
	void (*on_closed)(sbx_session *s, const sbx_error *why, void *ud);
	void *ud;
} sbx_session_opts;

/* How a local sandbox is contained: an OCI container run by a kept
 * runtime, with a read-only view of the host's OS (or an unpacked image),
 * a private writable /etc, /root, /tmp, ..., root inside mapped to an
 * unprivileged host id range, Docker's default capabilities, no_new_privs,
 * a seccomp filter, no network, and cgroup limits. All fields optional. */
typedef struct sbx_box_opts {
	const char *runtime;    /* "crun", "runc" or "runsc" (gVisor); NULL or "auto":
				   $SBX_RUNTIME, else crun where it starts here, else runc */
	const char *rootfs;     /* a root filesystem to run on (an unpacked image);
				   NULL: the host's /usr, /bin, /lib*, /sbin read-only */
	uint64_t memory;        /* bytes; 0: 2 GiB; UINT64_MAX: no limit */
	long pids;              /* 0: 1024; -1: no limit */
	double cpus;            /* CPUs as a hard quota; 0: none, a 0.5 CPU share; <0: no share */
	const char *workdir;    /* commands' working directory inside; NULL: /root */
	const char *user;       /* commands' default user inside; NULL: root */
	const char *const *env; /* extra "K=V" for every command (compose environment) */
	const char *hostname;   /* NULL: "sandbox" */
} sbx_box_opts;
#define SBX_BOX_DEFAULT_MEMORY (2ull << 30)
#define SBX_BOX_DEFAULT_PIDS 1024
#define SBX_BOX_DEFAULT_CPU_SHARE 0.5

/* A local sandbox: the agent inside a container on a socketpair (see
 * sbx_box_opts), or with host = 1 a plain host process. */
typedef struct sbx_local_opts {
	const char *agent_path; /* default: $SBX_AGENT, else sbx-agent next to the program */
	const char *workdir;    /* contained: a new private host directory for the
				   container's bundle (NULL: one under $TMPDIR), removed
				   at close; host: the agent's working directory */
	const sbx_box_opts *box; /* contained: how (NULL: the defaults) */
	/* host = 1: NO containment: the agent and its commands run as this
	 * process's user with its files, network and ids (debugging, trusted
	 * code). isolate then adds new user, pid, mount and net namespaces and
	 * a private /tmp (a partial measure: the host's files stay visible). */
	int host;
	int isolate;
	const char *const *env; /* host: environment for the agent (NULL: a minimal one) */
} sbx_local_opts;

sbx_session *sbx_session_local(sbx_loop *loop, const sbx_local_opts *lo, const sbx_session_opts *so,
			       sbx_error *err);
/* Any command whose stdin/stdout reach `sbx-agent --stdio`. */
sbx_session *sbx_session_command(sbx_loop *loop, const char *const *argv, const sbx_session_opts *so,
				 sbx_error *err);
/* A listening agent: "unix:/path", "/path" or "127.0.0.1:PORT". */
sbx_session *sbx_session_connect(sbx_loop *loop, const char *addr, const sbx_session_opts *so,
				 sbx_error *err);

/* An agent in a Kubernetes pod, reached over the API server's pod exec
 * WebSocket (v5.channel.k8s.io, else v4): the agent protocol rides on the
 * exec's stdin/stdout. k8s says how to reach the API server (a kubeconfig
 * fills it); strings are copied. */
typedef struct sbx_k8s_conn {
	const char *server;          /* "https://host:port" (a path prefix is kept) */
	const char *ca_pem;          /* CAs to trust (PEM); NULL: the system store */
	const char *client_cert_pem; /* client certificate and key (PEM), or NULL */
	const char *client_key_pem;
	const char *token;           /* bearer token, or NULL */
	const char *tls_server_name; /* verify the server as this name, or NULL */
	const char *proxy_url;       /* NULL: from the environment; "" = none */
	int insecure;                /* insecure-skip-tls-verify */
	/* Credentials that expire (exec plugins, projected service-account
	 * token files; see host/backends/k8s/token_source.h): when set, each redial
	 * first asks token_source(token_ud, err, err_len) for the current bearer
	 * token (valid until its next call; NULL with err: the redial fails with
	 * it). sbx_session_k8s() takes token_ud, even when it fails, and frees
	 * it with token_free. */
	const char *(*token_source)(void *ud, char *err, size_t err_len);
	void *token_ud;
	void (*token_free)(void *ud);
} sbx_k8s_conn;

typedef struct sbx_k8s_exec {
	const char *ns;              /* namespace; NULL = "default" */
	const char *pod;             /* required */
	const char *container;       /* NULL: the pod's default container */
	const char *const *argv;     /* NULL: {"sbx-agent", "--stdio"} */
	uint64_t ping_ms;            /* WebSocket pings; 0 = 20000 */
	/* The fallback transport: when set, the exec runs as `KUBECTL... exec
	 * -i -n NS POD [-c C] -- ARGV` (e.g. {"kubectl", "--context", "c",
	 * NULL}), with our environment, instead of over the native WebSocket
	 * (k is then not used). */
	const char *const *kubectl;
} sbx_k8s_exec;

sbx_session *sbx_session_k8s(sbx_loop *loop, const sbx_k8s_conn *k, const sbx_k8s_exec *x,
			     const sbx_session_opts *so, sbx_error *err);

/* Runs the loop until the agent's HELLO arrived. 0, or -1 with err set. */
int sbx_session_wait_ready(sbx_session *s, double timeout_s, sbx_error *err);
int sbx_session_ready(const sbx_session *s);
/* The agent's identity once ready: version, boot id (changes when the
 * agent restarts), pid, uid, arch. */
const char *sbx_session_agent_version(const sbx_session *s);
const char *sbx_session_boot_id(const sbx_session *s);
/* NULL while healthy, else why the session failed. */
const sbx_error *sbx_session_failure(const sbx_session *s);
size_t sbx_session_pending(const sbx_session *s); /* calls in flight */
/* Fails every pending call (SBX_E_CANCELLED), closes the transport, frees. */
void sbx_session_close(sbx_session *s);

/* ---------------------------------------------------------------- exec */

typedef struct sbx_exec_result {
	sbx_error error;     /* SBX_OK when the command ran to an exit */
	int exit_code;       /* 128 + signal when killed by a signal */
	int signal;
	int timed_out;
	int truncated;       /* some stream hit the output limit */
	uint8_t *out;        /* stdout (NUL-terminated for convenience) */
	size_t out_len;
	uint8_t *err;        /* stderr */
	size_t err_len;
	uint64_t duration_ms;
} sbx_exec_result;

typedef struct sbx_exec_opts {
	const char *const *argv;  /* required; run directly, no shell */
	const char *const *env;   /* "K=V" overlay for this call, or NULL */
	const char *cwd;          /* relative: against the sandbox workdir */
	const char *user;         /* "name", "uid", "name:group", "uid:gid" */
	double timeout_s;         /* 0 = none; at most a year (else SBX_E_INVALID) */
	double grace_s;           /* SIGTERM -> SIGKILL delay; default 2 */
	const void *input;        /* written to stdin, then stdin is closed */
	size_t input_len;
	int stream_stdin;         /* keep stdin open for sbx_call_write_stdin */
	/* A terminal: the command runs on a new pty (its controlling terminal,
	 * stdin, stdout and stderr) of rows x cols (0: 24 x 80); its output
	 * arrives as stdout; bytes written to stdin are typed into it (Ctrl-C
	 * as 0x03 interrupts it). sbx_call_resize changes the size. Needs an
	 * agent with the "pty" capability (others run it without a tty). */
	int tty;
	unsigned rows, cols;
	size_t output_limit;      /* per stream; 0 = default 10 MiB; SBX_OUTPUT_UNLIMITED:
				     none (sensible with on_output + no_accumulate) */
	/* Streaming: called as output arrives (fd 1 or 2). Output is still
	 * accumulated in the result unless no_accumulate is set. */
	void (*on_output)(void *ud, int fd, const uint8_t *p, size_t n);
	int no_accumulate;
	/* Flow control follows the caller: output handed to on_output is not
	 * credited back to the agent until the caller reports it consumed with
	 * sbx_call_consumed. The agent then stops reading the command's pipes
	 * (the command blocks on write) once the session's window (1 MiB by
	 * default: stdout and stderr together) is unconsumed, so the caller
	 * holds at most that much. Default (0): credit as output arrives. */
	int manual_credit;
	void (*on_done)(void *ud, sbx_exec_result *r); /* r is freed after it returns */
	void *ud;
} sbx_exec_opts;

/* Starts a command. Returns a handle valid until on_done has returned, or
 * NULL (on_done is then never called) with err set. */
sbx_call *sbx_exec(sbx_session *s, const sbx_exec_opts *o, sbx_error *err);
int sbx_call_write_stdin(sbx_call *c, const void *p, size_t n);
int sbx_call_close_stdin(sbx_call *c);
/* Bytes given to sbx_call_write_stdin not yet sent (for back-pressure). */
size_t sbx_call_stdin_pending(const sbx_call *c);
int sbx_call_signal(sbx_call *c, int signo);
/* With manual_credit: the caller has consumed n more bytes of the output
 * on_output gave it (any fd, in any grouping); credit for them goes back
 * to the agent. Never grants more than was received on the current
 * stream. -1 when c is not an exec started with manual_credit. */
int sbx_call_consumed(sbx_call *c, size_t n);

/* A tty exec's new window size (the command gets SIGWINCH). 0, or -1 when
 * c is no tty exec, is not running, or the agent cannot resize. */
int sbx_call_resize(sbx_call *c, unsigned rows, unsigned cols);
/* Gives up on a call: the agent kills a command / drops a transfer, and
 * on_done reports SBX_E_CANCELLED. */
void sbx_call_cancel(sbx_call *c);

/* Blocking: fills *r (free it with sbx_exec_result_free). 0 when the
 * command ran (any exit code), -1 otherwise (r->error says why). */
int sbx_exec_sync(sbx_session *s, const sbx_exec_opts *o, sbx_exec_result *r);
void sbx_exec_result_free(sbx_exec_result *r);

/* ---------------------------------------------------------------- detached commands */

/* A listening agent (capability "detach") runs commands that belong to no
 * connection: they outlive their caller (until they end, are killed, or
 * the sandbox goes), keep the last 1 MiB of their output in a ring, and
 * are named by an id of 12 hex digits. These calls block (run the loop);
 * each fails with SBX_E_REMOTE, code "unsupported", on an agent without
 * the capability (one on stdio). */

/* Starts o's command detached (argv, env, cwd, user, timeout_s, grace_s,
 * tty/rows/cols; no stdin, no output limit). id receives its id. */
int sbx_exec_detached_sync(sbx_session *s, const sbx_exec_opts *o, char id[16], sbx_error *err);

typedef struct sbx_job {
	char id[16];
	long pid;
	uint64_t age_ms;      /* since it started */
	int running;          /* else exit_code/signal say how it ended */
	int exit_code, signal;
	uint64_t dropped;     /* output bytes the ring let go */
	char command[128];    /* argv joined by spaces, cut short (the agent's text: untrusted) */
} sbx_job;

/* The agent's detached commands, running and recently ended. *jobs is
 * malloc'd (free it), *n its length. 0, or -1 with err. */
int sbx_jobs_sync(sbx_session *s, sbx_job **jobs, size_t *n, sbx_error *err);
/* Sends signo to the command's process group. *sent = 0 when it had
 * already ended. 0, or -1 with err (code "not_found": no such id). */
int sbx_job_kill_sync(sbx_session *s, const char *id, int signo, int *sent, sbx_error *err);

typedef struct sbx_logs_opts {
	const char *id;
	int follow;  /* 0: what is retained now; 1: then what follows, until it ends */
	/* The output, in order (fd 1 or 2). Return < 0 to stop (the call then
	 * ends with SBX_E_CANCELLED). Credit goes back as it returns. */
	int (*on_output)(void *ud, int fd, const uint8_t *p, size_t n);
	void *ud;
} sbx_logs_opts;

typedef struct sbx_logs_result {
	sbx_error error;
	int running;          /* it still runs (no follow); else: */
	int exit_code, signal, timed_out;
	uint64_t dropped[3];  /* bytes of stdout [1] / stderr [2] the ring had let go */
} sbx_logs_result;

int sbx_job_logs_sync(sbx_session *s, const sbx_logs_opts *o, sbx_logs_result *r);

/* ---------------------------------------------------------------- files */

typedef struct sbx_file_result {
	sbx_error error;
	uint64_t size;       /* bytes moved */
	uint8_t *data;       /* read into memory: the contents */
	size_t len;
} sbx_file_result;

typedef struct sbx_file_opts {
	const char *path;        /* in the sandbox; relative to its workdir */
	/* Write: the source is data/len, else fd (read to EOF), else local_path.
	 * Read: the sink is fd, else local_path (written atomically), else memory.
	 * A pipe or socket source is read only when the loop says it is
	 * readable. A sink fd is written as it is: make it O_NONBLOCK when a
	 * slow reader may fill it, and the transfer then waits on the loop
	 * (its credit withheld) instead of stalling every session in write(). */
	const void *data;
	size_t len;
	int fd;                  /* -1 when unused (0 is a valid fd: set it) */
	const char *local_path;
	uint64_t limit;          /* read: default 100 MiB; SIZE_MAX = none. write: 0 = none, else a
	                          * source over it is cancelled (SBX_E_LIMIT) */
	const char *user;        /* write: new files and directories owned by */
	int mode;                /* write: permission bits, -1 = keep/0644 */
	/* Durability: a write is reported done only once the agent fsynced
	 * the file and its directory, a read into local_path once we did the
	 * same; a power loss then leaves the old file or the new one, never
	 * an empty or missing one. no_fsync = 1 skips both fsyncs (faster;
	 * the write is still atomic while the machine stays up). */
	int no_fsync;
	/* tree = 1 (agent capability "tree"): local_path is a directory tree,
	 * file or symlink copied as one stream with modes and symlinks kept
	 * (docs/PROTOCOL.md §10.9). A read creates local_path (merging into a
	 * real directory there, never replacing a symlink, device or
	 * directory with a file); a write creates `path` likewise in the
	 * sandbox. limit then bounds the stream's bytes either way (0: a read
	 * takes the default, a write has none). */
	int tree;
	void (*on_progress)(void *ud, uint64_t done, uint64_t total);
	void (*on_done)(void *ud, sbx_file_result *r);
	void *ud;
} sbx_file_opts;

#define SBX_FILE_OPTS_INIT {.fd = -1, .mode = -1}

sbx_call *sbx_write_file(sbx_session *s, const sbx_file_opts *o, sbx_error *err);
sbx_call *sbx_read_file(sbx_session *s, const sbx_file_opts *o, sbx_error *err);
int sbx_write_file_sync(sbx_session *s, const sbx_file_opts *o, sbx_file_result *r);
int sbx_read_file_sync(sbx_session *s, const sbx_file_opts *o, sbx_file_result *r);
void sbx_file_result_free(sbx_file_result *r);

typedef struct sbx_stat_result {
	sbx_error error;
	int exists, is_dir, is_link;
	uint32_t mode, uid, gid;
	uint64_t size;
	int64_t mtime_ns;
} sbx_stat_result;

int sbx_stat_sync(sbx_session *s, const char *path, sbx_stat_result *r);

/* ---------------------------------------------------------------- port forwarding */

typedef struct sbx_forward_result {
	sbx_error error;   /* SBX_OK when both sides closed their ends */
	uint64_t sent;     /* bytes from the local socket to the remote port */
	uint64_t received; /* bytes from the remote port to the local socket */
} sbx_forward_result;

typedef struct sbx_forward_opts {
	unsigned port;     /* the remote port, 1..65535, on the sandbox's loopback */
	/* Non-zero: the target is the agent itself (port and host unused), a
	 * new connection to it on which o->fd's peer runs its own session
	 * (sbx_session_connect on a socket that reaches o->fd): many sessions
	 * over one connection. Needs the agent's "agent-forward" capability. */
	int agent;
	const char *host;  /* NULL: 127.0.0.1; else a loopback address ("::1"); others are refused */
	/* A connected local stream socket. The call owns it from sbx_forward_open
	 * on (made non-blocking; closed when the call ends, or at once when the
	 * call cannot start). EOF on it half-closes the remote connection and
	 * the remote EOF shuts down its writing side (shutdown SHUT_WR). */
	int fd;
	void (*on_done)(void *ud, const sbx_forward_result *r); /* r is freed after it returns */
	void *ud;
} sbx_forward_opts;

/* Connects to o->port inside the sandbox and moves bytes between it and
 * o->fd, both ways, under the stream's flow control (a slow reader on
 * either side holds at most one window). The session must be ready; an
 * agent without the "forward" capability gives SBX_E_REMOTE "unsupported".
 * A refused port ends the call with SBX_E_REMOTE, code "refused" (errno
 * ECONNREFUSED). sbx_call_cancel closes both sides. Returns a handle valid
 * until on_done has returned, or NULL with err set (o->fd closed). */
sbx_call *sbx_forward_open(sbx_session *s, const sbx_forward_opts *o, sbx_error *err);

/* ---------------------------------------------------------------- misc */

const char *sbx_status_name(sbx_status s);
/* Where sbx finds what it ships: $SBX_AGENT / $SBX_CHART, else next to the
 * running code (a build tree, a `make install` prefix's libexec/sbx and
 * share/sbx, the Python wheel's package data), else (agent only) $PATH.
 * The path found, or the bare name "sbx-agent" / "chart/agent-env" when
 * none was; the returned string lives until the next call. */
const char *sbx_default_agent_path(void);
const char *sbx_default_chart_path(void);
/* What the last such search looked at (chart: 1), for an error message. */
const char *sbx_locate_tried(int chart);
/* 0 when path is an executable agent, else -1 and err says where the
 * search looked and what to set. */
int sbx_agent_check(const char *path, char *err, size_t err_len);

#endif
