/*
 * fixtures.h - reads the golden fixtures of the Go codec
 * (the *.hex files of mqttsn/packet/testdata, format in its README.md) at run time.
 */
#ifndef FIXTURES_H
#define FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#define FX_MAX_DATA 1024

typedef struct fixture {
	char file[64];
	char name[64];
	int line;
	uint8_t data[FX_MAX_DATA];
	size_t len;
	int has_hex;
	uint8_t canonical[FX_MAX_DATA];
	size_t canonical_len;
	int has_canonical;
	int ok;          /* expect: ok */
	char kind[32];   /* expect: error <kind> */
	int has_desc;
} fixture_t;

/* fixtures_load reads every *.hex file of dir (sorted by name) into a newly
 * allocated array (host test code: malloc is fine here). It returns the
 * number of cases, or -1 with a message on stderr when a file breaks the
 * format. */
int fixtures_load(const char *dir, fixture_t **out);

#endif
