/* ssm_msg.h — the SSM Session Manager data channel's messages, sans-I/O.
 *
 * Every WebSocket binary message on a Session Manager data channel is one
 * "agent message" (session-manager-plugin src/message/clientmessage.go,
 * amazon-ssm-agent agent/session/contracts/agentmessage.go; facts in
 * shared/notes/wire-protocols.md section 3). Big-endian:
 *
 *   0  HeaderLength u32 (116)     64 MessageId 16 bytes (see below)
 *   4  MessageType 32 bytes       80 PayloadDigest 32 bytes (SHA-256 of payload)
 *  36  SchemaVersion u32 (1)     112 PayloadType u32
 *  40  CreatedDate u64 (ms)      116 PayloadLength u32
 *  48  SequenceNumber i64        120 Payload
 *  56  Flags u64 (bit 0 SYN, bit 1 FIN)
 *
 * The message type is space-padded ASCII. The message id is a UUID stored
 * as its second 8 bytes, then its first 8. Payloads that are JSON
 * (acknowledgements, handshakes, channel_closed, the open-data-channel
 * text message) have builders and parsers here too. */
#ifndef SBX_AWS_SSM_MSG_H
#define SBX_AWS_SSM_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SSM_HEADER_LENGTH 116
#define SSM_PAYLOAD_OFFSET 120
#define SSM_TYPE_LEN 32
#define SSM_MAX_PAYLOAD (16u * 1024 * 1024)

#define SSM_INPUT_STREAM "input_stream_data"   /* client -> agent */
#define SSM_OUTPUT_STREAM "output_stream_data" /* agent -> client */
#define SSM_ACKNOWLEDGE "acknowledge"
#define SSM_CHANNEL_CLOSED "channel_closed"
#define SSM_START_PUBLICATION "start_publication"
#define SSM_PAUSE_PUBLICATION "pause_publication"

enum ssm_payload_type {
	SSM_PAYLOAD_OUTPUT = 1, /* stream bytes (also stdin and port data) */
	SSM_PAYLOAD_ERROR = 2,
	SSM_PAYLOAD_SIZE = 3,
	SSM_PAYLOAD_PARAMETER = 4,
	SSM_PAYLOAD_HANDSHAKE_REQUEST = 5,
	SSM_PAYLOAD_HANDSHAKE_RESPONSE = 6,
	SSM_PAYLOAD_HANDSHAKE_COMPLETE = 7,
	SSM_PAYLOAD_ENC_CHALLENGE_REQUEST = 8,
	SSM_PAYLOAD_ENC_CHALLENGE_RESPONSE = 9,
	SSM_PAYLOAD_FLAG = 10,
	SSM_PAYLOAD_STDERR = 11,
	SSM_PAYLOAD_EXIT_CODE = 12,
};

/* Values of a FLAG payload (u32 big-endian). */
enum ssm_flag {
	SSM_FLAG_DISCONNECT_TO_PORT = 1,
	SSM_FLAG_TERMINATE_SESSION = 2,
	SSM_FLAG_CONNECT_TO_PORT_ERROR = 3,
};

enum { SSM_FLAGS_SYN = 1, SSM_FLAGS_FIN = 2 };

typedef struct ssm_msg {
	char type[SSM_TYPE_LEN + 1]; /* padding trimmed */
	uint32_t schema_version;
	uint64_t created_ms;
	int64_t seq;
	uint64_t flags;
	uint8_t id[16];              /* canonical UUID byte order */
	uint8_t digest[32];
	uint32_t payload_type;
	const uint8_t *payload;      /* points into the decoded buffer */
	uint32_t payload_len;
} ssm_msg;

/* Decode one message. check_digest: the payload's SHA-256 must match (the
 * plugin checks it; the agent does not). 0, or -1 with why naming the
 * field that is wrong. m->payload points into buf. */
int ssm_msg_decode(const uint8_t *buf, size_t n, int check_digest, ssm_msg *m, char *why, size_t whylen);

/* Append one encoded message to out (SchemaVersion 1, digest computed).
 * type is at most 32 characters. 0 or -1 (ENOMEM / bad arguments). */
int ssm_msg_encode(sbx_buf *out, const char *type, int64_t seq, uint64_t flags, const uint8_t id[16],
		   uint32_t payload_type, const void *payload, uint32_t len, uint64_t created_ms);

/* UUIDs: a random version 4 id; "xxxxxxxx-xxxx-..." (lowercase) both ways. */
void ssm_uuid_random(uint8_t id[16]);
void ssm_uuid_format(const uint8_t id[16], char out[37]);
int ssm_uuid_parse(const char *s, uint8_t id[16]);

/* ------------------------------------------------------- JSON payloads */

/* The first (text) WebSocket message: {"MessageSchemaVersion":"1.0",
 * "RequestId","TokenValue","ClientId","ClientVersion"}. Appends to out. */
int ssm_open_data_channel_json(sbx_buf *out, const char *token, const char *client_id, const char *client_version);
/* Parse it (the service side, for emulators). Copies the token. */
int ssm_parse_open_data_channel(const char *json, size_t n, char *token, size_t tokenlen, char *why, size_t whylen);

/* An acknowledge payload for message m. */
int ssm_ack_json(sbx_buf *out, const ssm_msg *m);
typedef struct ssm_ack {
	char type[SSM_TYPE_LEN + 1];
	uint8_t id[16];
	int64_t seq;
} ssm_ack;
int ssm_parse_ack(const uint8_t *p, size_t n, ssm_ack *ack, char *why, size_t whylen);

/* The agent's HandshakeRequest: the session type and, for port sessions,
 * Properties.portNumber / .type / .host. Actions other than SessionType
 * (KMSEncryption) are counted: sbx answers them as unsupported. */
typedef struct ssm_handshake_req {
	char agent_version[64];
	char session_type[64];       /* "Port", "Standard_Stream", ... */
	char port_number[16];
	char port_type[64];          /* "LocalPortForwarding" or "" */
	char host[256];
	int has_kms;                 /* asked for KMSEncryption */
	int n_actions;
} ssm_handshake_req;
int ssm_parse_handshake_request(const uint8_t *p, size_t n, ssm_handshake_req *r, char *why, size_t whylen);
/* Build a HandshakeRequest for a port session (emulators). */
int ssm_handshake_request_json(sbx_buf *out, const char *agent_version, const char *port_number);
/* Our HandshakeResponse: SessionType processed (status 1), KMSEncryption
 * (when asked) failed (status 2) with a message saying sbx does not do it. */
int ssm_handshake_response_json(sbx_buf *out, const char *client_version, const ssm_handshake_req *r);
/* The client's reply as the agent sees it (emulators): 0 when SessionType
 * was processed successfully. */
int ssm_parse_handshake_response(const uint8_t *p, size_t n, char *client_version, size_t cvlen, char *why,
				 size_t whylen);
/* HandshakeComplete: {"HandshakeTimeToComplete","CustomerMessage"}. */
int ssm_handshake_complete_json(sbx_buf *out, int64_t time_to_complete_ns, const char *customer_message);
int ssm_parse_handshake_complete(const uint8_t *p, size_t n, char *customer_message, size_t cmlen, char *why,
				 size_t whylen);

/* channel_closed: the session id and the Output text. */
int ssm_channel_closed_json(sbx_buf *out, const char *session_id, const char *output);
int ssm_parse_channel_closed(const uint8_t *p, size_t n, char *session_id, size_t sidlen, char *output,
			     size_t outlen, char *why, size_t whylen);

/* A FLAG payload: 4 bytes big-endian. */
void ssm_flag_payload(uint32_t flag, uint8_t out[4]);
int ssm_parse_flag(const uint8_t *p, size_t n, uint32_t *flag);

#endif
