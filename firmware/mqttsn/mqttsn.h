/*
 * mqttsn.h - MQTT-SN 1.2 message codec (portable C99, no malloc, no OS).
 *
 * Part of Outpost's firmware side. The codec serializes and parses every
 * message of MQTT-SN 1.2 §5.4 and the forwarder encapsulation of §5.5, and
 * rejects what the specification forbids with the same rules and the same
 * error kinds as the gateway's Go codec (mqttsn/packet), so that both sides
 * agree byte for byte on the shared golden fixtures.
 *
 * A decoded message aliases the datagram: its payload pointer points into
 * the caller's buffer, nothing is copied.
 */
#ifndef MQTTSN_H
#define MQTTSN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Message types, MQTT-SN 1.2 §5.2.2 Table 3. Other values are reserved. */
enum mqttsn_type {
	MQTTSN_ADVERTISE = 0x00,
	MQTTSN_SEARCHGW = 0x01,
	MQTTSN_GWINFO = 0x02,
	MQTTSN_CONNECT = 0x04,
	MQTTSN_CONNACK = 0x05,
	MQTTSN_WILLTOPICREQ = 0x06,
	MQTTSN_WILLTOPIC = 0x07,
	MQTTSN_WILLMSGREQ = 0x08,
	MQTTSN_WILLMSG = 0x09,
	MQTTSN_REGISTER = 0x0A,
	MQTTSN_REGACK = 0x0B,
	MQTTSN_PUBLISH = 0x0C,
	MQTTSN_PUBACK = 0x0D,
	MQTTSN_PUBCOMP = 0x0E,
	MQTTSN_PUBREC = 0x0F,
	MQTTSN_PUBREL = 0x10,
	MQTTSN_SUBSCRIBE = 0x12,
	MQTTSN_SUBACK = 0x13,
	MQTTSN_UNSUBSCRIBE = 0x14,
	MQTTSN_UNSUBACK = 0x15,
	MQTTSN_PINGREQ = 0x16,
	MQTTSN_PINGRESP = 0x17,
	MQTTSN_DISCONNECT = 0x18,
	MQTTSN_WILLTOPICUPD = 0x1A,
	MQTTSN_WILLTOPICRESP = 0x1B,
	MQTTSN_WILLMSGUPD = 0x1C,
	MQTTSN_WILLMSGRESP = 0x1D,
	MQTTSN_ENCAPSULATED = 0xFE
};

/* TopicIdType, MQTT-SN 1.2 §5.3.4; 3 is reserved. */
enum mqttsn_topic_id_type {
	MQTTSN_TOPIC_NORMAL = 0,     /* registered topic id, or a topic name */
	MQTTSN_TOPIC_PREDEFINED = 1, /* pre-defined topic id (§6.7) */
	MQTTSN_TOPIC_SHORT = 2       /* two-octet short topic name (§6.7) */
};

/* ReturnCode, MQTT-SN 1.2 §5.3.10 Table 5; 0x04..0xFF are reserved. */
enum mqttsn_return_code {
	MQTTSN_RC_ACCEPTED = 0x00,
	MQTTSN_RC_CONGESTION = 0x01,
	MQTTSN_RC_INVALID_TOPIC_ID = 0x02,
	MQTTSN_RC_NOT_SUPPORTED = 0x03
};

/*
 * Errors. The codec's kinds match the Go codec's (and the fixtures'
 * "expect: error <kind>"); the client adds its own after them.
 */
enum mqttsn_err {
	MQTTSN_OK = 0,
	MQTTSN_ERR_TRUNCATED = -1,     /* fewer octets than the header or the fields */
	MQTTSN_ERR_LENGTH = -2,        /* Length disagrees with the datagram */
	MQTTSN_ERR_TRAILING = -3,      /* octets after the last field */
	MQTTSN_ERR_UNKNOWN_TYPE = -4,  /* reserved MsgType */
	MQTTSN_ERR_FLAGS = -5,         /* a flag the message does not use is set */
	MQTTSN_ERR_QOS = -6,           /* QoS -1 outside PUBLISH */
	MQTTSN_ERR_TOPIC_ID_TYPE = -7, /* TopicIdType 3, or QoS -1 on a normal id */
	MQTTSN_ERR_PROTOCOL_ID = -8,   /* CONNECT ProtocolId is not 0x01 */
	MQTTSN_ERR_CLIENT_ID = -9,     /* ClientId not 1..23 octets of UTF-8 */
	MQTTSN_ERR_SHORT_TOPIC = -10,  /* short topic name not 2 octets */
	MQTTSN_ERR_TOPIC_NAME = -11,   /* empty / bad UTF-8 / U+0000 topic name */
	MQTTSN_ERR_RETURN_CODE = -12,  /* reserved ReturnCode */
	MQTTSN_ERR_ENCAPSULATION = -13, /* malformed forwarder encapsulation */
	MQTTSN_ERR_TOO_LARGE = -14,    /* does not fit the buffer or 65535 octets */
	/* client errors */
	MQTTSN_ERR_BUSY = -20,          /* a transaction is outstanding */
	MQTTSN_ERR_STATE = -21,         /* not allowed in the current state */
	MQTTSN_ERR_TRANSPORT = -22,     /* the transport failed to send */
	MQTTSN_ERR_ARG = -23            /* a bad argument */
};

/* Limits. */
#define MQTTSN_MAX_CLIENT_ID 23   /* §5.3.1 */
#define MQTTSN_MAX_NODE_ID 252    /* §5.5: a 1-octet Length covers 3 + node id */
#define MQTTSN_PROTOCOL_ID 0x01   /* §5.3.8 */

/*
 * One MQTT-SN message, flattened: every message uses a subset of these
 * fields (see the table in README.md). payload is the one variable-length
 * field a message has: the ClientId (CONNECT, PINGREQ), GwAdd (GWINFO), the
 * will topic (WILLTOPIC, WILLTOPICUPD), the will message (WILLMSG,
 * WILLMSGUPD), the topic name (REGISTER, SUBSCRIBE, UNSUBSCRIBE with
 * TopicIdType normal) or the data (PUBLISH). It is NULL when empty.
 *
 * A forwarder encapsulation (§5.5) is not a separate message: encapsulated
 * is set, ctrl and node_id describe it, and the other fields hold the
 * encapsulated message, so that nesting cannot be expressed.
 */
typedef struct mqttsn_msg {
	uint8_t type;          /* enum mqttsn_type, never MQTTSN_ENCAPSULATED */
	uint8_t dup;           /* PUBLISH, SUBSCRIBE */
	int8_t qos;            /* 0, 1, 2; -1 in PUBLISH only */
	uint8_t retain;        /* PUBLISH, WILLTOPIC(UPD) */
	uint8_t will;          /* CONNECT */
	uint8_t clean_session; /* CONNECT */
	uint8_t topic_id_type; /* PUBLISH, SUBSCRIBE, UNSUBSCRIBE */
	uint8_t return_code;   /* CONNACK, REGACK, PUBACK, SUBACK, WILL*RESP */
	uint8_t gw_id;         /* ADVERTISE, GWINFO */
	uint8_t radius;        /* SEARCHGW */
	uint8_t has_duration;  /* DISCONNECT: the Duration field is present */
	uint16_t duration;     /* ADVERTISE, CONNECT (keep alive), DISCONNECT */
	uint16_t topic_id;     /* REGISTER, REGACK, PUBLISH, PUBACK, SUBACK, (UN)SUBSCRIBE */
	uint16_t msg_id;
	const uint8_t *payload;
	uint16_t payload_len;
	/* forwarder encapsulation, §5.5 */
	uint8_t encapsulated;
	uint8_t ctrl;          /* bits 1-0: broadcast radius */
	uint8_t node_id_len;
	const uint8_t *node_id;
} mqttsn_msg_t;

/*
 * mqttsn_decode parses the one message the datagram buf[0..len) holds into
 * m (MQTT-SN 1.2 §5.2, §5.4, §5.5). It returns MQTTSN_OK or a negative
 * MQTTSN_ERR_ kind, the first fault met in the order the Go codec uses. m
 * aliases buf; on error its fields are unspecified.
 */
int mqttsn_decode(mqttsn_msg_t *m, const uint8_t *buf, size_t len);

/*
 * mqttsn_encode writes m into buf (at most cap octets) with the shortest
 * Length form (§5.2.1) and returns the number of octets, or a negative error:
 * MQTTSN_ERR_TOO_LARGE when it does not fit, or the kind of the rule that m
 * breaks (it checks m with the decoder's rules, so what it writes decodes to
 * m).
 */
int mqttsn_encode(const mqttsn_msg_t *m, uint8_t *buf, size_t cap);

/*
 * mqttsn_encode_unchecked is mqttsn_encode without the check of m against
 * the decoder's rules (it still refuses what does not fit): for messages
 * made of fixed-size fields the caller has set itself, such as the
 * acknowledgements a client sends. It saves the decoder's stack.
 */
int mqttsn_encode_unchecked(const mqttsn_msg_t *m, uint8_t *buf, size_t cap);

/* mqttsn_encoded_len returns the size of m's encoding, without checks. */
size_t mqttsn_encoded_len(const mqttsn_msg_t *m);

/* mqttsn_err_name returns the fixture name of an error ("truncated", ...). */
const char *mqttsn_err_name(int err);

/* mqttsn_valid_utf8 reports whether s[0..n) is UTF-8 without U+0000. */
int mqttsn_valid_utf8(const uint8_t *s, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* MQTTSN_H */
