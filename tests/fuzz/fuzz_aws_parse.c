/* fuzz_aws_parse.c — the parsers of AWS API answers (host/backends/aws): EC2's
 * RunInstances and DescribeInstances XML, the error document, STS's
 * AssumeRoleWithWebIdentity and AssumeRole XML, and the credential JSON of
 * credential_process, the container/IMDS endpoints and the SSO portal. The first byte picks
 * the parser. Each takes its answer or fails saying why, and never leaves
 * an unterminated string. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/aws/credentials.h"
#include "backends/aws/ec2.h"
#include "backends/aws/xml.h"
#include "fuzz.h"

static int terminated(const char *s, size_t len)
{
	return memchr(s, 0, len) != NULL;
}

static void check_credentials(int rc, const aws_credentials *c, const char *why)
{
	if (rc == 0) {
		FUZZ_ASSERT(terminated(c->access_key_id, sizeof c->access_key_id));
		FUZZ_ASSERT(terminated(c->secret_access_key, sizeof c->secret_access_key));
		FUZZ_ASSERT(terminated(c->session_token, sizeof c->session_token));
		FUZZ_ASSERT(c->access_key_id[0] && c->secret_access_key[0]);
	} else {
		FUZZ_ASSERT(why[0] != 0);
	}
}

static void ec2_run(const char *p, size_t n)
{
	char ids[8][32], why[256] = "";
	size_t count = 99;
	if (aws_ec2_parse_run(p, n, ids, 8, &count, why, sizeof why) == 0) {
		FUZZ_ASSERT(count <= 8);
		for (size_t i = 0; i < count; i++)
			FUZZ_ASSERT(terminated(ids[i], sizeof ids[i]));
	} else {
		FUZZ_ASSERT(why[0] != 0);
	}
}

static void ec2_describe(const char *p, size_t n)
{
	aws_ec2_instance *list = NULL;
	size_t count = 0;
	char next[256], why[256] = "";
	if (aws_ec2_parse_describe(p, n, &list, &count, next, sizeof next, why, sizeof why) == 0) {
		FUZZ_ASSERT(terminated(next, sizeof next));
		for (size_t i = 0; i < count; i++) {
			FUZZ_ASSERT(terminated(list[i].id, sizeof list[i].id));
			FUZZ_ASSERT(terminated(list[i].state, sizeof list[i].state));
			FUZZ_ASSERT(list[i].n_tags <= AWS_EC2_MAX_TAGS);
		}
	} else {
		FUZZ_ASSERT(why[0] != 0);
	}
	free(list);
}

static void xml_error(const char *p, size_t n)
{
	char why[256] = "", code[64], msg[256];
	aws_xml *root = aws_xml_parse(p, n, why, sizeof why);
	if (!root) {
		FUZZ_ASSERT(why[0] != 0);
		return;
	}
	if (aws_xml_error(root, code, sizeof code, msg, sizeof msg) == 1)
		FUZZ_ASSERT(terminated(code, sizeof code) && terminated(msg, sizeof msg));
	aws_xml_free(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	aws_credentials c;
	char why[256] = "";
	switch (data[0] % 8) {
	case 0: ec2_run(p, n); break;
	case 1: ec2_describe(p, n); break;
	case 2: xml_error(p, n); break;
	case 3: check_credentials(aws_parse_sts_xml(p, n, &c, why, sizeof why), &c, why); break;
	case 4: check_credentials(aws_parse_process_json(p, n, &c, why, sizeof why), &c, why); break;
	case 6: check_credentials(aws_parse_assume_role_xml(p, n, &c, why, sizeof why), &c, why); break;
	case 7: check_credentials(aws_parse_sso_json(p, n, &c, why, sizeof why), &c, why); break;
	default: check_credentials(aws_parse_role_json(p, n, &c, why, sizeof why), &c, why); break;
	}
	return 0;
}
