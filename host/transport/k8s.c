/* k8s.c — a transport over a Kubernetes pod exec WebSocket.
 *
 * GET /api/v1/namespaces/NS/pods/POD/exec?command=...&stdin=true&stdout=true
 * &stderr=true upgraded to a WebSocket with subprotocol v5.channel.k8s.io
 * (or v4.channel.k8s.io from older servers). Every binary message starts
 * with a channel byte: 0 stdin (to the pod), 1 stdout, 2 stderr, 3 the
 * exec's final metav1.Status as JSON, 255 close-a-channel (v5 only). The
 * agent protocol rides on stdin/stdout; stderr's tail and the status make
 * the error when the stream ends. See /work/shared/notes/wire-protocols.md
 * (client-go tools/remotecommand, apimachinery remotecommand constants).
 *
 * Keepalive: WebSocket pings every ping_ms keep proxies and load balancers
 * from dropping an idle connection. The API server's and kubelet's stream
 * idle timeouts only count data frames; the session's own heartbeats
 * (agent protocol pings on stdin, answered on stdout) are data, so a
 * session keeps its exec stream alive by itself. */
#include "net/curl_lib.h"
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "transport.h"
#include "net/ws.h"

#define CH_STDIN 0
#define CH_STDOUT 1
#define CH_STDERR 2
#define CH_STATUS 3
#define MAX_STDIN_MESSAGE (256 * 1024)
#define STATUS_MAX 4096
#define ERR_TAIL 1024
#define DEFAULT_PING_MS 20000

static const char *const PROTOCOLS[] = {"v5.channel.k8s.io", "v4.channel.k8s.io", NULL};

typedef struct k8s_pipe {
	sbx_transport t;
	sbx_ws *ws;
	char what[300];          /* "pod NS/POD" for messages */
	int v5;
	int ended;               /* the WebSocket is gone */
	sbx_buf status;          /* channel 3, bounded */
	char tail[ERR_TAIL];     /* the last bytes of stderr */
	size_t tail_len;
	char problem[300];       /* why we closed it ourselves */
	sbx_timer *report;       /* reports the close from the loop */
	char why[1600];
} k8s_pipe;

/* ---------------------------------------------------------------- ending */

/* "the command exited with code 3" or the Status message, from channel 3. */
static void describe_status(k8s_pipe *p, char *out, size_t len)
{
	out[0] = 0;
	if (sbx_buf_size(&p->status) == 0)
		return;
	json_error_t jerr;
	json_t *st = json_loadb((const char *)sbx_buf_head(&p->status), sbx_buf_size(&p->status), 0, &jerr);
	if (!st) {
		snprintf(out, len, "unreadable exec status: %.200s", (const char *)sbx_buf_head(&p->status));
		return;
	}
	const char *status = json_string_value(json_object_get(st, "status"));
	const char *reason = json_string_value(json_object_get(st, "reason"));
	const char *message = json_string_value(json_object_get(st, "message"));
	if (status && strcmp(status, "Success") == 0) {
		snprintf(out, len, "the command exited with code 0");
	} else if (reason && strcmp(reason, "NonZeroExitCode") == 0) {
		json_t *causes = json_object_get(json_object_get(st, "details"), "causes");
		const char *code = NULL;
		size_t i;
		json_t *c;
		json_array_foreach(causes, i, c)
		{
			const char *r = json_string_value(json_object_get(c, "reason"));
			if (r && strcmp(r, "ExitCode") == 0)
				code = json_string_value(json_object_get(c, "message"));
		}
		snprintf(out, len, "the command exited with code %s", code ? code : "?");
	} else {
		snprintf(out, len, "%s", message ? message : "the exec failed (no message)");
	}
	json_decref(st);
}

static void last_line(const char *buf, size_t n, char *out, size_t len)
{
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	size_t start = n;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	snprintf(out, len, "%.*s", (int)(n - start), buf + start);
}

static void report_now(sbx_loop *loop, void *ud)
{
	(void)loop;
	k8s_pipe *p = ud;
	p->report = NULL;
	p->t.ev.on_closed(p->t.ud, p->why);
}

static void ws_closed(void *ud, const sbx_error *why, int code, const char *reason)
{
	(void)code;
	(void)reason;
	k8s_pipe *p = ud;
	p->ended = 1;
	char status[600], err[300];
	describe_status(p, status, sizeof status);
	last_line(p->tail, p->tail_len, err, sizeof err);
	int n = snprintf(p->why, sizeof p->why, "the exec stream to %s ended", p->what);
	if (p->problem[0])
		n += snprintf(p->why + n, sizeof p->why - (size_t)n, ": %s", p->problem);
	if (status[0])
		n += snprintf(p->why + n, sizeof p->why - (size_t)n, ": %s", status);
	if (err[0])
		n += snprintf(p->why + n, sizeof p->why - (size_t)n, "; its stderr said: %s", err);
	if (why->status != SBX_OK)
		snprintf(p->why + n, sizeof p->why - (size_t)n, "; %s", why->message);
	/* never from inside the session's write: report from the loop */
	p->report = sbx_loop_timer(p->t.loop, 0, report_now, p);
}

/* ---------------------------------------------------------------- receiving */

static void ws_opened(void *ud, const char *protocol)
{
	k8s_pipe *p = ud;
	if (strcmp(protocol, PROTOCOLS[0]) == 0) {
		p->v5 = 1;
	} else if (strcmp(protocol, PROTOCOLS[1]) != 0) {
		snprintf(p->problem, sizeof p->problem,
			 "the API server agreed on no exec subprotocol we speak (offered %s, %s; got '%s')",
			 PROTOCOLS[0], PROTOCOLS[1], protocol);
		sbx_ws_close(p->ws, SBX_WS_PROTOCOL_ERROR, "unsupported subprotocol");
	}
}

static void keep_tail(k8s_pipe *p, const uint8_t *b, size_t n)
{
	if (n >= ERR_TAIL) {
		memcpy(p->tail, b + n - ERR_TAIL, ERR_TAIL);
		p->tail_len = ERR_TAIL;
		return;
	}
	if (p->tail_len + n > ERR_TAIL) {
		size_t drop = p->tail_len + n - ERR_TAIL;
		memmove(p->tail, p->tail + drop, p->tail_len - drop);
		p->tail_len -= drop;
	}
	memcpy(p->tail + p->tail_len, b, n);
	p->tail_len += n;
}

static void ws_message(void *ud, int opcode, const uint8_t *b, size_t n)
{
	k8s_pipe *p = ud;
	if (opcode != SBX_WS_BINARY || n == 0)
		return;
	switch (b[0]) {
	case CH_STDOUT:
		if (n > 1)
			p->t.ev.on_data(p->t.ud, b + 1, n - 1);
		break;
	case CH_STDERR:
		keep_tail(p, b + 1, n - 1);
		break;
	case CH_STATUS:
		if (sbx_buf_size(&p->status) + n - 1 <= STATUS_MAX)
			sbx_buf_append(&p->status, b + 1, n - 1);
		break;
	default:
		break; /* resize echoes, close-channel notes: nothing for us */
	}
}

static void ws_writable(void *ud)
{
	k8s_pipe *p = ud;
	p->t.ev.on_writable(p->t.ud);
}

/* ---------------------------------------------------------------- transport ops */

static long k8s_write(sbx_transport *t, const uint8_t *b, size_t n)
{
	k8s_pipe *p = (k8s_pipe *)t;
	if (p->ended)
		return -1;
	if (sbx_ws_queued(p->ws) >= SBX_WS_HIGH_WATER)
		return 0;
	size_t take = n < MAX_STDIN_MESSAGE ? n : MAX_STDIN_MESSAGE;
	uint8_t ch = CH_STDIN;
	sbx_ws_part parts[] = {{&ch, 1}, {b, take}};
	if (sbx_ws_send(p->ws, SBX_WS_BINARY, parts, 2) < 0)
		return -1;
	return (long)take;
}

static void k8s_want_write(sbx_transport *t, int on)
{
	k8s_pipe *p = (k8s_pipe *)t;
	if (!p->ended)
		sbx_ws_want_writable(p->ws, on);
}

static void k8s_close(sbx_transport *t)
{
	k8s_pipe *p = (k8s_pipe *)t;
	sbx_timer_cancel(t->loop, p->report);
	if (p->v5 && !p->ended) {
		/* v5: tell the server stdin is done, so the agent sees EOF even if
		 * the server keeps the process a moment after we hang up */
		uint8_t close_stdin[2] = {255, CH_STDIN};
		sbx_ws_part part = {close_stdin, 2};
		sbx_ws_send(p->ws, SBX_WS_BINARY, &part, 1);
	}
	sbx_ws_free(p->ws);
	sbx_buf_free(&p->status);
	free(p);
}

static const sbx_transport_ops k8s_ops = {"kubernetes exec", k8s_write, k8s_want_write, k8s_close};

/* ---------------------------------------------------------------- opening */

static int append_escaped(sbx_buf *b, const char *key, const char *value)
{
	char *e = sbx_curl()->easy_escape(NULL, value, 0);
	if (!e)
		return -1;
	int rc = sbx_buf_append(b, key, strlen(key));
	rc |= sbx_buf_append(b, e, strlen(e));
	sbx_curl()->free(e);
	return rc;
}

/* The exec URL: SERVER/api/v1/namespaces/NS/pods/POD/exec?... */
static char *exec_url(const sbx_k8s_conn *k, const sbx_k8s_exec *x, const char *const *argv)
{
	sbx_buf b = {0};
	size_t sl = strlen(k->server);
	while (sl > 0 && k->server[sl - 1] == '/')
		sl--;
	int rc = sbx_buf_append(&b, k->server, sl);
	rc |= append_escaped(&b, "/api/v1/namespaces/", x->ns ? x->ns : "default");
	rc |= append_escaped(&b, "/pods/", x->pod);
	rc |= sbx_buf_append(&b, "/exec?", 6);
	if (x->container && x->container[0])
		rc |= append_escaped(&b, "container=", x->container);
	for (int i = 0; argv[i]; i++)
		rc |= append_escaped(&b, b.data[b.len - 1] == '?' ? "command=" : "&command=", argv[i]);
	const char *flags = "&stdin=true&stdout=true&stderr=true&tty=false";
	rc |= sbx_buf_append(&b, flags, strlen(flags) + 1);
	if (rc) {
		sbx_buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

/* The fallback: the same exec through `kubectl exec -i` (stdin/stdout on a
 * socketpair, kubectl's stderr kept for the error message). */
static sbx_transport *kubectl_transport(sbx_loop *loop, const sbx_k8s_exec *x, const char *const *argv, char *err,
					size_t err_len)
{
	size_t nk = 0, na = 0;
	while (x->kubectl[nk])
		nk++;
	while (argv[na])
		na++;
	const char **full = calloc(nk + na + 10, sizeof *full);
	if (!full) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	size_t n = 0;
	for (size_t i = 0; i < nk; i++)
		full[n++] = x->kubectl[i];
	const char *fixed[] = {"exec", "-i", "-n", x->ns ? x->ns : "default", x->pod};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		full[n++] = fixed[i];
	if (x->container) {
		full[n++] = "-c";
		full[n++] = x->container;
	}
	full[n++] = "--";
	for (size_t i = 0; i < na; i++)
		full[n++] = argv[i];
	sbx_spawn_opts so = {.argv = full};
	sbx_transport *t = sbx_spawn_transport(loop, &so, err, err_len);
	free(full);
	return t;
}

sbx_transport *sbx_k8s_transport(sbx_loop *loop, const sbx_k8s_conn *k, const sbx_k8s_exec *x, char *err,
				 size_t err_len)
{
	static const char *const default_argv[] = {"sbx-agent", "--stdio", NULL};
	if (!x || !x->pod || !x->pod[0]) {
		snprintf(err, err_len, "no pod given to exec into");
		return NULL;
	}
	const char *const *argv = x->argv && x->argv[0] ? x->argv : default_argv;
	if (x->kubectl && x->kubectl[0])
		return kubectl_transport(loop, x, argv, err, err_len);
	if (!k || !k->server || !k->server[0]) {
		snprintf(err, err_len, "no Kubernetes API server given (the kubeconfig's cluster.server)");
		return NULL;
	}
	k8s_pipe *p = calloc(1, sizeof *p);
	char *url = exec_url(k, x, argv);
	char auth[8192] = "";
	if (k->token && k->token[0] &&
	    (size_t)snprintf(auth, sizeof auth, "Authorization: Bearer %s", k->token) >= sizeof auth) {
		snprintf(err, err_len, "the bearer token is too long");
		free(url);
		free(p);
		return NULL;
	}
	if (!p || !url) {
		snprintf(err, err_len, "out of memory");
		free(url);
		free(p);
		return NULL;
	}
	p->t.ops = &k8s_ops;
	p->t.loop = loop;
	snprintf(p->what, sizeof p->what, "pod %s/%s%s%s", x->ns ? x->ns : "default", x->pod,
		 x->container ? " container " : "", x->container ? x->container : "");
	const char *headers[] = {auth, NULL};
	sbx_ws_opts o = {
		.url = url,
		.headers = auth[0] ? headers : NULL,
		.protocols = PROTOCOLS,
		.tls = {.ca_pem = k->ca_pem, .cert_pem = k->client_cert_pem, .key_pem = k->client_key_pem,
			.server_name = k->tls_server_name, .proxy = k->proxy_url, .insecure = k->insecure},
		.ping_ms = x->ping_ms ? x->ping_ms : DEFAULT_PING_MS,
		.on_open = ws_opened,
		.on_message = ws_message,
		.on_writable = ws_writable,
		.on_close = ws_closed,
		.ud = p,
	};
	sbx_error e;
	p->ws = sbx_ws_connect(loop, &o, &e);
	free(url);
	if (!p->ws) {
		snprintf(err, err_len, "%s", e.message);
		free(p);
		return NULL;
	}
	return &p->t;
}

/* ---- dialing again ------------------------------------------------------------------------ */

struct sbx_k8s_dialer {
	sbx_loop *loop;
	sbx_k8s_conn k;         /* its token_ud is the dialer's */
	char *token;            /* the last one token_source gave */
	sbx_k8s_exec x;
	void **owned; /* the copies k and x point to */
	size_t n;
};

static void *own(sbx_k8s_dialer *d, void *p)
{
	void **grown = realloc(d->owned, (d->n + 1) * sizeof *grown);
	if (!p || !grown)
		abort();
	d->owned = grown;
	d->owned[d->n++] = p;
	return p;
}

static const char *keep(sbx_k8s_dialer *d, const char *s)
{
	return s ? own(d, strdup(s)) : NULL;
}

static const char *const *keep_argv(sbx_k8s_dialer *d, const char *const *argv)
{
	if (!argv)
		return NULL;
	size_t n = 0;
	while (argv[n])
		n++;
	const char **copy = own(d, calloc(n + 1, sizeof *copy));
	for (size_t i = 0; i < n; i++)
		copy[i] = keep(d, argv[i]);
	return copy;
}

sbx_k8s_dialer *sbx_k8s_dialer_new(sbx_loop *loop, const sbx_k8s_conn *k, const sbx_k8s_exec *x)
{
	sbx_k8s_dialer *d = calloc(1, sizeof *d);
	if (!d)
		abort();
	d->loop = loop;
	if (k)
		d->k = (sbx_k8s_conn){.server = keep(d, k->server), .ca_pem = keep(d, k->ca_pem),
				      .client_cert_pem = keep(d, k->client_cert_pem),
				      .client_key_pem = keep(d, k->client_key_pem), .token = keep(d, k->token),
				      .tls_server_name = keep(d, k->tls_server_name), .proxy_url = keep(d, k->proxy_url),
				      .insecure = k->insecure, .token_source = k->token_source, .token_ud = k->token_ud,
				      .token_free = k->token_free};
	d->x = (sbx_k8s_exec){.ns = keep(d, x->ns), .pod = keep(d, x->pod), .container = keep(d, x->container),
			      .argv = keep_argv(d, x->argv), .ping_ms = x->ping_ms, .kubectl = keep_argv(d, x->kubectl)};
	return d;
}

sbx_transport *sbx_k8s_dialer_dial(void *dialer, char *err, size_t err_len)
{
	sbx_k8s_dialer *d = dialer;
	if (d->k.token_source) { /* the token read at the start may have expired since */
		char why[1200];
		const char *t = d->k.token_source(d->k.token_ud, why, sizeof why);
		if (!t) {
			snprintf(err, err_len, "%s", why);
			return NULL;
		}
		char *copy = strdup(t);
		if (!copy) {
			snprintf(err, err_len, "out of memory");
			return NULL;
		}
		free(d->token);
		d->token = copy;
		d->k.token = copy;
	}
	return sbx_k8s_transport(d->loop, &d->k, &d->x, err, err_len);
}

void sbx_k8s_dialer_free(void *dialer)
{
	sbx_k8s_dialer *d = dialer;
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->owned[i]);
	free(d->owned);
	free(d->token);
	if (d->k.token_free)
		d->k.token_free(d->k.token_ud);
	free(d);
}
