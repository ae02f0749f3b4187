/*
 * fuzz_decode.c - libFuzzer target for the decoder, with a round-trip
 * property: a datagram that decodes re-encodes to a datagram that decodes
 * to the same value and encodes to the same bytes; the re-encoding equals
 * the input, except that the input may use the 3-octet Length form where
 * the 1-octet form fits (two octets more, §5.2.1).
 *
 *   clang -fsanitize=fuzzer,address,undefined ... (make -C firmware fuzz)
 */
#include "mqttsn.h"

#include <stdlib.h>
#include <string.h>

static int same_bytes(const uint8_t *a, const uint8_t *b, size_t n) { return n == 0 || memcmp(a, b, n) == 0; }

static int same(const mqttsn_msg_t *a, const mqttsn_msg_t *b)
{
	return a->type == b->type && a->dup == b->dup && a->qos == b->qos && a->retain == b->retain &&
	       a->will == b->will && a->clean_session == b->clean_session && a->topic_id_type == b->topic_id_type &&
	       a->return_code == b->return_code && a->gw_id == b->gw_id && a->radius == b->radius &&
	       a->has_duration == b->has_duration && a->duration == b->duration && a->topic_id == b->topic_id &&
	       a->msg_id == b->msg_id && a->payload_len == b->payload_len &&
	       same_bytes(a->payload, b->payload, a->payload_len) && a->encapsulated == b->encapsulated &&
	       a->ctrl == b->ctrl && a->node_id_len == b->node_id_len &&
	       same_bytes(a->node_id, b->node_id, a->node_id_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t enc[70000], enc2[70000];
	mqttsn_msg_t m, m2;
	int n, n2;
	if (mqttsn_decode(&m, data, size) != MQTTSN_OK)
		return 0;
	n = mqttsn_encode(&m, enc, sizeof enc);
	if (n < 0 || mqttsn_encoded_len(&m) != (size_t)n)
		abort(); /* what decodes must encode */
	if ((size_t)n == size) {
		if (memcmp(enc, data, size) != 0)
			abort();
	} else if ((size_t)n + 2 != size) {
		abort();
	}
	if (mqttsn_decode(&m2, enc, (size_t)n) != MQTTSN_OK || !same(&m, &m2))
		abort();
	n2 = mqttsn_encode(&m2, enc2, sizeof enc2);
	if (n2 != n || memcmp(enc, enc2, (size_t)n) != 0)
		abort();
	return 0;
}
