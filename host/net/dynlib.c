/* dynlib.c — dlopen of a library and its table of functions (dynlib.h). */
#include "dynlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int sbx_dynlib_load(const char *soname, const sbx_dynlib_fn *fns, size_t n, const char *hint, char *why,
		    size_t why_len)
{
	void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(why, why_len, "cannot load %s (%s): install it (%s)", soname, dlerror(), hint);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		*fns[i].slot = dlsym(lib, fns[i].name);
		if (!*fns[i].slot) {
			snprintf(why, why_len, "%s has no %s: install a newer one (%s)", soname, fns[i].name, hint);
			return -1; /* the library stays mapped: harmless */
		}
	}
	return 0;
}

void sbx_dynlib_die(const char *why)
{
	fprintf(stderr, "libsbx: %s\n", why);
	abort();
}
