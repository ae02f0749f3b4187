/* Bridge framing codec: see bridge_frame.h and serialbus/BRIDGE-PROTOCOL.md. */
#include "bridge_frame.h"

#define SLIP_END 0xC0u
#define SLIP_ESC 0xDBu
#define SLIP_ESC_END 0xDCu
#define SLIP_ESC_ESC 0xDDu

#define ENCAP_HEADER 3u      /* Length, MsgType, Ctrl */
#define ENCAP_RADIUS 0x03u   /* Ctrl bits 1-0 */
#define ENCAP_RESERVED 0xFCu /* Ctrl bits 7-2, must be 0 (MQTT-SN 1.2 §5.5 Table 29) */
#define STATUS_FIXED 16u     /* type .. firmware length */

const char *bridge_error_name(int err)
{
    switch (err) {
    case BRIDGE_E_FRAME_TOO_LONG:
        return "FrameTooLong";
    case BRIDGE_E_CHECKSUM:
        return "Checksum";
    case BRIDGE_E_BAD_ESCAPE:
        return "BadEscape";
    case BRIDGE_E_MALFORMED:
        return "Malformed";
    case BRIDGE_E_UNKNOWN_TYPE:
        return "UnknownType";
    default:
        return "?";
    }
}

uint16_t bridge_crc16(uint16_t crc, const uint8_t *p, size_t n)
{
    while (n--) {
        unsigned i;
        crc ^= (uint16_t)((unsigned)*p++ << 8); /* unsigned: no int overflow where int has 16 bits */
        for (i = 0; i < 8; i++)
            crc = (crc & 0x8000u) ? (uint16_t)(((unsigned)crc << 1) ^ 0x1021u) : (uint16_t)((unsigned)crc << 1);
    }
    return crc;
}

void bridge_decoder_init(bridge_decoder *d, uint8_t *buf, size_t cap)
{
    d->buf = buf;
    d->cap = cap;
    bridge_decoder_reset(d);
}

void bridge_decoder_reset(bridge_decoder *d)
{
    d->len = 0;
    d->esc = 0;
    d->drop = 0;
}

/* BRIDGE-PROTOCOL.md §3: receiving, byte by byte. */
int bridge_decoder_put(bridge_decoder *d, uint8_t b)
{
    if (b == SLIP_END) {
        size_t n = d->len;
        if (d->drop) {
            bridge_decoder_reset(d);
            return 0;
        }
        if (d->esc) { /* ESC END: RFC 1055 leaves it undefined; rejected */
            bridge_decoder_reset(d);
            return BRIDGE_E_BAD_ESCAPE;
        }
        if (n == 0)
            return 0; /* empty frames are skipped */
        d->len = 0;
        if (n < 3)
            return BRIDGE_E_MALFORMED;
        /* The CRC over content and CRC bytes is 0 for a good frame (§2.1). */
        if (bridge_crc16(BRIDGE_CRC_INIT, d->buf, n) != 0)
            return BRIDGE_E_CHECKSUM;
        return (int)(n - 2);
    }
    if (d->drop)
        return 0;
    if (d->esc) {
        d->esc = 0;
        if (b == SLIP_ESC_END) {
            b = SLIP_END;
        } else if (b == SLIP_ESC_ESC) {
            b = SLIP_ESC;
        } else {
            d->drop = 1;
            d->len = 0;
            return BRIDGE_E_BAD_ESCAPE;
        }
    } else if (b == SLIP_ESC) {
        d->esc = 1;
        return 0;
    }
    if (d->len >= d->cap) { /* §2.2: checked before the byte is stored */
        d->drop = 1;
        d->len = 0;
        return BRIDGE_E_FRAME_TOO_LONG;
    }
    d->buf[d->len++] = b;
    return 0;
}

/* unsigned, not uint16_t: a uint16_t is promoted to int, and 0xFF << 8
 * overflows a 16-bit int (AVR, MSP430) */
static uint16_t get16(const uint8_t *p) { return (uint16_t)(((unsigned)p[0] << 8) | p[1]); }

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* MQTT-SN 1.2 §5.5 forwarder encapsulation, node ids of 1 to BRIDGE_NODE_MAX bytes (§4.1). */
static int decode_encap(const uint8_t *p, size_t n, bridge_frame *f)
{
    size_t len;
    if (n < ENCAP_HEADER)
        return BRIDGE_E_MALFORMED;
    len = p[0];
    if (p[1] != BRIDGE_ENCAP_TYPE || (p[2] & ENCAP_RESERVED) != 0)
        return BRIDGE_E_MALFORMED;
    if (len <= ENCAP_HEADER || len - ENCAP_HEADER > BRIDGE_NODE_MAX || len >= n)
        return BRIDGE_E_MALFORMED;
    if (n - len > 0xFFFFu)
        return BRIDGE_E_MALFORMED;
    f->radius = (uint8_t)(p[2] & ENCAP_RADIUS);
    f->node = p + ENCAP_HEADER;
    f->node_len = (uint8_t)(len - ENCAP_HEADER);
    f->data = p + len;
    f->data_len = (uint16_t)(n - len);
    return 0;
}

static int printable(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20u || (unsigned char)s[i] > 0x7Eu)
            return 0;
    return 1;
}

int bridge_frame_decode(const uint8_t *body, size_t n, bridge_frame *f)
{
    const uint8_t *p;
    size_t np;
    bridge_frame z = {0};
    *f = z;
    if (n == 0)
        return BRIDGE_E_MALFORMED;
    f->type = body[0];
    p = body + 1;
    np = n - 1;
    switch (f->type) {
    case BRIDGE_TX_DATA:
        if (np < 1)
            return BRIDGE_E_MALFORMED;
        f->frame_id = p[0];
        return decode_encap(p + 1, np - 1, f);
    case BRIDGE_STATUS_REQUEST:
        return np == 0 ? 0 : BRIDGE_E_MALFORMED;
    case BRIDGE_RX_DATA:
        if (np < 3)
            return BRIDGE_E_MALFORMED;
        f->rssi = (int16_t)get16(p);
        f->snr = (int8_t)p[2];
        return decode_encap(p + 3, np - 3, f);
    case BRIDGE_TX_STATUS:
        if (np != 3 || p[1] > 1u)
            return BRIDGE_E_MALFORMED;
        f->frame_id = p[0];
        f->failed = p[1];
        f->reason = p[2];
        /* §4.5: sent has reason 0, failed has a reason. */
        if ((f->failed != 0) == (f->reason == BRIDGE_REASON_NONE))
            return BRIDGE_E_MALFORMED;
        return 0;
    case BRIDGE_STATUS: {
        size_t fw;
        if (n < STATUS_FIXED)
            return BRIDGE_E_MALFORMED;
        f->info.version = p[0];
        f->info.max_datagram = get16(p + 1);
        f->info.frequency_hz = get32(p + 3);
        f->info.bandwidth_hz = get32(p + 7);
        f->info.spreading_factor = p[11];
        f->info.coding_rate = p[12];
        f->info.tx_power_dbm = (int8_t)p[13];
        f->info.firmware_len = p[14];
        f->info.firmware = (const char *)(p + 15);
        fw = n - STATUS_FIXED;
        if (f->info.version == 0 || f->info.firmware_len > fw)
            return BRIDGE_E_MALFORMED;
        /* Version 1 ends with the firmware string; later ones may append (§4.6). */
        if (f->info.firmware_len < fw && f->info.version == 1)
            return BRIDGE_E_MALFORMED;
        if (!printable(f->info.firmware, f->info.firmware_len))
            return BRIDGE_E_MALFORMED;
        return 0;
    }
    default:
        return BRIDGE_E_UNKNOWN_TYPE;
    }
}

/* Writer of escaped bytes that keeps the CRC; it stops writing at cap. */
typedef struct writer {
    uint8_t *out;
    size_t cap, n;
    uint16_t crc;
    int overflow;
} writer;

static void raw_put(writer *w, uint8_t b)
{
    if (w->n < w->cap)
        w->out[w->n++] = b;
    else
        w->overflow = 1;
}

static void esc_put(writer *w, uint8_t b)
{
    if (b == SLIP_END) {
        raw_put(w, SLIP_ESC);
        raw_put(w, SLIP_ESC_END);
    } else if (b == SLIP_ESC) {
        raw_put(w, SLIP_ESC);
        raw_put(w, SLIP_ESC_ESC);
    } else {
        raw_put(w, b);
    }
}

static void put(writer *w, uint8_t b)
{
    w->crc = bridge_crc16(w->crc, &b, 1);
    esc_put(w, b);
}

static void put_n(writer *w, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        put(w, p[i]);
}

static void put32(writer *w, uint32_t v)
{
    put(w, (uint8_t)(v >> 24));
    put(w, (uint8_t)(v >> 16));
    put(w, (uint8_t)(v >> 8));
    put(w, (uint8_t)v);
}

static int encap_ok(const bridge_frame *f)
{
    return (f->radius & ~ENCAP_RADIUS) == 0 && f->node_len >= 1 && f->node_len <= BRIDGE_NODE_MAX &&
           f->node != NULL && f->data != NULL && f->data_len >= 1;
}

size_t bridge_frame_encode(const bridge_frame *f, uint8_t *out, size_t cap)
{
    writer w;
    w.out = out;
    w.cap = cap;
    w.n = 0;
    w.crc = BRIDGE_CRC_INIT;
    w.overflow = 0;
    raw_put(&w, SLIP_END);
    switch (f->type) {
    case BRIDGE_TX_DATA:
    case BRIDGE_RX_DATA:
        if (!encap_ok(f))
            return 0;
        put(&w, f->type);
        if (f->type == BRIDGE_TX_DATA) {
            put(&w, f->frame_id);
        } else {
            put(&w, (uint8_t)((uint16_t)f->rssi >> 8));
            put(&w, (uint8_t)(uint16_t)f->rssi);
            put(&w, (uint8_t)f->snr);
        }
        put(&w, (uint8_t)(ENCAP_HEADER + f->node_len));
        put(&w, BRIDGE_ENCAP_TYPE);
        put(&w, f->radius);
        put_n(&w, f->node, f->node_len);
        put_n(&w, f->data, f->data_len);
        break;
    case BRIDGE_STATUS_REQUEST:
        put(&w, f->type);
        break;
    case BRIDGE_TX_STATUS:
        if ((f->failed != 0) == (f->reason == BRIDGE_REASON_NONE) || f->failed > 1u)
            return 0;
        put(&w, f->type);
        put(&w, f->frame_id);
        put(&w, f->failed);
        put(&w, f->reason);
        break;
    case BRIDGE_STATUS:
        if (f->info.version == 0 || (f->info.firmware_len > 0 && f->info.firmware == NULL) ||
            !printable(f->info.firmware, f->info.firmware_len))
            return 0;
        put(&w, f->type);
        put(&w, f->info.version);
        put(&w, (uint8_t)(f->info.max_datagram >> 8));
        put(&w, (uint8_t)f->info.max_datagram);
        put32(&w, f->info.frequency_hz);
        put32(&w, f->info.bandwidth_hz);
        put(&w, f->info.spreading_factor);
        put(&w, f->info.coding_rate);
        put(&w, (uint8_t)f->info.tx_power_dbm);
        put(&w, f->info.firmware_len);
        put_n(&w, (const uint8_t *)f->info.firmware, f->info.firmware_len);
        break;
    default:
        return 0;
    }
    {
        uint16_t crc = w.crc;
        esc_put(&w, (uint8_t)(crc >> 8));
        esc_put(&w, (uint8_t)crc);
    }
    raw_put(&w, SLIP_END);
    return w.overflow ? 0 : w.n;
}
