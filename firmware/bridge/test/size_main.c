/* A minimal Cortex-M0+ program around the core, linked with newlib-nano and
 * --gc-sections, so that the size report counts what the core pulls in from
 * libc and libgcc (memcpy, 64-bit division). With -DBRIDGE_SIZE_EMPTY it is
 * the same program without the core: the difference is the core's cost. */
#include "bridge.h"

#ifndef BRIDGE_SIZE_EMPTY
static bridge board;
static volatile uint32_t ticks;
static volatile uint8_t rx[16];

static uint8_t send(void *ctx, const uint8_t *a, uint8_t al, const uint8_t *d, uint16_t n)
{
    (void)ctx, (void)a, (void)al, (void)d, (void)n;
    return BRIDGE_REASON_NONE;
}

static size_t write(void *ctx, const uint8_t *p, size_t n)
{
    (void)ctx, (void)p;
    return n;
}
#endif

int main(void)
{
#ifndef BRIDGE_SIZE_EMPTY
    bridge_config cfg = {0};
    cfg.radio.send = send;
    cfg.usb.write = write;
    cfg.node_id_len = 2;
    cfg.duty_cycle_ppm = 10000;
    cfg.bit_rate = 5470;
    bridge_init(&board, &cfg, ticks);
    for (;;) {
        uint8_t b[4] = {rx[0], rx[1], rx[2], rx[3]};
        bridge_usb_input(&board, b, sizeof b, ticks);
        bridge_radio_received(&board, b, 2, -80, 20, b + 2, 2);
        bridge_radio_tx_done(&board, rx[4], ticks);
        bridge_set_radio(&board, 868100000u, 125000u, 7, 5, 14, 0);
        bridge_poll(&board, ticks);
    }
#else
    for (;;) {
    }
#endif
}
