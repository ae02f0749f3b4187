package mqttsn

import (
	"net"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
	"github.com/outpost-gw/outpost/spool"
)

// A stored session reads back as written: topic ids with who assigned
// them, the next id, will data, QoS 2 ids and expiry; a table beyond a
// lowered limit keeps what fits; truncated or inconsistent records fail.
func TestRecordRoundTrip(t *testing.T) {
	tt := newTopicTable(10)
	tt.assign("a/b", false)
	tt.assign("c/d", true)
	id3, _, _ := tt.assign("e/f", false)
	exp := time.Unix(1700000000, 123)
	in := &record{topics: tt, will: &willData{topic: "w/t", qos: 1, retain: true, msg: []byte("bye")},
		inQoS2: []uint16{7, 9}, expires: exp}
	b := encodeRecord(in)
	out, err := decodeRecord(b, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !out.expires.Equal(exp) || out.topics.next != tt.next || len(out.inQoS2) != 2 || out.inQoS2[1] != 9 {
		t.Fatalf("decoded %+v", out)
	}
	if w := out.will; w == nil || w.topic != "w/t" || w.qos != 1 || !w.retain || string(w.msg) != "bye" {
		t.Fatalf("will %+v", out.will)
	}
	tt.each(func(e *topicEntry) {
		o := out.topics.get(e.id)
		if o == nil || o.name != e.name || o.byGateway != e.byGateway || o.known {
			t.Fatalf("id %d: %+v, want %+v (not known in a new connection)", e.id, o, e)
		}
		if f := out.topics.find(e.name); f != o {
			t.Fatalf("find(%q) = %+v, want %+v", e.name, f, o)
		}
	})
	if n, ok := out.topics.name(id3); !ok || n != "e/f" {
		t.Fatalf("name(%d) = %q", id3, n)
	}
	if small, err := decodeRecord(b, 2); err != nil || small.topics.len() != 2 {
		t.Fatalf("with a limit of 2: %v, %d ids", err, small.topics.len())
	}
	noWill, err := decodeRecord(encodeRecord(&record{topics: newTopicTable(5)}), 5)
	if err != nil || noWill.will != nil || !noWill.expires.IsZero() || noWill.topics.len() != 0 {
		t.Fatalf("empty record: %+v, %v", noWill, err)
	}
	for i := range len(b) {
		if _, err := decodeRecord(b[:i], 10); err == nil {
			t.Fatalf("a record cut to %d of %d bytes decoded", i, len(b))
		}
	}
	bad := encodeRecord(&record{topics: &topicTable{small: []*topicEntry{{id: 0xFFFF, name: "x"}}}})
	if _, err := decodeRecord(bad, 10); err == nil {
		t.Fatal("a record with the reserved id 0xFFFF decoded")
	}
	for _, w := range []*willData{{topic: "w", qos: 3}, {topic: "w/#", qos: 1}} {
		if _, err := decodeRecord(encodeRecord(&record{topics: newTopicTable(1), will: w}), 10); err == nil {
			t.Fatalf("a record with the will %+v decoded", w)
		}
	}
	if _, err := decodeRecord([]byte{2}, 10); err == nil {
		t.Fatal("a record of version 2 decoded")
	}
}

// A topic id is on disk before its REGACK or SUBACK: a second gateway
// reading the same spool while the first one still runs (as after a kill
// -9 of the first) knows the ids of a CleanSession=false client, and forgets
// them once that client connects with CleanSession=true.
func TestTopicIDsStoredBeforeTheAnswer(t *testing.T) {
	st, err := spool.New(spool.Options{Dir: t.TempDir(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	runUntilStopped(t, "spool", st.Run, st.Ready())
	kv, err := st.KV("mqttsn")
	if err != nil {
		t.Fatal(err)
	}
	start := func() *env {
		b, tcp := startBroker(t)
		g, err := New(Options{Transports: []Transport{{Name: "udp", Addr: "127.0.0.1:0"}}, Logger: testLogger()},
			Deps{Broker: b, Store: kv})
		if err != nil {
			t.Fatal(err)
		}
		runUntilStopped(t, "gateway", g.Run, g.Ready())
		return &env{b: b, tcp: tcp, g: g, gwAddr: g.Addrs()["udp"].(*net.UDPAddr)}
	}
	first := start()
	c := newSNClient(t, first.gwAddr)
	c.connect("durable", false, 60)
	c.register("pad/1")
	id := c.register("d/t")
	subID := c.subscribe(packet.TopicIDNormal, "d/cmd", 0, packet.QoS1).TopicID

	second := start()
	if s := second.g.Stats(); s.SavedSessions != 1 {
		t.Fatalf("second gateway: %d saved sessions, want 1", s.SavedSessions)
	}
	w := watch(t, second.b, "d/#")
	c2 := newSNClient(t, second.gwAddr)
	c2.connect("durable", false, 60)
	c2.publish(packet.TopicIDNormal, id, packet.QoS1, false, "kept")
	w.expect("d/t", "kept")
	c2.send(&packet.Register{MsgID: 77, TopicName: []byte("d/cmd")})
	if ra := expect[*packet.Regack](c2); ra.TopicID != subID {
		t.Fatalf("REGACK %+v for the name subscribed before: want its id %d", ra, subID)
	}

	c2.connect("durable", true, 60)
	third := start()
	if s := third.g.Stats(); s.SavedSessions != 0 {
		t.Fatalf("after a clean session: %d saved sessions, want 0", s.SavedSessions)
	}
}

// Any bytes in the store decode to a record or an error, never a panic;
// what decodes encodes to a record that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	tt := newTopicTable(10)
	tt.assign("a/b", false)
	tt.assign("c", true)
	f.Add(encodeRecord(&record{topics: tt, will: &willData{topic: "w", msg: []byte("m")}, inQoS2: []uint16{3}, expires: time.Unix(5, 0)}))
	f.Add(encodeRecord(&record{topics: newTopicTable(1)}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b, 100)
		if err != nil {
			return
		}
		again, err := decodeRecord(encodeRecord(r), 100)
		if err != nil {
			t.Fatalf("a decoded record does not decode once encoded: %v", err)
		}
		if !again.expires.Equal(r.expires) || again.topics.len() != r.topics.len() ||
			again.topics.next != r.topics.next || len(again.inQoS2) != len(r.inQoS2) || (again.will == nil) != (r.will == nil) {
			t.Fatalf("round trip: %+v, want %+v", again, r)
		}
		r.topics.each(func(e *topicEntry) {
			if o := again.topics.get(e.id); o == nil || o.name != e.name || o.byGateway != e.byGateway {
				t.Fatalf("id %d: %+v, want %+v", e.id, o, e)
			}
		})
	})
}
