/* test_ssm_msg.c — host/aws/ssm_msg.c and ssm_channel.c: the SSM data
 * channel's binary message layout (checked byte by byte against a message
 * built here from the documented offsets), its JSON payloads, hostile
 * input, and the reliable-delivery state machine between a client and an
 * agent side over a simulated network that drops, duplicates and reorders
 * messages. */
#include "aws/ssm_channel.h"
#include "aws/ssm_msg.h"
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
	CHECK(rto >= 10 && rto <= 1000);
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
	CHECK(ssm_channel_next_deadline(ch) == 200);
	char why[256] = "";
	int rc = 0;
	for (uint64_t t = 0; t < 10000 && rc == 0; t += 50)
		rc = ssm_channel_tick(ch, t, why, sizeof why);
	CHECK(rc == -1);
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
	return test_summary();
}
