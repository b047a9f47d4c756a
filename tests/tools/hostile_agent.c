/* hostile_agent.c — a fake sbx-agent that attacks the host on command.
 *
 *   hostile_agent              say a proper HELLO, then obey commands
 *   hostile_agent --before-hello MODE
 *                              misbehave before the handshake:
 *                              garbage | badproto | silent
 *
 * It speaks the protocol on stdin/stdout like `sbx-agent --stdio`. An EXEC
 * whose argv[0] is "echo" is answered honestly (stdout = the other
 * arguments joined by spaces, exit 0), so a test can see the session work
 * before the attack. An EXEC whose argv[0] names an attack performs it:
 *
 *   bigframe     a frame length of 4 GiB - 1
 *   truncated    a frame whose msgpack value ends before its length does
 *   garbage      text instead of frames
 *   badmsgpack   a frame holding bytes that are not msgpack at all
 *   unknown      a message of unknown type 0x7f
 *   unrequested  an EXIT for a stream the host never opened
 *   bomb         a deflated chunk of 1 MiB declared as 1000 bytes
 *   endless      stdout that never ends (within credit; CANCEL ignored)
 *   flood        stdout sent as fast as possible, ignoring credit
 *   noread       stops reading from the host; PINGs every 100 ms
 *   pingflood    stops reading from the host; PINGs as fast as it can
 *   midframe     closes the stream in the middle of a frame
 *
 * It announces the "forward" capability (unless $HOSTILE_NO_FORWARD is set:
 * then it plays an agent from before FORWARD), and answers every FORWARD
 * with a flood of DATA that ignores credit (the forward stream's attack).
 *
 * Tests only: it links libsbx for the CRC and msgpack helpers. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "chunk.h"
#include "msg.h"

static uint8_t g_in[4 << 20];
static size_t g_inlen;

static void put(const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = write(1, b, n);
		if (w <= 0)
			_exit(0); /* the host hung up: the attack is over */
		b += w;
		n -= (size_t)w;
	}
}

static void put_frame(msgpack_sbuffer *sb)
{
	uint8_t h[4] = {(uint8_t)(sb->size >> 24), (uint8_t)(sb->size >> 16), (uint8_t)(sb->size >> 8),
			(uint8_t)sb->size};
	put(h, 4);
	put(sb->data, sb->size);
	msgpack_sbuffer_destroy(sb);
}

static void begin(msgpack_sbuffer *sb, msgpack_packer *pk, unsigned nfields, int type, uint32_t stream)
{
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(pk, nfields + 2);
	msgpack_pack_uint8(pk, (uint8_t)type);
	msgpack_pack_uint32(pk, stream);
}

static void send_hello(int proto)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	begin(&sb, &pk, 1, SBX_MSG_HELLO, 0);
	msgpack_pack_map(&pk, 9);
	sbx_pack_kv_uint(&pk, "proto", (uint64_t)proto);
	sbx_pack_str(&pk, "caps");
	int forward = getenv("HOSTILE_NO_FORWARD") == NULL;
	msgpack_pack_array(&pk, forward ? 1 : 0);
	if (forward)
		sbx_pack_str(&pk, "forward");
	sbx_pack_kv_str(&pk, "version", "hostile");
	sbx_pack_kv_str(&pk, "boot_id", "0123456789abcdef0123456789abcdef");
	sbx_pack_kv_str(&pk, "arch", "x86_64");
	sbx_pack_kv_int(&pk, "pid", getpid());
	sbx_pack_kv_int(&pk, "uid", (int64_t)getuid());
	sbx_pack_kv_uint(&pk, "max_frame", 1048576);
	sbx_pack_kv_uint(&pk, "window", 1048576);
	put_frame(&sb);
}

static void send_data(uint32_t stream, int fd, unsigned flags, const void *p, size_t n, size_t rawlen)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	begin(&sb, &pk, 4, SBX_MSG_DATA, stream);
	msgpack_pack_uint8(&pk, (uint8_t)fd);
	msgpack_pack_uint8(&pk, (uint8_t)flags);
	msgpack_pack_bin(&pk, n);
	msgpack_pack_bin_body(&pk, p, n);
	msgpack_pack_uint64(&pk, rawlen);
	put_frame(&sb);
}

static void send_end(uint32_t stream, int fd, uint64_t count, uint32_t crc)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	begin(&sb, &pk, 3, SBX_MSG_END, stream);
	msgpack_pack_uint8(&pk, (uint8_t)fd);
	msgpack_pack_uint64(&pk, count);
	msgpack_pack_uint32(&pk, crc);
	put_frame(&sb);
}

static void send_exit(uint32_t stream, int code)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	begin(&sb, &pk, 1, SBX_MSG_EXIT, stream);
	msgpack_pack_map(&pk, 1);
	sbx_pack_kv_int(&pk, "code", code);
	put_frame(&sb);
}

static void send_ping(uint64_t nonce)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	begin(&sb, &pk, 1, SBX_MSG_PING, 0);
	msgpack_pack_uint64(&pk, nonce);
	put_frame(&sb);
}

/* One frame from the host, decoded. */
typedef struct frame {
	int type;
	uint32_t stream;
	uint64_t value;  /* WINDOW increment, PING nonce */
	char argv0[32];  /* EXEC: argv[0] */
	char words[256]; /* EXEC: argv[1..] joined by spaces */
} frame;

static void decode_exec(const msgpack_object *map, frame *f)
{
	const msgpack_object *argv = sbx_map_get(map, "argv");
	if (!argv || argv->type != MSGPACK_OBJECT_ARRAY || argv->via.array.size == 0)
		return;
	sbx_obj_str(&argv->via.array.ptr[0], f->argv0, sizeof f->argv0);
	size_t len = 0;
	for (uint32_t i = 1; i < argv->via.array.size; i++) {
		char w[128];
		if (sbx_obj_str(&argv->via.array.ptr[i], w, sizeof w) < 0)
			continue;
		len += (size_t)snprintf(f->words + len, sizeof f->words - len, "%s%s", i > 1 ? " " : "", w);
		if (len >= sizeof f->words)
			len = sizeof f->words - 1;
	}
}

/* Reads until one whole frame from the host is here; exits when the host
 * hangs up. */
static void next_frame(frame *f)
{
	memset(f, 0, sizeof *f);
	f->type = -1;
	for (;;) {
		if (g_inlen >= 4) {
			uint32_t len = (uint32_t)g_in[0] << 24 | (uint32_t)g_in[1] << 16 | (uint32_t)g_in[2] << 8 | g_in[3];
			if (len > sizeof g_in - 4)
				_exit(2);
			if (g_inlen >= 4 + (size_t)len) {
				msgpack_unpacked u;
				msgpack_unpacked_init(&u);
				size_t off = 0;
				if (msgpack_unpack_next(&u, (const char *)g_in + 4, len, &off) == MSGPACK_UNPACK_SUCCESS &&
				    u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size >= 2) {
					const msgpack_object *a = u.data.via.array.ptr;
					f->type = (int)a[0].via.u64;
					f->stream = (uint32_t)a[1].via.u64;
					if (u.data.via.array.size >= 3 && a[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
						f->value = a[2].via.u64;
					if (f->type == SBX_MSG_EXEC && u.data.via.array.size >= 3 &&
					    a[2].type == MSGPACK_OBJECT_MAP)
						decode_exec(&a[2], f);
				}
				msgpack_unpacked_destroy(&u);
				memmove(g_in, g_in + 4 + len, g_inlen - 4 - len);
				g_inlen -= 4 + len;
				return;
			}
		}
		ssize_t r = read(0, g_in + g_inlen, sizeof g_in - g_inlen);
		if (r <= 0)
			_exit(0);
		g_inlen += (size_t)r;
	}
}

/* Reads and ignores the host until it goes away. */
static void linger(void)
{
	frame f;
	for (;;)
		next_frame(&f);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void attack_bomb(uint32_t s)
{
	/* a raw deflate stream of 1 MiB of zeros, declared as 1000 bytes */
	static uint8_t zeros[1 << 20], z[1 << 16];
	z_stream zs = {0};
	deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	zs.next_in = zeros;
	zs.avail_in = sizeof zeros;
	zs.next_out = z;
	zs.avail_out = sizeof z;
	deflate(&zs, Z_FINISH);
	size_t zlen = sizeof z - zs.avail_out;
	deflateEnd(&zs);
	send_data(s, 1, SBX_DATA_DEFLATE, z, zlen, 1000);
}

/* Stdout forever. `polite`: only as much as the host granted (CANCEL is
 * ignored); otherwise as fast as the pipe takes it. */
static void attack_output(uint32_t s, int polite)
{
	static uint8_t chunk[65536];
	memset(chunk, 'F', sizeof chunk);
	uint64_t credit = 1048576;
	for (;;) {
		while (polite && credit < sizeof chunk) {
			frame f;
			next_frame(&f);
			if (f.type == SBX_MSG_WINDOW && f.stream == s)
				credit += f.value;
		}
		send_data(s, 1, 0, chunk, sizeof chunk, sizeof chunk);
		credit -= polite ? sizeof chunk : 0;
	}
}

static void attack(const char *mode, uint32_t s)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	if (!strcmp(mode, "bigframe")) {
		put("\xff\xff\xff\xff", 4);
	} else if (!strcmp(mode, "truncated")) {
		put("\x00\x00\x00\x03\x93\x20\x01", 7); /* [32, 1, <missing>] */
	} else if (!strcmp(mode, "garbage")) {
		const char *t = "Traceback (most recent call last):\n  File \"x.py\", line 1\n";
		put(t, strlen(t));
	} else if (!strcmp(mode, "badmsgpack")) {
		put("\x00\x00\x00\x03\xc1\xc1\xc1", 7);
	} else if (!strcmp(mode, "unknown")) {
		begin(&sb, &pk, 0, 0x7f, s);
		put_frame(&sb);
	} else if (!strcmp(mode, "unrequested")) {
		send_exit(s + 1000, 0);
	} else if (!strcmp(mode, "bomb")) {
		attack_bomb(s);
	} else if (!strcmp(mode, "endless")) {
		attack_output(s, 1);
	} else if (!strcmp(mode, "flood")) {
		attack_output(s, 0);
	} else if (!strcmp(mode, "noread")) {
		for (uint64_t n = 1;; n++) {
			send_ping(n);
			sleep_ms(100);
		}
	} else if (!strcmp(mode, "pingflood")) {
		for (uint64_t n = 1;; n++)
			send_ping(n);
	} else if (!strcmp(mode, "neverexits")) {
		/* takes the command, answers PINGs, never ends it (not even on CANCEL) */
	} else if (!strcmp(mode, "midframe")) {
		put("\x00\x00\x00\x64" "0123456789", 14);
		_exit(0);
	} else {
		const char *t = "hostile_agent: unknown attack\n";
		send_data(s, 2, 0, t, strlen(t), strlen(t));
		send_end(s, 1, 0, 0);
		send_end(s, 2, strlen(t), sbx_crc32(0, (const uint8_t *)t, strlen(t)));
		send_exit(s, 127);
	}
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(300); /* never outlive a broken test by much */
	if (argc == 3 && !strcmp(argv[1], "--before-hello")) {
		if (!strcmp(argv[2], "garbage"))
			put("bash: sbx-agent: command not found\n", 35);
		else if (!strcmp(argv[2], "badproto"))
			send_hello(99);
		linger();
	}
	send_hello(SBX_PROTO_VERSION);
	for (;;) {
		frame f;
		next_frame(&f);
		if (f.type == SBX_MSG_PING) {
			msgpack_sbuffer sb;
			msgpack_packer pk;
			begin(&sb, &pk, 1, SBX_MSG_PONG, 0);
			msgpack_pack_uint64(&pk, f.value);
			put_frame(&sb);
		}
		if (f.type == SBX_MSG_FORWARD)
			attack_output(f.stream, 0);
		if (f.type != SBX_MSG_EXEC)
			continue;
		if (strcmp(f.argv0, "echo") != 0) {
			attack(f.argv0, f.stream);
			continue;
		}
		char out[300];
		size_t n = (size_t)snprintf(out, sizeof out, "%s\n", f.words);
		send_data(f.stream, 1, 0, out, n, n);
		send_end(f.stream, 1, n, sbx_crc32(0, (const uint8_t *)out, n));
		send_end(f.stream, 2, 0, 0);
		send_exit(f.stream, 0);
	}
}
