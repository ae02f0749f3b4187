package mqttsn

import (
	"fmt"
	"testing"
)

// A topic table behaves the same whether it holds its entries in the small
// slice or, beyond smallTopics, in maps: ids are unique and found by id and
// by name, a full table refuses client names and reuses the least recently
// used gateway entry, and a forgotten id and name are gone.
func TestTopicTableSmallAndLarge(t *testing.T) {
	for _, max := range []int{3, smallTopics, smallTopics + 1, 3 * smallTopics} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			tt := newTopicTable(max)
			ids := map[uint16]string{}
			// All but the last two by the client, those by the gateway.
			for i := range max {
				name := fmt.Sprintf("t/%d", i)
				id, e, ok := tt.assign(name, i >= max-2)
				if !ok || e == nil || e.name != name || e.id != id || ids[id] != "" {
					t.Fatalf("assign(%q) = %d, %+v, %v", name, id, e, ok)
				}
				ids[id] = name
			}
			if tt.len() != max {
				t.Fatalf("len %d, want %d", tt.len(), max)
			}
			if large := tt.byID != nil; large != (max > smallTopics) {
				t.Fatalf("maps in use: %v with %d entries", large, max)
			}
			for id, name := range ids {
				if n, ok := tt.name(id); !ok || n != name {
					t.Fatalf("name(%d) = %q, %v, want %q", id, n, ok, name)
				}
				if got, e := tt.lookup(name); e == nil || got != id {
					t.Fatalf("lookup(%q) = %d, want %d", name, got, id)
				}
				if again, _, ok := tt.assign(name, true); !ok || again != id {
					t.Fatalf("assign(%q) again = %d, %v, want %d", name, again, ok, id)
				}
			}
			if _, _, ok := tt.assign("client/new", false); ok {
				t.Fatal("a full table took a name registered by the client")
			}
			// The second to last gateway entry is now used least recently.
			lastGW := fmt.Sprintf("t/%d", max-1)
			tt.lookup(lastGW)
			victim, _ := tt.lookup(fmt.Sprintf("t/%d", max-2))
			tt.lookup(lastGW) // t/max-1 used last, t/max-2 before it
			id, e, ok := tt.assign("gw/new", true)
			if !ok || e == nil {
				t.Fatal("a full table did not reuse a gateway entry")
			}
			if tt.get(victim) != nil && tt.get(victim).name == fmt.Sprintf("t/%d", max-2) {
				t.Fatalf("t/%d (least recently used) was kept", max-2)
			}
			if _, e := tt.lookup(fmt.Sprintf("t/%d", max-2)); e != nil {
				t.Fatal("the reused entry's name is still found")
			}
			if _, e := tt.lookup(lastGW); e == nil {
				t.Fatal("the more recently used gateway entry was reused")
			}
			if tt.len() != max {
				t.Fatalf("len %d after reuse, want %d", tt.len(), max)
			}
			tt.forget(id)
			if tt.get(id) != nil || tt.find("gw/new") != nil || tt.len() != max-1 {
				t.Fatalf("forget(%d) left %+v, %+v, len %d", id, tt.get(id), tt.find("gw/new"), tt.len())
			}
			tt.unknowAll()
			n := 0
			tt.each(func(e *topicEntry) {
				n++
				if e.known {
					t.Fatalf("%q known after unknowAll", e.name)
				}
			})
			if n != max-1 {
				t.Fatalf("each visited %d entries, want %d", n, max-1)
			}
		})
	}
}

// freeID skips ids in use, 0x0000 and 0xFFFF, in both forms of the table.
func TestTopicTableFreeID(t *testing.T) {
	for _, n := range []int{2, smallTopics + 2} {
		tt := newTopicTable(100)
		for range n {
			tt.assign(fmt.Sprint(tt.len()), false)
		}
		tt.next = 0xFFFE
		id, _, _ := tt.assign("wrap", false)
		if id != uint16(n+1) {
			t.Fatalf("%d entries: id after 0xFFFE is %d, want %d", n, id, n+1)
		}
	}
}
