/* nometa.c — `--block-metadata` (nometa.h): a cgroup v2 child of the
 * agent's own cgroup whose processes cannot reach the instance metadata
 * service.
 *
 * The cgroup gets four BPF_PROG_TYPE_CGROUP_SOCK_ADDR programs (connect
 * and UDP sendmsg, IPv4 and IPv6), hand-written instructions loaded with
 * bpf(2) (no libbpf): each compares the destination address with the
 * blocked ones and returns 0 (the kernel answers EPERM) or 1 (allowed).
 * They are attached without BPF_F_ALLOW_OVERRIDE or BPF_F_ALLOW_MULTI, so
 * no cgroup below can attach its own program of those types, and detaching
 * them needs CAP_NET_ADMIN. A socket belongs to the cgroup of the process
 * that created it, so the agent's own sockets (its parent cgroup) and every
 * other process on the machine are untouched.
 *
 * Commands are born in the cgroup (clone3 with CLONE_INTO_CGROUP, Linux
 * 5.7+): there is no moment when a command runs outside it, and no cgroup
 * migration per command (it takes a global lock whose write side can wait
 * for an RCU grace period, with the agent stopped in vfork). The price is
 * a fork instead of exec.c's vfork (docs/SECURITY.md, "EC2"). */
#include "nometa.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOMETA_HINT                                                                                  \
	"--block-metadata needs root, a cgroup2 file system (cgroup v2, or the hybrid layout's "     \
	"/sys/fs/cgroup/unified), a kernel with cgroup BPF (CONFIG_CGROUP_BPF, Linux 5.7+), and "    \
	"under systemd Delegate=yes in the agent's unit; refusing to start rather than let commands " \
	"reach the instance metadata service (drop --block-metadata to allow it)"

/* The addresses commands may not reach, as text for inet_pton. */
static const char *const blocked_v4[] = {"169.254.169.254", NULL};
static const char *const blocked_v6[] = {"fd00:ec2::254", "::ffff:169.254.169.254", NULL};

/* ------------------------------------------------------------ finding the cgroup */

/* The agent's cgroup v2 path ("/system.slice/x.service") from the "0::"
 * line of /proc/self/cgroup. 0 or -1. */
static int own_cgroup(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -1;
	char line[4096];
	int found = -1;
	while (found < 0 && fgets(line, sizeof line, f)) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = 0;
		if ((size_t)snprintf(out, len, "%s", line + 3) < len)
			found = 0;
	}
	fclose(f);
	return found;
}

/* Where the cgroup2 file system is mounted, and which cgroup is its root
 * (not "/" inside a cgroup namespace or a bind mount), from
 * /proc/self/mountinfo. 0 or -1. */
static int cgroup2_mount(char *dir, size_t dlen, char *root, size_t rlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -1;
	char line[4096];
	int found = -1;
	while (found < 0 && fgets(line, sizeof line, f)) {
		const char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		char mroot[2048], mdir[2048];
		/* id parent major:minor root mountpoint ... (octal escapes only for odd paths) */
		if (sscanf(line, "%*s %*s %*s %2047s %2047s", mroot, mdir) != 2)
			continue;
		if ((size_t)snprintf(dir, dlen, "%s", mdir) < dlen && (size_t)snprintf(root, rlen, "%s", mroot) < rlen)
			found = 0;
	}
	fclose(f);
	return found;
}

/* The directory of the commands' cgroup: MOUNT + (OWN minus the mount's
 * root) + "/sbx-commands-PID". 0, or -1 with err set. */
static int commands_cgroup_path(char *out, size_t len, char *err, size_t elen)
{
	char own[2048], dir[2048], root[2048];
	if (own_cgroup(own, sizeof own) < 0) {
		snprintf(err, elen, "no cgroup v2 entry (\"0::\") in /proc/self/cgroup");
		return -1;
	}
	if (cgroup2_mount(dir, sizeof dir, root, sizeof root) < 0) {
		snprintf(err, elen, "no cgroup2 file system mounted (see /proc/self/mountinfo)");
		return -1;
	}
	size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
	if (strncmp(own, root, rl) != 0 || (own[rl] != '/' && own[rl] != 0)) {
		snprintf(err, elen, "the agent's cgroup %.300s is outside the cgroup2 mount at %.300s (root %.300s)", own, dir, root);
		return -1;
	}
	const char *rel = own + rl;
	if (strcmp(rel, "/") == 0)
		rel = "";
	if ((size_t)snprintf(out, len, "%s%s/sbx-commands-%d", dir, rel, (int)getpid()) >= len) {
		snprintf(err, elen, "cgroup path too long");
		return -1;
	}
	return 0;
}

/* Removes the empty commands' cgroups that agents which died without
 * cleaning up (SIGKILL) left next to path: "sbx-commands-PID" whose PID is
 * gone. One that still holds a process stays (rmdir fails), blocked. */
static void remove_stale(const char *path)
{
	char parent[4096];
	snprintf(parent, sizeof parent, "%s", path);
	char *slash = strrchr(parent, '/');
	if (!slash)
		return;
	*slash = 0;
	DIR *d = opendir(parent);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		if (strncmp(e->d_name, "sbx-commands-", 13) != 0)
			continue;
		long pid = strtol(e->d_name + 13, &end, 10);
		if (*end || pid <= 0 || pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

/* ------------------------------------------------------------ the programs */

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct bpf_insn i = {.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
	return i;
}

/* Appends "if the address words at ctx offsets off[0..n) equal words[],
 * return 0": load, compare, skip to the end of the block on the first
 * difference. 4 instructions per word plus 2. Returns the new count. */
static size_t emit_refuse(struct bpf_insn *p, size_t at, const uint32_t *words, const int16_t *off, int n)
{
	for (int i = 0; i < n; i++) {
		int16_t rest = (int16_t)((n - 1 - i) * 4 + 2); /* instructions after this jump in the block */
		p[at++] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, off[i], 0);
		p[at++] = insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_3, 0, 0, (int32_t)words[i]);
		p[at++] = insn(0, 0, 0, 0, 0); /* the upper 32 bits of the constant */
		p[at++] = insn(BPF_JMP | BPF_JNE | BPF_X, BPF_REG_2, BPF_REG_3, rest, 0);
	}
	p[at++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	p[at++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return at;
}

/* The program for one family: a refuse block per blocked address, then
 * "return 1". Returns the instruction count (p holds at least 64). */
static size_t build_program(int family, struct bpf_insn *p)
{
	int16_t off4[1] = {offsetof(struct bpf_sock_addr, user_ip4)};
	int16_t off6[4];
	for (int i = 0; i < 4; i++)
		off6[i] = (int16_t)(offsetof(struct bpf_sock_addr, user_ip6) + 4 * i);
	const char *const *list = family == AF_INET ? blocked_v4 : blocked_v6;
	int words = family == AF_INET ? 1 : 4;
	size_t n = 0;
	for (; *list; list++) {
		unsigned char a[16];
		uint32_t w[4];
		inet_pton(family, *list, a);
		memcpy(w, a, (size_t)words * 4); /* as the program loads them: network byte order in memory */
		n = emit_refuse(p, n, w, family == AF_INET ? off4 : off6, words);
	}
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
	p[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return n;
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/* Loads the program for family, for attach type type. fd, or -1 with err set. */
static int load_program(int family, enum bpf_attach_type type, char *err, size_t elen)
{
	struct bpf_insn prog[64];
	size_t n = build_program(family, prog);
	static char log[4096];
	log[0] = 0;
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
	a.expected_attach_type = type;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = (uint32_t)n;
	a.license = (uint64_t)(uintptr_t)"GPL";
	a.log_buf = (uint64_t)(uintptr_t)log;
	a.log_size = sizeof log;
	a.log_level = 1;
	int fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
	if (fd < 0) {
		int e = errno;
		log[strcspn(log, "\n")] = 0;
		snprintf(err, elen, "loading a BPF program (bpf(BPF_PROG_LOAD)): %s%s%.400s", strerror(e), log[0] ? ": " : "",
			 log);
		errno = e;
	}
	return fd;
}

/* Loads and attaches the four programs to the cgroup. 0, or -1 with err set. */
static int attach_programs(int cgroup_fd, char *err, size_t elen)
{
	static const struct {
		int family;
		enum bpf_attach_type type;
		const char *name;
	} hooks[] = {
		{AF_INET, BPF_CGROUP_INET4_CONNECT, "IPv4 connect"},
		{AF_INET6, BPF_CGROUP_INET6_CONNECT, "IPv6 connect"},
		{AF_INET, BPF_CGROUP_UDP4_SENDMSG, "UDP IPv4 sendmsg"},
		{AF_INET6, BPF_CGROUP_UDP6_SENDMSG, "UDP IPv6 sendmsg"},
	};
	for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++) {
		int fd = load_program(hooks[i].family, hooks[i].type, err, elen);
		if (fd < 0)
			return -1;
		union bpf_attr a;
		memset(&a, 0, sizeof a);
		a.target_fd = (uint32_t)cgroup_fd;
		a.attach_bpf_fd = (uint32_t)fd;
		a.attach_type = hooks[i].type;
		a.attach_flags = 0; /* exclusive: nothing below may attach its own */
		long rc = sys_bpf(BPF_PROG_ATTACH, &a);
		int e = errno;
		close(fd); /* the attachment holds the program */
		if (rc < 0) {
			snprintf(err, elen, "attaching the %s BPF program to the commands' cgroup: %s", hooks[i].name,
				 strerror(e));
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ starting children */

pid_t nometa_fork(const nometa *nm)
{
	if (!nm || nm->cgroup_fd < 0)
		return fork();
	struct clone_args ca;
	memset(&ca, 0, sizeof ca);
	ca.flags = CLONE_INTO_CGROUP;
	ca.exit_signal = SIGCHLD;
	ca.cgroup = (uint64_t)nm->cgroup_fd;
	return (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
}

/* ------------------------------------------------------------ proving it */

/* In a child in the cgroup: 0 if a UDP connect() to addr is refused with
 * EPERM (no packet is sent either way), 1 if the family is not available
 * here (nothing to block), 2 if it was not refused. */
static int probe_refused(int family, const char *addr)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno == EAFNOSUPPORT ? 1 : 2;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t sl;
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(80);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		sl = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(80);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		sl = sizeof *s6;
	}
	int rc = connect(fd, (struct sockaddr *)&ss, sl);
	int refused = rc < 0 && errno == EPERM;
	close(fd);
	return refused ? 0 : 2;
}

/* Starts a child in the cgroup that tries every blocked address. 0 if all
 * were refused, or -1 with err set. */
static int prove_block(const nometa *nm, char *err, size_t elen)
{
	pid_t pid = nometa_fork(nm);
	if (pid < 0) {
		snprintf(err, elen, "starting a process in the commands' cgroup (clone3 CLONE_INTO_CGROUP): %s",
			 strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int bad = 0;
		for (const char *const *a = blocked_v4; *a; a++)
			bad |= probe_refused(AF_INET, *a) == 2;
		for (const char *const *a = blocked_v6; *a; a++)
			bad |= probe_refused(AF_INET6, *a) == 2;
		_exit(bad);
	}
	int status = 0;
	pid_t got;
	while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
	}
	if (got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	snprintf(err, elen, "a process in the commands' cgroup could still connect to the metadata address "
			    "(the kernel does not apply cgroup socket BPF programs here)");
	return -1;
}

/* ------------------------------------------------------------ setup */

static int fail(nometa *nm, char *err, size_t elen, const char *what)
{
	snprintf(err, elen, "--block-metadata: %s. %s", what, NOMETA_HINT);
	nometa_cleanup(nm);
	return -1;
}

int nometa_setup(nometa *nm, char *err, size_t elen)
{
	char what[1024];
	nm->cgroup_fd = -1;
	nm->path[0] = 0;
	if (commands_cgroup_path(nm->path, sizeof nm->path, what, sizeof what) < 0) {
		nm->path[0] = 0;
		return fail(nm, err, elen, what);
	}
	remove_stale(nm->path);
	if (mkdir(nm->path, 0755) < 0 && errno != EEXIST) {
		snprintf(what, sizeof what, "cannot create the commands' cgroup %.600s: %s", nm->path, strerror(errno));
		nm->path[0] = 0;
		return fail(nm, err, elen, what);
	}
	nm->cgroup_fd = open(nm->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (nm->cgroup_fd < 0) {
		snprintf(what, sizeof what, "cannot open the commands' cgroup %.600s: %s", nm->path, strerror(errno));
		return fail(nm, err, elen, what);
	}
	if (attach_programs(nm->cgroup_fd, what, sizeof what) < 0 || prove_block(nm, what, sizeof what) < 0)
		return fail(nm, err, elen, what);
	return 0;
}

void nometa_cleanup(nometa *nm)
{
	if (nm->cgroup_fd >= 0)
		close(nm->cgroup_fd);
	nm->cgroup_fd = -1;
	if (nm->path[0])
		rmdir(nm->path); /* fails (EBUSY) while a command still runs in it: left for the next start */
	nm->path[0] = 0;
}
