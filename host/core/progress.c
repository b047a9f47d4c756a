/* progress.c — formats progress lines for the sandboxes' slow steps
 * (see progress.h). */
#include "progress.h"

#include <stdarg.h>
#include <stdio.h>

void sbx_announce(sbx_progress_fn fn, void *ud, const char *fmt, ...)
{
	if (!fn)
		return;
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	fn(ud, what);
}
