/* test_scale.c — one host process, many agents: SCALE_AGENTS local agents
 * (default 1,000; plain children, not isolated) on one loop, running
 * SCALE_EXECS execs (default 20,000) and SCALE_FILES file round trips
 * (default 2,000) spread over them, all sessions busy at once (two calls
 * in flight per session). Every call must succeed with the right bytes;
 * afterwards the host has the same open fds as before, no child left,
 * and its heap back where it was.
 *
 * Under ASan (SAN=1) every agent is an ASan build too, so the defaults
 * drop to a quarter (the counts are printed). */
#include <malloc.h>
#include <sys/resource.h>

#include "it_util.h"

size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static size_t heap_in_use(void)
{
	if (__sanitizer_get_current_allocated_bytes)
		return __sanitizer_get_current_allocated_bytes();
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n - 1; /* the DIR's own fd */
}

/* Live or unreaped children of this process (from /proc, without reaping
 * them under the loop's feet). */
static int count_children(void)
{
	DIR *d = opendir("/proc");
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[len] = 0;
		const char *rp = strrchr(buf, ')');
		int ppid = 0;
		if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == getpid())
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	return v && v[0] ? atol(v) : dflt;
}

#define FILE_LEN 8192
#define IN_FLIGHT 2

typedef struct agent_slot {
	sbx_session *s;
	int idx;
	int execs_left, files_left, running;
	int failed;
	char why[600];
} agent_slot;

static sbx_loop *g_loop;
static char g_dir[128];
static agent_slot *g_slots;
static long g_done_execs, g_done_files, g_failures;
static int g_all_done;
static long g_total_calls, g_finished_calls;

static void next_call(agent_slot *a);

static void slot_fail(agent_slot *a, const char *fmt, const char *msg)
{
	if (!a->failed)
		snprintf(a->why, sizeof a->why, fmt, msg);
	a->failed = 1;
	g_failures++;
}

static void call_finished(agent_slot *a)
{
	a->running--;
	if (++g_finished_calls == g_total_calls)
		g_all_done = 1;
	next_call(a);
}

typedef struct exec_ctx {
	agent_slot *a;
	int n;
} exec_ctx;

static void on_exec(void *ud, sbx_exec_result *r)
{
	exec_ctx *x = ud;
	char want[32];
	snprintf(want, sizeof want, "a%d-%d\n", x->a->idx, x->n);
	if (r->error.status != SBX_OK)
		slot_fail(x->a, "exec: %s", r->error.message);
	else if (!r->out || strcmp((char *)r->out, want) != 0)
		slot_fail(x->a, "exec printed '%s'", r->out ? (char *)r->out : "");
	else
		g_done_execs++;
	agent_slot *a = x->a;
	free(x);
	call_finished(a);
}

typedef struct file_ctx {
	agent_slot *a;
	char path[64];
	uint8_t data[FILE_LEN];
} file_ctx;

static void on_read(void *ud, sbx_file_result *r)
{
	file_ctx *f = ud;
	if (r->error.status != SBX_OK)
		slot_fail(f->a, "read_file: %s", r->error.message);
	else if (r->len != FILE_LEN || memcmp(r->data, f->data, FILE_LEN) != 0)
		slot_fail(f->a, "read_file: %s", "the bytes differ");
	else
		g_done_files++;
	agent_slot *a = f->a;
	free(f);
	call_finished(a);
}

static void on_write(void *ud, sbx_file_result *r)
{
	file_ctx *f = ud;
	sbx_error err;
	if (r->error.status != SBX_OK) {
		slot_fail(f->a, "write_file: %s", r->error.message);
	} else {
		sbx_file_opts o = SBX_FILE_OPTS_INIT;
		o.path = f->path;
		o.on_done = on_read;
		o.ud = f;
		if (sbx_read_file(f->a->s, &o, &err))
			return; /* the round trip goes on */
		slot_fail(f->a, "read_file: %s", err.message);
	}
	agent_slot *a = f->a;
	free(f);
	call_finished(a);
}

/* Starts the slot's next call; file round trips first, then execs. */
static void next_call(agent_slot *a)
{
	sbx_error err;
	if (a->files_left > 0) {
		int n = a->files_left--;
		file_ctx *f = malloc(sizeof *f);
		f->a = a;
		snprintf(f->path, sizeof f->path, "scale-%d-%d.bin", a->idx, n);
		it_fill_random(f->data, FILE_LEN, (uint64_t)a->idx * 1000 + (uint64_t)n);
		sbx_file_opts o = SBX_FILE_OPTS_INIT;
		o.path = f->path;
		o.data = f->data;
		o.len = FILE_LEN;
		o.on_done = on_write;
		o.ud = f;
		a->running++;
		if (!sbx_write_file(a->s, &o, &err)) {
			slot_fail(a, "write_file: %s", err.message);
			free(f);
			call_finished(a);
		}
		return;
	}
	if (a->execs_left > 0) {
		int n = a->execs_left--;
		exec_ctx *x = malloc(sizeof *x);
		x->a = a;
		x->n = n;
		char word[32];
		snprintf(word, sizeof word, "a%d-%d", a->idx, n);
		const char *argv[] = {"echo", word, NULL};
		sbx_exec_opts o = {.argv = argv, .on_done = on_exec, .ud = x};
		a->running++;
		if (!sbx_exec(a->s, &o, &err)) {
			slot_fail(a, "exec: %s", err.message);
			free(x);
			call_finished(a);
		}
	}
}

static void test_thousand_agents(void)
{
	int san = __sanitizer_get_current_allocated_bytes != NULL;
	long nagents = env_long("SCALE_AGENTS", san ? 250 : 1000);
	long nexecs = env_long("SCALE_EXECS", san ? 5000 : 20000);
	long nfiles = env_long("SCALE_FILES", san ? 500 : 2000);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rlim_t need = (rlim_t)(nagents * 4 + 256);
	if (rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	CHECKF(rl.rlim_cur >= need, "RLIMIT_NOFILE is %llu; %llu needed", (unsigned long long)rl.rlim_cur,
	       (unsigned long long)need);

	int fds0 = count_fds();
	size_t heap0 = heap_in_use();
	g_slots = calloc((size_t)nagents, sizeof *g_slots);
	sbx_error err;
	sbx_local_opts lo = {.agent_path = it_agent(), .workdir = g_dir, .host = 1};
	/* A 2-core machine running 1,000 agents and their 2,000 commands can
	 * leave an agent unscheduled for long (once, 10 of 1,000 sessions went
	 * past the 60 s default): this test is about scale, not heartbeats, so
	 * a silent agent fails only after 5 min (and a hung one still fails). */
	sbx_session_opts so = {.dead_ms = 300000};
	for (long i = 0; i < nagents; i++) {
		g_slots[i].idx = (int)i;
		g_slots[i].s = sbx_session_local(g_loop, &lo, &so, &err);
		CHECKF(g_slots[i].s, "agent %ld: %s", i, err.message);
	}
	for (long i = 0; i < nagents; i++)
		CHECKF(sbx_session_wait_ready(g_slots[i].s, 120, &err) == 0, "agent %ld: %s", i, err.message);
	printf("     %ld agents connected: %d fds (was %d), heap +%zu KiB\n", nagents, count_fds(), fds0,
	       (heap_in_use() - heap0) / 1024);

	g_total_calls = nexecs + nfiles;
	for (long i = 0; i < nagents; i++) {
		g_slots[i].execs_left = (int)(nexecs / nagents + (i < nexecs % nagents));
		g_slots[i].files_left = (int)(nfiles / nagents + (i < nfiles % nagents));
	}
	uint64_t t0 = sbx_now_ms();
	for (int k = 0; k < IN_FLIGHT; k++)
		for (long i = 0; i < nagents; i++)
			next_call(&g_slots[i]);
	int rc = it_run_until(g_loop, &g_all_done, 600);
	uint64_t ms = sbx_now_ms() - t0;
	printf("     %ld execs + %ld file round trips (8 KiB) in %.1f s\n", g_done_execs, g_done_files, ms / 1000.0);

	for (long i = 0; i < nagents; i++)
		CHECKF(!g_slots[i].failed, "agent %ld: %s (%ld calls failed in all)", i, g_slots[i].why, g_failures);
	CHECKF(rc == 0, "not done after 600 s: %ld of %ld calls finished", g_finished_calls, g_total_calls);
	CHECK_EQ_INT(g_done_execs, nexecs);
	CHECK_EQ_INT(g_done_files, nfiles);

	for (long i = 0; i < nagents; i++)
		sbx_session_close(g_slots[i].s);
	free(g_slots);
	g_slots = NULL;
	/* the agents exit and are reaped by the loop */
	uint64_t until = sbx_now_ms() + 30000;
	while (sbx_now_ms() < until && (count_fds() > fds0 || count_children() > 0))
		sbx_loop_run_once(g_loop, 20);
	CHECKF(count_fds() == fds0, "%d fds open after closing every session (%d before)", count_fds(), fds0);
	CHECKF(count_children() == 0, "%d children left behind", count_children());
	size_t heap1 = heap_in_use();
	CHECKF(heap1 <= heap0 + 256 * 1024, "heap grew by %zu KiB over the run", (heap1 - heap0) / 1024);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	it_agent();
	it_tmpdir(g_dir, sizeof g_dir, "scale");
	g_loop = sbx_loop_new();
	IT_RUN(test_thousand_agents);
	sbx_loop_free(g_loop);
	it_rm_rf(g_dir);
	return test_summary();
}
