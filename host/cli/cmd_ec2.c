/* cmd_ec2.c — the CLI's EC2 sandboxes: `sbx up --backend ec2`, reaching
 * one again for exec/cp, `sbx down` of one, `sbx down --all --backend ec2`.
 *
 * An EC2 sandbox NAME is STATE/NAME with `backend` ("ec2"), `services`
 * ("default") and `ec2`: key=value lines naming the instance, its region,
 * the bucket, key prefix and key of the shipped agent, the agent's port and
 * the timeouts, so later commands need no settings. The record is written
 * as soon as the instance exists, so `sbx down NAME` works even after an
 * `up` that was killed. `up` then starts the sandbox's connection holder
 * (hold.c; not with --no-holder) and downs stop it before the instance
 * goes. Settings: flags, then INSPECT_EC2_SANDBOX_* (see docs/EC2.md). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/aws/ec2_sandbox.h"
#include "backends/aws/ssm.h"
#include "backends/aws/ssm_reopen.h"
#include "keyfile.h"
#include "cli.h"

/* ------------------------------------------------------------ the record */

typedef struct ec2_record {
	char region[32], bucket[64], prefix[512], instance_id[32], s3_key[1024], owner[128];
	unsigned agent_port, api_timeout_s, api_retries, session_timeout_s;
} ec2_record;

static void record_path(const cli_sandbox *sb, char *out, size_t len)
{
	snprintf(out, len, "%s/ec2", sb->dir);
}

static int record_write(const cli_sandbox *sb, const ec2_record *r)
{
	char path[4200], err[512];
	char text[4096];
	int n = snprintf(text, sizeof text,
			 "instance_id=%s\nregion=%s\nbucket=%s\ns3_key_prefix=%s\ns3_key=%s\nowner=%s\n"
			 "agent_port=%u\napi_timeout=%u\napi_retries=%u\nsession_timeout=%u\n",
			 r->instance_id, r->region, r->bucket, r->prefix, r->s3_key, r->owner, r->agent_port,
			 r->api_timeout_s, r->api_retries, r->session_timeout_s);
	record_path(sb, path, sizeof path);
	if (cli_write_file(path, text, (size_t)n, err, sizeof err) < 0) {
		cli_say(stderr, "sbx: %s\n", err);
		return -1;
	}
	return 0;
}

static int record_read(const cli_sandbox *sb, ec2_record *r)
{
	char path[4200], line[2048];
	memset(r, 0, sizeof *r);
	record_path(sb, path, sizeof path);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = 0;
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = 0;
		const char *k = line, *v = eq + 1;
		if (!strcmp(k, "instance_id"))
			snprintf(r->instance_id, sizeof r->instance_id, "%s", v);
		else if (!strcmp(k, "region"))
			snprintf(r->region, sizeof r->region, "%s", v);
		else if (!strcmp(k, "bucket"))
			snprintf(r->bucket, sizeof r->bucket, "%s", v);
		else if (!strcmp(k, "s3_key_prefix"))
			snprintf(r->prefix, sizeof r->prefix, "%s", v);
		else if (!strcmp(k, "s3_key"))
			snprintf(r->s3_key, sizeof r->s3_key, "%s", v);
		else if (!strcmp(k, "owner"))
			snprintf(r->owner, sizeof r->owner, "%s", v);
		else if (!strcmp(k, "agent_port"))
			r->agent_port = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(k, "api_timeout"))
			r->api_timeout_s = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(k, "api_retries"))
			r->api_retries = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(k, "session_timeout"))
			r->session_timeout_s = (unsigned)strtoul(v, NULL, 10);
	}
	fclose(f);
	return r->region[0] ? 0 : -1;
}

int cli_ec2_describe(const cli_sandbox *sb, char *instance_id, size_t idlen, char *region, size_t regionlen)
{
	ec2_record r;
	if (record_read(sb, &r) < 0)
		return -1;
	snprintf(instance_id, idlen, "%s", r.instance_id[0] ? r.instance_id : "(launching)");
	snprintf(region, regionlen, "%s", r.region);
	return 0;
}

/* The config later commands use: what the record says, defaults elsewhere. */
/* STATE/NAME/agent.key: the instance's agent secret (0600), for every
 * later connect. */
static void secret_path(const cli_sandbox *sb, char *out, size_t len)
{
	snprintf(out, len, "%s/agent.key", sb->dir);
}

static int save_secret(const cli_sandbox *sb, const sbx_auth_key *k)
{
	char path[4200], err[512];
	secret_path(sb, path, sizeof path);
	if (sbx_keyfile_write(path, k, err, sizeof err) == 0)
		return 0;
	cli_say(stderr, "sbx up: %s\n", err);
	return -1;
}

static void record_config(const ec2_record *r, sbx_ec2_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->region, sizeof cfg->region, "%s", r->region);
	snprintf(cfg->s3_bucket, sizeof cfg->s3_bucket, "%s", r->bucket);
	snprintf(cfg->s3_key_prefix, sizeof cfg->s3_key_prefix, "%s", r->prefix);
	cfg->api_timeout_s = r->api_timeout_s ? r->api_timeout_s : 30;
	cfg->api_retries = r->api_retries;
	cfg->session_timeout_s = r->session_timeout_s ? r->session_timeout_s : 30;
}

/* ------------------------------------------------------- AWS on the loop */

typedef struct ec2_cli {
	sbx_loop *loop;
	sbx_http *http;
	aws_client *client;
} ec2_cli;

static int aws_open(ec2_cli *x, sbx_loop *loop, const sbx_ec2_config *cfg)
{
	x->loop = loop;
	x->http = sbx_http_new(loop);
	aws_client_opts o = {.region = cfg->region, .timeout_s = cfg->api_timeout_s, .max_retries = cfg->api_retries,
			     .max_retries_set = 1};
	sbx_error err;
	x->client = x->http ? aws_client_new(loop, x->http, &o, &err) : NULL;
	if (!x->client) {
		cli_say(stderr, "sbx: cannot set up the AWS client: %s\n", x->http ? err.message : "out of memory");
		if (x->http)
			sbx_http_free(x->http);
		return -1;
	}
	return 0;
}

static void aws_close(ec2_cli *x)
{
	aws_client_free(x->client);
	sbx_http_free(x->http);
	x->client = NULL;
	x->http = NULL;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Runs the loop until *done, or (when stop_on_signal) until Ctrl-C/TERM.
 * Returns 1 when interrupted. */
static int run(sbx_loop *loop, const int *done, int stop_on_signal)
{
	while (!*done) {
		if (stop_on_signal && interrupted)
			return 1;
		/* the short wait bounds how late a signal between the check and the wait is seen */
		if (sbx_loop_run_once(loop, 200) < 0)
			break;
	}
	return 0;
}

typedef struct waiter {
	int done;
	sbx_error err;
	size_t n;
} waiter;

static void on_ready(void *ud, sbx_ec2_sandbox *sb, const sbx_error *err)
{
	(void)sb;
	waiter *w = ud;
	w->done = 1;
	w->err = err ? *err : (sbx_error){0};
}

static void on_done(void *ud, const sbx_error *err)
{
	waiter *w = ud;
	w->done = 1;
	w->err = err ? *err : (sbx_error){0};
}

static void on_counted(void *ud, const sbx_error *err, size_t n)
{
	waiter *w = ud;
	w->done = 1;
	w->err = err ? *err : (sbx_error){0};
	w->n = n;
}

/* ---------------------------------------------------------------- sbx up */

typedef struct up_state {
	cli_sandbox *sb;
	ec2_record rec;
	sbx_ec2_sandbox *ec2;
	waiter w;
} up_state;

static void up_progress(void *ud, const char *what)
{
	up_state *u = ud;
	/* record what exists so far: `sbx down NAME` can remove it whatever happens next */
	if (u->ec2) {
		snprintf(u->rec.instance_id, sizeof u->rec.instance_id, "%s", sbx_ec2_instance_id(u->ec2));
		snprintf(u->rec.s3_key, sizeof u->rec.s3_key, "%s", sbx_ec2_s3_key(u->ec2));
		record_write(u->sb, &u->rec);
	}
	cli_say(stderr, "sbx up: %s...\n", what);
}

static void up_ready(void *ud, sbx_ec2_sandbox *sb, const sbx_error *err)
{
	up_state *u = ud;
	on_ready(&u->w, sb, err);
}

static void up_usage(FILE *f)
{
	fprintf(f,
		"usage: sbx up [NAME] --backend ec2 [SETTINGS] [--json]\n"
		"\n"
		"Launches an EC2 instance, waits until it runs and its SSM agent is online,\n"
		"and reaches sbx-agent there over one SSM port-forwarding session. Each\n"
		"setting is a flag or INSPECT_EC2_SANDBOX_<NAME> (flags win; see docs/EC2.md):\n"
		"\n"
		"  --region R  --vpc-id V  --security-group-id G  --subnet-id S\n"
		"  --instance-profile P  --s3-bucket B            (required)\n"
		"  --s3-key-prefix P  --ami-id A  --instance-type T  --extra-tags k=v;k=v\n"
		"  --volume-size GIB  --launch-timeout S  --online-timeout S  --session-timeout S\n"
		"  --agent-port N      where sbx-agent listens on the instance (default 7000)\n"
		"  --ami-has-agent     the AMI has sbx-agent baked in (ami/): ship nothing\n"
		"  --allow-metadata    let commands reach the instance metadata service (and so\n"
		"                      the instance role's credentials); blocked by default\n"
		"  --no-holder         start no connection holder. By default a holder keeps\n"
		"                      one SSM session open (STATE/NAME/hold/, a private socket)\n"
		"                      and each exec, cp, shell ... runs over it instead of\n"
		"                      starting a session of its own; it exits at `sbx down`,\n"
		"                      when the instance is lost, or after $SBX_HOLD_IDLE\n"
		"                      seconds without calls (600)\n"
		"\n"
		"Ctrl-C while it starts removes what it made. `sbx down NAME` removes it;\n"
		"`sbx down --all --backend ec2` removes everything sbx launched.\n");
}

static unsigned uint_arg(const char *flag, const char *v, int *bad)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || *end || !*v || n > 1000000) {
		cli_say(stderr, "sbx up: %s wants a whole number, not '%s'\n", flag, v);
		*bad = 1;
	}
	return (unsigned)n;
}

static void random_owner(const char *name, char *out, size_t len)
{
	unsigned char r[4];
	if (getrandom(r, sizeof r, 0) != sizeof r)
		memset(r, getpid() & 0xff, sizeof r);
	snprintf(out, len, "cli-%s-%02x%02x%02x%02x", name, r[0], r[1], r[2], r[3]);
}

/* Parse the EC2 flags into s. Returns 0, 1 for --help, -1 on a bad flag. */
static int parse_up(int argc, char **argv, sbx_ec2_settings *s, const char **name, unsigned *agent_port,
		    int *baked, int *json, int *holder)
{
	struct {
		const char *flag;
		const char **str;
		unsigned *num;
	} flags[] = {
		{"--region", &s->region, NULL},
		{"--vpc-id", &s->vpc_id, NULL},
		{"--security-group-id", &s->security_group_id, NULL},
		{"--subnet-id", &s->subnet_id, NULL},
		{"--instance-profile", &s->instance_profile, NULL},
		{"--s3-bucket", &s->s3_bucket, NULL},
		{"--s3-key-prefix", &s->s3_key_prefix, NULL},
		{"--ami-id", &s->ami_id, NULL},
		{"--instance-type", &s->instance_type, NULL},
		{"--extra-tags", &s->extra_tags_str, NULL},
		{"--volume-size", NULL, &s->volume_size_gib},
		{"--launch-timeout", NULL, &s->launch_timeout_s},
		{"--online-timeout", NULL, &s->online_timeout_s},
		{"--session-timeout", NULL, &s->session_timeout_s},
		{"--agent-port", NULL, agent_port},
	};
	int bad = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t k, nflags = sizeof flags / sizeof flags[0];
		for (k = 0; k < nflags; k++)
			if (!strcmp(a, flags[k].flag))
				break;
		if (k < nflags) {
			if (i + 1 >= argc) {
				cli_say(stderr, "sbx up: %s needs a value\n", a);
				return -1;
			}
			if (flags[k].str)
				*flags[k].str = argv[++i];
			else
				*flags[k].num = uint_arg(a, argv[++i], &bad);
		} else if (!strcmp(a, "--backend") && i + 1 < argc) {
			i++; /* checked by cmd_up */
		} else if (!strcmp(a, "--ami-has-agent")) {
			*baked = 1;
		} else if (!strcmp(a, "--allow-metadata")) {
			s->allow_metadata = 1;
		} else if (!strcmp(a, "--json")) {
			*json = 1;
		} else if (!strcmp(a, "--no-holder")) {
			*holder = 0;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			return 1;
		} else if (a[0] != '-' && !*name) {
			*name = a;
		} else {
			cli_say(stderr, "sbx up: unexpected argument '%s' for --backend ec2\n", a);
			return -1;
		}
	}
	return bad ? -1 : 0;
}

static int create_state(cli_sandbox *sb, const char *name)
{
	if (cli_sandbox_load(name, sb) == 0) {
		cli_say(stderr, "sbx up: sandbox '%s' already exists (remove it with: sbx down %s)\n", name, name);
		return -1;
	}
	memset(sb, 0, sizeof *sb);
	snprintf(sb->name, sizeof sb->name, "%s", name);
	snprintf(sb->dir, sizeof sb->dir, "%s/%s", cli_state_dir(), name);
	sb->nservices = 1;
	strcpy(sb->services[0], "default");
	snprintf(sb->backend, sizeof sb->backend, "ec2");
	char path[4200], err[512];
	if (mkdir(sb->dir, 0700) < 0) {
		cli_say(stderr, "sbx up: cannot create %s: %s\n", sb->dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof path, "%s/backend", sb->dir);
	int rc = cli_write_file(path, "ec2\n", 4, err, sizeof err);
	snprintf(path, sizeof path, "%s/services", sb->dir);
	if (rc == 0)
		rc = cli_write_file(path, "default\n", 8, err, sizeof err);
	if (rc < 0) {
		cli_say(stderr, "sbx up: %s\n", err);
		cli_remove_tree(sb->dir);
	}
	return rc;
}

int cli_ec2_up(int argc, char **argv, const char *generated_name)
{
	sbx_ec2_settings s = {0};
	const char *name = NULL;
	unsigned agent_port = 0;
	int baked = 0, json = 0, holder = 1;
	int p = parse_up(argc, argv, &s, &name, &agent_port, &baked, &json, &holder);
	if (p != 0) {
		up_usage(p > 0 ? stdout : stderr);
		return p > 0 ? 0 : EXIT_USAGE;
	}
	if (!name)
		name = generated_name;
	if (!cli_valid_name(name)) {
		cli_say(stderr, "sbx up: bad name '%s': use lowercase letters, digits, '-' and '_' (at most 40)\n", name);
		return EXIT_USAGE;
	}
	sbx_ec2_config cfg;
	char why[1024];
	if (sbx_ec2_config_load(&s, &cfg, why, sizeof why) < 0) {
		cli_say(stderr, "sbx up: %s\n", why);
		return EXIT_USAGE;
	}
	cli_sandbox sb;
	if (create_state(&sb, name) < 0)
		return 1;

	up_state u = {.sb = &sb};
	snprintf(u.rec.region, sizeof u.rec.region, "%s", cfg.region);
	snprintf(u.rec.bucket, sizeof u.rec.bucket, "%s", cfg.s3_bucket);
	snprintf(u.rec.prefix, sizeof u.rec.prefix, "%s", cfg.s3_key_prefix);
	random_owner(name, u.rec.owner, sizeof u.rec.owner);
	u.rec.agent_port = agent_port ? agent_port : SBX_EC2_DEFAULT_AGENT_PORT;
	u.rec.api_timeout_s = cfg.api_timeout_s;
	u.rec.api_retries = cfg.api_retries;
	u.rec.session_timeout_s = cfg.session_timeout_s;
	record_write(&sb, &u.rec);

	sbx_loop *loop = sbx_loop_new();
	ec2_cli x;
	if (aws_open(&x, loop, &cfg) < 0) {
		sbx_loop_free(loop);
		cli_remove_tree(sb.dir);
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_interrupt}, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	sbx_ec2_up_opts o = {.cfg = &cfg, .task = name, .owner = u.rec.owner,
			     .agent_path = baked ? NULL : sbx_default_agent_path(), .agent_port = u.rec.agent_port,
			     .on_ready = up_ready, .on_progress = up_progress, .ud = &u};
	sbx_error err;
	int rc = 0;
	u.ec2 = sbx_ec2_up(loop, x.client, &o, &err);
	if (!u.ec2) {
		cli_say(stderr, "sbx up: %s\n", err.message);
		rc = 1;
	} else if (run(loop, &u.w.done, 1)) {
		cli_say(stderr, "sbx up: interrupted; removing %s...\n",
			sbx_ec2_instance_id(u.ec2)[0] ? sbx_ec2_instance_id(u.ec2) : "what was started");
		waiter d = {0};
		sbx_ec2_down(u.ec2, on_done, &d);
		run(loop, &d.done, 0);
		if (d.err.status != SBX_OK)
			cli_say(stderr, "sbx up: could not remove everything: %s\n"
					"     retry with: sbx down %s\n", d.err.message, name);
		rc = 130;
	} else if (u.w.err.status != SBX_OK) {
		/* the library removed the instance and the object before reporting */
		cli_say(stderr, "sbx up: %s\n", u.w.err.message);
		rc = 1;
	} else {
		snprintf(u.rec.instance_id, sizeof u.rec.instance_id, "%s", sbx_ec2_instance_id(u.ec2));
		snprintf(u.rec.s3_key, sizeof u.rec.s3_key, "%s", sbx_ec2_s3_key(u.ec2));
		record_write(&sb, &u.rec); /* the progress record already names the instance */
		if (save_secret(&sb, sbx_ec2_secret(u.ec2)) < 0) {
			waiter d = {0};
			sbx_ec2_down(u.ec2, on_done, &d);
			run(loop, &d.done, 0);
			rc = 1;
		}
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sbx_ec2_free(u.ec2);
	aws_close(&x);
	sbx_loop_free(loop);
	if (rc != 0) {
		cli_remove_tree(sb.dir);
		return rc;
	}
	if (holder)
		cli_hold_start(&sb);
	if (json) {
		printf("{\"name\": ");
		json_str(stdout, name, strlen(name));
		printf(", \"backend\": \"ec2\", \"instance_id\": ");
		json_str(stdout, u.rec.instance_id, strlen(u.rec.instance_id));
		printf(", \"region\": ");
		json_str(stdout, u.rec.region, strlen(u.rec.region));
		printf(", \"services\": [\"default\"]}\n");
	} else {
		printf("%s\n", name);
	}
	return 0;
}

/* ------------------------------------------------------ exec, cp, down */

/* The AWS client of the session cli_ec2_connect made: it reopens a dropped
 * data channel through it, so it lives until cli_ec2_release (one connect
 * per command). */
static ec2_cli connected;

sbx_session *cli_ec2_connect(sbx_loop *loop, const cli_sandbox *sb)
{
	ec2_record r;
	if (record_read(sb, &r) < 0 || !r.instance_id[0]) {
		cli_say(stderr, "sbx: the EC2 sandbox '%s' has no instance on record (its `up` did not finish);\n"
				"     remove it with: sbx down %s\n", sb->name, sb->name);
		return NULL;
	}
	sbx_ec2_config cfg;
	record_config(&r, &cfg);
	ec2_cli *x = &connected;
	if (x->client)
		aws_close(x);
	if (aws_open(x, loop, &cfg) < 0)
		return NULL;
	char path[4200], why[512];
	sbx_auth_key key;
	secret_path(sb, path, sizeof path);
	if (sbx_keyfile_read(path, &key, why, sizeof why) < 0) {
		cli_say(stderr, "sbx: %s: the agent on %s cannot be reached without it\n", why, r.instance_id);
		return NULL;
	}
	waiter w = {0};
	sbx_ec2_attach_opts o = {.cfg = &cfg, .instance_id = r.instance_id, .s3_key = r.s3_key, .secret = &key,
				 .agent_port = r.agent_port, .on_ready = on_ready, .ud = &w};
	sbx_error err;
	sbx_ec2_sandbox *ec2 = sbx_ec2_attach(loop, x->client, &o, &err);
	if (ec2)
		run(loop, &w.done, 0);
	sbx_session *s = ec2 && w.err.status == SBX_OK ? sbx_ec2_take_session(ec2) : NULL;
	if (!s)
		cli_say(stderr, "sbx: cannot reach %s (%s in %s): %s\n", sb->name, r.instance_id, r.region,
			ec2 ? w.err.message : err.message);
	sbx_ec2_free(ec2);
	memset(&key, 0, sizeof key);
	if (!s)
		aws_close(x);
	return s;
}

/* TerminateSession for each Session Manager session s used (the first and
 * any reopened since), so none idles on in AWS after the command; waits up
 * to RELEASE_WAIT_MS for the answers. */
#define RELEASE_WAIT_MS 5000

typedef struct release_wait {
	aws_client *client;
	int pending;
} release_wait;

static void session_terminated(void *ud, const sbx_error *err)
{
	(void)err; /* ended already, or AWS will idle it out: nothing to do */
	((release_wait *)ud)->pending--;
}

static void terminate_one(void *ud, const char *session_id)
{
	release_wait *w = ud;
	sbx_error err;
	w->pending++;
	if (aws_ssm_terminate_session(w->client, session_id, session_terminated, w, &err) < 0)
		w->pending--;
}

void cli_ec2_release(sbx_loop *loop, sbx_session *s)
{
	release_wait w = {.client = connected.client};
	if (w.client)
		aws_ssm_session_take_ids(s, terminate_one, &w);
	sbx_session_close(s);
	uint64_t end = sbx_now_ms() + RELEASE_WAIT_MS;
	while (w.pending > 0 && sbx_now_ms() < end)
		sbx_loop_run_once(loop, 100);
	if (connected.client)
		aws_close(&connected);
}

int cli_ec2_down(const cli_sandbox *sb)
{
	ec2_record r;
	if (record_read(sb, &r) < 0) {
		cli_say(stderr, "sbx down: %s has no readable EC2 record; removing its state only\n", sb->name);
		cli_remove_tree(sb->dir);
		return 0;
	}
	if (!r.instance_id[0] && !r.s3_key[0]) {
		cli_remove_tree(sb->dir);
		return 0;
	}
	sbx_ec2_config cfg;
	record_config(&r, &cfg);
	sbx_loop *loop = sbx_loop_new();
	ec2_cli x;
	if (aws_open(&x, loop, &cfg) < 0) {
		sbx_loop_free(loop);
		return 1;
	}
	waiter w = {0};
	sbx_error err;
	int rc = 1;
	if (r.instance_id[0]) {
		sbx_ec2_attach_opts o = {.cfg = &cfg, .instance_id = r.instance_id, .s3_key = r.s3_key,
					 .agent_port = r.agent_port};
		sbx_ec2_sandbox *ec2 = sbx_ec2_attach(loop, x.client, &o, &err);
		if (ec2) {
			sbx_ec2_down(ec2, on_done, &w);
			run(loop, &w.done, 0);
			sbx_ec2_free(ec2);
		}
		rc = ec2 && w.err.status == SBX_OK ? 0 : 1;
	} else { /* killed after the upload, before the launch: only the object */
		if (sbx_ec2_cleanup_objects(x.client, r.bucket, r.prefix, r.owner, on_counted, &w, &err) == 0) {
			run(loop, &w.done, 0);
			rc = w.err.status == SBX_OK ? 0 : 1;
		}
	}
	if (rc == 0)
		cli_remove_tree(sb->dir);
	else
		cli_say(stderr, "sbx down: cannot remove %s (%s in %s): %s\n       its record is kept; retry, or: "
				"sbx down --all --backend ec2\n",
			sb->name, r.instance_id[0] ? r.instance_id : "no instance", r.region,
			w.done ? w.err.message : err.message);
	aws_close(&x);
	sbx_loop_free(loop);
	return rc;
}

/* Calls fn on each EC2 sandbox in the state that a sweep of region
 * removes (its record names that region, or it has none). -1 when the
 * state cannot be listed or fn failed for one. */
static int for_each_swept(const char *region, int (*fn)(const cli_sandbox *sb))
{
	cli_names names;
	if (cli_sandbox_names(&names) < 0)
		return -1;
	int rc = 0;
	for (int i = 0; i < names.n; i++) {
		cli_sandbox sb;
		ec2_record r;
		if (cli_sandbox_load(names.name[i], &sb) == 0 && !strcmp(sb.backend, "ec2") &&
		    (record_read(&sb, &r) < 0 || !strcmp(r.region, region)) && fn(&sb) < 0)
			rc = -1;
	}
	cli_names_free(&names);
	return rc;
}

static int stop_holders(const cli_sandbox *sb)
{
	cli_hold_stop(sb);
	return 0;
}

static int remove_record(const cli_sandbox *sb)
{
	if (cli_remove_tree(sb->dir) == 0)
		return 0;
	cli_say(stderr, "sbx down: cannot remove %s: %s\n", sb->dir, strerror(errno));
	return -1;
}

/* `sbx down --all --backend ec2 [--region R] [--s3-bucket B] [--s3-key-prefix P]`:
 * every instance with an sbx-owner tag and every object under PREFIX/sbx/. */
int cli_ec2_down_all(int argc, char **argv)
{
	/* Only the region and bucket matter here; the launch settings are
	 * placeholders so that the one settings loader can be used. */
	sbx_ec2_settings s = {.vpc_id = "vpc-0", .security_group_id = "sg-0", .subnet_id = "subnet-0",
			      .instance_profile = "-", .ami_id = "ami-0"};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--region") && v)
			s.region = argv[++i];
		else if (!strcmp(a, "--s3-bucket") && v)
			s.s3_bucket = argv[++i];
		else if (!strcmp(a, "--s3-key-prefix") && v)
			s.s3_key_prefix = argv[++i];
		else if (!strcmp(a, "--backend") && v)
			i++;
		else if (strcmp(a, "--all") != 0) {
			cli_say(stderr, "sbx down: unexpected argument '%s' with --all --backend ec2\n", a);
			return EXIT_USAGE;
		}
	}
	sbx_ec2_config cfg;
	char why[1024];
	if (sbx_ec2_config_load(&s, &cfg, why, sizeof why) < 0) {
		cli_say(stderr, "sbx down: %s\n", why);
		return EXIT_USAGE;
	}
	sbx_loop *loop = sbx_loop_new();
	ec2_cli x;
	if (aws_open(&x, loop, &cfg) < 0) {
		sbx_loop_free(loop);
		return 1;
	}
	waiter wi = {0}, wo = {0};
	sbx_error err;
	int rc = 0;
	for_each_swept(cfg.region, stop_holders); /* before their instances go */
	cli_say(stderr, "sbx down: terminating every instance tagged %s in %s...\n", SBX_EC2_OWNER_TAG, cfg.region);
	if (sbx_ec2_cleanup(x.client, NULL, on_counted, &wi, &err) < 0)
		wi = (waiter){1, err, 0};
	run(loop, &wi.done, 0);
	if (wi.err.status != SBX_OK) {
		cli_say(stderr, "sbx down: cannot terminate the instances: %s\n", wi.err.message);
		rc = 1;
	}
	if (sbx_ec2_cleanup_objects(x.client, cfg.s3_bucket, cfg.s3_key_prefix, NULL, on_counted, &wo, &err) < 0)
		wo = (waiter){1, err, 0};
	run(loop, &wo.done, 0);
	if (wo.err.status != SBX_OK) {
		cli_say(stderr, "sbx down: cannot delete the objects in s3://%s: %s\n", cfg.s3_bucket, wo.err.message);
		rc = 1;
	}
	aws_close(&x);
	sbx_loop_free(loop);
	printf("terminated %zu instance%s, deleted %zu object%s\n", wi.n, wi.n == 1 ? "" : "s", wo.n,
	       wo.n == 1 ? "" : "s");
	if (rc == 0 && for_each_swept(cfg.region, remove_record) < 0)
		rc = 1; /* the local records of EC2 sandboxes now name nothing */
	return rc;
}
