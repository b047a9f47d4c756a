/* cmd_exec.c — `sbx exec`: run a command in a sandbox, streaming its
 * stdin, stdout and stderr, and exit with its exit code. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"

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
		"  -e, --env K=V       set an environment variable (repeatable); -e K passes\n"
		"                      this shell's value of K (skipped when unset)\n"
		"  --env-file FILE     K=V or K per line ('#' comments), as docker reads one\n"
		"  -t, --timeout SECS  kill the command (whole process group) after SECS\n"
		"                      (a positive number, at most a year)\n"
		"  --limit SIZE        output limit per stream (e.g. 64k, 10M, 1G; 0: none).\n"
		"                      Default: none while output streams here, 10M with --json\n"
		"  --json              print {exit_code, stdout, stderr, timed_out, error} as JSON\n"
		"\n"
		"A closed stdout or stderr (e.g. `| head`) cancels the command and sbx exits\n"
		"141, like a pipeline member killed by SIGPIPE. SIGINT, SIGTERM and SIGHUP\n"
		"are forwarded to the command once; a second one cancels it and sbx exits\n"
		"128 + the signal. A command whose sbx was killed is killed too.\n");
}

#define EXIT_BROKEN_PIPE 141 /* 128 + SIGPIPE, as a shell reports a pipeline member */
#define CANCEL_WAIT_MS 2000  /* after cancelling: how long to wait for the agent's answer */

typedef struct exec_state {
	sbx_loop *loop;
	int done;
	int json;
	int exit_code;
	sbx_call *call;
	int stdin_open;
	int stdin_file;  /* stdin is a regular file: read by timer, not epoll */
	int broken_pipe; /* stdout or stderr closed: the call was cancelled */
	int nsignals;    /* INT/TERM/HUP received */
	int quit_code;   /* set: exit with it once the cancelled call ends */
} exec_state;

/* -1 when fd is closed for good (EPIPE, or any other write error). */
static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void give_up(sbx_loop *loop, void *ud)
{
	(void)loop;
	exec_state *st = ud;
	st->done = 1;
}

/* Cancels the remote command and exits with code once the agent answered
 * (or CANCEL_WAIT_MS later). */
static void cancel_and_quit(exec_state *st, int code)
{
	if (st->quit_code)
		return;
	st->quit_code = code;
	if (st->call)
		sbx_call_cancel(st->call);
	sbx_loop_timer(st->loop, CANCEL_WAIT_MS, give_up, st);
}

static void on_output(void *ud, int fd, const uint8_t *p, size_t n)
{
	exec_state *st = ud;
	if (st->broken_pipe)
		return;
	if (write_all(fd == 1 ? 1 : 2, p, n) < 0) {
		st->broken_pipe = 1;
		cancel_and_quit(st, EXIT_BROKEN_PIPE);
	}
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
	printf("{\"exit_code\": %d, \"timed_out\": %s, \"truncated\": %s, \"stdout\": ", exit_code_for(r),
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
	st->exit_code = exit_code_for(r);
	if (st->quit_code) {
		st->exit_code = st->quit_code;
		return;
	}
	if (st->json) {
		print_json(r);
		return;
	}
	if (r->error.status != SBX_OK)
		fprintf(stderr, "sbx: %s\n", r->error.message);
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

/* Ctrl-C and kill forward to the command's process group, once: a second
 * one (a command that ignores the first) cancels it and ends sbx. */
static void on_signal(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)events;
	exec_state *st = ud;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == sizeof si) {
		int sig = (int)si.ssi_signo;
		if (++st->nsignals == 1) {
			if (st->call)
				sbx_call_signal(st->call, sig);
			continue;
		}
		if (!st->quit_code)
			fprintf(stderr, "sbx: %s again: cancelling the command\n", strsignal(sig));
		cancel_and_quit(st, 128 + sig);
	}
}

/* --limit: given or not, streaming or buffered (see usage). */
static size_t output_limit(long long limit, int json)
{
	if (limit < 0)
		return json ? SBX_DEFAULT_OUTPUT_LIMIT : SBX_OUTPUT_UNLIMITED;
	return limit == 0 ? SBX_OUTPUT_UNLIMITED : (size_t)limit;
}

int cmd_exec(int argc, char **argv)
{
	sbx_exec_opts o = {0};
	static cli_env env;
	int json = 0, i;
	long long limit = -1;
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
		} else if ((!strcmp(a, "-e") || !strcmp(a, "--env")) && v) {
			if (cli_env_add(&env, v, "sbx exec -e") < 0)
				return EXIT_USAGE;
			i++;
		} else if (!strcmp(a, "--env-file") && v) {
			if (cli_env_file(&env, v) < 0)
				return EXIT_USAGE;
			i++;
		} else if ((!strcmp(a, "-t") || !strcmp(a, "--timeout")) && v) {
			if (cli_parse_seconds(v, &o.timeout_s) < 0) {
				fprintf(stderr, "sbx exec: --timeout wants a number of seconds above 0 and at most %.0f "
						"(a year), not '%s'\n", CLI_MAX_SECONDS, v);
				return EXIT_USAGE;
			}
			i++;
		} else if (!strcmp(a, "--limit") && v) {
			if ((limit = cli_parse_size(v)) < 0) {
				fprintf(stderr, "sbx exec: --limit wants a size like 65536, 64k, 10M or 1G (0: none), not '%s'\n", v);
				return EXIT_USAGE;
			}
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
			fprintf(stderr, "sbx exec: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!target || i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	o.argv = (const char *const *)argv + i;
	o.env = env.n ? (const char *const *)env.items : NULL;
	o.output_limit = output_limit(limit, json);

	sbx_loop *loop = sbx_loop_new();
	cli_sandbox sb;
	const char *svc;
	sbx_session *s = cli_connect(loop, target, &sb, &svc);
	if (!s) {
		sbx_loop_free(loop);
		return EXIT_SBX_ERROR;
	}
	exec_state st = {.json = json, .loop = loop};
	o.on_done = on_done;
	o.ud = &st;
	if (!json) {
		o.on_output = on_output;
		o.no_accumulate = 1;
	}
	o.stream_stdin = !isatty(0);
	sbx_error err;
	st.call = sbx_exec(s, &o, &err);
	cli_env_free(&env);
	if (!st.call) {
		fprintf(stderr, "sbx: %s\n", err.message);
		sbx_session_close(s);
		sbx_loop_free(loop);
		return EXIT_SBX_ERROR;
	}
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
	sbx_session_close(s);
	sbx_loop_free(loop);
	return st.quit_code ? st.quit_code : st.exit_code;
}
