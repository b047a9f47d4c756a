/* error.c — building sbx_error values and naming statuses. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

void sbx_error_set(sbx_error *e, sbx_status st, int err_no, const char *code, const char *fmt, ...)
{
	e->status = st;
	e->err_no = err_no;
	snprintf(e->code, sizeof e->code, "%s", code ? code : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

/* An agent's ERROR reply: too_large is a limit, cancelled a cancel,
 * everything else a refusal carrying errno. */
void sbx_error_from_msg(sbx_error *e, const sbx_msg *m)
{
	sbx_status st = SBX_E_REMOTE;
	if (strcmp(m->code, "too_large") == 0)
		st = SBX_E_LIMIT;
	else if (strcmp(m->code, "cancelled") == 0)
		st = SBX_E_CANCELLED;
	sbx_error_set(e, st, m->err, m->code, "%s", m->text);
}

const char *sbx_status_name(sbx_status s)
{
	switch (s) {
	case SBX_OK: return "ok";
	case SBX_E_REMOTE: return "remote error";
	case SBX_E_TIMEOUT: return "timeout";
	case SBX_E_LIMIT: return "limit exceeded";
	case SBX_E_CONN: return "connection failed";
	case SBX_E_LOCAL: return "local error";
	case SBX_E_CANCELLED: return "cancelled";
	case SBX_E_INVALID: return "invalid argument";
	}
	return "unknown";
}
