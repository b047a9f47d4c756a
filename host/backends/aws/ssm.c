/* ssm.c — Systems Manager calls over the JSON 1.1 protocol (see ssm.h):
 * POST / with X-Amz-Target: AmazonSSM.<Operation>, JSON in and out. */
#include "backends/aws/ssm.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSM_CONTENT_TYPE "application/x-amz-json-1.1"

typedef void (*json_done)(void *ud, const sbx_error *err, json_t *answer);

typedef struct json_ctx {
	char op[48];
	json_done done;
	void *cb;   /* the caller's callback, cast by each operation */
	void *ud;
} json_ctx;

static void bad_answer(sbx_error *e, const char *op, const char *what)
{
	e->status = SBX_E_REMOTE;
	e->err_no = EPROTO;
	snprintf(e->code, sizeof e->code, "aws_response");
	snprintf(e->message, sizeof e->message, "AWS ssm %s: unreadable answer: %s", op, what);
}

static void json_call_done(void *ud, aws_response *r)
{
	json_ctx *ctx = ud;
	if (r->error.status != SBX_OK) {
		ctx->done(ctx, &r->error, NULL);
	} else {
		json_error_t jerr;
		json_t *o = json_loadb((const char *)r->body, r->body_len, 0, &jerr);
		if (!json_is_object(o)) {
			sbx_error e;
			bad_answer(&e, ctx->op, o ? "not a JSON object" : jerr.text);
			ctx->done(ctx, &e, NULL);
		} else {
			ctx->done(ctx, NULL, o);
		}
		json_decref(o);
	}
	free(ctx);
}

/* Send body (stolen) as operation op; done(ctx, err, answer) once. */
static int json_call(aws_client *c, const char *op, json_t *body, json_done done, void *cb, void *ud, sbx_error *err)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	json_ctx *ctx = calloc(1, sizeof *ctx);
	if (!text || !ctx) {
		free(text);
		free(ctx);
		err->status = SBX_E_LOCAL;
		err->err_no = ENOMEM;
		snprintf(err->code, sizeof err->code, "io");
		snprintf(err->message, sizeof err->message, "AWS ssm %s: out of memory", op);
		return -1;
	}
	snprintf(ctx->op, sizeof ctx->op, "%s", op);
	ctx->done = done;
	ctx->cb = cb;
	ctx->ud = ud;
	char target[96];
	snprintf(target, sizeof target, "AmazonSSM.%s", op);
	aws_request rq = {.service = "ssm", .operation = op, .method = "POST", .path = "/",
			  .content_type = SSM_CONTENT_TYPE, .target = target, .body = text, .body_len = strlen(text)};
	aws_call *call = aws_call_start(c, &rq, json_call_done, ctx, err);
	free(text);
	if (!call)
		free(ctx);
	return call ? 0 : -1;
}

static const char *str_at(json_t *o, const char *k1, const char *k2)
{
	json_t *v = json_object_get(o, k1);
	if (k2)
		v = json_object_get(v, k2);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---------------------------------------------------------- GetParameter */

static void get_parameter_done(void *ud, const sbx_error *err, json_t *a)
{
	json_ctx *ctx = ud;
	aws_ssm_text_cb cb = (aws_ssm_text_cb)ctx->cb;
	const char *v = a ? str_at(a, "Parameter", "Value") : NULL;
	sbx_error e;
	if (!err && !v) {
		bad_answer(&e, ctx->op, "no Parameter.Value");
		err = &e;
	}
	cb(ctx->ud, err, err ? NULL : v);
}

int aws_ssm_get_parameter(aws_client *c, const char *name, aws_ssm_text_cb cb, void *ud, sbx_error *err)
{
	return json_call(c, "GetParameter", json_pack("{s:s}", "Name", name), get_parameter_done, (void *)cb, ud, err);
}

/* ---------------------------------------------- DescribeInstanceInformation */

static void ping_done(void *ud, const sbx_error *err, json_t *a)
{
	json_ctx *ctx = ud;
	aws_ssm_text_cb cb = (aws_ssm_text_cb)ctx->cb;
	if (err) {
		cb(ctx->ud, err, NULL);
		return;
	}
	json_t *list = json_object_get(a, "InstanceInformationList");
	const char *status = "";
	if (json_is_array(list) && json_array_size(list) > 0) {
		const char *s = str_at(json_array_get(list, 0), "PingStatus", NULL);
		status = s ? s : "";
	}
	cb(ctx->ud, NULL, status);
}

int aws_ssm_ping_status(aws_client *c, const char *instance_id, aws_ssm_text_cb cb, void *ud, sbx_error *err)
{
	json_t *body = json_pack("{s:[{s:s, s:[s]}]}", "Filters", "Key", "InstanceIds", "Values", instance_id);
	return json_call(c, "DescribeInstanceInformation", body, ping_done, (void *)cb, ud, err);
}

/* ------------------------------------------------------------- sessions */

static void start_session_done(void *ud, const sbx_error *err, json_t *a)
{
	json_ctx *ctx = ud;
	aws_ssm_session_cb cb = (aws_ssm_session_cb)ctx->cb;
	if (err) {
		cb(ctx->ud, err, NULL);
		return;
	}
	aws_ssm_session s;
	const char *id = str_at(a, "SessionId", NULL), *url = str_at(a, "StreamUrl", NULL);
	const char *tok = str_at(a, "TokenValue", NULL);
	sbx_error e;
	if (!id || !url || !tok || strlen(id) >= sizeof s.session_id || strlen(url) >= sizeof s.stream_url ||
	    strlen(tok) >= sizeof s.token) {
		bad_answer(&e, ctx->op, "no SessionId, StreamUrl and TokenValue");
		cb(ctx->ud, &e, NULL);
		return;
	}
	snprintf(s.session_id, sizeof s.session_id, "%s", id);
	snprintf(s.stream_url, sizeof s.stream_url, "%s", url);
	snprintf(s.token, sizeof s.token, "%s", tok);
	cb(ctx->ud, NULL, &s);
}

int aws_ssm_start_session(aws_client *c, const char *target, const char *document, const char *const *params,
			  aws_ssm_session_cb cb, void *ud, sbx_error *err)
{
	json_t *body = json_pack("{s:s}", "Target", target);
	if (body && document)
		json_object_set_new(body, "DocumentName", json_string(document));
	if (body && params) {
		json_t *p = json_object();
		for (size_t i = 0; params[i] && params[i + 1]; i += 2)
			json_object_set_new(p, params[i], json_pack("[s]", params[i + 1]));
		json_object_set_new(body, "Parameters", p);
	}
	return json_call(c, "StartSession", body, start_session_done, (void *)cb, ud, err);
}

/* ResumeSession answers like StartSession: the same SessionId, a new
 * StreamUrl and TokenValue. */
int aws_ssm_resume_session(aws_client *c, const char *session_id, aws_ssm_session_cb cb, void *ud, sbx_error *err)
{
	return json_call(c, "ResumeSession", json_pack("{s:s}", "SessionId", session_id), start_session_done,
			 (void *)cb, ud, err);
}

static void plain_done(void *ud, const sbx_error *err, json_t *a)
{
	(void)a;
	json_ctx *ctx = ud;
	((aws_ssm_done_cb)ctx->cb)(ctx->ud, err);
}

int aws_ssm_terminate_session(aws_client *c, const char *session_id, aws_ssm_done_cb cb, void *ud, sbx_error *err)
{
	return json_call(c, "TerminateSession", json_pack("{s:s}", "SessionId", session_id), plain_done, (void *)cb,
			 ud, err);
}

/* -------------------------------------------------------------- commands */

static void send_command_done(void *ud, const sbx_error *err, json_t *a)
{
	json_ctx *ctx = ud;
	aws_ssm_text_cb cb = (aws_ssm_text_cb)ctx->cb;
	const char *id = a ? str_at(a, "Command", "CommandId") : NULL;
	sbx_error e;
	if (!err && !id) {
		bad_answer(&e, ctx->op, "no Command.CommandId");
		err = &e;
	}
	cb(ctx->ud, err, err ? NULL : id);
}

int aws_ssm_send_command(aws_client *c, const char *instance_id, const char *const *commands, unsigned timeout_s,
			 aws_ssm_text_cb cb, void *ud, sbx_error *err)
{
	json_t *cmds = json_array();
	for (size_t i = 0; commands && commands[i]; i++)
		json_array_append_new(cmds, json_string(commands[i]));
	json_t *body = json_pack("{s:[s], s:s, s:{s:o}}", "InstanceIds", instance_id, "DocumentName",
				 "AWS-RunShellScript", "Parameters", "commands", cmds);
	if (body && timeout_s)
		json_object_set_new(body, "TimeoutSeconds", json_integer(timeout_s));
	return json_call(c, "SendCommand", body, send_command_done, (void *)cb, ud, err);
}

static void invocation_done(void *ud, const sbx_error *err, json_t *a)
{
	json_ctx *ctx = ud;
	aws_ssm_invocation_cb cb = (aws_ssm_invocation_cb)ctx->cb;
	if (err) {
		cb(ctx->ud, err, NULL);
		return;
	}
	aws_ssm_invocation inv = {.exit_code = -1};
	const char *st = str_at(a, "Status", NULL);
	snprintf(inv.status, sizeof inv.status, "%s", st ? st : "");
	json_t *rc = json_object_get(a, "ResponseCode");
	if (json_is_integer(rc))
		inv.exit_code = (int)json_integer_value(rc);
	const char *out = str_at(a, "StandardOutputContent", NULL), *errt = str_at(a, "StandardErrorContent", NULL);
	inv.stdout_text = (char *)(out ? out : "");
	inv.stderr_text = (char *)(errt ? errt : "");
	cb(ctx->ud, NULL, &inv);
}

int aws_ssm_get_command_invocation(aws_client *c, const char *command_id, const char *instance_id,
				   aws_ssm_invocation_cb cb, void *ud, sbx_error *err)
{
	return json_call(c, "GetCommandInvocation",
			 json_pack("{s:s, s:s}", "CommandId", command_id, "InstanceId", instance_id), invocation_done,
			 (void *)cb, ud, err);
}
