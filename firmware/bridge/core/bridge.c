/* Outpost radio bridge board core: see bridge.h. */
#include "bridge.h"

#include <string.h>

/* Queue counters are uint8_t. */
typedef char bridge_txq_fits[(BRIDGE_TXQ_LEN >= 1u && BRIDGE_TXQ_LEN <= 255u) ? 1 : -1];
typedef char bridge_rxq_fits[(BRIDGE_RXQ_LEN >= 1u && BRIDGE_RXQ_LEN <= 255u) ? 1 : -1];
typedef char bridge_statq_fits[(BRIDGE_STATUSQ_LEN > BRIDGE_TXQ_LEN && BRIDGE_STATUSQ_LEN <= 255u) ? 1 : -1];
typedef char bridge_datagram_fits[(BRIDGE_MAX_DATAGRAM >= 2u && BRIDGE_MAX_DATAGRAM <= 1000u) ? 1 : -1];

#define DEFAULT_FIRMWARE "outpost-bridge 0.1.0"
#define DEFAULT_WINDOW_MS 3600000u
#define DEFAULT_TX_TIMEOUT_MS 5000u
#define PPM 1000000u

static uint32_t min32(uint32_t a, uint32_t b) { return a < b ? a : b; }

static int firmware_ok(const char *s, size_t *len)
{
    size_t n = 0;
    while (s[n] != '\0') {
        if ((unsigned char)s[n] < 0x20u || (unsigned char)s[n] > 0x7Eu || n == 255u)
            return 0;
        n++;
    }
    *len = n;
    return 1;
}

int bridge_init(bridge *b, const bridge_config *cfg, uint32_t now_ms)
{
    size_t fw = 0;
    memset(b, 0, sizeof *b);
    if (cfg->radio.send == NULL || cfg->usb.write == NULL)
        return -1;
    if (cfg->node_id_len < 1u || cfg->node_id_len > BRIDGE_NODE_MAX)
        return -1;
    b->cfg = *cfg;
    if (b->cfg.firmware == NULL)
        b->cfg.firmware = DEFAULT_FIRMWARE;
    if (!firmware_ok(b->cfg.firmware, &fw))
        return -1;
    b->fw_len = (uint8_t)fw;
    if (b->cfg.max_datagram == 0u || b->cfg.max_datagram > BRIDGE_MAX_DATAGRAM)
        b->cfg.max_datagram = BRIDGE_MAX_DATAGRAM;
    if (b->cfg.duty_window_ms == 0u)
        b->cfg.duty_window_ms = DEFAULT_WINDOW_MS;
    if (b->cfg.tx_timeout_ms == 0u)
        b->cfg.tx_timeout_ms = DEFAULT_TX_TIMEOUT_MS;
    bridge_decoder_init(&b->dec, b->dec_buf, sizeof b->dec_buf);
    b->credit = (uint64_t)b->cfg.duty_window_ms * b->cfg.duty_cycle_ppm; /* a full budget */
    b->credit_time = now_ms;
    b->status_pending = 1; /* §5: STATUS unasked after a reset */
    return 0;
}

int bridge_set_radio(bridge *b, uint32_t frequency_hz, uint32_t bandwidth_hz, uint8_t spreading_factor,
                     uint8_t coding_rate, int8_t tx_power_dbm, uint16_t max_datagram)
{
    if (max_datagram == 0u || max_datagram > BRIDGE_MAX_DATAGRAM)
        max_datagram = BRIDGE_MAX_DATAGRAM;
    b->cfg.frequency_hz = frequency_hz;
    b->cfg.bandwidth_hz = bandwidth_hz;
    b->cfg.spreading_factor = spreading_factor;
    b->cfg.coding_rate = coding_rate;
    b->cfg.tx_power_dbm = tx_power_dbm;
    b->cfg.max_datagram = max_datagram;
    b->status_pending = 1; /* §4.6: whenever its radio settings change */
    return 0;
}

const bridge_counters *bridge_get_counters(const bridge *b) { return &b->n; }
unsigned bridge_tx_queued(const bridge *b) { return b->tx_count; }
unsigned bridge_rx_queued(const bridge *b) { return b->rx_count; }

int bridge_usb_pending(const bridge *b)
{
    return b->out_off < b->out_len || b->status_pending || b->stat_count > 0u || b->rx_count > 0u;
}

/* ---- TX_STATUS queue ---- */

static void push_status(bridge *b, uint8_t frame_id, uint8_t reason)
{
    unsigned i;
    if (frame_id == 0u) /* §4.2: the host wants no TX_STATUS */
        return;
    /* Room is reserved: stat_count + tx_count < BRIDGE_STATUSQ_LEN while a
     * frame is handled (see bridge_usb_input). */
    if (b->stat_count >= BRIDGE_STATUSQ_LEN)
        return;
    i = (b->stat_head + b->stat_count) % BRIDGE_STATUSQ_LEN;
    b->statq[i].frame_id = frame_id;
    b->statq[i].reason = reason;
    b->stat_count++;
}

static void tx_failed(bridge *b, uint8_t frame_id, uint8_t reason)
{
    b->n.tx_failed++;
    b->n.tx_failed_by_reason[reason <= 7u ? reason : 0u]++;
    push_status(b, frame_id, reason);
}

/* ---- USB input ---- */

static int is_broadcast(const uint8_t *node, uint8_t len)
{
    uint8_t i;
    for (i = 0; i < len; i++)
        if (node[i] != 0xFFu)
            return 0;
    return 1;
}

static void handle_tx_data(bridge *b, const bridge_frame *f)
{
    bridge_tx_slot *s;
    int bcast = is_broadcast(f->node, f->node_len);
    b->n.tx_data++;
    if (f->data_len > b->cfg.max_datagram) {
        tx_failed(b, f->frame_id, BRIDGE_REASON_TOO_LONG);
        return;
    }
    if (!bcast && f->node_len != b->cfg.node_id_len) {
        tx_failed(b, f->frame_id, BRIDGE_REASON_BAD_FRAME);
        return;
    }
    if (b->tx_count >= BRIDGE_TXQ_LEN) {
        tx_failed(b, f->frame_id, BRIDGE_REASON_QUEUE_FULL);
        return;
    }
    s = &b->txq[(b->tx_head + b->tx_count) % BRIDGE_TXQ_LEN];
    s->frame_id = f->frame_id;
    if (bcast) { /* the board's own broadcast address, whatever length the host used */
        s->node_len = b->cfg.node_id_len;
        memset(s->node, 0xFF, s->node_len);
    } else {
        s->node_len = f->node_len;
        memcpy(s->node, f->node, f->node_len);
    }
    s->len = f->data_len;
    memcpy(s->data, f->data, f->data_len);
    b->tx_count++;
    if (b->tx_count > b->n.tx_queue_high)
        b->n.tx_queue_high = b->tx_count;
}

static void handle_frame(bridge *b, size_t len)
{
    bridge_frame f;
    int err = bridge_frame_decode(b->dec_buf, len, &f);
    if (err == BRIDGE_E_UNKNOWN_TYPE) {
        b->n.unknown_types++;
        return;
    }
    if (err != 0) {
        b->n.framing_errors++;
        return;
    }
    b->n.frames_in++;
    switch (f.type) {
    case BRIDGE_TX_DATA:
        handle_tx_data(b, &f);
        break;
    case BRIDGE_STATUS_REQUEST:
        b->n.status_requests++;
        b->status_pending = 1;
        break;
    default: /* a board -> host frame sent to the board */
        b->n.frames_in--;
        b->n.unknown_types++;
        break;
    }
}

size_t bridge_usb_input(bridge *b, const uint8_t *p, size_t n, uint32_t now_ms)
{
    size_t i;
    (void)now_ms;
    for (i = 0; i < n; i++) {
        int r;
        /* Every TX_DATA frame owes a TX_STATUS slot, now (refused) or when
         * it leaves the queue: take no frame without one. */
        if ((unsigned)b->stat_count + b->tx_count >= BRIDGE_STATUSQ_LEN)
            break;
        r = bridge_decoder_put(&b->dec, p[i]);
        if (r > 0) {
            handle_frame(b, (size_t)r);
        } else if (r == BRIDGE_E_CHECKSUM) {
            b->n.checksum_errors++;
        } else if (r < 0) {
            b->n.framing_errors++;
        }
    }
    b->n.usb_bytes_in += (uint32_t)i;
    return i;
}

/* ---- radio ---- */

int bridge_radio_received(bridge *b, const uint8_t *addr, uint8_t addr_len, int16_t rssi, int8_t snr,
                          const uint8_t *data, uint16_t len)
{
    bridge_rx_slot *s;
    if (addr == NULL || addr_len < 1u || addr_len > BRIDGE_NODE_MAX || data == NULL || len < 1u ||
        len > BRIDGE_MAX_DATAGRAM) {
        b->n.rx_rejected++;
        return -1;
    }
    if (b->rx_count >= BRIDGE_RXQ_LEN) {
        b->n.rx_dropped++;
        return -1;
    }
    s = &b->rxq[(b->rx_head + b->rx_count) % BRIDGE_RXQ_LEN];
    s->rssi = rssi;
    s->snr = snr;
    s->node_len = addr_len;
    memcpy(s->node, addr, addr_len);
    s->len = len;
    memcpy(s->data, data, len);
    b->rx_count++;
    b->n.rx_packets++;
    if (b->rx_count > b->n.rx_queue_high)
        b->n.rx_queue_high = b->rx_count;
    return 0;
}

static void pop_tx(bridge *b)
{
    b->tx_head = (uint8_t)((b->tx_head + 1u) % BRIDGE_TXQ_LEN);
    b->tx_count--;
    b->tx_waiting = 0;
}

void bridge_radio_tx_done(bridge *b, uint8_t reason, uint32_t now_ms)
{
    uint8_t id;
    if (!b->tx_busy)
        return;
    id = b->txq[b->tx_head].frame_id;
    pop_tx(b);
    b->tx_busy = 0;
    b->have_last_tx = 1;
    b->last_tx_end = now_ms;
    if (reason == BRIDGE_REASON_NONE) {
        b->n.tx_sent++;
        push_status(b, id, BRIDGE_REASON_NONE);
    } else {
        tx_failed(b, id, reason);
    }
}

uint16_t bridge_radio_tx_id(const bridge *b) { return b->tx_id; }

void bridge_radio_tx_done_id(bridge *b, uint16_t tx_id, uint8_t reason, uint32_t now_ms)
{
    if (tx_id == b->tx_id) /* a late report for a timed-out transmission is not this one's */
        bridge_radio_tx_done(b, reason, now_ms);
}

static uint32_t airtime(const bridge *b, uint16_t len)
{
    if (b->cfg.radio.airtime_ms != NULL)
        return b->cfg.radio.airtime_ms(b->cfg.radio.ctx, len);
    if (b->cfg.bit_rate == 0u)
        return 0;
    return (uint32_t)(((uint64_t)len * 8000u + b->cfg.bit_rate - 1u) / b->cfg.bit_rate);
}

static void accrue(bridge *b, uint32_t now)
{
    uint64_t cap = (uint64_t)b->cfg.duty_window_ms * b->cfg.duty_cycle_ppm;
    uint32_t elapsed = now - b->credit_time;
    b->credit_time = now;
    b->credit += (uint64_t)elapsed * b->cfg.duty_cycle_ppm;
    if (b->credit > cap)
        b->credit = cap;
}

/* Starts the head of the TX queue if it may go; returns the ms to wait
 * before trying again (BRIDGE_IDLE: nothing to start). */
static uint32_t start_tx(bridge *b, uint32_t now)
{
    while (!b->tx_busy && b->tx_count > 0u) {
        bridge_tx_slot *s = &b->txq[b->tx_head];
        uint32_t air = airtime(b, s->len);
        uint8_t reason;
        if (b->have_last_tx && now - b->last_tx_end < b->cfg.min_gap_ms)
            return b->cfg.min_gap_ms - (now - b->last_tx_end);
        if (b->cfg.duty_cycle_ppm != 0u) {
            uint64_t cost = (uint64_t)air * PPM;
            uint64_t cap = (uint64_t)b->cfg.duty_window_ms * b->cfg.duty_cycle_ppm;
            if (cost > cap) { /* never fits the budget */
                tx_failed(b, s->frame_id, BRIDGE_REASON_DUTY_CYCLE);
                pop_tx(b);
                continue;
            }
            if (b->credit < cost) {
                uint64_t need = (cost - b->credit + b->cfg.duty_cycle_ppm - 1u) / b->cfg.duty_cycle_ppm;
                if (!b->tx_waiting) {
                    b->wait_since = now;
                }
                if (now - b->wait_since >= b->cfg.duty_hold_ms || need > b->cfg.duty_hold_ms - (now - b->wait_since)) {
                    tx_failed(b, s->frame_id, BRIDGE_REASON_DUTY_CYCLE);
                    pop_tx(b);
                    continue;
                }
                if (!b->tx_waiting) {
                    b->tx_waiting = 1;
                    b->n.duty_waits++;
                }
                return min32((uint32_t)need, b->cfg.duty_hold_ms - (now - b->wait_since));
            }
        }
        if (b->cfg.radio.busy != NULL && b->cfg.radio.busy(b->cfg.radio.ctx))
            return 1;
        b->tx_id++; /* before send: the glue reads it there */
        reason = b->cfg.radio.send(b->cfg.radio.ctx, s->node, s->node_len, s->data, s->len);
        if (reason != BRIDGE_REASON_NONE) {
            tx_failed(b, s->frame_id, reason);
            pop_tx(b);
            continue;
        }
        if (b->cfg.duty_cycle_ppm != 0u)
            b->credit -= (uint64_t)air * PPM;
        if (is_broadcast(s->node, s->node_len))
            b->n.tx_broadcasts++;
        b->n.airtime_ms += air;
        b->tx_busy = 1;
        b->tx_waiting = 0;
        b->tx_started = now;
    }
    return BRIDGE_IDLE;
}

/* ---- USB output ---- */

/* Encodes the next owed frame into b->out; returns 0 when none is owed. */
static int next_out(bridge *b)
{
    bridge_frame f;
    memset(&f, 0, sizeof f);
    if (b->status_pending) {
        b->status_pending = 0;
        f.type = BRIDGE_STATUS;
        f.info.version = BRIDGE_PROTOCOL_VERSION;
        f.info.max_datagram = b->cfg.max_datagram;
        f.info.frequency_hz = b->cfg.frequency_hz;
        f.info.bandwidth_hz = b->cfg.bandwidth_hz;
        f.info.spreading_factor = b->cfg.spreading_factor;
        f.info.coding_rate = b->cfg.coding_rate;
        f.info.tx_power_dbm = b->cfg.tx_power_dbm;
        f.info.firmware = b->cfg.firmware;
        f.info.firmware_len = b->fw_len;
        b->n.status_sent++;
    } else if (b->stat_count > 0u) {
        bridge_tx_status *st = &b->statq[b->stat_head];
        f.type = BRIDGE_TX_STATUS;
        f.frame_id = st->frame_id;
        f.failed = st->reason != BRIDGE_REASON_NONE;
        f.reason = st->reason;
        b->stat_head = (uint8_t)((b->stat_head + 1u) % BRIDGE_STATUSQ_LEN);
        b->stat_count--;
    } else if (b->rx_count > 0u) {
        bridge_rx_slot *s = &b->rxq[b->rx_head];
        f.type = BRIDGE_RX_DATA;
        f.rssi = s->rssi;
        f.snr = s->snr;
        f.node = s->node;
        f.node_len = s->node_len;
        f.data = s->data;
        f.data_len = s->len;
        b->out_len = (uint16_t)bridge_frame_encode(&f, b->out, sizeof b->out); /* 0: not valid, skipped */
        b->rx_head = (uint8_t)((b->rx_head + 1u) % BRIDGE_RXQ_LEN);
        b->rx_count--;
        b->out_off = 0;
        return 1;
    } else {
        return 0;
    }
    b->out_len = (uint16_t)bridge_frame_encode(&f, b->out, sizeof b->out);
    b->out_off = 0;
    return 1;
}

/* Writes owed frames until USB takes no more; returns nonzero when some wait. */
static int flush_usb(bridge *b)
{
    for (;;) {
        size_t w;
        if (b->out_off >= b->out_len) {
            b->out_off = b->out_len = 0;
            if (!next_out(b))
                return 0;
            if (b->out_len == 0u)
                continue; /* cannot happen: every owed frame is valid */
            b->n.frames_out++;
        }
        w = b->cfg.usb.write(b->cfg.usb.ctx, b->out + b->out_off, (size_t)(b->out_len - b->out_off));
        if (w > (size_t)(b->out_len - b->out_off))
            w = (size_t)(b->out_len - b->out_off);
        b->out_off = (uint16_t)(b->out_off + w);
        b->n.usb_bytes_out += (uint32_t)w;
        if (b->out_off < b->out_len)
            return 1;
    }
}

uint32_t bridge_poll(bridge *b, uint32_t now_ms)
{
    uint32_t wait = BRIDGE_IDLE;
    if (b->cfg.duty_cycle_ppm != 0u)
        accrue(b, now_ms);
    if (b->tx_busy && now_ms - b->tx_started >= b->cfg.tx_timeout_ms)
        bridge_radio_tx_done(b, BRIDGE_REASON_RADIO_ERROR, now_ms);
    wait = min32(wait, start_tx(b, now_ms));
    if (b->tx_busy)
        wait = min32(wait, b->cfg.tx_timeout_ms - (now_ms - b->tx_started));
    if (flush_usb(b))
        wait = min32(wait, 1u);
    return wait;
}
