/* test.c — the harness behind test.h: runs tests, prints one line per test. */
#include "test.h"

int test_failed_now;
int test_passed_total;
int test_failed_total;
const char *test_name_now = "";

void test_fail(const char *file, int line, const char *what)
{
	if (test_failed_now)
		return;
	test_failed_now = 1;
	printf("FAIL %s: %s:%d: %s\n", test_name_now, file, line, what);
	fflush(stdout);
}

void test_run(const char *name, void (*fn)(void))
{
	test_name_now = name;
	test_failed_now = 0;
	fn();
	if (test_failed_now) {
		test_failed_total++;
	} else {
		test_passed_total++;
		printf("ok   %s\n", name);
	}
	fflush(stdout);
}

int test_summary(void)
{
	return test_failed_total ? 1 : 0;
}
