/* role_profile.c — assume-role and IAM Identity Center (SSO) profiles:
 * their settings, the source_profile chain's checks, the SSO token cache
 * (see role_profile.h). */
#include "net/crypto_lib.h"
#include "backends/aws/profile_file.h"
#include "backends/aws/role_profile.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/aws/text.h"

#define SSO_CACHE_MAX (1024 * 1024)

typedef struct files {
	const char *cred, *config;
} files;

static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static int get(const files *f, const char *profile, const char *key, char *out, size_t n)
{
	out[0] = 0;
	return aws_profile_get(f->cred, f->config, profile, key, out, n) == 1 && out[0];
}

static int has(const files *f, const char *profile, const char *key)
{
	char v[1024];
	return get(f, profile, key, v, sizeof v);
}

/* ------------------------------------------------------- the role chain */

static int credential_source_ok(const char *cs)
{
	return strcmp(cs, "Environment") == 0 || strcmp(cs, "Ec2InstanceMetadata") == 0 ||
	       strcmp(cs, "EcsContainer") == 0;
}

static int refuse_mfa(const files *f, const char *profile, char *why, size_t whylen)
{
	char mfa[256];
	if (!get(f, profile, "mfa_serial", mfa, sizeof mfa))
		return 0;
	return fail(why, whylen,
		    "AWS profile '%s' has mfa_serial (%s): sbx cannot ask for an MFA code. Get temporary "
		    "credentials first (aws configure export-credentials --profile %s --format env, or aws sts "
		    "get-session-token) and put them in the environment, or use a profile without mfa_serial",
		    profile, mfa, profile);
}

/* "a -> b -> a", for a loop's message. */
static void chain_text(char (*hops)[256], int n, const char *last, char *out, size_t outlen)
{
	size_t used = 0;
	out[0] = 0;
	for (int i = 0; i < n && used < outlen; i++)
		used += (size_t)snprintf(out + used, outlen - used, "%s -> ", hops[i]);
	if (used < outlen)
		snprintf(out + used, outlen - used, "%s", last);
}

/* From profile along source_profile: every hop exists, none has
 * mfa_serial, and the walk ends (keys, credential_source, or a profile
 * that gets credentials another way) without coming back. */
static int check_chain(const files *f, const char *first, char *why, size_t whylen)
{
	char hops[AWS_ROLE_CHAIN_MAX][256];
	int n = 0;
	char cur[256];
	snprintf(cur, sizeof cur, "%s", first);
	for (;;) {
		if (refuse_mfa(f, cur, why, whylen) < 0)
			return -1;
		char src[256], cs[64];
		get(f, cur, "source_profile", src, sizeof src);
		get(f, cur, "credential_source", cs, sizeof cs);
		if (*src && *cs)
			return fail(why, whylen, "AWS profile '%s' has both source_profile and credential_source: keep one",
				    cur);
		if (!*src && !*cs)
			return fail(why, whylen,
				    "AWS profile '%s' has role_arn but no source_profile, credential_source or "
				    "web_identity_token_file: say where the credentials that assume the role come from",
				    cur);
		if (*cs) {
			if (!credential_source_ok(cs))
				return fail(why, whylen,
					    "AWS profile '%s': credential_source '%s' is not Environment, "
					    "Ec2InstanceMetadata or EcsContainer",
					    cur, cs);
			return 0;
		}
		if (n == AWS_ROLE_CHAIN_MAX)
			return fail(why, whylen, "AWS profile '%s': more than %d source_profile hops", first,
				    AWS_ROLE_CHAIN_MAX);
		snprintf(hops[n++], sizeof hops[0], "%s", cur);
		if (strcmp(src, cur) == 0) {
			if (has(f, cur, "aws_access_key_id"))
				return 0; /* the profile's own keys assume its role */
			return fail(why, whylen, "AWS profile '%s' names itself as source_profile but has no keys", cur);
		}
		for (int i = 0; i < n; i++)
			if (strcmp(hops[i], src) == 0) {
				char text[1200];
				chain_text(hops, n, src, text, sizeof text);
				return fail(why, whylen, "AWS profiles form an assume-role loop: %s (source_profile)", text);
			}
		if (!aws_profile_exists(f->cred, f->config, src))
			return fail(why, whylen, "AWS profile '%s' names source_profile '%s', which is in neither %s nor %s",
				    cur, src, f->cred, f->config);
		if (has(f, src, "aws_access_key_id") || !has(f, src, "role_arn") ||
		    has(f, src, "web_identity_token_file"))
			return 0; /* keys, or credentials another way (process, SSO, web identity) */
		snprintf(cur, sizeof cur, "%s", src);
	}
}

static int parse_duration(const char *profile, const char *text, unsigned *out, char *why, size_t whylen)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < 900 || v > 43200)
		return fail(why, whylen,
			    "AWS profile '%s': duration_seconds '%s' is not a number of seconds from 900 to 43200", profile,
			    text);
	*out = (unsigned)v;
	return 0;
}

static int assume_role_plan(const files *f, const char *profile, const char *role_arn, aws_remote_plan *p,
			    char *why, size_t whylen)
{
	if (check_chain(f, profile, why, whylen) < 0)
		return -1;
	p->kind = AWS_REMOTE_ASSUME_ROLE;
	snprintf(p->profile, sizeof p->profile, "%s", profile);
	snprintf(p->role_arn, sizeof p->role_arn, "%s", role_arn);
	get(f, profile, "source_profile", p->source_profile, sizeof p->source_profile);
	get(f, profile, "credential_source", p->credential_source, sizeof p->credential_source);
	get(f, profile, "external_id", p->external_id, sizeof p->external_id);
	if (!get(f, profile, "role_session_name", p->role_session_name, sizeof p->role_session_name))
		snprintf(p->role_session_name, sizeof p->role_session_name, "sbx-%ld", (long)time(NULL));
	char dur[64];
	if (get(f, profile, "duration_seconds", dur, sizeof dur) &&
	    parse_duration(profile, dur, &p->duration_s, why, whylen) < 0)
		return -1;
	return 1;
}

/* ----------------------------------------------------------------- SSO */

void aws_sso_cache_path(const char *key, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
	if (sbx_crypto()->digest(key, strlen(key), md, &mdlen, sbx_crypto()->sha1(), NULL) == 1)
		for (unsigned i = 0; i < mdlen; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
	const char *home = getenv("HOME");
	snprintf(out, outlen, "%s/.aws/sso/cache/%s.json", home ? home : "", hex);
}

static int read_small(const char *path, char **out, size_t *outn)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return -1;
	char *buf = malloc(SSO_CACHE_MAX + 1);
	size_t n = buf ? fread(buf, 1, SSO_CACHE_MAX, fp) : 0;
	fclose(fp);
	if (!buf)
		return -1;
	buf[n] = 0;
	*out = buf;
	*outn = n;
	return 0;
}

/* The cached token: present, well formed, not expired. */
static int sso_token(const char *profile, const char *key, aws_remote_plan *p, char *why, size_t whylen)
{
	char path[1200];
	aws_sso_cache_path(key, path, sizeof path);
	char *text = NULL;
	size_t n = 0;
	if (read_small(path, &text, &n) < 0)
		return fail(why, whylen, "AWS profile '%s' uses IAM Identity Center (SSO) but there is no cached token "
					 "(%s: %s): run aws sso login --profile %s",
			    profile, path, strerror(errno), profile);
	json_t *o = json_loadb(text, n, 0, NULL);
	free(text);
	json_t *tok = json_object_get(o, "accessToken"), *exp = json_object_get(o, "expiresAt");
	time_t expires = 0;
	int rc = -1;
	if (!json_is_string(tok) || !json_is_string(exp) ||
	    aws_parse_iso8601(json_string_value(exp), &expires) < 0)
		fail(why, whylen, "the cached SSO token %s has no accessToken or expiresAt: run aws sso login --profile %s",
		     path, profile);
	else if (time(NULL) >= expires)
		fail(why, whylen, "the SSO token of AWS profile '%s' expired at %s: run aws sso login --profile %s",
		     profile, json_string_value(exp), profile);
	else if (strlen(json_string_value(tok)) >= sizeof p->sso_token || strpbrk(json_string_value(tok), "\r\n"))
		fail(why, whylen, "the cached SSO token %s is too long or has a line break: run aws sso login --profile %s",
		     path, profile);
	else {
		snprintf(p->sso_token, sizeof p->sso_token, "%s", json_string_value(tok));
		rc = 0;
	}
	json_decref(o);
	return rc;
}

static int sso_plan(const files *f, const char *profile, aws_remote_plan *p, char *why, size_t whylen)
{
	char session[256], start[1024], region[64];
	int has_session = get(f, profile, "sso_session", session, sizeof session);
	if (has_session) {
		char section[300];
		snprintf(section, sizeof section, "sso-session %s", session);
		if (!aws_ini_has_section(f->config, section))
			return fail(why, whylen, "AWS profile '%s' names sso_session '%s' but %s has no [%s] section",
				    profile, session, f->config, section);
		start[0] = region[0] = 0;
		aws_ini_get(f->config, section, "sso_start_url", start, sizeof start);
		aws_ini_get(f->config, section, "sso_region", region, sizeof region);
	} else if (get(f, profile, "sso_start_url", start, sizeof start)) {
		get(f, profile, "sso_region", region, sizeof region);
	} else {
		return 0;
	}
	p->kind = AWS_REMOTE_SSO;
	snprintf(p->profile, sizeof p->profile, "%s", profile);
	snprintf(p->sso_region, sizeof p->sso_region, "%s", region);
	get(f, profile, "sso_account_id", p->sso_account_id, sizeof p->sso_account_id);
	get(f, profile, "sso_role_name", p->sso_role_name, sizeof p->sso_role_name);
	const char *missing = !*region ? "sso_region" : !*p->sso_account_id ? "sso_account_id"
						      : !*p->sso_role_name   ? "sso_role_name"
									     : NULL;
	if (missing)
		return fail(why, whylen, "AWS profile '%s' uses IAM Identity Center (SSO) but has no %s%s", profile,
			    missing, has_session ? " (in the profile or its [sso-session] section)" : "");
	if (sso_token(profile, has_session ? session : start, p, why, whylen) < 0)
		return -1;
	return 1;
}

/* -------------------------------------------------------------- public */

int aws_role_profile_plan(const char *cred_file, const char *config_file, const char *profile,
			  aws_remote_plan *plan, char *why, size_t whylen)
{
	files f = {cred_file, config_file};
	char role_arn[512];
	if (get(&f, profile, "role_arn", role_arn, sizeof role_arn)) {
		if (has(&f, profile, "web_identity_token_file"))
			return 0; /* web identity: credentials.c */
		return assume_role_plan(&f, profile, role_arn, plan, why, whylen);
	}
	return sso_plan(&f, profile, plan, why, whylen);
}
