package localbroker

import (
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// Each listener counts its own connections, PUBLISH packets and bytes, and
// Clients lists the connected network clients with their listener.
func TestListenerStatsAndClients(t *testing.T) {
	b, addrA := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "a", Address: "127.0.0.1:0", AllowAnonymous: true},
		{Name: "b", Address: "127.0.0.1:0", AllowAnonymous: true},
	}})
	addrB := b.Addrs()["b"].String()
	before := time.Now()

	sub := mustConnect(t, addrB, packet.V5, "sub", withKeepAlive(30))
	sub.subscribe(1, "t/#", 1)
	pub := mustConnect(t, addrA, packet.V311, "pub")
	pub.publish(1, "t/1", "hello", 1, false)
	pub.publish(2, "t/2", "world", 0, false)
	sub.expectPublish("t/1", "hello")
	sub.expectPublish("t/2", "world")

	byName := map[string]ListenerStats{}
	eventually(t, 5*time.Second, "the subscriber's acks counted", func() bool {
		for _, ls := range b.ListenerStats() {
			byName[ls.Name] = ls
		}
		return byName["b"].BytesReceived > 0 && byName["a"].MessagesReceived == 2 && byName["b"].MessagesSent == 2
	})
	a, bb := byName["a"], byName["b"]
	if a.Address != addrA || bb.Address != addrB || a.Kind != KindTCP {
		t.Errorf("addresses %q %q kind %q; want %q %q tcp", a.Address, bb.Address, a.Kind, addrA, addrB)
	}
	if a.Connections != 1 || a.ConnectionsTotal != 1 || bb.Connections != 1 {
		t.Errorf("connections a=%d/%d b=%d; want 1/1 and 1", a.Connections, a.ConnectionsTotal, bb.Connections)
	}
	if a.MessagesSent != 0 || bb.MessagesReceived != 0 {
		t.Errorf("a sent %d, b received %d PUBLISH; want 0 and 0", a.MessagesSent, bb.MessagesReceived)
	}
	if a.BytesReceived < int64(len("hello")+len("world")) || bb.BytesSent < int64(len("hello")+len("world")) || a.BytesSent == 0 {
		t.Errorf("bytes: a in %d out %d, b out %d; want the payloads counted", a.BytesReceived, a.BytesSent, bb.BytesSent)
	}

	cl := b.Clients()
	if len(cl) != 2 || cl[0].ClientID != "pub" || cl[1].ClientID != "sub" {
		t.Fatalf("Clients() = %+v; want pub on a, then sub on b", cl)
	}
	if c := cl[1]; c.Listener != "b" || c.Version != "5.0" || c.KeepAlive != 30*time.Second ||
		c.Remote == "" || c.ConnectedAt.Before(before) || c.LastSeen.Before(c.ConnectedAt) {
		t.Errorf("sub: %+v", c)
	}
	if cl[0].Version != "3.1.1" || cl[0].Listener != "a" {
		t.Errorf("pub: %+v", cl[0])
	}

	// An in-process client is not listed; a disconnected one goes.
	ic, _, err := b.Attach(ClientOptions{ClientID: "inproc", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close(false)
	pub.disconnect()
	eventually(t, 5*time.Second, "pub gone", func() bool { return len(b.Clients()) == 1 })
	if cl := b.Clients(); cl[0].ClientID != "sub" {
		t.Errorf("Clients() = %+v; want sub alone", cl)
	}
	if ls := b.ListenerStats()[0]; ls.Connections != 0 || ls.ConnectionsTotal != 1 {
		t.Errorf("listener a after the disconnect: %d connected, %d in all; want 0 and 1", ls.Connections, ls.ConnectionsTotal)
	}
}
