/* session.c — one agent connection: a transport, the protocol connection
 * on top of it, and the calls in flight.
 *
 * The session moves bytes between transport and connection, starts and
 * cancels calls, routes each message to the call that owns its stream,
 * feeds uploads as flow control allows, sends heartbeats, and when the
 * transport drops either fails every call with the reason or (for a
 * listening agent) reconnects and re-attaches the calls that can be. It
 * reaches a call only through its kind's ops (call.h) and never names a
 * kind. Destruction requested inside a callback is deferred until the
 * callback stack unwinds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "call.h"
#include "internal.h"
#include "keyfile.h"
#include "sha256.h"

#define TICK_MS 1000
#define HEARTBEAT_SLOT_MS 1000 /* idle sessions' ticks are rounded up to this grid */
#define DEFAULT_PING_MS 15000
#define DEFAULT_DEAD_MS 60000
#define DEFAULT_OVERDUE_MS 30000
#define K8S_REDIAL_TRIES 5
#define K8S_REDIAL_BACKOFF_MS 200
#define RECONNECT_TRIES 40
#define RECONNECT_BACKOFF_MS 20

static void session_destroy(sbx_session *s);
static void attach_transport(sbx_session *s, sbx_transport *t);
static void busy_tick(sbx_session *s);

void session_enter(sbx_session *s) { s->busy++; }

void session_leave(sbx_session *s)
{
	if (--s->busy == 0 && s->close_pending)
		session_destroy(s);
}

/* ---------------------------------------------------------------- calls */

/* A call that could not start: reported to the caller of sbx_exec & co.
 * (err set, no on_done) or, for a call started later, through on_done. */
static int start_failed(sbx_call *c, sbx_error *err, const sbx_error *e)
{
	if (err) {
		*err = *e;
		call_finish(c);
	} else {
		call_fail(c, e);
	}
	return -1;
}

/* Sends a call's request (its map pairs were packed at creation). */
static int start_call(sbx_session *s, sbx_call *c, sbx_error *err)
{
	if (!s->conn || !sbx_conn_ready(s->conn))
		return 0; /* started when the agent is ready */
	sbx_error e;
	if (call_check_caps(c, &e) < 0)
		return start_failed(c, err, &e);
	int forget = (c->ops->flags & SBX_CALL_F_FORGET) && s->nforget > 0;
	uint32_t id = sbx_conn_new_stream_id(s->conn);
	msgpack_packer *pk = sbx_conn_begin_map(s->conn, c->ops->request, id, c->npairs + (forget ? 1 : 0));
	if (!pk) {
		sbx_error_set(&e, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return start_failed(c, err, &e);
	}
	pk->callback(pk->data, (const char *)c->request.data, c->request.len);
	if (forget) {
		sbx_pack_str(pk, "forget");
		msgpack_pack_array(pk, (size_t)s->nforget);
		for (int i = 0; i < s->nforget; i++)
			sbx_pack_str(pk, s->forget[i]);
	}
	if (sbx_conn_finish(s->conn) < 0) {
		sbx_error_set(&e, SBX_E_INVALID, E2BIG, "invalid",
			      "request too large for the agent's frame limit (%zu bytes of arguments)", c->request.len);
		return start_failed(c, err, &e);
	}
	if (forget)
		s->nforget = 0;
	call_bind(c, id);
	c->started = 1;
	session_pump(s);
	return 0;
}

/* on_done and on_progress may run from here outside any loop callback
 * (from sbx_exec, sbx_write_file, ...): a session they close is destroyed
 * only when this returns, not under the caller's feet. */
int session_start_call(sbx_session *s, sbx_call *c, sbx_error *err)
{
	session_enter(s);
	busy_tick(s);
	int rc = start_call(s, c, err);
	session_leave(s);
	return rc;
}

/* Shared by every kind: a started call is cancelled on the agent, which
 * ends it with ERROR cancelled (or the session fails it as overdue); one
 * not yet sent fails now. */
void sbx_call_cancel(sbx_call *c)
{
	sbx_session *s = c->s;
	if (c->started && c->stream && s->conn) {
		sbx_conn_send_cancel(s->conn, c->stream);
		session_flush(s);
		call_set_deadline(c, sbx_now_ms());
		return;
	}
	sbx_error e;
	sbx_error_set(&e, SBX_E_CANCELLED, ECANCELED, "cancelled", "cancelled before it started");
	session_enter(s); /* on_done may close the session: destroy it after, not during */
	call_fail(c, &e);
	session_leave(s);
}

/* ---------------------------------------------------------------- bytes */

void session_flush(sbx_session *s)
{
	if (!s->t || !s->conn)
		return;
	size_t len;
	const uint8_t *p;
	while ((p = sbx_conn_out(s->conn, &len)), len > 0) {
		long w = s->t->ops->write(s->t, p, len);
		if (w <= 0)
			break;
		sbx_conn_out_consume(s->conn, (size_t)w);
		s->drained_ms = sbx_now_ms();
	}
	s->t->ops->want_write(s->t, sbx_conn_out_size(s->conn) > 0);
}

/* Uploads (exec input, stdin, file contents) take turns, one chunk each,
 * while the queue is short: a 1 GiB upload never delays a small request
 * by more than HOST_HIGH_WATER bytes. Returns 1 when it stopped at that
 * mark (the calls may have more), 0 when a whole turn queued nothing (no
 * credit, nothing to send, or a read interrupted by a signal: back to the
 * loop, which handles it). */
static int fill_queue(sbx_session *s)
{
	for (;;) {
		int progress = 0;
		for (sbx_call *c = s->calls; c; c = c->next) {
			if (s->close_pending)
				return 0; /* closed by a callback: send no more (no END of an upload) */
			if (!c->started || !c->sending || sbx_conn_credit(s->conn, c->stream) == 0)
				continue;
			size_t before = sbx_conn_out_size(s->conn);
			if (c->ops->pump)
				c->ops->pump(c);
			if (sbx_conn_out_size(s->conn) != before)
				progress = 1;
			if (sbx_conn_out_size(s->conn) >= HOST_HIGH_WATER)
				return 1;
		}
		if (!progress)
			return 0;
	}
}

/* Hands the queue to the transport and refills it, again and again while
 * the transport takes it. Stopping while a call still holds credit and
 * the queue has room would stall that upload for good: a drained queue
 * asks for no on_writable, and the agent's next grant may need more than
 * HOST_HIGH_WATER bytes (it grants every window/4, and windows grow). And
 * on_writable itself finds the queue still full from before, so the flush
 * comes first. The pump thus ends only when the transport is full
 * (on_writable restarts it) or a turn over the calls added nothing (no
 * credit or nothing to send: a grant or new input restarts it). */
static void pump_calls(sbx_session *s)
{
	if (!s->conn || !sbx_conn_ready(s->conn))
		return;
	session_flush(s);
	while (!s->close_pending && s->conn && sbx_conn_out_size(s->conn) < HOST_HIGH_WATER) {
		int more = fill_queue(s);
		session_flush(s);
		if (!more)
			return;
	}
}

/* on_progress callbacks run from here (see session_start_call) */
void session_pump(sbx_session *s)
{
	session_enter(s);
	pump_calls(s);
	session_leave(s);
}

/* ---------------------------------------------------------------- failure */

static void fail_all(sbx_session *s, const sbx_error *e)
{
	while (s->calls) {
		sbx_call *c = s->calls;
		call_fail(c, e); /* calls on_done and call_finish */
	}
}

static void noop_data(void *ud, const uint8_t *p, size_t n) { (void)ud; (void)p; (void)n; }
static void noop_writable(void *ud) { (void)ud; }
static void noop_closed(void *ud, const char *why) { (void)ud; (void)why; }

static void close_later(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_transport *t = ud;
	t->ops->close(t);
}

/* Closes the transport; from inside one of its own callbacks the close
 * waits for the next loop iteration, and it reports nothing meanwhile. */
static void drop_transport(sbx_session *s)
{
	sbx_transport *t = s->t;
	s->t = NULL;
	if (t && s->in_transport) {
		t->ev = (sbx_transport_events){noop_data, noop_writable, noop_closed};
		sbx_loop_defer(s->loop, close_later, t);
	} else if (t) {
		t->ops->close(t);
	}
	if (s->conn)
		sbx_conn_free(s->conn);
	s->conn = NULL;
}

static void session_fail(sbx_session *s, const char *why)
{
	if (s->failed)
		return;
	s->failed = 1;
	if (s->conn && strcmp(sbx_conn_error_code(s->conn), "auth") == 0)
		sbx_error_set(&s->failure, SBX_E_CONN, EACCES, "auth", "%s", why);
	else
		sbx_error_set(&s->failure, SBX_E_CONN, EPIPE, "connection", "%s", why);
	drop_transport(s);
	fail_all(s, &s->failure);
	if (s->opts.on_closed)
		s->opts.on_closed(s, &s->failure, s->opts.ud);
}

static void try_reconnect(sbx_loop *loop, void *ud);

/* Another try after a wait that doubles with each failure in a row; the
 * count restarts when an agent says HELLO again. */
static void schedule_reconnect(sbx_session *s, const char *why)
{
	unsigned tries = s->redial ? s->redial_tries : RECONNECT_TRIES;
	if (s->reconnect_tries >= (int)tries) {
		char msg[900];
		snprintf(msg, sizeof msg, "%s (gave up after %u reconnect attempts)", why, tries);
		session_fail(s, msg);
		return;
	}
	uint64_t base = s->redial ? s->redial_backoff_ms : RECONNECT_BACKOFF_MS;
	uint64_t delay = base << (s->reconnect_tries < 6 ? s->reconnect_tries : 6);
	s->reconnect_tries++;
	s->retry = sbx_loop_timer(s->loop, delay, try_reconnect, s);
}

/* A started call that cannot re-attach ends with the connection. */
static void drop_call(sbx_call *c, const char *why)
{
	sbx_error e;
	if (c->ops->drop_note)
		sbx_error_set(&e, SBX_E_CONN, EPIPE, "connection", "%s (%s)", why, c->ops->drop_note);
	else
		sbx_error_set(&e, SBX_E_CONN, EPIPE, "connection", "%s", why);
	call_fail(c, &e);
}

/* The pipe to the agent broke. A listening agent keeps its commands, so
 * reconnect and re-attach them; anything else fails every call. */
static void lost(sbx_session *s, const char *why)
{
	if (!s->opts.reconnect || !(s->addr[0] || s->redial) || !s->boot_id[0]) {
		session_fail(s, why);
		return;
	}
	drop_transport(s);
	for (sbx_call *c = s->calls, *next; c; c = next) {
		next = c->next;
		if (c->started && !c->ops->reattach)
			drop_call(c, why);
		else if (c->started)
			c->stream = 0; /* re-attached when connected again */
	}
	schedule_reconnect(s, why);
}

static void try_reconnect(sbx_loop *loop, void *ud)
{
	sbx_session *s = ud;
	s->retry = NULL;
	char err[600];
	sbx_transport *t = s->redial ? s->redial(s->redial_ud, err, sizeof err)
				     : sbx_connect_transport(loop, s->addr, err, sizeof err);
	if (t) {
		attach_transport(s, t);
		return;
	}
	session_enter(s);
	schedule_reconnect(s, err);
	session_leave(s);
}

void session_set_redial(sbx_session *s, sbx_transport *(*redial)(void *ud, char *err, size_t err_len), void *ud,
			void (*free_ud)(void *ud), unsigned tries, unsigned backoff_ms)
{
	s->redial = redial;
	s->redial_ud = ud;
	s->redial_free = free_ud;
	s->redial_tries = tries ? tries : 1;
	s->redial_backoff_ms = backoff_ms ? backoff_ms : RECONNECT_BACKOFF_MS;
	s->opts.reconnect = 1;
}

/* ---------------------------------------------------------------- protocol */

static void on_hello(sbx_conn *conn, const sbx_hello *peer, void *ud)
{
	(void)conn;
	sbx_session *s = ud;
	if (s->boot_id[0] && strcmp(s->boot_id, peer->boot_id) != 0) {
		/* A different agent answered: the commands we knew are gone. */
		sbx_error e;
		sbx_error_set(&e, SBX_E_CONN, ESRCH, "restarted",
			      "the agent restarted (boot id %s, was %s); running commands were lost", peer->boot_id,
			      s->boot_id);
		for (sbx_call *c = s->calls, *next; c; c = next) {
			next = c->next;
			if (c->started)
				call_fail(c, &e);
		}
	}
	snprintf(s->boot_id, sizeof s->boot_id, "%s", peer->boot_id);
	s->reconnect_tries = 0;
	snprintf(s->version, sizeof s->version, "%s", peer->version);
	for (sbx_call *c = s->calls; c; c = c->next) {
		if (c->started && c->ops->reattach && c->stream == 0)
			c->ops->reattach(c);
		else if (!c->started)
			session_start_call(s, c, NULL);
	}
}

static void on_msg(sbx_conn *conn, const sbx_msg *m, void *ud)
{
	(void)ud;
	sbx_call *c = sbx_conn_user(conn, m->stream);
	if (c) /* else a call the caller already gave up on */
		c->ops->on_message(c, m);
}

static void on_credit(sbx_conn *conn, uint32_t stream, void *ud)
{
	(void)conn;
	(void)stream;
	(void)ud; /* session_pump runs after every feed */
}

/* Leaving a transport callback: a destruction requested meanwhile happens
 * now, but the transport itself is closed on the next iteration. */
static void leave_transport(sbx_session *s)
{
	if (s->busy == 1 && s->close_pending) {
		session_destroy(s);
		return;
	}
	s->in_transport--;
	session_leave(s);
}

static void t_on_data(void *ud, const uint8_t *p, size_t n)
{
	sbx_session *s = ud;
	s->in_transport++;
	session_enter(s);
	if (sbx_conn_feed(s->conn, p, n) < 0) {
		session_flush(s); /* tell the agent why (GOAWAY), best effort */
		session_fail(s, sbx_conn_error(s->conn));
	} else if (sbx_conn_out_size(s->conn) > HOST_OUT_MAX) {
		char why[200];
		snprintf(why, sizeof why, "the agent is not reading: %zu bytes are waiting for it (limit %d)",
			 sbx_conn_out_size(s->conn), HOST_OUT_MAX);
		session_fail(s, why);
	} else {
		session_pump(s);
	}
	leave_transport(s);
}

static void t_on_writable(void *ud)
{
	sbx_session *s = ud;
	s->in_transport++;
	session_enter(s);
	session_pump(s);
	leave_transport(s);
}

static void t_on_closed(void *ud, const char *why)
{
	sbx_session *s = ud;
	s->in_transport++;
	session_enter(s);
	char msg[900];
	/* a close in the middle of a frame is reported as a truncated frame */
	if (s->conn && sbx_conn_eof(s->conn))
		snprintf(msg, sizeof msg, "lost the agent: %s; %s", sbx_conn_error(s->conn), why);
	else
		snprintf(msg, sizeof msg, "lost the agent: %s", why);
	lost(s, msg);
	leave_transport(s);
}

/* Fails the calls whose agent is overdue (a stuck or hostile sandbox that
 * never ends a command it was told to stop). One at a time, from the head:
 * a callback may finish or cancel other calls. */
static void expire_overdue(sbx_session *s, uint64_t now)
{
	for (;;) {
		sbx_call *c = s->calls;
		while (c && !(c->deadline_ms && now >= c->deadline_ms))
			c = c->next;
		if (!c)
			return;
		sbx_error e;
		sbx_error_set(&e, SBX_E_TIMEOUT, ETIMEDOUT, "overdue",
			      "the sandbox's agent did not end this call %.0f s after it should have (its timeout "
			      "or a cancel); the sandbox is stuck or misbehaving",
			      (double)s->opts.overdue_ms / 1000);
		if (c->started && c->stream && s->conn)
			sbx_conn_send_cancel(s->conn, c->stream);
		call_fail(c, &e);
	}
}

static void on_tick(sbx_loop *loop, void *ud);

/* Housekeeping: overdue calls, heartbeats, a stalled or silent agent. */
static void tick_work(sbx_session *s)
{
	uint64_t now = sbx_now_ms();
	expire_overdue(s, now);
	if (!s->conn)
		return;
	if (sbx_conn_out_size(s->conn) == 0)
		s->drained_ms = now;
	if (sbx_conn_tick(s->conn, now) < 0) {
		lost(s, sbx_conn_error(s->conn));
	} else if (now - s->drained_ms >= s->opts.dead_ms) {
		char why[200];
		snprintf(why, sizeof why, "the agent read nothing for %llu ms (%zu bytes waiting; connection stalled)",
			 (unsigned long long)(now - s->drained_ms), sbx_conn_out_size(s->conn));
		lost(s, why);
	} else {
		session_flush(s);
	}
}

/* An idle session (no calls, nothing waiting to be sent, handshake done)
 * needs the loop only when a heartbeat falls due: its tick sleeps until
 * then, rounded up to a grid shared by every session so that all the ones
 * due in the same slot fire in one wake-up. A busy one ticks every second
 * (overdue calls, a stalled agent). */
static uint64_t next_tick_due(const sbx_session *s, uint64_t now)
{
	if (s->calls || (s->conn && (!sbx_conn_ready(s->conn) || sbx_conn_out_size(s->conn) > 0)))
		return now + TICK_MS;
	uint64_t slot = s->opts.ping_ms / 4;
	if (slot > HEARTBEAT_SLOT_MS)
		slot = HEARTBEAT_SLOT_MS;
	if (slot == 0)
		slot = 1;
	uint64_t due = s->conn ? sbx_conn_tick_due(s->conn) : now + s->opts.ping_ms;
	if (due < now + 1)
		due = now + 1;
	if (due > now + s->opts.dead_ms)
		due = now + s->opts.dead_ms;
	return (due + slot - 1) / slot * slot;
}

/* (Re)arms the tick for when it is next needed. */
static void arm_tick(sbx_session *s)
{
	uint64_t now = sbx_now_ms();
	uint64_t due = next_tick_due(s, now);
	if (s->tick && s->tick_due <= due)
		return;
	sbx_timer_cancel(s->loop, s->tick);
	s->tick_due = due;
	s->tick = sbx_loop_timer(s->loop, due - now, on_tick, s);
}

/* A call is starting: an idle session's far tick comes forward to 1 s. */
static void busy_tick(sbx_session *s)
{
	if (s->tick && s->tick_due > sbx_now_ms() + TICK_MS)
		arm_tick(s);
}

static void on_tick(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_session *s = ud;
	s->tick = NULL; /* firing: the loop frees it */
	session_enter(s);
	tick_work(s);
	if (!s->close_pending && !s->failed)
		arm_tick(s);
	session_leave(s);
}

static void attach_transport(sbx_session *s, sbx_transport *t)
{
	s->t = t;
	t->ev.on_data = t_on_data;
	t->ev.on_writable = t_on_writable;
	t->ev.on_closed = t_on_closed;
	t->ud = s;
	sbx_conn_config cfg = {
		.role = SBX_ROLE_HOST,
		.hello = {.compress = s->opts.compress},
		.compress = s->opts.compress,
		.clock_ns = sbx_monotonic_ns,
		.fixed_window = sbx_fixed_window_env(), /* pins only the windows the host grants */
		.ping_ms = s->opts.ping_ms,
		.dead_ms = s->opts.dead_ms,
		.cb = {.on_hello = on_hello, .on_msg = on_msg, .on_credit = on_credit},
		.ud = s,
		.auth_key = s->key.len ? &s->key : NULL,
	};
	snprintf(cfg.hello.version, sizeof cfg.hello.version, "libsbx");
	s->drained_ms = sbx_now_ms();
	cfg.hello.pid = getpid();
	s->conn = sbx_conn_new(&cfg);
	busy_tick(s); /* a new handshake is watched every second */
}

/* ---------------------------------------------------------------- public */

/* The secret that so gives (bytes or a file) into k (len 0 when none). 0, or
 * -1 with err set (SBX_E_INVALID: a bad length or file). */
static int load_secret(const sbx_session_opts *so, sbx_auth_key *k, sbx_error *err)
{
	memset(k, 0, sizeof *k);
	if (!so || (!so->secret && !so->secret_file))
		return 0;
	if (so->secret) {
		if (so->secret_len < SBX_AUTH_KEY_MIN || so->secret_len > SBX_AUTH_KEY_MAX) {
			sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "the session's secret is %zu bytes (want %d to %d)",
				      so->secret_len, SBX_AUTH_KEY_MIN, SBX_AUTH_KEY_MAX);
			return -1;
		}
		memcpy(k->bytes, so->secret, so->secret_len);
		k->len = so->secret_len;
		return 0;
	}
	char why[400];
	if (sbx_keyfile_read(so->secret_file, k, why, sizeof why) < 0) {
		sbx_error_set(err, SBX_E_INVALID, EACCES, "auth", "%s", why);
		return -1;
	}
	return 0;
}

/* A session over t (taken: closed when this fails). NULL with err set. */
sbx_session *session_new(sbx_loop *loop, sbx_transport *t, const sbx_session_opts *so, sbx_error *err)
{
	sbx_session *s = calloc(1, sizeof *s);
	if (!s) {
		t->ops->close(t);
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	if (load_secret(so, &s->key, err) < 0) {
		t->ops->close(t);
		free(s);
		return NULL;
	}
	s->loop = loop;
	if (so)
		s->opts = *so;
	s->opts.secret = NULL; /* the caller's memory: ours is s->key */
	s->opts.secret_file = NULL;
	if (!s->opts.ping_ms)
		s->opts.ping_ms = DEFAULT_PING_MS;
	if (!s->opts.dead_ms)
		s->opts.dead_ms = DEFAULT_DEAD_MS;
	if (!s->opts.overdue_ms)
		s->opts.overdue_ms = DEFAULT_OVERDUE_MS;
	unsigned char r[8];
	if (getrandom(r, sizeof r, 0) != sizeof r)
		memset(r, 0, sizeof r);
	for (int i = 0; i < 8; i++)
		snprintf(s->key_prefix + 2 * i, 3, "%02x", r[i]);
	attach_transport(s, t);
	if (!s->conn) {
		t->ops->close(t);
		sbx_wipe(&s->key, sizeof s->key);
		free(s);
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	arm_tick(s);
	return s;
}

/* A session over a transport made elsewhere (e.g. the SSM data channel). */
sbx_session *sbx_session_transport(sbx_loop *loop, sbx_transport *t, const sbx_session_opts *so, sbx_error *err)
{
	return session_new(loop, t, so, err);
}

sbx_session *sbx_session_connect(sbx_loop *loop, const char *addr, const sbx_session_opts *so, sbx_error *err)
{
	char msg[300];
	sbx_transport *t = sbx_connect_transport(loop, addr, msg, sizeof msg);
	if (!t) {
		sbx_error_set(err, SBX_E_CONN, errno, "connection", "%s", msg);
		return NULL;
	}
	sbx_session *s = session_new(loop, t, so, err);
	if (s)
		snprintf(s->addr, sizeof s->addr, "%s", addr);
	return s;
}

/* A session over a local agent's transport just made (NULL: msg says why
 * it could not start). */
static sbx_session *local_session(sbx_loop *loop, sbx_transport *t, const char *msg, const sbx_session_opts *so,
				  sbx_error *err)
{
	if (!t) {
		sbx_error_set(err, SBX_E_LOCAL, errno, "spawn", "%s", msg);
		return NULL;
	}
	return session_new(loop, t, so, err);
}

static sbx_session *spawned(sbx_loop *loop, const sbx_spawn_opts *o, const sbx_session_opts *so, sbx_error *err)
{
	char msg[300];
	sbx_transport *t = sbx_spawn_transport(loop, o, msg, sizeof msg);
	return local_session(loop, t, msg, so, err);
}

sbx_session *sbx_session_command(sbx_loop *loop, const char *const *argv, const sbx_session_opts *so, sbx_error *err)
{
	if (!argv || !argv[0]) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "empty command");
		return NULL;
	}
	sbx_spawn_opts o = {.argv = argv};
	return spawned(loop, &o, so, err);
}

sbx_session *sbx_session_k8s(sbx_loop *loop, const sbx_k8s_conn *k, const sbx_k8s_exec *x,
			     const sbx_session_opts *so, sbx_error *err)
{
	char msg[600];
	sbx_transport *t = sbx_k8s_transport(loop, k, x, msg, sizeof msg);
	sbx_session *s = NULL;
	if (!t)
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "%s", msg);
	else
		s = session_new(loop, t, so, err);
	if (s && so && so->reconnect) { /* a dropped stream: the same exec again (agent --attach) */
		session_set_redial(s, sbx_k8s_dialer_dial, sbx_k8s_dialer_new(loop, k, x), sbx_k8s_dialer_free,
				   K8S_REDIAL_TRIES, K8S_REDIAL_BACKOFF_MS);
		return s; /* the dialer owns k->token_ud */
	}
	if (k && k->token_free)
		k->token_free(k->token_ud);
	return s;
}

/* The agent inside a new box (host/backends/local/): a contained local sandbox. */
static sbx_session *boxed(sbx_loop *loop, const sbx_local_opts *lo, const sbx_session_opts *so, sbx_error *err)
{
	const char *agent = lo && lo->agent_path ? lo->agent_path : sbx_default_agent_path();
	char msg[2048];
	if (sbx_agent_check(agent, msg, sizeof msg) < 0) {
		sbx_error_set(err, SBX_E_INVALID, ENOENT, "invalid", "%s", msg);
		return NULL;
	}
	sbx_transport *t = sbx_box_transport(loop, lo ? lo->box : NULL, agent, lo ? lo->workdir : NULL, msg, sizeof msg);
	return local_session(loop, t, msg, so, err);
}

sbx_session *sbx_session_local(sbx_loop *loop, const sbx_local_opts *lo, const sbx_session_opts *so, sbx_error *err)
{
	if (!lo || !lo->host)
		return boxed(loop, lo, so, err);
	const char *agent = lo && lo->agent_path ? lo->agent_path : sbx_default_agent_path();
	char msg[2048];
	if (sbx_agent_check(agent, msg, sizeof msg) < 0) {
		sbx_error_set(err, SBX_E_INVALID, ENOENT, "invalid", "%s", msg);
		return NULL;
	}
	const char *argv[] = {agent, "--stdio", NULL};
	sbx_spawn_opts o = {
		.argv = argv,
		.envp = lo && lo->env ? lo->env : sbx_sandbox_env,
		.workdir = lo ? lo->workdir : NULL,
		.isolate = lo ? lo->isolate : 0,
	};
	/* The private /tmp of an isolated sandbox would hide a workdir under
	 * /tmp (the agent could not even start there): keep it visible. */
	if (o.isolate && o.workdir && strncmp(o.workdir, "/tmp/", 5) == 0)
		o.keep_dir = o.workdir;
	return spawned(loop, &o, so, err);
}

int sbx_session_ready(const sbx_session *s) { return s->conn && sbx_conn_ready(s->conn); }
const char *sbx_session_agent_version(const sbx_session *s) { return s->version; }
const char *sbx_session_boot_id(const sbx_session *s) { return s->boot_id; }
const sbx_error *sbx_session_failure(const sbx_session *s) { return s->failed ? &s->failure : NULL; }

size_t sbx_session_pending(const sbx_session *s)
{
	size_t n = 0;
	for (sbx_call *c = s->calls; c; c = c->next)
		n++;
	return n;
}

static void on_wait_timeout(sbx_loop *loop, void *ud)
{
	(void)loop;
	*(int *)ud = 1;
}

int sbx_session_wait_ready(sbx_session *s, double timeout_s, sbx_error *err)
{
	int timed_out = 0;
	sbx_timer *t = sbx_loop_timer(s->loop, (uint64_t)(timeout_s * 1000), on_wait_timeout, &timed_out);
	while (!s->failed && !sbx_session_ready(s) && !timed_out)
		if (sbx_loop_run_once(s->loop, -1) < 0)
			break;
	if (!timed_out)
		sbx_timer_cancel(s->loop, t);
	if (sbx_session_ready(s))
		return 0;
	if (s->failed)
		*err = s->failure;
	else
		sbx_error_set(err, SBX_E_CONN, ETIMEDOUT, "timeout", "the agent did not say HELLO within %.1f s",
			      timeout_s);
	return -1;
}

static void session_destroy(sbx_session *s)
{
	sbx_error e;
	sbx_error_set(&e, SBX_E_CANCELLED, ECANCELED, "cancelled", "the session was closed");
	s->busy++; /* on_done callbacks must not re-enter destruction */
	fail_all(s, &e);
	sbx_timer_cancel(s->loop, s->tick);
	sbx_timer_cancel(s->loop, s->retry);
	drop_transport(s);
	if (s->redial_free)
		s->redial_free(s->redial_ud);
	sbx_wipe(&s->key, sizeof s->key);
	free(s);
}

void sbx_session_close(sbx_session *s)
{
	if (!s)
		return;
	if (s->busy) {
		s->close_pending = 1;
		return;
	}
	session_destroy(s);
}

/* Keys of finished commands, sent with the next EXEC so the agent can
 * drop what it kept for re-attaching. */
void session_forget(sbx_session *s, const char *key)
{
	if (s->nforget < FORGET_MAX)
		snprintf(s->forget[s->nforget++], sizeof s->forget[0], "%s", key);
}
