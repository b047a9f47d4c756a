/* ec2config.h — the EC2 backend's settings, named and read exactly as the
 * Inspect EC2 sandbox reads them, plus sbx's own timeouts.
 *
 * Each setting comes from, in order: code (sbx_ec2_settings, e.g. CLI
 * flags or the Python provider's keywords), the environment variable
 * INSPECT_EC2_SANDBOX_<NAME>, a .env file (same names), the default.
 *
 *   REGION             required (falls back to AWS_REGION)
 *   VPC_ID             required, vpc-<hex>
 *   SECURITY_GROUP_ID  required, sg-<hex>
 *   SUBNET_ID          required, subnet-<hex>
 *   INSTANCE_PROFILE   required, the instance profile's name
 *   S3_BUCKET          required, an S3 bucket name
 *   AMI_ID             default: the latest Ubuntu 24.04 AMI (public SSM parameter)
 *   INSTANCE_TYPE      default t3a.large (the Inspect EC2 sandbox's default)
 *   S3_KEY_PREFIX      default ""; must not start with '/'
 *   EXTRA_TAGS_STR     "k1=v1;k2=v2": each part exactly one '='
 *   VOLUME_SIZE        root volume GiB (code only in the Inspect sandbox; here also env)
 *   ALLOW_METADATA     default false: commands cannot reach the instance metadata
 *                      service (so not the instance role's credentials); true/1/yes
 *                      lets them (sbx's own; docs/EC2.md)
 *
 * Timeouts (seconds; sbx's own, same prefix):
 *   LAUNCH_TIMEOUT     300  RunInstances until the instance is running
 *   ONLINE_TIMEOUT     600  running until SSM reports the agent Online
 *   API_TIMEOUT         30  one AWS API call
 *   API_RETRIES          8  retries of a throttled or 5xx call (exponential backoff)
 *   SESSION_TIMEOUT     30  opening the SSM data channel (WebSocket + handshake)
 *   TERMINATE_TIMEOUT  120  TerminateInstances until the instance is gone
 *
 * A dropped data channel (aws/ssm_reopen.h; counts and milliseconds):
 *   RESUME_TRIES         3  ResumeSession re-dials in a row, each within SESSION_TIMEOUT
 *   REOPEN_TRIES         5  then new sessions (StartSession) in a row, each within SESSION_TIMEOUT
 *   REOPEN_BACKOFF_MS  200  the wait before the first try of either, doubling (at most 64x)
 *
 * Missing required settings are named together in one error; a malformed
 * one is named with what is wrong and what is expected. */
#ifndef SBX_AWS_EC2CONFIG_H
#define SBX_AWS_EC2CONFIG_H

#include <stddef.h>

#define SBX_EC2_ENV_PREFIX "INSPECT_EC2_SANDBOX_"
#define SBX_EC2_DEFAULT_INSTANCE_TYPE "t3a.large"
#define SBX_EC2_DEFAULT_AMI_PARAMETER "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
#define SBX_EC2_MAX_EXTRA_TAGS 40 /* AWS allows 50 per resource; sbx adds its own */

typedef struct sbx_ec2_tag {
	char key[129];   /* AWS: at most 128 characters */
	char value[257]; /* at most 256 */
} sbx_ec2_tag;

/* Settings given in code: NULL / 0 = not given. */
typedef struct sbx_ec2_settings {
	const char *region, *vpc_id, *security_group_id, *subnet_id, *instance_profile, *s3_bucket;
	const char *ami_id, *instance_type, *s3_key_prefix;
	const char *extra_tags_str;          /* "k1=v1;k2=v2" */
	const sbx_ec2_tag *extra_tags;       /* or as pairs (wins over the string) */
	size_t n_extra_tags;
	unsigned volume_size_gib;
	unsigned launch_timeout_s, online_timeout_s, api_timeout_s, api_retries, session_timeout_s,
		terminate_timeout_s;
	unsigned resume_tries, reopen_tries, reopen_backoff_ms;
	int allow_metadata;                  /* 1 = allow, -1 = block, 0 = not given */
	int api_retries_set;                 /* api_retries was given (0 is a valid value) */
	const char *dotenv_path;             /* default ".env"; "" = read none */
} sbx_ec2_settings;

typedef struct sbx_ec2_config {
	char region[32];
	char vpc_id[32], security_group_id[32], subnet_id[40];
	char instance_profile[256];
	char s3_bucket[64];
	char ami_id[32];          /* "" = resolve SBX_EC2_DEFAULT_AMI_PARAMETER */
	char instance_type[32];
	char s3_key_prefix[512];
	sbx_ec2_tag extra_tags[SBX_EC2_MAX_EXTRA_TAGS];
	size_t n_extra_tags;
	unsigned volume_size_gib; /* 0 = the AMI's size */
	int allow_metadata;       /* commands may reach 169.254.169.254 (default 0) */
	unsigned launch_timeout_s, online_timeout_s, api_timeout_s, api_retries, session_timeout_s,
		terminate_timeout_s;
	unsigned resume_tries, reopen_tries, reopen_backoff_ms;
} sbx_ec2_config;

/* Fill out from code, environment, .env and defaults. 0, or -1 with why. */
int sbx_ec2_config_load(const sbx_ec2_settings *code, sbx_ec2_config *out, char *why, size_t whylen);

/* Parse "k1=v1;k2=v2" (as the Inspect EC2 sandbox does: ';'-separated
 * parts, each split on '=' into exactly two). NULL or "" = no tags. */
int sbx_ec2_parse_tags(const char *s, sbx_ec2_tag *tags, size_t max, size_t *n, char *why, size_t whylen);

#endif
