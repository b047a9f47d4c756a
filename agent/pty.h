/* pty.h — terminals for commands (EXEC with `tty`): a pseudo-terminal
 * pair, the child's side made its controlling terminal, window sizes.
 * The exec kind (exec.c) owns the master as the command's output (and,
 * with stdin, its input); nothing here keeps state. */
#ifndef SBX_AGENT_PTY_H
#define SBX_AGENT_PTY_H

#include <stddef.h>

#define AGENT_PTY_ROWS 24 /* when the host gives no size */
#define AGENT_PTY_COLS 80

/* A new pty with the window size rows x cols: the master (non-blocking,
 * close-on-exec) in *master and the child side's path in slave. 0, or
 * -1 with errno. */
int agent_pty_open(unsigned rows, unsigned cols, int *master, char *slave, size_t len);
/* In the child, after setsid(): opens slave as the controlling terminal
 * and makes it stdin, stdout and stderr. Only system calls (safe after
 * vfork). 0, or -1 with errno. */
int agent_pty_child(const char *slave);
/* A new window size: the kernel sends SIGWINCH to the terminal's
 * foreground process group. */
void agent_pty_resize(int master, unsigned rows, unsigned cols);
/* Makes the child side owned by uid (a command run as another user can
 * then reopen it, as /dev/tty). Best effort. */
void agent_pty_chown(const char *slave, unsigned uid);

#endif
