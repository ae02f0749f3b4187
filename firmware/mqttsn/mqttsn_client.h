/*
 * mqttsn_client.h - MQTT-SN 1.2 client state machine (portable C99, no
 * malloc, no OS, non-blocking).
 *
 * The application supplies:
 *   - two buffers: tx holds the one message in flight (kept for
 *     retransmission), rx holds a received datagram while it is handled;
 *   - a transport: send a datagram to an opaque address (NULL: broadcast),
 *     and optionally receive one without blocking;
 *   - the time: every call takes the current time in milliseconds (any
 *     epoch; wrap-around of the 32-bit counter is handled).
 *
 * The application drives the client by calling mqttsn_client_poll() often
 * (or mqttsn_client_input() with each datagram and mqttsn_client_poll() for
 * the timers). Results arrive through two callbacks: on_publish for each
 * received PUBLISH, on_event for everything else.
 *
 * The client has one transaction in flight at a time (MQTT-SN 1.2 §6.13):
 * an operation started while one is outstanding returns MQTTSN_ERR_BUSY.
 * The acknowledgements it sends itself (PUBACK, PUBREC, PUBCOMP, REGACK) and
 * the keep-alive PINGREQ do not count.
 */
#ifndef MQTTSN_CLIENT_H
#define MQTTSN_CLIENT_H

#include "mqttsn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest opaque transport address (an IPv4 address and port take 6). */
#ifndef MQTTSN_ADDR_MAX
#define MQTTSN_ADDR_MAX 8
#endif

/* Received QoS 2 message ids remembered until their PUBREL (§6.3). */
#ifndef MQTTSN_QOS2_IN
#define MQTTSN_QOS2_IN 2
#endif

/* Longest Wireless Node Id the client encapsulates with (§5.5). */
#ifndef MQTTSN_NODE_ID_MAX
#define MQTTSN_NODE_ID_MAX 8
#endif

/* An opaque transport address: len octets of b; len 0 is "the" peer. */
typedef struct mqttsn_addr {
	uint8_t len;
	uint8_t b[MQTTSN_ADDR_MAX];
} mqttsn_addr_t;

typedef struct mqttsn_transport {
	/* send one datagram to `to` (NULL: broadcast). 0, or < 0 on failure. */
	int (*send)(void *ctx, const mqttsn_addr_t *to, const uint8_t *buf, size_t len);
	/* receive one datagram without blocking: its length, 0 when none is
	 * waiting, < 0 on failure. May be NULL when the application pushes
	 * datagrams with mqttsn_client_input(). */
	int (*recv)(void *ctx, mqttsn_addr_t *from, uint8_t *buf, size_t cap);
	void *ctx;
} mqttsn_transport_t;

/* Client states. */
enum mqttsn_state {
	MQTTSN_STATE_DISCONNECTED = 0,
	MQTTSN_STATE_SEARCHING,     /* SEARCHGW sent, waiting for GWINFO (§6.1) */
	MQTTSN_STATE_CONNECTING,    /* CONNECT sent, will exchange (§6.3) */
	MQTTSN_STATE_ACTIVE,        /* connected */
	MQTTSN_STATE_DISCONNECTING, /* DISCONNECT sent */
	MQTTSN_STATE_ASLEEP,        /* sleeping (§6.14) */
	MQTTSN_STATE_AWAKE          /* woken: PINGREQ sent, receiving buffered messages */
};

/* Events, passed to on_event with an mqttsn_event_info_t. */
enum mqttsn_event {
	MQTTSN_EV_GW_FOUND = 1,   /* GWINFO or ADVERTISE: gw_id */
	MQTTSN_EV_GW_LOST,        /* Nadv ADVERTISEs missed (§6.2) */
	MQTTSN_EV_CONNECTED,      /* CONNACK: return_code (non-zero: rejected) */
	MQTTSN_EV_REGISTERED,     /* REGACK: topic_id, msg_id, return_code */
	MQTTSN_EV_REGISTER_IN,    /* the gateway's REGISTER: topic_id, name (§6.10) */
	MQTTSN_EV_PUBLISHED,      /* QoS -1/0 sent, PUBACK, PUBCOMP: msg_id, topic_id, return_code */
	MQTTSN_EV_SUBSCRIBED,     /* SUBACK: qos, topic_id, msg_id, return_code */
	MQTTSN_EV_UNSUBSCRIBED,   /* UNSUBACK: msg_id */
	MQTTSN_EV_WILL_UPDATED,   /* WILLTOPICRESP or WILLMSGRESP: type, return_code */
	MQTTSN_EV_ASLEEP,         /* the gateway acknowledged the sleep DISCONNECT */
	MQTTSN_EV_WAKE_DONE,      /* PINGRESP after a wake: back to sleep (§6.14) */
	MQTTSN_EV_DISCONNECTED,   /* DISCONNECT answered, or sent by the gateway */
	MQTTSN_EV_CONGESTION,     /* "rejected: congestion": type; resent after Twait (§6.5, §6.6, §6.9) */
	MQTTSN_EV_TIMEOUT         /* Nretry retransmissions unanswered: type; disconnected (§6.13),
	                            or back asleep after an unanswered wake (§6.14). A gateway
	                            found by discovery is forgotten (gw_known 0): search again;
	                            one set with mqttsn_client_set_gateway is kept */
};

typedef struct mqttsn_event_info {
	uint8_t type;        /* the message that completes or fails the transaction */
	uint8_t return_code;
	int8_t qos;
	uint8_t gw_id;
	uint16_t topic_id;
	uint16_t msg_id;
	const uint8_t *name; /* MQTTSN_EV_REGISTER_IN: the topic name (aliases rx) */
	uint16_t name_len;
} mqttsn_event_info_t;

/* Configuration; the client keeps a pointer to it, so it must outlive it. */
typedef struct mqttsn_config {
	const char *client_id;     /* 1 to 23 octets (§5.3.1) */
	uint16_t keep_alive_s;     /* CONNECT Duration; 0: no PINGREQ */
	uint8_t clean_session;
	uint16_t t_retry_ms;       /* Tretry (§6.13); 0: 10000 */
	uint8_t n_retry;           /* Nretry (§6.13); 0: 5 */
	uint32_t t_wait_ms;        /* Twait after "rejected: congestion"; 0: 300000 (§7.2) */
	uint8_t n_adv;             /* Nadv missed ADVERTISEs (§6.2); 0: 3 */
	/* will (§6.3): set will_topic to have one */
	const char *will_topic;
	const uint8_t *will_msg;
	uint16_t will_msg_len;
	int8_t will_qos;
	uint8_t will_retain;
	/* forwarder encapsulation (§5.5): encapsulate every message sent with
	 * this Wireless Node Id (node_id_len octets, at most
	 * MQTTSN_NODE_ID_MAX); received encapsulated messages for another node
	 * id are ignored. */
	uint8_t encapsulate;
	uint8_t node_id_len;
	const uint8_t *node_id;
	/* callbacks */
	void (*on_event)(void *ctx, int event, const mqttsn_event_info_t *info);
	/* a received PUBLISH: returns its ReturnCode (MQTTSN_RC_ACCEPTED, or
	 * MQTTSN_RC_INVALID_TOPIC_ID for an unknown topic id, §6.10) */
	uint8_t (*on_publish)(void *ctx, const mqttsn_msg_t *publish);
	void *cb_ctx;
} mqttsn_config_t;

typedef struct mqttsn_client {
	const mqttsn_config_t *cfg;
	const mqttsn_transport_t *tr;
	uint8_t *tx, *rx;
	uint16_t tx_cap, rx_cap;
	uint16_t tx_len;          /* the message in flight, 0: none */
	uint8_t tx_flags_off;     /* offset of its Flags octet (DUP), 0: none */
	uint8_t state;
	uint8_t await;            /* the reply type that ends the transaction */
	uint8_t tries;            /* retransmissions so far */
	uint8_t ping_out;         /* keep-alive PINGREQs unanswered */
	uint8_t gw_known, gw_id, adv_known;
	uint8_t gw_static;        /* the application set the gateway's address */
	uint8_t fresh;            /* the next send follows a congestion wait: no DUP */
	uint8_t sleep_req;        /* the DISCONNECT in flight asks for sleep */
	uint8_t unsent;           /* tx (a SEARCHGW) waits for its first sending */
	uint16_t next_msg_id;
	uint16_t msg_id;          /* msg id of the transaction */
	uint16_t topic_id;        /* topic id of the transaction (PUBLISH) */
	uint32_t deadline;        /* retransmission or congestion wait */
	uint32_t last_tx;         /* keep alive: when the client last sent */
	uint32_t ping_deadline;
	uint32_t adv_deadline;    /* gateway lost when it passes */
	uint16_t qos2_in[MQTTSN_QOS2_IN];
	mqttsn_addr_t gw;
} mqttsn_client_t;

/* mqttsn_client_init sets c up; it sends nothing. */
void mqttsn_client_init(mqttsn_client_t *c, const mqttsn_config_t *cfg, const mqttsn_transport_t *tr,
			uint8_t *tx, uint16_t tx_cap, uint8_t *rx, uint16_t rx_cap);

/* mqttsn_client_set_gateway sets the gateway's address (no discovery); it
 * is kept when the gateway stops answering. */
void mqttsn_client_set_gateway(mqttsn_client_t *c, const mqttsn_addr_t *gw, uint8_t gw_id);

/* mqttsn_client_poll reads every waiting datagram (when the transport has
 * recv) and runs the timers: retransmission, keep alive, gateway loss. */
int mqttsn_client_poll(mqttsn_client_t *c, uint32_t now);

/* mqttsn_client_input handles one received datagram (it may alias rx). */
void mqttsn_client_input(mqttsn_client_t *c, const mqttsn_addr_t *from, const uint8_t *buf, size_t len,
			 uint32_t now);

/* Operations. Each returns MQTTSN_OK when the message was sent, or a
 * negative MQTTSN_ERR_; completion arrives as an event. */
/* SEARCHGW after delay_ms (the application's random 0..Tsearchgw, §6.1;
 * 0: at once), broadcast with the given radius, resent Nretry times at
 * intervals that double from Tretry (§6.1: "increased exponentially"). */
int mqttsn_search_gw(mqttsn_client_t *c, uint8_t radius, uint32_t delay_ms, uint32_t now);  /* §6.1 */
int mqttsn_connect(mqttsn_client_t *c, uint32_t now);                                       /* §6.3 */
int mqttsn_register(mqttsn_client_t *c, const char *topic, uint32_t now);                   /* §6.5 */
int mqttsn_publish(mqttsn_client_t *c, uint8_t topic_id_type, uint16_t topic_id, int8_t qos, uint8_t retain,
		   const uint8_t *data, uint16_t len, uint32_t now);                        /* §6.6, §6.8 */
/* topic_id_type normal: topic is the name (may hold wildcards); otherwise
 * topic_id is the pre-defined id or the short name (MQTTSN_SHORT("ab")). */
int mqttsn_subscribe(mqttsn_client_t *c, uint8_t topic_id_type, uint16_t topic_id, const char *topic,
		     int8_t qos, uint32_t now);                                             /* §6.9 */
int mqttsn_unsubscribe(mqttsn_client_t *c, uint8_t topic_id_type, uint16_t topic_id, const char *topic,
		       uint32_t now);                                                       /* §6.10 */
int mqttsn_will_topic_update(mqttsn_client_t *c, const char *topic, int8_t qos, uint8_t retain,
			     uint32_t now);                                                 /* §6.4 */
int mqttsn_will_msg_update(mqttsn_client_t *c, const uint8_t *msg, uint16_t len, uint32_t now); /* §6.4 */
int mqttsn_sleep(mqttsn_client_t *c, uint16_t duration_s, uint32_t now);                    /* §6.14 */
int mqttsn_wake(mqttsn_client_t *c, uint32_t now);                                          /* §6.14 */
int mqttsn_disconnect(mqttsn_client_t *c, uint32_t now);                                    /* §6.12 */

/* The TopicId value of a two-character short topic name (§6.7). */
#define MQTTSN_SHORT(s) ((uint16_t)((unsigned)(uint8_t)(s)[0] << 8 | (uint8_t)(s)[1]))

#ifdef __cplusplus
}
#endif

#endif /* MQTTSN_CLIENT_H */
