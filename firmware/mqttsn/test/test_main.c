/*
 * test_main.c - the host test program:
 *   test FIXTURE_DIR                          run every test
 *   test FIXTURE_DIR -write-expected FILE     (re)write expected.txt
 *   test FIXTURE_DIR -seeds DIR               write the fuzzer's seed files
 * EXPECTED names expected.txt (default: next to this file's sources, set by
 * the Makefile).
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

int test_failures;
const char *test_name = "";

#ifndef EXPECTED_FILE
#define EXPECTED_FILE "mqttsn/test/expected.txt"
#endif

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "../mqttsn/packet/testdata";
	if (argc > 3 && strcmp(argv[2], "-seeds") == 0)
		return write_seeds(dir, argv[3]) > 0 ? 0 : 1;
	if (argc > 3 && strcmp(argv[2], "-write-expected") == 0) {
		codec_tests(dir, argv[3], 1);
		return test_failures ? 1 : 0;
	}
	codec_tests(dir, EXPECTED_FILE, 0);
	client_tests();
	if (test_failures) {
		fprintf(stderr, "FAIL: %d checks failed\n", test_failures);
		return 1;
	}
	printf("PASS\n");
	return 0;
}
