// Outpost LoRa bridge board: the Arduino glue around firmware/bridge/core.
//
// An ESP32 or RP2040 board with an SX127x (or SX126x) LoRa radio, attached to
// the gateway by USB CDC serial, speaking the bridge framing of
// serialbus/BRIDGE-PROTOCOL.md. Everything protocol-related is in the core;
// this file only moves bytes between the core, the USB serial port and
// RadioLib. It is not built for a board in CI (no Arduino toolchain there),
// only syntax-checked; the core it wraps is built and tested on the host
// (make -C firmware/bridge).
//
// Build: copy ../../core/bridge.c, bridge.h, bridge_frame.c, bridge_frame.h
// into outpost_bridge/src/, install RadioLib (6.x), pick the board and the
// pins below, upload. `make -C firmware/bridge bridge-sketch` syntax-checks
// this file against the stub headers of firmware/examples/arduino/stubs.
//
// Air format (both ends, see ../../README.md): one LoRa packet per datagram,
//   [0x4F up | 0x4E down] [node id, NODE_ID_LEN bytes] [MQTT-SN message]
// A node sends "up" with its own id, and keeps "down" packets that carry its
// id or the broadcast id (all 0xFF).
#include <Arduino.h>
#include <RadioLib.h>
#include <string.h>

#include "src/bridge.h"

// ---- board settings ----
#define NODE_ID_LEN 2
#define AIR_UP 0x4F
#define AIR_DOWN 0x4E
#define FREQ_MHZ 868.1
#define BW_KHZ 125.0
#define SF 7
#define CR 5
#define POWER_DBM 14
#define DUTY_PPM 10000 // 1% (EU 868 MHz g1 sub-band)

// TTGO LoRa32 (ESP32 + SX1276): NSS 18, DIO0 26, RST 14, DIO1 33.
// For an SX1262 (e.g. Heltec V3, RP2040 + Waveshare SX1262):
//   SX1262 radio = new Module(NSS, DIO1, RST, BUSY); and setDio1Action below.
SX1276 radio = new Module(18, 26, 14, 33);

static bridge board;
static volatile bool radioIrq = false;
static bool transmitting = false;
static uint16_t txId; // the core's id of the transmission on air
static uint8_t usbIn[256];
static size_t usbLen = 0, usbOff = 0;

#if defined(ESP32)
IRAM_ATTR
#endif
static void onRadioIrq(void) { radioIrq = true; }

// bridge_radio.send: the core hands one datagram for one node (or all).
static uint8_t radioSend(void *, const uint8_t *addr, uint8_t addrLen, const uint8_t *data, uint16_t len)
{
    static uint8_t pkt[255];
    if (1u + addrLen + len > sizeof pkt)
        return BRIDGE_REASON_TOO_LONG;
    pkt[0] = AIR_DOWN;
    memcpy(pkt + 1, addr, addrLen);
    memcpy(pkt + 1 + addrLen, data, len);
    if (radio.startTransmit(pkt, 1u + addrLen + len) != RADIOLIB_ERR_NONE)
        return BRIDGE_REASON_RADIO_ERROR;
    transmitting = true;
    txId = bridge_radio_tx_id(&board); // so that a late interrupt is not taken for the next packet's
    return BRIDGE_REASON_NONE; // bridge_radio_tx_done_id follows the tx-done interrupt
}

// Time on air of one packet (Semtech AN1200.13): explicit header, CRC on,
// 8 preamble symbols, low data rate optimisation from 16 ms symbols on.
static uint32_t radioAirtime(void *, uint16_t len)
{
    const float tsym = (float)(1UL << SF) / BW_KHZ; // ms
    const int de = tsym > 16.0f ? 1 : 0;
    const int num = 8 * (1 + NODE_ID_LEN + len) - 4 * SF + 28 + 16;
    const int den = 4 * (SF - 2 * de);
    const int payload = 8 + (num > 0 ? (num + den - 1) / den * CR : 0);
    return (uint32_t)((8 + 4.25f + payload) * tsym + 0.999f);
}

// bridge_usb.write: never block; the core keeps what does not fit.
static size_t usbWrite(void *, const uint8_t *p, size_t n)
{
    size_t room = (size_t)Serial.availableForWrite();
    if (n > room)
        n = room;
    return n ? Serial.write(p, n) : 0;
}

void setup()
{
    Serial.begin(115200); // USB CDC: the speed is ignored
    if (radio.begin(FREQ_MHZ, BW_KHZ, SF, CR, RADIOLIB_SX127X_SYNC_WORD, POWER_DBM) != RADIOLIB_ERR_NONE) {
        for (;;)
            delay(1000); // no radio: the host sees no STATUS and says so
    }
    radio.setDio0Action(onRadioIrq, RISING); // SX126x: radio.setDio1Action(onRadioIrq);

    bridge_config cfg = {};
    cfg.radio.send = radioSend;
    cfg.radio.airtime_ms = radioAirtime;
    cfg.usb.write = usbWrite;
    cfg.node_id_len = NODE_ID_LEN;
    cfg.max_datagram = 255 - 1 - NODE_ID_LEN;
    cfg.frequency_hz = (uint32_t)(FREQ_MHZ * 1e6);
    cfg.bandwidth_hz = (uint32_t)(BW_KHZ * 1e3);
    cfg.spreading_factor = SF;
    cfg.coding_rate = CR;
    cfg.tx_power_dbm = POWER_DBM;
    cfg.firmware = "outpost-bridge 0.1.0 sx1276";
    cfg.duty_cycle_ppm = DUTY_PPM;
    cfg.duty_hold_ms = 10000;
    cfg.min_gap_ms = 10;
    bridge_init(&board, &cfg, millis());
    radio.startReceive();
}

void loop()
{
    uint32_t now = millis();

    // USB -> core, keeping what the core cannot take yet.
    if (usbOff == usbLen && Serial.available() > 0) {
        size_t n = (size_t)Serial.available();
        usbLen = Serial.readBytes(usbIn, n < sizeof usbIn ? n : sizeof usbIn);
        usbOff = 0;
    }
    if (usbOff < usbLen)
        usbOff += bridge_usb_input(&board, usbIn + usbOff, usbLen - usbOff, now);

    // Radio events: the interrupt only sets a flag.
    if (radioIrq) {
        radioIrq = false;
        if (transmitting) {
            transmitting = false;
            bridge_radio_tx_done_id(&board, txId, BRIDGE_REASON_NONE, now);
        } else {
            static uint8_t pkt[255];
            size_t len = radio.getPacketLength();
            if (len <= sizeof pkt && radio.readData(pkt, len) == RADIOLIB_ERR_NONE && len > 1u + NODE_ID_LEN &&
                pkt[0] == AIR_UP) {
                float snr = radio.getSNR() * 4.0f; // quarter dB
                snr = snr < -127.0f ? -127.0f : snr > 127.0f ? 127.0f : snr;
                bridge_radio_received(&board, pkt + 1, NODE_ID_LEN, (int16_t)radio.getRSSI(), (int8_t)snr,
                                      pkt + 1 + NODE_ID_LEN, (uint16_t)(len - 1 - NODE_ID_LEN));
            }
        }
        radio.startReceive();
    }

    bridge_poll(&board, now); // starts queued transmissions, writes owed frames
}
