/* test_ssm_msg.c — host/backends/aws/ssm_msg.c and ssm_channel.c: the SSM data
 * channel's binary message layout (checked byte by byte against a message
 * built here from the documented offsets), its JSON payloads, hostile
 * input, and the reliable-delivery state machine between a client and an
 * agent side over a simulated network that drops, duplicates and reorders
 * messages. */
#include "backends/aws/ssm_channel.h"
#include "backends/aws/ssm_msg.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static const uint8_t UUID_BYTES[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
				       0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe};

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

/* A message laid out by hand from the documented offsets. */
static size_t handmade(uint8_t *b, const char *type, int left_nul_pad, int64_t seq, const char *payload)
{
	size_t pl = strlen(payload);
	memset(b, 0, 120 + pl);
	be32(b, 116);
	size_t tl = strlen(type);
	if (left_nul_pad) {
		memcpy(b + 4 + 32 - tl, type, tl); /* ssm-session style: NULs before */
	} else {
		memset(b + 4, ' ', 32);
		memcpy(b + 4, type, tl);
	}
	be32(b + 36, 1);
	be64(b + 40, 1700000000123ull);
	be64(b + 48, (uint64_t)seq);
	be64(b + 56, 0);
	memcpy(b + 64, UUID_BYTES + 8, 8);
	memcpy(b + 72, UUID_BYTES, 8);
	SHA256((const unsigned char *)payload, pl, b + 80);
	be32(b + 112, SSM_PAYLOAD_OUTPUT);
	be32(b + 116, (uint32_t)pl);
	memcpy(b + 120, payload, pl);
	return 120 + pl;
}

static void layout_matches_documented_offsets(void)
{
	uint8_t want[256];
	size_t wn = handmade(want, "output_stream_data", 0, 7, "hello");
	sbx_buf got = {0};
	CHECK(ssm_msg_encode(&got, SSM_OUTPUT_STREAM, 7, 0, UUID_BYTES, SSM_PAYLOAD_OUTPUT, "hello", 5,
			     1700000000123ull) == 0);
	int same = got.len == wn && memcmp(got.data, want, wn) == 0;
	sbx_buf_free(&got);
	CHECK(same);

	ssm_msg m;
	char why[256];
	CHECK(ssm_msg_decode(want, wn, 1, &m, why, sizeof why) == 0);
	CHECK_EQ_STR(m.type, "output_stream_data");
	CHECK_EQ_INT(m.schema_version, 1);
	CHECK(m.created_ms == 1700000000123ull);
	CHECK_EQ_INT(m.seq, 7);
	CHECK(memcmp(m.id, UUID_BYTES, 16) == 0);
	CHECK_EQ_INT(m.payload_type, SSM_PAYLOAD_OUTPUT);
	CHECK_EQ_INT(m.payload_len, 5);
	CHECK(memcmp(m.payload, "hello", 5) == 0);
	char id[37];
	ssm_uuid_format(m.id, id);
	CHECK_EQ_STR(id, "01234567-89ab-cdef-1032-547698badcfe");

	/* ssm-session pads the type with NULs in front. */
	wn = handmade(want, "input_stream_data", 1, 0, "");
	CHECK(ssm_msg_decode(want, wn, 1, &m, why, sizeof why) == 0);
	CHECK_EQ_STR(m.type, "input_stream_data");
	CHECK_EQ_INT(m.payload_len, 0);
}

static void uuids(void)
{
	uint8_t a[16], b[16], c[16];
	ssm_uuid_random(a);
	ssm_uuid_random(b);
	CHECK(memcmp(a, b, 16) != 0);
	CHECK((a[6] >> 4) == 4 && (a[8] & 0xc0) == 0x80);
	char s[37];
	ssm_uuid_format(a, s);
	CHECK(ssm_uuid_parse(s, c) == 0 && memcmp(a, c, 16) == 0);
	CHECK(ssm_uuid_parse("01234567-89AB-cdef-1032-547698badcfe", c) == 0 && memcmp(c, UUID_BYTES, 16) == 0);
	CHECK(ssm_uuid_parse("0123456789ab-cdef-1032-547698badcfe", c) == -1);
	CHECK(ssm_uuid_parse("01234567-89ab-cdef-1032-547698badcfg", c) == -1);
	CHECK(ssm_uuid_parse("", c) == -1);
}

static void hostile_messages_are_refused(void)
{
	uint8_t b[256];
	ssm_msg m;
	char why[256];
	size_t n = handmade(b, "output_stream_data", 0, 1, "payload");

	CHECK(ssm_msg_decode(b, 119, 0, &m, why, sizeof why) == -1);
	CHECK(strstr(why, "shorter") != NULL);

	uint8_t c[256];
	memcpy(c, b, n);
	be32(c, 115);
	CHECK(ssm_msg_decode(c, n, 0, &m, why, sizeof why) == -1);
	CHECK(strstr(why, "header length") != NULL);
	be32(c, 0xffffffffu);
	CHECK(ssm_msg_decode(c, n, 0, &m, why, sizeof why) == -1);

	memcpy(c, b, n);
	be32(c + 116, 1000);
	CHECK(ssm_msg_decode(c, n, 0, &m, why, sizeof why) == -1);
	CHECK(strstr(why, "1000 bytes but carries 7") != NULL);
	CHECK(ssm_msg_decode(b, n - 1, 0, &m, why, sizeof why) == -1);

	memcpy(c, b, n);
	c[120] ^= 1;
	CHECK(ssm_msg_decode(c, n, 0, &m, why, sizeof why) == 0); /* the agent does not check */
	CHECK(ssm_msg_decode(c, n, 1, &m, why, sizeof why) == -1);
	CHECK(strstr(why, "digest") != NULL);

	memcpy(c, b, n);
	c[6] = 0x07;
	CHECK(ssm_msg_decode(c, n, 0, &m, why, sizeof why) == -1);
	CHECK(strstr(why, "printable") != NULL);

	memcpy(c, b, n);
	be64(c + 48, (uint64_t)-5);
	CHECK(ssm_msg_decode(c, n, 0, &m, why, sizeof why) == -1);

	/* A longer header (a future field) is skipped by header length. */
	uint8_t d[300];
	memcpy(d, b, 116);
	be32(d, 124);
	memset(d + 116, 0xee, 8);
	be32(d + 124, 7);
	memcpy(d + 128, "payload", 7);
	CHECK(ssm_msg_decode(d, 135, 1, &m, why, sizeof why) == 0);
	CHECK(m.payload_len == 7 && memcmp(m.payload, "payload", 7) == 0);

	sbx_buf out = {0};
	CHECK(ssm_msg_encode(&out, "a_type_name_longer_than_32_bytes!", 0, 0, UUID_BYTES, 1, "", 0, 0) == -1);
	CHECK(ssm_msg_encode(&out, "", 0, 0, UUID_BYTES, 1, "", 0, 0) == -1);
	CHECK(ssm_msg_encode(&out, "x", -1, 0, UUID_BYTES, 1, "", 0, 0) == -1);
	sbx_buf_free(&out);

	/* Random and mutated bytes never crash the decoder. */
	for (int i = 0; i < 20000; i++) {
		uint8_t r[200];
		size_t rn = rnd() % sizeof r;
		if (i % 2) {
			memcpy(r, b, n);
			rn = n;
			r[rnd() % n] = (uint8_t)rnd();
		} else {
			for (size_t k = 0; k < rn; k++)
				r[k] = (uint8_t)rnd();
		}
		ssm_msg_decode(r, rn, i % 3 == 0, &m, why, sizeof why);
	}
}

static void json_payloads(void)
{
	char why[256];
	sbx_buf b = {0};
	CHECK(ssm_open_data_channel_json(&b, "tok-123", "client-1", "1.2.0.0") == 0);
	char token[64];
	int rc = ssm_parse_open_data_channel((char *)b.data, b.len, token, sizeof token, why, sizeof why);
	int has = strstr((char *)b.data, "\"MessageSchemaVersion\":\"1.0\"") && strstr((char *)b.data, "RequestId") &&
		  strstr((char *)b.data, "\"ClientId\":\"client-1\"") && strstr((char *)b.data, "\"ClientVersion\"");
	sbx_buf_free(&b);
	CHECK(rc == 0 && has);
	CHECK_EQ_STR(token, "tok-123");
	CHECK(ssm_parse_open_data_channel("{\"MessageSchemaVersion\":\"1.0\"}", 30, token, sizeof token, why,
					  sizeof why) == -1);
	CHECK(strstr(why, "TokenValue") != NULL);

	/* Acknowledgements name the message's type, hyphenated id and sequence number. */
	ssm_msg m = {.type = "output_stream_data", .seq = 42};
	memcpy(m.id, UUID_BYTES, 16);
	CHECK(ssm_ack_json(&b, &m) == 0);
	ssm_ack ack;
	rc = ssm_parse_ack(b.data, b.len, &ack, why, sizeof why);
	has = strstr((char *)b.data, "\"AcknowledgedMessageId\":\"01234567-89ab-cdef-1032-547698badcfe\"") &&
	      strstr((char *)b.data, "\"IsSequentialMessage\":true");
	sbx_buf_free(&b);
	CHECK(rc == 0 && has);
	CHECK_EQ_STR(ack.type, "output_stream_data");
	CHECK(ack.seq == 42 && memcmp(ack.id, UUID_BYTES, 16) == 0);
	const char *badack = "{\"AcknowledgedMessageType\":\"x\",\"AcknowledgedMessageId\":\"nope\","
			     "\"AcknowledgedMessageSequenceNumber\":1}";
	CHECK(ssm_parse_ack((const uint8_t *)badack, strlen(badack), &ack, why, sizeof why) == -1);
	CHECK(ssm_parse_ack((const uint8_t *)"[]", 2, &ack, why, sizeof why) == -1);

	/* The agent's handshake request for a port session, with KMS asked for. */
	const char *req = "{\"AgentVersion\":\"3.3.0.0\",\"RequestedClientActions\":["
			  "{\"ActionType\":\"KMSEncryption\",\"ActionParameters\":{\"KMSKeyId\":\"k\"}},"
			  "{\"ActionType\":\"SessionType\",\"ActionParameters\":{\"SessionType\":\"Port\","
			  "\"Properties\":{\"portNumber\":\"7000\",\"type\":\"LocalPortForwarding\"}}}]}";
	ssm_handshake_req hr;
	CHECK(ssm_parse_handshake_request((const uint8_t *)req, strlen(req), &hr, why, sizeof why) == 0);
	CHECK_EQ_STR(hr.agent_version, "3.3.0.0");
	CHECK_EQ_STR(hr.session_type, "Port");
	CHECK_EQ_STR(hr.port_number, "7000");
	CHECK_EQ_STR(hr.port_type, "LocalPortForwarding");
	CHECK(hr.has_kms && hr.n_actions == 2);
	CHECK(ssm_handshake_response_json(&b, "1.2.0.0", &hr) == 0);
	char cv[32];
	rc = ssm_parse_handshake_response(b.data, b.len, cv, sizeof cv, why, sizeof why);
	has = strstr((char *)b.data, "\"ActionType\":\"KMSEncryption\",") != NULL &&
	      strstr((char *)b.data, "\"ActionStatus\":3") != NULL;
	sbx_buf_free(&b);
	CHECK(rc == 0 && has);
	CHECK_EQ_STR(cv, "1.2.0.0");

	CHECK(ssm_handshake_request_json(&b, "3.3.0.0", "7000") == 0);
	rc = ssm_parse_handshake_request(b.data, b.len, &hr, why, sizeof why);
	sbx_buf_free(&b);
	CHECK(rc == 0 && !hr.has_kms);
	CHECK_EQ_STR(hr.port_number, "7000");
	const char *numeric = "{\"RequestedClientActions\":[{\"ActionType\":\"SessionType\",\"ActionParameters\":"
			      "{\"SessionType\":\"Port\",\"Properties\":{\"portNumber\":7000}}}]}";
	CHECK(ssm_parse_handshake_request((const uint8_t *)numeric, strlen(numeric), &hr, why, sizeof why) == 0);
	CHECK_EQ_STR(hr.port_number, "7000");
	const char *nosession = "{\"RequestedClientActions\":[]}";
	CHECK(ssm_parse_handshake_request((const uint8_t *)nosession, strlen(nosession), &hr, why, sizeof why) == -1);
	CHECK(strstr(why, "SessionType") != NULL);
	CHECK(ssm_parse_handshake_request((const uint8_t *)"{\"RequestedClientActions\":[7]}", 30, &hr, why,
					  sizeof why) == -1);

	CHECK(ssm_handshake_complete_json(&b, 1500000, "welcome") == 0);
	char cm[32];
	rc = ssm_parse_handshake_complete(b.data, b.len, cm, sizeof cm, why, sizeof why);
	sbx_buf_free(&b);
	CHECK(rc == 0);
	CHECK_EQ_STR(cm, "welcome");

	CHECK(ssm_channel_closed_json(&b, "sess-1", "Session terminated") == 0);
	char sid[32], out[64];
	rc = ssm_parse_channel_closed(b.data, b.len, sid, sizeof sid, out, sizeof out, why, sizeof why);
	sbx_buf_free(&b);
	CHECK(rc == 0);
	CHECK_EQ_STR(sid, "sess-1");
	CHECK_EQ_STR(out, "Session terminated");

	uint8_t f[4];
	uint32_t flag;
	ssm_flag_payload(SSM_FLAG_DISCONNECT_TO_PORT, f);
	CHECK(f[0] == 0 && f[3] == 1);
	CHECK(ssm_parse_flag(f, 4, &flag) == 0 && flag == 1);
	CHECK(ssm_parse_flag(f, 3, &flag) == -1);
}

/* ------------------------------------------------ reliable delivery */

/* A simulated network: messages in flight with a delivery time. */
typedef struct packet {
	uint8_t *b;
	size_t n;
	uint64_t at;
	int to_agent;
} packet;

typedef struct net {
	packet q[20000];
	size_t n;
	unsigned drop_pct, dup_pct, jitter_ms;
	uint64_t now;
	int sending_to_agent;
} net;

typedef struct side {
	net *net;
	int agent;
	sbx_buf got;       /* delivered payload bytes, in order */
	uint32_t last_type;
	int closed;
	char closed_why[128];
} side;

static void net_send(void *ud, const uint8_t *msg, size_t n)
{
	side *s = ud;
	net *nt = s->net;
	int copies = 1;
	if (rnd() % 100 < nt->drop_pct)
		copies = 0;
	else if (rnd() % 100 < nt->dup_pct)
		copies = 2;
	for (int i = 0; i < copies && nt->n < 20000; i++) {
		packet *p = &nt->q[nt->n++];
		p->b = malloc(n);
		memcpy(p->b, msg, n);
		p->n = n;
		p->at = nt->now + 1 + (nt->jitter_ms ? rnd() % nt->jitter_ms : 0);
		p->to_agent = !s->agent;
	}
}

static void on_data(void *ud, uint32_t type, const uint8_t *p, size_t n)
{
	side *s = ud;
	s->last_type = type;
	sbx_buf_append(&s->got, p, n);
}

static void on_closed(void *ud, const char *output)
{
	side *s = ud;
	s->closed = 1;
	snprintf(s->closed_why, sizeof s->closed_why, "%s", output);
}

/* Deliver every packet due by now; returns how many. */
static int net_run(net *nt, ssm_channel *client, ssm_channel *agent, int *errors)
{
	int done = 0;
	for (size_t i = 0; i < nt->n;) {
		packet p = nt->q[i];
		if (p.at > nt->now) {
			i++;
			continue;
		}
		nt->q[i] = nt->q[--nt->n];
		char why[256];
		if (ssm_channel_input(p.to_agent ? agent : client, p.b, p.n, nt->now, why, sizeof why) < 0)
			(*errors)++;
		free(p.b);
		done++;
	}
	return done;
}

static void net_free(net *nt)
{
	for (size_t i = 0; i < nt->n; i++)
		free(nt->q[i].b);
	nt->n = 0;
}

static void transfer_over(unsigned drop, unsigned dup, unsigned jitter, size_t nmsgs)
{
	static net nt;
	memset(&nt, 0, sizeof nt);
	nt.drop_pct = drop;
	nt.dup_pct = dup;
	nt.jitter_ms = jitter;
	side cs = {&nt, 0, {0}, 0, 0, ""}, as = {&nt, 1, {0}, 0, 0, ""};
	ssm_channel_cb ccb = {net_send, on_data, on_closed, &cs}, acb = {net_send, on_data, on_closed, &as};
	ssm_channel_opts co = {.check_digest = 1, .max_unacked = 64}, ao = {.agent_side = 1, .max_unacked = 64};
	ssm_channel *client = ssm_channel_new(&co, &ccb), *agent = ssm_channel_new(&ao, &acb);
	CHECK(client && agent);

	/* Message i carries i as text; both directions at once. */
	size_t sent_c = 0, sent_a = 0;
	int errors = 0;
	char why[256];
	for (int rounds = 0; rounds < 200000; rounds++) {
		while (sent_c < nmsgs && ssm_channel_writable(client)) {
			char t[16];
			int l = snprintf(t, sizeof t, "%zu,", sent_c);
			CHECK(ssm_channel_send(client, SSM_PAYLOAD_OUTPUT, t, (size_t)l, nt.now) == 0);
			sent_c++;
		}
		while (sent_a < nmsgs && ssm_channel_writable(agent)) {
			char t[16];
			int l = snprintf(t, sizeof t, "%zu,", sent_a);
			CHECK(ssm_channel_send(agent, SSM_PAYLOAD_OUTPUT, t, (size_t)l, nt.now) == 0);
			sent_a++;
		}
		if (sent_c == nmsgs && sent_a == nmsgs && ssm_channel_unacked(client) == 0 &&
		    ssm_channel_unacked(agent) == 0 && nt.n == 0)
			break;
		nt.now += 5;
		net_run(&nt, client, agent, &errors);
		CHECK(ssm_channel_tick(client, nt.now, why, sizeof why) == 0);
		CHECK(ssm_channel_tick(agent, nt.now, why, sizeof why) == 0);
	}
	sbx_buf want = {0};
	for (size_t i = 0; i < nmsgs; i++) {
		char t[16];
		int l = snprintf(t, sizeof t, "%zu,", i);
		sbx_buf_append(&want, t, (size_t)l);
	}
	int ok_c = cs.got.len == want.len && memcmp(cs.got.data, want.data, want.len) == 0;
	int ok_a = as.got.len == want.len && memcmp(as.got.data, want.data, want.len) == 0;
	size_t left = ssm_channel_unacked(client) + ssm_channel_unacked(agent);
	size_t buffered = ssm_channel_buffered(client) + ssm_channel_buffered(agent);
	uint64_t resends = ssm_channel_resends(client) + ssm_channel_resends(agent);
	unsigned rto = ssm_channel_rto_ms(client);
	sbx_buf_free(&want);
	sbx_buf_free(&cs.got);
	sbx_buf_free(&as.got);
	ssm_channel_free(client);
	ssm_channel_free(agent);
	net_free(&nt);
	CHECK_EQ_INT(errors, 0);
	CHECK(ok_c);
	CHECK(ok_a);
	CHECK_EQ_INT(left, 0);
	CHECK_EQ_INT(buffered, 0);
	CHECK(rto >= 200 && rto <= 8000);
	if (drop)
		CHECK(resends > 0);
}

static void delivery_on_a_clean_network(void)
{
	transfer_over(0, 0, 0, 3000);
}

static void delivery_despite_loss_dups_and_reordering(void)
{
	transfer_over(20, 10, 40, 2000);
}

static void window_pause_and_giving_up(void)
{
	static net nt;
	memset(&nt, 0, sizeof nt);
	nt.drop_pct = 100; /* nothing arrives */
	side cs = {&nt, 0, {0}, 0, 0, ""};
	ssm_channel_cb cb = {net_send, on_data, on_closed, &cs};
	ssm_channel_opts o = {.max_unacked = 4, .max_resends = 5};
	ssm_channel *ch = ssm_channel_new(&o, &cb);
	for (int i = 0; i < 4; i++)
		CHECK(ssm_channel_send(ch, 1, "x", 1, 0) == 0);
	errno = 0;
	CHECK(ssm_channel_send(ch, 1, "x", 1, 0) == -1 && errno == EAGAIN);
	CHECK(!ssm_channel_writable(ch));
	CHECK(ssm_channel_next_deadline(ch) == 1000); /* no round trip measured yet */
	char why[256] = "";
	int rc = 0;
	uint64_t t = 0;
	unsigned rtos[8] = {0}, nrto = 0;
	for (; t < 60000 && rc == 0; t += 50) {
		uint64_t before = ssm_channel_resends(ch);
		rc = ssm_channel_tick(ch, t, why, sizeof why);
		if (ssm_channel_resends(ch) != before && nrto < 8)
			rtos[nrto++] = ssm_channel_rto_ms(ch);
	}
	CHECK(rc == -1);
	/* a silent link: the timeout doubles after each expiry (1, 2, 4, 8 s), up to its ceiling */
	CHECK(nrto == 4 && rtos[0] == 2000 && rtos[1] == 4000 && rtos[2] == 8000 && rtos[3] == 8000);
	CHECK(t > 1000 + 2000 + 4000 + 8000);
	CHECK(strstr(why, "without an acknowledgement") != NULL);

	/* pause_publication stops sending and resending; start_publication resumes. */
	ssm_channel_free(ch);
	o.max_resends = 0;
	ch = ssm_channel_new(&o, &cb);
	sbx_buf b = {0};
	uint8_t id[16];
	ssm_uuid_random(id);
	ssm_msg_encode(&b, SSM_PAUSE_PUBLICATION, 0, 0, id, 0, "", 0, 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == 0);
	CHECK(!ssm_channel_writable(ch));
	CHECK(ssm_channel_send(ch, 1, "x", 1, 0) == -1 && errno == EAGAIN);
	sbx_buf_clear(&b);
	ssm_msg_encode(&b, SSM_START_PUBLICATION, 0, 0, id, 0, "", 0, 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == 0);
	CHECK(ssm_channel_writable(ch));

	/* channel_closed reaches the caller with its text. */
	sbx_buf_clear(&b);
	sbx_buf payload = {0};
	ssm_channel_closed_json(&payload, "s-1", "Session s-1 was terminated");
	ssm_msg_encode(&b, SSM_CHANNEL_CLOSED, 0, 0, id, 0, payload.data, (uint32_t)payload.len, 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == 0);
	CHECK(cs.closed);
	CHECK_EQ_STR(cs.closed_why, "Session s-1 was terminated");

	/* Our own direction's type from the peer is a protocol error. */
	sbx_buf_clear(&b);
	ssm_msg_encode(&b, SSM_INPUT_STREAM, 0, 0, id, 1, "x", 1, 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == -1);
	CHECK(strstr(why, "input_stream_data") != NULL);
	sbx_buf_free(&b);
	sbx_buf_free(&payload);
	ssm_channel_free(ch);
	net_free(&nt);
}

static void hostile_peer(void)
{
	static net nt;
	memset(&nt, 0, sizeof nt);
	side cs = {&nt, 0, {0}, 0, 0, ""};
	ssm_channel_cb cb = {net_send, on_data, on_closed, &cs};
	ssm_channel_opts o = {.check_digest = 1, .max_reorder = 8};
	ssm_channel *ch = ssm_channel_new(&o, &cb);
	char why[256];
	sbx_buf b = {0};
	uint8_t id[16];
	ssm_uuid_random(id);

	/* Far ahead of the window: neither delivered nor acknowledged. */
	ssm_msg_encode(&b, SSM_OUTPUT_STREAM, 1000, 0, id, 1, "far", 3, 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == 0);
	CHECK_EQ_INT(nt.n, 0);
	CHECK_EQ_INT(ssm_channel_buffered(ch), 0);

	/* Early within the window: buffered and acknowledged; then seq 0 releases both. */
	sbx_buf_clear(&b);
	ssm_msg_encode(&b, SSM_OUTPUT_STREAM, 1, 0, id, 1, "B", 1, 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == 0); /* duplicate early */
	CHECK_EQ_INT(ssm_channel_buffered(ch), 1);
	CHECK_EQ_INT(nt.n, 2);
	sbx_buf_clear(&b);
	ssm_msg_encode(&b, SSM_OUTPUT_STREAM, 0, 0, id, 1, "A", 1, 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == 0);
	CHECK(cs.got.len == 2 && memcmp(cs.got.data, "AB", 2) == 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == 0); /* late duplicate: acked only */
	CHECK(cs.got.len == 2);
	CHECK_EQ_INT(nt.n, 4);

	/* Acks for messages never sent, with wrong ids, or malformed, change nothing. */
	CHECK(ssm_channel_send(ch, 1, "mine", 4, 0) == 0);
	ssm_msg fake = {.type = SSM_INPUT_STREAM, .seq = 0};
	ssm_uuid_random(fake.id);
	sbx_buf payload = {0};
	ssm_ack_json(&payload, &fake);
	sbx_buf_clear(&b);
	ssm_msg_encode(&b, SSM_ACKNOWLEDGE, 0, 3, id, 0, payload.data, (uint32_t)payload.len, 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == 0);
	CHECK_EQ_INT(ssm_channel_unacked(ch), 1);
	fake.seq = 99;
	sbx_buf_clear(&payload);
	ssm_ack_json(&payload, &fake);
	sbx_buf_clear(&b);
	ssm_msg_encode(&b, SSM_ACKNOWLEDGE, 0, 3, id, 0, payload.data, (uint32_t)payload.len, 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == 0);
	sbx_buf_clear(&b);
	ssm_msg_encode(&b, SSM_ACKNOWLEDGE, 0, 3, id, 0, "{nope", 5, 0);
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == 0);
	CHECK_EQ_INT(ssm_channel_unacked(ch), 1);

	/* After a re-dial everything unacknowledged goes again. */
	size_t before = nt.n;
	ssm_channel_resend_all(ch, 10);
	CHECK_EQ_INT(nt.n, before + 1);

	/* A bad digest is an error for the client side. */
	sbx_buf_clear(&b);
	ssm_msg_encode(&b, SSM_OUTPUT_STREAM, 2, 0, id, 1, "C", 1, 0);
	b.data[120] = 'D';
	CHECK(ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why) == -1);
	CHECK(strstr(why, "digest") != NULL);

	/* Random garbage never crashes it. */
	for (int i = 0; i < 5000; i++) {
		sbx_buf_clear(&b);
		ssm_msg_encode(&b, (i % 3) ? SSM_OUTPUT_STREAM : SSM_ACKNOWLEDGE, rnd() % 16, rnd(), id, rnd() % 13,
			       "{\"AcknowledgedMessageType\":\"input_stream_data\"}", 47, 0);
		b.data[rnd() % b.len] = (uint8_t)rnd();
		ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why);
	}
	sbx_buf_free(&b);
	sbx_buf_free(&payload);
	sbx_buf_free(&cs.got);
	ssm_channel_free(ch);
	net_free(&nt);
}

/* ------------------------------------------- round trip that changes */

/* A link with a one-way delay that the test changes, and a rate: at most
 * per_ms messages leave each direction per millisecond, queued in order. */
typedef struct rtt_link {
	packet *q;
	size_t n, cap;
	uint64_t now;
	unsigned delay_ms;        /* one way */
	unsigned per_ms;          /* messages a millisecond */
	uint64_t slot_ms[2];      /* per direction: the millisecond the next message leaves in */
	unsigned used[2];         /* messages already leaving in that millisecond */
} rtt_link;

typedef struct rtt_side {
	rtt_link *l;
	int agent;
	uint64_t delivered;
} rtt_side;

static void rtt_send(void *ud, const uint8_t *msg, size_t n)
{
	rtt_side *sd = ud;
	rtt_link *l = sd->l;
	int dir = sd->agent;
	if (l->slot_ms[dir] < l->now) {
		l->slot_ms[dir] = l->now;
		l->used[dir] = 0;
	}
	if (l->used[dir] == l->per_ms) {
		l->slot_ms[dir]++;
		l->used[dir] = 0;
	}
	l->used[dir]++;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 4096;
		l->q = realloc(l->q, l->cap * sizeof *l->q);
	}
	packet *p = &l->q[l->n++];
	p->b = malloc(n);
	memcpy(p->b, msg, n);
	p->n = n;
	p->at = l->slot_ms[dir] + l->delay_ms;
	p->to_agent = !sd->agent;
}

static void rtt_data(void *ud, uint32_t type, const uint8_t *p, size_t n)
{
	(void)type, (void)p, (void)n;
	((rtt_side *)ud)->delivered++;
}

/* Deliver what is due, in the order sent (the queue keeps it); how many
 * messages were refused. */
static int rtt_run(rtt_link *l, ssm_channel *client, ssm_channel *agent)
{
	size_t keep = 0;
	int errors = 0;
	for (size_t i = 0; i < l->n; i++) {
		packet p = l->q[i];
		if (p.at > l->now) {
			l->q[keep++] = p;
			continue;
		}
		char why[256];
		errors += ssm_channel_input(p.to_agent ? agent : client, p.b, p.n, l->now, why, sizeof why) < 0;
		free(p.b);
	}
	l->n = keep;
	return errors;
}

typedef struct rtt_result {
	uint64_t delivered, resends, ms_after; /* ms_after: how long the part after the change took */
	int errors;
} rtt_result;

/* An upload of n messages; once `at` are delivered the one-way delay
 * becomes delay2. */
static rtt_result upload_across_rtt_change(uint64_t n, uint64_t at, unsigned delay1, unsigned delay2)
{
	rtt_result r = {0};
	rtt_link l = {.delay_ms = delay1, .per_ms = 100};
	rtt_side cs = {&l, 0, 0}, as = {&l, 1, 0};
	ssm_channel_cb ccb = {rtt_send, rtt_data, on_closed, &cs}, acb = {rtt_send, rtt_data, on_closed, &as};
	ssm_channel_opts co = {.check_digest = 1}, ao = {.agent_side = 1};
	ssm_channel *client = ssm_channel_new(&co, &ccb), *agent = ssm_channel_new(&ao, &acb);
	uint64_t sent = 0, changed_ms = 0;
	char why[256];
	while (as.delivered < n && l.now < 600000) {
		r.errors += rtt_run(&l, client, agent);
		if (!changed_ms && as.delivered >= at) {
			l.delay_ms = delay2;
			changed_ms = l.now;
		}
		while (sent < n && ssm_channel_writable(client)) {
			r.errors += ssm_channel_send(client, SSM_PAYLOAD_OUTPUT, "x", 1, l.now) < 0;
			sent++;
		}
		r.errors += ssm_channel_tick(client, l.now, why, sizeof why) < 0;
		r.errors += ssm_channel_tick(agent, l.now, why, sizeof why) < 0;
		l.now++;
	}
	r.delivered = as.delivered;
	r.resends = ssm_channel_resends(client) + ssm_channel_resends(agent);
	r.ms_after = l.now - changed_ms;
	for (size_t i = 0; i < l.n; i++)
		free(l.q[i].b);
	free(l.q);
	ssm_channel_free(client);
	ssm_channel_free(agent);
	return r;
}

/* After the change the window must move at >= 80% of window / round trip. */
static int keeps_rate(const rtt_result *r, uint64_t n, uint64_t at, unsigned delay2)
{
	double rate = (double)(n - at) / (double)r->ms_after;
	double allowed = 1024.0 / (2.0 * delay2);
	if (rate < 0.8 * allowed)
		printf("     %.2f messages/ms after the change, the window allows %.2f\n", rate, allowed);
	return rate >= 0.8 * allowed;
}

/* The round trip jumps from 20 ms to 150 ms mid-transfer (a route change,
 * a loaded relay) and later falls back: no message is resent (the link
 * loses none), and after the jump the window still moves at the rate the
 * new round trip allows (1024 messages per 150 ms; the link itself carries
 * 100 a millisecond). A timeout tied to the old round trip (the plugin's:
 * srtt + max(10 ms, 4 rttvar), ~30 ms here) would resend the whole window,
 * each time. */
static void retransmission_follows_a_changing_round_trip(void)
{
	uint64_t n = 40000, at = 10000;
	rtt_result r = upload_across_rtt_change(n, at, 10, 75);
	CHECK_EQ_INT(r.errors, 0);
	CHECK_EQ_INT(r.delivered, n);
	CHECK_EQ_INT(r.resends, 0);
	CHECK(keeps_rate(&r, n, at, 75));

	/* And back down: the estimate follows without resending either. */
	r = upload_across_rtt_change(n, at, 75, 10);
	CHECK_EQ_INT(r.errors, 0);
	CHECK_EQ_INT(r.delivered, n);
	CHECK_EQ_INT(r.resends, 0);
	CHECK(keeps_rate(&r, n, at, 10));
}

/* Acknowledge the message the channel sent as packet i of nt. */
static int ack_sent(ssm_channel *ch, const net *nt, size_t i)
{
	ssm_msg m;
	char why[256];
	sbx_buf payload = {0}, b = {0};
	uint8_t id[16];
	ssm_uuid_random(id);
	int rc = ssm_msg_decode(nt->q[i].b, nt->q[i].n, 1, &m, why, sizeof why);
	if (rc == 0)
		rc = ssm_ack_json(&payload, &m);
	if (rc == 0)
		rc = ssm_msg_encode(&b, SSM_ACKNOWLEDGE, 0, 3, id, 0, payload.data, (uint32_t)payload.len, 0);
	if (rc == 0)
		rc = ssm_channel_input(ch, b.data, b.len, 0, why, sizeof why);
	sbx_buf_free(&payload);
	sbx_buf_free(&b);
	return rc;
}

/* The agent drops a duplicate without acknowledging it: a message whose ack
 * was lost with the WebSocket would be resent for ever. On an ordered link,
 * a message resent before a later one that is acknowledged was delivered. */
static void lost_acks_are_inferred_on_an_ordered_link(void)
{
	for (int ordered = 0; ordered <= 1; ordered++) {
		static net nt;
		memset(&nt, 0, sizeof nt);
		side cs = {&nt, 0, {0}, 0, 0, ""};
		ssm_channel_cb cb = {net_send, on_data, on_closed, &cs};
		ssm_channel_opts o = {.ordered_link = ordered};
		ssm_channel *ch = ssm_channel_new(&o, &cb);
		CHECK(ssm_channel_send(ch, 1, "a", 1, 0) == 0); /* packet 0 */
		CHECK(ssm_channel_send(ch, 1, "b", 1, 0) == 0); /* packet 1 */
		/* Sent once and a later one acknowledged: 0 may have been lost, so it stays. */
		CHECK(ack_sent(ch, &nt, 1) == 0);
		CHECK_EQ_INT(ssm_channel_unacked(ch), 1);
		/* The WebSocket is re-dialled; 0 is resent (packet 2), then 2 is sent (packet 3). */
		ssm_channel_resend_all(ch, 10);
		CHECK_EQ_INT(nt.n, 3);
		CHECK(ssm_channel_send(ch, 1, "c", 1, 10) == 0);
		CHECK(ack_sent(ch, &nt, 3) == 0);
		/* Ordered: 0's resend arrived before 2 and got no ack, so it was a duplicate. */
		CHECK_EQ_INT(ssm_channel_unacked(ch), ordered ? 0 : 1);
		CHECK_EQ_INT(ssm_channel_settled(ch), ordered ? 1 : 0);
		ssm_channel_free(ch);
		net_free(&nt);
	}
}

int main(void)
{
	RUN(layout_matches_documented_offsets);
	RUN(uuids);
	RUN(hostile_messages_are_refused);
	RUN(json_payloads);
	RUN(delivery_on_a_clean_network);
	RUN(delivery_despite_loss_dups_and_reordering);
	RUN(window_pause_and_giving_up);
	RUN(hostile_peer);
	RUN(retransmission_follows_a_changing_round_trip);
	RUN(lost_acks_are_inferred_on_an_ordered_link);
	return test_summary();
}
