/* cli.h — shared pieces of the sbx command line: the state directory of
 * local sandboxes, argument helpers, JSON output, and the commands. */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include <stdio.h>
#include <sys/types.h>

#include "sbx.h"
#include "termtext.h" /* every message goes through cli_say */

#define CLI_MAX_SERVICES 32

/* One sandbox: a set of agents (one per service) and its state in
 * STATE/NAME/; its backend (backend.h) says what the files there mean. */
typedef struct cli_sandbox {
	char name[64];
	char dir[4096];                    /* STATE/NAME */
	int nservices;
	char services[CLI_MAX_SERVICES][64]; /* the default service first */
	char backend[16];                  /* its backend.h name (STATE/NAME/backend; "local" when absent) */
} cli_sandbox;

/* state.c */
const char *cli_state_dir(void);
int cli_sandbox_load(const char *name, cli_sandbox *sb);       /* 0, or -1 (no such sandbox) */
/* Every sandbox's name, sorted; free with cli_names_free. 0, or -1 (said why). */
typedef struct cli_names {
	int n;
	char (*name)[64]; /* malloc'd, n names */
} cli_names;
int cli_sandbox_names(cli_names *out);
void cli_names_free(cli_names *names);
void cli_service_path(const cli_sandbox *sb, const char *svc, const char *what, char *out, size_t len);
void cli_print_no_sandbox(const char *name);
/* The last non-empty line of a service's log ("" when none). */
void cli_last_log_line(const cli_sandbox *sb, const char *svc, char *out, size_t len);
int cli_valid_name(const char *name);
/* Removes path and all under it: 0 once it is gone, or -1 with errno. */
int cli_remove_tree(const char *path);
/* Removes sb's state directory, its services file last (a failure leaves
 * the sandbox listed). 0, or -1 with errno. */
int cli_sandbox_remove(const cli_sandbox *sb);
/* Write a whole file (through PATH.tmp + rename). 0, or -1 with err. */
int cli_write_file(const char *path, const char *data, size_t len, char *err, size_t err_len);

/* backends.c: resolves "NAME[/SERVICE]" and connects through the
 * sandbox's backend; prints a helpful error and returns NULL on failure. */
sbx_session *cli_connect(sbx_loop *loop, const char *target, cli_sandbox *sb, const char **svc);
/* The same without trying the service's connection holder first. */
sbx_session *cli_connect_direct(sbx_loop *loop, const char *target, cli_sandbox *sb, const char **svc);
/* Lets go of a session either returned: closes it, and ends what its
 * backend holds for it remotely (backend.h release). NULL is fine. */
void cli_disconnect(sbx_loop *loop, sbx_session *s);

/* stop_signals.c: INT/TERM/HUP set *done (blocked; read from a signalfd on
 * loop). The fd, or -1; undo with cli_unwatch_stop_signals. */
int cli_watch_stop_signals(sbx_loop *loop, int *done);
void cli_unwatch_stop_signals(sbx_loop *loop, int sfd);

/* hold.c: connection holders (cmd_hold.c), STATE/NAME/hold/SVC.{sock,pid,log}. */
/* That path (svc NULL: the directory itself). */
void cli_hold_path(const cli_sandbox *sb, const char *svc, const char *what, char *out, size_t len);
/* Makes the directory (0700, ours). 0, or -1. */
int cli_hold_dir(const cli_sandbox *sb);
/* A ready session through svc's holder, or NULL (none, or it did not answer). */
sbx_session *cli_hold_connect(sbx_loop *loop, const cli_sandbox *sb, const char *svc);
/* Starts a holder per service and waits for their sockets (a note when one fails). */
void cli_hold_start(const cli_sandbox *sb);
/* Stops sb's holders (SIGTERM; waits for them to go). */
void cli_hold_stop(const cli_sandbox *sb);

/* local_up.c: the local backend's services. */
pid_t cli_service_pid(const cli_sandbox *sb, const char *svc); /* 0 when not running */
/* A contained service's box (STATE/NAME/SVC.box): 0, or -1 for --host. */
struct sbx_box;
int cli_service_box(const cli_sandbox *sb, const char *svc, struct sbx_box *b);
/* A new session to a local service's agent (not yet ready). */
sbx_session *cli_local_session(sbx_loop *loop, const cli_sandbox *sb, const char *svc, sbx_error *err);
/* local_up.c: `sbx up` of the local backend and, given k8s_start (which
 * starts sb's services from the values file), of the k8s backend: both
 * parse the same arguments and write the same state. */
typedef int cli_k8s_start_fn(const cli_sandbox *sb, const char *values, const char *context, const char *ns,
			     int kubectl);
int cli_local_up(int argc, char **argv, const char *generated_name, cli_k8s_start_fn *k8s_start);

/* secret.c: each local agent's secret, STATE/NAME/SVC.key (mode 0600). */
/* Makes a fresh one; path receives the file for the agent's --secret-file. 0, or -1 (said why). */
int cli_service_secret_create(const cli_sandbox *sb, const char *svc, char *path, size_t len);
/* Points so at it (path holds the file name and must outlive the session's creation). */
void cli_service_session_opts(const cli_sandbox *sb, const char *svc, sbx_session_opts *so, char *path,
			      size_t len);

/* cmd_compose.c: a compose file as values YAML (malloc'd; warnings on
 * stderr), or NULL with err. */
char *cli_compose_values(const char *path, char *err, size_t err_len);

/* cmd_ec2.c: EC2 sandboxes (STATE/NAME/ec2 records the instance). */
int cli_ec2_up(int argc, char **argv, const char *generated_name);
sbx_session *cli_ec2_connect(sbx_loop *loop, const cli_sandbox *sb);
void cli_ec2_release(sbx_loop *loop, sbx_session *s);
int cli_ec2_down(const cli_sandbox *sb);
int cli_ec2_down_all(int argc, char **argv);
int cli_ec2_describe(const cli_sandbox *sb, char *instance_id, size_t idlen, char *region, size_t regionlen);
/* k8s_backend.c: sandboxes on Kubernetes (STATE/NAME/k8s records them). */
struct sbx_k8s_sandbox;
int cli_k8s_load(const cli_sandbox *sb, struct sbx_k8s_sandbox *k); /* 0, or -1: not a k8s sandbox */
int cli_k8s_up(const cli_sandbox *sb, const char *values, const char *context, const char *ns, int kubectl);
int cli_k8s_down(const cli_sandbox *sb);
sbx_session *cli_k8s_connect(sbx_loop *loop, const cli_sandbox *sb, const char *svc);

/* args.c: values of options. */
#define CLI_MAX_SECONDS (86400.0 * 365) /* the longest timeout the agent honours */
#define CLI_MAX_ENV 1024
typedef struct cli_env {
	int n;
	char *items[CLI_MAX_ENV + 1]; /* "K=V", malloc'd, NULL-terminated */
} cli_env;
long long cli_parse_size(const char *s);              /* bytes, or -1 */
int cli_parse_seconds(const char *s, double *out);    /* 0, or -1 */
int cli_env_add(cli_env *e, const char *spec, const char *where); /* 0, or -1 (said why) */
int cli_env_file(cli_env *e, const char *path);       /* 0, or -1 (said why) */
void cli_env_free(cli_env *e);

/* term.c: this side's terminal under a remote pty. */
int cli_term_raw(int fd);      /* raw mode until cli_term_restore or exit; 0, or -1 */
void cli_term_restore(void);   /* idempotent */
int cli_term_size(int fd, unsigned *rows, unsigned *cols); /* 0, or -1: no terminal */

/* json.c */
void json_str(FILE *f, const char *s, size_t n); /* a JSON string, invalid UTF-8 as U+FFFD */

/* commands */
int cmd_up(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_down(int argc, char **argv);
int cmd_compose2values(int argc, char **argv);
int cmd_k8s_config(int argc, char **argv);
int cmd_port_forward(int argc, char **argv);
int cmd_hold(int argc, char **argv);
int cmd_ps(int argc, char **argv);   /* cmd_jobs.c: detached commands */
int cmd_logs(int argc, char **argv);
int cmd_kill(int argc, char **argv);

/* Exit codes follow shell conventions. */
#define EXIT_USAGE 2
#define EXIT_SBX_ERROR 125   /* sbx itself failed (like docker run) */
#define EXIT_NOT_EXEC 126
#define EXIT_NOT_FOUND 127
#define EXIT_TIMEOUT 124     /* like timeout(1) */

#endif
