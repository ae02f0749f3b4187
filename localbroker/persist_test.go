package localbroker

import (
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/spool"
)

// openSpool runs a real badger spool in dir until the test ends (or stop).
func openSpool(t *testing.T, dir string) (*spool.Store, func()) {
	t.Helper()
	st, err := spool.New(spool.Options{Dir: dir, MinFreeBytes: -1, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return st, runUntilStopped(t, "spool", st.Run, st.Ready())
}

// runBroker is startBroker with a stop function for restart tests.
func runBroker(t *testing.T, deps Deps) (*Broker, string, func()) {
	t.Helper()
	b, err := New(Options{Listeners: []ListenerOptions{{Name: "tcp", Address: "127.0.0.1:0", AllowAnonymous: true}},
		Logger: testLogger(), SysInterval: -1}, deps)
	if err != nil {
		t.Fatal(err)
	}
	stop := runUntilStopped(t, "broker", b.Run, b.Ready())
	return b, b.Addrs()["tcp"].String(), stop
}

func TestPersistenceSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	st, stopSpool := openSpool(t, dir)
	kv, err := st.KV("broker")
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{Persistence: NewKVPersistence(kv)}
	b, addr, stop := runBroker(t, deps)

	pub := mustConnect(t, addr, packet.V5, "pub")
	pub.publish(1, "status/a", "up", 1, true)
	pub.publish(2, "status/b", "gone", 1, true)
	pub.publish(3, "status/b", "", 1, true) // cleared: must not come back

	sub := mustConnect(t, addr, packet.V5, "keeper", withClean(true), withExpiry(3600))
	sub.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "cmd/#", QoS: 1, RetainHandling: 2}}})
	expect[*packet.Suback](sub)
	sub.disconnect()
	waitOffline(t, b, "keeper")
	pub.publish(4, "cmd/x", "queued", 1, false) // waits in the offline session
	pub.disconnect()
	stop()
	stopSpool()

	st, _ = openSpool(t, dir)
	kv, err = st.KV("broker")
	if err != nil {
		t.Fatal(err)
	}
	b2, addr, _ := runBroker(t, Deps{Persistence: NewKVPersistence(kv)})
	if n := b2.Stats().Retained; n != 1 {
		t.Fatalf("retained after restart: %d, want 1", n)
	}
	sub, ca := connect(t, addr, packet.V5, "keeper", withClean(false), withExpiry(3600))
	if !ca.SessionPresent {
		t.Fatal("persistent session lost across restart")
	}
	sub.expectPublish("cmd/x", "queued")
	// The restored subscription still routes.
	pub = mustConnect(t, addr, packet.V311, "pub2")
	pub.publish(5, "cmd/y", "live", 1, false)
	sub.expectPublish("cmd/y", "live")
	// And the retained message came back.
	late := mustConnect(t, addr, packet.V311, "late")
	late.subscribe(1, "status/#", 0)
	p := late.expectPublish("status/a", "up")
	if !p.Retain {
		t.Fatal("restored retained message without retain flag")
	}
	late.expectNothing(100 * time.Millisecond)
}

func TestSessionRecordRoundTrip(t *testing.T) {
	m := &Message{Topic: "a/b", Payload: []byte("x"), QoS: 2, Retain: true, Origin: "c",
		Created: time.Unix(100, 5), ExpiresAt: time.Unix(200, 0)}
	m.Props.Set(packet.PropContentType)
	m.Props.ContentType = "text/plain"
	m.Props.User = []packet.UserProperty{{Key: "k", Value: "v"}, {Key: "k", Value: "w"}}
	m.Props.Set(packet.PropUser)
	in := &SessionState{ClientID: "id", Username: "u", Expiry: 60, Disconnected: time.Unix(300, 0),
		Subscriptions: []SubscriptionState{{Filter: "$share/g/a/#", ID: 9,
			Opts: packet.Subscription{Filter: "$share/g/a/#", QoS: 1, RetainHandling: 2, RetainAsPublished: true}}},
		Pending: []PendingMessage{{Message: m, QoS: 2, PacketID: 7, Released: true, SubIDs: []uint32{9, 10}, Seq: 42}}}
	out, err := decodeSession(encodeSession(in))
	if err != nil {
		t.Fatal(err)
	}
	if out.ClientID != in.ClientID || out.Username != in.Username || out.Expiry != 60 ||
		!out.Disconnected.Equal(in.Disconnected) || len(out.Subscriptions) != 1 || len(out.Pending) != 1 {
		t.Fatalf("round trip: %+v", out)
	}
	if out.Subscriptions[0] != in.Subscriptions[0] {
		t.Fatalf("subscription %+v, want %+v", out.Subscriptions[0], in.Subscriptions[0])
	}
	pm := out.Pending[0]
	if pm.QoS != 2 || pm.PacketID != 7 || !pm.Released || pm.Seq != 42 || len(pm.SubIDs) != 2 || pm.SubIDs[1] != 10 {
		t.Fatalf("pending %+v", pm)
	}
	om := pm.Message
	if om.Topic != "a/b" || string(om.Payload) != "x" || om.QoS != 2 || !om.Retain || om.Origin != "c" ||
		!om.Created.Equal(m.Created) || !om.ExpiresAt.Equal(m.ExpiresAt) || om.Props.ContentType != "text/plain" ||
		len(om.Props.User) != 2 || om.Props.User[1].Value != "w" || !om.Props.Has(packet.PropContentType) {
		t.Fatalf("message %+v", om)
	}
	for i := range encodeSession(in) {
		if _, err := decodeSession(encodeSession(in)[:i]); err == nil {
			t.Fatalf("truncated record of %d bytes decoded without error", i)
		}
	}
}

func FuzzDecodeSession(f *testing.F) {
	f.Add(encodeSession(&SessionState{ClientID: "x", Subscriptions: []SubscriptionState{{Filter: "a"}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeSession(b)
		if err != nil {
			return
		}
		// Round trip: what decodes re-encodes to a record that decodes the same.
		again, err := decodeSession(encodeSession(st))
		if err != nil || again.ClientID != st.ClientID || len(again.Pending) != len(st.Pending) ||
			len(again.Subscriptions) != len(st.Subscriptions) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}
