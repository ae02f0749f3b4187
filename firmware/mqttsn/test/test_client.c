/*
 * test_client.c - the client state machine with a fake transport (it
 * records every datagram sent) and a fake clock (a variable). Each test
 * builds the exchange of MQTT-SN 1.2 §6 byte by byte: what the client
 * must send, what the gateway answers, and the events the application gets.
 */
#include "mqttsn_client.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* --- fake transport and clock ------------------------------------------- */

#define MAX_SENT 64

static struct {
	uint8_t data[MAX_SENT][300];
	size_t len[MAX_SENT];
	int broadcast[MAX_SENT];
	int n, read; /* sent so far, checked so far */
	int fail;    /* make send fail */
} sent;

static int fake_send(void *ctx, const mqttsn_addr_t *to, const uint8_t *buf, size_t len)
{
	(void)ctx;
	if (sent.fail)
		return -1;
	if (sent.n < MAX_SENT && len <= sizeof sent.data[0]) {
		memcpy(sent.data[sent.n], buf, len);
		sent.len[sent.n] = len;
		sent.broadcast[sent.n] = to == NULL;
		sent.n++;
	}
	return 0;
}

static const mqttsn_transport_t transport = {fake_send, NULL, NULL};
static const mqttsn_addr_t gw_addr = {2, {0x0a, 0x01}};
static const mqttsn_addr_t other_addr = {2, {0x0a, 0x02}};

static uint32_t now;
static mqttsn_client_t c;
static mqttsn_config_t cfg;
static uint8_t tx[256], rx[256];

/* events and publishes the application got */
static struct {
	int ev[64];
	mqttsn_event_info_t info[64];
	char name[64][32];
	int n, read;
} evs;
static int publishes;
static char last_data[64];
static uint8_t publish_rc;

static void on_event(void *ctx, int ev, const mqttsn_event_info_t *info)
{
	(void)ctx;
	if (evs.n < 64) {
		evs.ev[evs.n] = ev;
		evs.info[evs.n] = *info;
		if (info->name && info->name_len < 32) {
			memcpy(evs.name[evs.n], info->name, info->name_len);
			evs.name[evs.n][info->name_len] = '\0';
		}
		evs.n++;
	}
}

static uint8_t on_publish(void *ctx, const mqttsn_msg_t *p)
{
	(void)ctx;
	publishes++;
	snprintf(last_data, sizeof last_data, "%.*s", (int)p->payload_len, p->payload ? (const char *)p->payload : "");
	return publish_rc;
}

static void fresh_config(void)
{
	memset(&cfg, 0, sizeof cfg);
	cfg.client_id = "c1";
	cfg.keep_alive_s = 60;
	cfg.clean_session = 1;
	cfg.t_retry_ms = 1000;
	cfg.n_retry = 3;
	cfg.t_wait_ms = 5000;
	cfg.n_adv = 2;
	cfg.on_event = on_event;
	cfg.on_publish = on_publish;
}

/* setup starts a test: a client that knows the gateway, nothing sent. */
static void setup(void)
{
	memset(&sent, 0, sizeof sent);
	memset(&evs, 0, sizeof evs);
	publishes = 0;
	publish_rc = 0;
	now = 1000;
	mqttsn_client_init(&c, &cfg, &transport, tx, sizeof tx, rx, sizeof rx);
	mqttsn_client_set_gateway(&c, &gw_addr, 1);
}

static size_t unhex(const char *s, uint8_t *out)
{
	size_t n = 0;
	unsigned v;
	while (*s) {
		if (*s == ' ') {
			s++;
			continue;
		}
		if (sscanf(s, "%2x", &v) != 1)
			break;
		out[n++] = (uint8_t)v;
		s += 2;
	}
	return n;
}

static void hex_spaced(char *out, const uint8_t *p, size_t n)
{
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		sprintf(out + strlen(out), i ? " %02x" : "%02x", p[i]);
}

/* in delivers a datagram from the gateway (or from addr). */
static void in_from(const mqttsn_addr_t *from, const char *hex)
{
	uint8_t b[300];
	size_t n = unhex(hex, b);
	mqttsn_client_input(&c, from, b, n, now);
}
static void in(const char *hex) { in_from(&gw_addr, hex); }

/* at moves the clock to t ms after the test's start and polls. */
static void at(uint32_t t)
{
	now = 1000 + t;
	mqttsn_client_poll(&c, now);
}

#define EXPECT_SENT(hex) expect_sent(__LINE__, hex, 0)
#define EXPECT_BROADCAST(hex) expect_sent(__LINE__, hex, 1)
static void expect_sent(int line, const char *hex, int broadcast)
{
	uint8_t want[300];
	char got[1024];
	size_t n = unhex(hex, want);
	if (sent.read >= sent.n) {
		CHECKF(0, "line %d: nothing sent, want %s", line, hex);
		return;
	}
	hex_spaced(got, sent.data[sent.read], sent.len[sent.read]);
	CHECKF(sent.len[sent.read] == n && memcmp(sent.data[sent.read], want, n) == 0, "line %d: sent %s, want %s",
	       line, got, hex);
	CHECKF(sent.broadcast[sent.read] == broadcast, "line %d: broadcast %d, want %d", line,
	       sent.broadcast[sent.read], broadcast);
	sent.read++;
}

#define EXPECT_QUIET() expect_quiet(__LINE__)
static void expect_quiet(int line)
{
	char got[1024];
	if (sent.read < sent.n) {
		hex_spaced(got, sent.data[sent.read], sent.len[sent.read]);
		CHECKF(0, "line %d: sent %s, want nothing", line, got);
		sent.read = sent.n;
	}
}

#define EXPECT_EVENT(e) expect_event(__LINE__, e)
static const mqttsn_event_info_t *expect_event(int line, int ev)
{
	static mqttsn_event_info_t none;
	if (evs.read >= evs.n) {
		CHECKF(0, "line %d: no event, want %d", line, ev);
		return &none;
	}
	CHECKF(evs.ev[evs.read] == ev, "line %d: event %d, want %d", line, evs.ev[evs.read], ev);
	return &evs.info[evs.read++];
}

#define EXPECT_NO_EVENT() expect_no_event(__LINE__)
static void expect_no_event(int line)
{
	CHECKF(evs.read == evs.n, "line %d: event %d, want none", line, evs.n > evs.read ? evs.ev[evs.read] : 0);
	evs.read = evs.n;
}

/* connected brings the client to the active state. */
static void connected(void)
{
	setup();
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("08 04 04 01 00 3c 63 31"); /* CONNECT clean, keep alive 60, "c1" */
	in("03 05 00");
	EXPECT_EVENT(MQTTSN_EV_CONNECTED);
	CHECK(c.state == MQTTSN_STATE_ACTIVE);
}

/* --- tests ---------------------------------------------------------------- */

/* §6.2, §6.3: CONNECT with a will; the gateway asks for topic and message. */
static void test_connect_will(void)
{
	fresh_config();
	cfg.will_topic = "w/t";
	cfg.will_msg = (const uint8_t *)"bye";
	cfg.will_msg_len = 3;
	cfg.will_qos = 1;
	cfg.will_retain = 1;
	setup();
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 1, 0, 0, NULL, 0, now) == MQTTSN_ERR_STATE);
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("08 04 0c 01 00 3c 63 31"); /* Will and CleanSession */
	CHECK(mqttsn_connect(&c, now) == MQTTSN_ERR_STATE);
	in("02 06"); /* WILLTOPICREQ */
	EXPECT_SENT("06 07 30 77 2f 74"); /* WILLTOPIC QoS 1 retain "w/t" */
	at(1000);                         /* lost: Tretry resends it */
	EXPECT_SENT("06 07 30 77 2f 74");
	in("02 08"); /* WILLMSGREQ */
	EXPECT_SENT("05 09 62 79 65");
	in("03 05 01"); /* congestion: after Twait, CONNECT again (not WILLMSG) */
	EXPECT_EVENT(MQTTSN_EV_CONGESTION);
	at(5999);
	EXPECT_QUIET();
	at(6000);
	EXPECT_SENT("08 04 0c 01 00 3c 63 31");
	in("02 06");
	EXPECT_SENT("06 07 30 77 2f 74");
	in("02 08");
	EXPECT_SENT("05 09 62 79 65");
	in("03 05 00");
	CHECK(EXPECT_EVENT(MQTTSN_EV_CONNECTED)->return_code == 0);
	CHECK(c.state == MQTTSN_STATE_ACTIVE);
	at(20000);
	EXPECT_QUIET();
	fresh_config();
}

/* a rejected CONNECT leaves the client disconnected with the return code */
static void test_connect_rejected(void)
{
	setup();
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("08 04 04 01 00 3c 63 31");
	in("03 05 03");
	CHECK(EXPECT_EVENT(MQTTSN_EV_CONNECTED)->return_code == MQTTSN_RC_NOT_SUPPORTED);
	CHECK(c.state == MQTTSN_STATE_DISCONNECTED);
}

/* §6.13: Tretry and Nretry, DUP on the resent PUBLISH, then disconnected. */
static void test_publish_retry_dup(void)
{
	connected();
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 1, 1, 0, (const uint8_t *)"x", 1, now) == MQTTSN_OK);
	EXPECT_SENT("08 0c 20 00 01 00 01 78");
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 1, 1, 0, (const uint8_t *)"y", 1, now) == MQTTSN_ERR_BUSY);
	CHECK(mqttsn_register(&c, "a", now) == MQTTSN_ERR_BUSY);
	at(999);
	EXPECT_QUIET();
	at(1000);
	EXPECT_SENT("08 0c a0 00 01 00 01 78"); /* DUP */
	at(2000);
	EXPECT_SENT("08 0c a0 00 01 00 01 78");
	at(3000);
	EXPECT_SENT("08 0c a0 00 01 00 01 78");
	EXPECT_NO_EVENT();
	at(4000); /* Nretry = 3 retransmissions, all unanswered */
	EXPECT_QUIET();
	CHECK(EXPECT_EVENT(MQTTSN_EV_TIMEOUT)->type == MQTTSN_PUBACK);
	CHECK(c.state == MQTTSN_STATE_DISCONNECTED);
}

static void test_publish_qos1_puback(void)
{
	const mqttsn_event_info_t *e;
	connected();
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 1, 1, 1, (const uint8_t *)"x", 1, now) == MQTTSN_OK);
	EXPECT_SENT("08 0c 30 00 01 00 01 78"); /* QoS 1, retain */
	in("07 0d 00 01 00 02 00");             /* another msg id: not ours */
	EXPECT_NO_EVENT();
	in("07 0d 00 01 00 01 00");
	e = EXPECT_EVENT(MQTTSN_EV_PUBLISHED);
	CHECK(e->msg_id == 1 && e->return_code == 0);
	at(5000);
	EXPECT_QUIET();
	/* msg ids go on */
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_PREDEFINED, 7, 1, 0, (const uint8_t *)"z", 1, now) == MQTTSN_OK);
	EXPECT_SENT("08 0c 21 00 07 00 02 7a");
	/* a rejection ends it with the return code (§6.6) */
	in("07 0d 00 07 00 02 02");
	CHECK(EXPECT_EVENT(MQTTSN_EV_PUBLISHED)->return_code == MQTTSN_RC_INVALID_TOPIC_ID);
}

/* QoS 2 from the client: PUBLISH, PUBREC, PUBREL (resent alone), PUBCOMP */
static void test_publish_qos2(void)
{
	connected();
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 3, 2, 0, (const uint8_t *)"v", 1, now) == MQTTSN_OK);
	EXPECT_SENT("08 0c 40 00 03 00 01 76");
	in("04 0f 00 01");
	EXPECT_SENT("04 10 00 01");
	at(1000);
	EXPECT_SENT("04 10 00 01"); /* PUBREL again, no DUP to set */
	in("04 0f 00 01");           /* a resent PUBREC: PUBREL again */
	EXPECT_SENT("04 10 00 01");
	in("04 0e 00 01");
	CHECK(EXPECT_EVENT(MQTTSN_EV_PUBLISHED)->topic_id == 3);
	CHECK(c.tx_len == 0 && c.await == 0);
}

/* QoS 0 needs a connection; QoS -1 only the gateway's address (§6.8) */
static void test_publish_qos0_minus1(void)
{
	setup();
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_SHORT, MQTTSN_SHORT("ab"), -1, 0, (const uint8_t *)"x", 1, now) ==
	      MQTTSN_OK);
	EXPECT_SENT("08 0c 62 61 62 00 00 78");
	EXPECT_EVENT(MQTTSN_EV_PUBLISHED);
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 1, -1, 0, NULL, 0, now) == MQTTSN_ERR_TOPIC_ID_TYPE);
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 1, 0, 0, NULL, 0, now) == MQTTSN_ERR_STATE);
	EXPECT_QUIET();
	CHECK(c.tx_len == 0 && c.await == 0);
	connected();
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 9, 0, 0, (const uint8_t *)"q", 1, now) == MQTTSN_OK);
	EXPECT_SENT("08 0c 00 00 09 00 00 71");
	EXPECT_EVENT(MQTTSN_EV_PUBLISHED);
	in("07 0d 00 09 00 00 02"); /* the gateway does not know topic 9 */
	CHECK(EXPECT_EVENT(MQTTSN_EV_PUBLISHED)->return_code == MQTTSN_RC_INVALID_TOPIC_ID);
	at(5000);
	EXPECT_QUIET();
}

/* §6.10: QoS 2 to the client is delivered once, at PUBLISH */
static void test_incoming_qos2(void)
{
	connected();
	in("09 0c 40 00 01 00 07 68 69");
	EXPECT_SENT("04 0f 00 07");
	CHECK(publishes == 1 && strcmp(last_data, "hi") == 0);
	in("09 0c c0 00 01 00 07 68 69"); /* resent with DUP: PUBREC was lost */
	EXPECT_SENT("04 0f 00 07");
	CHECK(publishes == 1);
	in("04 10 00 07");
	EXPECT_SENT("04 0e 00 07");
	in("04 10 00 07"); /* a resent PUBREL still gets its PUBCOMP */
	EXPECT_SENT("04 0e 00 07");
	in("09 0c 40 00 01 00 07 68 69"); /* after PUBREL the id is free again */
	EXPECT_SENT("04 0f 00 07");
	CHECK(publishes == 2);
	/* more QoS 2 ids than remembered slots: none is delivered twice while remembered */
	in("09 0c 40 00 01 00 08 68 69");
	in("09 0c 40 00 01 00 09 68 69");
	CHECK(publishes == 4);
	in("09 0c c0 00 01 00 09 68 69");
	CHECK(publishes == 4);
	sent.read = sent.n;
	/* §6.2: a clean session starts the gateway's msg ids over: an id left
	 * without its PUBREL in the old session is a new message in the new one */
	in("02 18"); /* the gateway ends the connection */
	EXPECT_EVENT(MQTTSN_EV_DISCONNECTED);
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("08 04 04 01 00 3c 63 31");
	in("03 05 00");
	EXPECT_EVENT(MQTTSN_EV_CONNECTED);
	in("09 0c 40 00 01 00 09 68 69");
	EXPECT_SENT("04 0f 00 09");
	CHECK(publishes == 5);
}

/* §6.14: while awake the gateway may REGISTER a topic and send buffered
 * PUBLISHes at QoS 1 and 2 before its PINGRESP; each is acknowledged */
static void test_awake_register_qos2(void)
{
	const mqttsn_event_info_t *e;
	connected();
	CHECK(mqttsn_sleep(&c, 60, now) == MQTTSN_OK);
	EXPECT_SENT("04 18 00 3c");
	in("02 18");
	EXPECT_EVENT(MQTTSN_EV_ASLEEP);
	at(30000);
	CHECK(mqttsn_wake(&c, now) == MQTTSN_OK);
	EXPECT_SENT("04 16 63 31");
	in("09 0a 00 2a 00 03 61 2f 62"); /* REGISTER 42 = "a/b" */
	EXPECT_SENT("07 0b 00 2a 00 03 00");
	e = EXPECT_EVENT(MQTTSN_EV_REGISTER_IN);
	CHECK(e->topic_id == 42 && strcmp(evs.name[evs.read - 1], "a/b") == 0);
	in("08 0c 20 00 2a 00 04 31"); /* QoS 1 */
	EXPECT_SENT("07 0d 00 2a 00 04 00");
	in("08 0c 40 00 2a 00 05 32"); /* QoS 2 */
	EXPECT_SENT("04 0f 00 05");
	in("08 0c c0 00 2a 00 05 32"); /* its DUP: acknowledged, not delivered */
	EXPECT_SENT("04 0f 00 05");
	in("04 10 00 05");
	EXPECT_SENT("04 0e 00 05");
	CHECK(publishes == 2 && c.state == MQTTSN_STATE_AWAKE);
	in("02 17");
	EXPECT_EVENT(MQTTSN_EV_WAKE_DONE);
	CHECK(c.state == MQTTSN_STATE_ASLEEP);
	/* a new sleep duration whose DISCONNECT cannot be sent leaves the
	 * client asleep, not active */
	sent.fail = 1;
	CHECK(mqttsn_sleep(&c, 10, now) == MQTTSN_ERR_TRANSPORT);
	sent.fail = 0;
	CHECK(c.state == MQTTSN_STATE_ASLEEP);
	at(200000); /* no keep-alive PINGREQ: still asleep */
	EXPECT_QUIET();
	EXPECT_NO_EVENT();
}

static void test_incoming_qos0_qos1(void)
{
	connected();
	in("08 0c 00 00 01 00 00 61");
	EXPECT_QUIET();
	CHECK(publishes == 1);
	in("08 0c 20 00 01 00 08 62");
	EXPECT_SENT("07 0d 00 01 00 08 00");
	publish_rc = MQTTSN_RC_INVALID_TOPIC_ID; /* the application does not know the id */
	in("08 0c 20 00 04 00 09 62");
	EXPECT_SENT("07 0d 00 04 00 09 02");
	in("08 0c 00 00 04 00 00 62"); /* §6.10: even at QoS 0 */
	EXPECT_SENT("07 0d 00 04 00 00 02");
	CHECK(publishes == 4);
}

/* §6.5: REGISTER from the client, and from the gateway */
static void test_register(void)
{
	const mqttsn_event_info_t *e;
	connected();
	CHECK(mqttsn_register(&c, "a/b", now) == MQTTSN_OK);
	EXPECT_SENT("09 0a 00 00 00 01 61 2f 62");
	in("07 0b 00 05 00 01 00");
	e = EXPECT_EVENT(MQTTSN_EV_REGISTERED);
	CHECK(e->topic_id == 5 && e->msg_id == 1 && e->return_code == 0);
	in("09 0a 00 06 00 09 63 2f 64");
	e = EXPECT_EVENT(MQTTSN_EV_REGISTER_IN);
	CHECK(e->topic_id == 6 && strcmp(evs.name[evs.read - 1], "c/d") == 0);
	EXPECT_SENT("07 0b 00 06 00 09 00");
	CHECK(mqttsn_register(&c, "", now) == MQTTSN_ERR_TOPIC_NAME);
	EXPECT_QUIET();
	CHECK(c.await == 0);
}

/* "rejected: congestion": nothing until Twait, then the message again (§6.5, §6.6) */
static void test_congestion(void)
{
	connected();
	CHECK(mqttsn_register(&c, "a/b", now) == MQTTSN_OK);
	EXPECT_SENT("09 0a 00 00 00 01 61 2f 62");
	in("07 0b 00 00 00 01 01");
	EXPECT_EVENT(MQTTSN_EV_CONGESTION);
	at(1000);
	at(4999);
	EXPECT_QUIET();
	CHECK(mqttsn_register(&c, "x", now) == MQTTSN_ERR_BUSY);
	at(5000);
	EXPECT_SENT("09 0a 00 00 00 01 61 2f 62");
	in("07 0b 00 05 00 01 00");
	EXPECT_EVENT(MQTTSN_EV_REGISTERED);

	/* a PUBLISH sent again after congestion is new: no DUP */
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 5, 1, 0, (const uint8_t *)"x", 1, now) == MQTTSN_OK);
	EXPECT_SENT("08 0c 20 00 05 00 02 78");
	at(6000);
	EXPECT_SENT("08 0c a0 00 05 00 02 78");
	in("07 0d 00 05 00 02 01");
	EXPECT_EVENT(MQTTSN_EV_CONGESTION);
	at(10999);
	EXPECT_QUIET();
	at(11000);
	EXPECT_SENT("08 0c 20 00 05 00 02 78");
	at(12000);
	EXPECT_SENT("08 0c a0 00 05 00 02 78");
	in("07 0d 00 05 00 02 00");
	EXPECT_EVENT(MQTTSN_EV_PUBLISHED);

	/* CONNACK congestion: CONNECT again after Twait */
	setup();
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("08 04 04 01 00 3c 63 31");
	in("03 05 01");
	EXPECT_EVENT(MQTTSN_EV_CONGESTION);
	at(4000);
	EXPECT_QUIET();
	at(5000);
	EXPECT_SENT("08 04 04 01 00 3c 63 31");
	in("03 05 00");
	EXPECT_EVENT(MQTTSN_EV_CONNECTED);
}

/* §6.9: SUBSCRIBE by name (wildcards), short name and pre-defined id */
static void test_subscribe(void)
{
	const mqttsn_event_info_t *e;
	connected();
	CHECK(mqttsn_subscribe(&c, MQTTSN_TOPIC_NORMAL, 0, "s/#", 1, now) == MQTTSN_OK);
	EXPECT_SENT("08 12 20 00 01 73 2f 23");
	at(1000);
	EXPECT_SENT("08 12 a0 00 01 73 2f 23"); /* DUP */
	in("08 13 20 00 00 00 01 00");
	e = EXPECT_EVENT(MQTTSN_EV_SUBSCRIBED);
	CHECK(e->qos == 1 && e->topic_id == 0 && e->msg_id == 1);
	CHECK(mqttsn_subscribe(&c, MQTTSN_TOPIC_SHORT, MQTTSN_SHORT("ab"), NULL, 0, now) == MQTTSN_OK);
	EXPECT_SENT("07 12 02 00 02 61 62");
	in("08 13 00 00 00 00 02 00");
	EXPECT_EVENT(MQTTSN_EV_SUBSCRIBED);
	CHECK(mqttsn_subscribe(&c, MQTTSN_TOPIC_PREDEFINED, 5, NULL, 2, now) == MQTTSN_OK);
	EXPECT_SENT("07 12 41 00 03 00 05");
	in("08 13 40 00 05 00 03 00");
	CHECK(EXPECT_EVENT(MQTTSN_EV_SUBSCRIBED)->qos == 2);
	CHECK(mqttsn_subscribe(&c, MQTTSN_TOPIC_NORMAL, 0, "ok/t", 0, now) == MQTTSN_OK);
	EXPECT_SENT("09 12 00 00 04 6f 6b 2f 74");
	in("08 13 00 00 00 00 04 02"); /* rejected */
	CHECK(EXPECT_EVENT(MQTTSN_EV_SUBSCRIBED)->return_code == MQTTSN_RC_INVALID_TOPIC_ID);
	CHECK(mqttsn_unsubscribe(&c, MQTTSN_TOPIC_NORMAL, 0, "s/#", now) == MQTTSN_OK);
	EXPECT_SENT("08 14 00 00 05 73 2f 23");
	in("04 15 00 05");
	CHECK(EXPECT_EVENT(MQTTSN_EV_UNSUBSCRIBED)->msg_id == 5);
	CHECK(mqttsn_unsubscribe(&c, MQTTSN_TOPIC_SHORT, MQTTSN_SHORT("ab"), NULL, now) == MQTTSN_OK);
	EXPECT_SENT("07 14 02 00 06 61 62");
	in("04 15 00 06");
	EXPECT_EVENT(MQTTSN_EV_UNSUBSCRIBED);
	CHECK(mqttsn_subscribe(&c, MQTTSN_TOPIC_NORMAL, 0, NULL, 0, now) == MQTTSN_ERR_TOPIC_NAME);
	CHECK(mqttsn_subscribe(&c, MQTTSN_TOPIC_NORMAL, 0, "a", -1, now) == MQTTSN_ERR_QOS);
	EXPECT_QUIET();
}

/* §6.11: PINGREQ after a keep-alive period of silence; lost after Nretry */
static void test_keepalive(void)
{
	connected();
	at(59999);
	EXPECT_QUIET();
	at(60000);
	EXPECT_SENT("02 16");
	in("02 17");
	at(61000);
	EXPECT_QUIET();
	/* a message sent postpones the next PINGREQ */
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 1, 0, 0, NULL, 0, now) == MQTTSN_OK);
	EXPECT_SENT("07 0c 00 00 01 00 00");
	evs.read = evs.n;
	at(120000);
	EXPECT_QUIET();
	at(121000);
	EXPECT_SENT("02 16");
	at(122000);
	EXPECT_SENT("02 16");
	at(123000);
	EXPECT_SENT("02 16");
	at(124000);
	EXPECT_SENT("02 16");
	EXPECT_NO_EVENT();
	at(125000);
	EXPECT_QUIET();
	CHECK(EXPECT_EVENT(MQTTSN_EV_TIMEOUT)->type == MQTTSN_PINGRESP);
	CHECK(c.state == MQTTSN_STATE_DISCONNECTED);
}

/* §6.14: sleep, wake with PINGREQ and the ClientId, buffered messages, PINGRESP */
static void test_sleep_wake(void)
{
	connected();
	CHECK(mqttsn_wake(&c, now) == MQTTSN_ERR_STATE);
	CHECK(mqttsn_sleep(&c, 300, now) == MQTTSN_OK);
	EXPECT_SENT("04 18 01 2c");
	at(1000);
	EXPECT_SENT("04 18 01 2c");
	in("02 18");
	EXPECT_EVENT(MQTTSN_EV_ASLEEP);
	CHECK(c.state == MQTTSN_STATE_ASLEEP);
	at(200000); /* no keep-alive PINGREQ while asleep */
	EXPECT_QUIET();
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 1, 1, 0, NULL, 0, now) == MQTTSN_ERR_STATE);
	CHECK(mqttsn_wake(&c, now) == MQTTSN_OK);
	EXPECT_SENT("04 16 63 31");
	CHECK(c.state == MQTTSN_STATE_AWAKE);
	at(200900);
	in("08 0c 20 00 01 00 05 61"); /* a buffered message restarts Tretry */
	EXPECT_SENT("07 0d 00 01 00 05 00");
	CHECK(publishes == 1);
	at(201500);
	EXPECT_QUIET();
	in("02 17");
	EXPECT_EVENT(MQTTSN_EV_WAKE_DONE);
	CHECK(c.state == MQTTSN_STATE_ASLEEP);
	/* a wake nobody answers: PINGREQ Nretry times, then asleep again */
	CHECK(mqttsn_wake(&c, now) == MQTTSN_OK);
	EXPECT_SENT("04 16 63 31");
	at(202500);
	at(203500);
	at(204500);
	EXPECT_SENT("04 16 63 31");
	EXPECT_SENT("04 16 63 31");
	EXPECT_SENT("04 16 63 31");
	at(205500);
	CHECK(EXPECT_EVENT(MQTTSN_EV_TIMEOUT)->type == MQTTSN_PINGRESP);
	CHECK(c.state == MQTTSN_STATE_ASLEEP);
	/* a new sleep duration, then back to active with CONNECT */
	CHECK(mqttsn_sleep(&c, 10, now) == MQTTSN_OK);
	EXPECT_SENT("04 18 00 0a");
	in("02 18");
	EXPECT_EVENT(MQTTSN_EV_ASLEEP);
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("08 04 04 01 00 3c 63 31");
	in("03 05 00");
	EXPECT_EVENT(MQTTSN_EV_CONNECTED);
	CHECK(c.state == MQTTSN_STATE_ACTIVE);
	EXPECT_QUIET();
}

/* §6.4: WILLTOPICUPD and WILLMSGUPD */
static void test_will_update(void)
{
	const mqttsn_event_info_t *e;
	connected();
	CHECK(mqttsn_will_topic_update(&c, "n/w", 2, 1, now) == MQTTSN_OK);
	EXPECT_SENT("06 1a 50 6e 2f 77");
	in("03 1b 00");
	e = EXPECT_EVENT(MQTTSN_EV_WILL_UPDATED);
	CHECK(e->type == MQTTSN_WILLTOPICRESP && e->return_code == 0);
	CHECK(mqttsn_will_msg_update(&c, (const uint8_t *)"x", 1, now) == MQTTSN_OK);
	EXPECT_SENT("03 1c 78");
	in("03 1b 00"); /* not what it waits for */
	EXPECT_NO_EVENT();
	in("03 1d 00");
	CHECK(EXPECT_EVENT(MQTTSN_EV_WILL_UPDATED)->type == MQTTSN_WILLMSGRESP);
	CHECK(mqttsn_will_topic_update(&c, NULL, 0, 0, now) == MQTTSN_OK); /* delete the will */
	EXPECT_SENT("02 1a");
	in("03 1b 00");
	EXPECT_EVENT(MQTTSN_EV_WILL_UPDATED);
}

/* §6.1: SEARCHGW broadcast, GWINFO; ADVERTISE tracking and loss */
static void test_discovery(void)
{
	const mqttsn_event_info_t *e;
	mqttsn_addr_t relay = {2, {0x0a, 0x09}};
	setup();
	c.gw_known = 0, c.gw_static = 0;
	CHECK(mqttsn_connect(&c, now) == MQTTSN_ERR_STATE);
	CHECK(mqttsn_search_gw(&c, 1, 0, now) == MQTTSN_OK);
	EXPECT_BROADCAST("03 01 01");
	at(1000);
	EXPECT_BROADCAST("03 01 01");
	in_from(&other_addr, "03 02 07");
	e = EXPECT_EVENT(MQTTSN_EV_GW_FOUND);
	CHECK(e->gw_id == 7);
	CHECK(c.gw_known && c.gw.len == 2 && c.gw.b[1] == 0x02 && c.state == MQTTSN_STATE_DISCONNECTED);
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("08 04 04 01 00 3c 63 31");
	in("03 05 00"); /* from the old address: ignored */
	EXPECT_NO_EVENT();
	in_from(&other_addr, "03 05 00");
	EXPECT_EVENT(MQTTSN_EV_CONNECTED);

	/* a GWINFO from another client carries the gateway's address */
	setup();
	c.gw_known = 0, c.gw_static = 0;
	CHECK(mqttsn_search_gw(&c, 0, 0, now) == MQTTSN_OK);
	EXPECT_BROADCAST("03 01 00");
	in_from(&relay, "05 02 03 0a 05");
	EXPECT_EVENT(MQTTSN_EV_GW_FOUND);
	CHECK(c.gw.len == 2 && c.gw.b[0] == 0x0a && c.gw.b[1] == 0x05);

	/* no answer at all: §6.1, the intervals grow exponentially */
	setup();
	c.gw_known = 0, c.gw_static = 0;
	c.gw_static = 0;
	CHECK(mqttsn_search_gw(&c, 0, 0, now) == MQTTSN_OK);
	EXPECT_BROADCAST("03 01 00");
	at(1000);
	EXPECT_BROADCAST("03 01 00");
	at(2999);
	EXPECT_QUIET();
	at(3000);
	EXPECT_BROADCAST("03 01 00");
	at(6999);
	EXPECT_QUIET();
	at(7000);
	EXPECT_BROADCAST("03 01 00");
	at(14999);
	EXPECT_QUIET();
	EXPECT_NO_EVENT();
	at(15000);
	EXPECT_QUIET();
	CHECK(EXPECT_EVENT(MQTTSN_EV_TIMEOUT)->type == MQTTSN_GWINFO);
	CHECK(c.state == MQTTSN_STATE_DISCONNECTED && !c.gw_known);

	/* §6.1: an ADVERTISE heard while searching ends the search */
	setup();
	c.gw_known = 0, c.gw_static = 0;
	c.gw_static = 0;
	CHECK(mqttsn_search_gw(&c, 1, 0, now) == MQTTSN_OK);
	EXPECT_BROADCAST("03 01 01");
	in_from(&other_addr, "05 00 07 00 0a");
	CHECK(EXPECT_EVENT(MQTTSN_EV_GW_FOUND)->gw_id == 7);
	CHECK(c.state == MQTTSN_STATE_DISCONNECTED && c.gw_known && c.gw.b[1] == 0x02);
	at(5000);
	EXPECT_QUIET(); /* no more SEARCHGW */
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("08 04 04 01 00 3c 63 31");
	in_from(&other_addr, "03 05 00");
	EXPECT_EVENT(MQTTSN_EV_CONNECTED);

	/* §6.13: a discovered gateway that stops answering is forgotten, so
	 * that the application searches again */
	CHECK(mqttsn_register(&c, "t", now) == MQTTSN_OK);
	EXPECT_SENT("07 0a 00 00 00 01 74");
	at(6000);
	at(7000);
	at(8000);
	EXPECT_SENT("07 0a 00 00 00 01 74");
	EXPECT_SENT("07 0a 00 00 00 01 74");
	EXPECT_SENT("07 0a 00 00 00 01 74");
	at(9000);
	CHECK(EXPECT_EVENT(MQTTSN_EV_TIMEOUT)->type == MQTTSN_REGACK);
	CHECK(c.state == MQTTSN_STATE_DISCONNECTED && !c.gw_known && !c.adv_known);
	CHECK(mqttsn_connect(&c, now) == MQTTSN_ERR_STATE);
	CHECK(mqttsn_search_gw(&c, 1, 0, now) == MQTTSN_OK);
	EXPECT_BROADCAST("03 01 01");
	at(20000); /* the old ADVERTISE deadline passes: no GW_LOST for a forgotten gateway */
	EXPECT_BROADCAST("03 01 01");
	EXPECT_NO_EVENT();
	/* ... while one the application named stays */
	connected();
	CHECK(mqttsn_register(&c, "t", now) == MQTTSN_OK);
	at(1000);
	at(2000);
	at(3000);
	at(4000);
	sent.read = sent.n;
	CHECK(EXPECT_EVENT(MQTTSN_EV_TIMEOUT)->type == MQTTSN_REGACK);
	CHECK(c.state == MQTTSN_STATE_DISCONNECTED && c.gw_known);
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("08 04 04 01 00 3c 63 31");

	/* ADVERTISE with Duration 0 announces no next one: not supervised;
	 * a long Duration times a large Nadv does not wrap the clock */
	setup();
	in("05 00 01 00 00");
	CHECK(!c.adv_known);
	cfg.n_adv = 200;
	in("05 00 01 ff ff");
	CHECK(c.adv_known && c.adv_deadline == now + 0x7FFFFFFFu);
	at(100000);
	EXPECT_NO_EVENT();
	fresh_config();

	/* §6.1: a random delay first; another client's identical SEARCHGW
	 * heard meanwhile stands for ours */
	setup();
	c.gw_known = 0, c.gw_static = 0;
	CHECK(mqttsn_search_gw(&c, 1, 300, now) == MQTTSN_OK);
	EXPECT_QUIET();
	at(299);
	EXPECT_QUIET();
	at(300);
	EXPECT_BROADCAST("03 01 01");
	at(1300);
	EXPECT_BROADCAST("03 01 01");
	in_from(&other_addr, "03 02 07");
	EXPECT_EVENT(MQTTSN_EV_GW_FOUND);
	setup();
	c.gw_known = 0, c.gw_static = 0;
	now = 1000;
	CHECK(mqttsn_search_gw(&c, 1, 300, now) == MQTTSN_OK);
	in_from(&relay, "03 01 02"); /* another radius: not the same search */
	in_from(&relay, "03 01 01");
	at(300);
	EXPECT_QUIET(); /* not sent */
	at(999);
	EXPECT_QUIET();
	at(1000); /* Tretry after the other client's, as if it were ours */
	EXPECT_BROADCAST("03 01 01");
	in_from(&other_addr, "03 02 07");
	EXPECT_EVENT(MQTTSN_EV_GW_FOUND);

	/* ADVERTISE every 10 s, lost after Nadv = 2 missed */
	setup();
	c.gw_known = 0, c.gw_static = 0;
	in_from(&other_addr, "05 00 07 00 0a");
	CHECK(EXPECT_EVENT(MQTTSN_EV_GW_FOUND)->gw_id == 7);
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	in_from(&other_addr, "03 05 00");
	EXPECT_EVENT(MQTTSN_EV_CONNECTED);
	at(15000);
	in_from(&other_addr, "05 00 07 00 0a"); /* refreshes: lost at 35 s now */
	in_from(&gw_addr, "05 00 08 00 01");    /* another gateway's address: no effect */
	at(34999);
	EXPECT_NO_EVENT();
	at(35000);
	EXPECT_EVENT(MQTTSN_EV_GW_LOST);
	CHECK(c.state == MQTTSN_STATE_DISCONNECTED && !c.gw_known);
	sent.read = sent.n;

	/* the gateway the application named is tracked by its ADVERTISEs too */
	connected();
	in("05 00 03 00 0a");
	CHECK(c.gw_id == 3);
	at(19999);
	EXPECT_NO_EVENT();
	at(20000);
	EXPECT_EVENT(MQTTSN_EV_GW_LOST);
	CHECK(c.state == MQTTSN_STATE_DISCONNECTED);
	sent.read = sent.n;
}

/* §5.5: a node that encapsulates its own messages */
static void test_encapsulation(void)
{
	static const uint8_t node[] = {0x12, 0x34};
	fresh_config();
	cfg.encapsulate = 1;
	cfg.node_id = node;
	cfg.node_id_len = 2;
	setup();
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("05 fe 00 12 34 08 04 04 01 00 3c 63 31");
	in("05 fe 00 99 99 03 05 00"); /* for another node */
	EXPECT_NO_EVENT();
	in("05 fe 00 12 34 03 05 00");
	EXPECT_EVENT(MQTTSN_EV_CONNECTED);
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 1, 1, 0, (const uint8_t *)"x", 1, now) == MQTTSN_OK);
	EXPECT_SENT("05 fe 00 12 34 08 0c 20 00 01 00 01 78");
	at(1000); /* DUP is set in the encapsulated PUBLISH's Flags */
	EXPECT_SENT("05 fe 00 12 34 08 0c a0 00 01 00 01 78");
	in("05 fe 00 12 34 08 0c 20 00 01 00 02 61"); /* incoming, acked encapsulated */
	EXPECT_SENT("05 fe 00 12 34 07 0d 00 01 00 02 00");
	in("05 fe 00 12 34 07 0d 00 01 00 01 00");
	EXPECT_EVENT(MQTTSN_EV_PUBLISHED);
	fresh_config();
}

/* §6.12: DISCONNECT both ways */
static void test_disconnect(void)
{
	connected();
	CHECK(mqttsn_disconnect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("02 18");
	in("02 18");
	EXPECT_EVENT(MQTTSN_EV_DISCONNECTED);
	CHECK(c.state == MQTTSN_STATE_DISCONNECTED);
	connected();
	CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 1, 1, 0, NULL, 0, now) == MQTTSN_OK);
	EXPECT_SENT("07 0c 20 00 01 00 01");
	in("02 18"); /* the gateway ends it: the transaction goes too */
	EXPECT_EVENT(MQTTSN_EV_DISCONNECTED);
	CHECK(c.state == MQTTSN_STATE_DISCONNECTED && c.await == 0);
	at(10000);
	EXPECT_QUIET();
}

/* what the client must ignore, and a clock that wraps */
static void test_robustness(void)
{
	connected();
	in_from(&other_addr, "08 0c 00 00 01 00 00 61"); /* not the gateway */
	in("08 0c 18 00 01 00 00 61");                   /* Will flag in PUBLISH: malformed */
	in("09 0c 00 00 01 00 00 61");                   /* Length disagrees */
	in("02 99");                                     /* reserved type */
	CHECK(publishes == 0);
	EXPECT_QUIET();
	EXPECT_NO_EVENT();
	sent.fail = 1;
	CHECK(mqttsn_register(&c, "a", now) == MQTTSN_ERR_TRANSPORT);
	sent.fail = 0;
	CHECK(c.await == 0 && c.tx_len == 0);
	/* a payload larger than tx is refused before anything is sent */
	{
		static uint8_t big[300];
		CHECK(mqttsn_publish(&c, MQTTSN_TOPIC_NORMAL, 1, 1, 0, big, sizeof big, now) == MQTTSN_ERR_TOO_LARGE);
		CHECK(c.await == 0);
	}
	/* retransmission across the 32-bit wrap of the clock */
	setup();
	now = 0xFFFFFF00u;
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("08 04 04 01 00 3c 63 31");
	now += 999;
	mqttsn_client_poll(&c, now);
	EXPECT_QUIET();
	now += 1;
	mqttsn_client_poll(&c, now);
	EXPECT_SENT("08 04 04 01 00 3c 63 31");
}

/* a transport with recv: poll reads every waiting datagram; the gateway's
 * PINGREQ is answered (§6.11); msg ids skip 0 when they wrap */
static struct {
	uint8_t data[4][16];
	size_t len[4];
	int n, next, fail;
} queue;

static int fake_recv(void *ctx, mqttsn_addr_t *from, uint8_t *buf, size_t cap)
{
	(void)ctx;
	if (queue.fail)
		return -1;
	if (queue.next == queue.n)
		return 0;
	*from = gw_addr;
	if (queue.len[queue.next] > cap)
		return 0;
	memcpy(buf, queue.data[queue.next], queue.len[queue.next]);
	return (int)queue.len[queue.next++];
}

static void push(const char *hex)
{
	queue.len[queue.n] = unhex(hex, queue.data[queue.n]);
	queue.n++;
}

static void test_poll_recv(void)
{
	static const mqttsn_transport_t with_recv = {fake_send, fake_recv, NULL};
	memset(&queue, 0, sizeof queue);
	setup();
	mqttsn_client_init(&c, &cfg, &with_recv, tx, sizeof tx, rx, sizeof rx);
	mqttsn_client_set_gateway(&c, &gw_addr, 1);
	CHECK(mqttsn_connect(&c, now) == MQTTSN_OK);
	EXPECT_SENT("08 04 04 01 00 3c 63 31");
	push("03 05 00");
	push("02 16");
	push("08 0c 00 00 01 00 00 61");
	CHECK(mqttsn_client_poll(&c, now) == MQTTSN_OK);
	EXPECT_EVENT(MQTTSN_EV_CONNECTED);
	EXPECT_SENT("02 17"); /* PINGRESP */
	CHECK(publishes == 1 && queue.next == 3);
	queue.fail = 1;
	CHECK(mqttsn_client_poll(&c, now) == MQTTSN_ERR_TRANSPORT);
	queue.fail = 0;
	c.next_msg_id = 0xFFFF;
	CHECK(mqttsn_register(&c, "a", now) == MQTTSN_OK);
	EXPECT_SENT("07 0a 00 00 ff ff 61");
	push("07 0b 00 05 ff ff 00");
	mqttsn_client_poll(&c, now);
	EXPECT_EVENT(MQTTSN_EV_REGISTERED);
	CHECK(mqttsn_register(&c, "a", now) == MQTTSN_OK);
	EXPECT_SENT("07 0a 00 00 00 01 61"); /* 0x0000 is skipped */
	EXPECT_QUIET();
}

/* codec rules the fixtures do not reach: what the encoder refuses */
static void test_codec_encode_rules(void)
{
	mqttsn_msg_t m;
	uint8_t buf[400];
	static uint8_t data[300];
	memset(&m, 0, sizeof m);
	m.type = MQTTSN_PUBLISH;
	m.qos = 3;
	CHECK(mqttsn_encode(&m, buf, sizeof buf) == MQTTSN_ERR_QOS);
	m.qos = -1;
	CHECK(mqttsn_encode(&m, buf, sizeof buf) == MQTTSN_ERR_TOPIC_ID_TYPE); /* §6.8 */
	m.qos = 0;
	m.payload = data;
	m.payload_len = sizeof data;
	CHECK(mqttsn_encode(&m, buf, sizeof buf) == 4 + 5 + 300); /* the 3-octet Length form */
	CHECK(buf[0] == 0x01 && buf[1] == 0x01 && buf[2] == 0x35 && buf[3] == MQTTSN_PUBLISH);
	memset(&m, 0, sizeof m);
	m.type = MQTTSN_CONNECT;
	m.payload = (const uint8_t *)"abcdefghijklmnopqrstuvwx"; /* 24 octets */
	m.payload_len = 24;
	CHECK(mqttsn_encode(&m, buf, sizeof buf) == MQTTSN_ERR_CLIENT_ID);
	memset(&m, 0, sizeof m);
	m.type = MQTTSN_WILLTOPIC;
	m.qos = 1; /* the empty form has no Flags */
	CHECK(mqttsn_encode(&m, buf, sizeof buf) == MQTTSN_ERR_FLAGS);
	memset(&m, 0, sizeof m);
	m.type = MQTTSN_SUBSCRIBE;
	m.topic_id = 5; /* a topic id with a normal topic name */
	m.payload = (const uint8_t *)"a";
	m.payload_len = 1;
	CHECK(mqttsn_encode(&m, buf, sizeof buf) == MQTTSN_ERR_TOPIC_NAME);
	memset(&m, 0, sizeof m);
	m.type = MQTTSN_REGISTER;
	m.payload = (const uint8_t *)"a\0b";
	m.payload_len = 3;
	CHECK(mqttsn_encode(&m, buf, sizeof buf) == MQTTSN_ERR_TOPIC_NAME);
	memset(&m, 0, sizeof m);
	m.type = 0x03; /* reserved */
	CHECK(mqttsn_encode(&m, buf, sizeof buf) == MQTTSN_ERR_UNKNOWN_TYPE);
	memset(&m, 0, sizeof m);
	m.type = MQTTSN_PINGRESP;
	m.encapsulated = 1;
	m.ctrl = 4;
	CHECK(mqttsn_encode(&m, buf, sizeof buf) == MQTTSN_ERR_ENCAPSULATION);
	/* UTF-8 as Go's utf8.Valid: overlong, surrogate, beyond U+10FFFF */
	CHECK(mqttsn_valid_utf8((const uint8_t *)"\xc3\xbc", 2));
	CHECK(mqttsn_valid_utf8((const uint8_t *)"\xf0\x9f\x98\x80", 4));
	CHECK(!mqttsn_valid_utf8((const uint8_t *)"\xc0\xaf", 2));
	CHECK(!mqttsn_valid_utf8((const uint8_t *)"\xe0\x80\xaf", 3));
	CHECK(!mqttsn_valid_utf8((const uint8_t *)"\xed\xa0\x80", 3));
	CHECK(!mqttsn_valid_utf8((const uint8_t *)"\xf4\x90\x80\x80", 4));
	CHECK(!mqttsn_valid_utf8((const uint8_t *)"\xc3", 1));
	CHECK(!mqttsn_valid_utf8((const uint8_t *)"\x80", 1));
}

void client_tests(void)
{
	int before = test_failures, n = 0;
	fresh_config();
#define T(fn) \
	do {      \
		RUN(fn); \
		n++;     \
	} while (0)
	T(test_connect_will);
	T(test_connect_rejected);
	T(test_publish_retry_dup);
	T(test_publish_qos1_puback);
	T(test_publish_qos2);
	T(test_publish_qos0_minus1);
	T(test_incoming_qos2);
	T(test_awake_register_qos2);
	T(test_incoming_qos0_qos1);
	T(test_register);
	T(test_congestion);
	T(test_subscribe);
	T(test_keepalive);
	T(test_sleep_wake);
	T(test_will_update);
	T(test_discovery);
	T(test_encapsulation);
	T(test_disconnect);
	T(test_robustness);
	T(test_poll_recv);
	T(test_codec_encode_rules);
#undef T
	printf("client: %d tests, %d failed checks\n", n, test_failures - before);
}
