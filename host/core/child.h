/* child.h — run a command to completion on the loop and collect what it
 * printed: helm installs and uninstalls, and anything else the host starts
 * and waits for without blocking the loop.
 *
 * The child gets /dev/null as stdin and leads its own process group, so a
 * timeout or a cancel kills it and everything it started. */
#ifndef SBX_CHILD_H
#define SBX_CHILD_H

#include <stddef.h>

#include "loop.h"

typedef struct sbx_child sbx_child;

typedef struct sbx_child_result {
	int exit_code;    /* 128 + signal when killed; -1 when the status is unknown */
	int timed_out;    /* killed after timeout_ms */
	const char *out;  /* stdout, NUL-terminated (at most the first max_out bytes) */
	size_t out_len;
	int out_truncated; /* it printed more than max_out (the rest was read and dropped) */
	const char *err;  /* the tail of stderr, NUL-terminated, trailing newlines cut */
} sbx_child_result;

typedef struct sbx_child_opts {
	const char *const *argv;
	const char *const *envp; /* NULL: inherit ours */
	int timeout_ms;          /* 0: none */
	size_t max_out;          /* stdout kept; 0: 1 MiB */
	/* Runs once from the loop; r is valid during the call. */
	void (*on_done)(void *ud, const sbx_child_result *r);
	void *ud;
} sbx_child_opts;

/* Starts the command. NULL with err when it could not start (on_done then
 * never runs). A program that does not exist exits 127 with the reason on
 * its stderr, through on_done like any other failure. */
sbx_child *sbx_child_run(sbx_loop *loop, const sbx_child_opts *o, char *err, size_t err_len);
/* Kills the command's process group and frees; on_done does not run. */
void sbx_child_cancel(sbx_child *c);

/* "exited with status 3", "was killed by signal 9", "did not finish within
 * 600 s and was killed", for messages. */
void sbx_child_describe(const sbx_child_result *r, int timeout_ms, char *out, size_t len);

#endif
