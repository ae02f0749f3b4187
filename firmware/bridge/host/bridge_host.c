/*
 * bridge-host: the bridge board's core on Linux, between a "USB" line to
 * the gateway (bridge framing) and a simulated air on which every node is a
 * tty of its own carrying the serialbus "raw" framing (bare MQTT-SN packets
 * back to back, split by their Length field), so that a node program that
 * speaks MQTT-SN on a serial port talks to it unchanged.
 *
 *   bridge-host --usb DEV --node ID=DEV[,rssi=DBM][,snr=QDB] ... [options]
 *
 * DEV is a tty path (opened in raw mode), fd:N (a descriptor the parent
 * passed, e.g. a pty master), or "pty" (a new pty pair; its slave path is
 * printed on stdout as "usb=PATH" or "node ID=PATH"). ID is the node's
 * radio address in hex (0x0A, 0a0b, 26011bd4): every node id has the same
 * length, 1 to 8 bytes. See firmware/bridge/README.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"

#define MAX_NODES 64
#define IDLE_GAP_MS 50u /* a silence that ends a raw packet cut short */

typedef struct raw_decoder {
    uint8_t buf[BRIDGE_MAX_DATAGRAM];
    size_t want, len;
    uint8_t hdr[2];
    int state; /* 0 Length, 1 and 2 3-octet Length, 3 body */
} raw_decoder;

typedef struct node {
    uint8_t id[BRIDGE_NODE_MAX];
    char name[2 * BRIDGE_NODE_MAX + 1];
    int fd;
    int16_t rssi;
    int8_t snr;
    raw_decoder dec;
    uint32_t last_byte;
    uint32_t down_until; /* its peer closed the tty: not polled until then */
    int down;
    unsigned long rx, tx, tx_lost, bad;
} node;

static node nodes[MAX_NODES];
static int nnodes;
static int usb_fd = -1;
static uint8_t id_len;
static int verbose;
static bridge board;
static volatile sig_atomic_t stop, dump;
static int usb_down;          /* the gateway closed the port: a pty master reads and writes EIO */
static uint32_t usb_down_until; /* look again then */

/* tx done is reported after the simulated time on air */
static int tx_pending;
static uint32_t tx_done_at;
static uint16_t tx_pending_id; /* the core's id of the transmission on air */
static uint32_t bit_rate;

static void logf_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bridge-host: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static void hexs(char *dst, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        sprintf(dst + 2 * i, "%02x", p[i]);
    dst[2 * n] = '\0';
}

/* ---- ttys ---- */

static int make_raw(int fd)
{
    struct termios t;
    if (!isatty(fd))
        return 0;
    if (tcgetattr(fd, &t) != 0)
        return -1;
    cfmakeraw(&t);
    cfsetispeed(&t, B115200);
    cfsetospeed(&t, B115200);
    return tcsetattr(fd, TCSANOW, &t);
}

/* Opens DEV as the usage says; label names it on stdout for "pty". */
static int open_dev(const char *dev, const char *label)
{
    int fd;
    if (strncmp(dev, "fd:", 3) == 0) {
        char *end;
        long n = strtol(dev + 3, &end, 10);
        if (*end != '\0' || n < 0 || fcntl((int)n, F_GETFD) < 0) {
            logf_("%s: not an open descriptor", dev);
            return -1;
        }
        fd = (int)n;
    } else if (strcmp(dev, "pty") == 0) {
        int slave;
        char *path;
        fd = posix_openpt(O_RDWR | O_NOCTTY);
        if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0 || (path = ptsname(fd)) == NULL) {
            logf_("new pty: %s", strerror(errno));
            return -1;
        }
        /* Keep a slave descriptor open: without one the master reads EIO
         * until the peer opens the slave. */
        slave = open(path, O_RDWR | O_NOCTTY);
        if (slave < 0 || make_raw(slave) != 0) {
            logf_("%s: %s", path, strerror(errno));
            return -1;
        }
        printf("%s=%s\n", label, path);
        fflush(stdout);
    } else {
        fd = open(dev, O_RDWR | O_NOCTTY);
        if (fd < 0 || make_raw(fd) != 0) {
            logf_("%s: %s", dev, strerror(errno));
            return -1;
        }
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        logf_("%s: %s", dev, strerror(errno));
        return -1;
    }
    return fd;
}

/* ---- the core's USB line ---- */

static size_t usb_write(void *ctx, const uint8_t *p, size_t n)
{
    ssize_t w;
    (void)ctx;
    w = write(usb_fd, p, n);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR && !usb_down) {
            usb_down = 1; /* EIO: the gateway closed the port; the frame waits for it */
            usb_down_until = now_ms() + 100;
        }
        return 0; /* EAGAIN: the gateway does not read now */
    }
    return (size_t)w;
}

/* ---- the simulated air ---- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0)
            return -1; /* a node that does not read loses the packet, as on air */
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The raw framing needs the packet's own Length field to give its length. */
static int raw_ok(const uint8_t *p, uint16_t n)
{
    if (n >= 4 && p[0] == 1)
        return ((size_t)p[1] << 8 | p[2]) == n;
    return n >= 2 && p[0] == n;
}

static uint8_t radio_send(void *ctx, const uint8_t *addr, uint8_t addr_len, const uint8_t *data, uint16_t len)
{
    int i, bcast = 1, hit = 0;
    char a[2 * BRIDGE_NODE_MAX + 1];
    (void)ctx;
    hexs(a, addr, addr_len);
    if (!raw_ok(data, len)) {
        logf_("to %s: %u bytes whose Length field the raw air framing cannot carry", a, (unsigned)len);
        return BRIDGE_REASON_BAD_FRAME;
    }
    for (i = 0; i < addr_len; i++)
        if (addr[i] != 0xFF)
            bcast = 0;
    for (i = 0; i < nnodes; i++) {
        if (!bcast && memcmp(nodes[i].id, addr, addr_len) != 0)
            continue;
        hit = 1;
        if (write_all(nodes[i].fd, data, len) != 0)
            nodes[i].tx_lost++;
        else
            nodes[i].tx++;
    }
    if (verbose)
        logf_("air: %u bytes to %s%s", (unsigned)len, bcast ? "every node" : a, hit ? "" : " (no such node)");
    tx_pending = 1;
    tx_pending_id = bridge_radio_tx_id(&board);
    tx_done_at = now_ms() + (bit_rate ? (uint32_t)(((uint64_t)len * 8000u + bit_rate - 1) / bit_rate) : 0u);
    return BRIDGE_REASON_NONE;
}

/* Longest raw packet a node may send (a variable: it may be below 255). */
static size_t raw_max = BRIDGE_MAX_DATAGRAM;

static void raw_reset(raw_decoder *d) { d->state = 0; }

/* One byte of a node's raw stream (serialbus/raw.go's rules); returns a packet length or 0. */
static size_t raw_put(node *nd, uint8_t b)
{
    raw_decoder *d = &nd->dec;
    switch (d->state) {
    case 0:
        if (b == 0 || (size_t)b > raw_max) {
            nd->bad++;
            return 0;
        }
        if (b == 1) {
            d->state = 1;
            return 0;
        }
        d->want = b;
        d->buf[0] = b;
        d->len = 1;
        d->state = 3;
        return 0;
    case 1:
        d->hdr[0] = b;
        d->state = 2;
        return 0;
    case 2:
        d->hdr[1] = b;
        d->want = (size_t)d->hdr[0] << 8 | d->hdr[1];
        if (d->want < 4 || d->want > raw_max) {
            size_t r;
            nd->bad++;
            d->state = 0; /* the two octets are read again as Lengths */
            r = raw_put(nd, d->hdr[0]);
            return r ? r : raw_put(nd, d->hdr[1]);
        }
        d->buf[0] = 1;
        d->buf[1] = d->hdr[0];
        d->buf[2] = d->hdr[1];
        d->len = 3;
        d->state = 3;
        return 0;
    default:
        d->buf[d->len++] = b;
        if (d->len == d->want) {
            d->state = 0;
            return d->len;
        }
        return 0;
    }
}

static void read_node(node *nd, uint32_t now)
{
    uint8_t buf[512];
    ssize_t n = read(nd->fd, buf, sizeof buf);
    ssize_t i;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        nd->down = 1; /* the node's side is closed (a pty master reads EIO) */
        nd->down_until = now + 100;
        raw_reset(&nd->dec); /* a packet cut short by the hang-up is not continued by the next opener */
        return;
    }
    if (n < 0)
        return;
    if (nd->dec.state != 0 && now - nd->last_byte > IDLE_GAP_MS)
        raw_reset(&nd->dec);
    nd->last_byte = now;
    for (i = 0; i < n; i++) {
        size_t len = raw_put(nd, buf[i]);
        if (len == 0)
            continue;
        nd->rx++;
        if (bridge_radio_received(&board, nd->id, id_len, nd->rssi, nd->snr, nd->dec.buf, (uint16_t)len) != 0)
            logf_("node %s: packet dropped (receive queue full)", nd->name);
        else if (verbose)
            logf_("air: %u bytes from %s", (unsigned)len, nd->name);
        /* On air, packets come one at a time, a time on air apart; here a
         * burst from many ttys comes at once: pass each on to USB now. */
        bridge_poll(&board, now);
    }
}

/* ---- command line ---- */

static int parse_id(const char *s, size_t n, uint8_t *id)
{
    size_t i, k = 0;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        n -= 2;
    }
    if (n == 0 || n % 2 != 0 || n / 2 > BRIDGE_NODE_MAX)
        return -1;
    for (i = 0; i < n; i += 2) {
        char h[3] = {s[i], s[i + 1], 0};
        char *end;
        unsigned long v = strtoul(h, &end, 16);
        if (*end != '\0' || h[0] == '-' || h[0] == '+' || h[0] == ' ')
            return -1;
        id[k++] = (uint8_t)v;
    }
    return (int)k;
}

/* ID=DEV[,rssi=N][,snr=N] */
static int add_node(char *arg)
{
    node *nd;
    char *eq = strchr(arg, '='), *opt;
    int len;
    if (nnodes == MAX_NODES || eq == NULL)
        return -1;
    nd = &nodes[nnodes];
    len = parse_id(arg, (size_t)(eq - arg), nd->id);
    if (len < 0 || (id_len != 0 && len != id_len)) {
        logf_("node id %.*s: want 1 to 8 bytes of hex, the same length for every node", (int)(eq - arg), arg);
        return -1;
    }
    id_len = (uint8_t)len;
    hexs(nd->name, nd->id, (size_t)len);
    nd->rssi = -70;
    nd->snr = 28; /* 7 dB */
    for (opt = strchr(eq + 1, ','); opt != NULL; opt = strchr(opt + 1, ',')) {
        *opt = '\0';
        if (strncmp(opt + 1, "rssi=", 5) == 0)
            nd->rssi = (int16_t)atoi(opt + 6);
        else if (strncmp(opt + 1, "snr=", 4) == 0)
            nd->snr = (int8_t)atoi(opt + 5);
        else
            return -1;
        *opt = ',';
    }
    opt = strchr(eq + 1, ',');
    if (opt != NULL)
        *opt = '\0';
    {
        char label[64];
        snprintf(label, sizeof label, "node %s", nd->name);
        nd->fd = open_dev(eq + 1, label);
    }
    if (nd->fd < 0)
        return -1;
    nnodes++;
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bridge-host --usb DEV --node ID=DEV[,rssi=DBM][,snr=QUARTER_DB] ... [options]\n"
            "  DEV            a tty path, fd:N (an open descriptor), or pty (a new pty; its path goes to stdout)\n"
            "  ID             the node's radio address in hex, 1-8 bytes, e.g. 0x0A or 0a0b\n"
            "  --max-datagram N   largest MQTT-SN message on air (default %u)\n"
            "  --bit-rate N       simulated air bit rate: tx done after the time on air (default: at once)\n"
            "  --duty-cycle PPM   duty-cycle budget in parts per million of an hour (10000 = 1%%)\n"
            "  --min-gap MS       least silence between two transmissions\n"
            "  --firmware TEXT    firmware string in STATUS\n"
            "  -v                 log every packet\n"
            "SIGUSR1 prints the counters to stderr; SIGINT/SIGTERM print them and exit.\n",
            (unsigned)BRIDGE_MAX_DATAGRAM);
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        dump = 1;
    else
        stop = 1;
}

static void print_counters(void)
{
    const bridge_counters *c = bridge_get_counters(&board);
    int i;
    fprintf(stderr,
            "bridge-host: usb in %lu bytes %lu frames, out %lu bytes %lu frames; errors checksum %lu framing %lu "
            "unknown %lu; status requests %lu sent %lu; tx data %lu sent %lu failed %lu (queue full %lu, duty "
            "cycle %lu) broadcasts %lu queue high %lu airtime %lu ms; rx %lu dropped %lu queue high %lu\n",
            (unsigned long)c->usb_bytes_in, (unsigned long)c->frames_in, (unsigned long)c->usb_bytes_out,
            (unsigned long)c->frames_out, (unsigned long)c->checksum_errors, (unsigned long)c->framing_errors,
            (unsigned long)c->unknown_types, (unsigned long)c->status_requests, (unsigned long)c->status_sent,
            (unsigned long)c->tx_data, (unsigned long)c->tx_sent, (unsigned long)c->tx_failed,
            (unsigned long)c->tx_failed_by_reason[BRIDGE_REASON_QUEUE_FULL],
            (unsigned long)c->tx_failed_by_reason[BRIDGE_REASON_DUTY_CYCLE], (unsigned long)c->tx_broadcasts,
            (unsigned long)c->tx_queue_high, (unsigned long)c->airtime_ms, (unsigned long)c->rx_packets,
            (unsigned long)c->rx_dropped, (unsigned long)c->rx_queue_high);
    for (i = 0; i < nnodes; i++)
        fprintf(stderr, "bridge-host: node %s: %lu packets up, %lu down, %lu lost, %lu bad length octets\n",
                nodes[i].name, nodes[i].rx, nodes[i].tx, nodes[i].tx_lost, nodes[i].bad);
}

int main(int argc, char **argv)
{
    bridge_config cfg;
    const char *usb = NULL;
    uint8_t pending[4096];
    size_t npending = 0, off = 0;
    int i;
    struct sigaction sa;

    memset(&cfg, 0, sizeof cfg);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-v") == 0) {
            verbose = 1;
            continue;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--usb") == 0) {
            usb = v;
        } else if (strcmp(a, "--node") == 0) {
            if (add_node(argv[i]) != 0) {
                usage();
                return 2;
            }
        } else if (strcmp(a, "--max-datagram") == 0) {
            cfg.max_datagram = (uint16_t)atoi(v);
        } else if (strcmp(a, "--bit-rate") == 0) {
            bit_rate = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--duty-cycle") == 0) {
            cfg.duty_cycle_ppm = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--min-gap") == 0) {
            cfg.min_gap_ms = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--firmware") == 0) {
            cfg.firmware = v;
        } else {
            usage();
            return 2;
        }
    }
    if (usb == NULL || nnodes == 0) {
        usage();
        return 2;
    }
    usb_fd = open_dev(usb, "usb");
    if (usb_fd < 0)
        return 1;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    cfg.radio.send = radio_send;
    cfg.usb.write = usb_write;
    cfg.node_id_len = id_len;
    cfg.bit_rate = bit_rate;
    /* What a simulated EU 868 MHz LoRa board would report. */
    cfg.frequency_hz = 868100000u;
    cfg.bandwidth_hz = 125000u;
    cfg.spreading_factor = 7;
    cfg.coding_rate = 5;
    cfg.tx_power_dbm = 14;
    if (cfg.firmware == NULL)
        cfg.firmware = "outpost-bridge-host 0.1.0";
    if (bridge_init(&board, &cfg, now_ms()) != 0) {
        logf_("bad configuration");
        return 2;
    }
    logf_("up: usb %s, %d nodes with %u-byte ids", usb, nnodes, (unsigned)id_len);

    while (!stop) {
        struct pollfd pf[MAX_NODES + 1];
        uint32_t now = now_ms(), wait;
        int timeout, nfds = 0, r;

        if (tx_pending && (int32_t)(now - tx_done_at) >= 0) {
            tx_pending = 0;
            bridge_radio_tx_done_id(&board, tx_pending_id, BRIDGE_REASON_NONE, now);
        }
        /* USB bytes the core could not take yet go first. */
        if (off < npending) {
            off += bridge_usb_input(&board, pending + off, npending - off, now);
            if (off == npending)
                off = npending = 0;
        }
        wait = bridge_poll(&board, now);
        if (tx_pending)
            wait = wait < tx_done_at - now ? wait : tx_done_at - now;
        timeout = wait == BRIDGE_IDLE ? 1000 : (int)(wait > 1000 ? 1000 : wait);
        if (usb_down) {
            if ((int32_t)(now - usb_down_until) >= 0)
                usb_down = 0; /* try the port again */
            else
                timeout = 50; /* and do not spin on a frame the port cannot take */
        }

        pf[nfds].fd = (npending == 0 && !usb_down) ? usb_fd : -1;
        pf[nfds++].events = POLLIN;
        for (i = 0; i < nnodes; i++) {
            if (nodes[i].down && (int32_t)(now - nodes[i].down_until) >= 0)
                nodes[i].down = 0;
            if (nodes[i].down && timeout > 50)
                timeout = 50;
            pf[nfds].fd = nodes[i].down ? -1 : nodes[i].fd;
            pf[nfds++].events = POLLIN;
        }
        r = poll(pf, (nfds_t)nfds, timeout);
        if (dump) {
            dump = 0;
            print_counters();
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            logf_("poll: %s", strerror(errno));
            return 1;
        }
        now = now_ms();
        if (pf[0].fd >= 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(usb_fd, pending, sizeof pending);
            if (n > 0) {
                npending = (size_t)n;
                off = bridge_usb_input(&board, pending, npending, now);
                if (off == npending)
                    off = npending = 0;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                /* The gateway closed the port (a pty master reads EIO): wait for it to open it again. */
                usb_down = 1;
                usb_down_until = now + 100;
            }
        }
        for (i = 0; i < nnodes; i++) {
            if (pf[i + 1].revents & POLLIN) {
                read_node(&nodes[i], now);
            } else if (pf[i + 1].revents & (POLLHUP | POLLERR)) {
                nodes[i].down = 1; /* nobody holds the node's tty now */
                nodes[i].down_until = now + 100;
                raw_reset(&nodes[i].dec);
            }
        }
    }
    /* Flush what the gateway is still owed (TX_STATUS, RX_DATA) before
     * going, for at most a second: a gateway that does not read must not
     * keep the board from stopping. */
    {
        uint32_t until = now_ms() + 1000u;
        while (!usb_down && bridge_usb_pending(&board) && (int32_t)(now_ms() - until) < 0) {
            struct pollfd pf = {usb_fd, POLLOUT, 0};
            bridge_poll(&board, now_ms());
            if (bridge_usb_pending(&board))
                (void)poll(&pf, 1, 10);
        }
    }
    print_counters();
    return 0;
}
