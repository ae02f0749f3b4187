// xbee_node: an MQTT-SN sensor node on an XBee (Zigbee or DigiMesh) in API
// mode 2, talking to an Outpost gateway whose coordinator XBee is a
// [[serial]] link with framing = "xbee".
//
// The node's XBee carries the MQTT-SN datagrams: each one goes to the
// coordinator in a TRANSMIT_REQUEST (0x10) frame, and each RECEIVE_PACKET
// (0x90) frame brings one from the gateway. The gateway knows the node by
// its XBee's 64-bit address. Everything MQTT-SN is firmware/mqttsn.
//
// Every PERIOD_S the node wakes, publishes a reading at QoS 1 on
// "sensors/<id>/temp", picks up what the gateway kept for it while it slept
// ("cmd/<id>/led", MQTT-SN 1.2 §6.14), and goes back to sleep.
//
// Build: copy firmware/mqttsn/mqttsn.[ch] and mqttsn_client.[ch] into
// xbee_node/src/, set the XBee to AP=2 (API mode with escaping) and 9600
// baud on Serial1, upload. `make -C firmware sketches` syntax-checks this
// file against stub Arduino headers; it is not built for a board here.
#include <Arduino.h>

#include "src/mqttsn_client.h"

#define CLIENT_ID "xbee-node-1"
#define PERIOD_S 60
#define XBEE Serial1

// ---- XBee API mode 2 (escaped) framing -----------------------------------
// 0x7E | length (2) | frame data | checksum; 0x7E 0x7D 0x11 0x13 after the
// start delimiter go as 0x7D, byte ^ 0x20.

static void xbeePut(uint8_t b, uint8_t *sum)
{
    if (sum)
        *sum += b;
    if (b == 0x7E || b == 0x7D || b == 0x11 || b == 0x13) {
        XBEE.write((uint8_t)0x7D);
        b ^= 0x20;
    }
    XBEE.write(b);
}

// transport.send: one TRANSMIT_REQUEST to the coordinator (64-bit address 0,
// 16-bit 0xFFFE); broadcasts (SEARCHGW) go to 0x000000000000FFFF.
static int xbeeSend(void *, const mqttsn_addr_t *to, const uint8_t *buf, size_t len)
{
    static const uint8_t coordinator[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t broadcast[8] = {0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    const uint8_t *dst = to ? coordinator : broadcast;
    uint16_t n = (uint16_t)(14 + len);
    uint8_t sum = 0;
    XBEE.write((uint8_t)0x7E);
    xbeePut((uint8_t)(n >> 8), NULL);
    xbeePut((uint8_t)n, NULL);
    xbeePut(0x10, &sum); // TRANSMIT_REQUEST
    xbeePut(0x00, &sum); // frame id 0: no TRANSMIT_STATUS wanted
    for (int i = 0; i < 8; i++)
        xbeePut(dst[i], &sum);
    xbeePut(0xFF, &sum); // 16-bit address unknown
    xbeePut(0xFE, &sum);
    xbeePut(0x00, &sum); // radius: the maximum
    xbeePut(0x00, &sum); // options
    for (size_t i = 0; i < len; i++)
        xbeePut(buf[i], &sum);
    xbeePut((uint8_t)(0xFF - sum), NULL);
    return 0;
}

// transport.recv: one RECEIVE_PACKET's data, when a whole frame has arrived.
static int xbeeRecv(void *, mqttsn_addr_t *from, uint8_t *buf, size_t cap)
{
    static uint8_t frame[128];
    static uint16_t want, have;
    static bool inFrame, escaped;
    while (XBEE.available() > 0) {
        uint8_t b = (uint8_t)XBEE.read();
        if (b == 0x7E) { // always starts a frame in API mode 2
            inFrame = true;
            escaped = false;
            have = 0;
            want = 0;
            continue;
        }
        if (!inFrame)
            continue;
        if (b == 0x7D) {
            escaped = true;
            continue;
        }
        if (escaped) {
            b ^= 0x20;
            escaped = false;
        }
        if (have < 2) { // the length
            want = (uint16_t)((unsigned)want << 8 | b); // unsigned: no 16-bit int overflow (AVR)
            if (++have == 2 && (want == 0 || (size_t)want + 1 > sizeof frame))
                inFrame = false;
            continue;
        }
        frame[have++ - 2] = b;
        if ((unsigned)(have - 2) < (unsigned)want + 1u)
            continue;
        inFrame = false;
        uint8_t sum = 0;
        for (uint16_t i = 0; i <= want; i++)
            sum += frame[i];
        // RECEIVE_PACKET: type, source 64 (8), source 16 (2), options, data
        if (sum != 0xFF || frame[0] != 0x90 || want < 12 || want - 12u > cap)
            continue;
        from->len = 0; // the coordinator: the only peer of this node
        memcpy(buf, frame + 12, want - 12u);
        return (int)(want - 12u);
    }
    return 0;
}

// ---- the application ------------------------------------------------------

static mqttsn_client_t client;
static const mqttsn_transport_t transport = {xbeeSend, xbeeRecv, NULL};
static uint8_t tx[96], rx[96];
static uint16_t tempTopic, ledTopic;
static int lastEvent;
static mqttsn_event_info_t lastInfo;

static void onEvent(void *, int ev, const mqttsn_event_info_t *info)
{
    lastEvent = ev;
    lastInfo = *info;
}

static uint8_t onPublish(void *, const mqttsn_msg_t *p)
{
    if (p->topic_id != ledTopic)
        return MQTTSN_RC_INVALID_TOPIC_ID; // MQTT-SN 1.2 §6.10
    digitalWrite(LED_BUILTIN, p->payload_len == 2 && p->payload[0] == 'o' && p->payload[1] == 'n');
    return MQTTSN_RC_ACCEPTED;
}

static mqttsn_config_t config; // filled in setup()

// await runs the client until ev arrives; false on a failure or after 30 s.
static bool await(int ev)
{
    uint32_t start = millis();
    lastEvent = 0;
    while (lastEvent != ev) {
        mqttsn_client_poll(&client, millis());
        if (lastEvent == MQTTSN_EV_TIMEOUT || lastEvent == MQTTSN_EV_DISCONNECTED || millis() - start > 30000)
            return false;
    }
    return lastInfo.return_code == MQTTSN_RC_ACCEPTED;
}

// topics registers the reading's topic and subscribes to the commands.
static bool topics()
{
    if (mqttsn_register(&client, "sensors/" CLIENT_ID "/temp", millis()) != MQTTSN_OK ||
        !await(MQTTSN_EV_REGISTERED))
        return false;
    tempTopic = lastInfo.topic_id;
    if (mqttsn_subscribe(&client, MQTTSN_TOPIC_NORMAL, 0, "cmd/" CLIENT_ID "/led", 1, millis()) != MQTTSN_OK ||
        !await(MQTTSN_EV_SUBSCRIBED))
        return false;
    ledTopic = lastInfo.topic_id;
    return true;
}

static bool session()
{
    if (mqttsn_connect(&client, millis()) != MQTTSN_OK || !await(MQTTSN_EV_CONNECTED) || !topics())
        return false;
    // From now on CONNECT keeps the session (§6.2): coming back from sleep
    // with CONNECT, the node finds its topic ids and subscription in place.
    config.clean_session = 0;
    return true;
}

void setup()
{
    pinMode(LED_BUILTIN, OUTPUT);
    XBEE.begin(9600);
    config.client_id = CLIENT_ID;
    config.keep_alive_s = 2 * PERIOD_S; // also the longest time between two wakes
    config.clean_session = 1;
    config.t_retry_ms = 10000; // Tretry and Nretry, MQTT-SN 1.2 §7.2
    config.n_retry = 4;
    config.on_event = onEvent;
    config.on_publish = onPublish;
    mqttsn_client_init(&client, &config, &transport, tx, sizeof tx, rx, sizeof rx);
    static const mqttsn_addr_t coordinator = {0, {0}};
    mqttsn_client_set_gateway(&client, &coordinator, 0);
    while (!session())
        delay(5000);
}

void loop()
{
    char reading[8];
    // a TMP36: 10 mV per 0.1 degree, 500 mV at 0; long: 1023 * 5000 overflows a 16-bit int (AVR)
    int tenths = (int)((long)analogRead(A0) * 5000L / 1023L) - 500;
    snprintf(reading, sizeof reading, "%d.%d", tenths / 10, abs(tenths % 10));

    if (client.state == MQTTSN_STATE_ASLEEP) {
        // §6.14: back to active with CONNECT (the gateway kept the topics)
        if (mqttsn_connect(&client, millis()) != MQTTSN_OK || !await(MQTTSN_EV_CONNECTED)) {
            session();
            return;
        }
    }
    if (mqttsn_publish(&client, MQTTSN_TOPIC_NORMAL, tempTopic, 1, 0, (const uint8_t *)reading,
                       (uint16_t)strlen(reading), millis()) == MQTTSN_OK &&
        !await(MQTTSN_EV_PUBLISHED) && lastEvent == MQTTSN_EV_PUBLISHED &&
        lastInfo.return_code == MQTTSN_RC_INVALID_TOPIC_ID)
        topics(); // §6.6: the gateway no longer knows the topic id: register again
    if (client.state == MQTTSN_STATE_DISCONNECTED) { // the gateway was lost or ended the connection
        session();
        return;
    }
    // Sleep: the gateway buffers cmd/<id>/led until the next wake.
    if (mqttsn_sleep(&client, 2 * PERIOD_S, millis()) == MQTTSN_OK && await(MQTTSN_EV_ASLEEP)) {
        delay(PERIOD_S * 1000UL); // a real node powers the radio down (XBee SM pin) and sleeps here
        if (mqttsn_wake(&client, millis()) == MQTTSN_OK)
            await(MQTTSN_EV_WAKE_DONE); // buffered messages arrive through onPublish
    }
}
