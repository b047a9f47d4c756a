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
 * directory) instead of SVC.box/. A `backend` file names the sandbox's
 * backend (backend.h: "k8s", "ec2", "docker"; "local" when absent); what
 * each service's files mean is its backend's business: this file knows
 * no backend. */
#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

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
