/* test_ec2_sandbox.c — an EC2 sandbox's whole life without AWS: moto
 * (EC2, S3; signatures checked) and the Session Manager emulator (SSM API
 * and data channel, signatures checked with the same key) stand in for
 * AWS; the emulator boots each instance from its real user data
 * (instance_boot.py), so the agent and its secret arrive as on EC2. sbx_ec2_up ships the agent
 * through S3, launches with the ownership tags, waits for running and
 * Online, opens the data channel and the session; commands run; down
 * leaves no instance and no object. A failure after the launch (the data
 * channel refuses) terminates the instance and deletes the object too. */
#include "backends/aws/ec2.h"
#include "backends/aws/ec2_sandbox.h"
#include "backends/aws/s3.h"
#include "aws_fixture.h"
#include "core/internal.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static aws_moto moto;

static sbx_loop *loop;
static sbx_http *http;
static aws_client *client;

/* The Session Manager emulator, booting each instance from its user data
 * (instance_boot.py: the instance's own loopback, files and agent); SSM's
 * endpoint is then the emulator. */
static int start_emulator(aws_emulator *em, const char *extra)
{
	const char *args[] = {extra, NULL};
	if (aws_emulator_start_boot(em, &moto, args, "/tmp/sbx-test-ssm-emulator.log") < 0)
		return -1;
	aws_emulator_export(em);
	return 0;
}

static sbx_ec2_config config(void)
{
	sbx_ec2_settings s = {.region = moto.region, .vpc_id = moto.vpc, .security_group_id = moto.sg,
			      .subnet_id = moto.subnet, .instance_profile = moto.profile, .s3_bucket = moto.bucket,
			      .s3_key_prefix = "sandbox-comms", .extra_tags_str = "team=research;env=test",
			      .session_timeout_s = 20, .dotenv_path = ""};
	sbx_ec2_config c;
	char why[512];
	if (sbx_ec2_config_load(&s, &c, why, sizeof why) < 0)
		printf("# config: %s\n", why);
	return c;
}

/* ------------------------------------------------------------- waiting */

typedef struct waiter {
	int done;
	sbx_error err;
	size_t n;
	aws_ec2_instance inst[4];
} waiter;

static void on_ready(void *ud, sbx_ec2_sandbox *sb, const sbx_error *err)
{
	(void)sb;
	waiter *w = ud;
	w->done = 1;
	w->err = err ? *err : (sbx_error){0};
}

static void on_done(void *ud, const sbx_error *err)
{
	waiter *w = ud;
	w->done = 1;
	w->err = err ? *err : (sbx_error){0};
}

static void on_instances(void *ud, const sbx_error *err, const aws_ec2_instance *list, size_t n)
{
	waiter *w = ud;
	w->done = 1;
	w->err = err ? *err : (sbx_error){0};
	w->n = n;
	for (size_t i = 0; i < n && i < 4; i++)
		w->inst[i] = list[i];
}

static void on_body(void *ud, const sbx_error *err, const uint8_t *p, size_t n)
{
	(void)p;
	(void)n;
	on_done(ud, err);
}

/* Live instances carrying this owner tag. */
static size_t owned_live(const char *owner, waiter *w)
{
	const char *owners[] = {owner, NULL};
	const char *states[] = {"pending", "running", "stopping", "stopped", NULL};
	aws_ec2_filter f[] = {{"tag:" SBX_EC2_OWNER_TAG, owners}, {"instance-state-name", states}};
	sbx_error err;
	memset(w, 0, sizeof *w);
	if (aws_ec2_describe_instances(client, NULL, 0, f, 2, on_instances, w, &err) < 0)
		return 99;
	sbx_loop_run_until(loop, &w->done);
	return w->err.status == SBX_OK ? w->n : 99;
}

/* --------------------------------------------------------------- tests */

/* The emulator's sessions: how many were started, how many are still open. */
static int emulator_sessions(int *open_now)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd,
		 "python3 -c 'import json,sys,urllib.request; s=json.load(urllib.request.urlopen(sys.argv[1]+\"/stats\")); "
		 "print(s[\"sessions\"], len(s[\"open_sessions\"]))' %s",
		 getenv("AWS_ENDPOINT_URL_SSM"));
	FILE *p = popen(cmd, "r");
	int started = -1;
	if (!p || fscanf(p, "%d %d", &started, open_now) != 2)
		started = -1;
	if (p)
		pclose(p);
	return started;
}

static void up_exec_down(void)
{
	aws_emulator em;
	CHECK(start_emulator(&em, NULL) == 0);
	sbx_ec2_config cfg = config();
	const char *agent = getenv("SBX_AGENT") ? getenv("SBX_AGENT") : "build/sbx-agent";
	waiter w = {0};
	sbx_ec2_up_opts o = {.cfg = &cfg, .task = "mytask", .owner = "run-e2e-1", .agent_path = agent,
			     .poll_ms = 50, .on_ready = on_ready, .ud = &w};
	sbx_error err;
	sbx_ec2_sandbox *sb = sbx_ec2_up(loop, client, &o, &err);
	CHECK(sb != NULL);
	sbx_loop_run_until(loop, &w.done);
	if (w.err.status != SBX_OK)
		printf("# %s\n", w.err.message);
	int ready = w.err.status == SBX_OK && sbx_ec2_session(sb) != NULL;

	int ran = 0;
	if (ready) {
		const char *argv[] = {"sh", "-c", "echo on-the-instance", NULL};
		sbx_exec_opts eo = {.argv = argv};
		sbx_exec_result r;
		ran = sbx_exec_sync(sbx_ec2_session(sb), &eo, &r) == 0 && r.exit_code == 0 &&
		      strcmp((char *)r.out, "on-the-instance\n") == 0;
		sbx_exec_result_free(&r);
		/* The session is terminated under us: the next call opens a new one. */
		ran = ran && aws_child_say(&em.child, "terminate") == 0;
		ran = ran && sbx_exec_sync(sbx_ec2_session(sb), &eo, &r) == 0 && r.exit_code == 0;
		sbx_exec_result_free(&r);
	}
	/* The instance carries the Inspect sandbox's tags, the extra ones and ours. */
	waiter d;
	size_t live = owned_live("run-e2e-1", &d);
	int tags = 0;
	for (size_t i = 0; live == 1 && i < d.inst[0].n_tags; i++) {
		const sbx_ec2_tag *t = &d.inst[0].tags[i];
		tags += !strcmp(t->key, "Name") && !strcmp(t->value, "inspect_ec2_sandbox_mytask");
		tags += !strcmp(t->key, "inspect_task") && !strcmp(t->value, "mytask");
		tags += !strcmp(t->key, "inspect_sandbox") && !strcmp(t->value, "true");
		tags += !strcmp(t->key, "team") && !strcmp(t->value, "research");
	}
	waiter down = {0};
	sbx_ec2_down(sb, on_done, &down);
	sbx_loop_run_until(loop, &down.done);
	waiter after;
	size_t left = owned_live("run-e2e-1", &after);
	int open_sessions = -1, sessions = emulator_sessions(&open_sessions);
	sbx_ec2_free(sb);
	aws_emulator_stop(&em);
	CHECK(ready);
	CHECK(ran);
	CHECK_EQ_INT(sessions, 2);      /* the first, and the one after the terminate */
	CHECK_EQ_INT(open_sessions, 0); /* down terminated both */
	CHECK_EQ_INT(live, 1);
	CHECK_EQ_INT(tags, 4);
	CHECK_EQ_STR(d.inst[0].http_tokens, "required");
	CHECK(down.err.status == SBX_OK);
	CHECK_EQ_INT(left, 0);
}

static void failure_after_launch_leaves_nothing(void)
{
	aws_emulator em;
	CHECK(start_emulator(&em, "--session-type=Standard_Stream") == 0);
	sbx_ec2_config cfg = config();
	const char *agent = getenv("SBX_AGENT") ? getenv("SBX_AGENT") : "build/sbx-agent";
	waiter w = {0};
	sbx_ec2_up_opts o = {.cfg = &cfg, .task = "t", .owner = "run-e2e-2", .agent_path = agent,
			     .poll_ms = 50, .on_ready = on_ready, .ud = &w};
	sbx_error err;
	sbx_ec2_sandbox *sb = sbx_ec2_up(loop, client, &o, &err);
	CHECK(sb != NULL);
	sbx_loop_run_until(loop, &w.done);
	waiter after;
	size_t left = owned_live("run-e2e-2", &after);
	aws_emulator_stop(&em);
	sbx_ec2_free(sb);
	CHECK(w.err.status != SBX_OK);
	CHECK(strstr(w.err.message, "not a port forwarding session") != NULL);
	CHECK(strstr(w.err.message, "EC2 sandbox i-") != NULL);
	CHECK_EQ_INT(left, 0);

	/* Missing settings never launch anything. */
	sbx_ec2_settings none = {.dotenv_path = ""};
	sbx_ec2_config c2;
	char why[512];
	unsetenv("AWS_REGION");
	CHECK(sbx_ec2_config_load(&none, &c2, why, sizeof why) == -1);
	CHECK(strstr(why, "INSPECT_EC2_SANDBOX_VPC_ID") != NULL);
}

static void the_agent_object_is_removed(void)
{
	/* The agent's object exists while the sandbox lives and is gone after down. */
	aws_emulator em;
	CHECK(start_emulator(&em, NULL) == 0);
	sbx_ec2_config cfg = config();
	const char *agent = getenv("SBX_AGENT") ? getenv("SBX_AGENT") : "build/sbx-agent";
	waiter w = {0};
	sbx_ec2_up_opts o = {.cfg = &cfg, .task = "t", .owner = "run-e2e-3", .agent_path = agent,
			     .poll_ms = 50, .on_ready = on_ready, .ud = &w};
	sbx_error err;
	sbx_ec2_sandbox *sb = sbx_ec2_up(loop, client, &o, &err);
	CHECK(sb != NULL);
	sbx_loop_run_until(loop, &w.done);
	CHECK(w.err.status == SBX_OK);
	char key[1024], secret_key[1040];
	snprintf(key, sizeof key, "%s", sbx_ec2_s3_key(sb));
	snprintf(secret_key, sizeof secret_key, "%s.key", key);
	waiter g = {0};
	CHECK(aws_s3_get_object(client, moto.bucket, key, on_body, &g, &err) == 0);
	sbx_loop_run_until(loop, &g.done);
	/* the secret's object went as soon as the agent answered */
	waiter k = {0};
	CHECK(aws_s3_get_object(client, moto.bucket, secret_key, on_body, &k, &err) == 0);
	sbx_loop_run_until(loop, &k.done);
	CHECK(k.err.status == SBX_E_REMOTE && strstr(k.err.message, "NoSuchKey") != NULL);
	waiter down = {0};
	sbx_ec2_down(sb, on_done, &down);
	sbx_loop_run_until(loop, &down.done);
	waiter gone = {0};
	CHECK(aws_s3_get_object(client, moto.bucket, key, on_body, &gone, &err) == 0);
	sbx_loop_run_until(loop, &gone.done);
	sbx_ec2_free(sb);
	aws_emulator_stop(&em);
	CHECK(strncmp(key, "sandbox-comms/sbx/run-e2e-3/", 28) == 0);
	CHECK(g.err.status == SBX_OK);
	CHECK(gone.err.status == SBX_E_REMOTE && strstr(gone.err.message, "NoSuchKey") != NULL);
}

typedef struct progress {
	int launching;
	char last[256];
} progress;

static void on_progress(void *ud, const char *what)
{
	progress *p = ud;
	p->launching |= strncmp(what, "launching", 9) == 0;
	snprintf(p->last, sizeof p->last, "%s", what);
}

static void on_ready_unexpected(void *ud, sbx_ec2_sandbox *sb, const sbx_error *err)
{
	(void)sb;
	(void)err;
	((progress *)ud)->launching = -100; /* down was called: on_ready must not be */
}

/* Down while RunInstances is in flight (Ctrl-C at the worst moment): the
 * instance it makes, and the agent's object, are removed too. */
static void down_during_launch_removes_it(void)
{
	aws_emulator em;
	CHECK(start_emulator(&em, NULL) == 0);
	sbx_ec2_config cfg = config();
	const char *agent = getenv("SBX_AGENT") ? getenv("SBX_AGENT") : "build/sbx-agent";
	progress p = {0};
	sbx_ec2_up_opts o = {.cfg = &cfg, .task = "t", .owner = "run-halt", .agent_path = agent,
			     .poll_ms = 50, .on_ready = on_ready_unexpected,
			     .on_progress = on_progress, .ud = &p};
	sbx_error err;
	sbx_ec2_sandbox *sb = sbx_ec2_up(loop, client, &o, &err);
	CHECK(sb != NULL);
	sbx_loop_run_until(loop, &p.launching); /* RunInstances has just been sent */
	char key[1024];
	snprintf(key, sizeof key, "%s", sbx_ec2_s3_key(sb));
	waiter down = {0};
	sbx_ec2_down(sb, on_done, &down);
	sbx_loop_run_until(loop, &down.done);
	waiter after;
	size_t left = owned_live("run-halt", &after);
	waiter gone = {0};
	CHECK(aws_s3_get_object(client, moto.bucket, key, on_body, &gone, &err) == 0);
	sbx_loop_run_until(loop, &gone.done);
	const char *id = sbx_ec2_instance_id(sb);
	int launched = strncmp(id, "i-", 2) == 0;
	sbx_ec2_free(sb);
	aws_emulator_stop(&em);
	CHECK(p.launching == 1);
	CHECK(launched);
	CHECK(down.err.status == SBX_OK);
	CHECK_EQ_INT(left, 0);
	CHECK(gone.err.status == SBX_E_REMOTE && strstr(gone.err.message, "NoSuchKey") != NULL);
}

typedef struct cleaned {
	int done;
	sbx_error err;
	size_t n;
} cleaned;

static void on_cleaned(void *ud, const sbx_error *err, size_t n)
{
	cleaned *c = ud;
	c->done = 1;
	c->err = err ? *err : (sbx_error){0};
	c->n = n;
}

static void on_launched(void *ud, const sbx_error *err, char (*ids)[32], size_t n)
{
	(void)ids;
	waiter *w = ud;
	w->done = 1;
	w->err = err ? *err : (sbx_error){0};
	w->n = n;
}

/* What a killed run leaves is found by its owner tag (or any sbx tag) and terminated. */
static void cleanup_by_owner_tag(void)
{
	sbx_ec2_config cfg = config();
	const char *owners[] = {"run-killed", "run-killed", "run-other"};
	for (int i = 0; i < 3; i++) {
		sbx_ec2_tag tag;
		snprintf(tag.key, sizeof tag.key, SBX_EC2_OWNER_TAG);
		snprintf(tag.value, sizeof tag.value, "%s", owners[i]);
		aws_ec2_launch l = {moto.ami, cfg.instance_type, cfg.subnet_id, cfg.security_group_id, NULL, &tag, 1,
				    NULL, 0, 0, NULL, NULL};
		waiter w = {0};
		sbx_error err;
		CHECK(aws_ec2_run_instances(client, &l, on_launched, &w, &err) == 0);
		sbx_loop_run_until(loop, &w.done);
		CHECK(w.err.status == SBX_OK && w.n == 1);
	}
	cleaned one = {0};
	sbx_error err;
	CHECK(sbx_ec2_cleanup(client, "run-killed", on_cleaned, &one, &err) == 0);
	sbx_loop_run_until(loop, &one.done);
	CHECK(one.err.status == SBX_OK);
	CHECK_EQ_INT(one.n, 2);
	waiter w;
	CHECK_EQ_INT(owned_live("run-killed", &w), 0);
	CHECK_EQ_INT(owned_live("run-other", &w), 1);
	cleaned all = {0};
	CHECK(sbx_ec2_cleanup(client, NULL, on_cleaned, &all, &err) == 0);
	sbx_loop_run_until(loop, &all.done);
	CHECK(all.err.status == SBX_OK);
	CHECK_EQ_INT(all.n, 1);
	CHECK_EQ_INT(owned_live("run-other", &w), 0);
}

static void on_put(void *ud, const sbx_error *err)
{
	on_done(ud, err);
}

/* Objects sbx shipped are found under PREFIX/sbx/[OWNER/] and deleted; others stay. */
static void cleanup_objects_by_prefix(void)
{
	const char *keys[] = {"pfx/sbx/run-a/1/sbx-agent", "pfx/sbx/run-a/2/sbx-agent", "pfx/sbx/run-b/1/sbx-agent",
			      "pfx/other/keep", "pfx/sbx-not-ours"};
	for (int i = 0; i < 5; i++) {
		waiter w = {0};
		sbx_error err;
		CHECK(aws_s3_put_object(client, moto.bucket, keys[i], "x", 1, NULL, on_put, &w, &err) == 0);
		sbx_loop_run_until(loop, &w.done);
		CHECK(w.err.status == SBX_OK);
	}
	cleaned one = {0}, all = {0};
	sbx_error err;
	CHECK(sbx_ec2_cleanup_objects(client, moto.bucket, "pfx", "run-a", on_cleaned, &one, &err) == 0);
	sbx_loop_run_until(loop, &one.done);
	CHECK(one.err.status == SBX_OK);
	CHECK_EQ_INT(one.n, 2);
	CHECK(sbx_ec2_cleanup_objects(client, moto.bucket, "pfx/", NULL, on_cleaned, &all, &err) == 0);
	sbx_loop_run_until(loop, &all.done);
	CHECK(all.err.status == SBX_OK);
	CHECK_EQ_INT(all.n, 1);
	for (int i = 3; i < 5; i++) {
		waiter g = {0};
		CHECK(aws_s3_get_object(client, moto.bucket, keys[i], on_body, &g, &err) == 0);
		sbx_loop_run_until(loop, &g.done);
		CHECK(g.err.status == SBX_OK);
	}
	cleaned bad = {0};
	CHECK(sbx_ec2_cleanup_objects(client, "no-such-bucket-sbx", "", NULL, on_cleaned, &bad, &err) == 0);
	sbx_loop_run_until(loop, &bad.done);
	CHECK(bad.err.status != SBX_OK && strstr(bad.err.message, "NoSuchBucket") != NULL);
}

/* An AMI with the agent baked in (ami/): nothing shipped but the secret,
 * which the boot script still fetches; the session proves it. */
static void baked_ami_gets_its_secret(void)
{
	aws_emulator em;
	const char *agent = getenv("SBX_AGENT") ? getenv("SBX_AGENT") : "build/sbx-agent";
	char baked[1100];
	snprintf(baked, sizeof baked, "--baked-agent=%s", agent);
	CHECK(start_emulator(&em, baked) == 0);
	sbx_ec2_config cfg = config();
	waiter w = {0};
	sbx_ec2_up_opts o = {.cfg = &cfg, .task = "t", .owner = "run-baked", .agent_path = NULL, .poll_ms = 50,
			     .on_ready = on_ready, .ud = &w};
	sbx_error err;
	sbx_ec2_sandbox *sb = sbx_ec2_up(loop, client, &o, &err);
	CHECK(sb != NULL);
	sbx_loop_run_until(loop, &w.done);
	if (w.err.status != SBX_OK)
		printf("# %s\n", w.err.message);
	int ran = 0;
	if (w.err.status == SBX_OK) {
		const char *argv[] = {"cat", "/proc/self/cgroup", NULL};
		sbx_exec_opts eo = {.argv = argv};
		sbx_exec_result r;
		ran = sbx_exec_sync(sbx_ec2_session(sb), &eo, &r) == 0 && r.exit_code == 0 &&
		      strstr((char *)r.out, "sbx-commands") != NULL; /* kept from the metadata service */
		sbx_exec_result_free(&r);
	}
	CHECK(w.err.status == SBX_OK);
	CHECK_EQ_STR(sbx_ec2_s3_key(sb), "");
	CHECK(ran);
	waiter down = {0};
	sbx_ec2_down(sb, on_done, &down);
	sbx_loop_run_until(loop, &down.done);
	sbx_ec2_free(sb);
	aws_emulator_stop(&em);
	CHECK(down.err.status == SBX_OK);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	unsetenv("AWS_ENDPOINT_URL");
	char why[512];
	if (aws_moto_start(&moto, "/tmp/sbx-test-moto-e2e.log", why, sizeof why) < 0) {
		printf("FAIL moto_fixture: %s\n", why);
		aws_moto_stop(&moto);
		return 1;
	}
	loop = sbx_loop_new();
	http = sbx_http_new(loop);
	aws_credentials cr;
	memset(&cr, 0, sizeof cr);
	snprintf(cr.access_key_id, sizeof cr.access_key_id, "%s", moto.akid);
	snprintf(cr.secret_access_key, sizeof cr.secret_access_key, "%s", moto.secret);
	aws_client_opts co = {.region = moto.region, .endpoint_url = moto.endpoint, .static_creds = &cr};
	sbx_error err;
	client = aws_client_new(loop, http, &co, &err);
	RUN(up_exec_down);
	RUN(failure_after_launch_leaves_nothing);
	RUN(the_agent_object_is_removed);
	RUN(cleanup_by_owner_tag);
	RUN(down_during_launch_removes_it);
	RUN(cleanup_objects_by_prefix);
	RUN(baked_ami_gets_its_secret);
	aws_client_free(client);
	sbx_http_free(http);
	sbx_loop_free(loop);
	aws_moto_stop(&moto);
	return test_summary();
}
