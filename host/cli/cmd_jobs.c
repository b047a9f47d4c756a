/* cmd_jobs.c — `sbx ps`, `sbx logs` and `sbx kill`: the detached commands
 * `sbx exec -d` started (libsbx's sbx_jobs_sync & co.). What the agent
 * says about them (ids, command lines, errors) is printed through
 * cli_termtext; a command's output (`logs`) is its stream, byte-exact. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* One command's options: NAME[/SERVICE], then its own. */
typedef struct jobs_args {
	const char *target;
	const char *id;
	int follow;
	int signo;
} jobs_args;

static int valid_id(const char *id)
{
	size_t n = strlen(id);
	return n >= 1 && n <= 15 && strspn(id, "0123456789abcdefghijklmnopqrstuvwxyz") == n;
}

/* "TERM", "SIGTERM", "15" → 15; -1 when none of them. */
static int parse_signal(const char *s)
{
	static const struct { const char *name; int no; } names[] = {
		{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
		{"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"WINCH", SIGWINCH},
	};
	if (!strncmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(s, names[i].name))
			return names[i].no;
	char *end;
	long v = strtol(s, &end, 10);
	return *s && !*end && v >= 1 && v <= 64 ? (int)v : -1;
}

static void ps_usage(FILE *f)
{
	fprintf(f, "usage: sbx ps NAME[/SERVICE]\n"
		   "\n"
		   "Lists the detached commands (`sbx exec -d`) of a sandbox's service, running\n"
		   "and recently ended (kept 10 minutes): ID, PID, AGE, STATE (running, or\n"
		   "exited CODE), COMMAND.\n");
}

static void logs_usage(FILE *f)
{
	fprintf(f, "usage: sbx logs NAME[/SERVICE] ID [-f]\n"
		   "\n"
		   "Prints the output a detached command (`sbx exec -d`) still has: the agent\n"
		   "keeps its last 1 MiB (stdout and stderr together); older output is dropped,\n"
		   "and sbx says how much on stderr. stdout goes to stdout, stderr to stderr.\n"
		   "Exit code: 0, or with -f the command's own once it ended.\n"
		   "\n"
		   "  -f, --follow   then keep printing its output until it exits\n");
}

static void kill_usage(FILE *f)
{
	fprintf(f, "usage: sbx kill NAME[/SERVICE] ID [-s SIGNAL]\n"
		   "\n"
		   "Sends SIGNAL (default TERM) to a detached command's process group.\n"
		   "\n"
		   "  -s, --signal SIGNAL   a name (TERM, KILL, INT, HUP, ...) or a number 1..64\n");
}

/* Parses argv for ps (want_id 0), logs or kill; 0, -1 (help printed) or
 * an exit code. */
static int parse(int argc, char **argv, jobs_args *x, int want_id, void (*usage)(FILE *))
{
	x->signo = SIGTERM;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return -1;
		} else if (usage == logs_usage && (!strcmp(a, "-f") || !strcmp(a, "--follow"))) {
			x->follow = 1;
		} else if (usage == kill_usage && (!strcmp(a, "-s") || !strcmp(a, "--signal")) && v) {
			if ((x->signo = parse_signal(argv[++i])) < 0) {
				cli_say(stderr, "sbx kill: '%s' is no signal: give a name (TERM, KILL, INT, HUP, ...) or 1..64\n", v);
				return EXIT_USAGE;
			}
		} else if (a[0] != '-' && !x->target) {
			x->target = a;
		} else if (a[0] != '-' && want_id && !x->id) {
			x->id = a;
		} else {
			cli_say(stderr, "sbx %s: unexpected '%s'\n", argv[0], a);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!x->target || (want_id && !x->id)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (want_id && !valid_id(x->id)) {
		cli_say(stderr, "sbx %s: '%s' is not a detached command's id (1..15 lowercase letters and digits, "
				"as `sbx exec -d` printed; see sbx ps %s)\n", argv[0], x->id, x->target);
		return EXIT_USAGE;
	}
	return 0;
}

/* "5s", "3m", "2h", "4d" */
static void format_age(char *out, size_t len, uint64_t ms)
{
	uint64_t s = ms / 1000;
	if (s < 120)
		snprintf(out, len, "%us", (unsigned)s);
	else if (s < 7200)
		snprintf(out, len, "%um", (unsigned)(s / 60));
	else if (s < 172800)
		snprintf(out, len, "%uh", (unsigned)(s / 3600));
	else
		snprintf(out, len, "%ud", (unsigned)(s / 86400));
}

static void print_job(const sbx_job *j)
{
	char id[64], cmd[512], age[16], state[32];
	cli_termtext(id, sizeof id, j->id, strnlen(j->id, sizeof j->id), 0);
	cli_termtext(cmd, sizeof cmd, j->command, strnlen(j->command, sizeof j->command), 0);
	format_age(age, sizeof age, j->age_ms);
	if (j->running)
		snprintf(state, sizeof state, "running");
	else
		snprintf(state, sizeof state, "exited %d", j->exit_code);
	printf("%-14s %-8ld %-6s %-11s %s\n", id, j->pid, age, state, cmd);
}

/* What every jobs command starts with: parse argv into x and connect to
 * its target. 1 with *loop and *s set (end with close_target), or 0 when
 * the command is over (help printed, bad usage, no session) with its exit
 * status in *status. */
static int open_target(int argc, char **argv, jobs_args *x, int need_id, void (*usage)(FILE *), sbx_loop **loop,
		       sbx_session **s, int *status)
{
	int rc = parse(argc, argv, x, need_id, usage);
	if (rc) {
		*status = rc < 0 ? 0 : rc;
		return 0;
	}
	*loop = sbx_loop_new();
	cli_sandbox sb;
	const char *svc;
	*s = cli_connect(*loop, x->target, &sb, &svc);
	if (!*s) {
		sbx_loop_free(*loop);
		*status = EXIT_SBX_ERROR;
		return 0;
	}
	return 1;
}

static void close_target(sbx_loop *loop, sbx_session *s)
{
	cli_disconnect(loop, s);
	sbx_loop_free(loop);
}

static int fail(const char *cmd, const sbx_error *e)
{
	cli_say(stderr, "sbx %s: %s\n", cmd, e->message);
	return e->status == SBX_E_REMOTE && !strcmp(e->code, "not_found") ? 1 : EXIT_SBX_ERROR;
}

int cmd_ps(int argc, char **argv)
{
	jobs_args x = {0};
	sbx_loop *loop;
	sbx_session *s;
	int rc = 0;
	if (!open_target(argc, argv, &x, 0, ps_usage, &loop, &s, &rc))
		return rc;
	sbx_job *jobs;
	size_t n;
	sbx_error err;
	if (sbx_jobs_sync(s, &jobs, &n, &err) == 0) {
		printf("%-14s %-8s %-6s %-11s %s\n", "ID", "PID", "AGE", "STATE", "COMMAND");
		for (size_t i = 0; i < n; i++)
			print_job(&jobs[i]);
		free(jobs);
	} else {
		rc = fail("ps", &err);
	}
	close_target(loop, s);
	return rc;
}

/* The command's output, as it is, to our stdout / stderr. A closed one
 * (`| head`) stops the call. */
static int put_output(void *ud, int fd, const uint8_t *p, size_t n)
{
	int *broken = ud;
	while (n > 0) {
		ssize_t w = write(fd == 2 ? 2 : 1, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			*broken = 1;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int cmd_logs(int argc, char **argv)
{
	jobs_args x = {0};
	sbx_loop *loop;
	sbx_session *s;
	int rc = 0;
	if (!open_target(argc, argv, &x, 1, logs_usage, &loop, &s, &rc))
		return rc;
	int broken = 0;
	sbx_logs_opts o = {.id = x.id, .follow = x.follow, .on_output = put_output, .ud = &broken};
	sbx_logs_result r;
	if (sbx_job_logs_sync(s, &o, &r) == 0) {
		if (r.dropped[1] || r.dropped[2])
			cli_say(stderr, "sbx logs: %llu bytes of stdout and %llu of stderr were dropped, not shown "
					"(the agent keeps a detached command's last 1 MiB)\n",
				(unsigned long long)r.dropped[1], (unsigned long long)r.dropped[2]);
		rc = x.follow && !r.running ? r.exit_code : 0;
	} else {
		rc = broken ? 141 : fail("logs", &r.error);
	}
	close_target(loop, s);
	return rc;
}

int cmd_kill(int argc, char **argv)
{
	jobs_args x = {0};
	sbx_loop *loop;
	sbx_session *s;
	int rc = 0;
	if (!open_target(argc, argv, &x, 1, kill_usage, &loop, &s, &rc))
		return rc;
	int sent;
	sbx_error err;
	if (sbx_job_kill_sync(s, x.id, x.signo, &sent, &err) == 0) {
		if (!sent)
			cli_say(stderr, "sbx kill: %s had already exited\n", x.id);
	} else {
		rc = fail("kill", &err);
	}
	close_target(loop, s);
	return rc;
}
