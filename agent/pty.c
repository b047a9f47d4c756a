/* pty.c — pseudo-terminals for commands (pty.h): posix_openpt, grantpt,
 * unlockpt, a window size, and in the child setsid's companion, the
 * controlling terminal (TIOCSCTTY) on fds 0, 1 and 2. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "pty.h"

void agent_pty_resize(int master, unsigned rows, unsigned cols)
{
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	ioctl(master, TIOCSWINSZ, &ws);
}

int agent_pty_open(unsigned rows, unsigned cols, int *master, char *slave, size_t len)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -1;
	if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, slave, len) != 0) {
		int e = errno;
		close(m);
		errno = e ? e : EIO;
		return -1;
	}
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	agent_pty_resize(m, rows ? rows : AGENT_PTY_ROWS, cols ? cols : AGENT_PTY_COLS);
	*master = m;
	return 0;
}

int agent_pty_child(const char *slave)
{
	int fd = open(slave, O_RDWR);
	if (fd < 0)
		return -1;
	if (ioctl(fd, TIOCSCTTY, 0) < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		return -1;
	if (fd > 2)
		close(fd);
	return 0;
}

void agent_pty_chown(const char *slave, unsigned uid)
{
	if (chown(slave, (uid_t)uid, (gid_t)-1) < 0) {
		/* best effort: the command still has the terminal on its fds */
	}
}
