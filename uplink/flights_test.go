package uplink

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/eclipse/paho.golang/packets"

	"github.com/outpost-gw/outpost/spool"
)

// memFlights is a FlightStore in memory.
type memFlights struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (f *memFlights) SetMany(_ context.Context, keys []string, vals [][]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, k := range keys {
		f.m[k] = slices.Clone(vals[i])
	}
	return nil
}

func (f *memFlights) Forget(_ context.Context, keys ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		delete(f.m, k)
	}
	return nil
}

func (f *memFlights) Scan(prefix string, fn func(string, []byte) error) error {
	f.mu.Lock()
	keys := slices.Sorted(maps.Keys(f.m))
	f.mu.Unlock()
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			if err := fn(k, f.m[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestFlightRecordRoundTrip(t *testing.T) {
	r := flightRec{pid: 65535, state: packets.PUBREL, order: 1 << 40, prio: 999, seq: 12345678901, at: 1700000000123456789}
	got, err := decodeFlight(recordKey(r.pid), r.encode())
	if err != nil || got != r {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", r, got, err)
	}
	for _, bad := range []struct{ key, val string }{
		{"f/0", string(r.encode())},
		{"f/65536", string(r.encode())},
		{"f/x", string(r.encode())},
		{"f/1", "\x02" + string(r.encode()[1:])},     // version
		{"f/1", "\x01\x05" + string(r.encode()[2:])}, // state
		{"f/1", string(r.encode()[:len(r.encode())-1])},
		{"f/1", string(r.encode()) + "\x00"},
	} {
		if _, err := decodeFlight(bad.key, []byte(bad.val)); err == nil {
			t.Errorf("decodeFlight(%q, % x) succeeded", bad.key, bad.val)
		}
	}
}

// restoreFlights resumes a recorded PUBLISH with its packet identifier
// and DUP, a recorded PUBREL as a PUBREL, and only releases the
// identifier of a record whose message is gone, or was replaced by
// another under the same sequence number (a dropped and remade queue).
func TestRestoreFlights(t *testing.T) {
	store, err := spool.New(spool.Options{Dir: t.TempDir(), MinFreeBytes: -1, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "spool", store.Run, store.Ready())
	q, err := store.Queue("uplink.x.p0", spool.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for _, topic := range []string{"a", "b", "c"} {
		recs = append(recs, AppendRecord(nil, &Record{Topic: topic, Payload: []byte(topic), QoS: 2}))
	}
	if _, err := q.Append(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	items, err := q.Read(0, 3)
	if err != nil || len(items) != 3 {
		t.Fatal(items, err)
	}
	at := func(i int) uint64 { return uint64(items[i].Time.UnixNano()) }
	fs := &memFlights{m: map[string][]byte{flightMarker: {flightVersion}}}
	put := func(r flightRec) { fs.m[recordKey(r.pid)] = r.encode() }
	put(flightRec{pid: 7, state: packets.PUBLISH, order: 1, prio: 0, seq: 1, at: at(0)})
	put(flightRec{pid: 3, state: packets.PUBREL, order: 2, prio: 0, seq: 2, at: at(1)})
	put(flightRec{pid: 9, state: packets.PUBLISH, order: 3, prio: 0, seq: 3, at: at(2) + 1}) // another message
	put(flightRec{pid: 4, state: packets.PUBLISH, order: 4, prio: 0, seq: 99, at: 1})        // gone
	put(flightRec{pid: 5, state: packets.PUBLISH, order: 5, prio: 4, seq: 1, at: at(0)})     // class removed

	c := &class{prio: 0, name: "uplink.x.p0", q: q, attempts: map[uint64]int{}, skip: map[uint64]bool{}}
	b := &Bridge{log: testLogger(), deps: Deps{Flights: fs}, classes: []*class{c}}
	sess := newSession()
	if err := b.restoreFlights(sess); err != nil {
		t.Fatal(err)
	}
	if sess.unknown || sess.order != 5 || len(sess.out) != 5 {
		t.Fatalf("session: unknown %v, order %d, %d flights", sess.unknown, sess.order, len(sess.out))
	}
	if f := sess.out[7]; f.cls != c || f.state != packets.PUBLISH || f.pkt == nil || f.pkt.PacketID != 7 || !f.pkt.Duplicate || f.pkt.QoS != 2 || f.pkt.Topic != "a" {
		t.Errorf("flight 7: %+v", f)
	}
	if f := sess.out[3]; f.cls != c || f.state != packets.PUBREL || f.seq != 2 {
		t.Errorf("flight 3: %+v", f)
	}
	for _, pid := range []uint16{9, 4, 5} {
		if f := sess.out[pid]; f.cls != nil || f.state != packets.PUBREL || f.pkt != nil {
			t.Errorf("flight %d is not only released: %+v", pid, f)
		}
	}
	if !c.skip[1] || !c.skip[2] || c.skip[3] || c.inflight.Load() != 2 {
		t.Errorf("class skips %v with %d in flight; want 1 and 2", c.skip, c.inflight.Load())
	}
}
