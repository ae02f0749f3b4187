package localbroker

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// failingStore is the real KV persistence whose StoreQueued fails while
// fail is set, as a full disk makes it.
type failingStore struct {
	*kvPersistence
	fail atomic.Bool
}

var errStoreFull = errors.New("no space left for the message")

func (f *failingStore) StoreQueued(clientID string, pm *PendingMessage) error {
	if f.fail.Load() {
		return errStoreFull
	}
	return f.kvPersistence.StoreQueued(clientID, pm)
}

// TestDeliveryStoreFailureWithholdsTheAck: when the copy of a QoS 1/2
// message for a persistent session cannot be stored, the publisher is not
// told the message is safe (5.0: an error reason code; 3.1.1: no
// acknowledgement, so it sends again), whether the session is offline or
// connected. A connected subscriber still gets the message.
func TestDeliveryStoreFailureWithholdsTheAck(t *testing.T) {
	st, _ := openSpool(t, t.TempDir())
	kv, err := st.KV("broker")
	if err != nil {
		t.Fatal(err)
	}
	f := &failingStore{kvPersistence: NewKVPersistence(kv).(*kvPersistence)}
	b, addr, _ := runBroker(t, Deps{Persistence: f})

	away := mustConnect(t, addr, packet.V5, "away", withClean(true), withExpiry(3600))
	away.subscribe(1, "offline/#", 1)
	away.disconnect()
	waitOffline(t, b, "away")
	here := mustConnect(t, addr, packet.V5, "here", withClean(true), withExpiry(3600))
	here.subscribe(1, "online/#", 2)

	pub5 := mustConnect(t, addr, packet.V5, "pub5")
	pub3 := mustConnect(t, addr, packet.V311, "pub3")

	// While the store works, each is acknowledged as usual.
	pub5.publish(1, "offline/a", "stored", 1, false)
	pub5.publish(2, "online/a", "stored", 2, false)
	if p := expect[*packet.Publish](here); string(p.Payload) != "stored" {
		t.Fatalf("online subscriber got %q", p.Payload)
	}
	here.send(&packet.Ack{Kind: packet.TypePubrec, PacketID: 1})
	expect[*packet.Ack](here) // PUBREL
	here.send(&packet.Ack{Kind: packet.TypePubcomp, PacketID: 1})

	f.fail.Store(true)
	for i, tc := range []struct {
		topic string
		qos   byte
		want  packet.Type
	}{
		{"offline/b", 1, packet.TypePuback},
		{"online/b", 1, packet.TypePuback},
		{"offline/c", 2, packet.TypePubrec},
		{"online/c", 2, packet.TypePubrec},
	} {
		pid := uint16(10 + i)
		pub5.send(&packet.Publish{Topic: tc.topic, Payload: []byte("unsafe"), QoS: tc.qos, PacketID: pid})
		a := expect[*packet.Ack](pub5)
		if a.Kind != tc.want || a.PacketID != pid {
			t.Fatalf("%s: got %s %d, want %s %d", tc.topic, a.Kind, a.PacketID, tc.want, pid)
		}
		if a.ReasonCode != packet.ImplementationSpecificError {
			t.Fatalf("%s QoS %d: reason %s, want %s: the copy for the persistent session is not on disk",
				tc.topic, tc.qos, a.ReasonCode, packet.ImplementationSpecificError)
		}
	}
	// The connected subscriber got both online messages all the same.
	for range 2 {
		p := expect[*packet.Publish](here)
		if p.Topic != "online/b" && p.Topic != "online/c" {
			t.Fatalf("online subscriber got %q", p.Topic)
		}
		if p.QoS == 1 {
			here.send(&packet.Ack{Kind: packet.TypePuback, PacketID: p.PacketID})
		} else {
			here.send(&packet.Ack{Kind: packet.TypePubrec, PacketID: p.PacketID})
			expect[*packet.Ack](here)
			here.send(&packet.Ack{Kind: packet.TypePubcomp, PacketID: p.PacketID})
		}
	}

	// 3.1.1 has no reason codes: the acknowledgement is withheld.
	pub3.send(&packet.Publish{Topic: "offline/d", Payload: []byte("unsafe"), QoS: 1, PacketID: 20})
	pub3.expectNothing(300 * time.Millisecond)

	// Space again: the 3.1.1 publisher's resend is acknowledged.
	f.fail.Store(false)
	pub3.send(&packet.Publish{Topic: "offline/d", Payload: []byte("unsafe"), QoS: 1, PacketID: 20, Dup: true})
	if a := expect[*packet.Ack](pub3); a.Kind != packet.TypePuback || a.PacketID != 20 {
		t.Fatalf("got %s %d after the resend, want PUBACK 20", a.Kind, a.PacketID)
	}

	// A subscription that is not persistent stores nothing and is
	// unaffected by the store.
	f.fail.Store(true)
	clean := mustConnect(t, addr, packet.V5, "clean")
	clean.subscribe(1, "plain/#", 1)
	pub5.send(&packet.Publish{Topic: "plain/x", Payload: []byte("fine"), QoS: 1, PacketID: 30})
	if a := expect[*packet.Ack](pub5); a.PacketID != 30 || a.ReasonCode != packet.Success {
		t.Fatalf("plain/x: %s %d reason %s, want PUBACK 30 success", a.Kind, a.PacketID, a.ReasonCode)
	}
	if p := expect[*packet.Publish](clean); string(p.Payload) != "fine" {
		t.Fatalf("clean subscriber got %q", p.Payload)
	}
}
