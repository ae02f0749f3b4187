package mqttsn

import (
	"testing"
	"time"
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
	for id, e := range tt.byID {
		o := out.topics.byID[id]
		if o == nil || o.name != e.name || o.byGateway != e.byGateway || o.known {
			t.Fatalf("id %d: %+v, want %+v (not known in a new connection)", id, o, e)
		}
		if out.topics.byName[e.name] != id {
			t.Fatalf("byName[%q] = %d, want %d", e.name, out.topics.byName[e.name], id)
		}
	}
	if n, ok := out.topics.name(id3); !ok || n != "e/f" {
		t.Fatalf("name(%d) = %q", id3, n)
	}
	if small, err := decodeRecord(b, 2); err != nil || len(small.topics.byID) != 2 {
		t.Fatalf("with a limit of 2: %v, %d ids", err, len(small.topics.byID))
	}
	noWill, err := decodeRecord(encodeRecord(&record{topics: newTopicTable(5)}), 5)
	if err != nil || noWill.will != nil || !noWill.expires.IsZero() || len(noWill.topics.byID) != 0 {
		t.Fatalf("empty record: %+v, %v", noWill, err)
	}
	for i := range len(b) {
		if _, err := decodeRecord(b[:i], 10); err == nil {
			t.Fatalf("a record cut to %d of %d bytes decoded", i, len(b))
		}
	}
	bad := encodeRecord(&record{topics: &topicTable{byID: map[uint16]*topicEntry{0xFFFF: {name: "x"}}, byName: map[string]uint16{}}})
	if _, err := decodeRecord(bad, 10); err == nil {
		t.Fatal("a record with the reserved id 0xFFFF decoded")
	}
	if _, err := decodeRecord([]byte{2}, 10); err == nil {
		t.Fatal("a record of version 2 decoded")
	}
}
