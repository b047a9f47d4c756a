/* test_aws_moto.c — host/backends/aws's EC2, SSM, S3 and STS clients against moto's
 * server on loopback with signature checking on (tests/aws/moto_fixture.py):
 * every request must carry a SigV4 signature moto recomputes with botocore
 * and accepts. Also: a wrong secret and an unknown key are refused with an
 * error that says so (and are not retried), and a local server that
 * throttles shows the retries with backoff; an assume-role profile's
 * credentials sign a call and are kept until near their expiry. */
#include "backends/aws/api.h"
#include "backends/aws/credentials.h"
#include "backends/aws/ec2.h"
#include "backends/aws/s3.h"
#include "backends/aws/ssm.h"
#include "backends/aws/text.h"
#include "aws_fixture.h"
#include "net/http.h"
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static aws_moto moto;
static sbx_loop *loop;
static sbx_http *http;
static aws_client *client;

/* ------------------------------------------------------------- fixture */

/* moto's log, for when a test fails: /tmp/sbx-test-moto.log */
static int start_moto(char *why, size_t whylen)
{
	return aws_moto_start(&moto, "/tmp/sbx-test-moto.log", why, whylen);
}

static void stop_moto(void)
{
	aws_moto_stop(&moto);
}

static aws_client *new_client(const char *akid, const char *secret, const char *endpoint, unsigned retries)
{
	aws_credentials cr;
	memset(&cr, 0, sizeof cr);
	snprintf(cr.access_key_id, sizeof cr.access_key_id, "%s", akid);
	snprintf(cr.secret_access_key, sizeof cr.secret_access_key, "%s", secret);
	aws_client_opts o = {.region = moto.region, .endpoint_url = endpoint, .static_creds = &cr,
			     .max_retries = retries, .max_retries_set = 1, .backoff_base_ms = 10};
	sbx_error err;
	return aws_client_new(loop, http, &o, &err);
}

/* ------------------------------------------------------------- waiting */

typedef struct waiter {
	int done;
	sbx_error err;
	char text[512];
	char ids[4][32];
	size_t n;
	aws_ec2_instance inst[8];
	sbx_buf body;
} waiter;

static void set_done(waiter *w, const sbx_error *err)
{
	w->done = 1;
	if (err)
		w->err = *err;
	else
		w->err.status = SBX_OK;
}

static void on_text(void *ud, const sbx_error *err, const char *v)
{
	waiter *w = ud;
	set_done(w, err);
	snprintf(w->text, sizeof w->text, "%s", v ? v : "");
}

static void on_ids(void *ud, const sbx_error *err, char (*ids)[32], size_t n)
{
	waiter *w = ud;
	set_done(w, err);
	for (size_t i = 0; i < n && i < 4; i++)
		memcpy(w->ids[i], ids[i], 32);
	w->n = n;
}

static void on_instances(void *ud, const sbx_error *err, const aws_ec2_instance *list, size_t n)
{
	waiter *w = ud;
	set_done(w, err);
	w->n = n;
	for (size_t i = 0; i < n && i < 8; i++)
		w->inst[i] = list[i];
}

static void on_done(void *ud, const sbx_error *err)
{
	set_done(ud, err);
}

static void on_body(void *ud, const sbx_error *err, const uint8_t *p, size_t n)
{
	waiter *w = ud;
	set_done(w, err);
	if (p)
		sbx_buf_append(&w->body, p, n);
}

static void on_invocation(void *ud, const sbx_error *err, const aws_ssm_invocation *inv)
{
	waiter *w = ud;
	set_done(w, err);
	if (inv)
		snprintf(w->text, sizeof w->text, "%s %d", inv->status, inv->exit_code);
}

static int run(waiter *w)
{
	return sbx_loop_run_until(loop, &w->done);
}

/* --------------------------------------------------------------- tests */

static void ssm_get_parameter(void)
{
	waiter w = {0};
	sbx_error err;
	CHECK(aws_ssm_get_parameter(client, moto.ami_param, on_text, &w, &err) == 0);
	CHECK(run(&w) == 0);
	if (w.err.status != SBX_OK)
		printf("# %s\n", w.err.message);
	CHECK(w.err.status == SBX_OK);
	CHECK_EQ_STR(w.text, moto.ami);

	waiter m = {0};
	CHECK(aws_ssm_get_parameter(client, "/no/such/parameter", on_text, &m, &err) == 0);
	CHECK(run(&m) == 0);
	CHECK(m.err.status == SBX_E_REMOTE);
	CHECK(strstr(m.err.message, "ParameterNotFound") != NULL);
}

static char launched[32];

static void ec2_lifecycle(void)
{
	sbx_ec2_tag tags[] = {{"Name", "inspect_ec2_sandbox_task"}, {"inspect_task", "task"},
			      {"inspect_sandbox", "true"}, {"sbx-owner", "test-run-1"}, {"team", "research"}};
	const char *ud = "#!/bin/sh\necho hello\n";
	aws_ec2_launch l = {moto.ami, "t3a.large", moto.subnet, moto.sg, moto.profile, tags, 5, ud, strlen(ud),
			    12, NULL, "sbx-test-token-1"};
	waiter w = {0};
	sbx_error err;
	CHECK(aws_ec2_run_instances(client, &l, on_ids, &w, &err) == 0);
	CHECK(run(&w) == 0);
	if (w.err.status != SBX_OK)
		printf("# %s\n", w.err.message);
	CHECK(w.err.status == SBX_OK);
	CHECK_EQ_INT(w.n, 1);
	CHECK(strncmp(w.ids[0], "i-", 2) == 0);
	snprintf(launched, sizeof launched, "%s", w.ids[0]);


	const char *ids[] = {launched};
	waiter d = {0};
	CHECK(aws_ec2_describe_instances(client, ids, 1, NULL, 0, on_instances, &d, &err) == 0);
	CHECK(run(&d) == 0);
	CHECK(d.err.status == SBX_OK);
	CHECK_EQ_INT(d.n, 1);
	CHECK_EQ_STR(d.inst[0].id, launched);
	CHECK_EQ_STR(d.inst[0].instance_type, "t3a.large");
	CHECK_EQ_STR(d.inst[0].image_id, moto.ami);
	CHECK(strcmp(d.inst[0].state, "running") == 0 || strcmp(d.inst[0].state, "pending") == 0);
	CHECK_EQ_STR(d.inst[0].http_tokens, "required");
	int found_owner = 0, found_team = 0;
	for (size_t i = 0; i < d.inst[0].n_tags; i++) {
		found_owner |= !strcmp(d.inst[0].tags[i].key, "sbx-owner") &&
			       !strcmp(d.inst[0].tags[i].value, "test-run-1");
		found_team |= !strcmp(d.inst[0].tags[i].key, "team") && !strcmp(d.inst[0].tags[i].value, "research");
	}
	CHECK(found_owner && found_team);

	/* Found by the ownership tag, as cleanup finds them. */
	const char *owner[] = {"test-run-1", NULL};
	const char *states[] = {"pending", "running", "stopping", "stopped", NULL};
	aws_ec2_filter f[] = {{"tag:sbx-owner", owner}, {"instance-state-name", states}};
	waiter byf = {0};
	CHECK(aws_ec2_describe_instances(client, NULL, 0, f, 2, on_instances, &byf, &err) == 0);
	CHECK(run(&byf) == 0);
	CHECK(byf.err.status == SBX_OK);
	CHECK_EQ_INT(byf.n, 1);
	CHECK_EQ_STR(byf.inst[0].id, launched);

	waiter t = {0};
	CHECK(aws_ec2_terminate_instances(client, ids, 1, on_done, &t, &err) == 0);
	CHECK(run(&t) == 0);
	CHECK(t.err.status == SBX_OK);
	waiter after = {0};
	CHECK(aws_ec2_describe_instances(client, NULL, 0, f, 2, on_instances, &after, &err) == 0);
	CHECK(run(&after) == 0);
	CHECK(after.err.status == SBX_OK);
	CHECK_EQ_INT(after.n, 0);

	/* An AMI that does not exist: the error names the problem. */
	aws_ec2_launch bad = l;
	bad.subnet_id = "subnet-00000000";
	bad.client_token = NULL;
	waiter b = {0};
	CHECK(aws_ec2_run_instances(client, &bad, on_ids, &b, &err) == 0);
	CHECK(run(&b) == 0);
	CHECK(b.err.status == SBX_E_REMOTE);
	CHECK(strstr(b.err.message, "RunInstances") != NULL);
	CHECK(strstr(b.err.message, "InvalidSubnetID") != NULL);
}

static void ssm_send_command(void)
{
	sbx_ec2_tag tags[] = {{"sbx-owner", "test-run-2"}};
	aws_ec2_launch l = {moto.ami, "t3a.small", moto.subnet, moto.sg, NULL, tags, 1, NULL, 0, 0, NULL, NULL};
	waiter w = {0};
	sbx_error err;
	CHECK(aws_ec2_run_instances(client, &l, on_ids, &w, &err) == 0);
	CHECK(run(&w) == 0 && w.err.status == SBX_OK);
	const char *cmds[] = {"echo hi", NULL};
	waiter c = {0};
	CHECK(aws_ssm_send_command(client, w.ids[0], cmds, 60, on_text, &c, &err) == 0);
	CHECK(run(&c) == 0);
	if (c.err.status != SBX_OK)
		printf("# %s\n", c.err.message);
	CHECK(c.err.status == SBX_OK);
	CHECK(strlen(c.text) > 8);
	char cmd_id[sizeof c.text];
	snprintf(cmd_id, sizeof cmd_id, "%s", c.text);
	waiter inv = {0};
	CHECK(aws_ssm_get_command_invocation(client, cmd_id, w.ids[0], on_invocation, &inv, &err) == 0);
	CHECK(run(&inv) == 0);
	CHECK(inv.err.status == SBX_OK);
	CHECK(strncmp(inv.text, "Success", 7) == 0);
	const char *ids[] = {w.ids[0]};
	waiter t = {0};
	CHECK(aws_ec2_terminate_instances(client, ids, 1, on_done, &t, &err) == 0);
	CHECK(run(&t) == 0 && t.err.status == SBX_OK);
}

static void botocore_check(const char *url, char *verdict, size_t len)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "python3 tests/aws/presign_check.py '%s' '%s' '%s' '%s'", url, moto.akid, moto.secret,
		 moto.region);
	FILE *p = popen(cmd, "r");
	if (!p)
		return;
	if (!fgets(verdict, (int)len, p))
		verdict[0] = 0;
	verdict[strcspn(verdict, "\n")] = 0;
	char rest[512];
	while (fgets(rest, sizeof rest, p)) /* read it all: no broken pipe for the checker */
		;
	pclose(p);
}

static void s3_objects_and_presigned_get(void)
{
	char key[256];
	aws_s3_key("prefix/", "/sbx/run-1/agent", key, sizeof key);
	CHECK_EQ_STR(key, "prefix/sbx/run-1/agent");
	uint8_t data[70000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	waiter p = {0};
	sbx_error err;
	CHECK(aws_s3_put_object(client, moto.bucket, key, data, sizeof data, NULL, on_done, &p, &err) == 0);
	CHECK(run(&p) == 0);
	if (p.err.status != SBX_OK)
		printf("# %s\n", p.err.message);
	CHECK(p.err.status == SBX_OK);

	waiter g = {0};
	CHECK(aws_s3_get_object(client, moto.bucket, key, on_body, &g, &err) == 0);
	CHECK(run(&g) == 0);
	if (g.err.status != SBX_OK)
		printf("# %s\n", g.err.message);
	CHECK(g.err.status == SBX_OK);
	int same = g.body.len == sizeof data && memcmp(g.body.data, data, sizeof data) == 0;
	sbx_buf_free(&g.body);
	CHECK(same);

	/* A presigned URL: botocore computes the same signature for it (moto
	 * cannot check presigned URLs while its authentication is on), and not
	 * for a tampered one. */
	sbx_buf url = {0};
	CHECK(aws_s3_presign_get(client, moto.bucket, key, 300, &url, &err) == 0);
	CHECK(strncmp(aws_buf_str(&url), moto.endpoint, strlen(moto.endpoint)) == 0);
	char verdict[64] = "", tampered[64] = "";
	botocore_check(aws_buf_str(&url), verdict, sizeof verdict);
	char *sig = strstr((char *)url.data, "X-Amz-Signature=");
	CHECK(sig != NULL);
	sig[strlen("X-Amz-Signature=")] ^= 1;
	botocore_check(aws_buf_str(&url), tampered, sizeof tampered);
	sbx_buf_free(&url);
	CHECK_EQ_STR(verdict, "OK");
	CHECK(strncmp(tampered, "MISMATCH", 8) == 0);

	waiter d = {0};
	CHECK(aws_s3_delete_object(client, moto.bucket, key, on_done, &d, &err) == 0);
	CHECK(run(&d) == 0 && d.err.status == SBX_OK);
	waiter gone = {0};
	CHECK(aws_s3_get_object(client, moto.bucket, key, on_body, &gone, &err) == 0);
	CHECK(run(&gone) == 0);
	sbx_buf_free(&gone.body);
	CHECK(gone.err.status == SBX_E_REMOTE);
	CHECK(strstr(gone.err.message, "NoSuchKey") != NULL);
}

static void bad_credentials_are_refused(void)
{
	aws_client *wrong = new_client(moto.akid, "not-the-secret", moto.endpoint, 3);
	aws_request rq = {.service = "ec2", .operation = "DescribeInstances", .path = "/",
			  .content_type = "application/x-www-form-urlencoded; charset=utf-8",
			  .body = "Action=DescribeInstances&Version=2016-11-15", .body_len = 43};
	aws_response r;
	int rc = aws_call_sync(wrong, &rq, &r);
	aws_response_free(&r);
	aws_client_free(wrong);
	CHECK(rc == -1);
	CHECK(r.error.status == SBX_E_REMOTE);
	CHECK(r.error.err_no == EACCES);
	CHECK(strstr(r.error.message, "AuthFailure") != NULL || strstr(r.error.message, "Signature") != NULL);
	CHECK(strstr(r.error.message, "credentials") != NULL);
	CHECK_EQ_INT(r.attempts, 1);

	aws_client *unknown = new_client("AKIAUNKNOWNUNKNOWN00", "x", moto.endpoint, 3);
	rc = aws_call_sync(unknown, &rq, &r);
	aws_response_free(&r);
	aws_client_free(unknown);
	CHECK(rc == -1);
	CHECK(r.error.err_no == EACCES);
	CHECK_EQ_INT(r.attempts, 1);
}

/* A server that answers "throttled" twice, then OK: one connection each. */
static void throttling_server(int lfd, int throttles)
{
	for (int i = 0; i <= throttles; i++) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			_exit(1);
		char buf[8192];
		ssize_t n = read(c, buf, sizeof buf);
		(void)n;
		const char *body = i < throttles
					   ? "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request "
					     "limit exceeded.</Message></Error></Errors><RequestID>x</RequestID></Response>"
					   : "<TerminateInstancesResponse><instancesSet/></TerminateInstancesResponse>";
		char head[256];
		int hl = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
				  i < throttles ? "503 Service Unavailable" : "200 OK", strlen(body));
		if (write(c, head, (size_t)hl) < 0 || write(c, body, strlen(body)) < 0)
			_exit(1);
		close(c);
	}
	_exit(0);
}

static void throttling_is_retried(void)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	CHECK(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 8) == 0);
	getsockname(lfd, (struct sockaddr *)&a, &al);
	pid_t pid = fork();
	if (pid == 0)
		throttling_server(lfd, 2);
	close(lfd);
	char ep[64];
	snprintf(ep, sizeof ep, "http://127.0.0.1:%d", ntohs(a.sin_port));
	aws_client *c = new_client("AKIDEXAMPLE", "secret", ep, 5);
	const char *ids[] = {"i-0123456789abcdef0"};
	waiter t = {0};
	sbx_error err;
	CHECK(aws_ec2_terminate_instances(c, ids, 1, on_done, &t, &err) == 0);
	CHECK(run(&t) == 0);
	aws_client_free(c);
	int st;
	waitpid(pid, &st, 0);
	CHECK(t.err.status == SBX_OK);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* With fewer retries than throttles the error says what happened. */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = 0;
	CHECK(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 8) == 0);
	getsockname(lfd, (struct sockaddr *)&a, &al);
	pid = fork();
	if (pid == 0)
		throttling_server(lfd, 2);
	close(lfd);
	snprintf(ep, sizeof ep, "http://127.0.0.1:%d", ntohs(a.sin_port));
	c = new_client("AKIDEXAMPLE", "secret", ep, 1);
	waiter t2 = {0};
	CHECK(aws_ec2_terminate_instances(c, ids, 1, on_done, &t2, &err) == 0);
	CHECK(run(&t2) == 0);
	aws_client_free(c);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	CHECK(t2.err.status == SBX_E_REMOTE);
	CHECK(strstr(t2.err.message, "RequestLimitExceeded") != NULL);
}

/* A fake instance metadata service and container credentials endpoint:
 * answers `requests` connections, checking the IMDSv2 token and the
 * container authorization header as AWS's endpoints do. */
static void metadata_server(int lfd, int requests)
{
	const char *creds = "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIAFROMMETADATA\",\"SecretAccessKey\":\"s\","
			    "\"Token\":\"tok\",\"Expiration\":\"2099-01-01T00:00:00Z\"}";
	for (int i = 0; i < requests; i++) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			_exit(1);
		char req[8192];
		ssize_t n = read(c, req, sizeof req - 1);
		req[n > 0 ? n : 0] = 0;
		const char *status = "200 OK", *body = "";
		if (strncmp(req, "PUT /latest/api/token ", 22) == 0)
			body = strstr(req, "X-aws-ec2-metadata-token-ttl-seconds: 21600") ? "TOKEN123" : "";
		else if (!strstr(req, "X-aws-ec2-metadata-token: TOKEN123") && strstr(req, " /latest/"))
			status = "401 Unauthorized";
		else if (strncmp(req, "GET /latest/meta-data/iam/security-credentials/ ", 48) == 0)
			body = "sbx-role\n";
		else if (strncmp(req, "GET /latest/meta-data/iam/security-credentials/sbx-role ", 56) == 0)
			body = creds;
		else if (strncmp(req, "GET /creds ", 11) == 0)
			body = strstr(req, "Authorization: secret-token") ? creds : "", status = *body ? status : "403 Forbidden";
		else
			status = "404 Not Found";
		char head[256];
		int hl = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
				  status, strlen(body));
		if (write(c, head, (size_t)hl) < 0 || write(c, body, strlen(body)) < 0)
			_exit(1);
		close(c);
	}
	_exit(0);
}

static pid_t start_metadata(int requests, char *url, size_t len)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 8) < 0)
		return -1;
	getsockname(lfd, (struct sockaddr *)&a, &al);
	pid_t pid = fork();
	if (pid == 0)
		metadata_server(lfd, requests);
	close(lfd);
	snprintf(url, len, "http://127.0.0.1:%d", ntohs(a.sin_port));
	return pid;
}

static const char *cred_vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
				   "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
				   "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
				   "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", NULL};

static void no_local_credentials(void)
{
	for (int i = 0; cred_vars[i]; i++)
		unsetenv(cred_vars[i]);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
}

static aws_client *resolving_client(const char *endpoint)
{
	aws_client_opts o = {.region = moto.region, .endpoint_url = endpoint};
	sbx_error err;
	return aws_client_new(loop, http, &o, &err);
}

static void credentials_from_imds_and_container(void)
{
	no_local_credentials();
	char url[64];
	pid_t pid = start_metadata(3, url, sizeof url);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	aws_client *c = resolving_client(moto.endpoint);
	aws_credentials cr;
	sbx_error err;
	int rc = aws_client_credentials_sync(c, &cr, &err);
	if (rc < 0)
		printf("# %s\n", err.message);
	aws_client_free(c);
	int st;
	waitpid(pid, &st, 0);
	CHECK(rc == 0);
	CHECK_EQ_STR(cr.access_key_id, "ASIAFROMMETADATA");
	CHECK_EQ_STR(cr.session_token, "tok");
	CHECK(cr.expiration == 4070908800);

	no_local_credentials();
	pid = start_metadata(1, url, sizeof url);
	char full[96];
	snprintf(full, sizeof full, "%s/creds", url);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", full, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token", 1);
	c = resolving_client(moto.endpoint);
	rc = aws_client_credentials_sync(c, &cr, &err);
	aws_client_free(c);
	waitpid(pid, &st, 0);
	CHECK(rc == 0);
	CHECK_EQ_STR(cr.access_key_id, "ASIAFROMMETADATA");

	/* Nothing anywhere: the error says where it looked and what to set. */
	no_local_credentials();
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	c = resolving_client(moto.endpoint);
	rc = aws_client_credentials_sync(c, &cr, &err);
	aws_client_free(c);
	no_local_credentials();
	CHECK(rc == -1);
	CHECK(strstr(err.message, "AWS_ACCESS_KEY_ID") != NULL && strstr(err.message, "metadata") != NULL);
}

typedef struct posted {
	int done;
	long status;
} posted;

static void on_posted(void *ud, sbx_http_response *r)
{
	posted *p = ud;
	p->done = 1;
	p->status = r->status;
}

/* moto's authentication switch: AssumeRoleWithWebIdentity is unsigned (as
 * in AWS), and moto only serves it with its authentication off. */
static long moto_auth(const char *count)
{
	char url[200];
	snprintf(url, sizeof url, "%s/moto-api/reset-auth", moto.endpoint);
	const char *headers[] = {"Content-Type: text/plain", NULL};
	posted p = {0};
	sbx_http_request rq = {.method = "POST", .url = url, .headers = headers, .body = count,
			       .body_len = strlen(count), .on_done = on_posted, .ud = &p, .timeout_s = 10};
	sbx_error err;
	if (!sbx_http_start(http, &rq, &err))
		return -1;
	sbx_loop_run_until(loop, &p.done);
	return p.status;
}

static void credentials_from_web_identity(void)
{
	no_local_credentials();
	CHECK(moto_auth("inf") == 200);
	char tokfile[] = "/tmp/sbx-webid-XXXXXX";
	int fd = mkstemp(tokfile);
	CHECK(fd >= 0 && write(fd, "eyJ.token.sig\n", 14) == 14);
	close(fd);
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokfile, 1);
	setenv("AWS_ROLE_ARN", moto.role_arn, 1);
	aws_client *c = resolving_client(moto.endpoint);
	aws_credentials cr;
	sbx_error err;
	int rc = aws_client_credentials_sync(c, &cr, &err);
	if (rc < 0)
		printf("# %s\n", err.message);
	aws_client_free(c);
	unlink(tokfile);
	no_local_credentials();
	CHECK(moto_auth("0") == 200);
	CHECK(rc == 0);
	CHECK(strlen(cr.access_key_id) > 8);
	CHECK(cr.session_token[0] != 0);
	CHECK(cr.expiration > time(NULL));
}

/* Temporary credentials that expire within the refresh margin (5 minutes)
 * are fetched again before the next call (a ResumeSession or StartSession
 * that reopens an SSM session hours later included), not reused: here
 * credential_process hands out keys that expire in 60 s, a new one each run. */
static void credentials_near_expiry_are_refreshed(void)
{
	no_local_credentials();
	char dir[] = "/tmp/sbx-awsexp-XXXXXX";
	CHECK(mkdtemp(dir));
	char script[128], runs[128], config[128];
	snprintf(script, sizeof script, "%s/creds.sh", dir);
	snprintf(runs, sizeof runs, "%s/runs", dir);
	snprintf(config, sizeof config, "%s/config", dir);
	FILE *f = fopen(script, "w");
	CHECK(f);
	fprintf(f, "#!/bin/sh\necho run >> %s\nn=$(wc -l < %s)\n"
		   "printf '{\"Version\": 1, \"AccessKeyId\": \"ASIAEXP%%s\", \"SecretAccessKey\": \"s\", "
		   "\"SessionToken\": \"t\", \"Expiration\": \"%%s\"}' $n \"$(date -u -d '+60 seconds' +%%Y-%%m-%%dT%%H:%%M:%%SZ)\"\n",
		runs, runs);
	fclose(f);
	chmod(script, 0755);
	f = fopen(config, "w");
	CHECK(f);
	fprintf(f, "[default]\ncredential_process = %s\n", script);
	fclose(f);
	setenv("AWS_CONFIG_FILE", config, 1);
	aws_client *c = resolving_client(moto.endpoint);
	aws_credentials first, second;
	sbx_error err;
	int rc1 = aws_client_credentials_sync(c, &first, &err);
	int rc2 = rc1 == 0 ? aws_client_credentials_sync(c, &second, &err) : -1;
	aws_client_free(c);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	no_local_credentials();
	CHECK(system(cmd) == 0);
	CHECK(rc1 == 0 && rc2 == 0);
	CHECK(first.expiration > time(NULL) && first.expiration <= time(NULL) + 61);
	CHECK_EQ_STR(first.access_key_id, "ASIAEXP1");
	CHECK_EQ_STR(second.access_key_id, "ASIAEXP2"); /* fetched again, not the one about to expire */
}

/* An assume-role profile: the role's credentials (DurationSeconds as the
 * profile says) sign a real EC2 call; they are kept while fresh, and a
 * refresh margin longer than their life makes every use assume the role
 * again. */
static void credentials_from_assume_role(void)
{
	no_local_credentials();
	char dir[] = "/tmp/sbx-role-XXXXXX", cred[64], conf[64], text[1024];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(cred, sizeof cred, "%s/credentials", dir);
	snprintf(conf, sizeof conf, "%s/config", dir);
	FILE *f = fopen(cred, "w");
	fprintf(f, "[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n", moto.akid, moto.secret);
	fclose(f);
	snprintf(text, sizeof text, "[profile dev]\nrole_arn = %s\nsource_profile = base\nduration_seconds = 900\n",
		 moto.deployer_arn);
	f = fopen(conf, "w");
	fputs(text, f);
	fclose(f);
	aws_creds_opts co = {.profile = "dev", .credentials_file = cred, .config_file = conf};
	aws_client_opts o = {.region = moto.region, .endpoint_url = moto.endpoint, .creds = co};
	sbx_error err;
	aws_client *c = aws_client_new(loop, http, &o, &err);
	aws_credentials a, b;
	time_t now = time(NULL);
	int rc = aws_client_credentials_sync(c, &a, &err);
	if (rc < 0)
		printf("# %s\n", err.message);
	CHECK(rc == 0);
	CHECK(strcmp(a.access_key_id, moto.akid) != 0 && a.session_token[0]);
	CHECK(a.expiration > now + 800 && a.expiration <= now + 960);
	CHECK(aws_client_credentials_sync(c, &b, &err) == 0);
	CHECK_EQ_STR(a.access_key_id, b.access_key_id); /* kept */
	const char *q = "Action=DescribeInstances&Version=2016-11-15";
	aws_request rq = {.service = "ec2", .operation = "DescribeInstances", .content_type =
				  "application/x-www-form-urlencoded; charset=utf-8", .body = q, .body_len = strlen(q)};
	aws_response r;
	rc = aws_call_sync(c, &rq, &r);
	if (rc < 0)
		printf("# %s\n", r.error.message);
	CHECK(rc == 0 && r.status == 200);
	aws_response_free(&r);
	aws_client_free(c);

	o.creds.refresh_margin_s = 1000; /* longer than the role's 900 s: always stale */
	c = aws_client_new(loop, http, &o, &err);
	CHECK(aws_client_credentials_sync(c, &a, &err) == 0);
	CHECK(aws_client_credentials_sync(c, &b, &err) == 0);
	CHECK(strcmp(a.access_key_id, b.access_key_id) != 0); /* assumed again */
	aws_client_free(c);
	unlink(cred);
	unlink(conf);
	rmdir(dir);
	no_local_credentials();
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	char why[512];
	if (start_moto(why, sizeof why) < 0) {
		printf("FAIL moto_fixture: %s\n", why);
		stop_moto();
		return 1;
	}
	loop = sbx_loop_new();
	http = sbx_http_new(loop);
	client = new_client(moto.akid, moto.secret, moto.endpoint, 3);
	RUN(ssm_get_parameter);
	RUN(ec2_lifecycle);
	RUN(ssm_send_command);
	RUN(s3_objects_and_presigned_get);
	RUN(bad_credentials_are_refused);
	RUN(throttling_is_retried);
	RUN(credentials_from_imds_and_container);
	RUN(credentials_from_web_identity);
	RUN(credentials_near_expiry_are_refreshed);
	RUN(credentials_from_assume_role);
	aws_client_free(client);
	sbx_http_free(http);
	sbx_loop_free(loop);
	stop_moto();
	return test_summary();
}
