/* ssm_msg.c — SSM data channel messages and their JSON payloads (see
 * ssm_msg.h). */
#include "backends/aws/ssm_msg.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/crypto_lib.h"

#include "backends/aws/text.h"

static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (why && whylen)
		vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static void sha256(const void *data, size_t n, uint8_t out[32])
{
	unsigned int len = 32;
	sbx_crypto()->digest(data, n, out, &len, sbx_crypto()->sha256(), NULL);
}

/* ------------------------------------------------------------- binary */

int ssm_msg_decode(const uint8_t *buf, size_t n, int check_digest, ssm_msg *m, char *why, size_t whylen)
{
	memset(m, 0, sizeof *m);
	if (n < SSM_PAYLOAD_OFFSET)
		return fail(why, whylen, "SSM message of %zu bytes is shorter than its %d byte header", n,
			    SSM_PAYLOAD_OFFSET);
	uint32_t hl = get32(buf);
	if (hl < SSM_HEADER_LENGTH || (uint64_t)hl + 4 > n)
		return fail(why, whylen, "SSM message header length %u is outside 116..%zu", hl, n - 4);
	/* Message type: ASCII padded with spaces (or NULs, on either side). */
	const uint8_t *t = buf + 4;
	size_t start = 0, end = SSM_TYPE_LEN;
	while (start < end && (t[start] == ' ' || t[start] == 0))
		start++;
	while (end > start && (t[end - 1] == ' ' || t[end - 1] == 0))
		end--;
	for (size_t i = start; i < end; i++)
		if (t[i] < 0x21 || t[i] > 0x7e)
			return fail(why, whylen, "SSM message type has a byte 0x%02x that is not printable ASCII",
				    t[i]);
	memcpy(m->type, t + start, end - start);
	m->type[end - start] = 0;
	m->schema_version = get32(buf + 36);
	m->created_ms = get64(buf + 40);
	m->seq = (int64_t)get64(buf + 48);
	m->flags = get64(buf + 56);
	memcpy(m->id, buf + 72, 8); /* most significant half is second */
	memcpy(m->id + 8, buf + 64, 8);
	memcpy(m->digest, buf + 80, 32);
	m->payload_type = get32(buf + 112);
	m->payload_len = get32(buf + hl);
	size_t have = n - hl - 4;
	if (m->payload_len != have)
		return fail(why, whylen, "SSM message says its payload is %u bytes but carries %zu",
			    m->payload_len, have);
	if (m->payload_len > SSM_MAX_PAYLOAD)
		return fail(why, whylen, "SSM message payload of %u bytes is over the %u byte limit",
			    m->payload_len, SSM_MAX_PAYLOAD);
	if (m->seq < 0)
		return fail(why, whylen, "SSM message has a negative sequence number");
	m->payload = buf + hl + 4;
	if (check_digest) {
		uint8_t d[32];
		sha256(m->payload, m->payload_len, d);
		if (memcmp(d, m->digest, 32) != 0)
			return fail(why, whylen, "SSM %s message %lld: payload digest does not match its SHA-256",
				    m->type, (long long)m->seq);
	}
	return 0;
}

int ssm_msg_encode(sbx_buf *out, const char *type, int64_t seq, uint64_t flags, const uint8_t id[16],
		   uint32_t payload_type, const void *payload, uint32_t len, uint64_t created_ms)
{
	size_t tl = strlen(type);
	if (tl == 0 || tl > SSM_TYPE_LEN || len > SSM_MAX_PAYLOAD || seq < 0)
		return -1;
	if (sbx_buf_reserve(out, SSM_PAYLOAD_OFFSET + (size_t)len) < 0)
		return -1;
	uint8_t *p = out->data + out->len;
	put32(p, SSM_HEADER_LENGTH);
	memset(p + 4, ' ', SSM_TYPE_LEN);
	memcpy(p + 4, type, tl);
	put32(p + 36, 1);
	put64(p + 40, created_ms);
	put64(p + 48, (uint64_t)seq);
	put64(p + 56, flags);
	memcpy(p + 64, id + 8, 8);
	memcpy(p + 72, id, 8);
	sha256(len ? payload : "", len, p + 80);
	put32(p + 112, payload_type);
	put32(p + 116, len);
	if (len)
		memcpy(p + SSM_PAYLOAD_OFFSET, payload, len);
	out->len += SSM_PAYLOAD_OFFSET + (size_t)len;
	return 0;
}

/* --------------------------------------------------------------- UUIDs */

void ssm_uuid_random(uint8_t id[16])
{
	if (sbx_crypto()->rand_bytes(id, 16) != 1) {
		/* OpenSSL's RNG failing is not recoverable here; fall back so ids still differ. */
		for (int i = 0; i < 16; i++)
			id[i] = (uint8_t)random();
	}
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

void ssm_uuid_format(const uint8_t id[16], char out[37])
{
	char *p = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		snprintf(p, 3, "%02x", id[i]);
		p += 2;
	}
	*p = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ssm_uuid_parse(const char *s, uint8_t id[16])
{
	if (strlen(s) != 36)
		return -1;
	int k = 0;
	for (int i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -1;
			i++;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		id[k++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}

/* -------------------------------------------------------- JSON helpers */

static int dump_to(sbx_buf *out, json_t *o)
{
	if (!o)
		return -1;
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return -1;
	int rc = aws_buf_puts(out, s);
	free(s);
	return rc;
}

static json_t *load_object(const void *p, size_t n, const char *what, char *why, size_t whylen)
{
	json_error_t err;
	json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err);
	if (!o) {
		fail(why, whylen, "%s is not JSON: %s", what, err.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		fail(why, whylen, "%s is JSON but not an object", what);
		return NULL;
	}
	return o;
}

static const char *str_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ----------------------------------------------------------- payloads */

int ssm_open_data_channel_json(sbx_buf *out, const char *token, const char *client_id, const char *client_version)
{
	uint8_t rid[16];
	char request_id[37];
	ssm_uuid_random(rid);
	ssm_uuid_format(rid, request_id);
	return dump_to(out, json_pack("{s:s, s:s, s:s, s:s, s:s}", "MessageSchemaVersion", "1.0", "RequestId",
				      request_id, "TokenValue", token, "ClientId", client_id, "ClientVersion",
				      client_version));
}

int ssm_parse_open_data_channel(const char *json, size_t n, char *token, size_t tokenlen, char *why, size_t whylen)
{
	json_t *o = load_object(json, n, "the open-data-channel message", why, whylen);
	if (!o)
		return -1;
	const char *t = str_of(o, "TokenValue");
	const char *v = str_of(o, "MessageSchemaVersion");
	int rc = -1;
	if (!t || !*t)
		fail(why, whylen, "the open-data-channel message has no TokenValue");
	else if (!v || strcmp(v, "1.0") != 0)
		fail(why, whylen, "the open-data-channel message's MessageSchemaVersion is not \"1.0\"");
	else if (strlen(t) >= tokenlen)
		fail(why, whylen, "the open-data-channel TokenValue is too long");
	else {
		memcpy(token, t, strlen(t) + 1);
		rc = 0;
	}
	json_decref(o);
	return rc;
}

int ssm_ack_json(sbx_buf *out, const ssm_msg *m)
{
	char id[37];
	ssm_uuid_format(m->id, id);
	return dump_to(out, json_pack("{s:s, s:s, s:I, s:b}", "AcknowledgedMessageType", m->type,
				      "AcknowledgedMessageId", id, "AcknowledgedMessageSequenceNumber",
				      (json_int_t)m->seq, "IsSequentialMessage", 1));
}

int ssm_parse_ack(const uint8_t *p, size_t n, ssm_ack *ack, char *why, size_t whylen)
{
	memset(ack, 0, sizeof *ack);
	json_t *o = load_object(p, n, "an acknowledge payload", why, whylen);
	if (!o)
		return -1;
	const char *type = str_of(o, "AcknowledgedMessageType");
	const char *id = str_of(o, "AcknowledgedMessageId");
	json_t *seq = json_object_get(o, "AcknowledgedMessageSequenceNumber");
	int rc = -1;
	if (!type || strlen(type) > SSM_TYPE_LEN)
		fail(why, whylen, "acknowledge payload has no valid AcknowledgedMessageType");
	else if (!id || ssm_uuid_parse(id, ack->id) < 0)
		fail(why, whylen, "acknowledge payload's AcknowledgedMessageId is not a UUID");
	else if (!json_is_integer(seq) || json_integer_value(seq) < 0)
		fail(why, whylen, "acknowledge payload has no AcknowledgedMessageSequenceNumber");
	else {
		snprintf(ack->type, sizeof ack->type, "%s", type);
		ack->seq = json_integer_value(seq);
		rc = 0;
	}
	json_decref(o);
	return rc;
}

/* A property that may be a string or a number, as text. */
static void prop_text(json_t *props, const char *key, char *out, size_t outlen)
{
	json_t *v = json_object_get(props, key);
	if (json_is_string(v))
		snprintf(out, outlen, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
	else
		out[0] = 0;
}

int ssm_parse_handshake_request(const uint8_t *p, size_t n, ssm_handshake_req *r, char *why, size_t whylen)
{
	memset(r, 0, sizeof *r);
	json_t *o = load_object(p, n, "the handshake request", why, whylen);
	if (!o)
		return -1;
	int rc = -1;
	const char *av = str_of(o, "AgentVersion");
	snprintf(r->agent_version, sizeof r->agent_version, "%s", av ? av : "");
	json_t *actions = json_object_get(o, "RequestedClientActions");
	if (!json_is_array(actions)) {
		fail(why, whylen, "the handshake request has no RequestedClientActions list");
		goto out;
	}
	size_t i;
	json_t *a;
	json_array_foreach(actions, i, a)
	{
		const char *type = json_is_object(a) ? str_of(a, "ActionType") : NULL;
		if (!type) {
			fail(why, whylen, "handshake action %zu has no ActionType", i);
			goto out;
		}
		r->n_actions++;
		json_t *params = json_object_get(a, "ActionParameters");
		if (strcmp(type, "KMSEncryption") == 0) {
			r->has_kms = 1;
		} else if (strcmp(type, "SessionType") == 0 && json_is_object(params)) {
			const char *st = str_of(params, "SessionType");
			snprintf(r->session_type, sizeof r->session_type, "%s", st ? st : "");
			json_t *props = json_object_get(params, "Properties");
			if (json_is_object(props)) {
				prop_text(props, "portNumber", r->port_number, sizeof r->port_number);
				prop_text(props, "type", r->port_type, sizeof r->port_type);
				prop_text(props, "host", r->host, sizeof r->host);
			}
		}
	}
	if (!r->session_type[0]) {
		fail(why, whylen, "the handshake request has no SessionType action");
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

int ssm_handshake_request_json(sbx_buf *out, const char *agent_version, const char *port_number)
{
	return dump_to(out, json_pack("{s:s, s:[{s:s, s:{s:s, s:{s:s, s:s}}}]}", "AgentVersion", agent_version,
				      "RequestedClientActions", "ActionType", "SessionType", "ActionParameters",
				      "SessionType", "Port", "Properties", "portNumber", port_number, "type",
				      "LocalPortForwarding"));
}

#define ACTION_SUCCESS 1
#define ACTION_UNSUPPORTED 3

int ssm_handshake_response_json(sbx_buf *out, const char *client_version, const ssm_handshake_req *r)
{
	json_t *processed = json_array();
	json_array_append_new(processed, json_pack("{s:s, s:i, s:n, s:s}", "ActionType", "SessionType",
						   "ActionStatus", ACTION_SUCCESS, "ActionResult", "Error", ""));
	if (r->has_kms)
		json_array_append_new(processed,
				      json_pack("{s:s, s:i, s:n, s:s}", "ActionType", "KMSEncryption", "ActionStatus",
						ACTION_UNSUPPORTED, "ActionResult", "Error",
						"sbx does not support KMS-encrypted sessions; turn KMS encryption off in "
						"the Session Manager preferences"));
	return dump_to(out, json_pack("{s:s, s:o, s:[]}", "ClientVersion", client_version,
				      "ProcessedClientActions", processed, "Errors"));
}

int ssm_parse_handshake_response(const uint8_t *p, size_t n, char *client_version, size_t cvlen, char *why,
				 size_t whylen)
{
	json_t *o = load_object(p, n, "the handshake response", why, whylen);
	if (!o)
		return -1;
	int rc = -1, ok = 0;
	const char *cv = str_of(o, "ClientVersion");
	snprintf(client_version, cvlen, "%s", cv ? cv : "");
	json_t *processed = json_object_get(o, "ProcessedClientActions");
	size_t i;
	json_t *a;
	json_array_foreach(processed, i, a)
	{
		const char *type = json_is_object(a) ? str_of(a, "ActionType") : NULL;
		json_t *st = json_object_get(a, "ActionStatus");
		if (type && strcmp(type, "SessionType") == 0 && json_is_integer(st) &&
		    json_integer_value(st) == ACTION_SUCCESS)
			ok = 1;
	}
	if (!ok)
		fail(why, whylen, "the handshake response did not process the SessionType action");
	else
		rc = 0;
	json_decref(o);
	return rc;
}

int ssm_handshake_complete_json(sbx_buf *out, int64_t time_to_complete_ns, const char *customer_message)
{
	return dump_to(out, json_pack("{s:I, s:s}", "HandshakeTimeToComplete", (json_int_t)time_to_complete_ns,
				      "CustomerMessage", customer_message));
}

int ssm_parse_handshake_complete(const uint8_t *p, size_t n, char *customer_message, size_t cmlen, char *why,
				 size_t whylen)
{
	json_t *o = load_object(p, n, "the handshake complete message", why, whylen);
	if (!o)
		return -1;
	const char *m = str_of(o, "CustomerMessage");
	snprintf(customer_message, cmlen, "%s", m ? m : "");
	json_decref(o);
	return 0;
}

int ssm_channel_closed_json(sbx_buf *out, const char *session_id, const char *output)
{
	uint8_t id[16];
	char mid[37];
	ssm_uuid_random(id);
	ssm_uuid_format(id, mid);
	return dump_to(out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "MessageId", mid, "CreatedDate", "",
				      "DestinationId", "", "SessionId", session_id, "MessageType",
				      SSM_CHANNEL_CLOSED, "SchemaVersion", 1, "Output", output));
}

int ssm_parse_channel_closed(const uint8_t *p, size_t n, char *session_id, size_t sidlen, char *output,
			     size_t outlen, char *why, size_t whylen)
{
	json_t *o = load_object(p, n, "the channel_closed payload", why, whylen);
	if (!o)
		return -1;
	const char *sid = str_of(o, "SessionId"), *text = str_of(o, "Output");
	snprintf(session_id, sidlen, "%s", sid ? sid : "");
	snprintf(output, outlen, "%s", text ? text : "");
	json_decref(o);
	return 0;
}

void ssm_flag_payload(uint32_t flag, uint8_t out[4])
{
	put32(out, flag);
}

int ssm_parse_flag(const uint8_t *p, size_t n, uint32_t *flag)
{
	if (n != 4)
		return -1;
	*flag = get32(p);
	return 0;
}
