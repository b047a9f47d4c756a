/* test_streams.c — common/streams.c: the open-addressing stream table.
 * Thousands of ids (sequential, random, and patterns that collide in a
 * weak hash), deletions in every order with everything else still found
 * (backward-shift deletion must keep probe runs intact, also across the
 * table's wrap-around), duplicates and id 0 refused, and a randomized
 * comparison against a trivially correct model. */
#include "streams.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* Every occupied slot is reachable and the count matches. */
static int consistent(sbx_streams *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i].id == 0)
			continue;
		n++;
		if (sbx_streams_get(t, t->slots[i].id) != &t->slots[i])
			return 0;
	}
	return n == t->count;
}

/* Longest run of consecutive occupied slots (cyclically). */
static size_t longest_run(const sbx_streams *t)
{
	size_t best = 0, run = 0;
	if (t->count == t->cap)
		return t->cap;
	for (size_t k = 0; k < 2 * t->cap; k++) {
		if (t->slots[k & (t->cap - 1)].id != 0) {
			if (++run > best)
				best = run;
		} else {
			run = 0;
		}
	}
	return best;
}

static void shuffle(uint32_t *a, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = rnd32() % i;
		uint32_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

static void test_basic(void)
{
	sbx_streams t = {0};
	CHECK(sbx_streams_get(&t, 1) == NULL); /* empty, never allocated */
	sbx_streams_del(&t, 1);                 /* harmless */
	sbx_stream *s = sbx_streams_add(&t, 7);
	CHECK(s != NULL);
	CHECK_EQ_INT(s->id, 7);
	CHECK_EQ_INT(s->send_credit, 0);
	CHECK(s->user == NULL);
	s->send_credit = 1234;
	CHECK(sbx_streams_get(&t, 7) == s);
	CHECK_EQ_INT(sbx_streams_get(&t, 7)->send_credit, 1234);
	CHECK_EQ_INT(t.count, 1);
	/* duplicate */
	CHECK(sbx_streams_add(&t, 7) == NULL);
	CHECK_EQ_INT(t.count, 1);
	CHECK_EQ_INT(sbx_streams_get(&t, 7)->send_credit, 1234);
	/* id 0 */
	CHECK(sbx_streams_add(&t, 0) == NULL);
	CHECK(sbx_streams_get(&t, 0) == NULL);
	sbx_streams_del(&t, 0);
	CHECK_EQ_INT(t.count, 1);
	/* max id */
	CHECK(sbx_streams_add(&t, UINT32_MAX) != NULL);
	CHECK(sbx_streams_get(&t, UINT32_MAX) != NULL);
	/* deleting an absent id changes nothing */
	sbx_streams_del(&t, 8);
	CHECK_EQ_INT(t.count, 2);
	sbx_streams_del(&t, 7);
	CHECK(sbx_streams_get(&t, 7) == NULL);
	CHECK_EQ_INT(t.count, 1);
	sbx_streams_del(&t, 7);
	CHECK_EQ_INT(t.count, 1);
	/* re-added streams start zeroed */
	s = sbx_streams_add(&t, 7);
	CHECK(s != NULL);
	CHECK_EQ_INT(s->send_credit, 0);
	CHECK_EQ_INT(s->sent_end, 0);
	sbx_streams_free(&t);
	CHECK_EQ_INT(t.count, 0);
	CHECK(sbx_streams_get(&t, 7) == NULL);
	/* The table grows before it is 3/4 full: 12 ids fit in 16 slots,
	 * the 13th doubles it. */
	for (uint32_t id = 1; id <= 12; id++)
		CHECK(sbx_streams_add(&t, id) != NULL);
	CHECK_EQ_INT(t.cap, 16);
	CHECK(sbx_streams_add(&t, 13) != NULL);
	CHECK_EQ_INT(t.cap, 32);
	for (uint32_t id = 1; id <= 13; id++)
		CHECK(sbx_streams_get(&t, id) != NULL);
	sbx_streams_free(&t);
	/* usable again after free */
	CHECK(sbx_streams_add(&t, 3) != NULL);
	sbx_streams_free(&t);
}

/* Adds all ids, checks them, deletes them in a shuffled order checking all
 * the remaining ones after each deletion batch, then re-adds. */
static int exercise(uint32_t *ids, size_t n, char *why, size_t why_len)
{
	sbx_streams t = {0};
	for (size_t i = 0; i < n; i++) {
		sbx_stream *s = sbx_streams_add(&t, ids[i]);
		if (!s) {
			snprintf(why, why_len, "add #%zu (%u) failed", i, ids[i]);
			return -1;
		}
		s->user = &ids[i];
	}
	if (t.count != n || t.count * 4 > t.cap * 3) {
		snprintf(why, why_len, "count %zu cap %zu", t.count, t.cap);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (sbx_streams_add(&t, ids[i]) != NULL) {
			snprintf(why, why_len, "duplicate %u accepted", ids[i]);
			return -1;
		}
		sbx_stream *s = sbx_streams_get(&t, ids[i]);
		if (!s || s->user != &ids[i]) {
			snprintf(why, why_len, "id %u lost after adds", ids[i]);
			return -1;
		}
	}
	uint32_t *order = malloc(n * sizeof *order);
	memcpy(order, ids, n * sizeof *order);
	shuffle(order, n);
	size_t step = n / 50 + 1;
	for (size_t i = 0; i < n; i++) {
		sbx_streams_del(&t, order[i]);
		if (sbx_streams_get(&t, order[i])) {
			snprintf(why, why_len, "id %u still found after delete", order[i]);
			free(order);
			return -1;
		}
		if (i % step == 0 || i + 1 == n) {
			for (size_t k = i + 1; k < n; k++) {
				sbx_stream *s = sbx_streams_get(&t, order[k]);
				if (!s || s->id != order[k] || *(uint32_t *)s->user != order[k]) {
					snprintf(why, why_len, "id %u lost after deleting %zu ids",
						 order[k], i + 1);
					free(order);
					return -1;
				}
			}
			if (!consistent(&t)) {
				snprintf(why, why_len, "table inconsistent after %zu deletes", i + 1);
				free(order);
				return -1;
			}
		}
	}
	free(order);
	if (t.count != 0) {
		snprintf(why, why_len, "count %zu after deleting all", t.count);
		return -1;
	}
	for (size_t i = 0; i < t.cap; i++)
		if (t.slots[i].id != 0) {
			snprintf(why, why_len, "slot %zu not emptied", i);
			return -1;
		}
	/* and everything can come back */
	for (size_t i = 0; i < n; i++)
		if (!sbx_streams_add(&t, ids[i])) {
			snprintf(why, why_len, "re-add of %u failed", ids[i]);
			return -1;
		}
	if (!consistent(&t)) {
		snprintf(why, why_len, "inconsistent after re-add");
		return -1;
	}
	sbx_streams_free(&t);
	return 0;
}

#define EXERCISE(ids, n)                                                   \
	do {                                                               \
		char why_[200] = "";                                       \
		if (exercise(ids, n, why_, sizeof why_) < 0) {             \
			test_fail(__FILE__, __LINE__, why_);               \
			free(ids);                                         \
			return;                                            \
		}                                                          \
	} while (0)

static void test_sequential_thousands(void)
{
	size_t n = 5000;
	uint32_t *ids = malloc(n * sizeof *ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = (uint32_t)i + 1;
	EXERCISE(ids, n);
	/* sequential from the host's usual start, near the wrap of 32 bits */
	for (size_t i = 0; i < n; i++)
		ids[i] = UINT32_MAX - (uint32_t)i;
	EXERCISE(ids, n);
	free(ids);
}

static void test_random_thousands(void)
{
	size_t n = 6000;
	uint32_t *ids = malloc(n * sizeof *ids);
	for (size_t i = 0; i < n; i++) {
		uint32_t v;
		int dup;
		do {
			v = rnd32();
			dup = v == 0;
			for (size_t k = 0; k < i && !dup; k++)
				dup = ids[k] == v;
		} while (dup);
		ids[i] = v;
	}
	EXERCISE(ids, n);
	free(ids);
}

/* Ids that differ only in their high bits, or are multiples of a power of
 * two: a hash that keeps only low bits puts them all in one probe run. The
 * table must stay correct with them, and (see test_collisions_spread) fast. */
static void test_colliding_patterns(void)
{
	size_t n = 4000;
	uint32_t *ids = malloc(n * sizeof *ids);
	static const unsigned shifts[] = {16, 20, 12, 8};
	for (size_t s = 0; s < 4; s++) {
		for (size_t i = 0; i < n; i++)
			ids[i] = (uint32_t)(i + 1) << shifts[s];
		if (shifts[s] == 20) /* only 4095 distinct non-zero values */
			for (size_t i = 0; i < n; i++)
				ids[i] = ((uint32_t)(i + 1) << 20) | 0x5a5;
		EXERCISE(ids, n);
	}
	/* Mixed: small ids together with large ids sharing their low bits */
	for (size_t i = 0; i < n; i++)
		ids[i] = (i % 2) ? (uint32_t)(i / 2 + 1) : (uint32_t)(i / 2 + 1) | 0x80000000u;
	EXERCISE(ids, n);
	free(ids);
}

/* Backward-shift deletion across the end of the table: fill a small table
 * so runs wrap from the last slot to slot 0, then delete in every order. */
static void test_wraparound_runs(void)
{
	/* 12 ids in a 16-slot table (the maximum before growing). Try many
	 * random id sets; each set deleted in several random orders. */
	for (int round = 0; round < 3000; round++) {
		sbx_streams t = {0};
		uint32_t ids[12];
		size_t n = 0;
		while (n < 12) {
			uint32_t v = rnd32() % 64 + 1;
			int dup = 0;
			for (size_t k = 0; k < n; k++)
				dup |= ids[k] == v;
			if (!dup)
				ids[n++] = v;
		}
		for (size_t i = 0; i < n; i++)
			CHECK(sbx_streams_add(&t, ids[i]) != NULL);
		CHECK_EQ_INT(t.cap, 16);
		shuffle(ids, n);
		for (size_t i = 0; i < n; i++) {
			sbx_streams_del(&t, ids[i]);
			CHECK(sbx_streams_get(&t, ids[i]) == NULL);
			for (size_t k = i + 1; k < n; k++)
				CHECK(sbx_streams_get(&t, ids[k]) != NULL);
			CHECK(consistent(&t));
		}
		CHECK_EQ_INT(t.count, 0);
		sbx_streams_free(&t);
	}
}

/* Random adds/deletes/lookups against a plain array model. */
static void test_model_random_ops(void)
{
	enum { RANGE = 3000 };
	static uint32_t pool[RANGE];
	static char present[RANGE];
	for (size_t i = 0; i < RANGE; i++) /* patterned and plain ids mixed */
		pool[i] = (i % 3 == 0) ? (uint32_t)(i + 1) << 16 : (uint32_t)i * 7919u + 1;
	memset(present, 0, sizeof present);
	sbx_streams t = {0};
	size_t count = 0;
	for (int op = 0; op < 300000; op++) {
		size_t k = rnd32() % RANGE;
		switch (rnd32() % 3) {
		case 0: {
			sbx_stream *s = sbx_streams_add(&t, pool[k]);
			CHECK((s != NULL) == !present[k]);
			/* the load factor stays at most 3/4 */
			CHECK(t.count * 4 <= t.cap * 3 + 4);
			if (s) {
				s->recv_left = pool[k];
				present[k] = 1;
				count++;
			}
			break;
		}
		case 1:
			sbx_streams_del(&t, pool[k]);
			if (present[k])
				count--;
			present[k] = 0;
			break;
		default: {
			sbx_stream *s = sbx_streams_get(&t, pool[k]);
			CHECK((s != NULL) == present[k]);
			if (s)
				CHECK(s->recv_left == pool[k]);
		}
		}
		CHECK_EQ_INT(t.count, count);
	}
	for (size_t k = 0; k < RANGE; k++)
		CHECK((sbx_streams_get(&t, pool[k]) != NULL) == present[k]);
	CHECK(consistent(&t));
	sbx_streams_free(&t);
}

/* The header promises O(1) lookups with thousands of streams: with a sound
 * hash no probe run gets long, whatever the id pattern. */
static void test_collisions_spread(void)
{
	static const unsigned shifts[] = {0, 8, 12, 16, 19};
	for (size_t s = 0; s < 5; s++) {
		sbx_streams t = {0};
		for (uint32_t i = 1; i <= 4000; i++)
			CHECK(sbx_streams_add(&t, i << shifts[s]) != NULL);
		size_t run = longest_run(&t);
		sbx_streams_free(&t);
		if (run > 200) {
			char m[120];
			snprintf(m, sizeof m, "ids i<<%u: a probe run of %zu slots (of 4000 ids)",
				 shifts[s], run);
			test_fail(__FILE__, __LINE__, m);
			return;
		}
	}
}

int main(void)
{
	RUN(test_basic);
	RUN(test_sequential_thousands);
	RUN(test_random_thousands);
	RUN(test_colliding_patterns);
	RUN(test_wraparound_runs);
	RUN(test_model_random_ops);
	RUN(test_collisions_spread);
	return test_summary();
}
