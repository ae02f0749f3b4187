/*
 * Bridge framing of serialbus/BRIDGE-PROTOCOL.md (version 1): SLIP frames of
 * type, payload and CRC-16/CCITT-FALSE between the gateway (host) and the
 * bridge board. Portable C99, no allocation: every buffer is the caller's.
 *
 * The codec is symmetric: it decodes and encodes all five frame types in both
 * directions, so the same code serves the board, the host tests and the fuzzer.
 */
#ifndef OUTPOST_BRIDGE_FRAME_H
#define OUTPOST_BRIDGE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Frame types (BRIDGE-PROTOCOL.md §4). 01-7F host -> board, 81-FF board -> host. */
#define BRIDGE_TX_DATA 0x01u
#define BRIDGE_STATUS_REQUEST 0x02u
#define BRIDGE_RX_DATA 0x81u
#define BRIDGE_TX_STATUS 0x82u
#define BRIDGE_STATUS 0x83u

/* TX_STATUS reasons (§4.5). */
#define BRIDGE_REASON_NONE 0x00u
#define BRIDGE_REASON_CHANNEL_BUSY 0x01u
#define BRIDGE_REASON_DUTY_CYCLE 0x02u
#define BRIDGE_REASON_TOO_LONG 0x03u
#define BRIDGE_REASON_NO_ACK 0x04u
#define BRIDGE_REASON_QUEUE_FULL 0x05u
#define BRIDGE_REASON_RADIO_ERROR 0x06u
#define BRIDGE_REASON_BAD_FRAME 0x07u
#define BRIDGE_REASON_OTHER 0xFFu

/* Sentinels of RX_DATA for a radio that cannot measure (§4.4). */
#define BRIDGE_RSSI_UNKNOWN ((int16_t)-32768)
#define BRIDGE_SNR_UNKNOWN ((int8_t)-128)

#define BRIDGE_PROTOCOL_VERSION 1u
#define BRIDGE_NODE_MAX 8u          /* longest wireless node id (§4.1) */
#define BRIDGE_DEFAULT_FRAME_MAX 1024u /* unescaped type + payload + CRC (§2.2) */
#define BRIDGE_ENCAP_TYPE 0xFEu     /* MQTT-SN 1.2 §5.5 MsgType */

/* What a receiver reports (§3). Frames are > 0, "nothing yet" is 0. */
#define BRIDGE_E_FRAME_TOO_LONG (-1)
#define BRIDGE_E_CHECKSUM (-2)
#define BRIDGE_E_BAD_ESCAPE (-3)
#define BRIDGE_E_MALFORMED (-4)
#define BRIDGE_E_UNKNOWN_TYPE (-5)

/* Name of an error code ("FrameTooLong", "Checksum", ...), as in the fixtures. */
const char *bridge_error_name(int err);

/* CRC-16/CCITT-FALSE (§2.1): poly 0x1021, init 0xFFFF, no reflection, no XOR. */
uint16_t bridge_crc16(uint16_t crc, const uint8_t *p, size_t n);
#define BRIDGE_CRC_INIT 0xFFFFu

/*
 * Stream decoder: SLIP unescaping, the length limit (checked before a byte is
 * stored) and the CRC check. buf/cap is the caller's frame buffer; cap is the
 * receiver's maximum frame length (type, payload and CRC, unescaped).
 */
typedef struct bridge_decoder {
    uint8_t *buf;
    size_t cap;
    size_t len;
    uint8_t esc;  /* the previous byte was ESC */
    uint8_t drop; /* discarding up to the next END after an error */
} bridge_decoder;

void bridge_decoder_init(bridge_decoder *d, uint8_t *buf, size_t cap);

/*
 * Feeds one byte. Returns 0 while a frame is incomplete; a positive length
 * when a frame with a good CRC is complete (its type and payload, CRC
 * stripped, are d->buf[0 .. length), valid until the next call); or a
 * BRIDGE_E_* error for a frame that was discarded.
 */
int bridge_decoder_put(bridge_decoder *d, uint8_t byte);

/* Drops a partly received frame. */
void bridge_decoder_reset(bridge_decoder *d);

/* STATUS content (§4.6). */
typedef struct bridge_info {
    uint8_t version;       /* protocol version, >= 1 */
    uint16_t max_datagram; /* largest MQTT-SN message the board sends; 0 unknown */
    uint32_t frequency_hz;
    uint32_t bandwidth_hz;
    uint8_t spreading_factor; /* 5-12, 0 n/a */
    uint8_t coding_rate;      /* n of 4/n, 5-8, 0 n/a */
    int8_t tx_power_dbm;
    const char *firmware; /* printable ASCII, not NUL-terminated after decode */
    uint8_t firmware_len;
} bridge_info;

/*
 * One decoded frame. Which fields are used depends on type:
 *   TX_DATA         frame_id, radius, node, data
 *   STATUS_REQUEST  -
 *   RX_DATA         rssi, snr, radius, node, data
 *   TX_STATUS       frame_id, failed, reason
 *   STATUS          info
 * After bridge_frame_decode, node, data and info.firmware point into the body.
 */
typedef struct bridge_frame {
    uint8_t type;
    uint8_t frame_id;
    int16_t rssi;
    int8_t snr;
    uint8_t radius;
    const uint8_t *node;
    uint8_t node_len;
    const uint8_t *data;
    uint16_t data_len;
    uint8_t failed;
    uint8_t reason;
    bridge_info info;
} bridge_frame;

/*
 * Decodes type and payload (a body from bridge_decoder_put) into f. Strict:
 * lengths must fit the type's layout exactly, reserved bits be zero. Returns
 * 0, BRIDGE_E_MALFORMED or BRIDGE_E_UNKNOWN_TYPE.
 */
int bridge_frame_decode(const uint8_t *body, size_t n, bridge_frame *f);

/*
 * Encodes f as it goes on the wire: END, escaped type, payload and CRC, END.
 * Returns the number of bytes written to out, or 0 when f is not a valid
 * frame or does not fit in cap bytes. BRIDGE_WIRE_MAX(content) bounds the size.
 */
size_t bridge_frame_encode(const bridge_frame *f, uint8_t *out, size_t cap);
#define BRIDGE_WIRE_MAX(content) (2u + 2u * (size_t)(content))

/* Unescaped content sizes of the data frames for a node id and message. */
#define BRIDGE_TX_DATA_SIZE(node, data) (1u + 1u + 3u + (node) + (data) + 2u)
#define BRIDGE_RX_DATA_SIZE(node, data) (1u + 3u + 3u + (node) + (data) + 2u)
#define BRIDGE_STATUS_SIZE(fw) (16u + (fw) + 2u)

#ifdef __cplusplus
}
#endif

#endif
