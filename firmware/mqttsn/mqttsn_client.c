/*
 * mqttsn_client.c - MQTT-SN 1.2 client state machine. See mqttsn_client.h.
 */
#include "mqttsn_client.h"

#include <string.h>

/* "Best practice" values, MQTT-SN 1.2 §7.2 Table 30. */
#define DEF_T_RETRY 10000u
#define DEF_N_RETRY 5u
#define DEF_T_WAIT 300000u
#define DEF_N_ADV 3u

#define F_DUP 0x80u

/* Room for every message the client sends without keeping it: acks, the
 * keep-alive PINGREQ, with an encapsulation header. */
#define SMALL_BUF (3 + MQTTSN_NODE_ID_MAX + 2 + 5)

static uint32_t t_retry(const mqttsn_client_t *c) { return c->cfg->t_retry_ms ? c->cfg->t_retry_ms : DEF_T_RETRY; }
static uint8_t n_retry(const mqttsn_client_t *c) { return c->cfg->n_retry ? c->cfg->n_retry : DEF_N_RETRY; }

/* due reports whether the time t has come, across the 32-bit wrap. */
static int due(uint32_t now, uint32_t t) { return (int32_t)(now - t) >= 0; }

static void emit(mqttsn_client_t *c, int ev, const mqttsn_event_info_t *info)
{
	if (c->cfg->on_event)
		c->cfg->on_event(c->cfg->cb_ctx, ev, info);
}

/* emit_msg reports an event about the received (or sent) message m. */
static void emit_msg(mqttsn_client_t *c, int ev, const mqttsn_msg_t *m)
{
	mqttsn_event_info_t info;
	memset(&info, 0, sizeof info);
	info.type = m->type;
	info.return_code = m->return_code;
	info.qos = m->qos;
	info.gw_id = m->gw_id;
	info.topic_id = m->topic_id;
	info.msg_id = m->msg_id;
	if (m->type == MQTTSN_REGISTER) {
		info.name = m->payload;
		info.name_len = m->payload_len;
	}
	emit(c, ev, &info);
}

static void emit_type(mqttsn_client_t *c, int ev, uint8_t type)
{
	mqttsn_msg_t m;
	memset(&m, 0, sizeof m);
	m.type = type;
	m.msg_id = c->msg_id;
	m.topic_id = c->topic_id;
	m.gw_id = c->gw_id;
	emit_msg(c, ev, &m);
}

void mqttsn_client_init(mqttsn_client_t *c, const mqttsn_config_t *cfg, const mqttsn_transport_t *tr,
			uint8_t *tx, uint16_t tx_cap, uint8_t *rx, uint16_t rx_cap)
{
	memset(c, 0, sizeof *c);
	c->cfg = cfg;
	c->tr = tr;
	c->tx = tx;
	c->tx_cap = tx_cap;
	c->rx = rx;
	c->rx_cap = rx_cap;
	c->next_msg_id = 1;
}

void mqttsn_client_set_gateway(mqttsn_client_t *c, const mqttsn_addr_t *gw, uint8_t gw_id)
{
	c->gw = *gw;
	c->gw_id = gw_id;
	c->gw_known = 1;
	c->gw_static = 1;
}

/* forget_gw drops a gateway found by discovery (§6.1, §6.13): the
 * application searches again. A gateway it named itself stays. */
static void forget_gw(mqttsn_client_t *c)
{
	c->adv_known = 0;
	if (!c->gw_static)
		c->gw_known = 0;
}

static uint16_t new_msg_id(mqttsn_client_t *c)
{
	uint16_t id = c->next_msg_id++;
	if (c->next_msg_id == 0)
		c->next_msg_id = 1; /* 0x0000 is the "no msg id" of QoS 0 */
	return id;
}

/* frame encodes m, in the forwarder encapsulation when configured (§5.5);
 * checked against the codec's rules unless it is made of fixed fields only. */
static int frame(const mqttsn_client_t *c, mqttsn_msg_t *m, uint8_t *buf, size_t cap, int checked)
{
	if (c->cfg->encapsulate) {
		if (c->cfg->node_id_len > MQTTSN_NODE_ID_MAX)
			return MQTTSN_ERR_ENCAPSULATION;
		m->encapsulated = 1;
		m->node_id = c->cfg->node_id;
		m->node_id_len = c->cfg->node_id_len;
	}
	return checked ? mqttsn_encode(m, buf, cap) : mqttsn_encode_unchecked(m, buf, cap);
}

static int xmit(mqttsn_client_t *c, const uint8_t *buf, size_t len, int broadcast, uint32_t now)
{
	if (c->tr->send(c->tr->ctx, broadcast ? NULL : &c->gw, buf, len) < 0)
		return MQTTSN_ERR_TRANSPORT;
	c->last_tx = now;
	return MQTTSN_OK;
}

/* send_small sends a message the client does not keep for retransmission:
 * an acknowledgement or PINGREQ, fixed fields the client sets itself. */
static int send_small(mqttsn_client_t *c, mqttsn_msg_t *m, uint32_t now)
{
	uint8_t buf[SMALL_BUF];
	int n = frame(c, m, buf, sizeof buf, 0);
	return n < 0 ? n : xmit(c, buf, (size_t)n, 0, now);
}

/* load encodes m into tx as the message in flight, awaiting `await`. */
static int load(mqttsn_client_t *c, mqttsn_msg_t *m, uint8_t await, uint32_t now)
{
	int n = frame(c, m, c->tx, c->tx_cap, 1);
	if (n < 0)
		return n;
	c->tx_len = (uint16_t)n;
	c->tx_flags_off = 0;
	if (m->type == MQTTSN_PUBLISH || m->type == MQTTSN_SUBSCRIBE) {
		/* §5.2.1: the Flags octet follows a 2- or 4-octet header */
		uint8_t off = c->cfg->encapsulate ? (uint8_t)(3 + c->cfg->node_id_len) : 0;
		c->tx_flags_off = (uint8_t)(off + (c->tx[off] == 0x01 ? 4 : 2));
	}
	c->await = await;
	c->tries = 0;
	c->msg_id = m->msg_id;
	c->deadline = now + t_retry(c);
	return MQTTSN_OK;
}

/* begin starts a transaction: m is kept in tx, sent, and retransmitted
 * every Tretry until `await` arrives (§6.13). */
static int begin(mqttsn_client_t *c, mqttsn_msg_t *m, uint8_t await, uint32_t now)
{
	int err = load(c, m, await, now);
	if (err == 0)
		err = xmit(c, c->tx, c->tx_len, m->type == MQTTSN_SEARCHGW, now);
	if (err != 0) {
		c->tx_len = 0;
		c->await = 0;
	}
	return err;
}

static void end(mqttsn_client_t *c)
{
	c->await = 0;
	c->tx_len = 0;
	c->fresh = 0;
	c->unsent = 0;
}

/* congestion handles "rejected: congestion": the same message is sent again,
 * as a new one, after Twait (§6.5, §6.6, §6.9). */
static void congestion(mqttsn_client_t *c, const mqttsn_msg_t *m, uint32_t now)
{
	c->deadline = now + (c->cfg->t_wait_ms ? c->cfg->t_wait_ms : DEF_T_WAIT);
	c->tries = 0;
	c->fresh = 1;
	emit_msg(c, MQTTSN_EV_CONGESTION, m);
}

static mqttsn_msg_t blank(uint8_t type)
{
	mqttsn_msg_t m;
	memset(&m, 0, sizeof m);
	m.type = type;
	return m;
}

static int ready(const mqttsn_client_t *c, uint8_t state)
{
	if (c->state != state)
		return MQTTSN_ERR_STATE;
	return c->await || c->tx_len ? MQTTSN_ERR_BUSY : MQTTSN_OK;
}

int mqttsn_search_gw(mqttsn_client_t *c, uint8_t radius, uint32_t delay_ms, uint32_t now)
{
	mqttsn_msg_t m = blank(MQTTSN_SEARCHGW); /* §5.4.2, §6.1 */
	int err = ready(c, MQTTSN_STATE_DISCONNECTED);
	if (err != 0)
		return err;
	m.radius = radius;
	if (delay_ms == 0) {
		err = begin(c, &m, MQTTSN_GWINFO, now);
	} else if ((err = load(c, &m, MQTTSN_GWINFO, now)) == 0) {
		/* §6.1: sent after a random delay, unless another client's
		 * identical SEARCHGW is heard first */
		c->unsent = 1;
		c->deadline = now + delay_ms;
	}
	if (err == 0)
		c->state = MQTTSN_STATE_SEARCHING;
	return err;
}

/* load_connect puts the CONNECT of the configuration in tx (§5.4.4). */
static int load_connect(mqttsn_client_t *c, uint32_t now)
{
	mqttsn_msg_t m = blank(MQTTSN_CONNECT);
	const char *id = c->cfg->client_id;
	m.will = c->cfg->will_topic != NULL;
	m.clean_session = c->cfg->clean_session;
	m.duration = c->cfg->keep_alive_s;
	m.payload = (const uint8_t *)id;
	m.payload_len = id ? (uint16_t)strlen(id) : 0;
	return load(c, &m, MQTTSN_CONNACK, now);
}

int mqttsn_connect(mqttsn_client_t *c, uint32_t now)
{
	int err;
	if (!c->gw_known)
		return MQTTSN_ERR_STATE;
	/* §6.14: from asleep or awake a client returns to active with CONNECT */
	if (c->state == MQTTSN_STATE_ASLEEP || c->state == MQTTSN_STATE_AWAKE)
		end(c);
	else if ((err = ready(c, MQTTSN_STATE_DISCONNECTED)) != 0)
		return err;
	if ((err = load_connect(c, now)) != 0)
		return err;
	if ((err = xmit(c, c->tx, c->tx_len, 0, now)) != 0) {
		end(c);
		return err;
	}
	c->state = MQTTSN_STATE_CONNECTING;
	c->ping_out = 0;
	return MQTTSN_OK;
}

int mqttsn_register(mqttsn_client_t *c, const char *topic, uint32_t now)
{
	mqttsn_msg_t m = blank(MQTTSN_REGISTER); /* §5.4.10, §6.5 */
	int err = ready(c, MQTTSN_STATE_ACTIVE);
	if (err != 0)
		return err;
	if (topic == NULL)
		return MQTTSN_ERR_TOPIC_NAME;
	m.msg_id = new_msg_id(c);
	m.payload = (const uint8_t *)topic;
	m.payload_len = (uint16_t)strlen(topic);
	c->topic_id = 0;
	return begin(c, &m, MQTTSN_REGACK, now);
}

int mqttsn_publish(mqttsn_client_t *c, uint8_t topic_id_type, uint16_t topic_id, int8_t qos, uint8_t retain,
		   const uint8_t *data, uint16_t len, uint32_t now)
{
	mqttsn_msg_t m = blank(MQTTSN_PUBLISH); /* §5.4.12 */
	int err;
	if (qos < 0) {
		/* §6.8: QoS -1 needs no connection, only the gateway's address */
		if (!c->gw_known)
			return MQTTSN_ERR_STATE;
		if (c->await || c->tx_len)
			return MQTTSN_ERR_BUSY;
	} else if ((err = ready(c, MQTTSN_STATE_ACTIVE)) != 0) {
		return err;
	}
	if (qos > 2)
		return MQTTSN_ERR_QOS;
	m.qos = qos;
	m.retain = retain;
	m.topic_id_type = topic_id_type;
	m.topic_id = topic_id;
	m.payload = data;
	m.payload_len = len;
	if (qos > 0)
		m.msg_id = new_msg_id(c);
	c->topic_id = topic_id;
	err = begin(c, &m, qos == 1 ? MQTTSN_PUBACK : MQTTSN_PUBREC, now);
	if (err == 0 && qos <= 0) {
		/* nothing to wait for; a PUBACK may still reject it (§6.6) */
		end(c);
		emit_msg(c, MQTTSN_EV_PUBLISHED, &m);
	}
	return err;
}

/* topic_msg fills the topic field of SUBSCRIBE and UNSUBSCRIBE (§5.4.15). */
static int topic_msg(mqttsn_client_t *c, mqttsn_msg_t *m, uint8_t tt, uint16_t id, const char *topic)
{
	int err = ready(c, MQTTSN_STATE_ACTIVE);
	if (err != 0)
		return err;
	m->topic_id_type = tt;
	if (tt == MQTTSN_TOPIC_NORMAL) {
		if (topic == NULL)
			return MQTTSN_ERR_TOPIC_NAME;
		m->payload = (const uint8_t *)topic;
		m->payload_len = (uint16_t)strlen(topic);
	} else {
		m->topic_id = id;
	}
	m->msg_id = new_msg_id(c);
	c->topic_id = id;
	return MQTTSN_OK;
}

int mqttsn_subscribe(mqttsn_client_t *c, uint8_t topic_id_type, uint16_t topic_id, const char *topic,
		     int8_t qos, uint32_t now)
{
	mqttsn_msg_t m = blank(MQTTSN_SUBSCRIBE); /* §6.9 */
	int err = topic_msg(c, &m, topic_id_type, topic_id, topic);
	if (err != 0)
		return err;
	m.qos = qos;
	return begin(c, &m, MQTTSN_SUBACK, now);
}

int mqttsn_unsubscribe(mqttsn_client_t *c, uint8_t topic_id_type, uint16_t topic_id, const char *topic,
		       uint32_t now)
{
	mqttsn_msg_t m = blank(MQTTSN_UNSUBSCRIBE); /* §6.9 */
	int err = topic_msg(c, &m, topic_id_type, topic_id, topic);
	return err != 0 ? err : begin(c, &m, MQTTSN_UNSUBACK, now);
}

int mqttsn_will_topic_update(mqttsn_client_t *c, const char *topic, int8_t qos, uint8_t retain, uint32_t now)
{
	mqttsn_msg_t m = blank(MQTTSN_WILLTOPICUPD); /* §5.4.22, §6.4 */
	int err = ready(c, MQTTSN_STATE_ACTIVE);
	if (err != 0)
		return err;
	if (topic != NULL && topic[0] != '\0') { /* empty: delete the will */
		m.qos = qos;
		m.retain = retain;
		m.payload = (const uint8_t *)topic;
		m.payload_len = (uint16_t)strlen(topic);
	}
	return begin(c, &m, MQTTSN_WILLTOPICRESP, now);
}

int mqttsn_will_msg_update(mqttsn_client_t *c, const uint8_t *msg, uint16_t len, uint32_t now)
{
	mqttsn_msg_t m = blank(MQTTSN_WILLMSGUPD); /* §5.4.23, §6.4 */
	int err = ready(c, MQTTSN_STATE_ACTIVE);
	if (err != 0)
		return err;
	m.payload = msg;
	m.payload_len = len;
	return begin(c, &m, MQTTSN_WILLMSGRESP, now);
}

int mqttsn_sleep(mqttsn_client_t *c, uint16_t duration_s, uint32_t now)
{
	mqttsn_msg_t m = blank(MQTTSN_DISCONNECT); /* §5.4.21, §6.14 */
	int err;
	uint8_t was = c->state;
	if (c->state == MQTTSN_STATE_ASLEEP) /* a new sleep duration */
		c->state = MQTTSN_STATE_ACTIVE;
	if ((err = ready(c, MQTTSN_STATE_ACTIVE)) == 0) {
		m.has_duration = 1;
		m.duration = duration_s;
		err = begin(c, &m, MQTTSN_DISCONNECT, now);
	}
	if (err == 0) {
		c->state = MQTTSN_STATE_DISCONNECTING;
		c->sleep_req = 1;
	} else {
		c->state = was; /* still asleep, or still active */
	}
	return err;
}

int mqttsn_wake(mqttsn_client_t *c, uint32_t now)
{
	mqttsn_msg_t m = blank(MQTTSN_PINGREQ); /* §5.4.19, §6.14: with the ClientId */
	int err = ready(c, MQTTSN_STATE_ASLEEP);
	if (err != 0)
		return err;
	m.payload = (const uint8_t *)c->cfg->client_id;
	m.payload_len = m.payload ? (uint16_t)strlen(c->cfg->client_id) : 0;
	if ((err = begin(c, &m, MQTTSN_PINGRESP, now)) == 0)
		c->state = MQTTSN_STATE_AWAKE;
	return err;
}

int mqttsn_disconnect(mqttsn_client_t *c, uint32_t now)
{
	mqttsn_msg_t m = blank(MQTTSN_DISCONNECT); /* §5.4.21, §6.12 */
	int err;
	if (c->state != MQTTSN_STATE_ACTIVE && c->state != MQTTSN_STATE_ASLEEP && c->state != MQTTSN_STATE_AWAKE)
		return MQTTSN_ERR_STATE;
	end(c); /* a disconnect abandons what is in flight */
	if ((err = begin(c, &m, MQTTSN_DISCONNECT, now)) == 0) {
		c->state = MQTTSN_STATE_DISCONNECTING;
		c->sleep_req = 0;
	}
	return err;
}

/* lost ends everything: the connection to the gateway is gone (§6.13). */
static void lost(mqttsn_client_t *c, uint8_t type)
{
	end(c);
	c->ping_out = 0;
	c->state = MQTTSN_STATE_DISCONNECTED;
	forget_gw(c);
	emit_type(c, MQTTSN_EV_TIMEOUT, type);
}

static void retransmit(mqttsn_client_t *c, uint32_t now)
{
	if (c->unsent) { /* the delayed first SEARCHGW (§6.1) */
		c->unsent = 0;
		c->deadline = now + t_retry(c);
		(void)xmit(c, c->tx, c->tx_len, 1, now);
		return;
	}
	if (c->tries >= n_retry(c)) {
		uint8_t await = c->await;
		if (c->state == MQTTSN_STATE_AWAKE) {
			/* §6.14: limit the PINGREQs, then go back to sleep */
			end(c);
			c->state = MQTTSN_STATE_ASLEEP;
			emit_type(c, MQTTSN_EV_TIMEOUT, await);
		} else {
			lost(c, await);
		}
		return;
	}
	if (c->fresh && c->await == MQTTSN_CONNACK)
		(void)load_connect(c, now); /* after congestion: CONNECT, not a will message */
	c->tries++;
	if (c->tx_flags_off) {
		/* §5.3.4: DUP on a retransmitted PUBLISH or SUBSCRIBE, not on a
		 * message sent again after a congestion rejection */
		if (c->fresh)
			c->tx[c->tx_flags_off] &= (uint8_t)~F_DUP;
		else
			c->tx[c->tx_flags_off] |= F_DUP;
	}
	c->fresh = 0;
	if (c->await == MQTTSN_GWINFO) {
		/* §6.1: SEARCHGW again at exponentially growing intervals
		 * (Tretry, 2, 4, 8, then 16 Tretry) */
		c->deadline = now + (t_retry(c) << (c->tries < 4 ? c->tries : 4));
		(void)xmit(c, c->tx, c->tx_len, 1, now);
		return;
	}
	c->deadline = now + t_retry(c);
	(void)xmit(c, c->tx, c->tx_len, 0, now);
}

int mqttsn_client_poll(mqttsn_client_t *c, uint32_t now)
{
	int n;
	if (c->tr->recv) {
		mqttsn_addr_t from;
		while ((n = c->tr->recv(c->tr->ctx, &from, c->rx, c->rx_cap)) > 0)
			mqttsn_client_input(c, &from, c->rx, (size_t)n, now);
		if (n < 0)
			return MQTTSN_ERR_TRANSPORT;
	}
	if (c->await && due(now, c->deadline))
		retransmit(c, now);
	/* §6.11: PINGREQ when nothing was sent for a keep-alive period */
	if (c->state == MQTTSN_STATE_ACTIVE && c->cfg->keep_alive_s) {
		int send = 0;
		if (c->ping_out) {
			if (due(now, c->ping_deadline)) {
				if (c->ping_out > n_retry(c)) {
					lost(c, MQTTSN_PINGRESP);
					return MQTTSN_OK;
				}
				send = 1;
			}
		} else if (due(now, c->last_tx + (uint32_t)c->cfg->keep_alive_s * 1000u)) {
			send = 1;
		}
		if (send) {
			mqttsn_msg_t m = blank(MQTTSN_PINGREQ);
			c->ping_out++;
			c->ping_deadline = now + t_retry(c);
			(void)send_small(c, &m, now);
		}
	}
	/* §6.1: a gateway that misses Nadv ADVERTISEs is down */
	if (c->adv_known && due(now, c->adv_deadline)) {
		c->adv_known = 0;
		c->gw_known = 0;
		c->gw_static = 0;
		if (c->state != MQTTSN_STATE_DISCONNECTED) {
			end(c);
			c->state = MQTTSN_STATE_DISCONNECTED;
		}
		emit_type(c, MQTTSN_EV_GW_LOST, MQTTSN_ADVERTISE);
	}
	return MQTTSN_OK;
}

static int addr_eq(const mqttsn_addr_t *a, const mqttsn_addr_t *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

static int qos2_seen(mqttsn_client_t *c, uint16_t id, int remove)
{
	for (unsigned i = 0; i < MQTTSN_QOS2_IN; i++) {
		if (c->qos2_in[i] == id && id != 0) {
			if (remove)
				c->qos2_in[i] = 0;
			return 1;
		}
	}
	return 0;
}

static void qos2_add(mqttsn_client_t *c, uint16_t id)
{
	unsigned i;
	for (i = 0; i < MQTTSN_QOS2_IN - 1 && c->qos2_in[i] != 0; i++)
		;
	if (c->qos2_in[i] != 0) /* full: forget the oldest */
		memmove(c->qos2_in, c->qos2_in + 1, sizeof c->qos2_in - sizeof c->qos2_in[0]);
	c->qos2_in[i] = id;
}

/* ack sends a message made of a msg id, and maybe a topic id and return
 * code (PUBACK, PUBREC, PUBCOMP, PUBREL, REGACK). */
static void ack(mqttsn_client_t *c, uint8_t type, uint16_t topic_id, uint16_t msg_id, uint8_t rc, uint32_t now)
{
	mqttsn_msg_t m = blank(type);
	m.topic_id = topic_id;
	m.msg_id = msg_id;
	m.return_code = rc;
	(void)send_small(c, &m, now);
}

/* on_publish handles the gateway's PUBLISH (§6.10) at QoS 0, 1 and 2. */
static void on_publish(mqttsn_client_t *c, const mqttsn_msg_t *m, uint32_t now)
{
	uint8_t rc = MQTTSN_RC_ACCEPTED;
	if (m->qos == 2 && qos2_seen(c, m->msg_id, 0)) {
		/* a resent PUBLISH whose PUBREC was lost: acknowledge, deliver once */
		ack(c, MQTTSN_PUBREC, 0, m->msg_id, 0, now);
		return;
	}
	if (c->cfg->on_publish)
		rc = c->cfg->on_publish(c->cfg->cb_ctx, m);
	if (rc != MQTTSN_RC_ACCEPTED) /* §6.10: a PUBACK rejects it, at any QoS */
		ack(c, MQTTSN_PUBACK, m->topic_id, m->msg_id, rc, now);
	else if (m->qos == 1)
		ack(c, MQTTSN_PUBACK, m->topic_id, m->msg_id, MQTTSN_RC_ACCEPTED, now);
	else if (m->qos == 2) {
		qos2_add(c, m->msg_id);
		ack(c, MQTTSN_PUBREC, 0, m->msg_id, 0, now);
	}
}

/* reply handles a message that may end the transaction in flight. It
 * returns 1 when it did. */
static int reply(mqttsn_client_t *c, const mqttsn_msg_t *m, uint32_t now)
{
	int ev = 0;
	uint8_t t = m->type;
	if (!c->await)
		return 0;
	switch (t) {
	case MQTTSN_WILLTOPICREQ: /* §6.3: the gateway asks for the will */
	case MQTTSN_WILLMSGREQ: {
		mqttsn_msg_t w;
		if (c->state != MQTTSN_STATE_CONNECTING)
			return 0;
		if (t == MQTTSN_WILLTOPICREQ) {
			w = blank(MQTTSN_WILLTOPIC);
			w.qos = c->cfg->will_qos;
			w.retain = c->cfg->will_retain;
			w.payload = (const uint8_t *)c->cfg->will_topic;
			w.payload_len = w.payload ? (uint16_t)strlen(c->cfg->will_topic) : 0;
			if (w.payload_len == 0)
				w.qos = 0, w.retain = 0;
		} else {
			w = blank(MQTTSN_WILLMSG);
			w.payload = c->cfg->will_msg;
			w.payload_len = c->cfg->will_msg_len;
		}
		/* the will message replaces CONNECT as what is retransmitted */
		if (load(c, &w, MQTTSN_CONNACK, now) == 0)
			(void)xmit(c, c->tx, c->tx_len, 0, now);
		return 1;
	}
	case MQTTSN_CONNACK:
		if (c->await != MQTTSN_CONNACK)
			return 0;
		if (m->return_code == MQTTSN_RC_CONGESTION) {
			congestion(c, m, now); /* CONNECT is put back in tx after Twait */
			return 1;
		}
		end(c);
		c->state = m->return_code == MQTTSN_RC_ACCEPTED ? MQTTSN_STATE_ACTIVE : MQTTSN_STATE_DISCONNECTED;
		c->last_tx = now;
		if (c->cfg->clean_session) /* §6.2: a new session; the gateway's msg ids start over */
			memset(c->qos2_in, 0, sizeof c->qos2_in);
		emit_msg(c, MQTTSN_EV_CONNECTED, m);
		return 1;
	case MQTTSN_PUBREC:
		if (m->msg_id != c->msg_id)
			return 0;
		if (c->await == MQTTSN_PUBREC || c->await == MQTTSN_PUBCOMP) {
			/* §6.6 (MQTT QoS 2): PUBREL, kept until PUBCOMP */
			mqttsn_msg_t rel = blank(MQTTSN_PUBREL);
			rel.msg_id = m->msg_id;
			if (load(c, &rel, MQTTSN_PUBCOMP, now) == 0)
				(void)xmit(c, c->tx, c->tx_len, 0, now);
			return 1;
		}
		return 0;
	case MQTTSN_DISCONNECT:
		if (c->await != MQTTSN_DISCONNECT)
			return 0;
		end(c);
		if (c->sleep_req) {
			c->state = MQTTSN_STATE_ASLEEP;
			emit_msg(c, MQTTSN_EV_ASLEEP, m);
		} else {
			c->state = MQTTSN_STATE_DISCONNECTED;
			emit_msg(c, MQTTSN_EV_DISCONNECTED, m);
		}
		c->sleep_req = 0;
		return 1;
	case MQTTSN_PINGRESP:
		if (c->await != MQTTSN_PINGRESP)
			return 0;
		end(c);
		c->state = MQTTSN_STATE_ASLEEP; /* §6.14: the end of the buffered messages */
		emit_msg(c, MQTTSN_EV_WAKE_DONE, m);
		return 1;
	case MQTTSN_PUBACK:
		/* a PUBACK also rejects a QoS 2 PUBLISH (§6.6) */
		if ((c->await == MQTTSN_PUBACK || (c->await == MQTTSN_PUBREC && m->return_code != 0)) &&
		    m->msg_id == c->msg_id)
			ev = MQTTSN_EV_PUBLISHED;
		break;
	case MQTTSN_PUBCOMP:
		if (c->await == MQTTSN_PUBCOMP && m->msg_id == c->msg_id) {
			mqttsn_msg_t done = *m;
			done.topic_id = c->topic_id;
			end(c);
			emit_msg(c, MQTTSN_EV_PUBLISHED, &done);
			return 1;
		}
		return 0;
	case MQTTSN_REGACK:
		if (c->await == MQTTSN_REGACK && m->msg_id == c->msg_id)
			ev = MQTTSN_EV_REGISTERED;
		break;
	case MQTTSN_SUBACK:
		if (c->await == MQTTSN_SUBACK && m->msg_id == c->msg_id)
			ev = MQTTSN_EV_SUBSCRIBED;
		break;
	case MQTTSN_UNSUBACK:
		if (c->await == MQTTSN_UNSUBACK && m->msg_id == c->msg_id)
			ev = MQTTSN_EV_UNSUBSCRIBED;
		break;
	case MQTTSN_WILLTOPICRESP:
	case MQTTSN_WILLMSGRESP:
		if (c->await == t)
			ev = MQTTSN_EV_WILL_UPDATED;
		break;
	default:
		return 0;
	}
	if (!ev)
		return 0;
	if (m->return_code == MQTTSN_RC_CONGESTION) {
		congestion(c, m, now);
		return 1;
	}
	end(c);
	emit_msg(c, ev, m);
	return 1;
}

void mqttsn_client_input(mqttsn_client_t *c, const mqttsn_addr_t *from, const uint8_t *buf, size_t len,
			 uint32_t now)
{
	mqttsn_msg_t m;
	const mqttsn_config_t *cfg = c->cfg;
	if (mqttsn_decode(&m, buf, len) != MQTTSN_OK)
		return; /* malformed: dropped */
	/* §5.5: an encapsulated message for another wireless node is not ours */
	if (m.encapsulated && cfg->encapsulate &&
	    (m.node_id_len != cfg->node_id_len || (m.node_id_len && memcmp(m.node_id, cfg->node_id, m.node_id_len))))
		return;
	switch (m.type) {
	case MQTTSN_ADVERTISE: /* §5.4.1, §6.1 */
		if (c->gw_known && !addr_eq(from, &c->gw))
			return; /* another gateway */
		c->gw_id = m.gw_id; /* also when the application set the address */
		if (m.duration != 0) {
			/* lost after Nadv periods, capped so that due() still
			 * tells the time (and n_adv * 65535 s does not wrap) */
			uint32_t period = (uint32_t)m.duration * 1000u, total = 0;
			uint8_t n = cfg->n_adv ? cfg->n_adv : DEF_N_ADV;
			/* a sum, not period * n checked by a division: a Cortex-M0
			 * has no divide instruction, and libgcc's costs flash */
			while (n-- > 0)
				total = total > 0x7FFFFFFFu - period ? 0x7FFFFFFFu : total + period;
			c->adv_deadline = now + total;
			c->adv_known = 1;
		}
		if (!c->gw_known || c->state == MQTTSN_STATE_SEARCHING) {
			if (!c->gw_known) {
				c->gw = *from;
				c->gw_known = 1;
				c->gw_static = 0;
			}
			if (c->state == MQTTSN_STATE_SEARCHING) {
				/* §6.1: an ADVERTISE answers a search as GWINFO does */
				end(c);
				c->state = MQTTSN_STATE_DISCONNECTED;
			}
			emit_msg(c, MQTTSN_EV_GW_FOUND, &m);
		}
		return;
	case MQTTSN_GWINFO: /* §5.4.3, §6.1 */
		if (c->state != MQTTSN_STATE_SEARCHING)
			return;
		if (m.payload_len > 0 && m.payload_len <= MQTTSN_ADDR_MAX) {
			/* another client answered for the gateway with its address */
			c->gw.len = (uint8_t)m.payload_len;
			memcpy(c->gw.b, m.payload, m.payload_len);
		} else {
			c->gw = *from;
		}
		c->gw_id = m.gw_id;
		c->gw_known = 1;
		c->gw_static = 0;
		end(c);
		c->state = MQTTSN_STATE_DISCONNECTED;
		emit_msg(c, MQTTSN_EV_GW_FOUND, &m);
		return;
	case MQTTSN_SEARCHGW:
		/* §6.1: another client's search, identical to ours still waiting
		 * for its delay: ours is not sent, and its GWINFO answers both */
		if (c->unsent && c->tx_len && m.radius == c->tx[c->tx_len - 1]) {
			c->unsent = 0;
			c->deadline = now + t_retry(c);
		}
		return;
	default:
		break;
	}
	if (!c->gw_known || !addr_eq(from, &c->gw))
		return; /* only the gateway speaks to a client */
	/* §6.14: while awake, every message but PINGRESP restarts Tretry */
	if (c->state == MQTTSN_STATE_AWAKE && c->await == MQTTSN_PINGRESP && m.type != MQTTSN_PINGRESP) {
		c->deadline = now + t_retry(c);
		c->tries = 0;
	}
	if (reply(c, &m, now))
		return;
	switch (m.type) {
	case MQTTSN_PUBLISH:
		on_publish(c, &m, now);
		break;
	case MQTTSN_PUBREL: /* §6.10: QoS 2, delivered already at PUBLISH */
		(void)qos2_seen(c, m.msg_id, 1);
		ack(c, MQTTSN_PUBCOMP, 0, m.msg_id, 0, now);
		break;
	case MQTTSN_REGISTER: /* §6.5: the gateway's topic id for a name */
		emit_msg(c, MQTTSN_EV_REGISTER_IN, &m);
		ack(c, MQTTSN_REGACK, m.topic_id, m.msg_id, MQTTSN_RC_ACCEPTED, now);
		break;
	case MQTTSN_PINGRESP:
		c->ping_out = 0;
		break;
	case MQTTSN_PINGREQ: /* §6.11: the gateway may ping too */
		ack(c, MQTTSN_PINGRESP, 0, 0, 0, now);
		break;
	case MQTTSN_PUBACK: /* a rejection of a QoS 0 or -1 PUBLISH (§6.6) */
		if (m.return_code != MQTTSN_RC_ACCEPTED)
			emit_msg(c, MQTTSN_EV_PUBLISHED, &m);
		break;
	case MQTTSN_DISCONNECT: /* §6.12: the gateway ends the connection */
		if (c->state != MQTTSN_STATE_DISCONNECTED && c->state != MQTTSN_STATE_SEARCHING) {
			end(c);
			c->state = MQTTSN_STATE_DISCONNECTED;
			c->ping_out = 0;
			emit_msg(c, MQTTSN_EV_DISCONNECTED, &m);
		}
		break;
	default:
		break;
	}
}
