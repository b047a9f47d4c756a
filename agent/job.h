/* job.h — a command the agent runs (exec.c), as the exec kind and the
 * detached commands' requests (detached.c) both see it.
 *
 * exec.c creates, drives and frees jobs; detached.c only reads a detached
 * job's ring (its outlog) and state, signals it, and hangs its readers
 * (LOGS streams) on it. A job with readers is not freed. */
#ifndef SBX_AGENT_JOB_H
#define SBX_AGENT_JOB_H

#include "agent.h"
#include "outlog.h"

#define AGENT_RING_CAP (1024 * 1024) /* a detached command's retained output */
#define AGENT_DETACHED_MAX 256       /* detached commands kept at once */

/* A LOGS stream reading a detached job's ring (detached.c). */
typedef struct logs_reader {
	struct logs_reader *next;
	agent_conn *ac;        /* NULL once its connection went */
	uint32_t stream;
	int follow;            /* until the command ends, else what is there now */
	uint64_t seq;          /* next byte of the ring's output (both fds) */
	uint64_t until;        /* no follow: the end of the output when it asked */
	uint64_t fd_next[3];   /* next byte expected per fd (gaps = dropped) */
	uint64_t skipped[3];   /* bytes this reader never got (dropped before) */
	int done;              /* final sent (or connection gone): swept */
} logs_reader;

/* A running command, or a finished one kept for a host to re-attach. */
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
	int tty;               /* out_fd is a pty master (RESIZE applies) */
	int64_t orphan_ms;     /* detached and running: killed after this (-1: kept) */
	uint64_t orphan_at;    /* when a detached command is killed (0: not set) */
	/* Started detached (EXEC detach, detached.c): it belongs to no
	 * connection, its log is a ring of AGENT_RING_CAP, read by readers. */
	char id[16];           /* "" for a command a host owns */
	char cmdline[128];     /* argv joined by spaces, cut short: for JOBS */
	uint64_t dropped[3];   /* ring bytes dropped per fd */
	struct logs_reader *readers;
} job;

/* job.c: a fresh detached command's id (12 hex digits). */
void detached_new_id(char out[16]);
/* job.c: the EXIT map's fields of a finished job: code, signal,
 * timed_out, duration_ms (4 pairs). */
void job_pack_exit(msgpack_packer *pk, const job *j);
/* Finished: reaped and its output read to the end. */
int job_finished(const job *j);

#endif
