/* ssm.h — the Systems Manager API calls sbx makes (JSON 1.1 protocol):
 * GetParameter (the default AMI), DescribeInstanceInformation (is the
 * instance's SSM agent online), StartSession / ResumeSession / TerminateSession (the data
 * channel), SendCommand / GetCommandInvocation (bootstrap, and the
 * per-call baseline the benchmarks compare against). Asynchronous. */
#ifndef SBX_AWS_SSM_H
#define SBX_AWS_SSM_H

#include <stddef.h>

#include "backends/aws/api.h"

typedef struct aws_ssm_session {
	char session_id[128];
	char stream_url[2048];
	char token[4096];
} aws_ssm_session;

typedef struct aws_ssm_invocation {
	char status[32];   /* Pending, InProgress, Success, Failed, ... */
	int exit_code;     /* ResponseCode; -1 while running */
	char *stdout_text; /* StandardOutputContent (owned by the callback's caller) */
	char *stderr_text;
} aws_ssm_invocation;

typedef void (*aws_ssm_text_cb)(void *ud, const sbx_error *err, const char *value);
typedef void (*aws_ssm_session_cb)(void *ud, const sbx_error *err, const aws_ssm_session *s);
typedef void (*aws_ssm_done_cb)(void *ud, const sbx_error *err);
typedef void (*aws_ssm_invocation_cb)(void *ud, const sbx_error *err, const aws_ssm_invocation *inv);

/* GetParameter: the value, e.g. an AMI id. */
int aws_ssm_get_parameter(aws_client *c, const char *name, aws_ssm_text_cb cb, void *ud, sbx_error *err);
/* DescribeInstanceInformation for one instance: its PingStatus ("Online",
 * "ConnectionLost", ...) or "" when SSM does not know it yet. */
int aws_ssm_ping_status(aws_client *c, const char *instance_id, aws_ssm_text_cb cb, void *ud, sbx_error *err);
/* StartSession with a document and parameters (pairs of name, value; each
 * value sent as a one-element list), e.g. AWS-StartPortForwardingSession
 * with portNumber and localPortNumber. */
int aws_ssm_start_session(aws_client *c, const char *target, const char *document, const char *const *params,
			  aws_ssm_session_cb cb, void *ud, sbx_error *err);
/* ResumeSession: a new StreamUrl and token for a session whose WebSocket
 * dropped (fails once the session was terminated or timed out). */
int aws_ssm_resume_session(aws_client *c, const char *session_id, aws_ssm_session_cb cb, void *ud, sbx_error *err);
int aws_ssm_terminate_session(aws_client *c, const char *session_id, aws_ssm_done_cb cb, void *ud, sbx_error *err);
/* SendCommand with AWS-RunShellScript: the command id. */
int aws_ssm_send_command(aws_client *c, const char *instance_id, const char *const *commands, unsigned timeout_s,
			 aws_ssm_text_cb cb, void *ud, sbx_error *err);
int aws_ssm_get_command_invocation(aws_client *c, const char *command_id, const char *instance_id,
				   aws_ssm_invocation_cb cb, void *ud, sbx_error *err);

#endif
