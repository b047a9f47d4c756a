/* attach.c — `sbx-agent --attach PATH`: the stdio end of a connection that
 * survives its stream. A pod exec stream runs this: it connects stdin and
 * stdout to the agent listening on the unix socket PATH, starting that agent
 * (detached, in its own session) when none answers, then copies bytes both
 * ways until either side ends. A dropped stream loses only this bridge; the
 * listening agent keeps the commands, and the host's next stream
 * re-attaches them.
 *
 * The stream's far end is the host, already authenticated by whoever ran
 * this exec (the Kubernetes API server), so the bridge answers the agent's
 * AUTH challenge itself: the listener's secret is PATH.key, made by the
 * first bridge (mode 0600, umask 077) and readable only by its user.
 *
 * PATH usually sits next to the agent binary; an agent baked into a
 * read-only directory has nowhere to put it there. Then the socket and its
 * files go to a private directory (mode 0700, ours, checked) in the first
 * writable runtime directory ($XDG_RUNTIME_DIR, /dev/shm, /tmp), named from
 * PATH so that every bridge given PATH finds the same listener. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "keyfile.h"
#include "sha256.h"

#define START_WAIT_MS 5000
#define AUTH_WAIT_MS 10000  /* for the listener's first frame */
#define AUTH_FRAME_MAX 1024 /* a challenge is about 60 bytes */

static int connect_to(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
		return fd;
	int e = errno;
	if (fd >= 0)
		close(fd);
	errno = e;
	return -1;
}

/* A directory only we can use: made 0700, or already there as ours, a
 * directory (not a link) and closed to others; anything else could be a
 * socket someone else planted for the host to talk to. */
static int private_dir(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	struct stat st;
	if (lstat(dir, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* Where the socket goes (see the top): path itself when its directory is
 * writable or an agent already listens there, else PATH's private place in
 * a runtime directory. 0, or -1 when there is none. */
static int socket_place(const char *path, char *out, size_t len)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = 0;
	else
		snprintf(dir, sizeof dir, ".");
	struct stat st;
	if (access(dir, W_OK) == 0 || lstat(path, &st) == 0) {
		if ((size_t)snprintf(out, len, "%s", path) >= len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return 0;
	}
	uint8_t h[32];
	sbx_sha256_digest(path, strlen(path), h);
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	const char *roots[] = {xdg && *xdg ? xdg : "/dev/shm", "/dev/shm", "/tmp"};
	for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
		char priv[128];
		if ((size_t)snprintf(priv, sizeof priv, "%s/sbx-agent-%u", roots[i], (unsigned)geteuid()) >= sizeof priv ||
		    access(roots[i], W_OK) != 0 || private_dir(priv) < 0)
			continue;
		snprintf(out, len, "%s/%02x%02x%02x%02x%02x%02x%02x%02x.sock", priv, h[0], h[1], h[2], h[3], h[4], h[5],
			 h[6], h[7]);
		return 0;
	}
	errno = EROFS;
	return -1;
}

/* The listening agent, as a grandchild in its own session: it outlives
 * this bridge and the exec that started it. */
static void start_listener(const char *path, const char *keep, const char *key_path)
{
	pid_t pid = fork();
	if (pid != 0) {
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return;
	}
	setsid();
	if (fork() != 0)
		_exit(0);
	int null = open("/dev/null", O_RDWR);
	char log[4200];
	snprintf(log, sizeof log, "%s.log", path);
	int err = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	dup2(null, 0);
	dup2(null, 1);
	dup2(err >= 0 ? err : null, 2);
	char *argv[] = {"sbx-agent", "--listen", (char *)path, "--keep", (char *)keep, "--secret-file",
			(char *)key_path, NULL};
	execv("/proc/self/exe", argv);
	_exit(127);
}

/* The listener's secret: PATH.key, made by the first bridge. -1 (said
 * why) when it can be neither read nor made. */
static int listener_key(const char *key_path, sbx_auth_key *k)
{
	char err[512];
	struct stat st;
	int missing = lstat(key_path, &st) < 0 && errno == ENOENT;
	int rc = missing ? sbx_keyfile_create(key_path, k, err, sizeof err)
			 : sbx_keyfile_read(key_path, k, err, sizeof err);
	if (rc < 0)
		fprintf(stderr, "sbx-agent: %s\n", err);
	return rc;
}

/* Connects, starting the agent first if nobody listens. A lock file keeps
 * two bridges from starting two agents on one path. */
static int reach_agent(const char *path, const char *keep, sbx_auth_key *k)
{
	char lock_path[4200], key_path[4200];
	snprintf(lock_path, sizeof lock_path, "%s.lock", path);
	snprintf(key_path, sizeof key_path, "%s.key", path);
	int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock >= 0)
		flock(lock, LOCK_EX);
	if (listener_key(key_path, k) < 0) {
		if (lock >= 0)
			close(lock);
		errno = EACCES;
		return -1;
	}
	int fd = connect_to(path);
	if (fd < 0 && (errno == ENOENT || errno == ECONNREFUSED)) {
		start_listener(path, keep, key_path);
		for (int waited = 0; fd < 0 && waited < START_WAIT_MS; waited += 10) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
			fd = connect_to(path);
		}
	}
	if (lock >= 0)
		close(lock); /* releases the lock */
	return fd;
}

/* Writes all of p; -1 when the other side is gone. */
static int write_all(int fd, const char *p, size_t n)
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

/* Reads exactly n bytes, until deadline_ms at most. */
static int read_exact(int fd, uint8_t *p, size_t n, uint64_t deadline_ms)
{
	while (n > 0) {
		uint64_t now = agent_now();
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (now >= deadline_ms || poll(&pf, 1, (int)(deadline_ms - now)) == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		ssize_t r = read(fd, p, n);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = ECONNRESET;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The frame the agent sent first: an AUTH challenge is answered with the
 * proof; anything else (an agent that asks for none) goes to the host as
 * it came. */
static int answer_challenge(int sock, const sbx_auth_key *k)
{
	uint8_t frame[AUTH_FRAME_MAX];
	uint64_t deadline = agent_now() + AUTH_WAIT_MS;
	if (read_exact(sock, frame, 4, deadline) < 0)
		return -1;
	uint32_t len = (uint32_t)frame[0] << 24 | (uint32_t)frame[1] << 16 | (uint32_t)frame[2] << 8 | frame[3];
	if (len == 0 || len > sizeof frame - 4) {
		errno = EPROTO;
		return -1;
	}
	if (read_exact(sock, frame + 4, len, deadline) < 0)
		return -1;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	sbx_msg m;
	char why[200];
	uint8_t nonce[SBX_AUTH_NONCE_LEN];
	int is_auth = sbx_msg_decode(frame + 4, len, &u, &m, why, sizeof why) == 0 && m.type == SBX_MSG_AUTH;
	int rc = 0;
	if (!is_auth) {
		rc = write_all(1, (const char *)frame, 4 + (size_t)len);
	} else if (sbx_auth_read_challenge(m.body, nonce, why, sizeof why) < 0) {
		fprintf(stderr, "sbx-agent: the listener's %s\n", why);
		errno = EPROTO;
		rc = -1;
	} else {
		sbx_buf out = {0};
		rc = sbx_auth_pack_proof(&out, k, nonce);
		if (rc == 0)
			rc = write_all(sock, (const char *)sbx_buf_head(&out), sbx_buf_size(&out));
		sbx_buf_free(&out);
	}
	msgpack_unpacked_destroy(&u);
	return rc;
}

int agent_attach(const char *given, const char *keep)
{
	umask(077); /* the lock, key and log files next to the socket are ours alone */
	char path[200]; /* a unix socket's path is at most 107 bytes */
	if (socket_place(given, path, sizeof path) < 0) {
		if (errno == ENAMETOOLONG)
			fprintf(stderr, "sbx-agent: the socket path %s is too long\n", given);
		else
			fprintf(stderr, "sbx-agent: %s is in a read-only directory and no runtime directory "
					"($XDG_RUNTIME_DIR, /dev/shm, /tmp) is writable: give --attach a path in a "
					"writable directory\n", given);
		return 1;
	}
	sbx_auth_key key;
	int sock = reach_agent(path, keep, &key);
	if (sock < 0) {
		fprintf(stderr, "sbx-agent: cannot reach or start the agent on %s: %s\n", path, strerror(errno));
		return 1;
	}
	int rc = answer_challenge(sock, &key);
	sbx_wipe(&key, sizeof key);
	if (rc < 0) {
		fprintf(stderr, "sbx-agent: cannot authenticate to the agent on %s: %s\n", path, strerror(errno));
		close(sock);
		return 1;
	}
	struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
	int out[2] = {sock, 1};
	char buf[65536];
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof buf);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0 || write_all(out[i], buf, (size_t)n) < 0)
				return 0; /* either side ended: the agent keeps the commands */
		}
	}
}
