/* msg.c — encode and decode the protocol's messages (see msg.h). */
#include "msg.h"

#include <stdio.h>
#include <string.h>

const char *sbx_msg_name(int type)
{
	switch (type) {
	case SBX_MSG_HELLO: return "HELLO";
	case SBX_MSG_PING: return "PING";
	case SBX_MSG_PONG: return "PONG";
	case SBX_MSG_GOAWAY: return "GOAWAY";
	case SBX_MSG_AUTH: return "AUTH";
	case SBX_MSG_EXEC: return "EXEC";
	case SBX_MSG_WRITE: return "WRITE";
	case SBX_MSG_READ: return "READ";
	case SBX_MSG_STAT: return "STAT";
	case SBX_MSG_ATTACH: return "ATTACH";
	case SBX_MSG_SIGNAL: return "SIGNAL";
	case SBX_MSG_CANCEL: return "CANCEL";
	case SBX_MSG_RESIZE: return "RESIZE";
	case SBX_MSG_FORWARD: return "FORWARD";
	case SBX_MSG_JOBS: return "JOBS";
	case SBX_MSG_KILL: return "KILL";
	case SBX_MSG_LOGS: return "LOGS";
	case SBX_MSG_DATA: return "DATA";
	case SBX_MSG_END: return "END";
	case SBX_MSG_WINDOW: return "WINDOW";
	case SBX_MSG_EXIT: return "EXIT";
	case SBX_MSG_RESULT: return "RESULT";
	case SBX_MSG_ERROR: return "ERROR";
	}
	return "UNKNOWN";
}

int sbx_msg_is_request(int type)
{
	return (type >= SBX_MSG_EXEC && type <= SBX_MSG_ATTACH) || (type >= SBX_MSG_FORWARD && type <= SBX_MSG_LOGS);
}

int sbx_msg_is_final(int type)
{
	return type == SBX_MSG_EXIT || type == SBX_MSG_RESULT || type == SBX_MSG_ERROR;
}

/* ---------------------------------------------------------------- decode */

static int get_uint(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*v = o->via.u64;
	return 0;
}

static int get_int(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > INT64_MAX)
			return -1;
		*v = (int64_t)o->via.u64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return 0;
	}
	return -1;
}

/* Copy a str into a fixed buffer, truncating (used for error texts). */
static void copy_trunc(const msgpack_object *o, char *out, size_t out_len)
{
	out[0] = 0;
	if (o->type != MSGPACK_OBJECT_STR)
		return;
	size_t n = o->via.str.size;
	if (n >= out_len)
		n = out_len - 1;
	memcpy(out, o->via.str.ptr, n);
	out[n] = 0;
	for (size_t i = 0; i < n; i++)
		if (out[i] == 0)
			out[i] = '?';
}

static int fail(char *err, size_t err_len, const char *what, int type)
{
	snprintf(err, err_len, "malformed %s message: %s", sbx_msg_name(type), what);
	return -1;
}

/* Fields after [type, stream], checked per type. */
static int decode_fields(const msgpack_object *a, uint32_t n, sbx_msg *m,
			 char *err, size_t err_len)
{
	uint64_t u;
	int64_t i;

	switch (m->type) {
	case SBX_MSG_HELLO:
	case SBX_MSG_AUTH:
	case SBX_MSG_EXEC:
	case SBX_MSG_WRITE:
	case SBX_MSG_READ:
	case SBX_MSG_STAT:
	case SBX_MSG_ATTACH:
	case SBX_MSG_FORWARD:
	case SBX_MSG_JOBS:
	case SBX_MSG_KILL:
	case SBX_MSG_LOGS:
	case SBX_MSG_EXIT:
	case SBX_MSG_RESULT:
		if (n != 3 || a[2].type != MSGPACK_OBJECT_MAP)
			return fail(err, err_len, "expected a map body", m->type);
		m->body = &a[2];
		return 0;
	case SBX_MSG_PING:
	case SBX_MSG_PONG:
	case SBX_MSG_SIGNAL:
	case SBX_MSG_WINDOW:
		if (n != 3 || get_uint(&a[2], &m->value) < 0)
			return fail(err, err_len, "expected an unsigned integer", m->type);
		return 0;
	case SBX_MSG_CANCEL:
		if (n != 2)
			return fail(err, err_len, "expected no body", m->type);
		return 0;
	case SBX_MSG_RESIZE:
		if (n != 4 || get_uint(&a[2], &u) < 0 || u < 1 || u > 65535)
			return fail(err, err_len, "rows must be 1..65535", m->type);
		m->rows = (unsigned)u;
		if (get_uint(&a[3], &u) < 0 || u < 1 || u > 65535)
			return fail(err, err_len, "cols must be 1..65535", m->type);
		m->cols = (unsigned)u;
		return 0;
	case SBX_MSG_DATA:
		if (n != 6 || get_uint(&a[2], &u) < 0 || u > 2)
			return fail(err, err_len, "bad fd", m->type);
		m->fd = (int)u;
		if (get_uint(&a[3], &u) < 0 || u > 0xff)
			return fail(err, err_len, "bad flags", m->type);
		m->flags = (unsigned)u;
		if (a[4].type != MSGPACK_OBJECT_BIN)
			return fail(err, err_len, "payload is not bin", m->type);
		m->data = (const uint8_t *)a[4].via.bin.ptr;
		m->len = a[4].via.bin.size;
		if (get_uint(&a[5], &u) < 0 || u > SIZE_MAX)
			return fail(err, err_len, "bad raw length", m->type);
		m->rawlen = (size_t)u;
		if (!(m->flags & SBX_DATA_DEFLATE) && m->rawlen != m->len)
			return fail(err, err_len, "raw length differs from payload", m->type);
		return 0;
	case SBX_MSG_END:
		if (n != 5 || get_uint(&a[2], &u) < 0 || u > 2)
			return fail(err, err_len, "bad fd", m->type);
		m->fd = (int)u;
		if (get_uint(&a[3], &m->count) < 0)
			return fail(err, err_len, "bad count", m->type);
		if (get_uint(&a[4], &u) < 0 || u > 0xffffffffu)
			return fail(err, err_len, "bad crc32", m->type);
		m->crc = (uint32_t)u;
		return 0;
	case SBX_MSG_ERROR:
	case SBX_MSG_GOAWAY:
		if (n != 5 || get_int(&a[2], &i) < 0 || i < 0 || i > 4095 ||
		    a[3].type != MSGPACK_OBJECT_STR || a[4].type != MSGPACK_OBJECT_STR)
			return fail(err, err_len, "expected errno, code, text", m->type);
		m->err = (int)i;
		copy_trunc(&a[3], m->code, sizeof m->code);
		copy_trunc(&a[4], m->text, sizeof m->text);
		return 0;
	}
	snprintf(err, err_len, "unknown message type %d", m->type);
	return -1;
}

/* msgpack-c allocates a container's elements from the count in its header
 * before reading any of them, so five bytes claiming 2^32 elements make it
 * try to allocate 128 GiB. Walk the value first: every value still owed
 * (at least one byte each) and every str/bin/ext payload must fit in the
 * bytes that remain, which bounds the allocation by the frame's size. */
static int plausible(const uint8_t *p, size_t n)
{
	uint64_t need = 1; /* values still to read */
	size_t i = 0;
	while (need > 0) {
		if (i >= n)
			return -1;
		unsigned b = p[i++];
		need--;
		uint64_t skip = 0; /* payload bytes after the header */
		unsigned width = 0; /* bytes of the length field */
		int kind = 0;      /* what the length counts: 1 bytes, 2 values, 3 pairs */
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
			;
		else if (b <= 0x8f)
			need += 2 * (b & 0x0f);
		else if (b <= 0x9f)
			need += b & 0x0f;
		else if (b <= 0xbf)
			skip = b & 0x1f;
		else switch (b) {
		case 0xc4: case 0xd9: width = 1; kind = 1; break; /* bin8, str8 */
		case 0xc5: case 0xda: width = 2; kind = 1; break;
		case 0xc6: case 0xdb: width = 4; kind = 1; break;
		case 0xc7: width = 1; kind = 1; skip = 1; break; /* ext: + type byte */
		case 0xc8: width = 2; kind = 1; skip = 1; break;
		case 0xc9: width = 4; kind = 1; skip = 1; break;
		case 0xcc: case 0xd0: skip = 1; break;
		case 0xcd: case 0xd1: skip = 2; break;
		case 0xca: case 0xce: case 0xd2: skip = 4; break;
		case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
		case 0xd4: skip = 2; break; /* fixext: type byte + 1..16 */
		case 0xd5: skip = 3; break;
		case 0xd6: skip = 5; break;
		case 0xd7: skip = 9; break;
		case 0xd8: skip = 17; break;
		case 0xdc: width = 2; kind = 2; break;
		case 0xdd: width = 4; kind = 2; break;
		case 0xde: width = 2; kind = 3; break;
		case 0xdf: width = 4; kind = 3; break;
		default: return -1; /* 0xc1 */
		}
		uint64_t v = 0;
		if (width > n - i)
			return -1;
		for (unsigned k = 0; k < width; k++)
			v = v << 8 | p[i++];
		if (kind == 1)
			skip += v;
		else if (kind == 2)
			need += v;
		else if (kind == 3)
			need += 2 * v;
		if (skip > n - i)
			return -1;
		i += (size_t)skip;
		if (need > n - i)
			return -1;
	}
	return 0;
}

int sbx_msg_decode(const uint8_t *p, size_t n, msgpack_unpacked *u,
		   sbx_msg *m, char *err, size_t err_len)
{
	size_t off = 0;
	memset(m, 0, sizeof *m);
	if (plausible(p, n) < 0) {
		snprintf(err, err_len, "frame is not a valid msgpack value (truncated, or claims "
			 "more elements or bytes than it holds)");
		return -1;
	}
	if (msgpack_unpack_next(u, (const char *)p, n, &off) != MSGPACK_UNPACK_SUCCESS) {
		snprintf(err, err_len, "frame is not a valid msgpack value");
		return -1;
	}
	if (off != n) {
		snprintf(err, err_len, "frame has %zu trailing bytes", n - off);
		return -1;
	}
	const msgpack_object *root = &u->data;
	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 2) {
		snprintf(err, err_len, "frame is not an array [type, stream, ...]");
		return -1;
	}
	const msgpack_object *a = root->via.array.ptr;
	uint64_t type, stream;
	if (get_uint(&a[0], &type) < 0 || type > 0xff || get_uint(&a[1], &stream) < 0 ||
	    stream > 0xffffffffu) {
		snprintf(err, err_len, "frame header [type, stream] is malformed");
		return -1;
	}
	m->type = (int)type;
	m->stream = (uint32_t)stream;
	return decode_fields(a, root->via.array.size, m, err, err_len);
}

/* ---------------------------------------------------------------- encode */

static int buf_write(void *data, const char *p, size_t n)
{
	return sbx_buf_append(data, p, n);
}

int sbx_frame_begin(sbx_frame_writer *w, sbx_buf *out, int type, uint32_t stream, unsigned nfields)
{
	static const uint8_t zero[4];
	w->out = out;
	w->start = sbx_buf_size(out); /* relative to the head: the buffer may compact */
	if (sbx_buf_append(out, zero, 4) < 0)
		return -1;
	msgpack_packer_init(&w->pk, out, buf_write);
	msgpack_pack_array(&w->pk, 2 + nfields);
	msgpack_pack_uint8(&w->pk, (uint8_t)type);
	msgpack_pack_uint32(&w->pk, stream);
	return 0;
}

int sbx_frame_finish(sbx_frame_writer *w, size_t max_frame)
{
	size_t n = sbx_buf_size(w->out) - w->start - 4;
	if (n > max_frame || n > 0xffffffffu) {
		w->out->len = w->out->off + w->start;
		return -1;
	}
	uint8_t *p = sbx_buf_head(w->out) + w->start;
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	return 0;
}

void sbx_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

void sbx_pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	sbx_pack_str(pk, k);
	sbx_pack_str(pk, v);
}

void sbx_pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
	sbx_pack_str(pk, k);
	msgpack_pack_int64(pk, v);
}

void sbx_pack_kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
	sbx_pack_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

void sbx_pack_kv_bool(msgpack_packer *pk, const char *k, int v)
{
	sbx_pack_str(pk, k);
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

/* ---------------------------------------------------------------- maps */

const msgpack_object *sbx_map_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t klen = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
		    memcmp(k->via.str.ptr, key, klen) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

int sbx_obj_str(const msgpack_object *o, char *out, size_t out_len)
{
	if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= out_len)
		return -1;
	if (memchr(o->via.str.ptr, 0, o->via.str.size))
		return -1;
	memcpy(out, o->via.str.ptr, o->via.str.size);
	out[o->via.str.size] = 0;
	return 0;
}

int sbx_map_str(const msgpack_object *map, const char *key, char *out, size_t out_len)
{
	return sbx_obj_str(sbx_map_get(map, key), out, out_len);
}

int64_t sbx_map_int(const msgpack_object *map, const char *key, int64_t dflt)
{
	const msgpack_object *o = sbx_map_get(map, key);
	int64_t v;
	if (!o || get_int(o, &v) < 0)
		return dflt;
	return v;
}

uint64_t sbx_map_uint(const msgpack_object *map, const char *key, uint64_t dflt)
{
	const msgpack_object *o = sbx_map_get(map, key);
	uint64_t v;
	if (!o || get_uint(o, &v) < 0)
		return dflt;
	return v;
}

int sbx_map_bool(const msgpack_object *map, const char *key, int dflt)
{
	const msgpack_object *o = sbx_map_get(map, key);
	if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
		return dflt;
	return o->via.boolean;
}
