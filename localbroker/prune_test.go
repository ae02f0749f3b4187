package localbroker

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// gatedPrune holds a reconnection's PruneQueued, once armed, until the
// test let a delivery to the session happen in between.
type gatedPrune struct {
	*kvPersistence
	armed                   atomic.Bool
	entered, resume, pruned chan struct{}
}

func (g *gatedPrune) PruneQueued(clientID string, keep func(seq uint64) bool) error {
	if !g.armed.CompareAndSwap(true, false) {
		return g.kvPersistence.PruneQueued(clientID, keep)
	}
	close(g.entered)
	<-g.resume
	err := g.kvPersistence.PruneQueued(clientID, keep)
	close(g.pruned)
	return err
}

// TestPruneKeepsDeliveriesStoredMeanwhile: a message delivered to a
// persistent session while its reconnection prunes the stored deliveries
// keeps its record; the prune only drops what the session held no more
// when it looked. Otherwise a kill -9 right after would lose a message
// whose publisher was acknowledged.
func TestPruneKeepsDeliveriesStoredMeanwhile(t *testing.T) {
	st, _ := openSpool(t, t.TempDir())
	kv, err := st.KV("broker")
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedPrune{kvPersistence: NewKVPersistence(kv).(*kvPersistence),
		entered: make(chan struct{}), resume: make(chan struct{}), pruned: make(chan struct{})}
	b, addr, _ := runBroker(t, Deps{Persistence: g})

	keeper := mustConnect(t, addr, packet.V5, "keeper", withClean(true), withExpiry(3600))
	keeper.subscribe(1, "cmd/#", 1)
	keeper.disconnect()
	waitOffline(t, b, "keeper")
	pub := mustConnect(t, addr, packet.V5, "pub")

	g.armed.Store(true)
	c := dial(t, addr, packet.V5)
	cp := &packet.Connect{ProtocolName: "MQTT", ProtocolVersion: packet.V5, ClientID: "keeper", KeepAlive: 60}
	withExpiry(3600)(cp)
	c.send(cp)
	wait := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s after 30s", what)
		}
	}
	wait(g.entered, "prune at the reconnection")
	pub.publish(1, "cmd/x", "meanwhile", 1, false) // acknowledged: stored
	close(g.resume)
	wait(g.pruned, "end of the prune")
	if ca := expect[*packet.Connack](c); !ca.SessionPresent {
		t.Fatal("session not present")
	}
	// The client has not acknowledged the message (this one never
	// does): its record must still be there.
	n := 0
	if err := kv.Scan(queuedPrefix("keeper"), func(key string, _ []byte) error {
		if strings.HasPrefix(key, queuedPrefix("keeper")) {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d stored deliveries after the reconnection, want 1 (the message delivered during it)", n)
	}
}
