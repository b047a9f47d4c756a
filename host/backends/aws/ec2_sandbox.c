/* ec2_sandbox.c — the launch / reach / remove state machine of one EC2
 * sandbox (see ec2_sandbox.h). Each step starts one asynchronous AWS call
 * or timer; its callback moves to the next step or to fail(). */
#include "core/progress.h"
#include "backends/aws/ec2_sandbox.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/aws/ec2.h"
#include "backends/aws/s3.h"
#include "backends/aws/ssm.h"
#include "backends/aws/ssm_msg.h"
#include "backends/aws/text.h"
#include "core/internal.h"
#include "backends/aws/ssm_reopen.h"
#include "keyfile.h"

#define READY_POLL_MS 50

typedef enum { UP_KEY, UP_AGENT, UP_AMI, UP_LAUNCH, UP_RUNNING, UP_ONLINE, UP_SESSION, UP_HELLO, UP_READY, UP_FAILED } up_step;

struct sbx_ec2_sandbox {
	sbx_loop *loop;
	aws_client *c;
	sbx_ec2_config cfg;
	char task[128], owner[128], agent_path[1024];
	unsigned agent_port, poll_ms;
	void (*on_ready)(void *ud, sbx_ec2_sandbox *sb, const sbx_error *err);
	void (*on_progress)(void *ud, const char *what);
	void *ud;
	int attached;           /* launched by someone else: a failure leaves it alone */

	up_step step;
	char ami[32];
	char instance_id[32];
	char s3_key[1024];      /* the uploaded agent, "" if none */
	char key_object[1024];  /* the uploaded secret until the agent has read it, "" if none */
	sbx_auth_key secret;    /* the agent's (docs/agent-auth.md) */
	int allow_metadata;
	char launch_id[37];     /* names this launch's S3 objects */
	char agent_sha[AWS_SHA256_HEX];
	sbx_buf user_data;
	uint64_t step_deadline; /* ms */
	sbx_timer *timer;
	char session_id[128];
	sbx_session *session;
	sbx_error failure;

	/* down */
	void (*on_down)(void *ud, const sbx_error *err);
	void *down_ud;
	int down_pending;
	sbx_error down_err;
	int busy;               /* an AWS call of ours is in flight */
	int halting;            /* down was called while busy: remove all once it returns */
	int reporting_failure;  /* the removal after a failure: then on_ready(err) */
};

static void next(sbx_ec2_sandbox *sb);
static void cleanup_after_failure(sbx_ec2_sandbox *sb);

static void fail(sbx_ec2_sandbox *sb, const sbx_error *why, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void remove_all(sbx_ec2_sandbox *sb);

/* The call in flight has returned: 1 (and removal started) when down was
 * called meanwhile. The caller records what the call made first. */
static int halted(sbx_ec2_sandbox *sb)
{
	sb->busy = 0;
	if (!sb->halting)
		return 0;
	sb->halting = 0;
	remove_all(sb);
	return 1;
}

static void fail(sbx_ec2_sandbox *sb, const sbx_error *why, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	sb->failure.status = why ? why->status : SBX_E_REMOTE;
	sb->failure.err_no = why ? why->err_no : EIO;
	snprintf(sb->failure.code, sizeof sb->failure.code, "%s", why ? why->code : "ec2");
	snprintf(sb->failure.message, sizeof sb->failure.message, "EC2 sandbox%s%.31s: %.200s%s%.250s", sb->instance_id[0] ? " " : "",
		 sb->instance_id, what, why ? ": " : "", why ? why->message : "");
	sb->step = UP_FAILED;
	if (sb->attached) {
		if (sb->session)
			sbx_session_close(sb->session);
		sb->session = NULL;
		sb->on_ready(sb->ud, sb, &sb->failure);
		return;
	}
	sb->reporting_failure = 1;
	cleanup_after_failure(sb);
}

/* --------------------------------------------------------------- steps */

static void got_ami(void *ud, const sbx_error *err, const char *value)
{
	sbx_ec2_sandbox *sb = ud;
	if (halted(sb))
		return;
	if (err) {
		fail(sb, err, "cannot find the default AMI (SSM parameter %s)", SBX_EC2_DEFAULT_AMI_PARAMETER);
		return;
	}
	snprintf(sb->ami, sizeof sb->ami, "%s", value);
	sb->step = UP_LAUNCH;
	next(sb);
}

static void launched(void *ud, const sbx_error *err, char (*ids)[32], size_t n)
{
	sbx_ec2_sandbox *sb = ud;
	if (!err && n > 0)
		snprintf(sb->instance_id, sizeof sb->instance_id, "%s", ids[0]);
	if (halted(sb))
		return;
	if (err || n == 0) {
		fail(sb, err, "RunInstances failed");
		return;
	}
	sbx_announce(sb->on_progress, sb->ud, "waiting for %s to be running", sb->instance_id);
	sb->step = UP_RUNNING;
	sb->step_deadline = sbx_now_ms() + (uint64_t)sb->cfg.launch_timeout_s * 1000;
	next(sb);
}

static void poll_later(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_ec2_sandbox *sb = ud;
	sb->timer = NULL;
	next(sb);
}

static void wait_more(sbx_ec2_sandbox *sb, unsigned ms, const char *what, unsigned limit_s)
{
	if (sbx_now_ms() + ms > sb->step_deadline) {
		sbx_error e = {SBX_E_TIMEOUT, ETIMEDOUT, "timeout", ""};
		snprintf(e.message, sizeof e.message, "%s did not happen within %u s", what, limit_s);
		fail(sb, &e, "gave up waiting");
		return;
	}
	sb->timer = sbx_loop_timer(sb->loop, ms, poll_later, sb);
}

static void described(void *ud, const sbx_error *err, const aws_ec2_instance *list, size_t n)
{
	sbx_ec2_sandbox *sb = ud;
	if (halted(sb))
		return;
	if (err) {
		fail(sb, err, "DescribeInstances failed");
		return;
	}
	const char *state = n ? list[0].state : "";
	if (strcmp(state, "running") == 0) {
		sbx_announce(sb->on_progress, sb->ud, "waiting for %s's SSM agent to come Online", sb->instance_id);
		sb->step = UP_ONLINE;
		sb->step_deadline = sbx_now_ms() + (uint64_t)sb->cfg.online_timeout_s * 1000;
		next(sb);
	} else if (!strcmp(state, "terminated") || !strcmp(state, "shutting-down") || !strcmp(state, "stopped")) {
		fail(sb, NULL, "the instance went to state '%s' while starting", state);
	} else {
		wait_more(sb, sb->poll_ms, "the instance reaching 'running'", sb->cfg.launch_timeout_s);
	}
}

static void pinged(void *ud, const sbx_error *err, const char *status)
{
	sbx_ec2_sandbox *sb = ud;
	if (halted(sb))
		return;
	if (err) {
		fail(sb, err, "DescribeInstanceInformation failed");
		return;
	}
	if (strcmp(status, "Online") == 0) {
		sb->step = UP_SESSION;
		next(sb);
	} else {
		wait_more(sb, sb->poll_ms, "the instance's SSM agent coming Online (check the instance profile and "
					   "the VPC endpoints for ssm, ssmmessages and ec2messages)",
			  sb->cfg.online_timeout_s);
	}
}

static void session_started(void *ud, const sbx_error *err, const aws_ssm_session *s)
{
	sbx_ec2_sandbox *sb = ud;
	if (!err)
		snprintf(sb->session_id, sizeof sb->session_id, "%s", s->session_id);
	if (halted(sb))
		return;
	if (err) {
		fail(sb, err, "StartSession failed");
		return;
	}
	sbx_session_opts so = {.secret = sb->secret.bytes, .secret_len = sb->secret.len};
	aws_ssm_reopen_opts ro = {.c = sb->c, .instance_id = sb->instance_id, .agent_port = sb->agent_port,
				  .connect_timeout_s = sb->cfg.session_timeout_s, .resume_tries = sb->cfg.resume_tries,
				  .reopen_tries = sb->cfg.reopen_tries, .backoff_ms = sb->cfg.reopen_backoff_ms,
				  .session = sb->secret.len ? &so : NULL};
	sbx_error e;
	sb->session = aws_ssm_session_open(sb->loop, &ro, s, &e);
	if (!sb->session) {
		fail(sb, &e, "cannot open the data channel");
		return;
	}
	sb->step = UP_HELLO;
	sb->step_deadline = sbx_now_ms() + (uint64_t)sb->cfg.session_timeout_s * 1000 + 5000;
	next(sb);
}

/* The boot script: presigned URLs for the secret and (when shipped) the
 * agent. They only have to outlive the boot. */
static int build_user_data(sbx_ec2_sandbox *sb, sbx_error *e)
{
	sbx_buf key_url = {0}, agent_url = {0};
	int rc = aws_s3_presign_get(sb->c, sb->cfg.s3_bucket, sb->key_object, 3600, &key_url, e);
	if (rc == 0 && sb->s3_key[0])
		rc = aws_s3_presign_get(sb->c, sb->cfg.s3_bucket, sb->s3_key, 3600, &agent_url, e);
	if (rc == 0) {
		sbx_ec2_boot b = {.agent_url = sb->s3_key[0] ? aws_buf_str(&agent_url) : NULL,
				  .agent_sha256 = sb->agent_sha, .key_url = aws_buf_str(&key_url),
				  .port = sb->agent_port, .allow_metadata = sb->allow_metadata};
		rc = sbx_ec2_user_data(&b, &sb->user_data);
		if (rc < 0)
			sbx_error_set(e, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
	}
	sbx_buf_free(&key_url);
	sbx_buf_free(&agent_url);
	return rc;
}

/* What is in S3 is there: presign it into the boot script, go on. */
static void objects_ready(sbx_ec2_sandbox *sb)
{
	sbx_error e;
	if (build_user_data(sb, &e) < 0) {
		fail(sb, &e, "cannot presign the boot script's URLs");
		return;
	}
	sb->step = UP_AMI;
	next(sb);
}

static void uploaded(void *ud, const sbx_error *err)
{
	sbx_ec2_sandbox *sb = ud;
	if (err)
		sb->s3_key[0] = 0; /* nothing to delete */
	if (halted(sb))
		return;
	if (err) {
		fail(sb, err, "cannot upload the agent to s3://%s", sb->cfg.s3_bucket);
		return;
	}
	objects_ready(sb);
}

static void key_uploaded(void *ud, const sbx_error *err)
{
	sbx_ec2_sandbox *sb = ud;
	if (err)
		sb->key_object[0] = 0;
	if (halted(sb))
		return;
	if (err) {
		fail(sb, err, "cannot upload the agent's secret to s3://%s", sb->cfg.s3_bucket);
		return;
	}
	if (sb->agent_path[0]) {
		sb->step = UP_AGENT;
		next(sb);
	} else {
		objects_ready(sb);
	}
}

static int read_file(const char *path, sbx_buf *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		if (sbx_buf_append(out, buf, n) < 0) {
			fclose(f);
			return -1;
		}
	int bad = ferror(f);
	fclose(f);
	return bad ? -1 : 0;
}

/* Every object of one launch lives under PREFIX/sbx/OWNER/UUID/. */
static void object_key(sbx_ec2_sandbox *sb, const char *leaf, char *out, size_t outlen)
{
	char name[256];
	snprintf(name, sizeof name, "sbx/%s/%s/%s", sb->owner, sb->launch_id, leaf);
	aws_s3_key(sb->cfg.s3_key_prefix, name, out, outlen);
}

/* The secret, as the hex text `--secret-file` reads; only the boot script
 * (presigned URL) and the bucket's owners can read it, and it is deleted
 * once the agent has answered (forget_key). */
static void start_key_upload(sbx_ec2_sandbox *sb)
{
	char hex[2 * SBX_AUTH_KEY_MAX + 2];
	sbx_auth_key_format(&sb->secret, hex);
	strcat(hex, "\n");
	object_key(sb, "sbx-agent.key", sb->key_object, sizeof sb->key_object);
	sbx_error e;
	sb->busy = 1;
	if (aws_s3_put_object(sb->c, sb->cfg.s3_bucket, sb->key_object, hex, strlen(hex), NULL, key_uploaded, sb,
			      &e) < 0) {
		sb->busy = 0;
		sb->key_object[0] = 0;
		fail(sb, &e, "cannot upload the agent's secret");
	}
	memset(hex, 0, sizeof hex);
}

static void start_upload(sbx_ec2_sandbox *sb)
{
	sbx_buf data = {0};
	char why[2048];
	if (sbx_agent_check(sb->agent_path, why, sizeof why) < 0) {
		sbx_error e;
		sbx_error_set(&e, SBX_E_INVALID, ENOENT, "invalid", "%.400s", why);
		fail(sb, &e, "no agent to ship");
		return;
	}
	if (read_file(sb->agent_path, &data) < 0) {
		sbx_error e = {SBX_E_LOCAL, errno, "io", ""};
		snprintf(e.message, sizeof e.message, "%.400s: %s", sb->agent_path, strerror(errno));
		sbx_buf_free(&data);
		fail(sb, &e, "cannot read the agent binary");
		return;
	}
	aws_sha256_hex(data.data ? data.data : (uint8_t *)"", sbx_buf_size(&data), sb->agent_sha);
	object_key(sb, "sbx-agent", sb->s3_key, sizeof sb->s3_key);
	sbx_announce(sb->on_progress, sb->ud, "uploading the agent to s3://%s/%s", sb->cfg.s3_bucket, sb->s3_key);
	sbx_error e;
	sb->busy = 1;
	if (aws_s3_put_object(sb->c, sb->cfg.s3_bucket, sb->s3_key, data.data, sbx_buf_size(&data), NULL, uploaded, sb,
			      &e) < 0) {
		sb->busy = 0;
		sb->s3_key[0] = 0;
		fail(sb, &e, "cannot upload the agent");
	}
	sbx_buf_free(&data);
}

/* The agent has proved it read its secret (its HELLO came after our AUTH
 * answer): the object that carried it goes now, so nothing on the instance
 * can fetch it later through the URL in user-data. Ready either way; a
 * failed delete is retried by sbx_ec2_down. */
static void key_forgotten(void *ud, const sbx_error *err)
{
	sbx_ec2_sandbox *sb = ud;
	if (!err)
		sb->key_object[0] = 0;
	if (halted(sb))
		return;
	sb->step = UP_READY;
	sb->on_ready(sb->ud, sb, NULL);
}

static void forget_key(sbx_ec2_sandbox *sb)
{
	sbx_error e;
	sb->busy = 1;
	if (aws_s3_delete_object(sb->c, sb->cfg.s3_bucket, sb->key_object, key_forgotten, sb, &e) < 0)
		key_forgotten(sb, &e);
}

static void launch(sbx_ec2_sandbox *sb)
{
	sbx_ec2_tag tags[SBX_EC2_MAX_EXTRA_TAGS + 4];
	size_t n = 0;
	for (size_t i = 0; i < sb->cfg.n_extra_tags; i++)
		tags[n++] = sb->cfg.extra_tags[i];
	snprintf(tags[n].key, sizeof tags[n].key, "Name");
	snprintf(tags[n++].value, sizeof tags[0].value, "inspect_ec2_sandbox_%.200s", sb->task);
	snprintf(tags[n].key, sizeof tags[n].key, "inspect_task");
	snprintf(tags[n++].value, sizeof tags[0].value, "%s", sb->task);
	snprintf(tags[n].key, sizeof tags[n].key, "inspect_sandbox");
	snprintf(tags[n++].value, sizeof tags[0].value, "true");
	snprintf(tags[n].key, sizeof tags[n].key, SBX_EC2_OWNER_TAG);
	snprintf(tags[n++].value, sizeof tags[0].value, "%s", sb->owner);
	uint8_t id[16];
	char token[37];
	ssm_uuid_random(id);
	ssm_uuid_format(id, token); /* one token per launch: retries of it start no second instance */
	aws_ec2_launch l = {sb->ami, sb->cfg.instance_type, sb->cfg.subnet_id, sb->cfg.security_group_id,
			    sb->cfg.instance_profile, tags, n, sb->user_data.data, sbx_buf_size(&sb->user_data),
			    sb->cfg.volume_size_gib, NULL, token};
	sbx_announce(sb->on_progress, sb->ud, "launching a %s instance from %s", sb->cfg.instance_type, sb->ami);
	sbx_error e;
	sb->busy = 1;
	if (aws_ec2_run_instances(sb->c, &l, launched, sb, &e) < 0) {
		sb->busy = 0;
		fail(sb, &e, "cannot start RunInstances");
	}
}

static void next(sbx_ec2_sandbox *sb)
{
	sbx_error e;
	int rc = 0;
	switch (sb->step) {
	case UP_KEY:
		start_key_upload(sb);
		return;
	case UP_AGENT:
		start_upload(sb);
		return;
	case UP_AMI:
		if (sb->ami[0]) {
			sb->step = UP_LAUNCH;
			next(sb);
			return;
		}
		sb->busy = 1;
		rc = aws_ssm_get_parameter(sb->c, SBX_EC2_DEFAULT_AMI_PARAMETER, got_ami, sb, &e);
		break;
	case UP_LAUNCH:
		launch(sb);
		return;
	case UP_RUNNING: {
		const char *ids[] = {sb->instance_id};
		sb->busy = 1;
		rc = aws_ec2_describe_instances(sb->c, ids, 1, NULL, 0, described, sb, &e);
		break;
	}
	case UP_ONLINE:
		sb->busy = 1;
		rc = aws_ssm_ping_status(sb->c, sb->instance_id, pinged, sb, &e);
		break;
	case UP_SESSION: {
		char port[16];
		snprintf(port, sizeof port, "%u", sb->agent_port);
		const char *params[] = {"portNumber", port, "localPortNumber", "0", NULL};
		sbx_announce(sb->on_progress, sb->ud, "opening an SSM session to %s (agent port %u)", sb->instance_id, sb->agent_port);
		sb->busy = 1;
		rc = aws_ssm_start_session(sb->c, sb->instance_id, "AWS-StartPortForwardingSession", params,
					   session_started, sb, &e);
		break;
	}
	case UP_HELLO: {
		const sbx_error *why = sbx_session_failure(sb->session);
		if (why) {
			fail(sb, why, "the agent did not answer over the data channel");
			return;
		}
		if (sbx_session_ready(sb->session)) {
			if (sb->key_object[0] && !sb->attached) {
				forget_key(sb);
				return;
			}
			sb->step = UP_READY;
			sb->on_ready(sb->ud, sb, NULL);
			return;
		}
		wait_more(sb, READY_POLL_MS, "the agent's HELLO over the data channel", sb->cfg.session_timeout_s);
		return;
	}
	case UP_READY:
	case UP_FAILED:
		return;
	}
	if (rc < 0) {
		sb->busy = 0;
		fail(sb, &e, "cannot start an AWS call");
	}
}

/* ------------------------------------------------------------- removing */

static void down_step_done(sbx_ec2_sandbox *sb, const sbx_error *err)
{
	if (err && sb->down_err.status == SBX_OK)
		sb->down_err = *err;
	if (--sb->down_pending > 0)
		return;
	if (sb->reporting_failure) {
		sb->reporting_failure = 0;
		sb->on_ready(sb->ud, sb, &sb->failure);
		return;
	}
	if (sb->on_down)
		sb->on_down(sb->down_ud, sb->down_err.status == SBX_OK ? NULL : &sb->down_err);
}

static void terminated(void *ud, const sbx_error *err)
{
	down_step_done(ud, err);
}

static void object_deleted(void *ud, const sbx_error *err)
{
	down_step_done(ud, err);
}

static void session_ended(void *ud, const sbx_error *err)
{
	(void)err; /* a session that already ended is fine */
	down_step_done(ud, NULL);
}

static void terminate_session(void *ud, const char *session_id)
{
	sbx_ec2_sandbox *sb = ud;
	sbx_error e;
	sb->down_pending++;
	if (aws_ssm_terminate_session(sb->c, session_id, session_ended, sb, &e) < 0)
		down_step_done(sb, &e);
	if (strcmp(session_id, sb->session_id) == 0)
		sb->session_id[0] = 0;
}

/* Start removing everything; down_step_done reports when all are done. */
static void remove_all(sbx_ec2_sandbox *sb)
{
	if (sb->timer) {
		sbx_timer_cancel(sb->loop, sb->timer);
		sb->timer = NULL;
	}
	sbx_error e;
	sb->down_pending = 1; /* held until every call is started */
	if (sb->session) { /* every SSM session it used, not only the first */
		aws_ssm_session_take_ids(sb->session, terminate_session, sb);
		sbx_session_close(sb->session);
		sb->session = NULL;
	}
	if (sb->session_id[0])
		terminate_session(sb, sb->session_id);
	if (sb->instance_id[0]) {
		const char *ids[] = {sb->instance_id};
		sb->down_pending++;
		if (aws_ec2_terminate_instances(sb->c, ids, 1, terminated, sb, &e) < 0)
			down_step_done(sb, &e);
	}
	char *objects[] = {sb->s3_key, sb->key_object};
	for (size_t i = 0; i < 2; i++) {
		if (!objects[i][0])
			continue;
		sb->down_pending++;
		if (aws_s3_delete_object(sb->c, sb->cfg.s3_bucket, objects[i], object_deleted, sb, &e) < 0)
			down_step_done(sb, &e);
		objects[i][0] = 0;
	}
	down_step_done(sb, NULL);
}

static void cleanup_after_failure(sbx_ec2_sandbox *sb)
{
	remove_all(sb);
}

void sbx_ec2_down(sbx_ec2_sandbox *sb, void (*on_done)(void *ud, const sbx_error *err), void *ud)
{
	sb->on_down = on_done;
	sb->down_ud = ud;
	sb->down_err = (sbx_error){0};
	if (sb->step != UP_FAILED)
		sb->step = UP_READY; /* stops any polling */
	if (sb->busy) {
		sb->halting = 1; /* the call in flight may make something: remove it too */
		return;
	}
	remove_all(sb);
}

/* ------------------------------------------------------------------ API */

sbx_ec2_sandbox *sbx_ec2_up(sbx_loop *loop, aws_client *c, const sbx_ec2_up_opts *o, sbx_error *err)
{
	if (!o->cfg || !o->on_ready || !o->owner || !*o->owner) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "EC2 sandbox: needs a config, an owner and on_ready");
		return NULL;
	}
	sbx_ec2_sandbox *sb = calloc(1, sizeof *sb);
	if (!sb) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	sb->loop = loop;
	sb->c = c;
	sb->cfg = *o->cfg;
	snprintf(sb->task, sizeof sb->task, "%s", o->task ? o->task : "sbx");
	snprintf(sb->owner, sizeof sb->owner, "%s", o->owner);
	snprintf(sb->agent_path, sizeof sb->agent_path, "%s", o->agent_path ? o->agent_path : "");
	snprintf(sb->ami, sizeof sb->ami, "%s", sb->cfg.ami_id);
	sb->agent_port = o->agent_port ? o->agent_port : SBX_EC2_DEFAULT_AGENT_PORT;
	sb->poll_ms = o->poll_ms ? o->poll_ms : SBX_EC2_DEFAULT_POLL_MS;
	sb->on_ready = o->on_ready;
	sb->on_progress = o->on_progress;
	sb->ud = o->ud;
	sb->allow_metadata = sb->cfg.allow_metadata;
	uint8_t id[16];
	ssm_uuid_random(id);
	ssm_uuid_format(id, sb->launch_id);
	if (sbx_keyfile_random(&sb->secret) < 0) {
		sbx_error_set(err, SBX_E_LOCAL, errno, "io", "EC2 sandbox: cannot make the agent's secret: %s",
			      strerror(errno));
		free(sb);
		return NULL;
	}
	sb->step = UP_KEY;
	sb->timer = sbx_loop_timer(loop, 0, poll_later, sb); /* start from the loop */
	return sb;
}

sbx_ec2_sandbox *sbx_ec2_attach(sbx_loop *loop, aws_client *c, const sbx_ec2_attach_opts *o, sbx_error *err)
{
	if (!o->cfg || !o->instance_id || strncmp(o->instance_id, "i-", 2) != 0) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "EC2 sandbox: needs a config and an instance id (i-...)");
		return NULL;
	}
	sbx_ec2_sandbox *sb = calloc(1, sizeof *sb);
	if (!sb) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	sb->loop = loop;
	sb->c = c;
	sb->cfg = *o->cfg;
	sb->attached = 1;
	snprintf(sb->instance_id, sizeof sb->instance_id, "%s", o->instance_id);
	snprintf(sb->s3_key, sizeof sb->s3_key, "%s", o->s3_key ? o->s3_key : "");
	if (o->secret)
		sb->secret = *o->secret;
	sb->agent_port = o->agent_port ? o->agent_port : SBX_EC2_DEFAULT_AGENT_PORT;
	sb->poll_ms = SBX_EC2_DEFAULT_POLL_MS;
	sb->on_ready = o->on_ready;
	sb->on_progress = o->on_progress;
	sb->ud = o->ud;
	sb->step = o->on_ready ? UP_SESSION : UP_READY;
	if (o->on_ready)
		sb->timer = sbx_loop_timer(loop, 0, poll_later, sb);
	return sb;
}

sbx_session *sbx_ec2_take_session(sbx_ec2_sandbox *sb)
{
	if (sb->step != UP_READY)
		return NULL;
	sbx_session *s = sb->session;
	sb->session = NULL;
	return s;
}

sbx_session *sbx_ec2_session(const sbx_ec2_sandbox *sb)
{
	return sb->step == UP_READY ? sb->session : NULL;
}

const char *sbx_ec2_instance_id(const sbx_ec2_sandbox *sb)
{
	return sb->instance_id;
}

const char *sbx_ec2_s3_key(const sbx_ec2_sandbox *sb)
{
	return sb->s3_key;
}

const sbx_auth_key *sbx_ec2_secret(const sbx_ec2_sandbox *sb)
{
	return &sb->secret;
}

void sbx_ec2_free(sbx_ec2_sandbox *sb)
{
	if (!sb)
		return;
	if (sb->timer)
		sbx_timer_cancel(sb->loop, sb->timer);
	if (sb->session)
		sbx_session_close(sb->session);
	sbx_buf_free(&sb->user_data);
	memset(&sb->secret, 0, sizeof sb->secret);
	free(sb);
}

/* ------------------------------------------------------------- cleanup */

#define TERMINATE_BATCH 100

typedef struct cleanup_ctx {
	aws_client *c;
	char (*ids)[32];
	size_t n, next, pending;
	sbx_error err;
	void (*on_done)(void *ud, const sbx_error *err, size_t n);
	void *ud;
} cleanup_ctx;

static void cleanup_finish(cleanup_ctx *x)
{
	x->on_done(x->ud, x->err.status == SBX_OK ? NULL : &x->err, x->err.status == SBX_OK ? x->n : 0);
	free(x->ids);
	free(x);
}

static void cleanup_terminated(void *ud, const sbx_error *err)
{
	cleanup_ctx *x = ud;
	if (err && x->err.status == SBX_OK)
		x->err = *err;
	if (--x->pending == 0)
		cleanup_finish(x);
}

static void cleanup_found(void *ud, const sbx_error *err, const aws_ec2_instance *list, size_t n)
{
	cleanup_ctx *x = ud;
	if (err) {
		x->err = *err;
		cleanup_finish(x);
		return;
	}
	x->ids = calloc(n ? n : 1, sizeof *x->ids);
	if (!x->ids) {
		sbx_error_set(&x->err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		cleanup_finish(x);
		return;
	}
	for (size_t i = 0; i < n; i++)
		snprintf(x->ids[i], 32, "%s", list[i].id);
	x->n = n;
	x->pending = 1; /* held while the batches start */
	for (size_t at = 0; at < n; at += TERMINATE_BATCH) {
		const char *batch[TERMINATE_BATCH];
		size_t k = 0;
		for (; k < TERMINATE_BATCH && at + k < n; k++)
			batch[k] = x->ids[at + k];
		sbx_error e;
		x->pending++;
		if (aws_ec2_terminate_instances(x->c, batch, k, cleanup_terminated, x, &e) < 0) {
			x->pending--; /* never started: the hold keeps x alive */
			if (x->err.status == SBX_OK)
				x->err = e;
		}
	}
	cleanup_terminated(x, NULL);
}

int sbx_ec2_cleanup(aws_client *c, const char *owner, void (*on_done)(void *ud, const sbx_error *err, size_t n),
		    void *ud, sbx_error *err)
{
	cleanup_ctx *x = calloc(1, sizeof *x);
	if (!x) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return -1;
	}
	x->c = c;
	x->on_done = on_done;
	x->ud = ud;
	const char *owners[] = {owner, NULL};
	const char *keys[] = {SBX_EC2_OWNER_TAG, NULL};
	const char *states[] = {"pending", "running", "stopping", "stopped", NULL};
	aws_ec2_filter f[2] = {{"instance-state-name", states}};
	f[1] = owner ? (aws_ec2_filter){"tag:" SBX_EC2_OWNER_TAG, owners} : (aws_ec2_filter){"tag-key", keys};
	if (aws_ec2_describe_instances(c, NULL, 0, f, 2, cleanup_found, x, err) < 0) {
		free(x);
		return -1;
	}
	return 0;
}

/* Objects: list a page, delete its keys, then the next page. */
typedef struct objects_ctx {
	aws_client *c;
	char bucket[64], prefix[1024], next[1024];
	size_t deleted, pending;
	sbx_error err;
	void (*on_done)(void *ud, const sbx_error *err, size_t n);
	void *ud;
} objects_ctx;

static void objects_list_page(objects_ctx *x);

static void objects_finish(objects_ctx *x)
{
	x->on_done(x->ud, x->err.status == SBX_OK ? NULL : &x->err, x->deleted);
	free(x);
}

/* One delete (or the hold while they start) is over. */
static void objects_step_done(objects_ctx *x)
{
	if (--x->pending > 0)
		return;
	if (x->next[0] && x->err.status == SBX_OK)
		objects_list_page(x);
	else
		objects_finish(x);
}

static void object_gone(void *ud, const sbx_error *err)
{
	objects_ctx *x = ud;
	if (err && x->err.status == SBX_OK)
		x->err = *err;
	if (!err)
		x->deleted++;
	objects_step_done(x);
}

static void objects_listed(void *ud, const sbx_error *err, const char *const *keys, size_t n, const char *next)
{
	objects_ctx *x = ud;
	if (err) {
		x->err = *err;
		objects_finish(x);
		return;
	}
	snprintf(x->next, sizeof x->next, "%s", next);
	x->pending = 1; /* held while the deletes start */
	for (size_t i = 0; i < n; i++) {
		sbx_error e;
		x->pending++;
		if (aws_s3_delete_object(x->c, x->bucket, keys[i], object_gone, x, &e) < 0) {
			x->pending--; /* never started: the hold keeps x alive */
			if (x->err.status == SBX_OK)
				x->err = e;
		}
	}
	objects_step_done(x);
}

static void objects_list_page(objects_ctx *x)
{
	sbx_error e;
	if (aws_s3_list_objects(x->c, x->bucket, x->prefix, x->next, objects_listed, x, &e) < 0) {
		x->err = e;
		objects_finish(x);
	}
}

int sbx_ec2_cleanup_objects(aws_client *c, const char *bucket, const char *prefix, const char *owner,
			    void (*on_done)(void *ud, const sbx_error *err, size_t n), void *ud, sbx_error *err)
{
	if (!bucket || !*bucket) {
		sbx_error_set(err, SBX_E_INVALID, EINVAL, "invalid", "EC2 cleanup: needs the S3 bucket");
		return -1;
	}
	objects_ctx *x = calloc(1, sizeof *x);
	if (!x) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return -1;
	}
	x->c = c;
	x->on_done = on_done;
	x->ud = ud;
	snprintf(x->bucket, sizeof x->bucket, "%s", bucket);
	char name[256];
	snprintf(name, sizeof name, "sbx/%s", owner ? owner : "");
	if (owner)
		strcat(name, "/");
	aws_s3_key(prefix, name, x->prefix, sizeof x->prefix);
	if (aws_s3_list_objects(c, x->bucket, x->prefix, NULL, objects_listed, x, err) < 0) {
		free(x);
		return -1;
	}
	return 0;
}

/* The agent's unit: loopback only, the secret from its root-only file, and
 * (unless allowed) commands kept from the metadata service, which needs the
 * agent's own cgroup subtree (Delegate=yes). */
static int append_unit(sbx_buf *out, unsigned port, int allow_metadata)
{
	return aws_buf_printf(out,
			      "[Unit]\n"
			      "Description=sbx agent (reached through SSM port forwarding)\n"
			      "After=network-online.target\n"
			      "ConditionPathExists=" SBX_EC2_KEY_PATH "\n"
			      "[Service]\n"
			      "ExecStart=/usr/local/bin/sbx-agent --listen 127.0.0.1:%u --secret-file " SBX_EC2_KEY_PATH
			      "%s\n"
			      "Delegate=yes\n"
			      "Restart=always\n"
			      "RestartPreventExitStatus=2\n" /* a setup the machine cannot give: no use retrying */
			      "[Install]\n"
			      "WantedBy=multi-user.target\n",
			      port, allow_metadata ? "" : " --block-metadata");
}

int sbx_ec2_user_data(const sbx_ec2_boot *b, sbx_buf *out)
{
	int rc = aws_buf_printf(out, "#!/bin/sh\n"
				     "# sbx: the agent's secret (root-only), %s, run on the loopback only.\n"
				     "set -eu\n"
				     "umask 077\n"
				     "curl -fsS --retry 5 -o " SBX_EC2_KEY_PATH ".part '%s'\n"
				     "mv " SBX_EC2_KEY_PATH ".part " SBX_EC2_KEY_PATH "\n"
				     "umask 022\n",
				b->agent_url ? "sbx-agent fetched (checksum verified)" : "sbx-agent baked in the AMI",
				b->key_url);
	if (rc == 0 && b->agent_url)
		rc = aws_buf_printf(out,
				    "curl -fsS --retry 5 -o /usr/local/bin/sbx-agent.part '%s'\n"
				    "echo '%s  /usr/local/bin/sbx-agent.part' | sha256sum -c -\n"
				    "chmod 0755 /usr/local/bin/sbx-agent.part\n"
				    "mv /usr/local/bin/sbx-agent.part /usr/local/bin/sbx-agent\n",
				    b->agent_url, b->agent_sha256);
	if (rc == 0)
		rc = aws_buf_printf(out, "cat > /etc/systemd/system/sbx-agent.service <<'EOF'\n");
	if (rc == 0)
		rc = append_unit(out, b->port, b->allow_metadata);
	if (rc == 0)
		rc = aws_buf_printf(out, "EOF\n"
					 "systemctl daemon-reload\n"
					 "systemctl enable sbx-agent.service\n"
					 "systemctl restart sbx-agent.service\n");
	return rc;
}
