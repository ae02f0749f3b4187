/* Frames as text, in the notation of serialbus/testdata/bridge/README.md. */
#include "frame_text.h"

#include <stdio.h>

void hex(char *dst, const unsigned char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        sprintf(dst + 2 * i, "%02x", p[i]);
    dst[2 * n] = '\0';
}

/* Formats a decoded frame as the fixtures' README writes it. */
void format_frame(char *out, size_t cap, const bridge_frame *f)
{
    static char node[2 * BRIDGE_NODE_MAX + 1], data[2 * 1024 + 1];
    switch (f->type) {
    case BRIDGE_TX_DATA:
    case BRIDGE_RX_DATA:
        hex(node, f->node, f->node_len);
        hex(data, f->data, f->data_len > 1024 ? 1024 : f->data_len);
        if (f->type == BRIDGE_TX_DATA)
            snprintf(out, cap, "TX_DATA id=%u radius=%u node=%s data=%s", f->frame_id, f->radius, node, data);
        else
            snprintf(out, cap, "RX_DATA rssi=%d snr=%d radius=%u node=%s data=%s", f->rssi, f->snr, f->radius, node,
                     data);
        break;
    case BRIDGE_STATUS_REQUEST:
        snprintf(out, cap, "STATUS_REQUEST");
        break;
    case BRIDGE_TX_STATUS:
        snprintf(out, cap, "TX_STATUS id=%u result=%s reason=%u", f->frame_id, f->failed ? "failed" : "sent",
                 f->reason);
        break;
    case BRIDGE_STATUS: {
        char fw[2 * 255 + 3];
        size_t i, j = 0;
        fw[j++] = '"';
        for (i = 0; i < f->info.firmware_len; i++) {
            char c = f->info.firmware[i];
            if (c == '"' || c == '\\')
                fw[j++] = '\\';
            fw[j++] = c;
        }
        fw[j++] = '"';
        fw[j] = '\0';
        snprintf(out, cap, "STATUS version=%u max=%u freq=%lu bw=%lu sf=%u cr=%u power=%d firmware=%s",
                 f->info.version, f->info.max_datagram, (unsigned long)f->info.frequency_hz,
                 (unsigned long)f->info.bandwidth_hz, f->info.spreading_factor, f->info.coding_rate,
                 f->info.tx_power_dbm, fw);
        break;
    }
    default:
        snprintf(out, cap, "type 0x%02x", f->type);
    }
}

