/* ssm.c — the SSM data channel as a byte pipe to the agent (see ssm.h).
 *
 * States: waiting for a URL (from the source), connecting (WebSocket),
 * handshaking (open-data-channel sent, waiting for the agent's
 * HandshakeRequest and HandshakeComplete), open. A WebSocket that drops
 * after the handshake goes back to waiting for a URL (ResumeSession) and,
 * once re-dialled, straight to open with every unacknowledged message
 * resent; the channel's state is kept throughout.
 * Bytes written before the channel is open wait in a bounded queue; the
 * queue also absorbs the channel's window and the WebSocket's back-pressure,
 * and write() takes fewer bytes when it is full. */
#include "transport/ssm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/aws/ssm_channel.h"
#include "backends/aws/ssm_msg.h"
#include "backends/aws/text.h"
#include "buf.h"
#include "net/ws.h"

#define PENDING_MAX (1024 * 1024)
#define DEFAULT_PING_MS (5 * 60 * 1000)

#define DEFAULT_RESUME_TRIES 3
#define DEFAULT_RESUME_BACKOFF_MS 200

typedef enum { ST_WAIT_URL, ST_CONNECTING, ST_HANDSHAKING, ST_OPEN, ST_CLOSED } ssm_state;

typedef struct ssm_transport {
	sbx_transport t; /* first: the session sees this */
	sbx_ws *ws;
	ssm_channel *ch;
	ssm_state state;
	char *token, *session_id;
	size_t chunk;
	sbx_buf pending;      /* bytes written by the session, not yet sent */
	int want_write;
	sbx_timer *tick;      /* retransmission */
	uint64_t tick_at;
	sbx_timer *deadline;  /* connect + handshake */
	sbx_timer *closer;    /* reports a close from the loop */
	char close_why[512];
	int in_callback;
	int flushing;         /* inside flush() */

	/* re-dialling */
	sbx_ssm_source source;
	double timeout_s;          /* URL + WebSocket (+ handshake the first time) */
	uint64_t ping_ms;
	int insecure_tls;
	int opened;                /* the handshake completed once: re-dials resume */
	unsigned resume_tries, resume_left, resume_backoff_ms, resumes;
	sbx_timer *redial;         /* the wait before asking for a URL again */
	char drop_why[300];        /* why the WebSocket dropped */
} ssm_transport;

static void schedule_tick(ssm_transport *s);
static void flush(ssm_transport *s);
static void flush_and_notify(ssm_transport *s);
static void dropped(ssm_transport *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* -------------------------------------------------------------- closing */

static void report_closed(sbx_loop *loop, void *ud)
{
	(void)loop;
	ssm_transport *s = ud;
	s->closer = NULL;
	s->t.ev.on_closed(s->t.ud, s->close_why);
}

/* Fail the pipe once; the session hears it from the loop. */
static void fail(ssm_transport *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(ssm_transport *s, const char *fmt, ...)
{
	if (s->state == ST_CLOSED)
		return;
	s->state = ST_CLOSED;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->close_why, sizeof s->close_why, fmt, ap);
	va_end(ap);
	if (s->ws) {
		sbx_ws_free(s->ws);
		s->ws = NULL;
	}
	s->closer = sbx_loop_timer(s->t.loop, 0, report_closed, s);
}

/* ------------------------------------------------------- channel events */

static void ch_send(void *ud, const uint8_t *msg, size_t n)
{
	ssm_transport *s = ud;
	if (!s->ws || s->state == ST_CLOSED || s->state == ST_WAIT_URL || s->state == ST_CONNECTING)
		return; /* kept unacknowledged: resent once a WebSocket is open again */
	sbx_ws_part part = {msg, n};
	if (sbx_ws_send(s->ws, SBX_WS_BINARY, &part, 1) < 0)
		dropped(s, "the WebSocket is closed");
}

static void send_payload(ssm_transport *s, uint32_t type, const void *p, size_t n)
{
	if (ssm_channel_send(s->ch, type, p, n, sbx_now_ms()) < 0)
		fail(s, "SSM data channel: cannot send a %u message: %s", type, strerror(errno));
	schedule_tick(s);
}

static void on_handshake_request(ssm_transport *s, const uint8_t *p, size_t n)
{
	ssm_handshake_req r;
	char why[256];
	if (ssm_parse_handshake_request(p, n, &r, why, sizeof why) < 0) {
		fail(s, "SSM handshake: %s", why);
		return;
	}
	if (strcmp(r.session_type, "Port") != 0) {
		fail(s, "SSM handshake: the session is of type '%s', not a port forwarding session (start it with "
			"AWS-StartPortForwardingSession)", r.session_type);
		return;
	}
	sbx_buf b = {0};
	if (ssm_handshake_response_json(&b, SBX_SSM_CLIENT_VERSION, &r) < 0) {
		sbx_buf_free(&b);
		fail(s, "SSM handshake: out of memory");
		return;
	}
	send_payload(s, SSM_PAYLOAD_HANDSHAKE_RESPONSE, b.data, b.len);
	sbx_buf_free(&b);
	if (r.has_kms)
		fail(s, "SSM handshake: the session requires KMS encryption, which sbx does not support; turn it "
			"off in the Session Manager preferences");
}

static void ch_data(void *ud, uint32_t type, const uint8_t *p, size_t n)
{
	ssm_transport *s = ud;
	if (s->state == ST_CLOSED)
		return;
	switch (type) {
	case SSM_PAYLOAD_HANDSHAKE_REQUEST:
		on_handshake_request(s, p, n);
		return;
	case SSM_PAYLOAD_HANDSHAKE_COMPLETE:
		if (s->state == ST_HANDSHAKING) {
			s->state = ST_OPEN;
			s->opened = 1;
			if (s->deadline) {
				sbx_timer_cancel(s->t.loop, s->deadline);
				s->deadline = NULL;
			}
			flush_and_notify(s);
		}
		return;
	case SSM_PAYLOAD_OUTPUT:
		if (s->state != ST_OPEN) {
			fail(s, "SSM data channel: stream data before the handshake completed");
			return;
		}
		if (n)
			s->t.ev.on_data(s->t.ud, p, n);
		return;
	case SSM_PAYLOAD_FLAG: {
		uint32_t flag = 0;
		ssm_parse_flag(p, n, &flag);
		if (flag == SSM_FLAG_CONNECT_TO_PORT_ERROR)
			fail(s, "SSM port forwarding: the instance could not connect to the agent's port (is "
				"sbx-agent listening on the instance?)");
		else
			fail(s, "SSM port forwarding: the agent's port closed the connection (flag %u)", flag);
		return;
	}
	case SSM_PAYLOAD_ERROR:
		fail(s, "SSM data channel: the agent reported an error: %.*s", (int)(n > 300 ? 300 : n), p);
		return;
	default:
		return; /* size, exit code, stderr: not used by port sessions */
	}
}

static void ch_closed(void *ud, const char *output)
{
	fail(ud, "SSM session closed by the service: %s", output && *output ? output : "(no reason given)");
}

/* ------------------------------------------------------------- sending */

/* Not re-entered: sending may drain the WebSocket and call ws_writable
 * (and through it the session) from inside sbx_ws_send, and a nested
 * flush would send the chunk the outer one is sending again, then both
 * would consume it (bytes duplicated and others skipped). The outer loop
 * sends what the nested calls added. */
static void flush(ssm_transport *s)
{
	if (s->flushing)
		return;
	s->flushing = 1;
	while (s->state == ST_OPEN && sbx_buf_size(&s->pending) && ssm_channel_writable(s->ch) &&
	       sbx_ws_queued(s->ws) < SBX_WS_HIGH_WATER) {
		size_t n = sbx_buf_size(&s->pending);
		if (n > s->chunk)
			n = s->chunk;
		send_payload(s, SSM_PAYLOAD_OUTPUT, sbx_buf_head(&s->pending), n);
		sbx_buf_consume(&s->pending, n);
	}
	/* The WebSocket is the bottleneck: go on when it drains. (A full channel
	 * window goes on when acknowledgements arrive.) */
	if (s->state == ST_OPEN && sbx_buf_size(&s->pending) && sbx_ws_queued(s->ws) >= SBX_WS_HIGH_WATER)
		sbx_ws_want_writable(s->ws, 1);
	s->flushing = 0;
}

/* Flush, then tell the session it may write more. Not from write(). */
static void flush_and_notify(ssm_transport *s)
{
	flush(s);
	if (s->want_write && s->state != ST_CLOSED && sbx_buf_size(&s->pending) < PENDING_MAX / 2)
		s->t.ev.on_writable(s->t.ud);
}

static void on_tick(sbx_loop *loop, void *ud)
{
	(void)loop;
	ssm_transport *s = ud;
	s->tick = NULL;
	char why[256];
	if (ssm_channel_tick(s->ch, sbx_now_ms(), why, sizeof why) < 0) {
		fail(s, "SSM data channel: %s", why);
		return;
	}
	schedule_tick(s);
}

static void schedule_tick(ssm_transport *s)
{
	if (s->state == ST_CLOSED)
		return;
	uint64_t at = ssm_channel_next_deadline(s->ch);
	if (at == UINT64_MAX || (s->tick && s->tick_at <= at))
		return;
	if (s->tick)
		sbx_timer_cancel(s->t.loop, s->tick);
	uint64_t now = sbx_now_ms();
	s->tick = sbx_loop_timer(s->t.loop, at > now ? at - now : 0, on_tick, s);
	s->tick_at = at;
}

/* ----------------------------------------------------- WebSocket events */

static void ws_open(void *ud, const char *protocol)
{
	(void)protocol;
	ssm_transport *s = ud;
	uint8_t id[16];
	char client_id[37];
	ssm_uuid_random(id);
	ssm_uuid_format(id, client_id);
	sbx_buf b = {0};
	if (ssm_open_data_channel_json(&b, s->token, client_id, SBX_SSM_CLIENT_VERSION) < 0) {
		sbx_buf_free(&b);
		fail(s, "SSM data channel: out of memory");
		return;
	}
	sbx_ws_part part = {b.data, b.len};
	sbx_ws_send(s->ws, SBX_WS_TEXT, &part, 1);
	sbx_buf_free(&b);
	if (!s->opened) {
		s->state = ST_HANDSHAKING;
		return;
	}
	/* Resumed: the agent side kept its end; go on where we were. */
	s->state = ST_OPEN;
	s->resumes++;
	if (s->deadline) {
		sbx_timer_cancel(s->t.loop, s->deadline);
		s->deadline = NULL;
	}
	s->flushing = 1; /* no new data in between (see flush) */
	ssm_channel_resend_all(s->ch, sbx_now_ms());
	s->flushing = 0;
	flush_and_notify(s);
	schedule_tick(s);
}

static void ws_message(void *ud, int opcode, const uint8_t *p, size_t n)
{
	ssm_transport *s = ud;
	if (opcode != SBX_WS_BINARY) {
		return; /* the service sends nothing but binary messages after the open */
	}
	char why[256];
	s->resume_left = s->resume_tries; /* this WebSocket works */
	if (ssm_channel_input(s->ch, p, n, sbx_now_ms(), why, sizeof why) < 0) {
		fail(s, "SSM data channel: %s", why);
		return;
	}
	flush_and_notify(s); /* acks may have opened the window */
	schedule_tick(s);
}

static void ws_writable(void *ud)
{
	ssm_transport *s = ud;
	sbx_ws_want_writable(s->ws, 0);
	flush_and_notify(s);
}

static void ws_close(void *ud, const sbx_error *why, int code, const char *reason)
{
	ssm_transport *s = ud;
	if (why->status != SBX_OK)
		dropped(s, "%s", why->message);
	else
		dropped(s, "closed by the service (code %d%s%s)", code, *reason ? ": " : "", reason);
}

static void on_deadline(sbx_loop *loop, void *ud)
{
	(void)loop;
	ssm_transport *s = ud;
	s->deadline = NULL;
	const char *what = s->state == ST_WAIT_URL ? "getting a StreamUrl (StartSession/ResumeSession)"
			 : s->state == ST_CONNECTING ? "the WebSocket connection" : "the handshake";
	if (s->opened)
		dropped(s, "%s did not finish within %.0f s", what, s->timeout_s);
	else
		fail(s, "SSM data channel: %s did not finish in time (is the instance's SSM agent online, and sbx-agent "
			"listening on its port?)", what);
}

/* ------------------------------------------------------------ re-dialling */

static int dial(ssm_transport *s, const char *url, sbx_error *e)
{
	sbx_ws_opts wo = {.url = url, .connect_timeout_s = s->timeout_s, .ping_ms = s->ping_ms,
			  .on_open = ws_open, .on_message = ws_message, .on_writable = ws_writable,
			  .on_close = ws_close, .ud = s};
	wo.tls.insecure = s->insecure_tls;
	s->ws = sbx_ws_connect(s->t.loop, &wo, e);
	if (!s->ws)
		return -1;
	s->state = ST_CONNECTING;
	return 0;
}

static void arm_deadline(ssm_transport *s)
{
	if (s->deadline)
		sbx_timer_cancel(s->t.loop, s->deadline);
	s->deadline = sbx_loop_timer(s->t.loop, (uint64_t)(s->timeout_s * 1000), on_deadline, s);
}

static void ask_for_url(sbx_loop *loop, void *ud)
{
	(void)loop;
	ssm_transport *s = ud;
	s->redial = NULL;
	char why[300];
	arm_deadline(s);
	if (s->source.get(s->source.ud, &s->t, s->session_id, why, sizeof why) < 0)
		fail(s, "SSM data channel dropped (%s) and cannot be resumed: %s", s->drop_why, why);
}

/* The WebSocket is gone. After the handshake, with a source and tries
 * left: wait, then resume the session on a new WebSocket. Else closed. */
static void dropped(ssm_transport *s, const char *fmt, ...)
{
	if (s->state == ST_CLOSED)
		return;
	char why[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (!s->opened || !s->source.get || s->resume_left == 0) {
		if (s->opened && s->source.get)
			fail(s, "SSM data channel dropped %u times in a row without coming back (last: %s)",
			     s->resume_tries, why);
		else
			fail(s, "SSM data channel: %s", why);
		return;
	}
	snprintf(s->drop_why, sizeof s->drop_why, "%s", why);
	if (s->ws) {
		sbx_ws_free(s->ws);
		s->ws = NULL;
	}
	if (s->deadline) {
		sbx_timer_cancel(s->t.loop, s->deadline);
		s->deadline = NULL;
	}
	unsigned attempt = s->resume_tries - s->resume_left;
	s->resume_left--;
	s->state = ST_WAIT_URL;
	uint64_t wait = (uint64_t)s->resume_backoff_ms << (attempt < 6 ? attempt : 6);
	s->redial = sbx_loop_timer(s->t.loop, wait, ask_for_url, s);
}

void sbx_ssm_transport_url(sbx_transport *t, const char *why, const char *session_id, const char *url,
			   const char *token)
{
	ssm_transport *s = (ssm_transport *)t;
	if (s->state != ST_WAIT_URL)
		return;
	if (why) {
		if (s->opened)
			fail(s, "SSM data channel dropped (%s) and could not be resumed: %s", s->drop_why, why);
		else
			fail(s, "SSM data channel: cannot start a session: %s", why);
		return;
	}
	char *tok = strdup(token), *sid = strdup(session_id);
	if (!tok || !sid) {
		free(tok);
		free(sid);
		fail(s, "SSM data channel: out of memory");
		return;
	}
	free(s->token);
	free(s->session_id);
	s->token = tok;
	s->session_id = sid;
	sbx_error e;
	if (dial(s, url, &e) < 0) {
		if (s->opened)
			dropped(s, "%s", e.message);
		else
			fail(s, "SSM data channel: %s", e.message);
	}
}

unsigned sbx_ssm_transport_resumes(const sbx_transport *t)
{
	return ((const ssm_transport *)t)->resumes;
}

/* ------------------------------------------------------------ transport */

/* Messages' CreatedDate: milliseconds since the epoch (the loop's clock is monotonic). */
static uint64_t epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static long ssm_write(sbx_transport *t, const uint8_t *p, size_t n)
{
	ssm_transport *s = (ssm_transport *)t;
	if (s->state == ST_CLOSED)
		return -1;
	size_t room = PENDING_MAX > sbx_buf_size(&s->pending) ? PENDING_MAX - sbx_buf_size(&s->pending) : 0;
	if (n > room)
		n = room;
	if (n && sbx_buf_append(&s->pending, p, n) < 0)
		return -1;
	flush(s);
	return (long)n;
}

static void ssm_want_write(sbx_transport *t, int on)
{
	ssm_transport *s = (ssm_transport *)t;
	s->want_write = on;
}

static void ssm_close(sbx_transport *t)
{
	ssm_transport *s = (ssm_transport *)t;
	/* The session itself is ended through the API (TerminateSession). */
	if (s->ws)
		sbx_ws_free(s->ws);
	if (s->tick)
		sbx_timer_cancel(t->loop, s->tick);
	if (s->deadline)
		sbx_timer_cancel(t->loop, s->deadline);
	if (s->closer)
		sbx_timer_cancel(t->loop, s->closer);
	if (s->redial)
		sbx_timer_cancel(t->loop, s->redial);
	if (s->source.release)
		s->source.release(s->source.ud, t);
	ssm_channel_free(s->ch);
	sbx_buf_free(&s->pending);
	free(s->token);
	free(s->session_id);
	free(s);
}

static const sbx_transport_ops ssm_ops = {"ssm", ssm_write, ssm_want_write, ssm_close};

sbx_transport *sbx_ssm_transport(sbx_loop *loop, const sbx_ssm_opts *o, char *err, size_t err_len)
{
	int have_url = o->stream_url && *o->stream_url && o->token && *o->token;
	if (!have_url && !(o->source && o->source->get)) {
		snprintf(err, err_len, "SSM data channel: no StreamUrl or TokenValue (from StartSession)");
		return NULL;
	}
	ssm_transport *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	s->t.ops = &ssm_ops;
	s->t.loop = loop;
	if (o->source)
		s->source = *o->source;
	s->token = strdup(have_url ? o->token : "");
	s->session_id = strdup(o->session_id ? o->session_id : "");
	s->chunk = o->chunk ? o->chunk : SBX_SSM_DEFAULT_CHUNK;
	s->timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 30;
	s->ping_ms = o->ping_ms ? o->ping_ms : DEFAULT_PING_MS;
	s->insecure_tls = o->insecure_tls;
	s->resume_tries = o->resume_tries ? o->resume_tries : DEFAULT_RESUME_TRIES;
	s->resume_left = s->resume_tries;
	s->resume_backoff_ms = o->resume_backoff_ms ? o->resume_backoff_ms : DEFAULT_RESUME_BACKOFF_MS;
	ssm_channel_opts co = {.check_digest = 1, .ordered_link = 1, .wall_clock_ms = epoch_ms};
	ssm_channel_cb cb = {ch_send, ch_data, ch_closed, s};
	s->ch = ssm_channel_new(&co, &cb);
	sbx_error e;
	int rc = -1;
	if (!s->token || !s->session_id || !s->ch) {
		snprintf(e.message, sizeof e.message, "out of memory");
	} else if (have_url) {
		rc = dial(s, o->stream_url, &e);
	} else {
		s->state = ST_WAIT_URL;
		rc = s->source.get(s->source.ud, &s->t, NULL, e.message, sizeof e.message);
	}
	if (rc == 0)
		arm_deadline(s);
	if (rc < 0 || !s->deadline) {
		snprintf(err, err_len, "SSM data channel: %s", rc < 0 ? e.message : "out of memory");
		ssm_close(&s->t);
		return NULL;
	}
	return &s->t;
}
