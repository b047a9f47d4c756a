/* test_aws_creds.c — host/backends/aws/credentials.c and xml.c: the source order
 * (environment, assume-role profiles, web identity, shared files with
 * profiles, credential_process, container, IMDS), errors that name the problem
 * (half-set keys, unknown profile, failing or hostile credential_process,
 * nothing found), the parsers of what remote sources answer, and the XML
 * tree's defences (entities, depth, malformed input). Shared files are
 * fixtures written to a temporary directory; the environment is set per
 * test. */
#include "backends/aws/credentials.h"
#include "backends/aws/xml.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char cred_path[128], config_path[128];

static const char *vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
			     "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
			     "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
			     "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
			     "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_DISABLED", "AWS_REGION",
			     "AWS_DEFAULT_REGION", NULL};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

/* A clean environment pointing at this test's (empty) shared files. */
static void reset(void)
{
	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
	unlink(cred_path);
	unlink(config_path);
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
	setenv("AWS_CONFIG_FILE", config_path, 1);
}

static const char *CRED_FILE =
	"# comment\n"
	"[default]\n"
	"aws_access_key_id = AKIDDEFAULT\n"
	"aws_secret_access_key = secretdefault\n"
	"\n"
	"[dev]\n"
	"aws_access_key_id=AKIDDEV\n"
	"aws_secret_access_key=secretdev\n"
	"aws_session_token = tokdev\n"
	"[half]\n"
	"aws_access_key_id=AKIDHALF\n";

static const char *CONFIG_FILE =
	"[default]\n"
	"region = eu-west-2\n"
	"[profile cfg]\n"
	"aws_access_key_id = AKIDCFG\n"
	"aws_secret_access_key = secretcfg\n"
	"s3 =\n"
	"  aws_access_key_id = NESTED_IGNORED\n"
	"[profile proc]\n"
	"credential_process = printf '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": \"s\", "
	"\"SessionToken\": \"t\", \"Expiration\": \"2030-01-02T03:04:05Z\"}'\n"
	"[profile procfail]\n"
	"credential_process = sh -c 'echo nope >&2; exit 3'\n"
	"[profile procbad]\n"
	"credential_process = echo not json\n"
	"[profile procv2]\n"
	"credential_process = echo '{\"Version\": 2, \"AccessKeyId\": \"A\", \"SecretAccessKey\": \"s\"}'\n"
	"[profile procslow]\n"
	"credential_process = sleep 30\n"
	"[profile procbig]\n"
	"credential_process = head -c 100000 /dev/zero\n"
	"[profile web]\n"
	"web_identity_token_file = /var/run/token\n"
	"role_arn = arn:aws:iam::123456789012:role/web\n";

static int resolve(const aws_creds_opts *o, aws_credentials *c, aws_remote_plan *p, char *why)
{
	return aws_resolve_local(o, c, p, why, 512);
}

static void env_keys_first(void)
{
	reset();
	write_file(cred_path, CRED_FILE);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	setenv("AWS_SESSION_TOKEN", "tokenv", 1);
	aws_credentials c;
	aws_remote_plan p;
	char why[512];
	CHECK(resolve(NULL, &c, &p, why) == 0);
	CHECK(p.kind == AWS_REMOTE_NONE);
	CHECK_EQ_STR(c.access_key_id, "AKIDENV");
	CHECK_EQ_STR(c.session_token, "tokenv");
	CHECK_EQ_STR(c.source, "environment");
	CHECK(c.expiration == 0);
	aws_keys k = aws_creds_keys(&c);
	CHECK_EQ_STR(k.session_token, "tokenv");

	/* A profile given in code wins over the environment. */
	aws_creds_opts o = {.profile = "dev"};
	CHECK(resolve(&o, &c, &p, why) == 0);
	CHECK_EQ_STR(c.access_key_id, "AKIDDEV");
}

static void env_half_set_is_named(void)
{
	reset();
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	aws_credentials c;
	aws_remote_plan p;
	char why[512];
	CHECK(resolve(NULL, &c, &p, why) == -1);
	CHECK(strstr(why, "AWS_SECRET_ACCESS_KEY") != NULL);
}

static void shared_files_and_profiles(void)
{
	reset();
	write_file(cred_path, CRED_FILE);
	write_file(config_path, CONFIG_FILE);
	aws_credentials c;
	aws_remote_plan p;
	char why[512];
	CHECK(resolve(NULL, &c, &p, why) == 0);
	CHECK_EQ_STR(c.access_key_id, "AKIDDEFAULT");
	CHECK_EQ_STR(c.session_token, "");
	CHECK(aws_creds_keys(&c).session_token == NULL);

	setenv("AWS_PROFILE", "dev", 1);
	CHECK(resolve(NULL, &c, &p, why) == 0);
	CHECK_EQ_STR(c.access_key_id, "AKIDDEV");
	CHECK_EQ_STR(c.session_token, "tokdev");
	CHECK_EQ_STR(c.source, "profile dev");

	setenv("AWS_PROFILE", "cfg", 1); /* only in the config file, as [profile cfg] */
	CHECK(resolve(NULL, &c, &p, why) == 0);
	CHECK_EQ_STR(c.access_key_id, "AKIDCFG");

	setenv("AWS_PROFILE", "half", 1);
	CHECK(resolve(NULL, &c, &p, why) == -1);
	CHECK(strstr(why, "aws_secret_access_key") != NULL && strstr(why, "half") != NULL);

	setenv("AWS_PROFILE", "nosuch", 1);
	CHECK(resolve(NULL, &c, &p, why) == -1);
	CHECK(strstr(why, "nosuch") != NULL && strstr(why, cred_path) != NULL);

	char region[64];
	unsetenv("AWS_PROFILE");
	aws_profile_region(NULL, region, sizeof region);
	CHECK_EQ_STR(region, "eu-west-2");
	setenv("AWS_REGION", "ap-south-1", 1);
	aws_profile_region(NULL, region, sizeof region);
	CHECK_EQ_STR(region, "ap-south-1");
}

static void credential_process(void)
{
	reset();
	write_file(config_path, CONFIG_FILE);
	aws_credentials c;
	aws_remote_plan p;
	char why[512];
	aws_creds_opts o = {.profile = "proc"};
	CHECK(resolve(&o, &c, &p, why) == 0);
	CHECK_EQ_STR(c.access_key_id, "AKIDPROC");
	CHECK_EQ_STR(c.session_token, "t");
	CHECK(c.expiration == 1893553445); /* 2030-01-02T03:04:05Z */
	CHECK(!aws_creds_stale(&c, 1893553445 - 301, 300));
	CHECK(aws_creds_stale(&c, 1893553445 - 299, 300));

	o.profile = "procfail";
	CHECK(resolve(&o, &c, &p, why) == -1);
	CHECK(strstr(why, "exit status 3") != NULL);
	o.profile = "procbad";
	CHECK(resolve(&o, &c, &p, why) == -1);
	CHECK(strstr(why, "JSON") != NULL);
	o.profile = "procv2";
	CHECK(resolve(&o, &c, &p, why) == -1);
	CHECK(strstr(why, "Version") != NULL);
	o.profile = "procslow";
	o.process_timeout_s = 1;
	CHECK(resolve(&o, &c, &p, why) == -1);
	CHECK(strstr(why, "1 s limit") != NULL);
	o.profile = "procbig";
	o.process_timeout_s = 30;
	CHECK(resolve(&o, &c, &p, why) == -1);
	CHECK(strstr(why, "more than") != NULL);
}

static void remote_plans(void)
{
	reset();
	write_file(config_path, CONFIG_FILE);
	aws_credentials c;
	aws_remote_plan p;
	char why[512];
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/tmp/tok", 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
	setenv("AWS_ROLE_SESSION_NAME", "sess", 1);
	CHECK(resolve(NULL, &c, &p, why) == 0);
	CHECK(p.kind == AWS_REMOTE_WEB_IDENTITY);
	CHECK_EQ_STR(p.token_file, "/tmp/tok");
	CHECK_EQ_STR(p.role_arn, "arn:aws:iam::1:role/r");
	CHECK_EQ_STR(p.role_session_name, "sess");
	CHECK_EQ_STR(p.sts_region, "eu-west-2");

	reset();
	write_file(config_path, CONFIG_FILE);
	aws_creds_opts o = {.profile = "web"};
	CHECK(resolve(&o, &c, &p, why) == 0);
	CHECK(p.kind == AWS_REMOTE_WEB_IDENTITY);
	CHECK_EQ_STR(p.token_file, "/var/run/token");

	reset();
	setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc", 1);
	CHECK(resolve(NULL, &c, &p, why) == 0);
	CHECK(p.kind == AWS_REMOTE_CONTAINER);
	CHECK_EQ_STR(p.url, "http://169.254.170.2/v2/credentials/abc");

	reset();
	char tokfile[160];
	snprintf(tokfile, sizeof tokfile, "%s/token", dir);
	write_file(tokfile, "  secret-token\n");
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9911/creds", 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokfile, 1);
	CHECK(resolve(NULL, &c, &p, why) == 0);
	CHECK(p.kind == AWS_REMOTE_CONTAINER);
	CHECK_EQ_STR(p.url, "http://127.0.0.1:9911/creds");
	CHECK_EQ_STR(p.auth_token, "secret-token");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/nonexistent/token", 1);
	CHECK(resolve(NULL, &c, &p, why) == -1);
	CHECK(strstr(why, "/nonexistent/token") != NULL);
	unlink(tokfile);

	reset();
	CHECK(resolve(NULL, &c, &p, why) == 0);
	CHECK(p.kind == AWS_REMOTE_IMDS);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	CHECK(resolve(NULL, &c, &p, why) == -1);
	CHECK(strstr(why, "AWS_ACCESS_KEY_ID") != NULL && strstr(why, config_path) != NULL);
}

/* Assume-role profiles: the plan, a source profile's keys winning over its
 * role_arn, credential_source as the only source, and the settings refused
 * with a reason. */
static void assume_role_plans(void)
{
	reset();
	write_file(cred_path, "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = s\n"
			      "[both]\naws_access_key_id = AKIDBOTH\naws_secret_access_key = s\n");
	write_file(config_path, "[profile r]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\n"
				"external_id = e1\nduration_seconds = 3600\n"
				"[profile both]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = base\n"
				"[profile self]\nrole_arn = arn:aws:iam::1:role/s\nsource_profile = self\n"
				"[profile env]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = Environment\n"
				"[profile badsrc]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Laptop\n"
				"[profile nosrc]\nrole_arn = arn:aws:iam::1:role/x\n"
				"[profile baddur]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n"
				"duration_seconds = 60\n");
	aws_credentials c;
	aws_remote_plan p;
	char why[512];
	aws_creds_opts o = {.profile = "r"};
	CHECK(resolve(&o, &c, &p, why) == 0);
	CHECK(p.kind == AWS_REMOTE_ASSUME_ROLE);
	CHECK_EQ_STR(p.role_arn, "arn:aws:iam::1:role/r");
	CHECK_EQ_STR(p.source_profile, "base");
	CHECK_EQ_STR(p.external_id, "e1");
	CHECK(p.duration_s == 3600);
	CHECK(strncmp(p.role_session_name, "sbx-", 4) == 0);

	/* a profile with keys and role_arn: the role at the top, the keys as a source */
	o = (aws_creds_opts){.profile = "both"};
	CHECK(resolve(&o, &c, &p, why) == 0 && p.kind == AWS_REMOTE_ASSUME_ROLE);
	o.source_profile = 1;
	CHECK(resolve(&o, &c, &p, why) == 0 && p.kind == AWS_REMOTE_NONE);
	CHECK_EQ_STR(c.access_key_id, "AKIDBOTH");

	/* source_profile = itself without keys of its own */
	o = (aws_creds_opts){.profile = "self"};
	CHECK(resolve(&o, &c, &p, why) == -1 && strstr(why, "names itself") != NULL);

	/* credential_source = Environment: only the environment, named when empty */
	o = (aws_creds_opts){.profile = "env"};
	CHECK(resolve(&o, &c, &p, why) == 0 && p.kind == AWS_REMOTE_ASSUME_ROLE);
	CHECK_EQ_STR(p.credential_source, "Environment");
	o = (aws_creds_opts){.credential_source = "Environment"};
	CHECK(resolve(&o, &c, &p, why) == -1 && strstr(why, "AWS_ACCESS_KEY_ID") != NULL);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
	CHECK(resolve(&o, &c, &p, why) == 0 && p.kind == AWS_REMOTE_NONE);
	CHECK_EQ_STR(c.access_key_id, "AKIDENV");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");

	o = (aws_creds_opts){.profile = "badsrc"};
	CHECK(resolve(&o, &c, &p, why) == -1 && strstr(why, "'Laptop'") != NULL);
	o = (aws_creds_opts){.profile = "nosrc"};
	CHECK(resolve(&o, &c, &p, why) == -1 && strstr(why, "no source_profile") != NULL);
	o = (aws_creds_opts){.profile = "baddur"};
	CHECK(resolve(&o, &c, &p, why) == -1 && strstr(why, "900 to 43200") != NULL);
}

static void sso_json(void)
{
	aws_credentials c;
	char why[512];
	const char *ok = "{\"roleCredentials\":{\"accessKeyId\":\"ASIASSO\",\"secretAccessKey\":\"s\","
			 "\"sessionToken\":\"t\",\"expiration\":1893456000000}}";
	CHECK(aws_parse_sso_json(ok, strlen(ok), &c, why, sizeof why) == 0);
	CHECK_EQ_STR(c.access_key_id, "ASIASSO");
	CHECK(c.expiration == 1893456000);
	const char *none = "{\"message\":\"nope\"}";
	CHECK(aws_parse_sso_json(none, strlen(none), &c, why, sizeof why) == -1);
	const char *badexp = "{\"roleCredentials\":{\"accessKeyId\":\"A\",\"secretAccessKey\":\"s\","
			     "\"expiration\":\"soon\"}}";
	CHECK(aws_parse_sso_json(badexp, strlen(badexp), &c, why, sizeof why) == -1);
}

static void role_json(void)
{
	aws_credentials c;
	char why[512];
	const char *ok = "{\"Code\":\"Success\",\"LastUpdated\":\"2026-01-01T00:00:00Z\",\"Type\":\"AWS-HMAC\","
			 "\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s\",\"Token\":\"tok\","
			 "\"Expiration\":\"2026-01-01T06:00:00Z\"}";
	CHECK(aws_parse_role_json(ok, strlen(ok), &c, why, sizeof why) == 0);
	CHECK_EQ_STR(c.access_key_id, "ASIA1");
	CHECK_EQ_STR(c.session_token, "tok");
	CHECK(c.expiration == 1767247200);
	const char *failed = "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"no role\"}";
	CHECK(aws_parse_role_json(failed, strlen(failed), &c, why, sizeof why) == -1);
	CHECK(strstr(why, "AssumeRoleUnauthorizedAccess") != NULL);
	const char *badexp = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"tomorrow\"}";
	CHECK(aws_parse_role_json(badexp, strlen(badexp), &c, why, sizeof why) == -1);
	CHECK(strstr(why, "Expiration") != NULL);
	const char *dup = "{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\",\"SecretAccessKey\":\"s\"}";
	CHECK(aws_parse_role_json(dup, strlen(dup), &c, why, sizeof why) == -1);
	char longkey[400];
	snprintf(longkey, sizeof longkey, "{\"AccessKeyId\":\"%0200d\",\"SecretAccessKey\":\"s\"}", 7);
	CHECK(aws_parse_role_json(longkey, strlen(longkey), &c, why, sizeof why) == -1);
	CHECK(aws_parse_role_json("[1]", 3, &c, why, sizeof why) == -1);
}

static void sts_xml(void)
{
	aws_credentials c;
	char why[512];
	const char *ok =
		"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
		"  <AssumeRoleWithWebIdentityResult>\n"
		"    <Credentials>\n"
		"      <AccessKeyId>ASIAWEB</AccessKeyId>\n"
		"      <SecretAccessKey>websecret</SecretAccessKey>\n"
		"      <SessionToken>webtoken</SessionToken>\n"
		"      <Expiration>2026-11-23T12:00:00.000Z</Expiration>\n"
		"    </Credentials>\n"
		"  </AssumeRoleWithWebIdentityResult>\n"
		"</AssumeRoleWithWebIdentityResponse>\n";
	CHECK(aws_parse_sts_xml(ok, strlen(ok), &c, why, sizeof why) == 0);
	CHECK_EQ_STR(c.access_key_id, "ASIAWEB");
	CHECK_EQ_STR(c.session_token, "webtoken");
	CHECK(c.expiration == 1795435200);
	const char *err = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
			  "<Message>bad token</Message></Error></ErrorResponse>";
	CHECK(aws_parse_sts_xml(err, strlen(err), &c, why, sizeof why) == -1);
	CHECK(strstr(why, "InvalidIdentityToken") != NULL && strstr(why, "bad token") != NULL);
	CHECK(aws_parse_sts_xml("<a><b></a>", 10, &c, why, sizeof why) == -1);
	CHECK(strstr(why, "XML") != NULL);
}

static void xml_defences(void)
{
	char why[256];
	const char *bomb = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">"
			   "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><l>&b;</l>";
	CHECK(aws_xml_parse(bomb, strlen(bomb), why, sizeof why) == NULL);
	CHECK(strstr(why, "entity") != NULL);

	char deep[2000] = "";
	for (int i = 0; i < 100; i++)
		strcat(deep, "<a>");
	CHECK(aws_xml_parse(deep, strlen(deep), why, sizeof why) == NULL);
	CHECK(strstr(why, "deeper") != NULL);

	CHECK(aws_xml_parse("", 0, why, sizeof why) == NULL);
	CHECK(aws_xml_parse("\x00\x01\x02", 3, why, sizeof why) == NULL);

	const char *list = "<r xmlns:x=\"u\"><set><item><id>1</id></item><other/><item><id>2</id></item>"
			   "<item><id>&lt;3&amp;</id></item></set><x:tail> t </x:tail></r>";
	aws_xml *root = aws_xml_parse(list, strlen(list), why, sizeof why);
	CHECK(root != NULL);
	const aws_xml *it = aws_xml_find(root, "set/item");
	char ids[32] = "";
	for (; it; it = aws_xml_next_same(it))
		strcat(ids, aws_xml_text(it, "id"));
	const char *tail = aws_xml_text(root, "tail");
	const char *missing = aws_xml_text(root, "set/item/nope");
	char code[32], msg[32];
	int is_err = aws_xml_error(root, code, sizeof code, msg, sizeof msg);
	char tailcopy[8];
	snprintf(tailcopy, sizeof tailcopy, "%s", tail ? tail : "(null)");
	aws_xml_free(root);
	CHECK_EQ_STR(ids, "12<3&");
	CHECK_EQ_STR(tailcopy, "t");
	CHECK(missing == NULL);
	CHECK(is_err == 0);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/sbx-creds-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(cred_path, sizeof cred_path, "%s/credentials", dir);
	snprintf(config_path, sizeof config_path, "%s/config", dir);
	RUN(env_keys_first);
	RUN(env_half_set_is_named);
	RUN(shared_files_and_profiles);
	RUN(credential_process);
	RUN(remote_plans);
	RUN(assume_role_plans);
	RUN(sso_json);
	RUN(role_json);
	RUN(sts_xml);
	RUN(xml_defences);
	unlink(cred_path);
	unlink(config_path);
	rmdir(dir);
	return test_summary();
}
