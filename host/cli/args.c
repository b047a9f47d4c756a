/* args.c — command-line values shared by the subcommands: sizes with
 * K/M/G suffixes, durations in seconds, and environment settings
 * ("-e K=V", "-e K", "--env-file F") in the forms docker accepts. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* "512m", "4g", "2GiB", "1.5K", "1073741824": bytes, or -1. "0" is 0. */
long long cli_parse_size(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !(v >= 0) || isinf(v))
		return -1;
	const char *units = "bkmgt";
	double mult = 1;
	if (*end) {
		const char *u = strchr(units, end[0] | 0x20);
		if (!u || !end[0])
			return -1;
		for (long i = 0; i < u - units; i++)
			mult *= 1024;
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
	}
	if (*end || v * mult > 9e18)
		return -1;
	return (long long)(v * mult);
}

/* A positive number of seconds sbx can honour (at most CLI_MAX_SECONDS):
 * 0 and *out set, or -1 (inf, nan, negative, zero, garbage, too large). */
int cli_parse_seconds(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > CLI_MAX_SECONDS)
		return -1;
	*out = v;
	return 0;
}

/* Adds one "K=V" (copied); "K" alone takes the host's value, and is
 * skipped when the host has none (as docker does). 0, or -1 with a
 * message on stderr. */
int cli_env_add(cli_env *e, const char *spec, const char *where)
{
	const char *eq = strchr(spec, '=');
	if (spec[0] == 0 || spec[0] == '=') {
		cli_say(stderr, "sbx: %s: '%s' is not NAME=VALUE or NAME\n", where, spec);
		return -1;
	}
	char *item;
	if (eq) {
		item = strdup(spec);
	} else {
		const char *v = getenv(spec);
		if (!v)
			return 0;
		size_t n = strlen(spec) + strlen(v) + 2;
		item = malloc(n);
		if (item)
			snprintf(item, n, "%s=%s", spec, v);
	}
	if (!item || e->n >= CLI_MAX_ENV) {
		cli_say(stderr, "sbx: %s: too many environment variables (at most %d)\n", where, CLI_MAX_ENV);
		free(item);
		return -1;
	}
	e->items[e->n++] = item;
	e->items[e->n] = NULL;
	return 0;
}

static void trim_newline(char *line)
{
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = 0;
}

/* An env file as docker reads one: a setting per line, "#" comments and
 * blank lines skipped, no quoting (the value is the rest of the line). */
int cli_env_file(cli_env *e, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		cli_say(stderr, "sbx: --env-file %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[65536];
	int rc = 0, lineno = 0;
	while (rc == 0 && fgets(line, sizeof line, f)) {
		lineno++;
		trim_newline(line);
		const char *p = line + strspn(line, " \t");
		if (*p == 0 || *p == '#')
			continue;
		char where[4200];
		snprintf(where, sizeof where, "--env-file %s line %d", path, lineno);
		rc = cli_env_add(e, p, where);
	}
	fclose(f);
	return rc;
}

void cli_env_free(cli_env *e)
{
	for (int i = 0; i < e->n; i++)
		free(e->items[i]);
	e->n = 0;
	e->items[0] = NULL;
}
