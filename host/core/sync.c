/* sync.c — blocking wrappers: start a call, run the loop until it is done.
 * on_done is taken over here; the caller's other callbacks (on_output,
 * on_progress) still get the caller's ud, through the forwarders below. */
#include <string.h>

#include "internal.h"

typedef struct exec_wait {
	int done;
	sbx_exec_result *r;
	void (*user_output)(void *ud, int fd, const uint8_t *p, size_t n);
	void *user_ud;
} exec_wait;

static void exec_output(void *ud, int fd, const uint8_t *p, size_t n)
{
	exec_wait *w = ud;
	w->user_output(w->user_ud, fd, p, n);
}

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
	exec_wait w = {.r = r, .user_output = o->on_output, .user_ud = o->ud};
	sbx_exec_opts opts = *o;
	if (o->on_output)
		opts.on_output = exec_output;
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
	void (*user_progress)(void *ud, uint64_t done, uint64_t total);
	void *user_ud;
} file_wait;

static void file_progress(void *ud, uint64_t done, uint64_t total)
{
	file_wait *w = ud;
	w->user_progress(w->user_ud, done, total);
}

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
	file_wait w = {.r = r, .user_progress = o->on_progress, .user_ud = o->ud};
	sbx_file_opts opts = *o;
	if (o->on_progress)
		opts.on_progress = file_progress;
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
