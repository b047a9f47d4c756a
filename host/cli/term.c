/* term.c — this side's terminal while a sandbox's pty owns it (`sbx exec
 * -it`, `sbx shell`): raw mode, so every key (Ctrl-C, Ctrl-Z, ...) goes to
 * the remote terminal, restored on every exit path (return, exit(), a
 * fatal signal; SIGKILL alone cannot be caught), and the window size. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

static struct termios saved;
static int saved_fd = -1;

void cli_term_restore(void)
{
	if (saved_fd < 0)
		return;
	tcsetattr(saved_fd, TCSADRAIN, &saved);
	saved_fd = -1;
}

/* A fatal signal: put the terminal back, then die of it as before. */
static void on_fatal(int sig)
{
	if (saved_fd >= 0)
		tcsetattr(saved_fd, TCSADRAIN, &saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_fatal_signals(void)
{
	static const int sigs[] = {SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
}

int cli_term_raw(int fd)
{
	struct termios t;
	if (saved_fd >= 0 || tcgetattr(fd, &t) < 0)
		return -1;
	saved = t;
	saved_fd = fd;
	static int registered;
	if (!registered++) {
		atexit(cli_term_restore);
		catch_fatal_signals();
	}
	cfmakeraw(&t);
	if (tcsetattr(fd, TCSADRAIN, &t) < 0) {
		saved_fd = -1;
		return -1;
	}
	return 0;
}

int cli_term_size(int fd, unsigned *rows, unsigned *cols)
{
	struct winsize ws;
	if (ioctl(fd, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 || ws.ws_col == 0)
		return -1;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return 0;
}
