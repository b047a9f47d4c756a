/* ssm.h — a transport over an SSM Session Manager data channel: a port
 * forwarding session to the agent listening on the instance's loopback.
 *
 * Give it what StartSession returned (StreamUrl, TokenValue). It dials the
 * WebSocket, sends the open-data-channel message, answers the agent's
 * handshake (SessionType Port; KMS encryption is refused with a message),
 * and then carries the agent's byte stream as input/output_stream_data
 * messages with acknowledgements and retransmission (aws/ssm_channel.h).
 * "Basic" port mode: one TCP stream per session, no smux (sbx reports a
 * client version below the one that turns smux on).
 *
 * With a source (sbx_ssm_source), a dropped WebSocket is re-dialled on the
 * same session: the source asks ResumeSession for a new StreamUrl and
 * token, the transport sends the open-data-channel message again, and the
 * channel goes on where it was (sequence numbers continue, every
 * unacknowledged message is resent), so the byte stream above survives.
 * Only when resuming fails (the session was terminated, or resume_tries
 * re-dials in a row did not work) does the transport report closed. */
#ifndef SBX_TRANSPORT_SSM_H
#define SBX_TRANSPORT_SSM_H

#include <stddef.h>
#include <stdint.h>

#include "transport/transport.h"

#define SBX_SSM_CLIENT_VERSION "1.1.0.0" /* < 1.1.70: the agent forwards without smux */
#define SBX_SSM_DEFAULT_CHUNK 1024       /* payload bytes per message, as the plugin sends */

/* Where StreamUrls and tokens come from. get answers later, once, through
 * sbx_ssm_transport_url (never from inside get). release: the transport is
 * being freed (drop any request of t's still in flight). */
typedef struct sbx_ssm_source {
	/* session_id NULL: a new session (StartSession); else resume it. 0, or -1 with why. */
	int (*get)(void *ud, sbx_transport *t, const char *session_id, char *why, size_t whylen);
	void (*release)(void *ud, sbx_transport *t);
	void *ud;
} sbx_ssm_source;

typedef struct sbx_ssm_opts {
	const char *stream_url;     /* wss://ssmmessages.REGION.amazonaws.com/v1/data-channel/...;
				       NULL: ask the source for a new session */
	const char *token;          /* TokenValue */
	const char *session_id;     /* for messages */
	double connect_timeout_s;   /* WebSocket + open + handshake; 0 = 30 */
	size_t chunk;               /* 0 = SBX_SSM_DEFAULT_CHUNK */
	uint64_t ping_ms;           /* WebSocket pings; 0 = 5 minutes as the plugin does */
	int insecure_tls;           /* tests only */
	const sbx_ssm_source *source; /* optional: resume a dropped WebSocket (copied) */
	unsigned resume_tries;      /* re-dials in a row before reporting closed; 0 = 3 */
	unsigned resume_backoff_ms; /* wait before the first re-dial, doubling; 0 = 200 */
} sbx_ssm_opts;

sbx_transport *sbx_ssm_transport(sbx_loop *loop, const sbx_ssm_opts *o, char *err, size_t err_len);

/* The source's answer: why set when it failed, else the session's id, URL and token. */
void sbx_ssm_transport_url(sbx_transport *t, const char *why, const char *session_id, const char *url,
			   const char *token);
/* Tests: how many times the WebSocket was re-dialled and resumed. */
unsigned sbx_ssm_transport_resumes(const sbx_transport *t);

#endif
