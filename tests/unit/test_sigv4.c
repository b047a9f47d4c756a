/* test_sigv4.c — host/backends/aws/sigv4.c against AWS's published SigV4 test suite
 * (tests/fixtures/sigv4/, one test per vector: the Authorization header,
 * and the canonical request and string to sign where the suite publishes
 * them), the S3 API reference's header and presigned examples, and bad
 * input (no Host, no keys, line breaks in values, bad escapes). */
#include "backends/aws/sigv4.h"
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/sigv4/"
#define SUITE_TIME 1440938160 /* 20150830T123600Z */

static const aws_sign_ctx suite_ctx = {
	.region = "us-east-1",
	.service = "service",
	.keys = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL},
	.now = SUITE_TIME,
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	size_t got = fread(s, 1, (size_t)n, f);
	s[got] = 0;
	fclose(f);
	return s;
}

/* A parsed .req file: "METHOD PATH[?QUERY] HTTP/1.1", "Name:value" lines,
 * a blank line, the body. Pointers into the file's text. */
typedef struct vreq {
	char *text;
	const char *method, *path, *query, *body;
	aws_header h[16];
	size_t nh;
} vreq;

static int parse_req(vreq *r, char *text)
{
	memset(r, 0, sizeof *r);
	r->text = text;
	char *eol = strchr(text, '\n');
	if (eol)
		*eol = 0;
	char *sp = strchr(text, ' ');
	char *proto = strstr(text, " HTTP/1.1");
	if (!sp || !proto)
		return -1;
	*sp = 0;
	*proto = 0;
	r->method = text;
	r->path = sp + 1;
	char *q = strchr(sp + 1, '?');
	if (q) {
		*q = 0;
		r->query = q + 1;
	}
	r->body = "";
	char *line = eol ? eol + 1 : NULL;
	while (line && *line) {
		char *next = strchr(line, '\n');
		if (next)
			*next = 0;
		if (*line == 0) {
			r->body = next ? next + 1 : "";
			break;
		}
		char *colon = strchr(line, ':');
		if (!colon || r->nh == 16)
			return -1;
		*colon = 0;
		r->h[r->nh++] = (aws_header){line, colon + 1};
		line = next ? next + 1 : NULL;
		if (line && *line == '\n') { /* blank line: the body follows */
			r->body = line + 1;
			break;
		}
	}
	return 0;
}

static char vector_name[128];

static void run_vector(void)
{
	char path[256];
	snprintf(path, sizeof path, FIXTURES "%s.req", vector_name);
	char *req_text = slurp(path);
	snprintf(path, sizeof path, FIXTURES "%s.authz", vector_name);
	char *authz = slurp(path);
	snprintf(path, sizeof path, FIXTURES "%s.creq", vector_name);
	char *creq = slurp(path);
	snprintf(path, sizeof path, FIXTURES "%s.sts", vector_name);
	char *sts = slurp(path);

	vreq r;
	int parsed = req_text && authz ? parse_req(&r, req_text) : -1;
	aws_signed out;
	char why[256] = "";
	int rc = -1;
	if (parsed == 0) {
		aws_sign_req sr = {r.method, r.path, r.query, r.h, r.nh, r.body, strlen(r.body), NULL};
		rc = aws_sigv4_sign(&suite_ctx, &sr, &out, why, sizeof why);
	}
	int ok_auth = rc == 0 && strcmp(out.authorization, authz) == 0;
	int ok_creq = rc == 0 && (!creq || strcmp(aws_buf_str(&out.canonical_request), creq) == 0);
	int ok_sts = rc == 0 && (!sts || strcmp(aws_buf_str(&out.string_to_sign), sts) == 0);
	char got[600];
	snprintf(got, sizeof got, "%s", rc == 0 ? out.authorization : why);
	if (rc == 0) {
		if (!ok_creq || !ok_sts)
			printf("# canonical request:\n%s\n# string to sign:\n%s\n",
			       aws_buf_str(&out.canonical_request), aws_buf_str(&out.string_to_sign));
		aws_signed_free(&out);
	}
	free(req_text);
	free(creq);
	free(sts);
	if (!ok_auth) {
		printf("# want %s\n# got  %s\n", authz ? authz : "(no .authz)", got);
		free(authz);
		CHECK(parsed == 0);
		CHECK(rc == 0);
		CHECK(ok_auth);
	}
	free(authz);
	CHECK(ok_creq);
	CHECK(ok_sts);
}

static int run_suite(void)
{
	DIR *d = opendir(FIXTURES);
	if (!d)
		return 0;
	char *names[64];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 64) {
		size_t l = strlen(e->d_name);
		if (l > 4 && strcmp(e->d_name + l - 4, ".req") == 0)
			names[n++] = strndup(e->d_name, l - 4);
	}
	closedir(d);
	static char tnames[64][160]; /* test names outlive the run */
	for (int i = 0; i < n; i++) {
		snprintf(vector_name, sizeof vector_name, "%s", names[i]);
		snprintf(tnames[i], sizeof tnames[i], "suite_%s", names[i]);
		test_run(tnames[i], run_vector);
		free(names[i]);
	}
	return n;
}

static void suite_present(void)
{
	DIR *d = opendir(FIXTURES);
	CHECK(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".req") != NULL;
	closedir(d);
	CHECK(n >= 20);
}

/* S3 API reference, sig-v4-header-based-auth: GET /test.txt with a Range. */
static void s3_get_object_example(void)
{
	aws_sign_ctx ctx = {"us-east-1", "s3", {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL},
			    1369353600 /* 20130524T000000Z */};
	aws_header h[] = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}};
	aws_sign_req r = {"GET", "/test.txt", NULL, h, 2, NULL, 0, NULL};
	aws_signed out;
	char why[256];
	CHECK(aws_sigv4_sign(&ctx, &r, &out, why, sizeof why) == 0);
	int add_sha = out.add_content_sha, add_date = out.add_date;
	char auth[512];
	snprintf(auth, sizeof auth, "%s", out.authorization);
	aws_signed_free(&out);
	CHECK(add_sha && add_date);
	const char *want = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
			   "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
			   "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
	CHECK_EQ_STR(auth, want);
}

/* S3 API reference, sigv4-query-string-auth: presigned GET /test.txt. */
static void s3_presign_example(void)
{
	aws_sign_ctx ctx = {"us-east-1", "s3", {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL},
			    1369353600};
	sbx_buf q = {0};
	char why[256];
	CHECK(aws_sigv4_presign(&ctx, "GET", "examplebucket.s3.amazonaws.com", "/test.txt", NULL, 86400, &q, why,
				sizeof why) == 0);
	char got[1024];
	snprintf(got, sizeof got, "%s", aws_buf_str(&q));
	sbx_buf_free(&q);
	const char *want = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
			  "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
			  "X-Amz-SignedHeaders=host&X-Amz-Signature="
			  "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
	CHECK_EQ_STR(got, want);
}

/* A session token is signed as a header, and as a query parameter when
 * presigning; a different token gives a different signature. */
static void session_token_is_signed(void)
{
	aws_sign_ctx ctx = suite_ctx;
	ctx.keys.session_token = "TOKEN1";
	aws_header h[] = {{"Host", "example.amazonaws.com"}};
	aws_sign_req r = {"POST", "/", NULL, h, 1, "x", 1, NULL};
	aws_signed a, b;
	char why[256];
	CHECK(aws_sigv4_sign(&ctx, &r, &a, why, sizeof why) == 0);
	ctx.keys.session_token = "TOKEN2";
	CHECK(aws_sigv4_sign(&ctx, &r, &b, why, sizeof why) == 0);
	int differ = strcmp(a.authorization, b.authorization) != 0;
	int signed_tok = strstr(a.authorization, "SignedHeaders=host;x-amz-date;x-amz-security-token,") != NULL;
	int adds = a.add_token && a.add_date && !a.add_content_sha;
	aws_signed_free(&a);
	aws_signed_free(&b);
	CHECK(differ);
	CHECK(signed_tok);
	CHECK(adds);

	sbx_buf q = {0};
	CHECK(aws_sigv4_presign(&ctx, "GET", "b.s3.amazonaws.com", "/k", "x-id=GetObject", 60, &q, why,
				sizeof why) == 0);
	int has = strstr(aws_buf_str(&q), "X-Amz-Security-Token=TOKEN2&") != NULL &&
		  strstr(aws_buf_str(&q), "x-id=GetObject") != NULL;
	sbx_buf_free(&q);
	CHECK(has);
}

static void percent_encoding(void)
{
	sbx_buf b = {0};
	CHECK(aws_uri_encode(&b, "a b/c~+*\xe1\x88\xb4", 11, 1) == 0);
	char enc[128];
	snprintf(enc, sizeof enc, "%s", aws_buf_str(&b));
	sbx_buf_clear(&b);
	CHECK(aws_uri_encode(&b, "a/b", 3, 0) == 0);
	char enc2[32];
	snprintf(enc2, sizeof enc2, "%s", aws_buf_str(&b));
	sbx_buf_clear(&b);
	int bad = aws_uri_decode(&b, "%4", 2);
	sbx_buf_clear(&b);
	int bad2 = aws_uri_decode(&b, "%zz", 3);
	sbx_buf_clear(&b);
	int good = aws_uri_decode(&b, "%41%2f+", 7);
	char dec[32];
	snprintf(dec, sizeof dec, "%s", aws_buf_str(&b));
	sbx_buf_free(&b);
	CHECK_EQ_STR(enc, "a%20b/c~%2B%2A%E1%88%B4");
	CHECK_EQ_STR(enc2, "a%2Fb");
	CHECK(bad == -1 && bad2 == -1 && good == 0);
	CHECK_EQ_STR(dec, "A/+");
}

static void time_formats(void)
{
	char d[17], iso[21];
	aws_amz_date(SUITE_TIME, d);
	aws_iso8601(SUITE_TIME, iso);
	CHECK_EQ_STR(d, "20150830T123600Z");
	CHECK_EQ_STR(iso, "2015-08-30T12:36:00Z");
	time_t t = 0;
	CHECK(aws_parse_iso8601("2015-08-30T12:36:00Z", &t) == 0 && t == SUITE_TIME);
	CHECK(aws_parse_iso8601("2015-08-30T12:36:00.123Z", &t) == 0 && t == SUITE_TIME);
	CHECK(aws_parse_iso8601("2015-08-30T12:36:00+00:00", &t) == 0 && t == SUITE_TIME);
	CHECK(aws_parse_iso8601("2015-08-30 12:36:00Z", &t) == -1);
	CHECK(aws_parse_iso8601("2015-13-30T12:36:00Z", &t) == -1);
	CHECK(aws_parse_iso8601("2015-08-30T12:36:00+02:00", &t) == -1);
	CHECK(aws_parse_iso8601("", &t) == -1);
}

static void bad_requests_are_named(void)
{
	char why[256];
	aws_signed out;
	aws_header nohost[] = {{"X-Foo", "1"}};
	aws_sign_req r = {"GET", "/", NULL, nohost, 1, NULL, 0, NULL};
	CHECK(aws_sigv4_sign(&suite_ctx, &r, &out, why, sizeof why) == -1);
	aws_signed_free(&out);
	CHECK(strstr(why, "Host") != NULL);

	aws_header crlf[] = {{"Host", "h"}, {"X-Evil", "a\r\nX-Injected: 1"}};
	r.headers = crlf;
	r.nheaders = 2;
	CHECK(aws_sigv4_sign(&suite_ctx, &r, &out, why, sizeof why) == -1);
	aws_signed_free(&out);
	CHECK(strstr(why, "line break") != NULL);

	aws_header badname[] = {{"Host", "h"}, {"X Y", "1"}};
	r.headers = badname;
	CHECK(aws_sigv4_sign(&suite_ctx, &r, &out, why, sizeof why) == -1);
	aws_signed_free(&out);
	CHECK(strstr(why, "X Y") != NULL);

	aws_header ok[] = {{"Host", "h"}};
	r.headers = ok;
	r.nheaders = 1;
	r.query = "a=%zz";
	CHECK(aws_sigv4_sign(&suite_ctx, &r, &out, why, sizeof why) == -1);
	aws_signed_free(&out);
	CHECK(strstr(why, "escape") != NULL);

	r.query = NULL;
	aws_sign_ctx nokeys = suite_ctx;
	nokeys.keys.secret_access_key = "";
	CHECK(aws_sigv4_sign(&nokeys, &r, &out, why, sizeof why) == -1);
	aws_signed_free(&out);
	CHECK(strstr(why, "AWS_ACCESS_KEY_ID") != NULL);

	aws_sign_ctx badregion = suite_ctx;
	badregion.region = "us-east-1/../x";
	CHECK(aws_sigv4_sign(&badregion, &r, &out, why, sizeof why) == -1);
	aws_signed_free(&out);
	CHECK(strstr(why, "region") != NULL);

	sbx_buf q = {0};
	CHECK(aws_sigv4_presign(&suite_ctx, "GET", "h", "/", NULL, 0, &q, why, sizeof why) == -1);
	CHECK(aws_sigv4_presign(&suite_ctx, "GET", "h", "/", NULL, 604801, &q, why, sizeof why) == -1);
	sbx_buf_free(&q);
	CHECK(strstr(why, "604800") != NULL);
}

int main(void)
{
	RUN(suite_present);
	run_suite();
	RUN(s3_get_object_example);
	RUN(s3_presign_example);
	RUN(session_token_is_signed);
	RUN(percent_encoding);
	RUN(time_formats);
	RUN(bad_requests_are_named);
	return test_summary();
}
