/* sync.c — blocking wrappers: start a call, run the loop until it is done. */
#include <string.h>

#include "internal.h"

typedef struct exec_wait {
	int done;
	sbx_exec_result *r;
	void (*user_done)(void *ud, sbx_exec_result *r);
	void *user_ud;
} exec_wait;

static void exec_done(void *ud, sbx_exec_result *r)
{
	exec_wait *w = ud;
	*w->r = *r;
	r->out = r->err = NULL; /* ownership moves to the caller's result */
	w->done = 1;
}

int sbx_exec_sync(sbx_session *s, const sbx_exec_opts *o, sbx_exec_result *r)
{
	memset(r, 0, sizeof *r);
	exec_wait w = {.r = r};
	sbx_exec_opts opts = *o;
	opts.on_done = exec_done;
	opts.ud = &w;
	if (!sbx_exec(s, &opts, &r->error))
		return -1;
	while (!w.done && sbx_loop_run_once(s->loop, -1) >= 0)
		;
	return r->error.status == SBX_OK ? 0 : -1;
}

typedef struct file_wait {
	int done;
	sbx_file_result *r;
} file_wait;

static void file_done(void *ud, sbx_file_result *r)
{
	file_wait *w = ud;
	*w->r = *r;
	r->data = NULL;
	w->done = 1;
}

static int file_sync(sbx_session *s, const sbx_file_opts *o, sbx_file_result *r, int is_write)
{
	memset(r, 0, sizeof *r);
	file_wait w = {.r = r};
	sbx_file_opts opts = *o;
	opts.on_done = file_done;
	opts.ud = &w;
	sbx_call *c = is_write ? sbx_write_file(s, &opts, &r->error) : sbx_read_file(s, &opts, &r->error);
	if (!c)
		return -1;
	while (!w.done && sbx_loop_run_once(s->loop, -1) >= 0)
		;
	return r->error.status == SBX_OK ? 0 : -1;
}

int sbx_write_file_sync(sbx_session *s, const sbx_file_opts *o, sbx_file_result *r)
{
	return file_sync(s, o, r, 1);
}

int sbx_read_file_sync(sbx_session *s, const sbx_file_opts *o, sbx_file_result *r)
{
	return file_sync(s, o, r, 0);
}
