/* sigv4.h — AWS Signature Version 4 (AWS4-HMAC-SHA256) on OpenSSL.
 *
 * Pure functions: give them a request and the credentials, get back the
 * headers to add (Authorization, X-Amz-Date, X-Amz-Security-Token,
 * X-Amz-Content-Sha256) or a presigned query string. No I/O, no clock
 * unless the caller passes now = 0.
 *
 * Paths and queries are taken as they go on the wire (percent-encoded by
 * the caller). For every service but S3 the canonical path is that path
 * with dot segments and duplicate slashes removed, percent-encoded once
 * more, as the SigV4 test suite and AWS's docs say; S3 signs it as is. */
#ifndef SBX_AWS_SIGV4_H
#define SBX_AWS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "backends/aws/text.h"

#define AWS_SHA256_HEX 65 /* 64 hex digits + NUL */
#define AWS_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

typedef struct aws_keys {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL or "" for long-term keys */
} aws_keys;

typedef struct aws_header {
	const char *name;
	const char *value;
} aws_header;

typedef struct aws_sign_req {
	const char *method;         /* "GET", "POST", ... */
	const char *path;           /* wire path, e.g. "/" or "/bucket/a%20key" */
	const char *query;          /* wire query without '?', or NULL */
	const aws_header *headers;  /* must include Host */
	size_t nheaders;
	const void *body;
	size_t body_len;
	const char *payload_hash;   /* NULL: SHA-256 of body; or AWS_UNSIGNED_PAYLOAD */
} aws_sign_req;

typedef struct aws_sign_ctx {
	const char *region;
	const char *service;        /* "ec2", "ssm", "s3", "sts", ... */
	aws_keys keys;
	time_t now;                 /* 0: time(NULL) */
} aws_sign_ctx;

/* What to add to the request (X-Amz-Date, the token and the content hash
 * only when the caller's headers did not already carry them). */
typedef struct aws_signed {
	char authorization[512];
	char amz_date[17];                 /* YYYYMMDDTHHMMSSZ */
	char payload_hash[AWS_SHA256_HEX]; /* also X-Amz-Content-Sha256 for S3 */
	int add_date, add_token, add_content_sha;
	sbx_buf canonical_request;         /* NUL-terminated, for tests and debugging */
	sbx_buf string_to_sign;
} aws_signed;

/* Sign req. Returns 0, or -1 with why (NUL-terminated, whylen bytes) for
 * a request that cannot be signed: no Host header, a missing key, a bad
 * percent-escape. Free out with aws_signed_free either way. */
int aws_sigv4_sign(const aws_sign_ctx *ctx, const aws_sign_req *req, aws_signed *out, char *why,
		   size_t whylen);
void aws_signed_free(aws_signed *s);

/* A presigned URL's query string (without '?'): the caller's query plus
 * X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders (host),
 * -Security-Token and -Signature, payload UNSIGNED-PAYLOAD. Appends to out
 * (NUL-terminated). expires_s is 1..604800. 0 or -1 with why. */
int aws_sigv4_presign(const aws_sign_ctx *ctx, const char *method, const char *host, const char *path,
		      const char *query, unsigned expires_s, sbx_buf *out, char *why, size_t whylen);

#endif
