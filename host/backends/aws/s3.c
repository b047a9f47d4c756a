/* s3.c — S3 PutObject / GetObject / DeleteObject and presigned GETs,
 * path-style (/BUCKET/KEY) so one endpoint serves every bucket (see s3.h). */
#include "backends/aws/s3.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/aws/sigv4.h"
#include "backends/aws/text.h"
#include "backends/aws/xml.h"
#include "core/internal.h"

typedef struct s3_ctx {
	aws_s3_done_cb done;
	aws_s3_get_cb got;
	void *ud;
} s3_ctx;

static int object_path(sbx_buf *path, const char *bucket, const char *key)
{
	return aws_buf_puts(path, "/") | aws_uri_encode(path, bucket, strlen(bucket), 0) | aws_buf_puts(path, "/") |
	       aws_uri_encode(path, key, strlen(key), 1);
}

static int check_names(const char *op, const char *bucket, const char *key, sbx_error *err)
{
	if (bucket && *bucket && key && *key && key[0] != '/')
		return 0;
	err->status = SBX_E_INVALID;
	err->err_no = EINVAL;
	snprintf(err->code, sizeof err->code, "invalid");
	snprintf(err->message, sizeof err->message, "AWS s3 %s: needs a bucket and a key not starting with '/'", op);
	return -1;
}

static void s3_done(void *ud, aws_response *r)
{
	s3_ctx *ctx = ud;
	const sbx_error *e = r->error.status == SBX_OK ? NULL : &r->error;
	if (ctx->got)
		ctx->got(ctx->ud, e, e ? NULL : r->body, e ? 0 : r->body_len);
	else
		ctx->done(ctx->ud, e);
	free(ctx);
}

static int s3_call(aws_client *c, const char *op, const char *method, const char *bucket, const char *key,
		   const void *data, size_t n, const char *query, s3_ctx *ctx, sbx_error *err)
{
	if (check_names(op, bucket, key, err) < 0) {
		free(ctx);
		return -1;
	}
	sbx_buf path = {0};
	object_path(&path, bucket, key);
	aws_request rq = {.service = "s3", .operation = op, .method = method, .path = aws_buf_str(&path),
			  .query = query, .body = data, .body_len = n,
			  .content_type = data ? "application/octet-stream" : NULL};
	aws_call *call = aws_call_start(c, &rq, s3_done, ctx, err);
	sbx_buf_free(&path);
	if (!call)
		free(ctx);
	return call ? 0 : -1;
}

static s3_ctx *new_ctx(aws_s3_done_cb done, aws_s3_get_cb got, void *ud, sbx_error *err)
{
	s3_ctx *ctx = malloc(sizeof *ctx);
	if (!ctx) {
		err->status = SBX_E_LOCAL;
		err->err_no = ENOMEM;
		snprintf(err->message, sizeof err->message, "out of memory");
		return NULL;
	}
	*ctx = (s3_ctx){done, got, ud};
	return ctx;
}

int aws_s3_put_object(aws_client *c, const char *bucket, const char *key, const void *data, size_t n,
		      const char *const *tags, aws_s3_done_cb cb, void *ud, sbx_error *err)
{
	(void)tags; /* object tags go in a header; sbx tags objects through the key prefix instead */
	s3_ctx *ctx = new_ctx(cb, NULL, ud, err);
	return ctx ? s3_call(c, "PutObject", "PUT", bucket, key, data ? data : "", n, NULL, ctx, err) : -1;
}

int aws_s3_get_object(aws_client *c, const char *bucket, const char *key, aws_s3_get_cb cb, void *ud,
		      sbx_error *err)
{
	s3_ctx *ctx = new_ctx(NULL, cb, ud, err);
	return ctx ? s3_call(c, "GetObject", "GET", bucket, key, NULL, 0, NULL, ctx, err) : -1;
}

int aws_s3_delete_object(aws_client *c, const char *bucket, const char *key, aws_s3_done_cb cb, void *ud,
			 sbx_error *err)
{
	s3_ctx *ctx = new_ctx(cb, NULL, ud, err);
	return ctx ? s3_call(c, "DeleteObject", "DELETE", bucket, key, NULL, 0, NULL, ctx, err) : -1;
}

typedef struct list_ctx {
	aws_s3_list_cb cb;
	void *ud;
} list_ctx;

static void listed(void *ud, aws_response *r)
{
	list_ctx *ctx = ud;
	if (r->error.status != SBX_OK) {
		ctx->cb(ctx->ud, &r->error, NULL, 0, "");
		free(ctx);
		return;
	}
	char why[256];
	aws_xml *root = aws_xml_parse((const char *)r->body, r->body_len, why, sizeof why);
	size_t n = 0;
	for (const aws_xml *it = root ? aws_xml_find(root, "Contents") : NULL; it; it = aws_xml_next_same(it))
		n++;
	const char **keys = calloc(n ? n : 1, sizeof *keys);
	if (!root || !keys) {
		sbx_error e = {SBX_E_REMOTE, EPROTO, "protocol", ""};
		snprintf(e.message, sizeof e.message, "AWS s3 ListObjectsV2: unreadable answer: %s", root ? "out of memory" : why);
		ctx->cb(ctx->ud, &e, NULL, 0, "");
	} else {
		size_t k = 0;
		for (const aws_xml *it = aws_xml_find(root, "Contents"); it; it = aws_xml_next_same(it)) {
			const char *key = aws_xml_text(it, "Key");
			if (key && *key)
				keys[k++] = key;
		}
		const char *truncated = aws_xml_text(root, "IsTruncated");
		const char *next = aws_xml_text(root, "NextContinuationToken");
		int more = truncated && strcmp(truncated, "true") == 0 && next;
		ctx->cb(ctx->ud, NULL, keys, k, more ? next : "");
	}
	free(keys);
	aws_xml_free(root);
	free(ctx);
}

int aws_s3_list_objects(aws_client *c, const char *bucket, const char *prefix, const char *token, aws_s3_list_cb cb,
			void *ud, sbx_error *err)
{
	if (check_names("ListObjectsV2", bucket, "-", err) < 0)
		return -1;
	list_ctx *ctx = malloc(sizeof *ctx);
	if (!ctx) {
		sbx_error_set(err, SBX_E_LOCAL, ENOMEM, "io", "out of memory");
		return -1;
	}
	*ctx = (list_ctx){cb, ud};
	sbx_buf path = {0}, query = {0};
	aws_buf_puts(&path, "/");
	aws_uri_encode(&path, bucket, strlen(bucket), 0);
	/* parameters in canonical (sorted) order */
	if (token && *token)
		aws_form_add(&query, "continuation-token", token);
	aws_form_add(&query, "list-type", "2");
	if (prefix && *prefix)
		aws_form_add(&query, "prefix", prefix);
	aws_request rq = {.service = "s3", .operation = "ListObjectsV2", .method = "GET", .path = aws_buf_str(&path),
			  .query = aws_buf_str(&query)};
	aws_call *call = aws_call_start(c, &rq, listed, ctx, err);
	sbx_buf_free(&path);
	sbx_buf_free(&query);
	if (!call)
		free(ctx);
	return call ? 0 : -1;
}

int aws_s3_presign_get(aws_client *c, const char *bucket, const char *key, unsigned expires_s, sbx_buf *out,
		       sbx_error *err)
{
	if (check_names("presign", bucket, key, err) < 0)
		return -1;
	aws_credentials cr;
	if (aws_client_credentials_sync(c, &cr, err) < 0)
		return -1;
	char base[600], host[300], why[300];
	aws_endpoint(c, "s3", base, sizeof base, host, sizeof host);
	sbx_buf path = {0}, query = {0};
	object_path(&path, bucket, key);
	aws_sign_ctx ctx = {aws_client_region(c), "s3", aws_creds_keys(&cr), 0};
	int rc = aws_sigv4_presign(&ctx, "GET", host, aws_buf_str(&path), NULL, expires_s, &query, why, sizeof why);
	if (rc == 0)
		rc = aws_buf_printf(out, "%s%s?%s", base, aws_buf_str(&path), aws_buf_str(&query));
	else {
		err->status = SBX_E_INVALID;
		err->err_no = EINVAL;
		snprintf(err->code, sizeof err->code, "invalid");
		snprintf(err->message, sizeof err->message, "AWS s3 presign: %s", why);
	}
	sbx_buf_free(&path);
	sbx_buf_free(&query);
	return rc;
}

void aws_s3_key(const char *prefix, const char *name, char *out, size_t outlen)
{
	size_t pl = prefix ? strlen(prefix) : 0;
	while (pl && prefix[pl - 1] == '/')
		pl--;
	while (*name == '/')
		name++;
	if (pl)
		snprintf(out, outlen, "%.*s/%s", (int)pl, prefix, name);
	else
		snprintf(out, outlen, "%s", name);
}
