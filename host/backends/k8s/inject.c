/* inject.c — the agent copied into a container: a probe exec, then (when
 * the agent is not there yet) an upload exec with the binary on stdin.
 * Both are short pod exec WebSockets (transport/k8s.c). */
#include <errno.h>
#include "net/crypto_lib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inject.h"
#include "transport/transport.h"

/* "$0" is the final path: the probe prints present or absent; the upload
 * reads exactly $1 bytes, checks the size, and renames into place. */
static const char PROBE[] = "if test -x \"$0\"; then echo present; else echo absent; fi";
static const char UPLOAD[] = "t=\"$0.$$\"; mkdir -p \"$(dirname \"$0\")\" && head -c \"$1\" > \"$t\" && "
			     "test \"$(wc -c < \"$t\")\" -eq \"$1\" && chmod 755 \"$t\" && mv -f \"$t\" \"$0\" && "
			     "echo stored || { rm -f \"$t\"; exit 1; }";

struct sbx_k8s_inject {
	sbx_loop *loop;
	sbx_k8s_inject_opts o;
	sbx_k8s_conn k;
	char *ns, *pod, *container;
	sbx_transport *t;
	sbx_timer *later;        /* reports a result decided at start from the loop */
	int uploading;
	unsigned char *agent;    /* the binary */
	size_t agent_len, sent;
	char path[512];
	char out[64];            /* what the command printed (short) */
	size_t out_len;
};

static char *dup_opt(const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

static void inject_free(sbx_k8s_inject *in)
{
	if (in->t)
		in->t->ops->close(in->t);
	if (in->later)
		sbx_timer_cancel(in->loop, in->later);
	free(in->agent);
	free(in->ns);
	free(in->pod);
	free(in->container);
	free(in);
}

static void finish(sbx_k8s_inject *in, const char *err)
{
	in->o.on_done(in->o.ud, in->path, in->uploading && !err, err);
	inject_free(in);
}

static int run_exec(sbx_k8s_inject *in, const char *const *argv, char *err, size_t err_len);

/* ---- the exec's stdout and end ----------------------------------------------------------- */

static void on_data(void *ud, const uint8_t *p, size_t n)
{
	sbx_k8s_inject *in = ud;
	size_t room = sizeof in->out - 1 - in->out_len;
	if (n > room)
		n = room;
	memcpy(in->out + in->out_len, p, n);
	in->out_len += n;
	in->out[in->out_len] = 0;
}

static void send_agent(sbx_k8s_inject *in)
{
	while (in->sent < in->agent_len) {
		long w = in->t->ops->write(in->t, in->agent + in->sent, in->agent_len - in->sent);
		if (w <= 0) {
			in->t->ops->want_write(in->t, w == 0);
			return;
		}
		in->sent += (size_t)w;
	}
	in->t->ops->want_write(in->t, 0);
}

static void on_writable(void *ud)
{
	send_agent(ud);
}

static void start_upload(sbx_k8s_inject *in)
{
	char size[32], err[600];
	snprintf(size, sizeof size, "%zu", in->agent_len);
	const char *argv[] = {"sh", "-c", UPLOAD, in->path, size, NULL};
	in->uploading = 1;
	if (run_exec(in, argv, err, sizeof err) < 0) {
		finish(in, err);
		return;
	}
	send_agent(in);
}

static void on_closed(void *ud, const char *why)
{
	sbx_k8s_inject *in = ud;
	char msg[4000], ended[1600];
	snprintf(ended, sizeof ended, "%s", why ? why : ""); /* why lives in the transport */
	why = ended;
	in->t->ops->close(in->t);
	in->t = NULL;
	if (!in->uploading && strncmp(in->out, "present", 7) == 0) {
		finish(in, NULL);
	} else if (!in->uploading && strncmp(in->out, "absent", 6) == 0) {
		start_upload(in);
	} else if (in->uploading && strncmp(in->out, "stored", 6) == 0) {
		finish(in, NULL);
	} else {
		int no_sh = why && strstr(why, "code 127");
		snprintf(msg, sizeof msg, "copying the agent into pod %s/%s (%s) failed while %s: %s%s", in->ns, in->pod,
			 in->path, in->uploading ? "uploading it" : "checking for it",
			 why && *why ? why : "the exec ended without an answer",
			 no_sh ? " (the image needs /bin/sh, or set agent.inject in the chart's values)" : "");
		finish(in, msg);
	}
}

static int run_exec(sbx_k8s_inject *in, const char *const *argv, char *err, size_t err_len)
{
	in->out_len = 0;
	in->out[0] = 0;
	in->sent = 0;
	sbx_k8s_exec x = {.ns = in->ns, .pod = in->pod, .container = in->container, .argv = argv,
			  .kubectl = in->o.kubectl};
	in->t = sbx_k8s_transport(in->loop, &in->k, &x, err, err_len);
	if (!in->t)
		return -1;
	in->t->ev = (sbx_transport_events){on_data, on_writable, on_closed};
	in->t->ud = in;
	return 0;
}

/* ---- starting ---------------------------------------------------------------------------- */

static unsigned char *read_all(const char *path, size_t *len, char *err, size_t err_len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, err_len, "cannot read the agent %s: %s (build it with `make agent`, or set SBX_AGENT)",
			 path, strerror(errno));
		return NULL;
	}
	unsigned char *data = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n == cap && !(data = realloc(data, cap = cap ? cap * 2 : 1 << 20)))
			abort();
		size_t r = fread(data + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad || n == 0) {
		snprintf(err, err_len, "cannot read the agent %s: %s", path, bad ? "read error" : "it is empty");
		free(data);
		return NULL;
	}
	*len = n;
	return data;
}

static void hash_hex16(const unsigned char *p, size_t n, char out[17])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	sbx_crypto()->digest(p, n, md, &mdlen, sbx_crypto()->sha256(), NULL);
	for (int i = 0; i < 8; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void report_injected(sbx_loop *loop, void *ud)
{
	(void)loop;
	sbx_k8s_inject *in = ud;
	in->later = NULL;
	finish(in, NULL);
}

sbx_k8s_inject *sbx_k8s_inject_agent(sbx_loop *loop, const sbx_k8s_inject_opts *o, char *err, size_t err_len)
{
	if (!o->k || !o->pod || !o->on_done) {
		snprintf(err, err_len, "injecting the agent needs the API server, a pod and on_done");
		return NULL;
	}
	sbx_k8s_inject *in = calloc(1, sizeof *in);
	if (!in)
		abort();
	in->loop = loop;
	in->o = *o;
	in->k = *o->k; /* its strings are copied by each transport, and live as long as the caller's */
	in->ns = dup_opt(o->ns ? o->ns : "default");
	in->pod = dup_opt(o->pod);
	in->container = dup_opt(o->container);
	if (o->injected_path && *o->injected_path) {
		snprintf(in->path, sizeof in->path, "%s", o->injected_path);
		in->later = sbx_loop_timer(loop, 0, report_injected, in);
		return in;
	}
	const char *local = o->agent_path ? o->agent_path : sbx_default_agent_path();
	if (sbx_agent_check(local, err, err_len) < 0 || !(in->agent = read_all(local, &in->agent_len, err, err_len))) {
		inject_free(in);
		return NULL;
	}
	char hash[17];
	hash_hex16(in->agent, in->agent_len, hash);
	snprintf(in->path, sizeof in->path, "%s/sbx-agent-%s", o->dir ? o->dir : "/tmp", hash);
	const char *argv[] = {"sh", "-c", PROBE, in->path, NULL};
	if (run_exec(in, argv, err, err_len) < 0) {
		inject_free(in);
		return NULL;
	}
	return in;
}

void sbx_k8s_inject_cancel(sbx_k8s_inject *in)
{
	if (in)
		inject_free(in);
}
