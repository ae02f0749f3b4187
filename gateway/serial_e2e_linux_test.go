//go:build linux

package gateway

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/outpost-gw/outpost/mqttsn/packet"
	"github.com/outpost-gw/outpost/serialbus"
)

// fakeRadio plays the radio on a pty master: an XBee coordinator (framing
// "xbee", API mode 2) or a bridge board. One goroutine reads the master,
// answers the Link's start-up queries (AT AP/AO/NP/SH/SL, STATUS_REQUEST)
// and hands the MQTT-SN datagrams the gateway sends (0x10 Transmit Requests,
// TX_DATA) to the node they are addressed to. It never fails the test
// itself: what goes wrong arrives on errs, which a node's read reports.
type fakeRadio struct {
	t      *testing.T
	m      *os.File
	bridge bool
	mu     sync.Mutex // one write on the master at a time
	nodes  map[string]chan []byte
	errs   chan error
	done   chan struct{}
}

func newFakeRadio(t *testing.T, m *os.File, bridge bool, nodes ...string) *fakeRadio {
	t.Helper()
	r := &fakeRadio{t: t, m: m, bridge: bridge, nodes: map[string]chan []byte{}, errs: make(chan error, 16), done: make(chan struct{})}
	for _, n := range nodes {
		r.nodes[n] = make(chan []byte, 64)
	}
	go r.run(m)
	// Runs before ptytest's cleanup: the reader ends when the master closes.
	t.Cleanup(func() { m.Close(); <-r.done })
	return r
}

func (r *fakeRadio) report(err error) {
	select {
	case r.errs <- err:
	default:
	}
}

func (r *fakeRadio) write(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.m.Write(b); err != nil {
		r.report(fmt.Errorf("radio write: %w", err))
	}
}

func (r *fakeRadio) run(m *os.File) {
	defer close(r.done)
	var dec interface {
		Next([]byte) ([]byte, int, error)
	}
	if r.bridge {
		dec = &serialbus.BridgeDecoder{}
	} else {
		dec = &serialbus.XBeeDecoder{Escaped: true}
	}
	buf := make([]byte, 4096)
	for {
		n, err := m.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, io.EOF) {
				r.report(fmt.Errorf("radio read: %w", err))
			}
			return
		}
		p := buf[:n]
		for len(p) > 0 {
			frame, used, err := dec.Next(p)
			p = p[used:]
			if err != nil {
				r.report(fmt.Errorf("radio decode: %w", err))
				continue
			}
			if frame != nil {
				r.handle(frame)
			}
			if used == 0 {
				break
			}
		}
	}
}

func (r *fakeRadio) handle(frame []byte) {
	var key string
	var data []byte
	if r.bridge {
		f, err := serialbus.DecodeBridge(frame)
		if err != nil {
			r.report(fmt.Errorf("bridge frame % x: %w", frame, err))
			return
		}
		switch f.Type {
		case serialbus.BridgeStatusRequest:
			b, _ := serialbus.AppendBridge(nil, &serialbus.BridgeFrame{Type: serialbus.BridgeStatus, Info: serialbus.BridgeInfo{
				Version: 1, MaxDatagram: 200, FrequencyHz: 868100000, BandwidthHz: 125000, SpreadingFactor: 7, CodingRate: 5, TxPowerDBm: 14, Firmware: "fake"}})
			r.write(b)
			return
		case serialbus.BridgeTxData:
			key, data = hex.EncodeToString(f.Node), append([]byte(nil), f.Data...)
			if f.FrameID != 0 {
				b, _ := serialbus.AppendBridge(nil, &serialbus.BridgeFrame{Type: serialbus.BridgeTxStatus, FrameID: f.FrameID})
				r.write(b)
			}
		default:
			r.report(fmt.Errorf("bridge board got a %v frame", f.Type))
			return
		}
	} else {
		f, err := serialbus.DecodeXBee(frame)
		if err != nil {
			r.report(fmt.Errorf("XBee frame % x: %w", frame, err))
			return
		}
		switch f.Type {
		case serialbus.XBeeATCommand:
			values := map[string][]byte{"AP": {2}, "AO": {0}, "NP": {0, 84}, "SH": {0x00, 0x13, 0xa2, 0x00}, "SL": {0x40, 0x52, 0x2b, 0xaa}}
			v, ok := values[string(f.Command[:])]
			if !ok {
				r.report(fmt.Errorf("unexpected AT query %s", f.Command[:]))
				return
			}
			b, _ := serialbus.AppendXBee(nil, &serialbus.XBeeFrame{Type: serialbus.XBeeATResponse, FrameID: f.FrameID, Command: f.Command, Data: v}, true)
			r.write(b)
			return
		case serialbus.XBeeTransmitRequest:
			key, data = fmt.Sprintf("%016x", f.Addr64), append([]byte(nil), f.Data...)
		default:
			r.report(fmt.Errorf("XBee got a %v frame", f.Type))
			return
		}
	}
	ch, ok := r.nodes[key]
	if !ok {
		r.report(fmt.Errorf("datagram for unknown node %s", key))
		return
	}
	select {
	case ch <- data:
	default:
		r.report(fmt.Errorf("node %s does not read its datagrams", key))
	}
}

// radioNode is one MQTT-SN client behind the fake radio.
type radioNode struct {
	r   *fakeRadio
	key string
}

func (r *fakeRadio) node(key string) *radioNode { return &radioNode{r: r, key: key} }

// send carries one MQTT-SN datagram from the node to the gateway: a 0x90
// Receive Packet from the node's 64-bit address, or an RX_DATA with its
// node id.
func (n *radioNode) send(b []byte) {
	n.r.t.Helper()
	var wire []byte
	var err error
	if n.r.bridge {
		id, _ := hex.DecodeString(n.key)
		wire, err = serialbus.AppendBridge(nil, &serialbus.BridgeFrame{Type: serialbus.BridgeRxData, RSSI: -80, SNR: 20, Node: id, Data: b})
	} else {
		var a uint64
		fmt.Sscanf(n.key, "%x", &a)
		wire, err = serialbus.AppendXBee(nil, &serialbus.XBeeFrame{Type: serialbus.XBeeReceivePacket, Addr64: a, Addr16: 0xfffe, Options: 0x01, Data: b}, true)
	}
	if err != nil {
		n.r.t.Fatalf("encode for node %s: %v", n.key, err)
	}
	n.r.write(wire)
}

// read returns the next datagram the gateway sent to the node.
func (n *radioNode) read() []byte {
	n.r.t.Helper()
	select {
	case b := <-n.r.nodes[n.key]:
		return b
	case err := <-n.r.errs:
		n.r.t.Fatal(err)
	case <-time.After(10 * time.Second):
		n.r.t.Fatalf("node %s: nothing from the gateway within 10s", n.key)
	}
	return nil
}

// expect reads datagrams until one of type want arrives.
func (n *radioNode) expect(want packet.MsgType) packet.Message {
	n.r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b := n.read()
		m, err := packet.Decode(b)
		if err != nil {
			n.r.t.Fatalf("node %s: decode % x: %v", n.key, b, err)
		}
		if m.Type() == want {
			return m
		}
	}
	n.r.t.Fatalf("node %s: no %v within 10s", n.key, want)
	return nil
}

// exercise connects the node as clientID, publishes at QoS 0, 1 and 2 to
// the pre-defined topic id 5 (sensors/temp), checks that sub gets the three
// messages at their QoS, then subscribes to cmd/<clientID>/# and checks that
// an MQTT publish reaches the node: REGISTER of the name, then PUBLISH.
func (n *radioNode) exercise(t *testing.T, sub *mqttClient, clientID string) {
	t.Helper()
	ack := snExchange(t, n.send, n.read, &packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte(clientID)}, packet.TypeConnack).(*packet.Connack)
	if ack.ReturnCode != packet.Accepted {
		t.Fatalf("%s: CONNACK %v", clientID, ack.ReturnCode)
	}
	n.send(packet.Append(nil, &packet.Publish{QoS: packet.QoS0, TopicIDType: packet.TopicIDPredefined, TopicID: 5, Data: []byte(clientID + "-q0")}))
	pa := snExchange(t, n.send, n.read, &packet.Publish{QoS: packet.QoS1, TopicIDType: packet.TopicIDPredefined, TopicID: 5, MsgID: 11, Data: []byte(clientID + "-q1")}, packet.TypePuback).(*packet.Puback)
	if pa.ReturnCode != packet.Accepted || pa.MsgID != 11 {
		t.Fatalf("%s: PUBACK %+v", clientID, pa)
	}
	rec := snExchange(t, n.send, n.read, &packet.Publish{QoS: packet.QoS2, TopicIDType: packet.TopicIDPredefined, TopicID: 5, MsgID: 12, Data: []byte(clientID + "-q2")}, packet.TypePubrec).(*packet.Pubrec)
	if rec.MsgID != 12 {
		t.Fatalf("%s: PUBREC %+v", clientID, rec)
	}
	if c := snExchange(t, n.send, n.read, &packet.Pubrel{MsgID: 12}, packet.TypePubcomp).(*packet.Pubcomp); c.MsgID != 12 {
		t.Fatalf("%s: PUBCOMP %+v", clientID, c)
	}
	want := map[string]byte{clientID + "-q0": 0, clientID + "-q1": 1, clientID + "-q2": 2}
	for len(want) > 0 {
		var p *paho.Publish
		select {
		case p = <-sub.recv:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the subscriber is still missing %v", clientID, want)
		}
		q, ok := want[string(p.Payload)]
		if !ok || p.Topic != "sensors/temp" || p.QoS != q {
			t.Fatalf("%s: subscriber got %s=%s at QoS %d; want one of %v on sensors/temp", clientID, p.Topic, p.Payload, p.QoS, want)
		}
		delete(want, string(p.Payload))
	}

	filter := "cmd/" + clientID + "/#"
	sa := snExchange(t, n.send, n.read, &packet.Subscribe{QoS: packet.QoS1, TopicIDType: packet.TopicIDNormal, MsgID: 13, TopicName: []byte(filter)}, packet.TypeSuback).(*packet.Suback)
	if sa.ReturnCode != packet.Accepted || sa.MsgID != 13 {
		t.Fatalf("%s: SUBACK %+v", clientID, sa)
	}
	topic := "cmd/" + clientID + "/led"
	sub.publish(topic, "on-"+clientID, false)
	reg := n.expect(packet.TypeRegister).(*packet.Register)
	if string(reg.TopicName) != topic || reg.TopicID == 0 {
		t.Fatalf("%s: REGISTER %+v; want %s", clientID, reg, topic)
	}
	n.send(packet.Append(nil, &packet.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID, ReturnCode: packet.Accepted}))
	pub := n.expect(packet.TypePublish).(*packet.Publish)
	if pub.TopicID != reg.TopicID || pub.TopicIDType != packet.TopicIDNormal || pub.QoS != packet.QoS1 || string(pub.Data) != "on-"+clientID {
		t.Fatalf("%s: PUBLISH %+v; want on-%s at QoS 1 on topic id %d", clientID, pub, clientID, reg.TopicID)
	}
	n.send(packet.Append(nil, &packet.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID, ReturnCode: packet.Accepted}))
}

// serialE2EConfig is a gateway with the pre-defined topic id 5 and the
// given [[serial]] links.
func serialE2EConfig(t *testing.T, serials ...SerialConfig) *Config {
	t.Helper()
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Broker.SysInterval = 0
	cfg.MQTTSN.Predefined = map[string]string{"5": "sensors/temp"}
	cfg.Serials = serials
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func serialLink(name, dev, framing string) SerialConfig {
	s := DefaultSerial()
	s.Name, s.Device, s.Framing = name, dev, framing
	return s
}

// A real gateway with an XBee coordinator (API mode 2) and a LoRa bridge
// board, each on a pty and each with two nodes: every node connects,
// publishes at QoS 0, 1 and 2 to a pre-defined topic id that an MQTT
// subscriber gets, and gets an MQTT publish to a name it subscribed to.
func TestGatewaySerialRadiosEndToEnd(t *testing.T) {
	xm, xdev := openPty(t)
	bm, bdev := openPty(t)
	cfg := serialE2EConfig(t, serialLink("xbee", xdev, "xbee"), serialLink("lora", bdev, "bridge"))
	xbee := newFakeRadio(t, xm, false, "0013a20040a00001", "0013a20040a00002")
	board := newFakeRadio(t, bm, true, "0102", "26011bd4")
	g, stop := startGateway(t, cfg)
	defer stop()
	sub := dialMQTT(t, g.Addrs()["default"], "lan", true, 0)
	defer sub.close()
	sub.subscribe("sensors/#", 2)

	xbee.node("0013a20040a00001").exercise(t, sub, "xb1")
	xbee.node("0013a20040a00002").exercise(t, sub, "xb2")
	board.node("0102").exercise(t, sub, "lora1")
	board.node("26011bd4").exercise(t, sub, "lora2")
}

// repointDevice makes the symlink dev point to target, atomically, as udev
// does when an adapter comes back as a new tty.
func repointDevice(t *testing.T, dev, target string) {
	t.Helper()
	tmp := dev + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dev); err != nil {
		t.Fatal(err)
	}
}

// The bridge board is unplugged in the middle of traffic (a downlink
// PUBLISH waiting for its PUBACK, half an RX_DATA on the line): MQTT-SN over
// UDP and a LAN MQTT client keep working, and once the device's name points
// to a new tty the serial node connects, publishes and gets publishes again.
func TestGatewaySerialUnplug(t *testing.T) {
	dev := t.TempDir() + "/usb-Outpost_Bridge_0001-if00"
	m1, path1 := openPty(t)
	repointDevice(t, dev, path1)
	cfg := serialE2EConfig(t, serialLink("lora", dev, "bridge"))
	board1 := newFakeRadio(t, m1, true, "0102")
	g, stop := startGateway(t, cfg)
	defer stop()
	sub := dialMQTT(t, g.Addrs()["default"], "lan", true, 0)
	defer sub.close()
	sub.subscribe("sensors/#", 2)
	board1.node("0102").exercise(t, sub, "lora1")

	// Mid-traffic: a downlink the node will never acknowledge, and the
	// first half of an uplink frame, then the port vanishes.
	sub.publish("cmd/lora1/led", "off", false)
	if p := board1.node("0102").expect(packet.TypePublish).(*packet.Publish); string(p.Data) != "off" {
		t.Fatalf("downlink before the unplug: %+v", p)
	}
	half, _ := serialbus.AppendBridge(nil, &serialbus.BridgeFrame{Type: serialbus.BridgeRxData, Node: []byte{1, 2},
		Data: packet.Append(nil, &packet.Publish{QoS: packet.QoS1, TopicIDType: packet.TopicIDPredefined, TopicID: 5, MsgID: 30, Data: []byte("cut")})})
	board1.write(half[:len(half)/2])
	m1.Close()

	// UDP MQTT-SN still works.
	addr := g.MQTTSNAddrs()["default"]
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 2048)
	udpSend := func(b []byte) {
		if _, err := conn.WriteTo(b, addr); err != nil {
			t.Fatal(err)
		}
	}
	udpRead := func() []byte {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read from the gateway: %v", err)
		}
		return buf[:n]
	}
	snConnectAndPublish(t, udpSend, udpRead, "udp1", 5, "from-udp")
	sub.expect("sensors/temp=from-udp")
	// So does a LAN MQTT client.
	sub.publish("sensors/lan", "from-lan", false)
	sub.expect("sensors/lan=from-lan")

	// The board comes back under the same name, as a new tty.
	m2, path2 := openPty(t)
	board2 := newFakeRadio(t, m2, true, "0102")
	repointDevice(t, dev, path2)
	board2.node("0102").exercise(t, sub, "lora1")
	// The half frame and anything sent while the port was away reached no
	// subscriber.
	sub.expectNothing(200 * time.Millisecond)
}

// A sleeping node behind the LoRa bridge board (MQTT-SN 1.2 §6.14): it goes
// to sleep with DISCONNECT and a duration, an MQTT publish for it waits in
// the gateway, and its PINGREQ with its ClientId brings the message, then
// PINGRESP.
func TestGatewaySerialSleepingNode(t *testing.T) {
	bm, bdev := openPty(t)
	cfg := serialE2EConfig(t, serialLink("lora", bdev, "bridge"))
	board := newFakeRadio(t, bm, true, "0a0b")
	g, stop := startGateway(t, cfg)
	defer stop()
	lan := dialMQTT(t, g.Addrs()["default"], "lan-sleep", true, 0)
	defer lan.close()

	lan.subscribe("sensors/#", 2)
	n := board.node("0a0b")
	n.exercise(t, lan, "sleeper") // connected, subscribed to cmd/sleeper/#, topic registered
	if d := snExchange(t, n.send, n.read, &packet.Disconnect{HasDuration: true, Duration: 600}, packet.TypeDisconnect).(*packet.Disconnect); d.HasDuration {
		t.Fatalf("DISCONNECT answer %+v; want a plain DISCONNECT", d)
	}
	before := g.Status().Broker.MessagesReceived
	lan.publish("cmd/sleeper/led", "while-asleep", false)
	// Nothing goes over the air while the node sleeps; wait until the
	// broker has taken the message (its delivery is buffered for the node).
	deadline := time.Now().Add(10 * time.Second)
	for g.Status().MQTTSN.Asleep != 1 || g.Status().Broker.MessagesReceived <= before {
		if time.Now().After(deadline) {
			t.Fatalf("the node is not asleep with the message taken: %+v", g.Status().MQTTSN)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case b := <-board.nodes["0a0b"]:
		t.Fatalf("the gateway sent % x to a sleeping node", b)
	case <-time.After(200 * time.Millisecond): // quiet: the message waits
	}
	n.send(packet.Append(nil, &packet.Pingreq{ClientID: []byte("sleeper")}))
	var got *packet.Publish
	for got == nil {
		m, err := packet.Decode(n.read())
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *packet.Register:
			n.send(packet.Append(nil, &packet.Regack{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: packet.Accepted}))
		case *packet.Publish:
			got = m
		default:
			t.Fatalf("awake node got %T %+v before the buffered PUBLISH", m, m)
		}
	}
	if string(got.Data) != "while-asleep" {
		t.Fatalf("buffered PUBLISH %q; want while-asleep", got.Data)
	}
	if got.QoS == packet.QoS1 {
		n.send(packet.Append(nil, &packet.Puback{TopicID: got.TopicID, MsgID: got.MsgID, ReturnCode: packet.Accepted}))
	}
	n.expect(packet.TypePingresp)
}
