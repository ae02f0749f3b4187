/*
 * test.h - a minimal test harness for the host tests: CHECK records a
 * failure with its place and goes on; a test is a function.
 */
#ifndef TEST_H
#define TEST_H

#include <stdio.h>

extern int test_failures;
extern const char *test_name;

#define CHECK(cond)                                                                           \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			test_failures++;                                                      \
			fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, \
				test_name, #cond);                                            \
		}                                                                             \
	} while (0)

#define CHECKF(cond, ...)                                                            \
	do {                                                                         \
		if (!(cond)) {                                                       \
			test_failures++;                                             \
			fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, test_name); \
			fprintf(stderr, __VA_ARGS__);                                \
			fputc('\n', stderr);                                         \
		}                                                                    \
	} while (0)

#define RUN(fn)                  \
	do {                     \
		test_name = #fn; \
		fn();            \
	} while (0)

/* the suites */
int codec_tests(const char *fixture_dir, const char *expected_file, int write_expected);
void client_tests(void);
int write_seeds(const char *fixture_dir, const char *out_dir);

#endif
