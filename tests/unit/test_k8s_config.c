/* test_k8s_config.c — host/backends/k8s from C: ExecCredential parsing (times,
 * mismatches), the token file re-read, and hostile YAML (alias bombs,
 * merge-key cycles, every truncation of the fixtures) given to the compose
 * translator and the kubeconfig loader. The behaviour users see is tested
 * against helm and kubectl in tests/compose and tests/k8s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/k8s/compose.h"
#include "backends/k8s/kubeconfig.h"
#include "test.h"

static char tmpdir[] = "/tmp/sbx-k8s-unit-XXXXXX";

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fwrite(text, 1, len, f);
		fclose(f);
	}
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

/* ---- ExecCredential ---- */

static int parse(sbx_k8s_config *c, const char *json, char *err)
{
	return sbx_k8s_exec_credential_parse(c, json, strlen(json), err, 300);
}

static void test_exec_credential_times(void)
{
	sbx_k8s_exec_plugin x = {.api_version = "client.authentication.k8s.io/v1"};
	sbx_k8s_config c = {.exec = &x};
	char err[300];
	CHECK_EQ_INT(parse(&c, "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
			       "\"status\":{\"token\":\"t1\",\"expirationTimestamp\":\"2026-01-02T03:04:05Z\"}}",
			 err),
		     0);
	CHECK_EQ_STR(c.token, "t1");
	CHECK_EQ_INT(c.expires, 1767323045);
	CHECK_EQ_INT(parse(&c, "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
			       "\"status\":{\"token\":\"t2\",\"expirationTimestamp\":\"2026-01-02T04:04:05.123456+01:00\"}}",
			 err),
		     0);
	CHECK_EQ_STR(c.token, "t2");
	CHECK_EQ_INT(c.expires, 1767323045);
	CHECK_EQ_INT(parse(&c, "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
			       "\"status\":{\"token\":\"t3\",\"expirationTimestamp\":\"tomorrow\"}}",
			 err),
		     -1);
	CHECK(strstr(err, "'tomorrow' is not an RFC 3339 time"));
	CHECK_EQ_STR(c.token, "t2"); /* a bad answer changes nothing */
	free(c.token);
}

static void test_exec_credential_mismatches(void)
{
	sbx_k8s_exec_plugin x = {.api_version = "client.authentication.k8s.io/v1"};
	sbx_k8s_config c = {.exec = &x};
	char err[300];
	CHECK_EQ_INT(parse(&c, "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
			       "\"status\":{\"token\":\"t\"}}",
			 err),
		     -1);
	CHECK(strstr(err, "apiVersion 'client.authentication.k8s.io/v1beta1'"));
	CHECK_EQ_INT(parse(&c, "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
			       "\"status\":{\"clientCertificateData\":\"c\"}}",
			 err),
		     -1);
	CHECK(strstr(err, "neither a token") || strstr(err, "without clientKeyData"));
	CHECK_EQ_INT(parse(&c, "[1,2]", err), -1);
	CHECK(strstr(err, "not an ExecCredential"));
	CHECK_EQ_INT(parse(&c, "{\"kind\":", err), -1);
	CHECK(strstr(err, "not JSON"));
	CHECK(c.token == NULL && !c.have_exec_credential);
}

/* ---- token file ---- */

static void test_token_file_reread(void)
{
	char dir[300], path[400];
	snprintf(dir, sizeof dir, "%s/sa", tmpdir);
	CHECK(mkdir(dir, 0700) == 0);
	snprintf(path, sizeof path, "%s/token", dir);
	write_file(path, "first\n", 6);
	snprintf(path, sizeof path, "%s/ca.crt", dir);
	write_file(path, "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n", 56);
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	char kc[400];
	snprintf(kc, sizeof kc, "%s/none.yaml", tmpdir);
	sbx_k8s_config_opts o = {.serviceaccount_dir = dir};
	setenv("KUBECONFIG", kc, 1);
	sbx_k8s_config c;
	char err[600];
	int rc = sbx_k8s_config_load(&o, &c, err, sizeof err);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("KUBECONFIG");
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_STR(c.token, "first");
	snprintf(path, sizeof path, "%s/token", dir);
	write_file(path, "second\n", 7);
	CHECK_EQ_INT(sbx_k8s_auth_refresh_sync(&c, 1000, err, sizeof err), 0);
	CHECK_EQ_STR(c.token, "first"); /* read moments ago: kept */
	c.token_read_ms -= 61000;      /* as if a minute had passed */
	CHECK_EQ_INT(sbx_k8s_auth_refresh_sync(&c, 1000, err, sizeof err), 0);
	CHECK_EQ_STR(c.token, "second");
	unlink(path);
	c.token_read_ms -= 61000;
	CHECK_EQ_INT(sbx_k8s_auth_refresh_sync(&c, 1000, err, sizeof err), -1);
	CHECK(strstr(err, "cannot re-read the token file"));
	sbx_k8s_config_free(&c);
}

/* ---- hostile YAML ---- */

static void test_compose_alias_bomb(void)
{
	const char *bomb = "x-a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			   "x-b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			   "x-c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			   "x-d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			   "x-e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			   "x-f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
			   "x-g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
			   "services:\n  default:\n    image: a\n    %s: *g\n";
	const char *keys[] = {"command", "entrypoint", "environment", "volumes", "networks", "security_opt"};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		char text[2000], err[2000];
		snprintf(text, sizeof text, bomb, keys[i]);
		char *v = sbx_compose_string_to_values("bomb.yaml", text, strlen(text), NULL, NULL, err, sizeof err);
		CHECK(v == NULL);
		CHECK(strstr(err, "bomb.yaml:"));
	}
}

static void test_compose_merge_cycle(void)
{
	const char *text = "services:\n  default: &d\n    image: a\n    <<: *d\n";
	char err[2000];
	char *v = sbx_compose_string_to_values("cycle.yaml", text, strlen(text), NULL, NULL, err, sizeof err);
	/* libyaml refuses the alias to an unfinished anchor, or we stop at the
	 * merge depth limit: either way an answer, not a hang or a crash. */
	if (v)
		CHECK(strstr(v, "image"));
	free(v);
}

static void count_warning(void *ud, const char *msg)
{
	(void)msg;
	(*(int *)ud)++;
}

/* Every prefix of a good file: an answer or an error naming the file. */
static void test_compose_truncations(void)
{
	size_t len;
	char *text = read_file("tests/compose/files/full.compose.yaml", &len);
	CHECK(text != NULL);
	int warnings = 0;
	for (size_t n = 0; n <= len; n++) {
		char err[2000] = "";
		char *v = sbx_compose_string_to_values("cut.yaml", text, n, count_warning, &warnings, err, sizeof err);
		if (!v && strncmp(err, "cut.yaml", 8) != 0) {
			free(text);
			CHECK(!"error without the file name");
		}
		free(v);
	}
	char err[2000];
	char *v = sbx_compose_string_to_values("full.yaml", text, len, NULL, NULL, err, sizeof err);
	free(text);
	CHECK(v != NULL);
	free(v);
}

static void test_kubeconfig_truncations(void)
{
	size_t len;
	char *text = read_file("tests/k8s/kubeconfig/main.yaml", &len);
	CHECK(text != NULL);
	char cut[400], certs[400];
	snprintf(cut, sizeof cut, "%s/cut.yaml", tmpdir);
	snprintf(certs, sizeof certs, "ln -s %s/tests/k8s/kubeconfig/certs %s/certs", getenv("PWD"), tmpdir);
	if (system(certs) != 0) {
		free(text);
		CHECK(!"cannot link the fixture certificates");
	}
	int ok = 0;
	for (size_t n = 0; n <= len; n += 3) {
		write_file(cut, text, n);
		sbx_k8s_config_opts o = {.kubeconfig = cut, .serviceaccount_dir = "/nonexistent"};
		sbx_k8s_config c;
		char err[2000] = "";
		if (sbx_k8s_config_load(&o, &c, err, sizeof err) == 0) {
			ok++;
			sbx_k8s_config_free(&c);
		} else if (!strstr(err, "cut.yaml")) {
			free(text);
			CHECK(!"error without the file name");
		}
	}
	free(text);
	CHECK(ok > 0); /* the whole file loads */
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	RUN(test_exec_credential_times);
	RUN(test_exec_credential_mismatches);
	RUN(test_token_file_reread);
	RUN(test_compose_alias_bomb);
	RUN(test_compose_merge_cycle);
	RUN(test_compose_truncations);
	RUN(test_kubeconfig_truncations);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return test_summary();
}
