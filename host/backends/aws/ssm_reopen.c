/* ssm_reopen.c — StreamUrls for an SSM session's transports, and new
 * sessions for the sbx session when one cannot be resumed (see
 * ssm_reopen.h).
 *
 * The reopener is shared by the sbx session (its redial hook) and by each
 * transport it made (their URL source); it goes when the last of them and
 * the last API call in flight let go. A request remembers the transport
 * that asked, and forgets it when that transport is released first.
 * It also remembers every Session Manager session it used (the first and
 * each started since), for aws_ssm_session_take_ids (sbx down). */
#include "backends/aws/ssm_reopen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "transport/ssm.h"

typedef struct reopener {
	int refs;
	sbx_loop *loop;
	aws_client *c;
	char instance_id[64];
	unsigned agent_port;
	double timeout_s;
	unsigned resume_tries, reopen_tries, backoff_ms;
	unsigned resumes, reopens, starts;
	struct url_request *pending; /* the request in flight, if any */
	char (*ids)[128];            /* session ids to terminate */
	size_t nids;
} reopener;

typedef struct url_request {
	reopener *r;
	sbx_transport *t; /* NULL once released */
	int resume;
} url_request;

static void remember(reopener *r, const char *session_id)
{
	for (size_t i = 0; i < r->nids; i++)
		if (strcmp(r->ids[i], session_id) == 0)
			return;
	char(*grown)[128] = realloc(r->ids, (r->nids + 1) * sizeof *grown);
	if (!grown)
		return; /* the session then ends on the service's idle timeout */
	r->ids = grown;
	snprintf(r->ids[r->nids++], sizeof r->ids[0], "%s", session_id);
}

static void unref(reopener *r)
{
	if (--r->refs != 0)
		return;
	free(r->ids);
	free(r);
}

static void free_ud(void *ud) { unref(ud); }

static void got_url(void *ud, const sbx_error *err, const aws_ssm_session *ss)
{
	url_request *q = ud;
	reopener *r = q->r;
	if (r->pending == q)
		r->pending = NULL;
	if (q->t) {
		if (err) {
			sbx_ssm_transport_url(q->t, err->message, NULL, NULL, NULL);
		} else {
			r->resumes += q->resume;
			r->reopens += !q->resume && r->starts++ > 0;
			remember(r, ss->session_id);
			sbx_ssm_transport_url(q->t, NULL, ss->session_id, ss->stream_url, ss->token);
		}
	}
	free(q);
	unref(r);
}

static int get_url(void *ud, sbx_transport *t, const char *session_id, char *why, size_t whylen)
{
	reopener *r = ud;
	url_request *q = calloc(1, sizeof *q);
	if (!q) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	q->r = r;
	q->t = t;
	q->resume = session_id && *session_id;
	sbx_error e;
	int rc;
	if (q->resume) {
		rc = aws_ssm_resume_session(r->c, session_id, got_url, q, &e);
	} else {
		char port[16];
		snprintf(port, sizeof port, "%u", r->agent_port);
		const char *params[] = {"portNumber", port, "localPortNumber", "0", NULL};
		rc = aws_ssm_start_session(r->c, r->instance_id, "AWS-StartPortForwardingSession", params, got_url, q,
					   &e);
	}
	if (rc < 0) {
		snprintf(why, whylen, "%s", e.message);
		free(q);
		return -1;
	}
	r->refs++;
	r->pending = q;
	return 0;
}

static void release(void *ud, sbx_transport *t)
{
	reopener *r = ud;
	if (r->pending && r->pending->t == t)
		r->pending->t = NULL;
	unref(r);
}

static sbx_transport *new_transport(reopener *r, const aws_ssm_session *first, char *err, size_t err_len)
{
	sbx_ssm_source src = {get_url, release, r};
	sbx_ssm_opts so = {.connect_timeout_s = r->timeout_s, .source = &src, .resume_tries = r->resume_tries,
			   .resume_backoff_ms = r->backoff_ms};
	if (first) {
		so.stream_url = first->stream_url;
		so.token = first->token;
		so.session_id = first->session_id;
		r->starts++;
		remember(r, first->session_id);
	}
	r->refs++; /* the transport's; released by it */
	sbx_transport *t = sbx_ssm_transport(r->loop, &so, err, err_len);
	return t; /* on failure the transport was closed, which released it */
}

static sbx_transport *redial(void *ud, char *err, size_t err_len)
{
	return new_transport(ud, NULL, err, err_len);
}

sbx_session *aws_ssm_session_open(sbx_loop *loop, const aws_ssm_reopen_opts *o, const aws_ssm_session *first,
				  sbx_error *err)
{
	reopener *r = calloc(1, sizeof *r);
	if (!r) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	r->refs = 1; /* the session's */
	r->loop = loop;
	r->c = o->c;
	snprintf(r->instance_id, sizeof r->instance_id, "%s", o->instance_id ? o->instance_id : "");
	r->agent_port = o->agent_port;
	r->timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 30;
	r->resume_tries = o->resume_tries ? o->resume_tries : SBX_SSM_DEFAULT_RESUME_TRIES;
	r->reopen_tries = o->reopen_tries ? o->reopen_tries : SBX_SSM_DEFAULT_REOPEN_TRIES;
	r->backoff_ms = o->backoff_ms ? o->backoff_ms : SBX_SSM_DEFAULT_REOPEN_BACKOFF_MS;
	char why[600];
	sbx_transport *t = new_transport(r, first, why, sizeof why);
	if (!t) {
		sbx_error_set(err, SBX_E_CONN, EIO, "connection", "%s", why);
		unref(r);
		return NULL;
	}
	sbx_session *s = sbx_session_transport(loop, t, o->session, err);
	if (!s) {
		unref(r);
		return NULL;
	}
	session_set_redial(s, redial, r, free_ud, r->reopen_tries, r->backoff_ms);
	return s;
}

unsigned aws_ssm_session_resumes(sbx_session *s)
{
	return s->redial_free == free_ud ? ((reopener *)s->redial_ud)->resumes : 0;
}

void aws_ssm_session_take_ids(sbx_session *s, void (*fn)(void *ud, const char *session_id), void *ud)
{
	if (s->redial_free != free_ud)
		return;
	reopener *r = s->redial_ud;
	for (size_t i = 0; i < r->nids; i++)
		fn(ud, r->ids[i]);
	r->nids = 0;
}

unsigned aws_ssm_session_reopens(sbx_session *s)
{
	return s->redial_free == free_ud ? ((reopener *)s->redial_ud)->reopens : 0;
}
