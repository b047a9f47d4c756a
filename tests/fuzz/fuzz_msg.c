/* fuzz_msg.c — common/msg's decoder on one frame body of any bytes.
 * A decoded message must be self-consistent: what it points at lies inside
 * the input, and its strings are terminated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	sbx_msg m;
	char err[256];
	if (sbx_msg_decode(data, size, &u, &m, err, sizeof err) == 0) {
		FUZZ_ASSERT(memchr(m.code, 0, sizeof m.code) && memchr(m.text, 0, sizeof m.text));
		if (m.type == SBX_MSG_DATA)
			FUZZ_ASSERT(m.data >= data && m.data + m.len <= data + size);
		if (m.body && m.body->type == MSGPACK_OBJECT_MAP) {
			char s[64];
			sbx_map_str(m.body, "path", s, sizeof s);
			sbx_map_int(m.body, "code", 0);
			sbx_map_bool(m.body, "stream_stdin", 0);
		}
	} else {
		FUZZ_ASSERT(err[0] != 0);
	}
	msgpack_unpacked_destroy(&u);
	return 0;
}
