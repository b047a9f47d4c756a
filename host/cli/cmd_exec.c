/* cmd_exec.c — `sbx exec`: run a command in a sandbox, streaming its
 * stdin, stdout and stderr, and exit with its exit code; behave as a
 * pipeline member (EPIPE ends it with 141, signals are forwarded once),
 * and with -t run it on a remote terminal (term.c keeps ours raw). */
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
		"Runs COMMAND directly (no shell) in the sandbox; stdin (with -i, or when it\n"
		"is not a terminal) is streamed to it; its output is streamed back. The exit\n"
		"code is the command's; 124 after a timeout, 126 when it cannot be executed,\n"
		"127 when it is not found, 125 when sbx itself failed.\n"
		"\n"
		"  -i, --interactive   keep stdin open and stream it (also from a terminal)\n"
		"  -t, --tty           run the command on a terminal (a pty in the sandbox, of\n"
		"                      this terminal's size, resized with it). With -i on a\n"
		"                      terminal, keys go to it raw: Ctrl-C and Ctrl-Z act on\n"
		"                      the remote command. Use -it as with docker exec\n"
		"  -d, --detach        start it detached and print its id at once: it runs on\n"
		"                      after sbx exits (until it ends, `sbx kill`, or\n"
		"                      `sbx down`), with no stdin; its last 1 MiB of output\n"
		"                      is kept for `sbx logs NAME ID`; `sbx ps NAME` lists it\n"
		"  -u, --user USER     run as USER (name, uid, name:group or uid:gid)\n"
		"  -w, --cwd DIR       working directory (relative: to the sandbox workdir)\n"
		"  -e, --env K=V       set an environment variable (repeatable); -e K passes\n"
		"                      this shell's value of K (skipped when unset)\n"
		"  --env-file FILE     K=V or K per line ('#' comments), as docker reads one\n"
		"  --timeout SECS      kill the command (whole process group) after SECS\n"
		"                      (a positive number, at most a year; long form only:\n"
		"                      -t means --tty, as in docker)\n"
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
	int tty;         /* a remote pty: SIGWINCH resizes it */
	cli_sink out;    /* stdout and stderr, at the reader's pace */
	char error[600]; /* said after the command's own output */
} exec_state;

static void resize(exec_state *st);

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
	cli_sink_output(&st->out, fd, p, n);
}

/* Our stdout or stderr was closed (EPIPE): like a pipeline member, stop. */
static void on_broken_pipe(void *ud)
{
	exec_state *st = ud;
	st->broken_pipe = 1;
	cancel_and_quit(st, EXIT_BROKEN_PIPE);
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
	st->out.call = NULL;
	st->exit_code = exit_code_for(r);
	cli_term_restore(); /* before any message: raw mode garbles it */
	if (st->quit_code) {
		st->exit_code = st->quit_code;
		return;
	}
	if (st->json) {
		print_json(r);
		if (fflush(stdout) != 0 && errno == EPIPE)
			st->exit_code = EXIT_BROKEN_PIPE;
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
	if (st->call && st->tty) /* a terminal has no end of input but its EOF key */
		sbx_call_write_stdin(st->call, "\x04", 1);
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
		if (sig == SIGWINCH) {
			resize(st);
			continue;
		}
		/* the first is forwarded; one that cannot be (the command has not
		 * started yet) ends sbx at once, as it would without sbx */
		if (++st->nsignals == 1 && st->call && sbx_call_signal(st->call, sig) == 0)
			continue;
		if (!st->quit_code) {
			cli_term_restore();
			cli_say(stderr, "sbx: %s%s: cancelling the command\n", strsignal(sig),
				st->nsignals > 1 ? " again" : " before the command started");
		}
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

typedef struct exec_args {
	sbx_exec_opts o;
	cli_env env;
	int json, interactive, tty, detach;
	long long limit; /* -1: not given */
	const char *target;
	int argi;        /* where the command starts in argv */
} exec_args;

/* "-i", "-t", "-d", "-it", "-dt"...: docker's flags; 1 when a is one of them. */
static int short_flags(const char *a, exec_args *x)
{
	if (a[0] != '-' || !a[1] || strspn(a + 1, "itd") != strlen(a + 1))
		return 0;
	x->interactive |= strchr(a, 'i') != NULL;
	x->tty |= strchr(a, 't') != NULL;
	x->detach |= strchr(a, 'd') != NULL;
	return 1;
}

static int looks_like_seconds(const char *v)
{
	double d;
	return v && cli_parse_seconds(v, &d) == 0;
}

/* Parses the options; 0, or an exit code (usage, or help printed). */
static int parse_args(int argc, char **argv, exec_args *x)
{
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (short_flags(a, x)) {
			if (!strcmp(a, "-t") && looks_like_seconds(v)) {
				cli_say(stderr, "sbx exec: -t allocates a terminal (as in docker); for a timeout write --timeout %s\n", v);
				return EXIT_USAGE;
			}
		} else if (!strcmp(a, "--interactive")) {
			x->interactive = 1;
		} else if (!strcmp(a, "--tty")) {
			x->tty = 1;
		} else if (!strcmp(a, "--detach")) {
			x->detach = 1;
		} else if ((!strcmp(a, "-u") || !strcmp(a, "--user")) && v) {
			x->o.user = argv[++i];
		} else if ((!strcmp(a, "-w") || !strcmp(a, "--cwd")) && v) {
			x->o.cwd = argv[++i];
		} else if ((!strcmp(a, "-e") || !strcmp(a, "--env")) && v) {
			if (cli_env_add(&x->env, argv[++i], "sbx exec -e") < 0)
				return EXIT_USAGE;
		} else if (!strcmp(a, "--env-file") && v) {
			if (cli_env_file(&x->env, argv[++i]) < 0)
				return EXIT_USAGE;
		} else if (!strcmp(a, "--timeout") && v) {
			if (cli_parse_seconds(argv[++i], &x->o.timeout_s) < 0) {
				cli_say(stderr, "sbx exec: --timeout wants a number of seconds above 0 and at most %.0f "
						"(a year), not '%s'\n", CLI_MAX_SECONDS, v);
				return EXIT_USAGE;
			}
		} else if (!strcmp(a, "--limit") && v) {
			if ((x->limit = cli_parse_size(argv[++i])) < 0) {
				cli_say(stderr, "sbx exec: --limit wants a size like 65536, 64k, 10M or 1G (0: none), not '%s'\n", v);
				return EXIT_USAGE;
			}
		} else if (!strcmp(a, "--json")) {
			x->json = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return -1;
		} else if (a[0] != '-' && !x->target) {
			x->target = a;
		} else if (a[0] != '-' && x->target) {
			break; /* the command starts here (no "--") */
		} else {
			cli_say(stderr, "sbx exec: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!x->target || i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (x->tty && x->json) {
		cli_say(stderr, "sbx exec: --json collects output; it does not go with -t\n");
		return EXIT_USAGE;
	}
	if (x->detach && (x->json || x->interactive || x->limit >= 0)) {
		cli_say(stderr, "sbx exec: -d starts the command and returns; it takes no stdin (-i), --json or\n"
				"          --limit (its output is kept in a 1 MiB ring: read it with sbx logs)\n");
		return EXIT_USAGE;
	}
	x->argi = i;
	return 0;
}

/* The window changed: tell the remote terminal. */
static void resize(exec_state *st)
{
	unsigned rows, cols;
	if (st->call && (cli_term_size(0, &rows, &cols) == 0 || cli_term_size(1, &rows, &cols) == 0))
		sbx_call_resize(st->call, rows, cols);
}

/* -t: a remote pty of this terminal's size; with -i and a terminal on
 * stdin, raw mode here so every key reaches it. */
static void setup_tty(exec_args *x)
{
	if (cli_term_size(0, &x->o.rows, &x->o.cols) < 0)
		cli_term_size(1, &x->o.rows, &x->o.cols);
	if (x->interactive && isatty(0))
		cli_term_raw(0);
}

/* INT/TERM/HUP (and WINCH with a tty) arrive through a signalfd. */
static int watch_signals(sbx_loop *loop, exec_state *st, int tty)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (tty)
		sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd >= 0)
		sbx_loop_watch(loop, sfd, SBX_EV_READ, on_signal, st);
	return sfd;
}

static void watch_stdin(sbx_loop *loop, exec_state *st)
{
	st->stdin_open = 1;
	if (sbx_loop_watch(loop, 0, SBX_EV_READ, on_stdin, st) < 0) {
		st->stdin_file = 1;
		stdin_resume(loop, st);
	}
}

/* Runs the parsed command to its end; the exit code. */
static int run(exec_args *x, char **argv)
{
	sbx_exec_opts *o = &x->o;
	o->argv = (const char *const *)argv + x->argi;
	o->env = x->env.n ? (const char *const *)x->env.items : NULL;
	o->output_limit = output_limit(x->limit, x->json);
	o->stream_stdin = x->interactive || !isatty(0);
	o->tty = x->tty;

	sbx_loop *loop = sbx_loop_new();
	cli_sandbox sb;
	const char *svc;
	sbx_session *s = cli_connect(loop, x->target, &sb, &svc);
	if (!s) {
		sbx_loop_free(loop);
		return EXIT_SBX_ERROR;
	}
	exec_state st = {.json = x->json, .loop = loop, .tty = x->tty};
	cli_sink_init(&st.out, loop);
	st.out.on_broken = on_broken_pipe;
	st.out.ud = &st;
	o->on_done = on_done;
	o->ud = &st;
	if (!x->json) {
		o->on_output = on_output;
		o->no_accumulate = 1;
		o->manual_credit = 1;
	}
	if (x->tty)
		setup_tty(x);
	sbx_error err;
	st.call = sbx_exec(s, o, &err);
	if (!st.call) {
		cli_term_restore();
		cli_say(stderr, "sbx: %s\n", err.message);
		cli_disconnect(loop, s);
		sbx_loop_free(loop);
		return EXIT_SBX_ERROR;
	}
	st.out.call = st.call;
	if (o->stream_stdin)
		watch_stdin(loop, &st);
	int sfd = watch_signals(loop, &st, x->tty);
	sbx_loop_run_until(loop, &st.done);
	cli_term_restore();
	if (sfd >= 0) {
		sbx_loop_unwatch(loop, sfd);
		close(sfd);
	}
	if (st.stdin_open)
		sbx_loop_unwatch(loop, 0);
	cli_sink_drain(&st.out);
	if (st.error[0])
		cli_say(stderr, "sbx: %s\n", st.error);
	cli_disconnect(loop, s);
	sbx_loop_free(loop);
	return st.quit_code ? st.quit_code : st.exit_code;
}

/* The exit code for a command that could not start (as run() gives). */
static int start_failure(const sbx_error *e)
{
	if (e->status == SBX_E_REMOTE && !strcmp(e->code, "not_found"))
		return EXIT_NOT_FOUND;
	if (e->status == SBX_E_REMOTE && !strcmp(e->code, "permission"))
		return EXIT_NOT_EXEC;
	return EXIT_SBX_ERROR;
}

/* -d: starts the command detached and prints its id. */
static int run_detached(exec_args *x, char **argv)
{
	sbx_exec_opts *o = &x->o;
	o->argv = (const char *const *)argv + x->argi;
	o->env = x->env.n ? (const char *const *)x->env.items : NULL;
	o->tty = x->tty;
	sbx_loop *loop = sbx_loop_new();
	cli_sandbox sb;
	const char *svc;
	sbx_session *s = cli_connect(loop, x->target, &sb, &svc);
	if (!s) {
		sbx_loop_free(loop);
		return EXIT_SBX_ERROR;
	}
	char id[16];
	sbx_error err;
	int rc = 0;
	if (sbx_exec_detached_sync(s, o, id, &err) == 0) {
		char shown[64];
		cli_termtext(shown, sizeof shown, id, strlen(id), 0);
		printf("%s\n", shown);
	} else {
		cli_say(stderr, "sbx: %s\n", err.message);
		rc = start_failure(&err);
	}
	cli_disconnect(loop, s);
	sbx_loop_free(loop);
	return rc;
}

int cmd_exec(int argc, char **argv)
{
	static exec_args x; /* static: its env list is large */
	memset(&x, 0, sizeof x);
	x.limit = -1;
	int rc = parse_args(argc, argv, &x);
	if (rc == 0)
		rc = x.detach ? run_detached(&x, argv) : run(&x, argv);
	cli_env_free(&x.env);
	return rc < 0 ? 0 : rc;
}
