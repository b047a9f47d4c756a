/* backend.h — what the sbx commands ask of a backend.
 *
 * A backend (local, k8s, ec2, docker) is one const cli_backend; the table
 * in backends.c lists them. `sbx up --backend NAME` calls its up; exec, cp,
 * ls and down find a sandbox's backend by the name its state records
 * (cli_sandbox.backend, STATE/NAME/backend; "local" when absent) and call
 * only through this struct. The state store (state.c) knows no backend.
 *
 * Ownership: sb is the caller's and stays valid during a call; a backend
 * keeps what it needs across CLI calls in files under sb->dir, which down
 * removes with the rest of the state (the caller does that after down). */
#ifndef SBX_CLI_BACKEND_H
#define SBX_CLI_BACKEND_H

#include "cli.h"

typedef struct cli_backend {
	const char *name;
	/* `sbx up ...` with the whole argv (argv[0] is "up"); generated_name is
	 * the random name to use when none is given. Returns the exit code. */
	int (*up)(int argc, char **argv, const char *generated_name);
	/* A ready session to service svc of sb, or NULL after printing why. */
	sbx_session *(*connect)(sbx_loop *loop, const cli_sandbox *sb, const char *svc);
	/* Lets go of a session connect returned, ending what it holds
	 * remotely (EC2: its Session Manager sessions). NULL: closing it is
	 * enough. */
	void (*release)(sbx_loop *loop, sbx_session *s);
	/* Removes what sb holds outside its state directory (processes,
	 * containers, releases, instances). 0, or -1 after printing why (the
	 * caller then keeps the state, so `sbx down NAME` can be retried). */
	int (*down)(const cli_sandbox *sb);
	/* `sbx down --all --backend NAME`; NULL: down on each of its sandboxes. */
	int (*down_all)(int argc, char **argv);
	/* `sbx ls`: prints sb's services, as table rows or, with json, as
	 * `, "services": [...]` plus any fields of its own (cmd_ls.c prints the
	 * name and backend before and the closing brace after). */
	void (*ls)(const cli_sandbox *sb, int json);
	/* Its sandboxes may have connection holders (hold.c): connect tries
	 * the service's holder first. */
	int held;
} cli_backend;

/* backends.c */
const cli_backend *cli_backend_find(const char *name); /* NULL when unknown */
const cli_backend *cli_backend_of(const cli_sandbox *sb);
/* "local, k8s, ec2 or docker", for messages. */
const char *cli_backend_names(void);

/* One service row of `sbx ls` (ls_row.c), for the backends' ls: agent is
 * the AGENT column ("pid 42", "dead", "k8s"), where the WORKDIR column. */
void cli_ls_service(const cli_sandbox *sb, int k, int json, int pid, int running, const char *agent,
		    const char *where);

extern const cli_backend cli_local_backend;
extern const cli_backend cli_k8s_backend;
extern const cli_backend cli_ec2_backend;
extern const cli_backend cli_docker_backend;

#endif
