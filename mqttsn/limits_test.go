package mqttsn

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	bpacket "github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// MaxClients: a CONNECT beyond it gets "rejected: congestion"; a known
// client id reconnecting is not a new client.
func TestMaxClients(t *testing.T) {
	e := newEnv(t, Options{MaxClients: 2})
	a, b := newSNClient(t, e.gwAddr), newSNClient(t, e.gwAddr)
	a.connect("a", true, 60)
	b.connect("b", true, 60)
	c := newSNClient(t, e.gwAddr)
	c.send(&packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("c")})
	if ca := expect[*packet.Connack](c); ca.ReturnCode != packet.RejectedCongestion {
		t.Fatalf("CONNACK %v, want congestion", ca.ReturnCode)
	}
	a.connect("a", true, 60) // reconnect: fine
	b.send(&packet.Disconnect{})
	expect[*packet.Disconnect](b)
	eventually(t, 5*time.Second, "b removed", func() bool { return e.g.Stats().Clients == 1 })
	c.connect("c", true, 60)
	if st := e.g.Stats(); st.Refused != 1 {
		t.Fatalf("Stats.Refused = %d, want 1", st.Refused)
	}
}

// MaxTopicsPerClient: REGISTER and SUBSCRIBE by name beyond it get
// "rejected: congestion"; ids the gateway assigned for wildcard matches are
// reused, least recently used first, after a new REGISTER.
func TestMaxTopicsPerClient(t *testing.T) {
	e := newEnv(t, Options{MaxTopicsPerClient: 3})
	c := newSNClient(t, e.gwAddr)
	c.connect("topics", true, 60)
	c.register("t/1")
	c.subscribe(packet.TopicIDNormal, "t/2", 0, packet.QoS0)
	c.send(&packet.Register{MsgID: 50, TopicName: []byte("t/3")})
	ra := expect[*packet.Regack](c)
	if ra.ReturnCode != packet.Accepted {
		t.Fatalf("REGACK %+v", ra)
	}
	c.send(&packet.Register{MsgID: 51, TopicName: []byte("t/4")})
	if ra := expect[*packet.Regack](c); ra.ReturnCode != packet.RejectedCongestion || ra.MsgID != 51 {
		t.Fatalf("REGACK %+v, want congestion", ra)
	}
	if sa := c.subscribe(packet.TopicIDNormal, "t/5", 0, packet.QoS0); sa.ReturnCode != packet.RejectedCongestion {
		t.Fatalf("SUBACK %+v, want congestion", sa)
	}
	// Wildcards take no id at SUBSCRIBE; the table is full of ids the
	// client owns, so a match on a new topic cannot be registered.
	if sa := c.subscribe(packet.TopicIDNormal, "w/#", 0, packet.QoS0); sa.ReturnCode != packet.Accepted {
		t.Fatalf("SUBACK %+v", sa)
	}
	mosqPub(t, e.tcp, "mqttv5", "-t", "w/x", "-m", "no room")
	eventually(t, 5*time.Second, "drop counted", func() bool { return e.g.Stats().Dropped == 1 })
	c.expectNothing(100 * time.Millisecond)

	// A clean session with room for one gateway id: each wildcard match on
	// a new topic takes the place of the previous one, so a topic seen
	// before is REGISTERed again.
	c.connect("topics", true, 60)
	own := map[uint16]bool{c.register("t/1"): true, c.register("t/2"): true}
	c.subscribe(packet.TopicIDNormal, "w/#", 0, packet.QoS0)
	for _, topic := range []string{"w/0", "w/1", "w/2", "w/0"} {
		mosqPub(t, e.tcp, "mqttv5", "-t", topic, "-m", "v")
		r := c.acceptRegister()
		if string(r.TopicName) != topic || own[r.TopicID] {
			t.Fatalf("REGISTER %+v: a new id for %s, not one the client registered", r, topic)
		}
		if p := c.expectPublish(); p.TopicID != r.TopicID {
			t.Fatalf("PUBLISH on %d after REGISTER of %d", p.TopicID, r.TopicID)
		}
	}
	// The client's own ids still work.
	for id := range own {
		c.publish(packet.TopicIDNormal, id, packet.QoS1, false, "mine")
	}
}

// Inbound QoS 1/2 is acknowledged only after the broker's Publish returned
// (the durable handoff: BeforeAck), a refusal is "rejected: congestion",
// and a client waiting for the handoff does not hold up the others.
func TestDurableHandoff(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan string, 10)
	b, err := localbroker.New(localbroker.Options{SysInterval: -1, Logger: testLogger()}, localbroker.Deps{Hooks: localbroker.Hooks{
		BeforeAck: func(_ *localbroker.ClientInfo, m *localbroker.Message) error {
			entered <- m.Topic
			if m.Topic == "h/refused" {
				return bpacket.Errorf(bpacket.QuotaExceeded, "spool full")
			}
			if m.Topic == "h/slow" {
				<-release
			}
			return nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	runUntilStopped(t, "broker", b.Run, b.Ready())
	_, gw := startGateway(t, b, Options{})
	w := watch(t, b, "h/#")

	slow := newSNClient(t, gw)
	slow.connect("slow", true, 60)
	sid := slow.register("h/slow")
	slow.send(&packet.Publish{QoS: packet.QoS1, TopicID: sid, MsgID: 1, Data: []byte("durable")})
	if got := <-entered; got != "h/slow" {
		t.Fatalf("BeforeAck for %q", got)
	}
	// While the handoff waits: no PUBACK, and another client is served.
	other := newSNClient(t, gw)
	other.connect("other", true, 60)
	oid := other.register("h/other")
	other.publish(packet.TopicIDNormal, oid, packet.QoS2, false, "meanwhile")
	<-entered
	w.expect("h/other", "meanwhile")
	slow.expectNothing(200 * time.Millisecond)
	close(release)
	if pa := expect[*packet.Puback](slow); pa.ReturnCode != packet.Accepted || pa.MsgID != 1 {
		t.Fatalf("PUBACK %+v", pa)
	}
	w.expect("h/slow", "durable")

	rid := other.register("h/refused")
	for _, q := range []packet.QoS{packet.QoS1, packet.QoS2} {
		other.send(&packet.Publish{QoS: q, TopicID: rid, MsgID: 9, Data: []byte("no room")})
		<-entered
		if pa := expect[*packet.Puback](other); pa.ReturnCode != packet.RejectedCongestion || pa.MsgID != 9 {
			t.Fatalf("QoS %d: PUBACK %+v, want congestion", q, pa)
		}
	}
	w.expectNothing(100 * time.Millisecond)
}

// A QoS 2 PUBLISH sent again before PUBREL is published once.
func TestQoS2Duplicate(t *testing.T) {
	e := newEnv(t, Options{})
	w := watch(t, e.b, "dup/#")
	c := newSNClient(t, e.gwAddr)
	c.connect("dup", true, 60)
	id := c.register("dup/x")
	p := &packet.Publish{QoS: packet.QoS2, TopicID: id, MsgID: 3, Data: []byte("once")}
	c.send(p)
	expect[*packet.Pubrec](c)
	p.DUP = true
	c.send(p)
	if pr := expect[*packet.Pubrec](c); pr.MsgID != 3 {
		t.Fatalf("PUBREC %+v", pr)
	}
	c.send(&packet.Pubrel{MsgID: 3})
	expect[*packet.Pubcomp](c)
	w.expect("dup/x", "once")
	w.expectNothing(200 * time.Millisecond)
	// A PUBREL for an id unknown (or already released) still gets PUBCOMP.
	c.send(&packet.Pubrel{MsgID: 3})
	expect[*packet.Pubcomp](c)
}

// A client that answers PUBLISH with "invalid topic ID" gets a REGISTER and
// the message again (§6.10); one that refuses a REGISTER is unsubscribed
// from that name.
func TestClientCorrectsTopicID(t *testing.T) {
	e := newEnv(t, Options{})
	c := newSNClient(t, e.gwAddr)
	c.connect("fix", true, 60)
	sa := c.subscribe(packet.TopicIDNormal, "fix/a", 0, packet.QoS1)
	mosqPub(t, e.tcp, "mqttv5", "-t", "fix/a", "-q", "1", "-m", "again")
	p := expect[*packet.Publish](c)
	c.send(&packet.Puback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: packet.RejectedInvalidTopicID})
	r := c.acceptRegister()
	if r.TopicID != sa.TopicID || string(r.TopicName) != "fix/a" {
		t.Fatalf("REGISTER %+v", r)
	}
	p2 := c.expectPublish()
	if string(p2.Data) != "again" || !p2.DUP || p2.TopicID != r.TopicID {
		t.Fatalf("PUBLISH again %+v", p2)
	}

	c.subscribe(packet.TopicIDNormal, "fix/b/#", 0, packet.QoS1)
	c.subscribe(packet.TopicIDNormal, "fix/c", 0, packet.QoS0)
	c.send(&packet.Puback{TopicID: 0x3333, ReturnCode: packet.RejectedInvalidTopicID}) // unsolicited: ignored
	c.send(&packet.Unsubscribe{MsgID: 70, TopicName: []byte("fix/c")})
	expect[*packet.Unsuback](c)
	mosqPub(t, e.tcp, "mqttv5", "-t", "fix/b/1", "-q", "1", "-m", "refused")
	r = expect[*packet.Register](c)
	c.send(&packet.Regack{TopicID: r.TopicID, MsgID: r.MsgID, ReturnCode: packet.RejectedNotSupported})
	c.expectNothing(200 * time.Millisecond)
	eventually(t, 5*time.Second, "the refused message counted", func() bool { return e.g.Stats().Dropped == 1 })
}

// A CleanSession=false client gets, after reconnecting, the QoS 1 messages
// published while it was away (queued by the broker), REGISTERed first.
func TestPersistentSessionQueue(t *testing.T) {
	e := newEnv(t, Options{})
	c := newSNClient(t, e.gwAddr)
	c.connect("persist", false, 60)
	sa := c.subscribe(packet.TopicIDNormal, "ps/x", 0, packet.QoS1)
	c.send(&packet.Disconnect{})
	expect[*packet.Disconnect](c)
	for i := range 3 {
		mosqPub(t, e.tcp, "mqttv311", "-t", "ps/x", "-q", "1", "-m", fmt.Sprint("away ", i))
	}
	c.connect("persist", false, 60)
	r := c.acceptRegister()
	if r.TopicID != sa.TopicID {
		t.Fatalf("REGISTER id %d, want the SUBACK's %d", r.TopicID, sa.TopicID)
	}
	for i := range 3 {
		if p := c.expectPublish(); string(p.Data) != fmt.Sprint("away ", i) || p.TopicID != sa.TopicID {
			t.Fatalf("PUBLISH %+v", p)
		}
	}
}

// A LAN client taking the broker session of a device over ends the device's
// connection: its next message gets DISCONNECT.
func TestBrokerSessionTakenOver(t *testing.T) {
	e := newEnv(t, Options{Transports: []Transport{{Name: "udp", Addr: "127.0.0.1:0", ClientIDPrefix: "sn-"}}})
	c := newSNClient(t, e.gwAddr)
	c.connect("dev", true, 60)
	id := c.register("to/x")
	lan, _, err := e.b.Attach(localbroker.ClientOptions{ClientID: "sn-dev", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lan.Close(false)
	c.send(&packet.Publish{QoS: packet.QoS1, TopicID: id, MsgID: 4, Data: []byte("x")})
	expect[*packet.Disconnect](c)
	eventually(t, 5*time.Second, "client removed", func() bool { return e.g.Stats().Clients == 0 })
	if _, err := lan.Publish(context.Background(), &localbroker.Message{Topic: "to/y"}); errors.Is(err, localbroker.ErrClosed) {
		t.Fatal("the LAN client lost its session")
	}
}

// Per-client pre-defined ids take precedence over the global ones.
func TestClientPredefined(t *testing.T) {
	e := newEnv(t, Options{
		Predefined:       map[uint16]string{1: "global/one"},
		ClientPredefined: map[string]map[uint16]string{"special": {1: "special/one"}},
	})
	w := watch(t, e.b, "#")
	s := newSNClient(t, e.gwAddr)
	s.connect("special", true, 60)
	s.publish(packet.TopicIDPredefined, 1, packet.QoS1, false, "s")
	w.expect("special/one", "s")
	o := newSNClient(t, e.gwAddr)
	o.connect("ordinary", true, 60)
	o.publish(packet.TopicIDPredefined, 1, packet.QoS1, false, "o")
	w.expect("global/one", "o")
}

// §6.10: refusing the REGISTER of a topic the client subscribed to by name
// unsubscribes it.
func TestRefusedRegisterUnsubscribes(t *testing.T) {
	e := newEnv(t, Options{})
	c := newSNClient(t, e.gwAddr)
	c.connect("refuser", false, 60)
	c.subscribe(packet.TopicIDNormal, "ref/x", 0, packet.QoS1)
	c.connect("refuser", false, 60) // a new connection: ids are told again
	mosqPub(t, e.tcp, "mqttv5", "-t", "ref/x", "-q", "1", "-m", "one")
	r := expect[*packet.Register](c)
	c.send(&packet.Regack{TopicID: r.TopicID, MsgID: r.MsgID, ReturnCode: packet.RejectedNotSupported})
	eventually(t, 5*time.Second, "the refused message counted", func() bool { return e.g.Stats().Dropped == 1 })
	w := watch(t, e.b, "ref/x")
	mosqPub(t, e.tcp, "mqttv5", "-t", "ref/x", "-q", "1", "-m", "two")
	w.expect("ref/x", "two")
	c.expectNothing(200 * time.Millisecond)
}
