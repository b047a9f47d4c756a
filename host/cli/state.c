/* state.c — where local sandboxes live between CLI calls.
 *
 * STATE is $SBX_STATE_DIR, else /run/sbx for root, else
 * $XDG_RUNTIME_DIR/sbx, else /tmp/sbx-UID; mode 0711 (a box's root must
 * pass through to its root filesystem; nothing is listable).
 * A sandbox NAME is the directory STATE/NAME holding a `services` file
 * (one name per line, the default service first) and per service:
 * SVC.sock (the agent's socket, made by sbx and handed to the agent),
 * SVC.key (the agent's secret, secret.c: handed in on a pipe, never in a
 * file a box can read), SVC.log (its stderr) and SVC.box/ (its container's
 * bundle: local/box.h).
 * No box can see any of it: a box sees only SVC.box/rootfs, as its /.
 * An uncontained (--host) service has SVC.pid and SVC.root/ (its working
 * directory) instead of SVC.box/. A `backend` file saying "ec2" marks an
 * EC2 sandbox instead (see cmd_ec2.c). */
#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "local/box.h"

const char *cli_state_dir(void)
{
	static char dir[4096];
	if (dir[0])
		return dir;
	const char *env = getenv("SBX_STATE_DIR");
	const char *run = getenv("XDG_RUNTIME_DIR");
	if (env && env[0])
		snprintf(dir, sizeof dir, "%s", env);
	else if (geteuid() == 0)
		snprintf(dir, sizeof dir, "/run/sbx");
	else if (run && run[0])
		snprintf(dir, sizeof dir, "%s/sbx", run);
	else
		snprintf(dir, sizeof dir, "/tmp/sbx-%d", (int)getuid());
	mkdir(dir, 0711);
	/* A box's root passes through (search only) to its root filesystem. */
	struct stat st;
	if (stat(dir, &st) == 0 && st.st_uid == geteuid() && !(st.st_mode & S_IXOTH))
		chmod(dir, (st.st_mode & 07777) | S_IXOTH);
	return dir;
}

int cli_valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 40)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return name[0] != '-';
}

int cli_sandbox_load(const char *name, cli_sandbox *sb)
{
	memset(sb, 0, sizeof *sb);
	if (!cli_valid_name(name))
		return -1;
	snprintf(sb->name, sizeof sb->name, "%s", name);
	snprintf(sb->dir, sizeof sb->dir, "%s/%s", cli_state_dir(), name);
	char path[4200];
	snprintf(path, sizeof path, "%s/services", sb->dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[128];
	while (sb->nservices < CLI_MAX_SERVICES && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = 0;
		if (line[0])
			snprintf(sb->services[sb->nservices++], sizeof sb->services[0], "%.63s", line);
	}
	fclose(f);
	snprintf(sb->backend, sizeof sb->backend, "local");
	snprintf(path, sizeof path, "%s/backend", sb->dir);
	f = fopen(path, "r");
	if (f) {
		if (fgets(line, sizeof line, f)) {
			line[strcspn(line, "\r\n")] = 0;
			snprintf(sb->backend, sizeof sb->backend, "%.15s", line);
		}
		fclose(f);
	}
	return sb->nservices ? 0 : -1;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

int cli_sandbox_names(char names[][64], int max)
{
	DIR *d = opendir(cli_state_dir());
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		cli_sandbox sb;
		if (e->d_name[0] != '.' && cli_sandbox_load(e->d_name, &sb) == 0)
			snprintf(names[n++], 64, "%.63s", e->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, 64, cmp_names);
	return n;
}

void cli_service_path(const cli_sandbox *sb, const char *svc, const char *what, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.%s", sb->dir, svc, what);
}

int cli_service_box(const cli_sandbox *sb, const char *svc, sbx_box *b)
{
	char bundle[4200];
	cli_service_path(sb, svc, "box", bundle, sizeof bundle);
	return sbx_box_load(b, bundle);
}

pid_t cli_service_pid(const cli_sandbox *sb, const char *svc)
{
	char path[4200];
	int pid = 0;
	sbx_box box;
	if (cli_service_box(sb, svc, &box) == 0) {
		pid = sbx_box_pid(&box); /* written by the runtime, out of the box's reach */
	} else {
		cli_service_path(sb, svc, "pid", path, sizeof path);
		FILE *f = fopen(path, "r");
		if (!f)
			return 0;
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return 0;
	/* A dead agent nobody reaped yet is a zombie: not running. */
	char stat_path[64], buf[256];
	snprintf(stat_path, sizeof stat_path, "/proc/%d/stat", pid);
	FILE *f = fopen(stat_path, "r");
	if (f) {
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		char *rp = strrchr(buf, ')');
		if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
			return 0;
	}
	return pid;
}

void cli_print_no_sandbox(const char *name)
{
	char names[256][64];
	int n = cli_sandbox_names(names, 256);
	cli_say(stderr, "sbx: no sandbox named '%s'", name);
	if (n == 0) {
		cli_say(stderr, "; there are none (create one with: sbx up %s)\n", name);
		return;
	}
	cli_say(stderr, "; existing:");
	for (int i = 0; i < n; i++)
		cli_say(stderr, "%s %s", i ? "," : "", names[i]);
	cli_say(stderr, " (create it with: sbx up %s)\n", name);
}

/* The last non-empty line of a service's log, for error messages. */
void cli_last_log_line(const cli_sandbox *sb, const char *svc, char *out, size_t len)
{
	char path[4200];
	cli_service_path(sb, svc, "log", path, sizeof path);
	out[0] = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = 0;
		if (line[0])
			snprintf(out, len, "%s", line);
	}
	fclose(f);
}

sbx_session *cli_local_session(sbx_loop *loop, const cli_sandbox *sb, const char *svc, sbx_error *err)
{
	sbx_box box;
	const char *argv[16];
	if (cli_service_box(sb, svc, &box) == 0 && sbx_box_attach_argv(&box, argv, 16) == 0)
		return sbx_session_command(loop, argv, NULL, err);
	char sock[4200], key[4200];
	sbx_session_opts so = {0};
	cli_service_path(sb, svc, "sock", sock, sizeof sock);
	cli_service_session_opts(sb, svc, &so, key, sizeof key);
	return sbx_session_connect(loop, sock, &so, err);
}

sbx_session *cli_connect(sbx_loop *loop, const char *target, cli_sandbox *sb, const char **svc_out)
{
	char name[128];
	snprintf(name, sizeof name, "%s", target);
	char *slash = strchr(name, '/');
	const char *svc = NULL;
	if (slash) {
		*slash = 0;
		svc = slash + 1;
	}
	if (cli_sandbox_load(name, sb) < 0) {
		cli_print_no_sandbox(name);
		return NULL;
	}
	int found = -1;
	for (int i = 0; i < sb->nservices; i++)
		if (!svc || strcmp(sb->services[i], svc) == 0)
			found = found < 0 ? i : found;
	if (found < 0) {
		cli_say(stderr, "sbx: sandbox '%s' has no service '%s'; its services:", name, svc);
		for (int i = 0; i < sb->nservices; i++)
			cli_say(stderr, "%s %s", i ? "," : "", sb->services[i]);
		cli_say(stderr, "\n");
		return NULL;
	}
	svc = sb->services[found];
	*svc_out = svc;
	if (!strcmp(sb->backend, "ec2"))
		return cli_ec2_connect(loop, sb);
	char k8s[4200];
	snprintf(k8s, sizeof k8s, "%s/k8s", sb->dir);
	if (access(k8s, F_OK) == 0)
		return cli_k8s_connect(loop, sb, svc);
	sbx_error err;
	sbx_session *s = cli_local_session(loop, sb, svc, &err);
	if (s && sbx_session_wait_ready(s, 10, &err) == 0)
		return s;
	if (s)
		sbx_session_close(s);
	char last[512];
	cli_last_log_line(sb, svc, last, sizeof last);
	if (!cli_service_pid(sb, svc))
		cli_say(stderr, "sbx: the agent of %s/%s is not running%s%s%s\n"
				"     recreate the sandbox: sbx down %s && sbx up %s\n",
			name, svc, last[0] ? " (its last words: \"" : "", last, last[0] ? "\")" : "", name, name);
	else
		cli_say(stderr, "sbx: cannot reach %s/%s: %s\n", name, svc, err.message);
	return NULL;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void cli_remove_tree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes a whole file through PATH.tmp and a rename, so a failure never
 * leaves a half-written file in place of a good one. */
int cli_write_file(const char *path, const char *data, size_t len, char *err, size_t err_len)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		snprintf(err, err_len, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	int ok = fwrite(data, 1, len, f) == len;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path) < 0) {
		snprintf(err, err_len, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}
