/* test_ec2config.c — host/backends/aws/ec2config.c: the Inspect EC2 sandbox's
 * settings (README and schema of the existing provider): required ones
 * named together when missing, AWS_REGION as the region's fallback, code
 * over environment over .env, case-insensitive names, the extra-tags
 * format with its strict single '=' split, the key prefix rule, defaults
 * and timeouts, and malformed values named. */
#include "backends/aws/ec2config.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *names[] = {"REGION", "VPC_ID", "SECURITY_GROUP_ID", "SUBNET_ID", "INSTANCE_PROFILE",
			      "S3_BUCKET", "AMI_ID", "INSTANCE_TYPE", "S3_KEY_PREFIX", "EXTRA_TAGS_STR",
			      "VOLUME_SIZE", "LAUNCH_TIMEOUT", "ONLINE_TIMEOUT", "API_TIMEOUT", "API_RETRIES",
			      "SESSION_TIMEOUT", "TERMINATE_TIMEOUT", NULL};

static void setting(const char *name, const char *value)
{
	char full[96];
	snprintf(full, sizeof full, "INSPECT_EC2_SANDBOX_%s", name);
	if (value)
		setenv(full, value, 1);
	else
		unsetenv(full);
}

static void clear(void)
{
	for (int i = 0; names[i]; i++)
		setting(names[i], NULL);
	unsetenv("AWS_REGION");
	unsetenv("inspect_ec2_sandbox_vpc_id");
}

/* The README's example environment. */
static void readme_env(void)
{
	clear();
	setting("REGION", "eu-west-1");
	setting("VPC_ID", "vpc-123456");
	setting("SECURITY_GROUP_ID", "sg-56781234");
	setting("SUBNET_ID", "subnet-654321");
	setting("INSTANCE_PROFILE", "Ec2SandboxStack-SandboxInstanceProfile123-456");
	setting("S3_BUCKET", "ec2sandboxstack-databucket123-456");
}

static const sbx_ec2_settings no_dotenv = {.dotenv_path = ""};

static void readme_settings_load(void)
{
	readme_env();
	setting("AMI_ID", "ami-123456");
	setting("INSTANCE_TYPE", "t3a.small");
	setting("S3_KEY_PREFIX", "sandbox-comms");
	setting("EXTRA_TAGS_STR", "tagname1=tagvalue1;tagname2=tagvalue2");
	sbx_ec2_config c;
	char why[512] = "";
	int rc = sbx_ec2_config_load(&no_dotenv, &c, why, sizeof why);
	if (rc)
		printf("# %s\n", why);
	CHECK(rc == 0);
	CHECK_EQ_STR(c.region, "eu-west-1");
	CHECK_EQ_STR(c.vpc_id, "vpc-123456");
	CHECK_EQ_STR(c.security_group_id, "sg-56781234");
	CHECK_EQ_STR(c.subnet_id, "subnet-654321");
	CHECK_EQ_STR(c.instance_profile, "Ec2SandboxStack-SandboxInstanceProfile123-456");
	CHECK_EQ_STR(c.s3_bucket, "ec2sandboxstack-databucket123-456");
	CHECK_EQ_STR(c.ami_id, "ami-123456");
	CHECK_EQ_STR(c.instance_type, "t3a.small");
	CHECK_EQ_STR(c.s3_key_prefix, "sandbox-comms");
	CHECK_EQ_INT(c.n_extra_tags, 2);
	CHECK_EQ_STR(c.extra_tags[0].key, "tagname1");
	CHECK_EQ_STR(c.extra_tags[1].value, "tagvalue2");
}

static void defaults(void)
{
	readme_env();
	sbx_ec2_config c;
	char why[512];
	CHECK(sbx_ec2_config_load(&no_dotenv, &c, why, sizeof why) == 0);
	CHECK_EQ_STR(c.ami_id, "");
	CHECK_EQ_STR(c.instance_type, SBX_EC2_DEFAULT_INSTANCE_TYPE);
	CHECK_EQ_STR(c.s3_key_prefix, "");
	CHECK_EQ_INT(c.n_extra_tags, 0);
	CHECK_EQ_INT(c.volume_size_gib, 0);
	CHECK_EQ_INT(c.launch_timeout_s, 300);
	CHECK_EQ_INT(c.online_timeout_s, 600);
	CHECK_EQ_INT(c.api_timeout_s, 30);
	CHECK_EQ_INT(c.api_retries, 8);
	CHECK_EQ_INT(c.session_timeout_s, 30);
	CHECK_EQ_INT(c.terminate_timeout_s, 120);
}

static void missing_are_named_together(void)
{
	clear();
	setting("VPC_ID", "vpc-1");
	setting("S3_BUCKET", "bucket");
	sbx_ec2_config c;
	char why[512];
	CHECK(sbx_ec2_config_load(&no_dotenv, &c, why, sizeof why) == -1);
	CHECK(strstr(why, "INSPECT_EC2_SANDBOX_REGION (or AWS_REGION)") != NULL);
	CHECK(strstr(why, "INSPECT_EC2_SANDBOX_SECURITY_GROUP_ID") != NULL);
	CHECK(strstr(why, "INSPECT_EC2_SANDBOX_SUBNET_ID") != NULL);
	CHECK(strstr(why, "INSPECT_EC2_SANDBOX_INSTANCE_PROFILE") != NULL);
	CHECK(strstr(why, "VPC_ID") == NULL);
	CHECK(strstr(why, "S3_BUCKET") == NULL);

	/* An empty value is as good as missing. */
	readme_env();
	setting("SUBNET_ID", "");
	CHECK(sbx_ec2_config_load(&no_dotenv, &c, why, sizeof why) == -1);
	CHECK(strstr(why, "INSPECT_EC2_SANDBOX_SUBNET_ID") != NULL);
}

static void region_falls_back_to_aws_region(void)
{
	readme_env();
	setting("REGION", NULL);
	setenv("AWS_REGION", "us-west-2", 1);
	sbx_ec2_config c;
	char why[512];
	CHECK(sbx_ec2_config_load(&no_dotenv, &c, why, sizeof why) == 0);
	CHECK_EQ_STR(c.region, "us-west-2");
	setting("REGION", "eu-north-1");
	CHECK(sbx_ec2_config_load(&no_dotenv, &c, why, sizeof why) == 0);
	CHECK_EQ_STR(c.region, "eu-north-1");
}

static void code_wins_then_env_then_dotenv(void)
{
	readme_env();
	setting("VPC_ID", NULL);
	setting("SUBNET_ID", NULL);
	setenv("inspect_ec2_sandbox_vpc_id", "vpc-abc", 1); /* names are case-insensitive */
	char path[] = "/tmp/sbx-dotenv-XXXXXX";
	int fd = mkstemp(path);
	const char *text = "# comment\n"
			   "export INSPECT_EC2_SANDBOX_SUBNET_ID=\"subnet-dd\"\n"
			   "INSPECT_EC2_SANDBOX_VPC_ID=vpc-from-dotenv\n"
			   "INSPECT_EC2_SANDBOX_INSTANCE_TYPE=m5.large # trailing comment\n"
			   "OTHER=1\n";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	sbx_ec2_settings s = {.dotenv_path = path};
	sbx_ec2_config c;
	char why[512] = "";
	int rc = sbx_ec2_config_load(&s, &c, why, sizeof why);
	if (rc)
		printf("# %s\n", why);
	CHECK(rc == 0);
	CHECK_EQ_STR(c.vpc_id, "vpc-abc");      /* environment over .env */
	CHECK_EQ_STR(c.subnet_id, "subnet-dd"); /* .env */
	CHECK_EQ_STR(c.instance_type, "m5.large");

	s.vpc_id = "vpc-c0de";
	s.instance_type = "c7g.xlarge";
	s.extra_tags_str = "a=1";
	sbx_ec2_tag pairs[] = {{"team", "research"}};
	s.extra_tags = pairs;
	s.n_extra_tags = 1;
	s.online_timeout_s = 42;
	s.api_retries_set = 1;
	s.api_retries = 0;
	setting("ONLINE_TIMEOUT", "99");
	setting("API_RETRIES", "3");
	CHECK(sbx_ec2_config_load(&s, &c, why, sizeof why) == 0);
	unlink(path);
	CHECK_EQ_STR(c.vpc_id, "vpc-c0de");
	CHECK_EQ_STR(c.instance_type, "c7g.xlarge");
	CHECK_EQ_INT(c.n_extra_tags, 1);
	CHECK_EQ_STR(c.extra_tags[0].key, "team");
	CHECK_EQ_INT(c.online_timeout_s, 42);
	CHECK_EQ_INT(c.api_retries, 0);
	setting("ONLINE_TIMEOUT", NULL);
	setting("API_RETRIES", NULL);
}

static void extra_tags_format(void)
{
	sbx_ec2_tag t[4];
	size_t n;
	char why[512];
	CHECK(sbx_ec2_parse_tags("team=research;env=dev", t, 4, &n, why, sizeof why) == 0);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_STR(t[1].key, "env");
	CHECK_EQ_STR(t[1].value, "dev");
	CHECK(sbx_ec2_parse_tags("", t, 4, &n, why, sizeof why) == 0 && n == 0);
	CHECK(sbx_ec2_parse_tags(NULL, t, 4, &n, why, sizeof why) == 0 && n == 0);
	CHECK(sbx_ec2_parse_tags("k=", t, 4, &n, why, sizeof why) == 0 && n == 1 && t[0].value[0] == 0);
	CHECK(sbx_ec2_parse_tags("bad-tag-input", t, 4, &n, why, sizeof why) == -1);
	CHECK(strstr(why, "bad-tag-input") != NULL && strstr(why, "key1=value1;key2=value2") != NULL);
	CHECK(sbx_ec2_parse_tags("key=a=b", t, 4, &n, why, sizeof why) == -1);
	CHECK(strstr(why, "more than one") != NULL);
	CHECK(sbx_ec2_parse_tags("a=1;", t, 4, &n, why, sizeof why) == -1);
	CHECK(sbx_ec2_parse_tags("=v", t, 4, &n, why, sizeof why) == -1);
	CHECK(strstr(why, "empty key") != NULL);
	CHECK(sbx_ec2_parse_tags("aws:x=1", t, 4, &n, why, sizeof why) == -1);
	CHECK(sbx_ec2_parse_tags("a=1;b=2;c=3;d=4;e=5", t, 4, &n, why, sizeof why) == -1);
	char longkey[300];
	memset(longkey, 'k', 200);
	strcpy(longkey + 200, "=v");
	CHECK(sbx_ec2_parse_tags(longkey, t, 4, &n, why, sizeof why) == -1);
	CHECK(strstr(why, "too long") != NULL);
}

static void malformed_are_named(void)
{
	sbx_ec2_config c;
	char why[512];
	struct {
		const char *name, *value, *expect;
	} cases[] = {
		{"VPC_ID", "my-vpc", "VPC_ID 'my-vpc'"},
		{"SECURITY_GROUP_ID", "sg-XYZ", "SECURITY_GROUP_ID 'sg-XYZ'"},
		{"SUBNET_ID", "subnet-", "SUBNET_ID 'subnet-'"},
		{"INSTANCE_PROFILE", "arn:aws:iam::1:instance-profile/x", "not an instance profile name"},
		{"S3_BUCKET", "Bad_Bucket", "S3_BUCKET 'Bad_Bucket'"},
		{"AMI_ID", "ubuntu", "AMI_ID 'ubuntu'"},
		{"INSTANCE_TYPE", "large", "INSTANCE_TYPE 'large'"},
		{"S3_KEY_PREFIX", "/abs", "must not start with a '/'"},
		{"EXTRA_TAGS_STR", "x", "key1=value1"},
		{"REGION", "eu west", "not an AWS region"},
		{"ONLINE_TIMEOUT", "ten", "INSPECT_EC2_SANDBOX_ONLINE_TIMEOUT is 'ten'"},
		{"API_TIMEOUT", "0", "INSPECT_EC2_SANDBOX_API_TIMEOUT"},
		{"API_RETRIES", "-1", "INSPECT_EC2_SANDBOX_API_RETRIES"},
		{"VOLUME_SIZE", "8x", "VOLUME_SIZE '8x'"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		readme_env();
		setting(cases[i].name, cases[i].value);
		int rc = sbx_ec2_config_load(&no_dotenv, &c, why, sizeof why);
		if (rc != -1 || !strstr(why, cases[i].expect))
			printf("# %s=%s: rc %d, %s\n", cases[i].name, cases[i].value, rc, rc ? why : "");
		CHECK(rc == -1);
		CHECK(strstr(why, cases[i].expect) != NULL);
	}
	readme_env();
	char big[600];
	memset(big, 'p', 599);
	big[599] = 0;
	setting("S3_KEY_PREFIX", big);
	CHECK(sbx_ec2_config_load(&no_dotenv, &c, why, sizeof why) == -1);
	CHECK(strstr(why, "INSPECT_EC2_SANDBOX_S3_KEY_PREFIX is 599 characters") != NULL);
}

int main(void)
{
	RUN(readme_settings_load);
	RUN(defaults);
	RUN(missing_are_named_together);
	RUN(region_falls_back_to_aws_region);
	RUN(code_wins_then_env_then_dotenv);
	RUN(extra_tags_format);
	RUN(malformed_are_named);
	return test_summary();
}
