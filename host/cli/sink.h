/* sink.h — `sbx exec`'s stdout/stderr, paced by the reader (sink.c). */
#ifndef SBX_CLI_SINK_H
#define SBX_CLI_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "loop.h"
#include "sbx.h"

typedef struct cli_sink {
	sbx_loop *loop;
	sbx_call *call;       /* the exec (manual_credit); NULL once it is done */
	sbx_buf pending[3];   /* [1] stdout, [2] stderr: written when the fd can take it */
	int watching[3];
	int broken;           /* a reader went away (EPIPE): output is dropped from now on */
	void (*on_broken)(void *ud); /* told once, when broken is set */
	void *ud;
} cli_sink;

void cli_sink_init(cli_sink *k, sbx_loop *loop);
/* The command's output on fd (1 or 2): written, credited as written. */
void cli_sink_output(cli_sink *k, int fd, const uint8_t *p, size_t n);
/* At the end: writes what is left (waiting for the fds) and frees. */
void cli_sink_drain(cli_sink *k);

#endif
