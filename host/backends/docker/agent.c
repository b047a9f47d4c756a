/* agent.c — the agent of a service's container (agent.h): its secret
 * handed in as a file deleted once it answers, its detached exec, the
 * wait for its answer, the address of its socket. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "backends/docker/agent.h"
#include "sbx.h"

/* Copies the secret into run_dir/agent.key (0600, made by us). */
static int place_secret(const sbx_docker_start_opts *o, char *copy, size_t copy_len, char *err, size_t len)
{
	char buf[512];
	snprintf(copy, copy_len, "%s/agent.key", o->run_dir);
	int in = open(o->secret_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = in >= 0 ? read(in, buf, sizeof buf) : -1;
	if (in >= 0)
		close(in);
	int out = n > 0 ? open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
	int ok = out >= 0 && write(out, buf, (size_t)n) == n;
	if (out >= 0)
		ok = close(out) == 0 && ok;
	memset(buf, 0, sizeof buf);
	if (!ok)
		snprintf(err, len, "cannot hand the agent its secret through %s: %s", copy, strerror(errno));
	return ok ? 0 : -1;
}

/* Starts the agent with a detached exec; exec_id receives the exec's id. */
static int start_agent(sbx_docker *d, const char *id, const sbx_docker_service *s, char *exec_id, size_t exec_len,
		       char *err, size_t len)
{
	char *argv[10] = {SBX_DOCKER_AGENT_PATH, "--listen", SBX_DOCKER_RUN_PATH "/" SBX_DOCKER_SOCKET_NAME,
			  "--secret-file", SBX_DOCKER_RUN_PATH "/agent.key"};
	int argc = 5;
	char owner[32];
	if (s->box.user[0]) { /* commands run as the service's user; the agent itself is root */
		argv[argc++] = "--user";
		argv[argc++] = (char *)s->box.user;
	}
	/* The agent is root in the container and so, on a plain engine, on the
	 * host: a caller who is not root gets the socket given to it. */
	if (geteuid() != 0 && !sbx_docker_remaps_users(d)) {
		snprintf(owner, sizeof owner, "%u:%u", (unsigned)geteuid(), (unsigned)getegid());
		argv[argc++] = "--socket-owner";
		argv[argc++] = owner;
	}
	json_t *b = json_object(), *out = NULL;
	json_object_set_new(b, "Cmd", sbx_docker_strings(argv));
	json_object_set_new(b, "User", json_string("0:0"));
	json_object_set_new(b, "AttachStdin", json_false());
	json_object_set_new(b, "AttachStdout", json_false());
	json_object_set_new(b, "AttachStderr", json_false());
	char path[300];
	snprintf(path, sizeof path, "/containers/%s/exec", id);
	long st = sbx_docker_call(d, "POST", path, b, &out, 0, err, len);
	json_decref(b);
	const char *eid = json_string_value(json_object_get(out, "Id"));
	if (st == 201 && eid)
		snprintf(exec_id, exec_len, "%s", eid);
	json_decref(out);
	if (st != 201 || !eid)
		return -1;
	b = json_pack("{s:b, s:b}", "Detach", 1, "Tty", 0);
	snprintf(path, sizeof path, "/exec/%s/start", exec_id);
	st = sbx_docker_call(d, "POST", path, b, NULL, 0, err, len);
	json_decref(b);
	return st == 200 || st == 204 ? 0 : -1;
}

/* Whether the agent's exec still runs; its exit code in *code when not. */
static int agent_running(sbx_docker *d, const char *exec_id, int *code)
{
	char path[300], err[256];
	snprintf(path, sizeof path, "/exec/%s/json", exec_id);
	json_t *j = NULL;
	long st = sbx_docker_call(d, "GET", path, NULL, &j, 0, err, sizeof err);
	int running = st != 200 || json_is_true(json_object_get(j, "Running")) ||
		      json_is_null(json_object_get(j, "ExitCode"));
	*code = (int)json_integer_value(json_object_get(j, "ExitCode"));
	json_decref(j);
	return running;
}

int sbx_docker_agent_addr(const char *run_dir, char *addr, size_t len, char *err, size_t err_len)
{
	struct sockaddr_un sun;
	snprintf(addr, len, "%s/%s", run_dir, SBX_DOCKER_SOCKET_NAME);
	if (strlen(addr) < sizeof sun.sun_path)
		return -2;
	int fd = open(run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, err_len, "cannot open %s: %s", run_dir, strerror(errno));
		return -1;
	}
	snprintf(addr, len, "/proc/self/fd/%d/%s", fd, SBX_DOCKER_SOCKET_NAME);
	return fd;
}

/* Waits until the agent answers on its socket with our secret. */
static int wait_agent(sbx_docker *d, const sbx_docker_start_opts *o, const char *exec_id, char *err, size_t len)
{
	char sock[4200], probe[4200];
	int dirfd = sbx_docker_agent_addr(o->run_dir, sock, sizeof sock, err, len);
	if (dirfd == -1)
		return -1;
	snprintf(probe, sizeof probe, "%s/%s", o->run_dir, SBX_DOCKER_SOCKET_NAME);
	sbx_session_opts so = {.secret_file = o->secret_file};
	sbx_error e = {0};
	int rc = -1;
	for (int tries = 0; rc < 0 && tries < 400; tries++) {
		int code;
		if (tries % 8 == 7 && !agent_running(d, exec_id, &code)) {
			snprintf(e.message, sizeof e.message, "it exited with code %d (is the image for this machine's "
							      "architecture? does it mount %s?)",
				 code, SBX_DOCKER_RUN_PATH);
			break;
		}
		if (access(probe, F_OK) == 0) {
			sbx_session *s = sbx_session_connect(d->loop, sock, &so, &e);
			rc = s && sbx_session_wait_ready(s, 5, &e) == 0 ? 0 : -1;
			if (s)
				sbx_session_close(s);
		}
		if (rc < 0)
			usleep(25000);
	}
	if (dirfd >= 0)
		close(dirfd);
	if (rc < 0)
		snprintf(err, len, "the agent did not answer within 10 s%s%s", e.message[0] ? ": " : "", e.message);
	return rc;
}

/* Whether the agent at path is a static ELF (no program interpreter): only
 * such an agent runs in any image. */
int sbx_docker_agent_static(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;
	int ok = fd >= 0 && pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh &&
		 !memcmp(eh.e_ident, ELFMAG, SELFMAG) && eh.e_ident[EI_CLASS] == ELFCLASS64;
	for (int i = 0; ok && i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) != (ssize_t)sizeof ph ||
		    ph.p_type == PT_INTERP)
			ok = 0;
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

int sbx_docker_agent_start(sbx_docker *d, const char *id, const sbx_docker_start_opts *o, char *err, size_t err_len)
{
	char exec_id[128], copy[4200] = "";
	int rc = place_secret(o, copy, sizeof copy, err, err_len);
	if (rc == 0)
		rc = start_agent(d, id, o->spec, exec_id, sizeof exec_id, err, err_len);
	if (rc == 0)
		rc = wait_agent(d, o, exec_id, err, err_len);
	if (copy[0])
		unlink(copy); /* no command has run yet: none saw it */
	return rc;
}
