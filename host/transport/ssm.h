/* ssm.h — a transport over an SSM Session Manager data channel: a port
 * forwarding session to the agent listening on the instance's loopback.
 *
 * Give it what StartSession returned (StreamUrl, TokenValue). It dials the
 * WebSocket, sends the open-data-channel message, answers the agent's
 * handshake (SessionType Port; KMS encryption is refused with a message),
 * and then carries the agent's byte stream as input/output_stream_data
 * messages with acknowledgements and retransmission (aws/ssm_channel.h).
 * "Basic" port mode: one TCP stream per session, no smux (sbx reports a
 * client version below the one that turns smux on). */
#ifndef SBX_TRANSPORT_SSM_H
#define SBX_TRANSPORT_SSM_H

#include <stddef.h>
#include <stdint.h>

#include "transport/transport.h"

#define SBX_SSM_CLIENT_VERSION "1.1.0.0" /* < 1.1.70: the agent forwards without smux */
#define SBX_SSM_DEFAULT_CHUNK 1024       /* payload bytes per message, as the plugin sends */

typedef struct sbx_ssm_opts {
	const char *stream_url;     /* wss://ssmmessages.REGION.amazonaws.com/v1/data-channel/... */
	const char *token;          /* TokenValue */
	const char *session_id;     /* for messages */
	double connect_timeout_s;   /* WebSocket + open + handshake; 0 = 30 */
	size_t chunk;               /* 0 = SBX_SSM_DEFAULT_CHUNK */
	uint64_t ping_ms;           /* WebSocket pings; 0 = 5 minutes as the plugin does */
	int insecure_tls;           /* tests only */
} sbx_ssm_opts;

sbx_transport *sbx_ssm_transport(sbx_loop *loop, const sbx_ssm_opts *o, char *err, size_t err_len);

#endif
