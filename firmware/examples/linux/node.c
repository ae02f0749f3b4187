/*
 * node.c - a Linux MQTT-SN sensor node built on firmware/mqttsn. It is the
 * example of how an application drives the client (one loop: wait for the
 * transport, call mqttsn_client_poll with the time), and the device end of
 * Outpost's end-to-end tests, which drive it with flags.
 *
 * It connects, subscribes, registers, publishes, waits for messages, sleeps
 * and wakes, and disconnects, in that order, each step only when its flag
 * asks for it, and prints one line per step on stdout:
 *
 *   gateway GWID | connected | subscribed ID QOS | registered ID |
 *   published MSGID | msg TOPIC PAYLOAD | asleep | wake-done | disconnected
 *
 * It finds its gateway at the address given (-g, or the serial line), by
 * SEARCHGW (-D, MQTT-SN 1.2 §6.1) or by waiting for an ADVERTISE (-A). A
 * PUBLISH the gateway rejects with "invalid topic id" (§6.6) makes it
 * register the topic again and publish once more.
 *
 * and "error ..." on stderr with exit status 1 when a step fails or the
 * overall timeout passes.
 */
#include "node.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr,
		"usage: node %s [-i CLIENTID] [-k KEEPALIVE]\n"
		"  publish:   (-t TOPIC | -T SHORT | -P PREDEFINED_ID) [-q QOS(-1..2)] [-m MSG] [-n COUNT] [-r]\n"
		"  subscribe: -s TOPIC [-Q QOS] [-c COUNT]   (TOPIC may hold wildcards; 2 chars: short name)\n"
		"  sleep:     -S SECONDS [-W CYCLES(0: no limit)] [-w MS] (-w -1: wake on each line read from\n"
		"             fd -I FD, default 0, until its end)\n"
		"  will:      -u WILLTOPIC -U WILLMSG;  encapsulate: -E NODEID_HEX;  -x TIMEOUT_S\n"
		"  discovery: -D: SEARCHGW;  -A: wait for an ADVERTISE;  -a NADV: missed ADVERTISEs before the\n"
		"             gateway counts as lost (default 3)\n",
		node_transport_usage);
	exit(2);
}

static mqttsn_client_t client;
static int last_event;              /* the latest event */
static unsigned seen;               /* bit ev: event ev arrived */
static mqttsn_event_info_t infos[16]; /* the latest info of each event */
static mqttsn_event_info_t last_info; /* the info of what await waited for */
static int received;

/* topic ids the gateway told this node about (SUBACK, REGISTER) */
static struct {
	uint16_t id;
	char name[64];
} topics[8];

static void remember(uint16_t id, const char *name, size_t len)
{
	static unsigned next;
	if (id == 0 || len >= sizeof topics[0].name)
		return;
	topics[next % 8].id = id;
	memcpy(topics[next % 8].name, name, len);
	topics[next % 8].name[len] = '\0';
	next++;
}

static void on_event(void *ctx, int ev, const mqttsn_event_info_t *info)
{
	(void)ctx;
	last_event = ev;
	seen |= 1u << ev;
	infos[ev & 15] = *info;
	if (ev == MQTTSN_EV_REGISTER_IN)
		remember(info->topic_id, (const char *)info->name, info->name_len);
	if (ev == MQTTSN_EV_ASLEEP)
		printf("asleep\n");
	if (ev == MQTTSN_EV_WAKE_DONE)
		printf("wake-done\n");
	fflush(stdout);
}

static uint8_t on_publish(void *ctx, const mqttsn_msg_t *p)
{
	char name[64];
	unsigned i;
	(void)ctx;
	if (p->topic_id_type == MQTTSN_TOPIC_SHORT) {
		snprintf(name, sizeof name, "%c%c", p->topic_id >> 8, p->topic_id & 0xFF);
	} else if (p->topic_id_type == MQTTSN_TOPIC_PREDEFINED) {
		snprintf(name, sizeof name, "predefined:%u", p->topic_id);
	} else {
		for (i = 0; i < 8 && topics[i].id != p->topic_id; i++)
			;
		if (i == 8)
			return MQTTSN_RC_INVALID_TOPIC_ID; /* §6.10 */
		snprintf(name, sizeof name, "%s", topics[i].name);
	}
	printf("msg %s %.*s\n", name, (int)p->payload_len, p->payload ? (const char *)p->payload : "");
	fflush(stdout);
	received++;
	return MQTTSN_RC_ACCEPTED;
}

static uint32_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)(ts.tv_sec * 1000u + ts.tv_nsec / 1000000);
}

static int fd;
static uint32_t deadline;

static void fail(const char *what)
{
	fprintf(stderr, "error %s (last event %d, return code %u)\n", what, last_event, infos[last_event & 15].return_code);
	exit(1);
}

/* step waits up to 10 ms for a datagram and runs the client. */
static void step(void)
{
	struct pollfd p = {fd, POLLIN, 0};
	(void)poll(&p, 1, 10);
	if (mqttsn_client_poll(&client, now_ms()) != MQTTSN_OK)
		fail("transport");
	if ((int32_t)(now_ms() - deadline) >= 0)
		fail("timeout");
}

/* await_rc runs the client until the event ev (or a failure) arrives, and
 * returns its return code. */
static uint8_t await_rc(int ev, const char *what)
{
	const unsigned bad = 1u << MQTTSN_EV_TIMEOUT | 1u << MQTTSN_EV_DISCONNECTED | 1u << MQTTSN_EV_GW_LOST;
	seen = 0;
	while (!(seen & 1u << ev)) {
		step();
		if (seen & bad & ~(1u << ev))
			fail(what);
	}
	last_info = infos[ev];
	return last_info.return_code;
}

/* await is await_rc that fails on a rejection. */
static void await(int ev, const char *what)
{
	if (await_rc(ev, what) != MQTTSN_RC_ACCEPTED)
		fail(what);
}

/* start retries an operation while the client is busy. */
#define START(call, what)                                   \
	do {                                                \
		int err_;                                   \
		while ((err_ = (call)) == MQTTSN_ERR_BUSY)  \
			step();                             \
		if (err_ != MQTTSN_OK)                      \
			fail(what);                         \
	} while (0)

/* wait_line runs the client until a line arrives on wake_fd; 0 at its end. */
static int wake_fd;
static int wait_line(void)
{
	for (;;) {
		struct pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
		char ch;
		(void)poll(p, 2, 10);
		if (mqttsn_client_poll(&client, now_ms()) != MQTTSN_OK)
			fail("transport");
		while (p[1].revents) {
			ssize_t n = read(wake_fd, &ch, 1);
			if (n <= 0)
				return 0;
			if (ch == '\n')
				return 1;
		}
	}
}

/* register_topic registers a topic name (§6.5) and returns its id. */
static uint16_t register_topic(const char *topic)
{
	uint16_t id;
	START(mqttsn_register(&client, topic, now_ms()), "register");
	await(MQTTSN_EV_REGISTERED, "register");
	id = last_info.topic_id;
	remember(id, topic, strlen(topic));
	printf("registered %u\n", id);
	return id;
}

int main(int argc, char **argv)
{
	static uint8_t tx[512], rx[512];
	static mqttsn_config_t cfg;
	static uint8_t node_id[MQTTSN_NODE_ID_MAX];
	mqttsn_transport_t tr;
	mqttsn_addr_t gw;
	char default_id[24];
	const char *spec = NULL, *topic = NULL, *sub = NULL, *msg = "hello";
	int baud = 115200, qos = 0, subqos = 0, count = 1, want = 0, retain = 0, search = 0, publish = 0;
	int sleep_s = 0, cycles = 1, wake_ms = 1000, advertised = 0, reregistered = 0;
	uint8_t tt = MQTTSN_TOPIC_NORMAL;
	uint16_t tid = 0;
	int opt, i;

	snprintf(default_id, sizeof default_id, "node-%d", (int)getpid());
	cfg.client_id = default_id;
	cfg.keep_alive_s = 60;
	cfg.clean_session = 1;
	cfg.t_retry_ms = 2000;
	cfg.n_retry = 5;
	deadline = 30;
	while ((opt = getopt(argc, argv, "g:d:b:i:k:t:T:P:q:m:n:rs:Q:c:S:W:w:I:u:U:E:Dx:AB:L:a:")) != -1) {
		switch (opt) {
		case 'g': case 'd': spec = optarg; break;
		case 'b': baud = atoi(optarg); break;
		case 'i': cfg.client_id = optarg; break;
		case 'k': cfg.keep_alive_s = (uint16_t)atoi(optarg); break;
		case 't': topic = optarg; publish = 1; break;
		case 'T':
			if (strlen(optarg) != 2)
				usage();
			tt = MQTTSN_TOPIC_SHORT, tid = MQTTSN_SHORT(optarg), publish = 1;
			break;
		case 'P': tt = MQTTSN_TOPIC_PREDEFINED, tid = (uint16_t)atoi(optarg), publish = 1; break;
		case 'q': qos = atoi(optarg); break;
		case 'm': msg = optarg; break;
		case 'n': count = atoi(optarg); break;
		case 'r': retain = 1; break;
		case 's': sub = optarg; break;
		case 'Q': subqos = atoi(optarg); break;
		case 'c': want = atoi(optarg); break;
		case 'S': sleep_s = atoi(optarg); break;
		case 'W': cycles = atoi(optarg); break;
		case 'w': wake_ms = atoi(optarg); break;
		case 'I': wake_fd = atoi(optarg); break;
		case 'u': cfg.will_topic = optarg; break;
		case 'U': cfg.will_msg = (const uint8_t *)optarg, cfg.will_msg_len = (uint16_t)strlen(optarg); break;
		case 'E': {
			size_t n = strlen(optarg) / 2;
			if (n > sizeof node_id)
				usage();
			for (i = 0; i < (int)n; i++) {
				unsigned v;
				if (sscanf(optarg + 2 * i, "%2x", &v) != 1)
					usage();
				node_id[i] = (uint8_t)v;
			}
			cfg.encapsulate = 1, cfg.node_id = node_id, cfg.node_id_len = (uint8_t)n;
			break;
		}
		case 'D': search = 1; break;
		case 'A': advertised = 1; break;
		case 'a': cfg.n_adv = (uint8_t)atoi(optarg); break;
		case 'B': case 'L':
			if (node_transport_option(opt, optarg) != 0)
				usage();
			break;
		case 'x': deadline = (uint32_t)atoi(optarg); break;
		default: usage();
		}
	}
	if ((spec == NULL && !search && !advertised) || qos < -1 || qos > 2 ||
	    (qos == -1 && tt == MQTTSN_TOPIC_NORMAL && publish))
		usage();
	cfg.on_event = on_event;
	cfg.on_publish = on_publish;
	setvbuf(stdout, NULL, _IOLBF, 0);
	deadline = now_ms() + deadline * 1000u;

	if ((fd = node_transport_open(spec, baud, &tr, &gw)) < 0)
		return 1;
	mqttsn_client_init(&client, &cfg, &tr, tx, sizeof tx, rx, sizeof rx);
	if (search) {
		/* §6.1: after a random delay of up to Tsearchgw (here 1 s) */
		srand((unsigned)getpid());
		START(mqttsn_search_gw(&client, 1, (uint32_t)rand() % 1000u, now_ms()), "searchgw");
		await(MQTTSN_EV_GW_FOUND, "searchgw");
		printf("gateway %u\n", last_info.gw_id);
	} else if (advertised) {
		await(MQTTSN_EV_GW_FOUND, "advertise");
		printf("gateway %u\n", last_info.gw_id);
	} else {
		mqttsn_client_set_gateway(&client, &gw, 0);
	}

	/* §6.8: QoS -1 needs no connection */
	if (qos == -1 && sub == NULL && sleep_s == 0) {
		for (i = 0; i < count; i++) {
			START(mqttsn_publish(&client, tt, tid, -1, (uint8_t)retain, (const uint8_t *)msg,
					     (uint16_t)strlen(msg), now_ms()),
			      "publish");
			printf("published 0\n");
		}
		return 0;
	}

	START(mqttsn_connect(&client, now_ms()), "connect");
	await(MQTTSN_EV_CONNECTED, "connect");
	printf("connected\n");

	if (sub != NULL) {
		if (strlen(sub) == 2 && !strpbrk(sub, "+#"))
			START(mqttsn_subscribe(&client, MQTTSN_TOPIC_SHORT, MQTTSN_SHORT(sub), NULL, (int8_t)subqos,
					       now_ms()),
			      "subscribe");
		else
			START(mqttsn_subscribe(&client, MQTTSN_TOPIC_NORMAL, 0, sub, (int8_t)subqos, now_ms()),
			      "subscribe");
		await(MQTTSN_EV_SUBSCRIBED, "subscribe");
		remember(last_info.topic_id, sub, strlen(sub));
		printf("subscribed %u %d\n", last_info.topic_id, last_info.qos);
	}

	if (topic != NULL)
		tid = register_topic(topic);

	for (i = 0; publish && i < count; i++) {
		START(mqttsn_publish(&client, tt, tid, (int8_t)qos, (uint8_t)retain, (const uint8_t *)msg,
				     (uint16_t)strlen(msg), now_ms()),
		      "publish");
		if (qos > 0) {
			uint8_t rc = await_rc(MQTTSN_EV_PUBLISHED, "publish");
			if (rc == MQTTSN_RC_INVALID_TOPIC_ID && topic != NULL && !reregistered) {
				/* §6.6: the gateway does not know the topic id (any
				 * more): register the name again, publish again */
				reregistered = 1;
				tid = register_topic(topic);
				i--;
				continue;
			}
			if (rc != MQTTSN_RC_ACCEPTED)
				fail("publish");
		}
		printf("published %u\n", infos[MQTTSN_EV_PUBLISHED].msg_id);
	}

	while (received < want)
		step();

	if (sleep_s > 0) {
		START(mqttsn_sleep(&client, (uint16_t)sleep_s, now_ms()), "sleep");
		await(MQTTSN_EV_ASLEEP, "sleep");
		for (i = 0; cycles == 0 || i < cycles; i++) {
			if (wake_ms < 0) {
				if (!wait_line())
					break;
			} else {
				uint32_t until = now_ms() + (uint32_t)wake_ms;
				while ((int32_t)(now_ms() - until) < 0)
					step();
			}
			START(mqttsn_wake(&client, now_ms()), "wake");
			await(MQTTSN_EV_WAKE_DONE, "wake");
		}
	}

	START(mqttsn_disconnect(&client, now_ms()), "disconnect");
	await(MQTTSN_EV_DISCONNECTED, "disconnect");
	printf("disconnected\n");
	return 0;
}
