/* test.h — the tiny test harness every C test binary uses.
 *
 * A test binary defines test functions, lists them in main() with RUN(),
 * and returns test_summary(). Each result is one line on stdout:
 *   "ok   NAME" or "FAIL NAME: file:line: what". tests/run.sh adds them up
 * and prints the suite's closing line "N passed, N failed". */
#ifndef SBX_TEST_H
#define SBX_TEST_H

#include <stdio.h>
#include <string.h>

extern int test_failed_now;   /* set by CHECK when the running test fails */
extern int test_passed_total;
extern int test_failed_total;
extern const char *test_name_now;

/* CHECK(cond): record a failure (once per test) and return from the test. */
#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			test_fail(__FILE__, __LINE__, #cond);              \
			return;                                            \
		}                                                          \
	} while (0)

/* CHECK_EQ_INT / CHECK_EQ_STR print both values when they differ. */
#define CHECK_EQ_INT(a, b)                                                 \
	do {                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);        \
		if (a_ != b_) {                                            \
			char m_[256];                                      \
			snprintf(m_, sizeof m_, "%s == %s (%lld != %lld)", \
				 #a, #b, a_, b_);                          \
			test_fail(__FILE__, __LINE__, m_);                 \
			return;                                            \
		}                                                          \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                 \
	do {                                                               \
		const char *a_ = (a), *b_ = (b);                           \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                   \
			char m_[600];                                      \
			snprintf(m_, sizeof m_, "%s == %s (\"%.200s\" != \"%.200s\")", \
				 #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
			test_fail(__FILE__, __LINE__, m_);                 \
			return;                                            \
		}                                                          \
	} while (0)

#define RUN(fn) test_run(#fn, fn)

void test_fail(const char *file, int line, const char *what);
void test_run(const char *name, void (*fn)(void));
int test_summary(void);

#endif
