/* exec.c — the exec job kind (kind.h): running commands: spawn, stdin,
 * output through the outlog, timeouts, output limits, exit, and surviving
 * a dropped connection (ATTACH).
 *
 * A command runs in its own session (so its process group can be killed as
 * a whole), with argv executed directly (no shell), stdin from the host or
 * /dev/null, and stdout/stderr on pipes — or, with `tty`, one pty (pty.c)
 * as its controlling terminal, whose output comes back as stdout. The EXIT
 * message goes out when the main process has exited and the output it
 * produced is drained — even if background children still hold the pipes. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "fsops.h"
#include "job.h"
#include "kind.h"
#include "outlog.h"
#include "proctree.h"
#include "pty.h"
#include "users.h"

extern char **environ;

#define DEFAULT_GRACE_MS 2000
#define MAX_TIMEOUT_MS (1000ull * 86400 * 365) /* a year: no overflow in deadlines */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---------------------------------------------------------------- requests */

typedef struct exec_req {
	char **argv;
	char **envp;
	char cwd[PATH_MAX];
	agent_user user;
	int has_user;
	int want_stdin;
	int tty;               /* a pty on fds 0-2 instead of pipes */
	unsigned rows, cols;   /* its window size (0: the default) */
} exec_req;

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static char *obj_strdup(const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_STR || memchr(o->via.str.ptr, 0, o->via.str.size))
		return NULL;
	return strndup(o->via.str.ptr, o->via.str.size);
}

static char **parse_argv(const msgpack_object *o)
{
	if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0)
		return NULL;
	char **v = calloc(o->via.array.size + 1, sizeof *v);
	if (!v)
		return NULL;
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		if (!(v[i] = obj_strdup(&o->via.array.ptr[i]))) {
			free_strv(v);
			return NULL;
		}
	}
	return v;
}

/* Does env entry e ("K=V") have key k (length klen)? */
static int env_key_is(const char *e, const char *k, size_t klen)
{
	return strncmp(e, k, klen) == 0 && e[klen] == '=';
}

static int env_set(char ***envp, size_t *n, const char *k, size_t klen, const char *v, size_t vlen)
{
	char *e = malloc(klen + vlen + 2);
	if (!e)
		return -1;
	memcpy(e, k, klen);
	e[klen] = '=';
	memcpy(e + klen + 1, v, vlen);
	e[klen + 1 + vlen] = 0;
	for (size_t i = 0; i < *n; i++) {
		if (env_key_is((*envp)[i], k, klen)) {
			free((*envp)[i]);
			(*envp)[i] = e;
			return 0;
		}
	}
	char **p = realloc(*envp, (*n + 2) * sizeof *p);
	if (!p) {
		free(e);
		return -1;
	}
	p[(*n)++] = e;
	p[*n] = NULL;
	*envp = p;
	return 0;
}

static int env_has(char **envp, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (env_key_is(envp[i], k, strlen(k)))
			return 1;
	return 0;
}

/* The agent's own environment, overlaid with the request's env map, plus
 * HOME/USER/LOGNAME of a switched user (unless the request set them). */
static char **build_env(const msgpack_object *overlay, const exec_req *r)
{
	size_t n = 0;
	char **envp = calloc(1, sizeof *envp);
	if (!envp)
		return NULL;
	for (char **e = environ; *e; e++) {
		const char *eq = strchr(*e, '=');
		if (eq && env_set(&envp, &n, *e, (size_t)(eq - *e), eq + 1, strlen(eq + 1)) < 0)
			goto fail;
	}
	if (overlay && overlay->type == MSGPACK_OBJECT_MAP) {
		for (uint32_t i = 0; i < overlay->via.map.size; i++) {
			const msgpack_object *k = &overlay->via.map.ptr[i].key;
			const msgpack_object *v = &overlay->via.map.ptr[i].val;
			if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR ||
			    k->via.str.size == 0 || memchr(k->via.str.ptr, '=', k->via.str.size) ||
			    memchr(k->via.str.ptr, 0, k->via.str.size) ||
			    memchr(v->via.str.ptr, 0, v->via.str.size))
				goto fail;
			if (env_set(&envp, &n, k->via.str.ptr, k->via.str.size, v->via.str.ptr,
				    v->via.str.size) < 0)
				goto fail;
		}
	}
	if (r->has_user) {
		const char *vals[3][2] = {{"HOME", r->user.home}, {"USER", r->user.name}, {"LOGNAME", r->user.name}};
		for (int i = 0; i < 3; i++) {
			int overlaid = overlay && sbx_map_get(overlay, vals[i][0]);
			if (!overlaid && env_set(&envp, &n, vals[i][0], strlen(vals[i][0]), vals[i][1],
						 strlen(vals[i][1])) < 0)
				goto fail;
		}
	}
	if (!env_has(envp, n, "PATH") && env_set(&envp, &n, "PATH", 4, DEFAULT_PATH, strlen(DEFAULT_PATH)) < 0)
		goto fail;
	return envp;
fail:
	free_strv(envp);
	return NULL;
}

/* Parses and checks an EXEC body; on failure replies with ERROR. */
static int parse_request(agent_conn *ac, const sbx_msg *m, exec_req *r)
{
	sbx_conn *c = ac->conn;
	memset(r, 0, sizeof *r);
	if (!(r->argv = parse_argv(sbx_map_get(m->body, "argv")))) {
		sbx_conn_send_error(c, m->stream, EINVAL, "invalid", "argv must be a non-empty array of strings");
		return -1;
	}
	char spec[256] = "";
	if (sbx_map_get(m->body, "user") && sbx_map_str(m->body, "user", spec, sizeof spec) < 0) {
		sbx_conn_send_error(c, m->stream, EINVAL, "invalid", "user must be a string shorter than 256 bytes");
		return -1;
	}
	if (!spec[0] && ac->ag->default_user)
		snprintf(spec, sizeof spec, "%s", ac->ag->default_user);
	if (spec[0]) {
		char err[256];
		if (agent_user_lookup(spec, ac->ag->passwd_path, ac->ag->group_path, &r->user, err,
				      sizeof err) < 0) {
			sbx_conn_send_error(c, m->stream, errno, "bad_user", "%s", err);
			return -1;
		}
		r->has_user = 1;
	}
	char cwd[PATH_MAX] = "";
	if (sbx_map_get(m->body, "cwd") && sbx_map_str(m->body, "cwd", cwd, sizeof cwd) < 0) {
		sbx_conn_send_error(c, m->stream, ENAMETOOLONG, "invalid", "cwd must be a string shorter than %d bytes",
				    PATH_MAX);
		return -1;
	}
	char key[64];
	if (sbx_map_get(m->body, "key") && sbx_map_str(m->body, "key", key, sizeof key) < 0) {
		sbx_conn_send_error(c, m->stream, EINVAL, "invalid", "key must be a string shorter than 64 bytes");
		return -1;
	}
	if (fsops_resolve(ac->ag->workdir, cwd[0] ? cwd : ".", r->cwd, sizeof r->cwd) < 0) {
		sbx_conn_send_error(c, m->stream, errno, "bad_cwd", "working directory '%s': %s", cwd, strerror(errno));
		return -1;
	}
	struct stat st;
	if (stat(r->cwd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		int e = errno ? errno : ENOTDIR;
		if (e == 0 || (stat(r->cwd, &st) == 0 && !S_ISDIR(st.st_mode)))
			e = ENOTDIR;
		sbx_conn_send_error(c, m->stream, e, "bad_cwd", "working directory '%s': %s", r->cwd, strerror(e));
		return -1;
	}
	if (!(r->envp = build_env(sbx_map_get(m->body, "env"), r))) {
		sbx_conn_send_error(c, m->stream, EINVAL, "invalid", "env must map names (without '=') to strings");
		return -1;
	}
	r->want_stdin = sbx_map_bool(m->body, "stdin", 0);
	r->tty = sbx_map_bool(m->body, "tty", 0);
	r->rows = (unsigned)sbx_map_uint(m->body, "rows", 0);
	r->cols = (unsigned)sbx_map_uint(m->body, "cols", 0);
	if (r->rows > 65535 || r->cols > 65535)
		r->rows = r->cols = 0;
	return 0;
}

/* ---------------------------------------------------------------- spawning */

enum { STAGE_CHDIR = 1, STAGE_USER, STAGE_EXEC, STAGE_SETUP };

/* execve with a PATH search, like execvp but without its fallback of
 * running a non-executable file through /bin/sh: argv runs as it is or
 * not at all. Returns only on failure, with errno (EACCES when some
 * candidate existed but could not be executed). */
static void exec_path(char **argv, char **envp)
{
	const char *prog = argv[0];
	if (strchr(prog, '/')) {
		execve(prog, argv, envp);
		return;
	}
	const char *path = DEFAULT_PATH;
	for (char **e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	int saw_eacces = 0;
	char buf[PATH_MAX];
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dl = (size_t)(end - p);
		if (dl + strlen(prog) + 2 <= sizeof buf) {
			memcpy(buf, p, dl);
			if (dl == 0)
				buf[dl++] = '.';
			buf[dl] = '/';
			strcpy(buf + dl + 1, prog);
			execve(buf, argv, envp);
			if (errno == EACCES || errno == ENOEXEC || errno == EPERM)
				saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR)
				return;
		}
		if (!*end)
			break;
		p = end;
	}
	errno = saw_eacces ? EACCES : ENOENT;
}

/* In the child: everything between fork and exec. Reports a failure as
 * (stage, errno) on errfd and exits. */
static void child_run(const exec_req *r, int in_fd, int out_fd, int err_fd, int errfd, const char *tty)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* every disposition back to default: an agent started with SIGINT
	 * ignored (as a background job) must not pass that on, or Ctrl-C on
	 * a terminal would not interrupt the command */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	int report[2] = {STAGE_SETUP, 0};
	if (setsid() < 0)
		goto fail;
	if (tty ? agent_pty_child(tty) < 0 : (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0))
		goto fail;
	report[0] = STAGE_CHDIR;
	if (chdir(r->cwd) < 0)
		goto fail;
	report[0] = STAGE_USER;
	if (r->has_user && agent_user_switch(&r->user) < 0)
		goto fail;
	report[0] = STAGE_EXEC;
	exec_path(r->argv, r->envp);
fail:
	report[1] = errno;
	if (write(errfd, report, sizeof report) < 0) {
	}
	_exit(127);
}

static void reply_spawn_error(agent_conn *ac, uint32_t stream, const exec_req *r, int stage, int err)
{
	sbx_conn *c = ac->conn;
	const char *prog = r->argv[0];
	switch (stage) {
	case STAGE_CHDIR:
		sbx_conn_send_error(c, stream, err, "bad_cwd", "working directory '%s': %s", r->cwd, strerror(err));
		return;
	case STAGE_USER:
		sbx_conn_send_error(c, stream, err, "bad_user", "cannot switch to user '%s': %s", r->user.name,
				    strerror(err));
		return;
	case STAGE_EXEC:
		if (err == ENOENT)
			sbx_conn_send_error(c, stream, err, "not_found", "executable not found: %s", prog);
		else if (err == EACCES || err == EPERM || err == ENOEXEC)
			sbx_conn_send_error(c, stream, err, "permission", "permission denied executing %s", prog);
		else
			sbx_conn_send_error(c, stream, err, agent_errcode(err), "cannot execute %s: %s", prog,
					    strerror(err));
		return;
	}
	sbx_conn_send_error(c, stream, err, "io", "cannot start %s: %s", prog, strerror(err));
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* The command's side of its stdio: pipes, or with tty one pty (the
 * master then stands for stdout, and for stdin when the host sends it). */
static int make_stdio(const exec_req *r, int in[2], int out[2], int err[2], char *slave, size_t len)
{
	if (r->tty) {
		if (agent_pty_open(r->rows, r->cols, &out[0], slave, len) < 0)
			return 0;
		if (r->has_user)
			agent_pty_chown(slave, (unsigned)r->user.uid);
		if (r->want_stdin)
			in[1] = fcntl(out[0], F_DUPFD_CLOEXEC, 0);
		return !r->want_stdin || in[1] >= 0;
	}
	int ok = pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0;
	if (ok && r->want_stdin)
		ok = pipe2(in, O_CLOEXEC) == 0;
	else if (ok)
		ok = (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;
	return ok;
}

/* Starts the command; returns the pid, or -1 after replying with ERROR. */
static pid_t spawn(agent_conn *ac, uint32_t stream, const exec_req *r, int fds[3])
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, rep[2] = {-1, -1};
	char slave[64] = "";
	int ok = pipe2(rep, O_CLOEXEC) == 0 && make_stdio(r, in, out, err, slave, sizeof slave);
	/* vfork: the child borrows our memory until it execs, so starting a
	 * command costs no page-table copy and no copy-on-write faults (fork
	 * was a third of an exec's round trip). child_run only makes system
	 * calls on its own stack frame, and we wait for its exec anyway.
	 * --block-metadata: a fork born in the commands' cgroup (nometa.h). */
	pid_t pid = -1;
	if (ok)
		pid = ac->ag->nometa ? nometa_fork(ac->ag->nometa) : vfork();
	if (pid == 0)
		child_run(r, in[0], out[1], err[1], rep[1], r->tty ? slave : NULL);
	int saved = errno;
	close(in[0]);
	close(out[1]);
	close(err[1]);
	close(rep[1]);
	int report[2] = {0, 0};
	if (pid > 0 && read(rep[0], report, sizeof report) == sizeof report) {
		waitpid(pid, NULL, 0);
		pid = -1;
	} else if (pid < 0) {
		report[0] = STAGE_SETUP;
		report[1] = saved;
	}
	close(rep[0]);
	if (pid < 0) {
		close(in[1]);
		close(out[0]);
		close(err[0]);
		reply_spawn_error(ac, stream, r, report[0], report[1]);
		return -1;
	}
	fds[0] = in[1];
	fds[1] = out[0];
	fds[2] = err[0];
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			set_nonblock(fds[i]);
	return pid;
}

static void forget_jobs(agent *ag, const msgpack_object *keys);

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static int count_detached(agent *ag)
{
	int n = 0;
	for (job *j = ag->jobs; j; j = j->next)
		n += j->id[0] != 0;
	return n;
}

/* EXEC detach: may this agent start one more? Else replies ERROR. */
static int detach_allowed(agent_conn *ac, uint32_t stream)
{
	if (ac->ag->stdio) {
		sbx_conn_send_error(ac->conn, stream, EINVAL, "invalid",
				    "detached commands need a listening agent (this one serves one host on stdio)");
		return 0;
	}
	if (count_detached(ac->ag) >= AGENT_DETACHED_MAX) {
		sbx_conn_send_error(ac->conn, stream, EAGAIN, "io",
				    "too many detached commands (%d kept); kill some or wait for their results to expire",
				    AGENT_DETACHED_MAX);
		return 0;
	}
	return 1;
}

static void join_argv(char *out, size_t len, char **argv)
{
	size_t o = 0;
	out[0] = 0;
	for (char **a = argv; *a && o + 1 < len; a++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", a == argv ? "" : " ", *a);
}

/* The command now belongs to no connection: its output goes to a ring
 * and the host gets its id at once (RESULT). */
static void make_detached(agent_conn *ac, uint32_t stream, job *j, char **argv)
{
	j->owner = NULL;
	j->key[0] = 0;
	j->limit = 0;
	j->orphan_ms = -1;
	detached_new_id(j->id);
	join_argv(j->cmdline, sizeof j->cmdline, argv);
	msgpack_packer *pk = sbx_conn_begin_map(ac->conn, SBX_MSG_RESULT, stream, 2);
	if (!pk)
		return;
	sbx_pack_kv_str(pk, "id", j->id);
	sbx_pack_kv_int(pk, "pid", j->pid);
	sbx_conn_finish(ac->conn);
}

static void exec_start(agent_conn *ac, const sbx_msg *m)
{
	agent *ag = ac->ag;
	forget_jobs(ag, sbx_map_get(m->body, "forget"));
	char key[64];
	if (sbx_map_str(m->body, "key", key, sizeof key) == 0)
		ledger_note(&ag->sent, key); /* arrived, whatever becomes of it */
	int detach = sbx_map_bool(m->body, "detach", 0);
	exec_req r;
	if (parse_request(ac, m, &r) < 0)
		goto out;
	if (detach && !detach_allowed(ac, m->stream))
		goto out;
	if (detach)
		r.want_stdin = 0; /* nobody stays to type into it */
	job *j = calloc(1, sizeof *j);
	if (!j) {
		sbx_conn_send_error(ac->conn, m->stream, ENOMEM, "io", "agent out of memory");
		goto out;
	}
	int fds[3];
	j->pid = spawn(ac, m->stream, &r, fds);
	if (j->pid < 0) {
		free(j);
		goto out;
	}
	j->in_fd = fds[0];
	j->out_fd = fds[1];
	j->err_fd = fds[2];
	j->tty = r.tty;
	j->owner = ac;
	j->stream = m->stream;
	sbx_map_str(m->body, "key", j->key, sizeof j->key);
	j->limit = sbx_map_uint(m->body, "limit", 0);
	j->grace_ms = sbx_map_uint(m->body, "grace_ms", DEFAULT_GRACE_MS);
	if (j->grace_ms > MAX_TIMEOUT_MS)
		j->grace_ms = MAX_TIMEOUT_MS;
	j->started_ms = ag->now;
	uint64_t timeout = sbx_map_uint(m->body, "timeout_ms", 0);
	if (timeout > MAX_TIMEOUT_MS)
		timeout = MAX_TIMEOUT_MS;
	if (timeout)
		j->deadline_ms = ag->now + timeout;
	j->orphan_ms = -1;
	if (sbx_map_get(m->body, "orphan_ms"))
		j->orphan_ms = (int64_t)min_u64(sbx_map_uint(m->body, "orphan_ms", 0), MAX_TIMEOUT_MS);
	if (detach)
		make_detached(ac, m->stream, j, r.argv);
	j->next = ag->jobs;
	ag->jobs = j;
out:
	free_strv(r.argv);
	free_strv(r.envp);
}

/* ---------------------------------------------------------------- finding */

static job *find_stream(agent_conn *ac, uint32_t stream)
{
	for (job *j = ac->ag->jobs; j; j = j->next)
		if (j->owner == ac && j->stream == stream && !j->done)
			return j;
	return NULL;
}

static job *find_key(agent *ag, const char *key)
{
	for (job *j = ag->jobs; j; j = j->next)
		if (j->key[0] && strcmp(j->key, key) == 0)
			return j;
	return NULL;
}

/* Jobs the host has seen finish need not be kept for re-attaching. */
static void forget_jobs(agent *ag, const msgpack_object *keys)
{
	if (!keys || keys->type != MSGPACK_OBJECT_ARRAY)
		return;
	for (uint32_t i = 0; i < keys->via.array.size; i++) {
		char key[64];
		if (sbx_obj_str(&keys->via.array.ptr[i], key, sizeof key) < 0)
			continue;
		job *j = find_key(ag, key);
		if (j && j->done)
			j->ended_ms = 1; /* expired: swept */
	}
}

/* ---------------------------------------------------------------- stdin */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void stdin_flush(job *j)
{
	while (j->in_fd >= 0 && sbx_buf_size(&j->stdin_buf) > 0) {
		ssize_t w = write(j->in_fd, sbx_buf_head(&j->stdin_buf), sbx_buf_size(&j->stdin_buf));
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0 && errno == EINTR)
			continue;
		size_t n = w > 0 ? (size_t)w : sbx_buf_size(&j->stdin_buf); /* EPIPE: discard */
		if (w < 0)
			close_fd(&j->in_fd);
		sbx_buf_consume(&j->stdin_buf, n);
		if (j->owner && !j->owner->dead)
			sbx_conn_consumed(j->owner->conn, j->stream, n);
	}
	if (j->in_fd < 0) {
		/* The command closed stdin: whatever still arrives is dropped. */
		if (j->owner && !j->owner->dead)
			sbx_conn_consumed(j->owner->conn, j->stream, sbx_buf_size(&j->stdin_buf));
		sbx_buf_clear(&j->stdin_buf);
	}
	if (j->stdin_ended && sbx_buf_size(&j->stdin_buf) == 0)
		close_fd(&j->in_fd);
}

static void on_stdin(agent_conn *ac, job *j, const sbx_msg *m)
{
	if (m->type == SBX_MSG_END) {
		j->stdin_ended = 1;
	} else if (j->in_fd < 0) {
		sbx_conn_consumed(ac->conn, m->stream, m->len);
		return;
	} else if (sbx_buf_append(&j->stdin_buf, m->data, m->len) < 0) {
		close_fd(&j->in_fd);
	}
	stdin_flush(j);
}

static void on_stdin_writable(agent *ag, void *obj, short revents)
{
	(void)ag;
	job *j = obj;
	if (revents & (POLLERR | POLLHUP))
		close_fd(&j->in_fd);
	stdin_flush(j);
}

/* ---------------------------------------------------------------- signals */

/* The command's process group, and whatever it started outside the group
 * (setsid, daemons) while their parents still run. */
static void kill_group(job *j, int sig)
{
	if (j->pid > 0 && !j->reaped)
		proctree_kill(j->pid, sig);
	else if (j->pid > 0)
		kill(-j->pid, sig);
}

static void on_signal(job *j, const sbx_msg *m)
{
	if (!j->reaped && m->value > 0 && m->value < 65)
		kill(-j->pid, (int)m->value); /* the caller's signal, to the group only (like a terminal's) */
}

static void cancel(agent_conn *ac, job *j)
{
	kill_group(j, SIGKILL);
	sbx_conn_send_error(ac->conn, j->stream, ECANCELED, "cancelled", "command cancelled by the host");
	j->done = 1;
	j->ended_ms = 1;
	j->owner = NULL;
}

/* A terminal's new size: the command gets SIGWINCH. */
static void on_resize(job *j, const sbx_msg *m)
{
	if (j->tty && j->out_fd >= 0)
		agent_pty_resize(j->out_fd, m->rows, m->cols);
}

/* stdin (DATA, END), SIGNAL, RESIZE or CANCEL for one of our commands. */
static int exec_stream(agent_conn *ac, const sbx_msg *m)
{
	job *j = find_stream(ac, m->stream);
	if (!j)
		return 0;
	if (m->type == SBX_MSG_CANCEL)
		cancel(ac, j);
	else if (m->type == SBX_MSG_SIGNAL)
		on_signal(j, m);
	else if (m->type == SBX_MSG_RESIZE)
		on_resize(j, m);
	else
		on_stdin(ac, j, m);
	return 1;
}

static void exec_reap(agent *ag)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (job *j = ag->jobs; j; j = j->next) {
			if (j->pid != pid)
				continue;
			j->reaped = 1;
			j->wait_status = status;
			j->ended_ms = ag->now;
			if (j->timed_out)
				kill_group(j, SIGKILL); /* stragglers of a timed-out command */
			break;
		}
	}
}

/* ---------------------------------------------------------------- output */

static int can_read_output(job *j)
{
	if (j->id[0])
		return 1; /* a ring: the oldest output makes room */
	if (j->owner)
		return agent_can_send(j->owner) && outlog_unsent(&j->log) < SBX_CHUNK_MAX;
	return outlog_mem(&j->log) < AGENT_DETACHED_CAP;
}

/* Reads one chunk from fd (1 or 2); returns bytes read, 0 at EOF or
 * EAGAIN (*eof tells which). Applies the output limit. */
static size_t read_output(job *j, int fd, int *eof)
{
	int *pfd = fd == 1 ? &j->out_fd : &j->err_fd;
	uint8_t buf[SBX_CHUNK_MAX];
	*eof = 0;
	ssize_t r = read(*pfd, buf, sizeof buf);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		*eof = 1;
		close_fd(pfd);
		return 0;
	}
	size_t n = (size_t)r;
	if (j->limit && j->log.fd_total[fd] + n > j->limit) {
		n = (size_t)(j->limit - j->log.fd_total[fd]);
		j->truncated[fd] = 1;
		kill_group(j, SIGKILL);
		close_fd(pfd);
		*eof = 1;
	}
	if (outlog_append(&j->log, fd, buf, n) < 0) {
		kill_group(j, SIGKILL);
		close_fd(pfd);
		*eof = 1;
	}
	if (j->id[0])
		outlog_trim(&j->log, AGENT_RING_CAP, j->dropped);
	return n;
}

static void on_output(agent *ag, void *obj, short revents, int fd)
{
	(void)ag;
	(void)revents;
	job *j = obj;
	int eof;
	read_output(j, fd, &eof);
}

static void on_stdout(agent *ag, void *obj, short revents) { on_output(ag, obj, revents, 1); }
static void on_stderr(agent *ag, void *obj, short revents) { on_output(ag, obj, revents, 2); }

/* After the main process exited: take what is in the pipes now, then stop
 * listening (background children may keep them open forever). */
static void drain_after_exit(job *j)
{
	for (int fd = 1; fd <= 2; fd++) {
		int *pfd = fd == 1 ? &j->out_fd : &j->err_fd;
		while (*pfd >= 0 && can_read_output(j)) {
			int eof;
			if (read_output(j, fd, &eof) == 0 && !eof)
				close_fd(pfd); /* EAGAIN: drained */
		}
	}
}

static void send_output(job *j)
{
	sbx_conn *c = j->owner->conn;
	int fd;
	const uint8_t *p;
	size_t n;
	while (agent_can_send(j->owner) && (n = outlog_next(&j->log, &fd, &p)) > 0) {
		long sent = sbx_conn_send_data(c, j->stream, fd, p, n);
		if (sent <= 0)
			break;
		outlog_sent(&j->log, (size_t)sent);
	}
}

static void send_exit(job *j)
{
	sbx_conn *c = j->owner->conn;
	sbx_conn_send_end(c, j->stream, 1);
	sbx_conn_send_end(c, j->stream, 2);
	msgpack_packer *pk = sbx_conn_begin_map(c, SBX_MSG_EXIT, j->stream, 6);
	if (!pk)
		return;
	job_pack_exit(pk, j);
	sbx_pack_kv_bool(pk, "stdout_truncated", j->truncated[1]);
	sbx_pack_kv_bool(pk, "stderr_truncated", j->truncated[2]);
	sbx_conn_finish(c);
	j->done = 1;
}

static void exec_credit(agent_conn *ac, uint32_t stream)
{
	job *j = find_stream(ac, stream);
	if (!j)
		return;
	/* credit = window + acked - sent, so acked = credit + sent - window */
	uint64_t credit = sbx_conn_credit(ac->conn, stream);
	uint64_t window = sbx_conn_peer(ac->conn)->window;
	if (credit + j->log.stream_sent >= window)
		outlog_ack(&j->log, credit + j->log.stream_sent - window);
}

/* ---------------------------------------------------------------- the loop */

/* Nobody will ask for this command again: kill it and let it be swept
 * once reaped (its output is dropped, its key forgotten). */
static void abandon(job *j)
{
	kill_group(j, SIGKILL);
	close_fd(&j->in_fd);
	close_fd(&j->out_fd);
	close_fd(&j->err_fd);
	j->key[0] = 0;
	j->orphan_at = 0;
}

/* A detached command whose orphan time ran out. */
static void check_orphan(agent *ag, job *j)
{
	if (j->owner || !j->orphan_at || j->reaped)
		return;
	if (ag->now >= j->orphan_at)
		abandon(j);
	else
		agent_wake_at(ag, j->orphan_at);
}

static void check_timeout(agent *ag, job *j)
{
	if (j->reaped)
		return;
	if (j->deadline_ms && !j->timed_out && ag->now >= j->deadline_ms) {
		j->timed_out = 1;
		kill_group(j, SIGTERM);
		j->kill_at_ms = ag->now + j->grace_ms;
	}
	if (j->kill_at_ms && ag->now >= j->kill_at_ms) {
		kill_group(j, SIGKILL);
		j->kill_at_ms = 0;
	}
	agent_wake_at(ag, j->timed_out ? j->kill_at_ms : j->deadline_ms);
}

static void exec_poll(agent *ag)
{
	for (job *j = ag->jobs; j; j = j->next) {
		if (j->done) {
			if (!j->owner && j->ended_ms > 1)
				agent_wake_at(ag, j->ended_ms + ag->keep_ms);
			continue;
		}
		check_timeout(ag, j);
		check_orphan(ag, j);
		int readable = can_read_output(j);
		if (j->out_fd >= 0 && readable)
			agent_watch(ag, j->out_fd, POLLIN, on_stdout, j);
		if (j->err_fd >= 0 && readable)
			agent_watch(ag, j->err_fd, POLLIN, on_stderr, j);
		if (j->in_fd >= 0 && sbx_buf_size(&j->stdin_buf) > 0)
			agent_watch(ag, j->in_fd, POLLOUT, on_stdin_writable, j);
		/* Output left in the pipes after the exit is drained by exec_pump;
		 * come back soon only if that was held up by a full queue. */
		if (j->reaped && (j->out_fd >= 0 || j->err_fd >= 0) && readable)
			agent_wake_at(ag, ag->now + 1);
		if (!j->owner && j->reaped && j->ended_ms > 1)
			agent_wake_at(ag, j->ended_ms + ag->keep_ms);
	}
}

static void exec_pump(agent *ag)
{
	for (job *j = ag->jobs; j; j = j->next) {
		if (j->done)
			continue;
		if (j->reaped) {
			close_fd(&j->in_fd);
			drain_after_exit(j);
		}
		if (!j->owner || j->owner->dead)
			continue;
		send_output(j);
		if (j->reaped && j->out_fd < 0 && j->err_fd < 0 && outlog_unsent(&j->log) == 0 &&
		    agent_can_send(j->owner))
			send_exit(j);
	}
}

static void job_free(job *j)
{
	close_fd(&j->in_fd);
	close_fd(&j->out_fd);
	close_fd(&j->err_fd);
	sbx_buf_free(&j->stdin_buf);
	outlog_free(&j->log);
	free(j);
}

/* A job goes when it is finished and nobody can ask for it again: at once
 * when the host cannot re-attach (stdio mode, no key), else when the host
 * says it has the result, or keep_ms after it ended while detached. */
static void exec_sweep(agent *ag)
{
	job **link = &ag->jobs;
	while (*link) {
		job *j = *link;
		int attachable = !ag->stdio && (j->key[0] || j->id[0]);
		int expired = j->ended_ms == 1 || (j->ended_ms && !j->owner && ag->now >= j->ended_ms + ag->keep_ms);
		/* finished with nobody attached: its EXIT waits for a host */
		int orphan = !j->owner && j->reaped && j->out_fd < 0 && j->err_fd < 0;
		if ((j->done || orphan) && (!attachable || expired) && !j->readers) {
			*link = j->next;
			job_free(j);
		} else {
			link = &j->next;
		}
	}
}

/* The caller's connection went. In stdio mode nobody can come back; in
 * listen mode a command stays for an ATTACH for as long as its EXEC's
 * orphan_ms says (absent: until it ends), then it is abandoned. */
static void exec_detach(agent_conn *ac)
{
	agent *ag = ac->ag;
	for (job *j = ag->jobs; j; j = j->next) {
		if (j->owner != ac)
			continue;
		j->owner = NULL;
		if (ag->stdio || (!j->reaped && j->orphan_ms == 0))
			abandon(j);
		else if (!j->reaped && j->orphan_ms > 0)
			j->orphan_at = ag->now + (uint64_t)j->orphan_ms;
	}
}


static void exec_kill_all(agent *ag)
{
	for (job *j = ag->jobs; j; j = j->next)
		if (!j->reaped)
			kill_group(j, SIGKILL);
}

static void exec_attach(agent_conn *ac, const sbx_msg *m)
{
	char key[64] = "";
	job *j = NULL;
	if (sbx_map_str(m->body, "key", key, sizeof key) == 0)
		j = find_key(ac->ag, key);
	if (!j && ledger_never_sent(&ac->ag->sent, key)) {
		sbx_conn_send_error(ac->conn, m->stream, ENOENT, "not_received",
				    "command '%s' never reached this agent (it is safe to send again)", key);
		return;
	}
	if (!j || (j->done && j->ended_ms == 1)) {
		sbx_conn_send_error(ac->conn, m->stream, ENOENT, "not_found",
				    "no command with key '%s' on this agent (never started, or its result expired)",
				    key);
		return;
	}
	if (j->owner && !j->owner->dead && !j->done)
		sbx_conn_send_error(j->owner->conn, j->stream, EBUSY, "taken_over",
				    "command '%s' was re-attached by another stream", key);
	uint64_t have[3] = {0, sbx_map_uint(m->body, "have_stdout", 0), sbx_map_uint(m->body, "have_stderr", 0)};
	outlog_restart(&j->log, have);
	j->orphan_at = 0;
	j->owner = ac;
	j->stream = m->stream;
	j->done = 0;
}

static int exec_request(agent_conn *ac, const sbx_msg *m)
{
	if (m->type == SBX_MSG_EXEC)
		exec_start(ac, m);
	else if (m->type == SBX_MSG_ATTACH)
		exec_attach(ac, m);
	else
		return 0;
	return 1;
}

const agent_kind agent_exec_kind = {
	.name = "exec",
	.caps = SBX_CAP_ORPHAN | SBX_CAP_PTY,
	.listen_caps = SBX_CAP_ATTACH,
	.request = exec_request,
	.stream = exec_stream,
	.credit = exec_credit,
	.detach = exec_detach,
	.poll = exec_poll,
	.pump = exec_pump,
	.sweep = exec_sweep,
	.reap = exec_reap,
	.stop = exec_kill_all,
};
