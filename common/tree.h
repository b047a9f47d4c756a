/* tree.h — the tree stream: how a directory tree (or one file or symlink)
 * travels as one byte stream inside a WRITE or READ with `tree: true`
 * (docs/PROTOCOL.md §10.9). Sans-I/O: an encoder for record headers and an
 * incremental, validating decoder; treefs.h walks and creates the files.
 *
 * A record is a 15-byte header — kind (1 byte), mode (u32), size (u64),
 * name length (u16), big-endian — then the name, then `size` bytes: a
 * file's contents or a symlink's target. Kinds: 'd' enters a directory,
 * 'u' leaves it, 'f' a regular file, 'l' a symlink. Names are single path
 * components, so a receiver creates every entry relative to a directory
 * it opened itself and a name can never climb out of it. The stream is
 * one root entry (its name is only informative: the receiver names it)
 * and, for a directory, its contents up to the matching 'u'. */
#ifndef SBX_TREE_H
#define SBX_TREE_H

#include <stddef.h>
#include <stdint.h>

#define SBX_TREE_DIR 'd'
#define SBX_TREE_UP 'u'
#define SBX_TREE_FILE 'f'
#define SBX_TREE_LINK 'l'

#define SBX_TREE_HDR 15         /* header bytes before the name */
#define SBX_TREE_NAME_MAX 255   /* bytes in one name */
#define SBX_TREE_LINK_MAX 4095  /* bytes in a symlink's target */
#define SBX_TREE_DEPTH_MAX 64   /* directories nested in the root, root included */

/* Writes a header and name into out (room for SBX_TREE_HDR + namelen);
 * returns the bytes written. */
size_t sbx_tree_header(uint8_t *out, int kind, uint32_t mode, uint64_t size, const char *name, size_t namelen);

/* 1 if name is a usable single component: 1..255 bytes, no '/', no NUL,
 * not "." or "..". */
int sbx_tree_name_ok(const char *name, size_t len);

/* What the decoder reports. Returning -1 from any callback stops the
 * decoder (sbx_tree_feed then returns -1). name/link are NUL-terminated
 * and valid only during the call. */
typedef struct sbx_tree_sink {
	/* 'd', 'f' (then data, then file_end), 'l' (link set), 'u' */
	int (*entry)(void *ud, int kind, uint32_t mode, uint64_t size, const char *name, const char *link);
	int (*data)(void *ud, const uint8_t *p, size_t n);
	int (*file_end)(void *ud);
	void *ud;
} sbx_tree_sink;

typedef struct sbx_tree_dec {
	sbx_tree_sink sink;
	int phase;               /* header, name, link, data, done */
	uint8_t hdr[SBX_TREE_HDR];
	size_t have;             /* bytes of the current header/name/link */
	int kind;
	uint32_t mode;
	uint64_t size, left;
	size_t namelen;
	char name[SBX_TREE_NAME_MAX + 1];
	char link[SBX_TREE_LINK_MAX + 1];
	int depth, started;
	char err[128];           /* why the stream was refused */
} sbx_tree_dec;

void sbx_tree_dec_init(sbx_tree_dec *d, const sbx_tree_sink *sink);
/* Feeds bytes; 0, or -1 when the stream is malformed (d->err says how) or
 * a callback refused. Bytes after the root entry ended are malformed. */
int sbx_tree_feed(sbx_tree_dec *d, const uint8_t *p, size_t n);
/* 1 once the root entry is complete. */
int sbx_tree_done(const sbx_tree_dec *d);

#endif
