/* call.c — the life of a call, whatever its kind: creation into the
 * session's list, the stream binding, the deadline, failing through the
 * kind, and the end. It calls no other host source file (see call.h). */
#include <errno.h>
#include <stdlib.h>

#include "call.h"
#include "internal.h"

sbx_call *call_new(sbx_session *s, const sbx_call_ops *ops, size_t size)
{
	sbx_call *c = calloc(1, size);
	if (!c)
		return NULL;
	c->ops = ops;
	c->s = s;
	c->next = s->calls;
	if (s->calls)
		s->calls->prev = c;
	s->calls = c;
	return c;
}

void call_bind(sbx_call *c, uint32_t id)
{
	c->stream = id;
	sbx_conn_set_user(c->s->conn, id, c);
}

void call_unbind(sbx_call *c)
{
	if (c->stream && c->s->conn)
		sbx_conn_set_user(c->s->conn, c->stream, NULL);
	c->stream = 0;
}

void call_finish(sbx_call *c)
{
	sbx_session *s = c->s;
	call_unbind(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	sbx_buf_free(&c->request);
	if (c->ops->free)
		c->ops->free(c);
	free(c);
}

void call_fail(sbx_call *c, const sbx_error *e)
{
	c->ops->fail(c, e);
}

void call_set_deadline(sbx_call *c, uint64_t from_ms)
{
	uint64_t d = from_ms + c->s->opts.overdue_ms;
	if (d > c->deadline_ms)
		c->deadline_ms = d;
}

int call_check_caps(const sbx_call *c, sbx_error *e)
{
	uint32_t missing = c->ops->caps & ~sbx_conn_peer(c->s->conn)->caps;
	if (!missing)
		return 0;
	uint32_t bit = missing & -missing; /* the lowest: name one */
	sbx_error_set(e, SBX_E_REMOTE, ENOTSUP, "unsupported",
		      "the sandbox's agent (version %s) cannot serve %s: it lacks the \"%s\" capability (an agent "
		      "on stdio keeps nothing across connections; an older one may lack newer kinds); update "
		      "sbx-agent in the sandbox",
		      c->s->version, c->ops->name, sbx_cap_name(bit));
	return -1;
}
