/*
 * Outpost radio bridge board: the portable protocol and queueing core.
 *
 * The board sits between the gateway's serial line ("USB", bridge framing of
 * serialbus/BRIDGE-PROTOCOL.md) and a packet radio ("air"). It carries
 * MQTT-SN datagrams for many nodes without looking inside them: the radio
 * address of a node is its wireless node id in the forwarder encapsulation.
 *
 *   USB bytes --bridge_usb_input--> TX queue --radio.send--> air
 *   air --bridge_radio_received--> RX queue --usb.write--> USB bytes
 *
 * C99, no malloc, no OS, no clock of its own: the glue passes the time in
 * milliseconds (any free-running counter; it may wrap) to the calls that
 * need it, and calls bridge_poll from its main loop. Nothing here is
 * re-entrant: call every function from one context (a radio interrupt sets
 * a flag; the main loop reads the packet and calls bridge_radio_received).
 */
#ifndef OUTPOST_BRIDGE_H
#define OUTPOST_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "bridge_frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Compile-time sizes; override with -D. RAM is about
 * (TXQ_LEN + RXQ_LEN) * (MAX_DATAGRAM + 16) + 3 * MAX_DATAGRAM + 600 bytes. */
#ifndef BRIDGE_MAX_DATAGRAM
#define BRIDGE_MAX_DATAGRAM 255u /* largest MQTT-SN message on air (a LoRa packet) */
#endif
#ifndef BRIDGE_TXQ_LEN
#define BRIDGE_TXQ_LEN 8u /* TX_DATA frames waiting for the radio */
#endif
#ifndef BRIDGE_RXQ_LEN
#define BRIDGE_RXQ_LEN 8u /* received packets waiting for the USB line */
#endif
#ifndef BRIDGE_STATUSQ_LEN
#define BRIDGE_STATUSQ_LEN (BRIDGE_TXQ_LEN + 4u) /* TX_STATUS frames waiting for the USB line */
#endif

/* bridge_poll's answer when only an event (input, receive, tx done) can make work. */
#define BRIDGE_IDLE 0xFFFFFFFFu

/* The radio, supplied by the glue. */
typedef struct bridge_radio {
    void *ctx;
    /*
     * Starts sending data (len bytes, 1..max_datagram) on air to the node
     * addr (addr_len bytes; all bytes 0xFF: every node). Returns
     * BRIDGE_REASON_NONE when the radio took the packet: the glue then calls
     * bridge_radio_tx_done once it is on air or failed. Any other
     * BRIDGE_REASON_* fails the frame at once.
     */
    uint8_t (*send)(void *ctx, const uint8_t *addr, uint8_t addr_len, const uint8_t *data, uint16_t len);
    /* Optional: nonzero while the radio cannot start sending (it is
     * receiving a packet, or channel activity detection found the channel
     * busy). The frame waits. NULL: never busy. */
    int (*busy)(void *ctx);
    /* Optional: time on air of a len-byte packet, ms, for the duty cycle.
     * NULL: len * 8000 / config.bit_rate (or 0 without a bit rate). */
    uint32_t (*airtime_ms)(void *ctx, uint16_t len);
} bridge_radio;

/* The USB (serial) line to the gateway, supplied by the glue. */
typedef struct bridge_usb {
    void *ctx;
    /* Writes up to n bytes without blocking; returns how many it took. The
     * core keeps the rest and offers it again at the next bridge_poll. */
    size_t (*write)(void *ctx, const uint8_t *p, size_t n);
} bridge_usb;

typedef struct bridge_config {
    bridge_radio radio;
    bridge_usb usb;
    /* The node id length this board uses for every node, 1-8 bytes (§4.1).
     * A TX_DATA to another length fails with BRIDGE_REASON_BAD_FRAME, unless
     * it is the broadcast address (all bytes 0xFF, any length). */
    uint8_t node_id_len;
    /* Largest MQTT-SN message sent on air, reported in STATUS. Zero (or
     * more than BRIDGE_MAX_DATAGRAM): BRIDGE_MAX_DATAGRAM. */
    uint16_t max_datagram;
    /* Radio settings reported in STATUS. Zero firmware: "outpost-bridge". */
    uint32_t frequency_hz;
    uint32_t bandwidth_hz;
    uint8_t spreading_factor;
    uint8_t coding_rate;
    int8_t tx_power_dbm;
    const char *firmware; /* printable ASCII, NUL-terminated, <= 255 chars */
    /* Air bit rate for the default airtime estimate. Zero: no estimate. */
    uint32_t bit_rate;
    /* Least silence between the end of one transmission and the start of the next, ms. */
    uint32_t min_gap_ms;
    /* Duty cycle budget: parts per million of duty_window_ms the board may
     * spend on air (10000 = 1%). Zero: no limit. Zero window: one hour. */
    uint32_t duty_cycle_ppm;
    uint32_t duty_window_ms;
    /* How long a frame may wait at the head of the queue for budget before
     * it fails with BRIDGE_REASON_DUTY_CYCLE. Zero: it fails at once. */
    uint32_t duty_hold_ms;
    /* A transmission the radio has not reported done after this long fails
     * with BRIDGE_REASON_RADIO_ERROR. Zero: 5000 ms. */
    uint32_t tx_timeout_ms;
} bridge_config;

/* Counters since bridge_init. */
typedef struct bridge_counters {
    uint32_t usb_bytes_in, usb_bytes_out;
    uint32_t frames_in;      /* good frames from the host */
    uint32_t frames_out;     /* frames written to the host */
    uint32_t checksum_errors;
    uint32_t framing_errors; /* too long, bad escape, malformed */
    uint32_t unknown_types;
    uint32_t status_requests;
    uint32_t status_sent;
    uint32_t tx_data;        /* TX_DATA frames received */
    uint32_t tx_sent;        /* packets the radio reported on air */
    uint32_t tx_failed;      /* TX_DATA frames that failed, for any reason */
    uint32_t tx_failed_by_reason[8]; /* index: reason 1-7; 0 counts other */
    uint32_t tx_queue_high;  /* most TX_DATA frames queued at once */
    uint32_t tx_broadcasts;
    uint32_t duty_waits;     /* times a frame waited for duty-cycle budget */
    uint32_t airtime_ms;     /* total time on air */
    uint32_t rx_packets;     /* packets received on air and queued */
    uint32_t rx_dropped;     /* received while the RX queue was full */
    uint32_t rx_rejected;    /* received with a bad address length or too long */
    uint32_t rx_queue_high;
} bridge_counters;

typedef struct bridge_tx_slot {
    uint8_t frame_id;
    uint8_t node_len;
    uint8_t node[BRIDGE_NODE_MAX];
    uint16_t len;
    uint8_t data[BRIDGE_MAX_DATAGRAM];
} bridge_tx_slot;

typedef struct bridge_rx_slot {
    int16_t rssi;
    int8_t snr;
    uint8_t node_len;
    uint8_t node[BRIDGE_NODE_MAX];
    uint16_t len;
    uint8_t data[BRIDGE_MAX_DATAGRAM];
} bridge_rx_slot;

typedef struct bridge_tx_status {
    uint8_t frame_id;
    uint8_t reason;
} bridge_tx_status;

/* The whole state; the application owns it (a static variable). Opaque:
 * use the functions below. */
typedef struct bridge {
    bridge_config cfg;
    uint8_t fw_len;
    bridge_decoder dec;
    uint8_t dec_buf[BRIDGE_TX_DATA_SIZE(BRIDGE_NODE_MAX, BRIDGE_MAX_DATAGRAM)];

    bridge_tx_slot txq[BRIDGE_TXQ_LEN];
    uint8_t tx_head, tx_count;
    uint8_t tx_busy;        /* txq[tx_head] is on air, waiting for tx done */
    uint16_t tx_id;         /* counts radio.send calls: the id of the latest transmission */
    uint32_t tx_started;    /* when it started */
    uint32_t tx_airtime;    /* its time on air, ms */
    uint8_t tx_waiting;     /* the head waits for duty budget since wait_since */
    uint32_t wait_since;
    uint8_t have_last_tx;
    uint32_t last_tx_end;

    uint64_t credit;        /* duty budget in ms*ppm */
    uint32_t credit_time;

    bridge_rx_slot rxq[BRIDGE_RXQ_LEN];
    uint8_t rx_head, rx_count;

    bridge_tx_status statq[BRIDGE_STATUSQ_LEN];
    uint8_t stat_head, stat_count;
    uint8_t status_pending; /* a STATUS frame is owed */

    uint8_t out[BRIDGE_WIRE_MAX(BRIDGE_STATUS_SIZE(255u) > BRIDGE_RX_DATA_SIZE(BRIDGE_NODE_MAX, BRIDGE_MAX_DATAGRAM)
                                    ? BRIDGE_STATUS_SIZE(255u)
                                    : BRIDGE_RX_DATA_SIZE(BRIDGE_NODE_MAX, BRIDGE_MAX_DATAGRAM))];
    uint16_t out_len, out_off;

    bridge_counters n;
} bridge;

/* Checks cfg and starts the board: a STATUS frame is owed to the host
 * (§5: after a reset the board sends STATUS unasked). Returns 0, or -1 for
 * a bad config (missing callbacks, node id length, firmware string). */
int bridge_init(bridge *b, const bridge_config *cfg, uint32_t now_ms);

/* Bytes that arrived on the USB line. Returns how many were consumed: fewer
 * than n when the board cannot take another frame now (its TX_STATUS queue
 * is full because the host does not read); offer the rest again later. */
size_t bridge_usb_input(bridge *b, const uint8_t *p, size_t n, uint32_t now_ms);

/* A packet the radio received from node addr, with RSSI (dBm) and SNR
 * (quarter dB; BRIDGE_RSSI_UNKNOWN / BRIDGE_SNR_UNKNOWN when the radio
 * cannot tell). Returns 0 when queued, -1 when dropped (and counted). */
int bridge_radio_received(bridge *b, const uint8_t *addr, uint8_t addr_len, int16_t rssi, int8_t snr,
                          const uint8_t *data, uint16_t len);

/* The transmission started by radio.send ended: BRIDGE_REASON_NONE when it
 * went on air, another BRIDGE_REASON_* when it failed. It applies to
 * whatever is on air: a radio that reports after the core gave up on a
 * transmission (tx_timeout_ms) and started the next one would have that
 * report counted for the next one. Glue that can tell its transmissions
 * apart uses bridge_radio_tx_id and bridge_radio_tx_done_id instead. */
void bridge_radio_tx_done(bridge *b, uint8_t reason, uint32_t now_ms);

/* The id of the transmission radio.send is starting: call it inside
 * radio.send (or after it, before the next bridge_poll) and keep it with the
 * transmission. Ids count up by one per radio.send call, wrapping at 65535. */
uint16_t bridge_radio_tx_id(const bridge *b);

/* bridge_radio_tx_done for the transmission tx_id: a report for one that
 * already ended (timed out) is ignored, so that it is never counted against
 * the next one. */
void bridge_radio_tx_done_id(bridge *b, uint16_t tx_id, uint8_t reason, uint32_t now_ms);

/* Radio settings changed (frequency, SF, power, ...): a STATUS frame is owed.
 * firmware NULL keeps the current string. Returns -1 for a bad string. */
int bridge_set_radio(bridge *b, uint32_t frequency_hz, uint32_t bandwidth_hz, uint8_t spreading_factor,
                     uint8_t coding_rate, int8_t tx_power_dbm, uint16_t max_datagram);

/* Does the work that is due: times out a transmission, starts the next one
 * when the radio, the gap and the duty budget allow, writes owed frames to
 * USB. Returns the ms after which it wants to be called again (0: at once),
 * or BRIDGE_IDLE when only an event can bring work. */
uint32_t bridge_poll(bridge *b, uint32_t now_ms);

const bridge_counters *bridge_get_counters(const bridge *b);

/* Frames waiting in each direction. */
unsigned bridge_tx_queued(const bridge *b);
unsigned bridge_rx_queued(const bridge *b);

/* Nonzero while a frame is owed to USB or partly written (a STATUS, a
 * TX_STATUS or an RX_DATA): what a glue that stops should flush first. */
int bridge_usb_pending(const bridge *b);

#ifdef __cplusplus
}
#endif

#endif
