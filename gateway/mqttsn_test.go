package gateway

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// testConfig is Default with the MQTT-SN UDP transport on a free loopback
// port, so that tests running beside each other (and beside a gateway on the
// machine) do not fight over :1885.
func testConfig() *Config {
	c := Default()
	c.MQTTSN.UDP[0].Address = "127.0.0.1:0"
	return c
}

// snExchange sends m and returns the first answer of type want, from read
// (which returns one datagram, or fails the test).
func snExchange(t *testing.T, send func([]byte), read func() []byte, m packet.Message, want packet.MsgType) packet.Message {
	t.Helper()
	send(packet.Append(nil, m))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b := read()
		got, err := packet.Decode(b)
		if err != nil {
			t.Fatalf("decode % x: %v", b, err)
		}
		if got.Type() == want {
			return got
		}
	}
	t.Fatalf("no %v within 10s", want)
	return nil
}

// snConnectAndPublish connects an MQTT-SN client and publishes payload at
// QoS 1 to the pre-defined topic id, checking CONNACK and PUBACK.
func snConnectAndPublish(t *testing.T, send func([]byte), read func() []byte, clientID string, topicID uint16, payload string) {
	t.Helper()
	ack := snExchange(t, send, read, &packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte(clientID)}, packet.TypeConnack).(*packet.Connack)
	if ack.ReturnCode != packet.Accepted {
		t.Fatalf("CONNACK return code %v; want accepted", ack.ReturnCode)
	}
	pub := &packet.Publish{QoS: packet.QoS1, TopicIDType: packet.TopicIDPredefined, TopicID: topicID, MsgID: 7, Data: []byte(payload)}
	pa := snExchange(t, send, read, pub, packet.TypePuback).(*packet.Puback)
	if pa.ReturnCode != packet.Accepted || pa.MsgID != 7 || pa.TopicID != topicID {
		t.Fatalf("PUBACK %+v; want accepted for msg id 7, topic id %d", pa, topicID)
	}
}

// The embedded default serves MQTT-SN on UDP :1885 with one transport.
func TestDefaultMQTTSN(t *testing.T) {
	c := Default()
	if !c.MQTTSN.Enabled || len(c.MQTTSN.UDP) != 1 || c.MQTTSN.UDP[0].Address != ":1885" {
		t.Fatalf("Default().MQTTSN = %+v; want enabled with one UDP transport on :1885", c.MQTTSN)
	}
	opts := c.MQTTSNOptions()
	if len(opts.Transports) != 1 || opts.Transports[0].Addr != ":1885" || opts.Transports[0].Name != "default" {
		t.Errorf("MQTTSNOptions().Transports = %+v", opts.Transports)
	}
	if opts.Tretry != 10*time.Second || opts.Nretry != 3 || opts.KeepAliveGrace != 1.5 || opts.MaxClients != 10000 ||
		opts.MaxTopicsPerClient != 1000 || opts.MaxBuffered != 100 || opts.SessionExpiry != 24*time.Hour || opts.AdvertiseInterval != 0 {
		t.Errorf("MQTTSNOptions() = %+v; want mqttsn's defaults", opts)
	}
}

// A real gateway: an MQTT-SN client on UDP connects and publishes at QoS 1
// to a pre-defined topic id from the config; an MQTT subscriber of the
// local broker gets the message.
func TestGatewayServesMQTTSNOverUDP(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Broker.SysInterval = 0
	cfg.MQTTSN.ClientIDPrefix = "sn-"
	cfg.MQTTSN.Predefined = map[string]string{"5": "sensors/node1/temp"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, stop := startGateway(t, cfg)
	addr := g.MQTTSNAddrs()["default"]
	if addr == nil {
		t.Fatalf("MQTTSNAddrs() = %v; want the transport \"default\"", g.MQTTSNAddrs())
	}
	sub := dialMQTT(t, g.Addrs()["default"], "lan", true, 0)
	sub.subscribe("sensors/#", 1)

	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(b []byte) {
		if _, err := conn.WriteTo(b, addr); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 2048)
	read := func() []byte {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read from the gateway: %v", err)
		}
		return buf[:n]
	}
	snConnectAndPublish(t, send, read, "node1", 5, "21.5")
	if p := sub.expect("sensors/node1/temp=21.5")[0]; p.QoS != 1 {
		t.Errorf("delivered at QoS %d; want 1", p.QoS)
	}
	sub.close()
	stop()
}

// enabled = false builds no MQTT-SN gateway.
func TestGatewayWithoutMQTTSN(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.MQTTSN.Enabled = false
	cfg.Serials = []SerialConfig{DefaultSerial()}
	cfg.Serials[0].Device = "/dev/outpost-test-none"
	cfg.fillDefaults()
	g, stop := startGateway(t, cfg)
	if a := g.MQTTSNAddrs(); a != nil {
		t.Errorf("MQTTSNAddrs() = %v; want nil", a)
	}
	for _, c := range g.components {
		if c.Name() == "mqttsn" || c.Name() == "serial//dev/outpost-test-none" {
			t.Errorf("component %s runs with MQTT-SN off", c.Name())
		}
	}
	stop()
}

// A serial link whose port does not exist does not stop the start: the link
// keeps trying, and the other transports serve meanwhile.
func TestGatewayStartsWithAMissingSerialPort(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	s := DefaultSerial()
	s.Device = "/dev/outpost-test-missing"
	cfg.Serials = []SerialConfig{s}
	cfg.fillDefaults()
	g, stop := startGateway(t, cfg)
	var names []string
	for _, c := range g.components {
		names = append(names, c.Name())
	}
	want := []string{"spool", "broker", "serial//dev/outpost-test-missing", "mqttsn"}
	for i, w := range want {
		if i >= len(names) || names[i] != w {
			t.Fatalf("components %v; want them to start with %v", names, want)
		}
	}
	if a := g.MQTTSNAddrs(); a["default"] == nil || a["/dev/outpost-test-missing"] == nil {
		t.Errorf("MQTTSNAddrs() = %v; want the UDP transport and the serial link", a)
	}
	stop()
}

// readRaw reads one MQTT-SN packet of the raw framing from r (the radio's
// side of a serial port): its length field delimits it.
func readRaw(t *testing.T, r io.Reader) []byte {
	t.Helper()
	hdr := make([]byte, 1, 3)
	if _, err := io.ReadFull(r, hdr); err != nil {
		t.Fatalf("read the port: %v", err)
	}
	n := int(hdr[0])
	if n == 1 {
		hdr = hdr[:3]
		if _, err := io.ReadFull(r, hdr[1:]); err != nil {
			t.Fatalf("read the port: %v", err)
		}
		n = int(hdr[1])<<8 | int(hdr[2])
	}
	b := make([]byte, n)
	copy(b, hdr)
	if _, err := io.ReadFull(r, b[len(hdr):]); err != nil {
		t.Fatalf("read the port: %v", err)
	}
	return b
}

// udp = [] without [[serial]] leaves MQTT-SN nothing to serve: no gateway
// (mqttsn's own default would be a transport on :1885).
func TestGatewayWithoutMQTTSNTransports(t *testing.T) {
	c, err := Load(writeConfig(t, "data_dir = \"d\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n[mqttsn]\nudp = []\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, stop := startGateway(t, c)
	if a := g.MQTTSNAddrs(); a != nil {
		t.Errorf("MQTTSNAddrs() = %v; want nil", a)
	}
	for _, comp := range g.components {
		if comp.Name() == "mqttsn" {
			t.Error("an MQTT-SN gateway runs without transports")
		}
	}
	stop()
}
