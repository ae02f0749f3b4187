package uplink

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/eclipse/paho.golang/packets"
)

// recordingConn is a net.Conn that records each Write.
type recordingConn struct {
	net.Conn // nil: only Write and Close are used
	mu       sync.Mutex
	writes   []string
	fail     error
	closed   bool
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return 0, r.fail
	}
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recordingConn) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func (r *recordingConn) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

// paho writes a packet in several Writes under the connection's lock;
// packetConn sends it in one. While held, packets gather until release.
func TestPacketConnGathersWrites(t *testing.T) {
	rc := &recordingConn{}
	pc := newPacketConn(rc)
	pub := &packets.Publish{QoS: 1, PacketID: 7, Topic: "a/b", Payload: []byte("xyz"), Properties: &packets.Properties{}}
	if _, err := pub.WriteTo(pc); err != nil {
		t.Fatal(err)
	}
	w := rc.got()
	if len(w) != 1 {
		t.Fatalf("one PUBLISH took %d writes: %q", len(w), w)
	}
	var want strings.Builder
	if _, err := pub.ToControlPacket().WriteTo(&want); err != nil {
		t.Fatal(err)
	}
	if w[0] != want.String() {
		t.Fatalf("sent % X, want % X", w[0], want.String())
	}

	pc.hold()
	var acks strings.Builder
	for id := uint16(1); id <= 3; id++ {
		ack := &packets.Puback{PacketID: id, Properties: &packets.Properties{}}
		if _, err := ack.WriteTo(pc); err != nil {
			t.Fatal(err)
		}
		if _, err := ack.WriteTo(&acks); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rc.got()); n != 1 {
		t.Fatalf("%d writes while held; want none beyond the first packet", n-1)
	}
	pc.release()
	w = rc.got()
	if len(w) != 2 || w[1] != acks.String() {
		t.Fatalf("after release: %q; want the three PUBACKs in one write", w)
	}
	pc.release() // nothing gathered: no write
	if n := len(rc.got()); n != 2 {
		t.Fatalf("an empty release wrote: %q", rc.got())
	}
}

// A failed send closes the connection (paho's reader notices) and fails
// the writes after it.
func TestPacketConnSendFailure(t *testing.T) {
	boom := errors.New("boom")
	rc := &recordingConn{fail: boom}
	pc := newPacketConn(rc)
	if _, err := (&packets.Puback{PacketID: 1, Properties: &packets.Properties{}}).WriteTo(pc); err != nil {
		t.Fatalf("the failure shows at the next write, not this one: %v", err)
	}
	if !rc.closed {
		t.Fatal("the connection is still open after a failed send")
	}
	if _, err := (&packets.Puback{PacketID: 2, Properties: &packets.Properties{}}).WriteTo(pc); !errors.Is(err, boom) {
		t.Fatalf("write after a failed send: %v, want %v", err, boom)
	}
}
