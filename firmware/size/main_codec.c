/* main_codec.c - the codec alone: decode a datagram and encode a message,
 * through volatile data so that nothing is optimised away. */
#include "mqttsn.h"

int main(void);

static volatile uint8_t in[64];
static uint8_t out[64];

int main(void)
{
	mqttsn_msg_t m;
	for (;;) {
		if (mqttsn_decode(&m, (const uint8_t *)in, in[0]) == MQTTSN_OK)
			in[1] = (uint8_t)mqttsn_encode(&m, out, sizeof out);
	}
}
