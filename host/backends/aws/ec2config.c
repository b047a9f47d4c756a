/* ec2config.c — reading and checking the EC2 backend's settings (see
 * ec2config.h). Names are matched case-insensitively in the environment
 * and the .env file, as pydantic-settings does for the Inspect sandbox. */
#include "backends/aws/ec2config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ------------------------------------------------------------ .env file */

#define DOTENV_MAX 64

typedef struct dotenv {
	char *key[DOTENV_MAX];
	char *value[DOTENV_MAX];
	size_t n;
} dotenv;

static char *strip(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* KEY=VALUE lines, "export " allowed, '#' comments, values optionally in
 * single or double quotes. Only our prefix's keys are kept. */
static void dotenv_load(dotenv *d, const char *path)
{
	d->n = 0;
	FILE *f = path && *path ? fopen(path, "r") : NULL;
	if (!f)
		return;
	char line[4096];
	while (fgets(line, sizeof line, f) && d->n < DOTENV_MAX) {
		char *s = strip(line);
		if (*s == '#' || !*s)
			continue;
		if (strncmp(s, "export ", 7) == 0)
			s = strip(s + 7);
		char *eq = strchr(s, '=');
		if (!eq)
			continue;
		*eq = 0;
		char *k = strip(s), *v = strip(eq + 1);
		size_t vl = strlen(v);
		if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
			v[vl - 1] = 0;
			v++;
		} else {
			char *hash = strstr(v, " #");
			if (hash)
				*strip(hash) = 0, v = strip(v);
		}
		if (strncasecmp(k, SBX_EC2_ENV_PREFIX, strlen(SBX_EC2_ENV_PREFIX)) != 0)
			continue;
		d->key[d->n] = strdup(k);
		d->value[d->n] = strdup(v);
		if (!d->key[d->n] || !d->value[d->n]) {
			free(d->key[d->n]);
			free(d->value[d->n]);
			break;
		}
		d->n++;
	}
	fclose(f);
}

static void dotenv_free(dotenv *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->key[i]);
		free(d->value[i]);
	}
	d->n = 0;
}

/* ------------------------------------------------------------- lookups */

typedef struct source {
	const dotenv *dot;
	char where[160]; /* where the last value came from, for errors */
} source;

/* The environment's value of PREFIX+name (any case), else the .env's. */
static const char *lookup(source *src, const char *name)
{
	char full[96];
	snprintf(full, sizeof full, SBX_EC2_ENV_PREFIX "%s", name);
	const char *v = getenv(full);
	if (!v) {
		size_t fl = strlen(full);
		for (char **e = environ; e && *e; e++)
			if (strncasecmp(*e, full, fl) == 0 && (*e)[fl] == '=') {
				v = *e + fl + 1;
				break;
			}
	}
	if (v) {
		snprintf(src->where, sizeof src->where, "environment variable %s", full);
		return v;
	}
	for (size_t i = 0; i < src->dot->n; i++)
		if (strcasecmp(src->dot->key[i], full) == 0) {
			snprintf(src->where, sizeof src->where, "%s in the .env file", full);
			return src->dot->value[i];
		}
	return NULL;
}

/* code, else environment / .env. Empty strings count as not set, as they
 * do for the Inspect sandbox's required settings. */
static const char *pick(source *src, const char *code, const char *name)
{
	if (code) {
		snprintf(src->where, sizeof src->where, "setting %s (given in code)", name);
		return *code ? code : NULL;
	}
	const char *v = lookup(src, name);
	return v && *v ? v : NULL;
}

static int put(char *dst, size_t cap, const char *v, const char *where, char *why, size_t whylen)
{
	if (strlen(v) >= cap)
		return fail(why, whylen, "%s is %zu characters long; at most %zu are allowed", where, strlen(v),
			    cap - 1);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* ---------------------------------------------------------- validators */

/* "vpc-", "sg-", "subnet-", "ami-" followed by hex digits. */
static int aws_id_ok(const char *v, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (strncmp(v, prefix, pl) != 0 || !v[pl])
		return 0;
	for (const char *s = v + pl; *s; s++)
		if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
			return 0;
	return 1;
}

static int charset_ok(const char *v, const char *extra)
{
	for (const char *s = v; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && !strchr(extra, *s))
			return 0;
	return *v != 0;
}

static int bucket_ok(const char *v)
{
	size_t n = strlen(v);
	return n >= 3 && n <= 63 && charset_ok(v, ".-") && isalnum((unsigned char)v[0]) &&
	       isalnum((unsigned char)v[n - 1]);
}

static int instance_type_ok(const char *v)
{
	const char *dot = strchr(v, '.');
	return dot && dot != v && dot[1] && charset_ok(v, ".-");
}

static int profile_name_ok(const char *v)
{
	/* IAM names: alphanumerics and +=,.@-_ ; a full ARN is not accepted here. */
	for (const char *s = v; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("+=,.@-_", *s))
			return 0;
	return *v != 0;
}

static int parse_seconds(const char *v, unsigned min, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || n < min || n > 86400 * 7)
		return -1;
	*out = (unsigned)n;
	return 0;
}

int sbx_ec2_parse_tags(const char *s, sbx_ec2_tag *tags, size_t max, size_t *n, char *why, size_t whylen)
{
	*n = 0;
	if (!s || !*s)
		return 0;
	const char *p = s;
	for (;;) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		if (!eq || memchr(eq + 1, '=', len - (size_t)(eq - p) - 1))
			return fail(why, whylen,
				    "extra tags must be in the format 'key1=value1;key2=value2', but part '%.*s' of "
				    "'%.200s' has %s '='",
				    (int)(len > 100 ? 100 : len), p, s, eq ? "more than one" : "no");
		size_t kl = (size_t)(eq - p), vl = len - kl - 1;
		if (kl == 0)
			return fail(why, whylen, "extra tag '%.*s' in '%.200s' has an empty key",
				    (int)(len > 100 ? 100 : len), p, s);
		if (kl > 128 || vl > 256)
			return fail(why, whylen, "extra tag '%.40s...' is too long (AWS allows keys of 128 and "
						 "values of 256 characters)", p);
		if (kl >= 4 && strncasecmp(p, "aws:", 4) == 0)
			return fail(why, whylen, "extra tag key '%.*s' uses the reserved prefix 'aws:'", (int)kl, p);
		if (*n == max)
			return fail(why, whylen, "more than %zu extra tags (AWS allows 50 tags per instance, and sbx "
						 "adds its own)", max);
		memcpy(tags[*n].key, p, kl);
		tags[*n].key[kl] = 0;
		memcpy(tags[*n].value, eq + 1, vl);
		tags[*n].value[vl] = 0;
		(*n)++;
		if (!end)
			return 0;
		p = end + 1;
	}
}

/* ---------------------------------------------------------------- load */

typedef struct required {
	const char *name;
	const char *code;
	char *dst;
	size_t cap;
} required;

static int load_timeout(source *src, unsigned code, const char *name, unsigned def, unsigned min,
			unsigned *out, char *why, size_t whylen)
{
	if (code) {
		*out = code;
		return 0;
	}
	const char *v = pick(src, NULL, name);
	if (!v) {
		*out = def;
		return 0;
	}
	if (parse_seconds(v, min, out) < 0)
		return fail(why, whylen, "%s is '%.40s'; expected a whole number %s%u to 604800", src->where, v,
			    strstr(name, "_MS") ? "of milliseconds, "
			    : strstr(name, "RETRIES") || strstr(name, "TRIES") ? "" : "of seconds, ", min);
	return 0;
}

/* A yes/no setting: code (1 yes, -1 no) wins; else true/1/yes or false/0/no. */
static int load_flag(source *src, int code, const char *name, int *out, char *why, size_t whylen)
{
	if (code) {
		*out = code > 0;
		return 0;
	}
	const char *v = pick(src, NULL, name);
	*out = 0;
	if (!v)
		return 0;
	if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
		*out = 1;
	else if (strcasecmp(v, "false") && strcmp(v, "0") && strcasecmp(v, "no") && *v)
		return fail(why, whylen, "%s is '%.40s'; expected true or false", src->where, v);
	return 0;
}

static int load(const sbx_ec2_settings *c, source *src, sbx_ec2_config *out, char *why, size_t whylen)
{
	required req[] = {
		{"REGION", c->region, out->region, sizeof out->region},
		{"VPC_ID", c->vpc_id, out->vpc_id, sizeof out->vpc_id},
		{"SECURITY_GROUP_ID", c->security_group_id, out->security_group_id, sizeof out->security_group_id},
		{"SUBNET_ID", c->subnet_id, out->subnet_id, sizeof out->subnet_id},
		{"INSTANCE_PROFILE", c->instance_profile, out->instance_profile, sizeof out->instance_profile},
		{"S3_BUCKET", c->s3_bucket, out->s3_bucket, sizeof out->s3_bucket},
	};
	char missing[512] = "";
	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
		const char *v = pick(src, req[i].code, req[i].name);
		if (!v && strcmp(req[i].name, "REGION") == 0 && getenv("AWS_REGION") && *getenv("AWS_REGION")) {
			v = getenv("AWS_REGION");
			snprintf(src->where, sizeof src->where, "environment variable AWS_REGION");
		}
		if (!v) {
			size_t l = strlen(missing);
			snprintf(missing + l, sizeof missing - l, "%s" SBX_EC2_ENV_PREFIX "%s%s", l ? ", " : "",
				 req[i].name, strcmp(req[i].name, "REGION") == 0 ? " (or AWS_REGION)" : "");
			continue;
		}
		if (put(req[i].dst, req[i].cap, v, src->where, why, whylen) < 0)
			return -1;
	}
	if (*missing)
		return fail(why, whylen, "missing EC2 sandbox settings: %s. Set them in the environment, a .env "
					 "file, or in code", missing);

	if (!charset_ok(out->region, "-"))
		return fail(why, whylen, "region '%s' is not an AWS region name (e.g. eu-west-2)", out->region);
	if (!aws_id_ok(out->vpc_id, "vpc-"))
		return fail(why, whylen, "VPC_ID '%s' is not a VPC id (vpc- followed by hex digits)", out->vpc_id);
	if (!aws_id_ok(out->security_group_id, "sg-"))
		return fail(why, whylen, "SECURITY_GROUP_ID '%s' is not a security group id (sg- followed by hex "
					 "digits)", out->security_group_id);
	if (!aws_id_ok(out->subnet_id, "subnet-"))
		return fail(why, whylen, "SUBNET_ID '%s' is not a subnet id (subnet- followed by hex digits)",
			    out->subnet_id);
	if (!profile_name_ok(out->instance_profile))
		return fail(why, whylen, "INSTANCE_PROFILE '%s' is not an instance profile name (letters, digits "
					 "and +=,.@-_; give the name, not the ARN)", out->instance_profile);
	if (!bucket_ok(out->s3_bucket))
		return fail(why, whylen, "S3_BUCKET '%s' is not an S3 bucket name (3-63 lowercase letters, "
					 "digits, dots and hyphens)", out->s3_bucket);

	const char *v = pick(src, c->ami_id, "AMI_ID");
	if (v && (put(out->ami_id, sizeof out->ami_id, v, src->where, why, whylen) < 0 ||
		  !aws_id_ok(out->ami_id, "ami-")))
		return fail(why, whylen, "AMI_ID '%.40s' is not an AMI id (ami- followed by hex digits)", v);
	v = pick(src, c->instance_type, "INSTANCE_TYPE");
	snprintf(out->instance_type, sizeof out->instance_type, "%s", SBX_EC2_DEFAULT_INSTANCE_TYPE);
	if (v && (put(out->instance_type, sizeof out->instance_type, v, src->where, why, whylen) < 0 ||
		  !instance_type_ok(out->instance_type)))
		return fail(why, whylen, "INSTANCE_TYPE '%.40s' is not an instance type (e.g. t3a.small)", v);
	v = pick(src, c->s3_key_prefix, "S3_KEY_PREFIX");
	if (v && put(out->s3_key_prefix, sizeof out->s3_key_prefix, v, src->where, why, whylen) < 0)
		return -1;
	if (out->s3_key_prefix[0] == '/')
		return fail(why, whylen, "S3 key prefix '%s' must not start with a '/'", out->s3_key_prefix);

	if (c->extra_tags) {
		if (c->n_extra_tags > SBX_EC2_MAX_EXTRA_TAGS)
			return fail(why, whylen, "more than %d extra tags", SBX_EC2_MAX_EXTRA_TAGS);
		memcpy(out->extra_tags, c->extra_tags, c->n_extra_tags * sizeof c->extra_tags[0]);
		out->n_extra_tags = c->n_extra_tags;
	} else if ((v = pick(src, c->extra_tags_str, "EXTRA_TAGS_STR")) &&
		   sbx_ec2_parse_tags(v, out->extra_tags, SBX_EC2_MAX_EXTRA_TAGS, &out->n_extra_tags, why,
				      whylen) < 0) {
		return -1;
	}

	out->volume_size_gib = c->volume_size_gib;
	if (!c->volume_size_gib && (v = pick(src, NULL, "VOLUME_SIZE")) &&
	    (parse_seconds(v, 1, &out->volume_size_gib) < 0 || out->volume_size_gib > 16384))
		return fail(why, whylen, "VOLUME_SIZE '%.40s' is not a size in GiB (1 to 16384)", v);

	if (load_flag(src, c->allow_metadata, "ALLOW_METADATA", &out->allow_metadata, why, whylen) < 0)
		return -1;

	if (load_timeout(src, c->launch_timeout_s, "LAUNCH_TIMEOUT", 300, 1, &out->launch_timeout_s, why,
			 whylen) < 0 ||
	    load_timeout(src, c->online_timeout_s, "ONLINE_TIMEOUT", 600, 1, &out->online_timeout_s, why,
			 whylen) < 0 ||
	    load_timeout(src, c->api_timeout_s, "API_TIMEOUT", 30, 1, &out->api_timeout_s, why, whylen) < 0 ||
	    load_timeout(src, c->session_timeout_s, "SESSION_TIMEOUT", 30, 1, &out->session_timeout_s, why,
			 whylen) < 0 ||
	    load_timeout(src, c->terminate_timeout_s, "TERMINATE_TIMEOUT", 120, 1, &out->terminate_timeout_s,
			 why, whylen) < 0 ||
	    load_timeout(src, c->resume_tries, "RESUME_TRIES", 3, 1, &out->resume_tries, why, whylen) < 0 ||
	    load_timeout(src, c->reopen_tries, "REOPEN_TRIES", 5, 1, &out->reopen_tries, why, whylen) < 0 ||
	    load_timeout(src, c->reopen_backoff_ms, "REOPEN_BACKOFF_MS", 200, 1, &out->reopen_backoff_ms, why,
			 whylen) < 0)
		return -1;
	if (c->api_retries_set)
		out->api_retries = c->api_retries;
	else if (load_timeout(src, 0, "API_RETRIES", 8, 0, &out->api_retries, why, whylen) < 0)
		return -1;
	return 0;
}

int sbx_ec2_config_load(const sbx_ec2_settings *code, sbx_ec2_config *out, char *why, size_t whylen)
{
	static const sbx_ec2_settings none;
	const sbx_ec2_settings *c = code ? code : &none;
	memset(out, 0, sizeof *out);
	dotenv dot;
	dotenv_load(&dot, c->dotenv_path ? c->dotenv_path : ".env");
	source src = {&dot, ""};
	int rc = load(c, &src, out, why, whylen);
	dotenv_free(&dot);
	return rc;
}
