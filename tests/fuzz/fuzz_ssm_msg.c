/* fuzz_ssm_msg.c — the SSM data channel's message decoder and its JSON
 * payload parsers (host/backends/aws/ssm_msg.c): the bytes come from the Session
 * Manager service, i.e. from the network. A decoded message stays inside
 * the input and encodes back to a message that decodes the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/aws/ssm_msg.h"
#include "fuzz.h"

static void parse_payloads(const uint8_t *p, size_t n)
{
	char why[256], a[256], b[256];
	ssm_ack ack;
	ssm_handshake_req req;
	uint32_t flag;
	if (ssm_parse_ack(p, n, &ack, why, sizeof why) == 0)
		FUZZ_ASSERT(memchr(ack.type, 0, sizeof ack.type));
	if (ssm_parse_handshake_request(p, n, &req, why, sizeof why) == 0) {
		FUZZ_ASSERT(memchr(req.session_type, 0, sizeof req.session_type));
		FUZZ_ASSERT(memchr(req.host, 0, sizeof req.host));
	}
	if (ssm_parse_handshake_response(p, n, a, sizeof a, why, sizeof why) == 0)
		FUZZ_ASSERT(memchr(a, 0, sizeof a));
	if (ssm_parse_handshake_complete(p, n, a, sizeof a, why, sizeof why) == 0)
		FUZZ_ASSERT(memchr(a, 0, sizeof a));
	if (ssm_parse_channel_closed(p, n, a, sizeof a, b, sizeof b, why, sizeof why) == 0)
		FUZZ_ASSERT(memchr(a, 0, sizeof a) && memchr(b, 0, sizeof b));
	if (ssm_parse_open_data_channel((const char *)p, n, a, sizeof a, why, sizeof why) == 0)
		FUZZ_ASSERT(memchr(a, 0, sizeof a));
	ssm_parse_flag(p, n, &flag);
}

static void round_trip(const ssm_msg *m)
{
	sbx_buf out = {0};
	FUZZ_ASSERT(ssm_msg_encode(&out, m->type, m->seq, m->flags, m->id, m->payload_type, m->payload,
				   m->payload_len, m->created_ms) == 0);
	ssm_msg again;
	char why[256];
	FUZZ_ASSERT(ssm_msg_decode(out.data, out.len, 1, &again, why, sizeof why) == 0);
	FUZZ_ASSERT(strcmp(again.type, m->type) == 0 && again.seq == m->seq && again.flags == m->flags);
	FUZZ_ASSERT(memcmp(again.id, m->id, 16) == 0 && again.payload_type == m->payload_type);
	FUZZ_ASSERT(again.payload_len == m->payload_len);
	FUZZ_ASSERT(m->payload_len == 0 || memcmp(again.payload, m->payload, m->payload_len) == 0);
	sbx_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int check = 0; check < 2; check++) {
		ssm_msg m;
		char why[256] = "";
		if (ssm_msg_decode(data, size, check, &m, why, sizeof why) < 0) {
			FUZZ_ASSERT(why[0] != 0);
			continue;
		}
		FUZZ_ASSERT(m.payload >= data && m.payload + m.payload_len <= data + size);
		FUZZ_ASSERT(m.payload_len <= SSM_MAX_PAYLOAD);
		parse_payloads(m.payload, m.payload_len);
		/* an empty type is not encodable; anything the decoder took is */
		if (m.type[0])
			round_trip(&m);
	}
	parse_payloads(data, size);
	return 0;
}
