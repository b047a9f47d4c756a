/* api.h — one signed AWS API call on the event loop.
 *
 * An aws_client holds the region, the endpoint, the credentials (resolved
 * once, refreshed before they expire; remote sources fetched over HTTP on
 * the loop) and the retry policy. aws_call_start signs a request with
 * SigV4, sends it with the loop's HTTP client, retries throttling, 5xx and
 * connection failures with exponential backoff and full jitter, and reports
 * once with the body or with an sbx_error naming the service, the
 * operation, AWS's error code and message.
 *
 * Endpoints: https://SERVICE.REGION.amazonaws.com (S3 path-style:
 * https://s3.REGION.amazonaws.com/BUCKET/KEY), or every service at one
 * URL given in the options or $AWS_ENDPOINT_URL (moto, LocalStack);
 * $AWS_ENDPOINT_URL_<SERVICE> (e.g. _SSM) overrides one service. */
#ifndef SBX_AWS_API_H
#define SBX_AWS_API_H

#include <stddef.h>
#include <stdint.h>

#include "backends/aws/credentials.h"
#include "net/http.h"
#include "loop.h"
#include "sbx.h"

#define AWS_DEFAULT_TIMEOUT_S 30
#define AWS_DEFAULT_MAX_RETRIES 8
#define AWS_DEFAULT_BACKOFF_BASE_MS 100
#define AWS_BACKOFF_CAP_MS 20000

typedef struct aws_client aws_client;
typedef struct aws_call aws_call;

typedef struct aws_client_opts {
	const char *region;                   /* required */
	const char *endpoint_url;             /* NULL: $AWS_ENDPOINT_URL, else AWS's */
	aws_creds_opts creds;                 /* where to look for credentials */
	const aws_credentials *static_creds;  /* use these and never resolve */
	unsigned timeout_s;                   /* per attempt; 0 = AWS_DEFAULT_TIMEOUT_S */
	unsigned max_retries;                 /* with max_retries_set; else AWS_DEFAULT_MAX_RETRIES */
	int max_retries_set;
	unsigned backoff_base_ms;             /* 0 = AWS_DEFAULT_BACKOFF_BASE_MS */
	const char *metadata_endpoint;        /* IMDS; NULL: $AWS_EC2_METADATA_SERVICE_ENDPOINT or 169.254.169.254 */
} aws_client_opts;

typedef struct aws_request {
	const char *service;      /* signing name and endpoint prefix: "ec2", "ssm", "s3", "sts" */
	const char *operation;    /* for errors: "RunInstances" */
	const char *method;       /* default "POST" */
	const char *path;         /* wire path (percent-encoded); default "/" */
	const char *query;        /* wire query without '?', or NULL */
	const char *content_type; /* sent and signed when set */
	const char *target;       /* X-Amz-Target (JSON protocols) */
	const void *body;
	size_t body_len;
} aws_request;

typedef struct aws_response {
	sbx_error error;          /* SBX_OK for a 2xx answer */
	long status;              /* HTTP status; 0 if none arrived */
	uint8_t *body;            /* NUL-terminated */
	size_t body_len;
	char code[96];            /* AWS's error code, e.g. "InvalidAMIID.NotFound" */
	unsigned attempts;
} aws_response;

typedef void (*aws_done_cb)(void *ud, aws_response *r); /* r is freed after it returns */

/* A client on loop, using http (which it does not own). NULL with err. */
aws_client *aws_client_new(sbx_loop *loop, sbx_http *http, const aws_client_opts *o, sbx_error *err);
/* Cancels calls in flight (no callbacks) and frees. */
void aws_client_free(aws_client *c);
const char *aws_client_region(const aws_client *c);

/* Start a call. NULL with err when it cannot start (cb is then not called). */
aws_call *aws_call_start(aws_client *c, const aws_request *rq, aws_done_cb cb, void *ud, sbx_error *err);
/* Stop a call; its callback is not called. */
void aws_call_cancel(aws_call *call);

/* Blocking: runs the loop until the call is done. 0 for a 2xx answer,
 * else -1; *out holds the answer either way (free with aws_response_free). */
int aws_call_sync(aws_client *c, const aws_request *rq, aws_response *out);
void aws_response_free(aws_response *r);

/* The service's base URL ("https://ec2.eu-west-2.amazonaws.com" or the
 * override, no trailing slash) and its host[:port] as sent in Host. */
void aws_endpoint(const aws_client *c, const char *service, char *url, size_t urllen, char *host, size_t hostlen);

/* Credentials now, resolving or refreshing them (on the loop) if needed.
 * 0, or -1 with err. */
int aws_client_credentials_sync(aws_client *c, aws_credentials *out, sbx_error *err);

/* Is this answer worth retrying: throttling, 5xx, timeouts, connection failures. */
int aws_retryable(long status, const char *code, const sbx_error *transport);

#endif
