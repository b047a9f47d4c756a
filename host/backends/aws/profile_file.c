/* profile_file.c — reading the AWS shared files (profile_file.h): INI
 * sections and keys, a profile's keys across the credentials and config
 * files. credentials.c and role_profile.c both read profiles through it. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backends/aws/profile_file.h"

/* ----------------------------------------------------------- INI files */

char *aws_ini_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* Find key in section (the first occurrence); note whether the section exists. */
static int ini_scan(const char *path, const char *section, const char *key, char *out, size_t outlen,
		    int *has_section)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	char line[8192];
	int in = 0, found = 0;
	while (fgets(line, sizeof line, f)) {
		if (line[0] == ' ' || line[0] == '\t') /* a nested value (config file sub-sections) */
			continue;
		char *s = aws_ini_trim(line);
		if (*s == '#' || *s == ';' || *s == 0)
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			if (!end)
				continue;
			*end = 0;
			in = strcmp(aws_ini_trim(s + 1), section) == 0;
			if (in && has_section)
				*has_section = 1;
			continue;
		}
		if (!in || !key)
			continue;
		char *eq = strchr(s, '=');
		if (!eq)
			continue;
		*eq = 0;
		if (strcmp(aws_ini_trim(s), key) == 0) {
			snprintf(out, outlen, "%s", aws_ini_trim(eq + 1));
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

int aws_ini_get(const char *path, const char *section, const char *key, char *out, size_t outlen)
{
	return ini_scan(path, section, key, out, outlen, NULL);
}

int aws_ini_has_section(const char *path, const char *section)
{
	int has = 0;
	ini_scan(path, section, NULL, NULL, 0, &has);
	return has;
}

void aws_profile_section(const char *profile, char *out, size_t outlen)
{
	if (strcmp(profile, "default") == 0)
		snprintf(out, outlen, "default");
	else
		snprintf(out, outlen, "profile %s", profile);
}

int aws_profile_get(const char *cred_file, const char *config_file, const char *profile, const char *key, char *out,
		    size_t outlen)
{
	if (aws_ini_get(cred_file, profile, key, out, outlen) == 1)
		return 1;
	char section[300];
	aws_profile_section(profile, section, sizeof section);
	return aws_ini_get(config_file, section, key, out, outlen) == 1;
}

int aws_profile_exists(const char *cred_file, const char *config_file, const char *profile)
{
	char section[300];
	aws_profile_section(profile, section, sizeof section);
	return aws_ini_has_section(cred_file, profile) || aws_ini_has_section(config_file, section);
}
