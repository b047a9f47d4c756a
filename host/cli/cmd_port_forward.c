/* cmd_port_forward.c — `sbx port-forward NAME[/SERVICE] MAPPING...`: local
 * TCP ports forwarded to ports on a sandbox's loopback, like `kubectl
 * port-forward`. Each accepted connection is one sbx_forward_open call
 * (one protocol stream with its own flow control) on the one session the
 * sandbox's backend gives; runs until INT/TERM/HUP, then closes all. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

#define MAX_MAPPINGS 32
#define HEALTH_MS 1000 /* how often a session that died for good is noticed while idle */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx port-forward [--address ADDR] NAME[/SERVICE] [LOCAL_ADDR:]LOCAL_PORT:REMOTE_PORT...\n"
		"\n"
		"Listens on local TCP ports and forwards each connection to REMOTE_PORT on the\n"
		"sandbox's own loopback (127.0.0.1 in its network namespace), over the agent's\n"
		"connection, like `kubectl port-forward`. Many connections at once, each with\n"
		"its own flow control. Runs until Ctrl-C (or TERM/HUP), then closes them all.\n"
		"\n"
		"Mappings:\n"
		"  8080:80             local 8080 -> remote 80\n"
		"  80                  local 80 -> remote 80\n"
		"  0:80 or :80         a free local port (printed) -> remote 80\n"
		"  0.0.0.0:8080:80     listen on another local address ([::1]:8080:80 for IPv6)\n"
		"\n"
		"  --address ADDR      local address of mappings that name none (default 127.0.0.1)\n"
		"\n"
		"Prints \"Forwarding from ADDR:PORT -> REMOTE_PORT\" per mapping once listening.\n"
		"A connection the sandbox refuses (nothing listens there) is closed and\n"
		"reported; the others go on. Exit: 0 after Ctrl-C, 2 for bad arguments, 125\n"
		"when sbx cannot listen or reach the sandbox (or loses it).\n");
}

typedef struct mapping {
	char addr[64];      /* local address, numeric */
	unsigned local, remote;
	int fd;             /* the listening socket */
	char shown[96];     /* "127.0.0.1:8080" */
	struct pf_state *st;
} mapping;

typedef struct pf_state {
	sbx_loop *loop;
	sbx_session *s;
	mapping maps[MAX_MAPPINGS];
	int n;
	int done;
	int code;
} pf_state;

/* "N" as a port: 0..65535 (0: any); -1 when not one. */
static long parse_port(const char *s, size_t n)
{
	if (n == 0 || n > 5)
		return -1;
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 65535 ? v : -1;
}

static int bad_mapping(const char *spec)
{
	cli_say(stderr,
		"sbx port-forward: '%s' is not a mapping: use [LOCAL_ADDR:]LOCAL_PORT:REMOTE_PORT with ports "
		"0..65535 (local 0: any free one; remote 1..65535; an IPv6 address in brackets)\n",
		spec);
	return -1;
}

/* [ADDR:]LOCAL:REMOTE, PORT or :REMOTE into m. 0, or -1 after saying why. */
static int parse_mapping(const char *spec, const char *dflt_addr, mapping *m)
{
	const char *ports = spec;
	snprintf(m->addr, sizeof m->addr, "%s", dflt_addr);
	if (spec[0] == '[') { /* [IPv6]:LOCAL:REMOTE */
		const char *close = strstr(spec, "]:");
		if (!close || close - spec - 1 >= (long)sizeof m->addr || close == spec + 1)
			return bad_mapping(spec);
		memcpy(m->addr, spec + 1, (size_t)(close - spec - 1));
		m->addr[close - spec - 1] = 0;
		ports = close + 2;
	} else {
		int colons = 0;
		for (const char *p = spec; *p; p++)
			colons += *p == ':';
		if (colons > 2)
			return bad_mapping(spec);
		if (colons == 2) { /* ADDR:LOCAL:REMOTE */
			const char *c = strchr(spec, ':');
			if (c == spec || c - spec >= (long)sizeof m->addr)
				return bad_mapping(spec);
			memcpy(m->addr, spec, (size_t)(c - spec));
			m->addr[c - spec] = 0;
			ports = c + 1;
		}
	}
	const char *c = strchr(ports, ':');
	long local, remote;
	if (!c) {
		local = remote = parse_port(ports, strlen(ports));
	} else {
		local = c == ports ? 0 : parse_port(ports, (size_t)(c - ports));
		remote = parse_port(c + 1, strlen(c + 1));
	}
	if (local < 0 || remote < 1)
		return bad_mapping(spec);
	m->local = (unsigned)local;
	m->remote = (unsigned)remote;
	if (!strcmp(m->addr, "localhost"))
		snprintf(m->addr, sizeof m->addr, "127.0.0.1");
	return 0;
}

/* Binds and listens; fills m->shown with the port the kernel chose. */
static int listen_on(mapping *m)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	if (inet_pton(AF_INET, m->addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)m->local);
		len = sizeof *in4;
	} else if (inet_pton(AF_INET6, m->addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)m->local);
		len = sizeof *in6;
	} else {
		cli_say(stderr, "sbx port-forward: '%s' is not a local IP address (use e.g. 127.0.0.1, 0.0.0.0, ::1)\n",
			m->addr);
		return -1;
	}
	m->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (m->fd >= 0)
		setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&ss, len) < 0 || listen(m->fd, 128) < 0 ||
	    getsockname(m->fd, (struct sockaddr *)&ss, &len) < 0) {
		cli_say(stderr, "sbx port-forward: unable to listen on %s:%u: %s\n", m->addr, m->local, strerror(errno));
		return -1;
	}
	m->local = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
	snprintf(m->shown, sizeof m->shown, strchr(m->addr, ':') ? "[%s]:%u" : "%s:%u", m->addr, m->local);
	return 0;
}

static void on_done(void *ud, const sbx_forward_result *r)
{
	mapping *m = ud;
	if (r->error.status == SBX_OK || m->st->done)
		return;
	cli_say(stderr, "sbx port-forward: an error occurred forwarding %s -> %u: %s\n", m->shown, m->remote,
		r->error.message);
}

static void on_accept(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)events;
	mapping *m = ud;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0)
		return;
	sbx_forward_opts o = {.port = m->remote, .fd = c, .on_done = on_done, .ud = m};
	sbx_error err;
	if (!sbx_forward_open(m->st->s, &o, &err))
		cli_say(stderr, "sbx port-forward: cannot forward %s -> %u: %s\n", m->shown, m->remote, err.message);
}

/* The session died for good (reconnects, where a backend has them, failed). */
static void check_health(sbx_loop *loop, void *ud)
{
	pf_state *st = ud;
	const sbx_error *e = sbx_session_failure(st->s);
	if (e) {
		cli_say(stderr, "sbx port-forward: lost the sandbox: %s\n", e->message);
		st->code = EXIT_SBX_ERROR;
		st->done = 1;
		return;
	}
	sbx_loop_timer(loop, HEALTH_MS, check_health, st);
}

static int run(pf_state *st, const char *target)
{
	cli_sandbox sb;
	const char *svc;
	st->s = cli_connect(st->loop, target, &sb, &svc);
	if (!st->s)
		return EXIT_SBX_ERROR;
	for (int i = 0; i < st->n; i++) {
		if (listen_on(&st->maps[i]) < 0)
			return EXIT_SBX_ERROR;
		sbx_loop_watch(st->loop, st->maps[i].fd, SBX_EV_READ, on_accept, &st->maps[i]);
	}
	for (int i = 0; i < st->n; i++)
		printf("Forwarding from %s -> %u\n", st->maps[i].shown, st->maps[i].remote);
	fflush(stdout);
	int sfd = cli_watch_stop_signals(st->loop, &st->done);
	sbx_loop_timer(st->loop, HEALTH_MS, check_health, st);
	sbx_loop_run_until(st->loop, &st->done);
	cli_unwatch_stop_signals(st->loop, sfd);
	return st->code;
}

int cmd_port_forward(int argc, char **argv)
{
	static pf_state st;
	memset(&st, 0, sizeof st);
	const char *target = NULL, *addr = "127.0.0.1";
	const char *specs[MAX_MAPPINGS];
	int nspecs = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--address") && i + 1 < argc) {
			addr = argv[++i];
		} else if (a[0] == '-' && a[1]) {
			cli_say(stderr, "sbx port-forward: unknown option '%s'\n\n", a);
			usage(stderr);
			return EXIT_USAGE;
		} else if (!target) {
			target = a;
		} else if (nspecs == MAX_MAPPINGS) {
			cli_say(stderr, "sbx port-forward: at most %d mappings\n", MAX_MAPPINGS);
			return EXIT_USAGE;
		} else {
			specs[nspecs++] = a;
		}
	}
	if (!target || !nspecs) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (int i = 0; i < nspecs; i++) {
		if (parse_mapping(specs[i], addr, &st.maps[i]) < 0)
			return EXIT_USAGE;
		st.maps[i].fd = -1;
		st.maps[i].st = &st;
	}
	st.n = nspecs;
	st.loop = sbx_loop_new();
	int rc = run(&st, target);
	for (int i = 0; i < st.n; i++) {
		if (st.maps[i].fd >= 0) {
			sbx_loop_unwatch(st.loop, st.maps[i].fd);
			close(st.maps[i].fd);
		}
	}
	st.done = 1; /* calls cancelled by the close say nothing */
	if (st.s)
		cli_disconnect(st.loop, st.s);
	sbx_loop_free(st.loop);
	return rc;
}
