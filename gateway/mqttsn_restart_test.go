package gateway

import (
	"net"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// snUDP is an MQTT-SN client socket of a gateway test.
type snUDP struct {
	t    *testing.T
	conn net.PacketConn
	to   net.Addr
	buf  []byte
}

func newSNUDP(t *testing.T, to net.Addr) *snUDP {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &snUDP{t: t, conn: conn, to: to, buf: make([]byte, 2048)}
}

func (c *snUDP) send(b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteTo(b, c.to); err != nil {
		c.t.Fatal(err)
	}
}

func (c *snUDP) read() []byte {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := c.conn.ReadFrom(c.buf)
	if err != nil {
		c.t.Fatalf("read from the gateway: %v", err)
	}
	return append([]byte(nil), c.buf[:n]...)
}

func (c *snUDP) ask(m packet.Message, want packet.MsgType) packet.Message {
	c.t.Helper()
	return snExchange(c.t, c.send, c.read, m, want)
}

// The topic ids of a CleanSession=false device outlive a restart of the
// gateway, as its broker session does: the id it REGISTERed before still
// publishes to its topic, and the id it got in a SUBACK still carries the
// messages of its subscription, announced again by REGISTER with the same
// id. A CleanSession=true CONNECT after that forgets them.
func TestMQTTSNTopicIDsSurviveRestart(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Broker.SysInterval = 0
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	g, stop := startGateway(t, cfg)
	c := newSNUDP(t, g.MQTTSNAddrs()["default"])
	connect := func(clean bool) {
		t.Helper()
		ca := c.ask(&packet.Connect{CleanSession: clean, KeepAlive: 60, ClientID: []byte("keeper")}, packet.TypeConnack).(*packet.Connack)
		if ca.ReturnCode != packet.Accepted {
			t.Fatalf("CONNACK %v", ca.ReturnCode)
		}
	}
	connect(false)
	// Ids taken before the ones that matter, so that a table starting
	// afresh would not hand out the same numbers by chance.
	for _, name := range []string{"pad/1", "pad/2", "pad/3"} {
		c.ask(&packet.Register{MsgID: 1, TopicName: []byte(name)}, packet.TypeRegack)
	}
	ra := c.ask(&packet.Register{MsgID: 2, TopicName: []byte("sensors/keeper/t")}, packet.TypeRegack).(*packet.Regack)
	sa := c.ask(&packet.Subscribe{QoS: packet.QoS1, MsgID: 3, TopicName: []byte("cmd/keeper")}, packet.TypeSuback).(*packet.Suback)
	if ra.ReturnCode != packet.Accepted || sa.ReturnCode != packet.Accepted || sa.TopicID == 0 {
		t.Fatalf("REGACK %+v, SUBACK %+v", ra, sa)
	}
	pubID, subID := ra.TopicID, sa.TopicID
	stop()

	g, stop = startGateway(t, cfg) // the same data directory; new ports
	c.to = g.MQTTSNAddrs()["default"]
	sub := dialMQTT(t, g.Addrs()["default"], "lan", true, 0)
	sub.subscribe("sensors/#", 1)
	connect(false)
	pa := c.ask(&packet.Publish{QoS: packet.QoS1, TopicID: pubID, MsgID: 4, Data: []byte("21.5")}, packet.TypePuback).(*packet.Puback)
	if pa.ReturnCode != packet.Accepted {
		t.Fatalf("PUBACK %+v on the id registered before the restart; want accepted", pa)
	}
	sub.expect("sensors/keeper/t=21.5")

	sub.publish("cmd/keeper", "open", false)
	r := snExchange(t, c.send, c.read, pingreq(), packet.TypeRegister).(*packet.Register)
	if r.TopicID != subID || string(r.TopicName) != "cmd/keeper" {
		t.Fatalf("REGISTER %+v; want the SUBACK's id %d for cmd/keeper", r, subID)
	}
	c.send(packet.Append(nil, &packet.Regack{TopicID: r.TopicID, MsgID: r.MsgID}))
	p := snExchange(t, c.send, c.read, pingreq(), packet.TypePublish).(*packet.Publish)
	if p.TopicID != subID || string(p.Data) != "open" {
		t.Fatalf("PUBLISH %+v; want \"open\" on id %d", p, subID)
	}
	c.send(packet.Append(nil, &packet.Puback{TopicID: p.TopicID, MsgID: p.MsgID}))

	// A clean session forgets them, here and after the next restart.
	connect(true)
	sub.close()
	stop()
	g, _ = startGateway(t, cfg)
	c.to = g.MQTTSNAddrs()["default"]
	connect(false)
	pa = c.ask(&packet.Publish{QoS: packet.QoS1, TopicID: pubID, MsgID: 5, Data: []byte("x")}, packet.TypePuback).(*packet.Puback)
	if pa.ReturnCode != packet.RejectedInvalidTopicID {
		t.Fatalf("PUBACK %+v after a clean session and a restart; want invalid topic id", pa)
	}
}

// pingreq is an MQTT-SN message for snExchange to send while it waits for
// what the gateway sends by itself: a PINGREQ, which the gateway answers
// with PINGRESP, skipped.
func pingreq() packet.Message { return &packet.Pingreq{} }
