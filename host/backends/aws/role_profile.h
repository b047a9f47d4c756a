/* role_profile.h — profiles that stand for a role instead of holding keys:
 *
 *   assume-role   role_arn with source_profile (another profile, itself
 *                 possibly a role: a chain) or credential_source
 *                 (Environment, Ec2InstanceMetadata, EcsContainer), plus
 *                 external_id, role_session_name, duration_seconds;
 *                 mfa_serial is refused (sbx cannot ask for a code)
 *   SSO           IAM Identity Center: sso_session + [sso-session NAME]
 *                 (sso_start_url, sso_region), or the legacy
 *                 sso_start_url/sso_region in the profile; with
 *                 sso_account_id and sso_role_name. The token is the one
 *                 `aws sso login` cached in ~/.aws/sso/cache/SHA1.json
 *                 (SHA1 of the session name, or of the start URL).
 *
 * This file only reads the shared files and the token cache and says what
 * to fetch (an aws_remote_plan); api.c signs the AssumeRole call with the
 * source's credentials and asks the SSO portal for role credentials. */
#ifndef SBX_AWS_ROLE_PROFILE_H
#define SBX_AWS_ROLE_PROFILE_H

#include <stddef.h>

#include "backends/aws/remote_plan.h"

#define AWS_ROLE_CHAIN_MAX 16 /* source_profile hops before giving up */

/* If profile is an assume-role or SSO profile: 1 with plan filled (kind
 * AWS_REMOTE_ASSUME_ROLE or AWS_REMOTE_SSO). 0 when it is neither (or
 * does not exist). -1 with why: a loop or a missing profile in the chain,
 * mfa_serial, a bad credential_source or duration_seconds, missing SSO
 * settings, no cached SSO token or an expired one (saying to run
 * `aws sso login --profile NAME`). */
int aws_role_profile_plan(const char *cred_file, const char *config_file, const char *profile,
			  aws_remote_plan *plan, char *why, size_t whylen);

/* The token cache file of an SSO session name or start URL:
 * $HOME/.aws/sso/cache/<sha1 hex of key>.json. */
void aws_sso_cache_path(const char *key, char *out, size_t outlen);

#endif
