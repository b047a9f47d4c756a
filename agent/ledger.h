/* ledger.h — which commands each host has sent this agent, so that ATTACH
 * can tell a command that never arrived (safe to send again) from one that
 * ran and whose result is gone (never to be run twice).
 *
 * A host names its commands PREFIX-N: one random PREFIX per host session,
 * N counting up in the order the EXECs are sent. Over an ordered stream,
 * an EXEC numbered above the highest N seen for its prefix has not
 * arrived. The ledger keeps that highest N for up to LEDGER_MAX prefixes;
 * once it had to drop one, it no longer vouches for unknown prefixes. */
#ifndef SBX_AGENT_LEDGER_H
#define SBX_AGENT_LEDGER_H

#include <stdint.h>

#define LEDGER_MAX 256
#define LEDGER_PREFIX 32

typedef struct ledger_entry {
	char prefix[LEDGER_PREFIX];
	uint64_t highest;
	uint64_t used;     /* for dropping the least recently used */
} ledger_entry;

typedef struct ledger {
	ledger_entry e[LEDGER_MAX];
	int n;
	int dropped;       /* a prefix was forgotten: unknown ones prove nothing */
	uint64_t clock;
} ledger;

/* An EXEC with this key arrived (keys not shaped PREFIX-N are ignored). */
void ledger_note(ledger *l, const char *key);
/* 1 when the EXEC with this key cannot have arrived yet, else 0. */
int ledger_never_sent(const ledger *l, const char *key);

#endif
