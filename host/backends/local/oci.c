/* oci.c — the OCI runtime config (config.json, runtime-spec 1.0) of a box.
 *
 * What the agent's container gets: new pid, mount, network, ipc, uts,
 * cgroup and user namespaces (root inside is an unprivileged host id);
 * Docker's default capabilities; no_new_privs; a seccomp filter refusing
 * what Docker's default profile leaves out (mounts, modules, kexec, bpf,
 * perf, keyrings, new namespaces, ...); masked /proc entries; the host's OS
 * directories read-only; the agent binary read-only at SBX_BOX_AGENT;
 * memory, pids and CPU limits in the box's own cgroup. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/local/box.h"
#include "transport/transport.h"

/* Docker's default capability set. */
static const char *const default_caps[] = {
	"CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER",	     "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID",	  "CAP_SETUID",	 "CAP_SETFCAP",	     "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", NULL};

/* Syscalls Docker's default seccomp profile does not allow (without
 * capabilities a box never has): refused with EPERM. */
static const char *const denied_syscalls[] = {
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
	"get_kernel_syms", "init_module", "ioperm", "iopl", "kexec_file_load",
	"kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr", "move_mount",
	"name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree",
	"perf_event_open", "pivot_root", "process_vm_readv", "process_vm_writev", "quotactl",
	"quotactl_fd", "reboot", "request_key", "setns", "settimeofday", "stime",
	"swapoff", "swapon", "_sysctl", "sysfs", "umount", "umount2", "unshare", "uselib",
	"userfaultfd", "ustat", "vm86", "vm86old", NULL};

/* clone() flags that make namespaces: each one refused on its own. */
static const unsigned long ns_clone_flags[] = {0x00020000, 0x02000000, 0x04000000, 0x08000000,
					       0x10000000, 0x20000000, 0x40000000};

/* /proc and /sys entries hidden or read-only (Docker's lists). */
static const char *const masked_paths[] = {
	"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
	"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	NULL};
static const char *const readonly_paths[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
					      "/proc/sysrq-trigger", NULL};

/* The host's OS directories a box sees read-only (those that are real
 * directories; bundle.c copies the symlinks). */
const char *const sbx_box_os_dirs[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", NULL};

static json_t *str_array(const char *const *v)
{
	json_t *a = json_array();
	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

static json_t *mount_entry(const char *dest, const char *type, const char *source, const char *const *opts)
{
	json_t *m = json_object();
	json_object_set_new(m, "destination", json_string(dest));
	json_object_set_new(m, "type", json_string(type));
	json_object_set_new(m, "source", json_string(source));
	json_object_set_new(m, "options", str_array(opts));
	return m;
}

static json_t *process(const sbx_box_opts *o, const char *const *args)
{
	json_t *p = json_object();
	json_object_set_new(p, "terminal", json_false());
	json_t *user = json_object();
	json_object_set_new(user, "uid", json_integer(0));
	json_object_set_new(user, "gid", json_integer(0));
	json_object_set_new(p, "user", user);
	json_object_set_new(p, "args", str_array(args));
	json_t *env = str_array(sbx_sandbox_env);
	for (const char *const *e = o->env; e && *e; e++)
		json_array_append_new(env, json_string(*e));
	json_object_set_new(p, "env", env);
	json_object_set_new(p, "cwd", json_string("/"));
	json_t *caps = json_object();
	const char *sets[] = {"bounding", "effective", "permitted", NULL};
	for (int i = 0; sets[i]; i++)
		json_object_set_new(caps, sets[i], str_array(default_caps));
	json_object_set_new(p, "capabilities", caps);
	json_object_set_new(p, "noNewPrivileges", json_true());
	return p; /* rlimits: ours (a box cannot raise them: no CAP_SYS_RESOURCE) */
}

static int is_real_dir(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static json_t *mounts(const sbx_box *b, const sbx_box_opts *o)
{
	static const char *const proc_o[] = {"nosuid", "noexec", "nodev", NULL};
	static const char *const dev_o[] = {"nosuid", "strictatime", "mode=755", "size=65536k", NULL};
	static const char *const pts_o[] = {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", NULL};
	static const char *const shm_o[] = {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL};
	static const char *const mq_o[] = {"nosuid", "noexec", "nodev", NULL};
	static const char *const sys_o[] = {"nosuid", "noexec", "nodev", "ro", NULL};
	static const char *const ro_bind[] = {"rbind", "ro", "nosuid", "nodev", NULL};
	static const char *const run_o[] = {"nosuid", "nodev", "mode=755", NULL};
	json_t *m = json_array();
	json_array_append_new(m, mount_entry("/proc", "proc", "proc", proc_o));
	json_array_append_new(m, mount_entry("/dev", "tmpfs", "tmpfs", dev_o));
	json_array_append_new(m, mount_entry("/dev/pts", "devpts", "devpts", pts_o));
	json_array_append_new(m, mount_entry("/dev/shm", "tmpfs", "shm", shm_o));
	json_array_append_new(m, mount_entry("/dev/mqueue", "mqueue", "mqueue", mq_o));
	json_array_append_new(m, mount_entry("/sys", "sysfs", "sysfs", sys_o));
	json_array_append_new(m, mount_entry("/run", "tmpfs", "tmpfs", run_o));
	for (int i = 0; !o->rootfs && sbx_box_os_dirs[i]; i++)
		if (is_real_dir(sbx_box_os_dirs[i]))
			json_array_append_new(m, mount_entry(sbx_box_os_dirs[i], "bind", sbx_box_os_dirs[i], ro_bind));
	char agent[4200];
	snprintf(agent, sizeof agent, "%s/agent", b->bundle);
	json_array_append_new(m, mount_entry(SBX_BOX_AGENT, "bind", agent, ro_bind));
	return m;
}

static json_t *id_map(uid_t host, unsigned size)
{
	json_t *one = json_object();
	json_object_set_new(one, "containerID", json_integer(0));
	json_object_set_new(one, "hostID", json_integer(host));
	json_object_set_new(one, "size", json_integer(size));
	json_t *a = json_array();
	json_array_append_new(a, one);
	return a;
}

int sbx_box_wants_limits(const sbx_box_opts *o)
{
	return o->memory != UINT64_MAX || o->pids >= 0 || o->cpus >= 0;
}

static json_t *resources(const sbx_box_opts *o)
{
	json_t *r = json_object();
	uint64_t mem = o->memory ? o->memory : SBX_BOX_DEFAULT_MEMORY;
	if (mem != UINT64_MAX) {
		json_t *m = json_object();
		json_object_set_new(m, "limit", json_integer((json_int_t)mem));
		json_object_set_new(m, "swap", json_integer((json_int_t)mem)); /* memory+swap: no swap on top */
		json_object_set_new(r, "memory", m);
	}
	long pids = o->pids ? o->pids : SBX_BOX_DEFAULT_PIDS;
	if (pids > 0) {
		json_t *p = json_object();
		json_object_set_new(p, "limit", json_integer(pids));
		json_object_set_new(r, "pids", p);
	}
	double share = o->cpus > 0 ? o->cpus : o->cpus == 0 ? SBX_BOX_DEFAULT_CPU_SHARE : 0;
	json_t *cpu = json_object();
	if (share > 0)
		json_object_set_new(cpu, "shares", json_integer((json_int_t)(share * 1024)));
	if (o->cpus > 0) {
		json_object_set_new(cpu, "period", json_integer(100000));
		json_object_set_new(cpu, "quota", json_integer((json_int_t)(o->cpus * 100000)));
	}
	json_object_set_new(r, "cpu", cpu);
	return r;
}

static json_t *syscall_rule(json_t *names, int err_no, json_t *args)
{
	json_t *s = json_object();
	json_object_set_new(s, "names", names);
	json_object_set_new(s, "action", json_string("SCMP_ACT_ERRNO"));
	json_object_set_new(s, "errnoRet", json_integer(err_no));
	if (args)
		json_object_set_new(s, "args", args);
	return s;
}

static json_t *seccomp(void)
{
	json_t *sc = json_object();
	json_object_set_new(sc, "defaultAction", json_string("SCMP_ACT_ALLOW"));
	json_t *arches = json_array();
	json_array_append_new(arches, json_string("SCMP_ARCH_X86_64"));
	json_array_append_new(arches, json_string("SCMP_ARCH_X86"));
	json_array_append_new(arches, json_string("SCMP_ARCH_X32"));
	json_array_append_new(arches, json_string("SCMP_ARCH_AARCH64"));
	json_array_append_new(arches, json_string("SCMP_ARCH_ARM"));
	json_object_set_new(sc, "architectures", arches);
	json_t *rules = json_array();
	json_array_append_new(rules, syscall_rule(str_array(denied_syscalls), EPERM, NULL));
	/* clone3's flags sit in memory a filter cannot read: ENOSYS makes the
	 * C library fall back to clone(), whose flags are checked below. */
	json_t *clone3 = json_array();
	json_array_append_new(clone3, json_string("clone3"));
	json_array_append_new(rules, syscall_rule(clone3, ENOSYS, NULL));
	for (size_t i = 0; i < sizeof ns_clone_flags / sizeof ns_clone_flags[0]; i++) {
		json_t *arg = json_object();
		json_object_set_new(arg, "index", json_integer(0));
		json_object_set_new(arg, "value", json_integer((json_int_t)ns_clone_flags[i]));
		json_object_set_new(arg, "valueTwo", json_integer((json_int_t)ns_clone_flags[i]));
		json_object_set_new(arg, "op", json_string("SCMP_CMP_MASKED_EQ"));
		json_t *args = json_array();
		json_array_append_new(args, arg);
		json_t *names = json_array();
		json_array_append_new(names, json_string("clone"));
		json_array_append_new(rules, syscall_rule(names, EPERM, args));
	}
	json_object_set_new(sc, "syscalls", rules);
	return sc;
}

static json_t *namespaces(int user)
{
	static const char *const types[] = {"pid", "network", "ipc", "uts", "mount", "cgroup", "user", NULL};
	json_t *a = json_array();
	for (int i = 0; types[i]; i++) {
		if (!user && !strcmp(types[i], "user"))
			continue;
		json_t *n = json_object();
		json_object_set_new(n, "type", json_string(types[i]));
		json_array_append_new(a, n);
	}
	return a;
}

static json_t *linux_section(const sbx_box *b, const sbx_box_opts *o)
{
	/* gVisor is its own kernel: its sentry runs unprivileged and shows no
	 * host ids, so it gets no user namespace of ours. */
	int userns = strcmp(b->runtime, "runsc") != 0;
	json_t *l = json_object();
	json_object_set_new(l, "namespaces", namespaces(userns));
	if (userns) {
		unsigned size = b->host_root == SBX_BOX_HOST_ID ? SBX_BOX_ID_COUNT : 1;
		json_object_set_new(l, "uidMappings", id_map(b->host_root, size));
		json_object_set_new(l, "gidMappings", id_map(b->host_root == SBX_BOX_HOST_ID ? SBX_BOX_HOST_ID : getegid(), size));
	}
	if (sbx_box_wants_limits(o)) {
		json_object_set_new(l, "resources", resources(o));
		char cg[160];
		snprintf(cg, sizeof cg, "/sbx/%s", b->id);
		json_object_set_new(l, "cgroupsPath", json_string(cg));
	}
	json_object_set_new(l, "seccomp", seccomp());
	json_object_set_new(l, "maskedPaths", str_array(masked_paths));
	json_object_set_new(l, "readonlyPaths", str_array(readonly_paths));
	return l;
}

int sbx_box_write_config(const sbx_box *b, const sbx_box_opts *o, const char *const *args, char *err, size_t len)
{
	json_t *c = json_object();
	json_object_set_new(c, "ociVersion", json_string("1.0.2"));
	json_t *root = json_object();
	json_object_set_new(root, "path", json_string("rootfs"));
	json_object_set_new(root, "readonly", json_false());
	json_object_set_new(c, "root", root);
	json_object_set_new(c, "hostname", json_string(o->hostname ? o->hostname : "sandbox"));
	json_object_set_new(c, "process", process(o, args));
	json_object_set_new(c, "mounts", mounts(b, o));
	json_object_set_new(c, "linux", linux_section(b, o));
	char path[4200];
	snprintf(path, sizeof path, "%s/config.json", b->bundle);
	int rc = json_dump_file(c, path, JSON_INDENT(1));
	json_decref(c);
	if (rc < 0 || chmod(path, 0600) < 0) {
		snprintf(err, len, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
