/*
 * mqttsn.c - MQTT-SN 1.2 message codec. See mqttsn.h.
 *
 * The checks and their order follow the gateway's Go codec (mqttsn/packet)
 * and the fixture format's README (mqttsn/packet/testdata/README.md): the
 * header first, then the Length against the datagram, then the fields from
 * left to right.
 */
#include "mqttsn.h"

#include <limits.h>
#include <string.h>

/* Flags octet, MQTT-SN 1.2 §5.3.4 Table 4. */
#define F_DUP 0x80u
#define F_QOS 0x60u
#define F_RETAIN 0x10u
#define F_WILL 0x08u
#define F_CLEAN 0x04u
#define F_TID 0x03u

/* be16 reads a big-endian 16-bit field; unsigned arithmetic, so that a
 * 16-bit int (AVR, MSP430) does not overflow. */
static uint16_t be16(const uint8_t *b) { return (uint16_t)((unsigned)b[0] << 8 | b[1]); }

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

/* flag_qos reads the QoS field: 0b11 is QoS -1 (§6.8). */
static int8_t flag_qos(uint8_t f)
{
	int q = (f & F_QOS) >> 5;
	return (int8_t)(q == 3 ? -1 : q);
}

static uint8_t qos_bits(int8_t q) { return (uint8_t)(((uint8_t)q & 3u) << 5); }

int mqttsn_valid_utf8(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		uint32_t cp;
		size_t k;
		if (c == 0)
			return 0; /* U+0000 is not allowed in MQTT strings */
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			k = 1;
			cp = c & 0x1Fu;
		} else if (c >= 0xE0 && c <= 0xEF) {
			k = 2;
			cp = c & 0x0Fu;
		} else if (c >= 0xF0 && c <= 0xF4) {
			k = 3;
			cp = c & 0x07u;
		} else {
			return 0;
		}
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0u) != 0x80u)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3Fu);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k + 1;
	}
	return 1;
}

/* known reports whether t is a MsgType of §5.2.2 Table 3. */
static int known(uint8_t t)
{
	/* bit i set: type i is defined (0x00..0x1D) */
	static const uint32_t defined = 0x3DFDFFF7u;
	if (t == MQTTSN_ENCAPSULATED)
		return 1;
	return t < 30 && (defined >> t & 1u);
}

/*
 * header reads the message header (§5.2): the 1- or 3-octet Length and the
 * MsgType. On success *length, *type, *hl are set.
 */
static int header(const uint8_t *b, size_t n, size_t *length, uint8_t *type, size_t *hl)
{
	if (n < 2)
		return MQTTSN_ERR_TRUNCATED;
	if (b[0] != 0x01) {
		*length = b[0];
		*type = b[1];
		*hl = 2;
		if (*type == MQTTSN_ENCAPSULATED)
			/* §5.5: Length, MsgType and Ctrl at least */
			return *length < 3 ? MQTTSN_ERR_ENCAPSULATION : MQTTSN_OK;
		if (*length < 2)
			return MQTTSN_ERR_LENGTH;
	} else {
		/* §5.2.1: 0x01 introduces the 3-octet form, most significant first */
		if (n < 4)
			return MQTTSN_ERR_TRUNCATED;
		*length = be16(b + 1);
		*type = b[3];
		*hl = 4;
		if (*type == MQTTSN_ENCAPSULATED)
			return MQTTSN_ERR_ENCAPSULATION; /* §5.5: "Length: 1-octet long" */
		if (*length < 4)
			return MQTTSN_ERR_LENGTH;
	}
	return known(*type) ? MQTTSN_OK : MQTTSN_ERR_UNKNOWN_TYPE;
}

static int exact(size_t n, size_t want)
{
	if (n < want)
		return MQTTSN_ERR_TRUNCATED;
	return n > want ? MQTTSN_ERR_TRAILING : MQTTSN_OK;
}

static int client_id_ok(const uint8_t *p, size_t n)
{
	/* §5.3.1: 1 to 23 octets of UTF-8 */
	return n >= 1 && n <= MQTTSN_MAX_CLIENT_ID && mqttsn_valid_utf8(p, n);
}

/* §5.3.12 */
static int topic_name_ok(const uint8_t *p, size_t n) { return n > 0 && mqttsn_valid_utf8(p, n); }

static int rc_check(uint8_t rc) { return rc <= MQTTSN_RC_NOT_SUPPORTED ? MQTTSN_OK : MQTTSN_ERR_RETURN_CODE; }

/* body decodes the octets after the header of a non-encapsulated message. */
static int body(mqttsn_msg_t *m, const uint8_t *b, size_t n)
{
	uint8_t f = n > 0 ? b[0] : 0;
	int err;
	switch (m->type) {
	case MQTTSN_ADVERTISE: /* §5.4.1 */
		if ((err = exact(n, 3)) != 0)
			return err;
		m->gw_id = b[0];
		m->duration = be16(b + 1);
		return MQTTSN_OK;
	case MQTTSN_SEARCHGW: /* §5.4.2 */
		if ((err = exact(n, 1)) != 0)
			return err;
		m->radius = b[0];
		return MQTTSN_OK;
	case MQTTSN_GWINFO: /* §5.4.3 */
		if (n < 1)
			return MQTTSN_ERR_TRUNCATED;
		m->gw_id = b[0];
		m->payload = b + 1;
		m->payload_len = (uint16_t)(n - 1);
		return MQTTSN_OK;
	case MQTTSN_CONNECT: /* §5.4.4: DUP, QoS, Retain, TopicIdType not used */
		if (n < 4)
			return MQTTSN_ERR_TRUNCATED;
		if (f & (uint8_t) ~(F_WILL | F_CLEAN))
			return MQTTSN_ERR_FLAGS;
		if (b[1] != MQTTSN_PROTOCOL_ID) /* §5.3.8 */
			return MQTTSN_ERR_PROTOCOL_ID;
		m->will = (f & F_WILL) != 0;
		m->clean_session = (f & F_CLEAN) != 0;
		m->duration = be16(b + 2);
		m->payload = b + 4;
		m->payload_len = (uint16_t)(n - 4);
		return client_id_ok(b + 4, n - 4) ? MQTTSN_OK : MQTTSN_ERR_CLIENT_ID;
	case MQTTSN_CONNACK:       /* §5.4.5 */
	case MQTTSN_WILLTOPICRESP: /* §5.4.24 */
	case MQTTSN_WILLMSGRESP:   /* §5.4.25 */
		if ((err = exact(n, 1)) != 0)
			return err;
		m->return_code = b[0];
		return rc_check(b[0]);
	case MQTTSN_WILLTOPICREQ: /* §5.4.6 */
	case MQTTSN_WILLMSGREQ:   /* §5.4.8 */
	case MQTTSN_PINGRESP:     /* §5.4.20 */
		return exact(n, 0);
	case MQTTSN_WILLTOPIC:    /* §5.4.7 */
	case MQTTSN_WILLTOPICUPD: /* §5.4.22 */
		if (n == 0)
			return MQTTSN_OK; /* the empty form deletes the will (§6.4) */
		/* DUP, Will, CleanSession and TopicIdType are not used */
		if (f & (uint8_t) ~(F_QOS | F_RETAIN))
			return MQTTSN_ERR_FLAGS;
		if (n == 1)
			return MQTTSN_ERR_TOPIC_NAME; /* Flags without a will topic */
		m->qos = flag_qos(f);
		m->retain = (f & F_RETAIN) != 0;
		m->payload = b + 1;
		m->payload_len = (uint16_t)(n - 1);
		if (m->qos < 0)
			return MQTTSN_ERR_QOS;
		return topic_name_ok(b + 1, n - 1) ? MQTTSN_OK : MQTTSN_ERR_TOPIC_NAME;
	case MQTTSN_WILLMSG:    /* §5.4.9 */
	case MQTTSN_WILLMSGUPD: /* §5.4.23 */
		m->payload = n ? b : NULL;
		m->payload_len = (uint16_t)n;
		return MQTTSN_OK;
	case MQTTSN_REGISTER: /* §5.4.10 */
		if (n < 4)
			return MQTTSN_ERR_TRUNCATED;
		m->topic_id = be16(b);
		m->msg_id = be16(b + 2);
		m->payload = b + 4;
		m->payload_len = (uint16_t)(n - 4);
		return topic_name_ok(b + 4, n - 4) ? MQTTSN_OK : MQTTSN_ERR_TOPIC_NAME;
	case MQTTSN_REGACK: /* §5.4.11 */
	case MQTTSN_PUBACK: /* §5.4.13 */
		if ((err = exact(n, 5)) != 0)
			return err;
		m->topic_id = be16(b);
		m->msg_id = be16(b + 2);
		m->return_code = b[4];
		return rc_check(b[4]);
	case MQTTSN_PUBLISH: /* §5.4.12: Will and CleanSession not used */
		if (n < 5)
			return MQTTSN_ERR_TRUNCATED;
		if (f & (F_WILL | F_CLEAN))
			return MQTTSN_ERR_FLAGS;
		m->dup = (f & F_DUP) != 0;
		m->qos = flag_qos(f);
		m->retain = (f & F_RETAIN) != 0;
		m->topic_id_type = f & F_TID;
		m->topic_id = be16(b + 1);
		m->msg_id = be16(b + 3);
		m->payload = n > 5 ? b + 5 : NULL;
		m->payload_len = (uint16_t)(n - 5);
		if (m->topic_id_type == 3) /* §5.3.4: reserved */
			return MQTTSN_ERR_TOPIC_ID_TYPE;
		/* §6.8: QoS -1 only with a pre-defined id or a short name */
		if (m->qos < 0 && m->topic_id_type == MQTTSN_TOPIC_NORMAL)
			return MQTTSN_ERR_TOPIC_ID_TYPE;
		return MQTTSN_OK;
	case MQTTSN_PUBREC:   /* §5.4.14 */
	case MQTTSN_PUBREL:   /* §5.4.14 */
	case MQTTSN_PUBCOMP:  /* §5.4.14 */
	case MQTTSN_UNSUBACK: /* §5.4.18 */
		if ((err = exact(n, 2)) != 0)
			return err;
		m->msg_id = be16(b);
		return MQTTSN_OK;
	case MQTTSN_SUBSCRIBE:   /* §5.4.15: Retain, Will, CleanSession not used */
	case MQTTSN_UNSUBSCRIBE: /* §5.4.17: only TopicIdType used */
		if (n < 3)
			return MQTTSN_ERR_TRUNCATED;
		if (f & (uint8_t) ~(m->type == MQTTSN_SUBSCRIBE ? (F_DUP | F_QOS | F_TID) : F_TID))
			return MQTTSN_ERR_FLAGS;
		m->dup = (f & F_DUP) != 0;
		m->qos = flag_qos(f);
		m->topic_id_type = f & F_TID;
		m->msg_id = be16(b + 1);
		b += 3;
		n -= 3;
		switch (m->topic_id_type) {
		case MQTTSN_TOPIC_NORMAL:
			m->payload = b;
			m->payload_len = (uint16_t)n;
			break;
		case MQTTSN_TOPIC_PREDEFINED:
			if ((err = exact(n, 2)) != 0)
				return err;
			m->topic_id = be16(b);
			break;
		case MQTTSN_TOPIC_SHORT:
			if (n != 2) /* §6.7: a short topic name has two octets */
				return MQTTSN_ERR_SHORT_TOPIC;
			m->topic_id = be16(b);
			break;
		default:
			return MQTTSN_ERR_TOPIC_ID_TYPE; /* §5.3.4 */
		}
		if (m->qos < 0)
			return MQTTSN_ERR_QOS;
		if (m->topic_id_type == MQTTSN_TOPIC_NORMAL && !topic_name_ok(b, n))
			return MQTTSN_ERR_TOPIC_NAME;
		return MQTTSN_OK;
	case MQTTSN_SUBACK: /* §5.4.16: all flags but QoS not used */
		if ((err = exact(n, 6)) != 0)
			return err;
		if (f & (uint8_t)~F_QOS)
			return MQTTSN_ERR_FLAGS;
		m->qos = flag_qos(f);
		m->topic_id = be16(b + 1);
		m->msg_id = be16(b + 3);
		m->return_code = b[5];
		if (m->qos < 0)
			return MQTTSN_ERR_QOS;
		return rc_check(b[5]);
	case MQTTSN_PINGREQ: /* §5.4.19: a waking client includes its ClientId (§6.14) */
		m->payload = n ? b : NULL;
		m->payload_len = (uint16_t)n;
		return n == 0 || client_id_ok(b, n) ? MQTTSN_OK : MQTTSN_ERR_CLIENT_ID;
	case MQTTSN_DISCONNECT: /* §5.4.21: Duration only when going to sleep */
		if (n == 1)
			return MQTTSN_ERR_TRUNCATED;
		if (n > 2)
			return MQTTSN_ERR_TRAILING;
		m->has_duration = n == 2;
		if (n == 2)
			m->duration = be16(b);
		return MQTTSN_OK;
	}
	return MQTTSN_ERR_UNKNOWN_TYPE;
}

/* plain decodes a message that is not an encapsulation. */
static int plain(mqttsn_msg_t *m, const uint8_t *buf, size_t len)
{
	size_t length, hl;
	uint8_t t;
	int err = header(buf, len, &length, &t, &hl);
	if (err != 0)
		return err;
	if (t == MQTTSN_ENCAPSULATED)
		return MQTTSN_ERR_ENCAPSULATION;
	if (length != len) /* §5.2.1 */
		return MQTTSN_ERR_LENGTH;
	m->type = t;
	return body(m, buf + hl, len - hl);
}

int mqttsn_decode(mqttsn_msg_t *m, const uint8_t *buf, size_t len)
{
	size_t length, hl;
	uint8_t t, ctrl;
	int err;
	memset(m, 0, sizeof *m);
	err = header(buf, len, &length, &t, &hl);
	if (err != 0)
		return err;
	if (t != MQTTSN_ENCAPSULATED)
		return plain(m, buf, len);
	/* §5.5 Table 28: Length covers Length, MsgType, Ctrl and the node id */
	if (length > len)
		return MQTTSN_ERR_LENGTH;
	ctrl = buf[2];
	if (ctrl & (uint8_t)~3u) /* §5.5 Table 29: bits 7-2 reserved */
		return MQTTSN_ERR_ENCAPSULATION;
	if (length == len)
		return MQTTSN_ERR_ENCAPSULATION; /* no encapsulated message */
	/* an encapsulated encapsulation, in either Length form */
	{
		const uint8_t *in = buf + length;
		size_t n = len - length;
		if ((n >= 2 && in[0] != 0x01 && in[1] == MQTTSN_ENCAPSULATED) ||
		    (n >= 4 && in[0] == 0x01 && in[3] == MQTTSN_ENCAPSULATED))
			return MQTTSN_ERR_ENCAPSULATION;
		err = plain(m, in, n);
	}
	m->encapsulated = 1;
	m->ctrl = ctrl;
	m->node_id_len = (uint8_t)(length - 3);
	m->node_id = length > 3 ? buf + 3 : NULL;
	return err;
}

/* body_len returns the number of octets after the header. It counts in
 * 32 bits: with a 16-bit size_t (AVR, MSP430) 4 + a payload_len near 65535
 * would wrap to a small length, and the encoder write past cap. */
static uint32_t body_len(const mqttsn_msg_t *m)
{
	uint32_t p = m->payload_len;
	switch (m->type) {
	case MQTTSN_ADVERTISE:
		return 3;
	case MQTTSN_SEARCHGW:
	case MQTTSN_CONNACK:
	case MQTTSN_WILLTOPICRESP:
	case MQTTSN_WILLMSGRESP:
		return 1;
	case MQTTSN_GWINFO:
		return 1 + p;
	case MQTTSN_CONNECT:
	case MQTTSN_REGISTER:
		return 4 + p;
	case MQTTSN_WILLTOPIC:
	case MQTTSN_WILLTOPICUPD:
		return p ? 1 + p : 0;
	case MQTTSN_REGACK:
	case MQTTSN_PUBACK:
	case MQTTSN_PUBLISH:
		return 5 + (m->type == MQTTSN_PUBLISH ? p : 0);
	case MQTTSN_PUBREC:
	case MQTTSN_PUBREL:
	case MQTTSN_PUBCOMP:
	case MQTTSN_UNSUBACK:
		return 2;
	case MQTTSN_SUBSCRIBE:
	case MQTTSN_UNSUBSCRIBE:
		return 3 + (m->topic_id_type == MQTTSN_TOPIC_NORMAL ? p : 2);
	case MQTTSN_SUBACK:
		return 6;
	case MQTTSN_DISCONNECT:
		return m->has_duration ? 2 : 0;
	case MQTTSN_WILLMSG:
	case MQTTSN_WILLMSGUPD:
	case MQTTSN_PINGREQ:
		return p;
	default: /* WILLTOPICREQ, WILLMSGREQ, PINGRESP */
		return 0;
	}
}

static uint32_t encap_len(const mqttsn_msg_t *m) { return m->encapsulated ? 3u + m->node_id_len : 0u; }

static uint32_t encoded_len(const mqttsn_msg_t *m)
{
	uint32_t n = body_len(m);
	/* §5.2.1: the 1-octet form when the message fits in 255 octets */
	return encap_len(m) + n + (n + 2u <= 0xFFu ? 2u : 4u);
}

size_t mqttsn_encoded_len(const mqttsn_msg_t *m) { return (size_t)encoded_len(m); }

/* pre-encoding checks for what the encoder would silently drop */
static int precheck(const mqttsn_msg_t *m)
{
	if (m->encapsulated && (m->ctrl > 3 || m->node_id_len > MQTTSN_MAX_NODE_ID))
		return MQTTSN_ERR_ENCAPSULATION;
	if (m->qos < -1 || m->qos > 2)
		return MQTTSN_ERR_QOS;
	if (m->topic_id_type > 3)
		return MQTTSN_ERR_TOPIC_ID_TYPE;
	if ((m->type == MQTTSN_WILLTOPIC || m->type == MQTTSN_WILLTOPICUPD) && m->payload_len == 0 &&
	    (m->qos != 0 || m->retain))
		return MQTTSN_ERR_FLAGS; /* the empty form has no Flags */
	if ((m->type == MQTTSN_SUBSCRIBE || m->type == MQTTSN_UNSUBSCRIBE) &&
	    ((m->topic_id_type == MQTTSN_TOPIC_NORMAL) ? m->topic_id != 0 : m->payload_len != 0))
		return MQTTSN_ERR_TOPIC_NAME; /* the topic goes in one field only */
	if (m->type == MQTTSN_DISCONNECT && !m->has_duration && m->duration)
		return MQTTSN_ERR_TRAILING;
	if (m->type == MQTTSN_ENCAPSULATED)
		return MQTTSN_ERR_ENCAPSULATION;
	return MQTTSN_OK;
}

int mqttsn_encode(const mqttsn_msg_t *m, uint8_t *buf, size_t cap)
{
	mqttsn_msg_t check;
	int n, err = precheck(m);
	if (err != 0)
		return err;
	if ((n = mqttsn_encode_unchecked(m, buf, cap)) < 0)
		return n;
	/* what the decoder rejects the encoder does not write */
	err = mqttsn_decode(&check, buf, (size_t)n);
	return err != 0 ? err : n;
}

int mqttsn_encode_unchecked(const mqttsn_msg_t *m, uint8_t *buf, size_t cap)
{
	uint32_t n = body_len(m), total = encoded_len(m);
	uint8_t *p = buf;
	uint8_t f = 0;
	if (n + 4u > 0xFFFFu || total > cap || total > (uint32_t)INT_MAX)
		return MQTTSN_ERR_TOO_LARGE;
	if (m->encapsulated) { /* §5.5 Table 28 */
		*p++ = (uint8_t)(3 + m->node_id_len);
		*p++ = MQTTSN_ENCAPSULATED;
		*p++ = m->ctrl;
		if (m->node_id_len)
			memcpy(p, m->node_id, m->node_id_len);
		p += m->node_id_len;
	}
	if (n + 2 <= 0xFF) { /* §5.2.1 */
		*p++ = (uint8_t)(n + 2);
	} else {
		*p++ = 0x01;
		p = put16(p, (uint16_t)(n + 4));
	}
	*p++ = m->type;
	/* the Flags octet of the messages that have one (§5.3.4) */
	if (m->dup)
		f |= F_DUP;
	if (m->retain)
		f |= F_RETAIN;
	f |= qos_bits(m->qos) | (m->topic_id_type & F_TID);
	switch (m->type) {
	case MQTTSN_ADVERTISE:
		*p++ = m->gw_id;
		p = put16(p, m->duration);
		break;
	case MQTTSN_SEARCHGW:
		*p++ = m->radius;
		break;
	case MQTTSN_GWINFO:
		*p++ = m->gw_id;
		break;
	case MQTTSN_CONNECT:
		*p++ = (uint8_t)((m->will ? F_WILL : 0) | (m->clean_session ? F_CLEAN : 0));
		*p++ = MQTTSN_PROTOCOL_ID;
		p = put16(p, m->duration);
		break;
	case MQTTSN_CONNACK:
	case MQTTSN_WILLTOPICRESP:
	case MQTTSN_WILLMSGRESP:
		*p++ = m->return_code;
		break;
	case MQTTSN_WILLTOPIC:
	case MQTTSN_WILLTOPICUPD:
		if (m->payload_len)
			*p++ = (uint8_t)(f & (F_QOS | F_RETAIN));
		break;
	case MQTTSN_REGISTER:
		p = put16(put16(p, m->topic_id), m->msg_id);
		break;
	case MQTTSN_REGACK:
	case MQTTSN_PUBACK:
		p = put16(put16(p, m->topic_id), m->msg_id);
		*p++ = m->return_code;
		break;
	case MQTTSN_PUBLISH:
		*p++ = f;
		p = put16(put16(p, m->topic_id), m->msg_id);
		break;
	case MQTTSN_PUBREC:
	case MQTTSN_PUBREL:
	case MQTTSN_PUBCOMP:
	case MQTTSN_UNSUBACK:
		p = put16(p, m->msg_id);
		break;
	case MQTTSN_SUBSCRIBE:
	case MQTTSN_UNSUBSCRIBE:
		*p++ = (uint8_t)(m->type == MQTTSN_SUBSCRIBE ? (f & (F_DUP | F_QOS | F_TID)) : (f & F_TID));
		p = put16(p, m->msg_id);
		if (m->topic_id_type != MQTTSN_TOPIC_NORMAL)
			p = put16(p, m->topic_id);
		break;
	case MQTTSN_SUBACK:
		*p++ = (uint8_t)(f & F_QOS);
		p = put16(put16(p, m->topic_id), m->msg_id);
		*p++ = m->return_code;
		break;
	case MQTTSN_DISCONNECT:
		if (m->has_duration)
			p = put16(p, m->duration);
		break;
	default:
		break;
	}
	/* the variable-length field is last in every message that has one */
	if ((size_t)(p - buf) < total) {
		size_t rest = (size_t)(total - (uint32_t)(p - buf));
		if (m->payload == NULL || rest != m->payload_len)
			return MQTTSN_ERR_ARG;
		memcpy(p, m->payload, rest);
	}
	return (int)total;
}

const char *mqttsn_err_name(int err)
{
	static const char *const names[] = {
		"ok", "truncated", "length", "trailing", "unknown_type", "flags", "qos",
		"topic_id_type", "protocol_id", "client_id", "short_topic", "topic_name",
		"return_code", "encapsulation", "too_large",
	};
	if (err <= 0 && err >= MQTTSN_ERR_TOO_LARGE)
		return names[-err];
	switch (err) {
	case MQTTSN_ERR_BUSY:
		return "busy";
	case MQTTSN_ERR_STATE:
		return "state";
	case MQTTSN_ERR_TRANSPORT:
		return "transport";
	case MQTTSN_ERR_ARG:
		return "arg";
	}
	return "unknown";
}
