/* outcome.h — what the fault tests (test_faults.c, test_ssm_faults.c,
 * test_k8s.c) check after cutting a connection mid call: how often and how
 * each call reported (on_done callbacks that record the first report and
 * count the rest), whether a transfer's target holds its old bytes or all
 * new ones (never a mix), and the output a counting script should print.
 *
 * Header-only like it_util.h; every function is static and marked unused. */
#ifndef SBX_IT_OUTCOME_H
#define SBX_IT_OUTCOME_H

#include <sys/mman.h>

#include "it_util.h"

/* One call's report: how many times on_done ran, and the first one. */
typedef struct it_outcome {
	int ndone;
	sbx_status status;
	char message[sizeof ((sbx_error *)0)->message];
	char *out; /* an exec's stdout (NUL-terminated), owned here: free it */
} it_outcome;

/* on_done of an exec whose ud is an it_outcome. */
IT_UNUSED static void it_on_exec(void *ud, sbx_exec_result *r)
{
	it_outcome *o = ud;
	if (o->ndone++ == 0) {
		o->status = r->error.status;
		snprintf(o->message, sizeof o->message, "%s", r->error.message);
		o->out = (char *)r->out;
		r->out = NULL;
	}
}

/* on_done of a file transfer whose ud is an it_outcome. */
IT_UNUSED static void it_on_file(void *ud, sbx_file_result *r)
{
	it_outcome *o = ud;
	if (o->ndone++ == 0) {
		o->status = r->error.status;
		snprintf(o->message, sizeof o->message, "%s", r->error.message);
	}
}

/* What a transfer left at a target that held "old" before it. */
enum { IT_TORN = -1, IT_OLD = 0, IT_WHOLE = 1 };

/* IT_WHOLE when path holds the size bytes at want, IT_OLD when it still
 * holds "old", else IT_TORN with why saying what is there. */
IT_UNUSED static int it_whole_or_old(const char *path, const void *want, size_t size, char *why, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, len, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return IT_TORN;
	}
	int got = IT_TORN;
	if (st.st_size == 3) {
		char b[3];
		if (read(fd, b, 3) == 3 && memcmp(b, "old", 3) == 0)
			got = IT_OLD;
	} else if ((size_t)st.st_size == size && size > 0) {
		void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m != MAP_FAILED && memcmp(m, want, size) == 0)
			got = IT_WHOLE;
		if (m != MAP_FAILED)
			munmap(m, size);
	}
	close(fd);
	if (got == IT_TORN)
		snprintf(why, len, "%s is half written (%lld bytes)", path, (long long)st.st_size);
	return got;
}

/* "line0\nline1\n..." up to line lines-1: what the tests' counting script
 * prints (`echo line$i` in a loop). */
IT_UNUSED static void it_lines(char *out, size_t len, int lines)
{
	out[0] = 0;
	for (int i = 0; i < lines; i++)
		snprintf(out + strlen(out), len - strlen(out), "line%d\n", i);
}

#endif
