/* bundle.c — the directory a box runs from: its root filesystem and /etc.
 *
 * The root filesystem is a new directory owned by the box's root: empty
 * mount points for the host's OS directories (bound read-only by oci.c),
 * the host's top-level symlinks (/bin -> usr/bin on merged-/usr systems),
 * private writable /root, /home, /tmp, /var/tmp, /opt, ..., and an /etc
 * generated for the box: system accounts only, locked shadow entries, its
 * own hosts, hostname and resolv.conf, and an allow-list of the host's
 * harmless configuration (CA certificates, alternatives, loader cache,
 * shells, skel, login.defs, ...). Nothing secret of the host (its shadow,
 * ssh keys, cloud credentials, ssl/private) is ever copied. With --rootfs,
 * an overlay keeps the given directory unchanged. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/local/box.h"

extern const char *const sbx_box_os_dirs[];

/* Host /etc entries a box may have a copy of (files, symlinks or trees). */
static const char *const etc_allowed[] = {
	"adduser.conf", "alternatives", "bash.bashrc", "bindresvport.blacklist", "ca-certificates",
	"ca-certificates.conf", "debian_version", "default", "deluser.conf", "environment", "gai.conf",
	"host.conf", "inputrc", "issue", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
	"login.defs", "lsb-release", "mime.types", "nsswitch.conf", "os-release", "pam.conf", "pam.d",
	"perl", "profile", "profile.d", "protocols", "python3", "python3.11", "python3.12", "rpc",
	"securetty", "security", "services", "shells", "skel", "ssl", "subgid", "subuid", "timezone",
	"xattr.conf", NULL};
/* ... except these, wherever they appear under an allowed tree. */
static const char *const etc_never[] = {"private", "opasswd", "shadow", "gshadow", NULL};

static int fail(char *err, size_t len, const char *what, const char *path)
{
	snprintf(err, len, "%s %s: %s", what, path, strerror(errno));
	return -1;
}

static int listed(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(name, *list))
			return 1;
	return 0;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	size_t n = strlen(text);
	int ok = write(fd, text, n) == (ssize_t)n;
	close(fd);
	return ok ? 0 : -1;
}

static int copy_file(const char *src, const char *dst, mode_t mode)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
	if (out < 0) {
		close(in);
		return -1;
	}
	char buf[65536];
	ssize_t r;
	int rc = 0;
	while ((r = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)r) != r) {
			rc = -1;
			break;
		}
	if (r < 0 || close(out) < 0)
		rc = -1;
	close(in);
	return rc;
}

/* Copies a file, symlink or tree from the host's /etc (trusted) into the
 * box's. Unreadable entries are skipped: a box just lacks them. */
static void copy_entry(const char *src, const char *dst)
{
	struct stat st;
	if (lstat(src, &st) < 0)
		return;
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(src, target, sizeof target - 1);
		if (n > 0) {
			target[n] = 0;
			if (symlink(target, dst) < 0) {
			}
		}
	} else if (S_ISREG(st.st_mode)) {
		copy_file(src, dst, st.st_mode);
	} else if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(src);
		if (!d || mkdir(dst, st.st_mode & 07777) < 0) {
			if (d)
				closedir(d);
			return;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || listed(e->d_name, etc_never))
				continue;
			char s2[4096], d2[4096];
			if (snprintf(s2, sizeof s2, "%s/%s", src, e->d_name) < (int)sizeof s2 &&
			    snprintf(d2, sizeof d2, "%s/%s", dst, e->d_name) < (int)sizeof d2)
				copy_entry(s2, d2);
		}
		closedir(d);
	}
}

/* The host's system accounts (ids below 1000, and nobody): never a person's
 * account. field 2 (uid or gid) decides. */
static int system_account(const char *line)
{
	const char *p = strchr(line, ':');
	p = p ? strchr(p + 1, ':') : NULL;
	if (!p)
		return 0;
	long id = strtol(p + 1, NULL, 10);
	return id < 1000 || id == 65534;
}

/* passwd/group from the host's system accounts, plus shadow/gshadow with
 * every account locked: the box's own, never the host's. */
static int write_accounts(const char *etc)
{
	static const char *const files[][2] = {{"passwd", "shadow"}, {"group", "gshadow"}};
	for (int i = 0; i < 2; i++) {
		char src[64], dst[4400], sdst[4400];
		snprintf(src, sizeof src, "/etc/%s", files[i][0]);
		snprintf(dst, sizeof dst, "%s/%s", etc, files[i][0]);
		snprintf(sdst, sizeof sdst, "%s/%s", etc, files[i][1]);
		FILE *in = fopen(src, "r");
		FILE *out = fopen(dst, "wx");
		FILE *sh = fopen(sdst, "wx");
		int have_root = 0;
		char line[1024];
		while (in && out && sh && fgets(line, sizeof line, in)) {
			if (!system_account(line))
				continue;
			fputs(line, out);
			size_t n = strcspn(line, ":");
			have_root |= n == 4 && !strncmp(line, "root", 4);
			fprintf(sh, i == 0 ? "%.*s:*:19000:0:99999:7:::\n" : "%.*s:*::\n", (int)n, line);
		}
		if (out && sh && !have_root) {
			fputs(i == 0 ? "root:x:0:0:root:/root:/bin/bash\n" : "root:x:0:\n", out);
			fputs(i == 0 ? "root:*:19000:0:99999:7:::\n" : "root:*::\n", sh);
		}
		int ok = in && out && sh;
		if (in)
			fclose(in);
		if (out && fclose(out) != 0)
			ok = 0;
		if (sh && fclose(sh) != 0)
			ok = 0;
		if (!ok || chmod(sdst, 0640) < 0)
			return -1;
	}
	return 0;
}

static int make_etc(const char *rootfs, const char *hostname)
{
	char etc[4300], path[4400], hosts[512];
	snprintf(etc, sizeof etc, "%s/etc", rootfs);
	if (mkdir(etc, 0755) < 0)
		return -1;
	for (int i = 0; etc_allowed[i]; i++) {
		char src[256];
		snprintf(src, sizeof src, "/etc/%s", etc_allowed[i]);
		snprintf(path, sizeof path, "%s/%s", etc, etc_allowed[i]);
		copy_entry(src, path);
	}
	snprintf(hosts, sizeof hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n",
		 hostname);
	const struct {
		const char *name, *text;
	} generated[] = {
		{"hosts", hosts},
		{"hostname", NULL},
		{"resolv.conf", "# this sandbox has no network\n"},
	};
	for (size_t i = 0; i < sizeof generated / sizeof generated[0]; i++) {
		char text[300];
		snprintf(text, sizeof text, "%s\n", hostname);
		snprintf(path, sizeof path, "%s/%s", etc, generated[i].name);
		if (write_text(path, generated[i].text ? generated[i].text : text, 0644) < 0)
			return -1;
	}
	snprintf(path, sizeof path, "%s/mtab", etc);
	if (symlink("/proc/self/mounts", path) < 0)
		return -1;
	return write_accounts(etc);
}

/* Mount points and private directories of a root filesystem built on the
 * host's OS. */
static int make_skeleton(const char *rootfs)
{
	static const struct {
		const char *path;
		mode_t mode;
	} dirs[] = {{"proc", 0555}, {"sys", 0555}, {"dev", 0755},  {"run", 0755},  {"tmp", 01777},
		    {"var", 0755},  {"var/tmp", 01777}, {"var/log", 0755}, {"var/cache", 0755},
		    {"var/lib", 0755}, {"root", 0700}, {"home", 0755}, {"opt", 0755}, {"srv", 0755},
		    {"mnt", 0755},  {"media", 0755}};
	char path[4300];
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", rootfs, dirs[i].path);
		if (mkdir(path, dirs[i].mode) < 0 || chmod(path, dirs[i].mode) < 0)
			return -1;
	}
	for (int i = 0; sbx_box_os_dirs[i]; i++) {
		struct stat st;
		const char *d = sbx_box_os_dirs[i];
		if (lstat(d, &st) < 0)
			continue;
		snprintf(path, sizeof path, "%s%s", rootfs, d);
		if (S_ISDIR(st.st_mode)) {
			if (mkdir(path, 0755) < 0)
				return -1;
		} else if (S_ISLNK(st.st_mode)) {
			char target[256];
			ssize_t n = readlink(d, target, sizeof target - 1);
			if (n <= 0)
				continue;
			target[n] = 0;
			if (symlink(target, path) < 0)
				return -1;
		}
	}
	return 0;
}

/* A working directory (compose working_dir) made inside the new root
 * filesystem, like a container engine makes an image's WORKDIR. */
static int make_workdir(const char *rootfs, const char *dir)
{
	if (dir[0] != '/' || strstr(dir, "..")) {
		errno = EINVAL;
		return -1;
	}
	char path[4300];
	if (snprintf(path, sizeof path, "%s%s", rootfs, dir) >= (int)sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = path + strlen(rootfs) + 1;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;
			*p = 0;
			struct stat st;
			if (lstat(path, &st) < 0 && mkdir(path, 0755) < 0)
				return -1;
			if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
				errno = ENOTDIR; /* e.g. under a read-only /usr symlink */
				return -1;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

/* Hands every entry of the new root filesystem to the box's root (an id
 * of the box's range, never a host id anything else uses). */
static int chown_tree(const char *path, uid_t id)
{
	if (lchown(path, id, id) < 0)
		return -1;
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char sub[4096];
		if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub)
			continue;
		rc = chown_tree(sub, id);
	}
	closedir(d);
	return rc;
}

/* --rootfs DIR: an overlay whose lower layer is DIR (never written) and
 * whose upper layer is the bundle's. */
static int mount_overlay(const char *bundle, const char *lower, uid_t id, char *err, size_t len)
{
	char upper[4200], work[4200], rootfs[4200], opts[13000];
	snprintf(upper, sizeof upper, "%s/upper", bundle);
	snprintf(work, sizeof work, "%s/work", bundle);
	snprintf(rootfs, sizeof rootfs, "%s/rootfs", bundle);
	if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0 || lchown(upper, id, id) < 0)
		return fail(err, len, "cannot create", upper);
	snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
	if (mount("overlay", rootfs, "overlay", MS_NOSUID | MS_NODEV, opts) < 0)
		return fail(err, len, "cannot mount an overlay of", lower);
	return 0;
}

static int check_rootfs(const char *dir, char *err, size_t len)
{
	struct stat st, host_root;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, len, "--rootfs %s: not a directory (give an unpacked image's root)", dir);
		return -1;
	}
	if (stat("/", &host_root) == 0 && st.st_dev == host_root.st_dev && st.st_ino == host_root.st_ino) {
		snprintf(err, len, "--rootfs %s is this machine's own root: the sandbox would see all of it (the default "
				   "already gives it the host's OS, read-only, without your files)", dir);
		return -1;
	}
	if (geteuid() != 0) {
		snprintf(err, len, "--rootfs needs root (an overlay keeps %s unchanged); run sbx as root", dir);
		return -1;
	}
	return 0;
}

/* The agent binary the box binds read-only: a link (or copy) in the
 * bundle, which the box's root can always reach. */
static int place_agent(const char *bundle, const char *agent_path, char *err, size_t len)
{
	char dst[4200];
	snprintf(dst, sizeof dst, "%s/agent", bundle);
	if (link(agent_path, dst) == 0 || copy_file(agent_path, dst, 0755) == 0)
		return chmod(dst, 0755) == 0 ? 0 : fail(err, len, "cannot make executable", dst);
	if (errno == ENOENT)
		sbx_agent_check(agent_path, err, len);
	else
		fail(err, len, "cannot copy the agent binary", agent_path);
	return -1;
}

static int build_rootfs(sbx_box *b, const sbx_box_opts *o, char *err, size_t len)
{
	char rootfs[4200];
	snprintf(rootfs, sizeof rootfs, "%s/rootfs", b->bundle);
	if (mkdir(rootfs, 0755) < 0)
		return fail(err, len, "cannot create", rootfs);
	if (o->rootfs)
		return mount_overlay(b->bundle, o->rootfs, b->host_root, err, len);
	if (make_skeleton(rootfs) < 0 || make_etc(rootfs, o->hostname ? o->hostname : "sandbox") < 0)
		return fail(err, len, "cannot build the root filesystem in", rootfs);
	if (o->workdir && make_workdir(rootfs, o->workdir) < 0)
		return fail(err, len, "cannot create the working directory", o->workdir);
	if (b->host_root != geteuid() && chown_tree(rootfs, b->host_root) < 0)
		return fail(err, len, "cannot hand the root filesystem to the sandbox's root in", rootfs);
	return 0;
}

/* Limits need a cgroup this user may create (root, or a delegated tree). */
static int check_limits(const sbx_box_opts *o, char *err, size_t len)
{
	if (geteuid() == 0 || !sbx_box_wants_limits(o) || access("/sys/fs/cgroup/memory", W_OK) == 0 ||
	    access("/sys/fs/cgroup/cgroup.procs", W_OK) == 0)
		return 0;
	snprintf(err, len, "memory, pids and CPU limits need cgroups this user cannot create: run sbx as root, or "
			   "without limits (sbx up --memory 0 --pids 0 --cpus 0; Python memory=0, pids=0, cpus=0)");
	return -1;
}

int sbx_box_prepare(sbx_box *b, const sbx_box_opts *o, const char *bundle, const char *id,
		    const char *agent_path, const char *const *agent_argv, char *err, size_t len)
{
	if ((o->rootfs && check_rootfs(o->rootfs, err, len) < 0) || check_limits(o, err, len) < 0)
		return -1;
	snprintf(b->bundle, sizeof b->bundle, "%s", bundle);
	snprintf(b->id, sizeof b->id, "%s", id);
	b->host_root = geteuid() == 0 ? SBX_BOX_HOST_ID : geteuid();
	if (!strcmp(b->runtime, "runsc"))
		b->host_root = geteuid(); /* gVisor: no user namespace of ours (oci.c) */
	if (mkdir(bundle, 0711) < 0 || chmod(bundle, 0711) < 0)
		return fail(err, len, "cannot create the sandbox's bundle directory", bundle);
	char state[4200], record[4200], text[400];
	snprintf(state, sizeof state, "%s/state", bundle);
	snprintf(record, sizeof record, "%s/runtime", bundle);
	snprintf(text, sizeof text, "%s\n%s\n%s\n%d\n", b->runtime, b->runtime_path, b->id, (int)b->host_root);
	const char *args[64];
	int n = 0;
	args[n++] = SBX_BOX_AGENT;
	for (int i = 1; agent_argv[i] && n < 59; i++)
		args[n++] = agent_argv[i];
	if (o->user && o->user[0]) {
		args[n++] = "--user";
		args[n++] = o->user;
	}
	args[n++] = "--workdir";
	args[n++] = o->workdir ? o->workdir : o->rootfs ? "/" : SBX_BOX_WORKDIR;
	args[n] = NULL;
	if (mkdir(state, 0700) < 0 || write_text(record, text, 0600) < 0) {
		fail(err, len, "cannot write", record);
	} else if (place_agent(bundle, agent_path, err, len) == 0 && build_rootfs(b, o, err, len) == 0 &&
		   sbx_box_write_config(b, o, args, err, len) == 0) {
		return 0;
	}
	sbx_box_destroy(b);
	return -1;
}
