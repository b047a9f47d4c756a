/* api.c — signed AWS calls with retries, and credentials kept fresh, all on
 * the loop (see api.h).
 *
 * A call waits for credentials when they are missing or about to expire;
 * one fetch serves every waiting call. Remote credential sources (web
 * identity through STS, container endpoint, IMDSv2, the SSO portal) are
 * small chains of HTTP requests driven by their callbacks. An assume-role
 * profile gets a second client, the source, whose own credentials (a
 * source_profile, itself possibly a role, or a credential_source) sign
 * the STS AssumeRole call; the role's credentials are kept until they are
 * about to expire, and the source client with its own. */
#include "backends/aws/api.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/aws/sigv4.h"
#include "backends/aws/xml.h"
#include "core/internal.h"

#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_TIMEOUT_S 5
#define IMDS_TOKEN_TTL "21600"

typedef enum { FETCH_IDLE, FETCH_RUNNING } fetch_state;

struct aws_call {
	aws_client *c;
	aws_call *next, *prev;
	char *service, *operation, *method, *path, *query, *content_type, *target;
	uint8_t *body;
	size_t body_len;
	aws_done_cb cb;
	void *ud;
	unsigned attempt;
	sbx_http_call *http;
	sbx_timer *timer;
	int waiting_creds;
	int creds_only; /* aws_client_credentials_sync's wait: answered without sending */
};

struct aws_client {
	sbx_loop *loop;
	sbx_http *http;
	char region[32];
	char endpoint[512]; /* override, or "" */
	char imds[256];
	char profile[256], cred_file[1024], config_file[1024];
	aws_creds_opts creds_opts;
	int static_creds;
	aws_credentials creds;
	unsigned timeout_s, max_retries, backoff_base_ms;
	aws_call *calls;

	/* the credential fetch */
	fetch_state fetch;
	aws_remote_plan plan;
	sbx_http_call *fetch_http;
	char imds_token[256];
	char imds_role[256];
	aws_client *source;          /* assume role: signs AssumeRole */
	char credential_source[32];  /* storage for creds_opts.credential_source */
};

static void set_err(sbx_error *e, sbx_status st, int err_no, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void set_err(sbx_error *e, sbx_status st, int err_no, const char *code, const char *fmt, ...)
{
	e->status = st;
	e->err_no = err_no;
	snprintf(e->code, sizeof e->code, "%s", code);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

/* -------------------------------------------------------------- client */

static char *dup_or_null(const char *s, char *store, size_t cap)
{
	if (!s)
		return NULL;
	snprintf(store, cap, "%s", s);
	return store;
}

aws_client *aws_client_new(sbx_loop *loop, sbx_http *http, const aws_client_opts *o, sbx_error *err)
{
	if (!o || !o->region || !*o->region) {
		set_err(err, SBX_E_INVALID, EINVAL, "invalid", "no AWS region given");
		return NULL;
	}
	aws_client *c = calloc(1, sizeof *c);
	if (!c) {
		set_err(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	c->loop = loop;
	c->http = http;
	snprintf(c->region, sizeof c->region, "%s", o->region);
	const char *ep = o->endpoint_url ? o->endpoint_url : getenv("AWS_ENDPOINT_URL");
	snprintf(c->endpoint, sizeof c->endpoint, "%s", ep ? ep : "");
	size_t el = strlen(c->endpoint);
	while (el && c->endpoint[el - 1] == '/')
		c->endpoint[--el] = 0;
	const char *md = o->metadata_endpoint ? o->metadata_endpoint : getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	snprintf(c->imds, sizeof c->imds, "%s", md && *md ? md : IMDS_DEFAULT);
	size_t ml = strlen(c->imds);
	while (ml && c->imds[ml - 1] == '/')
		c->imds[--ml] = 0;
	c->creds_opts = o->creds;
	c->creds_opts.profile = dup_or_null(o->creds.profile, c->profile, sizeof c->profile);
	c->creds_opts.credentials_file = dup_or_null(o->creds.credentials_file, c->cred_file, sizeof c->cred_file);
	c->creds_opts.config_file = dup_or_null(o->creds.config_file, c->config_file, sizeof c->config_file);
	c->creds_opts.credential_source =
		dup_or_null(o->creds.credential_source, c->credential_source, sizeof c->credential_source);
	if (o->static_creds) {
		c->creds = *o->static_creds;
		c->static_creds = 1;
	}
	c->timeout_s = o->timeout_s ? o->timeout_s : AWS_DEFAULT_TIMEOUT_S;
	c->max_retries = o->max_retries_set ? o->max_retries : AWS_DEFAULT_MAX_RETRIES;
	c->backoff_base_ms = o->backoff_base_ms ? o->backoff_base_ms : AWS_DEFAULT_BACKOFF_BASE_MS;
	return c;
}

static void call_free(aws_call *call);

void aws_client_free(aws_client *c)
{
	if (!c)
		return;
	while (c->calls)
		aws_call_cancel(c->calls);
	if (c->fetch_http)
		sbx_http_cancel(c->fetch_http);
	aws_client_free(c->source); /* cancels its AssumeRole call, if one is in flight */
	free(c);
}

const char *aws_client_region(const aws_client *c)
{
	return c->region;
}

void aws_endpoint(const aws_client *c, const char *service, char *url, size_t urllen, char *host, size_t hostlen)
{
	/* AWS_ENDPOINT_URL_<SERVICE> wins over the global override, as in the AWS SDKs. */
	char var[64];
	int vl = snprintf(var, sizeof var, "AWS_ENDPOINT_URL_%s", service);
	for (int i = 17; i < vl && var[i]; i++)
		var[i] = (char)toupper((unsigned char)var[i]);
	const char *own = getenv(var);
	if (own && *own) {
		snprintf(url, urllen, "%s", own);
		size_t ul = strlen(url);
		while (ul && url[ul - 1] == '/')
			url[--ul] = 0;
	} else if (c->endpoint[0])
		snprintf(url, urllen, "%s", c->endpoint);
	else
		snprintf(url, urllen, "https://%s.%s.amazonaws.com", service, c->region);
	if (host) {
		const char *h = strstr(url, "://");
		h = h ? h + 3 : url;
		size_t n = strcspn(h, "/?#");
		snprintf(host, hostlen, "%.*s", (int)n, h);
	}
}

int aws_retryable(long status, const char *code, const sbx_error *transport)
{
	if (transport && transport->status != SBX_OK)
		return transport->status == SBX_E_CONN || transport->status == SBX_E_TIMEOUT;
	if (status >= 500 || status == 429)
		return 1;
	static const char *throttles[] = {"Throttling", "ThrottlingException", "ThrottledException",
					  "RequestThrottledException", "TooManyRequestsException",
					  "ProvisionedThroughputExceededException", "TransactionInProgressException",
					  "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException",
					  "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
					  "EC2ThrottledException", "IDPCommunicationError", NULL};
	for (int i = 0; code && throttles[i]; i++)
		if (strcmp(code, throttles[i]) == 0)
			return 1;
	return 0;
}

/* ------------------------------------------------------ error payloads */

/* AWS's error code and message from an XML or JSON error body. */
static void parse_error(const uint8_t *body, size_t n, char *code, size_t codelen, char *msg, size_t msglen)
{
	code[0] = msg[0] = 0;
	if (!body || !n)
		return;
	if (body[0] == '{') {
		json_t *o = json_loadb((const char *)body, n, 0, NULL);
		if (json_is_object(o)) {
			json_t *t = json_object_get(o, "__type");
			if (!json_is_string(t))
				t = json_object_get(o, "code");
			json_t *m = json_object_get(o, "message");
			if (!json_is_string(m))
				m = json_object_get(o, "Message");
			if (json_is_string(t)) {
				const char *s = json_string_value(t);
				const char *hash = strrchr(s, '#');
				snprintf(code, codelen, "%s", hash ? hash + 1 : s);
			}
			if (json_is_string(m))
				snprintf(msg, msglen, "%s", json_string_value(m));
		}
		json_decref(o);
		return;
	}
	char why[64];
	aws_xml *x = aws_xml_parse((const char *)body, n, why, sizeof why);
	if (x) {
		aws_xml_error(x, code, codelen, msg, msglen);
		aws_xml_free(x);
	}
}

/* ------------------------------------------------- credentials (remote) */

static void creds_ready(aws_client *c, const sbx_error *err);

static void fetch_failed(aws_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fetch_failed(aws_client *c, const char *fmt, ...)
{
	sbx_error e;
	e.status = SBX_E_REMOTE;
	e.err_no = EACCES;
	snprintf(e.code, sizeof e.code, "credentials");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof e.message, fmt, ap);
	va_end(ap);
	creds_ready(c, &e);
}

static int fetch_http(aws_client *c, const char *method, const char *url, const char *const *headers,
		      const char *body, void (*done)(void *, sbx_http_response *))
{
	sbx_http_request rq = {.method = method, .url = url, .headers = headers, .body = body,
			       .body_len = body ? strlen(body) : 0, .timeout_s = IMDS_TIMEOUT_S,
			       .connect_timeout_s = IMDS_TIMEOUT_S, .max_body = 1024 * 1024, .on_done = done, .ud = c};
	sbx_error err;
	c->fetch_http = sbx_http_start(c->http, &rq, &err);
	if (!c->fetch_http) {
		fetch_failed(c, "cannot fetch AWS credentials: %s", err.message);
		return -1;
	}
	return 0;
}

static int response_ok(aws_client *c, sbx_http_response *r, const char *what)
{
	c->fetch_http = NULL;
	if (r->error.status != SBX_OK) {
		fetch_failed(c, "%s: %s", what, r->error.message);
		return 0;
	}
	if (r->status < 200 || r->status > 299) {
		fetch_failed(c, "%s: HTTP %ld: %.200s", what, r->status, r->body ? (char *)r->body : "");
		return 0;
	}
	return 1;
}

static void got_role_json(aws_client *c, sbx_http_response *r, const char *what)
{
	aws_credentials got;
	char why[300];
	if (aws_parse_role_json((const char *)r->body, r->body_len, &got, why, sizeof why) < 0) {
		fetch_failed(c, "%s: %s", what, why);
		return;
	}
	snprintf(got.source, sizeof got.source, "%s", what);
	c->creds = got;
	creds_ready(c, NULL);
}

static void container_done(void *ud, sbx_http_response *r)
{
	aws_client *c = ud;
	if (response_ok(c, r, "container credentials"))
		got_role_json(c, r, "container credentials");
}

static void imds_creds_done(void *ud, sbx_http_response *r)
{
	aws_client *c = ud;
	if (response_ok(c, r, "instance metadata credentials"))
		got_role_json(c, r, "instance metadata");
}

static void imds_role_done(void *ud, sbx_http_response *r)
{
	aws_client *c = ud;
	if (!response_ok(c, r, "instance metadata (IAM role)"))
		return;
	size_t n = strcspn((const char *)r->body, "\r\n");
	if (n == 0 || n >= sizeof c->imds_role) {
		fetch_failed(c, "instance metadata: this instance has no IAM role");
		return;
	}
	memcpy(c->imds_role, r->body, n);
	c->imds_role[n] = 0;
	char url[600], hdr[300];
	snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", c->imds, c->imds_role);
	snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", c->imds_token);
	const char *headers[] = {hdr, NULL};
	fetch_http(c, "GET", url, headers, NULL, imds_creds_done);
}

static void imds_token_done(void *ud, sbx_http_response *r)
{
	aws_client *c = ud;
	if (r->error.status != SBX_OK) {
		/* IMDS is the last place to look: say where else credentials could have been. */
		c->fetch_http = NULL;
		fetch_failed(c, "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
				"AWS_PROFILE; the environment and the shared files had none, and no EC2 instance "
				"metadata service answered at %s (%s)", c->imds, r->error.message);
		return;
	}
	if (!response_ok(c, r, "instance metadata (IMDSv2 token)"))
		return;
	if (r->body_len == 0 || r->body_len >= sizeof c->imds_token || strpbrk((char *)r->body, "\r\n")) {
		fetch_failed(c, "instance metadata: the IMDSv2 token is empty or malformed");
		return;
	}
	snprintf(c->imds_token, sizeof c->imds_token, "%s", (char *)r->body);
	char url[400], hdr[300];
	snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", c->imds);
	snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", c->imds_token);
	const char *headers[] = {hdr, NULL};
	fetch_http(c, "GET", url, headers, NULL, imds_role_done);
}

static void sts_done(void *ud, sbx_http_response *r)
{
	aws_client *c = ud;
	c->fetch_http = NULL;
	if (r->error.status != SBX_OK) {
		fetch_failed(c, "STS AssumeRoleWithWebIdentity: %s", r->error.message);
		return;
	}
	aws_credentials got;
	char why[400];
	if (aws_parse_sts_xml((const char *)r->body, r->body_len, &got, why, sizeof why) < 0) {
		if (r->status >= 200 && r->status <= 299)
			fetch_failed(c, "%s", why);
		else if (strstr(why, "failed:"))
			fetch_failed(c, "%s (HTTP %ld)", why, r->status);
		else
			fetch_failed(c, "STS AssumeRoleWithWebIdentity failed: HTTP %ld", r->status);
		return;
	}
	c->creds = got;
	creds_ready(c, NULL);
}

static int append_form(sbx_buf *b, const char *key, const char *value)
{
	if (b->len && aws_buf_puts(b, "&") < 0)
		return -1;
	if (aws_uri_encode(b, key, strlen(key), 0) < 0 || aws_buf_puts(b, "=") < 0)
		return -1;
	return aws_uri_encode(b, value, strlen(value), 0);
}

static void start_web_identity(aws_client *c)
{
	FILE *f = fopen(c->plan.token_file, "r");
	if (!f) {
		fetch_failed(c, "web identity token file %s: %s", c->plan.token_file, strerror(errno));
		return;
	}
	char token[16384];
	size_t n = fread(token, 1, sizeof token - 1, f);
	fclose(f);
	token[n] = 0;
	while (n && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' '))
		token[--n] = 0;
	if (!n) {
		fetch_failed(c, "web identity token file %s is empty", c->plan.token_file);
		return;
	}
	sbx_buf body = {0};
	int rc = append_form(&body, "Action", "AssumeRoleWithWebIdentity");
	rc |= append_form(&body, "Version", "2011-06-15");
	rc |= append_form(&body, "RoleArn", c->plan.role_arn);
	rc |= append_form(&body, "RoleSessionName", c->plan.role_session_name);
	rc |= append_form(&body, "WebIdentityToken", token);
	char url[600];
	aws_endpoint(c, "sts", url, sizeof url, NULL, 0);
	if (!c->endpoint[0] && c->plan.sts_region[0])
		snprintf(url, sizeof url, "https://sts.%s.amazonaws.com", c->plan.sts_region);
	strncat(url, "/", sizeof url - strlen(url) - 1);
	const char *headers[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8", NULL};
	if (rc == 0)
		fetch_http(c, "POST", url, headers, aws_buf_str(&body), sts_done);
	else
		fetch_failed(c, "out of memory");
	sbx_buf_free(&body);
}

/* ---------------------------------------------------- assume role, SSO */

static void assume_role_done(void *ud, aws_response *r)
{
	aws_client *c = ud;
	aws_credentials got;
	char why[400];
	if (r->error.status != SBX_OK) {
		fetch_failed(c, "assuming role %s for AWS profile '%s': %s", c->plan.role_arn, c->plan.profile,
			     r->error.message);
		return;
	}
	if (aws_parse_assume_role_xml((const char *)r->body, r->body_len, &got, why, sizeof why) < 0) {
		fetch_failed(c, "assuming role %s for AWS profile '%s': %s", c->plan.role_arn, c->plan.profile, why);
		return;
	}
	snprintf(got.source, sizeof got.source, "role of profile %.40s", c->plan.profile);
	c->creds = got;
	creds_ready(c, NULL);
}

/* The client whose credentials sign AssumeRole: made once, kept (with its own credentials) for refreshes. */
static aws_client *source_client(aws_client *c, sbx_error *err)
{
	if (c->source)
		return c->source;
	aws_client_opts so = {.region = c->region, .endpoint_url = c->endpoint[0] ? c->endpoint : NULL,
			      .creds = c->creds_opts, .timeout_s = c->timeout_s, .max_retries = c->max_retries,
			      .max_retries_set = 1, .backoff_base_ms = c->backoff_base_ms, .metadata_endpoint = c->imds};
	so.creds.profile = c->plan.source_profile[0] ? c->plan.source_profile : NULL;
	so.creds.source_profile = c->plan.source_profile[0] != 0;
	so.creds.credential_source = c->plan.credential_source[0] ? c->plan.credential_source : NULL;
	c->source = aws_client_new(c->loop, c->http, &so, err);
	return c->source;
}

static void start_assume_role(aws_client *c)
{
	sbx_error err;
	aws_client *src = source_client(c, &err);
	if (!src) {
		fetch_failed(c, "assuming role %s: %s", c->plan.role_arn, err.message);
		return;
	}
	sbx_buf body = {0};
	char dur[16];
	snprintf(dur, sizeof dur, "%u", c->plan.duration_s);
	int rc = append_form(&body, "Action", "AssumeRole");
	rc |= append_form(&body, "Version", "2011-06-15");
	rc |= append_form(&body, "RoleArn", c->plan.role_arn);
	rc |= append_form(&body, "RoleSessionName", c->plan.role_session_name);
	if (c->plan.external_id[0])
		rc |= append_form(&body, "ExternalId", c->plan.external_id);
	if (c->plan.duration_s)
		rc |= append_form(&body, "DurationSeconds", dur);
	aws_request rq = {.service = "sts", .operation = "AssumeRole", .content_type =
				  "application/x-www-form-urlencoded; charset=utf-8",
			  .body = aws_buf_str(&body), .body_len = sbx_buf_size(&body)};
	if (rc != 0)
		fetch_failed(c, "out of memory");
	else if (!aws_call_start(src, &rq, assume_role_done, c, &err))
		fetch_failed(c, "assuming role %s: %s", c->plan.role_arn, err.message);
	sbx_buf_free(&body);
}

/* The SSO portal: $AWS_ENDPOINT_URL_SSO, the client's override, or AWS's. */
static void sso_base(const aws_client *c, char *url, size_t urllen)
{
	const char *own = getenv("AWS_ENDPOINT_URL_SSO");
	if (own && *own)
		snprintf(url, urllen, "%s", own);
	else if (c->endpoint[0])
		snprintf(url, urllen, "%s", c->endpoint);
	else
		snprintf(url, urllen, "https://portal.sso.%s.amazonaws.com", c->plan.sso_region);
	size_t ul = strlen(url);
	while (ul && url[ul - 1] == '/')
		url[--ul] = 0;
}

static void sso_done(void *ud, sbx_http_response *r)
{
	aws_client *c = ud;
	c->fetch_http = NULL;
	const char *p = c->plan.profile;
	if (r->error.status != SBX_OK) {
		fetch_failed(c, "IAM Identity Center (SSO) portal for AWS profile '%s': %s", p, r->error.message);
		return;
	}
	if (r->status == 401 || r->status == 403) {
		fetch_failed(c, "the SSO portal refused the cached token of AWS profile '%s' (HTTP %ld): run aws sso "
				"login --profile %s", p, r->status, p);
		return;
	}
	if (r->status < 200 || r->status > 299) {
		fetch_failed(c, "the SSO portal's GetRoleCredentials for AWS profile '%s': HTTP %ld: %.200s", p, r->status,
			     r->body ? (char *)r->body : "");
		return;
	}
	aws_credentials got;
	char why[300];
	if (aws_parse_sso_json((const char *)r->body, r->body_len, &got, why, sizeof why) < 0) {
		fetch_failed(c, "AWS profile '%s': %s", p, why);
		return;
	}
	snprintf(got.source, sizeof got.source, "sso profile %.40s", p);
	c->creds = got;
	creds_ready(c, NULL);
}

static void start_sso(aws_client *c)
{
	char base[600], hdr[8300];
	sso_base(c, base, sizeof base);
	sbx_buf url = {0};
	int rc = aws_buf_printf(&url, "%s/federation/credentials?role_name=", base);
	rc |= aws_uri_encode(&url, c->plan.sso_role_name, strlen(c->plan.sso_role_name), 0);
	rc |= aws_buf_puts(&url, "&account_id=");
	rc |= aws_uri_encode(&url, c->plan.sso_account_id, strlen(c->plan.sso_account_id), 0);
	snprintf(hdr, sizeof hdr, "x-amz-sso_bearer_token: %s", c->plan.sso_token);
	const char *headers[] = {hdr, NULL};
	if (rc != 0)
		fetch_failed(c, "out of memory");
	else
		fetch_http(c, "GET", aws_buf_str(&url), headers, NULL, sso_done);
	sbx_buf_free(&url);
}

static void start_fetch(aws_client *c)
{
	c->fetch = FETCH_RUNNING;
	char why[600];
	aws_credentials got;
	if (aws_resolve_local(&c->creds_opts, &got, &c->plan, why, sizeof why) < 0) {
		fetch_failed(c, "%s", why);
		return;
	}
	switch (c->plan.kind) {
	case AWS_REMOTE_NONE:
		c->creds = got;
		creds_ready(c, NULL);
		return;
	case AWS_REMOTE_WEB_IDENTITY:
		start_web_identity(c);
		return;
	case AWS_REMOTE_ASSUME_ROLE:
		start_assume_role(c);
		return;
	case AWS_REMOTE_SSO:
		start_sso(c);
		return;
	case AWS_REMOTE_CONTAINER: {
		char hdr[4200];
		snprintf(hdr, sizeof hdr, "Authorization: %s", c->plan.auth_token);
		const char *headers[] = {hdr, NULL};
		fetch_http(c, "GET", c->plan.url, c->plan.auth_token[0] ? headers : NULL, NULL, container_done);
		return;
	}
	case AWS_REMOTE_IMDS: {
		char url[400];
		snprintf(url, sizeof url, "%s/latest/api/token", c->imds);
		const char *headers[] = {"X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL, NULL};
		fetch_http(c, "PUT", url, headers, NULL, imds_token_done);
		return;
	}
	}
}

static int creds_fresh(const aws_client *c)
{
	if (c->static_creds)
		return 1;
	unsigned margin = c->creds_opts.refresh_margin_s ? c->creds_opts.refresh_margin_s : AWS_DEFAULT_REFRESH_MARGIN_S;
	return !aws_creds_stale(&c->creds, time(NULL), margin);
}

/* ---------------------------------------------------------------- calls */

static void send_attempt(aws_call *call);
static void finish(aws_call *call, aws_response *r);

static void creds_ready(aws_client *c, const sbx_error *err)
{
	c->fetch = FETCH_IDLE;
	/* Each waiting call goes on (or fails); a callback may cancel others, so restart the walk. */
	for (;;) {
		aws_call *w = c->calls;
		while (w && !w->waiting_creds)
			w = w->next;
		if (!w)
			return;
		w->waiting_creds = 0;
		if (err || w->creds_only) {
			aws_response r = {.error = err ? *err : (sbx_error){0}};
			finish(w, &r);
		} else {
			send_attempt(w);
		}
	}
}

static void call_free(aws_call *call)
{
	aws_client *c = call->c;
	if (call->prev)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	free(call->service);
	free(call->operation);
	free(call->method);
	free(call->path);
	free(call->query);
	free(call->content_type);
	free(call->target);
	free(call->body);
	free(call);
}

static void finish(aws_call *call, aws_response *r)
{
	r->attempts = call->attempt;
	aws_done_cb cb = call->cb;
	void *ud = call->ud;
	call_free(call);
	cb(ud, r);
	free(r->body);
	r->body = NULL;
}

static void retry_timer(sbx_loop *loop, void *ud)
{
	(void)loop;
	aws_call *call = ud;
	call->timer = NULL;
	if (!creds_fresh(call->c)) {
		call->waiting_creds = 1;
		if (call->c->fetch == FETCH_IDLE)
			start_fetch(call->c);
		return;
	}
	send_attempt(call);
}

static uint64_t backoff_ms(const aws_client *c, unsigned attempt)
{
	uint64_t cap = c->backoff_base_ms;
	for (unsigned i = 1; i < attempt && cap < AWS_BACKOFF_CAP_MS; i++)
		cap *= 2;
	if (cap > AWS_BACKOFF_CAP_MS)
		cap = AWS_BACKOFF_CAP_MS;
	return (uint64_t)random() % (cap + 1); /* full jitter */
}

static void http_done(void *ud, sbx_http_response *hr)
{
	aws_call *call = ud;
	aws_client *c = call->c;
	call->http = NULL;
	aws_response r;
	memset(&r, 0, sizeof r);
	r.status = hr->status;
	char msg[400] = "";
	if (hr->error.status == SBX_OK)
		parse_error(hr->body, hr->body_len, r.code, sizeof r.code, msg, sizeof msg);
	int ok = hr->error.status == SBX_OK && hr->status >= 200 && hr->status <= 299;
	if (!ok && call->attempt <= c->max_retries && aws_retryable(hr->status, r.code, &hr->error)) {
		call->timer = sbx_loop_timer(c->loop, backoff_ms(c, call->attempt), retry_timer, call);
		if (call->timer)
			return;
	}
	if (hr->error.status != SBX_OK) {
		r.error = hr->error;
		snprintf(r.error.message, sizeof r.error.message, "AWS %.20s %.40s: %.400s (after %u attempts)", call->service,
			 call->operation, hr->error.message, call->attempt);
	} else if (!ok) {
		int auth = hr->status == 401 || hr->status == 403 || strstr(r.code, "Signature") ||
			   strstr(r.code, "AuthFailure") || strstr(r.code, "InvalidClientTokenId") ||
			   strstr(r.code, "ExpiredToken") || strstr(r.code, "AccessDenied") ||
			   strstr(r.code, "UnrecognizedClient") || strstr(r.code, "InvalidAccessKeyId");
		set_err(&r.error, SBX_E_REMOTE, auth ? EACCES : EIO, "aws", "AWS %.20s %.40s failed: %.90s%s%.250s (HTTP %ld%s)",
			call->service, call->operation, r.code[0] ? r.code : "error", msg[0] ? ": " : "", msg,
			hr->status, auth ? "; check the AWS credentials and their permissions" : "");
		snprintf(r.error.code, sizeof r.error.code, "%.31s", r.code[0] ? r.code : "aws_error");
	}
	r.body = hr->body;
	r.body_len = hr->body_len;
	hr->body = NULL; /* the response takes the body */
	hr->body_len = 0;
	if (!r.body) {
		r.body = calloc(1, 1);
	}
	finish(call, &r);
}

static void send_attempt(aws_call *call)
{
	aws_client *c = call->c;
	call->attempt++;
	char base[600], host[300];
	aws_endpoint(c, call->service, base, sizeof base, host, sizeof host);
	aws_header hs[4];
	size_t nh = 0;
	hs[nh++] = (aws_header){"Host", host};
	if (call->content_type)
		hs[nh++] = (aws_header){"Content-Type", call->content_type};
	if (call->target)
		hs[nh++] = (aws_header){"X-Amz-Target", call->target};
	aws_sign_ctx ctx = {c->region, call->service, aws_creds_keys(&c->creds), 0};
	aws_sign_req sr = {call->method, call->path, call->query, hs, nh, call->body, call->body_len, NULL};
	aws_signed sig;
	char why[300];
	aws_response r;
	memset(&r, 0, sizeof r);
	if (aws_sigv4_sign(&ctx, &sr, &sig, why, sizeof why) < 0) {
		aws_signed_free(&sig);
		set_err(&r.error, SBX_E_INVALID, EINVAL, "invalid", "AWS %s %s: cannot sign the request: %s",
			call->service, call->operation, why);
		finish(call, &r);
		return;
	}
	char h_auth[600], h_date[40], h_tok[4200], h_sha[100], h_ct[300], h_target[300];
	const char *headers[8];
	int n = 0;
	snprintf(h_auth, sizeof h_auth, "Authorization: %s", sig.authorization);
	headers[n++] = h_auth;
	snprintf(h_date, sizeof h_date, "X-Amz-Date: %s", sig.amz_date);
	headers[n++] = h_date;
	if (sig.add_token) {
		snprintf(h_tok, sizeof h_tok, "X-Amz-Security-Token: %s", c->creds.session_token);
		headers[n++] = h_tok;
	}
	if (sig.add_content_sha) {
		snprintf(h_sha, sizeof h_sha, "X-Amz-Content-Sha256: %s", sig.payload_hash);
		headers[n++] = h_sha;
	}
	if (call->content_type) {
		snprintf(h_ct, sizeof h_ct, "Content-Type: %s", call->content_type);
		headers[n++] = h_ct;
	} else {
		headers[n++] = "Content-Type:"; /* no libcurl default for POST bodies */
	}
	if (call->target) {
		snprintf(h_target, sizeof h_target, "X-Amz-Target: %s", call->target);
		headers[n++] = h_target;
	}
	headers[n] = NULL;
	aws_signed_free(&sig);

	sbx_buf url = {0};
	aws_buf_printf(&url, "%s%s%s%s", base, call->path, call->query && *call->query ? "?" : "",
		       call->query ? call->query : "");
	/* An empty GET/DELETE carries no body at all (no Content-Length: 0). */
	int bodyless = call->body_len == 0 && strcmp(call->method, "POST") != 0 && strcmp(call->method, "PUT") != 0;
	sbx_http_request rq = {.method = call->method, .url = aws_buf_str(&url), .headers = headers,
			       .body = bodyless ? NULL : call->body, .body_len = call->body_len, .timeout_s = c->timeout_s,
			       .max_body = 64 * 1024 * 1024, .on_done = http_done, .ud = call};
	sbx_error err;
	call->http = sbx_http_start(c->http, &rq, &err);
	sbx_buf_free(&url);
	if (!call->http) {
		r.error = err;
		finish(call, &r);
	}
}

static char *sdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

aws_call *aws_call_start(aws_client *c, const aws_request *rq, aws_done_cb cb, void *ud, sbx_error *err)
{
	if (!rq->service || !*rq->service || !cb) {
		set_err(err, SBX_E_INVALID, EINVAL, "invalid", "AWS call without a service or a callback");
		return NULL;
	}
	aws_call *call = calloc(1, sizeof *call);
	if (!call) {
		set_err(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	call->c = c;
	call->service = sdup(rq->service);
	call->operation = sdup(rq->operation ? rq->operation : "call");
	call->method = sdup(rq->method ? rq->method : "POST");
	call->path = sdup(rq->path && *rq->path ? rq->path : "/");
	call->query = sdup(rq->query);
	call->content_type = sdup(rq->content_type);
	call->target = sdup(rq->target);
	call->body = malloc(rq->body_len + 1);
	if (call->body && rq->body_len)
		memcpy(call->body, rq->body, rq->body_len);
	call->body_len = rq->body_len;
	call->cb = cb;
	call->ud = ud;
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	if (!call->service || !call->operation || !call->method || !call->path || !call->body ||
	    (rq->query && !call->query) || (rq->content_type && !call->content_type) ||
	    (rq->target && !call->target)) {
		call_free(call);
		set_err(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	/* Start from the loop, so the callback never runs inside this function. */
	call->timer = sbx_loop_timer(c->loop, 0, retry_timer, call);
	if (!call->timer) {
		call_free(call);
		set_err(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return NULL;
	}
	return call;
}

void aws_call_cancel(aws_call *call)
{
	if (!call)
		return;
	if (call->http)
		sbx_http_cancel(call->http);
	if (call->timer)
		sbx_timer_cancel(call->c->loop, call->timer);
	call_free(call);
}

/* ------------------------------------------------------------ blocking */

typedef struct sync_wait {
	int done;
	aws_response *out;
} sync_wait;

static void sync_done(void *ud, aws_response *r)
{
	sync_wait *w = ud;
	*w->out = *r;
	r->body = NULL; /* kept by the caller */
	w->done = 1;
}

int aws_call_sync(aws_client *c, const aws_request *rq, aws_response *out)
{
	memset(out, 0, sizeof *out);
	sync_wait w = {0, out};
	if (!aws_call_start(c, rq, sync_done, &w, &out->error))
		return -1;
	if (sbx_loop_run_until(c->loop, &w.done) < 0 && !w.done) {
		set_err(&out->error, SBX_E_LOCAL, errno, "io", "the event loop failed");
		return -1;
	}
	return out->error.status == SBX_OK ? 0 : -1;
}

void aws_response_free(aws_response *r)
{
	free(r->body);
	r->body = NULL;
}

typedef struct creds_wait {
	int done;
	sbx_error err;
} creds_wait;

static void creds_sync_done(void *ud, aws_response *r)
{
	creds_wait *w = ud;
	w->err = r->error;
	w->done = 1;
}

int aws_client_credentials_sync(aws_client *c, aws_credentials *out, sbx_error *err)
{
	if (!creds_fresh(c)) {
		/* A call with no request: it waits for the fetch, then is answered without sending. */
		creds_wait w = {0, {0}};
		aws_call *call = calloc(1, sizeof *call);
		if (!call) {
			set_err(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
			return -1;
		}
		call->c = c;
		call->cb = creds_sync_done;
		call->ud = &w;
		call->waiting_creds = 1;
		call->next = c->calls;
		if (c->calls)
			c->calls->prev = call;
		c->calls = call;
		call->creds_only = 1;
		if (c->fetch == FETCH_IDLE)
			start_fetch(c);
		while (!w.done)
			if (sbx_loop_run_once(c->loop, -1) < 0 && errno != EINTR)
				break;
		if (!w.done || w.err.status != SBX_OK) {
			if (!w.done)
				aws_call_cancel(call);
			*err = w.done ? w.err : (sbx_error){SBX_E_LOCAL, EIO, "io", "the event loop failed"};
			return -1;
		}
	}
	*out = c->creds;
	return 0;
}
