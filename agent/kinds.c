/* kinds.c — the job kinds this agent serves, in the order the loop offers
 * them each message and phase: the one place that lists them (kind.h). The
 * agent's HELLO offers what they declare (caps, listen_caps). */
#include "agent.h"
#include "kind.h"

static const agent_kind *const kinds[] = {&agent_exec_kind, &agent_files_kind, &agent_forward_kind,
					   &agent_detached_kind, NULL};

int agent_serve(agent *ag)
{
	for (int i = 0; kinds[i]; i++)
		ag->hello.caps |= kinds[i]->caps | (ag->stdio ? 0 : kinds[i]->listen_caps);
	return agent_run(ag, kinds);
}
