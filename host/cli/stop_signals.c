/* stop_signals.c — INT, TERM and HUP as a flag for the CLI's long-running
 * commands (port-forward, hold): blocked and read from a signalfd on the
 * loop, so that the command leaves its loop and cleans up. */
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"

static void on_signal(sbx_loop *loop, int fd, unsigned events, void *ud)
{
	(void)loop;
	(void)events;
	int *done = ud;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == sizeof si)
		*done = 1;
}

int cli_watch_stop_signals(sbx_loop *loop, int *done)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd >= 0)
		sbx_loop_watch(loop, sfd, SBX_EV_READ, on_signal, done);
	return sfd;
}

void cli_unwatch_stop_signals(sbx_loop *loop, int sfd)
{
	if (sfd < 0)
		return;
	sbx_loop_unwatch(loop, sfd);
	close(sfd);
}
