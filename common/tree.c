/* tree.c — encoder and validating decoder of the tree stream (tree.h). */
#include "tree.h"

#include <stdio.h>
#include <string.h>

enum { PH_HDR, PH_NAME, PH_LINK, PH_DATA, PH_DONE };

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

size_t sbx_tree_header(uint8_t *out, int kind, uint32_t mode, uint64_t size, const char *name, size_t namelen)
{
	out[0] = (uint8_t)kind;
	put_be(out + 1, mode, 4);
	put_be(out + 5, size, 8);
	put_be(out + 13, namelen, 2);
	memcpy(out + SBX_TREE_HDR, name, namelen);
	return SBX_TREE_HDR + namelen;
}

int sbx_tree_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > SBX_TREE_NAME_MAX || memchr(name, '/', len) || memchr(name, 0, len))
		return 0;
	return !(len == 1 && name[0] == '.') && !(len == 2 && name[0] == '.' && name[1] == '.');
}

void sbx_tree_dec_init(sbx_tree_dec *d, const sbx_tree_sink *sink)
{
	memset(d, 0, sizeof *d);
	d->sink = *sink;
}

int sbx_tree_done(const sbx_tree_dec *d) { return d->phase == PH_DONE; }

static int bad(sbx_tree_dec *d, const char *why)
{
	snprintf(d->err, sizeof d->err, "malformed tree stream: %s", why);
	return -1;
}

/* After a complete entry (or a file's last byte): the root is done when
 * nothing is left open. */
static void entry_closed(sbx_tree_dec *d)
{
	d->phase = d->depth == 0 ? PH_DONE : PH_HDR;
	d->have = 0;
}

/* A whole header arrived: check it before its name is read. */
static int header_done(sbx_tree_dec *d)
{
	d->kind = d->hdr[0];
	d->mode = (uint32_t)get_be(d->hdr + 1, 4);
	d->size = get_be(d->hdr + 5, 8);
	d->namelen = (size_t)get_be(d->hdr + 13, 2);
	if (d->kind != SBX_TREE_DIR && d->kind != SBX_TREE_UP && d->kind != SBX_TREE_FILE && d->kind != SBX_TREE_LINK)
		return bad(d, "unknown entry kind");
	if (d->mode & ~07777u)
		return bad(d, "mode has bits beyond 07777");
	if (d->kind == SBX_TREE_UP) {
		if (d->depth == 0)
			return bad(d, "leaves a directory that was not entered");
		if (d->namelen || d->size)
			return bad(d, "a directory's end carries a name or size");
		d->depth--;
		if (d->sink.entry(d->sink.ud, SBX_TREE_UP, 0, 0, "", NULL) < 0)
			return -1;
		entry_closed(d);
		return 0;
	}
	if (d->namelen == 0 || d->namelen > SBX_TREE_NAME_MAX)
		return bad(d, "a name is empty or longer than 255 bytes");
	if (d->kind == SBX_TREE_LINK && (d->size == 0 || d->size > SBX_TREE_LINK_MAX))
		return bad(d, "a symlink target is empty or longer than 4095 bytes");
	if (d->kind == SBX_TREE_DIR && d->size)
		return bad(d, "a directory carries a size");
	d->phase = PH_NAME;
	d->have = 0;
	return 0;
}

static int name_done(sbx_tree_dec *d)
{
	d->name[d->namelen] = 0;
	if (!sbx_tree_name_ok(d->name, d->namelen))
		return bad(d, "an entry name has a '/', a NUL, or is '.' or '..'");
	d->started = 1;
	if (d->kind == SBX_TREE_LINK) {
		d->phase = PH_LINK;
		d->have = 0;
		return 0;
	}
	if (d->kind == SBX_TREE_DIR) {
		if (d->depth >= SBX_TREE_DEPTH_MAX)
			return bad(d, "directories nested deeper than 64 levels");
		if (d->sink.entry(d->sink.ud, SBX_TREE_DIR, d->mode, 0, d->name, NULL) < 0)
			return -1;
		d->depth++;
		d->phase = PH_HDR;
		d->have = 0;
		return 0;
	}
	if (d->sink.entry(d->sink.ud, SBX_TREE_FILE, d->mode, d->size, d->name, NULL) < 0)
		return -1;
	d->left = d->size;
	d->phase = PH_DATA;
	if (d->left == 0) {
		if (d->sink.file_end(d->sink.ud) < 0)
			return -1;
		entry_closed(d);
	}
	return 0;
}

static int link_done(sbx_tree_dec *d)
{
	d->link[d->size] = 0;
	if (memchr(d->link, 0, (size_t)d->size))
		return bad(d, "a symlink target contains a NUL");
	if (d->sink.entry(d->sink.ud, SBX_TREE_LINK, d->mode, d->size, d->name, d->link) < 0)
		return -1;
	entry_closed(d);
	return 0;
}

/* Copies up to want-have bytes into dst; returns how many were taken. */
static size_t collect(uint8_t *dst, size_t *have, size_t want, const uint8_t *p, size_t n)
{
	size_t k = want - *have < n ? want - *have : n;
	memcpy(dst + *have, p, k);
	*have += k;
	return k;
}

int sbx_tree_feed(sbx_tree_dec *d, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t k;
		int rc = 0;
		switch (d->phase) {
		case PH_DONE:
			return bad(d, "bytes after the root entry ended");
		case PH_HDR:
			k = collect(d->hdr, &d->have, SBX_TREE_HDR, p, n);
			if (d->have == SBX_TREE_HDR)
				rc = header_done(d);
			break;
		case PH_NAME:
			k = collect((uint8_t *)d->name, &d->have, d->namelen, p, n);
			if (d->have == d->namelen)
				rc = name_done(d);
			break;
		case PH_LINK:
			k = collect((uint8_t *)d->link, &d->have, (size_t)d->size, p, n);
			if (d->have == d->size)
				rc = link_done(d);
			break;
		default: /* PH_DATA */
			k = d->left < n ? (size_t)d->left : n;
			if (d->sink.data(d->sink.ud, p, k) < 0)
				return -1;
			d->left -= k;
			if (d->left == 0) {
				if (d->sink.file_end(d->sink.ud) < 0)
					return -1;
				entry_closed(d);
			}
			break;
		}
		if (rc < 0)
			return -1;
		p += k;
		n -= k;
	}
	return 0;
}
