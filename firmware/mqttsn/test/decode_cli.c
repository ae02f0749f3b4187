/*
 * decode_cli.c - the C decoder as a filter, for the differential test of
 * tests/firmware: each line of stdin is a datagram in hex; each line of
 * stdout is "ok <dump>" (dump.h) or "error <kind>" (the fixtures' kinds),
 * and, for a valid datagram, " | <hex of the re-encoding>" after it.
 */
#include "dump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char line[2 * 70000 + 16], out[2 * 70000 + 700], enc_hex[2 * 70000 + 2];
static uint8_t buf[70000], enc[70000];

int main(void)
{
	while (fgets(line, sizeof line, stdin) != NULL) {
		size_t n = 0;
		mqttsn_msg_t m;
		int err, k;
		for (char *p = line; p[0] && p[1] && p[0] != '\n' && n < sizeof buf; p += 2) {
			unsigned v;
			if (sscanf(p, "%2x", &v) != 1)
				break;
			buf[n++] = (uint8_t)v;
		}
		err = mqttsn_decode(&m, buf, n);
		if (err != MQTTSN_OK) {
			printf("error %s\n", mqttsn_err_name(err));
			continue;
		}
		dump(out, sizeof out, &m);
		k = mqttsn_encode(&m, enc, sizeof enc);
		if (k < 0)
			snprintf(enc_hex, sizeof enc_hex, "encode error %s", mqttsn_err_name(k));
		else
			hexs(enc_hex, enc, (size_t)k);
		printf("ok %s | %s\n", out, enc_hex);
	}
	return 0;
}
