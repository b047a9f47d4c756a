/* profile_file.h — reading the AWS shared credentials and config files
 * (profile_file.c). */
#ifndef SBX_AWS_PROFILE_FILE_H
#define SBX_AWS_PROFILE_FILE_H

#include <stddef.h>

/* A key of a profile: the credentials file's [NAME], then the config
 * file's [profile NAME] ([default] for default). 1 found, 0 not. */
int aws_profile_get(const char *cred_file, const char *config_file, const char *profile, const char *key, char *out,
		    size_t outlen);
/* 1 when either file has the profile's section. */
int aws_profile_exists(const char *cred_file, const char *config_file, const char *profile);

/* An INI-style shared file: the value of key in section (config files
 * name sections "profile NAME", except "default"). 1 found, 0 not, -1 the
 * file exists but cannot be read. */
int aws_ini_get(const char *path, const char *section, const char *key, char *out, size_t outlen);
/* 1 when the file has the section, 0 when not (or no file). */
int aws_ini_has_section(const char *path, const char *section);
/* A profile's section name in the config file: "default" or "profile NAME". */
void aws_profile_section(const char *profile, char *out, size_t outlen);
/* s without leading and trailing white space (cut in place). */
char *aws_ini_trim(char *s);

#endif
