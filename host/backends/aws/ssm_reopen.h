/* ssm_reopen.h — an sbx session to an instance's agent over SSM Session
 * Manager that survives a dropped data channel.
 *
 * Two levels, each the mechanism that already exists for it:
 *  1. The WebSocket drops: the transport (transport/ssm.c) asks here for
 *     ResumeSession, re-dials the same session and resends what was not
 *     acknowledged. The byte stream is intact; the calls above never know.
 *  2. Resuming fails (the session was terminated or expired, or re-dials
 *     keep failing): the transport reports closed, and the sbx session
 *     reconnects as it does to a listening agent's socket (session.c),
 *     through a new port-forwarding session (StartSession). After the
 *     agent's HELLO running commands are re-attached and collected; file
 *     transfers in flight fail saying the target is unchanged.
 * Every try is bounded and waits longer each time; see aws_ssm_reopen_opts. */
#ifndef SBX_AWS_SSM_REOPEN_H
#define SBX_AWS_SSM_REOPEN_H

#include "backends/aws/api.h"
#include "backends/aws/ssm.h"
#include "sbx.h"

#define SBX_SSM_DEFAULT_RESUME_TRIES 3
#define SBX_SSM_DEFAULT_REOPEN_TRIES 5
#define SBX_SSM_DEFAULT_REOPEN_BACKOFF_MS 200

typedef struct aws_ssm_reopen_opts {
	aws_client *c;              /* must outlive the session */
	const char *instance_id;    /* the StartSession target */
	unsigned agent_port;        /* where sbx-agent listens on the instance's loopback */
	double connect_timeout_s;   /* StartSession/ResumeSession + WebSocket + handshake; 0 = 30 */
	unsigned resume_tries;      /* ResumeSession re-dials per drop; 0 = SBX_SSM_DEFAULT_RESUME_TRIES */
	unsigned reopen_tries;      /* new sessions in a row; 0 = SBX_SSM_DEFAULT_REOPEN_TRIES */
	unsigned backoff_ms;        /* first wait of both, doubling; 0 = SBX_SSM_DEFAULT_REOPEN_BACKOFF_MS */
	const sbx_session_opts *session; /* ping, dead time, compression (reconnect is turned on) */
} aws_ssm_reopen_opts;

/* A session over first (what StartSession returned), or over a session
 * started here when first is NULL. NULL with err when it cannot start. */
sbx_session *aws_ssm_session_open(sbx_loop *loop, const aws_ssm_reopen_opts *o, const aws_ssm_session *first,
				  sbx_error *err);

/* Tests: data channel resumes and new sessions so far. */
/* Every Session Manager session s used (the first and each started when
 * one could not be resumed), to fn, oldest first, once; the caller
 * terminates them (sbx down). */
void aws_ssm_session_take_ids(sbx_session *s, void (*fn)(void *ud, const char *session_id), void *ud);
unsigned aws_ssm_session_resumes(sbx_session *s);
unsigned aws_ssm_session_reopens(sbx_session *s);

#endif
