/* detached.c — the detached-commands job kind (kind.h): JOBS lists them,
 * KILL signals one, LOGS reads one's retained output (docs/PROTOCOL.md
 * §10.8). The commands themselves are exec.c's jobs, started by an EXEC
 * with `detach`; their output is kept in the job's outlog used as a ring
 * (outlog_trim), which any number of LOGS readers read without taking it
 * over: a reader keeps only its position. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "kind.h"

/* The detached job named by the request's `id`; NULL after replying
 * ERROR (malformed or unknown id). */
static job *find_id(agent_conn *ac, const sbx_msg *m)
{
	char id[16];
	if (sbx_map_str(m->body, "id", id, sizeof id) < 0 || !id[0]) {
		sbx_conn_send_error(ac->conn, m->stream, EINVAL, "invalid", "id must be a string of 1..15 bytes");
		return NULL;
	}
	for (job *j = ac->ag->jobs; j; j = j->next)
		if (j->id[0] && strcmp(j->id, id) == 0)
			return j;
	sbx_conn_send_error(ac->conn, m->stream, ENOENT, "not_found",
			    "no detached command '%s' (never started, or its result expired)", id);
	return NULL;
}

/* ---------------------------------------------------------------- JOBS */

static void pack_job(msgpack_packer *pk, agent *ag, const job *j)
{
	int finished = job_finished(j);
	msgpack_pack_map(pk, finished ? 10 : 6);
	sbx_pack_kv_str(pk, "id", j->id);
	sbx_pack_kv_int(pk, "pid", j->pid);
	sbx_pack_kv_uint(pk, "age_ms", ag->now - j->started_ms);
	sbx_pack_kv_bool(pk, "running", !finished);
	sbx_pack_kv_str(pk, "command", j->cmdline);
	sbx_pack_kv_uint(pk, "dropped", j->dropped[1] + j->dropped[2]);
	if (finished)
		job_pack_exit(pk, j);
}

static void jobs_list(agent_conn *ac, const sbx_msg *m)
{
	agent *ag = ac->ag;
	uint32_t n = 0;
	for (job *j = ag->jobs; j; j = j->next)
		n += j->id[0] != 0;
	msgpack_packer *pk = sbx_conn_begin_map(ac->conn, SBX_MSG_RESULT, m->stream, 1);
	if (!pk)
		return;
	sbx_pack_str(pk, "jobs");
	msgpack_pack_array(pk, n);
	for (job *j = ag->jobs; j; j = j->next)
		if (j->id[0])
			pack_job(pk, ag, j);
	if (sbx_conn_finish(ac->conn) < 0)
		sbx_conn_send_error(ac->conn, m->stream, EFBIG, "too_large", "the list does not fit a frame");
}

/* ---------------------------------------------------------------- KILL */

static void job_kill(agent_conn *ac, const sbx_msg *m)
{
	uint64_t sig = sbx_map_uint(m->body, "signal", SIGTERM);
	if (sig < 1 || sig > 64) {
		sbx_conn_send_error(ac->conn, m->stream, EINVAL, "invalid", "signal must be 1..64");
		return;
	}
	job *j = find_id(ac, m);
	if (!j)
		return;
	int sent = !j->reaped && kill(-j->pid, (int)sig) == 0; /* its process group, as SIGNAL does */
	msgpack_packer *pk = sbx_conn_begin_map(ac->conn, SBX_MSG_RESULT, m->stream, 1);
	if (!pk)
		return;
	sbx_pack_kv_bool(pk, "sent", sent);
	sbx_conn_finish(ac->conn);
}

/* ---------------------------------------------------------------- LOGS */

static void logs_open(agent_conn *ac, const sbx_msg *m)
{
	job *j = find_id(ac, m);
	if (!j)
		return;
	logs_reader *r = calloc(1, sizeof *r);
	if (!r) {
		sbx_conn_send_error(ac->conn, m->stream, ENOMEM, "io", "agent out of memory");
		return;
	}
	r->ac = ac;
	r->stream = m->stream;
	r->follow = sbx_map_bool(m->body, "follow", 0);
	r->until = j->log.seq_total;
	r->next = j->readers;
	j->readers = r;
}

/* Sends what credit allows from the ring (without follow: only what was
 * there when LOGS arrived); returns 1 when caught up. */
static int reader_send(job *j, logs_reader *r)
{
	sbx_conn *c = r->ac->conn;
	uint64_t stop = r->follow ? UINT64_MAX : r->until;
	const outlog_chunk *ch;
	while (r->seq < stop && agent_can_send(r->ac) && (ch = outlog_at(&j->log, r->seq))) {
		if (ch->seq_off >= stop) {
			r->seq = stop; /* all it had to send was dropped meanwhile */
			break;
		}
		if (ch->seq_off > r->seq)
			r->seq = ch->seq_off; /* the ring dropped what lay between */
		uint64_t in = r->seq - ch->seq_off;
		uint64_t at = ch->fd_off + in;
		if (at > r->fd_next[ch->fd])
			r->skipped[ch->fd] += at - r->fd_next[ch->fd];
		r->fd_next[ch->fd] = at;
		uint64_t n = ch->len - in;
		if (n > stop - r->seq)
			n = stop - r->seq;
		long sent = sbx_conn_send_data(c, r->stream, ch->fd, ch->data + in, (size_t)n);
		if (sent <= 0)
			return 0;
		r->seq += (uint64_t)sent;
		r->fd_next[ch->fd] += (uint64_t)sent;
	}
	return r->seq >= j->log.seq_total;
}

/* The reader's final: EXIT once the command ended, else (no follow)
 * RESULT saying it still runs. Both say what the ring dropped. */
static void reader_finish(job *j, logs_reader *r)
{
	sbx_conn *c = r->ac->conn;
	int finished = job_finished(j);
	for (int fd = 1; fd <= 2; fd++)
		if (j->log.fd_total[fd] > r->fd_next[fd] && r->seq >= j->log.seq_total)
			r->skipped[fd] += j->log.fd_total[fd] - r->fd_next[fd];
	sbx_conn_send_end(c, r->stream, 1);
	sbx_conn_send_end(c, r->stream, 2);
	msgpack_packer *pk = sbx_conn_begin_map(c, finished ? SBX_MSG_EXIT : SBX_MSG_RESULT, r->stream,
						finished ? 6 : 3);
	if (!pk)
		return;
	if (finished)
		job_pack_exit(pk, j);
	else
		sbx_pack_kv_bool(pk, "running", 1);
	sbx_pack_kv_uint(pk, "dropped_stdout", r->skipped[1]);
	sbx_pack_kv_uint(pk, "dropped_stderr", r->skipped[2]);
	sbx_conn_finish(c);
	r->done = 1;
}

static void reader_pump(job *j, logs_reader *r)
{
	if (r->done || !agent_can_send(r->ac))
		return;
	int caught_up = reader_send(j, r);
	if (!agent_can_send(r->ac))
		return;
	if (caught_up && job_finished(j))
		reader_finish(j, r);
	else if (!r->follow && r->seq >= r->until)
		reader_finish(j, r);
}

/* ---------------------------------------------------------------- the kind */

static logs_reader *find_reader(agent_conn *ac, uint32_t stream)
{
	for (job *j = ac->ag->jobs; j; j = j->next)
		for (logs_reader *r = j->readers; r; r = r->next)
			if (r->ac == ac && r->stream == stream && !r->done)
				return r;
	return NULL;
}

static int detached_request(agent_conn *ac, const sbx_msg *m)
{
	switch (m->type) {
	case SBX_MSG_JOBS: jobs_list(ac, m); return 1;
	case SBX_MSG_KILL: job_kill(ac, m); return 1;
	case SBX_MSG_LOGS: logs_open(ac, m); return 1;
	}
	return 0;
}

/* Only CANCEL means anything on a LOGS stream; the rest is ignored. */
static int detached_stream(agent_conn *ac, const sbx_msg *m)
{
	logs_reader *r = find_reader(ac, m->stream);
	if (!r)
		return 0;
	if (m->type == SBX_MSG_CANCEL) {
		sbx_conn_send_error(ac->conn, r->stream, ECANCELED, "cancelled", "cancelled");
		r->done = 1;
	}
	return 1;
}

static void detached_detach(agent_conn *ac)
{
	for (job *j = ac->ag->jobs; j; j = j->next)
		for (logs_reader *r = j->readers; r; r = r->next)
			if (r->ac == ac) {
				r->ac = NULL;
				r->done = 1;
			}
}

static void detached_pump(agent *ag)
{
	for (job *j = ag->jobs; j; j = j->next)
		for (logs_reader *r = j->readers; r; r = r->next)
			reader_pump(j, r);
}

/* A following reader of a running command with nothing to send waits
 * for output (exec.c watches the pipes) or the exit (SIGCHLD): both wake
 * the loop, so it needs no deadline of its own. */
static void detached_sweep(agent *ag)
{
	for (job *j = ag->jobs; j; j = j->next) {
		logs_reader **link = &j->readers;
		while (*link) {
			logs_reader *r = *link;
			if (r->done) {
				*link = r->next;
				free(r);
			} else {
				link = &r->next;
			}
		}
	}
}

const agent_kind agent_detached_kind = {
	.name = "detached",
	.listen_caps = SBX_CAP_DETACH,
	.request = detached_request,
	.stream = detached_stream,
	.detach = detached_detach,
	.pump = detached_pump,
	.sweep = detached_sweep,
};
