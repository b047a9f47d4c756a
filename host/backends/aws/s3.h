/* s3.h — the S3 object calls sbx makes (REST, path-style addressing):
 * PutObject, GetObject, DeleteObject, ListObjectsV2, and presigned GET URLs (for an
 * instance to fetch the agent at boot). Keys are given unencoded; the
 * configured key prefix is the caller's to add (aws_s3_key). */
#ifndef SBX_AWS_S3_H
#define SBX_AWS_S3_H

#include <stddef.h>
#include <stdint.h>

#include "backends/aws/api.h"

typedef void (*aws_s3_done_cb)(void *ud, const sbx_error *err);
/* body is valid only during the callback. */
typedef void (*aws_s3_get_cb)(void *ud, const sbx_error *err, const uint8_t *body, size_t n);

int aws_s3_put_object(aws_client *c, const char *bucket, const char *key, const void *data, size_t n,
		      const char *const *tags, aws_s3_done_cb cb, void *ud, sbx_error *err);
int aws_s3_get_object(aws_client *c, const char *bucket, const char *key, aws_s3_get_cb cb, void *ud,
		      sbx_error *err);
int aws_s3_delete_object(aws_client *c, const char *bucket, const char *key, aws_s3_done_cb cb, void *ud,
			 sbx_error *err);

/* One page of ListObjectsV2: up to 1000 keys starting with prefix, after
 * the page that gave token (NULL or "" for the first). keys[] and next
 * (the next page's token, "" when this was the last) are valid only during
 * the callback. */
typedef void (*aws_s3_list_cb)(void *ud, const sbx_error *err, const char *const *keys, size_t n, const char *next);
int aws_s3_list_objects(aws_client *c, const char *bucket, const char *prefix, const char *token, aws_s3_list_cb cb,
			void *ud, sbx_error *err);

/* A presigned GET URL valid for expires_s seconds, into out (NUL-terminated).
 * Resolves credentials first if needed (runs the loop). 0 or -1 with err. */
int aws_s3_presign_get(aws_client *c, const char *bucket, const char *key, unsigned expires_s, sbx_buf *out,
		       sbx_error *err);

/* prefix + name, with exactly one '/' between them when prefix is set. */
void aws_s3_key(const char *prefix, const char *name, char *out, size_t outlen);

#endif
