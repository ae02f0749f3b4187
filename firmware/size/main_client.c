/* main_client.c - the full client: every operation, input and poll, over a
 * stub transport, so that the linker keeps all the library needs. The
 * client's state (`client`) is the RAM the library needs beyond the
 * application's tx and rx buffers. */
#include "mqttsn_client.h"

int main(void);

static volatile uint8_t wire[64];
static volatile uint32_t ticks;

static int stub_send(void *ctx, const mqttsn_addr_t *to, const uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)to;
	wire[0] = buf[len - 1];
	return 0;
}

static int stub_recv(void *ctx, mqttsn_addr_t *from, uint8_t *buf, size_t cap)
{
	(void)ctx;
	(void)cap;
	from->len = 0;
	buf[0] = wire[1];
	return wire[2];
}

static uint8_t on_publish(void *ctx, const mqttsn_msg_t *p)
{
	(void)ctx;
	wire[3] = p->payload_len ? p->payload[0] : 0;
	return MQTTSN_RC_ACCEPTED;
}

static const mqttsn_transport_t transport = {stub_send, stub_recv, 0};
static const mqttsn_config_t config = {.client_id = "node", .keep_alive_s = 60, .on_publish = on_publish};
static uint8_t tx[64], rx[64];
mqttsn_client_t client;

int main(void)
{
	static const mqttsn_addr_t gw = {0, {0}};
	mqttsn_client_init(&client, &config, &transport, tx, sizeof tx, rx, sizeof rx);
	mqttsn_client_set_gateway(&client, &gw, 1);
	for (;;) {
		uint32_t now = ticks;
		switch (wire[4]) {
		case 0: mqttsn_search_gw(&client, 1, 100, now); break;
		case 1: mqttsn_connect(&client, now); break;
		case 2: mqttsn_register(&client, "t", now); break;
		case 3: mqttsn_publish(&client, 0, 1, (int8_t)wire[5], 0, rx, 1, now); break;
		case 4: mqttsn_subscribe(&client, 0, 0, "s/#", 1, now); break;
		case 5: mqttsn_unsubscribe(&client, 0, 0, "s/#", now); break;
		case 6: mqttsn_will_topic_update(&client, "w", 0, 0, now); break;
		case 7: mqttsn_will_msg_update(&client, rx, 1, now); break;
		case 8: mqttsn_sleep(&client, 60, now); break;
		case 9: mqttsn_wake(&client, now); break;
		case 10: mqttsn_disconnect(&client, now); break;
		default: mqttsn_client_input(&client, &gw, rx, wire[6], now); break;
		}
		mqttsn_client_poll(&client, now);
	}
}
