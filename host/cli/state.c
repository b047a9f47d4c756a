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

/* Appends name to out, growing it; 0, or -1 (out of memory). */
static int names_add(cli_names *out, const char *name, int *cap)
{
	if (out->n == *cap) {
		int ncap = *cap ? *cap * 2 : 64;
		char(*grown)[64] = realloc(out->name, (size_t)ncap * sizeof *grown);
		if (!grown)
			return -1;
		out->name = grown;
		*cap = ncap;
	}
	snprintf(out->name[out->n++], 64, "%.63s", name);
	return 0;
}

int cli_sandbox_names(cli_names *out)
{
	out->n = 0;
	out->name = NULL;
	DIR *d = opendir(cli_state_dir());
	if (!d)
		return 0;
	int cap = 0, rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		cli_sandbox sb;
		if (e->d_name[0] != '.' && cli_sandbox_load(e->d_name, &sb) == 0)
			rc = names_add(out, e->d_name, &cap);
	}
	closedir(d);
	if (rc < 0) {
		cli_say(stderr, "sbx: out of memory listing the sandboxes in %s\n", cli_state_dir());
		cli_names_free(out);
		return -1;
	}
	if (out->n)
		qsort(out->name, (size_t)out->n, sizeof *out->name, cmp_names);
	return 0;
}

void cli_names_free(cli_names *names)
{
	free(names->name);
	names->name = NULL;
	names->n = 0;
}

void cli_service_path(const cli_sandbox *sb, const char *svc, const char *what, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.%s", sb->dir, svc, what);
}

/* How many existing names an error message lists before "and N more". */
#define NAMES_IN_MESSAGE 20

void cli_print_no_sandbox(const char *name)
{
	cli_names names;
	cli_sandbox_names(&names);
	cli_say(stderr, "sbx: no sandbox named '%s'", name);
	if (names.n == 0) {
		cli_say(stderr, "; there are none (create one with: sbx up %s)\n", name);
		return;
	}
	cli_say(stderr, "; existing:");
	for (int i = 0; i < names.n && i < NAMES_IN_MESSAGE; i++)
		cli_say(stderr, "%s %s", i ? "," : "", names.name[i]);
	if (names.n > NAMES_IN_MESSAGE)
		cli_say(stderr, " and %d more (sbx ls)", names.n - NAMES_IN_MESSAGE);
	cli_say(stderr, " (create it with: sbx up %s)\n", name);
	cli_names_free(&names);
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

static int remove_errno; /* the first failure of the tree being removed */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT && !remove_errno)
		remove_errno = errno;
	return 0;
}

int cli_remove_tree(const char *path)
{
	struct stat st;
	remove_errno = 0;
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (lstat(path, &st) < 0 && errno == ENOENT)
		return 0;
	errno = remove_errno ? remove_errno : EBUSY;
	return -1;
}

/* The services file goes last: a sandbox whose state could not all be
 * removed stays listed, so that `sbx down NAME` can be retried. */
int cli_sandbox_remove(const cli_sandbox *sb)
{
	DIR *d = opendir(sb->dir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	int failed = 0, saved = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "services"))
			continue;
		char path[4400];
		snprintf(path, sizeof path, "%s/%s", sb->dir, e->d_name);
		if (cli_remove_tree(path) < 0 && !failed) {
			failed = 1;
			saved = errno;
		}
	}
	closedir(d);
	if (failed) {
		errno = saved;
		return -1;
	}
	return cli_remove_tree(sb->dir);
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
