package topic

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"unsafe"
)

// walked returns the topics r.Walk visits for filter, sorted.
func walked[V any](r *Retained[V], filter string) []string {
	var out []string
	r.Walk(filter, func(topic string, _ V) bool {
		out = append(out, topic)
		return true
	})
	slices.Sort(out)
	return out
}

// countRNodes counts the trie's nodes below and including n.
func countRNodes[V any](n *rnode[V]) int {
	c := 1
	for _, k := range n.children {
		c += countRNodes(k)
	}
	return c
}

func TestRetainedSetGetDelete(t *testing.T) {
	var r Retained[string]
	if _, ok := r.Get("a"); ok {
		t.Error("Get on empty store reported ok")
	}
	r.Set("a/b", "1")
	r.Set("a/b", "2")
	r.Set("a", "3")
	r.Set("", "ignored")
	if r.Len() != 2 {
		t.Errorf("Len = %d, want 2", r.Len())
	}
	for topic, want := range map[string]string{"a/b": "2", "a": "3"} {
		if v, ok := r.Get(topic); !ok || v != want {
			t.Errorf("Get(%q) = %q, %v; want %q", topic, v, ok, want)
		}
	}
	for _, topic := range []string{"", "a/", "a/b/c", "b", "a/c"} {
		if _, ok := r.Get(topic); ok {
			t.Errorf("Get(%q) reported ok", topic)
		}
	}
	if r.Delete("a/b/c") || r.Delete("x") || r.Delete("") {
		t.Error("Delete of an absent topic reported true")
	}
	if !r.Delete("a") {
		t.Error("Delete(a) = false")
	}
	if r.Delete("a") {
		t.Error("second Delete(a) = true")
	}
	// "a" is still a node (parent of "a/b") but holds no value.
	if _, ok := r.Get("a"); ok {
		t.Error("deleted topic still found")
	}
	if got := walked(&r, "a/#"); !slices.Equal(got, []string{"a/b"}) {
		t.Errorf("Walk(a/#) = %q", got)
	}
	if !r.Delete("a/b") || r.Len() != 0 {
		t.Errorf("Delete(a/b) left Len %d", r.Len())
	}
	if n := countRNodes(&r.root); n != 1 {
		t.Errorf("store not pruned: %d nodes", n)
	}
}

func TestRetainedWalkMatchCases(t *testing.T) {
	var r Retained[int]
	var topics []string
	for _, c := range matchCases {
		if ValidName(c.topic, 0, 0) == nil {
			r.Set(c.topic, 0)
			topics = append(topics, c.topic)
		}
	}
	for _, c := range matchCases {
		if ValidFilter(c.filter, 0, 0) != nil || ValidName(c.topic, 0, 0) != nil {
			continue
		}
		t.Run(c.spec+"/"+c.filter+"~"+c.topic, func(t *testing.T) {
			got := slices.Contains(walked(&r, c.filter), c.topic)
			if got != c.want {
				t.Errorf("Walk(%q) visits %q: %v, want %v", c.filter, c.topic, got, c.want)
			}
		})
	}
	// And every filter's whole result equals a scan.
	for _, c := range matchCases {
		if ValidFilter(c.filter, 0, 0) != nil {
			continue
		}
		var want []string
		for _, topic := range topics {
			if Match(c.filter, topic) && !slices.Contains(want, topic) {
				want = append(want, topic)
			}
		}
		slices.Sort(want)
		if got := walked(&r, c.filter); !slices.Equal(got, want) {
			t.Errorf("Walk(%q) = %q, want %q", c.filter, got, want)
		}
	}
}

// [MQTT-4.7.2-1]
func TestRetainedDollarTopics_MQTT_4_7_2_1(t *testing.T) {
	var r Retained[int]
	for _, topic := range []string{"$SYS/uptime", "$SYS", "$", "a", "a/$b", "$x/y"} {
		r.Set(topic, 1)
	}
	for filter, want := range map[string][]string{
		"#":        {"a", "a/$b"},
		"+":        {"a"},
		"+/+":      {"a/$b"},
		"+/#":      {"a", "a/$b"},
		"$SYS/#":   {"$SYS", "$SYS/uptime"},
		"$SYS/+":   {"$SYS/uptime"},
		"$":        {"$"},
		"$x/+":     {"$x/y"},
		"a/+":      {"a/$b"},
		"$SYS/x/#": nil,
	} {
		if got := walked(&r, filter); !slices.Equal(got, want) {
			t.Errorf("Walk(%q) = %q, want %q", filter, got, want)
		}
	}
}

// '#' matches the parent level (§4.7.1.2): "sport/#" finds "sport".
func TestRetainedHashMatchesParent_MQTT_4_7_1_1(t *testing.T) {
	var r Retained[int]
	for _, topic := range []string{"sport", "sport/", "sport/tennis", "sport/tennis/player1", "sports"} {
		r.Set(topic, 1)
	}
	for filter, want := range map[string][]string{
		"sport/#":        {"sport", "sport/", "sport/tennis", "sport/tennis/player1"},
		"sport/tennis/#": {"sport/tennis", "sport/tennis/player1"},
		"sport/+":        {"sport/", "sport/tennis"},
		"sports/#":       {"sports"},
		"sport/+/#":      {"sport/", "sport/tennis", "sport/tennis/player1"},
	} {
		if got := walked(&r, filter); !slices.Equal(got, want) {
			t.Errorf("Walk(%q) = %q, want %q", filter, got, want)
		}
	}
}

func TestRetainedEmptyLevels(t *testing.T) {
	var r Retained[int]
	for _, topic := range []string{"a//b", "a/b", "/a", "/", "//", "a/"} {
		r.Set(topic, 1)
	}
	for filter, want := range map[string][]string{
		"a//b":  {"a//b"},
		"a/+/b": {"a//b"},
		"a/+":   {"a/", "a/b"},
		"/a":    {"/a"},
		"+/a":   {"/a"},
		"/":     {"/"},
		"+/+":   {"/", "/a", "a/", "a/b"},
		"/#":    {"/", "//", "/a"},
		"+":     nil,
		"//#":   {"/", "//"},
	} {
		if got := walked(&r, filter); !slices.Equal(got, want) {
			t.Errorf("Walk(%q) = %q, want %q", filter, got, want)
		}
	}
	if got := walked(&r, ""); got != nil {
		t.Errorf("Walk(\"\") = %q, want none", got)
	}
}

func TestRetainedWalkStops(t *testing.T) {
	var r Retained[int]
	for i := range 50 {
		r.Set(fmt.Sprintf("a/%d", i), i)
		r.Set(fmt.Sprintf("a/%d/x", i), i)
	}
	for _, filter := range []string{"#", "a/#", "a/+", "+/+/x", "a/+/#", "a/7"} {
		n := 0
		r.Walk(filter, func(string, int) bool { n++; return false })
		if n != 1 {
			t.Errorf("Walk(%q) called fn %d times after it returned false, want 1", filter, n)
		}
		n = 0
		r.Walk(filter, func(string, int) bool { n++; return n < 3 })
		if want := min(3, len(walked(&r, filter))); n != want {
			t.Errorf("Walk(%q) called fn %d times, want %d", filter, n, want)
		}
	}
}

func TestRetainedPrune(t *testing.T) {
	var r Retained[int]
	topics := []string{"a/b/c/d", "a/b", "a/x/c", "/", "//", "a//b", "$SYS/a/b"}
	for _, topic := range topics {
		r.Set(topic, 1)
	}
	r.Delete("a/b/c/d")
	// root, a, a/b, a/x, a/x/c, "", "/", "//", "a/", a//b, $SYS, $SYS/a, $SYS/a/b
	if n := countRNodes(&r.root); n != 13 {
		t.Errorf("nodes = %d, want 13", n)
	}
	for _, topic := range topics[1:] {
		if !r.Delete(topic) {
			t.Errorf("Delete(%q) = false", topic)
		}
	}
	if n := countRNodes(&r.root); n != 1 || r.Len() != 0 {
		t.Errorf("after deleting everything: %d nodes, Len %d", n, r.Len())
	}
}

// The topic given to fn is the stored topic, cut from a private copy.
func TestRetainedWalkTopicIsPrivateCopy(t *testing.T) {
	var r Retained[int]
	topic := string([]byte("room/kitchen/temp"))
	r.Set(topic, 1)
	r.Set("room/kitchen", 2) // an existing intermediate node gains a value
	start := uintptr(unsafe.Pointer(unsafe.StringData(topic)))
	r.Walk("#", func(got string, v int) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(got)))
		if p >= start && p < start+uintptr(len(topic)) {
			t.Errorf("topic %q aliases the caller's string", got)
		}
		if want := map[int]string{1: "room/kitchen/temp", 2: "room/kitchen"}[v]; got != want {
			t.Errorf("value %d under %q, want %q", v, got, want)
		}
		return true
	})
}

func TestRetainedDoesNotAllocate(t *testing.T) {
	r := benchRetained()
	fn := func(string, int) bool { return true }
	allocs := testing.AllocsPerRun(100, func() {
		r.Get(benchTopic)
		r.Walk("site/s3/dev/+/temp", fn)
		r.Walk("site/s3/#", fn)
		r.Set(benchTopic, 7) // replacing a value
	})
	if allocs != 0 {
		t.Errorf("allocs = %v, want 0", allocs)
	}
}

// Concurrent Set, Delete, Get and Walk; run with -race.
func TestRetainedConcurrent(t *testing.T) {
	var r Retained[int]
	const workers, rounds = 4, 300
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				topic := fmt.Sprintf("w%d/%d", w, i)
				r.Set(topic, i)
				found := false
				r.Walk(fmt.Sprintf("w%d/+", w), func(got string, v int) bool {
					found = found || (got == topic && v == i)
					return true
				})
				if !found {
					errs <- fmt.Errorf("worker %d: own topic %q not walked", w, topic)
					return
				}
				if i%2 == 0 && !r.Delete(topic) {
					errs <- fmt.Errorf("worker %d: Delete(%q) = false", w, topic)
					return
				}
				_, _ = r.Get(topic)
				_ = r.Len()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if r.Len() != workers*rounds/2 {
		t.Errorf("Len = %d, want %d", r.Len(), workers*rounds/2)
	}
}
