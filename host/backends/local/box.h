/* box.h — a local sandbox as an OCI container ("a box").
 *
 * sbx writes a bundle (a private root filesystem, a generated /etc and the
 * runtime's config.json) into a directory of its own and has a kept OCI
 * runtime (crun, runc, or runsc for gVisor) run the agent inside it. The
 * agent's stream is unchanged: the container's stdio (or one inherited
 * listening socket) is the agent's.
 *
 *   bundle.c   the bundle directory: rootfs skeleton, /etc, config.json
 *   oci.c      config.json itself (namespaces, ids, mounts, limits, seccomp)
 *   runtime.c  which runtime, and running, killing and deleting containers
 *   service.c  what a values.yaml service says (env, workingDir, user, limits)
 *   transport.c  a box as a transport (the library's sbx_session_local)
 *
 * Bundle layout (BUNDLE is private: 0711 so the container's mapped root can
 * reach rootfs/, nothing in it readable by others):
 *   BUNDLE/config.json  0600
 *   BUNDLE/rootfs/      the container's /, owned by its root
 *   BUNDLE/state/       0700, the runtime's --root
 *   BUNDLE/pid          the agent's host pid, written by the runtime */
#ifndef SBX_BOX_H
#define SBX_BOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sbx.h"

/* Where the agent binary appears inside every box (read-only). */
#define SBX_BOX_AGENT "/.sbx/sbx-agent"
/* The default working directory (and root's home) inside. */
#define SBX_BOX_WORKDIR "/root"
/* The id range a box's ids map to when the host is root. */
#define SBX_BOX_HOST_ID 100000u
#define SBX_BOX_ID_COUNT 65536u

typedef struct sbx_box {
	char runtime[16];       /* "runc", "crun" or "runsc" */
	char runtime_path[256]; /* the program */
	char bundle[4096];
	char id[96];            /* the container id (also its cgroup name) */
	uid_t host_root;        /* the host id of root inside */
} sbx_box;

/* Chooses the runtime (o->runtime, $SBX_RUNTIME, else the first that
 * works here) and fills b->runtime*. 0, or -1 with err naming the fix. */
int sbx_box_pick_runtime(sbx_box *b, const sbx_box_opts *o, char *err, size_t len);

/* Writes the bundle in a new directory `bundle` (which must not exist) to
 * run agent_argv (argv[0] is replaced by the agent's path inside). 0, or
 * -1 with err and nothing left behind. */
int sbx_box_prepare(sbx_box *b, const sbx_box_opts *o, const char *bundle, const char *id,
		    const char *agent_path, const char *const *agent_argv, char *err, size_t len);

/* config.json for b (oci.c). 0, or -1 with err. */
int sbx_box_write_config(const sbx_box *b, const sbx_box_opts *o, const char *const *args, char *err, size_t len);

/* Whether o asks for any cgroup limit (all three can be switched off). */
int sbx_box_wants_limits(const sbx_box_opts *o);

/* Starts the runtime on the container, the agent's stdio on in/out/errfd
 * and the nkeep (0..2) fds in keep its fds 3 and 4. Returns the runtime's
 * pid, or -1 with err. detach: the runtime exits once the agent runs (see
 * sbx_box_started), leaving no process of its own per box; else it stays
 * as the agent's parent. */
pid_t sbx_box_run(const sbx_box *b, int detach, int in, int out, int errfd, const int *keep, int nkeep, char *err,
		  size_t len);
/* Waits for a detached runtime: 0 when the container started, else -1. */
int sbx_box_started(const sbx_box *b, pid_t runtime_pid, char *err, size_t len);

/* Where a box's agent listens inside when no socket can be handed in
 * (runsc passes no extra fds): reached through the runtime's exec. */
#define SBX_BOX_INNER_SOCKET "/run/sbx-agent.sock"
/* The command whose stdio reaches that agent (`RUNTIME exec ID agent
 * --attach SOCKET`), for runtimes that need it: 0 with argv filled, or -1
 * (the box's agent listens on a socket sbx handed it). */
int sbx_box_attach_argv(const sbx_box *b, const char **argv, int max);
/* The command that starts a second agent in the box on its stdio
 * (`RUNTIME exec --cwd /root ID agent --stdio`): for a box whose own agent serves
 * only the session that started it (a Python sample's). 0, or -1 when
 * argv (max entries) is too small. */
int sbx_box_stdio_argv(const sbx_box *b, const char **argv, int max);

/* The agent's host pid (from BUNDLE/pid), or 0. */
pid_t sbx_box_pid(const sbx_box *b);

/* Kills every process of the container and deletes it (the runtime's
 * delete -f), then removes the bundle. Safe to call twice. */
void sbx_box_destroy(const sbx_box *b);

/* transport.c: a fresh container id ("sbx-" + 12 hex digits). */
void sbx_box_new_id(char *out, size_t len);
/* 0 when the box's root can reach a bundle made at this path, else -1
 * with err naming the directory in the way. */
int sbx_box_check_reachable(const char *bundle, char *err, size_t len);

/* service.c: what a service of a values.yaml says about its box. */
typedef struct sbx_box_service {
	char image[512];   /* "" when none */
	char workdir[1024];
	char user[64];     /* "UID[:GID]" from securityContext */
	char **env;        /* "K=V", NULL-terminated (NULL when none) */
	size_t nenv;
	uint64_t memory;   /* resources.limits.memory in bytes; 0: not given */
	double cpus;       /* resources.limits.cpu; 0: not given */
} sbx_box_service;
/* values: a values.yaml or a compose file (translated first); is_default:
 * svc is the default service (which a translation names "default"). */
int sbx_box_service_read(const char *values, const char *svc, int is_default, sbx_box_service *out, char *err,
			 size_t len);
void sbx_box_service_free(sbx_box_service *s);
/* Fills what o leaves unset from s (s must outlive o's use). */
void sbx_box_service_apply(const sbx_box_service *s, sbx_box_opts *o);

/* Remembers a box from its bundle directory (runtime.c writes
 * BUNDLE/runtime): 0, or -1 when the bundle is not a box's. */
int sbx_box_load(sbx_box *b, const char *bundle);

#endif
