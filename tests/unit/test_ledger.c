/* test_ledger.c — agent/ledger.c: telling an EXEC that never arrived from
 * one that ran, so a host may send the first again and never the second. */
#include <stdio.h>
#include <string.h>

#include "ledger.h"
#include "test.h"

static ledger g_l;

static void test_numbers_above_the_highest_never_arrived(void)
{
	memset(&g_l, 0, sizeof g_l);
	CHECK_EQ_INT(ledger_never_sent(&g_l, "abc-1"), 1); /* nothing from this host yet */
	ledger_note(&g_l, "abc-1");
	ledger_note(&g_l, "abc-5");
	ledger_note(&g_l, "abc-3"); /* out of order: the highest stays 5 */
	CHECK_EQ_INT(ledger_never_sent(&g_l, "abc-1"), 0);
	CHECK_EQ_INT(ledger_never_sent(&g_l, "abc-4"), 0); /* not seen, but may have run: never twice */
	CHECK_EQ_INT(ledger_never_sent(&g_l, "abc-5"), 0);
	CHECK_EQ_INT(ledger_never_sent(&g_l, "abc-6"), 1);
	CHECK_EQ_INT(ledger_never_sent(&g_l, "other-6"), 1);
	CHECK_EQ_INT(ledger_never_sent(&g_l, "ab-6"), 1); /* prefixes match whole */
	ledger_note(&g_l, "x-y-9");
	CHECK_EQ_INT(ledger_never_sent(&g_l, "x-y-9"), 0); /* the last dash splits */
	CHECK_EQ_INT(ledger_never_sent(&g_l, "x-y-10"), 1);
}

static void test_odd_keys_prove_nothing(void)
{
	memset(&g_l, 0, sizeof g_l);
	const char *odd[] = {"", "abc", "abc-", "-5", "abc-5x", "abc--", "abc-+5",
			     "a-very-long-prefix-that-does-not-fit-the-ledger-7", NULL};
	for (int i = 0; odd[i]; i++) {
		ledger_note(&g_l, odd[i]);
		CHECK(ledger_never_sent(&g_l, odd[i]) == 0);
	}
	CHECK_EQ_INT(g_l.n, 0);
	CHECK_EQ_INT(ledger_never_sent(&g_l, NULL), 0);
}

static void test_full_ledger_stops_vouching_for_strangers(void)
{
	memset(&g_l, 0, sizeof g_l);
	char key[40];
	for (int i = 0; i <= LEDGER_MAX; i++) {
		snprintf(key, sizeof key, "host%d-1", i);
		ledger_note(&g_l, key);
		if (i == 10)
			ledger_note(&g_l, "host0-2"); /* recently used: kept */
	}
	CHECK_EQ_INT(g_l.n, LEDGER_MAX);
	CHECK_EQ_INT(ledger_never_sent(&g_l, "host0-2"), 0);
	CHECK_EQ_INT(ledger_never_sent(&g_l, "host0-3"), 1);
	CHECK_EQ_INT(ledger_never_sent(&g_l, "host1-1"), 0); /* dropped, so unknown: proves nothing */
	CHECK_EQ_INT(ledger_never_sent(&g_l, "stranger-1"), 0);
	snprintf(key, sizeof key, "host%d-2", LEDGER_MAX);
	CHECK_EQ_INT(ledger_never_sent(&g_l, key), 1);
}

int main(void)
{
	RUN(test_numbers_above_the_highest_never_arrived);
	RUN(test_odd_keys_prove_nothing);
	RUN(test_full_ledger_stops_vouching_for_strangers);
	return test_summary();
}
