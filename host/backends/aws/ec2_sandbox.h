/* ec2_sandbox.h — one EC2 sandbox's life: launch, reach, remove.
 *
 * sbx_ec2_up runs on the client's loop as a small state machine (it never
 * blocks, so many launches proceed at once next to other sandboxes' work):
 *
 *   a fresh 32-byte secret for the agent (docs/agent-auth.md)
 *   -> secret upload to S3 (the boot script fetches it through a presigned
 *      URL into /etc/sbx-agent.key, root 0600)
 *   -> agent upload to S3 (when an agent binary is given: stock AMIs fetch
 *      it at boot, checksum verified, from user data)
 *   -> AMI id (the config's, or the public Ubuntu 24.04 SSM parameter)
 *   -> RunInstances (tags: extra tags, Name=inspect_ec2_sandbox_<task>,
 *      inspect_task, inspect_sandbox=true, sbx-owner=<owner>; IMDSv2 only)
 *   -> DescribeInstances until running          (config launch_timeout_s)
 *   -> DescribeInstanceInformation until Online (config online_timeout_s)
 *   -> StartSession AWS-StartPortForwardingSession to the agent's port
 *   -> the SSM data channel transport and an sbx session that proves it
 *      holds the secret, until HELLO
 *   -> the secret's S3 object deleted (the agent has read it)
 *
 * Any failure after the launch terminates the instance and deletes the S3
 * object before reporting, so nothing is left behind. sbx_ec2_down closes
 * the session, terminates the session and the instance, deletes the object. */
#ifndef SBX_AWS_EC2_SANDBOX_H
#define SBX_AWS_EC2_SANDBOX_H

#include "backends/aws/api.h"
#include "backends/aws/ec2config.h"
#include "auth.h"
#include "sbx.h"

#define SBX_EC2_OWNER_TAG "sbx-owner"
#define SBX_EC2_DEFAULT_AGENT_PORT 7000
#define SBX_EC2_DEFAULT_POLL_MS 2000
#define SBX_EC2_KEY_PATH "/etc/sbx-agent.key" /* the agent's secret on the instance, root 0600 */

typedef struct sbx_ec2_sandbox sbx_ec2_sandbox;

typedef struct sbx_ec2_up_opts {
	const sbx_ec2_config *cfg;
	const char *task;          /* the eval task's name (tags) */
	const char *owner;         /* this run's id: the sbx-owner tag */
	const char *agent_path;    /* local sbx-agent to ship through S3; NULL: baked into the AMI */
	unsigned agent_port;       /* where sbx-agent listens on the instance's loopback; 0 = 7000 */
	unsigned poll_ms;          /* between describe calls; 0 = SBX_EC2_DEFAULT_POLL_MS */
	void (*on_ready)(void *ud, sbx_ec2_sandbox *sb, const sbx_error *err); /* err NULL when ready */
	/* Optional: told once as each slow step starts ("launching ...",
	 * "waiting for i-... to be running", ...), e.g. for progress on stderr. */
	void (*on_progress)(void *ud, const char *what);
	void *ud;
} sbx_ec2_up_opts;

/* A sandbox launched earlier (by another process: the CLI keeps these in
 * its state directory). */
typedef struct sbx_ec2_attach_opts {
	const sbx_ec2_config *cfg; /* bucket and timeouts */
	const char *instance_id;
	const char *s3_key;        /* the shipped agent's object, "" or NULL if none */
	const sbx_auth_key *secret; /* the agent's secret (sbx_ec2_secret when it was launched) */
	unsigned agent_port;       /* 0 = 7000 */
	/* Set: open a data channel and session to the agent, then on_ready
	 * (a failure here leaves the instance alone). NULL: only to remove it
	 * with sbx_ec2_down. */
	void (*on_ready)(void *ud, sbx_ec2_sandbox *sb, const sbx_error *err);
	void (*on_progress)(void *ud, const char *what);
	void *ud;
} sbx_ec2_attach_opts;

/* Start bringing a sandbox up. NULL with err when it cannot start. The
 * handle stays valid after on_ready (even on failure) until sbx_ec2_free,
 * which may only be called when no step is running: after on_ready, and
 * after sbx_ec2_down's on_done when down was called. */
sbx_ec2_sandbox *sbx_ec2_up(sbx_loop *loop, aws_client *c, const sbx_ec2_up_opts *o, sbx_error *err);
sbx_ec2_sandbox *sbx_ec2_attach(sbx_loop *loop, aws_client *c, const sbx_ec2_attach_opts *o, sbx_error *err);
/* Ready: the session to the agent; the instance id. */
sbx_session *sbx_ec2_session(const sbx_ec2_sandbox *sb);
const char *sbx_ec2_instance_id(const sbx_ec2_sandbox *sb);
/* The S3 key of the shipped agent ("" when none, or once removed). */
const char *sbx_ec2_s3_key(const sbx_ec2_sandbox *sb);
/* The agent's secret, made by sbx_ec2_up: whoever attaches later needs it
 * (the CLI keeps it in a 0600 file of its state directory). */
const sbx_auth_key *sbx_ec2_secret(const sbx_ec2_sandbox *sb);
/* Hand the ready session to the caller (who closes it); NULL if not ready. */
sbx_session *sbx_ec2_take_session(sbx_ec2_sandbox *sb);
/* Remove everything this sandbox made; on_done once (err NULL when all went).
 * Also while sbx_ec2_up is still under way (e.g. on Ctrl-C): the step in
 * flight finishes, what it made is removed too, and on_ready is not called. */
void sbx_ec2_down(sbx_ec2_sandbox *sb, void (*on_done)(void *ud, const sbx_error *err), void *ud);
void sbx_ec2_free(sbx_ec2_sandbox *sb);

/* Terminate every live instance sbx launched: those tagged sbx-owner=owner,
 * or with any sbx-owner tag when owner is NULL (`sbx down --all`). on_done
 * gets how many were terminated. 0, or -1 with err. */
int sbx_ec2_cleanup(aws_client *c, const char *owner, void (*on_done)(void *ud, const sbx_error *err, size_t n),
		    void *ud, sbx_error *err);

/* Delete every S3 object sbx shipped under the bucket's key prefix: those
 * under PREFIX/sbx/OWNER/, or under PREFIX/sbx/ when owner is NULL. on_done
 * gets how many were deleted. 0, or -1 with err. */
int sbx_ec2_cleanup_objects(aws_client *c, const char *bucket, const char *prefix, const char *owner,
			    void (*on_done)(void *ud, const sbx_error *err, size_t n), void *ud, sbx_error *err);

/* What the boot script needs: the presigned URL of the secret, of the agent
 * (NULL: the AMI has it, ami/) and its SHA-256, its port, and whether its
 * commands may reach the instance metadata service. */
typedef struct sbx_ec2_boot {
	const char *agent_url, *agent_sha256, *key_url;
	unsigned port;
	int allow_metadata;
} sbx_ec2_boot;

/* The boot script (user data): fetches the secret into SBX_EC2_KEY_PATH
 * with umask 077, the agent if shipped (curl, sha256sum -c), and runs it
 * under systemd on 127.0.0.1:port with --secret-file and, unless allowed,
 * --block-metadata. Appends to out; 0 or -1 (out of memory). */
int sbx_ec2_user_data(const sbx_ec2_boot *b, sbx_buf *out);

#endif
