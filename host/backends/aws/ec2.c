/* ec2.c — RunInstances, DescribeInstances and TerminateInstances over the
 * EC2 Query API (see ec2.h). Requests are form-encoded POSTs; answers are
 * read from the XML tree, never by string search. */
#include "backends/aws/ec2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/aws/text.h"
#include "backends/aws/xml.h"

#define MAX_LAUNCH 16

static void set_err(sbx_error *e, sbx_status st, const char *msg, const char *detail)
{
	e->status = st;
	e->err_no = st == SBX_E_INVALID ? EINVAL : EPROTO;
	snprintf(e->code, sizeof e->code, "%s", st == SBX_E_INVALID ? "invalid" : "aws_response");
	snprintf(e->message, sizeof e->message, "%s%s%.400s", msg, detail ? ": " : "", detail ? detail : "");
}

static aws_call *start(aws_client *c, const char *op, sbx_buf *form, aws_done_cb cb, void *ud, sbx_error *err)
{
	aws_request rq = {.service = "ec2", .operation = op, .method = "POST", .path = "/",
			  .content_type = "application/x-www-form-urlencoded; charset=utf-8",
			  .body = form->data, .body_len = sbx_buf_size(form)};
	return aws_call_start(c, &rq, cb, ud, err);
}

static int form_begin(sbx_buf *form, const char *action)
{
	return aws_form_add(form, "Action", action) | aws_form_add(form, "Version", AWS_EC2_API_VERSION);
}

/* ---------------------------------------------------------- RunInstances */

typedef struct run_ctx {
	aws_ec2_ids_cb cb;
	void *ud;
} run_ctx;

int aws_ec2_parse_run(const char *xml, size_t n, char (*ids)[32], size_t max, size_t *count, char *why,
		      size_t whylen)
{
	*count = 0;
	aws_xml *root = aws_xml_parse(xml, n, why, whylen);
	if (!root)
		return -1;
	for (const aws_xml *it = aws_xml_find(root, "instancesSet/item"); it; it = aws_xml_next_same(it)) {
		const char *id = aws_xml_text(it, "instanceId");
		if (!id || !*id || strlen(id) >= 32 || *count == max)
			continue;
		snprintf(ids[(*count)++], 32, "%s", id);
	}
	aws_xml_free(root);
	if (*count == 0) {
		snprintf(why, whylen, "RunInstances answered without an instance id");
		return -1;
	}
	return 0;
}

static void run_done(void *ud, aws_response *r)
{
	run_ctx *ctx = ud;
	char ids[MAX_LAUNCH][32];
	size_t n = 0;
	if (r->error.status != SBX_OK) {
		ctx->cb(ctx->ud, &r->error, ids, 0);
	} else {
		char why[256];
		sbx_error e = {0};
		if (aws_ec2_parse_run((const char *)r->body, r->body_len, ids, MAX_LAUNCH, &n, why, sizeof why) < 0)
			set_err(&e, SBX_E_REMOTE, "EC2 RunInstances: unreadable answer", why);
		ctx->cb(ctx->ud, e.status == SBX_OK ? NULL : &e, ids, n);
	}
	free(ctx);
}

static int add_tags(sbx_buf *f, int spec, const char *type, const sbx_ec2_tag *tags, size_t n)
{
	char k[96];
	int rc = 0;
	snprintf(k, sizeof k, "TagSpecification.%d.ResourceType", spec);
	rc |= aws_form_add(f, k, type);
	for (size_t i = 0; i < n; i++) {
		snprintf(k, sizeof k, "TagSpecification.%d.Tag.%zu.Key", spec, i + 1);
		rc |= aws_form_add(f, k, tags[i].key);
		snprintf(k, sizeof k, "TagSpecification.%d.Tag.%zu.Value", spec, i + 1);
		rc |= aws_form_add(f, k, tags[i].value);
	}
	return rc;
}

int aws_ec2_run_instances(aws_client *c, const aws_ec2_launch *l, aws_ec2_ids_cb cb, void *ud, sbx_error *err)
{
	if (!l->image_id || !*l->image_id || !l->instance_type || !l->subnet_id || !l->security_group_id) {
		set_err(err, SBX_E_INVALID, "EC2 RunInstances needs an AMI, an instance type, a subnet and a security group",
			NULL);
		return -1;
	}
	if (l->n_tags > AWS_EC2_MAX_TAGS) {
		set_err(err, SBX_E_INVALID, "EC2 RunInstances: more than 50 tags", NULL);
		return -1;
	}
	sbx_buf f = {0};
	int rc = form_begin(&f, "RunInstances");
	rc |= aws_form_add(&f, "ImageId", l->image_id);
	rc |= aws_form_add(&f, "InstanceType", l->instance_type);
	rc |= aws_form_add(&f, "MinCount", "1");
	rc |= aws_form_add(&f, "MaxCount", "1");
	rc |= aws_form_add(&f, "SubnetId", l->subnet_id);
	rc |= aws_form_add(&f, "SecurityGroupId.1", l->security_group_id);
	if (l->instance_profile && *l->instance_profile)
		rc |= aws_form_add(&f, "IamInstanceProfile.Name", l->instance_profile);
	rc |= aws_form_add(&f, "MetadataOptions.HttpTokens", "required");
	rc |= aws_form_add(&f, "MetadataOptions.HttpEndpoint", "enabled");
	rc |= aws_form_add(&f, "InstanceInitiatedShutdownBehavior", "terminate");
	if (l->client_token && *l->client_token)
		rc |= aws_form_add(&f, "ClientToken", l->client_token);
	if (l->user_data_len) {
		sbx_buf b64 = {0};
		rc |= aws_base64(&b64, l->user_data, l->user_data_len);
		rc |= aws_form_add(&f, "UserData", aws_buf_str(&b64));
		sbx_buf_free(&b64);
	}
	if (l->volume_size_gib) {
		rc |= aws_form_add(&f, "BlockDeviceMapping.1.DeviceName",
				   l->root_device_name ? l->root_device_name : "/dev/sda1");
		rc |= aws_form_addf(&f, "BlockDeviceMapping.1.Ebs.VolumeSize", "%u", l->volume_size_gib);
		rc |= aws_form_add(&f, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
	}
	if (l->n_tags) {
		rc |= add_tags(&f, 1, "instance", l->tags, l->n_tags);
		rc |= add_tags(&f, 2, "volume", l->tags, l->n_tags);
	}
	run_ctx *ctx = malloc(sizeof *ctx);
	if (rc || !ctx) {
		free(ctx);
		sbx_buf_free(&f);
		set_err(err, SBX_E_LOCAL, "out of memory", NULL);
		return -1;
	}
	*ctx = (run_ctx){cb, ud};
	aws_call *call = start(c, "RunInstances", &f, run_done, ctx, err);
	sbx_buf_free(&f);
	if (!call)
		free(ctx);
	return call ? 0 : -1;
}

/* ------------------------------------------------------ DescribeInstances */

static void copy_text(char *dst, size_t cap, const aws_xml *node, const char *path)
{
	const char *t = aws_xml_text(node, path);
	snprintf(dst, cap, "%s", t ? t : "");
}

int aws_ec2_parse_describe(const char *xml, size_t n, aws_ec2_instance **list, size_t *count, char *next_token,
			   size_t ntlen, char *why, size_t whylen)
{
	aws_xml *root = aws_xml_parse(xml, n, why, whylen);
	if (!root)
		return -1;
	if (strcmp(root->name, "DescribeInstancesResponse") != 0) {
		snprintf(why, whylen, "expected a DescribeInstancesResponse, got <%.40s>", root->name);
		aws_xml_free(root);
		return -1;
	}
	for (const aws_xml *r = aws_xml_find(root, "reservationSet/item"); r; r = aws_xml_next_same(r)) {
		for (const aws_xml *it = aws_xml_find(r, "instancesSet/item"); it; it = aws_xml_next_same(it)) {
			aws_ec2_instance *grown = realloc(*list, (*count + 1) * sizeof **list);
			if (!grown) {
				snprintf(why, whylen, "out of memory");
				aws_xml_free(root);
				return -1;
			}
			*list = grown;
			aws_ec2_instance *in = &(*list)[(*count)++];
			memset(in, 0, sizeof *in);
			copy_text(in->id, sizeof in->id, it, "instanceId");
			copy_text(in->state, sizeof in->state, it, "instanceState/name");
			copy_text(in->private_ip, sizeof in->private_ip, it, "privateIpAddress");
			copy_text(in->image_id, sizeof in->image_id, it, "imageId");
			copy_text(in->instance_type, sizeof in->instance_type, it, "instanceType");
			copy_text(in->http_tokens, sizeof in->http_tokens, it, "metadataOptions/httpTokens");
			for (const aws_xml *t = aws_xml_find(it, "tagSet/item"); t && in->n_tags < AWS_EC2_MAX_TAGS;
			     t = aws_xml_next_same(t)) {
				copy_text(in->tags[in->n_tags].key, sizeof in->tags[0].key, t, "key");
				copy_text(in->tags[in->n_tags].value, sizeof in->tags[0].value, t, "value");
				in->n_tags++;
			}
		}
	}
	copy_text(next_token, ntlen, root, "nextToken");
	aws_xml_free(root);
	return 0;
}

typedef struct describe_ctx {
	aws_client *c;
	sbx_buf form;      /* the request without NextToken */
	aws_ec2_instance *list;
	size_t n;
	unsigned pages;
	aws_ec2_instances_cb cb;
	void *ud;
} describe_ctx;

static void describe_finish(describe_ctx *d, const sbx_error *e)
{
	d->cb(d->ud, e, d->list, e ? 0 : d->n);
	free(d->list);
	sbx_buf_free(&d->form);
	free(d);
}

static void describe_done(void *ud, aws_response *r);

static int describe_page(describe_ctx *d, const char *next_token, sbx_error *err)
{
	sbx_buf f = {0};
	int rc = aws_buf_putn(&f, (const char *)sbx_buf_head(&d->form), sbx_buf_size(&d->form));
	if (next_token && *next_token)
		rc |= aws_form_add(&f, "NextToken", next_token);
	aws_call *call = rc ? NULL : start(d->c, "DescribeInstances", &f, describe_done, d, err);
	sbx_buf_free(&f);
	return call ? 0 : -1;
}

static void describe_done(void *ud, aws_response *r)
{
	describe_ctx *d = ud;
	if (r->error.status != SBX_OK) {
		describe_finish(d, &r->error);
		return;
	}
	char next[2048], why[256];
	sbx_error e = {0};
	if (aws_ec2_parse_describe((const char *)r->body, r->body_len, &d->list, &d->n, next, sizeof next, why,
				   sizeof why) < 0) {
		set_err(&e, SBX_E_REMOTE, "EC2 DescribeInstances: unreadable answer", why);
		describe_finish(d, &e);
		return;
	}
	if (next[0] && ++d->pages < 1000) {
		if (describe_page(d, next, &e) < 0)
			describe_finish(d, &e);
		return;
	}
	describe_finish(d, NULL);
}

int aws_ec2_describe_instances(aws_client *c, const char *const *ids, size_t nids, const aws_ec2_filter *filters,
			       size_t nfilters, aws_ec2_instances_cb cb, void *ud, sbx_error *err)
{
	describe_ctx *d = calloc(1, sizeof *d);
	if (!d) {
		set_err(err, SBX_E_LOCAL, "out of memory", NULL);
		return -1;
	}
	d->c = c;
	d->cb = cb;
	d->ud = ud;
	int rc = form_begin(&d->form, "DescribeInstances");
	char k[96];
	for (size_t i = 0; i < nids; i++) {
		snprintf(k, sizeof k, "InstanceId.%zu", i + 1);
		rc |= aws_form_add(&d->form, k, ids[i]);
	}
	for (size_t i = 0; i < nfilters; i++) {
		snprintf(k, sizeof k, "Filter.%zu.Name", i + 1);
		rc |= aws_form_add(&d->form, k, filters[i].name);
		for (size_t v = 0; filters[i].values && filters[i].values[v]; v++) {
			snprintf(k, sizeof k, "Filter.%zu.Value.%zu", i + 1, v + 1);
			rc |= aws_form_add(&d->form, k, filters[i].values[v]);
		}
	}
	if (rc) {
		sbx_buf_free(&d->form);
		free(d);
		set_err(err, SBX_E_LOCAL, "out of memory", NULL);
		return -1;
	}
	if (describe_page(d, NULL, err) < 0) {
		sbx_buf_free(&d->form);
		free(d);
		return -1;
	}
	return 0;
}

/* --------------------------------------------------- TerminateInstances */

typedef struct done_ctx {
	aws_ec2_done_cb cb;
	void *ud;
} done_ctx;

static void terminate_done(void *ud, aws_response *r)
{
	done_ctx *d = ud;
	d->cb(d->ud, r->error.status == SBX_OK ? NULL : &r->error);
	free(d);
}

int aws_ec2_terminate_instances(aws_client *c, const char *const *ids, size_t n, aws_ec2_done_cb cb, void *ud,
				sbx_error *err)
{
	if (n == 0) {
		set_err(err, SBX_E_INVALID, "EC2 TerminateInstances: no instance ids", NULL);
		return -1;
	}
	sbx_buf f = {0};
	int rc = form_begin(&f, "TerminateInstances");
	char k[64];
	for (size_t i = 0; i < n; i++) {
		snprintf(k, sizeof k, "InstanceId.%zu", i + 1);
		rc |= aws_form_add(&f, k, ids[i]);
	}
	done_ctx *d = malloc(sizeof *d);
	if (rc || !d) {
		free(d);
		sbx_buf_free(&f);
		set_err(err, SBX_E_LOCAL, "out of memory", NULL);
		return -1;
	}
	*d = (done_ctx){cb, ud};
	aws_call *call = start(c, "TerminateInstances", &f, terminate_done, d, err);
	sbx_buf_free(&f);
	if (!call)
		free(d);
	return call ? 0 : -1;
}
