package topic

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// sub is the value the tests store: the filter it was added with, so that a
// visit tells which subscription matched.
type sub struct {
	filter string
	qos    byte
}

// visits returns "key filter" for each subscription t.Match visits, sorted.
func visits(t *Tree[string, sub], topic string) []string {
	var out []string
	t.Match(topic, func(k string, v sub) { out = append(out, k+" "+v.filter) })
	slices.Sort(out)
	return out
}

// countNodes counts the trie's nodes below and including n.
func countNodes[K comparable, V any](n *node[K, V]) int {
	c := 1
	if n.plus != nil {
		c += countNodes(n.plus)
	}
	for _, k := range n.children {
		c += countNodes(k)
	}
	for _, k := range n.kids {
		c += countNodes(k)
	}
	return c
}

func TestTreeMatchCases(t *testing.T) {
	var tr Tree[string, sub]
	for _, c := range matchCases {
		if ValidFilter(c.filter, 0, 0) == nil {
			tr.Add(c.filter, "k", sub{filter: c.filter})
		}
	}
	for _, c := range matchCases {
		if ValidFilter(c.filter, 0, 0) != nil || ValidName(c.topic, 0, 0) != nil {
			continue
		}
		t.Run(c.spec+"/"+c.filter+"~"+c.topic, func(t *testing.T) {
			got := slices.Contains(visits(&tr, c.topic), "k "+c.filter)
			if got != c.want {
				t.Errorf("Tree.Match(%q) visits %q: %v, want %v", c.topic, c.filter, got, c.want)
			}
		})
	}
}

func TestTreeOverlappingSubscriptions(t *testing.T) {
	var tr Tree[string, sub]
	// One client, three overlapping filters: visited once per filter.
	tr.Add("sport/tennis/player1", "c1", sub{"sport/tennis/player1", 0})
	tr.Add("sport/+/player1", "c1", sub{"sport/+/player1", 1})
	tr.Add("sport/#", "c1", sub{"sport/#", 2})
	tr.Add("sport/#", "c2", sub{"sport/#", 1})
	tr.Add("#", "c3", sub{"#", 0})
	tr.Add("sport/tennis/player2", "c4", sub{"sport/tennis/player2", 0})
	got := visits(&tr, "sport/tennis/player1")
	want := []string{"c1 sport/#", "c1 sport/+/player1", "c1 sport/tennis/player1", "c2 sport/#", "c3 #"}
	if !slices.Equal(got, want) {
		t.Errorf("visits = %q, want %q", got, want)
	}
	var qos byte
	tr.Match("sport/tennis/player1", func(k string, v sub) {
		if k == "c1" {
			qos = max(qos, v.qos)
		}
	})
	if qos != 2 {
		t.Errorf("merged QoS of c1 = %d, want 2", qos)
	}
	if tr.Len() != 6 {
		t.Errorf("Len = %d, want 6", tr.Len())
	}
}

func TestTreeAddReplaces(t *testing.T) {
	var tr Tree[string, sub]
	if tr.Add("a/+", "c1", sub{"a/+", 0}) {
		t.Error("first Add reported replaced")
	}
	if !tr.Add("a/+", "c1", sub{"a/+", 1}) {
		t.Error("second Add did not report replaced")
	}
	if tr.Add("a/+", "c2", sub{"a/+", 0}) {
		t.Error("Add of another key reported replaced")
	}
	if tr.Add("a/#", "c1", sub{"a/#", 0}) {
		t.Error("Add of another filter reported replaced")
	}
	if n := tr.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
	if v, ok := tr.Get("a/+", "c1"); !ok || v.qos != 1 {
		t.Errorf("Get = %v, %v; want qos 1", v, ok)
	}
	if _, ok := tr.Get("a/+", "c3"); ok {
		t.Error("Get of an unknown key reported ok")
	}
	if _, ok := tr.Get("a/b", "c1"); ok {
		t.Error("Get of an unknown filter reported ok")
	}
	n := 0
	tr.Match("a/b", func(k string, v sub) {
		n++
		if k == "c1" && v.filter == "a/+" && v.qos != 1 {
			t.Errorf("visited old value %v", v)
		}
	})
	if n != 3 {
		t.Errorf("visits = %d, want 3", n)
	}
}

func TestTreeRemovePrunes(t *testing.T) {
	filters := []string{
		"a", "a/b", "a/b/c", "a/+/c", "a/#", "+", "+/+", "#", "/", "//", "/#",
		"a//b", "/a", "+/#", "$SYS/#", "$SYS/+/x", "a/b/c/d/e/f/g",
	}
	var tr Tree[string, sub]
	for _, f := range filters {
		for _, k := range []string{"c1", "c2"} {
			tr.Add(f, k, sub{filter: f})
		}
	}
	if tr.Len() != 2*len(filters) {
		t.Fatalf("Len = %d, want %d", tr.Len(), 2*len(filters))
	}
	before := countNodes(&tr.root)
	if tr.Remove("a/b/x", "c1") || tr.Remove("a/b", "c3") || tr.Remove("x/#", "c1") || tr.Remove("", "c1") {
		t.Error("Remove of an absent subscription reported true")
	}
	if n := countNodes(&tr.root); n != before {
		t.Errorf("absent Removes changed node count %d -> %d", before, n)
	}
	for i, f := range filters {
		if !tr.Remove(f, "c1") {
			t.Errorf("Remove(%q, c1) = false", f)
		}
		if tr.Remove(f, "c1") {
			t.Errorf("second Remove(%q, c1) = true", f)
		}
		if got := visits(&tr, "a/b/c"); slices.Contains(got, "c1 "+f) {
			t.Errorf("removed %q still visited", f)
		}
		if tr.Len() != 2*len(filters)-i-1 {
			t.Errorf("Len = %d, want %d", tr.Len(), 2*len(filters)-i-1)
		}
	}
	if n := countNodes(&tr.root); n != before {
		t.Errorf("c2 still holds every filter, but node count %d -> %d", before, n)
	}
	// Remove in reverse order of depth to exercise pruning of parents that
	// still had children when their own subscriptions went.
	for _, f := range filters {
		if !tr.Remove(f, "c2") {
			t.Errorf("Remove(%q, c2) = false", f)
		}
	}
	if tr.Len() != 0 {
		t.Errorf("Len = %d, want 0", tr.Len())
	}
	if !tr.root.empty() || countNodes(&tr.root) != 1 {
		t.Errorf("tree not pruned: %d nodes left", countNodes(&tr.root))
	}
}

func TestTreePruneKeepsSiblings(t *testing.T) {
	var tr Tree[string, sub]
	tr.Add("a/b/c/d", "k", sub{filter: "a/b/c/d"})
	tr.Add("a/b", "k", sub{filter: "a/b"})
	tr.Add("a/+/c", "k", sub{filter: "a/+/c"})
	tr.Remove("a/b/c/d", "k")
	// a, a/b, a/+, a/+/c remain, plus the root.
	if n := countNodes(&tr.root); n != 5 {
		t.Errorf("nodes = %d, want 5", n)
	}
	if got := visits(&tr, "a/b/c"); !slices.Equal(got, []string{"k a/+/c"}) {
		t.Errorf("visits(a/b/c) = %q", got)
	}
	tr.Remove("a/+/c", "k")
	if n := countNodes(&tr.root); n != 3 {
		t.Errorf("nodes = %d, want 3", n)
	}
	if got := visits(&tr, "a/b"); !slices.Equal(got, []string{"k a/b"}) {
		t.Errorf("visits(a/b) = %q", got)
	}
}

// [MQTT-4.7.2-1]
func TestTreeDollarTopics_MQTT_4_7_2_1(t *testing.T) {
	var tr Tree[string, sub]
	for _, f := range []string{"#", "+/monitor/Clients", "+/#", "$SYS/#", "$SYS/monitor/+", "+"} {
		tr.Add(f, "k", sub{filter: f})
	}
	got := visits(&tr, "$SYS/monitor/Clients")
	want := []string{"k $SYS/#", "k $SYS/monitor/+"}
	if !slices.Equal(got, want) {
		t.Errorf("visits($SYS/monitor/Clients) = %q, want %q", got, want)
	}
	if got := visits(&tr, "$SYS"); !slices.Equal(got, []string{"k $SYS/#"}) {
		t.Errorf("visits($SYS) = %q", got)
	}
	// '$' elsewhere than the first character is an ordinary character.
	got = visits(&tr, "x/monitor/Clients")
	want = []string{"k #", "k +/#", "k +/monitor/Clients"}
	if !slices.Equal(got, want) {
		t.Errorf("visits(x/monitor/Clients) = %q, want %q", got, want)
	}
}

// '#' matches the parent level (§4.7.1.2): "sport/#" matches "sport".
func TestTreeHashMatchesParent_MQTT_4_7_1_1(t *testing.T) {
	var tr Tree[string, sub]
	tr.Add("sport/#", "k", sub{filter: "sport/#"})
	tr.Add("sport/tennis/#", "k", sub{filter: "sport/tennis/#"})
	tr.Add("+/#", "k", sub{filter: "+/#"})
	for topic, want := range map[string][]string{
		"sport":          {"k +/#", "k sport/#"},
		"sport/":         {"k +/#", "k sport/#"},
		"sport/tennis":   {"k +/#", "k sport/#", "k sport/tennis/#"},
		"sport/tennis/x": {"k +/#", "k sport/#", "k sport/tennis/#"},
		"sports":         {"k +/#"},
	} {
		if got := visits(&tr, topic); !slices.Equal(got, want) {
			t.Errorf("visits(%q) = %q, want %q", topic, got, want)
		}
	}
}

func TestTreeEmptyLevels(t *testing.T) {
	var tr Tree[string, sub]
	for _, f := range []string{"a//b", "a/+/b", "/a", "+/a", "/", "+/+", "a/b", "//#"} {
		tr.Add(f, "k", sub{filter: f})
	}
	for topic, want := range map[string][]string{
		"a//b": {"k a/+/b", "k a//b"},
		"a/b":  {"k +/+", "k a/b"},
		"/a":   {"k +/+", "k +/a", "k /a"},
		"/":    {"k +/+", "k /", "k //#"}, // "//#" matches its parent "/"
		"//":   {"k //#"},
		"a":    nil,
	} {
		if got := visits(&tr, topic); !slices.Equal(got, want) {
			t.Errorf("visits(%q) = %q, want %q", topic, got, want)
		}
	}
	if got := visits(&tr, ""); got != nil {
		t.Errorf("visits(\"\") = %q, want none", got)
	}
}

// Many keys on one filter switch the subscription list to an index; adds,
// replaces and removes must stay consistent through the switch both ways.
func TestTreeManyKeysOnOneFilter(t *testing.T) {
	var tr Tree[int, int]
	const n = 200
	for k := range n {
		tr.Add("sensors/#", k, k)
	}
	for k := range n {
		if !tr.Add("sensors/#", k, k*10) {
			t.Fatalf("re-Add of key %d not reported as replace", k)
		}
	}
	for k := 0; k < n; k += 2 {
		if !tr.Remove("sensors/#", k) {
			t.Fatalf("Remove key %d = false", k)
		}
	}
	seen := map[int]int{}
	tr.Match("sensors/x", func(k, v int) { seen[k]++; _ = v })
	for k := range n {
		want := k % 2
		if seen[k] != want {
			t.Fatalf("key %d visited %d times, want %d", k, seen[k], want)
		}
	}
	for k := 1; k < n; k += 2 {
		if v, ok := tr.Get("sensors/#", k); !ok || v != k*10 {
			t.Fatalf("Get key %d = %d, %v", k, v, ok)
		}
	}
	// Shrink below the index threshold and keep going.
	for k := 1; k < n-4; k += 2 {
		tr.Remove("sensors/#", k)
	}
	seen = map[int]int{}
	tr.Match("sensors", func(k, v int) { seen[k]++ })
	if len(seen) != 2 || seen[n-3] != 1 || seen[n-1] != 1 {
		t.Fatalf("after shrinking, visited %v", seen)
	}
	tr.Remove("sensors/#", n-3)
	tr.Remove("sensors/#", n-1)
	if tr.Len() != 0 || countNodes(&tr.root) != 1 {
		t.Fatalf("Len = %d, nodes = %d after removing all", tr.Len(), countNodes(&tr.root))
	}
}

// The broker keeps a shared subscription group as its own key type with the
// group's state as the value, under the inner filter.
func TestTreeSharedGroupAsKey(t *testing.T) {
	type key struct {
		client string // "" for a group
		group  string // "" for a client
	}
	type val struct{ members []string }
	var tr Tree[key, *val]
	g, inner, shared, err := ParseShared("$share/g1/sensors/+/temp")
	if err != nil || !shared {
		t.Fatalf("ParseShared: %v %v", shared, err)
	}
	gv := &val{members: []string{"c1", "c2"}}
	tr.Add(inner, key{group: g}, gv)
	tr.Add("sensors/#", key{client: "c3"}, &val{})
	var got []key
	tr.Match("sensors/kitchen/temp", func(k key, v *val) {
		got = append(got, k)
		if k.group == "g1" && v != gv {
			t.Errorf("group value %p, want %p", v, gv)
		}
	})
	if len(got) != 2 {
		t.Errorf("visited %v, want the group and c3", got)
	}
}

// Node names are cut from a private copy of the filter, not from the
// caller's string, which may be a view of a large packet buffer.
func TestTreeDoesNotPinFilter(t *testing.T) {
	var tr Tree[string, int]
	filter := string([]byte("room/kitchen/temp"))
	tr.Add(filter, "k", 1)
	start := uintptr(unsafe.Pointer(unsafe.StringData(filter)))
	for _, c := range tr.root.kids {
		p := uintptr(unsafe.Pointer(unsafe.StringData(c.name)))
		if p >= start && p < start+uintptr(len(filter)) {
			t.Errorf("node name %q aliases the caller's filter", c.name)
		}
	}
}

func TestTreeMatchDoesNotAllocate(t *testing.T) {
	tr := benchTree(1000)
	topic := benchTopic
	n := 0
	fn := func(string, int) { n++ }
	allocs := testing.AllocsPerRun(100, func() { tr.Match(topic, fn) })
	if allocs != 0 {
		t.Errorf("allocs = %v, want 0", allocs)
	}
	if n == 0 {
		t.Error("no match visited")
	}
}

// Concurrent Add, Remove, Match and Len; run with -race.
func TestTreeConcurrent(t *testing.T) {
	var tr Tree[int, int]
	const workers, rounds = 4, 300
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				f := fmt.Sprintf("w%d/%d/+", w, i%10)
				tr.Add(f, i, i)
				tr.Add("#", w*rounds+i, i)
				seen := false
				tr.Match(strings.Replace(f, "+", "x", 1), func(k, v int) {
					if k == i && v == i {
						seen = true
					}
				})
				if !seen {
					errs <- fmt.Errorf("worker %d: own subscription %q/%d not visited", w, f, i)
					return
				}
				if !tr.Remove(f, i) {
					errs <- fmt.Errorf("worker %d: Remove(%q, %d) = false", w, f, i)
					return
				}
				_ = tr.Len()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if tr.Len() != workers*rounds {
		t.Errorf("Len = %d, want %d (the '#' subscriptions)", tr.Len(), workers*rounds)
	}
}
