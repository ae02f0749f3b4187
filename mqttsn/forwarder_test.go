package mqttsn

import (
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// §5.5: clients behind a forwarder are told apart by their Wireless Node
// Id, and answered encapsulated; a client speaking from the forwarder's own
// address without encapsulation is another client.
func TestForwarderEncapsulation(t *testing.T) {
	e := newEnv(t, Options{})
	fwd := newSNClient(t, e.gwAddr)
	nodeA := &snClient{t: t, conn: fwd.conn, gw: e.gwAddr, fwd: true, node: []byte{0x00, 0x13, 0xA2, 0x01}}
	nodeB := &snClient{t: t, conn: fwd.conn, gw: e.gwAddr, fwd: true, node: []byte{0x00, 0x13, 0xA2, 0x02}}
	plain := fwd // the forwarder's address itself, no encapsulation

	nodeA.connect("node-a", true, 60)
	nodeB.connect("node-b", true, 60)
	plain.connect("plain", true, 60)
	if st := e.g.Stats(); st.Clients != 3 {
		t.Fatalf("Stats.Clients = %d, want 3", st.Clients)
	}
	nodeA.subscribe(packet.TopicIDNormal, "fwd/a", 0, packet.QoS1)
	nodeB.subscribe(packet.TopicIDNormal, "fwd/b", 0, packet.QoS1)

	w := watch(t, e.b, "fwd/#")
	id := nodeB.register("fwd/from-b")
	nodeB.publish(packet.TopicIDNormal, id, packet.QoS2, false, "hello from b")
	w.expect("fwd/from-b", "hello from b")

	mosqPub(t, e.tcp, "mqttv5", "-t", "fwd/a", "-q", "1", "-m", "to a")
	w.expect("fwd/a", "to a")
	if p := nodeA.expectPublish(); string(p.Data) != "to a" {
		t.Fatalf("node A got %+v", p)
	}
	mosqPub(t, e.tcp, "mqttv5", "-t", "fwd/b", "-q", "1", "-m", "to b")
	w.expect("fwd/b", "to b")
	if p := nodeB.expectPublish(); string(p.Data) != "to b" {
		t.Fatalf("node B got %+v", p)
	}
	// SEARCHGW through the forwarder: GWINFO comes back encapsulated.
	nodeA.send(&packet.SearchGW{Radius: 2})
	expect[*packet.GWInfo](nodeA)

	nodeA.send(&packet.Disconnect{})
	expect[*packet.Disconnect](nodeA)
	// B and the plain client are unaffected.
	nodeB.send(&packet.Pingreq{})
	expect[*packet.Pingresp](nodeB)
	plain.send(&packet.Pingreq{})
	expect[*packet.Pingresp](plain)
}

// Nothing larger than the transport MTU is sent: the message is dropped
// (counted) and the next one still comes; a REGISTER that does not fit
// aborts its publish (§6.10).
func TestMTU(t *testing.T) {
	e := newEnv(t, Options{Transports: []Transport{{Name: "udp", Addr: "127.0.0.1:0", MTU: 40}}})
	c := newSNClient(t, e.gwAddr)
	c.connect("small", true, 60)
	sa := c.subscribe(packet.TopicIDNormal, "mtu/t", 0, packet.QoS1)
	c.subscribe(packet.TopicIDNormal, "mtu/wild/#", 0, packet.QoS1)

	mosqPub(t, e.tcp, "mqttv5", "-t", "mtu/t", "-q", "1", "-m", strings.Repeat("x", 40)) // 47 octets
	mosqPub(t, e.tcp, "mqttv5", "-t", "mtu/wild/"+strings.Repeat("n", 40), "-q", "1", "-m", "long name")
	mosqPub(t, e.tcp, "mqttv5", "-t", "mtu/t", "-q", "1", "-m", strings.Repeat("y", 33)) // 40 octets: fits
	p := c.expectPublish()
	if p.TopicID != sa.TopicID || string(p.Data) != strings.Repeat("y", 33) {
		t.Fatalf("PUBLISH %+v", p)
	}
	st := e.g.Stats()
	if st.TooLarge != 2 || st.Dropped != 2 {
		t.Fatalf("Stats TooLarge %d Dropped %d, want 2 and 2", st.TooLarge, st.Dropped)
	}
	c.expectNothing(100 * time.Millisecond)
}
