package mqttsn

import (
	"net"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// §6.8: QoS -1 PUBLISH without a connection, by pre-defined id and short
// name, reaches mosquitto_sub when the transport allows it, and is dropped
// (counted) when it does not.
func TestQoSMinus1(t *testing.T) {
	b, tcp := startBroker(t)
	e := &env{b: b, tcp: tcp}
	g, _ := startGateway(t, b, Options{
		Transports: []Transport{
			{Name: "open", Addr: "127.0.0.1:0", AllowQoSMinus1: true},
			{Name: "closed", Addr: "127.0.0.1:0"},
		},
		Predefined: map[uint16]string{0x0042: "sensors/minus1"},
	})
	open, closed := g.Addrs()["open"], g.Addrs()["closed"]
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			sub := e.startSub(t, v, "sensors/minus1", 1)
			short := e.startSub(t, v, "m1", 1)
			c := newSNClient(t, open)
			c.send(&packet.Publish{QoS: packet.QoSMinus1, TopicIDType: packet.TopicIDPredefined, TopicID: 0x0042, Data: []byte("fire and forget")})
			sub.expect("MSG|sensors/minus1|0|0|fire and forget")
			c.send(&packet.Publish{QoS: packet.QoSMinus1, TopicIDType: packet.TopicIDShort, TopicID: packet.ShortTopicID([2]byte{'m', '1'}), Data: []byte("short")})
			short.expect("MSG|m1|0|0|short")
			c.expectNothing(100 * time.Millisecond) // no answer to QoS -1

			dropped := g.Stats().Dropped
			// An unknown pre-defined id, and any QoS -1 on the closed transport.
			c.send(&packet.Publish{QoS: packet.QoSMinus1, TopicIDType: packet.TopicIDPredefined, TopicID: 0x0043, Data: []byte("unknown")})
			c2 := newSNClient(t, closed)
			c2.send(&packet.Publish{QoS: packet.QoSMinus1, TopicIDType: packet.TopicIDPredefined, TopicID: 0x0042, Data: []byte("not allowed")})
			eventually(t, 5*time.Second, "drops counted", func() bool { return g.Stats().Dropped == dropped+2 })
			c2.expectNothing(100 * time.Millisecond)
		})
	}
	if st := g.Stats(); st.QoSMinus1 != 4 {
		t.Fatalf("Stats.QoSMinus1 = %d, want 4", st.QoSMinus1)
	}
}

// §6.1: SEARCHGW is answered with GWINFO; ADVERTISE goes to the broadcast
// address every AdvertiseInterval with that interval as Duration.
func TestDiscovery(t *testing.T) {
	b, _ := startBroker(t)
	bc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	_, gw := startGateway(t, b, Options{
		GatewayID:         0x2A,
		AdvertiseInterval: time.Second,
		Transports:        []Transport{{Name: "udp", Addr: "127.0.0.1:0", Broadcast: bc.LocalAddr()}},
	})
	c := newSNClient(t, gw)
	c.send(&packet.SearchGW{Radius: 1})
	if gi := expect[*packet.GWInfo](c); gi.GwID != 0x2A || gi.GwAdd != nil {
		t.Fatalf("GWINFO %+v", gi)
	}
	listener := &snClient{t: t, conn: bc}
	var times []time.Time
	for range 2 {
		ad := expect[*packet.Advertise](listener)
		if ad.GwID != 0x2A || ad.Duration != 1 {
			t.Fatalf("ADVERTISE %+v", ad)
		}
		times = append(times, time.Now())
	}
	if gap := times[1].Sub(times[0]); gap < 500*time.Millisecond {
		t.Fatalf("two ADVERTISE %v apart, want about 1s", gap)
	}
}

// A LAN client that connects with the client id of a transport's QoS -1
// publisher takes its broker session; the gateway attaches it again at the
// next QoS -1 message, which still reaches the broker's subscribers, rather
// than dropping every QoS -1 message from then on.
func TestQoSMinus1PublisherTakenOver(t *testing.T) {
	e := newEnv(t, Options{
		Transports: []Transport{{Name: "udp", Addr: "127.0.0.1:0", AllowQoSMinus1: true}},
		Predefined: map[uint16]string{0x0042: "sensors/minus1"},
	})
	sub := e.startSub(t, "mqttv311", "sensors/minus1", 1)
	mosqPub(t, e.tcp, "mqttv311", "-i", "~mqttsn-qos-minus-1-publisher/udp", "-t", "lan/x", "-m", "x")
	c := newSNClient(t, e.gwAddr)
	c.send(&packet.Publish{QoS: packet.QoSMinus1, TopicIDType: packet.TopicIDPredefined, TopicID: 0x0042, Data: []byte("after the takeover")})
	sub.expect("MSG|sensors/minus1|0|0|after the takeover")
	if st := e.g.Stats(); st.QoSMinus1 != 1 || st.Dropped != 0 {
		t.Fatalf("QoSMinus1 %d, Dropped %d; want 1, 0", st.QoSMinus1, st.Dropped)
	}
}
