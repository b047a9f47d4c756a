/* credentials.c — the local credential sources (environment, shared
 * files, credential_process) and parsers of what the remote ones return
 * (see credentials.h). */
#include "backends/aws/credentials.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/aws/role_profile.h"
#include "backends/aws/xml.h"

#define PROCESS_OUTPUT_MAX (64 * 1024)

static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static int copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* ------------------------------------------------------------- helpers */

typedef struct where {
	char profile[256];
	char cred_file[1024];
	char config_file[1024];
	char config_section[300]; /* "default" or "profile NAME" */
} where;

static void locate(const aws_creds_opts *o, where *w)
{
	const char *home = env("HOME");
	snprintf(w->profile, sizeof w->profile, "%s",
		 o && o->profile ? o->profile : env("AWS_PROFILE") ? env("AWS_PROFILE") : "default");
	if (o && o->credentials_file)
		snprintf(w->cred_file, sizeof w->cred_file, "%s", o->credentials_file);
	else if (env("AWS_SHARED_CREDENTIALS_FILE"))
		snprintf(w->cred_file, sizeof w->cred_file, "%s", env("AWS_SHARED_CREDENTIALS_FILE"));
	else
		snprintf(w->cred_file, sizeof w->cred_file, "%s/.aws/credentials", home ? home : "");
	if (o && o->config_file)
		snprintf(w->config_file, sizeof w->config_file, "%s", o->config_file);
	else if (env("AWS_CONFIG_FILE"))
		snprintf(w->config_file, sizeof w->config_file, "%s", env("AWS_CONFIG_FILE"));
	else
		snprintf(w->config_file, sizeof w->config_file, "%s/.aws/config", home ? home : "");
	aws_profile_section(w->profile, w->config_section, sizeof w->config_section);
}

/* A key of the profile: the credentials file first, then the config file. */
static int profile_get(const where *w, const char *key, char *out, size_t outlen)
{
	return aws_profile_get(w->cred_file, w->config_file, w->profile, key, out, outlen);
}

void aws_profile_region(const aws_creds_opts *o, char *out, size_t outlen)
{
	const char *r = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
	if (r) {
		snprintf(out, outlen, "%s", r);
		return;
	}
	where w;
	locate(o, &w);
	if (aws_ini_get(w.config_file, w.config_section, "region", out, outlen) != 1)
		snprintf(out, outlen, "%s", "");
}

int aws_creds_stale(const aws_credentials *c, time_t now, unsigned margin_s)
{
	if (!c->access_key_id[0])
		return 1;
	return c->expiration != 0 && now + (time_t)margin_s >= c->expiration;
}

aws_keys aws_creds_keys(const aws_credentials *c)
{
	return (aws_keys){c->access_key_id, c->secret_access_key, c->session_token[0] ? c->session_token : NULL};
}

static int set_keys(aws_credentials *out, const char *akid, const char *secret, const char *token,
		    const char *source, char *why, size_t whylen)
{
	memset(out, 0, sizeof *out);
	if (copy(out->access_key_id, sizeof out->access_key_id, akid) < 0 ||
	    copy(out->secret_access_key, sizeof out->secret_access_key, secret) < 0 ||
	    copy(out->session_token, sizeof out->session_token, token ? token : "") < 0)
		return fail(why, whylen, "credentials from %s are longer than AWS issues", source);
	snprintf(out->source, sizeof out->source, "%s", source);
	return 0;
}

/* ------------------------------------------------------------- parsers */

static const char *json_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int parse_json_creds(const char *json, size_t n, const char *what, const char *token_key, int need_version,
			    aws_credentials *out, char *why, size_t whylen)
{
	json_error_t err;
	json_t *o = json_loadb(json, n, JSON_REJECT_DUPLICATES, &err);
	if (!o)
		return fail(why, whylen, "%s did not print JSON: %s (line %d)", what, err.text, err.line);
	int rc = -1;
	if (!json_is_object(o)) {
		fail(why, whylen, "%s printed JSON that is not an object", what);
		goto out;
	}
	if (need_version) {
		json_t *v = json_object_get(o, "Version");
		if (!json_is_integer(v) || json_integer_value(v) != 1) {
			fail(why, whylen, "%s must print \"Version\": 1", what);
			goto out;
		}
	}
	const char *code = json_str(o, "Code");
	if (code && strcmp(code, "Success") != 0) {
		const char *m = json_str(o, "Message");
		fail(why, whylen, "%s answered %s: %s", what, code, m ? m : "");
		goto out;
	}
	const char *akid = json_str(o, "AccessKeyId"), *secret = json_str(o, "SecretAccessKey");
	if (!akid || !*akid || !secret || !*secret) {
		fail(why, whylen, "%s gave no AccessKeyId and SecretAccessKey", what);
		goto out;
	}
	if (set_keys(out, akid, secret, json_str(o, token_key), what, why, whylen) < 0)
		goto out;
	json_t *exp = json_object_get(o, "Expiration");
	if (exp && !json_is_null(exp)) {
		if (!json_is_string(exp) || aws_parse_iso8601(json_string_value(exp), &out->expiration) < 0) {
			fail(why, whylen, "%s gave an Expiration that is not an ISO 8601 UTC time", what);
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

int aws_parse_process_json(const char *json, size_t n, aws_credentials *out, char *why, size_t whylen)
{
	return parse_json_creds(json, n, "credential_process", "SessionToken", 1, out, why, whylen);
}

int aws_parse_role_json(const char *json, size_t n, aws_credentials *out, char *why, size_t whylen)
{
	return parse_json_creds(json, n, "the credentials endpoint", "Token", 0, out, why, whylen);
}

/* STS's answer to action (AssumeRole, AssumeRoleWithWebIdentity). */
static int parse_sts(const char *xml, size_t n, const char *action, const char *source, aws_credentials *out,
		     char *why, size_t whylen)
{
	char xwhy[200];
	aws_xml *root = aws_xml_parse(xml, n, xwhy, sizeof xwhy);
	if (!root)
		return fail(why, whylen, "STS answered with bad XML: %s", xwhy);
	int rc = -1;
	char code[128], msg[512], path[128];
	if (aws_xml_error(root, code, sizeof code, msg, sizeof msg)) {
		fail(why, whylen, "STS %s failed: %s: %s", action, code, msg);
		goto out;
	}
	snprintf(path, sizeof path, "%sResult/Credentials", action);
	const aws_xml *c = aws_xml_find(root, path);
	const char *akid = c ? aws_xml_text(c, "AccessKeyId") : NULL;
	const char *secret = c ? aws_xml_text(c, "SecretAccessKey") : NULL;
	const char *exp = c ? aws_xml_text(c, "Expiration") : NULL;
	if (!akid || !*akid || !secret || !*secret) {
		fail(why, whylen, "STS %s answer has no Credentials", action);
		goto out;
	}
	if (set_keys(out, akid, secret, aws_xml_text(c, "SessionToken"), source, why, whylen) < 0)
		goto out;
	if (exp && aws_parse_iso8601(exp, &out->expiration) < 0) {
		fail(why, whylen, "STS gave an Expiration that is not an ISO 8601 UTC time: %.40s", exp);
		goto out;
	}
	rc = 0;
out:
	aws_xml_free(root);
	return rc;
}

int aws_parse_sts_xml(const char *xml, size_t n, aws_credentials *out, char *why, size_t whylen)
{
	return parse_sts(xml, n, "AssumeRoleWithWebIdentity", "web identity", out, why, whylen);
}

int aws_parse_assume_role_xml(const char *xml, size_t n, aws_credentials *out, char *why, size_t whylen)
{
	return parse_sts(xml, n, "AssumeRole", "assume role", out, why, whylen);
}

int aws_parse_sso_json(const char *json, size_t n, aws_credentials *out, char *why, size_t whylen)
{
	json_error_t err;
	json_t *o = json_loadb(json, n, JSON_REJECT_DUPLICATES, &err);
	if (!o)
		return fail(why, whylen, "the SSO portal did not answer JSON: %s", err.text);
	int rc = -1;
	json_t *rc_obj = json_object_get(o, "roleCredentials");
	const char *akid = json_str(rc_obj, "accessKeyId"), *secret = json_str(rc_obj, "secretAccessKey");
	json_t *exp = json_object_get(rc_obj, "expiration");
	if (!akid || !*akid || !secret || !*secret)
		fail(why, whylen, "the SSO portal's answer has no roleCredentials with accessKeyId and secretAccessKey");
	else if (exp && !json_is_integer(exp))
		fail(why, whylen, "the SSO portal's expiration is not milliseconds since the epoch");
	else if (set_keys(out, akid, secret, json_str(rc_obj, "sessionToken"), "sso", why, whylen) == 0) {
		if (exp && json_integer_value(exp) > 0)
			out->expiration = (time_t)(json_integer_value(exp) / 1000);
		rc = 0;
	}
	json_decref(o);
	return rc;
}

/* --------------------------------------------------- credential_process */

/* Run cmd with sh -c, collect stdout (bounded), wait at most timeout_s. */
static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int run_process(const char *cmd, unsigned timeout_s, char **outp, size_t *outn, char *why, size_t whylen)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return fail(why, whylen, "credential_process: pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return fail(why, whylen, "credential_process: fork: %s", strerror(errno));
	}
	if (pid == 0) {
		dup2(pipefd[1], 1);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	char *buf = malloc(PROCESS_OUTPUT_MAX + 1);
	size_t n = 0;
	int timed_out = 0, too_big = 0;
	/* a monotonic deadline in ms: time() would round a 1 s limit down to nothing */
	uint64_t deadline = now_ms() + (uint64_t)timeout_s * 1000;
	while (buf) {
		uint64_t now = now_ms();
		int left = now < deadline ? (int)(deadline - now) : 0;
		struct pollfd p = {pipefd[0], POLLIN, 0};
		if (left <= 0 || poll(&p, 1, left) == 0) {
			timed_out = 1;
			break;
		}
		ssize_t r = read(pipefd[0], buf + n, PROCESS_OUTPUT_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == PROCESS_OUTPUT_MAX) {
			too_big = 1;
			break;
		}
	}
	close(pipefd[0]);
	if (timed_out || too_big || !buf)
		kill(-pid, SIGKILL);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!buf)
		return fail(why, whylen, "credential_process: out of memory");
	buf[n] = 0;
	*outp = buf;
	*outn = n;
	if (timed_out)
		return fail(why, whylen, "credential_process '%.200s' ran past its %u s limit", cmd, timeout_s);
	if (too_big)
		return fail(why, whylen, "credential_process '%.200s' printed more than %d bytes", cmd,
			    PROCESS_OUTPUT_MAX);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return fail(why, whylen, "credential_process '%.200s' failed (%s %d)", cmd,
			    WIFEXITED(st) ? "exit status" : "signal",
			    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return 0;
}

static int from_process(const char *cmd, unsigned timeout_s, aws_credentials *out, char *why, size_t whylen)
{
	char *text = NULL;
	size_t n = 0;
	int rc = run_process(cmd, timeout_s, &text, &n, why, whylen);
	if (rc == 0)
		rc = aws_parse_process_json(text, n, out, why, whylen);
	free(text);
	return rc;
}

/* ------------------------------------------------------------ resolving */

static int from_env(aws_credentials *out, char *why, size_t whylen, int *found)
{
	const char *akid = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
	*found = 0;
	if (!akid && !secret)
		return 0;
	if (!akid || !secret)
		return fail(why, whylen, "%s is set but %s is not: set both, or neither",
			    akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			    akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	*found = 1;
	return set_keys(out, akid, secret, env("AWS_SESSION_TOKEN"), "environment", why, whylen);
}

static int web_identity_plan(const where *w, aws_remote_plan *plan)
{
	const char *file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
	char pfile[1024] = "", prole[512] = "";
	if (!file || !role) {
		profile_get(w, "web_identity_token_file", pfile, sizeof pfile);
		profile_get(w, "role_arn", prole, sizeof prole);
		if (!*pfile || !*prole)
			return 0;
		file = pfile;
		role = prole;
	}
	plan->kind = AWS_REMOTE_WEB_IDENTITY;
	snprintf(plan->token_file, sizeof plan->token_file, "%s", file);
	snprintf(plan->role_arn, sizeof plan->role_arn, "%s", role);
	const char *name = env("AWS_ROLE_SESSION_NAME");
	if (name)
		snprintf(plan->role_session_name, sizeof plan->role_session_name, "%s", name);
	else
		snprintf(plan->role_session_name, sizeof plan->role_session_name, "sbx-%ld", (long)time(NULL));
	aws_profile_region(NULL, plan->sts_region, sizeof plan->sts_region);
	return 1;
}

static int container_plan(aws_remote_plan *plan, char *why, size_t whylen)
{
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	if (!full && !rel)
		return 0;
	plan->kind = AWS_REMOTE_CONTAINER;
	if (rel)
		snprintf(plan->url, sizeof plan->url, "http://169.254.170.2%s", rel);
	else
		snprintf(plan->url, sizeof plan->url, "%s", full);
	const char *tok_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	if (tok_file) {
		FILE *f = fopen(tok_file, "r");
		if (!f)
			return fail(why, whylen, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", tok_file,
				    strerror(errno));
		size_t n = fread(plan->auth_token, 1, sizeof plan->auth_token - 1, f);
		fclose(f);
		plan->auth_token[n] = 0;
		char *t = aws_ini_trim(plan->auth_token);
		memmove(plan->auth_token, t, strlen(t) + 1);
	} else if (tok) {
		snprintf(plan->auth_token, sizeof plan->auth_token, "%s", tok);
	}
	if (strpbrk(plan->auth_token, "\r\n"))
		return fail(why, whylen, "the container authorization token has a line break");
	return 1;
}

/* credential_source of an assume-role profile: that one source only. */
static int named_source(const aws_creds_opts *o, aws_credentials *out, aws_remote_plan *plan, char *why,
			size_t whylen)
{
	const char *cs = o->credential_source;
	if (strcmp(cs, "Environment") == 0) {
		int found = 0;
		if (from_env(out, why, whylen, &found) < 0)
			return -1;
		if (!found)
			return fail(why, whylen, "credential_source = Environment, but AWS_ACCESS_KEY_ID and "
						 "AWS_SECRET_ACCESS_KEY are not set");
		return 0;
	}
	if (strcmp(cs, "Ec2InstanceMetadata") == 0) {
		const char *disabled = env("AWS_EC2_METADATA_DISABLED");
		if (o->no_imds || (disabled && strcasecmp(disabled, "true") == 0))
			return fail(why, whylen, "credential_source = Ec2InstanceMetadata, but the instance metadata "
						 "service is disabled (AWS_EC2_METADATA_DISABLED)");
		plan->kind = AWS_REMOTE_IMDS;
		return 0;
	}
	if (strcmp(cs, "EcsContainer") == 0) {
		int c = container_plan(plan, why, whylen);
		if (c == 0)
			return fail(why, whylen, "credential_source = EcsContainer, but neither "
						 "AWS_CONTAINER_CREDENTIALS_FULL_URI nor _RELATIVE_URI is set");
		return c < 0 ? -1 : 0;
	}
	return fail(why, whylen, "credential_source '%s' is not Environment, Ec2InstanceMetadata or EcsContainer", cs);
}

int aws_resolve_local(const aws_creds_opts *o, aws_credentials *out, aws_remote_plan *plan, char *why,
		      size_t whylen)
{
	memset(plan, 0, sizeof *plan);
	memset(out, 0, sizeof *out);
	where w;
	locate(o, &w);
	unsigned ptimeout = o && o->process_timeout_s ? o->process_timeout_s : AWS_DEFAULT_PROCESS_TIMEOUT_S;
	int explicit_profile = o && o->profile;
	int named_profile = explicit_profile || env("AWS_PROFILE");

	if (o && o->credential_source)
		return named_source(o, out, plan, why, whylen);
	if (!explicit_profile) {
		int found = 0;
		if (from_env(out, why, whylen, &found) < 0)
			return -1;
		if (found)
			return 0;
	}
	/* A source_profile's own keys win over its role_arn (as in the AWS CLI). */
	char key[8];
	if (!(o && o->source_profile && profile_get(&w, "aws_access_key_id", key, sizeof key))) {
		int r = aws_role_profile_plan(w.cred_file, w.config_file, w.profile, plan, why, whylen);
		if (r != 0)
			return r < 0 ? -1 : 0;
	}
	if (web_identity_plan(&w, plan))
		return 0;

	int in_creds = aws_ini_has_section(w.cred_file, w.profile);
	int in_config = aws_ini_has_section(w.config_file, w.config_section);
	if (named_profile && strcmp(w.profile, "default") != 0 && !in_creds && !in_config)
		return fail(why, whylen, "AWS profile '%s' is in neither %s nor %s (section [%s])", w.profile,
			    w.cred_file, w.config_file, w.config_section);

	char akid[256] = "", secret[256] = "", token[4096] = "", process[4096] = "";
	char source[64];
	snprintf(source, sizeof source, "profile %.50s", w.profile);
	/* The credentials file, then its credential_process, then the config file. */
	if (in_creds) {
		aws_ini_get(w.cred_file, w.profile, "aws_access_key_id", akid, sizeof akid);
		aws_ini_get(w.cred_file, w.profile, "aws_secret_access_key", secret, sizeof secret);
		aws_ini_get(w.cred_file, w.profile, "aws_session_token", token, sizeof token);
	}
	if (!*akid && !*secret && profile_get(&w, "credential_process", process, sizeof process))
		return from_process(process, ptimeout, out, why, whylen);
	if (!*akid && !*secret && in_config) {
		aws_ini_get(w.config_file, w.config_section, "aws_access_key_id", akid, sizeof akid);
		aws_ini_get(w.config_file, w.config_section, "aws_secret_access_key", secret, sizeof secret);
		aws_ini_get(w.config_file, w.config_section, "aws_session_token", token, sizeof token);
	}
	if (*akid || *secret) {
		if (!*akid || !*secret)
			return fail(why, whylen, "AWS profile '%s' has %s but not %s", w.profile,
				    *akid ? "aws_access_key_id" : "aws_secret_access_key",
				    *akid ? "aws_secret_access_key" : "aws_access_key_id");
		return set_keys(out, akid, secret, token, source, why, whylen);
	}

	int c = container_plan(plan, why, whylen);
	if (c != 0)
		return c < 0 ? -1 : 0;
	const char *disabled = env("AWS_EC2_METADATA_DISABLED");
	if ((o && o->no_imds) || (disabled && strcasecmp(disabled, "true") == 0))
		return fail(why, whylen, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
					 "or AWS_PROFILE (looked in the environment, %s and %s)",
			    w.cred_file, w.config_file);
	plan->kind = AWS_REMOTE_IMDS;
	return 0;
}
