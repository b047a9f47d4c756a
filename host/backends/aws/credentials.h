/* credentials.h — where AWS credentials come from, in the order the AWS
 * SDKs and CLI use:
 *
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *      (skipped when a profile is given in code)
 *   2. an assume-role or SSO profile (role_profile.h): role_arn with
 *      source_profile or credential_source through STS AssumeRole signed
 *      with the source's credentials; IAM Identity Center role credentials
 *      from the SSO portal with the token `aws sso login` cached [remote]
 *   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (or the
 *      profile's web_identity_token_file + role_arn) through STS
 *      AssumeRoleWithWebIdentity                                  [remote]
 *   4. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default
 *      ~/.aws/credentials), profile AWS_PROFILE or "default"
 *   5. the profile's credential_process (JSON on stdout, Version 1)
 *   6. the shared config file (AWS_CONFIG_FILE, default ~/.aws/config)
 *   7. container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI or
 *      _RELATIVE_URI (169.254.170.2), with AWS_CONTAINER_AUTHORIZATION_TOKEN
 *      or _TOKEN_FILE                                             [remote]
 *   8. the instance metadata service (IMDSv2: a PUT for a session token,
 *      then the role's credentials)                               [remote]
 *
 * This file resolves the local sources and parses what the remote ones
 * return; aws_resolve_local() says which remote source applies, and the
 * caller fetches it over HTTP. Temporary credentials carry an expiry and
 * are refreshed aws_creds_opts.refresh_margin_s before it. */
#ifndef SBX_AWS_CREDENTIALS_H
#define SBX_AWS_CREDENTIALS_H

#include <stddef.h>
#include <time.h>

#include "backends/aws/profile_file.h"
#include "backends/aws/remote_plan.h"
#include "backends/aws/sigv4.h"

#define AWS_DEFAULT_REFRESH_MARGIN_S 300  /* refresh 5 minutes before expiry */
#define AWS_DEFAULT_PROCESS_TIMEOUT_S 60  /* credential_process run limit */

typedef struct aws_credentials {
	char access_key_id[128];
	char secret_access_key[128];
	char session_token[4096];
	time_t expiration;   /* 0: does not expire */
	char source[64];     /* "environment", "profile default", "credential_process", ... */
} aws_credentials;


typedef struct aws_creds_opts {
	const char *profile;          /* code wins over AWS_PROFILE; skips the environment */
	const char *credentials_file; /* default: $AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials */
	const char *config_file;      /* default: $AWS_CONFIG_FILE, ~/.aws/config */
	int no_imds;                  /* never fall back to IMDS (also AWS_EC2_METADATA_DISABLED=true) */
	unsigned process_timeout_s;   /* 0: AWS_DEFAULT_PROCESS_TIMEOUT_S */
	unsigned refresh_margin_s;    /* 0: AWS_DEFAULT_REFRESH_MARGIN_S */
	/* The source of an assume-role profile (set by api.c for the client that
	 * signs AssumeRole): */
	int source_profile;           /* profile is a source_profile: its keys win over its role_arn */
	const char *credential_source; /* only this source: Environment, Ec2InstanceMetadata, EcsContainer */
} aws_creds_opts;

/* Resolve the local sources in order. Returns 0 with *out filled (plan
 * kind NONE), 0 with plan->kind set when a remote source must be fetched,
 * or -1 with why: a profile that does not exist, a half-set key pair, a
 * failed credential_process, no credentials anywhere (naming where it
 * looked and what to set). */
int aws_resolve_local(const aws_creds_opts *o, aws_credentials *out, aws_remote_plan *plan, char *why,
		      size_t whylen);

/* The region the profile names (AWS_REGION, AWS_DEFAULT_REGION, then the
 * config file's region), or "" — for callers with no region setting. */
void aws_profile_region(const aws_creds_opts *o, char *out, size_t outlen);

/* True when c must be refreshed at time now (expires within margin_s). */
int aws_creds_stale(const aws_credentials *c, time_t now, unsigned margin_s);

/* The signing keys of c (pointers into c). */
aws_keys aws_creds_keys(const aws_credentials *c);

/* Parsers of what the sources return. 0, or -1 with why. */
/* credential_process stdout: {"Version":1,"AccessKeyId","SecretAccessKey",
 * "SessionToken"?, "Expiration"?}. */
int aws_parse_process_json(const char *json, size_t n, aws_credentials *out, char *why, size_t whylen);
/* Container and IMDS role credentials: {"AccessKeyId","SecretAccessKey",
 * "Token","Expiration"} (IMDS also "Code":"Success"). */
int aws_parse_role_json(const char *json, size_t n, aws_credentials *out, char *why, size_t whylen);
/* STS AssumeRoleWithWebIdentity's XML response (or its ErrorResponse). */
int aws_parse_sts_xml(const char *xml, size_t n, aws_credentials *out, char *why, size_t whylen);

/* STS AssumeRole's XML response (or its ErrorResponse). */
int aws_parse_assume_role_xml(const char *xml, size_t n, aws_credentials *out, char *why, size_t whylen);
/* The SSO portal's GetRoleCredentials: {"roleCredentials":{"accessKeyId",
 * "secretAccessKey","sessionToken","expiration": ms since the epoch}}. */
int aws_parse_sso_json(const char *json, size_t n, aws_credentials *out, char *why, size_t whylen);

#endif
