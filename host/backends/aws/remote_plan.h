/* remote_plan.h — what resolving AWS credentials leaves to the network: the
 * kind of remote source and what it needs (credentials.h makes plans,
 * role_profile.h fills assume-role and SSO ones). Types only. */
#ifndef SBX_AWS_REMOTE_PLAN_H
#define SBX_AWS_REMOTE_PLAN_H

typedef enum aws_cred_remote {
	AWS_REMOTE_NONE = 0,   /* the credentials are resolved */
	AWS_REMOTE_WEB_IDENTITY,
	AWS_REMOTE_CONTAINER,
	AWS_REMOTE_IMDS,
	AWS_REMOTE_ASSUME_ROLE, /* STS AssumeRole signed with the source's credentials */
	AWS_REMOTE_SSO,         /* the SSO portal's GetRoleCredentials */
} aws_cred_remote;

/* What a remote source needs. */
typedef struct aws_remote_plan {
	aws_cred_remote kind;
	char url[1024];            /* container: the full URI */
	char auth_token[4096];     /* container: Authorization header value */
	char role_arn[512];        /* web identity */
	char role_session_name[128];
	char token_file[1024];     /* web identity token file */
	char sts_region[64];
	char profile[256];         /* assume role, SSO: the profile, for messages */
	char source_profile[256];  /* assume role: where the signing keys come from, */
	char credential_source[32]; /* or: Environment, Ec2InstanceMetadata, EcsContainer */
	char external_id[256];
	unsigned duration_s;       /* 0: STS's default (1 hour) */
	char sso_region[64];       /* SSO */
	char sso_account_id[32];
	char sso_role_name[128];
	char sso_token[8192];      /* the cached access token */
} aws_remote_plan;

#endif
