// lora_node: an MQTT-SN sensor node on a LoRa radio (SX127x with RadioLib),
// reaching an Outpost gateway through the Outpost bridge board
// (firmware/bridge, a [[serial]] link with framing = "bridge").
//
// Air format, shared with the bridge board (firmware/bridge/README.md):
// one LoRa packet per datagram,
//   [0x4F up | 0x4E down] [node id, NODE_ID_LEN bytes] [MQTT-SN message]
// The node sends "up" with its own id and keeps the "down" packets that
// carry its id or the broadcast id (all 0xFF). The gateway knows the node by
// that id. Everything MQTT-SN is firmware/mqttsn.
//
// Every PERIOD_S the node publishes a reading at QoS 0 to the pre-defined
// topic id 5 (configure [mqttsn.predefined] 5 = "sensors/temp" in outpost),
// and stays connected with a long keep alive: LoRa airtime is dear, so there
// is no REGISTER and no acknowledged publish. Set QOS to -1 to publish
// without a connection at all (MQTT-SN 1.2 §6.8; needs allow_qos_minus1 on
// the serial link).
//
// Build: copy firmware/mqttsn/mqttsn.[ch] and mqttsn_client.[ch] into
// lora_node/src/, install RadioLib (6.x), set the pins and NODE_ID, upload.
// `make -C firmware sketches` syntax-checks this file against stub headers.
#include <Arduino.h>
#include <RadioLib.h>

#include "src/mqttsn_client.h"

#define NODE_ID_LEN 2
static const uint8_t NODE_ID[NODE_ID_LEN] = {0x0A, 0x0B};
#define CLIENT_ID "lora-0a0b"
#define PREDEFINED_TOPIC 5
#define QOS 0
#define PERIOD_S 300
#define AIR_UP 0x4F
#define AIR_DOWN 0x4E

SX1276 radio = new Module(18, 26, 14, 33); // TTGO LoRa32: NSS, DIO0, RST, DIO1
static volatile bool received = false;

#if defined(ESP32)
IRAM_ATTR
#endif
static void onDio0(void) { received = true; }

// transport.send: one LoRa packet, "up", with this node's id. Blocking is
// fine on a node: it has nothing else to do while its packet is on air.
static int loraSend(void *, const mqttsn_addr_t *, const uint8_t *buf, size_t len)
{
    uint8_t pkt[255];
    if (1 + NODE_ID_LEN + len > sizeof pkt)
        return -1;
    pkt[0] = AIR_UP;
    memcpy(pkt + 1, NODE_ID, NODE_ID_LEN);
    memcpy(pkt + 1 + NODE_ID_LEN, buf, len);
    int err = radio.transmit(pkt, 1 + NODE_ID_LEN + len);
    radio.startReceive();
    return err == RADIOLIB_ERR_NONE ? 0 : -1;
}

// transport.recv: a "down" packet for this node or for all.
static int loraRecv(void *, mqttsn_addr_t *from, uint8_t *buf, size_t cap)
{
    uint8_t pkt[255];
    if (!received)
        return 0;
    received = false;
    size_t len = radio.getPacketLength();
    int err = len <= sizeof pkt ? radio.readData(pkt, len) : RADIOLIB_ERR_PACKET_TOO_LONG;
    radio.startReceive();
    if (err != RADIOLIB_ERR_NONE || len <= 1 + NODE_ID_LEN || pkt[0] != AIR_DOWN)
        return 0;
    bool mine = memcmp(pkt + 1, NODE_ID, NODE_ID_LEN) == 0, all = true;
    for (int i = 0; i < NODE_ID_LEN; i++)
        all = all && pkt[1 + i] == 0xFF;
    if ((!mine && !all) || len - 1 - NODE_ID_LEN > cap)
        return 0;
    from->len = 0; // the bridge board: the only peer
    memcpy(buf, pkt + 1 + NODE_ID_LEN, len - 1 - NODE_ID_LEN);
    return (int)(len - 1 - NODE_ID_LEN);
}

static mqttsn_client_t client;
static const mqttsn_transport_t transport = {loraSend, loraRecv, NULL};
static uint8_t tx[64], rx[64];
static int lastEvent;

static void onEvent(void *, int ev, const mqttsn_event_info_t *) { lastEvent = ev; }

static mqttsn_config_t config; // filled in setup()
static uint32_t nextReading;

void setup()
{
    if (radio.begin(868.1, 125.0, 7, 5, RADIOLIB_SX127X_SYNC_WORD, 14) != RADIOLIB_ERR_NONE)
        for (;;)
            delay(1000);
    radio.setDio0Action(onDio0, RISING);
    radio.startReceive();
    config.client_id = CLIENT_ID;
    config.keep_alive_s = 3 * PERIOD_S;
    config.clean_session = 1;
    config.t_retry_ms = 15000; // retries are slow on LoRa: Tretry 15 s, Nretry 3 (MQTT-SN 1.2 §7.2)
    config.n_retry = 3;
    config.on_event = onEvent;
    mqttsn_client_init(&client, &config, &transport, tx, sizeof tx, rx, sizeof rx);
    static const mqttsn_addr_t board = {0, {0}};
    mqttsn_client_set_gateway(&client, &board, 0);
    nextReading = millis();
}

void loop()
{
    uint32_t now = millis();
    mqttsn_client_poll(&client, now); // keep alive, retransmissions, incoming datagrams

    if (QOS >= 0 && client.state == MQTTSN_STATE_DISCONNECTED && client.await == 0) {
        lastEvent = 0;
        mqttsn_connect(&client, now); // the CONNACK arrives through poll
        return;
    }
    if ((int32_t)(now - nextReading) < 0 || (QOS >= 0 && client.state != MQTTSN_STATE_ACTIVE))
        return;
    nextReading = now + PERIOD_S * 1000UL;
    char reading[8];
    int tenths = (int)((long)analogRead(A0) * 3300L / 4095L) - 500; // a TMP36 on a 12-bit ADC at 3.3 V; long: no 16-bit int overflow
    snprintf(reading, sizeof reading, "%d.%d", tenths / 10, abs(tenths % 10));
    mqttsn_publish(&client, MQTTSN_TOPIC_PREDEFINED, PREDEFINED_TOPIC, QOS, 0, (const uint8_t *)reading,
                   (uint16_t)strlen(reading), now);
}
