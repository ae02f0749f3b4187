/*
 * fuzz_client.c - libFuzzer target for the client state machine. The input
 * is a script: each step either starts an operation, delivers a datagram
 * from the gateway (its bytes from the input; often a well-formed reply, so
 * that the fuzzer gets past the decoder), or moves the clock. Properties
 * checked after every step:
 *   - every datagram the client sends decodes without error (it never
 *     writes what a gateway must reject), and is encapsulated exactly when
 *     the configuration says so;
 *   - the state is one of enum mqttsn_state, and the message in flight fits tx;
 *   - nothing in flight means nothing awaited, and the reverse.
 * Sanitizers (address, undefined) catch the rest.
 */
#include "mqttsn_client.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int encapsulated_cfg;

static int send_check(void *ctx, const mqttsn_addr_t *to, const uint8_t *buf, size_t len)
{
	mqttsn_msg_t m;
	(void)ctx;
	(void)to;
	if (mqttsn_decode(&m, buf, len) != MQTTSN_OK || m.encapsulated != encapsulated_cfg)
		abort();
	return 0;
}

static uint8_t on_publish(void *ctx, const mqttsn_msg_t *p)
{
	(void)ctx;
	return p->topic_id == 0x0BAD ? MQTTSN_RC_INVALID_TOPIC_ID : MQTTSN_RC_ACCEPTED;
}

static void on_event(void *ctx, int ev, const mqttsn_event_info_t *info)
{
	(void)ctx;
	if (ev < MQTTSN_EV_GW_FOUND || ev > MQTTSN_EV_TIMEOUT || info == NULL)
		abort();
}

/* replies the gateway might send, with the msg id patched in */
static const uint8_t replies[][8] = {
	{3, 0x05, 0},             /* CONNACK */
	{2, 0x06},                /* WILLTOPICREQ */
	{2, 0x08},                /* WILLMSGREQ */
	{7, 0x0B, 0, 5, 0, 0, 0}, /* REGACK */
	{7, 0x0D, 0, 5, 0, 0, 0}, /* PUBACK */
	{4, 0x0F, 0, 0},          /* PUBREC */
	{4, 0x0E, 0, 0},          /* PUBCOMP */
	{8, 0x13, 0x20, 0, 0, 0, 0, 0}, /* SUBACK */
	{4, 0x15, 0, 0},          /* UNSUBACK */
	{2, 0x17},                /* PINGRESP */
	{2, 0x18},                /* DISCONNECT */
	{3, 0x1B, 0},             /* WILLTOPICRESP */
	{3, 0x1D, 0},             /* WILLMSGRESP */
	{8, 0x0C, 0x40, 0, 1, 0, 0, 'x'}, /* PUBLISH QoS 2 */
	{4, 0x10, 0, 0},          /* PUBREL */
	{5, 0x00, 1, 0, 1},       /* ADVERTISE */
	{3, 0x02, 1},             /* GWINFO */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t node[2] = {0x12, 0x34};
	static const mqttsn_transport_t tr = {send_check, NULL, NULL};
	static const mqttsn_addr_t gw = {1, {7}};
	static uint8_t tx[64], rx[64];
	mqttsn_config_t cfg;
	mqttsn_client_t c;
	uint32_t now = 0xFFFF0000u; /* wraps during the run */
	size_t i = 1;
	if (size < 1)
		return 0;
	memset(&cfg, 0, sizeof cfg);
	cfg.client_id = "fuzz";
	cfg.keep_alive_s = data[0] & 1 ? 5 : 0;
	cfg.clean_session = 1;
	cfg.t_retry_ms = 100;
	cfg.n_retry = 2;
	cfg.t_wait_ms = 1000;
	cfg.n_adv = 2;
	if (data[0] & 2) {
		cfg.will_topic = "w";
		cfg.will_msg = (const uint8_t *)"x";
		cfg.will_msg_len = 1;
	}
	encapsulated_cfg = (data[0] & 4) != 0;
	if (encapsulated_cfg) {
		cfg.encapsulate = 1;
		cfg.node_id = node;
		cfg.node_id_len = 2;
	}
	cfg.on_event = on_event;
	cfg.on_publish = on_publish;
	mqttsn_client_init(&c, &cfg, &tr, tx, sizeof tx, rx, sizeof rx);
	if (!(data[0] & 8))
		mqttsn_client_set_gateway(&c, &gw, 1);

	while (i + 1 < size) {
		uint8_t op = data[i++], arg = data[i++];
		switch (op % 16) {
		case 0: mqttsn_connect(&c, now); break;
		case 1: mqttsn_register(&c, arg & 1 ? "a/b" : "", now); break;
		case 2: mqttsn_publish(&c, arg & 3, 5, (int8_t)((arg >> 2) % 4) - 1, arg >> 7, (const uint8_t *)"d", 1, now); break;
		case 3: mqttsn_subscribe(&c, arg & 3, 5, arg & 4 ? "s/#" : NULL, (int8_t)((arg >> 3) % 3), now); break;
		case 4: mqttsn_unsubscribe(&c, arg & 3, 5, arg & 4 ? "s/#" : NULL, now); break;
		case 5: mqttsn_sleep(&c, arg, now); break;
		case 6: mqttsn_wake(&c, now); break;
		case 7: mqttsn_disconnect(&c, now); break;
		case 8: mqttsn_will_topic_update(&c, arg & 1 ? "w2" : NULL, (int8_t)(arg % 3), 0, now); break;
		case 9: mqttsn_will_msg_update(&c, (const uint8_t *)"m", arg & 1, now); break;
		case 10: mqttsn_search_gw(&c, arg & 3, arg & 4 ? 50 : 0, now); break;
		case 11: { /* a raw datagram from the input */
			size_t n = arg < size - i ? arg : size - i;
			mqttsn_client_input(&c, arg & 0x80 ? &gw : &c.gw, data + i, n, now);
			i += n;
			break;
		}
		case 12: case 13: { /* a well-formed reply with the awaited msg id, or another */
			uint8_t r[8];
			const uint8_t *t = replies[arg % (sizeof replies / sizeof replies[0])];
			memcpy(r, t, sizeof r);
			if (op % 16 == 13) { /* patch the msg id, and a return code */
				uint16_t id = c.msg_id ^ (arg & 0x80 ? 1 : 0);
				if (r[1] == 0x0B || r[1] == 0x0D) {
					r[4] = (uint8_t)(id >> 8), r[5] = (uint8_t)id, r[6] = (uint8_t)((arg >> 5) & 1);
				} else if (r[1] == 0x13) {
					r[5] = (uint8_t)(id >> 8), r[6] = (uint8_t)id, r[7] = (uint8_t)((arg >> 5) & 1);
				} else if (r[0] == 4) {
					r[2] = (uint8_t)(id >> 8), r[3] = (uint8_t)id;
				} else if (r[1] == 0x05 || r[0] == 3) {
					r[2] = (uint8_t)((arg >> 5) & 3);
				}
			}
			mqttsn_client_input(&c, &gw, r, r[0], now);
			break;
		}
		default: /* time passes: up to 25.5 s */
			now += (uint32_t)arg * 100u;
			break;
		}
		mqttsn_client_poll(&c, now);
		if (c.state > MQTTSN_STATE_AWAKE || c.tx_len > sizeof tx || (c.await == 0) != (c.tx_len == 0))
			abort();
	}
	return 0;
}
