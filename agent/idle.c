/* idle.c — `sbx-agent --idle`: a container's main process when neither the
 * service nor its image names one. It does nothing until asked to stop,
 * reaping whatever children it inherits as PID 1, so an image needs no
 * shell, no sleep and no stdin held open by the engine (Podman does not
 * hold one open for an unattached container). */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void on_child(int sig)
{
	(void)sig;
}

int agent_idle(void)
{
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_child;
	sigaction(SIGCHLD, &sa, NULL);
	while (!g_stop) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!g_stop)
			pause();
	}
	return 0;
}
