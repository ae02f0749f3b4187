/*
 * dump.h - one line with every field of a decoded message, the form that
 * expected.txt holds and that tests/firmware writes from the Go decoder.
 */
#ifndef DUMP_H
#define DUMP_H

#include <stddef.h>

#include "mqttsn.h"

void dump(char *out, size_t cap, const mqttsn_msg_t *m);

/* hexs writes n octets as lowercase hex without blanks ("-" when empty). */
void hexs(char *out, const uint8_t *p, size_t n);

#endif
