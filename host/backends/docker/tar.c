/* tar.c — a directory as a ustar stream for `POST /build` (tar.h). */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/docker/tar.h"

#define MAX_PATTERNS 256

typedef struct tarbuf {
	char *p;
	size_t len, cap, max;
	char *patterns[MAX_PATTERNS];
	int npatterns;
	char *err;
	size_t err_len;
} tarbuf;

static int grow(tarbuf *t, size_t n)
{
	if (t->len + n > t->max) {
		snprintf(t->err, t->err_len, "the build context is larger than %zu MiB: list what the build does not "
					     "need in .dockerignore",
			 t->max >> 20);
		return -1;
	}
	if (t->len + n <= t->cap)
		return 0;
	size_t cap = t->cap ? t->cap : 1 << 16;
	while (cap < t->len + n)
		cap *= 2;
	char *p = realloc(t->p, cap);
	if (!p) {
		snprintf(t->err, t->err_len, "out of memory for the build context");
		return -1;
	}
	t->p = p;
	t->cap = cap;
	return 0;
}

static void octal(char *field, size_t width, unsigned long long v)
{
	snprintf(field, width, "%0*llo", (int)width - 1, v);
}

/* One 512-byte header; names longer than 100 bytes use the prefix field. */
static int header(tarbuf *t, const char *name, char type, unsigned mode, unsigned long long size, const char *link)
{
	size_t n = strlen(name);
	const char *cut = n > 100 ? strchr(name + (n - 100 > 0 ? n - 101 : 0), '/') : NULL;
	if ((n > 100 && (!cut || cut - name > 155)) || (link && strlen(link) > 100)) {
		snprintf(t->err, t->err_len, "build context: path too long for a tar header: %s", name);
		return -1;
	}
	if (grow(t, 512) < 0)
		return -1;
	char *h = t->p + t->len;
	memset(h, 0, 512);
	if (cut) {
		memcpy(h + 345, name, (size_t)(cut - name));
		memcpy(h, cut + 1, n - (size_t)(cut - name) - 1);
	} else {
		memcpy(h, name, n);
	}
	octal(h + 100, 8, mode & 07777);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, size);
	octal(h + 136, 12, 0);
	h[156] = type;
	if (link)
		memcpy(h + 157, link, strlen(link));
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	t->len += 512;
	return 0;
}

static int file_data(tarbuf *t, const char *path, unsigned long long size)
{
	size_t padded = (size + 511) / 512 * 512;
	if (grow(t, padded) < 0)
		return -1;
	FILE *f = fopen(path, "rb");
	size_t got = f ? fread(t->p + t->len, 1, size, f) : 0;
	if (f)
		fclose(f);
	if (got != size) {
		snprintf(t->err, t->err_len, "build context: cannot read %s%s%s", path, f ? "" : ": ", f ? "" : strerror(errno));
		return -1;
	}
	memset(t->p + t->len + size, 0, padded - size);
	t->len += padded;
	return 0;
}

/* Whether rel (or a directory leading to it) is ignored. */
static int ignored(const tarbuf *t, const char *rel)
{
	if (!strcmp(rel, "Dockerfile") || !strcmp(rel, ".dockerignore"))
		return 0;
	char prefix[4096];
	for (const char *p = rel;; p++) {
		if (*p && *p != '/')
			continue;
		snprintf(prefix, sizeof prefix, "%.*s", (int)(p - rel), rel);
		for (int i = 0; i < t->npatterns; i++)
			if (fnmatch(t->patterns[i], prefix, FNM_PATHNAME | FNM_PERIOD) == 0)
				return 1;
		if (!*p)
			return 0;
	}
}

static int add_tree(tarbuf *t, const char *dir, const char *rel)
{
	char path[4096];
	snprintf(path, sizeof path, "%s%s%s", dir, rel[0] ? "/" : "", rel);
	DIR *d = opendir(path);
	if (!d) {
		snprintf(t->err, t->err_len, "build context: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	int rc = 0;
	for (struct dirent *e; rc == 0 && (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char r[4096], full[8200];
		snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
		snprintf(full, sizeof full, "%s/%s", dir, r);
		struct stat st;
		if (ignored(t, r) || lstat(full, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			char name[4200];
			snprintf(name, sizeof name, "%s/", r);
			rc = header(t, name, '5', st.st_mode, 0, NULL);
			if (rc == 0)
				rc = add_tree(t, dir, r);
		} else if (S_ISREG(st.st_mode)) {
			rc = header(t, r, '0', st.st_mode, (unsigned long long)st.st_size, NULL);
			if (rc == 0)
				rc = file_data(t, full, (unsigned long long)st.st_size);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlink(full, target, sizeof target - 1);
			target[n > 0 ? n : 0] = 0;
			rc = header(t, r, '2', 0777, 0, target);
		} /* sockets, fifos, devices: not part of a build context */
	}
	closedir(d);
	return rc;
}

static int read_ignore(tarbuf *t, const char *dir)
{
	char path[4200], line[1024];
	snprintf(path, sizeof path, "%s/.dockerignore", dir);
	FILE *f = fopen(path, "r");
	int rc = 0;
	while (f && rc == 0 && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = 0;
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		size_t n = strlen(p);
		while (n && (p[n - 1] == ' ' || p[n - 1] == '/'))
			p[--n] = 0;
		if (!strncmp(p, "./", 2))
			p += 2;
		while (*p == '/')
			p++;
		if (!*p || *p == '#')
			continue;
		if (*p == '!' || strstr(p, "**")) {
			snprintf(t->err, t->err_len, "%s: '%s': sbx honours simple patterns only ('!' exceptions and "
						     "'**' are not supported): list the paths to leave out instead",
				 path, p);
			rc = -1;
		} else if (t->npatterns < MAX_PATTERNS) {
			t->patterns[t->npatterns++] = strdup(p);
		}
	}
	if (f)
		fclose(f);
	return rc;
}

int sbx_docker_tar_context(const char *dir, size_t max, char **out, size_t *len, char *err, size_t err_len)
{
	tarbuf t = {.max = max, .err = err, .err_len = err_len};
	int rc = read_ignore(&t, dir);
	if (rc == 0)
		rc = add_tree(&t, dir, "");
	if (rc == 0 && grow(&t, 1024) == 0) { /* the end: two zero blocks */
		memset(t.p + t.len, 0, 1024);
		t.len += 1024;
	} else {
		rc = -1;
	}
	for (int i = 0; i < t.npatterns; i++)
		free(t.patterns[i]);
	if (rc < 0) {
		free(t.p);
		return -1;
	}
	*out = t.p;
	*len = t.len;
	return 0;
}
