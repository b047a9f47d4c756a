/* streams.c — stream table (see streams.h). */
#include "streams.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(const sbx_streams *t, uint32_t id)
{
	/* Fibonacci hashing spreads sequential ids across the table. The
	 * product's low bits depend only on the id's low bits (ids that differ
	 * only above the mask would all share one slot), so fold the high
	 * half, which depends on every bit, into the low half. */
	uint32_t h = id * 2654435769u;
	return (size_t)((h ^ (h >> 16)) & (uint32_t)(t->cap - 1));
}

sbx_stream *sbx_streams_get(sbx_streams *t, uint32_t id)
{
	if (t->cap == 0 || id == 0)
		return NULL;
	for (size_t i = slot_of(t, id);; i = (i + 1) & (t->cap - 1)) {
		if (t->slots[i].id == id)
			return &t->slots[i];
		if (t->slots[i].id == 0)
			return NULL;
	}
}

static int grow(sbx_streams *t)
{
	size_t old_cap = t->cap;
	sbx_stream *old = t->slots;
	size_t cap = old_cap ? old_cap * 2 : 16;
	sbx_stream *slots = calloc(cap, sizeof *slots);
	if (!slots)
		return -1;
	t->slots = slots;
	t->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].id == 0)
			continue;
		size_t j = slot_of(t, old[i].id);
		while (slots[j].id != 0)
			j = (j + 1) & (cap - 1);
		slots[j] = old[i];
	}
	free(old);
	return 0;
}

sbx_stream *sbx_streams_add(sbx_streams *t, uint32_t id)
{
	if (id == 0 || sbx_streams_get(t, id))
		return NULL;
	if ((t->count + 1) * 4 > t->cap * 3 && grow(t) < 0)
		return NULL;
	size_t i = slot_of(t, id);
	while (t->slots[i].id != 0)
		i = (i + 1) & (t->cap - 1);
	memset(&t->slots[i], 0, sizeof t->slots[i]);
	t->slots[i].id = id;
	t->count++;
	return &t->slots[i];
}

void sbx_streams_del(sbx_streams *t, uint32_t id)
{
	sbx_stream *s = sbx_streams_get(t, id);
	if (!s)
		return;
	size_t mask = t->cap - 1;
	size_t hole = (size_t)(s - t->slots);
	/* Backward-shift: pull later members of the probe run into the hole. */
	for (size_t j = (hole + 1) & mask; t->slots[j].id != 0; j = (j + 1) & mask) {
		size_t home = slot_of(t, t->slots[j].id);
		/* Move j into hole if home is not cyclically within (hole, j]. */
		int within = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
		if (!within) {
			t->slots[hole] = t->slots[j];
			hole = j;
		}
	}
	t->slots[hole].id = 0;
	t->count--;
}

void sbx_streams_free(sbx_streams *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = t->count = 0;
}
