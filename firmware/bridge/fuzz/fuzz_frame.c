/*
 * libFuzzer target of the bridge stream decoder and frame codec, and of the
 * core's USB input. The first input byte picks a receiver maximum; the rest
 * is a byte stream fed to the decoder, split at a point the input chooses.
 * Properties: every decoded frame encodes, and its encoding decodes to the
 * same frame and re-encodes to the same bytes; the core takes the stream
 * without reading or writing out of bounds and answers only in valid frames.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

static void must(int ok)
{
    if (!ok)
        abort();
}

static int same(const bridge_frame *a, const bridge_frame *b)
{
    if (a->type != b->type || a->frame_id != b->frame_id || a->rssi != b->rssi || a->snr != b->snr ||
        a->radius != b->radius || a->node_len != b->node_len || a->data_len != b->data_len ||
        a->failed != b->failed || a->reason != b->reason)
        return 0;
    if ((a->node_len && memcmp(a->node, b->node, a->node_len)) || (a->data_len && memcmp(a->data, b->data, a->data_len)))
        return 0;
    return a->info.version == b->info.version && a->info.max_datagram == b->info.max_datagram &&
           a->info.frequency_hz == b->info.frequency_hz && a->info.bandwidth_hz == b->info.bandwidth_hz &&
           a->info.spreading_factor == b->info.spreading_factor && a->info.coding_rate == b->info.coding_rate &&
           a->info.tx_power_dbm == b->info.tx_power_dbm && a->info.firmware_len == b->info.firmware_len &&
           (a->info.firmware_len == 0 || memcmp(a->info.firmware, b->info.firmware, a->info.firmware_len) == 0);
}

static void round_trip(const uint8_t *body, size_t n)
{
    static uint8_t wire[BRIDGE_WIRE_MAX(BRIDGE_DEFAULT_FRAME_MAX)], wire2[sizeof wire];
    static uint8_t buf[BRIDGE_DEFAULT_FRAME_MAX];
    bridge_frame f, g;
    bridge_decoder d;
    size_t len, len2, i;
    int got = 0;
    if (bridge_frame_decode(body, n, &f) != 0)
        return;
    len = bridge_frame_encode(&f, wire, sizeof wire);
    must(len > 0);
    bridge_decoder_init(&d, buf, sizeof buf);
    for (i = 0; i < len; i++) {
        int r = bridge_decoder_put(&d, wire[i]);
        must(r >= 0);
        if (r > 0) {
            must(i == len - 1 && (size_t)r == n && memcmp(buf, body, n) == 0);
            must(bridge_frame_decode(buf, (size_t)r, &g) == 0 && same(&f, &g));
            len2 = bridge_frame_encode(&g, wire2, sizeof wire2);
            must(len2 == len && memcmp(wire, wire2, len) == 0);
            got = 1;
        }
    }
    must(got);
}

/* The core, fed the same stream: it must only ever write valid frames. */
static bridge core;
static uint8_t out_buf[BRIDGE_DEFAULT_FRAME_MAX];
static bridge_decoder out_dec;

static size_t usb_write(void *ctx, const uint8_t *p, size_t n)
{
    size_t i;
    (void)ctx;
    for (i = 0; i < n; i++) {
        int r = bridge_decoder_put(&out_dec, p[i]);
        bridge_frame f;
        must(r >= 0);
        if (r > 0)
            must(bridge_frame_decode(out_buf, (size_t)r, &f) == 0 && (f.type & 0x80u) != 0);
    }
    return n;
}

static uint8_t radio_send(void *ctx, const uint8_t *addr, uint8_t addr_len, const uint8_t *data, uint16_t len)
{
    (void)ctx;
    must(addr_len == 2 && len >= 1 && len <= BRIDGE_MAX_DATAGRAM && addr != NULL && data != NULL);
    return addr[0] == 0x13 ? BRIDGE_REASON_CHANNEL_BUSY : BRIDGE_REASON_NONE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[BRIDGE_DEFAULT_FRAME_MAX];
    bridge_decoder d;
    bridge_config cfg;
    size_t i, max, split;
    uint32_t now = 0;
    if (size < 2)
        return 0;
    max = 3u + (size_t)data[0] * 4u; /* 3 .. 1023 */
    split = data[1] < size - 2 ? data[1] : size - 2;
    data += 2;
    size -= 2;
    bridge_decoder_init(&d, buf, max);
    for (i = 0; i < size; i++) {
        int r = bridge_decoder_put(&d, data[i]);
        if (r > 0) {
            must((size_t)r + 2 <= max);
            round_trip(buf, (size_t)r);
        }
    }

    memset(&cfg, 0, sizeof cfg);
    cfg.radio.send = radio_send;
    cfg.usb.write = usb_write;
    cfg.node_id_len = 2;
    cfg.duty_cycle_ppm = 10000;
    cfg.bit_rate = 5470;
    must(bridge_init(&core, &cfg, now) == 0);
    bridge_decoder_init(&out_dec, out_buf, sizeof out_buf);
    /* Two chunks, the core polled between: input in pieces of any size. */
    for (i = 0; i < size;) {
        size_t end = i < split ? split : size;
        size_t n = bridge_usb_input(&core, data + i, end - i, now);
        i += n;
        bridge_poll(&core, now);
        if (core.tx_busy)
            bridge_radio_tx_done(&core, (uint8_t)(now % 3 == 0 ? BRIDGE_REASON_NONE : BRIDGE_REASON_NO_ACK), now);
        now += 7;
        if (n == 0)
            bridge_poll(&core, now);
    }
    return 0;
}
