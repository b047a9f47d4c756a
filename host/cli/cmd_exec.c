/* cmd_exec.c — `sbx exec`: run a command in a sandbox, streaming its
 * stdin, stdout and stderr, and exit with its exit code. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "sink.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx exec [options] NAME[/SERVICE] -- COMMAND [ARG...]\n"
		"\n"
		"Runs COMMAND directly (no shell) in the sandbox; stdin (when it is not a\n"
		"terminal) is streamed to it; its output is streamed back. The exit code is\n"
		"the command's; 124 after a timeout, 126 when it cannot be executed, 127 when\n"
		"it is not found, 125 when sbx itself failed.\n"
		"\n"
		"  -u, --user USER     run as USER (name, uid, name:group or uid:gid)\n"
		"  -w, --cwd DIR       working directory (relative: to the sandbox workdir)\n"
		"  -e, --env K=V       set an environment variable (repeatable)\n"
		"  -t, --timeout SECS  kill the command (whole process group) after SECS\n"
		"  --limit BYTES       output limit per stream (default 10 MiB)\n"
		"  --json              print {exit_code, stdout, stderr, timed_out, error} as JSON\n");
}

typedef struct exec_state {
	int done;
	int json;
	int exit_code;
	sbx_call *call;
	int stdin_open;
	int stdin_file; /* stdin is a regular file: read by timer, not epoll */
	cli_sink out;   /* stdout and stderr, at the reader's pace */
	char error[600]; /* said after the command's own output */
} exec_state;

static void on_output(void *ud, int fd, const uint8_t *p, size_t n)
{
	exec_state *st = ud;
	cli_sink_output(&st->out, fd, p, n);
}

static int exit_code_for(const sbx_exec_result *r)
{
	switch (r->error.status) {
	case SBX_OK: return r->exit_code;
	case SBX_E_TIMEOUT: return EXIT_TIMEOUT;
	case SBX_E_LIMIT: return r->exit_code >= 0 ? r->exit_code : 1;
	case SBX_E_REMOTE:
		if (strcmp(r->error.code, "not_found") == 0)
			return EXIT_NOT_FOUND;
		if (strcmp(r->error.code, "permission") == 0)
			return EXIT_NOT_EXEC;
		return EXIT_SBX_ERROR;
	default: return EXIT_SBX_ERROR;
	}
}

static void print_json(const sbx_exec_result *r)
{
	printf("{\"exit_code\": %d, \"timed_out\": %s, \"truncated\": %s, \"stdout\": ", r->exit_code,
	       r->timed_out ? "true" : "false", r->truncated ? "true" : "false");
	json_str(stdout, (const char *)r->out, r->out_len);
	printf(", \"stderr\": ");
	json_str(stdout, (const char *)r->err, r->err_len);
	printf(", \"error\": ");
	if (r->error.status == SBX_OK) {
		printf("null");
	} else {
		printf("{\"kind\": ");
		json_str(stdout, sbx_status_name(r->error.status), strlen(sbx_status_name(r->error.status)));
		printf(", \"code\": ");
		json_str(stdout, r->error.code, strlen(r->error.code));
		printf(", \"errno\": %d, \"message\": ", r->error.err_no);
		json_str(stdout, r->error.message, strlen(r->error.message));
		printf("}");
	}
	printf("}\n");
}

static void on_done(void *ud, sbx_exec_result *r)
{
	exec_state *st = ud;
	st->done = 1;
	st->call = NULL;
	st->out.call = NULL;
	st->exit_code = exit_code_for(r);
	if (st->json) {
		print_json(r);
		return;
	}
	if (r->error.status != SBX_OK)
		snprintf(st->error, sizeof st->error, "%s", r->error.message);
}

#define STDIN_HIGH_WATER (1024 * 1024)

static void on_stdin(sbx_loop *loop, int fd, unsigned events, void *ud);

/* Back-pressure: stop reading stdin while much of it waits to be sent. */
static void stdin_resume(sbx_loop *loop, void *ud)
{
	exec_state *st = ud;
	if (!st->stdin_open || !st->call)
		return;
	if (sbx_call_stdin_pending(st->call) > STDIN_HIGH_WATER) {
		sbx_loop_timer(loop, 2, stdin_resume, st);
	} else if (st->stdin_file) {
		/* a regular file or /dev/null cannot be polled: read it in turns */
		while (st->stdin_open && st->call && sbx_call_stdin_pending(st->call) <= STDIN_HIGH_WATER)
			on_stdin(loop, 0, SBX_EV_READ, st);
		if (st->stdin_open)
			sbx_loop_timer(loop, 2, stdin_resume, st);
	} else {
		sbx_loop_watch(loop, 0, SBX_EV_READ, on_stdin, st);
	}
}

static void on_stdin(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)events;
	exec_state *st = ud;
	uint8_t buf[65536];
	ssize_t r = read(fd, buf, sizeof buf);
	if (r > 0 && st->call) {
		sbx_call_write_stdin(st->call, buf, (size_t)r);
		if (sbx_call_stdin_pending(st->call) > STDIN_HIGH_WATER && !st->stdin_file) {
			sbx_loop_watch(loop, fd, 0, on_stdin, st);
			sbx_loop_timer(loop, 2, stdin_resume, st);
		}
		return;
	}
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (!st->stdin_file)
		sbx_loop_unwatch(loop, fd);
	st->stdin_open = 0;
	if (st->call)
		sbx_call_close_stdin(st->call);
}

/* Ctrl-C and kill forward to the command's process group. */
static void on_signal(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)events;
	exec_state *st = ud;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == sizeof si)
		if (st->call)
			sbx_call_signal(st->call, (int)si.ssi_signo);
}

int cmd_exec(int argc, char **argv)
{
	sbx_exec_opts o = {0};
	const char *env[256];
	int nenv = 0, json = 0, i;
	const char *target = NULL;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if ((!strcmp(a, "-u") || !strcmp(a, "--user")) && v) {
			o.user = v;
			i++;
		} else if ((!strcmp(a, "-w") || !strcmp(a, "--cwd")) && v) {
			o.cwd = v;
			i++;
		} else if ((!strcmp(a, "-e") || !strcmp(a, "--env")) && v && strchr(v, '=') && nenv < 255) {
			env[nenv++] = v;
			i++;
		} else if ((!strcmp(a, "-t") || !strcmp(a, "--timeout")) && v) {
			char *end;
			o.timeout_s = strtod(v, &end);
			if (*end || o.timeout_s <= 0) {
				cli_say(stderr, "sbx exec: --timeout wants a positive number of seconds, not '%s'\n", v);
				return EXIT_USAGE;
			}
			i++;
		} else if (!strcmp(a, "--limit") && v) {
			o.output_limit = (size_t)strtoull(v, NULL, 10);
			i++;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (a[0] != '-' && !target) {
			target = a;
		} else if (a[0] != '-' && target) {
			break; /* the command starts here (no "--") */
		} else {
			cli_say(stderr, "sbx exec: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!target || i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	env[nenv] = NULL;
	o.argv = (const char *const *)argv + i;
	o.env = nenv ? env : NULL;

	sbx_loop *loop = sbx_loop_new();
	cli_sandbox sb;
	const char *svc;
	sbx_session *s = cli_connect(loop, target, &sb, &svc);
	if (!s) {
		sbx_loop_free(loop);
		return EXIT_SBX_ERROR;
	}
	exec_state st = {.json = json};
	cli_sink_init(&st.out, loop);
	o.on_done = on_done;
	o.ud = &st;
	if (!json) {
		o.on_output = on_output;
		o.no_accumulate = 1;
		o.manual_credit = 1;
	}
	o.stream_stdin = !isatty(0);
	sbx_error err;
	st.call = sbx_exec(s, &o, &err);
	if (!st.call) {
		cli_say(stderr, "sbx: %s\n", err.message);
		sbx_session_close(s);
		sbx_loop_free(loop);
		return EXIT_SBX_ERROR;
	}
	st.out.call = st.call;
	if (o.stream_stdin) {
		st.stdin_open = 1;
		if (sbx_loop_watch(loop, 0, SBX_EV_READ, on_stdin, &st) < 0) {
			st.stdin_file = 1;
			stdin_resume(loop, &st);
		}
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd >= 0)
		sbx_loop_watch(loop, sfd, SBX_EV_READ, on_signal, &st);
	sbx_loop_run_until(loop, &st.done);
	if (sfd >= 0) {
		sbx_loop_unwatch(loop, sfd);
		close(sfd);
	}
	if (st.stdin_open)
		sbx_loop_unwatch(loop, 0);
	cli_sink_drain(&st.out);
	if (st.error[0])
		cli_say(stderr, "sbx: %s\n", st.error);
	sbx_session_close(s);
	sbx_loop_free(loop);
	return st.exit_code;
}
