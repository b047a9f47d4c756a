/* outcome.h — what the fault tests (test_faults.c, test_ssm_faults.c,
 * test_k8s.c) check after cutting a connection mid call: how often and how
 * each call reported (on_done callbacks that record the first report and
 * count the rest), whether a transfer's target holds its old bytes or all
 * new ones (never a mix), and the output a counting script should print;
 * and a fault "round" (it_round): an exec and two transfers started
 * together on one session, run until the moment to strike, settled, and
 * the checks every fault test makes of what they left.
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

/* ---------------------------------------------------------------- a round */

/* What a round does: in dir (the agent's working directory), write pattern
 * (size bytes) to up.bin, read source (default source.bin) to down_path
 * (default dir/local/down.bin), and run a script echoing lines lines, sleep
 * seconds apart. */
typedef struct it_round_spec {
	const char *dir;
	const uint8_t *pattern;
	size_t size;
	int lines;
	const char *sleep;
	const char *source, *down_path;
} it_round_spec;

/* One round's three calls. */
typedef struct it_round {
	it_outcome ex, up, down;
} it_round;

/* dir/rel in one of four rotating buffers. */
IT_UNUSED static const char *it_path(const char *dir, const char *rel)
{
	static char b[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(b[k], sizeof b[k], "%s/%s", dir, rel);
	return b[k];
}

/* Where the download goes. */
IT_UNUSED static const char *it_round_down_path(const it_round_spec *sp)
{
	return sp->down_path ? sp->down_path : it_path(sp->dir, "local/down.bin");
}

/* Puts "old" at both transfers' targets. */
IT_UNUSED static void it_round_reset(const it_round_spec *sp)
{
	it_write_local(it_path(sp->dir, "up.bin"), "old", 3);
	it_write_local(it_round_down_path(sp), "old", 3);
}

/* Starts the three calls of a round on s. 0, or -1 with why. */
IT_UNUSED static int it_round_start(sbx_session *s, it_round *rc, const it_round_spec *sp, char *why, size_t len)
{
	memset(rc, 0, sizeof *rc);
	static char script[200];
	snprintf(script, sizeof script, "i=0; while [ $i -lt %d ]; do echo line$i; i=$((i+1)); sleep %s; done",
		 sp->lines, sp->sleep);
	const char *argv[] = {"sh", "-c", script, NULL};
	sbx_exec_opts eo = {.argv = argv, .on_done = it_on_exec, .ud = &rc->ex};
	sbx_file_opts up = SBX_FILE_OPTS_INIT;
	up.path = "up.bin";
	up.data = sp->pattern;
	up.len = sp->size;
	up.on_done = it_on_file;
	up.ud = &rc->up;
	sbx_file_opts down = SBX_FILE_OPTS_INIT;
	down.path = sp->source ? sp->source : "source.bin";
	down.local_path = it_round_down_path(sp);
	down.on_done = it_on_file;
	down.ud = &rc->down;
	sbx_error err;
	if (!sbx_exec(s, &eo, &err) || !sbx_write_file(s, &up, &err) || !sbx_read_file(s, &down, &err)) {
		snprintf(why, len, "could not start: %s", err.message);
		return -1;
	}
	return 0;
}

IT_UNUSED static int it_round_done(const it_round *rc)
{
	return rc->ex.ndone && rc->up.ndone && rc->down.ndone;
}

/* Runs the loop for about ms, or less if the calls finish first. */
IT_UNUSED static void it_round_run_a_while(sbx_loop *loop, it_round *rc, uint64_t ms)
{
	uint64_t end = sbx_now_ms() + ms;
	while (sbx_now_ms() < end && !it_round_done(rc))
		sbx_loop_run_once(loop, 1);
}

/* The agent's temporary files left in dir and dir/local. */
IT_UNUSED static int it_round_temps(const it_round_spec *sp)
{
	return it_count_entries(sp->dir, ".sbx-") + it_count_entries(it_path(sp->dir, "local"), ".sbx-");
}

/* Waits (running the loop, timeout_s for each call) until the calls are
 * done, a little longer for a second report, and, with want_no_temps,
 * until the agent's temporary files are gone (5 s at most). */
IT_UNUSED static void it_round_settle(sbx_loop *loop, it_round *rc, const it_round_spec *sp, double timeout_s,
				      int want_no_temps)
{
	it_run_until(loop, &rc->ex.ndone, timeout_s);
	it_run_until(loop, &rc->up.ndone, timeout_s);
	it_run_until(loop, &rc->down.ndone, timeout_s);
	for (int extra = 0; extra < 5; extra++) /* a second report would show up here */
		sbx_loop_run_once(loop, 2);
	uint64_t end = sbx_now_ms() + 5000;
	while (want_no_temps && it_round_temps(sp) > 0 && sbx_now_ms() < end)
		sbx_loop_run_once(loop, 10);
}

/* Each call reported exactly once. 0, or -1 with why. */
IT_UNUSED static int it_round_reported_once(const it_round *rc, char *why, size_t len)
{
	if (rc->ex.ndone == 1 && rc->up.ndone == 1 && rc->down.ndone == 1)
		return 0;
	snprintf(why, len, "calls reported %d/%d/%d times", rc->ex.ndone, rc->up.ndone, rc->down.ndone);
	return -1;
}

/* The command's output is all the lines of the script. */
IT_UNUSED static int it_round_output_whole(const it_round *rc, const it_round_spec *sp)
{
	char want[1000];
	it_lines(want, sizeof want, sp->lines);
	return rc->ex.status == SBX_OK && rc->ex.out && strcmp(rc->ex.out, want) == 0;
}

/* Both targets hold the old bytes or all new ones, and all new ones where
 * the transfer reported success. 0, or -1 with why. */
IT_UNUSED static int it_round_targets(const it_round *rc, const it_round_spec *sp, char *why, size_t len)
{
	const it_outcome *files[] = {&rc->up, &rc->down};
	const char *targets[] = {it_path(sp->dir, "up.bin"), it_round_down_path(sp)};
	for (int i = 0; i < 2; i++) {
		int left = it_whole_or_old(targets[i], sp->pattern, sp->size, why, len);
		if (left == IT_TORN)
			return -1;
		if (files[i]->status == SBX_OK && left != IT_WHOLE) {
			snprintf(why, len, "%s reported success but %s is not all there", i ? "download" : "upload",
				 targets[i]);
			return -1;
		}
	}
	return 0;
}

IT_UNUSED static void it_round_free(it_round *rc)
{
	free(rc->ex.out);
	rc->ex.out = NULL;
}

#endif
