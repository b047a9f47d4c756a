/* keyfile.h — a sandbox's secret (auth.h) on disk: created by whoever starts
 * a listening agent, read by the agent at start (`--secret-file`) and by a
 * host that connects later. The text form is auth.h's (hex digits).
 *
 * This is the one file in common/ that touches the file system; the
 * protocol core (conn.c, msg.c, auth.c) never calls it. */
#ifndef SBX_KEYFILE_H
#define SBX_KEYFILE_H

#include <stddef.h>

#include "auth.h"

/* A fresh random secret of SBX_AUTH_KEY_LEN bytes (getrandom). 0, or -1. */
int sbx_keyfile_random(sbx_auth_key *k);

/* Creates PATH (mode 0600, through PATH.tmp and a rename, never following
 * a symlink) holding a fresh secret, also returned in k. 0, or -1 with a
 * reason in err. */
int sbx_keyfile_create(const char *path, sbx_auth_key *k, char *err, size_t err_len);

/* Writes k to PATH the same way (0600, temporary file and rename). */
int sbx_keyfile_write(const char *path, const sbx_auth_key *k, char *err, size_t err_len);

/* Reads the secret in PATH. Refuses (-1, err says why) a file that is not
 * a regular file, that group or others may read or write, that belongs to
 * neither this user nor root, or whose text is not a secret. */
int sbx_keyfile_read(const char *path, sbx_auth_key *k, char *err, size_t err_len);

/* The same, also taking a file that belongs to uid `also` (the user a root
 * agent serves, who made the file in a directory of its own). */
int sbx_keyfile_read_also(const char *path, unsigned also, sbx_auth_key *k, char *err, size_t err_len);

/* Reads a secret's text from an open fd to its end (a pipe or a file). */
int sbx_keyfile_read_fd(int fd, sbx_auth_key *k, char *err, size_t err_len);

#endif
