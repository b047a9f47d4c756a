/* ledger.c — the highest command number seen per host (see ledger.h). */
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

/* Splits PREFIX-N; 0 on success. */
static int split_key(const char *key, size_t *prefix_len, uint64_t *n)
{
	const char *dash = strrchr(key, '-');
	if (!dash || dash == key || (size_t)(dash - key) >= LEDGER_PREFIX || !dash[1])
		return -1;
	char *end;
	unsigned long long v = strtoull(dash + 1, &end, 10);
	if (*end || dash[1] < '0' || dash[1] > '9')
		return -1;
	*prefix_len = (size_t)(dash - key);
	*n = v;
	return 0;
}

static const ledger_entry *find(const ledger *l, const char *key, size_t len)
{
	for (int i = 0; i < l->n; i++)
		if (strlen(l->e[i].prefix) == len && memcmp(l->e[i].prefix, key, len) == 0)
			return &l->e[i];
	return NULL;
}

void ledger_note(ledger *l, const char *key)
{
	size_t len;
	uint64_t n;
	if (!key || split_key(key, &len, &n) < 0)
		return;
	ledger_entry *e = (ledger_entry *)find(l, key, len);
	if (!e) {
		if (l->n < LEDGER_MAX) {
			e = &l->e[l->n++];
		} else { /* drop the least recently used prefix */
			e = &l->e[0];
			for (int i = 1; i < l->n; i++)
				if (l->e[i].used < e->used)
					e = &l->e[i];
			l->dropped = 1;
		}
		memcpy(e->prefix, key, len);
		e->prefix[len] = 0;
		e->highest = n;
	}
	if (n > e->highest)
		e->highest = n;
	e->used = ++l->clock;
}

int ledger_never_sent(const ledger *l, const char *key)
{
	size_t len;
	uint64_t n;
	if (!key || split_key(key, &len, &n) < 0)
		return 0;
	const ledger_entry *e = find(l, key, len);
	if (!e)
		return !l->dropped;
	return n > e->highest;
}
