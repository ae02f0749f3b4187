/*
 * The bridge core between a scripted USB line and a scripted radio: STATUS
 * at start and on request, TX_DATA to the air and TX_STATUS back, RX_DATA
 * with RSSI/SNR for many nodes, bounded queues in both directions, the
 * back-pressure that keeps every TX_STATUS, duty cycle, gap and timeouts.
 * Time is a variable the test moves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "frame_text.h"

static int failures;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);                                                 \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

/* ---- the USB line: what the board writes, decoded into text frames ---- */

#define MAX_OUT 1024
#define TEXT 1024

typedef struct usb_line {
    size_t accept;   /* bytes taken per write call; 0: none (a host that does not read) */
    unsigned char dec_buf[BRIDGE_DEFAULT_FRAME_MAX];
    bridge_decoder dec;
    int nframes, errors;
    char frames[MAX_OUT][TEXT];
    int next; /* first frame not taken by take() */
    size_t nraw;
    unsigned char raw[4096]; /* the first bytes written, as they are */
} usb_line;

static size_t usb_write(void *ctx, const uint8_t *p, size_t n)
{
    usb_line *u = ctx;
    size_t i, k = n < u->accept ? n : u->accept;
    for (i = 0; i < k && u->nraw < sizeof u->raw; i++)
        u->raw[u->nraw++] = p[i];
    for (i = 0; i < k; i++) {
        int r = bridge_decoder_put(&u->dec, p[i]);
        if (r < 0) {
            u->errors++;
        } else if (r > 0) {
            bridge_frame f;
            if (bridge_frame_decode(u->dec_buf, (size_t)r, &f) != 0)
                u->errors++;
            else if (u->nframes < MAX_OUT)
                format_frame(u->frames[u->nframes++], TEXT, &f);
        }
    }
    return k;
}

/* The next frame the board wrote, or "" */
static const char *take(usb_line *u)
{
    if (u->next >= u->nframes)
        return "";
    return u->frames[u->next++];
}

/* ---- the radio ---- */

#define MAX_SENT 1024

typedef struct radio {
    int busy;
    uint8_t refuse; /* reason send returns */
    uint32_t air;   /* airtime of every packet, ms; 0: the core's estimate */
    int nsent;
    char sent[MAX_SENT][TEXT]; /* "node=... data=..." */
    uint32_t sent_at[MAX_SENT];
    uint32_t *now;
} radio;

static uint8_t radio_send(void *ctx, const uint8_t *addr, uint8_t addr_len, const uint8_t *data, uint16_t len)
{
    radio *r = ctx;
    char node[2 * BRIDGE_NODE_MAX + 1], d[2 * BRIDGE_MAX_DATAGRAM + 1];
    if (r->refuse)
        return r->refuse;
    hex(node, addr, addr_len);
    hex(d, data, len);
    if (r->nsent < MAX_SENT) {
        r->sent_at[r->nsent] = *r->now;
        snprintf(r->sent[r->nsent++], TEXT, "node=%s data=%s", node, d);
    }
    return BRIDGE_REASON_NONE;
}

static int radio_busy(void *ctx) { return ((radio *)ctx)->busy; }

static uint32_t radio_airtime(void *ctx, uint16_t len)
{
    radio *r = ctx;
    (void)len;
    return r->air;
}

/* ---- fixture ---- */

static bridge b;
static usb_line usb;
static radio rad;
static uint32_t now;

static bridge_config base_config(void)
{
    bridge_config c;
    memset(&c, 0, sizeof c);
    c.radio.ctx = &rad;
    c.radio.send = radio_send;
    c.radio.busy = radio_busy;
    c.usb.ctx = &usb;
    c.usb.write = usb_write;
    c.node_id_len = 2;
    c.max_datagram = 222;
    c.frequency_hz = 868100000u;
    c.bandwidth_hz = 125000u;
    c.spreading_factor = 7;
    c.coding_rate = 5;
    c.tx_power_dbm = 14;
    c.firmware = "outpost-bridge 0.1.0";
    return c;
}

static void start(const bridge_config *c)
{
    memset(&usb, 0, sizeof usb);
    memset(&rad, 0, sizeof rad);
    usb.accept = (size_t)-1;
    bridge_decoder_init(&usb.dec, usb.dec_buf, sizeof usb.dec_buf);
    rad.now = &now;
    now = 1000;
    if (bridge_init(&b, c, now) != 0) {
        fprintf(stderr, "bridge_init failed\n");
        exit(1);
    }
}

/* start, then takes the STATUS the board owes after a reset. */
static void boot(const bridge_config *c)
{
    start(c);
    bridge_poll(&b, now);
    take(&usb);
}

/* Feeds a frame from the host; returns the bytes consumed. */
static size_t host_send(const bridge_frame *f)
{
    uint8_t wire[BRIDGE_WIRE_MAX(BRIDGE_DEFAULT_FRAME_MAX)];
    size_t n = bridge_frame_encode(f, wire, sizeof wire);
    CHECK(n > 0, "encode");
    return bridge_usb_input(&b, wire, n, now);
}

static size_t tx_data(uint8_t id, const uint8_t *node, uint8_t node_len, const uint8_t *data, uint16_t len)
{
    bridge_frame f;
    memset(&f, 0, sizeof f);
    f.type = BRIDGE_TX_DATA;
    f.frame_id = id;
    f.node = node;
    f.node_len = node_len;
    f.data = data;
    f.data_len = len;
    return host_send(&f);
}

static void status_request(void)
{
    bridge_frame f;
    memset(&f, 0, sizeof f);
    f.type = BRIDGE_STATUS_REQUEST;
    host_send(&f);
}

static void expect_frame(const char *want)
{
    const char *got = take(&usb);
    CHECK(strcmp(got, want) == 0, "board wrote \"%s\", want \"%s\"", got, want);
}

static void expect_no_frame(void)
{
    const char *got = take(&usb);
    CHECK(got[0] == '\0', "board wrote \"%s\", want nothing", got);
}

/* ---- tests ---- */

/* §5: STATUS after a reset, unasked, and again for each STATUS_REQUEST; the
 * bytes are the golden STATUS frame of BRIDGE-PROTOCOL.md §6. */
static void test_status(void)
{
    static const uint8_t golden[] = {0xc0, 0x83, 0x01, 0x00, 0xde, 0x33, 0xbe, 0x27, 0xa0, 0x00, 0x01, 0xe8,
                                     0x48, 0x07, 0x05, 0x0e, 0x14, 'o',  'u',  't',  'p',  'o',  's',  't',
                                     '-',  'b',  'r',  'i',  'd',  'g',  'e',  ' ',  '0',  '.',  '1',  '.',
                                     '0',  0x56, 0xf1, 0xc0};
    bridge_config c = base_config();
    start(&c);
    bridge_poll(&b, now);
    expect_frame("STATUS version=1 max=222 freq=868100000 bw=125000 sf=7 cr=5 power=14 firmware=\"outpost-bridge 0.1.0\"");
    expect_no_frame();
    CHECK(usb.nraw == sizeof golden && memcmp(usb.raw, golden, sizeof golden) == 0,
          "the %lu bytes of STATUS differ from the protocol's example", (unsigned long)usb.nraw);
    {
        bridge_frame f;
        uint8_t wire[64];
        memset(&f, 0, sizeof f);
        f.type = BRIDGE_STATUS;
        f.info.version = 1;
        f.info.max_datagram = 222;
        f.info.frequency_hz = 868100000u;
        f.info.bandwidth_hz = 125000u;
        f.info.spreading_factor = 7;
        f.info.coding_rate = 5;
        f.info.tx_power_dbm = 14;
        f.info.firmware = "outpost-bridge 0.1.0";
        f.info.firmware_len = 20;
        CHECK(bridge_frame_encode(&f, wire, sizeof wire) == sizeof golden && memcmp(wire, golden, sizeof golden) == 0,
              "STATUS encoding differs from the protocol's example");
    }
    status_request();
    status_request(); /* two requests before a poll owe one STATUS */
    bridge_poll(&b, now);
    expect_frame("STATUS version=1 max=222 freq=868100000 bw=125000 sf=7 cr=5 power=14 firmware=\"outpost-bridge 0.1.0\"");
    expect_no_frame();
    CHECK(b.n.status_requests == 2 && b.n.status_sent == 2, "requests %lu sent %lu",
          (unsigned long)b.n.status_requests, (unsigned long)b.n.status_sent);
    /* New radio settings: STATUS unasked. */
    bridge_set_radio(&b, 869525000u, 250000u, 9, 8, -3, 51);
    bridge_poll(&b, now);
    expect_frame("STATUS version=1 max=51 freq=869525000 bw=250000 sf=9 cr=8 power=-3 firmware=\"outpost-bridge 0.1.0\"");
    CHECK(usb.errors == 0, "the host saw %d bad frames", usb.errors);
}

/* TX_DATA goes on air to its node; TX_STATUS follows tx done; frame id 0 gets none. */
static void test_tx(void)
{
    static const uint8_t node[] = {0x01, 0x02}, connack[] = {0x03, 0x05, 0x00};
    bridge_config c = base_config();
    boot(&c);
    CHECK(tx_data(1, node, 2, connack, 3) > 0, "input");
    bridge_poll(&b, now);
    CHECK(rad.nsent == 1 && strcmp(rad.sent[0], "node=0102 data=030500") == 0, "sent %d: %s", rad.nsent, rad.sent[0]);
    expect_no_frame(); /* nothing before tx done */
    bridge_radio_tx_done(&b, BRIDGE_REASON_NONE, now);
    bridge_poll(&b, now);
    expect_frame("TX_STATUS id=1 result=sent reason=0");
    tx_data(0, node, 2, connack, 3);
    bridge_poll(&b, now);
    bridge_radio_tx_done(&b, BRIDGE_REASON_NONE, now);
    bridge_poll(&b, now);
    CHECK(rad.nsent == 2, "sent %d", rad.nsent);
    expect_no_frame();
    /* The radio's own failure is reported with its reason. */
    tx_data(9, node, 2, connack, 3);
    bridge_poll(&b, now);
    bridge_radio_tx_done(&b, BRIDGE_REASON_NO_ACK, now);
    bridge_poll(&b, now);
    expect_frame("TX_STATUS id=9 result=failed reason=4");
    /* A radio that refuses at once (channel busy). */
    rad.refuse = BRIDGE_REASON_CHANNEL_BUSY;
    tx_data(10, node, 2, connack, 3);
    bridge_poll(&b, now);
    expect_frame("TX_STATUS id=10 result=failed reason=1");
    rad.refuse = 0;
    /* A radio that never reports done: radio error after the timeout. */
    tx_data(11, node, 2, connack, 3);
    bridge_poll(&b, now);
    CHECK(bridge_poll(&b, now + 1000) == 4000, "poll should wait for the tx timeout");
    expect_no_frame();
    now += 5000;
    bridge_poll(&b, now);
    expect_frame("TX_STATUS id=11 result=failed reason=6");
    CHECK(b.n.tx_sent == 2 && b.n.tx_failed == 3, "sent %lu failed %lu", (unsigned long)b.n.tx_sent,
          (unsigned long)b.n.tx_failed);
    CHECK(b.n.tx_failed_by_reason[BRIDGE_REASON_RADIO_ERROR] == 1, "radio errors");
}

/* Frames the board cannot use are answered, never dropped silently. */
/* A radio that reports a transmission done after the core timed it out
 * and started the next one: with ids, the late report is not counted
 * against the next frame, which gets its own TX_STATUS when its own done
 * comes; every frame gets exactly one TX_STATUS. */
static void test_tx_late_done(void)
{
    static const uint8_t node[] = {0x01, 0x02}, connack[] = {0x03, 0x05, 0x00};
    uint16_t first, second;
    bridge_config c = base_config();
    boot(&c);
    tx_data(1, node, 2, connack, 3);
    tx_data(2, node, 2, connack, 3);
    bridge_poll(&b, now);
    first = bridge_radio_tx_id(&b);
    CHECK(rad.nsent == 1, "sent %d", rad.nsent);
    now += 5000; /* no done: radio error, and frame 2 goes on air */
    bridge_poll(&b, now);
    second = bridge_radio_tx_id(&b);
    CHECK(rad.nsent == 2 && second == (uint16_t)(first + 1u), "sent %d, ids %u %u", rad.nsent, first, second);
    expect_frame("TX_STATUS id=1 result=failed reason=6");
    bridge_radio_tx_done_id(&b, first, BRIDGE_REASON_NONE, now); /* frame 1's late report */
    bridge_poll(&b, now);
    expect_no_frame();
    CHECK(b.tx_busy && bridge_tx_queued(&b) == 1, "frame 2 should still be on air");
    bridge_radio_tx_done_id(&b, second, BRIDGE_REASON_NO_ACK, now);
    bridge_poll(&b, now);
    expect_frame("TX_STATUS id=2 result=failed reason=4");
    bridge_radio_tx_done_id(&b, second, BRIDGE_REASON_NONE, now); /* twice: nothing more */
    bridge_poll(&b, now);
    expect_no_frame();
    CHECK(b.n.tx_sent == 0 && b.n.tx_failed == 2, "sent %lu failed %lu", (unsigned long)b.n.tx_sent,
          (unsigned long)b.n.tx_failed);
}

static void test_tx_refused(void)
{
    static const uint8_t one[] = {0x0a}, two[] = {0x0a, 0x0b}, bcast2[] = {0xff, 0xff}, ping[] = {0x02, 0x16};
    static uint8_t big[223];
    bridge_config c = base_config();
    c.node_id_len = 4;
    boot(&c);
    memset(big, 0x61, sizeof big);
    tx_data(1, one, 1, ping, 2); /* node id of another length */
    tx_data(2, two, 2, ping, 2);
    tx_data(3, (const uint8_t *)"\x0a\x0b\x0c\x0d", 4, big, 223); /* beyond max datagram 222 */
    tx_data(4, bcast2, 2, ping, 2);                                /* broadcast: FF FF is every node */
    bridge_poll(&b, now);
    expect_frame("TX_STATUS id=1 result=failed reason=7");
    expect_frame("TX_STATUS id=2 result=failed reason=7");
    expect_frame("TX_STATUS id=3 result=failed reason=3");
    expect_no_frame();
    CHECK(rad.nsent == 1 && strcmp(rad.sent[0], "node=ffffffff data=0216") == 0, "broadcast went as %s",
          rad.sent[0]);
    bridge_radio_tx_done(&b, BRIDGE_REASON_NONE, now);
    bridge_poll(&b, now);
    expect_frame("TX_STATUS id=4 result=sent reason=0");
    CHECK(b.n.tx_broadcasts == 1, "broadcasts %lu", (unsigned long)b.n.tx_broadcasts);
}

/* A full TX queue answers QUEUE_FULL at once; the queued frames go in order. */
static void test_tx_queue_overflow(void)
{
    static const uint8_t node[] = {0x00, 0x07};
    uint8_t msg[3] = {0x03, 0x16, 0};
    unsigned i;
    char want[TEXT];
    bridge_config c = base_config();
    boot(&c);
    rad.busy = 1; /* nothing leaves the queue */
    for (i = 1; i <= BRIDGE_TXQ_LEN + 2u; i++) {
        msg[2] = (uint8_t)i;
        tx_data((uint8_t)i, node, 2, msg, 3);
    }
    bridge_poll(&b, now);
    CHECK(bridge_tx_queued(&b) == BRIDGE_TXQ_LEN, "queued %u", bridge_tx_queued(&b));
    for (i = BRIDGE_TXQ_LEN + 1u; i <= BRIDGE_TXQ_LEN + 2u; i++) {
        snprintf(want, sizeof want, "TX_STATUS id=%u result=failed reason=5", i);
        expect_frame(want);
    }
    expect_no_frame();
    rad.busy = 0;
    for (i = 1; i <= BRIDGE_TXQ_LEN; i++) {
        bridge_poll(&b, now);
        bridge_radio_tx_done(&b, BRIDGE_REASON_NONE, now);
    }
    bridge_poll(&b, now);
    CHECK(rad.nsent == (int)BRIDGE_TXQ_LEN, "sent %d", rad.nsent);
    for (i = 1; i <= BRIDGE_TXQ_LEN; i++) {
        snprintf(want, sizeof want, "node=0007 data=0316%02x", i);
        CHECK(i - 1 < (unsigned)rad.nsent && strcmp(rad.sent[i - 1], want) == 0, "packet %u: %s", i, rad.sent[i - 1]);
        snprintf(want, sizeof want, "TX_STATUS id=%u result=sent reason=0", i);
        expect_frame(want);
    }
    CHECK(b.n.tx_failed_by_reason[BRIDGE_REASON_QUEUE_FULL] == 2, "queue full %lu",
          (unsigned long)b.n.tx_failed_by_reason[BRIDGE_REASON_QUEUE_FULL]);
    CHECK(b.n.tx_queue_high == BRIDGE_TXQ_LEN, "high water %lu", (unsigned long)b.n.tx_queue_high);
}

/* A host that does not read: the board stops taking frames before it would
 * owe a TX_STATUS it has no room for, and loses none once the host reads. */
static void test_usb_backpressure(void)
{
    static const uint8_t node[] = {0x00, 0x01};
    uint8_t wire[64 * 300];
    size_t len = 0, off = 0, n;
    unsigned i, got = 0;
    int rounds = 0;
    bridge_config c = base_config();
    boot(&c);
    for (i = 1; i <= 255; i++) {
        bridge_frame f;
        uint8_t msg[2] = {0x02, 0x16};
        memset(&f, 0, sizeof f);
        f.type = BRIDGE_TX_DATA;
        f.frame_id = (uint8_t)i;
        f.node = node;
        f.node_len = 2;
        f.data = msg;
        f.data_len = 2;
        len += bridge_frame_encode(&f, wire + len, sizeof wire - len);
    }
    usb.accept = 0;
    rad.busy = 1;
    n = bridge_usb_input(&b, wire, len, now);
    CHECK(n < len, "the board took all %lu bytes with nowhere to answer", (unsigned long)len);
    CHECK(bridge_tx_queued(&b) == BRIDGE_TXQ_LEN, "queued %u", bridge_tx_queued(&b));
    off = n;
    /* The host reads a few bytes at a time; the radio sends. */
    usb.accept = 7;
    rad.busy = 0;
    while ((off < len || bridge_tx_queued(&b) > 0 || b.out_off < b.out_len || b.stat_count > 0) && rounds < 100000) {
        off += bridge_usb_input(&b, wire + off, len - off, now);
        bridge_poll(&b, now);
        bridge_radio_tx_done(&b, BRIDGE_REASON_NONE, now);
        rounds++;
    }
    CHECK(off == len, "the board took %lu of %lu bytes", (unsigned long)off, (unsigned long)len);
    {
        static unsigned char seen[256];
        const char *g;
        memset(seen, 0, sizeof seen);
        while ((g = take(&usb))[0] != '\0') {
            unsigned id;
            if (sscanf(g, "TX_STATUS id=%u", &id) != 1 || id == 0 || id > 255 || seen[id]++)
                CHECK(0, "unexpected \"%s\"", g);
            else
                got++;
        }
    }
    CHECK(got == 255, "%u of 255 TX_STATUS", got);
    CHECK(usb.errors == 0, "the host saw %d bad frames in partial writes", usb.errors);
    CHECK(b.n.tx_failed == b.n.tx_failed_by_reason[BRIDGE_REASON_QUEUE_FULL], "failures other than queue full");
}

/* Many nodes: RX_DATA carries each packet's node id, RSSI and SNR, in the
 * order received; TX_DATA goes to the addressed node. */
static void test_many_nodes(void)
{
    unsigned i;
    char want[TEXT];
    bridge_config c = base_config();
    boot(&c);
    for (i = 0; i < 300; i++) {
        uint8_t node[2] = {(uint8_t)(i % 60 >> 8), (uint8_t)(0x10 + i % 60)};
        uint8_t msg[4] = {0x04, 0x0c, (uint8_t)i, (uint8_t)(i >> 8)};
        int16_t rssi = (int16_t)(-40 - (int)(i % 80));
        int8_t snr = (int8_t)((int)(i % 50) - 20);
        CHECK(bridge_radio_received(&b, node, 2, rssi, snr, msg, 4) == 0, "receive %u", i);
        if (i % 5 == 4) /* the host drains now and then, in bursts */
            bridge_poll(&b, now);
        if (i % 7 == 0) {
            uint8_t down[3] = {0x03, 0x18, (uint8_t)i};
            tx_data((uint8_t)(i % 255 + 1), node, 2, down, 3);
            bridge_poll(&b, now);
            bridge_radio_tx_done(&b, BRIDGE_REASON_NONE, now);
        }
    }
    bridge_poll(&b, now);
    {
        unsigned rx = 0, tx = 0;
        const char *g;
        while ((g = take(&usb))[0] != '\0') {
            if (strncmp(g, "RX_DATA", 7) == 0) {
                snprintf(want, sizeof want, "RX_DATA rssi=%d snr=%d radius=0 node=00%02x data=040c%02x%02x",
                         -40 - (int)(rx % 80), (int)(rx % 50) - 20, 0x10 + rx % 60, rx & 0xff, rx >> 8);
                CHECK(strcmp(g, want) == 0, "got %s, want %s", g, want);
                rx++;
            } else {
                tx++;
            }
        }
        CHECK(rx == 300 && tx == 43, "%u RX_DATA and %u TX_STATUS", rx, tx);
    }
    for (i = 0; i < 300; i += 7) {
        snprintf(want, sizeof want, "node=00%02x data=0318%02x", 0x10 + i % 60, i & 0xff);
        CHECK(strcmp(rad.sent[i / 7], want) == 0, "sent %s, want %s", rad.sent[i / 7], want);
    }
    CHECK(b.n.rx_dropped == 0 && b.n.rx_packets == 300, "dropped %lu", (unsigned long)b.n.rx_dropped);
}

/* A full RX queue drops the newest packets and counts them; the rest go in order. */
static void test_rx_queue_overflow(void)
{
    static const uint8_t node[] = {0x0a, 0x0b}, nometrics[] = {0x26, 0x01};
    unsigned i;
    char want[TEXT];
    bridge_config c = base_config();
    boot(&c);
    usb.accept = 0;
    for (i = 0; i < BRIDGE_RXQ_LEN + 3u; i++) {
        uint8_t msg[3] = {0x03, 0x01, (uint8_t)i};
        int r = bridge_radio_received(&b, node, 2, -87, 25, msg, 3);
        CHECK(r == (i <= BRIDGE_RXQ_LEN ? 0 : -1), "receive %u gives %d", i, r);
        bridge_poll(&b, now); /* the first packet leaves the queue for the USB buffer */
    }
    CHECK(b.n.rx_dropped == 2, "dropped %lu", (unsigned long)b.n.rx_dropped);
    CHECK(bridge_radio_received(&b, node, 9, 0, 0, (const uint8_t *)"\x02\x16", 2) == -1, "9-byte node id");
    CHECK(bridge_radio_received(&b, node, 2, 0, 0, (const uint8_t *)"", 0) == -1, "empty packet");
    CHECK(b.n.rx_rejected == 2, "rejected %lu", (unsigned long)b.n.rx_rejected);
    usb.accept = 3;
    for (i = 0; i < 200; i++)
        bridge_poll(&b, now);
    for (i = 0; i < BRIDGE_RXQ_LEN + 1u; i++) {
        snprintf(want, sizeof want, "RX_DATA rssi=-87 snr=25 radius=0 node=0a0b data=0301%02x", i);
        expect_frame(want);
    }
    expect_no_frame();
    bridge_radio_received(&b, nometrics, 2, BRIDGE_RSSI_UNKNOWN, BRIDGE_SNR_UNKNOWN, (const uint8_t *)"\x03\x01\x00",
                          3);
    for (i = 0; i < 20; i++)
        bridge_poll(&b, now);
    expect_frame("RX_DATA rssi=-32768 snr=-128 radius=0 node=2601 data=030100");
}

/* Boots with c and 400 ms packets; three PINGREQs to 0102 with frame ids
 * 1-3, of which the first two go on air and end. */
static void three_pings(const bridge_config *c)
{
    static const uint8_t node[] = {0x01, 0x02}, ping[] = {0x02, 0x16};
    uint8_t id;
    boot(c);
    rad.air = 400;
    for (id = 1; id <= 3; id++)
        tx_data(id, node, 2, ping, 2);
    bridge_poll(&b, now);
    bridge_radio_tx_done(&b, 0, now);
    bridge_poll(&b, now);
    bridge_radio_tx_done(&b, 0, now);
}

/* 1% duty cycle over a 100 s window (a 1000 ms budget), 400 ms per packet. */
static void test_duty_cycle(void)
{
    static const uint8_t node[] = {0x01, 0x02}, ping[] = {0x02, 0x16};
    uint32_t wait;
    bridge_config c = base_config();
    c.radio.airtime_ms = radio_airtime;
    c.duty_cycle_ppm = 10000;
    c.duty_window_ms = 100000;
    three_pings(&c);
    bridge_poll(&b, now); /* 200 ms of budget left: the third fails (no hold) */
    expect_frame("TX_STATUS id=1 result=sent reason=0");
    expect_frame("TX_STATUS id=2 result=sent reason=0");
    expect_frame("TX_STATUS id=3 result=failed reason=2");
    CHECK(b.n.airtime_ms == 800, "airtime %lu", (unsigned long)b.n.airtime_ms);
    now += 20000; /* +200 ms of budget */
    tx_data(4, node, 2, ping, 2);
    bridge_poll(&b, now);
    bridge_radio_tx_done(&b, 0, now);
    bridge_poll(&b, now);
    expect_frame("TX_STATUS id=4 result=sent reason=0");

    /* With a hold, the frame waits for the budget instead. */
    c.duty_hold_ms = 60000;
    three_pings(&c);
    wait = bridge_poll(&b, now);
    CHECK(wait == 20000, "poll waits %lu ms, want 20000", (unsigned long)wait);
    CHECK(rad.nsent == 2 && b.n.duty_waits == 1, "sent %d waits %lu", rad.nsent, (unsigned long)b.n.duty_waits);
    bridge_poll(&b, now + 19999);
    CHECK(rad.nsent == 2, "sent before the budget was back");
    now += 20000;
    bridge_poll(&b, now);
    CHECK(rad.nsent == 3, "not sent when the budget was back");
    /* A packet longer than the whole budget can never go. */
    bridge_radio_tx_done(&b, 0, now);
    rad.air = 1001;
    now += 200000;
    tx_data(5, node, 2, ping, 2);
    bridge_poll(&b, now);
    expect_frame("TX_STATUS id=1 result=sent reason=0");
    expect_frame("TX_STATUS id=2 result=sent reason=0");
    expect_frame("TX_STATUS id=3 result=sent reason=0");
    expect_frame("TX_STATUS id=5 result=failed reason=2");
}

/* min_gap_ms between the end of one packet and the start of the next; a
 * busy radio (CAD, receiving) delays without failing. */
static void test_gap_and_busy(void)
{
    static const uint8_t node[] = {0x01, 0x02}, ping[] = {0x02, 0x16};
    uint32_t t0;
    bridge_config c = base_config();
    c.min_gap_ms = 50;
    c.bit_rate = 5470; /* the airtime estimate: 2 bytes = 3 ms */
    boot(&c);
    tx_data(1, node, 2, ping, 2);
    tx_data(2, node, 2, ping, 2);
    bridge_poll(&b, now);
    t0 = now + 10;
    bridge_radio_tx_done(&b, 0, t0);
    CHECK(bridge_poll(&b, t0 + 20) == 30, "gap wait");
    CHECK(rad.nsent == 1, "second packet inside the gap");
    rad.busy = 1;
    CHECK(bridge_poll(&b, t0 + 50) == 1, "busy radio: poll again soon");
    CHECK(rad.nsent == 1, "sent while busy");
    rad.busy = 0;
    bridge_poll(&b, t0 + 51);
    CHECK(rad.nsent == 2 && rad.sent_at[1] == 1000, "second packet not sent after the gap");
    CHECK(b.n.airtime_ms == 6, "estimated airtime %lu ms, want 6", (unsigned long)b.n.airtime_ms);
}

/* Damaged and foreign frames from the host are counted and never answered. */
static void test_bad_input(void)
{
    static const uint8_t noise[] = {
        0x3f, 0x12, 0xa5, 0x70, 0xc0,                         /* noise: Checksum */
        0xc0, 0x81, 0xff, 0xa9, 0x18, 0x05, 0xfe, 0x00, 0x01, /* bad CRC RX_DATA */
        0x02, 0x0b, 0x0c, 0x61, 0x00, 0x01, 0x00, 0x00, 0x32, 0x31, 0x2e, 0x35, 0x4b, 0x54, 0xc0,
        0xc0, 0x82, 0x01, 0xc0,                               /* too short */
        0xc0, 0x82, 0x01, 0xdb, 0x00, 0x00, 0x83, 0xa0, 0xc0, /* bad escape */
        0xc0, 0x40, 0x01, 0x02, 0xc2, 0x42, 0xc0,             /* unknown type */
        0xc0, 0x82, 0x01, 0x00, 0x00, 0x83, 0xa0, 0xc0,       /* a TX_STATUS, board -> host */
        0xc0, 0x02, 0xc1, 0xb2, 0xc0,                         /* a good STATUS_REQUEST */
    };
    bridge_config c = base_config();
    boot(&c);
    CHECK(bridge_usb_input(&b, noise, sizeof noise, now) == sizeof noise, "input");
    bridge_poll(&b, now);
    expect_frame("STATUS version=1 max=222 freq=868100000 bw=125000 sf=7 cr=5 power=14 firmware=\"outpost-bridge 0.1.0\"");
    expect_no_frame();
    CHECK(b.n.checksum_errors == 2, "checksum %lu", (unsigned long)b.n.checksum_errors);
    CHECK(b.n.framing_errors == 2, "framing %lu", (unsigned long)b.n.framing_errors);
    CHECK(b.n.unknown_types == 2, "unknown %lu", (unsigned long)b.n.unknown_types);
    CHECK(b.n.frames_in == 1, "frames in %lu", (unsigned long)b.n.frames_in);
    CHECK(rad.nsent == 0, "sent on air");
}

/* The decoder's layout rules beyond the golden frames (§4). */
static void test_decode_rules(void)
{
    static const struct {
        const char *name;
        uint8_t body[40];
        size_t n;
        int want;
    } cases[] = {
        {"STATUS version 2 with a field appended", {0x83, 2, 0, 222, 0, 0, 0, 1, 0, 0, 0, 1, 7, 5, 14, 1, 'x', 0xAA}, 18, 0},
        {"STATUS version 1 with a byte after the string", {0x83, 1, 0, 222, 0, 0, 0, 1, 0, 0, 0, 1, 7, 5, 14, 1, 'x', 0xAA}, 18, BRIDGE_E_MALFORMED},
        {"STATUS version 0", {0x83, 0, 0, 222, 0, 0, 0, 1, 0, 0, 0, 1, 7, 5, 14, 0}, 16, BRIDGE_E_MALFORMED},
        {"STATUS string longer than the frame", {0x83, 1, 0, 222, 0, 0, 0, 1, 0, 0, 0, 1, 7, 5, 14, 2, 'x'}, 17, BRIDGE_E_MALFORMED},
        {"STATUS string not printable", {0x83, 1, 0, 222, 0, 0, 0, 1, 0, 0, 0, 1, 7, 5, 14, 1, 0x7F}, 17, BRIDGE_E_MALFORMED},
        {"STATUS cut short", {0x83, 1, 0, 222, 0, 0, 0, 1, 0, 0, 0, 1, 7, 5, 14}, 15, BRIDGE_E_MALFORMED},
        {"TX_STATUS failed without a reason", {0x82, 1, 1, 0}, 4, BRIDGE_E_MALFORMED},
        {"TX_STATUS sent with a reason", {0x82, 1, 0, 2}, 4, BRIDGE_E_MALFORMED},
        {"TX_STATUS with an unknown reason", {0x82, 1, 1, 0x42}, 4, 0},
        {"TX_STATUS one byte long", {0x82, 1, 0, 0, 0}, 5, BRIDGE_E_MALFORMED},
        {"STATUS_REQUEST with a payload", {0x02, 0}, 2, BRIDGE_E_MALFORMED},
        {"TX_DATA without a frame id", {0x01}, 1, BRIDGE_E_MALFORMED},
        {"TX_DATA encapsulation MsgType not FE", {0x01, 1, 5, 0xFD, 0, 1, 2, 2, 0x16}, 9, BRIDGE_E_MALFORMED},
        {"TX_DATA without a message", {0x01, 1, 5, 0xFE, 0, 1, 2}, 7, BRIDGE_E_MALFORMED},
        {"TX_DATA node id of 0 bytes", {0x01, 1, 3, 0xFE, 0, 2, 0x16}, 7, BRIDGE_E_MALFORMED},
        {"TX_DATA node id of 8 bytes, radius 3", {0x01, 1, 11, 0xFE, 3, 1, 2, 3, 4, 5, 6, 7, 8, 2, 0x16}, 15, 0},
        {"RX_DATA without SNR", {0x81, 0xFF, 0xA9}, 3, BRIDGE_E_MALFORMED},
        {"RX_DATA with a one-byte message", {0x81, 0xFF, 0xA9, 0x19, 4, 0xFE, 0, 7, 0x42}, 9, 0},
        {"type 0x80", {0x80}, 1, BRIDGE_E_UNKNOWN_TYPE},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bridge_frame f;
        int got = bridge_frame_decode(cases[i].body, cases[i].n, &f);
        CHECK(got == cases[i].want, "%s: %d, want %d", cases[i].name, got, cases[i].want);
        if (got == 0 && f.type != BRIDGE_STATUS) { /* what decodes encodes back to the same body */
            uint8_t wire[64], buf[64];
            bridge_decoder d;
            size_t n = bridge_frame_encode(&f, wire, sizeof wire), k;
            int r = 0;
            bridge_decoder_init(&d, buf, sizeof buf);
            for (k = 0; k < n && r == 0; k++)
                r = bridge_decoder_put(&d, wire[k]);
            CHECK(r == (int)cases[i].n && memcmp(buf, cases[i].body, cases[i].n) == 0, "%s: re-encoding differs", cases[i].name);
        }
    }
}

static void test_config(void)
{
    bridge_config c = base_config();
    bridge x;
    c.node_id_len = 0;
    CHECK(bridge_init(&x, &c, 0) == -1, "node id length 0");
    c.node_id_len = 9;
    CHECK(bridge_init(&x, &c, 0) == -1, "node id length 9");
    c = base_config();
    c.firmware = "bad\n";
    CHECK(bridge_init(&x, &c, 0) == -1, "firmware with a newline");
    c = base_config();
    c.radio.send = NULL;
    CHECK(bridge_init(&x, &c, 0) == -1, "no radio");
    c = base_config();
    c.max_datagram = 0;
    c.firmware = NULL;
    CHECK(bridge_init(&x, &c, 0) == 0 && x.cfg.max_datagram == BRIDGE_MAX_DATAGRAM, "defaults");
}

int main(void)
{
    test_config();
    test_decode_rules();
    test_status();
    test_tx();
    test_tx_late_done();
    test_tx_refused();
    test_tx_queue_overflow();
    test_usb_backpressure();
    test_many_nodes();
    test_rx_queue_overflow();
    test_duty_cycle();
    test_gap_and_busy();
    test_bad_input();
    if (failures) {
        fprintf(stderr, "test_core: %d failures\n", failures);
        return 1;
    }
    printf("test_core: all pass\n");
    return 0;
}
