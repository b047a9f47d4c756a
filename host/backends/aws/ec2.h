/* ec2.h — the EC2 calls sbx makes (Query API, XML answers parsed with
 * expat): launch, describe, terminate. All asynchronous on the client's
 * loop; each reports once through its callback. */
#ifndef SBX_AWS_EC2_H
#define SBX_AWS_EC2_H

#include <stddef.h>

#include "backends/aws/api.h"
#include "backends/aws/ec2config.h"

#define AWS_EC2_API_VERSION "2016-11-15"
#define AWS_EC2_MAX_TAGS 50

typedef struct aws_ec2_launch {
	const char *image_id;
	const char *instance_type;
	const char *subnet_id;
	const char *security_group_id;
	const char *instance_profile;      /* name */
	const sbx_ec2_tag *tags;           /* instance and volume tags */
	size_t n_tags;
	const void *user_data;             /* raw; sent base64-encoded */
	size_t user_data_len;
	unsigned volume_size_gib;          /* 0: the AMI's */
	const char *root_device_name;      /* default "/dev/sda1" (Ubuntu AMIs) */
	const char *client_token;          /* idempotency: a retried launch starts no second instance */
} aws_ec2_launch;

typedef struct aws_ec2_instance {
	char id[32];
	char state[24];        /* pending, running, shutting-down, terminated, stopping, stopped */
	char private_ip[48];
	char image_id[32];
	char instance_type[32];
	char http_tokens[16];  /* MetadataOptions: "required" for IMDSv2 only */
	sbx_ec2_tag tags[AWS_EC2_MAX_TAGS];
	size_t n_tags;
} aws_ec2_instance;

/* Filters for DescribeInstances: Name=tag:KEY, instance-state-name, ... */
typedef struct aws_ec2_filter {
	const char *name;
	const char *const *values; /* NULL-terminated */
} aws_ec2_filter;

typedef void (*aws_ec2_ids_cb)(void *ud, const sbx_error *err, char (*ids)[32], size_t n);
typedef void (*aws_ec2_instances_cb)(void *ud, const sbx_error *err, const aws_ec2_instance *list, size_t n);
typedef void (*aws_ec2_done_cb)(void *ud, const sbx_error *err);

/* RunInstances (one instance; IMDSv2 required). */
int aws_ec2_run_instances(aws_client *c, const aws_ec2_launch *l, aws_ec2_ids_cb cb, void *ud, sbx_error *err);
/* DescribeInstances by ids and/or filters, following NextToken pages. */
int aws_ec2_describe_instances(aws_client *c, const char *const *ids, size_t nids, const aws_ec2_filter *filters,
			       size_t nfilters, aws_ec2_instances_cb cb, void *ud, sbx_error *err);
int aws_ec2_terminate_instances(aws_client *c, const char *const *ids, size_t n, aws_ec2_done_cb cb, void *ud,
				sbx_error *err);

/* Parsers, exposed for tests. 0 or -1 with why. */
int aws_ec2_parse_run(const char *xml, size_t n, char (*ids)[32], size_t max, size_t *count, char *why,
		      size_t whylen);
int aws_ec2_parse_describe(const char *xml, size_t n, aws_ec2_instance **list, size_t *count, char *next_token,
			   size_t ntlen, char *why, size_t whylen);

#endif
