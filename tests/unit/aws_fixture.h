/* aws_fixture.h — the AWS stand-ins of the C tests and benches, started and
 * stopped one way: moto (tests/aws/moto_fixture.py: EC2, S3, SSM, STS, IAM
 * on loopback with signatures checked; its first line is the JSON of what it
 * made), the Session Manager emulator (tests/aws/ssm_emulator.py: "PORT N",
 * test hooks on its stdin), a TCP-listening sbx-agent for the emulator to
 * forward to, and the endpoint variables that point host/backends/aws at them.
 *
 * Each stand-in is a child that runs until its stdin closes. Header-only
 * (each test is built from one .c file), independent of test.h so that
 * bench/ can use it; every function is static and marked unused. */
#ifndef SBX_AWS_FIXTURE_H
#define SBX_AWS_FIXTURE_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyfile.h"

#define AWS_FIX_UNUSED __attribute__((unused))

/* ---------------------------------------------------------------- a child */

/* A child whose first stdout line is kept; it lives until in_fd closes. */
typedef struct aws_child {
	pid_t pid;
	int in_fd;
	char line[4096];
} aws_child;

/* The first line of fd (without its newline), waiting at most timeout_ms
 * for each byte. Its length. */
AWS_FIX_UNUSED static size_t aws_read_line(int fd, char *line, size_t size, int timeout_ms)
{
	size_t n = 0;
	while (n < size - 1) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, timeout_ms) <= 0 || read(fd, line + n, 1) <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	return n;
}

/* Starts argv (argv[0] found on PATH) with its stdin a pipe held here, its
 * stderr to log (NULL: this process's stderr) and reads its first line.
 * 0 when it printed one, else -1 (the child is left for aws_child_stop). */
AWS_FIX_UNUSED static int aws_child_start(aws_child *c, const char *const *argv, const char *log)
{
	int in[2], out[2];
	c->pid = -1;
	c->in_fd = -1;
	c->line[0] = 0;
	if (pipe(in) < 0 || pipe(out) < 0)
		return -1;
	c->pid = fork();
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		int fd = log ? open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
		if (fd >= 0)
			dup2(fd, 2);
		close(in[1]); /* else the child holds its own stdin open and never sees EOF */
		close(out[0]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in_fd = in[1];
	size_t n = aws_read_line(out[0], c->line, sizeof c->line, 120000);
	close(out[0]);
	return n ? 0 : -1;
}

/* One line to the child's stdin (the emulator's test hooks). 0 or -1. */
AWS_FIX_UNUSED static int aws_child_say(const aws_child *c, const char *cmd)
{
	char line[128];
	int n = snprintf(line, sizeof line, "%s\n", cmd);
	return write(c->in_fd, line, (size_t)n) == n ? 0 : -1;
}

/* Closes its stdin, waits up to 5 s for it to end, then kills it. */
AWS_FIX_UNUSED static void aws_child_stop(aws_child *c)
{
	if (c->in_fd >= 0)
		close(c->in_fd);
	c->in_fd = -1;
	if (c->pid <= 0)
		return;
	for (int i = 0; i < 100 && waitpid(c->pid, NULL, WNOHANG) == 0; i++)
		usleep(50000);
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	c->pid = -1;
}

/* ---------------------------------------------------------------- moto */

/* moto and what moto_fixture.py made in it. */
typedef struct aws_moto {
	aws_child child;
	char endpoint[128], region[32], akid[64], secret[128];
	char vpc[64], subnet[64], sg[64], ami[64], bucket[64], profile[64];
	char role_arn[128], ami_param[128], deployer_arn[128];
} aws_moto;

AWS_FIX_UNUSED static void aws_moto_field(json_t *o, const char *key, char *out, size_t size)
{
	const char *v = json_string_value(json_object_get(o, key));
	snprintf(out, size, "%s", v ? v : "");
}

/* Starts moto (stderr to log). 0, or -1 with why. */
AWS_FIX_UNUSED static int aws_moto_start(aws_moto *m, const char *log, char *why, size_t len)
{
	const char *argv[] = {"python3", "tests/aws/moto_fixture.py", NULL};
	memset(m, 0, sizeof *m);
	aws_child_start(&m->child, argv, log);
	json_t *o = json_loads(m->child.line, 0, NULL);
	if (!json_is_object(o)) {
		snprintf(why, len, "moto fixture did not start (python3 with moto needed; its log is %s): '%.200s'",
			 log ? log : "stderr", m->child.line);
		json_decref(o);
		return -1;
	}
#define AWS_FIX_GET(field, key) aws_moto_field(o, key, m->field, sizeof m->field)
	AWS_FIX_GET(endpoint, "endpoint");
	AWS_FIX_GET(region, "region");
	AWS_FIX_GET(akid, "access_key_id");
	AWS_FIX_GET(secret, "secret_access_key");
	AWS_FIX_GET(vpc, "vpc");
	AWS_FIX_GET(subnet, "subnet");
	AWS_FIX_GET(sg, "security_group");
	AWS_FIX_GET(ami, "ami");
	AWS_FIX_GET(bucket, "bucket");
	AWS_FIX_GET(profile, "instance_profile");
	AWS_FIX_GET(role_arn, "role_arn");
	AWS_FIX_GET(ami_param, "ami_parameter");
	AWS_FIX_GET(deployer_arn, "deployer_role_arn");
#undef AWS_FIX_GET
	json_decref(o);
	return 0;
}

AWS_FIX_UNUSED static void aws_moto_stop(aws_moto *m)
{
	aws_child_stop(&m->child);
}

/* ---------------------------------------------------------------- the SSM emulator */

typedef struct aws_emulator {
	aws_child child;
	int port;
	char endpoint[64]; /* http://127.0.0.1:PORT */
} aws_emulator;

/* Starts ssm_emulator.py with args (NULL-terminated, at most 24), stderr to
 * log (NULL: this process's). 0 or -1. */
AWS_FIX_UNUSED static int aws_emulator_start(aws_emulator *e, const char *const *args, const char *log)
{
	const char *argv[28] = {"python3", "tests/aws/ssm_emulator.py"};
	int n = 2;
	for (int i = 0; args && args[i] && n < 26; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	e->port = 0;
	e->endpoint[0] = 0;
	if (aws_child_start(&e->child, argv, log) < 0 || sscanf(e->child.line, "PORT %d", &e->port) != 1)
		return -1;
	snprintf(e->endpoint, sizeof e->endpoint, "http://127.0.0.1:%d", e->port);
	return 0;
}

/* The emulator booting each instance a session targets from its user data,
 * read back from moto (--boot; instance_boot.py), with extra args after. */
AWS_FIX_UNUSED static int aws_emulator_start_boot(aws_emulator *e, const aws_moto *m, const char *const *extra,
						  const char *log)
{
	const char *args[24] = {"--boot", m->endpoint, "--region", m->region, "--access-key", m->akid,
				"--secret", m->secret, "--ami", m->ami};
	int n = 10;
	for (int i = 0; extra && extra[i] && n < 23; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	return aws_emulator_start(e, args, log);
}

/* Points the SSM client at the emulator (AWS_ENDPOINT_URL_SSM). */
AWS_FIX_UNUSED static void aws_emulator_export(const aws_emulator *e)
{
	setenv("AWS_ENDPOINT_URL_SSM", e->endpoint, 1);
}

AWS_FIX_UNUSED static void aws_emulator_stop(aws_emulator *e)
{
	aws_child_stop(&e->child);
}

/* Unsets the endpoint variables a caller's environment may carry, so that
 * only what the test exports points anywhere. */
AWS_FIX_UNUSED static void aws_fixture_clear_env(void)
{
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_SSM");
}

/* ---------------------------------------------------------------- the instance's agent */

/* An sbx-agent listening on 127.0.0.1:port, as on an instance. */
typedef struct aws_agent {
	pid_t pid;
	int port;
} aws_agent;

AWS_FIX_UNUSED static int aws_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	bind(fd, (struct sockaddr *)&a, sizeof a);
	getsockname(fd, (struct sockaddr *)&a, &al);
	close(fd);
	return ntohs(a.sin_port);
}

AWS_FIX_UNUSED static int aws_port_accepts(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

/* Starts `agent --listen 127.0.0.1:PORT --secret-file key [--workdir dir]`
 * on a free port, the key file made first, and waits (10 s) until it
 * accepts. 0, or -1 (the reason printed as a "# " line). */
AWS_FIX_UNUSED static int aws_agent_start(aws_agent *a, const char *agent, const char *key, const char *workdir)
{
	char err[256], addr[64];
	sbx_auth_key k;
	a->pid = -1;
	a->port = aws_free_port();
	if (sbx_keyfile_create(key, &k, err, sizeof err) < 0) {
		printf("# %s\n", err);
		return -1;
	}
	snprintf(addr, sizeof addr, "127.0.0.1:%d", a->port);
	a->pid = fork();
	if (a->pid == 0) {
		if (workdir)
			execl(agent, agent, "--listen", addr, "--secret-file", key, "--workdir", workdir, (char *)NULL);
		else
			execl(agent, agent, "--listen", addr, "--secret-file", key, (char *)NULL); /* as on EC2 */
		_exit(127);
	}
	for (int i = 0; i < 400; i++) {
		if (aws_port_accepts(a->port))
			return 0;
		usleep(25000);
	}
	return -1;
}

AWS_FIX_UNUSED static void aws_agent_stop(aws_agent *a)
{
	if (a->pid <= 0)
		return;
	kill(a->pid, SIGTERM);
	waitpid(a->pid, NULL, 0);
	a->pid = -1;
}

#endif
