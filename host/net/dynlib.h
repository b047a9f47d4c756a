/* dynlib.h — a shared library loaded on first use.
 *
 * The remote backends' libraries (libcurl and its ~30 dependencies,
 * libcrypto) are not linked into libsbx programs: each is dlopen'ed the
 * first time a call needs it, and its functions go into a table that
 * names them (curl_lib.h, crypto_lib.h). A program that only drives local
 * sandboxes never maps them; relocating them at every start was most of
 * the `sbx` CLI's start-up time (bench/cli.c). */
#ifndef SBX_DYNLIB_H
#define SBX_DYNLIB_H

#include <stddef.h>

/* One function of a table: where its address goes, and its symbol name. */
typedef struct sbx_dynlib_fn {
	void **slot;
	const char *name;
} sbx_dynlib_fn;

/* dlopen's soname and fills every slot of fns. 0, or -1 with why (which
 * says what to install: hint, e.g. "libcurl4 on Debian/Ubuntu"). */
int sbx_dynlib_load(const char *soname, const sbx_dynlib_fn *fns, size_t n, const char *hint, char *why,
		    size_t why_len);

/* For a call that has no way to fail softly: says why on stderr and aborts. */
void sbx_dynlib_die(const char *why) __attribute__((noreturn));

#endif
