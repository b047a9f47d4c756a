/* jobs.c — the detached-command call kinds (call.h): starting one (EXEC
 * with `detach`), listing them (JOBS), signalling one (KILL) and reading
 * one's retained output (LOGS), with their blocking entry points (sbx.h).
 * Four ops over one instance struct; each call writes its answer straight
 * into the caller's result and sets a done flag the wrapper waits on. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "internal.h"

typedef struct job_wait {
	int done;
	sbx_error error;
} job_wait;

typedef struct job_call {
	sbx_call call;
	job_wait *w;
	char *id_out;                 /* spawn */
	sbx_job **jobs;               /* list */
	size_t *njobs;
	int *sent;                    /* kill */
	const sbx_logs_opts *lo;      /* logs */
	sbx_logs_result *lr;
	int stopped;                  /* logs: the caller said stop */
} job_call;

static job_call *job_of(sbx_call *c) { return (job_call *)c; }

static void job_end(sbx_call *c, const sbx_error *e)
{
	job_call *j = job_of(c);
	if (e)
		j->w->error = *e;
	j->w->done = 1;
	call_finish(c);
}

static void job_fail(sbx_call *c, const sbx_error *e)
{
	job_end(c, e);
}

/* ERROR ends any of them; a stopped LOGS reports the caller's stop. */
static void on_error(sbx_call *c, const sbx_msg *m)
{
	sbx_error e;
	sbx_error_from_msg(&e, m);
	if (job_of(c)->stopped)
		sbx_error_set(&e, SBX_E_CANCELLED, ECANCELED, "cancelled", "stopped by the caller");
	job_end(c, &e);
}

/* An id the agent could have made (12 hex digits, or any 1..15 of
 * [0-9a-z]): anything else is refused before it goes out. */
static int bad_id(const char *id, sbx_error *err)
{
	size_t n = id ? strlen(id) : 0;
	int ok = n >= 1 && n <= 15;
	for (size_t i = 0; ok && i < n; i++)
		ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z');
	if (!ok)
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid",
			      "a detached command's id is 1..15 lowercase letters and digits (see sbx ps)");
	return !ok;
}

static void spawn_on_message(sbx_call *c, const sbx_msg *m)
{
	if (m->type == SBX_MSG_ERROR)
		{ on_error(c, m); return; }
	if (m->type != SBX_MSG_RESULT)
		return;
	char id[16] = "";
	sbx_error e;
	if (sbx_map_str(m->body, "id", id, sizeof id) < 0 || bad_id(id, &e)) {
		sbx_error_set(&e, SBX_E_CONN, EPROTO, "protocol",
			      "the agent started the command but sent no valid id (see sbx ps)");
		{ job_end(c, &e); return; }
	}
	memcpy(job_of(c)->id_out, id, sizeof id);
	job_end(c, NULL);
}

static void copy_str(const msgpack_object *map, const char *key, char *out, size_t len)
{
	const msgpack_object *o = sbx_map_get(map, key);
	out[0] = 0;
	if (o && o->type == MSGPACK_OBJECT_STR) {
		size_t n = o->via.str.size < len - 1 ? o->via.str.size : len - 1;
		memcpy(out, o->via.str.ptr, n);
		out[n] = 0;
	}
}

static void read_job(const msgpack_object *o, sbx_job *j)
{
	memset(j, 0, sizeof *j);
	if (o->type != MSGPACK_OBJECT_MAP)
		return;
	copy_str(o, "id", j->id, sizeof j->id);
	copy_str(o, "command", j->command, sizeof j->command);
	j->pid = (long)sbx_map_int(o, "pid", 0);
	j->age_ms = sbx_map_uint(o, "age_ms", 0);
	j->running = sbx_map_bool(o, "running", 0);
	j->exit_code = (int)sbx_map_int(o, "code", -1);
	j->signal = (int)sbx_map_int(o, "signal", 0);
	j->dropped = sbx_map_uint(o, "dropped", 0);
}

static void list_on_message(sbx_call *c, const sbx_msg *m)
{
	if (m->type == SBX_MSG_ERROR)
		{ on_error(c, m); return; }
	if (m->type != SBX_MSG_RESULT)
		return;
	job_call *j = job_of(c);
	const msgpack_object *a = sbx_map_get(m->body, "jobs");
	uint32_t n = a && a->type == MSGPACK_OBJECT_ARRAY ? a->via.array.size : 0;
	sbx_job *out = calloc(n ? n : 1, sizeof *out); /* n is bounded by the frame */
	if (!out) {
		sbx_error e;
		sbx_error_set(&e, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		{ job_end(c, &e); return; }
	}
	for (uint32_t i = 0; i < n; i++)
		read_job(&a->via.array.ptr[i], &out[i]);
	*j->jobs = out;
	*j->njobs = n;
	job_end(c, NULL);
}

static void kill_on_message(sbx_call *c, const sbx_msg *m)
{
	if (m->type == SBX_MSG_ERROR)
		{ on_error(c, m); return; }
	if (m->type != SBX_MSG_RESULT)
		return;
	*job_of(c)->sent = sbx_map_bool(m->body, "sent", 0);
	job_end(c, NULL);
}

static void logs_output(job_call *j, const sbx_msg *m)
{
	sbx_call *c = &j->call;
	if (!j->stopped && j->lo->on_output && j->lo->on_output(j->lo->ud, m->fd, m->data, m->len) < 0) {
		j->stopped = 1;
		sbx_conn_send_cancel(c->s->conn, c->stream);
		session_flush(c->s);
		return;
	}
	if (!j->stopped)
		sbx_conn_consumed(c->s->conn, c->stream, m->len);
}

static void logs_on_message(sbx_call *c, const sbx_msg *m)
{
	job_call *j = job_of(c);
	sbx_logs_result *r = j->lr;
	switch (m->type) {
	case SBX_MSG_DATA:
		logs_output(j, m);
		return;
	case SBX_MSG_END:
		if (m->err)
			sbx_error_set(&r->error, SBX_E_CONN, m->err, "corrupt", "output corrupted in transit: %s", m->text);
		return;
	case SBX_MSG_ERROR:
		{ on_error(c, m); return; }
	case SBX_MSG_EXIT:
	case SBX_MSG_RESULT:
		r->running = m->type == SBX_MSG_RESULT && sbx_map_bool(m->body, "running", 0);
		r->exit_code = r->running ? -1 : (int)sbx_map_int(m->body, "code", -1);
		r->signal = (int)sbx_map_int(m->body, "signal", 0);
		r->timed_out = sbx_map_bool(m->body, "timed_out", 0);
		r->dropped[1] = sbx_map_uint(m->body, "dropped_stdout", 0);
		r->dropped[2] = sbx_map_uint(m->body, "dropped_stderr", 0);
		{ job_end(c, r->error.status ? &r->error : NULL); return; }
	}
}

#define DROP "; a detached command keeps running in the agent"

static const sbx_call_ops spawn_ops = {.name = "exec -d", .request = SBX_MSG_EXEC, .caps = SBX_CAP_DETACH,
				       .drop_note = DROP, .on_message = spawn_on_message, .fail = job_fail};
static const sbx_call_ops list_ops = {.name = "jobs", .request = SBX_MSG_JOBS, .caps = SBX_CAP_DETACH,
				      .drop_note = DROP, .on_message = list_on_message, .fail = job_fail};
static const sbx_call_ops kill_ops = {.name = "kill", .request = SBX_MSG_KILL, .caps = SBX_CAP_DETACH,
				      .drop_note = DROP, .on_message = kill_on_message, .fail = job_fail};
static const sbx_call_ops logs_ops = {.name = "logs", .request = SBX_MSG_LOGS, .caps = SBX_CAP_DETACH,
				      .drop_note = DROP, .on_message = logs_on_message, .fail = job_fail};

/* The session is ready (whether its agent keeps detached commands, the
 * "detach" capability, is the session's check of the ops' caps); else err. */
static int check_agent(sbx_session *s, sbx_error *err)
{
	if (!sbx_session_ready(s) && sbx_session_wait_ready(s, 60, err) < 0)
		return -1;
	if (s->failed) {
		*err = s->failure;
		return -1;
	}
	return 0;
}

/* A new call of ops with its request packed by the caller into pk. */
static job_call *new_job(sbx_session *s, const sbx_call_ops *ops, job_wait *w, msgpack_packer *pk, sbx_error *err)
{
	job_call *j = (job_call *)call_new(s, ops, sizeof *j);
	if (!j) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	j->w = w;
	msgpack_packer_init(pk, &j->call.request, (msgpack_packer_write)sbx_buf_append);
	return j;
}

/* Sends j's request and runs the loop until it ended. */
static int run(sbx_session *s, job_call *j, job_wait *w, sbx_error *err)
{
	if (session_start_call(s, &j->call, err) < 0)
		return -1;
	while (!w->done && sbx_loop_run_once(s->loop, -1) >= 0)
		;
	if (!w->done)
		sbx_error_set(&w->error, SBX_E_CONN, EIO, "io", "the event loop failed");
	*err = w->error;
	return err->status == SBX_OK ? 0 : -1;
}

int sbx_exec_detached_sync(sbx_session *s, const sbx_exec_opts *o, char id[16], sbx_error *err)
{
	memset(err, 0, sizeof *err);
	id[0] = 0;
	if (!o->argv || !o->argv[0]) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "exec needs a command (argv is empty)");
		return -1;
	}
	if (check_agent(s, err) < 0)
		return -1;
	job_wait w = {0};
	msgpack_packer pk;
	job_call *j = new_job(s, &spawn_ops, &w, &pk, err);
	if (!j)
		return -1;
	j->id_out = id;
	j->call.npairs = exec_pack_command(&pk, o) + 1;
	sbx_pack_kv_bool(&pk, "detach", 1);
	return run(s, j, &w, err);
}

int sbx_jobs_sync(sbx_session *s, sbx_job **jobs, size_t *n, sbx_error *err)
{
	memset(err, 0, sizeof *err);
	*jobs = NULL;
	*n = 0;
	if (check_agent(s, err) < 0)
		return -1;
	job_wait w = {0};
	msgpack_packer pk;
	job_call *j = new_job(s, &list_ops, &w, &pk, err);
	if (!j)
		return -1;
	j->jobs = jobs;
	j->njobs = n;
	return run(s, j, &w, err);
}

int sbx_job_kill_sync(sbx_session *s, const char *id, int signo, int *sent, sbx_error *err)
{
	memset(err, 0, sizeof *err);
	*sent = 0;
	if (bad_id(id, err))
		return -1;
	if (signo < 1 || signo > 64) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "signal %d is not 1..64", signo);
		return -1;
	}
	if (check_agent(s, err) < 0)
		return -1;
	job_wait w = {0};
	msgpack_packer pk;
	job_call *j = new_job(s, &kill_ops, &w, &pk, err);
	if (!j)
		return -1;
	j->sent = sent;
	sbx_pack_kv_str(&pk, "id", id);
	sbx_pack_kv_uint(&pk, "signal", (uint64_t)signo);
	j->call.npairs = 2;
	return run(s, j, &w, err);
}

int sbx_job_logs_sync(sbx_session *s, const sbx_logs_opts *o, sbx_logs_result *r)
{
	memset(r, 0, sizeof *r);
	r->exit_code = -1;
	if (bad_id(o->id, &r->error))
		return -1;
	if (check_agent(s, &r->error) < 0)
		return -1;
	job_wait w = {0};
	msgpack_packer pk;
	job_call *j = new_job(s, &logs_ops, &w, &pk, &r->error);
	if (!j)
		return -1;
	j->lo = o;
	j->lr = r;
	sbx_pack_kv_str(&pk, "id", o->id);
	sbx_pack_kv_bool(&pk, "follow", o->follow);
	j->call.npairs = 2;
	sbx_error e;
	int rc = run(s, j, &w, &e);
	r->error = e;
	return rc;
}
