/* sigv4.c — AWS Signature Version 4: canonical request, string to sign,
 * signing key, Authorization header and presigned query strings (see
 * sigv4.h). The rules follow AWS's SigV4 documentation and its test suite
 * (tests/fixtures/sigv4/). */
#include "backends/aws/sigv4.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/crypto_lib.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define MAX_HEADERS 64
#define MAX_QUERY_PARAMS 256

static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (why && whylen)
		vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---------------------------------------------------------------- path */

/* Remove "." and empty segments and resolve ".." (RFC 3986 section 5.2.4,
 * plus collapsing "//"), keeping a trailing slash. */
static int normalize_path(sbx_buf *out, const char *path)
{
	size_t n = strlen(path);
	const char *seg[256];
	size_t seglen[256];
	size_t nseg = 0;
	for (size_t i = 0; i < n;) {
		while (i < n && path[i] == '/')
			i++;
		size_t start = i;
		while (i < n && path[i] != '/')
			i++;
		size_t len = i - start;
		if (len == 0 || (len == 1 && path[start] == '.'))
			continue;
		if (len == 2 && path[start] == '.' && path[start + 1] == '.') {
			if (nseg > 0)
				nseg--;
			continue;
		}
		if (nseg == 256)
			return -1;
		seg[nseg] = path + start;
		seglen[nseg++] = len;
	}
	if (aws_buf_puts(out, "/") < 0)
		return -1;
	for (size_t k = 0; k < nseg; k++) {
		if (aws_buf_putn(out, seg[k], seglen[k]) < 0)
			return -1;
		if ((k + 1 < nseg || (n > 0 && path[n - 1] == '/')) && aws_buf_puts(out, "/") < 0)
			return -1;
	}
	return 0;
}

static int canonical_path(sbx_buf *out, const char *path, int s3)
{
	if (!path || !*path)
		return aws_buf_puts(out, "/");
	if (s3)
		return aws_buf_puts(out, path);
	sbx_buf norm = {0};
	int rc = normalize_path(&norm, path);
	if (rc == 0)
		rc = aws_uri_encode(out, aws_buf_str(&norm), sbx_buf_size(&norm), 1);
	sbx_buf_free(&norm);
	return rc;
}

/* --------------------------------------------------------------- query */

typedef struct param {
	char *key, *value; /* encoded */
} param;

typedef struct params {
	param p[MAX_QUERY_PARAMS];
	size_t n;
} params;

static void params_free(params *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->p[i].key);
		free(ps->p[i].value);
	}
	ps->n = 0;
}

static char *encode_dup(const char *s, size_t n, int already_encoded)
{
	sbx_buf dec = {0}, enc = {0};
	char *r = NULL;
	if (already_encoded) {
		if (aws_uri_decode(&dec, s, n) < 0)
			goto out;
		s = aws_buf_str(&dec);
		n = sbx_buf_size(&dec);
	}
	if (aws_uri_encode(&enc, s, n, 0) == 0)
		r = strdup(aws_buf_str(&enc));
out:
	sbx_buf_free(&dec);
	sbx_buf_free(&enc);
	return r;
}

/* Add one raw (not yet encoded) parameter. */
static int params_add(params *ps, const char *key, const char *value)
{
	if (ps->n == MAX_QUERY_PARAMS)
		return -1;
	param *p = &ps->p[ps->n];
	p->key = encode_dup(key, strlen(key), 0);
	p->value = encode_dup(value, strlen(value), 0);
	if (!p->key || !p->value) {
		free(p->key);
		free(p->value);
		return -1;
	}
	ps->n++;
	return 0;
}

/* Split a wire query into parameters, re-encoding each name and value. */
static int params_parse(params *ps, const char *query, char *why, size_t whylen)
{
	if (!query)
		return 0;
	const char *s = query;
	while (*s) {
		const char *end = strchr(s, '&');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		if (len > 0) {
			const char *eq = memchr(s, '=', len);
			size_t klen = eq ? (size_t)(eq - s) : len;
			if (ps->n == MAX_QUERY_PARAMS)
				return fail(why, whylen, "query has more than %d parameters", MAX_QUERY_PARAMS);
			param *p = &ps->p[ps->n];
			p->key = encode_dup(s, klen, 1);
			p->value = eq ? encode_dup(eq + 1, len - klen - 1, 1) : strdup("");
			if (!p->key || !p->value) {
				free(p->key);
				free(p->value);
				return fail(why, whylen, "query parameter '%.*s' has a malformed %%-escape",
					    (int)(klen > 64 ? 64 : klen), s);
			}
			ps->n++;
		}
		s += len;
		if (*s == '&')
			s++;
	}
	return 0;
}

static int param_cmp(const void *a, const void *b)
{
	const param *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->value, y->value);
}

static int canonical_query(sbx_buf *out, params *ps)
{
	qsort(ps->p, ps->n, sizeof ps->p[0], param_cmp);
	if (aws_buf_puts(out, "") < 0)
		return -1;
	for (size_t i = 0; i < ps->n; i++)
		if (aws_buf_printf(out, "%s%s=%s", i ? "&" : "", ps->p[i].key, ps->p[i].value) < 0)
			return -1;
	return 0;
}

/* ------------------------------------------------------------- headers */

typedef struct hdr {
	char *name;  /* lowercase */
	char *value; /* trimmed, inner whitespace runs collapsed */
	size_t order;
} hdr;

typedef struct hdrs {
	hdr h[MAX_HEADERS];
	size_t n;
} hdrs;

static void hdrs_free(hdrs *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		free(hs->h[i].name);
		free(hs->h[i].value);
	}
	hs->n = 0;
}

static const char *hdrs_find(const hdrs *hs, const char *lname)
{
	for (size_t i = 0; i < hs->n; i++)
		if (strcmp(hs->h[i].name, lname) == 0)
			return hs->h[i].value;
	return NULL;
}

static int hdrs_add(hdrs *hs, const char *name, const char *value, char *why, size_t whylen)
{
	if (hs->n == MAX_HEADERS)
		return fail(why, whylen, "more than %d headers to sign", MAX_HEADERS);
	size_t nl = strlen(name);
	if (nl == 0)
		return fail(why, whylen, "a header has an empty name");
	char *n = malloc(nl + 1);
	char *v = malloc(strlen(value) + 1);
	if (!n || !v) {
		free(n);
		free(v);
		return fail(why, whylen, "out of memory");
	}
	for (size_t i = 0; i <= nl; i++) {
		unsigned char c = (unsigned char)name[i];
		if (i < nl && (c <= ' ' || c == ':' || c >= 0x7f)) {
			free(n);
			free(v);
			return fail(why, whylen, "header name '%.64s' has a character not allowed in HTTP",
				    name);
		}
		n[i] = (char)tolower(c);
	}
	/* Trim and collapse whitespace; CR and LF are never allowed. */
	char *p = v;
	int space = 0;
	for (const char *s = value; *s; s++) {
		if (*s == '\r' || *s == '\n') {
			free(n);
			free(v);
			return fail(why, whylen, "header '%.64s' has a line break in its value", name);
		}
		if (*s == ' ' || *s == '\t') {
			space = 1;
			continue;
		}
		if (space && p != v)
			*p++ = ' ';
		space = 0;
		*p++ = *s;
	}
	*p = 0;
	hs->h[hs->n] = (hdr){n, v, hs->n};
	hs->n++;
	return 0;
}

static int hdr_cmp(const void *a, const void *b)
{
	const hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* "name:v1,v2\n" per distinct name, and "a;b;c" into signed. */
static int canonical_headers(sbx_buf *out, sbx_buf *signed_names, hdrs *hs)
{
	qsort(hs->h, hs->n, sizeof hs->h[0], hdr_cmp);
	if (aws_buf_puts(signed_names, "") < 0)
		return -1;
	for (size_t i = 0; i < hs->n; i++) {
		int same = i > 0 && strcmp(hs->h[i].name, hs->h[i - 1].name) == 0;
		int rc;
		if (same) {
			rc = aws_buf_printf(out, ",%s", hs->h[i].value);
		} else {
			rc = aws_buf_printf(out, "%s%s:%s", i ? "\n" : "", hs->h[i].name, hs->h[i].value);
			if (rc == 0)
				rc = aws_buf_printf(signed_names, "%s%s", i ? ";" : "", hs->h[i].name);
		}
		if (rc < 0)
			return -1;
	}
	return aws_buf_puts(out, "\n");
}

/* ------------------------------------------------------------- signing */

static void hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
	unsigned int len = 32;
	sbx_crypto()->hmac(sbx_crypto()->sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &len);
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
static int signature(const aws_sign_ctx *ctx, const char *date8, const char *sts, char hex[AWS_SHA256_HEX])
{
	size_t sl = strlen(ctx->keys.secret_access_key);
	char *k = malloc(sl + 5);
	if (!k)
		return -1;
	memcpy(k, "AWS4", 4);
	memcpy(k + 4, ctx->keys.secret_access_key, sl + 1);
	unsigned char a[32], b[32];
	hmac(k, sl + 4, date8, a);
	hmac(a, 32, ctx->region, b);
	hmac(b, 32, ctx->service, a);
	hmac(a, 32, "aws4_request", b);
	hmac(b, 32, sts, a);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", a[i]);
	free(k);
	return 0;
}

static int check_ctx(const aws_sign_ctx *ctx, char *why, size_t whylen)
{
	if (!ctx->region || !*ctx->region)
		return fail(why, whylen, "no AWS region to sign for");
	if (!ctx->service || !*ctx->service)
		return fail(why, whylen, "no AWS service name to sign for");
	if (!ctx->keys.access_key_id || !*ctx->keys.access_key_id || !ctx->keys.secret_access_key ||
	    !*ctx->keys.secret_access_key)
		return fail(why, whylen, "no AWS access key to sign with: set AWS_ACCESS_KEY_ID and "
					 "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE");
	for (const char *s = ctx->region; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-')
			return fail(why, whylen, "AWS region '%.64s' is not a region name", ctx->region);
	return 0;
}

static int has_token(const aws_sign_ctx *ctx)
{
	return ctx->keys.session_token && *ctx->keys.session_token;
}

/* The canonical request and string to sign from its parts; the signature
 * into sig. */
static int sign_parts(const aws_sign_ctx *ctx, const char *method, const char *path, params *ps, hdrs *hs,
		      const char *payload_hash, const char *amz_date, sbx_buf *creq, sbx_buf *sts,
		      sbx_buf *signed_names, char sig[AWS_SHA256_HEX])
{
	int s3 = strcmp(ctx->service, "s3") == 0;
	sbx_buf cpath = {0}, cquery = {0}, chdrs = {0};
	int rc = -1;
	if (canonical_path(&cpath, path, s3) < 0 || canonical_query(&cquery, ps) < 0 ||
	    canonical_headers(&chdrs, signed_names, hs) < 0)
		goto out;
	if (aws_buf_printf(creq, "%s\n%s\n%s\n%s\n%s\n%s", method, aws_buf_str(&cpath), aws_buf_str(&cquery),
			   aws_buf_str(&chdrs), aws_buf_str(signed_names), payload_hash) < 0)
		goto out;
	char creq_hash[AWS_SHA256_HEX];
	aws_sha256_hex(aws_buf_str(creq), sbx_buf_size(creq), creq_hash);
	char date8[9];
	snprintf(date8, sizeof date8, "%.8s", amz_date);
	if (aws_buf_printf(sts, ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date8, ctx->region,
			   ctx->service, creq_hash) < 0)
		goto out;
	rc = signature(ctx, date8, aws_buf_str(sts), sig);
out:
	sbx_buf_free(&cpath);
	sbx_buf_free(&cquery);
	sbx_buf_free(&chdrs);
	return rc;
}

static int valid_amz_date(const char *d)
{
	if (strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return 0;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)d[i]))
			return 0;
	return 1;
}

int aws_sigv4_sign(const aws_sign_ctx *ctx, const aws_sign_req *req, aws_signed *out, char *why,
		   size_t whylen)
{
	memset(out, 0, sizeof *out);
	if (check_ctx(ctx, why, whylen) < 0)
		return -1;
	if (!req->method || !*req->method)
		return fail(why, whylen, "no HTTP method to sign");
	int s3 = strcmp(ctx->service, "s3") == 0;
	hdrs hs = {.n = 0};
	params ps = {.n = 0};
	sbx_buf signed_names = {0};
	int rc = -1;

	for (size_t i = 0; i < req->nheaders; i++)
		if (hdrs_add(&hs, req->headers[i].name, req->headers[i].value, why, whylen) < 0)
			goto out;
	if (!hdrs_find(&hs, "host")) {
		fail(why, whylen, "the request to sign has no Host header");
		goto out;
	}
	const char *date = hdrs_find(&hs, "x-amz-date");
	if (date) {
		if (!valid_amz_date(date)) {
			fail(why, whylen, "X-Amz-Date '%.32s' is not of the form YYYYMMDDTHHMMSSZ", date);
			goto out;
		}
		snprintf(out->amz_date, sizeof out->amz_date, "%s", date);
	} else {
		aws_amz_date(ctx->now ? ctx->now : time(NULL), out->amz_date);
		out->add_date = 1;
		if (hdrs_add(&hs, "x-amz-date", out->amz_date, why, whylen) < 0)
			goto out;
	}
	if (req->payload_hash)
		snprintf(out->payload_hash, sizeof out->payload_hash, "%s", req->payload_hash);
	else
		aws_sha256_hex(req->body ? req->body : "", req->body ? req->body_len : 0, out->payload_hash);
	if (has_token(ctx) && !hdrs_find(&hs, "x-amz-security-token")) {
		out->add_token = 1;
		if (hdrs_add(&hs, "x-amz-security-token", ctx->keys.session_token, why, whylen) < 0)
			goto out;
	}
	if (s3 && !hdrs_find(&hs, "x-amz-content-sha256")) {
		out->add_content_sha = 1;
		if (hdrs_add(&hs, "x-amz-content-sha256", out->payload_hash, why, whylen) < 0)
			goto out;
	}
	if (params_parse(&ps, req->query, why, whylen) < 0)
		goto out;

	char sig[AWS_SHA256_HEX];
	if (sign_parts(ctx, req->method, req->path, &ps, &hs, out->payload_hash, out->amz_date,
		       &out->canonical_request, &out->string_to_sign, &signed_names, sig) < 0) {
		fail(why, whylen, "out of memory while signing");
		goto out;
	}
	int n = snprintf(out->authorization, sizeof out->authorization,
			 ALGORITHM " Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
			 ctx->keys.access_key_id, out->amz_date, ctx->region, ctx->service,
			 aws_buf_str(&signed_names), sig);
	if (n < 0 || (size_t)n >= sizeof out->authorization) {
		fail(why, whylen, "the Authorization header would be longer than %zu bytes (too many "
				  "signed headers or a very long access key id)",
		     sizeof out->authorization - 1);
		goto out;
	}
	rc = 0;
out:
	hdrs_free(&hs);
	params_free(&ps);
	sbx_buf_free(&signed_names);
	return rc;
}

void aws_signed_free(aws_signed *s)
{
	sbx_buf_free(&s->canonical_request);
	sbx_buf_free(&s->string_to_sign);
}

int aws_sigv4_presign(const aws_sign_ctx *ctx, const char *method, const char *host, const char *path,
		      const char *query, unsigned expires_s, sbx_buf *out, char *why, size_t whylen)
{
	if (check_ctx(ctx, why, whylen) < 0)
		return -1;
	if (!host || !*host)
		return fail(why, whylen, "no host to presign for");
	if (expires_s < 1 || expires_s > 604800)
		return fail(why, whylen, "a presigned URL lives 1 to 604800 seconds, not %u", expires_s);
	hdrs hs = {.n = 0};
	params ps = {.n = 0};
	sbx_buf creq = {0}, sts = {0}, signed_names = {0}, cquery = {0};
	int rc = -1;
	char amz_date[17], expires[16], credential[512];
	aws_amz_date(ctx->now ? ctx->now : time(NULL), amz_date);
	snprintf(expires, sizeof expires, "%u", expires_s);
	snprintf(credential, sizeof credential, "%s/%.8s/%s/%s/aws4_request", ctx->keys.access_key_id,
		 amz_date, ctx->region, ctx->service);

	if (hdrs_add(&hs, "host", host, why, whylen) < 0 || params_parse(&ps, query, why, whylen) < 0)
		goto out;
	if (params_add(&ps, "X-Amz-Algorithm", ALGORITHM) < 0 || params_add(&ps, "X-Amz-Credential", credential) < 0 ||
	    params_add(&ps, "X-Amz-Date", amz_date) < 0 || params_add(&ps, "X-Amz-Expires", expires) < 0 ||
	    params_add(&ps, "X-Amz-SignedHeaders", "host") < 0 ||
	    (has_token(ctx) && params_add(&ps, "X-Amz-Security-Token", ctx->keys.session_token) < 0)) {
		fail(why, whylen, "too many query parameters to presign");
		goto out;
	}
	char sig[AWS_SHA256_HEX];
	if (sign_parts(ctx, method, path, &ps, &hs, AWS_UNSIGNED_PAYLOAD, amz_date, &creq, &sts, &signed_names,
		       sig) < 0 ||
	    canonical_query(&cquery, &ps) < 0 ||
	    aws_buf_printf(out, "%s&X-Amz-Signature=%s", aws_buf_str(&cquery), sig) < 0) {
		fail(why, whylen, "out of memory while presigning");
		goto out;
	}
	rc = 0;
out:
	hdrs_free(&hs);
	params_free(&ps);
	sbx_buf_free(&creq);
	sbx_buf_free(&sts);
	sbx_buf_free(&signed_names);
	sbx_buf_free(&cquery);
	return rc;
}
